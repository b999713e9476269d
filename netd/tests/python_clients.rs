//! confluent-kafka (librdkafka 2.x) and kafka-python against the real broker binary: idempotent
//! producers with acks=all, 10,000 messages of varied sizes and keys, null keys and values,
//! headers, `assign()` consumers reading everything back in order, ListOffsets by timestamp,
//! AdminClient create/delete topics. The Python side is `tests/python/clients.py`; the venv is made
//! by scripts/test-deps.sh.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{run, Broker};

fn check(name: &str) {
    check_with(name, &[]);
}

/// Runs the check `name` against a broker started with `overrides` (key=value).
fn check_with(name: &str, overrides: &[&str]) {
    let broker = Broker::start(overrides);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/clients.py");
    let output = run(Command::new(common::python()).arg(script).arg(broker.bootstrap()).arg(name), b"");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&format!("{name}: ok")), "{stdout}\n{}", broker.log());
}

#[test]
fn confluent_kafka() {
    check("confluent");
}

#[test]
fn kafka_python() {
    check("kafka-python");
}

/// `message.timestamp.type=LogAppendTime`, set at creation and changed back with AlterConfigs,
/// as confluent-kafka's producer and consumer see it.
#[test]
fn log_append_time_topics_stamp_the_append_time() {
    check("log-append-time");
}

/// `message.timestamp.before.max.ms` / `after.max.ms` per topic, at creation and changed at
/// runtime, as confluent-kafka's producer sees them (INVALID_TIMESTAMP beyond them).
#[test]
fn topic_timestamp_bounds_refuse_records_too_far_from_the_brokers_clock() {
    check("timestamp-bounds");
}

/// `min.insync.replicas=2` (the topic's, and the broker's) on one-replica topics: acks=all is
/// taken, as Kafka 4.4 takes it (its effective minimum is at most the replica count).
#[test]
fn min_insync_above_the_replica_count_takes_acks_all() {
    check_with("min-insync", &["min.insync.replicas=2"]);
}
