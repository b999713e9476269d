//! OffsetFetch (key 9), versions 1–10: a group's committed offsets, for the asked partitions or
//! all the group has; v8+ asks for several groups at once. Each group is answered by the shard
//! that coordinates it; in a cluster, a group another broker coordinates is NOT_COORDINATOR
//! (per group from v8, for the whole response from v2, per partition in v1, as Kafka answers).
//! v10 names topics by id only (KIP-848): the catalog turns asked ids into the names offsets are
//! stored by, and names back into ids in the answer. As in Kafka, an asked id no topic has is
//! UNKNOWN_TOPIC_ID for each partition, listed after the topics the coordinator answered; a topic
//! the group has offsets for but that no longer exists (no id) is left out of an all-topics answer.

use std::rc::Rc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{ApiKey, GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::ResponseError;

use super::group_support::{ready, text};
use super::Reply;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::coordinators::groups::store::CommittedOffset;
use crate::runtime::context::ShardContext;

/// Topics and partitions asked for; `None` means all the group has.
type AskedTopics = Option<Vec<(String, Vec<i32>)>>;

/// One group's committed offsets for the asked partitions (`None`: all it has), or the error
/// code with the asked partitions (v1 names the error in each).
type FetchedOffsets = Result<Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>, (i16, AskedTopics)>;

fn fetch_offsets(shard: &ShardContext, group: &str, topics: AskedTopics) -> FetchedOffsets {
    let broker = shard.state.borrow();
    if let Some(error) = broker.groups.coordinated_elsewhere(group) {
        return Err((error, topics));
    }
    let known = broker.groups.groups.get(group);
    Ok(match topics {
        Some(topics) => topics
            .into_iter()
            .map(|(topic, partitions)| {
                let found = partitions
                    .into_iter()
                    .map(|partition| {
                        let offset = known.and_then(|group| group.offsets.get(&(topic.clone(), partition))).cloned();
                        (partition, offset)
                    })
                    .collect();
                (topic, found)
            })
            .collect(),
        None => {
            let mut by_topic: std::collections::BTreeMap<String, Vec<(i32, Option<CommittedOffset>)>> =
                Default::default();
            if let Some(group) = known {
                for ((topic, partition), offset) in &group.offsets {
                    by_topic.entry(topic.clone()).or_default().push((*partition, Some(offset.clone())));
                }
            }
            by_topic.into_iter().collect()
        }
    })
}

/// The first version that names topics by id, and no longer by name.
pub const OFFSET_FETCH_VERSION_TOPIC_IDS: i16 = 10;

/// Asked topic ids no topic has, with their asked partitions (answered UNKNOWN_TOPIC_ID).
type UnknownIds = Vec<(uuid::Uuid, Vec<i32>)>;

pub async fn handle(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
    let request: OffsetFetchRequest = decode_body(frame)?;
    let version = frame.api_version;
    let by_id = version >= OFFSET_FETCH_VERSION_TOPIC_IDS;
    let catalog = context.catalog();
    // (group, asked topics, asked ids no topic has) for every group of the request.
    let asked: Vec<(String, AskedTopics, UnknownIds)> = if version >= 8 {
        request
            .groups
            .iter()
            .map(|group| {
                let mut unknown_ids = Vec::new();
                let topics = group.topics.as_ref().map(|topics| {
                    let mut named = Vec::with_capacity(topics.len());
                    for topic in topics {
                        let name = if by_id {
                            catalog.topic_named_by(topic.topic_id.as_bytes())
                        } else {
                            Some(topic.name.as_str())
                        };
                        match name {
                            Some(name) => named.push((name.to_string(), topic.partition_indexes.clone())),
                            None => unknown_ids.push((topic.topic_id, topic.partition_indexes.clone())),
                        }
                    }
                    named
                });
                (group.group_id.to_string(), topics, unknown_ids)
            })
            .collect()
    } else {
        let topics = request.topics.as_ref().map(|topics| {
            topics.iter().map(|topic| (topic.name.to_string(), topic.partition_indexes.clone())).collect()
        });
        vec![(request.group_id.to_string(), topics, Vec::new())]
    };
    let mut pending = Vec::new();
    for (group, topics, unknown_ids) in asked {
        let name = group.clone();
        pending.push((
            name,
            unknown_ids,
            context
                .submit(context.group_owner(&group), move |shard| ready(fetch_offsets(shard, &group, topics)))
                .await?,
        ));
    }
    let correlation_id = frame.correlation_id;
    let context = Rc::clone(context);
    Ok(Reply::Later(Box::pin(async move {
        let mut response = OffsetFetchResponse::default();
        for (group, unknown_ids, answer) in pending {
            let fetched = match answer.await? {
                Ok(fetched) => fetched,
                Err((error, _)) if version >= 8 => {
                    let mut entry = OffsetFetchResponseGroup::default();
                    entry.group_id = GroupId(text(&group));
                    entry.error_code = error;
                    response.groups.push(entry);
                    continue;
                }
                Err((error, _)) if version >= 2 => {
                    response.error_code = error;
                    continue;
                }
                Err((error, asked)) => {
                    // v1 has no response-level error: every asked partition carries it.
                    let unknown = asked.unwrap_or_default().into_iter().map(|(topic, partitions)| {
                        (topic, partitions.into_iter().map(|partition| (partition, None)).collect())
                    });
                    response.topics = topics_before_v8(unknown, version, error);
                    continue;
                }
            };
            if version >= 8 {
                // v10 answers by id: the catalog's now (a topic deleted since has none).
                let catalog = context.catalog();
                let mut entry = OffsetFetchResponseGroup::default();
                entry.group_id = GroupId(text(&group));
                entry.topics = fetched
                    .into_iter()
                    .filter_map(|(topic, partitions)| {
                        let mut topic_entry = OffsetFetchResponseTopics::default();
                        if by_id {
                            topic_entry.topic_id = uuid::Uuid::from_bytes(catalog.topic_id(&topic)?);
                        } else {
                            topic_entry.name = TopicName(text(&topic));
                        }
                        topic_entry.partitions = partitions
                            .into_iter()
                            .map(|(partition, offset)| {
                                let mut item = OffsetFetchResponsePartitions::default();
                                item.partition_index = partition;
                                item.committed_offset = offset.as_ref().map_or(-1, |offset| offset.offset);
                                item.committed_leader_epoch = offset.as_ref().map_or(-1, |offset| offset.leader_epoch);
                                item.metadata =
                                    Some(text(offset.as_ref().map_or("", |offset| offset.metadata.as_str())));
                                item
                            })
                            .collect();
                        Some(topic_entry)
                    })
                    .collect();
                entry.topics.extend(unknown_ids.into_iter().map(|(topic_id, partitions)| {
                    let mut topic_entry = OffsetFetchResponseTopics::default();
                    topic_entry.topic_id = topic_id;
                    topic_entry.partitions = partitions
                        .into_iter()
                        .map(|partition| {
                            let mut item = OffsetFetchResponsePartitions::default();
                            item.partition_index = partition;
                            item.committed_offset = -1;
                            item.metadata = Some(text(""));
                            item.error_code = ResponseError::UnknownTopicId.code();
                            item
                        })
                        .collect();
                    topic_entry
                }));
                response.groups.push(entry);
            } else {
                response.topics = topics_before_v8(fetched, version, 0);
            }
        }
        Ok(Some(vec![encode_response(ApiKey::OffsetFetch, version, correlation_id, &response)?]))
    })))
}

/// The response topics of versions 1–7, every partition with `error_code`.
fn topics_before_v8(
    fetched: impl IntoIterator<Item = (String, Vec<(i32, Option<CommittedOffset>)>)>,
    version: i16,
    error_code: i16,
) -> Vec<OffsetFetchResponseTopic> {
    fetched
        .into_iter()
        .map(|(topic, partitions)| {
            let mut topic_entry = OffsetFetchResponseTopic::default();
            topic_entry.name = TopicName(text(&topic));
            topic_entry.partitions = partitions
                .into_iter()
                .map(|(partition, offset)| {
                    let mut item = OffsetFetchResponsePartition::default();
                    item.partition_index = partition;
                    item.committed_offset = offset.as_ref().map_or(-1, |offset| offset.offset);
                    if version >= 5 {
                        item.committed_leader_epoch = offset.as_ref().map_or(-1, |offset| offset.leader_epoch);
                    }
                    item.metadata = Some(text(offset.as_ref().map_or("", |offset| offset.metadata.as_str())));
                    item.error_code = error_code;
                    item
                })
                .collect();
            topic_entry
        })
        .collect()
}
