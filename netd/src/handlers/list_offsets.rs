//! ListOffsets (key 2), versions 1–10: latest (−1), earliest (−2), max timestamp (−3, v7+),
//! earliest local (−4, v8+), latest tiered (−5, v9+), and by timestamp. Each partition is
//! answered by the shard that owns it, from its replica (high watermark, log start, time index),
//! after Kafka's leader and leader-epoch checks.
//!
//! Without tiered storage, as Kafka 4.4 answers without it: the earliest local offset is the log
//! start, and there is no latest tiered offset (offset and timestamp −1, no error). A special
//! timestamp below the version that introduced it, or one Skua does not know (−6, Kafka's v11
//! earliest pending upload, and below), is UNSUPPORTED_VERSION for that partition, as in Kafka.
//! v10's timeout is for tiered reads and is ignored.

use std::rc::Rc;

use bytes::Bytes;
use engine::Offset;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use super::fan_out;
use crate::codec::errors;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;
use crate::runtime::state::ShardState;

const LATEST_TIMESTAMP: i64 = -1;
const EARLIEST_TIMESTAMP: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
const LATEST_TIERED_TIMESTAMP: i64 = -5;

/// The first request version that may ask for a special timestamp (KIP-734, KIP-1005); `None`
/// for one Skua does not know.
fn version_min(timestamp: i64) -> Option<i16> {
    match timestamp {
        LATEST_TIMESTAMP | EARLIEST_TIMESTAMP => Some(0),
        MAX_TIMESTAMP => Some(7),
        EARLIEST_LOCAL_TIMESTAMP => Some(8),
        LATEST_TIERED_TIMESTAMP => Some(9),
        timestamp if timestamp >= 0 => Some(0),
        _ => None,
    }
}

/// One partition to answer: (topic index, partition index in the request, topic, partition,
/// timestamp, the client's current leader epoch or -1).
type Item = (usize, usize, String, i32, i64, i32);

/// Reads through the partition layer: latest is the high watermark (what consumers may read), as
/// Kafka answers an uncommitted-isolation ListOffsets; a leader new in its epoch answers
/// OFFSET_NOT_AVAILABLE until its high watermark reaches the epoch's start (KIP-207), so the
/// latest offset a client sees never goes back across a leader change.
fn answer(state: &ShardState, item: &Item, version: i16) -> ListOffsetsPartitionResponse {
    let (_, _, topic, partition, timestamp, current_epoch) = item;
    let mut result = ListOffsetsPartitionResponse::default();
    result.partition_index = *partition;
    result.timestamp = -1;
    result.offset = -1;
    if version_min(*timestamp).is_none_or(|min| version < min) {
        result.error_code = ResponseError::UnsupportedVersion.code();
        return result;
    }
    match state.leader_replica(topic, *partition, *current_epoch) {
        Err(error) => result.error_code = errors::replica_error_code(&error),
        Ok((id, replica)) => match *timestamp {
            LATEST_TIMESTAMP => match replica.check_offsets_available() {
                Ok(()) => result.offset = replica.high_watermark().0 as i64,
                Err(error) => result.error_code = errors::replica_error_code(&error),
            },
            EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => match state.partitions.log_start_offset(id) {
                Ok(start) => result.offset = start.0 as i64,
                Err(error) => result.error_code = errors::replica_error_code(&error),
            },
            LATEST_TIERED_TIMESTAMP => {}
            MAX_TIMESTAMP => found_below_high_watermark(&mut result, replica, state.partitions.max_timestamp(id)),
            timestamp => {
                found_below_high_watermark(&mut result, replica, state.partitions.offset_for_timestamp(id, timestamp))
            }
        },
    }
    result
}

/// As Kafka: a record found below the high watermark is answered; otherwise a new leader not
/// caught up refuses rather than answer "none" (KIP-207), and any other answers none (−1, −1).
fn found_below_high_watermark(
    result: &mut ListOffsetsPartitionResponse,
    replica: &replica::Partition,
    found: Result<Option<(Offset, i64)>, replica::ReplicaError>,
) {
    match found {
        Ok(Some((Offset(offset), timestamp))) if offset < replica.high_watermark().0 => {
            result.offset = offset as i64;
            result.timestamp = timestamp;
        }
        Ok(_) => {
            if let Err(error) = replica.check_offsets_available() {
                result.error_code = errors::replica_error_code(&error);
            }
        }
        Err(error) => result.error_code = errors::replica_error_code(&error),
    }
}

pub async fn handle(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: ListOffsetsRequest = decode_body(frame)?;
    let mut response = ListOffsetsResponse::default();
    let mut items: Vec<(usize, Item)> = Vec::new();
    for (topic_index, topic) in request.topics.iter().enumerate() {
        let mut topic_response = ListOffsetsTopicResponse::default();
        topic_response.name = topic.name.clone();
        for (partition_index, partition) in topic.partitions.iter().enumerate() {
            let mut result = ListOffsetsPartitionResponse::default();
            result.partition_index = partition.partition_index;
            result.error_code = ResponseError::UnknownTopicOrPartition.code();
            result.timestamp = -1;
            result.offset = -1;
            topic_response.partitions.push(result);
            if partition.partition_index >= 0 {
                let owner = context.owner_of(topic.name.as_str(), partition.partition_index);
                let item = (
                    topic_index,
                    partition_index,
                    topic.name.to_string(),
                    partition.partition_index,
                    partition.timestamp,
                    partition.current_leader_epoch,
                );
                items.push((owner, item));
            }
        }
        response.topics.push(topic_response);
    }
    let version = frame.api_version;
    let answers = fan_out(context, items, move |shard: &Rc<ShardContext>, items: Vec<Item>| {
        let state = shard.state.borrow();
        items.iter().map(|item| (item.0, item.1, answer(&state, item, version))).collect::<Vec<_>>()
    })
    .await?;
    for (topic_index, partition_index, result) in answers {
        response.topics[topic_index].partitions[partition_index] = result;
    }
    encode_response(ApiKey::ListOffsets, frame.api_version, frame.correlation_id, &response)
}
