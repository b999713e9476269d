//! The leader's side of replication: which replicas a partition has and which are in sync (the
//! controller decides; [`Partitions::set_replication`]), how far each follower has fetched
//! ([`Partitions::follower_fetched`]), and from that the high watermark: the smallest end of the
//! in-sync replicas. Also what `min.insync.replicas` refuses.
//!
//! Kafka's rules (its replication design, KIP-101/279 for epochs): a follower's end is the offset
//! it fetches from (it has everything below); the high watermark is the smallest end of the ISR
//! and never moves back; a follower is caught up when it fetches from the leader's end, or from
//! at least the leader's end at its previous fetch (`last_caught_up_ms`, which
//! `replica.lag.time.max.ms` measures). A new leader epoch forgets what followers had fetched:
//! they prove it again with their next fetch.
//!
//! Must not know: brokers' addresses, the wire protocol, the controller. A follower's own high
//! watermark (from the leader's fetch responses) is the follower side's business.

use std::collections::{BTreeMap, BTreeSet};

use engine::{LeaderEpoch, LogId, Offset};

use crate::error::{ReplicaError, Result};
use crate::partition::{EpochStart, Partition, Role};
use crate::partitions::Partitions;

/// A replica of a partition, named by the id of the broker that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplicaId(pub i32);

/// What the leader knows of one follower, from its fetches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerState {
    /// The offset it last fetched from (it holds everything below); `None` until its first fetch
    /// in this leader epoch.
    pub log_end: Option<Offset>,
    pub last_fetch_ms: i64,
    /// The last time it had everything the leader had (see the module header).
    pub last_caught_up_ms: i64,
    /// The leader's end when this follower last fetched.
    leader_end_at_last_fetch: Offset,
    /// The log start its last fetch reported (Fetch `log_start_offset`); `None` until one did.
    pub log_start: Option<Offset>,
}

/// A partition's replicas and in-sync replicas as the controller last decided them, and the
/// followers' progress while this replica leads.
#[derive(Clone, Debug)]
pub struct Replication {
    /// This replica.
    pub me: ReplicaId,
    pub replicas: Vec<ReplicaId>,
    /// The in-sync replicas, this one included when it leads.
    pub isr: BTreeSet<ReplicaId>,
    /// `min.insync.replicas`: fewer in the ISR and `acks=all` writes are refused.
    pub min_insync: usize,
    /// The other replicas' progress (leading only; reset when the leader epoch changes).
    pub followers: BTreeMap<ReplicaId, FollowerState>,
    /// Replicas this leader asked the controller to add to the ISR and that the image does not
    /// list yet: the high watermark waits for them too (Kafka's "maximal ISR", KIP-497), or a
    /// write acknowledged without one could be lost when the controller, which may have added it
    /// already, elects it. Dropped when the controller refuses, or once the image lists them.
    pub pending_joins: BTreeSet<ReplicaId>,
    /// The leader epoch the followers' progress belongs to.
    epoch: LeaderEpoch,
}

impl Replication {
    pub(crate) fn isr_too_small(&self) -> bool {
        self.isr.len() < self.min_insync
    }

    /// The smallest end of the ISR, this replica's being `local_end`.
    fn isr_end(&self, local_end: Offset) -> Offset {
        self.isr
            .iter()
            .chain(&self.pending_joins)
            .filter(|replica| **replica != self.me)
            .map(|replica| self.followers.get(replica).and_then(|state| state.log_end).unwrap_or(Offset::ZERO))
            .fold(local_end, Offset::min)
    }
}

impl Partition {
    /// Where the high watermark may advance to now: leading, the ISR's smallest end (on one
    /// node, or in a cluster without follower fetching, the local end); following, the leader's
    /// as its fetch responses said, within what this replica has committed (`follow.rs`).
    pub(crate) fn high_watermark_target(&self) -> Offset {
        match (&self.replication, self.role) {
            (_, Role::Follower { .. }) => self.leader_high_watermark.min(self.local_end),
            (None, Role::Leader { .. }) => self.local_end,
            (Some(replication), Role::Leader { .. }) => replication.isr_end(self.local_end),
        }
    }

