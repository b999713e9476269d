//! Metrics (issue 16): what each shard counts for itself, and the Prometheus text exposition of
//! every shard's counts together.
//!
//! Owns: [`ShardMetrics`] (one per shard thread: plain `Cell`s only that thread touches, so the
//! data path takes no lock and no atomic), [`ShardSnapshot`] (a copy of one shard's counters and
//! partition states, made on the shard when the endpoint is scraped and sent to the metrics
//! thread), and [`encode`] (the snapshots merged and written in Prometheus' text format 0.0.4
//! through `prometheus-client`, decision 0020).
//!
//! The engine's disk latencies (its writes, `fdatasync`s and durable log commits, decision 0020)
//! are counted by the engine itself ([`engine::io::stats`]) and the shard's fetch file reads by
//! `runtime::file_read`; a snapshot copies them, and they are written per shard.
//!
//! Must not know: shards, queues or sockets (the runtime makes the snapshots and serves them).
//! Runs on: the shard threads (counting, snapshots) and the metrics thread (encoding).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use engine::io::stats::{IoStats, LatencyHistogram as IoLatencyHistogram, IO_LATENCY_BUCKET_BOUNDS_NS};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The `Content-Type` of what [`encode`] writes.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Kafka API keys counted per API: keys at or past this are counted under the last slot's
/// neighbour, never indexed out of bounds (Kafka 4.4's largest key is 92; the registry serves
/// fewer).
pub const API_KEY_SLOTS: usize = 128;

/// Upper bounds of the request latency histogram's buckets, in microseconds (the exposition
/// writes seconds): 100 µs to 10 s, roughly ×2.5 apart, as Prometheus' defaults are.
pub const LATENCY_BUCKET_BOUNDS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];

/// Kafka's API keys of Produce and Fetch.
const PRODUCE_API_KEY: i16 = 0;
const FETCH_API_KEY: i16 = 1;

/// Counts of one topic on one shard since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TopicCounters {
    /// Record bytes appended by producers (batches as they were sent).
    pub bytes_in: u64,
    /// Records appended by producers.
    pub messages_in: u64,
    /// Record bytes sent in fetch responses (consumers and followers).
    pub bytes_out: u64,
}

impl TopicCounters {
    fn add(&mut self, other: &TopicCounters) {
        self.bytes_in += other.bytes_in;
        self.messages_in += other.messages_in;
        self.bytes_out += other.bytes_out;
    }
}

/// A latency histogram with the fixed buckets [`LATENCY_BUCKET_BOUNDS_US`] (counts per bucket,
/// not cumulative; the last slot is +Inf), so shards' histograms merge by adding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    pub bucket_counts: [u64; LATENCY_BUCKET_BOUNDS_US.len() + 1],
    pub sum_us: u64,
}

impl LatencyHistogram {
    pub fn observe(&mut self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let slot = LATENCY_BUCKET_BOUNDS_US.partition_point(|&bound| bound < micros);
        self.bucket_counts[slot] += 1;
        self.sum_us = self.sum_us.saturating_add(micros);
    }

    pub fn count(&self) -> u64 {
        self.bucket_counts.iter().sum()
    }

    fn add(&mut self, other: &LatencyHistogram) {
        for (mine, theirs) in self.bucket_counts.iter_mut().zip(other.bucket_counts.iter()) {
            *mine += theirs;
        }
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }

    /// (upper bound in seconds, count) per bucket, +Inf last: the counts of each bucket alone,
    /// as `prometheus-client`'s encoder wants them (it writes the cumulative counts).
    fn buckets_seconds(&self) -> Vec<(f64, u64)> {
        self.bucket_counts
            .iter()
            .enumerate()
            .map(|(slot, &count)| {
                let bound = LATENCY_BUCKET_BOUNDS_US.get(slot).map_or(f64::INFINITY, |&bound| bound as f64 / 1e6);
                (bound, count)
            })
            .collect()
    }
}

/// One API's counts on one shard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApiCounters {
    /// Requests answered (or that needed no answer), with their latency.
    pub latency: LatencyHistogram,
    /// Requests whose handler ran and whose answer is not ready yet (produce waiting for its
    /// acknowledgements, fetch for data or its deadline, a join for the rebalance: Kafka's
    /// purgatories).
    pub waiting: u64,
}

impl ApiCounters {
    fn add(&mut self, other: &ApiCounters) {
        self.latency.add(&other.latency);
        self.waiting += other.waiting;
    }
}

