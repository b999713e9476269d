//! The broker's resource limits against hostile or careless clients, on the real binary over raw
//! sockets: a Fetch naming one partition many times with a huge `max_bytes` (the response stays
//! within `fetch.max.bytes`, the broker's memory within a stated bound), idle connections
//! announcing 100 MiB frames (nothing reserved, healthy clients served, idle ones closed),
//! `max.connections` / `max.connections.per.ip`, running out of file descriptors (the acceptor
//! backs off and says so once), and listeners Skua would not serve (refused at start-up).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{answers_api_versions, run_bounded, Broker};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

const MIB: u64 = 1024 * 1024;
/// Kafka's `fetch.max.bytes` default, which Skua uses too.
const FETCH_RESPONSE_BYTES_MAX: u64 = 57_671_680;

fn request<M: Encodable>(api_key: ApiKey, version: i16, correlation_id: i32, body: &M) -> Vec<u8> {
    common::request_frame(api_key, version, correlation_id, body)
}

fn response(stream: &mut TcpStream, api_key: ApiKey, version: i16) -> Bytes {
    common::read_response(stream, api_key, version).1
}

fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    stream
}

/// A connection from another loopback address (127.0.0.x), for the per-address limit.
fn connect_from(source: [u8; 4], address: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.bind(&SocketAddr::from((source, 0)).into()).expect("bind a loopback source address");
    socket.connect(&address.into()).expect("connect");
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    stream
}

/// ApiVersions v0 on an open connection: true if answered within `wait`.
fn api_versions_answered(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut frame = vec![0, 0, 0, 15, 0, 18, 0, 0, 0, 0, 0, 7, 0, 5];
    frame.extend_from_slice(b"probe");
    if stream.write_all(&frame).is_err() {
        return false;
    }
    stream.set_read_timeout(Some(wait)).expect("timeout");
    let mut size = [0u8; 4];
    let answered = stream.read_exact(&mut size).is_ok();
    if answered {
        let mut body = vec![0u8; u32::from_be_bytes(size) as usize];
        stream.read_exact(&mut body).expect("ApiVersions body");
    }
    answered
}

/// A connection from 127.0.0.1 that the broker serves, retried for up to 5 s.
fn connect_served(address: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut stream = connect(address);
        if api_versions_answered(&mut stream, Duration::from_secs(2)) {
            return stream;
        }
        assert!(Instant::now() < deadline, "no connection from 127.0.0.1 was served");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a read on a connection the test expects to be closed (or not) finds.
#[derive(Debug, PartialEq)]
enum Peer {
    Closed,
    Open,
}

fn peer_state(stream: &mut TcpStream, wait: Duration) -> Peer {
    stream.set_read_timeout(Some(wait)).expect("timeout");
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => Peer::Closed,
        Ok(_) => panic!("the broker sent bytes to a connection that asked nothing"),
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Peer::Open,
        Err(_) => Peer::Closed,
    }
}

/// Produces `batches` record batches of about 1 MB each to partition 0, one request each; returns
/// the first error code.
fn produce_batches(stream: &mut TcpStream, topic: &'static str, batches: usize, seed: u64) -> i16 {
    produce_batches_to(stream, topic, 0, batches, seed)
}

/// Produces `batches` record batches of about 1 MB each to `partition`, one request each;
/// returns the first error code.
fn produce_batches_to(stream: &mut TcpStream, topic: &'static str, partition: i32, batches: usize, seed: u64) -> i16 {
    // One batch per request: Produce v3+ allows one batch per partition (INVALID_RECORD otherwise).
    for index in 0..batches {
        let records = engine::testkit::make_sized_batch(16, 65_000, seed + index as u64, 1_700_000_000_000);
        let index = partition;
        let mut partition = PartitionProduceData::default();
        partition.index = index;
        partition.records = Some(Bytes::from(records));
        let mut data = TopicProduceData::default();
        data.name = TopicName(StrBytes::from_static_str(topic));
        data.partition_data = vec![partition];
        let mut body = ProduceRequest::default();
        body.acks = 1;
        body.timeout_ms = 10_000;
        body.topic_data = vec![data];
        stream.write_all(&request(ApiKey::Produce, 9, 1, &body)).expect("send produce");
        let mut bytes = response(stream, ApiKey::Produce, 9);
        let decoded = ProduceResponse::decode(&mut bytes, 9).expect("decode produce");
        let code = decoded.responses[0].partition_responses[0].error_code;
        if code != 0 {
            return code;
        }
    }
    0
}

