//! Apache Kafka's own CLI tools driving a classic consumer group against the real broker binary:
//! `kafka-console-consumer --group` consumes a keyed topic from the beginning and commits, then
//! `kafka-consumer-groups` lists the group, describes its CURRENT-OFFSET / LOG-END-OFFSET / LAG
//! (checked number by number against what was produced: the console producer puts a keyed record
//! on `murmur2(key) % partitions`, as every Java client does), resets its offsets to the earliest,
//! which a second console consumer then honours, and deletes it.
//!
//! `SKUA_REFERENCE_BOOTSTRAP=host:port` runs the same sequence against an already running broker
//! instead of netd; that is how it was checked against Apache Kafka 4.4.

mod common;

use std::collections::HashMap;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use common::Target;

/// How much of the broker log a failure shows.
const LOG_TAIL_LINES: usize = 80;

const PARTITION_COUNT: u32 = 3;
const FIRST_RECORD_COUNT: usize = 300;
const SECOND_RECORD_COUNT: usize = 90;
/// One CLI call; a healthy one takes about a second.
const TOOL_TIMEOUT: Duration = Duration::from_secs(40);

struct ToolOutput {
    call: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for ToolOutput {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}: {}\nstdout:\n{}\nstderr:\n{}", self.call, self.status, self.stdout, self.stderr)
    }
}

/// Runs one of Kafka's tools (`class` from the jars) with `stdin`, killed after `TOOL_TIMEOUT`.
fn kafka_tool(target: &Target, class: &str, args: &[&str], stdin: &[u8]) -> ToolOutput {
    let call = format!("{} {}", class.rsplit('.').next().unwrap_or(class), args.join(" "));
    let started = Instant::now();
    let run = common::run_bounded(
        Command::new("java")
            // A short-lived CLI starts faster with the client compiler only and the serial
            // collector; the clients' INFO logs (slf4j-simple) would bury their warnings and errors.
            .args(["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m"])
            .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
            .arg("-cp")
            .arg(format!("{}/*", common::kafka_libs().display()))
            .arg(class)
            .arg("--bootstrap-server")
            .arg(target.bootstrap())
            .args(args),
        stdin,
        TOOL_TIMEOUT,
    );
    let output = ToolOutput { call, status: run.status, stdout: run.stdout, stderr: run.stderr };
    if run.killed {
        panic!("killed after {TOOL_TIMEOUT:?}: {output}\n{}", target.log_tail(LOG_TAIL_LINES));
    }
    eprintln!("{:.1}s {}", started.elapsed().as_secs_f64(), output.call);
    output
}

/// Like `kafka_tool`, and the call must exit 0 without reporting an error: the tools print a
/// failure as a line starting with "Error" (and ConsumerGroupCommand still exits 0), a client as an
/// ERROR log line. Warnings pass: a real Kafka logs some right after creating a topic.
fn kafka_tool_ok(target: &Target, class: &str, args: &[&str], stdin: &[u8]) -> ToolOutput {
    let output = kafka_tool(target, class, args, stdin);
    let failed = output
        .stdout
        .lines()
        .chain(output.stderr.lines())
        .any(|line| line.starts_with("Error") || line.contains(" ERROR ") || line.contains("Exception in thread"));
    assert!(output.status.success() && !failed, "{output}\n{}", target.log_tail(LOG_TAIL_LINES));
    output
}

fn consumer_groups(target: &Target, args: &[&str]) -> ToolOutput {
    kafka_tool_ok(target, "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", args, b"")
}

/// Kafka's `Utils.murmur2`, the hash the Java producer's default partitioner applies to keys.
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

fn partition_of(key: &str) -> u32 {
    (murmur2(key.as_bytes()) & 0x7fff_ffff) % PARTITION_COUNT
}

fn key(index: usize) -> String {
    format!("key-{index}")
}

fn value(index: usize) -> String {
    format!("value-{index}-{}", "v".repeat(index % 40))
}

/// Produces the records `range` with the console producer (acks=all, idempotent by default),
/// returns how many went to each partition.
fn produce(target: &Target, topic: &str, range: std::ops::Range<usize>) -> Vec<u64> {
    let mut counts = vec![0u64; PARTITION_COUNT as usize];
    let mut input = String::new();
    for index in range {
        counts[partition_of(&key(index)) as usize] += 1;
        input.push_str(&format!("{}:{}\n", key(index), value(index)));
    }
    kafka_tool_ok(
        target,
        "org.apache.kafka.tools.ConsoleProducer",
        &[
            "--topic",
            topic,
            "--command-property",
            "acks=all",
            "--reader-property",
            "parse.key=true",
            "--reader-property",
            "key.separator=:",
        ],
        input.as_bytes(),
    );
    counts
}

