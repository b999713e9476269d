//! Seeded operation fuzzer over the simulated file system.
//!
//! Each seed drives one shard through a random mix of appends across several logs, group commits
//! (with injected short writes, I/O errors and sync errors), both blocking and overlapped (commits
//! started, then reaped in a seeded order while appends go on behind them), rolls (tiny
//! segments, advancing time), retention, log start advances (DeleteRecords), truncation, clean closes, and crashes (with commits in
//! flight, too) (the simulator keeps a random prefix
//! of unsynced writes, torn at a sector, maybe trailed by garbage), followed by reopening. A model
//! of what was acknowledged is checked after every reopen and periodically:
//! - every batch acknowledged under fsync-before-ack, and not removed by retention or truncation,
//!   reads back byte-identical (apart from the offset and leader epoch the engine sets);
//! - offsets are contiguous from the log start offset;
//! - no read returns a corrupt or partial batch;
//! - the log start offset never goes backwards, and a failed commit leaves `next_offset` equal
//!   to the log end offset.
//!
//! `SKUA_FUZZ_SEEDS=N` runs seeds 0..N (default 300); `SEED=s` replays exactly one seed:
//! `SEED=1234 cargo test -p skua-engine --release --test sim_fuzz -- --nocapture`.

use std::path::PathBuf;

use engine::io::sim::{SimFaults, SimFs, SimRng};
use engine::testkit::make_sized_batch;
use engine::{EngineError, FlushPolicy, LeaderEpoch, LogConfig, LogId, Offset, Shard, ShardConfig, WriteMode};

const LOG_COUNT: usize = 3;
const STEPS_PER_SEED: usize = 400;
const START_MS: i64 = 1_700_000_000_000;

/// What the model knows of one log.
#[derive(Default, Clone)]
struct ModelLog {
    /// Acknowledged batches in offset order: (base, last, bytes as appended).
    batches: Vec<(u64, u64, Vec<u8>)>,
    /// Appended, not yet acknowledged (pending or in flight), in offset order.
    pending: Vec<(u64, u64, Vec<u8>)>,
    /// Acknowledged end: offsets below it were acknowledged (and, for fsync logs, synced).
    acknowledged_end: u64,
    /// Offsets below this are known durable (fsync logs: all acknowledged ones).
    durable_end: u64,
    log_start: u64,
    interval_flush: bool,
}

struct World {
    rng: SimRng,
    sim: SimFs,
    shard: Option<Shard>,
    ids: Vec<LogId>,
    dirs: Vec<PathBuf>,
    configs: Vec<LogConfig>,
    model: Vec<ModelLog>,
    write_mode: WriteMode,
    now_ms: i64,
    seed: u64,
}

fn masked(bytes: &[u8]) -> Vec<u8> {
    let mut copy = bytes.to_vec();
    copy[0..8].fill(0);
    copy[12..16].fill(0);
    copy
}

impl World {
    fn new(seed: u64) -> World {
        let mut rng = SimRng::new(seed);
        let write_mode = if rng.chance(1, 2) { WriteMode::Direct } else { WriteMode::Buffered };
        let sim = SimFs::new(seed ^ 0xA5A5, SimFaults::default());
        let mut configs = Vec::new();
        let mut model = Vec::new();
        for index in 0..LOG_COUNT {
            let interval_flush = index == LOG_COUNT - 1 && rng.chance(1, 3);
            configs.push(LogConfig {
                segment_bytes: 2_000 + rng.below(18_000),
                segment_ms: 5_000 + rng.below(20_000) as i64,
                index_interval_bytes: 256 + rng.below(2_000),
                retention_ms: if rng.chance(1, 2) { 60_000 } else { -1 },
                retention_bytes: if rng.chance(1, 2) { 30_000 + rng.below(30_000) as i64 } else { -1 },
                flush_policy: if interval_flush {
                    FlushPolicy::Interval { flush_messages: 1 + rng.below(20), flush_ms: 1_000 }
                } else {
                    FlushPolicy::FsyncBeforeAck
                },
                ..LogConfig::default()
            });
            model.push(ModelLog { interval_flush, ..ModelLog::default() });
        }
        let dirs = (0..LOG_COUNT).map(|index| PathBuf::from(format!("/fuzz/log-{index}"))).collect();
        let mut world =
            World { rng, sim, shard: None, ids: Vec::new(), dirs, configs, model, write_mode, now_ms: START_MS, seed };
        world.open();
        world
    }