    /// Moves the high watermark where the ISR allows, answers what that covers and wakes the
    /// consumers' fetches if it moved.
    pub(crate) fn settle_high_watermark(&mut self) {
        let target = self.high_watermark_target();
        let moved = self.advance_high_watermark(target);
        self.resolve_acks();
        if moved {
            self.wake_data_waiters();
        }
    }

    /// `acks=all` needs at least `min.insync.replicas` in the ISR before anything is appended.
    pub(crate) fn check_enough_replicas(&self) -> Result<()> {
        match &self.replication {
            Some(replication) if replication.isr_too_small() => {
                Err(ReplicaError::NotEnoughReplicas { isr: replication.isr.len(), min_insync: replication.min_insync })
            }
            _ => Ok(()),
        }
    }

    /// Where a follower's fetch from `fetch_offset`, whose log ends in `last_fetched_epoch`,
    /// leaves the leader's log (Kafka's `validateLastFetchedEpoch`, KIP-595's fetch-time
    /// truncation): `None` when the follower's log is a prefix of this one there; else the
    /// diverging epoch to answer with (the largest epoch at or below the follower's and where it
    /// ends here) and no records, and the follower truncates. An epoch this log cannot place is
    /// refused ([`ReplicaError::UnknownFetchedEpoch`]).
    pub fn diverging_epoch(&self, fetch_offset: Offset, last_fetched_epoch: LeaderEpoch) -> Result<Option<EpochStart>> {
        let Some((epoch, end_offset)) = self.end_offset_for_epoch(last_fetched_epoch) else {
            return Err(ReplicaError::UnknownFetchedEpoch { epoch: last_fetched_epoch });
        };
        // An epoch that began past what this leader has committed (it was appended, not yet
        // committed, when it took the role) ends here at the committed end: a follower ahead of
        // it is cut back to what the leader can serve, not left out of range.
        let end_offset = end_offset.min(self.local_end);
        if epoch < last_fetched_epoch || end_offset < fetch_offset {
            return Ok(Some(EpochStart { epoch, start_offset: end_offset }));
        }
        Ok(None)
    }

    pub fn replication(&self) -> Option<&Replication> {
        self.replication.as_ref()
    }

    /// Refuses a fetch from `follower` unless it is another replica of this partition as the
    /// metadata has them (see [`ReplicaError::UnknownFollower`]). `epoch_named`: the fetch named
    /// a current leader epoch (checked before this).
    pub fn check_follower_fetch(&self, follower: ReplicaId, epoch_named: bool) -> Result<()> {
        let known = self.replication.as_ref().is_some_and(|replication| replication.followers.contains_key(&follower));
        if known {
            Ok(())
        } else {
            Err(ReplicaError::UnknownFollower { follower, epoch_named })
        }
    }
}

