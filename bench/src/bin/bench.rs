//! `bench`: Skua against Apache Kafka on the same machine, with the same loadgen binary and the
//! same workloads, one broker after the other, each broker's durability stated.
//!
//! Owns: the suites (which workloads, how long, in what order), starting and stopping each
//! broker (netd from this workspace; Kafka through `scripts/kafka-server.sh`), sampling broker
//! CPU and memory from /proc while loadgen runs, and the report: every run's JSON, a markdown
//! summary (Skua, Kafka, ratio per metric) and SVG plots. Must not know broker internals: it
//! measures through loadgen and /proc only.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::Value;
use skua_bench::plot;

const HELP: &str = "bench: Skua against Apache Kafka on this machine, same loadgen, same workloads

USAGE: bench [--suite smoke|full|replicated|read-back] [--brokers LIST] [--out DIR] [--only NAMES] [--driver D]
             [--consumer-driver D] [--rounds N]

  --suite smoke   two minutes: max-rate 1 KiB and fixed-rate latency, short runs, against skua and
                  kafka unless --brokers says otherwise (what CI runs)
  --suite full    the five suites: max-rate 1 KiB, max-rate 100 B, fixed rate at 50 % of Kafka's
                  max, catch-up read of a 2 GiB backlog, 1,000 partitions idle and under light load
  --suite replicated
                  3-node clusters (loopback, one after the other): max-rate 1 KiB and fixed rate at
                  50 % of Kafka's max, RF 3, min.insync.replicas=2, acks=all
  --suite read-back
                  produce a 4 GiB backlog (1 KiB × 16 partitions, max rate, acks=all), then read it
                  all back with 1 and with 4 group consumers: hot (right after writing) and cold
                  (after `sync; echo 3 > /proc/sys/vm/drop_caches`: needs root, else the cold runs
                  fail); fio's sequential O_DIRECT read of this disk is measured in the same run
                  (scripts/fio-read.sh, installs fio if missing) and each read is shown against it
  --brokers LIST  comma list of the kinds below (default: skua, kafka, kafka-fsync; smoke and
                  read-back: skua,kafka; the replicated suite: its four cluster kinds). The ratio
                  column compares the first skua kind listed with kafka (or kafka-cluster)
                    skua          netd, fsync before ack (its default), direct writes
                    skua-1-shard  the same with skua.shard.count=1 (shard scaling)
                    skua-interval netd with skua.fsync.policy=interval: acknowledged once
                                  written (direct writes), no fsync: Kafka's defaults' durability
                    kafka         Apache Kafka 4.4 defaults: acknowledged from the page cache, no fsync
                    kafka-fsync   Apache Kafka with log.flush.interval.messages=1 (fsync per batch)
                    skua-cluster         3 netd nodes (scripts/cluster.sh): fsync on every ISR member
                    skua-cluster-memory  the same, followers fsync in the background (Kafka's model)
                    kafka-cluster        3 Kafka nodes (scripts/kafka-server.sh cluster-start)
                    kafka-cluster-fsync  the same with log.flush.interval.messages=1
  --only NAMES    comma list of suite names to run from the chosen suite
  --driver D      loadgen's producer client: rdkafka (default) or native (a lean Kafka-protocol
                  producer; runs with idempotence off, since it has none). Named in the report.
  --consumer-driver D
                  loadgen's consumer client: rdkafka (default: group consumers) or native (a lean
                  Kafka-protocol consumer with static partitions and no group; for reads where
                  librdkafka's consumer is the limit). Named in the report.
  --rounds N      run every suite against every broker N times (1 to 20, default 1), the brokers
                  one after the other within a round, in reverse order every other round. With
                  N > 1 each table cell is the median over the rounds with the lowest and highest
                  in brackets, and `(K of N)` if only K rounds have it (a failed run is reported
                  and left out of its round instead of ending the run); the ratio column is the
                  median of the rounds' own ratios (skua ÷ kafka measured in the same round);
                  summary.json gives each figure's medians, `ratio` beside the brokers, and every
                  round's figures under `per round` (null where a round has none); the plots show
                  the last round. On a machine whose disk and CPU drift, one round can mislead.
  --out DIR       report directory (default: results/<date>-<commit> for full,
                  results/<date>-<commit>/replicated-suite for replicated,
                  results/<date>-<commit>/read-back-suite for read-back,
                  target/bench/smoke-<date>-<commit> for smoke)

Environment: NETD, the netd binary to run (default target/release/netd; an older build for a
before/after comparison).

Writes <suite>-<broker>.json per run (loadgen's OMB TestResult; <suite>-<broker>-r<K>.json for
round K of several), for a one-node Skua its metrics at the end of the run
(<suite>-<broker>[-r<K>].metrics.prom), summary.md, summary.json and
<suite>-{throughput,publish-latency,e2e-latency,lag}.svg. Loopback only; every run is bounded.";

/// Every broker kind `--brokers` takes.
const BROKER_KINDS: &[&str] = &[
    "skua",
    "skua-1-shard",
    "skua-interval",
    "kafka",
    "kafka-fsync",
    "skua-cluster",
    "skua-cluster-memory",
    "kafka-cluster",
    "kafka-cluster-fsync",
];
/// The one-node brokers' client ports on 127.0.0.1. Below Linux's ephemeral range (32768-60999),
/// so no test's outgoing connection can hold them: CI once failed to start netd because a client
/// socket from 127.0.0.1:49292 sat in TIME_WAIT, which blocks a bind for 60 s.
const SKUA_PORT: u16 = 29292;
const KAFKA_PORT: u16 = 29192;
/// netd's metrics endpoint in a one-node run (not its default 9644, which a broker started by
/// hand may hold); scraped once at the end of each run into `<run>-<broker>.metrics.prom`.
const SKUA_METRICS_PORT: u16 = 29644;
/// Bound on the end-of-run metrics scrape.
const METRICS_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// Broker start-up bound.
const START_WAIT_SECONDS: u64 = 90;
/// Tries at starting netd before a run gives up.
const START_ATTEMPTS: u32 = 2;
/// Lines of netd's log shown when it does not start.
const LOG_TAIL_LINES: usize = 20;
/// `--rounds` at most, a bound on a run's length: 20 rounds of the read-back suite against two
/// brokers take about 2 hours here, of the full suite about 13.
const ROUNDS_MAX: usize = 20;

