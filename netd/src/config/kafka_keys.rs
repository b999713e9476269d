//! The configuration keys Apache Kafka's broker and controller know (`kafka_keys.txt`, generated
//! from Kafka's jars by `scripts/kafka-config-keys.sh`): netd accepts those it has no use for,
//! with a warning, so that a Kafka `server.properties` starts a Skua node; a key neither knows
//! is still refused, as a typo must not pass unnoticed.
//!
//! Owns: the list and the question "does Kafka know this key". Knows nothing of what Skua does
//! with a key.

/// Kafka's key names, one a line, `#` lines are comments.
const KAFKA_KEYS: &str = include_str!("kafka_keys.txt");

/// Kafka's per-listener prefix: `listener.name.<listener>.<key>` sets `<key>` for one listener.
const LISTENER_PREFIX: &str = "listener.name.";

fn names() -> impl Iterator<Item = &'static str> {
    KAFKA_KEYS.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#'))
}

/// Whether Kafka 4.4 knows `key`, also as a per-listener override of a key it knows.
pub fn is_kafka_key(key: &str) -> bool {
    let known = |key: &str| names().any(|name| name == key);
    known(key)
        || key
            .strip_prefix(LISTENER_PREFIX)
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(listener, key)| !listener.is_empty() && known(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_and_holds_kafka_keys() {
        let names: Vec<&str> = names().collect();
        assert!(names.len() > 300, "Kafka 4.4 has 379 keys; got {}", names.len());
        assert!(names.windows(2).all(|pair| pair[0] < pair[1]), "sorted, no repeats");
        for key in ["num.network.threads", "log.cleaner.threads", "process.roles", "controller.quorum.voters"] {
            assert!(is_kafka_key(key), "{key}");
        }
        assert!(is_kafka_key("listener.name.controller.ssl.keystore.location"));
        assert!(!is_kafka_key("listener.name.controller.no.such.key"));
        assert!(!is_kafka_key("no.such.key"));
        assert!(!is_kafka_key("skua.shard.count"));
    }
}