impl Partitions {
    /// Sets a partition's replicas, ISR and `min.insync.replicas` as the metadata has them (call
    /// after the role change of the same image). Followers' progress is kept for replicas that
    /// stay while the leader epoch does; the high watermark then moves if the ISR allows (a
    /// shrunk ISR may let it advance; acknowledgements waiting for `acks=all` fail with
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND once covered if the ISR is below the minimum).
    pub fn set_replication(
        &mut self,
        id: LogId,
        me: ReplicaId,
        replicas: &[ReplicaId],
        isr: &[ReplicaId],
        min_insync: usize,
        now_ms: i64,
    ) -> Result<()> {
        let partition = self.get_mut(id)?;
        let epoch = partition.leader_epoch();
        let mut followers = BTreeMap::new();
        let previous = partition.replication.take().filter(|previous| previous.epoch == epoch);
        for replica in replicas.iter().filter(|replica| **replica != me) {
            let kept = previous.as_ref().and_then(|previous| previous.followers.get(replica).copied());
            let fresh = FollowerState {
                log_end: None,
                last_fetch_ms: 0,
                // An ISR member gets the lag time from now to prove it keeps up.
                last_caught_up_ms: if isr.contains(replica) { now_ms } else { 0 },
                leader_end_at_last_fetch: Offset::ZERO,
                log_start: None,
            };
            followers.insert(*replica, kept.unwrap_or(fresh));
        }
        let isr: BTreeSet<ReplicaId> = isr.iter().copied().collect();
        // Joins still in flight stay counted until the image lists them (or they are refused).
        let pending_joins = previous
            .as_ref()
            .map(|previous| {
                previous
                    .pending_joins
                    .iter()
                    .filter(|replica| !isr.contains(replica) && replicas.contains(replica))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        partition.replication =
            Some(Replication { me, replicas: replicas.to_vec(), isr, min_insync, followers, pending_joins, epoch });
        partition.settle_high_watermark();
        Ok(())
    }

    /// Records that `follower` fetched from `fetch_offset`, its log ending in
    /// `last_fetched_epoch` (leading only). Returns false when `follower` is no replica of the
    /// partition (Kafka answers it with no records). An offset past the leader's end, or a log
    /// that diverges from the leader's (see [`Partition::diverging_epoch`]), records nothing: the
    /// follower does not hold what this log holds below that offset.
    /// Kafka's DeleteRecords on the leader: the log start moves up to `offset` (the high
    /// watermark when `None`), never past the high watermark, and never back; returns the log
    /// start. The leader does not wait for its followers: they take its log start from their
    /// fetch responses ([`Partitions::follow_log_start`]).
    pub fn delete_records(&mut self, id: LogId, offset: Option<Offset>, now_ms: i64) -> Result<Offset> {
        let partition = self.get(id)?;
        partition.check_leader()?;
        let high_watermark = partition.high_watermark();
        let requested = offset.unwrap_or(high_watermark);
        if requested > high_watermark {
            return Err(ReplicaError::BeyondHighWatermark { requested, high_watermark });
        }
        Ok(self.engine.advance_log_start(id, requested, now_ms)?)
    }

    pub fn follower_fetched(
        &mut self,
        id: LogId,
        follower: ReplicaId,
        fetch_offset: Offset,
        last_fetched_epoch: Option<LeaderEpoch>,
        now_ms: i64,
    ) -> Result<bool> {
        let partition = self.get_mut(id)?;
        partition.check_leader()?;
        if let Some(last_fetched_epoch) = last_fetched_epoch {
            if !matches!(partition.diverging_epoch(fetch_offset, last_fetched_epoch), Ok(None)) {
                return Ok(true);
            }
        }
        let local_end = partition.local_end;
        let Some(replication) = partition.replication.as_mut() else { return Ok(false) };
        let Some(state) = replication.followers.get_mut(&follower) else { return Ok(false) };
        if fetch_offset > local_end {
            return Ok(true);
        }
        if fetch_offset >= local_end {
            state.last_caught_up_ms = now_ms;
        } else if fetch_offset >= state.leader_end_at_last_fetch {
            state.last_caught_up_ms = state.last_caught_up_ms.max(state.last_fetch_ms);
        }
        state.log_end = Some(fetch_offset);
        state.last_fetch_ms = now_ms;
        state.leader_end_at_last_fetch = local_end;
        partition.settle_high_watermark();
        Ok(true)
    }

    /// Notes the log start a follower's fetch reported (what DeleteRecords waits for).
    pub fn follower_log_start(&mut self, id: LogId, follower: ReplicaId, log_start: Offset) -> Result<()> {
        let partition = self.get_mut(id)?;
        partition.check_leader()?;
        if let Some(state) =
            partition.replication.as_mut().and_then(|replication| replication.followers.get_mut(&follower))
        {
            state.log_start = Some(log_start);
        }
        Ok(())
    }

    /// Kafka's low watermark of a leader: the smallest log start of this replica and its in-sync
    /// followers (a follower yet to report one counts as 0). Kafka counts every replica on a live
    /// broker; the partition layer knows no liveness, and a follower out of the ISR may lag far.
    pub fn low_watermark(&self, id: LogId) -> Result<Offset> {
        let partition = self.get(id)?;
        partition.check_leader()?;
        let own = self.engine.log(id)?.log_start_offset();
        let Some(replication) = partition.replication.as_ref() else { return Ok(own) };
        Ok(replication
            .isr
            .iter()
            .filter(|replica| **replica != replication.me)
            .map(|replica| replication.followers.get(replica).and_then(|state| state.log_start).unwrap_or(Offset::ZERO))
            .fold(own, Offset::min))
    }

    /// Counts `joining` in the ISR for the high watermark from now on, before the controller is
    /// asked to add them (see [`Replication::pending_joins`]). Leading only.
    pub fn propose_isr_joins(&mut self, id: LogId, joining: &[ReplicaId]) -> Result<()> {
        let partition = self.get_mut(id)?;
        partition.check_leader()?;
        if let Some(replication) = partition.replication.as_mut() {
            replication.pending_joins.extend(joining.iter().filter(|replica| !replication.isr.contains(replica)));
        }
        Ok(())
    }

    /// The controller refused to add `refused`: they no longer hold the high watermark back.
    pub fn drop_isr_joins(&mut self, id: LogId, refused: &[ReplicaId]) -> Result<()> {
        let partition = self.get_mut(id)?;
        if let Some(replication) = partition.replication.as_mut() {
            for replica in refused {
                replication.pending_joins.remove(replica);
            }
        }
        partition.settle_high_watermark();
        Ok(())
    }

    /// The ISR members (not this replica) that have not caught up for `lag_time_max_ms`, and the
    /// replicas outside the ISR that have: what the leader asks the controller to change.
    pub fn isr_candidates(&self, id: LogId, lag_time_max_ms: i64, now_ms: i64) -> Result<IsrCandidates> {
        let partition = self.get(id)?;
        let mut candidates = IsrCandidates::default();
        let (Role::Leader { .. }, Some(replication)) = (partition.role, &partition.replication) else {
            return Ok(candidates);
        };
        for (replica, state) in &replication.followers {
            let in_isr = replication.isr.contains(replica);
            let lagging = now_ms - state.last_caught_up_ms > lag_time_max_ms;
            if in_isr && lagging {
                candidates.shrink.push(*replica);
            }
            // Kafka's rule for joining: caught up to the high watermark and to the start of
            // this leader's epoch, and fetching in this epoch.
            let epoch_start = partition.epochs.last().map_or(Offset::ZERO, |start| start.start_offset);
            let caught_up = state.log_end.is_some_and(|end| end >= partition.high_watermark && end >= epoch_start);
            if !in_isr && caught_up && !lagging {
                candidates.expand.push(*replica);
            }
        }
        Ok(candidates)
    }
}

/// Replicas the leader would take out of the ISR and put into it ([`Partitions::isr_candidates`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IsrCandidates {
    pub shrink: Vec<ReplicaId>,
    pub expand: Vec<ReplicaId>,
}

