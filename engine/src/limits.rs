//! Every limit and default of the engine, named in one place.
//!
//! Owns: constants only. A limit that is configurable has its default here and its field in
//! [`crate::config`].

/// Size of a v2 record batch header, i.e. the smallest possible batch (a batch with no records).
pub const BATCH_HEADER_BYTES: usize = 61;

/// The largest batch the engine accepts (Kafka's `message.max.bytes` is checked by the broker; this
/// is the engine's own ceiling, which also bounds every allocation driven by a length field).
pub const BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Most bytes the records of one compressed batch may decompress to. Kafka sets no such cap (its
/// `max.decompressed.message.bytes` bounds one record, see below); we need one so that a decompression bomb costs at most this much CPU (the walk keeps nothing).
/// Equal to [`BATCH_BYTES_MAX`]: a producer may send that much uncompressed, so refusing less
/// once compressed would refuse content we otherwise accept.
pub const RECORDS_DECOMPRESSED_BYTES_MAX: usize = BATCH_BYTES_MAX;

/// Kafka's default `max.decompressed.message.bytes` (Integer.MAX_VALUE - 8): the longest body a
/// record of a compressed batch may declare, in bytes. A log may set less.
pub const DECOMPRESSED_RECORD_BYTES_MAX_DEFAULT: usize = i32::MAX as usize - 8;

/// The fixed buffer through which the record walk reads a decompressing stream.
pub const RECORDS_STREAM_BUFFER_BYTES: usize = 8 * 1024;

/// Default segment size before a roll (`segment.bytes`, as Kafka: 1 GiB).
pub const SEGMENT_BYTES_DEFAULT: u64 = 1024 * 1024 * 1024;

/// Segments are addressed with 32-bit positions in the indexes (Kafka's format), so a segment can
/// never grow past this.
pub const SEGMENT_BYTES_MAX: u64 = i32::MAX as u64;

/// Smallest accepted `segment.bytes` (Kafka's minimum is 14 bytes; we require room for one header).
pub const SEGMENT_BYTES_MIN: u64 = BATCH_HEADER_BYTES as u64;

/// Default age after which the active segment rolls (`segment.ms`, as Kafka: 7 days).
pub const SEGMENT_MS_DEFAULT: i64 = 7 * 24 * 60 * 60 * 1000;

/// Default time retention (`retention.ms`, as Kafka: 7 days). Negative means unlimited.
pub const RETENTION_MS_DEFAULT: i64 = 7 * 24 * 60 * 60 * 1000;

/// Default size retention (`retention.bytes`, as Kafka: unlimited).
pub const RETENTION_BYTES_DEFAULT: i64 = -1;

/// Bytes of log between two sparse index entries (`index.interval.bytes`, as Kafka: 4096).
pub const INDEX_INTERVAL_BYTES_DEFAULT: u64 = 4096;

/// zstd's levels as Kafka takes them (`compression.zstd.level`, KIP-390): its fast (negative)
/// levels down to zstd's minimum, 0 for zstd's default, up to its strongest.
pub const ZSTD_LEVEL_MIN: i32 = -131_072;
pub const ZSTD_LEVEL_MAX: i32 = 22;

/// The most a segment's offset or time index may hold before the segment rolls
/// (`segment.index.bytes`, as Kafka: 10 MiB).
pub const INDEX_BYTES_MAX_DEFAULT: u64 = 10 * 1024 * 1024;

/// The smallest `segment.index.bytes` (Kafka's: 4, room for no entry, so every segment holds one
/// batch).
pub const INDEX_BYTES_MAX_MIN: u64 = 4;

/// Bytes of recently committed data a shard keeps in memory for readers, over all its logs (the
/// engine's default; the broker sizes it from the machine's memory).
pub const CACHE_BYTES_DEFAULT: usize = 64 * 1024 * 1024;

/// Appends waiting for the next group commit in one shard. Beyond this, `append` answers
/// [`crate::EngineError::Backpressure`] and the caller must commit first.
pub const INFLIGHT_APPENDS_MAX: usize = 65_536;

/// Bytes waiting for the next group commit in one shard.
pub const PENDING_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Alignment of every O_DIRECT write: offset, length and buffer address.
pub const DIRECT_IO_ALIGNMENT_BYTES: usize = 4096;

/// Freed direct-write buffers a thread keeps for reuse (`io::aligned`), at most: a shard's
/// commits in flight fit in it several times over at the read-back suite's commit sizes.
pub const ALIGNED_POOL_BYTES_MAX: usize = 32 * 1024 * 1024;

/// A log's read-ahead window, in reads of the size just asked for: a reader of segment files
/// (a consumer catching up, a follower) has the kernel read this many of its reads ahead
/// (`POSIX_FADV_WILLNEED`), so that its next reads find the page cache filled.
pub const FILE_READ_AHEAD_READS: u64 = 4;

/// Least bytes of a read-ahead window (small fetches still get large disk requests).
pub const FILE_READ_AHEAD_BYTES_MIN: u64 = 4 * 1024 * 1024;

/// Most bytes of a read-ahead window (a 50 MiB follower fetch does not pin 200 MiB of page cache).
pub const FILE_READ_AHEAD_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Most bytes a log's new pending buffer reserves up front (sized like its last commit).
pub const PENDING_WRITE_RESERVE_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Kernel workers that may run one shard's blocking io_uring work (the `fdatasync`s) at once;
/// the kernel's default is 4 per CPU. Partitions sync in parallel up to this.
pub const URING_BOUNDED_WORKERS_MAX: u32 = 16;

/// Submission queue entries of one shard's io_uring.
pub const URING_ENTRIES: u32 = 256;

/// Waits in a row that reap no completion before a dropped io_uring backend gives up on its
/// entries in flight and leaks their buffers (the kernel may still read them).
pub const URING_DROP_STALLS_MAX: u32 = 8;

/// Short writes are resubmitted; a write that makes no progress this many times is an I/O error.
pub const SHORT_WRITE_RETRIES_MAX: u32 = 16;

/// Segment files retention removed that a log keeps for its next rolls, default of
/// [`crate::ShardConfig::recycled_segments_per_log_max`]. Overwriting a file's written blocks
/// needs no block allocation and no freeing (no TRIM on a `discard` mount), so the syncs of a
/// busy log that rolls and deletes stay pure data syncs. One is enough when retention removes a
/// segment for each one that rolls; 0 unlinks every removed segment.
pub const RECYCLED_SEGMENTS_PER_LOG_DEFAULT: usize = 1;

/// A recycled segment file not reused for this long is unlinked by the next retention pass, so a
/// log that stopped rolling does not hold the space of an extra segment.
pub const RECYCLED_SEGMENT_IDLE_MS_MAX: i64 = 10 * 60 * 1000;
