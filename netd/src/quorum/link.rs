//! The broker role's link to the metadata quorum: it registers this broker with the active
//! controller, heartbeats, carries out a controlled shutdown, forwards controller requests
//! (topic changes, producer-id blocks, elections, DescribeQuorum) and keeps the newest metadata
//! image, which shards read lock-free ([`QuorumLink::image`]).
//!
//! Two threads: `quorum-link` (registration, heartbeats, forwarded requests: one RPC at a time on
//! one connection to the active controller, following its "not the controller, try N" answers)
//! and `quorum-image` (a long-polling image fetch from the active controller). Forwarded requests wait in a
//! bounded queue.
//!
//! The lease: a broker that has not had a heartbeat answered for `broker.session.timeout.ms`
//! has been fenced by the controller (or will be), whatever its image says; it must not act as
//! leader until a heartbeat gets through again ([`QuorumLink::lease_valid`]). A SIGSTOPped
//! broker thus learns it was fenced the moment it runs again, before its image catches up; and it
//! is unfenced only once its image shows its own fencing (with the leaderships it lost), and
//! leads again only once its shards have applied that image.
//!
//! Must not know: shards, Kafka requests.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cluster::controller::{ControllerError, Heartbeat, Registration};
use cluster::image::MetadataImage;
use cluster::quorum::{ControllerReply, ControllerRequest, RequestError};
use cluster::records::Endpoint;
use cluster::rpc::{self, RpcRequest, RpcResponse};
use cluster::wire::{Frame, Hello};
use cluster::{BrokerId, ClusterId};
use futures_channel::oneshot;

use crate::limits::CONTROLLER_RECONNECT_MS_MAX;
use crate::published::Published;
use crate::quorum::transport::FramedStream;

/// Forwarded requests waiting for the link thread.
pub const FORWARD_QUEUE_DEPTH: usize = 256;
/// How long an image fetch asks to be held.
const IMAGE_FETCH_WAIT_MS: u32 = 1_000;
/// How much longer than that an image fetch may take before the member is taken for gone.
const IMAGE_FETCH_SLACK_MS: u64 = 500;
/// How soon a broker that is not registered or still fenced tries again.
const FENCED_HEARTBEAT_MS: u64 = 100;
/// How long to wait before asking again while the quorum has no leader.
const ELECTION_POLL_MS: u64 = 50;
/// How long a controller call may take before the member is taken for gone (answers come once
/// the records are committed: milliseconds; a stopped member never answers). Short, so that a
/// heartbeat reaches a new controller well within the session timeout.
const CONTROLLER_CALL_TIMEOUT_MS: u64 = 1_500;
/// Attempts at a forwarded request, following "not the controller" answers.
const FORWARD_ATTEMPTS_MAX: usize = 5;

/// What the broker link needs.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    pub node: BrokerId,
    /// Where the quorum's members listen (CONTROLLER listeners).
    pub voters: Vec<(BrokerId, String, u16)>,
    /// This broker's client listeners, as other nodes and clients should reach them.
    pub endpoints: Vec<Endpoint>,
    pub rack: Option<String>,
    pub heartbeat_interval_ms: u64,
    pub session_timeout_ms: u64,
    /// The cluster this node's data directory belongs to (`meta.properties`), if it joined one.
    pub stored_cluster_id: Option<ClusterId>,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the quorum link is stopped")]
    Stopped,
    #[error("too many requests waiting for the controller")]
    Busy,
    #[error("no active controller answered")]
    Unavailable,
}

/// A request handed to the link thread.
struct Forward {
    request: RpcRequest,
    reply: oneshot::Sender<Result<RpcResponse, LinkError>>,
}

