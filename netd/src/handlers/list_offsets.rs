//! ListOffsets (key 2), versions 1–7: earliest (−2), latest (−1), and by timestamp.

use bytes::Bytes;
use engine::Offset;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::errors;
use crate::protocol::{decode_body, encode_response, Frame};

const LATEST_TIMESTAMP: i64 = -1;
const EARLIEST_TIMESTAMP: i64 = -2;

pub fn handle(broker: &Broker, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: ListOffsetsRequest = decode_body(frame)?;
    let mut response = ListOffsetsResponse::default();
    for topic in &request.topics {
        let mut topic_response = ListOffsetsTopicResponse::default();
        topic_response.name = topic.name.clone();
        for partition in &topic.partitions {
            let mut result = ListOffsetsPartitionResponse::default();
            result.partition_index = partition.partition_index;
            result.timestamp = -1;
            result.offset = -1;
            let log = broker.topics.get(topic.name.as_str()).and_then(|known| {
                usize::try_from(partition.partition_index).ok().and_then(|index| known.partitions.get(index)).copied()
            });
            match log.map(|id| broker.engine.log(id)) {
                None => result.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(Err(error)) => result.error_code = errors::engine_error_code(&error),
                Some(Ok(log)) => match partition.timestamp {
                    LATEST_TIMESTAMP => result.offset = log.log_end_offset().0 as i64,
                    EARLIEST_TIMESTAMP => result.offset = log.log_start_offset().0 as i64,
                    timestamp if timestamp >= 0 => match log.offset_for_timestamp(timestamp) {
                        Ok(Some((Offset(offset), found))) => {
                            result.offset = offset as i64;
                            result.timestamp = found;
                        }
                        Ok(None) => {}
                        Err(error) => result.error_code = errors::engine_error_code(&error),
                    },
                    // -3 (max timestamp) and others: not supported yet.
                    _ => result.error_code = ResponseError::UnsupportedVersion.code(),
                },
            }
            topic_response.partitions.push(result);
        }
        response.topics.push(topic_response);
    }
    encode_response(ApiKey::ListOffsets, frame.api_version, frame.correlation_id, &response)
}
