//! What can go wrong in the partition layer, typed, so the broker can map each case to a Kafka
//! error code in one place (`netd/src/codec/errors.rs`).

use std::sync::Arc;

use engine::{EngineError, LeaderEpoch, Offset};

use crate::ReplicaId;

/// An idempotent producer's batch that the partition refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    /// A gap in the producer's sequence numbers (or a new epoch not starting at 0).
    #[error("out of order sequence number")]
    OutOfOrderSequence,
    /// The producer's epoch is older than one this partition has seen: a zombie producer.
    #[error("producer epoch is older than the partition's")]
    FencedProducerEpoch,
}

#[derive(Clone, Debug, thiserror::Error)]
pub enum ReplicaError {
    /// This shard holds no such partition.
    #[error("unknown partition")]
    UnknownPartition,
    /// The partition exists, but this broker holds no replica of it (the client's metadata is
    /// stale: Kafka answers as it does a follower).
    #[error("no replica of the partition on this broker")]
    NotReplica,
    /// `acks=all` with fewer in-sync replicas than `min.insync.replicas`: nothing was appended.
    #[error("not enough in-sync replicas ({isr} of at least {min_insync})")]
    NotEnoughReplicas { isr: usize, min_insync: usize },
    /// Appended, but the ISR shrank below `min.insync.replicas` before the write was covered.
    #[error("the in-sync replicas fell below min.insync.replicas after the append")]
    NotEnoughReplicasAfterAppend,
    /// The partition is a follower here: clients must go to the leader.
    #[error("not the leader (leader epoch {epoch:?})")]
    NotLeader { epoch: LeaderEpoch },
    /// The partition leads (or is not a follower) here: only a follower takes its leader's
    /// batches as they are.
    #[error("not a follower (leader epoch {epoch:?})")]
    NotFollower { epoch: LeaderEpoch },
    /// A fetch names itself a follower (`replica_id`) that is no other replica of the partition
    /// here (a stale or hostile broker, or a client posing as one). Kafka answers
    /// UNKNOWN_LEADER_EPOCH when the fetch names the current leader epoch (a replica being added
    /// by a reassignment may be ahead of this leader's metadata) and NOT_LEADER_OR_FOLLOWER
    /// otherwise; nothing is read.
    #[error("replica {follower:?} is not a follower of this partition")]
    UnknownFollower { follower: ReplicaId, epoch_named: bool },
    /// The request's leader epoch is older than the partition's.
    #[error("fenced leader epoch: request has {requested:?}, partition has {current:?}")]
    FencedLeaderEpoch { requested: LeaderEpoch, current: LeaderEpoch },
    /// The request's leader epoch is newer than the partition's (its metadata is ahead of ours).
    #[error("unknown leader epoch: request has {requested:?}, partition has {current:?}")]
    UnknownLeaderEpoch { requested: LeaderEpoch, current: LeaderEpoch },
    /// A leader new in its epoch whose high watermark is still below the epoch's start offset
    /// cannot tell a client the latest offset without it possibly going back (KIP-207): Kafka
    /// answers OFFSET_NOT_AVAILABLE, retriable.
    #[error("the high watermark {high_watermark:?} has not reached this leader epoch's start {epoch_start:?} yet")]
    OffsetNotAvailable { high_watermark: Offset, epoch_start: Offset },
    /// Records may be deleted only below the high watermark (Kafka's DeleteRecords answers
    /// OFFSET_OUT_OF_RANGE).
    #[error("offset {requested:?} is past the high watermark {high_watermark:?}")]
    BeyondHighWatermark { requested: Offset, high_watermark: Offset },
    /// A follower names a last fetched epoch for which the leader cannot say where it ends
    /// (Kafka answers OFFSET_OUT_OF_RANGE; the follower starts over from the leader's log).
    #[error("the leader cannot place the follower's last fetched epoch {epoch:?}")]
    UnknownFetchedEpoch { epoch: LeaderEpoch },
    #[error(transparent)]
    Producer(#[from] ProducerError),
    /// The storage engine failed (shared: every waiter of a failed commit gets the same error).
    #[error(transparent)]
    Storage(Arc<EngineError>),
    /// The partition went away (deleted, or the shard shut down) before the acknowledgement.
    #[error("the partition stopped before the write was acknowledged")]
    Stopped,
    /// Reading a file range of the log for a fetch failed.
    #[error("reading the log failed: {0}")]
    Read(Arc<std::io::Error>),
}

impl From<EngineError> for ReplicaError {
    fn from(error: EngineError) -> ReplicaError {
        ReplicaError::Storage(Arc::new(error))
    }
}

pub type Result<T, E = ReplicaError> = std::result::Result<T, E>;
