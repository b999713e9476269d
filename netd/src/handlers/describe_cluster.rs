//! DescribeCluster (key 60), versions 0–1: this one broker, which is also the controller; in a
//! cluster, the live brokers of the metadata image. Asked for controllers (endpoint type 2,
//! Kafka's `--bootstrap-controller` path), a broker answers MISMATCHED_ENDPOINT_TYPE, as Kafka's.

use bytes::Bytes;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::ResponseError;

use super::str_bytes;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::handlers::metadata::CLUSTER_ID;
use crate::runtime::context::ShardContext;

/// DescribeCluster's endpoint types (v1+).
const ENDPOINT_TYPE_BROKERS: i8 = 1;

pub fn handle(context: &ShardContext, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: DescribeClusterRequest = decode_body(frame)?;
    let mut response = DescribeClusterResponse::default();
    if frame.api_version >= 1 && request.endpoint_type != ENDPOINT_TYPE_BROKERS {
        response.error_code = ResponseError::MismatchedEndpointType.code();
        response.error_message = Some(str_bytes(&format!(
            "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type {}",
            if request.endpoint_type == 2 { "CONTROLLER".to_string() } else { request.endpoint_type.to_string() }
        )));
        response.controller_id = BrokerId(-1);
        response.endpoint_type = ENDPOINT_TYPE_BROKERS; // this endpoint's type
        response.cluster_authorized_operations = i32::MIN;
        return encode_response(ApiKey::DescribeCluster, frame.api_version, frame.correlation_id, &response);
    }
    if let Some(image) = context.image() {
        // A cluster: the live brokers of this broker's image. Admin requests sent to the
        // "controller" are forwarded by any broker, so each names itself, as Kafka's brokers do.
        response.cluster_id = str_bytes(&crate::handlers::metadata::cluster_id(&image));
        response.controller_id = BrokerId(context.config.node_id);
        response.endpoint_type = ENDPOINT_TYPE_BROKERS;
        response.brokers = crate::handlers::metadata::live_brokers(&image)
            .into_iter()
            .map(|broker| {
                let mut node = DescribeClusterBroker::default();
                node.broker_id = broker.node_id;
                node.host = broker.host;
                node.port = broker.port;
                node.rack = broker.rack;
                node
            })
            .collect();
        response.cluster_authorized_operations = i32::MIN;
        return encode_response(ApiKey::DescribeCluster, frame.api_version, frame.correlation_id, &response);
    }
    response.cluster_id = str_bytes(CLUSTER_ID);
    response.controller_id = BrokerId(context.config.node_id);
    response.endpoint_type = ENDPOINT_TYPE_BROKERS;
    let mut node = DescribeClusterBroker::default();
    node.broker_id = BrokerId(context.config.node_id);
    node.host = str_bytes(&context.config.advertised_host);
    node.port = i32::from(context.config.advertised_port);
    response.brokers = vec![node];
    response.cluster_authorized_operations = i32::MIN;
    encode_response(ApiKey::DescribeCluster, frame.api_version, frame.correlation_id, &response)
}
