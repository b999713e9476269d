//! One shard's state: its partitions, its group coordinator and the `__consumer_offsets`
//! partitions behind it.
//!
//! Owns: which (topic, partition) is which replica on this shard (a topic's partitions are
//! directories `<topic>-<partition>` under the data dir, as in Kafka; which shard owns which
//! follows from `catalog::owner_of`; in a cluster, only the partitions whose replicas the
//! metadata names this broker among have one), and the group coordinator of the groups whose offsets
//! partitions this shard owns. What a partition does (appends, acknowledgements, reads, high
//! watermark, producer state) is the `replica` crate's business: this module only names
//! partitions and opens, deletes and closes them. Lives on one shard thread inside an
//! `Rc<RefCell<_>>`; never borrowed across an `.await`. Which topics exist is the catalog's
//! business (changed only by the controller).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::rc::Rc;

use crate::quorum::link::QuorumLink;
use engine::{LeaderEpoch, LogId};
use futures_channel::mpsc;
use replica::{Ack, Acks, Partition, Partitions, ReplicaError, ReplicaId, Role};
use std::sync::Arc;

use crate::catalog::{Catalog, SharedCatalog};
use crate::clock::now_ms;
use crate::config::topic::TopicSettings;
use crate::config::Config;
use crate::coordinators::groups::{self, store};
use crate::metrics::{GroupOffset, PartitionSnapshot, ReplicationSnapshot, ShardMetrics, ShardSnapshot};

/// An offsets log is cleaned (its live state written again at its end, everything before
/// dropped) once it holds this many segments' bytes (`offsets.topic.segment.bytes`), and twice
/// its size after its last clean.
pub const OFFSETS_LOG_CLEAN_SEGMENTS: u64 = 2;
/// Bytes of records in one batch of a clean's snapshot (well under `message.max.bytes`).
pub const OFFSETS_CLEAN_BATCH_BYTES_MAX: usize = 256 * 1024;

/// A single node leads every partition it has, in the epoch it has always had.
pub const SINGLE_NODE_ROLE: Role = Role::Leader { epoch: LeaderEpoch(0) };

/// A partition as the metadata image has it, for this broker's replica of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub role: Role,
    /// The leader's broker id; `None`: offline.
    pub leader: Option<i32>,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// The partition epoch of this state (what an ISR change must name).
    pub partition_epoch: i32,
    /// The topic's `min.insync.replicas` (the controller resolves it: the topic's own, else the
    /// dynamic broker value, else the static one); `None`: the static broker value.
    pub min_insync: Option<i32>,
}

impl Assignment {
    /// The `min.insync.replicas` this partition's `acks=all` writes need (`broker_min_insync`:
    /// where the topic sets none): never more than it has replicas, as Kafka's
    /// `Partition.effectiveMinIsr` (a one-replica topic with `min.insync.replicas=2` takes
    /// `acks=all` writes, on one node as in a cluster).
    pub fn effective_min_insync(&self, broker_min_insync: i32) -> usize {
        let configured = usize::try_from(self.min_insync.unwrap_or(broker_min_insync).max(1)).unwrap_or(1);
        configured.min(self.replicas.len().max(1))
    }
}

/// Where a follower replica copies from: its leader, in the epoch it follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowTarget {
    pub leader: i32,
    pub epoch: LeaderEpoch,
}

