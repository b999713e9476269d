//! One segment: a `.log` file of batches plus its sparse indexes, and the recovery scan.
//!
//! Owns: file naming (`00000000000000000000.log`, `.index`, `.timeindex`, Kafka's names), the
//! in-memory state of a segment (committed size, next offset, indexes, max timestamp, the direct
//! mode tail block), index maintenance as batches land, and [`scan`], which validates a segment
//! batch by batch. Knows nothing of pending appends, commits or other segments.

use std::io;
use std::path::{Path, PathBuf};

use crate::batch::{self, PREFIX_BYTES};
use crate::index::{OffsetIndex, TimeIndex};
use crate::io::aligned::align_down;
use crate::io::FileRef;
use crate::types::Offset;

pub const LOG_SUFFIX: &str = ".log";
pub const INDEX_SUFFIX: &str = ".index";
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";
/// A `.log` file retention removed, kept under its old base offset until a roll reuses it. Its
/// bytes are stale: recovery deletes such files, and a roll that reuses one overwrites it.
pub const RECYCLED_SUFFIX: &str = ".log.recycled";

pub fn file_name(base: Offset, suffix: &str) -> String {
    format!("{:020}{suffix}", base.0)
}

pub fn path(dir: &Path, base: Offset, suffix: &str) -> PathBuf {
    dir.join(file_name(base, suffix))
}

/// The base offset encoded in a `.log` file name, if it is one.
pub fn parse_log_file_name(name: &str) -> Option<Offset> {
    let stem = name.strip_suffix(LOG_SUFFIX)?;
    if stem.len() != 20 || !stem.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok().map(Offset)
}

#[derive(Debug)]
pub struct Segment {
    pub base: Offset,
    pub file: FileRef,
    /// Bytes of committed batches; the file may be longer (direct-mode padding, torn tails).
    pub size_bytes: u64,
    /// One past the last committed offset in this segment.
    pub next_offset: Offset,
    pub offset_index: OffsetIndex,
    pub time_index: TimeIndex,
    pub bytes_since_index_entry: u64,
    /// Largest batch max timestamp; `i64::MIN` when empty.
    pub max_timestamp: i64,
    /// When this segment became active, for `segment.ms`.
    pub created_ms: i64,
    /// Base offset of the last committed batch (for the final time index entry).
    pub last_batch_base: Offset,
    /// Direct mode: the committed bytes of the last, partial 4 KiB block, rewritten with the next
    /// write. Empty in buffered mode.
    pub tail_block: Vec<u8>,
    /// The file was a recycled one and is not sealed yet: past `size_bytes` it may hold older
    /// batches (sealing cuts the file to `size_bytes`).
    pub recycled: bool,
}

impl Segment {
    pub fn new(base: Offset, file: FileRef, created_ms: i64) -> Segment {
        Segment {
            base,
            file,
            size_bytes: 0,
            next_offset: base,
            offset_index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            bytes_since_index_entry: 0,
            max_timestamp: i64::MIN,
            created_ms,
            last_batch_base: base,
            tail_block: Vec::new(),
            recycled: false,
        }
    }

    pub fn relative(&self, offset: Offset) -> u32 {
        let delta = offset.0 - self.base.0;
        assert!(delta <= u64::from(u32::MAX), "relative offset overflow is prevented by rolling");
        delta as u32
    }

    /// Updates size, next offset, indexes and max timestamp for a batch committed at `position`.
    pub fn record_batch(
        &mut self,
        position: u64,
        base_offset: Offset,
        last_offset: Offset,
        max_timestamp: i64,
        size_bytes: u64,
        index_interval_bytes: u64,
    ) {
        assert_eq!(position, self.size_bytes, "batches land back to back");
        assert!(base_offset >= self.next_offset, "offsets grow");
        let indexed = position == 0 || self.bytes_since_index_entry >= index_interval_bytes;
        if indexed && position > 0 {
            self.offset_index.push(self.relative(base_offset), position as u32);
            self.bytes_since_index_entry = 0;
        }
        self.max_timestamp = self.max_timestamp.max(max_timestamp);
        if indexed {
            self.time_index.maybe_push(self.max_timestamp, self.relative(base_offset));
        }
        self.last_batch_base = base_offset;
        self.bytes_since_index_entry += size_bytes;
        self.size_bytes = position + size_bytes;
        self.next_offset = last_offset.next();
    }

    /// Adds the time index entry for the segment's max timestamp (Kafka does the same on roll), so
    /// that a reopened segment knows its max timestamp from the index alone.
    pub fn finish_time_index(&mut self) {
        if self.size_bytes > 0 {
            let relative = self.relative(self.last_batch_base);
            self.time_index.maybe_push(self.max_timestamp, relative);
        }
    }

    /// Loads the direct-mode tail block from the file.
    pub fn load_tail_block(&mut self) -> io::Result<()> {
        let start = align_down(self.size_bytes);
        let mut block = vec![0u8; (self.size_bytes - start) as usize];
        self.file.read_exact_at(&mut block, start)?;
        self.tail_block = block;
        Ok(())
    }

    /// After `data` landed at `size_bytes - data.len()`, keeps the new partial block in memory.
    pub fn advance_tail_block(&mut self, previous_size_bytes: u64, data: &[u8]) {
        let tail_start = align_down(self.size_bytes);
        if tail_start >= previous_size_bytes {
            // The new partial block lies wholly in `data`.
            self.tail_block.clear();
            self.tail_block.extend_from_slice(&data[(tail_start - previous_size_bytes) as usize..]);
        } else {
            // Old tail block and `data` together cover [align_down(previous_size), size).
            let joined_start = align_down(previous_size_bytes);
            self.tail_block.drain(..(tail_start - joined_start) as usize);
            self.tail_block.extend_from_slice(data);
        }
    }
}

