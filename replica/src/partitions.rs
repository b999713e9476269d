//! The partitions of one shard over its engine shard: opening (recovery, then the producer state
//! from its snapshot and the batches after it), appends with their acknowledgements, reads within
//! a bound, the group commit's outcome turned into high watermark advances, role changes, and
//! when producer-state snapshots are written (a roll, once committed; clean close) and removed
//! (unusable at open, truncation below them, deletion).
//!
//! Lives on one shard thread; never shared. Every method that waits returns a future or a
//! receiver instead of blocking, so the shard keeps serving while the disk works.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::Bytes;
use engine::batch::{BatchHeader, ValidatedBatches};
use engine::io::FileSystem;
use engine::{CommitReport, LeaderEpoch, LogConfig, LogId, Offset, RecoveryReport, RetentionReport, Shard};
use futures_channel::{mpsc, oneshot};

use crate::epoch_history;
use crate::error::{ReplicaError, Result};
use crate::high_watermark;
use crate::partition::{start_epoch_in, Acks, DataWaiter, EpochStart, Opened, Partition, ReadBound, Role};
use crate::producer_snapshot::{self, ProducerSnapshot};
use crate::producers::{BatchIdentity, ProducerState, Verdict};
use crate::read::ReadPlan;

/// Bytes read at a time when rebuilding state from a log at start-up.
pub const REBUILD_READ_BYTES: u64 = 4 * 1024 * 1024;

/// An acknowledgement to come: resolves when what the write waits for ([`Acks`]) covers it, or
/// with the error that prevented it.
#[derive(Debug)]
pub struct Ack(oneshot::Receiver<Result<()>>);

impl Future for Ack {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Result<()>> {
        Pin::new(&mut self.0).poll(context).map(|outcome| outcome.unwrap_or(Err(ReplicaError::Stopped)))
    }
}

/// What an append did.
#[derive(Debug)]
pub struct Appended {
    /// The offsets of the batches: newly assigned, or for a retried duplicate the original ones.
    pub base_offset: Offset,
    pub last_offset: Offset,
    pub log_start_offset: Offset,
    /// Nothing for `Acks::None`.
    pub ack: Option<Ack>,
}

/// The partitions of one shard and the engine shard that holds their logs.
pub struct Partitions {
    pub(crate) engine: Shard,
    pub(crate) partitions: BTreeMap<LogId, Partition>,
    /// Wakes the shard's committer: something was appended.
    pub(crate) commit_trigger: mpsc::UnboundedSender<()>,
}

impl std::fmt::Debug for Partitions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partitions").field("partitions", &self.partitions.len()).finish()
    }
}

impl Partitions {
    pub fn new(engine: Shard, commit_trigger: mpsc::UnboundedSender<()>) -> Partitions {
        Partitions { engine, partitions: BTreeMap::new(), commit_trigger }
    }

    /// Opens (creating if needed) the log in `dir` as a partition in `role`: recovers the log,
    /// loads the producer-state snapshot if it may seed this log, and replays the batch headers
    /// after it (or, without one, those of the active segment).
    pub fn open(&mut self, dir: &Path, config: LogConfig, role: Role, now_ms: i64) -> Result<(LogId, RecoveryReport)> {
        let (id, report) = self.engine.open_log(dir, config, now_ms)?;
        let log = self.engine.log(id)?;
        let (log_start, end, active_base) = (log.log_start_offset(), log.log_end_offset(), log.active_segment_base());
        let fs = self.engine.file_system();
        producer_snapshot::remove_leftover_temp(fs, dir);
        let snapshot = load_snapshot(fs, dir, log_start, end)?;
        let snapshot_offset = snapshot.as_ref().map(|snapshot| snapshot.offset);
        let (mut producers, replay_from) = match snapshot {
            Some(ProducerSnapshot { offset, producers }) => (producers, offset),
            None => (ProducerState::default(), active_base),
        };
        scan_batches(&self.engine, id, replay_from, |_, headers| {
            for header in headers {
                if let Some(identity) = BatchIdentity::of(header) {
                    producers.record(&identity, header.base_offset, header.last_offset());
                    producers.note_write(identity.producer_id, header.max_timestamp, now_ms);
                }
            }
        })?;
        producers.stamp_unwritten(now_ms);
        let epochs = load_epochs(&mut self.engine, id, dir, log_start, end)?;
        let opened = Opened { log: id, dir: dir.to_path_buf(), log_start, end, producers, snapshot_offset, epochs };
        let mut partition = Partition::new(opened, Role::Follower { epoch: role.epoch() });
        // What was committed before the restart, as far as the last checkpoint says (never past
        // what the log still holds); the ISR's fetches move it on from there.
        let checkpoint = high_watermark::read(self.engine.file_system(), dir);
        if let Some(checkpointed) = checkpoint {
            partition.high_watermark = checkpointed.min(end).max(log_start);
        }
        partition.checkpointed_high_watermark = checkpoint;
        self.partitions.insert(id, partition);
        // A leader's epoch begins at its end (and is on disk before anything is written in it).
        if let Err(error) = self.change_role(id, role) {
            self.partitions.remove(&id);
            let _ = self.engine.close_log(id);
            return Err(error);
        }
        Ok((id, report))
    }

    /// Visits every batch of a partition from `from` to its committed end, in runs of at most
    /// [`REBUILD_READ_BYTES`], each run validated once (start-up work: the broker rebuilds
    /// committed consumer offsets this way).
    pub fn scan(&self, id: LogId, from: Offset, visit: impl FnMut(&Bytes, &[BatchHeader])) -> Result<()> {
        self.get(id)?;
        scan_batches(&self.engine, id, from, visit)
    }

    pub fn get(&self, id: LogId) -> Result<&Partition> {
        self.partitions.get(&id).ok_or(ReplicaError::UnknownPartition)
    }

    pub(crate) fn get_mut(&mut self, id: LogId) -> Result<&mut Partition> {
        self.partitions.get_mut(&id).ok_or(ReplicaError::UnknownPartition)
    }