pub struct ShardState {
    pub config: Config,
    /// The replicas of this shard (topics' partitions and `__consumer_offsets` partitions).
    pub partitions: Partitions,
    /// Topic → the partitions of it this shard owns.
    topics: BTreeMap<String, BTreeMap<i32, LogId>>,
    /// The consumer groups whose offsets partitions this shard owns.
    pub groups: groups::Coordinator,
    /// The `__consumer_offsets` partitions this shard owns.
    pub(crate) offsets_logs: BTreeMap<i32, LogId>,
    /// In a cluster: the link to the quorum, whose lease says whether this broker may lead.
    pub quorum: Option<Arc<QuorumLink>>,
    /// In a cluster: the topics that exist, so that a partition whose replicas are all on other
    /// brokers is told from one that does not exist ([`ReplicaError::NotReplica`]).
    pub catalog: Option<Arc<SharedCatalog>>,
    /// In a cluster with follower fetching on: the partitions this shard follows, and from whom
    /// (what the shard's fetchers copy; `runtime::fetcher`).
    pub followed: BTreeMap<(String, i32), FollowTarget>,
    /// In a cluster with follower fetching on: each local replica's assignment as last applied
    /// (what the shard's ISR checks read; `runtime::isr`).
    pub assignments: BTreeMap<(String, i32), Assignment>,
    /// Replication events counted on this shard (issue 14; the metrics endpoint is issue 16).
    pub replication_counters: ReplicationCounters,
    /// What this shard counts for the metrics endpoint (shared with its connections).
    pub metrics: Rc<ShardMetrics>,
}

/// Replication events of one shard since it started (Kafka's `IsrShrinksPerSec`,
/// `IsrExpandsPerSec`, and the truncations of divergent tails), counted for the metrics
/// endpoint (issue 16) and logged by the ISR task meanwhile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicationCounters {
    /// ISR changes the controller accepted that removed a follower.
    pub isr_shrinks: u64,
    /// ISR changes the controller accepted that added a follower.
    pub isr_expands: u64,
    /// Divergent tails a follower cut (and starts over at a leader's log start).
    pub truncations: u64,
}

/// The state of the partitions a shard holds replicas of, from their assignments (Kafka's
/// `UnderReplicatedPartitions`, `UnderMinIsrPartitionsCount`, `OfflinePartitionsCount`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicationGauges {
    /// Partitions this broker leads.
    pub led: usize,
    /// Led partitions whose ISR is smaller than their replicas.
    pub under_replicated: usize,
    /// Led partitions whose ISR is smaller than their `min.insync.replicas`.
    pub under_min_isr: usize,
    /// Partitions held here that have no leader.
    pub offline: usize,
}

/// Computes the gauges from assignments (`broker_min_insync`: where a topic sets none).
pub fn replication_gauges<'a>(
    assignments: impl IntoIterator<Item = &'a Assignment>,
    broker_min_insync: i32,
) -> ReplicationGauges {
    let mut gauges = ReplicationGauges::default();
    for assignment in assignments {
        if assignment.leader.is_none() {
            gauges.offline += 1;
        }
        if let Role::Leader { .. } = assignment.role {
            gauges.led += 1;
            if assignment.isr.len() < assignment.replicas.len() {
                gauges.under_replicated += 1;
            }
            if assignment.isr.len() < assignment.effective_min_insync(broker_min_insync) {
                gauges.under_min_isr += 1;
            }
        }
    }
    gauges
}

impl std::fmt::Debug for ShardState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardState").field("topics", &self.topics.len()).finish()
    }
}

