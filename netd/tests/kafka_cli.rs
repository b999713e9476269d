//! Apache Kafka's own CLI tools (Java 17, jars from Maven Central via scripts/kafka-jars.sh)
//! against the real broker binary: kafka-topics create/list/describe/delete, and the console
//! producer (idempotent, acks=all, the Java client's defaults) and console consumer round trip.
//! Also `kafka-acls` (no authorizer, as Kafka says without one) and `kafka-transactions list`,
//! the Java consumer's Fetch v18 in incremental fetch sessions, the Java producer's Produce
//! v13, topics by id, and the classic Java consumer's OffsetCommit/OffsetFetch v9 while v10 is
//! offered (all read from the clients' debug logs).

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

/// The Java consumer (kafka-clients 4.4) fetches with Kafka 4.4's newest Fetch version (v18,
/// topics by id) in an incremental fetch session (KIP-227): its own debug log says the broker's
/// full fetch response opened a session and incremental responses followed, and never that the
/// broker could not process a session fetch; and it consumes every record exactly once.
#[test]
fn the_java_consumer_fetches_by_topic_id_in_incremental_sessions() {
    let broker = Broker::start(&[]);
    topics(&broker, &["--create", "--topic", "sessions", "--partitions", "6"]);
    let lines: Vec<String> = (0..3000).map(|index| format!("record-{index}")).collect();
    kafka_tool(
        "org.apache.kafka.tools.ConsoleProducer",
        &[
            "--bootstrap-server",
            broker.address_str(),
            "--topic",
            "sessions",
            "--command-property",
            "partitioner.class=org.apache.kafka.clients.producer.RoundRobinPartitioner",
            // Small batches, so that the consumer's small fetches below take many rounds.
            "--command-property",
            "batch.size=256",
        ],
        (lines.join("\n") + "\n").as_bytes(),
    );
    let classpath = format!("{}/*", common::kafka_libs().display());
    let consumed = common::run_bounded(
        Command::new("java")
            .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
            .arg("-Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients.FetchSessionHandler=debug")
            .arg("-Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients.NetworkClient=debug")
            .arg("-cp")
            .arg(classpath)
            .arg("org.apache.kafka.tools.consumer.ConsoleConsumer")
            .args([
                "--bootstrap-server",
                broker.address_str(),
                "--topic",
                "sessions",
                "--from-beginning",
                "--max-messages",
                "3000",
                "--timeout-ms",
                "20000",
                // Small fetches, so that reading everything takes many incremental ones.
                "--command-property",
                "max.partition.fetch.bytes=1024",
            ]),
        b"",
        std::time::Duration::from_secs(90),
    );
    assert!(!consumed.killed, "the consumer ran past its bound: {}", consumed.stderr);
    let mut got: Vec<&str> = consumed.stdout.lines().collect();
    got.sort();
    let mut expected: Vec<&str> = lines.iter().map(String::as_str).collect();
    expected.sort();
    assert!(got == expected, "every record consumed exactly once: {} lines, {} expected", got.len(), expected.len());
    let log = &consumed.stderr;
    let _ = std::fs::write("/tmp/java-consumer-sessions.log", log);
    let lines_with = |text: &str| log.lines().filter(|line| line.contains(text)).count();
    assert!(lines_with("apiKey=FETCH, apiVersion=18") > 0, "the consumer fetches with v18");
    assert_eq!(lines_with("apiKey=FETCH, apiVersion="), lines_with("apiKey=FETCH, apiVersion=18"), "only v18");
    assert!(
        lines_with("sent a full fetch response that created a new incremental fetch session") > 0,
        "a session opened"
    );
    assert!(lines_with("sent an incremental fetch response") > 2, "incremental fetches answered");
    assert_eq!(lines_with("was unable to process the fetch request"), 0, "no session refused");
    assert_eq!(lines_with("sent an invalid incremental fetch response"), 0, "no invalid incremental response");
}

