//! SaslHandshake (key 17), versions 0–1, and SaslAuthenticate (key 36), versions 0–2, on a
//! PLAINTEXT listener: answered as Apache Kafka 4.4's PLAINTEXT listener answers them (the
//! connection counts as authenticated already), never by closing the connection.
//!
//! Observed on Kafka 4.4: SaslHandshake → ILLEGAL_SASL_STATE with no mechanisms, whatever the
//! mechanism; SaslAuthenticate → ILLEGAL_SASL_STATE, "SaslAuthenticate request received after
//! successful authentication", empty auth bytes, session lifetime 0; the connection stays open.
//! Knows nothing of SASL itself: Skua has no SASL listener.

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::ResponseError;

use super::str_bytes;
use crate::codec::frame::{decode_body, encode_response, Frame};

/// Kafka's message for SaslAuthenticate on a connection that needs no authentication.
pub const AUTHENTICATE_MESSAGE: &str = "SaslAuthenticate request received after successful authentication";

pub fn handshake(frame: &Frame) -> anyhow::Result<Bytes> {
    let request: SaslHandshakeRequest = decode_body(frame)?;
    tracing::debug!(mechanism = %request.mechanism.as_str(), "SaslHandshake on a PLAINTEXT listener");
    let mut response = SaslHandshakeResponse::default();
    response.error_code = ResponseError::IllegalSaslState.code();
    encode_response(ApiKey::SaslHandshake, frame.api_version, frame.correlation_id, &response)
}

pub fn authenticate(frame: &Frame) -> anyhow::Result<Bytes> {
    let _request: SaslAuthenticateRequest = decode_body(frame)?;
    let mut response = SaslAuthenticateResponse::default();
    response.error_code = ResponseError::IllegalSaslState.code();
    response.error_message = Some(str_bytes(AUTHENTICATE_MESSAGE));
    encode_response(ApiKey::SaslAuthenticate, frame.api_version, frame.correlation_id, &response)
}