    pub fn ids(&self) -> impl Iterator<Item = LogId> + '_ {
        self.partitions.keys().copied()
    }

    /// Appends validated batches as the leader and says when they will be acknowledged. Idempotent
    /// producers' batches pass the sequence checks first: a retried batch appends nothing and is
    /// answered with its original offsets once those are covered; a batch mixing retried and new
    /// sequences is refused as out of order. All or nothing.
    pub fn append(&mut self, id: LogId, batches: &ValidatedBatches, acks: Acks, now_ms: i64) -> Result<Appended> {
        let partition = self.partitions.get_mut(&id).ok_or(ReplicaError::UnknownPartition)?;
        partition.check_leader()?;
        if acks == Acks::All {
            partition.check_enough_replicas()?;
        }
        let epoch = partition.leader_epoch();
        let identities: Vec<Option<BatchIdentity>> = batches.headers().map(BatchIdentity::of).collect();
        let mut verdicts = Vec::with_capacity(identities.len());
        for identity in &identities {
            let verdict = identity.map_or(Verdict::Append, |identity| partition.producers.check(&identity));
            if let Verdict::Reject(error) = verdict {
                return Err(error.into());
            }
            verdicts.push(verdict);
        }
        let duplicates = verdicts.iter().filter(|verdict| matches!(verdict, Verdict::Duplicate { .. })).count();
        let (base_offset, last_offset) = if duplicates == 0 {
            let active_before = self.engine.log(id)?.active_segment_base();
            let info = self.engine.append_validated(id, batches, epoch, now_ms)?;
            // A roll starts the new segment at a batch of this append: the state as of that
            // batch (before it is recorded) is what a snapshot at the new base holds.
            let active_after = self.engine.log(id)?.active_segment_base();
            let rolled_to = (active_after > active_before).then_some(active_after);
            let mut base = info.base_offset.0;
            for (header, identity) in batches.headers().zip(&identities) {
                if rolled_to == Some(Offset(base)) {
                    partition.snapshot_at_roll(Offset(base));
                }
                let last = base + u64::from(header.last_offset_delta);
                if let Some(identity) = identity {
                    partition.producers.record(identity, base, last);
                    partition.producers.note_write(identity.producer_id, header.max_timestamp, now_ms);
                }
                base = last + 1;
            }
            let _ = self.commit_trigger.unbounded_send(());
            (info.base_offset, info.last_offset)
        } else if duplicates == verdicts.len() {
            match (verdicts.first(), verdicts.last()) {
                (Some(Verdict::Duplicate { base_offset, .. }), Some(Verdict::Duplicate { last_offset, .. })) => {
                    (Offset(*base_offset), Offset(*last_offset))
                }
                _ => unreachable!("every verdict is a duplicate and validation never yields zero batches"),
            }
        } else {
            return Err(crate::ProducerError::OutOfOrderSequence.into());
        };
        let ack = match acks {
            Acks::None => None,
            acks => Some(Ack(partition.wait_for_ack(last_offset, acks))),
        };
        let log_start_offset = self.engine.log(id)?.log_start_offset();
        Ok(Appended { base_offset, last_offset, log_start_offset, ack })
    }

    /// Plans a read of at most `max_bytes` from `start`, up to `bound`. Nothing is read from files
    /// yet ([`ReadPlan`]).
    pub fn read(&self, id: LogId, start: Offset, max_bytes: u64, bound: ReadBound) -> Result<Option<ReadPlan>> {
        let partition = self.get(id)?;
        let upper = match bound {
            ReadBound::HighWatermark => partition.high_watermark,
            ReadBound::LogEnd => partition.local_end,
        };
        let read = self.engine.read(id, start, max_bytes, Some(upper))?;
        Ok((read.size_bytes > 0).then_some(ReadPlan { chunks: read.chunks, size_bytes: read.size_bytes }))
    }

    /// The first offset whose timestamp is at or after `timestamp_ms`, with that timestamp.
    pub fn offset_for_timestamp(&self, id: LogId, timestamp_ms: i64) -> Result<Option<(Offset, i64)>> {
        self.get(id)?;
        Ok(self.engine.offset_for_timestamp(id, timestamp_ms)?)
    }

    /// The largest timestamp in the partition's log and the first offset carrying it (the caller
    /// decides what of it a client may see); `None` for an empty log.
    pub fn max_timestamp(&self, id: LogId) -> Result<Option<(Offset, i64)>> {
        self.get(id)?;
        Ok(self.engine.max_timestamp(id)?)
    }

    /// A receiver that fires when what a fetch reading up to `bound` may read of any of `ids`
    /// grows (the high watermark for consumers, the local end for followers). Unknown ids are
    /// skipped (the fetch finds out when it reads again).
    pub fn wait_for_data(&mut self, ids: &[LogId], bound: ReadBound) -> oneshot::Receiver<()> {
        let (sender, receiver) = oneshot::channel();
        let waiter = Rc::new(DataWaiter { reply: std::cell::Cell::new(Some(sender)) });
        for id in ids {
            if let Some(partition) = self.partitions.get_mut(id) {
                match bound {
                    ReadBound::HighWatermark => partition.add_data_waiter(waiter.clone()),
                    ReadBound::LogEnd => partition.add_replica_waiter(waiter.clone()),
                }
            }
        }
        receiver
    }

    /// Makes this replica the leader in `epoch` (which must not be older than its current one).
    pub fn become_leader(&mut self, id: LogId, epoch: LeaderEpoch) -> Result<()> {
        self.change_role(id, Role::Leader { epoch }).map(|_| ())
    }

    /// Makes this replica a follower in `epoch`: client writes are refused from now on, and
    /// waiting acknowledgements fail (a new leader decides what survives).
    pub fn become_follower(&mut self, id: LogId, epoch: LeaderEpoch) -> Result<()> {
        let partition = self.change_role(id, Role::Follower { epoch })?;
        partition.fail_acks_from(Offset::ZERO, &ReplicaError::NotLeader { epoch });
        Ok(())
    }

    /// Takes `role` (whose epoch must not be older than the current one); a newer epoch begins
    /// at the next offset to be assigned.
    fn change_role(&mut self, id: LogId, role: Role) -> Result<&mut Partition> {
        let next = self.next_offset(id)?;
        let partition = self.partitions.get_mut(&id).ok_or(ReplicaError::UnknownPartition)?;
        partition.check_epoch_not_older(role.epoch())?;
        // A leader's epoch begins at its next offset, on disk before anything is written in it; a
        // follower learns epochs from the leader's batches (`follow.rs`), which carry the epochs
        // they were written in.
        if let Role::Leader { epoch } = role {
            let before = partition.epochs.clone();
            if partition.start_epoch(epoch, next) {
                if let Err(error) = epoch_history::write(self.engine.file_system(), &partition.dir, &partition.epochs) {
                    partition.epochs = before;
                    return Err(error.into());
                }
            }
        }
        partition.role = role;
        if let Role::Leader { .. } = role {
            // A new leader's high watermark is what its ISR holds (alone: its committed end).
            partition.settle_high_watermark();
        }
        Ok(partition)
    }

    /// Writes a partition's leader-epoch history (after it changed).
    pub(crate) fn persist_epochs(&mut self, id: LogId) -> Result<()> {
        let partition = self.partitions.get(&id).ok_or(ReplicaError::UnknownPartition)?;
        Ok(epoch_history::write(self.engine.file_system(), &partition.dir, &partition.epochs)?)
    }

    /// One past the last offset assigned, appends not yet committed included: where a new
    /// leader epoch begins.
    pub fn next_offset(&self, id: LogId) -> Result<Offset> {
        Ok(self.engine.log(id)?.next_offset())
    }

    /// Removes every offset at or past `offset` (a follower's divergent tail). The high watermark
    /// and the producers' state follow; acknowledgements waiting for removed offsets fail.
    pub fn truncate_to(&mut self, id: LogId, offset: Offset, now_ms: i64) -> Result<Offset> {
        self.get(id)?;
        // Everything appended is committed and its outcome applied first, so no commit report
        // about offsets the truncation removes can arrive after it.
        self.commit(now_ms);
        let end = self.engine.truncate_to(id, offset)?;
        let partition = self.get_mut(id)?;
        partition.local_end = partition.local_end.min(end);
        partition.high_watermark = partition.high_watermark.min(end);
        let epochs_before = partition.epochs.len();
        epoch_history::trim_to(&mut partition.epochs, end);
        let epochs_changed = partition.epochs.len() != epochs_before;
        partition.producers.forget_from(end.0);
        let epoch = partition.leader_epoch();
        partition.fail_acks_from(end, &ReplicaError::NotLeader { epoch });
        // A snapshot above the new end holds removed batches; once the log grew past its offset
        // again it would answer retries with offsets that hold other batches.
        if partition.roll_snapshot.as_ref().is_some_and(|(offset, _)| *offset > end) {
            partition.roll_snapshot = None;
        }
        if partition.snapshot_offset.is_some_and(|offset| offset > end) {
            partition.snapshot_offset = None;
            let dir = partition.dir.clone();
            producer_snapshot::remove(self.engine.file_system(), &dir)?;
        }
        if epochs_changed {
            self.persist_epochs(id)?;
        }
        self.lower_checkpoint(id, end)?;
        Ok(end)
    }

    /// After a truncation to `end`: a checkpoint past it is rewritten (synced) before the log
    /// grows again, or records appended later would pass for committed after a restart.
    pub(crate) fn lower_checkpoint(&mut self, id: LogId, end: Offset) -> Result<()> {
        let partition = self.partitions.get_mut(&id).ok_or(ReplicaError::UnknownPartition)?;
        if partition.checkpointed_high_watermark.is_some_and(|checkpointed| checkpointed > end) {
            let high_watermark = partition.high_watermark.min(end);
            high_watermark::write_synced(self.engine.file_system(), &partition.dir, high_watermark)?;
            partition.checkpointed_high_watermark = Some(high_watermark);
        }
        Ok(())
    }

    /// Writes the high watermark of every partition whose high watermark moved since its last
    /// checkpoint (Kafka's `replica.high.watermark.checkpoint.interval.ms` pass, and at close);
    /// how many were written. A failure is logged and that partition tried again next time.
    pub fn checkpoint_high_watermarks(&mut self) -> usize {
        let mut written = 0;
        for partition in self.partitions.values_mut() {
            if partition.checkpointed_high_watermark == Some(partition.high_watermark) {
                continue;
            }
            match high_watermark::write(self.engine.file_system(), &partition.dir, partition.high_watermark) {
                Ok(()) => {
                    partition.checkpointed_high_watermark = Some(partition.high_watermark);
                    written += 1;
                }
                Err(error) => {
                    tracing::warn!(dir = %partition.dir.display(), %error, "high-watermark checkpoint failed")
                }
            }
        }
        written
    }

    /// Closes and deletes a partition's log and files (its producer-state snapshot too).
    /// Waiting acknowledgements fail.
    pub fn delete(&mut self, id: LogId, now_ms: i64) -> Result<()> {
        self.settle(id, now_ms);
        let Some(mut partition) = self.partitions.remove(&id) else {
            return Ok(self.engine.delete_log(id)?);
        };
        partition.fail_acks_from(Offset::ZERO, &ReplicaError::Stopped);
        partition.wake_data_waiters();
        partition.wake_replica_waiters();
        self.engine.delete_log(id)?;
        epoch_history::remove(self.engine.file_system(), &partition.dir)?;
        high_watermark::remove(self.engine.file_system(), &partition.dir)?;
        Ok(producer_snapshot::remove(self.engine.file_system(), &partition.dir)?)
    }

    /// Waits until `id` has no commit in flight, applying every report that comes meanwhile (of
    /// any log) at once: the engine would otherwise hold them back for the next `pump`, and they
    /// would land after the change the caller is about to make (a deletion, say).
    fn settle(&mut self, id: LogId, now_ms: i64) {
        while self.engine.log(id).is_ok_and(|log| log.is_committing()) {
            let report = self.engine.reap(true, now_ms);
            self.apply(report);
        }
    }

    /// The first offset the log still holds: the engine's own, never a copy (retention moves it,
    /// and a pass that fails half-way may have moved it before its error).
    /// The bytes of a partition's log segments (what DescribeLogDirs reports).
    pub fn size_bytes(&self, id: LogId) -> Result<u64> {
        self.get(id)?;
        Ok(self.engine.log(id)?.size_bytes())
    }

    pub fn log_start_offset(&self, id: LogId) -> Result<Offset> {
        self.get(id)?;
        Ok(self.engine.log(id)?.log_start_offset())
    }

    /// A replica's log configuration.
    pub fn log_config(&self, id: LogId) -> Result<LogConfig> {
        self.get(id)?;
        Ok(*self.engine.log(id)?.config())
    }

    /// Changes a replica's log configuration (a topic config altered at runtime).
    pub fn set_log_config(&mut self, id: LogId, config: LogConfig) -> Result<()> {
        self.get(id)?;
        Ok(self.engine.set_log_config(id, config)?)
    }

    /// Forgets, in every partition, the idempotent producers that wrote nothing for
    /// `expiration_ms` ([`crate::producers::ProducerState::expire`]); returns how many.
    pub fn expire_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.partitions.values_mut().map(|partition| partition.producers.expire(now_ms, expiration_ms)).sum()
    }

    /// Deletes what `retention.ms` and `retention.bytes` no longer keep.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Vec<(LogId, Result<RetentionReport>)> {
        let reports = self.engine.enforce_retention(now_ms);
        reports.into_iter().map(|(id, report)| (id, report.map_err(ReplicaError::from))).collect()
    }

    pub fn backend_name(&self) -> &'static str {
        self.engine.backend_name()
    }

    /// How long the engine's disk operations took (for the broker's metrics).
    pub fn io_stats(&self) -> engine::io::stats::IoStats {
        self.engine.io_stats()
    }

    /// The engine ring's completion eventfd, if the backend has one.
    pub fn completion_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.engine.completion_fd()
    }

    pub fn commits_in_flight(&self) -> usize {
        self.engine.commits_in_flight()
    }

    /// Runs the group commit without blocking: collects the commits that landed since the last
    /// call (the engine starts each log's next one at once), starts commits for logs that have
    /// none in flight, and applies what landed. A backend that cannot signal completions (the
    /// plain-syscall fallback) commits in full here instead.
    pub fn pump(&mut self, now_ms: i64) {
        if self.engine.completion_fd().is_none() {
            let report = self.engine.commit(now_ms);
            self.apply(report);
            return;
        }
        let report = self.engine.reap(false, now_ms);
        self.engine.start_commits(now_ms);
        self.apply(report);
    }

    /// Starts a commit for every log with appends and none in flight, now, instead of when the
    /// committer task next runs (which the appends also trigger). A request's appends then go
    /// to the disk in the same turn of the shard's loop that made them; appends made while a
    /// log's commit is in flight still queue behind it and go in its next one. What landed is
    /// still collected and applied by [`Partitions::pump`].
    pub fn start_commits(&mut self, now_ms: i64) {
        self.engine.start_commits(now_ms);
    }

    /// Commits everything pending, blocking, and applies the outcome.
    pub fn commit(&mut self, now_ms: i64) {
        let report = self.engine.commit(now_ms);
        self.apply(report);
    }

    /// Clean shutdown: commits what is pending, snapshots every partition's producer state at
    /// its log end, then closes every log (exact file lengths, index files, clean checkpoint) so
    /// the next start scans nothing. Returns the first error, after trying every partition.
    pub fn close(&mut self, now_ms: i64) -> Result<()> {
        self.commit(now_ms);
        self.checkpoint_high_watermarks();
        let mut first_error = None;
        for (_, mut partition) in std::mem::take(&mut self.partitions) {
            partition.fail_acks_from(Offset::ZERO, &ReplicaError::Stopped);
            let end = partition.local_end;
            if !partition.snapshot_needed(end) {
                continue;
            }
            match producer_snapshot::encode(&partition.producers, end) {
                Ok(bytes) => {
                    if let Err(error) = producer_snapshot::write(self.engine.file_system(), &partition.dir, &bytes) {
                        first_error.get_or_insert(ReplicaError::from(error));
                    }
                }
                Err(error) => {
                    tracing::warn!(dir = %partition.dir.display(), %error, "producer state not snapshotted at close; the previous snapshot stays")
                }
            }
        }
        for id in self.engine.log_ids() {
            if let Err(error) = self.engine.close_log(id) {
                first_error.get_or_insert(ReplicaError::from(error));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// A commit report turned into local ends, high watermarks, acknowledgements and fetch
    /// wake-ups. The one place the high watermark advances.
    fn apply(&mut self, report: CommitReport) {
        if report.is_empty() {
            return;
        }
        for (id, error, lost) in report.failed {
            tracing::error!(log = ?id, %error, lost_from = %lost.start, lost_to = %lost.end, "group commit failed; those appends are rejected");
            if let Some(partition) = self.partitions.get_mut(&id) {
                partition.producers.forget_from(lost.start.0);
                partition.fail_acks_from(lost.start, &ReplicaError::from(error));
                if partition.roll_snapshot.as_ref().is_some_and(|(offset, _)| lost.start < *offset) {
                    partition.roll_snapshot = None;
                }
            }
        }
        let mut snapshots_due: Vec<(LogId, PathBuf, Offset, Vec<u8>)> = Vec::new();
        for (id, end) in report.committed {
            let Some(partition) = self.partitions.get_mut(&id) else { continue };
            // Never past the log's own committed end (a report can be older than the log).
            let end = self.engine.log(id).map_or(end, |log| end.min(log.log_end_offset()));
            if end > partition.local_end {
                partition.local_end = end;
                partition.wake_replica_waiters();
            }
            if partition.roll_snapshot.as_ref().is_some_and(|(offset, _)| *offset <= partition.local_end) {
                let (offset, bytes) = partition.roll_snapshot.take().expect("just checked");
                snapshots_due.push((id, partition.dir.clone(), offset, bytes));
            }
            // One node: the ISR is this replica alone, so the high watermark is its own committed
            // end; leading in a cluster, the ISR's smallest end ([`crate::leader`]); following,
            // the leader's as its fetch responses said (`follow.rs`).
            partition.settle_high_watermark();
        }
        // Blocking (two syncs), but once per segment roll: the state below the old segment's
        // end is on disk before that segment can leave the replay window.
        for (id, dir, offset, bytes) in snapshots_due {
            match producer_snapshot::write(self.engine.file_system(), &dir, &bytes) {
                Ok(()) => {
                    if let Some(partition) = self.partitions.get_mut(&id) {
                        partition.snapshot_offset = Some(offset);
                    }
                }
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), %offset, %error, "producer-state snapshot at a roll not written; the previous one stays")
                }
            }
        }
    }
}

