"""The fault suite's writer: one idempotent acks=all confluent-kafka producer writing unique,
sequence-numbered values at a bounded rate, round-robin over the topic's partitions, and logging
every delivery report. Owns the acknowledgement log; knows nothing of the faults or the checks.

Values are b"<seq>" (decimal, from 0 up), each produced once to partition seq % PARTITIONS. The log
(--acks FILE) starts with `S <unix ms at ms 0>` and gets one tab-separated line per delivery
report, written as the report arrives:
    A  seq  partition  offset  ms  produced_ms   acknowledged (ms since the producer started), and
                                            when it was handed to the client
    F  seq  partition  error   ms      failed (the record may or may not have been written)
On SIGTERM or SIGINT it stops producing, flushes for at most --flush-timeout-s, and prints one JSON
line {"attempted", "produced", "acked", "failed", "unresolved", "fatal"} (unresolved: no report by
then). A fatal
producer error (an idempotence violation the client cannot recover from) is logged (`E` line and
stderr) and ends the run early with exit code 3.

Run with .cache/venv/bin/python (scripts/test-deps.sh).
"""

import argparse
import json
import signal
import sys
import time

from confluent_kafka import KafkaException, Producer

# How long one produce() may wait for room in the client's queue before the record counts as failed.
QUEUE_WAIT_S_MAX = 10
PROGRESS_INTERVAL_S = 10


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--rate", type=float, default=200.0, help="records per second (default 200)")
    parser.add_argument("--acks", required=True, help="the delivery log to write")
    parser.add_argument("--delivery-timeout-ms", type=int, default=60_000)
    parser.add_argument("--flush-timeout-s", type=float, default=90.0)
    parser.add_argument("--duration-s-max", type=float, default=7_200.0, help="stops by itself after this long")
    parser.add_argument("--required-acks", choices=("all", "1"), default="all",
                        help="acks: all (the suite's promise) or 1 (experiments: the leader's copy only)")
    parser.add_argument("--max-in-flight", type=int, default=5,
                        help="max.in.flight.requests.per.connection (librdkafka's default 5; at most 5 with idempotence)")
    parser.add_argument("--debug", default="", help="librdkafka debug contexts (e.g. eos: idempotence state, epoch bumps)")
    args = parser.parse_args()

    # The wall clock, as cycles.py's fault times are, so that check.py can place each record
    # among the faults.
    start_unix_s = time.time()
    start = time.monotonic()
    elapsed_ms = lambda: int((time.time() - start_unix_s) * 1000)  # noqa: E731
    log = open(args.acks, "w", buffering=1)
    log.write(f"S\t{int(start_unix_s * 1000)}\n")  # the wall clock at ms 0, to line up with cycles.jsonl
    counts = {"produced": 0, "acked": 0, "failed": 0, "fatal": None}
    stopping = {"flag": False}

    def stop(_signal, _frame):
        stopping["flag"] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def delivered(error, message, seq, produced_ms):
        if error is None:
            counts["acked"] += 1
            log.write(f"A\t{seq}\t{message.partition()}\t{message.offset()}\t{elapsed_ms()}\t{produced_ms}\n")
        else:
            counts["failed"] += 1
            log.write(f"F\t{seq}\t{message.partition()}\t{error.name()}\t{elapsed_ms()}\n")

    def client_error(error):
        # Transport errors are expected while a node is down; a fatal one ends the run.
        if error.fatal():
            counts["fatal"] = f"{error.name()}: {error.str()}"
            log.write(f"E\t{error.name()}\t{error.str()}\t{elapsed_ms()}\n")
            print(f"producer: FATAL {error.name()}: {error.str()}", file=sys.stderr, flush=True)
            stopping["flag"] = True

    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "client.id": "skua-faults-producer",
            "acks": args.required_acks,
            # Idempotence needs acks=all; an acks=1 run is a plain producer.
            "enable.idempotence": args.required_acks == "all",
            "linger.ms": 5,
            "max.in.flight.requests.per.connection": args.max_in_flight,
            "message.timeout.ms": args.delivery_timeout_ms,
            "request.timeout.ms": 10_000,
            "error_cb": client_error,
            **({"debug": args.debug} if args.debug else {}),
        }
    )
    interval_s = 1.0 / args.rate
    next_due = time.monotonic()
    next_progress = time.monotonic() + PROGRESS_INTERVAL_S
    seq = 0
    while not stopping["flag"] and time.monotonic() - start < args.duration_s_max:
        now = time.monotonic()
        if now < next_due:
            producer.poll(min(next_due - now, 0.05))
            continue
        next_due += interval_s
        if next_due < now - 1.0:
            next_due = now  # fell behind (a long poll): no burst to catch up
        partition = seq % args.partitions
        value = str(seq).encode()
        deadline = time.monotonic() + QUEUE_WAIT_S_MAX
        produced_ms = elapsed_ms()
        while True:
            try:
                producer.produce(args.topic, value, partition=partition,
                                 on_delivery=lambda error, message, seq=seq, at=produced_ms: delivered(error, message, seq, at))
                counts["produced"] += 1
                break
            except BufferError:
                if time.monotonic() > deadline:
                    counts["failed"] += 1
                    log.write(f"F\t{seq}\t{partition}\tQUEUE_FULL\t{elapsed_ms()}\n")
                    break
                producer.poll(0.1)
            except KafkaException as error:
                counts["failed"] += 1
                log.write(f"F\t{seq}\t{partition}\t{error.args[0].name()}\t{elapsed_ms()}\n")
                break
        seq += 1
        producer.poll(0)
        if time.monotonic() >= next_progress:
            next_progress += PROGRESS_INTERVAL_S
            print(f"producer: {elapsed_ms() / 1000:.0f} s: produced {counts['produced']}, acked {counts['acked']}, "
                  f"failed {counts['failed']}, waiting {len(producer)}", file=sys.stderr, flush=True)

    # Flush within a bound; what has no report by then is unresolved (neither acked nor failed).
    deadline = time.monotonic() + args.flush_timeout_s
    while len(producer) > 0 and time.monotonic() < deadline:
        producer.flush(min(1.0, max(deadline - time.monotonic(), 0.0)))
    counts["unresolved"] = len(producer)
    counts["attempted"] = seq
    log.close()
    print(json.dumps(counts), flush=True)
    sys.exit(3 if counts["fatal"] else 0)


if __name__ == "__main__":
    main()
