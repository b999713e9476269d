//! ApiVersions (key 18), versions 0–4: generated from the handler registry.
//!
//! A request of a version above ours is answered in v0 format with UNSUPPORTED_VERSION and our
//! ranges (KIP-511), so that the client can retry with a version we know.

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::ResponseError;

use super::REGISTRY;
use crate::codec::frame::{encode_response, Frame};

pub fn handle(frame: &Frame) -> anyhow::Result<Bytes> {
    let supported = frame.api_version <= 4;
    let mut response = ApiVersionsResponse::default();
    response.api_keys = REGISTRY
        .iter()
        .map(|handler| {
            let mut version = ApiVersion::default();
            version.api_key = handler.api_key as i16;
            version.min_version = handler.min_version;
            version.max_version = handler.max_version;
            version
        })
        .collect();
    if !supported {
        response.error_code = ResponseError::UnsupportedVersion.code();
    }
    let version = if supported { frame.api_version } else { 0 };
    encode_response(ApiKey::ApiVersions, version, frame.correlation_id, &response)
}
