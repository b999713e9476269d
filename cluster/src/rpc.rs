//! The controller RPCs carried in the bodies of [`crate::wire::Frame::Request`] and
//! [`crate::wire::Frame::Response`]: what brokers ask the quorum (the controller's requests, the
//! metadata image, the quorum's status) and its answers. Encoding version 1, big-endian, every
//! count bounded by the bytes left (`docs/formats/controller-wire.md` describes the envelope).
//!
//! Must not know: sockets, Raft, Kafka's error codes.

use std::collections::BTreeMap;

use crate::codec::{corrupt, Reader, Writer};
use crate::controller::{
    ControllerError, Election, Heartbeat, HeartbeatReply, IsrChange, IsrChangeOutcome, NewTopic, Reassignment,
    ReassignmentOutcome, Registration,
};
use crate::quorum::{ControllerReply, ControllerRequest, RequestError};
use crate::records::{decode_batch, encode_batch, RecordBatch};
use crate::types::{BrokerId, ClusterId, PartitionIndex, TopicId};
use crate::ClusterError;

/// The RPC encoding version written by this code (2: partition states carry reassignments).
pub const RPC_VERSION: u8 = 2;

/// What a broker (or a tool) asks a quorum member.
#[derive(Clone, Debug, PartialEq)]
pub enum RpcRequest {
    /// For the active controller.
    Controller(ControllerRequest),
    /// The committed image if it is newer than `have_offset`; held up to `max_wait_ms` until it is.
    FetchImage { have_offset: u64, max_wait_ms: u32 },
    /// The quorum's leader, term, high watermark and each voter's progress.
    DescribeQuorum,
}

/// One voter's (or observer's) replication progress, as Kafka's DescribeQuorum shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaProgress {
    pub node: BrokerId,
    /// The next offset of its metadata log the leader knows of (Raft's `matched + 1`).
    pub log_end_offset: u64,
    /// Milliseconds since the leader last heard from it; None: never.
    pub last_heard_ms_ago: Option<u64>,
}

/// The quorum as its leader sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumStatus {
    pub leader: BrokerId,
    pub term: u64,
    /// The next offset after the committed ones (Kafka's high watermark).
    pub high_watermark: u64,
    pub voters: Vec<ReplicaProgress>,
}

/// A quorum member's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum RpcResponse {
    Controller(Result<ControllerReply, RequestError>),
    /// The image as of `offset`, as the records that rebuild it; None: no newer image yet.
    Image(Option<(u64, RecordBatch)>),
    Quorum(Result<QuorumStatus, RequestError>),
}

pub fn encode_request(request: &RpcRequest) -> Vec<u8> {
    let mut out = Writer(vec![RPC_VERSION]);
    match request {
        RpcRequest::Controller(request) => {
            out.u8(1);
            write_controller_request(&mut out, request);
        }
        RpcRequest::FetchImage { have_offset, max_wait_ms } => {
            out.u8(2);
            out.u64(*have_offset);
            out.u64(u64::from(*max_wait_ms));
        }
        RpcRequest::DescribeQuorum => out.u8(3),
    }
    out.0
}

pub fn decode_request(bytes: &[u8]) -> Result<RpcRequest, ClusterError> {
    let mut input = Reader::new(bytes);
    version(&mut input)?;
    let request = match input.u8()? {
        1 => RpcRequest::Controller(read_controller_request(&mut input)?),
        2 => {
            let have_offset = input.u64()?;
            let max_wait_ms = u32::try_from(input.u64()?).map_err(|_| corrupt("max_wait_ms".into()))?;
            RpcRequest::FetchImage { have_offset, max_wait_ms }
        }
        3 => RpcRequest::DescribeQuorum,
        other => return Err(corrupt(format!("unknown controller rpc {other}"))),
    };
    input.finish("controller rpc request")?;
    Ok(request)
}

