//! Metadata (key 3), versions 0–13. One node: this broker, and every partition led by it. In a
//! cluster: the live brokers and every partition as this broker's metadata image has it. Each
//! topic with its id (v10+), which clients name it by in Produce v13 and Fetch v13+.
//!
//! v13 (KIP-1102) adds a top-level error code, for a broker that refuses the whole request and
//! wants the client to bootstrap again (REBOOTSTRAP_REQUIRED): Skua never does, so it is 0.
//!
//! Unknown topics are created when `auto.create.topics.enable` is on and the request allows it
//! (v4+ field `allow_auto_topic_creation`; always for older versions, as in Kafka).

use std::sync::Arc;

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
use cluster::image::MetadataImage;

pub const CLUSTER_ID: &str = "skua-single-node-cluster";

pub async fn handle(context: &ShardContext, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: MetadataRequest = decode_body(frame)?;
    if let Some(image) = context.image() {
        let response = cluster_metadata(context, frame, &request, image).await;
        return encode_response(ApiKey::Metadata, frame.api_version, frame.correlation_id, &response);
    }
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
    let names = requested_names(&request, frame.api_version, catalog.topics.keys());
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
                topic.topic_id = context.catalog().topic_id(&name).map(uuid::Uuid::from_bytes).unwrap_or_default();
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

/// The topics a request asks about: those it names, or every topic in `all` (v0: an empty list
/// means all topics; v1+: null means all).
fn requested_names<'a>(request: &MetadataRequest, version: i16, all: impl Iterator<Item = &'a String>) -> Vec<String> {
    match &request.topics {
        None => all.cloned().collect(),
        Some(topics) if topics.is_empty() && version == 0 => all.cloned().collect(),
        Some(topics) => topics.iter().filter_map(|topic| topic.name.as_ref().map(|name| name.to_string())).collect(),
    }
}

/// The brokers a client may use: registered and not fenced, with their client endpoint.
pub fn live_brokers(image: &MetadataImage) -> Vec<MetadataResponseBroker> {
    image
        .brokers
        .values()
        .filter(|broker| !broker.fenced)
        .filter_map(|broker| {
            let endpoint = broker.endpoints.first()?;
            let mut node = MetadataResponseBroker::default();
            node.node_id = BrokerId(broker.id.0);
            node.host = str_bytes(&endpoint.host);
            node.port = i32::from(endpoint.port);
            node.rack = broker.rack.as_deref().map(str_bytes);
            Some(node)
        })
        .collect()
}

/// The cluster id as clients see it (Kafka's base64 form), or a placeholder until the quorum
/// agreed on one.
pub fn cluster_id(image: &MetadataImage) -> String {
    image.cluster_id.map_or_else(|| CLUSTER_ID.to_string(), |id| id.to_base64url())
}

/// Metadata in a cluster: every live broker and every partition's leader, epoch, replicas and
/// ISR, from this broker's metadata image.
async fn cluster_metadata(
    context: &ShardContext,
    frame: &Frame,
    request: &MetadataRequest,
    image: Arc<MetadataImage>,
) -> MetadataResponse {
    let config = &context.config;
    let auto_create = (frame.api_version < 4 || request.allow_auto_topic_creation) && config.auto_create_topics;
    let names = requested_names(request, frame.api_version, image.topics.keys());
    let mut created = false;
    let mut errors = std::collections::BTreeMap::new();
    for name in &names {
        if let Err(message) = crate::catalog::valid_topic_name(name) {
            tracing::debug!(%message, "metadata for an invalid topic name");
            errors.insert(name.clone(), ResponseError::InvalidTopicException.code());
        } else if image.topic(name).is_none() && auto_create {
            match controller::auto_create_topic(context, name).await {
                Ok(()) => created = true,
                Err(error) => {
                    errors.insert(name.clone(), auto_create_error_code(&error));
                }
            }
        }
    }
    let image = if created { context.image().unwrap_or(image) } else { image };
    let mut response = MetadataResponse::default();
    response.brokers = live_brokers(&image);
    response.cluster_id = Some(str_bytes(&cluster_id(&image)));
    // Clients send admin requests to any broker (they are forwarded), as with KRaft.
    response.controller_id = BrokerId(config.node_id);
    for name in names {
        let mut topic = MetadataResponseTopic::default();
        topic.name = Some(TopicName(str_bytes(&name)));
        if let Some(code) = errors.get(&name) {
            topic.error_code = *code;
            response.topics.push(topic);
            continue;
        }
        let Some(found) = image.topic(&name) else {
            topic.error_code = ResponseError::UnknownTopicOrPartition.code();
            response.topics.push(topic);
            continue;
        };
        topic.topic_id = uuid::Uuid::from_bytes(found.id.0);
        topic.is_internal = name == crate::coordinators::groups::OFFSETS_TOPIC;
        topic.partitions = found
            .partitions
            .iter()
            .map(|state| {
                let mut partition = MetadataResponsePartition::default();
                partition.partition_index = state.partition.0;
                partition.leader_id = BrokerId(state.leader.map_or(-1, |leader| leader.0));
                if state.leader.is_none() {
                    partition.error_code = ResponseError::LeaderNotAvailable.code();
                }
                partition.leader_epoch = state.leader_epoch;
                partition.replica_nodes = state.replicas.iter().map(|id| BrokerId(id.0)).collect();
                partition.isr_nodes = state.isr.iter().map(|id| BrokerId(id.0)).collect();
                partition.offline_replicas = state
                    .replicas
                    .iter()
                    .filter(|id| image.brokers.get(id).is_none_or(|broker| broker.fenced))
                    .map(|id| BrokerId(id.0))
                    .collect();
                partition
            })
            .collect();
        response.topics.push(topic);
    }
    response
}
