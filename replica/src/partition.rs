//! One partition's replica state: role and leader epoch, high watermark, waiting
//! acknowledgements and fetches, producer state. Plain state: the engine log it describes is
//! reached through [`Partitions`](crate::Partitions), which owns the engine shard.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

use engine::{LeaderEpoch, LogId, Offset};
use futures_channel::oneshot;

use crate::error::{ReplicaError, Result};
use crate::producer_snapshot;
use crate::producers::ProducerState;

/// What a produce waits for before it is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acks {
    /// No acknowledgement at all (Kafka's `acks=0`); the write is still committed.
    None,
    /// The leader's own commit (Kafka's `acks=1`).
    Leader,
    /// The high watermark: every in-sync replica has it (Kafka's `acks=all`).
    All,
}

/// How far a read may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadBound {
    /// Consumers: only what the high watermark covers.
    HighWatermark,
    /// Followers and the broker's own rebuilds: everything committed locally.
    LogEnd,
}

/// A partition's role on this broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Takes writes from clients in `epoch`.
    Leader { epoch: LeaderEpoch },
    /// Refuses client writes; will copy the leader's log (order 4 builds the fetcher).
    Follower { epoch: LeaderEpoch },
}

impl Role {
    pub fn epoch(self) -> LeaderEpoch {
        match self {
            Role::Leader { epoch } | Role::Follower { epoch } => epoch,
        }
    }
}

/// An acknowledgement waiting for its batch to be covered.
#[derive(Debug)]
pub(crate) struct AckWaiter {
    pub acks: Acks,
    pub reply: oneshot::Sender<Result<()>>,
}

/// A fetch waiting for new data on any of several partitions: the first to get data fires it.
#[derive(Default)]
pub(crate) struct DataWaiter {
    pub reply: Cell<Option<oneshot::Sender<()>>>,
}

impl std::fmt::Debug for DataWaiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataWaiter")
    }
}

impl DataWaiter {
    fn wake(&self) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(());
        }
    }

    fn is_gone(&self) -> bool {
        let reply = self.reply.take();
        let gone = reply.as_ref().is_none_or(|reply| reply.is_canceled());
        self.reply.set(reply);
        gone
    }
}

/// Where a leader epoch began: the first offset written in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochStart {
    pub epoch: LeaderEpoch,
    pub start_offset: Offset,
}

#[derive(Debug)]
pub struct Partition {
    pub(crate) log: LogId,
    pub(crate) role: Role,
    /// Every offset below it is in every in-sync replica: what consumers may read and `acks=all`
    /// waits for. Never moves backwards except by truncation.
    pub(crate) high_watermark: Offset,
    /// One past the last offset the local commit covers.
    pub(crate) local_end: Offset,
    /// A follower's: the high watermark its leader last reported (its own follows up to its
    /// committed end, `follow.rs`).
    pub(crate) leader_high_watermark: Offset,
    /// The leader epochs of this log, oldest first; on disk beside it ([`crate::epoch_history`]),
    /// written before the batches of a new epoch are committed.
    pub(crate) epochs: Vec<EpochStart>,
    /// Keyed by the last offset of the batch each waits for.
    pub(crate) acks: BTreeMap<Offset, Vec<AckWaiter>>,
    /// Consumers' fetches, woken when the high watermark moves.
    pub(crate) data_waiters: Vec<Rc<DataWaiter>>,
    /// Followers' fetches, woken when the local end moves (they read past the high watermark).
    pub(crate) replica_waiters: Vec<Rc<DataWaiter>>,
    /// In a cluster: the replicas, the ISR and (leading) each follower's progress; `None` on one
    /// node, where the ISR is this replica alone ([`crate::leader`]).
    pub(crate) replication: Option<crate::leader::Replication>,
    pub(crate) producers: ProducerState,
    /// The log's directory, which holds its producer-state snapshot.
    pub(crate) dir: PathBuf,
    /// The offset of the producer-state snapshot on disk; `None` when there is none.
    pub(crate) snapshot_offset: Option<Offset>,
    /// The producer state as of the last roll (at the new segment's base offset), encoded, to be
    /// written once the commit covering every batch below that offset lands. Never written
    /// before: a failed commit drops batches it may hold (their offsets are assigned again).
    pub(crate) roll_snapshot: Option<(Offset, Vec<u8>)>,
    /// The high watermark on disk as of the last checkpoint ([`crate::high_watermark`]); None
    /// while none was read or written.
    pub(crate) checkpointed_high_watermark: Option<Offset>,
}

