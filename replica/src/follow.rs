//! The follower side of a partition: taking the leader's batches as they are, the high watermark
//! the leader reports, and starting the log again at the leader's log start. Decision 0017.
//!
//! Owns: what a follower's partition state learns from replicated batches. Their offsets and
//! leader epochs were assigned by the leader and are stored byte for byte
//! ([`engine::Shard::append_replicated`]); the idempotent producers' state is recorded from their
//! headers as the leader recorded it (so a follower promoted to leader answers a producer's retry
//! with the original offsets), and a batch with a newer leader epoch than any known starts that
//! epoch at its base offset. A follower's high watermark is the leader's, up to its own committed
//! end.
//!
//! Also where a follower's log diverges from its leader's ([`Partitions::truncate_to_divergence`],
//! Kafka's rule for the leader's answer about the follower's last epoch).
//!
//! Must not know: how batches are fetched from the leader (the broker's fetcher), how the leader's
//! answer arrives (a fetch response's diverging epoch), any Kafka API key. Runs on the shard
//! thread that owns the [`Partitions`], like the rest of the partition layer.

use engine::batch::ValidatedBatches;
use engine::{AppendInfo, LeaderEpoch, LogId, Offset};

use crate::epoch_history;
use crate::error::{ReplicaError, Result};
use crate::partition::{start_epoch_in, Partition, Role};
use crate::partitions::Partitions;
use crate::producer_snapshot;
use crate::producers::{BatchIdentity, ProducerState};

impl Partitions {
    /// Appends the leader's batches to a follower's log, byte for byte with their own offsets and
    /// leader epochs: the first must start at the log's next offset, each next one right after
    /// the one before (else the engine's `NotContiguous`, and nothing is appended). Records the
    /// idempotent producers' batches and the leader epochs the batches begin, and wakes the
    /// committer. The follower's local end moves when the commit lands. All or nothing.
    pub fn append_replicated(&mut self, id: LogId, batches: &ValidatedBatches, now_ms: i64) -> Result<AppendInfo> {
        let partition = self.get(id)?;
        partition.check_follower()?;
        // The epochs these batches begin are on disk before any of them can be.
        let mut epochs = partition.epochs.clone();
        let mut new_epochs = false;
        for header in batches.headers() {
            new_epochs |=
                start_epoch_in(&mut epochs, LeaderEpoch(header.partition_leader_epoch), Offset(header.base_offset));
        }
        if new_epochs {
            let dir = partition.dir.clone();
            epoch_history::write(self.engine.file_system(), &dir, &epochs)?;
        }
        let active_before = self.engine.log(id)?.active_segment_base();
        let info = match self.engine.append_replicated(id, batches, now_ms) {
            Ok(info) => info,
            Err(error) => {
                if new_epochs {
                    // Nothing was appended: the history on disk must not name epochs the log
                    // may later hold at other offsets.
                    let _ = self.persist_epochs(id);
                }
                return Err(error.into());
            }
        };
        // A roll starts the new segment at a batch of this append: the state as of that batch
        // (before it is recorded) is what a snapshot at the new base holds.
        let active_after = self.engine.log(id)?.active_segment_base();
        let rolled_to = (active_after > active_before).then_some(active_after);
        let partition = self.get_mut(id)?;
        for header in batches.headers() {
            let base = Offset(header.base_offset);
            if rolled_to == Some(base) {
                partition.snapshot_at_roll(base);
            }
            if let Some(identity) = BatchIdentity::of(header) {
                partition.producers.record(&identity, header.base_offset, header.last_offset());
                partition.producers.note_write(identity.producer_id, header.max_timestamp, now_ms);
            }
        }
        partition.epochs = epochs;
        let _ = self.commit_trigger.unbounded_send(());
        Ok(info)
    }

    /// Takes the high watermark a follower's leader reported: the follower's own becomes the
    /// smaller of it and the local committed end (and follows the local end up to it as commits
    /// land). Never moves backwards (only truncation lowers it). Wakes waiting fetches when it
    /// moves; returns the follower's high watermark.
    pub fn set_follower_high_watermark(&mut self, id: LogId, high_watermark: Offset) -> Result<Offset> {
        let partition = self.get_mut(id)?;
        partition.check_follower()?;
        partition.leader_high_watermark = high_watermark;
        let bound = high_watermark.min(partition.local_end);
        if partition.advance_high_watermark(bound) {
            partition.wake_data_waiters();
        }
        Ok(partition.high_watermark)
    }

