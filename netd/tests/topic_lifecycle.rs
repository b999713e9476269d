//! Topic creation and deletion are all or nothing across failures and SIGKILL, and a restart never
//! hides acknowledged data or keeps stray partition directories; Kafka's topic name collision
//! rule; the SASL answers of a PLAINTEXT listener; producer ids never repeat across SIGKILL.
//! Raw Kafka requests (kafka-protocol) against the real binary; the expected answers were taken
//! from Apache Kafka 4.4.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::{Broker, Restart};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, InitProducerIdRequest, InitProducerIdResponse, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const ILLEGAL_SASL_STATE: i16 = 34;

fn connect(broker: &Broker) -> TcpStream {
    let stream = TcpStream::connect(broker.address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream
}

fn send<M: Encodable>(stream: &mut TcpStream, api_key: ApiKey, version: i16, body: &M) {
    let mut buffer = BytesMut::new();
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(5)
        .with_client_id(Some(StrBytes::from_static_str("topic-lifecycle-test")));
    header.encode(&mut buffer, api_key.request_header_version(version)).expect("header");
    body.encode(&mut buffer, version).expect("body");
    let mut frame = (buffer.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&buffer);
    stream.write_all(&frame).expect("send");
}

fn receive<M: Decodable>(stream: &mut TcpStream, api_key: ApiKey, version: i16) -> M {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("response size (was the connection closed?)");
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).expect("response body");
    let mut bytes = Bytes::from(body);
    let header_version = if api_key == ApiKey::ApiVersions { 0 } else { api_key.response_header_version(version) };
    let header = ResponseHeader::decode(&mut bytes, header_version).expect("response header");
    assert_eq!(header.correlation_id, 5);
    let response = M::decode(&mut bytes, version).expect("decode");
    assert!(bytes.is_empty(), "{} bytes left after the {api_key:?} v{version} response", bytes.len());
    response
}

fn call<Q: Encodable, R: Decodable>(broker: &Broker, api_key: ApiKey, version: i16, body: &Q) -> R {
    let mut stream = connect(broker);
    send(&mut stream, api_key, version, body);
    receive(&mut stream, api_key, version)
}

fn create_request(name: &str, partitions: i32) -> CreateTopicsRequest {
    let mut topic = CreatableTopic::default();
    topic.name = TopicName(StrBytes::from_string(name.to_string()));
    topic.num_partitions = partitions;
    topic.replication_factor = 1;
    let mut request = CreateTopicsRequest::default();
    request.topics = vec![topic];
    request.timeout_ms = 60_000;
    request
}

/// CreateTopics v7: the error code and message.
fn create(broker: &Broker, name: &str, partitions: i32) -> (i16, String) {
    let response: CreateTopicsResponse = call(broker, ApiKey::CreateTopics, 7, &create_request(name, partitions));
    let result = &response.topics[0];
    (result.error_code, result.error_message.as_ref().map(|message| message.to_string()).unwrap_or_default())
}

fn delete_request(name: &str) -> DeleteTopicsRequest {
    let mut request = DeleteTopicsRequest::default();
    request.topic_names = vec![TopicName(StrBytes::from_string(name.to_string()))];
    request.timeout_ms = 60_000;
    request
}

/// Metadata v12 of one topic: its error code and partition count.
fn metadata(broker: &Broker, name: &str, auto_create: bool) -> (i16, usize) {
    let mut topic = MetadataRequestTopic::default();
    topic.name = Some(TopicName(StrBytes::from_string(name.to_string())));
    let mut request = MetadataRequest::default();
    request.topics = Some(vec![topic]);
    request.allow_auto_topic_creation = auto_create;
    let response: MetadataResponse = call(broker, ApiKey::Metadata, 12, &request);
    (response.topics[0].error_code, response.topics[0].partitions.len())
}

/// Produces one record to each of `partitions` with acks=all; every one must be acknowledged.
fn produce(broker: &Broker, name: &str, partitions: i32) {
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_string(name.to_string()));
    topic.partition_data = (0..partitions)
        .map(|index| {
            let mut partition = PartitionProduceData::default();
            partition.index = index;
            partition.records = Some(Bytes::from(engine::testkit::make_sized_batch(1, 10, 1, 1_700_000_000_000)));
            partition
        })
        .collect();
    let mut request = ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 10_000;
    request.topic_data = vec![topic];
    let response: ProduceResponse = call(broker, ApiKey::Produce, 9, &request);
    for partition in &response.responses[0].partition_responses {
        assert_eq!(partition.error_code, 0, "produce to {name}-{} refused", partition.index);
    }
}

