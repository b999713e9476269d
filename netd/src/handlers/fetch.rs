//! Fetch (key 1), versions 4–12, without fetch sessions (every fetch is a full fetch, which the
//! protocol allows: we answer session id 0).
//!
//! Each partition is read by the shard that owns it (all owners in parallel, one queued job per
//! owner per round). Long-poll: when less than `min_bytes` is available the fetch waits until a
//! group commit on any owning shard adds data or `max_wait_ms` passes, then reads again. Record bytes come from the engine's read plan: tail-cache slices
//! are handed over without copying; file ranges are read into memory (the sendfile path is not
//! built yet, see the README's status table).

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use engine::{Offset, ReadChunk};
use futures_channel::oneshot;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::errors;
use crate::protocol::{decode_body, Frame};
use crate::shards::ShardContext;

/// Upper bound on how long a fetch may wait, whatever the client asks.
pub const FETCH_WAIT_MS_MAX: u64 = 30_000;

/// The bytes of a read plan: the tail-cache slice itself when it is one, else one buffer.
pub fn chunks_to_bytes(chunks: &[ReadChunk], size_bytes: u64) -> std::io::Result<Bytes> {
    if let [ReadChunk::Memory(bytes)] = chunks {
        return Ok(bytes.clone());
    }
    let mut out = BytesMut::with_capacity(size_bytes as usize);
    for chunk in chunks {
        match chunk {
            ReadChunk::Memory(bytes) => out.extend_from_slice(bytes),
            ReadChunk::File { file, position, length } => {
                // Straight into the response buffer: one copy.
                let start = out.len();
                out.resize(start + *length as usize, 0);
                file.read_exact_at(&mut out[start..], *position)?;
            }
        }
    }
    Ok(out.freeze())
}

/// One partition to read, routed to its owner.
#[derive(Clone, Debug)]
struct Item {
    topic_index: usize,
    partition_index: usize,
    topic: String,
    partition: i32,
    fetch_offset: i64,
    partition_max_bytes: u64,
}

/// One partition's answer.
type Answer = (usize, usize, PartitionData);

