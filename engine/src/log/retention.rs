//! Removing data from a log: retention by time and size (its segment files kept for reuse by
//! later rolls), moving the log start offset up (DeleteRecords), truncation to an offset and a
//! full reset to a new start offset (followers), clean close and deletion.
//!
//! Must not know: which segments readers still use, beyond holding their files open.

use std::path::Path;

use super::{io_error, remove_if_present, remove_index_files, remove_segment_files, Log, RecycledFile};
use crate::checkpoint::{self, Checkpoint};
use crate::config::WriteMode;
use crate::error::{EngineError, Result};
use crate::io::{FileRef, FileSystem, OpenOptions};
use crate::limits::RECYCLED_SEGMENT_IDLE_MS_MAX;
use crate::segment::{self, Segment, LOG_SUFFIX, RECYCLED_SUFFIX};
use crate::types::Offset;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
    pub log_start_offset: Offset,
}

impl Log {
    /// Deletes whole, non-active segments past `retention.ms` (by their max timestamp) or beyond
    /// `retention.bytes`, oldest first, and those wholly below the log start offset (moved there
    /// by [`Log::advance_log_start`]), and advances the log start offset.
    pub fn enforce_retention(&mut self, fs: &mut dyn FileSystem, now_ms: i64) -> Result<RetentionReport> {
        let idle_before = now_ms.saturating_sub(RECYCLED_SEGMENT_IDLE_MS_MAX);
        while let Some(index) = self.recycled.iter().position(|file| file.since_ms < idle_before) {
            let file = self.recycled.remove(index);
            self.unlink_recycled(fs, &file.path);
        }
        let mut total_bytes = self.size_bytes();
        let mut delete_count = 0;
        let mut deleted_bytes = 0;
        for (index, segment) in self.segments[..self.segments.len() - 1].iter().enumerate() {
            if !self.deletable(segment.base) {
                break;
            }
            let expired = self.config.retention_ms >= 0
                && segment.max_timestamp < now_ms.saturating_sub(self.config.retention_ms);
            let oversized = self.config.retention_bytes >= 0
                && total_bytes - segment.size_bytes >= self.config.retention_bytes as u64;
            let below_start = self.segments[index + 1].base <= self.log_start_offset;
            if !(expired || oversized || below_start) {
                break;
            }
            delete_count += 1;
            total_bytes -= segment.size_bytes;
            deleted_bytes += segment.size_bytes;
        }
        self.delete_first_segments(fs, delete_count, now_ms)?;
        Ok(RetentionReport { deleted_segments: delete_count, deleted_bytes, log_start_offset: self.log_start_offset })
    }

    /// Moves the log start offset up to `offset` (Kafka's DeleteRecords; a follower taking its
    /// leader's log start): reads below it are refused from now on, and the segments wholly
    /// below it are deleted now, or by the next retention pass if bytes of theirs are still in
    /// flight. Returns the log start, which never goes back (an `offset` at or below it changes
    /// nothing). An `offset` past the committed end is refused.
    ///
    /// The checkpoint naming the new start is synced before this returns: a crash after it
    /// reopens at the new start (recovery deletes what lies wholly below it, and a log whose
    /// unsynced tail the crash cut below it starts again, empty, there).
    pub fn advance_log_start(&mut self, fs: &mut dyn FileSystem, offset: Offset, now_ms: i64) -> Result<Offset> {
        if offset > self.committed_offset {
            return Err(EngineError::OffsetOutOfRange {
                requested: offset,
                log_start: self.log_start_offset,
                log_end: self.committed_offset,
            });
        }
        if offset <= self.log_start_offset {
            return Ok(self.log_start_offset);
        }
        self.refuse_if_failed()?;
        let previous_start = self.log_start_offset;
        self.log_start_offset = offset;
        if let Err(error) = self.write_checkpoint(fs, false) {
            self.log_start_offset = previous_start;
            return Err(error);
        }
        let delete_count = (0..self.segments.len() - 1)
            .take_while(|&index| {
                self.deletable(self.segments[index].base) && self.segments[index + 1].base <= self.log_start_offset
            })
            .count();
        self.delete_first_segments(fs, delete_count, now_ms)?;
        Ok(self.log_start_offset)
    }

    /// Whether a segment holds no bytes pending or in flight (only then may it be deleted).
    fn deletable(&self, base: Offset) -> bool {
        let in_flight = self.committing.as_ref().is_some_and(|bases| bases.contains(&base));
        !in_flight && !self.pending.iter().any(|write| write.segment_base == base)
    }

