//! Behaviour of one or more logs through the public `Shard` API, on every backend and write mode:
//! append/commit/read, rolls, indexes, reopen after clean close, timestamp lookup, retention,
//! truncation, codec conversion, bad input, disk full and I/O errors.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use engine::io::sim::{SimFaults, SimFs};
use engine::io::{open_backend, BackendKind, FileSystem};
use engine::testkit::{make_batch, make_sized_batch};
use engine::{
    CompressionType, EngineError, FlushPolicy, LeaderEpoch, LogConfig, LogId, Offset, ReadChunk, Shard, ShardConfig,
    WriteMode,
};

const NOW_MS: i64 = 1_700_000_000_000;

/// One place a test runs: a backend, a write mode, a root directory.
struct Setup {
    name: &'static str,
    write_mode: WriteMode,
    root: PathBuf,
    sim: Option<SimFs>,
    _dir: Option<tempfile::TempDir>,
}

impl Setup {
    fn all() -> Vec<Setup> {
        let mut setups = Vec::new();
        for write_mode in [WriteMode::Direct, WriteMode::Buffered] {
            setups.push(Setup {
                name: "sim",
                write_mode,
                root: PathBuf::from("/sim"),
                sim: Some(SimFs::new(1, SimFaults::default())),
                _dir: None,
            });
            let names: &[&'static str] = if uring_available() { &["io_uring", "syscall"] } else { &["syscall"] };
            for &name in names {
                let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
                setups.push(Setup { name, write_mode, root: dir.path().to_path_buf(), sim: None, _dir: Some(dir) });
            }
        }
        setups
    }

    fn fs(&self) -> Box<dyn FileSystem> {
        match (&self.sim, self.name) {
            (Some(sim), _) => Box::new(sim.clone()),
            (None, "io_uring") => open_backend(BackendKind::IoUring).expect("io_uring opened before"),
            (None, _) => open_backend(BackendKind::Syscall).expect("backend"),
        }
    }

    fn shard(&self) -> Shard {
        self.shard_with(ShardConfig { write_mode: self.write_mode, cache_bytes: 64 * 1024, ..ShardConfig::default() })
    }

    fn shard_with(&self, config: ShardConfig) -> Shard {
        Shard::new(self.fs(), config).expect("shard")
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

/// Whether the io_uring cases run. io_uring must open (a silent fallback to plain syscalls would
/// run the syscall cases twice and call it io_uring), unless `SKUA_ALLOW_NO_URING=1` says this
/// machine may skip them.
fn uring_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| match open_backend(BackendKind::IoUring) {
        Ok(_) => true,
        Err(error) if std::env::var("SKUA_ALLOW_NO_URING").as_deref() == Ok("1") => {
            eprintln!("io_uring cannot be opened ({error}): skipping the io_uring cases (SKUA_ALLOW_NO_URING=1)");
            false
        }
        Err(error) => panic!(
            "io_uring cannot be opened ({error}): the io_uring cases need it. On a machine without \
             io_uring (old kernel, seccomp, io_uring_disabled sysctl), set SKUA_ALLOW_NO_URING=1 to skip them"
        ),
    })
}

fn read_all(shard: &Shard, id: LogId, from: Offset) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut offset = from;
    loop {
        let result = shard.read(id, offset, 10_000, None).expect("read");
        if result.size_bytes == 0 {
            return bytes;
        }
        let mut chunk_bytes = Vec::new();
        for chunk in &result.chunks {
            chunk_bytes.extend(chunk.to_vec().expect("chunk"));
        }
        let headers = engine::batch::validate_all(&chunk_bytes).expect("reads return whole, valid batches");
        offset = Offset(headers.last().expect("one").last_offset() + 1);
        bytes.extend(chunk_bytes);
    }
}

fn append_ok(shard: &mut Shard, id: LogId, batch: &[u8]) -> engine::AppendInfo {
    let info = shard.append(id, batch, LeaderEpoch(3), NOW_MS).expect("append");
    let report = shard.commit(NOW_MS);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    info
}

fn small_segments() -> LogConfig {
    LogConfig { segment_bytes: 10_000, index_interval_bytes: 1000, ..LogConfig::default() }
}

#[test]
fn append_commit_read_roll_and_reopen_everywhere() {
    for setup in Setup::all() {
        let context = format!("{} {:?}", setup.name, setup.write_mode);
        let dir = setup.dir("topic-0");
        let mut shard = setup.shard();
        let (id, report) = shard.open_log(&dir, small_segments(), NOW_MS).expect("open");
        assert_eq!(report.log_end_offset, Offset(0), "{context}");
        let mut expected = Vec::new();
        let mut next_offset = Offset(0);
        for index in 0..60u64 {
            let records = 1 + (index % 4);
            let batch = make_sized_batch(records as usize, 100 + index as usize * 7, index, NOW_MS + index as i64);
            let info = append_ok(&mut shard, id, &batch);
            assert_eq!(info.base_offset, next_offset, "{context}");
            assert_eq!(info.last_offset, Offset(next_offset.0 + records - 1), "{context}");
            next_offset = info.last_offset.next();
            expected.push((info.base_offset, batch));
        }
        let log = shard.log(id).expect("log");
        assert!(log.segment_count() > 3, "{context}: rolled by size");
        let end = log.log_end_offset();
        assert_eq!(log.durable_offset(), end, "{context}: fsync before ack");
        // Every batch reads back byte-identical apart from the two fields the engine sets.
        let stored = read_all(&shard, id, Offset(0));
        let headers = engine::batch::validate_all(&stored).expect("valid");
        assert_eq!(headers.len(), 60, "{context}");
        let mut at = 0;
        let mut next = 0u64;
        for header in &headers {
            assert_eq!(header.base_offset, next, "{context}: contiguous offsets");
            assert_eq!(header.partition_leader_epoch, 3);
            next = header.last_offset() + 1;
            at += header.size_bytes;
        }
        assert_eq!(at, stored.len());
        // Reads starting mid-batch return the containing batch.
        let (base, batch) = &expected[20];
        let result = shard.read(id, Offset(base.0 + 1), 1, None).expect("read");
        let first = result.chunks[0].to_vec().expect("bytes");
        if batch.len() > 61 && engine::batch::validate_one(batch).expect("valid").records_count > 1 {
            assert_eq!(&first[16..batch.len()], &batch[16..], "{context}");
        }
        // Out of range.
        assert!(matches!(shard.read(id, Offset(end.0 + 1), 100, None), Err(EngineError::OffsetOutOfRange { .. })));
        assert_eq!(shard.read(id, end, 100, None).expect("at end").size_bytes, 0);
        // Upper bound (high watermark) hides batches at or past it.
        let bounded = shard.read(id, Offset(0), 1 << 20, Some(expected[1].0)).expect("bounded");
        assert_eq!(bounded.size_bytes, expected[0].1.len() as u64, "{context}");

        shard.close(NOW_MS).expect("close");
        let mut shard = setup.shard();
        let (id, report) = shard.open_log(&dir, small_segments(), NOW_MS).expect("reopen");
        assert!(report.clean_shutdown, "{context}");
        assert_eq!(report.segments_scanned, 0, "{context}: clean shutdown trusts the indexes");
        assert!(report.truncations.is_empty(), "{context}");
        assert_eq!(report.log_end_offset, end, "{context}");
        assert_eq!(read_all(&shard, id, Offset(0)), stored, "{context}");
        // Appends continue where they stopped.
        let info = append_ok(&mut shard, id, &make_batch(&[(b"k", b"after")], NOW_MS));
        assert_eq!(info.base_offset, end, "{context}");
        drop(shard); // Not clean: the next open scans the active segment.
        let mut shard = setup.shard();
        let (id, report) = shard.open_log(&dir, small_segments(), NOW_MS).expect("reopen unclean");
        assert!(!report.clean_shutdown);
        assert_eq!(report.segments_scanned, 1, "{context}: only the active segment is rescanned");
        assert_eq!(report.log_end_offset, end.next(), "{context}");
        let _ = &mut shard;
        let _ = id;
    }
}

