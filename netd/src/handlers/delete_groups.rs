//! DeleteGroups (key 42), versions 0–2: deletes Empty groups (NON_EMPTY_GROUP otherwise),
//! tombstoning their committed offsets and their membership record; a group is forgotten once
//! its tombstones are durable.

use std::rc::Rc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{ApiKey, DeleteGroupsRequest, DeleteGroupsResponse, GroupId};
use kafka_protocol::ResponseError;

use super::group_support::{ready, text, tombstones};
use super::Reply;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::coordinators::groups::store::{GroupRecord, Record};
use crate::coordinators::groups::GroupState;
use crate::runtime::context::ShardContext;
use crate::runtime::offsets;

pub async fn handle(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
    let request: DeleteGroupsRequest = decode_body(frame)?;
    let mut pending = Vec::new();
    for group in &request.groups_names {
        let group = group.to_string();
        let name = group.clone();
        let work = context
            .submit(context.group_owner(&group), move |shard| {
                // A membership record still queued goes before the tombstone, not after it.
                offsets::store_groups(&shard.state);
                let keys = {
                    let broker = shard.state.borrow();
                    if let Some(error) = broker.groups.coordinated_elsewhere(&group) {
                        return ready(error);
                    }
                    match broker.groups.groups.get(&group) {
                        None => return ready(ResponseError::GroupIdNotFound.code()),
                        Some(known) if known.state != GroupState::Empty => {
                            return ready(ResponseError::NonEmptyGroup.code())
                        }
                        Some(known) => known.offsets.keys().cloned().collect::<Vec<_>>(),
                    }
                };
                let shard = shard.clone();
                let mut records: Vec<Record> = tombstones(&group, keys).into_iter().map(Record::from).collect();
                records.push(GroupRecord { group: group.clone(), value: None }.into());
                let stored = offsets::persist(&shard.state, &group, records);
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
