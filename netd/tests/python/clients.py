"""Real Python Kafka clients against a running Skua broker.

Usage: clients.py BOOTSTRAP CHECK   (CHECK: confluent | kafka-python | log-append-time | timestamp-bounds |
                                     min-insync)
Exits non-zero with a message on the first failed expectation. Driven by netd/tests/python_clients.rs.
"""
import random
import sys
import time

BOOTSTRAP, CHECK = sys.argv[1], sys.argv[2]
MESSAGE_COUNT = 10_000
PARTITIONS = 3
rng = random.Random(1234)


def expect(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


def make_messages(count):
    """Varied sizes and keys, some null keys and null values, headers on some."""
    messages = []
    for index in range(count):
        key = None if index % 11 == 0 and index % 97 != 1 else f"key-{rng.randrange(40)}".encode()
        # Null values, but never together with a null key (kafka-python refuses to send those).
        value = None if index % 97 == 1 else bytes(rng.randrange(256) for _ in range(rng.randrange(0, 2000)))
        headers = [("h", f"{index}".encode()), ("empty", b"")] if index % 5 == 0 else []
        messages.append((key, value, headers, index % PARTITIONS))
    return messages


def confluent():
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    topic = "py-confluent"
    futures = admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    futures[topic].result(timeout=30)
    expect(topic in admin.list_topics(timeout=10).topics, "created topic is listed")
    futures = admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    try:
        futures[topic].result(timeout=30)
        expect(False, "creating an existing topic fails")
    except Exception as error:  # KafkaException(TOPIC_ALREADY_EXISTS)
        expect("TOPIC_ALREADY_EXISTS" in str(error) or "already exists" in str(error), f"right error: {error}")

    messages = make_messages(MESSAGE_COUNT)
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5, "compression.type": "lz4"})
    errors = []
    start_ms = int(time.time() * 1000)
    for key, value, headers, partition in messages:
        while True:
            try:
                producer.produce(topic, value=value, key=key, headers=headers, partition=partition,
                                 on_delivery=lambda error, message: errors.append(error) if error else None)
                break
            except BufferError:
                producer.poll(0.1)
    expect(producer.flush(60) == 0, "every message delivered")
    expect(not errors, f"no delivery errors: {errors[:3]}")

    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "unused", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    first_timestamps = {}
    for partition in range(PARTITIONS):
        expected = [m for m in messages if m[3] == partition]
        consumer.assign([TopicPartition(topic, partition, 0)])
        received = []
        deadline = time.time() + 60
        while len(received) < len(expected) and time.time() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            expect(message.error() is None, f"consume error {message.error()}")
            received.append(message)
        expect(len(received) == len(expected), f"partition {partition}: {len(received)} of {len(expected)}")
        for offset, (message, (key, value, headers, _)) in enumerate(zip(received, expected)):
            expect(message.offset() == offset, f"offset {message.offset()} == {offset}")
            expect(message.key() == key, f"key at {offset}")
            expect(message.value() == value, f"value at {offset}")
            expect((message.headers() or []) == headers, f"headers at {offset}: {message.headers()} vs {headers}")
            expect(message.timestamp()[1] >= start_ms - 1000, "timestamps kept")
        first_timestamps[partition] = received[0].timestamp()[1]
    # ListOffsets by timestamp: the first message at or after a message's timestamp.
    probe = TopicPartition(topic, 0, first_timestamps[0])
    found = consumer.offsets_for_times([probe], timeout=10)[0]
    expect(found.error is None and found.offset == 0, f"offset for the first timestamp: {found}")
    future = TopicPartition(topic, 0, int(time.time() * 1000) + 3_600_000)
    found = consumer.offsets_for_times([future], timeout=10)[0]
    expect(found.offset == -1, f"no offset for a future timestamp: {found}")
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    expect((low, high) == (0, len([m for m in messages if m[3] == 0])), f"watermarks {low}, {high}")
    consumer.close()

    from confluent_kafka.admin import ConfigResource
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    expect(configs["retention.ms"].value == "604800000", f"retention.ms {configs.get('retention.ms')}")
    expect(configs["cleanup.policy"].value == "delete", "cleanup.policy")
    broker_resource = ConfigResource(ConfigResource.Type.BROKER, "1")
    broker_configs = admin.describe_configs([broker_resource])[broker_resource].result(timeout=30)
    expect(broker_configs["num.partitions"].value == "1", "broker num.partitions")

    futures = admin.delete_topics([topic])
    futures[topic].result(timeout=30)
    expect(topic not in admin.list_topics(timeout=10).topics, "deleted topic is gone")


