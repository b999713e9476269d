//! loadgen against the real broker binary: a tiny workload from `bench/workloads/`, then the
//! JSON's counts are checked against what the broker holds (sum of log end offsets asked with
//! kcat, a different client than loadgen's), and bad input gets clear errors.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The netd binary next to this test's profile directory, built if the workspace build did not.
fn netd() -> PathBuf {
    let profile_dir = PathBuf::from(env!("CARGO_BIN_EXE_loadgen")).parent().expect("profile dir").to_path_buf();
    let netd = profile_dir.join("netd");
    if !netd.is_file() {
        let release = profile_dir.ends_with("release");
        let mut build = Command::new(env!("CARGO"));
        build.current_dir(workspace()).args(["build", "-q", "-p", "skua-netd"]);
        if release {
            build.arg("--release");
        }
        assert!(build.status().expect("cargo").success(), "building netd");
    }
    netd
}

struct Broker {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts netd on a port it picks itself (port 0, read back from `--port-file`: a port found free
/// here and handed over could be taken by another process in between).
fn start_broker() -> Broker {
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let number = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("loadgen-netd-{}-{number}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let log = std::fs::File::create(dir.join("netd.log")).expect("log");
    let port_file = dir.join("netd.port");
    let mut child = Command::new(netd())
        .arg("--port-file")
        .arg(&port_file)
        .args(["--override", "listeners=PLAINTEXT://127.0.0.1:0"])
        .args(["--override", &format!("log.dirs={}", dir.join("data").display())])
        .args(["--override", "group.initial.rebalance.delay.ms=0"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("netd");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(dir.join("netd.log")).unwrap_or_default().contains("all shards serving") {
        assert!(child.try_wait().expect("wait").is_none(), "netd exited: see {}", dir.join("netd.log").display());
        assert!(Instant::now() < deadline, "netd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Written before the shards start, so present once they serve.
    let port = std::fs::read_to_string(&port_file).ok().and_then(|text| text.trim().parse().ok()).expect("port file");
    Broker { child, port, dir }
}

fn loadgen(args: &[&str], output: &Path) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .arg("--output")
        .arg(output)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("loadgen");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("loadgen ran longer than 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("output")
}

/// The JSON result of a run that succeeded and printed `says`.
fn result_of(run: &std::process::Output, output: &Path, says: &str) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "loadgen failed:\n{stderr}");
    assert!(stderr.contains(says), "no {says:?} in: {stderr}");
    serde_json::from_str(&std::fs::read_to_string(output).expect("result")).expect("json")
}

/// Sum of log end offsets of `topic` as kcat reports them (`-Q` queries offset -1 per partition).
fn end_offsets_with_kcat(port: u16, topic: &str, partitions: i32) -> i64 {
    let mut command = Command::new("kcat");
    command.args(["-b", &format!("127.0.0.1:{port}"), "-Q"]);
    for partition in 0..partitions {
        command.args(["-t", &format!("{topic}:{partition}:-1")]);
    }
    let output = command.output().expect("kcat is installed by scripts/test-deps.sh");
    assert!(output.status.success(), "kcat -Q: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().last()?.parse::<i64>().ok())
        .sum()
}

#[test]
fn a_tiny_workload_counts_what_the_broker_holds() {
    tiny_workload_counts_what_the_broker_holds("rdkafka", "rdkafka", &[]);
}

#[test]
fn the_native_driver_counts_what_the_broker_holds() {
    tiny_workload_counts_what_the_broker_holds("native", "rdkafka", &[]);
}

/// Two native consumers share the four partitions (0 and 2, 1 and 3) while librdkafka produces.
#[test]
fn native_consumers_read_everything_the_broker_holds() {
    tiny_workload_counts_what_the_broker_holds("rdkafka", "native", &["--consumer-per-subscription", "2"]);
}

fn tiny_workload_counts_what_the_broker_holds(driver: &str, consumer_driver: &str, extra: &[&str]) {
    let broker = start_broker();
    let output = broker.dir.join("result.json");
    let workload = workspace().join("bench/workloads/smoke-1kb-4p.yaml");
    let bootstrap = format!("127.0.0.1:{}", broker.port);
    let mut args = vec![
        "--bootstrap",
        &bootstrap,
        "--workload",
        workload.to_str().expect("utf8"),
        "--test-duration-minutes",
        "0.1",
        "--broker-name",
        "skua",
        "--durability",
        "fsync before ack",
        "--driver",
        driver,
        "--consumer-driver",
        consumer_driver,
        "--idempotence",
        "false",
    ];
    args.extend_from_slice(extra);
    let run = loadgen(&args, &output);
    let result = result_of(&run, &output, "----- Aggregated Pub Latency (ms)");
    let published = result["runPublished"].as_i64().expect("runPublished");
    assert!(published > 20_000, "about 5000 msg/s for 6 s: {published}");
    assert_eq!(result["totalPublishErrors"], 0);
    assert_eq!(result["runConsumed"].as_i64(), Some(published), "the consumer read everything");
    assert!(result["aggregatedPublishLatency99pct"].as_f64().expect("p99") > 0.0);
    assert!(result["aggregatedEndToEndLatency50pct"].as_f64().expect("e2e p50") > 0.0);
    assert!(!result["consumerLag"].as_array().expect("lag").is_empty());
    assert_eq!(result["metadata"]["broker"], "skua");
    let driver_text = result["metadata"]["driver"].as_str().expect("driver");
    match (driver, consumer_driver) {
        ("native", _) => assert!(driver_text.starts_with("producers: native (kafka-protocol"), "{driver_text}"),
        (_, "native") => assert!(driver_text.ends_with("consumers: native (kafka-protocol 0.18)"), "{driver_text}"),
        _ => assert!(driver_text.starts_with("rdkafka"), "{driver_text}"),
    }
    assert_eq!(result["driver"], driver);
    assert_eq!(result["consumerDriver"], consumer_driver);
    // Topic name: the run's prefix and id; find it from the broker with kcat -L.
    let listing = Command::new("kcat").args(["-b", &bootstrap, "-L"]).output().expect("kcat -L");
    let listing = String::from_utf8_lossy(&listing.stdout);
    let topic = listing
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("topic \"loadgen-")
                .map(|rest| format!("loadgen-{}", rest.split('"').next().unwrap_or("")))
        })
        .expect("the run's topic");
    assert_eq!(end_offsets_with_kcat(broker.port, &topic, 4), published, "JSON count = what the broker holds");
    assert_eq!(
        result["metadata"]["brokerEndOffsetsSum"].as_str().and_then(|text| text.parse::<i64>().ok()),
        Some(published),
        "the batched end-offset probe agrees with kcat"
    );
    // Every lag sample covers every partition (batched ListOffsets answered them all).
    for sample in result["consumerLag"].as_array().expect("lag") {
        let partitions = sample["perPartition"].as_object().expect("per partition");
        assert_eq!(partitions.len(), 4, "{sample}");
        assert!(partitions.keys().all(|key| key.starts_with(&topic)), "{sample}");
    }
}

/// A read-back with native consumers: a backlog written at max rate by the lean producer, then
/// read by three native consumers over four partitions (one takes two), each record counted once.
#[test]
fn native_consumers_read_back_a_backlog_whole() {
    let broker = start_broker();
    let output = broker.dir.join("result.json");
    let workload = workspace().join("bench/workloads/smoke-1kb-4p.yaml");
    let bootstrap = format!("127.0.0.1:{}", broker.port);
    let broker_pid = broker.child.id().to_string();
    let run = loadgen(
        &[
            "--bootstrap",
            &bootstrap,
            "--broker-pid",
            &broker_pid,
            "--workload",
            workload.to_str().expect("utf8"),
            "--producer-rate",
            "0",
            "--consumer-backlog-size-gb",
            "0.03",
            "--consumer-per-subscription",
            "3",
            "--driver",
            "native",
            "--consumer-driver",
            "native",
            "--idempotence",
            "false",
        ],
        &output,
    );
    let result = result_of(&run, &output, "----- Read-back:");
    let published = result["runPublished"].as_i64().expect("runPublished");
    assert!(published as f64 * 1024.0 >= 0.03 * 1024.0 * 1024.0 * 1024.0, "the backlog was written: {published}");
    assert_eq!(result["runConsumed"].as_i64(), Some(published), "every record read once");
    assert_eq!(
        result["metadata"]["brokerEndOffsetsSum"].as_str().and_then(|text| text.parse::<i64>().ok()),
        Some(published),
        "the broker holds what was counted"
    );
    assert!(result["readBackConsumeMbPerSec"].as_f64().expect("read-back rate") > 0.0);
    // The client's and the broker's CPU per phase: some was used, and no more than the cores allow.
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get()) as f64;
    for (cpu, wall) in [
        ("producePhaseCpuSeconds", "producePhaseSeconds"),
        ("catchUpCpuSeconds", "catchUpSeconds"),
        ("brokerProducePhaseCpuSeconds", "producePhaseSeconds"),
        ("brokerCatchUpCpuSeconds", "catchUpSeconds"),
    ] {
        let (cpu_seconds, wall_seconds) = (result[cpu].as_f64().expect(cpu), result[wall].as_f64().expect(wall));
        eprintln!("{cpu} {cpu_seconds} over {wall} {wall_seconds}");
        assert!(
            cpu_seconds > 0.0 && cpu_seconds <= wall_seconds * cores + 0.02,
            "{cpu} {cpu_seconds} against {wall} {wall_seconds} on {cores} cores"
        );
    }
}

#[test]
fn bad_input_gets_clear_errors() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let output = dir.join("never-written.json");
    // A listener that never accepts holds this port: connections queue and nothing ever answers,
    // and no broker can take the port while the test runs (as it could a port merely found free).
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let run = loadgen(&["--bootstrap", &format!("127.0.0.1:{port}"), "--test-duration-minutes", "0.1"], &output);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("no Kafka broker answered"), "{stderr}");
    drop(silent);
    let run = loadgen(&["--message-size", "4"], &output);
    assert!(String::from_utf8_lossy(&run.stderr).contains("messageSize must be"), "message size checked");
    let run = loadgen(&["--workload", "/nonexistent.yaml"], &output);
    assert!(String::from_utf8_lossy(&run.stderr).contains("/nonexistent.yaml"), "missing workload named");
    let run = loadgen(&["--driver", "native", "--compression", "zstd", "--idempotence", "false"], &output);
    assert!(String::from_utf8_lossy(&run.stderr).contains("does not compress"), "native refuses compression");
    let run = loadgen(&["--driver", "native", "--idempotence", "true"], &output);
    assert!(String::from_utf8_lossy(&run.stderr).contains("does not do idempotence"), "and idempotence");
    let run = loadgen(&["--consumer-driver", "native", "--compression", "lz4"], &output);
    assert!(String::from_utf8_lossy(&run.stderr).contains("native consumer does not decompress"), "native reads");
    let run = loadgen(&["--test-duration-minutes", "100000"], &output);
    assert!(String::from_utf8_lossy(&run.stderr).contains("24 h"), "runs are bounded");
}