/// A batch larger than the pending write's reserve cap (`PENDING_WRITE_RESERVE_BYTES_MAX`, 8 MiB)
/// is appended, committed and read back like any other: a producer may send up to
/// `BATCH_BYTES_MAX` in one batch. (Sizing the first pending write of a commit by clamping the
/// last commit's size between this batch and the cap panicked the shard.)
#[test]
fn a_batch_larger_than_the_pending_reserve_is_stored() {
    let value = vec![b'x'; engine::limits::PENDING_WRITE_RESERVE_BYTES_MAX + 1024 * 1024];
    let batch = make_batch(&[(b"k", &value)], NOW_MS);
    for setup in Setup::all() {
        let context = format!("{} {:?}", setup.name, setup.write_mode);
        let mut shard = setup.shard();
        let config = LogConfig { segment_bytes: 64 << 20, ..LogConfig::default() };
        let (id, _) = shard.open_log(&setup.dir("large-0"), config, NOW_MS).expect("open");
        let small = make_batch(&[(b"k", b"small")], NOW_MS);
        append_ok(&mut shard, id, &small);
        let info = append_ok(&mut shard, id, &batch);
        assert_eq!(info.base_offset, Offset(1), "{context}");
        let stored = read_all(&shard, id, Offset(0));
        assert_eq!(stored.len(), small.len() + batch.len(), "{context}");
        assert_eq!(&stored[small.len() + 61..], &batch[61..], "{context}: the records are stored as sent");
    }
}

#[test]
fn many_logs_commit_together() {
    for setup in Setup::all() {
        let mut shard = setup.shard();
        let ids: Vec<LogId> = (0..16)
            .map(|index| {
                shard.open_log(&setup.dir(&format!("t-{index}")), LogConfig::default(), NOW_MS).expect("open").0
            })
            .collect();
        for round in 0..5 {
            for (index, id) in ids.iter().enumerate() {
                shard
                    .append(
                        *id,
                        &make_sized_batch(2, 1000, (round * 16 + index) as u64, NOW_MS),
                        LeaderEpoch(0),
                        NOW_MS,
                    )
                    .expect("append");
            }
            assert_eq!(shard.pending_appends(), 16);
            let report = shard.commit(NOW_MS);
            assert_eq!(report.committed.len(), 16, "{}", setup.name);
            assert_eq!(report.synced_files, 16);
            assert!(report.committed.iter().all(|(_, end)| *end == Offset((round as u64 + 1) * 2)));
        }
    }
}

#[test]
fn timestamp_lookup_finds_first_record_at_or_after() {
    for setup in Setup::all() {
        let mut shard = setup.shard();
        let (id, _) = shard.open_log(&setup.dir("ts"), small_segments(), NOW_MS).expect("open");
        // Batch i holds 3 records with timestamps 1000*i + {0,1,2}.
        for index in 0..40i64 {
            let records: Vec<(&[u8], &[u8])> = vec![(b"k", b"v0"), (b"k", b"v1"), (b"k", b"v2")];
            append_ok(&mut shard, id, &make_batch(&records, 1000 * index));
        }
        assert_eq!(shard.offset_for_timestamp(id, 0).expect("lookup"), Some((Offset(0), 0)));
        assert_eq!(shard.offset_for_timestamp(id, 1).expect("lookup"), Some((Offset(1), 1)));
        assert_eq!(shard.offset_for_timestamp(id, 25_002).expect("lookup"), Some((Offset(77), 25_002)));
        assert_eq!(shard.offset_for_timestamp(id, 25_003).expect("lookup"), Some((Offset(78), 26_000)));
        assert_eq!(shard.offset_for_timestamp(id, 39_003).expect("lookup"), None);
    }
}

/// `segment.jitter.ms`: a segment rolls by age `roll_jitter_ms(base)` before `segment_ms`, its
/// own amount below the jitter bound; without jitter, at `segment_ms` exactly.
#[test]
fn segment_jitter_rolls_each_segment_its_own_amount_early() {
    const SEGMENT_MS: i64 = 10_000;
    for setup in Setup::all() {
        for jitter_ms in [0, SEGMENT_MS] {
            let context = format!("{} {:?} jitter {jitter_ms}", setup.name, setup.write_mode);
            let config = LogConfig { segment_ms: SEGMENT_MS, segment_jitter_ms: jitter_ms, ..LogConfig::default() };
            let early = config.roll_jitter_ms(0);
            assert!((0..jitter_ms.max(1)).contains(&early), "{context}: {early}");
            let mut shard = setup.shard();
            let (id, _) = shard.open_log(&setup.dir(&format!("jitter-{jitter_ms}")), config, NOW_MS).expect("open");
            let mut append_at = |at_ms: i64, index: u64| {
                shard.append(id, &make_sized_batch(1, 100, index, at_ms), LeaderEpoch(3), at_ms).expect("append");
                assert!(shard.commit(at_ms).failed.is_empty(), "{context}");
                shard.log(id).expect("log").segment_count()
            };
            assert_eq!(append_at(NOW_MS, 0), 1, "{context}");
            let roll_at = NOW_MS + SEGMENT_MS - early;
            assert_eq!(append_at(roll_at - 1, 1), 1, "{context}: not yet");
            assert_eq!(append_at(roll_at, 2), 2, "{context}: rolled {early} ms early");
        }
    }
    // Each segment its own share: different bases, different amounts, all below the bound
    // (the smaller of the jitter and segment_ms).
    let config = LogConfig { segment_ms: 5_000, segment_jitter_ms: 60_000, ..LogConfig::default() };
    let shares: std::collections::BTreeSet<i64> = (0..100u64).map(|base| config.roll_jitter_ms(base * 37)).collect();
    assert!(shares.len() > 50, "{shares:?}");
    assert!(shares.iter().all(|share| (0..5_000).contains(share)), "{shares:?}");
}

