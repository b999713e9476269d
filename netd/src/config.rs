//! Broker configuration: a `server.properties`-style file with Kafka's key names where they exist,
//! Skua keys for what Kafka has no name for, `--override key=value`, and embedded defaults so the
//! broker runs with no file at all.
//!
//! Owns: parsing and validating configuration. Knows nothing of sockets or shards.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use engine::{FlushPolicy, LogConfig, WriteMode};

// The default of every key, written once: the parser falls back to these and `--help` prints them
// (through `keys`). Defaults that other modules need live beside them (`crate::limits`,
// `engine::limits`, [`SECURITY_PROTOCOL_MAP_DEFAULT`]); the rest are here.

/// Kafka's `listeners` default, made explicit (Kafka binds every interface; Skua only loopback).
pub const LISTENERS_DEFAULT: &str = "PLAINTEXT://127.0.0.1:9092";
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
pub const WRITE_MODE_DEFAULT: &str = "direct";
pub const FSYNC_POLICY_DEFAULT: &str = "fsync-before-ack";

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
            "where to listen: one listener, security protocol PLAINTEXT only (port 0: a free port, see --port-file)",
        ),
        key(
            "listener.security.protocol.map",
            SECURITY_PROTOCOL_MAP_DEFAULT,
            "listener name -> security protocol (custom names such as INTERNAL:PLAINTEXT)",
        ),
        key("advertised.listeners", "(listeners)", "the address clients are told to connect to"),
        key("node.id", NODE_ID_DEFAULT, "this broker's id in Metadata responses"),
        key("log.dirs", LOG_DIRS_DEFAULT, "data directory (one directory; the first of a list is used)"),
        key("num.partitions", NUM_PARTITIONS_DEFAULT, "partitions of an auto-created topic or of CreateTopics with -1"),
        key("auto.create.topics.enable", AUTO_CREATE_TOPICS_DEFAULT, "create unknown topics on Metadata/Produce"),
        key("log.segment.bytes", engine::limits::SEGMENT_BYTES_DEFAULT, "segment size before a roll"),
        key(
            "log.roll.ms",
            engine::limits::SEGMENT_MS_DEFAULT,
            "segment age before a roll (log.roll.hours also accepted)",
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
            "open connections per client address; more are closed at once",
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
            "skua.segment.recycle.max",
            engine::limits::RECYCLED_SEGMENTS_PER_LOG_DEFAULT,
            "segment files retention removed that each partition keeps to reuse as new segments (0: unlink them)",
        ),
        key("skua.fsync.policy", FSYNC_POLICY_DEFAULT, "fsync-before-ack or interval (Kafka's log.flush.interval.*)"),
        key(
            "skua.inflight.requests.max",
            crate::limits::INFLIGHT_REQUESTS_DEFAULT,
            "requests one connection may have in flight (pipelining, 1 to 1000)",
        ),
    ]
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen_address: SocketAddr,
    pub advertised_host: String,
    pub advertised_port: u16,
    pub node_id: i32,
    pub data_dir: PathBuf,
    pub num_partitions: i32,
    pub auto_create_topics: bool,
    pub log: LogConfig,
    pub retention_check_interval_ms: u64,
    pub message_max_bytes: usize,
    pub socket_request_max_bytes: usize,
    pub shard_count: usize,
    pub write_mode: WriteMode,
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
    /// `connections.max.idle.ms`.
    pub connection_idle_ms: u64,
    /// `fetch.max.bytes`: the cap on a Fetch request's `max_bytes`.
    pub fetch_response_bytes_max: u64,
    /// `skua.fetch.buffered.bytes.max`.
    pub fetch_buffered_bytes_max: u64,
    pub groups: GroupConfig,
    pub offsets_partitions: i32,
    pub offsets_segment_bytes: u64,
    pub timestamp_bounds: crate::codec::produce_policy::TimestampBounds,
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

