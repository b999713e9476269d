//! The classic consumer-group coordinator of one shard: the groups whose offsets partition
//! (`__consumer_offsets-<n>`, n = hash(group) mod `offsets.topic.num.partitions`) this shard owns.
//!
//! Owns: the group state machine as Kafka defines it (Empty → PreparingRebalance →
//! CompletingRebalance → Stable), member ids (MEMBER_ID_REQUIRED on a first join from v4),
//! generations, protocol selection by vote, session and rebalance timeouts, the initial
//! rebalance delay, static membership (`group.instance.id`), and the in-memory committed offsets
//! (their durable form is `store.rs`, appended to the offsets logs by `runtime::offsets`).
//!
//! Membership is persisted as Kafka persists it: a group metadata record (members, generation,
//! protocol, leader, assignments) when the leader's SyncGroup hands out a generation's
//! assignment, and one without members when the group becomes Empty. The state machine only
//! queues these ([`Coordinator::take_group_records`]); `runtime::offsets::store_groups` appends
//! them and reports back ([`Coordinator::group_stored`]), and only then does a SyncGroup complete
//! (the group turns Stable), as in Kafka. Replay ([`Coordinator::apply`]) brings a group with
//! members back Stable at its generation, each member's session timer starting at load time:
//! members that keep heartbeating carry on, those that do not expire and trigger a rebalance.
//!
//! Must not know: sockets, shards, Kafka message structs. Answers are plain values and error
//! codes; waiting members get them through oneshot channels. Time comes in as `now_ms`.

pub mod store;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use futures_channel::oneshot;
use kafka_protocol::ResponseError;

use store::{CommittedOffset, GroupMetadata, MemberMetadata};

use crate::config::GroupConfig;

/// Where groups live is placement, the catalog's business (re-exported for the coordinator's
/// users).
pub use crate::catalog::{offsets_partition, OFFSETS_TOPIC};

/// Members one group may hold (Kafka's `group.max.size` defaults to unlimited; we name a bound).
pub const GROUP_MEMBERS_MAX: usize = 10_000;
/// Largest `committed_metadata` accepted (Kafka's `offset.metadata.max.bytes`).
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;
/// Groups one shard may hold.
pub const GROUPS_PER_SHARD_MAX: usize = 100_000;

