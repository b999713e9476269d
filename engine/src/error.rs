//! The engine's error type.
//!
//! Owns: the distinction callers need to act on. `Corruption` (bytes on disk are wrong), `Io` (the
//! device or kernel failed), `Full` (no space left) and `InvalidBatch`/`InvalidInput` (the caller's
//! bytes or arguments are wrong) never collapse into one another. Mapping these to Kafka error codes
//! is the broker's job, not ours.

use std::io;
use std::path::PathBuf;

use crate::types::Offset;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The caller handed bytes that are not a valid v2 record batch.
    #[error("invalid record batch: {0}")]
    InvalidBatch(#[from] BatchError),

    /// A batch is larger than the configured limit.
    #[error("record batch of {size_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    BatchTooLarge { size_bytes: usize, limit_bytes: usize },

    /// A call's arguments make no sense for this log (unknown log, bad config value, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The requested offset is outside `[log_start_offset, log_end_offset]`.
    #[error("offset {requested} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange { requested: Offset, log_start: Offset, log_end: Offset },

    /// A replicated batch does not start where the log (or the batch before it) ends: the leader's
    /// batches must be appended contiguously, with the offsets they carry.
    #[error("replicated batch starts at offset {found}, expected {expected}")]
    NotContiguous { expected: Offset, found: Offset },

    /// Too many appends (or bytes) are waiting for the next commit in this shard.
    #[error("too many appends waiting for commit; commit before appending more")]
    Backpressure,

    /// Data on disk failed validation at a place where the engine cannot truncate it away.
    #[error("corruption in {path}: {detail}")]
    Corruption { path: PathBuf, detail: String },

    /// The file system has no space left (ENOSPC, EDQUOT). The log is unchanged and readable.
    #[error("disk full while writing {path}")]
    Full { path: PathBuf },

    /// Any other I/O failure.
    #[error("I/O error on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

impl EngineError {
    /// Classifies an I/O error: disk-full conditions become [`EngineError::Full`].
    pub fn from_io(path: impl Into<PathBuf>, source: io::Error) -> EngineError {
        let path = path.into();
        match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => EngineError::Full { path },
            _ => EngineError::Io { path, source },
        }
    }
}

/// Why a byte range is not a valid v2 record batch. Returned by [`crate::batch`] validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("input is empty")]
    Empty,
    #[error("truncated batch: need {needed_bytes} bytes, have {available_bytes}")]
    Truncated { needed_bytes: usize, available_bytes: usize },
    #[error("batch length field {length} is below the minimum header size")]
    LengthTooSmall { length: i32 },
    #[error("unsupported magic byte {magic} (only v2 batches are stored)")]
    UnsupportedMagic { magic: i8 },
    #[error("CRC mismatch: header says {expected:#010x}, content has {actual:#010x}")]
    CrcMismatch { expected: u32, actual: u32 },
    #[error("last offset delta {last_offset_delta} is negative")]
    NegativeLastOffsetDelta { last_offset_delta: i32 },
    #[error("records count {records_count} does not match last offset delta {last_offset_delta}")]
    RecordsCountMismatch { records_count: i32, last_offset_delta: i32 },
    #[error("unknown compression codec {codec}")]
    UnknownCodec { codec: u16 },
    #[error("compression failed: {0}")]
    Compression(String),
    #[error("the batch holds no records (records count 0)")]
    NoRecords,
    #[error("records count is {records_count} but the batch holds only {records_found} records")]
    RecordsMissing { records_count: u32, records_found: u32 },
    #[error("bytes are left after the {records_count} records the batch declares")]
    TrailingBytes { records_count: u32 },
    #[error("record {record_index}: length {length} is not positive")]
    RecordLengthInvalid { record_index: u32, length: i32 },
    #[error("record {record_index}: {detail}")]
    RecordMalformed { record_index: u32, detail: &'static str },
    #[error("record {record_index}: key, value or header length {length} is invalid")]
    FieldLengthInvalid { record_index: u32, length: i32 },
    #[error("record {record_index}: declares {declared_bytes} bytes but its fields take {read_bytes}")]
    RecordLengthMismatch { record_index: u32, declared_bytes: i32, read_bytes: i32 },
    #[error("record {record_index}: offset delta {offset_delta}, expected {record_index}")]
    OffsetDeltaMismatch { record_index: u32, offset_delta: i32 },
    #[error("records do not decompress (codec {codec}): {detail}")]
    Decompression { codec: u16, detail: String },
    #[error("records decompress to more than {limit_bytes} bytes")]
    DecompressedTooLarge { limit_bytes: usize },
    /// A compressed batch's record declares a body longer than the log allows a decompressed
    /// record to be (Kafka's `max.decompressed.message.bytes`).
    #[error("record {record_index} declares {length} bytes once decompressed, more than {limit_bytes}")]
    DecompressedRecordTooLarge { record_index: u32, length: i32, limit_bytes: usize },
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
