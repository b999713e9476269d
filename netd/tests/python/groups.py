"""Consumer groups with real clients: members join, split the partitions, leave, die, and the rest
take over; committed offsets say where a restarted group resumes.

Usage:
  groups.py BOOTSTRAP takeover CLIENT ASSIGNOR   CLIENT: confluent | kafka-python;
                                                 ASSIGNOR: range | cooperative-sticky
  groups.py BOOTSTRAP restart CLIENT ASSIGNOR    the broker is restarted in the middle
  groups.py BOOTSTRAP member CLIENT ASSIGNOR GROUP TOPIC NAME   (one member; started by the others)

Every member is a process of its own (this script, `member`), so that one can be killed without a
chance to leave its group: its session must expire on the broker. A member subscribes, polls,
"processes" each record (a short sleep), and after each batch commits the offsets after it,
synchronously (enable.auto.commit is off). It reports on stdout, one JSON object a line: its
assignment whenever it changes, the records it processed, the offsets it committed. It closes
cleanly (LeaveGroup) on a `close` line on stdin, and exits at once at EOF (the driver is gone).

takeover: a 6-partition topic; three members split it two partitions each; one closes, two go on
with three each at once; one is told to stop committing (as if it crashed between processing and
committing), processes some messages and is killed (SIGKILL, session.timeout.ms=6000): the last
member takes all six, not before the session could expire, and processes those messages again.
Messages are produced between the steps, so there is always something to take over. Then every
produced message was processed at least once, no member jumped forward within a partition it held
(unless it was revoked and given back in between: it then resumes from the committed offsets),
and the committed offsets are the ends of the partitions. The group is restarted (two new members):
they begin exactly at the committed offsets and process only the messages produced since. The
admin API sees the group (ListGroups, DescribeGroups, OffsetFetch) and deletes it at the end.

restart: two members split the partitions and commit everything produced; the script prints
READY-FOR-RESTART and waits for RESTARTED on stdin while the driver stops or kills the broker and
starts it again on the same data directory and port. The committed offsets must have survived; the
same two member processes reconnect, rejoin if the broker forgot them, and process the messages
produced after the restart, and none from before it.

Prints "MODE CLIENT ASSIGNOR: ok" at the end; exits non-zero with a message on the first failed expectation. Every
wait is bounded.
"""
import atexit
import faulthandler
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
import uuid

BOOTSTRAP, MODE, CLIENT, ASSIGNOR = sys.argv[1:5]
PARTITIONS = 6
PER_PARTITION = 40  # messages per partition in each produced round
SESSION_TIMEOUT_MS = 6000  # group.min.session.timeout.ms
HEARTBEAT_INTERVAL_MS = 1000
MAX_POLL_INTERVAL_MS = 20000  # the rebalance timeout: how long a join waits for members to rejoin
POLL_TIMEOUT_S = 0.2
# kafka-python 3.0.12 can hang for good when a poll's timeout runs out while its JoinGroup/SyncGroup is in flight
# (seen against Kafka 4.4 itself, in about one run in four right after a Kafka restart: the SyncGroup answer
# arrives, the assignment is never applied, the member stops heartbeating and its main thread waits in
# NetworkSelector.run() forever; cf. dpkp/kafka-python#3121). So a kafka-python member that is about to (re)join
# (poll() starts a join only on entry) first drives the coordinator alone with a timeout that lets the join finish;
# then it polls briefly, as a stable one does, to read its stdin often.
KAFKA_PYTHON_JOIN_TIMEOUT_S = 10
POLL_RECORDS_MAX = 25
PROCESS_RECORD_S = 0.002
MEMBER_LIFETIME_S = 120  # a member whose parent vanished exits after this at the latest
STARTED = time.monotonic()

# Bounds on the waits (generous: tests share a 2-core machine).
JOIN_TIMEOUT_S = 30
EXPIRY_TIMEOUT_S = 30  # session timeout, then a rebalance
CONSUME_TIMEOUT_S = 30
CLOSE_TIMEOUT_S = 15
RESTART_WAIT_S = 60
ADMIN_TIMEOUT_S = 15
RESTART_OFFSETS_TIMEOUT_S = 30  # until the restarted broker answers OffsetFetch with the offsets committed before


