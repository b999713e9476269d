//! Coordinators: state machines that Kafka clients drive through several requests and that live
//! on the shard owning their partition — today the classic consumer-group coordinator
//! ([`groups`]); later transactions.
//!
//! Must not know: sockets, frames or shards' queues. A coordinator is plain state changed by
//! method calls on its shard; persistence goes through the shard state that owns it.

pub mod groups;