/// What one shard thread counts: touched only by that thread (not `Sync`), read by
/// [`ShardMetrics::snapshot`] on the same thread.
#[derive(Debug)]
pub struct ShardMetrics {
    topics: RefCell<HashMap<String, TopicCounters>>,
    /// By API key (at most [`API_KEY_SLOTS`]).
    requests: RefCell<Vec<ApiCounters>>,
    /// From an append to its acknowledgement (the group commit's write and fdatasync; with
    /// acks=all also the followers'), per produced partition.
    commit_wait: RefCell<LatencyHistogram>,
    /// From handing a produced partition's batches to the codec threads to their return (the
    /// queue's wait and the conversion), per converted partition.
    conversion: RefCell<LatencyHistogram>,
    /// From handing a request's compressed batches to the codec threads for validation (past
    /// what a shard decompresses itself) to their return, per request share.
    offshard_validation: RefCell<LatencyHistogram>,
}

impl Default for ShardMetrics {
    fn default() -> ShardMetrics {
        ShardMetrics {
            topics: RefCell::new(HashMap::new()),
            requests: RefCell::new(vec![ApiCounters::default(); API_KEY_SLOTS]),
            commit_wait: RefCell::new(LatencyHistogram::default()),
            conversion: RefCell::new(LatencyHistogram::default()),
            offshard_validation: RefCell::new(LatencyHistogram::default()),
        }
    }
}

/// The slot of an API key: keys out of range share the last slot rather than index past it.
fn api_slot(api_key: i16) -> usize {
    usize::try_from(api_key).unwrap_or(API_KEY_SLOTS - 1).min(API_KEY_SLOTS - 1)
}

impl ShardMetrics {
    fn with_topic(&self, topic: &str, change: impl FnOnce(&mut TopicCounters)) {
        let mut topics = self.topics.borrow_mut();
        match topics.get_mut(topic) {
            Some(counters) => change(counters),
            None => change(topics.entry(topic.to_string()).or_default()),
        }
    }

    /// A produced partition's batches were appended.
    pub fn produced(&self, topic: &str, bytes: u64, messages: u64) {
        self.with_topic(topic, |counters| {
            counters.bytes_in += bytes;
            counters.messages_in += messages;
        });
    }

    /// A fetch response carries `bytes` of the topic's records.
    pub fn fetched(&self, topic: &str, bytes: u64) {
        self.with_topic(topic, |counters| counters.bytes_out += bytes);
    }

    /// A produced partition's append was acknowledged `elapsed` after it was appended.
    pub fn acknowledged(&self, elapsed: Duration) {
        self.commit_wait.borrow_mut().observe(elapsed);
    }

    /// A produced partition's batches came back from the codec threads `elapsed` after they were
    /// handed over.
    pub fn converted(&self, elapsed: Duration) {
        self.conversion.borrow_mut().observe(elapsed);
    }

    /// A request's compressed batches came back validated from the codec threads `elapsed` after
    /// they were handed over.
    pub fn validated_off_shard(&self, elapsed: Duration) {
        self.offshard_validation.borrow_mut().observe(elapsed);
    }

    /// A request of API `api_key` was answered (or needed no answer) `elapsed` after it was read.
    pub fn answered(&self, api_key: i16, elapsed: Duration) {
        self.requests.borrow_mut()[api_slot(api_key)].latency.observe(elapsed);
    }

    /// A request's handler ran and its answer will come later: counted as waiting until the
    /// returned guard is dropped (answered, or dropped with its connection).
    pub fn wait(self: &Rc<Self>, api_key: i16) -> Waiting {
        self.requests.borrow_mut()[api_slot(api_key)].waiting += 1;
        Waiting { metrics: self.clone(), api_key }
    }

    /// This shard's counters; the runtime adds the partitions, groups and replication state.
    pub fn snapshot(&self) -> ShardSnapshot {
        let requests = self
            .requests
            .borrow()
            .iter()
            .enumerate()
            .filter(|(_, counters)| counters.latency.count() > 0 || counters.waiting > 0)
            .map(|(slot, counters)| (slot as i16, *counters))
            .collect();
        ShardSnapshot {
            answered: true,
            topics: self.topics.borrow().iter().map(|(topic, counters)| (topic.clone(), *counters)).collect(),
            requests,
            commit_wait: *self.commit_wait.borrow(),
            conversion: *self.conversion.borrow(),
            offshard_validation: *self.offshard_validation.borrow(),
            ..ShardSnapshot::default()
        }
    }
}

/// A request counted as waiting ([`ShardMetrics::wait`]) until this is dropped.
#[derive(Debug)]
pub struct Waiting {
    metrics: Rc<ShardMetrics>,
    api_key: i16,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let waiting = &mut self.metrics.requests.borrow_mut()[api_slot(self.api_key)].waiting;
        *waiting = waiting.saturating_sub(1);
    }
}

/// One partition replica a shard holds, as of the scrape.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionSnapshot {
    pub topic: String,
    pub partition: i32,
    pub leader: bool,
    pub size_bytes: u64,
    pub log_start_offset: u64,
    pub log_end_offset: u64,
    pub high_watermark: u64,
}