pub fn encode_response(response: &RpcResponse) -> Vec<u8> {
    let mut out = Writer(vec![RPC_VERSION]);
    match response {
        RpcResponse::Controller(result) => {
            out.u8(1);
            match result {
                Ok(reply) => {
                    out.u8(0);
                    write_reply(&mut out, reply);
                }
                Err(error) => write_request_error(&mut out, error),
            }
        }
        RpcResponse::Image(image) => {
            out.u8(2);
            match image {
                None => out.u8(0),
                Some((offset, records)) => {
                    out.u8(1);
                    out.u64(*offset);
                    let batch = encode_batch(records);
                    out.len(batch.len());
                    out.0.extend_from_slice(&batch);
                }
            }
        }
        RpcResponse::Quorum(result) => {
            out.u8(3);
            match result {
                Ok(status) => {
                    out.u8(0);
                    out.i32(status.leader.0);
                    out.u64(status.term);
                    out.u64(status.high_watermark);
                    out.len(status.voters.len());
                    for voter in &status.voters {
                        out.i32(voter.node.0);
                        out.u64(voter.log_end_offset);
                        out.u64(voter.last_heard_ms_ago.unwrap_or(u64::MAX));
                    }
                }
                Err(error) => write_request_error(&mut out, error),
            }
        }
    }
    out.0
}

pub fn decode_response(bytes: &[u8]) -> Result<RpcResponse, ClusterError> {
    let mut input = Reader::new(bytes);
    version(&mut input)?;
    let response = match input.u8()? {
        1 => RpcResponse::Controller(match input.u8()? {
            0 => Ok(read_reply(&mut input)?),
            kind => Err(read_request_error(&mut input, kind)?),
        }),
        2 => RpcResponse::Image(match input.u8()? {
            0 => None,
            1 => {
                let offset = input.u64()?;
                let length = input.count(usize::MAX, 1)?;
                Some((offset, decode_batch(input.take(length)?)?))
            }
            other => return Err(corrupt(format!("image marker {other}"))),
        }),
        3 => RpcResponse::Quorum(match input.u8()? {
            0 => {
                let leader = input.broker()?;
                let term = input.u64()?;
                let high_watermark = input.u64()?;
                let count = input.count(1024, 20)?;
                let mut voters = Vec::with_capacity(count);
                for _ in 0..count {
                    let node = input.broker()?;
                    let log_end_offset = input.u64()?;
                    let last_heard_ms_ago = Some(input.u64()?).filter(|ms| *ms != u64::MAX);
                    voters.push(ReplicaProgress { node, log_end_offset, last_heard_ms_ago });
                }
                Ok(QuorumStatus { leader, term, high_watermark, voters })
            }
            kind => Err(read_request_error(&mut input, kind)?),
        }),
        other => return Err(corrupt(format!("unknown controller rpc response {other}"))),
    };
    input.finish("controller rpc response")?;
    Ok(response)
}

fn version(input: &mut Reader<'_>) -> Result<(), ClusterError> {
    match input.u8()? {
        RPC_VERSION => Ok(()),
        other => Err(corrupt(format!("controller rpc version {other}, this build speaks {RPC_VERSION}"))),
    }
}

