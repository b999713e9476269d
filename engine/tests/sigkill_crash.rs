//! Real files, real crashes: a child process appends with fsync-before-ack through the io_uring
//! backend to four logs, printing each acknowledged end offset; the parent SIGKILLs it at a random
//! moment, reopens the logs and checks that every acknowledged batch is there, valid, contiguous
//! and byte-identical to what the child wrote. The next cycle's child continues in the same
//! directories, so recovery after recovery is exercised. Small segments make rolls happen near
//! the kills, and size retention removes old segments as the child goes, so new segments are
//! often recycled files full of older batches: recovery must return none of those. Both write
//! modes, 12 cycles each.
//!
//! The child is this same test binary, re-executed with `SKUA_CRASH_CHILD_DIR` set: the test
//! `child_process_entry_point` does the appending then, and returns at once otherwise.
//! `SEED=s` replays the parent's random kill delays.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use engine::io::sim::SimRng;
use engine::io::{open_backend, BackendKind};
use engine::testkit::make_sized_batch;
use engine::{LeaderEpoch, LogConfig, LogId, Offset, Shard, ShardConfig, WriteMode};

const LOG_COUNT: usize = 4;
const CYCLES: usize = 12;
const SEGMENT_BYTES: u64 = 64 * 1024;
/// Per log: retention keeps about this much, so segments are removed (and recycled) as it runs.
const RETENTION_BYTES: i64 = 3 * SEGMENT_BYTES as i64;
/// The child enforces retention every this many rounds.
const RETENTION_EVERY_ROUNDS: u64 = 4;
/// The child stops by itself after this long, should the parent fail to kill it.
const CHILD_RUN_MS_MAX: u64 = 20_000;

/// The batch the child appends at `base_offset` of log `log`: the parent recomputes it.
fn batch_for(log: usize, base_offset: u64) -> Vec<u8> {
    let records = 1 + (base_offset % 3) as usize;
    let value_bytes = 40 + ((base_offset * 7919) % 900) as usize;
    make_sized_batch(records, value_bytes, (log as u64) << 40 | base_offset, 1_700_000_000_000 + base_offset as i64)
}

fn config() -> LogConfig {
    LogConfig { segment_bytes: SEGMENT_BYTES, retention_bytes: RETENTION_BYTES, ..LogConfig::default() }
}

fn write_mode(name: &str) -> WriteMode {
    WriteMode::parse(name).expect("write mode")
}

fn open_shard(root: &Path, mode: WriteMode) -> (Shard, Vec<LogId>, Vec<engine::RecoveryReport>) {
    let fs = open_backend(BackendKind::Auto).expect("backend");
    let mut shard = Shard::new(fs, ShardConfig { write_mode: mode, ..ShardConfig::default() }).expect("shard");
    let mut ids = Vec::new();
    let mut reports = Vec::new();
    for log in 0..LOG_COUNT {
        let (id, report) = shard.open_log(&root.join(format!("log-{log}")), config(), 0).expect("open log");
        ids.push(id);
        reports.push(report);
    }
    (shard, ids, reports)
}

#[test]
fn child_process_entry_point() {
    let Some(root) = std::env::var_os("SKUA_CRASH_CHILD_DIR") else { return };
    let mode = write_mode(&std::env::var("SKUA_CRASH_WRITE_MODE").expect("mode"));
    let (mut shard, ids, _) = open_shard(Path::new(&root), mode);
    let started = Instant::now();
    let mut round = 0u64;
    while started.elapsed() < Duration::from_millis(CHILD_RUN_MS_MAX) {
        // A few batches per log per commit, like a broker gathering requests.
        for _ in 0..1 + round % 4 {
            for (log, id) in ids.iter().enumerate() {
                let base = shard.log(*id).expect("log").next_offset().0;
                shard.append(*id, &batch_for(log, base), LeaderEpoch(0), 0).expect("append");
            }
        }
        // Every other round overlapped: commits started and reaped while the next appends queue
        // behind them, so the kill often lands with commits in flight.
        let report = if round % 2 == 0 {
            shard.commit(0)
        } else {
            shard.start_commits(0);
            let all_in_flight = shard.commits_in_flight() >= ids.len();
            shard.reap(all_in_flight, 0)
        };
        assert!(report.failed.is_empty(), "commit failed: {:?}", report.failed);
        if round % RETENTION_EVERY_ROUNDS == 0 {
            for (_, outcome) in shard.enforce_retention(0) {
                outcome.expect("retention");
            }
        }
        let mut line = String::from("ack");
        for (id, end) in &report.committed {
            let log = ids.iter().position(|known| known == id).expect("known");
            line.push_str(&format!(" {log}:{}", end.0));
        }
        println!("{line}");
        round += 1;
    }
}