fn number<T: std::str::FromStr>(values: &BTreeMap<String, String>, key: &str, default: T) -> Result<T, ConfigError> {
    match values.get(key) {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| invalid(key, format!("{text:?} is not a valid number"))),
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

/// The one listener Skua serves: refuses what it would not serve (another security protocol, a
/// second listener) rather than start and silently ignore it.
fn the_listener(text: &str, protocols: &BTreeMap<String, String>) -> Result<Listener, ConfigError> {
    let mut listeners = parse_listeners("listeners", text, protocols)?;
    if let Some(listener) = listeners.iter().find(|listener| listener.protocol != "PLAINTEXT") {
        return Err(invalid(
            "listeners",
            format!(
                "listener {}: security protocol {} is not supported (only PLAINTEXT)",
                listener.text, listener.protocol
            ),
        ));
    }
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

impl Config {
    /// Builds the configuration from properties (file, then overrides) on top of the defaults.
    pub fn from_properties(values: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let known = keys();
        let aliases = ["log.roll.hours", "log.retention.hours", "log.retention.minutes", "broker.id"];
        for key in values.keys() {
            if !known.iter().any(|known| known.name == key) && !aliases.contains(&key.as_str()) {
                return Err(ConfigError::UnknownKey(key.clone()));
            }
        }
        let protocols = security_protocol_map(
            values.get("listener.security.protocol.map").map_or(SECURITY_PROTOCOL_MAP_DEFAULT, String::as_str),
        )?;
        let listeners = values.get("listeners").map_or(LISTENERS_DEFAULT, String::as_str);
        let listener = the_listener(listeners, &protocols)?;
        let (host, port) = (listener.host.clone(), listener.port);
        let bind_host = if host.is_empty() { "0.0.0.0".to_string() } else { host.clone() };
        let listen_address: SocketAddr = format!("{bind_host}:{port}")
            .parse()
            .map_err(|_| invalid("listeners", format!("{listeners:?} must name an IP address and port")))?;
        let (advertised_host, advertised_port) = match values.get("advertised.listeners") {
            Some(text) => {
                // The entry of the served listener's name, else the first.
                let advertised = parse_listeners("advertised.listeners", text, &protocols)?;
                let chosen = advertised.iter().find(|entry| entry.name == listener.name).unwrap_or(&advertised[0]);
                (chosen.host.clone(), chosen.port)
            }
            None if host.is_empty() || host == "0.0.0.0" => ("127.0.0.1".to_string(), port),
            None => (host, port),
        };
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
        let log = LogConfig {
            segment_bytes: number(values, "log.segment.bytes", engine::limits::SEGMENT_BYTES_DEFAULT)?,
            segment_ms,
            retention_ms,
            retention_bytes: number(values, "log.retention.bytes", engine::limits::RETENTION_BYTES_DEFAULT)?,
            flush_policy,
            ..LogConfig::default()
        };
        log.validate().map_err(|error| invalid("log.*", error.to_string()))?;
        let write_mode = WriteMode::parse(values.get("skua.write.mode").map_or(WRITE_MODE_DEFAULT, String::as_str))
            .map_err(|error| invalid("skua.write.mode", error.to_string()))?;
        let cores = std::thread::available_parallelism().map_or(1, |count| count.get());
        let shard_count = number(values, "skua.shard.count", cores)?;
        if !(1..=crate::limits::SHARD_COUNT_MAX).contains(&shard_count) {
            return Err(invalid(
                "skua.shard.count",
                format!("must be between 1 and {}", crate::limits::SHARD_COUNT_MAX),
            ));
        }
        let num_partitions = number(values, "num.partitions", NUM_PARTITIONS_DEFAULT)?;
        if num_partitions < 1 {
            return Err(invalid("num.partitions", "must be at least 1"));
        }
        let auto_create_topics = match values.get("auto.create.topics.enable").map(String::as_str) {
            None => AUTO_CREATE_TOPICS_DEFAULT,
            Some("true") => true,
            Some("false") => false,
            Some(other) => return Err(invalid("auto.create.topics.enable", format!("{other:?} is not true or false"))),
        };
        let node_id = match values.get("node.id") {
            Some(_) => number(values, "node.id", NODE_ID_DEFAULT)?,
            None => number(values, "broker.id", NODE_ID_DEFAULT)?,
        };
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
        let connections_per_ip_max = positive("max.connections.per.ip", crate::limits::CONNECTIONS_DEFAULT)?;
        let connection_idle_ms = positive("connections.max.idle.ms", crate::limits::CONNECTION_IDLE_MS_DEFAULT)?;
        let fetch_response_bytes_max = positive("fetch.max.bytes", crate::limits::FETCH_RESPONSE_BYTES_DEFAULT)?;
        let fetch_buffered_bytes_max =
            positive("skua.fetch.buffered.bytes.max", crate::limits::FETCH_BUFFERED_BYTES_DEFAULT)?;
        let timestamp_bounds = crate::codec::produce_policy::TimestampBounds {
            before_max_ms: number(values, "log.message.timestamp.before.max.ms", TIMESTAMP_BEFORE_MAX_MS_DEFAULT)?,
            after_max_ms: number(values, "log.message.timestamp.after.max.ms", TIMESTAMP_AFTER_MAX_MS_DEFAULT)?,
        };
        if timestamp_bounds.before_max_ms < 0 || timestamp_bounds.after_max_ms < 0 {
            return Err(invalid("log.message.timestamp.*.max.ms", "must be at least 0"));
        }
        let data_dir = values
            .get("log.dirs")
            .map_or(LOG_DIRS_DEFAULT, String::as_str)
            .split(',')
            .next()
            .unwrap_or(LOG_DIRS_DEFAULT);
        Ok(Config {
            listen_address,
            advertised_host,
            advertised_port,
            node_id,
            data_dir: PathBuf::from(data_dir.trim()),
            num_partitions,
            auto_create_topics,
            log,
            retention_check_interval_ms: number(
                values,
                "log.retention.check.interval.ms",
                RETENTION_CHECK_INTERVAL_MS_DEFAULT,
            )?,
            message_max_bytes,
            socket_request_max_bytes,
            shard_count,
            write_mode,
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
            connection_idle_ms,
            fetch_response_bytes_max,
            fetch_buffered_bytes_max,
            groups,
            offsets_partitions,
            offsets_segment_bytes,
            timestamp_bounds,
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
            "log.segment.bytes" => config.log.segment_bytes.to_string(),
            "log.roll.ms" => config.log.segment_ms.to_string(),
            "log.retention.ms" => config.log.retention_ms.to_string(),
            "log.retention.bytes" => config.log.retention_bytes.to_string(),
            "log.retention.check.interval.ms" => config.retention_check_interval_ms.to_string(),
            "message.max.bytes" => config.message_max_bytes.to_string(),
            "log.message.timestamp.before.max.ms" => config.timestamp_bounds.before_max_ms.to_string(),
            "log.message.timestamp.after.max.ms" => config.timestamp_bounds.after_max_ms.to_string(),
            "socket.request.max.bytes" => config.socket_request_max_bytes.to_string(),
            "queued.max.requests" => config.queued_requests_max.to_string(),
            "queued.max.request.bytes" => config.queued_request_bytes_max.to_string(),
            "max.connections" => config.connections_max.to_string(),
            "max.connections.per.ip" => config.connections_per_ip_max.to_string(),
            "connections.max.idle.ms" => config.connection_idle_ms.to_string(),
            "fetch.max.bytes" => config.fetch_response_bytes_max.to_string(),
            "skua.fetch.buffered.bytes.max" => config.fetch_buffered_bytes_max.to_string(),
            "group.initial.rebalance.delay.ms" => config.groups.initial_rebalance_delay_ms.to_string(),
            "group.min.session.timeout.ms" => config.groups.min_session_timeout_ms.to_string(),
            "group.max.session.timeout.ms" => config.groups.max_session_timeout_ms.to_string(),
            "offsets.retention.minutes" => (config.groups.offsets_retention_ms / 60_000).to_string(),
            "offsets.topic.num.partitions" => config.offsets_partitions.to_string(),
            "offsets.topic.segment.bytes" => config.offsets_segment_bytes.to_string(),
            "skua.segment.recycle.max" => config.recycled_segments_per_log_max.to_string(),
            "skua.inflight.requests.max" => config.inflight_requests_max.to_string(),
            _ => return None,
        };
        Some(value)
    }

    #[test]
    fn help_shows_the_defaults_the_parser_uses() {
        let config = with(&[]).expect("defaults");
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
        assert_eq!(numbers_and_switches, 27, "keys with a number or true/false as default");
    }
}
