//! A shard's logs and its group commit.
//!
//! Owns: the set of logs one shard thread owns, the shard's file system backend, the limits on
//! what may wait for a commit, and the group commit itself. [`Shard::start_commits`] prepares the
//! pending appends of every log that has no commit in flight and hands them to the backend in one
//! submission, each file's `fdatasync` linked behind its writes; [`Shard::reap`] collects what
//! finished, resubmits short writes, and reports which logs committed. Appends go on while commits
//! are in flight (a log's next commit starts as soon as its previous one lands), so the disk and
//! the shard thread work at the same time. [`Shard::commit`] is the blocking form: everything
//! pending is committed when it returns. Leaders append with [`Shard::append_validated`] (offsets
//! and epoch assigned), followers with [`Shard::append_replicated`] (the leader's batches byte for
//! byte) and start again at the leader's log start with [`Shard::reset_to`]. The logs' tail
//! caches share the shard's budget (`ShardConfig::cache_bytes`): each finished commit is a
//! sequence number, and over the budget the chunks of the oldest commits go first, whichever log
//! holds them. The shard times its commits that sync and its backend times each write and sync
//! ([`Shard::io_stats`]). Single-threaded by design: the broker runs one `Shard` per core and never shares it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Range;
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::time::Instant;

use crate::batch::ValidatedBatches;
use crate::config::{LogConfig, ShardConfig};
use crate::error::{EngineError, Result};
use crate::io::stats::{IoStats, LatencyHistogram};
use crate::io::{advance_chain, ChainStep, FileSystem};
use crate::log::{AppendInfo, Log, PreparedCommit, ReadResult, RecoveryReport, RetentionReport};
use crate::types::{LeaderEpoch, LogId, Offset};

/// What group commits achieved since the last report.
#[derive(Debug, Default)]
pub struct CommitReport {
    /// Logs whose pending appends are now acknowledged: every offset below `end` is readable (and
    /// durable if the log's flush policy is fsync-before-ack).
    pub committed: Vec<(LogId, Offset)>,
    /// Logs whose pending appends failed; the offsets in the range were never written and will be
    /// assigned again.
    pub failed: Vec<(LogId, EngineError, Range<Offset>)>,
    /// Files synced by these commits.
    pub synced_files: usize,
    /// Bytes handed to the kernel (with direct-mode padding and rewritten tail blocks).
    pub written_bytes: u64,
}

impl CommitReport {
    pub fn is_empty(&self) -> bool {
        self.committed.is_empty() && self.failed.is_empty()
    }

    pub fn merge(&mut self, other: CommitReport) {
        self.committed.extend(other.committed);
        self.failed.extend(other.failed);
        self.synced_files += other.synced_files;
        self.written_bytes += other.written_bytes;
    }
}

/// One log's commit while its chains are in flight.
#[derive(Debug)]
struct InFlight {
    prepared: PreparedCommit,
    chains_open: usize,
    /// The first error of any of its chains.
    error: Option<EngineError>,
    /// Appends and bytes this commit acknowledges (released from the shard's limits when it lands).
    appends: usize,
    bytes: usize,
    synced_files: usize,
    written_bytes: u64,
    /// When its chains were handed to the backend (for [`IoStats::log_flush`]).
    started_at: Instant,
}

#[derive(Debug)]
pub struct Shard {
    fs: Box<dyn FileSystem>,
    config: ShardConfig,
    logs: BTreeMap<LogId, Log>,
    next_log_id: u32,
    /// Appends (and their bytes) accepted and not yet acknowledged, pending or in flight: what
    /// `inflight_appends_max` and `pending_bytes_max` bound.
    unacknowledged_appends: usize,
    unacknowledged_bytes: usize,
    /// Per log, appends and bytes queued since its last commit started.
    queued: BTreeMap<LogId, (usize, usize)>,
    /// Logs with pending appends or written-but-unsynced data: the only ones a commit visits, so
    /// idle partitions cost nothing.
    dirty: BTreeSet<LogId>,
    in_flight: BTreeMap<LogId, InFlight>,
    /// Results gathered while waiting for one log (truncation, close), for the next `reap`.
    undelivered: CommitReport,
    /// The latest clock reading a caller gave, for commits finished while settling one log.
    last_now_ms: i64,
    /// Bytes all logs' tail caches hold (what `config.cache_bytes` bounds).
    cached_bytes: usize,
    /// The commits whose chunks the caches hold, oldest first: the eviction order. Entries whose
    /// chunks went otherwise (truncation, retention, a log closed) are skipped when popped, and
    /// dropped in bulk when they pile up (`cache_order_compact_len`).
    cache_order: VecDeque<(LogId, u64)>,
    /// The sequence number of the next finished commit.
    cache_sequence: u64,
    /// `cache_order`'s length at which stale entries are dropped.
    cache_order_compact_len: usize,
    /// How long the log commits that synced took ([`IoStats::log_flush`]).
    log_flush: LatencyHistogram,
}

/// `cache_order` entries below which stale ones are never looked for.
const CACHE_ORDER_COMPACT_LEN_MIN: usize = 4096;

impl Shard {
    pub fn new(fs: Box<dyn FileSystem>, config: ShardConfig) -> Result<Shard> {
        config.validate()?;
        Ok(Shard {
            fs,
            config,
            logs: BTreeMap::new(),
            next_log_id: 0,
            unacknowledged_appends: 0,
            unacknowledged_bytes: 0,
            queued: BTreeMap::new(),
            dirty: BTreeSet::new(),
            in_flight: BTreeMap::new(),
            undelivered: CommitReport::default(),
            last_now_ms: 0,
            cached_bytes: 0,
            cache_order: VecDeque::new(),
            cache_sequence: 0,
            cache_order_compact_len: CACHE_ORDER_COMPACT_LEN_MIN,
            log_flush: LatencyHistogram::default(),
        })
    }

