//! Opening a log: what a crash left is found and repaired. [`decide_segment`] takes every
//! decision for one segment (trust it, scan it, cut it, drop it and what follows) as a plain
//! function of what is known; [`Log::open`] performs the actions.
//!
//! Must not know: anything of appends or commits beyond the checkpoint they left.

use std::path::{Path, PathBuf};

use super::{io_error, remove_if_present, remove_segment_files, Log};
use crate::batch::{self, PREFIX_BYTES};
use crate::cache::TailCache;
use crate::checkpoint::{self, Checkpoint};
use crate::config::{LogConfig, ShardConfig, WriteMode};
use crate::error::{EngineError, Result};
use crate::io::{FileRef, FileSystem, OpenOptions};
use crate::segment::{self, Segment, INDEX_SUFFIX, LOG_SUFFIX, RECYCLED_SUFFIX, TIME_INDEX_SUFFIX};
use crate::types::Offset;

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
                let action = decide_segment(&facts);
                let drops_later = matches!(action, SegmentAction::TruncateAndDropLater { .. });
                let recycled_tail = match action {
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
                            // Any batch a log ever took, under any `max.message.bytes` it had.
                            shard.batch_bytes_max.max(crate::limits::BATCH_BYTES_MAX),
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
                    SegmentAction::CutTail { keep_bytes, cut_bytes, recycled_tail, reason }
                    | SegmentAction::TruncateAndDropLater { keep_bytes, cut_bytes, recycled_tail, reason } => {
                        let file = open_once(&mut file, fs, &path, direct)?;
                        file.set_len(keep_bytes).map_err(io_error(&path))?;
                        file.sync_data().map_err(io_error(&path))?;
                        report.record_cut(recycled_tail, &path, keep_bytes, cut_bytes, &reason);
                        segments.push(rebuilt.take().expect("cut after a scan"));
                        // A sealed segment's trailing bytes held no data: the next one follows.
                        if !drops_later {
                            break;
                        }
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

        // A crash cut an unsynced tail below a log start that `advance_log_start` had moved up:
        // nothing below the start may be read again, so the log starts again there, empty
        // (Kafka's truncateFullyAndStartAt). Segments go newest first: a crash on the way comes
        // back here with fewer of them.
        if segments.last().is_some_and(|last| last.next_offset < log_start_offset) {
            scanned.clear();
            for segment in segments.drain(..).rev() {
                let base = segment.base;
                drop(segment);
                remove_segment_files(fs, dir, base)?;
                fs.sync_dir(dir).map_err(io_error(dir))?;
                report.deleted_segments.push(segment::path(dir, base, LOG_SUFFIX));
            }
            tracing::warn!(dir = %dir.display(), %log_start_offset, "log recovery found the log ending below its log start: starting again, empty, there");
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
            cache: TailCache::new(shard.cache_bytes),
            read_ahead: std::cell::Cell::new(None),
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

/// Whether the bytes at `position` of a segment file parse as a batch header with an offset of
/// the segment starting at `base` (old batches of a recycled file have lower ones).
fn claims_segment_offsets(file: &FileRef, position: u64, base: Offset) -> bool {
    let mut raw = [0u8; PREFIX_BYTES];
    file.read_exact_at(&mut raw, position).is_ok()
        && batch::parse_prefix(&raw).is_ok_and(|prefix| prefix.base_offset >= base.0)
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
