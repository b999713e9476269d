//! Shard-per-partition plumbing: which shard owns a partition, the topic catalog every shard
//! reads, and the bounded queues that carry work from one shard thread to another.
//!
//! Owns: [`owner_of`] (a stable hash, so a partition's owner follows from its name and the shard
//! count, with no lookup), [`SharedCatalog`] (topic → partition count; written only by the
//! controller, read lock-free on the data path through a per-shard cached snapshot), and
//! [`ShardContext::submit`] (run a closure on the owning shard and get its result back).
//!
//! Must not know: any Kafka API. Handlers decide what to send; this module only moves it.
//!
//! Ordering: jobs a connection submits to one shard run there in submission order (one bounded
//! FIFO queue per shard, and a connection awaits each enqueue before reading its next request),
//! so pipelined produces to one partition keep their order across shards.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_channel::{mpsc, oneshot};
use futures_util::future::LocalBoxFuture;
use futures_util::SinkExt;

use crate::broker::Broker;
use crate::config::Config;
use crate::control::ControlCommand;

/// Jobs waiting in one shard's inbox before senders are made to wait (backpressure).
pub const SHARD_QUEUE_DEPTH: usize = 1024;
/// Control commands (topic creation, producer ids) waiting for the controller.
pub const CONTROL_QUEUE_DEPTH: usize = 256;
/// The shard that runs the controller (topic catalog changes, producer id allocation).
pub const CONTROLLER_SHARD: usize = 0;
/// Largest supported shard count.
pub const SHARD_COUNT_MAX: usize = 256;

/// Work sent to a shard: runs on that shard's thread with its context.
pub type Job = Box<dyn FnOnce(&Rc<ShardContext>) + Send>;

/// The result of submitted work, to be awaited later.
pub type Pending<R> = LocalBoxFuture<'static, anyhow::Result<R>>;

/// The shard that owns `partition` of `topic`: FNV-1a of the topic name plus the partition
/// index, so the partitions of one topic are spread round-robin over the shards. Stable across
/// restarts for the same shard count (and a different count simply re-homes partitions: each
/// shard opens the directories it owns at start-up).
pub fn owner_of(topic: &str, partition: i32, shard_count: usize) -> usize {
    assert!(shard_count > 0, "at least one shard");
    let hash = fnv1a(topic.as_bytes());
    (hash.wrapping_add(u64::from(partition.unsigned_abs())) % shard_count as u64) as usize
}

/// FNV-1a, 64 bit: small, stable across versions and platforms (placement depends on it).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The shard that coordinates `group`: the owner of its `__consumer_offsets` partition.
pub fn group_owner(group: &str, offsets_partitions: i32, shard_count: usize) -> usize {
    owner_of(crate::groups::OFFSETS_TOPIC, crate::groups::offsets_partition(group, offsets_partitions), shard_count)
}

/// Topic name → partition count: what Metadata answers and what routing needs.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub topics: BTreeMap<String, i32>,
}

impl Catalog {
    pub fn partitions(&self, topic: &str) -> Option<i32> {
        self.topics.get(topic).copied()
    }
}

/// The catalog shared by all shards. Writers (the controller) take the mutex and bump the
/// generation; readers take the mutex only when the generation moved since their last look.
#[derive(Debug)]
pub struct SharedCatalog {
    generation: AtomicU64,
    current: Mutex<Arc<Catalog>>,
}

impl SharedCatalog {
    pub fn new(catalog: Catalog) -> SharedCatalog {
        SharedCatalog { generation: AtomicU64::new(1), current: Mutex::new(Arc::new(catalog)) }
    }

    /// Replaces the catalog with `change` applied to a copy of it.
    pub fn publish(&self, change: impl FnOnce(&mut Catalog)) {
        let mut current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = Catalog::clone(&current);
        change(&mut next);
        *current = Arc::new(next);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The catalog as it is now.
    pub fn snapshot_now(&self) -> Arc<Catalog> {
        self.snapshot().1
    }

    fn snapshot(&self) -> (u64, Arc<Catalog>) {
        let generation = self.generation.load(Ordering::Acquire);
        let current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        (generation, current.clone())
    }
}

/// Everything a shard thread's tasks share: its broker state, the way to reach other shards,
/// the catalog, and the controller's queue.
pub struct ShardContext {
    pub index: usize,
    pub count: usize,
    pub config: Config,
    pub broker: Rc<RefCell<Broker>>,
    peers: Vec<mpsc::Sender<Job>>,
    shared_catalog: Arc<SharedCatalog>,
    cached_catalog: RefCell<(u64, Arc<Catalog>)>,
    control: mpsc::Sender<ControlCommand>,
    /// The broker-wide budgets (request memory, fetch memory, connections).
    pub budgets: Arc<crate::budget::Budgets>,
}

impl std::fmt::Debug for ShardContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardContext").field("index", &self.index).field("count", &self.count).finish()
    }
}

