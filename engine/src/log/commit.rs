//! A log's part of the group commit: [`Log::prepare_commit`] hands the pending bytes out,
//! [`Log::finish_commit`] applies the outcome (readable and durable, or rolled back), and sealing
//! makes a finished segment self-describing (exact length, index files, checkpoint).
//!
//! Must not know: how the shard submits the writes or to which backend.

use std::ops::Range;

use bytes::Bytes;

use super::{io_error, remove_segment_files, write_file_synced, Log, PendingBatch};
use crate::checkpoint::{self, Checkpoint};
use crate::config::{FlushPolicy, WriteMode};
use crate::error::{EngineError, Result};
use crate::io::aligned::{align_down, AlignedBuffer};
use crate::io::{FileRef, FileSystem, IoBuf, OwnedWrite, WriteChain};
use crate::segment::{self, INDEX_SUFFIX, TIME_INDEX_SUFFIX};
use crate::types::Offset;

/// What the shard writes for this log in one group commit.
#[derive(Debug)]
pub struct PreparedWrite {
    pub file: FileRef,
    pub position: u64,
    /// What goes to the file (an aligned copy in direct mode); taken by [`PreparedCommit::chains`].
    buffer: Option<IoBuf>,
    segment_base: Offset,
    data: Bytes,
    data_position: u64,
    batches: Vec<PendingBatch>,
    pub seal_after: bool,
}

#[derive(Debug)]
pub struct PreparedCommit {
    pub writes: Vec<PreparedWrite>,
    /// A file to sync although nothing is written to it (interval flush of written data).
    pub sync_only: Option<FileRef>,
    pub sync: bool,
    messages: u64,
    next_offset: Offset,
}

impl PreparedCommit {
    /// The I/O of this commit, one chain per file, each synced if the commit syncs or seals the
    /// file. Moves the write buffers out (call once); the chains own them while in flight.
    pub fn chains(&mut self) -> Vec<WriteChain> {
        let mut chains = Vec::with_capacity(self.writes.len() + 1);
        for write in &mut self.writes {
            let buffer = write.buffer.take().expect("chains are taken once");
            let sync = self.sync || write.seal_after;
            chains.push(WriteChain::new(write.file.clone(), vec![OwnedWrite::new(write.position, buffer)], sync));
        }
        if let Some(file) = &self.sync_only {
            chains.push(WriteChain::new(file.clone(), Vec::new(), true));
        }
        chains
    }

    /// The offset the log's committed end moves to when this commit succeeds.
    pub fn next_offset(&self) -> Offset {
        self.next_offset
    }
}

impl Log {
    /// Takes the pending bytes out for a group commit and decides whether this commit syncs.
    /// `None` when there is nothing to write or sync, or a commit is in flight already.
    pub fn prepare_commit(&mut self, now_ms: i64) -> Option<PreparedCommit> {
        if self.committing.is_some() {
            return None;
        }
        let messages: u64 = self
            .pending
            .iter()
            .flat_map(|write| &write.batches)
            .map(|batch| batch.last_offset.0 - batch.base_offset.0 + 1)
            .sum();
        let sync = match self.config.flush_policy {
            FlushPolicy::FsyncBeforeAck => true,
            FlushPolicy::Interval { flush_messages, flush_ms } => {
                let unflushed = self.unflushed_messages + messages;
                unflushed > 0 && (unflushed >= flush_messages || now_ms - self.last_flush_ms >= flush_ms)
            }
        };
        if self.pending.is_empty() {
            if sync && self.durable_offset < self.committed_offset {
                let file = self.active().file.clone();
                self.committing = Some(Vec::new());
                return Some(PreparedCommit {
                    writes: Vec::new(),
                    sync_only: Some(file),
                    sync: true,
                    messages: 0,
                    next_offset: self.committed_offset,
                });
            }
            return None;
        }
        let direct = self.write_mode == WriteMode::Direct;
        let mut writes = Vec::with_capacity(self.pending.len());
        for pending in std::mem::take(&mut self.pending) {
            let segment = self
                .segments
                .iter_mut()
                .find(|segment| segment.base == pending.segment_base)
                .expect("pending write has its segment");
            self.write_bytes_hint = pending.data.len();
            let data = Bytes::from(pending.data);
            let (position, buffer) = if direct {
                let aligned = AlignedBuffer::from_parts(&[&segment.tail_block, &data]);
                let position = align_down(segment.size_bytes);
                (position, IoBuf::Aligned(aligned))
            } else {
                (segment.size_bytes, IoBuf::Shared(data.clone()))
            };
            writes.push(PreparedWrite {
                file: segment.file.clone(),
                position,
                buffer: Some(buffer),
                segment_base: segment.base,
                data,
                data_position: segment.size_bytes,
                batches: pending.batches,
                seal_after: pending.seal_after,
            });
        }
        self.pending_bytes = 0;
        self.committing = Some(writes.iter().map(|write| write.segment_base).collect());
        Some(PreparedCommit { writes, sync_only: None, sync, messages, next_offset: self.next_offset })
    }

