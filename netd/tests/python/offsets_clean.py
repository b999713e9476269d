"""Committed offsets through many commits, with the offsets log cleaned, seen by a real client.

Usage: offsets_clean.py BOOTSTRAP

The driver (netd/tests/offsets_clean_python.rs) starts the broker with one offsets partition and
small offsets segments (offsets.topic.segment.bytes), so the offsets log is cleaned (its live
state written again, the log start moved past what came before) many times while the script
commits.

Phase 1: a topic of PARTITION_COUNT partitions gets MESSAGE_COUNT messages; GROUP_COUNT groups
(confluent-kafka consumers with assign(), auto-commit off) commit offsets synchronously,
COMMIT_ROUNDS rounds, each round one commit per group of every partition at a new offset; one
group's offsets are then deleted (DeleteConsumerGroupOffsets is not in confluent-kafka's admin
of every version, so the group is deleted with delete_consumer_groups). Every group's committed
offsets are read back. The script prints READY-FOR-RESTART and waits for RESTARTED on stdin (the
driver checks the offsets log's size on disk, then SIGTERMs and restarts the broker). Phase 2:
every group's committed offsets are read back again and must be the last ones committed; the
deleted group has none.

Prints "offsets-clean: ok" at the end; exits non-zero with a message on the first failed
expectation.
"""
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BOOTSTRAP = sys.argv[1]
TOPIC = "offsets-clean"
PARTITION_COUNT = 3
MESSAGE_COUNT = 300
GROUP_COUNT = 3
COMMIT_ROUNDS = 400
DELETED_GROUP = "offsets-clean-deleted"
TIMEOUT_S = 30
RESTART_WAIT_S = 60
STARTED = time.monotonic()


def expect(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr, flush=True)
        sys.exit(1)


def log(message):
    print(f"offsets_clean.py {time.monotonic() - STARTED:.1f} s: {message}", file=sys.stderr, flush=True)


def consumer(group):
    return Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group, "enable.auto.commit": False})


def committed(group):
    client = consumer(group)
    try:
        partitions = [TopicPartition(TOPIC, partition) for partition in range(PARTITION_COUNT)]
        return {tp.partition: tp.offset for tp in client.committed(partitions, timeout=TIMEOUT_S)}
    finally:
        client.close()


def main():
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for future in admin.create_topics([NewTopic(TOPIC, PARTITION_COUNT, 1)]).values():
        future.result(TIMEOUT_S)
    producer = Producer({"bootstrap.servers": BOOTSTRAP})
    for index in range(MESSAGE_COUNT):
        producer.produce(TOPIC, value=f"message-{index}".encode(), partition=index % PARTITION_COUNT)
    expect(producer.flush(TIMEOUT_S) == 0, "messages not delivered")

    groups = [f"offsets-clean-{index}" for index in range(GROUP_COUNT)] + [DELETED_GROUP]
    clients = {group: consumer(group) for group in groups}
    expected = {}
    for group, client in clients.items():
        client.assign([TopicPartition(TOPIC, partition) for partition in range(PARTITION_COUNT)])
    for round_index in range(COMMIT_ROUNDS):
        for group_index, (group, client) in enumerate(clients.items()):
            offsets = {partition: (round_index * 7 + group_index + partition) % (MESSAGE_COUNT // PARTITION_COUNT)
                       for partition in range(PARTITION_COUNT)}
            client.commit(offsets=[TopicPartition(TOPIC, partition, offset) for partition, offset in offsets.items()],
                          asynchronous=False)
            expected[group] = offsets
    for client in clients.values():
        client.close()
    log(f"{COMMIT_ROUNDS * len(groups)} commits done")
    for future in admin.delete_consumer_groups([DELETED_GROUP], request_timeout=TIMEOUT_S).values():
        future.result(TIMEOUT_S)
    del expected[DELETED_GROUP]
    for group, offsets in expected.items():
        expect(committed(group) == offsets, f"{group}: committed {committed(group)}, expected {offsets}")

    print("READY-FOR-RESTART", flush=True)
    deadline = time.monotonic() + RESTART_WAIT_S
    line = sys.stdin.readline().strip()
    expect(line == "RESTARTED" and time.monotonic() < deadline, f"no restart ({line!r})")

    for group, offsets in expected.items():
        found = committed(group)
        expect(found == offsets, f"after the restart {group}: committed {found}, expected {offsets}")
    found = committed(DELETED_GROUP)
    expect(all(offset < 0 for offset in found.values()), f"the deleted group came back: {found}")
    print("offsets-clean: ok", flush=True)


main()
