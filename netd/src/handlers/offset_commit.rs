//! OffsetCommit (key 8), versions 2–10: a group's committed offsets. Partitions the catalog does
//! not know and oversized metadata are refused here; the coordinating shard checks the member
//! and generation, and `runtime::offsets::persist` makes the offsets durable in the group's
//! `__consumer_offsets` partition before they count; the answer comes then, like a produce's.
//! v10 names topics by id only (KIP-848): the catalog turns the id into the name the coordinator
//! stores offsets by (`__consumer_offsets` records name topics, as Kafka's do), and an id no topic
//! has is UNKNOWN_TOPIC_ID for each of its partitions.

use std::rc::Rc;

use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError;

use super::group_support::{later, ready};
use super::Reply;
use crate::clock::now_ms;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::coordinators::groups::store::{CommittedOffset, OffsetRecord};
use crate::coordinators::groups::{CommitCheck, OFFSET_METADATA_BYTES_MAX};
use crate::runtime::context::ShardContext;
use crate::runtime::offsets;

/// The first version that names topics by id, and no longer by name.
pub const OFFSET_COMMIT_VERSION_TOPIC_IDS: i16 = 10;

pub async fn handle(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
    let request: OffsetCommitRequest = decode_body(frame)?;
    let version = frame.api_version;
    let group = request.group_id.to_string();
    let catalog = context.catalog();
    let now = now_ms();
    let mut response = OffsetCommitResponse::default();
    // (topic index, partition index) of the partitions forwarded to the coordinator.
    let mut forwarded: Vec<(usize, usize)> = Vec::new();
    let mut records: Vec<OffsetRecord> = Vec::new();
    let by_id = version >= OFFSET_COMMIT_VERSION_TOPIC_IDS;
    for (topic_index, topic) in request.topics.iter().enumerate() {
        let mut topic_response = OffsetCommitResponseTopic::default();
        topic_response.name = topic.name.clone();
        topic_response.topic_id = topic.topic_id;
        // v10: the topic the id names (None: no topic has it); before, the name asked for.
        let name = if by_id { catalog.topic_named_by(topic.topic_id.as_bytes()) } else { Some(topic.name.as_str()) };
        let partitions = name.and_then(|name| catalog.partitions(name));
        for (partition_index, partition) in topic.partitions.iter().enumerate() {
            let mut result = OffsetCommitResponsePartition::default();
            result.partition_index = partition.partition_index;
            let metadata = partition.committed_metadata.as_ref().map(|text| text.to_string()).unwrap_or_default();
            let Some(name) = name else {
                result.error_code = ResponseError::UnknownTopicId.code();
                topic_response.partitions.push(result);
                continue;
            };
            if partitions.is_none_or(|count| partition.partition_index < 0 || partition.partition_index >= count) {
                result.error_code = ResponseError::UnknownTopicOrPartition.code();
            } else if metadata.len() > OFFSET_METADATA_BYTES_MAX {
                result.error_code = ResponseError::OffsetMetadataTooLarge.code();
            } else {
                forwarded.push((topic_index, partition_index));
                records.push(OffsetRecord {
                    group: group.clone(),
                    topic: name.to_string(),
                    partition: partition.partition_index,
                    value: Some(CommittedOffset {
                        offset: partition.committed_offset,
                        leader_epoch: if version >= 6 { partition.committed_leader_epoch } else { -1 },
                        metadata,
                        commit_timestamp_ms: now,
                    }),
                });
            }
            topic_response.partitions.push(result);
        }
        response.topics.push(topic_response);
    }
    if group.is_empty() {
        for (topic_index, partition_index) in forwarded.drain(..) {
            response.topics[topic_index].partitions[partition_index].error_code = ResponseError::InvalidGroupId.code();
        }
        records.clear();
    }
    let member_id = request.member_id.to_string();
    let instance_id = request.group_instance_id.as_ref().map(|id| id.to_string());
    let generation = request.generation_id_or_member_epoch;
    let unknown_group =
        if version >= 9 { ResponseError::GroupIdNotFound.code() } else { ResponseError::IllegalGeneration.code() };
    let pending = context
        .submit(context.group_owner(&group), move |shard| {
            let check = shard.state.borrow_mut().groups.check_commit(
                &group,
                generation,
                &member_id,
                instance_id.as_deref(),
                now,
                unknown_group,
            );
            if let CommitCheck::Refused(error) = check {
                return ready(error);
            }
            offsets::persist(&shard.state, &group, records)
        })
        .await?;
    let correlation_id = frame.correlation_id;
    Ok(later(pending, move |error: i16| {
        for (topic_index, partition_index) in forwarded {
            response.topics[topic_index].partitions[partition_index].error_code = error;
        }
        encode_response(ApiKey::OffsetCommit, version, correlation_id, &response)
    }))
}
