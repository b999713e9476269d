//! Test harness: starts the real `netd` binary on a loopback port it picks itself (port 0, read
//! back from `--port-file`: no other process can take the port in between) with a fresh data
//! directory, and finds the client tools the tests drive (installed by scripts/test-deps.sh).

#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Broker {
    pub child: Option<Child>,
    /// Port 0 until the first start has bound one; restarts reuse that port.
    pub address: SocketAddr,
    pub data_dir: PathBuf,
    pub extra: Vec<String>,
    /// RLIMIT_NOFILE (soft and hard) the broker runs under, if the test sets one.
    pub open_files_max: Option<u64>,
    _dir: Option<tempfile::TempDir>,
}

/// True when something at `address` answers an ApiVersions v0 request (a bare TCP connect is not
/// enough: a killed broker's listening socket can linger for a moment in the kernel).
pub fn answers_api_versions(address: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    // size, api key 18, version 0, correlation id 7, client id "probe"
    let mut request = vec![0, 0, 0, 15, 0, 18, 0, 0, 0, 0, 0, 7, 0, 5];
    request.extend_from_slice(b"probe");
    let mut size = [0u8; 4];
    stream.write_all(&request).is_ok() && stream.read_exact(&mut size).is_ok() && u32::from_be_bytes(size) > 4
}

/// How a test stops the broker before starting it again.
#[derive(Clone, Copy, Debug)]
pub enum Restart {
    Sigterm,
    Sigkill,
}

impl Broker {
    /// Starts a broker with `extra` overrides (key=value).
    pub fn start(extra: &[&str]) -> Broker {
        Broker::start_with_open_files_max(extra, None)
    }

    /// Starts a broker with `extra` overrides under an open-files limit (RLIMIT_NOFILE).
    pub fn start_with_open_files_max(extra: &[&str], open_files_max: Option<u64>) -> Broker {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
        let data_dir = dir.path().join("data");
        let mut broker = Broker {
            child: None,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            extra: extra.iter().map(|entry| entry.to_string()).collect(),
            open_files_max,
            _dir: if std::env::var_os("SKUA_KEEP_TEST_DIRS").is_some() {
                eprintln!("test dir kept: {}", dir.path().display());
                std::mem::forget(dir);
                None
            } else {
                Some(dir)
            },
        };
        broker.spawn();
        broker
    }