    /// Takes the log start a follower's leader reported (Kafka: the follower's becomes the larger
    /// of its own and the leader's), within the follower's own high watermark, so a lagging
    /// follower never starts past what it holds; it catches up on later responses. Returns the
    /// follower's log start.
    pub fn follow_log_start(&mut self, id: LogId, leader_log_start: Offset, now_ms: i64) -> Result<Offset> {
        let partition = self.get(id)?;
        partition.check_follower()?;
        let target = leader_log_start.min(partition.high_watermark());
        Ok(self.engine.advance_log_start(id, target, now_ms)?)
    }

    /// Removes a follower's whole log and starts it again, empty, at `offset` (the leader's log
    /// start, when the follower is behind it): log start, local end and high watermark become
    /// `offset`; the producers' state and the leader epochs are forgotten with the batches that
    /// held them (the leader's batches from `offset` bring them back), and the producer-state
    /// snapshot goes. See [`engine::Shard::reset_to`] for crash safety.
    pub fn reset_to(&mut self, id: LogId, offset: Offset, now_ms: i64) -> Result<()> {
        self.get(id)?.check_follower()?;
        // Everything appended is committed and its outcome applied first, so no commit report
        // about offsets the reset removes can arrive after it.
        self.commit(now_ms);
        self.engine.reset_to(id, offset, now_ms)?;
        self.lower_checkpoint(id, offset)?;
        let partition = self.get_mut(id)?;
        partition.local_end = offset;
        let moved = partition.high_watermark != offset;
        partition.high_watermark = offset;
        let had_epochs = !partition.epochs.is_empty();
        partition.epochs.clear();
        partition.producers = ProducerState::default();
        partition.roll_snapshot = None;
        let epoch = partition.leader_epoch();
        partition.fail_acks_from(Offset::ZERO, &ReplicaError::NotLeader { epoch });
        if moved {
            partition.wake_data_waiters();
        }
        let had_snapshot = partition.snapshot_offset.take().is_some();
        let dir = partition.dir.clone();
        if had_snapshot {
            producer_snapshot::remove(self.engine.file_system(), &dir)?;
        }
        if had_epochs {
            self.persist_epochs(id)?;
        }
        Ok(())
    }

    /// Removes a follower's divergent tail, given where its leader says the follower's last
    /// epoch ends (`leader_epoch`, `leader_end_offset`: a fetch response's diverging epoch, or an
    /// OffsetForLeaderEpoch answer). Kafka's rule (`getOffsetTruncationState`): if this replica
    /// knows `leader_epoch`, it keeps the smaller of both ends of that epoch; if not, it cuts at
    /// the end of its largest older epoch (or the leader's end if it knows none), and the next
    /// fetch, naming the epoch it then ends in, finds out whether more must go. Returns the new
    /// end. Followers only.
    pub fn truncate_to_divergence(
        &mut self,
        id: LogId,
        leader_epoch: LeaderEpoch,
        leader_end_offset: Offset,
        now_ms: i64,
    ) -> Result<Offset> {
        let partition = self.get(id)?;
        partition.check_follower()?;
        let end = self.next_offset(id)?;
        let partition = self.get(id)?;
        let target = match partition.end_offset_for_epoch(leader_epoch) {
            Some((epoch, own_end)) if epoch == leader_epoch => own_end.min(leader_end_offset),
            Some((_, own_end)) => own_end,
            None => leader_end_offset,
        }
        .min(end);
        if target >= end {
            // Nothing to cut but an epoch this replica began and wrote nothing in (it led, or
            // was about to): its log ends in the epoch before, as Kafka's `truncateFromEnd` keeps
            // it; else it would name that empty epoch again and again.
            let partition = self.get_mut(id)?;
            let before = partition.epochs.len();
            epoch_history::trim_to(&mut partition.epochs, end);
            if partition.epochs.len() != before {
                self.persist_epochs(id)?;
            }
            return Ok(end);
        }
        tracing::info!(dir = %partition.dir.display(), leader_epoch = leader_epoch.0, %leader_end_offset, from = %end, to = %target, "truncating a divergent tail");
        self.truncate_to(id, target, now_ms)
    }
}

