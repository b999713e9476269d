//! The group coordinator APIs: FindCoordinator (10), JoinGroup (11), Heartbeat (12), LeaveGroup
//! (13), SyncGroup (14), DescribeGroups (15), ListGroups (16), OffsetCommit (8), OffsetFetch (9),
//! DeleteGroups (42), OffsetDelete (47) — the classic protocol, both the old non-flexible
//! versions librdkafka sends and the newest the Java client sends.
//!
//! Owns: decoding each request, sending it to the shard that coordinates the group
//! (`ShardContext::group_owner`), and encoding the answer. The state machine is `groups/`; the
//! durable offsets are appended to the group's `__consumer_offsets` partition and acknowledged
//! after its group commit, like any produce.

use std::rc::Rc;

use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator as CoordinatorEntry;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ConsumerProtocolSubscription, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;

use super::{fan_out, str_bytes, Reply};
use crate::clock::now_ms;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::coordinators::groups::store::{CommittedOffset, OffsetRecord};
use crate::coordinators::groups::{
    CommitCheck, GroupState, JoinAnswer, JoinRequest, SyncAnswer, OFFSET_METADATA_BYTES_MAX,
};
use crate::runtime::context::{Pending, ShardContext};

/// FindCoordinator key types: consumer groups and (answered, for later) transactions.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;
/// `authorized_operations` when the client did not ask for them.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

fn text(value: &str) -> StrBytes {
    str_bytes(value)
}

fn later<T: 'static>(pending: Pending<T>, encode: impl FnOnce(T) -> anyhow::Result<Bytes> + 'static) -> Reply {
    Reply::Later(Box::pin(async move {
        let answer = pending.await?;
        Ok(Some(vec![encode(answer)?]))
    }))
}

fn ready<T: 'static>(value: T) -> LocalBoxFuture<'static, T> {
    Box::pin(std::future::ready(value))
}

fn client_host(frame: &Frame) -> String {
    frame.peer.map(|peer| format!("/{}", peer.ip())).unwrap_or_default()
}

pub async fn find_coordinator(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
    let request: FindCoordinatorRequest = decode_body(frame)?;
    let config = &context.config;
    let supported = matches!(request.key_type, KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION);
    let mut response = FindCoordinatorResponse::default();
    if frame.api_version >= 4 {
        for key in &request.coordinator_keys {
            let mut entry = CoordinatorEntry::default();
            entry.key = key.clone();
            if supported {
                entry.node_id = BrokerId(config.node_id);
                entry.host = text(&config.advertised_host);
                entry.port = i32::from(config.advertised_port);
            } else {
                entry.node_id = BrokerId(-1);
                entry.port = -1;
                entry.error_code = ResponseError::InvalidRequest.code();
                entry.error_message = Some(text("unsupported coordinator key type"));
            }
            response.coordinators.push(entry);
        }
    } else if supported {
        response.node_id = BrokerId(config.node_id);
        response.host = text(&config.advertised_host);
        response.port = i32::from(config.advertised_port);
    } else {
        response.node_id = BrokerId(-1);
        response.port = -1;
        response.error_code = ResponseError::InvalidRequest.code();
        if frame.api_version >= 1 {
            response.error_message = Some(text("unsupported coordinator key type"));
        }
    }
    Ok(Reply::Now(encode_response(ApiKey::FindCoordinator, frame.api_version, frame.correlation_id, &response)?))
}

