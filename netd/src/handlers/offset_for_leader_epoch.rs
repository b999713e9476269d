//! OffsetForLeaderEpoch (key 23), versions 2–4 (librdkafka pins v2). Each partition is answered by
//! the shard that owns it, from its replica's leader-epoch history (a single node has only
//! epoch 0, which ends at the log end offset).

use std::rc::Rc;

use bytes::Bytes;
use engine::LeaderEpoch;
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;

use super::fan_out;
use crate::codec::errors;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;
use crate::runtime::state::ShardState;

/// (topic index, partition index in the request, topic, partition, current epoch, asked epoch)
type Item = (usize, usize, String, i32, i32, i32);

/// Answered by the replica's leader-epoch history, after Kafka's leader-epoch check of the
/// client's current epoch.
fn answer(state: &ShardState, topic: &str, partition: i32, current_epoch: i32, asked_epoch: i32) -> EpochEndOffset {
    let mut result = EpochEndOffset::default();
    result.partition = partition;
    result.leader_epoch = -1;
    result.end_offset = -1;
    match state.leader_replica(topic, partition, current_epoch) {
        Err(error) => result.error_code = errors::replica_error_code(&error),
        Ok((_, replica)) => {
            if let Some((epoch, end)) = replica.end_offset_for_epoch(LeaderEpoch(asked_epoch)) {
                result.leader_epoch = epoch.0;
                result.end_offset = end.0 as i64;
            }
        }
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
        let state = shard.state.borrow();
        items
            .into_iter()
            .map(|(topic_index, partition_index, topic, partition, current, asked)| {
                (topic_index, partition_index, answer(&state, &topic, partition, current, asked))
            })
            .collect::<Vec<_>>()
    })
    .await?;
    for (topic_index, partition_index, result) in answers {
        response.topics[topic_index].partitions[partition_index] = result;
    }
    encode_response(ApiKey::OffsetForLeaderEpoch, frame.api_version, frame.correlation_id, &response)
}
