//! A connection: reading request frames within the broker's budgets, dispatching them in order,
//! and writing their responses in request order.
//!
//! A connection's memory is bounded: a frame is at most `socket.request.max.bytes`, its buffer
//! grows only as its bytes arrive (`limits::FRAME_READ_STEP_BYTES` at a time, or what already
//! arrived), up to `skua.inflight.requests.max` requests are in flight (responses written in
//! request order), and the broker-wide budgets `queued.max.request.bytes` (frame bytes held until the
//! request's last reference to them is dropped) and `queued.max.requests` (requests read and not
//! yet taken by their handler) are taken before a frame's body is read:
//! when one is used up the connection reads nothing until it has room (backpressure, as Kafka's
//! MemoryPool mutes channels). A connection with nothing in flight that sends nothing for
//! `connections.max.idle.ms` is closed.
//!
//! Must not know: any Kafka API. Frames go to the dispatcher the shard was started with
//! ([`Dispatch`], the handlers' registry), so this layer never imports a handler.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use compio::buf::{IntoInner, IoBuf};
use compio::io::{AsyncRead, AsyncWriteExt};
use compio::net::TcpStream;
use futures_channel::mpsc;
use futures_util::future::LocalBoxFuture;
use futures_util::{SinkExt, StreamExt};

use crate::codec::frame::{self, Frame};
use crate::limits::{FRAME_READ_STEP_BYTES, WRITE_SEGMENTS_MAX};
use crate::metrics::ShardMetrics;
use crate::runtime::budget::{Budget, ConnectionSlot, Permit};
use crate::runtime::context::{Job, ShardContext};

/// A response frame as segments whose concatenation is the frame (record bytes are segments of
/// their own, written with one vectored write instead of being copied).
pub type Segments = Vec<Bytes>;

pub type BoxedReply = Pin<Box<dyn Future<Output = anyhow::Result<Option<Segments>>>>>;

/// What a handler gives back.
pub enum Reply {
    Now(Bytes),
    Later(BoxedReply),
    /// No response at all (Produce with acks=0).
    Nothing,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Now(bytes) => write!(f, "Reply::Now({} bytes)", bytes.len()),
            Reply::Later(_) => f.write_str("Reply::Later"),
            Reply::Nothing => f.write_str("Reply::Nothing"),
        }
    }
}

/// Turns a decoded frame into its reply: the handlers' registry (`handlers::dispatch`), given to
/// the shard at start. `Err` closes the connection (an API or version the broker does not serve,
/// or a request it cannot decode). Work that must happen in request order is done before the
/// future completes; waiting for commits or fetch data happens in the reply.
pub type Dispatch = for<'a> fn(&'a Rc<ShardContext>, Frame) -> LocalBoxFuture<'a, anyhow::Result<Reply>>;

/// A job that makes `stream` a connection of the shard that runs it; `slot` is its place among
/// the broker's connections, freed when the connection ends.
pub fn connection_job(stream: std::net::TcpStream, slot: ConnectionSlot) -> Job {
    Box::new(move |context: &Rc<ShardContext>| {
        let context = context.clone();
        compio::runtime::spawn(async move {
            let _slot = slot;
            let peer = stream.peer_addr().ok();
            match TcpStream::from_std(stream) {
                Ok(stream) => {
                    if let Err(error) = serve_connection(stream, context).await {
                        tracing::debug!(?peer, %error, "connection closed");
                    }
                }
                Err(error) => tracing::warn!(?peer, %error, "could not adopt a connection"),
            }
        })
        .detach();
    })
}

/// Writes a response frame given as segments: one plain write for one segment, vectored writes
/// (no copying of record bytes) for more.
async fn write_segments(writer: &mut TcpStream, segments: Segments) -> std::io::Result<()> {
    if let [single] = &segments[..] {
        let compio::BufResult(result, _) = writer.write_all(single.clone()).await;
        return result;
    }
    for group in segments.chunks(WRITE_SEGMENTS_MAX) {
        let compio::BufResult(result, _) = writer.write_vectored_all(group.to_vec()).await;
        result?;
    }
    Ok(())
}

/// Reads requests, dispatches them in order, and hands their replies to the writer in order.
async fn serve_connection(stream: TcpStream, context: Rc<ShardContext>) -> anyhow::Result<()> {
    let config = &context.config;
    stream.set_nodelay(true)?;
    let (mut reader, mut writer) = stream.into_split();
    let (mut replies, mut pending) = mpsc::channel::<(BoxedReply, Answering)>(config.inflight_requests_max);
    // Requests read whose responses are not yet written: a connection waiting for one is not idle.
    let in_flight = Rc::new(Cell::new(0usize));
    let idle = Duration::from_millis(config.connection_idle_ms);
    let writer_task = {
        let in_flight = in_flight.clone();
        let metrics = context.metrics.clone();
        compio::runtime::spawn(async move {
            let outcome = write_replies(&mut writer, &mut pending, &in_flight, idle, &metrics).await;
            // However the writer stops, the connection ends: this also wakes the reader.
            let _ = socket2::SockRef::from(&writer).shutdown(std::net::Shutdown::Both);
            outcome
        })
    };
    let result = read_requests(&mut reader, &context, &mut replies, &in_flight).await;
    drop(replies);
    let _ = writer_task.await;
    result
}