impl Partition {
    /// Refuses unless this replica follows (only a follower takes a leader's batches as they are).
    pub fn check_follower(&self) -> Result<()> {
        match self.role {
            Role::Follower { .. } => Ok(()),
            Role::Leader { epoch } => Err(ReplicaError::NotFollower { epoch }),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::future::Future;
    use std::path::Path;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use bytes::Bytes;
    use engine::io::sim::{SimFaults, SimFs};
    use engine::testkit::make_batch;
    use engine::{EngineError, LogConfig, Shard, ShardConfig};
    use futures_channel::mpsc;

    use super::*;
    use crate::{Acks, ReadBound};

    pub(crate) fn partitions(sim: &SimFs) -> (Partitions, mpsc::UnboundedReceiver<()>) {
        let engine = Shard::new(Box::new(sim.clone()), ShardConfig::default()).expect("shard");
        let (trigger, triggers) = mpsc::unbounded();
        (Partitions::new(engine, trigger), triggers)
    }

    pub(crate) fn open(partitions: &mut Partitions, dir: &str, role: Role, segment_bytes: u64) -> LogId {
        let config = LogConfig { segment_bytes, ..LogConfig::default() };
        partitions.open(Path::new(dir), config, role, 0).expect("open").0
    }

    pub(crate) fn leader_role(epoch: i32) -> Role {
        Role::Leader { epoch: LeaderEpoch(epoch) }
    }

    pub(crate) fn follower_role(epoch: i32) -> Role {
        Role::Follower { epoch: LeaderEpoch(epoch) }
    }

    pub(crate) fn batch(records: usize) -> ValidatedBatches {
        let values: Vec<Vec<u8>> = (0..records).map(|index| format!("value-{index}").into_bytes()).collect();
        let records: Vec<(&[u8], &[u8])> = values.iter().map(|value| (&b"k"[..], value.as_slice())).collect();
        ValidatedBatches::validate(Bytes::from(make_batch(&records, 1_000))).expect("valid")
    }

    /// A batch of an idempotent producer (header fields outside the records, CRC resealed).
    pub(crate) fn idempotent_batch(
        records: usize,
        producer_id: i64,
        epoch: i16,
        base_sequence: i32,
    ) -> ValidatedBatches {
        let mut bytes = batch(records).bytes().to_vec();
        bytes[43..51].copy_from_slice(&producer_id.to_be_bytes());
        bytes[51..53].copy_from_slice(&epoch.to_be_bytes());
        bytes[53..57].copy_from_slice(&base_sequence.to_be_bytes());
        engine::batch::reseal_crc(&mut bytes);
        ValidatedBatches::validate(Bytes::from(bytes)).expect("valid")
    }

    /// What a follower's fetch from `from` gets: the leader's committed batches, read on across
    /// segment ends.
    pub(crate) fn fetch(leader: &Partitions, id: LogId, from: Offset) -> Option<ValidatedBatches> {
        let mut bytes = Vec::new();
        let mut at = from;
        while let Some(plan) = leader.read(id, at, 1 << 20, ReadBound::LogEnd).expect("read") {
            let chunk = plan.into_bytes().expect("bytes");
            let headers = engine::batch::validate_all(&chunk).expect("valid");
            at = Offset(headers.last().expect("a batch").last_offset() + 1);
            bytes.extend_from_slice(&chunk);
        }
        (!bytes.is_empty()).then(|| ValidatedBatches::validate(Bytes::from(bytes)).expect("valid"))
    }

    /// Copies everything the leader committed past the follower's end, and commits it.
    fn catch_up(leader: &Partitions, leader_id: LogId, follower: &mut Partitions, follower_id: LogId) {
        let from = follower.next_offset(follower_id).expect("next");
        if let Some(batches) = fetch(leader, leader_id, from) {
            follower.append_replicated(follower_id, &batches, 0).expect("append_replicated");
        }
        follower.commit(0);
    }

    fn stored(partitions: &Partitions, id: LogId) -> Vec<u8> {
        fetch(partitions, id, partitions.log_start_offset(id).expect("start"))
            .map_or(Vec::new(), |b| b.bytes().to_vec())
    }

    pub(crate) fn poll_once<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
        let waker = std::task::Waker::noop().clone();
        match Pin::new(future).poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(output) => Some(output),
            Poll::Pending => None,
        }
    }

