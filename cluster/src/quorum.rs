//! One member of the metadata quorum: the Raft node (raft-rs `RawNode`, sans-I/O), its durable
//! log, the committed [`MetadataImage`] it applies the log into, and, while it leads, the active
//! [`Controller`].
//!
//! The caller owns time and I/O: it calls [`Quorum::tick`] every tick, hands in messages from
//! peers ([`Quorum::step`]) and controller requests ([`Quorum::request`]), then calls
//! [`Quorum::advance`], which persists (one sync per Raft `Ready`), applies what committed, and
//! returns the messages to send, the replies now due and the new image. The deterministic
//! simulation (`tests/quorum_sim.rs`) and the broker's controller thread drive it the same way.
//!
//! Rules kept here:
//! - A node acts as controller only once it leads *and* has applied every entry of the log it
//!   inherited (the entry Raft appends on election is committed): its image is then the whole
//!   committed state (KRaft waits the same way).
//! - A reply is sent only once the records it depends on are committed, and only if the entry
//!   committed at that index is the one proposed (same term); otherwise the request fails with
//!   [`RequestError::NotController`] and the client retries.
//! - Leadership lost: the speculative controller state and every waiting reply are dropped.
//! - Every `snapshot_entries` applied entries the image is written as a snapshot and the log
//!   below it is compacted.
//!
//! Must not know: sockets, threads, clocks (time comes in as `now_ms`), the Kafka protocol.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;

use raft::prelude::{ConfState, Entry, EntryType, HardState, Message, MessageType, Snapshot};
use raft::{ProgressState, RawNode, SnapshotStatus, StateRole, Storage};

use crate::controller::{
    Controller, ControllerConfig, ControllerError, Election, Heartbeat, HeartbeatReply, IsrChange, IsrChangeOutcome,
    NewTopic, Reassignment, ReassignmentOutcome, Registration,
};
use crate::image::MetadataImage;
use crate::records::{decode_batch, encode_batch, MetadataRecord};
use crate::rpc::{QuorumStatus, ReplicaProgress};
use crate::types::{BrokerId, ClusterId, PartitionIndex};
use crate::ClusterError;

/// What the driver needs from a durable Raft log beyond raft-rs' read-only `Storage`: one
/// [`DurableLog::sync`] makes every write before it durable.
pub trait DurableLog: Storage {
    fn append(&mut self, entries: &[Entry]) -> Result<(), ClusterError>;
    fn set_hard_state(&mut self, hard_state: &HardState) -> Result<(), ClusterError>;
    /// A commit-index-only change: written, but need not be synced (Raft recovers it).
    fn set_commit(&mut self, commit: u64) -> Result<(), ClusterError>;
    fn set_conf_state(&mut self, conf_state: &ConfState) -> Result<(), ClusterError>;
    /// A snapshot from the leader replaces the log.
    fn apply_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), ClusterError>;
    /// Writes a snapshot of the state machine at `index` (applied) and drops the log below it.
    fn compact(&mut self, index: u64, data: Vec<u8>) -> Result<(), ClusterError>;
    fn sync(&mut self) -> Result<(), ClusterError>;
}

/// A request to the active controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControllerRequest {
    Register(Registration),
    Heartbeat(Heartbeat),
    CreateTopic(NewTopic),
    CreatePartitions {
        name: String,
        count: i32,
        assignment: Vec<Vec<BrokerId>>,
    },
    DeleteTopic(String),
    /// Replace a broker's dynamic configs (`None`: the cluster-wide default), checked by the
    /// broker that asks.
    AlterBrokerConfigs {
        broker: Option<BrokerId>,
        configs: BTreeMap<String, String>,
    },
    /// Replace a topic's own configs (checked by the broker that asks).
    AlterTopicConfigs {
        name: String,
        configs: BTreeMap<String, String>,
    },
    AllocateProducerIds {
        broker: BrokerId,
        epoch: u64,
    },
    /// None: every partition whose preferred leader can take over.
    ElectPreferred(Option<Vec<(String, PartitionIndex)>>),
    /// Unclean elections (ElectLeaders type UNCLEAN) for the named partitions.
    ElectUnclean(Vec<(String, PartitionIndex)>),
    /// Every check of a creation, nothing committed (CreateTopics' `validate_only`).
    ValidateTopic(NewTopic),
    /// ISR changes from the leader `broker` (Kafka's AlterPartition).
    AlterPartition {
        broker: BrokerId,
        epoch: u64,
        changes: Vec<IsrChange>,
    },
    /// Reassignments to start, replace or cancel (Kafka's AlterPartitionReassignments).
    AlterReassignments {
        reassignments: Vec<Reassignment>,
        allow_factor_change: bool,
    },
}

