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

use std::time::{Duration, Instant};

use common::{Broker, PythonScript, Restart};

/// Phase 1 (topic creation, 2,000 messages) must be done within this.
const PHASE_ONE_TIMEOUT: Duration = Duration::from_secs(30);
/// Phase 2 and the read back, from the restart on.
const PHASE_TWO_TIMEOUT: Duration = Duration::from_secs(40);
/// After its last line, the script exits within this or is killed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

fn check(client: &str, restart: Restart) {
    let started = Instant::now();
    let mut broker = Broker::start(&[]);
    let mut script = PythonScript::start("restart.py", &broker.bootstrap(), &[client], EXIT_TIMEOUT);
    if script.wait_for("READY-FOR-RESTART", PHASE_ONE_TIMEOUT).is_none() {
        panic!("phase 1 did not finish:\n{}\nbroker log:\n{}", script.finish(), broker.log());
    }
    let phase_one = started.elapsed();
    broker.restart(restart);
    if !script.tell("RESTARTED") {
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
