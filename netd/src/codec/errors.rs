//! The one mapping from engine, partition-layer and broker errors to Kafka error codes.
//!
//! Owns: every Kafka error code the broker sends. Exhaustive on purpose: a new engine error does
//! not compile until someone decides what a client sees for it. Also owns [`TopicError`], the
//! broker's own error for topic changes: it is raised above this layer (the controller, the topic
//! handlers), so it is defined here, where its mapping can see it. Knows no runtime, catalog or
//! handler type. [`SessionError`] (a fetch's refused session fields) and [`ConvertError`] (a
//! produce conversion off the shard that failed) are defined here for the same reason.

use engine::{BatchError, EngineError};
use kafka_protocol::ResponseError;
use replica::{ProducerError, ReplicaError};

use crate::codec::produce_policy::ProduceRefusal;
use crate::limits::PARTITIONS_PER_TOPIC_MAX;

pub const NONE: i16 = 0;

/// What a client sees for an engine error.
pub fn engine_error_code(error: &EngineError) -> i16 {
    let kind = match error {
        EngineError::InvalidBatch(batch) => match batch {
            BatchError::CrcMismatch { .. } => ResponseError::CorruptMessage,
            BatchError::UnsupportedMagic { .. } => ResponseError::UnsupportedForMessageFormat,
            BatchError::Empty
            | BatchError::Truncated { .. }
            | BatchError::LengthTooSmall { .. }
            | BatchError::NegativeLastOffsetDelta { .. }
            | BatchError::RecordsCountMismatch { .. }
            | BatchError::UnknownCodec { .. }
            | BatchError::Compression(_)
            | BatchError::NoRecords
            | BatchError::RecordsMissing { .. }
            | BatchError::TrailingBytes { .. }
            | BatchError::RecordLengthInvalid { .. }
            | BatchError::RecordMalformed { .. }
            | BatchError::FieldLengthInvalid { .. }
            | BatchError::RecordLengthMismatch { .. }
            | BatchError::OffsetDeltaMismatch { .. }
            // Kafka's answer to a record over `max.decompressed.message.bytes`.
            | BatchError::DecompressedRecordTooLarge { .. } => ResponseError::InvalidRecord,
            // What Kafka 4.4 answers for records that do not decompress (its decoder's exception
            // is not an ApiException), observed for every codec.
            BatchError::Decompression { .. } => ResponseError::UnknownServerError,
            // Kafka sets no cap; the Java producer splits a batch refused as too large and retries.
            BatchError::DecompressedTooLarge { .. } => ResponseError::MessageTooLarge,
        },
        EngineError::BatchTooLarge { .. } => ResponseError::MessageTooLarge,
        EngineError::InvalidInput(_) => ResponseError::InvalidRequest,
        EngineError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        // A follower's copy that does not continue its log: the broker's own fault, never a
        // client's (Kafka's follower raises a non-API exception there too).
        EngineError::NotContiguous { .. } => ResponseError::UnknownServerError,
        // The caller should retry: Kafka's retriable "request timed out" is closest.
        EngineError::Backpressure => ResponseError::RequestTimedOut,
        EngineError::Corruption { .. } => ResponseError::KafkaStorageError,
        EngineError::Full { .. } => ResponseError::KafkaStorageError,
        EngineError::Io { .. } => ResponseError::KafkaStorageError,
    };
    kind.code()
}

/// What a client sees for a batch that failed validation (a produce's, on the shard or on the
/// codec threads).
pub fn batch_error_code(error: BatchError) -> i16 {
    engine_error_code(&EngineError::InvalidBatch(error))
}

/// Why a produce's work on the codec threads (`runtime::codec_pool`: a conversion, or the
/// validation of large compressed batches) gave no batches.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The engine refused the batches (too large before or after conversion, a codec's failure).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The pool stopped, or the job panicked (a bug of ours): nothing came back.
    #[error("the codec pool did not finish the job")]
    Lost,
}

/// What a client sees for codec-thread work that gave no batches: the engine's answer, or for a
/// job lost on the way Kafka's answer to an unexpected failure.
pub fn convert_error_code(error: &ConvertError) -> i16 {
    match error {
        ConvertError::Engine(error) => engine_error_code(error),
        ConvertError::Lost => ResponseError::UnknownServerError.code(),
    }
}

