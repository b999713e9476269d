"""Reads the JSON events of Kafka's own VerifiableProducer and VerifiableConsumer (org.apache.kafka.tools,
run by faults.sh beside the suite's own producer) and writes them in the suite's formats, so that
check.py judges Kafka's clients exactly as it judges ours. Owns only that translation; knows nothing
of the faults or of the checks.

    verifiable.py convert --producer EVENTS --consumer EVENTS --acks FILE --reads FILE
        the producer's events (one JSON object a line on its stdout) into an acknowledgement log as
        producer.py writes it (--acks: `S`, `A seq partition offset ms produced_ms`, `F seq partition
        error ms`; its values are the integers 0, 1, 2, ... as ours), the consumer's `record_data`
        events (--verbose) into a read log as tail.py writes it (--reads: `R partition offset seq ms`);
        prints one JSON object: the producer's counts ("acked", "failed", "sent" and "unresolved" from
        its tool_data, when it printed it), the consumer's (read, its events by name)

The VerifiableProducer gives no time for a send, only for its report: produced_ms is the report's.
Lines that are not JSON (a JVM warning on stdout) are counted, not fatal.

Run with .cache/venv/bin/python.
"""

import argparse
import collections
import json
import sys


def events(path):
    """The JSON objects of a file of lines, and how many lines were not JSON objects."""
    found, skipped = [], 0
    try:
        with open(path, errors="replace") as file:
            for line in file:
                line = line.strip()
                if not line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    skipped += 1
                    continue
                if isinstance(event, dict):
                    found.append(event)
                else:
                    skipped += 1
    except OSError:
        return None, 0
    return found, skipped


def seq_of(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def convert(args):
    produced, produced_skipped = events(args.producer)
    if produced is None:
        sys.exit(f"verifiable: no producer output at {args.producer}")
    start_ms = min((e["timestamp"] for e in produced if isinstance(e.get("timestamp"), int)), default=0)
    counts = {"acked": 0, "failed": 0, "events": collections.Counter(), "not_json_lines": produced_skipped,
              "errors": collections.Counter()}
    with open(args.acks, "w") as out:
        out.write(f"S\t{start_ms}\n")
        for event in produced:
            name = event.get("name")
            counts["events"][name] += 1
            at_ms = event.get("timestamp", start_ms) - start_ms
            seq = seq_of(event.get("value"))
            if name == "producer_send_success":
                counts["acked"] += 1
                out.write(f"A\t{seq}\t{event['partition']}\t{event['offset']}\t{at_ms}\t{at_ms}\n")
            elif name == "producer_send_error":
                counts["failed"] += 1
                error = str(event.get("exception", "unknown")).rsplit(".", 1)[-1]
                counts["errors"][error] += 1
                out.write(f"F\t{seq}\t{event.get('partition', -1)}\t{error}\t{at_ms}\n")
            elif name == "tool_data":
                counts["sent"] = event.get("sent")
                counts["tool_acked"] = event.get("acked")
    if "sent" in counts and counts["sent"] is not None:
        counts["unresolved"] = counts["sent"] - counts["acked"] - counts["failed"]

    consumed, consumed_skipped = events(args.consumer)
    reads = {"read": 0, "events": collections.Counter(), "not_json_lines": consumed_skipped}
    with open(args.reads, "w") as out:
        for event in consumed or []:
            name = event.get("name")
            reads["events"][name] += 1
            if name == "record_data":
                reads["read"] += 1
                at_ms = event.get("timestamp", start_ms) - start_ms if isinstance(event.get("timestamp"), int) else 0
                out.write(f"R\t{event['partition']}\t{event['offset']}\t{seq_of(event.get('value'))}\t{at_ms}\n")
    print(json.dumps({"producer": counts, "consumer": reads}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("convert",))
    parser.add_argument("--producer", required=True)
    parser.add_argument("--consumer", required=True)
    parser.add_argument("--acks", required=True)
    parser.add_argument("--reads", required=True)
    args = parser.parse_args()
    convert(args)


if __name__ == "__main__":
    main()
