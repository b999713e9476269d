//! The librdkafka driver (the `rdkafka` crate): what most production clients run. Producer and
//! consumer threads, topic creation, the safety check on broker addresses, and watermarks for
//! consumer lag.
//!
//! Owns: turning a workload into client settings and load. Producers follow the intended-time
//! schedule of a uniform rate limiter (OMB's `UniformRateLimiter`): message `i` of a producer
//! is due at `start + i × interval`; its publish latency runs from that time to the broker's
//! acknowledgement, its publish delay from that time to the actual `send`. The first 8 bytes of
//! every payload carry the intended send time (µs since the Unix epoch) for end-to-end latency.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};

use crate::stats::{record_latency, Recorder};
use crate::workload::{KeyDistributor, Workload};

/// How long client operations (metadata, topic creation) may take before the run gives up.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);
/// Bytes librdkafka may buffer per producer before `send` reports a full queue.
pub const PRODUCER_QUEUE_KBYTES_MAX: usize = 64 * 1024;
/// Partitions whose watermarks are sampled each second for consumer lag.
pub const LAG_PARTITIONS_MAX: usize = 10_000;
/// Partitions asked about in one batched ListOffsets request when sampling lag.
pub const LAG_PARTITIONS_PER_REQUEST: usize = 1_000;
/// How long one lag sample may wait for the broker.
pub const LAG_SAMPLE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn wall_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_micros() as u64)
}

pub fn librdkafka_version() -> String {
    rdkafka::util::get_rdkafka_version().1
}

fn base_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap).set("socket.timeout.ms", "10000").set("log_level", "3");
    config
}

fn host_of(address: &str) -> &str {
    address.rsplit_once(':').map_or(address, |(host, _)| host)
}

/// Refuses to run when the broker advertises hosts other than the one given (traffic must go
/// only where the user pointed it), and fails clearly when nothing answers.
pub fn check_brokers(bootstrap: &str, allow_other_hosts: bool) -> anyhow::Result<Vec<String>> {
    let consumer: BaseConsumer = base_config(bootstrap).create().context("creating a metadata client")?;
    let metadata = consumer
        .fetch_metadata(None, CLIENT_TIMEOUT)
        .with_context(|| format!("no Kafka broker answered at {bootstrap} within {CLIENT_TIMEOUT:?}"))?;
    let wanted = host_of(bootstrap.split(',').next().unwrap_or(bootstrap));
    let brokers: Vec<String> =
        metadata.brokers().iter().map(|broker| format!("{}:{}", broker.host(), broker.port())).collect();
    for broker in metadata.brokers() {
        if broker.host() != wanted && !allow_other_hosts {
            bail!(
                "the cluster at {bootstrap} advertises broker {}:{}, another host than the one given; \
                 loadgen only sends traffic to the address you name (pass --allow-other-hosts to accept)",
                broker.host(),
                broker.port()
            );
        }
    }
    Ok(brokers)
}

/// Creates `names` with `partitions` each, `replication_factor` replicas and `configs` (a topic
/// that exists already is kept as it is).
pub fn create_topics(
    bootstrap: &str,
    names: &[String],
    partitions: i32,
    replication_factor: i32,
    configs: &[(String, String)],
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        base_config(bootstrap).create().context("creating an admin client")?;
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            configs.iter().fold(
                NewTopic::new(name, partitions, TopicReplication::Fixed(replication_factor)),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT)).request_timeout(Some(CLIENT_TIMEOUT));
    let results = futures_executor::block_on(admin.create_topics(&topics, &options))
        .with_context(|| format!("creating topics at {bootstrap}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("could not create topic {name}: {code}"),
        }
    }
    Ok(())
}

struct DeliveryContext {
    recorder: Arc<Recorder>,
    epoch: Instant,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    /// Intended send time, µs after `epoch`.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, intended_micros: usize) {
        let now = self.epoch.elapsed().as_micros() as u64;
        self.recorder.with(|window| match result {
            Ok(message) => {
                window.published += 1;
                window.published_bytes += message.payload_len() as u64;
                record_latency(&mut window.publish_latency, now.saturating_sub(intended_micros as u64));
            }
            Err(_) => window.publish_errors += 1,
        });
    }
}

