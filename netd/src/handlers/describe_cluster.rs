//! DescribeCluster (key 60), versions 0–1: this one broker, which is also the controller.

use bytes::Bytes;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterResponse};

use super::str_bytes;
use crate::codec::frame::{encode_response, Frame};
use crate::handlers::metadata::CLUSTER_ID;
use crate::runtime::context::ShardContext;

pub fn handle(context: &ShardContext, frame: &Frame) -> anyhow::Result<Bytes> {
    let mut response = DescribeClusterResponse::default();
    response.cluster_id = str_bytes(CLUSTER_ID);
    response.controller_id = BrokerId(context.config.node_id);
    response.endpoint_type = 1; // brokers
    let mut node = DescribeClusterBroker::default();
    node.broker_id = BrokerId(context.config.node_id);
    node.host = str_bytes(&context.config.advertised_host);
    node.port = i32::from(context.config.advertised_port);
    response.brokers = vec![node];
    response.cluster_authorized_operations = i32::MIN;
    encode_response(ApiKey::DescribeCluster, frame.api_version, frame.correlation_id, &response)
}
