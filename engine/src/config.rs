//! Configuration of a shard and of each log, with Kafka's defaults.
//!
//! Owns: the knobs and their validation. Key names follow Kafka's topic configs where one exists
//! (`segment.bytes` → `segment_bytes`); parsing `server.properties` is the broker's job.

use crate::error::{EngineError, Result};
use crate::limits;

/// How segment files are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// O_DIRECT: aligned writes, the partial tail block kept in memory and rewritten with the next
    /// write, recent data served to readers from the in-memory tail cache.
    Direct,
    /// Through the page cache.
    Buffered,
}

impl WriteMode {
    pub fn parse(text: &str) -> Result<WriteMode> {
        match text {
            "direct" => Ok(WriteMode::Direct),
            "buffered" => Ok(WriteMode::Buffered),
            other => Err(EngineError::InvalidInput(format!("write mode must be direct or buffered, not {other:?}"))),
        }
    }
}

/// When appended data is made durable and when the append is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Every group commit ends with `fdatasync`; appends are acknowledged after it. Nothing
    /// acknowledged is lost on power failure.
    FsyncBeforeAck,
    /// Kafka's default behaviour: acknowledge once the write is done, `fdatasync` when
    /// `flush_messages` messages or `flush_ms` milliseconds have accumulated since the last one.
    Interval { flush_messages: u64, flush_ms: i64 },
}

/// Kafka's `compression.type` for a topic: which codec a leader stores produced batches with.
/// Any other than `Producer` converts a batch that arrives with another codec (decompressed,
/// compressed again; docs/decisions/0005-compression.md), as Kafka does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompressionType {
    /// Keep whatever codec the producer used (Kafka's default, `producer`).
    Producer,
    /// Stored uncompressed (`uncompressed`).
    Uncompressed,
    /// gzip at `level` (Kafka's `compression.gzip.level`: 1 to 9, or -1 for zlib's default, 6).
    Gzip {
        level: i32,
    },
    /// snappy, in the xerial framing the Java client writes.
    Snappy,
    /// lz4 frames as Kafka writes them (64 KiB independent blocks). One compression level:
    /// Kafka's `compression.lz4.level` has no effect here.
    Lz4,
    Zstd {
        level: i32,
    },
}

impl CompressionType {
    /// The codec batches are stored with; `None` for `Producer` (the batch's own).
    pub fn codec(self) -> Option<crate::batch::Codec> {
        use crate::batch::Codec;
        match self {
            CompressionType::Producer => None,
            CompressionType::Uncompressed => Some(Codec::None),
            CompressionType::Gzip { .. } => Some(Codec::Gzip),
            CompressionType::Snappy => Some(Codec::Snappy),
            CompressionType::Lz4 => Some(Codec::Lz4),
            CompressionType::Zstd { .. } => Some(Codec::Zstd),
        }
    }
}

/// Kafka's `message.timestamp.type` for a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampType {
    /// Batches keep the producer's timestamps (Kafka's default).
    CreateTime,
    /// A leader marks each batch it appends with its append time (the records' own timestamps
    /// stay; readers use the batch's). Replicated batches are stored as the leader marked them.
    LogAppendTime,
}

/// Per-log configuration (Kafka's topic configs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    /// Kafka's `segment.jitter.ms`: each segment rolls up to this much before `segment_ms`
    /// (its own amount, below `min(segment_jitter_ms, segment_ms)`), so that the segments of
    /// many logs created together do not all roll at once. 0: none.
    pub segment_jitter_ms: i64,
    /// Negative: unlimited.
    pub retention_ms: i64,
    /// Negative: unlimited.
    pub retention_bytes: i64,
    pub index_interval_bytes: u64,
    /// Kafka's `segment.index.bytes`: the active segment rolls once its offset index holds this
    /// many bytes of 8-byte entries, or its time index of 12-byte entries (Skua's indexes live
    /// in memory until the segment is sealed; this bounds them as Kafka bounds its index files).
    pub index_bytes_max: u64,
    pub flush_policy: FlushPolicy,
    pub compression: CompressionType,
    /// The largest batch a producer may append to this log (Kafka's `max.message.bytes`);
    /// `None`: the shard's `batch_bytes_max`. Replicated appends and recovery are bounded by the
    /// engine's hard limit instead, so a log keeps every batch it once took when this is lowered.
    pub batch_bytes_max: Option<usize>,
    pub timestamp_type: TimestampType,
    /// How far before and after the appending broker's clock a produced batch's timestamps may
    /// be, in ms (Kafka's `message.timestamp.before.max.ms` / `after.max.ms`; `i64::MAX`: no
    /// bound). Kept with the log's other settings for the broker, which checks them before it
    /// appends (not for LogAppendTime logs); the engine does not apply them.
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    /// The longest record body a producer's compressed batch may declare, in bytes (Kafka's
    /// `max.decompressed.message.bytes`); records of uncompressed batches are bounded by
    /// `batch_bytes_max` alone. Checked by the record walk of produced batches.
    pub decompressed_record_bytes_max: usize,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: limits::SEGMENT_BYTES_DEFAULT,
            segment_ms: limits::SEGMENT_MS_DEFAULT,
            segment_jitter_ms: 0,
            retention_ms: limits::RETENTION_MS_DEFAULT,
            retention_bytes: limits::RETENTION_BYTES_DEFAULT,
            index_interval_bytes: limits::INDEX_INTERVAL_BYTES_DEFAULT,
            index_bytes_max: limits::INDEX_BYTES_MAX_DEFAULT,
            flush_policy: FlushPolicy::FsyncBeforeAck,
            compression: CompressionType::Producer,
            batch_bytes_max: None,
            timestamp_type: TimestampType::CreateTime,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: i64::MAX,
            decompressed_record_bytes_max: limits::DECOMPRESSED_RECORD_BYTES_MAX_DEFAULT,
        }
    }
}

