//! Dynamic broker configs: the broker keys that change at runtime (the log defaults every topic
//! without its own setting inherits), how each value is checked, and the broker configuration
//! they make together with the static one.
//!
//! Owns: [`DynamicBrokerConfigs`] (the cluster-wide default set and this broker's own set, as
//! Kafka keeps them), [`check`] and [`DynamicBrokerConfigs::effective`].
//!
//! Must not know: where the sets are stored (a file on one node, the metadata log in a cluster),
//! shards, requests. The keys are the broker synonyms of `config::topic`'s keys, so a topic's
//! value and its broker default are checked by the same rule; besides them, the replication
//! quotas (`leader.replication.throttled.rate`, `follower.replication.throttled.rate`, bytes per
//! second), which the fetch paths read (`runtime::replication_quota`).

use std::collections::BTreeMap;

use engine::{FlushPolicy, TimestampType};

use super::topic::{self, TopicConfigError};
use super::Config;

/// Kafka's `ConfigSource` codes of dynamic broker configs.
pub const SOURCE_DYNAMIC_BROKER_CONFIG: i8 = 2;
pub const SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;

/// The dynamic broker configs a broker runs with: the cluster-wide default (Kafka's
/// `--entity-default`) and its own (`--entity-name <id>`), which wins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DynamicBrokerConfigs {
    pub default: BTreeMap<String, String>,
    pub own: BTreeMap<String, String>,
}

/// Why a dynamic broker config is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerConfigRefusal {
    /// A value Kafka refuses too (Kafka answers INVALID_REQUEST with its wording).
    InvalidValue(String),
    /// A key Skua does not change at runtime.
    NotDynamic(String),
}

/// Kafka's replication quotas (`QuotaConfig`), bytes per second: a leader's serving of, and a
/// follower's copying of, the throttled replicas (`*.replication.throttled.replicas`).
pub const LEADER_THROTTLED_RATE: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_THROTTLED_RATE: &str = "follower.replication.throttled.rate";

/// The replication rates: dynamic broker keys that are no topic key's default.
pub const BROKER_ONLY_KEYS: &[&str] = &[FOLLOWER_THROTTLED_RATE, LEADER_THROTTLED_RATE];

/// Kafka's connection limits (`SocketServerConfigs`, INT): connections the acceptor admits in
/// all, and from one address. Dynamic as in Kafka: a change applies to the next connections.
pub const MAX_CONNECTIONS: &str = "max.connections";
pub const MAX_CONNECTIONS_PER_IP: &str = "max.connections.per.ip";
/// `host:count,…`: addresses with a limit of their own (`crate::config::connection_overrides`).
pub const MAX_CONNECTIONS_PER_IP_OVERRIDES: &str = "max.connections.per.ip.overrides";
/// Connections the acceptor takes per second, broker-wide (INT; past it the acceptor waits).
pub const MAX_CONNECTION_CREATION_RATE: &str = "max.connection.creation.rate";
pub const CONNECTION_KEYS: &[&str] =
    &[MAX_CONNECTIONS, MAX_CONNECTIONS_PER_IP, MAX_CONNECTIONS_PER_IP_OVERRIDES, MAX_CONNECTION_CREATION_RATE];

/// How long an idempotent producer's state outlives its last write (Kafka's INT, at least 1).
pub const PRODUCER_ID_EXPIRATION_MS: &str = "producer.id.expiration.ms";

/// A replication rate when none is set: Kafka's `Long.MAX_VALUE`, no throttle.
pub const THROTTLED_RATE_DEFAULT: i64 = i64::MAX;

/// The topic key a dynamic broker key is the default of.
fn topic_key_of(broker_key: &str) -> Option<&'static topic::TopicKey> {
    if broker_key == topic::NO_BROKER_SYNONYM {
        return None;
    }
    topic::TOPIC_KEYS.iter().find(|key| key.broker_synonym == broker_key)
}

/// Whether `key` is a broker key Skua changes at runtime.
pub fn is_dynamic(key: &str) -> bool {
    topic_key_of(key).is_some()
        || BROKER_ONLY_KEYS.contains(&key)
        || CONNECTION_KEYS.contains(&key)
        || key == PRODUCER_ID_EXPIRATION_MS
}

