//! Framing and headers of the Kafka wire protocol.
//!
//! Owns: splitting a request frame into its header and body, checking the API key and version
//! against the handler registry, and encoding a response frame (size, header, body). Pure: no I/O,
//! never panics on input.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

/// A decoded request header with the body left undecoded.
#[derive(Debug)]
pub struct Frame {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    pub body: Bytes,
    /// The client's address (set by the connection, not decoded).
    pub peer: Option<std::net::SocketAddr>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame shorter than a request header")]
    TooShort,
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("malformed request header: {0}")]
    BadHeader(String),
}

/// Splits a request (the bytes after the 4-byte size) into header and body.
pub fn decode_frame(mut bytes: Bytes) -> Result<Frame, FrameError> {
    if bytes.len() < 8 {
        return Err(FrameError::TooShort);
    }
    let raw_key = i16::from_be_bytes([bytes[0], bytes[1]]);
    let api_version = i16::from_be_bytes([bytes[2], bytes[3]]);
    let api_key = ApiKey::try_from(raw_key).map_err(|()| FrameError::UnknownApiKey(raw_key))?;
    // An ApiVersions request of a version we do not know must still be answered (KIP-511): its
    // header is at least v1 (no tagged fields are read for unknown versions).
    let header_version =
        if api_key == ApiKey::ApiVersions && api_version > 4 { 1 } else { api_key.request_header_version(api_version) };
    let header =
        without_panics(|| "the request header".to_string(), || RequestHeader::decode(&mut bytes, header_version))
            .map_err(|error| FrameError::BadHeader(error.to_string()))?;
    Ok(Frame {
        api_key,
        api_version,
        correlation_id: header.correlation_id,
        client_id: header.client_id.map(|id| id.to_string()),
        body: bytes,
        peer: None,
    })
}

/// Encodes a complete response frame: size, response header, body.
pub fn encode_response<M: Encodable>(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &M,
) -> anyhow::Result<Bytes> {
    let mut buffer = BytesMut::with_capacity(128);
    buffer.put_i32(0);
    let header_version = if api_key == ApiKey::ApiVersions { 0 } else { api_key.response_header_version(api_version) };
    ResponseHeader::default().with_correlation_id(correlation_id).encode(&mut buffer, header_version)?;
    body.encode(&mut buffer, api_version)?;
    let size = i32::try_from(buffer.len() - 4)?;
    buffer[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buffer.freeze())
}

/// Decodes a request body of a known type. The generated decoders bound every array count by the
/// bytes left in the frame (the patched `kafka-protocol`, decision 0013), so a decode allocates
/// in proportion to the frame it was given; should one still panic, the panic is caught here and
/// becomes an error, which closes only this connection.
pub fn decode_body<M: Decodable>(frame: &Frame) -> anyhow::Result<M> {
    let mut body = frame.body.clone();
    without_panics(|| describe(frame), || M::decode(&mut body, frame.api_version))
}

/// Decodes the body of any request the registry serves into `kafka-protocol`'s `RequestKind`,
/// as [`decode_body`] does for one type. For the decode fuzzers and bound tests, which must cover
/// every API and version the broker accepts.
pub fn decode_any(frame: &Frame) -> anyhow::Result<RequestKind> {
    let mut body = frame.body.clone();
    without_panics(|| describe(frame), || RequestKind::decode(frame.api_key, &mut body, frame.api_version))
}

/// Runs a generated decoder, turning a panic into an error naming what was being decoded (`what`
/// is called only then, so the normal path allocates nothing for it).
fn without_panics<T>(what: impl FnOnce() -> String, decode: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode))
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the decoder of {} panicked", what())))
}

fn describe(frame: &Frame) -> String {
    format!("the {:?} v{} body", frame.api_key, frame.api_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ApiVersions v3 request librdkafka 2.0.2 (kcat) sends first, captured from the wire with
    /// a one-shot loopback listener (frame size prefix removed).
    const KCAT_API_VERSIONS: &str = "0012000300000001000772646b61666b61000b6c696272646b61666b6106322e302e3200";

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex")).collect()
    }

    #[test]
    fn decodes_a_real_client_header() {
        let frame = decode_frame(Bytes::from(hex(KCAT_API_VERSIONS))).expect("frame");
        assert_eq!(frame.api_key, ApiKey::ApiVersions);
        assert_eq!(frame.api_version, 3);
        assert_eq!(frame.correlation_id, 1);
        assert_eq!(frame.client_id.as_deref(), Some("rdkafka"));
        let request: kafka_protocol::messages::ApiVersionsRequest = decode_body(&frame).expect("body");
        assert_eq!(request.client_software_name.as_str(), "librdkafka");
        assert_eq!(request.client_software_version.as_str(), "2.0.2");
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert_eq!(decode_frame(Bytes::from_static(&[0, 1])).err(), Some(FrameError::TooShort));
        assert_eq!(
            decode_frame(Bytes::from_static(&[0x7f, 0x7f, 0, 0, 0, 0, 0, 1])).err(),
            Some(FrameError::UnknownApiKey(0x7f7f))
        );
        let mut state = 7u64;
        for length in 0..300 {
            let bytes: Vec<u8> = (0..length)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (state >> 33) as u8
                })
                .collect();
            if let Ok(frame) = decode_frame(Bytes::from(bytes)) {
                let _ = decode_body::<kafka_protocol::messages::MetadataRequest>(&frame);
                let _ = decode_body::<kafka_protocol::messages::ProduceRequest>(&frame);
            }
        }
    }

    #[test]
    fn response_frame_has_size_and_correlation_id() {
        let body = kafka_protocol::messages::ApiVersionsResponse::default();
        let frame = encode_response(ApiKey::ApiVersions, 3, 42, &body).expect("encode");
        let size = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        assert_eq!(size, frame.len() - 4);
        assert_eq!(&frame[4..8], &42i32.to_be_bytes());
        // ApiVersions responses never carry header tagged fields: the body starts right after.
        assert_eq!(&frame[8..10], &0i16.to_be_bytes());
    }
}
