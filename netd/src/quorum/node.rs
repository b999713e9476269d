//! The controller role of a node: one member of the metadata quorum ([`cluster::quorum::Quorum`]
//! over its Raft log in `<log.dirs>/__cluster_metadata-0`), served on the CONTROLLER listener.
//!
//! Threads (none of them a shard; decision 0016):
//! - `quorum`: owns the `Quorum`; ticks it, steps peers' messages, answers brokers' requests,
//!   advances it (persist + one sync per Raft `Ready`) and routes what it produced;
//! - `quorum-accept`: accepts connections; each gets a reader thread (frames in) and, if it sends
//!   requests, a writer thread (responses out, through a bounded queue);
//! - `quorum-peer-<id>`: one per other voter, dialling it and writing our Raft messages to it
//!   (a bounded queue; when full, messages are dropped and Raft resends).
//!
//! Every queue is bounded (`crate::limits`). Stops when `shutdown` is set.
//!
//! Must not know: shards, Kafka requests.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::controller::ControllerConfig;
use cluster::quorum::{ControllerRequest, DurableLog, Quorum, QuorumConfig, Reply, RequestError};
use cluster::raft::prelude::Message;
use cluster::raft_log::RaftLog;
use cluster::rpc::{self, RpcRequest, RpcResponse};
use cluster::wire::{Frame, Hello, WireError};
use cluster::{BrokerId, ClusterId};

use crate::catalog::METADATA_TOPIC;
use crate::limits::{
    CONTROLLER_CONNECTIONS_MAX, CONTROLLER_EVENTS_QUEUE_DEPTH, CONTROLLER_HELLO_FRAME_BYTES_MAX,
    CONTROLLER_IO_TIMEOUT_MS, CONTROLLER_PEER_QUEUE_DEPTH, CONTROLLER_RECONNECT_MS_MAX,
    CONTROLLER_REQUESTS_PENDING_PER_CONNECTION_MAX, CONTROLLER_REQUEST_FRAME_BYTES_MAX,
    CONTROLLER_RESPONSE_QUEUE_DEPTH, IMAGE_FETCH_WAIT_MS_MAX, QUORUM_SNAPSHOT_ENTRIES,
};
use crate::quorum::transport::FramedStream;

/// Raft ticks per election timeout: `controller.quorum.election.timeout.ms` / this is the tick.
pub const TICKS_PER_ELECTION_TIMEOUT: u64 = 10;
/// How often the active controller looks for expired broker sessions.
const SESSION_CHECK_MS: u64 = 100;
/// Kafka's `leader.imbalance.check.interval.seconds` default (300 s).
pub const LEADER_IMBALANCE_CHECK_MS: u64 = 300_000;
/// Set once a Kafka client on the CONTROLLER listener was logged (its tools retry every second).
static KAFKA_CLIENT_WARNED: AtomicBool = AtomicBool::new(false);
/// Tokens of the controller's own requests (their replies go nowhere).
const OWN_REQUEST_TOKEN: u64 = u64::MAX;

/// What the controller role needs to start.
#[derive(Clone, Debug)]
pub struct ControllerNodeConfig {
    pub node: BrokerId,
    /// Every voter (this node included) and where its CONTROLLER listener is.
    pub voters: Vec<(BrokerId, String, u16)>,
    pub data_dir: PathBuf,
    pub election_timeout_ms: u64,
    pub controller: ControllerConfig,
    /// Proposed as the cluster's id if this node is the first active controller.
    pub new_cluster_id: ClusterId,
    /// `auto.leader.rebalance.enable`: the active controller gives leadership back to preferred
    /// replicas every [`LEADER_IMBALANCE_CHECK_MS`].
    pub auto_leader_rebalance: bool,
    /// Set while this node leads the quorum (the active controller), for the metrics endpoint.
    pub active: Arc<AtomicBool>,
}

/// What reaches the `quorum` thread.
enum Event {
    Raft(Message),
    Request { connection: u64, correlation_id: u64, body: Bytes },
    Connected { connection: u64, responses: SyncSender<Frame> },
    Closed { connection: u64 },
}

