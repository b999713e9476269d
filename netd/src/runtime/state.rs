//! One shard's broker state: its engine shard, its topics, and the waiters that group commit and
//! appends wake up.
//!
//! Owns: the partitions this shard owns (a topic's partitions are directories
//! `<topic>-<partition>` under the data dir, as in Kafka; which shard owns which follows from
//! `shards::owner_of`), their idempotent-producer state, and the bookkeeping that turns an engine
//! `CommitReport` into produce acknowledgements and fetch wake-ups. Lives on one shard thread
//! inside an `Rc<RefCell<_>>`; never borrowed across an `.await`. Which topics exist is the
//! catalog's business (`shards.rs`, changed only by `control.rs`); which exist on disk is decided
//! by the topic manifests (`manifest.rs`), read once at start by [`discover_topics`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use engine::{EngineError, LogId, Offset, ReadChunk, Shard};

use crate::clock::now_ms;
use crate::limits::REBUILD_READ_BYTES;
use futures_channel::{mpsc, oneshot};

use crate::catalog::Catalog;
use crate::codec::errors;
use crate::config::Config;
use crate::coordinators::groups::{self, store};
use crate::producers::{BatchIdentity, PartitionProducers};

#[derive(Debug)]
struct ProduceWaiter {
    log: LogId,
    last_offset: Offset,
    reply: oneshot::Sender<i16>,
}

pub struct ShardState {
    pub config: Config,
    pub engine: Shard,
    /// Topic → the partitions of it this shard owns.
    pub topics: BTreeMap<String, BTreeMap<i32, LogId>>,
    /// The consumer groups whose offsets partitions this shard owns.
    pub groups: groups::Coordinator,
    /// The `__consumer_offsets` partitions this shard owns.
    pub offsets_logs: BTreeMap<i32, LogId>,
    pub producers: BTreeMap<LogId, PartitionProducers>,
    produce_waiters: Vec<ProduceWaiter>,
    fetch_waiters: Vec<oneshot::Sender<()>>,
    commit_trigger: mpsc::UnboundedSender<()>,
}

impl std::fmt::Debug for ShardState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardState").field("topics", &self.topics.len()).finish()
    }
}

/// Reads `log` from `from` to its committed end in runs of at most [`REBUILD_READ_BYTES`],
/// validates each run once, and hands it with its batch headers to `visit` (start-up work:
/// producer state and committed offsets are rebuilt this way).
fn scan_batches(
    log: &engine::log::Log,
    from: Offset,
    mut visit: impl FnMut(&bytes::Bytes, &[engine::batch::BatchHeader]),
) -> Result<(), EngineError> {
    let mut offset = from;
    while offset < log.log_end_offset() {
        let read = log.read(offset, REBUILD_READ_BYTES, None)?;
        if read.size_bytes == 0 {
            break;
        }
        let bytes = chunks_to_bytes(&read.chunks, read.size_bytes)
            .map_err(|source| EngineError::Io { path: log.dir().to_path_buf(), source })?;
        let headers = engine::batch::validate_all(&bytes)?;
        let Some(last) = headers.last() else { break };
        offset = Offset(last.last_offset() + 1);
        visit(&bytes, &headers);
    }
    Ok(())
}