/// Why a fetch's session fields were refused (the handler answers the Kafka error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("fetch session {0} is not known here")]
    NotFound(i32),
    #[error("fetch session {id} expects epoch {expected}, not {got}")]
    InvalidEpoch { id: i32, expected: i32, got: i32 },
    #[error("fetch session {0} uses topic ids and this fetch names, or the other way round")]
    TopicNaming(i32),
}

/// A fetch's refused session fields (KIP-227), as Kafka answers them.
pub fn fetch_session_error_code(error: &SessionError) -> i16 {
    match error {
        SessionError::NotFound(_) => ResponseError::FetchSessionIdNotFound,
        SessionError::InvalidEpoch { .. } => ResponseError::InvalidFetchSessionEpoch,
        SessionError::TopicNaming(_) => ResponseError::FetchSessionTopicIdError,
    }
    .code()
}

/// What a client sees for a partition-layer error.
pub fn replica_error_code(error: &ReplicaError) -> i16 {
    let kind = match error {
        ReplicaError::UnknownPartition => ResponseError::UnknownTopicOrPartition,
        ReplicaError::NotLeader { .. } | ReplicaError::NotReplica | ReplicaError::NotFollower { .. } => {
            ResponseError::NotLeaderOrFollower
        }
        ReplicaError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
        ReplicaError::NotEnoughReplicasAfterAppend => ResponseError::NotEnoughReplicasAfterAppend,
        ReplicaError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
        ReplicaError::UnknownLeaderEpoch { .. } => ResponseError::UnknownLeaderEpoch,
        ReplicaError::UnknownFollower { epoch_named: true, .. } => ResponseError::UnknownLeaderEpoch,
        ReplicaError::UnknownFollower { epoch_named: false, .. } => ResponseError::NotLeaderOrFollower,
        ReplicaError::UnknownFetchedEpoch { .. } => ResponseError::OffsetOutOfRange,
        ReplicaError::BeyondHighWatermark { .. } => ResponseError::OffsetOutOfRange,
        ReplicaError::OffsetNotAvailable { .. } => ResponseError::OffsetNotAvailable,
        ReplicaError::Producer(ProducerError::OutOfOrderSequence) => ResponseError::OutOfOrderSequenceNumber,
        ReplicaError::Producer(ProducerError::FencedProducerEpoch) => ResponseError::InvalidProducerEpoch,
        ReplicaError::Storage(error) => return engine_error_code(error),
        // The write's fate is unknown to the client (the shard stopped first): retriable.
        ReplicaError::Stopped => ResponseError::RequestTimedOut,
        ReplicaError::Read(_) => ResponseError::KafkaStorageError,
    };
    kind.code()
}

/// What a group's client sees when its offsets could not be persisted: Kafka answers
/// NOT_COORDINATOR when the offsets partition is not here, and the partition's error otherwise.
pub fn offsets_error_code(error: &ReplicaError) -> i16 {
    match error {
        ReplicaError::UnknownPartition => ResponseError::NotCoordinator.code(),
        other => replica_error_code(other),
    }
}

/// What a client sees when Kafka's produce rules refuse its batch (codes observed on Kafka 4.4).
pub fn produce_refusal_code(refusal: &ProduceRefusal) -> i16 {
    let kind = match refusal {
        ProduceRefusal::NotOneBatch { .. }
        | ProduceRefusal::ControlBatch
        | ProduceRefusal::BaseOffsetNotZero { .. }
        | ProduceRefusal::SequenceMissing { .. } => ResponseError::InvalidRecord,
        ProduceRefusal::ZstdBeforeV7 { .. } => ResponseError::UnsupportedCompressionType,
        ProduceRefusal::Transactional => ResponseError::TransactionalIdAuthorizationFailed,
        ProduceRefusal::TimestampOutOfRange { .. } => ResponseError::InvalidTimestamp,
    };
    kind.code()
}