fn code(error: ResponseError) -> i16 {
    error.code()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl GroupState {
    /// The name Kafka uses in DescribeGroups and ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

/// What a JoinGroup gets back.
#[derive(Clone, Debug, Default)]
pub struct JoinAnswer {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only for the leader: (member id, group instance id, metadata for the chosen protocol).
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinAnswer {
    pub fn error(error: i16, member_id: &str) -> JoinAnswer {
        JoinAnswer { error, generation: -1, member_id: member_id.to_string(), ..JoinAnswer::default() }
    }
}

/// What a SyncGroup gets back.
#[derive(Clone, Debug, Default)]
pub struct SyncAnswer {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncAnswer {
    fn error(error: i16) -> SyncAnswer {
        SyncAnswer { error, ..SyncAnswer::default() }
    }
}

/// A JoinGroup request, decoded.
#[derive(Clone, Debug)]
pub struct JoinRequest {
    pub group: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a first join without a member id is answered MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
}

#[derive(Debug)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    last_heartbeat_ms: i64,
    join_waiter: Option<oneshot::Sender<JoinAnswer>>,
    sync_waiter: Option<oneshot::Sender<SyncAnswer>>,
    /// Joined (or synced) in the current rebalance.
    joined: bool,
    synced: bool,
}

impl Member {
    /// The metadata this member gave for `protocol`.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(name, _)| name == protocol).map(|(_, data)| data.clone()).unwrap_or_default()
    }
}

#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the time they expire.
    pending_members: BTreeMap<String, i64>,
    /// PreparingRebalance: when the join phase ends whoever has rejoined.
    join_deadline_ms: i64,
    /// PreparingRebalance from Empty: do not complete before this (initial rebalance delay).
    join_not_before_ms: i64,
    /// CompletingRebalance: when members that did not sync are removed.
    sync_deadline_ms: i64,
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// When the group last became Empty (offset retention counts from here).
    empty_since_ms: i64,
    next_member: u64,
    /// The group's last durable membership record: what replaying its offsets log gives, and so
    /// what a clean of that log writes again.
    pub stored: Option<GroupMetadata>,
    /// CompletingRebalance: the leader's assignment of this generation, held while its record
    /// is appended; handed out once durable.
    storing: Option<(i32, BTreeMap<String, Bytes>)>,
    /// Membership records to append, oldest first (moved to the coordinator's queue after each
    /// operation on the group).
    unstored: Vec<GroupMetadata>,
}

impl Group {
    fn new(id: &str, now_ms: i64) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            protocol_type: None,
            protocol_name: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            join_deadline_ms: 0,
            join_not_before_ms: 0,
            sync_deadline_ms: 0,
            offsets: BTreeMap::new(),
            empty_since_ms: now_ms,
            next_member: 0,
            stored: None,
            storing: None,
            unstored: Vec::new(),
        }
    }

    /// The membership record of the group as it is now, members with `assignments` (Kafka
    /// writes the group's protocol type even once it is Empty: the last known one here).
    fn metadata(&self, assignments: &BTreeMap<String, Bytes>, now_ms: i64) -> GroupMetadata {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let protocol_type = self
            .protocol_type
            .clone()
            .or_else(|| self.stored.as_ref().map(|stored| stored.protocol_type.clone()))
            .unwrap_or_default();
        GroupMetadata {
            protocol_type,
            generation: self.generation,
            protocol: self.protocol_name.clone(),
            leader: self.leader.clone(),
            state_timestamp_ms: now_ms,
            members: self
                .members
                .values()
                .map(|member| MemberMetadata {
                    member_id: member.id.clone(),
                    instance_id: member.instance_id.clone(),
                    client_id: member.client_id.clone(),
                    client_host: member.client_host.clone(),
                    rebalance_timeout_ms: member.rebalance_timeout_ms,
                    session_timeout_ms: member.session_timeout_ms,
                    subscription: member.metadata(&protocol),
                    assignment: assignments.get(&member.id).cloned().unwrap_or_default(),
                })
                .collect(),
        }
    }

    /// The group has just become Empty: that is recorded (with its new generation).
    fn became_empty(&mut self, now_ms: i64) {
        self.empty_since_ms = now_ms;
        self.storing = None;
        let record = self.metadata(&BTreeMap::new(), now_ms);
        self.unstored.push(record);
    }

    fn new_member_id(&mut self, client_id: &str, now_ms: i64) -> String {
        self.next_member += 1;
        // Kafka's shape: client id, a dash, something unique.
        format!("{client_id}-{:x}{:06x}", now_ms, self.next_member)
    }

    fn rebalance_timeout_ms(&self) -> i64 {
        self.members.values().map(|member| i64::from(member.rebalance_timeout_ms)).max().unwrap_or(0)
    }

    /// Protocols every member supports, in the order of the first member's preference.
    fn common_protocols(&self) -> Vec<String> {
        let mut members = self.members.values();
        let Some(first) = members.next() else { return Vec::new() };
        let mut common: Vec<String> = first.protocols.iter().map(|(name, _)| name.clone()).collect();
        for member in members {
            common.retain(|name| member.protocols.iter().any(|(other, _)| other == name));
        }
        common
    }

    /// Kafka's vote: each member names its most preferred common protocol; most votes wins.
    fn select_protocol(&self) -> Option<String> {
        let common = self.common_protocols();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some((name, _)) = member.protocols.iter().find(|(name, _)| common.contains(name)) {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        common
            .iter()
            .max_by_key(|name| {
                (
                    votes.get(name.as_str()).copied().unwrap_or(0),
                    std::cmp::Reverse(common.iter().position(|other| other == *name)),
                )
            })
            .cloned()
    }

    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let common = self.common_protocols();
        protocols.iter().any(|(name, _)| common.contains(name))
    }

    /// Starts a join phase; `reason` is logged, as Kafka logs its "Preparing to rebalance".
    fn prepare_rebalance(&mut self, now_ms: i64, config: &GroupConfig, reason: &str) {
        let from_empty = self.state == GroupState::Empty;
        tracing::info!(group = %self.id, state = self.state.name(), generation = self.generation, reason, "preparing to rebalance");
        // An assignment being stored is not handed out: its generation is over.
        self.storing = None;
        // Members waiting for their assignment must rejoin.
        for member in self.members.values_mut() {
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncAnswer::error(code(ResponseError::RebalanceInProgress)));
            }
            member.joined = member.join_waiter.is_some();
            member.synced = false;
        }
        self.state = GroupState::PreparingRebalance;
        let timeout = self.rebalance_timeout_ms();
        if from_empty {
            self.join_not_before_ms = now_ms + config.initial_rebalance_delay_ms.min(timeout.max(0));
            self.join_deadline_ms = self.join_not_before_ms.max(now_ms + timeout);
        } else {
            self.join_not_before_ms = now_ms;
            self.join_deadline_ms = now_ms + timeout;
        }
    }

    /// Ends the join phase if everyone rejoined (and any initial delay passed) or time is up.
    fn maybe_complete_join(&mut self, now_ms: i64, config: &GroupConfig) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined =
            self.members.values().all(|member| member.join_waiter.is_some()) && self.pending_members.is_empty();
        if !(now_ms >= self.join_deadline_ms || (all_joined && now_ms >= self.join_not_before_ms)) {
            return;
        }
        // Members that did not rejoin in time are out.
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|member| member.join_waiter.is_none())
            .map(|member| member.id.clone())
            .collect();
        for id in gone {
            tracing::info!(group = %self.id, member = %id, "removed: did not rejoin within the rebalance timeout");
            self.remove_member(&id);
        }
        self.pending_members.clear();
        self.generation += 1;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.leader = None;
            self.protocol_name = None;
            self.became_empty(now_ms);
            return;
        }
        self.protocol_name = self.select_protocol();
        let protocol = self.protocol_name.clone().unwrap_or_default();
        if self.leader.as_ref().is_none_or(|leader| !self.members.contains_key(leader)) {
            self.leader = self.members.keys().next().cloned();
        }
        let leader = self.leader.clone().unwrap_or_default();
        let roster: Vec<(String, Option<String>, Bytes)> = self
            .members
            .values()
            .map(|member| (member.id.clone(), member.instance_id.clone(), member.metadata(&protocol)))
            .collect();
        tracing::info!(group = %self.id, generation = self.generation, leader = %leader,
            members = ?self.members.keys().collect::<Vec<_>>(), "join phase over, awaiting the leader's assignment");
        self.state = GroupState::CompletingRebalance;
        self.sync_deadline_ms = now_ms + self.rebalance_timeout_ms();
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
            member.last_heartbeat_ms = now_ms;
            member.synced = false;
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(JoinAnswer {
                    error: 0,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    leader: leader.clone(),
                    member_id: member.id.clone(),
                    members: if member.id == leader { roster.clone() } else { Vec::new() },
                });
            }
        }
        let _ = config;
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(mut member) = self.members.remove(id) {
            if let Some(waiter) = member.join_waiter.take() {
                let _ = waiter.send(JoinAnswer::error(code(ResponseError::UnknownMemberId), id));
            }
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncAnswer::error(code(ResponseError::UnknownMemberId)));
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        if self.members.is_empty() {
            self.protocol_type = None;
        }
    }

    /// A member left or expired: rebalance whoever is left (or become Empty).
    fn member_gone(&mut self, id: &str, now_ms: i64, config: &GroupConfig, reason: &str) {
        self.remove_member(id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                if self.members.is_empty() {
                    self.generation += 1;
                    self.state = GroupState::Empty;
                    self.protocol_name = None;
                    self.became_empty(now_ms);
                } else {
                    self.prepare_rebalance(now_ms, config, reason);
                }
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now_ms, config),
            GroupState::Empty => {}
        }
    }

    fn member_for(&self, member_id: &str, instance_id: Option<&str>) -> Result<&Member, i16> {
        if let Some(instance) = instance_id {
            if let Some(member) = self.members.values().find(|member| member.instance_id.as_deref() == Some(instance)) {
                if member.id != member_id {
                    return Err(code(ResponseError::FencedInstanceId));
                }
            }
        }
        self.members.get(member_id).ok_or(code(ResponseError::UnknownMemberId))
    }
}

/// The groups of one shard.
#[derive(Debug)]
pub struct Coordinator {
    pub config: GroupConfig,
    pub groups: BTreeMap<String, Group>,
    /// (group, topic, partition) of the offsets whose expiry tombstones are appended but whose
    /// outcome is not known yet: [`Coordinator::expired_offsets`] does not return them again.
    pub expiring: BTreeSet<(String, String, i32)>,
    /// Groups whose membership tombstone [`Coordinator::dead_groups`] returned, its outcome not
    /// known yet.
    pub dying: BTreeSet<String>,
    /// (group, topic, partition) → commits appended and not yet durable (or failed). Expiry
    /// leaves these keys alone, as Kafka skips offsets with a pending commit: a tombstone appended
    /// after such a commit would delete it right after it was acknowledged.
    pub committing: BTreeMap<(String, String, i32), usize>,
    /// `__consumer_offsets` partition → records appended to it (by `runtime::offsets::persist`)
    /// whose outcome is not applied yet. A clean of that partition waits until none are: its
    /// snapshot is memory, which must then be everything the log holds.
    pub writing: BTreeMap<i32, usize>,
    /// `__consumer_offsets` partitions being cleaned (snapshot appended, log start not yet moved).
    pub cleaning: BTreeSet<i32>,
    /// `__consumer_offsets` partition → its log's bytes right after its last clean (the next
    /// clean waits for twice that, so a large live state is not rewritten over and over).
    pub cleaned_bytes: BTreeMap<i32, u64>,
    /// In a cluster: (the `__consumer_offsets` partition count, the partitions this broker leads;
    /// none until the image says); groups of other partitions get NOT_COORDINATOR. None on one
    /// node: every group is ours.
    coordinated: Option<(i32, BTreeSet<i32>)>,
    /// Membership records the state machine produced, oldest first, not yet handed to
    /// `runtime::offsets::store_groups` (bounded: at most a few per group and operation, drained
    /// after every operation that makes them and on every tick).
    unstored: Vec<(String, GroupMetadata)>,
}

