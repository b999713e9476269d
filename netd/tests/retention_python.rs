//! Size retention with recycled segment files, as a real client (confluent-kafka) sees it: the
//! broker runs with 64 KiB segments and 256 KiB `log.retention.bytes`, so retention removes
//! segments every few hundred messages and new segments reuse the removed files. The client
//! checks that the low watermark moves, that a read from the earliest offset returns exactly the
//! messages sent at those offsets, and that the same holds after the broker is SIGKILLed and
//! restarted on the same data directory and after more messages (`tests/python/retention.py`).
//! When the client stops producing, the partition holds exactly one recycled file.

mod common;

use std::time::Duration;

use common::{Broker, PythonScript, Restart};

const PHASE_TIMEOUT: Duration = Duration::from_secs(60);
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// `.log.recycled` files in the test topic's partition directories under `dir`.
fn recycled_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(partitions) = std::fs::read_dir(dir) else { return Vec::new() };
    partitions
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with("retention-recycling")))
        .filter_map(|path| std::fs::read_dir(path).ok())
        .flat_map(|entries| entries.filter_map(|entry| entry.ok()).map(|entry| entry.path()))
        .filter(|path| path.to_string_lossy().ends_with(".log.recycled"))
        .collect()
}

#[test]
fn confluent_kafka_reads_exactly_what_retention_keeps_across_sigkill() {
    let mut broker = Broker::start(&[
        "log.segment.bytes=65536",
        "log.retention.bytes=262144",
        "log.retention.check.interval.ms=100",
    ]);
    let mut script = PythonScript::start("retention.py", &broker.bootstrap(), &[], EXIT_TIMEOUT);
    if script.wait_for("READY-FOR-RESTART", PHASE_TIMEOUT).is_none() {
        panic!("phase 1 did not finish:\n{}\nbroker log:\n{}", script.finish(), broker.log());
    }
    // The last retention pass left a removed segment's file waiting for the next roll: one, the
    // pool's size (skua.segment.recycle.max defaults to 1).
    let recycled = recycled_files(&broker.data_dir);
    assert_eq!(recycled.len(), 1, "one recycled file for the one partition: {recycled:?}\n{}", broker.log());
    broker.restart(Restart::Sigkill);
    if !script.tell("RESTARTED") {
        panic!("retention.py stopped waiting:\n{}\nbroker log:\n{}", script.finish(), broker.log());
    }
    let done = script.wait_for("retention: ok", PHASE_TIMEOUT);
    let said = script.finish();
    assert!(done.is_some(), "{said}\nbroker log:\n{}", broker.log());
    eprintln!("{said}");
}