/// Starts the controller role on `listener`. The returned thread ends when `shutdown` is set
/// (or with the error that stopped the quorum: a storage failure).
pub fn spawn(
    config: ControllerNodeConfig,
    listener: TcpListener,
    shutdown: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
    let dir = config.data_dir.join(format!("{METADATA_TOPIC}-0"));
    let fs = Box::new(engine::io::os::SyscallFs::new());
    let log = RaftLog::open(fs, &dir)?;
    let voters: Vec<BrokerId> = config.voters.iter().map(|(id, _, _)| *id).collect();
    let tick_ms = (config.election_timeout_ms / TICKS_PER_ELECTION_TIMEOUT).max(1);
    let quorum_config = QuorumConfig {
        node: config.node,
        voters,
        election_tick: TICKS_PER_ELECTION_TIMEOUT as usize,
        fixed_election_tick: false,
        heartbeat_tick: 1,
        snapshot_entries: QUORUM_SNAPSHOT_ENTRIES,
        controller: config.controller,
        new_cluster_id: config.new_cluster_id,
    };
    let quorum = Quorum::open(log, quorum_config, &cluster::quorum::raft_logger())?;
    let (events, inbox) = mpsc::sync_channel(CONTROLLER_EVENTS_QUEUE_DEPTH);
    let hello = Hello::new(config.node, quorum.image().cluster_id.unwrap_or(ClusterId([0; 16])));
    let mut peers = BTreeMap::new();
    for (id, host, port) in &config.voters {
        if *id == config.node {
            continue;
        }
        let (sender, queue) = mpsc::sync_channel(CONTROLLER_PEER_QUEUE_DEPTH);
        let (peer, address, hello, shutdown) = (*id, format!("{host}:{port}"), hello, shutdown.clone());
        std::thread::Builder::new()
            .name(format!("quorum-peer-{peer}"))
            .spawn(move || write_to_peer(peer, &address, &hello, &queue, &shutdown))?;
        peers.insert(id.raft_id(), sender);
    }
    listener.set_nonblocking(true)?;
    {
        let (events, hello, shutdown) = (events.clone(), hello, shutdown.clone());
        let voters = config.voters.iter().map(|(id, _, _)| *id).collect();
        std::thread::Builder::new()
            .name("quorum-accept".into())
            .spawn(move || accept(&listener, &events, &hello, voters, &shutdown))?;
    }
    drop(events);
    let handle = std::thread::Builder::new()
        .name("quorum".into())
        .spawn(move || run(quorum, &inbox, &peers, tick_ms, config.auto_leader_rebalance, &config.active, &shutdown))?;
    Ok(handle)
}

/// A long-polling image fetch waiting for a newer image.
struct ImageWait {
    connection: u64,
    correlation_id: u64,
    have_offset: u64,
    deadline: Instant,
}

