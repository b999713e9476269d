//! OffsetDelete (key 47), version 0: deletes a group's committed offsets for some partitions,
//! unless an active consumer group still subscribes to their topic (GROUP_SUBSCRIBED_TO_TOPIC).
//! The offsets are tombstoned and dropped from memory once durable.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{
    ApiKey, ConsumerProtocolSubscription, OffsetDeleteRequest, OffsetDeleteResponse, TopicName,
};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::ResponseError;

use super::group_support::{later, ready, text, tombstones};
use super::Reply;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::coordinators::groups::GroupState;
use crate::runtime::context::ShardContext;
use crate::runtime::offsets;

/// Per topic, per partition error codes of an OffsetDelete.
type DeleteResults = (i16, Vec<(String, Vec<(i32, i16)>)>);

/// The topics a consumer-protocol member subscribes to (empty if its metadata is not that).
fn subscribed_topics(metadata: &Bytes) -> Vec<String> {
    let mut bytes = metadata.clone();
    if bytes.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]).clamp(0, 3);
    let _ = bytes::Buf::get_i16(&mut bytes);
    ConsumerProtocolSubscription::decode(&mut bytes, version)
        .map(|subscription| subscription.topics.iter().map(|topic| topic.to_string()).collect())
        .unwrap_or_default()
}

pub async fn handle(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
    let request: OffsetDeleteRequest = decode_body(frame)?;
    let group = request.group_id.to_string();
    let catalog = context.catalog();
    let asked: Vec<(String, Vec<i32>)> = request
        .topics
        .iter()
        .map(|topic| {
            (topic.name.to_string(), topic.partitions.iter().map(|partition| partition.partition_index).collect())
        })
        .collect();
    let known_partitions: Vec<(String, Option<i32>)> =
        asked.iter().map(|(topic, _)| (topic.clone(), catalog.partitions(topic))).collect();
    let pending = context
        .submit(context.group_owner(&group), move |shard| {
            // (group error, per topic per partition errors)
            let (group_error, results, keys) = {
                let broker = shard.state.borrow();
                if let Some(error) = broker.groups.coordinated_elsewhere(&group) {
                    return ready((error, Vec::new()));
                }
                let Some(known) = broker.groups.groups.get(&group) else {
                    return ready((ResponseError::GroupIdNotFound.code(), Vec::new()));
                };
                let active = known.state != GroupState::Empty;
                if active && known.protocol_type.as_deref() != Some("consumer") {
                    return ready((ResponseError::NonEmptyGroup.code(), Vec::new()));
                }
                let protocol = known.protocol_name.clone().unwrap_or_default();
                let subscribed: Vec<String> = if active {
                    known.members.values().flat_map(|member| subscribed_topics(&member.metadata(&protocol))).collect()
                } else {
                    Vec::new()
                };
                let mut keys = Vec::new();
                let results: Vec<(String, Vec<(i32, i16)>)> = asked
                    .into_iter()
                    .zip(known_partitions)
                    .map(|((topic, partitions), (_, count))| {
                        let errors = partitions
                            .into_iter()
                            .map(|partition| {
                                let error = if count.is_none_or(|count| partition < 0 || partition >= count) {
                                    ResponseError::UnknownTopicOrPartition.code()
                                } else if subscribed.contains(&topic) {
                                    ResponseError::GroupSubscribedToTopic.code()
                                } else {
                                    if known.offsets.contains_key(&(topic.clone(), partition)) {
                                        keys.push((topic.clone(), partition));
                                    }
                                    0
                                };
                                (partition, error)
                            })
                            .collect();
                        (topic, errors)
                    })
                    .collect();
                (0i16, results, keys)
            };
            let stored = offsets::persist(&shard.state, &group, tombstones(&group, keys));
            Box::pin(async move {
                let error = stored.await;
                if error != 0 {
                    return (error, Vec::new());
                }
                (group_error, results)
            })
        })
        .await?;
    let (version, correlation_id) = (frame.api_version, frame.correlation_id);
    Ok(later(pending, move |(error, results): DeleteResults| {
        let mut response = OffsetDeleteResponse::default();
        response.error_code = error;
        response.topics = results
            .into_iter()
            .map(|(topic, partitions)| {
                let mut entry = OffsetDeleteResponseTopic::default();
                entry.name = TopicName(text(&topic));
                entry.partitions = partitions
                    .into_iter()
                    .map(|(partition, error)| {
                        let mut item = OffsetDeleteResponsePartition::default();
                        item.partition_index = partition;
                        item.error_code = error;
                        item
                    })
                    .collect();
                entry
            })
            .collect();
        encode_response(ApiKey::OffsetDelete, version, correlation_id, &response)
    }))
}