/// `segment.index.bytes`: a segment rolls once its offset index (8-byte entries) or its time
/// index (12-byte entries) is full, whatever its size and age.
#[test]
fn segment_index_bytes_rolls_a_segment_whose_index_is_full() {
    for setup in Setup::all() {
        // Every batch is indexed (interval 1 byte), with a newer timestamp each: one offset and
        // one time entry per batch. 40 bytes hold 5 offset entries but only 3 time entries.
        for (index_bytes_max, batches_per_segment) in [(40, 3), (10 * 1024 * 1024, 30), (4, 1)] {
            let context = format!("{} {:?} index bytes {index_bytes_max}", setup.name, setup.write_mode);
            let config = LogConfig { index_interval_bytes: 1, index_bytes_max, ..LogConfig::default() };
            let mut shard = setup.shard();
            let (id, _) =
                shard.open_log(&setup.dir(&format!("index-{index_bytes_max}")), config, NOW_MS).expect("open");
            for index in 0..30u64 {
                let at_ms = NOW_MS + index as i64;
                shard.append(id, &make_sized_batch(1, 100, index, at_ms), LeaderEpoch(3), at_ms).expect("append");
                assert!(shard.commit(at_ms).failed.is_empty(), "{context}");
            }
            let segments = shard.log(id).expect("log").segment_count();
            assert_eq!(segments as u64, 30u64.div_ceil(batches_per_segment), "{context}");
        }
    }
    let too_small = LogConfig { index_bytes_max: 3, ..LogConfig::default() };
    assert!(too_small.validate().is_err(), "below Kafka's minimum of 4");
}

#[test]
fn retention_by_size_and_time_keeps_the_active_segment() {
    for setup in Setup::all() {
        let mut shard = setup.shard();
        let config = LogConfig { segment_bytes: 5000, retention_bytes: 12_000, ..LogConfig::default() };
        let (id, _) = shard.open_log(&setup.dir("r"), config, NOW_MS).expect("open");
        for index in 0..30u64 {
            append_ok(&mut shard, id, &make_sized_batch(1, 1000, index, NOW_MS));
        }
        let before = shard.log(id).expect("log").segment_count();
        let reports = shard.enforce_retention(NOW_MS);
        let report = reports[0].1.as_ref().expect("retention");
        let log = shard.log(id).expect("log");
        assert!(report.deleted_segments > 0 && log.segment_count() < before);
        assert!(log.size_bytes() >= 12_000 - 5000 && log.size_bytes() < 12_000 + 5000, "{}", log.size_bytes());
        let start = log.log_start_offset();
        assert!(start > Offset(0));
        assert!(matches!(shard.read(id, Offset(0), 100, None), Err(EngineError::OffsetOutOfRange { .. })));
        assert!(shard.read(id, start, 100, None).expect("read").size_bytes > 0);
        // Time: everything is older than a week from now, but the active segment stays.
        let later = NOW_MS + 8 * 24 * 3600 * 1000;
        shard.enforce_retention(later);
        let log = shard.log(id).expect("log");
        assert_eq!(log.segment_count(), 1);
        let end = log.log_end_offset();
        assert_eq!(log.log_start_offset(), shard.log(id).expect("log").log_start_offset());
        assert!(shard.read(id, log.log_start_offset(), 1 << 20, None).expect("active still readable").size_bytes > 0);
        // The log start survives a reopen.
        let start = log.log_start_offset();
        drop(shard);
        let mut shard = setup.shard();
        let (id, report) = shard.open_log(&setup.dir("r"), config, later).expect("reopen");
        assert_eq!(report.log_start_offset, start);
        assert_eq!(report.log_end_offset, end);
        let _ = id;
    }
}

#[test]
fn advancing_the_log_start_refuses_reads_below_it_deletes_whole_segments_and_survives_reopen() {
    for setup in Setup::all() {
        let context = format!("{} {:?}", setup.name, setup.write_mode);
        let mut shard = setup.shard();
        let (id, _) = shard.open_log(&setup.dir("start"), small_segments(), NOW_MS).expect("open");
        let mut bases = Vec::new();
        for index in 0..40u64 {
            bases.push(append_ok(&mut shard, id, &make_sized_batch(3, 300, index, NOW_MS)).base_offset);
        }
        let end = shard.log(id).expect("log").log_end_offset();
        let segments_before = shard.log(id).expect("log").segment_count();
        // Past the end: refused, nothing moves.
        assert!(
            matches!(shard.advance_log_start(id, end.next(), NOW_MS), Err(EngineError::OffsetOutOfRange { .. })),
            "{context}"
        );
        assert_eq!(shard.log(id).expect("log").log_start_offset(), Offset(0), "{context}");
        // Into the middle of a batch: the start is exactly that offset (Kafka's DeleteRecords).
        let target = Offset(bases[25].0 + 1);
        assert_eq!(shard.advance_log_start(id, target, NOW_MS).expect("advance"), target, "{context}");
        let log = shard.log(id).expect("log");
        assert_eq!(log.log_start_offset(), target, "{context}");
        assert!(log.segment_count() < segments_before, "whole segments below the start go: {context}");
        assert!(matches!(shard.read(id, bases[25], 100, None), Err(EngineError::OffsetOutOfRange { .. })), "{context}");
        // A read at the start returns the batch holding it, as Kafka's does.
        let headers = engine::batch::validate_all(&read_all(&shard, id, target)).expect("valid");
        assert_eq!(headers[0].base_offset, bases[25].0, "{context}");
        assert_eq!(headers.len(), 40 - 25, "{context}");
        // Never back: a lower offset changes nothing.
        assert_eq!(shard.advance_log_start(id, Offset(3), NOW_MS).expect("lower"), target, "{context}");
        // Retention keeps the start (segments above it stay).
        shard.enforce_retention(NOW_MS);
        assert_eq!(shard.log(id).expect("log").log_start_offset(), target, "{context}");
        // Up to the end itself: everything before goes, appends continue at the end.
        drop(shard);
        let mut shard = setup.shard();
        let (id, report) = shard.open_log(&setup.dir("start"), small_segments(), NOW_MS).expect("reopen");
        assert_eq!((report.log_start_offset, report.log_end_offset), (target, end), "{context}");
        assert_eq!(shard.advance_log_start(id, end, NOW_MS).expect("to the end"), end, "{context}");
        assert_eq!(shard.log(id).expect("log").segment_count(), 1, "{context}");
        assert_eq!(append_ok(&mut shard, id, &make_sized_batch(1, 10, 7, NOW_MS)).base_offset, end, "{context}");
        shard.close(NOW_MS).expect("close");
        let mut shard = setup.shard();
        let (_, report) = shard.open_log(&setup.dir("start"), small_segments(), NOW_MS).expect("reopen");
        assert_eq!((report.log_start_offset, report.log_end_offset), (end, end.next()), "{context}");
    }
}

