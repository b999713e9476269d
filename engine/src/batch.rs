//! Kafka v2 record batch headers: validation, offset assignment, and the few record-level reads
//! the engine needs (timestamp lookup).
//!
//! Owns: the byte layout of a batch header (see `docs/formats/segment-v1.md`). Knows nothing of
//! files, segments or the Kafka request that carried the batch.
//!
//! ```text
//! off size field                    off size field
//!   0    8 baseOffset (outside CRC)  27    8 baseTimestamp
//!   8    4 batchLength               35    8 maxTimestamp
//!  12    4 partitionLeaderEpoch      43    8 producerId
//!  16    1 magic = 2                 51    2 producerEpoch
//!  17    4 crc (CRC-32C of [21..))   53    4 baseSequence
//!  21    2 attributes                57    4 recordsCount
//!  23    4 lastOffsetDelta           61      records ...
//! ```
//! `baseOffset` and `partitionLeaderEpoch` lie outside the CRC, so the engine assigns offsets by
//! rewriting them, without decompressing or re-checksumming.

use crate::error::BatchError;
use crate::limits::BATCH_HEADER_BYTES;
use crate::records::RecordsSummary;

pub const BASE_OFFSET_AT: usize = 0;
pub const BATCH_LENGTH_AT: usize = 8;
pub const LEADER_EPOCH_AT: usize = 12;
pub const MAGIC_AT: usize = 16;
pub const CRC_AT: usize = 17;
pub const ATTRIBUTES_AT: usize = 21;
pub const LAST_OFFSET_DELTA_AT: usize = 23;
pub const BASE_TIMESTAMP_AT: usize = 27;
pub const MAX_TIMESTAMP_AT: usize = 35;
pub const PRODUCER_ID_AT: usize = 43;
pub const PRODUCER_EPOCH_AT: usize = 51;
pub const BASE_SEQUENCE_AT: usize = 53;
pub const RECORDS_COUNT_AT: usize = 57;
pub const RECORDS_AT: usize = BATCH_HEADER_BYTES;

/// The bytes before `batchLength`'s coverage starts: a batch occupies `LOG_OVERHEAD + batchLength`.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// Bytes needed to know a batch's size and its offset range (everything up to `lastOffsetDelta`).
pub const PREFIX_BYTES: usize = LAST_OFFSET_DELTA_AT + 4;

pub const MAGIC_V2: i8 = 2;
pub const CODEC_MASK: u16 = 0x07;

/// Compression codec in the low three attribute bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    pub fn from_attributes(attributes: u16) -> Result<Codec, BatchError> {
        match attributes & CODEC_MASK {
            0 => Ok(Codec::None),
            1 => Ok(Codec::Gzip),
            2 => Ok(Codec::Snappy),
            3 => Ok(Codec::Lz4),
            4 => Ok(Codec::Zstd),
            codec => Err(BatchError::UnknownCodec { codec }),
        }
    }

    pub fn id(self) -> u16 {
        match self {
            Codec::None => 0,
            Codec::Gzip => 1,
            Codec::Snappy => 2,
            Codec::Lz4 => 3,
            Codec::Zstd => 4,
        }
    }
}

/// The header fields the engine reads, decoded from a batch that passed validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: u64,
    /// Total bytes of the batch, `LOG_OVERHEAD_BYTES + batchLength`.
    pub size_bytes: usize,
    pub partition_leader_epoch: i32,
    pub attributes: u16,
    pub last_offset_delta: u32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: u32,
}

impl BatchHeader {
    pub fn codec(&self) -> Codec {
        // Validation already rejected unknown codecs.
        Codec::from_attributes(self.attributes).unwrap_or(Codec::None)
    }

    pub fn last_offset(&self) -> u64 {
        self.base_offset + u64::from(self.last_offset_delta)
    }
}

fn be_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn be_i32(bytes: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn be_i64(bytes: &[u8], at: usize) -> i64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    i64::from_be_bytes(raw)
}

/// Size and offset range of the batch starting at `bytes[0]`, from its first
/// [`PREFIX_BYTES`] bytes. No CRC check: used when walking batches already on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPrefix {
    pub base_offset: u64,
    pub size_bytes: usize,
    pub last_offset_delta: u32,
}

