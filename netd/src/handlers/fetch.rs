//! Fetch (key 1), versions 4–18, with incremental fetch sessions (KIP-227, v7+; the cache is
//! `runtime::fetch_sessions`) and topic ids (v13+: topics are named by id, resolved through the
//! catalog; an unknown id answers UNKNOWN_TOPIC_ID).
//!
//! Sessions: a full fetch (epoch 0) reads the request's partitions and opens a session for them;
//! an incremental fetch (epoch ≥ 1) updates the session with the partitions it names, forgets
//! those it lists as forgotten, reads every partition of the session, and answers only those with
//! records, a new high watermark or log start, or an error (Kafka's `IncrementalFetchContext`).
//! Epoch -1 closes a session and reads without one, as do all fetches before v7. Session errors
//! (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH, FETCH_SESSION_TOPIC_ID_ERROR) are the
//! response's own error code, with no partitions; the client then sends a full fetch.
//!
//! Adapts a Fetch request to partitions: each partition is read by the shard that owns it (all
//! owners in parallel, one queued job per owner per round), from its replica, up to its high
//! watermark, after Kafka's leader and leader-epoch checks. Long-poll: when less than `min_bytes`
//! is available the fetch waits until the high watermark of one of its partitions moves or
//! `max_wait_ms` passes. A wake-up is armed on the fetch's own partitions only (a commit elsewhere
//! wakes nothing), and after one only the shards whose partitions moved plan again; the others'
//! plans and wake-ups stand. At the deadline every shard plans once more.
//!
//! A follower's fetch (`replica_id` set: another broker copying its replicas) reads up to the
//! leader's local end instead, waits for that end to move, and its fetch offset tells the leader
//! how far that follower is (`Partitions::follower_fetched`, once per request): what the high
//! watermark follows. A follower names the epoch its log ends in (`last_fetched_epoch`); if its
//! log diverges from the leader's there, the answer is the diverging epoch and no records
//! (`Partition::diverging_epoch`), and its offset counts for nothing. Replication throttles
//! (`runtime::replication_quota`): a throttled replica's follower outside the ISR gets no records
//! while this broker's leader meter is over `leader.replication.throttled.rate`.
//!
//! KIP-392: from v11 a consumer's fetch may go to any replica (a follower serves up to its high
//! watermark); with `replica.selector.class` set to Kafka's `RackAwareReplicaSelector`, a leader
//! answers a consumer in another rack with the in-sync replica of that rack furthest ahead
//! (`preferred_read_replica`, no records).
//!
//! KIP-951: from v16, in a cluster, a partition answered NOT_LEADER_OR_FOLLOWER or
//! FENCED_LEADER_EPOCH names its current leader and epoch, and the response the endpoints of
//! those leaders (`leader_hints`), as Kafka does.
//!
//! Limits, as Kafka: the response carries at most `min(max_bytes, fetch.max.bytes)` record bytes,
//! except that the first partition with data may exceed it (KIP-74); a partition named more than
//! once is read once. The owners return read plans ([`ReadPlan`]), not bytes, so partitions left
//! out for the limit cost no reading. Every owner plans within the whole limit (in parallel);
//! together they may exceed it, so the plans are kept in request order up to the limit, and the
//! partitions left out are planned once more within the room that is left (whole batches), so the
//! response fills `max_bytes` across partitions as Kafka's does. Tail-cache slices are handed over without copying (each a
//! segment of the vectored write, `fetch_encode::encode_with_slices`); file ranges are read into
//! memory through the shard's io_uring (`runtime::file_read`, all of a response's reads in flight
//! at once; no sendfile, decision 0008). Those copies count against the broker's
//! `skua.fetch.buffered.bytes.max` until the response is written: a fetch that would exceed it
//! waits for earlier responses to be written.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use engine::{LeaderEpoch, LogId, Offset};
use futures_channel::oneshot;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, NodeEndpoint, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use replica::{ReadBound, ReadPlan, ReplicaError, ReplicaId, Role};

use super::leader_hints::{node_endpoints, Hints};
use crate::clock::now_ms;
use crate::codec::frame::{decode_body, Frame};
use crate::codec::{errors, fetch_encode};
use crate::limits::FETCH_WAIT_MS_MAX;
use crate::runtime::budget::{self, Permit};
use crate::runtime::context::ShardContext;
use crate::runtime::fetch_sessions::{Answered, Plan as SessionPlan, SessionError, Told, TopicKey, Wanted};
use crate::runtime::file_read;
use crate::runtime::replication_quota::{Side, Throttle};
use crate::runtime::state::ShardState;