def log(message):
    print(f"groups.py {MODE} {time.monotonic() - STARTED:.1f} s: {message}", file=sys.stderr, flush=True)


def expect(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr, flush=True)
        sys.exit(1)


# The member process.

def member(group, topic, name):
    # On a failure the driver asks for every thread's stack (SIGUSR1) before it shows the member's stderr.
    faulthandler.register(signal.SIGUSR1, all_threads=True)

    def emit(**event):
        print(json.dumps(event), flush=True)

    # Revocations (a rebalance, or membership lost and regained) since the member last reported
    # its assignment: the same partitions held again may resume from offsets another member
    # committed meanwhile, so the driver must not hold the member to where it was.
    revocations = [0]

    def revoked():
        revocations[0] += 1

    if CLIENT == "confluent":
        from confluent_kafka import Consumer, KafkaException, TopicPartition
        consumer = Consumer({
            "bootstrap.servers": BOOTSTRAP, "group.id": group, "client.id": name,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "partition.assignment.strategy": ASSIGNOR, "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS, "max.poll.interval.ms": MAX_POLL_INTERVAL_MS,
            "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 1000})
        consumer.subscribe([topic], on_revoke=lambda _consumer, partitions: partitions and revoked(),
                           on_lost=lambda _consumer, partitions: partitions and revoked())

        def poll():
            records = []
            for message in consumer.consume(num_messages=POLL_RECORDS_MAX, timeout=POLL_TIMEOUT_S):
                if message.error() is not None:
                    emit(event="error", error=str(message.error()))
                    continue
                records.append((message.partition(), message.offset(), message.value().decode()))
            return records

        def assignment():
            return sorted(tp.partition for tp in consumer.assignment())

        def commit(offsets):
            try:
                answer = consumer.commit(offsets=[TopicPartition(topic, partition, offset)
                                                  for partition, offset in offsets.items()], asynchronous=False)
            except KafkaException as error:
                return str(error)
            failed = [f"{tp.partition}: {tp.error}" for tp in answer if tp.error is not None]
            return "; ".join(failed) or None
    else:
        import logging
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")
        from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
        from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
        from kafka.coordinator.assignors.range import RangePartitionAssignor
        from kafka.errors import KafkaError
        from kafka.structs import OffsetAndMetadata
        assignor = {"range": RangePartitionAssignor, "cooperative-sticky": CooperativeStickyAssignor}[ASSIGNOR]
        consumer = KafkaConsumer(
            bootstrap_servers=BOOTSTRAP, group_id=group, client_id=name, enable_auto_commit=False,
            auto_offset_reset="earliest", partition_assignment_strategy=[assignor],
            session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS, reconnect_backoff_ms=50, reconnect_backoff_max_ms=1000)

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked_partitions):
                if revoked_partitions:
                    revoked()

            def on_partitions_assigned(self, assigned):
                pass

        consumer.subscribe([topic], listener=Listener())

        def poll():
            coordinator = consumer._coordinator  # see KAFKA_PYTHON_JOIN_TIMEOUT_S
            try:
                if coordinator.coordinator_unknown() or not coordinator.stable() or coordinator.need_rejoin():
                    # What KafkaConsumer.poll() does first, with room for the join to finish.
                    coordinator.poll(timeout_ms=KAFKA_PYTHON_JOIN_TIMEOUT_S * 1000)
                batches = consumer.poll(timeout_ms=int(POLL_TIMEOUT_S * 1000), max_records=POLL_RECORDS_MAX)
            except KafkaError as error:
                # kafka-python lets a poll raise a connection error (FindCoordinator refused while the broker is
                # down); an application retries those.
                if not error.retriable:
                    raise
                emit(event="error", error=repr(error))
                time.sleep(POLL_TIMEOUT_S)
                return []
            return [(record.partition, record.offset, record.value.decode())
                    for records in batches.values() for record in records]

        def assignment():
            return sorted(tp.partition for tp in consumer.assignment())

        def commit(offsets):
            try:
                consumer.commit({TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
                                 for partition, offset in offsets.items()})
            except KafkaError as error:
                return repr(error)
            return None

    def command():
        """The driver's next line on stdin, if one came: "close", "stop-committing"."""
        readable, _, _ = select.select([sys.stdin], [], [], 0)
        if not readable:
            return None
        line = sys.stdin.readline()
        if not line:
            # The driver is gone (killed by a timeout): no one is left to report to, and the broker may be gone
            # too, so no close() that could wait on it.
            os._exit(1)
        return line.strip()

    deadline = time.monotonic() + MEMBER_LIFETIME_S
    held = None
    committing = True
    while time.monotonic() < deadline:
        told = command()
        if told == "close":
            break
        records = poll()
        # Asked again after the poll, which may have lasted long: a stop-committing sent before the records it
        # concerns were produced applies to them.
        told = told or command()
        if told == "close":
            break
        if told == "stop-committing":
            committing = False
        now = assignment()
        if now != held or revocations[0]:
            held = now
            emit(event="assigned", partitions=now, revoked=revocations[0] > 0)
            revocations[0] = 0
        if not records:
            continue
        for _ in records:
            time.sleep(PROCESS_RECORD_S)
        emit(event="processed", records=records, committing=committing)
        if not committing:
            continue
        offsets = {}
        for partition, offset, _ in records:
            offsets[partition] = max(offsets.get(partition, 0), offset + 1)
        error = commit(offsets)
        if error is None:
            emit(event="committed", offsets=offsets)
        else:
            # A commit refused during a rebalance: the records are processed again by the next owner.
            emit(event="commit-failed", offsets=offsets, error=error)
    consumer.close()
    emit(event="closed")


# The driver side.

class Member:
    """A member process; its events arrive on the shared queue as (member, event)."""

    def __init__(self, group, topic, name, events):
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), BOOTSTRAP, "member", CLIENT, ASSIGNOR, group, topic, name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assignment = []
        self.stderr = []
        self.closed = False
        threading.Thread(target=self._read_stdout, args=(events,), daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self, events):
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "noise", "line": line.rstrip()}
            events.put((self, event))
        events.put((self, {"event": "exited"}))

    def _read_stderr(self):
        for line in self.process.stderr:
            self.stderr.append(line.rstrip())

    def tell(self, command):
        try:
            self.process.stdin.write(f"{command}\n")
            self.process.stdin.flush()
        except OSError:
            pass

    def kill(self):
        self.process.kill()
        self.process.wait()