    /// Starts the broker: the first time on port 0 (it binds a free port and writes it to the
    /// port file), later on the port it bound then, so that clients reconnect across a restart.
    pub fn spawn(&mut self) {
        let port_file = self.data_dir.with_extension("port");
        let _ = std::fs::remove_file(&port_file);
        let _ = std::fs::remove_file(self.metrics_port_file());
        let mut command = Command::new(env!("CARGO_BIN_EXE_netd"));
        command
            .arg("--port-file")
            .arg(&port_file)
            // Metrics on a free port (written before the port file), not the default 9644 that
            // parallel tests would contend for; a test may override the listener.
            .arg("--metrics-port-file")
            .arg(self.metrics_port_file())
            .arg("--override")
            .arg("skua.metrics.listener=http://127.0.0.1:0")
            .arg("--override")
            .arg(format!("listeners=PLAINTEXT://{}", self.address))
            .arg("--override")
            .arg(format!("log.dirs={}", self.data_dir.display()))
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.data_dir.with_extension("log"))
                    .expect("log file"),
            ));
        for entry in &self.extra {
            command.arg("--override").arg(entry);
        }
        if let Some(limit) = self.open_files_max {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let value = libc::rlimit { rlim_cur: limit as libc::rlim_t, rlim_max: limit as libc::rlim_t };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &value) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        self.child = Some(command.spawn().expect("start netd"));
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file).ok().and_then(|text| text.trim().parse().ok()) {
                break port;
            }
            if let Some(status) = self.child.as_mut().and_then(|child| child.try_wait().expect("wait")) {
                panic!("netd exited ({status}) before listening:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "netd did not write {}:\n{}", port_file.display(), self.log());
            std::thread::sleep(Duration::from_millis(20));
        };
        if self.address.port() == 0 {
            self.address.set_port(port);
        }
        assert_eq!(self.address.port(), port, "a restart listens on the port of the first start");
        while !answers_api_versions(self.address) {
            assert!(Instant::now() < deadline, "netd did not start listening on {}:\n{}", self.address, self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn metrics_port_file(&self) -> PathBuf {
        self.data_dir.with_extension("metrics-port")
    }

    /// Where this run of the broker serves `/metrics` (none when the test turned it off).
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        let port = std::fs::read_to_string(self.metrics_port_file()).ok()?.trim().parse().ok()?;
        Some(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    pub fn address_str(&self) -> &'static str {
        Box::leak(self.address.to_string().into_boxed_str())
    }

    pub fn bootstrap(&self) -> String {
        self.address.to_string()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.with_extension("log")).unwrap_or_default()
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
            assert!(status.success());
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(status) = child.try_wait().expect("wait") {
                    assert!(status.success(), "netd exited with {status} after SIGTERM:\n{}", self.log());
                    break;
                }
                assert!(Instant::now() < deadline, "netd did not stop after SIGTERM");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Stops the broker the given way and starts it again on the same port and data. After a
    /// SIGTERM the log must show the clean shutdown.
    pub fn restart(&mut self, restart: Restart) {
        match restart {
            Restart::Sigterm => self.stop(),
            Restart::Sigkill => self.kill(),
        }
        self.spawn();
        if matches!(restart, Restart::Sigterm) {
            assert!(self.log().contains("netd stopped cleanly"), "{}", self.log());
        }
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill");
            child.wait().expect("wait");
        }
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker running").id()
    }

    /// A `/proc/<pid>/status` field in KiB (VmRSS, VmSize, VmHWM, ...).
    pub fn status_kib(&self, field: &str) -> u64 {
        proc_status_kib(self.pid(), field)
    }

    /// CPU time the broker used so far (utime + stime), in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        proc_cpu_ticks(self.pid())
    }

    /// Resets the broker's peak RSS (VmHWM) to its current RSS (`/proc/<pid>/clear_refs`, 5).
    pub fn reset_peak_rss(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").expect("clear_refs");
    }

    /// How many file descriptors the broker has open.
    pub fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, |entries| entries.count())
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| child.try_wait().expect("wait").is_none())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A `/proc/<pid>/status` field in KiB; panics if the process or field is missing.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    let line = status
        .lines()
        .find(|line| line.split(':').next() == Some(field))
        .unwrap_or_else(|| panic!("{field} not in /proc/{pid}/status"));
    line.split_whitespace().nth(1).and_then(|value| value.parse().ok()).expect("a number of kB")
}

/// utime + stime of a process from `/proc/<pid>/stat`, in clock ticks.
pub fn proc_cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // The command name may hold spaces; the fields after its closing parenthesis start at field 3.
    let fields: Vec<&str> = stat.rsplit_once(')').expect("comm").1.split_whitespace().collect();
    let field = |number: usize| fields[number - 3].parse::<u64>().expect("ticks");
    field(14) + field(15)
}

/// Time on a CPU, in nanoseconds (`/proc/<pid>/task/<tid>/schedstat`), summed over the threads
/// of process `pid` whose name starts with `prefix` (`shard-`, `codec-`). Unlike wall time, it
/// does not grow when other processes take the machine's cores.
pub fn threads_cpu_ns(pid: u32, prefix: &str) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc/<pid>/task");
    tasks
        .filter_map(|task| task.ok())
        .filter(|task| std::fs::read_to_string(task.path().join("comm")).is_ok_and(|name| name.starts_with(prefix)))
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .map(|line| line.split_whitespace().next().and_then(|ns| ns.parse::<u64>().ok()).expect("schedstat ns"))
        .sum()
}

