//! CreatePartitions (key 37), versions 0–3: grow a topic's partition count.

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{ApiKey, CreatePartitionsRequest, CreatePartitionsResponse};

use super::str_bytes;
use crate::codec::errors::{topic_error_code, TopicError};
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;
use crate::runtime::controller;

pub async fn handle(context: &ShardContext, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: CreatePartitionsRequest = decode_body(frame)?;
    let mut response = CreatePartitionsResponse::default();
    for topic in &request.topics {
        let mut result = CreatePartitionsTopicResult::default();
        result.name = topic.name.clone();
        let outcome = if topic.assignments.as_ref().is_some_and(|assignments| !assignments.is_empty()) {
            Err(TopicError::ReplicaAssignment)
        } else {
            controller::add_partitions(context, topic.name.as_str(), topic.count, request.validate_only).await
        };
        if let Err(error) = outcome {
            result.error_code = topic_error_code(&error);
            result.error_message = Some(str_bytes(&error.to_string()));
        }
        response.results.push(result);
    }
    encode_response(ApiKey::CreatePartitions, frame.api_version, frame.correlation_id, &response)
}