/// A Fetch v11 frame naming partition 0 of `topic` `namings` times from offset 0, asking for
/// everything (`max_bytes` and every `partition_max_bytes` at i32::MAX).
fn fetch_everything(topic: &'static str, namings: usize, max_wait_ms: i32) -> Vec<u8> {
    let mut fetch = FetchRequest::default();
    fetch.replica_id = kafka_protocol::messages::BrokerId(-1);
    fetch.max_wait_ms = max_wait_ms;
    fetch.min_bytes = 1;
    fetch.max_bytes = i32::MAX;
    fetch.session_epoch = -1;
    let mut wanted = FetchTopic::default();
    wanted.topic = TopicName(StrBytes::from_static_str(topic));
    wanted.partitions = (0..namings)
        .map(|_| {
            let mut partition = FetchPartition::default();
            partition.partition = 0;
            partition.fetch_offset = 0;
            partition.partition_max_bytes = i32::MAX;
            partition
        })
        .collect();
    fetch.topics = vec![wanted];
    request(ApiKey::Fetch, 11, 2, &fetch)
}

/// The record bytes of partition 0 in a Fetch v11 response read from `stream`.
fn fetched_record_bytes(stream: &mut TcpStream) -> u64 {
    let mut bytes = response(stream, ApiKey::Fetch, 11);
    let decoded = FetchResponse::decode(&mut bytes, 11).expect("decode fetch");
    let partition = &decoded.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    partition.records.as_ref().map_or(0, |records| records.len() as u64)
}

/// The broker's memory cache of recent records in the fetch tests: small, so that most reads
/// are file reads, which the fetch budget bounds.
const READ_CACHE_BYTES: u64 = 8 * MIB;

/// Concurrent fetches whose clients do not read yet: the file bytes of responses waiting to be
/// written count against `skua.fetch.buffered.bytes.max`, so only one ~24 MiB response is held
/// at a time (30 MiB budget) where four were (~96 MiB); the others are served once it is written
/// (within their max_wait_ms; past it they would get an empty answer and ask again).
#[test]
fn concurrent_fetches_wait_for_the_fetch_memory_budget() {
    const BUFFERED_BYTES_MAX: u64 = 30 * MIB;
    // The records must be read from files (a read from the memory cache copies nothing).
    let broker = Broker::start(&[
        &format!("skua.fetch.buffered.bytes.max={BUFFERED_BYTES_MAX}"),
        &format!("skua.read.cache.bytes={READ_CACHE_BYTES}"),
    ]);
    let mut producer = connect(broker.address);
    for round in 0..3 {
        assert_eq!(produce_batches(&mut producer, "limits-budget", 8, round * 8), 0, "produce {round}");
    }
    // Each fetch may wait up to 10 s for room in the budget (its max_wait_ms).
    let frame = fetch_everything("limits-budget", 1, 10_000);
    let rss_before_kib = broker.status_kib("VmRSS");
    broker.reset_peak_rss();
    let mut consumers: Vec<TcpStream> = (0..4).map(|_| connect(broker.address)).collect();
    for consumer in &mut consumers {
        consumer.write_all(&frame).expect("send fetch");
    }
    std::thread::sleep(Duration::from_secs(1));
    let peak_kib = broker.status_kib("VmHWM");
    let growth_kib = peak_kib.saturating_sub(rss_before_kib);
    eprintln!(
        "4 unread ~24 MiB fetches: broker RSS {} MiB before, peak {} MiB",
        rss_before_kib / 1024,
        peak_kib / 1024
    );
    // Now the clients read (each on its own thread, as real consumers would): the response
    // holding the budget is written, and the waiting fetches get room one after another.
    let readers: Vec<_> = consumers
        .into_iter()
        .map(|mut consumer| std::thread::spawn(move || fetched_record_bytes(&mut consumer)))
        .collect();
    for (index, reader) in readers.into_iter().enumerate() {
        let records = reader.join().expect("reader");
        assert!(records > 20 * MIB, "consumer {index} got its records ({records} bytes) once room was made");
    }
    // The stated bound: one response's copy (~24 MiB) and change, not four.
    assert!(growth_kib < 40 * 1024, "RSS grew {} MiB holding unread fetch responses", growth_kib / 1024);
}

