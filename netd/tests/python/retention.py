"""Size retention, with segment files recycled, seen by a real client across a SIGKILL.

Usage: retention.py BOOTSTRAP

The driver (netd/tests/retention_python.rs) starts the broker with small segments
(log.segment.bytes), a small log.retention.bytes and a short log.retention.check.interval.ms, so
retention removes segments while the script produces, and new segments reuse the removed files.

Phase 1: a confluent-kafka producer (acks=all, no idempotence, one partition) sends
MESSAGE_COUNT messages whose values name their index, in chunks with a retention pass between
them; the script waits until the low watermark
has moved (retention ran), then reads from the earliest offset with assign(): every message from
the low to the high watermark, each at the offset equal to its index, with the exact value sent.
It prints READY-FOR-RESTART and waits for RESTARTED on stdin (the driver SIGKILLs the broker and
starts it again on the same data directory). Phase 2: the watermarks after the restart are
checked (high unchanged, low not behind), MESSAGE_COUNT more are sent, retention must move the low
watermark again, and a fresh read from the earliest offset must again return exactly what was
sent, old bytes of recycled files never among them.

Prints "retention: ok" at the end; exits non-zero with a message on the first failed expectation.
"""
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

BOOTSTRAP = sys.argv[1]
TOPIC = "retention-recycling"
MESSAGE_COUNT = 4000
# Sent in chunks of this many (about 2.5 segments); from the third chunk on the script waits for
# retention to move the low watermark before the next, so that rolls find a removed file to reuse.
CHUNK_MESSAGES = 400
VALUE_BYTES = 400
FLUSH_TIMEOUT_S = 30
RETENTION_WAIT_S = 20
CONSUME_TIMEOUT_S = 30
RESTART_WAIT_S = 60
STARTED = time.monotonic()


def expect(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr, flush=True)
        sys.exit(1)


def log(message):
    print(f"retention.py {time.monotonic() - STARTED:.1f} s: {message}", file=sys.stderr, flush=True)


def value_of(index):
    head = f"message-{index}|".encode()
    return head + bytes((index * 7 + byte) % 251 for byte in range(VALUE_BYTES - len(head)))


def produce(first, count):
    for start in range(first, first + count, CHUNK_MESSAGES):
        # Read before the chunk: a retention pass may run any time after it is sent, so the low
        # watermark read afterwards may already be the moved one.
        low_before = watermarks()[0]
        produce_chunk(start, min(CHUNK_MESSAGES, first + count - start))
        if start - first >= 2 * CHUNK_MESSAGES:
            wait_for_low_above(low_before)


def produce_chunk(first, count):
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "enable.idempotence": False,
                         "linger.ms": 5, "max.in.flight.requests.per.connection": 1})
    failures = []
    for index in range(first, first + count):
        producer.produce(TOPIC, value=value_of(index), partition=0,
                         on_delivery=lambda error, _message: error and failures.append(error))
        producer.poll(0)
    left = producer.flush(FLUSH_TIMEOUT_S)
    expect(left == 0 and not failures, f"{left} undelivered, failures {failures[:3]}")


def watermarks():
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "retention-watermarks"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10)
    finally:
        consumer.close()


def wait_for_low_above(previous):
    deadline = time.monotonic() + RETENTION_WAIT_S
    while time.monotonic() < deadline:
        low, high = watermarks()
        if low > previous:
            return low, high
        time.sleep(0.2)
    expect(False, f"retention did not move the low watermark past {previous} within {RETENTION_WAIT_S} s")


def read_all(low, high):
    """Reads [low, high) from the earliest offset; every message must be the one sent at that offset."""
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": f"retention-read-{low}-{high}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(TOPIC, 0, low)])
    expected = low
    deadline = time.monotonic() + CONSUME_TIMEOUT_S
    while expected < high and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error():
            raise KafkaException(message.error())
        expect(message.offset() == expected, f"offset {message.offset()}, expected {expected}")
        expect(message.value() == value_of(expected), f"value at offset {expected} is not what was sent")
        expected += 1
    consumer.close()
    expect(expected == high, f"read up to {expected}, high watermark {high}")


admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])[TOPIC].result(timeout=30)

produce(0, MESSAGE_COUNT)
low, high = wait_for_low_above(0)
expect(high == MESSAGE_COUNT, f"high watermark {high} after {MESSAGE_COUNT} messages")
read_all(low, high)
log(f"phase 1: retained {low}..{high}")

print("READY-FOR-RESTART", flush=True)
line = ""
deadline = time.monotonic() + RESTART_WAIT_S
while time.monotonic() < deadline and line.strip() != "RESTARTED":
    line = sys.stdin.readline()
    if not line:
        break
expect(line.strip() == "RESTARTED", "the driver did not restart the broker")

low_after, high_after = watermarks()
expect(high_after == high, f"high watermark {high_after} after the restart, {high} before")
expect(low_after >= low, f"low watermark {low_after} after the restart, {low} before")
read_all(low_after, high_after)
produce(MESSAGE_COUNT, MESSAGE_COUNT)
low2, high2 = wait_for_low_above(low_after)
expect(high2 == 2 * MESSAGE_COUNT, f"high watermark {high2} after {2 * MESSAGE_COUNT} messages")
read_all(low2, high2)
log(f"phase 2: retained {low2}..{high2}")
print("retention: ok", flush=True)
