//! The offsets log stays bounded under many commits, as a real client (confluent-kafka) sees it:
//! the broker runs with one offsets partition and 4 KiB offsets segments, so the coordinator
//! cleans the log (writes its live state again at the end and moves the log start past what came
//! before) every few dozen commits. `tests/python/offsets_clean.py` commits 1,600 times; while it
//! does, the log's files on disk are summed every 50 ms and must stay under a bound far below what
//! the commits wrote. The broker is then SIGTERMed and restarted: the client reads back exactly
//! the last committed offsets (a deleted group stays deleted), and Kafka's own
//! `kafka-consumer-groups --describe` shows them.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Broker, PythonScript, Restart};

const PHASE_TIMEOUT: Duration = Duration::from_secs(120);
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
const SEGMENT_BYTES: u64 = 4096;
/// The offsets log is cleaned at 2 segments' bytes; the snapshot's segment and the active one may
/// each hold a segment more, and a clean in flight lets it grow a little past the threshold.
const LOG_BYTES_BOUND: u64 = 6 * SEGMENT_BYTES;

/// (bytes of the `.log` files, their count) in the offsets partition's directory.
fn offsets_log_files(dir: &std::path::Path) -> (u64, usize) {
    let Ok(entries) = std::fs::read_dir(dir.join("__consumer_offsets-0")) else { return (0, 0) };
    let logs: Vec<u64> = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".log"))
        .filter_map(|entry| entry.metadata().ok().map(|metadata| metadata.len()))
        .collect();
    (logs.iter().sum(), logs.len())
}

#[test]
fn confluent_kafka_commits_stay_bounded_and_survive_a_restart() {
    let segment_bytes = format!("offsets.topic.segment.bytes={SEGMENT_BYTES}");
    let mut broker = Broker::start(&["offsets.topic.num.partitions=1", &segment_bytes]);
    let mut script = PythonScript::start("offsets_clean.py", &broker.bootstrap(), &[], EXIT_TIMEOUT);
    let deadline = Instant::now() + PHASE_TIMEOUT;
    let (mut bytes_most, mut files_most) = (0, 0);
    loop {
        let (bytes, files) = offsets_log_files(&broker.data_dir);
        bytes_most = bytes_most.max(bytes);
        files_most = files_most.max(files);
        if script.wait_for("READY-FOR-RESTART", Duration::from_millis(50)).is_some() {
            break;
        }
        if Instant::now() > deadline {
            panic!("phase 1 did not finish:\n{}\nbroker log:\n{}", script.finish(), broker.log());
        }
    }
    let cleans = broker.log().matches("cleaned an offsets partition").count();
    eprintln!("offsets log: at most {bytes_most} bytes in {files_most} segment files; {cleans} cleans");
    assert!(cleans > 10, "the offsets log was cleaned only {cleans} times:\n{}", broker.log());
    assert!(bytes_most <= LOG_BYTES_BOUND, "the offsets log reached {bytes_most} bytes");
    broker.restart(Restart::Sigterm);
    if !script.tell("RESTARTED") {
        panic!("offsets_clean.py stopped waiting:\n{}\nbroker log:\n{}", script.finish(), broker.log());
    }
    let done = script.wait_for("offsets-clean: ok", PHASE_TIMEOUT);
    let said = script.finish();
    assert!(done.is_some(), "{said}\nbroker log:\n{}", broker.log());

    // Kafka's own tool sees the offsets the client last committed for group 0 (round 399:
    // (399 * 7 + partition) % 100).
    let described = common::run_bounded(
        Command::new("java")
            .args(["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m"])
            .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
            .arg("-cp")
            .arg(format!("{}/*", common::kafka_libs().display()))
            .arg("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand")
            .args(["--bootstrap-server", &broker.bootstrap(), "--describe", "--group", "offsets-clean-0"]),
        b"",
        TOOL_TIMEOUT,
    );
    assert!(!described.killed && described.status.success(), "{described:?}");
    for partition in 0..3u64 {
        let offset = (399 * 7 + partition) % 100;
        let found = described.stdout.lines().any(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            columns.len() >= 5
                && columns[1] == "offsets-clean"
                && columns[2] == partition.to_string()
                && columns[3] == offset.to_string()
        });
        assert!(found, "partition {partition} at {offset} not described:\n{}", described.stdout);
    }
    eprintln!("{said}\n{}", described.stdout);
}
