//! The cluster part of the broker configuration: Kafka's KRaft keys (`process.roles`, the
//! controller quorum, the controller listener, broker liveness and leader-election switches),
//! parsed and checked with Kafka 4.4's defaults and refusals.
//!
//! Owns: [`ClusterConfig`] and the rules that tie `process.roles`, `node.id`,
//! `controller.quorum.voters` and the listeners together. Knows nothing of sockets, the quorum or
//! the driver that will use these values; the client listener itself is parsed by the parent
//! module, which hands the controller listener over once it has split the two.
//!
//! Kafka's rules kept here (each checked against Kafka 4.4's `KafkaConfig` and named in the test
//! that pins it), and where Skua is stricter:
//!
//! | rule | Kafka 4.4 | Skua |
//! | --- | --- | --- |
//! | `process.roles` values | `broker`, `controller`, exact case, repeats allowed | same |
//! | `node.id` with `process.roles` | required, at least 0 | same |
//! | `controller.listener.names` with `process.roles` | required, not empty | same |
//! | voters or bootstrap servers | at least one of the two | same |
//! | a controller's `node.id` | must be a voter (when voters are given) | same |
//! | a broker-only `node.id` | must not be a voter | same |
//! | voter ids | any integer, a repeated id silently keeps one entry | at least 0, no repeats |
//! | voter and bootstrap hosts, ports | empty host and port 0 accepted | refused: nothing could connect |
//! | session timeout and heartbeat interval | any integer | at least 0 |
//! | a broker-only node's listeners | no controller listener | same |
//! | a controller-only node's listeners | controller listeners only | same |
//! | controller listeners | one or more, any security protocol | one, PLAINTEXT (refused by name) |
//! | `advertised.listeners` | may name the controller listener (for the other nodes) | same |
//! | `default.replication.factor` (parent module) | any integer (topic creation fails below 1) | 1 to 32767 |

use std::collections::BTreeMap;
use std::fmt;

use super::{invalid, number, switch, ConfigError, Listener};

/// `broker.session.timeout.ms`: Kafka's `KRaftConfigs.BROKER_SESSION_TIMEOUT_MS_DEFAULT`.
pub const BROKER_SESSION_TIMEOUT_MS_DEFAULT: u32 = 9_000;
/// `broker.heartbeat.interval.ms`: Kafka's `KRaftConfigs.BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT`.
pub const BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT: u32 = 2_000;
/// `unclean.leader.election.enable`: Kafka's `ReplicationConfigs.UNCLEAN_LEADER_ELECTION_ENABLE_DEFAULT`.
pub const UNCLEAN_LEADER_ELECTION_ENABLE_DEFAULT: bool = false;
/// `auto.leader.rebalance.enable`: Kafka's `ReplicationConfigs.AUTO_LEADER_REBALANCE_ENABLE_DEFAULT`.
pub const AUTO_LEADER_REBALANCE_ENABLE_DEFAULT: bool = true;
/// `controller.quorum.election.timeout.ms`: Kafka's `QuorumConfig.DEFAULT_QUORUM_ELECTION_TIMEOUT_MS`.
pub const QUORUM_ELECTION_TIMEOUT_MS_DEFAULT: u32 = 1_000;
/// `controller.quorum.fetch.timeout.ms`: Kafka's `QuorumConfig.DEFAULT_QUORUM_FETCH_TIMEOUT_MS`.
pub const QUORUM_FETCH_TIMEOUT_MS_DEFAULT: u32 = 2_000;

/// The keys that only mean something with `process.roles`. Without it they are refused (the
/// quorum and controller-listener keys: a node meant for a cluster must not quietly start alone)
/// or ignored with a warning (the tuning keys).
pub const QUORUM_KEYS: [&str; 3] =
    ["controller.quorum.voters", "controller.quorum.bootstrap.servers", "controller.listener.names"];
pub const TUNING_KEYS: [&str; 7] = [
    "broker.rack",
    "broker.session.timeout.ms",
    "broker.heartbeat.interval.ms",
    "unclean.leader.election.enable",
    "auto.leader.rebalance.enable",
    "controller.quorum.election.timeout.ms",
    "controller.quorum.fetch.timeout.ms",
];

