//! The shard runtime: shard threads, their state, inboxes, connections and periodic tasks.
//!
//! Layering: the runtime sits above `codec`, `catalog`, `coordinators` and the `replica` crate,
//! and below `handlers`. It never imports a handler: connections hand frames to the
//! [`Dispatch`](connection::Dispatch) the shard was started with.
//!
//! - [`shard`] — a shard thread's bootstrap, its tasks, clean shutdown.
//! - [`state`] — one shard's state: its partitions (`replica::Partitions`), its group
//!   coordinator and the `__consumer_offsets` partitions behind it.
//! - [`offsets`] — the one rule for committed offsets: durable in the offsets partition first,
//!   then applied to the coordinator's memory; and their expiry.
//! - [`context`] — what a shard's tasks share, and `submit` (work on another shard through its
//!   bounded inbox).
//! - [`connection`] — a connection's frames within the budgets, responses in request order.
//! - [`committer`] — the group committer task; [`ticker`] — the shard's timer.
//! - [`controller`] — the task on shard 0 that creates, grows and deletes topics across shards.
//! - [`budget`] — the broker-wide budgets (request and fetch memory, connections, and the
//!   replication quotas of [`replication_quota`]: the throttled-replica rate meters).
//! - [`fetch_sessions`] — a shard's incremental fetch sessions (KIP-227).
//! - [`file_read`] — fetches' file reads through the shard's io_uring (never blocking it).
//! - [`metrics`] — the metrics endpoint: its HTTP thread, and scrapes of every shard's counts.

pub mod budget;
pub mod codec_pool;
pub mod committer;
pub mod connection;
pub mod context;
pub mod controller;
pub mod fetch_sessions;
pub mod fetcher;
pub mod file_read;
pub mod isr;
pub mod metrics;
pub mod offsets;
pub mod replication_quota;
pub mod shard;
pub mod state;
pub mod ticker;
pub mod turns;
