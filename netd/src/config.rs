//! Broker configuration: a `server.properties`-style file with Kafka's key names where they exist,
//! Skua keys for what Kafka has no name for, `--override key=value`, and embedded defaults so the
//! broker runs with no file at all.
//!
//! Owns: parsing and validating configuration; the cluster keys (`process.roles` and the KRaft
//! quorum) in [`cluster`], the list of Kafka's own key names in `kafka_keys`. Knows nothing of
//! sockets or shards.
//!
//! Keys: a key Skua understands is in [`keys`]; a key only Kafka knows is accepted with one
//! warning (in [`Config::warnings`], logged by `main`); any other key is refused.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use engine::{FlushPolicy, LogConfig, WriteMode};

pub mod cluster;
pub mod dynamic;
mod kafka_keys;
pub mod topic;

pub use cluster::{ClusterConfig, ControllerListener, HostPort, ProcessRoles, Voter};

// The default of every key, written once: the parser falls back to these and `--help` prints them
// (through `keys`). Defaults that other modules need live beside them (`crate::limits`,
// `engine::limits`, [`SECURITY_PROTOCOL_MAP_DEFAULT`]); the rest are here.

/// Kafka's `listeners` default, made explicit (Kafka binds every interface; Skua only loopback).
pub const LISTENERS_DEFAULT: &str = "PLAINTEXT://127.0.0.1:9092";
/// The one-node broker's id. With `process.roles` there is none: `node.id` is required, as in
/// Kafka 4.4 (whose `node.id` has no default at all).
pub const NODE_ID_DEFAULT: i32 = 1;
pub const LOG_DIRS_DEFAULT: &str = "./data";
pub const NUM_PARTITIONS_DEFAULT: i32 = 1;
pub const AUTO_CREATE_TOPICS_DEFAULT: bool = true;
pub const RETENTION_CHECK_INTERVAL_MS_DEFAULT: u64 = 300_000;
/// Kafka's `message.max.bytes` default: 1 MiB plus a batch's record overhead.
pub const MESSAGE_MAX_BYTES_DEFAULT: usize = 1_048_588;
/// `log.message.timestamp.before.max.ms`: Kafka accepts any past timestamp by default.
pub const TIMESTAMP_BEFORE_MAX_MS_DEFAULT: i64 = i64::MAX;
pub const TIMESTAMP_AFTER_MAX_MS_DEFAULT: i64 = 3_600_000;
pub const GROUP_INITIAL_REBALANCE_DELAY_MS_DEFAULT: i64 = 3_000;
pub const GROUP_MIN_SESSION_TIMEOUT_MS_DEFAULT: i32 = 6_000;
pub const GROUP_MAX_SESSION_TIMEOUT_MS_DEFAULT: i32 = 1_800_000;
/// `offsets.retention.minutes`: seven days.
pub const OFFSETS_RETENTION_MINUTES_DEFAULT: i64 = 10_080;
pub const OFFSETS_TOPIC_PARTITIONS_DEFAULT: i32 = 50;
pub const OFFSETS_TOPIC_SEGMENT_BYTES_DEFAULT: u64 = 104_857_600;
/// `default.replication.factor`: Kafka's `ReplicationConfigs.DEFAULT_REPLICATION_FACTOR_DEFAULT`.
pub const REPLICATION_FACTOR_DEFAULT: i16 = 1;
/// Follower fetching is on: in a cluster, followers copy their leaders, truncate divergent tails
/// and `acks=all` waits for the ISR (issue 14). Off, every replica keeps only what its clients
/// wrote to it while it led (the behaviour before replication), for comparison and rescue.
pub const FOLLOWER_FETCH_DEFAULT: bool = true;
/// Kafka's rack-aware replica selector (KIP-392), the one `replica.selector.class` Skua takes.
pub const RACK_AWARE_REPLICA_SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";
/// `acks=all` means "fsynced on every ISR member" by default (decision 0017's first model).
pub const FOLLOWER_FSYNC_BEFORE_ACK_DEFAULT: bool = true;

/// `replica.lag.time.max.ms`: Kafka's `ReplicationConfigs.REPLICA_LAG_TIME_MAX_MS_DEFAULT`.
pub const REPLICA_LAG_TIME_MAX_MS_DEFAULT: i64 = 30_000;
/// `replication.quota.window.num` and `replication.quota.window.size.seconds`: Kafka's
/// `ReplicationQuotaManagerConfig` defaults (the replication rates are measured over 11 windows of
/// one second).
pub const REPLICATION_QUOTA_WINDOW_COUNT_DEFAULT: u32 = 11;
pub const REPLICATION_QUOTA_WINDOW_SECONDS_DEFAULT: u32 = 1;
/// `quota.window.num` and `quota.window.size.seconds`: Kafka's `QuotaConfig` defaults. Skua
/// measures `max.connection.creation.rate` over them, as Kafka's `ConnectionQuotas` does.
pub const QUOTA_WINDOW_COUNT_DEFAULT: u32 = 11;
pub const QUOTA_WINDOW_SECONDS_DEFAULT: u32 = 1;
/// `producer.id.expiration.ms` and `producer.id.expiration.check.interval.ms`: Kafka's defaults
/// (an idempotent producer silent for a day is forgotten, looked for every ten minutes).
pub const PRODUCER_ID_EXPIRATION_MS_DEFAULT: i64 = 86_400_000;
pub const PRODUCER_ID_EXPIRATION_CHECK_INTERVAL_MS_DEFAULT: i64 = 600_000;
/// `replica.high.watermark.checkpoint.interval.ms`: Kafka's default.
pub const HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS_DEFAULT: u64 = 5_000;
/// The key of `min.insync.replicas`, a broker config and (in a cluster) a topic config too.
pub const MIN_INSYNC_REPLICAS_KEY: &str = "min.insync.replicas";
/// `min.insync.replicas`: Kafka's `ServerLogConfigs.MIN_IN_SYNC_REPLICAS_DEFAULT`.
pub const MIN_INSYNC_REPLICAS_DEFAULT: i32 = 1;
/// `offsets.topic.replication.factor`: Kafka's `GroupCoordinatorConfig.OFFSETS_TOPIC_REPLICATION_FACTOR_DEFAULT`.
/// Kafka creates `__consumer_offsets` with min(this, live brokers) replicas, so one node works.
pub const OFFSETS_TOPIC_REPLICATION_FACTOR_DEFAULT: i16 = 3;
pub const WRITE_MODE_DEFAULT: &str = "direct";
pub const FSYNC_POLICY_DEFAULT: &str = "fsync-before-ack";
pub const LOG_FORMAT_DEFAULT: &str = "text";

/// How netd writes its log lines (`skua.log.format`): text for people, one JSON object per line
/// for log collectors. Either way without colour codes unless stderr is a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}
/// `skua.metrics.listener`: the Prometheus endpoint, on loopback by default (Redpanda's metrics
/// port). A broker that cannot bind it logs a warning and serves on without metrics, so many
/// brokers on one machine (tests) start as before; `none` (or an empty value) turns it off.
pub const METRICS_LISTENER_DEFAULT: &str = "http://127.0.0.1:9644";

/// One key this broker understands, as `--help` shows it.
#[derive(Clone, Debug)]
pub struct Key {
    pub name: &'static str,
    /// The default as text: the constant the parser falls back to, or a description in
    /// parentheses where the default depends on the machine or on another key.
    pub default: String,
    pub meaning: &'static str,
}