class Group:
    """The members of one group, what they reported, and the checks over it."""

    def __init__(self, topic):
        self.id = f"group-{MODE}-{CLIENT}-{ASSIGNOR}-{uuid.uuid4().hex[:8]}"
        self.topic = topic
        self.events = queue.Queue()
        self.members = []
        self.processed = {}  # (partition, offset) -> times processed
        self.committed = {}  # partition -> highest offset a member reported committed
        self.commit_failures = []
        # member -> partition -> the next offset the member may process without jumping forward
        self.next_offset = {}
        self.processed_after = None  # once set, (partition, offset) processed since, in order
        self.uncommitted = []  # (partition, offset) processed by a member told to stop committing
        atexit.register(self.kill_all)

    def start(self, name):
        member = Member(self.id, self.topic, name, self.events)
        self.members.append(member)
        self.next_offset[member] = {}
        return member

    def alive(self):
        return [member for member in self.members if not member.closed]

    def kill_all(self):
        for member in self.members:
            if member.process.poll() is None:
                member.process.kill()

    def dump(self):
        running = [member for member in self.members if member.process.poll() is None]
        for member in running:
            member.process.send_signal(signal.SIGUSR1)
        if running:
            time.sleep(1)
        for member in self.members:
            print(f"--- {member.name} (exit {member.process.poll()}) stderr:", file=sys.stderr)
            for line in member.stderr[-120:]:
                print(f"    {line}", file=sys.stderr)
        sys.stderr.flush()

    def fail(self, message):
        self.dump()
        expect(False, message)

    def handle(self, member, event):
        kind = event["event"]
        if kind == "assigned":
            gained = set(event["partitions"]) - set(member.assignment)
            for partition in set(member.assignment) - set(event["partitions"]):
                self.next_offset[member].pop(partition, None)
            if event.get("revoked"):
                # Held again after a revocation: it resumes from the committed offsets, wherever
                # the member that held them meanwhile got to.
                self.next_offset[member].clear()
            member.assignment = event["partitions"]
            log(f"{member.name} holds {member.assignment} (gained {sorted(gained)})")
        elif kind == "processed":
            for partition, offset, value in event["records"]:
                expected = f"{self.topic}-{partition}-{offset}"
                if value != expected:
                    self.fail(f"{member.name} processed {value!r} at partition {partition} offset {offset}, "
                              f"produced there was {expected!r}")
                # Within a partition a member holds, it may go back (a refused commit, a rebalance) but
                # never jump forward: that would skip messages.
                next_offset = self.next_offset[member].get(partition)
                if next_offset is not None and offset > next_offset:
                    self.fail(f"{member.name} jumped from offset {next_offset} to {offset} in partition {partition}")
                self.next_offset[member][partition] = offset + 1
                self.processed[(partition, offset)] = self.processed.get((partition, offset), 0) + 1
                if self.processed_after is not None:
                    self.processed_after.append((partition, offset))
                if not event["committing"]:
                    self.uncommitted.append((partition, offset))
        elif kind == "committed":
            for partition, offset in event["offsets"].items():
                self.committed[int(partition)] = max(self.committed.get(int(partition), 0), offset)
        elif kind == "commit-failed":
            self.commit_failures.append((member.name, event["error"]))
            log(f"{member.name}: commit refused: {event['error']}")
        elif kind == "closed":
            log(f"{member.name} closed")
        elif kind == "exited":
            member.closed = True
            if member.process.wait() not in (0, -9):
                self.fail(f"{member.name} exited with {member.process.returncode}")
        elif kind == "error":
            log(f"{member.name}: consumer error {event['error']}")
        else:
            log(f"{member.name}: {event}")

    def wait_until(self, condition, timeout_s, what):
        deadline = time.monotonic() + timeout_s
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                held = [(member.name, member.assignment) for member in self.alive()]
                self.fail(f"timed out after {timeout_s} s waiting until {what}; assignments: {held}, "
                          f"committed: {sorted(self.committed.items())}")
            try:
                member, event = self.events.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            self.handle(member, event)

    def drain(self):
        """Handles the events already reported."""
        while True:
            try:
                member, event = self.events.get_nowait()
            except queue.Empty:
                return
            self.handle(member, event)

    def wait_for_split(self, members, sizes, timeout_s, what):
        """Until `members` hold disjoint assignments covering every partition, of the given sizes."""
        def split():
            held = [set(member.assignment) for member in members]
            return (sorted(len(partitions) for partitions in held) == sorted(sizes)
                    and set().union(*held) == set(range(PARTITIONS)))
        self.wait_until(split, timeout_s, what)
        log(f"{what}: {[(member.name, member.assignment) for member in members]}")

    def wait_processed_and_committed(self, ends, timeout_s, what):
        """Until every offset below `ends[partition]` was processed and the commits reached the ends."""
        def done():
            return (all(self.committed.get(partition, 0) >= end for partition, end in ends.items())
                    and all((partition, offset) in self.processed for partition, end in ends.items()
                            for offset in range(end)))
        self.wait_until(done, timeout_s, what)

    def close(self, member):
        member.tell("close")
        self.wait_until(lambda: member.closed, CLOSE_TIMEOUT_S, f"{member.name} closed")

    def kill(self, member):
        member.kill()
        self.wait_until(lambda: member.closed, CLOSE_TIMEOUT_S, f"{member.name} killed")


