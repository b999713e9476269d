//! `engine-bench`: the storage engine's throughput and latency on real files, through the public
//! `Shard` API, the way the broker drives it: every partition gathers a set amount of batches
//! while its previous commit is in flight; when that commit lands (fsync before ack), the next
//! one starts at once with what was gathered (`--lockstep` instead appends to every partition,
//! then runs one blocking commit, as the engine did before overlapped commits).
//!
//! Cases: append (1 KiB and 16 KiB batches × 1 and 16 partitions × direct and buffered), a
//! sustained direct-vs-buffered run (the write-mode decision), reads from the tail cache and from
//! cold files, and the cost of zstd re-encoding. Disk use is bounded by retention. Writes
//! `engine.json` and `engine.md` into the results directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use engine::io::{open_backend, BackendKind};
use engine::testkit::make_batch;
use engine::{CompressionType, LeaderEpoch, LogConfig, LogId, Offset, ReadChunk, Shard, ShardConfig, WriteMode};
use skua_bench::{json_string, load_average, percentile, RunFacts};

const HELP: &str = "engine-bench: measure Skua's storage engine on real files

USAGE: engine-bench [--dir DIR] [--seconds N] [--sustained-seconds N] [--gather-bytes N]
                    [--results DIR] [--only CASES] [--lockstep]
                    [--retention-mib N] [--quick]

  --dir DIR               where logs are written (default ./target/engine-bench; same file
                          system as the disk you want to measure)
  --seconds N             duration of each append/read case (default 10)
  --sustained-seconds N   duration of the direct-vs-buffered sustained run (default 60)
  --gather-bytes N        bytes appended to each partition per group commit (default 65536)
  --results DIR           where engine.json and engine.md go (default results/<date>-<commit>)
  --only CASES            comma list of: append,sustained,keep-all,read,zstd (default all),
                          or sustained-direct (only the direct sustained case)
  --lockstep              commit the old way: append to every partition, then one blocking
                          commit, nothing overlapped (the sustained case always runs both)
  --retention-mib N       retention.bytes per partition in MiB (default 256; 0 keeps everything:
                          mind the disk, 60 s at 800 MiB/s is 47 GiB)
  --recycle N             segment files retention removed that each partition keeps to reuse
                          as new segments (default 1, the engine's; 0 unlinks them)
  --quick                 2-second cases, 5-second sustained run (smoke test)

Commits overlap appends by default: each partition gathers --gather-bytes while its previous
commit is in flight and starts the next one when it lands.

Durability: fsync before ack (every commit ends with fdatasync). Disk use is bounded: segments
of 64 MiB, retention.bytes 256 MiB per partition.";

/// The keep-all sustained run (no retention) lasts at most this long...
const KEEP_ALL_SECONDS_MAX: u64 = 30;
/// ...and is run only with room for what it could write at this rate, plus a spare.
const KEEP_ALL_BYTES_PER_SECOND_MAX: u64 = 1024 * 1024 * 1024;
const KEEP_ALL_SPARE_BYTES: u64 = 8 * 1024 * 1024 * 1024;

/// Free bytes on the file system holding `dir` (`df`), if it can be told.
fn free_bytes(dir: &Path) -> Option<u64> {
    let output = std::process::Command::new("df").args(["--output=avail", "-B1"]).arg(dir).output().ok()?;
    String::from_utf8_lossy(&output.stdout).lines().nth(1)?.trim().parse().ok()
}

#[derive(Clone)]
struct Options {
    dir: PathBuf,
    seconds: u64,
    sustained_seconds: u64,
    gather_bytes: usize,
    results: Option<PathBuf>,
    only: Vec<String>,
    lockstep: bool,
    retention_bytes: i64,
    recycled_segments_max: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        dir: PathBuf::from("target/engine-bench"),
        seconds: 10,
        sustained_seconds: 60,
        gather_bytes: 64 * 1024,
        results: None,
        only: vec!["append".into(), "sustained".into(), "keep-all".into(), "read".into(), "zstd".into()],
        lockstep: false,
        retention_bytes: 256 * 1024 * 1024,
        recycled_segments_max: engine::limits::RECYCLED_SEGMENTS_PER_LOG_DEFAULT,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--help" | "-h" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            "--dir" => options.dir = PathBuf::from(value("--dir")?),
            "--seconds" => options.seconds = value("--seconds")?.parse().map_err(|_| "--seconds: a number")?,
            "--sustained-seconds" => {
                options.sustained_seconds =
                    value("--sustained-seconds")?.parse().map_err(|_| "--sustained-seconds: a number")?
            }
            "--gather-bytes" => {
                options.gather_bytes = value("--gather-bytes")?.parse().map_err(|_| "--gather-bytes: a number")?
            }
            "--results" => options.results = Some(PathBuf::from(value("--results")?)),
            "--only" => options.only = value("--only")?.split(',').map(str::to_string).collect(),
            "--lockstep" => options.lockstep = true,
            "--retention-mib" => {
                let mib: i64 = value("--retention-mib")?.parse().map_err(|_| "--retention-mib: a number")?;
                options.retention_bytes = if mib == 0 { -1 } else { mib * 1024 * 1024 };
            }
            "--recycle" => {
                options.recycled_segments_max = value("--recycle")?.parse().map_err(|_| "--recycle: a number")?
            }
            "--quick" => {
                options.seconds = 2;
                options.sustained_seconds = 5;
            }
            other => return Err(format!("unknown argument {other:?}; see --help")),
        }
    }
    Ok(options)
}