/// Every key this broker understands, with its default and meaning (printed by `--help`).
pub fn keys() -> Vec<Key> {
    fn key(name: &'static str, default: impl ToString, meaning: &'static str) -> Key {
        Key { name, default: default.to_string(), meaning }
    }
    vec![
        key(
            "listeners",
            LISTENERS_DEFAULT,
            "where to listen: one client listener, security protocol PLAINTEXT only (port 0: a free port, \
             see --port-file); with process.roles also one listener named in controller.listener.names",
        ),
        key(
            "listener.security.protocol.map",
            SECURITY_PROTOCOL_MAP_DEFAULT,
            "listener name -> security protocol (custom names such as INTERNAL:PLAINTEXT)",
        ),
        key(
            "advertised.listeners",
            "(listeners)",
            "the address clients are told to connect to (the controller listener's entry: for the other nodes)",
        ),
        key(
            "node.id",
            NODE_ID_DEFAULT,
            "this node's id in Metadata responses (broker.id also accepted); required with process.roles",
        ),
        key(
            "process.roles",
            "(unset: one node)",
            "broker, controller or broker,controller: this node's roles in a KRaft cluster (README: cluster)",
        ),
        key("controller.quorum.voters", "(unset)", "the controller quorum: id@host:port,... (with process.roles)"),
        key(
            "controller.quorum.bootstrap.servers",
            "(unset)",
            "controllers to ask for the quorum: host:port,... (with process.roles, instead of or with the voters)",
        ),
        key(
            "controller.listener.names",
            "(unset)",
            "names of the controller listeners (e.g. CONTROLLER); required with process.roles",
        ),
        key("broker.rack", "(unset)", "this broker's rack, for rack-aware replica placement"),
        key(
            "replica.selector.class",
            "(unset)",
            "org.apache.kafka.common.replica.RackAwareReplicaSelector: consumers that name their rack (client.rack) are sent to a replica there (KIP-392); unset: the leader",
        ),
        key(
            "default.replication.factor",
            REPLICATION_FACTOR_DEFAULT,
            "replicas of an auto-created topic or of CreateTopics with -1",
        ),
        key(
            "min.insync.replicas",
            MIN_INSYNC_REPLICAS_DEFAULT,
            "in-sync replicas an acks=all produce needs (a topic's min.insync.replicas default)",
        ),
        key(
            "offsets.topic.replication.factor",
            OFFSETS_TOPIC_REPLICATION_FACTOR_DEFAULT,
            "replicas of __consumer_offsets (fewer when fewer brokers are live, as in Kafka)",
        ),
        key(
            "broker.session.timeout.ms",
            cluster::BROKER_SESSION_TIMEOUT_MS_DEFAULT,
            "a broker without a heartbeat this long is fenced (with process.roles)",
        ),
        key(
            "broker.heartbeat.interval.ms",
            cluster::BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT,
            "how often a broker heartbeats to the active controller (with process.roles)",
        ),
        key(
            "unclean.leader.election.enable",
            cluster::UNCLEAN_LEADER_ELECTION_ENABLE_DEFAULT,
            "elect a leader outside the ISR when no in-sync replica is left, losing data (with process.roles)",
        ),
        key(
            "auto.leader.rebalance.enable",
            cluster::AUTO_LEADER_REBALANCE_ENABLE_DEFAULT,
            "move leadership back to preferred replicas (with process.roles)",
        ),
        key(
            "controller.quorum.election.timeout.ms",
            cluster::QUORUM_ELECTION_TIMEOUT_MS_DEFAULT,
            "a controller without a leader this long starts an election (with process.roles)",
        ),
        key(
            "controller.quorum.fetch.timeout.ms",
            cluster::QUORUM_FETCH_TIMEOUT_MS_DEFAULT,
            "a voter hearing nothing from the quorum leader this long becomes a candidate (with process.roles)",
        ),
        key("log.dirs", LOG_DIRS_DEFAULT, "data directory (one directory; the first of a list is used)"),
        key("num.partitions", NUM_PARTITIONS_DEFAULT, "partitions of an auto-created topic or of CreateTopics with -1"),
        key("auto.create.topics.enable", AUTO_CREATE_TOPICS_DEFAULT, "create unknown topics on Metadata/Produce"),
        key("log.segment.bytes", engine::limits::SEGMENT_BYTES_DEFAULT, "segment size before a roll"),
        key(
            "compression.type",
            "producer",
            "the codec topics store batches with (their compression.type default): producer (the \
             producer's), uncompressed, gzip, snappy, lz4 or zstd (batches with another codec are converted)",
        ),
        key("compression.zstd.level", topic::ZSTD_LEVEL_DEFAULT, "zstd level when compression.type is zstd (-131072 to 22)"),
        key(
            "compression.gzip.level",
            topic::GZIP_LEVEL_DEFAULT,
            "gzip level when compression.type is gzip (1-9, -1: zlib's default)",
        ),
        key(
            "log.index.size.max.bytes",
            engine::limits::INDEX_BYTES_MAX_DEFAULT,
            "the most a segment's offset or time index holds before the segment rolls",
        ),
        key(
            "log.roll.ms",
            engine::limits::SEGMENT_MS_DEFAULT,
            "segment age before a roll (log.roll.hours also accepted)",
        ),
        key(
            "log.roll.jitter.ms",
            0,
            "the most a segment rolls before its age reaches log.roll.ms (log.roll.jitter.hours also accepted)",
        ),
        key(
            "log.retention.ms",
            engine::limits::RETENTION_MS_DEFAULT,
            "time retention, -1 unlimited (log.retention.hours/minutes also accepted)",
        ),
        key(
            "log.retention.bytes",
            engine::limits::RETENTION_BYTES_DEFAULT,
            "size retention per partition, -1 unlimited",
        ),
        key("log.retention.check.interval.ms", RETENTION_CHECK_INTERVAL_MS_DEFAULT, "how often retention runs"),
        key("log.flush.interval.messages", "(unset)", "with skua.fsync.policy=interval: sync after this many messages"),
        key("log.flush.interval.ms", "(unset)", "with skua.fsync.policy=interval: sync after this many ms"),
        key("message.max.bytes", MESSAGE_MAX_BYTES_DEFAULT, "largest record batch accepted"),
        key(
            topic::MAX_DECOMPRESSED_MESSAGE_BYTES,
            engine::limits::DECOMPRESSED_RECORD_BYTES_MAX_DEFAULT,
            "longest body a record of a compressed batch may declare; more refuses the batch (INVALID_RECORD)",
        ),
        key(
            "log.message.timestamp.before.max.ms",
            TIMESTAMP_BEFORE_MAX_MS_DEFAULT,
            "how far in the past a record's timestamp may be (INVALID_TIMESTAMP beyond)",
        ),
        key(
            "log.message.timestamp.after.max.ms",
            TIMESTAMP_AFTER_MAX_MS_DEFAULT,
            "how far in the future a record's timestamp may be (INVALID_TIMESTAMP beyond)",
        ),
        key(
            "socket.request.max.bytes",
            crate::limits::REQUEST_FRAME_BYTES_DEFAULT,
            "largest request frame accepted; larger closes the connection",
        ),
        key(
            "socket.send.buffer.bytes",
            crate::limits::SOCKET_SEND_BUFFER_BYTES_DEFAULT,
            "SO_SNDBUF of client connections; -1: the kernel's autotuning",
        ),
        key(
            "socket.receive.buffer.bytes",
            crate::limits::SOCKET_RECEIVE_BUFFER_BYTES_DEFAULT,
            "SO_RCVBUF of the listener and client connections; -1: the kernel's autotuning",
        ),
        key(
            "queued.max.requests",
            crate::limits::QUEUED_REQUESTS_DEFAULT,
            "requests being read or waiting for their handler, per broker; at the limit sockets are not read",
        ),
        key(
            "queued.max.request.bytes",
            crate::limits::QUEUED_REQUEST_BYTES_DEFAULT,
            "request bytes held, per broker (-1 unbounded, Kafka's default); at the limit sockets are not read",
        ),
        key(
            "max.connections",
            crate::limits::CONNECTIONS_DEFAULT,
            "open connections; at the limit new ones wait in the listen backlog",
        ),
        key(
            "max.connections.per.ip",
            crate::limits::CONNECTIONS_DEFAULT,
            "open connections per client address; more are closed at once (0 only with overrides)",
        ),
        key(
            "max.connections.per.ip.overrides",
            "",
            "per-address exceptions to max.connections.per.ip: host:count,host:count (IP literals or names)",
        ),
        key(
            "max.connection.creation.rate",
            crate::limits::CONNECTIONS_DEFAULT,
            "new connections per second the acceptor takes; past it each waits up to a quota window (Kafka's throttle)",
        ),
        key(
            "quota.window.num",
            QUOTA_WINDOW_COUNT_DEFAULT,
            "the windows max.connection.creation.rate is measured over (at most 64 are kept)",
        ),
        key(
            "quota.window.size.seconds",
            QUOTA_WINDOW_SECONDS_DEFAULT,
            "the length of one window of max.connection.creation.rate, in seconds (also its longest wait)",
        ),
        key(
            "producer.id.expiration.ms",
            PRODUCER_ID_EXPIRATION_MS_DEFAULT,
            "an idempotent producer that wrote nothing to a partition this long is forgotten there",
        ),
        key(
            "producer.id.expiration.check.interval.ms",
            PRODUCER_ID_EXPIRATION_CHECK_INTERVAL_MS_DEFAULT,
            "how often each shard looks for producers to forget (producer.id.expiration.ms)",
        ),
        key(
            "connections.max.idle.ms",
            crate::limits::CONNECTION_IDLE_MS_DEFAULT,
            "a connection that sends nothing with nothing in flight, or reads none of a response, this long is closed",
        ),
        key(
            "fetch.max.bytes",
            crate::limits::FETCH_RESPONSE_BYTES_DEFAULT,
            "record bytes of one Fetch response at most (the first partition may exceed it)",
        ),
        key(
            "skua.fetch.buffered.bytes.max",
            crate::limits::FETCH_BUFFERED_BYTES_DEFAULT,
            "file bytes read for Fetch responses not yet written, per broker; more waits (at most max_wait_ms)",
        ),
        key(
            "max.incremental.fetch.session.cache.slots",
            crate::limits::FETCH_SESSION_SLOTS_DEFAULT,
            "incremental fetch sessions (KIP-227) the broker keeps; 0: every fetch is a full fetch",
        ),
        key(
            "group.initial.rebalance.delay.ms",
            GROUP_INITIAL_REBALANCE_DELAY_MS_DEFAULT,
            "how long a new group waits for more members before its first rebalance",
        ),
        key(
            "group.min.session.timeout.ms",
            GROUP_MIN_SESSION_TIMEOUT_MS_DEFAULT,
            "smallest session.timeout.ms a consumer may ask for",
        ),
        key(
            "group.max.session.timeout.ms",
            GROUP_MAX_SESSION_TIMEOUT_MS_DEFAULT,
            "largest session.timeout.ms a consumer may ask for",
        ),
        key(
            "offsets.retention.minutes",
            OFFSETS_RETENTION_MINUTES_DEFAULT,
            "committed offsets of an empty group are kept this long",
        ),
        key(
            "offsets.topic.num.partitions",
            OFFSETS_TOPIC_PARTITIONS_DEFAULT,
            "partitions of the internal __consumer_offsets log (fixed once data exists)",
        ),
        key(
            "offsets.topic.segment.bytes",
            OFFSETS_TOPIC_SEGMENT_BYTES_DEFAULT,
            "segment size of the internal __consumer_offsets log",
        ),
        key(
            "skua.shard.count",
            "(cores)",
            "shard threads; each owns a share of the partitions (default: one per core)",
        ),
        key("skua.write.mode", WRITE_MODE_DEFAULT, "segment writes: direct (O_DIRECT) or buffered"),
        key(
            "skua.read.cache.bytes",
            "(a quarter of memory)",
            "recently written record bytes kept in memory for consumers and followers, all shards together, the oldest \
             going first (default: a quarter of the cgroup's memory.max or of MemTotal; 0: none)",
        ),
        key(
            "replica.lag.time.max.ms",
            REPLICA_LAG_TIME_MAX_MS_DEFAULT,
            "a follower that has not caught up for this long leaves the ISR (with follower fetching)",
        ),
        key(
            "replication.quota.window.num",
            REPLICATION_QUOTA_WINDOW_COUNT_DEFAULT,
            "the windows the replication rates (leader/follower.replication.throttled.rate) are measured over",
        ),
        key(
            "replication.quota.window.size.seconds",
            REPLICATION_QUOTA_WINDOW_SECONDS_DEFAULT,
            "the length of one window of the replication rates, in seconds",
        ),
        key(
            "replica.high.watermark.checkpoint.interval.ms",
            HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS_DEFAULT,
            "how often each partition's high watermark is written beside it (a restart starts from it)",
        ),
        key(
            "skua.replication.follower.fetch.enable",
            FOLLOWER_FETCH_DEFAULT,
            "followers copy their leaders, truncate divergent tails, and acks=all waits for the ISR (in a cluster)",
        ),
        key(
            "skua.replication.follower.fsync.before.ack",
            FOLLOWER_FSYNC_BEFORE_ACK_DEFAULT,
            "a follower reports what it copied (and acks=all counts it) only once fsynced; false: once appended, fsync in the background (Kafka's model)",
        ),
        key(
            "skua.segment.recycle.max",
            engine::limits::RECYCLED_SEGMENTS_PER_LOG_DEFAULT,
            "segment files retention removed that each partition keeps to reuse as new segments (0: unlink them)",
        ),
        key("skua.fsync.policy", FSYNC_POLICY_DEFAULT, "fsync-before-ack or interval (Kafka's log.flush.interval.*)"),
        key("skua.log.format", LOG_FORMAT_DEFAULT, "log lines on stderr: text, or json (one object per line)"),
        key(
            "skua.inflight.requests.max",
            crate::limits::INFLIGHT_REQUESTS_DEFAULT,
            "requests one connection may have in flight (pipelining, 1 to 1000)",
        ),
        key(
            "skua.metrics.listener",
            METRICS_LISTENER_DEFAULT,
            "the Prometheus endpoint (GET /metrics), http://ip:port (port 0: a free port, see --metrics-port-file); \
             none: off; a port already taken is logged and the broker serves on without metrics",
        ),
    ]
}

#[derive(Clone, Debug)]
pub struct Config {
    /// The client listener; on a controller-only node (no clients) the controller listener.
    pub listen_address: SocketAddr,
    /// `skua.metrics.listener`: where the Prometheus endpoint listens; `None`: off.
    pub metrics_address: Option<SocketAddr>,
    /// Where clients are told to connect (`advertised.listeners`, else the listener).
    pub advertised_host: String,
    pub advertised_port: u16,
    pub node_id: i32,
    pub data_dir: PathBuf,
    pub num_partitions: i32,
    pub auto_create_topics: bool,
    /// `skua.replication.follower.fetch.enable`: in a cluster, followers copy their leaders and
    /// the high watermark is the ISR's smallest end; off, only the leader's log receives data.
    pub follower_fetch: bool,
    /// `skua.replication.follower.fsync.before.ack`: a follower reports an offset to its leader
    /// (and `acks=all` counts it) only once its copy is fsynced (default); off, once appended
    /// (Kafka's model: the ISR has the records, fsync follows in the background).
    pub follower_fsync_before_ack: bool,
    /// `replica.selector.class` is Kafka's `RackAwareReplicaSelector` (KIP-392): a leader sends
    /// a consumer that names its rack to an in-sync replica in that rack.
    pub rack_aware_reads: bool,
    /// `replica.lag.time.max.ms`: a follower that has not caught up with its leader for this long
    /// leaves the ISR; one that caught up joins it again (the leader asks the controller).
    pub replica_lag_time_max_ms: i64,
    /// `replication.quota.window.num`: the windows a replication rate is measured over.
    pub replication_quota_window_count: u32,
    /// `replication.quota.window.size.seconds`: one window's length.
    pub replication_quota_window_seconds: u32,
    /// `replica.high.watermark.checkpoint.interval.ms`: how often the shards write the high
    /// watermarks that moved (`replica::high_watermark`).
    pub high_watermark_checkpoint_interval_ms: u64,
    pub log: LogConfig,
    pub retention_check_interval_ms: u64,
    pub message_max_bytes: usize,
    pub socket_request_max_bytes: usize,
    /// `socket.send.buffer.bytes`: `SO_SNDBUF` of accepted connections; `None` (-1) leaves the
    /// kernel's autotuning.
    pub socket_send_buffer_bytes: Option<usize>,
    /// `socket.receive.buffer.bytes`: `SO_RCVBUF` of the listener and accepted connections;
    /// `None` (-1) leaves the kernel's autotuning.
    pub socket_receive_buffer_bytes: Option<usize>,
    pub shard_count: usize,
    pub write_mode: WriteMode,
    /// `skua.log.format`.
    pub log_format: LogFormat,
    /// `skua.read.cache.bytes`: the broker's budget for recently written bytes kept in memory
    /// for readers; each shard gets an equal share.
    pub read_cache_bytes: u64,
    pub recycled_segments_per_log_max: usize,
    pub inflight_requests_max: usize,
    /// `queued.max.requests`.
    pub queued_requests_max: u64,
    /// `queued.max.request.bytes` (`u64::MAX` for -1).
    pub queued_request_bytes_max: u64,
    /// `max.connections`.
    pub connections_max: u64,
    /// `max.connections.per.ip`.
    pub connections_per_ip_max: u64,
    /// `max.connections.per.ip.overrides`: addresses with a limit of their own.
    pub connections_per_ip_overrides: BTreeMap<std::net::IpAddr, u64>,
    /// `max.connection.creation.rate`: connections accepted per second (`CONNECTIONS_DEFAULT`:
    /// unbounded, Kafka's Int.MaxValue).
    pub connection_creation_rate_max: u64,
    /// `quota.window.num`: the windows the connection creation rate is measured over.
    pub quota_window_count: u32,
    /// `quota.window.size.seconds`: one window's length.
    pub quota_window_seconds: u32,
    /// `producer.id.expiration.ms`: how long an idempotent producer's state outlives its last write.
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms`.
    pub producer_id_expiration_check_interval_ms: u64,
    /// `connections.max.idle.ms`.
    pub connection_idle_ms: u64,
    /// `fetch.max.bytes`: the cap on a Fetch request's `max_bytes`.
    pub fetch_response_bytes_max: u64,
    /// `skua.fetch.buffered.bytes.max`.
    pub fetch_buffered_bytes_max: u64,
    /// `max.incremental.fetch.session.cache.slots`: fetch sessions the broker keeps.
    pub fetch_session_slots: u64,
    pub groups: GroupConfig,
    pub offsets_partitions: i32,
    pub offsets_segment_bytes: u64,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
    /// `offsets.topic.replication.factor`, as set: the replicas `__consumer_offsets` is created
    /// with are min(this, live brokers), as in Kafka.
    pub offsets_replication_factor: i16,
    /// The KRaft settings; `None` without `process.roles`: then netd is the one-node broker.
    pub cluster: Option<ClusterConfig>,
    /// The keys the configuration file (or command line) set: DescribeConfigs reports their
    /// values as STATIC_BROKER_CONFIG, the others as DEFAULT_CONFIG.
    pub set_keys: std::collections::BTreeSet<String>,
    /// The broker keys behind the topic keys Skua keeps but does not act on
    /// (`topic::KEPT_NOT_ACTED_ON`, e.g. `log.cleaner.min.compaction.lag.ms`) that the
    /// configuration sets, checked: the topics' defaults DescribeConfigs reports. Dynamic broker
    /// configs come over them (`DynamicBrokerConfigs::effective`).
    pub kept_log_configs: BTreeMap<String, String>,
    /// `compression.zstd.level` and `compression.gzip.level`: the levels topics of that codec
    /// inherit, whatever `compression.type` the broker itself has (`log.compression` carries its
    /// own codec's level too).
    pub compression_zstd_level: i32,
    pub compression_gzip_level: i32,
    /// One sentence per key accepted but not used (a Kafka key Skua has no use for, a cluster
    /// key without `process.roles`), each naming its key; `main` logs them once at start.
    pub warnings: Vec<String>,
}

/// The group settings of the broker configuration, for the group coordinators (defined here, as
/// the configuration must not name the layer above it).
#[derive(Clone, Copy, Debug)]
pub struct GroupConfig {
    pub initial_rebalance_delay_ms: i64,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub offsets_retention_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("line {line}: expected key=value, got {text:?}")]
    Syntax { line: usize, text: String },
    #[error("unknown configuration key {0:?} (see netd --help for the keys Skua understands)")]
    UnknownKey(String),
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

/// The memory this process may use: the smaller of the cgroup's `memory.max` (v2) and the
/// machine's `MemTotal`; `None` when neither can be read.
fn machine_memory_bytes() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        let line = text.lines().find(|line| line.starts_with("MemTotal:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
    });
    let cgroup =
        std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok().and_then(|text| text.trim().parse::<u64>().ok());
    match (total, cgroup) {
        (Some(total), Some(cgroup)) => Some(total.min(cgroup)),
        (total, cgroup) => total.or(cgroup),
    }
}

/// Parses `key=value` lines; `#` and `!` start comments, as in Java properties.
pub fn parse_properties(text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut values = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((key, value)) = line.split_once('=').or_else(|| line.split_once(':')) else {
            return Err(ConfigError::Syntax { line: index + 1, text: raw.to_string() });
        };
        values.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(values)
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.to_string(), reason: reason.into() }
}

