//! Produce (key 0), versions 3–13 (0–2 advertised and rejected, as Kafka 4 does). v12 is v11's
//! layout (KIP-890 bumped it for transactions, which Skua refuses); v13 (KIP-516) names topics by
//! id instead of name: an id the catalog does not know is UNKNOWN_TOPIC_ID for each of its
//! partitions, and is never auto-created (Kafka's answer).
//!
//! Adapts a Produce request to partitions: the record batches are validated once (CRC and every
//! record, in one walk per batch: [`ValidatedBatches`]; a walk that would decompress past
//! `limits::PRODUCE_INLINE_DECOMPRESSED_BYTES_MAX` of the request runs on the codec threads),
//! checked against Kafka's produce rules
//! ([`crate::codec::produce_policy`]) and handed to the partition layer, which appends them
//! (offsets assigned by rewriting the header, never re-encoded) and says when they are
//! acknowledged (`replica::Acks`: acks=1 waits for the leader's commit, acks=all for the high
//! watermark; the same on a single node). A request is split by owning shard; each owner appends
//! its partitions' batches in request order (its own partitions right away, other shards' through
//! their queues, in the order requests arrived). acks=0 gets no response, as in Kafka. Unknown
//! topics are auto-created first when allowed.
//!
//! KIP-951: from v10, in a cluster, a partition answered NOT_LEADER_OR_FOLLOWER names its current
//! leader and epoch, and the response the endpoints of those leaders (`leader_hints`), as Kafka does.

