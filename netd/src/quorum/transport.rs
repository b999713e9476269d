//! Blocking frame I/O on the CONTROLLER listener's TCP connections (`cluster::wire` framing):
//! read one frame, write one frame, and the Hello exchange that opens every connection.
//!
//! Controller traffic is small and not on the data path, so it runs on plain threads with
//! blocking sockets and timeouts (decision 0016), never on a shard.
//!
//! Must not know: what the frames mean beyond the Hello.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cluster::wire::{Frame, FrameCodec, Hello, WireError};
use cluster::BrokerId;

use crate::limits::CONTROLLER_IO_TIMEOUT_MS;

/// Bytes read from the socket at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Kafka API keys and versions are small numbers (a Skua frame's second and third bytes are its
/// version and kind, never both zero-led like this): used only to word a log line.
const KAFKA_API_KEY_GUESS_MAX: u16 = 100;
const KAFKA_API_VERSION_GUESS_MAX: u16 = 30;

/// One connection's framing state: the socket and what was read past the last frame.
#[derive(Debug)]
pub struct FramedStream {
    pub stream: TcpStream,
    buffer: BytesMut,
    /// Decodes (and bounds) the frames read; frames written are bounded by the default codec.
    codec: FrameCodec,
}

fn invalid(error: WireError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

impl FramedStream {
    /// Wraps a connected socket: no Nagle delay (Raft messages are small and latency-bound) and
    /// a write timeout so a stuck peer cannot hold a writer forever.
    pub fn new(stream: TcpStream) -> io::Result<FramedStream> {
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(Duration::from_millis(CONTROLLER_IO_TIMEOUT_MS)))?;
        Ok(FramedStream { stream, buffer: BytesMut::new(), codec: FrameCodec::default() })
    }

    /// The next frame; an error on end of stream, a read timeout (if one is set) or bad bytes.
    pub fn read(&mut self) -> io::Result<Frame> {
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buffer).map_err(invalid)? {
                return Ok(frame);
            }
            self.fill()?;
        }
    }

    /// The next frame, which must arrive whole within `timeout_ms` (a peer trickling bytes does
    /// not reset it, as it would a read timeout). Leaves the read timeout as it found it.
    pub fn read_within_ms(&mut self, timeout_ms: u64) -> io::Result<Frame> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        let timeout_before = self.stream.read_timeout()?;
        let result = loop {
            match self.codec.decode(&mut self.buffer).map_err(invalid) {
                Ok(Some(frame)) => break Ok(frame),
                Ok(None) => {}
                Err(error) => break Err(error),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Err(io::Error::new(io::ErrorKind::TimedOut, format!("no whole frame within {timeout_ms} ms")));
            }
            if let Err(error) = self.stream.set_read_timeout(Some(left)).and_then(|()| self.fill()) {
                break Err(error);
            }
        };
        self.stream.set_read_timeout(timeout_before)?;
        result
    }

    /// Reads what the socket has into the buffer (blocking up to the read timeout).
    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; READ_CHUNK_BYTES];
        let read = self.stream.read(&mut chunk)?;
        if read == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the peer closed the connection"));
        }
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(())
    }

    /// Whether the bytes read so far start like a Kafka request (a length, then an API key up to
    /// [`KAFKA_API_KEY_GUESS_MAX`] and a small version): a Kafka tool pointed at the CONTROLLER
    /// listener (`--bootstrap-controller`), which speaks Skua's own framing, not Kafka's.
    pub fn looks_like_kafka_request(&self) -> bool {
        match self.buffer.get(4..8) {
            Some([key_high, key_low, version_high, version_low]) => {
                let api_key = u16::from_be_bytes([*key_high, *key_low]);
                let version = u16::from_be_bytes([*version_high, *version_low]);
                api_key <= KAFKA_API_KEY_GUESS_MAX && version <= KAFKA_API_VERSION_GUESS_MAX
            }
            _ => false,
        }
    }

    /// Bounds the frames this side accepts from now on (what it sends is not bounded by it).
    pub fn set_frame_bytes_max(&mut self, frame_bytes_max: u32) {
        self.codec = FrameCodec::new(frame_bytes_max);
    }

    pub fn write(&mut self, frame: &Frame) -> io::Result<()> {
        let mut bytes = BytesMut::new();
        FrameCodec::default().encode(frame, &mut bytes).map_err(invalid)?;
        self.stream.write_all(&bytes)
    }

    pub fn set_read_timeout_ms(&self, timeout_ms: Option<u64>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout_ms.map(Duration::from_millis))
    }

    /// The dialling side's Hello exchange: ours first, then theirs, judged against the node we
    /// meant to reach (None: any node, as a broker looking for the active controller).
    pub fn dial_hello(&mut self, own: &Hello, expected: Option<BrokerId>) -> io::Result<Hello> {
        self.write(&Frame::Hello(*own))?;
        self.set_read_timeout_ms(Some(CONTROLLER_IO_TIMEOUT_MS))?;
        let remote = match self.read_within_ms(CONTROLLER_IO_TIMEOUT_MS)? {
            Frame::Hello(remote) => remote,
            other => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("expected a Hello, got {other:?}")))
            }
        };
        match own.accept(&remote, expected) {
            // A broker reaching the controller of its own process (combined mode) shares its id.
            Ok(_) | Err(WireError::DuplicateNodeId { .. }) if expected.is_none() => Ok(remote),
            Ok(_) => Ok(remote),
            Err(error) => Err(invalid(error)),
        }
    }
}
