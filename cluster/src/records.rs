//! The metadata records and their binary encoding (`docs/formats/metadata-records.md`).
//!
//! One Raft entry carries one [`RecordBatch`]: the records of one controller decision, applied
//! atomically (a fenced broker and the leader elections it causes land together or not at all).
//! Records are full states where that keeps applying simple ([`MetadataRecord::Partition`]
//! carries the whole partition, not a delta), so that applying a record never depends on
//! reading the state it replaces.
//!
//! Owns: the record types and their encoding, version 1. Must not know: how records are decided
//! (the controller), applied (the image) or replicated (Raft).

use std::collections::BTreeMap;

use crate::codec::{corrupt, Reader, Writer};
use crate::types::{BrokerId, ClusterId, PartitionIndex, TopicId};
use crate::ClusterError;

/// The encoding version written by this code; a batch of another version is refused.
pub const RECORDS_VERSION: u8 = 1;
/// At most this many bytes in one string of a record (topic names are at most 249 bytes, hosts
/// at most 255, config values are the longest).
pub const RECORD_STRING_BYTES_MAX: usize = 32 * 1024;
/// At most this many records in one batch (a CreateTopics of many partitions is the largest).
pub const RECORDS_PER_BATCH_MAX: usize = 1_000_000;

/// One listener a broker can be reached on, as it registered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The listener's name (`PLAINTEXT`, `CONTROLLER`, ...).
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// A partition's full replication state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionState {
    pub topic_id: TopicId,
    pub partition: PartitionIndex,
    /// The assigned replicas, preferred leader first.
    pub replicas: Vec<BrokerId>,
    /// The in-sync replicas, a subset of `replicas`, never empty.
    pub isr: Vec<BrokerId>,
    /// None: offline (no eligible replica is alive).
    pub leader: Option<BrokerId>,
    /// Grows at every leader change (Kafka's leader epoch).
    pub leader_epoch: i32,
    /// Grows at every change of this record (Kafka's partition epoch), so that a stale ISR change
    /// can be refused.
    pub partition_epoch: i32,
    /// A reassignment in progress (Kafka's `addingReplicas`): replicas of the target assignment
    /// that are not in the original one. `replicas` holds both the target's and the original's
    /// while it lasts; empty when none is.
    pub adding: Vec<BrokerId>,
    /// A reassignment in progress (Kafka's `removingReplicas`): replicas of the original
    /// assignment that the target drops once every target replica is in the ISR.
    pub removing: Vec<BrokerId>,
}

impl PartitionState {
    /// A reassignment is in progress.
    pub fn reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }

    /// The replicas a reassignment in progress aims at (all replicas when none is).
    pub fn target_replicas(&self) -> Vec<BrokerId> {
        self.replicas.iter().copied().filter(|replica| !self.removing.contains(replica)).collect()
    }

    /// The replicas before a reassignment in progress (all replicas when none is).
    pub fn original_replicas(&self) -> Vec<BrokerId> {
        self.replicas.iter().copied().filter(|replica| !self.adding.contains(replica)).collect()
    }
}

/// One change to the cluster's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataRecord {
    /// The cluster's id; the first record of every metadata log, never changed.
    ClusterId(ClusterId),
    /// A broker (re-)registered: a new incarnation gets a new broker epoch and starts fenced.
    RegisterBroker {
        broker: BrokerId,
        /// Random per process start: tells a restart from a retried registration.
        incarnation: u64,
        /// The broker epoch, unique across registrations of every broker.
        epoch: u64,
        endpoints: Vec<Endpoint>,
        rack: Option<String>,
    },
    /// Fenced brokers lead nothing and are in no ISR (but the last member of one).
    FenceBroker { broker: BrokerId, epoch: u64 },
    /// The broker caught up with the metadata log and heartbeats: it may lead.
    UnfenceBroker { broker: BrokerId, epoch: u64 },
    /// The broker asked to shut down: leadership moves away, it is dropped from ISRs.
    BeginControlledShutdown { broker: BrokerId, epoch: u64 },
    /// A topic was created (its partitions follow as [`MetadataRecord::Partition`] records).
    Topic { id: TopicId, name: String, configs: BTreeMap<String, String> },
    /// A partition's state, whole (created or changed).
    Partition(PartitionState),
    /// A topic and its partitions were deleted.
    RemoveTopic { id: TopicId },
    /// A topic's own configs were replaced, whole (IncrementalAlterConfigs, AlterConfigs).
    TopicConfigs { id: TopicId, configs: BTreeMap<String, String> },
    /// Dynamic broker configs were replaced, whole: one broker's (`Some`) or the cluster-wide
    /// default every broker takes (`None`).
    BrokerConfigs { broker: Option<BrokerId>, configs: BTreeMap<String, String> },
    /// A block of producer ids was handed to a broker: ids below `next` are never handed out
    /// again, across controller failover too.
    ProducerIds { broker: BrokerId, epoch: u64, next: u64 },
    /// The image's counters, written in snapshots (where the records that raised them are gone).
    Counters { next_broker_epoch: u64, next_producer_id: u64 },
}