/// A Fetch naming partition 0 of `topic` twelve times from offset 0, asking for everything
/// (`max_bytes` and every `partition_max_bytes` at i32::MAX): on `main` the broker read the
/// partition twelve times and held 1.6 GB for a 246-byte request.
#[test]
fn a_duplicated_partition_fetch_stays_within_fetch_max_bytes_and_memory() {
    let broker = Broker::start(&[&format!("skua.read.cache.bytes={READ_CACHE_BYTES}")]);
    let mut stream = connect(broker.address);
    // 8 requests of 8 batches of ~1 MB: ~64 MiB in the partition, most of it only in files (the
    // memory cache keeps READ_CACHE_BYTES).
    for round in 0..8 {
        assert_eq!(produce_batches(&mut stream, "limits-fetch", 8, round * 8), 0, "produce {round}");
    }
    let frame = fetch_everything("limits-fetch", 12, 0);
    let rss_before_kib = broker.status_kib("VmRSS");
    broker.reset_peak_rss();
    stream.write_all(&frame).expect("send fetch");
    let mut bytes = response(&mut stream, ApiKey::Fetch, 11);
    let response_bytes = bytes.len() as u64;
    let peak_kib = broker.status_kib("VmHWM");
    let decoded = FetchResponse::decode(&mut bytes, 11).expect("decode fetch");
    let partitions: Vec<_> = decoded.responses.iter().flat_map(|topic| &topic.partitions).collect();
    eprintln!(
        "request {} bytes; response {response_bytes} bytes; broker RSS {} MiB before, peak {} MiB during",
        frame.len(),
        rss_before_kib / 1024,
        peak_kib / 1024
    );
    // Kafka 4.4 answers a partition named twice in a sessionless fetch once.
    assert_eq!(partitions.len(), 1, "one answer for the partition named twelve times");
    assert_eq!(partitions[0].error_code, 0);
    let records = partitions[0].records.as_ref().map_or(0, |records| records.len() as u64);
    assert!(records <= FETCH_RESPONSE_BYTES_MAX, "records {records} within fetch.max.bytes");
    assert!(records >= FETCH_RESPONSE_BYTES_MAX - 2 * MIB, "records {records}: the fetch filled its limit");
    // The stated bound: the broker's resident memory grows by at most twice the response limit
    // while it serves this fetch (one copy of the file bytes is expected; twelve were made).
    let growth_kib = peak_kib.saturating_sub(rss_before_kib);
    assert!(
        growth_kib <= 2 * FETCH_RESPONSE_BYTES_MAX / 1024,
        "RSS grew by {} MiB serving one fetch (bound {} MiB)",
        growth_kib / 1024,
        2 * FETCH_RESPONSE_BYTES_MAX / MIB
    );
}

/// Two partitions owned by two shards, fetched together under a `max_bytes` that holds the
/// first partition's records and part of the second's: the response fills the limit with whole
/// batches of both (each shard planned the whole limit; the second partition, left out at
/// first, is planned again within the room left). Before, the second partition came back empty.
#[test]
fn a_fetch_across_shards_fills_max_bytes_with_whole_batches_of_every_partition() {
    let broker = Broker::start(&["skua.shard.count=2", "num.partitions=2"]);
    let mut stream = connect(broker.address);
    // Partitions 0 and 1 of a topic sit on different shards of two (`catalog::owner_of`).
    assert_eq!(produce_batches_to(&mut stream, "limits-fill", 0, 3, 0), 0, "produce to partition 0");
    assert_eq!(produce_batches_to(&mut stream, "limits-fill", 1, 8, 100), 0, "produce to partition 1");
    let batch_bytes = engine::testkit::make_sized_batch(16, 65_000, 0, 1_700_000_000_000).len() as u64;
    // Room for 6.5 batches: partition 0's 3, then 3 of partition 1's (alone it would give 6).
    let max_bytes = batch_bytes * 13 / 2;
    let mut fetch = FetchRequest::default();
    fetch.replica_id = kafka_protocol::messages::BrokerId(-1);
    fetch.max_wait_ms = 0;
    fetch.min_bytes = 1;
    fetch.max_bytes = i32::try_from(max_bytes).expect("fits");
    fetch.session_epoch = -1;
    let mut wanted = FetchTopic::default();
    wanted.topic = TopicName(StrBytes::from_static_str("limits-fill"));
    wanted.partitions = (0..2)
        .map(|index| {
            let mut partition = FetchPartition::default();
            partition.partition = index;
            partition.partition_max_bytes = i32::MAX;
            partition
        })
        .collect();
    fetch.topics = vec![wanted];
    stream.write_all(&request(ApiKey::Fetch, 11, 2, &fetch)).expect("send fetch");
    let mut bytes = response(&mut stream, ApiKey::Fetch, 11);
    let decoded = FetchResponse::decode(&mut bytes, 11).expect("decode fetch");
    let sizes: Vec<u64> = decoded.responses[0]
        .partitions
        .iter()
        .map(|partition| {
            assert_eq!(partition.error_code, 0);
            partition.records.as_ref().map_or(0, |records| records.len() as u64)
        })
        .collect();
    eprintln!("batch {batch_bytes} bytes, max_bytes {max_bytes}: partition record bytes {sizes:?}");
    assert_eq!(sizes, vec![3 * batch_bytes, 3 * batch_bytes], "whole batches of both partitions within the limit");
}

