//! The durable form of committed offsets and group membership: records in the internal
//! `__consumer_offsets-<n>` partition logs, in Kafka's own key/value schemas (offset commit key
//! v1, value v3; group metadata key v2, value v3; a null value is a tombstone), packed in
//! ordinary uncompressed v2 record batches. See `docs/formats/consumer-offsets.md`.
//!
//! Owns: building those batches and reading them back at start-up. Pure: no I/O, never panics
//! on input (a record it cannot parse is reported and skipped).

use bytes::{BufMut, Bytes, BytesMut};

/// Key version of an offset commit (Kafka's `OffsetCommitKey` v1).
pub const OFFSET_KEY_VERSION: i16 = 1;
/// Value version written (Kafka's `OffsetCommitValue` v3: offset, leader epoch, metadata, time).
pub const OFFSET_VALUE_VERSION: i16 = 3;

/// Key version of a group's membership (Kafka's `GroupMetadataKey`, record type 2).
pub const GROUP_KEY_VERSION: i16 = 2;
/// Value version written (Kafka's `GroupMetadataValue` v3: with the state timestamp and
/// `group.instance.id`; v4 only makes it flexible).
pub const GROUP_VALUE_VERSION: i16 = 3;

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

/// One member of a stored group (Kafka's `GroupMetadataValue.MemberMetadata`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberMetadata {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's protocol.
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group's membership as stored: written when a generation's assignment is handed out and
/// when the group becomes Empty (then `members` is empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMetadata {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// When the group entered the state this record describes (−1: unknown).
    pub state_timestamp_ms: i64,
    pub members: Vec<MemberMetadata>,
}

/// A group's membership record, or a tombstone (`value: None`: the group was deleted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRecord {
    pub group: String,
    pub value: Option<GroupMetadata>,
}

/// Any record of the offsets log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Offset(OffsetRecord),
    Group(GroupRecord),
}

impl Record {
    pub fn group(&self) -> &str {
        match self {
            Record::Offset(record) => &record.group,
            Record::Group(record) => &record.group,
        }
    }
}

impl From<OffsetRecord> for Record {
    fn from(record: OffsetRecord) -> Record {
        Record::Offset(record)
    }
}

impl From<GroupRecord> for Record {
    fn from(record: GroupRecord) -> Record {
        Record::Group(record)
    }
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

fn put_nullable_string(buffer: &mut BytesMut, text: Option<&str>) {
    match text {
        Some(text) => put_string(buffer, text),
        None => buffer.put_i16(-1),
    }
}

fn put_bytes(buffer: &mut BytesMut, bytes: &[u8]) {
    // Assignments and subscriptions come from requests, far below 2 GiB.
    buffer.put_i32(i32::try_from(bytes.len()).expect("a request-sized byte string"));
    buffer.put_slice(bytes);
}

fn put_varint(buffer: &mut BytesMut, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    while zigzag >= 0x80 {
        buffer.put_u8((zigzag as u8 & 0x7f) | 0x80);
        zigzag >>= 7;
    }
    buffer.put_u8(zigzag as u8);
}

fn encode_key(record: &Record) -> BytesMut {
    let mut key = BytesMut::new();
    match record {
        Record::Offset(record) => {
            key.put_i16(OFFSET_KEY_VERSION);
            put_string(&mut key, &record.group);
            put_string(&mut key, &record.topic);
            key.put_i32(record.partition);
        }
        Record::Group(record) => {
            key.put_i16(GROUP_KEY_VERSION);
            put_string(&mut key, &record.group);
        }
    }
    key
}

fn encode_group_value(value: &GroupMetadata) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_i16(GROUP_VALUE_VERSION);
    put_string(&mut out, &value.protocol_type);
    out.put_i32(value.generation);
    put_nullable_string(&mut out, value.protocol.as_deref());
    put_nullable_string(&mut out, value.leader.as_deref());
    out.put_i64(value.state_timestamp_ms);
    out.put_i32(i32::try_from(value.members.len()).expect("members are bounded by GROUP_MEMBERS_MAX"));
    for member in &value.members {
        put_string(&mut out, &member.member_id);
        put_nullable_string(&mut out, member.instance_id.as_deref());
        put_string(&mut out, &member.client_id);
        put_string(&mut out, &member.client_host);
        out.put_i32(member.rebalance_timeout_ms);
        out.put_i32(member.session_timeout_ms);
        put_bytes(&mut out, &member.subscription);
        put_bytes(&mut out, &member.assignment);
    }
    out
}