/// The active controller's answer, sent once its records are committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControllerReply {
    Registered { epoch: u64 },
    Heartbeat(HeartbeatReply),
    Done,
    ProducerIds(Range<u64>),
    Elections(Vec<Election>),
    IsrChanges(Vec<IsrChangeOutcome>),
    Reassignments(Vec<ReassignmentOutcome>),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// This node is not the active controller (any more); `leader` is the quorum leader it knows.
    #[error("not the active controller (the quorum leader is {leader:?})")]
    NotController { leader: Option<BrokerId> },
    #[error(transparent)]
    Refused(#[from] ControllerError),
}

/// A reply for the caller's request `token`.
pub type Reply = (u64, Result<ControllerReply, RequestError>);

/// Settings of one quorum member.
#[derive(Clone, Debug)]
pub struct QuorumConfig {
    pub node: BrokerId,
    /// `controller.quorum.voters`: fixed membership.
    pub voters: Vec<BrokerId>,
    /// Election timeout in ticks: randomized in `[election_tick, 2 * election_tick)` unless
    /// `fixed_election_tick` (the simulation's determinism comes from its own seeded schedule).
    pub election_tick: usize,
    pub fixed_election_tick: bool,
    pub heartbeat_tick: usize,
    /// A snapshot is taken every this many applied entries.
    pub snapshot_entries: u64,
    pub controller: ControllerConfig,
    /// The id this node proposes if it becomes the first active controller of a new cluster
    /// (random, chosen by the caller; the simulation's are seeded).
    pub new_cluster_id: ClusterId,
}

/// A reply waiting for its entry to commit.
#[derive(Debug)]
struct Waiting {
    index: u64,
    term: u64,
    token: u64,
    reply: ControllerReply,
}

/// What one [`Quorum::advance`] produced.
#[derive(Debug, Default)]
pub struct Output {
    pub messages: Vec<Message>,
    pub replies: Vec<Reply>,
    /// The committed image, when it changed.
    pub image: Option<Arc<MetadataImage>>,
}

/// One quorum member. See the module header.
pub struct Quorum<S: DurableLog> {
    raw: RawNode<S>,
    config: QuorumConfig,
    image: Arc<MetadataImage>,
    applied: u64,
    snapshot_index: u64,
    controller: Option<Controller>,
    /// While leading: the term and the index of the first entry of that term.
    led: Option<(u64, u64)>,
    waiting: VecDeque<Waiting>,
    /// Replies decided while not leading any more, or refused at once.
    immediate: Vec<Reply>,
    image_changed: bool,
    /// Ticks since open, and the tick at which a snapshot was last sent to each peer.
    ticks: u64,
    snapshots_sent: BTreeMap<u64, u64>,
    /// When each peer was last heard from (for DescribeQuorum).
    last_heard_ms: BTreeMap<u64, u64>,
}

impl<S: DurableLog> std::fmt::Debug for Quorum<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quorum").field("node", &self.config.node).field("applied", &self.applied).finish()
    }
}

