//! The CONTROLLER listener's own framing (Skua's, not Kafka's KRaft): frames on a TCP stream
//! between quorum members and from brokers to the controllers. `docs/formats/controller-wire.md`
//! is the byte-level reference, with golden frames the tests check.
//!
//! Owns:
//! - the frame envelope `[length u32][version u8][kind u8][body]` and its size limit
//!   ([`FrameCodec`], [`FRAME_BYTES_MAX_DEFAULT`]), decoded incrementally from a byte buffer;
//! - the four kinds of [`Frame`]: [`Hello`] (first frame on a connection, and the rule that
//!   refuses a peer of another cluster, a duplicate or unexpected node id, or no common version:
//!   [`Hello::accept`]), a Raft message, and controller requests and responses with opaque bodies;
//! - Raft messages in our own binary layout (`message`): we never parse protobuf.
//!
//! Must not know: sockets, connections, timeouts or threads (the transport drives the codec), any
//! Kafka API, request or error code, and what the controller's request and response bodies mean
//! (they are encoded elsewhere). Pure and total: any input yields `Ok` or `Err`, never a panic,
//! and nothing is reserved beyond what the bytes received justify.

mod message;
mod reader;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use raft::prelude::Message;

use crate::types::{BrokerId, ClusterId};
use reader::BodyReader;

/// The oldest wire version this build speaks.
pub const WIRE_VERSION_MIN: u8 = 1;
/// The newest wire version this build speaks (and the one it writes).
pub const WIRE_VERSION_MAX: u8 = 1;

/// The default limit on a frame's `length` (version, kind and body). Snapshots travel in one
/// frame, so this bounds the metadata snapshot a controller can send.
pub const FRAME_BYTES_MAX_DEFAULT: u32 = 64 * 1024 * 1024;

/// The length prefix.
const FRAME_LENGTH_BYTES: usize = 4;
/// Version and kind: the shortest legal `length`.
const FRAME_HEADER_BYTES: usize = 2;

/// The first four bytes of a Hello's body, so that a stranger on the port whose bytes happen to
/// pass the version and kind checks is named as such instead of failing somewhere in the fields.
pub const HELLO_MAGIC: [u8; 4] = *b"SKUA";
/// The Hello's layout is frozen across versions, so that any two builds can read each other's
/// range; it is always written as this version.
const HELLO_FRAME_VERSION: u8 = 1;

const KIND_HELLO: u8 = 1;
const KIND_RAFT: u8 = 2;
const KIND_REQUEST: u8 = 3;
const KIND_RESPONSE: u8 = 4;