#[test]
fn a_crash_that_cuts_the_tail_below_an_advanced_log_start_reopens_empty_at_the_start() {
    // Each seed keeps a different prefix of the unsynced writes: some cut the tail below the
    // start, which recovery must meet by starting again, empty, at the start.
    let mut reset_count = 0;
    for seed in 0..20 {
        let sim = SimFs::new(seed, SimFaults::default());
        let config = LogConfig {
            flush_policy: FlushPolicy::Interval { flush_messages: 1_000_000, flush_ms: 1_000_000 },
            ..small_segments()
        };
        let shard = || {
            let config = ShardConfig { write_mode: WriteMode::Buffered, ..ShardConfig::default() };
            Shard::new(Box::new(sim.clone()), config).expect("shard")
        };
        let mut first = shard();
        let (id, _) = first.open_log(Path::new("/c/p"), config, NOW_MS).expect("open");
        for index in 0..5u64 {
            append_ok(&mut first, id, &make_sized_batch(2, 100, index, NOW_MS));
        }
        // Committed, never synced: the start moves to the end, then power goes.
        assert_eq!(first.log(id).expect("log").durable_offset(), Offset(0));
        assert_eq!(first.advance_log_start(id, Offset(10), NOW_MS).expect("advance"), Offset(10));
        drop(first);
        sim.crash();
        let mut second = shard();
        let (id, report) = second.open_log(Path::new("/c/p"), config, NOW_MS).expect("reopen");
        assert_eq!((report.log_start_offset, report.log_end_offset), (Offset(10), Offset(10)), "seed {seed}");
        reset_count += usize::from(!report.deleted_segments.is_empty());
        assert_eq!(append_ok(&mut second, id, &make_sized_batch(1, 10, 7, NOW_MS)).base_offset, Offset(10));
    }
    assert!(reset_count > 0, "no seed cut the tail below the start");
}

#[test]
fn truncate_to_offset_cuts_whole_batches_across_segments() {
    for setup in Setup::all() {
        let mut shard = setup.shard();
        let (id, _) = shard.open_log(&setup.dir("tr"), small_segments(), NOW_MS).expect("open");
        let mut bases = Vec::new();
        for index in 0..40u64 {
            bases.push(append_ok(&mut shard, id, &make_sized_batch(3, 300, index, NOW_MS)).base_offset);
        }
        let segments_before = shard.log(id).expect("log").segment_count();
        // Mid-batch: the log end becomes that batch's base (Kafka's rule).
        let end = shard.truncate_to(id, Offset(bases[10].0 + 1)).expect("truncate");
        assert_eq!(end, bases[10]);
        let log = shard.log(id).expect("log");
        assert_eq!(log.log_end_offset(), bases[10]);
        assert!(log.segment_count() < segments_before);
        assert_eq!(engine::batch::validate_all(&read_all(&shard, id, Offset(0))).expect("valid").len(), 10);
        // Appends reuse the offsets.
        assert_eq!(append_ok(&mut shard, id, &make_sized_batch(1, 10, 99, NOW_MS)).base_offset, bases[10]);
        drop(shard);
        let mut shard = setup.shard();
        let (_, report) = shard.open_log(&setup.dir("tr"), small_segments(), NOW_MS).expect("reopen");
        assert_eq!(report.log_end_offset, bases[10].next(), "{} {:?}", setup.name, setup.write_mode);
        assert!(
            report.truncations.iter().all(|t| t.3.contains("bad batch header") || t.3.contains("too short")),
            "{:?}",
            report.truncations
        );
    }
}

#[test]
fn zstd_topics_reencode_uncompressed_batches() {
    for setup in Setup::all() {
        let mut shard = setup.shard();
        let config = LogConfig { compression: CompressionType::Zstd { level: 3 }, ..LogConfig::default() };
        let (id, _) = shard.open_log(&setup.dir("z"), config, NOW_MS).expect("open");
        let original = make_batch(&[(b"key", &[b'a'; 4000]), (b"key", &[b'b'; 4000])], NOW_MS);
        let info = append_ok(&mut shard, id, &original);
        assert!(info.stored_bytes < original.len() / 10);
        let stored = read_all(&shard, id, Offset(0));
        let header = engine::batch::validate_one(&stored).expect("valid, CRC recomputed");
        assert_eq!(header.codec(), engine::batch::Codec::Zstd);
        let records = engine::records::decompress_records(&stored, &header, 1 << 20).expect("decompress");
        assert_eq!(records, &original[61..]);
    }
}

/// A batch converted to the log's codec is held to the log's size limit as stored: a small gzip
/// batch that decompresses past `max.message.bytes` on an `uncompressed` log is refused whole
/// (Kafka's check after recompression), and nothing of it is stored.
#[test]
fn a_converted_batch_is_held_to_the_size_limit() {
    for setup in Setup::all() {
        let mut shard = setup.shard();
        let config = LogConfig {
            compression: CompressionType::Uncompressed,
            batch_bytes_max: Some(10_000),
            ..LogConfig::default()
        };
        let (id, _) = shard.open_log(&setup.dir("converted-limit"), config, NOW_MS).expect("open");
        let zeros = vec![0u8; 50_000];
        let bomb = engine::testkit::make_compressed_batch(&[(b"k", &zeros)], NOW_MS, engine::batch::Codec::Gzip);
        assert!(bomb.len() < 10_000, "small on the wire: {}", bomb.len());
        match shard.append(id, &bomb, LeaderEpoch(3), NOW_MS) {
            Err(EngineError::BatchTooLarge { size_bytes, limit_bytes: 10_000 }) => assert!(size_bytes > 50_000),
            other => panic!("{} {:?}: {other:?}", setup.name, setup.write_mode),
        }
        assert_eq!(shard.log(id).expect("log").log_end_offset(), Offset(0), "nothing stored");
        // Within the limit once converted: stored uncompressed.
        let small = engine::testkit::make_compressed_batch(&[(b"k", &[7u8; 3000])], NOW_MS, engine::batch::Codec::Gzip);
        append_ok(&mut shard, id, &small);
        let stored = read_all(&shard, id, Offset(0));
        assert_eq!(engine::batch::validate_one(&stored).expect("valid").codec(), engine::batch::Codec::None);
    }
}

#[test]
fn bad_input_is_rejected_without_side_effects() {
    let setup = &Setup::all()[0];
    let mut shard =
        setup.shard_with(ShardConfig { batch_bytes_max: 2000, write_mode: setup.write_mode, ..ShardConfig::default() });
    let (id, _) = shard.open_log(&setup.dir("bad"), LogConfig::default(), NOW_MS).expect("open");
    let good = make_batch(&[(b"k", b"v")], NOW_MS);
    let mut corrupt = good.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    assert!(matches!(shard.append(id, &corrupt, LeaderEpoch(0), NOW_MS), Err(EngineError::InvalidBatch(_))));
    assert!(matches!(shard.append(id, &good[..40], LeaderEpoch(0), NOW_MS), Err(EngineError::InvalidBatch(_))));
    assert!(matches!(shard.append(id, &[], LeaderEpoch(0), NOW_MS), Err(EngineError::InvalidBatch(_))));
    let big = make_sized_batch(1, 3000, 1, NOW_MS);
    assert!(matches!(shard.append(id, &big, LeaderEpoch(0), NOW_MS), Err(EngineError::BatchTooLarge { .. })));
    // Two batches where the second is corrupt: nothing is queued.
    let mut pair = good.clone();
    pair.extend_from_slice(&corrupt);
    assert!(shard.append(id, &pair, LeaderEpoch(0), NOW_MS).is_err());
    assert_eq!(shard.log(id).expect("log").next_offset(), Offset(0));
    assert!(matches!(shard.append(LogId(99), &good, LeaderEpoch(0), NOW_MS), Err(EngineError::InvalidInput(_))));
    assert!(matches!(
        shard.open_log(&setup.dir("bad"), LogConfig::default(), NOW_MS),
        Err(EngineError::InvalidInput(_))
    ));
    let bad_config = LogConfig { segment_bytes: 10, ..LogConfig::default() };
    assert!(matches!(shard.open_log(&setup.dir("other"), bad_config, NOW_MS), Err(EngineError::InvalidInput(_))));
}