/// The records of one controller decision, applied atomically.
pub type RecordBatch = Vec<MetadataRecord>;

// Record kinds on disk. New kinds take new numbers (configs, ACLs and SCRAM credentials have room).
const KIND_CLUSTER_ID: u8 = 1;
const KIND_REGISTER_BROKER: u8 = 2;
const KIND_FENCE_BROKER: u8 = 3;
const KIND_UNFENCE_BROKER: u8 = 4;
const KIND_BEGIN_CONTROLLED_SHUTDOWN: u8 = 5;
const KIND_TOPIC: u8 = 6;
const KIND_PARTITION: u8 = 7;
const KIND_REMOVE_TOPIC: u8 = 8;
const KIND_PRODUCER_IDS: u8 = 9;
const KIND_COUNTERS: u8 = 10;
/// A partition with a reassignment in progress: [`KIND_PARTITION`]'s fields, then the adding and
/// removing replicas (a partition without one is written as [`KIND_PARTITION`], as before).
const KIND_PARTITION_REASSIGNING: u8 = 11;
const KIND_TOPIC_CONFIGS: u8 = 12;
const KIND_BROKER_CONFIGS: u8 = 13;

/// Encodes a batch: `version u8, count u32, records`.
pub fn encode_batch(records: &[MetadataRecord]) -> Vec<u8> {
    let mut out = Writer(Vec::with_capacity(64 * records.len().max(1)));
    out.u8(RECORDS_VERSION);
    out.len(records.len());
    for record in records {
        encode_record(&mut out, record);
    }
    out.0
}

/// Decodes a batch written by [`encode_batch`]; anything else is `ClusterError::Corrupt`.
pub fn decode_batch(bytes: &[u8]) -> Result<RecordBatch, ClusterError> {
    let mut input = Reader::new(bytes);
    let version = input.u8()?;
    if version != RECORDS_VERSION {
        return Err(corrupt(format!("metadata record batch version {version}, this build reads {RECORDS_VERSION}")));
    }
    let count = input.count(RECORDS_PER_BATCH_MAX, 2)?;
    let mut records = Vec::with_capacity(count);
    for _ in 0..count {
        records.push(decode_record(&mut input)?);
    }
    input.finish("metadata record batch")?;
    Ok(records)
}

