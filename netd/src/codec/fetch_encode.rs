//! The hand-written Fetch response encoder (versions 4–18; v13+ names topics by id): record bytes are not copied into
//! the response but returned as their own segments, so the connection writes them with one
//! vectored write straight from the engine's tail cache (or from the bytes a shard read).
//!
//! Owns: the byte layout of the Fetch response and its header. It encodes exactly the fields
//! this broker sets (no aborted transactions; of the tagged fields a follower's diverging epoch,
//! and from v16 the KIP-951 leader hints: a partition's current leader and the leaders' endpoints);
//! the golden
//! test below checks it byte for byte against `kafka-protocol`'s generated encoder, which follows
//! Kafka's JSON schemas.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::FetchResponse;

/// The highest Fetch version this encoder knows (v13 replaces topic names with topic ids; v16 adds
/// the leader hints).
pub const FETCH_VERSION_MAX: i16 = 18;

fn put_unsigned_varint(buffer: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        buffer.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buffer.put_u8(value as u8);
}

fn put_length(buffer: &mut BytesMut, flexible: bool, length: usize) -> anyhow::Result<()> {
    if flexible {
        put_unsigned_varint(buffer, u32::try_from(length + 1)?);
    } else {
        buffer.put_i32(i32::try_from(length)?);
    }
    Ok(())
}

fn put_partition(
    buffer: &mut BytesMut,
    segments: &mut Vec<Bytes>,
    flexible: bool,
    version: i16,
    data: &PartitionData,
    slices: Option<&[Bytes]>,
) -> anyhow::Result<()> {
    buffer.put_i32(data.partition_index);
    buffer.put_i16(data.error_code);
    buffer.put_i64(data.high_watermark);
    buffer.put_i64(data.last_stable_offset);
    if version >= 5 {
        buffer.put_i64(data.log_start_offset);
    }
    put_length(buffer, flexible, 0)?; // aborted_transactions: none (read-uncommitted, no transactions)
    if version >= 11 {
        buffer.put_i32(data.preferred_read_replica.0); // KIP-392; -1: read from this broker
    }
    match (&data.records, slices) {
        (_, Some(slices)) => {
            put_length(buffer, flexible, slices.iter().map(Bytes::len).sum())?;
            segments.push(buffer.split().freeze());
            segments.extend(slices.iter().filter(|slice| !slice.is_empty()).cloned());
        }
        (None, None) if flexible => buffer.put_u8(0),
        (None, None) => buffer.put_i32(-1),
        (Some(records), None) => {
            put_length(buffer, flexible, records.len())?;
            if !records.is_empty() {
                segments.push(buffer.split().freeze());
                segments.push(records.clone());
            }
        }
    }
    if flexible {
        // Tagged fields, in tag order: the diverging epoch (tag 0, v12+), set for followers whose
        // log diverges from the leader's; the current leader (tag 1), set with NOT_LEADER_OR_FOLLOWER
        // and FENCED_LEADER_EPOCH from v16 (KIP-951). Each is written when not its default (-1s).
        let diverging = data.diverging_epoch.epoch >= 0 || data.diverging_epoch.end_offset >= 0;
        let leader = data.current_leader.leader_id.0 != -1 || data.current_leader.leader_epoch != -1;
        buffer.put_u8(u8::from(diverging) + u8::from(leader)); // how many tagged fields
        if diverging {
            buffer.put_u8(0); // tag 0
            buffer.put_u8(4 + 8 + 1); // its size: epoch, end offset, no tagged fields of its own
            buffer.put_i32(data.diverging_epoch.epoch);
            buffer.put_i64(data.diverging_epoch.end_offset);
            buffer.put_u8(0);
        }
        if leader {
            buffer.put_u8(1); // tag 1
            buffer.put_u8(4 + 4 + 1); // its size: leader id, leader epoch, no tagged fields
            buffer.put_i32(data.current_leader.leader_id.0);
            buffer.put_i32(data.current_leader.leader_epoch);
            buffer.put_u8(0);
        }
    }
    Ok(())
}