fn run<S: DurableLog>(
    mut quorum: Quorum<S>,
    inbox: &Receiver<Event>,
    peers: &BTreeMap<u64, SyncSender<Message>>,
    tick_ms: u64,
    auto_leader_rebalance: bool,
    active: &AtomicBool,
    shutdown: &AtomicBool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let now_ms = || start.elapsed().as_millis() as u64;
    let mut next_tick = Instant::now();
    let mut next_session_check = 0;
    let mut next_rebalance = LEADER_IMBALANCE_CHECK_MS;
    let mut connections: BTreeMap<u64, SyncSender<Frame>> = BTreeMap::new();
    let mut tokens: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut next_token = 0u64;
    let mut image_waits: Vec<ImageWait> = Vec::new();
    // Per connection: requests waiting for a commit or an image (bounded, see the limit).
    let mut pending: BTreeMap<u64, usize> = BTreeMap::new();
    let mut leader = None;
    while !shutdown.load(Ordering::Relaxed) {
        let timeout = next_tick.saturating_duration_since(Instant::now());
        let mut event = match inbox.recv_timeout(timeout) {
            Ok(event) => Some(event),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut handled = 0;
        while let Some(current) = event.take() {
            match current {
                Event::Raft(message) => quorum.step(message, now_ms()),
                Event::Connected { connection, responses } => {
                    connections.insert(connection, responses);
                }
                Event::Closed { connection } => {
                    connections.remove(&connection);
                    pending.remove(&connection);
                    image_waits.retain(|wait| wait.connection != connection);
                }
                Event::Request { connection, correlation_id, body } => match rpc::decode_request(&body) {
                    // Dropping the connection's response queue closes it (its writer shuts it).
                    Err(error) => {
                        tracing::warn!(connection, %error, "undecodable controller request; closing");
                        connections.remove(&connection);
                    }
                    Ok(RpcRequest::Controller(_) | RpcRequest::FetchImage { .. })
                        if pending.get(&connection).copied().unwrap_or(0)
                            >= CONTROLLER_REQUESTS_PENDING_PER_CONNECTION_MAX =>
                    {
                        tracing::warn!(
                            connection,
                            limit = CONTROLLER_REQUESTS_PENDING_PER_CONNECTION_MAX,
                            "too many controller requests waiting on one connection; closing"
                        );
                        connections.remove(&connection);
                    }
                    Ok(RpcRequest::Controller(request)) => {
                        *pending.entry(connection).or_default() += 1;
                        next_token += 1;
                        tokens.insert(next_token, (connection, correlation_id));
                        quorum.request(next_token, request, now_ms());
                    }
                    Ok(RpcRequest::FetchImage { .. }) if !quorum.is_active() => {
                        // Only the active controller's image is sure to hold every committed
                        // record: a lagging voter's would make a broker drop topics it has.
                        let response =
                            RpcResponse::Controller(Err(RequestError::NotController { leader: quorum.leader() }));
                        respond(&mut connections, connection, correlation_id, &response);
                    }
                    Ok(RpcRequest::FetchImage { have_offset, max_wait_ms }) => {
                        *pending.entry(connection).or_default() += 1;
                        let wait = u64::from(max_wait_ms).min(IMAGE_FETCH_WAIT_MS_MAX);
                        image_waits.push(ImageWait {
                            connection,
                            correlation_id,
                            have_offset,
                            deadline: Instant::now() + Duration::from_millis(wait),
                        });
                    }
                    Ok(RpcRequest::DescribeQuorum) => {
                        let response = RpcResponse::Quorum(quorum.status(now_ms()));
                        respond(&mut connections, connection, correlation_id, &response);
                    }
                },
            }
            handled += 1;
            if handled < CONTROLLER_EVENTS_QUEUE_DEPTH {
                event = inbox.try_recv().ok();
            }
        }
        if Instant::now() >= next_tick {
            quorum.tick(now_ms());
            next_tick += Duration::from_millis(tick_ms);
            if next_tick < Instant::now() {
                next_tick = Instant::now() + Duration::from_millis(tick_ms);
            }
        }
        if now_ms() >= next_session_check {
            quorum.expire_sessions(now_ms())?;
            next_session_check = now_ms() + SESSION_CHECK_MS;
        }
        if auto_leader_rebalance && now_ms() >= next_rebalance {
            if quorum.is_active() {
                quorum.request(OWN_REQUEST_TOKEN, ControllerRequest::ElectPreferred(None), now_ms());
            }
            next_rebalance = now_ms() + LEADER_IMBALANCE_CHECK_MS;
        }
        let output = quorum.advance(now_ms())?;
        for message in output.messages {
            let to = message.to;
            if let Some(peer) = peers.get(&to) {
                if let Err(TrySendError::Full(_)) = peer.try_send(message) {
                    if let Some(node) = BrokerId::from_raft_id(to) {
                        quorum.report_unreachable(node);
                    }
                }
            }
        }
        for reply in output.replies {
            answer(&mut connections, &mut tokens, &mut pending, reply);
        }
        if !quorum.is_active() {
            for wait in image_waits.drain(..) {
                release(&mut pending, wait.connection);
                let response = RpcResponse::Controller(Err(RequestError::NotController { leader: quorum.leader() }));
                respond(&mut connections, wait.connection, wait.correlation_id, &response);
            }
        }
        let image = quorum.image();
        let now = Instant::now();
        // Every broker waiting for this image gets the same bytes: encoded once.
        let mut newer_image: Option<Bytes> = None;
        image_waits.retain(|wait| {
            let newer = image.offset > wait.have_offset;
            if !newer && now < wait.deadline {
                return true;
            }
            let body = match newer {
                true => newer_image
                    .get_or_insert_with(|| {
                        let response = RpcResponse::Image(Some((image.offset, image.to_records())));
                        Bytes::from(rpc::encode_response(&response))
                    })
                    .clone(),
                false => Bytes::from(rpc::encode_response(&RpcResponse::Image(None))),
            };
            release(&mut pending, wait.connection);
            send_response(&mut connections, wait.connection, wait.correlation_id, body);
            false
        });
        if quorum.leader() != leader {
            leader = quorum.leader();
            active.store(leader == Some(quorum.node()), Ordering::Relaxed);
            tracing::info!(node = %quorum.node(), leader = ?leader, term = quorum.term(), "quorum leader");
        }
    }
    active.store(false, Ordering::Relaxed);
    tracing::info!(node = %quorum.node(), "controller stopped");
    Ok(())
}

fn answer(
    connections: &mut BTreeMap<u64, SyncSender<Frame>>,
    tokens: &mut BTreeMap<u64, (u64, u64)>,
    pending: &mut BTreeMap<u64, usize>,
    reply: Reply,
) {
    let (token, outcome) = reply;
    if let Some((connection, correlation_id)) = tokens.remove(&token) {
        release(pending, connection);
        respond(connections, connection, correlation_id, &RpcResponse::Controller(outcome));
    }
}

/// One of `connection`'s pending requests was answered.
fn release(pending: &mut BTreeMap<u64, usize>, connection: u64) {
    if let Some(count) = pending.get_mut(&connection) {
        *count = count.saturating_sub(1);
    }
}

/// Queues a response; a connection whose queue is full is a broker not reading: dropped.
fn respond(
    connections: &mut BTreeMap<u64, SyncSender<Frame>>,
    connection: u64,
    correlation_id: u64,
    response: &RpcResponse,
) {
    send_response(connections, connection, correlation_id, Bytes::from(rpc::encode_response(response)));
}

/// Queues an encoded response (see [`respond`]).
fn send_response(
    connections: &mut BTreeMap<u64, SyncSender<Frame>>,
    connection: u64,
    correlation_id: u64,
    body: Bytes,
) {
    let Some(sender) = connections.get(&connection) else { return };
    let frame = Frame::Response { correlation_id, body };
    if sender.try_send(frame).is_err() {
        tracing::warn!(connection, "controller response queue full or closed; dropping the connection");
        connections.remove(&connection);
    }
}

/// Dials `peer` (again after any failure, backing off) and writes our Raft messages to it.
fn write_to_peer(peer: BrokerId, address: &str, hello: &Hello, queue: &Receiver<Message>, shutdown: &AtomicBool) {
    let mut backoff_ms = 10;
    while !shutdown.load(Ordering::Relaxed) {
        let connected = TcpStream::connect(address)
            .and_then(FramedStream::new)
            .and_then(|mut stream| stream.dial_hello(hello, Some(peer)).map(|_| stream));
        let mut stream = match connected {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%peer, address, %error, "controller peer unreachable");
                // Drop what queued meanwhile: Raft resends what still matters.
                while queue.try_recv().is_ok() {}
                std::thread::sleep(Duration::from_millis(backoff_ms));
                backoff_ms = (backoff_ms * 2).min(CONTROLLER_RECONNECT_MS_MAX);
                continue;
            }
        };
        backoff_ms = 10;
        loop {
            match queue.recv_timeout(Duration::from_millis(100)) {
                Ok(message) => {
                    if let Err(error) = stream.write(&Frame::Raft(message)) {
                        tracing::debug!(%peer, %error, "controller peer write failed; reconnecting");
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) if shutdown.load(Ordering::Relaxed) => return,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

/// Accepts connections until shutdown, at most [`CONTROLLER_CONNECTIONS_MAX`] open at once;
/// each gets a reader thread.
fn accept(
    listener: &TcpListener,
    events: &SyncSender<Event>,
    hello: &Hello,
    voters: Vec<BrokerId>,
    shutdown: &AtomicBool,
) {
    let mut next_connection = 0u64;
    let open = Arc::new(AtomicUsize::new(0));
    let mut refused = 0u64;
    while !shutdown.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, address)) => {
                if open.load(Ordering::Acquire) >= CONTROLLER_CONNECTIONS_MAX {
                    // Dropping the stream closes it; one warning per burst, not per connection.
                    if refused % 1000 == 0 {
                        tracing::warn!(
                            %address,
                            refused_so_far = refused + 1,
                            limit = CONTROLLER_CONNECTIONS_MAX,
                            "controller listener full: closing new connections"
                        );
                    }
                    refused += 1;
                    continue;
                }
                next_connection += 1;
                open.fetch_add(1, Ordering::AcqRel);
                let (connection, events, hello, voters, still_open) =
                    (next_connection, events.clone(), *hello, voters.clone(), open.clone());
                let spawned = std::thread::Builder::new().name(format!("quorum-conn-{connection}")).spawn(move || {
                    if let Err(error) = serve(stream, connection, &events, &hello, &voters) {
                        tracing::debug!(%address, %error, "controller connection closed");
                    }
                    let _ = events.send(Event::Closed { connection });
                    still_open.fetch_sub(1, Ordering::AcqRel);
                });
                if let Err(error) = spawned {
                    open.fetch_sub(1, Ordering::AcqRel);
                    tracing::warn!(%error, "no thread for a controller connection");
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(crate::limits::CONTROLLER_ACCEPT_POLL_MS));
            }
            Err(error) => {
                tracing::warn!(%error, "controller listener accept failed");
                std::thread::sleep(Duration::from_millis(CONTROLLER_RECONNECT_MS_MAX));
            }
        }
    }
}

