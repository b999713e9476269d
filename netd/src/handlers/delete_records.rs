//! DeleteRecords (key 21), versions 0–2: each partition's log start offset moves up to the
//! requested offset (−1: the high watermark), on the shard that owns it, through the partition
//! layer (`Partitions::delete_records`); the answer is the new log start, Kafka's low watermark.
//!
//! Kafka's order of answers: an unknown partition UNKNOWN_TOPIC_OR_PARTITION, a replica that does
//! not lead NOT_LEADER_OR_FOLLOWER, an offset below 0 (other than −1) or past the high watermark
//! OFFSET_OUT_OF_RANGE. A partition named twice is answered once, for its last offset (Kafka
//! gathers the request into a map). As Kafka's DelayedDeleteRecords, the answer waits (up to
//! `timeout_ms`, at most [`DELETE_RECORDS_WAIT_MS_MAX`]) until the low watermark, the smallest
//! log start of the leader and its in-sync followers (each reports its own in its fetches),
//! reached the offset: then it is the low watermark answered; else REQUEST_TIMED_OUT. It asks
//! the owning shards again every [`DELETE_RECORDS_POLL_MS`].

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use engine::Offset;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;

use super::fan_out;
use crate::clock::now_ms;
use crate::codec::errors;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::limits::{DELETE_RECORDS_POLL_MS, DELETE_RECORDS_WAIT_MS_MAX};
use crate::runtime::context::ShardContext;
use crate::runtime::state::ShardState;

/// The offset that names the high watermark.
const HIGH_WATERMARK_OFFSET: i64 = -1;

/// One partition to answer: (topic index, partition index in the response, topic, partition,
/// requested offset).
type Item = (usize, usize, String, i32, i64);

/// Moves the log start; the result and, when it succeeded, the offset the low watermark must
/// reach before the answer (the requested one; the high watermark for −1).
fn answer(state: &mut ShardState, item: &Item) -> (DeleteRecordsPartitionResult, Option<Offset>) {
    let (_, _, topic, partition, offset) = item;
    let mut result = DeleteRecordsPartitionResult::default();
    result.partition_index = *partition;
    result.low_watermark = -1;
    let id = match state.leader_replica(topic, *partition, -1) {
        Ok((id, _)) => id,
        Err(error) => {
            result.error_code = errors::replica_error_code(&error);
            return (result, None);
        }
    };
    let requested = match *offset {
        HIGH_WATERMARK_OFFSET => None,
        offset => match u64::try_from(offset) {
            Ok(offset) => Some(Offset(offset)),
            Err(_) => {
                result.error_code = ResponseError::OffsetOutOfRange.code();
                return (result, None);
            }
        },
    };
    match state.partitions.delete_records(id, requested, now_ms()) {
        Ok(start) => {
            result.low_watermark = start.0 as i64;
            (result, Some(requested.unwrap_or(start)))
        }
        Err(error) => {
            result.error_code = errors::replica_error_code(&error);
            (result, None)
        }
    }
}

/// The low watermark of a partition this shard leads, or the error that ends the wait.
fn low_watermark(state: &ShardState, topic: &str, partition: i32) -> Result<Offset, i16> {
    let (id, _) = state.leader_replica(topic, partition, -1).map_err(|error| errors::replica_error_code(&error))?;
    state.partitions.low_watermark(id).map_err(|error| errors::replica_error_code(&error))
}

pub async fn handle(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: DeleteRecordsRequest = decode_body(frame)?;
    let mut response = DeleteRecordsResponse::default();
    // One entry per partition, the last offset named for it winning, grouped by topic in the
    // order topics first appear (maps, so a request naming many partitions costs linear time).
    let mut topic_indexes: HashMap<&str, usize> = HashMap::new();
    let mut item_indexes: HashMap<(usize, i32), usize> = HashMap::new();
    let mut items: Vec<(Option<usize>, Item)> = Vec::new();
    for topic in &request.topics {
        let topic_index = *topic_indexes.entry(topic.name.as_str()).or_insert_with(|| {
            let mut topic_result = DeleteRecordsTopicResult::default();
            topic_result.name = topic.name.clone();
            response.topics.push(topic_result);
            response.topics.len() - 1
        });
        for partition in &topic.partitions {
            if let Some(&known) = item_indexes.get(&(topic_index, partition.partition_index)) {
                items[known].1 .4 = partition.offset;
                continue;
            }
            let topic_result = &mut response.topics[topic_index];
            let mut result = DeleteRecordsPartitionResult::default();
            result.partition_index = partition.partition_index;
            result.low_watermark = -1;
            result.error_code = ResponseError::UnknownTopicOrPartition.code();
            topic_result.partitions.push(result);
            let partition_index = topic_result.partitions.len() - 1;
            // A negative partition is no partition: it stays unknown, asked of no shard.
            let owner = if partition.partition_index >= 0 {
                Some(context.owner_of(topic.name.as_str(), partition.partition_index))
            } else {
                None
            };
            item_indexes.insert((topic_index, partition.partition_index), items.len());
            let item =
                (topic_index, partition_index, topic.name.to_string(), partition.partition_index, partition.offset);
            items.push((owner, item));
        }
    }
    let items: Vec<(usize, Item)> =
        items.into_iter().filter_map(|(owner, item)| owner.map(|owner| (owner, item))).collect();
    let answers = fan_out(context, items, |shard: &Rc<ShardContext>, items: Vec<Item>| {
        let mut state = shard.state.borrow_mut();
        items.into_iter().map(|item| (answer(&mut state, &item), item)).collect::<Vec<_>>()
    })
    .await?;
    // (owner, (item, the offset the low watermark must reach)).
    let mut waiting: Vec<(usize, (Item, Offset))> = Vec::new();
    for ((result, target), item) in answers {
        response.topics[item.0].partitions[item.1] = result;
        if let Some(target) = target {
            waiting.push((context.owner_of(&item.2, item.3), (item, target)));
        }
    }
    let wait_ms = u64::try_from(request.timeout_ms).unwrap_or(0).min(DELETE_RECORDS_WAIT_MS_MAX);
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    while !waiting.is_empty() {
        let asked = std::mem::take(&mut waiting);
        let lows = fan_out(context, asked, |shard: &Rc<ShardContext>, items: Vec<(Item, Offset)>| {
            let state = shard.state.borrow();
            items.into_iter().map(|(item, target)| (low_watermark(&state, &item.2, item.3), item, target)).collect()
        })
        .await?;
        let expired = Instant::now() >= deadline;
        for (low, item, target) in lows {
            let result = &mut response.topics[item.0].partitions[item.1];
            match low {
                Ok(low) if low >= target => result.low_watermark = low.0 as i64,
                Ok(_) if expired => result.error_code = ResponseError::RequestTimedOut.code(),
                Ok(low) => {
                    result.low_watermark = low.0 as i64;
                    waiting.push((context.owner_of(&item.2, item.3), (item, target)));
                }
                Err(code) => {
                    result.error_code = code;
                    result.low_watermark = -1;
                }
            }
        }
        if !waiting.is_empty() {
            compio::time::sleep(Duration::from_millis(DELETE_RECORDS_POLL_MS)).await;
        }
    }
    encode_response(ApiKey::DeleteRecords, frame.api_version, frame.correlation_id, &response)
}