/// The link, shared by every shard (cheap to clone through the `Arc` [`start`] returns).
#[derive(Debug)]
pub struct QuorumLink {
    config: LinkConfig,
    /// The newest image, swapped whole.
    image: Published<MetadataImage>,
    forwards: SyncSender<Forward>,
    /// This registration's broker epoch; -1 until registered.
    epoch: AtomicI64,
    /// Milliseconds since `start` until which this broker may act as a leader.
    lease_until_ms: AtomicU64,
    /// The image offset the shards must have applied before the lease counts: set when a lease
    /// begins after a lapse (first registration, or unfenced again), to the image that heartbeat
    /// was sent with, which holds the leaderships this broker lost while fenced.
    lease_floor_offset: AtomicU64,
    /// The newest image offset every shard has applied (`set_applied_offset`).
    applied_offset: AtomicU64,
    started: Instant,
    /// The quorum leader last heard of (raft id), 0 if none.
    leader_hint: AtomicU64,
    stopping: AtomicBool,
    shutdown_done: AtomicBool,
    /// Set when the quorum refused this broker for good (another cluster's data).
    fatal: Mutex<Option<String>>,
}

impl QuorumLink {
    /// The newest image this broker has.
    /// (Takes a mutex: shards read it through `ShardContext::image`'s cached copy.)
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.load()
    }

    /// Grows every time a newer image is published.
    pub fn image_generation(&self) -> u64 {
        self.image.generation()
    }

    pub fn published_image(&self) -> &Published<MetadataImage> {
        &self.image
    }

    pub fn node(&self) -> BrokerId {
        self.config.node
    }

    /// The broker epoch of this broker's registration, once registered.
    pub fn broker_epoch(&self) -> Option<u64> {
        u64::try_from(self.epoch.load(Ordering::Acquire)).ok()
    }

    /// A heartbeat was answered within the session timeout, and the shards have applied the
    /// image the lease began with: this broker may still lead.
    pub fn lease_valid(&self) -> bool {
        self.lease_time_valid()
            && self.applied_offset.load(Ordering::Acquire) >= self.lease_floor_offset.load(Ordering::Acquire)
    }

    fn lease_time_valid(&self) -> bool {
        (self.started.elapsed().as_millis() as u64) < self.lease_until_ms.load(Ordering::Acquire)
    }

    /// Every shard has applied the image at `offset` (roles and all).
    pub fn set_applied_offset(&self, offset: u64) {
        self.applied_offset.fetch_max(offset, Ordering::AcqRel);
    }

    /// Why the quorum refused this broker for good, if it did (the process should stop).
    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Sends `request` to the active controller (or, for an image or quorum status, the quorum)
    /// and waits for its answer.
    pub async fn ask(&self, request: RpcRequest) -> Result<RpcResponse, LinkError> {
        let (reply, answer) = oneshot::channel();
        self.forwards.try_send(Forward { request, reply }).map_err(|error| match error {
            mpsc::TrySendError::Full(_) => LinkError::Busy,
            mpsc::TrySendError::Disconnected(_) => LinkError::Stopped,
        })?;
        answer.await.unwrap_or(Err(LinkError::Stopped))
    }

    /// Starts a controlled shutdown: heartbeats ask the controller to move leadership away.
    /// Returns once the controller agreed (leadership moved) or `timeout_ms` passed.
    pub fn shut_down(&self, timeout_ms: u64) -> bool {
        self.stopping.store(true, Ordering::Release);
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        while Instant::now() < deadline {
            if self.shutdown_done.load(Ordering::Acquire) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn publish(&self, image: MetadataImage) {
        self.image.replace(|current| (image.offset > current.offset || current.offset == 0).then(|| Arc::new(image)));
    }

    fn voters_from_hint(&self) -> Vec<(BrokerId, String, u16)> {
        let hint = BrokerId::from_raft_id(self.leader_hint.load(Ordering::Acquire));
        let mut voters = self.config.voters.clone();
        if let Some(position) = voters.iter().position(|(id, _, _)| Some(*id) == hint) {
            voters.swap(0, position);
        }
        voters
    }

    /// `asked` answered "not the controller; the leader is `leader`": ask that one next, or,
    /// while an election is going on (no leader, or only `asked` itself), wait a moment.
    fn follow(&self, asked: BrokerId, leader: Option<BrokerId>) {
        let hint = leader.filter(|leader| *leader != asked);
        self.leader_hint.store(hint.map_or(0, BrokerId::raft_id), Ordering::Release);
        if hint.is_none() {
            std::thread::sleep(Duration::from_millis(ELECTION_POLL_MS));
        }
    }

    /// `member` did not answer (gone, or stopped while its kernel still accepts connections): it
    /// is no longer taken for the leader, so the next attempt asks another member.
    fn forget(&self, member: BrokerId) {
        let failed = member.raft_id();
        let _ = self.leader_hint.compare_exchange(failed, 0, Ordering::AcqRel, Ordering::Acquire);
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// Starts the link's threads; the returned link is registered soon after (see
/// [`QuorumLink::broker_epoch`]). `incarnation` must differ at every process start.
pub fn start(config: LinkConfig, incarnation: u64) -> std::io::Result<Arc<QuorumLink>> {
    let (forwards, queue) = mpsc::sync_channel(FORWARD_QUEUE_DEPTH);
    let link = Arc::new(QuorumLink {
        config,
        image: Published::default(),
        forwards,
        epoch: AtomicI64::new(-1),
        lease_until_ms: AtomicU64::new(0),
        lease_floor_offset: AtomicU64::new(0),
        applied_offset: AtomicU64::new(0),
        started: Instant::now(),
        leader_hint: AtomicU64::new(0),
        stopping: AtomicBool::new(false),
        shutdown_done: AtomicBool::new(false),
        fatal: Mutex::new(None),
    });
    {
        let link = link.clone();
        std::thread::Builder::new().name("quorum-link".into()).spawn(move || control(&link, incarnation, &queue))?;
    }
    {
        let link = link.clone();
        std::thread::Builder::new().name("quorum-image".into()).spawn(move || fetch_images(&link))?;
    }
    Ok(link)
}

/// One RPC connection to some quorum member.
struct Connection {
    stream: FramedStream,
    node: BrokerId,
    next_correlation: u64,
}

impl Connection {
    fn open(link: &QuorumLink, candidates: &[(BrokerId, String, u16)]) -> Option<Connection> {
        let cluster_id = link.image().cluster_id.unwrap_or(ClusterId([0; 16]));
        let hello = Hello::new(link.config.node, cluster_id);
        for (node, host, port) in candidates {
            let opened = TcpStream::connect((host.as_str(), *port))
                .and_then(FramedStream::new)
                .and_then(|mut stream| stream.dial_hello(&hello, None).map(|_| stream));
            match opened {
                Ok(stream) => return Some(Connection { stream, node: *node, next_correlation: 0 }),
                Err(error) => tracing::debug!(%node, %error, "quorum member unreachable"),
            }
        }
        None
    }

    fn call(&mut self, request: &RpcRequest, timeout_ms: u64) -> std::io::Result<RpcResponse> {
        self.next_correlation += 1;
        let correlation_id = self.next_correlation;
        self.stream.write(&Frame::Request { correlation_id, body: Bytes::from(rpc::encode_request(request)) })?;
        self.stream.set_read_timeout_ms(Some(timeout_ms))?;
        loop {
            match self.stream.read()? {
                Frame::Response { correlation_id: answered, body } if answered == correlation_id => {
                    return rpc::decode_response(&body)
                        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error));
                }
                // An answer to an earlier call that timed out.
                Frame::Response { .. } => {}
                other => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("unexpected frame {other:?}"),
                    ))
                }
            }
        }
    }
}

