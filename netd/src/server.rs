//! The shard thread: its compio runtime, its inbox, its connections, its group committer.
//!
//! Owns: running one shard (engine shard, broker state, the committer task that starts engine
//! group commits for what was appended and collects them when the engine ring's eventfd says
//! they landed, so requests keep being served while the disk works; the retention timer, the inbox task
//! that runs jobs other shards send, the controller on shard 0), serving the connections the
//! acceptor hands to this shard (frames bounded by `socket.request.max.bytes`; up to
//! `skua.inflight.requests.max` requests per connection in flight, responses written in request
//! order), and clean shutdown.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use compio::io::{AsyncReadExt, AsyncWriteExt};
use compio::net::TcpStream;
use futures_channel::mpsc;
use futures_util::{SinkExt, StreamExt};

use crate::broker::{now_ms, Broker};
use crate::config::Config;
use crate::control::{self, ControlCommand};
use crate::handlers::{self, Reply};
use crate::producers::ProducerIds;
use crate::protocol;
use crate::shards::{Job, ShardContext, SharedCatalog};

/// How often a shard checks whether it should shut down, and runs interval flushes.
pub const TICK_MS: u64 = 100;

/// What a shard thread starts from.
pub struct ShardSetup {
    pub index: usize,
    pub config: Config,
    pub inbox: mpsc::Receiver<Job>,
    pub peers: Vec<mpsc::Sender<Job>>,
    pub catalog: Arc<SharedCatalog>,
    pub control: mpsc::Sender<ControlCommand>,
    /// Only for the controller shard: its command queue and the producer id counter.
    pub controller: Option<(mpsc::Receiver<ControlCommand>, ProducerIds)>,
    /// Set once this shard's logs are open and it serves its inbox.
    pub ready: Arc<AtomicBool>,
}

/// A job that makes `stream` a connection of the shard that runs it.
pub fn connection_job(stream: std::net::TcpStream) -> Job {
    Box::new(move |context: &Rc<ShardContext>| {
        let context = context.clone();
        compio::runtime::spawn(async move {
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

impl std::fmt::Debug for ShardSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardSetup").field("index", &self.index).field("shards", &self.peers.len()).finish()
    }
}

/// Runs one shard until `shutdown` is set. Returns after a clean engine close.
pub fn run_shard(setup: ShardSetup, shutdown: Arc<AtomicBool>) -> anyhow::Result<()> {
    let ShardSetup { index, config, mut inbox, peers, catalog, control, controller, ready } = setup;
    let runtime = compio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let backend = engine::io::open_backend(engine::io::BackendKind::Auto)?;
        let shard_config = engine::ShardConfig {
            write_mode: config.write_mode,
            batch_bytes_max: config.message_max_bytes.max(engine::limits::BATCH_HEADER_BYTES),
            recycled_segments_per_log_max: config.recycled_segments_per_log_max,
            ..engine::ShardConfig::default()
        };
        let engine = engine::Shard::new(backend, shard_config)?;
        let (trigger, mut triggers) = mpsc::unbounded();
        let shard_count = peers.len();
        let broker = {
            let snapshot = catalog.snapshot_now();
            Broker::open(config.clone(), engine, trigger, &snapshot, |topic, partition| {
                crate::shards::owner_of(topic, partition, shard_count) == index
            })?
        };
        let owned: usize = broker.topics.values().map(|partitions| partitions.len()).sum();
        tracing::info!(shard = index, backend = broker.engine.backend_name(), write_mode = ?config.write_mode, partitions = owned, "shard started");
        let broker = Rc::new(RefCell::new(broker));
        let context = Rc::new(ShardContext::new(index, config.clone(), broker.clone(), peers, catalog, control));

        // The engine ring signals an eventfd on every completion; this loop polls a duplicate of
        // it on the runtime's own ring.
        let completions = match broker.borrow().engine.completion_fd() {
            Some(fd) => Some(compio::runtime::fd::PollFd::new(fd.try_clone_to_owned()?)?),
            None => None,
        };
        let committer = {
            let broker = broker.clone();
            compio::runtime::spawn(async move {
                loop {
                    let in_flight = {
                        let mut state = broker.borrow_mut();
                        state.pump();
                        state.engine.commits_in_flight() > 0
                    };
                    let triggered = match (&completions, in_flight) {
                        (Some(completions), true) => {
                            let trigger = std::pin::pin!(triggers.next());
                            let landed = std::pin::pin!(completions.read_ready());
                            match futures_util::future::select(trigger, landed).await {
                                futures_util::future::Either::Left((trigger, _)) => trigger.is_some(),
                                futures_util::future::Either::Right((result, _)) => {
                                    if let Err(error) = result {
                                        tracing::error!(%error, "polling the engine's completions failed");
                                        compio::time::sleep(Duration::from_millis(1)).await;
                                    }
                                    true
                                }
                            }
                        }
                        _ => triggers.next().await.is_some(),
                    };
                    if !triggered {
                        break;
                    }
                    while triggers.try_recv().is_ok() {}
                }
            })
        };
        let ticker = {
            let broker = broker.clone();
            let retention_every = Duration::from_millis(config.retention_check_interval_ms.max(TICK_MS));
            compio::runtime::spawn(async move {
                let mut last_retention = std::time::Instant::now();
                loop {
                    compio::time::sleep(Duration::from_millis(TICK_MS)).await;
                    let mut state = broker.borrow_mut();
                    state.pump(); // Interval flushes that came due.
                    state.groups.tick(now_ms());
                    if last_retention.elapsed() >= retention_every {
                        last_retention = std::time::Instant::now();
                        state.expire_offsets(now_ms());
                        for (log, result) in state.engine.enforce_retention(now_ms()) {
                            match result {
                                Ok(report) if report.deleted_segments > 0 => tracing::info!(?log, deleted_segments = report.deleted_segments, log_start = %report.log_start_offset, "retention"),
                                Ok(_) => {}
                                Err(error) => tracing::error!(?log, %error, "retention failed"),
                            }
                        }
                    }
                }
            })
        };
        let inbox_task = {
            let context = context.clone();
            compio::runtime::spawn(async move {
                while let Some(job) = inbox.next().await {
                    job(&context);
                }
            })
        };
        let controller_task = controller.map(|(commands, ids)| compio::runtime::spawn(control::run(context.clone(), commands, ids)));
        ready.store(true, Ordering::Release);

        while !shutdown.load(Ordering::Relaxed) {
            compio::time::sleep(Duration::from_millis(TICK_MS)).await;
        }
        tracing::info!(shard = index, "shutting down: committing and closing logs");
        drop(controller_task);
        drop(inbox_task);
        drop(committer);
        drop(ticker);
        broker.borrow_mut().close()?;
        Ok(())
    })
}

/// iovecs per vectored write (Linux's IOV_MAX is 1024).
pub const WRITE_SEGMENTS_MAX: usize = 512;

/// Writes a response frame given as segments: one plain write for one segment, vectored writes
/// (no copying of record bytes) for more.
async fn write_segments(writer: &mut TcpStream, segments: handlers::Segments) -> std::io::Result<()> {
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
    let (mut replies, mut pending) = mpsc::channel::<handlers::BoxedReply>(config.inflight_requests_max);
    let writer_task = compio::runtime::spawn(async move {
        while let Some(reply) = pending.next().await {
            match reply.await {
                Ok(Some(segments)) => write_segments(&mut writer, segments).await?,
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "request failed; closing the connection");
                    return Ok::<(), anyhow::Error>(());
                }
            }
        }
        Ok(())
    });
    let result = read_requests(&mut reader, &context, &mut replies).await;
    drop(replies);
    let _ = writer_task.await;
    result
}

