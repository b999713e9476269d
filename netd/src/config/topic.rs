//! Topic configs (Kafka's per-topic `LogConfig` keys): which keys a topic may set for itself, how
//! each value is checked (Kafka's rules, with Kafka's messages), what a key is when the topic does
//! not set it (the broker's setting of its synonym), and what a topic's set of overrides makes of
//! its partitions: the engine's `LogConfig` and `min.insync.replicas`.
//!
//! Owns: [`TOPIC_KEYS`], [`check_all`] (a request's configs → the overrides to store),
//! [`TopicSettings::of`] (overrides → what a partition runs with) and [`describe`] (every key's
//! value, source, synonyms and documentation, for DescribeConfigs).
//!
//! Must not know: where overrides are stored (topic manifests on one node, the metadata log in a
//! cluster), shards, requests. Overrides are `BTreeMap<String, String>` of checked, normalised
//! values; anything read back from storage goes through [`check`] again.
//!
//! Every Kafka 4.4 topic key is taken. Most are acted on; the rest ([`KEPT_NOT_ACTED_ON`]:
//! compaction's, tiered storage's, preallocation, the file deletion delay, the lz4 level, share
//! groups' dead-letter flag) are checked, stored and described as Kafka does but
//! change nothing, and their documentation says so. `cleanup.policy=compact` is taken: the log is
//! not compacted yet, so a compacted topic keeps every record (no retention by time or size), which
//! loses nothing a compacting broker would keep (docs/kafka-differences.md).

use std::collections::BTreeMap;

use engine::{CompressionType, FlushPolicy, LogConfig, TimestampType};

use super::dynamic::DynamicBrokerConfigs;
use super::{Config, MIN_INSYNC_REPLICAS_KEY};
pub use crate::codec::errors::TopicConfigError;

/// Kafka's `ConfigEntry.ConfigType` codes (DescribeConfigs v3+).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