/// What a producer thread needs.
pub struct ProducerPlan {
    pub bootstrap: String,
    pub topic: String,
    pub workload: Workload,
    /// Messages per second for this producer; 0 for as fast as possible.
    pub rate: f64,
    pub seed: u64,
    /// Stop after this many messages (the run's share of `--max-messages`).
    pub messages_max: u64,
}

/// When each message is meant to be sent: at a fixed rate, or now (max rate). Latency is
/// measured from this intended time, so a stalled client shows its stall (no coordinated
/// omission).
pub struct Pacer {
    interval: Option<Duration>,
    start: Instant,
}

impl Pacer {
    /// `rate` in messages per second; 0 for as fast as possible.
    pub fn new(rate: f64) -> Pacer {
        let interval = if rate > 0.0 { Some(Duration::from_secs_f64(1.0 / rate)) } else { None };
        Pacer { interval, start: Instant::now() }
    }

    /// The intended send time of message number `sent`. `None` after sleeping toward it (up to
    /// 50 ms): the caller does its housekeeping and asks again.
    pub fn intended(&self, sent: u64) -> Option<Instant> {
        let Some(interval) = self.interval else { return Some(Instant::now()) };
        let due = self.start + interval.mul_f64(sent as f64);
        let now = Instant::now();
        if due > now {
            let wait = due - now;
            if wait > Duration::from_millis(1) {
                std::thread::sleep(wait.min(Duration::from_millis(50)));
                return None;
            }
            while Instant::now() < due {
                std::hint::spin_loop();
            }
        }
        Some(due)
    }
}

/// The messages one producer sends: a pseudo-random payload of the workload's size whose first
/// 8 bytes carry the intended send time (wall-clock µs, for end-to-end latency), and keys as the
/// workload's key distributor says.
pub struct MessageSource {
    payload: Vec<u8>,
    key: String,
    state: u64,
    key_distributor: KeyDistributor,
}

impl MessageSource {
    pub fn new(plan: &ProducerPlan) -> MessageSource {
        let mut payload = vec![0u8; plan.workload.message_size];
        let mut state = plan.seed | 1;
        for byte in payload.iter_mut().skip(8) {
            state = xorshift(state);
            *byte = state as u8;
        }
        MessageSource { payload, key: String::new(), state, key_distributor: plan.workload.key_distributor }
    }

    /// Payload and key (empty: no key) of message number `sent`, meant to go at `intended`.
    pub fn next(&mut self, intended: Instant, sent: u64) -> (&[u8], &str) {
        let intended_wall = wall_micros().saturating_sub(intended.elapsed().as_micros() as u64);
        self.payload[..8].copy_from_slice(&intended_wall.to_be_bytes());
        self.key.clear();
        match self.key_distributor {
            KeyDistributor::NoKey => {}
            KeyDistributor::RoundRobin => self.key.push_str(&(sent % 10_000).to_string()),
            KeyDistributor::Random => {
                self.state = xorshift(self.state);
                self.key.push_str(&format!("{:016x}", self.state));
            }
        }
        (&self.payload, &self.key)
    }
}

fn xorshift(mut state: u64) -> u64 {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    state
}