fn encode_value(record: &Record) -> Option<BytesMut> {
    match record {
        Record::Offset(record) => record.value.as_ref().map(encode_offset_value),
        Record::Group(record) => record.value.as_ref().map(encode_group_value),
    }
}

fn encode_offset_value(value: &CommittedOffset) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_i16(OFFSET_VALUE_VERSION);
    out.put_i64(value.offset);
    out.put_i32(value.leader_epoch);
    put_string(&mut out, &value.metadata);
    out.put_i64(value.commit_timestamp_ms);
    out
}

/// An upper bound of the bytes `record` takes in a batch (key, value and record framing).
pub fn record_bytes_max(record: &Record) -> usize {
    const FRAMING_BYTES_MAX: usize = 64;
    /// A member's fixed fields and length prefixes.
    const MEMBER_FRAMING_BYTES_MAX: usize = 32;
    match record {
        Record::Offset(record) => {
            let value_bytes = record.value.as_ref().map_or(0, |value| value.metadata.len());
            record.group.len() + record.topic.len() + value_bytes + FRAMING_BYTES_MAX
        }
        Record::Group(record) => {
            let value_bytes = record.value.as_ref().map_or(0, |value| {
                let head = value.protocol_type.len()
                    + value.protocol.as_ref().map_or(0, String::len)
                    + value.leader.as_ref().map_or(0, String::len);
                let members: usize = value
                    .members
                    .iter()
                    .map(|member| {
                        member.member_id.len()
                            + member.instance_id.as_ref().map_or(0, String::len)
                            + member.client_id.len()
                            + member.client_host.len()
                            + member.subscription.len()
                            + member.assignment.len()
                            + MEMBER_FRAMING_BYTES_MAX
                    })
                    .sum();
                head + members
            });
            record.group.len() + value_bytes + FRAMING_BYTES_MAX
        }
    }
}

