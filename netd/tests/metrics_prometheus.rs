//! The metrics endpoint (issue 16) against the real Prometheus: messages produced with kcat and a
//! group's offset committed with confluent-kafka (reading from the segment files: the broker keeps
//! no read cache here), the exposition checked by `promtool check metrics`, then scraped by a
//! `prometheus` server whose HTTP API must report what was produced, the group's lag, and
//! quantiles of the request, disk-write, fdatasync, log-flush and file-read latency histograms;
//! the Grafana dashboard's queries checked by `promtool check rules`.
//! Prometheus is Debian's package, installed by scripts/test-deps.sh; a missing one fails the
//! test (`common::tool`), never skips it.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{run, tool, Broker};

/// How long Prometheus gets to start, scrape and answer with the expected value.
const PROMETHEUS_WAIT_S: u64 = 60;

/// A plain HTTP/1.1 GET: (status code, body); `None` if nothing listens (yet).
fn try_http_get(address: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status code");
    Some((status, body.to_string()))
}

fn http_get(address: SocketAddr, path: &str) -> (u16, String) {
    try_http_get(address, path).unwrap_or_else(|| panic!("nothing listens at {address}"))
}

fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// A free loopback port (bound and released: Prometheus binds it again at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

/// Kills the Prometheus server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Consumes `count` messages of partition 0 of `topic` with confluent-kafka and commits the
/// next offset for `group`.
const COMMIT_AFTER: &str = r#"
import sys
from confluent_kafka import Consumer, TopicPartition
bootstrap, group, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
consumer.assign([TopicPartition(topic, 0, 0)])
last = None
for _ in range(count):
    message = consumer.poll(15)
    if message is None:
        sys.exit("no message within 15 s")
    if message.error():
        sys.exit(str(message.error()))
    last = message.offset()
consumer.commit(offsets=[TopicPartition(topic, 0, last + 1)], asynchronous=False)
consumer.close()
print("committed", last + 1)
"#;

/// The one value of an instant query, once Prometheus has one.
fn query_value(prometheus: SocketAddr, query: &str) -> Option<String> {
    let (status, body) = try_http_get(prometheus, &format!("/api/v1/query?query={}", percent_encoded(query)))?;
    if status != 200 {
        return None;
    }
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON from Prometheus");
    assert_eq!(answer["status"], "success", "{body}");
    let result = answer["data"]["result"].as_array()?;
    assert!(result.len() <= 1, "one series for {query}: {body}");
    Some(result.first()?["value"][1].as_str()?.to_string())
}

