//! Replication quotas (Kafka's `ReplicationQuotaManager`): the rate at which this broker, as
//! leader, serves its throttled replicas to followers, and as follower copies its own, each
//! measured over the last `replication.quota.window.num` windows of
//! `replication.quota.window.size.seconds` and held to `leader.replication.throttled.rate` /
//! `follower.replication.throttled.rate` (bytes per second, dynamic broker configs).
//!
//! Kafka's rules, applied by the two fetch paths: a replica is throttled when the topic's
//! `leader.replication.throttled.replicas` (leader side) or `follower.replication.throttled.replicas`
//! (follower side) names it for this broker (`partition:broker`, or `*`); a leader returns no
//! records to a throttled follower that is not in the ISR while its meter is over the rate, and a
//! follower leaves its throttled out-of-ISR partitions out of its fetches while its meter is over;
//! every byte of a throttled replica, in sync or not, is counted. In-sync replicas are never held
//! back. With no rate set (Kafka's `Long.MAX_VALUE`) nothing is looked up or counted.
//!
//! Owns: [`RateMeter`] (one per side per broker: every shard counts into the same windows with
//! relaxed atomics, so the quota is the broker's, as Kafka's, without a lock on the data path; two
//! shards opening a new window at once may lose a few bytes of it, which only loosens the quota)
//! and [`ReplicationQuotas`].
//!
//! Must not know: Kafka requests, where the configs are stored.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::catalog::Catalog;
use crate::config::dynamic::{FOLLOWER_THROTTLED_RATE, LEADER_THROTTLED_RATE, THROTTLED_RATE_DEFAULT};
use crate::config::topic;
use crate::config::Config;

/// The most windows a meter keeps (`replication.quota.window.num` above it is taken as this).
pub const REPLICATION_QUOTA_WINDOW_COUNT_MAX: usize = 64;

/// Bytes counted over a ring of fixed windows, read as a rate the way Kafka's `Rate` reads its
/// samples: the bytes of the live windows over the time since the oldest one began, that time
/// never counted as less than all windows but one (so a first burst is measured as spread over them).
#[derive(Debug)]
pub struct RateMeter {
    window_ms: i64,
    window_count: usize,
    /// Per slot: the number of the window it holds (`now_ms / window_ms`), and that window's bytes.
    windows: [AtomicI64; REPLICATION_QUOTA_WINDOW_COUNT_MAX],
    bytes: [AtomicU64; REPLICATION_QUOTA_WINDOW_COUNT_MAX],
}