/// The producer-state snapshot of the log in `dir` if it may seed a log holding
/// `[log_start, end)`. One that may not (damaged, unreadable, outside the log) is removed with a
/// warning: never fatal, the state is rebuilt without it. Fails only if it cannot be removed.
fn load_snapshot(
    fs: &mut dyn FileSystem,
    dir: &Path,
    log_start: Offset,
    end: Offset,
) -> Result<Option<ProducerSnapshot>> {
    let reason = match producer_snapshot::read(fs, dir) {
        Ok(None) => return Ok(None),
        Ok(Some(snapshot)) if producer_snapshot::usable(snapshot.offset, log_start, end) => return Ok(Some(snapshot)),
        Ok(Some(snapshot)) => format!("its offset {} is outside the log [{log_start}, {end}]", snapshot.offset),
        Err(error) => error.to_string(),
    };
    tracing::warn!(dir = %dir.display(), %reason, "producer-state snapshot ignored and removed; producer state rebuilt from the active segment");
    producer_snapshot::remove(fs, dir)?;
    Ok(None)
}

/// The leader-epoch history of the log in `dir` holding `[log_start, end)`: the one on disk,
/// trimmed to the log; without one (a log from before histories were kept) or with a damaged
/// one, rebuilt from every batch header and written (a one-time scan, logged).
fn load_epochs(engine: &mut Shard, id: LogId, dir: &Path, log_start: Offset, end: Offset) -> Result<Vec<EpochStart>> {
    let fs = engine.file_system();
    match epoch_history::read(fs, dir) {
        Ok(Some(mut epochs)) => {
            let before = epochs.len();
            epoch_history::trim_to(&mut epochs, end);
            // Written back: an epoch a crash took must not come back once the log grows past
            // its start in another epoch.
            if epochs.len() != before {
                epoch_history::write(engine.file_system(), dir, &epochs)?;
            }
            return Ok(epochs);
        }
        Ok(None) if end <= log_start => return Ok(Vec::new()),
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "leader-epoch history ignored; rebuilt from the batch headers")
        }
    }
    let mut epochs = Vec::new();
    let mut batches = 0usize;
    scan_batches(engine, id, log_start, |_, headers| {
        for header in headers {
            batches += 1;
            start_epoch_in(&mut epochs, LeaderEpoch(header.partition_leader_epoch), Offset(header.base_offset));
        }
    })?;
    tracing::info!(dir = %dir.display(), batches, epochs = epochs.len(), "leader-epoch history rebuilt from the log");
    epoch_history::write(engine.file_system(), dir, &epochs)?;
    Ok(epochs)
}