pub async fn join_group(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
    let request: JoinGroupRequest = decode_body(frame)?;
    let version = frame.api_version;
    let group = request.group_id.to_string();
    let join = JoinRequest {
        group: group.clone(),
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|id| id.to_string()),
        client_id: frame.client_id.clone().unwrap_or_default(),
        client_host: client_host(frame),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version == 0 || request.rebalance_timeout_ms < 0 {
            request.session_timeout_ms
        } else {
            request.rebalance_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            // Copied: the member keeps it, and a slice would pin the whole request frame (and its
            // queued.max.request.bytes charge) for the member's lifetime.
            .map(|protocol| (protocol.name.to_string(), Bytes::copy_from_slice(&protocol.metadata)))
            .collect(),
        require_known_member_id: version >= 4,
    };
    let pending = context
        .submit(context.group_owner(&group), move |shard| {
            let member_id = join.member_id.clone();
            let receiver = shard.state.borrow_mut().groups.join(join, now_ms());
            Box::pin(async move {
                receiver
                    .await
                    .unwrap_or_else(|_| JoinAnswer::error(ResponseError::CoordinatorNotAvailable.code(), &member_id))
            })
        })
        .await?;
    let correlation_id = frame.correlation_id;
    Ok(later(pending, move |answer: JoinAnswer| {
        let mut response = JoinGroupResponse::default();
        response.error_code = answer.error;
        response.generation_id = answer.generation;
        response.protocol_type = answer.protocol_type.as_deref().map(text);
        response.protocol_name = match (answer.protocol_name.as_deref(), version) {
            (Some(name), _) => Some(text(name)),
            (None, version) if version < 7 => Some(text("")),
            (None, _) => None,
        };
        response.leader = text(&answer.leader);
        response.member_id = text(&answer.member_id);
        response.members = answer
            .members
            .into_iter()
            .map(|(member_id, instance_id, metadata)| {
                let mut member = JoinGroupResponseMember::default();
                member.member_id = text(&member_id);
                if version >= 5 {
                    member.group_instance_id = instance_id.as_deref().map(text);
                }
                member.metadata = metadata;
                member
            })
            .collect();
        encode_response(ApiKey::JoinGroup, version, correlation_id, &response)
    }))
}

pub async fn sync_group(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
    let request: SyncGroupRequest = decode_body(frame)?;
    let version = frame.api_version;
    let group = request.group_id.to_string();
    let member_id = request.member_id.to_string();
    let instance_id = request.group_instance_id.as_ref().map(|id| id.to_string());
    let generation = request.generation_id;
    let asked = (
        request.protocol_type.as_ref().map(|name| name.to_string()),
        request.protocol_name.as_ref().map(|name| name.to_string()),
    );
    let assignments: Vec<(String, Bytes)> = request
        .assignments
        .iter()
        // Copied, as the protocols of a JoinGroup are: the group keeps the assignments.
        .map(|assignment| (assignment.member_id.to_string(), Bytes::copy_from_slice(&assignment.assignment)))
        .collect();
    let pending = context
        .submit(context.group_owner(&group), move |shard| {
            let receiver = {
                let mut broker = shard.state.borrow_mut();
                let known = broker
                    .groups
                    .groups
                    .get(&group)
                    .map(|known| (known.protocol_type.clone(), known.protocol_name.clone()));
                let inconsistent = match (&asked, known) {
                    ((Some(kind), _), Some((Some(known_kind), _))) if *kind != known_kind => true,
                    ((_, Some(name)), Some((_, Some(known_name)))) if *name != known_name => true,
                    _ => false,
                };
                if inconsistent {
                    return ready(SyncAnswer {
                        error: ResponseError::InconsistentGroupProtocol.code(),
                        ..SyncAnswer::default()
                    });
                }
                broker.groups.sync(&group, generation, &member_id, instance_id.as_deref(), assignments, now_ms())
            };
            Box::pin(async move {
                receiver.await.unwrap_or(SyncAnswer {
                    error: ResponseError::CoordinatorNotAvailable.code(),
                    ..SyncAnswer::default()
                })
            })
        })
        .await?;
    let correlation_id = frame.correlation_id;
    Ok(later(pending, move |answer: SyncAnswer| {
        let mut response = SyncGroupResponse::default();
        response.error_code = answer.error;
        if version >= 5 {
            response.protocol_type = answer.protocol_type.as_deref().map(text);
            response.protocol_name = answer.protocol_name.as_deref().map(text);
        }
        response.assignment = answer.assignment;
        encode_response(ApiKey::SyncGroup, version, correlation_id, &response)
    }))
}

pub async fn heartbeat(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
    let request: HeartbeatRequest = decode_body(frame)?;
    let group = request.group_id.to_string();
    let member_id = request.member_id.to_string();
    let instance_id = request.group_instance_id.as_ref().map(|id| id.to_string());
    let generation = request.generation_id;
    let pending = context
        .submit(context.group_owner(&group), move |shard| {
            ready(shard.state.borrow_mut().groups.heartbeat(
                &group,
                generation,
                &member_id,
                instance_id.as_deref(),
                now_ms(),
            ))
        })
        .await?;
    let (version, correlation_id) = (frame.api_version, frame.correlation_id);
    Ok(later(pending, move |error: i16| {
        let mut response = HeartbeatResponse::default();
        response.error_code = error;
        encode_response(ApiKey::Heartbeat, version, correlation_id, &response)
    }))
}

