"""The fault suite's judge: what the producer was told against what the cluster holds. Owns the
checks and the report; knows nothing of how the faults were made.

    check.py records --bootstrap B --topic T --partitions P --acks FILE --tail FILE --out FILE
        reads every partition from its beginning to its high watermark (the cluster running and
        healed, the producer done) and checks: every acknowledged record is read back exactly once,
        at its acknowledged offset (lost, misplaced, duplicated = 0); every record the live reader
        (tail.py) read is still at that offset (no read record later truncated); the high
        watermarks the live reader saw never moved back
    check.py replicas --cluster-dir D --topic T --partitions P --nodes N --records FILE --out FILE
        after a clean stop: each replica's segment files (`<data>/<topic>-<p>/*.log`), walked batch by
        batch (trailing zero padding and a torn tail end a file's walk), must be byte-identical over
        the range they all hold, and each must reach the high watermark the records check read to
    check.py report --work DIR --results DIR --name NAME [--settings JSON]
        one JSON (DIR/NAME.json) with the counts, the checks and the cycles, and DIR/summary.md over
        every run's JSON in the results directory; exit 0 if every check passed, 1 if a guarantee
        was broken (lost, misplaced or duplicated records, a truncated read, a high watermark moving
        back, replicas differing, a fatal producer error), 3 if the run itself failed (no heal, a
        check that could not finish) without a broken guarantee seen

Run with .cache/venv/bin/python (scripts/test-deps.sh).
"""

import argparse
import collections
import datetime
import glob
import json
import os
import platform
import statistics
import struct
import subprocess
import sys
import time

CONSUME_TIMEOUT_S = 300
WATERMARK_TIMEOUT_S = 60
# How many examples of each kind of failure go into the report.
EXAMPLES_MAX = 20
# A record produced this long after the SIGSTOP returned cannot have reached the stopped leader
# before it stopped (the clocks' millisecond rounding and the signal's delivery).
STOPPED_MARGIN_MS = 10
# An acknowledgement that reached the producer this long after two nodes were SIGKILLed (two-down)
# cannot be one the brokers sent before the kill (the client's delivery report lags its receipt).
TWO_DOWN_ACK_MARGIN_MS = 1_000
# How many duplicated records check.py replicas looks up in the segment files.
DUPLICATES_EXAMINED_MAX = 1_000
# A v2 record batch: baseOffset i64, batchLength i32, partitionLeaderEpoch i32, magic i8, crc u32,
# attributes i16, lastOffsetDelta i32, ... (61 bytes of header in all).
BATCH_HEADER_BYTES = 61
BATCH_LENGTH_OFFSET = 12


def read_acks(path):
    """{seq: (partition, offset, unix ms acknowledged, unix ms produced)}, {seq: error}, fatal errors."""
    acked, failed, fatal = {}, {}, []
    start_unix_ms = 0
    with open(path) as file:
        for line in file:
            fields = line.rstrip("\n").split("\t")
            if fields[0] == "S" and len(fields) >= 2:
                start_unix_ms = int(fields[1])
            elif fields[0] == "A" and len(fields) >= 6:
                acked[int(fields[1])] = (int(fields[2]), int(fields[3]), start_unix_ms + int(fields[4]),
                                         start_unix_ms + int(fields[5]))
            elif fields[0] == "F" and len(fields) >= 4:
                failed[int(fields[1])] = fields[3]
            elif fields[0] == "E":
                fatal.append(fields[1:])
    return acked, failed, fatal


