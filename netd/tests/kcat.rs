//! librdkafka, through kcat, against the real broker binary: metadata listing, keyed messages to
//! a 3-partition topic with every codec consumed back exactly, and restarts keeping every
//! acknowledged message at the same offset: after a SIGTERM, and after a SIGKILL in the middle
//! of a stream of produces.

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
fn acknowledged_messages_survive_sigterm() {
    let mut broker = Broker::start(&["num.partitions=3"]);
    let mut sent = produce(&broker, "restart", "lz4", 300);
    let before = consume(&broker, "restart");
    check_round_trip(&sent, &before);

    broker.stop();
    broker.spawn();
    assert!(broker.log().contains("netd stopped cleanly"));
    assert_eq!(consume(&broker, "restart"), before, "same messages at the same offsets after SIGTERM");

    sent.extend(produce(&broker, "restart", "zstd", 300));
    check_round_trip(&sent, &consume(&broker, "restart"));
}

/// How long the stream runs before the SIGKILL, and how many acknowledgements it must have had
/// by then (so the kill comes well into the stream).
const STREAM_BEFORE_KILL_MS: u64 = 1_500;
const ACKNOWLEDGED_BEFORE_KILL_MIN: usize = 2_000;
/// Bound on the wait for them, so a broker that stops acknowledging fails the test, not hangs it.
const ACKNOWLEDGED_WAIT_MS_MAX: u64 = 20_000;
/// librdkafka's `message.timeout.ms` for the stream: once the broker is dead, what kcat still
/// holds fails after this long and kcat exits.
const STREAM_MESSAGE_TIMEOUT_MS: u64 = 2_000;

/// The value of the `index`th message of the stream: its index, padded to a realistic size.
fn stream_value(index: usize) -> String {
    format!("stream-{index:08}-{}", "x".repeat(100))
}

/// SIGKILL while produces are in flight: kcat streams acks=all messages to one partition as fast
/// as it can, the broker is killed after `STREAM_BEFORE_KILL_MS` (and at least
/// `ACKNOWLEDGED_BEFORE_KILL_MIN` acknowledgements), with kcat still sending. After a restart every offset kcat saw acknowledged is there
/// with the message produced for it, and the partition holds a gapless prefix of the stream (a
/// message sent but not acknowledged may or may not have survived: both are correct).
#[test]
fn acknowledged_messages_survive_sigkill_mid_stream() {
    use std::io::{BufRead, Write};
    use std::process::Stdio;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    use std::time::{Duration, Instant};

    let mut broker = Broker::start(&["num.partitions=1"]);
    // -v -v: kcat prints "Message delivered to partition P (offset O)" for every acknowledgement
    // and "Delivery failed for message" for every message that was not acknowledged; -E: it does
    // not exit when the broker goes away, so what it holds then fails after the message timeout.
    let mut producer = kcat(&broker)
        .args(["-P", "-E", "-t", "stream", "-p", "0", "-v", "-v", "-X", "acks=all", "-X", "linger.ms=2"])
        .args(["-X", &format!("message.timeout.ms={STREAM_MESSAGE_TIMEOUT_MS}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let mut stdin = producer.stdin.take().expect("stdin");
        let stop = stop.clone();
        // Unthrottled: the pipe and kcat's queue bound it, so messages are always in flight.
        std::thread::spawn(move || {
            let mut written = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let chunk: String = (written..written + 100).map(|index| stream_value(index) + "\n").collect();
                if stdin.write_all(chunk.as_bytes()).is_err() {
                    break;
                }
                written += 100;
            }
            written
        })
    };
    let (events, reports) = mpsc::channel::<Result<i64, String>>();
    let reader = {
        let stderr = producer.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            let mut other = Vec::new();
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let event = if let Some(rest) = line.strip_prefix("% Message delivered to partition 0 (offset ") {
                    Ok(rest.split(')').next().and_then(|offset| offset.parse().ok()).expect("an offset"))
                } else if line.contains("Delivery failed") {
                    Err(line)
                } else {
                    other.push(line);
                    continue;
                };
                if events.send(event).is_err() {
                    break;
                }
            }
            other
        })
    };

    let mut acknowledged = Vec::new();
    let mut failed_count = 0usize;
    let started = Instant::now();
    let deadline = started + Duration::from_millis(ACKNOWLEDGED_WAIT_MS_MAX);
    while acknowledged.len() < ACKNOWLEDGED_BEFORE_KILL_MIN
        || started.elapsed() < Duration::from_millis(STREAM_BEFORE_KILL_MS)
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match reports.recv_timeout(left) {
            Ok(Ok(offset)) => acknowledged.push(offset),
            Ok(Err(line)) => panic!("a delivery failed before the kill: {line}\n{}", broker.log()),
            Err(_) => panic!(
                "{} of {ACKNOWLEDGED_BEFORE_KILL_MIN} acknowledgements within {ACKNOWLEDGED_WAIT_MS_MAX} ms:\n{}",
                acknowledged.len(),
                broker.log()
            ),
        }
    }
    broker.kill();
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().expect("writer");
    // kcat sees its input end, waits for what it holds to be acknowledged or to time out, exits.
    let exit_deadline = Instant::now() + Duration::from_millis(STREAM_MESSAGE_TIMEOUT_MS + 20_000);
    while producer.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < exit_deadline, "kcat did not exit after the broker died");
        std::thread::sleep(Duration::from_millis(20));
    }
    let other = reader.join().expect("reader");
    for event in reports.try_iter() {
        match event {
            Ok(offset) => acknowledged.push(offset),
            Err(_) => failed_count += 1,
        }
    }
    assert!(
        failed_count > 0,
        "the kill must come while messages are in flight: none of {written} written failed\n{}",
        other.join("\n")
    );
    // Responses come back in request order, so the acknowledged offsets are a prefix 0..n.
    let acknowledged_count = acknowledged.len();
    assert_eq!(acknowledged_count + failed_count, written, "kcat reported on every message written");
    assert!(
        acknowledged.iter().enumerate().all(|(index, offset)| *offset == index as i64),
        "acknowledged offsets are 0..{acknowledged_count} in order"
    );

    broker.spawn();
    let recovered = consume(&broker, "stream").remove(&0).unwrap_or_default();
    assert!(
        recovered.len() >= acknowledged_count,
        "{acknowledged_count} messages acknowledged, {} after the SIGKILL:\n{}",
        recovered.len(),
        broker.log()
    );
    for (index, (offset, _, value)) in recovered.iter().enumerate() {
        assert_eq!(*offset, index as i64, "offsets contiguous from 0");
        assert_eq!(*value, stream_value(index), "offset {offset} holds the message produced for it");
    }
    println!(
        "{written} written, {acknowledged_count} acknowledged before the SIGKILL, {failed_count} failed, {} recovered",
        recovered.len()
    );

    // The partition takes new messages right after what survived.
    let more = produce(&broker, "stream", "none", 50);
    let after = consume(&broker, "stream").remove(&0).unwrap_or_default();
    assert_eq!(after.len(), recovered.len() + more.len());
    assert_eq!(after[..recovered.len()], recovered[..], "what survived is unchanged");
    for ((offset, _, value), (_, sent)) in after[recovered.len()..].iter().zip(&more) {
        assert_eq!(value, sent, "offset {offset}");
    }
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
