//! The active controller's decisions: pure functions of (image, request, now) to the records that
//! carry them out. Modelled on Kafka's KRaft `QuorumController` (broker registration and
//! heartbeats, `PartitionChangeBuilder`'s election rules, `StripedReplicaPlacer`'s spreading).
//!
//! The controller decides on a *speculative* image: the committed image with the batches it has
//! proposed but not yet seen committed applied on top, so two decisions in a row see each other
//! (two producer-id blocks never overlap). The driver builds a new `Controller` from the committed
//! image whenever this node becomes the active controller (after its own log is fully committed),
//! and throws it away when it loses leadership; replies to requests are sent only once their
//! records are committed.
//!
//! Heartbeat times live here, in memory, as in Kafka: a new active controller starts every
//! broker's session afresh.
//!
//! Owns: validation of controller requests, registration, fencing, controlled shutdown, replica
//! placement, leader election (preferred, on fencing, unclean when allowed), producer-id blocks.
//! Must not know: Raft, sockets, Kafka's error codes (see [`ControllerError`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use crate::image::{MetadataImage, TopicImage};
use crate::records::{Endpoint, MetadataRecord, PartitionState, RecordBatch};
use crate::types::{BrokerId, ClusterId, PartitionIndex, TopicId};
use crate::ClusterError;

/// Kafka's `ProducerIdControlManager` hands out blocks of this many ids.
pub const PRODUCER_ID_BLOCK_SIZE: u64 = 1000;
/// Kafka's limit on partitions per topic creation is the request size; Skua names one.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 100_000;

/// The topic config that allows a topic's unclean elections (Kafka's key; values "true"/"false").
pub const UNCLEAN_LEADER_ELECTION_KEY: &str = "unclean.leader.election.enable";

/// The controller's settings (Kafka's keys in brackets).
#[derive(Clone, Copy, Debug)]
pub struct ControllerConfig {
    /// This controller's node id: its own dynamic broker configs count for its decisions (as in
    /// Kafka's KRaft controller: topic, then this node's, then the cluster default, then static).
    pub node: BrokerId,
    /// `broker.session.timeout.ms`: a broker not heartbeating for this long is fenced.
    pub session_timeout_ms: u64,
    /// `unclean.leader.election.enable`: a replica outside the ISR may lead when none inside can
    /// (a topic's own setting of [`UNCLEAN_LEADER_ELECTION_KEY`] wins).
    pub unclean_leader_election: bool,
    /// `default.replication.factor`: used when a topic is created with replication factor -1.
    pub default_replication_factor: i16,
}

/// Why the controller refused a request; netd maps each to a Kafka error code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControllerError {
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    #[error("no topic {0:?}")]
    UnknownTopic(String),
    #[error("replication factor {requested} is not in 1..={available} (the brokers available)")]
    InvalidReplicationFactor { requested: i16, available: usize },
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("broker {broker} is not registered with epoch {epoch}")]
    StaleBrokerEpoch { broker: BrokerId, epoch: u64 },
    /// Another incarnation of the broker still has a live session. `heartbeating`: it sent a
    /// heartbeat after this incarnation was first refused, so it is a second live process with
    /// the same `node.id`, not the session of a process that just restarted running out.
    #[error("broker {broker} is registered by another process (heartbeating since: {heartbeating})")]
    DuplicateBrokerRegistration { broker: BrokerId, heartbeating: bool },
    #[error("broker is of cluster {theirs:?}, this cluster is {ours:?}")]
    InconsistentClusterId { ours: ClusterId, theirs: ClusterId },
    #[error("the metadata log is corrupt: {0}")]
    Corrupt(String),
}

impl From<ClusterError> for ControllerError {
    fn from(error: ClusterError) -> ControllerError {
        ControllerError::Corrupt(error.to_string())
    }
}

/// A broker's registration request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub broker: BrokerId,
    pub incarnation: u64,
    pub cluster_id: Option<ClusterId>,
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
}

/// A broker's heartbeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    pub broker: BrokerId,
    pub epoch: u64,
    /// The broker's image holds its own current registration: it may be unfenced.
    pub caught_up: bool,
    /// The broker wants to shut down (SIGTERM): move leadership away.
    pub want_shutdown: bool,
}

/// The controller's answer to a heartbeat (sent once its records are committed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatReply {
    pub fenced: bool,
    /// The broker leads nothing any more and may exit.
    pub shutdown_ok: bool,
}

/// A topic to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    pub id: TopicId,
    /// -1: none given (explicit assignment, or the broker's default).
    pub partitions: i32,
    /// -1: `default.replication.factor`.
    pub replication_factor: i16,
    /// Replicas per partition, preferred leader first; empty: placed by the controller.
    pub assignment: Vec<Vec<BrokerId>>,
    pub configs: BTreeMap<String, String>,
}

/// The outcome of an election for one partition (Kafka's ElectLeaders results).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Election {
    Elected,
    /// Preferred: the preferred replica leads already. Unclean: the partition has a leader.
    NotNeeded,
    PreferredNotAvailable,
    /// Unclean: no live replica, in the ISR or out of it, can lead.
    EligibleLeadersNotAvailable,
    UnknownPartition,
}

/// A partition leader's request to change the partition's ISR (Kafka's AlterPartition): valid
/// only against the leader epoch and partition epoch it was decided on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsrChange {
    pub topic: String,
    pub partition: PartitionIndex,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// The ISR the leader wants, itself included.
    pub isr: Vec<BrokerId>,
}