#[derive(Clone, Debug)]
struct Run {
    /// Suite name (file names, table headers).
    name: &'static str,
    title: &'static str,
    /// loadgen arguments besides bootstrap/output/broker metadata.
    args: Vec<String>,
    /// For the fixed-rate suite: take half of Kafka's max rate from this earlier suite.
    rate_from: Option<&'static str>,
    /// netd settings of this run (single-node Skua only; a netd that does not know a key, an
    /// older build, runs without it and says so).
    skua_settings: Vec<&'static str>,
    minutes: f64,
}

fn workload(file: &str) -> String {
    format!("bench/workloads/{file}")
}

fn runs(suite: &str) -> anyhow::Result<Vec<Run>> {
    let run = |name, title, file: &str, minutes: f64, warmup: f64, extra: &[&str], rate_from| Run {
        name,
        title,
        args: [
            vec![
                "--workload".to_string(),
                workload(file),
                "--test-duration-minutes".to_string(),
                minutes.to_string(),
                "--warmup-duration-minutes".to_string(),
                warmup.to_string(),
            ],
            extra.iter().map(|arg| arg.to_string()).collect(),
        ]
        .concat(),
        rate_from,
        skua_settings: Vec::new(),
        minutes: minutes + warmup,
    };
    Ok(match suite {
        "smoke" => vec![
            run(
                "max-rate-1kb",
                "max rate, 1 KiB, 16 partitions, acks=all",
                "max-rate-1kb-16p.yaml",
                0.25,
                0.05,
                &[],
                None,
            ),
            run(
                "fixed-rate-1kb",
                "fixed rate at 50 % of Kafka's max, 1 KiB, 16 partitions",
                "fixed-rate-1kb-16p.yaml",
                0.25,
                0.05,
                &[],
                Some("max-rate-1kb"),
            ),
        ],
        "full" => vec![
            run(
                "max-rate-1kb",
                "max rate, 1 KiB, 16 partitions, acks=all",
                "max-rate-1kb-16p.yaml",
                1.0,
                0.25,
                &[],
                None,
            ),
            run(
                "max-rate-100b",
                "max rate, 100 B, 16 partitions, acks=all",
                "max-rate-100b-16p.yaml",
                1.0,
                0.25,
                &[],
                None,
            ),
            run(
                "fixed-rate-1kb",
                "fixed rate at 50 % of Kafka's max, 1 KiB, 16 partitions",
                "fixed-rate-1kb-16p.yaml",
                1.0,
                0.25,
                &[],
                Some("max-rate-1kb"),
            ),
            run(
                "catch-up-2gb",
                "catch-up read of a 2 GiB backlog",
                "catch-up-2gb.yaml",
                2.0,
                0.0,
                &["--drain-seconds", "120"],
                None,
            ),
            run(
                "partitions-1000-idle",
                "1,000 partitions, near idle (10 msg/s)",
                "max-rate-1kb-16p.yaml",
                0.5,
                0.0,
                &["--partitions-per-topic", "1000", "--producer-rate", "10"],
                None,
            ),
            run(
                "partitions-1000-light",
                "1,000 partitions, light load (2,000 msg/s)",
                "max-rate-1kb-16p.yaml",
                1.0,
                0.0,
                &["--partitions-per-topic", "1000", "--producer-rate", "2000"],
                None,
            ),
        ],
        "replicated" => {
            let replicated = ["--replication-factor", "3", "--topic-config", "min.insync.replicas=2"];
            vec![
                run(
                    "replicated-max-rate-1kb",
                    "3 nodes, RF 3, min ISR 2: max rate, 1 KiB, 16 partitions, acks=all",
                    "max-rate-1kb-16p.yaml",
                    1.0,
                    0.25,
                    &replicated,
                    None,
                ),
                run(
                    "replicated-fixed-rate-1kb",
                    "3 nodes, RF 3, min ISR 2: fixed rate at 50 % of Kafka's max, 1 KiB, 16 partitions",
                    "fixed-rate-1kb-16p.yaml",
                    1.0,
                    0.25,
                    &replicated,
                    Some("replicated-max-rate-1kb"),
                ),
            ]
        }
        "read-back" => {
            let backlog =
                ["--consumer-backlog-size-gb", READ_BACK_BACKLOG_GB, "--drain-seconds", READ_BACK_DRAIN_SECONDS];
            let cold = ["--before-consume-command", DROP_CACHES_COMMAND];
            let read = |name, title, consumers: &'static str, cold_read: bool| {
                let mut extra = backlog.to_vec();
                extra.extend(["--consumer-per-subscription", consumers]);
                if cold_read {
                    extra.extend(cold);
                }
                let mut run = run(name, title, "catch-up-2gb.yaml", 2.0, 0.0, &extra, None);
                // Kafka's default initial rebalance delay, as the Kafka under test has: group
                // consumers that start together join one generation, instead of the first one
                // reading every partition until a rebalance in the middle of the read.
                run.skua_settings = vec![READ_BACK_REBALANCE_DELAY_SETTING];
                if cold_read {
                    // Skua keeps recent records in its own memory, which dropping the page cache
                    // does not touch: a cold read gives it a budget far below the backlog.
                    run.skua_settings.push(COLD_READ_CACHE_SETTING);
                }
                run
            };
            vec![
                read("read-back-hot-1", "read-back of a 4 GiB backlog right after writing it, 1 consumer", "1", false),
                read("read-back-hot-4", "read-back of a 4 GiB backlog right after writing it, 4 consumers", "4", false),
                read(
                    "read-back-cold-1",
                    "read-back of a 4 GiB backlog after dropping the page cache, 1 consumer",
                    "1",
                    true,
                ),
                read(
                    "read-back-cold-4",
                    "read-back of a 4 GiB backlog after dropping the page cache, 4 consumers",
                    "4",
                    true,
                ),
            ]
        }
        other => bail!("unknown suite {other:?} (smoke, full, replicated or read-back)"),
    })
}

