//! DescribeQuorum (key 55), versions 0–2: the metadata quorum's leader, term (Kafka's leader
//! epoch), high watermark and each voter's progress, as `kafka-metadata-quorum describe` shows
//! them. Asked of the quorum through the broker's link; the quorum leader answers.

use bytes::Bytes;
use kafka_protocol::messages::describe_quorum_response::{Listener, Node, PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};
use kafka_protocol::ResponseError;

use super::str_bytes;
use crate::catalog::METADATA_TOPIC;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;
use cluster::rpc::{QuorumStatus, RpcRequest, RpcResponse};

pub async fn handle(context: &ShardContext, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: DescribeQuorumRequest = decode_body(frame)?;
    let mut response = DescribeQuorumResponse::default();
    let status = match &context.quorum {
        // One node has no quorum: Kafka's answer to a broker without one.
        None => Err(ResponseError::UnknownServerError),
        Some(link) => match link.ask(RpcRequest::DescribeQuorum).await {
            Ok(RpcResponse::Quorum(Ok(status))) => Ok(status),
            Ok(_) | Err(_) => Err(ResponseError::NotLeaderOrFollower),
        },
    };
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    for topic in &request.topics {
        let mut data = TopicData::default();
        data.topic_name = topic.topic_name.clone();
        for asked in &topic.partitions {
            let mut partition = PartitionData::default();
            partition.partition_index = asked.partition_index;
            match (&status, topic.topic_name.as_str() == METADATA_TOPIC && asked.partition_index == 0) {
                (_, false) => partition.error_code = ResponseError::UnknownTopicOrPartition.code(),
                (Err(error), true) => {
                    partition.error_code = error.code();
                    if context.quorum.is_none() {
                        // Kafka's one node is a quorum of one; Skua's has none: say so (v2+).
                        partition.error_message = Some(str_bytes(
                            "this broker runs alone, without a metadata quorum (process.roles starts a cluster)",
                        ));
                    }
                }
                (Ok(status), true) => describe(&mut partition, status, now_ms, frame.api_version),
            }
            data.partitions.push(partition);
        }
        response.topics.push(data);
    }
    // The voters' endpoints exist from v2.
    if let (Some(cluster), Ok(_), true) = (&context.config.cluster, &status, frame.api_version >= 2) {
        response.nodes = cluster
            .voters
            .iter()
            .map(|voter| {
                let mut node = Node::default();
                node.node_id = BrokerId(voter.id);
                let mut listener = Listener::default();
                listener.name = str_bytes(
                    cluster.controller_listener.as_ref().map_or("CONTROLLER", |listener| listener.name.as_str()),
                );
                listener.host = str_bytes(&voter.address.host);
                listener.port = voter.address.port;
                node.listeners = vec![listener];
                node
            })
            .collect();
    }
    encode_response(ApiKey::DescribeQuorum, frame.api_version, frame.correlation_id, &response)
}

fn describe(partition: &mut PartitionData, status: &QuorumStatus, now_ms: i64, version: i16) {
    partition.leader_id = BrokerId(status.leader.0);
    partition.leader_epoch = i32::try_from(status.term).unwrap_or(i32::MAX);
    partition.high_watermark = status.high_watermark as i64;
    partition.current_voters = status
        .voters
        .iter()
        .map(|voter| {
            let mut state = ReplicaState::default();
            state.replica_id = BrokerId(voter.node.0);
            state.log_end_offset = voter.log_end_offset as i64;
            // The timestamps exist from v1 (v0 cannot carry them).
            if version >= 1 {
                let heard = voter.last_heard_ms_ago.map_or(-1, |ago| now_ms - ago as i64);
                state.last_fetch_timestamp = heard;
                // Caught up: its log reaches the high watermark.
                state.last_caught_up_timestamp = if voter.log_end_offset >= status.high_watermark { heard } else { -1 };
            }
            state
        })
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster::rpc::ReplicaProgress;
    use cluster::BrokerId as NodeId;

    /// Every served version encodes (a field set beyond a version's schema fails the encoding and
    /// the client sees its connection closed; DescribeQuorum v0 did).
    #[test]
    fn every_version_encodes() {
        let status = QuorumStatus {
            leader: NodeId(1),
            term: 4,
            high_watermark: 9,
            voters: vec![ReplicaProgress { node: NodeId(1), log_end_offset: 9, last_heard_ms_ago: Some(0) }],
        };
        for version in 0..=2 {
            let mut partition = PartitionData::default();
            describe(&mut partition, &status, 1_000, version);
            let mut data = TopicData::default();
            data.partitions.push(partition);
            let mut response = DescribeQuorumResponse::default();
            response.topics.push(data);
            if version >= 2 {
                response.nodes.push(Node::default());
            }
            encode_response(ApiKey::DescribeQuorum, version, 7, &response).expect("encodes");
        }
    }
}
