//! Consumer groups with confluent-kafka (librdkafka 2.x) and kafka-python against the real broker
//! binary, each member a process of its own. Takeover: three members split a 6-partition topic,
//! one leaves (close), one is killed (SIGKILL: its session must expire), the last takes all; every
//! message is processed at least once, what the killed member processed but never committed is
//! processed again, nobody jumps forward in a partition, and a restarted group resumes exactly at
//! the committed offsets; range and cooperative-sticky, both clients. Restart: the broker is
//! stopped (SIGTERM) or killed (SIGKILL) under a running group; the committed offsets survive and
//! the same members reconnect, rejoin and go on without processing anything committed before.
//! Bad input: raw requests (kafka-python's codec) with an unknown group, a wrong generation, an
//! unknown member, a topic or partition that does not exist, and the rest, answered with the
//! error codes Apache Kafka 4.4 answers, and nothing corrupted.
//!
//! The Python side is `tests/python/groups.py` and `tests/python/groups_bad_input.py`; every
//! scenario there was first run against Apache Kafka 4.4. `SKUA_REFERENCE_BOOTSTRAP=host:port`
//! runs them against an already running broker instead of netd; the restart tests then also need
//! `SKUA_REFERENCE_RESTART_COMMAND`, a shell command that stops or kills that broker (its first
//! argument is `term` or `kill`) and starts it again on the same port and data. Every wait is
//! bounded, so a hang fails the test.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::Broker;

/// The group keys the scenarios rely on; the rest keep Kafka's defaults (sessions of at least
/// 6,000 ms, a killed member's session timeout is the minimum).
const BROKER_CONFIG: &[&str] = &["group.initial.rebalance.delay.ms=0"];
/// A whole takeover scenario; it takes 10-15 s on an idle machine (a session timeout of 6 s in it).
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(120);
/// The bad-input sequence, twice; well under a second against Kafka.
const BAD_INPUT_TIMEOUT: Duration = Duration::from_secs(60);
/// Restart: until the members have processed and committed everything before the restart.
const PHASE_ONE_TIMEOUT: Duration = Duration::from_secs(60);
/// Restart: from the broker's restart to the end.
const PHASE_TWO_TIMEOUT: Duration = Duration::from_secs(90);
/// After its last line, a script exits within this or is killed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of the broker log a failure shows.
const LOG_TAIL_LINES: usize = 300;

/// Where a scenario runs: a fresh netd, or the broker `SKUA_REFERENCE_BOOTSTRAP` names.
enum Target {
    Netd(Broker),
    Reference(String),
}

impl Target {
    fn start() -> Target {
        match std::env::var("SKUA_REFERENCE_BOOTSTRAP") {
            Ok(bootstrap) => Target::Reference(bootstrap),
            Err(_) => Target::Netd(Broker::start(BROKER_CONFIG)),
        }
    }

    fn bootstrap(&self) -> String {
        match self {
            Target::Netd(broker) => broker.bootstrap(),
            Target::Reference(bootstrap) => bootstrap.clone(),
        }
    }

    /// The last lines of netd's log, for a failure message.
    fn log_tail(&self) -> String {
        match self {
            Target::Netd(broker) => {
                let log = broker.log();
                let lines: Vec<&str> = log.lines().collect();
                let first = lines.len().saturating_sub(LOG_TAIL_LINES);
                format!("broker log (last {} lines):\n{}", lines.len() - first, lines[first..].join("\n"))
            }
            Target::Reference(bootstrap) => format!("(reference broker at {bootstrap})"),
        }
    }

