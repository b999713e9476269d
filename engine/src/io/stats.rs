//! How long the engine's disk operations take: fixed-bucket latency histograms a shard's backend
//! and group commit fill as their operations complete, for the broker to export (the broker's
//! metrics endpoint reads them through [`crate::Shard::io_stats`]).
//!
//! Owns: [`LatencyHistogram`] (counts per bucket of [`IO_LATENCY_BUCKET_BOUNDS_NS`], not
//! cumulative, so histograms of several shards merge by adding) and [`IoStats`] (one shard's
//! histograms). Must not know: any metrics format or exporter; the engine only counts.
//!
//! Runs on: the shard thread that owns the backend. Counting is plain memory on that thread (no
//! lock, no atomic, no allocation): one bucket search and two additions per operation, and one
//! clock reading per submission and per batch of completions reaped. Readers copy the stats on
//! the same thread.

use std::time::Duration;

/// Upper bounds of the buckets, in nanoseconds: 1 µs to 10 s, ×2–2.5 apart (1, 2.5, 5, 10, …),
/// from a page-cache hit through a device's write to a stalled `fdatasync`. The last slot of a
/// histogram counts what took longer (+Inf).
pub const IO_LATENCY_BUCKET_BOUNDS_NS: [u64; 22] = [
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Buckets of a histogram: one per bound and +Inf.
pub const IO_LATENCY_BUCKET_COUNT: usize = IO_LATENCY_BUCKET_BOUNDS_NS.len() + 1;

/// Latencies counted in the buckets of [`IO_LATENCY_BUCKET_BOUNDS_NS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// Observations per bucket (not cumulative); the last slot is +Inf.
    pub bucket_counts: [u64; IO_LATENCY_BUCKET_COUNT],
    /// The observations' sum (saturating: 584 years of nanoseconds).
    pub sum_ns: u64,
}

impl Default for LatencyHistogram {
    fn default() -> LatencyHistogram {
        LatencyHistogram { bucket_counts: [0; IO_LATENCY_BUCKET_COUNT], sum_ns: 0 }
    }
}

impl LatencyHistogram {
    /// Counts one operation that took `elapsed`, in the first bucket whose bound holds it.
    pub fn observe(&mut self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let slot = IO_LATENCY_BUCKET_BOUNDS_NS.partition_point(|&bound| bound < nanos);
        self.bucket_counts[slot] += 1;
        self.sum_ns = self.sum_ns.saturating_add(nanos);
    }

    /// Observations counted.
    pub fn count(&self) -> u64 {
        self.bucket_counts.iter().sum()
    }

    /// Adds `other`'s counts (another shard's, or another part of one shard's).
    pub fn add(&mut self, other: &LatencyHistogram) {
        for (mine, theirs) in self.bucket_counts.iter_mut().zip(other.bucket_counts.iter()) {
            *mine += theirs;
        }
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
    }
}

/// One shard's disk latencies since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoStats {
    /// Each write of a group commit. io_uring: from its submission to its completion reaped.
    /// Plain syscalls: the `pwrite` call.
    pub write: LatencyHistogram,
    /// Each `fdatasync` of a group commit. io_uring: from its submission to its completion reaped;
    /// it is linked behind its file's writes of the same commit, so this includes them. Plain
    /// syscalls: the `fdatasync` call alone.
    pub fdatasync: LatencyHistogram,
    /// Each log commit that made its data durable (synced): from the start of the commit (its
    /// writes and `fdatasync` handed to the backend together) to its last completion reaped,
    /// resubmitted short writes included. What an fsync-before-ack append waits for once its
    /// commit has started. Filled by the shard, not the backend.
    pub log_flush: LatencyHistogram,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_the_first_bucket_that_holds_them() {
        let mut histogram = LatencyHistogram::default();
        for nanos in [0, 1_000, 1_001, 10_000_000_000, 10_000_000_001] {
            histogram.observe(Duration::from_nanos(nanos));
        }
        assert_eq!(histogram.bucket_counts[0], 2, "up to and including 1 µs");
        assert_eq!(histogram.bucket_counts[1], 1, "up to 2.5 µs");
        assert_eq!(histogram.bucket_counts[IO_LATENCY_BUCKET_COUNT - 2], 1, "10 s");
        assert_eq!(histogram.bucket_counts[IO_LATENCY_BUCKET_COUNT - 1], 1, "+Inf");
        assert_eq!(histogram.count(), 5);
        assert_eq!(histogram.sum_ns, 20_000_002_002);
    }

    #[test]
    fn histograms_add_bucket_by_bucket() {
        let (mut first, mut second) = (LatencyHistogram::default(), LatencyHistogram::default());
        first.observe(Duration::from_micros(3));
        second.observe(Duration::from_micros(3));
        second.observe(Duration::from_millis(3));
        first.add(&second);
        assert_eq!(first.count(), 3);
        assert_eq!(first.bucket_counts[2], 2, "3 µs: up to 5 µs");
        assert_eq!(first.bucket_counts[11], 1, "3 ms: up to 5 ms");
        assert_eq!(first.sum_ns, 3_006_000);
    }

    #[test]
    fn bounds_rise() {
        assert!(IO_LATENCY_BUCKET_BOUNDS_NS.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