use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use engine::batch::ValidatedBatches;
use engine::{compression, BatchError, CompressionType, LogConfig, LogId};
use futures_channel::oneshot;
use futures_util::future::LocalBoxFuture;
use kafka_protocol::messages::produce_response::{NodeEndpoint, PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;
use replica::{Ack, Acks};

use super::leader_hints::{node_endpoints, Hints};
use super::Reply;
use crate::clock::now_ms;
use crate::codec::errors;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::codec::produce_policy::{self, TimestampBounds};
use crate::runtime::context::ShardContext;
use crate::runtime::controller;
use crate::runtime::state::ShardState;
use crate::runtime::turns::Ticket;

/// Produce versions below this were removed by KIP-896 and are rejected.
pub const PRODUCE_VERSION_MIN_ACCEPTED: i16 = 3;
/// From this version requests and responses name topics by id, not by name (KIP-516).
pub const PRODUCE_VERSION_TOPIC_IDS: i16 = 13;
/// The first Produce version whose answers carry leader hints (KIP-951).
const LEADER_HINTS_VERSION_MIN: i16 = 10;

/// KIP-951, in a cluster: each partition refused as not led here names its current leader and
/// epoch, and the response those leaders' endpoints. `names`: each response topic's name.
fn add_leader_hints(context: &ShardContext, response: &mut ProduceResponse, names: &[String]) {
    let Some(image) = context.image() else { return };
    let mut hints = Hints::default();
    let refused = ResponseError::NotLeaderOrFollower.code();
    for (topic, name) in response.responses.iter_mut().zip(names) {
        for result in topic.partition_responses.iter_mut().filter(|result| result.error_code == refused) {
            let leader = hints.leader(&image, name, result.index);
            result.current_leader.leader_id = BrokerId(leader.id);
            result.current_leader.leader_epoch = leader.epoch;
        }
    }
    response.node_endpoints = node_endpoints!(hints, NodeEndpoint);
}

/// One partition's data, routed to its owner.
#[derive(Debug)]
struct Item {
    topic_index: usize,
    partition_index: usize,
    topic: String,
    partition: i32,
    records: Option<Bytes>,
}

/// An answer for one partition of the request.
type Answer = (usize, usize, PartitionProduceResponse);

fn blank(partition: i32) -> PartitionProduceResponse {
    let mut result = PartitionProduceResponse::default();
    result.index = partition;
    result.base_offset = -1;
    result.log_append_time_ms = -1;
    result.log_start_offset = -1;
    result
}

/// One partition's batches that passed every check on their owning shard, ready to append.
struct Checked {
    batches: ValidatedBatches,
    log_append_time: bool,
    /// The topic's codec and `max.message.bytes` when some batch must be converted to it.
    conversion: Option<(CompressionType, usize)>,
}

/// What one shard's share of a request may decompress to check its batches: the request's
/// allowance (`PRODUCE_DECOMPRESSED_BYTES_PER_REQUEST_MAX`), of which at most
/// `PRODUCE_INLINE_DECOMPRESSED_BYTES_MAX` on the shard itself.
struct Allowance {
    left: usize,
    inline_left: usize,
    /// Some partition's batches went to the codec threads: every later compressed batch follows
    /// them there, so that the allowance is spent in the request's order.
    off_shard: bool,
}

impl Allowance {
    fn new() -> Allowance {
        Allowance {
            left: crate::limits::PRODUCE_DECOMPRESSED_BYTES_PER_REQUEST_MAX,
            inline_left: crate::limits::PRODUCE_INLINE_DECOMPRESSED_BYTES_MAX,
            off_shard: false,
        }
    }

    /// What the shard may decompress now.
    fn inline_bound(&self) -> usize {
        if self.off_shard {
            0
        } else {
            self.left.min(self.inline_left)
        }
    }
}

/// What checking one partition on its shard came to.
enum Checking {
    Done(LogId, Checked),
    /// The batches decompress to more than the shard checks itself: the codec threads validate
    /// them ([`validate_then_append`]), then [`check_validated`] runs.
    OffShard(LogId, LogConfig, Bytes),
}

/// Checks one partition's batches on its owning shard: Kafka's produce rules, leadership, the
/// one validation of the bytes (structure, CRC, every record; the engine trusts it) and the
/// timestamp bounds; says whether the batches need the codec threads. A walk that would
/// decompress past the shard's inline bound is left to the codec threads: the walk is
/// sequential, so its first error before the bound is the one the whole walk would find.
fn check_partition(
    state: &mut ShardState,
    item: &Item,
    version: i16,
    allowance: &mut Allowance,
) -> Result<Checking, i16> {
    let records = item.records.as_ref().ok_or(ResponseError::InvalidRecord.code())?;
    let (id, _) =
        state.leader_replica(&item.topic, item.partition, -1).map_err(|error| errors::replica_error_code(&error))?;
    let refused = |refusal: produce_policy::ProduceRefusal| errors::produce_refusal_code(&refusal);
    produce_policy::check_request_shape(records, version).map_err(refused)?;
    let log_config = state.partitions.log_config(id).map_err(|error| errors::replica_error_code(&error))?;
    let bound = allowance.inline_bound();
    let mut bound_left = bound;
    match ValidatedBatches::validate_within(records.clone(), &mut bound_left, log_config.decompressed_record_bytes_max)
    {
        Ok(batches) => {
            let spent = bound - bound_left;
            allowance.left -= spent;
            allowance.inline_left -= spent;
            Ok(Checking::Done(id, check_validated(&log_config, batches)?))
        }
        Err(BatchError::DecompressedTooLarge { .. }) if bound < allowance.left => {
            allowance.off_shard = true;
            Ok(Checking::OffShard(id, log_config, records.clone()))
        }
        Err(error) => Err(errors::batch_error_code(error)),
    }
}

/// The checks after validation: the timestamp bounds, and whether the batches need converting
/// to the topic's codec.
fn check_validated(log_config: &LogConfig, batches: ValidatedBatches) -> Result<Checked, i16> {
    let refused = |refusal: produce_policy::ProduceRefusal| errors::produce_refusal_code(&refusal);
    let now = now_ms();
    let log_append_time = log_config.timestamp_type == engine::TimestampType::LogAppendTime;
    for checked in batches.batches() {
        // A topic of LogAppendTime replaces the producer's timestamps: Kafka does not bound them.
        let bounds = if log_append_time {
            TimestampBounds::NONE
        } else {
            TimestampBounds {
                before_max_ms: log_config.timestamp_before_max_ms,
                after_max_ms: log_config.timestamp_after_max_ms,
            }
        };
        produce_policy::check_batch(checked, now, bounds).map_err(refused)?;
    }
    // A batch over the limit as it arrived is refused by the conversion before it converts
    // anything, as Kafka does (`convert_validated`).
    let conversion = match log_config.batch_bytes_max {
        Some(limit) if compression::needs_conversion(&batches, log_config.compression) => {
            Some((log_config.compression, limit))
        }
        _ => None,
    };
    Ok(Checked { batches, log_append_time, conversion })
}

/// Appends checked batches through the partition layer (leadership, idempotent producers'
/// sequences, the append itself). `Ok` carries the acknowledgement to wait for (none for acks=0).
fn append_checked(
    state: &mut ShardState,
    item: &Item,
    id: LogId,
    checked: &Checked,
    acks: Acks,
    result: &mut PartitionProduceResponse,
) -> Result<Option<Ack>, i16> {
    let now = now_ms();
    let appended =
        state.partitions.append(id, &checked.batches, acks, now).map_err(|error| errors::replica_error_code(&error))?;
    if checked.log_append_time {
        result.log_append_time_ms = now;
    }
    result.base_offset = appended.base_offset.0 as i64;
    result.log_start_offset = appended.log_start_offset.0 as i64;
    let messages: u64 = checked.batches.batches().iter().map(|batch| u64::from(batch.header.records_count)).sum();
    let received_bytes = item.records.as_ref().map_or(0, Bytes::len) as u64;
    state.metrics.produced(&item.topic, received_bytes, messages);
    Ok(appended.ack)
}

/// Fills `result` with a refusal.
fn refuse(result: &mut PartitionProduceResponse, code: i16) {
    result.error_code = code;
    result.base_offset = -1;
    result.log_start_offset = -1;
}

/// What one partition of a shard's share is answered from.
enum Outcome {
    /// Answered already; the acknowledgement to wait for, if any.
    Now(Option<Ack>),
    /// Its batches wait for the codec threads (or for earlier appends that do): the answer
    /// comes from the task that appends them.
    Later(oneshot::Receiver<(PartitionProduceResponse, Option<Ack>, Instant)>),
}

/// Converts `checked`'s batches on the codec threads (if they need it), then appends them when
/// `ticket`'s turn comes, and sends the answer. Runs as a task of its own: a request answered
/// with nothing (acks=0) still appends.
async fn convert_then_append(
    shard: Rc<ShardContext>,
    item: Item,
    mut checked: Checked,
    ticket: Ticket<LogId>,
    acks: Acks,
    reply: oneshot::Sender<(PartitionProduceResponse, Option<Ack>, Instant)>,
) {
    let mut result = blank(item.partition);
    let converted = match checked.conversion {
        Some((target, limit)) => {
            let handed_at = Instant::now();
            let converted = shard.codec_pool.convert(checked.batches.clone(), target, limit).await;
            shard.metrics.converted(handed_at.elapsed());
            converted
        }
        None => Ok(None),
    };
    ticket.wait().await;
    let outcome = match converted {
        Err(error) => Err(errors::convert_error_code(&error)),
        Ok(converted) => {
            if let Some(converted) = converted {
                checked.batches = converted;
            }
            let mut state = shard.state.borrow_mut();
            // Leadership may have moved while the batches were converted: look again.
            let appended = match state.leader_replica(&item.topic, item.partition, -1) {
                Ok((id, _)) => append_checked(&mut state, &item, id, &checked, acks, &mut result),
                Err(error) => Err(errors::replica_error_code(&error)),
            };
            state.start_commits();
            appended
        }
    };
    // The next append of this partition may go.
    drop(ticket);
    let ack = match outcome {
        Ok(ack) => ack,
        Err(code) => {
            refuse(&mut result, code);
            None
        }
    };
    let _ = reply.send((result, ack, Instant::now()));
}

/// A partition whose batches the codec threads validate, with its place in its partition's order.
struct WaitingValidation {
    item: Item,
    log_config: LogConfig,
    records: Bytes,
    ticket: Ticket<LogId>,
    reply: oneshot::Sender<(PartitionProduceResponse, Option<Ack>, Instant)>,
}

/// Validates `waiting`'s batches on the codec threads, in the request's order and within what
/// is left of its allowance, then each partition goes on as [`convert_then_append`] (or is
/// answered with its refusal). Runs as a task of its own, like the conversions.
async fn validate_then_append(shard: Rc<ShardContext>, waiting: Vec<WaitingValidation>, allowance: usize, acks: Acks) {
    let partitions =
        waiting.iter().map(|entry| (entry.records.clone(), entry.log_config.decompressed_record_bytes_max)).collect();
    let handed_at = Instant::now();
    let validated = shard.codec_pool.validate(partitions, allowance).await;
    shard.metrics.validated_off_shard(handed_at.elapsed());
    let validated: Vec<Result<ValidatedBatches, i16>> = match validated {
        Ok(results) => results.into_iter().map(|result| result.map_err(errors::batch_error_code)).collect(),
        Err(error) => vec![Err(errors::convert_error_code(&error)); waiting.len()],
    };
    for (entry, result) in waiting.into_iter().zip(validated) {
        let WaitingValidation { item, log_config, ticket, reply, .. } = entry;
        match result.and_then(|batches| check_validated(&log_config, batches)) {
            Ok(checked) => {
                compio::runtime::spawn(convert_then_append(shard.clone(), item, checked, ticket, acks, reply)).detach()
            }
            Err(code) => {
                drop(ticket);
                let mut result = blank(item.partition);
                refuse(&mut result, code);
                let _ = reply.send((result, None, Instant::now()));
            }
        }
    }
}

/// Runs on the owning shard: appends every item now, answers when the acknowledgements come.
/// Batches that a topic's `compression.type` converts go to the codec threads first, and every
/// later append of their partition waits its turn behind them (`ShardContext::produce_turns`),
/// so a partition's appends keep the order they arrived in.
fn produce_on_shard(
    shard: &Rc<ShardContext>,
    items: Vec<Item>,
    acks: Acks,
    version: i16,
) -> LocalBoxFuture<'static, Vec<Answer>> {
    let mut answers: Vec<Answer> = Vec::with_capacity(items.len());
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(items.len());
    let appended_at = Instant::now();
    {
        let mut state = shard.state.borrow_mut();
        // What this shard's share of the request may decompress to be checked, all partitions
        // together (a request naming one partition many times gets no more).
        let mut allowance = Allowance::new();
        let mut waiting_validation: Vec<WaitingValidation> = Vec::new();
        for item in items {
            let (topic_index, partition_index) = (item.topic_index, item.partition_index);
            let mut result = blank(item.partition);
            let outcome = match check_partition(&mut state, &item, version, &mut allowance) {
                Err(code) => {
                    refuse(&mut result, code);
                    Outcome::Now(None)
                }
                Ok(Checking::OffShard(id, log_config, records)) => {
                    let ticket = shard.produce_turns.take(id);
                    let (reply, answer) = oneshot::channel();
                    waiting_validation.push(WaitingValidation { item, log_config, records, ticket, reply });
                    Outcome::Later(answer)
                }
                Ok(Checking::Done(id, checked)) if checked.conversion.is_some() || shard.produce_turns.busy(&id) => {
                    let ticket = shard.produce_turns.take(id);
                    let (reply, answer) = oneshot::channel();
                    let task = convert_then_append(shard.clone(), item, checked, ticket, acks, reply);
                    compio::runtime::spawn(task).detach();
                    Outcome::Later(answer)
                }
                Ok(Checking::Done(id, checked)) => {
                    match append_checked(&mut state, &item, id, &checked, acks, &mut result) {
                        Ok(ack) => Outcome::Now(ack),
                        Err(code) => {
                            refuse(&mut result, code);
                            Outcome::Now(None)
                        }
                    }
                }
            };
            answers.push((topic_index, partition_index, result));
            outcomes.push(outcome);
        }
        if !waiting_validation.is_empty() {
            let task = validate_then_append(shard.clone(), waiting_validation, allowance.left, acks);
            compio::runtime::spawn(task).detach();
        }
        // To the disk in this turn: waiting for the committer task to be polled cost a mean
        // 0.13 ms per commit in the read-back suite's produce phase.
        state.start_commits();
    }
    let metrics = shard.metrics.clone();
    Box::pin(async move {
        for (answer, outcome) in answers.iter_mut().zip(outcomes) {
            let (ack, since) = match outcome {
                Outcome::Now(ack) => (ack, appended_at),
                Outcome::Later(later) => match later.await {
                    Ok((result, ack, at)) => {
                        answer.2 = result;
                        (ack, at)
                    }
                    Err(_) => {
                        refuse(&mut answer.2, ResponseError::UnknownServerError.code());
                        (None, appended_at)
                    }
                },
            };
            let Some(ack) = ack else { continue };
            match ack.await {
                Ok(_) => metrics.acknowledged(since.elapsed()),
                Err(error) => {
                    answer.2.error_code = errors::replica_error_code(&error);
                    answer.2.base_offset = -1;
                }
            }
        }
        answers
    })
}