/// Time the calling thread has spent on a CPU, in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`: exact,
/// where the running thread's schedstat may lag by a tick).
pub fn this_thread_cpu_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec the call writes into.
    let done = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(done, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Path of a tool the tests need; fails with the install hint if it is missing.
pub fn tool(name: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let candidate = Path::new(dir).join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("{name} not found: run scripts/test-deps.sh (scripts/test.sh does) to install the test clients");
}

/// Runs a command with stdin, fails the test on a non-zero exit, returns stdout.
pub fn run(command: &mut Command, stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    child.stdin.take().expect("stdin").write_all(stdin).expect("write stdin");
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "{command:?} failed: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// What a process printed, and how it ended.
#[derive(Debug)]
pub struct Bounded {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Killed because it ran past its bound.
    pub killed: bool,
}

/// Runs `command` with `stdin` written to it, killing it after `bound`; never hangs a test.
pub fn run_bounded(command: &mut Command, stdin: &[u8], bound: Duration) -> Bounded {
    use std::io::{Read, Write};
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("{command:?}: {error}"));
    let mut input = child.stdin.take().expect("stdin");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&stdin));
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = reader(Box::new(child.stdout.take().expect("stdout")));
    let stderr = reader(Box::new(child.stderr.take().expect("stderr")));
    let (status, killed) = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break (status, false);
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            break (child.wait().expect("wait"), true);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    Bounded { status, stdout: stdout.join().unwrap_or_default(), stderr: stderr.join().unwrap_or_default(), killed }
}

/// The Python of the test venv (confluent-kafka, kafka-python), made by scripts/test-deps.sh.
pub fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/venv/bin/python");
    assert!(venv.is_file(), "{} missing: run scripts/test-deps.sh (scripts/test.sh does)", venv.display());
    venv
}

/// Kafka's `kafka-configs` against `bootstrap` with `args` (bounded to a minute): whether it
/// succeeded, and what it printed.
pub fn kafka_configs(bootstrap: &str, args: &[&str]) -> (bool, String) {
    let classpath = format!("{}/*", kafka_libs().display());
    let done = run_bounded(
        Command::new("java")
            .arg("-cp")
            .arg(&classpath)
            .arg("org.apache.kafka.tools.ConfigCommand")
            .arg("--bootstrap-server")
            .arg(bootstrap)
            .args(args),
        b"",
        Duration::from_secs(60),
    );
    (done.status.success(), format!("{}{}", done.stdout, done.stderr))
}

/// Apache Kafka's jars (CLI tools), fetched by scripts/kafka-jars.sh for the version in the pom.
pub fn kafka_libs() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let pom = std::fs::read_to_string(manifest.join("../scripts/kafka/pom.xml")).expect("pom");
    let version = pom.split("<kafka.version>").nth(1).and_then(|rest| rest.split('<').next()).expect("kafka.version");
    let libs = manifest.join(format!("../.cache/kafka-{version}/libs"));
    assert!(
        libs.join(".complete").is_file(),
        "{} missing: run scripts/test-deps.sh (scripts/test.sh does)",
        libs.display()
    );
    libs
}

/// A Python scenario from `tests/python/`, run with the venv's Python: its stdout lines arrive
/// one by one (`wait_for`), its stdin takes commands (`tell`), its stderr is collected.
pub struct PythonScript {
    name: String,
    pub child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    exit_timeout: Duration,
}

impl PythonScript {
    /// Runs `tests/python/<script> <bootstrap> <arguments…>`; `finish` waits `exit_timeout` for
    /// it to exit before killing it.
    pub fn start(script: &str, bootstrap: &str, arguments: &[&str], exit_timeout: Duration) -> PythonScript {
        use std::io::{BufRead, Read};
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(script);
        let mut child = Command::new(python())
            .arg(path)
            .arg(bootstrap)
            .args(arguments)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("start {script}: {error}"));
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let name = if arguments.is_empty() { script.to_string() } else { format!("{script} {}", arguments.join(" ")) };
        PythonScript { name, child, lines, stdout: Vec::new(), stderr: Some(stderr), exit_timeout }
    }

    /// Waits for a stdout line equal to `expected`; None if the script ended or time ran out.
    pub fn wait_for(&mut self, expected: &str, timeout: Duration) -> Option<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            self.stdout.push(line.clone());
            if line == expected {
                return Some(());
            }
        }
    }

    /// Writes one line to the script's stdin; false if it stopped reading.
    pub fn tell(&mut self, line: &str) -> bool {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(format!("{line}\n").as_bytes()).and_then(|()| stdin.flush()).is_ok()
    }

    /// Gives the script a moment to exit, kills it if it still runs, and returns what it said.
    /// Processes it started see their stdin close and exit.
    pub fn finish(&mut self) -> String {
        let deadline = Instant::now() + self.exit_timeout;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let status = self.child.wait().map(|status| status.to_string()).unwrap_or_default();
        let stderr = self.stderr.take().map(|thread| thread.join().unwrap_or_default()).unwrap_or_default();
        self.stdout.extend(self.lines.try_iter());
        format!("{}: {status}\nstdout:\n{}\nstderr:\n{stderr}", self.name, self.stdout.join("\n"))
    }
}

