//! A shard's follower fetchers: one task per leader broker that this shard's follower replicas
//! copy from (Kafka's replica fetcher thread per source broker; here per shard, so a follower
//! stays on the shard that owns it), each sending Fetch with this broker's id as `replica_id` for
//! all of that leader's partitions at once and appending what comes back byte for byte
//! (`Partitions::append_replicated`: the leader's offsets and leader epochs).
//!
//! Durability (decision 0017), `skua.replication.follower.fsync.before.ack`: by default a follower
//! fetches from its *committed* end and fetches again only once what it appended is committed, so
//! the offset it reports to the leader (its fetch offset, which the high watermark follows) is
//! fsynced here. Off (Kafka's model), it fetches from what it appended and fetches again at once;
//! its group commit fsyncs in the background.
//!
//! Divergent tails (a former leader's records its successor never had) are cut as Kafka's
//! followers cut them since KIP-595: each partition's fetch names the epoch the follower's log
//! ends in (`last_fetched_epoch`); a leader whose log diverges there answers with the diverging
//! epoch and no records, and the follower truncates (`Partitions::truncate_to_divergence`) and
//! fetches again. OFFSET_OUT_OF_RANGE: a follower behind the leader's log start starts again
//! there (`Partitions::reset_to`); otherwise it cuts nothing and asks again after a backoff. The
//! leader's log start in every response moves the follower's up to it, within the follower's
//! high watermark (`Partitions::follow_log_start`: DeleteRecords and retention reach followers
//! this way). Which partitions to follow comes from the
//! metadata image (`ShardState::assign` fills `ShardState::followed`). Replication throttles
//! (`runtime::replication_quota`): while this broker's follower meter is over
//! `follower.replication.throttled.rate`, its throttled replicas outside the ISR are left out of
//! its fetches.
//!
//! Must not know: how the leader decides the high watermark; Kafka error codes beyond telling
//! "retry after the next image" from "done".

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use compio::io::{AsyncReadExt, AsyncWriteExt};
use compio::net::TcpStream;
use engine::batch::ValidatedBatches;
use engine::{LeaderEpoch, LogId, Offset};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::ResponseError;
use replica::ReadBound;

use crate::clock::now_ms;
use crate::limits::{
    REPLICA_COMMIT_WAIT_MS_MAX, REPLICA_FETCH_BACKOFF_MS, REPLICA_FETCH_FRAME_BYTES_MAX, REPLICA_FETCH_IO_TIMEOUT_MS,
    REPLICA_FETCH_PARTITION_BYTES_MAX, REPLICA_FETCH_RESPONSE_BYTES_MAX, REPLICA_FETCH_WAIT_MS, TICK_MS,
};
use crate::runtime::context::ShardContext;
use crate::runtime::replication_quota::{Side, Throttle};

/// The Fetch version followers send: v12, the newest that names topics (a follower's fetch
/// needs no session or topic id).
const FETCH_VERSION: i16 = 12;

/// Runs the shard's fetchers: starts one for each leader this shard follows partitions of; each
/// ends by itself when it has nothing left to copy.
pub async fn run(context: Rc<ShardContext>) {
    let mut running: BTreeMap<i32, compio::runtime::JoinHandle<()>> = BTreeMap::new();
    loop {
        running.retain(|_, task| !task.is_finished());
        let leaders: BTreeSet<i32> = context.state.borrow().followed.values().map(|target| target.leader).collect();
        for leader in leaders {
            running.entry(leader).or_insert_with(|| compio::runtime::spawn(fetch_from(context.clone(), leader)));
        }
        compio::time::sleep(Duration::from_millis(TICK_MS)).await;
    }
}

/// A partition to copy: where, from which offset, in which leader epoch.
struct Wanted {
    topic: String,
    partition: i32,
    id: LogId,
    fetch_offset: Offset,
    epoch: LeaderEpoch,
    /// The epoch the follower's log ends in, or -1.
    last_fetched_epoch: i32,
    /// The follower's log start, reported to the leader (its DeleteRecords waits for it).
    log_start: Offset,
    /// This replica is in the partition's ISR (the image's): never throttled.
    in_sync: bool,
}