/// Checks one dynamic broker key and value: the normalised value to store.
pub fn check(key: &str, value: &str) -> Result<String, BrokerConfigRefusal> {
    let invalid = |reason: &str| {
        BrokerConfigRefusal::InvalidValue(format!("Invalid value {value} for configuration {key}: {reason}"))
    };
    if BROKER_ONLY_KEYS.contains(&key) {
        // Kafka's LONG, at least 0 (its messages).
        let rate: i64 = value.trim().parse().map_err(|_| invalid("Not a number of type LONG"))?;
        if rate < 0 {
            return Err(invalid("Value must be at least 0"));
        }
        return Ok(rate.to_string());
    }
    if key == PRODUCER_ID_EXPIRATION_MS {
        let ms: i32 = value.trim().parse().map_err(|_| invalid("Not a number of type INT"))?;
        if ms < 1 {
            return Err(invalid("Value must be at least 1"));
        }
        return Ok(ms.to_string());
    }
    if key == MAX_CONNECTIONS_PER_IP_OVERRIDES {
        let overrides = crate::config::connection_overrides(value).map_err(|reason| invalid(&reason))?;
        // Stored resolved (names become their addresses here, once): applying the value later,
        // on a shard thread, never waits for a name lookup.
        return Ok(crate::config::connection_overrides_text(&overrides));
    }
    if CONNECTION_KEYS.contains(&key) {
        let limit: i32 = value.trim().parse().map_err(|_| invalid("Not a number of type INT"))?;
        return match limit {
            ..0 => Err(invalid("Value must be at least 0")),
            // Kafka's words for 0 (its dynamic validation's). Kafka takes max.connections.per.ip=0
            // when overrides are set in the same configuration; Skua checks one key at a time and
            // refuses it at runtime (a configuration file may set it with overrides).
            0 if key == MAX_CONNECTIONS || key == MAX_CONNECTION_CREATION_RATE => {
                Err(BrokerConfigRefusal::InvalidValue(format!(
                    "Invalid value org.apache.kafka.common.config.ConfigException: Invalid {key} 0 for configuration \
                 Invalid dynamic configuration"
                )))
            }
            0 => Err(BrokerConfigRefusal::InvalidValue(format!(
                "requirement failed: {key} can be set to zero only if max.connections.per.ip.overrides property is set."
            ))),
            limit => Ok(limit.to_string()),
        };
    }
    let Some(topic_key) = topic_key_of(key) else {
        return Err(BrokerConfigRefusal::NotDynamic(key.to_string()));
    };
    topic::check(topic_key.name, value).map_err(|error| match error {
        // Kafka names the broker key it was given.
        TopicConfigError::InvalidValue { value, reason, .. } => {
            BrokerConfigRefusal::InvalidValue(format!("Invalid value {value} for configuration {key}: {reason}"))
        }
        other => BrokerConfigRefusal::InvalidValue(other.to_string().replace(topic_key.name, key)),
    })
}

impl DynamicBrokerConfigs {
    /// `key`'s dynamic values as DescribeConfigs synonyms, most specific first: this broker's
    /// own, then the cluster-wide default.
    pub fn synonyms(&self, key: &str) -> Vec<(String, String, i8)> {
        let own = self.own.get(key).map(|value| (key.to_string(), value.clone(), SOURCE_DYNAMIC_BROKER_CONFIG));
        let default =
            self.default.get(key).map(|value| (key.to_string(), value.clone(), SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG));
        own.into_iter().chain(default).collect()
    }

    /// The dynamic value of `key` and its source (this broker's own, else the default).
    pub fn value(&self, key: &str) -> Option<(&str, i8)> {
        if let Some(value) = self.own.get(key) {
            return Some((value, SOURCE_DYNAMIC_BROKER_CONFIG));
        }
        self.default.get(key).map(|value| (value.as_str(), SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG))
    }

    /// A replication rate (`LEADER_THROTTLED_RATE`, `FOLLOWER_THROTTLED_RATE`), bytes per second:
    /// this broker's, else the cluster default, else unthrottled.
    pub fn throttled_rate_bytes(&self, key: &str) -> i64 {
        self.value(key).and_then(|(value, _)| value.parse().ok()).unwrap_or(THROTTLED_RATE_DEFAULT)
    }