    #[test]
    fn a_follower_appends_the_leaders_batches_as_they_are_and_a_leader_refuses_to() {
        let (leader_sim, follower_sim) = (SimFs::new(1, SimFaults::default()), SimFs::new(2, SimFaults::default()));
        let ((mut leader, _), (mut follower, mut triggers)) = (partitions(&leader_sim), partitions(&follower_sim));
        let leader_id = open(&mut leader, "/l/t-0", leader_role(3), 1 << 20);
        let follower_id = open(&mut follower, "/f/t-0", follower_role(3), 1 << 20);
        leader.append(leader_id, &batch(2), Acks::None, 0).expect("append");
        leader.append(leader_id, &batch(3), Acks::None, 0).expect("append");
        leader.commit(0);
        let fetched = fetch(&leader, leader_id, Offset(0)).expect("batches");

        let refused = leader.append_replicated(leader_id, &fetched, 0).expect_err("a leader assigns its own offsets");
        assert!(matches!(refused, ReplicaError::NotFollower { epoch: LeaderEpoch(3) }));
        let info = follower.append_replicated(follower_id, &fetched, 0).expect("append_replicated");
        assert_eq!((info.base_offset, info.last_offset), (Offset(0), Offset(4)));
        assert!(triggers.try_recv().is_ok(), "the committer is woken");
        assert_eq!(follower.get(follower_id).expect("partition").log_end_offset(), Offset(0), "not committed yet");
        // Offsets that do not continue the log: refused whole, nothing appended.
        let again = follower.append_replicated(follower_id, &fetched, 0).expect_err("not contiguous");
        assert!(matches!(
            again,
            ReplicaError::Storage(ref error) if matches!(**error, EngineError::NotContiguous { expected: Offset(5), found: Offset(0) })
        ));
        follower.commit(0);
        assert_eq!(follower.get(follower_id).expect("partition").log_end_offset(), Offset(5));
        assert_eq!(stored(&follower, follower_id), stored(&leader, leader_id));
    }

    #[test]
    fn a_follower_learns_leader_epochs_from_the_batches() {
        let (leader_sim, follower_sim) = (SimFs::new(3, SimFaults::default()), SimFs::new(4, SimFaults::default()));
        let ((mut leader, _), (mut follower, _)) = (partitions(&leader_sim), partitions(&follower_sim));
        let leader_id = open(&mut leader, "/l/t-0", leader_role(0), 1 << 20);
        let follower_id = open(&mut follower, "/f/t-0", follower_role(0), 1 << 20);
        leader.append(leader_id, &batch(2), Acks::None, 0).expect("append"); // 0..=1 in epoch 0
        leader.become_leader(leader_id, LeaderEpoch(2)).expect("epoch 2");
        leader.append(leader_id, &batch(3), Acks::None, 0).expect("append"); // 2..=4 in epoch 2
        leader.become_leader(leader_id, LeaderEpoch(5)).expect("epoch 5");
        leader.append(leader_id, &batch(1), Acks::None, 0).expect("append"); // 5 in epoch 5
        leader.commit(0);
        catch_up(&leader, leader_id, &mut follower, follower_id);
        let partition = follower.get(follower_id).expect("partition");
        let epochs: Vec<(i32, u64)> =
            partition.epochs.iter().map(|start| (start.epoch.0, start.start_offset.0)).collect();
        assert_eq!(epochs, [(0, 0), (2, 2), (5, 5)]);
        // What the follower answers for OffsetForLeaderEpoch is what the leader answers.
        for epoch in 0..7 {
            let leader_answer = leader.get(leader_id).expect("partition").end_offset_for_epoch(LeaderEpoch(epoch));
            assert_eq!(partition.end_offset_for_epoch(LeaderEpoch(epoch)), leader_answer, "epoch {epoch}");
        }
    }

    #[test]
    fn a_follower_high_watermark_is_the_leaders_up_to_its_committed_end() {
        let sim = SimFs::new(5, SimFaults::default());
        let (mut follower, _) = partitions(&sim);
        let (mut leader, _) = partitions(&SimFs::new(6, SimFaults::default()));
        let leader_id = open(&mut leader, "/l/t-0", leader_role(1), 1 << 20);
        let id = open(&mut follower, "/f/t-0", follower_role(1), 1 << 20);
        for _ in 0..3 {
            leader.append(leader_id, &batch(2), Acks::None, 0).expect("append");
            // 0..6
        }
        leader.commit(0);
        let fetched = fetch(&leader, leader_id, Offset(0)).expect("batches");
        follower.append_replicated(id, &fetched, 0).expect("append_replicated");
        let mut waiting = follower.wait_for_data(&[id], ReadBound::HighWatermark);
        // Nothing committed locally yet: the leader's high watermark cannot lift ours.
        assert_eq!(follower.set_follower_high_watermark(id, Offset(4)).expect("hw"), Offset(0));
        assert!(poll_once(&mut waiting).is_none());
        // The commit lands: ours follows the leader's, not the local end.
        follower.commit(0);
        assert_eq!(follower.get(id).expect("partition").high_watermark(), Offset(4));
        assert!(matches!(poll_once(&mut waiting), Some(Ok(()))), "waiting fetches are woken");
        assert_eq!(follower.set_follower_high_watermark(id, Offset(9)).expect("hw"), Offset(6), "up to the local end");
        assert_eq!(follower.set_follower_high_watermark(id, Offset(2)).expect("hw"), Offset(6), "never backwards");
        // Truncation lowers it.
        follower.truncate_to(id, Offset(2), 0).expect("truncate");
        assert_eq!(follower.get(id).expect("partition").high_watermark(), Offset(2));
        let refused = leader.set_follower_high_watermark(leader_id, Offset(1)).expect_err("a leader has its own");
        assert!(matches!(refused, ReplicaError::NotFollower { .. }));
    }

