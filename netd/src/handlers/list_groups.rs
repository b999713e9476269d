//! ListGroups (key 16), versions 0–5: the groups of every shard, filtered by state (v4+) and
//! type (v5+; every group here is "classic").

use std::rc::Rc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{ApiKey, GroupId, ListGroupsRequest, ListGroupsResponse};

use super::group_support::text;
use super::{fan_out, Reply};
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;

pub async fn handle(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
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
