//! Measurements: counters and HdrHistograms that producer and consumer threads record into,
//! the 1-second collection that turns them into 10-second periods and run aggregates, and the
//! result in OpenMessaging Benchmark's `TestResult` field names.
//!
//! Owns: units (latencies recorded in µs, reported in ms as OMB does; publish delay in µs) and
//! the coordinated-omission rule: publish latency is measured from the *intended* send time at
//! a fixed rate (so a stalled broker shows up as latency, not as fewer samples), and the delay
//! between intended and actual send is recorded separately.

use std::collections::BTreeMap;
use std::sync::Mutex;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency a histogram holds (larger values are clamped to it): 10 minutes.
pub const LATENCY_US_MAX: u64 = 600_000_000;
/// HdrHistogram precision (OMB uses 5 digits; 3 keeps memory small with many threads).
pub const LATENCY_DIGITS: u8 = 3;

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, LATENCY_DIGITS).expect("valid histogram bounds")
}

/// What one thread recorded since the last collection.
#[derive(Debug)]
pub struct Window {
    pub published: u64,
    pub published_bytes: u64,
    pub publish_errors: u64,
    pub consumed: u64,
    pub consumed_bytes: u64,
    pub publish_latency: Histogram<u64>,
    pub publish_delay: Histogram<u64>,
    pub end_to_end: Histogram<u64>,
}

impl Default for Window {
    fn default() -> Window {
        Window {
            published: 0,
            published_bytes: 0,
            publish_errors: 0,
            consumed: 0,
            consumed_bytes: 0,
            publish_latency: histogram(),
            publish_delay: histogram(),
            end_to_end: histogram(),
        }
    }
}

impl Window {
    pub fn add(&mut self, other: &Window) {
        self.published += other.published;
        self.published_bytes += other.published_bytes;
        self.publish_errors += other.publish_errors;
        self.consumed += other.consumed;
        self.consumed_bytes += other.consumed_bytes;
        // Same bounds on both sides: adding cannot fail.
        let _ = self.publish_latency.add(&other.publish_latency);
        let _ = self.publish_delay.add(&other.publish_delay);
        let _ = self.end_to_end.add(&other.end_to_end);
    }
}

/// A thread's recorder: the thread records, the collector swaps the window out.
#[derive(Debug, Default)]
pub struct Recorder {
    window: Mutex<Window>,
}

impl Recorder {
    pub fn with<T>(&self, record: impl FnOnce(&mut Window) -> T) -> T {
        let mut window = self.window.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        record(&mut window)
    }

    pub fn take(&self) -> Window {
        self.with(std::mem::take)
    }
}

pub fn record_latency(histogram: &mut Histogram<u64>, micros: u64) {
    let _ = histogram.record(micros.clamp(1, LATENCY_US_MAX));
}

/// Percentiles of one histogram, in OMB's units.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Percentiles {
    pub avg: f64,
    pub p50: f64,
    pub p75: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub p9999: f64,
    pub max: f64,
}

impl Percentiles {
    /// From a µs histogram, divided by `scale` (1000 for ms).
    pub fn of(histogram: &Histogram<u64>, scale: f64) -> Percentiles {
        if histogram.is_empty() {
            return Percentiles::default();
        }
        let at = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / scale;
        Percentiles {
            avg: histogram.mean() / scale,
            p50: at(0.50),
            p75: at(0.75),
            p95: at(0.95),
            p99: at(0.99),
            p999: at(0.999),
            p9999: at(0.9999),
            max: histogram.max() as f64 / scale,
        }
    }
}

/// Per-partition consumer lag at one moment: log end offset minus the next offset to consume.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LagSample {
    pub elapsed_seconds: f64,
    pub total: i64,
    pub per_partition: BTreeMap<String, i64>,
}

