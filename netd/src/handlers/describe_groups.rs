//! DescribeGroups (key 15), versions 0–5: a group's state, protocol and members (their
//! assignments only once the group is Stable). Each group is answered by the shard that
//! coordinates it; in a cluster, a group another broker coordinates is NOT_COORDINATOR.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{ApiKey, DescribeGroupsRequest, DescribeGroupsResponse, GroupId};

use super::group_support::{ready, text};
use super::Reply;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::coordinators::groups::GroupState;
use crate::runtime::context::ShardContext;

/// `authorized_operations` when the client did not ask for them.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

/// What DescribeGroups shows of one group, or its error code.
type Description = Result<(String, String, String, Vec<(String, Option<String>, String, String, Bytes, Bytes)>), i16>;

fn describe(shard: &ShardContext, group: &str) -> Description {
    let broker = shard.state.borrow();
    if let Some(error) = broker.groups.coordinated_elsewhere(group) {
        return Err(error);
    }
    let Some(known) = broker.groups.groups.get(group) else {
        return Ok(("Dead".to_string(), String::new(), String::new(), Vec::new()));
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
    Ok((known.state.name().to_string(), known.protocol_type.clone().unwrap_or_default(), protocol, members))
}

pub async fn handle(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
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
            let mut group = DescribedGroup::default();
            group.group_id = GroupId(text(&group_id));
            group.authorized_operations = OPERATIONS_NOT_REQUESTED;
            let (state, protocol_type, protocol, members) = match answer.await? {
                Ok(description) => description,
                Err(error) => {
                    // Kafka's answer for a group it cannot describe: the code, every field empty.
                    group.error_code = error;
                    response.groups.push(group);
                    continue;
                }
            };
            group.group_state = text(&state);
            group.protocol_type = text(&protocol_type);
            group.protocol_data = text(&protocol);
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