/// The netd binary under test: `$NETD` (another build, for a before/after comparison), else this
/// workspace's release build.
fn netd_binary(workspace: &Path) -> PathBuf {
    std::env::var_os("NETD").map_or_else(|| workspace.join("target/release/netd"), PathBuf::from)
}

/// The read-back suite's backlog and how long its consumers may take to read it. 4 GiB: a lean
/// consumer reads 2 GiB from memory in under a second, too short to time against the drain's
/// 20 ms polls and the first fetch's start-up.
const READ_BACK_BACKLOG_GB: &str = "4";
const READ_BACK_DRAIN_SECONDS: &str = "240";
/// A cold read: dirty pages written, then the page cache dropped (root only).
const DROP_CACHES_COMMAND: &str = "sync && echo 3 > /proc/sys/vm/drop_caches";
/// Kafka's `group.initial.rebalance.delay.ms` default (every other suite starts Skua with 0, so
/// that consumers are assigned quickly before the producers start).
const READ_BACK_REBALANCE_DELAY_SETTING: &str = "group.initial.rebalance.delay.ms=3000";
/// Skua's memory cache in a cold read: 256 MiB, a sixteenth of the backlog.
const COLD_READ_CACHE_SETTING: &str = "skua.read.cache.bytes=268435456";

/// A broker (or a cluster) under test.
struct Broker {
    kind: &'static str,
    /// What loadgen bootstraps from.
    bootstrap: String,
    /// netd started here as a child (one node); None when a script started it.
    child: Option<Child>,
    /// Every broker process, for CPU and memory.
    pids: Vec<u32>,
}

/// Where the replicated suite's clusters live and listen (the scripts' defaults: node 1 serves
/// clients on 127.0.0.11 at the base port).
const SKUA_CLUSTER_DIR: &str = "target/bench/skua-cluster";
const SKUA_CLUSTER_BOOTSTRAP: &str = "127.0.0.11:49400";
const KAFKA_CLUSTER_DIR: &str = "target/bench/kafka-cluster";
const KAFKA_CLUSTER_BOOTSTRAP: &str = "127.0.0.11:49300";
/// Nodes per cluster in the replicated suite.
const CLUSTER_NODES: usize = 3;
/// Broker settings of both clusters: what the topics' replication relies on.
const CLUSTER_SETTINGS: &[&str] = &["default.replication.factor=3", "min.insync.replicas=2"];

/// The pids in `dir/node-<i>/pid` of a cluster's nodes.
fn cluster_pids(dir: &Path) -> anyhow::Result<Vec<u32>> {
    (1..=CLUSTER_NODES)
        .map(|node| {
            let path = dir.join(format!("node-{node}/pid"));
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            text.trim().parse::<u32>().with_context(|| format!("a pid in {}", path.display()))
        })
        .collect()
}

/// Runs one of the cluster scripts with `args`, its directory in `dir_variable`.
fn cluster_script(workspace: &Path, script: &str, dir_variable: &str, dir: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(workspace.join(script))
        .current_dir(workspace)
        .env(dir_variable, workspace.join(dir))
        .env("NETD", netd_binary(workspace))
        .args(args)
        .status()
        .with_context(|| format!("running {script}"))?;
    if !status.success() {
        bail!("{script} {args:?} failed ({status})");
    }
    Ok(())
}

fn durability(kind: &str) -> &'static str {
    match kind {
        "skua" => "fsync before ack (default), direct writes, one shard per core",
        "skua-1-shard" => "fsync before ack (default), direct writes, one shard (skua.shard.count=1)",
        "skua-interval" => {
            "skua.fsync.policy=interval: acknowledged once written (direct writes), no fsync, as Kafka's defaults"
        }
        "kafka" => "Kafka defaults: acknowledged from the page cache, no fsync",
        "skua-cluster" => "3 nodes, RF 3, min ISR 2: fsync on the leader and every ISR follower before ack (default)",
        "skua-cluster-memory" => {
            "3 nodes, RF 3, min ISR 2: fsync on the leader, followers fsync in the background (Kafka's model)"
        }
        "kafka-cluster" => "3 nodes, RF 3, min ISR 2: Kafka defaults, acknowledged from the ISR's page caches",
        "kafka-cluster-fsync" => "3 nodes, RF 3, min ISR 2: Kafka with log.flush.interval.messages=1",
        "kafka-fsync" => "Kafka with log.flush.interval.messages=1: fsync before ack",
        _ => "unknown",
    }
}

