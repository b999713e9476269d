//! A hostile client: malformed frames, unknown keys and versions, oversized frames, corrupt and
//! oversized record batches. The broker answers with the Kafka error or closes that connection,
//! and keeps serving everyone else.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{answers_api_versions, Broker};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse, ProduceRequest, ProduceResponse, RequestHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

fn connect(broker: &Broker) -> TcpStream {
    let stream = TcpStream::connect(broker.address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream
}

/// How long the broker has to close a connection it refuses. It closes at once (the decode fails
/// on the bytes already received); the bound only keeps a regression from hanging the test.
const CLOSE_WAIT_MS_MAX: u64 = 5_000;

/// What the broker did with a connection after a request it must refuse.
enum Outcome {
    /// End of stream: the broker closed the socket.
    Closed,
    /// Connection reset: the broker closed the socket with unread bytes in it.
    Reset,
    /// The broker answered (these bytes) instead of closing.
    Answered(Vec<u8>),
    /// Neither an answer nor a close within `CLOSE_WAIT_MS_MAX`.
    StillOpen,
}

/// Waits up to `CLOSE_WAIT_MS_MAX` for the broker to close `stream`; a read timeout is not a close.
fn outcome(stream: &mut TcpStream) -> Outcome {
    stream.set_read_timeout(Some(Duration::from_millis(CLOSE_WAIT_MS_MAX))).expect("timeout");
    let mut buffer = [0u8; 256];
    match stream.read(&mut buffer) {
        Ok(0) => Outcome::Closed,
        Ok(count) => Outcome::Answered(buffer[..count].to_vec()),
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => Outcome::Reset,
        Err(error) if matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            Outcome::StillOpen
        }
        Err(error) => panic!("reading after a refused request: {error}"),
    }
}

/// Asserts the broker closed `stream` (EOF or reset) within `CLOSE_WAIT_MS_MAX`.
fn assert_closed(stream: &mut TcpStream, case: &str) {
    let instead = match outcome(stream) {
        Outcome::Closed | Outcome::Reset => return,
        Outcome::Answered(bytes) => format!("it answered {bytes:02x?}"),
        Outcome::StillOpen => "it neither answered nor closed".to_string(),
    };
    panic!("{case}: the broker must close the connection within {CLOSE_WAIT_MS_MAX} ms, but {instead}");
}

fn request<M: Encodable>(api_key: ApiKey, version: i16, body: &M) -> Vec<u8> {
    common::request_frame(api_key, version, 11, body)
}

fn response(stream: &mut TcpStream, api_key: ApiKey, version: i16) -> Bytes {
    let (correlation_id, bytes) = common::read_response(stream, api_key, version);
    assert_eq!(correlation_id, 11);
    bytes
}

fn batch(value_bytes: usize) -> Vec<u8> {
    engine::testkit::make_sized_batch(1, value_bytes, 3, 1_700_000_000_000)
}

fn produce(stream: &mut TcpStream, records: Vec<u8>) -> i16 {
    let mut partition = PartitionProduceData::default();
    partition.index = 0;
    partition.records = Some(Bytes::from(records));
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_static_str("bad-input"));
    topic.partition_data = vec![partition];
    let mut body = ProduceRequest::default();
    body.acks = -1;
    body.timeout_ms = 5000;
    body.topic_data = vec![topic];
    stream.write_all(&request(ApiKey::Produce, 9, &body)).expect("send");
    let mut bytes = response(stream, ApiKey::Produce, 9);
    let decoded = ProduceResponse::decode(&mut bytes, 9).expect("decode");
    decoded.responses[0].partition_responses[0].error_code
}

#[test]
fn bad_frames_close_only_their_connection() {
    let broker = Broker::start(&["socket.request.max.bytes=100000", "message.max.bytes=20000"]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("oversized frame", 200_000i32.to_be_bytes().to_vec()),
        ("negative size", (-5i32).to_be_bytes().to_vec()),
        ("frame shorter than a header", vec![0, 0, 0, 3, 1, 2, 3]),
        ("unknown API key", vec![0, 0, 0, 10, 0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0, 0]),
        ("unsupported Metadata version", vec![0, 0, 0, 10, 0, 3, 0, 99, 0, 0, 0, 1, 0, 0]),
        ("garbage Metadata body", vec![0, 0, 0, 14, 0, 3, 0, 9, 0, 0, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff]),
    ];
    for (name, bytes) in cases {
        let mut stream = connect(&broker);
        stream.write_all(&bytes).expect("send");
        assert_closed(&mut stream, name);
        assert!(answers_api_versions(broker.address), "{name}: broker still serves others");
    }
}