/// The partitions this shard follows from `leader`, each from its committed end.
fn wanted_from(context: &ShardContext, leader: i32) -> Vec<Wanted> {
    let state = context.state.borrow();
    state
        .followed
        .iter()
        .filter(|(_, target)| target.leader == leader)
        .filter_map(|((topic, partition), target)| {
            let id = state.replica_log(topic, *partition).ok()?;
            let replica = state.partitions.get(id).ok()?;
            let fetch_offset = if context.config.follower_fsync_before_ack {
                replica.log_end_offset()
            } else {
                state.partitions.next_offset(id).ok()?
            };
            let last_fetched_epoch = replica.last_epoch().map_or(-1, |epoch| epoch.0);
            let log_start = state.partitions.log_start_offset(id).ok()?;
            let key = (topic.clone(), *partition);
            let me = context.config.node_id;
            let in_sync = state.assignments.get(&key).is_some_and(|assignment| assignment.isr.contains(&me));
            Some(Wanted {
                topic: topic.clone(),
                partition: *partition,
                id,
                fetch_offset,
                epoch: target.epoch,
                last_fetched_epoch,
                log_start,
                in_sync,
            })
        })
        .collect()
}

/// `wanted` without the throttled replicas outside the ISR while this broker's follower meter is
/// over `follower.replication.throttled.rate` (Kafka's `shouldFollowerThrottle`), and whether the
/// replicas fetched are throttled ones (their bytes are counted).
fn unthrottled(context: &ShardContext, wanted: Vec<Wanted>) -> (Vec<Wanted>, Vec<bool>) {
    let catalog = context.catalog();
    let quotas = &context.budgets.replication_quotas;
    let Some(throttle) = Throttle::of(&catalog, quotas, Side::Follower, context.config.node_id) else {
        let count = wanted.len();
        return (wanted, vec![false; count]);
    };
    let exceeded = throttle.exceeded(now_ms());
    wanted
        .into_iter()
        .map(|entry| (throttle.throttles(&entry.topic, entry.partition), entry))
        .filter(|(throttled, entry)| !(*throttled && exceeded && !entry.in_sync))
        .map(|(throttled, entry)| (entry, throttled))
        .unzip()
}

/// The client address `leader` registered (its first endpoint), from this broker's image.
fn leader_address(context: &ShardContext, leader: i32) -> Option<String> {
    let image = context.image()?;
    let registration = image.brokers.get(&cluster::BrokerId(leader))?;
    let endpoint = registration.endpoints.first()?;
    Some(format!("{}:{}", endpoint.host, endpoint.port))
}

/// Copies from `leader` until this shard follows nothing of it.
async fn fetch_from(context: Rc<ShardContext>, leader: i32) {
    let mut connection: Option<TcpStream> = None;
    let mut correlation_id: i32 = 0;
    let backoff = Duration::from_millis(REPLICA_FETCH_BACKOFF_MS);
    loop {
        let wanted = wanted_from(&context, leader);
        if wanted.is_empty() {
            return;
        }
        let (wanted, throttled) = unthrottled(&context, wanted);
        if wanted.is_empty() {
            // Every partition is held back by the follower quota: ask again once the meter moved.
            compio::time::sleep(Duration::from_millis(TICK_MS)).await;
            continue;
        }
        let stream = match connection.as_mut() {
            Some(stream) => stream,
            None => {
                let Some(address) = leader_address(&context, leader) else {
                    compio::time::sleep(backoff).await;
                    continue;
                };
                let timeout = Duration::from_millis(REPLICA_FETCH_IO_TIMEOUT_MS);
                match compio::time::timeout(timeout, TcpStream::connect(address.as_str())).await {
                    Ok(Ok(stream)) => connection.insert(stream),
                    Ok(Err(error)) => {
                        tracing::debug!(leader, %address, %error, "could not connect to the leader to fetch");
                        compio::time::sleep(backoff).await;
                        continue;
                    }
                    Err(_) => {
                        compio::time::sleep(backoff).await;
                        continue;
                    }
                }
            }
        };
        correlation_id = correlation_id.wrapping_add(1);
        let request = fetch_request(context.config.node_id, &wanted);
        let timeout = Duration::from_millis(REPLICA_FETCH_IO_TIMEOUT_MS + REPLICA_FETCH_WAIT_MS as u64);
        let response = match compio::time::timeout(timeout, exchange(stream, &request, correlation_id)).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                tracing::debug!(leader, %error, "fetch from the leader failed; reconnecting");
                connection = None;
                compio::time::sleep(backoff).await;
                continue;
            }
            Err(_) => {
                tracing::debug!(leader, "fetch from the leader timed out; reconnecting");
                connection = None;
                continue;
            }
        };
        let outcome = apply_response(&context, leader, &wanted, &throttled, response);
        if outcome.retry_later {
            compio::time::sleep(backoff).await;
        }
        if context.config.follower_fsync_before_ack {
            wait_committed(&context, &outcome.appended).await;
        }
    }
}

