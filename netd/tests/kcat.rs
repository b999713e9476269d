//! librdkafka, through kcat, against the real broker binary: metadata listing, keyed messages to
//! a 3-partition topic with every codec consumed back exactly, and restarts (SIGTERM and SIGKILL)
//! keeping every acknowledged message at the same offset.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{run, tool, Broker};

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

fn kcat(broker: &Broker) -> Command {
    let mut command = Command::new(tool("kcat"));
    command.arg("-b").arg(broker.bootstrap());
    command
}

/// Produces `count` keyed messages with acks=all; returns (key, value) in order.
fn produce(broker: &Broker, topic: &str, codec: &str, count: usize) -> Vec<(String, String)> {
    let messages: Vec<(String, String)> = (0..count)
        .map(|index| (format!("key-{}", index % 17), format!("{codec}-value-{index}-{}", "x".repeat(index % 300))))
        .collect();
    let input: String = messages.iter().map(|(key, value)| format!("{key}\t{value}\n")).collect();
    run(
        kcat(broker).args(["-P", "-t", topic, "-K", "\t", "-z", codec, "-X", "acks=all", "-X", "linger.ms=5"]),
        input.as_bytes(),
    );
    messages
}

/// Consumes a whole topic: partition → [(offset, key, value)].
fn consume(broker: &Broker, topic: &str) -> BTreeMap<i32, Vec<(i64, String, String)>> {
    let output = run(kcat(broker).args(["-C", "-t", topic, "-e", "-q", "-f", "%p\t%o\t%k\t%s\n"]), b"");
    let mut partitions: BTreeMap<i32, Vec<(i64, String, String)>> = BTreeMap::new();
    for line in String::from_utf8(output.stdout).expect("utf8").lines() {
        let fields: Vec<&str> = line.splitn(4, '\t').collect();
        assert_eq!(fields.len(), 4, "line {line:?}");
        partitions.entry(fields[0].parse().expect("partition")).or_default().push((
            fields[1].parse().expect("offset"),
            fields[2].to_string(),
            fields[3].to_string(),
        ));
    }
    partitions
}

fn check_round_trip(sent: &[(String, String)], received: &BTreeMap<i32, Vec<(i64, String, String)>>) {
    let total: usize = received.values().map(Vec::len).sum();
    assert_eq!(total, sent.len(), "every message consumed exactly once");
    for (partition, messages) in received {
        for (index, (offset, _, _)) in messages.iter().enumerate() {
            assert_eq!(*offset, index as i64, "partition {partition}: offsets contiguous from 0");
        }
        // Per key, values arrive in the order they were produced (keys map to one partition).
        let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (_, key, value) in messages {
            by_key.entry(key).or_default().push(value);
        }
        for (key, values) in by_key {
            let expected: Vec<&str> = sent.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect();
            assert_eq!(values, expected, "key {key}: same values, same order");
        }
    }
    assert!(received.len() > 1, "keys spread over several partitions");
}

#[test]
fn metadata_produce_consume_every_codec() {
    let broker = Broker::start(&["num.partitions=3"]);
    for codec in CODECS {
        let topic = format!("kcat-{codec}");
        let sent = produce(&broker, &topic, codec, 500);
        check_round_trip(&sent, &consume(&broker, &topic));
    }
    let listing = run(kcat(&broker).args(["-L"]), b"");
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(text.contains("1 brokers:"), "{text}");
    // Started on port 0, the broker advertises the port it bound.
    assert!(text.contains(&format!("at {}", broker.bootstrap())), "{text}");
    for codec in CODECS {
        assert!(text.contains(&format!("topic \"kcat-{codec}\" with 3 partitions")), "{text}");
    }
}

#[test]
fn acknowledged_messages_survive_sigterm_and_sigkill() {
    let mut broker = Broker::start(&["num.partitions=3"]);
    let mut sent = produce(&broker, "restart", "lz4", 300);
    let before = consume(&broker, "restart");
    check_round_trip(&sent, &before);

    broker.stop();
    broker.spawn();
    assert!(broker.log().contains("netd stopped cleanly"));
    assert_eq!(consume(&broker, "restart"), before, "same messages at the same offsets after SIGTERM");

    sent.extend(produce(&broker, "restart", "zstd", 300));
    let before_kill = consume(&broker, "restart");
    check_round_trip(&sent, &before_kill);
    broker.kill();
    broker.spawn();
    assert_eq!(consume(&broker, "restart"), before_kill, "every acknowledged message after SIGKILL");
    sent.extend(produce(&broker, "restart", "none", 50));
    check_round_trip(&sent, &consume(&broker, "restart"));
}

/// Partitions are spread over shards by a hash of their name; a restart with another shard count
/// re-homes them, and every message is still there at the same offset, whoever owns it now.
#[test]
fn partitions_follow_the_shard_count_across_restarts() {
    let mut broker = Broker::start(&["num.partitions=8", "skua.shard.count=3"]);
    let mut sent = produce(&broker, "rehome", "none", 400);
    let before = consume(&broker, "rehome");
    check_round_trip(&sent, &before);
    assert_eq!(before.len(), 8, "all 8 partitions got messages");
    assert_eq!(broker.log().matches("shard started").count(), 3, "{}", broker.log());

    for shards in ["1", "2"] {
        broker.stop();
        broker.extra = vec!["num.partitions=8".to_string(), format!("skua.shard.count={shards}")];
        broker.spawn();
        assert_eq!(consume(&broker, "rehome"), before, "same messages and offsets with {shards} shard(s)");
    }
    sent.extend(produce(&broker, "rehome", "snappy", 200));
    check_round_trip(&sent, &consume(&broker, "rehome"));
}