/// The controller's answer to one [`IsrChange`] (Kafka's AlterPartition partition errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IsrChangeOutcome {
    /// Applied (or already so): the partition as it is now.
    Changed(Box<PartitionState>),
    UnknownPartition,
    /// The leader epoch is not the partition's: a leader that was replaced (FENCED_LEADER_EPOCH).
    FencedLeaderEpoch,
    /// The requesting broker does not lead the partition (INVALID_REQUEST).
    NotLeader,
    /// The partition changed since the leader read it (INVALID_UPDATE_VERSION).
    InvalidUpdateVersion,
    /// Not a subset of the replicas, a broker named twice, or the leader left out
    /// (INVALID_REQUEST).
    InvalidIsr,
    /// A broker that may not join an ISR: fenced, shutting down or not registered
    /// (INELIGIBLE_REPLICA).
    IneligibleReplica(BrokerId),
}

/// One partition of an AlterPartitionReassignments request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reassignment {
    pub topic: String,
    pub partition: PartitionIndex,
    /// The replicas wanted, preferred leader first; None cancels the reassignment in progress.
    pub target: Option<Vec<BrokerId>>,
}

/// The controller's answer to one [`Reassignment`] (Kafka's AlterPartitionReassignments
/// partition errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReassignmentOutcome {
    /// Started, completed at once, replaced or cancelled as asked.
    Accepted,
    UnknownPartition,
    /// A cancellation of a partition with no reassignment in progress
    /// (NO_REASSIGNMENT_IN_PROGRESS).
    NoReassignmentInProgress,
    /// An empty target, a broker named twice, or one not registered (INVALID_REPLICA_ASSIGNMENT).
    InvalidAssignment(String),
    /// The target changes the replication factor and the request does not allow it (v1's
    /// `allow_replication_factor_change` false: INVALID_REPLICATION_FACTOR).
    ReplicationFactorChange {
        from: usize,
        to: usize,
    },
}

/// Why a reassignment's target replicas are refused, in Kafka's words and order
/// (`ReplicationControlManager.validateManualPartitionAssignment`): an empty list, else the
/// brokers in ascending order, each unregistered or named twice. `None`: a valid target.
pub fn assignment_refusal(target: &[BrokerId], registered: impl Fn(BrokerId) -> bool) -> Option<String> {
    if target.is_empty() {
        return Some("The manual partition assignment includes an empty replica list.".to_string());
    }
    let mut sorted = target.to_vec();
    sorted.sort();
    let mut previous = None;
    for broker in sorted {
        if !registered(broker) {
            return Some(format!(
                "The manual partition assignment includes broker {broker}, but no such broker is registered."
            ));
        }
        if previous == Some(broker) {
            return Some(format!("The manual partition assignment includes the broker {broker} more than once."));
        }
        previous = Some(broker);
    }
    None
}

/// The active controller's state: the speculative image and the brokers' last heartbeats.
#[derive(Clone, Debug)]
pub struct Controller {
    config: ControllerConfig,
    image: MetadataImage,
    last_heartbeat_ms: BTreeMap<BrokerId, u64>,
    /// Brokers another incarnation tried to register while theirs was alive: (that incarnation,
    /// whether the registered one heartbeated since).
    contested: BTreeMap<BrokerId, (u64, bool)>,
}

impl Controller {
    /// A controller taking over the committed `image` at `now_ms`: every unfenced broker's
    /// session starts now. A fenced one has none (it finished a controlled shutdown or its
    /// session expired; one that is alive starts it again with its next heartbeat), so its next
    /// incarnation registers at once instead of waiting out a session it no longer has.
    pub fn new(image: MetadataImage, config: ControllerConfig, now_ms: u64) -> Controller {
        let last_heartbeat_ms =
            image.brokers.values().filter(|broker| !broker.fenced).map(|broker| (broker.id, now_ms)).collect();
        Controller { config, image, last_heartbeat_ms, contested: BTreeMap::new() }
    }

    /// The image with every batch this controller proposed applied.
    pub fn image(&self) -> &MetadataImage {
        &self.image
    }

    /// Applies a decided batch to the speculative image and hands it back for proposing.
    fn decided(&mut self, batch: RecordBatch) -> Result<RecordBatch, ControllerError> {
        if !batch.is_empty() {
            self.log_decisions(&batch);
            self.image = self.image.apply(self.image.offset, &batch)?;
        }
        Ok(batch)
    }

    /// Logs at INFO what the active controller decided about brokers and leaders (Kafka's
    /// controller logs fencing and elections too): a cluster's flaky moment is then readable
    /// from the nodes' logs.
    fn log_decisions(&self, batch: &RecordBatch) {
        for record in batch {
            match record {
                MetadataRecord::FenceBroker { broker, epoch } => {
                    tracing::info!(broker = broker.0, epoch, "controller: broker fenced");
                }
                MetadataRecord::UnfenceBroker { broker, epoch } => {
                    tracing::info!(broker = broker.0, epoch, "controller: broker unfenced");
                }
                MetadataRecord::BeginControlledShutdown { broker, epoch } => {
                    tracing::info!(broker = broker.0, epoch, "controller: controlled shutdown begins");
                }
                MetadataRecord::Partition(state) => {
                    // The image is the one before this batch (applied after logging).
                    let Some(topic) = self.image.topic_by_id(state.topic_id) else { continue };
                    let Some(old) = self.image.partition(&topic.name, state.partition) else { continue };
                    let topic = topic.name.as_str();
                    let ids = |brokers: &[BrokerId]| brokers.iter().map(|broker| broker.0).collect::<Vec<_>>();
                    if old.leader != state.leader {
                        tracing::info!(
                            topic,
                            partition = state.partition.0,
                            from = ?old.leader.map(|broker| broker.0),
                            to = ?state.leader.map(|broker| broker.0),
                            leader_epoch = state.leader_epoch,
                            isr = ?ids(&state.isr),
                            "controller: leader changed"
                        );
                    } else if old.isr != state.isr {
                        tracing::info!(
                            topic,
                            partition = state.partition.0,
                            from = ?ids(&old.isr),
                            to = ?ids(&state.isr),
                            "controller: ISR changed"
                        );
                    }
                }
                _ => {}
            }
        }
    }

