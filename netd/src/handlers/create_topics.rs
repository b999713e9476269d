//! CreateTopics (key 19), versions 2–7. Single node: replication factor must be 1 (or −1).

use bytes::Bytes;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};

use super::str_bytes;
use crate::codec::errors::{topic_error_code, TopicError};
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;
use crate::runtime::controller;

pub async fn handle(context: &ShardContext, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: CreateTopicsRequest = decode_body(frame)?;
    let mut response = CreateTopicsResponse::default();
    for topic in &request.topics {
        let mut result = CreatableTopicResult::default();
        result.name = topic.name.clone();
        let partitions = if topic.num_partitions == -1 { context.config.num_partitions } else { topic.num_partitions };
        result.num_partitions = partitions;
        result.replication_factor = 1;
        let outcome = if context.quorum.is_some() {
            // A cluster: the active controller places replicas (or takes the assignment).
            result.replication_factor = match topic.replication_factor {
                -1 => context.config.default_replication_factor,
                factor => factor,
            };
            let mut assignments: Vec<_> = topic.assignments.iter().collect();
            assignments.sort_by_key(|assignment| assignment.partition_index);
            let assignment: Vec<Vec<cluster::BrokerId>> = assignments
                .iter()
                .map(|assignment| assignment.broker_ids.iter().map(|id| cluster::BrokerId(id.0)).collect())
                .collect();
            if let Some(first) = assignment.first() {
                result.num_partitions = assignment.len() as i32;
                result.replication_factor = first.len() as i16;
            }
            if !topic.configs.is_empty() {
                Err(TopicError::TopicConfigs)
            } else {
                let name = topic.name.as_str();
                let factor = topic.replication_factor;
                controller::cluster_create_topic(context, name, partitions, factor, assignment, request.validate_only)
                    .await
            }
        } else if topic.replication_factor != -1 && topic.replication_factor != 1 {
            Err(TopicError::ReplicationFactor { factor: topic.replication_factor })
        } else if !topic.assignments.is_empty() {
            Err(TopicError::ReplicaAssignment)
        } else if !topic.configs.is_empty() {
            Err(TopicError::TopicConfigs)
        } else {
            controller::create_topic(context, topic.name.as_str(), partitions, request.validate_only).await
        };
        if let Err(error) = outcome {
            result.error_code = topic_error_code(&error);
            result.error_message = Some(str_bytes(&error.to_string()));
            result.num_partitions = -1;
            result.replication_factor = -1;
        }
        response.topics.push(result);
    }
    encode_response(ApiKey::CreateTopics, frame.api_version, frame.correlation_id, &response)
}