/// Consumes `count` records with the console consumer in `group`, checks each is a produced record
/// on its key's partition, and returns the offsets consumed per partition.
fn consume(target: &Target, topic: &str, group: &str, count: usize, from_beginning: bool) -> Vec<Vec<u64>> {
    let count_text = count.to_string();
    let mut args = vec![
        "--topic",
        topic,
        "--group",
        group,
        "--max-messages",
        &count_text,
        "--timeout-ms",
        "20000",
        "--formatter-property",
        "print.partition=true",
        "--formatter-property",
        "print.offset=true",
        "--formatter-property",
        "print.key=true",
    ];
    if from_beginning {
        args.push("--from-beginning");
    }
    let output = kafka_tool(target, "org.apache.kafka.tools.consumer.ConsoleConsumer", &args, b"");
    let context = format!("{output}\n{}", target.log_tail(LOG_TAIL_LINES));
    assert!(output.status.success(), "{context}");
    assert!(output.stderr.contains(&format!("Processed a total of {count} messages")), "{context}");
    let mut offsets = vec![Vec::new(); PARTITION_COUNT as usize];
    for line in output.stdout.lines() {
        // Partition:1	Offset:17	key-42	value-42-vv...
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 4, "line {line:?}\n{context}");
        let partition: u32 = fields[0].strip_prefix("Partition:").and_then(|p| p.parse().ok()).expect(line);
        let offset: u64 = fields[1].strip_prefix("Offset:").and_then(|o| o.parse().ok()).expect(line);
        let index: usize = fields[2].strip_prefix("key-").and_then(|i| i.parse().ok()).expect(line);
        assert_eq!(fields[3], value(index), "{line}\n{context}");
        assert_eq!(partition, partition_of(fields[2]), "{line}: not on its key's partition\n{context}");
        offsets[partition as usize].push(offset);
    }
    assert_eq!(offsets.iter().map(Vec::len).sum::<usize>(), count, "{context}");
    offsets
}

/// `--describe --group` rows by partition: column name → value.
fn describe(target: &Target, group: &str, topic: &str) -> (HashMap<u32, HashMap<String, String>>, String) {
    let output = consumer_groups(target, &["--describe", "--group", group]);
    let context = format!("{output}\n{}", target.log_tail(LOG_TAIL_LINES));
    let header: Vec<String> = output
        .stdout
        .lines()
        .find(|line| line.starts_with("GROUP"))
        .unwrap_or_else(|| panic!("no header line\n{context}"))
        .split_whitespace()
        .map(str::to_string)
        .collect();
    for column in ["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID"] {
        assert!(header.iter().any(|name| name == column), "no {column} column\n{context}");
    }
    let mut rows = HashMap::new();
    for line in output.stdout.lines().filter(|line| line.split_whitespace().next() == Some(group)) {
        let row: HashMap<String, String> =
            header.iter().cloned().zip(line.split_whitespace().map(str::to_string)).collect();
        assert_eq!(row.len(), header.len(), "{line}\n{context}");
        assert_eq!(row["TOPIC"], topic, "{line}\n{context}");
        let partition: u32 = row["PARTITION"].parse().expect("partition");
        assert!(rows.insert(partition, row).is_none(), "partition {partition} twice\n{context}");
    }
    assert_eq!(rows.len(), PARTITION_COUNT as usize, "{context}");
    (rows, context)
}

/// The group's describe rows must show these offsets for every partition, and no active member.
fn check_described(target: &Target, group: &str, topic: &str, current: &[u64], end: &[u64]) {
    let (rows, context) = describe(target, group, topic);
    for partition in 0..PARTITION_COUNT {
        let row = &rows[&partition];
        let index = partition as usize;
        let expected =
            [("CURRENT-OFFSET", current[index]), ("LOG-END-OFFSET", end[index]), ("LAG", end[index] - current[index])];
        for (column, number) in expected {
            assert_eq!(row[column], number.to_string(), "partition {partition} {column}\n{context}");
        }
        assert_eq!(row["CONSUMER-ID"], "-", "partition {partition} has a member\n{context}");
    }
}