/// Reads every batch of a log (from its start: retention removes the oldest) and checks it
/// against what the child wrote.
fn verify(shard: &Shard, log: usize, id: LogId, acked_end: u64, context: &str) -> u64 {
    let state = shard.log(id).expect("log");
    let end = state.log_end_offset().0;
    assert!(end >= acked_end, "{context} log {log}: recovered end {end} < acknowledged end {acked_end}");
    let mut offset = state.log_start_offset();
    assert!(offset.0 <= acked_end.max(end), "{context} log {log}: log start {offset} past the end");
    while offset.0 < end {
        let read = shard.read(id, offset, 1 << 20, None).expect("read");
        let mut bytes = Vec::new();
        for chunk in &read.chunks {
            bytes.extend(chunk.to_vec().expect("chunk"));
        }
        let headers = engine::batch::validate_all(&bytes)
            .unwrap_or_else(|error| panic!("{context} log {log}: corrupt read at {offset}: {error}"));
        let mut at = 0;
        for header in headers {
            assert_eq!(header.base_offset, offset.0, "{context} log {log}: contiguous offsets");
            let expected = batch_for(log, header.base_offset);
            let stored = &bytes[at..at + header.size_bytes];
            assert_eq!(stored.len(), expected.len(), "{context} log {log}: batch {} size", header.base_offset);
            assert_eq!(&stored[16..], &expected[16..], "{context} log {log}: batch {} bytes", header.base_offset);
            assert_eq!(&stored[8..12], &expected[8..12]);
            at += header.size_bytes;
            offset = Offset(header.last_offset() + 1);
        }
    }
    end
}

fn crash_cycles(mode_name: &str) {
    let seed: u64 = std::env::var("SEED").ok().and_then(|text| text.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |elapsed| elapsed.as_nanos() as u64)
    });
    eprintln!("sigkill_crash {mode_name}: seed {seed} (replay with SEED={seed})");
    let mut rng = SimRng::new(seed);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let root: PathBuf = dir.path().to_path_buf();
    let mode = write_mode(mode_name);
    let mut total_acked = 0u64;
    for cycle in 0..CYCLES {
        let context = format!("{mode_name} cycle {cycle} seed {seed}");
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "child_process_entry_point", "--nocapture", "--test-threads=1"])
            .env("SKUA_CRASH_CHILD_DIR", &root)
            .env("SKUA_CRASH_WRITE_MODE", mode_name)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut acked = [0u64; LOG_COUNT];
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Some(rest) = line.strip_prefix("ack") else { continue };
                for field in rest.split_whitespace() {
                    // A line cut by the kill is incomplete: only whole "log:end" pairs count,
                    // and the kill cannot cut a number that was already acknowledged.
                    if let Some((log, end)) = field.split_once(':') {
                        if let (Ok(log), Ok(end)) = (log.parse::<usize>(), end.parse::<u64>()) {
                            if log < LOG_COUNT {
                                acked[log] = acked[log].max(end);
                            }
                        }
                    }
                }
            }
            acked
        });
        std::thread::sleep(Duration::from_millis(40 + rng.below(400)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        let acked = reader.join().expect("reader");
        let recycled_waiting: usize = (0..LOG_COUNT)
            .filter_map(|log| std::fs::read_dir(root.join(format!("log-{log}"))).ok())
            .flat_map(|entries| entries.filter_map(|entry| entry.ok()))
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".log.recycled"))
            .count();
        let (shard, ids, reports) = open_shard(&root, mode);
        let mut line = format!("{context}: {recycled_waiting} recycled files waiting;");
        for log in 0..LOG_COUNT {
            let end = verify(&shard, log, ids[log], acked[log], &context);
            line.push_str(&format!(
                " log{log} acked {} recovered {}..{end} (truncated {} bytes, old recycled bytes {})",
                acked[log],
                shard.log(ids[log]).expect("log").log_start_offset(),
                reports[log].truncated_bytes(),
                reports[log].recycled_tail_bytes
            ));
            total_acked += acked[log];
        }
        eprintln!("{line}");
        if cycle % 3 == 2 {
            shard.close(0).expect("clean close");
        } else {
            drop(shard);
        }
    }
    assert!(total_acked > 0, "the child acknowledged something before being killed");
}

#[test]
fn sigkill_loses_nothing_acknowledged_direct() {
    crash_cycles("direct");
}

#[test]
fn sigkill_loses_nothing_acknowledged_buffered() {
    crash_cycles("buffered");
}