#[test]
fn api_versions_of_an_unknown_version_answers_in_v0_with_our_ranges() {
    let broker = Broker::start(&[]);
    let mut stream = connect(&broker);
    let mut body = BytesMut::new();
    let header = RequestHeader::default().with_request_api_key(18).with_request_api_version(99).with_correlation_id(11);
    header.encode(&mut body, 1).expect("header");
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    stream.write_all(&frame).expect("send");
    let mut bytes = response(&mut stream, ApiKey::ApiVersions, 0);
    let decoded = ApiVersionsResponse::decode(&mut bytes, 0).expect("v0 body");
    assert_eq!(decoded.error_code, 35, "UNSUPPORTED_VERSION");
    assert!(decoded.api_keys.iter().any(|key| key.api_key == 0 && key.max_version >= 9));
}

#[test]
fn corrupt_and_oversized_batches_get_kafka_errors() {
    let broker = Broker::start(&["message.max.bytes=20000"]);
    let mut stream = connect(&broker);
    assert_eq!(produce(&mut stream, batch(100)), 0, "a good batch is accepted");
    let mut corrupt = batch(100);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x10;
    assert_eq!(produce(&mut stream, corrupt), 2, "CORRUPT_MESSAGE");
    assert_eq!(produce(&mut stream, batch(30_000)), 10, "MESSAGE_TOO_LARGE");
    assert_eq!(produce(&mut stream, vec![1, 2, 3]), 87, "INVALID_RECORD");
    assert_eq!(produce(&mut stream, batch(100)), 0, "the connection still works");
}

/// Fetch v12 of partition 0 of `bad-input` from offset 0 as `replica_id`, naming
/// `current_leader_epoch`; returns the partition's error code and record bytes.
fn fetch_as(stream: &mut TcpStream, replica_id: i32, current_leader_epoch: i32) -> (i16, usize) {
    let mut partition = FetchPartition::default();
    partition.partition = 0;
    partition.fetch_offset = 0;
    partition.partition_max_bytes = 1 << 20;
    partition.current_leader_epoch = current_leader_epoch;
    let mut topic = FetchTopic::default();
    topic.topic = TopicName(StrBytes::from_static_str("bad-input"));
    topic.partitions = vec![partition];
    let mut body = FetchRequest::default();
    body.replica_id = BrokerId(replica_id);
    body.max_wait_ms = 0;
    body.max_bytes = 1 << 20;
    body.session_epoch = -1;
    body.topics = vec![topic];
    stream.write_all(&request(ApiKey::Fetch, 12, &body)).expect("send");
    let mut bytes = response(stream, ApiKey::Fetch, 12);
    let decoded = FetchResponse::decode(&mut bytes, 12).expect("decode");
    let data = &decoded.responses[0].partitions[0];
    (data.error_code, data.records.as_ref().map_or(0, |records| records.len()))
}

/// A client posing as a follower (`replica_id` of a broker that holds no replica of the
/// partition) would read past the high watermark: refused as Kafka refuses it
/// (`Partition.followerReplicaOrThrow`): UNKNOWN_LEADER_EPOCH when it names the leader epoch,
/// NOT_LEADER_OR_FOLLOWER otherwise, and no records either way.
#[test]
fn a_fetch_posing_as_a_follower_reads_nothing() {
    let broker = Broker::start(&[]);
    let mut stream = connect(&broker);
    assert_eq!(produce(&mut stream, batch(100)), 0, "a good batch is accepted");
    let (code, bytes) = fetch_as(&mut stream, -1, -1);
    assert_eq!(code, 0, "a consumer's fetch is answered");
    assert!(bytes > 0, "a consumer reads the batch");
    assert_eq!(fetch_as(&mut stream, 5, -1), (6, 0), "NOT_LEADER_OR_FOLLOWER, no records");
    assert_eq!(fetch_as(&mut stream, 5, 0), (75, 0), "UNKNOWN_LEADER_EPOCH, no records");
    assert_eq!(fetch_as(&mut stream, 0, -1), (6, 0), "a broker id of this broker's own is no follower either");
}

