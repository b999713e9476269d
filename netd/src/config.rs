//! Broker configuration: a `server.properties`-style file with Kafka's key names where they exist,
//! Skua keys for what Kafka has no name for, `--override key=value`, and embedded defaults so the
//! broker runs with no file at all.
//!
//! Owns: parsing and validating configuration. Knows nothing of sockets or shards.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use engine::{FlushPolicy, LogConfig, WriteMode};

/// Every key this broker understands, with its default and meaning (printed by `--help`).
pub const KEYS: &[(&str, &str, &str)] = &[
    ("listeners", "PLAINTEXT://127.0.0.1:9092", "where to listen (PLAINTEXT only)"),
    ("advertised.listeners", "(listeners)", "the address clients are told to connect to"),
    ("node.id", "1", "this broker's id in Metadata responses"),
    ("log.dirs", "./data", "data directory (one directory; the first of a list is used)"),
    ("num.partitions", "1", "partitions of an auto-created topic or of CreateTopics with -1"),
    ("auto.create.topics.enable", "true", "create unknown topics on Metadata/Produce"),
    ("log.segment.bytes", "1073741824", "segment size before a roll"),
    ("log.roll.ms", "604800000", "segment age before a roll (log.roll.hours also accepted)"),
    ("log.retention.ms", "604800000", "time retention, -1 unlimited (log.retention.hours/minutes also accepted)"),
    ("log.retention.bytes", "-1", "size retention per partition, -1 unlimited"),
    ("log.retention.check.interval.ms", "300000", "how often retention runs"),
    ("log.flush.interval.messages", "(unset)", "with skua.fsync.policy=interval: sync after this many messages"),
    ("log.flush.interval.ms", "(unset)", "with skua.fsync.policy=interval: sync after this many ms"),
    ("message.max.bytes", "1048588", "largest record batch accepted"),
    (
        "log.message.timestamp.before.max.ms",
        "9223372036854775807",
        "how far in the past a record's timestamp may be (INVALID_TIMESTAMP beyond)",
    ),
    (
        "log.message.timestamp.after.max.ms",
        "3600000",
        "how far in the future a record's timestamp may be (INVALID_TIMESTAMP beyond)",
    ),
    ("socket.request.max.bytes", "104857600", "largest request frame accepted; larger closes the connection"),
    (
        "group.initial.rebalance.delay.ms",
        "3000",
        "how long a new group waits for more members before its first rebalance",
    ),
    ("group.min.session.timeout.ms", "6000", "smallest session.timeout.ms a consumer may ask for"),
    ("group.max.session.timeout.ms", "1800000", "largest session.timeout.ms a consumer may ask for"),
    ("offsets.retention.minutes", "10080", "committed offsets of an empty group are kept this long"),
    (
        "offsets.topic.num.partitions",
        "50",
        "partitions of the internal __consumer_offsets log (fixed once data exists)",
    ),
    ("offsets.topic.segment.bytes", "104857600", "segment size of the internal __consumer_offsets log"),
    ("skua.shard.count", "(cores)", "shard threads; each owns a share of the partitions (default: one per core)"),
    ("skua.write.mode", "direct", "segment writes: direct (O_DIRECT) or buffered"),
    (
        "skua.segment.recycle.max",
        "1",
        "segment files retention removed that each partition keeps to reuse as new segments (0: unlink them)",
    ),
    ("skua.fsync.policy", "fsync-before-ack", "fsync-before-ack or interval (Kafka's log.flush.interval.*)"),
    ("skua.inflight.requests.max", "32", "requests one connection may have in flight (pipelining)"),
];

#[derive(Clone, Debug)]
pub struct Config {
    pub listen_address: SocketAddr,
    pub advertised_host: String,
    pub advertised_port: u16,
    pub node_id: i32,
    pub data_dir: PathBuf,
    pub num_partitions: i32,
    pub auto_create_topics: bool,
    pub log: LogConfig,
    pub retention_check_interval_ms: u64,
    pub message_max_bytes: usize,
    pub socket_request_max_bytes: usize,
    pub shard_count: usize,
    pub write_mode: WriteMode,
    pub recycled_segments_per_log_max: usize,
    pub inflight_requests_max: usize,
    pub groups: crate::groups::GroupConfig,
    pub offsets_partitions: i32,
    pub offsets_segment_bytes: u64,
    pub timestamp_bounds: crate::produce_policy::TimestampBounds,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("line {line}: expected key=value, got {text:?}")]
    Syntax { line: usize, text: String },
    #[error("unknown configuration key {0:?} (see netd --help for the keys Skua understands)")]
    UnknownKey(String),
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

