//! The native producer driver: Produce requests built with the `kafka-protocol` crate and written
//! to each partition's leader over a plain TCP connection, up to [`IN_FLIGHT_REQUESTS_MAX`]
//! pipelined per connection; one reader thread per connection matches the responses (a broker
//! answers a connection's requests in order) and records publish latency from each message's
//! intended send time, like the rdkafka driver.
//!
//! Owns: a lean producer for benchmarks. It batches per partition (`batch.size`, `linger.ms`,
//! sticky partition for unkeyed messages, FNV hash for keyed ones) and sends acks 0, 1 or all.
//! It does not retry, and refuses idempotence and compression with a clear error (use the
//! rdkafka driver for those). Its consumer is `native_consumer.rs`. Exists because on a 2-core
//! machine the client, not the broker, can be what limits the rate.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

use crate::driver::{MessageSource, Pacer, ProducerPlan};
use crate::stats::{record_latency, Recorder};
use crate::workload::Workload;

/// Produce requests one connection may have unanswered (Kafka's client default is 5).
pub const IN_FLIGHT_REQUESTS_MAX: usize = 5;
/// Largest response frame accepted from a broker.
pub const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Produce v9: the first flexible version; Kafka 3.x/4.x and netd all speak it.
const PRODUCE_VERSION: i16 = 9;
const METADATA_VERSION: i16 = 9;
/// How long the broker may take to acknowledge (the request's `timeout_ms`).
const PRODUCE_TIMEOUT_MS: i32 = 30_000;
/// Socket read timeout: a broker silent this long fails the run.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const CLIENT_ID: &str = "skua-loadgen-native";
/// How often every partition's batch is checked against `linger.ms` (the partition a message
/// went to is checked at once).
const LINGER_SWEEP_INTERVAL: Duration = Duration::from_millis(1);

pub fn version() -> &'static str {
    "kafka-protocol 0.18"
}

/// Refuses the workload settings this driver does not implement.
pub fn check_supported(workload: &Workload) -> anyhow::Result<()> {
    if workload.idempotence {
        bail!("the native driver does not do idempotence; use --driver rdkafka");
    }
    if !matches!(workload.compression.as_str(), "none" | "") {
        bail!("the native driver does not compress (compression={}); use --driver rdkafka", workload.compression);
    }
    Ok(())
}

pub(crate) fn frame<M: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &M,
) -> anyhow::Result<Vec<u8>> {
    let mut buffer = BytesMut::new();
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    header.encode(&mut buffer, api_key.request_header_version(version)).context("encoding a request header")?;
    body.encode(&mut buffer, version).context("encoding a request")?;
    let mut out = Vec::with_capacity(buffer.len() + 4);
    out.extend_from_slice(&(buffer.len() as i32).to_be_bytes());
    out.extend_from_slice(&buffer);
    Ok(out)
}

/// Reads one response frame and strips its header.
fn read_response(stream: &mut TcpStream, api_key: ApiKey, version: i16) -> anyhow::Result<(i32, Bytes)> {
    read_response_into(stream, api_key, version, Vec::new())
}

/// Reads one response frame into `buffer` (cleared; its capacity is reused) and strips its
/// header: the correlation id and the body, a handle on `buffer`.
pub(crate) fn read_response_into(
    stream: &mut TcpStream,
    api_key: ApiKey,
    version: i16,
    mut buffer: Vec<u8>,
) -> anyhow::Result<(i32, Bytes)> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).context("reading a response size")?;
    let size = i32::from_be_bytes(size);
    if size < 4 || size as usize > RESPONSE_BYTES_MAX {
        bail!("broker sent a response frame of {size} bytes");
    }
    buffer.clear();
    buffer.reserve_exact(size as usize);
    // read_to_end fills the spare capacity without clearing it first; it reads no more than the
    // frame.
    let read = stream.take(size as u64).read_to_end(&mut buffer).context("reading a response")?;
    if read != size as usize {
        bail!("broker closed the connection within a response ({read} of {size} bytes)");
    }
    let mut bytes = Bytes::from(buffer);
    let header = ResponseHeader::decode(&mut bytes, api_key.response_header_version(version))
        .context("decoding a response header")?;
    Ok((header.correlation_id, bytes))
}

pub(crate) fn connect(address: &str) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect(address).with_context(|| format!("connecting to {address}"))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    Ok(stream)
}

