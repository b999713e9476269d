//! DeleteRecords (key 21), versions 0–2: each partition's log start offset moves up to the
//! requested offset (−1: the high watermark), on the shard that owns it, through the partition
//! layer (`Partitions::delete_records`); the answer is the new log start, Kafka's low watermark.
//!
//! Kafka's order of answers: an unknown partition UNKNOWN_TOPIC_OR_PARTITION, a replica that does
//! not lead NOT_LEADER_OR_FOLLOWER, an offset below 0 (other than −1) or past the high watermark
//! OFFSET_OUT_OF_RANGE. A partition named twice is answered once, for its last offset (Kafka
//! gathers the request into a map). The leader answers once its own log start moved; Kafka's
//! leader waits (up to `timeout_ms`) until every live follower's log start reached the offset
//! too (docs/kafka-differences.md).

use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;
use engine::Offset;
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;

use super::fan_out;
use crate::clock::now_ms;
use crate::codec::errors;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;
use crate::runtime::state::ShardState;

/// The offset that names the high watermark.
const HIGH_WATERMARK_OFFSET: i64 = -1;

/// One partition to answer: (topic index, partition index in the response, topic, partition,
/// requested offset).
type Item = (usize, usize, String, i32, i64);

fn answer(state: &mut ShardState, item: &Item) -> DeleteRecordsPartitionResult {
    let (_, _, topic, partition, offset) = item;
    let mut result = DeleteRecordsPartitionResult::default();
    result.partition_index = *partition;
    result.low_watermark = -1;
    let id = match state.leader_replica(topic, *partition, -1) {
        Ok((id, _)) => id,
        Err(error) => {
            result.error_code = errors::replica_error_code(&error);
            return result;
        }
    };
    let requested = match *offset {
        HIGH_WATERMARK_OFFSET => None,
        offset => match u64::try_from(offset) {
            Ok(offset) => Some(Offset(offset)),
            Err(_) => {
                result.error_code = ResponseError::OffsetOutOfRange.code();
                return result;
            }
        },
    };
    match state.partitions.delete_records(id, requested, now_ms()) {
        Ok(start) => result.low_watermark = start.0 as i64,
        Err(error) => result.error_code = errors::replica_error_code(&error),
    }
    result
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
        items.iter().map(|item| (item.0, item.1, answer(&mut state, item))).collect::<Vec<_>>()
    })
    .await?;
    for (topic_index, partition_index, result) in answers {
        response.topics[topic_index].partitions[partition_index] = result;
    }
    encode_response(ApiKey::DeleteRecords, frame.api_version, frame.correlation_id, &response)
}
