//! Skua's storage engine: segmented, append-only partition logs of Kafka v2 record batches.
//!
//! Owns: everything between "here are some validated record batch bytes" and the disk: offset
//! assignment, segments and their indexes, the group commit through io_uring, crash recovery,
//! retention, truncation, and the zero-copy read plan a fetch sends.
//!
//! Must not know: the Kafka protocol. No API key, request, response or Kafka error code appears
//! here, and this crate depends on no other workspace crate. Topics are the broker's idea; the
//! engine sees directories it is told to open.
//!
//! Threading: a [`Shard`] and its logs belong to one thread. Nothing here locks.

pub mod batch;
pub mod cache;
pub mod checkpoint;
pub mod compression;
pub mod config;
pub mod error;
pub mod index;
pub mod io;
pub mod limits;
pub mod log;
pub mod records;
pub mod segment;
pub mod shard;
pub mod testkit;
pub mod types;

pub use config::{CompressionType, FlushPolicy, LogConfig, ShardConfig, TimestampType, WriteMode};
pub use error::{BatchError, EngineError, Result};
pub use log::{AppendInfo, ReadChunk, ReadResult, RecoveryReport, RetentionReport};
pub use shard::{CommitReport, Shard};
pub use types::{FilePosition, LeaderEpoch, LogId, Offset, TimestampMs};