/// The end offsets of partitions 0..`partitions` (ListOffsets latest).
fn end_offsets(broker: &Broker, name: &str, partitions: i32) -> Vec<i64> {
    let mut topic = ListOffsetsTopic::default();
    topic.name = TopicName(StrBytes::from_string(name.to_string()));
    topic.partitions = (0..partitions)
        .map(|index| {
            let mut partition = ListOffsetsPartition::default();
            partition.partition_index = index;
            partition.timestamp = -1;
            partition
        })
        .collect();
    let mut request = ListOffsetsRequest::default();
    request.replica_id = kafka_protocol::messages::BrokerId(-1);
    request.topics = vec![topic];
    let response: ListOffsetsResponse = call(broker, ApiKey::ListOffsets, 7, &request);
    let mut partitions: Vec<_> = response.topics[0].partitions.iter().collect();
    partitions.sort_by_key(|partition| partition.partition_index);
    partitions.iter().map(|partition| if partition.error_code == 0 { partition.offset } else { -1 }).collect()
}

/// The partitions of `topic` that have a directory, sorted.
fn partition_dirs(data_dir: &Path, topic: &str) -> Vec<i32> {
    let mut found: Vec<i32> = std::fs::read_dir(data_dir)
        .expect("data dir")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().to_string_lossy().to_string();
            let (owner, partition) = name.rsplit_once('-')?;
            (owner == topic).then(|| partition.parse().ok()).flatten()
        })
        .collect();
    found.sort_unstable();
    found
}

/// The last lines of the broker's log, for failure messages.
fn log_tail(broker: &Broker) -> String {
    let log = broker.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..]
        .iter()
        .map(|line| &line[..line.len().min(400)])
        .collect::<Vec<_>>()
        .join("\n")
}

fn netd_pid(broker: &Broker) -> u32 {
    broker.child.as_ref().expect("running").id()
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).expect("proc fd").count()
}

/// Sets the soft limit on open files of a running process (the hard limit stays).
fn set_descriptor_limit(pid: u32, limit: usize) {
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={limit}:"))
        .status()
        .expect("prlimit (util-linux)");
    assert!(status.success(), "prlimit failed");
}

/// A create that fails part way (the broker runs out of file descriptors while opening the
/// partitions) leaves no directory behind, and the same name created again afterwards keeps its
/// acknowledged data across SIGKILL.
#[test]
fn failed_create_leaves_nothing_and_later_data_survives_sigkill() {
    let mut broker = Broker::start(&["skua.shard.count=2"]);
    let pid = netd_pid(&broker);
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let soft_limit: usize = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files")?.split_whitespace().next()?.parse().ok())
        .expect("open files limit");
    set_descriptor_limit(pid, open_descriptors(pid) + 40);
    let (code, message) = create(&broker, "half", 200);
    set_descriptor_limit(pid, soft_limit);
    assert_ne!(code, 0, "the create was meant to run out of file descriptors");
    eprintln!("failed create answered {code}: {message}");
    assert_eq!(partition_dirs(&broker.data_dir, "half"), Vec::<i32>::new(), "{}", log_tail(&broker));
    assert_eq!(metadata(&broker, "half", false).0, UNKNOWN_TOPIC_OR_PARTITION);

    assert_eq!(create(&broker, "half", 2).0, 0);
    produce(&broker, "half", 2);
    broker.restart(Restart::Sigkill);
    assert_eq!(metadata(&broker, "half", false), (0, 2), "{}", log_tail(&broker));
    assert_eq!(end_offsets(&broker, "half", 2), vec![1, 1]);
    assert_eq!(partition_dirs(&broker.data_dir, "half"), vec![0, 1]);
}

/// SIGKILLs and restarts the broker once `topic` has between one and `partitions - 1`
/// directories (a create or delete in the middle), or once the request on `stream` was answered.
/// Returns whether the kill came in the middle.
fn kill_midway(broker: &mut Broker, stream: &mut TcpStream, topic: &str, partitions: usize) -> bool {
    stream.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now() + Duration::from_secs(60);
    let midway = loop {
        let count = partition_dirs(&broker.data_dir, topic).len();
        if count > 0 && count < partitions {
            break true;
        }
        let mut byte = [0u8; 1];
        if stream.peek(&mut byte).is_ok() {
            break false; // answered before we caught it in the middle
        }
        assert!(Instant::now() < deadline, "the request neither progressed nor finished");
        std::thread::sleep(Duration::from_micros(200));
    };
    broker.restart(Restart::Sigkill);
    midway
}