/// Reads `id` from `from` to its committed end in runs of at most [`REBUILD_READ_BYTES`],
/// validates each run once, and hands it with its batch headers to `visit`.
fn scan_batches(engine: &Shard, id: LogId, from: Offset, mut visit: impl FnMut(&Bytes, &[BatchHeader])) -> Result<()> {
    let log = engine.log(id)?;
    let mut offset = from;
    while offset < log.log_end_offset() {
        let read = log.read(offset, REBUILD_READ_BYTES, None)?;
        if read.size_bytes == 0 {
            break;
        }
        let bytes = ReadPlan { chunks: read.chunks, size_bytes: read.size_bytes }.into_bytes()?;
        let headers = engine::batch::validate_all(&bytes).map_err(engine::EngineError::from)?;
        let Some(last) = headers.last() else { break };
        offset = Offset(last.last_offset() + 1);
        visit(&bytes, &headers);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::task::{Context, Poll};

    use engine::io::sim::{SimFaults, SimFs};
    use engine::io::FileSystem;
    use engine::ShardConfig;

    use super::*;
    use crate::ProducerError;

    pub(super) fn partitions(sim: &SimFs) -> (Partitions, mpsc::UnboundedReceiver<()>) {
        let engine = Shard::new(Box::new(sim.clone()), ShardConfig::default()).expect("shard");
        let (trigger, triggers) = mpsc::unbounded();
        (Partitions::new(engine, trigger), triggers)
    }

    pub(super) fn open(partitions: &mut Partitions, dir: &str) -> LogId {
        let role = Role::Leader { epoch: LeaderEpoch(0) };
        partitions.open(Path::new(dir), LogConfig::default(), role, 0).expect("open").0
    }

    pub(super) use crate::follow::tests::{batch, idempotent_batch};

    /// Polls a future once: `Some` if it is ready.
    pub(super) fn poll_once<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
        let waker = futures_task_noop_waker();
        match Pin::new(future).poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(output) => Some(output),
            Poll::Pending => None,
        }
    }

    fn futures_task_noop_waker() -> std::task::Waker {
        std::task::Waker::noop().clone()
    }

    #[test]
    fn an_ack_waits_for_the_commit_and_acks_all_for_the_high_watermark() {
        let sim = SimFs::new(1, SimFaults::default());
        let (mut partitions, _triggers) = partitions(&sim);
        let id = open(&mut partitions, "/p/t-0");
        let mut all = partitions.append(id, &batch(3), Acks::All, 0).expect("append").ack.expect("ack");
        let mut leader = partitions.append(id, &batch(2), Acks::Leader, 0).expect("append").ack.expect("ack");
        assert!(partitions.append(id, &batch(1), Acks::None, 0).expect("append").ack.is_none());
        assert!(poll_once(&mut all).is_none(), "nothing is acknowledged before the commit");
        assert!(poll_once(&mut leader).is_none());
        assert_eq!(partitions.get(id).expect("partition").high_watermark(), Offset(0));
        partitions.commit(0);
        assert!(matches!(poll_once(&mut all), Some(Ok(()))));
        assert!(matches!(poll_once(&mut leader), Some(Ok(()))));
        assert_eq!(partitions.get(id).expect("partition").high_watermark(), Offset(6));

        // The two predicates apart (replication will hold the high watermark behind the
        // leader's end): acks=1 is answered at the leader's end, acks=all only at the high
        // watermark.
        let partition = partitions.partitions.get_mut(&id).expect("partition");
        partition.local_end = Offset(10);
        let mut leader = partition.wait_for_ack(Offset(8), Acks::Leader);
        let mut all = partition.wait_for_ack(Offset(8), Acks::All);
        assert!(matches!(poll_once(&mut leader), Some(Ok(Ok(())))));
        assert!(poll_once(&mut all).is_none(), "the high watermark (6) does not cover offset 8");
        assert!(partition.advance_high_watermark(Offset(8)));
        partition.resolve_acks();
        assert!(poll_once(&mut all).is_none(), "offset 8 is not below a high watermark of 8");
        assert!(partition.advance_high_watermark(Offset(9)));
        partition.resolve_acks();
        assert!(matches!(poll_once(&mut all), Some(Ok(Ok(())))));
        assert!(!partition.advance_high_watermark(Offset(7)), "the high watermark never moves back");
    }

    #[test]
    fn reads_stop_at_their_bound() {
        let sim = SimFs::new(2, SimFaults::default());
        let (mut partitions, _triggers) = partitions(&sim);
        let id = open(&mut partitions, "/p/t-0");
        for _ in 0..4 {
            partitions.append(id, &batch(5), Acks::All, 0).expect("append");
        }
        assert!(partitions.read(id, Offset(0), 1 << 20, ReadBound::HighWatermark).expect("read").is_none());
        partitions.commit(0);
        let everything = partitions.read(id, Offset(0), 1 << 20, ReadBound::HighWatermark).expect("read");
        let everything = everything.expect("committed data").size_bytes;
        // Hold the high watermark at the second batch: consumers see two batches, followers all.
        partitions.partitions.get_mut(&id).expect("partition").high_watermark = Offset(10);
        let consumer = partitions.read(id, Offset(0), 1 << 20, ReadBound::HighWatermark).expect("read");
        let consumer = consumer.expect("data below the high watermark").into_bytes().expect("bytes");
        let headers = engine::batch::validate_all(&consumer).expect("whole batches");
        assert_eq!(headers.len(), 2);
        assert_eq!(headers.last().expect("a batch").last_offset(), 9);
        assert!(partitions.read(id, Offset(10), 1 << 20, ReadBound::HighWatermark).expect("read").is_none());
        let follower = partitions.read(id, Offset(0), 1 << 20, ReadBound::LogEnd).expect("read").expect("data");
        assert_eq!(follower.size_bytes, everything);
    }

    #[test]
    fn idempotent_producers_are_deduplicated_and_fenced() {
        let sim = SimFs::new(3, SimFaults::default());
        let (mut partitions, _triggers) = partitions(&sim);
        let id = open(&mut partitions, "/p/t-0");
        let first = partitions.append(id, &idempotent_batch(3, 7, 0, 0), Acks::All, 0).expect("append");
        assert_eq!((first.base_offset, first.last_offset), (Offset(0), Offset(2)));
        let retry = partitions.append(id, &idempotent_batch(3, 7, 0, 0), Acks::All, 0).expect("a retry");
        assert_eq!((retry.base_offset, retry.last_offset), (Offset(0), Offset(2)), "the original offsets");
        let mut retry_ack = retry.ack.expect("ack");
        assert!(poll_once(&mut retry_ack).is_none(), "a retry is acknowledged with its original");
        let gap = partitions.append(id, &idempotent_batch(1, 7, 0, 5), Acks::All, 0).expect_err("a gap");
        assert!(matches!(gap, ReplicaError::Producer(ProducerError::OutOfOrderSequence)));
        partitions.append(id, &idempotent_batch(1, 7, 1, 0), Acks::All, 0).expect("a new epoch from 0");
        let zombie = partitions.append(id, &idempotent_batch(1, 7, 0, 3), Acks::All, 0).expect_err("fenced");
        assert!(matches!(zombie, ReplicaError::Producer(ProducerError::FencedProducerEpoch)));
        partitions.commit(0);
        assert!(matches!(poll_once(&mut retry_ack), Some(Ok(()))));

        // The state is rebuilt from the log on open: the retry is still recognised.
        partitions.close(0).expect("close");
        let (mut reopened, _triggers) = super::tests::partitions(&sim);
        let id = open(&mut reopened, "/p/t-0");
        let retry = reopened.append(id, &idempotent_batch(1, 7, 1, 0), Acks::All, 0).expect("a retry");
        assert_eq!(retry.base_offset, Offset(3));
    }

    /// Segments of about two small batches, so a few appends roll.
    fn open_small(partitions: &mut Partitions, dir: &str) -> LogId {
        let role = Role::Leader { epoch: LeaderEpoch(0) };
        let config = LogConfig { segment_bytes: 300, ..LogConfig::default() };
        partitions.open(Path::new(dir), config, role, 0).expect("open").0
    }

    fn snapshot_path(dir: &str) -> PathBuf {
        Path::new(dir).join(producer_snapshot::FILE_NAME)
    }

    /// Appends and commits plain batches until the active segment starts past `offset`; returns
    /// the active segment's base.
    fn roll_past(partitions: &mut Partitions, id: LogId, offset: Offset) -> Offset {
        for _ in 0..100 {
            let base = partitions.engine.log(id).expect("log").active_segment_base();
            if base > offset {
                return base;
            }
            partitions.append(id, &batch(3), Acks::None, 0).expect("append");
            partitions.commit(0);
        }
        panic!("the log never rolled past {offset}");
    }

    #[test]
    fn producer_state_survives_a_roll_and_a_clean_reopen() {
        let sim = SimFs::new(6, SimFaults::default());
        let (mut partitions, _triggers) = partitions(&sim);
        let id = open_small(&mut partitions, "/p/t-0");
        let first = partitions.append(id, &idempotent_batch(3, 7, 0, 0), Acks::All, 0).expect("append");
        assert_eq!((first.base_offset, first.last_offset), (Offset(0), Offset(2)));
        let rolled_to = roll_past(&mut partitions, id, Offset(2));
        let at_roll = producer_snapshot::decode(&sim.contents(&snapshot_path("/p/t-0")).expect("written at the roll"));
        assert_eq!(at_roll.expect("valid").offset, rolled_to, "the state as of the new segment's base");
        partitions.close(0).expect("close");

        let (mut reopened, _triggers) = super::tests::partitions(&sim);
        let id = open_small(&mut reopened, "/p/t-0");
        assert!(reopened.engine.log(id).expect("log").active_segment_base() > Offset(2));
        let retry = reopened.append(id, &idempotent_batch(3, 7, 0, 0), Acks::All, 0).expect("a retry");
        assert_eq!((retry.base_offset, retry.last_offset), (Offset(0), Offset(2)), "a duplicate from an older segment");
        let gap = reopened.append(id, &idempotent_batch(1, 7, 0, 9), Acks::All, 0).expect_err("a gap");
        assert!(matches!(gap, ReplicaError::Producer(ProducerError::OutOfOrderSequence)));
        reopened.close(0).expect("close");

        // What the snapshot is for: without it the producer's batches are outside the replayed
        // segment, and the retry would be appended a second time.
        sim.clone().remove_file(&snapshot_path("/p/t-0")).expect("remove the snapshot");
        let (mut forgetful, _triggers) = super::tests::partitions(&sim);
        let id = open_small(&mut forgetful, "/p/t-0");
        let again = forgetful.append(id, &idempotent_batch(3, 7, 0, 0), Acks::All, 0).expect("appended");
        assert!(again.base_offset > Offset(2));
    }

    #[test]
    fn a_snapshot_survives_a_crash_and_an_unsynced_rename_does_not() {
        let sim = SimFs::new(7, SimFaults::default());
        let (mut partitions, _triggers) = partitions(&sim);
        let id = open_small(&mut partitions, "/p/t-0");
        partitions.append(id, &idempotent_batch(3, 7, 0, 0), Acks::All, 0).expect("append");
        roll_past(&mut partitions, id, Offset(2));
        // The write path syncs the directory: a crash right after it keeps the snapshot.
        let written = sim.contents(&snapshot_path("/p/t-0")).expect("written at the roll");
        sim.crash();
        drop(partitions);
        assert_eq!(sim.contents(&snapshot_path("/p/t-0")).as_ref(), Some(&written), "durable, name and all");
        let (mut reopened, _triggers) = super::tests::partitions(&sim);
        let id = open_small(&mut reopened, "/p/t-0");
        let retry = reopened.append(id, &idempotent_batch(3, 7, 0, 0), Acks::All, 0).expect("a retry");
        assert_eq!(retry.base_offset, Offset(0), "recognised after the crash");

        // A write path that renames without syncing the directory: the crash undoes the rename,
        // and open rebuilds the state from the log without an error.
        let other = open_small(&mut reopened, "/p/t-1");
        reopened.append(other, &idempotent_batch(2, 8, 0, 0), Acks::All, 0).expect("append");
        reopened.commit(0);
        let mut producers = ProducerState::default();
        let identity = BatchIdentity { producer_id: 8, producer_epoch: 0, first_sequence: 0, last_sequence: 1 };
        producers.record(&identity, 0, 1);
        let bytes = producer_snapshot::encode(&producers, Offset(2)).expect("encode");
        let mut fs = sim.clone();
        let temp =
            Path::new("/p/t-1").join(format!("{}{}", producer_snapshot::FILE_NAME, engine::io::ATOMIC_TEMP_SUFFIX));
        let file = fs.open(&temp, engine::io::OpenOptions::REPLACE).expect("temp file");
        file.write_all_at(&bytes, 0).expect("write");
        file.sync_data().expect("sync");
        fs.rename(&temp, &snapshot_path("/p/t-1")).expect("rename, no directory sync");
        sim.crash();
        drop(reopened);
        assert!(sim.contents(&snapshot_path("/p/t-1")).is_none(), "the crash undid the rename");
        assert!(sim.contents(&temp).is_some());
        let (mut third, _triggers) = super::tests::partitions(&sim);
        let other = open_small(&mut third, "/p/t-1");
        assert!(sim.contents(&temp).is_none(), "the interrupted write's temp file is removed");
        assert!(third.get(other).expect("partition").snapshot_offset.is_none());
        let retry = third.append(other, &idempotent_batch(2, 8, 0, 0), Acks::All, 0).expect("a retry");
        assert_eq!(retry.base_offset, Offset(0), "rebuilt from the active segment");
    }

    #[test]
    fn a_snapshot_that_cannot_seed_the_log_is_ignored_and_removed() {
        let sim = SimFs::new(8, SimFaults::default());
        let (mut partitions, _triggers) = partitions(&sim);
        let id = open_small(&mut partitions, "/p/t-0");
        partitions.append(id, &idempotent_batch(3, 7, 0, 0), Acks::All, 0).expect("append");
        roll_past(&mut partitions, id, Offset(2));
        partitions.close(0).expect("close");

        // Damaged (bad CRC): not fatal; the state is rebuilt from the active segment alone.
        assert!(sim.flip_bit(&snapshot_path("/p/t-0"), 30, 0));
        let (mut reopened, _triggers) = super::tests::partitions(&sim);
        let id = open_small(&mut reopened, "/p/t-0");
        assert!(sim.contents(&snapshot_path("/p/t-0")).is_none(), "removed");
        let forgotten = reopened.append(id, &idempotent_batch(3, 7, 0, 0), Acks::All, 0).expect("appended");
        assert!(forgotten.base_offset > Offset(2), "the producer's batch was outside the active segment");
        reopened.close(0).expect("close");

        // Above the log end (as after a crash cut an unsynced tail): ignored and removed.
        let end = {
            let (mut probe, _triggers) = super::tests::partitions(&sim);
            let id = open_small(&mut probe, "/p/t-0");
            let end = probe.get(id).expect("partition").log_end_offset();
            probe.close(0).expect("close");
            end
        };
        let beyond = producer_snapshot::encode(&ProducerState::default(), end.plus(10)).expect("encode");
        producer_snapshot::write(&mut sim.clone(), Path::new("/p/t-0"), &beyond).expect("write");
        let (mut reopened, _triggers) = super::tests::partitions(&sim);
        let id = open_small(&mut reopened, "/p/t-0");
        assert!(sim.contents(&snapshot_path("/p/t-0")).is_none(), "removed");

        // A truncation below the snapshot's offset removes it.
        let rolled_to = roll_past(&mut reopened, id, end);
        assert_eq!(reopened.get(id).expect("partition").snapshot_offset, Some(rolled_to));
        reopened.truncate_to(id, Offset(1), 0).expect("truncate");
        assert!(sim.contents(&snapshot_path("/p/t-0")).is_none(), "removed with the batches it covered");
        assert_eq!(reopened.get(id).expect("partition").snapshot_offset, None);

        // Deleting the partition removes its snapshot with its segments.
        roll_past(&mut reopened, id, Offset(0));
        assert!(sim.contents(&snapshot_path("/p/t-0")).is_some(), "the producer's epoch is still known");
        reopened.delete(id, 0).expect("delete");
        assert!(sim.file_paths().iter().all(|path| !path.starts_with("/p/t-0")), "{:?}", sim.file_paths());
    }

    #[test]
    fn a_roll_snapshot_waits_for_its_commit_and_a_failed_commit_discards_it() {
        let sim = SimFs::new(9, SimFaults::default());
        let (mut partitions, _triggers) = partitions(&sim);
        let id = open_small(&mut partitions, "/p/t-0");
        partitions.append(id, &idempotent_batch(3, 7, 0, 0), Acks::All, 0).expect("append");
        while partitions.engine.log(id).expect("log").active_segment_base() == Offset(0) {
            partitions.append(id, &batch(3), Acks::None, 0).expect("append");
        }
        assert!(partitions.get(id).expect("partition").roll_snapshot.is_some(), "taken at the roll");
        assert!(sim.contents(&snapshot_path("/p/t-0")).is_none(), "not written before its commit");
        sim.set_faults(SimFaults { sync_error_per_million: 1_000_000, ..SimFaults::default() });
        partitions.commit(0);
        sim.set_faults(SimFaults::default());
        assert!(partitions.get(id).expect("partition").roll_snapshot.is_none(), "it held batches that failed");
        assert!(sim.contents(&snapshot_path("/p/t-0")).is_none());
    }

    #[test]
    fn a_follower_refuses_writes_and_epochs_only_move_forward() {
        let sim = SimFs::new(4, SimFaults::default());
        let (mut partitions, _triggers) = partitions(&sim);
        let id = open(&mut partitions, "/p/t-0");
        let mut pending = partitions.append(id, &batch(2), Acks::All, 0).expect("append").ack.expect("ack");
        partitions.become_follower(id, LeaderEpoch(1)).expect("follower");
        assert!(
            matches!(poll_once(&mut pending), Some(Err(ReplicaError::NotLeader { .. }))),
            "a leader that steps down never acknowledges what it had not acknowledged"
        );
        let refused = partitions.append(id, &batch(1), Acks::All, 0).expect_err("not leader");
        assert!(matches!(refused, ReplicaError::NotLeader { epoch: LeaderEpoch(1) }));
        let stale = partitions.become_leader(id, LeaderEpoch(0)).expect_err("an older epoch");
        assert!(matches!(stale, ReplicaError::FencedLeaderEpoch { .. }));
        partitions.commit(0);
        partitions.become_leader(id, LeaderEpoch(2)).expect("leader again");
        let partition = partitions.get(id).expect("partition");
        assert!(matches!(partition.check_epoch(Some(LeaderEpoch(1))), Err(ReplicaError::FencedLeaderEpoch { .. })));
        assert!(matches!(partition.check_epoch(Some(LeaderEpoch(3))), Err(ReplicaError::UnknownLeaderEpoch { .. })));
        partition.check_epoch(Some(LeaderEpoch(2))).expect("the current epoch");
        partition.check_epoch(None).expect("no epoch given");
        // Epoch 0 held offsets 0..2; epoch 2 begins at 2 (epoch 1 was a follower's: no batch).
        assert_eq!(partition.end_offset_for_epoch(LeaderEpoch(0)), Some((LeaderEpoch(0), Offset(2))));
        assert_eq!(partition.end_offset_for_epoch(LeaderEpoch(2)), Some((LeaderEpoch(2), Offset(2))));
        assert_eq!(partition.end_offset_for_epoch(LeaderEpoch(5)), None, "newer than any known epoch");
        assert_eq!(partition.end_offset_for_epoch(LeaderEpoch(-1)), None);
    }

    #[test]
    fn a_failed_commit_fails_its_acks_and_truncation_lowers_the_high_watermark() {
        let sim = SimFs::new(5, SimFaults::default());
        let (mut partitions, _triggers) = partitions(&sim);
        let id = open(&mut partitions, "/p/t-0");
        partitions.append(id, &batch(2), Acks::All, 0).expect("append");
        partitions.append(id, &batch(2), Acks::All, 0).expect("append");
        partitions.commit(0);
        sim.set_faults(SimFaults { sync_error_per_million: 1_000_000, ..SimFaults::default() });
        let mut failing = partitions.append(id, &idempotent_batch(2, 9, 0, 0), Acks::All, 0).expect("append");
        partitions.commit(0);
        assert!(matches!(poll_once(failing.ack.as_mut().expect("ack")), Some(Err(ReplicaError::Storage(_)))));
        assert_eq!(partitions.get(id).expect("partition").high_watermark(), Offset(4));
        sim.set_faults(SimFaults::default());
        partitions.truncate_to(id, Offset(2), 0).expect("truncate");
        let partition = partitions.get(id).expect("partition");
        assert_eq!((partition.high_watermark(), partition.log_end_offset()), (Offset(2), Offset(2)));
    }
}