impl ShardState {
    /// Opens the partition logs this shard owns: those of `catalog` for which `owns` is true (in a
    /// cluster, only those with a directory: the replicas this broker held when it stopped; the
    /// metadata image then opens the ones it lacks and removes the ones it no longer holds).
    pub fn open(
        config: Config,
        commit_trigger: mpsc::UnboundedSender<()>,
        catalog: &Catalog,
        owns: impl Fn(&str, i32) -> bool,
    ) -> anyhow::Result<ShardState> {
        let backend = engine::io::open_backend(engine::io::BackendKind::Auto)?;
        let shard_config = engine::ShardConfig {
            write_mode: config.write_mode,
            batch_bytes_max: config.message_max_bytes.max(engine::limits::BATCH_HEADER_BYTES),
            recycled_segments_per_log_max: config.recycled_segments_per_log_max,
            cache_bytes: usize::try_from(config.read_cache_bytes / config.shard_count as u64).unwrap_or(usize::MAX),
            ..engine::ShardConfig::default()
        };
        let engine = engine::Shard::new(backend, shard_config)?;
        let mut state = ShardState {
            groups: groups::Coordinator::new(config.groups),
            offsets_logs: BTreeMap::new(),
            config,
            partitions: Partitions::new(engine, commit_trigger),
            topics: BTreeMap::new(),
            quorum: None,
            catalog: None,
            followed: BTreeMap::new(),
            assignments: BTreeMap::new(),
            replication_counters: ReplicationCounters::default(),
            metrics: Rc::new(ShardMetrics::default()),
        };
        let replicas_only = state.config.cluster.is_some();
        for (topic, count) in &catalog.topics {
            let owned: Vec<i32> = (0..*count)
                .filter(|partition| owns(topic, *partition))
                .filter(|partition| !replicas_only || state.partition_dir(topic, *partition).is_dir())
                .collect();
            let settings = catalog.settings(&state.config, topic);
            state.open_partitions(topic, &owned, settings.log)?;
        }
        for partition in 0..state.config.offsets_partitions {
            if owns(groups::OFFSETS_TOPIC, partition) {
                state.open_offsets_partition(partition)?;
            }
        }
        Ok(state)
    }

    fn offsets_log_config(&self) -> engine::LogConfig {
        engine::LogConfig {
            segment_bytes: self.config.offsets_segment_bytes,
            retention_ms: -1,
            retention_bytes: -1,
            compression: engine::CompressionType::Producer,
            ..self.config.log
        }
    }

    /// Opens one `__consumer_offsets` partition and, on one node, replays its committed offsets
    /// (in a cluster: when this broker becomes its leader, [`ShardState::coordinate`]).
    fn open_offsets_partition(&mut self, partition: i32) -> anyhow::Result<()> {
        let dir = self.partition_dir(groups::OFFSETS_TOPIC, partition);
        let (id, report) = self.partitions.open(&dir, self.offsets_log_config(), self.initial_role(), now_ms())?;
        if !report.truncations.is_empty() {
            tracing::warn!(partition, truncated_bytes = report.truncated_bytes(), "recovered an offsets partition");
        }
        self.offsets_logs.insert(partition, id);
        if self.config.cluster.is_none() {
            self.replay_offsets(partition, id)?;
        }
        Ok(())
    }

    /// Loads the groups of one offsets partition from its whole log.
    fn replay_offsets(&mut self, partition: i32, id: LogId) -> Result<(), ReplicaError> {
        let mut records = Vec::new();
        let start = self.partitions.log_start_offset(id)?;
        self.partitions.scan(id, start, |bytes, headers| records.extend(store::decode_all(bytes, headers)))?;
        let replayed = records.len();
        let now = now_ms();
        for record in records {
            self.groups.apply(record, now);
        }
        if replayed > 0 {
            tracing::info!(partition, records = replayed, "replayed committed offsets");
        }
        Ok(())
    }

    /// In a cluster: coordinates the groups of the offsets partitions this broker leads (of
    /// `partitions`). Those it newly leads are loaded again from their logs, which this broker
    /// copied while it followed them: the commits acknowledged by the previous coordinator are
    /// there (`acks=all` on the offsets partition), and what this broker knew before is dropped.
    pub fn coordinate(&mut self, partitions: i32, led: BTreeSet<i32>) {
        let newly = self.groups.set_coordinated(partitions, led);
        for partition in newly {
            let Some(&id) = self.offsets_logs.get(&partition) else { continue };
            self.groups.forget_partition(partition, partitions);
            if let Err(error) = self.replay_offsets(partition, id) {
                tracing::error!(partition, %error, "could not load the committed offsets of a partition this broker now leads");
            }
        }
    }

    /// The log of a replica this shard holds, `__consumer_offsets` included (replication reaches
    /// those; client requests go through [`ShardState::partition_id`], which does not).
    pub fn replica_log(&self, topic: &str, partition: i32) -> Result<LogId, ReplicaError> {
        if topic == groups::OFFSETS_TOPIC {
            if let Some(id) = self.offsets_logs.get(&partition) {
                return Ok(*id);
            }
        }
        self.partition_id(topic, partition)
    }