/// Calls the active controller: follows "not the controller" answers and reconnects on errors,
/// up to [`FORWARD_ATTEMPTS_MAX`] times.
fn call_controller(
    link: &QuorumLink,
    connection: &mut Option<Connection>,
    request: &RpcRequest,
) -> Result<RpcResponse, LinkError> {
    for attempt in 0..FORWARD_ATTEMPTS_MAX {
        if connection.is_none() {
            let mut candidates = link.voters_from_hint();
            if link.leader_hint.load(Ordering::Acquire) == 0 {
                // No leader known: start elsewhere each time, so one stopped member (whose
                // kernel still accepts connections) does not hold every attempt.
                let shift = attempt % candidates.len().max(1);
                candidates.rotate_left(shift);
            }
            *connection = Connection::open(link, &candidates);
        }
        let Some(open) = connection.as_mut() else {
            std::thread::sleep(Duration::from_millis(CONTROLLER_RECONNECT_MS_MAX / 4));
            continue;
        };
        match open.call(request, CONTROLLER_CALL_TIMEOUT_MS) {
            Ok(RpcResponse::Controller(Err(RequestError::NotController { leader })))
            | Ok(RpcResponse::Quorum(Err(RequestError::NotController { leader }))) => {
                link.follow(open.node, leader);
                *connection = None;
            }
            Ok(response) => return Ok(response),
            Err(error) => {
                // Gone or stopped: forget it as the leader, so the next attempt asks another.
                tracing::debug!(node = %open.node, %error, "controller call failed; trying another member");
                link.forget(open.node);
                *connection = None;
            }
        }
    }
    Err(LinkError::Unavailable)
}

