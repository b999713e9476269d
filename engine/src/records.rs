//! The record-level check of a v2 batch: every record inside it is walked once, compressed or not,
//! before the batch is stored.
//!
//! Owns: the layout of a v2 record and the four codecs' framings as Kafka clients send them.
//! A batch whose records do not parse exactly as its header declares is refused, so no consumer
//! ever meets it. Knows nothing of the Kafka request that carried the batch nor of broker policy
//! (control batches, timestamps bounds): it reports what it saw ([`RecordsSummary`]) and the
//! broker decides.
//!
//! ```text
//! record := length varint            bytes that follow, up to the end of headers
//!           attributes int8          (unused)
//!           timestampDelta varlong   record timestamp = baseTimestamp + delta
//!           offsetDelta varint       must be the record's index: 0, 1, 2, ...
//!           keyLength varint, key    -1 means null; other negatives are refused (see below)
//!           valueLength varint, value
//!           headersCount varint      then per header: keyLength varint (>= 0), key,
//!                                    valueLength varint (-1 null), value
//! ```
//! Varints are zig-zag, at most 5 bytes (varint) or 10 (varlong), as Kafka's `ByteUtils`.
//!
//! Memory: the walk never keeps a record, never allocates by a length it read, and never
//! re-compresses. Compressed batches are decompressed as a stream through a fixed buffer and
//! skipped over; the decompressed size is capped at [`RECORDS_DECOMPRESSED_BYTES_MAX`]. What a codec
//! itself needs is the exception, bounded by its format: gzip a 32 KiB window, lz4 one block (at
//! most 4 MiB), zstd its window (zstd's own limit of 2^27; pages are only touched as output is
//! produced, so at most the decompressed cap), snappy one block (xerial framing: the producer's
//! block size, 32 KiB for the Java client; a raw snappy block as librdkafka sends: the whole
//! records section; never more than 22 times the block's compressed size nor the cap).
//!
//! Threading: plain functions, called on the shard thread that validates a produced batch.

use std::io::{self, Read};

use crate::batch::{BatchHeader, Codec, RECORDS_AT};
use crate::error::BatchError;
pub use crate::limits::RECORDS_DECOMPRESSED_BYTES_MAX;
use crate::limits::RECORDS_STREAM_BUFFER_BYTES;

/// A record timestamp meaning "none" (Kafka's `RecordBatch.NO_TIMESTAMP`).
pub const NO_TIMESTAMP: i64 = -1;

/// What the walk saw, for the broker's policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordsSummary {
    /// The smallest record timestamp other than [`NO_TIMESTAMP`]; `i64::MAX` when there is none.
    pub timestamp_min_ms: i64,
    /// The largest record timestamp; [`NO_TIMESTAMP`] (or below) when no record has one.
    pub timestamp_max_ms: i64,
    /// Bytes of the records section once decompressed (its stored size when uncompressed).
    pub records_bytes: usize,
}

/// Walks every record of `batch`, whose header already passed [`crate::batch::validate_one`]
/// (length within `batch`, CRC, codec known). Checks that the batch holds exactly
/// `recordsCount` (at least one) well-formed records numbered 0, 1, 2, ... and nothing after them.
pub fn walk_records(batch: &[u8], header: &BatchHeader) -> Result<RecordsSummary, BatchError> {
    walk_records_bounded(batch, header, RecordBounds::NONE)
}

/// What a walk allows beyond the format: the decompressed size of a compressed batch's records
/// section, and the body a record of a compressed batch may declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordBounds {
    /// At most [`RECORDS_DECOMPRESSED_BYTES_MAX`] whatever is asked.
    pub decompressed_bytes_max: usize,
    /// Kafka's `max.decompressed.message.bytes`: checked only in compressed batches, as Kafka does.
    pub decompressed_record_bytes_max: usize,
}

impl RecordBounds {
    /// The engine's own caps only.
    pub const NONE: RecordBounds = RecordBounds {
        decompressed_bytes_max: RECORDS_DECOMPRESSED_BYTES_MAX,
        decompressed_record_bytes_max: usize::MAX,
    };
}

/// The records section of a compressed batch (header passed [`crate::batch::validate_one`]),
/// decompressed whole, at most `decompressed_bytes_max` bytes: for converting a batch to
/// another codec (`crate::compression`), after [`walk_records`] checked its records.
pub fn decompress_records(
    batch: &[u8],
    header: &BatchHeader,
    decompressed_bytes_max: usize,
) -> Result<Vec<u8>, BatchError> {
    assert!(batch.len() >= header.size_bytes && header.size_bytes >= RECORDS_AT, "decompress a validated batch only");
    let payload = &batch[RECORDS_AT..header.size_bytes];
    let codec = header.codec();
    let Some(decoder) = Decoder::new(codec, payload, decompressed_bytes_max)? else {
        if payload.len() > decompressed_bytes_max {
            return Err(BatchError::DecompressedTooLarge { limit_bytes: decompressed_bytes_max });
        }
        return Ok(payload.to_vec());
    };
    let mut out = Vec::new();
    decoder
        .take(decompressed_bytes_max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|error| decoder_error(error, codec, decompressed_bytes_max))?;
    if out.len() > decompressed_bytes_max {
        return Err(BatchError::DecompressedTooLarge { limit_bytes: decompressed_bytes_max });
    }
    Ok(out)
}