/// Runs one producer until `stop`, then flushes. Returns how many messages it sent.
pub fn run_producer(
    plan: ProducerPlan,
    recorder: Arc<Recorder>,
    stop: Arc<AtomicBool>,
    epoch: Instant,
) -> anyhow::Result<u64> {
    let workload = &plan.workload;
    let mut config = base_config(&plan.bootstrap);
    config
        .set("acks", if workload.acks == "-1" { "all" } else { &workload.acks })
        .set("enable.idempotence", workload.idempotence.to_string())
        .set("linger.ms", workload.linger_ms.to_string())
        .set("batch.size", workload.batch_size.to_string())
        .set("compression.type", &workload.compression)
        .set("queue.buffering.max.kbytes", PRODUCER_QUEUE_KBYTES_MAX.to_string())
        .set("message.timeout.ms", "120000");
    let producer: BaseProducer<DeliveryContext> = config
        .create_with_context(DeliveryContext { recorder: recorder.clone(), epoch })
        .context("creating a producer")?;
    let mut messages = MessageSource::new(&plan);
    let pacer = Pacer::new(plan.rate);
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) && sent < plan.messages_max {
        let Some(intended) = pacer.intended(sent) else {
            producer.poll(Duration::ZERO);
            continue;
        };
        let intended_micros = intended.duration_since(epoch).as_micros() as u64;
        let (payload, key) = messages.next(intended, sent);
        loop {
            let mut record = BaseRecord::with_opaque_to(&plan.topic, intended_micros as usize).payload(payload);
            if !key.is_empty() {
                record = record.key(key.as_bytes());
            }
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // Backpressure: wait for acknowledgements; the intended time stands, so the
                    // wait shows up as latency (no coordinated omission).
                    producer.poll(Duration::from_millis(5));
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                Err((error, _)) => {
                    recorder.with(|window| window.publish_errors += 1);
                    report_error(&format!("send to {}: {error}", plan.topic));
                    break;
                }
            }
        }
        let delay = Instant::now().saturating_duration_since(intended).as_micros() as u64;
        recorder.with(|window| record_latency(&mut window.publish_delay, delay));
        sent += 1;
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).context("flushing the producer")?;
    Ok(sent)
}

/// Prints the first few errors of a run (later ones are only counted).
pub fn report_error(message: &str) {
    static REPORTED: AtomicUsize = AtomicUsize::new(0);
    if REPORTED.fetch_add(1, Ordering::Relaxed) < 10 {
        eprintln!("loadgen: {message}");
    }
}

/// Next offset to consume per (topic, partition), for lag; shared by one subscription's consumers.
pub type Positions = Arc<Mutex<BTreeMap<(String, i32), i64>>>;

pub struct ConsumerPlan {
    pub bootstrap: String,
    pub topic: String,
    pub group: String,
}

/// How often a consumer hands its positions to the lag probe's map.
const POSITIONS_PUBLISH_MS: u64 = 50;

/// How long librdkafka waits before fetching again for a partition whose local queue is full.
const CONSUMER_QUEUE_BACKOFF_MS: &str = "10";

/// Runs one group consumer until `stop`. `assigned` counts consumers that got partitions.
pub fn run_consumer(
    plan: ConsumerPlan,
    recorder: Arc<Recorder>,
    positions: Positions,
    stop: Arc<AtomicBool>,
    assigned: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = base_config(&plan.bootstrap)
        .set("group.id", &plan.group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "true")
        .set("fetch.wait.max.ms", "100")
        // librdkafka stops fetching a partition for fetch.queue.backoff.ms (default 1 s) once
        // its local queue holds queued.min.messages (100,000): one full fetch of small records
        // (16 partitions × 1 MiB of 100 B records) crosses that, so a consumer that fell
        // behind then reads one fetch per second, from Skua and Kafka alike (~200k msg/s).
        // Measure the broker, not that pause.
        .set("fetch.queue.backoff.ms", CONSUMER_QUEUE_BACKOFF_MS)
        .set("session.timeout.ms", "10000")
        .create()
        .context("creating a consumer")?;
    consumer.subscribe(&[&plan.topic]).context("subscribing")?;
    let mut counted = false;
    // This consumer's positions, handed to the shared map (which the lag probe samples) every
    // POSITIONS_PUBLISH_MS: a String and a map insert per message cost the consuming thread,
    // which is what limits one consumer reading from memory.
    let mut local_positions: HashMap<i32, i64> = HashMap::new();
    let mut published = Instant::now();
    let publish = |local: &mut HashMap<i32, i64>| {
        let mut shared = positions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (partition, next) in local.drain() {
            shared.insert((plan.topic.clone(), partition), next);
        }
    };
    while !stop.load(Ordering::Relaxed) {
        if published.elapsed() >= Duration::from_millis(POSITIONS_PUBLISH_MS) {
            publish(&mut local_positions);
            published = Instant::now();
        }
        let Some(result) = consumer.poll(Duration::from_millis(100)) else {
            if !counted && consumer.assignment().is_ok_and(|list| list.count() > 0) {
                assigned.fetch_add(1, Ordering::Relaxed);
                counted = true;
            }
            continue;
        };
        if !counted {
            assigned.fetch_add(1, Ordering::Relaxed);
            counted = true;
        }
        let message = match result {
            Ok(message) => message,
            Err(error) => {
                report_error(&format!("consume {}: {error}", plan.topic));
                continue;
            }
        };
        let now = wall_micros();
        let payload = message.payload().unwrap_or_default();
        recorder.with(|window| {
            window.consumed += 1;
            window.consumed_bytes += payload.len() as u64;
            if let Some(stamp) = payload.get(..8) {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(stamp);
                record_latency(&mut window.end_to_end, now.saturating_sub(u64::from_be_bytes(bytes)));
            }
        });
        local_positions.insert(message.partition(), message.offset() + 1);
    }
    publish(&mut local_positions);
    Ok(())
}

