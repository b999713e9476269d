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

use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::batch::{self, ValidatedBatches, PREFIX_BYTES};
use crate::cache::TailCache;
use crate::checkpoint::{self, Checkpoint};
use crate::compression;
use crate::config::{CompressionType, FlushPolicy, LogConfig, ShardConfig, WriteMode};
use crate::error::{EngineError, Result};
use crate::io::aligned::{align_down, AlignedBuffer};
use crate::io::{FileRef, FileSystem, IoBuf, OpenOptions, OwnedWrite, WriteChain};
use crate::limits::{
    BATCH_HEADER_BYTES, FILE_READ_AHEAD_BYTES, PENDING_WRITE_RESERVE_BYTES_MAX, RECYCLED_SEGMENT_IDLE_MS_MAX,
};
use crate::segment::{self, Segment, INDEX_SUFFIX, LOG_SUFFIX, RECYCLED_SUFFIX, TIME_INDEX_SUFFIX};
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

/// Something a reader sends as it is: memory from the tail cache or a range of a segment file.
#[derive(Clone, Debug)]
pub enum ReadChunk {
    Memory(Bytes),
    File { file: FileRef, position: u64, length: u64 },
}

impl ReadChunk {
    pub fn len(&self) -> u64 {
        match self {
            ReadChunk::Memory(bytes) => bytes.len() as u64,
            ReadChunk::File { length, .. } => *length,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the chunk's bytes (tests and non-zero-copy paths).
    pub fn to_vec(&self) -> std::io::Result<Vec<u8>> {
        match self {
            ReadChunk::Memory(bytes) => Ok(bytes.to_vec()),
            ReadChunk::File { file, position, length } => {
                let mut buf = vec![0u8; *length as usize];
                file.read_exact_at(&mut buf, *position)?;
                Ok(buf)
            }
        }
    }
}

/// Whole batches starting with the one that contains the requested offset.
#[derive(Clone, Debug, Default)]
pub struct ReadResult {
    pub chunks: Vec<ReadChunk>,
    pub size_bytes: u64,
    pub log_start_offset: Offset,
    /// The committed end at the time of the read (the "log end offset" a fetch reports).
    pub log_end_offset: Offset,
}

/// What opening a log found and repaired.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    pub dir: PathBuf,
    pub clean_shutdown: bool,
    pub segments_trusted: usize,
    pub segments_scanned: usize,
    /// (file, position where valid data ended, bytes cut off, why)
    pub truncations: Vec<(PathBuf, u64, u64, String)>,
    /// Segments removed because they followed a corruption or lay below the log start offset.
    pub deleted_segments: Vec<PathBuf>,
    /// Zeros cut after the last batch of scanned segments (direct-mode padding, sectors an
    /// unacknowledged write never reached): no data, so not a truncation.
    pub zero_tail_bytes: u64,
    /// Bytes cut after the last valid batch of a segment the checkpoint says was a recycled
    /// file: its old contents (and any unacknowledged write over them), so not a truncation.
    pub recycled_tail_bytes: u64,
    pub log_start_offset: Offset,
    pub log_end_offset: Offset,
}

impl RecoveryReport {
    pub fn truncated_bytes(&self) -> u64 {
        self.truncations.iter().map(|truncation| truncation.2).sum()
    }