/// SIGKILL in the middle of a create: after the restart the topic either exists whole or not at
/// all, with no stray directory; the name then works normally.
#[test]
fn create_interrupted_by_sigkill_is_all_or_nothing() {
    const PARTITIONS: i32 = 1500;
    let mut broker = Broker::start(&["skua.shard.count=2"]);
    let mut stream = connect(&broker);
    send(&mut stream, ApiKey::CreateTopics, 7, &create_request("crash", PARTITIONS));
    let midway = kill_midway(&mut broker, &mut stream, "crash", PARTITIONS as usize);
    eprintln!("killed in the middle of the create: {midway}");
    match metadata(&broker, "crash", false) {
        (0, count) => {
            assert_eq!(count, PARTITIONS as usize);
            assert_eq!(partition_dirs(&broker.data_dir, "crash"), (0..PARTITIONS).collect::<Vec<_>>());
            assert_eq!(delete(&broker, "crash"), 0);
        }
        (code, _) => {
            assert_eq!(code, UNKNOWN_TOPIC_OR_PARTITION);
            assert_eq!(partition_dirs(&broker.data_dir, "crash"), Vec::<i32>::new(), "{}", log_tail(&broker));
        }
    }
    assert_eq!(create(&broker, "crash", 3).0, 0);
    produce(&broker, "crash", 3);
    broker.restart(Restart::Sigkill);
    assert_eq!(metadata(&broker, "crash", false), (0, 3), "{}", log_tail(&broker));
    assert_eq!(end_offsets(&broker, "crash", 3), vec![1, 1, 1]);
}

fn delete(broker: &Broker, name: &str) -> i16 {
    let response: DeleteTopicsResponse = call(broker, ApiKey::DeleteTopics, 5, &delete_request(name));
    response.responses[0].error_code
}

/// SIGKILL in the middle of a delete: the topic does not come back, not even in part, and a new
/// topic of the same name starts empty.
#[test]
fn delete_interrupted_by_sigkill_does_not_resurrect_a_half_topic() {
    const PARTITIONS: i32 = 500;
    let mut broker = Broker::start(&["skua.shard.count=2"]);
    assert_eq!(create(&broker, "doomed", PARTITIONS).0, 0);
    produce(&broker, "doomed", 4);
    let mut stream = connect(&broker);
    send(&mut stream, ApiKey::DeleteTopics, 5, &delete_request("doomed"));
    let midway = kill_midway(&mut broker, &mut stream, "doomed", PARTITIONS as usize);
    eprintln!("killed in the middle of the delete: {midway}");
    assert_eq!(metadata(&broker, "doomed", false).0, UNKNOWN_TOPIC_OR_PARTITION, "{}", log_tail(&broker));
    assert_eq!(partition_dirs(&broker.data_dir, "doomed"), Vec::<i32>::new(), "{}", log_tail(&broker));
    assert_eq!(create(&broker, "doomed", 1).0, 0);
    assert_eq!(end_offsets(&broker, "doomed", 1), vec![0], "the new topic must not see the old one's data");
}

/// CreatePartitions rewrites the manifest: the grown partitions and their data are there after
/// SIGKILL (a manifest still saying 2 would make start-up refuse the data in partitions 2 and 3).
#[test]
fn grown_topic_keeps_its_partitions_across_sigkill() {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
    let mut broker = Broker::start(&["skua.shard.count=2"]);
    assert_eq!(create(&broker, "grown", 2).0, 0);
    let mut topic = CreatePartitionsTopic::default();
    topic.name = TopicName(StrBytes::from_static_str("grown"));
    topic.count = 4;
    let mut request = CreatePartitionsRequest::default();
    request.topics = vec![topic];
    request.timeout_ms = 60_000;
    let response: CreatePartitionsResponse = call(&broker, ApiKey::CreatePartitions, 3, &request);
    assert_eq!(response.results[0].error_code, 0);
    produce(&broker, "grown", 4);
    broker.restart(Restart::Sigkill);
    assert_eq!(metadata(&broker, "grown", false), (0, 4), "{}", log_tail(&broker));
    assert_eq!(end_offsets(&broker, "grown", 4), vec![1, 1, 1, 1]);
}

