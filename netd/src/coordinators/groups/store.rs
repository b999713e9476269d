//! The durable form of committed offsets: records in the internal `__consumer_offsets-<n>`
//! partition logs, in Kafka's own key/value schemas (offset commit key v1, value v3; a null
//! value is a tombstone), packed in ordinary uncompressed v2 record batches. See
//! `docs/formats/consumer-offsets.md`.
//!
//! Owns: building those batches and reading them back at start-up. Pure: no I/O, never panics
//! on input (a record it cannot parse is reported and skipped).

use bytes::{BufMut, BytesMut};

/// Key version of an offset commit (Kafka's `OffsetCommitKey` v1).
pub const OFFSET_KEY_VERSION: i16 = 1;
/// Value version written (Kafka's `OffsetCommitValue` v3: offset, leader epoch, metadata, time).
pub const OFFSET_VALUE_VERSION: i16 = 3;

/// One committed offset as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// A record of the offsets log: a commit, or a tombstone (`value: None`) that deletes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetRecord {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub value: Option<CommittedOffset>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("record truncated")]
    Truncated,
    #[error("unsupported key version {0}")]
    KeyVersion(i16),
    #[error("unsupported value version {0}")]
    ValueVersion(i16),
    #[error("string is not UTF-8")]
    Utf8,
    #[error("compressed batch in the offsets log")]
    Compressed,
}

fn put_string(buffer: &mut BytesMut, text: &str) {
    let bytes = text.as_bytes();
    let length = i16::try_from(bytes.len()).unwrap_or(i16::MAX);
    buffer.put_i16(length);
    buffer.put_slice(&bytes[..length as usize]);
}

