//! A shard's context: what every task of one shard thread shares, and the bounded queues that
//! carry work from one shard thread to another.
//!
//! Owns: [`ShardContext`] (this shard's state, the catalog snapshot, the peers' inboxes, the
//! controller's queue, the broker-wide budgets) and [`ShardContext::submit`] (run a closure on the
//! owning shard and get its result back).
//!
//! Must not know: any Kafka API. Handlers decide what to send; this module only moves it.
//!
//! Ordering: jobs a connection submits to one shard run there in submission order (one bounded
//! FIFO queue per shard, and a connection awaits each enqueue before reading its next request),
//! so pipelined produces to one partition keep their order across shards.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use futures_channel::{mpsc, oneshot};
use futures_util::future::LocalBoxFuture;
use futures_util::SinkExt;

use cluster::image::MetadataImage;

use crate::catalog::{Catalog, SharedCatalog};
use crate::config::Config;
use crate::metrics::ShardMetrics;
use crate::published::Cached;
use crate::quorum::link::QuorumLink;
use crate::runtime::codec_pool::CodecPool;
use crate::runtime::connection::Dispatch;
use crate::runtime::controller::ControlCommand;
use crate::runtime::fetch_sessions::FetchSessions;
use crate::runtime::state::ShardState;
use crate::runtime::turns::Turns;

/// Work sent to a shard: runs on that shard's thread with its context.
pub type Job = Box<dyn FnOnce(&Rc<ShardContext>) + Send>;

/// The result of submitted work, to be awaited later.
pub type Pending<R> = LocalBoxFuture<'static, anyhow::Result<R>>;

/// Everything a shard thread's tasks share: its state, the way to reach other shards,
/// the catalog, and the controller's queue.
pub struct ShardContext {
    pub index: usize,
    pub count: usize,
    pub config: Config,
    pub state: Rc<RefCell<ShardState>>,
    peers: Vec<mpsc::Sender<Job>>,
    shared_catalog: Arc<SharedCatalog>,
    cached_catalog: Cached<Catalog>,
    cached_image: Option<Cached<MetadataImage>>,
    control: mpsc::Sender<ControlCommand>,
    /// The broker-wide budgets (request memory, fetch memory, connections).
    pub budgets: Arc<crate::runtime::budget::Budgets>,
    /// Where this shard's connections hand their frames (the handlers' registry).
    pub dispatch: Dispatch,
    /// In a cluster: the link to the metadata quorum (the image, forwarded controller requests).
    pub quorum: Option<Arc<QuorumLink>>,
    /// This shard's counters for the metrics endpoint (the state's, reachable without borrowing it).
    pub metrics: Rc<ShardMetrics>,
    /// The incremental fetch sessions this shard's connections opened (KIP-227).
    pub fetch_sessions: RefCell<FetchSessions>,
    /// The broker's codec threads: produce conversions, and the validation of large compressed
    /// batches, run there, not on this thread.
    pub codec_pool: Arc<CodecPool>,
    /// The order of each partition's appends while some of them wait for the codec pool.
    pub produce_turns: Turns<engine::LogId>,
}

impl std::fmt::Debug for ShardContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardContext").field("index", &self.index).field("count", &self.count).finish()
    }
}

/// How a shard reaches the rest of the broker: the same for every shard but its index.
#[derive(Clone)]
pub struct Links {
    /// Every shard's inbox, by index (this shard's own included).
    pub peers: Vec<mpsc::Sender<Job>>,
    pub catalog: Arc<SharedCatalog>,
    /// The controller's queue.
    pub control: mpsc::Sender<ControlCommand>,
    /// The broker-wide budgets, shared by every shard and the acceptor.
    pub budgets: Arc<crate::runtime::budget::Budgets>,
    /// What a connection's frames are handed to (the handlers' registry).
    pub dispatch: Dispatch,
    /// In a cluster (`process.roles` with broker): the link to the metadata quorum.
    pub quorum: Option<Arc<QuorumLink>>,
    /// The broker's codec threads (produce conversions to a topic's `compression.type`, and the
    /// validation of large compressed batches).
    pub codec_pool: Arc<CodecPool>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links").field("shards", &self.peers.len()).finish()
    }
}

impl ShardContext {
    pub fn new(index: usize, config: Config, state: Rc<RefCell<ShardState>>, links: Links) -> ShardContext {
        let Links { peers, catalog: shared_catalog, control, budgets, dispatch, quorum, codec_pool } = links;
        let cached_catalog = Cached::new(&shared_catalog);
        let cached_image = quorum.as_ref().map(|link| Cached::new(link.published_image()));
        let metrics = state.borrow().metrics.clone();
        let slots = usize::try_from(config.fetch_session_slots).unwrap_or(usize::MAX);
        let fetch_sessions = RefCell::new(FetchSessions::new(index, peers.len(), slots));
        ShardContext {
            index,
            count: peers.len(),
            config,
            state,
            peers,
            shared_catalog,
            cached_catalog,
            cached_image,
            control,
            budgets,
            dispatch,
            quorum,
            metrics,
            fetch_sessions,
            codec_pool,
            produce_turns: Turns::default(),
        }
    }

    /// The current catalog (a cached snapshot; refreshed when the controller changed it).
    pub fn catalog(&self) -> Arc<Catalog> {
        self.cached_catalog.get(&self.shared_catalog)
    }

    /// In a cluster: the newest metadata image this broker has (a cached snapshot, refreshed
    /// when the link published a newer one).
    pub fn image(&self) -> Option<Arc<MetadataImage>> {
        let link = self.quorum.as_ref()?;
        self.cached_image.as_ref().map(|cached| cached.get(link.published_image()))
    }

    pub fn shared_catalog(&self) -> &Arc<SharedCatalog> {
        &self.shared_catalog
    }

    pub fn owner_of(&self, topic: &str, partition: i32) -> usize {
        crate::catalog::owner_of(topic, partition, self.count)
    }

    pub fn group_owner(&self, group: &str) -> usize {
        crate::catalog::group_owner(group, self.config.offsets_partitions, self.count)
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
