//! InitProducerId (key 22), versions 0–5, for idempotent producers (Java, franz-go and
//! kafka-python enable idempotence by default). Transactional ids are refused: transactions are
//! not implemented.
//!
//! A request that names its current producer id and epoch (KIP-360, v3+) gets the same id with
//! the next epoch, which resets its sequences; otherwise a new id with epoch 0.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use crate::codec::errors::producer_id_error_code;
use crate::codec::frame::{decode_body, encode_response, Frame};
use crate::runtime::context::ShardContext;
use crate::runtime::controller;

pub async fn handle(context: &ShardContext, frame: &Frame) -> anyhow::Result<Bytes> {
    let request: InitProducerIdRequest = decode_body(frame)?;
    let mut response = InitProducerIdResponse::default();
    response.producer_id = ProducerId(-1);
    response.producer_epoch = -1;
    if request.transactional_id.is_some() {
        response.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
    } else if request.producer_id.0 >= 0 && request.producer_epoch >= 0 && request.producer_epoch < i16::MAX - 1 {
        response.producer_id = request.producer_id;
        response.producer_epoch = request.producer_epoch + 1;
    } else {
        match controller::allocate_producer_id(context).await {
            Ok(id) => {
                response.producer_id = ProducerId(id);
                response.producer_epoch = 0;
            }
            Err(error) => {
                tracing::error!(%error, "could not reserve producer ids");
                response.error_code = producer_id_error_code(&error);
            }
        }
    }
    encode_response(ApiKey::InitProducerId, frame.api_version, frame.correlation_id, &response)
}