def kafka_python():
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic

    topic = "py-kafka-python"
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    expect(topic in admin.list_topics(), "created topic is listed")

    messages = make_messages(MESSAGE_COUNT)
    # kafka-python enables idempotence by default; acks=all.
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5, compression_type="gzip")
    futures = [producer.send(topic, value=value, key=key, headers=headers, partition=partition)
               for key, value, headers, partition in messages]
    producer.flush(60)
    offsets = [future.get(timeout=60) for future in futures]
    expect(all(meta.offset >= 0 for meta in offsets), "every send acknowledged")
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, auto_offset_reset="earliest",
                             consumer_timeout_ms=5000)
    for partition in range(PARTITIONS):
        expected = [m for m in messages if m[3] == partition]
        consumer.assign([TopicPartition(topic, partition)])
        consumer.seek_to_beginning()
        received = []
        deadline = time.time() + 60
        while len(received) < len(expected) and time.time() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                received.extend(records)
        expect(len(received) == len(expected), f"partition {partition}: {len(received)} of {len(expected)}")
        for offset, (record, (key, value, headers, _)) in enumerate(zip(received, expected)):
            expect(record.offset == offset, f"offset {record.offset} == {offset}")
            expect(record.key == key and record.value == value, f"key/value at {offset}")
            expect(list(record.headers) == headers, f"headers at {offset}")
    tp = TopicPartition(topic, 1)
    found = consumer.offsets_for_times({tp: 0})[tp]
    expect(found is not None and found.offset == 0, f"offset for timestamp 0: {found}")
    expect(consumer.end_offsets([tp])[tp] == len([m for m in messages if m[3] == 1]), "end offset")
    expect(consumer.beginning_offsets([tp])[tp] == 0, "beginning offset")
    consumer.close()
    from kafka.admin import ConfigResource, ConfigResourceType
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="All")
    expect("retention.ms" in repr(described), f"describe_configs answered: {described!r}"[:300])
    admin.delete_topics([topic])
    admin.close()


def log_append_time():
    """A topic of message.timestamp.type=LogAppendTime: records produced with an old timestamp
    come back with the broker's append time, typed LOG_APPEND_TIME, in the delivery report and to
    the consumer; a config change back to CreateTime applies to the next batch."""
    from confluent_kafka import Consumer, Producer, TopicPartition, TIMESTAMP_LOG_APPEND_TIME, TIMESTAMP_CREATE_TIME
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    topic = "py-log-append-time"
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1,
                                            config={"message.timestamp.type": "LogAppendTime"})])
    futures[topic].result(timeout=30)
    old_ms = 1_000_000
    reports = []
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all"})
    before_ms = int(time.time() * 1000)
    for index in range(3):
        producer.produce(topic, value=f"v{index}".encode(), partition=0, timestamp=old_ms,
                         on_delivery=lambda error, message: reports.append((error, message.timestamp())))
    expect(producer.flush(30) == 0, "every record delivered")
    after_ms = int(time.time() * 1000)
    for error, (kind, stamp) in reports:
        expect(error is None, f"delivered: {error}")
        expect(kind == TIMESTAMP_LOG_APPEND_TIME and before_ms <= stamp <= after_ms,
               f"the delivery report has the append time: {kind} {stamp} not in [{before_ms}, {after_ms}]")
    # Back to CreateTime (the older AlterConfigs API, which replaces the topic's configs).
    resource = ConfigResource("topic", topic, set_config={"message.timestamp.type": "CreateTime"})
    admin.alter_configs([resource])[resource].result(timeout=30)
    producer.produce(topic, value=b"created", partition=0, timestamp=old_ms)
    expect(producer.flush(30) == 0, "the last record delivered")
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "unused", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    seen = []
    deadline = time.time() + 30
    while len(seen) < 4 and time.time() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            seen.append((message.value(), message.timestamp()))
    consumer.close()
    expect(len(seen) == 4, f"four records read back: {seen}")
    for value, (kind, stamp) in seen[:3]:
        expect(kind == TIMESTAMP_LOG_APPEND_TIME and before_ms <= stamp <= after_ms,
               f"{value}: the consumer sees the append time: {kind} {stamp}")
    expect(seen[3] == (b"created", (TIMESTAMP_CREATE_TIME, old_ms)), f"CreateTime again: {seen[3]}")