/// Reads one partition on its owning shard, at most `room` bytes.
fn read_partition(broker: &Broker, item: &Item, room: u64) -> PartitionData {
    let mut data = PartitionData::default();
    data.partition_index = item.partition;
    data.high_watermark = -1;
    data.last_stable_offset = -1;
    data.log_start_offset = -1;
    match broker.log_for(&item.topic, item.partition).map(|id| broker.engine.log(id)) {
        Err(code) => data.error_code = code,
        Ok(Err(error)) => data.error_code = errors::engine_error_code(&error),
        Ok(Ok(log)) => {
            data.high_watermark = log.log_end_offset().0 as i64;
            data.last_stable_offset = data.high_watermark;
            data.log_start_offset = log.log_start_offset().0 as i64;
            let partition_max = item.partition_max_bytes.min(room.max(1));
            match u64::try_from(item.fetch_offset).map(Offset) {
                Err(_) => data.error_code = ResponseError::OffsetOutOfRange.code(),
                Ok(_) if room == 0 => data.records = Some(Bytes::new()),
                Ok(start) => match log.read(start, partition_max, None) {
                    Ok(read) => match chunks_to_bytes(&read.chunks, read.size_bytes) {
                        Ok(bytes) => data.records = Some(bytes),
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
    data
}

/// Runs on the owning shard: reads its partitions in request order within `room` bytes, and
/// registers for a wake-up at its next commit.
fn read_on_shard(shard: &ShardContext, items: &[Item], room_bytes: u64) -> (Vec<Answer>, oneshot::Receiver<()>) {
    let mut broker = shard.broker.borrow_mut();
    let mut room = room_bytes;
    let mut first = true;
    let answers = items
        .iter()
        .map(|item| {
            // Past the response limit only the first partition may still return data.
            let data = read_partition(&broker, item, if first { room.max(1) } else { room });
            let size = data.records.as_ref().map_or(0, |records| records.len() as u64);
            if size > 0 {
                first = false;
            }
            room = room.saturating_sub(size);
            (item.topic_index, item.partition_index, data)
        })
        .collect();
    (answers, broker.wait_for_data())
}

pub async fn handle(context: Rc<ShardContext>, frame: Frame) -> anyhow::Result<Option<super::Segments>> {
    let request: FetchRequest = decode_body(&frame)?;
    let wait_ms = u64::try_from(request.max_wait_ms.max(0)).unwrap_or(0).min(FETCH_WAIT_MS_MAX);
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    let min_bytes = u64::try_from(request.min_bytes.max(0)).unwrap_or(0);
    let response_bytes_max = u64::try_from(request.max_bytes.max(0)).unwrap_or(0);

    let mut response = FetchResponse::default();
    let mut per_shard: Vec<Vec<Item>> = (0..context.count).map(|_| Vec::new()).collect();
    for (topic_index, topic) in request.topics.iter().enumerate() {
        let mut topic_response = FetchableTopicResponse::default();
        topic_response.topic = topic.topic.clone();
        for (partition_index, partition) in topic.partitions.iter().enumerate() {
            let mut data = PartitionData::default();
            data.partition_index = partition.partition;
            data.error_code = ResponseError::UnknownTopicOrPartition.code();
            data.high_watermark = -1;
            data.last_stable_offset = -1;
            data.log_start_offset = -1;
            topic_response.partitions.push(data);
            if partition.partition >= 0 {
                per_shard[context.owner_of(topic.topic.as_str(), partition.partition)].push(Item {
                    topic_index,
                    partition_index,
                    topic: topic.topic.to_string(),
                    partition: partition.partition,
                    fetch_offset: partition.fetch_offset,
                    partition_max_bytes: u64::try_from(partition.partition_max_bytes.max(0)).unwrap_or(0),
                });
            }
        }
        response.responses.push(topic_response);
    }
    let per_shard: Vec<(usize, Rc<Vec<Item>>)> = per_shard
        .into_iter()
        .enumerate()
        .filter(|(_, items)| !items.is_empty())
        .map(|(shard, items)| (shard, Rc::new(items)))
        .collect();

    loop {
        // One round: every owning shard reads its partitions (in parallel) and arms a wake-up.
        let mut pending = Vec::new();
        for (shard, items) in &per_shard {
            let items = Vec::clone(items);
            pending.push(
                context
                    .submit(*shard, move |shard_context| {
                        Box::pin(std::future::ready(read_on_shard(shard_context, &items, response_bytes_max)))
                    })
                    .await?,
            );
        }
        let mut wakes = Vec::new();
        for outcome in pending {
            let (answers, wake) = outcome.await?;
            wakes.push(wake);
            for (topic_index, partition_index, data) in answers {
                response.responses[topic_index].partitions[partition_index] = data;
            }
        }
        // Each shard stayed within max_bytes; together they may not: keep the request's order
        // and drop the records of partitions past the limit (the client asks for them again).
        let mut total_bytes = 0u64;
        for data in response.responses.iter_mut().flat_map(|topic| topic.partitions.iter_mut()) {
            let size = data.records.as_ref().map_or(0, |records| records.len() as u64);
            if size > 0 && total_bytes > 0 && total_bytes + size > response_bytes_max {
                data.records = Some(Bytes::new());
            } else {
                total_bytes += size;
            }
        }
        let any_error = response.responses.iter().flat_map(|topic| &topic.partitions).any(|data| data.error_code != 0);
        let now = Instant::now();
        if total_bytes >= min_bytes || any_error || now >= deadline {
            return Ok(Some(super::fetch_encode::encode(frame.api_version, frame.correlation_id, &response)?));
        }
        // Woken by the next commit on any owning shard, or the deadline; then read again.
        if wakes.is_empty() {
            compio::time::sleep(deadline - now).await;
        } else {
            let _ = compio::time::timeout(deadline - now, futures_util::future::select_all(wakes)).await;
        }
    }
}