/// A realistic-ish 1 KiB or 16 KiB batch: JSON-like records, compressible like real events.
fn event_batch(batch_bytes: usize, seed: u64) -> Vec<u8> {
    let record_bytes = 200usize;
    let count = (batch_bytes.saturating_sub(61) / (record_bytes + 12)).max(1);
    let values: Vec<Vec<u8>> = (0..count)
        .map(|index| {
            let mut text = format!(
                "{{\"user\":{},\"event\":\"page_view\",\"url\":\"/products/{}\",\"session\":\"{:016x}\",\"ts\":{}}}",
                seed % 9973,
                index * 7,
                seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index as u64,
                1_700_000_000_000u64 + seed
            );
            while text.len() < record_bytes {
                text.push(' ');
            }
            text.into_bytes()
        })
        .collect();
    let key = seed.to_be_bytes();
    let records: Vec<(&[u8], &[u8])> = values.iter().map(|value| (&key[..], &value[..])).collect();
    make_batch(&records, 1_700_000_000_000)
}

struct Case {
    json: String,
    markdown_row: String,
}

fn fresh_dir(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create benchmark dir");
    dir
}

/// Retention of the read cases (their data is written once).
const READ_CASE_RETENTION_BYTES: i64 = 256 * 1024 * 1024;

fn log_config(compression: CompressionType, retention_bytes: i64) -> LogConfig {
    LogConfig {
        segment_bytes: 64 * 1024 * 1024,
        retention_bytes,
        retention_ms: -1,
        compression,
        ..LogConfig::default()
    }
}

fn open(
    dir: &Path,
    mode: WriteMode,
    partitions: usize,
    compression: CompressionType,
    retention_bytes: i64,
    recycled_segments_max: usize,
) -> (Shard, Vec<LogId>, &'static str) {
    let fs = open_backend(BackendKind::Auto).expect("io backend");
    let config = ShardConfig {
        write_mode: mode,
        recycled_segments_per_log_max: recycled_segments_max,
        ..ShardConfig::default()
    };
    let mut shard = Shard::new(fs, config).expect("shard");
    let ids = (0..partitions)
        .map(|index| {
            shard
                .open_log(&dir.join(format!("p-{index}")), log_config(compression, retention_bytes), 0)
                .expect("open log")
                .0
        })
        .collect();
    let backend = shard.backend_name();
    (shard, ids, backend)
}

