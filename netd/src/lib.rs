//! The broker daemon's library: everything `netd` (the binary, `main.rs`) runs, exposed so the
//! benchmarks in `bench/` can measure hot paths (fetch response assembly) directly.
//!
//! Layers, bottom up (a module imports only from its own layer and those below it, and the
//! `replica` and `engine` crates; `tests/layers.rs` checks it):
//! - [`limits`], [`clock`], [`published`], [`metrics`] (constants, time, the one-writer value
//!   every shard reads, and what shards count for the metrics endpoint: they name no other
//!   module);
//! - [`codec`] (Kafka bytes and rules, pure; the one map of typed errors to Kafka codes);
//! - [`config`] (the configuration keys, their defaults and parsing);
//! - [`coordinators`] (consumer groups), [`catalog`] (topics, placement, manifests, producer ids);
//! - [`runtime`] (shard threads, shard state, connections, committer, controller);
//! - [`handlers`] (one file per API, adapting requests to partitions and coordinators);
//! - the binary (`main.rs`: command line, signals, acceptor; wires handlers into the runtime).

pub mod catalog;
pub mod clock;
pub mod codec;
pub mod config;
pub mod coordinators;
pub mod handlers;
pub mod limits;
pub mod metrics;
pub mod published;
pub mod quorum;
pub mod runtime;