/// The `quorum-link` thread: register, heartbeat, forward.
fn control(link: &QuorumLink, incarnation: u64, queue: &Receiver<Forward>) {
    let mut connection: Option<Connection> = None;
    let mut next_heartbeat = Instant::now();
    loop {
        if link.broker_epoch().is_none() {
            register(link, &mut connection, incarnation);
            if link.fatal().is_some() {
                return;
            }
            // Registered: heartbeat at once, to be unfenced as soon as the image shows us.
            next_heartbeat = Instant::now();
        }
        if let Some(epoch) = link.broker_epoch().filter(|_| Instant::now() >= next_heartbeat) {
            let fenced = heartbeat(link, &mut connection, epoch);
            // Still fenced (waiting for our image to show our registration): ask again soon.
            let interval_ms = if fenced { FENCED_HEARTBEAT_MS } else { link.config.heartbeat_interval_ms };
            next_heartbeat = Instant::now() + Duration::from_millis(interval_ms.min(link.config.heartbeat_interval_ms));
            if link.shutdown_done.load(Ordering::Acquire) {
                // Leadership moved away; nothing more to do but answer what waits.
                while let Ok(forward) = queue.try_recv() {
                    let _ = forward.reply.send(Err(LinkError::Stopped));
                }
                return;
            }
        }
        let wait = match link.broker_epoch() {
            None => Duration::from_millis(FENCED_HEARTBEAT_MS),
            Some(_) => next_heartbeat.saturating_duration_since(Instant::now()),
        };
        match queue.recv_timeout(wait) {
            Ok(forward) => {
                let answer = call_controller(link, &mut connection, &forward.request);
                let _ = forward.reply.send(answer);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Records a fatal refusal: the process should stop.
fn fail(link: &QuorumLink, reason: String) {
    tracing::error!("{reason}");
    *link.fatal.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(reason);
}

fn register(link: &QuorumLink, connection: &mut Option<Connection>, incarnation: u64) {
    let request = RpcRequest::Controller(ControllerRequest::Register(Registration {
        broker: link.config.node,
        incarnation,
        cluster_id: link.config.stored_cluster_id.or(link.image().cluster_id),
        endpoints: link.config.endpoints.clone(),
        rack: link.config.rack.clone(),
    }));
    match call_controller(link, connection, &request) {
        Ok(RpcResponse::Controller(Ok(ControllerReply::Registered { epoch }))) => {
            tracing::info!(node = %link.config.node, epoch, "registered with the controller");
            link.epoch.store(epoch as i64, Ordering::Release);
        }
        Ok(RpcResponse::Controller(Err(RequestError::Refused(
            error @ ControllerError::InconsistentClusterId { .. },
        )))) => {
            fail(
                link,
                format!("the quorum refused this node: its data directory belongs to another cluster ({error})"),
            );
        }
        Ok(RpcResponse::Controller(Err(RequestError::Refused(ControllerError::DuplicateBrokerRegistration {
            broker,
            heartbeating,
        })))) => {
            // A restart within the session timeout waits until the old session runs out; a
            // second live process with this node.id is seen heartbeating meanwhile: stop.
            if heartbeating {
                fail(
                    link,
                    format!("another live process is registered as node.id {broker}: two nodes share one node.id"),
                );
            } else {
                std::thread::sleep(Duration::from_millis(FENCED_HEARTBEAT_MS));
            }
        }
        Ok(other) => {
            tracing::warn!(response = ?other, "registration refused; retrying");
            std::thread::sleep(Duration::from_millis(link.config.heartbeat_interval_ms));
        }
        Err(error) => tracing::debug!(%error, "registration: no controller yet"),
    }
}

/// One heartbeat; true while the controller still has this broker fenced.
fn heartbeat(link: &QuorumLink, connection: &mut Option<Connection>, epoch: u64) -> bool {
    let image = link.image();
    // Caught up: the image holds this registration as the controller has it, fenced (it
    // registers fenced, and a fence is recorded before the controller waits for this). A stale
    // image that still shows this broker unfenced, and leading, is not: a broker SIGSTOPped past
    // its session must not be unfenced, and lead again, on the strength of what it knew before.
    let caught_up = image
        .brokers
        .get(&link.config.node)
        .is_some_and(|registration| registration.epoch == epoch && registration.fenced);
    let sent_ms = link.now_ms();
    let request = RpcRequest::Controller(ControllerRequest::Heartbeat(Heartbeat {
        broker: link.config.node,
        epoch,
        caught_up,
        want_shutdown: link.stopping.load(Ordering::Acquire),
    }));
    match call_controller(link, connection, &request) {
        Ok(RpcResponse::Controller(Ok(ControllerReply::Heartbeat(reply)))) => {
            if !reply.fenced {
                if !link.lease_time_valid() {
                    link.lease_floor_offset.store(image.offset, Ordering::Release);
                }
                link.lease_until_ms.store(sent_ms + link.config.session_timeout_ms, Ordering::Release);
            }
            if reply.shutdown_ok {
                link.shutdown_done.store(true, Ordering::Release);
            }
            reply.fenced
        }
        Ok(RpcResponse::Controller(Err(RequestError::Refused(ControllerError::StaleBrokerEpoch { .. })))) => {
            tracing::warn!(node = %link.config.node, "the controller no longer knows this registration; registering again");
            link.epoch.store(-1, Ordering::Release);
            link.lease_until_ms.store(0, Ordering::Release);
            true
        }
        Ok(other) => {
            tracing::warn!(response = ?other, "unexpected heartbeat answer");
            false
        }
        Err(error) => {
            tracing::debug!(%error, "heartbeat not answered");
            false
        }
    }
}

/// The `quorum-image` thread: long-polls any quorum member for a newer image.
fn fetch_images(link: &QuorumLink) {
    let mut connection: Option<Connection> = None;
    let mut rotation = 0usize;
    while !link.shutdown_done.load(Ordering::Acquire) {
        if connection.is_none() {
            let mut candidates = link.voters_from_hint();
            let shift = rotation % candidates.len().max(1);
            candidates.rotate_left(shift);
            rotation += 1;
            connection = Connection::open(link, &candidates);
            if connection.is_none() {
                std::thread::sleep(Duration::from_millis(CONTROLLER_RECONNECT_MS_MAX / 4));
                continue;
            }
        }
        let Some(open) = connection.as_mut() else { continue };
        let have_offset = link.image().offset;
        let request = RpcRequest::FetchImage { have_offset, max_wait_ms: IMAGE_FETCH_WAIT_MS };
        match open.call(&request, u64::from(IMAGE_FETCH_WAIT_MS) + IMAGE_FETCH_SLACK_MS) {
            Ok(RpcResponse::Image(Some((offset, records)))) => match MetadataImage::from_records(offset, &records) {
                Ok(image) => link.publish(image),
                Err(error) => {
                    tracing::warn!(%error, "an image that does not apply; fetching from another member");
                    connection = None;
                }
            },
            Ok(RpcResponse::Image(None)) => {}
            Ok(RpcResponse::Controller(Err(RequestError::NotController { leader }))) => {
                // Images come from the active controller only (see `quorum::node`).
                link.follow(open.node, leader);
                connection = None;
            }
            Ok(other) => {
                tracing::warn!(response = ?other, "unexpected image answer");
                connection = None;
            }
            Err(error) => {
                // A stopped or unreachable member: forget it as the leader and try the next one
                // (the kernel still accepts connections for a SIGSTOPped process).
                tracing::debug!(node = %open.node, %error, "image fetch failed; trying another member");
                link.forget(open.node);
                connection = None;
            }
        }
    }
}