    fn restart(&mut self, restart: Restart) {
        match self {
            Target::Netd(broker) => {
                match restart {
                    Restart::Sigterm => broker.stop(),
                    Restart::Sigkill => broker.kill(),
                }
                broker.spawn();
                if matches!(restart, Restart::Sigterm) {
                    assert!(broker.log().contains("netd stopped cleanly"), "{}", broker.log());
                }
            }
            Target::Reference(_) => {
                let command = std::env::var("SKUA_REFERENCE_RESTART_COMMAND")
                    .expect("SKUA_REFERENCE_RESTART_COMMAND: how to restart the reference broker");
                let argument = match restart {
                    Restart::Sigterm => "term",
                    Restart::Sigkill => "kill",
                };
                let status =
                    Command::new("sh").arg("-c").arg(format!("{command} {argument}")).status().expect("restart");
                assert!(status.success(), "{command} {argument}: {status}");
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Restart {
    Sigterm,
    Sigkill,
}

/// A running script: its stdout lines arrive on `lines`; its stderr is collected by a thread.
struct Script {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Script {
    fn start(script: &str, arguments: &[&str], target: &Target) -> Script {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(script);
        let mut child = Command::new(common::python())
            .arg(path)
            .arg(target.bootstrap())
            .args(arguments)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the script");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let name = format!("{script} {}", arguments.join(" "));
        Script { name, child, lines, stdout: Vec::new(), stderr: Some(stderr) }
    }

    /// Waits for a stdout line equal to `expected`; None if the script ended or time ran out.
    fn wait_for(&mut self, expected: &str, timeout: Duration) -> Option<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            self.stdout.push(line.clone());
            if line == expected {
                return Some(());
            }
        }
    }

    fn tell(&mut self, line: &str) -> bool {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(format!("{line}\n").as_bytes()).and_then(|()| stdin.flush()).is_ok()
    }

    /// Gives the script a moment to exit, kills it if it still runs, and returns what it said. Its
    /// member processes see their stdin close and exit.
    fn finish(&mut self) -> String {
        let deadline = Instant::now() + EXIT_TIMEOUT;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let status = self.child.wait().map(|status| status.to_string()).unwrap_or_default();
        let stderr = self.stderr.take().map(|thread| thread.join().unwrap_or_default()).unwrap_or_default();
        self.stdout.extend(self.lines.try_iter());
        format!("{}: {status}\nstdout:\n{}\nstderr:\n{stderr}", self.name, self.stdout.join("\n"))
    }
}

fn takeover(client: &str, assignor: &str) {
    let started = Instant::now();
    let target = Target::start();
    let mut script = Script::start("groups.py", &["takeover", client, assignor], &target);
    let done = script.wait_for(&format!("takeover {client} {assignor}: ok"), TAKEOVER_TIMEOUT);
    let said = script.finish();
    assert!(done.is_some(), "{said}\n{}", target.log_tail());
    eprintln!("takeover {client} {assignor}: {:.1?}\n{said}", started.elapsed());
}

fn restart(client: &str, assignor: &str, restart: Restart) {
    let started = Instant::now();
    let mut target = Target::start();
    let mut script = Script::start("groups.py", &["restart", client, assignor], &target);
    if script.wait_for("READY-FOR-RESTART", PHASE_ONE_TIMEOUT).is_none() {
        panic!("phase 1 did not finish:\n{}\n{}", script.finish(), target.log_tail());
    }
    let phase_one = started.elapsed();
    target.restart(restart);
    if !script.tell("RESTARTED") {
        panic!("groups.py stopped waiting:\n{}\n{}", script.finish(), target.log_tail());
    }
    let done = script.wait_for(&format!("restart {client} {assignor}: ok"), PHASE_TWO_TIMEOUT);
    let said = script.finish();
    assert!(done.is_some(), "{client} {assignor} across {restart:?}:\n{said}\n{}", target.log_tail());
    eprintln!(
        "{client} {assignor} across {restart:?}: phase 1 {phase_one:.1?}, in all {:.1?}\n{said}",
        started.elapsed()
    );
}

#[test]
fn confluent_kafka_range_takeover() {
    takeover("confluent", "range");
}

#[test]
fn confluent_kafka_cooperative_sticky_takeover() {
    takeover("confluent", "cooperative-sticky");
}

#[test]
fn kafka_python_range_takeover() {
    takeover("kafka-python", "range");
}

#[test]
fn kafka_python_cooperative_sticky_takeover() {
    takeover("kafka-python", "cooperative-sticky");
}

#[test]
fn confluent_kafka_group_across_sigterm() {
    restart("confluent", "cooperative-sticky", Restart::Sigterm);
}

#[test]
fn confluent_kafka_group_across_sigkill() {
    restart("confluent", "range", Restart::Sigkill);
}

#[test]
fn kafka_python_group_across_sigterm() {
    restart("kafka-python", "range", Restart::Sigterm);
}

#[test]
fn kafka_python_group_across_sigkill() {
    restart("kafka-python", "cooperative-sticky", Restart::Sigkill);
}

#[test]
fn bad_input_answered_as_kafka_does() {
    let started = Instant::now();
    let target = Target::start();
    let mut script = Script::start("groups_bad_input.py", &[], &target);
    let done = script.wait_for("bad-input: ok", BAD_INPUT_TIMEOUT);
    let said = script.finish();
    assert!(done.is_some(), "{said}\n{}", target.log_tail());
    eprintln!("bad input: {:.1?}\n{said}", started.elapsed());
}