/// What a validation scan of a segment found.
#[derive(Debug)]
pub struct ScanOutcome {
    pub segment: Segment,
    /// Why the scan stopped before the end of the file, if it did. Zeros after the last batch
    /// are not a problem (see `zero_tail_bytes`).
    pub problem: Option<String>,
    pub file_bytes: u64,
    /// Bytes after the last valid batch that are all zero: direct-mode padding, or sectors an
    /// unacknowledged write never reached. Holds no data; cut quietly.
    pub zero_tail_bytes: u64,
}

/// Reads `[position, position + length)` of a file through a window buffer, so a scan over many
/// small batches costs few system calls.
struct WindowReader<'a> {
    file: &'a FileRef,
    file_bytes: u64,
    window: Vec<u8>,
    window_start: u64,
}

const SCAN_WINDOW_BYTES: usize = 4 * 1024 * 1024;

impl WindowReader<'_> {
    fn get(&mut self, position: u64, length: usize) -> io::Result<&[u8]> {
        let window_end = self.window_start + self.window.len() as u64;
        if position < self.window_start || position + length as u64 > window_end {
            let read_length = (length.max(SCAN_WINDOW_BYTES) as u64).min(self.file_bytes - position) as usize;
            self.window.resize(read_length, 0);
            self.file.read_exact_at(&mut self.window, position)?;
            self.window_start = position;
        }
        let from = (position - self.window_start) as usize;
        Ok(&self.window[from..from + length])
    }
}

/// Validates every batch of a segment from its start: length, magic, CRC, offsets contiguous from
/// `base`. Stops at the first invalid byte and reports why; the segment returned covers only the
/// valid prefix, with indexes rebuilt.
pub fn scan(
    file: FileRef,
    base: Offset,
    created_ms: i64,
    index_interval_bytes: u64,
    batch_bytes_max: usize,
) -> io::Result<ScanOutcome> {
    let file_bytes = file.len()?;
    let mut segment = Segment::new(base, file.clone(), created_ms);
    let mut reader = WindowReader { file: &file, file_bytes, window: Vec::new(), window_start: 0 };
    let mut position = 0u64;
    let problem = loop {
        if position == file_bytes {
            break None;
        }
        if position + PREFIX_BYTES as u64 > file_bytes {
            break Some(format!(
                "{} trailing bytes at {position} are too short for a batch header",
                file_bytes - position
            ));
        }
        let prefix = match batch::parse_prefix(reader.get(position, PREFIX_BYTES)?) {
            Ok(prefix) => prefix,
            Err(error) => break Some(format!("bad batch header at {position}: {error}")),
        };
        if prefix.size_bytes > batch_bytes_max {
            break Some(format!("batch at {position} claims {} bytes, over the limit", prefix.size_bytes));
        }
        if position + prefix.size_bytes as u64 > file_bytes {
            break Some(format!("batch at {position} of {} bytes runs past the end of the file", prefix.size_bytes));
        }
        if prefix.base_offset != segment.next_offset.0 {
            break Some(format!(
                "batch at {position} has base offset {}, expected {}",
                prefix.base_offset, segment.next_offset
            ));
        }
        if prefix.last_offset() - base.0 > u64::from(u32::MAX) {
            break Some(format!("batch at {position} overflows the segment's relative offsets"));
        }
        let header = match batch::validate_one(reader.get(position, prefix.size_bytes)?) {
            Ok(header) => header,
            Err(error) => break Some(format!("invalid batch at {position}: {error}")),
        };
        segment.record_batch(
            position,
            Offset(header.base_offset),
            Offset(header.last_offset()),
            header.max_timestamp,
            header.size_bytes as u64,
            index_interval_bytes,
        );
        position += header.size_bytes as u64;
    };
    let mut zero_tail_bytes = 0;
    let problem = match problem {
        Some(_) if all_zero(&file, position, file_bytes)? => {
            zero_tail_bytes = file_bytes - position;
            None
        }
        other => other,
    };
    Ok(ScanOutcome { segment, problem, file_bytes, zero_tail_bytes })
}

/// Bytes read at a time when checking that a file's tail is all zeros.
const ZERO_CHECK_CHUNK_BYTES: usize = 1024 * 1024;

/// Whether `[from, to)` of `file` holds only zero bytes.
fn all_zero(file: &FileRef, from: u64, to: u64) -> io::Result<bool> {
    let mut buffer = vec![0u8; ZERO_CHECK_CHUNK_BYTES.min((to - from) as usize)];
    let mut position = from;
    while position < to {
        let length = buffer.len().min((to - position) as usize);
        file.read_exact_at(&mut buffer[..length], position)?;
        if buffer[..length].iter().any(|byte| *byte != 0) {
            return Ok(false);
        }
        position += length as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kafkas() {
        assert_eq!(file_name(Offset(42), LOG_SUFFIX), "00000000000000000042.log");
        assert_eq!(parse_log_file_name("00000000000000000042.log"), Some(Offset(42)));
        assert_eq!(parse_log_file_name("00000000000000000042.index"), None);
        assert_eq!(parse_log_file_name("42.log"), None);
    }
}
