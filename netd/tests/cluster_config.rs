//! Cluster configuration on the real binary: with `process.roles` set netd refuses to start (the
//! cluster driver is not there yet) before it touches any data; without cluster keys it starts
//! as the one-node broker, and a Kafka key Skua has no use for is accepted with one warning.

mod common;

use std::time::Duration;

use common::{run_bounded, Broker};

/// A combined-mode node as Kafka 4.x's `config/server.properties` sets one up, on ports no
/// test binds (netd refuses before binding anything).
const COMBINED: &[&str] = &[
    "process.roles=broker,controller",
    "node.id=1",
    "controller.quorum.voters=1@127.0.0.1:19093",
    "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093",
    "controller.listener.names=CONTROLLER",
    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
];

#[test]
fn process_roles_is_refused_before_any_data_is_touched() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let data_dir = dir.path().join("data");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_netd"));
    for entry in COMBINED.iter().map(|entry| entry.to_string()).chain([format!("log.dirs={}", data_dir.display())]) {
        command.arg("--override").arg(entry);
    }
    let outcome = run_bounded(&mut command, b"", Duration::from_secs(10));
    assert!(!outcome.killed && !outcome.status.success(), "netd must refuse cluster mode:\n{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("process.roles=broker,controller: cluster mode is not implemented yet"),
        "stderr says why:\n{}",
        outcome.stderr
    );
    assert!(!data_dir.exists(), "the data directory was created");

    // A refusal of the configuration itself names the key, as before.
    let outcome = run_bounded(
        std::process::Command::new(env!("CARGO_BIN_EXE_netd"))
            .args(["--override", "process.roles=broker", "--override", "node.id=1"])
            .arg("--override")
            .arg(format!("log.dirs={}", data_dir.display())),
        b"",
        Duration::from_secs(10),
    );
    assert!(!outcome.killed && !outcome.status.success());
    assert!(outcome.stderr.contains("controller.listener.names: required with process.roles"), "{}", outcome.stderr);
    assert!(!data_dir.exists(), "the data directory was created");
}

#[test]
fn without_cluster_keys_netd_starts_and_warns_once_about_unused_kafka_keys() {
    let broker = Broker::start(&["num.network.threads=3", "offsets.topic.replication.factor=1"]);
    let log = broker.log();
    let warning = "num.network.threads: a Kafka setting Skua has no use for; ignored";
    assert_eq!(log.matches(warning).count(), 1, "one warning:\n{log}");
    assert!(!log.contains("offsets.topic.replication.factor:"), "a key Skua uses is not warned about:\n{log}");
}
