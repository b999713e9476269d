//! One idempotent producer (confluent-kafka, then kafka-python) keeps producing across a broker
//! restart, by SIGTERM and by SIGKILL: the same producer instance, with the same producer id and
//! epoch, sends 2,000 messages with acks=all, waits while the broker is stopped and started again
//! on the same data directory and port, then sends 2,000 more. Every send succeeds, no fatal error,
//! no new producer id and no epoch bump; a consumer reads back exactly the 4,000 messages, each
//! once, in production order per partition, at contiguous offsets. A probe producer speaking raw
//! Produce requests checks that the broker rebuilt its sequence state: the last batch before the
//! restart is a duplicate after it, a gap is OUT_OF_ORDER_SEQUENCE_NUMBER.
//!
//! The Python side is `tests/python/restart.py`: it prints `READY-FOR-RESTART` after phase 1 and
//! waits for `RESTARTED` on stdin. Every wait here is bounded, so a hang fails the test.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::Broker;

/// Phase 1 (topic creation, 2,000 messages) must be done within this.
const PHASE_ONE_TIMEOUT: Duration = Duration::from_secs(30);
/// Phase 2 and the read back, from the restart on.
const PHASE_TWO_TIMEOUT: Duration = Duration::from_secs(40);
/// After its last line, the script exits within this or is killed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug)]
enum Restart {
    Sigterm,
    Sigkill,
}

/// The running script: its stdout lines arrive on `lines`; its stderr is collected by a thread.
struct Script {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Script {
    fn start(client: &str, broker: &Broker) -> Script {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/restart.py");
        let mut child = Command::new(common::python())
            .arg(script)
            .arg(broker.bootstrap())
            .arg(client)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start restart.py");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
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
        Script { child, lines, stdout: Vec::new(), stderr: Some(stderr) }
    }

    /// Waits for a stdout line equal to `expected`; None if the script ended or time ran out.
    fn wait_for(&mut self, expected: &str, timeout: Duration) -> Option<()> {
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

    /// Gives the script a moment to exit, kills it if it still runs, and returns what it said.
    fn finish(&mut self) -> String {
        let deadline = Instant::now() + EXIT_TIMEOUT;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let status = self.child.wait().map(|status| status.to_string()).unwrap_or_default();
        let stderr = self.stderr.take().map(|thread| thread.join().unwrap_or_default()).unwrap_or_default();
        self.stdout.extend(self.lines.try_iter());
        format!("restart.py {status}\nstdout:\n{}\nstderr:\n{stderr}", self.stdout.join("\n"))
    }
}

fn check(client: &str, restart: Restart) {
    let started = Instant::now();
    let mut broker = Broker::start(&[]);
    let mut script = Script::start(client, &broker);
    if script.wait_for("READY-FOR-RESTART", PHASE_ONE_TIMEOUT).is_none() {
        panic!("phase 1 did not finish:\n{}\nbroker log:\n{}", script.finish(), broker.log());
    }
    let phase_one = started.elapsed();
    match restart {
        Restart::Sigterm => broker.stop(),
        Restart::Sigkill => broker.kill(),
    }
    broker.spawn();
    if matches!(restart, Restart::Sigterm) {
        assert!(broker.log().contains("netd stopped cleanly"), "{}", broker.log());
    }
    let stdin = script.child.stdin.as_mut().expect("stdin");
    if stdin.write_all(b"RESTARTED\n").and_then(|()| stdin.flush()).is_err() {
        panic!("restart.py stopped waiting:\n{}\nbroker log:\n{}", script.finish(), broker.log());
    }
    let done = script.wait_for(&format!("{client}: ok"), PHASE_TWO_TIMEOUT);
    let said = script.finish();
    assert!(done.is_some(), "{client} across {restart:?}:\n{said}\nbroker log:\n{}", broker.log());
    eprintln!("{client} across {restart:?}: phase 1 {phase_one:.1?}, in all {:.1?}\n{said}", started.elapsed());
}

#[test]
fn confluent_kafka_across_sigterm() {
    check("confluent", Restart::Sigterm);
}

#[test]
fn confluent_kafka_across_sigkill() {
    check("confluent", Restart::Sigkill);
}

#[test]
fn kafka_python_across_sigterm() {
    check("kafka-python", Restart::Sigterm);
}

#[test]
fn kafka_python_across_sigkill() {
    check("kafka-python", Restart::Sigkill);
}
