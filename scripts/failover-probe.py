"""Failover probe for scripts/failover-bench.sh: SIGKILLs one node of a loopback KRaft cluster and
measures, from the surviving nodes' client listeners, how long until the cluster has moved on.

Run with the venv's Python (.cache/venv/bin/python, made by scripts/test-deps.sh): it uses
kafka-python's protocol codec only, over its own sockets, so every request goes to the node it
names. kafka-python's client would route DescribeQuorum and Metadata to any broker it knows,
the killed one included, and a poll would then wait out a connection timeout instead of asking a
survivor. The clock starts just before the kill, in this process, and each surviving node is
polled by its own thread every POLL_INTERVAL_MS, so a slow or hanging answer from one node does
not delay the others.

Nodes are given as ID=HOST:PORT,... (client listeners). Commands, each printing one JSON object:
  quorum-leader  --nodes N                  {"leader": id}: the metadata quorum's leader
  kill-controller --nodes N --node ID --pid PID
      {"first_ms", "all_ms", "new_leader"}: until the first surviving node, and until every one,
      answers DescribeQuorum with a leader other than ID
  caught-up      --nodes N --node ID        waits until voter ID has the quorum's high watermark
  serving        --nodes N --node ID        waits until node ID answers Metadata listing itself
  leaders        --nodes N --topic T        {"leaders": {partition: leader}} from the first node
  kill-broker    --nodes N --node ID --pid PID --topic T
      {"first_ms", "all_ms", "partitions"}: until the first surviving node, and until every one,
      answers Metadata with a live leader other than ID for every partition ID led
  in-sync        --nodes N --topic T --replicas R [--any-leader]   waits until every node's Metadata
      has R in-sync replicas for every partition and its preferred (first) replica as leader (any
      live leader with --any-leader: a restarted broker is back in every ISR)
"""

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time

from kafka.protocol.admin.cluster import DescribeQuorumRequest
from kafka.protocol.metadata.metadata import MetadataRequest
from kafka.protocol.parser import KafkaProtocol

POLL_INTERVAL_MS = 50
# One request's limit: a node that does not answer in this time is asked again.
REQUEST_TIMEOUT_MS = 2_000
# How long a failover or a wait may take before the probe gives up (and the benchmark fails).
WAIT_MS_MAX = 120_000
METADATA_TOPIC = "__cluster_metadata"


def call(address, request):
    """One request to address (host, port) on a fresh connection; the decoded response."""
    with socket.create_connection(address, timeout=REQUEST_TIMEOUT_MS / 1000) as sock:
        protocol = KafkaProtocol(client_id="failover-probe")
        protocol.send_request(request)
        sock.sendall(protocol.send_bytes())
        while True:
            data = sock.recv(1 << 16)
            if not data:
                raise ConnectionError(f"{address[0]}:{address[1]} closed the connection")
            responses = protocol.receive_bytes(data)
            if responses:
                return responses[0][1]


def quorum(address):
    """(leader id, high watermark, {voter id: log end offset}) as the node at `address` answers DescribeQuorum."""
    topic = DescribeQuorumRequest.TopicData
    request = DescribeQuorumRequest[0](
        topics=[topic(topic_name=METADATA_TOPIC, partitions=[topic.PartitionData(partition_index=0)])]
    )
    response = call(address, request)
    if response.error_code != 0:
        return -1, -1, {}
    partition = response.topics[0].partitions[0]
    if partition.error_code != 0:
        return -1, -1, {}
    voters = {voter.replica_id: voter.log_end_offset for voter in partition.current_voters}
    return partition.leader_id, partition.high_watermark, voters


def partitions(address, topic):
    """{partition: (leader, isr, replicas)} of `topic` as the node at `address` answers Metadata."""
    response = call(
        address,
        MetadataRequest[12](
            topics=[MetadataRequest.MetadataRequestTopic(name=topic, topic_id=None)],
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        ),
    )
    found = {}
    for entry in response.topics:
        if entry.name == topic and entry.error_code == 0:
            for partition in entry.partitions:
                found[partition.partition_index] = (
                    partition.leader_id,
                    list(partition.isr_nodes),
                    list(partition.replica_nodes),
                )
    return found


def wait_until(check, what):
    """Calls check() every POLL_INTERVAL_MS until it returns something other than None; returns that."""
    deadline = time.monotonic() + WAIT_MS_MAX / 1000
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result is not None:
                return result
        except (OSError, ConnectionError) as error:
            last_error = error
        time.sleep(POLL_INTERVAL_MS / 1000)
    sys.exit(f"failover-probe: gave up after {WAIT_MS_MAX} ms waiting for {what} (last error: {last_error})")


