//! AlterPartitionReassignments (key 45, versions 0–1) and ListPartitionReassignments (key 46,
//! version 0), for `kafka-reassign-partitions` and the Admin client: moving a partition's
//! replicas to other brokers (KIP-455).
//!
//! Alter is carried out by the active controller (forwarded through the quorum link): the target
//! replicas are added beside the original ones, copy the log as followers, join the ISR, and then
//! the controller drops the original replicas the target leaves out (`cluster::controller`); the
//! brokers open and delete their replicas as the metadata image tells them
//! (`runtime::controller::change_replicas`). List answers from this broker's image, which is the
//! controller's as of the last image it fetched (Kafka's brokers forward it to the controller;
//! the image is at most one poll behind).
//!
//! A one-node broker without a quorum holds every partition alone: a reassignment to itself is
//! accepted (nothing to move), one to any other broker is INVALID_REPLICA_ASSIGNMENT (no such
//! broker), and nothing is ever in progress.

use std::collections::BTreeMap;

use bytes::Bytes;
use cluster::controller::{assignment_refusal, Reassignment, ReassignmentOutcome};
use cluster::quorum::{ControllerReply, ControllerRequest, RequestError};
use cluster::rpc::{RpcRequest, RpcResponse};
use cluster::{BrokerId, PartitionIndex};
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::ResponseError;

use super::str_bytes;
use crate::codec::errors::{controller_error_code, reassignment_outcome_code};
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;

/// At most this many partitions in one AlterPartitionReassignments (Kafka bounds it by the
/// request size only; the controller request carries them all in one RPC frame).
pub const REASSIGNMENTS_PER_REQUEST_MAX: usize = 100_000;

pub async fn alter(context: &ShardContext, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: AlterPartitionReassignmentsRequest = decode_body(frame)?;
    // v0 has no such field: Kafka lets v0 change the replication factor.
    let allow_factor_change = frame.api_version < 1 || request.allow_replication_factor_change;
    let reassignments: Vec<Reassignment> = request
        .topics
        .iter()
        .flat_map(|topic| {
            topic.partitions.iter().map(|partition| Reassignment {
                topic: topic.name.to_string(),
                partition: PartitionIndex(partition.partition_index),
                target: partition
                    .replicas
                    .as_ref()
                    .map(|replicas| replicas.iter().map(|replica| BrokerId(replica.0)).collect()),
            })
        })
        .collect();
    let outcomes: Vec<(i16, Option<String>)> = if reassignments.len() > REASSIGNMENTS_PER_REQUEST_MAX {
        let message = format!("more than {REASSIGNMENTS_PER_REQUEST_MAX} partitions in one request");
        reassignments.iter().map(|_| (ResponseError::InvalidRequest.code(), Some(message.clone()))).collect()
    } else {
        decide(context, reassignments, allow_factor_change).await
    };
    let mut response = AlterPartitionReassignmentsResponse::default();
    response.allow_replication_factor_change = allow_factor_change;
    let mut outcomes = outcomes.into_iter();
    for topic in &request.topics {
        let mut answer = ReassignableTopicResponse::default();
        answer.name = topic.name.clone();
        for partition in &topic.partitions {
            let (code, message) = outcomes.next().unwrap_or((ResponseError::UnknownServerError.code(), None));
            let mut result = ReassignablePartitionResponse::default();
            result.partition_index = partition.partition_index;
            result.error_code = code;
            result.error_message = message.as_deref().map(str_bytes);
            answer.partitions.push(result);
        }
        response.responses.push(answer);
    }
    encode_response(ApiKey::AlterPartitionReassignments, frame.api_version, frame.correlation_id, &response)
}

/// One (error code, message) per reassignment, in order.
async fn decide(
    context: &ShardContext,
    reassignments: Vec<Reassignment>,
    allow_factor_change: bool,
) -> Vec<(i16, Option<String>)> {
    let Some(link) = &context.quorum else {
        return reassignments.iter().map(|reassignment| single_node(context, reassignment)).collect();
    };
    let count = reassignments.len();
    let failed = |code: i16, message: String| (0..count).map(|_| (code, Some(message.clone()))).collect();
    let request = RpcRequest::Controller(ControllerRequest::AlterReassignments {
        reassignments: reassignments.clone(),
        allow_factor_change,
    });
    match link.ask(request).await {
        Ok(RpcResponse::Controller(Ok(ControllerReply::Reassignments(outcomes)))) if outcomes.len() == count => {
            outcomes
                .iter()
                .zip(&reassignments)
                .map(|(outcome, reassignment)| answer(context, reassignment, outcome))
                .collect()
        }
        Ok(RpcResponse::Controller(Err(RequestError::Refused(error)))) => {
            failed(controller_error_code(&error), error.to_string())
        }
        other => {
            tracing::debug!(answer = ?other, "no active controller for AlterPartitionReassignments");
            failed(ResponseError::NotController.code(), "no active controller answered; retry".to_string())
        }
    }
}