/// 200 connections each announce a 100 MiB frame (allowed by socket.request.max.bytes) and send
/// nothing more: on `main` each reserved its 100 MiB at once (VmSize 20 GiB).
#[test]
fn announced_frames_reserve_nothing_and_idle_connections_close() {
    const IDLE_MS: u64 = 2_000;
    let broker = Broker::start(&[&format!("connections.max.idle.ms={IDLE_MS}")]);
    let size_before_kib = broker.status_kib("VmSize");
    let rss_before_kib = broker.status_kib("VmRSS");
    let opened = Instant::now();
    let mut idle: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut stream = connect(broker.address);
            stream.write_all(&104_857_600i32.to_be_bytes()).expect("announce a frame");
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let size_kib = broker.status_kib("VmSize");
    let rss_kib = broker.status_kib("VmRSS");
    eprintln!(
        "200 idle 100 MiB frames: VmSize {} -> {} MiB, VmRSS {} -> {} MiB",
        size_before_kib / 1024,
        size_kib / 1024,
        rss_before_kib / 1024,
        rss_kib / 1024
    );
    // The stated bound: 200 announced frames cost under 128 MiB of address space and 32 MiB of
    // resident memory (each has at most one 64 KiB read step; most wait for the byte budget).
    assert!(
        size_kib.saturating_sub(size_before_kib) < 128 * 1024,
        "VmSize grew {} MiB",
        (size_kib - size_before_kib) / 1024
    );
    assert!(rss_kib.saturating_sub(rss_before_kib) < 32 * 1024, "VmRSS grew {} MiB", (rss_kib - rss_before_kib) / 1024);
    assert!(answers_api_versions(broker.address), "a healthy client is served beside them");
    assert_eq!(peer_state(&mut idle[0], Duration::from_millis(10)), Peer::Open, "not closed before the idle time");
    assert_eq!(peer_state(&mut idle[199], Duration::from_millis(10)), Peer::Open, "not closed before the idle time");
    let deadline = opened + Duration::from_millis(IDLE_MS * 2 + 1_000);
    for (index, stream) in idle.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        assert_eq!(peer_state(stream, left), Peer::Closed, "connection {index} closed after connections.max.idle.ms");
    }
    let closed_after = opened.elapsed();
    assert!(closed_after >= Duration::from_millis(IDLE_MS), "closed after {closed_after:?}, before the idle time");
    assert!(answers_api_versions(broker.address), "still serving");
}

