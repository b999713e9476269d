"""The writer of scripts/failover-bench.sh's `writes` rounds: one idempotent acks=all confluent-kafka
producer writing to one partition at a steady rate, SIGKILLs that partition's leader while it
writes, and measures from its own clock how long writes stay unavailable. Owns the producer, its
settings (PRODUCER_SETTINGS, the same for every broker) and the kill; knows nothing of how the
cluster is started, which node is the controller or how the victim was chosen.

    failover-writes.py --bootstrap B --nodes ID=HOST:PORT,... --topic T --partition P
                       --node ID --pid PID --log FILE
    failover-writes.py --settings       # PRODUCER_SETTINGS as JSON

1. Produces one record every --interval-ms to partition P (value b"<seq>"), polling the client in
   between so that each delivery report is timed within a few ms of its arrival.
2. After --warmup-s, and once records are being acknowledged, SIGKILLs PID (node ID, P's leader).
   The clock (time.monotonic) starts just before the kill.
3. Meanwhile every surviving node is asked for P's leader every POLL_INTERVAL_MS over its own
   connection (failover-probe.py's Metadata reader): when the first one names a live new leader.
4. Keeps producing until a record sent after the kill is acknowledged, then --after-s more (or
   until --wait-s-max after the kill, when it gives up: "recovered": false); flushes within
   FLUSH_S_MAX and prints one JSON object:
     first_ack_ms              kill -> the first successful delivery report, of any record, after
                               the outage (acks_drained_after_kill: those read just after the kill,
                               sent by the leader before it died)
     first_ack_sent_after_ms   kill -> the first acknowledgement of a record produced after the kill
     metadata_leader_ms        kill -> a surviving node's Metadata names a new leader for P
     client_joined_ms          kill -> librdkafka hands P to the new leader's broker thread (its
                               `topic` debug log, which is on always and copied to stderr)
     last_ack_before_ms        the last acknowledgement before the kill, ms before it
     in_flight_at_kill         records produced and not yet acknowledged at the kill
     produced, acked, failed, failed_by_error, unresolved (no report after the flush), fatal
     ack_latency_ms_before     median send -> ack of the records sent in the last second before the kill
     kill_unix_ms              the wall clock at the kill, to line up with the brokers' and the client's logs
--debug CONTEXTS adds librdkafka debug contexts to `topic` (always on, to stderr). --log FILE gets one tab-separated line per record: seq, sent ms, outcome ms, offset or error
(ms since the kill, negative before it), for reading a round again.

Run with .cache/venv/bin/python (scripts/test-deps.sh).
"""

import argparse
import importlib.util
import json
import logging
import os
import re
import signal
import statistics
import sys
import threading
import time

from confluent_kafka import KafkaException, Producer

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
_probe_spec = importlib.util.spec_from_file_location(
    "failover_probe", os.path.join(os.path.dirname(os.path.abspath(__file__)), "failover-probe.py"))
probe = importlib.util.module_from_spec(_probe_spec)
_probe_spec.loader.exec_module(probe)

# The producer's settings, the same for every broker (the summary prints them). The measured time
# includes the client's own reaction: librdkafka learns of a new leader only from a Metadata answer.
# While a partition's leader is down it asks again once a second (its topic scan: "broker is down:
# re-query" in the `topic` debug log), so it moves up to about a second after the brokers name the
# new leader; client_joined_ms says when it did. topic.metadata.refresh.interval.ms stays at its
# default. After the answer that names the new leader, librdkafka 2.16 parks the partition on its
# internal broker ("Reverting from preferred replica 2 to leader -1" as the old leader's thread lets
# it go) until the next scan, a second later ("broker is internal: re-query"); at a 1 s refresh a
# second answer in flight sometimes moved it on at once, so the client's delay varied more. Backoffs are librdkafka's defaults,
# written out, but for reconnect.backoff.max.ms (1 s instead of 10 s).
PRODUCER_SETTINGS = {
    "acks": "all",
    "enable.idempotence": True,
    "max.in.flight.requests.per.connection": 5,
    "linger.ms": 0,
    "message.timeout.ms": 60_000,
    "request.timeout.ms": 30_000,
    "topic.metadata.refresh.interval.ms": 300_000,
    "retry.backoff.ms": 100,
    "retry.backoff.max.ms": 1_000,
    "reconnect.backoff.ms": 100,
    "reconnect.backoff.max.ms": 1_000,
    "socket.connection.setup.timeout.ms": 30_000,
}
POLL_INTERVAL_MS = 50
# The first acknowledgement before the kill must come within this long.
FIRST_ACK_S_MAX = 60
FLUSH_S_MAX = 70
# How long produce() may wait for room in the client's queue before the record counts as failed.
QUEUE_WAIT_S_MAX = 5
# Acknowledgements arriving within DRAIN_MS of the kill and followed by a gap of GAP_MS came from
# the dead leader (sent before the kill): they do not count as the first acknowledgement.
DRAIN_MS = 200
GAP_MS = 1_000
# ack_latency_ms_before is the median over the records sent this long before the kill.
LATENCY_WINDOW_S = 1.0


