//! Workloads: the OpenMessaging Benchmark workload fields (read from OMB-style YAML files or set
//! by flags) plus the Kafka producer settings a run needs.
//!
//! Owns: the field names and defaults, a reader for the flat `key: value` YAML OMB workload
//! files use (comments, quotes; no nesting, which OMB workloads do not have), and validation
//! with clear errors. Knows nothing of clients.

use std::collections::BTreeMap;
use std::path::Path;

/// Longest run accepted (test duration plus warm-up): a load loop is always bounded.
pub const RUN_MINUTES_MAX: f64 = 24.0 * 60.0;
/// Largest message accepted (Kafka's default `message.max.bytes` is about 1 MiB).
pub const MESSAGE_BYTES_MAX: usize = 1 << 20;
/// Smallest message: 8 bytes carry the intended send time for end-to-end latency.
pub const MESSAGE_BYTES_MIN: usize = 8;
/// Producers, consumers and topics per run.
pub const CLIENTS_MAX: usize = 1024;
pub const TOPICS_MAX: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyDistributor {
    /// OMB `NO_KEY`: null keys (the client's sticky partitioner spreads them).
    NoKey,
    /// OMB `KEY_ROUND_ROBIN`: keys cycle so consecutive messages go to consecutive partitions.
    RoundRobin,
    /// OMB `RANDOM_NANO`: a random key per message.
    Random,
}

impl KeyDistributor {
    pub fn parse(text: &str) -> Result<KeyDistributor, String> {
        match text.to_ascii_uppercase().replace('-', "_").as_str() {
            "NO_KEY" | "NONE" => Ok(KeyDistributor::NoKey),
            "KEY_ROUND_ROBIN" | "ROUND_ROBIN" => Ok(KeyDistributor::RoundRobin),
            "RANDOM_NANO" | "RANDOM" => Ok(KeyDistributor::Random),
            other => Err(format!("keyDistributor {other:?}: expected NO_KEY, KEY_ROUND_ROBIN or RANDOM_NANO")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KeyDistributor::NoKey => "NO_KEY",
            KeyDistributor::RoundRobin => "KEY_ROUND_ROBIN",
            KeyDistributor::Random => "RANDOM_NANO",
        }
    }
}

/// One benchmark workload.
#[derive(Clone, Debug)]
pub struct Workload {
    pub name: String,
    pub topics: usize,
    pub partitions_per_topic: i32,
    pub message_size: usize,
    pub producers_per_topic: usize,
    /// Messages per second over all producers; 0 is as fast as possible.
    pub producer_rate: f64,
    pub subscriptions_per_topic: usize,
    pub consumer_per_subscription: usize,
    /// Produce this much before consumers start (a catch-up read); 0 for none.
    pub consumer_backlog_size_gb: f64,
    pub key_distributor: KeyDistributor,
    pub test_duration_minutes: f64,
    pub warmup_duration_minutes: f64,
    // Kafka producer settings (not OMB workload fields; OMB puts them in its driver file).
    pub acks: String,
    pub batch_size: usize,
    pub linger_ms: u64,
    pub compression: String,
    pub idempotence: bool,
}

impl Default for Workload {
    fn default() -> Workload {
        Workload {
            name: "flags".to_string(),
            topics: 1,
            partitions_per_topic: 16,
            message_size: 1024,
            producers_per_topic: 1,
            producer_rate: 0.0,
            subscriptions_per_topic: 1,
            consumer_per_subscription: 1,
            consumer_backlog_size_gb: 0.0,
            key_distributor: KeyDistributor::NoKey,
            test_duration_minutes: 1.0,
            warmup_duration_minutes: 0.0,
            acks: "all".to_string(),
            batch_size: 131_072,
            linger_ms: 1,
            compression: "none".to_string(),
            idempotence: true,
        }
    }
}

/// Parses the flat `key: value` YAML of OMB workload files.
pub fn parse_flat_yaml(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut values = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = match raw.find(" #") {
            Some(at) => &raw[..at],
            None => raw,
        };
        let line = line.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed == "---" {
            continue;
        }
        if line.starts_with(char::is_whitespace) || trimmed.starts_with('-') {
            return Err(format!("line {}: nested YAML is not supported in workload files: {raw:?}", index + 1));
        }
        let Some((key, value)) = trimmed.split_once(':') else {
            return Err(format!("line {}: expected `key: value`, got {raw:?}", index + 1));
        };
        let value = value.trim().trim_matches('"').trim_matches('\'').to_string();
        values.insert(key.trim().to_string(), value);
    }
    Ok(values)
}

fn number<T: std::str::FromStr>(key: &str, text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("{key}: {text:?} is not a valid number"))
}

impl Workload {
    /// Reads an OMB-style workload file.
    pub fn from_file(path: &Path) -> Result<Workload, String> {
        let text = std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
        let values = parse_flat_yaml(&text).map_err(|error| format!("{}: {error}", path.display()))?;
        let mut workload = Workload::default();
        for (key, value) in &values {
            workload.set(key, value).map_err(|error| format!("{}: {error}", path.display()))?;
        }
        workload.validate()?;
        Ok(workload)
    }

