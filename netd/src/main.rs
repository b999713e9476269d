//! `netd`, Skua's broker daemon: the Kafka wire protocol over the storage engine.
//!
//! Owns: the command line, configuration loading, logging, the shard threads, the acceptor
//! (this thread accepts connections and hands them to the shards round-robin), and signals
//! (SIGTERM/SIGINT stop accepting, commit what is pending, close the logs cleanly).

use skua_netd::catalog::{self, producer_ids::ProducerIds};
use skua_netd::limits::{
    ACCEPT_BACKOFF_MS_MAX, ACCEPT_BACKOFF_MS_MIN, ACCEPT_POLL_MS, BIND_RETRY_MS_MAX, HANDOFF_WAIT_MS_MAX,
};
use skua_netd::runtime::{
    budget, connection,
    context::{Job, Links},
    controller, metrics, shard,
};
use skua_netd::{config, handlers, quorum};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

/// Set by the SIGTERM/SIGINT handler; read only by the acceptor loop (`accept_until_shutdown`),
/// which then stops accepting. The shard threads never see it: `main` sets their own `shutdown`
/// flag after the acceptor returns, so no connection is handed to a shard that is stopping.
static SHUTDOWN: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    SHUTDOWN.store(true, Ordering::Relaxed);
}

fn keys_help() -> String {
    let mut text = String::from("Configuration keys (file or --override; Kafka's names where Kafka has one):\n");
    let keys = config::keys();
    let width = keys.iter().map(|key| key.name.len()).max().unwrap_or(0);
    for config::Key { name, default, meaning } in keys {
        text.push_str(&format!("  {name:<width$} {meaning} [default: {default}]\n"));
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
    /// Once listening, write the bound port to FILE (with `listeners` port 0 the kernel picks a
    /// free one: how tests start brokers without racing other processes for a port).
    #[arg(long, value_name = "FILE")]
    port_file: Option<PathBuf>,
    /// Once listening for metrics (skua.metrics.listener), write that port to FILE (written
    /// before --port-file's, so a test that waits for that file finds this one).
    #[arg(long, value_name = "FILE")]
    metrics_port_file: Option<PathBuf>,
}

/// Writes `port` to `path` whole: a reader polling for the file sees no file or the full number.
fn write_port_file(path: &std::path::Path, port: u16) -> anyhow::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, format!("{port}\n")).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("renaming {} to {}", partial.display(), path.display()))
}

