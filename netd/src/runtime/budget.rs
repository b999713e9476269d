//! Broker-wide budgets: bytes of request frames held, requests not yet handled, file bytes of
//! Fetch responses not yet written, connections (in total and per client address), and the
//! replication quotas' meters (`replication_quota`).
//!
//! Owns: counting what is held against a named maximum and handing out permits that give it back
//! when dropped. Knows nothing of sockets or the protocol; the connection code decides what to
//! count, and waits (backpressure) when a budget is used up. Shared by every shard thread and the
//! acceptor (atomics; the per-address map takes a lock, but only on connect and close, never on
//! the data path).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::runtime::replication_quota::RateMeter;

/// Units (bytes or requests) held against a maximum. Non-strict, like Kafka's `SimpleMemoryPool`
/// with `strict=false`: a request larger than the whole budget is granted when nothing else is
/// held, so it waits for others instead of forever.
#[derive(Debug)]
pub struct Budget {
    name: &'static str,
    held: AtomicU64,
    max: u64,
}

/// Units taken from a [`Budget`]; dropping it gives them back.
#[derive(Debug)]
pub struct Permit {
    budget: Arc<Budget>,
    units: u64,
}

impl Budget {
    /// A permit holding nothing yet, to [`Permit::grow`] as bytes arrive.
    pub fn empty_permit(self: &Arc<Self>) -> Permit {
        Permit { budget: self.clone(), units: 0 }
    }

    /// A budget of `max` units (`u64::MAX`: unbounded).
    pub fn new(name: &'static str, max: u64) -> Arc<Budget> {
        Arc::new(Budget { name, held: AtomicU64::new(0), max })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Acquire)
    }

    /// Takes `units` if they fit (or nothing is held), else None.
    pub fn try_acquire(self: &Arc<Self>, units: u64) -> Option<Permit> {
        let mut held = self.held.load(Ordering::Acquire);
        loop {
            let fits = held == 0 || held.checked_add(units).is_some_and(|total| total <= self.max);
            if !fits {
                return None;
            }
            match self.held.compare_exchange_weak(held, held + units, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(Permit { budget: self.clone(), units }),
                Err(now) => held = now,
            }
        }
    }

    /// Takes `units`, waiting (1 ms, then doubling up to `limits::BUDGET_WAIT_MS_MAX`) until they
    /// fit. The waiting connection reads nothing meanwhile: that is the backpressure.
    pub async fn acquire(self: &Arc<Self>, units: u64) -> Permit {
        let mut wait_ms = 1;
        loop {
            if let Some(permit) = self.try_acquire(units) {
                return permit;
            }
            compio::time::sleep(Duration::from_millis(wait_ms)).await;
            wait_ms = (wait_ms * 2).min(crate::limits::BUDGET_WAIT_MS_MAX);
        }
    }

    /// Takes `units` as [`Budget::acquire`] does, but gives up at `deadline` (None).
    pub async fn acquire_until(self: &Arc<Self>, units: u64, deadline: std::time::Instant) -> Option<Permit> {
        let mut wait_ms = 1;
        loop {
            if let Some(permit) = self.try_acquire(units) {
                return Some(permit);
            }
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            compio::time::sleep(left.min(Duration::from_millis(wait_ms))).await;
            wait_ms = (wait_ms * 2).min(crate::limits::BUDGET_WAIT_MS_MAX);
        }
    }
}

impl Permit {
    pub fn units(&self) -> u64 {
        self.units
    }

    /// Takes `units` more for this permit if they fit. What this permit already holds does not
    /// count as held by others: a frame larger than the whole budget still grows when it is the
    /// only holder (the non-strict rule of [`Budget::try_acquire`]).
    pub fn try_grow(&mut self, units: u64) -> bool {
        let budget = &self.budget;
        let mut held = budget.held.load(Ordering::Acquire);
        loop {
            let others = held.saturating_sub(self.units);
            let fits = others == 0 || held.checked_add(units).is_some_and(|total| total <= budget.max);
            if !fits {
                return false;
            }
            match budget.held.compare_exchange_weak(held, held + units, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    self.units += units;
                    return true;
                }
                Err(now) => held = now,
            }
        }
    }

    /// Takes `units` more, waiting as [`Budget::acquire`] does until they fit.
    pub async fn grow(&mut self, units: u64) {
        let mut wait_ms = 1;
        while !self.try_grow(units) {
            compio::time::sleep(Duration::from_millis(wait_ms)).await;
            wait_ms = (wait_ms * 2).min(crate::limits::BUDGET_WAIT_MS_MAX);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let before = self.budget.held.fetch_sub(self.units, Ordering::AcqRel);
        assert!(before >= self.units, "budget {} gave back more than it held", self.budget.name);
    }
}