impl RateMeter {
    pub fn new(window_count: usize, window_ms: i64) -> RateMeter {
        assert!(window_ms > 0, "a window has a length");
        RateMeter {
            window_ms,
            window_count: window_count.clamp(1, REPLICATION_QUOTA_WINDOW_COUNT_MAX),
            windows: std::array::from_fn(|_| AtomicI64::new(i64::MIN)),
            bytes: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// One window's length.
    pub fn window_ms(&self) -> u64 {
        self.window_ms.unsigned_abs()
    }

    fn slot(&self, window: i64) -> usize {
        window.rem_euclid(self.window_count as i64) as usize
    }

    /// Counts `bytes` at `now_ms`.
    pub fn record(&self, bytes: u64, now_ms: i64) {
        if bytes == 0 {
            return;
        }
        let window = now_ms.div_euclid(self.window_ms);
        let slot = self.slot(window);
        let held = self.windows[slot].load(Ordering::Relaxed);
        if held != window
            && self.windows[slot].compare_exchange(held, window, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            self.bytes[slot].store(0, Ordering::Relaxed);
        }
        self.bytes[slot].fetch_add(bytes, Ordering::Relaxed);
    }

    /// The measured rate at `now_ms`, bytes (or other units) per second.
    pub fn rate_bytes_per_second(&self, now_ms: i64) -> f64 {
        let (total, elapsed_ms) = self.measure(now_ms);
        total as f64 * 1000.0 / elapsed_ms as f64
    }

    /// What the live windows hold at `now_ms`, and the time they are read over (Kafka's
    /// `Rate.windowSize`: since the oldest began, at least all windows but one), in ms.
    pub fn measure(&self, now_ms: i64) -> (u64, i64) {
        let window = now_ms.div_euclid(self.window_ms);
        let live = |held: i64| held <= window && held > window - self.window_count as i64;
        let mut total_bytes = 0u64;
        let mut oldest = window;
        for slot in 0..self.window_count {
            let held = self.windows[slot].load(Ordering::Relaxed);
            if live(held) {
                total_bytes = total_bytes.saturating_add(self.bytes[slot].load(Ordering::Relaxed));
                oldest = oldest.min(held);
            }
        }
        let floor_ms = (self.window_count as i64 - 1) * self.window_ms;
        let elapsed_ms = (now_ms - oldest * self.window_ms).max(floor_ms).max(1);
        (total_bytes, elapsed_ms)
    }

    /// Whether the measured rate is over `rate_bytes` per second (Kafka: the quota is violated).
    pub fn exceeds(&self, rate_bytes: i64, now_ms: i64) -> bool {
        rate_bytes != THROTTLED_RATE_DEFAULT && self.rate_bytes_per_second(now_ms) > rate_bytes as f64
    }
}

/// The broker's two replication meters, shared by its shards.
#[derive(Debug)]
pub struct ReplicationQuotas {
    pub leader: RateMeter,
    pub follower: RateMeter,
}

impl ReplicationQuotas {
    pub fn new(config: &Config) -> ReplicationQuotas {
        let count =
            usize::try_from(config.replication_quota_window_count).unwrap_or(REPLICATION_QUOTA_WINDOW_COUNT_MAX);
        let window_ms = i64::from(config.replication_quota_window_seconds) * 1000;
        ReplicationQuotas { leader: RateMeter::new(count, window_ms), follower: RateMeter::new(count, window_ms) }
    }
}

/// Which side of replication a throttle is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Leader,
    Follower,
}

/// One fetch's view of a side's throttle: the rate in force, and the catalog the throttled
/// replicas are read from. `None` from [`Throttle::of`] when the side has no rate (the usual case).
#[derive(Debug)]
pub struct Throttle<'a> {
    pub rate_bytes: i64,
    pub meter: &'a RateMeter,
    catalog: &'a Catalog,
    side: Side,
    node_id: i32,
}

impl<'a> Throttle<'a> {
    pub fn of(catalog: &'a Catalog, quotas: &'a ReplicationQuotas, side: Side, node_id: i32) -> Option<Throttle<'a>> {
        let (key, meter) = match side {
            Side::Leader => (LEADER_THROTTLED_RATE, &quotas.leader),
            Side::Follower => (FOLLOWER_THROTTLED_RATE, &quotas.follower),
        };
        let rate_bytes = catalog.broker_configs.throttled_rate_bytes(key);
        (rate_bytes != THROTTLED_RATE_DEFAULT).then_some(Throttle { rate_bytes, meter, catalog, side, node_id })
    }

    /// Whether the topic's throttled-replica list for this side names `partition` on this broker.
    pub fn throttles(&self, topic_name: &str, partition: i32) -> bool {
        let key = match self.side {
            Side::Leader => topic::LEADER_THROTTLED_REPLICAS,
            Side::Follower => topic::FOLLOWER_THROTTLED_REPLICAS,
        };
        self.catalog.configs(topic_name).get(key).is_some_and(|list| topic::throttles(list, partition, self.node_id))
    }

    /// Whether the meter is over the rate now.
    pub fn exceeded(&self, now_ms: i64) -> bool {
        self.meter.exceeds(self.rate_bytes, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_meter_measures_over_all_windows_but_one_at_least() {
        let meter = RateMeter::new(3, 1000);
        assert_eq!(meter.rate_bytes_per_second(10_000), 0.0);
        meter.record(4000, 10_000);
        // One window's bytes over the floor of two windows.
        assert_eq!(meter.rate_bytes_per_second(10_500), 2000.0);
        assert!(meter.exceeds(1999, 10_500) && !meter.exceeds(2000, 10_500));
        assert!(!meter.exceeds(THROTTLED_RATE_DEFAULT, 10_500), "no rate: never over");
        meter.record(2000, 11_200);
        assert_eq!(meter.rate_bytes_per_second(12_000), 3000.0, "6000 bytes since 10 000");
        // Three windows later the first has left the ring.
        assert_eq!(meter.rate_bytes_per_second(13_000), 1000.0, "2000 bytes since 11 000 (floor 2 s)");
        meter.record(500, 13_000);
        assert_eq!(meter.rate_bytes_per_second(13_000), 1250.0, "the slot of 10 000 was emptied first");
        assert_eq!(meter.rate_bytes_per_second(60_000), 0.0, "all windows old");
    }
}