    pub fn config(&self) -> &ShardConfig {
        &self.config
    }

    /// How long this shard's disk operations took since it started: its backend's writes and
    /// syncs, and its log commits that synced.
    pub fn io_stats(&self) -> IoStats {
        IoStats { log_flush: self.log_flush, ..self.fs.io_stats() }
    }

    /// The I/O backend in use (`io_uring`, `syscall`, `sim`).
    pub fn backend_name(&self) -> &'static str {
        self.fs.name()
    }

    /// The shard's file system, for small files its caller keeps beside the logs (the partition
    /// layer's producer-state snapshots), written and read with blocking calls. One backend per
    /// shard means one set of descriptors, and in tests one simulated disk that crashes as a
    /// whole. Never [`FileSystem::start`] chains on it: every completion the shard reaps must
    /// belong to one of its commits.
    pub fn file_system(&mut self) -> &mut dyn FileSystem {
        self.fs.as_mut()
    }

    /// Opens or creates the log in `dir` and recovers it.
    pub fn open_log(&mut self, dir: &Path, config: LogConfig, now_ms: i64) -> Result<(LogId, RecoveryReport)> {
        if self.logs.values().any(|log| log.dir() == dir) {
            return Err(EngineError::InvalidInput(format!("log {} is already open", dir.display())));
        }
        let (log, report) = Log::open(self.fs.as_mut(), dir, config, &self.config, now_ms)?;
        let id = LogId(self.next_log_id);
        self.next_log_id += 1;
        self.logs.insert(id, log);
        Ok((id, report))
    }

    pub fn log(&self, id: LogId) -> Result<&Log> {
        self.logs.get(&id).ok_or_else(|| EngineError::InvalidInput(format!("unknown log {id:?}")))
    }

    pub fn log_ids(&self) -> Vec<LogId> {
        self.logs.keys().copied().collect()
    }

    fn log_mut(&mut self, id: LogId) -> Result<(&mut Log, &mut dyn FileSystem)> {
        let log = self.logs.get_mut(&id).ok_or_else(|| EngineError::InvalidInput(format!("unknown log {id:?}")))?;
        Ok((log, self.fs.as_mut()))
    }

    /// Bytes the logs' tail caches hold together (at most `ShardConfig::cache_bytes`).
    pub fn cached_bytes(&self) -> usize {
        self.cached_bytes
    }

    /// Books the change of `id`'s cached bytes since they were `before` (the log may be gone).
    fn account_cache(&mut self, id: LogId, before: usize) {
        let after = self.logs.get(&id).map_or(0, Log::cached_bytes);
        self.cached_bytes = self.cached_bytes - before + after;
        debug_assert_eq!(self.cached_bytes, self.logs.values().map(Log::cached_bytes).sum::<usize>());
    }

    /// Evicts the oldest commits' chunks until the caches fit the shard's budget, and drops
    /// eviction entries whose chunks are gone once they pile up.
    fn evict_cache(&mut self) {
        while self.cached_bytes > self.config.cache_bytes {
            let Some((id, sequence)) = self.cache_order.pop_front() else { break };
            if let Some(log) = self.logs.get_mut(&id) {
                self.cached_bytes -= log.evict_cache_through(sequence);
            }
        }
        if self.cache_order.len() >= self.cache_order_compact_len {
            let logs = &self.logs;
            self.cache_order.retain(|(id, sequence)| logs.get(id).is_some_and(|log| log.cache_holds(*sequence)));
            self.cache_order_compact_len = CACHE_ORDER_COMPACT_LEN_MIN.max(2 * self.cache_order.len());
        }
    }

    /// Appends accepted and not yet acknowledged (pending or in flight).
    pub fn pending_appends(&self) -> usize {
        self.unacknowledged_appends
    }

    /// Bytes accepted and not yet acknowledged (pending or in flight).
    pub fn pending_bytes(&self) -> usize {
        self.unacknowledged_bytes
    }

    /// Logs with a commit in flight.
    pub fn commits_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Readable when a commit in flight has finished and [`Shard::reap`] has something to do;
    /// `None` when the backend completes everything within [`Shard::start_commits`] or cannot
    /// signal (then reap with `wait`).
    pub fn completion_fd(&self) -> Option<BorrowedFd<'_>> {
        self.fs.completion_fd()
    }

    /// Queues an append for a commit. The offsets are assigned now; the append is acknowledged
    /// when a commit reports its log committed past `last_offset`. Validates the batches' layout
    /// and CRC; the produce path validates once up front and calls [`Shard::append_validated`].
    pub fn append(&mut self, id: LogId, batches: &[u8], leader_epoch: LeaderEpoch, now_ms: i64) -> Result<AppendInfo> {
        self.append_with(id, batches.len(), now_ms, |log, fs| log.append(fs, batches, leader_epoch, now_ms))
    }

    /// [`Shard::append`] for batches validated before: their bytes are not checked again.
    pub fn append_validated(
        &mut self,
        id: LogId,
        batches: &ValidatedBatches,
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.append_with(id, batches.size_bytes(), now_ms, |log, fs| {
            log.append_validated(fs, batches, leader_epoch, now_ms)
        })
    }

    /// Appends a leader's batches as a follower, byte for byte with their own offsets and leader
    /// epochs (see [`Log::append_replicated`]); acknowledged like [`Shard::append`].
    pub fn append_replicated(&mut self, id: LogId, batches: &ValidatedBatches, now_ms: i64) -> Result<AppendInfo> {
        self.append_with(id, batches.size_bytes(), now_ms, |log, fs| log.append_replicated(fs, batches, now_ms))
    }

    /// What every append shares: the shard's limits before, its accounting after.
    fn append_with(
        &mut self,
        id: LogId,
        size_bytes: usize,
        now_ms: i64,
        append: impl FnOnce(&mut Log, &mut dyn FileSystem) -> Result<AppendInfo>,
    ) -> Result<AppendInfo> {
        if self.unacknowledged_appends >= self.config.inflight_appends_max
            || self.unacknowledged_bytes + size_bytes > self.config.pending_bytes_max
        {
            return Err(EngineError::Backpressure);
        }
        self.last_now_ms = now_ms;
        let (log, fs) = self.log_mut(id)?;
        let info = append(log, fs)?;
        self.unacknowledged_appends += 1;
        self.unacknowledged_bytes += info.stored_bytes;
        let queued = self.queued.entry(id).or_default();
        queued.0 += 1;
        queued.1 += info.stored_bytes;
        self.dirty.insert(id);
        Ok(info)
    }

    /// Starts a commit for every dirty log without one in flight, all in one submission. Returns
    /// how many started. Logs whose interval flush is not due stay dirty.
    pub fn start_commits(&mut self, now_ms: i64) -> usize {
        self.last_now_ms = now_ms;
        let candidates: Vec<LogId> = self.dirty.iter().copied().filter(|id| !self.in_flight.contains_key(id)).collect();
        let mut started = 0;
        for id in candidates {
            if self.start_commit(id, now_ms) {
                started += 1;
            }
        }
        if started > 0 {
            self.fs.flush();
        }
        started
    }

    /// Prepares and starts one log's commit (not flushed). False when it had nothing due.
    fn start_commit(&mut self, id: LogId, now_ms: i64) -> bool {
        let Some(log) = self.logs.get_mut(&id) else {
            self.dirty.remove(&id);
            return false;
        };
        let Some(mut prepared) = log.prepare_commit(now_ms) else {
            if log.durable_offset() >= log.log_end_offset() && !log.has_pending() {
                self.dirty.remove(&id);
            }
            return false; // Interval flush not due yet.
        };
        self.dirty.remove(&id);
        let (appends, bytes) = self.queued.remove(&id).unwrap_or_default();
        let chains = prepared.chains();
        let mut in_flight = InFlight {
            prepared,
            chains_open: chains.len(),
            error: None,
            appends,
            bytes,
            synced_files: chains.iter().filter(|chain| chain.sync).count(),
            written_bytes: 0,
            started_at: Instant::now(),
        };
        for chain in chains {
            in_flight.written_bytes += chain.writes.iter().map(|write| write.buf.as_slice().len() as u64).sum::<u64>();
            self.fs.start(u64::from(id.0), chain);
        }
        self.in_flight.insert(id, in_flight);
        true
    }

    /// Collects finished I/O: resubmits short writes, finishes the commits whose chains all
    /// landed, starts the next commit of each log that finished with appends queued behind it,
    /// and reports. With `wait`, blocks until at least one chain finished (if any is in flight).
    pub fn reap(&mut self, wait: bool, now_ms: i64) -> CommitReport {
        self.last_now_ms = now_ms;
        let mut report = std::mem::take(&mut self.undelivered);
        let wait = wait && report.is_empty();
        self.reap_into(wait, now_ms, &mut report);
        report
    }

    fn reap_into(&mut self, wait: bool, now_ms: i64, report: &mut CommitReport) {
        let mut restart = Vec::new();
        let mut resubmitted = false;
        for completion in self.fs.reap(wait) {
            let id = LogId(completion.token as u32);
            let entry = self.in_flight.get_mut(&id).expect("a completion belongs to a commit in flight");
            let file = completion.chain.file.clone();
            match advance_chain(completion.chain, completion.outcome) {
                ChainStep::Again(chain) => {
                    self.fs.start(completion.token, chain);
                    resubmitted = true;
                    continue;
                }
                ChainStep::Done(Err(error)) => {
                    entry.error.get_or_insert(EngineError::from_io(file.path(), error));
                }
                ChainStep::Done(Ok(())) => {}
            }
            entry.chains_open -= 1;
            if entry.chains_open == 0 {
                let done = self.in_flight.remove(&id).expect("present");
                self.finish(id, done, now_ms, report);
                restart.push(id);
            }
        }
        let mut started = false;
        for id in restart {
            if self.dirty.contains(&id) {
                started |= self.start_commit(id, now_ms);
            }
        }
        if resubmitted || started {
            self.fs.flush();
        }
    }

    fn finish(&mut self, id: LogId, done: InFlight, now_ms: i64, report: &mut CommitReport) {
        self.unacknowledged_appends -= done.appends;
        self.unacknowledged_bytes -= done.bytes;
        report.synced_files += done.synced_files;
        report.written_bytes += done.written_bytes;
        let Some(log) = self.logs.get_mut(&id) else { return };
        let outcome = match done.error {
            Some(error) => Err(error),
            None => Ok(()),
        };
        let cached_before = log.cached_bytes();
        let sequence = self.cache_sequence;
        self.cache_sequence += 1;
        if outcome.is_ok() && done.synced_files > 0 {
            self.log_flush.observe(done.started_at.elapsed());
        }
        let finished = log.finish_commit(self.fs.as_mut(), done.prepared, outcome, now_ms, sequence);
        if log.cache_holds(sequence) {
            self.cache_order.push_back((id, sequence));
        }
        let dirty = log.has_pending() || log.durable_offset() < log.log_end_offset();
        self.account_cache(id, cached_before);
        self.evict_cache();
        match finished {
            Ok(end) => report.committed.push((id, end)),
            Err((error, lost)) => {
                // The appends queued behind the failed commit were dropped with it.
                if let Some((appends, bytes)) = self.queued.remove(&id) {
                    self.unacknowledged_appends -= appends;
                    self.unacknowledged_bytes -= bytes;
                }
                report.failed.push((id, error, lost));
            }
        }
        if dirty {
            self.dirty.insert(id);
        }
    }

    /// Writes every pending append of every log, syncing as each log's flush policy asks, waits
    /// until all of it landed, and reports (including what earlier non-blocking reaps had not
    /// reported yet).
    pub fn commit(&mut self, now_ms: i64) -> CommitReport {
        let mut report = CommitReport::default();
        self.start_commits(now_ms);
        loop {
            report.merge(self.reap(!self.in_flight.is_empty(), now_ms));
            self.start_commits(now_ms);
            if self.in_flight.is_empty() {
                break;
            }
        }
        report
    }

    /// Waits until `id` has no commit in flight, keeping what other logs report for the next
    /// `reap`.
    fn settle(&mut self, id: LogId) {
        while self.in_flight.contains_key(&id) {
            let mut report = CommitReport::default();
            self.reap_into(true, self.last_now_ms, &mut report);
            self.undelivered.merge(report);
        }
    }

    pub fn read(&self, id: LogId, start: Offset, max_bytes: u64, upper_bound: Option<Offset>) -> Result<ReadResult> {
        self.log(id)?.read(start, max_bytes, upper_bound)
    }

    pub fn offset_for_timestamp(&self, id: LogId, timestamp_ms: i64) -> Result<Option<(Offset, i64)>> {
        self.log(id)?.offset_for_timestamp(timestamp_ms)
    }

    /// The log's largest timestamp and the first offset carrying it; `None` for an empty log.
    pub fn max_timestamp(&self, id: LogId) -> Result<Option<(Offset, i64)>> {
        self.log(id)?.max_timestamp()
    }

    /// Applies retention to every log. Segments with bytes in flight are kept for the next round.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Vec<(LogId, Result<RetentionReport>)> {
        let fs = self.fs.as_mut();
        let cached_before = self.logs.values().map(Log::cached_bytes).sum::<usize>();
        let reports = self.logs.iter_mut().map(|(id, log)| (*id, log.enforce_retention(fs, now_ms))).collect();
        let cached_after = self.logs.values().map(Log::cached_bytes).sum::<usize>();
        self.cached_bytes = self.cached_bytes + cached_after - cached_before;
        reports
    }

    pub fn truncate_to(&mut self, id: LogId, offset: Offset) -> Result<Offset> {
        self.settle(id);
        let (log, fs) = self.log_mut(id)?;
        let cached_before = log.cached_bytes();
        let truncated = log.truncate_to(fs, offset);
        self.account_cache(id, cached_before);
        truncated
    }

    /// Removes every segment of `id` and starts it again, empty, at `offset` (a follower behind
    /// the leader's log start): see [`Log::reset_to`]. Waits for the log's commit in flight;
    /// appends still pending are refused.
    pub fn reset_to(&mut self, id: LogId, offset: Offset, now_ms: i64) -> Result<()> {
        self.settle(id);
        self.last_now_ms = now_ms;
        let (log, fs) = self.log_mut(id)?;
        let cached_before = log.cached_bytes();
        let reset = log.reset_to(fs, offset, now_ms);
        self.account_cache(id, cached_before);
        reset
    }

    /// Changes one log's configuration: see [`Log::set_config`].
    pub fn set_log_config(&mut self, id: LogId, config: LogConfig) -> Result<()> {
        let (log, _) = self.log_mut(id)?;
        log.set_config(config)
    }

    /// Moves the log start of `id` up to `offset` (at most its committed end): see
    /// [`Log::advance_log_start`]. Returns the log start.
    pub fn advance_log_start(&mut self, id: LogId, offset: Offset, now_ms: i64) -> Result<Offset> {
        self.last_now_ms = now_ms;
        let (log, fs) = self.log_mut(id)?;
        let cached_before = log.cached_bytes();
        let advanced = log.advance_log_start(fs, offset, now_ms);
        self.account_cache(id, cached_before);
        advanced
    }

    /// Closes one log cleanly (commit first).
    pub fn close_log(&mut self, id: LogId) -> Result<()> {
        self.settle(id);
        let (log, fs) = self.log_mut(id)?;
        let cached_before = log.cached_bytes();
        log.close(fs)?;
        self.logs.remove(&id);
        self.account_cache(id, cached_before);
        Ok(())
    }

    /// Deletes a log and its files.
    pub fn delete_log(&mut self, id: LogId) -> Result<()> {
        self.settle(id);
        self.dirty.remove(&id);
        if let Some((appends, bytes)) = self.queued.remove(&id) {
            self.unacknowledged_appends -= appends;
            self.unacknowledged_bytes -= bytes;
        }
        let log = self.logs.remove(&id).ok_or_else(|| EngineError::InvalidInput(format!("unknown log {id:?}")))?;
        self.account_cache(id, log.cached_bytes());
        log.delete(self.fs.as_mut())
    }

    /// Commits what is pending and closes every log cleanly. Returns the first error, after
    /// trying every log.
    pub fn close(mut self, now_ms: i64) -> Result<CommitReport> {
        let report = self.commit(now_ms);
        let mut first_error = None;
        for (_, mut log) in std::mem::take(&mut self.logs) {
            if let Err(error) = log.close(self.fs.as_mut()) {
                first_error.get_or_insert(error);
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(report),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use bytes::Bytes;

    use super::*;
    use crate::batch;
    use crate::config::CompressionType;
    use crate::io::sim::{SimFaults, SimFs};
    use crate::testkit::make_batch;

    const NOW_MS: i64 = 1_700_000_000_000;

    fn shard(config: ShardConfig) -> Shard {
        Shard::new(Box::new(SimFs::new(1, SimFaults::default())), config).expect("shard")
    }

    fn stored(shard: &Shard, id: LogId) -> Vec<u8> {
        let read = shard.read(id, Offset(0), u64::MAX, None).expect("read");
        read.chunks.iter().flat_map(|chunk| chunk.to_vec().expect("chunk")).collect()
    }

    fn three_batches() -> Vec<u8> {
        let mut bytes = make_batch(&[(b"a", b"1")], NOW_MS);
        bytes.extend(make_batch(&[(b"b", b"2"), (b"c", b"3")], NOW_MS + 1));
        bytes.extend(make_batch(&[(b"d", b"4"), (b"e", b"5"), (b"f", b"6")], NOW_MS + 2));
        bytes
    }

    #[test]
    fn append_validated_stores_what_append_stores() {
        for compression in [CompressionType::Producer, CompressionType::Zstd { level: 3 }] {
            let mut shard = shard(ShardConfig::default());
            let config = LogConfig { compression, ..LogConfig::default() };
            let (plain, _) = shard.open_log(Path::new("/sim/plain"), config, NOW_MS).expect("open");
            let (validated, _) = shard.open_log(Path::new("/sim/validated"), config, NOW_MS).expect("open");
            let bytes = three_batches();
            let checked = ValidatedBatches::validate(Bytes::from(bytes.clone())).expect("valid");
            assert_eq!(checked.size_bytes(), bytes.len());
            assert_eq!(checked.headers().count(), 3);
            for _ in 0..2 {
                let by_append = shard.append(plain, &bytes, LeaderEpoch(4), NOW_MS).expect("append");
                let by_validated =
                    shard.append_validated(validated, &checked, LeaderEpoch(4), NOW_MS).expect("append_validated");
                assert_eq!(by_append, by_validated);
            }
            assert!(shard.commit(NOW_MS).failed.is_empty());
            assert_eq!(stored(&shard, plain), stored(&shard, validated));
            assert_eq!(batch::validate_all(&stored(&shard, plain)).expect("valid").len(), 6);
        }
    }

    #[test]
    fn commits_that_sync_are_timed_and_their_writes_and_syncs_too() {
        use crate::config::FlushPolicy;
        let mut shard = shard(ShardConfig::default());
        let synced = LogConfig { flush_policy: FlushPolicy::FsyncBeforeAck, ..LogConfig::default() };
        let unsynced = LogConfig {
            flush_policy: FlushPolicy::Interval { flush_messages: u64::MAX, flush_ms: i64::MAX },
            ..synced
        };
        let (durable, _) = shard.open_log(Path::new("/sim/durable"), synced, NOW_MS).expect("open");
        let (lazy, _) = shard.open_log(Path::new("/sim/lazy"), unsynced, NOW_MS).expect("open");
        let before = shard.io_stats();
        for round in 0..3 {
            shard.append(durable, &three_batches(), LeaderEpoch(0), NOW_MS + round).expect("append");
            shard.append(lazy, &three_batches(), LeaderEpoch(0), NOW_MS + round).expect("append");
            assert!(shard.commit(NOW_MS + round).failed.is_empty());
        }
        let after = shard.io_stats();
        assert_eq!(after.log_flush.count() - before.log_flush.count(), 3, "the durable log's commits only");
        assert_eq!(after.write.count() - before.write.count(), 6, "both logs' writes");
        assert_eq!(after.fdatasync.count() - before.fdatasync.count(), 3);
    }

    #[test]
    fn append_validated_does_not_validate_again() {
        let bytes = make_batch(&[(b"k", b"v")], NOW_MS);
        let headers = batch::validate_all_with_records(&bytes).expect("valid");
        let mut corrupt = bytes.clone();
        corrupt[batch::CRC_AT] ^= 0xff;
        let mut shard = shard(ShardConfig::default());
        let (id, _) = shard.open_log(Path::new("/sim/log"), LogConfig::default(), NOW_MS).expect("open");
        // `append` checks the CRC; a `ValidatedBatches` is taken at its word (only a test can
        // build one whose bytes changed after validation).
        assert!(matches!(
            shard.append(id, &corrupt, LeaderEpoch(0), NOW_MS),
            Err(EngineError::InvalidBatch(batch_error)) if matches!(batch_error, crate::BatchError::CrcMismatch { .. })
        ));
        let trusted = ValidatedBatches::trusted_for_test(Bytes::from(corrupt.clone()), headers);
        let info = shard.append_validated(id, &trusted, LeaderEpoch(0), NOW_MS).expect("not checked again");
        assert_eq!((info.base_offset, info.last_offset), (Offset(0), Offset(0)));
    }

    #[test]
    fn append_validated_still_enforces_batch_bytes_max() {
        let bytes = make_batch(&[(b"k", &[7u8; 200][..])], NOW_MS);
        let mut shard = shard(ShardConfig { batch_bytes_max: 100, ..ShardConfig::default() });
        let (id, _) = shard.open_log(Path::new("/sim/log"), LogConfig::default(), NOW_MS).expect("open");
        let checked = ValidatedBatches::validate(Bytes::from(bytes)).expect("valid");
        assert!(matches!(
            shard.append_validated(id, &checked, LeaderEpoch(0), NOW_MS),
            Err(EngineError::BatchTooLarge { limit_bytes: 100, .. })
        ));
        assert_eq!(shard.log(id).expect("log").next_offset(), Offset(0));
    }

    #[test]
    fn a_log_batch_limit_set_at_runtime_bounds_producers_but_not_replicas_or_recovery() {
        let big = make_batch(&[(b"k", &[7u8; 500][..])], NOW_MS);
        let mut shard = shard(ShardConfig::default());
        let dir = Path::new("/sim/log");
        let (id, _) = shard.open_log(dir, LogConfig::default(), NOW_MS).expect("open");
        shard.append(id, &big, LeaderEpoch(0), NOW_MS).expect("under the shard's limit");
        assert!(shard.commit(NOW_MS).failed.is_empty());
        // `max.message.bytes` lowered: the producer's next big batch is refused...
        let lowered = LogConfig { batch_bytes_max: Some(200), ..LogConfig::default() };
        shard.set_log_config(id, lowered).expect("valid config");
        assert_eq!(shard.log(id).expect("log").config().batch_bytes_max, Some(200));
        assert!(matches!(
            shard.append(id, &big, LeaderEpoch(0), NOW_MS),
            Err(EngineError::BatchTooLarge { limit_bytes: 200, .. })
        ));
        // ...a leader's batch copied by a follower is not...
        let (leader, _) = shard.open_log(Path::new("/sim/leader"), LogConfig::default(), NOW_MS).expect("open");
        let copied = leader_batches(&mut shard, leader, &big, LeaderEpoch(0));
        let (follower, _) = shard.open_log(Path::new("/sim/follower"), lowered, NOW_MS).expect("open");
        shard.append_replicated(follower, &copied, NOW_MS).expect("a follower takes what its leader took");
        assert!(shard.commit(NOW_MS).failed.is_empty());
        // ...and recovery under the lower limit keeps the batch written before it.
        shard.close_log(id).expect("close");
        let (id, report) = shard.open_log(dir, lowered, NOW_MS).expect("reopen");
        assert_eq!(report.truncated_bytes(), 0);
        let kept = stored(&shard, id);
        assert_eq!(kept.len(), big.len(), "the batch is kept whole (its epoch stamped in)");
        assert_eq!(batch::validate_all(&kept).expect("valid").len(), 1);
        // An invalid configuration is refused and the old one kept.
        let invalid = LogConfig { segment_ms: 0, ..lowered };
        assert!(shard.set_log_config(id, invalid).is_err());
        assert_eq!(*shard.log(id).expect("log").config(), lowered);
    }

    #[test]
    fn log_append_time_marks_each_leader_batch_with_the_append_time_and_a_valid_crc() {
        let mut shard = shard(ShardConfig::default());
        let config = LogConfig { timestamp_type: crate::config::TimestampType::LogAppendTime, ..LogConfig::default() };
        let (id, _) = shard.open_log(Path::new("/sim/log"), config, NOW_MS).expect("open");
        let produced = make_batch(&[(b"a", b"1"), (b"b", b"2")], 1_000);
        let appended_at = NOW_MS + 77;
        let info = shard.append(id, &produced, LeaderEpoch(0), appended_at).expect("append");
        assert_eq!(info.max_timestamp, appended_at, "the produce answer's log_append_time");
        assert!(shard.commit(appended_at).failed.is_empty());
        let kept = stored(&shard, id);
        let headers = batch::validate_all(&kept).expect("the CRC covers the new attributes and timestamp");
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].max_timestamp, appended_at);
        assert_ne!(headers[0].attributes & batch::LOG_APPEND_TIME_BIT, 0);
        assert_eq!(shard.offset_for_timestamp(id, appended_at).expect("lookup"), Some((Offset(0), appended_at)));
        // A follower stores the leader's batch as marked, whatever its own setting.
        let mut plain = self::shard(ShardConfig::default());
        let (follower, _) = plain.open_log(Path::new("/sim/follower"), LogConfig::default(), NOW_MS).expect("open");
        let copied = ValidatedBatches::validate(Bytes::from(kept.clone())).expect("valid");
        plain.append_replicated(follower, &copied, NOW_MS + 500).expect("replicated");
        assert!(plain.commit(NOW_MS + 500).failed.is_empty());
        assert_eq!(stored(&plain, follower), kept);
    }

    /// Leader batches as a follower fetches them: appended (offsets and `epoch` assigned) to a
    /// leader log, committed, read back.
    fn leader_batches(shard: &mut Shard, leader: LogId, bytes: &[u8], epoch: LeaderEpoch) -> ValidatedBatches {
        let from = shard.log(leader).expect("log").next_offset();
        shard.append(leader, bytes, epoch, NOW_MS).expect("leader append");
        assert!(shard.commit(NOW_MS).failed.is_empty());
        let end = shard.log(leader).expect("log").log_end_offset();
        let mut fetched = Vec::new();
        let mut at = from;
        // A read stops at a segment's end: a fetcher reads on from where it stopped.
        while at < end {
            let read = shard.read(leader, at, u64::MAX, None).expect("read");
            let bytes: Vec<u8> = read.chunks.iter().flat_map(|chunk| chunk.to_vec().expect("chunk")).collect();
            let last = batch::validate_all(&bytes).expect("valid").last().expect("a batch").last_offset();
            at = Offset(last + 1);
            fetched.extend(bytes);
        }
        ValidatedBatches::validate(Bytes::from(fetched)).expect("valid")
    }

    #[test]
    fn replicated_batches_are_stored_byte_for_byte_with_their_offsets_and_epochs() {
        for compression in [CompressionType::Producer, CompressionType::Zstd { level: 3 }] {
            let mut shard = shard(ShardConfig::default());
            let (leader, _) = shard.open_log(Path::new("/sim/leader"), LogConfig::default(), NOW_MS).expect("open");
            // The follower's log asks for zstd: replicated batches must still not be recompressed.
            let config = LogConfig { compression, ..LogConfig::default() };
            let (follower, _) = shard.open_log(Path::new("/sim/follower"), config, NOW_MS).expect("open");
            for epoch in [LeaderEpoch(3), LeaderEpoch(5)] {
                let fetched = leader_batches(&mut shard, leader, &three_batches(), epoch);
                let base = shard.log(follower).expect("log").next_offset();
                let info = shard.append_replicated(follower, &fetched, NOW_MS).expect("append_replicated");
                assert_eq!((info.base_offset, info.last_offset), (base, base.plus(5)));
                assert_eq!((info.stored_bytes, info.batch_count), (fetched.size_bytes(), 3));
            }
            assert!(shard.commit(NOW_MS).failed.is_empty());
            let (leader_bytes, follower_bytes) = (stored(&shard, leader), stored(&shard, follower));
            assert_eq!(follower_bytes, leader_bytes);
            let headers = batch::validate_all(&follower_bytes).expect("valid");
            let epochs: Vec<i32> = headers.iter().map(|header| header.partition_leader_epoch).collect();
            assert_eq!(epochs, [3, 3, 3, 5, 5, 5]);
            assert!(headers.iter().all(|header| header.codec() == batch::Codec::None), "not recompressed");
            assert_eq!(shard.log(follower).expect("log").log_end_offset(), Offset(12));
        }
    }

    #[test]
    fn replicated_batches_must_continue_the_log() {
        let mut shard = shard(ShardConfig::default());
        let (leader, _) = shard.open_log(Path::new("/sim/leader"), LogConfig::default(), NOW_MS).expect("open");
        let (follower, _) = shard.open_log(Path::new("/sim/follower"), LogConfig::default(), NOW_MS).expect("open");
        let first = leader_batches(&mut shard, leader, &three_batches(), LeaderEpoch(1)); // 0..=5
        let second = leader_batches(&mut shard, leader, &three_batches(), LeaderEpoch(1)); // 6..=11
                                                                                           // Starting past the follower's end: a gap.
        assert!(matches!(
            shard.append_replicated(follower, &second, NOW_MS),
            Err(EngineError::NotContiguous { expected: Offset(0), found: Offset(6) })
        ));
        // A gap between two batches of one append: nothing of it is appended.
        let mut gapped = first.bytes()[..first.batches()[0].header.size_bytes].to_vec();
        gapped.extend_from_slice(second.bytes());
        let gapped = ValidatedBatches::validate(Bytes::from(gapped)).expect("valid");
        assert!(matches!(
            shard.append_replicated(follower, &gapped, NOW_MS),
            Err(EngineError::NotContiguous { expected: Offset(1), found: Offset(6) })
        ));
        assert_eq!(shard.log(follower).expect("log").next_offset(), Offset(0));
        assert_eq!(shard.pending_appends(), 0);
        shard.append_replicated(follower, &first, NOW_MS).expect("contiguous");
        // The same batches again: behind the log's end.
        assert!(matches!(
            shard.append_replicated(follower, &first, NOW_MS),
            Err(EngineError::NotContiguous { expected: Offset(6), found: Offset(0) })
        ));
        shard.append_replicated(follower, &second, NOW_MS).expect("contiguous");
        assert!(shard.commit(NOW_MS).failed.is_empty());
        assert_eq!(stored(&shard, follower), stored(&shard, leader));
    }

    #[test]
    fn replicated_appends_roll_segments_like_leader_appends() {
        let mut shard = shard(ShardConfig::default());
        let config = LogConfig { segment_bytes: 200, ..LogConfig::default() };
        let (leader, _) = shard.open_log(Path::new("/sim/leader"), config, NOW_MS).expect("open");
        let (follower, _) = shard.open_log(Path::new("/sim/follower"), config, NOW_MS).expect("open");
        for epoch in 0..4 {
            let fetched = leader_batches(&mut shard, leader, &three_batches(), LeaderEpoch(epoch));
            shard.append_replicated(follower, &fetched, NOW_MS).expect("append_replicated");
        }
        assert!(shard.commit(NOW_MS).failed.is_empty());
        let (leader_log, follower_log) = (shard.log(leader).expect("log"), shard.log(follower).expect("log"));
        assert!(follower_log.segment_count() > 1);
        assert_eq!(follower_log.segment_count(), leader_log.segment_count());
        assert_eq!(stored(&shard, follower), stored(&shard, leader));
        assert_eq!(shard.read(follower, Offset(13), 1, None).expect("read").chunks.len(), 1);
    }

    #[test]
    fn reset_to_starts_an_empty_log_at_the_offset_and_survives_a_crash() {
        let sim = SimFs::new(7, SimFaults::default());
        let mut shard = Shard::new(Box::new(sim.clone()), ShardConfig::default()).expect("shard");
        let config = LogConfig { segment_bytes: 200, ..LogConfig::default() };
        let dir = Path::new("/sim/follower");
        let (id, _) = shard.open_log(dir, config, NOW_MS).expect("open");
        for _ in 0..4 {
            shard.append(id, &three_batches(), LeaderEpoch(1), NOW_MS).expect("append");
        }
        shard.append(id, &three_batches(), LeaderEpoch(1), NOW_MS).expect("pending");
        assert!(matches!(shard.reset_to(id, Offset(100), NOW_MS), Err(EngineError::InvalidInput(_))));
        assert!(shard.commit(NOW_MS).failed.is_empty());
        assert!(shard.log(id).expect("log").segment_count() > 1);
        shard.reset_to(id, Offset(100), NOW_MS).expect("reset");
        let log = shard.log(id).expect("log");
        assert_eq!(
            (log.log_start_offset(), log.log_end_offset(), log.next_offset()),
            (Offset(100), Offset(100), Offset(100))
        );
        assert_eq!(log.segment_count(), 1);
        assert!(matches!(shard.read(id, Offset(0), 1, None), Err(EngineError::OffsetOutOfRange { .. })));
        // Recovery after a crash right after the reset finds the reset log.
        sim.crash();
        let mut shard = Shard::new(Box::new(sim.clone()), ShardConfig::default()).expect("shard");
        let (id, report) = shard.open_log(dir, config, NOW_MS).expect("reopen");
        assert_eq!((report.log_start_offset, report.log_end_offset), (Offset(100), Offset(100)));
        // The leader's batches from its log start continue it; a lower start works too.
        let mut leader_shard =
            Shard::new(Box::new(SimFs::new(8, SimFaults::default())), ShardConfig::default()).expect("shard");
        let (leader, _) = leader_shard.open_log(Path::new("/sim/leader"), LogConfig::default(), NOW_MS).expect("open");
        leader_shard.reset_to(leader, Offset(100), NOW_MS).expect("reset leader");
        let fetched = leader_batches(&mut leader_shard, leader, &three_batches(), LeaderEpoch(2));
        let info = shard.append_replicated(id, &fetched, NOW_MS).expect("continues at 100");
        assert_eq!((info.base_offset, info.last_offset), (Offset(100), Offset(105)));
        assert!(shard.commit(NOW_MS).failed.is_empty());
        shard.reset_to(id, Offset(50), NOW_MS).expect("reset lower");
        sim.crash();
        let mut shard = Shard::new(Box::new(sim.clone()), ShardConfig::default()).expect("shard");
        let (_, report) = shard.open_log(dir, config, NOW_MS).expect("reopen");
        assert_eq!((report.log_start_offset, report.log_end_offset), (Offset(50), Offset(50)));
        let segments: Vec<_> = sim.file_paths().into_iter().filter(|path| path.starts_with(dir)).collect();
        assert!(
            segments
                .iter()
                .all(|path| !path.to_string_lossy().ends_with(".log") || path.ends_with("00000000000000000050.log")),
            "{segments:?}"
        );
    }

    #[test]
    fn a_reset_failing_half_way_refuses_appends_and_reopens_as_a_state_a_crash_could_leave() {
        let sim = SimFs::new(9, SimFaults::default());
        let mut shard = Shard::new(Box::new(sim.clone()), ShardConfig::default()).expect("shard");
        let config = LogConfig { segment_bytes: 200, ..LogConfig::default() };
        let dir = Path::new("/sim/follower");
        let (id, _) = shard.open_log(dir, config, NOW_MS).expect("open");
        for _ in 0..3 {
            shard.append(id, &three_batches(), LeaderEpoch(1), NOW_MS).expect("append");
        }
        assert!(shard.commit(NOW_MS).failed.is_empty());
        // Every file sync fails: the segments are gone, the new checkpoint is not written.
        sim.set_faults(SimFaults { sync_error_per_million: 1_000_000, ..SimFaults::default() });
        assert!(matches!(shard.reset_to(id, Offset(100), NOW_MS), Err(EngineError::Io { .. })));
        sim.set_faults(SimFaults::default());
        assert!(matches!(shard.append(id, &three_batches(), LeaderEpoch(1), NOW_MS), Err(EngineError::Io { .. })));
        assert!(matches!(shard.reset_to(id, Offset(100), NOW_MS), Err(EngineError::Io { .. })), "reopen first");
        drop(shard);
        sim.crash();
        let mut shard = Shard::new(Box::new(sim.clone()), ShardConfig::default()).expect("shard");
        let (id, report) = shard.open_log(dir, config, NOW_MS).expect("reopen");
        // No segment and the old checkpoint: an empty log at the old start. The reset is redone.
        assert_eq!((report.log_start_offset, report.log_end_offset), (Offset(0), Offset(0)));
        shard.reset_to(id, Offset(100), NOW_MS).expect("reset");
        assert_eq!(shard.log(id).expect("log").log_start_offset(), Offset(100));
    }
}