/// Leader address of every partition of `topic`, from a Metadata request to `bootstrap`.
pub(crate) fn leaders(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<String>> {
    let mut stream = connect(bootstrap)?;
    let mut request = MetadataRequest::default();
    let mut wanted = MetadataRequestTopic::default();
    wanted.name = Some(TopicName(StrBytes::from_string(topic.to_string())));
    request.topics = Some(vec![wanted]);
    stream.write_all(&frame(ApiKey::Metadata, METADATA_VERSION, 1, &request)?)?;
    let (_, mut body) = read_response(&mut stream, ApiKey::Metadata, METADATA_VERSION)?;
    let response = MetadataResponse::decode(&mut body, METADATA_VERSION).context("decoding Metadata")?;
    let brokers: BTreeMap<i32, String> =
        response.brokers.iter().map(|broker| (broker.node_id.0, format!("{}:{}", broker.host, broker.port))).collect();
    let Some(found) = response.topics.first() else { bail!("Metadata answered no topic for {topic}") };
    if found.error_code != 0 {
        bail!("Metadata for {topic}: error code {}", found.error_code);
    }
    let mut partitions: Vec<(i32, String)> = Vec::new();
    for partition in &found.partitions {
        let leader = brokers.get(&partition.leader_id.0).with_context(|| {
            format!("{topic}-{}: leader {} unknown", partition.partition_index, partition.leader_id.0)
        })?;
        partitions.push((partition.partition_index, leader.clone()));
    }
    partitions.sort();
    if partitions.iter().enumerate().any(|(index, (partition, _))| *partition != index as i32) || partitions.is_empty()
    {
        bail!("Metadata for {topic} does not list partitions 0..n");
    }
    Ok(partitions.into_iter().map(|(_, leader)| leader).collect())
}

/// What a request in flight carries, for its response: per partition, the intended send times
/// (µs after the run's epoch) and bytes of its messages.
type InFlight = Vec<(i32, Vec<u64>, u64)>;

struct Connection {
    stream: TcpStream,
    in_flight: Option<SyncSender<InFlight>>,
    reader: Option<JoinHandle<anyhow::Result<()>>>,
    correlation_id: i32,
}

impl Connection {
    fn open(address: &str, acks: i16, recorder: Arc<Recorder>, epoch: Instant) -> anyhow::Result<Connection> {
        let stream = connect(address)?;
        if acks == 0 {
            return Ok(Connection { stream, in_flight: None, reader: None, correlation_id: 0 });
        }
        // The reader holds one request's entry while it waits for its response: the channel
        // bounds the others.
        let (sender, receiver) = sync_channel(IN_FLIGHT_REQUESTS_MAX - 1);
        let reading = stream.try_clone()?;
        let reader = std::thread::spawn(move || read_acknowledgements(reading, receiver, recorder, epoch));
        Ok(Connection { stream, in_flight: Some(sender), reader: Some(reader), correlation_id: 0 })
    }

    /// Sends one Produce request; blocks while [`IN_FLIGHT_REQUESTS_MAX`] are unanswered.
    fn send(
        &mut self,
        request: &ProduceRequest,
        entry: InFlight,
        recorder: &Recorder,
        epoch: Instant,
    ) -> anyhow::Result<()> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let bytes = frame(ApiKey::Produce, PRODUCE_VERSION, self.correlation_id, request)?;
        match &self.in_flight {
            Some(in_flight) => {
                in_flight.send(entry).map_err(|_| anyhow::anyhow!("the acknowledgement reader stopped"))?;
                self.stream.write_all(&bytes).context("sending a Produce request")?;
            }
            None => {
                // acks=0: no answer comes; a message counts as published once written.
                self.stream.write_all(&bytes).context("sending a Produce request")?;
                let now = epoch.elapsed().as_micros() as u64;
                recorder.with(|window| {
                    for (_, intended, bytes) in &entry {
                        window.published += intended.len() as u64;
                        window.published_bytes += bytes;
                        for at in intended {
                            record_latency(&mut window.publish_latency, now.saturating_sub(*at));
                        }
                    }
                });
            }
        }
        Ok(())
    }

    /// Waits for every answer.
    fn finish(mut self) -> anyhow::Result<()> {
        drop(self.in_flight.take());
        match self.reader.take() {
            Some(reader) => reader.join().map_err(|_| anyhow::anyhow!("the acknowledgement reader panicked"))?,
            None => Ok(()),
        }
    }
}

