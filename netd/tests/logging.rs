//! The broker's log as a file sees it: netd started with stderr redirected to a file (as the
//! harness always does) writes no ANSI colour codes, and with `skua.log.format=json` every line
//! is one JSON object (level, message, fields), warnings and the clean shutdown included.

mod common;

use common::Broker;

/// A Kafka key Skua has no use for: accepted with a warning, so every log has a WARN line (the
/// level colour codes would show there first).
const IGNORED_KAFKA_KEY: &str = "log.cleaner.threads=2";

#[test]
fn a_log_redirected_to_a_file_has_no_colour_codes() {
    let mut broker = Broker::start(&[IGNORED_KAFKA_KEY]);
    broker.stop();
    let log = broker.log();
    assert!(log.contains("netd starting") && log.contains("netd stopped cleanly"), "{log}");
    assert!(log.contains("WARN") && log.contains("log.cleaner.threads"), "{log}");
    assert!(!log.contains('\x1b'), "colour codes in a log that is not a terminal:\n{log:?}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let mut broker = Broker::start(&["skua.log.format=json", IGNORED_KAFKA_KEY]);
    broker.stop();
    let log = broker.log();
    assert!(!log.contains('\x1b'), "{log:?}");
    let mut messages = Vec::new();
    for line in log.lines() {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line:?}"));
        let level = object["level"].as_str().unwrap_or_else(|| panic!("no level: {line}"));
        let message = object["fields"]["message"].as_str().unwrap_or_else(|| panic!("no message: {line}"));
        assert!(object["timestamp"].is_string(), "no timestamp: {line}");
        messages.push((level.to_string(), message.to_string()));
    }
    let has = |level: &str, start: &str| messages.iter().any(|(l, m)| l == level && m.starts_with(start));
    assert!(has("WARN", "log.cleaner.threads: a Kafka setting Skua has no use for"), "{messages:?}");
    assert!(has("INFO", "netd starting") && has("INFO", "netd stopped cleanly"), "{messages:?}");
    // Structured fields stay fields, not text in the message.
    let starting = log.lines().find(|line| line.contains("netd starting")).expect("starting line");
    let starting: serde_json::Value = serde_json::from_str(starting).expect("JSON");
    assert!(starting["fields"]["shards"].is_u64(), "{starting}");
}

#[test]
fn an_unknown_log_format_is_refused_by_name() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_netd"))
        .args(["--override", "skua.log.format=xml", "--override", "listeners=PLAINTEXT://127.0.0.1:0"])
        .output()
        .expect("run netd");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("skua.log.format: \"xml\" is not text or json"), "{stderr}");
}