/// A codec's decompressing reader over a records section, as Kafka's clients frame it: the one
/// dispatch from codec to decoder, for the record walk and for [`decompress_records`].
enum Decoder<'a> {
    Gzip(flate2::bufread::MultiGzDecoder<&'a [u8]>),
    Snappy(SnappyReader<'a>),
    Lz4(lz4_flex::frame::FrameDecoder<&'a [u8]>),
    Zstd(zstd::stream::read::Decoder<'a, &'a [u8]>),
}

impl<'a> Decoder<'a> {
    /// The decoder of `codec` over `payload` (`None`: uncompressed, nothing to decode). Snappy
    /// holds its blocks to `decompressed_bytes_max`; an lz4 frame cut inside its end mark is
    /// refused here, as Kafka and librdkafka refuse it.
    fn new(codec: Codec, payload: &'a [u8], decompressed_bytes_max: usize) -> Result<Option<Decoder<'a>>, BatchError> {
        Ok(Some(match codec {
            Codec::None => return Ok(None),
            Codec::Gzip => Decoder::Gzip(flate2::bufread::MultiGzDecoder::new(payload)),
            Codec::Snappy => Decoder::Snappy(SnappyReader::new(payload, decompressed_bytes_max)),
            Codec::Lz4 => {
                if !lz4_frame_ends_with_end_mark(payload) {
                    return Err(BatchError::Decompression {
                        codec: codec.id(),
                        detail: "lz4 frame has no end mark".into(),
                    });
                }
                Decoder::Lz4(lz4_flex::frame::FrameDecoder::new(payload))
            }
            Codec::Zstd => Decoder::Zstd(
                zstd::stream::read::Decoder::with_buffer(payload)
                    .map_err(|error| decoder_error(error, codec, decompressed_bytes_max))?,
            ),
        }))
    }
}

impl Read for Decoder<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Gzip(decoder) => decoder.read(buffer),
            Decoder::Snappy(decoder) => decoder.read(buffer),
            Decoder::Lz4(decoder) => decoder.read(buffer),
            Decoder::Zstd(decoder) => decoder.read(buffer),
        }
    }
}

/// A decoder's failure as the batch's fault: over the cap (`FileTooLarge`, from the walk's
/// buffer or snappy's block check), or records that do not decompress.
fn decoder_error(error: io::Error, codec: Codec, decompressed_bytes_max: usize) -> BatchError {
    if error.kind() == io::ErrorKind::FileTooLarge {
        BatchError::DecompressedTooLarge { limit_bytes: decompressed_bytes_max }
    } else {
        BatchError::Decompression { codec: codec.id(), detail: error.to_string() }
    }
}

/// [`walk_records`] within `bounds`.
pub fn walk_records_bounded(
    batch: &[u8],
    header: &BatchHeader,
    bounds: RecordBounds,
) -> Result<RecordsSummary, BatchError> {
    walk_records_with::<RECORDS_STREAM_BUFFER_BYTES>(batch, header, bounds)
}

/// The walk with a stream buffer of `BUFFER_BYTES` (tests use a tiny one, so that records straddle
/// refills).
fn walk_records_with<const BUFFER_BYTES: usize>(
    batch: &[u8],
    header: &BatchHeader,
    bounds: RecordBounds,
) -> Result<RecordsSummary, BatchError> {
    let decompressed_bytes_max = bounds.decompressed_bytes_max.min(RECORDS_DECOMPRESSED_BYTES_MAX);
    let record_bytes_max = bounds.decompressed_record_bytes_max;
    assert!(batch.len() >= header.size_bytes && header.size_bytes >= RECORDS_AT, "walk a validated batch only");
    let records_count = header.records_count;
    if records_count == 0 {
        return Err(BatchError::NoRecords);
    }
    let payload = &batch[RECORDS_AT..header.size_bytes];
    let base_timestamp = header.base_timestamp;
    let codec = header.codec();
    match Decoder::new(codec, payload, decompressed_bytes_max)? {
        None => walk_slice(payload, records_count, base_timestamp),
        Some(decoder) => walk_stream::<BUFFER_BYTES>(
            decoder,
            records_count,
            base_timestamp,
            decompressed_bytes_max,
            record_bytes_max,
            |error| decoder_error(error, codec, decompressed_bytes_max),
        ),
    }
}

fn walk_stream<const BUFFER_BYTES: usize>(
    decoder: Decoder<'_>,
    records_count: u32,
    base_timestamp: i64,
    decompressed_bytes_max: usize,
    record_bytes_max: usize,
    decompression: impl Fn(io::Error) -> BatchError,
) -> Result<RecordsSummary, BatchError> {
    let mut source = StreamSource {
        reader: decoder,
        buffer: [0; BUFFER_BYTES],
        filled: 0,
        at: 0,
        consumed: 0,
        bytes_max: decompressed_bytes_max,
        error: None,
    };
    let result = walk(&mut source, records_count, base_timestamp, record_bytes_max);
    // A failing decoder shows up as missing bytes to the walk: report the decoder's reason.
    match source.error.take() {
        Some(error) => Err(decompression(error)),
        None => result,
    }
}

/// Bytes to walk: a slice (uncompressed) or a decompressing stream.
trait Source {
    /// The next byte, `None` at the end (or when the stream failed).
    fn byte(&mut self) -> Option<u8>;
    /// Skips `count` bytes; false when fewer remain.
    fn skip(&mut self, count: usize) -> bool;
    /// Bytes consumed so far.
    fn position(&self) -> usize;
    /// True when nothing is left.
    fn at_end(&mut self) -> bool;
    /// The next `count` bytes when they are already buffered in one piece.
    fn contiguous(&self, count: usize) -> Option<&[u8]>;
    /// Consumes `count` bytes that [`Source::contiguous`] returned.
    fn advance(&mut self, count: usize);
}

/// A decompressing reader seen through a fixed buffer; counts what it consumed and stops at
/// `bytes_max` (an `io::ErrorKind::FileTooLarge` error, reported as too large).
struct StreamSource<R, const BUFFER_BYTES: usize> {
    reader: R,
    buffer: [u8; BUFFER_BYTES],
    filled: usize,
    at: usize,
    /// Bytes consumed from previous fills.
    consumed: usize,
    bytes_max: usize,
    error: Option<io::Error>,
}