    #[test]
    fn a_promoted_follower_answers_a_retried_idempotent_batch_with_the_original_offsets() {
        let (leader_sim, follower_sim) = (SimFs::new(7, SimFaults::default()), SimFs::new(8, SimFaults::default()));
        let ((mut leader, _), (mut follower, _)) = (partitions(&leader_sim), partitions(&follower_sim));
        // Small segments: the follower rolls while replicating, and its roll snapshots carry the
        // producers' state across a restart.
        let leader_id = open(&mut leader, "/l/t-0", leader_role(1), 300);
        let follower_id = open(&mut follower, "/f/t-0", follower_role(1), 300);
        let first = leader.append(leader_id, &idempotent_batch(3, 7, 0, 0), Acks::None, 0).expect("append");
        assert_eq!((first.base_offset, first.last_offset), (Offset(0), Offset(2)));
        for _ in 0..10 {
            leader.append(leader_id, &batch(3), Acks::None, 0).expect("append");
        }
        let last = leader.append(leader_id, &idempotent_batch(2, 7, 0, 3), Acks::None, 0).expect("append");
        leader.commit(0);
        catch_up(&leader, leader_id, &mut follower, follower_id);
        assert!(follower.engine.log(follower_id).expect("log").segment_count() > 1, "the follower rolled");
        // The follower crashes and restarts (producer state from the snapshot of its last roll
        // and the batches after it), then the leader fails and the follower takes over in
        // epoch 2.
        drop(follower);
        follower_sim.crash();
        let (mut follower, _) = partitions(&follower_sim);
        let follower_id = open(&mut follower, "/f/t-0", follower_role(1), 300);
        follower.become_leader(follower_id, LeaderEpoch(2)).expect("promoted");
        let end = follower.next_offset(follower_id).expect("next");
        // The producer never got its answers and retries both batches.
        let retry = follower.append(follower_id, &idempotent_batch(3, 7, 0, 0), Acks::None, 0).expect("retry");
        assert_eq!((retry.base_offset, retry.last_offset), (first.base_offset, first.last_offset));
        let retry = follower.append(follower_id, &idempotent_batch(2, 7, 0, 3), Acks::None, 0).expect("retry");
        assert_eq!((retry.base_offset, retry.last_offset), (last.base_offset, last.last_offset));
        assert_eq!(follower.next_offset(follower_id).expect("next"), end, "nothing appended");
        // Its next batch goes on; a gap is refused.
        let next = follower.append(follower_id, &idempotent_batch(1, 7, 0, 5), Acks::None, 0).expect("next");
        assert_eq!(next.base_offset, end);
        let gap = follower.append(follower_id, &idempotent_batch(1, 7, 0, 9), Acks::None, 0).expect_err("gap");
        assert!(matches!(gap, ReplicaError::Producer(crate::ProducerError::OutOfOrderSequence)));
    }

