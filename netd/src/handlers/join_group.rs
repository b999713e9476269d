//! JoinGroup (key 11), versions 0–9: a member joins (or rejoins) a classic group. v4+ requires a
//! known member id (MEMBER_ID_REQUIRED first), v5+ carries static members' instance ids.
//!
//! The join runs on the shard that coordinates the group; the answer comes when the join phase
//! completes (`coordinators::groups::Coordinator::join`).

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{ApiKey, JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::ResponseError;

use super::group_support::{later, text};
use super::Reply;
use crate::clock::now_ms;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::coordinators::groups::{JoinAnswer, JoinRequest};
use crate::runtime::context::ShardContext;

fn client_host(frame: &Frame) -> String {
    frame.peer.map(|peer| format!("/{}", peer.ip())).unwrap_or_default()
}

pub async fn handle(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
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