/// The run's result: OMB `TestResult` field names, plus Skua's run metadata.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    pub workload: String,
    /// The producers' driver (OMB's field), and the consumers'.
    pub driver: String,
    pub consumer_driver: String,
    pub message_size: usize,
    pub topics: usize,
    pub partitions: i32,
    pub producers_per_topic: usize,
    pub consumers_per_topic: usize,
    pub publish_rate: Vec<f64>,
    pub publish_error_rate: Vec<f64>,
    pub consume_rate: Vec<f64>,
    pub backlog: Vec<i64>,
    pub publish_latency_avg: Vec<f64>,
    #[serde(rename = "publishLatency50pct")]
    pub publish_latency_50pct: Vec<f64>,
    #[serde(rename = "publishLatency75pct")]
    pub publish_latency_75pct: Vec<f64>,
    #[serde(rename = "publishLatency95pct")]
    pub publish_latency_95pct: Vec<f64>,
    #[serde(rename = "publishLatency99pct")]
    pub publish_latency_99pct: Vec<f64>,
    #[serde(rename = "publishLatency999pct")]
    pub publish_latency_999pct: Vec<f64>,
    #[serde(rename = "publishLatency9999pct")]
    pub publish_latency_9999pct: Vec<f64>,
    pub publish_latency_max: Vec<f64>,
    pub publish_delay_latency_avg: Vec<f64>,
    #[serde(rename = "publishDelayLatency99pct")]
    pub publish_delay_latency_99pct: Vec<f64>,
    pub end_to_end_latency_avg: Vec<f64>,
    #[serde(rename = "endToEndLatency50pct")]
    pub end_to_end_latency_50pct: Vec<f64>,
    #[serde(rename = "endToEndLatency99pct")]
    pub end_to_end_latency_99pct: Vec<f64>,
    #[serde(rename = "endToEndLatency999pct")]
    pub end_to_end_latency_999pct: Vec<f64>,
    pub end_to_end_latency_max: Vec<f64>,
    pub aggregated_publish_latency_avg: f64,
    #[serde(rename = "aggregatedPublishLatency50pct")]
    pub aggregated_publish_latency_50pct: f64,
    #[serde(rename = "aggregatedPublishLatency75pct")]
    pub aggregated_publish_latency_75pct: f64,
    #[serde(rename = "aggregatedPublishLatency95pct")]
    pub aggregated_publish_latency_95pct: f64,
    #[serde(rename = "aggregatedPublishLatency99pct")]
    pub aggregated_publish_latency_99pct: f64,
    #[serde(rename = "aggregatedPublishLatency999pct")]
    pub aggregated_publish_latency_999pct: f64,
    #[serde(rename = "aggregatedPublishLatency9999pct")]
    pub aggregated_publish_latency_9999pct: f64,
    pub aggregated_publish_latency_max: f64,
    pub aggregated_publish_delay_latency_avg: f64,
    #[serde(rename = "aggregatedPublishDelayLatency99pct")]
    pub aggregated_publish_delay_latency_99pct: f64,
    pub aggregated_end_to_end_latency_avg: f64,
    #[serde(rename = "aggregatedEndToEndLatency50pct")]
    pub aggregated_end_to_end_latency_50pct: f64,
    #[serde(rename = "aggregatedEndToEndLatency75pct")]
    pub aggregated_end_to_end_latency_75pct: f64,
    #[serde(rename = "aggregatedEndToEndLatency95pct")]
    pub aggregated_end_to_end_latency_95pct: f64,
    #[serde(rename = "aggregatedEndToEndLatency99pct")]
    pub aggregated_end_to_end_latency_99pct: f64,
    #[serde(rename = "aggregatedEndToEndLatency999pct")]
    pub aggregated_end_to_end_latency_999pct: f64,
    #[serde(rename = "aggregatedEndToEndLatency9999pct")]
    pub aggregated_end_to_end_latency_9999pct: f64,
    pub aggregated_end_to_end_latency_max: f64,
    /// Skua additions: totals over the measured part of the run (after warm-up)…
    pub total_published: u64,
    pub total_published_bytes: u64,
    pub total_publish_errors: u64,
    pub total_consumed: u64,
    pub total_consumed_bytes: u64,
    pub measured_seconds: f64,
    pub aggregated_publish_rate: f64,
    pub aggregated_publish_mb_per_sec: f64,
    pub aggregated_consume_rate: f64,
    pub aggregated_consume_mb_per_sec: f64,
    /// …and over the whole run, warm-up included (what the broker holds at the end).
    pub run_published: u64,
    pub run_consumed: u64,
    /// With `consumerBacklogSizeGB` at max rate: how fast consumers read the backlog
    /// (from their start, group join included, until they caught up or the drain ended).
    pub catch_up_seconds: f64,
    pub catch_up_consume_rate: f64,
    pub catch_up_consume_mb_per_sec: f64,
    /// The same read timed from the first record a consumer got to the last one wanted (group
    /// join excluded: the broker's read rate), and how long the join took.
    pub read_back_seconds: f64,
    pub read_back_consume_mb_per_sec: f64,
    pub read_back_join_seconds: f64,
    /// This process's CPU time (utime + stime, every thread: the client library's too) and wall
    /// time during the produce phase (to the producers' stop, as the run's once-a-second loop
    /// sees it: up to a second late; consumers that read along are counted in it) and while
    /// catching up: `cpu / wall` is how many of the machine's cores the client kept busy, which
    /// tells a client-bound run from a broker-bound one.
    pub produce_phase_seconds: f64,
    pub produce_phase_cpu_seconds: f64,
    pub catch_up_cpu_seconds: f64,
    /// The same CPU time of the brokers named by `--broker-pid` (0 without it; a broker that
    /// stopped or restarted within a phase is left out of that phase).
    pub broker_produce_phase_cpu_seconds: f64,
    pub broker_catch_up_cpu_seconds: f64,
    /// Seconds the `--before-consume-command` took (dropping caches, say), between the last
    /// acknowledgement and the consumers' start.
    pub before_consume_seconds: f64,
    /// Messages/s published and consumed in each second of the run (warm-up included).
    pub publish_rate_per_second: Vec<f64>,
    pub consume_rate_per_second: Vec<f64>,
    /// Consumer lag sampled every second.
    pub consumer_lag: Vec<LagSample>,
    /// Commit, hardware, kernel, broker, durability, driver, settings.
    pub metadata: BTreeMap<String, String>,
}

