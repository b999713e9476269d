//! Reads of a log: whole committed batches from an offset (as zero-copy chunks of the tail
//! cache or a segment file), and the offset for a timestamp. Reads never change the log.
//!
//! Must not know: pending appends (readers see up to the committed end only).

use bytes::Bytes;

use super::{io_error, Log};
use crate::batch::{self, PREFIX_BYTES};
use crate::error::{EngineError, Result};
use crate::io::FileRef;
use crate::limits::{BATCH_HEADER_BYTES, FILE_READ_AHEAD_BYTES_MAX, FILE_READ_AHEAD_BYTES_MIN, FILE_READ_AHEAD_READS};
use crate::segment::Segment;
use crate::types::Offset;

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

impl Log {
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
    pub(super) fn locate(&self, segment: &Segment, target: Offset) -> Result<Option<(u64, batch::BatchPrefix)>> {
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

    pub(super) fn segment_index_for(&self, offset: Offset) -> usize {
        self.segments.partition_point(|segment| segment.base <= offset).saturating_sub(1)
    }

    /// A reader of files is usually catching up: have the kernel read the range `position..end`
    /// and a window after it into the page cache in large requests, so that the reader's next
    /// reads find it there (Kafka gets the same from its page-cache writes). The window is
    /// [`FILE_READ_AHEAD_READS`] reads of `max_bytes` (the size this reader asks for), within
    /// [`FILE_READ_AHEAD_BYTES_MIN`]..=[`FILE_READ_AHEAD_BYTES_MAX`]; it is asked for again only
    /// when the reader has used half of it, and then only the part not asked for yet.
    fn read_ahead(&self, segment: &Segment, position: u64, end: u64, max_bytes: u64) {
        let window =
            max_bytes.saturating_mul(FILE_READ_AHEAD_READS).clamp(FILE_READ_AHEAD_BYTES_MIN, FILE_READ_AHEAD_BYTES_MAX);
        let asked_to = match self.read_ahead.get() {
            Some((base, asked_to)) if base == segment.base && (position..asked_to).contains(&end) => asked_to,
            _ => position,
        };
        let target = end.saturating_add(window).min(segment.size_bytes);
        if asked_to >= end.saturating_add(window / 2).min(target) {
            return;
        }
        segment.file.prefetch(asked_to, target - asked_to);
        self.read_ahead.set(Some((segment.base, target)));
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
                self.read_ahead(segment, position, end, max_bytes);
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
            if let Some(found) = self.first_at_or_after(segment, timestamp_ms)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The largest timestamp of the log and the first offset that carries it (Kafka's ListOffsets
    /// max timestamp, KIP-734): the earliest segment holding the largest segment max timestamp,
    /// in it the first batch of that max timestamp, in it the first record of that timestamp
    /// (for compressed batches other than zstd, the batch's base offset). `None` when the log
    /// holds no batch.
    pub fn max_timestamp(&self) -> Result<Option<(Offset, i64)>> {
        let mut latest: Option<&Segment> = None;
        for segment in self.segments.iter().filter(|segment| segment.size_bytes > 0) {
            // Strictly greater: among segments with the same max timestamp the earliest wins.
            if latest.is_none_or(|latest| segment.max_timestamp > latest.max_timestamp) {
                latest = Some(segment);
            }
        }
        match latest {
            Some(segment) => self.first_at_or_after(segment, segment.max_timestamp),
            None => Ok(None),
        }
    }

    /// In `segment`, the first record whose timestamp is at least `timestamp_ms`: found through
    /// the time index, then batch by batch.
    fn first_at_or_after(&self, segment: &Segment, timestamp_ms: i64) -> Result<Option<(Offset, i64)>> {
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
        Ok(None)
    }
}
