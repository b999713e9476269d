//! DescribeProducers (key 61), version 0: each partition's active idempotent producers (id,
//! epoch, last sequence, last timestamp), read on the shard that owns the partition from the
//! partition layer's producer state. Leaders only, as Kafka: an unknown partition answers
//! UNKNOWN_TOPIC_OR_PARTITION, a replica that does not lead NOT_LEADER_OR_FOLLOWER. Skua has
//! no transactions, so the coordinator epoch and the transaction start offset are always −1.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{ApiKey, DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use kafka_protocol::ResponseError;

use super::fan_out;
use crate::codec::errors;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;
use crate::runtime::state::ShardState;

/// One partition to answer: (topic index, partition index in the request, topic, partition).
type Item = (usize, usize, String, i32);

fn answer(state: &ShardState, item: &Item) -> PartitionResponse {
    let (_, _, topic, partition) = item;
    let mut result = PartitionResponse::default();
    result.partition_index = *partition;
    match state.leader_replica(topic, *partition, -1) {
        Err(error) => result.error_code = errors::replica_error_code(&error),
        Ok((_, replica)) => {
            result.active_producers = replica
                .producers()
                .views()
                .map(|view| {
                    let mut producer = ProducerState::default();
                    producer.producer_id = ProducerId(view.producer_id);
                    producer.producer_epoch = i32::from(view.producer_epoch);
                    producer.last_sequence = view.last_sequence;
                    producer.last_timestamp = view.last_timestamp_ms;
                    producer.coordinator_epoch = -1;
                    producer.current_txn_start_offset = -1;
                    producer
                })
                .collect();
        }
    }
    result
}

pub async fn handle(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: DescribeProducersRequest = decode_body(frame)?;
    let mut response = DescribeProducersResponse::default();
    let mut items: Vec<(usize, Item)> = Vec::new();
    for (topic_index, topic) in request.topics.iter().enumerate() {
        let mut topic_response = TopicResponse::default();
        topic_response.name = topic.name.clone();
        for (partition_index, &partition) in topic.partition_indexes.iter().enumerate() {
            let mut result = PartitionResponse::default();
            result.partition_index = partition;
            result.error_code = ResponseError::UnknownTopicOrPartition.code();
            topic_response.partitions.push(result);
            if partition >= 0 {
                let owner = context.owner_of(topic.name.as_str(), partition);
                items.push((owner, (topic_index, partition_index, topic.name.to_string(), partition)));
            }
        }
        response.topics.push(topic_response);
    }
    let answers = fan_out(context, items, |shard: &Rc<ShardContext>, items: Vec<Item>| {
        let state = shard.state.borrow();
        items.iter().map(|item| (item.0, item.1, answer(&state, item))).collect::<Vec<_>>()
    })
    .await?;
    for (topic_index, partition_index, result) in answers {
        response.topics[topic_index].partitions[partition_index] = result;
    }
    encode_response(ApiKey::DescribeProducers, frame.api_version, frame.correlation_id, &response)
}