impl<R: Read, const BUFFER_BYTES: usize> StreamSource<R, BUFFER_BYTES> {
    /// Refills the buffer; false at the end of the stream or on an error (kept in `error`).
    fn refill(&mut self) -> bool {
        if self.error.is_some() {
            return false;
        }
        self.consumed += self.filled;
        self.filled = 0;
        self.at = 0;
        // Bounded: a reader that keeps answering `Interrupted` is a broken reader.
        for _ in 0..16 {
            match self.reader.read(&mut self.buffer) {
                Ok(read) => {
                    if self.consumed + read > self.bytes_max {
                        self.error =
                            Some(io::Error::new(io::ErrorKind::FileTooLarge, "decompressed size over the cap"));
                        return false;
                    }
                    self.filled = read;
                    return read > 0;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    self.error = Some(error);
                    return false;
                }
            }
        }
        self.error = Some(io::Error::other("decoder interrupted too often"));
        false
    }
}

impl<R: Read, const BUFFER_BYTES: usize> Source for StreamSource<R, BUFFER_BYTES> {
    #[inline]
    fn contiguous(&self, count: usize) -> Option<&[u8]> {
        self.buffer[..self.filled].get(self.at..self.at.checked_add(count)?)
    }

    #[inline]
    fn advance(&mut self, count: usize) {
        assert!(count <= self.filled - self.at, "advance past the buffered bytes");
        self.at += count;
    }

    #[inline]
    fn byte(&mut self) -> Option<u8> {
        if self.at == self.filled && !self.refill() {
            return None;
        }
        let byte = self.buffer[self.at];
        self.at += 1;
        Some(byte)
    }

    fn skip(&mut self, mut count: usize) -> bool {
        // Each round consumes at least one byte or returns, so `count` bounds the loop; the
        // byte cap bounds `count` in turn.
        loop {
            let available = self.filled - self.at;
            if count <= available {
                self.at += count;
                return true;
            }
            count -= available;
            self.at = self.filled;
            if !self.refill() {
                return false;
            }
        }
    }

    fn position(&self) -> usize {
        self.consumed + self.at
    }

    fn at_end(&mut self) -> bool {
        self.at == self.filled && !self.refill() && self.error.is_none()
    }
}

/// Reads a zig-zag varint of at most `bytes_max` bytes; the value wraps as Java's does.
#[inline(always)]
fn varint<S: Source>(source: &mut S, bytes_max: u32) -> Option<u64> {
    let first = source.byte()?;
    if first < 0x80 {
        return Some(u64::from(first));
    }
    let mut value = u64::from(first & 0x7f);
    let mut shift = 7;
    for _ in 1..bytes_max {
        let byte = source.byte()?;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
        shift += 7;
    }
    None
}