impl BatchPrefix {
    pub fn last_offset(&self) -> u64 {
        self.base_offset + u64::from(self.last_offset_delta)
    }
}

/// Decodes a batch prefix; rejects lengths that cannot be a v2 batch.
pub fn parse_prefix(bytes: &[u8]) -> Result<BatchPrefix, BatchError> {
    if bytes.len() < PREFIX_BYTES {
        return Err(BatchError::Truncated { needed_bytes: PREFIX_BYTES, available_bytes: bytes.len() });
    }
    let length = be_i32(bytes, BATCH_LENGTH_AT);
    if length < (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32 {
        return Err(BatchError::LengthTooSmall { length });
    }
    let magic = bytes[MAGIC_AT] as i8;
    if magic != MAGIC_V2 {
        return Err(BatchError::UnsupportedMagic { magic });
    }
    let last_offset_delta = be_i32(bytes, LAST_OFFSET_DELTA_AT);
    if last_offset_delta < 0 {
        return Err(BatchError::NegativeLastOffsetDelta { last_offset_delta });
    }
    Ok(BatchPrefix {
        base_offset: be_i64(bytes, BASE_OFFSET_AT) as u64,
        size_bytes: LOG_OVERHEAD_BYTES + length as usize,
        last_offset_delta: last_offset_delta as u32,
    })
}

/// Validates the one batch that starts at `bytes[0]` (it may be followed by more) and decodes its
/// header: length within `bytes`, magic 2, known codec, CRC-32C, consistent counts.
pub fn validate_one(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    if bytes.is_empty() {
        return Err(BatchError::Empty);
    }
    if bytes.len() < BATCH_HEADER_BYTES {
        return Err(BatchError::Truncated { needed_bytes: BATCH_HEADER_BYTES, available_bytes: bytes.len() });
    }
    let prefix = parse_prefix(bytes)?;
    if bytes.len() < prefix.size_bytes {
        return Err(BatchError::Truncated { needed_bytes: prefix.size_bytes, available_bytes: bytes.len() });
    }
    let batch = &bytes[..prefix.size_bytes];
    let expected = be_u32(batch, CRC_AT);
    let actual = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    if expected != actual {
        return Err(BatchError::CrcMismatch { expected, actual });
    }
    let attributes = be_u16(batch, ATTRIBUTES_AT);
    Codec::from_attributes(attributes)?;
    let records_count = be_i32(batch, RECORDS_COUNT_AT);
    let last_offset_delta = prefix.last_offset_delta as i32;
    // Producers always number records 0..count-1; an empty batch (count 0) keeps its delta.
    if records_count < 0 || (records_count > 0 && last_offset_delta != records_count - 1) {
        return Err(BatchError::RecordsCountMismatch { records_count, last_offset_delta });
    }
    Ok(BatchHeader {
        base_offset: prefix.base_offset,
        size_bytes: prefix.size_bytes,
        partition_leader_epoch: be_i32(batch, LEADER_EPOCH_AT),
        attributes,
        last_offset_delta: prefix.last_offset_delta,
        base_timestamp: be_i64(batch, BASE_TIMESTAMP_AT),
        max_timestamp: be_i64(batch, MAX_TIMESTAMP_AT),
        producer_id: be_i64(batch, PRODUCER_ID_AT),
        producer_epoch: be_u16(batch, PRODUCER_EPOCH_AT) as i16,
        base_sequence: be_i32(batch, BASE_SEQUENCE_AT),
        records_count: records_count as u32,
    })
}

/// Validates every batch in `bytes` (one or more batches back to back, nothing else) and returns
/// their headers in order.
pub fn validate_all(bytes: &[u8]) -> Result<Vec<BatchHeader>, BatchError> {
    if bytes.is_empty() {
        return Err(BatchError::Empty);
    }
    let mut headers = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let header = validate_one(&bytes[at..])?;
        at += header.size_bytes;
        headers.push(header);
    }
    Ok(headers)
}

/// A produced batch that passed every check: its header and what its records showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckedBatch {
    pub header: BatchHeader,
    pub records: RecordsSummary,
}