/// The broker's resident memory in KiB, from /proc.
fn rss_kib(broker: &Broker) -> u64 {
    let pid = broker.child.as_ref().expect("running").id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn hostile_request_bodies_never_kill_the_broker() {
    let mut broker = Broker::start(&["auto.create.topics.enable=false"]);
    // Metadata v1 whose topic-array count is 0x7fffffff: 18 bytes that used to abort the process
    // (`memory allocation of 154618822584 bytes failed`).
    let mut stream = connect(&broker);
    stream
        .write_all(&[
            0x00, 0x00, 0x00, 0x0e, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff,
        ])
        .expect("send");
    // Kafka closes the connection on a malformed request; so do we.
    assert_closed(&mut stream, "Metadata v1 with 0x7fffffff topics");
    assert!(broker.is_running() && answers_api_versions(broker.address), "alive after the 18-byte request");
    let rss_before_kib = rss_kib(&broker);

    // Seeded random 64-byte bodies behind valid headers, three for every served API version
    // (429 in all: 44 of such a set killed the broker before the decoders were bounded).
    let seed = std::env::var("SEED").ok().and_then(|text| text.parse().ok()).unwrap_or(429u64);
    println!("hostile bodies: SEED={seed}");
    let mut rng = engine::io::sim::SimRng::new(seed);
    let mut sent = 0;
    for handler in skua_netd::handlers::REGISTRY {
        for version in (handler.min_version..=handler.max_version).flat_map(|version| [version; 3]) {
            let mut frame = Vec::new();
            frame.extend_from_slice(&(handler.api_key as i16).to_be_bytes());
            frame.extend_from_slice(&version.to_be_bytes());
            frame.extend_from_slice(&9i32.to_be_bytes());
            frame.extend_from_slice(&[0, 4]);
            frame.extend_from_slice(b"evil");
            if handler.api_key.request_header_version(version) >= 2 {
                frame.push(0);
            }
            frame.extend((0..64).map(|_| rng.next_u64() as u8));
            let mut message = (frame.len() as i32).to_be_bytes().to_vec();
            message.extend_from_slice(&frame);
            let mut stream = connect(&broker);
            stream.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
            stream.write_all(&message).expect("send");
            // Whatever the answer (an error response, nothing yet, or a closed connection).
            let _ = stream.read(&mut [0u8; 256]);
            sent += 1;
            assert!(
                broker.is_running(),
                "SEED={seed}: {:?} v{version} body {} killed the broker",
                handler.api_key,
                frame.iter().map(|byte| format!("{byte:02x}")).collect::<String>()
            );
        }
    }
    assert!(sent >= 429, "three bodies for every served API version ({sent})");
    assert!(answers_api_versions(broker.address), "still serving after {sent} hostile requests");
    let rss_after_kib = rss_kib(&broker);
    // Nothing here should hold memory: allow 64 MiB of growth for allocator and page noise.
    assert!(rss_after_kib < rss_before_kib + 64 * 1024, "RSS grew from {rss_before_kib} to {rss_after_kib} KiB");
}

/// Sends `frame` on a new connection and waits for an answer or a close; fails the test if the
/// broker does neither or is gone.
fn answered_or_closed(broker: &mut Broker, frame: &[u8], case: &str) {
    let mut stream = connect(broker);
    stream.write_all(frame).expect("send");
    if let Outcome::StillOpen = outcome(&mut stream) {
        panic!("{case}: the broker neither answered nor closed within {CLOSE_WAIT_MS_MAX} ms");
    }
    assert!(broker.is_running(), "{case}: the broker died");
}

/// The admin APIs under hostile bytes: every prefix of a valid request (truncated bodies, the
/// size prefix telling the truth), an absurd array count or string length spliced in at every
/// offset, versions out of range. Each is answered or its connection closed, and the broker
/// serves the next client.
#[test]
fn hostile_admin_requests_are_answered_or_closed() {
    let mut broker = Broker::start(&["auto.create.topics.enable=false"]);
    let mut cases = 0;
    for (api_key, version, frame) in common::admin_request_frames() {
        const SIZE_PREFIX_BYTES: usize = 4;
        let body = &frame[SIZE_PREFIX_BYTES..];
        // The request header ends after the client id "skua-test" (and the tagged fields of v2).
        let header_bytes = 8 + 2 + "skua-test".len() + usize::from(api_key.request_header_version(version) >= 2);
        for length in header_bytes..body.len() {
            let mut truncated = (length as i32).to_be_bytes().to_vec();
            truncated.extend_from_slice(&body[..length]);
            answered_or_closed(&mut broker, &truncated, &format!("{api_key:?} v{version} truncated to {length} bytes"));
            cases += 1;
        }
        for poison in [&[0x7f, 0xff, 0xff, 0xff][..], &[0xff, 0xff, 0xff, 0xff, 0x0f][..]] {
            for at in header_bytes..body.len() {
                let mut poisoned = body.to_vec();
                for (offset, byte) in poison.iter().enumerate() {
                    if let Some(slot) = poisoned.get_mut(at + offset) {
                        *slot = *byte;
                    }
                }
                let mut message = (poisoned.len() as i32).to_be_bytes().to_vec();
                message.extend_from_slice(&poisoned);
                answered_or_closed(&mut broker, &message, &format!("{api_key:?} v{version} poisoned at {at}"));
                cases += 1;
            }
        }
    }
    // Versions the broker does not serve: Kafka closes the connection, and so do we.
    for (api_key, version) in [
        (ApiKey::AlterPartitionReassignments, 2),
        (ApiKey::AlterPartitionReassignments, -1),
        (ApiKey::ListPartitionReassignments, 1),
        (ApiKey::DescribeLogDirs, 0),
        (ApiKey::DescribeLogDirs, 5),
        (ApiKey::IncrementalAlterConfigs, 2),
        (ApiKey::IncrementalAlterConfigs, i16::MAX),
    ] {
        let mut frame = vec![0, 0, 0, 10];
        frame.extend_from_slice(&(api_key as i16).to_be_bytes());
        frame.extend_from_slice(&version.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 1, 0, 0]);
        let mut stream = connect(&broker);
        stream.write_all(&frame).expect("send");
        assert_closed(&mut stream, &format!("{api_key:?} v{version}"));
        cases += 1;
    }
    println!("{cases} hostile admin requests");
    assert!(broker.is_running() && answers_api_versions(broker.address), "still serving after {cases} requests");
    // A decoder's panic is caught (the connection closes) but still printed: there must be none.
    assert!(!broker.log().contains("panicked"), "a panic while serving:\n{}", broker.log());
}

