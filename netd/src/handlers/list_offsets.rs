//! ListOffsets (key 2), versions 1–7: earliest (−2), latest (−1), and by timestamp. Each
//! partition is answered by the shard that owns it.

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

/// One partition to answer: (topic index, partition index in the request, topic, partition, timestamp).
type Item = (usize, usize, String, i32, i64);

fn answer(broker: &ShardState, topic: &str, partition: i32, timestamp: i64) -> ListOffsetsPartitionResponse {
    let mut result = ListOffsetsPartitionResponse::default();
    result.partition_index = partition;
    result.timestamp = -1;
    result.offset = -1;
    let log = broker.log_for(topic, partition).map(|id| broker.engine.log(id));
    match log {
        Err(code) => result.error_code = code,
        Ok(Err(error)) => result.error_code = errors::engine_error_code(&error),
        Ok(Ok(log)) => match timestamp {
            LATEST_TIMESTAMP => result.offset = log.log_end_offset().0 as i64,
            EARLIEST_TIMESTAMP => result.offset = log.log_start_offset().0 as i64,
            timestamp if timestamp >= 0 => match log.offset_for_timestamp(timestamp) {
                Ok(Some((Offset(offset), found))) => {
                    result.offset = offset as i64;
                    result.timestamp = found;
                }
                Ok(None) => {}
                Err(error) => result.error_code = errors::engine_error_code(&error),
            },
            // -3 (max timestamp) and others: not supported yet.
            _ => result.error_code = ResponseError::UnsupportedVersion.code(),
        },
    }
    result
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
                );
                items.push((owner, item));
            }
        }
        response.topics.push(topic_response);
    }
    let answers = fan_out(context, items, |shard: &Rc<ShardContext>, items: Vec<Item>| {
        let broker = shard.state.borrow();
        items
            .into_iter()
            .map(|(topic_index, partition_index, topic, partition, timestamp)| {
                (topic_index, partition_index, answer(&broker, &topic, partition, timestamp))
            })
            .collect::<Vec<_>>()
    })
    .await?;
    for (topic_index, partition_index, result) in answers {
        response.topics[topic_index].partitions[partition_index] = result;
    }
    encode_response(ApiKey::ListOffsets, frame.api_version, frame.correlation_id, &response)
}