#[cfg(test)]
/// Regression tests for the defects a review of the partition layer found (each failed before
/// its fix): a stale log start after a failed retention pass, commit reports applied after a
/// truncation or deletion they predate.
mod regression_tests {
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use engine::io::sim::{SimFaults, SimFs};
    use engine::io::{Completion, FileRef, FileSystem, OpenOptions, WriteChain};
    use engine::ShardConfig;

    use super::tests::{batch, open, partitions, poll_once};
    use super::*;

    /// SimFs whose file removals and renames to recycled segments fail while `fail` is set.
    #[derive(Debug)]
    struct Flaky {
        inner: SimFs,
        fail: Arc<AtomicBool>,
    }

    impl FileSystem for Flaky {
        fn name(&self) -> &'static str {
            "flaky"
        }
        fn open(&mut self, path: &Path, options: OpenOptions) -> std::io::Result<FileRef> {
            self.inner.open(path, options)
        }
        fn create_dir_all(&mut self, path: &Path) -> std::io::Result<()> {
            self.inner.create_dir_all(path)
        }
        fn list_dir(&mut self, path: &Path) -> std::io::Result<Vec<String>> {
            self.inner.list_dir(path)
        }
        fn remove_file(&mut self, path: &Path) -> std::io::Result<()> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(std::io::Error::other("injected"));
            }
            self.inner.remove_file(path)
        }
        fn rename(&mut self, from: &Path, to: &Path) -> std::io::Result<()> {
            if self.fail.load(Ordering::SeqCst) && to.to_string_lossy().ends_with(".recycled") {
                return Err(std::io::Error::other("injected"));
            }
            self.inner.rename(from, to)
        }
        fn sync_dir(&mut self, path: &Path) -> std::io::Result<()> {
            self.inner.sync_dir(path)
        }
        fn start(&mut self, token: u64, chain: WriteChain) {
            self.inner.start(token, chain)
        }
        fn flush(&mut self) {
            self.inner.flush()
        }
        fn reap(&mut self, wait: bool) -> Vec<Completion> {
            self.inner.reap(wait)
        }
        fn in_flight(&self) -> usize {
            self.inner.in_flight()
        }
    }

    #[test]
    fn a_failed_retention_pass_still_moves_the_log_start() {
        let fail = Arc::new(AtomicBool::new(false));
        let fs = Flaky { inner: SimFs::new(9, SimFaults::default()), fail: fail.clone() };
        let engine = Shard::new(Box::new(fs), ShardConfig::default()).expect("shard");
        let (trigger, _triggers) = mpsc::unbounded();
        let mut partitions = Partitions::new(engine, trigger);
        let config = LogConfig { segment_bytes: 200, retention_ms: 1, ..LogConfig::default() };
        let role = Role::Leader { epoch: LeaderEpoch(0) };
        let (id, _) = partitions.open(Path::new("/p/t-0"), config, role, 1_000).expect("open");
        for _ in 0..4 {
            partitions.append(id, &batch(1), Acks::All, 1_000).expect("append");
            partitions.commit(1_000);
        }
        fail.store(true, Ordering::SeqCst);
        let reports = partitions.enforce_retention(10_000_000);
        assert!(reports.iter().any(|(_, report)| report.is_err()), "retention reported an error");
        let start = partitions.log_start_offset(id).expect("partition");
        let engine_start = partitions.engine.log(id).expect("log").log_start_offset();
        assert!(engine_start > Offset(0), "the engine moved its start before failing");
        assert_eq!(start, engine_start, "ListOffsets earliest and Fetch's log_start_offset follow the engine");
        partitions.read(id, start, 1 << 20, ReadBound::HighWatermark).expect("the advertised start is readable");
    }

    #[test]
    fn start_commits_sends_appends_to_the_disk_before_the_committer_runs() {
        let sim = SimFs::new(12, SimFaults::default());
        let (mut partitions, _triggers) = partitions(&sim);
        let id = open(&mut partitions, "/p/t-0");
        let mut ack = partitions.append(id, &batch(2), Acks::All, 1_000).expect("append").ack.expect("ack");
        assert_eq!(partitions.commits_in_flight(), 0, "an append alone starts nothing");
        partitions.start_commits(1_000);
        assert_eq!(partitions.commits_in_flight(), 1, "the append's commit is in flight");
        let mut behind = partitions.append(id, &batch(1), Acks::All, 1_000).expect("append").ack.expect("ack");
        partitions.start_commits(1_000);
        assert_eq!(partitions.commits_in_flight(), 1, "an append behind a commit in flight waits for it");
        assert!(poll_once(&mut ack).is_none(), "acknowledged only once the commit landed");
        partitions.commit(1_000);
        assert!(poll_once(&mut ack).is_some_and(|result| result.is_ok()));
        assert!(poll_once(&mut behind).is_some_and(|result| result.is_ok()));
        assert_eq!(partitions.get(id).expect("partition").high_watermark(), Offset(3));
    }

    #[test]
    fn truncating_with_a_commit_in_flight_never_lifts_the_high_watermark_past_the_log() {
        let sim = SimFs::new(11, SimFaults::default());
        let (mut partitions, _triggers) = partitions(&sim);
        let id = open(&mut partitions, "/p/t-0");
        partitions.append(id, &batch(1), Acks::All, 1_000).expect("append");
        partitions.append(id, &batch(1), Acks::All, 1_000).expect("append");
        partitions.commit(1_000);
        partitions.append(id, &batch(1), Acks::All, 1_000).expect("append");
        assert!(partitions.engine.start_commits(1_000) > 0, "a commit in flight");
        partitions.truncate_to(id, Offset(1), 1_000).expect("truncate");
        partitions.pump(1_000);
        let engine_end = partitions.engine.log(id).expect("log").log_end_offset();
        assert!(partitions.get(id).expect("partition").high_watermark() <= engine_end);
        let appended = partitions.append(id, &batch(1), Acks::All, 1_000).expect("append");
        let mut ack = appended.ack.expect("ack");
        assert!(poll_once(&mut ack).is_none(), "acks=all waits for a commit that covers the append");
    }

    #[test]
    fn deleting_with_another_commit_in_flight_strands_no_ack() {
        let Ok(fs) = engine::io::open_backend(engine::io::BackendKind::IoUring) else {
            eprintln!("io_uring unavailable here; skipping");
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Shard::new(fs, ShardConfig::default()).expect("shard");
        let (trigger, _triggers) = mpsc::unbounded();
        let mut partitions = Partitions::new(engine, trigger);
        let role = Role::Leader { epoch: LeaderEpoch(0) };
        let (a, _) = partitions.open(&dir.path().join("a-0"), LogConfig::default(), role, 1_000).expect("open");
        let (b, _) = partitions.open(&dir.path().join("b-0"), LogConfig::default(), role, 1_000).expect("open");
        partitions.append(a, &batch(1), Acks::All, 1_000).expect("append");
        let mut ack = partitions.append(b, &batch(1), Acks::All, 1_000).expect("append").ack.expect("ack");
        partitions.pump(1_000); // Starts both commits (the committer's first step).
        assert!(partitions.commits_in_flight() > 0);
        std::thread::sleep(std::time::Duration::from_millis(200));
        partitions.delete(a, 1_000).expect("delete a");
        let acked = poll_once(&mut ack).is_some();
        // Either b's commit landed during the deletion and was applied there, or it is still in
        // flight (the committer's eventfd will report it): never landed and forgotten.
        assert!(acked || partitions.commits_in_flight() > 0, "b's ack is stranded: nothing will wake the committer");
        let engine_end = partitions.engine.log(b).expect("log").log_end_offset();
        assert!(!acked || partitions.get(b).expect("b").high_watermark() == engine_end);
    }

    #[test]
    fn a_failure_reported_during_a_deletion_never_fails_a_later_append() {
        let sim = SimFs::new(12, SimFaults::default());
        let (mut partitions, _triggers) = partitions(&sim);
        let l = open(&mut partitions, "/p/l-0");
        let m = open(&mut partitions, "/p/m-0");
        sim.set_faults(SimFaults { sync_error_per_million: 1_000_000, ..SimFaults::default() });
        partitions.append(l, &batch(1), Acks::All, 1_000).expect("append");
        partitions.append(m, &batch(1), Acks::All, 1_000).expect("append");
        partitions.engine.start_commits(1_000);
        partitions.delete(m, 1_000).expect("delete m"); // l's failure lands during the deletion.
        sim.set_faults(SimFaults::default());
        let appended = partitions.append(l, &batch(1), Acks::All, 1_000).expect("append after the rollback");
        let mut ack = appended.ack.expect("ack");
        partitions.pump(1_000);
        let end = partitions.engine.log(l).expect("log").log_end_offset();
        assert!(end > appended.last_offset, "committed");
        assert!(matches!(poll_once(&mut ack), Some(Ok(()))), "a committed append is acknowledged");
    }
}