#[cfg(test)]
mod tests {
    use engine::io::sim::{SimFaults, SimFs};

    use super::*;
    use crate::follow::tests::{batch, follower_role, leader_role, open, partitions, poll_once};
    use crate::Acks;

    const ME: ReplicaId = ReplicaId(1);
    const ALL: [ReplicaId; 3] = [ReplicaId(1), ReplicaId(2), ReplicaId(3)];

    #[test]
    fn the_high_watermark_is_the_smallest_end_of_the_isr_and_acks_all_waits_for_it() {
        let sim = SimFs::new(21, SimFaults::default());
        let (mut partitions, _triggers) = partitions(&sim);
        let id = open(&mut partitions, "/p/t-0", leader_role(1), 1 << 20);
        partitions.set_replication(id, ME, &ALL, &ALL, 2, 0).expect("replication");
        let appended = partitions.append(id, &batch(3), Acks::All, 0).expect("append");
        let mut ack = appended.ack.expect("acks=all waits");
        let mut leader_ack = partitions.append(id, &batch(1), Acks::Leader, 0).expect("append").ack.expect("ack");
        partitions.commit(0);
        assert!(matches!(poll_once(&mut leader_ack), Some(Ok(()))), "acks=1: the leader's commit");
        assert_eq!(partitions.get(id).expect("partition").high_watermark(), Offset(0), "no follower fetched yet");
        assert!(poll_once(&mut ack).is_none());
        // One follower has everything, the other half: the high watermark is the smaller end.
        assert!(partitions.follower_fetched(id, ReplicaId(2), Offset(4), None, 10).expect("fetched"));
        assert!(partitions.follower_fetched(id, ReplicaId(3), Offset(2), None, 10).expect("fetched"));
        assert_eq!(partitions.get(id).expect("partition").high_watermark(), Offset(2));
        assert!(poll_once(&mut ack).is_none(), "offsets 0..3 are not all covered");
        assert!(partitions.follower_fetched(id, ReplicaId(3), Offset(4), None, 20).expect("fetched"));
        assert_eq!(partitions.get(id).expect("partition").high_watermark(), Offset(4));
        assert!(matches!(poll_once(&mut ack), Some(Ok(()))));
        // A stranger is no replica: nothing recorded (Kafka answers it with no records).
        assert!(!partitions.follower_fetched(id, ReplicaId(9), Offset(4), None, 20).expect("answered"));
        // Beyond the leader's end: nothing recorded, the read answers OFFSET_OUT_OF_RANGE.
        assert!(partitions.follower_fetched(id, ReplicaId(2), Offset(99), None, 20).expect("answered"));
        let state = partitions.get(id).expect("partition").replication().expect("set").followers[&ReplicaId(2)];
        assert_eq!(state.log_end, Some(Offset(4)));
    }

