//! `netd`, Skua's broker daemon: the Kafka wire protocol over the storage engine.
//!
//! Owns: the command line, configuration loading, logging, the shard threads, and signals
//! (SIGTERM/SIGINT stop accepting, commit what is pending, close the logs cleanly).

mod broker;
mod config;
mod errors;
mod handlers;
mod producers;
mod protocol;
mod server;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

/// Set by the signal handler; read by the shard threads.
static SHUTDOWN: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    SHUTDOWN.store(true, Ordering::Relaxed);
}

fn keys_help() -> String {
    let mut text = String::from("Configuration keys (file or --override; Kafka's names where Kafka has one):\n");
    for (key, default, meaning) in config::KEYS {
        text.push_str(&format!("  {key:<34} {meaning} [default: {default}]\n"));
    }
    text
}

/// Skua broker daemon: a Kafka-compatible broker. With no arguments it listens on
/// 127.0.0.1:9092 and keeps its data under ./data.
#[derive(Parser, Debug)]
#[command(name = "netd", version, after_help = keys_help())]
struct Cli {
    /// A server.properties-style file (key=value lines, # comments).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Set one key, after the file (repeatable), e.g. --override listeners=PLAINTEXT://127.0.0.1:19092
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// How long to retry binding while the port is still held, e.g. by the io_uring of a broker that
/// was just killed (the kernel releases its files asynchronously after the process exits).
const BIND_RETRY_MS_MAX: u64 = 10_000;

fn bind_listener(address: std::net::SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(BIND_RETRY_MS_MAX);
    let mut warned = false;
    loop {
        let socket = socket2::Socket::new(socket2::Domain::for_address(address), socket2::Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        match socket.bind(&address.into()) {
            Ok(()) => {
                socket.listen(1024)?;
                return Ok(socket.into());
            }
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse && std::time::Instant::now() < deadline => {
                if !warned {
                    tracing::warn!(%address, "address in use; retrying for up to {BIND_RETRY_MS_MAX} ms");
                    warned = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(error) => return Err(anyhow::Error::new(error).context(format!("binding {address}"))),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut values = match &cli.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            config::parse_properties(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => Default::default(),
    };
    for entry in &cli.overrides {
        let (key, value) =
            entry.split_once('=').with_context(|| format!("--override {entry:?}: expected key=value"))?;
        values.insert(key.trim().to_string(), value.trim().to_string());
    }
    let config = config::Config::from_properties(&values)?;
    // SAFETY: installing a handler that only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    let listener = bind_listener(config.listen_address)?;
    tracing::info!(listen = %config.listen_address, shards = config.shard_count, advertised = %format!("{}:{}", config.advertised_host, config.advertised_port), "netd starting");
    let shutdown = Arc::new(AtomicBool::new(false));
    let shard = {
        let shutdown = shutdown.clone();
        let config = config.clone();
        std::thread::Builder::new()
            .name("shard-0".into())
            .spawn(move || server::run_shard(config, listener, shutdown))?
    };
    while !shard.is_finished() {
        if SHUTDOWN.load(Ordering::Relaxed) {
            shutdown.store(true, Ordering::Relaxed);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    match shard.join() {
        Ok(result) => result?,
        Err(_) => anyhow::bail!("shard thread panicked"),
    }
    tracing::info!("netd stopped cleanly");
    Ok(())
}