pub async fn handle(context: &Rc<ShardContext>, frame: &Frame) -> anyhow::Result<Reply> {
    let request: ProduceRequest = decode_body(frame)?;
    let refusal =
        if frame.api_version < PRODUCE_VERSION_MIN_ACCEPTED {
            Some(ResponseError::UnsupportedVersion.code())
        } else if request.transactional_id.is_some() {
            Some(ResponseError::TransactionalIdAuthorizationFailed.code())
        } else if request.topic_data.iter().flat_map(|topic| &topic.partition_data).any(|partition| {
            partition.records.as_ref().is_some_and(|records| produce_policy::is_transactional(records))
        }) {
            // Kafka refuses the whole request before anything else, as it does a transactional id.
            Some(errors::produce_refusal_code(&produce_policy::ProduceRefusal::Transactional))
        } else if ![0, 1, -1].contains(&request.acks) {
            Some(ResponseError::InvalidRequiredAcks.code())
        } else {
            None
        };
    let mut response = ProduceResponse::default();
    let mut per_shard: Vec<Vec<Item>> = (0..context.count).map(|_| Vec::new()).collect();
    let by_id = frame.api_version >= PRODUCE_VERSION_TOPIC_IDS;
    // Each response topic's name (by id: the one it resolved to, empty if none).
    let mut names: Vec<String> = Vec::with_capacity(request.topic_data.len());
    for (topic_index, topic) in request.topic_data.iter().enumerate() {
        let mut topic_error = refusal;
        // v13: the topic the id names; an id no topic has is never auto-created.
        let resolved = by_id.then(|| context.catalog().topic_named_by(topic.topic_id.as_bytes()).map(str::to_string));
        let name = match &resolved {
            Some(found) => found.as_deref().unwrap_or_default(),
            None => topic.name.as_str(),
        };
        if topic_error.is_none() && by_id && context.catalog().partitions(name).is_none() {
            topic_error = Some(ResponseError::UnknownTopicId.code());
        } else if topic_error.is_none() && context.catalog().partitions(name).is_none() {
            if context.config.auto_create_topics && crate::catalog::valid_topic_name(name).is_ok() {
                if let Err(error) = controller::auto_create_topic(context, name).await {
                    tracing::debug!(topic = %name, %error, "auto-creation failed");
                    topic_error = Some(errors::auto_create_error_code(&error));
                }
            } else {
                topic_error = Some(ResponseError::UnknownTopicOrPartition.code());
            }
        }
        names.push(name.to_string());
        let mut topic_response = TopicProduceResponse::default();
        topic_response.name = topic.name.clone();
        topic_response.topic_id = topic.topic_id;
        for (partition_index, partition) in topic.partition_data.iter().enumerate() {
            let mut result = blank(partition.index);
            match topic_error {
                Some(code) => result.error_code = code,
                None if partition.index < 0 => result.error_code = ResponseError::UnknownTopicOrPartition.code(),
                None => per_shard[context.owner_of(name, partition.index)].push(Item {
                    topic_index,
                    partition_index,
                    topic: name.to_string(),
                    partition: partition.index,
                    records: partition.records.clone(),
                }),
            }
            topic_response.partition_responses.push(result);
        }
        response.responses.push(topic_response);
    }
    let acks = match request.acks {
        0 => Acks::None,
        1 => Acks::Leader,
        _ => Acks::All,
    };
    let version = frame.api_version;
    let mut pending = Vec::new();
    for (shard, items) in per_shard.into_iter().enumerate().filter(|(_, items)| !items.is_empty()) {
        pending.push(
            context.submit(shard, move |shard_context| produce_on_shard(shard_context, items, acks, version)).await?,
        );
    }
    if acks == Acks::None {
        return Ok(Reply::Nothing);
    }
    let (version, correlation_id) = (frame.api_version, frame.correlation_id);
    let context = context.clone();
    Ok(Reply::Later(Box::pin(async move {
        for answers in pending {
            for (topic_index, partition_index, result) in answers.await? {
                response.responses[topic_index].partition_responses[partition_index] = result;
            }
        }
        if version >= LEADER_HINTS_VERSION_MIN {
            add_leader_hints(&context, &mut response, &names);
        }
        let bytes: Bytes = encode_response(ApiKey::Produce, version, correlation_id, &response)?;
        Ok(Some(vec![bytes]))
    })))
}
