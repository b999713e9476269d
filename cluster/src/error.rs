//! The cluster layer's errors, typed so that the broker maps each to a Kafka code in one place.
//!
//! Must not know: Kafka's error codes.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("metadata storage: {0}")]
    Storage(#[from] io::Error),
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
    /// Something to be written is larger than the named limit that its reader enforces (written,
    /// it could never be read back).
    #[error("{what} of {size_bytes} bytes is more than {limit} ({limit_bytes})")]
    TooLarge { what: &'static str, size_bytes: u64, limit: &'static str, limit_bytes: u64 },
}