/// Where a scenario runs: a fresh netd with `config`, or the broker `SKUA_REFERENCE_BOOTSTRAP`
/// names (how the group tests were validated against a real Apache Kafka).
pub enum Target {
    Netd(Broker),
    Reference(String),
}

impl Target {
    pub fn start(config: &[&str]) -> Target {
        match std::env::var("SKUA_REFERENCE_BOOTSTRAP") {
            Ok(bootstrap) => Target::Reference(bootstrap),
            Err(_) => Target::Netd(Broker::start(config)),
        }
    }

    pub fn bootstrap(&self) -> String {
        match self {
            Target::Netd(broker) => broker.bootstrap(),
            Target::Reference(bootstrap) => bootstrap.clone(),
        }
    }

    /// The last `lines` of netd's log, for a failure message.
    pub fn log_tail(&self, lines: usize) -> String {
        match self {
            Target::Netd(broker) => {
                let log = broker.log();
                let all: Vec<&str> = log.lines().collect();
                let first = all.len().saturating_sub(lines);
                format!("broker log (last {} lines):\n{}", all.len() - first, all[first..].join("\n"))
            }
            Target::Reference(bootstrap) => format!("(reference broker at {bootstrap}: see its own log)"),
        }
    }
}

/// A request frame, size prefix included, encoded with `kafka-protocol` (client id "skua-test").
pub fn request_frame<M: kafka_protocol::protocol::Encodable>(
    api_key: kafka_protocol::messages::ApiKey,
    version: i16,
    correlation_id: i32,
    body: &M,
) -> Vec<u8> {
    use kafka_protocol::protocol::{Encodable, StrBytes};
    let mut buffer = bytes::BytesMut::new();
    let header = kafka_protocol::messages::RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("skua-test")));
    header.encode(&mut buffer, api_key.request_header_version(version)).expect("header");
    body.encode(&mut buffer, version).expect("body");
    let mut frame = (buffer.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&buffer);
    frame
}

/// Reads one response frame from `stream` and decodes its header (ApiVersions answers always
/// carry a v0 header); returns the correlation id and the body.
pub fn read_response(
    stream: &mut TcpStream,
    api_key: kafka_protocol::messages::ApiKey,
    version: i16,
) -> (i32, bytes::Bytes) {
    use kafka_protocol::protocol::Decodable;
    use std::io::Read;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("response size");
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).expect("response body");
    let mut bytes = bytes::Bytes::from(body);
    let header_version = if api_key == kafka_protocol::messages::ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    };
    let header = kafka_protocol::messages::ResponseHeader::decode(&mut bytes, header_version).expect("response header");
    (header.correlation_id, bytes)
}