def when_acknowledged(acked_unix_ms, produced_unix_ms, cycles):
    """Where a lost record falls among the faults: the cycle under way when it was acknowledged
    (or the next one), and when it was produced and acknowledged, in ms from that fault's start
    (the SIGSTOP or SIGKILL, as the signal returned). A record produced while a leader was stopped
    (STOPPED_MARGIN_MS after the SIGSTOP or later) and acknowledged once it was resumed, then lost,
    can only have been appended and acknowledged by that resumed, replaced leader (a zombie): the
    leader that replaced it keeps what it acknowledges. (One produced just before the SIGSTOP may
    have been appended before it, and acks=1 allows losing that.)"""
    under_way = [c for c in cycles if c.get("at_unix_ms", 0) <= acked_unix_ms]
    if not under_way:
        upcoming = next((c for c in cycles if "at_unix_ms" in c), None)
        if upcoming is None:
            return {}
        cycle = upcoming
    else:
        cycle = under_way[-1]
    fault_unix_ms = cycle.get("fault_unix_ms", cycle["at_unix_ms"])
    found = {"cycle": cycle["cycle"], "acked_ms_from_fault": acked_unix_ms - fault_unix_ms,
             "produced_ms_from_fault": produced_unix_ms - fault_unix_ms}
    if "resumed_unix_ms" in cycle:
        found["acked_ms_from_resume"] = acked_unix_ms - cycle["resumed_unix_ms"]
        found["zombie_ack"] = (produced_unix_ms >= fault_unix_ms + STOPPED_MARGIN_MS
                               and acked_unix_ms >= cycle["resumed_unix_ms"])
    return found


