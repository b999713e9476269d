//! Cluster configuration on the real binary: a bad cluster configuration is refused, naming the
//! key, before any data is touched; without cluster keys netd starts as the one-node broker, and
//! a Kafka key Skua has no use for is accepted with one warning. (A running cluster: `cluster.rs`.)

mod common;

use std::time::Duration;

use common::{run_bounded, Broker};

#[test]
fn a_bad_cluster_configuration_is_refused_before_any_data_is_touched() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let data_dir = dir.path().join("data");
    // A refusal of the configuration names the key.
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