/// A plan's file bytes, read through the shard's ring into one (pooled) buffer charged to
/// `permit` until its last reference is dropped.
async fn read_plan(plan: ReadPlan, permit: Option<Arc<Permit>>) -> Result<Bytes, ReplicaError> {
    let copy = file_read::Pooled::new(file_read::plan_copy(&plan).await?);
    Ok(match permit {
        Some(permit) => budget::charged_bytes(copy, permit),
        None => Bytes::from_owner(copy),
    })
}

/// One partition to read, routed to its owner; `slot` is its place in the response.
#[derive(Clone, Debug)]
struct Item {
    slot: usize,
    topic: String,
    partition: i32,
    fetch_offset: i64,
    partition_max_bytes: u64,
    /// The leader epoch the client knows, or -1.
    current_leader_epoch: i32,
    /// A follower's fetch: the broker whose replica asks.
    replica: Option<ReplicaId>,
    /// A follower's: the leader epoch its log ends in, or -1.
    last_fetched_epoch: i32,
    /// A follower's: its log start (what DeleteRecords waits for), or -1.
    log_start_offset: i64,
    /// A consumer's Fetch v11+ (KIP-392's client metadata): any replica may serve it, up to
    /// that replica's high watermark.
    follower_reads: bool,
    /// The consumer's rack (`client.rack`, Fetch v11+), if it named one.
    client_rack: Option<Arc<str>>,
}

impl Item {
    /// The epoch a follower's log ends in, checked against the leader's (consumers: none).
    fn last_fetched_epoch(&self) -> Option<LeaderEpoch> {
        (self.replica.is_some() && self.last_fetched_epoch >= 0).then_some(LeaderEpoch(self.last_fetched_epoch))
    }
}

/// The session a fetch reads in, once begun.
#[derive(Clone, Copy, Debug)]
enum Session {
    /// A full fetch; `open`: a session is opened for its partitions once answered.
    Full { open: bool },
    /// An incremental fetch of session `id`.
    Incremental { id: i32 },
}

/// One partition's answer: its fields, and the plan of its records if it has any.
type Answer = (usize, PartitionData, Option<ReadPlan>);

/// The partition an item reads, after Kafka's checks: a follower may fetch `__consumer_offsets`
/// partitions too.
fn lookup<'a>(state: &'a ShardState, item: &Item) -> Result<(LogId, &'a replica::Partition), ReplicaError> {
    match item.replica {
        Some(follower) => {
            state.leader_replica_for_follower(&item.topic, item.partition, item.current_leader_epoch, follower)
        }
        None if item.follower_reads => state.readable_replica(&item.topic, item.partition, item.current_leader_epoch),
        None => state.leader_replica(&item.topic, item.partition, item.current_leader_epoch),
    }
}

/// KIP-392 with Kafka's `RackAwareReplicaSelector`: the replica a leader sends a consumer in
/// `rack` to. None: read here (this leader is in the rack, or no in-sync replica there holds
/// `fetch_offset`). Candidates are the ISR followers that have fetched past `fetch_offset`; the
/// one furthest ahead wins, as in Kafka.
fn preferred_read_replica(
    replica: &replica::Partition,
    image: &cluster::image::MetadataImage,
    rack: &str,
    fetch_offset: Offset,
) -> Option<i32> {
    let replication = replica.replication()?;
    let rack_of = |id: i32| image.brokers.get(&cluster::BrokerId(id)).and_then(|broker| broker.rack.as_deref());
    if rack_of(replication.me.0) == Some(rack) {
        return None;
    }
    replication
        .followers
        .iter()
        .filter(|(id, _)| replication.isr.contains(id) && rack_of(id.0) == Some(rack))
        .filter(|(id, _)| image.brokers.get(&cluster::BrokerId(id.0)).is_some_and(|broker| broker.is_active()))
        .filter_map(|(id, state)| state.log_end.filter(|end| *end > fetch_offset).map(|end| (end, id.0)))
        .max()
        .map(|(_, id)| id)
}