fn write_controller_request(out: &mut Writer, request: &ControllerRequest) {
    match request {
        ControllerRequest::Register(registration) => {
            out.u8(1);
            out.i32(registration.broker.0);
            out.u64(registration.incarnation);
            match registration.cluster_id {
                None => out.u8(0),
                Some(id) => {
                    out.u8(1);
                    out.0.extend_from_slice(&id.0);
                }
            }
            out.endpoints(&registration.endpoints);
            out.optional_string(registration.rack.as_deref());
        }
        ControllerRequest::Heartbeat(heartbeat) => {
            out.u8(2);
            out.i32(heartbeat.broker.0);
            out.u64(heartbeat.epoch);
            out.u8(u8::from(heartbeat.caught_up) | u8::from(heartbeat.want_shutdown) << 1);
        }
        ControllerRequest::CreateTopic(topic) => {
            out.u8(3);
            write_new_topic(out, topic);
        }
        ControllerRequest::ValidateTopic(topic) => {
            out.u8(10);
            write_new_topic(out, topic);
        }
        ControllerRequest::CreatePartitions { name, count, assignment } => {
            out.u8(4);
            out.string(name);
            out.i32(*count);
            write_assignment(out, assignment);
        }
        ControllerRequest::DeleteTopic(name) => {
            out.u8(5);
            out.string(name);
        }
        ControllerRequest::AlterBrokerConfigs { broker, configs } => {
            out.u8(13);
            out.i32(broker.map_or(-1, |broker| broker.0));
            out.len(configs.len());
            for (key, value) in configs {
                out.string(key);
                out.string(value);
            }
        }
        ControllerRequest::AlterTopicConfigs { name, configs } => {
            out.u8(12);
            out.string(name);
            out.len(configs.len());
            for (key, value) in configs {
                out.string(key);
                out.string(value);
            }
        }
        ControllerRequest::AllocateProducerIds { broker, epoch } => {
            out.u8(6);
            out.i32(broker.0);
            out.u64(*epoch);
        }
        ControllerRequest::ElectPreferred(partitions) => {
            out.u8(7);
            match partitions {
                None => out.u8(0),
                Some(partitions) => {
                    out.u8(1);
                    write_partitions(out, partitions);
                }
            }
        }
        ControllerRequest::ElectUnclean(partitions) => {
            out.u8(8);
            write_partitions(out, partitions);
        }
        ControllerRequest::AlterPartition { broker, epoch, changes } => {
            out.u8(9);
            out.i32(broker.0);
            out.u64(*epoch);
            out.len(changes.len());
            for change in changes {
                out.string(&change.topic);
                out.i32(change.partition.0);
                out.i32(change.leader_epoch);
                out.i32(change.partition_epoch);
                out.brokers(&change.isr);
            }
        }
        ControllerRequest::AlterReassignments { reassignments, allow_factor_change } => {
            out.u8(11);
            out.u8(u8::from(*allow_factor_change));
            out.len(reassignments.len());
            for reassignment in reassignments {
                out.string(&reassignment.topic);
                out.i32(reassignment.partition.0);
                match &reassignment.target {
                    None => out.u8(0),
                    Some(target) => {
                        out.u8(1);
                        out.brokers(target);
                    }
                }
            }
        }
    }
}

fn write_new_topic(out: &mut Writer, topic: &NewTopic) {
    out.string(&topic.name);
    out.0.extend_from_slice(&topic.id.0);
    out.i32(topic.partitions);
    out.u16(topic.replication_factor as u16);
    write_assignment(out, &topic.assignment);
    out.len(topic.configs.len());
    for (key, value) in &topic.configs {
        out.string(key);
        out.string(value);
    }
}

fn read_new_topic(input: &mut Reader<'_>) -> Result<NewTopic, ClusterError> {
    let name = input.string()?;
    let id = TopicId(input.array16()?);
    let partitions = input.i32()?;
    let replication_factor = input.u16()? as i16;
    let assignment = read_assignment(input)?;
    let count = input.count(100_000, 8)?;
    let mut configs = BTreeMap::new();
    for _ in 0..count {
        configs.insert(input.string()?, input.string()?);
    }
    Ok(NewTopic { name, id, partitions, replication_factor, assignment, configs })
}

fn write_partitions(out: &mut Writer, partitions: &[(String, PartitionIndex)]) {
    out.len(partitions.len());
    for (topic, partition) in partitions {
        out.string(topic);
        out.i32(partition.0);
    }
}

fn read_partitions(input: &mut Reader<'_>) -> Result<Vec<(String, PartitionIndex)>, ClusterError> {
    let count = input.count(10_000_000, 8)?;
    let mut partitions = Vec::with_capacity(count);
    for _ in 0..count {
        partitions.push((input.string()?, PartitionIndex(input.i32()?)));
    }
    Ok(partitions)
}