/// What opening a partition found: where it is, what the log holds, and the producer state to
/// start from.
#[derive(Debug)]
pub(crate) struct Opened {
    pub log: LogId,
    pub dir: PathBuf,
    pub log_start: Offset,
    pub end: Offset,
    pub producers: ProducerState,
    pub snapshot_offset: Option<Offset>,
    /// The leader-epoch history, trimmed to the log.
    pub epochs: Vec<EpochStart>,
}

impl Partition {
    pub(crate) fn new(opened: Opened, role: Role) -> Partition {
        let Opened { log, dir, log_start, end, producers, snapshot_offset, epochs } = opened;
        Partition {
            log,
            role,
            // A follower's comes from its leader; a leader's from its ISR, settled when it
            // takes the role (on one node: the recovered end, all of it committed). Nothing
            // recovered is trusted to be in the ISR before that: a replica elected right after a
            // restart must not let consumers read what the others may not have.
            high_watermark: match role {
                Role::Leader { .. } => end,
                Role::Follower { .. } => log_start,
            },
            local_end: end,
            leader_high_watermark: Offset::ZERO,
            epochs,
            acks: BTreeMap::new(),
            data_waiters: Vec::new(),
            replica_waiters: Vec::new(),
            replication: None,
            producers,
            dir,
            snapshot_offset,
            roll_snapshot: None,
            checkpointed_high_watermark: None,
        }
    }