impl ShardState {
    /// Opens the partition logs this shard owns: those of `catalog` for which `owns` is true.
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
            ..engine::ShardConfig::default()
        };
        let engine = engine::Shard::new(backend, shard_config)?;
        let mut broker = ShardState {
            groups: groups::Coordinator::new(config.groups),
            offsets_logs: BTreeMap::new(),
            config,
            engine,
            topics: BTreeMap::new(),
            producers: BTreeMap::new(),
            produce_waiters: Vec::new(),
            fetch_waiters: Vec::new(),
            commit_trigger,
        };
        for (topic, count) in &catalog.topics {
            let owned: Vec<i32> = (0..*count).filter(|partition| owns(topic, *partition)).collect();
            broker.open_partitions(topic, &owned)?;
        }
        for partition in 0..broker.config.offsets_partitions {
            if owns(groups::OFFSETS_TOPIC, partition) {
                broker.open_offsets_partition(partition)?;
            }
        }
        Ok(broker)
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

    /// Opens one `__consumer_offsets` partition and replays its committed offsets.
    fn open_offsets_partition(&mut self, partition: i32) -> anyhow::Result<()> {
        let dir = self.partition_dir(groups::OFFSETS_TOPIC, partition);
        let (id, report) = self.engine.open_log(&dir, self.offsets_log_config(), now_ms())?;
        if !report.truncations.is_empty() {
            tracing::warn!(partition, truncated_bytes = report.truncated_bytes(), "recovered an offsets partition");
        }
        let mut replayed = 0usize;
        let now = now_ms();
        let log = self.engine.log(id)?;
        let mut records = Vec::new();
        scan_batches(log, log.log_start_offset(), |bytes, headers| records.extend(store::decode_all(bytes, headers)))?;
        for record in records {
            replayed += 1;
            self.groups.apply(record, now);
        }
        if replayed > 0 {
            tracing::info!(partition, records = replayed, "replayed committed offsets");
        }
        self.offsets_logs.insert(partition, id);
        Ok(())
    }

    /// Appends offset records for `group` to its offsets partition. The receiver answers once
    /// they are durable (or with the error code of a failed commit).
    pub fn append_offsets(
        &mut self,
        group: &str,
        records: &[store::OffsetRecord],
    ) -> Result<oneshot::Receiver<i16>, i16> {
        let partition = groups::offsets_partition(group, self.config.offsets_partitions);
        let log =
            *self.offsets_logs.get(&partition).ok_or(errors::code(kafka_protocol::ResponseError::NotCoordinator))?;
        let batch = store::encode_batch(records, now_ms());
        let info = self
            .engine
            .append(log, &batch, engine::LeaderEpoch(0), now_ms())
            .map_err(|error| errors::engine_error_code(&error))?;
        let receiver = self.wait_for_commit(log, info.last_offset);
        self.request_commit();
        Ok(receiver)
    }

    fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.config.data_dir.join(format!("{topic}-{partition}"))
    }

    /// Opens (creating if needed) the given partitions of `topic` on this shard.
    pub fn open_partitions(&mut self, topic: &str, partitions: &[i32]) -> Result<(), EngineError> {
        for &partition in partitions {
            if self.topics.get(topic).is_some_and(|owned| owned.contains_key(&partition)) {
                continue;
            }
            let dir = self.partition_dir(topic, partition);
            let (id, report) = self.engine.open_log(&dir, self.config.log, now_ms())?;
            if !report.truncations.is_empty() || !report.deleted_segments.is_empty() {
                tracing::warn!(%topic, partition, truncated_bytes = report.truncated_bytes(), deleted_segments = report.deleted_segments.len(), "recovered partition");
            }
            let producers = self.rebuild_producers(id)?;
            self.producers.insert(id, producers);
            self.topics.entry(topic.to_string()).or_default().insert(partition, id);
        }
        Ok(())
    }

    /// Rebuilds a partition's producer state from the batch headers of its active segment.
    fn rebuild_producers(&self, id: LogId) -> Result<PartitionProducers, EngineError> {
        let log = self.engine.log(id)?;
        let mut producers = PartitionProducers::default();
        scan_batches(log, log.active_segment_base(), |_, headers| {
            for header in headers {
                if let Some(identity) = BatchIdentity::of(header) {
                    producers.record(&identity, header.base_offset, header.last_offset());
                }
            }
        })?;
        Ok(producers)
    }

    /// Deletes this shard's partitions of `topic` numbered `from` and up, and their files.
    pub fn delete_partitions(&mut self, topic: &str, from: i32) {
        let Some(owned) = self.topics.get_mut(topic) else { return };
        let removed = owned.split_off(&from);
        if owned.is_empty() {
            self.topics.remove(topic);
        }
        for (partition, id) in removed {
            self.producers.remove(&id);
            if let Err(error) = self.engine.delete_log(id) {
                tracing::error!(%topic, partition, %error, "could not delete partition files");
            }
            let dir = self.partition_dir(topic, partition);
            if let Err(error) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), %error, "could not remove partition directory");
            }
        }
    }

    /// The log of a partition this shard owns. `Err` is a Kafka error code.
    pub fn log_for(&self, topic: &str, partition: i32) -> Result<LogId, i16> {
        self.topics
            .get(topic)
            .and_then(|owned| owned.get(&partition))
            .copied()
            .ok_or(errors::code(kafka_protocol::ResponseError::UnknownTopicOrPartition))
    }

    /// Registers a produce that is acknowledged once `last_offset` of `log` is committed.
    pub fn wait_for_commit(&mut self, log: LogId, last_offset: Offset) -> oneshot::Receiver<i16> {
        let (reply, receiver) = oneshot::channel();
        if self.engine.log(log).is_ok_and(|known| last_offset < known.log_end_offset()) {
            // Already committed (a retried duplicate): no commit will come for it.
            let _ = reply.send(errors::NONE);
            return receiver;
        }
        self.produce_waiters.push(ProduceWaiter { log, last_offset, reply });
        let _ = self.commit_trigger.unbounded_send(());
        receiver
    }

    pub fn backend_name(&self) -> &'static str {
        self.engine.backend_name()
    }

    /// Partitions this shard owns (not counting `__consumer_offsets`).
    pub fn partition_count(&self) -> usize {
        self.topics.values().map(|partitions| partitions.len()).sum()
    }

    /// The engine ring's completion eventfd, if the backend has one.
    pub fn completion_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.engine.completion_fd()
    }

    pub fn commits_in_flight(&self) -> usize {
        self.engine.commits_in_flight()
    }

    /// Deletes what `retention.ms` and `retention.bytes` no longer keep.
    pub fn enforce_retention(&mut self, now_ms: i64) {
        for (log, result) in self.engine.enforce_retention(now_ms) {
            match result {
                Ok(report) if report.deleted_segments > 0 => {
                    tracing::info!(?log, deleted_segments = report.deleted_segments, log_start = %report.log_start_offset, "retention")
                }
                Ok(_) => {}
                Err(error) => tracing::error!(?log, %error, "retention failed"),
            }
        }
    }

    /// Asks the committer to run (appends with acks=0 still need a commit).
    pub fn request_commit(&self) {
        let _ = self.commit_trigger.unbounded_send(());
    }

    /// A receiver that fires at the next commit, for fetches waiting for data.
    pub fn wait_for_data(&mut self) -> oneshot::Receiver<()> {
        // Fetches that gave up (deadline, closed connection) leave canceled senders behind.
        self.fetch_waiters.retain(|waiter| !waiter.is_canceled());
        let (sender, receiver) = oneshot::channel();
        self.fetch_waiters.push(sender);
        receiver
    }

    /// Clean shutdown: commits what is pending, then closes every log (exact file lengths,
    /// index files, clean checkpoint) so the next start scans nothing.
    pub fn close(&mut self) -> anyhow::Result<()> {
        self.commit();
        for id in self.engine.log_ids() {
            self.engine.close_log(id)?;
        }
        self.topics.clear();
        Ok(())
    }

    /// Runs the group commit without blocking: collects the commits that landed since the last
    /// call (the engine starts each log's next one at once), starts commits for logs that have
    /// none in flight, and wakes whoever waits. A backend that cannot signal completions (the
    /// plain-syscall fallback) commits in full here instead.
    pub fn pump(&mut self) {
        let now = now_ms();
        if self.engine.completion_fd().is_none() {
            let report = self.engine.commit(now);
            self.deliver(report);
            return;
        }
        let report = self.engine.reap(false, now);
        self.engine.start_commits(now);
        self.deliver(report);
    }

    /// Runs a blocking group commit of everything pending and wakes whoever waits for it.
    pub fn commit(&mut self) {
        let report = self.engine.commit(now_ms());
        self.deliver(report);
    }

    /// Turns a commit report into produce acknowledgements (or errors) and fetch wake-ups.
    fn deliver(&mut self, report: engine::CommitReport) {
        if report.is_empty() {
            return;
        }
        let mut failed: BTreeMap<LogId, i16> = BTreeMap::new();
        for (log, error, lost) in &report.failed {
            tracing::error!(?log, %error, lost_from = %lost.start, lost_to = %lost.end, "group commit failed; those appends are rejected");
            failed.insert(*log, errors::engine_error_code(error));
            if let Some(producers) = self.producers.get_mut(log) {
                producers.forget_from(lost.start.0);
            }
        }
        let committed: BTreeMap<LogId, Offset> = report.committed.iter().copied().collect();
        self.produce_waiters.retain_mut(|waiter| {
            let outcome = match (failed.get(&waiter.log), committed.get(&waiter.log)) {
                (Some(code), _) => Some(*code),
                (None, Some(end)) if waiter.last_offset < *end => Some(errors::NONE),
                _ => None,
            };
            match outcome {
                Some(code) => {
                    let reply = std::mem::replace(&mut waiter.reply, oneshot::channel().0);
                    let _ = reply.send(code);
                    false
                }
                None => true,
            }
        });
        if !report.committed.is_empty() {
            for waiter in self.fetch_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}

/// The bytes of a read plan: the tail-cache slice itself when it is one, else one buffer.
pub fn chunks_to_bytes(chunks: &[ReadChunk], size_bytes: u64) -> std::io::Result<Bytes> {
    if let [ReadChunk::Memory(bytes)] = chunks {
        return Ok(bytes.clone());
    }
    Ok(Bytes::from(gather_chunks(chunks, size_bytes)?))
}

/// Copies a read plan into one new buffer: memory slices copied, file ranges read straight into
/// it (one copy).
pub fn gather_chunks(chunks: &[ReadChunk], size_bytes: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(size_bytes as usize);
    for chunk in chunks {
        match chunk {
            ReadChunk::Memory(bytes) => out.extend_from_slice(bytes),
            ReadChunk::File { file, position, length } => {
                let start = out.len();
                out.resize(start + *length as usize, 0);
                file.read_exact_at(&mut out[start..], *position)?;
            }
        }
    }
    Ok(out)
}
