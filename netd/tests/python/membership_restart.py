"""Group membership survives a broker restart: the consumers of a Stable group carry on without
rejoining, and a member that does not come back is expired after its session timeout.

Usage:
  membership_restart.py BOOTSTRAP stable CLIENT     two members; the broker restarts under them
  membership_restart.py BOOTSTRAP expire CLIENT     two members; one is killed just before the restart
  membership_restart.py BOOTSTRAP member confluent GROUP TOPIC NAME   (one member; started by the others)
CLIENT: confluent (confluent-kafka, librdkafka) or java (Kafka 4.4's VerifiableConsumer, the Java
consumer, from the jars in .cache/kafka-*/libs).

Every member is a consumer in a process of its own, so that one can be killed without leaving its
group. It subscribes with the range assignor, auto-commits, and reports, one JSON object a line:
every on_assign and on_revoke call, the (partition, offset) of every record it consumed, and for
confluent librdkafka's own count of rebalances (`cgrp.rebalance_cnt` in its statistics). A Java
member is VerifiableConsumer itself, its JSON events (partitions_assigned, partitions_revoked,
records_consumed) read as the same reports.

Both modes: a 4-partition topic, ROUND records produced; two members split it two partitions each
and consume everything. The script records the members' ids (DescribeGroups), prints
READY-FOR-RESTART and waits for RESTARTED on stdin while the driver (netd/tests/groups_membership.rs)
stops or kills the broker and starts it again on the same data directory and port.

stable: ROUND more records are produced after the restart. Every record is consumed exactly once,
and, SESSION_TIMEOUT_MS and more after the restart, no member was assigned or revoked anything
again, librdkafka counted no new rebalance, and DescribeGroups shows the same member ids, Stable.
A broker that forgot its groups fails this: its members' next heartbeat gets UNKNOWN_MEMBER_ID and
they rejoin under new ids.

expire: the second member is SIGKILLed just before READY-FOR-RESTART, so only the first comes back.
The restarted broker loaded both; the first keeps heartbeating, the second's session (started at
load) expires, and the group rebalances: the first member gets all four partitions, not earlier
than EXPIRY_AFTER_RESTART_MIN_S after the restart (a broker that forgot the group would make it
rejoin at once), and consumes every record produced after the restart.

Prints "MODE CLIENT: ok" at the end; exits non-zero with a message on the first failed expectation. Every
wait is bounded.
"""
import atexit
import glob
import json
import os
import queue
import select
import subprocess
import sys
import tempfile
import threading
import time
import uuid

BOOTSTRAP, MODE, CLIENT = sys.argv[1:4]
PARTITIONS = 4
ROUND = 400  # records produced before the restart, and again after it
SESSION_TIMEOUT_MS = 6000  # group.min.session.timeout.ms
HEARTBEAT_INTERVAL_MS = 500
STATISTICS_INTERVAL_MS = 500
JOIN_TIMEOUT_S = 30
CONSUME_TIMEOUT_S = 30
RESTART_WAIT_S = 60
ADMIN_TIMEOUT_S = 10
# The killed member's session starts when the restarted broker loads the group, shortly before
# the driver says RESTARTED; a broker that forgot the group reassigns at once.
EXPIRY_AFTER_RESTART_MIN_S = SESSION_TIMEOUT_MS / 1000 - 2
# After the restart, a stable group is watched this long for a rebalance (past a session timeout:
# members the broker did not recognise would have expired by then).
STABLE_WATCH_S = SESSION_TIMEOUT_MS / 1000 + 2
STARTED = time.monotonic()


def log(message):
    print(f"membership_restart.py {time.monotonic() - STARTED:.1f} s: {message}", file=sys.stderr, flush=True)


def expect(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr, flush=True)
        sys.exit(1)


