//! The shard thread: its compio runtime, its listener, its connections, its group committer.
//!
//! Owns: reading request frames off sockets (bounded by `socket.request.max.bytes`), pipelining
//! (up to `skua.inflight.requests.max` requests per connection in flight, responses written in
//! request order), the committer task that runs one engine group commit for everything appended
//! since the last one, the retention timer, and clean shutdown.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use compio::io::{AsyncReadExt, AsyncWriteExt};
use compio::net::{TcpListener, TcpStream};
use futures_channel::mpsc;
use futures_util::{SinkExt, StreamExt};

use crate::broker::{now_ms, Broker};
use crate::config::Config;
use crate::handlers::{self, Reply};
use crate::protocol;

/// How often a shard checks whether it should shut down, and runs interval flushes.
pub const TICK_MS: u64 = 100;

/// Runs one shard until `shutdown` is set. Returns after a clean engine close.
pub fn run_shard(config: Config, listener: std::net::TcpListener, shutdown: Arc<AtomicBool>) -> anyhow::Result<()> {
    let runtime = compio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let backend = engine::io::open_backend(engine::io::BackendKind::Auto)?;
        let shard_config = engine::ShardConfig {
            write_mode: config.write_mode,
            batch_bytes_max: config.message_max_bytes.max(engine::limits::BATCH_HEADER_BYTES),
            ..engine::ShardConfig::default()
        };
        let engine = engine::Shard::new(backend, shard_config)?;
        tracing::info!(backend = engine.backend_name(), write_mode = ?config.write_mode, "shard 0 started");
        let (trigger, mut triggers) = mpsc::unbounded();
        let broker = Rc::new(RefCell::new(Broker::open(config.clone(), engine, trigger)?));
        tracing::info!(topics = broker.borrow().topics.len(), data_dir = %config.data_dir.display(), "logs opened");

        let committer = {
            let broker = broker.clone();
            compio::runtime::spawn(async move {
                while triggers.next().await.is_some() {
                    while triggers.try_recv().is_ok() {}
                    broker.borrow_mut().commit();
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
                    state.commit(); // Interval flushes that came due.
                    if last_retention.elapsed() >= retention_every {
                        last_retention = std::time::Instant::now();
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

        let listener = TcpListener::from_std(listener)?;
        loop {
            let accept = std::pin::pin!(listener.accept());
            let tick = std::pin::pin!(compio::time::sleep(Duration::from_millis(TICK_MS)));
            match futures_util::future::select(accept, tick).await {
                futures_util::future::Either::Left((Ok((stream, peer)), _)) => {
                    tracing::debug!(%peer, "connection");
                    let broker = broker.clone();
                    let config = config.clone();
                    compio::runtime::spawn(async move {
                        if let Err(error) = serve_connection(stream, broker, &config).await {
                            tracing::debug!(%peer, %error, "connection closed");
                        }
                    })
                    .detach();
                }
                futures_util::future::Either::Left((Err(error), _)) => tracing::warn!(%error, "accept failed"),
                futures_util::future::Either::Right(_) => {}
            }
            if shutdown.load(Ordering::Relaxed) {
                break;
            }
        }
        tracing::info!("shutting down: committing and closing logs");
        drop(committer);
        drop(ticker);
        broker.borrow_mut().close()?;
        Ok(())
    })
}

/// Reads requests, dispatches them in order, and hands their replies to the writer in order.
async fn serve_connection(stream: TcpStream, broker: Rc<RefCell<Broker>>, config: &Config) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let (mut reader, mut writer) = stream.into_split();
    let (mut replies, mut pending) = mpsc::channel::<handlers::BoxedReply>(config.inflight_requests_max);
    let writer_task = compio::runtime::spawn(async move {
        while let Some(reply) = pending.next().await {
            match reply.await {
                Ok(Some(bytes)) => {
                    let compio::BufResult(result, _) = writer.write_all(bytes).await;
                    result?;
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, "request failed; closing the connection");
                    return Ok::<(), anyhow::Error>(());
                }
            }
        }
        Ok(())
    });
    let result = read_requests(&mut reader, &broker, config, &mut replies).await;
    drop(replies);
    let _ = writer_task.await;
    result
}

async fn read_requests(
    reader: &mut TcpStream,
    broker: &Rc<RefCell<Broker>>,
    config: &Config,
    replies: &mut mpsc::Sender<handlers::BoxedReply>,
) -> anyhow::Result<()> {
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
        let frame = protocol::decode_frame(Bytes::from(body))?;
        tracing::trace!(api = ?frame.api_key, version = frame.api_version, client = ?frame.client_id, "request");
        let supported = handlers::find(frame.api_key)
            .is_some_and(|handler| (handler.min_version..=handler.max_version).contains(&frame.api_version));
        let reply = if supported || frame.api_key == kafka_protocol::messages::ApiKey::ApiVersions {
            handlers::dispatch(broker, frame)?
        } else {
            anyhow::bail!("unsupported API {:?} version {}", frame.api_key, frame.api_version);
        };
        let boxed: handlers::BoxedReply = match reply {
            Reply::Now(bytes) => Box::pin(async move { Ok(Some(bytes)) }),
            Reply::Later(future) => future,
            Reply::Nothing => Box::pin(async { Ok(None) }),
        };
        replies.send(boxed).await?;
    }
}