#[test]
fn backpressure_caps_pending_appends() {
    let setup = &Setup::all()[0];
    let mut shard = setup.shard_with(ShardConfig { inflight_appends_max: 3, ..ShardConfig::default() });
    let (id, _) = shard.open_log(&setup.dir("bp"), LogConfig::default(), NOW_MS).expect("open");
    let batch = make_batch(&[(b"k", b"v")], NOW_MS);
    for _ in 0..3 {
        shard.append(id, &batch, LeaderEpoch(0), NOW_MS).expect("fits");
    }
    assert!(matches!(shard.append(id, &batch, LeaderEpoch(0), NOW_MS), Err(EngineError::Backpressure)));
    shard.commit(NOW_MS);
    shard.append(id, &batch, LeaderEpoch(0), NOW_MS).expect("room again");
}

#[test]
fn disk_full_and_io_errors_fail_the_commit_and_keep_the_log_readable() {
    for write_mode in [WriteMode::Direct, WriteMode::Buffered] {
        let sim = SimFs::new(5, SimFaults::default());
        let mut shard =
            Shard::new(Box::new(sim.clone()), ShardConfig { write_mode, ..ShardConfig::default() }).expect("shard");
        let dir = Path::new("/full/p0");
        let (id, _) = shard.open_log(dir, LogConfig::default(), NOW_MS).expect("open");
        let batch = make_sized_batch(2, 500, 1, NOW_MS);
        append_ok(&mut shard, id, &batch);
        let used: u64 = sim.file_paths().iter().map(|path| sim.contents(path).map_or(0, |c| c.len() as u64)).sum();
        sim.set_capacity_bytes(Some(used + 100));
        let info = shard.append(id, &make_sized_batch(2, 5000, 2, NOW_MS), LeaderEpoch(0), NOW_MS).expect("queued");
        let report = shard.commit(NOW_MS);
        assert_eq!(report.failed.len(), 1);
        let (_, error, lost) = &report.failed[0];
        assert!(matches!(error, EngineError::Full { .. }), "{error:?}");
        assert_eq!(lost.start, info.base_offset);
        let log = shard.log(id).expect("log");
        assert_eq!(log.log_end_offset(), Offset(2));
        assert_eq!(log.next_offset(), Offset(2), "failed offsets are reassigned");
        assert_eq!(read_all(&shard, id, Offset(0)).len(), batch.len());
        // Space comes back: appends work again and offsets continue.
        sim.set_capacity_bytes(None);
        assert_eq!(append_ok(&mut shard, id, &batch).base_offset, Offset(2));
        // An I/O error behaves the same way but is reported as Io.
        sim.set_faults(SimFaults { write_error_per_million: 1_000_000, ..SimFaults::default() });
        shard.append(id, &batch, LeaderEpoch(0), NOW_MS).expect("queued");
        let report = shard.commit(NOW_MS);
        assert!(matches!(report.failed[0].1, EngineError::Io { .. }));
        sim.set_faults(SimFaults::default());
        assert_eq!(append_ok(&mut shard, id, &batch).base_offset, Offset(4));
        let stored = read_all(&shard, id, Offset(0));
        assert_eq!(engine::batch::validate_all(&stored).expect("valid").len(), 3);
    }
}

#[test]
fn interval_flush_acknowledges_before_sync() {
    let sim = SimFs::new(9, SimFaults::default());
    let mut shard =
        Shard::new(Box::new(sim.clone()), ShardConfig { write_mode: WriteMode::Buffered, ..ShardConfig::default() })
            .expect("shard");
    let config = LogConfig {
        flush_policy: FlushPolicy::Interval { flush_messages: 10, flush_ms: 1000 },
        ..LogConfig::default()
    };
    let (id, _) = shard.open_log(Path::new("/i/p"), config, NOW_MS).expect("open");
    let batch = make_sized_batch(3, 10, 1, NOW_MS);
    shard.append(id, &batch, LeaderEpoch(0), NOW_MS).expect("append");
    let report = shard.commit(NOW_MS);
    assert_eq!(report.synced_files, 0);
    let log = shard.log(id).expect("log");
    assert_eq!(log.log_end_offset(), Offset(3));
    assert_eq!(log.durable_offset(), Offset(0));
    // Time passes with nothing new: the commit syncs what was written.
    let report = shard.commit(NOW_MS + 1000);
    assert_eq!(report.synced_files, 1);
    assert_eq!(shard.log(id).expect("log").durable_offset(), Offset(3));
    // Enough messages trigger a sync at once.
    for _ in 0..4 {
        shard.append(id, &batch, LeaderEpoch(0), NOW_MS + 1001).expect("append");
    }
    assert_eq!(shard.commit(NOW_MS + 1001).synced_files, 1);
}

#[test]
fn tail_cache_serves_recent_reads_from_memory() {
    let setup = &Setup::all()[0];
    let mut shard = setup.shard();
    let (id, _) = shard.open_log(&setup.dir("cache"), LogConfig::default(), NOW_MS).expect("open");
    for index in 0..200u64 {
        append_ok(&mut shard, id, &make_sized_batch(1, 1000, index, NOW_MS));
    }
    let recent = shard.read(id, Offset(199), 1 << 20, None).expect("read");
    assert!(matches!(recent.chunks[0], ReadChunk::Memory(_)));
    let old = shard.read(id, Offset(0), 1 << 20, None).expect("read");
    assert!(matches!(old.chunks[0], ReadChunk::File { .. }), "64 KiB cache no longer holds offset 0");
}

