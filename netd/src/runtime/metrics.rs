//! The metrics endpoint (issue 16): a small HTTP/1.1 server on its own thread that answers
//! `GET /metrics` with every shard's counts in Prometheus' text format.
//!
//! Owns: the metrics thread, the scrape, and the HTTP exchange (one request per connection, then
//! close; no keep-alive, no chunking: scrapers need neither). A scrape sends one job to every shard
//! through its bounded inbox; each shard copies its counters and partition states on its own
//! thread ([`ShardState::metrics_snapshot`](crate::runtime::state::ShardState::metrics_snapshot)),
//! so shards never lock for metrics and pay only when scraped. A shard that does not answer
//! within `METRICS_SHARD_WAIT_MS` is left out of that scrape.
//!
//! Must not know: what the metrics are (`crate::metrics` encodes them), any Kafka API.
//! Runs on: its own thread, `metrics-http`; one connection at a time.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_channel::mpsc;

use crate::limits::{METRICS_IO_TIMEOUT_MS, METRICS_REQUEST_HEAD_BYTES_MAX, METRICS_SHARD_WAIT_MS};
use crate::metrics::{self, BrokerSnapshot, ShardSnapshot};
use crate::runtime::context::{Job, ShardContext};

/// What the metrics thread needs: a way to every shard, and what the broker says of itself.
pub struct Endpoint {
    /// Every shard's inbox, by index.
    pub peers: Vec<mpsc::Sender<Job>>,
    pub node_id: i32,
    /// On a node with the controller role: set while it is the active controller.
    pub active_controller: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("shards", &self.peers.len()).field("node_id", &self.node_id).finish()
    }
}

/// Starts the metrics thread serving `listener` until the process ends.
pub fn start(listener: TcpListener, endpoint: Endpoint) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("metrics-http".into()).spawn(move || serve(listener, endpoint))
}

fn serve(listener: TcpListener, mut endpoint: Endpoint) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(error) = exchange(stream, &mut endpoint) {
                    tracing::debug!(%error, "metrics request failed");
                }
            }
            Err(error) => {
                tracing::warn!(%error, "metrics endpoint: accept failed");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Every shard's snapshot, in shard order; a shard that did not answer in time (or stopped) is
/// a default snapshot with `answered` false.
pub fn scrape(peers: &mut [mpsc::Sender<Job>]) -> Vec<ShardSnapshot> {
    let mut replies = Vec::with_capacity(peers.len());
    for peer in peers.iter_mut() {
        let (reply, snapshot) = std::sync::mpsc::sync_channel::<ShardSnapshot>(1);
        let job: Job = Box::new(move |context: &std::rc::Rc<ShardContext>| {
            let mut snapshot = context.state.borrow().metrics_snapshot();
            let sessions = context.fetch_sessions.borrow();
            snapshot.fetch_sessions = sessions.len() as u64;
            snapshot.fetch_session_partitions = sessions.partitions_held() as u64;
            let _ = reply.send(snapshot);
        });
        // A full inbox is a busy shard: it is left out rather than waited for.
        replies.push(peer.try_send(job).ok().map(|()| snapshot));
    }
    let deadline = Instant::now() + Duration::from_millis(METRICS_SHARD_WAIT_MS);
    replies
        .into_iter()
        .map(|reply| {
            reply
                .and_then(|snapshot| snapshot.recv_timeout(deadline.saturating_duration_since(Instant::now())).ok())
                .unwrap_or_default()
        })
        .collect()
}

/// Reads one request and answers it.
fn exchange(mut stream: TcpStream, endpoint: &mut Endpoint) -> std::io::Result<()> {
    let timeout = Some(Duration::from_millis(METRICS_IO_TIMEOUT_MS));
    stream.set_read_timeout(timeout)?;
    stream.set_write_timeout(timeout)?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        if head.len() >= METRICS_REQUEST_HEAD_BYTES_MAX {
            return respond(&mut stream, "431 Request Header Fields Too Large", "text/plain", b"request too large\n");
        }
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..read]);
    }
    let request_line = head.split(|&byte| byte == b'\r').next().unwrap_or_default();
    let mut words = request_line.split(|&byte| byte == b' ');
    let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let path = target.split(|&byte| byte == b'?').next().unwrap_or_default();
    match (method, path) {
        (b"GET", b"/metrics") => {
            let shards = scrape(&mut endpoint.peers);
            let broker = BrokerSnapshot {
                node_id: endpoint.node_id,
                active_controller: endpoint.active_controller.as_ref().map(|active| active.load(Ordering::Relaxed)),
            };
            let text = metrics::encode(&shards, &broker);
            respond(&mut stream, "200 OK", metrics::CONTENT_TYPE, text.as_bytes())
        }
        (b"GET", _) => respond(&mut stream, "404 Not Found", "text/plain", b"the metrics are at /metrics\n"),
        _ => respond(&mut stream, "405 Method Not Allowed", "text/plain", b"only GET\n"),
    }
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// Binds the metrics listener. A port already taken is not fatal: the broker serves on without
/// metrics (many brokers on one machine, as tests run them, all default to the same port).
pub fn bind(address: std::net::SocketAddr) -> Option<TcpListener> {
    match TcpListener::bind(address) {
        Ok(listener) => Some(listener),
        Err(error) => {
            tracing::warn!(%address, %error, "cannot listen for metrics (skua.metrics.listener); serving without them");
            None
        }
    }
}