fn put_varint(buffer: &mut BytesMut, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        buffer.put_u8((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    buffer.put_u8(zigzag as u8);
}

fn encode_key(record: &OffsetRecord) -> BytesMut {
    let mut key = BytesMut::new();
    key.put_i16(OFFSET_KEY_VERSION);
    put_string(&mut key, &record.group);
    put_string(&mut key, &record.topic);
    key.put_i32(record.partition);
    key
}

fn encode_value(value: &CommittedOffset) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_i16(OFFSET_VALUE_VERSION);
    out.put_i64(value.offset);
    out.put_i32(value.leader_epoch);
    put_string(&mut out, &value.metadata);
    out.put_i64(value.commit_timestamp_ms);
    out
}

/// An upper bound of the bytes `record` takes in a batch (key, value and record framing).
pub fn record_bytes_max(record: &OffsetRecord) -> usize {
    const FRAMING_BYTES_MAX: usize = 64;
    let value_bytes = record.value.as_ref().map_or(0, |value| value.metadata.len());
    record.group.len() + record.topic.len() + value_bytes + FRAMING_BYTES_MAX
}

/// One uncompressed v2 batch holding `records` (base offset 0: the engine assigns offsets).
pub fn encode_batch(records: &[OffsetRecord], timestamp_ms: i64) -> Vec<u8> {
    assert!(!records.is_empty(), "a batch holds at least one record");
    let mut body = BytesMut::new();
    for (index, record) in records.iter().enumerate() {
        let key = encode_key(record);
        let value = record.value.as_ref().map(encode_value);
        let mut inner = BytesMut::new();
        inner.put_i8(0); // attributes
        put_varint(&mut inner, 0); // timestamp delta
        put_varint(&mut inner, index as i64); // offset delta
        put_varint(&mut inner, key.len() as i64);
        inner.put_slice(&key);
        match &value {
            Some(value) => {
                put_varint(&mut inner, value.len() as i64);
                inner.put_slice(value);
            }
            None => put_varint(&mut inner, -1),
        }
        put_varint(&mut inner, 0); // headers
        put_varint(&mut body, inner.len() as i64);
        body.put_slice(&inner);
    }
    let mut batch = BytesMut::with_capacity(engine::batch::RECORDS_AT + body.len());
    batch.put_i64(0); // base offset
    batch.put_i32((engine::batch::RECORDS_AT - engine::batch::LOG_OVERHEAD_BYTES + body.len()) as i32);
    batch.put_i32(0); // partition leader epoch
    batch.put_i8(engine::batch::MAGIC_V2);
    batch.put_u32(0); // crc, sealed below
    batch.put_i16(0); // attributes: no codec, create time
    batch.put_i32(records.len() as i32 - 1);
    batch.put_i64(timestamp_ms);
    batch.put_i64(timestamp_ms);
    batch.put_i64(-1); // producer id
    batch.put_i16(-1);
    batch.put_i32(-1);
    batch.put_i32(records.len() as i32);
    batch.put_slice(&body);
    let mut batch = batch.to_vec();
    engine::batch::reseal_crc(&mut batch);
    batch
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], StoreError> {
        if self.bytes.len() < count {
            return Err(StoreError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Ok(head)
    }

    fn i16(&mut self) -> Result<i16, StoreError> {
        let bytes = self.take(2)?;
        Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn i32(&mut self) -> Result<i32, StoreError> {
        let bytes = self.take(4)?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn i64(&mut self) -> Result<i64, StoreError> {
        let mut out = [0u8; 8];
        out.copy_from_slice(self.take(8)?);
        Ok(i64::from_be_bytes(out))
    }

    fn string(&mut self) -> Result<String, StoreError> {
        let length = self.i16()?;
        if length < 0 {
            return Ok(String::new());
        }
        let bytes = self.take(length as usize)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| StoreError::Utf8)
    }

    fn varint(&mut self) -> Result<i64, StoreError> {
        let mut value: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << shift.min(63);
            if byte & 0x80 == 0 {
                return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
            }
        }
        Err(StoreError::Truncated)
    }

    /// A varint length then that many bytes; `None` for length −1.
    fn sized(&mut self) -> Result<Option<&'a [u8]>, StoreError> {
        let length = self.varint()?;
        if length < 0 {
            return Ok(None);
        }
        Ok(Some(self.take(usize::try_from(length).map_err(|_| StoreError::Truncated)?)?))
    }
}

fn decode_record(key: &[u8], value: Option<&[u8]>) -> Result<OffsetRecord, StoreError> {
    let mut key = Reader { bytes: key };
    let version = key.i16()?;
    if version != 0 && version != 1 {
        return Err(StoreError::KeyVersion(version));
    }
    let group = key.string()?;
    let topic = key.string()?;
    let partition = key.i32()?;
    let value = match value {
        None => None,
        Some(bytes) => {
            let mut value = Reader { bytes };
            let version = value.i16()?;
            match version {
                1 | 3 => {
                    let offset = value.i64()?;
                    let leader_epoch = if version == 3 { value.i32()? } else { -1 };
                    let metadata = value.string()?;
                    let commit_timestamp_ms = value.i64()?;
                    Some(CommittedOffset { offset, leader_epoch, metadata, commit_timestamp_ms })
                }
                other => return Err(StoreError::ValueVersion(other)),
            }
        }
    };
    Ok(OffsetRecord { group, topic, partition, value })
}

/// The records of one stored batch (as validated by the engine on read-back).
pub fn decode_batch(batch: &[u8], header: &engine::batch::BatchHeader) -> Result<Vec<OffsetRecord>, StoreError> {
    if header.codec() != engine::batch::Codec::None {
        return Err(StoreError::Compressed);
    }
    let end = header.size_bytes.min(batch.len());
    let mut reader = Reader { bytes: batch.get(engine::batch::RECORDS_AT..end).ok_or(StoreError::Truncated)? };
    let mut records = Vec::new();
    for _ in 0..header.records_count {
        let body = reader.sized()?.ok_or(StoreError::Truncated)?;
        let mut record = Reader { bytes: body };
        record.take(1)?; // attributes
        record.varint()?; // timestamp delta
        record.varint()?; // offset delta
        let key = record.sized()?.ok_or(StoreError::Truncated)?;
        let value = record.sized()?;
        records.push(decode_record(key, value)?);
    }
    Ok(records)
}

/// All records in `bytes`, a run of whole stored batches that `engine::batch::validate_all`
/// returned `headers` for.
pub fn decode_all(bytes: &[u8], headers: &[engine::batch::BatchHeader]) -> Vec<OffsetRecord> {
    let mut records = Vec::new();
    let mut position = 0usize;
    for header in headers {
        let size = header.size_bytes;
        match decode_batch(&bytes[position..position + size], header) {
            Ok(batch_records) => records.extend(batch_records),
            Err(error) => {
                tracing::warn!(base_offset = header.base_offset, %error, "skipping an unreadable offsets batch")
            }
        }
        position += size;
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(group: &str, partition: i32, offset: i64) -> OffsetRecord {
        OffsetRecord {
            group: group.into(),
            topic: "orders".into(),
            partition,
            value: Some(CommittedOffset {
                offset,
                leader_epoch: 0,
                metadata: "m".into(),
                commit_timestamp_ms: 1_700_000_000_000,
            }),
        }
    }

    #[test]
    fn batches_round_trip_and_validate() {
        let records = vec![
            commit("g", 0, 42),
            OffsetRecord { group: "g".into(), topic: "orders".into(), partition: 1, value: None },
        ];
        let batch = encode_batch(&records, 1_700_000_000_000);
        let headers = engine::batch::validate_all(&batch).expect("valid");
        assert_eq!(decode_all(&batch, &headers), records);
    }

    /// Golden bytes: the key and value layout is Kafka's (`OffsetCommitKey` v1, value v3).
    #[test]
    fn key_and_value_are_kafkas_schemas() {
        let record = commit("g", 7, 5);
        assert_eq!(&encode_key(&record)[..], &[0, 1, 0, 1, b'g', 0, 6, b'o', b'r', b'd', b'e', b'r', b's', 0, 0, 0, 7]);
        let value = encode_value(record.value.as_ref().expect("value"));
        let mut expected = vec![0, 3, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 1, b'm'];
        expected.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        assert_eq!(&value[..], &expected[..]);
    }

    #[test]
    fn garbage_records_are_errors_not_panics() {
        for length in 0..40 {
            let junk: Vec<u8> = (0..length).map(|index| (index * 37 % 251) as u8).collect();
            let _ = decode_record(&junk, Some(&junk));
        }
        assert_eq!(decode_record(&[0, 9], None), Err(StoreError::KeyVersion(9)));
    }
}