/// The produce path's validation of `bytes` (batches back to back, nothing else): for each batch
/// [`validate_one`] (layout, CRC) then [`crate::records::walk_records`] (every record), one batch
/// at a time while its bytes are in cache.
pub fn validate_all_with_records(bytes: &[u8]) -> Result<Vec<CheckedBatch>, BatchError> {
    let mut unlimited = usize::MAX;
    validate_all_with_records_within(bytes, &mut unlimited, usize::MAX)
}

/// [`validate_all_with_records`] with one decompression allowance shared by several calls (the
/// batches of one request): a compressed batch may decompress at most what
/// `decompressed_bytes_left` still allows (and at most `RECORDS_DECOMPRESSED_BYTES_MAX`), and its
/// decompressed size is taken from it. Bounds the CPU one request can spend decompressing, even
/// when it names the same partition many times. A record of a compressed batch may declare at
/// most `decompressed_record_bytes_max` bytes (the log's `max.decompressed.message.bytes`).
pub fn validate_all_with_records_within(
    bytes: &[u8],
    decompressed_bytes_left: &mut usize,
    decompressed_record_bytes_max: usize,
) -> Result<Vec<CheckedBatch>, BatchError> {
    if bytes.is_empty() {
        return Err(BatchError::Empty);
    }
    let mut batches = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let header = validate_one(&bytes[at..])?;
        let bounds = crate::records::RecordBounds {
            decompressed_bytes_max: *decompressed_bytes_left,
            decompressed_record_bytes_max,
        };
        let records = crate::records::walk_records_bounded(&bytes[at..at + header.size_bytes], &header, bounds)?;
        if header.codec() != Codec::None {
            *decompressed_bytes_left = decompressed_bytes_left.saturating_sub(records.records_bytes);
        }
        at += header.size_bytes;
        batches.push(CheckedBatch { header, records });
    }
    Ok(batches)
}

/// Record batches that passed validation (structure, CRC-32C, every record): the only input of
/// `Shard::append_validated`, so appended bytes are checked exactly once.
///
/// The fields are private: a value exists only through [`ValidatedBatches::validate`],
/// [`ValidatedBatches::validate_within`] or the codec conversion of one
/// ([`crate::compression::convert_validated`]), so holding one is proof that its bytes were checked.
#[derive(Clone, Debug)]
pub struct ValidatedBatches {
    bytes: bytes::Bytes,
    batches: Vec<CheckedBatch>,
}

impl ValidatedBatches {
    /// [`validate_all_with_records`] keeping the bytes it checked.
    pub fn validate(bytes: bytes::Bytes) -> Result<ValidatedBatches, BatchError> {
        let batches = validate_all_with_records(&bytes)?;
        Ok(ValidatedBatches { bytes, batches })
    }

    /// [`validate_all_with_records_within`] keeping the bytes it checked.
    pub fn validate_within(
        bytes: bytes::Bytes,
        decompressed_bytes_left: &mut usize,
        decompressed_record_bytes_max: usize,
    ) -> Result<ValidatedBatches, BatchError> {
        let batches = validate_all_with_records_within(&bytes, decompressed_bytes_left, decompressed_record_bytes_max)?;
        Ok(ValidatedBatches { bytes, batches })
    }

    /// The batches back to back, as they were validated.
    pub fn bytes(&self) -> &bytes::Bytes {
        &self.bytes
    }

    /// One entry per batch, in order (never empty: validation rejects empty input).
    pub fn batches(&self) -> &[CheckedBatch] {
        &self.batches
    }

    /// The header of each batch, in order.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = &BatchHeader> + Clone {
        self.batches.iter().map(|checked| &checked.header)
    }

    /// Total bytes of the batches.
    pub fn size_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Batches re-encoded by [`crate::compression::convert_validated`] from batches that passed
    /// validation: the same records (so the same summaries) under headers checked again.
    pub(crate) fn converted(bytes: bytes::Bytes, batches: Vec<CheckedBatch>) -> ValidatedBatches {
        ValidatedBatches { bytes, batches }
    }

    /// Wraps bytes and headers without checking them: lets a test show that appending a
    /// `ValidatedBatches` does not validate again.
    #[cfg(test)]
    pub(crate) fn trusted_for_test(bytes: bytes::Bytes, batches: Vec<CheckedBatch>) -> ValidatedBatches {
        ValidatedBatches { bytes, batches }
    }
}