def member(group, topic, name):
    from confluent_kafka import Consumer

    def emit(**event):
        print(json.dumps(event), flush=True)

    rebalances = [None]

    def on_stats(text):
        count = json.loads(text).get("cgrp", {}).get("rebalance_cnt")
        if count is not None and count != rebalances[0]:
            rebalances[0] = count
            emit(event="rebalances", count=count)

    consumer = Consumer({
        "bootstrap.servers": BOOTSTRAP, "group.id": group, "client.id": name,
        "auto.offset.reset": "earliest", "enable.auto.commit": True, "auto.commit.interval.ms": 200,
        "partition.assignment.strategy": "range", "session.timeout.ms": SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS, "statistics.interval.ms": STATISTICS_INTERVAL_MS,
        "stats_cb": on_stats, "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500})
    consumer.subscribe(
        [topic],
        on_assign=lambda _consumer, partitions: emit(event="assigned", partitions=[tp.partition for tp in partitions]),
        on_revoke=lambda _consumer, partitions: emit(event="revoked", partitions=[tp.partition for tp in partitions]))
    while True:
        readable, _, _ = select.select([sys.stdin], [], [], 0)
        if readable and not sys.stdin.readline():
            os._exit(0)  # the driver is gone
        records = []
        for message in consumer.consume(num_messages=500, timeout=0.2):
            if message.error() is not None:
                emit(event="error", error=str(message.error()))
                continue
            records.append((message.partition(), message.offset()))
        if records:
            emit(event="consumed", records=records)


def java_member_command(group, topic, name):
    """Kafka's VerifiableConsumer as a member: the Java consumer, classic protocol, range assignor."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
    libs = sorted(glob.glob(os.path.join(root, ".cache", "kafka-*", "libs")))
    expect(libs, "no Kafka jars under .cache/kafka-*/libs: run scripts/test-deps.sh")
    config = os.path.join(tempfile.mkdtemp(prefix="membership-"), f"{name}.properties")
    # metadata.recovery.strategy=none: by default (rebootstrap, Kafka 4) a client that finds no
    # broker to ask for metadata while its only one is down starts again from the bootstrap list,
    # which empties its metadata; the classic consumer then sees "cached metadata has changed" and
    # rejoins whatever the broker does (against Kafka too). Seen here in about 1 run in 20 under
    # load, always with "Rebootstrapping" in the member's log; the test is about the broker.
    with open(config, "w") as properties:
        properties.write(f"client.id={name}\nheartbeat.interval.ms={HEARTBEAT_INTERVAL_MS}\n"
                         "auto.commit.interval.ms=200\nreconnect.backoff.max.ms=500\n"
                         "metadata.recovery.strategy=none\n")
    return ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            # Why the consumer (re)joins, if it does, and whether it rebootstrapped: shown when a
            # check fails.
            "-Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients.consumer.internals=info",
            "-Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients.Metadata=info",
            "-Dorg.slf4j.simpleLogger.showDateTime=true", "-cp", os.path.join(libs[-1], "*"),
            "org.apache.kafka.tools.VerifiableConsumer", "--bootstrap-server", BOOTSTRAP, "--topic", topic,
            "--group-id", group, "--group-protocol", "classic", "--session-timeout", str(SESSION_TIMEOUT_MS),
            "--enable-autocommit", "--reset-policy", "earliest",
            "--assignment-strategy", "org.apache.kafka.clients.consumer.RangeAssignor", "--command-config", config]


def java_events(event):
    """VerifiableConsumer's event as this script's reports."""
    kind = event.get("name")
    if kind == "startup_complete":
        return [{"event": "rebalances", "count": 0}]  # the Java consumer does not count them for us
    if kind in ("partitions_assigned", "partitions_revoked"):
        partitions = [entry["partition"] for entry in event["partitions"]]
        return [{"event": "assigned" if kind == "partitions_assigned" else "revoked", "partitions": partitions}]
    if kind == "records_consumed":
        return [{"event": "consumed", "records": [(entry["partition"], offset) for entry in event["partitions"]
                                                  for offset in range(entry["minOffset"], entry["maxOffset"] + 1)]}]
    return []


class Member:
    def __init__(self, group, topic, name, events):
        self.name = name
        command = (java_member_command(group, topic, name) if CLIENT == "java" else
                   [sys.executable, os.path.abspath(__file__), BOOTSTRAP, "member", CLIENT, group, topic, name])
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        self.assignment = []
        self.assign_calls = []  # (time, partitions) of every on_assign
        self.revoke_calls = []
        self.rebalances = None
        self.stderr = []
        threading.Thread(target=self._read_stdout, args=(events,), daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        atexit.register(self.kill)

    def _read_stdout(self, events):
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                events.put((self, {"event": "noise", "line": line.rstrip()}))
                continue
            for report in (java_events(event) if CLIENT == "java" else [event]):
                events.put((self, report))

    def _read_stderr(self):
        for line in self.process.stderr:
            self.stderr.append(line.rstrip())

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Group:
    def __init__(self, topic):
        self.id = f"membership-{MODE}-{CLIENT}-{uuid.uuid4().hex[:8]}"
        self.topic = topic
        self.events = queue.Queue()
        self.members = []
        self.consumed = {}  # (partition, offset) -> times consumed

    def start(self, name):
        started = Member(self.id, self.topic, name, self.events)
        self.members.append(started)
        return started

    def fail(self, message):
        for each in self.members:
            print(f"--- {each.name} stderr:", file=sys.stderr)
            for line in each.stderr[-60:]:
                print(f"    {line}", file=sys.stderr)
        expect(False, message)

    def check(self, condition, message):
        """expect(), showing the members' own logs (why a Java member rejoined) when it fails."""
        if not condition:
            self.fail(message)

    def handle(self, source, event):
        kind = event["event"]
        now = time.monotonic()
        if kind == "assigned":
            source.assignment = sorted(event["partitions"])
            source.assign_calls.append((now, source.assignment))
            log(f"{source.name} assigned {source.assignment}")
        elif kind == "revoked":
            source.revoke_calls.append((now, sorted(event["partitions"])))
            log(f"{source.name} revoked {sorted(event['partitions'])}")
        elif kind == "consumed":
            for partition, offset in event["records"]:
                self.consumed[(partition, offset)] = self.consumed.get((partition, offset), 0) + 1
        elif kind == "rebalances":
            source.rebalances = event["count"]
        elif kind == "error":
            log(f"{source.name}: consumer error {event['error']}")
        else:
            log(f"{source.name}: {event}")

    def wait_until(self, condition, timeout_s, what):
        deadline = time.monotonic() + timeout_s
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail(f"timed out after {timeout_s} s waiting until {what}; assignments: "
                          f"{[(each.name, each.assignment) for each in self.members]}")
            try:
                source, event = self.events.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            self.handle(source, event)

    def watch(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                source, event = self.events.get(timeout=max(0.0, min(deadline - time.monotonic(), 0.5)))
            except queue.Empty:
                continue
            self.handle(source, event)

    def consumed_all(self, ends):
        return all((partition, offset) in self.consumed for partition in range(PARTITIONS)
                   for offset in range(ends[partition]))


def create_topic(topic):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result(timeout=30)


def produce(topic, ends):
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 5,
                         "reconnect.backoff.max.ms": 500})
    errors = []
    for index in range(ROUND):
        partition = index % PARTITIONS
        producer.produce(topic, value=f"{index}".encode(), partition=partition,
                         on_delivery=lambda error, _message: error is not None and errors.append(error))
        ends[partition] += 1
    expect(producer.flush(30) == 0, "every record delivered within 30 s")
    expect(not errors, f"delivery errors: {errors[:3]}")


def member_ids(group_id):
    """(state, sorted member ids) through DescribeGroups."""
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    described = admin.describe_consumer_groups([group_id])[group_id].result(timeout=ADMIN_TIMEOUT_S)
    return described.state.name.lower(), sorted(entry.member_id for entry in described.members)


def wait_for_restart():
    print("READY-FOR-RESTART", flush=True)
    readable, _, _ = select.select([sys.stdin], [], [], RESTART_WAIT_S)
    expect(readable, f"no RESTARTED line on stdin within {RESTART_WAIT_S} s")
    line = sys.stdin.readline().strip()
    expect(line == "RESTARTED", f"expected RESTARTED on stdin, got {line!r}")
    log("broker restarted")


def main():
    topic = f"membership-{MODE}-{CLIENT}-{uuid.uuid4().hex[:8]}"
    create_topic(topic)
    ends = {partition: 0 for partition in range(PARTITIONS)}
    produce(topic, ends)
    group = Group(topic)
    first, second = group.start("first"), group.start("second")
    group.wait_until(lambda: sorted(first.assignment + second.assignment) == list(range(PARTITIONS))
                     and len(first.assignment) == 2, JOIN_TIMEOUT_S, "the members split the partitions")
    group.wait_until(lambda: group.consumed_all(ends), CONSUME_TIMEOUT_S, "everything before the restart consumed")
    group.wait_until(lambda: first.rebalances is not None and second.rebalances is not None, CONSUME_TIMEOUT_S,
                     "both members reported statistics")
    group.watch(1)  # auto commits reach the broker
    state, ids = member_ids(group.id)
    group.check(state == "stable" and len(ids) == 2, f"DescribeGroups before the restart: {state}, {ids}")
    before = {each.name: (len(each.assign_calls), len(each.revoke_calls), each.rebalances) for each in group.members}
    log(f"before the restart: {before}, members {ids}")

    if MODE == "expire":
        second.kill()
        group.watch(0.2)
    wait_for_restart()
    restarted = time.monotonic()
    produce(topic, ends)

    if MODE == "stable":
        group.wait_until(lambda: group.consumed_all(ends), CONSUME_TIMEOUT_S, "everything after the restart consumed")
        group.watch(restarted + STABLE_WATCH_S - time.monotonic())
        after = {each.name: (len(each.assign_calls), len(each.revoke_calls), each.rebalances)
                 for each in group.members}
        group.check(after == before, f"no member was assigned or revoked again, no rebalance counted: "
                    f"{after}, before {before}")
        twice = sorted(key for key, times in group.consumed.items() if times > 1)
        group.check(not twice, f"every record consumed exactly once; more than once: {twice[:10]}")
        group.check(sum(group.consumed.values()) == 2 * ROUND, f"{sum(group.consumed.values())} records consumed")
        state_after, ids_after = member_ids(group.id)
        group.check((state_after, ids_after) == ("stable", ids),
               f"DescribeGroups after the restart: {state_after}, {ids_after}; before: stable, {ids}")
        log(f"no rebalance: {after}, members {ids_after}")
    else:
        group.wait_until(lambda: first.assignment == list(range(PARTITIONS)), JOIN_TIMEOUT_S + SESSION_TIMEOUT_MS / 1000,
                         "the first member took every partition")
        reassigned = first.assign_calls[-1][0] - restarted
        group.check(reassigned >= EXPIRY_AFTER_RESTART_MIN_S,
               f"the group rebalanced {reassigned:.1f} s after the restart: not on the killed member's expiry "
               f"(session {SESSION_TIMEOUT_MS} ms from the load)")
        group.wait_until(lambda: group.consumed_all(ends), CONSUME_TIMEOUT_S, "everything after the restart consumed")
        state_after, ids_after = member_ids(group.id)
        group.check(state_after == "stable" and len(ids_after) == 1 and ids_after[0] in ids,
               f"DescribeGroups: {state_after}, {ids_after}: the first member under its id of {ids}")
        log(f"the killed member expired; rebalanced {reassigned:.1f} s after the restart")
    for each in group.members:
        each.kill()
    print(f"{MODE} {CLIENT}: ok", flush=True)


if __name__ == "__main__":
    if MODE == "member":
        member(*sys.argv[4:7])
    else:
        main()