fn encode_record(out: &mut Writer, record: &MetadataRecord) {
    match record {
        MetadataRecord::ClusterId(id) => {
            out.u8(KIND_CLUSTER_ID);
            out.0.extend_from_slice(&id.0);
        }
        MetadataRecord::RegisterBroker { broker, incarnation, epoch, endpoints, rack } => {
            out.u8(KIND_REGISTER_BROKER);
            out.i32(broker.0);
            out.u64(*incarnation);
            out.u64(*epoch);
            out.endpoints(endpoints);
            out.optional_string(rack.as_deref());
        }
        MetadataRecord::FenceBroker { broker, epoch } => out.broker_epoch(KIND_FENCE_BROKER, *broker, *epoch),
        MetadataRecord::UnfenceBroker { broker, epoch } => out.broker_epoch(KIND_UNFENCE_BROKER, *broker, *epoch),
        MetadataRecord::BeginControlledShutdown { broker, epoch } => {
            out.broker_epoch(KIND_BEGIN_CONTROLLED_SHUTDOWN, *broker, *epoch)
        }
        MetadataRecord::Topic { id, name, configs } => {
            out.u8(KIND_TOPIC);
            out.0.extend_from_slice(&id.0);
            out.string(name);
            out.len(configs.len());
            for (key, value) in configs {
                out.string(key);
                out.string(value);
            }
        }
        MetadataRecord::Partition(state) if state.reassigning() => {
            out.u8(KIND_PARTITION_REASSIGNING);
            out.partition_state(state);
            out.brokers(&state.adding);
            out.brokers(&state.removing);
        }
        MetadataRecord::Partition(state) => {
            out.u8(KIND_PARTITION);
            out.partition_state(state);
        }
        MetadataRecord::TopicConfigs { id, configs } => {
            out.u8(KIND_TOPIC_CONFIGS);
            out.0.extend_from_slice(&id.0);
            out.len(configs.len());
            for (key, value) in configs {
                out.string(key);
                out.string(value);
            }
        }
        MetadataRecord::BrokerConfigs { broker, configs } => {
            out.u8(KIND_BROKER_CONFIGS);
            out.i32(broker.map_or(-1, |broker| broker.0));
            out.len(configs.len());
            for (key, value) in configs {
                out.string(key);
                out.string(value);
            }
        }
        MetadataRecord::RemoveTopic { id } => {
            out.u8(KIND_REMOVE_TOPIC);
            out.0.extend_from_slice(&id.0);
        }
        MetadataRecord::ProducerIds { broker, epoch, next } => {
            out.broker_epoch(KIND_PRODUCER_IDS, *broker, *epoch);
            out.u64(*next);
        }
        MetadataRecord::Counters { next_broker_epoch, next_producer_id } => {
            out.u8(KIND_COUNTERS);
            out.u64(*next_broker_epoch);
            out.u64(*next_producer_id);
        }
    }
}

