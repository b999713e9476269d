//! Golden-byte tests: request frames captured from real clients (`testdata/captured-frames.txt`,
//! recorded with `scripts/capture-frames.py`) decode to what those clients meant, and the record
//! batches inside them pass the engine's validation unchanged (the hand-written produce path
//! stores them byte for byte).

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, FetchRequest, JoinGroupRequest, OffsetCommitRequest, OffsetFetchRequest, ProduceRequest, SyncGroupRequest,
};

use crate::codec::frame::{decode_body, decode_frame, Frame};

const CAPTURED: &str = include_str!("../testdata/captured-frames.txt");

fn frame(api_key: i16, api_version: i16, client_id: &str) -> Frame {
    let line = CAPTURED
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() == 4
                && fields[0] == api_key.to_string()
                && fields[1] == api_version.to_string()
                && fields[2] == client_id
        })
        .unwrap_or_else(|| panic!("no captured frame {api_key} v{api_version} from {client_id}"));
    let hex = line.split_whitespace().nth(3).expect("hex");
    let bytes: Vec<u8> =
        (0..hex.len()).step_by(2).map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("hex")).collect();
    let frame = decode_frame(Bytes::from(bytes)).expect("a real client's frame decodes");
    assert_eq!((frame.api_version, frame.client_id.as_deref()), (api_version, Some(client_id)));
    frame
}

fn produced_batches(request: &ProduceRequest) -> Vec<(String, engine::batch::BatchHeader)> {
    let mut out = Vec::new();
    for topic in &request.topic_data {
        for partition in &topic.partition_data {
            let records = partition.records.as_ref().expect("records");
            for header in engine::batch::validate_all(records).expect("client batches pass CRC and layout checks") {
                out.push((topic.name.to_string(), header));
            }
        }
    }
    out
}

#[test]
fn librdkafka_produce_v7() {
    let frame = frame(0, 7, "rdkafka");
    assert_eq!(frame.api_key, ApiKey::Produce);
    let request: ProduceRequest = decode_body(&frame).expect("decodes");
    assert_eq!(request.acks, -1);
    let batches = produced_batches(&request);
    assert_eq!(batches.len(), 1);
    let (topic, header) = &batches[0];
    assert_eq!(topic, "cap-kcat");
    // Asked for lz4, but librdkafka sends two tiny records uncompressed (lz4 would be larger).
    assert_eq!(header.codec(), engine::batch::Codec::None);
    assert_eq!(header.records_count, 1, "kcat produced each line as it was read");
    assert_eq!(header.producer_id, -1, "kcat 1.x does not enable idempotence");
}

#[test]
fn java_produce_v11_idempotent() {
    let frame = frame(0, 11, "console-producer");
    let request: ProduceRequest = decode_body(&frame).expect("decodes");
    let batches = produced_batches(&request);
    let (topic, header) = &batches[0];
    assert_eq!(topic, "cap-java");
    assert_eq!(header.codec(), engine::batch::Codec::None);
    assert_eq!(header.records_count, 2);
    assert!(header.producer_id >= 0, "Java enables idempotence by default");
    assert_eq!(header.base_sequence, 0);
}

#[test]
fn fetch_requests_of_both_families() {
    let java: FetchRequest = decode_body(&frame(1, 12, "console-consumer")).expect("decodes");
    assert_eq!(java.topics[0].topic.as_str(), "cap-java");
    assert_eq!(java.topics[0].partitions[0].fetch_offset, 0);
    let rdkafka: FetchRequest = decode_body(&frame(1, 11, "rdkafka")).expect("decodes");
    assert_eq!(rdkafka.topics[0].topic.as_str(), "cap-kcat");
    assert_eq!(rdkafka.max_wait_ms, 500);
}

#[test]
fn group_requests_of_both_families() {
    // librdkafka 2.16: the old non-flexible versions (JoinGroup v5, SyncGroup v3).
    let join: JoinGroupRequest = decode_body(&frame(11, 5, "member-1")).expect("decodes");
    assert_eq!(join.protocol_type.as_str(), "consumer");
    assert!(join.protocols.iter().any(|protocol| protocol.name.as_str() == "cooperative-sticky"));
    assert_eq!(join.session_timeout_ms, 6000);
    let sync: SyncGroupRequest = decode_body(&frame(14, 3, "member-1")).expect("decodes");
    assert!(!sync.assignments.is_empty(), "the leader's SyncGroup carries the assignments");
    assert!(sync.assignments.iter().all(|assignment| !assignment.assignment.is_empty()));
    // Java 4.4: the newest flexible versions.
    let join: JoinGroupRequest = decode_body(&frame(11, 9, "console-consumer")).expect("decodes");
    assert_eq!(join.group_id.as_str(), "capg");
    assert_eq!(join.protocols[0].name.as_str(), "range");
    let commit: OffsetCommitRequest = decode_body(&frame(8, 9, "console-consumer")).expect("decodes");
    assert_eq!(commit.group_id.as_str(), "capg");
    assert!(commit.generation_id_or_member_epoch >= 1);
    assert_eq!(commit.topics[0].name.as_str(), "cap-java");
    let fetch: OffsetFetchRequest = decode_body(&frame(9, 9, "console-consumer")).expect("decodes");
    assert_eq!(fetch.groups[0].group_id.as_str(), "capg");
}