fn listed(target: &Target) -> Vec<String> {
    consumer_groups(target, &["--list"]).stdout.lines().map(str::to_string).collect()
}

#[test]
fn console_consumer_group_then_consumer_groups_describe_reset_delete() {
    let target = Target::start(&["group.initial.rebalance.delay.ms=0"]);
    let started = Instant::now();
    let unique = format!("{}-{}", std::process::id(), std::time::UNIX_EPOCH.elapsed().expect("clock").as_millis());
    let topic = format!("cli-group-topic-{unique}");
    let group = format!("cli-group-{unique}");
    let created = kafka_tool_ok(
        &target,
        "org.apache.kafka.tools.TopicCommand",
        &["--create", "--topic", &topic, "--partitions", &PARTITION_COUNT.to_string()],
        b"",
    );
    assert!(created.stdout.contains(&format!("Created topic {topic}.")), "{created}");

    // The first records, consumed from the beginning and committed by the console consumer.
    let first = produce(&target, &topic, 0..FIRST_RECORD_COUNT);
    assert!(first.iter().all(|&count| count > 0), "every partition needs records: {first:?}");
    let offsets = consume(&target, &topic, &group, FIRST_RECORD_COUNT, true);
    for (partition, offsets) in offsets.iter().enumerate() {
        let expected: Vec<u64> = (0..first[partition]).collect();
        assert_eq!(offsets, &expected, "partition {partition}: each offset once, in order");
    }

    // More records after the consumer left: the lag is exactly those.
    let second = produce(&target, &topic, FIRST_RECORD_COUNT..FIRST_RECORD_COUNT + SECOND_RECORD_COUNT);
    let end: Vec<u64> = first.iter().zip(&second).map(|(first, second)| first + second).collect();
    assert!(listed(&target).contains(&group), "--list shows {group}");
    let states = consumer_groups(&target, &["--list", "--state"]);
    assert!(
        states.stdout.lines().any(|line| line.split_whitespace().collect::<Vec<_>>() == [group.as_str(), "Empty"]),
        "--list --state shows {group} Empty\n{states}\n{}",
        target.log_tail(LOG_TAIL_LINES)
    );
    check_described(&target, &group, &topic, &first, &end);

    // Reset to the earliest offsets: every partition's commit is 0, the lag the whole log.
    let reset = consumer_groups(
        &target,
        &["--reset-offsets", "--to-earliest", "--execute", "--group", &group, "--topic", &topic],
    );
    for partition in 0..PARTITION_COUNT {
        let row = format!("{group} {topic} {partition} 0");
        assert!(
            reset.stdout.lines().any(|line| line.split_whitespace().collect::<Vec<_>>().join(" ") == row),
            "--reset-offsets shows NEW-OFFSET 0 for partition {partition}\n{reset}\n{}",
            target.log_tail(LOG_TAIL_LINES)
        );
    }
    let zero = vec![0u64; PARTITION_COUNT as usize];
    check_described(&target, &group, &topic, &zero, &end);

    // A consumer of the group without --from-beginning starts at the committed offsets: all of it.
    let total = FIRST_RECORD_COUNT + SECOND_RECORD_COUNT;
    let offsets = consume(&target, &topic, &group, total, false);
    for (partition, offsets) in offsets.iter().enumerate() {
        let expected: Vec<u64> = (0..end[partition]).collect();
        assert_eq!(offsets, &expected, "partition {partition}: every offset from 0 after the reset");
    }
    check_described(&target, &group, &topic, &end, &end);

    // Delete the group: gone from the list, and describing it says so.
    let deleted = consumer_groups(&target, &["--delete", "--group", &group]);
    assert!(
        deleted.stdout.contains(&format!("Deletion of requested consumer groups ('{group}') was successful.")),
        "{deleted}\n{}",
        target.log_tail(LOG_TAIL_LINES)
    );
    assert!(!listed(&target).contains(&group), "--list no longer shows {group}");
    let gone = kafka_tool(
        &target,
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        &["--describe", "--group", &group],
        b"",
    );
    assert!(
        gone.stdout.contains(&format!("Consumer group '{group}' does not exist."))
            || gone.stderr.contains(&format!("GroupIdNotFoundException: Group {group} not found.")),
        "describing a deleted group says it does not exist\n{gone}\n{}",
        target.log_tail(LOG_TAIL_LINES)
    );
    eprintln!("groups_kafka_cli: {:.1}s against {}", started.elapsed().as_secs_f64(), target.bootstrap());
}
