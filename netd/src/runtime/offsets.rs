//! Committed-offset persistence: the one rule by which a group's committed offsets change.
//!
//! **Rule: an offset record (a commit or a tombstone) is appended to the group's
//! `__consumer_offsets` partition, and applied to the coordinator's memory only once that append
//! is durable.** So OffsetFetch never shows an offset a crash would lose, nor hides one a restart
//! would bring back, and a failed commit leaves memory as it was. OffsetCommit, DeleteGroups,
//! OffsetDelete and the expiry of `offsets.retention.minutes` all go through [`persist`].
//! Membership records go through it too ([`store_groups`]); their outcome goes back to the
//! state machine, which hands out a SyncGroup's assignment only once its record is durable.
//!
//! Owns: [`persist`], [`store_groups`], [`expire`] (the expiry pass the ticker runs) and
//! [`clean`] (what bounds the offsets logs: the ticker runs it too). Runs on the shard thread
//! that owns the group's offsets partition; borrows the shard state only between awaits.
//!
//! Must not know: any Kafka request or response. Which records to write is the caller's
//! business; the error codes of a failed append are decided here (and in `codec::errors`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::clock::now_ms;
use crate::codec::errors;
use crate::coordinators::groups::{
    self,
    store::{GroupRecord, OffsetRecord, Record},
};
use crate::runtime::state::ShardState;
use futures_util::future::LocalBoxFuture;

/// Appends `records` of `group` to its offsets partition and, once they are durable, applies
/// the offset records among them to `state.groups` (membership records are the caller's to
/// apply: see [`store_groups`]). The append happens before this returns (so records of one shard
/// keep their submission order in the log); the future answers 0 once applied, or the Kafka error
/// code of a failed append or commit, in which case memory is unchanged.
pub fn persist<R: Into<Record>>(
    state: &Rc<RefCell<ShardState>>,
    group: &str,
    records: Vec<R>,
) -> LocalBoxFuture<'static, i16> {
    let records: Vec<Record> = records.into_iter().map(Into::into).collect();
    if records.is_empty() {
        return Box::pin(std::future::ready(errors::NONE));
    }
    let appended = state.borrow_mut().append_offsets(group, &records);
    let durable = match appended {
        Ok(durable) => durable,
        Err(error) => return Box::pin(std::future::ready(errors::offsets_error_code(&error))),
    };
    let pending = PendingCommits::mark(state, group, &records);
    let partition = pending.partition;
    let state = state.clone();
    Box::pin(async move {
        // A shard stopping first answers `Stopped`: the outcome of the append is unknown, as
        // after a timeout.
        let code = durable.await.map_or_else(|error| errors::offsets_error_code(&error), |()| errors::NONE);
        if code == errors::NONE {
            let mut state = state.borrow_mut();
            let now = now_ms();
            for record in records {
                if let Record::Offset(record) = record {
                    state.groups.apply_offset(record, now);
                }
            }
        }
        drop(pending);
        // Under a steady stream of commits the ticker may never find the partition without a
        // write in flight; the moment its last one completes is the clean's chance.
        if state.borrow().offsets_partition_due(partition) {
            clean_partition(&state, partition);
        }
        code
    })
}

/// The commits of one [`persist`] while they are appended but not applied: marked in
/// `groups.committing` so that expiry leaves their keys alone, unmarked when dropped (after the
/// outcome is applied, or when the waiting request goes away).
/// Also counted in `groups.writing` for their offsets partition, which a clean waits on.
struct PendingCommits {
    state: Rc<RefCell<ShardState>>,
    keys: Vec<(String, String, i32)>,
    partition: i32,
}

impl PendingCommits {
    fn mark(state: &Rc<RefCell<ShardState>>, group: &str, records: &[Record]) -> PendingCommits {
        let keys: Vec<(String, String, i32)> = records
            .iter()
            .filter_map(|record| match record {
                Record::Offset(record) if record.value.is_some() => {
                    Some((record.group.clone(), record.topic.clone(), record.partition))
                }
                _ => None,
            })
            .collect();
        let mut borrowed = state.borrow_mut();
        for key in &keys {
            *borrowed.groups.committing.entry(key.clone()).or_default() += 1;
        }
        let partition = groups::offsets_partition(group, borrowed.config.offsets_partitions);
        *borrowed.groups.writing.entry(partition).or_default() += 1;
        PendingCommits { state: state.clone(), keys, partition }
    }
}