/// Why a topic could not be created, grown or deleted. The message (`Display`) is what the
/// client reads in the response's `error_message`, so each is worded as the broker always has.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// Kafka's topic name rules (`catalog::valid_topic_name` says which one).
    #[error("{0}")]
    InvalidName(String),
    /// The internal offsets topic, which only the broker creates.
    #[error("{name} is internal")]
    Internal { name: String },
    #[error("Topic '{name}' already exists.")]
    AlreadyExists { name: String },
    /// Kafka's metric names turn '.' into '_', so `name` and `existing` cannot both exist.
    #[error("Topic '{name}' collides with existing topic: {existing}")]
    Collision { name: String, existing: String },
    #[error("partition count must be in 1..={}", PARTITIONS_PER_TOPIC_MAX)]
    PartitionCountOutOfRange { count: i32 },
    /// CreatePartitions may only grow a topic.
    #[error(
        "topic {name:?} has {existing} partitions; the new count must be larger and at most {}",
        PARTITIONS_PER_TOPIC_MAX
    )]
    PartitionCountNotLarger { name: String, existing: i32, count: i32 },
    #[error("unknown topic {name:?}")]
    UnknownTopic { name: String },
    /// A single node holds one replica of everything.
    #[error("this single-node broker supports replication factor 1")]
    ReplicationFactor { factor: i16 },
    #[error("manual replica assignment is not supported")]
    ReplicaAssignment,
    /// A manual assignment beside a partition count or replication factor (Kafka's wording).
    #[error("A manual partition assignment was specified, but {field} was not set to -1.")]
    AssignmentWithCount { field: &'static str },
    /// Assignments must name partitions 0, 1, 2, ... in order.
    #[error("partitions should be a consecutive 0-based integer sequence")]
    AssignmentNotConsecutive,
    /// A topic config refused (`config::topic` says why, in Kafka's words where Kafka refuses it).
    #[error(transparent)]
    Config(#[from] TopicConfigError),
    /// A shard could not open one of the topic's partitions.
    #[error(transparent)]
    Partition(#[from] ReplicaError),
    /// The topic manifest (the commit point of every change) could not be written or removed.
    #[error("{0}")]
    Storage(Box<dyn std::error::Error + Send + Sync>),
    /// A shard did not take or finish its part of the change (it is stopping).
    #[error("{0}")]
    Shard(anyhow::Error),
    /// The controller is gone (the broker is stopping).
    #[error("the controller has stopped")]
    Stopped,
    /// In a cluster: the active controller refused the change.
    #[error(transparent)]
    Controller(#[from] cluster::controller::ControllerError),
    /// In a cluster: no active controller answered (an election is going on).
    #[error("no active controller answered; retry")]
    NoController,
}

/// Why a topic config was refused (every case is INVALID_CONFIG for a client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicConfigError {
    /// Not a Kafka topic config (Kafka's wording).
    #[error("Unknown topic config name: {0}")]
    Unknown(String),
    /// A refusal in Kafka's own words that is about no single value (keys that bound each
    /// other, a feature the broker lacks).
    #[error("{0}")]
    Refused(String),
    /// A value Kafka refuses too (Kafka's wording), or one Skua cannot honour (its own reason).
    #[error("Invalid value {value} for configuration {key}: {reason}")]
    InvalidValue { key: String, value: String, reason: String },
    /// A value outside what the one-line formats of Skua's storage can hold (a line break).
    #[error("Invalid value for configuration {0}: it contains a control character")]
    ControlCharacter(String),
}

/// What a client of CreateTopics, CreatePartitions or DeleteTopics sees for a topic error.
pub fn topic_error_code(error: &TopicError) -> i16 {
    let kind = match error {
        TopicError::InvalidName(_) | TopicError::Internal { .. } | TopicError::Collision { .. } => {
            ResponseError::InvalidTopicException
        }
        TopicError::AlreadyExists { .. } => ResponseError::TopicAlreadyExists,
        TopicError::PartitionCountOutOfRange { .. } | TopicError::PartitionCountNotLarger { .. } => {
            ResponseError::InvalidPartitions
        }
        TopicError::UnknownTopic { .. } => ResponseError::UnknownTopicOrPartition,
        TopicError::ReplicationFactor { .. } => ResponseError::InvalidReplicationFactor,
        TopicError::ReplicaAssignment | TopicError::AssignmentNotConsecutive => ResponseError::InvalidReplicaAssignment,
        TopicError::AssignmentWithCount { .. } => ResponseError::InvalidRequest,
        TopicError::Config(_) => ResponseError::InvalidConfig,
        TopicError::Partition(error) => return replica_error_code(error),
        TopicError::Storage(_) => ResponseError::KafkaStorageError,
        TopicError::Shard(_) | TopicError::Stopped => ResponseError::UnknownServerError,
        TopicError::Controller(error) => return controller_error_code(error),
        TopicError::NoController => ResponseError::NotController,
    };
    kind.code()
}

/// What a client sees when the active controller refused its request.
pub fn controller_error_code(error: &cluster::controller::ControllerError) -> i16 {
    use cluster::controller::ControllerError;
    let kind = match error {
        ControllerError::TopicExists(_) => ResponseError::TopicAlreadyExists,
        ControllerError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
        ControllerError::InvalidReplicationFactor { .. } => ResponseError::InvalidReplicationFactor,
        ControllerError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        ControllerError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
        ControllerError::StaleBrokerEpoch { .. } => ResponseError::StaleBrokerEpoch,
        ControllerError::DuplicateBrokerRegistration { .. } => ResponseError::DuplicateBrokerRegistration,
        ControllerError::InconsistentClusterId { .. } => ResponseError::InconsistentClusterId,
        ControllerError::Corrupt(_) => ResponseError::UnknownServerError,
    };
    kind.code()
}

/// What an AlterPartitionReassignments client sees for one partition (Kafka's codes).
pub fn reassignment_outcome_code(outcome: &cluster::controller::ReassignmentOutcome) -> i16 {
    use cluster::controller::ReassignmentOutcome;
    let kind = match outcome {
        ReassignmentOutcome::Accepted => return 0,
        ReassignmentOutcome::UnknownPartition => ResponseError::UnknownTopicOrPartition,
        ReassignmentOutcome::NoReassignmentInProgress => ResponseError::NoReassignmentInProgress,
        ReassignmentOutcome::InvalidAssignment(_) => ResponseError::InvalidReplicaAssignment,
        ReassignmentOutcome::ReplicationFactorChange { .. } => ResponseError::InvalidReplicationFactor,
    };
    kind.code()
}

/// What a Metadata or Produce client sees when creating its unknown topic failed: a name
/// collision is UNKNOWN_TOPIC_OR_PARTITION, as Kafka's Metadata answers it, the rest as
/// CreateTopics would.
pub fn auto_create_error_code(error: &TopicError) -> i16 {
    match error {
        TopicError::Collision { .. } => ResponseError::UnknownTopicOrPartition.code(),
        other => topic_error_code(other),
    }
}

/// Why the controller could not hand out a producer id.
#[derive(Debug, thiserror::Error)]
pub enum ProducerIdError {
    /// Reserving the next block of ids durably failed.
    #[error(transparent)]
    Storage(#[from] std::io::Error),
    /// The controller is gone (the broker is stopping).
    #[error("the controller has stopped")]
    Stopped,
}

/// What an InitProducerId client sees when no id could be handed out.
pub fn producer_id_error_code(error: &ProducerIdError) -> i16 {
    let kind = match error {
        ProducerIdError::Storage(_) => ResponseError::KafkaStorageError,
        // As a failed reservation: the client retries InitProducerId either way.
        ProducerIdError::Stopped => ResponseError::KafkaStorageError,
    };
    kind.code()
}

pub fn code(error: ResponseError) -> i16 {
    error.code()
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::Offset;

    #[test]
    fn codes_are_kafkas() {
        assert_eq!(
            engine_error_code(&EngineError::InvalidBatch(BatchError::CrcMismatch { expected: 1, actual: 2 })),
            2
        );
        assert_eq!(engine_error_code(&EngineError::BatchTooLarge { size_bytes: 2, limit_bytes: 1 }), 10);
        let out_of_range =
            EngineError::OffsetOutOfRange { requested: Offset(9), log_start: Offset(0), log_end: Offset(1) };
        assert_eq!(engine_error_code(&out_of_range), 1);
        assert_eq!(engine_error_code(&EngineError::Full { path: "x".into() }), 56);
        let invalid = batch_error_code;
        assert_eq!(invalid(BatchError::NoRecords), 87);
        assert_eq!(invalid(BatchError::TrailingBytes { records_count: 1 }), 87);
        assert_eq!(invalid(BatchError::Decompression { codec: 1, detail: String::new() }), -1);
        assert_eq!(invalid(BatchError::DecompressedTooLarge { limit_bytes: 1 }), 10);
        assert_eq!(produce_refusal_code(&ProduceRefusal::Transactional), 53);
        assert_eq!(produce_refusal_code(&ProduceRefusal::ZstdBeforeV7 { version: 6 }), 76);
        assert_eq!(produce_refusal_code(&ProduceRefusal::ControlBatch), 87);
        assert_eq!(replica_error_code(&ReplicaError::UnknownPartition), 3);
        assert_eq!(replica_error_code(&ReplicaError::NotLeader { epoch: engine::LeaderEpoch(1) }), 6);
        let epochs = (engine::LeaderEpoch(1), engine::LeaderEpoch(2));
        assert_eq!(replica_error_code(&ReplicaError::FencedLeaderEpoch { requested: epochs.0, current: epochs.1 }), 74);
        assert_eq!(
            replica_error_code(&ReplicaError::UnknownLeaderEpoch { requested: epochs.1, current: epochs.0 }),
            75
        );
        assert_eq!(replica_error_code(&ReplicaError::Producer(ProducerError::OutOfOrderSequence)), 45);
        assert_eq!(replica_error_code(&ReplicaError::Producer(ProducerError::FencedProducerEpoch)), 47);
        assert_eq!(replica_error_code(&ReplicaError::from(EngineError::Full { path: "x".into() })), 56);
        assert_eq!(offsets_error_code(&ReplicaError::UnknownPartition), 16);
        let timestamp = ProduceRefusal::TimestampOutOfRange { timestamp_ms: 0, low_ms: 0, high_ms: 0 };
        assert_eq!(produce_refusal_code(&timestamp), 32);
    }

    /// Codes and messages exactly as the controller and the topic handlers sent them as
    /// `(i16, String)` pairs before [`TopicError`].
    #[test]
    fn topic_errors_are_kafkas() {
        let name = || "a.b".to_string();
        let storage = std::io::Error::other("disk gone");
        let full = EngineError::Full { path: "x".into() }.to_string();
        let cases: Vec<(TopicError, i16, i16, &str)> = vec![
            (TopicError::InvalidName("bad name".into()), 17, 17, "bad name"),
            (TopicError::Internal { name: "__consumer_offsets".into() }, 17, 17, "__consumer_offsets is internal"),
            (TopicError::AlreadyExists { name: name() }, 36, 36, "Topic 'a.b' already exists."),
            (
                TopicError::Collision { name: name(), existing: "a_b".into() },
                17,
                3,
                "Topic 'a.b' collides with existing topic: a_b",
            ),
            (TopicError::PartitionCountOutOfRange { count: 0 }, 37, 37, "partition count must be in 1..=10000"),
            (
                TopicError::PartitionCountNotLarger { name: name(), existing: 3, count: 2 },
                37,
                37,
                "topic \"a.b\" has 3 partitions; the new count must be larger and at most 10000",
            ),
            (TopicError::UnknownTopic { name: name() }, 3, 3, "unknown topic \"a.b\""),
            (
                TopicError::ReplicationFactor { factor: 3 },
                38,
                38,
                "this single-node broker supports replication factor 1",
            ),
            (TopicError::ReplicaAssignment, 39, 39, "manual replica assignment is not supported"),
            (
                TopicError::AssignmentWithCount { field: "replication factor" },
                42,
                42,
                "A manual partition assignment was specified, but replication factor was not set to -1.",
            ),
            (
                TopicError::AssignmentNotConsecutive,
                39,
                39,
                "partitions should be a consecutive 0-based integer sequence",
            ),
            (
                TopicError::Config(TopicConfigError::Unknown("foo.bar".into())),
                40,
                40,
                "Unknown topic config name: foo.bar",
            ),
            (
                TopicError::Config(TopicConfigError::InvalidValue {
                    key: "min.insync.replicas".into(),
                    value: "0".into(),
                    reason: "Value must be at least 1".into(),
                }),
                40,
                40,
                "Invalid value 0 for configuration min.insync.replicas: Value must be at least 1",
            ),
            (TopicError::Partition(ReplicaError::from(EngineError::Full { path: "x".into() })), 56, 56, &full),
            (TopicError::Storage(Box::new(storage)), 56, 56, "disk gone"),
            (
                TopicError::Shard(anyhow::anyhow!("shard 1 stopped").context("submitting to shard 1")),
                -1,
                -1,
                "submitting to shard 1",
            ),
            (TopicError::Stopped, -1, -1, "the controller has stopped"),
        ];
        assert_eq!(producer_id_error_code(&ProducerIdError::Storage(std::io::Error::other("x"))), 56);
        assert_eq!(producer_id_error_code(&ProducerIdError::Stopped), 56);
        for (error, code, auto_code, message) in &cases {
            assert_eq!(topic_error_code(error), *code, "{error:?}");
            assert_eq!(auto_create_error_code(error), *auto_code, "{error:?}");
            assert_eq!(error.to_string(), *message, "{error:?}");
        }
    }
}
