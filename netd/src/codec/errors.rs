//! The one mapping from engine, partition-layer and broker errors to Kafka error codes.
//!
//! Owns: every Kafka error code the broker sends. Exhaustive on purpose: a new engine error does
//! not compile until someone decides what a client sees for it.

use engine::{BatchError, EngineError};
use kafka_protocol::ResponseError;
use replica::{ProducerError, ReplicaError};

use crate::codec::produce_policy::ProduceRefusal;

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
            | BatchError::OffsetDeltaMismatch { .. } => ResponseError::InvalidRecord,
            // What Kafka 4.4 answers for records that do not decompress (its decoder's exception
            // is not an ApiException), observed for every codec.
            BatchError::Decompression { .. } => ResponseError::UnknownServerError,
            // Kafka sets no cap; the Java producer splits a batch refused as too large and retries.
            BatchError::DecompressedTooLarge { .. } => ResponseError::MessageTooLarge,
        },
        EngineError::BatchTooLarge { .. } => ResponseError::MessageTooLarge,
        EngineError::InvalidInput(_) => ResponseError::InvalidRequest,
        EngineError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        // The caller should retry: Kafka's retriable "request timed out" is closest.
        EngineError::Backpressure => ResponseError::RequestTimedOut,
        EngineError::Corruption { .. } => ResponseError::KafkaStorageError,
        EngineError::Full { .. } => ResponseError::KafkaStorageError,
        EngineError::Io { .. } => ResponseError::KafkaStorageError,
    };
    kind.code()
}

/// What a client sees for a partition-layer error.
pub fn replica_error_code(error: &ReplicaError) -> i16 {
    let kind = match error {
        ReplicaError::UnknownPartition => ResponseError::UnknownTopicOrPartition,
        ReplicaError::NotLeader { .. } => ResponseError::NotLeaderOrFollower,
        ReplicaError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
        ReplicaError::UnknownLeaderEpoch { .. } => ResponseError::UnknownLeaderEpoch,
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
        let invalid = |error: BatchError| engine_error_code(&EngineError::InvalidBatch(error));
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
}