impl<S: DurableLog> Quorum<S> {
    /// Opens a member over its durable log. An empty log is given the configured voters; a log
    /// whose voters differ from the configuration is refused (the voters list disagrees).
    pub fn open(mut store: S, config: QuorumConfig, logger: &slog::Logger) -> Result<Quorum<S>, ClusterError> {
        let voters: Vec<u64> = config.voters.iter().map(|voter| voter.raft_id()).collect();
        let state = store.initial_state().map_err(raft_error)?;
        if state.conf_state.voters.is_empty() {
            let conf_state = ConfState { voters: voters.clone(), ..Default::default() };
            store.set_conf_state(&conf_state)?;
            store.sync()?;
        } else {
            let mut stored = state.conf_state.voters.clone();
            stored.sort_unstable();
            let mut configured = voters.clone();
            configured.sort_unstable();
            if stored != configured {
                return Err(ClusterError::VotersDisagree {
                    stored: stored.into_iter().filter_map(BrokerId::from_raft_id).collect(),
                    configured: config.voters.clone(),
                });
            }
        }
        let snapshot = store.snapshot(0, 0).map_err(raft_error)?;
        let snapshot_index = snapshot.get_metadata().index;
        let image = if snapshot_index == 0 { MetadataImage::default() } else { image_of(&snapshot)? };
        let mut raft_config = raft::Config {
            id: config.node.raft_id(),
            election_tick: config.election_tick,
            heartbeat_tick: config.heartbeat_tick,
            applied: snapshot_index,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 256,
            pre_vote: true,
            check_quorum: true,
            ..Default::default()
        };
        if config.fixed_election_tick {
            raft_config.min_election_tick = config.election_tick;
            raft_config.max_election_tick = config.election_tick + 1;
        }
        raft_config.validate().map_err(raft_error)?;
        let raw = RawNode::new(&raft_config, store, logger).map_err(raft_error)?;
        Ok(Quorum {
            raw,
            config,
            image: Arc::new(image),
            applied: snapshot_index,
            snapshot_index,
            controller: None,
            led: None,
            waiting: VecDeque::new(),
            immediate: Vec::new(),
            image_changed: true,
            ticks: 0,
            snapshots_sent: BTreeMap::new(),
            last_heard_ms: BTreeMap::new(),
        })
    }

    pub fn node(&self) -> BrokerId {
        self.config.node
    }

    /// The committed image.
    pub fn image(&self) -> &Arc<MetadataImage> {
        &self.image
    }