#[inline(always)]
fn varint32<S: Source>(source: &mut S) -> Option<i32> {
    let raw = varint(source, 5)? as u32;
    Some(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

#[inline(always)]
fn varint64<S: Source>(source: &mut S) -> Option<i64> {
    let raw = varint(source, 10)?;
    Some(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

/// Why one record is malformed, before the record index is attached.
enum Fault {
    /// Ran out of bytes (or hit an over-long varint) inside the record.
    Structure,
    /// A key, value or header length below what the format allows.
    FieldLength(i32),
}

/// Parses the fields of one record after its length; returns its timestamp delta and offset
/// delta. Used for records that straddle a refill of the stream buffer; decides as
/// [`slice_record`] does (a varint that runs past the record's end is a structure fault).
fn record_fields<S: Source>(source: &mut S, record_end: usize) -> Result<(i64, i32), Fault> {
    let field = |source: &mut S| -> Result<i32, Fault> {
        let value = varint32(source).ok_or(Fault::Structure)?;
        if source.position() > record_end {
            return Err(Fault::Structure);
        }
        Ok(value)
    };
    source.byte().ok_or(Fault::Structure)?; // attributes
    let timestamp_delta = varint64(source).ok_or(Fault::Structure)?;
    if source.position() > record_end {
        return Err(Fault::Structure);
    }
    let offset_delta = field(source)?;
    // Key, then value: -1 is null. Kafka reads any negative length as null, but librdkafka stops
    // consuming the partition at such a record, so only -1 is accepted.
    for _ in 0..2 {
        let length = field(source)?;
        if length < -1 {
            return Err(Fault::FieldLength(length));
        }
        skip_within(source, length, record_end)?;
    }
    let headers_count = field(source)?;
    // Each header takes at least two bytes, so a count past the record's end cannot parse; the
    // check also bounds the loop by the record's length.
    if headers_count < 0 || headers_count as usize > record_end.saturating_sub(source.position()) {
        return Err(Fault::FieldLength(headers_count));
    }
    for _ in 0..headers_count {
        let key_length = field(source)?;
        if key_length < 0 {
            return Err(Fault::FieldLength(key_length));
        }
        skip_within(source, key_length, record_end)?;
        let value_length = field(source)?;
        if value_length < -1 {
            return Err(Fault::FieldLength(value_length));
        }
        skip_within(source, value_length, record_end)?;
    }
    Ok((timestamp_delta, offset_delta))
}

/// Skips a field of `length` bytes (-1: null, nothing to skip) that must end within the record.
#[inline(always)]
fn skip_within<S: Source>(source: &mut S, length: i32, record_end: usize) -> Result<(), Fault> {
    if length <= 0 {
        return Ok(());
    }
    let length = length as usize;
    if length > record_end.saturating_sub(source.position()) || !source.skip(length) {
        return Err(Fault::Structure);
    }
    Ok(())
}

/// The walk of a decompressing stream; a record may declare at most `record_bytes_max` bytes.
fn walk<S: Source>(
    source: &mut S,
    records_count: u32,
    base_timestamp: i64,
    record_bytes_max: usize,
) -> Result<RecordsSummary, BatchError> {
    let mut timestamp_min = i64::MAX;
    let mut timestamp_max = i64::MIN;
    for index in 0..records_count {
        let Some(length) = varint32(source) else {
            return Err(if source.at_end() {
                BatchError::RecordsMissing { records_count, records_found: index }
            } else {
                BatchError::RecordMalformed { record_index: index, detail: "over-long length varint" }
            });
        };
        if length <= 0 {
            return Err(BatchError::RecordLengthInvalid { record_index: index, length });
        }
        if length as usize > record_bytes_max {
            return Err(BatchError::DecompressedRecordTooLarge {
                record_index: index,
                length,
                limit_bytes: record_bytes_max,
            });
        }
        // The record is usually buffered whole: parse it as a slice, as uncompressed records are.
        let parsed = source.contiguous(length as usize).map(slice_record);
        let (timestamp_delta, offset_delta) = if let Some(parsed) = parsed {
            source.advance(length as usize);
            parsed.map_err(|fault| slice_fault_error(fault, index, length))?
        } else {
            let body_start = source.position();
            let record_end = body_start + length as usize;
            let deltas = match record_fields(source, record_end) {
                Ok(deltas) => deltas,
                Err(Fault::Structure) => return Err(slice_fault_error(SliceFault::Structure, index, length)),
                Err(Fault::FieldLength(field)) => {
                    return Err(slice_fault_error(SliceFault::FieldLength(field), index, length))
                }
            };
            let read_bytes = source.position() - body_start;
            if read_bytes > length as usize {
                return Err(slice_fault_error(SliceFault::Structure, index, length));
            }
            if read_bytes < length as usize {
                return Err(slice_fault_error(SliceFault::Short(read_bytes as i32), index, length));
            }
            deltas
        };
        if offset_delta as u32 != index {
            return Err(BatchError::OffsetDeltaMismatch { record_index: index, offset_delta });
        }
        // Branch-free bookkeeping of the timestamp range; "none" (-1) is left out of the minimum.
        let timestamp = base_timestamp.saturating_add(timestamp_delta);
        timestamp_min = timestamp_min.min(if timestamp == NO_TIMESTAMP { i64::MAX } else { timestamp });
        timestamp_max = timestamp_max.max(timestamp);
    }
    if !source.at_end() {
        return Err(BatchError::TrailingBytes { records_count });
    }
    Ok(RecordsSummary {
        timestamp_min_ms: timestamp_min,
        timestamp_max_ms: timestamp_max,
        records_bytes: source.position(),
    })
}

/// True when an lz4 frame ends as the format requires: an end mark (a zero block size), then the
/// content checksum when the frame descriptor announces one. The decoder we use accepts a frame
/// cut inside its end mark; Kafka and librdkafka do not.
fn lz4_frame_ends_with_end_mark(payload: &[u8]) -> bool {
    const FLAG_BYTE_AT: usize = 4;
    const CONTENT_CHECKSUM_FLAG: u8 = 0x04;
    let Some(flags) = payload.get(FLAG_BYTE_AT) else { return false };
    let checksum_bytes = if flags & CONTENT_CHECKSUM_FLAG != 0 { 4 } else { 0 };
    let Some(end_mark_at) = payload.len().checked_sub(4 + checksum_bytes) else { return false };
    payload[end_mark_at..end_mark_at + 4] == [0, 0, 0, 0]
}

/// Reads an unsigned varint of at most `bytes_max` bytes at `*at`, the one- and two-byte forms
/// (every length under 8 KiB, every offset delta under 8192) inline. The value wraps past 64 bits
/// as Java's does past its width.
#[inline(always)]
fn uvarint_at(bytes: &[u8], at: &mut usize, bytes_max: u32) -> Option<u64> {
    let first = *bytes.get(*at)?;
    *at += 1;
    if first < 0x80 {
        return Some(u64::from(first));
    }
    let second = *bytes.get(*at)?;
    *at += 1;
    let value = u64::from(first & 0x7f) | (u64::from(second & 0x7f) << 7);
    if second < 0x80 {
        return Some(value);
    }
    uvarint_rest(bytes, at, value, bytes_max)
}

fn uvarint_rest(bytes: &[u8], at: &mut usize, mut value: u64, bytes_max: u32) -> Option<u64> {
    let mut shift = 14;
    for _ in 2..bytes_max {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
        shift += 7;
    }
    None
}

#[inline(always)]
fn zigzag32(raw: u64) -> i32 {
    let raw = raw as u32;
    ((raw >> 1) as i32) ^ -((raw & 1) as i32)
}

#[inline(always)]
fn zigzag64(raw: u64) -> i64 {
    ((raw >> 1) as i64) ^ -((raw & 1) as i64)
}

/// The uncompressed walk: the checks of [`walk`] on a slice, each record's bounds checked once
/// (its bytes are then a sub-slice) and lengths tested on their zig-zag form (even: a length,
/// 1: null, other odd: negative).
fn walk_slice(bytes: &[u8], records_count: u32, base_timestamp: i64) -> Result<RecordsSummary, BatchError> {
    let mut at = 0;
    let mut timestamp_min = i64::MAX;
    let mut timestamp_max = i64::MIN;
    for index in 0..records_count {
        if at == bytes.len() {
            return Err(BatchError::RecordsMissing { records_count, records_found: index });
        }
        let Some(raw) = uvarint_at(bytes, &mut at, 5) else {
            return Err(BatchError::RecordMalformed { record_index: index, detail: "over-long length varint" });
        };
        let length = zigzag32(raw);
        if length <= 0 {
            return Err(BatchError::RecordLengthInvalid { record_index: index, length });
        }
        let Some(record) = bytes.get(at..at + length as usize) else {
            return Err(BatchError::RecordMalformed { record_index: index, detail: "record runs past the batch" });
        };
        at += length as usize;
        let (timestamp_delta, offset_delta) =
            slice_record(record).map_err(|fault| slice_fault_error(fault, index, length))?;
        if offset_delta as u32 != index {
            return Err(BatchError::OffsetDeltaMismatch { record_index: index, offset_delta });
        }
        let timestamp = base_timestamp.saturating_add(timestamp_delta);
        timestamp_min = timestamp_min.min(if timestamp == NO_TIMESTAMP { i64::MAX } else { timestamp });
        timestamp_max = timestamp_max.max(timestamp);
    }
    if at != bytes.len() {
        return Err(BatchError::TrailingBytes { records_count });
    }
    Ok(RecordsSummary { timestamp_min_ms: timestamp_min, timestamp_max_ms: timestamp_max, records_bytes: at })
}

/// The error for a record (`index`, declared `length`) whose fields did not parse.
#[cold]
fn slice_fault_error(fault: SliceFault, index: u32, length: i32) -> BatchError {
    match fault {
        SliceFault::Structure => {
            BatchError::RecordMalformed { record_index: index, detail: "fields run past the record" }
        }
        SliceFault::FieldLength(field) => BatchError::FieldLengthInvalid { record_index: index, length: field },
        SliceFault::Short(read_bytes) => {
            BatchError::RecordLengthMismatch { record_index: index, declared_bytes: length, read_bytes }
        }
    }
}

enum SliceFault {
    Structure,
    FieldLength(i32),
    /// The fields ended before the record's declared length, after this many bytes.
    Short(i32),
}

/// The fields of one record (the bytes its length covers, at least one); its timestamp delta
/// and offset delta. A skip past the end is caught by the next read or the final comparison.
#[inline(always)]
fn slice_record(record: &[u8]) -> Result<(i64, i32), SliceFault> {
    let mut at = 1; // attributes
    let timestamp_delta = zigzag64(uvarint_at(record, &mut at, 10).ok_or(SliceFault::Structure)?);
    let offset_delta = zigzag32(uvarint_at(record, &mut at, 5).ok_or(SliceFault::Structure)?);
    // Key, then value: 1 is null (-1); other odd values are the negative lengths librdkafka
    // cannot consume (Kafka reads them as null).
    for _ in 0..2 {
        let raw = uvarint_at(record, &mut at, 5).ok_or(SliceFault::Structure)? as u32;
        if raw & 1 == 0 {
            at += (raw >> 1) as usize;
        } else if raw != 1 {
            return Err(SliceFault::FieldLength(zigzag32(u64::from(raw))));
        }
    }
    if at > record.len() {
        return Err(SliceFault::Structure);
    }
    let headers_count = zigzag32(uvarint_at(record, &mut at, 5).ok_or(SliceFault::Structure)?);
    // Each header takes at least two bytes: a count past the record's end cannot parse, and the
    // check bounds the loop by the record's length.
    if headers_count < 0 || headers_count as usize > record.len().saturating_sub(at) {
        return Err(SliceFault::FieldLength(headers_count));
    }
    for _ in 0..headers_count {
        let raw = uvarint_at(record, &mut at, 5).ok_or(SliceFault::Structure)? as u32;
        if raw & 1 != 0 {
            return Err(SliceFault::FieldLength(zigzag32(u64::from(raw))));
        }
        at += (raw >> 1) as usize;
        let raw = uvarint_at(record, &mut at, 5).ok_or(SliceFault::Structure)? as u32;
        if raw & 1 == 0 {
            at += (raw >> 1) as usize;
        } else if raw != 1 {
            return Err(SliceFault::FieldLength(zigzag32(u64::from(raw))));
        }
    }
    match at.cmp(&record.len()) {
        std::cmp::Ordering::Equal => Ok((timestamp_delta, offset_delta)),
        std::cmp::Ordering::Greater => Err(SliceFault::Structure),
        std::cmp::Ordering::Less => Err(SliceFault::Short(at as i32)),
    }
}

/// Magic of the xerial snappy framing the Java client writes: `0x82 "SNAPPY" 0x00`, then a version
/// and a compatible version (two big-endian i32), then blocks of `length (i32) + raw snappy`.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_BYTES: usize = 16;

/// Snappy's densest element, a three-byte copy of 64 bytes, bounds what a block can decompress
/// to: at most 64/3 of its compressed size. A preamble claiming more is a lie, refused before
/// the block's buffer is allocated (so a tiny batch cannot make us allocate up to the cap).
const SNAPPY_EXPANSION_MAX: usize = 22;
const SNAPPY_EXPANSION_SLACK_BYTES: usize = 64;

/// Snappy as Kafka clients send it: xerial-framed blocks (Java) or one raw block (librdkafka;
/// both clients read either). Decompresses one block at a time into a reused buffer, each block's
/// size checked against what is left of the cap before anything is allocated.
struct SnappyReader<'a> {
    input: &'a [u8],
    xerial: bool,
    block: Vec<u8>,
    block_at: usize,
    budget_bytes: usize,
    decoder: snap::raw::Decoder,
}

impl<'a> SnappyReader<'a> {
    fn new(payload: &'a [u8], decompressed_bytes_max: usize) -> SnappyReader<'a> {
        let xerial = payload.len() >= XERIAL_HEADER_BYTES && payload[..8] == XERIAL_MAGIC;
        SnappyReader {
            input: if xerial { &payload[XERIAL_HEADER_BYTES..] } else { payload },
            xerial,
            block: Vec::new(),
            block_at: 0,
            budget_bytes: decompressed_bytes_max,
            decoder: snap::raw::Decoder::new(),
        }
    }

    /// Decompresses the next block into `self.block`; false when the input is exhausted.
    fn next_block(&mut self) -> io::Result<bool> {
        if self.input.is_empty() {
            return Ok(false);
        }
        let compressed = if self.xerial {
            let Some((length, rest)) = self.input.split_first_chunk::<4>() else {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated xerial block length"));
            };
            let length = i32::from_be_bytes(*length);
            let length = usize::try_from(length).ok().filter(|length| *length <= rest.len());
            let Some(length) = length else {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "xerial block length out of range"));
            };
            let (block, rest) = rest.split_at(length);
            self.input = rest;
            block
        } else {
            std::mem::take(&mut self.input)
        };
        let size = snap::raw::decompress_len(compressed).map_err(io::Error::other)?;
        if size > compressed.len().saturating_mul(SNAPPY_EXPANSION_MAX) + SNAPPY_EXPANSION_SLACK_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "snappy block claims more than it can hold"));
        }
        if size > self.budget_bytes {
            return Err(io::Error::new(io::ErrorKind::FileTooLarge, "decompressed size over the cap"));
        }
        self.budget_bytes -= size;
        self.block.clear();
        self.block.resize(size, 0);
        let written = self.decoder.decompress(compressed, &mut self.block).map_err(io::Error::other)?;
        self.block.truncate(written);
        self.block_at = 0;
        Ok(true)
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        // Bounded by the input: every round either returns or consumes a block header.
        loop {
            let available = self.block.len() - self.block_at;
            if available > 0 {
                let count = available.min(out.len());
                out[..count].copy_from_slice(&self.block[self.block_at..self.block_at + count]);
                self.block_at += count;
                return Ok(count);
            }
            if !self.next_block()? {
                return Ok(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::validate_one;
    use crate::limits::BATCH_HEADER_BYTES;
    use crate::testkit::{batch_around, compress, make_batch, make_compressed_batch, push_varint, record, snappy_raw};

    const CODECS: [Codec; 4] = [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd];
    const BASE_MS: i64 = 1_700_000_000_000;

    /// The one helper every case goes through: validate the header, walk the records.
    fn check(batch: &[u8]) -> Result<RecordsSummary, BatchError> {
        let header = validate_one(batch).expect("header and CRC are valid in these cases");
        walk_records(batch, &header)
    }

    fn with_length(body: &[u8], length: i64) -> Vec<u8> {
        let mut out = Vec::new();
        push_varint(&mut out, length);
        out.extend_from_slice(body);
        out
    }

    /// A record from its fields after the length (attributes onwards), length computed.
    fn raw_record(fields: &[u8]) -> Vec<u8> {
        with_length(fields, fields.len() as i64)
    }

    fn three() -> Vec<u8> {
        [record(0, 0, Some(b"a"), Some(b"1")), record(1, 5, Some(b"b"), Some(b"2")), record(2, 2, None, None)].concat()
    }

    #[test]
    fn golden_batch_walks() {
        // The hand-laid batch of `batch::tests`: one record, key "k", value "hello".
        let batch = make_batch(&[(b"k", b"hello")], 0x190_0000_0000);
        let summary = check(&batch).expect("valid");
        assert_eq!(summary.timestamp_min_ms, 0x190_0000_0000);
        assert_eq!(summary.timestamp_max_ms, 0x190_0000_0000);
        assert_eq!(summary.records_bytes, batch.len() - BATCH_HEADER_BYTES);
    }

    #[test]
    fn timestamps_span_the_records_and_none_is_left_out_of_the_minimum() {
        let summary = check(&batch_around(&three(), Codec::None, 3, 2, BASE_MS)).expect("valid");
        assert_eq!((summary.timestamp_min_ms, summary.timestamp_max_ms), (BASE_MS, BASE_MS + 5));
        let none = check(&batch_around(&record(0, 0, None, None), Codec::None, 1, 0, NO_TIMESTAMP)).expect("valid");
        assert_eq!((none.timestamp_min_ms, none.timestamp_max_ms), (i64::MAX, NO_TIMESTAMP));
    }

    #[test]
    fn records_with_headers_walk() {
        // attributes, ts delta 0, offset delta 0, key "k", value null, 2 headers: ("h1", "x"), ("h2", null).
        let mut fields = vec![0, 0, 0, 2, b'k', 1, 4];
        fields.extend_from_slice(&[4, b'h', b'1', 2, b'x', 4, b'h', b'2', 1]);
        let batch = batch_around(&raw_record(&fields), Codec::None, 1, 0, BASE_MS);
        assert!(check(&batch).is_ok());
        // A header key length of -1 is refused (Kafka: "Invalid negative header key size").
        let mut bad = vec![0, 0, 0, 2, b'k', 1, 2];
        bad.extend_from_slice(&[1, 2, b'x']);
        let batch = batch_around(&raw_record(&bad), Codec::None, 1, 0, BASE_MS);
        assert_eq!(check(&batch), Err(BatchError::FieldLengthInvalid { record_index: 0, length: -1 }));
    }

    #[test]
    fn each_malformed_uncompressed_batch_is_refused() {
        let one = record(0, 0, Some(b"key"), Some(b"value"));
        let body = &one[1..];
        let cases: Vec<(&str, Vec<u8>, BatchError)> = vec![
            (
                "record length -5",
                batch_around(&with_length(body, -5), Codec::None, 1, 0, BASE_MS),
                BatchError::RecordLengthInvalid { record_index: 0, length: -5 },
            ),
            (
                "record length 0",
                batch_around(&with_length(body, 0), Codec::None, 1, 0, BASE_MS),
                BatchError::RecordLengthInvalid { record_index: 0, length: 0 },
            ),
            (
                "record length past the batch",
                batch_around(&with_length(body, body.len() as i64 + 10), Codec::None, 1, 0, BASE_MS),
                BatchError::RecordMalformed { record_index: 0, detail: "record runs past the batch" },
            ),
            (
                "record one byte longer than its fields",
                batch_around(&[with_length(body, body.len() as i64 + 1), vec![0]].concat(), Codec::None, 1, 0, BASE_MS),
                BatchError::RecordLengthMismatch {
                    record_index: 0,
                    declared_bytes: body.len() as i32 + 1,
                    read_bytes: body.len() as i32,
                },
            ),
            (
                "key length -7",
                batch_around(&raw_record(&[0, 0, 0, 13, 2, b'v', 0]), Codec::None, 1, 0, BASE_MS),
                BatchError::FieldLengthInvalid { record_index: 0, length: -7 },
            ),
            (
                "value length -5",
                batch_around(&raw_record(&[0, 0, 0, 1, 9, 0]), Codec::None, 1, 0, BASE_MS),
                BatchError::FieldLengthInvalid { record_index: 0, length: -5 },
            ),
            (
                "key longer than the record",
                batch_around(&raw_record(&[0, 0, 0, 40, b'k', 1, 0]), Codec::None, 1, 0, BASE_MS),
                BatchError::RecordMalformed { record_index: 0, detail: "fields run past the record" },
            ),
            (
                "header count -1",
                batch_around(&raw_record(&[0, 0, 0, 1, 1, 1]), Codec::None, 1, 0, BASE_MS),
                BatchError::FieldLengthInvalid { record_index: 0, length: -1 },
            ),
            (
                "header count beyond the record",
                batch_around(&raw_record(&[0, 0, 0, 1, 1, 100]), Codec::None, 1, 0, BASE_MS),
                BatchError::FieldLengthInvalid { record_index: 0, length: 50 },
            ),
            (
                "over-long varint",
                batch_around(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01], Codec::None, 1, 0, BASE_MS),
                BatchError::RecordMalformed { record_index: 0, detail: "over-long length varint" },
            ),
            (
                "count 0x7fffffff, one record",
                batch_around(&one, Codec::None, i32::MAX, i32::MAX - 1, BASE_MS),
                BatchError::RecordsMissing { records_count: i32::MAX as u32, records_found: 1 },
            ),
            (
                "count 5, one record",
                batch_around(&one, Codec::None, 5, 4, BASE_MS),
                BatchError::RecordsMissing { records_count: 5, records_found: 1 },
            ),
            (
                "count 1, three records",
                batch_around(&three(), Codec::None, 1, 0, BASE_MS),
                BatchError::TrailingBytes { records_count: 1 },
            ),
            (
                "a byte after the last record",
                batch_around(&[one.clone(), vec![0]].concat(), Codec::None, 1, 0, BASE_MS),
                { BatchError::TrailingBytes { records_count: 1 } },
            ),
            ("empty batch", batch_around(&[], Codec::None, 0, 0, BASE_MS), BatchError::NoRecords),
            (
                "offset deltas 0, 0, 1",
                batch_around(
                    &[one.clone(), one.clone(), record(1, 0, None, None)].concat(),
                    Codec::None,
                    3,
                    2,
                    BASE_MS,
                ),
                BatchError::OffsetDeltaMismatch { record_index: 1, offset_delta: 0 },
            ),
        ];
        for (name, batch, expected) in cases {
            assert_eq!(check(&batch), Err(expected.clone()), "{name}");
            // The same records compressed go through the streaming walk: refused the same way,
            // except where only a slice knows its end in advance.
            let count = i32::from_be_bytes([batch[57], batch[58], batch[59], batch[60]]);
            let delta = i32::from_be_bytes([batch[23], batch[24], batch[25], batch[26]]);
            for codec in CODECS {
                let compressed =
                    batch_around(&compress(codec, &batch[BATCH_HEADER_BYTES..]), codec, count, delta, BASE_MS);
                let header = validate_one(&compressed).expect("valid header");
                // A 16-byte stream buffer: records straddle refills and take the byte-wise path.
                let results = [check(&compressed), walk_records_with::<16>(&compressed, &header, RecordBounds::NONE)];
                for result in results {
                    match name {
                        "record length past the batch" => assert!(result.is_err(), "{name} {codec:?}"),
                        _ => assert_eq!(result, Err(expected.clone()), "{name} {codec:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn every_codec_walks_valid_batches() {
        let value = vec![b'x'; 70_000]; // more than one xerial block and one lz4 block
        let records: Vec<(&[u8], &[u8])> = vec![(b"a", &value), (b"b", b"short"), (b"c", &value)];
        let plain = make_batch(&records, BASE_MS);
        for codec in CODECS {
            let batch = make_compressed_batch(&records, BASE_MS, codec);
            let summary = check(&batch).unwrap_or_else(|error| panic!("{codec:?}: {error}"));
            assert_eq!(summary.records_bytes, plain.len() - BATCH_HEADER_BYTES, "{codec:?}");
            assert_eq!(summary.timestamp_max_ms, BASE_MS + 2, "{codec:?}");
        }
        let raw = batch_around(&snappy_raw(&plain[BATCH_HEADER_BYTES..]), Codec::Snappy, 3, 2, BASE_MS);
        assert!(check(&raw).is_ok(), "librdkafka's raw snappy block");
    }

    #[test]
    fn every_codec_refuses_corrupt_and_miscounted_payloads() {
        let garbage: Vec<u8> = (0..200u32).map(|index| (index * 37 + 11) as u8).collect();
        for codec in CODECS {
            let is_decompression = |result: Result<RecordsSummary, BatchError>| matches!(result, Err(BatchError::Decompression { codec: id, .. }) if id == codec.id());
            assert!(is_decompression(check(&batch_around(&garbage, codec, 1, 0, BASE_MS))), "{codec:?} garbage");
            let mut cut = compress(codec, &three());
            cut.truncate(cut.len() - 3);
            assert!(is_decompression(check(&batch_around(&cut, codec, 3, 2, BASE_MS))), "{codec:?} cut short");
            let mut flipped = compress(codec, &three());
            let middle = flipped.len() / 2;
            flipped[middle] ^= 0x55;
            // Only gzip carries a checksum by default: elsewhere a flipped literal is just other data.
            let flipped = check(&batch_around(&flipped, codec, 3, 2, BASE_MS));
            assert!(codec != Codec::Gzip || flipped.is_err(), "{codec:?} bit flips");
            assert_eq!(
                check(&batch_around(&compress(codec, &three()), codec, 1, 0, BASE_MS)),
                Err(BatchError::TrailingBytes { records_count: 1 }),
                "{codec:?} count 1, three records"
            );
            assert_eq!(
                check(&batch_around(&compress(codec, &three()), codec, 5, 4, BASE_MS)),
                Err(BatchError::RecordsMissing { records_count: 5, records_found: 3 }),
                "{codec:?} count 5, three records"
            );
            assert_eq!(check(&batch_around(&compress(codec, &[]), codec, 0, 0, BASE_MS)), Err(BatchError::NoRecords));
        }
    }

    fn cap(decompressed_bytes_max: usize) -> RecordBounds {
        RecordBounds { decompressed_bytes_max, ..RecordBounds::NONE }
    }

    #[test]
    fn a_compressed_record_declaring_more_than_the_record_bound_is_refused_an_uncompressed_one_not() {
        let value = vec![b'v'; 4096];
        let records: Vec<(&[u8], &[u8])> = vec![(b"k", b"small"), (b"k", &value), (b"k", b"small")];
        let declared = |batch: &[u8]| {
            // The second record's length varint follows the first record.
            let header = validate_one(batch).expect("valid");
            let bounds = RecordBounds { decompressed_record_bytes_max: usize::MAX, ..RecordBounds::NONE };
            walk_records_bounded(batch, &header, bounds).expect("walks without a record bound");
            header
        };
        for codec in CODECS {
            let batch = make_compressed_batch(&records, BASE_MS, codec);
            let header = declared(&batch);
            let bounded = |limit: usize| {
                walk_records_bounded(
                    &batch,
                    &header,
                    RecordBounds { decompressed_record_bytes_max: limit, ..RecordBounds::NONE },
                )
            };
            match bounded(512) {
                Err(BatchError::DecompressedRecordTooLarge { record_index: 1, length, limit_bytes: 512 }) => {
                    // The body: attributes, timestamp and offset deltas, key and value with their
                    // lengths, headers count.
                    assert!((4096..4096 + 16).contains(&(length as usize)), "{codec:?}: {length}");
                    assert!(bounded(length as usize).is_ok(), "{codec:?}: a record of exactly the bound passes");
                    assert!(bounded(length as usize - 1).is_err(), "{codec:?}: one byte less refuses it");
                }
                other => panic!("{codec:?}: {other:?}"),
            }
        }
        let plain = make_batch(&records, BASE_MS);
        let header = declared(&plain);
        let bounds = RecordBounds { decompressed_record_bytes_max: 512, ..RecordBounds::NONE };
        assert!(walk_records_bounded(&plain, &header, bounds).is_ok(), "uncompressed records are not bounded by it");
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_cap() {
        // One record whose value is 4 MiB of zeros: a few KiB compressed.
        let value = vec![0u8; 4 << 20];
        for codec in CODECS {
            let batch = make_compressed_batch(&[(b"k", &value)], BASE_MS, codec);
            assert!(batch.len() < 256 << 10, "{codec:?} compresses the bomb ({} bytes)", batch.len());
            let header = validate_one(&batch).expect("valid");
            assert_eq!(
                walk_records_bounded(&batch, &header, cap(1 << 20)),
                Err(BatchError::DecompressedTooLarge { limit_bytes: 1 << 20 }),
                "{codec:?}"
            );
            assert!(walk_records_bounded(&batch, &header, cap(5 << 20)).is_ok(), "{codec:?} under the cap");
        }
    }

    #[test]
    fn a_snappy_block_claiming_more_than_it_can_hold_is_refused_before_allocating() {
        // A raw block whose preamble says 60 MiB, followed by a few bytes.
        let mut lying = Vec::new();
        let mut size = 60u64 << 20;
        while size >= 0x80 {
            lying.push((size as u8) | 0x80);
            size >>= 7;
        }
        lying.push(size as u8);
        lying.extend_from_slice(&[0, 0, 0, 0]);
        let batch = batch_around(&lying, Codec::Snappy, 1, 0, BASE_MS);
        assert!(
            matches!(check(&batch), Err(BatchError::Decompression { detail, .. }) if detail.contains("claims more")),
            "{:?}",
            check(&batch)
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let seed: u64 = std::env::var("SEED").ok().and_then(|text| text.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |elapsed| elapsed.as_nanos() as u64)
        });
        println!("SEED={seed}");
        let mut rng = crate::io::sim::SimRng::new(seed);
        let mut next = move || rng.next_u64();
        let bases: Vec<Vec<u8>> = [Codec::None, Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd]
            .into_iter()
            .map(|codec| batch_around(&compress(codec, &three()), codec, 3, 2, BASE_MS))
            .collect();
        for _ in 0..3000 {
            let mut batch = bases[(next() % bases.len() as u64) as usize].clone();
            for _ in 0..1 + next() % 4 {
                let at = BATCH_HEADER_BYTES + (next() as usize) % (batch.len() - BATCH_HEADER_BYTES);
                batch[at] = next() as u8;
            }
            let count = [1, 2, 3, 4, i32::MAX][(next() % 5) as usize];
            batch[57..61].copy_from_slice(&count.to_be_bytes());
            batch[23..27].copy_from_slice(&(count - 1).to_be_bytes());
            crate::batch::reseal_crc(&mut batch);
            let header = validate_one(&batch).expect("valid header");
            let whole = walk_records(&batch, &header);
            // The byte-wise path (records straddling refills) decides the same.
            let small = walk_records_with::<16>(&batch, &header, RecordBounds::NONE);
            // When the decoder fails, which of it and the walk notices first depends on how much
            // output each read returns: both must refuse. Otherwise they decide the same.
            let decoder_failed =
                |result: &Result<RecordsSummary, BatchError>| matches!(result, Err(BatchError::Decompression { .. }));
            if decoder_failed(&small) || decoder_failed(&whole) {
                assert!(small.is_err() && whole.is_err(), "SEED={seed}: {small:?} / {whole:?}");
            } else {
                assert_eq!(small, whole, "SEED={seed}");
            }
        }
    }
}