    /// Appends offset records for `group` to its offsets partition; the [`Ack`] resolves once
    /// the high watermark covers them. `UnknownPartition`: this shard does not coordinate `group`.
    pub fn append_offsets(&mut self, group: &str, records: &[store::Record]) -> Result<Ack, ReplicaError> {
        let partition = groups::offsets_partition(group, self.config.offsets_partitions);
        self.append_to_offsets_partition(partition, records)
    }

    /// Appends offset records to `__consumer_offsets` partition `partition` (`acks=all`).
    pub fn append_to_offsets_partition(
        &mut self,
        partition: i32,
        records: &[store::Record],
    ) -> Result<Ack, ReplicaError> {
        let id = *self.offsets_logs.get(&partition).ok_or(ReplicaError::UnknownPartition)?;
        let batch = engine::batch::ValidatedBatches::validate(store::encode_batch(records, now_ms()).into())
            .map_err(engine::EngineError::from)?;
        let appended = self.partitions.append(id, &batch, Acks::All, now_ms())?;
        Ok(appended.ack.expect("acks=all always waits"))
    }

    /// The offsets partitions due for a clean: coordinated here, not being cleaned, with no
    /// write in flight, and whose log holds at least [`OFFSETS_LOG_CLEAN_SEGMENTS`] segments'
    /// bytes and twice its size after its last clean.
    pub fn offsets_partitions_to_clean(&self) -> Vec<i32> {
        self.offsets_logs.keys().copied().filter(|partition| self.offsets_partition_due(*partition)).collect()
    }

    /// Whether offsets partition `partition` is due for a clean (see
    /// [`ShardState::offsets_partitions_to_clean`]).
    pub fn offsets_partition_due(&self, partition: i32) -> bool {
        let groups = &self.groups;
        let Some(&id) = self.offsets_logs.get(&partition) else { return false };
        if !groups.coordinates(partition)
            || groups.cleaning.contains(&partition)
            || groups.writing.get(&partition).copied().unwrap_or(0) > 0
        {
            return false;
        }
        let floor_bytes = self.config.offsets_segment_bytes.saturating_mul(OFFSETS_LOG_CLEAN_SEGMENTS);
        let cleaned_bytes = groups.cleaned_bytes.get(&partition).copied().unwrap_or(0);
        let threshold_bytes = floor_bytes.max(cleaned_bytes.saturating_mul(2));
        self.partitions.size_bytes(id).is_ok_and(|size_bytes| size_bytes >= threshold_bytes)
    }

    /// The first step of a clean of offsets partition `partition`: appends the current state of
    /// its groups (every committed offset, each group's last durable membership) at the log end, in batches of at most
    /// [`OFFSETS_CLEAN_BATCH_BYTES_MAX`]. Returns the offset the snapshot starts at, below which
    /// the log holds nothing that replay needs once the acknowledgements have come, and those
    /// acknowledgements. The caller must have checked that no write to it is in flight.
    pub fn append_offsets_snapshot(&mut self, partition: i32) -> Result<(engine::Offset, Vec<Ack>), ReplicaError> {
        let id = *self.offsets_logs.get(&partition).ok_or(ReplicaError::UnknownPartition)?;
        let start = self.partitions.next_offset(id)?;
        let records = self.groups.snapshot(partition, self.config.offsets_partitions);
        let mut acks = Vec::new();
        let mut batch: Vec<store::Record> = Vec::new();
        let mut batch_bytes = 0usize;
        for record in records {
            let record_bytes = store::record_bytes_max(&record);
            if !batch.is_empty() && batch_bytes + record_bytes > OFFSETS_CLEAN_BATCH_BYTES_MAX {
                acks.push(self.append_to_offsets_partition(partition, &batch)?);
                batch.clear();
                batch_bytes = 0;
            }
            batch_bytes += record_bytes;
            batch.push(record);
        }
        if !batch.is_empty() {
            acks.push(self.append_to_offsets_partition(partition, &batch)?);
        }
        Ok((start, acks))
    }