def consume_all(bootstrap, topic, partitions):
    """{partition: {offset: seq}} read from the beginning to the high watermark, the high watermarks,
    the log start offsets and anything odd on the way."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "skua-faults-check", "enable.auto.commit": False,
                         "auto.offset.reset": "error", "enable.partition.eof": True})
    lows, highs = {}, {}
    deadline = time.monotonic() + WATERMARK_TIMEOUT_S
    for partition in range(partitions):
        while True:
            try:
                lows[partition], highs[partition] = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=5, cached=False)
                break
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in range(partitions)])
    log = {partition: {} for partition in range(partitions)}
    rereads, errors = 0, []
    done = {partition for partition in range(partitions) if highs[partition] <= lows[partition]}
    deadline = time.monotonic() + CONSUME_TIMEOUT_S
    while len(done) < partitions and time.monotonic() < deadline:
        for message in consumer.consume(1000, timeout=1.0):
            partition = message.partition()
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    if message.offset() >= highs.get(partition, 0):
                        done.add(partition)
                else:
                    errors.append(f"partition {partition}: {message.error().name()}")
                continue
            try:
                seq = int(message.value())
            except (TypeError, ValueError):
                seq = -1
            if message.offset() in log[partition]:
                rereads += 1
            log[partition].setdefault(message.offset(), seq)
            if message.offset() + 1 >= highs[partition]:
                done.add(partition)
    consumer.close()
    unfinished = sorted(set(range(partitions)) - done)
    return log, lows, highs, rereads, errors, unfinished


def check_records(args):
    acked, failed, fatal = read_acks(args.acks)
    log, lows, highs, rereads, errors, unfinished = consume_all(args.bootstrap, args.topic, args.partitions)
    positions = collections.defaultdict(list)  # seq -> [(partition, offset)]
    foreign = 0
    for partition, records in log.items():
        for offset, seq in records.items():
            if seq < 0:
                foreign += 1
            positions[seq].append((partition, offset))
    cycles = []
    if args.cycles and os.path.exists(args.cycles):
        with open(args.cycles) as file:
            cycles = [json.loads(line) for line in file if line.strip()]
    lost, misplaced = [], []
    for seq, (partition, offset, acked_unix_ms, produced_unix_ms) in sorted(acked.items()):
        if log[partition].get(offset) == seq:
            continue
        where = positions.get(seq)
        entry = {"seq": seq, "acked_partition": partition, "acked_offset": offset,
                 "found_there": log[partition].get(offset), "read_at": where or [],
                 **when_acknowledged(acked_unix_ms, produced_unix_ms, cycles)}
        (misplaced if where else lost).append(entry)
    zombie_acks = [entry for entry in lost if entry.get("zombie_ack")]
    duplicated = [{"seq": seq, "read_at": where} for seq, where in sorted(positions.items()) if seq >= 0 and len(where) > 1]
    gaps = {}
    for partition, records in log.items():
        missing = (highs[partition] - lows[partition]) - len(records)
        if missing:
            gaps[str(partition)] = missing
    written_after_failure = sum(1 for seq in failed if seq in positions)
    # two-down: one node of three left, the metadata quorum gone; min.insync.replicas=2 allows no
    # acknowledgement until the others are back.
    while_two_down = {}
    for cycle in cycles:
        if cycle.get("kind") == "two-down" and "fault_unix_ms" in cycle:
            begin = cycle["fault_unix_ms"] + TWO_DOWN_ACK_MARGIN_MS
            end = cycle.get("restart_unix_ms", begin)
            while_two_down[str(cycle["cycle"])] = sum(1 for entry in acked.values() if begin <= entry[2] < end)

    # The live reader: every record it read is still there; no high watermark moved back.
    truncated_reads, regressions = [], []
    tail_read, tail_errors, read_live = 0, collections.Counter(), set()
    seen = {"C": {}, "H": {}}
    if args.tail and os.path.exists(args.tail):
        with open(args.tail) as file:
            for line in file:
                fields = line.rstrip("\n").split("\t")
                if fields[0] == "R" and len(fields) >= 5:
                    tail_read += 1
                    partition, offset, seq = int(fields[1]), int(fields[2]), int(fields[3])
                    read_live.add(seq)
                    if log.get(partition, {}).get(offset) != seq:
                        truncated_reads.append({"partition": partition, "offset": offset, "seq_read": seq,
                                                "seq_now": log.get(partition, {}).get(offset), "at_ms": int(fields[4])})
                elif fields[0] in ("C", "H") and len(fields) >= 4:
                    partition, high, at_ms = int(fields[1]), int(fields[2]), int(fields[3])
                    if high < 0:
                        continue
                    previous = seen[fields[0]].get(partition)
                    if previous is not None and high < previous[0]:
                        regressions.append({"source": {"C": "fetch", "H": "list_offsets"}[fields[0]],
                                            "partition": partition, "from": previous[0], "from_ms": previous[1],
                                            "to": high, "at_ms": at_ms})
                    if previous is None or high >= previous[0]:
                        seen[fields[0]][partition] = (high, at_ms)
                elif fields[0] == "X" and len(fields) >= 3:
                    tail_errors[fields[2]] += 1
    result = {
        "acked": len(acked), "failed": len(failed), "failed_by_error": dict(collections.Counter(failed.values())),
        "fatal_producer_errors": fatal,
        "read": sum(len(records) for records in log.values()),
        "lost": len(lost), "lost_zombie_acks": len(zombie_acks),
        "misplaced": len(misplaced), "duplicated": len(duplicated),
        "truncated_reads": len(truncated_reads), "high_watermark_regressions": len(regressions),
        "failed_but_written": written_after_failure, "foreign_records": foreign, "offset_gaps": gaps,
        "acked_while_two_down": sum(while_two_down.values()), "acked_while_two_down_by_cycle": while_two_down,
        "acked_not_read_live": sum(1 for seq in acked if seq not in read_live),
        "rereads": rereads, "consume_errors": errors[:EXAMPLES_MAX], "unfinished_partitions": unfinished,
        "log_start_offsets": {str(p): lows[p] for p in lows}, "high_watermarks": {str(p): highs[p] for p in highs},
        "tail": {"read": tail_read, "errors": dict(tail_errors)},
        "duplicated_records": duplicated[:DUPLICATES_EXAMINED_MAX],
        "lost_by_cycle": dict(collections.Counter(str(entry.get("cycle")) for entry in lost)),
        "examples": {"lost": lost[:EXAMPLES_MAX], "misplaced": misplaced[:EXAMPLES_MAX],
                     "duplicated": duplicated[:EXAMPLES_MAX], "truncated_reads": truncated_reads[:EXAMPLES_MAX],
                     "high_watermark_regressions": regressions[:EXAMPLES_MAX]},
    }
    with open(args.out, "w") as out:
        json.dump(result, out, indent=1)
    print(f"faults: records: acked {result['acked']}, failed {result['failed']}, read {result['read']}; "
          f"lost {result['lost']}, misplaced {result['misplaced']}, duplicated {result['duplicated']}, "
          f"truncated reads {result['truncated_reads']} (of {tail_read} read live), "
          f"high watermark regressions {result['high_watermark_regressions']}" +
          (f", acknowledged while two nodes were down {result['acked_while_two_down']}" if while_two_down else ""),
          file=sys.stderr)


def walk_segment(data):
    """[(base_offset, last_offset, leader_epoch, start, end)] of the v2 batches at the start of data;
    the walk ends at the first place that does not hold a whole batch (zero padding, a torn tail)."""
    batches, position = [], 0
    while position + BATCH_HEADER_BYTES <= len(data):
        base, length, epoch, magic = struct.unpack_from(">qiib", data, position)
        end = position + BATCH_LENGTH_OFFSET + length
        if magic != 2 or length < BATCH_HEADER_BYTES - BATCH_LENGTH_OFFSET or end > len(data):
            break
        (last_delta,) = struct.unpack_from(">i", data, position + 23)
        batches.append((base, base + last_delta, epoch, position, end))
        position = end
    return batches, len(data) - position


def producer_fields(batch_bytes):
    """(producer_id, producer_epoch, base_sequence, record_count) from a v2 batch's header."""
    return struct.unpack_from(">qhii", batch_bytes, 43)