    /// The first batch of a new cluster: its id. Empty when the cluster already has one.
    pub fn bootstrap(&mut self, cluster_id: ClusterId) -> Result<RecordBatch, ControllerError> {
        match self.image.cluster_id {
            Some(_) => Ok(Vec::new()),
            None => self.decided(vec![MetadataRecord::ClusterId(cluster_id)]),
        }
    }

    /// Registers a broker (Kafka's BrokerRegistration): returns its broker epoch. A retry of the
    /// same incarnation gets the same epoch; a new incarnation replaces the old registration,
    /// unless the old one is still alive (a second process with the same `node.id`).
    pub fn register(&mut self, request: &Registration, now_ms: u64) -> Result<(RecordBatch, u64), ControllerError> {
        if let (Some(ours), Some(theirs)) = (self.image.cluster_id, request.cluster_id) {
            if ours != theirs {
                return Err(ControllerError::InconsistentClusterId { ours, theirs });
            }
        }
        if let Some(existing) = self.image.brokers.get(&request.broker) {
            if existing.incarnation == request.incarnation {
                self.last_heartbeat_ms.insert(request.broker, now_ms);
                return Ok((Vec::new(), existing.epoch));
            }
            // Kafka's rule: another incarnation is refused while the registered one still has a
            // live session (fenced or not); a broker fenced by expiry or a finished controlled
            // shutdown has none.
            if self.session_alive(request.broker, now_ms) {
                let contest = self.contested.entry(request.broker).or_insert((request.incarnation, false));
                if contest.0 != request.incarnation {
                    *contest = (request.incarnation, false);
                }
                let heartbeating = contest.1;
                return Err(ControllerError::DuplicateBrokerRegistration { broker: request.broker, heartbeating });
            }
        }
        self.contested.remove(&request.broker);
        let epoch = self.image.next_broker_epoch;
        let mut batch = vec![MetadataRecord::RegisterBroker {
            broker: request.broker,
            incarnation: request.incarnation,
            epoch,
            endpoints: request.endpoints.clone(),
            rack: request.rack.clone(),
        }];
        // The new registration starts fenced: what the old incarnation led moves away.
        batch.extend(self.elections_without(&BTreeSet::from([request.broker])));
        self.last_heartbeat_ms.insert(request.broker, now_ms);
        Ok((self.decided(batch)?, epoch))
    }

    /// A broker's heartbeat: keeps its session, unfences it once caught up, carries out a
    /// controlled shutdown.
    pub fn heartbeat(
        &mut self,
        request: &Heartbeat,
        now_ms: u64,
    ) -> Result<(RecordBatch, HeartbeatReply), ControllerError> {
        let registration = match self.image.brokers.get(&request.broker) {
            Some(registration) if registration.epoch == request.epoch => registration.clone(),
            _ => return Err(ControllerError::StaleBrokerEpoch { broker: request.broker, epoch: request.epoch }),
        };
        self.last_heartbeat_ms.insert(request.broker, now_ms);
        if let Some(contest) = self.contested.get_mut(&request.broker) {
            // The registered incarnation is alive while another one asks to register.
            contest.1 = true;
        }
        let (broker, epoch) = (request.broker, request.epoch);
        let mut batch = Vec::new();
        if request.want_shutdown && !registration.fenced {
            if !registration.shutting_down {
                let mut moves = vec![MetadataRecord::BeginControlledShutdown { broker, epoch }];
                moves.extend(self.elections_without(&BTreeSet::from([broker])));
                batch.extend(self.decided(moves)?);
            }
            // Once it leads nothing it is fenced and may go (a partition whose ISR is only this
            // broker keeps it as leader: the next heartbeat tries again); its session ends, so
            // its next incarnation may register at once.
            let leads = self.image.partitions().any(|(_, partition)| partition.leader == Some(broker));
            if !leads {
                batch.extend(self.decided(vec![MetadataRecord::FenceBroker { broker, epoch }])?);
                self.last_heartbeat_ms.remove(&broker);
            }
        } else if !request.want_shutdown && registration.fenced && request.caught_up {
            batch.extend(self.decided(vec![MetadataRecord::UnfenceBroker { broker, epoch }])?);
            // Partitions left without a leader may now have one.
            let elections = self.offline_elections();
            batch.extend(self.decided(elections)?);
        }
        Ok((batch, self.heartbeat_reply(broker)))
    }

    fn heartbeat_reply(&self, broker: BrokerId) -> HeartbeatReply {
        let registration = self.image.brokers.get(&broker);
        let fenced = registration.is_none_or(|registration| registration.fenced);
        let shutting_down = registration.is_some_and(|registration| registration.shutting_down);
        HeartbeatReply { fenced, shutdown_ok: fenced && shutting_down }
    }

    /// A broker's session is alive while its heartbeats keep coming; it ends when the controller
    /// fences it (expiry, or a finished controlled shutdown).
    fn session_alive(&self, broker: BrokerId, now_ms: u64) -> bool {
        self.last_heartbeat_ms
            .get(&broker)
            .is_some_and(|last| now_ms.saturating_sub(*last) <= self.config.session_timeout_ms)
    }