class Producer:
    """Produces rounds of PER_PARTITION messages to every partition; the value names the topic, partition and
    offset each message must land at (partitions are written only here, in order)."""

    def __init__(self, topic):
        from confluent_kafka import Producer as KafkaProducer
        self.topic = topic
        self.ends = {partition: 0 for partition in range(PARTITIONS)}
        self.producer = KafkaProducer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "linger.ms": 5,
                                       "enable.idempotence": True, "reconnect.backoff.max.ms": 1000})

    def round(self):
        errors = []

        def on_delivery(error, message):
            if error is not None:
                errors.append(error)
            elif message.value().decode() != f"{self.topic}-{message.partition()}-{message.offset()}":
                errors.append(f"{message.value()} landed at offset {message.offset()}")

        for partition in range(PARTITIONS):
            for _ in range(PER_PARTITION):
                value = f"{self.topic}-{partition}-{self.ends[partition]}"
                self.producer.produce(self.topic, value=value.encode(), partition=partition, on_delivery=on_delivery)
                self.ends[partition] += 1
        expect(self.producer.flush(30) == 0, "every message delivered within 30 s")
        expect(not errors, f"delivery errors: {errors[:3]}")
        return dict(self.ends)


def create_topic(topic):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result(timeout=30)


def committed_offsets(group_id, topic):
    """{partition: offset} the group has committed offsets for, read by a client that does not join (OffsetFetch)."""
    if CLIENT == "confluent":
        from confluent_kafka import Consumer, TopicPartition
        consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group_id, "enable.auto.commit": False})
        answer = consumer.committed([TopicPartition(topic, partition) for partition in range(PARTITIONS)],
                                    timeout=ADMIN_TIMEOUT_S)
        consumer.close()
        failed = [(tp.partition, tp.error) for tp in answer if tp.error is not None]
        if failed:
            raise RuntimeError(f"OffsetFetch {group_id}: {failed}")
        return {tp.partition: tp.offset for tp in answer if tp.offset >= 0}
    from kafka import KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=ADMIN_TIMEOUT_S * 1000)
    try:
        answer = admin.list_group_offsets(group_id)[group_id]
    finally:
        admin.close()
    return {tp.partition: offset.offset for tp, offset in answer.items() if tp.topic == topic and offset.offset >= 0}