    /// Records `cut` bytes cut from `path` after `kept`: a recycled file's old contents, or a
    /// truncation with its reason.
    fn record_cut(&mut self, recycled_tail: bool, path: &Path, kept: u64, cut: u64, why: &str) {
        if recycled_tail {
            self.recycled_tail_bytes += cut;
        } else {
            self.truncations.push((path.to_path_buf(), kept, cut, why.to_string()));
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
    pub log_start_offset: Offset,
}

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
    /// Opens (or creates) the log in `dir`, recovering from whatever state a crash left.
    pub fn open(
        fs: &mut dyn FileSystem,
        dir: &Path,
        config: LogConfig,
        shard: &ShardConfig,
        now_ms: i64,
    ) -> Result<(Log, RecoveryReport)> {
        config.validate()?;
        fs.create_dir_all(dir).map_err(io_error(dir))?;
        let names = fs.list_dir(dir).map_err(io_error(dir))?;
        let mut bases: Vec<Offset> = names.iter().filter_map(|name| segment::parse_log_file_name(name)).collect();
        bases.sort();
        if names.iter().any(|name| name == checkpoint::TEMP_FILE_NAME) {
            let _ = fs.remove_file(&dir.join(checkpoint::TEMP_FILE_NAME));
        }
        for name in names.iter().filter(|name| name.ends_with(RECYCLED_SUFFIX)) {
            remove_if_present(fs, &dir.join(name))?;
        }
        let checkpoint = read_checkpoint(fs, dir)?;
        let mut report = RecoveryReport {
            dir: dir.to_path_buf(),
            clean_shutdown: checkpoint.is_some_and(|c| c.clean),
            ..Default::default()
        };
        let mut log_start_offset = checkpoint.map_or(Offset::ZERO, |c| c.log_start_offset);

        // Segments wholly below the log start offset were being deleted by retention.
        while bases.len() > 1 && bases[1] <= log_start_offset {
            let base = bases.remove(0);
            remove_segment_files(fs, dir, base)?;
            report.deleted_segments.push(segment::path(dir, base, LOG_SUFFIX));
        }

        let direct = shard.write_mode == WriteMode::Direct;
        let mut segments: Vec<Segment> = Vec::with_capacity(bases.len());
        // Positions in `segments` of segments rebuilt by scanning; sealed below so the next open
        // trusts them.
        let mut scanned: Vec<usize> = Vec::new();
        let mut index = 0;
        // Each segment goes through `decide_segment` until it is kept or dropped: first with
        // nothing read, then after its index files were rejected or its bytes scanned. This loop
        // only performs the actions; every choice is made there.
        'segments: while index < bases.len() {
            let base = bases[index];
            let path = segment::path(dir, base, LOG_SUFFIX);
            let next_base = bases.get(index + 1).copied();
            let previous_next_offset = segments.last().map(|previous| previous.next_offset);
            let mut file: Option<FileRef> = None;
            let mut found = Found::NotRead;
            // The valid prefix a scan rebuilt, once `found` is `Scanned`.
            let mut rebuilt: Option<Segment> = None;
            loop {
                let facts = SegmentFacts { base, next_base, previous_next_offset, checkpoint, found: &found };
                let recycled_tail = match decide_segment(&facts) {
                    SegmentAction::DropStray => {
                        remove_segment_files(fs, dir, base)?;
                        fs.sync_dir(dir).map_err(io_error(dir))?;
                        report.deleted_segments.push(path.clone());
                        tracing::warn!(dir = %dir.display(), path = %path.display(), "log recovery removed a segment file inside the previous segment's offsets");
                        break;
                    }
                    SegmentAction::LoadTrusted => {
                        let file = open_once(&mut file, fs, &path, direct)?;
                        match load_trusted(fs, dir, &file, base, next_base, now_ms)? {
                            Some(segment) => {
                                report.segments_trusted += 1;
                                segments.push(segment);
                                break;
                            }
                            None => found = Found::IndexFilesRejected,
                        }
                        continue;
                    }
                    SegmentAction::Scan => {
                        let file = open_once(&mut file, fs, &path, direct)?;
                        report.segments_scanned += 1;
                        scanned.push(segments.len());
                        let outcome = segment::scan(
                            file.clone(),
                            base,
                            now_ms,
                            config.index_interval_bytes,
                            shard.batch_bytes_max,
                        )
                        .map_err(io_error(&path))?;
                        let valid_bytes = outcome.segment.size_bytes;
                        if outcome.zero_tail_bytes > 0 {
                            file.set_len(valid_bytes).map_err(io_error(&path))?;
                            file.sync_data().map_err(io_error(&path))?;
                            report.zero_tail_bytes += outcome.zero_tail_bytes;
                        }
                        // Only a recycled file's tail is read: whether it is old bytes or this
                        // segment's.
                        let claims = recycled_by_checkpoint(checkpoint, base)
                            && claims_segment_offsets(&file, valid_bytes, base);
                        found = Found::Scanned(ScanFacts {
                            problem: outcome.problem,
                            valid_bytes,
                            file_bytes: outcome.file_bytes,
                            next_offset: outcome.segment.next_offset,
                            bytes_after_valid_claim_segment: claims,
                        });
                        rebuilt = Some(outcome.segment);
                        continue;
                    }
                    SegmentAction::Keep => {
                        segments.push(rebuilt.take().expect("kept after a scan"));
                        break;
                    }
                    SegmentAction::CutTail { keep_bytes, cut_bytes, recycled_tail, reason } => {
                        let file = open_once(&mut file, fs, &path, direct)?;
                        file.set_len(keep_bytes).map_err(io_error(&path))?;
                        file.sync_data().map_err(io_error(&path))?;
                        report.record_cut(recycled_tail, &path, keep_bytes, cut_bytes, &reason);
                        segments.push(rebuilt.take().expect("cut after a scan"));
                        break;
                    }
                    SegmentAction::TruncateAndDropLater { keep_bytes, cut_bytes, recycled_tail, reason } => {
                        let file = open_once(&mut file, fs, &path, direct)?;
                        file.set_len(keep_bytes).map_err(io_error(&path))?;
                        file.sync_data().map_err(io_error(&path))?;
                        report.record_cut(recycled_tail, &path, keep_bytes, cut_bytes, &reason);
                        segments.push(rebuilt.take().expect("truncated after a scan"));
                        recycled_tail
                    }
                    SegmentAction::DropSegmentAndLater { cut_bytes, recycled_tail, reason } => {
                        remove_segment_files(fs, dir, base)?;
                        if !recycled_tail {
                            report.deleted_segments.push(path.clone());
                        }
                        report.record_cut(recycled_tail, &path, 0, cut_bytes, &reason);
                        recycled_tail
                    }
                };
                if !recycled_tail {
                    tracing::warn!(dir = %dir.display(), truncation = ?report.truncations.last(), "log recovery truncated a torn or corrupt tail");
                }
                for later in bases.drain(index + 1..) {
                    remove_segment_files(fs, dir, later)?;
                    report.deleted_segments.push(segment::path(dir, later, LOG_SUFFIX));
                }
                fs.sync_dir(dir).map_err(io_error(dir))?;
                break 'segments;
            }
            index += 1;
        }

        if segments.is_empty() {
            let path = segment::path(dir, log_start_offset, LOG_SUFFIX);
            let file = fs.open(&path, OpenOptions { direct, ..OpenOptions::REPLACE }).map_err(io_error(&path))?;
            fs.sync_dir(dir).map_err(io_error(dir))?;
            segments.push(Segment::new(log_start_offset, file, now_ms));
        }
        log_start_offset = log_start_offset.max(segments[0].base);
        let active = segments.last_mut().expect("at least one segment");
        active.created_ms = now_ms;
        if direct {
            let path = segment::path(dir, active.base, LOG_SUFFIX);
            active.load_tail_block().map_err(io_error(&path))?;
        }
        let end = active.next_offset;
        let recovery_offset = active.base;
        report.log_start_offset = log_start_offset;
        report.log_end_offset = end;
        let mut log = Log {
            dir: dir.to_path_buf(),
            config,
            write_mode: shard.write_mode,
            batch_bytes_max: shard.batch_bytes_max,
            segments,
            log_start_offset,
            durable_offset: end,
            committed_offset: end,
            next_offset: end,
            pending: Vec::new(),
            pending_bytes: 0,
            unflushed_messages: 0,
            last_flush_ms: now_ms,
            recovery_offset,
            cache: TailCache::new(shard.tail_cache_bytes),
            failed: None,
            committing: None,
            seal_when_committed: Vec::new(),
            write_bytes_hint: 0,
            recycled: Vec::new(),
            recycled_max: shard.recycled_segments_per_log_max,
        };
        let last = log.segments.len() - 1;
        for index in scanned.into_iter().filter(|index| *index < last) {
            log.seal(fs, index)?;
        }
        // From now on a crash must rescan the active segment.
        log.write_checkpoint(fs, false)?;
        Ok((log, report))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
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

    fn active(&self) -> &Segment {
        self.segments.last().expect("a log always has an active segment")
    }

    fn pending_bytes_for(&self, base: Offset) -> u64 {
        self.pending.iter().filter(|write| write.segment_base == base).map(|write| write.data.len() as u64).sum()
    }

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
        self.append_checked(fs, batches, headers.iter(), leader_epoch, now_ms)
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
        self.append_checked(fs, batches.bytes(), batches.headers(), leader_epoch, now_ms)
    }