    /// The last step of a clean, once its snapshot is durable: the log start of offsets
    /// partition `partition` moves to `start` (the engine deletes the segments wholly below it;
    /// followers take the new start from their fetches). Returns the log's bytes afterwards.
    pub fn advance_offsets_log_start(&mut self, partition: i32, start: engine::Offset) -> Result<u64, ReplicaError> {
        let id = *self.offsets_logs.get(&partition).ok_or(ReplicaError::UnknownPartition)?;
        self.partitions.delete_records(id, Some(start), now_ms())?;
        self.partitions.size_bytes(id)
    }

    fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.config.data_dir.join(format!("{topic}-{partition}"))
    }

    /// Opens (creating if needed) the given partitions of `topic` on this shard, with the log
    /// configuration of the topic's settings.
    pub fn open_partitions(
        &mut self,
        topic: &str,
        partitions: &[i32],
        log: engine::LogConfig,
    ) -> Result<(), ReplicaError> {
        for &partition in partitions {
            if self.topics.get(topic).is_some_and(|owned| owned.contains_key(&partition)) {
                continue;
            }
            let dir = self.partition_dir(topic, partition);
            let (id, report) = self.partitions.open(&dir, log, self.initial_role(), now_ms())?;
            if !report.truncations.is_empty() || !report.deleted_segments.is_empty() {
                tracing::warn!(%topic, partition, truncated_bytes = report.truncated_bytes(), deleted_segments = report.deleted_segments.len(), "recovered partition");
            }
            self.topics.entry(topic.to_string()).or_default().insert(partition, id);
        }
        Ok(())
    }

    /// Applies a topic's changed settings to this shard's open partitions of it (the next
    /// append, retention pass and flush follow them).
    pub fn apply_topic_settings(&mut self, topic: &str, settings: &TopicSettings) -> Result<(), ReplicaError> {
        let Some(owned) = self.topics.get(topic) else { return Ok(()) };
        for id in owned.values() {
            self.partitions.set_log_config(*id, settings.log)?;
        }
        Ok(())
    }

    /// The role a partition opens in: on one node it leads; in a cluster it follows until the
    /// metadata image makes it leader (`set_role`), so no write is taken before the image says so.
    fn initial_role(&self) -> Role {
        match self.config.cluster {
            None => SINGLE_NODE_ROLE,
            Some(_) => Role::Follower { epoch: LeaderEpoch(0) },
        }
    }

    /// Makes this shard's replica of a partition what the metadata image says: leader or follower
    /// in the image's epoch and, with follower fetching on, with the image's replicas and ISR
    /// (which the high watermark then follows) and the leader to copy from.
    pub fn assign(&mut self, topic: &str, partition: i32, assignment: &Assignment) -> Result<(), ReplicaError> {
        let id = self.replica_log(topic, partition)?;
        if self.partitions.get(id)?.role() != assignment.role {
            match assignment.role {
                Role::Leader { epoch } => self.partitions.become_leader(id, epoch)?,
                Role::Follower { epoch } => self.partitions.become_follower(id, epoch)?,
            }
        }
        let key = (topic.to_string(), partition);
        if !self.config.follower_fetch {
            return Ok(());
        }
        let ids = |list: &[i32]| list.iter().map(|id| ReplicaId(*id)).collect::<Vec<_>>();
        let min_insync = assignment.effective_min_insync(self.config.min_insync_replicas);
        let me = ReplicaId(self.config.node_id);
        self.partitions.set_replication(
            id,
            me,
            &ids(&assignment.replicas),
            &ids(&assignment.isr),
            min_insync,
            now_ms(),
        )?;
        match (assignment.role, assignment.leader) {
            (Role::Follower { epoch }, Some(leader)) if leader != self.config.node_id => {
                self.followed.insert(key.clone(), FollowTarget { leader, epoch });
            }
            _ => {
                self.followed.remove(&key);
            }
        }
        self.assignments.insert(key, assignment.clone());
        Ok(())
    }

    /// Deletes this shard's partitions of `topic` numbered `from` and up, and their files.
    pub fn delete_partitions(&mut self, topic: &str, from: i32) {
        let Some(owned) = self.topics.get_mut(topic) else { return };
        let removed = owned.split_off(&from);
        if owned.is_empty() {
            self.topics.remove(topic);
        }
        self.delete_replicas(topic, removed);
    }

    /// Deletes this shard's replicas of the given partitions of `topic` (this broker is no longer
    /// among their replicas), and their files.
    pub fn delete_partition_list(&mut self, topic: &str, partitions: &[i32]) {
        let Some(owned) = self.topics.get_mut(topic) else { return };
        let removed: BTreeMap<i32, LogId> =
            partitions.iter().filter_map(|partition| Some((*partition, owned.remove(partition)?))).collect();
        if owned.is_empty() {
            self.topics.remove(topic);
        }
        self.delete_replicas(topic, removed);
    }

    fn delete_replicas(&mut self, topic: &str, removed: BTreeMap<i32, LogId>) {
        for (partition, id) in removed {
            self.followed.remove(&(topic.to_string(), partition));
            self.assignments.remove(&(topic.to_string(), partition));
            if let Err(error) = self.partitions.delete(id, now_ms()) {
                tracing::error!(%topic, partition, %error, "could not delete partition files");
            }
            let dir = self.partition_dir(topic, partition);
            if let Err(error) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), %error, "could not remove partition directory");
            }
        }
    }

    /// The replica of a partition this shard owns.
    pub fn partition_id(&self, topic: &str, partition: i32) -> Result<LogId, ReplicaError> {
        self.topics.get(topic).and_then(|owned| owned.get(&partition)).copied().ok_or(ReplicaError::UnknownPartition)
    }

    /// The replica of a partition this shard owns, for a client request that names the leader
    /// epoch it knows (`-1`: none): Kafka's checks in Kafka's order (existence, epoch, then
    /// leadership). A partition that exists with no replica here is `NotReplica`.
    pub fn leader_replica(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
    ) -> Result<(LogId, &Partition), ReplicaError> {
        let id = self.partition_id(topic, partition).map_err(|error| {
            let exists = self.catalog.as_ref().is_some_and(|catalog| {
                catalog.load().partitions(topic).is_some_and(|count| (0..count).contains(&partition))
            });
            if exists {
                ReplicaError::NotReplica
            } else {
                error
            }
        })?;
        self.checked_leader(id, current_leader_epoch)
    }

    /// A consumer's read from any replica (KIP-392, Fetch v11+): Kafka's checks of existence and
    /// the request's leader epoch, no leadership check. A follower serves up to its high
    /// watermark (its leader's, within what it has); a leader as [`ShardState::leader_replica`].
    pub fn readable_replica(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
    ) -> Result<(LogId, &Partition), ReplicaError> {
        match self.leader_replica(topic, partition, current_leader_epoch) {
            Err(ReplicaError::NotLeader { .. }) => {}
            other => return other,
        }
        let id = self.partition_id(topic, partition)?;
        let replica = self.partitions.get(id)?;
        replica.check_epoch((current_leader_epoch >= 0).then_some(LeaderEpoch(current_leader_epoch)))?;
        Ok((id, replica))
    }

    /// [`ShardState::leader_replica`] for another broker's follower: `__consumer_offsets`
    /// partitions are replicated too.
    pub fn leader_replica_for_follower(
        &self,
        topic: &str,
        partition: i32,
        current_leader_epoch: i32,
        follower: ReplicaId,
    ) -> Result<(LogId, &Partition), ReplicaError> {
        let (id, replica) = if topic == groups::OFFSETS_TOPIC {
            let id = self.replica_log(topic, partition)?;
            self.checked_leader(id, current_leader_epoch)?
        } else {
            self.leader_replica(topic, partition, current_leader_epoch)?
        };
        // Only the partition's other replicas may read past the high watermark.
        replica.check_follower_fetch(follower, current_leader_epoch >= 0)?;
        Ok((id, replica))
    }

    fn checked_leader(&self, id: LogId, current_leader_epoch: i32) -> Result<(LogId, &Partition), ReplicaError> {
        let replica = self.partitions.get(id)?;
        replica.check_leader_request((current_leader_epoch >= 0).then_some(LeaderEpoch(current_leader_epoch)))?;
        // A broker whose heartbeats went unanswered for the session timeout has been fenced by
        // the controller, whatever its image still says: it leads nothing.
        if self.quorum.as_ref().is_some_and(|quorum| !quorum.lease_valid()) {
            return Err(ReplicaError::NotLeader { epoch: replica.leader_epoch() });
        }
        Ok((id, replica))
    }

    /// Every replica this shard holds with the bytes of its log: (topic, partition, bytes).
    pub fn replica_sizes(&self) -> Vec<(String, i32, u64)> {
        let topics = self.topics.iter().flat_map(|(topic, partitions)| {
            partitions.iter().map(move |(partition, id)| (topic.as_str(), *partition, *id))
        });
        let offsets = self.offsets_logs.iter().map(|(partition, id)| (groups::OFFSETS_TOPIC, *partition, *id));
        topics
            .chain(offsets)
            .filter_map(|(topic, partition, id)| {
                self.partitions.size_bytes(id).ok().map(|bytes| (topic.to_string(), partition, bytes))
            })
            .collect()
    }

    /// This shard's metrics as of now: its counters, its replicas, the committed offsets of the
    /// groups it coordinates, its replication state (for the metrics endpoint).
    pub fn metrics_snapshot(&self) -> ShardSnapshot {
        let mut snapshot = self.metrics.snapshot();
        let topics = self.topics.iter().flat_map(|(topic, partitions)| {
            partitions.iter().map(move |(partition, id)| (topic.as_str(), *partition, *id))
        });
        let offsets = self.offsets_logs.iter().map(|(partition, id)| (groups::OFFSETS_TOPIC, *partition, *id));
        for (topic, partition, id) in topics.chain(offsets) {
            let Ok(replica) = self.partitions.get(id) else { continue };
            snapshot.partitions.push(PartitionSnapshot {
                topic: topic.to_string(),
                partition,
                leader: matches!(replica.role(), Role::Leader { .. }),
                size_bytes: self.partitions.size_bytes(id).unwrap_or(0),
                log_start_offset: self.partitions.log_start_offset(id).map_or(0, |offset| offset.0),
                log_end_offset: replica.log_end_offset().0,
                high_watermark: replica.high_watermark().0,
            });
        }
        for group in self.groups.groups.values() {
            for ((topic, partition), committed) in &group.offsets {
                snapshot.group_offsets.push(GroupOffset {
                    group: group.id.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    offset: committed.offset,
                });
            }
        }
        let gauges = replication_gauges(self.assignments.values(), self.config.min_insync_replicas);
        let counters = self.replication_counters;
        snapshot.replication = ReplicationSnapshot {
            under_replicated: gauges.under_replicated as u64,
            under_min_isr: gauges.under_min_isr as u64,
            offline: gauges.offline as u64,
            isr_shrinks: counters.isr_shrinks,
            isr_expands: counters.isr_expands,
            truncations: counters.truncations,
        };
        snapshot.io = self.partitions.io_stats();
        snapshot.io_backend = self.partitions.backend_name();
        snapshot.file_reads = crate::runtime::file_read::read_latency();
        // Both pools are this thread's: the engine frees its write buffers on the shard thread.
        snapshot.pooled_write_bytes = engine::io::aligned::pooled_bytes() as u64;
        snapshot.pooled_read_bytes = crate::runtime::file_read::pooled_bytes() as u64;
        snapshot
    }

    pub fn backend_name(&self) -> &'static str {
        self.partitions.backend_name()
    }

    /// Partitions this shard owns (not counting `__consumer_offsets`).
    pub fn partition_count(&self) -> usize {
        self.topics.values().map(|partitions| partitions.len()).sum()
    }

    /// The engine ring's completion eventfd, if the backend has one.
    pub fn completion_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.partitions.completion_fd()
    }

    pub fn commits_in_flight(&self) -> usize {
        self.partitions.commits_in_flight()
    }

    /// Deletes what `retention.ms` and `retention.bytes` no longer keep.
    pub fn enforce_retention(&mut self, now_ms: i64) {
        for (log, result) in self.partitions.enforce_retention(now_ms) {
            match result {
                Ok(report) if report.deleted_segments > 0 => {
                    tracing::info!(?log, deleted_segments = report.deleted_segments, log_start = %report.log_start_offset, "retention")
                }
                Ok(_) => {}
                Err(error) => tracing::error!(?log, %error, "retention failed"),
            }
        }
    }

    /// Runs the group commit without blocking (see [`Partitions::pump`]).
    pub fn pump(&mut self) {
        self.partitions.pump(now_ms());
    }

    /// Starts the commits of what was just appended (see [`Partitions::start_commits`]).
    pub fn start_commits(&mut self) {
        self.partitions.start_commits(now_ms());
    }

    /// Commits everything pending, blocking (the syscall backend's path, and tests).
    pub fn commit(&mut self) {
        self.partitions.commit(now_ms());
    }

    /// Clean shutdown: commits what is pending, then closes every log (exact file lengths,
    /// index files, clean checkpoint) so the next start scans nothing.
    pub fn close(&mut self) -> anyhow::Result<()> {
        self.partitions.close(now_ms())?;
        self.topics.clear();
        self.offsets_logs.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(
        leading: bool,
        leader: Option<i32>,
        replicas: &[i32],
        isr: &[i32],
        min_insync: Option<i32>,
    ) -> Assignment {
        let epoch = LeaderEpoch(3);
        Assignment {
            role: if leading { Role::Leader { epoch } } else { Role::Follower { epoch } },
            leader,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            partition_epoch: 7,
            min_insync,
        }
    }

    #[test]
    fn gauges_count_under_replicated_under_min_isr_and_offline_partitions() {
        let assignments = [
            assignment(true, Some(1), &[1, 2, 3], &[1, 2, 3], None),
            assignment(true, Some(1), &[1, 2, 3], &[1, 2], None),
            assignment(true, Some(1), &[1, 2, 3], &[1], Some(3)),
            assignment(false, Some(2), &[1, 2, 3], &[2], None),
            assignment(false, None, &[1, 2], &[2], None),
        ];
        let gauges = replication_gauges(&assignments, 2);
        assert_eq!(gauges, ReplicationGauges { led: 3, under_replicated: 2, under_min_isr: 1, offline: 1 });
        assert_eq!(replication_gauges(&assignments, 1).under_min_isr, 1, "the topic's own minimum counts");
        // A minimum above the replica count is the replica count (Kafka's effectiveMinIsr).
        let small = [assignment(true, Some(1), &[1, 2], &[1, 2], Some(3)), assignment(true, Some(1), &[1], &[1], None)];
        assert_eq!(replication_gauges(&small, 2).under_min_isr, 0);
    }

    #[test]
    fn the_effective_minimum_is_at_most_the_replica_count() {
        let check = |replicas: &[i32], own: Option<i32>, broker: i32| {
            assignment(true, Some(1), replicas, replicas, own).effective_min_insync(broker)
        };
        assert_eq!(check(&[1, 2, 3], None, 2), 2, "the broker's minimum");
        assert_eq!(check(&[1, 2, 3], Some(3), 2), 3, "the topic's own");
        assert_eq!(check(&[1, 2], Some(3), 2), 2, "capped at two replicas");
        assert_eq!(check(&[1], None, 2), 1, "one replica: acks=all never refused");
        assert_eq!(check(&[1, 2, 3], Some(0), 0), 1, "at least one");
    }
}