fn read_acknowledgements(
    mut stream: TcpStream,
    in_flight: Receiver<InFlight>,
    recorder: Arc<Recorder>,
    epoch: Instant,
) -> anyhow::Result<()> {
    while let Ok(entry) = in_flight.recv() {
        let (_, mut body) = read_response(&mut stream, ApiKey::Produce, PRODUCE_VERSION)?;
        let response = ProduceResponse::decode(&mut body, PRODUCE_VERSION).context("decoding Produce")?;
        let now = epoch.elapsed().as_micros() as u64;
        let errors: BTreeMap<i32, i16> = response
            .responses
            .iter()
            .flat_map(|topic| topic.partition_responses.iter().map(|partition| (partition.index, partition.error_code)))
            .collect();
        let messages: BTreeMap<i32, String> = response
            .responses
            .iter()
            .flat_map(|topic| topic.partition_responses.iter())
            .filter_map(|partition| Some((partition.index, partition.error_message.as_ref()?.to_string())))
            .collect();
        recorder.with(|window| {
            for (partition, intended, bytes) in &entry {
                if errors.get(partition) == Some(&0) {
                    window.published += intended.len() as u64;
                    window.published_bytes += bytes;
                    for at in intended {
                        record_latency(&mut window.publish_latency, now.saturating_sub(*at));
                    }
                } else {
                    window.publish_errors += intended.len() as u64;
                    let code =
                        errors.get(partition).map_or("no answer".to_string(), |code| format!("error code {code}"));
                    let code = match messages.get(partition) {
                        Some(message) => format!("{code} ({message})"),
                        None => code,
                    };
                    crate::driver::report_error(&format!("Produce to partition {partition}: {code}"));
                }
            }
        });
    }
    Ok(())
}

/// Messages waiting for one partition's next batch.
#[derive(Default)]
struct Accumulator {
    records: Vec<Record>,
    intended: Vec<u64>,
    bytes: usize,
    first_at: Option<Instant>,
}

/// Record `index` of a batch from a producer without idempotence. The encoder starts a new batch
/// whenever `offset - sequence` changes, and writes the first record's sequence as the batch's
/// base sequence: sequence `index - 1` keeps one batch (Kafka takes exactly one per partition)
/// with base sequence -1 (none).
fn record(index: usize, timestamp_ms: i64, key: &[u8], value: &[u8]) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: index as i64,
        sequence: index as i32 - 1,
        timestamp: timestamp_ms,
        key: (!key.is_empty()).then(|| Bytes::copy_from_slice(key)),
        value: Some(Bytes::copy_from_slice(value)),
        headers: IndexMap::new(),
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3))
}