fn read_controller_request(input: &mut Reader<'_>) -> Result<ControllerRequest, ClusterError> {
    Ok(match input.u8()? {
        1 => {
            let broker = input.broker()?;
            let incarnation = input.u64()?;
            let cluster_id = match input.u8()? {
                0 => None,
                1 => Some(ClusterId(input.array16()?)),
                other => return Err(corrupt(format!("cluster id marker {other}"))),
            };
            let endpoints = input.endpoints()?;
            let rack = input.optional_string()?;
            ControllerRequest::Register(Registration { broker, incarnation, cluster_id, endpoints, rack })
        }
        2 => {
            let broker = input.broker()?;
            let epoch = input.u64()?;
            let flags = input.u8()?;
            if flags > 3 {
                return Err(corrupt(format!("heartbeat flags {flags}")));
            }
            ControllerRequest::Heartbeat(Heartbeat {
                broker,
                epoch,
                caught_up: flags & 1 != 0,
                want_shutdown: flags & 2 != 0,
            })
        }
        3 => ControllerRequest::CreateTopic(read_new_topic(input)?),
        10 => ControllerRequest::ValidateTopic(read_new_topic(input)?),
        4 => ControllerRequest::CreatePartitions {
            name: input.string()?,
            count: input.i32()?,
            assignment: read_assignment(input)?,
        },
        5 => ControllerRequest::DeleteTopic(input.string()?),
        13 => {
            let broker = match input.i32()? {
                -1 => None,
                id if id >= 0 => Some(BrokerId(id)),
                other => return Err(corrupt(format!("broker configs of broker {other}"))),
            };
            let count = input.count(100_000, 8)?;
            let mut configs = BTreeMap::new();
            for _ in 0..count {
                configs.insert(input.string()?, input.string()?);
            }
            ControllerRequest::AlterBrokerConfigs { broker, configs }
        }
        12 => {
            let name = input.string()?;
            let count = input.count(100_000, 8)?;
            let mut configs = BTreeMap::new();
            for _ in 0..count {
                configs.insert(input.string()?, input.string()?);
            }
            ControllerRequest::AlterTopicConfigs { name, configs }
        }
        6 => ControllerRequest::AllocateProducerIds { broker: input.broker()?, epoch: input.u64()? },
        7 => ControllerRequest::ElectPreferred(match input.u8()? {
            0 => None,
            1 => Some(read_partitions(input)?),
            other => return Err(corrupt(format!("election marker {other}"))),
        }),
        8 => ControllerRequest::ElectUnclean(read_partitions(input)?),
        9 => {
            let (broker, epoch) = (input.broker()?, input.u64()?);
            // The smallest change: an empty name, three i32s, an empty ISR.
            let count = input.count(10_000_000, 4 + 12 + 4)?;
            let mut changes = Vec::with_capacity(count);
            for _ in 0..count {
                changes.push(IsrChange {
                    topic: input.string()?,
                    partition: PartitionIndex(input.i32()?),
                    leader_epoch: input.i32()?,
                    partition_epoch: input.i32()?,
                    isr: input.brokers()?,
                });
            }
            ControllerRequest::AlterPartition { broker, epoch, changes }
        }
        11 => {
            let allow_factor_change = match input.u8()? {
                0 => false,
                1 => true,
                other => return Err(corrupt(format!("replication factor change marker {other}"))),
            };
            // The smallest: an empty name, a partition index, a cancellation marker.
            let count = input.count(10_000_000, 4 + 4 + 1)?;
            let mut reassignments = Vec::with_capacity(count);
            for _ in 0..count {
                let topic = input.string()?;
                let partition = PartitionIndex(input.i32()?);
                let target = match input.u8()? {
                    0 => None,
                    1 => Some(input.brokers()?),
                    other => return Err(corrupt(format!("reassignment target marker {other}"))),
                };
                reassignments.push(Reassignment { topic, partition, target });
            }
            ControllerRequest::AlterReassignments { reassignments, allow_factor_change }
        }
        other => return Err(corrupt(format!("unknown controller request {other}"))),
    })
}

fn write_assignment(out: &mut Writer, assignment: &[Vec<BrokerId>]) {
    out.len(assignment.len());
    for replicas in assignment {
        out.brokers(replicas);
    }
}

fn read_assignment(input: &mut Reader<'_>) -> Result<Vec<Vec<BrokerId>>, ClusterError> {
    let count = input.count(1_000_000, 4)?;
    (0..count).map(|_| input.brokers()).collect()
}

