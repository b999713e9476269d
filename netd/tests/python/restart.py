"""One idempotent producer keeps producing across a broker restart.

Usage: restart.py BOOTSTRAP CLIENT   (CLIENT: confluent | kafka-python)

Phase 1: the producer (enable.idempotence, acks=all) sends MESSAGE_COUNT messages with varied keys
to a 3-partition topic and flushes. The script then prints READY-FOR-RESTART and waits, at most
RESTART_WAIT_S, for a line RESTARTED on stdin: the driver (netd/tests/python_restart.rs) stops or
kills the broker and starts it again on the same data directory and port meanwhile. Phase 2: the
same producer instance, with the same producer id and epoch, sends MESSAGE_COUNT more; every send
must succeed without a fatal error, an epoch bump or a new producer id. A confluent-kafka consumer
then reads every partition from offset 0 with assign(): exactly 2 * MESSAGE_COUNT messages, each
once, in production order per partition, at contiguous offsets from 0.

A real client only shows that the broker did not reject its next sequence; a broker that forgot
its producers would accept it too (an unknown producer may start anywhere). So a probe producer,
speaking raw Produce requests encoded by kafka-python's codec, also writes two batches before the
restart, and once the real client is checked, makes sure the broker still knows them: a sequence
gap is refused with OUT_OF_ORDER_SEQUENCE_NUMBER, the last batch replayed is answered as a
duplicate at its original offset within PROBE_TIMEOUT_S, and the true next sequence is appended.

Prints "CLIENT: ok" at the end; exits non-zero with a message on the first failed expectation.
"""
import random
import select
import socket
import sys
import time

BOOTSTRAP, CLIENT = sys.argv[1], sys.argv[2]
MESSAGE_COUNT = 2000
PARTITIONS = 3
RESTART_WAIT_S = 60
FLUSH_TIMEOUT_S = 30
CONSUME_TIMEOUT_S = 30
PROBE_TIMEOUT_S = 5
OUT_OF_ORDER_SEQUENCE_NUMBER = 45
rng = random.Random(4321)


def expect(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr, flush=True)
        sys.exit(1)


STARTED = time.monotonic()


def log(message):
    print(f"restart.py {time.monotonic() - STARTED:.1f} s: {message}", file=sys.stderr, flush=True)


def make_messages(phase, count):
    """(key, value): 50 keys spread over the partitions, values of 0-1000 bytes naming their index."""
    messages = []
    for index in range(count):
        key = f"key-{rng.randrange(50)}".encode()
        value = f"{CLIENT}-{phase}-{index}|".encode() + bytes(rng.randrange(256) for _ in range(rng.randrange(1000)))
        messages.append((key, value))
    return messages


def wait_for_restart():
    print("READY-FOR-RESTART", flush=True)
    readable, _, _ = select.select([sys.stdin], [], [], RESTART_WAIT_S)
    expect(readable, f"no RESTARTED line on stdin within {RESTART_WAIT_S} s")
    line = sys.stdin.readline().strip()
    expect(line == "RESTARTED", f"expected RESTARTED on stdin, got {line!r}")
    log("broker restarted, phase 2")


class ProbeProducer:
    """An idempotent producer of our own on one partition: InitProducerId and Produce v8 requests
    encoded and decoded by kafka-python's protocol classes, over a blocking socket."""

    def __init__(self, topic):
        self.topic = topic
        self.connect()
        from kafka.protocol.producer import InitProducerIdRequest
        response = self.call(InitProducerIdRequest[4](transactional_id=None, transaction_timeout_ms=60000,
                                                      producer_id=-1, producer_epoch=-1), "InitProducerId")
        expect(response.error_code == 0, f"probe InitProducerId error {response.error_code}")
        self.producer_id, self.producer_epoch = response.producer_id, response.producer_epoch

    def connect(self):
        from kafka.protocol.parser import KafkaProtocol
        host, port = BOOTSTRAP.rsplit(":", 1)
        self.socket = socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S)
        self.protocol = KafkaProtocol(client_id="restart-probe")

    def call(self, request, what):
        self.protocol.send_request(request)
        self.socket.sendall(self.protocol.send_bytes())
        while True:
            try:
                data = self.socket.recv(65536)
            except socket.timeout:
                expect(False, f"probe: no answer to {what} within {PROBE_TIMEOUT_S} s")
            expect(data, "the broker closed the probe connection")
            responses = self.protocol.receive_bytes(data)
            if responses:
                return responses[0][1]

    def produce(self, first_sequence, count, what):
        """Sends one batch of `count` records starting at `first_sequence`; returns (error, base offset)."""
        from kafka.protocol.producer import ProduceRequest
        from kafka.record.default_records import DefaultRecordBatchBuilder
        builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                            producer_id=self.producer_id, producer_epoch=self.producer_epoch,
                                            base_sequence=first_sequence, batch_size=1 << 20)
        now_ms = int(time.time() * 1000)
        for delta in range(count):
            builder.append(delta, timestamp=now_ms, key=None, value=f"probe-{first_sequence + delta}".encode(),
                           headers=[])
        Topic = ProduceRequest.TopicProduceData
        partition_data = [Topic.PartitionProduceData(index=0, records=bytes(builder.build()))]
        data = Topic(name=self.topic, partition_data=partition_data)
        request = ProduceRequest[8](transactional_id=None, acks=-1, timeout_ms=10000, topic_data=[data])
        partition = self.call(request, what).responses[0].partition_responses[0]
        return partition.error_code, partition.base_offset