/// The shard's logs share one cache budget: over it, the oldest commits' chunks go first,
/// whichever log holds them, so an idle log's old data makes room for a busy log's new data;
/// truncation and deletion give their bytes back to the budget.
#[test]
fn the_logs_of_a_shard_share_one_cache_budget_oldest_commits_first() {
    let setup = &Setup::all()[0];
    let budget = 64 * 1024;
    let mut shard =
        setup.shard_with(ShardConfig { write_mode: setup.write_mode, cache_bytes: budget, ..ShardConfig::default() });
    let (idle, _) = shard.open_log(&setup.dir("idle"), LogConfig::default(), NOW_MS).expect("open");
    let (busy, _) = shard.open_log(&setup.dir("busy"), LogConfig::default(), NOW_MS).expect("open");
    let (other, _) = shard.open_log(&setup.dir("other"), LogConfig::default(), NOW_MS).expect("open");
    // 20 KiB into the idle log: all of it in memory.
    for index in 0..20u64 {
        shard.append(idle, &make_sized_batch(1, 1000, index, NOW_MS), LeaderEpoch(0), NOW_MS).expect("append");
        shard.commit(NOW_MS);
    }
    let idle_bytes = shard.log(idle).expect("log").cached_bytes();
    assert!(idle_bytes >= 20_000, "{idle_bytes}");
    assert!(matches!(shard.read(idle, Offset(0), 1 << 20, None).expect("read").chunks[0], ReadChunk::Memory(_)));
    // Then 100 KiB into the busy log: the budget holds, the idle log's oldest chunks went first.
    for index in 0..100u64 {
        shard.append(busy, &make_sized_batch(1, 1000, index, NOW_MS), LeaderEpoch(0), NOW_MS).expect("append");
        shard.commit(NOW_MS);
        let total: usize = [idle, busy, other].iter().map(|id| shard.log(*id).expect("log").cached_bytes()).sum();
        assert_eq!(shard.cached_bytes(), total, "the shard's count is the logs' sum");
        assert!(shard.cached_bytes() <= budget, "{} > {budget}", shard.cached_bytes());
    }
    assert_eq!(shard.log(idle).expect("log").cached_bytes(), 0, "the idle log's chunks were the oldest");
    let busy_bytes = shard.log(busy).expect("log").cached_bytes();
    assert!(busy_bytes > budget - 2_000, "the busy log uses the whole budget: {busy_bytes}");
    // Reads are the same bytes from the file as they were from memory.
    assert!(matches!(shard.read(idle, Offset(0), 1 << 20, None).expect("read").chunks[0], ReadChunk::File { .. }));
    assert_eq!(engine::batch::validate_all(&read_all(&shard, idle, Offset(0))).expect("valid").len(), 20);
    assert!(matches!(shard.read(busy, Offset(99), 1 << 20, None).expect("read").chunks[0], ReadChunk::Memory(_)));
    // A write to a third log now evicts the busy log's oldest chunks, not its newest.
    shard.append(other, &make_sized_batch(1, 1000, 0, NOW_MS), LeaderEpoch(0), NOW_MS).expect("append");
    shard.commit(NOW_MS);
    assert!(matches!(shard.read(other, Offset(0), 1 << 20, None).expect("read").chunks[0], ReadChunk::Memory(_)));
    assert!(matches!(shard.read(busy, Offset(99), 1 << 20, None).expect("read").chunks[0], ReadChunk::Memory(_)));
    assert!(shard.cached_bytes() <= budget);
    // Truncation and deletion give bytes back.
    shard.truncate_to(busy, Offset(50)).expect("truncate");
    assert_eq!(
        shard.cached_bytes(),
        shard.log(busy).expect("log").cached_bytes() + shard.log(other).expect("log").cached_bytes()
    );
    shard.delete_log(busy).expect("delete");
    assert_eq!(shard.cached_bytes(), shard.log(other).expect("log").cached_bytes());
    assert!(shard.cached_bytes() > 0);
}

/// A reader of segment files gets a read-ahead window sized from what it asks for (four reads,
/// within 4..=64 MiB), asked for once per half window and only for the part not asked yet; a
/// read from the tail cache asks for none.
#[test]
fn file_reads_read_ahead_a_window_sized_from_the_read_once_per_half_window() {
    let sim = SimFs::new(21, SimFaults::default());
    let mut shard = Shard::new(
        Box::new(sim.clone()),
        ShardConfig { write_mode: WriteMode::Direct, cache_bytes: 256 * 1024, ..ShardConfig::default() },
    )
    .expect("shard");
    let config = LogConfig { segment_bytes: 64 << 20, index_interval_bytes: 4096, ..LogConfig::default() };
    let (id, _) = shard.open_log(Path::new("/ahead/p0"), config, NOW_MS).expect("open");
    // 20 MiB in 100 KiB batches, one segment; the 256 KiB cache holds only the last two.
    for index in 0..200u64 {
        shard.append(id, &make_sized_batch(1, 100 * 1024, index, NOW_MS), LeaderEpoch(0), NOW_MS).expect("append");
        shard.commit(NOW_MS);
    }
    let segment_bytes = 200 * make_sized_batch(1, 100 * 1024, 0, NOW_MS).len() as u64;
    sim.take_prefetches();
    // A consumer reading 1 MiB at a time: a 4 MiB window, asked again after each 2 MiB.
    let mut offset = Offset(0);
    let mut read_to = 0u64;
    for _ in 0..8 {
        let result = shard.read(id, offset, 1 << 20, None).expect("read");
        let ReadChunk::File { position, length, .. } = &result.chunks[0] else { panic!("a file read") };
        read_to = position + length;
        let headers = engine::batch::validate_all(&result.chunks[0].to_vec().expect("bytes")).expect("batches");
        offset = Offset(headers.last().expect("one").last_offset() + 1);
    }
    let asked = sim.take_prefetches();
    let ranges: Vec<(u64, u64)> = asked.iter().map(|(_, position, length)| (*position, position + length)).collect();
    assert!(ranges.len() < 8, "not one hint per read: {ranges:?}");
    assert_eq!(ranges[0].0, 0, "the first hint starts at the read");
    for pair in ranges.windows(2) {
        assert_eq!(pair[1].0, pair[0].1, "each hint asks only for what follows the last: {ranges:?}");
    }
    let ahead = ranges.last().expect("hints").1 - read_to;
    assert!((2 << 20..=4 << 20).contains(&ahead), "{ahead} bytes ahead of the reader: {ranges:?}");
    // A follower reading 32 MiB at a time: the window is capped at 64 MiB (here: the segment's end).
    let result = shard.read(id, Offset(0), 32 << 20, None).expect("read");
    assert!(matches!(result.chunks[0], ReadChunk::File { .. }));
    let asked = sim.take_prefetches();
    assert_eq!(asked.len(), 1);
    assert_eq!((asked[0].1, asked[0].1 + asked[0].2), (0, segment_bytes), "read and window up to the segment end");
    // A read of the newest batch comes from the cache and asks for nothing.
    let result = shard.read(id, Offset(199), 1 << 20, None).expect("read");
    assert!(matches!(result.chunks[0], ReadChunk::Memory(_)));
    assert!(sim.take_prefetches().is_empty());
}

#[test]
fn recovery_truncates_a_corrupt_active_tail_and_reports_it() {
    for write_mode in [WriteMode::Direct, WriteMode::Buffered] {
        let sim = SimFs::new(11, SimFaults::default());
        let config = ShardConfig { write_mode, ..ShardConfig::default() };
        let dir = Path::new("/rec/p0");
        let mut shard = Shard::new(Box::new(sim.clone()), config).expect("shard");
        let (id, _) = shard.open_log(dir, LogConfig::default(), NOW_MS).expect("open");
        let mut positions = Vec::new();
        let mut position = 0u64;
        for index in 0..10u64 {
            let batch = make_sized_batch(2, 300, index, NOW_MS);
            positions.push(position);
            position += batch.len() as u64;
            append_ok(&mut shard, id, &batch);
        }
        drop(shard);
        // Flip a bit inside batch 6's records: the CRC no longer matches.
        let segment = dir.join("00000000000000000000.log");
        assert!(sim.flip_bit(&segment, positions[6] + 100, 3));
        let mut shard = Shard::new(Box::new(sim.clone()), config).expect("shard");
        let (id, report) = shard.open_log(dir, LogConfig::default(), NOW_MS).expect("reopen");
        assert_eq!(report.log_end_offset, Offset(12), "{write_mode:?}: batches 0..6 kept");
        assert_eq!(report.truncations.len(), 1);
        let (path, kept, _, why) = &report.truncations[0];
        assert_eq!(path, &segment);
        assert_eq!(*kept, positions[6]);
        assert!(why.contains("CRC"), "{why}");
        assert_eq!(engine::batch::validate_all(&read_all(&shard, id, Offset(0))).expect("valid").len(), 6);
        // The truncation is durable: a crash right after recovery does not bring the bytes back.
        drop(shard);
        sim.crash();
        let mut shard = Shard::new(Box::new(sim.clone()), config).expect("shard");
        let (_, report) = shard.open_log(dir, LogConfig::default(), NOW_MS).expect("reopen");
        assert_eq!(report.log_end_offset, Offset(12));
    }
}