/// Fetch v12 as a follower: this broker's id as `replica_id`, every wanted partition.
fn fetch_request(me: i32, wanted: &[Wanted]) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for entry in wanted {
        if topics.last().is_none_or(|topic| topic.topic.as_str() != entry.topic) {
            topics.push(FetchTopic::default().with_topic(TopicName(StrBytes::from_string(entry.topic.clone()))));
        }
        let partition = FetchPartition::default()
            .with_partition(entry.partition)
            .with_current_leader_epoch(entry.epoch.0)
            .with_fetch_offset(entry.fetch_offset.0 as i64)
            .with_last_fetched_epoch(entry.last_fetched_epoch)
            .with_log_start_offset(entry.log_start.0 as i64)
            .with_partition_max_bytes(REPLICA_FETCH_PARTITION_BYTES_MAX);
        if let Some(topic) = topics.last_mut() {
            topic.partitions.push(partition);
        }
    }
    FetchRequest::default()
        .with_replica_id(BrokerId(me))
        .with_max_wait_ms(REPLICA_FETCH_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(REPLICA_FETCH_RESPONSE_BYTES_MAX)
        .with_topics(topics)
}

/// Sends one request and reads its response (bounded by [`REPLICA_FETCH_FRAME_BYTES_MAX`]).
async fn exchange(
    stream: &mut TcpStream,
    request: &FetchRequest,
    correlation_id: i32,
) -> anyhow::Result<FetchResponse> {
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Fetch as i16)
        .with_request_api_version(FETCH_VERSION)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("skua-replica-fetcher")))
        .encode(&mut body, ApiKey::Fetch.request_header_version(FETCH_VERSION))?;
    request.encode(&mut body, FETCH_VERSION)?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
    frame.extend_from_slice(&body);
    let compio::BufResult(written, _) = stream.write_all(frame).await;
    written?;
    let compio::BufResult(read, size) = stream.read_exact([0u8; 4]).await;
    read?;
    let size = usize::try_from(i32::from_be_bytes(size)).map_err(|_| anyhow::anyhow!("a negative frame size"))?;
    if size > REPLICA_FETCH_FRAME_BYTES_MAX {
        anyhow::bail!("a fetch response of {size} bytes (at most {REPLICA_FETCH_FRAME_BYTES_MAX})");
    }
    let compio::BufResult(read, frame) = stream.read_exact(vec![0u8; size]).await;
    read?;
    let mut bytes = Bytes::from(frame);
    let header = ResponseHeader::decode(&mut bytes, ApiKey::Fetch.response_header_version(FETCH_VERSION))?;
    if header.correlation_id != correlation_id {
        anyhow::bail!("answer to request {} while waiting for {correlation_id}", header.correlation_id);
    }
    FetchResponse::decode(&mut bytes, FETCH_VERSION)
}

/// What one response did: the partitions that took batches (and the end their commit must
/// reach), and whether the fetcher should pause (errors the next image or a backoff fixes).
#[derive(Default)]
struct Outcome {
    appended: Vec<(LogId, Offset)>,
    retry_later: bool,
}