/// Binds and listens on `address`. `receive_buffer_bytes` (`socket.receive.buffer.bytes`) is set
/// before `listen`, as Kafka does, so that new connections advertise a window scale that fits it.
fn bind_listener(
    address: std::net::SocketAddr,
    receive_buffer_bytes: Option<usize>,
) -> anyhow::Result<std::net::TcpListener> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(BIND_RETRY_MS_MAX);
    let mut warned = false;
    loop {
        let socket = socket2::Socket::new(socket2::Domain::for_address(address), socket2::Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        if let Some(bytes) = receive_buffer_bytes {
            socket.set_recv_buffer_size(bytes).context("setting socket.receive.buffer.bytes on the listener")?;
        }
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

/// Log lines go to stderr, filtered by `RUST_LOG` (default `info`). Colour codes only when stderr
/// is a terminal (and `NO_COLOR` is unset): redirected to a file or a pipe, the log is plain text.
/// JSON lines never carry colour codes.
fn init_logging(format: config::LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        config::LogFormat::Text => {
            let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(ansi).init();
        }
        config::LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
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
    init_logging(config.log_format);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    // SAFETY: installing a handler that only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    // A cluster node's data directory must be its own and its cluster's (`meta.properties`),
    // checked before anything in it is touched.
    if config.cluster.as_ref().is_some_and(|cluster| cluster.voters.is_empty()) {
        anyhow::bail!(
            "controller.quorum.bootstrap.servers without controller.quorum.voters (a dynamic quorum, KIP-853) \
             is not supported yet: list the controllers in controller.quorum.voters (id@host:port,...)"
        );
    }
    let stored_identity = match &config.cluster {
        Some(_) => quorum::identity::check(&config.data_dir, config.node_id)?,
        None => None,
    };
    if config.cluster.is_some() && stored_identity.is_none() && config.data_dir.is_dir() {
        // A node joins a cluster with an empty data directory: the metadata image would
        // otherwise delete the topics a one-node broker left here.
        let topics = catalog::manifest::partition_dirs(&config.data_dir)?;
        if let Some(topic) = topics.keys().next() {
            anyhow::bail!(
                "{} holds topics of a one-node broker (e.g. {topic:?}) but has never joined a cluster \
                 (no meta.properties): Skua cannot bring them into a cluster; start the cluster node \
                 with an empty log.dirs",
                config.data_dir.display()
            );
        }
    }
    // The controller role (a member of the metadata quorum) runs beside the broker, on its own
    // threads; a controller-only node runs nothing else.
    let quorum_stop = Arc::new(AtomicBool::new(false));
    // Set by the controller role while it leads the quorum; the metrics endpoint reports it.
    let controller_active = Arc::new(AtomicBool::new(false));
    let controller_node = match &config.cluster {
        Some(cluster) if cluster.roles.is_controller() => {
            Some(start_controller(&config, cluster, &quorum_stop, &controller_active)?)
        }
        _ => None,
    };
    if config.cluster.as_ref().is_some_and(|cluster| !cluster.roles.is_broker()) {
        if let (Some(path), Some(listener)) =
            (&cli.port_file, config.cluster.as_ref().and_then(|cluster| cluster.controller_listener.as_ref()))
        {
            write_port_file(path, listener.listen_address.port())?;
        }
        while !SHUTDOWN.load(Ordering::Relaxed) {
            if controller_node.as_ref().is_some_and(|node| node.is_finished()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(ACCEPT_POLL_MS as u64));
        }
        return stop_controller(controller_node, &quorum_stop);
    }
    let listener = bind_listener(config.listen_address, config.socket_receive_buffer_bytes)?;
    let config = config.bound_to(listener.local_addr().context("the listener's address")?);
    let metrics_listener = config.metrics_address.and_then(metrics::bind);
    if let (Some(path), Some(metrics_listener)) = (&cli.metrics_port_file, &metrics_listener) {
        write_port_file(path, metrics_listener.local_addr().context("the metrics listener's address")?.port())?;
    }
    if let Some(path) = &cli.port_file {
        write_port_file(path, config.listen_address.port())?;
    }
    let quorum_link = match &config.cluster {
        Some(cluster) => {
            let link = start_link(&config, cluster, stored_identity.map(|identity| identity.cluster_id))?;
            if !join_cluster(&link, &config, stored_identity)? {
                // Stopped (SIGTERM) before the quorum answered.
                return stop_controller(controller_node, &quorum_stop);
            }
            Some(link)
        }
        None => None,
    };
    tracing::info!(listen = %config.listen_address, shards = config.shard_count, advertised = %format!("{}:{}", config.advertised_host, config.advertised_port), "netd starting");

    let hosting = match config.cluster {
        None => catalog::manifest::Hosting::AllPartitions,
        Some(_) => catalog::manifest::Hosting::ReplicasOnly,
    };
    let catalog = catalog::discover_topics(&config.data_dir, hosting)
        .with_context(|| format!("reading the data directory {}", config.data_dir.display()))?;
    let producer_ids = ProducerIds::open(&config.data_dir)?;
    // The budgets start from the dynamic broker configs a one-node broker kept (the connection
    // limits); a cluster's come with the metadata image, which sets them again.
    let budgets = budget::Budgets::new(&catalog.broker_configs.effective(&config));
    let shared_catalog = Arc::new(catalog::SharedCatalog::new(catalog));
    let (peers, inboxes): (Vec<_>, Vec<_>) = (0..config.shard_count)
        .map(|_| futures_channel::mpsc::channel::<Job>(skua_netd::limits::SHARD_QUEUE_DEPTH))
        .unzip();
    let (control, control_commands) = futures_channel::mpsc::channel(skua_netd::limits::CONTROL_QUEUE_DEPTH);
    let shutdown = Arc::new(AtomicBool::new(false));
    let mut controller = Some((control_commands, producer_ids));
    let codec_pool = skua_netd::runtime::codec_pool::CodecPool::start(
        skua_netd::limits::CODEC_POOL_THREADS,
        skua_netd::limits::CODEC_QUEUE_BYTES_MAX,
    )
    .context("starting the codec threads")?;
    let mut threads = Vec::new();
    let mut ready = Vec::new();
    for (index, inbox) in inboxes.into_iter().enumerate() {
        let setup = shard::ShardSetup {
            index,
            config: config.clone(),
            inbox,
            links: Links {
                peers: peers.clone(),
                catalog: shared_catalog.clone(),
                control: control.clone(),
                budgets: budgets.clone(),
                dispatch: handlers::dispatch,
                quorum: quorum_link.clone(),
                codec_pool: codec_pool.clone(),
            },
            controller: if index == controller::CONTROLLER_SHARD { controller.take() } else { None },
            ready: Arc::new(AtomicBool::new(false)),
        };
        ready.push(setup.ready.clone());
        let shutdown = shutdown.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("shard-{index}"))
                .spawn(move || shard::run_shard(setup, shutdown))?,
        );
    }
    drop(control);
    if let Some(metrics_listener) = metrics_listener {
        tracing::info!(listen = %metrics_listener.local_addr()?, "serving metrics (GET /metrics)");
        let active_controller = controller_node.is_some().then(|| controller_active.clone());
        let endpoint = metrics::Endpoint { peers: peers.clone(), node_id: config.node_id, active_controller };
        metrics::start(metrics_listener, endpoint)?;
    }

    let result = accept_until_shutdown(
        &listener,
        &mut peers.clone(),
        &threads,
        &ready,
        &budgets,
        config.socket_send_buffer_bytes,
    );
    if let (Some(link), Some(cluster)) = (&quorum_link, &config.cluster) {
        // Controlled shutdown: the controller moves leadership away while the shards still serve.
        let timeout_ms = u64::from(cluster.broker_session_timeout_ms);
        if link.shut_down(timeout_ms) {
            tracing::info!("controlled shutdown: leadership moved away");
        } else {
            tracing::warn!(
                "controlled shutdown: no answer from the controller within {timeout_ms} ms; stopping anyway"
            );
        }
    }
    shutdown.store(true, Ordering::Relaxed);
    drop(listener);
    let mut failure = result.err();
    for (index, thread) in threads.into_iter().enumerate() {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(shard = index, "shard failed: {error:#}");
                failure.get_or_insert(error);
            }
            Err(_) => {
                failure.get_or_insert(anyhow::anyhow!("shard {index} panicked"));
            }
        }
    }
    if let Err(error) = stop_controller(controller_node, &quorum_stop) {
        failure.get_or_insert(error);
    }
    if let Some(reason) = quorum_link.as_ref().and_then(|link| link.fatal()) {
        failure.get_or_insert(anyhow::anyhow!("{reason}"));
    }
    if let Some(error) = failure {
        return Err(error);
    }
    tracing::info!("netd stopped cleanly");
    Ok(())
}

