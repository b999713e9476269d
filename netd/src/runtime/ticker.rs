//! The shard's timers: interval flushes, group timeouts, committed-offset expiry, offsets-log
//! cleaning, retention and high-watermark checkpoints ([`run`]); idempotent producers' expiry
//! ([`expire_producers`]: it reads the dynamic broker configs, so it runs with the shard's context).
//!
//! Owns: when periodic work runs (every [`TICK_MS`], offsets-log cleaning included; retention every
//! `log.retention.check.interval.ms`, checkpoints every
//! `replica.high.watermark.checkpoint.interval.ms`); what each piece does belongs to the shard
//! state, the group coordinator, the offsets rule (`runtime::offsets`) and the partitions.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::clock::now_ms;
use crate::limits::TICK_MS;
use crate::runtime::context::ShardContext;
use crate::runtime::offsets;
use crate::runtime::state::ShardState;

/// Every `producer.id.expiration.check.interval.ms`: forgets, in this shard's partitions, the
/// idempotent producers that wrote nothing for `producer.id.expiration.ms` (the value in force:
/// a dynamic broker config applies at the next check).
pub async fn expire_producers(context: Rc<ShardContext>) {
    let every = Duration::from_millis(context.config.producer_id_expiration_check_interval_ms.max(1));
    loop {
        compio::time::sleep(every).await;
        let expiration_ms = context.catalog().broker_configs.effective(&context.config).producer_id_expiration_ms;
        let expired = context.state.borrow_mut().partitions.expire_producers(now_ms(), expiration_ms);
        if expired > 0 {
            tracing::info!(
                shard = context.index,
                expired,
                expiration_ms,
                "forgot idempotent producers silent for producer.id.expiration.ms"
            );
        }
    }
}

pub async fn run(state: Rc<RefCell<ShardState>>, retention_check_interval_ms: u64, checkpoint_interval_ms: u64) {
    let retention_every = Duration::from_millis(retention_check_interval_ms.max(TICK_MS));
    let checkpoint_every = Duration::from_millis(checkpoint_interval_ms.max(TICK_MS));
    let mut last_retention = Instant::now();
    let mut last_checkpoint = Instant::now();
    loop {
        compio::time::sleep(Duration::from_millis(TICK_MS)).await;
        {
            let mut state = state.borrow_mut();
            state.pump(); // Interval flushes that came due.
            state.groups.tick(now_ms());
        }
        // Groups that became Empty (sessions expired, syncs timed out) are recorded.
        offsets::store_groups(&state);
        offsets::clean(&state);
        if last_retention.elapsed() >= retention_every {
            last_retention = Instant::now();
            // Borrows the state itself, and only until the tombstones are appended.
            offsets::expire(&state, now_ms());
            state.borrow_mut().enforce_retention(now_ms());
        }
        if last_checkpoint.elapsed() >= checkpoint_every {
            last_checkpoint = Instant::now();
            state.borrow_mut().partitions.checkpoint_high_watermarks();
        }
    }
}