/// Kafka's `ConfigEntry.ConfigSource` codes.
pub mod source {
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// One topic config key.
#[derive(Debug)]
pub struct TopicKey {
    pub name: &'static str,
    pub kind: ConfigType,
    /// The broker key whose value the topic has when it sets none (Kafka's synonym).
    pub broker_synonym: &'static str,
    pub doc: &'static str,
}

const fn key(name: &'static str, kind: ConfigType, broker_synonym: &'static str, doc: &'static str) -> TopicKey {
    TopicKey { name, kind, broker_synonym, doc }
}

pub const CLEANUP_POLICY: &str = "cleanup.policy";
pub const COMPRESSION_GZIP_LEVEL: &str = "compression.gzip.level";
pub const COMPRESSION_LZ4_LEVEL: &str = "compression.lz4.level";
pub const COMPRESSION_TYPE: &str = "compression.type";
pub const COMPRESSION_ZSTD_LEVEL: &str = "compression.zstd.level";
pub const DELETE_RETENTION_MS: &str = "delete.retention.ms";
pub const ERRORS_DEADLETTERQUEUE_GROUP_ENABLE: &str = "errors.deadletterqueue.group.enable";
pub const FILE_DELETE_DELAY_MS: &str = "file.delete.delay.ms";
pub const LOCAL_RETENTION_BYTES: &str = "local.retention.bytes";
pub const LOCAL_RETENTION_MS: &str = "local.retention.ms";
pub const MAX_COMPACTION_LAG_MS: &str = "max.compaction.lag.ms";
pub const MIN_CLEANABLE_DIRTY_RATIO: &str = "min.cleanable.dirty.ratio";
pub const MIN_COMPACTION_LAG_MS: &str = "min.compaction.lag.ms";
pub const PREALLOCATE: &str = "preallocate";
pub const REMOTE_COPY_LAG_BYTES: &str = "remote.copy.lag.bytes";
pub const REMOTE_COPY_LAG_MS: &str = "remote.copy.lag.ms";
pub const REMOTE_LOG_COPY_DISABLE: &str = "remote.log.copy.disable";
pub const REMOTE_LOG_DELETE_ON_DISABLE: &str = "remote.log.delete.on.disable";
pub const REMOTE_STORAGE_ENABLE: &str = "remote.storage.enable";
pub const SEGMENT_INDEX_BYTES: &str = "segment.index.bytes";
pub const FLUSH_MESSAGES: &str = "flush.messages";
pub const FOLLOWER_THROTTLED_REPLICAS: &str = "follower.replication.throttled.replicas";
pub const FLUSH_MS: &str = "flush.ms";
pub const INDEX_INTERVAL_BYTES: &str = "index.interval.bytes";
pub const LEADER_THROTTLED_REPLICAS: &str = "leader.replication.throttled.replicas";
pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";
/// Kafka 4.4's bound on the body one record of a compressed batch may declare (the same name
/// is its broker key).
pub const MAX_DECOMPRESSED_MESSAGE_BYTES: &str = "max.decompressed.message.bytes";
pub const MESSAGE_TIMESTAMP_AFTER_MAX_MS: &str = "message.timestamp.after.max.ms";
pub const MESSAGE_TIMESTAMP_BEFORE_MAX_MS: &str = "message.timestamp.before.max.ms";
pub const MESSAGE_TIMESTAMP_TYPE: &str = "message.timestamp.type";
pub const RETENTION_BYTES: &str = "retention.bytes";
pub const RETENTION_MS: &str = "retention.ms";
pub const SEGMENT_BYTES: &str = "segment.bytes";
pub const SEGMENT_JITTER_MS: &str = "segment.jitter.ms";
pub const SEGMENT_MS: &str = "segment.ms";
pub const UNCLEAN_LEADER_ELECTION: &str = "unclean.leader.election.enable";

/// The `broker_synonym` of a topic key no broker key stands behind (Kafka lists none): its value,
/// unset, is its own default.
pub const NO_BROKER_SYNONYM: &str = "";

/// The keys a topic may set, sorted by name (as DescribeConfigs lists them).
pub const TOPIC_KEYS: &[TopicKey] = &[
    key(
        CLEANUP_POLICY,
        ConfigType::List,
        "log.cleanup.policy",
        "What happens to old segments: \"delete\" removes them by retention.ms and retention.bytes; \
         \"compact\" keeps the latest record of each key (Skua does not compact yet: a compacted topic \
         keeps every record).",
    ),
    key(
        COMPRESSION_GZIP_LEVEL,
        ConfigType::Int,
        "compression.gzip.level",
        "The gzip level used when compression.type is gzip (1 to 9, or -1: zlib's default, 6).",
    ),
    key(
        COMPRESSION_LZ4_LEVEL,
        ConfigType::Int,
        "compression.lz4.level",
        "Kafka's lz4 level for compression.type lz4. Taken and reported; no effect (Skua's lz4 has one \
         level).",
    ),
    key(
        COMPRESSION_TYPE,
        ConfigType::String,
        "compression.type",
        "The codec batches are stored with: \"producer\" keeps the producer's; \"uncompressed\", \
         \"gzip\", \"snappy\", \"lz4\" or \"zstd\" converts every batch that arrives with another \
         codec, as Kafka does.",
    ),
    key(
        COMPRESSION_ZSTD_LEVEL,
        ConfigType::Int,
        "compression.zstd.level",
        "The zstd level used when compression.type is zstd (-131072 to 22; 0: zstd's default).",
    ),
    key(
        DELETE_RETENTION_MS,
        ConfigType::Long,
        "log.cleaner.delete.retention.ms",
        "How long a compacted topic keeps delete tombstones. Taken and reported; no effect (Skua does \
         not compact yet: it keeps every record of a compacted topic).",
    ),
    key(
        ERRORS_DEADLETTERQUEUE_GROUP_ENABLE,
        ConfigType::Boolean,
        NO_BROKER_SYNONYM,
        "Whether share groups may use the topic as a dead-letter queue. Taken and reported; no effect \
         (Skua has no share groups).",
    ),
    key(
        FILE_DELETE_DELAY_MS,
        ConfigType::Long,
        "log.segment.delete.delay.ms",
        "How long Kafka waits before deleting a segment's files. Taken and reported; no effect (Skua \
         removes or recycles a segment's files as soon as retention drops it).",
    ),
    key(
        FLUSH_MESSAGES,
        ConfigType::Long,
        "log.flush.interval.messages",
        "Set (with or without flush.ms): the topic's logs fsync after this many messages instead of \
         following the broker's skua.fsync.policy.",
    ),
    key(
        FLUSH_MS,
        ConfigType::Long,
        "log.flush.interval.ms",
        "Set (with or without flush.messages): the topic's logs fsync at least this often instead of \
         following the broker's skua.fsync.policy.",
    ),
    key(
        FOLLOWER_THROTTLED_REPLICAS,
        ConfigType::List,
        NO_BROKER_SYNONYM,
        "The replicas (partition:broker pairs, or * for all) whose copying by this broker as follower \
         is held to its follower.replication.throttled.rate while they are out of the ISR.",
    ),
    key(
        INDEX_INTERVAL_BYTES,
        ConfigType::Int,
        "log.index.interval.bytes",
        "Bytes of batches between two entries of a segment's offset index.",
    ),
    key(
        LEADER_THROTTLED_REPLICAS,
        ConfigType::List,
        NO_BROKER_SYNONYM,
        "The replicas (partition:broker pairs, or * for all) whose leader, on that broker, serves its \
         out-of-ISR followers within its leader.replication.throttled.rate.",
    ),
    key(
        LOCAL_RETENTION_BYTES,
        ConfigType::Long,
        "log.local.retention.bytes",
        "Tiered storage's local size limit. Taken and reported; no effect (Skua has no tiered storage).",
    ),
    key(
        LOCAL_RETENTION_MS,
        ConfigType::Long,
        "log.local.retention.ms",
        "Tiered storage's local time limit. Taken and reported; no effect (Skua has no tiered storage).",
    ),
    key(
        MAX_COMPACTION_LAG_MS,
        ConfigType::Long,
        "log.cleaner.max.compaction.lag.ms",
        "The longest a record stays uncompacted. Taken and reported (at least min.compaction.lag.ms); \
         no effect (Skua does not compact yet).",
    ),
    key(
        MAX_DECOMPRESSED_MESSAGE_BYTES,
        ConfigType::Int,
        MAX_DECOMPRESSED_MESSAGE_BYTES,
        "The longest body a record of a compressed batch may declare, in bytes; a longer one refuses \
         the batch with INVALID_RECORD (records of uncompressed batches are bounded by max.message.bytes).",
    ),
    key(
        MAX_MESSAGE_BYTES,
        ConfigType::Int,
        "message.max.bytes",
        "The largest record batch a producer may append to the topic (Skua's limit: 64 MiB).",
    ),
    key(
        MESSAGE_TIMESTAMP_AFTER_MAX_MS,
        ConfigType::Long,
        "log.message.timestamp.after.max.ms",
        "How far ahead of the leader's clock a produced batch's timestamps may be, in ms; further \
         refuses the batch with INVALID_TIMESTAMP (not checked for LogAppendTime topics).",
    ),
    key(
        MESSAGE_TIMESTAMP_BEFORE_MAX_MS,
        ConfigType::Long,
        "log.message.timestamp.before.max.ms",
        "How far behind the leader's clock a produced batch's timestamps may be, in ms; further \
         refuses the batch with INVALID_TIMESTAMP (not checked for LogAppendTime topics).",
    ),
    key(
        MESSAGE_TIMESTAMP_TYPE,
        ConfigType::String,
        "log.message.timestamp.type",
        "Which timestamp records get: CreateTime, the producer's; LogAppendTime, the time the \
         leader appended their batch.",
    ),
    key(
        MIN_CLEANABLE_DIRTY_RATIO,
        ConfigType::Double,
        "log.cleaner.min.cleanable.ratio",
        "The share of uncompacted log at which Kafka compacts. Taken and reported; no effect (Skua \
         does not compact yet).",
    ),
    key(
        MIN_COMPACTION_LAG_MS,
        ConfigType::Long,
        "log.cleaner.min.compaction.lag.ms",
        "The shortest a record stays uncompacted. Taken and reported (at most max.compaction.lag.ms); \
         no effect (Skua does not compact yet).",
    ),
    key(
        MIN_INSYNC_REPLICAS_KEY,
        ConfigType::Int,
        "min.insync.replicas",
        "The in-sync replicas an acks=all write needs; fewer refuse it with NOT_ENOUGH_REPLICAS.",
    ),
    key(
        PREALLOCATE,
        ConfigType::Boolean,
        "log.preallocate",
        "Whether Kafka preallocates new segment files. Taken and reported; no effect (Skua reuses the \
         files of deleted segments instead).",
    ),
    key(
        REMOTE_COPY_LAG_BYTES,
        ConfigType::Long,
        "log.remote.copy.lag.bytes",
        "Tiered storage's copy lag in bytes. Taken and reported; no effect (Skua has no tiered storage).",
    ),
    key(
        REMOTE_COPY_LAG_MS,
        ConfigType::Long,
        "log.remote.copy.lag.ms",
        "Tiered storage's copy lag in ms. Taken and reported; no effect (Skua has no tiered storage).",
    ),
    key(
        REMOTE_LOG_COPY_DISABLE,
        ConfigType::Boolean,
        NO_BROKER_SYNONYM,
        "Stops tiered storage's copying. Taken and reported; no effect (Skua has no tiered storage).",
    ),
    key(
        REMOTE_LOG_DELETE_ON_DISABLE,
        ConfigType::Boolean,
        NO_BROKER_SYNONYM,
        "Deletes remote data when tiered storage is turned off. Taken and reported; no effect (Skua \
         has no tiered storage).",
    ),
    key(
        REMOTE_STORAGE_ENABLE,
        ConfigType::Boolean,
        NO_BROKER_SYNONYM,
        "Whether the topic uses tiered storage: only false, as on a Kafka without tiered storage.",
    ),
    key(
        RETENTION_BYTES,
        ConfigType::Long,
        "log.retention.bytes",
        "The size a partition's log may reach before its oldest segments are deleted; -1: no limit.",
    ),
    key(
        RETENTION_MS,
        ConfigType::Long,
        "log.retention.ms",
        "How long a segment is kept after its newest record; -1: forever.",
    ),
    key(
        SEGMENT_BYTES,
        ConfigType::Int,
        "log.segment.bytes",
        "The size at which a partition's active segment is rolled.",
    ),
    key(
        SEGMENT_INDEX_BYTES,
        ConfigType::Int,
        "log.index.size.max.bytes",
        "The most a segment's offset index (8-byte entries) or time index (12-byte entries) may \
         hold: the active segment rolls when either is full.",
    ),
    key(
        SEGMENT_JITTER_MS,
        ConfigType::Long,
        "log.roll.jitter.ms",
        "The most a segment rolls before segment.ms, each segment its own amount below \
         min(segment.jitter.ms, segment.ms), so that the segments of many partitions do not all roll at once.",
    ),
    key(SEGMENT_MS, ConfigType::Long, "log.roll.ms", "The age at which a partition's active segment is rolled."),
    key(
        UNCLEAN_LEADER_ELECTION,
        ConfigType::Boolean,
        "unclean.leader.election.enable",
        "Whether a replica outside the ISR may become leader when no in-sync replica is left (data \
         loss); a cluster's controller reads it for the topic.",
    ),
];

/// The topic keys Skua checks, stores and describes but does not act on, with Kafka 4.4's
/// defaults (their broker synonyms' values, when a broker sets them, are in
/// `Config::kept_log_configs`). Taking them lets the clients that set them create their topics
/// (Kafka Streams' versioned stores set `min.compaction.lag.ms`); refusing them would fail those
/// clients for settings that cannot change what Skua keeps or serves. Each key's documentation
/// says it has no effect.
pub const KEPT_NOT_ACTED_ON: &[(&str, &str)] = &[
    (COMPRESSION_LZ4_LEVEL, "9"),
    (DELETE_RETENTION_MS, "86400000"),
    (ERRORS_DEADLETTERQUEUE_GROUP_ENABLE, "false"),
    (FILE_DELETE_DELAY_MS, "60000"),
    (LOCAL_RETENTION_BYTES, "-2"),
    (LOCAL_RETENTION_MS, "-2"),
    (MAX_COMPACTION_LAG_MS, "9223372036854775807"),
    (MIN_CLEANABLE_DIRTY_RATIO, "0.5"),
    (MIN_COMPACTION_LAG_MS, "0"),
    (PREALLOCATE, "false"),
    (REMOTE_COPY_LAG_BYTES, "-1"),
    (REMOTE_COPY_LAG_MS, "0"),
    (REMOTE_LOG_COPY_DISABLE, "false"),
    (REMOTE_LOG_DELETE_ON_DISABLE, "false"),
    (REMOTE_STORAGE_ENABLE, "false"),
];

/// The keys of [`KEPT_NOT_ACTED_ON`] that have a broker synonym (whose broker values a
/// configuration file and dynamic broker configs may set).
pub fn kept_with_broker_synonym() -> impl Iterator<Item = &'static TopicKey> {
    KEPT_NOT_ACTED_ON
        .iter()
        .filter_map(|(name, _)| topic_key(name))
        .filter(|key| key.broker_synonym != NO_BROKER_SYNONYM)
}