fn write_reply(out: &mut Writer, reply: &ControllerReply) {
    match reply {
        ControllerReply::Registered { epoch } => {
            out.u8(1);
            out.u64(*epoch);
        }
        ControllerReply::Heartbeat(reply) => {
            out.u8(2);
            out.u8(u8::from(reply.fenced) | u8::from(reply.shutdown_ok) << 1);
        }
        ControllerReply::Done => out.u8(3),
        ControllerReply::ProducerIds(block) => {
            out.u8(4);
            out.u64(block.start);
            out.u64(block.end);
        }
        ControllerReply::Elections(results) => {
            out.u8(5);
            out.len(results.len());
            for result in results {
                out.u8(match result {
                    Election::Elected => 0,
                    Election::NotNeeded => 1,
                    Election::PreferredNotAvailable => 2,
                    Election::UnknownPartition => 3,
                    Election::EligibleLeadersNotAvailable => 4,
                });
            }
        }
        ControllerReply::IsrChanges(outcomes) => {
            out.u8(6);
            out.len(outcomes.len());
            for outcome in outcomes {
                match outcome {
                    IsrChangeOutcome::Changed(state) => {
                        out.u8(0);
                        out.partition_state(state);
                        out.brokers(&state.adding);
                        out.brokers(&state.removing);
                    }
                    IsrChangeOutcome::UnknownPartition => out.u8(1),
                    IsrChangeOutcome::FencedLeaderEpoch => out.u8(2),
                    IsrChangeOutcome::NotLeader => out.u8(3),
                    IsrChangeOutcome::InvalidUpdateVersion => out.u8(4),
                    IsrChangeOutcome::InvalidIsr => out.u8(5),
                    IsrChangeOutcome::IneligibleReplica(broker) => {
                        out.u8(6);
                        out.i32(broker.0);
                    }
                }
            }
        }
        ControllerReply::Reassignments(outcomes) => {
            out.u8(7);
            out.len(outcomes.len());
            for outcome in outcomes {
                match outcome {
                    ReassignmentOutcome::Accepted => out.u8(0),
                    ReassignmentOutcome::UnknownPartition => out.u8(1),
                    ReassignmentOutcome::NoReassignmentInProgress => out.u8(2),
                    ReassignmentOutcome::InvalidAssignment(reason) => {
                        out.u8(3);
                        out.string(reason);
                    }
                    ReassignmentOutcome::ReplicationFactorChange { from, to } => {
                        out.u8(4);
                        out.i32(i32::try_from(*from).unwrap_or(i32::MAX));
                        out.i32(i32::try_from(*to).unwrap_or(i32::MAX));
                    }
                }
            }
        }
    }
}

fn read_reply(input: &mut Reader<'_>) -> Result<ControllerReply, ClusterError> {
    Ok(match input.u8()? {
        1 => ControllerReply::Registered { epoch: input.u64()? },
        2 => {
            let flags = input.u8()?;
            ControllerReply::Heartbeat(HeartbeatReply { fenced: flags & 1 != 0, shutdown_ok: flags & 2 != 0 })
        }
        3 => ControllerReply::Done,
        4 => {
            let (start, end) = (input.u64()?, input.u64()?);
            if start > end {
                return Err(corrupt(format!("producer id block {start}..{end}")));
            }
            ControllerReply::ProducerIds(start..end)
        }
        5 => {
            let count = input.count(10_000_000, 1)?;
            let mut results = Vec::with_capacity(count);
            for _ in 0..count {
                results.push(match input.u8()? {
                    0 => Election::Elected,
                    1 => Election::NotNeeded,
                    2 => Election::PreferredNotAvailable,
                    3 => Election::UnknownPartition,
                    4 => Election::EligibleLeadersNotAvailable,
                    other => return Err(corrupt(format!("election result {other}"))),
                });
            }
            ControllerReply::Elections(results)
        }
        6 => {
            let count = input.count(10_000_000, 1)?;
            let mut outcomes = Vec::with_capacity(count);
            for _ in 0..count {
                outcomes.push(match input.u8()? {
                    0 => {
                        let mut state = input.partition_state()?;
                        state.adding = input.brokers()?;
                        state.removing = input.brokers()?;
                        IsrChangeOutcome::Changed(Box::new(state))
                    }
                    1 => IsrChangeOutcome::UnknownPartition,
                    2 => IsrChangeOutcome::FencedLeaderEpoch,
                    3 => IsrChangeOutcome::NotLeader,
                    4 => IsrChangeOutcome::InvalidUpdateVersion,
                    5 => IsrChangeOutcome::InvalidIsr,
                    6 => IsrChangeOutcome::IneligibleReplica(input.broker()?),
                    other => return Err(corrupt(format!("ISR change outcome {other}"))),
                });
            }
            ControllerReply::IsrChanges(outcomes)
        }
        7 => {
            let count = input.count(10_000_000, 1)?;
            let mut outcomes = Vec::with_capacity(count);
            for _ in 0..count {
                outcomes.push(match input.u8()? {
                    0 => ReassignmentOutcome::Accepted,
                    1 => ReassignmentOutcome::UnknownPartition,
                    2 => ReassignmentOutcome::NoReassignmentInProgress,
                    3 => ReassignmentOutcome::InvalidAssignment(input.string()?),
                    4 => ReassignmentOutcome::ReplicationFactorChange {
                        from: input.i32()?.max(0) as usize,
                        to: input.i32()?.max(0) as usize,
                    },
                    other => return Err(corrupt(format!("reassignment outcome {other}"))),
                });
            }
            ControllerReply::Reassignments(outcomes)
        }
        other => return Err(corrupt(format!("unknown controller reply {other}"))),
    })
}