impl LogConfig {
    /// The segment based at `base`'s share of `segment_jitter_ms`: how much earlier than
    /// `segment_ms` it rolls. Kafka draws it at random per segment; here it is a hash of the
    /// segment's base offset, so each segment has its own and a reopened log keeps it.
    pub fn roll_jitter_ms(&self, base: u64) -> i64 {
        let bound = self.segment_jitter_ms.min(self.segment_ms);
        if bound <= 0 {
            return 0;
        }
        // SplitMix64's finaliser: neighbouring base offsets get unrelated jitters.
        let mut mixed = base.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^= mixed >> 31;
        (mixed % bound.unsigned_abs()) as i64
    }

    pub fn validate(&self) -> Result<()> {
        if !(limits::SEGMENT_BYTES_MIN..=limits::SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return Err(EngineError::InvalidInput(format!(
                "segment.bytes {} outside [{}, {}]",
                self.segment_bytes,
                limits::SEGMENT_BYTES_MIN,
                limits::SEGMENT_BYTES_MAX
            )));
        }
        if self.segment_ms <= 0 {
            return Err(EngineError::InvalidInput(format!("segment.ms must be positive, got {}", self.segment_ms)));
        }
        if self.segment_jitter_ms < 0 {
            return Err(EngineError::InvalidInput(format!(
                "segment.jitter.ms must not be negative, got {}",
                self.segment_jitter_ms
            )));
        }
        if self.index_interval_bytes == 0 {
            return Err(EngineError::InvalidInput("index.interval.bytes must be positive".into()));
        }
        if self.index_bytes_max < limits::INDEX_BYTES_MAX_MIN {
            return Err(EngineError::InvalidInput(format!(
                "segment.index.bytes must be at least {}, got {}",
                limits::INDEX_BYTES_MAX_MIN,
                self.index_bytes_max
            )));
        }
        if let FlushPolicy::Interval { flush_messages, flush_ms } = self.flush_policy {
            if flush_messages == 0 || flush_ms < 0 {
                return Err(EngineError::InvalidInput(format!(
                    "flush.messages must be positive and flush.ms non-negative, got {flush_messages} and {flush_ms}"
                )));
            }
        }
        match self.compression {
            CompressionType::Zstd { level } if !(limits::ZSTD_LEVEL_MIN..=limits::ZSTD_LEVEL_MAX).contains(&level) => {
                return Err(EngineError::InvalidInput(format!(
                    "zstd level {level} outside [{}, {}]",
                    limits::ZSTD_LEVEL_MIN,
                    limits::ZSTD_LEVEL_MAX
                )));
            }
            CompressionType::Gzip { level } if level != -1 && !(1..=9).contains(&level) => {
                return Err(EngineError::InvalidInput(format!("gzip level {level} neither -1 nor in [1, 9]")));
            }
            _ => {}
        }
        if let Some(bytes) = self.batch_bytes_max {
            if bytes > limits::BATCH_BYTES_MAX {
                return Err(EngineError::InvalidInput(format!(
                    "batch_bytes_max {bytes} above the engine's limit {}",
                    limits::BATCH_BYTES_MAX
                )));
            }
        }
        Ok(())
    }
}

/// Per-shard configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardConfig {
    pub write_mode: WriteMode,
    /// Bytes of recently committed data the shard's logs keep in memory for readers, all logs
    /// together: over it, the chunks of the oldest commits go first, whichever log holds them.
    pub cache_bytes: usize,
    pub inflight_appends_max: usize,
    pub pending_bytes_max: usize,
    pub batch_bytes_max: usize,
    /// Segment files removed by retention that each log keeps to reuse for its next segments
    /// (see docs/decisions/0012-segment-recycling.md); 0 unlinks them.
    pub recycled_segments_per_log_max: usize,
}

impl Default for ShardConfig {
    fn default() -> ShardConfig {
        ShardConfig {
            write_mode: WriteMode::Direct,
            cache_bytes: limits::CACHE_BYTES_DEFAULT,
            inflight_appends_max: limits::INFLIGHT_APPENDS_MAX,
            pending_bytes_max: limits::PENDING_BYTES_MAX,
            batch_bytes_max: limits::BATCH_BYTES_MAX,
            recycled_segments_per_log_max: limits::RECYCLED_SEGMENTS_PER_LOG_DEFAULT,
        }
    }
}

impl ShardConfig {
    pub fn validate(&self) -> Result<()> {
        if self.batch_bytes_max < limits::BATCH_HEADER_BYTES || self.batch_bytes_max > limits::BATCH_BYTES_MAX {
            return Err(EngineError::InvalidInput(format!(
                "batch_bytes_max {} outside [{}, {}]",
                self.batch_bytes_max,
                limits::BATCH_HEADER_BYTES,
                limits::BATCH_BYTES_MAX
            )));
        }
        if self.inflight_appends_max == 0 || self.pending_bytes_max < self.batch_bytes_max {
            return Err(EngineError::InvalidInput(
                "inflight_appends_max must be positive and pending_bytes_max at least batch_bytes_max".into(),
            ));
        }
        Ok(())
    }
}