pub async fn leave_group(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
    let request: LeaveGroupRequest = decode_body(frame)?;
    let version = frame.api_version;
    let group = request.group_id.to_string();
    let leaving: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|member| (member.member_id.to_string(), member.group_instance_id.as_ref().map(|id| id.to_string())))
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let pending = context
        .submit(context.group_owner(&group), move |shard| {
            let mut broker = shard.state.borrow_mut();
            let results: Vec<(String, Option<String>, i16)> = leaving
                .into_iter()
                .map(|(member_id, instance_id)| {
                    let error = broker.groups.leave(&group, &member_id, instance_id.as_deref(), now_ms());
                    (member_id, instance_id, error)
                })
                .collect();
            ready(results)
        })
        .await?;
    let correlation_id = frame.correlation_id;
    Ok(later(pending, move |results: Vec<(String, Option<String>, i16)>| {
        let mut response = LeaveGroupResponse::default();
        if version >= 3 {
            response.members = results
                .into_iter()
                .map(|(member_id, instance_id, error)| {
                    let mut member = MemberResponse::default();
                    member.member_id = text(&member_id);
                    member.group_instance_id = instance_id.as_deref().map(text);
                    member.error_code = error;
                    member
                })
                .collect();
        } else {
            response.error_code = results.first().map_or(0, |(_, _, error)| *error);
        }
        encode_response(ApiKey::LeaveGroup, version, correlation_id, &response)
    }))
}

