//! One partition log: a directory of segments, its pending appends, reads, recovery, retention
//! and truncation.
//!
//! Owns: every decision about one log (offset assignment, when to roll, what a read returns, what
//! recovery keeps, what retention deletes). The group commit that writes pending appends for many
//! logs at once belongs to [`crate::shard`]; this module prepares its part ([`Log::prepare_commit`])
//! and applies the outcome ([`Log::finish_commit`]). Runs on the shard thread that owns the log.
//!
//! State of a log, by offset:
//! ```text
//!   log_start_offset      durable_offset    committed_offset     next_offset
//!        |--- synced, readable ---|-- written, readable --|--- pending ---|
//! ```
//! `durable_offset == committed_offset` after every commit under fsync-before-ack. Readers see up
//! to `committed_offset`; pending bytes exist only in memory.
//!
//! At most one commit of a log is in flight (prepared, not yet finished): appends go on queueing
//! behind it, and the next commit is prepared only after it finished. So two writes to one file
//! never race (in direct mode the next commit rewrites the tail block the previous one wrote), and
//! a segment rolled away from while its last bytes are in flight is sealed when they land.
//!
//! Files: this one holds the log's state and what every concern shares; `append.rs` queues
//! appends and rolls, `commit.rs` prepares and finishes group commits and seals segments,
//! `read.rs` serves reads and timestamp lookups, `recovery.rs` opens a log after a crash,
//! `retention.rs` deletes old segments, recycles their files, truncates, resets a follower's log to
//! a new start, and closes.

mod append;
mod commit;
mod read;
mod recovery;
mod retention;

pub use append::AppendInfo;
pub use commit::{PreparedCommit, PreparedWrite};
pub use read::{ReadChunk, ReadResult};
pub use recovery::RecoveryReport;
pub use retention::RetentionReport;

use std::path::{Path, PathBuf};

use crate::cache::TailCache;
use crate::config::{LogConfig, WriteMode};
use crate::error::{EngineError, Result};
use crate::io::{FileSystem, OpenOptions};
use crate::segment::{self, Segment, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::types::Offset;

#[derive(Debug)]
struct PendingBatch {
    relative_position: u64,
    base_offset: Offset,
    last_offset: Offset,
    max_timestamp: i64,
    size_bytes: u64,
}

/// Appended but not yet written bytes for one segment.
#[derive(Debug)]
struct PendingWrite {
    segment_base: Offset,
    data: Vec<u8>,
    batches: Vec<PendingBatch>,
    /// The segment was rolled away from: seal it once this write is durable.
    seal_after: bool,
}

#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    write_mode: WriteMode,
    batch_bytes_max: usize,
    segments: Vec<Segment>,
    log_start_offset: Offset,
    durable_offset: Offset,
    committed_offset: Offset,
    next_offset: Offset,
    pending: Vec<PendingWrite>,
    pending_bytes: usize,
    unflushed_messages: u64,
    last_flush_ms: i64,
    recovery_offset: Offset,
    cache: TailCache,
    /// How far the kernel was last asked to read ahead in a segment file: (segment base, end
    /// position). A read that stays well inside the window asks for nothing more.
    read_ahead: std::cell::Cell<Option<(Offset, u64)>>,
    /// Set when a failed commit could not be rolled back; the log then refuses appends.
    failed: Option<String>,
    /// Segment bases written by the commit in flight; `None` when no commit is in flight.
    committing: Option<Vec<Offset>>,
    /// Segments rolled away from while their last bytes were in flight: sealed when those land.
    seal_when_committed: Vec<Offset>,
    /// Size of the last commit's write: a new pending buffer starts with this much room, so
    /// appends do not copy it again and again while it grows.
    write_bytes_hint: usize,
    /// Segment files retention removed, kept for the next rolls (newest last).
    recycled: Vec<RecycledFile>,
    recycled_max: usize,
}

/// A segment file retention removed, waiting under [`RECYCLED_SUFFIX`] to become a new segment.
/// Every batch in it has an offset below the log start offset, so none can pass for a batch of
/// the segment it becomes: recovery's scan wants each batch's base offset to continue the last.
#[derive(Debug)]
struct RecycledFile {
    path: PathBuf,
    since_ms: i64,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |error| EngineError::from_io(path, error)
}

impl Log {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Changes this log's configuration (a topic config altered at runtime). It applies from the
    /// next append (segment size and age, batch limit, codec), the next retention pass and the
    /// next flush decision; nothing already written changes.
    pub fn set_config(&mut self, config: LogConfig) -> Result<()> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    pub fn log_start_offset(&self) -> Offset {
        self.log_start_offset
    }

    /// One past the last committed (readable) offset.
    pub fn log_end_offset(&self) -> Offset {
        self.committed_offset
    }

    /// One past the last offset known to be on stable storage.
    pub fn durable_offset(&self) -> Offset {
        self.durable_offset
    }

    /// One past the last assigned offset, pending appends included.
    pub fn next_offset(&self) -> Offset {
        self.next_offset
    }

    /// Base offset of the active segment: reading from here covers the log's recent history
    /// (the broker rebuilds producer state from it).
    pub fn active_segment_base(&self) -> Offset {
        self.active().base.max(self.log_start_offset)
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Committed bytes over all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|segment| segment.size_bytes).sum()
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// A commit of this log is in flight: the next one is prepared after it finished.
    pub fn is_committing(&self) -> bool {
        self.committing.is_some()
    }

    pub fn cached_bytes(&self) -> usize {
        self.cache.cached_bytes()
    }

    /// Drops the cached chunks of the shard's commits up to `sequence`; the bytes freed.
    pub(crate) fn evict_cache_through(&mut self, sequence: u64) -> usize {
        self.cache.evict_through(sequence)
    }

    pub(crate) fn cache_holds(&self, sequence: u64) -> bool {
        self.cache.holds(sequence)
    }

    fn active(&self) -> &Segment {
        self.segments.last().expect("a log always has an active segment")
    }

    fn pending_bytes_for(&self, base: Offset) -> u64 {
        self.pending.iter().filter(|write| write.segment_base == base).map(|write| write.data.len() as u64).sum()
    }

    /// Bytes waiting for the next commit.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }
}

fn write_file_synced(fs: &mut dyn FileSystem, path: &Path, bytes: &[u8]) -> Result<()> {
    let file = fs.open(path, OpenOptions::REPLACE).map_err(io_error(path))?;
    file.write_all_at(bytes, 0).map_err(io_error(path))?;
    file.sync_data().map_err(io_error(path))
}

fn remove_segment_files(fs: &mut dyn FileSystem, dir: &Path, base: Offset) -> Result<()> {
    remove_if_present(fs, &segment::path(dir, base, LOG_SUFFIX))?;
    remove_index_files(fs, dir, base)
}

fn remove_index_files(fs: &mut dyn FileSystem, dir: &Path, base: Offset) -> Result<()> {
    for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
        remove_if_present(fs, &segment::path(dir, base, suffix))?;
    }
    Ok(())
}

fn remove_if_present(fs: &mut dyn FileSystem, path: &Path) -> Result<()> {
    match fs.remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(EngineError::from_io(path, error)),
    }
}