    /// Fences every unfenced broker whose session expired, moving its leaderships within the ISR.
    pub fn expire_sessions(&mut self, now_ms: u64) -> Result<RecordBatch, ControllerError> {
        let expired: Vec<(BrokerId, u64)> = self
            .image
            .brokers
            .values()
            .filter(|broker| !broker.fenced && !self.session_alive(broker.id, now_ms))
            .map(|broker| (broker.id, broker.epoch))
            .collect();
        if expired.is_empty() {
            return Ok(Vec::new());
        }
        let gone: BTreeSet<BrokerId> = expired.iter().map(|(broker, _)| *broker).collect();
        for broker in &gone {
            let silent_ms = self.last_heartbeat_ms.remove(broker).map(|last| now_ms.saturating_sub(last));
            tracing::info!(
                broker = broker.0,
                ?silent_ms,
                session_timeout_ms = self.config.session_timeout_ms,
                "controller: broker session expired"
            );
        }
        let mut batch: RecordBatch = expired
            .iter()
            .map(|(broker, epoch)| MetadataRecord::FenceBroker { broker: *broker, epoch: *epoch })
            .collect();
        batch.extend(self.elections_without(&gone));
        self.decided(batch)
    }

    /// The partition changes that take the brokers in `gone` out of leadership and ISRs (Kafka's
    /// `PartitionChangeBuilder` with those brokers fenced).
    fn elections_without(&self, gone: &BTreeSet<BrokerId>) -> RecordBatch {
        let mut batch = Vec::new();
        for (topic, partition) in self.image.partitions() {
            let involved = partition.leader.is_some_and(|leader| gone.contains(&leader))
                || partition.isr.iter().any(|member| gone.contains(member));
            if !involved {
                continue;
            }
            let mut isr: Vec<BrokerId> =
                partition.isr.iter().copied().filter(|member| !gone.contains(member)).collect();
            if isr.is_empty() {
                // The last member stays in the ISR: it holds the newest data and may lead again
                // once it is back (Kafka keeps it too).
                isr = partition.isr.clone();
            }
            let can_lead = |candidate: &BrokerId| !gone.contains(candidate) && self.image.is_active(*candidate);
            let leader = match partition.leader {
                Some(leader) if can_lead(&leader) && isr.contains(&leader) => Some(leader),
                _ => self.choose_leader(partition, &isr, &can_lead, self.unclean_allowed(topic)),
            };
            let isr = match leader {
                Some(leader) if !isr.contains(&leader) => vec![leader], // unclean
                _ => isr,
            };
            if let Some(change) = self.completed(changed(partition, isr, leader), partition) {
                batch.push(MetadataRecord::Partition(change));
            }
        }
        batch
    }

    /// `next` (the change of `partition` decided, if any), with a reassignment in progress
    /// completed if every target replica is now in the ISR (Kafka's
    /// `PartitionChangeBuilder.tryCompleteReassignment`): the replicas become the target, the
    /// removed ones leave the ISR, and a leader that was removed hands over to the first target
    /// replica in the ISR that can lead.
    fn completed(&self, next: Option<PartitionState>, partition: &PartitionState) -> Option<PartitionState> {
        let state = next.as_ref().unwrap_or(partition);
        let target = state.target_replicas();
        if !state.reassigning() || !target.iter().all(|replica| state.isr.contains(replica)) {
            return next;
        }
        let isr: Vec<BrokerId> = state.isr.iter().copied().filter(|member| target.contains(member)).collect();
        let leader = match state.leader {
            Some(leader) if target.contains(&leader) => Some(leader),
            _ => target.iter().copied().find(|replica| isr.contains(replica) && self.image.is_active(*replica)),
        };
        // The epochs grow once against the partition as committed, whatever `next` changed.
        let leader_epoch = if leader != partition.leader { partition.leader_epoch + 1 } else { partition.leader_epoch };
        Some(PartitionState {
            replicas: target,
            isr,
            leader,
            leader_epoch,
            partition_epoch: partition.partition_epoch + 1,
            adding: Vec::new(),
            removing: Vec::new(),
            ..state.clone()
        })
    }

    /// Starts, replaces or cancels reassignments (Kafka's AlterPartitionReassignments in KRaft,
    /// KIP-455): during one, `replicas` holds the target's replicas then the original's others,
    /// `adding` and `removing` say which are which, and the ISR is left alone; it completes (see
    /// [`Controller::completed`]) once every target replica is in the ISR, at once if they all
    /// are. A new target replaces one in progress (measured from the original replicas); a
    /// cancellation goes back to the original replicas, the adding ones leaving the ISR.
    pub fn alter_reassignments(
        &mut self,
        reassignments: &[Reassignment],
        allow_factor_change: bool,
    ) -> Result<(RecordBatch, Vec<ReassignmentOutcome>), ControllerError> {
        let mut batch = Vec::new();
        let mut outcomes = Vec::with_capacity(reassignments.len());
        // A partition named twice sees its first change.
        let mut decided: BTreeMap<(String, PartitionIndex), PartitionState> = BTreeMap::new();
        for reassignment in reassignments {
            let key = (reassignment.topic.clone(), reassignment.partition);
            let current = match decided.get(&key) {
                Some(state) => state.clone(),
                None => match self.image.partition(&reassignment.topic, reassignment.partition) {
                    Some(state) => state.clone(),
                    None => {
                        outcomes.push(ReassignmentOutcome::UnknownPartition);
                        continue;
                    }
                },
            };
            let next = match &reassignment.target {
                None if !current.reassigning() => Err(ReassignmentOutcome::NoReassignmentInProgress),
                None => Ok(self.reverted(&current)),
                Some(target) => self.check_reassignment(&current, target, allow_factor_change).and_then(|()| {
                    if *target == current.original_replicas() {
                        // Back to where it started: a cancellation, or nothing to do.
                        Ok(if current.reassigning() { self.reverted(&current) } else { None })
                    } else {
                        self.reassigned(&current, target)
                    }
                }),
            };
            match next {
                Err(refused) => outcomes.push(refused),
                Ok(next) => {
                    if let Some(next) = next {
                        batch.push(MetadataRecord::Partition(next.clone()));
                        decided.insert(key, next);
                    }
                    outcomes.push(ReassignmentOutcome::Accepted);
                }
            }
        }
        Ok((self.decided(batch)?, outcomes))
    }