/// A committed offset of a consumer group coordinated on a shard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupOffset {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Replication state of a shard's replicas (cluster mode; zero on one node).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicationSnapshot {
    pub under_replicated: u64,
    pub under_min_isr: u64,
    pub offline: u64,
    pub isr_shrinks: u64,
    pub isr_expands: u64,
    pub truncations: u64,
}

/// One shard's metrics as of a scrape (`Send`: made on the shard, encoded on the metrics thread).
#[derive(Clone, Debug, Default)]
pub struct ShardSnapshot {
    /// False for a shard that did not answer in time: the scrape goes on without it.
    pub answered: bool,
    pub topics: Vec<(String, TopicCounters)>,
    pub requests: Vec<(i16, ApiCounters)>,
    pub commit_wait: LatencyHistogram,
    pub conversion: LatencyHistogram,
    pub offshard_validation: LatencyHistogram,
    /// The shard's replicas: topics' partitions and `__consumer_offsets` partitions.
    pub partitions: Vec<PartitionSnapshot>,
    pub group_offsets: Vec<GroupOffset>,
    pub replication: ReplicationSnapshot,
    /// The engine's disk latencies on this shard (writes, syncs, durable log commits).
    pub io: IoStats,
    /// The engine backend that ran them (`io_uring`, or `syscall` where io_uring is unavailable).
    pub io_backend: &'static str,
    /// The shard's fetch file reads through its runtime's io_uring.
    pub file_reads: IoLatencyHistogram,
    /// Incremental fetch sessions (KIP-227) the shard keeps, and the partitions they hold.
    pub fetch_sessions: u64,
    pub fetch_session_partitions: u64,
    /// Bytes the shard thread keeps in its buffer pools for reuse: the engine's direct-write
    /// buffers and the file-read buffers of fetches.
    pub pooled_write_bytes: u64,
    pub pooled_read_bytes: u64,
}

/// What the broker as a whole says, beside its shards.
#[derive(Clone, Debug, Default)]
pub struct BrokerSnapshot {
    pub node_id: i32,
    /// In a cluster: whether this node is the active controller (`None`: one node, no quorum).
    pub active_controller: Option<bool>,
}

/// The name an API key is exposed under (Kafka's, as `kafka-protocol` spells it).
fn api_name(api_key: i16) -> String {
    match kafka_protocol::messages::ApiKey::try_from(api_key) {
        Ok(key) => format!("{key:?}"),
        Err(()) => format!("Unknown{api_key}"),
    }
}

/// Every shard's snapshot merged, ready to encode.
#[derive(Debug, Default)]
struct Merged {
    shards: u64,
    shards_answered: u64,
    topics: BTreeMap<String, TopicCounters>,
    requests: BTreeMap<i16, ApiCounters>,
    commit_wait: LatencyHistogram,
    conversion: LatencyHistogram,
    offshard_validation: LatencyHistogram,
    partitions: Vec<PartitionSnapshot>,
    group_offsets: Vec<GroupOffset>,
    replication: ReplicationSnapshot,
    broker: BrokerSnapshot,
    /// Per answered shard: (shard index, its disk latencies, its backend, its file reads).
    io: Vec<(usize, IoStats, &'static str, IoLatencyHistogram)>,
    fetch_sessions: u64,
    fetch_session_partitions: u64,
    pooled_write_bytes: u64,
    pooled_read_bytes: u64,
}

fn merge(shards: &[ShardSnapshot], broker: &BrokerSnapshot) -> Merged {
    let mut merged = Merged { shards: shards.len() as u64, broker: broker.clone(), ..Merged::default() };
    // Produce and Fetch are always listed (at zero before the first one), for dashboards.
    for api_key in [PRODUCE_API_KEY, FETCH_API_KEY] {
        merged.requests.entry(api_key).or_default();
    }
    for (index, shard) in shards.iter().enumerate().filter(|(_, shard)| shard.answered) {
        merged.shards_answered += 1;
        merged.io.push((index, shard.io, shard.io_backend, shard.file_reads));
        for (topic, counters) in &shard.topics {
            merged.topics.entry(topic.clone()).or_default().add(counters);
        }
        for (api_key, counters) in &shard.requests {
            merged.requests.entry(*api_key).or_default().add(counters);
        }
        merged.commit_wait.add(&shard.commit_wait);
        merged.conversion.add(&shard.conversion);
        merged.offshard_validation.add(&shard.offshard_validation);
        merged.fetch_sessions += shard.fetch_sessions;
        merged.fetch_session_partitions += shard.fetch_session_partitions;
        merged.pooled_write_bytes += shard.pooled_write_bytes;
        merged.pooled_read_bytes += shard.pooled_read_bytes;
        merged.partitions.extend(shard.partitions.iter().cloned());
        merged.group_offsets.extend(shard.group_offsets.iter().cloned());
        let (total, more) = (&mut merged.replication, &shard.replication);
        total.under_replicated += more.under_replicated;
        total.under_min_isr += more.under_min_isr;
        total.offline += more.offline;
        total.isr_shrinks += more.isr_shrinks;
        total.isr_expands += more.isr_expands;
        total.truncations += more.truncations;
    }
    merged.partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    merged.group_offsets.sort_by(|a, b| (&a.group, &a.topic, a.partition).cmp(&(&b.group, &b.topic, b.partition)));
    merged
}

/// An engine histogram's (upper bound in seconds, count) per bucket, +Inf last: the counts of
/// each bucket alone, as `prometheus-client`'s encoder wants them.
fn io_buckets_seconds(histogram: &IoLatencyHistogram) -> Vec<(f64, u64)> {
    histogram
        .bucket_counts
        .iter()
        .enumerate()
        .map(|(slot, &count)| {
            let bound = IO_LATENCY_BUCKET_BOUNDS_NS.get(slot).map_or(f64::INFINITY, |&bound| bound as f64 / 1e9);
            (bound, count)
        })
        .collect()
}

/// Writes one histogram without labels from a [`LatencyHistogram`] (microseconds, fixed buckets).
fn latency_histogram(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    histogram: &LatencyHistogram,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
        histogram.sum_us as f64 / 1e6,
        histogram.count(),
        &histogram.buckets_seconds(),
        None,
    )
}