/// Error kinds start at 1 (0 marks success).
fn write_request_error(out: &mut Writer, error: &RequestError) {
    match error {
        RequestError::NotController { leader } => {
            out.u8(1);
            out.i32(leader.map_or(-1, |leader| leader.0));
        }
        RequestError::Refused(error) => match error {
            ControllerError::TopicExists(name) => {
                out.u8(2);
                out.string(name);
            }
            ControllerError::UnknownTopic(name) => {
                out.u8(3);
                out.string(name);
            }
            ControllerError::InvalidReplicationFactor { requested, available } => {
                out.u8(4);
                out.u16(*requested as u16);
                out.u64(*available as u64);
            }
            ControllerError::InvalidPartitions(reason) => {
                out.u8(5);
                out.string(reason);
            }
            ControllerError::InvalidReplicaAssignment(reason) => {
                out.u8(6);
                out.string(reason);
            }
            ControllerError::StaleBrokerEpoch { broker, epoch } => {
                out.u8(7);
                out.i32(broker.0);
                out.u64(*epoch);
            }
            ControllerError::DuplicateBrokerRegistration { broker, heartbeating } => {
                out.u8(8);
                out.i32(broker.0);
                out.u8(u8::from(*heartbeating));
            }
            ControllerError::InconsistentClusterId { ours, theirs } => {
                out.u8(9);
                out.0.extend_from_slice(&ours.0);
                out.0.extend_from_slice(&theirs.0);
            }
            ControllerError::Corrupt(reason) => {
                out.u8(10);
                out.string(reason);
            }
        },
    }
}

