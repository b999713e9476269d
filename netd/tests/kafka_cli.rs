//! Apache Kafka's own CLI tools (Java 17, jars from Maven Central via scripts/kafka-jars.sh)
//! against the real broker binary: kafka-topics create/list/describe/delete, and the console
//! producer (idempotent, acks=all, the Java client's defaults) and console consumer round trip.

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