def listed_groups():
    """The group ids ListGroups answers, through the client's admin API."""
    if CLIENT == "confluent":
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
        return [entry.group_id for entry in admin.list_consumer_groups().result(timeout=ADMIN_TIMEOUT_S).valid]
    from kafka import KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=ADMIN_TIMEOUT_S * 1000)
    try:
        return [entry["group_id"] for entry in admin.list_groups()]
    finally:
        admin.close()


def describe(group_id):
    """(listed, state, client ids of the members, partitions assigned, protocol) through the client's admin API."""
    if CLIENT == "confluent":
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
        described = admin.describe_consumer_groups([group_id])[group_id].result(timeout=ADMIN_TIMEOUT_S)
        return (group_id in listed_groups(), described.state.name.lower(),
                sorted(entry.client_id for entry in described.members),
                sorted(tp.partition for entry in described.members for tp in entry.assignment.topic_partitions),
                (described.partition_assignor, described.is_simple_consumer_group))
    from kafka import KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=ADMIN_TIMEOUT_S * 1000)
    try:
        described = admin.describe_groups([group_id])[group_id]
    finally:
        admin.close()
    listed = listed_groups()
    expect(described["error"] is None, f"DescribeGroups {group_id}: {described}")
    partitions = []
    for entry in described["members"]:
        for assigned in entry["member_assignment"]["assigned_partitions"]:
            partitions.extend(assigned["partitions"])
    clients = sorted(entry["client_id"] for entry in described["members"])
    return (group_id in listed, described["group_state"].lower(), clients, sorted(partitions),
            (described["protocol_type"], described["protocol_data"]))