impl Drop for PendingCommits {
    fn drop(&mut self) {
        // Dropped from a task, never inside a borrow of the state; if that ever changed, the
        // keys would stay marked (their offsets would not expire), which loses nothing.
        let Ok(mut state) = self.state.try_borrow_mut() else { return };
        if let std::collections::btree_map::Entry::Occupied(mut count) = state.groups.writing.entry(self.partition) {
            *count.get_mut() -= 1;
            if *count.get() == 0 {
                count.remove();
            }
        }
        for key in self.keys.drain(..) {
            if let std::collections::btree_map::Entry::Occupied(mut count) = state.groups.committing.entry(key) {
                *count.get_mut() -= 1;
                if *count.get() == 0 {
                    count.remove();
                }
            }
        }
    }
}

/// Appends the membership records the group coordinator queued (a generation's assignment, a
/// group become Empty), oldest first, each with [`persist`], and reports each outcome back
/// (`Coordinator::group_stored`): that completes a SyncGroup waiting for its assignment. Called
/// right after the operations that queue records (SyncGroup, LeaveGroup) and on every tick.
pub fn store_groups(state: &Rc<RefCell<ShardState>>) {
    let records = state.borrow_mut().groups.take_group_records();
    for record in records {
        let Some(value) = record.value.clone() else { continue };
        let group = record.group.clone();
        let stored = persist(state, &group, vec![record]);
        let state = state.clone();
        compio::runtime::spawn(async move {
            let code = stored.await;
            if code != errors::NONE {
                tracing::warn!(%group, generation = value.generation, code, "could not store the group's membership");
            }
            state.borrow_mut().groups.group_stored(&group, &value, code, now_ms());
        })
        .detach();
    }
}

/// Tombstones the committed offsets that `offsets.retention.minutes` expired: one [`persist`] per
/// group, spawned, so the offsets leave memory once their tombstones are durable. Empty groups
/// with no offsets left are deleted as Kafka's offsets cleanup deletes them: their membership is
/// tombstoned, and once that is durable they leave memory (if still empty).
///
/// An expiry still in flight at the next pass is not repeated: its keys are marked in
/// `groups.expiring` until its outcome is known (then unmarked, so a failed one is retried).
/// Tombstoning a key twice would be idempotent in memory, but not in the log: a commit appended
/// between the two tombstones would be acknowledged and then deleted by the second.
pub fn expire(state: &Rc<RefCell<ShardState>>, now_ms: i64) {
    // Queued membership records go before any tombstone of theirs.
    store_groups(state);
    let dead = state.borrow().groups.dead_groups();
    for group in dead {
        state.borrow_mut().groups.dying.insert(group.clone());
        let stored = persist(state, &group, vec![GroupRecord { group: group.clone(), value: None }]);
        let state = state.clone();
        compio::runtime::spawn(async move {
            let code = stored.await;
            let mut shard = state.borrow_mut();
            shard.groups.dying.remove(&group);
            let still_dead = shard.groups.groups.get(&group).is_some_and(|known| {
                known.state == groups::GroupState::Empty && known.offsets.is_empty() && known.members.is_empty()
            });
            if code == errors::NONE && still_dead {
                shard.groups.groups.remove(&group);
                tracing::info!(%group, "deleted an empty group without offsets");
            }
        })
        .detach();
    }
    let expired = state.borrow().groups.expired_offsets(now_ms);
    let mut by_group: BTreeMap<String, Vec<OffsetRecord>> = BTreeMap::new();
    for (group, topic, partition) in expired {
        by_group.entry(group.clone()).or_default().push(OffsetRecord { group, topic, partition, value: None });
    }
    for (group, records) in by_group {
        let keys: Vec<(String, String, i32)> =
            records.iter().map(|record| (group.clone(), record.topic.clone(), record.partition)).collect();
        state.borrow_mut().groups.expiring.extend(keys.iter().cloned());
        let stored = persist(state, &group, records);
        let state = state.clone();
        compio::runtime::spawn(async move {
            let code = stored.await;
            let mut shard = state.borrow_mut();
            for key in &keys {
                shard.groups.expiring.remove(key);
            }
            if code == errors::NONE {
                tracing::info!(%group, offsets = keys.len(), "expired committed offsets");
            } else {
                tracing::warn!(%group, code, "could not expire committed offsets");
            }
        })
        .detach();
    }
}