/// Everything the wire refuses. Any of them ends the connection: after an error the decoder's
/// buffer is not at a frame boundary any more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("frame of {length_bytes} bytes is larger than frame_bytes_max ({frame_bytes_max})")]
    FrameTooLarge { length_bytes: usize, frame_bytes_max: u32 },
    #[error("frame length {length_bytes} is shorter than its version and kind")]
    FrameTooShort { length_bytes: u32 },
    #[error("unsupported wire version {version} (this node speaks {WIRE_VERSION_MIN}..={WIRE_VERSION_MAX})")]
    UnsupportedVersion { version: u8 },
    #[error("unknown frame kind {kind}")]
    UnknownKind { kind: u8 },
    #[error("unknown Raft message type {value}")]
    UnknownMessageType { value: u8 },
    #[error("unknown Raft entry type {value}")]
    UnknownEntryType { value: u8 },
    #[error("{field}: unknown flag bits in {flags:#04x}")]
    UnknownFlags { field: &'static str, flags: u8 },
    #[error("{field}: the frame ends before it does")]
    Truncated { field: &'static str },
    #[error("{field}: a count of {count} cannot fit in the {remaining_bytes} bytes left")]
    CountTooLarge { field: &'static str, count: u32, remaining_bytes: usize },
    #[error("{trailing_bytes} bytes left over after the frame's last field")]
    TrailingBytes { trailing_bytes: usize },
    #[error("{field}: {length_bytes} is too long to encode")]
    FieldTooLarge { field: &'static str, length_bytes: usize },
    #[error("not a Skua controller hello (magic {found:02x?})")]
    BadMagic { found: [u8; 4] },
    #[error("hello: empty version range {version_min}..={version_max}")]
    BadVersionRange { version_min: u8, version_max: u8 },
    #[error("hello: negative node id {node_id}")]
    NegativeNodeId { node_id: i32 },
    #[error("peer speaks wire versions {remote_min}..={remote_max}, this node {local_min}..={local_max}")]
    NoCommonVersion { local_min: u8, local_max: u8, remote_min: u8, remote_max: u8 },
    #[error("peer belongs to cluster {remote:02x?}, this node to {local:02x?}")]
    ClusterMismatch { local: [u8; 16], remote: [u8; 16] },
    #[error("expected node {expected} at this address, node {remote} answered")]
    UnexpectedNode { expected: BrokerId, remote: BrokerId },
    #[error("peer claims this node's own id {node_id}: two nodes share a node.id")]
    DuplicateNodeId { node_id: BrokerId },
}

/// The first frame each side sends on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The wire versions the sender speaks, `1 <= version_min <= version_max`.
    pub version_min: u8,
    pub version_max: u8,
    /// The sender's `node.id` (never negative).
    pub node_id: BrokerId,
    /// The sender's cluster id; all zero while it does not know one yet (a node with an empty
    /// `log.dirs` before the quorum agreed on one).
    pub cluster_id: ClusterId,
}

impl Hello {
    /// This build's Hello.
    pub fn new(node_id: BrokerId, cluster_id: ClusterId) -> Hello {
        Hello { version_min: WIRE_VERSION_MIN, version_max: WIRE_VERSION_MAX, node_id, cluster_id }
    }

    /// Judges the peer's Hello against ours (`self`): refuses a peer with our own node id, a
    /// peer other than `expected_peer` (the node we dialled; `None` when the peer dialled us),
    /// a peer of another cluster (unless either side does not know its cluster id yet) and a
    /// peer with no wire version in common. Returns the version both sides then write.
    pub fn accept(&self, remote: &Hello, expected_peer: Option<BrokerId>) -> Result<u8, WireError> {
        if remote.node_id == self.node_id {
            return Err(WireError::DuplicateNodeId { node_id: remote.node_id });
        }
        if let Some(expected) = expected_peer {
            if remote.node_id != expected {
                return Err(WireError::UnexpectedNode { expected, remote: remote.node_id });
            }
        }
        let unknown = ClusterId([0; 16]);
        if self.cluster_id != unknown && remote.cluster_id != unknown && self.cluster_id != remote.cluster_id {
            return Err(WireError::ClusterMismatch { local: self.cluster_id.0, remote: remote.cluster_id.0 });
        }
        let version = self.version_max.min(remote.version_max);
        if version < self.version_min.max(remote.version_min) {
            return Err(WireError::NoCommonVersion {
                local_min: self.version_min,
                local_max: self.version_max,
                remote_min: remote.version_min,
                remote_max: remote.version_max,
            });
        }
        Ok(version)
    }
}

/// One frame on the CONTROLLER listener.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Hello(Hello),
    Raft(Message),
    /// A controller request; `correlation_id` is chosen by the sender and echoed in the response.
    Request {
        correlation_id: u64,
        body: Bytes,
    },
    Response {
        correlation_id: u64,
        body: Bytes,
    },
}

/// Encodes frames into, and decodes them from, a byte buffer, refusing frames whose `length`
/// exceeds `frame_bytes_max` on both sides.
#[derive(Clone, Copy, Debug)]
pub struct FrameCodec {
    frame_bytes_max: u32,
}

impl Default for FrameCodec {
    fn default() -> FrameCodec {
        FrameCodec::new(FRAME_BYTES_MAX_DEFAULT)
    }
}

impl FrameCodec {
    /// `frame_bytes_max` bounds a frame's `length` (version, kind and body; not the 4-byte
    /// prefix).
    pub fn new(frame_bytes_max: u32) -> FrameCodec {
        FrameCodec { frame_bytes_max }
    }

    pub fn frame_bytes_max(&self) -> u32 {
        self.frame_bytes_max
    }

    /// Appends one frame to `dst`. On error `dst` is left as it was.
    pub fn encode(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), WireError> {
        let start = dst.len();
        let result = self.write_frame(frame, dst);
        let length_bytes = dst.len() - start - FRAME_LENGTH_BYTES;
        let result = result.and_then(|()| {
            u32::try_from(length_bytes)
                .ok()
                .filter(|&length| length <= self.frame_bytes_max)
                .ok_or(WireError::FrameTooLarge { length_bytes, frame_bytes_max: self.frame_bytes_max })
        });
        match result {
            Ok(length) => {
                dst[start..start + FRAME_LENGTH_BYTES].copy_from_slice(&length.to_be_bytes());
                Ok(())
            }
            Err(error) => {
                dst.truncate(start);
                Err(error)
            }
        }
    }

    /// Writes the frame with a placeholder length, which [`FrameCodec::encode`] patches.
    fn write_frame(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), WireError> {
        dst.put_u32(0);
        match frame {
            Frame::Hello(hello) => {
                // What we write we would read: a Hello the peer must refuse is our bug, named here.
                check_hello(hello.version_min, hello.version_max, hello.node_id.0)?;
                dst.put_u8(HELLO_FRAME_VERSION);
                dst.put_u8(KIND_HELLO);
                dst.put_slice(&HELLO_MAGIC);
                dst.put_u8(hello.version_min);
                dst.put_u8(hello.version_max);
                dst.put_i32(hello.node_id.0);
                dst.put_slice(&hello.cluster_id.0);
            }
            Frame::Raft(message) => {
                dst.put_u8(WIRE_VERSION_MAX);
                dst.put_u8(KIND_RAFT);
                message::encode_message(message, dst)?;
            }
            Frame::Request { correlation_id, body } => {
                dst.put_u8(WIRE_VERSION_MAX);
                dst.put_u8(KIND_REQUEST);
                dst.put_u64(*correlation_id);
                dst.put_slice(body);
            }
            Frame::Response { correlation_id, body } => {
                dst.put_u8(WIRE_VERSION_MAX);
                dst.put_u8(KIND_RESPONSE);
                dst.put_u64(*correlation_id);
                dst.put_slice(body);
            }
        }
        Ok(())
    }

    /// Takes one whole frame off the front of `src`: `Ok(None)` until all its bytes are there
    /// (nothing consumed). The announced length, version and kind are judged as soon as their
    /// bytes arrive, so an over-long or foreign frame is refused before its body is buffered.
    /// Never reserves: `src` grows only by what the caller reads into it. Byte fields of the
    /// result are slices of `src`'s buffer, not copies.
    pub fn decode(&self, src: &mut BytesMut) -> Result<Option<Frame>, WireError> {
        let Some(length_prefix) = src.get(..FRAME_LENGTH_BYTES) else {
            return Ok(None);
        };
        let mut length_array = [0u8; FRAME_LENGTH_BYTES];
        length_array.copy_from_slice(length_prefix);
        let length = u32::from_be_bytes(length_array);
        // A u32 always fits a usize on the 64-bit targets Skua builds for.
        let length_bytes = usize::try_from(length).unwrap_or(usize::MAX);
        if length > self.frame_bytes_max {
            return Err(WireError::FrameTooLarge { length_bytes, frame_bytes_max: self.frame_bytes_max });
        }
        if length_bytes < FRAME_HEADER_BYTES {
            return Err(WireError::FrameTooShort { length_bytes: length });
        }
        if let Some(&version) = src.get(FRAME_LENGTH_BYTES) {
            check_version(version)?;
        }
        if let Some(&kind) = src.get(FRAME_LENGTH_BYTES + 1) {
            check_kind(kind)?;
        }
        if src.len() - FRAME_LENGTH_BYTES < length_bytes {
            return Ok(None);
        }
        src.advance(FRAME_LENGTH_BYTES);
        let mut frame = src.split_to(length_bytes).freeze();
        let version = frame.get_u8();
        let kind = frame.get_u8();
        decode_body(version, kind, BodyReader::new(frame)).map(Some)
    }
}

fn check_version(version: u8) -> Result<(), WireError> {
    if !(WIRE_VERSION_MIN..=WIRE_VERSION_MAX).contains(&version) {
        return Err(WireError::UnsupportedVersion { version });
    }
    Ok(())
}

fn check_kind(kind: u8) -> Result<(), WireError> {
    match kind {
        KIND_HELLO | KIND_RAFT | KIND_REQUEST | KIND_RESPONSE => Ok(()),
        _ => Err(WireError::UnknownKind { kind }),
    }
}

fn check_hello(version_min: u8, version_max: u8, node_id: i32) -> Result<(), WireError> {
    if version_min == 0 || version_min > version_max {
        return Err(WireError::BadVersionRange { version_min, version_max });
    }
    if node_id < 0 {
        return Err(WireError::NegativeNodeId { node_id });
    }
    Ok(())
}

fn decode_body(version: u8, kind: u8, mut reader: BodyReader) -> Result<Frame, WireError> {
    match kind {
        KIND_HELLO => {
            if version != HELLO_FRAME_VERSION {
                return Err(WireError::UnsupportedVersion { version });
            }
            let found = reader.array::<4>("hello magic")?;
            if found != HELLO_MAGIC {
                return Err(WireError::BadMagic { found });
            }
            let version_min = reader.u8("hello version min")?;
            let version_max = reader.u8("hello version max")?;
            let node_id = reader.i32("hello node id")?;
            check_hello(version_min, version_max, node_id)?;
            let cluster_id = reader.array::<16>("hello cluster id")?;
            reader.finish()?;
            Ok(Frame::Hello(Hello {
                version_min,
                version_max,
                node_id: BrokerId(node_id),
                cluster_id: ClusterId(cluster_id),
            }))
        }
        KIND_RAFT => message::decode_message(reader).map(Frame::Raft),
        KIND_REQUEST => {
            let correlation_id = reader.u64("correlation id")?;
            Ok(Frame::Request { correlation_id, body: reader.rest() })
        }
        KIND_RESPONSE => {
            let correlation_id = reader.u64("correlation id")?;
            Ok(Frame::Response { correlation_id, body: reader.rest() })
        }
        _ => Err(WireError::UnknownKind { kind }),
    }
}