def examine_duplicates(records, replicas):
    """For each duplicated record, the headers of the batches holding its copies (from the first
    replica that has them): a later copy under a newer producer epoch was sent again by the client
    with new sequence numbers (after a client-side epoch bump), which no broker can recognise; a copy
    under the same producer epoch means the broker accepted a retry twice."""
    examined = []
    for duplicate in records.get("duplicated_records", []):
        copies = []
        for partition, offset in duplicate["read_at"]:
            found = None
            for node in sorted(replicas.get(partition, {})):
                batch = next((b for b in replicas[partition][node][0] if b[0] <= offset <= b[1]), None)
                if batch is not None:
                    producer_id, producer_epoch, base_sequence, count = producer_fields(batch[3])
                    found = {"partition": partition, "offset": offset, "batch_base_offset": batch[0],
                             "batch_records": count, "leader_epoch": batch[2], "producer_id": producer_id,
                             "producer_epoch": producer_epoch, "base_sequence": base_sequence,
                             "sequence": base_sequence + offset - batch[0], "from_node": node}
                    break
            copies.append(found or {"partition": partition, "offset": offset, "batch": None})
        epochs = [(c.get("producer_id"), c.get("producer_epoch")) for c in copies]
        if any(c.get("producer_epoch") is None for c in copies):
            kind = "unknown (a copy's batch is in no replica)"
        elif len(set(epochs)) == len(epochs):
            kind = "client re-sent under a new producer epoch"
        else:
            kind = "same producer epoch (the broker accepted a retry twice)"
        examined.append({"seq": duplicate["seq"], "kind": kind, "copies": copies})
    return examined


def replica_batches(directory):
    """A replica's batches (as walk_segment, plus their bytes) over its segment files in order."""
    batches, files, leftover = [], [], 0
    for path in sorted(glob.glob(os.path.join(directory, "*.log"))):
        with open(path, "rb") as file:
            data = file.read()
        walked, rest = walk_segment(data)
        files.append({"file": os.path.basename(path), "bytes": len(data), "batches": len(walked), "unwalked_bytes": rest})
        leftover += sum(1 for byte in data[len(data) - rest:] if byte) if rest else 0
        batches.extend((base, last, epoch, data[start:end]) for base, last, epoch, start, end in walked)
    return batches, files, leftover