    fn check_reassignment(
        &self,
        current: &PartitionState,
        target: &[BrokerId],
        allow_factor_change: bool,
    ) -> Result<(), ReassignmentOutcome> {
        if let Some(refusal) = assignment_refusal(target, |broker| self.image.brokers.contains_key(&broker)) {
            return Err(ReassignmentOutcome::InvalidAssignment(refusal));
        }
        let from = current.original_replicas().len();
        if !allow_factor_change && target.len() != from {
            return Err(ReassignmentOutcome::ReplicationFactorChange { from, to: target.len() });
        }
        Ok(())
    }

    /// `current` reassigned to `target` (validated), completed at once if the ISR allows.
    fn reassigned(
        &self,
        current: &PartitionState,
        target: &[BrokerId],
    ) -> Result<Option<PartitionState>, ReassignmentOutcome> {
        let original = current.original_replicas();
        let mut replicas = target.to_vec();
        replicas.extend(original.iter().copied().filter(|replica| !target.contains(replica)));
        let adding: Vec<BrokerId> = target.iter().copied().filter(|replica| !original.contains(replica)).collect();
        let removing: Vec<BrokerId> = original.iter().copied().filter(|replica| !target.contains(replica)).collect();
        // Adding replicas of a replaced reassignment that the new one drops leave the ISR.
        let isr: Vec<BrokerId> = current.isr.iter().copied().filter(|member| replicas.contains(member)).collect();
        if isr.is_empty() {
            return Err(ReassignmentOutcome::InvalidAssignment(
                "the target drops every in-sync replica of the reassignment in progress; cancel it first".into(),
            ));
        }
        let base = PartitionState { replicas, adding, removing, ..current.clone() };
        let leader = match current.leader {
            Some(leader) if isr.contains(&leader) => Some(leader),
            _ => {
                let can_lead = |candidate: &BrokerId| self.image.is_active(*candidate);
                self.choose_leader(&base, &isr, &can_lead, false)
            }
        };
        let next = changed(&base, isr, leader)
            .unwrap_or_else(|| PartitionState { partition_epoch: current.partition_epoch + 1, ..base.clone() });
        Ok(self.completed(Some(next.clone()), current).or(Some(next)))
    }

    /// `current` taken back to its original replicas (a cancelled reassignment).
    fn reverted(&self, current: &PartitionState) -> Option<PartitionState> {
        let original = current.original_replicas();
        let mut isr: Vec<BrokerId> = current.isr.iter().copied().filter(|member| original.contains(member)).collect();
        let base =
            PartitionState { replicas: original.clone(), adding: Vec::new(), removing: Vec::new(), ..current.clone() };
        let can_lead = |candidate: &BrokerId| self.image.is_active(*candidate);
        let leader = match current.leader {
            Some(leader) if isr.contains(&leader) => Some(leader),
            _ => self.choose_leader(&base, &isr, &can_lead, false),
        };
        if isr.is_empty() {
            // Only adding replicas were in sync: the original ones keep the ISR they had
            // (offline until one of them is back), as an unclean election would need.
            isr = original;
        }
        Some(
            changed(&base, isr, leader)
                .unwrap_or_else(|| PartitionState { partition_epoch: current.partition_epoch + 1, ..base }),
        )
    }

    /// The first replica (in preferred order) in the ISR that can lead; without one, and if
    /// `unclean` allows it, the first replica outside the ISR that can (an unclean election).
    fn choose_leader(
        &self,
        partition: &PartitionState,
        isr: &[BrokerId],
        can_lead: &dyn Fn(&BrokerId) -> bool,
        unclean: bool,
    ) -> Option<BrokerId> {
        let clean = partition.replicas.iter().find(|replica| isr.contains(replica) && can_lead(replica));
        match clean {
            Some(leader) => Some(*leader),
            None if unclean => partition.replicas.iter().copied().find(|r| can_lead(r)),
            None => None,
        }
    }

    /// Whether `topic` may elect a leader outside its ISR: its own
    /// `unclean.leader.election.enable` if it sets one (a checked "true" or "false"), else this
    /// controller node's dynamic value, else the cluster-wide dynamic default, else the static
    /// setting (Kafka's order).
    fn unclean_allowed(&self, topic: &TopicImage) -> bool {
        let dynamic = |broker: Option<BrokerId>| {
            self.image.broker_configs.get(&broker).and_then(|configs| configs.get(UNCLEAN_LEADER_ELECTION_KEY))
        };
        let value = topic
            .configs
            .get(UNCLEAN_LEADER_ELECTION_KEY)
            .or_else(|| dynamic(Some(self.config.node)))
            .or_else(|| dynamic(None));
        match value.map(String::as_str) {
            Some("true") => true,
            Some("false") => false,
            _ => self.config.unclean_leader_election,
        }
    }

