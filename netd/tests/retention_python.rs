//! Size retention with recycled segment files, as a real client (confluent-kafka) sees it: the
//! broker runs with 64 KiB segments and 256 KiB `log.retention.bytes`, so retention removes
//! segments every few hundred messages and new segments reuse the removed files. The client
//! checks that the low watermark moves, that a read from the earliest offset returns exactly the
//! messages sent at those offsets, and that the same holds after the broker is SIGKILLed and
//! restarted on the same data directory and after more messages (`tests/python/retention.py`).
//! While the client produces, a recycled file is seen waiting in the partition, never more than one.

mod common;

use std::time::{Duration, Instant};

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
    // While phase 1 runs, the partition directory is looked at every 50 ms: a removed segment's
    // file waits there for the next roll, never more than one (skua.segment.recycle.max is 1).
    let deadline = Instant::now() + PHASE_TIMEOUT;
    let (mut samples_with_one, mut most) = (0, 0);
    loop {
        let recycled = recycled_files(&broker.data_dir);
        most = most.max(recycled.len());
        samples_with_one += usize::from(recycled.len() == 1);
        if script.wait_for("READY-FOR-RESTART", Duration::from_millis(50)).is_some() {
            break;
        }
        if Instant::now() > deadline {
            panic!("phase 1 did not finish:\n{}\nbroker log:\n{}", script.finish(), broker.log());
        }
    }
    assert!(most <= 1, "at most one recycled file for the one partition, saw {most}");
    assert!(samples_with_one > 0, "no recycled file was ever seen waiting:\n{}", broker.log());
    broker.restart(Restart::Sigkill);
    if !script.tell("RESTARTED") {
        panic!("retention.py stopped waiting:\n{}\nbroker log:\n{}", script.finish(), broker.log());
    }
    let done = script.wait_for("retention: ok", PHASE_TIMEOUT);
    let said = script.finish();
    assert!(done.is_some(), "{said}\nbroker log:\n{}", broker.log());
    eprintln!("{said}");
}