/// Bytes whose memory counts against a budget until the last `Bytes` referring to them is dropped.
#[derive(Debug)]
struct Charged<B> {
    bytes: B,
    _permit: Arc<Permit>,
}

impl<B: AsRef<[u8]>> AsRef<[u8]> for Charged<B> {
    fn as_ref(&self) -> &[u8] {
        self.bytes.as_ref()
    }
}

/// `bytes` as `Bytes` that hold `permit` until every clone and slice of them is dropped.
pub fn charged_bytes<B: AsRef<[u8]> + Send + 'static>(bytes: B, permit: Arc<Permit>) -> bytes::Bytes {
    bytes::Bytes::from_owner(Charged { bytes, _permit: permit })
}

/// The budgets every shard and the acceptor share.
#[derive(Debug)]
pub struct Budgets {
    /// `queued.max.request.bytes`: request frame bytes read or being read, not yet released.
    pub request_bytes: Arc<Budget>,
    /// `queued.max.requests`: requests being read or waiting for their handler.
    pub requests: Arc<Budget>,
    /// `skua.fetch.buffered.bytes.max`: file bytes read for Fetch responses not yet written.
    pub fetch_bytes: Arc<Budget>,
    pub connections: Connections,
    /// The replication rates this broker's leaders serve and its followers copy at (shared by
    /// every shard, so the quotas are the broker's).
    pub replication_quotas: crate::runtime::replication_quota::ReplicationQuotas,
}

impl Budgets {
    pub fn new(config: &crate::config::Config) -> Arc<Budgets> {
        Arc::new(Budgets {
            request_bytes: Budget::new("queued.max.request.bytes", config.queued_request_bytes_max),
            requests: Budget::new("queued.max.requests", config.queued_requests_max),
            fetch_bytes: Budget::new("skua.fetch.buffered.bytes.max", config.fetch_buffered_bytes_max),
            connections: Connections::new(config),
            replication_quotas: crate::runtime::replication_quota::ReplicationQuotas::new(config),
        })
    }
}

/// Open connections, in total (`max.connections`) and per client address
/// (`max.connections.per.ip`), and the rate new ones come at (`max.connection.creation.rate`).
/// The limits are dynamic broker configs: [`Connections::set_limits`] changes them for the
/// connections accepted next; open connections stay open, as in Kafka.
#[derive(Debug)]
pub struct Connections {
    per_address: Mutex<PerAddress>,
    total: AtomicU64,
    total_max: AtomicU64,
    per_address_max: AtomicU64,
    /// `max.connection.creation.rate`; `CONNECTIONS_DEFAULT` (Kafka's Int.MaxValue) is no limit.
    creation_rate_max: AtomicU64,
    /// Connections accepted, over `quota.window.num` windows of `quota.window.size.seconds`.
    created: RateMeter,
    /// Open connections per shard, for [`Connections::least_loaded_shard`].
    per_shard: Vec<AtomicU64>,
}

/// Open connections per address, and the addresses with a limit of their own
/// (`max.connections.per.ip.overrides`), under one lock.
#[derive(Debug, Default)]
struct PerAddress {
    open: HashMap<IpAddr, u64>,
    overrides: HashMap<IpAddr, u64>,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("max.connections ({0}) reached")]
    Total(u64),
    #[error("max.connections.per.ip ({0}) reached")]
    PerAddress(u64),
}

/// One admitted connection; dropping it (when the connection ends) frees its place.
#[derive(Debug)]
pub struct ConnectionSlot {
    budgets: Arc<Budgets>,
    address: IpAddr,
    /// The shard serving it, once handed to one ([`ConnectionSlot::serve_on`]).
    shard: Option<usize>,
}