    #[test]
    fn the_low_watermark_is_the_smallest_log_start_of_the_leader_and_its_in_sync_followers() {
        let sim = SimFs::new(23, SimFaults::default());
        let (mut partitions, _triggers) = partitions(&sim);
        let id = open(&mut partitions, "/p/t-0", leader_role(1), 1 << 20);
        partitions.set_replication(id, ME, &ALL, &[ME, ReplicaId(2)], 1, 0).expect("replication");
        partitions.append(id, &batch(5), Acks::Leader, 0).expect("append");
        partitions.commit(0);
        partitions.follower_fetched(id, ReplicaId(2), Offset(5), None, 10).expect("fetched");
        assert_eq!(partitions.delete_records(id, Some(Offset(3)), 10).expect("delete"), Offset(3));
        // The in-sync follower has not reported a log start yet: it counts as 0. Replica 3 is
        // out of the ISR and does not count.
        assert_eq!(partitions.low_watermark(id).expect("low watermark"), Offset(0));
        partitions.follower_log_start(id, ReplicaId(3), Offset(0)).expect("noted");
        partitions.follower_log_start(id, ReplicaId(2), Offset(2)).expect("noted");
        assert_eq!(partitions.low_watermark(id).expect("low watermark"), Offset(2));
        partitions.follower_log_start(id, ReplicaId(2), Offset(3)).expect("noted");
        assert_eq!(partitions.low_watermark(id).expect("low watermark"), Offset(3));
        // A follower is asked for nothing of the sort.
        let follower_id = open(&mut partitions, "/p/t-1", follower_role(1), 1 << 20);
        assert!(partitions.low_watermark(follower_id).is_err());
    }

