//! LeaveGroup (key 13), versions 0–5: one member leaves (v0–2), or a batch of members, static
//! ones by instance id, with an error per member (v3+).

use std::rc::Rc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{ApiKey, LeaveGroupRequest, LeaveGroupResponse};

use super::group_support::{later, ready, text};
use super::Reply;
use crate::clock::now_ms;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;
use crate::runtime::offsets;

pub async fn handle(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
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
            let results: Vec<(String, Option<String>, i16)> = {
                let mut broker = shard.state.borrow_mut();
                leaving
                    .into_iter()
                    .map(|(member_id, instance_id)| {
                        let error = broker.groups.leave(&group, &member_id, instance_id.as_deref(), now_ms());
                        (member_id, instance_id, error)
                    })
                    .collect()
            };
            // A group the last member left is recorded Empty.
            offsets::store_groups(&shard.state);
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