/// Metadata v13: the topic's id (nil when it has none).
fn topic_id(broker: &Broker, name: &str) -> uuid::Uuid {
    let mut topic = MetadataRequestTopic::default();
    topic.name = Some(TopicName(StrBytes::from_string(name.to_string())));
    let mut request = MetadataRequest::default();
    request.topics = Some(vec![topic]);
    let response: MetadataResponse = call(broker, ApiKey::Metadata, 13, &request);
    assert_eq!((response.error_code, response.topics[0].error_code), (0, 0), "metadata of {name}");
    response.topics[0].topic_id
}

/// A one-node topic has an id from its creation (CreateTopics answers it, Metadata shows it),
/// kept through growth and restarts; a topic from before ids (a version 1 manifest) gets one at
/// start-up, written to its manifest, and keeps it.
#[test]
fn one_node_topic_ids_are_given_and_kept() {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
    let mut broker = Broker::start(&[]);
    let created: CreateTopicsResponse = call(&broker, ApiKey::CreateTopics, 7, &create_request("with-id", 1));
    let id = created.topics[0].topic_id;
    assert!(!id.is_nil(), "CreateTopics answers the new topic's id");
    assert_eq!(topic_id(&broker, "with-id"), id);
    let mut topic = CreatePartitionsTopic::default();
    topic.name = TopicName(StrBytes::from_static_str("with-id"));
    topic.count = 2;
    let mut request = CreatePartitionsRequest::default();
    request.topics = vec![topic];
    request.timeout_ms = 60_000;
    let response: CreatePartitionsResponse = call(&broker, ApiKey::CreatePartitions, 3, &request);
    assert_eq!(response.results[0].error_code, 0);
    assert_eq!(create(&broker, "older", 1).0, 0);
    broker.stop();
    let manifest = broker.data_dir.join("skua-topics/older");
    std::fs::write(&manifest, "SKUA-TOPIC-MANIFEST 1\nname=older\npartitions=1\n").expect("version 1 manifest");
    broker.spawn();
    assert_eq!(topic_id(&broker, "with-id"), id, "kept through growth and a restart");
    let given = topic_id(&broker, "older");
    assert!(!given.is_nil(), "a topic from before ids gets one");
    let hex: String = given.as_bytes().iter().map(|byte| format!("{byte:02x}")).collect();
    let written = std::fs::read_to_string(&manifest).expect("manifest");
    assert!(written.contains(&format!("id={hex}")), "the given id is in the manifest:\n{written}");
    broker.restart(Restart::Sigterm);
    assert_eq!(topic_id(&broker, "older"), given, "the given id is kept");
    assert_eq!(topic_id(&broker, "with-id"), id);
}

/// The longest legal name (249 bytes) fits its partition directories and its manifest (and the
/// manifest's temp file) within a file name's 255 bytes, and survives a restart.
#[test]
fn longest_topic_name_is_created_and_survives_sigkill() {
    let mut broker = Broker::start(&[]);
    let name = "n".repeat(249);
    assert_eq!(create(&broker, &name, 2).0, 0);
    produce(&broker, &name, 2);
    broker.restart(Restart::Sigkill);
    assert_eq!(end_offsets(&broker, &name, 2), vec![1, 1], "{}", log_tail(&broker));
}

/// Kafka 4.4 refuses a topic whose name differs from an existing one only in '.' versus '_'
/// (INVALID_TOPIC_EXCEPTION, "Topic 'a_b' collides with existing topic: a.b"), and Metadata's
/// auto-creation of such a name answers UNKNOWN_TOPIC_OR_PARTITION.
#[test]
fn colliding_names_are_refused_as_kafka_does() {
    let broker = Broker::start(&[]);
    assert_eq!(create(&broker, "metrics.a", 1).0, 0);
    assert_eq!(
        create(&broker, "metrics_a", 1),
        (INVALID_TOPIC_EXCEPTION, "Topic 'metrics_a' collides with existing topic: metrics.a".to_string())
    );
    assert_eq!(create(&broker, "metrics.a", 1), (36, "Topic 'metrics.a' already exists.".to_string()));
    assert_eq!(metadata(&broker, "metrics_a", true), (UNKNOWN_TOPIC_OR_PARTITION, 0));
    assert_eq!(metadata(&broker, "metrics_a", true), (UNKNOWN_TOPIC_OR_PARTITION, 0));
    assert_eq!(metadata(&broker, "metrics-a", true), (0, 1), "'-' does not collide");
}

