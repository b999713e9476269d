//! What the group coordinator handlers (FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups,
//! OffsetDelete: one file each) share: turning work submitted to the coordinating shard into a
//! [`Reply`], and tombstoning committed offsets.
//!
//! Must not know: any one API's request or response. The state machine is
//! `coordinators::groups`.

use std::rc::Rc;

use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{str_bytes, Reply};
use crate::clock::now_ms;
use crate::coordinators::groups::store::OffsetRecord;
use crate::runtime::context::{Pending, ShardContext};

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

/// Writes tombstones for `keys` of `group` and drops them from memory once durable.
pub fn tombstone(shard: &Rc<ShardContext>, group: &str, keys: Vec<(String, i32)>) -> LocalBoxFuture<'static, i16> {
    if keys.is_empty() {
        return ready(0);
    }
    let records: Vec<OffsetRecord> = keys
        .into_iter()
        .map(|(topic, partition)| OffsetRecord { group: group.to_string(), topic, partition, value: None })
        .collect();
    let appended = shard.state.borrow_mut().append_offsets(group, &records);
    let shard = shard.clone();
    match appended {
        Err(error) => ready(error),
        Ok(receiver) => Box::pin(async move {
            let error = receiver.await.unwrap_or(ResponseError::RequestTimedOut.code());
            if error == 0 {
                let mut broker = shard.state.borrow_mut();
                for record in records {
                    broker.groups.apply(record, now_ms());
                }
            }
            error
        }),
    }
}