/// Appends each partition's batches and takes the leader's high watermark, on this shard.
fn apply_response(
    context: &ShardContext,
    leader: i32,
    wanted: &[Wanted],
    throttled: &[bool],
    response: FetchResponse,
) -> Outcome {
    let mut outcome = Outcome::default();
    if response.error_code != 0 {
        outcome.retry_later = true;
        return outcome;
    }
    let mut state = context.state.borrow_mut();
    let now = now_ms();
    for topic in response.responses {
        for data in topic.partitions {
            let Some((entry, throttled)) = wanted
                .iter()
                .zip(throttled)
                .find(|(entry, _)| entry.topic == topic.topic.as_str() && entry.partition == data.partition_index)
            else {
                continue;
            };
            // Still followed from this leader in this epoch (an image may have changed it while
            // the fetch was out).
            let key = (entry.topic.clone(), entry.partition);
            if state.followed.get(&key).is_none_or(|target| target.leader != leader || target.epoch != entry.epoch) {
                continue;
            }
            if data.error_code == ResponseError::OffsetOutOfRange.code() {
                match start_over(&mut state, entry, &data, now) {
                    Ok(true) => state.replication_counters.truncations += 1,
                    Ok(false) => outcome.retry_later = true,
                    Err(error) => {
                        tracing::warn!(topic = %entry.topic, partition = entry.partition, leader, %error, "could not start again at the leader's log start");
                        outcome.retry_later = true;
                    }
                }
                continue;
            }
            if data.error_code != 0 {
                tracing::debug!(topic = %entry.topic, partition = entry.partition, leader, code = data.error_code, "the leader refused a follower fetch");
                outcome.retry_later = true;
                continue;
            }
            if let (Ok(epoch), Ok(end_offset)) =
                (u32::try_from(data.diverging_epoch.epoch), u64::try_from(data.diverging_epoch.end_offset))
            {
                let before = state.partitions.next_offset(entry.id).ok();
                let truncated = state.partitions.truncate_to_divergence(
                    entry.id,
                    LeaderEpoch(epoch as i32),
                    Offset(end_offset),
                    now,
                );
                match truncated {
                    Ok(end) if before.is_some_and(|before| end < before) => state.replication_counters.truncations += 1,
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(topic = %entry.topic, partition = entry.partition, leader, %error, "could not truncate a divergent tail");
                        outcome.retry_later = true;
                    }
                }
                continue;
            }
            if let Some(records) = data.records.filter(|records| !records.is_empty()) {
                // Every byte of a throttled replica counts, in sync or not (Kafka's follower quota).
                if *throttled {
                    context.budgets.replication_quotas.follower.record(records.len() as u64, now);
                }
                let appended = ValidatedBatches::validate(records)
                    .map_err(|error| replica::ReplicaError::from(engine::EngineError::from(error)))
                    .and_then(|batches| state.partitions.append_replicated(entry.id, &batches, now));
                match appended {
                    Ok(info) => outcome.appended.push((entry.id, info.last_offset.next())),
                    Err(error) => {
                        tracing::warn!(topic = %entry.topic, partition = entry.partition, leader, %error, "could not append the leader's batches");
                        outcome.retry_later = true;
                        continue;
                    }
                }
            }
            if let Ok(high_watermark) = u64::try_from(data.high_watermark) {
                let _ = state.partitions.set_follower_high_watermark(entry.id, Offset(high_watermark));
            }
            // Records the leader deleted (DeleteRecords, retention) go here too, as far as this
            // replica's high watermark (Kafka: the larger of both log starts).
            if let Ok(leader_start) = u64::try_from(data.log_start_offset) {
                if let Err(error) = state.partitions.follow_log_start(entry.id, Offset(leader_start), now) {
                    tracing::warn!(topic = %entry.topic, partition = entry.partition, leader, %error, "could not take the leader's log start");
                }
            }
        }
    }
    outcome
}

/// A follower the leader answered OFFSET_OUT_OF_RANGE (Kafka's `handleOutOfRangeError`): behind
/// the leader's log start, it starts again there (returns true). Otherwise nothing is cut: a
/// divergent tail is found through the diverging epoch, and cutting back to the leader's high
/// watermark (which a new leader's may trail) could drop acknowledged writes the ISR needs;
/// the fetcher backs off and asks again (returns false).
fn start_over(
    state: &mut crate::runtime::state::ShardState,
    entry: &Wanted,
    data: &PartitionData,
    now: i64,
) -> Result<bool, replica::ReplicaError> {
    let leader_start = Offset(u64::try_from(data.log_start_offset).unwrap_or(0));
    if data.log_start_offset < 0 || entry.fetch_offset >= leader_start {
        tracing::warn!(topic = %entry.topic, partition = entry.partition, fetch_offset = %entry.fetch_offset, log_start = data.log_start_offset, "out of range at the leader, within its log: asking again");
        return Ok(false);
    }
    tracing::warn!(topic = %entry.topic, partition = entry.partition, fetch_offset = %entry.fetch_offset, log_start = %leader_start, "behind the leader's log start: starting again there");
    state.partitions.reset_to(entry.id, leader_start, now).map(|()| true)
}

/// Waits (bounded) until this shard committed what the last response appended.
async fn wait_committed(context: &ShardContext, appended: &[(LogId, Offset)]) {
    let deadline = std::time::Instant::now() + Duration::from_millis(REPLICA_COMMIT_WAIT_MS_MAX);
    loop {
        let (pending, wake) = {
            let mut state = context.state.borrow_mut();
            let pending: Vec<LogId> = appended
                .iter()
                .filter(|(id, end)| state.partitions.get(*id).is_ok_and(|partition| partition.log_end_offset() < *end))
                .map(|(id, _)| *id)
                .collect();
            let wake = state.partitions.wait_for_data(&pending, ReadBound::LogEnd);
            (pending, wake)
        };
        let now = std::time::Instant::now();
        if pending.is_empty() || now >= deadline {
            return;
        }
        let _ = compio::time::timeout(deadline - now, wake).await;
    }
}