impl TestResult {
    /// Appends one 10-second period.
    pub fn push_period(&mut self, period: &Window, seconds: f64, backlog: i64) {
        let seconds = seconds.max(1e-9);
        self.publish_rate.push(period.published as f64 / seconds);
        self.publish_error_rate.push(period.publish_errors as f64 / seconds);
        self.consume_rate.push(period.consumed as f64 / seconds);
        self.backlog.push(backlog);
        let publish = Percentiles::of(&period.publish_latency, 1000.0);
        self.publish_latency_avg.push(publish.avg);
        self.publish_latency_50pct.push(publish.p50);
        self.publish_latency_75pct.push(publish.p75);
        self.publish_latency_95pct.push(publish.p95);
        self.publish_latency_99pct.push(publish.p99);
        self.publish_latency_999pct.push(publish.p999);
        self.publish_latency_9999pct.push(publish.p9999);
        self.publish_latency_max.push(publish.max);
        let delay = Percentiles::of(&period.publish_delay, 1.0);
        self.publish_delay_latency_avg.push(delay.avg);
        self.publish_delay_latency_99pct.push(delay.p99);
        let end_to_end = Percentiles::of(&period.end_to_end, 1000.0);
        self.end_to_end_latency_avg.push(end_to_end.avg);
        self.end_to_end_latency_50pct.push(end_to_end.p50);
        self.end_to_end_latency_99pct.push(end_to_end.p99);
        self.end_to_end_latency_999pct.push(end_to_end.p999);
        self.end_to_end_latency_max.push(end_to_end.max);
    }

    /// Fills the aggregates from the measured part of the run.
    pub fn set_aggregates(&mut self, total: &Window, seconds: f64) {
        let publish = Percentiles::of(&total.publish_latency, 1000.0);
        self.aggregated_publish_latency_avg = publish.avg;
        self.aggregated_publish_latency_50pct = publish.p50;
        self.aggregated_publish_latency_75pct = publish.p75;
        self.aggregated_publish_latency_95pct = publish.p95;
        self.aggregated_publish_latency_99pct = publish.p99;
        self.aggregated_publish_latency_999pct = publish.p999;
        self.aggregated_publish_latency_9999pct = publish.p9999;
        self.aggregated_publish_latency_max = publish.max;
        let delay = Percentiles::of(&total.publish_delay, 1.0);
        self.aggregated_publish_delay_latency_avg = delay.avg;
        self.aggregated_publish_delay_latency_99pct = delay.p99;
        let end_to_end = Percentiles::of(&total.end_to_end, 1000.0);
        self.aggregated_end_to_end_latency_avg = end_to_end.avg;
        self.aggregated_end_to_end_latency_50pct = end_to_end.p50;
        self.aggregated_end_to_end_latency_75pct = end_to_end.p75;
        self.aggregated_end_to_end_latency_95pct = end_to_end.p95;
        self.aggregated_end_to_end_latency_99pct = end_to_end.p99;
        self.aggregated_end_to_end_latency_999pct = end_to_end.p999;
        self.aggregated_end_to_end_latency_9999pct = end_to_end.p9999;
        self.aggregated_end_to_end_latency_max = end_to_end.max;
        self.total_published = total.published;
        self.total_published_bytes = total.published_bytes;
        self.total_publish_errors = total.publish_errors;
        self.total_consumed = total.consumed;
        self.total_consumed_bytes = total.consumed_bytes;
        let seconds = seconds.max(1e-9);
        self.measured_seconds = seconds;
        self.aggregated_publish_rate = total.published as f64 / seconds;
        self.aggregated_publish_mb_per_sec = total.published_bytes as f64 / seconds / 1_048_576.0;
        self.aggregated_consume_rate = total.consumed as f64 / seconds;
        self.aggregated_consume_mb_per_sec = total.consumed_bytes as f64 / seconds / 1_048_576.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_in_omb_units() {
        let mut window = Window::default();
        for micros in 1..=1000u64 {
            record_latency(&mut window.publish_latency, micros * 1000); // 1..=1000 ms
        }
        let ms = Percentiles::of(&window.publish_latency, 1000.0);
        assert!((ms.p50 - 500.0).abs() < 2.0, "{ms:?}");
        assert!((ms.p99 - 990.0).abs() < 2.0, "{ms:?}");
        assert!((ms.max - 1000.0).abs() < 2.0, "{ms:?}");
        let mut total = Window::default();
        total.add(&window);
        total.add(&window);
        assert_eq!(total.publish_latency.len(), 2000);
        let json = serde_json::to_string(&TestResult::default()).expect("json");
        assert!(json.contains("\"aggregatedPublishLatency99pct\""), "OMB field names");
        assert!(json.contains("\"publishRate\""));
        assert!(json.contains("\"endToEndLatency99pct\""));
    }
}