    #[test]
    fn delete_records_moves_the_leaders_log_start_and_followers_take_it_within_their_high_watermark() {
        let (leader_sim, follower_sim) = (SimFs::new(1, SimFaults::default()), SimFs::new(2, SimFaults::default()));
        let ((mut leader, _), (mut follower, _)) = (partitions(&leader_sim), partitions(&follower_sim));
        let leader_id = open(&mut leader, "/l/t-0", leader_role(3), 1 << 20);
        let follower_id = open(&mut follower, "/f/t-0", follower_role(3), 1 << 20);
        for _ in 0..3 {
            leader.append(leader_id, &batch(2), Acks::None, 0).expect("append");
        }
        leader.commit(0);
        assert_eq!(leader.get(leader_id).expect("partition").high_watermark(), Offset(6));
        catch_up(&leader, leader_id, &mut follower, follower_id);

        let refused = follower.delete_records(follower_id, Some(Offset(1)), 0).expect_err("only a leader deletes");
        assert!(matches!(refused, ReplicaError::NotLeader { .. }), "{refused:?}");
        let refused = leader.delete_records(leader_id, Some(Offset(7)), 0).expect_err("past the high watermark");
        assert!(matches!(refused, ReplicaError::BeyondHighWatermark { .. }), "{refused:?}");
        // Into the middle of the second batch; never back.
        assert_eq!(leader.delete_records(leader_id, Some(Offset(3)), 0).expect("delete"), Offset(3));
        assert_eq!(leader.delete_records(leader_id, Some(Offset(1)), 0).expect("lower"), Offset(3));
        assert!(leader.read(leader_id, Offset(2), 1 << 20, ReadBound::HighWatermark).is_err());
        let plan = leader.read(leader_id, Offset(3), 1 << 20, ReadBound::HighWatermark).expect("read").expect("data");
        assert_eq!(engine::batch::validate_all(&plan.into_bytes().expect("bytes")).expect("valid")[0].base_offset, 2);

        // The follower takes the leader's log start only as far as its own high watermark.
        assert_eq!(follower.follow_log_start(follower_id, Offset(3), 0).expect("follow"), Offset(0));
        follower.set_follower_high_watermark(follower_id, Offset(6)).expect("high watermark");
        assert_eq!(follower.follow_log_start(follower_id, Offset(3), 0).expect("follow"), Offset(3));
        assert_eq!(follower.log_start_offset(follower_id).expect("start"), Offset(3));
        assert!(leader.follow_log_start(leader_id, Offset(4), 0).is_err(), "a leader follows no one");

        // No offset: the high watermark.
        assert_eq!(leader.delete_records(leader_id, None, 0).expect("to the high watermark"), Offset(6));
        assert_eq!(
            leader.read(leader_id, Offset(6), 1 << 20, ReadBound::HighWatermark).expect("read").map(|_| ()),
            None
        );
    }

    #[test]
    fn reset_to_starts_a_follower_again_at_the_leaders_log_start() {
        let sim = SimFs::new(9, SimFaults::default());
        let (mut leader, _) = partitions(&SimFs::new(10, SimFaults::default()));
        let (mut follower, _) = partitions(&sim);
        let leader_id = open(&mut leader, "/l/t-0", leader_role(1), 1 << 20);
        let id = open(&mut follower, "/f/t-0", follower_role(1), 300);
        leader.append(leader_id, &idempotent_batch(3, 7, 0, 0), Acks::None, 0).expect("append");
        for _ in 0..10 {
            leader.append(leader_id, &batch(3), Acks::None, 0).expect("append");
        }
        leader.commit(0);
        catch_up(&leader, leader_id, &mut follower, id);
        follower.set_follower_high_watermark(id, Offset(33)).expect("hw");
        assert!(sim.contents(&Path::new("/f/t-0").join(producer_snapshot::FILE_NAME)).is_some());
        assert!(matches!(leader.reset_to(leader_id, Offset(40), 0), Err(ReplicaError::NotFollower { .. })));

        follower.reset_to(id, Offset(40), 0).expect("reset");
        let partition = follower.get(id).expect("partition");
        assert_eq!((partition.log_end_offset(), partition.high_watermark()), (Offset(40), Offset(40)));
        assert_eq!(follower.log_start_offset(id).expect("start"), Offset(40));
        assert!(partition.producers.is_empty() && partition.epochs.is_empty());
        assert!(sim.contents(&Path::new("/f/t-0").join(producer_snapshot::FILE_NAME)).is_none());
        // The leader's batches from its log start continue the follower's log.
        let mut shifted = Partitions::new(
            Shard::new(Box::new(SimFs::new(11, SimFaults::default())), ShardConfig::default()).expect("shard"),
            mpsc::unbounded().0,
        );
        let shifted_id = open(&mut shifted, "/l/t-1", follower_role(2), 1 << 20);
        shifted.reset_to(shifted_id, Offset(40), 0).expect("reset");
        shifted.become_leader(shifted_id, LeaderEpoch(2)).expect("leader");
        shifted.append(shifted_id, &idempotent_batch(2, 8, 0, 0), Acks::None, 0).expect("append");
        shifted.commit(0);
        catch_up(&shifted, shifted_id, &mut follower, id);
        let partition = follower.get(id).expect("partition");
        assert_eq!(partition.log_end_offset(), Offset(42));
        let epochs: Vec<(i32, u64)> =
            partition.epochs.iter().map(|start| (start.epoch.0, start.start_offset.0)).collect();
        assert_eq!(epochs, [(2, 40)]);
        // The reset survives a crash.
        drop(follower);
        sim.crash();
        let (mut reopened, _) = partitions(&sim);
        let id = open(&mut reopened, "/f/t-0", follower_role(2), 300);
        assert_eq!(reopened.log_start_offset(id).expect("start"), Offset(40));
        assert_eq!(reopened.get(id).expect("partition").log_end_offset(), Offset(42));
    }