def probe_before_restart(probe):
    for first_sequence, expected_offset in ((0, 0), (5, 5)):
        result = probe.produce(first_sequence, 5, f"the batch at sequence {first_sequence}")
        expect(result == (0, expected_offset), f"probe batch at sequence {first_sequence}: {result}")
    probe.socket.close()


def probe_after_restart(probe):
    probe.connect()
    result = probe.produce(20, 5, "a batch after a sequence gap")
    expect(result[0] == OUT_OF_ORDER_SEQUENCE_NUMBER,
           f"a sequence gap after the restart is OUT_OF_ORDER_SEQUENCE_NUMBER, got (error, base offset) {result}: "
           f"the broker forgot producer {probe.producer_id}'s sequences")
    result = probe.produce(5, 5, "the last batch before the restart, replayed")
    expect(result == (0, 5), f"the last batch before the restart, replayed, is a duplicate at offset 5, got (error, "
                             f"base offset) {result}")
    result = probe.produce(10, 5, "the next batch")
    expect(result == (0, 10), f"the next sequence after the restart is appended at offset 10, got {result}")
    probe.socket.close()
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "unused"})
    watermarks = consumer.get_watermark_offsets(TopicPartition(probe.topic, 0), timeout=10)
    expect(watermarks == (0, 15), f"the probe partition holds 15 records, watermarks {watermarks}")
    consumer.close()


def create_topics(topic):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    futures = admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1),
                                   NewTopic(topic + "-probe", num_partitions=1, replication_factor=1)])
    for future in futures.values():
        future.result(timeout=30)


def verify(topic, delivered):
    """`delivered`: (partition, offset, key, value) per message in production order, from the producer."""
    from confluent_kafka import Consumer, TopicPartition
    expect(len(delivered) == 2 * MESSAGE_COUNT, f"{len(delivered)} deliveries of {2 * MESSAGE_COUNT}")
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "unused", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    total = 0
    for partition in range(PARTITIONS):
        expected = [entry for entry in delivered if entry[0] == partition]
        expect(expected, f"partition {partition} got messages")
        consumer.assign([TopicPartition(topic, partition, 0)])
        received = []
        deadline = time.time() + CONSUME_TIMEOUT_S
        while len(received) < len(expected) and time.time() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            expect(message.error() is None, f"consume error {message.error()}")
            received.append(message)
        # The high watermark says nothing lies past them (no duplicate appended by a retry).
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        expect((low, high) == (0, len(expected)), f"partition {partition}: watermarks {(low, high)}, "
                                                  f"{len(expected)} messages produced")
        expect(len(received) == len(expected), f"partition {partition}: {len(received)} of {len(expected)}")
        values = [message.value() for message in received]
        expect(len(set(values)) == len(values), f"partition {partition}: duplicates")
        for offset, (message, (_, delivered_offset, key, value)) in enumerate(zip(received, expected)):
            expect(message.offset() == offset, f"partition {partition}: offset {message.offset()} == {offset}")
            expect(delivered_offset == offset, f"partition {partition}: delivery report offset {delivered_offset} "
                                               f"== {offset}")
            expect(message.key() == key and message.value() == value,
                   f"partition {partition}, offset {offset}: {message.value()[:24]} == {value[:24]} (production order)")
        total += len(received)
    expect(total == 2 * MESSAGE_COUNT, f"{total} messages of {2 * MESSAGE_COUNT}")

    consumer.close()
    log(f"{total} messages read back: {[len([e for e in delivered if e[0] == p]) for p in range(PARTITIONS)]}")