def check_replicas(args):
    with open(args.records) as file:
        records = json.load(file)
    partitions, mismatches, short, every_replica = {}, [], [], {}
    for partition in range(args.partitions):
        replicas = {}
        for node in range(1, args.nodes + 1):
            directory = os.path.join(args.cluster_dir, f"node-{node}", "data", f"{args.topic}-{partition}")
            if os.path.isdir(directory):
                replicas[node] = replica_batches(directory)
        every_replica[partition] = replicas
        high = records["high_watermarks"].get(str(partition), 0)
        summary = {}
        for node, (batches, files, nonzero_leftover) in replicas.items():
            end = batches[-1][1] + 1 if batches else 0
            start = batches[0][0] if batches else None
            summary[str(node)] = {"log_start": start, "log_end": end, "batches": len(batches),
                                  "bytes": sum(len(b[3]) for b in batches), "files": files,
                                  "nonzero_bytes_after_last_batch": nonzero_leftover}
            if end < high:
                short.append({"partition": partition, "node": node, "log_end": end, "high_watermark": high})
        # Byte for byte over the batches every replica holds (by offset), from the first replica's view.
        nodes = sorted(replicas)
        if len(nodes) != args.nodes:
            mismatches.append({"partition": partition, "problem": f"replica directories only on nodes {nodes}"})
        reference = nodes[0] if nodes else None
        common_end = min((summary[str(node)]["log_end"] for node in nodes), default=0)
        compared = 0
        for node in nodes[1:]:
            ours = [b for b in replicas[reference][0] if b[1] < common_end]
            theirs = [b for b in replicas[node][0] if b[1] < common_end]
            ours_bytes, theirs_bytes = b"".join(b[3] for b in ours), b"".join(b[3] for b in theirs)
            compared = max(compared, len(ours_bytes))
            if ours_bytes != theirs_bytes:
                first = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a[3] != b[3]), min(len(ours), len(theirs)))
                describe = lambda batches: ({"base_offset": batches[first][0], "last_offset": batches[first][1],
                                             "leader_epoch": batches[first][2], "bytes": len(batches[first][3])}
                                            if first < len(batches) else None)
                mismatches.append({"partition": partition, "nodes": [reference, node], "first_differing_batch": first,
                                   str(reference): describe(ours), str(node): describe(theirs),
                                   "bytes": [len(ours_bytes), len(theirs_bytes)]})
        summary["compared_up_to_offset"] = common_end
        summary["compared_bytes"] = compared
        partitions[str(partition)] = summary
    duplicates = examine_duplicates(records, every_replica)
    result = {"replica_mismatches": len(mismatches), "short_replicas": len(short), "mismatches": mismatches[:EXAMPLES_MAX],
              "short": short[:EXAMPLES_MAX], "duplicates": duplicates, "partitions": partitions}
    with open(args.out, "w") as out:
        json.dump(result, out, indent=1)
    print(f"faults: replicas: {args.partitions} partitions x {args.nodes} nodes, mismatches {len(mismatches)}, "
          f"short of the high watermark {len(short)}; compared " +
          ", ".join(f"p{p}: {s['compared_bytes']} bytes to offset {s['compared_up_to_offset']}" for p, s in partitions.items()),
          file=sys.stderr)
    for duplicate in duplicates:
        print(f"faults: duplicate of record {duplicate['seq']}: {duplicate['kind']}: " + "; ".join(
            f"partition {c['partition']} offset {c['offset']} in a batch of producer {c.get('producer_id')} epoch "
            f"{c.get('producer_epoch')} sequence {c.get('sequence')} (leader epoch {c.get('leader_epoch')})"
            for c in duplicate["copies"]), file=sys.stderr)


def load(path, default=None):
    try:
        with open(path) as file:
            return json.load(file)
    except (OSError, ValueError):
        return default


def load_lines(path):
    try:
        with open(path) as file:
            return [json.loads(line) for line in file if line.strip()]
    except (OSError, ValueError):
        return []