/// The response's node endpoints (tag 0 of the body, v16+): the brokers its leader hints name.
fn put_node_endpoints(buffer: &mut BytesMut, response: &FetchResponse) -> anyhow::Result<()> {
    let mut field = BytesMut::new();
    put_length(&mut field, true, response.node_endpoints.len())?;
    for node in &response.node_endpoints {
        field.put_i32(node.node_id.0);
        put_length(&mut field, true, node.host.len())?;
        field.put_slice(node.host.as_bytes());
        field.put_i32(node.port);
        match &node.rack {
            Some(rack) => {
                put_length(&mut field, true, rack.len())?;
                field.put_slice(rack.as_bytes());
            }
            None => field.put_u8(0), // null
        }
        field.put_u8(0); // no tagged fields
    }
    buffer.put_u8(1); // one tagged field
    buffer.put_u8(0); // tag 0
    put_unsigned_varint(buffer, u32::try_from(field.len())?);
    buffer.put_slice(&field);
    Ok(())
}

/// Encodes a whole response frame (size, header, body) as segments whose concatenation is the
/// frame; record bytes are segments of their own, never copied.
pub fn encode(version: i16, correlation_id: i32, response: &FetchResponse) -> anyhow::Result<Vec<Bytes>> {
    encode_with_slices(version, correlation_id, response, &RecordSlices::new())
}

/// Record bytes given as several slices (tail-cache chunks of successive commits), by (topic
/// index, partition index) in the response; they replace that partition's `records`.
pub type RecordSlices = std::collections::HashMap<(usize, usize), Vec<Bytes>>;