/// A broker key checked by its topic key's rule (`topic::check`: Kafka's type, bounds and
/// words), parsed; unset, `default`.
fn topic_ruled<T: std::str::FromStr>(
    values: &BTreeMap<String, String>,
    key: &str,
    topic_key: &str,
    default: T,
) -> Result<T, ConfigError> {
    match values.get(key) {
        None => Ok(default),
        Some(value) => {
            let checked = topic::check(topic_key, value).map_err(|error| invalid(key, error.to_string()))?;
            Ok(checked.parse().unwrap_or(default))
        }
    }
}

/// A Kafka INT key of at least `min`; unset, `default`.
fn int_at_least(values: &BTreeMap<String, String>, key: &str, default: i64, min: i64) -> Result<i64, ConfigError> {
    match number(values, key, default)? {
        value if (min..=i64::from(i32::MAX)).contains(&value) => Ok(value),
        _ => Err(invalid(key, format!("must be at least {min} (an INT)"))),
    }
}

fn number<T: std::str::FromStr>(values: &BTreeMap<String, String>, key: &str, default: T) -> Result<T, ConfigError> {
    match values.get(key) {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| invalid(key, format!("{text:?} is not a valid number"))),
    }
}

/// A `true`/`false` key; like Kafka, case and surrounding blanks do not matter.
fn switch(values: &BTreeMap<String, String>, key: &str, default: bool) -> Result<bool, ConfigError> {
    match values.get(key).map(|text| text.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(text) if text == "true" => Ok(true),
        Some(text) if text == "false" => Ok(false),
        Some(_) => Err(invalid(key, format!("{:?} is not true or false", values[key]))),
    }
}

/// Kafka's `listener.security.protocol.map` default: each security protocol as a listener name.
pub const SECURITY_PROTOCOL_MAP_DEFAULT: &str =
    "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";

/// Kafka's security protocols; Skua serves only PLAINTEXT.
const SECURITY_PROTOCOLS: [&str; 4] = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// One entry of `listeners`: `NAME://host:port`, its name resolved to a security protocol through
/// `listener.security.protocol.map` as Kafka does (names are case-insensitive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub protocol: String,
    pub host: String,
    pub port: u16,
    /// The entry as written, for messages.
    pub text: String,
}

/// Parses `listener.security.protocol.map` (`NAME:PROTOCOL,...`); like Kafka, a value replaces
/// the default map rather than adding to it.
fn security_protocol_map(text: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    const KEY: &str = "listener.security.protocol.map";
    let mut map = BTreeMap::new();
    for entry in text.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
        let (name, protocol) =
            entry.split_once(':').ok_or_else(|| invalid(KEY, format!("{entry:?} is not NAME:PROTOCOL")))?;
        let protocol = protocol.trim().to_ascii_uppercase();
        if !SECURITY_PROTOCOLS.contains(&protocol.as_str()) {
            return Err(invalid(KEY, format!("{entry:?}: unknown security protocol {protocol}")));
        }
        map.insert(name.trim().to_ascii_uppercase(), protocol);
    }
    Ok(map)
}

/// Parses a `listeners`-style list. An entry without `NAME://` is taken as PLAINTEXT.
pub fn parse_listeners(
    key: &str,
    text: &str,
    protocols: &BTreeMap<String, String>,
) -> Result<Vec<Listener>, ConfigError> {
    let mut listeners = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
        let (name, address) = entry.split_once("://").unwrap_or(("PLAINTEXT", entry));
        let name = name.to_ascii_uppercase();
        let protocol = protocols.get(&name).ok_or_else(|| {
            invalid(
                key,
                format!("listener {entry}: no security protocol defined for listener {name} in listener.security.protocol.map"),
            )
        })?;
        let (host, port) = address.rsplit_once(':').ok_or_else(|| invalid(key, format!("{entry:?} has no port")))?;
        let port = port.parse().map_err(|_| invalid(key, format!("bad port in {entry:?}")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        listeners.push(Listener { name, protocol: protocol.clone(), host, port, text: entry.to_string() });
    }
    if listeners.is_empty() {
        return Err(invalid(key, "no listener given"));
    }
    Ok(listeners)
}

/// Refuses two listeners with one name or one port (but port 0, a free port each), as Kafka does.
fn distinct_listeners(listeners: &[Listener]) -> Result<(), ConfigError> {
    for (index, listener) in listeners.iter().enumerate() {
        for earlier in &listeners[..index] {
            if earlier.name == listener.name {
                return Err(invalid("listeners", format!("listener name {} appears twice", listener.name)));
            }
            if earlier.port == listener.port && listener.port != 0 {
                return Err(invalid(
                    "listeners",
                    format!("{} and {} have the same port; each listener needs its own", earlier.text, listener.text),
                ));
            }
        }
    }
    Ok(())
}

/// Refuses a listener whose security protocol Skua does not serve, naming it.
fn only_plaintext(listeners: &[Listener]) -> Result<(), ConfigError> {
    match listeners.iter().find(|listener| listener.protocol != "PLAINTEXT") {
        Some(listener) => Err(invalid(
            "listeners",
            format!(
                "listener {}: security protocol {} is not supported (only PLAINTEXT)",
                listener.text, listener.protocol
            ),
        )),
        None => Ok(()),
    }
}

/// The address to bind for `listener` (an empty host: every interface, as in Kafka).
fn bind_address(listener: &Listener) -> Result<SocketAddr, ConfigError> {
    let host = if listener.host.is_empty() { "0.0.0.0" } else { listener.host.as_str() };
    format!("{host}:{}", listener.port)
        .parse()
        .map_err(|_| invalid("listeners", format!("{:?} must name an IP address and port", listener.text)))
}

/// Where to tell others to connect when `advertised.listeners` has no entry for a listener: the
/// listener itself, loopback for one bound to every interface.
fn advertised_self(listener: &Listener) -> HostPort {
    let host = if listener.host.is_empty() || listener.host == "0.0.0.0" { "127.0.0.1" } else { &listener.host };
    HostPort { host: host.to_string(), port: listener.port }
}

/// The one client listener Skua serves: refuses what it would not serve (another security
/// protocol, a second listener) rather than start and silently ignore it.
fn the_listener(mut listeners: Vec<Listener>) -> Result<Listener, ConfigError> {
    debug_assert!(!listeners.is_empty(), "parse_listeners refuses an empty list");
    only_plaintext(&listeners)?;
    if listeners.len() > 1 {
        let ignored: Vec<&str> = listeners[1..].iter().map(|listener| listener.text.as_str()).collect();
        return Err(invalid(
            "listeners",
            format!(
                "only one listener is supported; {} would be ignored (serving only {})",
                ignored.join(", "),
                listeners[0].text
            ),
        ));
    }
    Ok(listeners.swap_remove(0))
}

/// `node.id`, or the older `broker.id`; both set, they must agree (Kafka's rule). Required with
/// `process.roles`, as in Kafka; without it the one-node broker's default applies.
fn node_id(values: &BTreeMap<String, String>, required: bool) -> Result<i32, ConfigError> {
    let node_id = values.get("node.id").map(|_| number::<i32>(values, "node.id", NODE_ID_DEFAULT)).transpose()?;
    let broker_id = values.get("broker.id").map(|_| number::<i32>(values, "broker.id", NODE_ID_DEFAULT)).transpose()?;
    let (key, id) = match (node_id, broker_id) {
        (Some(node_id), Some(broker_id)) if node_id != broker_id => {
            return Err(invalid(
                "node.id",
                format!(
                    "node.id {node_id} and broker.id {broker_id} differ; set node.id only (broker.id is its old name)"
                ),
            ))
        }
        (Some(id), _) => ("node.id", id),
        (None, Some(id)) => ("broker.id", id),
        (None, None) if required => return Err(invalid("node.id", "required with process.roles")),
        (None, None) => ("node.id", NODE_ID_DEFAULT),
    };
    if id < 0 {
        return Err(invalid(key, format!("{id} is negative; a node id is at least 0")));
    }
    Ok(id)
}

/// Parses `skua.metrics.listener`: `http://ip:port` (the scheme may be left out), or `none` or
/// nothing for no endpoint.
fn metrics_listener(value: &str) -> Result<Option<SocketAddr>, ConfigError> {
    const KEY: &str = "skua.metrics.listener";
    let value = value.trim();
    if value.is_empty() || value.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let address = match value.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest.trim_end_matches('/'),
        Some((scheme, _)) => return Err(invalid(KEY, format!("scheme {scheme:?}: only http is served"))),
        None => value,
    };
    address.parse::<SocketAddr>().map(Some).map_err(|_| {
        invalid(
            KEY,
            format!(
                "{value:?} is not http://ip:port (an IP address and a port, e.g. {METRICS_LISTENER_DEFAULT}), or none"
            ),
        )
    })
}

/// What `from_properties` learns from `listeners`, `advertised.listeners` and the cluster keys.
struct Endpoints {
    listen_address: SocketAddr,
    advertised: HostPort,
    controller: Option<ControllerListener>,
}

