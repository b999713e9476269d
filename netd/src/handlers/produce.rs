//! Produce (key 0), versions 3–11 (0–2 advertised and rejected, as Kafka 4 does).
//!
//! The record batches go to the engine as they arrived: validated (CRC), offsets assigned by
//! rewriting the header, never re-encoded. Appends happen synchronously in request order; the
//! reply waits for the group commit that makes them durable (acks=1 and acks=all are the same on
//! a single node). acks=0 gets no response, as in Kafka.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use engine::{EngineError, LeaderEpoch};
use futures_channel::oneshot;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use kafka_protocol::ResponseError;

use super::Reply;
use crate::broker::{now_ms, Broker};
use crate::errors;
use crate::producers::{BatchIdentity, Verdict};
use crate::protocol::{decode_body, encode_response, Frame};

/// Produce versions below this were removed by KIP-896 and are rejected.
pub const PRODUCE_VERSION_MIN_ACCEPTED: i16 = 3;

pub fn handle(broker: &Rc<RefCell<Broker>>, frame: &Frame) -> anyhow::Result<Reply> {
    let request: ProduceRequest = decode_body(frame)?;
    let mut response = ProduceResponse::default();
    // (topic index, partition index, commit receiver)
    let mut waiting: Vec<(usize, usize, oneshot::Receiver<i16>)> = Vec::new();
    let mut appended_any = false;
    {
        let mut state = broker.borrow_mut();
        for topic in &request.topic_data {
            let mut topic_response = TopicProduceResponse::default();
            topic_response.name = topic.name.clone();
            for partition in &topic.partition_data {
                let mut result = PartitionProduceResponse::default();
                result.index = partition.index;
                result.base_offset = -1;
                result.log_append_time_ms = -1;
                result.log_start_offset = -1;
                let outcome: Result<(), i16> = (|| {
                    if frame.api_version < PRODUCE_VERSION_MIN_ACCEPTED {
                        return Err(ResponseError::UnsupportedVersion.code());
                    }
                    if request.transactional_id.is_some() {
                        return Err(ResponseError::TransactionalIdAuthorizationFailed.code());
                    }
                    if ![0, 1, -1].contains(&request.acks) {
                        return Err(ResponseError::InvalidRequiredAcks.code());
                    }
                    let records = partition.records.as_ref().ok_or(ResponseError::InvalidRecord.code())?;
                    let log = state.log_for(topic.name.as_str(), partition.index, true)?;
                    let headers = engine::batch::validate_all(records)
                        .map_err(|error| errors::engine_error_code(&EngineError::InvalidBatch(error)))?;
                    let identities: Vec<Option<BatchIdentity>> = headers.iter().map(BatchIdentity::of).collect();
                    let verdicts: Vec<Verdict> = {
                        let producers = state.producers.entry(log).or_default();
                        identities
                            .iter()
                            .map(|identity| identity.map_or(Verdict::Append, |id| producers.check(&id)))
                            .collect()
                    };
                    if let Some(Verdict::Reject(code)) =
                        verdicts.iter().find(|verdict| matches!(verdict, Verdict::Reject(_)))
                    {
                        return Err(*code);
                    }
                    let duplicates =
                        verdicts.iter().filter(|verdict| matches!(verdict, Verdict::Duplicate { .. })).count();
                    let last_offset = if duplicates == verdicts.len() {
                        // A retry: answer with the original offsets once they are committed.
                        let Some(Verdict::Duplicate { base_offset, .. }) = verdicts.first() else {
                            unreachable!("non-empty")
                        };
                        let Some(Verdict::Duplicate { last_offset, .. }) = verdicts.last() else {
                            unreachable!("non-empty")
                        };
                        result.base_offset = *base_offset as i64;
                        engine::Offset(*last_offset)
                    } else if duplicates > 0 {
                        return Err(ResponseError::OutOfOrderSequenceNumber.code());
                    } else {
                        let info = state
                            .engine
                            .append(log, records, LeaderEpoch(0), now_ms())
                            .map_err(|error| errors::engine_error_code(&error))?;
                        appended_any = true;
                        result.base_offset = info.base_offset.0 as i64;
                        let producers = state.producers.entry(log).or_default();
                        let mut base = info.base_offset.0;
                        for (header, identity) in headers.iter().zip(&identities) {
                            let last = base + u64::from(header.last_offset_delta);
                            if let Some(identity) = identity {
                                producers.record(identity, base, last);
                            }
                            base = last + 1;
                        }
                        info.last_offset
                    };
                    result.log_start_offset = state.engine.log(log).map_or(-1, |log| log.log_start_offset().0 as i64);
                    if request.acks != 0 {
                        let receiver = state.wait_for_commit(log, last_offset);
                        waiting.push((response.responses.len(), topic_response.partition_responses.len(), receiver));
                    }
                    Ok(())
                })();
                if let Err(code) = outcome {
                    result.error_code = code;
                    result.base_offset = -1;
                }
                topic_response.partition_responses.push(result);
            }
            response.responses.push(topic_response);
        }
        if appended_any {
            state.request_commit();
        }
    }
    if request.acks == 0 {
        return Ok(Reply::Nothing);
    }
    let (version, correlation_id) = (frame.api_version, frame.correlation_id);
    if waiting.is_empty() {
        return Ok(Reply::Now(encode_response(ApiKey::Produce, version, correlation_id, &response)?));
    }
    Ok(Reply::Later(Box::pin(async move {
        for (topic, partition, receiver) in waiting {
            // A dropped sender means the shard is shutting down before the commit.
            let code = receiver.await.unwrap_or(ResponseError::RequestTimedOut.code());
            let result = &mut response.responses[topic].partition_responses[partition];
            if code != errors::NONE {
                result.error_code = code;
                result.base_offset = -1;
            }
        }
        let bytes: Bytes = encode_response(ApiKey::Produce, version, correlation_id, &response)?;
        Ok(Some(bytes))
    })))
}