/// [`encode`], with the records of some partitions given as slices: each slice is a segment of
/// its own, so records spanning several cache chunks are not copied into one buffer either.
pub fn encode_with_slices(
    version: i16,
    correlation_id: i32,
    response: &FetchResponse,
    slices: &RecordSlices,
) -> anyhow::Result<Vec<Bytes>> {
    anyhow::ensure!((4..=FETCH_VERSION_MAX).contains(&version), "fetch version {version} is not encodable here");
    let flexible = version >= 12;
    let mut segments = vec![Bytes::new()]; // replaced by the size prefix at the end
    let mut buffer = BytesMut::with_capacity(256);
    buffer.put_i32(correlation_id);
    if flexible {
        buffer.put_u8(0); // response header v1: no tagged fields
    }
    buffer.put_i32(response.throttle_time_ms);
    if version >= 7 {
        buffer.put_i16(response.error_code);
        buffer.put_i32(response.session_id);
    }
    put_length(&mut buffer, flexible, response.responses.len())?;
    for (topic_index, topic) in response.responses.iter().enumerate() {
        if version >= 13 {
            buffer.put_slice(topic.topic_id.as_bytes());
        } else {
            let name = topic.topic.as_bytes();
            if flexible {
                put_unsigned_varint(&mut buffer, u32::try_from(name.len() + 1)?);
            } else {
                buffer.put_i16(i16::try_from(name.len())?);
            }
            buffer.put_slice(name);
        }
        put_length(&mut buffer, flexible, topic.partitions.len())?;
        for (partition_index, data) in topic.partitions.iter().enumerate() {
            let given = slices.get(&(topic_index, partition_index)).map(Vec::as_slice);
            put_partition(&mut buffer, &mut segments, flexible, version, data, given)?;
        }
        if flexible {
            buffer.put_u8(0);
        }
    }
    if version >= 16 && !response.node_endpoints.is_empty() {
        put_node_endpoints(&mut buffer, response)?;
    } else if flexible {
        buffer.put_u8(0); // no tagged fields
    }
    segments.push(buffer.freeze());
    let size: usize = segments.iter().map(Bytes::len).sum();
    segments[0] = Bytes::copy_from_slice(&i32::try_from(size)?.to_be_bytes());
    segments.retain(|segment| !segment.is_empty());
    Ok(segments)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, NodeEndpoint};
    use kafka_protocol::messages::{ApiKey, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    /// A response with every case the encoder knows; from v12 a follower's diverging epoch too.
    fn sample(version: i16) -> FetchResponse {
        let mut response = FetchResponse::default();
        for (name, partitions) in [("orders", 3), ("a-much-longer-topic-name.with_dots", 1), ("empty", 0)] {
            let mut topic = FetchableTopicResponse::default();
            topic.topic = TopicName(StrBytes::from_string(name.to_string()));
            topic.topic_id = uuid::Uuid::from_bytes([name.len() as u8; 16]);
            for index in 0..partitions {
                let mut data = PartitionData::default();
                data.partition_index = index;
                data.high_watermark = 1000 + i64::from(index);
                data.last_stable_offset = 1000 + i64::from(index);
                data.log_start_offset = 7;
                data.records = match index {
                    0 => Some(Bytes::from(vec![0xab; 300])),
                    1 => Some(Bytes::new()),
                    _ => None,
                };
                if index == 2 {
                    data.error_code = 3;
                }
                if index == 0 && version >= 11 {
                    data.preferred_read_replica = kafka_protocol::messages::BrokerId(3);
                }
                if index == 1 && version >= 12 {
                    data.diverging_epoch.epoch = 4;
                    data.diverging_epoch.end_offset = 123_456;
                }
                // KIP-951 leader hints: alone on one partition, beside a diverging epoch on another.
                if index >= 1 && version >= 16 {
                    data.current_leader.leader_id = kafka_protocol::messages::BrokerId(2);
                    data.current_leader.leader_epoch = 9;
                }
                topic.partitions.push(data);
            }
            response.responses.push(topic);
        }
        if version >= 16 {
            for (id, rack) in [(2, Some("rack-b")), (3, None)] {
                let mut node = NodeEndpoint::default();
                node.node_id = kafka_protocol::messages::BrokerId(id);
                node.host = StrBytes::from_static_str("broker.example");
                node.port = 9090 + id;
                node.rack = rack.map(StrBytes::from_static_str);
                response.node_endpoints.push(node);
            }
        }
        response
    }

    /// Golden check: for every version, the segments are byte for byte what the generated
    /// encoder (from Kafka's schemas) produces for the same response, and records are not copied.
    #[test]
    fn matches_the_generated_encoder_for_every_version() {
        for version in 4..=FETCH_VERSION_MAX {
            let response = sample(version);
            let expected =
                crate::codec::frame::encode_response(ApiKey::Fetch, version, 77, &response).expect("reference");
            let segments = encode(version, 77, &response).expect("encode");
            let joined: Vec<u8> = segments.iter().flat_map(|segment| segment.iter().copied()).collect();
            assert_eq!(joined, expected.to_vec(), "fetch v{version}");
            let records = response.responses[0].partitions[0].records.as_ref().expect("records");
            assert!(
                segments.iter().any(|segment| segment.as_ptr() == records.as_ptr()),
                "v{version}: record bytes are their own segment, not a copy"
            );
        }
    }

    /// Records given as slices encode exactly as the same bytes given whole, and each slice is
    /// sent as it is.
    #[test]
    fn records_given_as_slices_encode_as_the_joined_bytes_without_copying_them() {
        for version in 4..=FETCH_VERSION_MAX {
            let whole = sample(version);
            let records = whole.responses[0].partitions[0].records.clone().expect("records");
            let parts = vec![records.slice(0..100), records.slice(100..101), Bytes::new(), records.slice(101..)];
            let mut sliced = whole.clone();
            sliced.responses[0].partitions[0].records = Some(Bytes::new());
            let slices = RecordSlices::from([((0, 0), parts.clone())]);
            let segments = encode_with_slices(version, 77, &sliced, &slices).expect("encode");
            let joined: Vec<u8> = segments.iter().flat_map(|segment| segment.iter().copied()).collect();
            let expected: Vec<u8> = encode(version, 77, &whole)
                .expect("encode")
                .iter()
                .flat_map(|segment| segment.iter().copied())
                .collect();
            assert_eq!(joined, expected, "fetch v{version}");
            for part in parts.iter().filter(|part| !part.is_empty()) {
                assert!(
                    segments.iter().any(|segment| segment.as_ptr() == part.as_ptr()),
                    "v{version}: a slice is sent as it is"
                );
            }
        }
    }

    #[test]
    fn refuses_versions_it_does_not_know() {
        assert!(encode(3, 1, &FetchResponse::default()).is_err());
        assert!(encode(19, 1, &FetchResponse::default()).is_err());
    }
}