/// Parses the listeners: without `process.roles` exactly one PLAINTEXT listener, as before; with
/// it, the listeners named in `controller.listener.names` are controller listeners and the
/// rest client listeners, under Kafka's rules for each role ([`cluster::check_listener_roles`]).
fn endpoints(
    values: &BTreeMap<String, String>,
    roles: Option<ProcessRoles>,
    controller_names: &[String],
) -> Result<Endpoints, ConfigError> {
    const MAP_KEY: &str = "listener.security.protocol.map";
    let mut protocols =
        security_protocol_map(values.get(MAP_KEY).map_or(SECURITY_PROTOCOL_MAP_DEFAULT, String::as_str))?;
    for name in controller_names {
        if protocols.contains_key(name) {
            continue;
        }
        // Kafka's effective map: with the default map, a controller listener not in it is
        // PLAINTEXT; a map that was set must name it.
        if values.contains_key(MAP_KEY) {
            return Err(invalid(
                MAP_KEY,
                format!("controller listener {name} (controller.listener.names) has no security protocol here"),
            ));
        }
        protocols.insert(name.clone(), "PLAINTEXT".to_string());
    }
    let listeners =
        parse_listeners("listeners", values.get("listeners").map_or(LISTENERS_DEFAULT, String::as_str), &protocols)?;
    distinct_listeners(&listeners)?;
    only_plaintext(&listeners)?;
    let (controllers, clients): (Vec<Listener>, Vec<Listener>) =
        listeners.into_iter().partition(|listener| controller_names.contains(&listener.name));
    if let Some(roles) = roles {
        cluster::check_listener_roles(roles, &controllers, &clients)?;
    }
    let advertised = values
        .get("advertised.listeners")
        .map(|text| parse_listeners("advertised.listeners", text, &protocols))
        .transpose()?;
    let advertised_entry = |name: &str| {
        advertised
            .iter()
            .flatten()
            .find(|entry| entry.name == name)
            .map(|entry| HostPort { host: entry.host.clone(), port: entry.port })
    };
    let controller = match controllers.into_iter().next() {
        Some(listener) => Some(ControllerListener {
            listen_address: bind_address(&listener)?,
            advertised: advertised_entry(&listener.name).unwrap_or_else(|| advertised_self(&listener)),
            name: listener.name,
        }),
        None => None,
    };
    if clients.is_empty() {
        // A controller-only node serves no clients: the addresses it binds and advertises are its
        // controller listener's, so that `--port-file` and the start-up line name what it binds.
        // (check_listener_roles makes this a controller-only node, so `controller` is Some.)
        let Some(controller) = controller else { return Err(invalid("listeners", "no client listener given")) };
        return Ok(Endpoints {
            listen_address: controller.listen_address,
            advertised: controller.advertised.clone(),
            controller: Some(controller),
        });
    }
    let listener = the_listener(clients)?;
    let advertised = match &advertised {
        // The entry of the served listener's name, else the first that is no controller
        // listener's (Kafka advertises those to the other nodes, never to clients).
        Some(entries) => {
            let for_clients: Vec<&Listener> =
                entries.iter().filter(|entry| !controller_names.contains(&entry.name)).collect();
            let only_controllers = || {
                invalid(
                    "advertised.listeners",
                    "every entry names a controller listener (controller.listener.names); a broker needs one for clients",
                )
            };
            let chosen = for_clients
                .iter()
                .find(|entry| entry.name == listener.name)
                .or(for_clients.first())
                .ok_or_else(only_controllers)?;
            HostPort { host: chosen.host.clone(), port: chosen.port }
        }
        None => advertised_self(&listener),
    };
    Ok(Endpoints { listen_address: bind_address(&listener)?, advertised, controller })
}

/// Sorts the keys Skua does not understand: Kafka's are accepted with one warning each, any
/// other is refused.
fn unused_keys(values: &BTreeMap<String, String>, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    let known = keys();
    for key in values.keys() {
        if known.iter().any(|known| known.name == key)
            || KEY_ALIASES.contains(&key.as_str())
            || kept_topic_key(key).is_some()
        {
            continue;
        }
        if !kafka_keys::is_kafka_key(key) {
            return Err(ConfigError::UnknownKey(key.clone()));
        }
        warnings.push(format!("{key}: a Kafka setting Skua has no use for; ignored"));
    }
    Ok(())
}

/// `compression.type` and the zstd and gzip levels (kept apart: a topic of another codec than the
/// broker's inherits them), checked by the topic keys' rules (Kafka's messages).
fn static_compression(values: &BTreeMap<String, String>) -> Result<(engine::CompressionType, i32, i32), ConfigError> {
    let checked = |key: &str, topic_key: &str| -> Result<Option<String>, ConfigError> {
        values
            .get(key)
            .map(|value| topic::check(topic_key, value).map_err(|error| invalid(key, error.to_string())))
            .transpose()
    };
    let kind = checked("compression.type", topic::COMPRESSION_TYPE)?.unwrap_or_else(|| "producer".to_string());
    // A checked level is an INT, so it parses; unset, Kafka's default.
    let level = |key: &str, topic_key: &str, default: i32| -> Result<i32, ConfigError> {
        Ok(checked(key, topic_key)?.and_then(|level| level.parse().ok()).unwrap_or(default))
    };
    let zstd_level = level("compression.zstd.level", topic::COMPRESSION_ZSTD_LEVEL, topic::ZSTD_LEVEL_DEFAULT)?;
    let gzip_level = level("compression.gzip.level", topic::COMPRESSION_GZIP_LEVEL, topic::GZIP_LEVEL_DEFAULT)?;
    Ok((topic::compression(&kind, zstd_level, gzip_level), zstd_level, gzip_level))
}

/// Kafka's other spellings of keys in [`keys`], which the configuration file may use instead.
const KEY_ALIASES: &[&str] =
    &["log.roll.hours", "log.roll.jitter.hours", "log.retention.hours", "log.retention.minutes", "broker.id"];

/// `max.connections.per.ip.overrides`: `host:count` pairs separated by commas, as Kafka's, each
/// host an IP literal or a name (every address it resolves to gets the count); the count an INT
/// of at least 0. An empty text: none.
pub fn connection_overrides(text: &str) -> Result<BTreeMap<std::net::IpAddr, u64>, String> {
    use std::net::ToSocketAddrs;
    let mut overrides = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
        let (host, count) = pair.rsplit_once(':').ok_or_else(|| format!("{pair:?} is not host:count"))?;
        let count: i32 = count.trim().parse().map_err(|_| format!("{pair:?}: the count is not a number"))?;
        let count = u64::try_from(count).map_err(|_| format!("{pair:?}: the count must be at least 0"))?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<std::net::IpAddr> = match host.parse::<std::net::IpAddr>() {
            Ok(address) => vec![address],
            Err(_) => (host, 0)
                .to_socket_addrs()
                .map_err(|error| format!("{pair:?}: {host} does not resolve: {error}"))?
                .map(|address| address.ip())
                .collect(),
        };
        for address in addresses {
            overrides.insert(address, count);
        }
    }
    Ok(overrides)
}

/// Overrides as `max.connections.per.ip.overrides` writes them, addresses only (IPv6 in
/// brackets): what a dynamic value is stored as and what DescribeConfigs shows.
pub fn connection_overrides_text(overrides: &BTreeMap<std::net::IpAddr, u64>) -> String {
    let pairs: Vec<String> = overrides
        .iter()
        .map(|(address, count)| match address {
            std::net::IpAddr::V4(address) => format!("{address}:{count}"),
            std::net::IpAddr::V6(address) => format!("[{address}]:{count}"),
        })
        .collect();
    pairs.join(",")
}

/// Whether Kafka 4.4 knows `key` as a broker or controller key.
pub fn is_kafka_key(key: &str) -> bool {
    kafka_keys::is_kafka_key(key)
}

/// Whether a configuration file's `key` means something to Skua (not ignored with a warning).
pub fn reads_key(key: &str) -> bool {
    keys().iter().any(|known| known.name == key) || KEY_ALIASES.contains(&key) || kept_topic_key(key).is_some()
}

/// The topic key in `topic::KEPT_NOT_ACTED_ON` whose broker synonym is `broker_key`.
fn kept_topic_key(broker_key: &str) -> Option<&'static topic::TopicKey> {
    topic::kept_with_broker_synonym().find(|key| key.broker_synonym == broker_key)
}

/// The configuration's values of the broker keys behind `topic::KEPT_NOT_ACTED_ON`, checked by
/// their topic key's rule (Kafka's messages).
fn kept_log_configs(values: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut kept = BTreeMap::new();
    for (key, value) in values {
        if let Some(topic_key) = kept_topic_key(key) {
            let checked = topic::check(topic_key.name, value).map_err(|error| invalid(key, error.to_string()))?;
            kept.insert(key.clone(), checked);
        }
    }
    Ok(kept)
}

/// The replication keys; they mean something on one node too (a topic created there keeps its
/// replication factor and `min.insync.replicas` for when it has replicas).
struct Replication {
    default_factor: i16,
    min_insync: i32,
    offsets_factor: i16,
}

fn replication(values: &BTreeMap<String, String>) -> Result<Replication, ConfigError> {
    // Kafka takes any integer at start-up and then fails every topic creation that uses a
    // factor below 1; a replication factor is an INT16 on the wire (CreateTopics).
    let default_factor = number::<i16>(values, "default.replication.factor", REPLICATION_FACTOR_DEFAULT)?;
    if default_factor < 1 {
        return Err(invalid("default.replication.factor", format!("{default_factor}: must be at least 1")));
    }
    // Kafka's validators: `atLeast(1)` for both.
    let min_insync = number::<i32>(values, "min.insync.replicas", MIN_INSYNC_REPLICAS_DEFAULT)?;
    if min_insync < 1 {
        return Err(invalid("min.insync.replicas", format!("{min_insync}: must be at least 1")));
    }
    let offsets_factor =
        number::<i16>(values, "offsets.topic.replication.factor", OFFSETS_TOPIC_REPLICATION_FACTOR_DEFAULT)?;
    if offsets_factor < 1 {
        return Err(invalid("offsets.topic.replication.factor", format!("{offsets_factor}: must be at least 1")));
    }
    Ok(Replication { default_factor, min_insync, offsets_factor })
}