/// Well-formed requests of the admin APIs (AlterPartitionReassignments, ListPartitionReassignments,
/// DescribeLogDirs, IncrementalAlterConfigs, the ACL APIs, ListTransactions), one per served version, each with arrays and
/// strings in it for the hostile cases to poison: (api key, version, frame with its size prefix).
pub fn admin_request_frames() -> Vec<(kafka_protocol::messages::ApiKey, i16, Vec<u8>)> {
    use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
    use kafka_protocol::messages::{
        AlterPartitionReassignmentsRequest, DescribeLogDirsRequest, IncrementalAlterConfigsRequest,
        ListPartitionReassignmentsRequest,
    };
    use kafka_protocol::messages::{ApiKey, BrokerId, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let name = || TopicName(StrBytes::from_static_str("bad-input"));
    let mut frames = Vec::new();
    for version in 0..=1 {
        let mut partition = ReassignablePartition::default();
        partition.partition_index = 0;
        partition.replicas = Some(vec![BrokerId(1), BrokerId(2)]);
        let mut topic = ReassignableTopic::default();
        topic.name = name();
        topic.partitions = vec![partition.clone(), ReassignablePartition::default()];
        let mut body = AlterPartitionReassignmentsRequest::default();
        body.timeout_ms = 1000;
        body.topics = vec![topic];
        frames.push((
            ApiKey::AlterPartitionReassignments,
            version,
            request_frame(ApiKey::AlterPartitionReassignments, version, 11, &body),
        ));

        let mut resource = AlterConfigsResource::default();
        resource.resource_type = 2;
        resource.resource_name = StrBytes::from_static_str("bad-input");
        let mut config = AlterableConfig::default();
        config.name = StrBytes::from_static_str("retention.ms");
        config.config_operation = 1;
        resource.configs = vec![config.clone(), config];
        let mut body = IncrementalAlterConfigsRequest::default();
        body.resources = vec![resource];
        frames.push((
            ApiKey::IncrementalAlterConfigs,
            version,
            request_frame(ApiKey::IncrementalAlterConfigs, version, 11, &body),
        ));
    }
    let mut topic = ListPartitionReassignmentsTopics::default();
    topic.name = name();
    topic.partition_indexes = vec![0, 1, 2];
    let mut body = ListPartitionReassignmentsRequest::default();
    body.timeout_ms = 1000;
    body.topics = Some(vec![topic]);
    frames.push((
        ApiKey::ListPartitionReassignments,
        0,
        request_frame(ApiKey::ListPartitionReassignments, 0, 11, &body),
    ));
    for version in 1..=4 {
        let mut topic = DescribableLogDirTopic::default();
        topic.topic = name();
        topic.partitions = vec![0, 1, 2];
        let mut body = DescribeLogDirsRequest::default();
        body.topics = Some(vec![topic]);
        frames.push((ApiKey::DescribeLogDirs, version, request_frame(ApiKey::DescribeLogDirs, version, 11, &body)));
    }
    // The ACL APIs (no authorizer: answered with SECURITY_DISABLED) and ListTransactions.
    use kafka_protocol::messages::create_acls_request::AclCreation;
    use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
    use kafka_protocol::messages::{
        CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest, ListTransactionsRequest, ProducerId,
    };
    for version in 1..=3 {
        let mut body = DescribeAclsRequest::default();
        body.resource_type_filter = 2;
        body.resource_name_filter = Some(StrBytes::from_static_str("bad-input"));
        body.pattern_type_filter = 3;
        body.principal_filter = Some(StrBytes::from_static_str("User:alice"));
        body.operation = 1;
        body.permission_type = 1;
        frames.push((ApiKey::DescribeAcls, version, request_frame(ApiKey::DescribeAcls, version, 11, &body)));
        let mut creation = AclCreation::default();
        creation.resource_type = 2;
        creation.resource_name = StrBytes::from_static_str("bad-input");
        creation.resource_pattern_type = 3;
        creation.principal = StrBytes::from_static_str("User:alice");
        creation.host = StrBytes::from_static_str("*");
        creation.operation = 3;
        creation.permission_type = 3;
        let mut body = CreateAclsRequest::default();
        body.creations = vec![creation.clone(), creation];
        frames.push((ApiKey::CreateAcls, version, request_frame(ApiKey::CreateAcls, version, 11, &body)));
        let mut filter = DeleteAclsFilter::default();
        filter.resource_type_filter = 2;
        filter.resource_name_filter = Some(StrBytes::from_static_str("bad-input"));
        filter.pattern_type_filter = 3;
        filter.operation = 1;
        filter.permission_type = 1;
        let mut body = DeleteAclsRequest::default();
        body.filters = vec![filter.clone(), filter];
        frames.push((ApiKey::DeleteAcls, version, request_frame(ApiKey::DeleteAcls, version, 11, &body)));
    }
    for version in 0..=2 {
        let mut body = ListTransactionsRequest::default();
        body.state_filters = vec![StrBytes::from_static_str("Ongoing"), StrBytes::from_static_str("bad-input")];
        body.producer_id_filters = vec![ProducerId(1), ProducerId(2)];
        if version >= 1 {
            body.duration_filter = 1000;
        }
        if version >= 2 {
            body.transactional_id_pattern = Some(StrBytes::from_static_str("tx-[0-9]+"));
        }
        frames.push((ApiKey::ListTransactions, version, request_frame(ApiKey::ListTransactions, version, 11, &body)));
    }
    frames
}

/// The `/metrics` text a broker serves at `address` (the whole HTTP response; status 200 checked).
pub fn scrape_metrics(address: SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(address).expect("connect to /metrics");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream.write_all(b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n").expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
    response
}