    fn context(&self) -> String {
        format!(
            "seed {} ({:?}); replay: SEED={} cargo test -p skua-engine --release --test sim_fuzz -- --nocapture",
            self.seed, self.write_mode, self.seed
        )
    }

    fn shard(&mut self) -> &mut Shard {
        self.shard.as_mut().expect("open")
    }

    fn open(&mut self) {
        let context = self.context();
        let config = ShardConfig { write_mode: self.write_mode, cache_bytes: 8 * 1024, ..ShardConfig::default() };
        let mut shard = Shard::new(Box::new(self.sim.clone()), config).expect("shard");
        self.ids.clear();
        for index in 0..LOG_COUNT {
            let (id, report) = shard
                .open_log(&self.dirs[index], self.configs[index], self.now_ms)
                .unwrap_or_else(|error| panic!("open failed: {error}; {context}"));
            self.ids.push(id);
            let model = &mut self.model[index];
            let (start, end) = (report.log_start_offset.0, report.log_end_offset.0);
            assert!(start >= model.log_start, "log {index}: log start went backwards; {context}");
            assert!(
                end >= model.durable_end,
                "log {index}: end {end} below the durable end {}; truncations {:?}; {context}",
                model.durable_end,
                report.truncations
            );
            // What survived past the durable end (written but never acknowledged, or acknowledged
            // but unsynced under interval flush) is unknown to the model: keep only what was
            // durable, and take the log as it is from here on.
            let durable_end = model.durable_end;
            model.batches.retain(|(_, last, _)| *last < durable_end);
            model.log_start = start;
            model.batches.retain(|(_, last, _)| *last >= start);
            model.acknowledged_end = end;
            model.durable_end = end;
        }
        self.shard = Some(shard);
    }

    fn check(&mut self) {
        let context = self.context();
        for index in 0..LOG_COUNT {
            let shard = self.shard.as_ref().expect("open");
            let log = shard.log(self.ids[index]).expect("log");
            let model = &self.model[index];
            let (start, end) = (log.log_start_offset(), log.log_end_offset());
            assert!(start.0 >= model.log_start, "log {index}: start went backwards; {context}");
            assert!(
                end.0 >= model.acknowledged_end,
                "log {index}: end {end} < acknowledged {}; {context}",
                model.acknowledged_end
            );
            // Read everything from the start: contiguous, valid, and the model's batches intact.
            let mut offset = start;
            let mut seen: Vec<(u64, u64, Vec<u8>)> = Vec::new();
            let mut reads = 0;
            while offset < end {
                reads += 1;
                assert!(reads < 100_000, "read loop bound; {context}");
                let max_bytes = 1 + self.rng.below(20_000);
                let result = shard
                    .read(self.ids[index], offset, max_bytes, None)
                    .unwrap_or_else(|error| panic!("read {offset}: {error}; {context}"));
                assert!(result.size_bytes > 0, "log {index}: empty read at {offset} below end {end}; {context}");
                let mut bytes = Vec::new();
                for chunk in &result.chunks {
                    bytes.extend(chunk.to_vec().expect("chunk bytes"));
                }
                let headers = engine::batch::validate_all(&bytes)
                    .unwrap_or_else(|error| panic!("log {index}: corrupt read at {offset}: {error}; {context}"));
                let mut at = 0;
                for header in headers {
                    if seen.is_empty() {
                        assert!(
                            header.base_offset <= offset.0 && offset.0 <= header.last_offset(),
                            "log {index}: first batch must contain {offset}; {context}"
                        );
                    } else {
                        assert_eq!(
                            header.base_offset,
                            seen.last().expect("one").1 + 1,
                            "log {index}: offsets contiguous; {context}"
                        );
                    }
                    seen.push((header.base_offset, header.last_offset(), bytes[at..at + header.size_bytes].to_vec()));
                    at += header.size_bytes;
                    offset = Offset(header.last_offset() + 1);
                }
            }
            for (base, last, bytes) in &model.batches {
                if *last < start.0 {
                    continue;
                }
                let found = seen.iter().find(|(seen_base, _, _)| seen_base == base);
                let Some((_, seen_last, seen_bytes)) = found else {
                    panic!("log {index}: acknowledged batch {base}..={last} missing; {context}");
                };
                assert_eq!(seen_last, last, "log {index}: batch {base} range; {context}");
                assert_eq!(masked(seen_bytes), masked(bytes), "log {index}: batch {base} bytes; {context}");
            }
        }
    }