/// One accepted connection: the Hello exchange, then frames in until it closes. Raft messages
/// are taken only from voters (by their Hello); requests from anyone that said Hello. A stranger
/// gets [`CONTROLLER_IO_TIMEOUT_MS`] to say a whole Hello of at most
/// [`CONTROLLER_HELLO_FRAME_BYTES_MAX`]; a broker's frames are bounded by
/// [`CONTROLLER_REQUEST_FRAME_BYTES_MAX`].
fn serve(
    stream: TcpStream,
    connection: u64,
    events: &SyncSender<Event>,
    hello: &Hello,
    voters: &[BrokerId],
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let mut framed = FramedStream::new(stream)?;
    framed.set_frame_bytes_max(CONTROLLER_HELLO_FRAME_BYTES_MAX);
    let first = framed.read_within_ms(CONTROLLER_IO_TIMEOUT_MS);
    if first.is_err() && framed.looks_like_kafka_request() && !KAFKA_CLIENT_WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "a Kafka client reached the CONTROLLER listener: Skua's controllers speak their own protocol; point \
             Kafka tools at a broker (--bootstrap-server), --bootstrap-controller is not supported (logged once)"
        );
    }
    let remote = match first? {
        Frame::Hello(remote) => remote,
        _ => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "the first frame must be a Hello")),
    };
    let raft_allowed = match hello.accept(&remote, None) {
        Ok(_) => voters.contains(&remote.node_id),
        // Our own process's broker (combined mode) shares our id; it sends requests, not Raft.
        Err(WireError::DuplicateNodeId { .. }) => false,
        Err(error) => {
            tracing::warn!(remote = %remote.node_id, %error, "refusing a controller connection");
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, error));
        }
    };
    framed.write(&Frame::Hello(*hello))?;
    framed.set_frame_bytes_max(if raft_allowed {
        cluster::wire::FRAME_BYTES_MAX_DEFAULT
    } else {
        CONTROLLER_REQUEST_FRAME_BYTES_MAX
    });
    let (responses, outgoing) = mpsc::sync_channel(CONTROLLER_RESPONSE_QUEUE_DEPTH);
    let mut writer = FramedStream::new(framed.stream.try_clone()?)?;
    std::thread::Builder::new().name(format!("quorum-out-{connection}")).spawn(move || {
        while let Ok(frame) = outgoing.recv() {
            if writer.write(&frame).is_err() {
                break;
            }
        }
        // A failed write, or the quorum thread dropped the queue (a connection it closes): the
        // reader then sees the socket shut and ends too.
        let _ = writer.stream.shutdown(std::net::Shutdown::Both);
    })?;
    events
        .send(Event::Connected { connection, responses })
        .map_err(|_| std::io::Error::other("the controller stopped"))?;
    loop {
        match framed.read()? {
            Frame::Raft(message) if raft_allowed => {
                // Raft tolerates loss: a full queue drops the message rather than block the peer.
                let _ = events.try_send(Event::Raft(message));
            }
            Frame::Request { correlation_id, body } => events
                .send(Event::Request { connection, correlation_id, body })
                .map_err(|_| std::io::Error::other("the controller stopped"))?,
            other => {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("unexpected frame {other:?}")))
            }
        }
    }
}