    /// Leaders for partitions that have none, now that a broker came back.
    fn offline_elections(&self) -> RecordBatch {
        let can_lead = |candidate: &BrokerId| self.image.is_active(*candidate);
        self.image
            .partitions()
            .filter(|(_, partition)| partition.leader.is_none())
            .filter_map(|(topic, partition)| {
                let leader = self.choose_leader(partition, &partition.isr, &can_lead, self.unclean_allowed(topic))?;
                let isr = if partition.isr.contains(&leader) { partition.isr.clone() } else { vec![leader] };
                changed(partition, isr, Some(leader)).map(MetadataRecord::Partition)
            })
            .collect()
    }

    /// Creates a topic, placing replicas over the active brokers unless assigned explicitly.
    pub fn create_topic(&mut self, topic: &NewTopic) -> Result<RecordBatch, ControllerError> {
        if self.image.topic(&topic.name).is_some() {
            return Err(ControllerError::TopicExists(topic.name.clone()));
        }
        if self.image.topic_by_id(topic.id).is_some() {
            return Err(ControllerError::Corrupt(format!("topic id {} is taken", topic.id)));
        }
        let assignment = if topic.assignment.is_empty() {
            if topic.partitions < 1 || topic.partitions > PARTITIONS_PER_TOPIC_MAX {
                return Err(ControllerError::InvalidPartitions(format!(
                    "number of partitions {} is not in 1..={PARTITIONS_PER_TOPIC_MAX}",
                    topic.partitions
                )));
            }
            let factor = match topic.replication_factor {
                -1 => self.config.default_replication_factor,
                factor => factor,
            };
            self.place(topic.id, 0, topic.partitions, factor)?
        } else {
            if topic.partitions != -1 || topic.replication_factor != -1 {
                return Err(ControllerError::InvalidReplicaAssignment(
                    "an explicit assignment takes neither a partition count nor a replication factor".into(),
                ));
            }
            self.check_assignment(&topic.assignment, None)?;
            topic.assignment.clone()
        };
        let mut batch =
            vec![MetadataRecord::Topic { id: topic.id, name: topic.name.clone(), configs: topic.configs.clone() }];
        for (index, replicas) in assignment.into_iter().enumerate() {
            batch.push(MetadataRecord::Partition(self.new_partition(topic.id, index, replicas)?));
        }
        self.decided(batch)
    }

    /// Grows a topic to `count` partitions.
    pub fn create_partitions(
        &mut self,
        name: &str,
        count: i32,
        assignment: &[Vec<BrokerId>],
    ) -> Result<RecordBatch, ControllerError> {
        let topic = self.image.topic(name).ok_or_else(|| ControllerError::UnknownTopic(name.to_string()))?.clone();
        let existing = topic.partitions.len() as i32;
        if count <= existing || count > PARTITIONS_PER_TOPIC_MAX {
            return Err(ControllerError::InvalidPartitions(format!(
                "topic {name:?} has {existing} partitions; the new count must be above it and at most {PARTITIONS_PER_TOPIC_MAX}, not {count}"
            )));
        }
        let factor = topic.partitions.first().map_or(1, |partition| partition.replicas.len()) as i16;
        let added = if assignment.is_empty() {
            self.place(topic.id, existing, count - existing, factor)?
        } else {
            if assignment.len() as i32 != count - existing {
                return Err(ControllerError::InvalidReplicaAssignment(format!(
                    "{} assignments for {} new partitions",
                    assignment.len(),
                    count - existing
                )));
            }
            self.check_assignment(assignment, Some(factor as usize))?;
            assignment.to_vec()
        };
        let mut batch = Vec::new();
        for (offset, replicas) in added.into_iter().enumerate() {
            batch.push(MetadataRecord::Partition(self.new_partition(
                topic.id,
                existing as usize + offset,
                replicas,
            )?));
        }
        self.decided(batch)
    }

    pub fn delete_topic(&mut self, name: &str) -> Result<RecordBatch, ControllerError> {
        let topic = self.image.topic(name).ok_or_else(|| ControllerError::UnknownTopic(name.to_string()))?;
        let id = topic.id;
        self.decided(vec![MetadataRecord::RemoveTopic { id }])
    }