/// Writes one family of engine histograms, one per label set.
fn io_histograms<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Labels, &'a IoLatencyHistogram)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, histogram) in samples {
        let mut sample = metric.encode_family(&labels)?;
        sample.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            histogram.sum_ns as f64 / 1e9,
            histogram.count(),
            &io_buckets_seconds(histogram),
            None,
        )?;
    }
    Ok(())
}

/// A label set: (name, value) pairs.
type Labels = Vec<(&'static str, String)>;

fn partition_labels(topic: &str, partition: i32) -> Labels {
    vec![("topic", topic.to_string()), ("partition", partition.to_string())]
}

/// Writes one family of counters or gauges (`name` without `_total`: the encoder adds it to
/// counters).
fn family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    samples: impl IntoIterator<Item = (Labels, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for (labels, value) in samples {
        let sample = metric.encode_family(&labels)?;
        match metric_type {
            MetricType::Counter => ConstCounter::new(value).encode(sample)?,
            _ => ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(sample)?,
        }
    }
    Ok(())
}

impl Collector for Merged {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use MetricType::{Counter, Gauge};
        let topic_counts = |pick: fn(&TopicCounters) -> u64| {
            self.topics.iter().map(move |(topic, counters)| (vec![("topic", topic.clone())], pick(counters)))
        };
        family(
            &mut encoder,
            "skua_topic_bytes_in",
            "Record bytes producers appended, by topic.",
            Counter,
            topic_counts(|counters| counters.bytes_in),
        )?;
        family(
            &mut encoder,
            "skua_topic_messages_in",
            "Records producers appended, by topic.",
            Counter,
            topic_counts(|counters| counters.messages_in),
        )?;
        family(
            &mut encoder,
            "skua_topic_bytes_out",
            "Record bytes sent in fetch responses (consumers and followers), by topic.",
            Counter,
            topic_counts(|counters| counters.bytes_out),
        )?;
        family(
            &mut encoder,
            "skua_requests",
            "Requests answered, by API.",
            Counter,
            self.requests
                .iter()
                .map(|(api_key, counters)| (vec![("api", api_name(*api_key))], counters.latency.count())),
        )?;
        {
            let mut metric = encoder.encode_descriptor(
                "skua_request_latency_seconds",
                "Time from a request read whole to its response written, by API.",
                None,
                MetricType::Histogram,
            )?;
            for (api_key, ApiCounters { latency: histogram, .. }) in &self.requests {
                let labels: Labels = vec![("api", api_name(*api_key))];
                let mut sample = metric.encode_family(&labels)?;
                sample.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    histogram.sum_us as f64 / 1e6,
                    histogram.count(),
                    &histogram.buckets_seconds(),
                    None,
                )?;
            }
        }
        latency_histogram(
            &mut encoder,
            "skua_produce_commit_wait_seconds",
            "Time from a produced partition's append to its acknowledgement: the group commit's write and \
             fdatasync (with acks=all also the followers'), per partition of acks=1 and acks=all requests.",
            &self.commit_wait,
        )?;
        latency_histogram(
            &mut encoder,
            "skua_produce_conversion_seconds",
            "Time from handing a produced partition's batches to the codec threads (a topic whose \
             compression.type converts them) to their return: the queue's wait and the conversion, off the \
             shard.",
            &self.conversion,
        )?;
        latency_histogram(
            &mut encoder,
            "skua_produce_offshard_validation_seconds",
            "Time from handing a Produce request's compressed batches to the codec threads for validation \
             (those past the bytes a shard decompresses itself) to their return: the queue's wait and the \
             decompressing walk, off the shard. One per request share.",
            &self.offshard_validation,
        )?;
        io_histograms(
            &mut encoder,
            "skua_io_latency_seconds",
            "Disk operations of a shard, by operation: the group commit's writes and fdatasyncs (io_uring: \
             submission to completion reaped, a fdatasync linked behind its file's writes and so including them; \
             the syscall backend: the call) and fetches' file reads through the shard's io_uring (submission to \
             completion).",
            self.io.iter().flat_map(|(shard, io, backend, reads)| {
                let labels = move |backend: &str, op: &str| -> Labels {
                    vec![("shard", shard.to_string()), ("backend", backend.to_string()), ("op", op.to_string())]
                };
                [
                    (labels(backend, "write"), &io.write),
                    (labels(backend, "fdatasync"), &io.fdatasync),
                    (labels("io_uring", "read"), reads),
                ]
            }),
        )?;
        io_histograms(
            &mut encoder,
            "skua_log_flush_latency_seconds",
            "Log commits that made their data durable, by shard: from the commit's writes and fdatasync handed to \
             the backend together to the last of them completed (Kafka's LogFlushRateAndTimeMs).",
            self.io.iter().map(|(shard, io, _, _)| (vec![("shard", shard.to_string())], &io.log_flush)),
        )?;
        family(
            &mut encoder,
            "skua_requests_waiting",
            "Requests whose handler ran and whose answer waits (produce for acknowledgements, fetch for data), by API.",
            Gauge,
            self.requests.iter().map(|(api_key, counters)| (vec![("api", api_name(*api_key))], counters.waiting)),
        )?;
        family(
            &mut encoder,
            "skua_fetch_sessions",
            "Incremental fetch sessions (KIP-227) the broker keeps.",
            Gauge,
            [(Labels::new(), self.fetch_sessions)],
        )?;
        family(
            &mut encoder,
            "skua_fetch_session_partitions",
            "Partitions the incremental fetch sessions hold.",
            Gauge,
            [(Labels::new(), self.fetch_session_partitions)],
        )?;
        family(
            &mut encoder,
            "skua_buffer_pool_bytes",
            "Bytes the shards keep in their buffer pools for reuse, by pool.",
            Gauge,
            [
                (vec![("pool", "direct_write".to_string())], self.pooled_write_bytes),
                (vec![("pool", "file_read".to_string())], self.pooled_read_bytes),
            ],
        )?;
        family(
            &mut encoder,
            "skua_partitions",
            "Partition replicas this broker holds (__consumer_offsets included).",
            Gauge,
            [(Labels::new(), self.partitions.len() as u64)],
        )?;
        family(
            &mut encoder,
            "skua_partitions_leader",
            "Partition replicas this broker leads.",
            Gauge,
            [(Labels::new(), self.partitions.iter().filter(|partition| partition.leader).count() as u64)],
        )?;
        let partition_values = |pick: fn(&PartitionSnapshot) -> u64| {
            self.partitions
                .iter()
                .map(move |partition| (partition_labels(&partition.topic, partition.partition), pick(partition)))
        };
        family(
            &mut encoder,
            "skua_partition_log_size_bytes",
            "Bytes of a partition replica's log on disk.",
            Gauge,
            partition_values(|partition| partition.size_bytes),
        )?;
        family(
            &mut encoder,
            "skua_partition_log_start_offset",
            "A partition replica's log start offset.",
            Gauge,
            partition_values(|partition| partition.log_start_offset),
        )?;
        family(
            &mut encoder,
            "skua_partition_log_end_offset",
            "A partition replica's log end offset (next offset to be written).",
            Gauge,
            partition_values(|partition| partition.log_end_offset),
        )?;
        family(
            &mut encoder,
            "skua_partition_high_watermark",
            "A partition replica's high watermark.",
            Gauge,
            partition_values(|partition| partition.high_watermark),
        )?;
        let replication = &self.replication;
        family(
            &mut encoder,
            "skua_under_replicated_partitions",
            "Led partitions whose ISR is smaller than their replicas (cluster).",
            Gauge,
            [(Labels::new(), replication.under_replicated)],
        )?;
        family(
            &mut encoder,
            "skua_under_min_isr_partitions",
            "Led partitions whose ISR is smaller than min.insync.replicas (cluster).",
            Gauge,
            [(Labels::new(), replication.under_min_isr)],
        )?;
        family(
            &mut encoder,
            "skua_offline_partitions",
            "Partitions held here that have no leader (cluster).",
            Gauge,
            [(Labels::new(), replication.offline)],
        )?;
        family(
            &mut encoder,
            "skua_isr_shrinks",
            "ISR changes that removed a follower (cluster).",
            Counter,
            [(Labels::new(), replication.isr_shrinks)],
        )?;
        family(
            &mut encoder,
            "skua_isr_expands",
            "ISR changes that added a follower (cluster).",
            Counter,
            [(Labels::new(), replication.isr_expands)],
        )?;
        family(
            &mut encoder,
            "skua_replica_truncations",
            "Divergent log tails a follower cut (cluster).",
            Counter,
            [(Labels::new(), replication.truncations)],
        )?;
        if let Some(active) = self.broker.active_controller {
            family(
                &mut encoder,
                "skua_active_controller",
                "1 if this node is the metadata quorum's active controller (cluster).",
                Gauge,
                [(Labels::new(), u64::from(active))],
            )?;
        }
        // Lag as Kafka's tools compute it: the high watermark less the committed offset, for the
        // partitions this broker holds.
        let high_watermarks: HashMap<(&str, i32), u64> = self
            .partitions
            .iter()
            .map(|partition| ((partition.topic.as_str(), partition.partition), partition.high_watermark))
            .collect();
        let group_labels = |offset: &GroupOffset| -> Labels {
            vec![
                ("group", offset.group.clone()),
                ("topic", offset.topic.clone()),
                ("partition", offset.partition.to_string()),
            ]
        };
        family(
            &mut encoder,
            "skua_consumer_group_committed_offset",
            "A consumer group's committed offset, by group and partition (groups coordinated here).",
            Gauge,
            self.group_offsets.iter().map(|offset| (group_labels(offset), offset.offset.max(0) as u64)),
        )?;
        family(
            &mut encoder,
            "skua_consumer_group_lag",
            "High watermark less the committed offset, by group and partition (partitions held here).",
            Gauge,
            self.group_offsets.iter().filter_map(|offset| {
                let high_watermark = high_watermarks.get(&(offset.topic.as_str(), offset.partition))?;
                Some((group_labels(offset), high_watermark.saturating_sub(offset.offset.max(0) as u64)))
            }),
        )?;
        family(
            &mut encoder,
            "skua_metrics_shards",
            "Shard threads of this broker.",
            Gauge,
            [(Labels::new(), self.shards)],
        )?;
        family(
            &mut encoder,
            "skua_metrics_shards_answered",
            "Shards whose counts this scrape holds (a shard busy past the scrape's wait is left out).",
            Gauge,
            [(Labels::new(), self.shards_answered)],
        )?;
        family(
            &mut encoder,
            "skua_broker_info",
            "This broker's node id, as a label.",
            Gauge,
            [(vec![("node_id", self.broker.node_id.to_string())], 1)],
        )?;
        Ok(())
    }
}