/// Well-formed but absurd admin requests: negative partition indexes, topic names far past
/// Kafka's 249 characters, a broker id of i32::MIN. Each gets Kafka's per-item error.
#[test]
fn absurd_admin_requests_get_kafka_errors() {
    use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use kafka_protocol::messages::{
        AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, DescribeLogDirsRequest,
        DescribeLogDirsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    };
    let broker = Broker::start(&[]);
    let mut stream = connect(&broker);
    assert_eq!(produce(&mut stream, batch(100)), 0, "the topic exists");
    // Flexible versions carry a compact string of any length: 1 MiB of name.
    let huge = "n".repeat(1 << 20);
    for (name, partition, replicas, expected) in [
        ("bad-input", -5, vec![1], 3),
        ("bad-input", i32::MIN, vec![1], 3),
        ("bad-input", 0, vec![i32::MIN, 1], 39),
        (huge.as_str(), 0, vec![1], 3),
    ] {
        let mut reassignable = ReassignablePartition::default();
        reassignable.partition_index = partition;
        reassignable.replicas = Some(replicas.into_iter().map(BrokerId).collect());
        let mut topic = ReassignableTopic::default();
        topic.name = TopicName(StrBytes::from_string(name.to_string()));
        topic.partitions = vec![reassignable];
        let mut body = AlterPartitionReassignmentsRequest::default();
        body.topics = vec![topic];
        stream.write_all(&request(ApiKey::AlterPartitionReassignments, 1, &body)).expect("send");
        let mut bytes = response(&mut stream, ApiKey::AlterPartitionReassignments, 1);
        let decoded = AlterPartitionReassignmentsResponse::decode(&mut bytes, 1).expect("decode");
        let answer = &decoded.responses[0].partitions[0];
        assert_eq!((answer.partition_index, answer.error_code), (partition, expected), "{} bytes of name", name.len());
    }

    let mut topic = DescribableLogDirTopic::default();
    topic.topic = TopicName(StrBytes::from_string(huge.clone()));
    topic.partitions = vec![-1, i32::MIN, 0];
    let mut body = DescribeLogDirsRequest::default();
    body.topics = Some(vec![topic]);
    stream.write_all(&request(ApiKey::DescribeLogDirs, 4, &body)).expect("send");
    let mut bytes = response(&mut stream, ApiKey::DescribeLogDirs, 4);
    let decoded = DescribeLogDirsResponse::decode(&mut bytes, 4).expect("decode");
    assert_eq!(decoded.error_code, 0);
    assert!(decoded.results.iter().all(|result| result.topics.is_empty()), "nothing of an unknown topic");

    let mut config = AlterableConfig::default();
    config.name = StrBytes::from_string(huge.clone());
    config.config_operation = 1;
    let mut resource = AlterConfigsResource::default();
    resource.resource_type = 2;
    resource.resource_name = StrBytes::from_string(huge);
    resource.configs = vec![config];
    let mut body = IncrementalAlterConfigsRequest::default();
    body.resources = vec![resource];
    stream.write_all(&request(ApiKey::IncrementalAlterConfigs, 1, &body)).expect("send");
    let mut bytes = response(&mut stream, ApiKey::IncrementalAlterConfigs, 1);
    let decoded = IncrementalAlterConfigsResponse::decode(&mut bytes, 1).expect("decode");
    assert_eq!(decoded.responses[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    assert_eq!(produce(&mut stream, batch(100)), 0, "the connection still works");
}