/// The Skua broker and the Kafka broker a report's ratio column compares.
fn ratio_pair(brokers: &[&'static str]) -> Option<(&'static str, &'static str)> {
    let skua = brokers.iter().find(|broker| broker.starts_with("skua"))?;
    let kafka = brokers.iter().find(|broker| **broker == "kafka" || **broker == "kafka-cluster")?;
    Some((skua, kafka))
}

/// Starts netd on a fresh data directory and waits until it serves: its log says so and its
/// port accepts a connection. On failure the error carries the log's tail and, if the port is
/// taken, who holds it.
fn start_skua(workspace: &Path, kind: &'static str, overrides: &[&str]) -> anyhow::Result<Broker> {
    let dir = workspace.join("target/bench/skua-data");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let log_path = workspace.join("target/bench/netd.log");
    let log = std::fs::File::create(&log_path)?;
    let netd = netd_binary(workspace);
    let mut child = Command::new(&netd)
        .args(["--override", &format!("listeners=PLAINTEXT://127.0.0.1:{SKUA_PORT}")])
        .args(["--override", &format!("log.dirs={}", dir.display())])
        .args(["--override", "group.initial.rebalance.delay.ms=0"])
        .args(["--override", &format!("skua.metrics.listener=http://127.0.0.1:{SKUA_METRICS_PORT}")])
        .args(overrides.iter().flat_map(|setting| ["--override", setting]))
        // The readiness line is logged at info: an inherited RUST_LOG must not hide it.
        .env("RUST_LOG", "info")
        // A start-up error is one paragraph, not a backtrace that pushes it out of the tail.
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", netd.display()))?;
    let deadline = Instant::now() + Duration::from_secs(START_WAIT_SECONDS);
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], SKUA_PORT));
    loop {
        let logged = std::fs::read_to_string(&log_path).unwrap_or_default().contains("all shards serving");
        if logged && std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok() {
            let pid = child.id();
            return Ok(Broker {
                kind,
                bootstrap: format!("127.0.0.1:{SKUA_PORT}"),
                child: Some(child),
                pids: vec![pid],
            });
        }
        let exited = child.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let why = match exited {
                Some(status) => format!("netd exited ({status})"),
                None => format!("netd did not serve within {START_WAIT_SECONDS} s"),
            };
            let log_text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = log_text.lines().rev().take(LOG_TAIL_LINES).collect();
            let holders = Command::new("ss")
                .args(["-Htanp", &format!("sport = :{SKUA_PORT}")])
                .output()
                .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
                .unwrap_or_default();
            bail!(
                "{why}; {} ends with:\n{}\nsockets on port {SKUA_PORT}:\n{}",
                log_path.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
                if holders.trim().is_empty() { "(none)" } else { holders.trim_end() }
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `netd --help` lists `key` (an older build may not know it).
fn netd_knows(workspace: &Path, key: &str) -> bool {
    Command::new(netd_binary(workspace))
        .arg("--help")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains(key))
}

fn start_broker(kind: &'static str, workspace: &Path, settings: &[&str]) -> anyhow::Result<Broker> {
    match kind {
        "skua" | "skua-1-shard" | "skua-interval" => {
            let mut overrides: Vec<&str> = match kind {
                "skua-1-shard" => vec!["skua.shard.count=1"],
                "skua-interval" => vec!["skua.fsync.policy=interval"],
                _ => vec![],
            };
            for setting in settings {
                let key = setting.split('=').next().unwrap_or(setting);
                if netd_knows(workspace, key) {
                    overrides.push(setting);
                } else {
                    eprintln!(
                        "bench: {} does not know {key}: running without {setting}",
                        netd_binary(workspace).display()
                    );
                }
            }
            // Two tries: a start that fails for a reason outside netd (the port still held by a
            // process a previous step left behind) is reported, waited out and tried once more.
            let mut last_error = None;
            for attempt in 1..=START_ATTEMPTS {
                match start_skua(workspace, kind, &overrides) {
                    Ok(broker) => return Ok(broker),
                    Err(error) => {
                        eprintln!("bench: netd start {attempt}/{START_ATTEMPTS} failed: {error:#}");
                        last_error = Some(error);
                        std::thread::sleep(Duration::from_secs(5));
                    }
                }
            }
            Err(last_error.unwrap_or_else(|| anyhow::anyhow!("netd was not started")))
        }
        "kafka" | "kafka-fsync" => {
            let mut command = Command::new(workspace.join("scripts/kafka-server.sh"));
            command.args(["start", &KAFKA_PORT.to_string()]);
            if kind == "kafka-fsync" {
                command.arg("log.flush.interval.messages=1");
            }
            let status = command.status().context("scripts/kafka-server.sh")?;
            if !status.success() {
                bail!("Apache Kafka did not start (scripts/kafka-server.sh start {KAFKA_PORT})");
            }
            let pid_file = workspace.join(format!("target/kafka-{KAFKA_PORT}/kafka.pid"));
            let pid = std::fs::read_to_string(&pid_file)?.trim().parse().context("Kafka's pid")?;
            Ok(Broker { kind, bootstrap: format!("127.0.0.1:{KAFKA_PORT}"), child: None, pids: vec![pid] })
        }
        "skua-cluster" | "skua-cluster-memory" => {
            let _ = std::fs::remove_dir_all(workspace.join(SKUA_CLUSTER_DIR));
            let mut args = vec!["start", "3"];
            args.extend_from_slice(CLUSTER_SETTINGS);
            if kind == "skua-cluster-memory" {
                args.push("skua.replication.follower.fsync.before.ack=false");
            }
            cluster_script(workspace, "scripts/cluster.sh", "CLUSTER_DIR", SKUA_CLUSTER_DIR, &args)?;
            let pids = cluster_pids(&workspace.join(SKUA_CLUSTER_DIR))?;
            Ok(Broker { kind, bootstrap: SKUA_CLUSTER_BOOTSTRAP.to_string(), child: None, pids })
        }
        "kafka-cluster" | "kafka-cluster-fsync" => {
            let _ = std::fs::remove_dir_all(workspace.join(KAFKA_CLUSTER_DIR));
            let mut args = vec!["cluster-start", "3"];
            args.extend_from_slice(CLUSTER_SETTINGS);
            if kind == "kafka-cluster-fsync" {
                args.push("log.flush.interval.messages=1");
            }
            cluster_script(workspace, "scripts/kafka-server.sh", "KAFKA_CLUSTER_DIR", KAFKA_CLUSTER_DIR, &args)?;
            let pids = cluster_pids(&workspace.join(KAFKA_CLUSTER_DIR))?;
            Ok(Broker { kind, bootstrap: KAFKA_CLUSTER_BOOTSTRAP.to_string(), child: None, pids })
        }
        other => bail!("unknown broker {other:?} ({})", BROKER_KINDS.join(", ")),
    }
}

fn stop_broker(broker: Broker, workspace: &Path) {
    let stopped = match broker.kind {
        "skua-cluster" | "skua-cluster-memory" => Some(
            cluster_script(workspace, "scripts/cluster.sh", "CLUSTER_DIR", SKUA_CLUSTER_DIR, &["stop"])
                .map(|()| SKUA_CLUSTER_DIR),
        ),
        "kafka-cluster" | "kafka-cluster-fsync" => Some(
            cluster_script(
                workspace,
                "scripts/kafka-server.sh",
                "KAFKA_CLUSTER_DIR",
                KAFKA_CLUSTER_DIR,
                &["cluster-stop"],
            )
            .map(|()| KAFKA_CLUSTER_DIR),
        ),
        _ => None,
    };
    match stopped {
        Some(Ok(dir)) => {
            let _ = std::fs::remove_dir_all(workspace.join(dir));
            return;
        }
        Some(Err(error)) => {
            eprintln!("bench: stopping the {} cluster: {error:#}", broker.kind);
            return;
        }
        None => {}
    }
    match broker.child {
        Some(mut child) => {
            // SIGTERM: netd commits and closes its logs cleanly.
            let _ = Command::new("kill").args(["-TERM", &broker.pids[0].to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(workspace.join("target/bench/skua-data"));
        }
        None => {
            let _ = Command::new(workspace.join("scripts/kafka-server.sh"))
                .args(["stop", &KAFKA_PORT.to_string()])
                .status();
            let _ = std::fs::remove_dir_all(workspace.join(format!("target/kafka-{KAFKA_PORT}/data")));
        }
    }
}

/// CPU seconds and peak resident memory of a process while a run lasts, from /proc.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    cpu_seconds: f64,
    peak_rss_mib: f64,
    mean_rss_mib: f64,
}

fn proc_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command: state is [0]; utime [11], stime [12] (1-based 14, 15).
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn proc_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
}

/// CPU and memory of `pids` together (a cluster's nodes are summed).
fn sample_usage(pids: Vec<u32>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Usage> {
    std::thread::spawn(move || {
        let ticks_per_second = 100.0; // USER_HZ on Linux
        let ticks = |last: u64| -> u64 {
            let each: Option<Vec<u64>> = pids.iter().map(|pid| proc_cpu_ticks(*pid)).collect();
            each.map_or(last, |each| each.iter().sum())
        };
        let start = ticks(0);
        let (mut peak, mut sum, mut samples) = (0.0f64, 0.0f64, 0u32);
        let mut last = start;
        while !stop.load(Ordering::Relaxed) {
            let rss: Option<Vec<f64>> = pids.iter().map(|pid| proc_rss_mib(*pid)).collect();
            if let Some(rss) = rss.map(|each| each.iter().sum::<f64>()) {
                peak = peak.max(rss);
                sum += rss;
                samples += 1;
            }
            last = ticks(last);
            std::thread::sleep(Duration::from_millis(500));
        }
        Usage {
            cpu_seconds: last.saturating_sub(start) as f64 / ticks_per_second,
            peak_rss_mib: peak,
            mean_rss_mib: if samples > 0 { sum / f64::from(samples) } else { 0.0 },
        }
    })
}

fn run_loadgen(
    workspace: &Path,
    broker: &Broker,
    run: &Run,
    rate: Option<f64>,
    output: &Path,
    driver: &str,
    consumer_driver: &str,
) -> anyhow::Result<(Value, Usage, f64)> {
    let mut command = Command::new(workspace.join("target/release/loadgen"));
    command
        .current_dir(workspace)
        .args(["--bootstrap", &broker.bootstrap])
        .arg("--output")
        .arg(output)
        .args(["--broker-name", broker.kind, "--durability", durability(broker.kind)])
        .arg("--broker-version")
        .arg(match (broker.kind.starts_with("skua"), std::env::var("NETD")) {
            (true, Ok(netd)) => format!("netd ({netd})"),
            (true, Err(_)) => "netd (this commit)".to_string(),
            (false, _) => "Apache Kafka 4.4.0".to_string(),
        })
        .args(&run.args)
        .args(["--driver", driver, "--consumer-driver", consumer_driver]);
    if driver == "native" {
        command.args(["--idempotence", "false"]);
    }
    if broker.pids.len() > 1 {
        // A cluster's other nodes are on other loopback addresses (127.0.0.12, ...).
        command.arg("--allow-other-hosts");
    }
    if let Some(rate) = rate {
        command.args(["--producer-rate", &format!("{rate:.0}")]);
    }
    for pid in &broker.pids {
        command.args(["--broker-pid", &pid.to_string()]);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_usage(broker.pids.clone(), stop.clone());
    let started = Instant::now();
    let mut child = command.stderr(Stdio::inherit()).spawn().context("starting target/release/loadgen")?;
    let bound = Duration::from_secs_f64(run.minutes * 60.0 + 300.0);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            bail!("loadgen ran past its bound of {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    stop.store(true, Ordering::Relaxed);
    let usage = sampler.join().unwrap_or_default();
    if !status.success() {
        bail!("loadgen failed for {} against {}", run.name, broker.kind);
    }
    let text = std::fs::read_to_string(output).with_context(|| format!("reading {}", output.display()))?;
    Ok((serde_json::from_str(&text)?, usage, started.elapsed().as_secs_f64()))
}

/// The disk's sequential read rate in MiB/s, from `scripts/fio-read.sh` (fio's JSON).
fn fio_read_mib_per_s(workspace: &Path) -> anyhow::Result<f64> {
    eprintln!("bench: measuring the disk's sequential read rate with fio");
    let output = Command::new(workspace.join("scripts/fio-read.sh"))
        .current_dir(workspace)
        .stderr(Stdio::inherit())
        .output()
        .context("running scripts/fio-read.sh")?;
    if !output.status.success() {
        bail!("scripts/fio-read.sh failed ({})", output.status);
    }
    let report: Value = serde_json::from_slice(&output.stdout).context("fio's JSON")?;
    let bytes_per_s =
        report.pointer("/jobs/0/read/bw_bytes").and_then(Value::as_f64).context("no read bandwidth in fio's JSON")?;
    let mib = bytes_per_s / 1_048_576.0;
    eprintln!("bench: fio sequential read: {mib:.0} MiB/s");
    Ok(mib)
}

fn number(value: &Value, key: &str) -> f64 {
    value.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

/// CPU seconds over wall seconds, both fields of a loadgen result: the cores kept busy.
fn cores(value: &Value, cpu_seconds: &str, wall_seconds: &str) -> f64 {
    number(value, cpu_seconds) / number(value, wall_seconds).max(1e-3)
}

/// suite → broker → (loadgen result, broker usage), for one round
type Results = BTreeMap<&'static str, BTreeMap<&'static str, (Value, Usage)>>;

/// A figure of `broker` in `run`, one entry per round (None where that round has no result).
fn per_round(rounds: &[Results], run: &str, broker: &str, get: fn(&Value, &Usage) -> f64) -> Vec<Option<f64>> {
    rounds.iter().map(|results| results.get(run)?.get(broker).map(|(value, usage)| get(value, usage))).collect()
}

/// `skua ÷ kafka` in each round of two brokers' figures (as [`per_round`] gives them), None where
/// a round did not measure both or Kafka's is zero.
fn ratios_per_round(skua: &[Option<f64>], kafka: &[Option<f64>]) -> Vec<Option<f64>> {
    skua.iter().zip(kafka).map(|(skua, kafka)| Some(skua.as_ref()? / kafka.filter(|kafka| *kafka > 0.0)?)).collect()
}

/// (label, value getter, higher is better)
type Metric = (&'static str, fn(&Value, &Usage) -> f64, bool);

const METRICS: &[Metric] = &[
    ("publish msg/s", |v, _| number(v, "aggregatedPublishRate"), true),
    ("publish MiB/s", |v, _| number(v, "aggregatedPublishMbPerSec"), true),
    ("consume msg/s", |v, _| number(v, "aggregatedConsumeRate"), true),
    ("catch-up read msg/s", |v, _| number(v, "catchUpConsumeRate"), true),
    ("catch-up read MiB/s", |v, _| number(v, "catchUpConsumeMbPerSec"), true),
    ("read-back MiB/s (first record to last)", |v, _| number(v, "readBackConsumeMbPerSec"), true),
    ("read-back seconds", |v, _| number(v, "readBackSeconds"), false),
    ("read-back group join seconds", |v, _| number(v, "readBackJoinSeconds"), false),
    ("publish latency p50 (ms)", |v, _| number(v, "aggregatedPublishLatency50pct"), false),
    ("publish latency p99 (ms)", |v, _| number(v, "aggregatedPublishLatency99pct"), false),
    ("publish latency p99.9 (ms)", |v, _| number(v, "aggregatedPublishLatency999pct"), false),
    ("publish latency max (ms)", |v, _| number(v, "aggregatedPublishLatencyMax"), false),
    ("end-to-end p50 (ms)", |v, _| number(v, "aggregatedEndToEndLatency50pct"), false),
    ("end-to-end p99 (ms)", |v, _| number(v, "aggregatedEndToEndLatency99pct"), false),
    ("end-to-end p99.9 (ms)", |v, _| number(v, "aggregatedEndToEndLatency999pct"), false),
    ("publish errors", |v, _| number(v, "totalPublishErrors"), false),
    ("broker CPU seconds", |_, usage| usage.cpu_seconds, false),
    ("client CPU cores while producing", |v, _| cores(v, "producePhaseCpuSeconds", "producePhaseSeconds"), false),
    ("client CPU cores while catching up", |v, _| cores(v, "catchUpCpuSeconds", "catchUpSeconds"), false),
    ("broker CPU cores while producing", |v, _| cores(v, "brokerProducePhaseCpuSeconds", "producePhaseSeconds"), false),
    ("broker CPU cores while catching up", |v, _| cores(v, "brokerCatchUpCpuSeconds", "catchUpSeconds"), false),
    ("broker peak RSS (MiB)", |_, usage| usage.peak_rss_mib, false),
    ("broker mean RSS (MiB)", |_, usage| usage.mean_rss_mib, false),
];

fn main() {
    if let Err(error) = real_main() {
        eprintln!("bench: error: {error:#}");
        std::process::exit(1);
    }
}

/// A loadgen client driver named on the command line (`--driver`, `--consumer-driver`).
fn client_driver(flag: &str, name: String) -> anyhow::Result<String> {
    match name.as_str() {
        "rdkafka" | "native" => Ok(name),
        _ => bail!("unknown {flag} {name:?} (rdkafka, native)"),
    }
}

fn real_main() -> anyhow::Result<()> {
    let mut suite = "smoke".to_string();
    let mut brokers: Option<Vec<&'static str>> = None;
    let mut out: Option<PathBuf> = None;
    let mut only: Option<Vec<String>> = None;
    let mut driver = "rdkafka".to_string();
    let mut consumer_driver = "rdkafka".to_string();
    let mut rounds_count = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--help" | "-h" => {
                println!("{HELP}");
                return Ok(());
            }
            "--suite" => suite = value("--suite")?,
            "--driver" => driver = client_driver("--driver", value("--driver")?)?,
            "--consumer-driver" => consumer_driver = client_driver("--consumer-driver", value("--consumer-driver")?)?,
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--rounds" => {
                let text = value("--rounds")?;
                rounds_count = text
                    .parse()
                    .ok()
                    .filter(|count| (1..=ROUNDS_MAX).contains(count))
                    .with_context(|| format!("--rounds {text:?}: a whole number from 1 to {ROUNDS_MAX}"))?;
            }
            "--only" => only = Some(value("--only")?.split(',').map(str::to_string).collect()),
            "--brokers" => {
                brokers = Some(
                    value("--brokers")?
                        .split(',')
                        .map(|name| {
                            BROKER_KINDS
                                .iter()
                                .copied()
                                .find(|kind| *kind == name)
                                .with_context(|| format!("unknown broker {name:?} ({})", BROKER_KINDS.join(", ")))
                        })
                        .collect::<anyhow::Result<_>>()?,
                )
            }
            other => bail!("unknown argument {other:?}; see --help"),
        }
    }
    // The smoke suite is CI's: Kafka with fsync is the full suite's third column.
    let brokers = brokers.unwrap_or_else(|| match suite.as_str() {
        "smoke" | "read-back" => vec!["skua", "kafka"],
        "replicated" => vec!["skua-cluster", "skua-cluster-memory", "kafka-cluster", "kafka-cluster-fsync"],
        _ => vec!["skua", "kafka", "kafka-fsync"],
    });
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize()?;
    std::env::set_current_dir(&workspace)?;
    let mut runs = runs(&suite)?;
    if let Some(only) = &only {
        runs.retain(|run| only.iter().any(|name| name == run.name));
    }
    // Commit, date and machine once, for the directory name and the report.
    let facts = skua_bench::RunFacts::collect();
    let commit = facts.commit.clone();
    let out = out.unwrap_or_else(|| match suite.as_str() {
        "full" => facts.results_dir(&workspace),
        "replicated" => facts.results_dir(&workspace).join("replicated-suite"),
        "read-back" => facts.results_dir(&workspace).join("read-back-suite"),
        _ => workspace.join(format!("target/bench/smoke-{}-{commit}", facts.date)),
    });
    std::fs::create_dir_all(&out)?;
    for binary in [netd_binary(&workspace), workspace.join("target/release/loadgen")] {
        if !binary.is_file() {
            bail!("{} is missing: run `cargo build --release -p skua-netd -p skua-loadgen` first", binary.display());
        }
    }
    eprintln!(
        "bench: suite {suite}: {} run(s) × brokers {:?} × {rounds_count} round(s) → {}",
        runs.len(),
        brokers,
        out.display()
    );
    // The disk's own sequential read rate, beside which the read-back suite's reads are shown.
    let disk_read_mib_per_s = if suite == "read-back" { Some(fio_read_mib_per_s(&workspace)?) } else { None };

    let mut rounds: Vec<Results> = Vec::with_capacity(rounds_count);
    let total = runs.len() * brokers.len() * rounds_count;
    let mut done = 0;
    let started = Instant::now();
    for round in 1..=rounds_count {
        let mut results: Results = BTreeMap::new();
        // One round's files keep the names of a single round's; several get `-r<K>`.
        let suffix = if rounds_count > 1 { format!("-r{round}") } else { String::new() };
        // Every other round runs the brokers in reverse, so that going first (a cooler machine,
        // an emptier page cache) does not always fall to the same one.
        let order: Vec<&'static str> =
            if round % 2 == 0 { brokers.iter().rev().copied().collect() } else { brokers.clone() };
        for run in &runs {
            for broker_kind in &order {
                done += 1;
                eprintln!(
                    "\nbench: [{done}/{total}] {} against {}{} ({:.0} s so far)",
                    run.name,
                    broker_kind,
                    if rounds_count > 1 { format!(", round {round} of {rounds_count}") } else { String::new() },
                    started.elapsed().as_secs_f64()
                );
                let rate = run.rate_from.and_then(|from| {
                    let source = results.get(from)?;
                    let max = source
                        .get("kafka")
                        .or_else(|| source.get("kafka-cluster"))
                        .or_else(|| source.get(*broker_kind))
                        .map(|(value, _)| number(value, "aggregatedPublishRate"))?;
                    Some((max / 2.0).max(100.0))
                });
                let measure = || -> anyhow::Result<(Value, Usage)> {
                    let broker = start_broker(broker_kind, &workspace, &run.skua_settings)?;
                    let output = out.join(format!("{}-{}{suffix}.json", run.name, broker_kind));
                    let outcome = run_loadgen(&workspace, &broker, run, rate, &output, &driver, &consumer_driver);
                    if broker.child.is_some() && broker.kind.starts_with("skua") {
                        // netd's own counters of the run (requests, commit waits, fsyncs, file
                        // reads): what a surprising number is checked against afterwards.
                        let path = out.join(format!("{}-{}{suffix}.metrics.prom", run.name, broker_kind));
                        let address = std::net::SocketAddr::from(([127, 0, 0, 1], SKUA_METRICS_PORT));
                        if let Err(error) = skua_bench::scrape_metrics(address, METRICS_SCRAPE_TIMEOUT)
                            .and_then(|text| std::fs::write(&path, text))
                        {
                            eprintln!("bench: netd's metrics after {}: {error:#}", run.name);
                        }
                    }
                    stop_broker(broker, &workspace);
                    let (value, usage, _) = outcome?;
                    Ok((value, usage))
                };
                match measure() {
                    Ok(measured) => {
                        results.entry(run.name).or_default().insert(broker_kind, measured);
                    }
                    // Over several rounds one failed run costs its cell in that round (the
                    // report says `K of N`), not the hours of the others.
                    Err(error) if rounds_count > 1 => eprintln!(
                        "bench: {} against {} failed in round {round}, left out of it: {error:#}",
                        run.name, broker_kind
                    ),
                    Err(error) => return Err(error),
                }
            }
        }
        rounds.push(results);
    }

    let mut markdown = String::new();
    let _ = writeln!(markdown, "# Skua vs Apache Kafka — suite `{suite}` ({commit}, {})\n", facts.date);
    let _ = writeln!(
        markdown,
        "Same machine ({}, {} cores, TCP congestion control `{}`), same loadgen binary ({}), brokers one after the other; loadgen and broker share the cores.\n",
        facts.cpu,
        facts.cores,
        facts.tcp_congestion_control,
        match (driver.as_str(), consumer_driver.as_str()) {
            ("native", "native") => "producers (idempotence off) and consumers on the native Kafka-protocol drivers",
            ("native", _) => {
                "producers on the native Kafka-protocol driver with idempotence off, consumers on librdkafka"
            }
            (_, "native") => "producers on librdkafka, consumers on the native Kafka-protocol driver",
            _ => "librdkafka driver",
        }
    );
    for broker in &brokers {
        let _ = writeln!(markdown, "- **{broker}**: {}", durability(broker));
    }
    if rounds_count > 1 {
        let _ = writeln!(
            markdown,
            "\n{rounds_count} rounds, the brokers one after the other in each. A cell is the median over the rounds \
             [lowest–highest]; the ratio column is the median of each round's own ratio [lowest–highest]. Every \
             round's figures are in summary.json (`per round`); the plots show the last round."
        );
    }
    let mut summary = serde_json::Map::new();
    for run in &runs {
        // The plots draw the last round that has this run (a failed run leaves it out of a round).
        let Some(by_broker) = rounds.iter().rev().find_map(|results| results.get(run.name)) else { continue };
        let _ = writeln!(markdown, "\n## {} — {}\n", run.name, run.title);
        let mut header = String::from("| metric |");
        let mut rule = String::from("|---|");
        for broker in &brokers {
            let _ = write!(header, " {broker} |");
            rule.push_str("---|");
        }
        let ratio = ratio_pair(&brokers);
        if let Some((skua, kafka)) = ratio {
            let _ = write!(header, " {skua} / {kafka} |");
            rule.push_str("---|");
        }
        let _ = writeln!(markdown, "{header}\n{rule}");
        let mut run_summary = serde_json::Map::new();
        let mut rounds_summary = serde_json::Map::new();
        for (label, get, _) in METRICS {
            let measured: BTreeMap<&str, Vec<Option<f64>>> =
                brokers.iter().map(|broker| (*broker, per_round(&rounds, run.name, broker, *get))).collect();
            // Catch-up rows only where a suite has a backlog.
            let all_zero = measured.values().flatten().flatten().all(|value| *value == 0.0);
            let catch_up_row =
                label.starts_with("catch-up") || label.starts_with("read-back") || label.ends_with("while catching up");
            if all_zero && catch_up_row {
                continue;
            }
            let mut row = format!("| {label} |");
            let mut values = serde_json::Map::new();
            let mut label_rounds = serde_json::Map::new();
            for broker in &brokers {
                let figures = &measured[broker];
                let _ = write!(row, " {} |", skua_bench::median_cell(figures, 1));
                values
                    .insert(broker.to_string(), skua_bench::median_of_rounds(figures).map_or(Value::Null, Value::from));
                label_rounds.insert(broker.to_string(), Value::from(figures.clone()));
            }
            if let Some((skua, kafka)) = ratio {
                let ratios = ratios_per_round(&measured[skua], &measured[kafka]);
                let _ = write!(row, " {} |", skua_bench::median_cell(&ratios, 2));
                if rounds_count > 1 {
                    values.insert(
                        "ratio".to_string(),
                        skua_bench::median_of_rounds(&ratios).map_or(Value::Null, Value::from),
                    );
                    label_rounds.insert("ratio".to_string(), Value::from(ratios));
                }
            }
            let _ = writeln!(markdown, "{row}");
            run_summary.insert(label.to_string(), Value::Object(values));
            rounds_summary.insert(label.to_string(), Value::Object(label_rounds));
        }
        if rounds_count > 1 {
            run_summary.insert("per round".to_string(), Value::Object(rounds_summary));
        }
        summary.insert(run.name.to_string(), Value::Object(run_summary));
        let labelled: Vec<(String, Value)> = brokers
            .iter()
            .filter_map(|broker| by_broker.get(broker).map(|(value, _)| (broker.to_string(), value.clone())))
            .collect();
        let charts = [
            ("throughput", plot::throughput_over_time(&out.join(format!("{}-throughput.svg", run.name)), &labelled)),
            (
                "publish-latency",
                plot::latency_percentiles(
                    &out.join(format!("{}-publish-latency.svg", run.name)),
                    &labelled,
                    plot::LatencyKind::Publish,
                ),
            ),
            (
                "e2e-latency",
                plot::latency_percentiles(
                    &out.join(format!("{}-e2e-latency.svg", run.name)),
                    &labelled,
                    plot::LatencyKind::EndToEnd,
                ),
            ),
            ("lag", plot::consumer_lag_over_time(&out.join(format!("{}-lag.svg", run.name)), &labelled)),
        ];
        let mut links = Vec::new();
        for (kind, outcome) in charts {
            match outcome {
                Ok(()) => links.push(format!("[{kind}]({}-{kind}.svg)", run.name)),
                Err(error) => eprintln!("bench: plot {kind} for {}: {error:#}", run.name),
            }
        }
        if let Some(disk) = disk_read_mib_per_s {
            let shares: Vec<String> = brokers
                .iter()
                .filter_map(|broker| {
                    let reads =
                        per_round(&rounds, run.name, broker, |value, _| number(value, "readBackConsumeMbPerSec"));
                    let read = skua_bench::median_of_rounds(&reads)?;
                    Some(format!("{broker} {:.0} %", 100.0 * read / disk.max(1e-9)))
                })
                .collect();
            let _ = writeln!(
                markdown,
                "\nShare of the disk's sequential read rate (fio, O_DIRECT, 1 MiB, QD 8: {disk:.0} MiB/s): {}",
                shares.join(", ")
            );
        }
        let _ = writeln!(markdown, "\nPlots: {}", links.join(" · "));
    }
    let _ = writeln!(
        markdown,
        "\nHigher is better for rates; lower is better for latency, errors, CPU and memory. Latency is measured from the \
         intended send time (coordinated omission corrected); see docs/decisions/0009-loadgen.md."
    );
    if let Some(disk) = disk_read_mib_per_s {
        summary.insert("fio sequential read MiB/s".to_string(), Value::from(disk));
    }
    summary.insert("tcp congestion control".to_string(), Value::from(facts.tcp_congestion_control.clone()));
    std::fs::write(out.join("summary.md"), &markdown)?;
    std::fs::write(out.join("summary.json"), serde_json::to_string_pretty(&Value::Object(summary))?)?;
    println!("{markdown}");
    eprintln!("bench: report in {} ({:.0} s)", out.display(), started.elapsed().as_secs_f64());
    Ok(())
}