/// Rewrites the two fields outside the CRC: base offset and partition leader epoch.
pub fn assign(batch: &mut [u8], base_offset: u64, leader_epoch: i32) {
    assert!(batch.len() >= BATCH_HEADER_BYTES, "assign on a validated batch only");
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    batch[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// The attributes bit of a batch whose timestamp is the broker's append time (Kafka's
/// `LOG_APPEND_TIME`): a reader takes `max_timestamp` as every record's timestamp.
pub const LOG_APPEND_TIME_BIT: u16 = 0x08;

/// Marks a validated batch as appended at `now_ms` (Kafka's `message.timestamp.type=LogAppendTime`):
/// sets [`LOG_APPEND_TIME_BIT`] and `max_timestamp`, then the CRC, as Kafka's broker does. The
/// records' own timestamps stay as the producer wrote them.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    assert!(batch.len() >= BATCH_HEADER_BYTES, "set_log_append_time on a validated batch only");
    let attributes = be_u16(batch, ATTRIBUTES_AT) | LOG_APPEND_TIME_BIT;
    batch[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
    reseal_crc(batch);
}

/// Recomputes and stores the CRC after the covered bytes changed (codec conversion).
pub fn reseal_crc(batch: &mut [u8]) {
    assert!(batch.len() >= BATCH_HEADER_BYTES, "reseal on a batch header only");
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

fn read_varint(bytes: &[u8], at: &mut usize) -> Option<i64> {
    let mut value: u64 = 0;
    let mut shift = 0;
    loop {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    // Zig-zag decoding.
    Some(((value >> 1) as i64) ^ -((value & 1) as i64))
}

/// For an uncompressed batch, the offset delta and timestamp of the first record whose timestamp
/// is at least `target_ms`. `None` when no record qualifies or the records do not parse.
pub fn first_record_at_or_after(batch: &[u8], header: &BatchHeader, target_ms: i64) -> Option<(u32, i64)> {
    if header.codec() != Codec::None {
        return None;
    }
    let mut at = RECORDS_AT;
    for _ in 0..header.records_count {
        let length = read_varint(batch, &mut at)?;
        let record_end = at.checked_add(usize::try_from(length).ok()?)?;
        if record_end > batch.len() {
            return None;
        }
        at += 1; // attributes
        let timestamp_delta = read_varint(batch, &mut at)?;
        let offset_delta = read_varint(batch, &mut at)?;
        let timestamp = header.base_timestamp.saturating_add(timestamp_delta);
        if timestamp >= target_ms {
            return Some((u32::try_from(offset_delta).ok()?, timestamp));
        }
        at = record_end;
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    pub(crate) use crate::testkit::make_batch;

    /// One record, key "k", value "hello", base timestamp 0x190_0000_0000, laid out by hand from
    /// Kafka's spec; the CRC was computed by an independent bitwise CRC-32C (Python), not by us.
    const GOLDEN_BATCH: &str = "0000000000000000 0000003e ffffffff 02 24a553cc \
        0000 00000000 0000019000000000 0000019000000000 ffffffffffffffff ffff ffffffff 00000001 \
        18 00 00 00 02 6b 0a 68656c6c6f 00";

    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex"))
            .collect()
    }

    #[test]
    fn golden_batch_decodes_field_by_field_and_matches_our_builder() {
        let batch = hex(GOLDEN_BATCH);
        let header = validate_one(&batch).expect("valid");
        assert_eq!(header.size_bytes, batch.len());
        assert_eq!(header.size_bytes, 12 + 0x3e);
        assert_eq!(header.base_offset, 0);
        assert_eq!(header.partition_leader_epoch, -1);
        assert_eq!(header.attributes, 0);
        assert_eq!(header.last_offset_delta, 0);
        assert_eq!(header.base_timestamp, 0x0000_0190_0000_0000);
        assert_eq!(header.max_timestamp, 0x0000_0190_0000_0000);
        assert_eq!(header.producer_id, -1);
        assert_eq!(header.producer_epoch, -1);
        assert_eq!(header.base_sequence, -1);
        assert_eq!(header.records_count, 1);
        assert_eq!(make_batch(&[(b"k", b"hello")], 0x190_0000_0000), batch);
    }

    #[test]
    fn assign_rewrites_exactly_the_fields_outside_the_crc() {
        let original = make_batch(&[(b"k", b"v1"), (b"k", b"v2")], 1_000);
        let mut batch = original.clone();
        assign(&mut batch, 0x0102_0304_0506_0708, 7);
        assert_eq!(&batch[0..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&batch[12..16], &[0, 0, 0, 7]);
        assert_eq!(&batch[8..12], &original[8..12]);
        assert_eq!(&batch[16..], &original[16..]);
        // The CRC still holds: offsets are outside its coverage.
        assert_eq!(validate_one(&batch).expect("valid").base_offset, 0x0102_0304_0506_0708);
    }

    #[test]
    fn crc_over_attributes_to_end_known_answer() {
        // RFC 3720 known answer for 32 zero bytes, the same function the batch CRC uses.
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8A91_36AA);
    }

    #[test]
    fn rejects_each_kind_of_bad_input() {
        let good = make_batch(&[(b"a", b"b")], 5);
        assert_eq!(validate_all(&[]), Err(BatchError::Empty));
        assert!(matches!(validate_one(&good[..30]), Err(BatchError::Truncated { .. })));
        assert!(matches!(validate_one(&good[..good.len() - 1]), Err(BatchError::Truncated { .. })));

        let mut bad_magic = good.clone();
        bad_magic[MAGIC_AT] = 1;
        assert_eq!(validate_one(&bad_magic), Err(BatchError::UnsupportedMagic { magic: 1 }));

        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        assert!(matches!(validate_one(&flipped), Err(BatchError::CrcMismatch { .. })));

        let mut short_length = good.clone();
        short_length[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&10i32.to_be_bytes());
        assert_eq!(validate_one(&short_length), Err(BatchError::LengthTooSmall { length: 10 }));

        let mut codec = good.clone();
        codec[ATTRIBUTES_AT + 1] = 7;
        reseal_crc(&mut codec);
        assert_eq!(validate_one(&codec), Err(BatchError::UnknownCodec { codec: 7 }));

        let mut count = good.clone();
        count[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&5i32.to_be_bytes());
        reseal_crc(&mut count);
        assert!(matches!(validate_one(&count), Err(BatchError::RecordsCountMismatch { .. })));

        let mut trailing = good.clone();
        trailing.extend_from_slice(&[0, 0, 0]);
        assert!(matches!(validate_all(&trailing), Err(BatchError::Truncated { .. })));
    }

    #[test]
    fn validate_all_walks_concatenated_batches() {
        let mut bytes = make_batch(&[(b"a", b"1")], 1);
        bytes.extend(make_batch(&[(b"b", b"2"), (b"c", b"3"), (b"d", b"4")], 2));
        let headers = validate_all(&bytes).expect("valid");
        assert_eq!(headers.len(), 2);
        assert_eq!(headers[1].records_count, 3);
        assert_eq!(headers[1].last_offset_delta, 2);
    }

    #[test]
    fn record_level_timestamp_lookup() {
        let batch = make_batch(&[(b"a", b"1"), (b"b", b"2"), (b"c", b"3")], 100);
        let header = validate_one(&batch).expect("valid");
        assert_eq!(first_record_at_or_after(&batch, &header, 0), Some((0, 100)));
        assert_eq!(first_record_at_or_after(&batch, &header, 101), Some((1, 101)));
        assert_eq!(first_record_at_or_after(&batch, &header, 102), Some((2, 102)));
        assert_eq!(first_record_at_or_after(&batch, &header, 103), None);
    }

    #[test]
    fn garbage_never_panics() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for length in 0..400 {
            let bytes: Vec<u8> = (0..length)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let _ = validate_all(&bytes);
            let _ = parse_prefix(&bytes);
        }
    }
}