    /// The highest Raft index applied to the image.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The current Raft term.
    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }

    /// The quorum leader this node knows of.
    pub fn leader(&self) -> Option<BrokerId> {
        match self.raw.raft.leader_id {
            0 => None,
            id => BrokerId::from_raft_id(id),
        }
    }

    /// This node is the active controller: it leads and has applied its inherited log.
    pub fn is_active(&self) -> bool {
        self.controller.is_some()
    }

    /// The log store (for inspection by tests and status requests).
    pub fn store(&self) -> &S {
        self.raw.store()
    }

    /// The quorum as this node, its leader, sees it (Kafka's DescribeQuorum); refused elsewhere.
    pub fn status(&self, now_ms: u64) -> Result<QuorumStatus, RequestError> {
        if self.raw.raft.state != StateRole::Leader {
            return Err(RequestError::NotController { leader: self.leader() });
        }
        let own = self.config.node.raft_id();
        let mut voters: Vec<ReplicaProgress> = self
            .raw
            .raft
            .prs()
            .iter()
            .filter_map(|(id, progress)| {
                let node = BrokerId::from_raft_id(*id)?;
                let last_heard_ms_ago = match *id == own {
                    true => Some(0),
                    false => self.last_heard_ms.get(id).map(|heard| now_ms.saturating_sub(*heard)),
                };
                Some(ReplicaProgress { node, log_end_offset: progress.matched + 1, last_heard_ms_ago })
            })
            .collect();
        voters.sort_by_key(|voter| voter.node);
        Ok(QuorumStatus {
            leader: self.config.node,
            term: self.raw.raft.term,
            high_watermark: self.raw.raft.raft_log.committed + 1,
            voters,
        })
    }

    /// One tick of the Raft clock.
    pub fn tick(&mut self, now_ms: u64) {
        self.raw.tick();
        self.ticks += 1;
        self.retry_lost_snapshots();
        self.after_raft_change(now_ms);
    }

    /// A snapshot message may be lost (or its receiver crash before applying it); raft-rs then
    /// waits for the caller's report forever. A peer still waiting for its snapshot after two
    /// election timeouts is reported failed, so the leader sends it again.
    fn retry_lost_snapshots(&mut self) {
        let patience = 2 * self.config.election_tick as u64;
        let due: Vec<u64> = self
            .snapshots_sent
            .iter()
            .filter(|(_, sent)| self.ticks - **sent > patience)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in due {
            self.snapshots_sent.remove(&peer);
            let waiting =
                self.raw.raft.prs().get(peer).is_some_and(|progress| progress.state == ProgressState::Snapshot);
            if waiting {
                self.raw.report_snapshot(peer, SnapshotStatus::Failure);
            }
        }
    }

    /// The transport could not reach `node`: Raft stops streaming to it until it answers again.
    pub fn report_unreachable(&mut self, node: BrokerId) {
        self.raw.report_unreachable(node.raft_id());
    }

    /// A message from a peer. Messages from unknown nodes or stale terms are Raft's to ignore.
    pub fn step(&mut self, message: Message, now_ms: u64) {
        self.last_heard_ms.insert(message.from, now_ms);
        // Errors here are Raft refusing a message (wrong node, stepping a local message type):
        // nothing to do but drop it.
        if let Err(error) = self.raw.step(message) {
            tracing::debug!(%error, "raft message dropped");
        }
        self.after_raft_change(now_ms);
    }

    /// Periodic controller work (session expiry, preferred leaders), as requests of its own.
    pub fn expire_sessions(&mut self, now_ms: u64) -> Result<(), ClusterError> {
        let Some(controller) = self.controller.as_mut() else { return Ok(()) };
        match controller.expire_sessions(now_ms) {
            Ok(batch) => self.propose(batch, None),
            Err(error) => Err(ClusterError::Corrupt(error.to_string())),
        }
    }

    /// A request to the controller; its reply comes out of a later [`Quorum::advance`] (or the
    /// next one, if refused at once).
    pub fn request(&mut self, token: u64, request: ControllerRequest, now_ms: u64) {
        let Some(controller) = self.controller.as_mut() else {
            let leader = self.leader();
            self.immediate.push((token, Err(RequestError::NotController { leader })));
            return;
        };
        let decided = match request {
            ControllerRequest::Register(registration) => controller
                .register(&registration, now_ms)
                .map(|(batch, epoch)| (batch, ControllerReply::Registered { epoch })),
            ControllerRequest::Heartbeat(heartbeat) => controller
                .heartbeat(&heartbeat, now_ms)
                .map(|(batch, reply)| (batch, ControllerReply::Heartbeat(reply))),
            ControllerRequest::CreateTopic(topic) => {
                controller.create_topic(&topic).map(|batch| (batch, ControllerReply::Done))
            }
            ControllerRequest::CreatePartitions { name, count, assignment } => {
                controller.create_partitions(&name, count, &assignment).map(|batch| (batch, ControllerReply::Done))
            }
            ControllerRequest::DeleteTopic(name) => {
                controller.delete_topic(&name).map(|batch| (batch, ControllerReply::Done))
            }
            ControllerRequest::AlterBrokerConfigs { broker, configs } => {
                controller.alter_broker_configs(broker, configs).map(|batch| (batch, ControllerReply::Done))
            }
            ControllerRequest::AlterTopicConfigs { name, configs } => {
                controller.alter_topic_configs(&name, configs).map(|batch| (batch, ControllerReply::Done))
            }
            ControllerRequest::AllocateProducerIds { broker, epoch } => controller
                .allocate_producer_ids(broker, epoch)
                .map(|(batch, block)| (batch, ControllerReply::ProducerIds(block))),
            ControllerRequest::ElectPreferred(partitions) => controller
                .elect_preferred(partitions.as_deref())
                .map(|(batch, results)| (batch, ControllerReply::Elections(results))),
            ControllerRequest::ElectUnclean(partitions) => controller
                .elect_unclean(&partitions)
                .map(|(batch, results)| (batch, ControllerReply::Elections(results))),
            ControllerRequest::ValidateTopic(topic) => {
                let mut scratch = Controller::clone(controller);
                scratch.create_topic(&topic).map(|_| (Vec::new(), ControllerReply::Done))
            }
            ControllerRequest::AlterPartition { broker, epoch, changes } => controller
                .alter_partition(broker, epoch, &changes)
                .map(|(batch, outcomes)| (batch, ControllerReply::IsrChanges(outcomes))),
            ControllerRequest::AlterReassignments { reassignments, allow_factor_change } => controller
                .alter_reassignments(&reassignments, allow_factor_change)
                .map(|(batch, outcomes)| (batch, ControllerReply::Reassignments(outcomes))),
        };
        match decided {
            Err(error) => self.immediate.push((token, Err(RequestError::Refused(error)))),
            Ok((batch, reply)) => {
                if let Err(error) = self.propose(batch, Some((token, reply))) {
                    tracing::warn!(%error, "controller proposal failed");
                }
            }
        }
    }

    /// Proposes a decided batch; the reply (if any) waits for it to commit. An empty batch's
    /// reply waits for the last batch proposed before it (its decision may rest on it).
    fn propose(
        &mut self,
        batch: Vec<MetadataRecord>,
        reply: Option<(u64, ControllerReply)>,
    ) -> Result<(), ClusterError> {
        let term = self.raw.raft.term;
        if batch.is_empty() {
            if let Some((token, reply)) = reply {
                match self.waiting.back() {
                    Some(last) => {
                        let index = last.index;
                        self.waiting.push_back(Waiting { index, term: last.term, token, reply });
                    }
                    None => self.immediate.push((token, Ok(reply))),
                }
            }
            return Ok(());
        }
        if let Err(error) = self.raw.propose(Vec::new(), encode_batch(&batch)) {
            // Raft dropped it (leadership is moving): the speculative state is no longer true.
            self.lose_leadership();
            if let Some((token, _)) = reply {
                self.immediate.push((token, Err(RequestError::NotController { leader: self.leader() })));
            }
            return Err(raft_error(error));
        }
        let index = self.raw.raft.raft_log.last_index();
        if let Some((token, reply)) = reply {
            self.waiting.push_back(Waiting { index, term, token, reply });
        }
        Ok(())
    }

    /// Persists and sends what Raft has ready, applies what committed. One sync per call at most.
    pub fn advance(&mut self, now_ms: u64) -> Result<Output, ClusterError> {
        let mut output = Output::default();
        if self.raw.has_ready() {
            let mut ready = self.raw.ready();
            // A leader's messages may go before its own write (Raft thesis 10.2.1).
            output.messages.extend(ready.take_messages());
            if !ready.snapshot().is_empty() {
                let snapshot = ready.snapshot().clone();
                self.raw.mut_store().apply_snapshot(&snapshot)?;
                self.install(&snapshot)?;
            }
            let committed = ready.take_committed_entries();
            self.apply(committed)?;
            if !ready.entries().is_empty() {
                self.raw.mut_store().append(ready.entries())?;
            }
            if let Some(hard_state) = ready.hs() {
                self.raw.mut_store().set_hard_state(hard_state)?;
            }
            if ready.must_sync() {
                self.raw.mut_store().sync()?;
            }
            output.messages.extend(ready.take_persisted_messages());
            let mut light = self.raw.advance(ready);
            if let Some(commit) = light.commit_index() {
                self.raw.mut_store().set_commit(commit)?;
            }
            output.messages.extend(light.take_messages());
            let committed = light.take_committed_entries();
            self.apply(committed)?;
            self.raw.advance_apply();
            self.maybe_snapshot()?;
        }
        self.after_raft_change(now_ms);
        for message in &output.messages {
            if message.get_msg_type() == MessageType::MsgSnapshot {
                self.snapshots_sent.insert(message.to, self.ticks);
            }
        }
        output.replies.append(&mut self.immediate);
        if std::mem::take(&mut self.image_changed) {
            output.image = Some(Arc::clone(&self.image));
        }
        Ok(output)
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), ClusterError> {
        for entry in entries {
            if entry.get_entry_type() == EntryType::EntryNormal && !entry.data.is_empty() {
                let batch = decode_batch(&entry.data)?;
                self.image = Arc::new(self.image.apply(entry.index, &batch)?);
                self.image_changed = true;
            } else if entry.get_entry_type() != EntryType::EntryNormal {
                // Membership is fixed by `controller.quorum.voters`: no node proposes a change.
                return Err(ClusterError::Corrupt(format!("a membership change at index {}", entry.index)));
            }
            self.applied = entry.index;
            while let Some(waiting) = self.waiting.front() {
                if waiting.index > entry.index {
                    break;
                }
                let waiting = self.waiting.pop_front().expect("front exists");
                let outcome = if waiting.index == entry.index && waiting.term == entry.term {
                    Ok(waiting.reply)
                } else {
                    Err(RequestError::NotController { leader: self.leader() })
                };
                self.immediate.push((waiting.token, outcome));
            }
        }
        Ok(())
    }

    fn install(&mut self, snapshot: &Snapshot) -> Result<(), ClusterError> {
        self.image = Arc::new(image_of(snapshot)?);
        self.image_changed = true;
        self.applied = snapshot.get_metadata().index;
        self.snapshot_index = self.applied;
        Ok(())
    }

    fn maybe_snapshot(&mut self) -> Result<(), ClusterError> {
        if self.applied.saturating_sub(self.snapshot_index) < self.config.snapshot_entries {
            return Ok(());
        }
        let data = encode_batch(&self.image.to_records());
        self.raw.mut_store().compact(self.applied, data)?;
        self.snapshot_index = self.applied;
        Ok(())
    }

    /// Tracks leadership: activates the controller once the inherited log is applied, drops it
    /// when leadership is gone.
    fn after_raft_change(&mut self, now_ms: u64) {
        let term = self.raw.raft.term;
        if self.raw.raft.state != StateRole::Leader {
            if self.led.is_some() {
                self.lose_leadership();
            }
            return;
        }
        match self.led {
            Some((led_term, _)) if led_term == term => {}
            _ => {
                if self.led.is_some() {
                    self.lose_leadership();
                }
                self.led = Some((term, self.raw.raft.raft_log.last_index()));
            }
        }
        let Some((_, first_index)) = self.led else { return };
        if self.controller.is_none() && self.applied >= first_index {
            let mut controller = Controller::new((*self.image).clone(), self.config.controller, now_ms);
            let bootstrap = controller.bootstrap(self.config.new_cluster_id);
            self.controller = Some(controller);
            tracing::info!(node = %self.config.node, term, "active controller");
            match bootstrap {
                Ok(batch) => {
                    if let Err(error) = self.propose(batch, None) {
                        tracing::warn!(%error, "cluster id proposal failed");
                    }
                }
                Err(error) => tracing::error!(%error, "cluster id"),
            }
        }
    }

    fn lose_leadership(&mut self) {
        self.controller = None;
        self.led = None;
        let leader = self.leader();
        for waiting in self.waiting.drain(..) {
            self.immediate.push((waiting.token, Err(RequestError::NotController { leader })));
        }
    }
}

