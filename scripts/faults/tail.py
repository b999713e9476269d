"""The fault suite's live reader: a confluent-kafka consumer that follows every partition of the
topic from its beginning while the faults happen, and a second client that asks each partition's
leader for its high watermark every --interval-s. Owns the read log; knows nothing of the faults.

What it logs (--log FILE, tab-separated, ms since start):
    R  partition  offset  seq  ms          a record read (seq: its value; -1 if not a number)
    C  partition  high_watermark  ms       the high watermark of the last Fetch response, when it changes
    H  partition  high_watermark  ms       the high watermark ListOffsets answered (every interval)
    X  partition  error  ms                a consumer or query error (partition -1: not tied to one)
check.py then requires that every R line's record is still at that offset at the end (nothing read
was later truncated) and that the C and H values never move back per partition. auto.offset.reset
is `error`, so an offset out of range is logged (X) instead of silently skipped. On SIGTERM or
SIGINT it stops and prints one JSON line {"read", "errors"}.

Run with .cache/venv/bin/python (scripts/test-deps.sh).
"""

import argparse
import json
import signal
import sys
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

QUERY_TIMEOUT_S = 2.0
BATCH_MAX = 500


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--interval-s", type=float, default=1.0)
    parser.add_argument("--duration-s-max", type=float, default=7_200.0, help="stops by itself after this long")
    args = parser.parse_args()

    start = time.monotonic()
    elapsed_ms = lambda: int((time.monotonic() - start) * 1000)  # noqa: E731
    log = open(args.log, "w", buffering=1)
    lock = threading.Lock()
    counts = {"read": 0, "errors": 0}
    stopping = threading.Event()

    def write(line):
        with lock:
            log.write(line)

    def stop(_signal, _frame):
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    common = {"bootstrap.servers": args.bootstrap, "group.id": "skua-faults-tail", "enable.auto.commit": False}

    def query_high_watermarks():
        client = Consumer({**common, "client.id": "skua-faults-watermarks"})
        while not stopping.wait(args.interval_s) and time.monotonic() - start < args.duration_s_max:
            for partition in range(args.partitions):
                try:
                    _low, high = client.get_watermark_offsets(
                        TopicPartition(args.topic, partition), timeout=QUERY_TIMEOUT_S, cached=False)
                    write(f"H\t{partition}\t{high}\t{elapsed_ms()}\n")
                except KafkaException as error:
                    write(f"X\t{partition}\tquery {error.args[0].name()}\t{elapsed_ms()}\n")
        client.close()

    querier = threading.Thread(target=query_high_watermarks, daemon=True)
    querier.start()
    consumer = Consumer({**common, "client.id": "skua-faults-tail", "auto.offset.reset": "error",
                         "fetch.wait.max.ms": 100})
    consumer.assign([TopicPartition(args.topic, partition, OFFSET_BEGINNING) for partition in range(args.partitions)])
    last_cached = {}
    while not stopping.is_set() and time.monotonic() - start < args.duration_s_max:
        messages = consumer.consume(BATCH_MAX, timeout=0.2)
        touched = set()
        for message in messages:
            if message.error():
                counts["errors"] += 1
                error = message.error()
                partition = message.partition() if message.partition() is not None else -1
                if error.code() != KafkaError._PARTITION_EOF:
                    write(f"X\t{partition}\t{error.name()}\t{elapsed_ms()}\n")
                continue
            try:
                seq = int(message.value())
            except (TypeError, ValueError):
                seq = -1
            counts["read"] += 1
            touched.add(message.partition())
            write(f"R\t{message.partition()}\t{message.offset()}\t{seq}\t{elapsed_ms()}\n")
        for partition in touched:
            _low, high = consumer.get_watermark_offsets(TopicPartition(args.topic, partition), cached=True)
            if high >= 0 and high != last_cached.get(partition):
                last_cached[partition] = high
                write(f"C\t{partition}\t{high}\t{elapsed_ms()}\n")
    stopping.set()
    querier.join(timeout=QUERY_TIMEOUT_S * args.partitions + 5)
    consumer.close()
    log.close()
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