    #[test]
    fn min_insync_refuses_before_the_append_and_after_it_when_the_isr_shrank() {
        let sim = SimFs::new(22, SimFaults::default());
        let (mut partitions, _triggers) = partitions(&sim);
        let id = open(&mut partitions, "/p/t-0", leader_role(1), 1 << 20);
        partitions.set_replication(id, ME, &ALL, &[ME], 2, 0).expect("replication");
        let refused = partitions.append(id, &batch(1), Acks::All, 0).expect_err("ISR of 1 < 2");
        assert!(matches!(refused, ReplicaError::NotEnoughReplicas { isr: 1, min_insync: 2 }), "{refused:?}");
        assert_eq!(partitions.next_offset(id).expect("next"), Offset(0), "nothing appended");
        partitions.append(id, &batch(1), Acks::Leader, 0).expect("acks=1 needs no ISR");

        partitions.set_replication(id, ME, &ALL, &[ME, ReplicaId(2)], 2, 0).expect("replication");
        let mut ack = partitions.append(id, &batch(1), Acks::All, 0).expect("append").ack.expect("ack");
        partitions.commit(0);
        // The ISR shrinks to the leader alone while the write waits: the high watermark may now
        // cover it, but the write is answered NOT_ENOUGH_REPLICAS_AFTER_APPEND.
        partitions.set_replication(id, ME, &ALL, &[ME], 2, 0).expect("replication");
        assert!(matches!(poll_once(&mut ack), Some(Err(ReplicaError::NotEnoughReplicasAfterAppend))));
        assert_eq!(partitions.get(id).expect("partition").high_watermark(), Offset(2));
    }

    #[test]
    fn lagging_members_are_candidates_to_leave_and_caught_up_replicas_to_join() {
        let sim = SimFs::new(23, SimFaults::default());
        let (mut partitions, _triggers) = partitions(&sim);
        let id = open(&mut partitions, "/p/t-0", leader_role(1), 1 << 20);
        partitions.set_replication(id, ME, &ALL, &[ME, ReplicaId(2)], 1, 1_000).expect("replication");
        partitions.append(id, &batch(2), Acks::Leader, 1_000).expect("append");
        partitions.commit(1_000);
        // Replica 3 (outside the ISR) catches up; replica 2 (inside) never fetches.
        partitions.follower_fetched(id, ReplicaId(3), Offset(2), None, 5_000).expect("fetched");
        let candidates = partitions.isr_candidates(id, 10_000, 12_000).expect("candidates");
        assert_eq!(candidates, IsrCandidates { shrink: vec![ReplicaId(2)], expand: vec![ReplicaId(3)] });
        assert_eq!(
            partitions.isr_candidates(id, 10_000, 5_000).expect("candidates").shrink,
            Vec::<ReplicaId>::new(),
            "within the lag time"
        );
        // A follower knows no candidates: only leaders change the ISR.
        let other = open(&mut partitions, "/p/t-1", follower_role(1), 1 << 20);
        partitions.set_replication(other, ME, &ALL, &ALL, 1, 0).expect("replication");
        assert_eq!(partitions.isr_candidates(other, 1, 1_000_000).expect("candidates"), IsrCandidates::default());
    }