/// `max.connections` holds further connections in the listen backlog until one closes (as Kafka's
/// acceptor waits for a slot); `max.connections.per.ip` closes the extra connection at once.
#[test]
fn connection_limits_refuse_the_extra_connection_while_others_work() {
    // 127.0.0.4 may hold none (max.connections.per.ip.overrides; names resolve too).
    let broker = Broker::start(&[
        "max.connections=3",
        "max.connections.per.ip=2",
        "max.connections.per.ip.overrides=127.0.0.4:0,localhost:2",
    ]);
    let mut overridden = connect_from([127, 0, 0, 4], broker.address);
    assert_eq!(peer_state(&mut overridden, Duration::from_secs(5)), Peer::Closed, "127.0.0.4's override is 0");
    // The start-up probe's connection frees its place a moment after it closes: until then a
    // second connection from 127.0.0.1 may be refused, so each is retried until served.
    let mut first = connect_served(broker.address);
    let second = connect_served(broker.address);
    let mut third_same_address = connect(broker.address);
    assert_eq!(
        peer_state(&mut third_same_address, Duration::from_secs(5)),
        Peer::Closed,
        "a third connection from 127.0.0.1 is closed (max.connections.per.ip=2)"
    );
    let mut other_address = connect_from([127, 0, 0, 2], broker.address);
    assert!(api_versions_answered(&mut other_address, Duration::from_secs(5)), "another address may connect");
    let mut waiting = connect_from([127, 0, 0, 3], broker.address);
    assert!(
        !api_versions_answered(&mut waiting, Duration::from_millis(700)),
        "a fourth connection is not served (max.connections=3)"
    );
    assert!(api_versions_answered(&mut first, Duration::from_secs(5)), "the others keep working");
    assert!(api_versions_answered(&mut other_address, Duration::from_secs(5)), "the others keep working");
    drop(second);
    let mut size = [0u8; 4];
    waiting.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    waiting.read_exact(&mut size).expect("served once a connection closed");
    let log = broker.log();
    assert!(log.contains("max.connections reached"), "{log}");
    // Said once, for the first refusal: 127.0.0.4's, by its override.
    assert!(log.contains("max.connections.per.ip (0) reached"), "{log}");
}

/// The connection limits as dynamic broker configs, set by Kafka's own `kafka-configs`: described
/// as Kafka describes them, refused with Kafka's messages, applied to the next connections at
/// once, kept across a restart, and gone when deleted.
/// Kafka's `kafka-configs` on broker 1 with `args`: whether it succeeded, and what it printed.
fn configs(broker: &Broker, args: &[&str]) -> (bool, String) {
    let mut all = vec!["--entity-type", "brokers", "--entity-name", "1"];
    all.extend_from_slice(args);
    common::kafka_configs(broker.address_str(), &all)
}

#[test]
fn connection_limits_change_at_runtime_through_kafka_configs() {
    let mut broker = Broker::start(&[]);
    // Two connections from 127.0.0.1 served, and whether a third is closed at once.
    let third_is_closed = |broker: &Broker| {
        let served = [connect_served(broker.address), connect_served(broker.address)];
        let mut third = connect(broker.address);
        let closed = peer_state(&mut third, Duration::from_secs(2)) == Peer::Closed;
        drop(served);
        closed
    };
    assert!(!third_is_closed(&broker), "no limit yet");
    let (set, said) = configs(&broker, &["--alter", "--add-config", "max.connections.per.ip=2"]);
    assert!(set, "{said}");
    assert!(third_is_closed(&broker), "max.connections.per.ip=2 applies at once");
    let (described, said) = configs(&broker, &["--describe"]);
    assert!(described, "{said}");
    // Kafka 4.4's line for the same command.
    let line = "  max.connections.per.ip=2 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:max.connections.per.ip=2, \
                DEFAULT_CONFIG:max.connections.per.ip=2147483647}";
    assert!(said.lines().any(|have| have == line), "{line:?} not in:\n{said}");
    // Kafka 4.4's refusals (its dynamic validation's words for 0).
    for (change, message) in [
        ("max.connections.per.ip=-1", "Invalid value -1 for configuration max.connections.per.ip: Value must be at least 0"),
        ("max.connections=abc", "Invalid value abc for configuration max.connections: Not a number of type INT"),
        (
            "max.connections=0",
            "Invalid value org.apache.kafka.common.config.ConfigException: Invalid max.connections 0 for configuration \
             Invalid dynamic configuration",
        ),
        (
            "max.connections.per.ip=0",
            "requirement failed: max.connections.per.ip can be set to zero only if max.connections.per.ip.overrides \
             property is set.",
        ),
    ] {
        let (done, said) = configs(&broker, &["--alter", "--add-config", change]);
        assert!(!done && said.contains(message), "{change}: {said}");
    }
    // Per-address exceptions: 127.0.0.2 may hold none, 127.0.0.1 three.
    let (set, said) =
        configs(&broker, &["--alter", "--add-config", "max.connections.per.ip.overrides=[127.0.0.2:0,127.0.0.1:3]"]);
    assert!(set, "{said}");
    let mut refused = connect_from([127, 0, 0, 2], broker.address);
    assert_eq!(peer_state(&mut refused, Duration::from_secs(2)), Peer::Closed, "127.0.0.2's override is 0");
    assert!(!third_is_closed(&broker), "127.0.0.1's override is 3");
    let (done, said) = configs(&broker, &["--alter", "--add-config", "max.connections.per.ip.overrides=[127.0.0.1]"]);
    assert!(!done && said.contains("is not host:count"), "{said}");
    let (deleted, said) = configs(&broker, &["--alter", "--delete-config", "max.connections.per.ip.overrides"]);
    assert!(deleted, "{said}");
    broker.restart(common::Restart::Sigterm);
    assert!(third_is_closed(&broker), "kept across a restart");
    let (deleted, said) = configs(&broker, &["--alter", "--delete-config", "max.connections.per.ip"]);
    assert!(deleted, "{said}");
    assert!(!third_is_closed(&broker), "the limit is gone");
    assert!(broker.log().contains("connection limits changed"), "{}", broker.log());
}