    fn step(&mut self) {
        let choice = self.rng.below(100);
        if std::env::var_os("SKUA_FUZZ_TRACE").is_some() {
            let ends: Vec<String> = self
                .model
                .iter()
                .map(|m| format!("{}/{} s{}", m.acknowledged_end, m.durable_end, m.log_start))
                .collect();
            eprintln!("t={} choice={choice} model(ack/durable)={ends:?}", self.now_ms - START_MS);
        }
        self.now_ms += self.rng.below(300) as i64;
        match choice {
            0..=54 => self.append_some(),
            55..=64 => self.commit(),
            65..=69 => self.start_commits(),
            70..=74 => self.reap(),
            75..=77 => self.retention(),
            78..=79 => self.advance_start(),
            80..=84 => self.truncate(),
            85..=89 => self.toggle_faults(),
            90..=93 => self.clean_restart(),
            _ => self.crash(),
        }
    }

    fn append_some(&mut self) {
        let count = 1 + self.rng.below(6);
        for _ in 0..count {
            let index = self.rng.below(LOG_COUNT as u64) as usize;
            let records = 1 + self.rng.below(5) as usize;
            let value_bytes = self.rng.below(700) as usize;
            let seed = self.rng.next_u64();
            let batch = make_sized_batch(records, value_bytes, seed, self.now_ms);
            let id = self.ids[index];
            let now = self.now_ms;
            match self.shard().append(id, &batch, LeaderEpoch(1), now) {
                Ok(info) => pending_push(&mut self.model[index], info.base_offset.0, info.last_offset.0, batch),
                Err(EngineError::Backpressure) => self.commit(),
                Err(EngineError::Full { .. } | EngineError::Io { .. }) => {} // A roll's file creation failed.
                Err(error) => panic!("append: {error}; {}", self.context()),
            }
        }
    }

    fn commit(&mut self) {
        let now = self.now_ms;
        let report = self.shard().commit(now);
        self.apply(report);
    }

    fn start_commits(&mut self) {
        let now = self.now_ms;
        self.shard().start_commits(now);
    }

    fn reap(&mut self) {
        let now = self.now_ms;
        let wait = self.rng.chance(1, 2);
        let report = self.shard().reap(wait, now);
        self.apply(report);
    }

