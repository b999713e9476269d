//! The partition layer between the broker and the storage engine: what a partition *is* beyond
//! its log. Decision 0015.
//!
//! Owns, per partition ([`Partition`]): its role and leader epoch, the high watermark, the
//! acknowledgements waiting for it (keyed by offset), the fetches waiting for data, the
//! idempotent producers' sequence state, and the rules that tie them together. Per shard
//! ([`Partitions`]): the engine shard holding the logs, and turning its group commits into high
//! watermark advances, acknowledgements and fetch wake-ups. On disk, beside each log: the
//! producer-state snapshot ([`producer_snapshot`], `docs/formats/producer-state.md`), written
//! through the engine shard's `FileSystem` at segment rolls and clean close, and the leader-epoch
//! history ([`epoch_history`], `docs/formats/leader-epochs.md`), written when it changes.
//!
//! The rules replication will change live here and only here:
//! - who may advance the high watermark: [`Partitions`] when a commit lands (single node: the
//!   high watermark is the committed end; with replicas it becomes the smallest end of the ISR);
//! - what an acknowledgement waits for: `acks=1` for the leader's committed end, `acks=all` for
//!   the high watermark ([`Acks`]);
//! - where leader epochs are checked: [`Partition::check_epoch`] on every request that names one,
//!   [`Partitions::append`] refuses unless the partition leads;
//! - what a follower takes from its leader ([`follow`]): the leader's batches byte for byte with
//!   their producers' state and leader epochs, the leader's high watermark up to the local
//!   committed end, a fresh start at the leader's log start.
//!
//! Must not know: any Kafka API key, request, response or error code (tidy-checked), sockets,
//! shards' queues or topics' names. Errors are [`ReplicaError`]; the broker maps them to Kafka
//! codes in one place.

pub mod epoch_history;
pub mod error;
pub mod follow;
pub mod high_watermark;
pub mod leader;
pub mod partition;
pub mod partitions;
pub mod producer_snapshot;
pub mod producers;
pub mod read;

pub use error::{ProducerError, ReplicaError};
pub use leader::{FollowerState, IsrCandidates, ReplicaId, Replication};
pub use partition::{Acks, EpochStart, Partition, ReadBound, Role};
pub use partitions::{Ack, Appended, Partitions};
pub use producers::ProducerView;
pub use read::ReadPlan;