    /// After a restart in a cluster a replica opens as a follower and trusts its log up to the
    /// high watermark it last checkpointed (committed on the whole ISR then), not to its end: a
    /// replica elected right after its restart must not expose what the others lack. Without a
    /// checkpoint it trusts none of it until the ISR proves it. On one node the recovered end is
    /// the high watermark.
    #[test]
    fn a_restarted_replica_trusts_its_log_up_to_its_checkpoint_only() {
        let new_partitions = partitions;
        let sim = SimFs::new(24, SimFaults::default());
        let (mut partitions, _triggers) = new_partitions(&sim);
        let id = open(&mut partitions, "/p/t-0", leader_role(1), 1 << 20);
        partitions.set_replication(id, ME, &ALL, &ALL, 1, 0).expect("replication");
        partitions.append(id, &batch(5), Acks::Leader, 0).expect("append");
        partitions.commit(0);
        partitions.follower_fetched(id, ReplicaId(2), Offset(3), None, 10).expect("fetched");
        partitions.follower_fetched(id, ReplicaId(3), Offset(4), None, 10).expect("fetched");
        assert_eq!(partitions.get(id).expect("p").high_watermark(), Offset(3));
        partitions.close(0).expect("close (checkpoints the high watermark)");
        drop(partitions);

        let (mut partitions, _triggers) = new_partitions(&sim);
        let id = open(&mut partitions, "/p/t-0", follower_role(1), 1 << 20);
        assert_eq!(partitions.get(id).expect("p").high_watermark(), Offset(3), "the checkpoint, not the end (5)");
        partitions.set_replication(id, ME, &ALL, &ALL, 1, 0).expect("replication");
        partitions.become_leader(id, LeaderEpoch(2)).expect("leader");
        partitions.set_replication(id, ME, &ALL, &ALL, 1, 0).expect("replication");
        assert_eq!(partitions.get(id).expect("p").high_watermark(), Offset(3), "no ISR member fetched yet");
        partitions.follower_fetched(id, ReplicaId(2), Offset(5), None, 10).expect("fetched");
        partitions.follower_fetched(id, ReplicaId(3), Offset(5), None, 10).expect("fetched");
        assert_eq!(partitions.get(id).expect("p").high_watermark(), Offset(5));
        partitions.close(0).expect("close");
        drop(partitions);

        // A checkpoint lost (it is written without a sync): nothing is trusted.
        let mut fs = sim.clone();
        engine::io::FileSystem::remove_file(&mut fs, std::path::Path::new("/p/t-0/skua.high-watermark")).expect("rm");
        let (mut partitions, _triggers) = new_partitions(&sim);
        let id = open(&mut partitions, "/p/t-0", follower_role(2), 1 << 20);
        assert_eq!(partitions.get(id).expect("p").high_watermark(), Offset(0), "a follower's comes from its leader");

        let single = open(&mut partitions, "/p/t-1", leader_role(0), 1 << 20);
        partitions.append(single, &batch(2), Acks::Leader, 0).expect("append");
        partitions.close(0).expect("close");
        let (mut partitions, _triggers) = new_partitions(&sim);
        let single = open(&mut partitions, "/p/t-1", leader_role(0), 1 << 20);
        assert_eq!(partitions.get(single).expect("p").high_watermark(), Offset(2), "one node: the recovered end");
    }

    /// KIP-207: a leader new in its epoch answers no latest offset while its high watermark is
    /// below the epoch's start (the previous leader may have shown a higher one).
    #[test]
    fn a_new_leader_tells_no_offsets_until_its_high_watermark_reaches_its_epoch_start() {
        let sim = SimFs::new(27, SimFaults::default());
        let (mut partitions, _triggers) = partitions(&sim);
        let id = open(&mut partitions, "/p/t-0", follower_role(1), 1 << 20);
        partitions.set_replication(id, ME, &ALL, &ALL, 1, 0).expect("replication");
        partitions.append_replicated(id, &batch(4), 0).expect("copied");
        partitions.commit(0);
        partitions.set_follower_high_watermark(id, Offset(2)).expect("hw");
        assert!(partitions.get(id).expect("p").check_offsets_available().is_ok(), "a follower is not asked");
        partitions.become_leader(id, LeaderEpoch(2)).expect("leader");
        partitions.set_replication(id, ME, &ALL, &ALL, 1, 0).expect("replication");
        assert!(matches!(
            partitions.get(id).expect("p").check_offsets_available(),
            Err(ReplicaError::OffsetNotAvailable { high_watermark: Offset(2), epoch_start: Offset(4) })
        ));
        partitions.follower_fetched(id, ReplicaId(2), Offset(4), None, 10).expect("fetched");
        partitions.follower_fetched(id, ReplicaId(3), Offset(4), None, 10).expect("fetched");
        assert_eq!(partitions.get(id).expect("p").high_watermark(), Offset(4));
        assert!(partitions.get(id).expect("p").check_offsets_available().is_ok());
    }

