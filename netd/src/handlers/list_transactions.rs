//! ListTransactions (key 66), versions 0–2: Skua has no transactions (InitProducerId serves
//! idempotent producers only), so the list is always empty with error NONE, as a Kafka 4.4
//! broker with none answers; `kafka-transactions list` prints its empty table.
//!
//! The filters are still honoured where Kafka's answer depends on them: state names Kafka does
//! not know come back in `unknown_state_filters` (once each; Kafka keeps them in a set, so the
//! order is not promised), and a `transactional_id_pattern` (v2) that is no valid RE2 regular
//! expression (Kafka compiles it with RE2/J) gets INVALID_REGULAR_EXPRESSION. Producer-id and
//! duration filters select among transactions, of which there are none.

use std::collections::HashSet;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ListTransactionsRequest, ListTransactionsResponse};
use kafka_protocol::ResponseError;

use crate::codec::frame::{decode_body, encode_response, Frame};

/// Kafka's transaction states by name (`TransactionState`), the names a state filter may use;
/// matched exactly, as Kafka does ("ongoing" is unknown).
pub const TRANSACTION_STATES: &[&str] = &[
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
    "Dead",
    "PrepareEpochFence",
];

pub fn handle(frame: &Frame) -> anyhow::Result<Bytes> {
    let request: ListTransactionsRequest = decode_body(frame)?;
    let mut response = ListTransactionsResponse::default();
    if let Some(pattern) = &request.transactional_id_pattern {
        if regex_syntax::Parser::new().parse(pattern.as_str()).is_err() {
            response.error_code = ResponseError::InvalidRegularExpression.code();
            return encode_response(ApiKey::ListTransactions, frame.api_version, frame.correlation_id, &response);
        }
    }
    // A set for the duplicates: a request may carry many thousands of filters.
    let mut seen: HashSet<&str> = HashSet::new();
    response.unknown_state_filters = request
        .state_filters
        .iter()
        .filter(|state| !TRANSACTION_STATES.contains(&state.as_str()) && seen.insert(state.as_str()))
        .cloned()
        .collect();
    encode_response(ApiKey::ListTransactions, frame.api_version, frame.correlation_id, &response)
}