/// `max.connection.creation.rate`, set with Kafka's `kafka-configs`: past it the acceptor makes
/// new connections wait (Kafka's throttle), and with it deleted they come as fast as before.
#[test]
fn connection_creation_rate_slows_new_connections_at_runtime() {
    const CONNECTIONS: usize = 20;
    const RATE: usize = 5;
    // Windows of a second, two of them: the rate is read over one to two seconds (Kafka's
    // defaults, 11 windows, would let a burst of about 50 through first).
    let broker = Broker::start(&["quota.window.num=2", "quota.window.size.seconds=1"]);
    let open_served = |broker: &Broker| {
        let started = Instant::now();
        let served: Vec<TcpStream> = (0..CONNECTIONS).map(|_| connect_served(broker.address)).collect();
        drop(served);
        started.elapsed()
    };
    let unthrottled = open_served(&broker);
    let (set, said) = configs(&broker, &["--alter", "--add-config", &format!("max.connection.creation.rate={RATE}")]);
    assert!(set, "{said}");
    // Let the windows forget the connections above.
    std::thread::sleep(Duration::from_millis(2_100));
    let throttled = open_served(&broker);
    // At most RATE a second after the first second's RATE: 20 connections take about 3 s.
    let floor = Duration::from_millis(((CONNECTIONS - 2 * RATE) * 1000 / RATE) as u64);
    assert!(throttled >= floor, "{CONNECTIONS} connections at {RATE}/s in {throttled:?} (< {floor:?})");
    assert!(broker.log().contains("max.connection.creation.rate reached"), "{}", broker.log());
    let (described, said) = configs(&broker, &["--describe"]);
    assert!(described, "{said}");
    // Kafka 4.4's line for the same command.
    let line = "  max.connection.creation.rate=5 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:\
                max.connection.creation.rate=5, DEFAULT_CONFIG:max.connection.creation.rate=2147483647}";
    assert!(said.lines().any(|have| have == line), "{line:?} not in:\n{said}");
    // Kafka 4.4's refusals.
    for (change, message) in [
        (
            "max.connection.creation.rate=0",
            "Invalid value org.apache.kafka.common.config.ConfigException: Invalid max.connection.creation.rate 0 \
             for configuration Invalid dynamic configuration",
        ),
        (
            "max.connection.creation.rate=2147483648",
            "Invalid value 2147483648 for configuration max.connection.creation.rate: Not a number of type INT",
        ),
    ] {
        let (done, said) = configs(&broker, &["--alter", "--add-config", change]);
        assert!(!done && said.contains(message), "{change}: {said}");
    }
    let (deleted, said) = configs(&broker, &["--alter", "--delete-config", "max.connection.creation.rate"]);
    assert!(deleted, "{said}");
    std::thread::sleep(Duration::from_millis(2_100));
    let again = open_served(&broker);
    eprintln!(
        "{CONNECTIONS} connections: {unthrottled:?} unlimited, {throttled:?} at {RATE}/s, {again:?} unlimited again"
    );
    assert!(again < floor, "without the limit {CONNECTIONS} connections took {again:?} (before it: {unthrottled:?})");
}