/// `process.roles`: what this node is in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessRoles {
    Broker,
    Controller,
    /// `broker,controller`: Kafka's combined mode.
    Combined,
}

impl ProcessRoles {
    pub fn is_broker(self) -> bool {
        matches!(self, ProcessRoles::Broker | ProcessRoles::Combined)
    }

    pub fn is_controller(self) -> bool {
        matches!(self, ProcessRoles::Controller | ProcessRoles::Combined)
    }
}

impl fmt::Display for ProcessRoles {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            ProcessRoles::Broker => "broker",
            ProcessRoles::Controller => "controller",
            ProcessRoles::Combined => "broker,controller",
        })
    }
}

/// A `host:port` address as written (not resolved: a name may resolve differently later).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

/// One entry of `controller.quorum.voters`: `id@host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub address: HostPort,
}

/// The controller listener this node serves (a node with the controller role only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerListener {
    /// Its name in `listeners` and `controller.listener.names`, upper case.
    pub name: String,
    pub listen_address: std::net::SocketAddr,
    /// Where the other nodes are told to reach it: its entry in `advertised.listeners` (Kafka
    /// 4.x lets a controller advertise its listener there), else the listener itself.
    pub advertised: HostPort,
}

/// Kafka's KRaft settings of this node; present only when `process.roles` is set.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub roles: ProcessRoles,
    /// `controller.quorum.voters`; empty when only bootstrap servers are given (a dynamic quorum).
    pub voters: Vec<Voter>,
    /// `controller.quorum.bootstrap.servers`.
    pub bootstrap_servers: Vec<HostPort>,
    /// `Some` exactly when `roles` includes the controller.
    pub controller_listener: Option<ControllerListener>,
    /// `broker.rack`; an empty value is no rack.
    pub rack: Option<String>,
    pub broker_session_timeout_ms: u32,
    pub broker_heartbeat_interval_ms: u32,
    pub unclean_leader_election: bool,
    pub auto_leader_rebalance: bool,
    pub quorum_election_timeout_ms: u32,
    pub quorum_fetch_timeout_ms: u32,
}

/// Parses `process.roles` (`None` when unset: the one-node broker).
pub fn process_roles(values: &BTreeMap<String, String>) -> Result<Option<ProcessRoles>, ConfigError> {
    const KEY: &str = "process.roles";
    let Some(text) = values.get(KEY) else { return Ok(None) };
    let (mut broker, mut controller) = (false, false);
    for role in text.split(',').map(str::trim).filter(|role| !role.is_empty()) {
        // Exact case, as Kafka's validator: `BROKER` is refused there too.
        match role {
            "broker" => broker = true,
            "controller" => controller = true,
            other => return Err(invalid(KEY, format!("{other:?} is not a role (broker, controller)"))),
        }
    }
    match (broker, controller) {
        (true, true) => Ok(Some(ProcessRoles::Combined)),
        (true, false) => Ok(Some(ProcessRoles::Broker)),
        (false, true) => Ok(Some(ProcessRoles::Controller)),
        (false, false) => Err(invalid(KEY, "must not be empty (broker, controller or broker,controller)")),
    }
}

/// Parses `controller.listener.names` (upper case, as listener names are case-insensitive),
/// required with `process.roles` and refused without it.
pub fn controller_listener_names(
    values: &BTreeMap<String, String>,
    roles: Option<ProcessRoles>,
) -> Result<Vec<String>, ConfigError> {
    const KEY: &str = "controller.listener.names";
    let names: Vec<String> = match values.get(KEY) {
        None if roles.is_some() => return Err(invalid(KEY, "required with process.roles (e.g. CONTROLLER)")),
        None => return Ok(Vec::new()),
        Some(text) => {
            text.split(',').map(str::trim).filter(|name| !name.is_empty()).map(str::to_ascii_uppercase).collect()
        }
    };
    if names.is_empty() {
        return Err(invalid(KEY, "must not be empty"));
    }
    Ok(names)
}