/// Parses `key=value` lines; `#` and `!` start comments, as in Java properties.
pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut values = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((key, value)) = line.split_once('=').or_else(|| line.split_once(':')) else {
            return Err(ConfigError::Syntax { line: index + 1, text: raw.to_string() });
        };
        values.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(values)
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.to_string(), reason: reason.into() }
}

fn number<T: std::str::FromStr>(values: &BTreeMap<String, String>, key: &str, default: T) -> Result<T, ConfigError> {
    match values.get(key) {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| invalid(key, format!("{text:?} is not a valid number"))),
    }
}

fn listener_address(key: &str, text: &str) -> Result<(String, u16), ConfigError> {
    let first = text.split(',').next().unwrap_or_default().trim();
    let address = first.strip_prefix("PLAINTEXT://").unwrap_or(first);
    let (host, port) = address.rsplit_once(':').ok_or_else(|| invalid(key, format!("{first:?} has no port")))?;
    let port = port.parse().map_err(|_| invalid(key, format!("bad port in {first:?}")))?;
    Ok((host.trim_start_matches('[').trim_end_matches(']').to_string(), port))
}

impl Config {
    /// Builds the configuration from properties (file, then overrides) on top of the defaults.
    pub fn from_properties(values: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let known: Vec<&str> = KEYS.iter().map(|(key, _, _)| *key).collect();
        let aliases = ["log.roll.hours", "log.retention.hours", "log.retention.minutes", "broker.id"];
        for key in values.keys() {
            if !known.contains(&key.as_str()) && !aliases.contains(&key.as_str()) {
                return Err(ConfigError::UnknownKey(key.clone()));
            }
        }
        let listeners = values.get("listeners").map_or("PLAINTEXT://127.0.0.1:9092", String::as_str);
        let (host, port) = listener_address("listeners", listeners)?;
        let bind_host = if host.is_empty() { "0.0.0.0".to_string() } else { host.clone() };
        let listen_address: SocketAddr = format!("{bind_host}:{port}")
            .parse()
            .map_err(|_| invalid("listeners", format!("{listeners:?} must name an IP address and port")))?;
        let (advertised_host, advertised_port) = match values.get("advertised.listeners") {
            Some(text) => listener_address("advertised.listeners", text)?,
            None if host.is_empty() || host == "0.0.0.0" => ("127.0.0.1".to_string(), port),
            None => (host, port),
        };
        let hours = |key: &str| -> Result<Option<i64>, ConfigError> {
            values.get(key).map(|_| number::<i64>(values, key, 0).map(|value| value * 3_600_000)).transpose()
        };
        let retention_ms = match values.get("log.retention.ms") {
            Some(_) => number(values, "log.retention.ms", 0i64)?,
            None => match values.get("log.retention.minutes") {
                Some(_) => number(values, "log.retention.minutes", 0i64)? * 60_000,
                None => hours("log.retention.hours")?.unwrap_or(engine::limits::RETENTION_MS_DEFAULT),
            },
        };
        let segment_ms = match values.get("log.roll.ms") {
            Some(_) => number(values, "log.roll.ms", 0i64)?,
            None => hours("log.roll.hours")?.unwrap_or(engine::limits::SEGMENT_MS_DEFAULT),
        };
        let flush_policy = match values.get("skua.fsync.policy").map(String::as_str) {
            None | Some("fsync-before-ack") => FlushPolicy::FsyncBeforeAck,
            Some("interval") => FlushPolicy::Interval {
                flush_messages: number(values, "log.flush.interval.messages", u64::MAX)?,
                flush_ms: number(values, "log.flush.interval.ms", i64::MAX)?,
            },
            Some(other) => {
                return Err(invalid("skua.fsync.policy", format!("{other:?} is not fsync-before-ack or interval")))
            }
        };
        let log = LogConfig {
            segment_bytes: number(values, "log.segment.bytes", engine::limits::SEGMENT_BYTES_DEFAULT)?,
            segment_ms,
            retention_ms,
            retention_bytes: number(values, "log.retention.bytes", -1i64)?,
            flush_policy,
            ..LogConfig::default()
        };
        log.validate().map_err(|error| invalid("log.*", error.to_string()))?;
        let write_mode = WriteMode::parse(values.get("skua.write.mode").map_or("direct", String::as_str))
            .map_err(|error| invalid("skua.write.mode", error.to_string()))?;
        let cores = std::thread::available_parallelism().map_or(1, |count| count.get());
        let shard_count = number(values, "skua.shard.count", cores)?;
        if !(1..=crate::shards::SHARD_COUNT_MAX).contains(&shard_count) {
            return Err(invalid(
                "skua.shard.count",
                format!("must be between 1 and {}", crate::shards::SHARD_COUNT_MAX),
            ));
        }
        let num_partitions = number(values, "num.partitions", 1i32)?;
        if num_partitions < 1 {
            return Err(invalid("num.partitions", "must be at least 1"));
        }
        let auto_create_topics = match values.get("auto.create.topics.enable").map(String::as_str) {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => return Err(invalid("auto.create.topics.enable", format!("{other:?} is not true or false"))),
        };
        let node_id = match values.get("node.id") {
            Some(_) => number(values, "node.id", 1)?,
            None => number(values, "broker.id", 1)?,
        };
        let message_max_bytes = number(values, "message.max.bytes", 1_048_588usize)?;
        if message_max_bytes > engine::limits::BATCH_BYTES_MAX {
            return Err(invalid("message.max.bytes", format!("at most {}", engine::limits::BATCH_BYTES_MAX)));
        }
        let groups = crate::groups::GroupConfig {
            initial_rebalance_delay_ms: number(values, "group.initial.rebalance.delay.ms", 3000i64)?.max(0),
            min_session_timeout_ms: number(values, "group.min.session.timeout.ms", 6000i32)?,
            max_session_timeout_ms: number(values, "group.max.session.timeout.ms", 1_800_000i32)?,
            offsets_retention_ms: number(values, "offsets.retention.minutes", 10_080i64)?.saturating_mul(60_000),
        };
        if groups.min_session_timeout_ms > groups.max_session_timeout_ms {
            return Err(invalid("group.min.session.timeout.ms", "must not exceed group.max.session.timeout.ms"));
        }
        let offsets_partitions = number(values, "offsets.topic.num.partitions", 50i32)?;
        if !(1..=crate::broker::PARTITIONS_PER_TOPIC_MAX).contains(&offsets_partitions) {
            return Err(invalid("offsets.topic.num.partitions", "must be between 1 and 10000"));
        }
        let offsets_segment_bytes = number(values, "offsets.topic.segment.bytes", 104_857_600u64)?;
        let timestamp_bounds = crate::produce_policy::TimestampBounds {
            before_max_ms: number(values, "log.message.timestamp.before.max.ms", i64::MAX)?,
            after_max_ms: number(values, "log.message.timestamp.after.max.ms", 3_600_000i64)?,
        };
        if timestamp_bounds.before_max_ms < 0 || timestamp_bounds.after_max_ms < 0 {
            return Err(invalid("log.message.timestamp.*.max.ms", "must be at least 0"));
        }
        let data_dir = values.get("log.dirs").map_or("./data", String::as_str).split(',').next().unwrap_or("./data");
        Ok(Config {
            listen_address,
            advertised_host,
            advertised_port,
            node_id,
            data_dir: PathBuf::from(data_dir.trim()),
            num_partitions,
            auto_create_topics,
            log,
            retention_check_interval_ms: number(values, "log.retention.check.interval.ms", 300_000u64)?,
            message_max_bytes,
            socket_request_max_bytes: number(values, "socket.request.max.bytes", 104_857_600usize)?,
            shard_count,
            write_mode,
            recycled_segments_per_log_max: number(
                values,
                "skua.segment.recycle.max",
                engine::limits::RECYCLED_SEGMENTS_PER_LOG_DEFAULT,
            )?,
            inflight_requests_max: number(values, "skua.inflight.requests.max", 32usize)?.max(1),
            groups,
            offsets_partitions,
            offsets_segment_bytes,
            timestamp_bounds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file() {
        let config = Config::from_properties(&BTreeMap::new()).expect("defaults");
        assert_eq!(config.listen_address.port(), 9092);
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert!(config.auto_create_topics);
        assert_eq!(config.num_partitions, 1);
        assert_eq!(config.log.flush_policy, FlushPolicy::FsyncBeforeAck);
    }

    #[test]
    fn kafka_keys_and_errors() {
        let values = parse_properties(
            "# comment\nlisteners=PLAINTEXT://127.0.0.1:19092\nlog.retention.hours=1\nnum.partitions=3\nlog.dirs=/tmp/a,/tmp/b\n",
        )
        .expect("parse");
        let config = Config::from_properties(&values).expect("valid");
        assert_eq!(config.listen_address.port(), 19092);
        assert_eq!(config.log.retention_ms, 3_600_000);
        assert_eq!(config.num_partitions, 3);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/a"));
        let mut bad = values.clone();
        bad.insert("no.such.key".into(), "1".into());
        assert!(matches!(Config::from_properties(&bad), Err(ConfigError::UnknownKey(_))));
        let mut bad = values;
        bad.insert("num.partitions".into(), "x".into());
        assert!(matches!(Config::from_properties(&bad), Err(ConfigError::Invalid { .. })));
        assert!(matches!(parse_properties("just words"), Err(ConfigError::Syntax { line: 1, .. })));
    }
}