def check_admin_sees(group, members):
    """ListGroups and DescribeGroups through the client's admin API: the group, Stable, with these members."""
    names = sorted(member.name for member in members)
    wanted = (ASSIGNOR, False) if CLIENT == "confluent" else ("consumer", ASSIGNOR)
    deadline = time.monotonic() + ADMIN_TIMEOUT_S
    while True:
        listed, state, seen, assigned, protocol = describe(group.id)
        if state == "stable" and seen == names and assigned == list(range(PARTITIONS)):
            break
        if time.monotonic() > deadline:
            group.fail(f"DescribeGroups: {group.id} Stable with members {names} holding every partition, got "
                       f"{state}, {seen}, {assigned}")
        time.sleep(0.2)
    expect(listed, f"ListGroups lists {group.id}")
    expect(protocol == wanted, f"DescribeGroups: protocol {protocol}, expected {wanted}")
    log(f"the admin API sees {group.id}: {state}, {seen}")


def delete_group(group_id):
    """DeleteGroups through the client's admin API; then ListGroups no longer lists the group."""
    if CLIENT == "confluent":
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
        admin.delete_consumer_groups([group_id])[group_id].result(timeout=ADMIN_TIMEOUT_S)
    else:
        from kafka import KafkaAdminClient
        admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, request_timeout_ms=ADMIN_TIMEOUT_S * 1000)
        try:
            answer = admin.delete_groups([group_id])
        finally:
            admin.close()
        expect(answer == {group_id: "OK"}, f"DeleteGroups {group_id}: {answer}")
    expect(group_id not in listed_groups(), f"ListGroups no longer lists the deleted group {group_id}")


def takeover():
    topic = f"groups-{CLIENT}-{ASSIGNOR}-{uuid.uuid4().hex[:8]}"
    create_topic(topic)
    producer = Producer(topic)
    group = Group(topic)
    ends = producer.round()

    first, second, third = (group.start(name) for name in ("member-1", "member-2", "member-3"))
    group.wait_for_split([first, second, third], [2, 2, 2], JOIN_TIMEOUT_S, "three members split the partitions")
    check_admin_sees(group, [first, second, third])
    ends = producer.round()
    group.wait_processed_and_committed(ends, CONSUME_TIMEOUT_S, "the three members processed round 2")

    # A member leaves: the other two take its partitions at once (LeaveGroup, no session timeout).
    producer.round()
    started = time.monotonic()
    group.close(first)
    group.wait_for_split([second, third], [3, 3], JOIN_TIMEOUT_S, "two members took over from the one that left")
    log(f"takeover after a leave: {time.monotonic() - started:.1f} s")

    # A member dies after processing messages it did not commit yet (it is told to stop committing, as if it
    # crashed between the two): its session expires, the last member takes all and processes those again.
    second.tell("stop-committing")
    ends = producer.round()
    group.wait_until(lambda: group.uncommitted, CONSUME_TIMEOUT_S, f"{second.name} processed without committing")
    started = time.monotonic()
    group.kill(second)
    uncommitted = list(group.uncommitted)
    group.processed_after = []
    group.wait_for_split([third], [PARTITIONS], EXPIRY_TIMEOUT_S, "the last member took over from the killed one")
    elapsed = time.monotonic() - started
    log(f"takeover after a kill: {elapsed:.1f} s")
    # Its last heartbeat came up to an interval before the kill.
    if elapsed < (SESSION_TIMEOUT_MS - HEARTBEAT_INTERVAL_MS) / 1000 - 0.5:
        group.fail(f"the killed member's partitions moved after {elapsed:.1f} s, before its session could expire")
    ends = producer.round()
    group.wait_processed_and_committed(ends, CONSUME_TIMEOUT_S, "the last member processed everything")
    again = set(group.processed_after)
    expect(all(entry in again for entry in uncommitted),
           f"what {second.name} processed but did not commit was processed again after it died: "
           f"{sorted(set(uncommitted) - again)[:10]} were not")
    log(f"{len(uncommitted)} messages {second.name} processed without committing were processed again")
    group.close(third)

    missing = [(p, o) for p in range(PARTITIONS) for o in range(ends[p]) if (p, o) not in group.processed]
    expect(not missing, f"every produced message processed at least once; missing {missing[:10]}")
    twice = sum(1 for times in group.processed.values() if times > 1)
    log(f"{sum(ends.values())} messages produced, all processed; {twice} processed more than once; "
        f"{len(group.commit_failures)} commits refused")
    committed = committed_offsets(group.id, topic)
    expect(committed == ends, f"the committed offsets are the ends of the partitions: {committed}, ends {ends}")

    # The group is restarted: it resumes from the committed offsets, nothing before them again.
    ends_before = dict(ends)
    ends = producer.round()
    group.processed_after = []
    fourth, fifth = group.start("member-4"), group.start("member-5")
    group.wait_processed_and_committed(ends, JOIN_TIMEOUT_S + CONSUME_TIMEOUT_S, "the restarted group caught up")
    again = sorted({(p, o) for p, o in group.processed_after if o < ends_before[p]})
    expect(not again, f"the restarted group resumed from the committed offsets; processed again: {again[:10]}")
    first_offsets = {}
    for partition, offset in group.processed_after:
        first_offsets.setdefault(partition, offset)
    expect(first_offsets == ends_before, f"the restarted group began at the committed offsets: {first_offsets}")
    group.wait_for_split([fourth, fifth], [3, 3], JOIN_TIMEOUT_S, "the restarted group split the partitions")
    group.close(fourth)
    group.close(fifth)
    expect(committed_offsets(group.id, topic) == ends, "the restarted group committed the ends")
    delete_group(group.id)
    expect(committed_offsets(group.id, topic) == {}, "a deleted group has no committed offsets")


