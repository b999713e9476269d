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
    #[error(
        "controller.quorum.voters lists {configured:?} but this node's metadata log was formed by voters {stored:?}"
    )]
    VotersDisagree { stored: Vec<crate::BrokerId>, configured: Vec<crate::BrokerId> },
    #[error("raft: {0}")]
    Raft(String),
    /// Something to be written is larger than the named limit that its reader enforces (written,
    /// it could never be read back).
    #[error("{what} of {size_bytes} bytes is more than {limit} ({limit_bytes})")]
    TooLarge { what: &'static str, size_bytes: u64, limit: &'static str, limit_bytes: u64 },
}