/// Writes the replies in request order. A response the client reads nothing of for
/// `connections.max.idle.ms` ends the connection, so a client that stops reading cannot hold
/// the broker's fetch memory (`skua.fetch.buffered.bytes.max`) for ever.
async fn write_replies(
    writer: &mut TcpStream,
    pending: &mut mpsc::Receiver<(BoxedReply, Answering)>,
    in_flight: &Cell<usize>,
    idle: Duration,
    metrics: &ShardMetrics,
) -> anyhow::Result<()> {
    while let Some((reply, answering)) = pending.next().await {
        let outcome = reply.await;
        drop(answering.waiting);
        match outcome {
            Ok(Some(segments)) => match compio::time::timeout(idle, write_segments(writer, segments)).await {
                Ok(written) => written?,
                Err(_) => {
                    tracing::debug!("closing a connection that read no response for connections.max.idle.ms");
                    return Ok(());
                }
            },
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "request failed; closing the connection");
                return Ok(());
            }
        }
        metrics.answered(answering.api_key, answering.read_at.elapsed());
        in_flight.set(in_flight.get() - 1);
    }
    Ok(())
}

/// What reading from a connection came to.
enum Received<T> {
    Read(T),
    /// The peer closed the connection where a frame may end.
    Closed,
    /// Nothing arrived for `connections.max.idle.ms` while nothing was in flight.
    Idle,
}

/// Reads into `buffer` after its bytes and before `end` (at most its capacity), waiting at most
/// `connections.max.idle.ms` for bytes while nothing is in flight (a request in flight, such as a
/// long-polling fetch, keeps the connection alive however long it waits).
async fn read_some(
    reader: &mut TcpStream,
    buffer: Vec<u8>,
    end: usize,
    idle: Duration,
    in_flight: &Cell<usize>,
) -> (std::io::Result<Received<usize>>, Vec<u8>) {
    let start = buffer.len();
    assert!(start < end && end <= buffer.capacity(), "a read has room in its buffer");
    let mut read = std::pin::pin!(reader.read(buffer.slice(start..end)));
    loop {
        match compio::time::timeout(idle, read.as_mut()).await {
            Ok(compio::BufResult(Ok(0), slice)) => return (Ok(Received::Closed), slice.into_inner()),
            Ok(compio::BufResult(result, slice)) => return (result.map(Received::Read), slice.into_inner()),
            Err(_) if in_flight.get() > 0 => continue,
            // Dropping the read cancels it; its buffer goes with it.
            Err(_) => return (Ok(Received::Idle), Vec::new()),
        }
    }
}

/// Takes `units` from `budget`, or None once the connection has waited `connections.max.idle.ms`
/// with nothing in flight.
async fn acquire_unless_idle(
    budget: &Arc<Budget>,
    units: u64,
    idle: Duration,
    in_flight: &Cell<usize>,
) -> Option<Permit> {
    let mut acquire = std::pin::pin!(budget.acquire(units));
    loop {
        match compio::time::timeout(idle, acquire.as_mut()).await {
            Ok(permit) => return Some(permit),
            Err(_) if in_flight.get() > 0 => continue,
            Err(_) => return None,
        }
    }
}

/// Reads exactly `size` bytes, growing the buffer only as bytes arrive (by what already arrived,
/// at least `FRAME_READ_STEP_BYTES`, never past `size`): announcing a large frame reserves
/// nothing. Each growth is charged to `charge` (`queued.max.request.bytes`) before it is made,
/// so the budget counts memory actually held for bytes received, not sizes announced; when the
/// budget is full the socket is not read until there is room (backpressure).
async fn read_frame_body(
    reader: &mut TcpStream,
    size: usize,
    idle: Duration,
    in_flight: &Cell<usize>,
    charge: &mut Permit,
) -> anyhow::Result<Received<Vec<u8>>> {
    let mut buffer: Vec<u8> = Vec::new();
    while buffer.len() < size {
        if buffer.len() == buffer.capacity() {
            let step = buffer.len().max(FRAME_READ_STEP_BYTES).min(size - buffer.len());
            loop {
                match compio::time::timeout(idle, charge.grow(step as u64)).await {
                    Ok(()) => break,
                    Err(_) if in_flight.get() > 0 => continue,
                    Err(_) => return Ok(Received::Idle),
                }
            }
            buffer.reserve_exact(step);
        }
        let end = buffer.capacity().min(size);
        let (result, returned) = read_some(reader, buffer, end, idle, in_flight).await;
        buffer = returned;
        match result? {
            Received::Read(_) => {}
            Received::Closed => anyhow::bail!("connection closed inside a frame ({} of {size} bytes)", buffer.len()),
            Received::Idle => return Ok(Received::Idle),
        }
    }
    Ok(Received::Read(buffer))
}

