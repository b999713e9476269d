//! SyncGroup (key 14), versions 0–5: the leader hands out the assignment, every member waits for
//! its own, answered once the group's membership record is durable in `__consumer_offsets`
//! (`runtime::offsets::store_groups`), as in Kafka. v5+ checks and echoes the protocol type and
//! name.

use std::rc::Rc;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::ResponseError;

use super::group_support::{later, ready, text};
use super::Reply;
use crate::clock::now_ms;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::coordinators::groups::SyncAnswer;
use crate::runtime::context::ShardContext;
use crate::runtime::offsets;

pub async fn handle(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
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
            // The leader's assignment is handed out once its record is durable.
            offsets::store_groups(&shard.state);
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
