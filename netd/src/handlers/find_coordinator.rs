//! FindCoordinator (key 10), versions 0–6. One node: every group (and transactional id) is
//! coordinated by this broker. A cluster: the broker leading the group's `__consumer_offsets`
//! partition (created through the controller when first needed). v4+ answers a batch of keys.
//! Unsupported key types are answered with INVALID_REQUEST.

use std::rc::Rc;

use kafka_protocol::messages::find_coordinator_response::Coordinator as CoordinatorEntry;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::ResponseError;

use super::group_support::text;
use super::Reply;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;
use crate::runtime::controller;

/// FindCoordinator key types: consumer groups and (answered, for later) transactions.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

/// Where a key's coordinator is: (node, host, port) or an error code.
async fn locate(context: &ShardContext, key: &str, key_type: i8) -> Result<(i32, String, u16), i16> {
    let config = &context.config;
    let Some(image) = context.image() else {
        return Ok((config.node_id, config.advertised_host.clone(), config.advertised_port));
    };
    if key_type == KEY_TYPE_TRANSACTION {
        // Transactions come after the cluster; until then no broker coordinates them.
        return Err(ResponseError::CoordinatorNotAvailable.code());
    }
    let leader = controller::group_coordinator(context, key).await.map_err(|error| {
        tracing::debug!(%error, "no group coordinator");
        ResponseError::CoordinatorNotAvailable.code()
    })?;
    let image = context.image().unwrap_or(image);
    let broker = leader.and_then(|leader| image.brokers.get(&leader)).filter(|broker| !broker.fenced);
    match broker.and_then(|broker| broker.endpoints.first().map(|endpoint| (broker.id, endpoint))) {
        Some((id, endpoint)) => Ok((id.0, endpoint.host.clone(), endpoint.port)),
        None => Err(ResponseError::CoordinatorNotAvailable.code()),
    }
}

pub async fn handle(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
    let request: FindCoordinatorRequest = decode_body(frame)?;
    let supported = matches!(request.key_type, KEY_TYPE_GROUP | KEY_TYPE_TRANSACTION);
    let mut response = FindCoordinatorResponse::default();
    let keys: Vec<String> = if frame.api_version >= 4 {
        request.coordinator_keys.iter().map(|key| key.to_string()).collect()
    } else {
        vec![request.key.to_string()]
    };
    for key in keys {
        let located = if supported {
            locate(context, &key, request.key_type).await
        } else {
            Err(ResponseError::InvalidRequest.code())
        };
        let (node_id, host, port, error_code) = match located {
            Ok((node, host, port)) => (node, host, i32::from(port), 0),
            Err(code) => (-1, String::new(), -1, code),
        };
        let unsupported = error_code == ResponseError::InvalidRequest.code();
        let message = unsupported.then(|| text("unsupported coordinator key type"));
        if frame.api_version >= 4 {
            let mut entry = CoordinatorEntry::default();
            entry.key = text(&key);
            entry.node_id = BrokerId(node_id);
            entry.host = text(&host);
            entry.port = port;
            entry.error_code = error_code;
            entry.error_message = message;
            response.coordinators.push(entry);
        } else {
            response.node_id = BrokerId(node_id);
            response.host = text(&host);
            response.port = port;
            response.error_code = error_code;
            if frame.api_version >= 1 {
                response.error_message = message;
            }
        }
    }
    Ok(Reply::Now(encode_response(ApiKey::FindCoordinator, frame.api_version, frame.correlation_id, &response)?))
}
