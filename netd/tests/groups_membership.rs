//! Group membership survives a broker restart, with confluent-kafka (librdkafka) consumers and
//! Kafka's Java consumer (VerifiableConsumer), each a process of its own, against the real broker
//! binary. Stable: two members of a Stable group
//! keep running while the broker is stopped (SIGTERM) or killed (SIGKILL) and started again; they
//! carry on without a rebalance (no on_assign/on_revoke call, librdkafka counts no rebalance, the
//! same member ids, Stable) and every record, before and after the restart, is consumed exactly
//! once. Expire: one member is killed just before the restart; the restarted broker loaded it, its
//! session expires a session timeout later and the other member takes every partition.
//!
//! Kafka's own `kafka-dump-log --offsets-decoder` (DumpLogSegments) then reads the broker's
//! `__consumer_offsets` segments: it decodes the membership records (Kafka's `GroupMetadataKey`
//! and `GroupMetadataValue`) with the group's members, protocol and generation.
//!
//! The Python side is `tests/python/membership_restart.py`. Every wait is bounded, so a hang
//! fails the test.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Broker, PythonScript, Restart};

/// Sessions of 6 s (the members') are allowed; no initial delay, so the group forms at once.
const BROKER_CONFIG: &[&str] = &["group.initial.rebalance.delay.ms=0", "group.min.session.timeout.ms=6000"];
/// Until the members have joined and consumed everything produced before the restart.
const PHASE_ONE_TIMEOUT: Duration = Duration::from_secs(60);
/// From the restart to the end (a session timeout and a watch of 8 s in it).
const PHASE_TWO_TIMEOUT: Duration = Duration::from_secs(90);
/// After its last line, the script exits within this or is killed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Kafka's DumpLogSegments over a few small segments (a JVM start).
const DUMP_TIMEOUT: Duration = Duration::from_secs(60);

fn check(mode: &str, client: &str, restart: Restart) -> Broker {
    let started = Instant::now();
    let mut broker = Broker::start(BROKER_CONFIG);
    let mut script = PythonScript::start("membership_restart.py", &broker.bootstrap(), &[mode, client], EXIT_TIMEOUT);
    if script.wait_for("READY-FOR-RESTART", PHASE_ONE_TIMEOUT).is_none() {
        panic!("phase 1 did not finish:\n{}\nbroker log:\n{}", script.finish(), broker.log());
    }
    let phase_one = started.elapsed();
    broker.restart(restart);
    if !script.tell("RESTARTED") {
        panic!("membership_restart.py stopped waiting:\n{}\nbroker log:\n{}", script.finish(), broker.log());
    }
    let done = script.wait_for(&format!("{mode} {client}: ok"), PHASE_TWO_TIMEOUT);
    let said = script.finish();
    assert!(done.is_some(), "{mode} {client} across {restart:?}:\n{said}\nbroker log:\n{}", broker.log());
    eprintln!("{mode} {client} across {restart:?}: phase 1 {phase_one:.1?}, in all {:.1?}\n{said}", started.elapsed());
    broker
}

/// Kafka's `kafka-dump-log --offsets-decoder` over every `__consumer_offsets` segment of the
/// stopped `broker`: what it printed.
fn kafka_dump_offsets(broker: &mut Broker) -> String {
    broker.stop();
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(&broker.data_dir).expect("data dir").map_while(Result::ok) {
        if !entry.file_name().to_string_lossy().starts_with("__consumer_offsets-") {
            continue;
        }
        for file in std::fs::read_dir(entry.path()).expect("partition dir").map_while(Result::ok) {
            let path = file.path();
            let written = file.metadata().is_ok_and(|metadata| metadata.len() > 0);
            if path.extension().is_some_and(|extension| extension == "log") && written {
                segments.push(path.display().to_string());
            }
        }
    }
    assert!(!segments.is_empty(), "no offsets segments in {}", broker.data_dir.display());
    let run = common::run_bounded(
        Command::new("java")
            .args(["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m"])
            .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
            .arg("-cp")
            .arg(format!("{}/*", common::kafka_libs().display()))
            .arg("org.apache.kafka.tools.DumpLogSegments")
            .arg("--offsets-decoder")
            .arg("--files")
            .arg(segments.join(",")),
        b"",
        DUMP_TIMEOUT,
    );
    assert!(run.status.success() && !run.killed, "DumpLogSegments: {}\n{}", run.status, run.stderr);
    run.stdout
}

#[test]
fn a_stable_group_carries_on_across_sigterm() {
    let mut broker = check("stable", "confluent", Restart::Sigterm);
    let dump = kafka_dump_offsets(&mut broker);
    eprintln!("{dump}");
    let membership: Vec<&str> = dump.lines().filter(|line| line.contains("\"protocolType\":\"consumer\"")).collect();
    assert!(!membership.is_empty(), "Kafka decodes no group metadata record:\n{dump}");
    let stable = membership.iter().any(|line| {
        line.contains("\"clientId\":\"first\"")
            && line.contains("\"clientId\":\"second\"")
            && line.contains("\"protocol\":\"range\"")
    });
    assert!(stable, "Kafka decodes the two members of the stable group:\n{dump}");
}

#[test]
fn a_stable_group_carries_on_across_sigkill() {
    check("stable", "confluent", Restart::Sigkill);
}

#[test]
fn a_member_gone_during_the_restart_expires_and_the_group_rebalances() {
    check("expire", "confluent", Restart::Sigkill);
}

/// Kafka's Java consumer (VerifiableConsumer from the 4.4 jars), classic protocol.
#[test]
fn a_stable_java_group_carries_on_across_sigkill() {
    check("stable", "java", Restart::Sigkill);
}

#[test]
fn a_java_member_gone_during_the_restart_expires() {
    check("expire", "java", Restart::Sigterm);
}