/// The Java producer 4.4 takes the newest versions Skua offers: Metadata v13 and Produce v13,
/// which names the topic by the id Metadata gave it (its debug log shows each request's version);
/// the records land in the topic the id names.
#[test]
fn java_producer_names_topics_by_id_with_produce_v13() {
    let broker = Broker::start(&[]);
    topics(&broker, &["--create", "--topic", "by-id", "--partitions", "1"]);
    let classpath = format!("{}/*", common::kafka_libs().display());
    let producer = run(
        Command::new("java")
            .arg("-Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients.NetworkClient=debug")
            .arg("-cp")
            .arg(classpath)
            .arg("org.apache.kafka.tools.ConsoleProducer")
            .args(["--bootstrap-server", broker.address_str(), "--topic", "by-id", "--command-property", "acks=all"]),
        b"first\nsecond\n",
    );
    let log = String::from_utf8_lossy(&producer.stderr);
    for request in ["apiKey=METADATA, apiVersion=13", "apiKey=PRODUCE, apiVersion=13"] {
        assert!(log.contains(request), "no {request} in the producer's log:\n{log}");
    }
    let consumed = kafka_tool(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        &[
            "--bootstrap-server",
            broker.address_str(),
            "--topic",
            "by-id",
            "--from-beginning",
            "--max-messages",
            "2",
            // A bound for a JVM on a busy machine; the consumer exits once it has both.
            "--timeout-ms",
            "20000",
        ],
        b"",
    );
    assert_eq!(consumed.lines().collect::<Vec<_>>(), ["first", "second"]);
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

/// kcat producing one record of `size_bytes` to `topic`: whether the broker took it.
fn kcat_produces(broker: &Broker, topic: &str, size_bytes: usize) -> bool {
    let record = vec![b'x'; size_bytes];
    let produced = common::run_bounded(
        Command::new("kcat").args(["-P", "-b", broker.address_str(), "-t", topic, "-X", "message.max.bytes=100000"]),
        &[record.as_slice(), b"\n"].concat(),
        std::time::Duration::from_secs(60),
    );
    assert!(!produced.killed, "kcat ran past its bound: {}", produced.stderr);
    produced.status.success()
}

/// Topic configs as an operator sets them with Kafka's tools: `kafka-topics --create --config`
/// and `kafka-configs --alter`, checked as Kafka checks them (its messages, observed against Kafka
/// 4.4), described as Kafka describes them (`kafka-configs --describe` prints Kafka's lines),
/// honoured at once by the topic's partitions (max.message.bytes, then retention.ms with
/// segment.ms) and kept across a restart.
#[test]
fn topic_configs_are_checked_described_honoured_at_runtime_and_kept() {
    let mut broker = Broker::start(&["log.retention.check.interval.ms=200"]);
    let classpath = format!("{}/*", common::kafka_libs().display());
    let configs = |broker: &Broker, args: &[&str]| {
        let mut all = vec!["--bootstrap-server", broker.address_str()];
        all.extend_from_slice(args);
        common::run_bounded(
            Command::new("java").arg("-cp").arg(&classpath).arg("org.apache.kafka.tools.ConfigCommand").args(&all),
            b"",
            std::time::Duration::from_secs(60),
        )
    };
    let alter = |broker: &Broker, args: &[&str]| {
        let mut all = vec!["--alter", "--entity-type", "topics", "--entity-name", "configured"];
        all.extend_from_slice(args);
        configs(broker, &all)
    };
    let describe =
        |broker: &Broker| configs(broker, &["--describe", "--entity-type", "topics", "--entity-name", "configured"]);
    // Refused at creation with Kafka's message; nothing created.
    let refused = bounded_tool(
        "org.apache.kafka.tools.TopicCommand",
        &[
            "--bootstrap-server",
            broker.address_str(),
            "--create",
            "--topic",
            "configured",
            "--config",
            "segment.bytes=100",
        ],
    );
    assert!(
        refused.stdout.contains("Invalid value 100 for configuration segment.bytes: Value must be at least 1048576"),
        "{}",
        refused.stdout
    );
    let created = topics(
        &broker,
        &["--create", "--topic", "configured", "--config", "max.message.bytes=2000", "--config", "retention.ms=600000"],
    );
    assert!(created.contains("Created topic configured."), "{created}");
    let described = describe(&broker);
    assert!(described.status.success(), "{}\n{}", described.stdout, described.stderr);
    for line in [
        "Dynamic configs for topic configured are:",
        "  max.message.bytes=2000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:max.message.bytes=2000, \
         DEFAULT_CONFIG:message.max.bytes=1048588}",
        "  retention.ms=600000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=600000, \
         DEFAULT_CONFIG:log.retention.ms=604800000}",
    ] {
        assert!(described.stdout.lines().any(|have| have == line), "{line:?} not in:\n{}", described.stdout);
    }
    // max.message.bytes: honoured at creation, and changed at runtime.
    assert!(kcat_produces(&broker, "configured", 100));
    assert!(!kcat_produces(&broker, "configured", 3000), "a record over max.message.bytes is refused");
    let raised = alter(&broker, &["--add-config", "max.message.bytes=10000"]);
    assert!(
        raised.stdout.contains("Completed updating config for topic configured."),
        "{}\n{}",
        raised.stdout,
        raised.stderr
    );
    assert!(kcat_produces(&broker, "configured", 3000), "the raised limit applies at once");
    // Kafka's refusals, per resource.
    for (change, message) in [
        ("foo.bar=1", "Unknown topic config name: foo.bar"),
        ("retention.ms=abc", "Invalid value abc for configuration retention.ms: Not a number of type LONG"),
        ("segment.jitter.ms=-1", "Invalid value -1 for configuration segment.jitter.ms: Value must be at least 0"),
        (
            "remote.storage.enable=true",
            "Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage.",
        ),
        ("message.downconversion.enable=false", "Unknown topic config name: message.downconversion.enable"),
        (
            "min.compaction.lag.ms=10,max.compaction.lag.ms=5",
            "conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)",
        ),
    ] {
        let refused = alter(&broker, &["--add-config", change]);
        assert!(!refused.status.success(), "{change}: {}", refused.stdout);
        assert!(format!("{}{}", refused.stdout, refused.stderr).contains(message), "{change}: {}", refused.stdout);
    }
    // The keys Skua takes without acting on them (compaction's, preallocation, ...), described
    // with the lines Kafka 4.4 printed for the same commands; segment.index.bytes is acted on.
    let kept = alter(&broker, &["--add-config", "min.compaction.lag.ms=100,preallocate=TRUE,segment.index.bytes=4096"]);
    assert!(kept.status.success(), "{}\n{}", kept.stdout, kept.stderr);
    let described = describe(&broker);
    for line in [
        "  min.compaction.lag.ms=100 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:min.compaction.lag.ms=100, \
         DEFAULT_CONFIG:log.cleaner.min.compaction.lag.ms=0}",
        "  preallocate=true sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:preallocate=true, \
         DEFAULT_CONFIG:log.preallocate=false}",
        "  segment.index.bytes=4096 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:segment.index.bytes=4096, \
         DEFAULT_CONFIG:log.index.size.max.bytes=10485760}",
    ] {
        assert!(described.stdout.lines().any(|have| have == line), "{line:?} not in:\n{}", described.stdout);
    }
    let conflict = alter(&broker, &["--add-config", "max.compaction.lag.ms=50"]);
    assert!(
        format!("{}{}", conflict.stdout, conflict.stderr)
            .contains("conflict topic config setting min.compaction.lag.ms (100) > max.compaction.lag.ms (50)"),
        "against the stored min: {}",
        conflict.stdout
    );
    let removed = alter(&broker, &["--delete-config", "min.compaction.lag.ms,preallocate,segment.index.bytes"]);
    assert!(removed.status.success(), "{}\n{}", removed.stdout, removed.stderr);
    // Deleting configs that are not set succeeds (what `kafka-reassign-partitions --verify` does
    // with the replication throttles); an unknown topic does not.
    let deleted = alter(&broker, &["--delete-config", "leader.replication.throttled.replicas,segment.ms"]);
    assert!(deleted.status.success(), "{}\n{}", deleted.stdout, deleted.stderr);
    let missing = configs(
        &broker,
        &["--alter", "--entity-type", "topics", "--entity-name", "absent", "--delete-config", "retention.ms"],
    );
    assert!(!missing.status.success(), "{}\n{}", missing.stdout, missing.stderr);
    // retention.ms and segment.ms at runtime: the segments written so far are rolled and deleted
    // (segment.jitter.ms rolls each up to half a second earlier; the engine's log_behaviour tests
    // its effect).
    let shortened = alter(&broker, &["--add-config", "retention.ms=1000,segment.ms=1000,segment.jitter.ms=500"]);
    assert!(shortened.status.success(), "{}\n{}", shortened.stdout, shortened.stderr);
    let earliest = |broker: &Broker| {
        let offsets = kafka_tool(
            "org.apache.kafka.tools.GetOffsetShell",
            &["--bootstrap-server", broker.address_str(), "--topic", "configured", "--time", "-2"],
            b"",
        );
        offsets.trim().rsplit(':').next().and_then(|offset| offset.parse::<i64>().ok()).unwrap_or(-1)
    };
    assert_eq!(earliest(&broker), 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while earliest(&broker) == 0 {
        assert!(std::time::Instant::now() < deadline, "retention.ms=1000 never deleted the old segment");
        // A new record rolls the aged segment, so retention can delete it.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert!(kcat_produces(&broker, "configured", 10));
    }
    // Kept across a restart: the same configs, described and honoured.
    broker.restart(common::Restart::Sigterm);
    let again = describe(&broker);
    assert!(again.stdout.contains("  max.message.bytes=10000 sensitive=false"), "{}", again.stdout);
    assert!(again.stdout.contains("  retention.ms=1000 sensitive=false"), "{}", again.stdout);
    assert!(
        again.stdout.contains(
            "  segment.jitter.ms=500 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:segment.jitter.ms=500, \
             DEFAULT_CONFIG:log.roll.jitter.ms=0}"
        ),
        "{}",
        again.stdout
    );
    assert!(kcat_produces(&broker, "configured", 3000));
    assert!(!kcat_produces(&broker, "configured", 20_000));
}

/// Dynamic broker configs as an operator sets them: `kafka-configs --alter --entity-type brokers`
/// with `--entity-default` (the cluster-wide default) and `--entity-name <id>` (this broker),
/// described as Kafka describes them, inherited at once by the topics that set no value of their
/// own, refused with a message for keys Skua does not change at runtime, kept across a restart.
#[test]
fn dynamic_broker_configs_are_described_inherited_by_topics_and_kept() {
    let mut broker = Broker::start(&[]);
    let classpath = format!("{}/*", common::kafka_libs().display());
    let configs = |broker: &Broker, args: &[&str]| {
        let mut all = vec!["--bootstrap-server", broker.address_str()];
        all.extend_from_slice(args);
        common::run_bounded(
            Command::new("java").arg("-cp").arg(&classpath).arg("org.apache.kafka.tools.ConfigCommand").args(&all),
            b"",
            std::time::Duration::from_secs(60),
        )
    };
    topics(&broker, &["--create", "--topic", "inherits", "--partitions", "1"]);
    topics(&broker, &["--create", "--topic", "own", "--config", "max.message.bytes=10000"]);
    assert!(kcat_produces(&broker, "inherits", 3000));
    let default = configs(
        &broker,
        &[
            "--alter",
            "--entity-type",
            "brokers",
            "--entity-default",
            "--add-config",
            "message.max.bytes=2000,unclean.leader.election.enable=true",
        ],
    );
    assert!(
        default.stdout.contains("Completed updating default config for brokers in the cluster."),
        "{}\n{}",
        default.stdout,
        default.stderr
    );
    let own = configs(
        &broker,
        &["--alter", "--entity-type", "brokers", "--entity-name", "1", "--add-config", "log.segment.bytes=20000000"],
    );
    assert!(own.stdout.contains("Completed updating config for broker 1."), "{}\n{}", own.stdout, own.stderr);
    // The topic without a limit of its own takes the new default at once; the other keeps its own.
    assert!(!kcat_produces(&broker, "inherits", 3000), "the dynamic message.max.bytes applies");
    assert!(kcat_produces(&broker, "inherits", 100));
    assert!(kcat_produces(&broker, "own", 3000), "a topic's own max.message.bytes wins");
    // Refusals: a bad value (Kafka's code and words), a key Skua does not change at runtime.
    let bad = configs(
        &broker,
        &["--alter", "--entity-type", "brokers", "--entity-default", "--add-config", "log.retention.ms=abc"],
    );
    let bad_said = format!("{}{}", bad.stdout, bad.stderr);
    assert!(
        bad_said.contains(
            "InvalidRequestException: Invalid value abc for configuration log.retention.ms: Not a number of type LONG"
        ),
        "{bad_said}"
    );
    let static_key = configs(
        &broker,
        &["--alter", "--entity-type", "brokers", "--entity-name", "1", "--add-config", "log.dirs=/tmp"],
    );
    let static_said = format!("{}{}", static_key.stdout, static_key.stderr);
    assert!(
        !static_key.status.success()
            && static_said.contains("Skua does not change the broker config log.dirs at runtime"),
        "{static_said}"
    );
    let expected = [
        (
            vec!["--describe", "--entity-type", "brokers", "--entity-default"],
            vec![
                "Default configs for brokers in the cluster are:",
                "  message.max.bytes=2000 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:message.max.bytes=2000}",
                "  unclean.leader.election.enable=true sensitive=false \
                 synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:unclean.leader.election.enable=true}",
            ],
        ),
        (
            vec!["--describe", "--entity-type", "brokers", "--entity-name", "1"],
            vec![
                "Dynamic configs for broker 1 are:",
                "  log.segment.bytes=20000000 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:log.segment.bytes=20000000, \
                 DEFAULT_CONFIG:log.segment.bytes=1073741824}",
            ],
        ),
        (
            vec!["--describe", "--all", "--entity-type", "topics", "--entity-name", "inherits"],
            vec![
                "  max.message.bytes=2000 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:message.max.bytes=2000, \
                 DEFAULT_CONFIG:message.max.bytes=1048588}",
                "  segment.bytes=20000000 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:log.segment.bytes=20000000, \
                 DEFAULT_CONFIG:log.segment.bytes=1073741824}",
            ],
        ),
    ];
    for round in ["before", "after a restart"] {
        for (args, lines) in &expected {
            let described = configs(&broker, args);
            for line in lines {
                assert!(
                    described.stdout.lines().any(|have| have == *line),
                    "{round}: {line:?} not in:\n{}",
                    described.stdout
                );
            }
        }
        if round == "before" {
            broker.restart(common::Restart::Sigterm);
            assert!(!kcat_produces(&broker, "inherits", 3000), "the dynamic default is kept across a restart");
        }
    }
    // Deleting the default gives the static limit back.
    let deleted = configs(
        &broker,
        &["--alter", "--entity-type", "brokers", "--entity-default", "--delete-config", "message.max.bytes"],
    );
    assert!(deleted.status.success(), "{}\n{}", deleted.stdout, deleted.stderr);
    assert!(kcat_produces(&broker, "inherits", 3000));
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

/// `kafka-features describe`: the features Skua claims (handlers/api_versions.rs says why), in
/// Kafka's layout; Kafka 4.4 lists the same seven names, most finalized at newer levels.
/// `upgrade`, `downgrade`, `disable` (UpdateFeatures): Skua's own levels are taken and change
/// nothing; any other is refused in Kafka's words.
#[test]
fn kafka_features_describe_lists_what_skua_claims() {
    let broker = Broker::start(&[]);
    let described = bounded_tool(
        "org.apache.kafka.tools.FeatureCommand",
        &["--bootstrap-server", broker.address_str(), "describe"],
    );
    assert_eq!(described.status.code(), Some(0), "{}\n{}", described.stdout, described.stderr);
    let lines: Vec<Vec<&str>> = described
        .stdout
        .lines()
        .filter(|line| line.starts_with("Feature: "))
        .map(|line| line.split_whitespace().collect())
        .collect();
    let expected = [
        "Feature: eligible.leader.replicas.version SupportedMinVersion: 0 SupportedMaxVersion: 0 FinalizedVersionLevel: 0 Epoch: 0",
        "Feature: group.version SupportedMinVersion: 0 SupportedMaxVersion: 0 FinalizedVersionLevel: 0 Epoch: 0",
        "Feature: kraft.version SupportedMinVersion: 0 SupportedMaxVersion: 0 FinalizedVersionLevel: 0 Epoch: 0",
        "Feature: metadata.version SupportedMinVersion: 3.3-IV3 SupportedMaxVersion: 3.3-IV3 FinalizedVersionLevel: 3.3-IV3 Epoch: 0",
        "Feature: share.version SupportedMinVersion: 0 SupportedMaxVersion: 0 FinalizedVersionLevel: 0 Epoch: 0",
        "Feature: streams.version SupportedMinVersion: 0 SupportedMaxVersion: 0 FinalizedVersionLevel: 0 Epoch: 0",
        "Feature: transaction.version SupportedMinVersion: 0 SupportedMaxVersion: 0 FinalizedVersionLevel: 0 Epoch: 0",
    ];
    let expected: Vec<Vec<&str>> = expected.iter().map(|line| line.split_whitespace().collect()).collect();
    assert_eq!(lines, expected, "{}", described.stdout);
    // UpdateFeatures: the levels Skua has are taken (nothing changes), others refused with Kafka's
    // words and Skua's ranges; the lines are the ones Kafka 4.4's tool printed for the same kinds.
    let features = |args: &[&str]| {
        let mut all = vec!["--bootstrap-server", broker.address_str()];
        all.extend_from_slice(args);
        let done = bounded_tool("org.apache.kafka.tools.FeatureCommand", &all);
        (done.status.code(), format!("{}{}", done.stdout, done.stderr))
    };
    let (code, said) = features(&["upgrade", "--metadata", "3.4-IV0"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(
            "Could not upgrade metadata.version to 8. The update failed for all features since the following \
             feature had an error: Invalid update version 8 for feature metadata.version. Local controller 1 only \
             supports versions 7-7"
        ),
        "{said}"
    );
    let (code, said) = features(&["upgrade", "--feature", "group.version=1"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(
            "Invalid update version 1 for feature group.version. Local controller 1 only supports versions 0-0"
        ),
        "{said}"
    );
    let (code, said) = features(&["upgrade", "--metadata", "3.3-IV3"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("metadata.version was upgraded to 7."), "{said}");
    let (code, said) = features(&["disable", "--feature", "group.version", "--dry-run"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("group.version can be disabled."), "{said}");
    let (code, said) = features(&["describe"]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("FinalizedVersionLevel: 3.3-IV3"), "nothing changed: {said}");
}

/// `kafka-get-offsets --time -3` (max timestamp, KIP-734) and the other special times, on
/// records whose timestamps are out of order: the answers Kafka 4.4 gives for the same records
/// (a partition with no answer, offset -1, is left out by the tool). The timestamps are recent,
/// so that no retention check removes them meanwhile (Kafka's did, for timestamps of 1970).
#[test]
fn kafka_get_offsets_max_timestamp_and_special_times() {
    let mut broker = Broker::start(&[]);
    topics(&broker, &["--create", "--topic", "stamped", "--partitions", "2"]);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
    let base_ms = i64::try_from(now_ms).expect("ms") - 600_000;
    // Two batches on partition 0: timestamps base + 1000, 5000, 3000, 5000, 2000, then 4000.
    // The largest, base + 5000, is first at offset 1; partition 1 stays empty.
    let producer = r#"
import sys
from confluent_kafka import Producer
base = int(sys.argv[2])
producer = Producer({"bootstrap.servers": sys.argv[1], "linger.ms": 100})
for batch in ([1000, 5000, 3000, 5000, 2000], [4000]):
    for delta in batch:
        producer.produce("stamped", value=b"v%d" % delta, partition=0, timestamp=base + delta)
    assert producer.flush(30) == 0
"#;
    run(Command::new(common::python()).arg("-c").arg(producer).arg(broker.bootstrap()).arg(base_ms.to_string()), b"");
    let offsets = |broker: &Broker, time: &str| {
        let shell = bounded_tool(
            "org.apache.kafka.tools.GetOffsetShell",
            &["--bootstrap-server", broker.address_str(), "--topic", "stamped", "--time", time],
        );
        assert_eq!(shell.status.code(), Some(0), "--time {time}\n{}\n{}", shell.stdout, shell.stderr);
        shell.stdout
    };
    let at = |delta_ms: i64| (base_ms + delta_ms).to_string();
    let expected = [
        ("-1".to_string(), "stamped:0:6\nstamped:1:0\n"),
        ("-2".to_string(), "stamped:0:0\nstamped:1:0\n"),
        ("-3".to_string(), "stamped:0:1\n"),
        ("-4".to_string(), "stamped:0:0\nstamped:1:0\n"),
        ("-5".to_string(), ""),
        (at(3000), "stamped:0:1\n"),
        (at(4500), "stamped:0:1\n"),
        (at(0), "stamped:0:0\n"),
        (at(9000), ""),
    ];
    for (time, answer) in &expected {
        assert_eq!(offsets(&broker, time), *answer, "--time {time}");
    }
    // After a restart the largest timestamp comes from the recovered segment.
    broker.restart(common::Restart::Sigterm);
    assert_eq!(offsets(&broker, "-3"), "stamped:0:1\n");
}

/// The Java consumer 4.4 in a classic group sees OffsetCommit 2–10 and OffsetFetch 1–10 offered
/// (its ApiVersions record says "usable: 10") and still commits and fetches offsets with v9, by
/// topic name: its classic coordinator builds these requests by name only (v10 comes from the
/// KIP-848 consumer's commit manager, `group.protocol=consumer`); Kafka 4.4 sees the same v9
/// requests from it. A second consumer of the group resumes at the committed offsets: it gets
/// only what was produced after the first one left.
#[test]
fn the_classic_java_consumer_commits_with_v9_while_v10_is_offered() {
    let broker = Broker::start(&[]);
    topics(&broker, &["--create", "--topic", "committed", "--partitions", "2"]);
    let produce = |lines: &[String]| {
        kafka_tool(
            "org.apache.kafka.tools.ConsoleProducer",
            &["--bootstrap-server", broker.address_str(), "--topic", "committed"],
            (lines.join("\n") + "\n").as_bytes(),
        )
    };
    let consume = |count: usize| {
        let classpath = format!("{}/*", common::kafka_libs().display());
        let count = count.to_string();
        common::run_bounded(
            Command::new("java")
                .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
                .arg("-Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients.NetworkClient=debug")
                .arg("-cp")
                .arg(classpath)
                .arg("org.apache.kafka.tools.consumer.ConsoleConsumer")
                .args(["--bootstrap-server", broker.address_str(), "--topic", "committed", "--group", "resumer"])
                .args(["--from-beginning", "--max-messages", &count, "--timeout-ms", "15000"]),
            b"",
            std::time::Duration::from_secs(60),
        )
    };
    let first: Vec<String> = (0..20).map(|index| format!("first-{index}")).collect();
    produce(&first);
    let consumed = consume(first.len());
    assert!(!consumed.killed, "the consumer ran past its bound: {}", consumed.stderr);
    let mut got: Vec<&str> = consumed.stdout.lines().collect();
    got.sort();
    let mut expected: Vec<&str> = first.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(got, expected, "the first consumer reads everything");
    let log = &consumed.stderr;
    let lines_with = |text: &str| log.lines().filter(|line| line.contains(text)).count();
    assert!(lines_with("OffsetCommit(8): 2 to 10 [usable: 10]") > 0, "Skua offers OffsetCommit v10");
    assert!(lines_with("OffsetFetch(9): 1 to 10 [usable: 10]") > 0, "Skua offers OffsetFetch v10");
    for request in ["OFFSET_COMMIT", "OFFSET_FETCH"] {
        let sent = lines_with(&format!("apiKey={request}, apiVersion="));
        assert!(sent > 0, "the consumer sent {request}");
        assert_eq!(lines_with(&format!("apiKey={request}, apiVersion=9")), sent, "{request} went out as v9");
    }

    let second: Vec<String> = (0..6).map(|index| format!("second-{index}")).collect();
    produce(&second);
    let resumed = consume(second.len());
    assert!(!resumed.killed, "the consumer ran past its bound: {}", resumed.stderr);
    let mut got: Vec<&str> = resumed.stdout.lines().collect();
    got.sort();
    let mut expected: Vec<&str> = second.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(got, expected, "the group resumes at its committed offsets");
}