/// Plans one partition's read on its owning shard, at most `room` bytes. Also returns the
/// partition's replica, for the wake-up registration.
fn read_partition(
    state: &ShardState,
    image: Option<&cluster::image::MetadataImage>,
    rack_aware: bool,
    throttle: Option<&Throttle>,
    item: &Item,
    room: u64,
) -> (PartitionData, Option<ReadPlan>, Option<LogId>) {
    let bound = if item.replica.is_some() { ReadBound::LogEnd } else { ReadBound::HighWatermark };
    let mut data = PartitionData::default();
    data.partition_index = item.partition;
    data.high_watermark = -1;
    data.last_stable_offset = -1;
    data.log_start_offset = -1;
    let found = lookup(state, item).and_then(|(id, replica)| Ok((id, replica, state.partitions.log_start_offset(id)?)));
    let (id, replica, log_start) = match found {
        Ok(found) => found,
        Err(error) => {
            data.error_code = errors::replica_error_code(&error);
            return (data, None, None);
        }
    };
    data.high_watermark = replica.high_watermark().0 as i64;
    data.last_stable_offset = data.high_watermark;
    data.log_start_offset = log_start.0 as i64;
    // A follower whose log diverges from this one gets where its last epoch ends here instead of
    // records, and truncates (KIP-595's fetch-time truncation, as Kafka's followers do).
    if let (Some(last_fetched_epoch), Ok(fetch_offset)) = (item.last_fetched_epoch(), u64::try_from(item.fetch_offset))
    {
        match replica.diverging_epoch(Offset(fetch_offset), last_fetched_epoch) {
            Ok(None) => {}
            Ok(Some(diverging)) => {
                data.diverging_epoch.epoch = diverging.epoch.0;
                data.diverging_epoch.end_offset = diverging.start_offset.0 as i64;
                data.records = Some(Bytes::new());
                return (data, None, Some(id));
            }
            Err(error) => {
                data.error_code = errors::replica_error_code(&error);
                return (data, None, Some(id));
            }
        }
    }
    // A consumer in another rack than this leader's is sent to a replica in its own (no records).
    if let (true, Some(rack), Some(image), Ok(fetch_offset), Role::Leader { .. }) =
        (rack_aware, item.client_rack.as_deref(), image, u64::try_from(item.fetch_offset), replica.role())
    {
        if let Some(preferred) = preferred_read_replica(replica, image, rack, Offset(fetch_offset)) {
            data.preferred_read_replica = kafka_protocol::messages::BrokerId(preferred);
            data.records = Some(Bytes::new());
            return (data, None, Some(id));
        }
    }
    // A throttled replica's follower outside the ISR gets nothing while the leader's replication
    // meter is over its rate (Kafka's `shouldLeaderThrottle`); nor is it watched, as Kafka's
    // delayed fetch does not count its bytes: the fetch waits its time out, the throttle's pause.
    let throttle = match (throttle, item.replica) {
        (Some(throttle), Some(follower)) if throttle.throttles(&item.topic, item.partition) => {
            Some((throttle, follower))
        }
        _ => None,
    };
    if let Some((throttle, follower)) = throttle {
        let in_sync = replica.replication().is_some_and(|replication| replication.isr.contains(&follower));
        if !in_sync && throttle.exceeded(now_ms()) {
            data.records = Some(Bytes::new());
            return (data, None, None);
        }
    }
    let partition_max = item.partition_max_bytes.min(room.max(1));
    data.records = Some(Bytes::new());
    let mut plan = None;
    match u64::try_from(item.fetch_offset).map(Offset) {
        Err(_) => {
            data.records = None;
            data.error_code = ResponseError::OffsetOutOfRange.code();
        }
        Ok(_) if room == 0 => {}
        Ok(start) => match state.partitions.read(id, start, partition_max, bound) {
            Ok(found) => {
                // Every byte of a throttled replica counts, in sync or not (Kafka's leader quota).
                if let (Some((throttle, _)), Some(found)) = (throttle, found.as_ref()) {
                    throttle.meter.record(found.size_bytes, now_ms());
                }
                plan = found;
            }
            Err(error) => {
                data.records = None;
                data.error_code = errors::replica_error_code(&error);
            }
        },
    }
    (data, plan, Some(id))
}

/// Which planning a shard does for a fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    /// A round of the long-poll: the first partition with data may exceed the room (KIP-74), and
    /// a wake-up is armed. A follower's fetch records its progress in the first round only.
    Round { first: bool },
    /// Partitions the response limit left out, planned again within the room left: none may
    /// exceed it, and no wake-up is armed.
    Refill,
}