fn wait_for_value(prometheus: SocketAddr, query: &str, expected: &str, log: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(PROMETHEUS_WAIT_S);
    let mut last = None;
    while Instant::now() < deadline {
        last = query_value(prometheus, query);
        if last.as_deref() == Some(expected) {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!(
        "Prometheus never answered {query} = {expected} (last: {last:?}); its log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// The sum of the values of the samples whose line starts with `prefix` and contains `labels`
/// (e.g. one histogram's `_count` over every shard).
fn summed(text: &str, prefix: &str, labels: &str) -> u64 {
    text.lines()
        .filter(|line| line.starts_with(prefix) && line.contains(labels))
        .map(|line| {
            let value = line.rsplit(' ').next().expect("a value");
            value.parse::<u64>().unwrap_or_else(|_| panic!("an integer in {line}"))
        })
        .sum()
}

/// Waits until Prometheus computes a number (not NaN) for `query`, and returns it.
fn wait_for_number(prometheus: SocketAddr, query: &str) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(PROMETHEUS_WAIT_S);
    loop {
        if let Some(value) = query_value(prometheus, query).and_then(|value| value.parse::<f64>().ok()) {
            if !value.is_nan() {
                return value;
            }
        }
        assert!(Instant::now() < deadline, "Prometheus computed no number for {query}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn prometheus_scrapes_what_was_produced_and_the_lag() {
    const TOPIC: &str = "scraped";
    const GROUP: &str = "billing";
    const MESSAGES: usize = 500;
    const CONSUMED: usize = 200;
    // No read cache: the consumer's fetches read the segment files through the ring.
    let broker = Broker::start(&["skua.read.cache.bytes=0"]);
    let metrics = broker.metrics_address().expect("the metrics endpoint is on");
    let input: String = (0..MESSAGES).map(|index| format!("message-{index}\n")).collect();
    run(
        Command::new(tool("kcat")).args(["-b", &broker.bootstrap(), "-P", "-t", TOPIC, "-X", "acks=all"]),
        input.as_bytes(),
    );
    let committed = run(
        Command::new(common::python()).arg("-c").arg(COMMIT_AFTER).args([
            broker.bootstrap(),
            GROUP.to_string(),
            TOPIC.to_string(),
            CONSUMED.to_string(),
        ]),
        b"",
    );
    assert_eq!(String::from_utf8_lossy(&committed.stdout).trim(), format!("committed {CONSUMED}"));

    let (status, text) = http_get(metrics, "/metrics");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(&format!("skua_topic_messages_in_total{{topic=\"{TOPIC}\"}} {MESSAGES}\n")), "{text}");
    assert!(
        text.contains(&format!("skua_partition_log_end_offset{{topic=\"{TOPIC}\",partition=\"0\"}} {MESSAGES}\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "skua_consumer_group_lag{{group=\"{GROUP}\",topic=\"{TOPIC}\",partition=\"0\"}} {}\n",
            MESSAGES - CONSUMED
        )),
        "{text}"
    );
    // kcat's acks=all produces waited for their commits: the commit wait histogram counted them.
    let commit_waits: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("skua_produce_commit_wait_seconds_count "))
        .and_then(|count| count.parse().ok())
        .expect("skua_produce_commit_wait_seconds_count");
    assert!(commit_waits >= 1, "{text}");
    // The engine timed its writes, their fdatasyncs (fsync before ack is the default) and the
    // durable log commits; the fetches' file reads were timed too.
    for op in ["write", "fdatasync", "read"] {
        let count = summed(&text, "skua_io_latency_seconds_count{", &format!("op=\"{op}\""));
        assert!(count >= 1, "no {op} timed:\n{text}");
    }
    assert!(summed(&text, "skua_log_flush_latency_seconds_count{", "") >= 1, "{text}");
    assert!(
        text.contains("skua_io_latency_seconds_bucket{shard=\"0\",backend=\"io_uring\",op=\"write\",le=\"1e-06\"}"),
        "{text}"
    );
    // promtool checks the format and Prometheus' naming rules (exit status 1 on any problem).
    let checked = Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().expect("stdin").write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .expect("promtool");
    assert!(
        checked.status.success(),
        "promtool check metrics: {}\n{}{}",
        checked.status,
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert_eq!(http_get(metrics, "/").0, 404);

    // The real server scraping the endpoint every second.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: skua\n    \
             static_configs:\n      - targets: ['{metrics}']\n"
        ),
    )
    .expect("config");
    let prometheus = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let log = dir.path().join("prometheus.log");
    let _server = Server(
        Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={prometheus}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start prometheus"),
    );
    wait_for_value(prometheus, "up{job=\"skua\"}", "1", &log);
    wait_for_value(
        prometheus,
        &format!("skua_topic_messages_in_total{{topic=\"{TOPIC}\"}}"),
        &MESSAGES.to_string(),
        &log,
    );
    wait_for_value(
        prometheus,
        &format!("skua_consumer_group_lag{{group=\"{GROUP}\",topic=\"{TOPIC}\",partition=\"0\"}}"),
        &(MESSAGES - CONSUMED).to_string(),
        &log,
    );
    // Histograms work as ones: quantiles of produce latency and of the disk latencies exist
    // (positive, and below the last finite bucket: nothing here waited 10 s).
    for query in [
        "histogram_quantile(0.99, sum by (le) (skua_request_latency_seconds_bucket{api=\"Produce\"}))",
        "histogram_quantile(0.99, sum by (le) (skua_io_latency_seconds_bucket{op=\"write\"}))",
        "histogram_quantile(0.99, sum by (le) (skua_io_latency_seconds_bucket{op=\"fdatasync\"}))",
        "histogram_quantile(0.5, sum by (le) (skua_io_latency_seconds_bucket{op=\"read\"}))",
        "histogram_quantile(0.99, sum by (le) (skua_log_flush_latency_seconds_bucket))",
    ] {
        let value = wait_for_number(prometheus, query);
        assert!(value > 0.0 && value <= 10.0, "{query} = {value}");
    }
}

#[test]
fn a_metrics_port_already_taken_leaves_the_broker_serving() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let listener = format!("skua.metrics.listener=http://127.0.0.1:{port}");
    // Broker::start waits until the broker answers ApiVersions.
    let broker = Broker::start(&[&listener]);
    assert_eq!(broker.metrics_address(), None);
    assert!(broker.log().contains("cannot listen for metrics"), "{}", broker.log());
    let off = Broker::start(&["skua.metrics.listener=none"]);
    assert_eq!(off.metrics_address(), None);
    drop(taken);
}

/// Every query of the Grafana dashboard (`docs/ops/grafana-dashboard.json`) parses as PromQL:
/// promtool checks them as recording rules, with Grafana's variables replaced by values.
#[test]
fn the_grafana_dashboard_queries_parse() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/ops/grafana-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the dashboard")).expect("JSON");
    let mut rules = String::from("groups:\n- name: dashboard\n  rules:\n");
    let mut count = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let query = target["expr"].as_str().expect("expr");
            assert!(query.contains("skua_"), "{query}");
            let query = query.replace("$__rate_interval", "1m").replace("$instance", ".*").replace("$topic", ".*");
            count += 1;
            rules.push_str(&format!("  - record: dashboard_{count}\n    expr: {}\n", serde_json::json!(query)));
        }
    }
    assert!(count >= 20, "{count} queries");
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let file = dir.path().join("dashboard-rules.yml");
    std::fs::write(&file, rules).expect("rules");
    run(Command::new(tool("promtool")).arg("check").arg("rules").arg(&file), b"");
}