    /// A truncation below the checkpoint lowers it on disk at once: records appended after it
    /// must not pass for committed after a restart.
    #[test]
    fn a_truncation_lowers_the_checkpoint_before_the_log_grows_again() {
        let new_partitions = partitions;
        let sim = SimFs::new(26, SimFaults::default());
        let (mut partitions, _triggers) = new_partitions(&sim);
        let id = open(&mut partitions, "/p/t-0", follower_role(1), 1 << 20);
        partitions.set_replication(id, ME, &ALL, &ALL, 1, 0).expect("replication");
        partitions.append_replicated(id, &batch(4), 0).expect("copied");
        partitions.commit(0);
        assert_eq!(partitions.set_follower_high_watermark(id, Offset(4)).expect("hw"), Offset(4));
        assert_eq!(partitions.checkpoint_high_watermarks(), 1);
        assert_eq!(partitions.checkpoint_high_watermarks(), 0, "only what moved is written");
        // Within the one batch: the whole batch goes.
        let end = partitions.truncate_to(id, Offset(2), 0).expect("truncated (an unclean leader's log)");
        assert!(end < Offset(4));
        let mut fs = sim.clone();
        let on_disk = engine::io::read_small_file(&mut fs, std::path::Path::new("/p/t-0/skua.high-watermark"), 64)
            .expect("read")
            .expect("a checkpoint");
        assert_eq!(crate::high_watermark::decode(&on_disk), Some(end));
    }

    /// KIP-497: a replica the leader asked the controller to add counts for the high watermark at
    /// once, before the image lists it (the controller may add it, then elect it), through other
    /// images, until the image lists it or the controller refuses.
    #[test]
    fn a_replica_asked_to_join_holds_the_high_watermark_until_refused_or_listed() {
        let sim = SimFs::new(25, SimFaults::default());
        let (mut partitions, _triggers) = partitions(&sim);
        let id = open(&mut partitions, "/p/t-0", leader_role(1), 1 << 20);
        let two = [ME, ReplicaId(2)];
        partitions.set_replication(id, ME, &ALL, &two, 1, 0).expect("replication");
        partitions.append(id, &batch(2), Acks::Leader, 0).expect("append");
        partitions.commit(0);
        partitions.follower_fetched(id, ReplicaId(2), Offset(2), None, 10).expect("fetched");
        partitions.follower_fetched(id, ReplicaId(3), Offset(1), None, 10).expect("fetched");
        assert_eq!(partitions.get(id).expect("p").high_watermark(), Offset(2), "3 is outside the ISR");
        partitions.propose_isr_joins(id, &[ReplicaId(3)]).expect("proposed");
        partitions.append(id, &batch(2), Acks::Leader, 0).expect("append");
        partitions.commit(0);
        partitions.follower_fetched(id, ReplicaId(2), Offset(4), None, 20).expect("fetched");
        assert_eq!(partitions.get(id).expect("p").high_watermark(), Offset(2), "held by the joining replica");
        // Another image, still without 3: the join stays pending.
        partitions.set_replication(id, ME, &ALL, &two, 1, 30).expect("replication");
        partitions.follower_fetched(id, ReplicaId(2), Offset(4), None, 30).expect("fetched");
        assert_eq!(partitions.get(id).expect("p").high_watermark(), Offset(2));
        partitions.follower_fetched(id, ReplicaId(3), Offset(3), None, 40).expect("fetched");
        assert_eq!(partitions.get(id).expect("p").high_watermark(), Offset(3));
        // Refused: 3 no longer counts.
        partitions.drop_isr_joins(id, &[ReplicaId(3)]).expect("dropped");
        assert_eq!(partitions.get(id).expect("p").high_watermark(), Offset(4));
        // Proposed again and listed by the image: an ordinary member.
        partitions.propose_isr_joins(id, &[ReplicaId(3)]).expect("proposed");
        partitions.set_replication(id, ME, &ALL, &ALL, 1, 50).expect("replication");
        let replication = partitions.get(id).expect("p").replication().expect("set");
        assert!(replication.pending_joins.is_empty() && replication.isr.contains(&ReplicaId(3)));
    }
}
