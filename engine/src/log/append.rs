//! Appending to a log: validation (unless done before), codec conversion, offset assignment,
//! queueing for the next commit, and rolling to a new segment. All or nothing per append.
//!
//! Two modes share one path ([`Assign`]): a leader's append assigns offsets and its leader epoch
//! and may convert the codec; a follower's ([`Log::append_replicated`]) stores the leader's
//! batches byte for byte (their offsets, epochs and CRC untouched) after checking that they
//! continue the log. Rolling, `batch_bytes_max`, indexes and the pending queue are the same.
//!
//! Must not know: how the queued bytes reach the disk ([`super::commit`]).

use super::{io_error, remove_segment_files, Log, PendingBatch, PendingWrite};
use crate::batch::{self, ValidatedBatches};
use crate::compression;
use crate::config::{CompressionType, TimestampType, WriteMode};
use crate::error::{EngineError, Result};
use crate::io::{FileSystem, OpenOptions};
use crate::limits::PENDING_WRITE_RESERVE_BYTES_MAX;
use crate::segment::{self, Segment, LOG_SUFFIX};
use crate::types::{LeaderEpoch, Offset};

/// The offsets and size of one accepted append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: Offset,
    pub last_offset: Offset,
    pub max_timestamp: i64,
    /// Bytes as stored (after any codec conversion).
    pub stored_bytes: usize,
    pub batch_count: usize,
}

/// Who decides a batch's offsets and leader epoch.
#[derive(Clone, Copy, Debug)]
enum Assign {
    /// The leader: offsets from the log's next offset, this epoch stamped in, codec converted if
    /// the log asks for it.
    Leader { leader_epoch: LeaderEpoch },
    /// A follower: the batches carry the leader's offsets and epochs and are stored unchanged.
    Replicated,
}

impl Log {
    /// Validates `batches` (one or more v2 batches back to back: layout and CRC), then appends
    /// them as [`Log::append_validated`] does. For callers without a [`ValidatedBatches`] (tests,
    /// benchmarks, the broker's own logs).
    pub fn append(
        &mut self,
        fs: &mut dyn FileSystem,
        batches: &[u8],
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.refuse_if_failed()?;
        let headers = batch::validate_all(batches)?;
        self.append_checked(fs, batches, headers.iter(), Assign::Leader { leader_epoch }, now_ms)
    }

    /// Appends batches validated before (not checked again): converts the codec if the log asks
    /// for it, assigns offsets and queues the bytes for the next commit. All or nothing.
    pub fn append_validated(
        &mut self,
        fs: &mut dyn FileSystem,
        batches: &ValidatedBatches,
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.refuse_if_failed()?;
        self.append_checked(fs, batches.bytes(), batches.headers(), Assign::Leader { leader_epoch }, now_ms)
    }

    /// Appends a leader's batches as a follower: byte for byte, with the base offsets and
    /// partition leader epochs they carry (never re-encoded, never re-stamped). The first batch
    /// must start at [`Log::next_offset`] and each next one right after the one before, else
    /// [`EngineError::NotContiguous`] and nothing is appended. All or nothing.
    pub fn append_replicated(
        &mut self,
        fs: &mut dyn FileSystem,
        batches: &ValidatedBatches,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.refuse_if_failed()?;
        self.append_checked(fs, batches.bytes(), batches.headers(), Assign::Replicated, now_ms)
    }

    /// A log whose failed commit could not be rolled back takes no appends.
    pub(super) fn refuse_if_failed(&self) -> Result<()> {
        match &self.failed {
            Some(reason) => {
                Err(EngineError::Io { path: self.dir.clone(), source: std::io::Error::other(reason.clone()) })
            }
            None => Ok(()),
        }
    }

