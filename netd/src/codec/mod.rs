//! The Kafka wire layer, pure: framing and request/response headers ([`frame`]), the one mapping
//! of typed errors to Kafka error codes ([`errors`]), the Fetch response encoder that keeps record
//! bytes as their own segments ([`fetch_encode`]), and Kafka's rules for produced batches
//! ([`produce_policy`]).
//!
//! Must not know: shards, partitions' state, sockets. Nothing here does I/O or keeps state;
//! everything here is a function of its input (and never panics on it).

pub mod errors;
pub mod fetch_encode;
pub mod frame;
#[cfg(test)]
mod golden;
pub mod produce_policy;