    pub fn log(&self) -> LogId {
        self.log
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn leader_epoch(&self) -> LeaderEpoch {
        self.role.epoch()
    }

    /// The idempotent producers' state (DescribeProducers).
    pub fn producers(&self) -> &ProducerState {
        &self.producers
    }

    pub fn high_watermark(&self) -> Offset {
        self.high_watermark
    }

    /// One past the last offset committed locally.
    pub fn log_end_offset(&self) -> Offset {
        self.local_end
    }

    /// Kafka's check of a request's `current_leader_epoch` (`None`: the client sent none).
    pub fn check_epoch(&self, requested: Option<LeaderEpoch>) -> Result<()> {
        let current = self.leader_epoch();
        match requested {
            Some(requested) if requested < current => Err(ReplicaError::FencedLeaderEpoch { requested, current }),
            Some(requested) if requested > current => Err(ReplicaError::UnknownLeaderEpoch { requested, current }),
            _ => Ok(()),
        }
    }

    /// Kafka's checks of a client request the leader serves (Fetch, ListOffsets,
    /// OffsetForLeaderEpoch), in Kafka's order: the request's leader epoch first (older:
    /// fenced, newer: unknown), then leadership.
    pub fn check_leader_request(&self, requested: Option<LeaderEpoch>) -> Result<()> {
        self.check_epoch(requested)?;
        self.check_leader()
    }

    /// Refuses unless this replica leads (client writes and client reads go to the leader).
    pub fn check_leader(&self) -> Result<()> {
        match self.role {
            Role::Leader { .. } => Ok(()),
            Role::Follower { epoch } => Err(ReplicaError::NotLeader { epoch }),
        }
    }

    /// Kafka's OffsetForLeaderEpoch answer, which a follower uses to find where its log diverges
    /// (`LeaderEpochFileCache.endOffsetFor`): for the latest epoch, the log end; for an older one,
    /// the largest known epoch at or below it (or the requested one if none is known) and the
    /// start of the next known epoch. `None` (undefined) for an epoch newer than any known, or for
    /// "no epoch" (`-1`).
    pub fn end_offset_for_epoch(&self, requested: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        if requested.0 < 0 {
            return None;
        }
        let latest = self.epochs.last()?;
        if requested == latest.epoch {
            return Some((latest.epoch, self.local_end));
        }
        let after = self.epochs.iter().position(|start| start.epoch > requested)?;
        let found = after.checked_sub(1).map_or(requested, |index| self.epochs[index].epoch);
        Some((found, self.epochs[after].start_offset))
    }

    /// Sets the high watermark: the smallest committed end of the in-sync replicas. The only
    /// writer is [`Partitions`](crate::Partitions) when a commit lands (single node: the ISR is
    /// this replica alone, so the high watermark is the local committed end). Returns whether it
    /// moved.
    pub(crate) fn advance_high_watermark(&mut self, isr_end: Offset) -> bool {
        debug_assert!(isr_end <= self.local_end, "the ISR cannot be ahead of the leader");
        if isr_end <= self.high_watermark {
            return false;
        }
        self.high_watermark = isr_end;
        true
    }

    /// Registers an acknowledgement for the batch ending at `last_offset`, answered at once if
    /// it is already covered.
    pub(crate) fn wait_for_ack(&mut self, last_offset: Offset, acks: Acks) -> oneshot::Receiver<Result<()>> {
        let (reply, receiver) = oneshot::channel();
        if self.covers(last_offset, acks) {
            let _ = reply.send(Ok(()));
        } else {
            self.acks.entry(last_offset).or_default().push(AckWaiter { acks, reply });
        }
        receiver
    }

    pub(crate) fn covers(&self, last_offset: Offset, acks: Acks) -> bool {
        match acks {
            Acks::None | Acks::Leader => last_offset < self.local_end,
            Acks::All => last_offset < self.high_watermark,
        }
    }

    /// Answers every acknowledgement the local end and the high watermark now cover (`acks=all`
    /// with NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank below `min.insync.replicas`
    /// meanwhile: Kafka's answer, the write is in the log but not as replicated as asked).
    pub(crate) fn resolve_acks(&mut self) {
        let waiting = self.acks.split_off(&self.local_end);
        let candidates = std::mem::replace(&mut self.acks, waiting);
        let short_of_replicas = self.replication.as_ref().is_some_and(|replication| replication.isr_too_small());
        for (last_offset, waiters) in candidates {
            for waiter in waiters {
                if self.covers(last_offset, waiter.acks) {
                    let outcome = match waiter.acks {
                        Acks::All if short_of_replicas => Err(ReplicaError::NotEnoughReplicasAfterAppend),
                        _ => Ok(()),
                    };
                    let _ = waiter.reply.send(outcome);
                } else {
                    self.acks.entry(last_offset).or_default().push(waiter);
                }
            }
        }
    }

    /// Fails every acknowledgement at or past `from` (their commit failed: those offsets were
    /// never written and will be assigned again).
    pub(crate) fn fail_acks_from(&mut self, from: Offset, error: &ReplicaError) {
        for (_, waiters) in self.acks.split_off(&from) {
            for waiter in waiters {
                let _ = waiter.reply.send(Err(error.clone()));
            }
        }
    }

    pub(crate) fn add_data_waiter(&mut self, waiter: Rc<DataWaiter>) {
        // Fetches that gave up (deadline, closed connection) or were woken elsewhere leave
        // spent waiters behind.
        self.data_waiters.retain(|waiter| !waiter.is_gone());
        self.data_waiters.push(waiter);
    }

    pub(crate) fn wake_data_waiters(&mut self) {
        for waiter in self.data_waiters.drain(..) {
            waiter.wake();
        }
    }

    pub(crate) fn add_replica_waiter(&mut self, waiter: Rc<DataWaiter>) {
        self.replica_waiters.retain(|waiter| !waiter.is_gone());
        self.replica_waiters.push(waiter);
    }

    pub(crate) fn wake_replica_waiters(&mut self) {
        for waiter in self.replica_waiters.drain(..) {
            waiter.wake();
        }
    }
}

impl Partition {
    /// Whether a snapshot at `offset` would tell the next open anything: not when the one on
    /// disk is at that offset already (the state below it has not changed since: appends move
    /// the end, and a failed commit forgets only batches above it), nor when there is no
    /// producer and no file (an open without a snapshot finds none either).
    pub(crate) fn snapshot_needed(&self, offset: Offset) -> bool {
        match self.snapshot_offset {
            Some(on_disk) => on_disk != offset,
            None => !self.producers.is_empty(),
        }
    }