    /// The append itself, for `batches` whose `headers` (in order, covering every byte) came from
    /// validation: enforces `batch_bytes_max` (and, for replicated batches, contiguity), converts
    /// the codec, assigns offsets, queues.
    fn append_checked<'a>(
        &mut self,
        fs: &mut dyn FileSystem,
        batches: &[u8],
        headers: impl ExactSizeIterator<Item = &'a batch::BatchHeader> + Clone,
        assign: Assign,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        let mut expected = self.next_offset;
        // A producer's batch: this log's own limit (`max.message.bytes`). A replicated one: the
        // leader took it, so only the engine's hard limit applies (a follower never refuses what
        // its leader's log holds, whatever limit it was written under).
        let limit_bytes = match assign {
            Assign::Replicated => self.batch_bytes_max.max(crate::limits::BATCH_BYTES_MAX),
            _ => self.config.batch_bytes_max.unwrap_or(self.batch_bytes_max),
        };
        for header in headers.clone() {
            if header.size_bytes > limit_bytes {
                return Err(EngineError::BatchTooLarge { size_bytes: header.size_bytes, limit_bytes });
            }
            if let Assign::Replicated = assign {
                // Checked before anything is queued: the bytes come from the network.
                if header.base_offset != expected.0 {
                    return Err(EngineError::NotContiguous { expected, found: Offset(header.base_offset) });
                }
                expected = Offset(header.last_offset()).next();
            }
        }
        // Snapshot for all-or-nothing: a failed roll undoes the batches queued before it.
        let snapshot = (
            self.next_offset,
            self.pending.len(),
            self.pending.last().map(|w| (w.data.len(), w.batches.len(), w.seal_after)),
            self.segments.len(),
        );
        let mut at = 0;
        let mut info = AppendInfo {
            base_offset: self.next_offset,
            last_offset: self.next_offset,
            max_timestamp: i64::MIN,
            stored_bytes: 0,
            batch_count: headers.len(),
        };
        for header in headers {
            let original = &batches[at..at + header.size_bytes];
            at += header.size_bytes;
            // A replicated batch is stored as the leader wrote it, whatever this log's codec.
            let converted = match (assign, self.config.compression) {
                (Assign::Leader { .. }, CompressionType::Producer) | (Assign::Replicated, _) => Ok(None),
                (Assign::Leader { .. }, target) => compression::convert(original, header, target),
            };
            // A converted batch may be larger than the one that arrived (decompressed, or
            // incompressible data framed again): the limit holds for what is stored, as Kafka
            // checks a recompressed batch again (RECORD_TOO_LARGE / MESSAGE_TOO_LARGE).
            let converted = converted.map_err(EngineError::from).and_then(|converted| match converted {
                Some(bytes) if bytes.len() > limit_bytes => {
                    Err(EngineError::BatchTooLarge { size_bytes: bytes.len(), limit_bytes })
                }
                converted => Ok(converted),
            });
            let queued = converted.and_then(|converted| {
                let bytes: &[u8] = converted.as_deref().unwrap_or(original);
                self.queue_batch(fs, bytes, header, assign, now_ms).map(|()| bytes.len())
            });
            let stored_bytes = match queued {
                Ok(stored_bytes) => stored_bytes,
                Err(error) => {
                    self.undo_appends(fs, snapshot);
                    return Err(error);
                }
            };
            info.stored_bytes += stored_bytes;
            let max_timestamp = match (assign, self.config.timestamp_type) {
                (Assign::Leader { .. }, TimestampType::LogAppendTime) => now_ms,
                _ => header.max_timestamp,
            };
            info.max_timestamp = info.max_timestamp.max(max_timestamp);
        }
        assert_eq!(at, batches.len(), "validated headers cover every byte");
        info.last_offset = Offset(self.next_offset.0 - 1);
        self.pending_bytes += info.stored_bytes;
        Ok(info)
    }

    fn queue_batch(
        &mut self,
        fs: &mut dyn FileSystem,
        bytes: &[u8],
        header: &batch::BatchHeader,
        assign: Assign,
        now_ms: i64,
    ) -> Result<()> {
        let base_offset = self.next_offset;
        debug_assert!(
            matches!(assign, Assign::Leader { .. }) || header.base_offset == base_offset.0,
            "append_checked checked contiguity"
        );
        let last_offset = base_offset.plus(u64::from(header.last_offset_delta));
        let active = self.active();
        let active_bytes = active.size_bytes + self.pending_bytes_for(active.base);
        let too_big = active_bytes + bytes.len() as u64 > self.config.segment_bytes;
        let roll_after_ms = self.config.segment_ms - self.config.roll_jitter_ms(active.base.0);
        let too_old = now_ms - active.created_ms >= roll_after_ms;
        let offsets_overflow = last_offset.0 - active.base.0 > u64::from(u32::MAX);
        // Kafka rolls when either index is full. The indexes count committed batches only, so
        // one group commit may take a segment a few entries past the bound.
        let index_full = active.offset_index.len() as u64
            >= self.config.index_bytes_max / crate::index::OFFSET_ENTRY_BYTES as u64
            || active.time_index.len() as u64 >= self.config.index_bytes_max / crate::index::TIME_ENTRY_BYTES as u64;
        if active_bytes > 0 && (too_big || too_old || offsets_overflow || index_full) {
            self.roll(fs, now_ms)?;
        }
        let active_base = self.active().base;
        if self.pending.last().is_none_or(|write| write.segment_base != active_base) {
            self.pending.push(PendingWrite {
                segment_base: active_base,
                // The last commit's size, at most the reserve cap, and never less than this batch
                // (which may itself be larger than the cap: up to `BATCH_BYTES_MAX`).
                data: Vec::with_capacity(self.write_bytes_hint.min(PENDING_WRITE_RESERVE_BYTES_MAX).max(bytes.len())),
                batches: Vec::new(),
                seal_after: false,
            });
        }
        let write = self.pending.last_mut().expect("just ensured");
        let relative_position = write.data.len() as u64;
        write.data.extend_from_slice(bytes);
        let mut max_timestamp = header.max_timestamp;
        if let Assign::Leader { leader_epoch } = assign {
            let stored = &mut write.data[relative_position as usize..];
            batch::assign(stored, base_offset.0, leader_epoch.0);
            if self.config.timestamp_type == TimestampType::LogAppendTime {
                batch::set_log_append_time(stored, now_ms);
                max_timestamp = now_ms;
            }
        }
        write.batches.push(PendingBatch {
            relative_position,
            base_offset,
            last_offset,
            max_timestamp,
            size_bytes: bytes.len() as u64,
        });
        self.next_offset = last_offset.next();
        Ok(())
    }

    /// Starts a new active segment at `next_offset`. The old one is sealed once its pending
    /// bytes are durable (or now, if it has none).
    fn roll(&mut self, fs: &mut dyn FileSystem, now_ms: i64) -> Result<()> {
        let base = self.next_offset;
        let path = segment::path(&self.dir, base, LOG_SUFFIX);
        let direct = self.write_mode == WriteMode::Direct;
        // A recycled file keeps its stale bytes until they are overwritten; the segment's size
        // (memory) says what is data, and recovery's scan stops at the first stale batch.
        let (file, recycled) = match self.recycled.pop() {
            Some(recycled) => {
                fs.rename(&recycled.path, &path).map_err(io_error(&path))?;
                let opened = fs
                    .open(&path, OpenOptions { direct, ..OpenOptions::EXISTING })
                    .and_then(|file| fs.sync_dir(&self.dir).map(|()| file));
                match opened {
                    Ok(file) => (file, true),
                    Err(error) => {
                        // No file of stale bytes may stay under a segment name nobody tracks.
                        let _ = fs.remove_file(&path);
                        let _ = fs.sync_dir(&self.dir);
                        return Err(EngineError::from_io(&path, error));
                    }
                }
            }
            None => {
                let file = fs.open(&path, OpenOptions { direct, ..OpenOptions::REPLACE }).map_err(io_error(&path))?;
                fs.sync_dir(&self.dir).map_err(io_error(&self.dir))?;
                (file, false)
            }
        };
        let old_base = self.active().base;
        let old_index = self.segments.len() - 1;
        let seal_now = match self.pending.last_mut() {
            Some(write) if write.segment_base == old_base => {
                write.seal_after = true;
                false
            }
            // The old segment's last bytes are in flight: seal it once they landed.
            _ if self.committing.as_ref().is_some_and(|bases| bases.contains(&old_base)) => {
                self.seal_when_committed.push(old_base);
                false
            }
            // Everything of the old segment is committed already.
            _ => true,
        };
        let mut segment = Segment::new(base, file, now_ms);
        segment.recycled = recycled;
        self.segments.push(segment);
        if seal_now {
            self.seal(fs, old_index)?;
        }
        Ok(())
    }

    fn undo_appends(
        &mut self,
        fs: &mut dyn FileSystem,
        snapshot: (Offset, usize, Option<(usize, usize, bool)>, usize),
    ) {
        let (next_offset, pending_count, last_write, segment_count) = snapshot;
        self.next_offset = next_offset;
        self.pending.truncate(pending_count);
        if let (Some(write), Some((data_length, batch_count, seal_after))) = (self.pending.last_mut(), last_write) {
            write.data.truncate(data_length);
            write.batches.truncate(batch_count);
            write.seal_after = seal_after;
        }
        while self.segments.len() > segment_count {
            let segment = self.segments.pop().expect("longer than before");
            let _ = remove_segment_files(fs, &self.dir, segment.base);
        }
    }
}
