//! CreateTopics (key 19), versions 2–7. Single node: replication factor must be 1 (or −1).

use bytes::Bytes;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::ResponseError;

use super::str_bytes;
use crate::broker::Broker;
use crate::protocol::{decode_body, encode_response, Frame};

pub fn handle(broker: &mut Broker, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: CreateTopicsRequest = decode_body(frame)?;
    let mut response = CreateTopicsResponse::default();
    for topic in &request.topics {
        let mut result = CreatableTopicResult::default();
        result.name = topic.name.clone();
        let partitions = if topic.num_partitions == -1 { broker.config.num_partitions } else { topic.num_partitions };
        result.num_partitions = partitions;
        result.replication_factor = 1;
        let outcome = if topic.replication_factor != -1 && topic.replication_factor != 1 {
            Err((
                ResponseError::InvalidReplicationFactor.code(),
                "this single-node broker supports replication factor 1".to_string(),
            ))
        } else if !topic.assignments.is_empty() {
            Err((
                ResponseError::InvalidReplicaAssignment.code(),
                "manual replica assignment is not supported".to_string(),
            ))
        } else if !topic.configs.is_empty() {
            Err((ResponseError::InvalidConfig.code(), "per-topic configs are not supported yet".to_string()))
        } else if request.validate_only {
            crate::broker::valid_topic_name(topic.name.as_str())
                .map_err(|message| (ResponseError::InvalidTopicException.code(), message))
                .and_then(|()| {
                    if broker.topics.contains_key(topic.name.as_str()) {
                        Err((ResponseError::TopicAlreadyExists.code(), "topic already exists".to_string()))
                    } else {
                        Ok(())
                    }
                })
        } else {
            broker.create_topic(topic.name.as_str(), partitions)
        };
        if let Err((code, message)) = outcome {
            result.error_code = code;
            result.error_message = Some(str_bytes(&message));
            result.num_partitions = -1;
            result.replication_factor = -1;
        }
        response.topics.push(result);
    }
    encode_response(ApiKey::CreateTopics, frame.api_version, frame.correlation_id, &response)
}