def client_epoch_bumps(path):
    """The idempotent producer's epoch bumps and why, from librdkafka's `eos` debug lines in the
    producer's log: after a bump the client numbers unacknowledged records again from 0 under the
    new epoch, so a record an earlier attempt did write is written a second time."""
    bumps = []
    try:
        with open(path, errors="replace") as file:
            for line in file:
                if "|ERRSEQ|" in line or "|UNKPID|" in line or "epoch bump" in line or "bumped epoch" in line:
                    fields = line.rstrip("\n").split("|", 4)
                    message = fields[4].split("]: ", 1)[-1] if len(fields) == 5 else line.strip()
                    when = fields[1] if len(fields) == 5 else ""
                    bumps.append(f"{when} {message}".strip())
    except OSError:
        pass
    return bumps


def spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)} if values else None


def report(args):
    work = args.work
    settings = json.loads(args.settings) if args.settings else {}
    records = load(os.path.join(work, "records.json"))
    replicas = load(os.path.join(work, "replicas.json"))
    producer = load(os.path.join(work, "producer.json"), {})
    topic = load(os.path.join(work, "topic.json"), {})
    phases = load(os.path.join(work, "phases.json"), {})
    cycles = load_lines(os.path.join(work, "cycles.jsonl"))
    kinds = {}
    for kind in sorted({c["kind"] for c in cycles}):
        mine = [c for c in cycles if c["kind"] == kind]
        kinds[kind] = {"cycles": len(mine),
                       "failover_ms": spread([c["failover_ms"] for c in mine if "failover_ms" in c]),
                       "controller_failover_ms": spread([c["controller_failover_ms"] for c in mine if "controller_failover_ms" in c]),
                       "heal_ms": spread([c["heal_ms"] for c in mine if "heal_ms" in c]),
                       "cycle_ms": spread([c["cycle_ms"] for c in mine if "cycle_ms" in c])}
    problems = [f"cycle {c['cycle']} ({c['kind']}): {c['problem']}" for c in cycles if "problem" in c]
    violations = []
    bumps = client_epoch_bumps(os.path.join(work, "producer.log"))
    if records is None:
        problems.append("the records check did not finish")
    else:
        if records["lost"]:
            violations.append(f"lost: {records['lost']} ({records.get('lost_zombie_acks', 0)} produced while their "
                              f"leader was stopped and acknowledged once it resumed: zombie acknowledgements; "
                              f"by cycle {records.get('lost_by_cycle')})")
        for key in ("misplaced", "truncated_reads", "high_watermark_regressions"):
            if records[key]:
                violations.append(f"{key}: {records[key]}")
        if records["duplicated"]:
            kinds = collections.Counter(d["kind"] for d in (replicas or {}).get("duplicates", []))
            violations.append(f"duplicated: {records['duplicated']} (" + (", ".join(
                f"{count} {kind}" for kind, count in sorted(kinds.items())) or "not examined") +
                f"; the producer's log shows {len(bumps)} line(s) of client epoch bumps)")
        if records["fatal_producer_errors"]:
            violations.append(f"fatal producer errors: {records['fatal_producer_errors']}")
        if records["unfinished_partitions"]:
            problems.append(f"partitions not read to their end: {records['unfinished_partitions']}")
    if replicas is None:
        problems.append("the replicas check did not finish")
    else:
        if replicas["replica_mismatches"]:
            violations.append(f"replica mismatches: {replicas['replica_mismatches']}")
        if replicas["short_replicas"]:
            violations.append(f"replicas short of the high watermark: {replicas['short_replicas']}")
    # Kafka's VerifiableProducer/VerifiableConsumer (--verifiable): the same checks on their topic.
    verifiable = None
    if settings.get("verifiable"):
        v_records = load(os.path.join(work, "verifiable", "records.json"))
        v_replicas = load(os.path.join(work, "verifiable", "replicas.json"))
        v_clients = load(os.path.join(work, "verifiable", "producer.json"), {})
        verifiable = {"clients": v_clients, "records": v_records, "replicas": v_replicas}
        if v_records is None:
            problems.append("the VerifiableProducer's records check did not finish")
        else:
            for key in ("lost", "misplaced", "duplicated", "truncated_reads", "high_watermark_regressions",
                        "acked_while_two_down"):
                if v_records.get(key):
                    violations.append(f"VerifiableProducer {key}: {v_records[key]}")
            if not v_records["acked"]:
                problems.append("the VerifiableProducer had nothing acknowledged")
        if v_replicas is None:
            problems.append("the VerifiableProducer's replicas check did not finish")
        else:
            for key in ("replica_mismatches", "short_replicas"):
                if v_replicas[key]:
                    violations.append(f"VerifiableProducer {key}: {v_replicas[key]}")
    if records is not None and records.get("acked_while_two_down"):
        violations.append(f"acknowledged while two nodes were down: {records['acked_while_two_down']} "
                          f"(by cycle {records['acked_while_two_down_by_cycle']})")
    if settings.get("cycles") and len(cycles) < settings["cycles"]:
        problems.append(f"{len(cycles)} of {settings['cycles']} cycles ran")
    problems.extend(phases.get("problems", []))
    verdict = "fail" if violations else ("incomplete" if problems else "pass")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    counts = {key: (records or {}).get(key) for key in ("acked", "failed", "lost", "misplaced", "duplicated",
                                                         "truncated_reads", "high_watermark_regressions", "read",
                                                         "failed_but_written", "acked_while_two_down")}
    counts.update(produced=producer.get("produced"), unresolved=producer.get("unresolved"), cycles=len(cycles),
                  replica_mismatches=(replicas or {}).get("replica_mismatches"),
                  short_replicas=(replicas or {}).get("short_replicas"))
    if verifiable is not None:
        counts["verifiable"] = {key: (verifiable["records"] or {}).get(key) for key in (
            "acked", "failed", "lost", "misplaced", "duplicated", "truncated_reads", "high_watermark_regressions",
            "acked_while_two_down", "read", "acked_not_read_live")}
        counts["verifiable"].update(consumer_read=(verifiable["clients"].get("consumer") or {}).get("read"),
                                    unresolved=(verifiable["clients"].get("producer") or {}).get("unresolved"),
                                    replica_mismatches=(verifiable["replicas"] or {}).get("replica_mismatches"))
    result = {
        "suite": "faults", "name": args.name, "verdict": verdict, "violations": violations, "problems": problems,
        "counts": counts,
        "run": {"commit": commit, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "kernel": platform.release(), "cpu": cpu, "cores": os.cpu_count(),
                "loadavg_at_start": settings.pop("loadavg_at_start", None), "work_dir": os.path.abspath(work)},
        "settings": {**settings, "topic": topic},
        "durations_s": phases.get("durations_s", {}),
        "fault_kinds": kinds, "client_epoch_bumps": bumps, "producer": producer, "records": records,
        "replicas": replicas, "verifiable": verifiable, "cycles": cycles,
    }
    os.makedirs(args.results, exist_ok=True)
    with open(os.path.join(args.results, f"{args.name}.json"), "w") as out:
        json.dump(result, out, indent=1)
    summarize(args.results)
    print(f"faults: {verdict.upper()}: acked {counts['acked']}, failed {counts['failed']}, lost {counts['lost']}, "
          f"misplaced {counts['misplaced']}, duplicated {counts['duplicated']}, truncated reads {counts['truncated_reads']}, "
          f"high watermark regressions {counts['high_watermark_regressions']}, replica mismatches "
          f"{counts['replica_mismatches']}, acknowledged while two were down {counts['acked_while_two_down']}, "
          f"cycles {counts['cycles']}; {os.path.join(args.results, args.name + '.json')}", file=sys.stderr)
    if verifiable is not None:
        v = counts["verifiable"]
        print(f"faults:   VerifiableProducer: acked {v['acked']}, failed {v['failed']}, lost {v['lost']}, misplaced "
              f"{v['misplaced']}, duplicated {v['duplicated']}, acknowledged while two were down "
              f"{v['acked_while_two_down']}; VerifiableConsumer read {v['consumer_read']} (acknowledged records it "
              f"did not read: {v['acked_not_read_live']}, truncated reads {v['truncated_reads']})", file=sys.stderr)
    for line in violations + problems:
        print(f"faults:   {line}", file=sys.stderr)
    sys.exit(1 if violations else (3 if problems else 0))