/// Runs on the owning shard: plans its partitions' reads in request order within `room_bytes`,
/// as `pass` says, and in a round registers for a wake-up when what they may read grows.
fn read_on_shard(
    shard: &ShardContext,
    items: &[Item],
    room_bytes: u64,
    pass: Pass,
) -> (Vec<Answer>, Option<oneshot::Receiver<()>>) {
    let mut state = shard.state.borrow_mut();
    if pass == (Pass::Round { first: true }) {
        record_follower_progress(&mut state, items);
    }
    let rack_aware = shard.config.rack_aware_reads && items.iter().any(|item| item.client_rack.is_some());
    let image = if rack_aware { shard.image() } else { None };
    // Only a follower's fetch can be throttled; a consumer's looks nothing up.
    let catalog = items.iter().any(|item| item.replica.is_some()).then(|| shard.catalog());
    let quotas = &shard.budgets.replication_quotas;
    let throttle =
        catalog.as_deref().and_then(|catalog| Throttle::of(catalog, quotas, Side::Leader, shard.config.node_id));
    let mut room = room_bytes;
    let mut first = matches!(pass, Pass::Round { .. });
    let mut watched = Vec::with_capacity(items.len());
    let answers = items
        .iter()
        .map(|item| {
            // Past the response limit only the first partition may still return data.
            let allowed = if first { room.max(1) } else { room };
            let (data, plan, id) =
                read_partition(&state, image.as_deref(), rack_aware, throttle.as_ref(), item, allowed);
            watched.extend(id);
            let size = plan.as_ref().map_or(0, |plan| plan.size_bytes);
            if size > 0 {
                first = false;
            }
            room = room.saturating_sub(size);
            (item.slot, data, plan)
        })
        .collect();
    let bound =
        if items.iter().any(|item| item.replica.is_some()) { ReadBound::LogEnd } else { ReadBound::HighWatermark };
    let wake = matches!(pass, Pass::Round { .. }).then(|| state.partitions.wait_for_data(&watched, bound));
    (answers, wake)
}

/// Keeps the request's order and the response limit over the plans of every shard: each shard
/// stayed within the limit, together they may not. Returns the record bytes kept and the slots of
/// the plans left out (nothing was read for them: they are plans).
fn trim_to_limit(plans: &mut [Option<ReadPlan>], response_bytes_max: u64) -> (u64, Vec<usize>) {
    let mut total_bytes = 0u64;
    let mut left_out = Vec::new();
    for (slot, plan) in plans.iter_mut().enumerate() {
        let size = plan.as_ref().map_or(0, |plan| plan.size_bytes);
        if size > 0 && total_bytes > 0 && total_bytes + size > response_bytes_max {
            *plan = None;
            left_out.push(slot);
        } else {
            total_bytes += size;
        }
    }
    (total_bytes, left_out)
}

/// A follower's fetch offsets (and log starts), recorded by the leader (after the same epoch and leadership checks
/// as the read; a refused partition records nothing and its read answers the error).
fn record_follower_progress(state: &mut ShardState, items: &[Item]) {
    let now = now_ms();
    for item in items {
        let (Some(replica), Ok(offset)) = (item.replica, u64::try_from(item.fetch_offset)) else { continue };
        let Ok((id, _)) = lookup(state, item) else {
            continue;
        };
        if let Err(error) =
            state.partitions.follower_fetched(id, replica, Offset(offset), item.last_fetched_epoch(), now)
        {
            tracing::debug!(topic = %item.topic, partition = item.partition, ?replica, %error, "follower progress not recorded");
        }
        if let Ok(log_start) = u64::try_from(item.log_start_offset) {
            let _ = state.partitions.follower_log_start(id, replica, Offset(log_start));
        }
    }
}

/// The first Fetch version whose answers carry leader hints (KIP-951).
const LEADER_HINTS_VERSION_MIN: i16 = 16;

/// KIP-951, in a cluster: each partition refused as not led here (or for a fenced leader epoch)
/// names its current leader and epoch, and the response those leaders' endpoints.
fn add_leader_hints(context: &ShardContext, response: &mut FetchResponse) {
    let Some(image) = context.image() else { return };
    let mut hints = Hints::default();
    let hinted = [ResponseError::NotLeaderOrFollower.code(), ResponseError::FencedLeaderEpoch.code()];
    for topic in &mut response.responses {
        let Some(found) = image.topic_by_id(cluster::TopicId(*topic.topic_id.as_bytes())) else { continue };
        for data in topic.partitions.iter_mut().filter(|data| hinted.contains(&data.error_code)) {
            let leader = hints.leader(&image, &found.name, data.partition_index);
            data.current_leader.leader_id = BrokerId(leader.id);
            data.current_leader.leader_epoch = leader.epoch;
        }
    }
    response.node_endpoints = node_endpoints!(hints, NodeEndpoint);
}

/// How the request names `topic`: by name before v13, by id from v13.
fn topic_key(version: i16, name: &TopicName, id: &uuid::Uuid) -> TopicKey {
    if version >= 13 {
        TopicKey::Id(*id.as_bytes())
    } else {
        TopicKey::Name(name.to_string())
    }
}