def wait_for_restart():
    print("READY-FOR-RESTART", flush=True)
    readable, _, _ = select.select([sys.stdin], [], [], RESTART_WAIT_S)
    expect(readable, f"no RESTARTED line on stdin within {RESTART_WAIT_S} s")
    line = sys.stdin.readline().strip()
    expect(line == "RESTARTED", f"expected RESTARTED on stdin, got {line!r}")


def restart():
    topic = f"groups-restart-{CLIENT}-{uuid.uuid4().hex[:8]}"
    create_topic(topic)
    producer = Producer(topic)
    group = Group(topic)
    ends = producer.round()
    first, second = group.start("member-1"), group.start("member-2")
    group.wait_for_split([first, second], [3, 3], JOIN_TIMEOUT_S, "two members split the partitions")
    ends = producer.round()
    group.wait_processed_and_committed(ends, CONSUME_TIMEOUT_S, "the members processed everything before the restart")
    before = committed_offsets(group.id, topic)
    expect(before == ends, f"the committed offsets are the ends of the partitions: {before}, ends {ends}")

    # The members keep running (polling, heartbeating) while the broker is down; their events queue up.
    group.drain()
    wait_for_restart()
    started = time.monotonic()
    log("broker restarted")
    group.processed_after = []
    deadline = time.monotonic() + RESTART_OFFSETS_TIMEOUT_S
    while True:
        try:
            after = committed_offsets(group.id, topic)
        except Exception as error:  # the coordinator may still be loading: the client says so, we retry
            after = repr(error)
        if after == before or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    expect(after == before, f"the committed offsets survived the restart: {after}, before {before}")
    ends_before = dict(ends)
    ends = producer.round()
    group.wait_processed_and_committed(ends, JOIN_TIMEOUT_S + CONSUME_TIMEOUT_S,
                                       "the members processed the messages produced after the restart")
    log(f"caught up {time.monotonic() - started:.1f} s after the restart")
    again = sorted({(p, o) for p, o in group.processed_after if o < ends_before[p]})
    expect(not again, f"nothing committed before the restart was processed again: {again[:10]}")
    group.wait_for_split([first, second], [3, 3], JOIN_TIMEOUT_S, "the two members share the partitions again")
    group.close(first)
    group.close(second)
    expect(committed_offsets(group.id, topic) == ends, "the members committed the ends after the restart")


if MODE == "member":
    member(*sys.argv[5:8])
    sys.exit(0)
{"takeover": takeover, "restart": restart}[MODE]()
print(f"{MODE} {CLIENT} {ASSIGNOR}: ok", flush=True)
