//! DeleteRecords and DescribeProducers through Apache Kafka's own tools (Java 17, jars from
//! Maven Central via scripts/kafka-jars.sh) against the real broker binary: `kafka-delete-records`
//! moves the log start, `kafka-get-offsets --time -2` and a console consumer from the beginning
//! see it, before and after restarts (clean and SIGKILL); `kafka-transactions
//! describe-producers` lists the console producer (idempotent by default).

mod common;

use std::process::Command;

use common::{Broker, Restart};

const RECORD_COUNT: usize = 100;

/// Runs one of Kafka's tools to its end (bounded); its stdout, after checking it succeeded.
fn kafka_tool(class: &str, args: &[&str], stdin: &[u8]) -> String {
    let classpath = format!("{}/*", common::kafka_libs().display());
    let bounded = common::run_bounded(
        Command::new("java").arg("-cp").arg(classpath).arg(class).args(args),
        stdin,
        std::time::Duration::from_secs(90),
    );
    assert!(!bounded.killed, "{class} {args:?} ran past its bound\n{}\n{}", bounded.stdout, bounded.stderr);
    assert!(bounded.status.success(), "{class} {args:?}: {}\n{}\n{}", bounded.status, bounded.stdout, bounded.stderr);
    bounded.stdout
}

fn delete_records(broker: &Broker, offset: i64) -> String {
    let file = tempfile::NamedTempFile::new().expect("offsets file");
    let json = format!(r#"{{"partitions":[{{"topic":"dr","partition":0,"offset":{offset}}}],"version":1}}"#);
    std::fs::write(file.path(), json).expect("write offsets file");
    let path = file.path().to_str().expect("utf-8 path");
    kafka_tool(
        "org.apache.kafka.tools.DeleteRecordsCommand",
        &["--bootstrap-server", broker.address_str(), "--offset-json-file", path],
        b"",
    )
}

fn offsets(broker: &Broker, time: &str) -> String {
    let args = ["--bootstrap-server", broker.address_str(), "--topic", "dr", "--time", time];
    kafka_tool("org.apache.kafka.tools.GetOffsetShell", &args, b"").trim().to_string()
}

fn consume_all(broker: &Broker) -> Vec<String> {
    let output = kafka_tool(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        &[
            "--bootstrap-server",
            broker.address_str(),
            "--topic",
            "dr",
            "--partition",
            "0",
            "--from-beginning",
            "--timeout-ms",
            "5000",
        ],
        b"",
    );
    output.lines().map(str::to_string).collect()
}

fn expected_from(first: usize) -> Vec<String> {
    (first..RECORD_COUNT).map(|index| format!("record-{index}")).collect()
}

#[test]
fn kafka_delete_records_moves_the_log_start_for_offsets_and_consumers_across_restarts() {
    let mut broker = Broker::start(&[]);
    kafka_tool(
        "org.apache.kafka.tools.TopicCommand",
        &["--bootstrap-server", broker.address_str(), "--create", "--topic", "dr", "--partitions", "1"],
        b"",
    );
    let input: String = (0..RECORD_COUNT).map(|index| format!("record-{index}\n")).collect();
    kafka_tool(
        "org.apache.kafka.tools.ConsoleProducer",
        &["--bootstrap-server", broker.address_str(), "--topic", "dr", "--command-property", "acks=all"],
        input.as_bytes(),
    );
    assert_eq!(offsets(&broker, "-2"), "dr:0:0");

    // The console producer is idempotent: DescribeProducers lists it, one producer, sequences
    // 0..=99 in epoch 0, as Kafka's table prints it.
    let described = kafka_tool(
        "org.apache.kafka.tools.TransactionsCommand",
        &["--bootstrap-server", broker.address_str(), "describe-producers", "--topic", "dr", "--partition", "0"],
        b"",
    );
    let lines: Vec<&str> = described.lines().collect();
    assert_eq!(
        lines.first().map(|line| line.split_whitespace().collect::<Vec<_>>()),
        Some(vec![
            "ProducerId",
            "ProducerEpoch",
            "LatestCoordinatorEpoch",
            "LastSequence",
            "LastTimestamp",
            "CurrentTransactionStartOffset"
        ]),
        "{described}"
    );
    assert_eq!(lines.len(), 2, "one producer: {described}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert!(row[0].parse::<i64>().is_ok_and(|id| id >= 0), "{described}");
    assert_eq!(row[1..4], ["0", "-1", &(RECORD_COUNT - 1).to_string()], "{described}");
    assert!(row[4].parse::<i64>().is_ok_and(|timestamp| timestamp > 0), "{described}");
    assert_eq!(row[5], "None", "{described}");

    let deleted = delete_records(&broker, 40);
    assert!(deleted.contains("partition: dr-0\tlow_watermark: 40"), "{deleted}");
    assert_eq!(offsets(&broker, "-2"), "dr:0:40");
    assert_eq!(offsets(&broker, "-1"), format!("dr:0:{RECORD_COUNT}"));
    assert_eq!(consume_all(&broker), expected_from(40));
    // Lower than the log start: nothing moves, the answer is the log start.
    assert!(delete_records(&broker, 10).contains("low_watermark: 40"));
    // Past the high watermark: OFFSET_OUT_OF_RANGE, and nothing moves.
    let refused = delete_records(&broker, RECORD_COUNT as i64 + 1);
    assert!(refused.contains("OffsetOutOfRangeException"), "{refused}");

    broker.restart(Restart::Sigterm);
    assert_eq!(offsets(&broker, "-2"), "dr:0:40");
    assert_eq!(consume_all(&broker), expected_from(40));

    let deleted = delete_records(&broker, 75);
    assert!(deleted.contains("low_watermark: 75"), "{deleted}");
    broker.restart(Restart::Sigkill);
    assert_eq!(offsets(&broker, "-2"), "dr:0:75");
    assert_eq!(offsets(&broker, "-1"), format!("dr:0:{RECORD_COUNT}"));
    assert_eq!(consume_all(&broker), expected_from(75));

    // -1: up to the high watermark; nothing is left to consume.
    let deleted = delete_records(&broker, -1);
    assert!(deleted.contains(&format!("low_watermark: {RECORD_COUNT}")), "{deleted}");
    assert_eq!(consume_all(&broker), Vec::<String>::new());
}

/// The producers `kafka-transactions describe-producers` lists for partition 0 of `topic` (rows
/// after the header line).
fn producers_listed(broker: &Broker, topic: &str) -> Vec<String> {
    let described = kafka_tool(
        "org.apache.kafka.tools.TransactionsCommand",
        &["--bootstrap-server", broker.address_str(), "describe-producers", "--topic", topic, "--partition", "0"],
        b"",
    );
    described.lines().skip(1).filter(|line| !line.trim().is_empty()).map(str::to_string).collect()
}

/// `producer.id.expiration.ms` (a dynamic broker config, set with `kafka-configs`): an idempotent
/// producer that wrote nothing for that long is forgotten, so DescribeProducers no longer lists it;
/// not before.
#[test]
fn idempotent_producers_silent_for_producer_id_expiration_ms_are_forgotten() {
    const CHECK_INTERVAL_MS: u64 = 200;
    const EXPIRATION_MS: u64 = 6_000;
    let broker = Broker::start(&[&format!("producer.id.expiration.check.interval.ms={CHECK_INTERVAL_MS}")]);
    for (value, message) in [
        ("0", "Invalid value 0 for configuration producer.id.expiration.ms: Value must be at least 1"),
        ("abc", "Invalid value abc for configuration producer.id.expiration.ms: Not a number of type INT"),
    ] {
        let change = format!("producer.id.expiration.ms={value}");
        let (done, said) = common::kafka_configs(
            broker.address_str(),
            &["--alter", "--entity-type", "brokers", "--entity-default", "--add-config", &change],
        );
        assert!(!done && said.contains(message), "{change}: {said}");
    }
    let change = format!("producer.id.expiration.ms={EXPIRATION_MS}");
    let (set, said) = common::kafka_configs(
        broker.address_str(),
        &["--alter", "--entity-type", "brokers", "--entity-default", "--add-config", &change],
    );
    assert!(set, "{said}");
    kafka_tool(
        "org.apache.kafka.tools.TopicCommand",
        &["--bootstrap-server", broker.address_str(), "--create", "--topic", "silent", "--partitions", "1"],
        b"",
    );
    kafka_tool(
        "org.apache.kafka.tools.ConsoleProducer",
        &["--bootstrap-server", broker.address_str(), "--topic", "silent", "--command-property", "acks=all"],
        b"one\ntwo\n",
    );
    // The producer wrote before the tool returned: from here, less than its silence so far.
    let written = std::time::Instant::now();
    assert_eq!(producers_listed(&broker, "silent").len(), 1, "the console producer is idempotent");
    let mut forgotten = None;
    while written.elapsed() < std::time::Duration::from_secs(60) {
        if producers_listed(&broker, "silent").is_empty() {
            forgotten = Some(written.elapsed());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(CHECK_INTERVAL_MS));
    }
    let forgotten = forgotten.expect("the silent producer was never forgotten");
    // Not before its expiration: the tool returns at most a second or so after the write.
    let floor = std::time::Duration::from_millis(EXPIRATION_MS - 1_500);
    assert!(forgotten >= floor, "forgotten {forgotten:?} after its last write, expiration {EXPIRATION_MS} ms");
    assert!(broker.log().contains("forgot idempotent producers"), "{}", broker.log());
    eprintln!(
        "the silent producer was forgotten {forgotten:?} after its tool returned (expiration {EXPIRATION_MS} ms)"
    );
}