    /// Sets one field by its OMB name (or the Kafka setting's name).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "name" => self.name = value.to_string(),
            "topics" => self.topics = number(key, value)?,
            "partitionsPerTopic" => self.partitions_per_topic = number(key, value)?,
            "messageSize" => self.message_size = number(key, value)?,
            "producersPerTopic" => self.producers_per_topic = number(key, value)?,
            "producerRate" => self.producer_rate = number(key, value)?,
            "subscriptionsPerTopic" => self.subscriptions_per_topic = number(key, value)?,
            "consumerPerSubscription" => self.consumer_per_subscription = number(key, value)?,
            "consumerBacklogSizeGB" => self.consumer_backlog_size_gb = number(key, value)?,
            "keyDistributor" => self.key_distributor = KeyDistributor::parse(value)?,
            "testDurationMinutes" => self.test_duration_minutes = number(key, value)?,
            "warmupDurationMinutes" => self.warmup_duration_minutes = number(key, value)?,
            "acks" => self.acks = value.to_string(),
            "batchSize" | "batch.size" => self.batch_size = number(key, value)?,
            "lingerMs" | "linger.ms" => self.linger_ms = number(key, value)?,
            "compression" | "compression.type" => self.compression = value.to_string(),
            "idempotence" | "enable.idempotence" => {
                self.idempotence = match value {
                    "true" => true,
                    "false" => false,
                    other => return Err(format!("{key}: {other:?} is not true or false")),
                }
            }
            // OMB fields Skua's loadgen does not use; accepted so OMB files load unchanged.
            "payloadFile" | "useRandomizedPayloads" | "randomBytesRatio" | "randomizedPayloadPoolSize" => {}
            other => return Err(format!("unknown workload field {other:?}")),
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), String> {
        let check = |ok: bool, message: &str| if ok { Ok(()) } else { Err(message.to_string()) };
        check((1..=TOPICS_MAX).contains(&self.topics), "topics must be between 1 and 10000")?;
        check((1..=10_000).contains(&self.partitions_per_topic), "partitionsPerTopic must be between 1 and 10000")?;
        check(
            (MESSAGE_BYTES_MIN..=MESSAGE_BYTES_MAX).contains(&self.message_size),
            "messageSize must be between 8 and 1048576 bytes",
        )?;
        check(
            (1..=CLIENTS_MAX).contains(&(self.producers_per_topic * self.topics)),
            "producersPerTopic × topics must be between 1 and 1024",
        )?;
        check(
            self.subscriptions_per_topic * self.consumer_per_subscription * self.topics <= CLIENTS_MAX,
            "consumers (subscriptionsPerTopic × consumerPerSubscription × topics) must be at most 1024",
        )?;
        check(self.producer_rate >= 0.0 && self.producer_rate.is_finite(), "producerRate must be ≥ 0 (0 = max)")?;
        check(self.consumer_backlog_size_gb >= 0.0, "consumerBacklogSizeGB must be ≥ 0")?;
        check(self.test_duration_minutes > 0.0, "testDurationMinutes must be > 0")?;
        check(self.warmup_duration_minutes >= 0.0, "warmupDurationMinutes must be ≥ 0")?;
        check(
            self.test_duration_minutes + self.warmup_duration_minutes <= RUN_MINUTES_MAX,
            "testDurationMinutes + warmupDurationMinutes must be at most 1440 (24 h)",
        )?;
        check(["0", "1", "all", "-1"].contains(&self.acks.as_str()), "acks must be 0, 1 or all")?;
        check(
            ["none", "gzip", "snappy", "lz4", "zstd"].contains(&self.compression.as_str()),
            "compression must be none, gzip, snappy, lz4 or zstd",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_omb_workload_file() {
        let text = "name: 1 topic / 16 partitions / 1kb\n\ntopics: 1\npartitionsPerTopic: 16\nmessageSize: 1024\n\
                    payloadFile: \"payload/payload-1Kb.data\"\nsubscriptionsPerTopic: 1\nconsumerPerSubscription: 1\n\
                    producersPerTopic: 1\nproducerRate: 50000 # msgs/s\nconsumerBacklogSizeGB: 0\n\
                    keyDistributor: KEY_ROUND_ROBIN\ntestDurationMinutes: 15\n";
        let dir = tempfile_dir();
        let path = dir.join("w.yaml");
        std::fs::write(&path, text).expect("write");
        let workload = Workload::from_file(&path).expect("valid");
        assert_eq!(workload.name, "1 topic / 16 partitions / 1kb");
        assert_eq!((workload.partitions_per_topic, workload.message_size), (16, 1024));
        assert_eq!(workload.producer_rate, 50_000.0);
        assert_eq!(workload.key_distributor, KeyDistributor::RoundRobin);
        assert_eq!(workload.test_duration_minutes, 15.0);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("loadgen-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn bad_input_gets_clear_errors() {
        assert!(parse_flat_yaml("a:\n  nested: 1\n").expect_err("an error").contains("nested"));
        assert!(parse_flat_yaml("no colon here").expect_err("an error").contains("key: value"));
        let mut workload = Workload::default();
        assert!(workload.set("messageSize", "big").expect_err("an error").contains("not a valid number"));
        assert!(workload.set("bogus", "1").expect_err("an error").contains("unknown workload field"));
        workload.message_size = 4;
        assert!(workload.validate().expect_err("an error").contains("messageSize"));
        let mut workload = Workload { test_duration_minutes: 2000.0, ..Workload::default() };
        assert!(workload.validate().expect_err("an error").contains("24 h"));
        workload.test_duration_minutes = 1.0;
        workload.acks = "2".into();
        assert!(workload.validate().expect_err("an error").contains("acks"));
    }
}