impl ShardContext {
    pub fn new(
        index: usize,
        config: Config,
        broker: Rc<RefCell<Broker>>,
        peers: Vec<mpsc::Sender<Job>>,
        shared_catalog: Arc<SharedCatalog>,
        control: mpsc::Sender<ControlCommand>,
        budgets: Arc<crate::budget::Budgets>,
    ) -> ShardContext {
        let cached = shared_catalog.snapshot();
        ShardContext {
            index,
            count: peers.len(),
            config,
            broker,
            peers,
            shared_catalog,
            cached_catalog: RefCell::new(cached),
            control,
            budgets,
        }
    }

    /// The current catalog (a cached snapshot; refreshed when the controller changed it).
    pub fn catalog(&self) -> Arc<Catalog> {
        let generation = self.shared_catalog.generation.load(Ordering::Acquire);
        let mut cached = self.cached_catalog.borrow_mut();
        if cached.0 != generation {
            *cached = self.shared_catalog.snapshot();
        }
        cached.1.clone()
    }

    pub fn shared_catalog(&self) -> &Arc<SharedCatalog> {
        &self.shared_catalog
    }

    pub fn owner_of(&self, topic: &str, partition: i32) -> usize {
        owner_of(topic, partition, self.count)
    }

    pub fn group_owner(&self, group: &str) -> usize {
        group_owner(group, self.config.offsets_partitions, self.count)
    }

    /// Sends a command to the controller and waits for it to be queued.
    pub async fn send_control(&self, command: ControlCommand) -> anyhow::Result<()> {
        self.control.clone().send(command).await.map_err(|_| anyhow::anyhow!("the controller has stopped"))
    }

    /// Runs `work` on shard `target`: right now if that is this shard, else queued behind what
    /// was submitted there before (awaiting this call waits for room in the queue, not for the
    /// work). The synchronous part of `work` (until it returns its future) runs in submission
    /// order; await the returned [`Pending`] for the result.
    pub async fn submit<R, F>(self: &Rc<Self>, target: usize, work: F) -> anyhow::Result<Pending<R>>
    where
        R: Send + 'static,
        F: FnOnce(&Rc<ShardContext>) -> LocalBoxFuture<'static, R> + Send + 'static,
    {
        if target == self.index {
            let future = work(self);
            return Ok(Box::pin(async move { Ok(future.await) }));
        }
        let peer = self.peers.get(target).ok_or_else(|| anyhow::anyhow!("no shard {target}"))?;
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move |context: &Rc<ShardContext>| {
            let future = work(context);
            compio::runtime::spawn(async move {
                let _ = reply.send(future.await);
            })
            .detach();
        });
        peer.clone().send(job).await.map_err(|_| anyhow::anyhow!("shard {target} has stopped"))?;
        Ok(Box::pin(async move { result.await.map_err(|_| anyhow::anyhow!("shard {target} dropped a request")) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_stable_and_spread() {
        assert_eq!(owner_of("orders", 3, 1), 0);
        // Golden values: changing the hash re-homes every partition of existing data dirs.
        assert_eq!((0..4).map(|partition| owner_of("orders", partition, 2)).collect::<Vec<_>>(), vec![0, 1, 0, 1]);
        let mut per_shard = [0usize; 4];
        for partition in 0..64 {
            per_shard[owner_of("events", partition, 4)] += 1;
        }
        assert_eq!(per_shard, [16, 16, 16, 16], "consecutive partitions go round-robin");
    }

    #[test]
    fn catalog_snapshots_follow_publishes() {
        let shared = SharedCatalog::new(Catalog::default());
        let (first, before) = shared.snapshot();
        shared.publish(|catalog| {
            catalog.topics.insert("t".into(), 3);
        });
        let (second, after) = shared.snapshot();
        assert!(second > first);
        assert_eq!(before.partitions("t"), None);
        assert_eq!(after.partitions("t"), Some(3));
    }
}