fn voters(cluster: &config::ClusterConfig) -> Vec<(cluster::BrokerId, String, u16)> {
    cluster
        .voters
        .iter()
        .map(|voter| (cluster::BrokerId(voter.id), voter.address.host.clone(), voter.address.port))
        .collect()
}

/// Starts this node's controller role: its quorum member on the CONTROLLER listener.
fn start_controller(
    config: &config::Config,
    cluster: &config::ClusterConfig,
    stop: &Arc<AtomicBool>,
    active: &Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<anyhow::Result<()>>> {
    let listener_config =
        cluster.controller_listener.as_ref().context("the controller role needs a CONTROLLER listener")?;
    // The quorum's listener keeps the kernel's buffer sizing: its traffic is small.
    let listener = bind_listener(listener_config.listen_address, None)?;
    tracing::info!(listen = %listener_config.listen_address, node = config.node_id, "controller starting");
    let node_config = quorum::node::ControllerNodeConfig {
        node: cluster::BrokerId(config.node_id),
        voters: voters(cluster),
        data_dir: config.data_dir.clone(),
        election_timeout_ms: u64::from(cluster.quorum_election_timeout_ms),
        controller: cluster::controller::ControllerConfig {
            node: cluster::BrokerId(config.node_id),
            session_timeout_ms: u64::from(cluster.broker_session_timeout_ms),
            unclean_leader_election: cluster.unclean_leader_election,
            default_replication_factor: config.default_replication_factor,
        },
        new_cluster_id: cluster::ClusterId(quorum::random_bytes().context("reading /dev/urandom")?),
        auto_leader_rebalance: cluster.auto_leader_rebalance,
        active: active.clone(),
    };
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
    quorum::node::spawn(node_config, listener, stop.clone())
}

fn stop_controller(node: Option<std::thread::JoinHandle<anyhow::Result<()>>>, stop: &AtomicBool) -> anyhow::Result<()> {
    stop.store(true, Ordering::Relaxed);
    match node.map(std::thread::JoinHandle::join) {
        None | Some(Ok(Ok(()))) => Ok(()),
        Some(Ok(Err(error))) => Err(error.context("the controller failed")),
        Some(Err(_)) => Err(anyhow::anyhow!("the controller thread panicked")),
    }
}

/// Waits until the quorum registered this broker and its image names the cluster, then records
/// the identity in the data directory the first time. False if SIGTERM came first. Kafka's brokers
/// also wait for the metadata before they serve. A refusal (another cluster's data, a second
/// process with this node.id) stops the start with the quorum's reason.
fn join_cluster(
    link: &Arc<quorum::link::QuorumLink>,
    config: &config::Config,
    stored: Option<quorum::identity::Identity>,
) -> anyhow::Result<bool> {
    let started = std::time::Instant::now();
    let mut next_report = std::time::Duration::from_secs(5);
    loop {
        if let Some(reason) = link.fatal() {
            anyhow::bail!("{reason}");
        }
        if SHUTDOWN.load(Ordering::Relaxed) {
            return Ok(false);
        }
        if let (Some(_), Some(cluster_id)) = (link.broker_epoch(), link.image().cluster_id) {
            if stored.is_none() {
                let identity = quorum::identity::Identity { node_id: config.node_id, cluster_id };
                quorum::identity::store(&config.data_dir, identity)?;
                tracing::info!(cluster = %cluster_id.to_base64url(), "joined the cluster");
            }
            break;
        }
        if started.elapsed() >= next_report {
            tracing::info!(
                waited_s = started.elapsed().as_secs(),
                "waiting for the metadata quorum (controller.quorum.voters) to register this broker"
            );
            next_report += std::time::Duration::from_secs(5);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Later refusals (a re-registration after the controller forgot this broker) stop it too.
    let watched = link.clone();
    std::thread::Builder::new().name("quorum-watch".into()).spawn(move || loop {
        if watched.fatal().is_some() {
            SHUTDOWN.store(true, Ordering::Relaxed);
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    })?;
    Ok(true)
}

/// Starts the broker role's link to the quorum (registration, heartbeats, the image).
fn start_link(
    config: &config::Config,
    cluster: &config::ClusterConfig,
    stored_cluster_id: Option<cluster::ClusterId>,
) -> anyhow::Result<Arc<quorum::link::QuorumLink>> {
    let random = quorum::random_bytes().context("reading /dev/urandom")?;
    let incarnation = u64::from_be_bytes(random[..8].try_into().context("eight bytes")?);
    let link_config = quorum::link::LinkConfig {
        node: cluster::BrokerId(config.node_id),
        voters: voters(cluster),
        endpoints: vec![cluster::records::Endpoint {
            name: "PLAINTEXT".to_string(),
            host: config.advertised_host.clone(),
            port: config.advertised_port,
        }],
        rack: cluster.rack.clone(),
        heartbeat_interval_ms: u64::from(cluster.broker_heartbeat_interval_ms),
        session_timeout_ms: u64::from(cluster.broker_session_timeout_ms),
        stored_cluster_id,
    };
    Ok(quorum::link::start(link_config, incarnation)?)
}

/// The open-files limit (RLIMIT_NOFILE) as "soft (hard hard)", for the message that says it ran out.
fn open_files_limit() -> String {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return "unknown".to_string();
    }
    let show =
        |value: libc::rlim_t| if value == libc::RLIM_INFINITY { "unlimited".to_string() } else { value.to_string() };
    format!("{} (hard {})", show(limit.rlim_cur), show(limit.rlim_max))
}

/// Whether an accept error means the process or system ran out of something (file descriptors,
/// socket buffers, memory): the pending connection stays queued, and retrying at once would spin.
fn out_of_resources(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// Sets `socket.send.buffer.bytes` on one accepted connection (`None`: the kernel's autotuning),
/// as Kafka's acceptor does. Its receive size needs no call: an accepted socket inherits the
/// listener's (`bind_listener`). A refusal (only a kernel limit can refuse) is logged, and the
/// connection is served with the kernel's size.
fn set_send_buffer(stream: &std::net::TcpStream, send_bytes: Option<usize>) {
    if let Some(bytes) = send_bytes {
        if let Err(error) = socket2::SockRef::from(stream).set_send_buffer_size(bytes) {
            tracing::debug!(%error, bytes, "could not set socket.send.buffer.bytes on a connection");
        }
    }
}

/// Accepts connections and hands them to the shards round-robin until a signal arrives or a
/// shard stops on its own (an error, which ends the broker). Out of file descriptors (or another
/// resource) it backs off (`ACCEPT_BACKOFF_MS_MIN`, doubling up to `ACCEPT_BACKOFF_MS_MAX`) and
/// says so once, with the limit, and once more when accepting works again. At `max.connections`
/// it accepts nothing until a connection closes (the new ones wait in the listen backlog, as in
/// Kafka); past `max.connections.per.ip` a connection is closed at once; past
/// `max.connection.creation.rate` it waits, holding up the ones behind it (Kafka's throttle).
fn accept_until_shutdown(
    listener: &std::net::TcpListener,
    peers: &mut [futures_channel::mpsc::Sender<Job>],
    threads: &[std::thread::JoinHandle<anyhow::Result<()>>],
    ready: &[Arc<AtomicBool>],
    budgets: &Arc<budget::Budgets>,
    send_buffer_bytes: Option<usize>,
) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    listener.set_nonblocking(true)?;
    let mut next = 0usize;
    let mut announced = false;
    // Set while accepting fails for lack of a resource: the next wait.
    let mut backoff_ms: Option<u64> = None;
    let mut at_connections_max = false;
    let mut per_address_refused = 0u64;
    let mut throttled = 0u64;
    loop {
        if SHUTDOWN.load(Ordering::Relaxed) {
            return Ok(());
        }
        if threads.iter().any(|thread| thread.is_finished()) {
            anyhow::bail!("a shard stopped unexpectedly");
        }
        if !announced && ready.iter().all(|flag| flag.load(Ordering::Acquire)) {
            tracing::info!(shards = ready.len(), "all shards serving");
            announced = true;
        }
        if let Some(wait_ms) = backoff_ms {
            std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        }
        if budgets.connections.full() {
            if !at_connections_max {
                tracing::warn!(
                    open = budgets.connections.open_count(),
                    "max.connections reached; new connections wait until one closes"
                );
                at_connections_max = true;
            }
            std::thread::sleep(std::time::Duration::from_millis(ACCEPT_BACKOFF_MS_MIN));
            continue;
        }
        if at_connections_max {
            tracing::info!("below max.connections again; accepting");
            at_connections_max = false;
        }
        let mut poll = libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for the duration of the call.
        let polled = unsafe { libc::poll(&mut poll, 1, ACCEPT_POLL_MS) };
        if polled <= 0 {
            continue;
        }
        while !budgets.connections.full() {
            match listener.accept() {
                Ok((stream, peer)) => {
                    if backoff_ms.take().is_some() {
                        tracing::info!("accepting connections again");
                    }
                    // Past max.connection.creation.rate the acceptor holds this connection, and
                    // takes no other, until the rate is back within it (Kafka's throttle); as in
                    // Kafka, before the per-address limit may refuse it.
                    let wait_ms = budgets.connections.creation_wait_ms(skua_netd::clock::now_ms());
                    if wait_ms > 0 {
                        throttled += 1;
                        if throttled == 1 {
                            tracing::warn!(
                                wait_ms,
                                "max.connection.creation.rate reached: new connections wait (said once; later waits at \
                                 debug level)"
                            );
                        } else {
                            tracing::debug!(wait_ms, %peer, "max.connection.creation.rate reached: a new connection waits");
                        }
                        sleep_unless_shutdown(wait_ms);
                    }
                    let mut slot = match budget::admit(budgets, peer.ip()) {
                        Ok(slot) => slot,
                        Err(refusal) => {
                            // Kafka closes such a connection at once; so do we (it is dropped).
                            per_address_refused += 1;
                            if per_address_refused == 1 {
                                tracing::warn!(%peer, "closing a connection: {refusal} (said once; later ones at debug level)");
                            } else {
                                tracing::debug!(%peer, "closing a connection: {refusal}");
                            }
                            continue;
                        }
                    };
                    stream.set_nonblocking(false)?;
                    let _ = stream.set_nodelay(true);
                    set_send_buffer(&stream, send_buffer_bytes);
                    let target = budgets.connections.least_loaded_shard(next % peers.len());
                    slot.serve_on(target);
                    next = next.wrapping_add(1);
                    tracing::debug!(%peer, shard = target, "connection");
                    hand_off(&mut peers[target], connection::connection_job(stream, slot), target);
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(error) if out_of_resources(&error) => {
                    backoff_ms = Some(match backoff_ms {
                        None => {
                            tracing::warn!(
                                %error,
                                open_connections = budgets.connections.open_count(),
                                "cannot accept connections: out of file descriptors or memory (RLIMIT_NOFILE {}); \
                                 retrying with a growing delay up to {ACCEPT_BACKOFF_MS_MAX} ms, said once until it works again",
                                open_files_limit()
                            );
                            ACCEPT_BACKOFF_MS_MIN
                        }
                        Some(wait_ms) => (wait_ms * 2).min(ACCEPT_BACKOFF_MS_MAX),
                    });
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    break;
                }
            }
        }
    }
}

/// Sleeps `wait_ms`, in steps of at most `ACCEPT_POLL_MS`, but not past a shutdown signal.
fn sleep_unless_shutdown(wait_ms: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(wait_ms);
    while !SHUTDOWN.load(Ordering::Relaxed) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(std::time::Duration::from_millis(ACCEPT_POLL_MS as u64)));
    }
}

fn hand_off(peer: &mut futures_channel::mpsc::Sender<Job>, mut job: Job, target: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(HANDOFF_WAIT_MS_MAX);
    loop {
        match peer.try_send(job) {
            Ok(()) => return,
            Err(error) if error.is_full() && std::time::Instant::now() < deadline => {
                job = error.into_inner();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(_) => {
                tracing::warn!(shard = target, "shard inbox full or stopped; closing a new connection");
                return;
            }
        }
    }
}