/// Refuses the quorum keys without `process.roles` (Kafka refuses any configuration without
/// it; Skua runs one node then, and a node given a quorum must not quietly start alone) and
/// warns about the tuning keys, which have no effect on one node.
pub fn one_node_checks(values: &BTreeMap<String, String>, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    if let Some(key) = QUORUM_KEYS.iter().find(|key| values.contains_key(**key)) {
        return Err(invalid(
            key,
            "set without process.roles; a cluster node needs process.roles \
             (broker, controller or broker,controller), and without it netd runs as one node",
        ));
    }
    for key in TUNING_KEYS.iter().filter(|key| values.contains_key(**key)) {
        warnings.push(format!("{key}: has no effect without process.roles (one-node broker); ignored"));
    }
    Ok(())
}

/// Kafka's rules for which listeners a node of `roles` may have, given the ones whose names
/// are in `controller.listener.names` (`controllers`) and the others (`clients`).
pub fn check_listener_roles(
    roles: ProcessRoles,
    controllers: &[Listener],
    clients: &[Listener],
) -> Result<(), ConfigError> {
    match roles {
        ProcessRoles::Broker => {
            if let Some(listener) = controllers.first() {
                return Err(invalid(
                    "controller.listener.names",
                    format!(
                        "must not name a listener in listeners on a broker-only node ({} is there); \
                         a broker reaches the controllers through controller.quorum.*",
                        listener.name
                    ),
                ));
            }
        }
        ProcessRoles::Controller => {
            if let Some(listener) = clients.first() {
                return Err(invalid(
                    "listeners",
                    format!(
                        "with process.roles=controller only controller listeners (controller.listener.names) \
                         are allowed; {} is not one",
                        listener.text
                    ),
                ));
            }
        }
        ProcessRoles::Combined => {}
    }
    if roles.is_controller() && controllers.is_empty() {
        return Err(invalid(
            "controller.listener.names",
            "a node with the controller role needs one of these names in listeners (e.g. CONTROLLER://127.0.0.1:9093)",
        ));
    }
    if roles.is_broker() && clients.is_empty() {
        return Err(invalid(
            "listeners",
            "a node with the broker role needs a client listener besides those in controller.listener.names",
        ));
    }
    if controllers.len() > 1 {
        let ignored: Vec<&str> = controllers[1..].iter().map(|listener| listener.text.as_str()).collect();
        return Err(invalid(
            "listeners",
            format!(
                "only one controller listener is supported; {} would be ignored (serving only {})",
                ignored.join(", "),
                controllers[0].text
            ),
        ));
    }
    Ok(())
}

/// Parses the `host:port` `address` of `entry` (IPv6 hosts in brackets); refuses what nothing
/// could connect to.
fn host_port(key: &str, entry: &str, address: &str, form: &str) -> Result<HostPort, ConfigError> {
    let malformed = || invalid(key, format!("{entry:?} is not of the form {form}"));
    let (host, port) = address.rsplit_once(':').ok_or_else(malformed)?;
    let port: u16 = port.parse().map_err(|_| malformed())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return Err(invalid(key, format!("{entry:?}: a host and a port other than 0 are needed to connect")));
    }
    Ok(HostPort { host: host.to_string(), port })
}

/// Parses `controller.quorum.voters` (`id@host:port,...`).
fn voters(values: &BTreeMap<String, String>) -> Result<Vec<Voter>, ConfigError> {
    const KEY: &str = "controller.quorum.voters";
    const FORM: &str = "{id}@{host}:{port}";
    let Some(text) = values.get(KEY).filter(|text| !text.trim().is_empty()) else { return Ok(Vec::new()) };
    let mut voters: Vec<Voter> = Vec::new();
    for entry in text.split(',').map(str::trim) {
        let (id, address) =
            entry.split_once('@').ok_or_else(|| invalid(KEY, format!("{entry:?} is not of the form {FORM}")))?;
        let id: i32 =
            id.trim().parse().map_err(|_| invalid(KEY, format!("{entry:?}: voter id {id:?} is not a number")))?;
        if id < 0 {
            return Err(invalid(KEY, format!("{entry:?}: a voter id is a node.id, at least 0")));
        }
        if voters.iter().any(|voter| voter.id == id) {
            return Err(invalid(KEY, format!("voter id {id} appears twice")));
        }
        voters.push(Voter { id, address: host_port(KEY, entry, address.trim(), FORM)? });
    }
    Ok(voters)
}