    /// One round of a follower's fetch as the broker runs it: the follower names its end and the
    /// epoch it ends in; a leader whose log diverges there answers with the diverging epoch and
    /// the follower truncates, else the follower copies what the leader has. Returns whether it
    /// truncated.
    fn fetch_round(leader: &Partitions, leader_id: LogId, follower: &mut Partitions, follower_id: LogId) -> bool {
        follower.commit(0);
        let (fetch_offset, last_epoch) = {
            let partition = follower.get(follower_id).expect("partition");
            (partition.log_end_offset(), partition.last_epoch())
        };
        let diverging = last_epoch.and_then(|epoch| {
            leader.get(leader_id).expect("partition").diverging_epoch(fetch_offset, epoch).expect("placed")
        });
        if let Some(diverging) = diverging {
            follower.truncate_to_divergence(follower_id, diverging.epoch, diverging.start_offset, 0).expect("truncate");
            return true;
        }
        catch_up(leader, leader_id, follower, follower_id);
        false
    }

    fn history(partitions: &Partitions, id: LogId) -> Vec<(i32, u64)> {
        let partition = partitions.get(id).expect("partition");
        partition.epoch_history().iter().map(|start| (start.epoch.0, start.start_offset.0)).collect()
    }

    /// Kafka's divergence cases (KIP-101/279): A led epoch 3 and wrote records nobody copied; B
    /// led epoch 2 (unknown to A) and now leads epoch 4. A, a follower again, is cut in two
    /// rounds (first to the end of its epoch 1, the largest it shares below B's answer, then
    /// nothing more) and ends byte for byte like B, with B's epochs, also after a crash.
    #[test]
    fn a_former_leaders_divergent_tail_is_cut_and_replaced_by_the_new_leaders() {
        let (a_sim, b_sim) = (SimFs::new(21, SimFaults::default()), SimFs::new(22, SimFaults::default()));
        let ((mut a, _), (mut b, _)) = (partitions(&a_sim), partitions(&b_sim));
        let a_id = open(&mut a, "/a/t-0", leader_role(1), 400);
        let b_id = open(&mut b, "/b/t-0", follower_role(1), 400);
        for _ in 0..5 {
            a.append(a_id, &batch(1), Acks::None, 0).expect("append"); // 0..5 in epoch 1
        }
        a.commit(0);
        assert!(!fetch_round(&a, a_id, &mut b, b_id));
        // B leads epoch 2 and writes 5..8; A, cut off, leads epoch 3 and writes 5..10.
        b.become_leader(b_id, LeaderEpoch(2)).expect("b leads");
        for _ in 0..3 {
            b.append(b_id, &batch(1), Acks::None, 0).expect("append");
        }
        a.become_leader(a_id, LeaderEpoch(3)).expect("a leads");
        for _ in 0..5 {
            a.append(a_id, &batch(2), Acks::None, 0).expect("append");
        }
        a.commit(0);
        b.become_leader(b_id, LeaderEpoch(4)).expect("b leads again");
        for _ in 0..4 {
            b.append(b_id, &batch(1), Acks::None, 0).expect("append"); // 8..12 in epoch 4
        }
        b.commit(0);
        assert_eq!(history(&a, a_id), [(1, 0), (3, 5)]);
        assert_eq!(history(&b, b_id), [(1, 0), (2, 5), (4, 8)]);
        a.become_follower(a_id, LeaderEpoch(4)).expect("a follows");
        // B places A's epoch 3 in its epoch 2, which ends at 8 < A's 15: diverging. A knows no
        // epoch 2: it cuts at the end of its epoch 1 (5).
        assert!(fetch_round(&b, b_id, &mut a, a_id));
        assert_eq!((a.get(a_id).expect("a").log_end_offset(), history(&a, a_id)), (Offset(5), vec![(1, 0)]));
        // Epoch 1 ends at 5 on both: A copies the rest.
        assert!(!fetch_round(&b, b_id, &mut a, a_id));
        assert!(!fetch_round(&b, b_id, &mut a, a_id));
        assert_eq!(stored(&a, a_id), stored(&b, b_id), "byte for byte");
        assert_eq!(history(&a, a_id), history(&b, b_id));
        // What survives a crash: the log and its epochs (from the history file).
        drop(a);
        a_sim.crash();
        let (mut a, _) = partitions(&a_sim);
        let a_id = open(&mut a, "/a/t-0", follower_role(4), 400);
        assert_eq!(history(&a, a_id), [(1, 0), (2, 5), (4, 8)]);
        assert_eq!(stored(&a, a_id), stored(&b, b_id));
        // The leader sees no divergence any more, and A's offset counts for the high watermark.
        let partition = b.get(b_id).expect("b");
        assert_eq!(partition.diverging_epoch(Offset(12), LeaderEpoch(4)).expect("placed"), None);
        assert_eq!(
            partition.diverging_epoch(Offset(13), LeaderEpoch(4)).expect("placed"),
            Some(crate::EpochStart { epoch: LeaderEpoch(4), start_offset: Offset(12) }),
            "past the leader's end in its own epoch"
        );
        assert!(matches!(
            partition.diverging_epoch(Offset(12), LeaderEpoch(9)),
            Err(ReplicaError::UnknownFetchedEpoch { .. })
        ));
    }