/// Samples log end offsets to compute consumer lag.
pub struct LagProbe {
    consumer: BaseConsumer,
    partitions: Vec<(String, i32)>,
}

impl LagProbe {
    pub fn new(bootstrap: &str, topics: &[String], partitions: i32) -> anyhow::Result<LagProbe> {
        let consumer: BaseConsumer = base_config(bootstrap).create().context("creating a lag probe")?;
        let partitions = topics
            .iter()
            .flat_map(|topic| (0..partitions).map(move |partition| (topic.clone(), partition)))
            .take(LAG_PARTITIONS_MAX)
            .collect();
        Ok(LagProbe { consumer, partitions })
    }

    /// Log start (`Offset::Beginning`) or end (`Offset::End`) offsets of every sampled
    /// partition, asked in batched ListOffsets requests of [`LAG_PARTITIONS_PER_REQUEST`]
    /// partitions (one request per batch instead of one per partition). Partitions that did
    /// not answer are missing.
    fn watermarks(&self, which: Offset, timeout: Duration) -> BTreeMap<(String, i32), i64> {
        let mut found = BTreeMap::new();
        for batch in self.partitions.chunks(LAG_PARTITIONS_PER_REQUEST) {
            let mut list = TopicPartitionList::with_capacity(batch.len());
            for (topic, partition) in batch {
                // offsets_for_times takes timestamps; -1 (End) and -2 (Beginning) are Kafka's
                // "latest" and "earliest".
                if list.add_partition_offset(topic, *partition, which).is_err() {
                    continue;
                }
            }
            let Ok(answer) = self.consumer.offsets_for_times(list, timeout) else { continue };
            for element in answer.elements() {
                if let (Offset::Offset(offset), None) = (element.offset(), element.error().err()) {
                    found.insert((element.topic().to_string(), element.partition()), offset);
                }
            }
        }
        found
    }

    /// (topic-partition, log end offset − next offset to consume), for the first subscription.
    pub fn sample(&self, positions: &Positions) -> BTreeMap<String, i64> {
        let consumed = positions.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let ends = self.watermarks(Offset::End, LAG_SAMPLE_TIMEOUT);
        let unconsumed = ends.keys().any(|key| !consumed.contains_key(key));
        let starts = if unconsumed { self.watermarks(Offset::Beginning, LAG_SAMPLE_TIMEOUT) } else { BTreeMap::new() };
        let mut lag = BTreeMap::new();
        for (key, high) in ends {
            let Some(next) = consumed.get(&key).or_else(|| starts.get(&key)).copied() else { continue };
            lag.insert(format!("{}-{}", key.0, key.1), (high - next).max(0));
        }
        lag
    }

    /// Sum of log end offsets over the sampled partitions (what the broker holds).
    pub fn end_offsets(&self) -> i64 {
        self.watermarks(Offset::End, CLIENT_TIMEOUT).values().sum()
    }
}
