//! The admin APIs' edge cases, answer by answer against Kafka 4.4: AlterPartitionReassignments,
//! ListPartitionReassignments, DescribeLogDirs, IncrementalAlterConfigs, DescribeAcls, CreateAcls
//! and DeleteAcls (a Kafka without an authorizer), ListTransactions, a Fetch that names a
//! replica id which is no replica of the partition, and OffsetCommit/OffsetFetch v10 (topic ids). Each case states what Kafka answered (code,
//! and the message where Kafka's CLIs print it) and, where a one-node Skua answers differently on
//! purpose, what Skua answers instead (each such difference is in docs/kafka-differences.md).
//!
//! By default the cases run against a `netd` this test starts. With `SKUA_ORACLE=host:port` they
//! run against that broker instead, a one-node Kafka (`scripts/kafka-server.sh start 39192`), and
//! check the Kafka column: that is how the table was observed (Kafka 4.4.0). Every observed answer
//! is printed (`-- --nocapture`), and all mismatches are reported together at the end.

mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::Broker;
use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, BrokerId, CreateTopicsRequest,
    CreateTopicsResponse, DescribeLogDirsRequest, DescribeLogDirsResponse, FetchRequest, FetchResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

const UNKNOWN_SERVER_ERROR: i16 = -1;
const NONE: i16 = 0;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
const INVALID_REQUEST: i16 = 42;
const INVALID_CONFIG: i16 = 40;
const UNKNOWN_LEADER_EPOCH: i16 = 75;
const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;

/// How long a topic may take to have a leader and a log after CreateTopics.
const TOPIC_READY_MS_MAX: u64 = 20_000;

/// Where the cases go, and which column of the table they check.
struct Target {
    _broker: Option<Broker>,
    address: SocketAddr,
    /// The broker's log directory when this test started it (Kafka's is not known here).
    log_dir: Option<String>,
    oracle: bool,
    stream: TcpStream,
    correlation_id: i32,
    /// This broker's id (from Metadata).
    node_id: i32,
    /// What every case observed, for the printed table.
    observed: Vec<String>,
    mismatches: Vec<String>,
}

/// What a case expects: a code, and the message when it is checked (`None`: not compared;
/// `Some(None)`: no message, so that clients show the code's own).
#[derive(Clone, Debug)]
struct Expected {
    code: i16,
    message: Option<Option<String>>,
}

fn code(code: i16) -> Expected {
    Expected { code, message: None }
}

fn with_message(code: i16, message: &str) -> Expected {
    Expected { code, message: Some(Some(message.to_string())) }
}

fn no_message(code: i16) -> Expected {
    Expected { code, message: Some(None) }
}

impl Target {
    fn start() -> Target {
        let (broker, address, log_dir, oracle) = match std::env::var("SKUA_ORACLE") {
            Ok(address) => (None, address.parse().expect("SKUA_ORACLE=host:port"), None, true),
            Err(_) => {
                let broker = Broker::start(&[]);
                let address = broker.address;
                let log_dir = broker.data_dir.display().to_string();
                (Some(broker), address, Some(log_dir), false)
            }
        };
        let stream = TcpStream::connect(address).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        let mut target = Target {
            _broker: broker,
            address,
            log_dir,
            oracle,
            stream,
            correlation_id: 0,
            node_id: -1,
            observed: Vec::new(),
            mismatches: Vec::new(),
        };
        let metadata: MetadataResponse = target.call(ApiKey::Metadata, 12, &MetadataRequest::default());
        assert_eq!(metadata.brokers.len(), 1, "a one-node broker");
        target.node_id = metadata.brokers[0].node_id.0;
        target
    }

    fn call<Q: Encodable, A: Decodable>(&mut self, api_key: ApiKey, version: i16, body: &Q) -> A {
        self.correlation_id += 1;
        let frame = common::request_frame(api_key, version, self.correlation_id, body);
        self.stream.write_all(&frame).expect("send");
        let (correlation_id, mut bytes) = common::read_response(&mut self.stream, api_key, version);
        assert_eq!(correlation_id, self.correlation_id);
        A::decode(&mut bytes, version).expect("decode")
    }

    /// Compares one answer with the Kafka column (oracle) or the Skua column (`None`: as Kafka).
    fn check(&mut self, case: &str, code: i16, message: Option<&str>, kafka: Expected, skua: Option<Expected>) {
        let expected = if self.oracle { kafka } else { skua.unwrap_or(kafka) };
        let line = format!("{case:<60} | {code:>3} | {}", message.unwrap_or("(null)"));
        println!("{line}");
        self.observed.push(line);
        let code_matches = code == expected.code;
        let message_matches = expected.message.as_ref().is_none_or(|wanted| message == wanted.as_deref());
        if !code_matches || !message_matches {
            self.mismatches
                .push(format!("{case}: expected {} {:?}, got {code} {message:?}", expected.code, expected.message));
        }
    }

    /// Fails the test with every mismatch at once.
    fn finish(self) {
        let who = if self.oracle { format!("the oracle at {}", self.address) } else { "netd".to_string() };
        assert!(self.mismatches.is_empty(), "{who} answered differently:\n{}", self.mismatches.join("\n"));
    }