    /// Applies a group commit's outcome. On success the bytes become readable (and durable if
    /// the commit synced); on failure they are dropped with every append queued behind them, the
    /// files are cut back, and the offsets they had are returned so the caller can fail those
    /// appends.
    pub fn finish_commit(
        &mut self,
        fs: &mut dyn FileSystem,
        prepared: PreparedCommit,
        outcome: std::result::Result<(), EngineError>,
        now_ms: i64,
        cache_sequence: u64,
    ) -> std::result::Result<Offset, (EngineError, Range<Offset>)> {
        assert!(self.committing.take().is_some(), "finish_commit without a commit in flight");
        if let Err(error) = outcome {
            let lost = self.committed_offset..self.next_offset.max(prepared.next_offset);
            self.seal_when_committed.clear();
            self.rollback(fs, &prepared);
            return Err((error, lost));
        }
        let direct = self.write_mode == WriteMode::Direct;
        for write in prepared.writes {
            let interval = self.config.index_interval_bytes;
            let index = self
                .segments
                .iter()
                .position(|segment| segment.base == write.segment_base)
                .expect("segment of a prepared write");
            let segment = &mut self.segments[index];
            let previous_size = segment.size_bytes;
            for batch in &write.batches {
                segment.record_batch(
                    write.data_position + batch.relative_position,
                    batch.base_offset,
                    batch.last_offset,
                    batch.max_timestamp,
                    batch.size_bytes,
                    interval,
                );
            }
            if direct {
                segment.advance_tail_block(previous_size, &write.data);
            }
            self.cache.push(write.segment_base, write.data_position, write.data, cache_sequence);
            if write.seal_after {
                if let Err(error) = self.seal(fs, index) {
                    // The data is durable; only the index files or checkpoint are missing, and
                    // the next open rebuilds them by scanning.
                    tracing::warn!(%error, dir = %self.dir.display(), "sealing a segment failed; it will be rescanned on open");
                }
            }
        }
        for base in std::mem::take(&mut self.seal_when_committed) {
            let last = self.segments.len() - 1;
            match self.segments.iter().position(|segment| segment.base == base) {
                Some(index) if index < last => {
                    if let Err(error) = self.seal(fs, index) {
                        tracing::warn!(%error, dir = %self.dir.display(), "sealing a segment failed; it will be rescanned on open");
                    }
                }
                _ => {}
            }
        }
        self.committed_offset = prepared.next_offset.max(self.committed_offset);
        if prepared.sync {
            self.durable_offset = self.committed_offset;
            self.unflushed_messages = 0;
            self.last_flush_ms = now_ms;
        } else {
            self.unflushed_messages += prepared.messages;
        }
        Ok(self.committed_offset)
    }

    fn rollback(&mut self, fs: &mut dyn FileSystem, prepared: &PreparedCommit) {
        self.next_offset = self.committed_offset;
        self.pending.clear();
        self.pending_bytes = 0;
        // Segments rolled to by the failed appends hold nothing committed: remove them, so the
        // active segment is again the one the committed end lies in.
        while self.segments.len() > 1 && self.active().base > self.committed_offset {
            let segment = self.segments.pop().expect("more than one");
            if let Err(error) = remove_segment_files(fs, &self.dir, segment.base) {
                tracing::warn!(%error, "could not remove an empty segment after a failed commit");
            }
        }
        for write in &prepared.writes {
            let Some(segment) = self.segments.iter_mut().find(|segment| segment.base == write.segment_base) else {
                continue;
            };
            if let Err(error) = segment.file.set_len(segment.size_bytes) {
                self.failed =
                    Some(format!("could not cut {} back after a failed write: {error}", segment.file.path().display()));
            }
        }
    }

    /// Makes a segment that will receive no more appends self-describing: exact file length,
    /// index files written and synced, recovery checkpoint moved past it.
    pub(super) fn seal(&mut self, fs: &mut dyn FileSystem, index: usize) -> Result<()> {
        let segment = &mut self.segments[index];
        segment.finish_time_index();
        let log_path = segment.file.path().to_path_buf();
        // Direct-mode padding or a recycled file's stale bytes may lie past the data.
        segment.file.set_len(segment.size_bytes).map_err(io_error(&log_path))?;
        segment.file.sync_data().map_err(io_error(&log_path))?;
        segment.recycled = false;
        let (base, offset_bytes, time_bytes) =
            (segment.base, segment.offset_index.encode(), segment.time_index.encode());
        write_file_synced(fs, &segment::path(&self.dir, base, INDEX_SUFFIX), &offset_bytes)?;
        write_file_synced(fs, &segment::path(&self.dir, base, TIME_INDEX_SUFFIX), &time_bytes)?;
        if let Some(next) = self.segments.get(index + 1) {
            self.recovery_offset = self.recovery_offset.max(next.base);
        } else {
            self.recovery_offset = self.recovery_offset.max(self.next_offset);
        }
        self.write_checkpoint(fs, false)
    }

    pub(super) fn write_checkpoint(&mut self, fs: &mut dyn FileSystem, clean: bool) -> Result<()> {
        let recovery_offset = if clean { self.committed_offset } else { self.recovery_offset.min(self.active().base) };
        let recycled = self.segments.iter().any(|segment| segment.base == recovery_offset && segment.recycled);
        let checkpoint = Checkpoint { log_start_offset: self.log_start_offset, recovery_offset, clean, recycled };
        self.store_checkpoint(fs, &checkpoint)
    }

    /// Replaces the checkpoint file atomically (temporary file, rename, directory sync).
    pub(super) fn store_checkpoint(&self, fs: &mut dyn FileSystem, checkpoint: &Checkpoint) -> Result<()> {
        let temp = self.dir.join(checkpoint::TEMP_FILE_NAME);
        write_file_synced(fs, &temp, &checkpoint.encode())?;
        let path = self.dir.join(checkpoint::FILE_NAME);
        fs.rename(&temp, &path).map_err(io_error(&path))?;
        fs.sync_dir(&self.dir).map_err(io_error(&self.dir))
    }
}
