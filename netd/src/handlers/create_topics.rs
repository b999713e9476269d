//! CreateTopics (key 19), versions 2–7. Single node: replication factor must be 1 (or −1). In a
//! cluster: forwarded to the active controller (which places replicas or checks a manual
//! assignment; `validate_only` runs every check and commits nothing). The new topic's id is
//! answered in both.
//! Topic configs: checked as Kafka checks them (`config::topic`), stored with the topic (its
//! manifest on one node, its metadata record in a cluster) and honoured by its partitions.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopicConfig;
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
            let assignment: Vec<Vec<cluster::BrokerId>> = topic
                .assignments
                .iter()
                .map(|assignment| assignment.broker_ids.iter().map(|id| cluster::BrokerId(id.0)).collect())
                .collect();
            // Kafka's checks of a manual assignment, in its order.
            let manual = if topic.assignments.is_empty() {
                Ok(())
            } else if topic.replication_factor != -1 {
                Err(TopicError::AssignmentWithCount { field: "replication factor" })
            } else if topic.num_partitions != -1 {
                Err(TopicError::AssignmentWithCount { field: "numPartitions" })
            } else if (0..).zip(&topic.assignments).any(|(index, assignment)| assignment.partition_index != index) {
                Err(TopicError::AssignmentNotConsecutive)
            } else {
                Ok(())
            };
            if let Some(first) = assignment.first() {
                result.num_partitions = assignment.len() as i32;
                result.replication_factor = first.len() as i16;
            }
            match manual.and_then(|()| topic_configs(context, &topic.configs)) {
                Err(refused) => Err(refused),
                Ok(configs) => {
                    let name = topic.name.as_str();
                    let factor = topic.replication_factor;
                    let validate_only = request.validate_only;
                    controller::cluster_create_topic(
                        context,
                        name,
                        partitions,
                        factor,
                        assignment,
                        configs,
                        validate_only,
                    )
                    .await
                }
            }
        } else if topic.replication_factor != -1 && topic.replication_factor != 1 {
            Err(TopicError::ReplicationFactor { factor: topic.replication_factor })
        } else if !topic.assignments.is_empty() {
            Err(TopicError::ReplicaAssignment)
        } else {
            match topic_configs(context, &topic.configs) {
                Ok(configs) => {
                    controller::create_topic(context, topic.name.as_str(), partitions, configs, request.validate_only)
                        .await
                }
                Err(refused) => Err(refused),
            }
        };
        if outcome.is_ok() && !request.validate_only {
            // v7+: the new topic's id (a cluster's image has it once the creation is applied).
            if let Some(created) = context.image().as_ref().and_then(|image| image.topic(topic.name.as_str())) {
                result.topic_id = uuid::Uuid::from_bytes(created.id.0);
            } else if let Some(id) = context.catalog().topic_id(topic.name.as_str()) {
                result.topic_id = uuid::Uuid::from_bytes(id);
            }
        }
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

/// A creation's topic configs, checked as Kafka checks them (`config::topic`): each, then those
/// that bound each other, with the broker's values under them.
fn topic_configs(
    context: &ShardContext,
    configs: &[CreatableTopicConfig],
) -> Result<BTreeMap<String, String>, TopicError> {
    let checked = crate::config::topic::check_all(
        configs.iter().map(|config| (config.name.as_str(), config.value.as_ref().map(|value| value.as_str()))),
    )
    .map_err(TopicError::Config)?;
    crate::config::topic::check_together(&context.config, &context.catalog().broker_configs, &checked)
        .map_err(TopicError::Config)?;
    Ok(checked)
}
