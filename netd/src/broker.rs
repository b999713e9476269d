//! One shard's broker state: its engine shard, its topics, and the waiters that group commit and
//! appends wake up.
//!
//! Owns: topic ↔ log mapping (a topic's partitions are directories `<topic>-<partition>` under the
//! data dir, as in Kafka), auto-creation, and the bookkeeping that turns an engine
//! `CommitReport` into produce acknowledgements and fetch wake-ups. Lives on one shard thread
//! inside an `Rc<RefCell<_>>`; never borrowed across an `.await`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use engine::{EngineError, LogId, Offset, Shard};
use futures_channel::{mpsc, oneshot};

use crate::config::Config;
use crate::errors;
use crate::producers::{BatchIdentity, PartitionProducers, ProducerIds};

/// Kafka's legal topic name characters and length.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// Bytes read at a time when rebuilding producer state at start-up.
pub const REBUILD_READ_BYTES: u64 = 4 * 1024 * 1024;
/// Partitions one CreateTopics or CreatePartitions may ask for.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as i64)
}

#[derive(Debug)]
pub struct Topic {
    pub partitions: Vec<LogId>,
}

#[derive(Debug)]
struct ProduceWaiter {
    log: LogId,
    last_offset: Offset,
    reply: oneshot::Sender<i16>,
}

pub struct Broker {
    pub config: Config,
    pub engine: Shard,
    pub topics: BTreeMap<String, Topic>,
    pub producer_ids: ProducerIds,
    pub producers: BTreeMap<LogId, PartitionProducers>,
    produce_waiters: Vec<ProduceWaiter>,
    fetch_waiters: Vec<oneshot::Sender<()>>,
    commit_trigger: mpsc::UnboundedSender<()>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("topics", &self.topics.len()).finish()
    }
}

