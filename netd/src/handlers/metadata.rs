//! Metadata (key 3), versions 0–12: this broker, and every partition led by it.
//!
//! Unknown topics are created when `auto.create.topics.enable` is on and the request allows it
//! (v4+ field `allow_auto_topic_creation`; always for older versions, as in Kafka).

use bytes::Bytes;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::ResponseError;

use super::str_bytes;
use crate::codec::errors::auto_create_error_code;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;
use crate::runtime::controller;
use crate::runtime::state::SINGLE_NODE_ROLE;

pub const CLUSTER_ID: &str = "skua-single-node-cluster";

pub async fn handle(context: &ShardContext, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: MetadataRequest = decode_body(frame)?;
    let config = &context.config;
    let node_id = BrokerId(config.node_id);
    let mut response = MetadataResponse::default();
    let mut node = MetadataResponseBroker::default();
    node.node_id = node_id;
    node.host = str_bytes(&config.advertised_host);
    node.port = i32::from(config.advertised_port);
    response.brokers = vec![node];
    response.cluster_id = Some(str_bytes(CLUSTER_ID));
    response.controller_id = node_id;
    let auto_create = (frame.api_version < 4 || request.allow_auto_topic_creation) && config.auto_create_topics;
    let catalog = context.catalog();
    let names: Vec<String> = match &request.topics {
        // v0: an empty list means all topics; v1+: null means all.
        None => catalog.topics.keys().cloned().collect(),
        Some(topics) if topics.is_empty() && frame.api_version == 0 => catalog.topics.keys().cloned().collect(),
        Some(topics) => topics.iter().filter_map(|topic| topic.name.as_ref().map(|name| name.to_string())).collect(),
    };
    for name in names {
        let mut topic = MetadataResponseTopic::default();
        topic.name = Some(TopicName(str_bytes(&name)));
        let mut partitions = context.catalog().partitions(&name);
        if let Err(message) = crate::catalog::valid_topic_name(&name) {
            tracing::debug!(%message, "metadata for an invalid topic name");
            topic.error_code = ResponseError::InvalidTopicException.code();
        } else if partitions.is_none() && auto_create {
            match controller::auto_create_topic(context, &name).await {
                Ok(()) => partitions = context.catalog().partitions(&name),
                Err(error) => topic.error_code = auto_create_error_code(&error),
            }
        }
        match partitions {
            Some(count) if topic.error_code == 0 => {
                topic.partitions = (0..count)
                    .map(|index| {
                        let mut partition = MetadataResponsePartition::default();
                        partition.partition_index = index;
                        partition.leader_id = node_id;
                        // The epoch every partition of a single node leads in (order 3: the
                        // metadata image's).
                        partition.leader_epoch = SINGLE_NODE_ROLE.epoch().0;
                        partition.replica_nodes = vec![node_id];
                        partition.isr_nodes = vec![node_id];
                        partition
                    })
                    .collect();
            }
            None if topic.error_code == 0 => topic.error_code = ResponseError::UnknownTopicOrPartition.code(),
            _ => {}
        }
        response.topics.push(topic);
    }
    encode_response(ApiKey::Metadata, frame.api_version, frame.correlation_id, &response)
}