/// The outcome of validating an OffsetCommit for a group.
#[derive(Debug, PartialEq, Eq)]
pub enum CommitCheck {
    Allowed,
    Refused(i16),
}

impl Coordinator {
    pub fn new(config: GroupConfig) -> Coordinator {
        Coordinator {
            config,
            groups: BTreeMap::new(),
            expiring: BTreeSet::new(),
            dying: BTreeSet::new(),
            committing: BTreeMap::new(),
            writing: BTreeMap::new(),
            cleaning: BTreeSet::new(),
            cleaned_bytes: BTreeMap::new(),
            coordinated: None,
            unstored: Vec::new(),
        }
    }

    /// Moves the membership records group `id` produced to the coordinator's queue.
    fn collect(&mut self, id: &str) {
        if let Some(group) = self.groups.get_mut(id) {
            for record in group.unstored.drain(..) {
                self.unstored.push((id.to_string(), record));
            }
        }
    }

    /// The membership records to append, oldest first (see `runtime::offsets::store_groups`);
    /// each one's outcome must come back through [`Coordinator::group_stored`].
    pub fn take_group_records(&mut self) -> Vec<store::GroupRecord> {
        self.unstored.drain(..).map(|(group, value)| store::GroupRecord { group, value: Some(value) }).collect()
    }

