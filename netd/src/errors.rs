//! The one mapping from engine and broker errors to Kafka error codes.
//!
//! Owns: every Kafka error code the broker sends. Exhaustive on purpose: a new engine error does
//! not compile until someone decides what a client sees for it.

use engine::{BatchError, EngineError};
use kafka_protocol::ResponseError;

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
            | BatchError::Compression(_) => ResponseError::InvalidRecord,
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
    }
}