/// Every shard's snapshot merged and written in Prometheus' text format.
pub fn encode(shards: &[ShardSnapshot], broker: &BrokerSnapshot) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(merge(shards, broker)));
    let mut text = String::new();
    // Writing to a String cannot fail; a collector's own error would be a bug here.
    if let Err(error) = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry) {
        text = format!("# encoding the metrics failed: {error}\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two shards' counts, as the endpoint would merge them.
    fn two_shards() -> Vec<ShardSnapshot> {
        let first = Rc::new(ShardMetrics::default());
        first.produced("orders", 1_000, 10);
        first.fetched("orders", 400);
        first.answered(0, Duration::from_micros(300));
        first.answered(0, Duration::from_millis(20));
        first.acknowledged(Duration::from_millis(3));
        let waiting = first.wait(1);
        let mut first_snapshot = first.snapshot();
        drop(waiting);
        first_snapshot.partitions.push(PartitionSnapshot {
            topic: "orders".to_string(),
            partition: 0,
            leader: true,
            size_bytes: 1_000,
            log_start_offset: 0,
            log_end_offset: 10,
            high_watermark: 10,
        });
        let second = ShardMetrics::default();
        second.produced("orders", 500, 5);
        second.answered(0, Duration::from_secs(30));
        second.acknowledged(Duration::from_millis(4));
        let mut second_snapshot = second.snapshot();
        (first_snapshot.fetch_sessions, first_snapshot.fetch_session_partitions) = (2, 30);
        (second_snapshot.fetch_sessions, second_snapshot.fetch_session_partitions) = (1, 6);
        (first_snapshot.pooled_write_bytes, first_snapshot.pooled_read_bytes) = (1 << 20, 4 << 20);
        (second_snapshot.pooled_write_bytes, second_snapshot.pooled_read_bytes) = (2 << 20, 0);
        second_snapshot.group_offsets.push(GroupOffset {
            group: "billing".to_string(),
            topic: "orders".to_string(),
            partition: 0,
            offset: 4,
        });
        first_snapshot.io.write.observe(Duration::from_micros(20));
        first_snapshot.io.fdatasync.observe(Duration::from_micros(700));
        first_snapshot.io.log_flush.observe(Duration::from_micros(800));
        first_snapshot.io_backend = "io_uring";
        first_snapshot.file_reads.observe(Duration::from_micros(4));
        second_snapshot.io.write.observe(Duration::from_micros(30));
        second_snapshot.io_backend = "syscall";
        vec![first_snapshot, second_snapshot, ShardSnapshot::default()]
    }

    fn lines_of(text: &str, name: &str) -> Vec<String> {
        text.lines().filter(|line| line.starts_with(name)).map(str::to_string).collect()
    }

    #[test]
    fn shards_merge_into_one_exposition() {
        let text = encode(&two_shards(), &BrokerSnapshot { node_id: 3, active_controller: None });
        assert!(text.contains("# HELP skua_topic_bytes_in_total Record bytes producers appended, by topic.\n"));
        assert!(text.contains("# TYPE skua_topic_bytes_in_total counter\n"));
        assert_eq!(lines_of(&text, "skua_topic_bytes_in_total{"), ["skua_topic_bytes_in_total{topic=\"orders\"} 1500"]);
        assert_eq!(
            lines_of(&text, "skua_topic_messages_in_total{"),
            ["skua_topic_messages_in_total{topic=\"orders\"} 15"]
        );
        assert_eq!(
            lines_of(&text, "skua_topic_bytes_out_total{"),
            ["skua_topic_bytes_out_total{topic=\"orders\"} 400"]
        );
        assert_eq!(
            lines_of(&text, "skua_requests_total{"),
            ["skua_requests_total{api=\"Produce\"} 3", "skua_requests_total{api=\"Fetch\"} 0"]
        );
        // 300 µs, 20 ms and 30 s: cumulative buckets, the last one only in +Inf.
        let produce = lines_of(&text, "skua_request_latency_seconds_bucket{api=\"Produce\"");
        assert_eq!(produce.len(), LATENCY_BUCKET_BOUNDS_US.len() + 1);
        assert_eq!(produce[1], "skua_request_latency_seconds_bucket{api=\"Produce\",le=\"0.00025\"} 0");
        assert_eq!(produce[2], "skua_request_latency_seconds_bucket{api=\"Produce\",le=\"0.0005\"} 1");
        assert_eq!(produce[7], "skua_request_latency_seconds_bucket{api=\"Produce\",le=\"0.025\"} 2");
        assert_eq!(produce[15], "skua_request_latency_seconds_bucket{api=\"Produce\",le=\"10\"} 2");
        assert_eq!(produce[16], "skua_request_latency_seconds_bucket{api=\"Produce\",le=\"+Inf\"} 3");
        assert_eq!(
            lines_of(&text, "skua_request_latency_seconds_sum{api=\"Produce\"}"),
            ["skua_request_latency_seconds_sum{api=\"Produce\"} 30.0203"]
        );
        assert_eq!(
            lines_of(&text, "skua_request_latency_seconds_count{api=\"Produce\"}"),
            ["skua_request_latency_seconds_count{api=\"Produce\"} 3"]
        );
        assert_eq!(
            lines_of(&text, "skua_produce_commit_wait_seconds_bucket{le=\"0.005\"}"),
            ["skua_produce_commit_wait_seconds_bucket{le=\"0.005\"} 2"]
        );
        assert_eq!(
            lines_of(&text, "skua_produce_commit_wait_seconds_sum"),
            ["skua_produce_commit_wait_seconds_sum 0.007"]
        );
        // The snapshot was taken while the fetch waited.
        assert_eq!(lines_of(&text, "skua_requests_waiting{api=\"Fetch\"}"), ["skua_requests_waiting{api=\"Fetch\"} 1"]);
        assert_eq!(
            lines_of(&text, "skua_partition_log_end_offset{"),
            ["skua_partition_log_end_offset{topic=\"orders\",partition=\"0\"} 10"]
        );
        assert_eq!(lines_of(&text, "skua_partitions_leader "), ["skua_partitions_leader 1"]);
        assert_eq!(lines_of(&text, "skua_fetch_sessions "), ["skua_fetch_sessions 3"]);
        assert_eq!(lines_of(&text, "skua_fetch_session_partitions "), ["skua_fetch_session_partitions 36"]);
        assert_eq!(
            lines_of(&text, "skua_buffer_pool_bytes{"),
            [
                "skua_buffer_pool_bytes{pool=\"direct_write\"} 3145728",
                "skua_buffer_pool_bytes{pool=\"file_read\"} 4194304"
            ]
        );
        assert_eq!(
            lines_of(&text, "skua_consumer_group_lag{"),
            ["skua_consumer_group_lag{group=\"billing\",topic=\"orders\",partition=\"0\"} 6"]
        );
        assert_eq!(lines_of(&text, "skua_metrics_shards "), ["skua_metrics_shards 3"]);
        assert_eq!(lines_of(&text, "skua_metrics_shards_answered "), ["skua_metrics_shards_answered 2"]);
        assert_eq!(lines_of(&text, "skua_broker_info{"), ["skua_broker_info{node_id=\"3\"} 1"]);
        assert!(!text.contains("skua_active_controller"), "one node: no controller gauge");
        // Disk latencies per answered shard (the third did not answer), in seconds.
        assert_eq!(
            lines_of(&text, "skua_io_latency_seconds_count{"),
            [
                "skua_io_latency_seconds_count{shard=\"0\",backend=\"io_uring\",op=\"write\"} 1",
                "skua_io_latency_seconds_count{shard=\"0\",backend=\"io_uring\",op=\"fdatasync\"} 1",
                "skua_io_latency_seconds_count{shard=\"0\",backend=\"io_uring\",op=\"read\"} 1",
                "skua_io_latency_seconds_count{shard=\"1\",backend=\"syscall\",op=\"write\"} 1",
                "skua_io_latency_seconds_count{shard=\"1\",backend=\"syscall\",op=\"fdatasync\"} 0",
                "skua_io_latency_seconds_count{shard=\"1\",backend=\"io_uring\",op=\"read\"} 0",
            ]
        );
        let reads = lines_of(&text, "skua_io_latency_seconds_bucket{shard=\"0\",backend=\"io_uring\",op=\"read\"");
        assert_eq!(reads.len(), IO_LATENCY_BUCKET_BOUNDS_NS.len() + 1);
        assert_eq!(
            reads[0],
            "skua_io_latency_seconds_bucket{shard=\"0\",backend=\"io_uring\",op=\"read\",le=\"1e-06\"} 0"
        );
        assert_eq!(
            reads[2],
            "skua_io_latency_seconds_bucket{shard=\"0\",backend=\"io_uring\",op=\"read\",le=\"5e-06\"} 1"
        );
        assert_eq!(
            lines_of(&text, "skua_io_latency_seconds_sum{shard=\"0\",backend=\"io_uring\",op=\"fdatasync\"}"),
            ["skua_io_latency_seconds_sum{shard=\"0\",backend=\"io_uring\",op=\"fdatasync\"} 0.0007"]
        );
        assert_eq!(
            lines_of(&text, "skua_log_flush_latency_seconds_count{"),
            [
                "skua_log_flush_latency_seconds_count{shard=\"0\"} 1",
                "skua_log_flush_latency_seconds_count{shard=\"1\"} 0"
            ]
        );
        assert_eq!(
            lines_of(&text, "skua_log_flush_latency_seconds_bucket{shard=\"0\",le=\"0.001\"}"),
            ["skua_log_flush_latency_seconds_bucket{shard=\"0\",le=\"0.001\"} 1"]
        );
    }

    #[test]
    fn a_finished_wait_is_no_longer_counted() {
        let metrics = Rc::new(ShardMetrics::default());
        let waiting = metrics.wait(0);
        assert_eq!(metrics.snapshot().requests, [(0, ApiCounters { waiting: 1, ..ApiCounters::default() })]);
        drop(waiting);
        assert_eq!(metrics.snapshot().requests, []);
    }

    #[test]
    fn latencies_land_in_the_first_bucket_that_holds_them() {
        let mut histogram = LatencyHistogram::default();
        for micros in [0, 100, 101, 10_000_000, 10_000_001] {
            histogram.observe(Duration::from_micros(micros));
        }
        assert_eq!(histogram.bucket_counts[0], 2, "up to and including 100 µs");
        assert_eq!(histogram.bucket_counts[1], 1);
        assert_eq!(histogram.bucket_counts[LATENCY_BUCKET_BOUNDS_US.len() - 1], 1, "10 s");
        assert_eq!(histogram.bucket_counts[LATENCY_BUCKET_BOUNDS_US.len()], 1, "+Inf");
        assert_eq!(histogram.count(), 5);
    }

    #[test]
    fn api_keys_out_of_range_share_the_last_slot() {
        let metrics = ShardMetrics::default();
        metrics.answered(-1, Duration::ZERO);
        metrics.answered(i16::MAX, Duration::ZERO);
        assert_eq!(
            metrics
                .snapshot()
                .requests
                .iter()
                .map(|(key, counters)| (*key, counters.latency.count()))
                .collect::<Vec<_>>(),
            [((API_KEY_SLOTS - 1) as i16, 2)]
        );
    }
}