/// Runs one native producer until `stop` or its message budget, then waits for every answer.
/// Returns how many messages it sent.
pub fn run_producer(
    plan: ProducerPlan,
    recorder: Arc<Recorder>,
    stop: Arc<AtomicBool>,
    epoch: Instant,
) -> anyhow::Result<u64> {
    let workload = &plan.workload;
    check_supported(workload)?;
    let acks: i16 = match workload.acks.as_str() {
        "all" | "-1" => -1,
        other => other.parse().with_context(|| format!("acks={other}"))?,
    };
    let leaders = leaders(&plan.bootstrap, &plan.topic)?;
    let partition_count = leaders.len();
    let mut connections: BTreeMap<String, Connection> = BTreeMap::new();
    for leader in &leaders {
        if !connections.contains_key(leader) {
            connections.insert(leader.clone(), Connection::open(leader, acks, recorder.clone(), epoch)?);
        }
    }
    let topic = TopicName(StrBytes::from_string(plan.topic.clone()));
    let linger = Duration::from_millis(workload.linger_ms);
    let batch_bytes = workload.batch_size.max(1);
    let mut accumulators: Vec<Accumulator> = (0..partition_count).map(|_| Accumulator::default()).collect();
    let mut sticky = (plan.seed as usize) % partition_count;
    let mut messages = MessageSource::new(&plan);
    let pacer = Pacer::new(plan.rate);
    let mut sent = 0u64;
    let mut last_sweep = Instant::now();
    // Sends the batches that are full, past `linger.ms`, or (with `all`) not empty, among
    // `only` or every partition: one request per leader with every ready batch it leads.
    let mut send_ready = |accumulators: &mut Vec<Accumulator>, only: Option<usize>, all: bool| -> anyhow::Result<()> {
        let mut requests: BTreeMap<&str, (Vec<PartitionProduceData>, InFlight)> = BTreeMap::new();
        for (partition, accumulator) in accumulators.iter_mut().enumerate() {
            if only.is_some_and(|only| only != partition) {
                continue;
            }
            let due = accumulator.first_at.is_some_and(|first| first.elapsed() >= linger);
            if accumulator.records.is_empty() || !(all || due || accumulator.bytes >= batch_bytes) {
                continue;
            }
            let mut encoded = BytesMut::with_capacity(accumulator.bytes + 128);
            let options = RecordEncodeOptions { version: 2, compression: Compression::None };
            RecordBatchEncoder::encode(&mut encoded, accumulator.records.iter(), &options)
                .context("encoding a record batch")?;
            let mut data = PartitionProduceData::default();
            data.index = partition as i32;
            data.records = Some(encoded.freeze());
            let entry = requests.entry(leaders[partition].as_str()).or_default();
            entry.0.push(data);
            entry.1.push((partition as i32, std::mem::take(&mut accumulator.intended), accumulator.bytes as u64));
            *accumulator = Accumulator::default();
        }
        for (leader, (partitions, in_flight)) in requests {
            let mut data = TopicProduceData::default();
            data.name = topic.clone();
            data.partition_data = partitions;
            let mut request = ProduceRequest::default();
            request.acks = acks;
            request.timeout_ms = PRODUCE_TIMEOUT_MS;
            request.topic_data = vec![data];
            let connection = connections.get_mut(leader).expect("a connection per leader");
            connection.send(&request, in_flight, &recorder, epoch)?;
        }
        Ok(())
    };
    while !stop.load(Ordering::Relaxed) && sent < plan.messages_max {
        let Some(intended) = pacer.intended(sent) else {
            send_ready(&mut accumulators, None, false)?; // Linger expired while the rate held us back.
            last_sweep = Instant::now();
            continue;
        };
        let intended_micros = intended.duration_since(epoch).as_micros() as u64;
        let (payload, key) = messages.next(intended, sent);
        let partition = if key.is_empty() { sticky } else { (fnv(key.as_bytes()) % partition_count as u64) as usize };
        let accumulator = &mut accumulators[partition];
        accumulator.first_at.get_or_insert_with(Instant::now);
        accumulator.bytes += payload.len() + key.len() + 16;
        accumulator.intended.push(intended_micros);
        let index = accumulator.records.len();
        let timestamp_ms = (crate::driver::wall_micros() / 1000) as i64;
        accumulator.records.push(record(index, timestamp_ms, key.as_bytes(), payload));
        let full = accumulator.bytes >= batch_bytes;
        if full && key.is_empty() {
            sticky = (sticky + 1) % partition_count;
        }
        if full {
            send_ready(&mut accumulators, Some(partition), false)?;
        }
        if last_sweep.elapsed() >= LINGER_SWEEP_INTERVAL {
            send_ready(&mut accumulators, None, false)?;
            last_sweep = Instant::now();
        }
        let delay = Instant::now().saturating_duration_since(intended).as_micros() as u64;
        recorder.with(|window| record_latency(&mut window.publish_delay, delay));
        sent += 1;
    }
    send_ready(&mut accumulators, None, true)?;
    for (_, connection) in connections {
        connection.finish()?;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_of_many_records_encodes_as_one_batch_without_a_sequence() {
        let records: Vec<Record> = (0..5).map(|index| record(index, 1_700_000_000_000, b"", b"abc")).collect();
        let mut encoded = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression: Compression::None };
        RecordBatchEncoder::encode(&mut encoded, records.iter(), &options).expect("encodes");
        let batch_length = i32::from_be_bytes(encoded[8..12].try_into().expect("4 bytes")) as usize;
        assert_eq!(batch_length + 12, encoded.len(), "exactly one batch");
        assert_eq!(&encoded[0..8], &[0u8; 8], "base offset 0");
        assert_eq!(i32::from_be_bytes(encoded[23..27].try_into().expect("4 bytes")), 4, "last offset delta");
        assert_eq!(i64::from_be_bytes(encoded[43..51].try_into().expect("8 bytes")), -1, "no producer id");
        assert_eq!(i32::from_be_bytes(encoded[53..57].try_into().expect("4 bytes")), -1, "no base sequence");
        assert_eq!(i32::from_be_bytes(encoded[57..61].try_into().expect("4 bytes")), 5, "record count");
    }
}
