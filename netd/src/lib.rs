//! The broker daemon's library: everything `netd` (the binary, `main.rs`) runs, exposed so the
//! benchmarks in `bench/` can measure hot paths (fetch response assembly) directly.
//!
//! Owns: the Kafka wire protocol over the storage engine — shards, handlers, groups, config.
//! The binary owns only the command line, signals and the acceptor.

pub mod broker;
pub mod budget;
pub mod config;
pub mod control;
pub mod errors;
pub mod groups;
pub mod handlers;
pub mod limits;
pub mod manifest;
pub mod produce_policy;
pub mod producers;
pub mod protocol;
pub mod server;
pub mod shards;