#[test]
fn overlapped_commits_acknowledge_what_queued_behind_them_everywhere() {
    for setup in Setup::all() {
        let context = format!("{} {:?}", setup.name, setup.write_mode);
        let mut shard = setup.shard();
        let ids: Vec<LogId> = (0..3)
            .map(|index| {
                shard.open_log(&setup.dir(&format!("overlap-{index}")), small_segments(), NOW_MS).expect("open").0
            })
            .collect();
        let mut expected: Vec<Vec<Vec<u8>>> = vec![Vec::new(); ids.len()];
        let mut acknowledged = vec![Offset(0); ids.len()];
        let mut saw_append_behind_commit = false;
        for round in 0..40u64 {
            for (index, id) in ids.iter().enumerate() {
                let batch = make_sized_batch(1 + (round % 3) as usize, 300, round * 10 + index as u64, NOW_MS);
                saw_append_behind_commit |= shard.log(*id).expect("log").is_committing();
                shard.append(*id, &batch, LeaderEpoch(0), NOW_MS).expect("append");
                expected[index].push(batch);
            }
            shard.start_commits(NOW_MS);
            let report = shard.reap(round % 4 == 3, NOW_MS);
            assert!(report.failed.is_empty(), "{context}: {:?}", report.failed);
            for (id, end) in report.committed {
                let index = ids.iter().position(|known| *known == id).expect("known");
                assert!(end >= acknowledged[index], "{context}: acknowledged ends only grow");
                acknowledged[index] = end;
            }
            for (index, id) in ids.iter().enumerate() {
                let log = shard.log(*id).expect("log");
                assert!(log.log_end_offset() >= acknowledged[index], "{context}");
                assert_eq!(log.durable_offset(), log.log_end_offset(), "{context}: readable means durable");
            }
        }
        let report = shard.commit(NOW_MS);
        assert!(report.failed.is_empty(), "{context}");
        assert_eq!(shard.commits_in_flight(), 0, "{context}");
        assert_eq!(shard.pending_appends(), 0, "{context}: every append acknowledged");
        if setup.name == "io_uring" {
            assert!(saw_append_behind_commit, "{context}: appends queued behind a commit in flight");
        }
        let check = |shard: &Shard, context: &str| {
            for (index, id) in ids.iter().enumerate() {
                let stored = read_all(shard, *id, Offset(0));
                let headers = engine::batch::validate_all(&stored).expect("valid");
                assert_eq!(headers.len(), expected[index].len(), "{context}: log {index}");
                let mut at = 0;
                for (header, batch) in headers.iter().zip(&expected[index]) {
                    assert_eq!(&stored[at + 16..at + header.size_bytes], &batch[16..], "{context}: log {index}");
                    at += header.size_bytes;
                }
            }
        };
        check(&shard, &context);
        shard.close(NOW_MS).expect("close");
        let mut reopened = setup.shard();
        for (index, id) in ids.iter().enumerate() {
            let (reopened_id, report) =
                reopened.open_log(&setup.dir(&format!("overlap-{index}")), small_segments(), NOW_MS).expect("reopen");
            assert_eq!(reopened_id, *id, "{context}");
            assert!(report.truncations.is_empty(), "{context}: clean close, nothing cut");
        }
        check(&reopened, &format!("{context} after reopen"));
    }
}

/// Names in `dir` that end with `suffix`, through the backend (the simulator has no real files).
fn names_ending(fs: &mut dyn FileSystem, dir: &Path, suffix: &str) -> Vec<String> {
    fs.list_dir(dir).expect("list").into_iter().filter(|name| name.ends_with(suffix)).collect()
}

#[test]
fn retention_recycles_segment_files_and_recovery_serves_none_of_their_old_bytes() {
    for setup in Setup::all() {
        let context = format!("{} {:?}", setup.name, setup.write_mode);
        let dir = setup.dir("recycle");
        let mut fs = setup.fs();
        let mut shard = setup.shard();
        // Equal-sized batches: the new data in a recycled file ends exactly where an old, valid
        // batch begins, the case recovery must not mistake for data.
        let config = LogConfig { segment_bytes: 5000, retention_bytes: 12_000, ..LogConfig::default() };
        let (id, _) = shard.open_log(&dir, config, NOW_MS).expect("open");
        let mut batches: Vec<(Offset, Vec<u8>)> = Vec::new();
        let mut recycled_seen = 0;
        let mut reused = 0;
        for index in 0..57u64 {
            let batch = make_sized_batch(1, 1000, index, NOW_MS);
            let waiting = names_ending(fs.as_mut(), &dir, ".log.recycled");
            let info = append_ok(&mut shard, id, &batch);
            batches.push((info.base_offset, batch));
            if !waiting.is_empty() && names_ending(fs.as_mut(), &dir, ".log.recycled").is_empty() {
                reused += 1;
            }
            shard.enforce_retention(NOW_MS);
            let recycled = names_ending(fs.as_mut(), &dir, ".log.recycled");
            assert!(recycled.len() <= 1, "{context}: at most one recycled file per log: {recycled:?}");
            recycled_seen += recycled.len();
            let log = shard.log(id).expect("log");
            let logs = names_ending(fs.as_mut(), &dir, ".log");
            assert_eq!(logs.len(), log.segment_count(), "{context}: {logs:?}");
        }
        assert!(recycled_seen > 0 && reused > 3, "{context}: recycled {recycled_seen}, reused {reused}");
        // Stop with the active segment a reused file that holds one new batch and old bytes after.
        let log = shard.log(id).expect("log");
        let start = log.log_start_offset();
        let end = log.log_end_offset();
        let active_batches = end.0 - log.active_segment_base().0;
        assert!(active_batches < 3, "{context}: active segment has {active_batches} batches");
        drop(shard);
        let mut shard = setup.shard();
        let (id, report) = shard.open_log(&dir, config, NOW_MS).expect("reopen");
        assert_eq!(report.log_end_offset, end, "{context}: {report:?}");
        assert_eq!(report.log_start_offset, start, "{context}");
        assert!(report.truncations.is_empty(), "{context}: old bytes of a recycled file are no damage: {report:?}");
        assert!(report.recycled_tail_bytes > 0, "{context}: {report:?}");
        // Byte for byte what was appended, apart from the base offset and epoch the engine sets.
        let read = read_all(&shard, id, start);
        let kept: Vec<&(Offset, Vec<u8>)> = batches.iter().filter(|(base, _)| *base >= start).collect();
        let headers = engine::batch::validate_all(&read).expect("valid");
        assert_eq!(headers.len(), kept.len(), "{context}: {report:?}");
        let mut at = 0;
        for (header, (base, batch)) in headers.iter().zip(&kept) {
            assert_eq!(header.base_offset, base.0, "{context}");
            assert!(read[at + 16..at + header.size_bytes] == batch[16..], "{context}: batch at {base}");
            at += header.size_bytes;
        }
        assert!(names_ending(fs.as_mut(), &dir, ".log.recycled").is_empty(), "{context}: recovery drops leftovers");
        // Appending on continues the log, and a clean close leaves no recycled file behind.
        for index in 57..75u64 {
            append_ok(&mut shard, id, &make_sized_batch(1, 1000, index, NOW_MS));
            shard.enforce_retention(NOW_MS);
        }
        shard.close(NOW_MS).expect("close");
        assert!(names_ending(fs.as_mut(), &dir, ".log.recycled").is_empty(), "{context}");
    }
}

