//! OffsetForLeaderEpoch (key 23), versions 2–4 (librdkafka pins v2). A single node's leader epoch
//! is always 0, so epoch 0 ends at the log end offset. Each partition is answered by the shard
//! that owns it.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;

use super::fan_out;
use crate::codec::errors;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;
use crate::runtime::state::ShardState;

/// The leader epoch of every partition on a single node.
pub const LEADER_EPOCH: i32 = 0;

/// (topic index, partition index in the request, topic, partition, current epoch, asked epoch)
type Item = (usize, usize, String, i32, i32, i32);

fn answer(broker: &ShardState, topic: &str, partition: i32, current_epoch: i32, asked_epoch: i32) -> EpochEndOffset {
    let mut result = EpochEndOffset::default();
    result.partition = partition;
    result.leader_epoch = -1;
    result.end_offset = -1;
    match broker.log_for(topic, partition).map(|id| broker.engine.log(id)) {
        Err(code) => result.error_code = code,
        Ok(Err(error)) => result.error_code = errors::engine_error_code(&error),
        Ok(Ok(_)) if current_epoch > LEADER_EPOCH => result.error_code = ResponseError::UnknownLeaderEpoch.code(),
        Ok(Ok(log)) if asked_epoch >= LEADER_EPOCH => {
            result.leader_epoch = LEADER_EPOCH;
            result.end_offset = log.log_end_offset().0 as i64;
        }
        Ok(Ok(_)) => {} // An epoch before ours: undefined, as Kafka answers.
    }
    result
}

pub async fn handle(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: OffsetForLeaderEpochRequest = decode_body(frame)?;
    let mut response = OffsetForLeaderEpochResponse::default();
    let mut items: Vec<(usize, Item)> = Vec::new();
    for (topic_index, topic) in request.topics.iter().enumerate() {
        let mut topic_result = OffsetForLeaderTopicResult::default();
        topic_result.topic = topic.topic.clone();
        for (partition_index, partition) in topic.partitions.iter().enumerate() {
            let mut result = EpochEndOffset::default();
            result.partition = partition.partition;
            result.error_code = ResponseError::UnknownTopicOrPartition.code();
            result.leader_epoch = -1;
            result.end_offset = -1;
            topic_result.partitions.push(result);
            if partition.partition >= 0 {
                let owner = context.owner_of(topic.topic.as_str(), partition.partition);
                let item = (
                    topic_index,
                    partition_index,
                    topic.topic.to_string(),
                    partition.partition,
                    partition.current_leader_epoch,
                    partition.leader_epoch,
                );
                items.push((owner, item));
            }
        }
        response.topics.push(topic_result);
    }
    let answers = fan_out(context, items, |shard: &Rc<ShardContext>, items: Vec<Item>| {
        let broker = shard.state.borrow();
        items
            .into_iter()
            .map(|(topic_index, partition_index, topic, partition, current, asked)| {
                (topic_index, partition_index, answer(&broker, &topic, partition, current, asked))
            })
            .collect::<Vec<_>>()
    })
    .await?;
    for (topic_index, partition_index, result) in answers {
        response.topics[topic_index].partitions[partition_index] = result;
    }
    encode_response(ApiKey::OffsetForLeaderEpoch, frame.api_version, frame.correlation_id, &response)
}