async fn read_requests(
    reader: &mut TcpStream,
    context: &Rc<ShardContext>,
    replies: &mut mpsc::Sender<handlers::BoxedReply>,
) -> anyhow::Result<()> {
    let config = &context.config;
    let peer = reader.peer_addr().ok();
    loop {
        let compio::BufResult(result, size_bytes) = reader.read_exact([0u8; 4]).await;
        if let Err(error) = result {
            if error.kind() == std::io::ErrorKind::UnexpectedEof {
                return Ok(());
            }
            return Err(error.into());
        }
        let size = i32::from_be_bytes(size_bytes);
        let size = usize::try_from(size).map_err(|_| anyhow::anyhow!("negative frame size {size}"))?;
        if size > config.socket_request_max_bytes {
            anyhow::bail!(
                "frame of {size} bytes exceeds socket.request.max.bytes ({})",
                config.socket_request_max_bytes
            );
        }
        let compio::BufResult(result, body) = reader.read_exact(Vec::with_capacity(size)).await;
        result?;
        let mut frame = protocol::decode_frame(Bytes::from(body))?;
        frame.peer = peer;
        tracing::trace!(api = ?frame.api_key, version = frame.api_version, client = ?frame.client_id, "request");
        let supported = handlers::find(frame.api_key)
            .is_some_and(|handler| (handler.min_version..=handler.max_version).contains(&frame.api_version));
        let reply = if supported || frame.api_key == kafka_protocol::messages::ApiKey::ApiVersions {
            handlers::dispatch(context, frame).await?
        } else {
            anyhow::bail!("unsupported API {:?} version {}", frame.api_key, frame.api_version);
        };
        let boxed: handlers::BoxedReply = match reply {
            Reply::Now(bytes) => Box::pin(async move { Ok(Some(vec![bytes])) }),
            Reply::Later(future) => future,
            Reply::Nothing => Box::pin(async { Ok(None) }),
        };
        replies.send(boxed).await?;
    }
}