    fn apply(&mut self, report: engine::CommitReport) {
        for (id, end) in &report.committed {
            let index = self.ids.iter().position(|known| known == id).expect("known log");
            let model = &mut self.model[index];
            model.acknowledged_end = end.0;
            let log = self.shard.as_ref().expect("open").log(*id).expect("log");
            model.durable_end = if model.interval_flush { log.durable_offset().0 } else { end.0 };
            commit_pending(model, end.0);
        }
        for (id, error, lost) in &report.failed {
            let index = self.ids.iter().position(|known| known == id).expect("known log");
            assert!(matches!(error, EngineError::Io { .. } | EngineError::Full { .. }), "{error}; {}", self.context());
            let log = self.shard.as_ref().expect("open").log(*id).expect("log");
            assert_eq!(log.next_offset(), log.log_end_offset(), "failed offsets are reassigned; {}", self.context());
            assert_eq!(lost.start, log.log_end_offset(), "lost range starts at the end; {}", self.context());
            let model = &mut self.model[index];
            assert!(
                model.pending.iter().all(|(base, _, _)| lost.contains(&Offset(*base))),
                "every unacknowledged append is in the lost range {lost:?}; {}",
                self.context()
            );
            drop_pending(model);
        }
    }

    fn retention(&mut self) {
        // Half the time with commits in flight: their segments must survive.
        if self.rng.chance(1, 2) {
            self.commit();
        }
        let now = self.now_ms + self.rng.below(120_000) as i64;
        for (id, result) in self.shard().enforce_retention(now) {
            let index = self.ids.iter().position(|known| *known == id).expect("known log");
            match result {
                Ok(report) => {
                    let model = &mut self.model[index];
                    assert!(report.log_start_offset.0 >= model.log_start);
                    model.log_start = report.log_start_offset.0;
                    model.batches.retain(|(_, last, _)| *last >= report.log_start_offset.0);
                }
                Err(EngineError::Io { .. } | EngineError::Full { .. }) => {}
                Err(error) => panic!("retention: {error}; {}", self.context()),
            }
        }
    }

    fn advance_start(&mut self) {
        // Half the time with commits in flight: their segments must survive.
        if self.rng.chance(1, 2) {
            self.commit();
        }
        let index = self.rng.below(LOG_COUNT as u64) as usize;
        let id = self.ids[index];
        let log = self.shard.as_ref().expect("open").log(id).expect("log");
        let (start, end) = (log.log_start_offset().0, log.log_end_offset().0);
        // Now and then past the end, which must be refused.
        let target = start.saturating_sub(2) + self.rng.below(end - start.saturating_sub(2) + 3);
        let now = self.now_ms;
        let result = self.shard().advance_log_start(id, Offset(target), now);
        let log_start = self.shard.as_ref().expect("open").log(id).expect("log").log_start_offset().0;
        match result {
            Ok(new_start) => {
                assert!(target <= end, "advanced past the end {end} to {target}; {}", self.context());
                assert_eq!(new_start.0, target.max(start), "{}", self.context());
                assert_eq!(log_start, new_start.0, "{}", self.context());
            }
            Err(EngineError::OffsetOutOfRange { .. }) => {
                assert!(target > end, "{target} refused within the log; {}", self.context());
                assert_eq!(log_start, start, "{}", self.context());
            }
            // The checkpoint failed (nothing moved) or a segment file could not go (it moved).
            Err(EngineError::Io { .. } | EngineError::Full { .. }) => {}
            Err(error) => panic!("advance_log_start: {error}; {}", self.context()),
        }
        let model = &mut self.model[index];
        assert!(log_start >= model.log_start, "{}", self.context());
        model.log_start = log_start;
        model.batches.retain(|(_, last, _)| *last >= log_start);
    }

