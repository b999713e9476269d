//! ElectLeaders (key 43), versions 0–2, for `kafka-leader-election`: preferred and (v1+) unclean
//! elections, carried out by the active controller (forwarded through the broker's quorum link).
//! As in Kafka: a preferred election of a partition its preferred replica already leads, or an
//! unclean one of a partition that has a leader, is ELECTION_NOT_NEEDED (left out of the answer
//! when every partition was asked); PREFERRED_LEADER_NOT_AVAILABLE when the preferred replica is
//! not in the ISR or not alive; ELIGIBLE_LEADERS_NOT_AVAILABLE when no live replica can lead. A
//! one-node broker answers every partition ELECTION_NOT_NEEDED (it leads them all).

use std::collections::BTreeMap;

use bytes::Bytes;
use cluster::controller::Election;
use cluster::quorum::{ControllerReply, ControllerRequest, RequestError};
use cluster::rpc::{RpcRequest, RpcResponse};
use cluster::PartitionIndex;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ApiKey, ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::ResponseError;

use super::str_bytes;
use crate::codec::errors::controller_error_code;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;

const ELECTION_PREFERRED: i8 = 0;
const ELECTION_UNCLEAN: i8 = 1;

pub async fn handle(context: &ShardContext, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: ElectLeadersRequest = decode_body(frame)?;
    // The partitions named, or every partition known.
    let targets: Vec<(String, PartitionIndex)> = match &request.topic_partitions {
        Some(topics) => topics
            .iter()
            .flat_map(|topic| {
                topic.partitions.iter().map(|partition| (topic.topic.to_string(), PartitionIndex(*partition)))
            })
            .collect(),
        None => match context.image() {
            Some(image) => {
                image.partitions().map(|(topic, partition)| (topic.name.clone(), partition.partition)).collect()
            }
            None => context
                .catalog()
                .topics
                .iter()
                .flat_map(|(name, count)| (0..*count).map(|index| (name.clone(), PartitionIndex(index))))
                .collect(),
        },
    };
    let election_type = if frame.api_version >= 1 { request.election_type } else { ELECTION_PREFERRED };
    let mut response = ElectLeadersResponse::default();
    let outcomes: Vec<Result<(), (i16, String)>> = match election_type {
        ELECTION_PREFERRED | ELECTION_UNCLEAN => elect(context, &targets, election_type == ELECTION_UNCLEAN).await,
        unknown => {
            let refusal = (ResponseError::InvalidRequest.code(), format!("Unknown election type {unknown}"));
            response.error_code = refusal.0;
            targets.iter().map(|_| Err(refusal.clone())).collect()
        }
    };
    let every_partition = request.topic_partitions.is_none();
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for ((topic, partition), outcome) in targets.iter().zip(outcomes) {
        let results = by_topic.entry(topic.clone()).or_default();
        if every_partition && matches!(&outcome, Err((code, _)) if *code == ResponseError::ElectionNotNeeded.code()) {
            // Kafka leaves partitions that need no election out when every partition was asked.
            continue;
        }
        let mut result = PartitionResult::default();
        result.partition_id = partition.0;
        if let Err((code, message)) = outcome {
            result.error_code = code;
            result.error_message = Some(str_bytes(&message));
        }
        results.push(result);
    }
    response.replica_election_results = by_topic
        .into_iter()
        .map(|(topic, partition_result)| {
            let mut result = ReplicaElectionResult::default();
            result.topic = TopicName(str_bytes(&topic));
            result.partition_result = partition_result;
            result
        })
        .collect();
    encode_response(ApiKey::ElectLeaders, frame.api_version, frame.correlation_id, &response)
}

/// One outcome per target, in order: preferred elections, or unclean ones if `unclean`.
async fn elect(
    context: &ShardContext,
    targets: &[(String, PartitionIndex)],
    unclean: bool,
) -> Vec<Result<(), (i16, String)>> {
    let not_needed = || {
        let why = if unclean { "the partition has a leader" } else { "the preferred replica already leads" };
        Err((ResponseError::ElectionNotNeeded.code(), why.to_string()))
    };
    let Some(link) = &context.quorum else {
        let catalog = context.catalog();
        return targets
            .iter()
            .map(|(topic, partition)| match catalog.partitions(topic) {
                Some(count) if partition.0 >= 0 && partition.0 < count => not_needed(),
                _ => Err((ResponseError::UnknownTopicOrPartition.code(), "no such partition".to_string())),
            })
            .collect();
    };
    let request = RpcRequest::Controller(match unclean {
        true => ControllerRequest::ElectUnclean(targets.to_vec()),
        false => ControllerRequest::ElectPreferred(Some(targets.to_vec())),
    });
    let failed = |code: i16, message: String| targets.iter().map(|_| Err((code, message.clone()))).collect();
    match link.ask(request).await {
        Ok(RpcResponse::Controller(Ok(ControllerReply::Elections(results)))) if results.len() == targets.len() => {
            results
                .into_iter()
                .map(|result| match result {
                    Election::Elected => Ok(()),
                    Election::NotNeeded => not_needed(),
                    Election::PreferredNotAvailable => Err((
                        ResponseError::PreferredLeaderNotAvailable.code(),
                        "the preferred replica is not in the ISR or not alive".to_string(),
                    )),
                    Election::EligibleLeadersNotAvailable => {
                        Err((ResponseError::EligibleLeadersNotAvailable.code(), "no live replica can lead".to_string()))
                    }
                    Election::UnknownPartition => {
                        Err((ResponseError::UnknownTopicOrPartition.code(), "no such partition".to_string()))
                    }
                })
                .collect()
        }
        Ok(RpcResponse::Controller(Err(RequestError::Refused(error)))) => {
            failed(controller_error_code(&error), error.to_string())
        }
        other => {
            tracing::debug!(answer = ?other, "no active controller for ElectLeaders");
            failed(ResponseError::NotController.code(), "no active controller answered; retry".to_string())
        }
    }
}