/// One uncompressed v2 batch holding `records` (base offset 0: the engine assigns offsets).
pub fn encode_batch(records: &[Record], timestamp_ms: i64) -> Vec<u8> {
    assert!(!records.is_empty(), "a batch holds at least one record");
    let mut body = BytesMut::new();
    for (index, record) in records.iter().enumerate() {
        let key = encode_key(record);
        let value = encode_value(record);
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

    fn nullable_string(&mut self) -> Result<Option<String>, StoreError> {
        let length = self.i16()?;
        if length < 0 {
            return Ok(None);
        }
        let bytes = self.take(length as usize)?;
        String::from_utf8(bytes.to_vec()).map(Some).map_err(|_| StoreError::Utf8)
    }

    /// An int32 length then that many bytes (−1: none, read as empty).
    fn bytes(&mut self) -> Result<Bytes, StoreError> {
        let length = self.i32()?;
        if length < 0 {
            return Ok(Bytes::new());
        }
        Ok(Bytes::copy_from_slice(self.take(length as usize)?))
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

/// Kafka's `GroupMetadataValue` v0–v3 (v4, flexible, is not written by Kafka's classic
/// coordinator and not read here).
fn decode_group_value(bytes: &[u8]) -> Result<GroupMetadata, StoreError> {
    let mut value = Reader { bytes };
    let version = value.i16()?;
    if !(0..=3).contains(&version) {
        return Err(StoreError::ValueVersion(version));
    }
    let protocol_type = value.string()?;
    let generation = value.i32()?;
    let protocol = value.nullable_string()?;
    let leader = value.nullable_string()?;
    let state_timestamp_ms = if version >= 2 { value.i64()? } else { -1 };
    let count = value.i32()?;
    let mut members = Vec::new();
    for _ in 0..count.max(0) {
        let member_id = value.string()?;
        let instance_id = if version >= 3 { value.nullable_string()? } else { None };
        let client_id = value.string()?;
        let client_host = value.string()?;
        // v1+ has the rebalance timeout before the session timeout; v0 only the latter.
        let first_timeout_ms = value.i32()?;
        let (rebalance_timeout_ms, session_timeout_ms) =
            if version >= 1 { (first_timeout_ms, value.i32()?) } else { (first_timeout_ms, first_timeout_ms) };
        let subscription = value.bytes()?;
        let assignment = value.bytes()?;
        members.push(MemberMetadata {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupMetadata { protocol_type, generation, protocol, leader, state_timestamp_ms, members })
}

fn decode_record(key: &[u8], value: Option<&[u8]>) -> Result<Record, StoreError> {
    let mut key = Reader { bytes: key };
    let version = key.i16()?;
    if version == GROUP_KEY_VERSION {
        let group = key.string()?;
        let value = value.map(decode_group_value).transpose()?;
        return Ok(Record::Group(GroupRecord { group, value }));
    }
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
    Ok(Record::Offset(OffsetRecord { group, topic, partition, value }))
}

/// The records of one stored batch (as validated by the engine on read-back).
pub fn decode_batch(batch: &[u8], header: &engine::batch::BatchHeader) -> Result<Vec<Record>, StoreError> {
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
pub fn decode_all(bytes: &[u8], headers: &[engine::batch::BatchHeader]) -> Vec<Record> {
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

    fn membership(group: &str) -> GroupRecord {
        GroupRecord {
            group: group.into(),
            value: Some(GroupMetadata {
                protocol_type: "consumer".into(),
                generation: 7,
                protocol: Some("range".into()),
                leader: Some("m-1".into()),
                state_timestamp_ms: 1_700_000_000_000,
                members: vec![MemberMetadata {
                    member_id: "m-1".into(),
                    instance_id: None,
                    client_id: "c".into(),
                    client_host: "/h".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 45_000,
                    subscription: Bytes::from_static(b"s"),
                    assignment: Bytes::from_static(b"as"),
                }],
            }),
        }
    }

    #[test]
    fn batches_round_trip_and_validate() {
        let records: Vec<Record> = vec![
            commit("g", 0, 42).into(),
            OffsetRecord { group: "g".into(), topic: "orders".into(), partition: 1, value: None }.into(),
            membership("g").into(),
            GroupRecord { group: "gone".into(), value: None }.into(),
        ];
        let batch = encode_batch(&records, 1_700_000_000_000);
        let headers = engine::batch::validate_all(&batch).expect("valid");
        assert_eq!(decode_all(&batch, &headers), records);
    }

    /// Golden bytes: the key and value layout is Kafka's (`OffsetCommitKey` v1, value v3).
    #[test]
    fn key_and_value_are_kafkas_schemas() {
        let record = commit("g", 7, 5);
        let value = encode_offset_value(record.value.as_ref().expect("value"));
        assert_eq!(
            &encode_key(&record.into())[..],
            &[0, 1, 0, 1, b'g', 0, 6, b'o', b'r', b'd', b'e', b'r', b's', 0, 0, 0, 7]
        );
        let mut expected = vec![0, 3, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 1, b'm'];
        expected.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        assert_eq!(&value[..], &expected[..]);
    }

    /// Golden bytes: Kafka's `GroupMetadataKey` (version 2: the record type) and
    /// `GroupMetadataValue` v3, field by field as in Kafka's `GroupMetadataValue.json`.
    #[test]
    fn group_metadata_is_kafkas_schema() {
        let record = membership("g");
        assert_eq!(&encode_key(&record.clone().into())[..], &[0, 2, 0, 1, b'g']);
        let mut expected: Vec<u8> = vec![0, 3]; // value version 3
        expected.extend_from_slice(&[0, 8]); // protocolType
        expected.extend_from_slice(b"consumer");
        expected.extend_from_slice(&7i32.to_be_bytes()); // generation
        expected.extend_from_slice(&[0, 5]); // protocol (nullable)
        expected.extend_from_slice(b"range");
        expected.extend_from_slice(&[0, 3]); // leader (nullable)
        expected.extend_from_slice(b"m-1");
        expected.extend_from_slice(&1_700_000_000_000i64.to_be_bytes()); // currentStateTimestamp
        expected.extend_from_slice(&1i32.to_be_bytes()); // members
        expected.extend_from_slice(&[0, 3]); // memberId
        expected.extend_from_slice(b"m-1");
        expected.extend_from_slice(&[0xff, 0xff]); // groupInstanceId: null
        expected.extend_from_slice(&[0, 1, b'c']); // clientId
        expected.extend_from_slice(&[0, 2, b'/', b'h']); // clientHost
        expected.extend_from_slice(&300_000i32.to_be_bytes()); // rebalanceTimeout
        expected.extend_from_slice(&45_000i32.to_be_bytes()); // sessionTimeout
        expected.extend_from_slice(&[0, 0, 0, 1, b's']); // subscription
        expected.extend_from_slice(&[0, 0, 0, 2, b'a', b's']); // assignment
        let value = encode_value(&record.clone().into()).expect("a value");
        assert_eq!(&value[..], &expected[..]);
        assert_eq!(decode_record(&[0, 2, 0, 1, b'g'], Some(&expected)), Ok(Record::Group(record)));
        assert_eq!(
            decode_record(&[0, 2, 0, 1, b'g'], None),
            Ok(Record::Group(GroupRecord { group: "g".into(), value: None })),
            "a null value is the group's tombstone"
        );
    }

    /// Older value versions (Kafka before 2.3) still read: v1 without the state timestamp and
    /// instance id, v0 with only the session timeout.
    #[test]
    fn older_group_metadata_versions_read() {
        let mut v1: Vec<u8> = vec![0, 1, 0, 1, b'x', 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1];
        v1.extend_from_slice(&[0, 1, b'm', 0, 1, b'c', 0, 1, b'h']);
        v1.extend_from_slice(&9i32.to_be_bytes()); // rebalance
        v1.extend_from_slice(&8i32.to_be_bytes()); // session
        v1.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        let Ok(Record::Group(GroupRecord { value: Some(value), .. })) = decode_record(&[0, 2, 0, 1, b'g'], Some(&v1))
        else {
            panic!("v1 decodes")
        };
        assert_eq!((value.generation, value.protocol.as_deref(), value.state_timestamp_ms), (2, None, -1));
        assert_eq!((value.members[0].rebalance_timeout_ms, value.members[0].session_timeout_ms), (9, 8));
    }

    #[test]
    fn garbage_records_are_errors_not_panics() {
        for length in 0..40 {
            let junk: Vec<u8> = (0..length).map(|index| (index * 37 % 251) as u8).collect();
            let _ = decode_record(&junk, Some(&junk));
            let mut group_key = vec![0, 2];
            group_key.extend_from_slice(&junk);
            let _ = decode_record(&group_key, Some(&junk));
            let mut group_value = vec![0, 3];
            group_value.extend_from_slice(&junk);
            let _ = decode_record(&[0, 2, 0, 0], Some(&group_value));
        }
        assert_eq!(decode_record(&[0, 9], None), Err(StoreError::KeyVersion(9)));
        assert_eq!(decode_record(&[0, 2, 0, 0], Some(&[0, 4])), Err(StoreError::ValueVersion(4)));
    }
}