/// Out of file descriptors the acceptor used to retry at once (46-101 % of a core, 21-53 MB/s of
/// log lines). Now it backs off, says once which limit it hit, and serves again when fds free up.
#[test]
fn out_of_file_descriptors_the_acceptor_backs_off_and_says_so_once() {
    const OPEN_FILES_MAX: u64 = 64;
    let broker = Broker::start_with_open_files_max(
        &["offsets.topic.num.partitions=1", "skua.shard.count=1"],
        Some(OPEN_FILES_MAX),
    );
    let limit_line = "RLIMIT_NOFILE";
    let mut streams = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    // Until the broker says it ran out, or holds every fd it may (whether it says so is checked
    // below, after the CPU it spends meanwhile).
    while !broker.log().contains(limit_line) && (broker.open_files() as u64) < OPEN_FILES_MAX {
        assert!(Instant::now() < deadline, "the broker never ran out of fds: {}", broker.log());
        assert!(streams.len() < 200, "200 connections and no EMFILE");
        streams.push(connect(broker.address));
        std::thread::sleep(Duration::from_millis(2));
    }
    // A few more wait in the backlog, keeping the listener readable.
    for _ in 0..5 {
        streams.push(connect(broker.address));
    }
    let ticks_before = broker.cpu_ticks();
    let measured = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let ticks = broker.cpu_ticks() - ticks_before;
    let ticks_per_second = 100; // CLK_TCK on Linux
    let core_share = ticks as f64 / ticks_per_second as f64 / measured.elapsed().as_secs_f64();
    eprintln!(
        "out of fds with {} connections: {ticks} ticks of CPU in 2 s ({:.1} % of a core)",
        streams.len(),
        core_share * 100.0
    );
    assert!(core_share < 0.1, "the broker used {:.0} % of a core while out of fds", core_share * 100.0);
    let log = broker.log();
    let lines: Vec<&str> = log.lines().filter(|line| line.contains(limit_line)).collect();
    assert_eq!(lines.len(), 1, "the limit is said once:\n{}", lines.join("\n"));
    assert!(lines[0].contains(&format!("RLIMIT_NOFILE {OPEN_FILES_MAX}")), "the limit's value is named: {}", lines[0]);
    drop(streams);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !answers_api_versions(broker.address) {
        assert!(Instant::now() < deadline, "the broker did not serve again: {}", broker.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(broker.log().contains("accepting connections again"), "{}", broker.log());
}

/// Listeners Skua would not serve stop the broker at start-up with a message naming them.
#[test]
fn unsupported_listeners_are_refused_at_start_up() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    // netd refuses these while reading its configuration, before it binds anything. The listener
    // it would serve, were the refusal lost, has port 0 (a free port, no clash with anything); the
    // refused one is never bound, and its own port keeps the two apart in the message.
    let (port, other_port) = (0, 9093);
    let cases = [
        (
            format!("listeners=PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{other_port}"),
            format!("listener SSL://127.0.0.1:{other_port}: security protocol SSL is not supported (only PLAINTEXT)"),
        ),
        (
            format!("listeners=SASL_SSL://127.0.0.1:{port}"),
            format!(
                "listener SASL_SSL://127.0.0.1:{port}: security protocol SASL_SSL is not supported (only PLAINTEXT)"
            ),
        ),
    ];
    for (listeners, message) in cases {
        let outcome = run_bounded(
            std::process::Command::new(env!("CARGO_BIN_EXE_netd"))
                .arg("--override")
                .arg(&listeners)
                .arg("--override")
                .arg(format!("log.dirs={}", dir.path().display())),
            b"",
            Duration::from_secs(10),
        );
        assert!(!outcome.killed && !outcome.status.success(), "{listeners}: netd must refuse to start");
        assert!(outcome.stderr.contains(&message), "{listeners}: stderr names the listener:\n{}", outcome.stderr);
    }
}

/// Slow-loris: connections that announce large frames (or complete ones' sizes) and then send
/// next to nothing must not take the request budgets from everyone else. The budgets are charged
/// for bytes received (`queued.max.request.bytes`) and for complete requests
/// (`queued.max.requests`), not for sizes announced; charged by announcement, the three 100 MiB
/// announcements filled the 1 MiB byte budget and the ten half-sent frames the five places, and
/// the healthy client below was never read.
#[test]
fn announced_frames_that_never_arrive_take_no_budget_from_others() {
    let broker = Broker::start(&["queued.max.request.bytes=1048576", "queued.max.requests=5"]);
    let mut lorises = Vec::new();
    for _ in 0..3 {
        let mut stream = connect(broker.address);
        stream.write_all(&(100 * 1024 * 1024i32).to_be_bytes()).expect("announce 100 MiB");
        stream.write_all(&[0]).expect("one byte of it");
        lorises.push(stream);
    }
    for _ in 0..10 {
        let mut stream = connect(broker.address);
        // ApiVersions v0 announced as 15 bytes, of which 5 are sent.
        stream.write_all(&[0, 0, 0, 15, 0, 18, 0, 0, 0]).expect("half a request");
        lorises.push(stream);
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut healthy = connect(broker.address);
    assert!(
        api_versions_answered(&mut healthy, Duration::from_secs(3)),
        "a healthy client is served while {} connections hold partial frames",
        lorises.len()
    );
    drop(lorises);
}

/// netd's side of the connection from `client_port` to the broker, as `ss` shows it: the socket's
/// receive and send buffer sizes (`rb`, `tb` of `skmem`).
fn broker_socket_buffers(broker: &Broker, client_port: u16) -> (u64, u64) {
    let output = std::process::Command::new("ss")
        .args(["-tmnH", "src", &broker.address.to_string(), "dst", &format!("127.0.0.1:{client_port}")])
        .output()
        .expect("ss (iproute2) runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let field = |name: &str| -> u64 {
        let start = text.find(&format!(",{name}")).unwrap_or_else(|| panic!("no {name} in {text:?}")) + name.len() + 1;
        text[start..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().expect("a number")
    };
    (field("rb"), field("tb"))
}

/// `socket.send.buffer.bytes` and `socket.receive.buffer.bytes` reach the connections the broker
/// accepts (the kernel doubles what is set, as for Kafka's sockets), Kafka's tools describe them,
/// and -1 leaves the kernel's autotuning.
#[test]
fn socket_buffer_sizes_reach_the_accepted_connections() {
    let broker = Broker::start(&["socket.send.buffer.bytes=131072", "socket.receive.buffer.bytes=65536"]);
    let stream = connect_served(broker.address);
    let port = stream.local_addr().expect("local address").port();
    assert_eq!(broker_socket_buffers(&broker, port), (131_072, 262_144), "rb = 2 × 65536, tb = 2 × 131072");
    let (described, said) = configs(&broker, &["--describe", "--all"]);
    assert!(described, "{said}");
    for line in ["socket.send.buffer.bytes=131072 ", "socket.receive.buffer.bytes=65536 "] {
        assert!(said.lines().any(|have| have.trim_start().starts_with(line)), "{line:?} not in:\n{said}");
    }
    drop(stream);
    drop(broker);

    // The kernel's autotuning: the send buffer is sized from the connection (up to `tcp_wmem`'s
    // maximum), past what Kafka's fixed default (2 × 102400) allows, and a ~4 MB answer arrives.
    let broker = Broker::start(&["socket.send.buffer.bytes=-1", "socket.receive.buffer.bytes=-1"]);
    let mut stream = connect_served(broker.address);
    let port = stream.local_addr().expect("local address").port();
    assert_eq!(produce_batches(&mut stream, "autotuned", 4, 7), 0, "4 batches of ~1 MB produced");
    stream.write_all(&fetch_everything("autotuned", 1, 0)).expect("fetch sent");
    assert!(fetched_record_bytes(&mut stream) >= 4 * MIB - MIB / 2, "the whole answer arrives");
    let (_, send) = broker_socket_buffers(&broker, port);
    assert!(send > 2 * 102_400, "autotuned send buffer {send} bytes");

    // Values that cannot be a size are refused at start-up, naming the key.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    for value in ["0", "-2", "abc"] {
        let outcome = run_bounded(
            std::process::Command::new(env!("CARGO_BIN_EXE_netd"))
                .arg("--override")
                .arg(format!("socket.send.buffer.bytes={value}"))
                .arg("--override")
                .arg(format!("log.dirs={}", dir.path().display())),
            b"",
            Duration::from_secs(10),
        );
        assert!(!outcome.killed && !outcome.status.success(), "socket.send.buffer.bytes={value} must be refused");
        assert!(outcome.stderr.contains("socket.send.buffer.bytes"), "{value}: {}", outcome.stderr);
    }
}