impl ConnectionSlot {
    /// Counts this connection as served by `shard` until it ends.
    pub fn serve_on(&mut self, shard: usize) {
        if let Some(open) = self.budgets.connections.per_shard.get(shard) {
            open.fetch_add(1, Ordering::AcqRel);
            self.shard = Some(shard);
        }
    }
}

impl Connections {
    /// The limits and the rate's windows of a broker configured by `config`.
    pub fn new(config: &crate::config::Config) -> Connections {
        let per_address = PerAddress {
            open: HashMap::new(),
            overrides: config.connections_per_ip_overrides.iter().map(|(address, count)| (*address, *count)).collect(),
        };
        Connections {
            per_address: Mutex::new(per_address),
            total: AtomicU64::new(0),
            total_max: AtomicU64::new(config.connections_max),
            per_address_max: AtomicU64::new(config.connections_per_ip_max),
            creation_rate_max: AtomicU64::new(config.connection_creation_rate_max),
            created: RateMeter::new(
                usize::try_from(config.quota_window_count).unwrap_or(usize::MAX),
                i64::from(config.quota_window_seconds) * 1000,
            ),
            per_shard: (0..config.shard_count).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The shard a new connection goes to: the one serving the fewest open connections, the
    /// first of them from `start` on when several tie. Round robin alone let short-lived
    /// connections (a client's bootstrap or metadata connection) steer the long-lived ones:
    /// four consumers that each open a metadata and then a fetch connection got three of the
    /// four fetch connections on one shard, which copies every byte sent on them.
    pub fn least_loaded_shard(&self, start: usize) -> usize {
        let count = self.per_shard.len().max(1);
        (0..count)
            .map(|step| (start + step) % count)
            .min_by_key(|shard| self.per_shard.get(*shard).map_or(0, |open| open.load(Ordering::Acquire)))
            .unwrap_or(0)
    }

    /// Sets `max.connection.creation.rate` (a dynamic broker config changed).
    pub fn set_creation_rate(&self, rate_max: u64) {
        if self.creation_rate_max.swap(rate_max, Ordering::AcqRel) != rate_max {
            tracing::info!(max_connection_creation_rate = rate_max, "connection creation rate limit changed");
        }
    }

    /// Counts a connection just accepted at `now_ms` and says how long the acceptor waits before
    /// it takes this one further, as Kafka's `ConnectionQuotas` computes it: nothing while the
    /// rate measured with it is within `max.connection.creation.rate`; past it, the time that
    /// brings the rate back to the limit (`(rate - limit) / limit` of the measured window), at
    /// most one window (`quota.window.size.seconds`).
    /// Every connection is counted, limit or not, as Kafka's sensor does: a limit set at runtime
    /// sees the rate that came before it.
    pub fn creation_wait_ms(&self, now_ms: i64) -> u64 {
        self.created.record(1, now_ms);
        let rate_max = self.creation_rate_max.load(Ordering::Acquire);
        if rate_max >= crate::limits::CONNECTIONS_DEFAULT {
            return 0;
        }
        let (count, elapsed_ms) = self.created.measure(now_ms);
        let rate = count as f64 * 1000.0 / elapsed_ms as f64;
        if rate <= rate_max as f64 {
            return 0;
        }
        let wait_max_ms = self.created.window_ms();
        if rate_max == 0 {
            return wait_max_ms;
        }
        let wait_ms = ((rate - rate_max as f64) / rate_max as f64 * elapsed_ms as f64).round() as u64;
        wait_ms.min(wait_max_ms)
    }

    /// Sets the per-address exceptions (`max.connections.per.ip.overrides`).
    pub fn set_overrides(&self, overrides: impl IntoIterator<Item = (IpAddr, u64)>) {
        let overrides: HashMap<IpAddr, u64> = overrides.into_iter().collect();
        let mut per_address = self.per_address.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if per_address.overrides != overrides {
            tracing::info!(?overrides, "max.connections.per.ip.overrides changed");
            per_address.overrides = overrides;
        }
    }

    /// Sets `max.connections` and `max.connections.per.ip` (a dynamic broker config changed).
    pub fn set_limits(&self, total_max: u64, per_address_max: u64) {
        let total_before = self.total_max.swap(total_max, Ordering::AcqRel);
        let per_address_before = self.per_address_max.swap(per_address_max, Ordering::AcqRel);
        if (total_before, per_address_before) != (total_max, per_address_max) {
            tracing::info!(
                max_connections = total_max,
                max_connections_per_ip = per_address_max,
                open = self.open_count(),
                "connection limits changed"
            );
        }
    }

    /// `max.connections` and `max.connections.per.ip` in force.
    pub fn limits(&self) -> (u64, u64) {
        (self.total_max.load(Ordering::Acquire), self.per_address_max.load(Ordering::Acquire))
    }

    /// True when no further connection may be admitted at all.
    pub fn full(&self) -> bool {
        self.total.load(Ordering::Acquire) >= self.total_max.load(Ordering::Acquire)
    }

    pub fn open_count(&self) -> u64 {
        self.total.load(Ordering::Acquire)
    }
}

/// Admits a connection from `address`, or says which limit refuses it.
pub fn admit(budgets: &Arc<Budgets>, address: IpAddr) -> Result<ConnectionSlot, Refusal> {
    let connections = &budgets.connections;
    let mut per_address = connections.per_address.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let (total_max, per_address_max) = connections.limits();
    if connections.total.load(Ordering::Acquire) >= total_max {
        return Err(Refusal::Total(total_max));
    }
    let limit = per_address.overrides.get(&address).copied().unwrap_or(per_address_max);
    let count = per_address.open.entry(address).or_insert(0);
    if *count >= limit {
        // An address that never got a connection leaves no entry behind.
        if *count == 0 {
            per_address.open.remove(&address);
        }
        return Err(Refusal::PerAddress(limit));
    }
    *count += 1;
    connections.total.fetch_add(1, Ordering::AcqRel);
    Ok(ConnectionSlot { budgets: budgets.clone(), address, shard: None })
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let connections = &self.budgets.connections;
        let mut per_address = connections.per_address.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = per_address.open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                per_address.open.remove(&self.address);
            }
        }
        connections.total.fetch_sub(1, Ordering::AcqRel);
        if let Some(open) = self.shard.and_then(|shard| connections.per_shard.get(shard)) {
            open.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_give_back_what_they_took() {
        let budget = Budget::new("test", 100);
        let first = budget.try_acquire(60).expect("fits");
        assert!(budget.try_acquire(50).is_none(), "60 + 50 > 100");
        let second = budget.try_acquire(40).expect("60 + 40 fits");
        assert_eq!(budget.held(), 100);
        drop(first);
        assert_eq!(budget.held(), 40);
        drop(second);
        assert_eq!(budget.held(), 0);
        let huge = budget.try_acquire(1_000).expect("larger than the budget, granted when nothing is held");
        assert!(budget.try_acquire(1).is_none());
        drop(huge);
    }

    #[test]
    fn charged_bytes_hold_their_permit_until_the_last_clone_drops() {
        let budget = Budget::new("test", 10);
        let permit = Arc::new(budget.try_acquire(8).expect("fits"));
        let bytes = charged_bytes(vec![7; 8], permit);
        let slice = bytes.slice(2..4);
        drop(bytes);
        assert_eq!(budget.held(), 8, "a slice still refers to the buffer");
        assert_eq!(&slice[..], &[7, 7]);
        drop(slice);
        assert_eq!(budget.held(), 0);
    }

    #[test]
    fn connections_past_the_creation_rate_wait_as_kafka_computes_it() {
        let config = crate::config::Config::from_properties(
            &[("max.connection.creation.rate", "5"), ("quota.window.num", "2"), ("quota.window.size.seconds", "1")]
                .into_iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        )
        .expect("config");
        let budgets = Budgets::new(&config);
        let connections = &budgets.connections;
        // Measured over at least one window (1 s): five at once are within 5/s.
        for _ in 0..5 {
            assert_eq!(connections.creation_wait_ms(10_000), 0);
        }
        // The sixth makes 6/s: (6 - 5) / 5 of the 1 s window; then more, at most one window.
        assert_eq!(connections.creation_wait_ms(10_000), 200);
        assert_eq!(connections.creation_wait_ms(10_000), 400);
        for _ in 0..10 {
            connections.creation_wait_ms(10_000);
        }
        assert_eq!(connections.creation_wait_ms(10_000), 1_000, "never more than a window");
        // Two windows on, the burst is forgotten.
        assert_eq!(connections.creation_wait_ms(12_000), 0);
        connections.set_creation_rate(0);
        assert_eq!(connections.creation_wait_ms(12_000), 1_000, "0: every connection waits a window");
        connections.set_creation_rate(crate::limits::CONNECTIONS_DEFAULT);
        for _ in 0..100 {
            assert_eq!(connections.creation_wait_ms(12_000), 0, "no limit");
        }
    }

    /// Short-lived connections do not steer the long-lived ones: the shard with the fewest open
    /// connections gets the next one, the first from the round-robin start on a tie. (Round
    /// robin over metadata-then-fetch pairs put every fetch connection on the same shard.)
    #[test]
    fn new_connections_go_to_the_shard_serving_the_fewest() {
        let config = crate::config::Config::from_properties(
            &[("skua.shard.count", "2")].into_iter().map(|(key, value)| (key.to_string(), value.to_string())).collect(),
        )
        .expect("config");
        let budgets = Budgets::new(&config);
        let connections = &budgets.connections;
        let address: IpAddr = [127, 0, 0, 1].into();
        let mut fetches = Vec::new();
        for round in 0..4 {
            // A client's metadata connection, closed before its fetch connection opens.
            let mut metadata = admit(&budgets, address).expect("admitted");
            metadata.serve_on(connections.least_loaded_shard(2 * round));
            drop(metadata);
            let mut fetch = admit(&budgets, address).expect("admitted");
            let shard = connections.least_loaded_shard(2 * round + 1);
            fetch.serve_on(shard);
            fetches.push((shard, fetch));
        }
        let shards: Vec<usize> = fetches.iter().map(|(shard, _)| *shard).collect();
        assert_eq!(shards, [1, 0, 1, 0], "two long-lived connections per shard");
        // A shard whose connections end takes the next ones, whatever the round robin says.
        fetches.retain(|(shard, _)| *shard == 1);
        assert_eq!(connections.least_loaded_shard(1), 0);
        assert_eq!(connections.least_loaded_shard(0), 0);
        let mut third = admit(&budgets, address).expect("admitted");
        third.serve_on(0);
        let mut fourth = admit(&budgets, address).expect("admitted");
        fourth.serve_on(connections.least_loaded_shard(1));
        assert_eq!(fourth.shard, Some(0), "shard 0 had one, shard 1 two");
    }

    #[test]
    fn connections_are_limited_in_total_and_per_address() {
        let config = crate::config::Config::from_properties(
            &[("max.connections", "3"), ("max.connections.per.ip", "2")]
                .into_iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
        )
        .expect("config");
        let budgets = Budgets::new(&config);
        let one: IpAddr = [127, 0, 0, 1].into();
        let two: IpAddr = [127, 0, 0, 2].into();
        let a = admit(&budgets, one).expect("first");
        let _b = admit(&budgets, one).expect("second");
        assert_eq!(admit(&budgets, one).err(), Some(Refusal::PerAddress(2)));
        let _c = admit(&budgets, two).expect("another address");
        assert!(budgets.connections.full());
        assert_eq!(admit(&budgets, two).err(), Some(Refusal::Total(3)));
        drop(a);
        assert!(!budgets.connections.full());
        let d = admit(&budgets, one).expect("a place was freed");
        // Changed at runtime: the next admissions follow the new limits; open ones stay.
        budgets.connections.set_limits(2, 1);
        assert_eq!(budgets.connections.open_count(), 3, "nothing closed");
        assert_eq!(admit(&budgets, [127, 0, 0, 3].into()).err(), Some(Refusal::Total(2)));
        drop(d);
        budgets.connections.set_limits(3, 1);
        assert_eq!(admit(&budgets, one).err(), Some(Refusal::PerAddress(1)), "127.0.0.1 holds one");
        budgets.connections.set_limits(10, 5);
        let _e = admit(&budgets, one).expect("raised");
        let _f = admit(&budgets, [127, 0, 0, 3].into()).expect("raised");
        // An address with a limit of its own (max.connections.per.ip.overrides): 0 refuses it.
        budgets.connections.set_overrides([(two, 0), (one, 3)]);
        assert_eq!(admit(&budgets, two).err(), Some(Refusal::PerAddress(0)));
        let _g = admit(&budgets, one).expect("127.0.0.1 may hold 3");
        assert_eq!(admit(&budgets, one).err(), Some(Refusal::PerAddress(3)));
    }
}
