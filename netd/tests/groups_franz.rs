//! franz-go (Go, an independent Kafka client) driving a classic consumer group against the real
//! broker binary: two kgo group members with the default cooperative-sticky balancer split a
//! 4-partition topic and commit everything they consume; kadm describes the group (Stable, both
//! members, every partition assigned once), fetches its offsets (equal to the end offsets) and its
//! lag (0); when one member leaves, the other takes its partitions without revoking its own and
//! consumes what is produced next; then kadm deletes one partition's offsets and the group.
//! franz-go 1.22 commits and fetches offsets with OffsetCommit and OffsetFetch v10 (KIP-848: topics
//! by id) when the broker offers them, classic group or not: its debug log shows every request's
//! version, and the test checks that these two went out as v10 only.
//!
//! The Go program is `tests/go/groups` (its modules are downloaded by scripts/test-deps.sh); this
//! test builds it and runs it. `SKUA_REFERENCE_BOOTSTRAP=host:port` runs it against an already
//! running broker instead of netd; that is how it was checked against Apache Kafka 4.4.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Broker;

/// The Go program's own deadline (`-timeout`); the test kills it a little after that.
const PROGRAM_TIMEOUT: Duration = Duration::from_secs(50);

fn go() -> PathBuf {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|dir| PathBuf::from(dir).join("go"))
        .chain([PathBuf::from("/usr/local/go/bin/go")])
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("go not found: groups_franz needs Go 1.26 or newer on PATH (then run scripts/test-deps.sh)")
        })
}

/// Builds `tests/go/groups` into the cargo target's tmp dir, offline: scripts/test-deps.sh has
/// downloaded its modules into the Go module cache.
fn build_program() -> PathBuf {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/go/groups");
    let binary = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("groups-franz");
    let started = Instant::now();
    let output = Command::new(go())
        .arg("build")
        .arg("-o")
        .arg(&binary)
        .arg(".")
        .current_dir(&source)
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=readonly -buildvcs=false")
        .output()
        .expect("run go build");
    assert!(
        output.status.success(),
        "go build in {} failed ({}); if a module is missing, run scripts/test-deps.sh:\n{}{}",
        source.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("go build: {:.1}s", started.elapsed().as_secs_f64());
    binary
}

#[test]
fn franz_go_cooperative_group_and_kadm() {
    let program = build_program();
    let broker = match std::env::var("SKUA_REFERENCE_BOOTSTRAP") {
        Ok(_) => None,
        Err(_) => Some(Broker::start(&["group.initial.rebalance.delay.ms=0"])),
    };
    let bootstrap = match &broker {
        Some(broker) => broker.bootstrap(),
        None => std::env::var("SKUA_REFERENCE_BOOTSTRAP").expect("reference bootstrap"),
    };
    let unique = format!("{}-{}", std::process::id(), std::time::UNIX_EPOCH.elapsed().expect("clock").as_millis());
    let started = Instant::now();
    let run = common::run_bounded(
        Command::new(&program)
            .arg("-bootstrap")
            .arg(&bootstrap)
            .arg("-topic")
            .arg(format!("franz-group-topic-{unique}"))
            .arg("-group")
            .arg(format!("franz-group-{unique}"))
            .arg("-timeout")
            .arg(format!("{}s", PROGRAM_TIMEOUT.as_secs()))
            .arg("-log")
            .arg("debug"),
        b"",
        PROGRAM_TIMEOUT + Duration::from_secs(10),
    );
    let common::Bounded { status, stdout, stderr, killed } = run;
    eprintln!("groups program: {:.1}s against {bootstrap}\n{stdout}", started.elapsed().as_secs_f64());
    if !status.success() || killed || !stdout.contains("PASS") {
        let log = broker.as_ref().map(Broker::log).unwrap_or_else(|| "(reference broker: see its own log)".into());
        let log_lines: Vec<&str> = log.lines().collect();
        let stderr_lines: Vec<&str> = stderr.lines().collect();
        panic!(
            "the groups program {} ({status}):\n{stdout}\nfranz-go log (last lines):\n{}\n\nnetd log (last lines):\n{}",
            if killed { "was killed after its deadline" } else { "failed" },
            stderr_lines[stderr_lines.len().saturating_sub(150)..].join("\n"),
            log_lines[log_lines.len().saturating_sub(80)..].join("\n"),
        );
    }
    // kgo logs "wrote <Request> v<version>" for every request it sends.
    let lines_with = |text: &str| stderr.lines().filter(|line| line.contains(text)).count();
    for request in ["OffsetCommit", "OffsetFetch"] {
        let sent = lines_with(&format!("wrote {request} v"));
        assert!(sent > 0, "the group members and kadm sent {request}");
        assert_eq!(lines_with(&format!("wrote {request} v10")), sent, "every {request} went out as v10 (topics by id)");
    }
}