pub fn valid_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("topic name {name:?} is illegal"));
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(format!("topic name is longer than {TOPIC_NAME_BYTES_MAX} characters"));
    }
    if !name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'.' || byte == b'_' || byte == b'-') {
        return Err(format!(
            "topic name {name:?} contains characters other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

impl Broker {
    /// Opens every partition log found under the data directory.
    pub fn open(config: Config, engine: Shard, commit_trigger: mpsc::UnboundedSender<()>) -> anyhow::Result<Broker> {
        std::fs::create_dir_all(&config.data_dir)?;
        let mut found: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for entry in std::fs::read_dir(&config.data_dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().to_string();
            let Some((topic, partition)) = name.rsplit_once('-') else { continue };
            let Ok(partition) = partition.parse::<u32>() else { continue };
            if valid_topic_name(topic).is_ok() {
                found.entry(topic.to_string()).or_default().push(partition);
            }
        }
        let producer_ids = ProducerIds::open(&config.data_dir)?;
        let mut broker = Broker {
            producer_ids,
            config,
            engine,
            topics: BTreeMap::new(),
            producers: BTreeMap::new(),
            produce_waiters: Vec::new(),
            fetch_waiters: Vec::new(),
            commit_trigger,
        };
        for (topic, mut partitions) in found {
            partitions.sort_unstable();
            if partitions.iter().enumerate().any(|(index, partition)| *partition as usize != index) {
                tracing::error!(%topic, ?partitions, "partition directories are not 0..n; skipping this topic");
                continue;
            }
            broker.open_topic(&topic, partitions.len() as i32)?;
        }
        Ok(broker)
    }

    fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.config.data_dir.join(format!("{topic}-{partition}"))
    }

    fn open_topic(&mut self, topic: &str, partition_count: i32) -> Result<(), EngineError> {
        let mut partitions = Vec::with_capacity(partition_count as usize);
        for partition in 0..partition_count {
            let dir = self.partition_dir(topic, partition);
            let (id, report) = self.engine.open_log(&dir, self.config.log, now_ms())?;
            if !report.truncations.is_empty() || !report.deleted_segments.is_empty() {
                tracing::warn!(%topic, partition, truncated_bytes = report.truncated_bytes(), deleted_segments = report.deleted_segments.len(), "recovered partition");
            }
            let producers = self.rebuild_producers(id)?;
            self.producers.insert(id, producers);
            partitions.push(id);
        }
        self.topics.insert(topic.to_string(), Topic { partitions });
        Ok(())
    }

    /// Rebuilds a partition's producer state from the batch headers of its active segment.
    fn rebuild_producers(&self, id: LogId) -> Result<PartitionProducers, EngineError> {
        let log = self.engine.log(id)?;
        let mut producers = PartitionProducers::default();
        let mut offset = log.active_segment_base();
        while offset < log.log_end_offset() {
            let read = log.read(offset, REBUILD_READ_BYTES, None)?;
            if read.size_bytes == 0 {
                break;
            }
            let mut bytes = Vec::with_capacity(read.size_bytes as usize);
            for chunk in &read.chunks {
                bytes.extend(
                    chunk.to_vec().map_err(|source| EngineError::Io { path: log.dir().to_path_buf(), source })?,
                );
            }
            let headers = engine::batch::validate_all(&bytes)?;
            for header in &headers {
                if let Some(identity) = BatchIdentity::of(header) {
                    producers.record(&identity, header.base_offset, header.last_offset());
                }
                offset = Offset(header.last_offset() + 1);
            }
        }
        Ok(producers)
    }

    /// Creates a topic; the error is a Kafka error code and message.
    pub fn create_topic(&mut self, topic: &str, partition_count: i32) -> Result<(), (i16, String)> {
        use kafka_protocol::ResponseError;
        valid_topic_name(topic).map_err(|message| (errors::code(ResponseError::InvalidTopicException), message))?;
        if self.topics.contains_key(topic) {
            return Err((errors::code(ResponseError::TopicAlreadyExists), format!("topic {topic:?} already exists")));
        }
        if !(1..=PARTITIONS_PER_TOPIC_MAX).contains(&partition_count) {
            return Err((
                errors::code(ResponseError::InvalidPartitions),
                format!("partition count must be in 1..={PARTITIONS_PER_TOPIC_MAX}"),
            ));
        }
        self.open_topic(topic, partition_count)
            .map_err(|error| (errors::engine_error_code(&error), error.to_string()))?;
        tracing::info!(%topic, partition_count, "created topic");
        Ok(())
    }

    /// Grows a topic to `count` partitions.
    pub fn add_partitions(&mut self, topic: &str, count: i32, validate_only: bool) -> Result<(), (i16, String)> {
        use kafka_protocol::ResponseError;
        let Some(existing) = self.topics.get(topic).map(|known| known.partitions.len() as i32) else {
            return Err((errors::code(ResponseError::UnknownTopicOrPartition), format!("unknown topic {topic:?}")));
        };
        if count <= existing || count > PARTITIONS_PER_TOPIC_MAX {
            return Err((
                errors::code(ResponseError::InvalidPartitions),
                format!("topic {topic:?} has {existing} partitions; the new count must be larger and at most {PARTITIONS_PER_TOPIC_MAX}"),
            ));
        }
        if validate_only {
            return Ok(());
        }
        for partition in existing..count {
            let dir = self.partition_dir(topic, partition);
            let (id, _) = self
                .engine
                .open_log(&dir, self.config.log, now_ms())
                .map_err(|error| (errors::engine_error_code(&error), error.to_string()))?;
            self.producers.insert(id, PartitionProducers::default());
            if let Some(known) = self.topics.get_mut(topic) {
                known.partitions.push(id);
            }
        }
        tracing::info!(%topic, from = existing, to = count, "added partitions");
        Ok(())
    }

    /// Deletes a topic and its data.
    pub fn delete_topic(&mut self, topic: &str) -> Result<(), (i16, String)> {
        use kafka_protocol::ResponseError;
        let Some(removed) = self.topics.remove(topic) else {
            return Err((errors::code(ResponseError::UnknownTopicOrPartition), format!("unknown topic {topic:?}")));
        };
        for (partition, id) in removed.partitions.into_iter().enumerate() {
            self.producers.remove(&id);
            if let Err(error) = self.engine.delete_log(id) {
                tracing::error!(%topic, partition, %error, "could not delete partition files");
            }
            let dir = self.partition_dir(topic, partition as i32);
            if let Err(error) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), %error, "could not remove partition directory");
            }
        }
        tracing::info!(%topic, "deleted topic");
        Ok(())
    }

    /// The log of a partition, creating the topic if allowed. `Err` is a Kafka error code.
    pub fn log_for(&mut self, topic: &str, partition: i32, auto_create: bool) -> Result<LogId, i16> {
        use kafka_protocol::ResponseError;
        if !self.topics.contains_key(topic) {
            if !(auto_create && self.config.auto_create_topics) {
                return Err(errors::code(ResponseError::UnknownTopicOrPartition));
            }
            let partitions = self.config.num_partitions;
            self.create_topic(topic, partitions).map_err(|(code, _)| code)?;
        }
        let topic = self.topics.get(topic).ok_or(errors::code(ResponseError::UnknownTopicOrPartition))?;
        usize::try_from(partition)
            .ok()
            .and_then(|index| topic.partitions.get(index))
            .copied()
            .ok_or(errors::code(ResponseError::UnknownTopicOrPartition))
    }

    /// Registers a produce that is acknowledged once `last_offset` of `log` is committed.
    pub fn wait_for_commit(&mut self, log: LogId, last_offset: Offset) -> oneshot::Receiver<i16> {
        let (reply, receiver) = oneshot::channel();
        self.produce_waiters.push(ProduceWaiter { log, last_offset, reply });
        let _ = self.commit_trigger.unbounded_send(());
        receiver
    }

    /// Asks the committer to run (appends with acks=0 still need a commit).
    pub fn request_commit(&self) {
        let _ = self.commit_trigger.unbounded_send(());
    }

    /// A receiver that fires at the next commit, for fetches waiting for data.
    pub fn wait_for_data(&mut self) -> oneshot::Receiver<()> {
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

    /// Runs one group commit and wakes whoever waits for it.
    pub fn commit(&mut self) {
        let report = self.engine.commit(now_ms());
        if report.committed.is_empty() && report.failed.is_empty() {
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