#[test]
fn recycling_can_be_turned_off() {
    let sim = SimFs::new(5, SimFaults::default());
    let config = ShardConfig { recycled_segments_per_log_max: 0, ..ShardConfig::default() };
    let mut shard = Shard::new(Box::new(sim.clone()), config).expect("shard");
    let dir = Path::new("/norecycle/p0");
    let log_config = LogConfig { segment_bytes: 5000, retention_bytes: 12_000, ..LogConfig::default() };
    let (id, _) = shard.open_log(dir, log_config, NOW_MS).expect("open");
    let mut fs: Box<dyn FileSystem> = Box::new(sim.clone());
    for index in 0..30u64 {
        append_ok(&mut shard, id, &make_sized_batch(1, 1000, index, NOW_MS));
        shard.enforce_retention(NOW_MS);
        assert!(names_ending(fs.as_mut(), dir, ".log.recycled").is_empty());
    }
    assert!(shard.log(id).expect("log").log_start_offset() > Offset(0), "retention ran");
}

#[test]
fn recovery_drops_a_stray_segment_inside_the_previous_one_and_keeps_what_follows() {
    // A failed roll could leave `<base>.log` behind while the previous segment went on growing
    // past `base` and later rolled: that file must go alone, not take the later segments along.
    let sim = SimFs::new(8, SimFaults::default());
    let config = ShardConfig::default();
    let dir = Path::new("/stray/p0");
    let log_config = LogConfig { segment_bytes: 5000, ..LogConfig::default() };
    let mut shard = Shard::new(Box::new(sim.clone()), config).expect("shard");
    let (id, _) = shard.open_log(dir, log_config, NOW_MS).expect("open");
    for index in 0..12u64 {
        append_ok(&mut shard, id, &make_sized_batch(1, 1000, index, NOW_MS));
    }
    let end = shard.log(id).expect("log").log_end_offset();
    assert!(shard.log(id).expect("log").segment_count() >= 3);
    drop(shard);
    let mut fs: Box<dyn FileSystem> = Box::new(sim.clone());
    let stray = fs.open(&dir.join("00000000000000000002.log"), engine::io::OpenOptions::REPLACE).expect("stray");
    stray.write_all_at(&make_sized_batch(1, 1000, 99, NOW_MS), 0).expect("write");
    stray.sync_data().expect("sync");
    let mut shard = Shard::new(Box::new(sim.clone()), config).expect("shard");
    let (id, report) = shard.open_log(dir, log_config, NOW_MS).expect("reopen");
    assert_eq!(report.log_end_offset, end, "{report:?}");
    assert_eq!(report.deleted_segments, vec![dir.join("00000000000000000002.log")]);
    let headers = engine::batch::validate_all(&read_all(&shard, id, Offset(0))).expect("valid");
    assert_eq!(headers.len() as u64, end.0, "every batch kept");
}

#[test]
fn damage_to_a_recycled_segments_own_batch_is_still_reported_as_a_truncation() {
    let sim = SimFs::new(9, SimFaults::default());
    let config = ShardConfig::default();
    let dir = Path::new("/recycled-damage/p0");
    let log_config = LogConfig { segment_bytes: 5000, retention_bytes: 12_000, ..LogConfig::default() };
    let mut shard = Shard::new(Box::new(sim.clone()), config).expect("shard");
    let (id, _) = shard.open_log(dir, log_config, NOW_MS).expect("open");
    let batch_bytes = make_sized_batch(1, 1000, 0, NOW_MS).len() as u64;
    for index in 0..58u64 {
        append_ok(&mut shard, id, &make_sized_batch(1, 1000, index, NOW_MS));
        shard.enforce_retention(NOW_MS);
    }
    let log = shard.log(id).expect("log");
    let (active, end) = (log.active_segment_base(), log.log_end_offset());
    let active_batches = end.0 - active.0;
    assert!(active_batches >= 2, "{active_batches}");
    drop(shard);
    // The active segment is a recycled file; damage its last batch (its header still names the
    // segment's next offset, so this is not the file's old contents).
    let segment = dir.join(format!("{:020}.log", active.0));
    assert!(sim.flip_bit(&segment, (active_batches - 1) * batch_bytes + 100, 2));
    let mut shard = Shard::new(Box::new(sim.clone()), config).expect("shard");
    let (_, report) = shard.open_log(dir, log_config, NOW_MS).expect("reopen");
    assert_eq!(report.log_end_offset, Offset(end.0 - 1), "{report:?}");
    assert_eq!(report.truncations.len(), 1, "{report:?}");
    assert_eq!(report.truncations[0].1, (active_batches - 1) * batch_bytes);
    assert_eq!(report.recycled_tail_bytes, 0, "{report:?}");
}

#[test]
fn max_timestamp_is_the_first_record_of_the_largest_timestamp() {
    for setup in Setup::all() {
        let mut shard = setup.shard();
        let (id, _) = shard.open_log(&setup.dir("max-ts"), small_segments(), NOW_MS).expect("open");
        assert_eq!(shard.max_timestamp(id).expect("lookup"), None, "an empty log has none");
        // Batch i holds 3 records of 1000 bytes (about three batches a segment) with timestamps
        // t + {0, 1, 2}; t grows with i except for batches 17 and 30, which share the largest t:
        // the earlier one (in an earlier segment) is the answer, at its last record.
        let largest_ms = 900_000;
        for index in 0..40u64 {
            let base_ms = if index == 17 || index == 30 { largest_ms } else { 1000 * index as i64 };
            append_ok(&mut shard, id, &make_sized_batch(3, 1000, index, base_ms));
        }
        assert!(shard.log(id).expect("log").segment_count() > 5, "{}: the batches span segments", setup.name);
        assert_eq!(
            shard.max_timestamp(id).expect("lookup"),
            Some((Offset(17 * 3 + 2), largest_ms + 2)),
            "{}",
            setup.name
        );
    }
}