fn decode_record(input: &mut Reader<'_>) -> Result<MetadataRecord, ClusterError> {
    let kind = input.u8()?;
    Ok(match kind {
        KIND_CLUSTER_ID => MetadataRecord::ClusterId(ClusterId(input.array16()?)),
        KIND_REGISTER_BROKER => {
            let broker = input.broker()?;
            let incarnation = input.u64()?;
            let epoch = input.u64()?;
            let endpoints = input.endpoints()?;
            let rack = input.optional_string()?;
            MetadataRecord::RegisterBroker { broker, incarnation, epoch, endpoints, rack }
        }
        KIND_FENCE_BROKER => MetadataRecord::FenceBroker { broker: input.broker()?, epoch: input.u64()? },
        KIND_UNFENCE_BROKER => MetadataRecord::UnfenceBroker { broker: input.broker()?, epoch: input.u64()? },
        KIND_BEGIN_CONTROLLED_SHUTDOWN => {
            MetadataRecord::BeginControlledShutdown { broker: input.broker()?, epoch: input.u64()? }
        }
        KIND_TOPIC => {
            let id = TopicId(input.array16()?);
            let name = input.string()?;
            let count = input.count(100_000, 4)?;
            let mut configs = BTreeMap::new();
            for _ in 0..count {
                configs.insert(input.string()?, input.string()?);
            }
            MetadataRecord::Topic { id, name, configs }
        }
        KIND_PARTITION => MetadataRecord::Partition(input.partition_state()?),
        KIND_PARTITION_REASSIGNING => {
            let mut state = input.partition_state()?;
            state.adding = input.brokers()?;
            state.removing = input.brokers()?;
            if !state.reassigning() {
                return Err(corrupt("a reassigning partition record with no reassignment".to_string()));
            }
            MetadataRecord::Partition(state)
        }
        KIND_REMOVE_TOPIC => MetadataRecord::RemoveTopic { id: TopicId(input.array16()?) },
        KIND_BROKER_CONFIGS => {
            let broker = match input.i32()? {
                -1 => None,
                id if id >= 0 => Some(BrokerId(id)),
                other => return Err(corrupt(format!("broker configs of broker {other}"))),
            };
            let count = input.count(100_000, 8)?;
            let mut configs = BTreeMap::new();
            for _ in 0..count {
                configs.insert(input.string()?, input.string()?);
            }
            MetadataRecord::BrokerConfigs { broker, configs }
        }
        KIND_TOPIC_CONFIGS => {
            let id = TopicId(input.array16()?);
            let count = input.count(100_000, 4)?;
            let mut configs = BTreeMap::new();
            for _ in 0..count {
                configs.insert(input.string()?, input.string()?);
            }
            MetadataRecord::TopicConfigs { id, configs }
        }
        KIND_PRODUCER_IDS => {
            MetadataRecord::ProducerIds { broker: input.broker()?, epoch: input.u64()?, next: input.u64()? }
        }
        KIND_COUNTERS => MetadataRecord::Counters { next_broker_epoch: input.u64()?, next_producer_id: input.u64()? },
        other => return Err(corrupt(format!("unknown metadata record kind {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> RecordBatch {
        let topic_id = TopicId([7; 16]);
        vec![
            MetadataRecord::ClusterId(ClusterId([1; 16])),
            MetadataRecord::RegisterBroker {
                broker: BrokerId(2),
                incarnation: 99,
                epoch: 5,
                endpoints: vec![Endpoint { name: "PLAINTEXT".into(), host: "127.0.0.2".into(), port: 9092 }],
                rack: Some("r1".into()),
            },
            MetadataRecord::FenceBroker { broker: BrokerId(2), epoch: 5 },
            MetadataRecord::UnfenceBroker { broker: BrokerId(2), epoch: 5 },
            MetadataRecord::BeginControlledShutdown { broker: BrokerId(2), epoch: 5 },
            MetadataRecord::Topic {
                id: topic_id,
                name: "t".into(),
                configs: BTreeMap::from([("retention.ms".into(), "1000".into())]),
            },
            MetadataRecord::Partition(PartitionState {
                topic_id,
                partition: PartitionIndex(3),
                replicas: vec![BrokerId(1), BrokerId(2)],
                isr: vec![BrokerId(2)],
                leader: None,
                leader_epoch: 4,
                partition_epoch: 6,
                adding: Vec::new(),
                removing: Vec::new(),
            }),
            MetadataRecord::Partition(PartitionState {
                topic_id,
                partition: PartitionIndex(4),
                replicas: vec![BrokerId(3), BrokerId(1)],
                isr: vec![BrokerId(1)],
                leader: Some(BrokerId(1)),
                leader_epoch: 0,
                partition_epoch: 1,
                adding: vec![BrokerId(3)],
                removing: vec![BrokerId(1)],
            }),
            MetadataRecord::TopicConfigs {
                id: topic_id,
                configs: BTreeMap::from([("retention.ms".into(), "60000".into())]),
            },
            MetadataRecord::BrokerConfigs {
                broker: None,
                configs: BTreeMap::from([("log.retention.ms".into(), "60000".into())]),
            },
            MetadataRecord::BrokerConfigs { broker: Some(BrokerId(2)), configs: BTreeMap::new() },
            MetadataRecord::RemoveTopic { id: topic_id },
            MetadataRecord::ProducerIds { broker: BrokerId(1), epoch: 3, next: 2000 },
            MetadataRecord::Counters { next_broker_epoch: 12, next_producer_id: 3000 },
        ]
    }

    #[test]
    fn every_kind_round_trips() {
        let batch = every_kind();
        assert_eq!(decode_batch(&encode_batch(&batch)).expect("decodes"), batch);
    }

    #[test]
    fn golden_bytes_of_a_fence() {
        let bytes = encode_batch(&[MetadataRecord::FenceBroker { broker: BrokerId(2), epoch: 5 }]);
        assert_eq!(bytes, [1, 0, 0, 0, 1, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 5]);
    }

    #[test]
    fn every_cut_and_every_flipped_byte_is_an_error_or_a_batch_never_a_panic() {
        let bytes = encode_batch(&every_kind());
        for cut in 0..bytes.len() {
            assert!(decode_batch(&bytes[..cut]).is_err(), "a batch cut at {cut} is refused");
        }
        for at in 0..bytes.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[at] ^= flip;
                let _ = decode_batch(&damaged);
            }
        }
        assert!(decode_batch(&[1, 0xff, 0xff, 0xff, 0xff]).is_err(), "a huge count allocates nothing");
    }
}