    /// Replaces the own configs of topic `name` (checked by the broker that asked: the controller
    /// does not know what a config means, only that the topic has them).
    pub fn alter_topic_configs(
        &mut self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<RecordBatch, ControllerError> {
        let topic = self.image.topic(name).ok_or_else(|| ControllerError::UnknownTopic(name.to_string()))?;
        let id = topic.id;
        self.decided(vec![MetadataRecord::TopicConfigs { id, configs }])
    }

    /// Replaces the dynamic configs of `broker` (`None`: the cluster-wide default), checked by
    /// the broker that asked.
    pub fn alter_broker_configs(
        &mut self,
        broker: Option<BrokerId>,
        configs: BTreeMap<String, String>,
    ) -> Result<RecordBatch, ControllerError> {
        self.decided(vec![MetadataRecord::BrokerConfigs { broker, configs }])
    }

    /// A new block of producer ids for a broker; never one handed out before.
    pub fn allocate_producer_ids(
        &mut self,
        broker: BrokerId,
        epoch: u64,
    ) -> Result<(RecordBatch, Range<u64>), ControllerError> {
        match self.image.brokers.get(&broker) {
            Some(registration) if registration.epoch == epoch => {}
            _ => return Err(ControllerError::StaleBrokerEpoch { broker, epoch }),
        }
        let start = self.image.next_producer_id;
        let next = start + PRODUCER_ID_BLOCK_SIZE;
        let batch = self.decided(vec![MetadataRecord::ProducerIds { broker, epoch, next }])?;
        Ok((batch, start..next))
    }

    /// Preferred-leader election (Kafka's ElectLeaders, type PREFERRED) for the given partitions,
    /// or for every partition whose preferred leader can take over (`auto.leader.rebalance.enable`).
    pub fn elect_preferred(
        &mut self,
        partitions: Option<&[(String, PartitionIndex)]>,
    ) -> Result<(RecordBatch, Vec<Election>), ControllerError> {
        let targets: Vec<(String, PartitionIndex)> = match partitions {
            Some(partitions) => partitions.to_vec(),
            None => {
                self.image.partitions().map(|(topic, partition)| (topic.name.clone(), partition.partition)).collect()
            }
        };
        let mut batch = Vec::new();
        let mut results = Vec::with_capacity(targets.len());
        for (topic, index) in &targets {
            let Some(partition) = self.image.partition(topic, *index) else {
                results.push(Election::UnknownPartition);
                continue;
            };
            let preferred = partition.replicas[0];
            if partition.leader == Some(preferred) {
                results.push(Election::NotNeeded);
            } else if partition.isr.contains(&preferred) && self.image.is_active(preferred) {
                let change = changed(partition, partition.isr.clone(), Some(preferred));
                batch.extend(change.map(MetadataRecord::Partition));
                results.push(Election::Elected);
            } else {
                results.push(Election::PreferredNotAvailable);
            }
        }
        Ok((self.decided(batch)?, results))
    }

    /// Unclean election (Kafka's ElectLeaders, type UNCLEAN) for partitions without a leader:
    /// an ISR member that can lead if there is one, else any live replica (its ISR becomes just
    /// that replica), whatever `unclean.leader.election.enable` says: the operator asked for it.
    pub fn elect_unclean(
        &mut self,
        partitions: &[(String, PartitionIndex)],
    ) -> Result<(RecordBatch, Vec<Election>), ControllerError> {
        let can_lead = |candidate: &BrokerId| self.image.is_active(*candidate);
        let mut batch = Vec::new();
        let mut results = Vec::with_capacity(partitions.len());
        for (topic, index) in partitions {
            let Some(partition) = self.image.partition(topic, *index) else {
                results.push(Election::UnknownPartition);
                continue;
            };
            if partition.leader.is_some() {
                results.push(Election::NotNeeded);
                continue;
            }
            match self.choose_leader(partition, &partition.isr, &can_lead, true) {
                Some(leader) => {
                    let isr = if partition.isr.contains(&leader) { partition.isr.clone() } else { vec![leader] };
                    batch.extend(changed(partition, isr, Some(leader)).map(MetadataRecord::Partition));
                    results.push(Election::Elected);
                }
                None => results.push(Election::EligibleLeadersNotAvailable),
            }
        }
        Ok((self.decided(batch)?, results))
    }

    /// ISR changes asked by `broker` (registered as `broker_epoch`) for partitions it leads: each
    /// is checked against the partition as the controller has it (leader epoch, leadership,
    /// partition epoch, replicas, eligible members) and applied with the partition epoch bumped;
    /// the leader stays. Refused whole if the broker epoch is stale.
    pub fn alter_partition(
        &mut self,
        broker: BrokerId,
        broker_epoch: u64,
        changes: &[IsrChange],
    ) -> Result<(RecordBatch, Vec<IsrChangeOutcome>), ControllerError> {
        if self.image.brokers.get(&broker).is_none_or(|registration| registration.epoch != broker_epoch) {
            return Err(ControllerError::StaleBrokerEpoch { broker, epoch: broker_epoch });
        }
        let mut batch = Vec::new();
        let mut outcomes = Vec::with_capacity(changes.len());
        for change in changes {
            let outcome = match self.image.partition(&change.topic, change.partition) {
                None => IsrChangeOutcome::UnknownPartition,
                Some(partition) => match self.check_isr_change(broker, partition, change) {
                    Err(refused) => refused,
                    Ok(()) => match self.completed(changed(partition, change.isr.clone(), partition.leader), partition)
                    {
                        Some(next) => {
                            batch.push(MetadataRecord::Partition(next.clone()));
                            IsrChangeOutcome::Changed(Box::new(next))
                        }
                        None => IsrChangeOutcome::Changed(Box::new(partition.clone())),
                    },
                },
            };
            outcomes.push(outcome);
        }
        Ok((self.decided(batch)?, outcomes))
    }

    fn check_isr_change(
        &self,
        broker: BrokerId,
        partition: &PartitionState,
        change: &IsrChange,
    ) -> Result<(), IsrChangeOutcome> {
        if change.leader_epoch != partition.leader_epoch {
            return Err(IsrChangeOutcome::FencedLeaderEpoch);
        }
        if partition.leader != Some(broker) {
            return Err(IsrChangeOutcome::NotLeader);
        }
        if change.partition_epoch != partition.partition_epoch {
            return Err(IsrChangeOutcome::InvalidUpdateVersion);
        }
        let distinct: BTreeSet<&BrokerId> = change.isr.iter().collect();
        let valid = distinct.len() == change.isr.len()
            && change.isr.iter().all(|member| partition.replicas.contains(member))
            && change.isr.contains(&broker);
        if !valid {
            return Err(IsrChangeOutcome::InvalidIsr);
        }
        // Members already in the ISR stay eligible (Kafka shrinks them out, it does not refuse
        // the shrink); a joining one must be able to lead.
        match change.isr.iter().find(|member| !partition.isr.contains(member) && !self.image.is_active(**member)) {
            Some(member) => Err(IsrChangeOutcome::IneligibleReplica(*member)),
            None => Ok(()),
        }
    }

    fn new_partition(
        &self,
        topic_id: TopicId,
        index: usize,
        replicas: Vec<BrokerId>,
    ) -> Result<PartitionState, ControllerError> {
        let isr: Vec<BrokerId> = replicas.iter().copied().filter(|replica| self.image.is_active(*replica)).collect();
        let Some(leader) = isr.first().copied() else {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "every broker assigned to partition {index} is fenced or shutting down"
            )));
        };
        Ok(PartitionState {
            topic_id,
            partition: PartitionIndex(index as i32),
            replicas,
            isr,
            leader: Some(leader),
            leader_epoch: 0,
            partition_epoch: 0,
            adding: Vec::new(),
            removing: Vec::new(),
        })
    }

    fn check_assignment(&self, assignment: &[Vec<BrokerId>], factor: Option<usize>) -> Result<(), ControllerError> {
        let factor = factor.unwrap_or_else(|| assignment.first().map_or(0, Vec::len));
        if assignment.len() as i32 > PARTITIONS_PER_TOPIC_MAX {
            return Err(ControllerError::InvalidPartitions(format!("more than {PARTITIONS_PER_TOPIC_MAX} partitions")));
        }
        for (index, replicas) in assignment.iter().enumerate() {
            let distinct: BTreeSet<&BrokerId> = replicas.iter().collect();
            let refusal = if replicas.is_empty() {
                Some("no replicas".to_string())
            } else if replicas.len() != factor {
                Some(format!("{} replicas where the others have {factor}", replicas.len()))
            } else if distinct.len() != replicas.len() {
                Some("a broker named twice".to_string())
            } else {
                replicas
                    .iter()
                    .find(|replica| !self.image.brokers.contains_key(replica))
                    .map(|unknown| format!("broker {unknown} is not registered"))
            };
            if let Some(refusal) = refusal {
                return Err(ControllerError::InvalidReplicaAssignment(format!("partition {index}: {refusal}")));
            }
        }
        Ok(())
    }

    /// Kafka's replica placement (`AdminUtils.assignReplicasToBrokers`, rack-aware form): active
    /// brokers in a rack-alternating order; partition `p`'s first replica is broker
    /// `(start + p) % n`, the others follow at a shift that grows every `n` partitions, skipping
    /// brokers of racks already used while some rack is unused. Leaders (first replicas) are
    /// spread evenly; `start` comes from the topic id so topics start on different brokers.
    fn place(
        &self,
        topic_id: TopicId,
        first_partition: i32,
        count: i32,
        factor: i16,
    ) -> Result<Vec<Vec<BrokerId>>, ControllerError> {
        let brokers = rack_alternated(&self.image);
        let available = brokers.len();
        if factor < 1 || factor as usize > available {
            return Err(ControllerError::InvalidReplicationFactor { requested: factor, available });
        }
        let factor = factor as usize;
        let racks: BTreeSet<&Option<String>> = brokers.iter().map(|(_, rack)| rack).collect();
        let start = usize::from(topic_id.0[0]) % available;
        let start_shift = usize::from(topic_id.0[1]) % available;
        let mut assignment = Vec::with_capacity(count as usize);
        for partition in first_partition..first_partition + count {
            let partition = partition as usize;
            let shift = start_shift + partition / available;
            let first = (partition + start) % available;
            let mut replicas = vec![brokers[first].0];
            let mut used_racks = BTreeSet::from([&brokers[first].1]);
            let mut step = 0;
            while replicas.len() < factor {
                let offset = 1 + (shift + step) % (available - 1).max(1);
                let (candidate, rack) = &brokers[(first + offset) % available];
                step += 1;
                let rack_used = used_racks.contains(rack) && used_racks.len() < racks.len();
                if replicas.contains(candidate) || (rack_used && step < 2 * available) {
                    continue;
                }
                replicas.push(*candidate);
                used_racks.insert(rack);
            }
            assignment.push(replicas);
        }
        Ok(assignment)
    }
}