struct AppendResult {
    bytes: u64,
    batches: u64,
    commits: u64,
    seconds: f64,
    commit_ms: Vec<f64>,
    per_second_mib: Vec<f64>,
    backend: &'static str,
}

/// One append workload.
#[derive(Clone, Copy)]
struct Workload {
    mode: WriteMode,
    partitions: usize,
    batch_bytes: usize,
    gather_bytes: usize,
    seconds: u64,
    compression: CompressionType,
    /// Append to every partition, then one blocking commit (the engine before overlapped commits).
    lockstep: bool,
    retention_bytes: i64,
    recycled_segments_max: usize,
}

fn run_appends(dir: &Path, workload: &Workload, label: &str) -> AppendResult {
    let Workload {
        mode,
        partitions,
        batch_bytes,
        gather_bytes,
        seconds,
        compression,
        lockstep,
        retention_bytes,
        recycled_segments_max,
    } = *workload;
    let (mut shard, ids, backend) = open(dir, mode, partitions, compression, retention_bytes, recycled_segments_max);
    let batches: Vec<Vec<u8>> = (0..64).map(|seed| event_batch(batch_bytes, seed)).collect();
    let per_commit = (gather_bytes / batches[0].len()).max(1);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut result = AppendResult {
        bytes: 0,
        batches: 0,
        commits: 0,
        seconds: 0.0,
        commit_ms: Vec::new(),
        per_second_mib: Vec::new(),
        backend,
    };
    let mut second_start = Instant::now();
    let mut second_bytes = 0u64;
    let mut last_retention = Instant::now();
    let mut next = 0usize;
    // When each log's commit in flight started (overlapped mode).
    let mut commit_started: Vec<Option<Instant>> = vec![None; ids.len()];
    while Instant::now() < deadline {
        let mut appended_any = false;
        for id in &ids {
            let log_pending = |shard: &Shard| shard.log(*id).map_or(0, |log| log.pending_bytes());
            let target = if lockstep { per_commit * batches[0].len() } else { gather_bytes };
            while log_pending(&shard) < target {
                let batch = &batches[next % batches.len()];
                next += 1;
                match shard.append(*id, batch, LeaderEpoch(0), 0) {
                    Ok(_) => {}
                    Err(engine::EngineError::Backpressure) => break,
                    Err(error) => panic!("append: {error}"),
                }
                appended_any = true;
                result.bytes += batch.len() as u64;
                second_bytes += batch.len() as u64;
                result.batches += 1;
            }
        }
        if lockstep {
            let started_at = Instant::now();
            let report = shard.commit(0);
            result.commit_ms.push(started_at.elapsed().as_secs_f64() * 1000.0);
            assert!(report.failed.is_empty(), "commit failed: {:?}", report.failed);
            result.commits += 1;
        } else {
            shard.start_commits(0);
            // Nothing left to gather: wait for a commit to land.
            let report = shard.reap(!appended_any, 0);
            assert!(report.failed.is_empty(), "commit failed: {:?}", report.failed);
            let now = Instant::now();
            for (id, _) in &report.committed {
                let index = ids.iter().position(|known| known == id).expect("known log");
                if let Some(started_at) = commit_started[index].take() {
                    result.commit_ms.push((now - started_at).as_secs_f64() * 1000.0);
                }
                result.commits += 1;
            }
            for (index, id) in ids.iter().enumerate() {
                if commit_started[index].is_none() && shard.log(*id).is_ok_and(|log| log.is_committing()) {
                    commit_started[index] = Some(now);
                }
            }
        }
        if second_start.elapsed() >= Duration::from_secs(1) {
            let mib = second_bytes as f64 / second_start.elapsed().as_secs_f64() / 1048576.0;
            result.per_second_mib.push(mib);
            eprintln!("  {label}: {:>3}s {:>8.1} MiB/s", result.per_second_mib.len(), mib);
            second_start = Instant::now();
            second_bytes = 0;
        }
        if last_retention.elapsed() >= Duration::from_secs(1) {
            for (_, outcome) in shard.enforce_retention(0) {
                outcome.expect("retention");
            }
            last_retention = Instant::now();
        }
    }
    assert!(shard.commit(0).failed.is_empty(), "final commit failed");
    result.seconds = started.elapsed().as_secs_f64();
    result.commit_ms.sort_by(|a, b| a.total_cmp(b));
    drop(shard);
    result
}