    /// Keeps the producer state as of a roll to `offset` (the new segment's base), for
    /// [`Partitions`](crate::Partitions) to write once that offset is committed. Call before the
    /// batches at or past `offset` are recorded.
    pub(crate) fn snapshot_at_roll(&mut self, offset: Offset) {
        if !self.snapshot_needed(offset) {
            return;
        }
        match producer_snapshot::encode(&self.producers, offset) {
            Ok(bytes) => self.roll_snapshot = Some((offset, bytes)),
            Err(error) => {
                tracing::warn!(dir = %self.dir.display(), %offset, %error, "producer state not snapshotted at a roll; the previous snapshot stays")
            }
        }
    }

    /// A role change must not go back in epochs (a stale controller's order).
    pub(crate) fn check_epoch_not_older(&self, epoch: LeaderEpoch) -> Result<()> {
        let current = self.leader_epoch();
        if epoch < current {
            return Err(ReplicaError::FencedLeaderEpoch { requested: epoch, current });
        }
        Ok(())
    }

    /// Records that `epoch` begins at `start_offset`, the next offset to be assigned (no-op for
    /// the current epoch or an older one). An epoch in which nothing was written gives its place
    /// to the next (Kafka's cache keeps the latest epoch for a start offset). Returns whether the
    /// history changed (the caller persists it).
    pub(crate) fn start_epoch(&mut self, epoch: LeaderEpoch, start_offset: Offset) -> bool {
        start_epoch_in(&mut self.epochs, epoch, start_offset)
    }

    /// The leader epoch of the last batch in the log (Kafka's `latestEpoch`): what a follower
    /// sends as `last_fetched_epoch`. `None` for a log that holds no epoch.
    pub fn last_epoch(&self) -> Option<LeaderEpoch> {
        self.epochs.last().map(|start| start.epoch)
    }

    pub fn epoch_history(&self) -> &[EpochStart] {
        &self.epochs
    }

    /// Kafka's rule for offsets a client may be told (KIP-207): a new leader whose high
    /// watermark has not reached the start of its own epoch yet (its followers have not fetched
    /// what it held when elected) would answer a lower offset than the previous leader did;
    /// refused with [`ReplicaError::OffsetNotAvailable`] until it has. Followers and leaders
    /// that caught up pass.
    pub fn check_offsets_available(&self) -> Result<()> {
        let Role::Leader { epoch } = self.role else { return Ok(()) };
        match self.epochs.iter().rev().find(|start| start.epoch == epoch) {
            Some(start) if self.high_watermark < start.start_offset => Err(ReplicaError::OffsetNotAvailable {
                high_watermark: self.high_watermark,
                epoch_start: start.start_offset,
            }),
            _ => Ok(()),
        }
    }
}

/// [`Partition::start_epoch`] on a history being built.
pub(crate) fn start_epoch_in(epochs: &mut Vec<EpochStart>, epoch: LeaderEpoch, start_offset: Offset) -> bool {
    if epochs.last().is_some_and(|latest| latest.epoch >= epoch) {
        return false;
    }
    if epochs.last().is_some_and(|latest| latest.start_offset >= start_offset) {
        epochs.pop();
    }
    epochs.push(EpochStart { epoch, start_offset });
    true
}
