//! Cluster metadata, modelled on Kafka's KRaft design: the controllers keep a replicated metadata
//! log, every broker applies it into an in-memory image. Decision 0016.
//!
//! Owns:
//! - [`records`]: the metadata records (cluster id, brokers, topics, partitions with their replicas,
//!   ISR, leader and epochs, producer-id blocks) and their versioned binary encoding
//!   (`docs/formats/metadata-records.md`);
//! - [`image`]: the immutable image built by applying records in log order; brokers' shards read
//!   it lock-free through an `Arc` swapped at each applied batch;
//! - [`controller`]: the active controller's decisions as pure functions of (image, request, now)
//!   to records: registration, heartbeats and fencing, replica placement, leader election,
//!   producer-id blocks;
//! - [`raft_log`]: the Raft log on disk (entries, hard state, snapshot), through the engine's
//!   `FileSystem` so crash tests can drop un-synced writes (`docs/formats/raft-log.md`);
//! - [`wire`]: the CONTROLLER listener's own versioned framing of Raft messages and controller
//!   requests.
//!
//! Must not know: any Kafka API key, request, response or error code (tidy-checked), sockets or
//! shards. The broker (netd) drives the quorum's I/O and maps [`ClusterError`]s to Kafka codes.

mod codec;
pub mod controller;
pub mod error;
pub mod image;
pub mod quorum;
pub mod raft_log;
pub mod records;
pub mod rpc;
pub mod types;
pub mod wire;

pub use error::ClusterError;
/// The Raft library's types (messages), for the transport that carries them.
pub use raft;
pub use types::{BrokerId, ClusterId, PartitionIndex, TopicId};