def timestamp_bounds():
    """message.timestamp.before.max.ms and after.max.ms, set at creation and changed with
    IncrementalAlterConfigs, as confluent-kafka's producer sees them: a record further from the
    broker's clock than the topic allows is refused with INVALID_TIMESTAMP, others are taken, and a
    change applies to the next batch."""
    from confluent_kafka import KafkaError, Producer
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                       NewTopic)

    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    topic = "py-timestamp-bounds"
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1,
                                            config={"message.timestamp.before.max.ms": "3600000"})])
    futures[topic].result(timeout=30)
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "retries": 0})

    def produce(offset_ms):
        reports = []
        producer.produce(topic, value=b"v", partition=0, timestamp=int(time.time() * 1000) + offset_ms,
                         on_delivery=lambda error, message: reports.append(error))
        expect(producer.flush(30) == 0, "the record is answered")
        return reports[0]

    hour_ms, minute_ms = 3_600_000, 60_000
    expect(produce(0) is None, "a record of now is taken")
    error = produce(-2 * hour_ms)
    expect(error is not None and error.code() == KafkaError.INVALID_TIMESTAMP,
           f"two hours old is refused with INVALID_TIMESTAMP: {error}")
    expect(produce(-30 * minute_ms) is None, "half an hour old is taken")
    # Kafka's default after.max.ms is one hour: ten minutes ahead is taken, until the topic says 1 minute.
    expect(produce(10 * minute_ms) is None, "ten minutes ahead is taken by default")
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("message.timestamp.after.max.ms", "60000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("message.timestamp.before.max.ms", None, incremental_operation=AlterConfigOpType.DELETE),
    ])
    admin.incremental_alter_configs([resource])[resource].result(timeout=30)
    error = produce(10 * minute_ms)
    expect(error is not None and error.code() == KafkaError.INVALID_TIMESTAMP,
           f"ten minutes ahead is refused once after.max.ms is a minute: {error}")
    expect(produce(-2 * hour_ms) is None, "two hours old is taken once before.max.ms is deleted")
    described = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
    entries = list(described.values())[0].result(timeout=30)
    expect(entries["message.timestamp.after.max.ms"].value == "60000", f"described: {entries['message.timestamp.after.max.ms']}")
    bad = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("message.timestamp.after.max.ms", "-1", incremental_operation=AlterConfigOpType.SET)])
    try:
        admin.incremental_alter_configs([bad])[bad].result(timeout=30)
        expect(False, "a negative bound is refused")
    except Exception as refused:  # noqa: BLE001 - the client's KafkaException
        expect("Value must be at least 0" in str(refused), f"Kafka's message: {refused}")


def min_insync():
    """A one-replica topic with min.insync.replicas=2, which Kafka allows creating: Kafka caps the
    minimum at the replica count (Partition.effectiveMinIsr), so acks=all is taken, as acks=1 is;
    so is acks=all on a broker whose own min.insync.replicas is 2. Without retries, so a refusal
    would be the delivery report."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    # The topic's own minimum, and the broker's (the test starts the broker with 2).
    for topic, config in [("py-min-insync", {"min.insync.replicas": "2"}), ("py-min-insync-broker", {})]:
        futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config=config)])
        futures[topic].result(timeout=30)
        reports = []
        for acks in ["all", "1", "all"]:
            producer = Producer({"bootstrap.servers": BOOTSTRAP, "acks": acks, "retries": 0,
                                 "enable.idempotence": False})
            producer.produce(topic, value=acks.encode(), partition=0,
                             on_delivery=lambda error, message: reports.append((error, message.offset())))
            expect(producer.flush(20) == 0, f"{topic} acks={acks}: a delivery report")
        expect(reports == [(None, 0), (None, 1), (None, 2)], f"{topic}: every acks level taken: {reports}")


{"confluent": confluent, "kafka-python": kafka_python, "log-append-time": log_append_time,
 "timestamp-bounds": timestamp_bounds, "min-insync": min_insync}[CHECK]()
print(f"{CHECK}: ok")