/// The image a snapshot holds.
fn image_of(snapshot: &Snapshot) -> Result<MetadataImage, ClusterError> {
    MetadataImage::from_records(snapshot.get_metadata().index, &decode_batch(&snapshot.data)?)
}

fn raft_error(error: raft::Error) -> ClusterError {
    ClusterError::Raft(error.to_string())
}

impl DurableLog for crate::raft_log::RaftLog {
    fn append(&mut self, entries: &[Entry]) -> Result<(), ClusterError> {
        crate::raft_log::RaftLog::append(self, entries)
    }
    fn set_hard_state(&mut self, hard_state: &HardState) -> Result<(), ClusterError> {
        crate::raft_log::RaftLog::set_hard_state(self, hard_state.clone())
    }
    fn set_commit(&mut self, commit: u64) -> Result<(), ClusterError> {
        crate::raft_log::RaftLog::set_commit(self, commit)
    }
    fn set_conf_state(&mut self, conf_state: &ConfState) -> Result<(), ClusterError> {
        crate::raft_log::RaftLog::set_conf_state(self, conf_state.clone())
    }
    fn apply_snapshot(&mut self, snapshot: &Snapshot) -> Result<(), ClusterError> {
        crate::raft_log::RaftLog::apply_snapshot(self, snapshot.clone())
    }
    fn compact(&mut self, index: u64, data: Vec<u8>) -> Result<(), ClusterError> {
        let conf_state = self.conf_state().clone();
        crate::raft_log::RaftLog::compact(self, index, data.into(), conf_state)
    }
    fn sync(&mut self) -> Result<(), ClusterError> {
        crate::raft_log::RaftLog::sync(self)
    }
}

/// A logger for raft-rs that forwards its records to `tracing` (target `raft`): warnings and
/// errors as warnings, the rest (elections, role changes) at debug level.
pub fn raft_logger() -> slog::Logger {
    slog::Logger::root(TracingDrain, slog::o!())
}

struct TracingDrain;

impl slog::Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record<'_>, _values: &slog::OwnedKVList) -> Result<(), slog::Never> {
        if record.level().is_at_least(slog::Level::Warning) {
            tracing::warn!(target: "raft", "{}", record.msg());
        } else {
            tracing::debug!(target: "raft", "{}", record.msg());
        }
        Ok(())
    }
}
