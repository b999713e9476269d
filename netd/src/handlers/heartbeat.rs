//! Heartbeat (key 12), versions 0–4: keeps a member's session alive and tells it when the group
//! rebalances (REBALANCE_IN_PROGRESS).

use std::rc::Rc;

use kafka_protocol::messages::{ApiKey, HeartbeatRequest, HeartbeatResponse};

use super::group_support::{later, ready};
use super::Reply;
use crate::clock::now_ms;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;

pub async fn handle(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
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