/// The request's partitions as Kafka's fetch sees them: a partition named more than once appears
/// once, at its first place, with the offset and limit of its last naming (Kafka 4.4 builds a
/// `LinkedHashMap` keyed by partition; checked against it).
fn wanted_partitions(request: &FetchRequest, version: i16) -> Vec<Wanted> {
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut places: HashMap<(TopicKey, i32), usize> = HashMap::new();
    for topic in &request.topics {
        let key = topic_key(version, &topic.topic, &topic.topic_id);
        for partition in &topic.partitions {
            let entry = Wanted {
                topic: key.clone(),
                partition: partition.partition,
                fetch_offset: partition.fetch_offset,
                partition_max_bytes: u64::try_from(partition.partition_max_bytes.max(0)).unwrap_or(0),
                current_leader_epoch: partition.current_leader_epoch,
                last_fetched_epoch: partition.last_fetched_epoch,
                log_start_offset: partition.log_start_offset,
            };
            match places.entry((key.clone(), partition.partition)) {
                std::collections::hash_map::Entry::Occupied(place) => wanted[*place.get()] = entry,
                std::collections::hash_map::Entry::Vacant(place) => {
                    place.insert(wanted.len());
                    wanted.push(entry);
                }
            }
        }
    }
    wanted
}

/// The partitions an incremental fetch removes from its session.
fn forgotten_partitions(request: &FetchRequest, version: i16) -> Vec<(TopicKey, i32)> {
    request
        .forgotten_topics_data
        .iter()
        .flat_map(|topic| {
            let key = topic_key(version, &topic.topic, &topic.topic_id);
            topic.partitions.iter().map(move |partition| (key.clone(), *partition))
        })
        .collect()
}

/// A response with only an error of its own (a refused session), as Kafka answers it.
fn session_error_response(frame: &Frame, error: &SessionError) -> anyhow::Result<Option<super::Segments>> {
    tracing::debug!(%error, "fetch session refused");
    let mut response = FetchResponse::default();
    response.error_code = errors::fetch_session_error_code(error);
    Ok(Some(fetch_encode::encode(frame.api_version, frame.correlation_id, &response)?))
}

/// What the session sees of one partition's answer.
fn answered(data: &PartitionData, plan: Option<&ReadPlan>) -> Answered {
    Answered {
        told: Told { high_watermark: data.high_watermark, log_start_offset: data.log_start_offset },
        record_bytes: plan.map_or(0, |plan| plan.size_bytes),
        notable: data.error_code != 0 || data.diverging_epoch.epoch >= 0 || data.preferred_read_replica.0 >= 0,
    }
}

/// Keeps only the partitions an incremental response names (`named`, by slot), with the places
/// of those kept in the smaller response.
fn keep_named(
    response: FetchResponse,
    places: &[(usize, usize)],
    named: &[bool],
) -> (FetchResponse, Vec<Option<(usize, usize)>>) {
    let mut slot_at: HashMap<(usize, usize), usize> = HashMap::with_capacity(places.len());
    for (slot, place) in places.iter().enumerate() {
        slot_at.insert(*place, slot);
    }
    let mut kept = FetchResponse::default();
    kept.throttle_time_ms = response.throttle_time_ms;
    kept.error_code = response.error_code;
    kept.session_id = response.session_id;
    let mut new_places = vec![None; places.len()];
    for (topic_index, mut topic) in response.responses.into_iter().enumerate() {
        let partitions = std::mem::take(&mut topic.partitions);
        for (partition_index, data) in partitions.into_iter().enumerate() {
            let Some(&slot) = slot_at.get(&(topic_index, partition_index)) else { continue };
            if !named[slot] {
                continue;
            }
            if topic.partitions.is_empty() {
                kept.responses.push(FetchableTopicResponse::default());
            }
            topic.partitions.push(data);
            new_places[slot] = Some((kept.responses.len() - 1, topic.partitions.len() - 1));
        }
        if let Some(last) = kept.responses.last_mut().filter(|_| !topic.partitions.is_empty()) {
            *last = topic;
        }
    }
    (kept, new_places)
}