    /// Deletes the first `delete_count` segments (never the active one), the log start moving to
    /// at least the next segment's base.
    fn delete_first_segments(&mut self, fs: &mut dyn FileSystem, delete_count: usize, now_ms: i64) -> Result<()> {
        if delete_count == 0 {
            return Ok(());
        }
        assert!(delete_count < self.segments.len(), "the active segment is never deleted");
        let new_start = self.segments[delete_count].base;
        let previous_start = self.log_start_offset;
        self.log_start_offset = previous_start.max(new_start);
        // The checkpoint goes first: a crash after it finishes the deletion on open. If it
        // cannot be written, nothing changed.
        if self.log_start_offset != previous_start {
            if let Err(error) = self.write_checkpoint(fs, false) {
                self.log_start_offset = previous_start;
                return Err(error);
            }
        }
        // The segments are gone from the log either way (the checkpoint says so): each file is
        // retired, the first failure reported after the rest were tried.
        let removed: Vec<Segment> = self.segments.drain(..delete_count).collect();
        let mut first_error = None;
        for segment in removed {
            if let Err(error) = self.retire(fs, segment, now_ms) {
                first_error.get_or_insert(error);
            }
        }
        self.cache.drop_segments_before(new_start);
        fs.sync_dir(&self.dir).map_err(io_error(&self.dir))?;
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Removes a segment retention deleted: its file waits for a later roll when there is room
    /// and nobody else holds it open (a reader's file range must keep its bytes), else it goes.
    fn retire(&mut self, fs: &mut dyn FileSystem, segment: Segment, now_ms: i64) -> Result<()> {
        let reusable = self.recycled.len() < self.recycled_max && std::sync::Arc::strong_count(&segment.file) == 1;
        let base = segment.base;
        drop(segment);
        if !reusable {
            return remove_segment_files(fs, &self.dir, base);
        }
        // Index files first: a crash after the rename must not leave them behind, as open cleans
        // up by `.log` names (a `.log` below the log start offset goes with its indexes).
        remove_index_files(fs, &self.dir, base)?;
        let from = segment::path(&self.dir, base, LOG_SUFFIX);
        let to = segment::path(&self.dir, base, RECYCLED_SUFFIX);
        if let Err(error) = fs.rename(&from, &to) {
            let _ = fs.remove_file(&from);
            return Err(EngineError::from_io(&from, error));
        }
        self.recycled.push(RecycledFile { path: to, since_ms: now_ms });
        Ok(())
    }

    /// Unlinks the recycled files (clean shutdown, topic deletion).
    fn drop_recycled(&mut self, fs: &mut dyn FileSystem) {
        for file in std::mem::take(&mut self.recycled) {
            self.unlink_recycled(fs, &file.path);
        }
    }

    /// A recycled file holds no data: failing to unlink it stops nothing (the next open deletes
    /// leftovers), it is only worth a warning.
    fn unlink_recycled(&self, fs: &mut dyn FileSystem, path: &Path) {
        if let Err(error) = remove_if_present(fs, path) {
            tracing::warn!(%error, dir = %self.dir.display(), "a recycled segment file could not be removed");
        }
    }

    /// Removes every batch from the one containing `offset` onwards (Kafka's truncateTo, used by
    /// followers). The log end becomes that batch's base offset. Needs no pending appends.
    pub fn truncate_to(&mut self, fs: &mut dyn FileSystem, offset: Offset) -> Result<Offset> {
        if !self.pending.is_empty() || self.committing.is_some() {
            return Err(EngineError::InvalidInput("truncate_to with appends pending; commit first".into()));
        }
        if offset >= self.committed_offset {
            return Ok(self.committed_offset);
        }
        if offset < self.log_start_offset {
            return Err(EngineError::OffsetOutOfRange {
                requested: offset,
                log_start: self.log_start_offset,
                log_end: self.committed_offset,
            });
        }
        let index = self.segment_index_for(offset);
        let (position, new_end) = match self.locate(&self.segments[index], offset)? {
            Some((position, prefix)) => (position, Offset(prefix.base_offset)),
            None => (self.segments[index].size_bytes, self.segments[index].next_offset),
        };
        for later in self.segments.drain(index + 1..).collect::<Vec<_>>() {
            remove_segment_files(fs, &self.dir, later.base)?;
        }
        // The segment becomes active again: its index files go, so that no checkpoint (even a
        // stale one) can make recovery trust them.
        let base = self.segments[index].base;
        remove_index_files(fs, &self.dir, base)?;
        fs.sync_dir(&self.dir).map_err(io_error(&self.dir))?;
        let segment = &mut self.segments[index];
        let path = segment.file.path().to_path_buf();
        segment.file.set_len(position).map_err(io_error(&path))?;
        // From here the file is cut: memory follows it before anything else can fail.
        segment.size_bytes = position;
        segment.next_offset = new_end.max(segment.base);
        segment.offset_index.truncate_to_position(position as u32);
        let relative_end = segment.relative(segment.next_offset);
        segment.time_index.truncate_to_offset(relative_end);
        segment.max_timestamp = segment.time_index.last().map_or(i64::MIN, |(timestamp, _)| timestamp);
        segment.bytes_since_index_entry =
            position - u64::from(segment.offset_index.last().map_or(0, |(_, entry)| entry));
        if self.write_mode == WriteMode::Direct {
            segment.load_tail_block().map_err(io_error(&path))?;
        }
        self.cache.truncate(base, position);
        self.next_offset = new_end;
        self.committed_offset = new_end;
        self.durable_offset = self.durable_offset.min(new_end);
        // A log start moved into the cut batch goes back to where the log now ends, as Kafka's
        // truncateTo lowers it (a start past the end would leave nothing to read or append to).
        self.log_start_offset = self.log_start_offset.min(new_end);
        self.recovery_offset = self.recovery_offset.min(base);
        let segment_file = self.segments[index].file.clone();
        segment_file.sync_data().map_err(io_error(segment_file.path()))?;
        // The truncation is durable now; a failed checkpoint write is retried by the next
        // seal, retention or close, and no stale checkpoint can vouch for the cut segment.
        if let Err(error) = self.write_checkpoint(fs, false) {
            tracing::warn!(%error, dir = %self.dir.display(), "checkpoint after truncation not written");
        }
        Ok(new_end)
    }

    /// Removes every segment and starts the log again, empty, at `offset`: log start = log end
    /// = `offset` (Kafka's `truncateFullyAndStartAt`, for a follower behind the leader's log
    /// start or whose divergence lies below its own). Needs no pending appends.
    ///
    /// The steps keep every crash point recoverable:
    /// ```text
    ///   step                                        a crash after it reopens as
    ///   1. each segment removed, newest first,      a prefix of the old log (as after a
    ///      directory synced after each                truncation); no segment: empty at the
    ///                                                 old log start
    ///   2. checkpoint: log start = recovery         no segment: empty at `offset`
    ///      offset = `offset`
    ///   3. empty segment file `offset` created      the reset log
    /// ```
    /// A failure on the way leaves memory describing files that are gone: the log then refuses
    /// appends (its files stay readable while open) and must be reopened, which recovers one of
    /// the states above.
    pub fn reset_to(&mut self, fs: &mut dyn FileSystem, offset: Offset, now_ms: i64) -> Result<()> {
        if !self.pending.is_empty() || self.committing.is_some() {
            return Err(EngineError::InvalidInput("reset_to with appends pending; commit first".into()));
        }
        self.refuse_if_failed()?;
        // Recycled files may hold batches above a lower new start: they must not become segments.
        self.drop_recycled(fs);
        let outcome = self.reset_files(fs, offset);
        let file = match outcome {
            Ok(file) => file,
            Err(error) => {
                self.failed = Some(format!("reset to offset {offset} failed half-way: {error}"));
                return Err(error);
            }
        };
        // From here the disk holds the reset log: memory follows it.
        let mut segment = Segment::new(offset, file, now_ms);
        if self.write_mode == WriteMode::Direct {
            segment.load_tail_block().map_err(io_error(&segment::path(&self.dir, offset, LOG_SUFFIX)))?;
        }
        self.segments = vec![segment];
        self.log_start_offset = offset;
        self.durable_offset = offset;
        self.committed_offset = offset;
        self.next_offset = offset;
        self.recovery_offset = offset;
        self.unflushed_messages = 0;
        self.seal_when_committed.clear();
        self.cache.clear();
        Ok(())
    }

    /// The file steps of [`Log::reset_to`]; returns the new, empty segment file.
    fn reset_files(&mut self, fs: &mut dyn FileSystem, offset: Offset) -> Result<FileRef> {
        for segment in self.segments.iter().rev() {
            // Index files first: a `.log` left by a crash takes its indexes with it on open,
            // index files left alone would wait for a segment with their name.
            remove_index_files(fs, &self.dir, segment.base)?;
            remove_if_present(fs, &segment::path(&self.dir, segment.base, LOG_SUFFIX))?;
            fs.sync_dir(&self.dir).map_err(io_error(&self.dir))?;
        }
        let checkpoint =
            Checkpoint { log_start_offset: offset, recovery_offset: offset, clean: false, recycled: false };
        self.store_checkpoint(fs, &checkpoint)?;
        let path = segment::path(&self.dir, offset, LOG_SUFFIX);
        let direct = self.write_mode == WriteMode::Direct;
        let file = fs.open(&path, OpenOptions { direct, ..OpenOptions::REPLACE }).map_err(io_error(&path))?;
        fs.sync_dir(&self.dir).map_err(io_error(&self.dir))?;
        Ok(file)
    }

    /// Clean shutdown: exact file length, active segment's indexes written, everything synced,
    /// checkpoint marked clean so the next open scans nothing.
    pub fn close(&mut self, fs: &mut dyn FileSystem) -> Result<()> {
        if !self.pending.is_empty() || self.committing.is_some() {
            return Err(EngineError::InvalidInput("close with appends pending; commit first".into()));
        }
        let index = self.segments.len() - 1;
        self.seal(fs, index)?;
        self.drop_recycled(fs);
        self.durable_offset = self.committed_offset;
        self.write_checkpoint(fs, true)
    }

    /// Removes the log's files and directory contents (topic deletion).
    pub fn delete(mut self, fs: &mut dyn FileSystem) -> Result<()> {
        self.drop_recycled(fs);
        for segment in &self.segments {
            remove_segment_files(fs, &self.dir, segment.base)?;
        }
        let _ = fs.remove_file(&self.dir.join(checkpoint::FILE_NAME));
        fs.sync_dir(&self.dir).map_err(io_error(&self.dir))
    }
}