def summarize(results):
    runs = [load(path) for path in sorted(glob.glob(os.path.join(results, "*.json")))]
    runs = [run for run in runs if run and run.get("suite") == "faults"]
    if not runs:
        return
    first = runs[0]
    lines = [f"# Replication fault suite ({first['run']['commit']})", "",
             f"{first['run']['cpu']}, {first['run']['cores']} cores, kernel {first['run']['kernel']}; a 3-node "
             "loopback Skua cluster (combined mode), one topic with replication factor 3 and "
             "min.insync.replicas=2, one idempotent acks=all confluent-kafka producer at a fixed rate (and, "
             "where listed, Kafka's VerifiableProducer/VerifiableConsumer on a second topic), one fault at a "
             "time, each healed (every node up, every ISR full) before the next (`scripts/faults.sh`; "
             "docs/faults.md says what each check means).", "",
             "| run | verdict | cycles | acked | failed | lost | misplaced | duplicated | truncated reads | HW regressions "
             "| replica mismatches | acked while 2 down | VerifiableProducer acked/failed/lost/dup | duration (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        c = run["counts"]
        name = run["name"] + (" (acks=1)" if run["settings"].get("producer_acks") == "1" else "")
        lines.append(f"| {name} | {run['verdict']} | {c['cycles']} | {c['acked']} | {c['failed']} | {c['lost']} | "
                     f"{c['misplaced']} | {c['duplicated']} | {c['truncated_reads']} | {c['high_watermark_regressions']} | "
                     f"{c['replica_mismatches']} | {c.get('acked_while_two_down', '–')} | " +
                     ("/".join(str(c["verifiable"].get(k)) for k in ("acked", "failed", "lost", "duplicated"))
                      if c.get("verifiable") else "–") + f" | {run['durations_s'].get('total', '')} |")
    lines += ["", "Failover and healing per fault kind (ms, median [min–max] over every run above):", "",
              "| kind | cycles | new leader(s) | new controller | healed after | whole cycle |", "|---|---|---|---|---|---|"]
    by_kind = collections.defaultdict(list)
    for run in runs:
        for cycle in run["cycles"]:
            by_kind[cycle["kind"]].append(cycle)
    for kind, cycles in sorted(by_kind.items()):
        def cell(key):
            values = [c[key] for c in cycles if key in c]
            return f"{statistics.median(values):.0f} [{min(values)}–{max(values)}]" if values else "–"
        lines.append(f"| {kind} | {len(cycles)} | {cell('failover_ms')} | {cell('controller_failover_ms')} | "
                     f"{cell('heal_ms')} | {cell('cycle_ms')} |")
    notes = [f"- {run['name']}: " + "; ".join(run["violations"] + run["problems"]) for run in runs
             if run["violations"] or run["problems"]]
    if notes:
        lines += ["", "Violations and problems:", ""] + notes
    with open(os.path.join(results, "summary.md"), "w") as out:
        out.write("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("records", "replicas", "report"))
    parser.add_argument("--bootstrap")
    parser.add_argument("--topic")
    parser.add_argument("--partitions", type=int)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--acks")
    parser.add_argument("--tail")
    parser.add_argument("--records")
    parser.add_argument("--cycles", help="cycles.jsonl, to place each lost record's acknowledgement among the faults")
    parser.add_argument("--cluster-dir")
    parser.add_argument("--out")
    parser.add_argument("--work")
    parser.add_argument("--results")
    parser.add_argument("--name")
    parser.add_argument("--settings")
    args = parser.parse_args()
    {"records": check_records, "replicas": check_replicas, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
