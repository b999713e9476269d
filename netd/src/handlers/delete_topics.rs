//! DeleteTopics (key 20), versions 1–5 (by name; topic ids arrive with v6).

use bytes::Bytes;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse};

use super::str_bytes;
use crate::codec::errors::topic_error_code;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;
use crate::runtime::controller;

pub async fn handle(context: &ShardContext, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: DeleteTopicsRequest = decode_body(frame)?;
    let mut response = DeleteTopicsResponse::default();
    for name in &request.topic_names {
        let mut result = DeletableTopicResult::default();
        result.name = Some(name.clone());
        if let Err(error) = controller::delete_topic(context, name.as_str()).await {
            result.error_code = topic_error_code(&error);
            result.error_message = Some(str_bytes(&error.to_string()));
        }
        response.responses.push(result);
    }
    encode_response(ApiKey::DeleteTopics, frame.api_version, frame.correlation_id, &response)
}