    /// The history is on disk before the batches of a new epoch, trimmed to what a crash left of
    /// the log, cut with a truncation, and rebuilt from the batch headers when its file is gone
    /// or damaged.
    #[test]
    fn the_epoch_history_is_kept_beside_the_log() {
        let sim = SimFs::new(23, SimFaults::default());
        let file = Path::new("/l/t-0").join(crate::epoch_history::FILE_NAME);
        let (mut leader, _) = partitions(&sim);
        let id = open(&mut leader, "/l/t-0", leader_role(1), 400);
        assert_eq!(sim.contents(&file).expect("written at once"), b"skua-leader-epochs 1\n1\n1 0\n");
        leader.append(id, &batch(3), Acks::None, 0).expect("append");
        leader.commit(0);
        leader.become_leader(id, LeaderEpoch(3)).expect("epoch 3");
        leader.append(id, &batch(2), Acks::None, 0).expect("append"); // 3..5, never committed
        assert_eq!(history(&leader, id), [(1, 0), (3, 3)]);
        drop(leader);
        sim.crash();
        // The crash took 3..5: epoch 3 began at the end and is dropped; a leader in epoch 3
        // starts it again.
        let (mut reopened, _) = partitions(&sim);
        let id = open(&mut reopened, "/l/t-0", follower_role(3), 400);
        assert_eq!((reopened.get(id).expect("p").log_end_offset(), history(&reopened, id)), (Offset(3), vec![(1, 0)]));
        reopened.become_leader(id, LeaderEpoch(4)).expect("epoch 4");
        reopened.append(id, &batch(2), Acks::None, 0).expect("append"); // 3..5 in epoch 4
        reopened.commit(0);
        assert_eq!(history(&reopened, id), [(1, 0), (4, 3)]);
        // Without its file (or with a damaged one) the history is rebuilt from the batches.
        for damage in [None, Some(&b"skua-leader-epochs 1\n7\n"[..])] {
            drop(reopened);
            {
                let (mut scratch, _) = partitions(&sim);
                let fs = scratch.engine.file_system();
                match damage {
                    None => fs.remove_file(&file).expect("remove"),
                    Some(bytes) => engine::io::write_file_atomically(
                        fs,
                        Path::new("/l/t-0"),
                        crate::epoch_history::FILE_NAME,
                        bytes,
                    )
                    .expect("write"),
                }
            }
            let (mut again, _) = partitions(&sim);
            let again_id = open(&mut again, "/l/t-0", follower_role(4), 400);
            assert_eq!(history(&again, again_id), [(1, 0), (4, 3)], "rebuilt after {damage:?}");
            assert!(sim.contents(&file).is_some_and(|bytes| bytes.ends_with(b"4 3\n")), "and written");
            reopened = again;
        }
        // A truncation cuts it on disk too.
        let id = reopened.ids().next().expect("one log");
        assert_eq!(reopened.truncate_to(id, Offset(3), 0).expect("truncate"), Offset(3));
        assert_eq!(sim.contents(&file).expect("file"), b"skua-leader-epochs 1\n1\n1 0\n");
        // To the log start (0..3 is one batch): no epoch is left.
        assert_eq!(reopened.truncate_to(id, Offset(2), 0).expect("truncate"), Offset(0));
        assert_eq!(sim.contents(&file).expect("file"), b"skua-leader-epochs 1\n0\n");
    }
}