pub async fn handle(context: Rc<ShardContext>, frame: Frame) -> anyhow::Result<Option<super::Segments>> {
    let request: FetchRequest = decode_body(&frame)?;
    let version = frame.api_version;
    // Followers name themselves (v0–14's replica_id, v15+'s replica_state; consumers send -1).
    let replica_id = if version >= 15 { request.replica_state.replica_id.0 } else { request.replica_id.0 };
    let replica = (replica_id >= 0).then_some(ReplicaId(replica_id));
    // KIP-392: from v11 a consumer's fetch carries client metadata and any replica may serve it.
    let follower_reads = replica.is_none() && version >= 11;
    let client_rack: Option<Arc<str>> =
        (follower_reads && !request.rack_id.is_empty()).then(|| Arc::from(request.rack_id.as_str()));
    let wait_ms = u64::try_from(request.max_wait_ms.max(0)).unwrap_or(0).min(FETCH_WAIT_MS_MAX);
    let deadline = Instant::now() + Duration::from_millis(wait_ms);
    let min_bytes = u64::try_from(request.min_bytes.max(0)).unwrap_or(0);
    // Kafka: min(request max_bytes, broker fetch.max.bytes).
    let response_bytes_max =
        u64::try_from(request.max_bytes.max(0)).unwrap_or(0).min(context.config.fetch_response_bytes_max);

    // The partitions this fetch reads: the request's (a full fetch), or its session's.
    let by_id = version >= 13;
    let requested = wanted_partitions(&request, version);
    let plan = if version >= 7 {
        let forgotten = forgotten_partitions(&request, version);
        let begun = context.fetch_sessions.borrow_mut().begin(
            request.session_id,
            request.session_epoch,
            requested,
            &forgotten,
            by_id,
            Instant::now(),
        );
        match begun {
            Ok(plan) => plan,
            Err(error) => return session_error_response(&frame, &error),
        }
    } else {
        SessionPlan::Full { wanted: requested, open: false }
    };
    let (wanted, session) = match plan {
        SessionPlan::Full { wanted, open } => (wanted, Session::Full { open }),
        SessionPlan::Incremental { id, wanted } => (wanted, Session::Incremental { id }),
    };

    // The response lists the wanted partitions in order; consecutive partitions of one topic
    // share a topic entry (as Kafka's FetchResponse does).
    let catalog = context.catalog();
    let mut response = FetchResponse::default();
    let mut places: Vec<(usize, usize)> = Vec::with_capacity(wanted.len());
    let mut per_shard: Vec<Vec<Item>> = (0..context.count).map(|_| Vec::new()).collect();
    let mut last_key: Option<&TopicKey> = None;
    // Each slot's topic name (None: an id this broker does not know).
    let mut names: Vec<Option<String>> = Vec::with_capacity(wanted.len());
    for (slot, entry) in wanted.iter().enumerate() {
        let name: Option<&str> = match &entry.topic {
            TopicKey::Name(name) => Some(name.as_str()),
            TopicKey::Id(id) => catalog.topic_named_by(id),
        };
        names.push(name.map(str::to_string));
        if last_key != Some(&entry.topic) {
            let mut topic_response = FetchableTopicResponse::default();
            match &entry.topic {
                TopicKey::Name(name) => topic_response.topic = TopicName(StrBytes::from_string(name.clone())),
                TopicKey::Id(id) => topic_response.topic_id = uuid::Uuid::from_bytes(*id),
            }
            response.responses.push(topic_response);
            last_key = Some(&entry.topic);
        }
        let topic_index = response.responses.len() - 1;
        let mut data = PartitionData::default();
        data.partition_index = entry.partition;
        data.error_code = match name {
            Some(_) => ResponseError::UnknownTopicOrPartition.code(),
            None => ResponseError::UnknownTopicId.code(),
        };
        data.high_watermark = -1;
        data.last_stable_offset = -1;
        data.log_start_offset = -1;
        places.push((topic_index, response.responses[topic_index].partitions.len()));
        response.responses[topic_index].partitions.push(data);
        if let (Some(name), true) = (name, entry.partition >= 0) {
            per_shard[context.owner_of(name, entry.partition)].push(Item {
                slot,
                topic: name.to_string(),
                partition: entry.partition,
                fetch_offset: entry.fetch_offset,
                partition_max_bytes: entry.partition_max_bytes,
                current_leader_epoch: entry.current_leader_epoch,
                replica,
                last_fetched_epoch: entry.last_fetched_epoch,
                log_start_offset: entry.log_start_offset,
                follower_reads,
                client_rack: client_rack.clone(),
            });
        }
    }
    drop(catalog);
    let per_shard: Vec<(usize, Rc<Vec<Item>>)> = per_shard
        .into_iter()
        .enumerate()
        .filter(|(_, items)| !items.is_empty())
        .map(|(shard, items)| (shard, Rc::new(items)))
        .collect();

    // Each owning shard's latest answers and wake-up. A round re-plans only the shards whose
    // partitions moved (their wake-up fired), all of them at the deadline; the others' plans and
    // registrations stand (nothing they may read has grown).
    let mut answers: Vec<Vec<Answer>> = per_shard.iter().map(|_| Vec::new()).collect();
    let mut wakes: Vec<Option<oneshot::Receiver<()>>> = per_shard.iter().map(|_| None).collect();
    let mut stale: Vec<bool> = vec![true; per_shard.len()];
    let mut first_round = true;
    loop {
        // One round: every stale owning shard plans its partitions (in parallel) and arms a wake-up.
        let mut pending = Vec::new();
        for (at, (shard, items)) in per_shard.iter().enumerate().filter(|(at, _)| stale[*at]) {
            let items = Vec::clone(items);
            pending.push((
                at,
                context
                    .submit(*shard, move |shard_context| {
                        let planned = read_on_shard(
                            shard_context,
                            &items,
                            response_bytes_max,
                            Pass::Round { first: first_round },
                        );
                        Box::pin(std::future::ready(planned))
                    })
                    .await?,
            ));
        }
        first_round = false;
        for (at, outcome) in pending {
            let (planned, wake) = outcome.await?;
            answers[at] = planned;
            wakes[at] = wake;
            stale[at] = false;
        }
        let mut plans: Vec<Option<ReadPlan>> = (0..wanted.len()).map(|_| None).collect();
        for planned in &answers {
            for (slot, data, plan) in planned {
                let (topic_index, partition_index) = places[*slot];
                response.responses[topic_index].partitions[partition_index] = data.clone();
                plans[*slot] = plan.clone();
            }
        }
        let (mut total_bytes, left_out) = trim_to_limit(&mut plans, response_bytes_max);
        // Fill the rest of the limit: the partitions left out are planned again within the room
        // that is left (whole batches; none may exceed it now), in request order, then trimmed
        // again. One such pass: what still does not fit, the client asks for again.
        let room = response_bytes_max.saturating_sub(total_bytes);
        if !left_out.is_empty() && room > 0 {
            let mut is_left_out = vec![false; wanted.len()];
            left_out.iter().for_each(|slot| is_left_out[*slot] = true);
            let mut refill = Vec::new();
            for (shard, items) in &per_shard {
                let items: Vec<Item> = items.iter().filter(|item| is_left_out[item.slot]).cloned().collect();
                if items.is_empty() {
                    continue;
                }
                refill.push(
                    context
                        .submit(*shard, move |shard_context| {
                            let (planned, _) = read_on_shard(shard_context, &items, room, Pass::Refill);
                            Box::pin(std::future::ready(planned))
                        })
                        .await?,
                );
            }
            for outcome in refill {
                for (slot, _, plan) in outcome.await? {
                    plans[slot] = plan;
                }
            }
            total_bytes = trim_to_limit(&mut plans, response_bytes_max).0;
        }
        // An error, a diverging epoch or a preferred read replica is answered at once, as Kafka
        // does.
        let any_error =
            response.responses.iter().flat_map(|topic| &topic.partitions).any(|data| {
                data.error_code != 0 || data.diverging_epoch.epoch >= 0 || data.preferred_read_replica.0 >= 0
            });
        let now = Instant::now();
        if total_bytes >= min_bytes || any_error || now >= deadline {
            drop(wakes);
            drop(answers);
            // The copies this response makes count against the broker's fetch memory until it is
            // written; wait for room (earlier responses being written) until the fetch's own
            // deadline. Without room by then, answer with what needs no copy (tail-cache slices)
            // and leave the file ranges out: the client asks again, as after any short fetch.
            let file_bytes: u64 = plans.iter().flatten().map(ReadPlan::file_bytes).sum();
            let permit = match file_bytes {
                0 => None,
                bytes => match context.budgets.fetch_bytes.acquire_until(bytes, deadline).await {
                    Some(permit) => Some(Arc::new(permit)),
                    None => {
                        tracing::debug!(bytes, "no room in skua.fetch.buffered.bytes.max by the fetch's deadline");
                        for plan in plans.iter_mut() {
                            if plan.as_ref().is_some_and(|plan| plan.file_bytes() > 0) {
                                *plan = None;
                            }
                        }
                        None
                    }
                },
            };
            for (slot, plan) in plans.iter().enumerate() {
                if let Some(plan) = plan {
                    if let Some(name) = &names[slot] {
                        context.metrics.fetched(name, plan.size_bytes);
                    }
                }
            }
            // The session: a full fetch may open one (its id answers); an incremental one
            // answers only the partitions with something new. What the session sees of each
            // partition's answer is gathered only for a fetch in a session.
            let answers = |response: &FetchResponse| -> Vec<Answered> {
                (0..wanted.len())
                    .map(|slot| {
                        let (topic_index, partition_index) = places[slot];
                        answered(&response.responses[topic_index].partitions[partition_index], plans[slot].as_ref())
                    })
                    .collect()
            };
            let places: Vec<Option<(usize, usize)>> = match session {
                Session::Full { open: false } => places.iter().copied().map(Some).collect(),
                Session::Full { open: true } => {
                    response.session_id = context.fetch_sessions.borrow_mut().finish_full(
                        wanted.clone(),
                        &answers(&response),
                        by_id,
                        replica.is_some(),
                        Instant::now(),
                    );
                    places.iter().copied().map(Some).collect()
                }
                Session::Incremental { id } => {
                    let named = context.fetch_sessions.borrow_mut().finish_incremental(id, &answers(&response));
                    let kept_places;
                    (response, kept_places) = keep_named(std::mem::take(&mut response), &places, &named);
                    response.session_id = id;
                    kept_places
                }
            };
            // Records in the tail cache go out as its own slices (one segment each, no copy);
            // the file reads of the response are all in flight at once.
            let mut slices = fetch_encode::RecordSlices::new();
            let mut reads = Vec::new();
            for (slot, plan) in plans.into_iter().enumerate() {
                let (Some(plan), Some((topic_index, partition_index))) = (plan, places[slot]) else { continue };
                match plan.memory_slices() {
                    Some(memory) => {
                        slices.insert((topic_index, partition_index), memory);
                    }
                    None => {
                        let permit = permit.clone();
                        reads.push(async move { (slot, read_plan(plan, permit).await) });
                    }
                }
            }
            for (slot, read) in futures_util::future::join_all(reads).await {
                let Some((topic_index, partition_index)) = places[slot] else { continue };
                let data = &mut response.responses[topic_index].partitions[partition_index];
                match read {
                    Ok(bytes) => data.records = Some(bytes),
                    Err(error) => {
                        tracing::error!(%error, "reading a segment for a fetch failed");
                        data.records = None;
                        data.error_code = errors::replica_error_code(&error);
                    }
                }
            }
            if version >= LEADER_HINTS_VERSION_MIN {
                add_leader_hints(&context, &mut response);
            }
            return Ok(Some(fetch_encode::encode_with_slices(
                frame.api_version,
                frame.correlation_id,
                &response,
                &slices,
            )?));
        }
        // Woken when the high watermark of one of its partitions moves (that shard plans again,
        // and any other whose wake-up has fired meanwhile), or at the deadline (all of them).
        let woken = if wakes.iter().all(Option::is_none) {
            compio::time::sleep(deadline - now).await;
            false
        } else {
            let armed = futures_util::future::select_all(wakes.iter_mut().flatten());
            compio::time::timeout(deadline - now, armed).await.is_ok()
        };
        for (stale, wake) in stale.iter_mut().zip(wakes.iter_mut()) {
            // At the deadline every shard; else those whose wake-up fired (received, so it now
            // answers Canceled) or whose partitions are gone (sender dropped).
            if !woken || wake.as_mut().is_none_or(|wake| !matches!(wake.try_recv(), Ok(None))) {
                *stale = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    #[test]
    fn a_partition_named_twice_is_wanted_once_at_its_first_place_with_its_last_offset() {
        let topic = |name: &'static str, partitions: &[(i32, i64)]| {
            let mut topic = FetchTopic::default();
            topic.topic = TopicName(StrBytes::from_static_str(name));
            topic.partitions = partitions
                .iter()
                .map(|&(partition, offset)| {
                    let mut wanted = FetchPartition::default();
                    wanted.partition = partition;
                    wanted.fetch_offset = offset;
                    wanted.partition_max_bytes = 100;
                    wanted
                })
                .collect();
            topic
        };
        let mut request = FetchRequest::default();
        request.topics =
            vec![topic("a", &[(0, 3), (1, 0), (0, 0)]), topic("b", &[(0, 5)]), topic("a", &[(0, 9), (2, 1)])];
        let wanted = wanted_partitions(&request, 12);
        let name = |key: &TopicKey| match key {
            TopicKey::Name(name) => name.clone(),
            TopicKey::Id(_) => panic!("v12 names topics"),
        };
        let wanted: Vec<(String, i32, i64)> =
            wanted.iter().map(|entry| (name(&entry.topic), entry.partition, entry.fetch_offset)).collect();
        let expected = [("a", 0, 9), ("a", 1, 0), ("b", 0, 5), ("a", 2, 1)];
        assert_eq!(wanted, expected.map(|(topic, partition, offset)| (topic.to_string(), partition, offset)));
    }
}