    /// The broker configuration `config` becomes with these dynamic values applied. A stored
    /// value that no longer passes [`check`] is left out with an error line.
    pub fn effective(&self, config: &Config) -> Config {
        let mut effective = config.clone();
        if self.default.is_empty() && self.own.is_empty() {
            return effective;
        }
        let valid = |key: &str| {
            let (value, _) = self.value(key)?;
            match check(key, value) {
                Ok(value) => Some(value),
                Err(error) => {
                    tracing::error!(key, ?error, "a stored dynamic broker config is not valid; the static one applies");
                    None
                }
            }
        };
        let number = |key: &str| valid(key).and_then(|value| value.parse::<i64>().ok());
        let log = &mut effective.log;
        if let Some(value) = number("log.retention.ms") {
            log.retention_ms = value;
        }
        if let Some(value) = number("log.retention.bytes") {
            log.retention_bytes = value;
        }
        if let Some(value) = number("log.segment.bytes") {
            log.segment_bytes = value.unsigned_abs();
        }
        if let Some(value) = number("log.roll.ms") {
            log.segment_ms = value;
        }
        if let Some(value) = number("log.roll.jitter.ms") {
            log.segment_jitter_ms = value;
        }
        if let Some(value) = number("log.index.interval.bytes") {
            log.index_interval_bytes = value.unsigned_abs();
        }
        if let Some(value) = number("log.index.size.max.bytes") {
            log.index_bytes_max = value.unsigned_abs();
        }
        let (flush_messages, flush_ms) = (number("log.flush.interval.messages"), number("log.flush.interval.ms"));
        if flush_messages.is_some() || flush_ms.is_some() {
            let (messages, ms) = match log.flush_policy {
                FlushPolicy::Interval { flush_messages, flush_ms } => (flush_messages, flush_ms),
                FlushPolicy::FsyncBeforeAck => (u64::MAX, i64::MAX),
            };
            log.flush_policy = FlushPolicy::Interval {
                flush_messages: flush_messages.map_or(messages, i64::unsigned_abs),
                flush_ms: flush_ms.unwrap_or(ms),
            };
        }
        // The dynamic codec, else the static one; each level the dynamic one, else the static.
        let kind = valid("compression.type").unwrap_or_else(|| topic::compression_name(log.compression).to_string());
        let level = |key: &str, static_level: i32| {
            number(key).and_then(|level| i32::try_from(level).ok()).unwrap_or(static_level)
        };
        effective.compression_zstd_level = level("compression.zstd.level", config.compression_zstd_level);
        effective.compression_gzip_level = level("compression.gzip.level", config.compression_gzip_level);
        let log = &mut effective.log;
        log.compression = topic::compression(&kind, effective.compression_zstd_level, effective.compression_gzip_level);
        if let Some(kind) = valid("log.message.timestamp.type") {
            log.timestamp_type =
                if kind == "LogAppendTime" { TimestampType::LogAppendTime } else { TimestampType::CreateTime };
        }
        if let Some(value) = number("log.message.timestamp.before.max.ms") {
            log.timestamp_before_max_ms = value;
        }
        if let Some(value) = number("log.message.timestamp.after.max.ms") {
            log.timestamp_after_max_ms = value;
        }
        if valid("log.cleanup.policy").is_some_and(|policy| !policy.split(',').any(|item| item == "delete")) {
            log.retention_ms = -1;
            log.retention_bytes = -1;
        }
        if let Some(value) = number(topic::MAX_DECOMPRESSED_MESSAGE_BYTES).and_then(|value| usize::try_from(value).ok())
        {
            effective.log.decompressed_record_bytes_max = value;
        }
        if let Some(value) = number("message.max.bytes").and_then(|value| usize::try_from(value).ok()) {
            effective.message_max_bytes = value;
        }
        if let Some(value) = number("min.insync.replicas").and_then(|value| i32::try_from(value).ok()) {
            effective.min_insync_replicas = value;
        }
        if let Some(value) = number(MAX_CONNECTIONS) {
            effective.connections_max = value.unsigned_abs();
        }
        if let Some(value) = number(MAX_CONNECTIONS_PER_IP) {
            effective.connections_per_ip_max = value.unsigned_abs();
        }
        if let Some(value) = number(PRODUCER_ID_EXPIRATION_MS) {
            effective.producer_id_expiration_ms = value;
        }
        if let Some(value) = number(MAX_CONNECTION_CREATION_RATE) {
            effective.connection_creation_rate_max = value.unsigned_abs();
        }
        if let Some(text) = valid(MAX_CONNECTIONS_PER_IP_OVERRIDES) {
            match crate::config::connection_overrides(&text) {
                Ok(overrides) => effective.connections_per_ip_overrides = overrides,
                Err(reason) => tracing::error!(%reason, "stored max.connections.per.ip.overrides no longer apply"),
            }
        }
        for key in topic::kept_with_broker_synonym() {
            if let Some(value) = valid(key.broker_synonym) {
                effective.kept_log_configs.insert(key.broker_synonym.to_string(), value);
            }
        }
        effective
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_keys_are_checked_by_their_topic_rule_with_kafkas_message() {
        assert_eq!(check("log.retention.ms", " 3600000"), Ok("3600000".to_string()));
        assert_eq!(
            check("log.retention.ms", "abc"),
            Err(BrokerConfigRefusal::InvalidValue(
                "Invalid value abc for configuration log.retention.ms: Not a number of type LONG".to_string()
            ))
        );
        assert_eq!(check("log.dirs", "/tmp"), Err(BrokerConfigRefusal::NotDynamic("log.dirs".to_string())));
        assert_eq!(check("unclean.leader.election.enable", "TRUE"), Ok("true".to_string()));
        assert!(is_dynamic("log.segment.bytes") && is_dynamic("message.max.bytes") && !is_dynamic("retention.ms"));
        assert!(is_dynamic(LEADER_THROTTLED_RATE) && !is_dynamic(""));
        // Observed against Kafka 4.4 (`kafka-configs --alter --entity-type brokers`).
        assert_eq!(check(LEADER_THROTTLED_RATE, " 7"), Ok("7".to_string()));
        for (value, message) in [
            ("-1", "Invalid value -1 for configuration leader.replication.throttled.rate: Value must be at least 0"),
            ("1.5", "Invalid value 1.5 for configuration leader.replication.throttled.rate: Not a number of type LONG"),
        ] {
            assert_eq!(
                check(LEADER_THROTTLED_RATE, value),
                Err(BrokerConfigRefusal::InvalidValue(message.to_string()))
            );
        }
        let mut dynamic = DynamicBrokerConfigs::default();
        assert_eq!(dynamic.throttled_rate_bytes(FOLLOWER_THROTTLED_RATE), i64::MAX);
        dynamic.default.insert(FOLLOWER_THROTTLED_RATE.to_string(), "500".to_string());
        assert_eq!(dynamic.throttled_rate_bytes(FOLLOWER_THROTTLED_RATE), 500);
    }

    #[test]
    fn this_brokers_own_value_wins_over_the_default_and_both_over_the_static_one() {
        let config = Config::from_properties(&BTreeMap::new()).expect("defaults");
        let mut dynamic = DynamicBrokerConfigs::default();
        assert_eq!(dynamic.effective(&config).log, config.log);
        dynamic.default.insert("log.retention.ms".into(), "60000".into());
        dynamic.default.insert("log.segment.bytes".into(), "2097152".into());
        dynamic.own.insert("log.segment.bytes".into(), "4194304".into());
        dynamic.default.insert("message.max.bytes".into(), "5000".into());
        let effective = dynamic.effective(&config);
        assert_eq!(effective.log.retention_ms, 60_000);
        assert_eq!(effective.log.segment_bytes, 4_194_304);
        assert_eq!(effective.message_max_bytes, 5000);
        assert_eq!(dynamic.value("log.segment.bytes"), Some(("4194304", SOURCE_DYNAMIC_BROKER_CONFIG)));
        assert_eq!(dynamic.value("log.retention.ms"), Some(("60000", SOURCE_DYNAMIC_DEFAULT_BROKER_CONFIG)));
    }
}