/// What Kafka 4.4's PLAINTEXT listener answers: SaslHandshake v0/v1 → ILLEGAL_SASL_STATE with no
/// mechanisms, SaslAuthenticate v0–v2 → ILLEGAL_SASL_STATE with Kafka's message, the connection
/// stays open, and ApiVersions advertises SaslHandshake 0–1 and SaslAuthenticate 0–2.
#[test]
fn sasl_requests_get_kafkas_plaintext_answers() {
    let broker = Broker::start(&[]);
    let mut stream = connect(&broker);
    for version in 0..=1 {
        let mut request = SaslHandshakeRequest::default();
        request.mechanism = StrBytes::from_static_str("PLAIN");
        send(&mut stream, ApiKey::SaslHandshake, version, &request);
        let response: SaslHandshakeResponse = receive(&mut stream, ApiKey::SaslHandshake, version);
        assert_eq!((response.error_code, response.mechanisms.len()), (ILLEGAL_SASL_STATE, 0));
    }
    for version in 0..=2 {
        let mut request = SaslAuthenticateRequest::default();
        request.auth_bytes = Bytes::from_static(b"\0user\0secret");
        send(&mut stream, ApiKey::SaslAuthenticate, version, &request);
        let response: SaslAuthenticateResponse = receive(&mut stream, ApiKey::SaslAuthenticate, version);
        assert_eq!(response.error_code, ILLEGAL_SASL_STATE);
        assert_eq!(
            response.error_message.as_deref(),
            Some("SaslAuthenticate request received after successful authentication")
        );
        assert!(response.auth_bytes.is_empty());
        assert_eq!(response.session_lifetime_ms, 0);
    }
    send(&mut stream, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let versions: ApiVersionsResponse = receive(&mut stream, ApiKey::ApiVersions, 3);
    let range = |key: ApiKey| {
        versions.api_keys.iter().find(|api| api.api_key == key as i16).map(|api| (api.min_version, api.max_version))
    };
    assert_eq!(range(ApiKey::SaslHandshake), Some((0, 1)));
    assert_eq!(range(ApiKey::SaslAuthenticate), Some((0, 2)));
}

/// Producer ids are reserved durably in blocks: none is handed out twice across SIGKILL restarts.
#[test]
fn producer_ids_never_repeat_across_sigkill() {
    let mut broker = Broker::start(&[]);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..3 {
        for _ in 0..3 {
            let mut request = InitProducerIdRequest::default();
            request.transaction_timeout_ms = 60_000;
            request.producer_id = kafka_protocol::messages::ProducerId(-1);
            request.producer_epoch = -1;
            request.transactional_id = None;
            let response: InitProducerIdResponse = call(&broker, ApiKey::InitProducerId, 4, &request);
            assert_eq!(response.error_code, 0);
            assert!(seen.insert(response.producer_id.0), "producer id {} handed out twice", response.producer_id.0);
        }
        broker.restart(Restart::Sigkill);
    }
    assert_eq!(seen.len(), 9);
}

/// A data directory from before topic manifests opens as before (the manifests are written at
/// start); one whose directories cannot be matched to a partition count without dropping record
/// bytes makes netd refuse to start and name the directory, instead of hiding the topic.
#[test]
fn old_data_dirs_migrate_and_unmatched_data_stops_the_start() {
    let mut broker = Broker::start(&["skua.shard.count=2"]);
    assert_eq!(create(&broker, "old", 3).0, 0);
    produce(&broker, "old", 3);
    broker.stop();
    // What main left: no manifests, and (after a failed create or an interrupted delete) a gap.
    std::fs::remove_dir_all(broker.data_dir.join("skua-topics")).expect("remove manifests");
    std::fs::remove_dir_all(broker.data_dir.join("old-1")).expect("make a gap");
    let refused = common::run_bounded(
        std::process::Command::new(env!("CARGO_BIN_EXE_netd"))
            .arg("--override")
            .arg(format!("listeners=PLAINTEXT://{}", broker.address))
            .arg("--override")
            .arg(format!("log.dirs={}", broker.data_dir.display())),
        b"",
        Duration::from_secs(20),
    );
    assert!(!refused.killed && !refused.status.success(), "netd started: {refused:?}");
    assert!(refused.stderr.contains("old-2 holds record batches"), "{}", refused.stderr);
    assert_eq!(partition_dirs(&broker.data_dir, "old"), vec![0, 2], "a refusal changes nothing");

    std::fs::remove_dir_all(broker.data_dir.join("old-2")).expect("the operator moves it away");
    broker.spawn();
    assert_eq!(metadata(&broker, "old", false), (0, 1), "{}", log_tail(&broker));
    assert_eq!(end_offsets(&broker, "old", 1), vec![1]);
    assert!(broker.data_dir.join("skua-topics/old").is_file());
}