pub async fn offset_commit(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
    let request: OffsetCommitRequest = decode_body(frame)?;
    let version = frame.api_version;
    let group = request.group_id.to_string();
    let catalog = context.catalog();
    let now = now_ms();
    let mut response = OffsetCommitResponse::default();
    // (topic index, partition index) of the partitions forwarded to the coordinator.
    let mut forwarded: Vec<(usize, usize)> = Vec::new();
    let mut records: Vec<OffsetRecord> = Vec::new();
    for (topic_index, topic) in request.topics.iter().enumerate() {
        let mut topic_response = OffsetCommitResponseTopic::default();
        topic_response.name = topic.name.clone();
        let partitions = catalog.partitions(topic.name.as_str());
        for (partition_index, partition) in topic.partitions.iter().enumerate() {
            let mut result = OffsetCommitResponsePartition::default();
            result.partition_index = partition.partition_index;
            let metadata = partition.committed_metadata.as_ref().map(|text| text.to_string()).unwrap_or_default();
            if partitions.is_none_or(|count| partition.partition_index < 0 || partition.partition_index >= count) {
                result.error_code = ResponseError::UnknownTopicOrPartition.code();
            } else if metadata.len() > OFFSET_METADATA_BYTES_MAX {
                result.error_code = ResponseError::OffsetMetadataTooLarge.code();
            } else {
                forwarded.push((topic_index, partition_index));
                records.push(OffsetRecord {
                    group: group.clone(),
                    topic: topic.name.to_string(),
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
            let shard = shard.clone();
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
            if records.is_empty() {
                return ready(0);
            }
            let appended = shard.state.borrow_mut().append_offsets(&group, &records);
            match appended {
                Err(error) => ready(crate::codec::errors::offsets_error_code(&error)),
                Ok(ack) => Box::pin(async move {
                    let error = ack.await.map_or_else(|error| crate::codec::errors::offsets_error_code(&error), |()| 0);
                    if error == 0 {
                        let mut broker = shard.state.borrow_mut();
                        for record in records {
                            broker.groups.apply(record, now);
                        }
                    }
                    error
                }),
            }
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

/// Topics and partitions asked for; `None` means all the group has.
type AskedTopics = Option<Vec<(String, Vec<i32>)>>;
/// Per topic, per partition error codes of an OffsetDelete.
type DeleteResults = (i16, Vec<(String, Vec<(i32, i16)>)>);

/// One group's committed offsets for the asked partitions (`None`: all it has).
type FetchedOffsets = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;

fn fetch_offsets(shard: &ShardContext, group: &str, topics: AskedTopics) -> FetchedOffsets {
    let broker = shard.state.borrow();
    let known = broker.groups.groups.get(group);
    match topics {
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
    }
}

pub async fn offset_fetch(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
    let request: OffsetFetchRequest = decode_body(frame)?;
    let version = frame.api_version;
    // (group, asked topics) for every group of the request.
    let asked: Vec<(String, AskedTopics)> = if version >= 8 {
        request
            .groups
            .iter()
            .map(|group| {
                let topics = group.topics.as_ref().map(|topics| {
                    topics.iter().map(|topic| (topic.name.to_string(), topic.partition_indexes.clone())).collect()
                });
                (group.group_id.to_string(), topics)
            })
            .collect()
    } else {
        let topics = request.topics.as_ref().map(|topics| {
            topics.iter().map(|topic| (topic.name.to_string(), topic.partition_indexes.clone())).collect()
        });
        vec![(request.group_id.to_string(), topics)]
    };
    let mut pending = Vec::new();
    for (group, topics) in asked {
        let name = group.clone();
        pending.push((
            name,
            context
                .submit(context.group_owner(&group), move |shard| ready(fetch_offsets(shard, &group, topics)))
                .await?,
        ));
    }
    let correlation_id = frame.correlation_id;
    Ok(Reply::Later(Box::pin(async move {
        let mut response = OffsetFetchResponse::default();
        for (group, answer) in pending {
            let fetched = answer.await?;
            if version >= 8 {
                let mut entry = OffsetFetchResponseGroup::default();
                entry.group_id = GroupId(text(&group));
                entry.topics = fetched
                    .into_iter()
                    .map(|(topic, partitions)| {
                        let mut topic_entry = OffsetFetchResponseTopics::default();
                        topic_entry.name = TopicName(text(&topic));
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
                        topic_entry
                    })
                    .collect();
                response.groups.push(entry);
            } else {
                response.topics = fetched
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
                                    item.committed_leader_epoch =
                                        offset.as_ref().map_or(-1, |offset| offset.leader_epoch);
                                }
                                item.metadata =
                                    Some(text(offset.as_ref().map_or("", |offset| offset.metadata.as_str())));
                                item
                            })
                            .collect();
                        topic_entry
                    })
                    .collect();
            }
        }
        Ok(Some(vec![encode_response(ApiKey::OffsetFetch, version, correlation_id, &response)?]))
    })))
}

pub async fn list_groups(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
    let request: ListGroupsRequest = decode_body(frame)?;
    let version = frame.api_version;
    let states: Vec<String> = request.states_filter.iter().map(|state| state.to_lowercase()).collect();
    let types: Vec<String> = request.types_filter.iter().map(|kind| kind.to_lowercase()).collect();
    let every_shard: Vec<(usize, ())> = (0..context.count).map(|shard| (shard, ())).collect();
    let listed = fan_out(context, every_shard, |shard: &Rc<ShardContext>, _: Vec<()>| {
        let broker = shard.state.borrow();
        broker
            .groups
            .groups
            .values()
            .map(|group| (group.id.clone(), group.protocol_type.clone().unwrap_or_default(), group.state.name()))
            .collect::<Vec<_>>()
    })
    .await?;
    let mut response = ListGroupsResponse::default();
    for (group_id, protocol_type, state) in listed {
        if !states.is_empty() && !states.contains(&state.to_lowercase()) {
            continue;
        }
        if !types.is_empty() && !types.iter().any(|kind| kind == "classic") {
            continue;
        }
        let mut group = ListedGroup::default();
        group.group_id = GroupId(text(&group_id));
        group.protocol_type = text(&protocol_type);
        if version >= 4 {
            group.group_state = text(state);
        }
        if version >= 5 {
            group.group_type = text("classic");
        }
        response.groups.push(group);
    }
    Ok(Reply::Now(encode_response(ApiKey::ListGroups, version, frame.correlation_id, &response)?))
}

/// What DescribeGroups shows of one group.
type Description = (String, String, String, Vec<(String, Option<String>, String, String, Bytes, Bytes)>);

fn describe(shard: &ShardContext, group: &str) -> Description {
    let broker = shard.state.borrow();
    let Some(known) = broker.groups.groups.get(group) else {
        return ("Dead".to_string(), String::new(), String::new(), Vec::new());
    };
    let protocol = known.protocol_name.clone().unwrap_or_default();
    let members = known
        .members
        .values()
        .map(|member| {
            (
                member.id.clone(),
                member.instance_id.clone(),
                member.client_id.clone(),
                member.client_host.clone(),
                member.metadata(&protocol),
                if known.state == GroupState::Stable { member.assignment.clone() } else { Bytes::new() },
            )
        })
        .collect();
    (known.state.name().to_string(), known.protocol_type.clone().unwrap_or_default(), protocol, members)
}

pub async fn describe_groups(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
    let request: DescribeGroupsRequest = decode_body(frame)?;
    let version = frame.api_version;
    let mut pending = Vec::new();
    for group in &request.groups {
        let group = group.to_string();
        let name = group.clone();
        pending.push((
            name,
            context.submit(context.group_owner(&group), move |shard| ready(describe(shard, &group))).await?,
        ));
    }
    let correlation_id = frame.correlation_id;
    Ok(Reply::Later(Box::pin(async move {
        let mut response = DescribeGroupsResponse::default();
        for (group_id, answer) in pending {
            let (state, protocol_type, protocol, members) = answer.await?;
            let mut group = DescribedGroup::default();
            group.group_id = GroupId(text(&group_id));
            group.group_state = text(&state);
            group.protocol_type = text(&protocol_type);
            group.protocol_data = text(&protocol);
            group.authorized_operations = OPERATIONS_NOT_REQUESTED;
            group.members = members
                .into_iter()
                .map(|(member_id, instance_id, client_id, client_host, metadata, assignment)| {
                    let mut member = DescribedGroupMember::default();
                    member.member_id = text(&member_id);
                    if version >= 4 {
                        member.group_instance_id = instance_id.as_deref().map(text);
                    }
                    member.client_id = text(&client_id);
                    member.client_host = text(&client_host);
                    member.member_metadata = metadata;
                    member.member_assignment = assignment;
                    member
                })
                .collect();
            response.groups.push(group);
        }
        Ok(Some(vec![encode_response(ApiKey::DescribeGroups, version, correlation_id, &response)?]))
    })))
}

/// Writes tombstones for `keys` of `group` and drops them from memory once durable.
fn tombstone(shard: &Rc<ShardContext>, group: &str, keys: Vec<(String, i32)>) -> LocalBoxFuture<'static, i16> {
    if keys.is_empty() {
        return ready(0);
    }
    let records: Vec<OffsetRecord> = keys
        .into_iter()
        .map(|(topic, partition)| OffsetRecord { group: group.to_string(), topic, partition, value: None })
        .collect();
    let appended = shard.state.borrow_mut().append_offsets(group, &records);
    let shard = shard.clone();
    match appended {
        Err(error) => ready(crate::codec::errors::offsets_error_code(&error)),
        Ok(ack) => Box::pin(async move {
            let error = ack.await.map_or_else(|error| crate::codec::errors::offsets_error_code(&error), |()| 0);
            if error == 0 {
                let mut broker = shard.state.borrow_mut();
                for record in records {
                    broker.groups.apply(record, now_ms());
                }
            }
            error
        }),
    }
}