def main():
    if sys.argv[1:] == ["--settings"]:
        print(json.dumps(PRODUCER_SETTINGS))  # for the report
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--nodes", required=True, help="ID=HOST:PORT,... (client listeners)")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partition", type=int, required=True)
    parser.add_argument("--node", type=int, required=True, help="the partition's leader, to kill")
    parser.add_argument("--pid", type=int, required=True, help="its process id")
    parser.add_argument("--log", required=True, help="one line per record")
    parser.add_argument("--interval-ms", type=float, default=5.0, help="between two records (default 5)")
    parser.add_argument("--warmup-s", type=float, default=5.0, help="producing before the kill (default 5)")
    parser.add_argument("--after-s", type=float, default=2.0, help="producing after the first new ack (default 2)")
    parser.add_argument("--wait-s-max", type=float, default=90.0, help="gives up this long after the kill (default 90)")
    parser.add_argument("--debug", default="", help="librdkafka debug contexts besides topic, to stderr (e.g. msg,eos)")
    args = parser.parse_args()
    nodes = probe.parse_nodes(args.nodes)
    survivors = {node: address for node, address in nodes.items() if node != args.node}

    clock = time.monotonic
    records = {}  # seq -> [sent, outcome time or None, offset or error name]
    state = {"kill": None, "fatal": None, "first_ack_before": None, "first_new_ack": None}

    def delivered(error, message, seq):
        now = clock()
        entry = records[seq]
        entry[1] = now
        entry[2] = message.offset() if error is None else error.name()
        entry.append(error is None)
        if error is None and state["first_ack_before"] is None:
            state["first_ack_before"] = now
        if error is None and state["kill"] is not None and entry[0] > state["kill"] and state["first_new_ack"] is None:
            state["first_new_ack"] = now

    def client_error(error):
        # Transport errors are expected while the leader is down; a fatal one ends the round.
        if error.fatal():
            state["fatal"] = f"{error.name()}: {error.str()}"

    # librdkafka's log comes through poll(), timed here and copied to stderr: the moment it joins
    # the new leader's broker thread for the partition ("Topic T [P]: joining broker" on the thread
    # of a broker other than the victim) is client_joined_ms.
    joined_pattern = re.compile(
        r"\[thrd:[^\]]*/(\d+)\]: .*Topic " + re.escape(args.topic) + r" \[" + str(args.partition) + r"\]: joining broker")

    class Handler(logging.Handler):
        def emit(self, record):
            message = record.getMessage()
            since_kill = "" if state["kill"] is None else f" {(clock() - state['kill']) * 1000:+.1f} ms"
            print(f"{time.time():.3f}{since_kill} {message}", file=sys.stderr)
            if state["kill"] is not None and state.get("joined") is None:
                match = joined_pattern.search(message)
                if match and int(match.group(1)) != args.node:
                    state["joined"] = clock()

    client_log = logging.getLogger("librdkafka")
    client_log.propagate = False
    client_log.setLevel(logging.DEBUG)
    client_log.addHandler(Handler())
    debug = "topic" if not args.debug else args.debug if "topic" in args.debug.split(",") else args.debug + ",topic"
    producer = Producer({"bootstrap.servers": args.bootstrap, "client.id": "skua-failover-writes",
                         "error_cb": client_error, "logger": client_log, "debug": debug, **PRODUCER_SETTINGS})

    metadata = {}
    metadata_lock = threading.Lock()

    def watch(node, address, deadline):
        while clock() < deadline:
            try:
                leader = probe.partitions(address, args.topic).get(args.partition, (-1,))[0]
            except (OSError, ConnectionError):
                leader = -1
            if leader >= 0 and leader != args.node:
                with metadata_lock:
                    metadata.setdefault("ms", (clock() - state["kill"]) * 1000)
                    metadata.setdefault("leader", leader)
                return
            time.sleep(POLL_INTERVAL_MS / 1000)

    interval_s = args.interval_ms / 1000
    start = clock()
    next_due = start
    seq = 0
    watchers = []
    while state["fatal"] is None:
        now = clock()
        if state["kill"] is None:
            if now - start > FIRST_ACK_S_MAX and state["first_ack_before"] is None:
                sys.exit(f"failover-writes: no acknowledgement within {FIRST_ACK_S_MAX} s of the start")
            if now - start >= args.warmup_s and state["first_ack_before"] is not None:
                state["kill"] = clock()
                state["kill_unix"] = time.time()
                os.kill(args.pid, signal.SIGKILL)
                deadline = state["kill"] + args.wait_s_max
                watchers = [threading.Thread(target=watch, args=(node, address, deadline), daemon=True)
                            for node, address in survivors.items()]
                for thread in watchers:
                    thread.start()
        else:
            first_new_ack = state["first_new_ack"]
            if first_new_ack is not None and now - first_new_ack >= args.after_s:
                break
            if now - state["kill"] >= args.wait_s_max:
                break
        if now < next_due:
            producer.poll(min(next_due - now, interval_s))
            continue
        next_due += interval_s
        if next_due < now - 1.0:
            next_due = now  # fell behind (a long poll): no burst to catch up
        records[seq] = [clock(), None, None]
        queue_deadline = clock() + QUEUE_WAIT_S_MAX
        while True:
            try:
                producer.produce(args.topic, str(seq).encode(), partition=args.partition,
                                 on_delivery=lambda error, message, seq=seq: delivered(error, message, seq))
                break
            except BufferError:
                if clock() > queue_deadline:
                    records[seq][1:] = [clock(), "QUEUE_FULL", False]
                    break
                producer.poll(0.1)
            except KafkaException as error:
                records[seq][1:] = [clock(), error.args[0].name(), False]
                break
        seq += 1
        producer.poll(0)

    flush_deadline = clock() + FLUSH_S_MAX
    while len(producer) > 0 and clock() < flush_deadline:
        producer.flush(min(1.0, max(flush_deadline - clock(), 0.0)))
    unresolved = len(producer)
    for thread in watchers:
        thread.join(timeout=1.0)

    kill, first_new_ack = state["kill"], state["first_new_ack"]
    if kill is None:
        sys.exit(f"failover-writes: no kill (fatal producer error: {state['fatal']})")
    ms = lambda at: round((at - kill) * 1000, 1)  # noqa: E731
    with open(args.log, "w") as log:
        log.write("seq\tsent_ms\toutcome_ms\toffset_or_error\n")
        for number, entry in sorted(records.items()):
            outcome = "" if entry[1] is None else ms(entry[1])
            log.write(f"{number}\t{ms(entry[0])}\t{outcome}\t{'' if entry[2] is None else entry[2]}\n")
    acks = [entry for entry in records.values() if len(entry) > 3 and entry[3]]
    failures = [entry for entry in records.values() if len(entry) > 3 and not entry[3]]
    failed_by_error = {}
    for entry in failures:
        failed_by_error[entry[2]] = failed_by_error.get(entry[2], 0) + 1
    # Acknowledgements read right after the kill were sent by the leader before it died (its answer
    # was on the way, or read but not yet reported): the burst of them that starts within
    # DRAIN_MS of the kill, if a gap of GAP_MS (the outage) follows it, is not the first ack.
    acks_after = sorted(entry[1] for entry in acks if entry[1] > kill)
    drained = 0
    if acks_after and acks_after[0] - kill < DRAIN_MS / 1000:
        end = 0
        while end + 1 < len(acks_after) and acks_after[end + 1] - acks_after[end] < GAP_MS / 1000:
            end += 1
        if end + 1 < len(acks_after):
            drained = end + 1
    acks_after = acks_after[drained:]
    acks_before = [entry for entry in acks if entry[1] <= kill]
    # The steady state: what was sent in the last LATENCY_WINDOW_S before the kill (not the warm-up).
    steady = [(entry[1] - entry[0]) * 1000 for entry in acks_before if entry[0] >= kill - LATENCY_WINDOW_S]
    result = {
        "recovered": first_new_ack is not None,
        "first_ack_ms": ms(min(acks_after)) if acks_after else None,
        "first_ack_sent_after_ms": ms(first_new_ack) if first_new_ack is not None else None,
        "metadata_leader_ms": round(metadata["ms"], 1) if "ms" in metadata else None,
        "client_joined_ms": ms(state["joined"]) if state.get("joined") is not None else None,
        "new_leader": metadata.get("leader"),
        "last_ack_before_ms": -ms(max(entry[1] for entry in acks_before)) if acks_before else None,
        "acks_drained_after_kill": drained,
        "in_flight_at_kill": sum(1 for entry in records.values()
                                 if entry[0] <= kill and (entry[1] is None or entry[1] > kill)),
        "produced": seq,
        "acked": len(acks),
        "failed": len(failures),
        "failed_by_error": failed_by_error,
        "unresolved": unresolved,
        "fatal": state["fatal"],
        "ack_latency_ms_before": round(statistics.median(steady), 1) if steady else None,
        "kill_unix_ms": round(state["kill_unix"] * 1000, 1),
        "partition": args.partition,
        "interval_ms": args.interval_ms,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