def confluent():
    import json
    from confluent_kafka import Producer

    topic = "restart-confluent"
    create_topics(topic)
    probe = ProbeProducer(topic + "-probe")
    probe_before_restart(probe)

    errors, fatal_errors, delivery_errors, stats, delivered = [], [], [], [], []

    def on_error(error):
        # Transport errors while the broker is down are expected; a fatal one never is.
        (fatal_errors if error.fatal() else errors).append(error)

    def on_delivery(error, message):
        if error is not None:
            delivery_errors.append(error)
        else:
            delivered.append((message.partition(), message.offset(), message.key(), message.value()))

    producer = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5, "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500,
                         "statistics.interval.ms": 100, "error_cb": on_error,
                         "stats_cb": lambda text: stats.append(json.loads(text)["eos"])})

    def produce_phase(phase):
        for key, value in make_messages(phase, MESSAGE_COUNT):
            while True:
                try:
                    producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.1)
        expect(producer.flush(FLUSH_TIMEOUT_S) == 0, f"phase {phase}: every message delivered")
        expect(not delivery_errors, f"phase {phase}: delivery errors {delivery_errors[:3]}")
        expect(not fatal_errors, f"phase {phase}: fatal producer errors {fatal_errors}")
        expect(len(delivered) == phase * MESSAGE_COUNT, f"phase {phase}: {len(delivered)} delivered")
        # Statistics emitted after the flush: the producer id and epoch in use now.
        stats.clear()
        deadline = time.time() + 10
        while not stats and time.time() < deadline:
            producer.poll(0.1)
        expect(stats, "statistics emitted")
        eos = stats[-1]
        expect(eos["idemp_state"] == "Assigned", f"phase {phase}: idempotence state {eos}")
        return eos["producer_id"], eos["producer_epoch"], eos["epoch_cnt"]

    before = produce_phase(1)
    log(f"phase 1 delivered, producer id, epoch, epoch count {before}")
    wait_for_restart()
    after = produce_phase(2)
    expect(after == before, f"the same producer id and epoch, never reset or bumped: {before} then {after}")
    expect(before[2] == 1, f"one producer id assignment in all: {before}")
    log(f"phase 2 delivered with the same producer id and epoch; non-fatal errors while down: {errors[:3]}")
    verify(topic, delivered)
    probe_after_restart(probe)


def kafka_python():
    from kafka import KafkaProducer

    topic = "restart-kafka-python"
    create_topics(topic)
    probe = ProbeProducer(topic + "-probe")
    probe_before_restart(probe)

    # kafka-python enables idempotence by default; said explicitly because it is what is tested.
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, enable_idempotence=True, acks="all", linger_ms=5,
                             reconnect_backoff_ms=50, reconnect_backoff_max_ms=500)
    transactions = producer._transaction_manager
    delivered = []

    def produce_phase(phase):
        messages = make_messages(phase, MESSAGE_COUNT)
        futures = [producer.send(topic, key=key, value=value) for key, value in messages]
        producer.flush(FLUSH_TIMEOUT_S)
        for future, (key, value) in zip(futures, messages):
            expect(future.is_done, f"phase {phase}: every send completed within {FLUSH_TIMEOUT_S} s")
            expect(future.succeeded(), f"phase {phase}: send failed: {future.exception!r}")
            metadata = future.get(timeout=0)
            delivered.append((metadata.partition, metadata.offset, key, value))
        expect(not transactions.has_fatal_error(), f"phase {phase}: fatal error {transactions.last_error}")
        identity = transactions.producer_id_and_epoch
        expect(identity.is_valid, f"phase {phase}: producer id {identity}")
        return identity.producer_id, identity.epoch

    before = produce_phase(1)
    log(f"phase 1 delivered, producer id and epoch {before}")
    wait_for_restart()
    after = produce_phase(2)
    expect(after == before, f"the same producer id and epoch, never reset or bumped: {before} then {after}")
    log("phase 2 delivered with the same producer id and epoch")
    producer.close(timeout=10)
    verify(topic, delivered)
    probe_after_restart(probe)


{"confluent": confluent, "kafka-python": kafka_python}[CLIENT]()
print(f"{CLIENT}: ok", flush=True)
