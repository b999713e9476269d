//! Fetch (key 1), versions 4–12, without fetch sessions (every fetch is a full fetch, which the
//! protocol allows: we answer session id 0).
//!
//! Long-poll: when less than `min_bytes` is available the fetch waits until a group commit adds
//! data or `max_wait_ms` passes. Record bytes come from the engine's read plan: tail-cache slices
//! are handed over without copying; file ranges are read into memory (the sendfile path is not
//! built yet, see the README's status table).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use engine::{Offset, ReadChunk};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::errors;
use crate::protocol::{decode_body, encode_response, Frame};

/// Upper bound on how long a fetch may wait, whatever the client asks.
pub const FETCH_WAIT_MS_MAX: u64 = 30_000;

fn chunks_to_bytes(chunks: &[ReadChunk], size_bytes: u64) -> std::io::Result<Bytes> {
    if let [ReadChunk::Memory(bytes)] = chunks {
        return Ok(bytes.clone());
    }
    let mut out = BytesMut::with_capacity(size_bytes as usize);
    for chunk in chunks {
        match chunk {
            ReadChunk::Memory(bytes) => out.extend_from_slice(bytes),
            ReadChunk::File { .. } => out.extend_from_slice(&chunk.to_vec()?),
        }
    }
    Ok(out.freeze())
}

/// One pass over the requested partitions. Returns the response and the record bytes in it.
fn assemble(broker: &Broker, request: &FetchRequest) -> (FetchResponse, u64, bool) {
    let mut response = FetchResponse::default();
    let mut total_bytes = 0u64;
    let response_bytes_max = u64::try_from(request.max_bytes.max(0)).unwrap_or(0);
    for topic in &request.topics {
        let mut topic_response = FetchableTopicResponse::default();
        topic_response.topic = topic.topic.clone();
        for partition in &topic.partitions {
            let mut data = PartitionData::default();
            data.partition_index = partition.partition;
            data.high_watermark = -1;
            data.last_stable_offset = -1;
            data.log_start_offset = -1;
            let log = broker.topics.get(topic.topic.as_str()).and_then(|known| {
                usize::try_from(partition.partition).ok().and_then(|index| known.partitions.get(index)).copied()
            });
            match log.map(|id| broker.engine.log(id)) {
                None => data.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(Err(error)) => data.error_code = errors::engine_error_code(&error),
                Some(Ok(log)) => {
                    data.high_watermark = log.log_end_offset().0 as i64;
                    data.last_stable_offset = data.high_watermark;
                    data.log_start_offset = log.log_start_offset().0 as i64;
                    // Past the response limit only the first partition may still return data.
                    let room = if total_bytes >= response_bytes_max && total_bytes > 0 {
                        0
                    } else {
                        response_bytes_max - total_bytes.min(response_bytes_max)
                    };
                    let partition_max =
                        u64::try_from(partition.partition_max_bytes.max(0)).unwrap_or(0).min(room.max(1));
                    let start = u64::try_from(partition.fetch_offset).map(Offset);
                    match start {
                        Err(_) => data.error_code = ResponseError::OffsetOutOfRange.code(),
                        Ok(_) if room == 0 => data.records = Some(Bytes::new()),
                        Ok(start) => match log.read(start, partition_max, None) {
                            Ok(read) => match chunks_to_bytes(&read.chunks, read.size_bytes) {
                                Ok(bytes) => {
                                    total_bytes += bytes.len() as u64;
                                    data.records = Some(bytes);
                                }
                                Err(error) => {
                                    tracing::error!(%error, "reading a segment for a fetch failed");
                                    data.error_code = ResponseError::KafkaStorageError.code();
                                }
                            },
                            Err(error) => data.error_code = errors::engine_error_code(&error),
                        },
                    }
                }
            }
            topic_response.partitions.push(data);
        }
        response.responses.push(topic_response);
    }
    let any_error = response.responses.iter().flat_map(|topic| &topic.partitions).any(|data| data.error_code != 0);
    (response, total_bytes, any_error)
}

pub async fn handle(broker: Rc<RefCell<Broker>>, frame: Frame) -> anyhow::Result<Option<Bytes>> {
    let request: FetchRequest = decode_body(&frame)?;
    let wait_ms = u64::try_from(request.max_wait_ms.max(0)).unwrap_or(0).min(FETCH_WAIT_MS_MAX);
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    let min_bytes = u64::try_from(request.min_bytes.max(0)).unwrap_or(0);
    loop {
        let (response, total_bytes, any_error, wake) = {
            let mut state = broker.borrow_mut();
            let (response, total_bytes, any_error) = assemble(&state, &request);
            let wake = state.wait_for_data();
            (response, total_bytes, any_error, wake)
        };
        let now = Instant::now();
        if total_bytes >= min_bytes || any_error || now >= deadline {
            return Ok(Some(encode_response(ApiKey::Fetch, frame.api_version, frame.correlation_id, &response)?));
        }
        // Woken by the next commit, or the deadline; either way assemble again.
        let _ = compio::time::timeout(deadline - now, wake).await;
    }
}
