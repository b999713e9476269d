//! The shard's timer: interval flushes, group timeouts, committed-offset expiry, offsets-log
//! cleaning, retention and high-watermark checkpoints.
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
use crate::runtime::offsets;
use crate::runtime::state::ShardState;

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