fn append_case(
    options: &Options,
    mode: WriteMode,
    partitions: usize,
    batch_bytes: usize,
    seconds: u64,
    name_prefix: &str,
    lockstep: bool,
) -> Case {
    let name = format!(
        "{name_prefix}append-{}-{}p-{}{}",
        if batch_bytes >= 16 * 1024 { "16KiB" } else { "1KiB" },
        partitions,
        mode_name(mode),
        if lockstep { "-lockstep" } else { "" }
    );
    let load_start = load_average();
    let dir = fresh_dir(&options.dir, &name);
    let workload = Workload {
        mode,
        partitions,
        batch_bytes,
        gather_bytes: options.gather_bytes,
        seconds,
        compression: CompressionType::Producer,
        lockstep,
        retention_bytes: options.retention_bytes,
        recycled_segments_max: options.recycled_segments_max,
    };
    let result = run_appends(&dir, &workload, &name);
    let _ = std::fs::remove_dir_all(&dir);
    let mib_per_second = result.bytes as f64 / result.seconds / 1048576.0;
    let batches_per_second = result.batches as f64 / result.seconds;
    let steady: Vec<f64> = {
        let mut samples: Vec<f64> =
            result.per_second_mib.iter().skip(result.per_second_mib.len() / 4).copied().collect();
        samples.sort_by(|a, b| a.total_cmp(b));
        samples
    };
    let steady_median = percentile(&steady, 0.5);
    let (p50, p99) = (percentile(&result.commit_ms, 0.5), percentile(&result.commit_ms, 0.99));
    let json = format!(
        "{{\"name\": {}, \"kind\": \"append\", \"write_mode\": {}, \"backend\": {}, \"partitions\": {partitions}, \"batch_bytes\": {batch_bytes}, \"gather_bytes_per_partition\": {}, \"seconds\": {:.2}, \"bytes\": {}, \"batches\": {}, \"commits\": {}, \"mib_per_second\": {mib_per_second:.1}, \"mb_per_second\": {:.1}, \"batches_per_second\": {batches_per_second:.0}, \"steady_median_mib_per_second\": {steady_median:.1}, \"per_second_mib\": [{}], \"commit_ms_p50\": {p50:.3}, \"commit_ms_p99\": {p99:.3}, \"commit_mode\": {}, \"retention_bytes\": {}, \"recycled_segments_max\": {}, \"durability\": \"fsync-before-ack\", \"load_start\": {}, \"load_end\": {}}}",
        json_string(&name),
        json_string(mode_name(mode)),
        json_string(result.backend),
        options.gather_bytes,
        result.seconds,
        result.bytes,
        result.batches,
        result.commits,
        result.bytes as f64 / result.seconds / 1e6,
        result.per_second_mib.iter().map(|value| format!("{value:.1}")).collect::<Vec<_>>().join(", "),
        json_string(if lockstep { "lockstep" } else { "overlapped" }),
        options.retention_bytes,
        options.recycled_segments_max,
        json_string(&load_start),
        json_string(&load_average()),
    );
    let markdown_row = format!(
        "| {name} | {mib_per_second:.0} MiB/s | {steady_median:.0} MiB/s | {batches_per_second:.0} | {p50:.2} / {p99:.2} ms |"
    );
    eprintln!("{markdown_row}");
    Case { json, markdown_row }
}

fn mode_name(mode: WriteMode) -> &'static str {
    match mode {
        WriteMode::Direct => "direct",
        WriteMode::Buffered => "buffered",
    }
}

