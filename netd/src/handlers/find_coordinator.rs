//! FindCoordinator (key 10), versions 0–6: every group (and transactional id) is coordinated by
//! this broker, so the answer is this broker's advertised address; v4+ answers a batch of keys.
//! Unsupported key types are answered with INVALID_REQUEST.

use std::rc::Rc;

use kafka_protocol::messages::find_coordinator_response::Coordinator as CoordinatorEntry;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::ResponseError;

use super::group_support::text;
use super::Reply;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;

/// FindCoordinator key types: consumer groups and (answered, for later) transactions.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub async fn handle(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
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
