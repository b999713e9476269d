//! Apache Kafka's own CLI tools (Java 17, jars from Maven Central via scripts/kafka-jars.sh)
//! against the real broker binary: kafka-topics create/list/describe/delete, and the console
//! producer (idempotent, acks=all, the Java client's defaults) and console consumer round trip.
//! Also `kafka-acls` (no authorizer, as Kafka says without one) and `kafka-transactions list`.

mod common;

use std::process::Command;

use common::{run, Broker};

fn kafka_tool(class: &str, args: &[&str], stdin: &[u8]) -> String {
    let classpath = format!("{}/*", common::kafka_libs().display());
    let output = run(Command::new("java").arg("-cp").arg(classpath).arg(class).args(args), stdin);
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn topics(broker: &Broker, args: &[&str]) -> String {
    let mut all = vec!["--bootstrap-server", broker.address_str()];
    all.extend_from_slice(args);
    kafka_tool("org.apache.kafka.tools.TopicCommand", &all, b"")
}

#[test]
fn kafka_topics_create_list_describe_delete() {
    let broker = Broker::start(&[]);
    assert!(topics(&broker, &["--create", "--topic", "cli-topic", "--partitions", "3"])
        .contains("Created topic cli-topic."));
    assert!(topics(&broker, &["--list"]).lines().any(|line| line == "cli-topic"));
    let described = topics(&broker, &["--describe", "--topic", "cli-topic"]);
    assert!(described.contains("PartitionCount: 3"), "{described}");
    for partition in 0..3 {
        assert!(described.contains(&format!("Partition: {partition}\tLeader: 1\tReplicas: 1\tIsr: 1")), "{described}");
    }
    topics(&broker, &["--alter", "--topic", "cli-topic", "--partitions", "5"]);
    assert!(topics(&broker, &["--describe", "--topic", "cli-topic"]).contains("PartitionCount: 5"));
    topics(&broker, &["--delete", "--topic", "cli-topic"]);
    assert!(!topics(&broker, &["--list"]).lines().any(|line| line == "cli-topic"));
}

#[test]
fn console_producer_and_consumer_round_trip() {
    let broker = Broker::start(&[]);
    topics(&broker, &["--create", "--topic", "console", "--partitions", "2"]);
    let lines: Vec<String> = (0..500).map(|index| format!("message-{index}-{}", "y".repeat(index % 50))).collect();
    let input = lines.join("\n") + "\n";
    kafka_tool(
        "org.apache.kafka.tools.ConsoleProducer",
        &["--bootstrap-server", broker.address_str(), "--topic", "console", "--command-property", "acks=all"],
        input.as_bytes(),
    );
    let mut consumed = Vec::new();
    for partition in ["0", "1"] {
        let output = kafka_tool(
            "org.apache.kafka.tools.consumer.ConsoleConsumer",
            &[
                "--bootstrap-server",
                broker.address_str(),
                "--topic",
                "console",
                "--from-beginning",
                "--partition",
                partition,
                "--timeout-ms",
                "5000",
            ],
            b"",
        );
        consumed.extend(output.lines().map(str::to_string));
    }
    consumed.sort();
    let mut expected = lines;
    expected.sort();
    assert_eq!(consumed, expected, "every line consumed exactly once");
}

/// `kafka-log-dirs --describe`: the broker's log directory, each replica in it and its bytes.
#[test]
fn kafka_log_dirs_describes_replicas_and_sizes() {
    let broker = Broker::start(&[]);
    topics(&broker, &["--create", "--topic", "sized", "--partitions", "2"]);
    let produced = kafka_tool(
        "org.apache.kafka.tools.ConsoleProducer",
        &[
            "--bootstrap-server",
            broker.address_str(),
            "--topic",
            "sized",
            "--property",
            "partitioner.class=org.apache.kafka.clients.producer.RoundRobinPartitioner",
        ],
        b"one\ntwo\nthree\nfour\n",
    );
    assert!(produced.is_empty() || !produced.contains("ERROR"), "{produced}");
    let described = kafka_tool(
        "org.apache.kafka.tools.LogDirsCommand",
        &["--bootstrap-server", broker.address_str(), "--describe", "--topic-list", "sized"],
        b"",
    );
    let json = described.lines().find(|line| line.starts_with('{')).unwrap_or_else(|| panic!("{described}"));
    let parsed: serde_json::Value = serde_json::from_str(json).expect("kafka-log-dirs prints JSON");
    let dirs = parsed["brokers"][0]["logDirs"].as_array().expect("log dirs");
    assert_eq!(dirs.len(), 1, "{json}");
    assert_eq!(dirs[0]["logDir"].as_str(), broker.data_dir.to_str(), "{json}");
    assert!(dirs[0]["error"].is_null(), "{json}");
    let partitions = dirs[0]["partitions"].as_array().expect("partitions");
    let mut names: Vec<&str> = partitions.iter().filter_map(|partition| partition["partition"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["sized-0", "sized-1"], "{json}");
    let total: u64 = partitions.iter().filter_map(|partition| partition["size"].as_u64()).sum();
    assert!(total > 0, "the records' bytes are counted: {json}");
}

/// `kafka-configs --alter`: Skua changes no config at runtime yet (issue 16) and says so;
/// deleting a config that is not set succeeds, as in Kafka (what `kafka-reassign-partitions
/// --verify` does with the replication throttles).
#[test]
fn kafka_configs_alter_is_refused_clearly_and_deleting_unset_configs_succeeds() {
    let broker = Broker::start(&[]);
    topics(&broker, &["--create", "--topic", "configured", "--partitions", "1"]);
    let classpath = format!("{}/*", common::kafka_libs().display());
    let configs = |args: &[&str]| {
        let mut all = vec!["--bootstrap-server", broker.address_str()];
        all.extend_from_slice(args);
        common::run_bounded(
            Command::new("java").arg("-cp").arg(&classpath).arg("org.apache.kafka.tools.ConfigCommand").args(&all),
            b"",
            std::time::Duration::from_secs(60),
        )
    };
    let refused = configs(&[
        "--alter",
        "--entity-type",
        "topics",
        "--entity-name",
        "configured",
        "--add-config",
        "retention.ms=1000",
    ]);
    assert!(!refused.status.success(), "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        format!("{}{}", refused.stdout, refused.stderr).contains("Skua does not change configs at runtime yet"),
        "{}\n{}",
        refused.stdout,
        refused.stderr
    );
    let deleted = configs(&[
        "--alter",
        "--entity-type",
        "topics",
        "--entity-name",
        "configured",
        "--delete-config",
        "leader.replication.throttled.replicas",
    ]);
    assert!(deleted.status.success(), "{}\n{}", deleted.stdout, deleted.stderr);
    assert!(deleted.stdout.contains("Completed updating config for topic configured."), "{}", deleted.stdout);
    let missing =
        configs(&["--alter", "--entity-type", "topics", "--entity-name", "absent", "--delete-config", "retention.ms"]);
    assert!(!missing.status.success(), "{}\n{}", missing.stdout, missing.stderr);
}

/// Runs one of Kafka's tools to its end (bounded), whatever its exit code.
fn bounded_tool(class: &str, args: &[&str]) -> common::Bounded {
    let classpath = format!("{}/*", common::kafka_libs().display());
    let bounded = common::run_bounded(
        Command::new("java").arg("-cp").arg(classpath).arg(class).args(args),
        b"",
        std::time::Duration::from_secs(60),
    );
    assert!(!bounded.killed, "{class} {args:?} ran past its bound\n{}\n{}", bounded.stdout, bounded.stderr);
    bounded
}

/// `kafka-acls --list` and `--add`: Skua has no authorizer, and the tool says so exactly as
/// against a Kafka 4.4 without `authorizer.class.name` (exit 1, this first line on stdout;
/// `--add` describes first, so it shows DescribeAcls' message).
#[test]
fn kafka_acls_reports_no_authorizer_as_kafka() {
    let broker = Broker::start(&[]);
    let kafka_says = "Error while executing ACL command: \
                      org.apache.kafka.common.errors.SecurityDisabledException: No Authorizer is configured on the broker";
    for args in
        [vec!["--list"], vec!["--add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "t1"]]
    {
        let mut all = vec!["--bootstrap-server", broker.address_str()];
        all.extend_from_slice(&args);
        let acls = bounded_tool("org.apache.kafka.tools.AclCommand", &all);
        assert_eq!(acls.status.code(), Some(1), "{args:?}\n{}\n{}", acls.stdout, acls.stderr);
        assert_eq!(acls.stdout.lines().next(), Some(kafka_says), "{args:?}\n{}", acls.stdout);
    }
    // `--remove` goes straight to DeleteAcls, whose message Kafka words differently.
    let removed = bounded_tool(
        "org.apache.kafka.tools.AclCommand",
        &[
            "--bootstrap-server",
            broker.address_str(),
            "--remove",
            "--force",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            "t1",
        ],
    );
    assert_eq!(removed.status.code(), Some(1), "{}\n{}", removed.stdout, removed.stderr);
    assert_eq!(
        removed.stdout.lines().next(),
        Some(
            "Error while executing ACL command: \
             org.apache.kafka.common.errors.SecurityDisabledException: No Authorizer is configured."
        ),
        "{}",
        removed.stdout
    );
}

/// `kafka-transactions list`: no transactions, so the header of an empty table and exit 0, as
/// against a Kafka 4.4 that has none.
#[test]
fn kafka_transactions_list_prints_an_empty_table() {
    let broker = Broker::start(&[]);
    let listed = bounded_tool(
        "org.apache.kafka.tools.TransactionsCommand",
        &["--bootstrap-server", broker.address_str(), "list"],
    );
    assert_eq!(listed.status.code(), Some(0), "{}\n{}", listed.stdout, listed.stderr);
    assert_eq!(listed.stdout, "TransactionalId\tCoordinator\tProducerId\tTransactionState\t\n", "{}", listed.stderr);
}