/// The (code, message) a client sees for `outcome`, in Kafka's words
/// (`ReplicationControlManager.alterPartitionReassignment`; checked against Kafka 4.4 by
/// `tests/admin_oracle.rs`). An unknown topic and an unknown partition of a known topic are one
/// outcome to the controller; this broker's catalog tells them apart for the message.
fn answer(context: &ShardContext, reassignment: &Reassignment, outcome: &ReassignmentOutcome) -> (i16, Option<String>) {
    let message = match outcome {
        ReassignmentOutcome::Accepted => None,
        ReassignmentOutcome::UnknownPartition if context.catalog().partitions(&reassignment.topic).is_none() => {
            Some(format!("Unable to find a topic named {}.", reassignment.topic))
        }
        ReassignmentOutcome::UnknownPartition => {
            Some(format!("Unable to find partition {}:{}.", reassignment.topic, reassignment.partition.0))
        }
        // Kafka sends no message: clients show NO_REASSIGNMENT_IN_PROGRESS's own.
        ReassignmentOutcome::NoReassignmentInProgress => None,
        ReassignmentOutcome::InvalidAssignment(reason) => Some(reason.clone()),
        ReassignmentOutcome::ReplicationFactorChange { from, to } => Some(format!(
            "The replication factor is changed from {from} to {to} but allowReplicationFactorChange is false"
        )),
    };
    (reassignment_outcome_code(outcome), message)
}

/// A one-node broker's answer: see the module header.
fn single_node(context: &ShardContext, reassignment: &Reassignment) -> (i16, Option<String>) {
    let known = context
        .catalog()
        .partitions(&reassignment.topic)
        .is_some_and(|count| reassignment.partition.0 >= 0 && reassignment.partition.0 < count);
    let me = BrokerId(context.config.node_id);
    let outcome = match &reassignment.target {
        _ if !known => ReassignmentOutcome::UnknownPartition,
        None => ReassignmentOutcome::NoReassignmentInProgress,
        Some(target) => match assignment_refusal(target, |broker| broker == me) {
            Some(refusal) => ReassignmentOutcome::InvalidAssignment(refusal),
            None => ReassignmentOutcome::Accepted,
        },
    };
    answer(context, reassignment, &outcome)
}

pub fn list(context: &ShardContext, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: ListPartitionReassignmentsRequest = decode_body(frame)?;
    let mut response = ListPartitionReassignmentsResponse::default();
    if let Some(image) = context.image() {
        // Topic name → the partitions asked (None: all), as Kafka: unknown topics and partitions
        // without a reassignment are left out.
        let wanted: Option<BTreeMap<String, Vec<i32>>> = request.topics.as_ref().map(|topics| {
            topics.iter().map(|topic| (topic.name.to_string(), topic.partition_indexes.clone())).collect()
        });
        let mut by_topic: BTreeMap<String, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
        for (topic, partition) in image.partitions() {
            if !partition.reassigning() {
                continue;
            }
            let asked = match &wanted {
                None => true,
                Some(wanted) => wanted.get(&topic.name).is_some_and(|indexes| indexes.contains(&partition.partition.0)),
            };
            if !asked {
                continue;
            }
            let ids = |list: &[BrokerId]| list.iter().map(|id| kafka_protocol::messages::BrokerId(id.0)).collect();
            let mut ongoing = OngoingPartitionReassignment::default();
            ongoing.partition_index = partition.partition.0;
            ongoing.replicas = ids(&partition.replicas);
            ongoing.adding_replicas = ids(&partition.adding);
            ongoing.removing_replicas = ids(&partition.removing);
            by_topic.entry(topic.name.clone()).or_default().push(ongoing);
        }
        response.topics = by_topic
            .into_iter()
            .map(|(name, partitions)| {
                let mut topic = OngoingTopicReassignment::default();
                topic.name = TopicName(str_bytes(&name));
                topic.partitions = partitions;
                topic
            })
            .collect();
    }
    encode_response(ApiKey::ListPartitionReassignments, frame.api_version, frame.correlation_id, &response)
}