/// Active brokers ordered so that consecutive ones are in different racks where possible
/// (racks in name order, brokers by id within a rack, taken round-robin).
fn rack_alternated(image: &MetadataImage) -> Vec<(BrokerId, Option<String>)> {
    let mut by_rack: BTreeMap<Option<String>, Vec<BrokerId>> = BTreeMap::new();
    for broker in image.active_brokers() {
        by_rack.entry(broker.rack.clone()).or_default().push(broker.id);
    }
    let mut ordered = Vec::new();
    let longest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    for round in 0..longest {
        for (rack, brokers) in &by_rack {
            if let Some(broker) = brokers.get(round) {
                ordered.push((*broker, rack.clone()));
            }
        }
    }
    ordered
}

/// The new state of `partition` with `isr` and `leader`, epochs bumped; None if nothing changes.
fn changed(partition: &PartitionState, isr: Vec<BrokerId>, leader: Option<BrokerId>) -> Option<PartitionState> {
    if isr == partition.isr && leader == partition.leader {
        return None;
    }
    let leader_epoch = if leader != partition.leader { partition.leader_epoch + 1 } else { partition.leader_epoch };
    Some(PartitionState {
        isr,
        leader,
        leader_epoch,
        partition_epoch: partition.partition_epoch + 1,
        ..partition.clone()
    })
}

#[cfg(test)]
mod tests;