pub async fn delete_groups(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
    let request: DeleteGroupsRequest = decode_body(frame)?;
    let mut pending = Vec::new();
    for group in &request.groups_names {
        let group = group.to_string();
        let name = group.clone();
        let work = context
            .submit(context.group_owner(&group), move |shard| {
                let keys = {
                    let broker = shard.state.borrow();
                    match broker.groups.groups.get(&group) {
                        None => return ready(ResponseError::GroupIdNotFound.code()),
                        Some(known) if known.state != GroupState::Empty => {
                            return ready(ResponseError::NonEmptyGroup.code())
                        }
                        Some(known) => known.offsets.keys().cloned().collect::<Vec<_>>(),
                    }
                };
                let shard = shard.clone();
                let stored = tombstone(&shard, &group, keys);
                Box::pin(async move {
                    let error = stored.await;
                    if error == 0 {
                        let mut broker = shard.state.borrow_mut();
                        if broker.groups.groups.get(&group).is_some_and(|known| known.state == GroupState::Empty) {
                            broker.groups.groups.remove(&group);
                        }
                        tracing::info!(%group, "deleted group");
                    }
                    error
                })
            })
            .await?;
        pending.push((name, work));
    }
    let (version, correlation_id) = (frame.api_version, frame.correlation_id);
    Ok(Reply::Later(Box::pin(async move {
        let mut response = DeleteGroupsResponse::default();
        for (group, answer) in pending {
            let mut result = DeletableGroupResult::default();
            result.group_id = GroupId(text(&group));
            result.error_code = answer.await?;
            response.results.push(result);
        }
        Ok(Some(vec![encode_response(ApiKey::DeleteGroups, version, correlation_id, &response)?]))
    })))
}

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

pub async fn offset_delete(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
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
            let stored = tombstone(shard, &group, keys);
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