    /// A topic unique to this run (the oracle keeps topics between runs), with `partitions`
    /// partitions of one replica, led and with a log on this broker.
    fn create_topic(&mut self, tag: &str, partitions: i32) -> String {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").subsec_nanos();
        let name = format!("oracle-{tag}-{}-{nanos}", std::process::id());
        let mut topic = CreatableTopic::default();
        topic.name = topic_name(&name);
        topic.num_partitions = partitions;
        topic.replication_factor = 1;
        let mut body = CreateTopicsRequest::default();
        body.topics = vec![topic];
        body.timeout_ms = 10_000;
        let response: CreateTopicsResponse = self.call(ApiKey::CreateTopics, 7, &body);
        assert_eq!(response.topics[0].error_code, NONE, "create {name}: {:?}", response.topics[0].error_message);
        let deadline = Instant::now() + Duration::from_millis(TOPIC_READY_MS_MAX);
        loop {
            let mut body = MetadataRequest::default();
            let mut request_topic = kafka_protocol::messages::metadata_request::MetadataRequestTopic::default();
            request_topic.name = Some(topic_name(&name));
            body.topics = Some(vec![request_topic]);
            let metadata: MetadataResponse = self.call(ApiKey::Metadata, 12, &body);
            let led = metadata.topics.first().is_some_and(|topic| {
                topic.error_code == NONE
                    && topic.partitions.len() == partitions as usize
                    && topic.partitions.iter().all(|partition| partition.leader_id.0 == self.node_id)
            });
            // Every partition takes a batch: its log exists on the broker then.
            if led && (0..partitions).all(|partition| self.produce(&name, partition) == NONE) {
                return name;
            }
            assert!(Instant::now() < deadline, "topic {name} never got a leader");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Produces one small batch to `index` of `topic`; the partition's error code.
    fn produce(&mut self, topic: &str, index: i32) -> i16 {
        let mut partition = PartitionProduceData::default();
        partition.index = index;
        partition.records = Some(Bytes::from(engine::testkit::make_sized_batch(1, 100, 3, 1_700_000_000_000)));
        let mut topic_data = TopicProduceData::default();
        topic_data.name = topic_name(topic);
        topic_data.partition_data = vec![partition];
        let mut body = ProduceRequest::default();
        body.acks = -1;
        body.timeout_ms = 5_000;
        body.topic_data = vec![topic_data];
        let response: ProduceResponse = self.call(ApiKey::Produce, 9, &body);
        response.responses[0].partition_responses[0].error_code
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn text(value: &Option<StrBytes>) -> Option<&str> {
    value.as_ref().map(|text| text.as_str())
}

// ---- AlterPartitionReassignments / ListPartitionReassignments ----

/// One partition's reassignment to `replicas` (None: cancel); its (code, message).
fn reassign(
    target: &mut Target,
    version: i16,
    allow_factor_change: bool,
    topic: &str,
    partition: i32,
    replicas: Option<&[i32]>,
) -> (i16, Option<String>) {
    let mut reassignable = ReassignablePartition::default();
    reassignable.partition_index = partition;
    reassignable.replicas = replicas.map(|ids| ids.iter().map(|id| BrokerId(*id)).collect());
    let mut reassignable_topic = ReassignableTopic::default();
    reassignable_topic.name = topic_name(topic);
    reassignable_topic.partitions = vec![reassignable];
    let mut body = AlterPartitionReassignmentsRequest::default();
    body.timeout_ms = 10_000;
    body.allow_replication_factor_change = allow_factor_change;
    body.topics = vec![reassignable_topic];
    let response: AlterPartitionReassignmentsResponse =
        target.call(ApiKey::AlterPartitionReassignments, version, &body);
    assert_eq!(response.error_code, NONE, "top-level error: {:?}", response.error_message);
    let answer = &response.responses[0].partitions[0];
    assert_eq!(answer.partition_index, partition);
    (answer.error_code, text(&answer.error_message).map(str::to_string))
}

#[test]
fn reassignments_edge_cases_answer_as_kafka() {
    let mut target = Target::start();
    let topic = target.create_topic("reassign", 2);
    let me = target.node_id;
    let other = me + 4;
    for version in [0, 1] {
        let case = |target: &mut Target, name: &str, topic: &str, partition, replicas: Option<&[i32]>, kafka, skua| {
            let (code, message) = reassign(target, version, true, topic, partition, replicas);
            target.check(
                &format!("AlterPartitionReassignments v{version} {name}"),
                code,
                message.as_deref(),
                kafka,
                skua,
            );
        };
        let unknown_topic =
            with_message(UNKNOWN_TOPIC_OR_PARTITION, "Unable to find a topic named oracle-no-such-topic.");
        let unknown_partition = |index: i32| {
            with_message(UNKNOWN_TOPIC_OR_PARTITION, &format!("Unable to find partition {topic}:{index}."))
        };
        let unregistered = |broker: i32| {
            let message =
                format!("The manual partition assignment includes broker {broker}, but no such broker is registered.");
            with_message(INVALID_REPLICA_ASSIGNMENT, &message)
        };
        let twice = with_message(
            INVALID_REPLICA_ASSIGNMENT,
            &format!("The manual partition assignment includes the broker {me} more than once."),
        );
        let empty =
            with_message(INVALID_REPLICA_ASSIGNMENT, "The manual partition assignment includes an empty replica list.");
        case(&mut target, "unknown topic", "oracle-no-such-topic", 0, Some(&[me]), unknown_topic.clone(), None);
        case(&mut target, "unknown partition", &topic, 7, Some(&[me]), unknown_partition(7), None);
        case(&mut target, "negative partition", &topic, -1, Some(&[me]), unknown_partition(-1), None);
        case(&mut target, "a broker that does not exist", &topic, 0, Some(&[me, other]), unregistered(other), None);
        case(&mut target, "duplicate replicas", &topic, 0, Some(&[me, me]), twice.clone(), None);
        // Kafka checks the brokers in ascending order.
        case(&mut target, "unknown broker first, then duplicates", &topic, 0, Some(&[other, me, me]), twice, None);
        case(&mut target, "two unknown brokers", &topic, 0, Some(&[other + 1, other]), unregistered(other), None);
        case(&mut target, "empty replica list", &topic, 0, Some(&[]), empty, None);
        case(&mut target, "negative replica id", &topic, 0, Some(&[-1]), unregistered(-1), None);
        case(&mut target, "cancel, none in progress", &topic, 0, None, no_message(NO_REASSIGNMENT_IN_PROGRESS), None);
        case(&mut target, "cancel on an unknown topic", "oracle-no-such-topic", 0, None, unknown_topic, None);
        case(&mut target, "to the replicas it has", &topic, 1, Some(&[me]), no_message(NONE), None);
    }

    // v1 may forbid changing the replication factor: the assignment is checked first.
    for (name, replicas, kafka) in [
        (
            "to an unknown broker too",
            vec![me, other],
            with_message(
                INVALID_REPLICA_ASSIGNMENT,
                &format!("The manual partition assignment includes broker {other}, but no such broker is registered."),
            ),
        ),
        ("to the replicas it has", vec![me], no_message(NONE)),
    ] {
        let (code, message) = reassign(&mut target, 1, false, &topic, 0, Some(&replicas));
        let case = format!("AlterPartitionReassignments v1 factor change forbidden, {name}");
        target.check(&case, code, message.as_deref(), kafka, None);
    }

    // List: nothing is in progress, whatever is asked.
    for (name, topics) in [
        ("all", None),
        ("an unknown topic", Some(vec![("oracle-no-such-topic".to_string(), vec![0])])),
        ("a known topic", Some(vec![(topic.clone(), vec![0, 1, 9])])),
    ] {
        let mut body = ListPartitionReassignmentsRequest::default();
        body.timeout_ms = 10_000;
        body.topics = topics.map(|topics| {
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    let mut topic = ListPartitionReassignmentsTopics::default();
                    topic.name = topic_name(&name);
                    topic.partition_indexes = partitions;
                    topic
                })
                .collect()
        });
        let response: ListPartitionReassignmentsResponse = target.call(ApiKey::ListPartitionReassignments, 0, &body);
        let listed = response.topics.iter().filter(|listed| listed.name.0.as_str() == topic).count();
        let case = format!("ListPartitionReassignments {name} (topics listed: {})", response.topics.len());
        target.check(&case, response.error_code, text(&response.error_message), code(NONE), None);
        assert_eq!(listed, 0, "{case}: nothing in progress on this run's topic");
    }
    target.finish();
}

// ---- DescribeLogDirs ----

/// DescribeLogDirs of `topics` (None: all); the response.
fn describe_log_dirs(
    target: &mut Target,
    version: i16,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> DescribeLogDirsResponse {
    let mut body = DescribeLogDirsRequest::default();
    body.topics = topics.map(|topics| {
        topics
            .into_iter()
            .map(|(name, partitions)| {
                let mut topic = DescribableLogDirTopic::default();
                topic.topic = topic_name(&name);
                topic.partitions = partitions;
                topic
            })
            .collect()
    });
    target.call(ApiKey::DescribeLogDirs, version, &body)
}

/// The partitions of `topic` a DescribeLogDirs answer lists, over all its directories.
fn described_partitions(response: &DescribeLogDirsResponse, topic: &str) -> Vec<i32> {
    let mut partitions: Vec<i32> = response
        .results
        .iter()
        .flat_map(|result| result.topics.iter())
        .filter(|described| described.name.0.as_str() == topic)
        .flat_map(|described| described.partitions.iter().map(|partition| partition.partition_index))
        .collect();
    partitions.sort();
    partitions
}

#[test]
fn describe_log_dirs_edge_cases_answer_as_kafka() {
    let mut target = Target::start();
    let topic = target.create_topic("logdirs", 2);
    for version in 1..=4 {
        let all = describe_log_dirs(&mut target, version, None);
        let dirs = all.results.len();
        let case = format!("DescribeLogDirs v{version} all topics ({dirs} dir)");
        target.check(&case, all.error_code, None, code(NONE), None);
        assert_eq!(dirs, 1, "{case}: one log directory");
        let result = &all.results[0];
        target.check(
            &format!("DescribeLogDirs v{version} all topics: the dir's code"),
            result.error_code,
            None,
            code(NONE),
            None,
        );
        assert_eq!(described_partitions(&all, &topic), vec![0, 1], "{case}: both partitions of {topic}");
        // The directory is named by its absolute path: the one this test gave netd.
        let log_dir = result.log_dir.as_str();
        assert!(log_dir.starts_with('/'), "{case}: log dir {log_dir}");
        if let Some(expected) = target.log_dir.clone() {
            assert_eq!(log_dir, expected, "{case}: the configured log.dirs");
        }
        let partition_0 = result
            .topics
            .iter()
            .find(|described| described.name.0.as_str() == topic)
            .and_then(|described| described.partitions.iter().find(|partition| partition.partition_index == 0))
            .expect("partition 0");
        assert!(partition_0.partition_size > 0, "{case}: partition 0 holds the produced batch");
        assert_eq!((partition_0.offset_lag, partition_0.is_future_key), (0, false), "{case}");
        if version >= 4 {
            assert!(result.total_bytes > 0 && result.usable_bytes >= 0, "{case}: volume sizes {result:?}");
        }

        let unknown =
            describe_log_dirs(&mut target, version, Some(vec![("oracle-no-such-topic".to_string(), vec![0])]));
        let listed: usize = unknown.results.iter().map(|result| result.topics.len()).sum();
        let case =
            format!("DescribeLogDirs v{version} an unknown topic ({} dir, {listed} topics)", unknown.results.len());
        target.check(&case, unknown.error_code, None, code(NONE), None);
        assert_eq!((unknown.results.len(), listed), (1, 0), "{case}: the directory, no topic");

        let named = describe_log_dirs(&mut target, version, Some(vec![(topic.clone(), vec![1, 9, -1])]));
        let case = format!("DescribeLogDirs v{version} partitions 1, 9, -1 of a topic");
        target.check(&case, named.error_code, None, code(NONE), None);
        assert_eq!(described_partitions(&named, &topic), vec![1], "{case}: only the partition that exists");
        assert_eq!(named.results[0].log_dir, result.log_dir.clone(), "{case}: the same directory");
    }
    target.finish();
}

// ---- IncrementalAlterConfigs ----

const RESOURCE_UNKNOWN: i8 = 0;
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_BROKER_LOGGER: i8 = 8;
const RESOURCE_CLIENT_METRICS: i8 = 16;
const RESOURCE_GROUP: i8 = 32;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// One config change: (key, operation, value).
type Change<'a> = (&'a str, i8, Option<&'a str>);
/// A resource and its changes: (type, name, changes).
type Resource<'a> = (i8, &'a str, &'a [Change<'a>]);
/// A case: (name, resource type, resource, changes, validate_only, Kafka's answer, Skua's if not).
type ConfigCase<'a> = (&'a str, i8, &'a str, &'a [Change<'a>], bool, Expected, Option<Expected>);

/// One IncrementalAlterConfigs request; each resource's (code, message).
fn alter_configs(
    target: &mut Target,
    version: i16,
    validate_only: bool,
    resources: &[Resource],
) -> Vec<(i16, Option<String>)> {
    let mut body = IncrementalAlterConfigsRequest::default();
    body.validate_only = validate_only;
    body.resources = resources
        .iter()
        .map(|(resource_type, name, configs)| {
            let mut resource = AlterConfigsResource::default();
            resource.resource_type = *resource_type;
            resource.resource_name = StrBytes::from_string(name.to_string());
            resource.configs = configs
                .iter()
                .map(|(key, operation, value)| {
                    let mut config = AlterableConfig::default();
                    config.name = StrBytes::from_string(key.to_string());
                    config.config_operation = *operation;
                    config.value = value.map(|value| StrBytes::from_string(value.to_string()));
                    config
                })
                .collect();
            resource
        })
        .collect();
    let response: IncrementalAlterConfigsResponse = target.call(ApiKey::IncrementalAlterConfigs, version, &body);
    assert_eq!(response.responses.len(), resources.len(), "one answer per resource");
    response
        .responses
        .iter()
        .map(|answer| (answer.error_code, text(&answer.error_message).map(str::to_string)))
        .collect()
}

#[test]
fn incremental_alter_configs_edge_cases_answer_as_kafka() {
    let mut target = Target::start();
    let topic = target.create_topic("configs", 1);
    let me = target.node_id.to_string();
    let other = (target.node_id + 4).to_string();
    let refused = |key: &str| {
        Some(with_message(
            INVALID_CONFIG,
            &format!("Skua does not change configs at runtime yet (cannot change {key}); set them at creation"),
        ))
    };
    let broker_refused = |key: &str| {
        let message = if key == "log.dirs" {
            format!("Skua does not change the broker config {key} at runtime; set it in the configuration file")
        } else {
            format!("Skua does not use the broker config {key}; a configuration file's is ignored too")
        };
        Some(with_message(INVALID_CONFIG, &message))
    };
    let unknown_topic = with_message(UNKNOWN_TOPIC_OR_PARTITION, "The topic 'oracle-no-such-topic' does not exist.");
    let other_broker =
        with_message(INVALID_REQUEST, &format!("Unexpected broker id, expected {me}, but received {other}"));
    let not_a_number = with_message(INVALID_REQUEST, "Node id must be an integer, but it is: abc");
    let no_logger = with_message(INVALID_CONFIG, "Logger kafka.server.ReplicaManager does not exist!");
    for version in [0, 1] {
        let cases: Vec<ConfigCase> = vec![
            (
                "topic SET",
                RESOURCE_TOPIC,
                &topic,
                &[("retention.ms", SET, Some("100000"))],
                false,
                no_message(NONE),
                None,
            ),
            (
                "topic DELETE of what SET set",
                RESOURCE_TOPIC,
                &topic,
                &[("retention.ms", DELETE, None)],
                false,
                no_message(NONE),
                None,
            ),
            (
                "topic DELETE of an unset config",
                RESOURCE_TOPIC,
                &topic,
                &[("segment.ms", DELETE, None)],
                false,
                no_message(NONE),
                None,
            ),
            (
                "topic APPEND to a list",
                RESOURCE_TOPIC,
                &topic,
                &[("cleanup.policy", APPEND, Some("compact"))],
                false,
                no_message(NONE),
                None,
            ),
            (
                "topic SUBTRACT from a list",
                RESOURCE_TOPIC,
                &topic,
                &[("cleanup.policy", SUBTRACT, Some("compact"))],
                false,
                no_message(NONE),
                None,
            ),
            (
                "topic APPEND to a non-list",
                RESOURCE_TOPIC,
                &topic,
                &[("retention.ms", APPEND, Some("1"))],
                false,
                with_message(INVALID_CONFIG, "Can't APPEND to key retention.ms because its type is not LIST."),
                None,
            ),
            (
                "topic SET an unknown key",
                RESOURCE_TOPIC,
                &topic,
                &[("no.such.config", SET, Some("1"))],
                false,
                with_message(INVALID_CONFIG, "Unknown topic config name: no.such.config"),
                None,
            ),
            (
                "topic DELETE an unknown key",
                RESOURCE_TOPIC,
                &topic,
                &[("no.such.config", DELETE, None)],
                false,
                no_message(NONE),
                None,
            ),
            (
                "topic SET a bad value",
                RESOURCE_TOPIC,
                &topic,
                &[("retention.ms", SET, Some("soon"))],
                false,
                with_message(
                    INVALID_CONFIG,
                    "Invalid value soon for configuration retention.ms: Not a number of type LONG",
                ),
                None,
            ),
            (
                "topic unknown operation 7",
                RESOURCE_TOPIC,
                &topic,
                &[("retention.ms", 7, Some("1"))],
                false,
                no_message(UNKNOWN_SERVER_ERROR),
                None,
            ),
            (
                "topic the same key twice",
                RESOURCE_TOPIC,
                &topic,
                &[("segment.ms", DELETE, None), ("segment.ms", DELETE, None)],
                false,
                with_message(INVALID_REQUEST, "Error due to duplicate config keys"),
                None,
            ),
            (
                "topic SET, validate_only",
                RESOURCE_TOPIC,
                &topic,
                &[("retention.ms", SET, Some("100000"))],
                true,
                no_message(NONE),
                None,
            ),
            (
                "unknown topic SET",
                RESOURCE_TOPIC,
                "oracle-no-such-topic",
                &[("retention.ms", SET, Some("1"))],
                false,
                unknown_topic.clone(),
                None,
            ),
            (
                "unknown topic DELETE",
                RESOURCE_TOPIC,
                "oracle-no-such-topic",
                &[("retention.ms", DELETE, None)],
                false,
                unknown_topic.clone(),
                None,
            ),
            (
                "broker (own id) SET",
                RESOURCE_BROKER,
                &me,
                &[("log.cleaner.threads", SET, Some("1"))],
                false,
                no_message(NONE),
                broker_refused("log.cleaner.threads"),
            ),
            (
                "broker (own id) DELETE",
                RESOURCE_BROKER,
                &me,
                &[("log.cleaner.threads", DELETE, None)],
                false,
                no_message(NONE),
                None,
            ),
            (
                "broker (own id) SET a static config",
                RESOURCE_BROKER,
                &me,
                &[("log.dirs", SET, Some("/tmp/x"))],
                false,
                with_message(INVALID_REQUEST, "Cannot update these configs dynamically: [log.dirs]"),
                broker_refused("log.dirs"),
            ),
            (
                "broker (other id) SET",
                RESOURCE_BROKER,
                &other,
                &[("log.cleaner.threads", SET, Some("1"))],
                false,
                other_broker.clone(),
                None,
            ),
            (
                "broker (other id) DELETE",
                RESOURCE_BROKER,
                &other,
                &[("log.cleaner.threads", DELETE, None)],
                false,
                other_broker.clone(),
                None,
            ),
            (
                "broker \"\" (cluster default) SET",
                RESOURCE_BROKER,
                "",
                &[("log.cleaner.threads", SET, Some("1"))],
                false,
                no_message(NONE),
                broker_refused("log.cleaner.threads"),
            ),
            (
                "broker \"\" (cluster default) DELETE",
                RESOURCE_BROKER,
                "",
                &[("log.cleaner.threads", DELETE, None)],
                false,
                no_message(NONE),
                None,
            ),
            (
                "broker \"abc\" DELETE",
                RESOURCE_BROKER,
                "abc",
                &[("log.cleaner.threads", DELETE, None)],
                false,
                not_a_number.clone(),
                None,
            ),
            (
                "broker SET, validate_only",
                RESOURCE_BROKER,
                &me,
                &[("log.cleaner.threads", SET, Some("1"))],
                true,
                no_message(NONE),
                broker_refused("log.cleaner.threads"),
            ),
            (
                "broker-logger (own id) SET",
                RESOURCE_BROKER_LOGGER,
                &me,
                &[("kafka.server.ReplicaManager", SET, Some("INFO"))],
                false,
                no_logger.clone(),
                None,
            ),
            (
                "broker-logger (own id) DELETE",
                RESOURCE_BROKER_LOGGER,
                &me,
                &[("kafka.server.ReplicaManager", DELETE, None)],
                false,
                no_logger.clone(),
                None,
            ),
            (
                "broker-logger (own id) SET, validate_only",
                RESOURCE_BROKER_LOGGER,
                &me,
                &[("kafka.server.ReplicaManager", SET, Some("INFO"))],
                true,
                no_logger.clone(),
                None,
            ),
            (
                "broker-logger root SET, validate_only",
                RESOURCE_BROKER_LOGGER,
                &me,
                &[("root", SET, Some("INFO"))],
                true,
                no_message(NONE),
                refused("root"),
            ),
            (
                "broker-logger root DELETE",
                RESOURCE_BROKER_LOGGER,
                &me,
                &[("root", DELETE, None)],
                false,
                with_message(INVALID_REQUEST, "Removing the log level of the root logger is not allowed"),
                None,
            ),
            (
                "broker-logger root APPEND",
                RESOURCE_BROKER_LOGGER,
                &me,
                &[("root", APPEND, Some("INFO"))],
                false,
                with_message(INVALID_REQUEST, "APPEND operation is not allowed for the BROKER_LOGGER resource"),
                None,
            ),
            (
                "broker-logger \"abc\" SET",
                RESOURCE_BROKER_LOGGER,
                "abc",
                &[("root", SET, Some("INFO"))],
                false,
                not_a_number.clone(),
                None,
            ),
            (
                "broker-logger (other id) SET",
                RESOURCE_BROKER_LOGGER,
                &other,
                &[("root", SET, Some("INFO"))],
                false,
                with_message(INVALID_REQUEST, &format!("Unexpected node id. Expected {me}, but received {other}")),
                None,
            ),
            (
                "group SET, validate_only",
                RESOURCE_GROUP,
                "oracle-group",
                &[("consumer.session.timeout.ms", SET, Some("45000"))],
                true,
                no_message(NONE),
                refused("consumer.session.timeout.ms"),
            ),
            (
                "client-metrics SET, validate_only",
                RESOURCE_CLIENT_METRICS,
                "oracle-metrics",
                &[("interval.ms", SET, Some("60000"))],
                true,
                no_message(NONE),
                refused("interval.ms"),
            ),
            (
                "unknown resource type 0",
                RESOURCE_UNKNOWN,
                "x",
                &[("retention.ms", DELETE, None)],
                false,
                with_message(INVALID_REQUEST, "Unknown resource type 0"),
                None,
            ),
            (
                "unknown resource type 99",
                99,
                "x",
                &[("retention.ms", DELETE, None)],
                false,
                with_message(INVALID_REQUEST, "Unknown resource type 99"),
                None,
            ),
        ];
        for (name, resource_type, resource, changes, validate_only, kafka, skua) in cases {
            let answers = alter_configs(&mut target, version, validate_only, &[(resource_type, resource, changes)]);
            let (code, message) = &answers[0];
            target.check(&format!("IncrementalAlterConfigs v{version} {name}"), *code, message.as_deref(), kafka, skua);
        }
        // The same resource twice in one request.
        let twice: &[Change] = &[("segment.ms", DELETE, None)];
        let answers = alter_configs(
            &mut target,
            version,
            false,
            &[(RESOURCE_TOPIC, &topic, twice), (RESOURCE_TOPIC, &topic, twice)],
        );
        for (index, (code, message)) in answers.iter().enumerate() {
            let name = format!("IncrementalAlterConfigs v{version} the same topic twice (answer {index})");
            let kafka = with_message(INVALID_REQUEST, "Each resource must appear at most once.");
            target.check(&name, *code, message.as_deref(), kafka, None);
        }
    }
    target.finish();
}

/// A resource of the older AlterConfigs and its configs: (type, name, (key, value)s).
type LegacyResource<'a> = (i8, &'a str, &'a [(&'a str, Option<&'a str>)]);

/// One AlterConfigs (the older, non-incremental API) request; each resource's (code, message).
fn alter_configs_legacy(
    target: &mut Target,
    version: i16,
    validate_only: bool,
    resources: &[LegacyResource],
) -> Vec<(i16, Option<String>)> {
    use kafka_protocol::messages::alter_configs_request::{
        AlterConfigsResource as LegacyResource, AlterableConfig as LegacyConfig,
    };
    let mut body = kafka_protocol::messages::AlterConfigsRequest::default();
    body.validate_only = validate_only;
    body.resources = resources
        .iter()
        .map(|(resource_type, name, configs)| {
            let mut resource = LegacyResource::default();
            resource.resource_type = *resource_type;
            resource.resource_name = StrBytes::from_string(name.to_string());
            resource.configs = configs
                .iter()
                .map(|(key, value)| {
                    let mut config = LegacyConfig::default();
                    config.name = StrBytes::from_string(key.to_string());
                    config.value = value.map(|value| StrBytes::from_string(value.to_string()));
                    config
                })
                .collect();
            resource
        })
        .collect();
    let response: kafka_protocol::messages::AlterConfigsResponse = target.call(ApiKey::AlterConfigs, version, &body);
    assert_eq!(response.responses.len(), resources.len(), "one answer per resource");
    response
        .responses
        .iter()
        .map(|answer| (answer.error_code, text(&answer.error_message).map(str::to_string)))
        .collect()
}

#[test]
fn alter_configs_replaces_a_topics_configs_as_kafka() {
    let mut target = Target::start();
    let topic = target.create_topic("legacy-configs", 1);
    let me = target.node_id.to_string();
    let other = (target.node_id + 4).to_string();
    // Observed against Kafka 4.4: the same words as IncrementalAlterConfigs.
    let other_broker =
        with_message(INVALID_REQUEST, &format!("Unexpected broker id, expected {me}, but received {other}"));
    let not_a_number = with_message(INVALID_REQUEST, "Node id must be an integer, but it is: abc");
    for version in [0, 1, 2] {
        type LegacyCase<'a> =
            (&'a str, i8, &'a str, &'a [(&'a str, Option<&'a str>)], bool, Expected, Option<Expected>);
        let cases: Vec<LegacyCase> = vec![
            ("topic set", RESOURCE_TOPIC, &topic, &[("retention.ms", Some("100000"))], false, no_message(NONE), None),
            ("topic set nothing", RESOURCE_TOPIC, &topic, &[], false, no_message(NONE), None),
            (
                "topic unknown key",
                RESOURCE_TOPIC,
                &topic,
                &[("no.such.config", Some("1"))],
                false,
                with_message(INVALID_CONFIG, "Unknown topic config name: no.such.config"),
                None,
            ),
            (
                "topic bad value",
                RESOURCE_TOPIC,
                &topic,
                &[("retention.ms", Some("soon"))],
                false,
                with_message(
                    INVALID_CONFIG,
                    "Invalid value soon for configuration retention.ms: Not a number of type LONG",
                ),
                None,
            ),
            (
                "topic null value",
                RESOURCE_TOPIC,
                &topic,
                &[("retention.ms", None)],
                false,
                with_message(INVALID_REQUEST, "Null value not supported for : retention.ms"),
                None,
            ),
            (
                "topic set, validate_only",
                RESOURCE_TOPIC,
                &topic,
                &[("segment.ms", Some("100000"))],
                true,
                no_message(NONE),
                None,
            ),
            (
                "unknown topic",
                RESOURCE_TOPIC,
                "oracle-no-such-topic",
                &[("retention.ms", Some("1"))],
                false,
                with_message(UNKNOWN_TOPIC_OR_PARTITION, "The topic 'oracle-no-such-topic' does not exist."),
                None,
            ),
            ("broker (own id) nothing", RESOURCE_BROKER, &me, &[], false, no_message(NONE), None),
            ("broker (another id)", RESOURCE_BROKER, &other, &[], false, other_broker.clone(), None),
            ("broker (not a number)", RESOURCE_BROKER, "abc", &[], false, not_a_number.clone(), None),
        ];
        for (name, resource_type, resource, changes, validate_only, kafka, skua) in cases {
            let answers =
                alter_configs_legacy(&mut target, version, validate_only, &[(resource_type, resource, changes)]);
            let (code, message) = &answers[0];
            target.check(&format!("AlterConfigs v{version} {name}"), *code, message.as_deref(), kafka, skua);
        }
    }
    target.finish();
}

// ---- Fetch naming a replica id that is no replica ----

/// Fetch v12 of partition 0 of `topic` from offset 0 as `replica_id`; (code, record bytes).
fn fetch_as(target: &mut Target, topic: &str, replica_id: i32, current_leader_epoch: i32) -> (i16, usize) {
    let mut partition = FetchPartition::default();
    partition.partition = 0;
    partition.fetch_offset = 0;
    partition.partition_max_bytes = 1 << 20;
    partition.current_leader_epoch = current_leader_epoch;
    let mut fetch_topic = FetchTopic::default();
    fetch_topic.topic = topic_name(topic);
    fetch_topic.partitions = vec![partition];
    let mut body = FetchRequest::default();
    body.replica_id = BrokerId(replica_id);
    body.max_wait_ms = 0;
    body.max_bytes = 1 << 20;
    body.session_epoch = -1;
    body.topics = vec![fetch_topic];
    let response: FetchResponse = target.call(ApiKey::Fetch, 12, &body);
    assert_eq!(response.error_code, NONE, "top-level Fetch error");
    let data = &response.responses[0].partitions[0];
    (data.error_code, data.records.as_ref().map_or(0, |records| records.len()))
}

#[test]
fn a_fetch_naming_a_non_replica_answers_as_kafka() {
    let mut target = Target::start();
    let topic = target.create_topic("fetch", 1);
    let me = target.node_id;
    let cases = [
        ("a consumer (replica id -1)", -1, -1, NONE),
        ("replica id of no broker, no epoch", me + 4, -1, NOT_LEADER_OR_FOLLOWER),
        ("replica id of no broker, epoch 0", me + 4, 0, UNKNOWN_LEADER_EPOCH),
        ("replica id of this broker, no epoch", me, -1, NOT_LEADER_OR_FOLLOWER),
        ("replica id of this broker, epoch 0", me, 0, UNKNOWN_LEADER_EPOCH),
    ];
    for (name, replica_id, epoch, kafka) in cases {
        let (code, bytes) = fetch_as(&mut target, &topic, replica_id, epoch);
        target.check(
            &format!("Fetch v12 {name} ({bytes} bytes)"),
            code,
            None,
            Expected { code: kafka, message: None },
            None,
        );
        assert_eq!(bytes > 0, kafka == NONE, "{name}: records only for the consumer");
    }
    target.finish();
}

// ---- Incremental fetch sessions (KIP-227) and topic ids (Fetch v13+) ----

const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
const UNKNOWN_TOPIC_ID: i16 = 100;
const FETCH_SESSION_TOPIC_ID_ERROR: i16 = 106;

/// How a session fetch names its topic: by name (v12) or by id (v13+).
#[derive(Clone, Copy)]
enum Naming<'a> {
    Name(&'a str),
    Id(uuid::Uuid),
}

/// What a fetch answered: the top-level error, the session id, and each partition named
/// (index, error, record bytes).
#[derive(Debug)]
struct SessionAnswer {
    error: i16,
    session_id: i32,
    partitions: Vec<(i32, i16, usize)>,
}

/// A Fetch of `version` in session (`session_id`, `epoch`): `wanted` (partition, offset) and
/// `forgotten` partitions of one topic, named as `naming` says; no wait.
fn session_fetch(
    target: &mut Target,
    version: i16,
    naming: Naming,
    session_id: i32,
    epoch: i32,
    wanted: &[(i32, i64)],
    forgotten: &[i32],
) -> SessionAnswer {
    let mut body = FetchRequest::default();
    body.replica_id = BrokerId(-1);
    body.max_wait_ms = 0;
    body.max_bytes = 1 << 20;
    body.session_id = session_id;
    body.session_epoch = epoch;
    if !wanted.is_empty() {
        let mut topic = FetchTopic::default();
        match naming {
            Naming::Name(name) => topic.topic = topic_name(name),
            Naming::Id(id) => topic.topic_id = id,
        }
        topic.partitions = wanted
            .iter()
            .map(|&(index, offset)| {
                let mut partition = FetchPartition::default();
                partition.partition = index;
                partition.fetch_offset = offset;
                partition.partition_max_bytes = 1 << 20;
                partition
            })
            .collect();
        body.topics = vec![topic];
    }
    if !forgotten.is_empty() {
        let mut topic = kafka_protocol::messages::fetch_request::ForgottenTopic::default();
        match naming {
            Naming::Name(name) => topic.topic = topic_name(name),
            Naming::Id(id) => topic.topic_id = id,
        }
        topic.partitions = forgotten.to_vec();
        body.forgotten_topics_data = vec![topic];
    }
    let response: FetchResponse = target.call(ApiKey::Fetch, version, &body);
    let mut partitions: Vec<(i32, i16, usize)> = response
        .responses
        .iter()
        .flat_map(|topic| topic.partitions.iter())
        .map(|data| (data.partition_index, data.error_code, data.records.as_ref().map_or(0, |records| records.len())))
        .collect();
    partitions.sort();
    SessionAnswer { error: response.error_code, session_id: response.session_id, partitions }
}

/// The partitions of an answer, and whether each has records.
fn named(answer: &SessionAnswer) -> Vec<(i32, i16, bool)> {
    answer.partitions.iter().map(|&(index, error, bytes)| (index, error, bytes > 0)).collect()
}

#[test]
fn fetch_sessions_answer_as_kafka() {
    let mut target = Target::start();
    let topic = target.create_topic("sessions", 3);
    let metadata: MetadataResponse = {
        let mut body = MetadataRequest::default();
        let mut request_topic = kafka_protocol::messages::metadata_request::MetadataRequestTopic::default();
        request_topic.name = Some(topic_name(&topic));
        body.topics = Some(vec![request_topic]);
        target.call(ApiKey::Metadata, 12, &body)
    };
    let topic_id = metadata.topics[0].topic_id;
    assert!(!topic_id.is_nil(), "Metadata v12 gives the topic an id");
    let by_name = Naming::Name(&topic);
    let case =
        |target: &mut Target, name: &str, answer: &SessionAnswer, error: i16, expected: Vec<(i32, i16, bool)>| {
            let observed = named(answer);
            let line = format!("Fetch session: {name} {observed:?}");
            target.check(&line, answer.error, None, code(error), None);
            if observed != expected {
                target.mismatches.push(format!("{name}: partitions {observed:?}, expected {expected:?}"));
            }
        };

    // v12: a full fetch opens a session and answers every partition (each has one batch).
    let full = session_fetch(&mut target, 12, by_name, 0, 0, &[(0, 0), (1, 0), (2, 0)], &[]);
    case(&mut target, "v12 full, epoch 0", &full, NONE, vec![(0, NONE, true), (1, NONE, true), (2, NONE, true)]);
    let id = full.session_id;
    assert_ne!(id, 0, "a full fetch with epoch 0 opens a session");
    // Epoch 1: the client moved every partition past its batch; nothing is new: none named.
    let quiet = session_fetch(&mut target, 12, by_name, id, 1, &[(0, 1), (1, 1), (2, 1)], &[]);
    case(&mut target, "v12 incremental, nothing new", &quiet, NONE, vec![]);
    assert_eq!(quiet.session_id, id, "the session goes on");
    // A new batch on partition 1: only it is named.
    assert_eq!(target.produce(&topic, 1), NONE);
    let one = session_fetch(&mut target, 12, by_name, id, 2, &[], &[]);
    case(&mut target, "v12 incremental, new records on 1", &one, NONE, vec![(1, NONE, true)]);
    // The same epoch again, an unknown session.
    let again = session_fetch(&mut target, 12, by_name, id, 2, &[], &[]);
    case(&mut target, "v12 incremental, epoch repeated", &again, INVALID_FETCH_SESSION_EPOCH, vec![]);
    let unknown = session_fetch(&mut target, 12, by_name, id.wrapping_add(7919), 1, &[], &[]);
    case(&mut target, "v12 incremental, unknown session", &unknown, FETCH_SESSION_ID_NOT_FOUND, vec![]);
    // Forgetting partition 2, then a batch on it: not named.
    let forget = session_fetch(&mut target, 12, by_name, id, 3, &[(1, 2)], &[2]);
    case(&mut target, "v12 incremental, forget 2", &forget, NONE, vec![]);
    assert_eq!(target.produce(&topic, 2), NONE);
    let after = session_fetch(&mut target, 12, by_name, id, 4, &[], &[]);
    case(&mut target, "v12 incremental, batch on forgotten 2", &after, NONE, vec![]);
    // v13 in a session opened by names.
    let mixed = session_fetch(&mut target, 13, Naming::Id(topic_id), id, 5, &[], &[]);
    case(&mut target, "v13 incremental in a v12 session", &mixed, FETCH_SESSION_TOPIC_ID_ERROR, vec![]);
    // Epoch -1 closes the session: a sessionless full fetch.
    let close = session_fetch(&mut target, 12, by_name, id, -1, &[(0, 1)], &[]);
    case(&mut target, "v12 epoch -1 (close)", &close, NONE, vec![(0, NONE, false)]);
    assert_eq!(close.session_id, 0, "no session after epoch -1");
    let closed = session_fetch(&mut target, 12, by_name, id, 1, &[], &[]);
    case(&mut target, "v12 incremental, closed session", &closed, FETCH_SESSION_ID_NOT_FOUND, vec![]);

    // v13 names topics by id; an unknown id answers UNKNOWN_TOPIC_ID for its partitions.
    let by_id = Naming::Id(topic_id);
    let full = session_fetch(&mut target, 13, by_id, 0, 0, &[(0, 0), (2, 1)], &[]);
    case(&mut target, "v13 full by id", &full, NONE, vec![(0, NONE, true), (2, NONE, true)]);
    let id = full.session_id;
    assert_ne!(id, 0, "v13 opens a session too");
    // Skua counts its sessions for operators: the v12 one is closed, this one holds 2 partitions.
    if let Some(metrics) = target._broker.as_ref().and_then(common::Broker::metrics_address) {
        let text = common::scrape_metrics(metrics);
        let gauge =
            |name: &str| text.lines().find_map(|line| line.strip_prefix(name)).map(str::trim).map(str::to_string);
        assert_eq!(gauge("skua_fetch_sessions "), Some("1".to_string()), "{text}");
        assert_eq!(gauge("skua_fetch_session_partitions "), Some("2".to_string()), "{text}");
        // The produces above were committed with O_DIRECT writes, whose buffers went back to
        // their shard's pool once the writes landed.
        let pooled =
            gauge("skua_buffer_pool_bytes{pool=\"direct_write\"} ").and_then(|value| value.parse::<u64>().ok());
        assert!(pooled.is_some_and(|bytes| bytes > 0), "{text}");
    }
    let quiet = session_fetch(&mut target, 13, by_id, id, 1, &[(0, 1), (2, 2)], &[]);
    case(&mut target, "v13 incremental, nothing new", &quiet, NONE, vec![]);
    let stranger = Naming::Id(uuid::Uuid::from_bytes([0x5a; 16]));
    let unknown = session_fetch(&mut target, 13, stranger, 0, -1, &[(0, 0)], &[]);
    case(&mut target, "v13 sessionless, unknown topic id", &unknown, NONE, vec![(0, UNKNOWN_TOPIC_ID, false)]);
    // v18, Kafka 4.4's newest.
    let newest = session_fetch(&mut target, 18, by_id, 0, -1, &[(1, 0)], &[]);
    case(&mut target, "v18 sessionless by id", &newest, NONE, vec![(1, NONE, true)]);
    target.finish();
}

// ---- DescribeAcls / CreateAcls / DeleteAcls (no authorizer) and ListTransactions ----

const SECURITY_DISABLED: i16 = 54;
/// Kafka's messages without `authorizer.class.name`: DescribeAcls says "on the broker",
/// CreateAcls and DeleteAcls do not (`kafka-acls --add` shows the former: it describes first).
const NO_AUTHORIZER_ON_BROKER: &str = "No Authorizer is configured on the broker";
const NO_AUTHORIZER: &str = "No Authorizer is configured.";

/// ACL enum codes (Kafka's `ResourceType`, `PatternType`, `AclOperation`, `AclPermissionType`).
const ACL_ANY: i8 = 1;
const ACL_RESOURCE_TOPIC: i8 = 2;
const ACL_PATTERN_LITERAL: i8 = 3;
const ACL_OPERATION_READ: i8 = 3;
const ACL_PERMISSION_ALLOW: i8 = 3;

/// Sends `frame` on a new connection: Some(answer bytes) or None when the broker closed it.
fn answered_on_new_connection(address: SocketAddr, frame: &[u8]) -> Option<usize> {
    use std::io::Read;
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream.write_all(frame).expect("send");
    let mut buffer = [0u8; 512];
    match stream.read(&mut buffer) {
        Ok(0) => None,
        Ok(count) => Some(count),
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => None,
        Err(error) => panic!("neither an answer nor a close: {error}"),
    }
}

#[test]
fn acl_apis_without_an_authorizer_answer_as_kafka() {
    use kafka_protocol::messages::create_acls_request::AclCreation;
    use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
    use kafka_protocol::messages::{
        CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
        DescribeAclsResponse,
    };
    let mut target = Target::start();
    let text_of = |text: &str| StrBytes::from_string(text.to_string());
    for version in 1..=3 {
        // Describe: everything, and one topic's ACLs for one principal.
        for (name, resource_type, resource_name, principal) in [
            ("all (ANY filter)", ACL_ANY, None, None),
            ("a topic's for a principal", ACL_RESOURCE_TOPIC, Some("t1"), Some("User:alice")),
        ] {
            let mut body = DescribeAclsRequest::default();
            body.resource_type_filter = resource_type;
            body.resource_name_filter = resource_name.map(text_of);
            body.pattern_type_filter = if resource_name.is_some() { ACL_PATTERN_LITERAL } else { ACL_ANY };
            body.principal_filter = principal.map(text_of);
            body.operation = ACL_ANY;
            body.permission_type = ACL_ANY;
            let response: DescribeAclsResponse = target.call(ApiKey::DescribeAcls, version, &body);
            let case = format!("DescribeAcls v{version} {name} ({} resources)", response.resources.len());
            let message = text(&response.error_message);
            target.check(
                &case,
                response.error_code,
                message,
                with_message(SECURITY_DISABLED, NO_AUTHORIZER_ON_BROKER),
                None,
            );
            assert!(response.resources.is_empty(), "{case}");
        }

        // Create: one result per creation, in order; none for none.
        for count in [0, 1, 2] {
            let creations = (0..count)
                .map(|index| {
                    let mut creation = AclCreation::default();
                    creation.resource_type = ACL_RESOURCE_TOPIC;
                    creation.resource_name = text_of(&format!("t{index}"));
                    creation.resource_pattern_type = ACL_PATTERN_LITERAL;
                    creation.principal = text_of("User:alice");
                    creation.host = text_of("*");
                    creation.operation = ACL_OPERATION_READ;
                    creation.permission_type = ACL_PERMISSION_ALLOW;
                    creation
                })
                .collect();
            let mut body = CreateAclsRequest::default();
            body.creations = creations;
            let response: CreateAclsResponse = target.call(ApiKey::CreateAcls, version, &body);
            assert_eq!(response.results.len(), count, "CreateAcls v{version}: one result per creation");
            for (index, result) in response.results.iter().enumerate() {
                let case = format!("CreateAcls v{version} creation {index} of {count}");
                let kafka = with_message(SECURITY_DISABLED, NO_AUTHORIZER);
                target.check(&case, result.error_code, text(&result.error_message), kafka, None);
            }
        }

        // Delete: one result per filter, with nothing matched; none for none.
        for count in [0, 1, 2] {
            let filters = (0..count)
                .map(|index| {
                    let mut filter = DeleteAclsFilter::default();
                    filter.resource_type_filter = if index == 0 { ACL_ANY } else { ACL_RESOURCE_TOPIC };
                    filter.resource_name_filter = (index > 0).then(|| text_of("t1"));
                    filter.pattern_type_filter = if index == 0 { ACL_ANY } else { ACL_PATTERN_LITERAL };
                    filter.operation = ACL_ANY;
                    filter.permission_type = ACL_ANY;
                    filter
                })
                .collect();
            let mut body = DeleteAclsRequest::default();
            body.filters = filters;
            let response: DeleteAclsResponse = target.call(ApiKey::DeleteAcls, version, &body);
            assert_eq!(response.filter_results.len(), count, "DeleteAcls v{version}: one result per filter");
            for (index, result) in response.filter_results.iter().enumerate() {
                let case =
                    format!("DeleteAcls v{version} filter {index} of {count} ({} matched)", result.matching_acls.len());
                target.check(
                    &case,
                    result.error_code,
                    text(&result.error_message),
                    with_message(SECURITY_DISABLED, NO_AUTHORIZER),
                    None,
                );
                assert!(result.matching_acls.is_empty(), "{case}");
            }
        }

        // An UNKNOWN (0) element fails Kafka's request parser, which closes the connection; codes
        // it does not know otherwise (operation 16, resource type 8, ...) are answered as above.
        for (name, unknown_at) in [("resource type", 0), ("pattern type", 1), ("operation", 2), ("permission", 3)] {
            for (codes, closes) in [
                ([ACL_RESOURCE_TOPIC, ACL_PATTERN_LITERAL, ACL_OPERATION_READ, ACL_PERMISSION_ALLOW], true),
                ([8, 5, 16, 4], false),
            ] {
                if !closes && unknown_at > 0 {
                    continue; // the unusual codes once per version
                }
                let mut codes = codes;
                if closes {
                    codes[unknown_at] = 0;
                }
                let [resource_type, pattern, operation, permission] = codes;
                let mut describe = DescribeAclsRequest::default();
                describe.resource_type_filter = resource_type;
                describe.pattern_type_filter = pattern;
                describe.operation = operation;
                describe.permission_type = permission;
                let mut creation = AclCreation::default();
                creation.resource_type = resource_type;
                creation.resource_name = text_of("t1");
                creation.resource_pattern_type = pattern;
                creation.principal = text_of("User:alice");
                creation.host = text_of("*");
                creation.operation = operation;
                creation.permission_type = permission;
                let mut create = CreateAclsRequest::default();
                create.creations = vec![creation];
                let mut filter = DeleteAclsFilter::default();
                filter.resource_type_filter = resource_type;
                filter.pattern_type_filter = pattern;
                filter.operation = operation;
                filter.permission_type = permission;
                let mut delete = DeleteAclsRequest::default();
                delete.filters = vec![filter];
                for (api_key, frame) in [
                    (ApiKey::DescribeAcls, common::request_frame(ApiKey::DescribeAcls, version, 1, &describe)),
                    (ApiKey::CreateAcls, common::request_frame(ApiKey::CreateAcls, version, 1, &create)),
                    (ApiKey::DeleteAcls, common::request_frame(ApiKey::DeleteAcls, version, 1, &delete)),
                ] {
                    let answered = answered_on_new_connection(target.address, &frame).is_some();
                    let case = format!("{api_key:?} v{version} codes {codes:?}, closed: {}", !answered);
                    println!("{case}");
                    if answered == closes {
                        let wanted = if closes { "closed for an UNKNOWN " } else { "answered" };
                        target.mismatches.push(format!("{case}: expected {wanted}{}", if closes { name } else { "" }));
                    }
                }
            }
        }
    }
    target.finish();
}

#[test]
fn list_transactions_answers_as_kafka() {
    use kafka_protocol::messages::{ListTransactionsRequest, ListTransactionsResponse, ProducerId};
    let mut target = Target::start();
    let text_of = |text: &str| StrBytes::from_string(text.to_string());
    for version in 0..=2 {
        let cases: Vec<(&str, ListTransactionsRequest, Vec<&str>)> = vec![
            ("no filters", ListTransactionsRequest::default(), vec![]),
            (
                "known and unknown states",
                ListTransactionsRequest::default().with_state_filters(
                    ["Ongoing", "CompleteCommit", "NoSuchState", "ongoing", ""].map(text_of).to_vec(),
                ),
                vec!["NoSuchState", "ongoing", ""],
            ),
            (
                "unknown states twice, in reverse order",
                ListTransactionsRequest::default()
                    .with_state_filters(["zz", "aa", "zz", "Empty"].map(text_of).to_vec()),
                vec!["zz", "aa"],
            ),
            (
                "every state Kafka knows",
                ListTransactionsRequest::default().with_state_filters(
                    [
                        "Empty",
                        "Ongoing",
                        "PrepareCommit",
                        "PrepareAbort",
                        "CompleteCommit",
                        "CompleteAbort",
                        "Dead",
                        "PrepareEpochFence",
                    ]
                    .map(text_of)
                    .to_vec(),
                ),
                vec![],
            ),
            (
                "producer ids",
                ListTransactionsRequest::default().with_producer_id_filters(vec![ProducerId(1), ProducerId(-1)]),
                vec![],
            ),
        ];
        let mut cases = cases;
        if version >= 1 {
            cases.push(("a duration", ListTransactionsRequest::default().with_duration_filter(1_000), vec![]));
            cases.push(("a negative duration", ListTransactionsRequest::default().with_duration_filter(-5), vec![]));
        }
        if version >= 2 {
            cases.push((
                "a pattern",
                ListTransactionsRequest::default().with_transactional_id_pattern(Some(text_of("tx-.*"))),
                vec![],
            ));
        }
        for (name, body, unknown) in cases {
            let response: ListTransactionsResponse = target.call(ApiKey::ListTransactions, version, &body);
            // Kafka keeps the filters in a set: compared as sets, in any order.
            let mut unknown_answered: Vec<&str> =
                response.unknown_state_filters.iter().map(|state| state.as_str()).collect();
            let case = format!(
                "ListTransactions v{version} {name} ({} listed, unknown {unknown_answered:?})",
                response.transaction_states.len()
            );
            target.check(&case, response.error_code, None, code(NONE), None);
            unknown_answered.sort();
            let mut unknown = unknown;
            unknown.sort();
            assert_eq!(unknown_answered, unknown, "{case}");
            assert!(response.transaction_states.is_empty(), "{case}: no transactions");
        }
    }
    // v2's pattern is compiled with RE2/J: RE2 syntax, so no look-behind; an invalid one is
    // INVALID_REGULAR_EXPRESSION (without a message: the response has no field for one).
    const INVALID_REGULAR_EXPRESSION: i16 = 128;
    for (pattern, kafka, skua) in [
        ("", NONE, None),
        ("tx-[0-9]+", NONE, None),
        ("a]", NONE, None),
        // RE2 takes a `{` that starts no repetition literally; Rust's regex-syntax does not.
        ("a{", NONE, Some(code(INVALID_REGULAR_EXPRESSION))),
        ("*", INVALID_REGULAR_EXPRESSION, None),
        ("(?<=a)b", INVALID_REGULAR_EXPRESSION, None),
        ("a)", INVALID_REGULAR_EXPRESSION, None),
        ("(a", INVALID_REGULAR_EXPRESSION, None),
        ("[unclosed", INVALID_REGULAR_EXPRESSION, None),
        ("\\", INVALID_REGULAR_EXPRESSION, None),
        ("x{2,1}", INVALID_REGULAR_EXPRESSION, None),
        ("\\p{Foo}", INVALID_REGULAR_EXPRESSION, None),
    ] {
        let body = ListTransactionsRequest::default().with_transactional_id_pattern(Some(text_of(pattern)));
        let response: ListTransactionsResponse = target.call(ApiKey::ListTransactions, 2, &body);
        let case = format!("ListTransactions v2 pattern {pattern:?} ({} listed)", response.transaction_states.len());
        target.check(&case, response.error_code, None, code(kafka), skua);
        assert!(response.transaction_states.is_empty(), "{case}: no transactions");
    }
    target.finish();
}

/// ApiVersions advertises the ACL APIs 1–3 and ListTransactions 0–2, as Kafka 4.4 does.
#[test]
fn acl_and_transaction_apis_are_advertised_as_kafka() {
    use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
    let mut target = Target::start();
    // v3+ must name the client, or Kafka answers INVALID_REQUEST with no APIs.
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("skua-test"))
        .with_client_software_version(StrBytes::from_static_str("1.0"));
    let versions: ApiVersionsResponse = target.call(ApiKey::ApiVersions, 3, &request);
    assert_eq!(versions.error_code, NONE);
    for (api_key, range) in [
        (ApiKey::DescribeAcls, (1, 3)),
        (ApiKey::CreateAcls, (1, 3)),
        (ApiKey::DeleteAcls, (1, 3)),
        (ApiKey::ListTransactions, (0, 2)),
    ] {
        let advertised = versions
            .api_keys
            .iter()
            .find(|api| api.api_key == api_key as i16)
            .map(|api| (api.min_version, api.max_version));
        assert_eq!(advertised, Some(range), "{api_key:?}");
    }
}

/// DeleteRecords' edge cases: offsets below the log start, past the high watermark, −1 (the
/// high watermark), other negatives, unknown and negative partitions, a partition named twice
/// (in one topic entry and in two), many partitions at once. The low watermark is compared as
/// the message column.
#[test]
fn delete_records_edge_cases_answer_as_kafka() {
    use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
    use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
    const OFFSET_OUT_OF_RANGE: i16 = 1;
    let mut target = Target::start();
    let topic = target.create_topic("delete-records", 2);
    // Partition 0 holds offsets 0..5, partition 1 offset 0.
    for _ in 0..4 {
        assert_eq!(target.produce(&topic, 0), NONE);
    }
    // Each entry is one topic entry of the request: (topic, [(partition, offset)]).
    let request = |entries: &[(&str, Vec<(i32, i64)>)]| {
        let mut body = DeleteRecordsRequest::default();
        body.timeout_ms = 5_000;
        for (name, partitions) in entries {
            let mut topic = DeleteRecordsTopic::default();
            topic.name = topic_name(name);
            for (index, offset) in partitions {
                let mut partition = DeleteRecordsPartition::default();
                partition.partition_index = *index;
                partition.offset = *offset;
                topic.partitions.push(partition);
            }
            body.topics.push(topic);
        }
        body
    };
    let unknown = format!("{topic}-unknown");
    // (case, request, each partition's expected (index, code, low watermark)).
    type Case = (&'static str, DeleteRecordsRequest, Vec<(i32, i16, i64)>);
    let cases: Vec<Case> = vec![
        ("offset 2", request(&[(&topic, vec![(0, 2)])]), vec![(0, NONE, 2)]),
        ("below the log start", request(&[(&topic, vec![(0, 1)])]), vec![(0, NONE, 2)]),
        ("the log start again", request(&[(&topic, vec![(0, 2)])]), vec![(0, NONE, 2)]),
        ("-1: the high watermark", request(&[(&topic, vec![(1, -1)])]), vec![(1, NONE, 1)]),
        ("past the high watermark", request(&[(&topic, vec![(0, 6)])]), vec![(0, OFFSET_OUT_OF_RANGE, -1)]),
        ("-2", request(&[(&topic, vec![(0, -2)])]), vec![(0, OFFSET_OUT_OF_RANGE, -1)]),
        ("i64::MIN", request(&[(&topic, vec![(0, i64::MIN)])]), vec![(0, OFFSET_OUT_OF_RANGE, -1)]),
        ("i64::MAX", request(&[(&topic, vec![(0, i64::MAX)])]), vec![(0, OFFSET_OUT_OF_RANGE, -1)]),
        ("unknown partition", request(&[(&topic, vec![(7, 0)])]), vec![(7, UNKNOWN_TOPIC_OR_PARTITION, -1)]),
        ("negative partition", request(&[(&topic, vec![(-1, 0)])]), vec![(-1, UNKNOWN_TOPIC_OR_PARTITION, -1)]),
        ("unknown topic", request(&[(&unknown, vec![(0, 0)])]), vec![(0, UNKNOWN_TOPIC_OR_PARTITION, -1)]),
        ("a partition twice, the last wins", request(&[(&topic, vec![(0, 3), (0, 4)])]), vec![(0, NONE, 4)]),
        (
            "a partition twice in two topic entries",
            request(&[(&topic, vec![(0, 5)]), (&topic, vec![(0, 4)])]),
            vec![(0, NONE, 4)],
        ),
    ];
    for version in [0, 2] {
        for (case, body, expected) in &cases {
            if version == 2 && !case.starts_with("a partition twice") {
                // The offsets moved in version 0's round: only the repeatable cases again.
                if !matches!(*case, "past the high watermark" | "-2" | "unknown partition" | "unknown topic") {
                    continue;
                }
            }
            let response: DeleteRecordsResponse = target.call(ApiKey::DeleteRecords, version, body);
            let answered: Vec<_> = response.topics.iter().flat_map(|topic| &topic.partitions).collect();
            let label = format!("DeleteRecords v{version} {case}: answers");
            target.check(&label, answered.len() as i16, None, code(expected.len() as i16), None);
            for (partition, error_code, low_watermark) in expected {
                let label = format!("DeleteRecords v{version} {case}: partition {partition}");
                match answered.iter().find(|answer| answer.partition_index == *partition) {
                    Some(answer) => {
                        let low = answer.low_watermark.to_string();
                        target.check(
                            &label,
                            answer.error_code,
                            Some(&low),
                            with_message(*error_code, &low_watermark.to_string()),
                            None,
                        );
                    }
                    None => target.check(&label, UNKNOWN_SERVER_ERROR, Some("missing"), code(*error_code), None),
                }
            }
        }
    }
    // Many partitions at once: two known, the rest unknown, each answered once.
    let many: Vec<(i32, i64)> = (0..5_000).map(|index| (index, 0)).collect();
    let response: DeleteRecordsResponse = target.call(ApiKey::DeleteRecords, 2, &request(&[(&topic, many)]));
    let answered: Vec<_> = response.topics.iter().flat_map(|topic| &topic.partitions).collect();
    let unknown_count = answered.iter().filter(|answer| answer.error_code == UNKNOWN_TOPIC_OR_PARTITION).count();
    target.check("DeleteRecords 5000 partitions: answers", (answered.len() / 100) as i16, None, code(50), None);
    target.check("DeleteRecords 5000 partitions: unknown", (unknown_count / 2) as i16, None, code(4_998 / 2), None);
    target.finish();
}

/// DescribeProducers' edge cases: a partition without idempotent producers, unknown and negative
/// partitions, an unknown topic, a partition and a topic named twice. Codes per partition, in
/// the order answered (the count of producers as the message column).
#[test]
fn describe_producers_edge_cases_answer_as_kafka() {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse};
    let mut target = Target::start();
    let topic = target.create_topic("describe-producers", 2);
    let unknown = format!("{topic}-unknown");
    let request = |entries: &[(&str, Vec<i32>)]| {
        let mut body = DescribeProducersRequest::default();
        for (name, partitions) in entries {
            let mut topic = TopicRequest::default();
            topic.name = topic_name(name);
            topic.partition_indexes = partitions.clone();
            body.topics.push(topic);
        }
        body
    };
    // (case, request, each answer's expected (partition, code), in order).
    type Case = (&'static str, DescribeProducersRequest, Vec<(i32, i16)>);
    let cases: Vec<Case> = vec![
        ("no idempotent producer", request(&[(&topic, vec![0])]), vec![(0, NONE)]),
        (
            "unknown and negative partitions",
            request(&[(&topic, vec![7, -1, 1])]),
            vec![(7, UNKNOWN_TOPIC_OR_PARTITION), (-1, UNKNOWN_TOPIC_OR_PARTITION), (1, NONE)],
        ),
        ("unknown topic", request(&[(&unknown, vec![0])]), vec![(0, UNKNOWN_TOPIC_OR_PARTITION)]),
        ("a partition twice", request(&[(&topic, vec![0, 0])]), vec![(0, NONE), (0, NONE)]),
        ("a topic twice", request(&[(&topic, vec![0]), (&topic, vec![1])]), vec![(0, NONE), (1, NONE)]),
    ];
    for (case, body, expected) in &cases {
        let response: DescribeProducersResponse = target.call(ApiKey::DescribeProducers, 0, body);
        let answered: Vec<_> = response.topics.iter().flat_map(|topic| &topic.partitions).collect();
        let label = format!("DescribeProducers {case}: answers");
        target.check(&label, answered.len() as i16, None, code(expected.len() as i16), None);
        for (index, (partition, error_code)) in expected.iter().enumerate() {
            let label = format!("DescribeProducers {case}: answer {index}");
            match answered.get(index) {
                Some(answer) => {
                    let found =
                        format!("partition {} producers {}", answer.partition_index, answer.active_producers.len());
                    let wanted = format!("partition {partition} producers 0");
                    target.check(&label, answer.error_code, Some(&found), with_message(*error_code, &wanted), None);
                }
                None => target.check(&label, UNKNOWN_SERVER_ERROR, Some("missing"), code(*error_code), None),
            }
        }
    }
    target.finish();
}

/// Metadata v13 (KIP-1102: a top-level error code) and Produce v12 and v13 (KIP-516: topics named
/// by id): the topic's id from Metadata names it in Produce v13; an id no topic has, and the zero
/// id (v13 carries no name), are UNKNOWN_TOPIC_ID for each partition.
#[test]
fn produce_by_topic_id_and_metadata_v13_answer_as_kafka() {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    const UNKNOWN_TOPIC_ID: i16 = 100;
    let mut target = Target::start();
    let topic = target.create_topic("produce-by-id", 2);
    let mut body = MetadataRequest::default();
    let mut request_topic = MetadataRequestTopic::default();
    request_topic.name = Some(topic_name(&topic));
    body.topics = Some(vec![request_topic]);
    let metadata: MetadataResponse = target.call(ApiKey::Metadata, 13, &body);
    target.check("Metadata v13: top-level error code", metadata.error_code, None, code(NONE), None);
    let id = metadata.topics.first().map_or(uuid::Uuid::nil(), |found| found.topic_id);
    let shown = (!id.is_nil()).then_some("a topic id");
    target.check(
        "Metadata v13: the topic's id",
        metadata.topics[0].error_code,
        shown,
        with_message(NONE, "a topic id"),
        None,
    );
    let produce = |target: &mut Target, version: i16, name: &str, topic_id: uuid::Uuid, index: i32| {
        let mut partition = PartitionProduceData::default();
        partition.index = index;
        partition.records = Some(Bytes::from(engine::testkit::make_sized_batch(1, 100, 3, 1_700_000_000_000)));
        let mut topic_data = TopicProduceData::default();
        topic_data.name = topic_name(name);
        topic_data.topic_id = topic_id;
        topic_data.partition_data = vec![partition];
        let mut body = ProduceRequest::default();
        body.acks = -1;
        body.timeout_ms = 5_000;
        body.topic_data = vec![topic_data];
        let response: ProduceResponse = target.call(ApiKey::Produce, version, &body);
        let answer = &response.responses[0];
        let named = if version >= 13 { answer.topic_id == topic_id } else { answer.name.as_str() == name };
        (answer.partition_responses[0].error_code, named.then_some("names the topic as asked"))
    };
    let as_asked = |code: i16| with_message(code, "names the topic as asked");
    let unknown = uuid::Uuid::from_bytes(*b"skua-unknown-id!");
    let cases: [(&str, i16, &str, uuid::Uuid, i32, i16); 6] = [
        ("Produce v12 by name", 12, &topic, uuid::Uuid::nil(), 0, NONE),
        ("Produce v13 by id", 13, "", id, 1, NONE),
        ("Produce v13 by id, a partition it lacks", 13, "", id, 9, UNKNOWN_TOPIC_OR_PARTITION),
        ("Produce v13 by an unknown id", 13, "", unknown, 0, UNKNOWN_TOPIC_ID),
        ("Produce v13 by the zero id (a name is not sent)", 13, &topic, uuid::Uuid::nil(), 0, UNKNOWN_TOPIC_ID),
        ("Produce v13 by id, partition -1", 13, "", id, -1, UNKNOWN_TOPIC_OR_PARTITION),
    ];
    for (case, version, name, topic_id, index, expected) in cases {
        let (error_code, named) = produce(&mut target, version, name, topic_id, index);
        target.check(case, error_code, named, as_asked(expected), None);
    }
    target.finish();
}

/// OffsetCommit v10 and OffsetFetch v10 (KIP-848: topics named by id, names no longer sent): the
/// topic's id from Metadata names it; each answer names the topic by the id asked for; an id no
/// topic has, and the zero id, are UNKNOWN_TOPIC_ID for each partition; a partition the topic
/// lacks is UNKNOWN_TOPIC_OR_PARTITION in a commit. Offsets committed by id are the ones v9 reads
/// by name, and the reverse; asking for all a group has (null topics) names them by id.
#[test]
fn offset_commit_and_fetch_by_topic_id_v10_answer_as_kafka() {
    use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
    use kafka_protocol::messages::find_coordinator_response::FindCoordinatorResponse;
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics};
    use kafka_protocol::messages::{
        GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    };
    const UNKNOWN_TOPIC_ID: i16 = 100;
    /// Coordinator errors a first commit may meet while `__consumer_offsets` is being created.
    const COORDINATOR_NOT_READY: [i16; 3] = [14, 15, 16];
    const COORDINATOR_READY_MS_MAX: u64 = 30_000;
    let mut target = Target::start();
    let topic = target.create_topic("offsets-by-id", 2);
    let mut body = MetadataRequest::default();
    let mut request_topic = MetadataRequestTopic::default();
    request_topic.name = Some(topic_name(&topic));
    body.topics = Some(vec![request_topic]);
    let metadata: MetadataResponse = target.call(ApiKey::Metadata, 12, &body);
    let id = metadata.topics.first().map_or(uuid::Uuid::nil(), |found| found.topic_id);
    assert!(!id.is_nil(), "Metadata names {topic}'s id");
    let unknown = uuid::Uuid::from_bytes(*b"skua-unknown-id!");
    let group = format!("{topic}-group");
    let deadline = Instant::now() + Duration::from_millis(COORDINATOR_READY_MS_MAX);
    loop {
        let find = FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.clone()));
        let answer: FindCoordinatorResponse = target.call(ApiKey::FindCoordinator, 3, &find);
        if answer.error_code == NONE {
            break;
        }
        assert!(Instant::now() < deadline, "no coordinator for {group}: {}", answer.error_code);
        std::thread::sleep(Duration::from_millis(200));
    }
    // (version, name, id, [(partition, offset)]) → [(error code, what the topic was named by)]
    let commit = |target: &mut Target, version: i16, name: &str, topic_id: uuid::Uuid, offsets: &[(i32, i64)]| {
        let mut request_topic = OffsetCommitRequestTopic::default();
        request_topic.name = topic_name(name);
        request_topic.topic_id = topic_id;
        request_topic.partitions = offsets
            .iter()
            .map(|(partition, offset)| {
                let mut item = OffsetCommitRequestPartition::default();
                item.partition_index = *partition;
                item.committed_offset = *offset;
                item.committed_metadata = Some(StrBytes::from_static_str("by-id"));
                item
            })
            .collect();
        let mut body = OffsetCommitRequest::default();
        body.group_id = GroupId(StrBytes::from_string(group.clone()));
        body.generation_id_or_member_epoch = -1;
        body.topics = vec![request_topic];
        let deadline = Instant::now() + Duration::from_millis(COORDINATOR_READY_MS_MAX);
        loop {
            let response: OffsetCommitResponse = target.call(ApiKey::OffsetCommit, version, &body);
            let answer = &response.topics[0];
            let named = if version >= 10 { answer.topic_id == topic_id } else { answer.name.as_str() == name };
            let codes: Vec<i16> = answer.partitions.iter().map(|partition| partition.error_code).collect();
            if codes.iter().any(|code| COORDINATOR_NOT_READY.contains(code)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            return (codes, named);
        }
    };
    let shown = |named: bool| if named { "names the topic as asked" } else { "names another topic" };
    // (version, name, id, partitions or all) → each answered topic as "<named as asked>: [(partition,
    // offset, code)]", joined by "; "
    let fetch = |target: &mut Target, version: i16, name: &str, topic_id: uuid::Uuid, partitions: Option<&[i32]>| {
        let mut request_group = OffsetFetchRequestGroup::default();
        request_group.group_id = GroupId(StrBytes::from_string(group.clone()));
        request_group.topics = partitions.map(|partitions| {
            let mut request_topic = OffsetFetchRequestTopics::default();
            request_topic.name = topic_name(name);
            request_topic.topic_id = topic_id;
            request_topic.partition_indexes = partitions.to_vec();
            vec![request_topic]
        });
        let mut body = OffsetFetchRequest::default();
        body.groups = vec![request_group];
        let response: OffsetFetchResponse = target.call(ApiKey::OffsetFetch, version, &body);
        let answer = &response.groups[0];
        assert_eq!(answer.error_code, NONE, "OffsetFetch v{version} of {group}");
        answer
            .topics
            .iter()
            .map(|found| {
                let named = if version >= 10 { found.topic_id == topic_id } else { found.name.as_str() == name };
                let partitions: Vec<(i32, i64, i16)> = found
                    .partitions
                    .iter()
                    .map(|partition| (partition.partition_index, partition.committed_offset, partition.error_code))
                    .collect();
                format!("{}: {partitions:?}", shown(named))
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let as_asked = |code: i16| with_message(code, "names the topic as asked");

    let (codes, named) = commit(&mut target, 10, "", id, &[(0, 5), (1, 7)]);
    for (partition, error_code) in codes.iter().enumerate() {
        let case = format!("OffsetCommit v10 by id, partition {partition}");
        target.check(&case, *error_code, Some(shown(named)), as_asked(NONE), None);
    }
    let cases: [(&str, i16, &str, uuid::Uuid, i32, i16); 5] = [
        ("OffsetCommit v10 by id, a partition it lacks", 10, "", id, 9, UNKNOWN_TOPIC_OR_PARTITION),
        ("OffsetCommit v10 by id, partition -1", 10, "", id, -1, UNKNOWN_TOPIC_OR_PARTITION),
        ("OffsetCommit v10 by an unknown id", 10, "", unknown, 0, UNKNOWN_TOPIC_ID),
        ("OffsetCommit v10 by the zero id (a name is not sent)", 10, &topic, uuid::Uuid::nil(), 0, UNKNOWN_TOPIC_ID),
        ("OffsetCommit v9 by name", 9, &topic, uuid::Uuid::nil(), 1, NONE),
    ];
    for (case, version, name, topic_id, partition, expected) in cases {
        let offset = if version == 9 { 8 } else { 99 };
        let (codes, named) = commit(&mut target, version, name, topic_id, &[(partition, offset)]);
        target.check(case, codes[0], Some(shown(named)), as_asked(expected), None);
    }

    let found = fetch(&mut target, 10, "", id, Some(&[0, 1, 9]));
    let wanted = "names the topic as asked: [(0, 5, 0), (1, 8, 0), (9, -1, 0)]";
    target.check("OffsetFetch v10 by id", NONE, Some(&found), with_message(NONE, wanted), None);
    let found = fetch(&mut target, 9, &topic, uuid::Uuid::nil(), Some(&[0, 1]));
    let wanted = "names the topic as asked: [(0, 5, 0), (1, 8, 0)]";
    target.check("OffsetFetch v9 by name", NONE, Some(&found), with_message(NONE, wanted), None);
    let found = fetch(&mut target, 10, "", unknown, Some(&[0, 1]));
    let wanted = "names the topic as asked: [(0, -1, 100), (1, -1, 100)]";
    target.check("OffsetFetch v10 by an unknown id", NONE, Some(&found), with_message(NONE, wanted), None);
    let found = fetch(&mut target, 10, &topic, uuid::Uuid::nil(), Some(&[0]));
    let wanted = "names the topic as asked: [(0, -1, 100)]";
    let case = "OffsetFetch v10 by the zero id (a name is not sent)";
    target.check(case, NONE, Some(&found), with_message(NONE, wanted), None);
    let found = fetch(&mut target, 10, "", id, None);
    let wanted = "names the topic as asked: [(0, 5, 0), (1, 8, 0)]";
    target.check("OffsetFetch v10, all the group has", NONE, Some(&found), with_message(NONE, wanted), None);
    target.finish();
}

/// A feature update's result: feature, code, message.
type FeatureResult = (String, i16, Option<String>);

/// One UpdateFeatures case: its name, the updates (feature, level, upgrade type), the Kafka
/// column and Skua's where it differs.
type FeatureCase<'a> = (&'a str, Vec<(&'a str, i16, i8)>, Expected, Option<Expected>);

/// One UpdateFeatures request: its top-level code and message, and each result's.
fn update_features(
    target: &mut Target,
    version: i16,
    updates: &[(&str, i16, i8)],
    validate_only: bool,
) -> (i16, Option<String>, Vec<FeatureResult>) {
    use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
    use kafka_protocol::messages::{UpdateFeaturesRequest, UpdateFeaturesResponse};
    let mut body = UpdateFeaturesRequest::default();
    body.timeout_ms = 10_000;
    body.validate_only = validate_only && version >= 1;
    body.feature_updates = updates
        .iter()
        .map(|(feature, level, upgrade_type)| {
            let mut update = FeatureUpdateKey::default();
            update.feature = StrBytes::from_string(feature.to_string());
            update.max_version_level = *level;
            if version == 0 {
                update.allow_downgrade = *upgrade_type != 1;
            } else {
                update.upgrade_type = *upgrade_type;
            }
            update
        })
        .collect();
    let response: UpdateFeaturesResponse = target.call(ApiKey::UpdateFeatures, version, &body);
    let results = response
        .results
        .iter()
        .map(|result| (result.feature.to_string(), result.error_code, text(&result.error_message).map(str::to_string)))
        .collect();
    (response.error_code, text(&response.error_message).map(str::to_string), results)
}

/// `kafka-features upgrade/downgrade` as Kafka 4.4's controller answers them (observed on a live
/// one-node Kafka 4.4, 2026-12-04): one refused update fails the request with INVALID_UPDATE_VERSION
/// and Kafka's words, naming the first refused update; success lists each update with NONE up to
/// version 1, none in version 2. Skua's supported ranges are single levels (`metadata.version`
/// 7, the others 0), so its ranges in the messages differ, and `group.version` 1, Kafka's
/// finalized level, is refused.
#[test]
fn update_features_answers_as_kafka() {
    const INVALID_UPDATE_VERSION: i16 = 95;
    let mut target = Target::start();
    let node = target.node_id;
    let metadata_level: i16 = if target.oracle { 33 } else { 7 };
    let failed = |reason: &str| {
        with_message(
            INVALID_UPDATE_VERSION,
            &format!("The update failed for all features since the following feature had an error: {reason}"),
        )
    };
    let unknown =
        format!("Invalid update version 1 for feature nosuch. Local controller {node} does not support this feature.");
    for version in 0..=2 {
        let cases: Vec<FeatureCase> = vec![
            ("unknown feature", vec![("nosuch", 1, 1)], failed(&unknown), None),
            (
                "group.version 7",
                vec![("group.version", 7, 1)],
                failed(&format!("Invalid update version 7 for feature group.version. Local controller {node} only supports versions 0-1")),
                Some(failed(&format!("Invalid update version 7 for feature group.version. Local controller {node} only supports versions 0-0"))),
            ),
            (
                "metadata.version 6",
                vec![("metadata.version", 6, 1)],
                failed(&format!("Invalid update version 6 for feature metadata.version. Local controller {node} only supports versions 7-33")),
                Some(failed(&format!("Invalid update version 6 for feature metadata.version. Local controller {node} only supports versions 7-7"))),
            ),
            ("metadata.version at its finalized level", vec![("metadata.version", metadata_level, 1)], no_message(NONE), None),
            (
                "group.version 1 (Kafka's finalized level)",
                vec![("group.version", 1, 1)],
                no_message(NONE),
                Some(failed(&format!("Invalid update version 1 for feature group.version. Local controller {node} only supports versions 0-0"))),
            ),
            (
                "a negative level",
                vec![("group.version", -1, 1)],
                failed("Invalid update version -1 for feature group.version. A feature version cannot be less than 0."),
                None,
            ),
            ("no updates", vec![], no_message(NONE), None),
            ("a good one, then an unknown one", vec![("metadata.version", metadata_level, 1), ("nosuch", 1, 1)], failed(&unknown), None),
        ];
        for (case, updates, kafka, skua) in cases {
            let (code, message, results) = update_features(&mut target, version, &updates, true);
            target.check(&format!("v{version} {case}"), code, message.as_deref(), kafka, skua);
            // Results: one NONE per update on success before version 2, else none.
            let listed: Vec<FeatureResult> = if code == NONE && version < 2 {
                updates.iter().map(|(feature, _, _)| (feature.to_string(), NONE, Some("NONE".to_string()))).collect()
            } else {
                Vec::new()
            };
            assert_eq!(results, listed, "v{version} {case}: results");
        }
    }
    target.finish();
}
