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

use std::process::Command;
use std::time::{Duration, Instant};

use common::{PythonScript, Restart, Target};

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

impl Target {
    fn restart(&mut self, restart: Restart) {
        match self {
            Target::Netd(broker) => {
                broker.restart(restart);
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

fn takeover(client: &str, assignor: &str) {
    let started = Instant::now();
    let target = Target::start(BROKER_CONFIG);
    let mut script =
        PythonScript::start("groups.py", &target.bootstrap(), &["takeover", client, assignor], EXIT_TIMEOUT);
    let done = script.wait_for(&format!("takeover {client} {assignor}: ok"), TAKEOVER_TIMEOUT);
    let said = script.finish();
    assert!(done.is_some(), "{said}\n{}", target.log_tail(LOG_TAIL_LINES));
    eprintln!("takeover {client} {assignor}: {:.1?}\n{said}", started.elapsed());
}

fn restart(client: &str, assignor: &str, restart: Restart) {
    let started = Instant::now();
    let mut target = Target::start(BROKER_CONFIG);
    let mut script =
        PythonScript::start("groups.py", &target.bootstrap(), &["restart", client, assignor], EXIT_TIMEOUT);
    if script.wait_for("READY-FOR-RESTART", PHASE_ONE_TIMEOUT).is_none() {
        panic!("phase 1 did not finish:\n{}\n{}", script.finish(), target.log_tail(LOG_TAIL_LINES));
    }
    let phase_one = started.elapsed();
    target.restart(restart);
    if !script.tell("RESTARTED") {
        panic!("groups.py stopped waiting:\n{}\n{}", script.finish(), target.log_tail(LOG_TAIL_LINES));
    }
    let done = script.wait_for(&format!("restart {client} {assignor}: ok"), PHASE_TWO_TIMEOUT);
    let said = script.finish();
    assert!(done.is_some(), "{client} {assignor} across {restart:?}:\n{said}\n{}", target.log_tail(LOG_TAIL_LINES));
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
    let target = Target::start(BROKER_CONFIG);
    let mut script = PythonScript::start("groups_bad_input.py", &target.bootstrap(), &[], EXIT_TIMEOUT);
    let done = script.wait_for("bad-input: ok", BAD_INPUT_TIMEOUT);
    let said = script.finish();
    assert!(done.is_some(), "{said}\n{}", target.log_tail(LOG_TAIL_LINES));
    eprintln!("bad input: {:.1?}\n{said}", started.elapsed());
}