/// Kafka's default of a key in [`KEPT_NOT_ACTED_ON`].
pub fn kept_default(name: &str) -> Option<&'static str> {
    KEPT_NOT_ACTED_ON.iter().find(|(kept, _)| *kept == name).map(|(_, default)| *default)
}

/// Kafka's refusal of `remote.storage.enable=true` on a broker without tiered storage.
const TIERED_STORAGE_DISABLED: &str =
    "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage.";

/// The key's entry in [`TOPIC_KEYS`].
pub fn topic_key(name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|key| key.name == name)
}

/// Checks one key and value as Kafka does; the normalised value to store.
pub fn check(name: &str, value: &str) -> Result<String, TopicConfigError> {
    if topic_key(name).is_none() {
        return Err(TopicConfigError::Unknown(name.to_string()));
    }
    if value.chars().any(char::is_control) {
        return Err(TopicConfigError::ControlCharacter(name.to_string()));
    }
    let invalid =
        |reason: String| TopicConfigError::InvalidValue { key: name.to_string(), value: value.to_string(), reason };
    let trimmed = value.trim();
    let long = || trimmed.parse::<i64>().map_err(|_| invalid("Not a number of type LONG".to_string()));
    let int = || trimmed.parse::<i32>().map_err(|_| invalid("Not a number of type INT".to_string()));
    let at_least = |number: i64, min: i64| {
        if number < min {
            Err(invalid(format!("Value must be at least {min}")))
        } else {
            Ok(number.to_string())
        }
    };
    let boolean = || match trimmed.to_ascii_lowercase().as_str() {
        "true" => Ok("true".to_string()),
        "false" => Ok("false".to_string()),
        _ => Err(invalid("Expected value to be either true or false".to_string())),
    };
    match name {
        CLEANUP_POLICY => {
            let policies: Vec<&str> = trimmed.split(',').map(str::trim).filter(|item| !item.is_empty()).collect();
            if let Some(bad) = policies.iter().find(|item| !matches!(**item, "compact" | "delete")) {
                return Err(TopicConfigError::InvalidValue {
                    key: name.to_string(),
                    value: (*bad).to_string(),
                    reason: "String must be one of: compact, delete".to_string(),
                });
            }
            Ok(policies.join(","))
        }
        COMPRESSION_GZIP_LEVEL => {
            let level = int()?;
            if level != -1 && !(1..=9).contains(&level) {
                return Err(invalid("Value must be between 1 and 9 or equal to -1".to_string()));
            }
            Ok(level.to_string())
        }
        COMPRESSION_LZ4_LEVEL => {
            let level = at_least(i64::from(int()?), 1)?;
            if level.parse::<i32>().is_ok_and(|level| level > 17) {
                return Err(invalid("Value must be no more than 17".to_string()));
            }
            Ok(level)
        }
        DELETE_RETENTION_MS | FILE_DELETE_DELAY_MS | MIN_COMPACTION_LAG_MS => at_least(long()?, 0),
        ERRORS_DEADLETTERQUEUE_GROUP_ENABLE | PREALLOCATE | REMOTE_LOG_COPY_DISABLE | REMOTE_LOG_DELETE_ON_DISABLE => {
            boolean()
        }
        LOCAL_RETENTION_BYTES | LOCAL_RETENTION_MS => at_least(long()?, -2),
        MAX_COMPACTION_LAG_MS => at_least(long()?, 1),
        MIN_CLEANABLE_DIRTY_RATIO => {
            let ratio = trimmed
                .parse::<f64>()
                .ok()
                .filter(|ratio| !ratio.is_nan())
                .ok_or_else(|| invalid("Not a number of type DOUBLE".to_string()))?;
            if ratio < 0.0 {
                return Err(invalid("Value must be at least 0".to_string()));
            }
            if ratio > 1.0 {
                return Err(invalid("Value must be no more than 1".to_string()));
            }
            Ok(java_double(ratio))
        }
        REMOTE_COPY_LAG_BYTES | REMOTE_COPY_LAG_MS => at_least(long()?, -1),
        REMOTE_STORAGE_ENABLE => match boolean()?.as_str() {
            "true" => Err(TopicConfigError::Refused(TIERED_STORAGE_DISABLED.to_string())),
            other => Ok(other.to_string()),
        },
        SEGMENT_INDEX_BYTES => at_least(i64::from(int()?), engine::limits::INDEX_BYTES_MAX_MIN as i64),
        COMPRESSION_TYPE => match trimmed {
            "producer" | "uncompressed" | "zstd" | "lz4" | "snappy" | "gzip" => Ok(trimmed.to_string()),
            _ => Err(invalid("String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer".to_string())),
        },
        COMPRESSION_ZSTD_LEVEL => {
            let level = int()?;
            // Kafka's range: zstd's fast (negative) levels to its strongest (KIP-390).
            if level < engine::limits::ZSTD_LEVEL_MIN {
                return Err(invalid(format!("Value must be at least {}", engine::limits::ZSTD_LEVEL_MIN)));
            }
            if level > engine::limits::ZSTD_LEVEL_MAX {
                return Err(invalid(format!("Value must be no more than {}", engine::limits::ZSTD_LEVEL_MAX)));
            }
            Ok(level.to_string())
        }
        FLUSH_MESSAGES => at_least(long()?, 1),
        FOLLOWER_THROTTLED_REPLICAS | LEADER_THROTTLED_REPLICAS => {
            // Kafka's LIST parsing, then its ThrottledReplicaListValidator (the message shows the
            // parsed list as Java prints one).
            let items: Vec<&str> =
                if trimmed.is_empty() { Vec::new() } else { trimmed.split(',').map(str::trim).collect() };
            let replica = |item: &&str| {
                item.is_empty()
                    || item.split_once(':').is_some_and(|(partition, broker)| {
                        [partition, broker]
                            .iter()
                            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                    })
            };
            if items.iter().all(replica) || items.concat() == "*" {
                Ok(items.join(","))
            } else {
                Err(TopicConfigError::InvalidValue {
                    key: name.to_string(),
                    value: format!("[{}]", items.join(", ")),
                    reason: format!(
                        "{name} must be the literal '*' or a list of replicas in the following format: \
                         [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                    ),
                })
            }
        }
        FLUSH_MS | RETENTION_BYTES | RETENTION_MS => match name {
            FLUSH_MS => at_least(long()?, 0),
            _ => at_least(long()?, -1),
        },
        INDEX_INTERVAL_BYTES => at_least(i64::from(int()?), 0).and_then(|text| {
            if text == "0" {
                Err(invalid("Skua needs a positive index interval".to_string()))
            } else {
                Ok(text)
            }
        }),
        MAX_DECOMPRESSED_MESSAGE_BYTES => {
            let bytes = at_least(i64::from(int()?), 1)?;
            let most = engine::limits::DECOMPRESSED_RECORD_BYTES_MAX_DEFAULT;
            if bytes.parse::<usize>().is_ok_and(|bytes| bytes > most) {
                return Err(invalid(format!("Value must be no more than {most}")));
            }
            Ok(bytes)
        }
        MAX_MESSAGE_BYTES => {
            let bytes = at_least(i64::from(int()?), 0)?;
            if bytes.parse::<usize>().is_ok_and(|bytes| bytes > engine::limits::BATCH_BYTES_MAX) {
                return Err(invalid(format!("Skua's limit is {} bytes", engine::limits::BATCH_BYTES_MAX)));
            }
            Ok(bytes)
        }
        MESSAGE_TIMESTAMP_AFTER_MAX_MS | MESSAGE_TIMESTAMP_BEFORE_MAX_MS => at_least(long()?, 0),
        MESSAGE_TIMESTAMP_TYPE => match trimmed {
            "CreateTime" | "LogAppendTime" => Ok(trimmed.to_string()),
            _ => Err(invalid("String must be one of: CreateTime, LogAppendTime".to_string())),
        },
        MIN_INSYNC_REPLICAS_KEY => at_least(i64::from(int()?), 1),
        SEGMENT_BYTES => {
            let bytes = at_least(i64::from(int()?), 1_048_576)?;
            if bytes.parse::<u64>().is_ok_and(|bytes| bytes > engine::limits::SEGMENT_BYTES_MAX) {
                return Err(invalid(format!("Skua's limit is {} bytes", engine::limits::SEGMENT_BYTES_MAX)));
            }
            Ok(bytes)
        }
        SEGMENT_JITTER_MS => at_least(long()?, 0),
        SEGMENT_MS => at_least(long()?, 1),
        UNCLEAN_LEADER_ELECTION => boolean(),
        other => unreachable!("{other} is in TOPIC_KEYS but has no check"),
    }
}

/// A DOUBLE as Java's `Double.toString` writes it, as Kafka describes one: `1.0`, `0.5`,
/// `1.0E-4` below 10^-3.
fn java_double(value: f64) -> String {
    if value != 0.0 && value.abs() < 1e-3 {
        let scientific = format!("{value:e}");
        let (mantissa, exponent) = scientific.split_once('e').unwrap_or((scientific.as_str(), "0"));
        let mantissa = if mantissa.contains('.') { mantissa.to_string() } else { format!("{mantissa}.0") };
        return format!("{mantissa}E{exponent}");
    }
    format!("{value:?}")
}

/// Checks what one check cannot: the keys that bound each other, on the topic's resulting
/// overrides with the broker's values under them (`broker` static, `dynamic` over it), as Kafka's
/// `LogConfig.validate` does.
pub fn check_together(
    broker: &Config,
    dynamic: &DynamicBrokerConfigs,
    overrides: &BTreeMap<String, String>,
) -> Result<(), TopicConfigError> {
    let described = describe(broker, dynamic, overrides);
    let value = |name: &str| {
        described.iter().find(|entry| entry.name == name).and_then(|entry| entry.value.parse::<i64>().ok())
    };
    if let (Some(min), Some(max)) = (value(MIN_COMPACTION_LAG_MS), value(MAX_COMPACTION_LAG_MS)) {
        if min > max {
            return Err(TopicConfigError::Refused(format!(
                "conflict topic config setting {MIN_COMPACTION_LAG_MS} ({min}) > {MAX_COMPACTION_LAG_MS} ({max})"
            )));
        }
    }
    Ok(())
}

/// Checks a request's configs (name, value; a null value is Kafka's "not set"), in order: the
/// overrides to store, or the first refusal.
pub fn check_all<'a>(
    configs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<BTreeMap<String, String>, TopicConfigError> {
    let mut checked = BTreeMap::new();
    for (name, value) in configs {
        match value {
            Some(value) => {
                checked.insert(name.to_string(), check(name, value)?);
            }
            // Kafka: a null value at creation means the default; the key must still be known.
            None => {
                check(name, "").or_else(|error| match error {
                    TopicConfigError::InvalidValue { .. } => Ok(String::new()),
                    other => Err(other),
                })?;
            }
        }
    }
    Ok(checked)
}

/// What a topic's partitions run with: the broker's settings with the topic's overrides applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicSettings {
    pub log: LogConfig,
    /// `min.insync.replicas`: the topic's, else the broker's.
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable`: the topic's; `None`: the broker's.
    pub unclean_leader_election: Option<bool>,
}

impl TopicSettings {
    /// The settings of a topic with `overrides` on a broker configured by `broker` (its
    /// effective configuration: dynamic broker configs applied). An override that does not pass
    /// [`check`] (a damaged store) is left out with an error line.
    pub fn of(broker: &Config, overrides: &BTreeMap<String, String>) -> TopicSettings {
        let mut log = broker.log;
        let valid = |name: &str| {
            let value = overrides.get(name)?;
            match check(name, value) {
                Ok(value) => Some(value),
                Err(error) => {
                    tracing::error!(%error, "a stored topic config is not valid; the broker's setting applies");
                    None
                }
            }
        };
        let number = |name: &str| valid(name).and_then(|value| value.parse::<i64>().ok());
        if let Some(value) = number(RETENTION_MS) {
            log.retention_ms = value;
        }
        if let Some(value) = number(RETENTION_BYTES) {
            log.retention_bytes = value;
        }
        if let Some(value) = number(SEGMENT_BYTES) {
            log.segment_bytes = value.unsigned_abs();
        }
        if let Some(value) = number(SEGMENT_MS) {
            log.segment_ms = value;
        }
        if let Some(value) = number(SEGMENT_JITTER_MS) {
            log.segment_jitter_ms = value;
        }
        if let Some(value) = number(INDEX_INTERVAL_BYTES) {
            log.index_interval_bytes = value.unsigned_abs();
        }
        if let Some(value) = number(SEGMENT_INDEX_BYTES) {
            log.index_bytes_max = value.unsigned_abs();
        }
        // The topic's own limit, else the broker's (which a dynamic broker config may change).
        log.batch_bytes_max = Some(match number(MAX_MESSAGE_BYTES).and_then(|value| usize::try_from(value).ok()) {
            Some(bytes) => bytes,
            None => broker.message_max_bytes.min(engine::limits::BATCH_BYTES_MAX),
        });
        if let Some(bytes) = number(MAX_DECOMPRESSED_MESSAGE_BYTES).and_then(|value| usize::try_from(value).ok()) {
            log.decompressed_record_bytes_max = bytes;
        }
        let (flush_messages, flush_ms) = (number(FLUSH_MESSAGES), number(FLUSH_MS));
        if flush_messages.is_some() || flush_ms.is_some() {
            let (broker_messages, broker_ms) = match broker.log.flush_policy {
                FlushPolicy::Interval { flush_messages, flush_ms } => (flush_messages, flush_ms),
                FlushPolicy::FsyncBeforeAck => (u64::MAX, i64::MAX),
            };
            log.flush_policy = FlushPolicy::Interval {
                flush_messages: flush_messages.map_or(broker_messages, i64::unsigned_abs),
                flush_ms: flush_ms.unwrap_or(broker_ms),
            };
        }
        // The topic's codec, else the broker's; each level the topic's, else the broker's.
        let kind = valid(COMPRESSION_TYPE).unwrap_or_else(|| compression_name(broker.log.compression).to_string());
        let level = |name: &str, broker_level: i32| {
            number(name).and_then(|level| i32::try_from(level).ok()).unwrap_or(broker_level)
        };
        log.compression = compression(
            &kind,
            level(COMPRESSION_ZSTD_LEVEL, broker.compression_zstd_level),
            level(COMPRESSION_GZIP_LEVEL, broker.compression_gzip_level),
        );
        if valid(CLEANUP_POLICY).is_some_and(|policy| !policy.split(',').any(|item| item == "delete")) {
            // Compacted only: nothing is deleted by age or size (compaction itself is not done yet).
            log.retention_ms = -1;
            log.retention_bytes = -1;
        }
        if let Some(kind) = valid(MESSAGE_TIMESTAMP_TYPE) {
            log.timestamp_type =
                if kind == "LogAppendTime" { TimestampType::LogAppendTime } else { TimestampType::CreateTime };
        }
        if let Some(value) = number(MESSAGE_TIMESTAMP_BEFORE_MAX_MS) {
            log.timestamp_before_max_ms = value;
        }
        if let Some(value) = number(MESSAGE_TIMESTAMP_AFTER_MAX_MS) {
            log.timestamp_after_max_ms = value;
        }
        let min_insync_replicas = number(MIN_INSYNC_REPLICAS_KEY)
            .and_then(|value| i32::try_from(value).ok())
            .unwrap_or(broker.min_insync_replicas);
        let unclean_leader_election = valid(UNCLEAN_LEADER_ELECTION).map(|value| value == "true");
        TopicSettings { log, min_insync_replicas, unclean_leader_election }
    }
}

/// Whether a checked `*.replication.throttled.replicas` value names `partition`'s replica on
/// `broker` (`*`: every replica), as Kafka's broker reads the list for itself.
pub fn throttles(list: &str, partition: i32, broker: i32) -> bool {
    list == "*"
        || list.split(',').any(|item| {
            item.split_once(':').is_some_and(|(listed_partition, listed_broker)| {
                listed_partition.parse() == Ok(partition) && listed_broker.parse() == Ok(broker)
            })
        })
}

/// Kafka's `compression.zstd.level` default.
pub const ZSTD_LEVEL_DEFAULT: i32 = 3;

/// Kafka's `compression.gzip.level` default (zlib's own level).
pub const GZIP_LEVEL_DEFAULT: i32 = -1;

/// The engine's codec for a checked `compression.type` value, with the zstd and gzip levels in
/// force.
pub fn compression(kind: &str, zstd_level: i32, gzip_level: i32) -> CompressionType {
    match kind {
        "uncompressed" => CompressionType::Uncompressed,
        "gzip" => CompressionType::Gzip { level: gzip_level },
        "snappy" => CompressionType::Snappy,
        "lz4" => CompressionType::Lz4,
        "zstd" => CompressionType::Zstd { level: zstd_level },
        _ => CompressionType::Producer,
    }
}

/// The `compression.type` value of an engine codec.
pub fn compression_name(compression: CompressionType) -> &'static str {
    match compression {
        CompressionType::Producer => "producer",
        CompressionType::Uncompressed => "uncompressed",
        CompressionType::Gzip { .. } => "gzip",
        CompressionType::Snappy => "snappy",
        CompressionType::Lz4 => "lz4",
        CompressionType::Zstd { .. } => "zstd",
    }
}

/// One key as DescribeConfigs reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Described {
    pub name: &'static str,
    pub value: String,
    pub source: i8,
    pub kind: ConfigType,
    pub doc: &'static str,
    /// Kafka's synonyms, most specific first: the topic's own setting, then the broker's.
    pub synonyms: Vec<(String, String, i8)>,
}

/// The broker's value for a topic key (what the topic has when it sets none).
pub fn broker_value(broker: &Config, name: &str) -> String {
    let (flush_messages, flush_ms) = match broker.log.flush_policy {
        FlushPolicy::FsyncBeforeAck => (1, 0),
        FlushPolicy::Interval { flush_messages, flush_ms } => (flush_messages.min(i64::MAX as u64) as i64, flush_ms),
    };
    match name {
        CLEANUP_POLICY => "delete".to_string(),
        COMPRESSION_TYPE => compression_name(broker.log.compression).to_string(),
        COMPRESSION_ZSTD_LEVEL => broker.compression_zstd_level.to_string(),
        COMPRESSION_GZIP_LEVEL => broker.compression_gzip_level.to_string(),
        FLUSH_MESSAGES => flush_messages.to_string(),
        FOLLOWER_THROTTLED_REPLICAS | LEADER_THROTTLED_REPLICAS => String::new(),
        FLUSH_MS => flush_ms.to_string(),
        INDEX_INTERVAL_BYTES => broker.log.index_interval_bytes.to_string(),
        MAX_MESSAGE_BYTES => broker.message_max_bytes.to_string(),
        MAX_DECOMPRESSED_MESSAGE_BYTES => broker.log.decompressed_record_bytes_max.to_string(),
        MESSAGE_TIMESTAMP_AFTER_MAX_MS => broker.log.timestamp_after_max_ms.to_string(),
        MESSAGE_TIMESTAMP_BEFORE_MAX_MS => broker.log.timestamp_before_max_ms.to_string(),
        MESSAGE_TIMESTAMP_TYPE => match broker.log.timestamp_type {
            TimestampType::CreateTime => "CreateTime".to_string(),
            TimestampType::LogAppendTime => "LogAppendTime".to_string(),
        },
        MIN_INSYNC_REPLICAS_KEY => broker.min_insync_replicas.to_string(),
        RETENTION_BYTES => broker.log.retention_bytes.to_string(),
        RETENTION_MS => broker.log.retention_ms.to_string(),
        SEGMENT_BYTES => broker.log.segment_bytes.to_string(),
        SEGMENT_INDEX_BYTES => broker.log.index_bytes_max.to_string(),
        SEGMENT_JITTER_MS => broker.log.segment_jitter_ms.to_string(),
        SEGMENT_MS => broker.log.segment_ms.to_string(),
        UNCLEAN_LEADER_ELECTION => {
            broker.cluster.as_ref().is_some_and(|cluster| cluster.unclean_leader_election).to_string()
        }
        other => match (topic_key(other), kept_default(other)) {
            (Some(key), Some(default)) => {
                broker.kept_log_configs.get(key.broker_synonym).cloned().unwrap_or_else(|| default.to_string())
            }
            _ => unreachable!("{other} is in TOPIC_KEYS but has no broker value"),
        },
    }
}

/// Every topic key of a topic with `overrides` (sorted by name): its value, where the value
/// comes from, and Kafka's synonyms, most specific first: the topic's override, the broker key's
/// dynamic values (this broker's, the cluster default), then its static value
/// (STATIC_BROKER_CONFIG when the broker's configuration file sets it, DEFAULT_CONFIG otherwise).
/// `broker` is the static configuration.
pub fn describe(
    broker: &Config,
    dynamic: &DynamicBrokerConfigs,
    overrides: &BTreeMap<String, String>,
) -> Vec<Described> {
    TOPIC_KEYS
        .iter()
        .map(|key| {
            let static_source = if broker.set_keys.contains(key.broker_synonym) {
                source::STATIC_BROKER_CONFIG
            } else {
                source::DEFAULT_CONFIG
            };
            let mut synonyms = Vec::new();
            if let Some(value) = overrides.get(key.name) {
                synonyms.push((key.name.to_string(), value.clone(), source::DYNAMIC_TOPIC_CONFIG));
            }
            if key.broker_synonym == NO_BROKER_SYNONYM {
                // Kafka lists no synonym but the topic's own setting; unset, the key's default.
                let default = kept_default(key.name).unwrap_or_default().to_string();
                let (value, source) = synonyms.first().map_or((default, source::DEFAULT_CONFIG), |(_, value, _)| {
                    (value.clone(), source::DYNAMIC_TOPIC_CONFIG)
                });
                return Described { name: key.name, value, source, kind: key.kind, doc: key.doc, synonyms };
            }
            if super::dynamic::is_dynamic(key.broker_synonym) {
                synonyms.extend(dynamic.synonyms(key.broker_synonym));
            }
            synonyms.push((key.broker_synonym.to_string(), broker_value(broker, key.name), static_source));
            let (_, value, source) = synonyms[0].clone();
            Described { name: key.name, value, source, kind: key.kind, doc: key.doc, synonyms }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker() -> Config {
        Config::from_properties(&BTreeMap::from([("log.retention.ms".to_string(), "5000".to_string())]))
            .expect("valid broker config")
    }

    #[test]
    fn values_are_checked_with_kafkas_messages() {
        // Observed against Kafka 4.4 (`kafka-topics --create --config ...`).
        let cases = [
            ("retention.ms", "abc", "Invalid value abc for configuration retention.ms: Not a number of type LONG"),
            ("foo.bar", "1", "Unknown topic config name: foo.bar"),
            ("segment.bytes", "100", "Invalid value 100 for configuration segment.bytes: Value must be at least 1048576"),
            (
                "cleanup.policy",
                "bogus",
                "Invalid value bogus for configuration cleanup.policy: String must be one of: compact, delete",
            ),
            ("retention.ms", "-5", "Invalid value -5 for configuration retention.ms: Value must be at least -1"),
            ("min.insync.replicas", "0", "Invalid value 0 for configuration min.insync.replicas: Value must be at least 1"),
            (
                "message.timestamp.type",
                "Foo",
                "Invalid value Foo for configuration message.timestamp.type: String must be one of: CreateTime, LogAppendTime",
            ),
            (
                "compression.type",
                "brotli",
                "Invalid value brotli for configuration compression.type: String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer",
            ),
            ("max.message.bytes", "-1", "Invalid value -1 for configuration max.message.bytes: Value must be at least 0"),
            ("segment.ms", "0", "Invalid value 0 for configuration segment.ms: Value must be at least 1"),
            ("segment.jitter.ms", "-1", "Invalid value -1 for configuration segment.jitter.ms: Value must be at least 0"),
            (
                "message.timestamp.after.max.ms",
                "-1",
                "Invalid value -1 for configuration message.timestamp.after.max.ms: Value must be at least 0",
            ),
            (
                "message.timestamp.before.max.ms",
                "abc",
                "Invalid value abc for configuration message.timestamp.before.max.ms: Not a number of type LONG",
            ),
        ];
        // Observed against Kafka 4.4 (`kafka-configs --alter --add-config`): the list as Java prints it.
        let throttle_refusal = |list: &str| {
            format!(
                "Invalid value {list} for configuration leader.replication.throttled.replicas: \
                 leader.replication.throttled.replicas must be the literal '*' or a list of replicas in the \
                 following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."
            )
        };
        let cases = cases.into_iter().map(|(name, value, message)| (name, value, message.to_string())).chain([
            ("leader.replication.throttled.replicas", "abc", throttle_refusal("[abc]")),
            ("leader.replication.throttled.replicas", "1:1,*", throttle_refusal("[1:1, *]")),
            ("leader.replication.throttled.replicas", "0:-1", throttle_refusal("[0:-1]")),
            ("leader.replication.throttled.replicas", " 0 : 1 ", throttle_refusal("[0 : 1]")),
        ]);
        // The keys Skua keeps but does not act on, observed against Kafka 4.4 (`kafka-configs
        // --alter --add-config` on a topic).
        let kept = [
            ("delete.retention.ms", "-1", "Value must be at least 0"),
            ("min.compaction.lag.ms", "-1", "Value must be at least 0"),
            ("max.compaction.lag.ms", "0", "Value must be at least 1"),
            ("min.cleanable.dirty.ratio", "1.5", "Value must be no more than 1"),
            ("min.cleanable.dirty.ratio", "-0.1", "Value must be at least 0"),
            ("min.cleanable.dirty.ratio", "x", "Not a number of type DOUBLE"),
            ("file.delete.delay.ms", "-1", "Value must be at least 0"),
            ("preallocate", "maybe", "Expected value to be either true or false"),
            ("segment.index.bytes", "3", "Value must be at least 4"),
            ("segment.index.bytes", "2147483648", "Not a number of type INT"),
            ("compression.gzip.level", "0", "Value must be between 1 and 9 or equal to -1"),
            ("compression.zstd.level", "23", "Value must be no more than 22"),
            ("compression.zstd.level", "-200000", "Value must be at least -131072"),
            ("compression.lz4.level", "18", "Value must be no more than 17"),
            ("max.decompressed.message.bytes", "2147483640", "Value must be no more than 2147483639"),
            ("compression.lz4.level", "0", "Value must be at least 1"),
            ("errors.deadletterqueue.group.enable", "x", "Expected value to be either true or false"),
            ("local.retention.ms", "-3", "Value must be at least -2"),
            ("local.retention.bytes", "-3", "Value must be at least -2"),
            ("remote.copy.lag.bytes", "-2", "Value must be at least -1"),
            ("remote.copy.lag.ms", "-2", "Value must be at least -1"),
            ("remote.storage.enable", "yes", "Expected value to be either true or false"),
            ("remote.log.copy.disable", "1", "Expected value to be either true or false"),
        ]
        .map(|(name, value, reason)| {
            (name, value, format!("Invalid value {value} for configuration {name}: {reason}"))
        });
        let cases = cases.chain(kept).chain([
            (
                "remote.storage.enable",
                "true",
                "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote \
                 log storage."
                    .to_string(),
            ),
            // Gone from Kafka 4 (KIP-724).
            (
                "message.downconversion.enable",
                "false",
                "Unknown topic config name: message.downconversion.enable".to_string(),
            ),
        ]);
        for (name, value, message) in cases {
            assert_eq!(check(name, value).expect_err(name).to_string(), message, "{name}={value}");
        }
        assert_eq!(check("retention.ms", " 100").expect("trimmed"), "100");
        assert_eq!(check("cleanup.policy", "compact, delete").expect("a list"), "compact,delete");
        assert_eq!(check("unclean.leader.election.enable", "TRUE").expect("any case"), "true");
        assert_eq!(check(LEADER_THROTTLED_REPLICAS, "0:1, 1:2").expect("pairs"), "0:1,1:2");
        assert_eq!(check(FOLLOWER_THROTTLED_REPLICAS, " * ").expect("all"), "*");
        assert_eq!(check(FOLLOWER_THROTTLED_REPLICAS, "").expect("none"), "");
        assert!(
            throttles("0:1,1:2", 1, 2) && !throttles("0:1,1:2", 1, 1) && throttles("*", 7, 3) && !throttles("", 0, 1)
        );
        assert_eq!(check("preallocate", "TRUE").expect("any case"), "true");
        // Kafka describes a DOUBLE as Java prints it.
        for (given, stored) in [("1", "1.0"), (".5", "0.5"), (" 5e-1", "0.5"), ("0.1234567890123", "0.1234567890123")] {
            assert_eq!(check("min.cleanable.dirty.ratio", given).expect(given), stored);
        }
        assert_eq!(java_double(0.0001), "1.0E-4");
        assert_eq!(java_double(0.00025), "2.5E-4");
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(check("remote.storage.enable", "FALSE").expect("off is fine"), "false");
        assert_eq!(check("segment.index.bytes", "4096").expect("an int"), "4096");
        assert!(matches!(check("retention.ms", "1\n2"), Err(TopicConfigError::ControlCharacter(_))));
        assert!(matches!(check("max.message.bytes", "2000000000"), Err(TopicConfigError::InvalidValue { .. })));
    }

    #[test]
    fn overrides_make_the_partition_settings() {
        let broker = broker();
        let plain = TopicSettings::of(&broker, &BTreeMap::new());
        assert_eq!(plain.log, LogConfig { batch_bytes_max: Some(broker.message_max_bytes), ..broker.log });
        assert_eq!(plain.min_insync_replicas, broker.min_insync_replicas);
        let overrides = check_all([
            ("retention.ms", Some("60000")),
            ("segment.bytes", Some("2097152")),
            ("max.message.bytes", Some("2000")),
            ("min.insync.replicas", Some("2")),
            ("compression.type", Some("zstd")),
        ])
        .expect("valid");
        let settings = TopicSettings::of(&broker, &overrides);
        assert_eq!(settings.log.retention_ms, 60_000);
        assert_eq!(settings.log.segment_bytes, 2_097_152);
        assert_eq!(settings.log.batch_bytes_max, Some(2000));
        assert_eq!(settings.log.compression, CompressionType::Zstd { level: ZSTD_LEVEL_DEFAULT });
        assert_eq!(settings.min_insync_replicas, 2);
        settings.log.validate().expect("an engine-valid config");
        let indexed = check_all([("segment.index.bytes", Some("4096"))]).expect("valid");
        assert_eq!(TopicSettings::of(&broker, &indexed).log.index_bytes_max, 4096);
        // The keys kept but not acted on change nothing a partition runs with.
        let kept =
            check_all(KEPT_NOT_ACTED_ON.iter().filter(|(name, _)| *name != REMOTE_STORAGE_ENABLE).map(|(name, _)| {
                let value = match topic_key(name).expect(name).kind {
                    ConfigType::Boolean => "true",
                    ConfigType::Double => "0.25",
                    _ => "5",
                };
                (*name, Some(value))
            }))
            .expect("valid");
        assert_eq!(kept.len(), KEPT_NOT_ACTED_ON.len() - 1);
        assert_eq!(TopicSettings::of(&broker, &kept), plain);
        let compacted = check_all([("cleanup.policy", Some("compact"))]).expect("valid");
        let settings = TopicSettings::of(&broker, &compacted);
        assert_eq!((settings.log.retention_ms, settings.log.retention_bytes), (-1, -1), "nothing deleted");
    }

    #[test]
    fn describe_names_the_source_and_synonyms_of_every_key() {
        let broker = broker();
        let overrides = check_all([("max.message.bytes", Some("2000"))]).expect("valid");
        let mut dynamic = DynamicBrokerConfigs::default();
        dynamic.default.insert("log.segment.bytes".to_string(), "2097152".to_string());
        let described = describe(&broker, &dynamic, &overrides);
        assert_eq!(described.len(), TOPIC_KEYS.len());
        let find = |name: &str| described.iter().find(|entry| entry.name == name).expect(name).clone();
        let max = find("max.message.bytes");
        assert_eq!((max.value.as_str(), max.source), ("2000", source::DYNAMIC_TOPIC_CONFIG));
        assert_eq!(
            max.synonyms,
            vec![
                ("max.message.bytes".to_string(), "2000".to_string(), source::DYNAMIC_TOPIC_CONFIG),
                ("message.max.bytes".to_string(), broker.message_max_bytes.to_string(), source::DEFAULT_CONFIG),
            ]
        );
        let retention = find("retention.ms");
        assert_eq!((retention.value.as_str(), retention.source), ("5000", source::STATIC_BROKER_CONFIG));
        let segment = find("segment.bytes");
        assert_eq!((segment.value.as_str(), segment.source), ("2097152", 3), "the dynamic default");
        assert_eq!(segment.synonyms.len(), 2, "{:?}", segment.synonyms);
        assert!(TOPIC_KEYS.windows(2).all(|pair| pair[0].name < pair[1].name), "sorted");
    }

    /// `compression.type` and the levels, as Kafka resolves them: a topic takes its own codec
    /// else the broker's, and each level its own else the broker's, whatever codec the broker
    /// itself has (static or dynamic).
    #[test]
    fn codecs_and_levels_come_from_the_topic_then_the_broker() {
        let properties = |pairs: &[(&str, &str)]| {
            Config::from_properties(&pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect())
                .expect("valid broker config")
        };
        let broker = properties(&[("compression.zstd.level", "10"), ("compression.gzip.level", " 4")]);
        assert_eq!(broker.log.compression, CompressionType::Producer, "the broker keeps producers' codecs");
        let topic = |broker: &Config, pairs: &[(&str, &str)]| {
            let overrides = check_all(pairs.iter().map(|(name, value)| (*name, Some(*value)))).expect("valid");
            TopicSettings::of(broker, &overrides).log.compression
        };
        assert_eq!(topic(&broker, &[("compression.type", "zstd")]), CompressionType::Zstd { level: 10 });
        assert_eq!(topic(&broker, &[("compression.type", "gzip")]), CompressionType::Gzip { level: 4 });
        assert_eq!(
            topic(&broker, &[("compression.type", "zstd"), ("compression.zstd.level", "-5")]),
            CompressionType::Zstd { level: -5 }
        );
        assert_eq!(topic(&broker, &[("compression.type", "lz4")]), CompressionType::Lz4);
        assert_eq!(topic(&broker, &[]), CompressionType::Producer);
        let described = describe(&broker, &DynamicBrokerConfigs::default(), &BTreeMap::new());
        let zstd = described.iter().find(|entry| entry.name == COMPRESSION_ZSTD_LEVEL).expect("described");
        assert_eq!((zstd.value.as_str(), zstd.source), ("10", source::STATIC_BROKER_CONFIG));
        // The broker's own codec, static, and a dynamic level over the static one.
        let snappy = properties(&[("compression.type", "snappy")]);
        assert_eq!(topic(&snappy, &[]), CompressionType::Snappy);
        let mut dynamic = DynamicBrokerConfigs::default();
        dynamic.default.insert("compression.gzip.level".to_string(), "7".to_string());
        let effective = dynamic.effective(&broker);
        assert_eq!(topic(&effective, &[("compression.type", "gzip")]), CompressionType::Gzip { level: 7 });
        dynamic.default.insert("compression.type".to_string(), "gzip".to_string());
        assert_eq!(topic(&dynamic.effective(&broker), &[]), CompressionType::Gzip { level: 7 });
        // Kafka's refusals at start-up too.
        let bad = BTreeMap::from([("compression.zstd.level".to_string(), "23".to_string())]);
        let refusal = Config::from_properties(&bad).expect_err("above 22").to_string();
        assert!(refusal.contains("Value must be no more than 22"), "{refusal}");
    }

    /// The keys kept but not acted on are described as Kafka 4.4 describes them: its defaults
    /// under their broker synonyms, or a broker's own value (static, then dynamic) over them.
    #[test]
    fn kept_keys_are_described_with_kafkas_defaults_and_synonyms() {
        let broker = Config::from_properties(&BTreeMap::from([(
            "log.cleaner.min.compaction.lag.ms".to_string(),
            " 1000".to_string(),
        )]))
        .expect("a kept key is a valid broker key");
        assert!(broker.warnings.is_empty(), "{:?}", broker.warnings);
        let mut dynamic = DynamicBrokerConfigs::default();
        dynamic.default.insert("log.preallocate".to_string(), "true".to_string());
        let overrides = check_all([("delete.retention.ms", Some("5"))]).expect("valid");
        let described = describe(&broker, &dynamic, &overrides);
        let find = |name: &str| described.iter().find(|entry| entry.name == name).expect(name).clone();
        for (name, default) in KEPT_NOT_ACTED_ON {
            let entry = find(name);
            if !["delete.retention.ms", "min.compaction.lag.ms", "preallocate"].contains(name) {
                assert_eq!((entry.value.as_str(), entry.source), (*default, source::DEFAULT_CONFIG), "{name}");
            }
        }
        // Observed against Kafka 4.4 (`kafka-configs --describe --all`).
        let delete = find("delete.retention.ms");
        assert_eq!(
            delete.synonyms,
            vec![
                ("delete.retention.ms".to_string(), "5".to_string(), source::DYNAMIC_TOPIC_CONFIG),
                ("log.cleaner.delete.retention.ms".to_string(), "86400000".to_string(), source::DEFAULT_CONFIG),
            ]
        );
        let min_lag = find("min.compaction.lag.ms");
        assert_eq!((min_lag.value.as_str(), min_lag.source), ("1000", source::STATIC_BROKER_CONFIG));
        let preallocate = find("preallocate");
        assert_eq!((preallocate.value.as_str(), preallocate.source), ("true", 3), "the dynamic default");
        assert_eq!(find("remote.storage.enable").synonyms, vec![]);
        assert_eq!(find("min.cleanable.dirty.ratio").kind, ConfigType::Double);
        // A bad static value is refused at start with the key named.
        let bad = BTreeMap::from([("log.cleaner.min.cleanable.ratio".to_string(), "2".to_string())]);
        let refusal = Config::from_properties(&bad).expect_err("above 1").to_string();
        assert!(refusal.contains("log.cleaner.min.cleanable.ratio") && refusal.contains("no more than 1"), "{refusal}");
    }

    /// Kafka's `LogConfig.validate`: `min.compaction.lag.ms` may not exceed
    /// `max.compaction.lag.ms`, whichever of the topic and the broker sets each.
    #[test]
    fn compaction_lags_are_checked_together_with_the_brokers_values_under_them() {
        let broker = broker();
        let mut dynamic = DynamicBrokerConfigs::default();
        let together = |dynamic: &DynamicBrokerConfigs, pairs: &[(&str, &str)]| {
            let overrides = check_all(pairs.iter().map(|(name, value)| (*name, Some(*value)))).expect("valid");
            check_together(&broker, dynamic, &overrides).map_err(|error| error.to_string())
        };
        assert_eq!(
            together(&dynamic, &[("min.compaction.lag.ms", "10"), ("max.compaction.lag.ms", "5")]),
            Err("conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)".to_string())
        );
        assert_eq!(together(&dynamic, &[("min.compaction.lag.ms", "5"), ("max.compaction.lag.ms", "5")]), Ok(()));
        assert_eq!(together(&dynamic, &[("min.compaction.lag.ms", "1000000")]), Ok(()), "under Kafka's max");
        dynamic.default.insert("log.cleaner.max.compaction.lag.ms".to_string(), "100".to_string());
        assert_eq!(
            together(&dynamic, &[("min.compaction.lag.ms", "1000")]),
            Err("conflict topic config setting min.compaction.lag.ms (1000) > max.compaction.lag.ms (100)".to_string()),
            "the broker's dynamic max under the topic's min"
        );
    }
}
