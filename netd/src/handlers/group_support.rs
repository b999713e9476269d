//! What the group coordinator handlers (FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups,
//! OffsetDelete: one file each) share: turning work submitted to the coordinating shard into a
//! [`Reply`], and the tombstones of committed offsets.
//!
//! Must not know: any one API's request or response. The state machine is
//! `coordinators::groups`.

use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use kafka_protocol::protocol::StrBytes;

use super::{str_bytes, Reply};
use crate::coordinators::groups::store::OffsetRecord;
use crate::runtime::context::Pending;

/// Shorthand for a response string.
pub fn text(value: &str) -> StrBytes {
    str_bytes(value)
}

/// A reply that waits for work submitted to the coordinating shard, then encodes its answer.
pub fn later<T: 'static>(pending: Pending<T>, encode: impl FnOnce(T) -> anyhow::Result<Bytes> + 'static) -> Reply {
    Reply::Later(Box::pin(async move {
        let answer = pending.await?;
        Ok(Some(vec![encode(answer)?]))
    }))
}

/// A submitted job's answer when it is known at once (no commit or join phase to wait for).
pub fn ready<T: 'static>(value: T) -> LocalBoxFuture<'static, T> {
    Box::pin(std::future::ready(value))
}

/// Tombstones for the committed offsets `keys` (topic, partition) of `group`, to be written with
/// `runtime::offsets::persist`.
pub fn tombstones(group: &str, keys: Vec<(String, i32)>) -> Vec<OffsetRecord> {
    keys.into_iter()
        .map(|(topic, partition)| OffsetRecord { group: group.to_string(), topic, partition, value: None })
        .collect()
}