fn drop_page_cache() -> bool {
    let _ = std::process::Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

fn read_case(options: &Options, mode: WriteMode, cold: bool) -> Case {
    let name = format!("read-{}-{}", if cold { "cold-file" } else { "tail-cache" }, mode_name(mode));
    let dir = fresh_dir(&options.dir, &name);
    let partitions = 4;
    // Fill: 64 MiB per partition in 16 KiB batches.
    {
        let (mut shard, ids, _) = open(&dir, mode, partitions, CompressionType::Producer, READ_CASE_RETENTION_BYTES, 0);
        let batch = event_batch(16 * 1024, 1);
        for _ in 0..(64 * 1024 * 1024 / batch.len() / 16) {
            for id in &ids {
                for _ in 0..16 {
                    shard.append(*id, &batch, LeaderEpoch(0), 0).expect("append");
                }
            }
            assert!(shard.commit(0).failed.is_empty());
        }
        if cold {
            shard.close(0).expect("close");
        } else {
            std::mem::forget(shard); // Keep it open below instead.
        }
    }
    let dropped = cold && drop_page_cache();
    let (shard, ids, _) = open(&dir, mode, partitions, CompressionType::Producer, READ_CASE_RETENTION_BYTES, 0);
    let mut sink = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    let mut memory_chunks = 0u64;
    let mut file_chunks = 0u64;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    if cold {
        // One pass over everything, as a consumer catching up would.
        'outer: for id in &ids {
            let end = shard.log(*id).expect("log").log_end_offset();
            let mut offset = shard.log(*id).expect("log").log_start_offset();
            while offset < end {
                let read = shard.read(*id, offset, 1 << 20, None).expect("read");
                for chunk in &read.chunks {
                    copy_out(chunk, &mut sink, &mut memory_chunks, &mut file_chunks);
                }
                bytes += read.size_bytes;
                let last = engine::batch::parse_prefix(&last_batch_prefix(&read)).expect("prefix");
                offset = Offset(last.last_offset() + 1);
                if Instant::now() > deadline {
                    break 'outer;
                }
            }
        }
    } else {
        // Tail reads: the newest ~4 MiB of each partition, over and over. A fresh shard has an
        // empty cache, so append 4 MiB per partition first.
        let mut shard = shard;
        let batch = event_batch(16 * 1024, 2);
        let mut starts = Vec::new();
        for id in &ids {
            starts.push(shard.log(*id).expect("log").log_end_offset());
            for _ in 0..(4 * 1024 * 1024 / batch.len()) {
                shard.append(*id, &batch, LeaderEpoch(0), 0).expect("append");
            }
        }
        assert!(shard.commit(0).failed.is_empty());
        while Instant::now() < deadline {
            for (id, start) in ids.iter().zip(&starts) {
                let read = shard.read(*id, *start, 4 << 20, None).expect("read");
                for chunk in &read.chunks {
                    copy_out(chunk, &mut sink, &mut memory_chunks, &mut file_chunks);
                }
                bytes += read.size_bytes;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    let mib_per_second = bytes as f64 / seconds / 1048576.0;
    let json = format!(
        "{{\"name\": {}, \"kind\": \"read\", \"write_mode\": {}, \"cold\": {cold}, \"page_cache_dropped\": {dropped}, \"bytes\": {bytes}, \"seconds\": {seconds:.2}, \"mib_per_second\": {mib_per_second:.1}, \"memory_chunks\": {memory_chunks}, \"file_chunks\": {file_chunks}, \"note\": \"bytes copied into a user buffer, as a non-zero-copy send would\"}}",
        json_string(&name),
        json_string(mode_name(mode))
    );
    let markdown_row =
        format!("| {name} | {mib_per_second:.0} MiB/s | memory chunks {memory_chunks}, file chunks {file_chunks} |");
    eprintln!("{markdown_row}");
    Case { json, markdown_row }
}

fn last_batch_prefix(read: &engine::ReadResult) -> Vec<u8> {
    // Walk the returned bytes to the last batch header.
    let mut all = Vec::with_capacity(read.size_bytes as usize);
    for chunk in &read.chunks {
        all.extend(chunk.to_vec().expect("chunk"));
    }
    let mut at = 0usize;
    let mut last = 0usize;
    while at < all.len() {
        let prefix = engine::batch::parse_prefix(&all[at..]).expect("prefix");
        last = at;
        at += prefix.size_bytes;
    }
    all[last..last + engine::batch::PREFIX_BYTES].to_vec()
}

fn copy_out(chunk: &ReadChunk, sink: &mut [u8], memory_chunks: &mut u64, file_chunks: &mut u64) {
    match chunk {
        ReadChunk::Memory(bytes) => {
            *memory_chunks += 1;
            for piece in bytes.chunks(sink.len()) {
                sink[..piece.len()].copy_from_slice(piece);
            }
        }
        ReadChunk::File { file, position, length } => {
            *file_chunks += 1;
            let mut done = 0u64;
            while done < *length {
                let take = (*length - done).min(sink.len() as u64) as usize;
                file.read_exact_at(&mut sink[..take], position + done).expect("pread");
                done += take as u64;
            }
        }
    }
}

fn zstd_case(options: &Options, level: i32) -> Case {
    let name = format!("append-zstd{level}-16KiB-4p-direct");
    let dir = fresh_dir(&options.dir, &name);
    let workload = Workload {
        mode: WriteMode::Direct,
        partitions: 4,
        batch_bytes: 16 * 1024,
        gather_bytes: options.gather_bytes,
        seconds: options.seconds,
        compression: CompressionType::Zstd { level },
        lockstep: options.lockstep,
        retention_bytes: options.retention_bytes,
        recycled_segments_max: options.recycled_segments_max,
    };
    let result = run_appends(&dir, &workload, &name);
    let stored: u64 = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .flat_map(|entry| std::fs::read_dir(entry.path()).into_iter().flatten().flatten())
                .filter(|file| file.path().extension().is_some_and(|ext| ext == "log"))
                .map(|file| file.metadata().map_or(0, |m| m.len()))
                .sum()
        })
        .unwrap_or(0);
    let _ = std::fs::remove_dir_all(&dir);
    let mib_per_second = result.bytes as f64 / result.seconds / 1048576.0;
    let json = format!(
        "{{\"name\": {}, \"kind\": \"zstd\", \"level\": {level}, \"input_bytes\": {}, \"seconds\": {:.2}, \"input_mib_per_second\": {mib_per_second:.1}, \"retained_log_bytes\": {stored}, \"commit_ms_p50\": {:.3}}}",
        json_string(&name),
        result.bytes,
        result.seconds,
        percentile(&result.commit_ms, 0.5)
    );
    let markdown_row = format!("| {name} | {mib_per_second:.0} MiB/s of input | |");
    eprintln!("{markdown_row}");
    Case { json, markdown_row }
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("engine-bench: {message}");
            std::process::exit(2);
        }
    };
    let facts = RunFacts::collect();
    let workspace = std::env::current_dir().expect("cwd");
    let results_dir = options.results.clone().unwrap_or_else(|| facts.results_dir(&workspace));
    std::fs::create_dir_all(&options.dir).expect("benchmark dir");
    let mut cases = Vec::new();
    let wants = |case: &str| options.only.iter().any(|only| only == case);
    if wants("append") {
        for batch_bytes in [1024, 16 * 1024] {
            for partitions in [1, 16] {
                for mode in [WriteMode::Direct, WriteMode::Buffered] {
                    cases.push(append_case(
                        &options,
                        mode,
                        partitions,
                        batch_bytes,
                        options.seconds,
                        "",
                        options.lockstep,
                    ));
                }
            }
        }
    }
    if wants("sustained") {
        for mode in [WriteMode::Direct, WriteMode::Buffered] {
            cases.push(append_case(
                &options,
                mode,
                16,
                1024,
                options.sustained_seconds,
                "sustained-",
                options.lockstep,
            ));
        }
        if !options.lockstep {
            // The same run the old way, for the before/after in one report.
            cases.push(append_case(
                &options,
                WriteMode::Direct,
                16,
                1024,
                options.sustained_seconds,
                "sustained-",
                true,
            ));
        }
    }
    if wants("keep-all") {
        // With retention, new segments soon reuse removed segments' files (overwrites of written
        // blocks). The same run keeping everything writes only new files, as fio's fresh-file job.
        let keep_all_seconds = options.sustained_seconds.min(KEEP_ALL_SECONDS_MAX);
        let needed_bytes = keep_all_seconds * KEEP_ALL_BYTES_PER_SECOND_MAX;
        match free_bytes(&options.dir) {
            Some(free) if free > needed_bytes + KEEP_ALL_SPARE_BYTES => {
                let keep_all = Options { retention_bytes: -1, ..options.clone() };
                cases.push(append_case(&keep_all, WriteMode::Direct, 16, 1024, keep_all_seconds, "keep-all-", false));
            }
            free => eprintln!(
                "engine-bench: skipping the keep-all run: it needs {} GiB free, {} there",
                (needed_bytes + KEEP_ALL_SPARE_BYTES) >> 30,
                free.map_or("unknown".to_string(), |bytes| format!("{} GiB", bytes >> 30))
            ),
        }
    }
    if wants("sustained-direct") {
        // Only the case the engine's goal is about (quick A/B runs).
        cases.push(append_case(
            &options,
            WriteMode::Direct,
            16,
            1024,
            options.sustained_seconds,
            "sustained-",
            options.lockstep,
        ));
    }
    if wants("read") {
        for mode in [WriteMode::Direct, WriteMode::Buffered] {
            cases.push(read_case(&options, mode, false));
            cases.push(read_case(&options, mode, true));
        }
    }
    if wants("zstd") {
        cases.push(append_case(
            &options,
            WriteMode::Direct,
            4,
            16 * 1024,
            options.seconds,
            "baseline-for-zstd-",
            options.lockstep,
        ));
        for level in [1, 3] {
            cases.push(zstd_case(&options, level));
        }
    }
    std::fs::create_dir_all(&results_dir).expect("results dir");
    let json = format!(
        "{{\"benchmark\": \"engine\", \"run\": {}, \"durability\": \"fsync-before-ack\", \"gather_bytes_per_partition\": {}, \"cases\": [\n  {}\n]}}\n",
        facts.json(),
        options.gather_bytes,
        cases.iter().map(|case| case.json.clone()).collect::<Vec<_>>().join(",\n  ")
    );
    std::fs::write(results_dir.join("engine.json"), json).expect("write engine.json");
    let mut markdown = String::new();
    let _ = writeln!(markdown, "# Engine benchmark — {} ({}), {}", facts.date, facts.commit, facts.cpu);
    let _ = writeln!(
        markdown,
        "\nKernel {}, {} cores. Durability: fsync before ack. Each commit gathers {} bytes per partition; commits overlap appends (one in flight per partition) except in `-lockstep` cases. Append cases keep 256 MiB per partition, so retention removes segments once that is reached, and new segments reuse their files (recycling: overwrites of written blocks, see decision 0012) unless `--recycle 0`; `keep-all-` runs keep everything and write only new files, like fio's fresh-file job.\n",
        facts.kernel, facts.cores, options.gather_bytes
    );
    let _ = writeln!(markdown, "| case | mean | steady median | batches/s | commit p50 / p99 |\n|---|---|---|---|---|");
    for case in &cases {
        let _ = writeln!(markdown, "{}", case.markdown_row);
    }
    std::fs::write(results_dir.join("engine.md"), markdown).expect("write engine.md");
    eprintln!("engine-bench: {} cases written to {}", cases.len(), results_dir.display());
}
