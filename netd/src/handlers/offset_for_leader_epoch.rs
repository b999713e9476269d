//! OffsetForLeaderEpoch (key 23), versions 2–4 (librdkafka pins v2). A single node's leader epoch
//! is always 0, so epoch 0 ends at the log end offset.

use bytes::Bytes;
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::errors;
use crate::protocol::{decode_body, encode_response, Frame};

/// The leader epoch of every partition on a single node.
pub const LEADER_EPOCH: i32 = 0;

pub fn handle(broker: &Broker, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: OffsetForLeaderEpochRequest = decode_body(frame)?;
    let mut response = OffsetForLeaderEpochResponse::default();
    for topic in &request.topics {
        let mut topic_result = OffsetForLeaderTopicResult::default();
        topic_result.topic = topic.topic.clone();
        for partition in &topic.partitions {
            let mut result = EpochEndOffset::default();
            result.partition = partition.partition;
            result.leader_epoch = -1;
            result.end_offset = -1;
            let log = broker.topics.get(topic.topic.as_str()).and_then(|known| {
                usize::try_from(partition.partition).ok().and_then(|index| known.partitions.get(index)).copied()
            });
            match log.map(|id| broker.engine.log(id)) {
                None => result.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(Err(error)) => result.error_code = errors::engine_error_code(&error),
                Some(Ok(_)) if partition.current_leader_epoch > LEADER_EPOCH => {
                    result.error_code = ResponseError::UnknownLeaderEpoch.code();
                }
                Some(Ok(log)) if partition.leader_epoch >= LEADER_EPOCH => {
                    result.leader_epoch = LEADER_EPOCH;
                    result.end_offset = log.log_end_offset().0 as i64;
                }
                Some(Ok(_)) => {} // An epoch before ours: undefined, as Kafka answers.
            }
            topic_result.partitions.push(result);
        }
        response.topics.push(topic_result);
    }
    encode_response(ApiKey::OffsetForLeaderEpoch, frame.api_version, frame.correlation_id, &response)
}