impl Config {
    /// Builds the configuration from properties (file, then overrides) on top of the defaults.
    pub fn from_properties(values: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let mut warnings = Vec::new();
        unused_keys(values, &mut warnings)?;
        let roles = cluster::process_roles(values)?;
        if roles.is_none() {
            cluster::one_node_checks(values, &mut warnings)?;
        }
        let controller_names = cluster::controller_listener_names(values, roles)?;
        let node_id = node_id(values, roles.is_some())?;
        let Endpoints { listen_address, advertised, controller } = endpoints(values, roles, &controller_names)?;
        let (advertised_host, advertised_port) = (advertised.host, advertised.port);
        let cluster = roles
            .map(|roles| ClusterConfig::from_properties(values, roles, node_id, controller, &mut warnings))
            .transpose()?;
        let hours = |key: &str| -> Result<Option<i64>, ConfigError> {
            values.get(key).map(|_| number::<i64>(values, key, 0).map(|value| value * 3_600_000)).transpose()
        };
        let retention_ms = match values.get("log.retention.ms") {
            Some(_) => number(values, "log.retention.ms", 0i64)?,
            None => match values.get("log.retention.minutes") {
                Some(_) => number(values, "log.retention.minutes", 0i64)? * 60_000,
                None => hours("log.retention.hours")?.unwrap_or(engine::limits::RETENTION_MS_DEFAULT),
            },
        };
        let segment_ms = match values.get("log.roll.ms") {
            Some(_) => number(values, "log.roll.ms", 0i64)?,
            None => hours("log.roll.hours")?.unwrap_or(engine::limits::SEGMENT_MS_DEFAULT),
        };
        let segment_jitter_ms = match values.get("log.roll.jitter.ms") {
            Some(_) => number(values, "log.roll.jitter.ms", 0i64)?,
            None => hours("log.roll.jitter.hours")?.unwrap_or(0),
        };
        let flush_policy = match values.get("skua.fsync.policy").map_or(FSYNC_POLICY_DEFAULT, String::as_str) {
            "fsync-before-ack" => FlushPolicy::FsyncBeforeAck,
            "interval" => FlushPolicy::Interval {
                flush_messages: number(values, "log.flush.interval.messages", u64::MAX)?,
                flush_ms: number(values, "log.flush.interval.ms", i64::MAX)?,
            },
            other => {
                return Err(invalid("skua.fsync.policy", format!("{other:?} is not fsync-before-ack or interval")))
            }
        };
        let timestamp_before_max_ms =
            number(values, "log.message.timestamp.before.max.ms", TIMESTAMP_BEFORE_MAX_MS_DEFAULT)?;
        let timestamp_after_max_ms =
            number(values, "log.message.timestamp.after.max.ms", TIMESTAMP_AFTER_MAX_MS_DEFAULT)?;
        if timestamp_before_max_ms < 0 || timestamp_after_max_ms < 0 {
            return Err(invalid("log.message.timestamp.*.max.ms", "must be at least 0"));
        }
        let (compression, compression_zstd_level, compression_gzip_level) = static_compression(values)?;
        let index_bytes_max = topic_ruled(
            values,
            "log.index.size.max.bytes",
            topic::SEGMENT_INDEX_BYTES,
            engine::limits::INDEX_BYTES_MAX_DEFAULT,
        )?;
        let decompressed_record_bytes_max = topic_ruled(
            values,
            topic::MAX_DECOMPRESSED_MESSAGE_BYTES,
            topic::MAX_DECOMPRESSED_MESSAGE_BYTES,
            engine::limits::DECOMPRESSED_RECORD_BYTES_MAX_DEFAULT,
        )?;
        let log = LogConfig {
            segment_bytes: number(values, "log.segment.bytes", engine::limits::SEGMENT_BYTES_DEFAULT)?,
            index_bytes_max,
            decompressed_record_bytes_max,
            compression,
            segment_ms,
            segment_jitter_ms,
            retention_ms,
            retention_bytes: number(values, "log.retention.bytes", engine::limits::RETENTION_BYTES_DEFAULT)?,
            flush_policy,
            timestamp_before_max_ms,
            timestamp_after_max_ms,
            ..LogConfig::default()
        };
        log.validate().map_err(|error| invalid("log.*", error.to_string()))?;
        let write_mode = WriteMode::parse(values.get("skua.write.mode").map_or(WRITE_MODE_DEFAULT, String::as_str))
            .map_err(|error| invalid("skua.write.mode", error.to_string()))?;
        let log_format = match values.get("skua.log.format").map_or(LOG_FORMAT_DEFAULT, String::as_str) {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(invalid("skua.log.format", format!("{other:?} is not text or json"))),
        };
        let cores = std::thread::available_parallelism().map_or(1, |count| count.get());
        let shard_count = number(values, "skua.shard.count", cores)?;
        if !(1..=crate::limits::SHARD_COUNT_MAX).contains(&shard_count) {
            return Err(invalid(
                "skua.shard.count",
                format!("must be between 1 and {}", crate::limits::SHARD_COUNT_MAX),
            ));
        }
        let read_cache_bytes = match values.get("skua.read.cache.bytes") {
            Some(_) => number::<u64>(values, "skua.read.cache.bytes", 0)?,
            None => machine_memory_bytes().map_or(crate::limits::READ_CACHE_BYTES_FALLBACK, |memory| {
                memory / crate::limits::READ_CACHE_MEMORY_DIVISOR
            }),
        };
        let num_partitions = number(values, "num.partitions", NUM_PARTITIONS_DEFAULT)?;
        if num_partitions < 1 {
            return Err(invalid("num.partitions", "must be at least 1"));
        }
        let auto_create_topics = switch(values, "auto.create.topics.enable", AUTO_CREATE_TOPICS_DEFAULT)?;
        let follower_fetch = switch(values, "skua.replication.follower.fetch.enable", FOLLOWER_FETCH_DEFAULT)?;
        let rack_aware_reads = match values.get("replica.selector.class").map(|value| value.trim()) {
            None | Some("") => false,
            Some(RACK_AWARE_REPLICA_SELECTOR) => true,
            Some(other) => {
                return Err(invalid(
                    "replica.selector.class",
                    format!("{other:?}: the one selector Skua has is {RACK_AWARE_REPLICA_SELECTOR}"),
                ))
            }
        };
        let follower_fsync_before_ack =
            switch(values, "skua.replication.follower.fsync.before.ack", FOLLOWER_FSYNC_BEFORE_ACK_DEFAULT)?;
        let replica_lag_time_max_ms = number(values, "replica.lag.time.max.ms", REPLICA_LAG_TIME_MAX_MS_DEFAULT)?;
        if replica_lag_time_max_ms <= 0 {
            return Err(invalid("replica.lag.time.max.ms", "must be positive"));
        }
        let replication_quota_window_count =
            number(values, "replication.quota.window.num", REPLICATION_QUOTA_WINDOW_COUNT_DEFAULT)?;
        let replication_quota_window_seconds =
            number(values, "replication.quota.window.size.seconds", REPLICATION_QUOTA_WINDOW_SECONDS_DEFAULT)?;
        for (key, value) in [
            ("replication.quota.window.num", replication_quota_window_count),
            ("replication.quota.window.size.seconds", replication_quota_window_seconds),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        let high_watermark_checkpoint_interval_ms = number(
            values,
            "replica.high.watermark.checkpoint.interval.ms",
            HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS_DEFAULT,
        )?;
        if high_watermark_checkpoint_interval_ms == 0 {
            return Err(invalid("replica.high.watermark.checkpoint.interval.ms", "must be positive"));
        }
        let replication = replication(values)?;
        let message_max_bytes = number(values, "message.max.bytes", MESSAGE_MAX_BYTES_DEFAULT)?;
        if message_max_bytes > engine::limits::BATCH_BYTES_MAX {
            return Err(invalid("message.max.bytes", format!("at most {}", engine::limits::BATCH_BYTES_MAX)));
        }
        let groups = GroupConfig {
            initial_rebalance_delay_ms: number(
                values,
                "group.initial.rebalance.delay.ms",
                GROUP_INITIAL_REBALANCE_DELAY_MS_DEFAULT,
            )?
            .max(0),
            min_session_timeout_ms: number(
                values,
                "group.min.session.timeout.ms",
                GROUP_MIN_SESSION_TIMEOUT_MS_DEFAULT,
            )?,
            max_session_timeout_ms: number(
                values,
                "group.max.session.timeout.ms",
                GROUP_MAX_SESSION_TIMEOUT_MS_DEFAULT,
            )?,
            offsets_retention_ms: number(values, "offsets.retention.minutes", OFFSETS_RETENTION_MINUTES_DEFAULT)?
                .saturating_mul(60_000),
        };
        if groups.min_session_timeout_ms > groups.max_session_timeout_ms {
            return Err(invalid("group.min.session.timeout.ms", "must not exceed group.max.session.timeout.ms"));
        }
        let offsets_partitions = number(values, "offsets.topic.num.partitions", OFFSETS_TOPIC_PARTITIONS_DEFAULT)?;
        if !(1..=crate::limits::PARTITIONS_PER_TOPIC_MAX).contains(&offsets_partitions) {
            return Err(invalid("offsets.topic.num.partitions", "must be between 1 and 10000"));
        }
        let offsets_segment_bytes = number(values, "offsets.topic.segment.bytes", OFFSETS_TOPIC_SEGMENT_BYTES_DEFAULT)?;
        let inflight_requests_max =
            number(values, "skua.inflight.requests.max", crate::limits::INFLIGHT_REQUESTS_DEFAULT)?;
        if !(1..=crate::limits::INFLIGHT_REQUESTS_MAX).contains(&inflight_requests_max) {
            return Err(invalid(
                "skua.inflight.requests.max",
                format!("must be between 1 and {}", crate::limits::INFLIGHT_REQUESTS_MAX),
            ));
        }
        let socket_request_max_bytes =
            number(values, "socket.request.max.bytes", crate::limits::REQUEST_FRAME_BYTES_DEFAULT)?;
        if !(1..=i32::MAX as usize).contains(&socket_request_max_bytes) {
            return Err(invalid("socket.request.max.bytes", format!("must be between 1 and {}", i32::MAX)));
        }
        let socket_buffer_bytes = |key: &str, default: i64| -> Result<Option<usize>, ConfigError> {
            match number(values, key, default)? {
                -1 => Ok(None),
                bytes if (1..=i64::from(i32::MAX)).contains(&bytes) => Ok(Some(bytes as usize)),
                _ => Err(invalid(key, "must be positive, or -1 for the kernel's autotuning")),
            }
        };
        let socket_send_buffer_bytes =
            socket_buffer_bytes("socket.send.buffer.bytes", crate::limits::SOCKET_SEND_BUFFER_BYTES_DEFAULT)?;
        let socket_receive_buffer_bytes =
            socket_buffer_bytes("socket.receive.buffer.bytes", crate::limits::SOCKET_RECEIVE_BUFFER_BYTES_DEFAULT)?;
        let queued_request_bytes_max =
            match number(values, "queued.max.request.bytes", crate::limits::QUEUED_REQUEST_BYTES_DEFAULT as i64)? {
                -1 => u64::MAX,
                bytes if bytes > 0 => bytes as u64,
                _ => return Err(invalid("queued.max.request.bytes", "must be positive, or -1 for unbounded")),
            };
        let positive = |key: &str, default: u64| -> Result<u64, ConfigError> {
            match number(values, key, default as i64)? {
                value if value > 0 => Ok(value as u64),
                _ => Err(invalid(key, "must be positive")),
            }
        };
        let queued_requests_max = positive("queued.max.requests", crate::limits::QUEUED_REQUESTS_DEFAULT)?;
        let connections_max = positive("max.connections", crate::limits::CONNECTIONS_DEFAULT)?;
        let connections_per_ip_overrides = match values.get("max.connections.per.ip.overrides") {
            None => BTreeMap::new(),
            Some(text) => {
                connection_overrides(text).map_err(|reason| invalid("max.connections.per.ip.overrides", reason))?
            }
        };
        // Kafka's rule: at least 0, and 0 (nobody but the overrides) only with overrides.
        let connections_per_ip_max =
            match number(values, "max.connections.per.ip", crate::limits::CONNECTIONS_DEFAULT as i64)? {
                0 if connections_per_ip_overrides.is_empty() => {
                    return Err(invalid(
                        "max.connections.per.ip",
                        "can be set to zero only if max.connections.per.ip.overrides property is set",
                    ))
                }
                value if value >= 0 => value as u64,
                _ => return Err(invalid("max.connections.per.ip", "must be at least 0")),
            };
        let connection_creation_rate_max =
            int_at_least(values, "max.connection.creation.rate", crate::limits::CONNECTIONS_DEFAULT as i64, 0)? as u64;
        let quota_window_count = number(values, "quota.window.num", QUOTA_WINDOW_COUNT_DEFAULT)?;
        let quota_window_seconds = number(values, "quota.window.size.seconds", QUOTA_WINDOW_SECONDS_DEFAULT)?;
        for (key, value) in
            [("quota.window.num", quota_window_count), ("quota.window.size.seconds", quota_window_seconds)]
        {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        let producer_id_expiration_ms =
            int_at_least(values, "producer.id.expiration.ms", PRODUCER_ID_EXPIRATION_MS_DEFAULT, 1)?;
        let producer_id_expiration_check_interval_ms = int_at_least(
            values,
            "producer.id.expiration.check.interval.ms",
            PRODUCER_ID_EXPIRATION_CHECK_INTERVAL_MS_DEFAULT,
            1,
        )? as u64;
        let connection_idle_ms = positive("connections.max.idle.ms", crate::limits::CONNECTION_IDLE_MS_DEFAULT)?;
        let fetch_response_bytes_max = positive("fetch.max.bytes", crate::limits::FETCH_RESPONSE_BYTES_DEFAULT)?;
        let fetch_buffered_bytes_max =
            positive("skua.fetch.buffered.bytes.max", crate::limits::FETCH_BUFFERED_BYTES_DEFAULT)?;
        let fetch_session_slots = match number(
            values,
            "max.incremental.fetch.session.cache.slots",
            crate::limits::FETCH_SESSION_SLOTS_DEFAULT as i64,
        )? {
            value if value >= 0 => value as u64,
            _ => return Err(invalid("max.incremental.fetch.session.cache.slots", "must be at least 0")),
        };
        let data_dir = values
            .get("log.dirs")
            .map_or(LOG_DIRS_DEFAULT, String::as_str)
            .split(',')
            .next()
            .unwrap_or(LOG_DIRS_DEFAULT);
        let metrics_address =
            metrics_listener(values.get("skua.metrics.listener").map_or(METRICS_LISTENER_DEFAULT, String::as_str))?;
        let kept_log_configs = kept_log_configs(values)?;
        Ok(Config {
            kept_log_configs,
            compression_zstd_level,
            compression_gzip_level,
            set_keys: values.keys().cloned().collect(),
            listen_address,
            metrics_address,
            advertised_host,
            advertised_port,
            node_id,
            data_dir: PathBuf::from(data_dir.trim()),
            num_partitions,
            auto_create_topics,
            follower_fetch,
            follower_fsync_before_ack,
            rack_aware_reads,
            replica_lag_time_max_ms,
            replication_quota_window_count,
            replication_quota_window_seconds,
            high_watermark_checkpoint_interval_ms,
            log,
            retention_check_interval_ms: number(
                values,
                "log.retention.check.interval.ms",
                RETENTION_CHECK_INTERVAL_MS_DEFAULT,
            )?,
            message_max_bytes,
            socket_request_max_bytes,
            socket_send_buffer_bytes,
            socket_receive_buffer_bytes,
            shard_count,
            write_mode,
            log_format,
            read_cache_bytes,
            recycled_segments_per_log_max: number(
                values,
                "skua.segment.recycle.max",
                engine::limits::RECYCLED_SEGMENTS_PER_LOG_DEFAULT,
            )?,
            inflight_requests_max,
            queued_requests_max,
            queued_request_bytes_max,
            connections_max,
            connections_per_ip_max,
            connections_per_ip_overrides,
            connection_creation_rate_max,
            producer_id_expiration_ms,
            producer_id_expiration_check_interval_ms,
            quota_window_count,
            quota_window_seconds,
            connection_idle_ms,
            fetch_response_bytes_max,
            fetch_buffered_bytes_max,
            fetch_session_slots,
            groups,
            offsets_partitions,
            offsets_segment_bytes,
            default_replication_factor: replication.default_factor,
            min_insync_replicas: replication.min_insync,
            offsets_replication_factor: replication.offsets_factor,
            cluster,
            warnings,
        })
    }

    /// The configuration once the listener is bound to `bound`: with port 0 in `listeners` the
    /// kernel chose the port, and clients must be told the real one. As in Kafka, an advertised
    /// port of 0 (also what `listeners` with port 0 and no `advertised.listeners` gives) becomes
    /// the bound port.
    pub fn bound_to(mut self, bound: SocketAddr) -> Config {
        self.listen_address = bound;
        if self.advertised_port == 0 {
            self.advertised_port = bound.port();
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file() {
        let config = Config::from_properties(&BTreeMap::new()).expect("defaults");
        assert_eq!(config.listen_address.port(), 9092);
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert!(config.auto_create_topics);
        assert_eq!(config.num_partitions, 1);
        assert_eq!(config.log.flush_policy, FlushPolicy::FsyncBeforeAck);
    }

    #[test]
    fn kafka_keys_and_errors() {
        let values = parse_properties(
            "# comment\nlisteners=PLAINTEXT://127.0.0.1:19092\nlog.retention.hours=1\nnum.partitions=3\nlog.dirs=/tmp/a,/tmp/b\n",
        )
        .expect("parse");
        let config = Config::from_properties(&values).expect("valid");
        assert_eq!(config.listen_address.port(), 19092);
        assert_eq!(config.log.retention_ms, 3_600_000);
        assert_eq!(config.num_partitions, 3);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/a"));
        let mut bad = values.clone();
        bad.insert("no.such.key".into(), "1".into());
        assert!(matches!(Config::from_properties(&bad), Err(ConfigError::UnknownKey(_))));
        let mut bad = values;
        bad.insert("num.partitions".into(), "x".into());
        assert!(matches!(Config::from_properties(&bad), Err(ConfigError::Invalid { .. })));
        assert!(matches!(parse_properties("just words"), Err(ConfigError::Syntax { line: 1, .. })));
    }

    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_properties(&pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect())
    }

    fn refusal(pairs: &[(&str, &str)]) -> String {
        match with(pairs) {
            Err(error) => error.to_string(),
            Ok(config) => panic!("{pairs:?} accepted: {config:?}"),
        }
    }

    #[test]
    fn port_zero_is_advertised_as_the_bound_port() {
        let config = Config::from_properties(&BTreeMap::from([(
            "listeners".to_string(),
            "PLAINTEXT://127.0.0.1:0".to_string(),
        )]))
        .expect("valid");
        let bound = config.bound_to("127.0.0.1:40123".parse().expect("address"));
        assert_eq!(bound.listen_address.port(), 40123);
        assert_eq!((bound.advertised_host.as_str(), bound.advertised_port), ("127.0.0.1", 40123));

        let config = Config::from_properties(&BTreeMap::from([
            ("listeners".to_string(), "PLAINTEXT://127.0.0.1:0".to_string()),
            ("advertised.listeners".to_string(), "PLAINTEXT://broker.example:9092".to_string()),
        ]))
        .expect("valid");
        let bound = config.bound_to("127.0.0.1:40123".parse().expect("address"));
        assert_eq!(
            (bound.advertised_host.as_str(), bound.advertised_port),
            ("broker.example", 9092),
            "an advertised port is kept"
        );
    }

    #[test]
    fn listeners_other_than_one_plaintext_are_refused_by_name() {
        assert_eq!(
            refusal(&[("listeners", "SSL://127.0.0.1:9093")]),
            "listeners: listener SSL://127.0.0.1:9093: security protocol SSL is not supported (only PLAINTEXT)"
        );
        assert_eq!(
            refusal(&[("listeners", "SASL_PLAINTEXT://127.0.0.1:9093")]),
            "listeners: listener SASL_PLAINTEXT://127.0.0.1:9093: security protocol SASL_PLAINTEXT is not supported (only PLAINTEXT)"
        );
        assert_eq!(
            refusal(&[("listeners", "PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093")]),
            "listeners: listener SSL://127.0.0.1:9093: security protocol SSL is not supported (only PLAINTEXT)"
        );
        assert_eq!(
            refusal(&[("listeners", "PLAINTEXT://127.0.0.1:9092,OTHER://127.0.0.1:9094"), ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT")]),
            "listeners: only one listener is supported; OTHER://127.0.0.1:9094 would be ignored (serving only PLAINTEXT://127.0.0.1:9092)"
        );
        // A custom name resolves through the map, as in Kafka; to SSL it is refused, to
        // PLAINTEXT it is served; a name the map lacks is refused naming the map.
        let map = ("listener.security.protocol.map", "INTERNAL:PLAINTEXT,SECURE:SSL");
        let config = with(&[("listeners", "INTERNAL://127.0.0.1:19092"), map]).expect("custom PLAINTEXT name");
        assert_eq!(config.listen_address.port(), 19092);
        assert_eq!(
            refusal(&[("listeners", "secure://127.0.0.1:9093"), map]),
            "listeners: listener secure://127.0.0.1:9093: security protocol SSL is not supported (only PLAINTEXT)"
        );
        assert!(refusal(&[("listeners", "PLAINTEXT://127.0.0.1:9092"), map])
            .contains("no security protocol defined for listener PLAINTEXT"));
        assert!(refusal(&[("listener.security.protocol.map", "X:TLS")]).contains("unknown security protocol TLS"));
        // The advertised entry of the served listener's name is the one advertised.
        let config = with(&[
            ("listeners", "INTERNAL://0.0.0.0:19092"),
            ("advertised.listeners", "PLAINTEXT://elsewhere:1,INTERNAL://broker-1:19092"),
            ("listener.security.protocol.map", "INTERNAL:PLAINTEXT,PLAINTEXT:PLAINTEXT"),
        ])
        .expect("advertised");
        assert_eq!((config.advertised_host.as_str(), config.advertised_port), ("broker-1", 19092));
    }

    #[test]
    fn resource_limits_have_kafka_names_and_bounds() {
        let config = with(&[]).expect("defaults");
        assert_eq!(config.fetch_response_bytes_max, 57_671_680, "Kafka's fetch.max.bytes default");
        assert_eq!(config.queued_requests_max, 500, "Kafka's queued.max.requests default");
        assert_eq!(config.connection_idle_ms, 600_000, "Kafka's connections.max.idle.ms default");
        assert_eq!(config.queued_request_bytes_max, crate::limits::QUEUED_REQUEST_BYTES_DEFAULT);
        assert_eq!(with(&[("queued.max.request.bytes", "-1")]).expect("-1").queued_request_bytes_max, u64::MAX);
        assert!(refusal(&[("queued.max.request.bytes", "0")]).contains("queued.max.request.bytes"));
        assert!(refusal(&[("skua.inflight.requests.max", "0")]).contains("between 1 and 1000"));
        assert!(refusal(&[("skua.inflight.requests.max", "1001")]).contains("between 1 and 1000"));
        assert!(refusal(&[("max.connections", "0")]).contains("max.connections"));
        // max.connections.per.ip=0 only with overrides, as Kafka; the overrides' own syntax.
        assert!(refusal(&[("max.connections.per.ip", "0")]).contains("only if max.connections.per.ip.overrides"));
        assert!(refusal(&[("max.connections.per.ip.overrides", "127.0.0.1")]).contains("is not host:count"));
        assert!(refusal(&[("max.connections.per.ip.overrides", "127.0.0.1:-1")]).contains("at least 0"));
        let overrides = connection_overrides(" 127.0.0.2:0, [::1]:7 ,").expect("two pairs");
        assert_eq!(overrides, BTreeMap::from([("127.0.0.2".parse().expect("ip"), 0), ("::1".parse().expect("ip"), 7)]));
        let properties: BTreeMap<String, String> =
            [("max.connections.per.ip", "0"), ("max.connections.per.ip.overrides", "127.0.0.9:4")]
                .into_iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect();
        let config = Config::from_properties(&properties).expect("0 with overrides");
        assert_eq!(config.connections_per_ip_max, 0);
        assert_eq!(config.connections_per_ip_overrides.len(), 1);
    }

    #[test]
    fn the_read_cache_is_a_share_of_memory_unless_set() {
        let memory = machine_memory_bytes().expect("a Linux machine shows its memory");
        assert_eq!(with(&[]).expect("defaults").read_cache_bytes, memory / crate::limits::READ_CACHE_MEMORY_DIVISOR);
        assert_eq!(with(&[("skua.read.cache.bytes", "0")]).expect("none").read_cache_bytes, 0);
        assert_eq!(with(&[("skua.read.cache.bytes", "1048576")]).expect("1 MiB").read_cache_bytes, 1 << 20);
        assert!(refusal(&[("skua.read.cache.bytes", "-1")]).contains("skua.read.cache.bytes"));
    }

    #[test]
    fn the_metrics_listener_is_on_loopback_unless_turned_off() {
        let address = |value: &str| with(&[("skua.metrics.listener", value)]).expect(value).metrics_address;
        assert_eq!(with(&[]).expect("defaults").metrics_address, Some("127.0.0.1:9644".parse().expect("address")));
        assert_eq!(address("http://0.0.0.0:0"), Some("0.0.0.0:0".parse().expect("address")));
        assert_eq!(address("127.0.0.1:9645"), Some("127.0.0.1:9645".parse().expect("address")));
        assert_eq!(address("none"), None);
        assert_eq!(address(""), None);
        assert!(refusal(&[("skua.metrics.listener", "https://127.0.0.1:9644")]).contains("only http"));
        assert!(refusal(&[("skua.metrics.listener", "http://localhost")]).contains("skua.metrics.listener"));
    }

    /// The value a parsed configuration holds for `key`, written as `--help` writes defaults;
    /// `None` for a key whose value the configuration does not keep as one number or word.
    fn shown(config: &Config, key: &str) -> Option<String> {
        let value = match key {
            "listeners" => format!("PLAINTEXT://{}", config.listen_address),
            "node.id" => config.node_id.to_string(),
            "log.dirs" => config.data_dir.display().to_string(),
            "num.partitions" => config.num_partitions.to_string(),
            "auto.create.topics.enable" => config.auto_create_topics.to_string(),
            "skua.replication.follower.fetch.enable" => config.follower_fetch.to_string(),
            "skua.replication.follower.fsync.before.ack" => config.follower_fsync_before_ack.to_string(),
            "replica.selector.class" => {
                if config.rack_aware_reads {
                    RACK_AWARE_REPLICA_SELECTOR.to_string()
                } else {
                    "(unset)".to_string()
                }
            }
            "replica.lag.time.max.ms" => config.replica_lag_time_max_ms.to_string(),
            "replication.quota.window.num" => config.replication_quota_window_count.to_string(),
            "replication.quota.window.size.seconds" => config.replication_quota_window_seconds.to_string(),
            "replica.high.watermark.checkpoint.interval.ms" => config.high_watermark_checkpoint_interval_ms.to_string(),
            "log.segment.bytes" => config.log.segment_bytes.to_string(),
            "log.index.size.max.bytes" => config.log.index_bytes_max.to_string(),
            "compression.zstd.level" => config.compression_zstd_level.to_string(),
            "compression.gzip.level" => config.compression_gzip_level.to_string(),
            "log.roll.ms" => config.log.segment_ms.to_string(),
            "log.roll.jitter.ms" => config.log.segment_jitter_ms.to_string(),
            "log.retention.ms" => config.log.retention_ms.to_string(),
            "log.retention.bytes" => config.log.retention_bytes.to_string(),
            "log.retention.check.interval.ms" => config.retention_check_interval_ms.to_string(),
            "message.max.bytes" => config.message_max_bytes.to_string(),
            topic::MAX_DECOMPRESSED_MESSAGE_BYTES => config.log.decompressed_record_bytes_max.to_string(),
            "log.message.timestamp.before.max.ms" => config.log.timestamp_before_max_ms.to_string(),
            "log.message.timestamp.after.max.ms" => config.log.timestamp_after_max_ms.to_string(),
            "socket.request.max.bytes" => config.socket_request_max_bytes.to_string(),
            "socket.send.buffer.bytes" => {
                config.socket_send_buffer_bytes.map_or("-1".to_string(), |bytes| bytes.to_string())
            }
            "socket.receive.buffer.bytes" => {
                config.socket_receive_buffer_bytes.map_or("-1".to_string(), |bytes| bytes.to_string())
            }
            "queued.max.requests" => config.queued_requests_max.to_string(),
            "queued.max.request.bytes" => config.queued_request_bytes_max.to_string(),
            "max.connections" => config.connections_max.to_string(),
            "max.connections.per.ip" => config.connections_per_ip_max.to_string(),
            "max.connections.per.ip.overrides" => String::new(),
            "max.connection.creation.rate" => config.connection_creation_rate_max.to_string(),
            "quota.window.num" => config.quota_window_count.to_string(),
            "producer.id.expiration.ms" => config.producer_id_expiration_ms.to_string(),
            "producer.id.expiration.check.interval.ms" => config.producer_id_expiration_check_interval_ms.to_string(),
            "quota.window.size.seconds" => config.quota_window_seconds.to_string(),
            "connections.max.idle.ms" => config.connection_idle_ms.to_string(),
            "fetch.max.bytes" => config.fetch_response_bytes_max.to_string(),
            "skua.fetch.buffered.bytes.max" => config.fetch_buffered_bytes_max.to_string(),
            "max.incremental.fetch.session.cache.slots" => config.fetch_session_slots.to_string(),
            "group.initial.rebalance.delay.ms" => config.groups.initial_rebalance_delay_ms.to_string(),
            "group.min.session.timeout.ms" => config.groups.min_session_timeout_ms.to_string(),
            "group.max.session.timeout.ms" => config.groups.max_session_timeout_ms.to_string(),
            "offsets.retention.minutes" => (config.groups.offsets_retention_ms / 60_000).to_string(),
            "offsets.topic.num.partitions" => config.offsets_partitions.to_string(),
            "offsets.topic.segment.bytes" => config.offsets_segment_bytes.to_string(),
            "skua.segment.recycle.max" => config.recycled_segments_per_log_max.to_string(),
            "skua.inflight.requests.max" => config.inflight_requests_max.to_string(),
            "skua.metrics.listener" => {
                config.metrics_address.map_or("none".to_string(), |address| format!("http://{address}"))
            }
            "default.replication.factor" => config.default_replication_factor.to_string(),
            "min.insync.replicas" => config.min_insync_replicas.to_string(),
            "offsets.topic.replication.factor" => config.offsets_replication_factor.to_string(),
            // The cluster keys have values only with process.roles: `config` must have it.
            "broker.session.timeout.ms" => config.cluster.as_ref()?.broker_session_timeout_ms.to_string(),
            "broker.heartbeat.interval.ms" => config.cluster.as_ref()?.broker_heartbeat_interval_ms.to_string(),
            "unclean.leader.election.enable" => config.cluster.as_ref()?.unclean_leader_election.to_string(),
            "auto.leader.rebalance.enable" => config.cluster.as_ref()?.auto_leader_rebalance.to_string(),
            "controller.quorum.election.timeout.ms" => config.cluster.as_ref()?.quorum_election_timeout_ms.to_string(),
            "controller.quorum.fetch.timeout.ms" => config.cluster.as_ref()?.quorum_fetch_timeout_ms.to_string(),
            _ => return None,
        };
        Some(value)
    }

    #[test]
    fn help_shows_the_defaults_the_parser_uses() {
        // The fewest cluster keys a node needs, so that the cluster keys' defaults are there too;
        // the one-node defaults are the same with them (`one_node_defaults_are_unchanged`).
        let config = with(COMBINED_MINIMAL).expect("defaults");
        let mut numbers_and_switches = 0;
        for key in keys() {
            let typed = key.default.parse::<i128>().is_ok() || ["true", "false"].contains(&key.default.as_str());
            match shown(&config, key.name) {
                Some(value) => assert_eq!(value, key.default, "{}: --help and the parser disagree", key.name),
                // A key with a number or a switch as default must be checked, so a new one cannot
                // drift unnoticed: give it an arm in `shown`.
                None => assert!(!typed, "{}: default {} is not checked against the parser", key.name, key.default),
            }
            numbers_and_switches += usize::from(typed);
        }
        // Guards the classification above: were it to see no number, the loop would check nothing.
        // A new key with such a default adds one here and an arm in `shown`.
        assert_eq!(numbers_and_switches, 55, "keys with a number or true/false as default");
    }
    /// The fewest keys a combined (broker and controller) node needs, as in Kafka 4.4.
    const COMBINED_MINIMAL: &[(&str, &str)] = &[
        ("process.roles", "broker,controller"),
        ("node.id", "1"),
        ("controller.quorum.voters", "1@127.0.0.1:9093"),
        ("listeners", "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"),
        ("controller.listener.names", "CONTROLLER"),
    ];

    /// `base` with `changes` applied: `Some` sets a key, `None` removes it.
    fn changed(base: &[(&str, &str)], changes: &[(&str, Option<&str>)]) -> BTreeMap<String, String> {
        let mut values: BTreeMap<String, String> =
            base.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
        for (key, value) in changes {
            match value {
                Some(value) => values.insert(key.to_string(), value.to_string()),
                None => values.remove(*key),
            };
        }
        values
    }

    fn refusal_of(values: &BTreeMap<String, String>) -> String {
        match Config::from_properties(values) {
            Err(error) => error.to_string(),
            Ok(config) => panic!("{values:?} accepted: {config:?}"),
        }
    }

    #[test]
    fn one_node_defaults_are_unchanged() {
        let config = with(&[]).expect("defaults");
        assert!(config.cluster.is_none(), "no process.roles: the one-node broker");
        assert!(config.warnings.is_empty());
        let combined = with(COMBINED_MINIMAL).expect("combined");
        assert_eq!(combined.listen_address, config.listen_address);
        assert_eq!(combined.node_id, config.node_id);
    }

    #[test]
    fn defaults_are_kafkas() {
        // Each checked against Kafka 4.4's `KafkaConfig.configDef()` (the jars in .cache).
        let config = with(COMBINED_MINIMAL).expect("combined");
        // ReplicationConfigs.DEFAULT_REPLICATION_FACTOR_DEFAULT
        assert_eq!(config.default_replication_factor, 1);
        // ServerLogConfigs.MIN_IN_SYNC_REPLICAS_DEFAULT
        assert_eq!(config.min_insync_replicas, 1);
        // GroupCoordinatorConfig.OFFSETS_TOPIC_REPLICATION_FACTOR_DEFAULT
        assert_eq!(config.offsets_replication_factor, 3);
        let cluster = config.cluster.expect("process.roles set");
        // KRaftConfigs.BROKER_SESSION_TIMEOUT_MS_DEFAULT
        assert_eq!(cluster.broker_session_timeout_ms, 9_000);
        // KRaftConfigs.BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT
        assert_eq!(cluster.broker_heartbeat_interval_ms, 2_000);
        // ReplicationConfigs.UNCLEAN_LEADER_ELECTION_ENABLE_DEFAULT
        assert!(!cluster.unclean_leader_election);
        // ReplicationConfigs.AUTO_LEADER_REBALANCE_ENABLE_DEFAULT
        assert!(cluster.auto_leader_rebalance);
        // QuorumConfig.DEFAULT_QUORUM_ELECTION_TIMEOUT_MS
        assert_eq!(cluster.quorum_election_timeout_ms, 1_000);
        // QuorumConfig.DEFAULT_QUORUM_FETCH_TIMEOUT_MS
        assert_eq!(cluster.quorum_fetch_timeout_ms, 2_000);
        // broker.rack: Kafka's default is null (no rack).
        assert_eq!(cluster.rack, None);
        assert!(cluster.bootstrap_servers.is_empty());
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    }

    #[test]
    fn every_cluster_key_is_parsed() {
        let values = changed(
            COMBINED_MINIMAL,
            &[
                ("node.id", Some("2")),
                ("controller.quorum.voters", Some("1@ctl-1:9093, 2@[::1]:19093,3@10.0.0.3:9093")),
                ("controller.quorum.bootstrap.servers", Some("ctl-1:9093,ctl-2:9093")),
                ("listeners", Some("PLAINTEXT://0.0.0.0:19092,controller://127.0.0.1:19093")),
                ("controller.listener.names", Some("controller")),
                ("advertised.listeners", Some("PLAINTEXT://broker-2:19092,CONTROLLER://ctl-2:19093")),
                ("broker.rack", Some("rack-a")),
                ("default.replication.factor", Some("3")),
                ("min.insync.replicas", Some("2")),
                ("offsets.topic.replication.factor", Some("5")),
                ("broker.session.timeout.ms", Some("12000")),
                ("broker.heartbeat.interval.ms", Some("1500")),
                ("unclean.leader.election.enable", Some("TRUE")),
                ("auto.leader.rebalance.enable", Some(" false ")),
                ("controller.quorum.election.timeout.ms", Some("1500")),
                ("controller.quorum.fetch.timeout.ms", Some("3000")),
            ],
        );
        let config = Config::from_properties(&values).expect("valid");
        assert_eq!(config.node_id, 2);
        assert_eq!(config.listen_address, "0.0.0.0:19092".parse().expect("address"));
        assert_eq!((config.advertised_host.as_str(), config.advertised_port), ("broker-2", 19092));
        assert_eq!(
            (config.default_replication_factor, config.min_insync_replicas, config.offsets_replication_factor),
            (3, 2, 5)
        );
        let cluster = config.cluster.expect("process.roles set");
        assert_eq!(cluster.roles, ProcessRoles::Combined);
        let host_port = |host: &str, port| HostPort { host: host.to_string(), port };
        assert_eq!(
            cluster.voters,
            vec![
                Voter { id: 1, address: host_port("ctl-1", 9093) },
                Voter { id: 2, address: host_port("::1", 19093) },
                Voter { id: 3, address: host_port("10.0.0.3", 9093) },
            ]
        );
        assert_eq!(cluster.bootstrap_servers, vec![host_port("ctl-1", 9093), host_port("ctl-2", 9093)]);
        assert_eq!(
            cluster.controller_listener,
            Some(ControllerListener {
                name: "CONTROLLER".to_string(),
                listen_address: "127.0.0.1:19093".parse().expect("address"),
                advertised: host_port("ctl-2", 19093),
            })
        );
        assert_eq!(cluster.rack.as_deref(), Some("rack-a"));
        assert_eq!((cluster.broker_session_timeout_ms, cluster.broker_heartbeat_interval_ms), (12_000, 1_500));
        assert!(cluster.unclean_leader_election, "TRUE: Kafka's booleans ignore case");
        assert!(!cluster.auto_leader_rebalance);
        assert_eq!((cluster.quorum_election_timeout_ms, cluster.quorum_fetch_timeout_ms), (1_500, 3_000));
    }

    #[test]
    fn each_role_is_parsed() {
        // Broker-only: its id is not a voter, no controller listener in listeners (Kafka's rule);
        // `controller.listener.names` still says how to reach the controllers.
        let broker = Config::from_properties(&changed(
            COMBINED_MINIMAL,
            &[
                ("process.roles", Some("broker")),
                ("node.id", Some("4")),
                ("listeners", Some("PLAINTEXT://127.0.0.1:9092")),
            ],
        ))
        .expect("broker-only");
        let cluster = broker.cluster.expect("process.roles set");
        assert_eq!(cluster.roles, ProcessRoles::Broker);
        assert_eq!(cluster.controller_listener, None);
        // Controller-only: it binds and announces its controller listener.
        let controller = Config::from_properties(&changed(
            COMBINED_MINIMAL,
            &[("process.roles", Some("controller")), ("listeners", Some("CONTROLLER://127.0.0.1:9093"))],
        ))
        .expect("controller-only");
        assert_eq!(controller.listen_address.port(), 9093);
        let cluster = controller.cluster.expect("process.roles set");
        assert_eq!(cluster.roles, ProcessRoles::Controller);
        assert_eq!(cluster.controller_listener.map(|listener| listener.advertised.port), Some(9093));
        // Kafka's spellings: either order, blanks, a repeated role; broker.id for node.id;
        // bootstrap servers instead of voters (then no voter check applies).
        for roles in ["controller,broker", " broker , controller ", "broker,controller,broker"] {
            let config =
                Config::from_properties(&changed(COMBINED_MINIMAL, &[("process.roles", Some(roles))])).expect(roles);
            assert_eq!(config.cluster.map(|cluster| cluster.roles), Some(ProcessRoles::Combined), "{roles}");
        }
        let config = Config::from_properties(&changed(
            COMBINED_MINIMAL,
            &[
                ("node.id", None),
                ("broker.id", Some("7")),
                ("controller.quorum.voters", None),
                ("controller.quorum.bootstrap.servers", Some("127.0.0.1:9093")),
            ],
        ))
        .expect("broker.id and bootstrap servers");
        assert_eq!(config.node_id, 7);
        assert!(config.cluster.expect("process.roles set").voters.is_empty());
    }

    /// Kafka 4.x's `config/server.properties` (combined mode), as it ships, with the data
    /// directory under /tmp and the keys Skua has no use for.
    const KAFKA_SERVER_PROPERTIES: &str = "\
############################# Server Basics #############################

# The role of this server. Setting this puts us in KRaft mode
process.roles=broker,controller

# The node id associated with this instance's roles
node.id=1

# List of controller endpoints used connect to the controller cluster
controller.quorum.bootstrap.servers=localhost:9093

############################# Socket Server Settings #############################

# The address the socket server listens on.
# Combined nodes (i.e. those with `process.roles=broker,controller`) must list the controller listener here at a minimum.
listeners=PLAINTEXT://:9092,CONTROLLER://:9093

# Name of listener used for communication between brokers.
inter.broker.listener.name=PLAINTEXT

# Listener name, hostname and port the broker or the controller will advertise to clients.
advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093

# A comma-separated list of the names of the listeners used by the controller.
controller.listener.names=CONTROLLER

# Maps listener names to security protocols, the default is for them to be the same.
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL

num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600

############################# Log Basics #############################

log.dirs=/tmp/kraft-combined-logs
num.partitions=1
num.recovery.threads.per.data.dir=1

############################# Internal Topic Settings  #############################
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1

############################# Log Retention Policy #############################
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
";

    #[test]
    fn kafkas_combined_server_properties_parses() {
        let config =
            Config::from_properties(&parse_properties(KAFKA_SERVER_PROPERTIES).expect("syntax")).expect("valid");
        assert_eq!(config.node_id, 1);
        assert_eq!(config.listen_address, "0.0.0.0:9092".parse().expect("address"));
        assert_eq!((config.advertised_host.as_str(), config.advertised_port), ("localhost", 9092));
        assert_eq!(config.offsets_replication_factor, 1);
        assert_eq!(config.log.retention_ms, 168 * 3_600_000);
        let cluster = config.cluster.expect("process.roles set");
        assert_eq!(cluster.roles, ProcessRoles::Combined);
        assert_eq!(cluster.bootstrap_servers, vec![HostPort { host: "localhost".to_string(), port: 9093 }]);
        let controller = cluster.controller_listener.expect("a combined node has a controller listener");
        assert_eq!(controller.listen_address, "0.0.0.0:9093".parse().expect("address"));
        assert_eq!(controller.advertised, HostPort { host: "localhost".to_string(), port: 9093 });
        let unused = [
            "inter.broker.listener.name",
            "num.io.threads",
            "num.network.threads",
            "num.recovery.threads.per.data.dir",
            "share.coordinator.state.topic.min.isr",
            "share.coordinator.state.topic.replication.factor",
            "transaction.state.log.min.isr",
            "transaction.state.log.replication.factor",
        ];
        assert_eq!(config.warnings.len(), unused.len(), "{:#?}", config.warnings);
        for (warning, key) in config.warnings.iter().zip(unused) {
            assert!(warning.starts_with(&format!("{key}: ")), "{warning}");
        }
    }

    #[test]
    fn kafka_keys_skua_does_not_use_warn_once_and_others_are_refused() {
        let config = with(&[("num.network.threads", "3"), ("log.cleaner.threads", "2")]).expect("accepted");
        assert_eq!(
            config.warnings,
            vec![
                "log.cleaner.threads: a Kafka setting Skua has no use for; ignored".to_string(),
                "num.network.threads: a Kafka setting Skua has no use for; ignored".to_string(),
            ]
        );
        assert!(with(&[("listener.name.controller.ssl.keystore.location", "/x")]).is_ok(), "per-listener key");
        assert!(
            matches!(with(&[("num.network.thread", "3")]), Err(ConfigError::UnknownKey(key)) if key.ends_with("thread"))
        );
        let mut values = changed(COMBINED_MINIMAL, &[]);
        values.insert("made.up.key".into(), "1".into());
        assert!(matches!(Config::from_properties(&values), Err(ConfigError::UnknownKey(key)) if key == "made.up.key"));
        // Every key Skua understands by a Kafka name is a Kafka key (the others are skua.*).
        for key in keys() {
            assert!(key.name.starts_with("skua.") || kafka_keys::is_kafka_key(key.name), "{}", key.name);
        }
    }

    #[test]
    fn cluster_keys_without_process_roles() {
        // The quorum keys would make a node meant for a cluster start alone: refused.
        for key in cluster::QUORUM_KEYS {
            let message = refusal(&[(key, "1@127.0.0.1:9093")]);
            assert!(message.starts_with(&format!("{key}: set without process.roles")), "{message}");
        }
        // The tuning keys have no effect on one node: said once each.
        let config = with(&[("broker.rack", "a"), ("unclean.leader.election.enable", "true")]).expect("accepted");
        assert_eq!(
            config.warnings,
            vec![
                "broker.rack: has no effect without process.roles (one-node broker); ignored".to_string(),
                "unclean.leader.election.enable: has no effect without process.roles (one-node broker); ignored"
                    .to_string(),
            ]
        );
        // A controller listener without process.roles is one listener too many, as before.
        assert!(refusal(&[("listeners", "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093")])
            .contains("no security protocol defined for listener CONTROLLER"));
    }

    /// Asserts that the minimal combined configuration with `changes` is refused with a message
    /// that starts with `expected` (which names the key first).
    #[track_caller]
    fn refused(changes: &[(&str, Option<&str>)], expected: &str) {
        let message = refusal_of(&changed(COMBINED_MINIMAL, changes));
        assert!(message.starts_with(expected), "{changes:?}:\n  got      {message}\n  expected {expected}");
    }

    /// Kafka 4.4's refusals (tried on its `KafkaConfig`), each with a Skua message naming the
    /// key; and Skua's own, where it is stricter (see `cluster`'s table).
    #[test]
    fn refusals_name_their_key() {
        // Kafka: "Missing required configuration "controller.listener.names"".
        refused(&[("controller.listener.names", None)], "controller.listener.names: required with process.roles");
        refused(&[("controller.listener.names", Some(""))], "controller.listener.names: must not be empty");
        // Kafka: "the node id 2 must be included in the set of voters".
        refused(
            &[
                ("process.roles", Some("controller")),
                ("node.id", Some("2")),
                ("listeners", Some("CONTROLLER://127.0.0.1:9093")),
            ],
            "controller.quorum.voters: node.id 2 has the controller role (controller) but is not among the voters",
        );
        refused(
            &[("node.id", Some("2"))],
            "controller.quorum.voters: node.id 2 has the controller role (broker,controller)",
        );
        // Kafka: "If process.roles contains just the 'broker' role, the node id 1 must not be
        // included in the set of voters".
        refused(
            &[("process.roles", Some("broker")), ("listeners", Some("PLAINTEXT://127.0.0.1:9092"))],
            "controller.quorum.voters: node.id 1 is a voter but process.roles=broker",
        );
        // Kafka: "Missing required configuration "node.id"".
        refused(&[("node.id", None)], "node.id: required with process.roles");
        // Kafka: "Value must be at least 0".
        refused(&[("node.id", Some("-1"))], "node.id: -1 is negative");
        refused(&[("node.id", None), ("broker.id", Some("-1"))], "broker.id: -1 is negative");
        // Kafka: "`node.id` and `broker.id` must be set to the same value".
        refused(&[("broker.id", Some("3"))], "node.id: node.id 1 and broker.id 3 differ");
        // Kafka: "String must be one of: broker, controller"; "must not be empty".
        refused(&[("process.roles", Some("BROKER"))], "process.roles: \"BROKER\" is not a role");
        refused(&[("process.roles", Some("zookeeper"))], "process.roles: \"zookeeper\" is not a role");
        refused(&[("process.roles", Some(""))], "process.roles: must not be empty");
        // Kafka: "either controller.quorum.bootstrap.servers must contain ... or
        // controller.quorum.voters must contain ...".
        refused(
            &[("controller.quorum.voters", None)],
            "controller.quorum.voters: with process.roles, controller.quorum.voters",
        );
        refused(&[("controller.quorum.voters", Some(""))], "controller.quorum.voters: with process.roles");
        // Kafka: "Each entry should be in the form `{id}@{host}:{port}`".
        refused(
            &[("controller.quorum.voters", Some("127.0.0.1:9093"))],
            "controller.quorum.voters: \"127.0.0.1:9093\" is not of the form {id}@{host}:{port}",
        );
        refused(
            &[("controller.quorum.voters", Some("1@localhost"))],
            "controller.quorum.voters: \"1@localhost\" is not of the form",
        );
        refused(
            &[("controller.quorum.voters", Some("1@localhost:abc"))],
            "controller.quorum.voters: \"1@localhost:abc\" is not of the form",
        );
        refused(
            &[("controller.quorum.voters", Some("1@localhost:70000"))],
            "controller.quorum.voters: \"1@localhost:70000\" is not of the form",
        );
        refused(
            &[("controller.quorum.voters", Some("1@localhost:9093,"))],
            "controller.quorum.voters: \"\" is not of the form",
        );
        // Kafka: "Failed to parse voter ID as an integer from x".
        refused(
            &[("controller.quorum.voters", Some("x@localhost:9093"))],
            "controller.quorum.voters: \"x@localhost:9093\": voter id \"x\" is not a number",
        );
        // Skua, stricter: Kafka takes these and then could never reach or count the voter.
        refused(
            &[("controller.quorum.voters", Some("1@a:9093,1@b:9093"))],
            "controller.quorum.voters: voter id 1 appears twice",
        );
        refused(
            &[("controller.quorum.voters", Some("-1@a:9093,1@b:9093"))],
            "controller.quorum.voters: \"-1@a:9093\": a voter id is a node.id",
        );
        refused(
            &[("controller.quorum.voters", Some("1@:9093"))],
            "controller.quorum.voters: \"1@:9093\": a host and a port other than 0",
        );
        refused(
            &[("controller.quorum.voters", Some("1@a:0"))],
            "controller.quorum.voters: \"1@a:0\": a host and a port other than 0",
        );
        // Kafka: "Each entry should be in the form "{host}:{port}"".
        refused(
            &[("controller.quorum.bootstrap.servers", Some("a"))],
            "controller.quorum.bootstrap.servers: \"a\" is not of the form {host}:{port}",
        );
        // Kafka: "The listeners config must only contain KRaft controller listeners from
        // controller.listener.names when process.roles=controller".
        refused(
            &[("process.roles", Some("controller"))],
            "listeners: with process.roles=controller only controller listeners",
        );
        // Kafka: "controller.listener.names must contain at least one value appearing in
        // the 'listeners' configuration when running the KRaft controller role".
        refused(
            &[("listeners", Some("PLAINTEXT://127.0.0.1:9092"))],
            "controller.listener.names: a node with the controller role needs one of these names in listeners",
        );
        // Kafka: "controller.listener.names must not contain a value appearing in the
        // 'listeners' configuration when running KRaft with just the broker role".
        refused(
            &[("process.roles", Some("broker")), ("node.id", Some("4"))],
            "controller.listener.names: must not name a listener in listeners on a broker-only node (CONTROLLER",
        );
        // Kafka: "There must be at least one broker advertised listener. Perhaps all
        // listeners appear in controller.listener.names?"
        refused(
            &[("listeners", Some("CONTROLLER://127.0.0.1:9093"))],
            "listeners: a node with the broker role needs a client listener",
        );
        refused(
            &[("advertised.listeners", Some("CONTROLLER://h:9093"))],
            "advertised.listeners: every entry names a controller listener",
        );
        // Kafka: "Controller listener with name CONTROLLER defined in
        // controller.listener.names not found in listener.security.protocol.map".
        refused(
            &[("listener.security.protocol.map", Some("PLAINTEXT:PLAINTEXT"))],
            "listener.security.protocol.map: controller listener CONTROLLER (controller.listener.names) has no",
        );
        // Kafka serves SSL controllers; Skua refuses by name, as for client listeners.
        refused(
            &[("listener.security.protocol.map", Some("PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"))],
            "listeners: listener CONTROLLER://127.0.0.1:9093: security protocol SSL is not supported (only PLAINTEXT)",
        );
        // Kafka: "Each listener must have a different port"; "... a different name".
        refused(
            &[("listeners", Some("PLAINTEXT://127.0.0.1:9093,CONTROLLER://127.0.0.1:9093"))],
            "listeners: PLAINTEXT://127.0.0.1:9093 and CONTROLLER://127.0.0.1:9093 have the same port",
        );
        refused(
            &[("listeners", Some("PLAINTEXT://127.0.0.1:9092,PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093"))],
            "listeners: listener name PLAINTEXT appears twice",
        );
        // Skua serves one controller listener (Kafka serves several).
        refused(
            &[
                ("listeners", Some("PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,C2://127.0.0.1:9094")),
                ("controller.listener.names", Some("CONTROLLER,C2")),
            ],
            "listeners: only one controller listener is supported; C2://127.0.0.1:9094 would be ignored",
        );
        // Kafka's validators: `atLeast(0)`, `atLeast(1)`, INT and SHORT types, booleans.
        refused(
            &[("controller.quorum.election.timeout.ms", Some("-1"))],
            "controller.quorum.election.timeout.ms: must be at least 0",
        );
        refused(
            &[("controller.quorum.fetch.timeout.ms", Some("-1"))],
            "controller.quorum.fetch.timeout.ms: must be at least 0",
        );
        refused(&[("broker.session.timeout.ms", Some("-1"))], "broker.session.timeout.ms: must be at least 0");
        refused(
            &[("broker.heartbeat.interval.ms", Some("x"))],
            "broker.heartbeat.interval.ms: \"x\" is not a valid number",
        );
        refused(&[("min.insync.replicas", Some("0"))], "min.insync.replicas: 0: must be at least 1");
        refused(
            &[("offsets.topic.replication.factor", Some("0"))],
            "offsets.topic.replication.factor: 0: must be at least 1",
        );
        refused(
            &[("offsets.topic.replication.factor", Some("40000"))],
            "offsets.topic.replication.factor: \"40000\" is not a valid number",
        );
        refused(&[("default.replication.factor", Some("0"))], "default.replication.factor: 0: must be at least 1");
        refused(
            &[("unclean.leader.election.enable", Some("yes"))],
            "unclean.leader.election.enable: \"yes\" is not true or false",
        );
        refused(
            &[("auto.leader.rebalance.enable", Some("1"))],
            "auto.leader.rebalance.enable: \"1\" is not true or false",
        );
    }

    #[test]
    fn a_heartbeat_slower_than_the_session_is_accepted_with_a_warning() {
        // Kafka accepts it; every broker would be fenced between two heartbeats.
        let values = changed(COMBINED_MINIMAL, &[("broker.heartbeat.interval.ms", Some("9000"))]);
        let config = Config::from_properties(&values).expect("accepted, as by Kafka");
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
        assert!(config.warnings[0]
            .starts_with("broker.heartbeat.interval.ms (9000) is not below broker.session.timeout.ms (9000)"));
    }

    #[test]
    fn advertised_controller_entries_are_for_the_other_nodes() {
        // Kafka 4.x accepts the controller listener in advertised.listeners (its own
        // server.properties does so): it is where the other nodes reach the controller; clients
        // are told the client listener's entry.
        let values = changed(
            COMBINED_MINIMAL,
            &[("advertised.listeners", Some("CONTROLLER://ctl:9093,PLAINTEXT://broker:9092"))],
        );
        let config = Config::from_properties(&values).expect("valid");
        assert_eq!((config.advertised_host.as_str(), config.advertised_port), ("broker", 9092));
        let controller = config.cluster.and_then(|cluster| cluster.controller_listener).expect("controller");
        assert_eq!(controller.advertised, HostPort { host: "ctl".to_string(), port: 9093 });
        // Without an entry of its own, a listener is advertised as bound (loopback for 0.0.0.0).
        let values =
            changed(COMBINED_MINIMAL, &[("listeners", Some("PLAINTEXT://127.0.0.1:9092,CONTROLLER://0.0.0.0:9093"))]);
        let controller = Config::from_properties(&values)
            .expect("valid")
            .cluster
            .and_then(|cluster| cluster.controller_listener)
            .expect("controller");
        assert_eq!(controller.advertised, HostPort { host: "127.0.0.1".to_string(), port: 9093 });
    }
}