/// Bounds the offsets logs: each offsets partition due for a clean
/// ([`ShardState::offsets_partitions_to_clean`]) gets the current state of its groups appended
/// again at its end, and once that snapshot is durable (`acks=all`) its log start moves to the
/// snapshot's first offset, so the engine deletes the segments before it. Replay from the new
/// start gives the state memory had: nothing was in flight to the partition when the snapshot
/// was taken, and whatever is appended after it comes after it in the log too. Deleted groups
/// and expired offsets are simply absent from the snapshot (their tombstones go with the old
/// segments). A clean that fails (leadership lost, a failed append) leaves the log start where
/// it was; the next tick tries again.
pub fn clean(state: &Rc<RefCell<ShardState>>) {
    let due = state.borrow().offsets_partitions_to_clean();
    for partition in due {
        clean_partition(state, partition);
    }
}

/// Starts the clean of one offsets partition that is due (see [`clean`]).
fn clean_partition(state: &Rc<RefCell<ShardState>>, partition: i32) {
    let appended = state.borrow_mut().append_offsets_snapshot(partition);
    let (start, acks) = match appended {
        Ok(appended) => appended,
        Err(error) => {
            tracing::warn!(partition, %error, "could not write the snapshot of an offsets partition");
            return;
        }
    };
    state.borrow_mut().groups.cleaning.insert(partition);
    let state = state.clone();
    compio::runtime::spawn(async move {
        let mut durable = Ok(());
        for ack in acks {
            durable = durable.and(ack.await);
        }
        let mut shard = state.borrow_mut();
        shard.groups.cleaning.remove(&partition);
        let advanced = durable.and_then(|()| shard.advance_offsets_log_start(partition, start));
        match advanced {
            Ok(size_bytes) => {
                shard.groups.cleaned_bytes.insert(partition, size_bytes);
                tracing::info!(partition, log_start = start.0, size_bytes, "cleaned an offsets partition");
            }
            Err(error) => tracing::warn!(partition, %error, "could not clean an offsets partition"),
        }
    })
    .detach();
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::FutureExt;

    use super::*;
    use crate::catalog::Catalog;
    use crate::config::Config;
    use crate::coordinators::groups::store::CommittedOffset;

    /// A shard state on `dir` with one offsets partition, owned by this shard if `owns_offsets`.
    fn open(dir: &std::path::Path, retention_minutes: i64, owns_offsets: bool) -> Rc<RefCell<ShardState>> {
        open_with_segment_bytes(
            dir,
            retention_minutes,
            owns_offsets,
            crate::config::OFFSETS_TOPIC_SEGMENT_BYTES_DEFAULT,
        )
    }

    fn open_with_segment_bytes(
        dir: &std::path::Path,
        retention_minutes: i64,
        owns_offsets: bool,
        segment_bytes: u64,
    ) -> Rc<RefCell<ShardState>> {
        let values = [
            ("log.dirs", dir.display().to_string()),
            ("offsets.topic.num.partitions", "1".to_string()),
            ("offsets.retention.minutes", retention_minutes.to_string()),
            ("offsets.topic.segment.bytes", segment_bytes.to_string()),
            ("group.initial.rebalance.delay.ms", "0".to_string()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect();
        let config = Config::from_properties(&values).expect("config");
        // The trigger wakes a committer task; these tests commit by hand instead.
        let (trigger, _) = futures_channel::mpsc::unbounded();
        let state = ShardState::open(config, trigger, &Catalog::default(), |_, _| owns_offsets).expect("open");
        Rc::new(RefCell::new(state))
    }

    fn commit(offset: i64, at_ms: i64) -> OffsetRecord {
        OffsetRecord {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            value: Some(CommittedOffset {
                offset,
                leader_epoch: 0,
                metadata: String::new(),
                commit_timestamp_ms: at_ms,
            }),
        }
    }

    fn committed(state: &Rc<RefCell<ShardState>>) -> Option<i64> {
        let state = state.borrow();
        state
            .groups
            .groups
            .get("g")
            .and_then(|group| group.offsets.get(&("t".to_string(), 0)))
            .map(|value| value.offset)
    }

    /// Records appended to the offsets partition, durable or not.
    fn offsets_appended(state: &Rc<RefCell<ShardState>>) -> u64 {
        let state = state.borrow();
        let log = state.offsets_logs[&0];
        state.partitions.next_offset(log).expect("offsets log").0
    }

    fn commit_of(group: &str, partition: i32, offset: i64) -> OffsetRecord {
        OffsetRecord { group: group.into(), partition, ..commit(offset, 1_700_000_000_000 + offset) }
    }

    /// Every committed offset in memory.
    fn memory(state: &Rc<RefCell<ShardState>>) -> BTreeMap<(String, String, i32), CommittedOffset> {
        let state = state.borrow();
        let groups = state.groups.groups.values();
        groups
            .flat_map(|group| {
                group
                    .offsets
                    .iter()
                    .map(|((topic, partition), value)| ((group.id.clone(), topic.clone(), *partition), value.clone()))
            })
            .collect()
    }

    /// A seeded run of commits, tombstones and cleans: the offsets log stays bounded, its start
    /// moves, and replaying what is left after a restart gives exactly the state memory had.
    #[test]
    fn cleaning_bounds_the_offsets_log_and_replay_gives_the_same_state() {
        const SEGMENT_BYTES: u64 = 2048;
        const ROUNDS: u64 = 600;
        let dir = tempfile::tempdir().expect("tempdir");
        let state = open_with_segment_bytes(dir.path(), 10_080, true, SEGMENT_BYTES);
        let log = state.borrow().offsets_logs[&0];
        let mut seed: u64 = 0x5eed_0ff5;
        let mut random = move |below: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % below
        };
        let mut size_bytes_max = 0;
        let mut cleans = 0;
        compio::runtime::Runtime::new().expect("runtime").block_on(async {
            for round in 0..ROUNDS {
                let group = format!("group-{}", random(5));
                let partition = random(4) as i32;
                let record = if random(10) == 0 {
                    OffsetRecord { value: None, ..commit_of(&group, partition, 0) }
                } else {
                    commit_of(&group, partition, round as i64)
                };
                let stored = persist(&state, &group, vec![record]);
                if random(3) == 0 {
                    // A clean asked for while the commit is in flight must wait for it.
                    clean(&state);
                    assert!(state.borrow().groups.cleaning.is_empty(), "no clean with a write in flight");
                }
                state.borrow_mut().commit();
                assert_eq!(stored.await, errors::NONE);
                clean(&state);
                if !state.borrow().groups.cleaning.is_empty() {
                    cleans += 1;
                    state.borrow_mut().commit();
                    for _ in 0..100 {
                        if state.borrow().groups.cleaning.is_empty() {
                            break;
                        }
                        compio::time::sleep(Duration::from_millis(1)).await;
                    }
                    assert!(state.borrow().groups.cleaning.is_empty(), "the clean finished");
                }
                size_bytes_max = size_bytes_max.max(state.borrow().partitions.size_bytes(log).expect("size"));
            }
        });
        assert!(cleans > 5, "the log was cleaned ({cleans} times)");
        // Cleaned at 2 segments (the live state here is far smaller); the active segment and the
        // snapshot's own may hold a segment each more.
        assert!(size_bytes_max <= 5 * SEGMENT_BYTES, "bounded: {size_bytes_max} bytes at most");
        let log_start = state.borrow().partitions.log_start_offset(log).expect("start").0;
        assert!(log_start > 0, "the log start moved");
        let before = memory(&state);
        assert!(!before.is_empty());
        state.borrow_mut().close().expect("close");
        drop(state);
        let reopened = open_with_segment_bytes(dir.path(), 10_080, true, SEGMENT_BYTES);
        assert_eq!(memory(&reopened), before, "replay from the new log start gives the same state");
    }

    #[test]
    fn a_commit_reaches_memory_only_once_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = open(dir.path(), 10_080, true);
        state.borrow_mut().groups.apply_offset(commit(3, now_ms()), now_ms());
        let mut stored = persist(&state, "g", vec![commit(7, now_ms())]);
        assert_eq!(offsets_appended(&state), 1, "appended at once");
        assert!((&mut stored).now_or_never().is_none(), "not durable before a group commit");
        assert_eq!(committed(&state), Some(3), "memory keeps the durable offset meanwhile");
        state.borrow_mut().commit();
        assert_eq!(stored.now_or_never(), Some(errors::NONE));
        assert_eq!(committed(&state), Some(7));
    }

    #[test]
    fn a_failed_append_leaves_memory_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        // This shard does not own the offsets partition: the append fails.
        let state = open(dir.path(), 10_080, false);
        state.borrow_mut().groups.apply_offset(commit(3, now_ms()), now_ms());
        let stored = persist(&state, "g", vec![commit(7, now_ms())]);
        assert_eq!(stored.now_or_never(), Some(errors::code(kafka_protocol::ResponseError::NotCoordinator)));
        assert_eq!(committed(&state), Some(3));
    }

    /// Kafka skips offsets with a pending commit: a tombstone appended behind a commit would
    /// delete it right after it was acknowledged.
    #[test]
    fn expiry_leaves_a_key_with_a_commit_in_flight_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = open(dir.path(), 0, true);
        state.borrow_mut().groups.apply_offset(commit(5, 0), 0);
        let stored = persist(&state, "g", vec![commit(9, 0)]);
        assert_eq!(offsets_appended(&state), 1, "the commit is appended");
        compio::runtime::Runtime::new().expect("runtime").block_on(async {
            expire(&state, 10);
            assert_eq!(offsets_appended(&state), 1, "no tombstone behind a commit in flight");
            state.borrow_mut().commit();
            assert_eq!(stored.await, errors::NONE);
            assert_eq!(committed(&state), Some(9));
            assert!(state.borrow().groups.committing.is_empty(), "the mark goes with the outcome");
            expire(&state, 10);
            assert_eq!(offsets_appended(&state), 2, "once applied, the offset may expire again");
        });
    }

    #[test]
    fn expiry_tombstones_once_and_forgets_the_offset_once_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Retention 0: an offset of an empty group expires as soon as time moves on.
        let state = open(dir.path(), 0, true);
        state.borrow_mut().groups.apply_offset(commit(5, 0), 0);
        compio::runtime::Runtime::new().expect("runtime").block_on(async {
            expire(&state, 10);
            assert_eq!(offsets_appended(&state), 1, "one tombstone appended");
            assert_eq!(committed(&state), Some(5), "not forgotten before the tombstone is durable");
            expire(&state, 11);
            assert_eq!(offsets_appended(&state), 1, "an expiry in flight is not repeated");
            state.borrow_mut().commit();
            for _ in 0..100 {
                if !state.borrow().groups.groups.contains_key("g") {
                    break;
                }
                compio::time::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(committed(&state), None);
            assert!(!state.borrow().groups.groups.contains_key("g"), "the empty group went with its last offset");
            assert!(state.borrow().groups.expiring.is_empty());
            expire(&state, 12);
            assert_eq!(offsets_appended(&state), 1, "nothing left to expire");
        });
        state.borrow_mut().close().expect("close");
        drop(state);
        let reopened = open(dir.path(), 0, true);
        assert_eq!(committed(&reopened), None, "the tombstone is what a restart replays");
    }

    /// Every record of the offsets log from its start.
    fn log_records(state: &Rc<RefCell<ShardState>>) -> Vec<Record> {
        let state = state.borrow();
        let log = state.offsets_logs[&0];
        let start = state.partitions.log_start_offset(log).expect("start");
        let mut records = Vec::new();
        state
            .partitions
            .scan(log, start, |bytes, headers| records.extend(groups::store::decode_all(bytes, headers)))
            .expect("scan");
        records
    }

    /// One member joins `group` and syncs; returns its member id once its assignment is durable.
    async fn stable_group(state: &Rc<RefCell<ShardState>>, group: &str) -> String {
        let request = groups::JoinRequest {
            group: group.into(),
            member_id: String::new(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), bytes::Bytes::from_static(b"subscription"))],
            require_known_member_id: false,
        };
        let joined = state.borrow_mut().groups.join(request, now_ms());
        let member = joined.await.expect("joined").member_id;
        let assignment = vec![(member.clone(), bytes::Bytes::from_static(b"assigned"))];
        let synced = state.borrow_mut().groups.sync(group, 1, &member, None, assignment, now_ms());
        store_groups(state);
        state.borrow_mut().commit();
        let answer = synced.await.expect("synced");
        assert_eq!((answer.error, &answer.assignment[..]), (0, &b"assigned"[..]), "answered once durable");
        member
    }

    /// A clean keeps the last membership record of each live group and drops a deleted group's:
    /// replay from the moved log start brings the live group back Stable with its generation,
    /// members and assignments.
    #[test]
    fn cleaning_keeps_live_membership_and_drops_deleted_groups() {
        const SEGMENT_BYTES: u64 = 2048;
        const ROUNDS_MAX: i64 = 1000;
        let dir = tempfile::tempdir().expect("tempdir");
        let state = open_with_segment_bytes(dir.path(), 10_080, true, SEGMENT_BYTES);
        let log = state.borrow().offsets_logs[&0];
        compio::runtime::Runtime::new().expect("runtime").block_on(async {
            let live = stable_group(&state, "live").await;
            let gone = stable_group(&state, "deleted").await;
            assert_eq!(state.borrow_mut().groups.leave("deleted", &gone, None, now_ms()), 0);
            store_groups(&state);
            state.borrow_mut().commit();
            // The Empty record's outcome is applied by a task of its own.
            for _ in 0..100 {
                if state.borrow().groups.writing.is_empty() {
                    break;
                }
                compio::time::sleep(Duration::from_millis(1)).await;
            }
            let stored = state.borrow().groups.groups["deleted"].stored.clone().expect("stored");
            assert!(stored.members.is_empty(), "recorded Empty");
            let tombstone =
                persist(&state, "deleted", vec![groups::store::GroupRecord { group: "deleted".into(), value: None }]);
            state.borrow_mut().commit();
            assert_eq!(tombstone.await, errors::NONE);
            state.borrow_mut().groups.groups.remove("deleted");
            assert!(log_records(&state).iter().any(|record| record.group() == "deleted"));
            for round in 0..ROUNDS_MAX {
                let stored = persist(&state, "live", vec![commit_of("live", (round % 4) as i32, round)]);
                state.borrow_mut().commit();
                assert_eq!(stored.await, errors::NONE);
                clean(&state);
                if !state.borrow().groups.cleaning.is_empty() {
                    state.borrow_mut().commit();
                    for _ in 0..100 {
                        if state.borrow().groups.cleaning.is_empty() {
                            break;
                        }
                        compio::time::sleep(Duration::from_millis(1)).await;
                    }
                    break;
                }
            }
            assert!(state.borrow().partitions.log_start_offset(log).expect("start").0 > 0, "cleaned");
            let records = log_records(&state);
            assert!(!records.iter().any(|record| record.group() == "deleted"), "the deleted group is gone");
            assert!(
                matches!(&records[0], Record::Group(record) if record.group == "live"),
                "the snapshot opens with the live group's membership: {:?}",
                records.first()
            );
            assert!(state.borrow().groups.groups["live"].members.contains_key(&live));
        });
        state.borrow_mut().close().expect("close");
        drop(state);
        let reopened = open_with_segment_bytes(dir.path(), 10_080, true, SEGMENT_BYTES);
        let reopened = reopened.borrow();
        let group = &reopened.groups.groups["live"];
        assert_eq!((group.state, group.generation, group.members.len()), (groups::GroupState::Stable, 1, 1));
        assert_eq!(&group.members.values().next().expect("member").assignment[..], b"assigned");
        assert_eq!(group.offsets.len(), 4, "its offsets too");
        assert!(!reopened.groups.groups.contains_key("deleted"));
    }

    /// An Empty group without committed offsets is deleted by the expiry pass as Kafka's offsets
    /// cleanup deletes it: its membership is tombstoned, then it leaves memory, and a restart
    /// does not bring it back. A group with offsets is left alone.
    #[test]
    fn expiry_deletes_empty_groups_without_offsets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = open(dir.path(), 10_080, true);
        compio::runtime::Runtime::new().expect("runtime").block_on(async {
            let member = stable_group(&state, "idle").await;
            state.borrow_mut().groups.apply_offset(commit(5, now_ms()), now_ms());
            assert_eq!(state.borrow_mut().groups.leave("idle", &member, None, now_ms()), 0);
            expire(&state, now_ms());
            assert!(state.borrow().groups.dying.contains("idle"), "its tombstone is in flight");
            expire(&state, now_ms());
            state.borrow_mut().commit();
            for _ in 0..100 {
                if !state.borrow().groups.groups.contains_key("idle") {
                    break;
                }
                compio::time::sleep(Duration::from_millis(1)).await;
            }
            assert!(!state.borrow().groups.groups.contains_key("idle"), "deleted once the tombstone is durable");
            assert!(state.borrow().groups.dying.is_empty());
            assert!(state.borrow().groups.groups.contains_key("g"), "a group with offsets stays");
        });
        let records = log_records(&state);
        let idle: Vec<&Record> = records.iter().filter(|record| record.group() == "idle").collect();
        assert!(
            matches!(idle.as_slice(), [.., Record::Group(empty), Record::Group(tombstone)]
                if empty.value.as_ref().is_some_and(|value| value.members.is_empty()) && tombstone.value.is_none()),
            "Empty record, then the tombstone: {idle:?}"
        );
        state.borrow_mut().close().expect("close");
        drop(state);
        let reopened = open(dir.path(), 10_080, true);
        assert!(!reopened.borrow().groups.groups.contains_key("idle"));
    }
}
