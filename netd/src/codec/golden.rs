//! Golden-byte tests: request frames captured from real clients (`testdata/captured-frames.txt`,
//! recorded with `scripts/capture-frames.py`) decode to what those clients meant, and the record
//! batches inside them pass the engine's validation unchanged (the hand-written produce path
//! stores them byte for byte).

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, FetchRequest, JoinGroupRequest, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, ProduceRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::Encodable;

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

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("hex")).collect()
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

/// The topic id of `cap-java10` in the KIP-848 captures (Kafka chose it when creating the topic).
const CAPTURED_TOPIC_ID: &str = "a6f29fbf-9a72-498a-9f38-a568e424db9d";

/// Apache Kafka 4.4.0's answers to the two v10 requests of `testdata/captured-frames.txt`
/// (response bodies after the v1 header: correlation id and an empty tagged-field section).
const KAFKA_OFFSET_COMMIT_V10_RESPONSE: &str =
    "0000000002a6f29fbf9a72498a9f38a568e424db9d0300000001000000000000000000000000";
const KAFKA_OFFSET_FETCH_V10_RESPONSE: &str = concat!(
    "0000000002086361706738343802a6f29fbf9a72498a9f38a568e424db9d0300000001ffffffffffffffffffffffff01",
    "00000000000000ffffffffffffffffffffffff010000000000000000"
);

#[test]
fn java_kip848_offset_commit_and_fetch_v10_name_topics_by_id() {
    let topic_id = uuid::Uuid::parse_str(CAPTURED_TOPIC_ID).expect("uuid");
    let commit: OffsetCommitRequest = decode_body(&frame(8, 10, "console-consumer")).expect("decodes");
    assert_eq!(commit.group_id.as_str(), "capg848");
    assert_eq!(commit.generation_id_or_member_epoch, 2, "the member epoch");
    assert_eq!(commit.member_id.as_str(), "WZQ1G0zwQoK6gKG4iNP9lQ");
    assert_eq!(commit.group_instance_id, None);
    assert_eq!(commit.topics.len(), 1);
    let topic = &commit.topics[0];
    assert_eq!((topic.topic_id, topic.name.as_str()), (topic_id, ""), "v10 carries the id and no name");
    let partitions: Vec<_> = topic
        .partitions
        .iter()
        .map(|partition| {
            let metadata = partition.committed_metadata.as_deref().map(str::to_string);
            (partition.partition_index, partition.committed_offset, partition.committed_leader_epoch, metadata)
        })
        .collect();
    // Partition 1 holds the three records (leader epoch 0); partition 0 is empty.
    assert_eq!(partitions, vec![(1, 3, 0, Some(String::new())), (0, 0, -1, Some(String::new()))]);

    let fetch: OffsetFetchRequest = decode_body(&frame(9, 10, "console-consumer")).expect("decodes");
    assert!(fetch.require_stable);
    assert_eq!(fetch.groups.len(), 1);
    let group = &fetch.groups[0];
    assert_eq!(group.group_id.as_str(), "capg848");
    assert_eq!((group.member_id.as_deref(), group.member_epoch), (Some("WZQ1G0zwQoK6gKG4iNP9lQ"), 2));
    let topics = group.topics.as_ref().expect("the consumer asks for its assigned partitions");
    assert_eq!(topics.len(), 1);
    assert_eq!((topics[0].topic_id, topics[0].name.as_str()), (topic_id, ""));
    assert_eq!(topics[0].partition_indexes, vec![1, 0]);
}

/// Skua's v10 answers, built as the handlers build them, are byte for byte what Kafka answered
/// the captured requests: the topic named by id only, no name on the wire.
#[test]
fn offset_commit_and_fetch_v10_responses_encode_as_kafka() {
    use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
    use kafka_protocol::messages::offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
    };
    use kafka_protocol::messages::{GroupId, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let topic_id = uuid::Uuid::parse_str(CAPTURED_TOPIC_ID).expect("uuid");
    let encode = |body: &dyn Fn(&mut bytes::BytesMut)| {
        let mut buffer = bytes::BytesMut::new();
        body(&mut buffer);
        buffer.to_vec()
    };

    let partitions = [1, 0].map(|index| {
        let mut partition = OffsetCommitResponsePartition::default();
        partition.partition_index = index;
        partition
    });
    let mut topic = OffsetCommitResponseTopic::default();
    // The handler copies both from the request; v10 must leave the (empty) name off the wire.
    topic.name = TopicName(StrBytes::from_static_str("cap-java10"));
    topic.topic_id = topic_id;
    topic.partitions = partitions.to_vec();
    let mut commit = OffsetCommitResponse::default();
    commit.topics = vec![topic];
    let encoded = encode(&|buffer| commit.encode(buffer, 10).expect("encodes"));
    assert_eq!(encoded, hex_bytes(KAFKA_OFFSET_COMMIT_V10_RESPONSE));
    assert_eq!(commit.compute_size(10).expect("sizes"), encoded.len());

    let mut fetch = OffsetFetchResponse::default();
    let mut group = OffsetFetchResponseGroup::default();
    group.group_id = GroupId(StrBytes::from_static_str("capg848"));
    let mut topic = OffsetFetchResponseTopics::default();
    topic.topic_id = topic_id;
    // In the order the consumer asked for them, as Kafka answered.
    topic.partitions = [1, 0]
        .into_iter()
        .map(|index| {
            // Nothing committed yet: offset and leader epoch -1, empty metadata, no error.
            let mut partition = OffsetFetchResponsePartitions::default();
            partition.partition_index = index;
            partition.committed_offset = -1;
            partition.committed_leader_epoch = -1;
            partition.metadata = Some(StrBytes::from_static_str(""));
            partition
        })
        .collect();
    group.topics = vec![topic];
    fetch.groups = vec![group];
    let encoded = encode(&|buffer| fetch.encode(buffer, 10).expect("encodes"));
    assert_eq!(encoded, hex_bytes(KAFKA_OFFSET_FETCH_V10_RESPONSE));
    assert_eq!(fetch.compute_size(10).expect("sizes"), encoded.len());
}