    /// A log whose failed commit could not be rolled back takes no appends.
    fn refuse_if_failed(&self) -> Result<()> {
        match &self.failed {
            Some(reason) => {
                Err(EngineError::Io { path: self.dir.clone(), source: std::io::Error::other(reason.clone()) })
            }
            None => Ok(()),
        }
    }

    /// The append itself, for `batches` whose `headers` (in order, covering every byte) came from
    /// validation: enforces `batch_bytes_max`, converts the codec, assigns offsets, queues.
    fn append_checked<'a>(
        &mut self,
        fs: &mut dyn FileSystem,
        batches: &[u8],
        headers: impl ExactSizeIterator<Item = &'a batch::BatchHeader> + Clone,
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        for header in headers.clone() {
            if header.size_bytes > self.batch_bytes_max {
                return Err(EngineError::BatchTooLarge {
                    size_bytes: header.size_bytes,
                    limit_bytes: self.batch_bytes_max,
                });
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
            let converted = match self.config.compression {
                CompressionType::Zstd { level } => compression::zstd_encode(original, header, level),
                CompressionType::Producer => Ok(None),
            };
            let queued = converted.map_err(EngineError::from).and_then(|converted| {
                let bytes: &[u8] = converted.as_deref().unwrap_or(original);
                self.queue_batch(fs, bytes, header, leader_epoch, now_ms).map(|()| bytes.len())
            });
            let stored_bytes = match queued {
                Ok(stored_bytes) => stored_bytes,
                Err(error) => {
                    self.undo_appends(fs, snapshot);
                    return Err(error);
                }
            };
            info.stored_bytes += stored_bytes;
            info.max_timestamp = info.max_timestamp.max(header.max_timestamp);
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
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<()> {
        let base_offset = self.next_offset;
        let last_offset = base_offset.plus(u64::from(header.last_offset_delta));
        let active = self.active();
        let active_bytes = active.size_bytes + self.pending_bytes_for(active.base);
        let too_big = active_bytes + bytes.len() as u64 > self.config.segment_bytes;
        let too_old = now_ms - active.created_ms >= self.config.segment_ms;
        let offsets_overflow = last_offset.0 - active.base.0 > u64::from(u32::MAX);
        if active_bytes > 0 && (too_big || too_old || offsets_overflow) {
            self.roll(fs, now_ms)?;
        }
        let active_base = self.active().base;
        if self.pending.last().is_none_or(|write| write.segment_base != active_base) {
            self.pending.push(PendingWrite {
                segment_base: active_base,
                data: Vec::with_capacity(self.write_bytes_hint.clamp(bytes.len(), PENDING_WRITE_RESERVE_BYTES_MAX)),
                batches: Vec::new(),
                seal_after: false,
            });
        }
        let write = self.pending.last_mut().expect("just ensured");
        let relative_position = write.data.len() as u64;
        write.data.extend_from_slice(bytes);
        batch::assign(&mut write.data[relative_position as usize..], base_offset.0, leader_epoch.0);
        write.batches.push(PendingBatch {
            relative_position,
            base_offset,
            last_offset,
            max_timestamp: header.max_timestamp,
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
            self.cache.push(write.segment_base, write.data_position, write.data);
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
    fn seal(&mut self, fs: &mut dyn FileSystem, index: usize) -> Result<()> {
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

    fn write_checkpoint(&mut self, fs: &mut dyn FileSystem, clean: bool) -> Result<()> {
        let recovery_offset = if clean { self.committed_offset } else { self.recovery_offset.min(self.active().base) };
        let recycled = self.segments.iter().any(|segment| segment.base == recovery_offset && segment.recycled);
        let checkpoint = Checkpoint { log_start_offset: self.log_start_offset, recovery_offset, clean, recycled };
        let temp = self.dir.join(checkpoint::TEMP_FILE_NAME);
        write_file_synced(fs, &temp, &checkpoint.encode())?;
        let path = self.dir.join(checkpoint::FILE_NAME);
        fs.rename(&temp, &path).map_err(io_error(&path))?;
        fs.sync_dir(&self.dir).map_err(io_error(&self.dir))
    }

    /// Reads bytes of one segment at `position` through the tail cache or the file.
    fn read_bytes(&self, segment: &Segment, position: u64, buf: &mut [u8]) -> Result<()> {
        if self.cache.read(segment.base, position, buf) {
            return Ok(());
        }
        segment.file.read_exact_at(buf, position).map_err(io_error(segment.file.path()))
    }

    fn prefix_at(&self, segment: &Segment, position: u64) -> Result<batch::BatchPrefix> {
        let mut raw = [0u8; PREFIX_BYTES];
        self.read_bytes(segment, position, &mut raw)?;
        batch::parse_prefix(&raw).map_err(|error| EngineError::Corruption {
            path: segment.file.path().to_path_buf(),
            detail: format!("at {position}: {error}"),
        })
    }

    /// Position and prefix of the first committed batch in `segment` whose last offset is at or
    /// past `target`; `None` when the segment ends before `target`.
    fn locate(&self, segment: &Segment, target: Offset) -> Result<Option<(u64, batch::BatchPrefix)>> {
        if target >= segment.next_offset {
            return Ok(None);
        }
        let relative = segment.relative(target.max(segment.base));
        let (_, indexed) = segment.offset_index.floor_by_offset(relative);
        let mut position = u64::from(indexed);
        while position < segment.size_bytes {
            let prefix = self.prefix_at(segment, position)?;
            if prefix.last_offset() >= target.0 {
                return Ok(Some((position, prefix)));
            }
            position += prefix.size_bytes as u64;
        }
        Ok(None)
    }

    fn segment_index_for(&self, offset: Offset) -> usize {
        self.segments.partition_point(|segment| segment.base <= offset).saturating_sub(1)
    }

    /// Whole committed batches from the one containing `start`, up to `max_bytes` (but always at
    /// least one batch, as Kafka does), within one segment, and below `upper_bound` if given (the
    /// high watermark, once replication supplies one).
    pub fn read(&self, start: Offset, max_bytes: u64, upper_bound: Option<Offset>) -> Result<ReadResult> {
        let end_offset = upper_bound.map_or(self.committed_offset, |bound| bound.min(self.committed_offset));
        let mut result = ReadResult {
            log_start_offset: self.log_start_offset,
            log_end_offset: self.committed_offset,
            ..Default::default()
        };
        if start < self.log_start_offset || start > self.committed_offset {
            return Err(EngineError::OffsetOutOfRange {
                requested: start,
                log_start: self.log_start_offset,
                log_end: self.committed_offset,
            });
        }
        if start >= end_offset || max_bytes == 0 {
            return Ok(result);
        }
        let mut index = self.segment_index_for(start);
        let (segment, position, first) = loop {
            let segment = &self.segments[index];
            match self.locate(segment, start)? {
                Some((position, prefix)) => break (segment, position, prefix),
                None if index + 1 < self.segments.len() => index += 1,
                None => return Ok(result),
            }
        };
        if first.base_offset >= end_offset.0 {
            return Ok(result);
        }
        // Where this read must stop: the segment's end, or the batch holding `end_offset`.
        let stop = match self.locate(segment, end_offset)? {
            Some((bound_position, _)) => bound_position,
            None => segment.size_bytes,
        };
        if position >= stop {
            return Ok(result);
        }
        let limit = position.saturating_add(max_bytes);
        let mut end = position + first.size_bytes as u64;
        if end < limit && end < stop {
            // Jump close to the limit through the index, then walk whole batches.
            let (_, indexed) =
                segment.offset_index.floor_by_position(u32::try_from(limit.min(stop)).unwrap_or(u32::MAX));
            let mut walk = end.max(u64::from(indexed));
            // An index entry is a batch start; so is `end`. Walk from the later of the two.
            while walk < stop {
                let prefix = self.prefix_at(segment, walk)?;
                let next = walk + prefix.size_bytes as u64;
                if next > limit || next > stop {
                    break;
                }
                walk = next;
            }
            end = end.max(walk);
        }
        assert!(end <= segment.size_bytes, "reads stay within committed bytes");
        result.size_bytes = end - position;
        match self.cache.slices(segment.base, position, end) {
            Some(slices) => result.chunks = slices.into_iter().map(ReadChunk::Memory).collect(),
            None => {
                // A reader of files is usually catching up: have the kernel read this range and
                // what follows into the page cache in large requests, so the next read of the
                // consumer finds it there (Kafka gets the same from its page-cache writes).
                let ahead = (segment.size_bytes - end).min(FILE_READ_AHEAD_BYTES);
                segment.file.prefetch(position, end - position + ahead);
                result.chunks.push(ReadChunk::File { file: segment.file.clone(), position, length: end - position })
            }
        }
        Ok(result)
    }

    /// The first offset whose record timestamp is at least `timestamp_ms`, with that timestamp
    /// (Kafka's ListOffsets by time). For compressed batches other than zstd the answer is the
    /// batch's base offset and max timestamp.
    pub fn offset_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<(Offset, i64)>> {
        for segment in &self.segments {
            if segment.max_timestamp < timestamp_ms || segment.size_bytes == 0 {
                continue;
            }
            let mut position = match segment.time_index.floor_below(timestamp_ms) {
                Some((_, relative)) => {
                    self.locate(segment, segment.base.plus(u64::from(relative)))?.map_or(0, |(position, _)| position)
                }
                None => 0,
            };
            while position < segment.size_bytes {
                let mut header_bytes = [0u8; BATCH_HEADER_BYTES];
                self.read_bytes(segment, position, &mut header_bytes)?;
                let prefix = batch::parse_prefix(&header_bytes).map_err(|error| EngineError::Corruption {
                    path: segment.file.path().to_path_buf(),
                    detail: error.to_string(),
                })?;
                let max_timestamp = i64::from_be_bytes(
                    header_bytes[batch::MAX_TIMESTAMP_AT..batch::MAX_TIMESTAMP_AT + 8].try_into().expect("8 bytes"),
                );
                if max_timestamp >= timestamp_ms {
                    let mut whole = vec![0u8; prefix.size_bytes];
                    self.read_bytes(segment, position, &mut whole)?;
                    let found = batch::validate_one(&whole).ok().and_then(|header| {
                        let (delta, timestamp) = batch::first_record_at_or_after(&whole, &header, timestamp_ms)?;
                        Some((Offset(header.base_offset + u64::from(delta)), timestamp))
                    });
                    return Ok(Some(found.unwrap_or((Offset(prefix.base_offset), max_timestamp))));
                }
                position += prefix.size_bytes as u64;
            }
        }
        Ok(None)
    }

    /// Deletes whole, non-active segments past `retention.ms` (by their max timestamp) or beyond
    /// `retention.bytes`, oldest first, and advances the log start offset.
    pub fn enforce_retention(&mut self, fs: &mut dyn FileSystem, now_ms: i64) -> Result<RetentionReport> {
        let idle_before = now_ms.saturating_sub(RECYCLED_SEGMENT_IDLE_MS_MAX);
        while let Some(index) = self.recycled.iter().position(|file| file.since_ms < idle_before) {
            let file = self.recycled.remove(index);
            self.unlink_recycled(fs, &file.path);
        }
        let mut total_bytes = self.size_bytes();
        let mut delete_count = 0;
        let mut deleted_bytes = 0;
        for segment in &self.segments[..self.segments.len() - 1] {
            let in_flight = self.committing.as_ref().is_some_and(|bases| bases.contains(&segment.base));
            if in_flight || self.pending.iter().any(|write| write.segment_base == segment.base) {
                break;
            }
            let expired = self.config.retention_ms >= 0
                && segment.max_timestamp < now_ms.saturating_sub(self.config.retention_ms);
            let oversized = self.config.retention_bytes >= 0
                && total_bytes - segment.size_bytes >= self.config.retention_bytes as u64;
            if !(expired || oversized) {
                break;
            }
            delete_count += 1;
            total_bytes -= segment.size_bytes;
            deleted_bytes += segment.size_bytes;
        }
        if delete_count > 0 {
            let new_start = self.segments[delete_count].base;
            let previous_start = self.log_start_offset;
            self.log_start_offset = previous_start.max(new_start);
            // The checkpoint goes first: a crash after it finishes the deletion on open. If it
            // cannot be written, nothing changed.
            if let Err(error) = self.write_checkpoint(fs, false) {
                self.log_start_offset = previous_start;
                return Err(error);
            }
            // The segments are gone from the log either way (the checkpoint says so): each file
            // is retired, the first failure reported after the rest were tried.
            let removed: Vec<Segment> = self.segments.drain(..delete_count).collect();
            let mut first_error = None;
            for segment in removed {
                if let Err(error) = self.retire(fs, segment, now_ms) {
                    first_error.get_or_insert(error);
                }
            }
            self.cache.drop_segments_before(new_start);
            fs.sync_dir(&self.dir).map_err(io_error(&self.dir))?;
            if let Some(error) = first_error {
                return Err(error);
            }
        }
        Ok(RetentionReport { deleted_segments: delete_count, deleted_bytes, log_start_offset: self.log_start_offset })
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

    /// Bytes waiting for the next commit.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }
}

/// What recovery knows about one segment file when it decides what to do with it.
#[derive(Clone, Copy, Debug)]
struct SegmentFacts<'a> {
    base: Offset,
    /// Base of the next segment file, if any (before any of them was dropped).
    next_base: Option<Offset>,
    /// One past the last offset of the segment kept before this one; `None` for the first.
    previous_next_offset: Option<Offset>,
    checkpoint: Option<Checkpoint>,
    found: &'a Found,
}

/// How far recovery has looked into a segment.
#[derive(Clone, Debug)]
enum Found {
    /// Nothing read yet.
    NotRead,
    /// The checkpoint vouched for the segment but its index files are missing or do not match.
    IndexFilesRejected,
    Scanned(ScanFacts),
}

/// What a scan of a segment found.
#[derive(Clone, Debug)]
struct ScanFacts {
    /// Why the scan stopped before the end of the file (zeros after the last batch are none).
    problem: Option<String>,
    /// Bytes of whole valid batches from the start, continuing the segment's offsets.
    valid_bytes: u64,
    /// The file's length as found (before any zero tail was cut).
    file_bytes: u64,
    /// One past the last offset of the valid batches.
    next_offset: Offset,
    /// The bytes after the valid ones parse as a batch header with an offset of this segment.
    /// Read only when the checkpoint says the segment is a recycled file (else false).
    bytes_after_valid_claim_segment: bool,
}

/// What recovery does with a segment, decided by [`decide_segment`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum SegmentAction {
    /// Remove the segment's files, keep going with the next one.
    DropStray,
    /// Load the segment from its index files without scanning.
    LoadTrusted,
    /// Scan the segment's batches, then decide again.
    Scan,
    /// Keep the scanned segment as it is.
    Keep,
    /// Cut the bytes after the valid batches, keep the segment and go on with the next one.
    CutTail { keep_bytes: u64, cut_bytes: u64, recycled_tail: bool, reason: String },
    /// Cut the bytes after the valid batches, keep the segment, remove every later segment.
    TruncateAndDropLater { keep_bytes: u64, cut_bytes: u64, recycled_tail: bool, reason: String },
    /// Remove this segment and every later one.
    DropSegmentAndLater { cut_bytes: u64, recycled_tail: bool, reason: String },
}

/// Recovery's decision for one segment: a plain function of what is known about it, so each
/// rule is a row of a table test. `recycled_tail` in an action means the bytes cut are a recycled
/// file's old contents, not damage (reported apart, not as a truncation).
fn decide_segment(facts: &SegmentFacts<'_>) -> SegmentAction {
    let base = facts.base;
    // A segment whose base lies inside the previous segment's offsets is a leftover of a failed
    // roll (the previous one went on growing): drop it alone, keep what follows.
    if facts.previous_next_offset.is_some_and(|previous| previous > base) {
        return SegmentAction::DropStray;
    }
    let scan = match facts.found {
        // A clean shutdown vouches for every segment; otherwise the checkpoint vouches for the
        // segments that end at or below its recovery offset (synced and indexed).
        Found::NotRead => {
            let trusted = facts
                .checkpoint
                .is_some_and(|c| c.clean || facts.next_base.is_some_and(|next| next <= c.recovery_offset));
            return if trusted { SegmentAction::LoadTrusted } else { SegmentAction::Scan };
        }
        Found::IndexFilesRejected => return SegmentAction::Scan,
        Found::Scanned(scan) => scan,
    };
    let contiguous = facts.previous_next_offset.is_none_or(|previous| previous == base);
    // Old bytes past the data of a recycled file are expected, not damage. A batch header at the
    // cut that claims this segment's offsets is not old: a torn write or damage to data of this
    // segment, reported as a truncation.
    let recycled_tail = recycled_by_checkpoint(facts.checkpoint, base) && !scan.bytes_after_valid_claim_segment;
    let reason = match (&scan.problem, contiguous) {
        (Some(problem), _) => problem.clone(),
        (None, false) => "segment does not continue the previous one".to_string(),
        (None, true) => return SegmentAction::Keep,
    };
    let cut_bytes = scan.file_bytes - scan.valid_bytes;
    // A sealed segment whose valid batches end exactly where the next segment begins is
    // complete: what trails it (direct-mode padding whose cut was not yet durable, a torn
    // rewrite) holds no data. Cut it and keep going.
    if contiguous && facts.next_base == Some(scan.next_offset) {
        return SegmentAction::CutTail { keep_bytes: scan.valid_bytes, cut_bytes, recycled_tail, reason };
    }
    // Otherwise the log ends here: nothing after damage can be trusted to continue it.
    let recycled_tail = recycled_tail && contiguous;
    if contiguous && (scan.valid_bytes > 0 || facts.previous_next_offset.is_none()) {
        SegmentAction::TruncateAndDropLater { keep_bytes: scan.valid_bytes, cut_bytes, recycled_tail, reason }
    } else {
        // Nothing valid here (or nothing that continues the log): drop the segment itself, not
        // just its bytes. The first segment is kept even empty, as the log's start.
        SegmentAction::DropSegmentAndLater { cut_bytes: scan.file_bytes, recycled_tail, reason }
    }
}

/// The checkpoint says the segment at `base` was a recycled file when it was written.
fn recycled_by_checkpoint(checkpoint: Option<Checkpoint>, base: Offset) -> bool {
    checkpoint.is_some_and(|c| c.recycled && c.recovery_offset == base)
}

/// The segment file at `path`, opened on first use.
fn open_once(slot: &mut Option<FileRef>, fs: &mut dyn FileSystem, path: &Path, direct: bool) -> Result<FileRef> {
    if slot.is_none() {
        *slot = Some(fs.open(path, OpenOptions { direct, ..OpenOptions::EXISTING }).map_err(io_error(path))?);
    }
    Ok(slot.clone().expect("just opened"))
}

fn read_checkpoint(fs: &mut dyn FileSystem, dir: &Path) -> Result<Option<Checkpoint>> {
    let path = dir.join(checkpoint::FILE_NAME);
    let file = match fs.open(&path, OpenOptions::EXISTING) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(EngineError::from_io(&path, error)),
    };
    let mut bytes = [0u8; checkpoint::SIZE_BYTES];
    if file.len().map_err(io_error(&path))? != checkpoint::SIZE_BYTES as u64 {
        return Ok(None);
    }
    file.read_exact_at(&mut bytes, 0).map_err(io_error(&path))?;
    Ok(Checkpoint::decode(&bytes))
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

/// Whether the bytes at `position` of a segment file parse as a batch header with an offset of
/// the segment starting at `base` (old batches of a recycled file have lower ones).
fn claims_segment_offsets(file: &FileRef, position: u64, base: Offset) -> bool {
    let mut raw = [0u8; PREFIX_BYTES];
    file.read_exact_at(&mut raw, position).is_ok()
        && batch::parse_prefix(&raw).is_ok_and(|prefix| prefix.base_offset >= base.0)
}

fn remove_if_present(fs: &mut dyn FileSystem, path: &Path) -> Result<()> {
    match fs.remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(EngineError::from_io(path, error)),
    }
}

/// Loads a segment the checkpoint vouches for from its index files; `None` if they are missing
/// or do not match the segment (it is then scanned).
fn load_trusted(
    fs: &mut dyn FileSystem,
    dir: &Path,
    file: &FileRef,
    base: Offset,
    next_base: Option<Offset>,
    now_ms: i64,
) -> Result<Option<Segment>> {
    let log_path = segment::path(dir, base, LOG_SUFFIX);
    let size_bytes = file.len().map_err(io_error(&log_path))?;
    let read_all = |fs: &mut dyn FileSystem, suffix: &str| -> Result<Option<Vec<u8>>> {
        let path = segment::path(dir, base, suffix);
        let Ok(index_file) = fs.open(&path, OpenOptions::EXISTING) else { return Ok(None) };
        let length = index_file.len().map_err(io_error(&path))?;
        let mut bytes = vec![0u8; length as usize];
        index_file.read_exact_at(&mut bytes, 0).map_err(io_error(&path))?;
        Ok(Some(bytes))
    };
    let Some(offset_bytes) = read_all(fs, INDEX_SUFFIX)? else { return Ok(None) };
    let Some(time_bytes) = read_all(fs, TIME_INDEX_SUFFIX)? else { return Ok(None) };
    let Some(offset_index) = crate::index::OffsetIndex::decode(&offset_bytes, size_bytes.max(1)) else {
        return Ok(None);
    };
    let mut segment = Segment::new(base, file.clone(), now_ms);
    segment.size_bytes = size_bytes;
    // Walk from the last index entry to the end to learn the last offset; this also checks that
    // the file ends on a batch boundary.
    let (relative, position) = offset_index.last().unwrap_or((0, 0));
    let mut position = u64::from(position);
    let mut next_offset = base.plus(u64::from(relative));
    let mut last_batch_base = base;
    while position < size_bytes {
        let mut raw = [0u8; PREFIX_BYTES];
        if file.read_exact_at(&mut raw, position).is_err() {
            return Ok(None);
        }
        let Ok(prefix) = batch::parse_prefix(&raw) else { return Ok(None) };
        if prefix.base_offset != next_offset.0 {
            return Ok(None);
        }
        last_batch_base = Offset(prefix.base_offset);
        next_offset = Offset(prefix.last_offset() + 1);
        position += prefix.size_bytes as u64;
    }
    if position != size_bytes || next_base.is_some_and(|next| next != next_offset) {
        return Ok(None);
    }
    let relative_end = next_offset.0 - base.0;
    let Some(time_index) = crate::index::TimeIndex::decode(&time_bytes, relative_end.max(1)) else { return Ok(None) };
    segment.next_offset = next_offset;
    segment.last_batch_base = last_batch_base;
    segment.max_timestamp = time_index.last().map_or(i64::MIN, |(timestamp, _)| timestamp);
    segment.bytes_since_index_entry = size_bytes - u64::from(offset_index.last().map_or(0, |entry| entry.1));
    segment.offset_index = offset_index;
    segment.time_index = time_index;
    Ok(Some(segment))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Offset = Offset(100);

    fn checkpoint(recovery_offset: u64, clean: bool, recycled: bool) -> Option<Checkpoint> {
        Some(Checkpoint { log_start_offset: Offset::ZERO, recovery_offset: Offset(recovery_offset), clean, recycled })
    }

    /// A scan that found `valid_bytes` of batches up to `next_offset` in a file of 1000 bytes.
    fn scanned(problem: Option<&str>, valid_bytes: u64, next_offset: u64, claims: bool) -> Found {
        Found::Scanned(ScanFacts {
            problem: problem.map(str::to_string),
            valid_bytes,
            file_bytes: 1000,
            next_offset: Offset(next_offset),
            bytes_after_valid_claim_segment: claims,
        })
    }

    fn cut_tail(keep_bytes: u64, recycled_tail: bool, reason: &str) -> SegmentAction {
        SegmentAction::CutTail { keep_bytes, cut_bytes: 1000 - keep_bytes, recycled_tail, reason: reason.into() }
    }

    fn truncate(keep_bytes: u64, recycled_tail: bool, reason: &str) -> SegmentAction {
        let reason = reason.into();
        SegmentAction::TruncateAndDropLater { keep_bytes, cut_bytes: 1000 - keep_bytes, recycled_tail, reason }
    }

    fn drop_segment(recycled_tail: bool, reason: &str) -> SegmentAction {
        SegmentAction::DropSegmentAndLater { cut_bytes: 1000, recycled_tail, reason: reason.into() }
    }

    /// One rule of recovery: (rule, previous segment's next offset, next base, checkpoint, what
    /// was found, the action).
    type Row = (&'static str, Option<u64>, Option<u64>, Option<Checkpoint>, Found, SegmentAction);

    #[test]
    fn decide_segment_table() {
        const GAP: &str = "segment does not continue the previous one";
        let torn = Some("torn");
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            // Before reading anything.
            ("stray: base inside the previous segment's offsets",
                Some(150), Some(200), None, Found::NotRead, SegmentAction::DropStray),
            ("stray wins over a clean checkpoint",
                Some(150), None, checkpoint(300, true, false), Found::NotRead, SegmentAction::DropStray),
            ("no checkpoint: scan",
                Some(100), Some(200), None, Found::NotRead, SegmentAction::Scan),
            ("clean checkpoint: trust every segment, the active one too",
                Some(100), None, checkpoint(300, true, false), Found::NotRead, SegmentAction::LoadTrusted),
            ("segment ends at or below the recovery offset: trust",
                Some(100), Some(200), checkpoint(200, false, false), Found::NotRead, SegmentAction::LoadTrusted),
            ("segment ends past the recovery offset: scan",
                Some(100), Some(200), checkpoint(150, false, false), Found::NotRead, SegmentAction::Scan),
            ("active segment after an unclean stop: scan",
                Some(100), None, checkpoint(100, false, false), Found::NotRead, SegmentAction::Scan),
            ("index files missing or not matching: scan",
                Some(100), Some(200), checkpoint(200, true, false), Found::IndexFilesRejected, SegmentAction::Scan),
            // After a scan.
            ("clean scan continuing the previous segment: keep",
                Some(100), Some(200), None, scanned(None, 1000, 200, false), SegmentAction::Keep),
            ("clean scan of the first segment: keep",
                None, None, None, scanned(None, 1000, 130, false), SegmentAction::Keep),
            ("clean scan but a gap after the previous segment: drop it and the rest",
                Some(90), Some(200), None, scanned(None, 1000, 200, false), drop_segment(false, GAP)),
            ("sealed segment whose batches end where the next begins: cut its tail, go on",
                Some(100), Some(200), None, scanned(torn, 600, 200, false), cut_tail(600, false, "torn")),
            ("cut-tail needs contiguity: a gap drops the segment",
                Some(90), Some(200), None, scanned(torn, 600, 200, false), drop_segment(false, "torn")),
            ("damage in the last segment: truncate to the valid batches",
                Some(100), None, None, scanned(torn, 600, 150, false), truncate(600, false, "torn")),
            ("damage short of the next segment's base: truncate, drop later segments",
                Some(100), Some(200), None, scanned(torn, 600, 150, false), truncate(600, false, "torn")),
            ("nothing valid in the first segment: keep it empty, drop later segments",
                None, Some(200), None, scanned(torn, 0, 100, false), truncate(0, false, "torn")),
            ("nothing valid in a later segment: drop it and the rest",
                Some(100), Some(200), None, scanned(torn, 0, 100, false), drop_segment(false, "torn")),
            // A recycled file (the checkpoint says the segment at its recovery offset is one).
            ("recycled file's old bytes past the data: a recycled tail, not damage",
                Some(100), None, checkpoint(100, false, true), scanned(torn, 600, 150, false), truncate(600, true, "torn")),
            ("recycled file, but the bytes at the cut claim this segment's offsets: damage",
                Some(100), None, checkpoint(100, false, true), scanned(torn, 600, 150, true), truncate(600, false, "torn")),
            ("recycled flag for another segment: damage",
                Some(100), None, checkpoint(200, false, true), scanned(torn, 600, 150, false), truncate(600, false, "torn")),
            ("recycled file sealed up to the next base: cut a recycled tail, go on",
                Some(100), Some(200), checkpoint(100, false, true), scanned(torn, 600, 200, false), cut_tail(600, true, "torn")),
            ("recycled file with nothing valid: drop it quietly (not a deleted segment)",
                Some(100), None, checkpoint(100, false, true), scanned(torn, 0, 100, false), drop_segment(true, "torn")),
            ("recycled file after a gap: damage, not a recycled tail",
                Some(90), None, checkpoint(100, false, true), scanned(torn, 600, 150, false), drop_segment(false, "torn")),
        ];
        for (rule, previous, next, checkpoint, found, expected) in rows {
            let facts = SegmentFacts {
                base: BASE,
                next_base: next.map(Offset),
                previous_next_offset: previous.map(Offset),
                checkpoint,
                found: &found,
            };
            assert_eq!(decide_segment(&facts), expected, "rule: {rule}");
        }
    }
}