    fn truncate(&mut self) {
        self.commit();
        let index = self.rng.below(LOG_COUNT as u64) as usize;
        let id = self.ids[index];
        let log = self.shard.as_ref().expect("open").log(id).expect("log");
        if log.has_pending() {
            return;
        }
        let (start, end) = (log.log_start_offset().0, log.log_end_offset().0);
        if end <= start {
            return;
        }
        let target = start + self.rng.below(end - start + 1);
        match self.shard().truncate_to(id, Offset(target)) {
            Ok(new_end) => {
                let model = &mut self.model[index];
                assert!(new_end.0 <= target, "truncation ends at or before the target");
                // A start inside the cut batch comes back to the new end (Kafka's truncateTo).
                model.log_start = model.log_start.min(new_end.0);
                model.batches.retain(|(base, _, _)| *base < new_end.0);
                model.acknowledged_end = new_end.0;
                model.durable_end = model.durable_end.min(new_end.0);
                drop_pending(model);
            }
            Err(EngineError::Io { .. } | EngineError::Full { .. }) => {
                // Part of the truncation may have happened: follow the log's end.
                let end = self.shard.as_ref().expect("open").log(id).expect("log").log_end_offset().0;
                let model = &mut self.model[index];
                model.log_start = model.log_start.min(end);
                model.batches.retain(|(base, _, _)| *base < end);
                model.acknowledged_end = end;
                model.durable_end = model.durable_end.min(end);
            }
            Err(error) => panic!("truncate: {error}; {}", self.context()),
        }
    }

    fn toggle_faults(&mut self) {
        let faults = if self.rng.chance(1, 2) {
            SimFaults::default()
        } else {
            SimFaults {
                short_write_per_million: 200_000,
                write_error_per_million: self.rng.below(30_000),
                sync_error_per_million: self.rng.below(10_000),
                latency_us_max: 0,
            }
        };
        self.sim.set_faults(faults);
    }

    fn clean_restart(&mut self) {
        self.sim.set_faults(SimFaults::default());
        self.commit();
        let now = self.now_ms;
        let shard = self.shard.take().expect("open");
        shard.close(now).unwrap_or_else(|error| panic!("close: {error}; {}", self.context()));
        for model in &mut self.model {
            drop_pending(model);
            model.durable_end = model.acknowledged_end;
        }
        self.open();
        self.check();
    }

    fn crash(&mut self) {
        drop(self.shard.take());
        self.sim.set_faults(SimFaults::default());
        self.sim.crash();
        for model in &mut self.model {
            drop_pending(model);
        }
        self.open();
        self.check();
    }
}

// Pending (appended, not yet acknowledged) batches wait in `pending` until a commit report covers
// them; a failed commit or a crash drops them all.
fn pending_push(model: &mut ModelLog, base: u64, last: u64, bytes: Vec<u8>) {
    model.pending.push((base, last, bytes));
}

fn commit_pending(model: &mut ModelLog, end: u64) {
    let covered = model.pending.iter().take_while(|(_, last, _)| *last < end).count();
    model.batches.extend(model.pending.drain(..covered));
}

fn drop_pending(model: &mut ModelLog) {
    model.pending.clear();
}

fn run_seed(seed: u64) {
    let mut world = World::new(seed);
    for step in 0..STEPS_PER_SEED {
        world.step();
        if step % 50 == 49 {
            world.commit();
            world.check();
        }
    }
    world.sim.set_faults(SimFaults::default());
    world.commit();
    world.check();
    world.crash();
}

#[test]
fn seeded_operations_keep_every_acknowledged_batch() {
    let seeds: Vec<u64> = match std::env::var("SEED") {
        Ok(seed) => vec![seed.parse().expect("SEED must be a number")],
        Err(_) => {
            let count: u64 = std::env::var("SKUA_FUZZ_SEEDS").ok().and_then(|text| text.parse().ok()).unwrap_or(300);
            (0..count).collect()
        }
    };
    let started = std::time::Instant::now();
    for seed in &seeds {
        let seed = *seed;
        // Engine assertions panic without knowing the seed: say it before passing the panic on.
        if let Err(panic) = std::panic::catch_unwind(|| run_seed(seed)) {
            eprintln!("sim_fuzz: seed {seed} FAILED; replay: SEED={seed} cargo test -p skua-engine --release --test sim_fuzz -- --nocapture");
            std::panic::resume_unwind(panic);
        }
    }
    eprintln!(
        "sim_fuzz: {} seeds ({}..={}) passed in {:.1?}",
        seeds.len(),
        seeds[0],
        seeds[seeds.len() - 1],
        started.elapsed()
    );
}