def race(survivors, pid, moved):
    """SIGKILLs pid, then polls every survivor in its own thread until moved(address) is not None there.
    Returns (ms until the first survivor saw it, ms until all did, what moved() returned first)."""
    done = {}
    lock = threading.Lock()

    def poll(node, address):
        while time.monotonic() < deadline:
            try:
                result = moved(address)
            except (OSError, ConnectionError):
                result = None
            if result is not None:
                with lock:
                    done[node] = ((time.monotonic() - start) * 1000, result)
                return
            time.sleep(POLL_INTERVAL_MS / 1000)

    start = time.monotonic()
    deadline = start + WAIT_MS_MAX / 1000
    os.kill(pid, signal.SIGKILL)
    threads = [threading.Thread(target=poll, args=item, daemon=True) for item in survivors.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(done) < len(survivors):
        missing = sorted(set(survivors) - set(done))
        sys.exit(f"failover-probe: nodes {missing} did not see the failover within {WAIT_MS_MAX} ms")
    first = min(done.values(), key=lambda entry: entry[0])
    return round(first[0], 1), round(max(entry[0] for entry in done.values()), 1), first[1]


def parse_nodes(text):
    """`ID=HOST:PORT,...` (the nodes' client listeners) as {id: (host, port)}."""
    nodes = {}
    for item in text.split(","):
        node, address = item.split("=")
        host, port = address.rsplit(":", 1)
        nodes[int(node)] = (host, int(port))
    return nodes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command")
    parser.add_argument("--nodes", required=True, help="ID=HOST:PORT,... (client listeners)")
    parser.add_argument("--node", type=int, help="the node to kill or wait for")
    parser.add_argument("--pid", type=int, help="its process id")
    parser.add_argument("--topic")
    parser.add_argument("--replicas", type=int)
    parser.add_argument("--any-leader", action="store_true", help="in-sync: the leader need not be the preferred replica")
    args = parser.parse_args()
    nodes = parse_nodes(args.nodes)
    survivors = {node: address for node, address in nodes.items() if node != args.node}

    if args.command == "quorum-leader":

        def leader():
            for address in nodes.values():
                try:
                    found = quorum(address)[0]
                except (OSError, ConnectionError):
                    continue
                if found >= 0:
                    return found
            return None

        print(json.dumps({"leader": wait_until(leader, "a quorum leader")}))
    elif args.command == "kill-controller":

        def moved(address):
            leader = quorum(address)[0]
            return leader if leader >= 0 and leader != args.node else None

        first_ms, all_ms, leader = race(survivors, args.pid, moved)
        print(json.dumps({"first_ms": first_ms, "all_ms": all_ms, "new_leader": leader}))
    elif args.command == "caught-up":

        def caught_up():
            for address in nodes.values():
                try:
                    leader, high_watermark, voters = quorum(address)
                except (OSError, ConnectionError):
                    continue
                if leader >= 0 and voters.get(args.node, -1) >= high_watermark >= 0:
                    return True
            return None

        wait_until(caught_up, f"voter {args.node} to catch up with the quorum")
        print(json.dumps({"caught_up": args.node}))
    elif args.command == "serving":

        def serving():
            # The node answers Metadata on its client listener and lists itself as a live broker.
            response = call(
                nodes[args.node],
                MetadataRequest[12](topics=[], allow_auto_topic_creation=False, include_topic_authorized_operations=False),
            )
            return True if any(broker.node_id == args.node for broker in response.brokers) else None

        wait_until(serving, f"node {args.node} to serve clients")
        print(json.dumps({"serving": args.node}))
    elif args.command == "leaders":
        found = wait_until(lambda: partitions(next(iter(nodes.values())), args.topic) or None, f"topic {args.topic}")
        print(json.dumps({"leaders": {str(index): entry[0] for index, entry in sorted(found.items())}}))
    elif args.command == "kill-broker":
        address = next(iter(survivors.values()))
        before = wait_until(lambda: partitions(address, args.topic) or None, f"topic {args.topic}")
        led = sorted(index for index, entry in before.items() if entry[0] == args.node)
        if not led:
            sys.exit(f"failover-probe: node {args.node} leads no partition of {args.topic}")

        def moved(address):
            now = partitions(address, args.topic)
            leaders = [now.get(index, (-1,))[0] for index in led]
            return leaders if all(leader >= 0 and leader != args.node for leader in leaders) else None

        first_ms, all_ms, leaders = race(survivors, args.pid, moved)
        print(json.dumps({"first_ms": first_ms, "all_ms": all_ms, "partitions": led, "new_leaders": leaders}))
    elif args.command == "in-sync":

        def in_sync():
            for address in nodes.values():
                found = partitions(address, args.topic)
                if not found or any(
                    len(isr) < args.replicas or leader < 0 or (leader != replicas[0] and not args.any_leader)
                    for leader, isr, replicas in found.values()
                ):
                    return None
            return True

        leaders = "live" if args.any_leader else "preferred"
        wait_until(in_sync, f"{args.replicas} in-sync replicas and {leaders} leaders on {args.topic}")
        print(json.dumps({"in_sync": args.topic}))
    else:
        sys.exit(f"failover-probe: unknown command {args.command}")


if __name__ == "__main__":
    main()