/// Reads a frame's 4-byte size.
async fn read_frame_size(
    reader: &mut TcpStream,
    idle: Duration,
    in_flight: &Cell<usize>,
) -> anyhow::Result<Received<[u8; 4]>> {
    let mut buffer: Vec<u8> = Vec::with_capacity(4);
    while buffer.len() < 4 {
        let (result, returned) = read_some(reader, buffer, 4, idle, in_flight).await;
        buffer = returned;
        match result? {
            Received::Read(_) => {}
            Received::Closed if buffer.is_empty() => return Ok(Received::Closed),
            Received::Closed => anyhow::bail!("connection closed inside a frame size"),
            Received::Idle => return Ok(Received::Idle),
        }
    }
    Ok(Received::Read([buffer[0], buffer[1], buffer[2], buffer[3]]))
}

/// What the writer needs to count a request once answered (`metrics`): which API, when it was
/// read whole, and its place among the waiting requests (none for an answer ready at once).
struct Answering {
    api_key: i16,
    read_at: Instant,
    waiting: Option<crate::metrics::Waiting>,
}

async fn read_requests(
    reader: &mut TcpStream,
    context: &Rc<ShardContext>,
    replies: &mut mpsc::Sender<(BoxedReply, Answering)>,
    in_flight: &Rc<Cell<usize>>,
) -> anyhow::Result<()> {
    let config = &context.config;
    let budgets = &context.budgets;
    let peer = reader.peer_addr().ok();
    let idle = Duration::from_millis(config.connection_idle_ms);
    loop {
        let size_bytes = match read_frame_size(reader, idle, in_flight).await? {
            Received::Read(bytes) => bytes,
            Received::Closed => return Ok(()),
            Received::Idle => {
                tracing::debug!(
                    ?peer,
                    idle_ms = config.connection_idle_ms,
                    "closing an idle connection (connections.max.idle.ms)"
                );
                return Ok(());
            }
        };
        let size = i32::from_be_bytes(size_bytes);
        let size = usize::try_from(size).map_err(|_| anyhow::anyhow!("negative frame size {size}"))?;
        if size > config.socket_request_max_bytes {
            anyhow::bail!(
                "frame of {size} bytes exceeds socket.request.max.bytes ({})",
                config.socket_request_max_bytes
            );
        }
        // The body's bytes are charged to queued.max.request.bytes as they arrive; while the
        // budget is full nothing more is read from this socket (the client's sends back up:
        // backpressure). A connection waiting with nothing in flight is idle like any other.
        let mut bytes_permit = budgets.request_bytes.empty_permit();
        let body = match read_frame_body(reader, size, idle, in_flight, &mut bytes_permit).await {
            Ok(Received::Read(body)) => body,
            Ok(Received::Closed) | Ok(Received::Idle) => {
                tracing::debug!(?peer, "closing a connection idle inside a frame (connections.max.idle.ms)");
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        // A complete request takes a place in queued.max.requests (Kafka counts a request once
        // it is read), so connections that announce frames and send nothing hold no place.
        let Some(place) = acquire_unless_idle(&budgets.requests, 1, idle, in_flight).await else {
            tracing::debug!(?peer, "closing an idle connection waiting for queued.max.requests");
            return Ok(());
        };
        let bytes_permit = Arc::new(bytes_permit);
        in_flight.set(in_flight.get() + 1);
        // The frame's bytes count against queued.max.request.bytes until the last reference to
        // them (a produce's record batches, say) is dropped.
        let read_at = Instant::now();
        let mut frame = frame::decode_frame(crate::runtime::budget::charged_bytes(body, bytes_permit))?;
        frame.peer = peer;
        // The API key as a number, for the metrics' per-API counts (never matched on here).
        let api_key = frame.api_key as i16;
        tracing::trace!(api = ?frame.api_key, version = frame.api_version, client = ?frame.client_id, "request");
        let reply = (context.dispatch)(context, frame).await?;
        // Handled: like Kafka's request queue, queued.max.requests counts requests until a
        // handler has taken them, not while they wait for data or a commit (Kafka's purgatory),
        // so long-polling consumers never stop others from being read.
        drop(place);
        let waiting = matches!(reply, Reply::Later(_)).then(|| context.metrics.wait(api_key));
        let boxed: BoxedReply = match reply {
            Reply::Now(bytes) => Box::pin(async move { Ok(Some(vec![bytes])) }),
            Reply::Later(future) => future,
            Reply::Nothing => Box::pin(async { Ok(None) }),
        };
        replies.send((boxed, Answering { api_key, read_at, waiting })).await?;
    }
}