    /// The outcome (`error`: 0, or the Kafka error code of the failed append) of appending
    /// membership record `stored` of group `id`. Durable, it is what replay gives from now on;
    /// if it carries the assignment a SyncGroup waits for, the group turns Stable and every member
    /// gets its assignment. Failed, those members get the error and the group rebalances (Kafka
    /// does the same).
    pub fn group_stored(&mut self, id: &str, stored: &GroupMetadata, error: i16, now_ms: i64) {
        let config = self.config;
        let Some(group) = self.groups.get_mut(id) else { return };
        if error == 0 {
            group.stored = Some(stored.clone());
        }
        let waiting = group.state == GroupState::CompletingRebalance
            && group.storing.as_ref().is_some_and(|(generation, _)| *generation == stored.generation);
        if !waiting || stored.members.is_empty() {
            return;
        }
        let Some((_, mut assigned)) = group.storing.take() else { return };
        if error != 0 {
            for member in group.members.values_mut() {
                if let Some(waiter) = member.sync_waiter.take() {
                    let _ = waiter.send(SyncAnswer::error(error));
                }
            }
            group.prepare_rebalance(now_ms, &config, "the assignment could not be stored");
            return;
        }
        for member in group.members.values_mut() {
            member.assignment = assigned.remove(&member.id).unwrap_or_default();
        }
        group.state = GroupState::Stable;
        tracing::info!(group = %group.id, generation = group.generation, members = group.members.len(), "stabilized");
        let (protocol_type, protocol_name) = (group.protocol_type.clone(), group.protocol_name.clone());
        for member in group.members.values_mut() {
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncAnswer {
                    error: 0,
                    protocol_type: protocol_type.clone(),
                    protocol_name: protocol_name.clone(),
                    assignment: member.assignment.clone(),
                });
            }
        }
    }

    /// In a cluster: which `__consumer_offsets` partitions this broker leads (from the metadata
    /// image; Kafka's rule: a group's coordinator is the leader of its offsets partition).
    /// Returns the partitions newly led: their groups must be loaded again from their logs
    /// (`forget_partition`, then `apply` of every record), which followers copied meanwhile.
    pub fn set_coordinated(&mut self, partitions: i32, led: BTreeSet<i32>) -> BTreeSet<i32> {
        let before = self.coordinated.as_ref().map(|(_, led)| led.clone()).unwrap_or_default();
        let newly = led.difference(&before).copied().collect();
        self.coordinated = Some((partitions, led));
        newly
    }

    /// Forgets every group of one `__consumer_offsets` partition (of `partitions`): what this
    /// broker knew of them from an earlier time it coordinated them is stale.
    pub fn forget_partition(&mut self, partition: i32, partitions: i32) {
        let of_partition = |group: &str| crate::catalog::offsets_partition(group, partitions) == partition;
        self.groups.retain(|id, _| !of_partition(id));
        self.expiring.retain(|(group, _, _)| !of_partition(group));
        self.committing.retain(|(group, _, _), _| !of_partition(group));
        self.unstored.retain(|(group, _)| !of_partition(group));
        self.dying.retain(|group| !of_partition(group));
    }

    /// Whether this shard's memory holds the groups of `__consumer_offsets` partition
    /// `partition` (on one node: always; in a cluster: while this broker leads it).
    pub fn coordinates(&self, partition: i32) -> bool {
        self.coordinated.as_ref().is_none_or(|(_, led)| led.contains(&partition))
    }

    /// Every committed offset and the last durable membership record of the groups of
    /// `__consumer_offsets` partition `partition` (of `partitions`), as records: what replaying
    /// that partition's log gives, written again. A group's membership comes before its offsets.
    pub fn snapshot(&self, partition: i32, partitions: i32) -> Vec<store::Record> {
        self.groups
            .values()
            .filter(|group| crate::catalog::offsets_partition(&group.id, partitions) == partition)
            .flat_map(|group| {
                let membership = group.stored.as_ref().map(|stored| {
                    store::Record::Group(store::GroupRecord { group: group.id.clone(), value: Some(stored.clone()) })
                });
                let offsets = group.offsets.iter().map(|((topic, topic_partition), value)| {
                    store::Record::Offset(store::OffsetRecord {
                        group: group.id.clone(),
                        topic: topic.clone(),
                        partition: *topic_partition,
                        value: Some(value.clone()),
                    })
                });
                membership.into_iter().chain(offsets)
            })
            .collect()
    }

    /// NOT_COORDINATOR when another broker coordinates `group` (clients then ask FindCoordinator).
    pub fn coordinated_elsewhere(&self, group: &str) -> Option<i16> {
        let (partitions, led) = self.coordinated.as_ref()?;
        let partition = crate::catalog::offsets_partition(group, *partitions);
        (!led.contains(&partition)).then(|| code(ResponseError::NotCoordinator))
    }

    fn group_entry(&mut self, id: &str, now_ms: i64) -> Result<&mut Group, i16> {
        if !self.groups.contains_key(id) && self.groups.len() >= GROUPS_PER_SHARD_MAX {
            return Err(code(ResponseError::CoordinatorNotAvailable));
        }
        Ok(self.groups.entry(id.to_string()).or_insert_with(|| Group::new(id, now_ms)))
    }

    /// JoinGroup. The answer comes through the returned receiver (at once for errors and
    /// MEMBER_ID_REQUIRED, else when the join phase completes).
    pub fn join(&mut self, request: JoinRequest, now_ms: i64) -> oneshot::Receiver<JoinAnswer> {
        let (sender, receiver) = oneshot::channel();
        let config = self.config;
        let answer_now = |sender: oneshot::Sender<JoinAnswer>, answer: JoinAnswer| {
            let _ = sender.send(answer);
        };
        if request.group.is_empty() {
            answer_now(sender, JoinAnswer::error(code(ResponseError::InvalidGroupId), &request.member_id));
            return receiver;
        }
        if let Some(error) = self.coordinated_elsewhere(&request.group) {
            answer_now(sender, JoinAnswer::error(error, &request.member_id));
            return receiver;
        }
        if request.session_timeout_ms < config.min_session_timeout_ms
            || request.session_timeout_ms > config.max_session_timeout_ms
        {
            answer_now(sender, JoinAnswer::error(code(ResponseError::InvalidSessionTimeout), &request.member_id));
            return receiver;
        }
        if request.protocol_type.is_empty() || request.protocols.is_empty() {
            answer_now(sender, JoinAnswer::error(code(ResponseError::InconsistentGroupProtocol), &request.member_id));
            return receiver;
        }
        let group = match self.group_entry(&request.group, now_ms) {
            Ok(group) => group,
            Err(error) => {
                answer_now(sender, JoinAnswer::error(error, &request.member_id));
                return receiver;
            }
        };
        if !group.supports(&request.protocol_type, &request.protocols) {
            answer_now(sender, JoinAnswer::error(code(ResponseError::InconsistentGroupProtocol), &request.member_id));
            return receiver;
        }
        let mut member_id = request.member_id.clone();
        if let Some(instance) = &request.instance_id {
            // Static member: a new member id replaces (fences) the old one.
            let previous = group
                .members
                .values()
                .find(|member| member.instance_id.as_ref() == Some(instance))
                .map(|member| member.id.clone());
            if member_id.is_empty() || previous.as_ref().is_some_and(|old| *old != member_id) {
                if !member_id.is_empty() && !group.members.contains_key(&member_id) && previous.is_some() {
                    answer_now(sender, JoinAnswer::error(code(ResponseError::FencedInstanceId), &member_id));
                    return receiver;
                }
                let fresh = group.new_member_id(instance, now_ms);
                if let Some(old) = previous {
                    if let Some(mut member) = group.members.remove(&old) {
                        if let Some(waiter) = member.join_waiter.take() {
                            let _ = waiter.send(JoinAnswer::error(code(ResponseError::FencedInstanceId), &old));
                        }
                        if let Some(waiter) = member.sync_waiter.take() {
                            let _ = waiter.send(SyncAnswer::error(code(ResponseError::FencedInstanceId)));
                        }
                        member.id = fresh.clone();
                        if group.leader.as_deref() == Some(old.as_str()) {
                            group.leader = Some(fresh.clone());
                        }
                        group.members.insert(fresh.clone(), member);
                    }
                }
                member_id = fresh;
            }
        } else if member_id.is_empty() {
            let fresh = group.new_member_id(&request.client_id, now_ms);
            if request.require_known_member_id {
                group.pending_members.insert(fresh.clone(), now_ms + i64::from(request.session_timeout_ms));
                answer_now(sender, JoinAnswer::error(code(ResponseError::MemberIdRequired), &fresh));
                return receiver;
            }
            member_id = fresh;
        } else if !group.members.contains_key(&member_id) && !group.pending_members.contains_key(&member_id) {
            answer_now(sender, JoinAnswer::error(code(ResponseError::UnknownMemberId), &member_id));
            return receiver;
        }
        group.pending_members.remove(&member_id);
        if !group.members.contains_key(&member_id) && group.members.len() >= GROUP_MEMBERS_MAX {
            answer_now(sender, JoinAnswer::error(code(ResponseError::GroupMaxSizeReached), &member_id));
            return receiver;
        }
        let member = group.members.entry(member_id.clone()).or_insert_with(|| Member {
            id: member_id.clone(),
            instance_id: request.instance_id.clone(),
            client_id: request.client_id.clone(),
            client_host: request.client_host.clone(),
            session_timeout_ms: request.session_timeout_ms,
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            protocols: Vec::new(),
            assignment: Bytes::new(),
            last_heartbeat_ms: now_ms,
            join_waiter: None,
            sync_waiter: None,
            joined: false,
            synced: false,
        });
        member.protocols = request.protocols.clone();
        member.session_timeout_ms = request.session_timeout_ms;
        member.rebalance_timeout_ms = request.rebalance_timeout_ms;
        member.last_heartbeat_ms = now_ms;
        if let Some(old) = member.join_waiter.replace(sender) {
            let _ = old.send(JoinAnswer::error(code(ResponseError::UnknownMemberId), &member_id));
        }
        member.joined = true;
        group.protocol_type = Some(request.protocol_type.clone());
        if group.state != GroupState::PreparingRebalance {
            group.prepare_rebalance(now_ms, &config, "a member joined or rejoined");
        }
        group.maybe_complete_join(now_ms, &config);
        self.collect(&request.group);
        receiver
    }

    pub fn sync(
        &mut self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now_ms: i64,
    ) -> oneshot::Receiver<SyncAnswer> {
        let (sender, receiver) = oneshot::channel();
        if let Some(error) = self.coordinated_elsewhere(group_id) {
            let _ = sender.send(SyncAnswer::error(error));
            return receiver;
        }
        let Some(group) = self.groups.get_mut(group_id) else {
            let _ = sender.send(SyncAnswer::error(code(ResponseError::UnknownMemberId)));
            return receiver;
        };
        if let Err(error) = group.member_for(member_id, instance_id) {
            let _ = sender.send(SyncAnswer::error(error));
            return receiver;
        }
        if generation != group.generation {
            let _ = sender.send(SyncAnswer::error(code(ResponseError::IllegalGeneration)));
            return receiver;
        }
        match group.state {
            GroupState::Empty => {
                let _ = sender.send(SyncAnswer::error(code(ResponseError::UnknownMemberId)));
            }
            GroupState::PreparingRebalance => {
                let _ = sender.send(SyncAnswer::error(code(ResponseError::RebalanceInProgress)));
            }
            GroupState::Stable => {
                let member = &group.members[member_id];
                let _ = sender.send(SyncAnswer {
                    error: 0,
                    protocol_type: group.protocol_type.clone(),
                    protocol_name: group.protocol_name.clone(),
                    assignment: member.assignment.clone(),
                });
            }
            GroupState::CompletingRebalance => {
                if let Some(member) = group.members.get_mut(member_id) {
                    member.last_heartbeat_ms = now_ms;
                    member.synced = true;
                    if let Some(old) = member.sync_waiter.replace(sender) {
                        let _ = old.send(SyncAnswer::error(code(ResponseError::RebalanceInProgress)));
                    }
                }
                if group.leader.as_deref() == Some(member_id) && group.storing.is_none() {
                    // Handed out once its record is durable ([`Coordinator::group_stored`]).
                    let assigned: BTreeMap<String, Bytes> =
                        assignments.into_iter().filter(|(member, _)| group.members.contains_key(member)).collect();
                    let record = group.metadata(&assigned, now_ms);
                    group.storing = Some((group.generation, assigned));
                    group.unstored.push(record);
                }
            }
        }
        self.collect(group_id);
        receiver
    }

    pub fn heartbeat(
        &mut self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now_ms: i64,
    ) -> i16 {
        if let Some(error) = self.coordinated_elsewhere(group_id) {
            return error;
        }
        let Some(group) = self.groups.get_mut(group_id) else {
            return code(ResponseError::UnknownMemberId);
        };
        if let Err(error) = group.member_for(member_id, instance_id) {
            return error;
        }
        if group.state == GroupState::Empty {
            return code(ResponseError::UnknownMemberId);
        }
        if generation != group.generation {
            return code(ResponseError::IllegalGeneration);
        }
        if let Some(member) = group.members.get_mut(member_id) {
            member.last_heartbeat_ms = now_ms;
        }
        match group.state {
            GroupState::PreparingRebalance => code(ResponseError::RebalanceInProgress),
            _ => 0,
        }
    }

    /// LeaveGroup of one member (by member id, or by instance id when the id is empty).
    pub fn leave(&mut self, group_id: &str, member_id: &str, instance_id: Option<&str>, now_ms: i64) -> i16 {
        if let Some(error) = self.coordinated_elsewhere(group_id) {
            return error;
        }
        let config = self.config;
        let Some(group) = self.groups.get_mut(group_id) else {
            return code(ResponseError::UnknownMemberId);
        };
        let id = match instance_id {
            Some(instance) => {
                let Some(member) =
                    group.members.values().find(|member| member.instance_id.as_deref() == Some(instance))
                else {
                    return code(ResponseError::UnknownMemberId);
                };
                if !member_id.is_empty() && member.id != member_id {
                    return code(ResponseError::FencedInstanceId);
                }
                member.id.clone()
            }
            None => {
                if group.pending_members.remove(member_id).is_some() {
                    return 0;
                }
                if !group.members.contains_key(member_id) {
                    return code(ResponseError::UnknownMemberId);
                }
                member_id.to_string()
            }
        };
        tracing::info!(group = %group.id, member = %id, "member left");
        group.member_gone(&id, now_ms, &config, "a member left");
        self.collect(group_id);
        0
    }

    /// Whether an OffsetCommit from this member and generation may commit now. A member's
    /// commit to a group that does not exist gets `unknown_group` (Kafka answers
    /// ILLEGAL_GENERATION up to OffsetCommit v8 and GROUP_ID_NOT_FOUND from v9).
    pub fn check_commit(
        &mut self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now_ms: i64,
        unknown_group: i16,
    ) -> CommitCheck {
        if let Some(error) = self.coordinated_elsewhere(group_id) {
            return CommitCheck::Refused(error);
        }
        if generation < 0 && member_id.is_empty() {
            // A simple (admin or manual-assignment) commit: only while nobody is a member.
            return match self.group_entry(group_id, now_ms) {
                Ok(group) if group.state == GroupState::Empty => CommitCheck::Allowed,
                Ok(_) => CommitCheck::Refused(code(ResponseError::UnknownMemberId)),
                Err(error) => CommitCheck::Refused(error),
            };
        }
        let Some(group) = self.groups.get(group_id) else {
            return CommitCheck::Refused(unknown_group);
        };
        if let Err(error) = group.member_for(member_id, instance_id) {
            return CommitCheck::Refused(error);
        }
        if generation != group.generation {
            return CommitCheck::Refused(code(ResponseError::IllegalGeneration));
        }
        match group.state {
            GroupState::CompletingRebalance => CommitCheck::Refused(code(ResponseError::RebalanceInProgress)),
            GroupState::Empty => CommitCheck::Refused(code(ResponseError::UnknownMemberId)),
            GroupState::Stable | GroupState::PreparingRebalance => {
                if let Some(member) = self.groups.get_mut(group_id).and_then(|group| group.members.get_mut(member_id)) {
                    member.last_heartbeat_ms = now_ms;
                }
                CommitCheck::Allowed
            }
        }
    }

    /// Applies a replayed record of the offsets log.
    pub fn apply(&mut self, record: store::Record, now_ms: i64) {
        match record {
            store::Record::Offset(record) => self.apply_offset(record, now_ms),
            store::Record::Group(record) => self.load(record, now_ms),
        }
    }

    /// Loads a replayed membership record: with members, the group is Stable at the stored
    /// generation, protocol, leader and assignments, each member's session starting now; without,
    /// it is Empty since the record's time; a tombstone forgets the group. What memory held of
    /// the group's members before is replaced (its offsets stay).
    fn load(&mut self, record: store::GroupRecord, now_ms: i64) {
        let Some(value) = record.value else {
            self.groups.remove(&record.group);
            return;
        };
        let Ok(group) = self.group_entry(&record.group, now_ms) else { return };
        // Anyone still waiting gets COORDINATOR_NOT_AVAILABLE from the dropped sender.
        group.members.clear();
        group.pending_members.clear();
        group.storing = None;
        group.unstored.clear();
        group.generation = value.generation;
        if value.members.is_empty() {
            group.state = GroupState::Empty;
            group.protocol_type = None;
            group.protocol_name = None;
            group.leader = None;
            group.empty_since_ms = if value.state_timestamp_ms >= 0 { value.state_timestamp_ms } else { now_ms };
        } else {
            group.state = GroupState::Stable;
            group.protocol_type = Some(value.protocol_type.clone());
            group.protocol_name = value.protocol.clone();
            let protocol = value.protocol.clone().unwrap_or_default();
            for stored in value.members.iter().take(GROUP_MEMBERS_MAX) {
                group.members.insert(
                    stored.member_id.clone(),
                    Member {
                        id: stored.member_id.clone(),
                        instance_id: stored.instance_id.clone(),
                        client_id: stored.client_id.clone(),
                        client_host: stored.client_host.clone(),
                        session_timeout_ms: stored.session_timeout_ms,
                        rebalance_timeout_ms: stored.rebalance_timeout_ms,
                        protocols: vec![(protocol.clone(), stored.subscription.clone())],
                        assignment: stored.assignment.clone(),
                        last_heartbeat_ms: now_ms,
                        join_waiter: None,
                        sync_waiter: None,
                        joined: false,
                        synced: true,
                    },
                );
            }
            group.leader = value.leader.clone().filter(|leader| group.members.contains_key(leader));
        }
        group.stored = Some(value);
    }

    /// Applies a stored (or replayed) offset record.
    pub fn apply_offset(&mut self, record: store::OffsetRecord, now_ms: i64) {
        let key = (record.topic, record.partition);
        match record.value {
            Some(value) => {
                if let Ok(group) = self.group_entry(&record.group, now_ms) {
                    group.offsets.insert(key, value);
                }
            }
            None => {
                if let Some(group) = self.groups.get_mut(&record.group) {
                    group.offsets.remove(&key);
                    if group.state == GroupState::Empty && group.offsets.is_empty() && group.members.is_empty() {
                        self.groups.remove(&record.group);
                    }
                }
            }
        }
    }

    /// Periodic work: expired sessions, ended join and sync phases, expired pending member ids.
    pub fn tick(&mut self, now_ms: i64) {
        let config = self.config;
        for group in self.groups.values_mut() {
            group.pending_members.retain(|_, deadline| *deadline > now_ms);
            match group.state {
                GroupState::PreparingRebalance => {
                    // As in Kafka, a member that has not rejoined yet is still held to its
                    // session: one that stopped heartbeating (gone while the broker restarted, say)
                    // does not hold the join phase for the whole rebalance timeout.
                    let expired: Vec<String> = group
                        .members
                        .values()
                        .filter(|member| member.join_waiter.is_none())
                        .filter(|member| member.last_heartbeat_ms + i64::from(member.session_timeout_ms) < now_ms)
                        .map(|member| member.id.clone())
                        .collect();
                    for id in expired {
                        tracing::info!(group = %group.id, member = %id, "session expired while rebalancing");
                        group.remove_member(&id);
                    }
                    group.maybe_complete_join(now_ms, &config);
                }
                GroupState::CompletingRebalance if now_ms >= group.sync_deadline_ms => {
                    // The leader never sent the assignment, or members never synced: drop them.
                    let unsynced: Vec<String> = group
                        .members
                        .values()
                        .filter(|member| !member.synced || group.leader.as_deref() == Some(member.id.as_str()))
                        .map(|member| member.id.clone())
                        .collect();
                    for id in unsynced {
                        tracing::info!(group = %group.id, member = %id, "removed: did not sync in time");
                        group.member_gone(&id, now_ms, &config, "a member did not sync in time");
                    }
                }
                GroupState::Stable | GroupState::CompletingRebalance => {
                    let expired: Vec<String> = group
                        .members
                        .values()
                        .filter(|member| member.last_heartbeat_ms + i64::from(member.session_timeout_ms) < now_ms)
                        .map(|member| member.id.clone())
                        .collect();
                    for id in expired {
                        tracing::info!(group = %group.id, member = %id, "session expired");
                        group.member_gone(&id, now_ms, &config, "a member's session expired");
                    }
                }
                GroupState::Empty => {}
            }
            self.unstored.extend(group.unstored.drain(..).map(|record| (group.id.clone(), record)));
        }
    }

    /// Empty groups with no committed offset and no commit in flight, not already being
    /// deleted: Kafka's offsets cleanup deletes them (the group turns Dead and its membership
    /// record is tombstoned), so a group that never committed does not stay forever.
    pub fn dead_groups(&self) -> Vec<String> {
        let committing: BTreeSet<&str> = self.committing.keys().map(|(group, _, _)| group.as_str()).collect();
        self.groups
            .values()
            .filter(|group| group.state == GroupState::Empty && group.offsets.is_empty() && group.members.is_empty())
            .filter(|group| !self.dying.contains(&group.id) && !committing.contains(group.id.as_str()))
            .filter(|group| self.coordinated_elsewhere(&group.id).is_none())
            .map(|group| group.id.clone())
            .collect()
    }

    /// Offsets of Empty groups older than `offsets.retention.minutes` (from when the group
    /// became empty or the offset was committed, whichever is later): to be tombstoned. Those
    /// already being expired (`expiring`) or with a commit in flight (`committing`) are left out.
    pub fn expired_offsets(&self, now_ms: i64) -> Vec<(String, String, i32)> {
        let retention = self.config.offsets_retention_ms;
        if retention < 0 {
            return Vec::new();
        }
        let mut out = Vec::new();
        for group in self.groups.values().filter(|group| group.state == GroupState::Empty) {
            for ((topic, partition), value) in &group.offsets {
                if value.commit_timestamp_ms.max(group.empty_since_ms) + retention < now_ms {
                    let key = (group.id.clone(), topic.clone(), *partition);
                    if !self.expiring.contains(&key) && !self.committing.contains_key(&key) {
                        out.push(key);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ILLEGAL: i16 = 22; // ILLEGAL_GENERATION

    const CONFIG: GroupConfig = GroupConfig {
        initial_rebalance_delay_ms: 0,
        min_session_timeout_ms: 6000,
        max_session_timeout_ms: 1_800_000,
        offsets_retention_ms: 7 * 24 * 3600 * 1000,
    };

    fn join(member_id: &str) -> JoinRequest {
        JoinRequest {
            group: "g".into(),
            member_id: member_id.into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: vec![
                ("range".into(), Bytes::from_static(b"r")),
                ("cooperative-sticky".into(), Bytes::from_static(b"c")),
            ],
            require_known_member_id: true,
        }
    }

    fn answer<T: Clone>(receiver: &mut oneshot::Receiver<T>) -> Option<T> {
        receiver.try_recv().ok().flatten()
    }

    /// What `runtime::offsets::store_groups` does, every append succeeding: the queued
    /// membership records, in order.
    fn store(coordinator: &mut Coordinator, now_ms: i64) -> Vec<store::GroupRecord> {
        let records = coordinator.take_group_records();
        for record in &records {
            let value = record.value.as_ref().expect("the queue holds values");
            coordinator.group_stored(&record.group, value, 0, now_ms);
        }
        records
    }

    #[test]
    fn two_members_join_sync_and_one_expires() {
        let mut coordinator = Coordinator::new(CONFIG);
        let mut first = coordinator.join(join(""), 0);
        let first_answer = answer(&mut first).expect("member id required at once");
        assert_eq!(first_answer.error, ResponseError::MemberIdRequired.code());
        let a = first_answer.member_id;
        let mut joined_a = coordinator.join(join(&a), 1);
        let answer_a = answer(&mut joined_a).expect("alone: completes at once");
        assert_eq!((answer_a.error, answer_a.generation, answer_a.leader.as_str()), (0, 1, a.as_str()));
        assert_eq!(answer_a.members.len(), 1);
        assert_eq!(answer_a.protocol_name.as_deref(), Some("range"));
        let mut synced_a = coordinator.sync("g", 1, &a, None, vec![(a.clone(), Bytes::from_static(b"all"))], 2);
        assert!(answer(&mut synced_a).is_none(), "answered once the membership record is durable");
        assert_eq!(coordinator.groups["g"].state, GroupState::CompletingRebalance);
        let stored = store(&mut coordinator, 2);
        assert_eq!(stored.len(), 1);
        let value = stored[0].value.as_ref().expect("value");
        assert_eq!((value.generation, value.leader.as_deref(), value.members.len()), (1, Some(a.as_str()), 1));
        assert_eq!(value.members[0].assignment, Bytes::from_static(b"all"));
        assert_eq!(answer(&mut synced_a).expect("leader sync").assignment, Bytes::from_static(b"all"));
        assert_eq!(coordinator.groups["g"].state, GroupState::Stable);

        // A second member: the first learns of the rebalance by heartbeat, rejoins.
        let b = answer(&mut coordinator.join(join(""), 3)).expect("id").member_id;
        let mut joined_b = coordinator.join(join(&b), 4);
        assert!(answer(&mut joined_b).is_none(), "waits for the first member to rejoin");
        assert_eq!(coordinator.heartbeat("g", 1, &a, None, 5), ResponseError::RebalanceInProgress.code());
        let mut rejoined_a = coordinator.join(join(&a), 6);
        let (answer_a, answer_b) = (answer(&mut rejoined_a).expect("a"), answer(&mut joined_b).expect("b"));
        assert_eq!((answer_a.generation, answer_b.generation), (2, 2));
        assert_eq!(answer_a.members.len(), 2, "the leader gets the roster");
        assert!(answer_b.members.is_empty(), "followers do not");
        let mut synced_b = coordinator.sync("g", 2, &b, None, vec![], 7);
        assert!(answer(&mut synced_b).is_none(), "a follower waits for the leader");
        let mut synced_a = coordinator.sync(
            "g",
            2,
            &a,
            None,
            vec![(a.clone(), Bytes::from_static(b"p0")), (b.clone(), Bytes::from_static(b"p1"))],
            8,
        );
        assert_eq!(store(&mut coordinator, 8).len(), 1);
        assert_eq!(answer(&mut synced_b).expect("b").assignment, Bytes::from_static(b"p1"));
        assert_eq!(answer(&mut synced_a).expect("a").assignment, Bytes::from_static(b"p0"));

        // Wrong generation, unknown member.
        assert_eq!(coordinator.heartbeat("g", 1, &a, None, 9), ResponseError::IllegalGeneration.code());
        assert_eq!(coordinator.heartbeat("g", 2, "nobody", None, 9), ResponseError::UnknownMemberId.code());
        assert_eq!(
            coordinator.check_commit("g", 2, "nobody", None, 9, ILLEGAL),
            CommitCheck::Refused(ResponseError::UnknownMemberId.code())
        );
        assert_eq!(coordinator.check_commit("g", 2, &a, None, 9, ILLEGAL), CommitCheck::Allowed);

        // b stops heartbeating: after its session timeout a rebalances alone.
        assert_eq!(coordinator.heartbeat("g", 2, &a, None, 9_000), 0);
        coordinator.tick(10_010);
        assert_eq!(coordinator.groups["g"].state, GroupState::PreparingRebalance);
        assert!(!coordinator.groups["g"].members.contains_key(&b));
        let mut alone = coordinator.join(join(&a), 10_020);
        assert_eq!(answer(&mut alone).expect("a alone").generation, 3);
    }

    #[test]
    fn leaving_empties_the_group_and_simple_commits_need_an_empty_group() {
        let mut coordinator = Coordinator::new(CONFIG);
        let a = one_member_joined(&mut coordinator);
        assert_eq!(
            coordinator.check_commit("g", -1, "", None, 1, ILLEGAL),
            CommitCheck::Refused(ResponseError::UnknownMemberId.code())
        );
        assert_eq!(coordinator.leave("g", &a, None, 2), 0);
        assert_eq!(coordinator.groups["g"].state, GroupState::Empty);
        assert_eq!(coordinator.check_commit("g", -1, "", None, 3, ILLEGAL), CommitCheck::Allowed);
        assert_eq!(coordinator.leave("g", &a, None, 4), ResponseError::UnknownMemberId.code());
        assert_eq!(
            coordinator.check_commit("nope", 3, "m", None, 5, ILLEGAL),
            CommitCheck::Refused(ResponseError::IllegalGeneration.code())
        );
    }

    #[test]
    fn protocols_must_overlap_and_sessions_be_in_bounds() {
        let mut coordinator = Coordinator::new(CONFIG);
        let mut request = join("");
        request.require_known_member_id = false;
        let _ = answer(&mut coordinator.join(request.clone(), 0)).expect("joined");
        let mut other = request.clone();
        other.protocols = vec![("roundrobin".into(), Bytes::new())];
        assert_eq!(
            answer(&mut coordinator.join(other, 1)).expect("refused").error,
            ResponseError::InconsistentGroupProtocol.code()
        );
        let mut short = request;
        short.session_timeout_ms = 10;
        assert_eq!(
            answer(&mut coordinator.join(short, 1)).expect("refused").error,
            ResponseError::InvalidSessionTimeout.code()
        );
    }

    #[test]
    fn offsets_of_empty_groups_expire_after_the_retention() {
        let mut coordinator = Coordinator::new(CONFIG);
        let record = |group: &str, at: i64| store::OffsetRecord {
            group: group.into(),
            topic: "t".into(),
            partition: 0,
            value: Some(CommittedOffset {
                offset: 5,
                leader_epoch: 0,
                metadata: String::new(),
                commit_timestamp_ms: at,
            }),
        };
        coordinator.apply_offset(record("old", 0), 0);
        coordinator.apply_offset(record("fresh", 0), 0);
        // "fresh" has a member: an active group's offsets never expire.
        let mut request = join("");
        request.group = "fresh".into();
        request.require_known_member_id = false;
        let _ = answer(&mut coordinator.join(request, 1)).expect("joined");
        let week = CONFIG.offsets_retention_ms;
        assert!(coordinator.expired_offsets(week).is_empty(), "not older than the retention yet");
        assert_eq!(coordinator.expired_offsets(week + 2), vec![("old".to_string(), "t".to_string(), 0)]);
        coordinator.expiring.insert(("old".to_string(), "t".to_string(), 0));
        assert!(coordinator.expired_offsets(week + 2).is_empty(), "an expiry in flight is not repeated");
        coordinator.expiring.clear();
        coordinator.committing.insert(("old".to_string(), "t".to_string(), 0), 1);
        assert!(coordinator.expired_offsets(week + 2).is_empty(), "a key with a commit in flight is not expired");
        coordinator.committing.clear();
        coordinator.apply_offset(
            store::OffsetRecord { group: "old".into(), topic: "t".into(), partition: 0, value: None },
            week + 2,
        );
        assert!(!coordinator.groups.contains_key("old"), "a tombstone removes the last offset and the empty group");
    }

    #[test]
    fn static_members_rejoin_under_a_new_id_and_fence_the_old() {
        let mut coordinator = Coordinator::new(CONFIG);
        let mut request = join("");
        request.instance_id = Some("instance-1".into());
        let first = answer(&mut coordinator.join(request.clone(), 0)).expect("static joins at once");
        assert_eq!(first.error, 0);
        let second = answer(&mut coordinator.join(request, 1)).expect("rejoin");
        assert_ne!(first.member_id, second.member_id);
        assert_eq!(
            coordinator.heartbeat("g", second.generation, &first.member_id, Some("instance-1"), 2),
            ResponseError::FencedInstanceId.code()
        );
    }

    /// A lone member joins group "g" at time 0 in one JoinGroup (no known member id required);
    /// its id.
    fn one_member_joined(coordinator: &mut Coordinator) -> String {
        let mut request = join("");
        request.require_known_member_id = false;
        answer(&mut coordinator.join(request, 0)).expect("joined").member_id
    }

    /// Members a (the leader) and b join group "g" at time 0; their ids and the generation they
    /// joined, before either syncs.
    fn two_members_joined(coordinator: &mut Coordinator) -> (String, String, i32) {
        let a = answer(&mut coordinator.join(join(""), 0)).expect("id").member_id;
        assert_eq!(answer(&mut coordinator.join(join(&a), 0)).expect("alone").generation, 1);
        let b = answer(&mut coordinator.join(join(""), 0)).expect("id").member_id;
        let mut joined_b = coordinator.join(join(&b), 0);
        let mut joined_a = coordinator.join(join(&a), 0);
        let generation = answer(&mut joined_a).expect("a").generation;
        assert_eq!(answer(&mut joined_b).expect("b").generation, generation);
        (a, b, generation)
    }

    /// A Stable group, written and replayed into a fresh coordinator (a broker restart), comes
    /// back Stable at the same generation: its members heartbeat and commit with their old ids
    /// and generation; one that does not come back expires and the others rebalance.
    #[test]
    fn membership_survives_a_restart_and_absent_members_expire() {
        let mut coordinator = Coordinator::new(CONFIG);
        let (a, b, generation) = two_members_joined(&mut coordinator);
        let assignments = vec![(a.clone(), Bytes::from_static(b"p0")), (b.clone(), Bytes::from_static(b"p1"))];
        let mut synced_a = coordinator.sync("g", generation, &a, None, assignments, 1);
        let mut synced_b = coordinator.sync("g", generation, &b, None, vec![], 1);
        let records = store(&mut coordinator, 1);
        assert_eq!(coordinator.groups["g"].state, GroupState::Stable);
        assert_eq!(answer(&mut synced_a).expect("a").assignment, Bytes::from_static(b"p0"));
        assert_eq!(answer(&mut synced_b).expect("b").assignment, Bytes::from_static(b"p1"));

        // The log holds the record; a new coordinator replays it at time 50,000.
        let mut restarted = Coordinator::new(CONFIG);
        for record in records {
            restarted.apply(store::Record::Group(record), 50_000);
        }
        let group = &restarted.groups["g"];
        assert_eq!((group.state, group.generation), (GroupState::Stable, generation));
        assert_eq!((group.leader.as_deref(), group.protocol_name.as_deref()), (Some(a.as_str()), Some("range")));
        assert_eq!(group.members[&b].assignment, Bytes::from_static(b"p1"));
        assert_eq!(restarted.heartbeat("g", generation, &a, None, 55_000), 0, "no rejoin needed");
        assert_eq!(restarted.check_commit("g", generation, &a, None, 55_000, ILLEGAL), CommitCheck::Allowed);
        let mut resynced = restarted.sync("g", generation, &b, None, vec![], 55_000);
        assert_eq!(answer(&mut resynced).expect("stable").assignment, Bytes::from_static(b"p1"));

        // Sessions started at load (10 s): b never heartbeats, a does.
        restarted.tick(59_000);
        assert_eq!(restarted.groups["g"].state, GroupState::Stable, "nobody expired yet");
        assert_eq!(restarted.heartbeat("g", generation, &a, None, 59_000), 0);
        restarted.tick(60_001);
        assert_eq!(restarted.groups["g"].state, GroupState::PreparingRebalance, "b expired");
        assert!(!restarted.groups["g"].members.contains_key(&b));
        assert_eq!(restarted.heartbeat("g", generation, &a, None, 60_002), ResponseError::RebalanceInProgress.code());
        let mut rejoined = restarted.join(join(&a), 60_003);
        assert_eq!(answer(&mut rejoined).expect("alone").generation, generation + 1);
    }

    /// A member that rejoins at once after a restart does not wait the whole rebalance timeout
    /// for one that never comes back: that one's session (from load time) expires, as in Kafka.
    #[test]
    fn a_rejoin_after_a_restart_waits_only_for_the_absent_members_session() {
        let mut coordinator = Coordinator::new(CONFIG);
        let (a, b, generation) = two_members_joined(&mut coordinator);
        let mut synced = coordinator.sync("g", generation, &a, None, vec![], 1);
        let records = store(&mut coordinator, 1);
        assert_eq!(answer(&mut synced).expect("synced").error, 0);
        let mut restarted = Coordinator::new(CONFIG);
        for record in records {
            restarted.apply(store::Record::Group(record), 50_000);
        }
        // a rejoins at once (its client's own reasons); b never comes back.
        let mut rejoined = restarted.join(join(&a), 50_001);
        restarted.tick(55_000);
        assert!(answer(&mut rejoined).is_none(), "b's session (10 s from the load) is not over");
        restarted.tick(60_001);
        assert_eq!(
            answer(&mut rejoined).expect("a alone, long before the 30 s rebalance timeout").generation,
            generation + 1
        );
        assert!(!restarted.groups["g"].members.contains_key(&b));
    }

    /// Empty groups are recorded (generation kept), a tombstone forgets the group, and the
    /// snapshot of a clean holds each group's last durable membership before its offsets.
    #[test]
    fn empty_groups_are_recorded_and_snapshots_keep_membership() {
        let mut coordinator = Coordinator::new(CONFIG);
        let a = one_member_joined(&mut coordinator);
        let mut synced = coordinator.sync("g", 1, &a, None, vec![(a.clone(), Bytes::from_static(b"x"))], 1);
        assert_eq!(store(&mut coordinator, 1).len(), 1);
        assert_eq!(answer(&mut synced).expect("synced").error, 0);
        coordinator.apply_offset(
            store::OffsetRecord {
                group: "g".into(),
                topic: "t".into(),
                partition: 0,
                value: Some(CommittedOffset {
                    offset: 5,
                    leader_epoch: 0,
                    metadata: String::new(),
                    commit_timestamp_ms: 1,
                }),
            },
            1,
        );
        let snapshot = coordinator.snapshot(0, 1);
        assert!(
            matches!(&snapshot[0], store::Record::Group(record) if record.value.as_ref().is_some_and(|value| value.members.len() == 1))
        );
        assert!(matches!(&snapshot[1], store::Record::Offset(_)));

        assert_eq!(coordinator.leave("g", &a, None, 2), 0);
        let empty = store(&mut coordinator, 2);
        let value = empty[0].value.as_ref().expect("value");
        assert_eq!((value.generation, value.members.len(), value.protocol_type.as_str()), (2, 0, "consumer"));
        let mut restarted = Coordinator::new(CONFIG);
        for record in coordinator.snapshot(0, 1) {
            restarted.apply(record, 10);
        }
        let group = &restarted.groups["g"];
        assert_eq!((group.state, group.generation, group.offsets.len()), (GroupState::Empty, 2, 1));
        assert_eq!(group.empty_since_ms, 2, "offset retention counts from when it became Empty");
        restarted.apply(store::Record::Group(store::GroupRecord { group: "g".into(), value: None }), 11);
        assert!(!restarted.groups.contains_key("g"), "a tombstone forgets the group");
    }

    /// A failed append of the assignment answers the waiting members with its error and the
    /// group rebalances, as in Kafka.
    #[test]
    fn a_failed_membership_append_fails_the_sync() {
        let mut coordinator = Coordinator::new(CONFIG);
        let a = one_member_joined(&mut coordinator);
        let mut synced = coordinator.sync("g", 1, &a, None, vec![(a.clone(), Bytes::from_static(b"x"))], 1);
        let records = coordinator.take_group_records();
        let value = records[0].value.as_ref().expect("value");
        let not_coordinator = ResponseError::NotCoordinator.code();
        coordinator.group_stored("g", value, not_coordinator, 2);
        assert_eq!(answer(&mut synced).expect("answered").error, not_coordinator);
        assert_eq!(coordinator.groups["g"].state, GroupState::PreparingRebalance);
        assert!(coordinator.groups["g"].stored.is_none(), "nothing durable to replay");
    }
}