/// Parses `controller.quorum.bootstrap.servers` (`host:port,...`).
fn bootstrap_servers(values: &BTreeMap<String, String>) -> Result<Vec<HostPort>, ConfigError> {
    const KEY: &str = "controller.quorum.bootstrap.servers";
    let Some(text) = values.get(KEY).filter(|text| !text.trim().is_empty()) else { return Ok(Vec::new()) };
    text.split(',').map(str::trim).map(|entry| host_port(KEY, entry, entry, "{host}:{port}")).collect()
}

/// A duration key: Kafka's `INT` type, at least 0.
fn duration_ms(values: &BTreeMap<String, String>, key: &str, default: u32) -> Result<u32, ConfigError> {
    let value = number::<i32>(values, key, default as i32)?;
    u32::try_from(value).map_err(|_| invalid(key, "must be at least 0"))
}

impl ClusterConfig {
    /// Builds the cluster settings of a node with `roles`, once the parent module has parsed
    /// `node_id` and split off the controller listener (`Some` exactly when `roles` includes
    /// the controller, checked by [`check_listener_roles`]).
    pub fn from_properties(
        values: &BTreeMap<String, String>,
        roles: ProcessRoles,
        node_id: i32,
        controller_listener: Option<ControllerListener>,
        warnings: &mut Vec<String>,
    ) -> Result<ClusterConfig, ConfigError> {
        debug_assert_eq!(controller_listener.is_some(), roles.is_controller());
        let voters = voters(values)?;
        let bootstrap_servers = bootstrap_servers(values)?;
        if voters.is_empty() && bootstrap_servers.is_empty() {
            return Err(invalid(
                "controller.quorum.voters",
                "with process.roles, controller.quorum.voters (id@host:port,...) or \
                 controller.quorum.bootstrap.servers (host:port,...) must name the controllers",
            ));
        }
        let is_voter = voters.iter().any(|voter| voter.id == node_id);
        if !voters.is_empty() {
            if roles.is_controller() && !is_voter {
                return Err(invalid(
                    "controller.quorum.voters",
                    format!("node.id {node_id} has the controller role ({roles}) but is not among the voters"),
                ));
            }
            if !roles.is_controller() && is_voter {
                return Err(invalid(
                    "controller.quorum.voters",
                    format!("node.id {node_id} is a voter but process.roles=broker; only controllers vote"),
                ));
            }
        }
        let broker_session_timeout_ms =
            duration_ms(values, "broker.session.timeout.ms", BROKER_SESSION_TIMEOUT_MS_DEFAULT)?;
        let broker_heartbeat_interval_ms =
            duration_ms(values, "broker.heartbeat.interval.ms", BROKER_HEARTBEAT_INTERVAL_MS_DEFAULT)?;
        // Kafka accepts this too; it only says so here, as every broker would be fenced.
        if broker_heartbeat_interval_ms >= broker_session_timeout_ms {
            warnings.push(format!(
                "broker.heartbeat.interval.ms ({broker_heartbeat_interval_ms}) is not below \
                 broker.session.timeout.ms ({broker_session_timeout_ms}): brokers would be fenced between heartbeats"
            ));
        }
        Ok(ClusterConfig {
            roles,
            voters,
            bootstrap_servers,
            controller_listener,
            rack: values.get("broker.rack").filter(|rack| !rack.is_empty()).cloned(),
            broker_session_timeout_ms,
            broker_heartbeat_interval_ms,
            unclean_leader_election: switch(
                values,
                "unclean.leader.election.enable",
                UNCLEAN_LEADER_ELECTION_ENABLE_DEFAULT,
            )?,
            auto_leader_rebalance: switch(
                values,
                "auto.leader.rebalance.enable",
                AUTO_LEADER_REBALANCE_ENABLE_DEFAULT,
            )?,
            quorum_election_timeout_ms: duration_ms(
                values,
                "controller.quorum.election.timeout.ms",
                QUORUM_ELECTION_TIMEOUT_MS_DEFAULT,
            )?,
            quorum_fetch_timeout_ms: duration_ms(
                values,
                "controller.quorum.fetch.timeout.ms",
                QUORUM_FETCH_TIMEOUT_MS_DEFAULT,
            )?,
        })
    }
}