fn read_request_error(input: &mut Reader<'_>, kind: u8) -> Result<RequestError, ClusterError> {
    let refused = |error| Ok(RequestError::Refused(error));
    match kind {
        1 => {
            let leader = input.i32()?;
            Ok(RequestError::NotController { leader: (leader >= 0).then_some(BrokerId(leader)) })
        }
        2 => refused(ControllerError::TopicExists(input.string()?)),
        3 => refused(ControllerError::UnknownTopic(input.string()?)),
        4 => refused(ControllerError::InvalidReplicationFactor {
            requested: input.u16()? as i16,
            available: usize::try_from(input.u64()?).map_err(|_| corrupt("available brokers".into()))?,
        }),
        5 => refused(ControllerError::InvalidPartitions(input.string()?)),
        6 => refused(ControllerError::InvalidReplicaAssignment(input.string()?)),
        7 => refused(ControllerError::StaleBrokerEpoch { broker: input.broker()?, epoch: input.u64()? }),
        8 => refused(ControllerError::DuplicateBrokerRegistration {
            broker: input.broker()?,
            heartbeating: input.u8()? != 0,
        }),
        9 => refused(ControllerError::InconsistentClusterId {
            ours: ClusterId(input.array16()?),
            theirs: ClusterId(input.array16()?),
        }),
        10 => refused(ControllerError::Corrupt(input.string()?)),
        other => Err(corrupt(format!("unknown controller error {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Endpoint;

    fn requests() -> Vec<RpcRequest> {
        let registration = Registration {
            broker: BrokerId(3),
            incarnation: 77,
            cluster_id: Some(ClusterId([5; 16])),
            endpoints: vec![Endpoint { name: "PLAINTEXT".into(), host: "127.0.0.3".into(), port: 9092 }],
            rack: None,
        };
        let topic = NewTopic {
            name: "t".into(),
            id: TopicId([8; 16]),
            partitions: -1,
            replication_factor: -1,
            assignment: vec![vec![BrokerId(1), BrokerId(2)]],
            configs: BTreeMap::from([("retention.ms".into(), "5".into())]),
        };
        vec![
            RpcRequest::Controller(ControllerRequest::Register(registration)),
            RpcRequest::Controller(ControllerRequest::Heartbeat(Heartbeat {
                broker: BrokerId(3),
                epoch: 9,
                caught_up: true,
                want_shutdown: true,
            })),
            RpcRequest::Controller(ControllerRequest::CreateTopic(topic.clone())),
            RpcRequest::Controller(ControllerRequest::ValidateTopic(topic)),
            RpcRequest::Controller(ControllerRequest::CreatePartitions {
                name: "t".into(),
                count: 4,
                assignment: Vec::new(),
            }),
            RpcRequest::Controller(ControllerRequest::DeleteTopic("t".into())),
            RpcRequest::Controller(ControllerRequest::AlterBrokerConfigs {
                broker: Some(BrokerId(3)),
                configs: BTreeMap::from([("log.segment.bytes".into(), "2000000".into())]),
            }),
            RpcRequest::Controller(ControllerRequest::AlterTopicConfigs {
                name: "t".into(),
                configs: BTreeMap::from([("retention.ms".into(), "5".into())]),
            }),
            RpcRequest::Controller(ControllerRequest::AllocateProducerIds { broker: BrokerId(3), epoch: 9 }),
            RpcRequest::Controller(ControllerRequest::ElectPreferred(Some(vec![("t".into(), PartitionIndex(2))]))),
            RpcRequest::Controller(ControllerRequest::ElectPreferred(None)),
            RpcRequest::Controller(ControllerRequest::ElectUnclean(vec![("u".into(), PartitionIndex(0))])),
            RpcRequest::Controller(ControllerRequest::AlterReassignments {
                reassignments: vec![
                    Reassignment { topic: "t".into(), partition: PartitionIndex(1), target: Some(vec![BrokerId(2)]) },
                    Reassignment { topic: "u".into(), partition: PartitionIndex(0), target: None },
                ],
                allow_factor_change: true,
            }),
            RpcRequest::Controller(ControllerRequest::AlterPartition {
                broker: BrokerId(2),
                epoch: 11,
                changes: vec![IsrChange {
                    topic: "t".into(),
                    partition: PartitionIndex(1),
                    leader_epoch: 3,
                    partition_epoch: 8,
                    isr: vec![BrokerId(2), BrokerId(1)],
                }],
            }),
            RpcRequest::FetchImage { have_offset: 12, max_wait_ms: 500 },
            RpcRequest::DescribeQuorum,
        ]
    }

    fn responses() -> Vec<RpcResponse> {
        let refused = |error| RpcResponse::Controller(Err(RequestError::Refused(error)));
        vec![
            RpcResponse::Controller(Ok(ControllerReply::Registered { epoch: 4 })),
            RpcResponse::Controller(Ok(ControllerReply::Heartbeat(HeartbeatReply {
                fenced: true,
                shutdown_ok: false,
            }))),
            RpcResponse::Controller(Ok(ControllerReply::Done)),
            RpcResponse::Controller(Ok(ControllerReply::ProducerIds(1000..2000))),
            RpcResponse::Controller(Ok(ControllerReply::Elections(vec![
                Election::Elected,
                Election::UnknownPartition,
                Election::EligibleLeadersNotAvailable,
            ]))),
            RpcResponse::Controller(Ok(ControllerReply::IsrChanges(vec![
                IsrChangeOutcome::Changed(Box::new(crate::records::PartitionState {
                    topic_id: TopicId([4; 16]),
                    partition: PartitionIndex(1),
                    replicas: vec![BrokerId(1), BrokerId(2)],
                    isr: vec![BrokerId(2)],
                    leader: Some(BrokerId(2)),
                    leader_epoch: 3,
                    partition_epoch: 9,
                    adding: vec![BrokerId(1)],
                    removing: vec![BrokerId(3)],
                })),
                IsrChangeOutcome::UnknownPartition,
                IsrChangeOutcome::FencedLeaderEpoch,
                IsrChangeOutcome::NotLeader,
                IsrChangeOutcome::InvalidUpdateVersion,
                IsrChangeOutcome::InvalidIsr,
                IsrChangeOutcome::IneligibleReplica(BrokerId(3)),
            ]))),
            RpcResponse::Controller(Ok(ControllerReply::Reassignments(vec![
                ReassignmentOutcome::Accepted,
                ReassignmentOutcome::UnknownPartition,
                ReassignmentOutcome::NoReassignmentInProgress,
                ReassignmentOutcome::InvalidAssignment("no".into()),
                ReassignmentOutcome::ReplicationFactorChange { from: 3, to: 2 },
            ]))),
            RpcResponse::Controller(Err(RequestError::NotController { leader: Some(BrokerId(2)) })),
            RpcResponse::Controller(Err(RequestError::NotController { leader: None })),
            refused(ControllerError::TopicExists("t".into())),
            refused(ControllerError::UnknownTopic("t".into())),
            refused(ControllerError::InvalidReplicationFactor { requested: 3, available: 2 }),
            refused(ControllerError::InvalidPartitions("x".into())),
            refused(ControllerError::InvalidReplicaAssignment("y".into())),
            refused(ControllerError::StaleBrokerEpoch { broker: BrokerId(1), epoch: 2 }),
            refused(ControllerError::DuplicateBrokerRegistration { broker: BrokerId(1), heartbeating: true }),
            refused(ControllerError::InconsistentClusterId { ours: ClusterId([1; 16]), theirs: ClusterId([2; 16]) }),
            refused(ControllerError::Corrupt("z".into())),
            RpcResponse::Image(None),
            RpcResponse::Image(Some((7, vec![crate::records::MetadataRecord::ClusterId(ClusterId([3; 16]))]))),
            RpcResponse::Quorum(Ok(QuorumStatus {
                leader: BrokerId(1),
                term: 3,
                high_watermark: 40,
                voters: vec![
                    ReplicaProgress { node: BrokerId(1), log_end_offset: 40, last_heard_ms_ago: Some(0) },
                    ReplicaProgress { node: BrokerId(2), log_end_offset: 38, last_heard_ms_ago: None },
                ],
            })),
            RpcResponse::Quorum(Err(RequestError::NotController { leader: None })),
        ]
    }

    #[test]
    fn every_request_and_response_round_trips() {
        for request in requests() {
            assert_eq!(decode_request(&encode_request(&request)).expect("decodes"), request);
        }
        for response in responses() {
            assert_eq!(decode_response(&encode_response(&response)).expect("decodes"), response);
        }
    }

    #[test]
    fn cut_or_damaged_bodies_are_errors_never_panics() {
        for request in requests() {
            let bytes = encode_request(&request);
            for cut in 0..bytes.len() {
                assert!(decode_request(&bytes[..cut]).is_err());
            }
            for at in 0..bytes.len() {
                let mut damaged = bytes.clone();
                damaged[at] ^= 0xff;
                let _ = decode_request(&damaged);
            }
        }
        for response in responses() {
            let bytes = encode_response(&response);
            for cut in 0..bytes.len() {
                assert!(decode_response(&bytes[..cut]).is_err());
            }
            for at in 0..bytes.len() {
                let mut damaged = bytes.clone();
                damaged[at] ^= 0xff;
                let _ = decode_response(&damaged);
            }
        }
    }
}
