//! A shard thread: bootstrap, its tasks, and clean shutdown.
//!
//! Owns: starting one shard (its compio runtime, its engine shard on its own io_uring, its state
//! with the partitions it owns) and the tasks that run on it: the group committer
//! ([`committer`](super::committer)), the timer ([`ticker`](super::ticker)), the inbox (jobs other
//! shards and the acceptor send: work on this shard's partitions, new connections), and on
//! [`CONTROLLER_SHARD`](super::controller::CONTROLLER_SHARD) the controller. Shutdown stops the
//! tasks, commits what is pending and closes every log.
//!
//! Must not know: any Kafka API (connections dispatch through the [`Dispatch`](super::connection::Dispatch) it was given).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_channel::mpsc;
use futures_util::StreamExt;

use crate::catalog::producer_ids::ProducerIds;
use crate::config::Config;
use crate::limits::TICK_MS;
use crate::runtime::context::{Job, Links, ShardContext};
use crate::runtime::controller::{self, ControlCommand};
use crate::runtime::state::ShardState;
use crate::runtime::{committer, ticker};

/// What a shard thread starts from.
pub struct ShardSetup {
    pub index: usize,
    pub config: Config,
    pub inbox: mpsc::Receiver<Job>,
    pub links: Links,
    /// Only for the controller shard: its command queue and the producer id counter.
    pub controller: Option<(mpsc::Receiver<ControlCommand>, ProducerIds)>,
    /// Set once this shard's logs are open and it serves its inbox.
    pub ready: Arc<AtomicBool>,
}

impl std::fmt::Debug for ShardSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardSetup").field("index", &self.index).field("shards", &self.links.peers.len()).finish()
    }
}

/// Runs one shard until `shutdown` is set. Returns after a clean engine close.
pub fn run_shard(setup: ShardSetup, shutdown: Arc<AtomicBool>) -> anyhow::Result<()> {
    let ShardSetup { index, config, mut inbox, links, controller, ready } = setup;
    let runtime = compio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let (trigger, triggers) = mpsc::unbounded();
        let state = {
            let shard_count = links.peers.len();
            let snapshot = links.catalog.load();
            ShardState::open(config.clone(), trigger, &snapshot, |topic, partition| {
                crate::catalog::owner_of(topic, partition, shard_count) == index
            })?
        };
        tracing::info!(shard = index, backend = state.backend_name(), write_mode = ?config.write_mode, partitions = state.partition_count(), "shard started");
        let mut state = state;
        state.quorum = links.quorum.clone();
        if state.quorum.is_some() {
            state.catalog = Some(links.catalog.clone());
            // A cluster broker coordinates no group until its image names the offsets
            // partitions it leads (a group asked of it before then is NOT_COORDINATOR).
            let partitions = config.offsets_partitions;
            state.groups.set_coordinated(partitions, Default::default());
        }
        let state = Rc::new(RefCell::new(state));
        let context = Rc::new(ShardContext::new(index, config.clone(), state.clone(), links));

        let committer = compio::runtime::spawn(committer::run(state.clone(), triggers));
        let ticker = compio::runtime::spawn(ticker::run(state.clone(), config.retention_check_interval_ms, config.high_watermark_checkpoint_interval_ms));
        let producer_expiry = compio::runtime::spawn(ticker::expire_producers(context.clone()));
        let inbox_task = {
            let context = context.clone();
            compio::runtime::spawn(async move {
                while let Some(job) = inbox.next().await {
                    job(&context);
                }
            })
        };
        let controller_task =
            controller.map(|(commands, ids)| compio::runtime::spawn(controller::run(context.clone(), commands, ids)));
        // In a cluster, the controller shard also applies each new metadata image.
        let image_task = (index == controller::CONTROLLER_SHARD && context.quorum.is_some())
            .then(|| compio::runtime::spawn(controller::watch_images(context.clone())));
        // In a cluster with follower fetching: this shard's followers copy their leaders.
        let fetcher_task = (context.quorum.is_some() && config.follower_fetch)
            .then(|| compio::runtime::spawn(super::fetcher::run(context.clone())));
        let isr_task = (context.quorum.is_some() && config.follower_fetch)
            .then(|| compio::runtime::spawn(super::isr::run(context.clone())));
        ready.store(true, Ordering::Release);

        while !shutdown.load(Ordering::Relaxed) {
            compio::time::sleep(Duration::from_millis(TICK_MS)).await;
        }
        tracing::info!(shard = index, "shutting down: committing and closing logs");
        drop(isr_task);
        drop(fetcher_task);
        drop(image_task);
        drop(controller_task);
        drop(inbox_task);
        drop(committer);
        drop(ticker);
        drop(producer_expiry);
        state.borrow_mut().close()?;
        Ok(())
    })
}
