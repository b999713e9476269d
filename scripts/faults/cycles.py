"""The fault suite's conductor: creates the topic, then injects one fault at a time into the
running loopback cluster and waits for it to heal before the next. Owns the choice of victims and
every wait's bound; knows nothing of what the producer wrote or how the checks judge it.

    cycles.py setup --nodes N --topic T --partitions P --replicas R --min-insync M
        creates T (topic config min.insync.replicas=M; if the broker refuses topic configs, without
        them: faults.sh also sets it broker-wide) and waits until every partition has R in-sync
        replicas; prints one JSON object (how min.insync.replicas was set)
    cycles.py run --nodes N --topic T --cycles C --kinds K,... --cluster-dir D --out FILE ...
        C cycles, kind K[(i-1) % len(K)] in cycle i, one JSON line per cycle into FILE and a progress
        line on stderr; exit 1 if a cycle failed (no failover or no heal within its bound)
    cycles.py heal --nodes N --topic T --cluster-dir D
        waits until the cluster has healed (every node up, every partition with a leader and a full ISR)

Kinds:
    kill-leader      SIGKILL the leader of a partition, wait for a new leader, restart it
                     (scripts/cluster.sh start-node)
    stop-leader      SIGSTOP the leader of a partition past broker.session.timeout.ms (until
                     a new leader is elected, and at least the session timeout + STOP_MARGIN_MS), SIGCONT
    kill-controller  SIGKILL the metadata quorum's leader (DescribeQuorum), wait for a new one and new
                     leaders for its partitions, restart it
    bounce-leader    SIGKILL the leader of a partition and restart it at once, within its session
                     (Kafka's system tests' "hard bounce")
    isolate          cut the leader of a partition off from the other nodes (netns.sh isolate: both
                     directions; clients still reach it) past broker.session.timeout.ms (as stop-leader),
                     then heal the network; every second turn prefers a leader that is the active
                     controller too; needs --netns (the nodes in namespaces of their own)
    two-down         SIGKILL two of the three nodes at once (the metadata quorum is lost with them),
                     keep them down for the session timeout + STOP_MARGIN_MS, restart both; the survivor
                     turns with the cycles
    rolling-restart  SIGTERM each node in turn (the active controller last), restart it and wait until
                     it is back in every ISR before the next
kill-leader, stop-leader, bounce-leader and isolate take the partitions in turn and prefer one whose
leader is not the active controller (isolate: every second turn, one whose leader is).
Nodes are ID=HOST:PORT,... (client listeners). Run with .cache/venv/bin/python.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
import view  # noqa: E402

POLL_INTERVAL_S = 0.1
# Bounds on every wait of a cycle.
FAILOVER_TIMEOUT_S = 60
HEAL_TIMEOUT_S = 180
GONE_TIMEOUT_S = 60
RESTART_TIMEOUT_S = 90
CREATE_TIMEOUT_S = 60
# A stopped leader stays stopped at least this long past the session timeout.
STOP_MARGIN_MS = 2_000
# ... and at most this long past it, new leader or not.
STOP_EXTRA_MS_MAX = 30_000
# A SIGTERMed node (rolling-restart) that has not exited after this long is SIGKILLed (a problem).
TERM_TIMEOUT_S = 60
KINDS = ("kill-leader", "stop-leader", "kill-controller", "bounce-leader", "isolate", "two-down", "rolling-restart")


def log(message):
    print(f"faults: {message}", file=sys.stderr, flush=True)


def pid_alive(pid):
    """The process runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_for(check, timeout_s, interval_s=POLL_INTERVAL_S):
    """Calls check() until it returns something other than None (returned) or timeout_s passes (None)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval_s)


class Cluster:
    def __init__(self, nodes, topic, cluster_dir, cluster_script, netns=None):
        self.nodes = nodes
        self.topic = topic
        self.cluster_dir = cluster_dir
        self.cluster_script = cluster_script
        self.netns = netns  # (netns.sh, NAME, PREFIX) when every node runs in a namespace of its own

    def network(self, command, node):
        """netns.sh isolate|heal NAME PREFIX N node: True if it worked."""
        script, name, prefix = self.netns
        result = subprocess.run([script, command, name, prefix, str(len(self.nodes)), str(node)],
                                capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            log(f"netns.sh {command} {node} failed: {result.stderr.strip()}")
        return result.returncode == 0

    def pid(self, node):
        with open(os.path.join(self.cluster_dir, f"node-{node}", "pid")) as file:
            return int(file.read().strip())

    def alive(self, node):
        try:
            return pid_alive(self.pid(node))
        except (OSError, ValueError):
            return False

    def partitions(self, node):
        return view.ask(view.partitions, self.nodes[node], self.topic)

    def healed(self):
        """Every node runs and every node's metadata has every partition with a leader and ISR =
        replicas (so a restarted broker is registered, unfenced and caught up): the state, or None."""
        states = {}
        for node in self.nodes:
            if not self.alive(node):
                return None
            state = self.partitions(node)
            if not state or any(p["leader"] < 0 or p["isr"] != sorted(p["replicas"]) for p in state.values()):
                return None
            states[node] = state
        return states[min(states)]

    def quorum_leader(self, asked):
        for node in asked:
            leader = view.ask(view.quorum_leader, self.nodes[node])
            if leader is not None and leader >= 0:
                return leader
        return None

    def restart(self, node):
        """Starts `node` again (scripts/cluster.sh start-node): True once it listens."""
        try:
            result = subprocess.run([self.cluster_script, "start-node", str(node)], capture_output=True,
                                    text=True, timeout=RESTART_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log(f"node {node}: cluster.sh start-node took more than {RESTART_TIMEOUT_S} s")
            return False
        if result.returncode != 0:
            log(f"node {node}: cluster.sh start-node failed:\n{result.stderr}")
        return result.returncode == 0


def count_acks(path):
    try:
        with open(path, "rb") as file:
            return sum(1 for line in file if line.startswith(b"A\t"))
    except OSError:
        return 0


def run_cycle(cluster, cycle, kind, kinds_count, partition_count, session_timeout_ms, start):
    """One fault and its healing; a dict for the cycle's JSON line (its "problem" set if it failed)."""
    record = {"cycle": cycle, "kind": kind, "at_ms": int((time.monotonic() - start) * 1000),
              "at_unix_ms": int(time.time() * 1000)}
    nodes = sorted(cluster.nodes)
    controller = cluster.quorum_leader(nodes)
    record["controller_before"] = controller
    if kind == "two-down":
        return two_down(cluster, record, cycle, kinds_count, session_timeout_ms)
    if kind == "rolling-restart":
        return rolling_restart(cluster, record, controller)
    if kind == "kill-controller":
        if controller is None:
            record["problem"] = "no quorum leader known"
            return record
        victim = controller
    else:
        # Partitions in turn (the turn of each kind's own count), preferring one whose leader is
        # not the active controller, so that only a partition leader fails (kill-controller
        # covers both at once).
        state = cluster.partitions(nodes[0]) or cluster.partitions(nodes[1]) or {}
        first = ((cycle - 1) // kinds_count) % partition_count
        turn = [(first + step) % partition_count for step in range(partition_count)]
        led = [p for p in turn if state.get(p, {}).get("leader", -1) >= 0]
        if not led:
            record["problem"] = f"no partition has a leader: {state}"
            return record
        # isolate, every second turn: a leader that is the active controller too (when one is), so
        # that the cut-off node takes the metadata quorum's leadership with it.
        prefer_controller = kind == "isolate" and ((cycle - 1) // kinds_count) % 2 == 1
        partition = next((p for p in led if (state[p]["leader"] == controller) == prefer_controller), led[0])
        victim = state[partition]["leader"]
        record.update(partition=partition, leader_epoch_before=state[partition]["epoch"])
    record["victim"] = victim
    survivors = [node for node in nodes if node != victim]
    state_before = cluster.partitions(survivors[0]) or {}
    led = sorted(p for p, s in state_before.items() if s["leader"] == victim)
    record["victim_led"] = led
    pid = cluster.pid(victim)
    fault_start = time.monotonic()

    def new_leaders():
        for node in survivors:
            state = cluster.partitions(node)
            if state and all(state.get(p, {}).get("leader", -1) not in (-1, victim) for p in led):
                return {str(p): state[p]["leader"] for p in led}
        return None

    if kind == "bounce-leader":
        os.kill(pid, signal.SIGKILL)
        record["fault_unix_ms"] = int(time.time() * 1000)
        if wait_for(lambda: True if not pid_alive(pid) else None, GONE_TIMEOUT_S) is None:
            record["problem"] = f"pid {pid} outlived SIGKILL by {GONE_TIMEOUT_S} s"
            return record
        if not cluster.restart(victim):
            record["problem"] = f"node {victim} did not restart"
            return record
        record["restart_ms"] = int((time.monotonic() - fault_start) * 1000)
    elif kind in ("kill-leader", "kill-controller"):
        os.kill(pid, signal.SIGKILL)
        record["fault_unix_ms"] = int(time.time() * 1000)
        if kind == "kill-controller":
            moved = wait_for(lambda: (lambda leader: leader if leader not in (None, victim) else None)(
                cluster.quorum_leader(survivors)), FAILOVER_TIMEOUT_S)
            record["controller_after"] = moved
            if moved is None:
                record["problem"] = f"no new quorum leader within {FAILOVER_TIMEOUT_S} s"
            else:
                record["controller_failover_ms"] = int((time.monotonic() - fault_start) * 1000)
        leaders = wait_for(new_leaders, FAILOVER_TIMEOUT_S)
        if leaders is None:
            record.setdefault("problem", f"no new leaders for {led} within {FAILOVER_TIMEOUT_S} s")
        else:
            record["new_leaders"] = leaders
            record["failover_ms"] = int((time.monotonic() - fault_start) * 1000)
        if wait_for(lambda: True if not pid_alive(pid) else None, GONE_TIMEOUT_S) is None:
            record.setdefault("problem", f"pid {pid} outlived SIGKILL by {GONE_TIMEOUT_S} s")
            return record
        restart_start = time.monotonic()
        if not cluster.restart(victim):
            record.setdefault("problem", f"node {victim} did not restart")
            return record
        record["restart_ms"] = int((time.monotonic() - restart_start) * 1000)
    elif kind == "isolate":
        if cluster.netns is None:
            record["problem"] = "isolate needs --netns"
            return record
        if not cluster.network("isolate", victim):
            record["problem"] = "netns.sh isolate failed"
            cluster.network("heal", victim)  # whatever routes it did add
            return record
        record["fault_unix_ms"] = int(time.time() * 1000)
        try:
            stop_min_s = (session_timeout_ms + STOP_MARGIN_MS) / 1000
            stop_max_s = (session_timeout_ms + STOP_EXTRA_MS_MAX) / 1000
            leaders = wait_for(new_leaders, stop_max_s)
            if leaders is None:
                record["problem"] = f"no new leaders for {led} while node {victim} was cut off {stop_max_s:.0f} s"
            else:
                record["new_leaders"] = leaders
                record["failover_ms"] = int((time.monotonic() - fault_start) * 1000)
            remaining_s = stop_min_s - (time.monotonic() - fault_start)
            if remaining_s > 0:
                time.sleep(remaining_s)
            # What the cut-off node believes at the end (the clients still reach it), and where the
            # quorum's leadership is.
            if victim == controller:
                record["controller_after"] = cluster.quorum_leader(survivors)
                record["victim_quorum_leader"] = view.ask(view.quorum_leader, cluster.nodes[victim])
            seen = cluster.partitions(victim)
            record["victim_view"] = ({str(p): {"leader": s["leader"], "isr": s["isr"]} for p, s in sorted(seen.items())}
                                     if seen is not None else "no answer")
        finally:
            record["resumed_unix_ms"] = int(time.time() * 1000)
            if not cluster.network("heal", victim):
                record.setdefault("problem", "netns.sh heal failed")
        record["stopped_ms"] = int((time.monotonic() - fault_start) * 1000)
    else:
        os.kill(pid, signal.SIGSTOP)
        record["fault_unix_ms"] = int(time.time() * 1000)
        try:
            stop_min_s = (session_timeout_ms + STOP_MARGIN_MS) / 1000
            stop_max_s = (session_timeout_ms + STOP_EXTRA_MS_MAX) / 1000
            leaders = wait_for(new_leaders, stop_max_s)
            if leaders is None:
                record["problem"] = f"no new leaders for {led} while node {victim} was stopped {stop_max_s:.0f} s"
            else:
                record["new_leaders"] = leaders
                record["failover_ms"] = int((time.monotonic() - fault_start) * 1000)
            remaining_s = stop_min_s - (time.monotonic() - fault_start)
            if remaining_s > 0:
                time.sleep(remaining_s)
        finally:
            # Taken before the signal: nothing the node does can come before it.
            record["resumed_unix_ms"] = int(time.time() * 1000)
            os.kill(pid, signal.SIGCONT)
        record["stopped_ms"] = int((time.monotonic() - fault_start) * 1000)
    return heal(cluster, record, fault_start)


def heal(cluster, record, since):
    """Waits for the cluster to heal; sets heal_ms, leaders_after and cycle_ms (or the problem)."""
    heal_start = time.monotonic()
    healed = wait_for(cluster.healed, HEAL_TIMEOUT_S, interval_s=0.25)
    if healed is None:
        record.setdefault("problem", f"cluster not healed within {HEAL_TIMEOUT_S} s")
    else:
        record["heal_ms"] = int((time.monotonic() - heal_start) * 1000)
        record["leaders_after"] = {str(p): s["leader"] for p, s in sorted(healed.items())}
    record["cycle_ms"] = int((time.monotonic() - since) * 1000)
    return record


def two_down(cluster, record, cycle, kinds_count, session_timeout_ms):
    """SIGKILL every node but one (the survivor turns with the cycles), keep them down for the session
    timeout + STOP_MARGIN_MS, then restart them together. With 3 voters the metadata quorum goes with
    them; the survivor must acknowledge nothing (min.insync.replicas=2): check.py counts the
    acknowledgements between fault_unix_ms and restart_unix_ms."""
    nodes = sorted(cluster.nodes)
    survivor = nodes[((cycle - 1) // kinds_count) % len(nodes)]
    victims = [node for node in nodes if node != survivor]
    record.update(victims=victims, survivor=survivor)
    pids = {node: cluster.pid(node) for node in victims}
    fault_start = time.monotonic()
    for node in victims:
        os.kill(pids[node], signal.SIGKILL)
    record["fault_unix_ms"] = int(time.time() * 1000)
    for node in victims:
        if wait_for(lambda: True if not pid_alive(pids[node]) else None, GONE_TIMEOUT_S) is None:
            record["problem"] = f"pid {pids[node]} outlived SIGKILL by {GONE_TIMEOUT_S} s"
            return record
    remaining_s = (session_timeout_ms + STOP_MARGIN_MS) / 1000 - (time.monotonic() - fault_start)
    if remaining_s > 0:
        time.sleep(remaining_s)
    seen = cluster.partitions(survivor)
    record["survivor_view"] = ({str(p): {"leader": s["leader"], "isr": s["isr"]} for p, s in sorted(seen.items())}
                               if seen is not None else "no answer")
    record["survivor_quorum_leader"] = view.ask(view.quorum_leader, cluster.nodes[survivor])
    # Taken before the restarts: an acknowledgement before this came from the survivor alone.
    record["restart_unix_ms"] = int(time.time() * 1000)
    record["down_ms"] = int((time.monotonic() - fault_start) * 1000)
    restart_start = time.monotonic()
    # Together: either one alone makes a quorum with the survivor, but a node may wait for the
    # quorum before it listens.
    results = {}
    threads = [threading.Thread(target=lambda node=node: results.__setitem__(node, cluster.restart(node)))
               for node in victims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(RESTART_TIMEOUT_S + 10)
    failed = [node for node in victims if not results.get(node)]
    if failed:
        record["problem"] = f"node(s) {failed} did not restart"
        return record
    record["restart_ms"] = int((time.monotonic() - restart_start) * 1000)
    return heal(cluster, record, fault_start)


def rolling_restart(cluster, record, controller):
    """Every node in turn, the active controller last: SIGTERM, wait until it has exited (SIGKILL
    after TERM_TIMEOUT_S, a problem), restart it, wait until the cluster has healed (it is back in
    every ISR) before the next."""
    nodes = sorted(cluster.nodes, key=lambda node: (node == controller, node))
    record["order"] = nodes
    steps = []
    record["steps"] = steps
    fault_start = time.monotonic()
    record["fault_unix_ms"] = int(time.time() * 1000)
    for node in nodes:
        step = {"node": node}
        steps.append(step)
        state = cluster.partitions(node) or {}
        step["led"] = sorted(p for p, s in state.items() if s["leader"] == node)
        pid = cluster.pid(node)
        start = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        if wait_for(lambda: True if not pid_alive(pid) else None, TERM_TIMEOUT_S) is None:
            os.kill(pid, signal.SIGKILL)
            record.setdefault("problem", f"node {node} had not exited {TERM_TIMEOUT_S} s after SIGTERM: SIGKILL")
            if wait_for(lambda: True if not pid_alive(pid) else None, GONE_TIMEOUT_S) is None:
                record["problem"] = f"pid {pid} outlived SIGKILL by {GONE_TIMEOUT_S} s"
                return record
        step["stop_ms"] = int((time.monotonic() - start) * 1000)
        restart_start = time.monotonic()
        if not cluster.restart(node):
            record.setdefault("problem", f"node {node} did not restart")
            return record
        step["restart_ms"] = int((time.monotonic() - restart_start) * 1000)
        heal_start = time.monotonic()
        if wait_for(cluster.healed, HEAL_TIMEOUT_S, interval_s=0.25) is None:
            record.setdefault("problem", f"cluster not healed within {HEAL_TIMEOUT_S} s of node {node}'s restart")
            return record
        step["heal_ms"] = int((time.monotonic() - heal_start) * 1000)
    record["stop_ms"] = max(step["stop_ms"] for step in steps)
    record["restart_ms"] = max(step["restart_ms"] for step in steps)
    return heal(cluster, record, fault_start)


def describe(record, acked, acked_before):
    if "victims" in record:
        parts = [f"cycle {record['cycle']} {record['kind']}: nodes {record['victims']} (node {record['survivor']} left)"]
    elif "order" in record:
        parts = [f"cycle {record['cycle']} {record['kind']}: nodes {record['order']} in turn"]
        parts += [f"node {s['node']} stopped in {s['stop_ms'] / 1000:.1f} s, healed {s['heal_ms'] / 1000:.1f} s "
                  f"after its restart" for s in record["steps"] if "heal_ms" in s]
    else:
        parts = [f"cycle {record['cycle']} {record['kind']}: node {record.get('victim', '?')}"]
    if record.get("partition") is not None:
        parts[0] += f" (leader of partition {record['partition']}, epoch {record.get('leader_epoch_before')})"
    if "controller_failover_ms" in record:
        parts.append(f"new controller {record['controller_after']} after {record['controller_failover_ms'] / 1000:.1f} s")
    if "failover_ms" in record:
        parts.append(f"new leaders {record['new_leaders']} after {record['failover_ms'] / 1000:.1f} s")
    if "stopped_ms" in record:
        parts.append(f"{'reconnected' if record['kind'] == 'isolate' else 'resumed'} after {record['stopped_ms'] / 1000:.1f} s")
    if "down_ms" in record:
        parts.append(f"down {record['down_ms'] / 1000:.1f} s")
    if "restart_ms" in record:
        parts.append(f"restarted in {record['restart_ms'] / 1000:.1f} s")
    if "heal_ms" in record:
        parts.append(f"healed {record['heal_ms'] / 1000:.1f} s later")
    parts.append(f"acked {acked} (+{acked - acked_before})")
    if "problem" in record:
        parts.append(f"PROBLEM: {record['problem']}")
    return "; ".join(parts)


def setup(args, nodes):
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap = ",".join(f"{host}:{port}" for host, port in nodes.values())
    admin = AdminClient({"bootstrap.servers": bootstrap})
    report = {"topic": args.topic, "partitions": args.partitions, "replication_factor": args.replicas}

    def create(config):
        topic = NewTopic(args.topic, num_partitions=args.partitions, replication_factor=args.replicas, config=config)
        admin.create_topics([topic], request_timeout=CREATE_TIMEOUT_S)[args.topic].result(timeout=CREATE_TIMEOUT_S)

    # Every broker registered and unfenced (listed by Metadata, the controller among them) first:
    # an admin request sent before its controller is listed waits for a metadata refresh that
    # librdkafka may not make before the request times out.
    def all_listed():
        metadata = admin.list_topics(timeout=5)
        listed = len(metadata.brokers) == len(nodes) and metadata.controller_id in metadata.brokers
        return True if listed else None
    if wait_for(all_listed, HEAL_TIMEOUT_S, interval_s=0.25) is None:
        sys.exit(f"faults: the brokers were not all listed by Metadata within {HEAL_TIMEOUT_S} s")
    try:
        create({"min.insync.replicas": str(args.min_insync)})
        report["min_insync_replicas"] = {"value": args.min_insync, "set_as": "topic config"}
    except KafkaException as error:
        refusal = error.args[0]
        if refusal.name() != "INVALID_CONFIG":
            sys.exit(f"faults: creating {args.topic}: {refusal}")
        log(f"topic configs refused ({refusal.str()}): creating {args.topic} without; "
            f"min.insync.replicas={args.min_insync} is set broker-wide")
        create({})
        report["min_insync_replicas"] = {"value": args.min_insync, "set_as": "broker config",
                                         "topic_config_refused": refusal.str()}
    cluster = Cluster(nodes, args.topic, None, None)
    cluster.alive = lambda node: True  # the processes are faults.sh's; setup asks only the listeners
    if wait_for(cluster.healed, HEAL_TIMEOUT_S, interval_s=0.25) is None:
        sys.exit(f"faults: {args.topic} has no leader or full ISR on every node within {HEAL_TIMEOUT_S} s")
    print(json.dumps(report))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("setup", "run", "heal"))
    parser.add_argument("--nodes", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--min-insync", type=int, default=2)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--cluster-dir")
    parser.add_argument("--cluster-script")
    parser.add_argument("--session-timeout-ms", type=int, default=9_000)
    parser.add_argument("--pause-s", type=float, default=2.0, help="after each cycle has healed")
    parser.add_argument("--out", help="the cycles' JSON lines")
    parser.add_argument("--acks", help="the producer's delivery log (progress only)")
    parser.add_argument("--producer-pid", type=int, help="stop early if this process is gone")
    parser.add_argument("--netns", help="SCRIPT,NAME,PREFIX: every node in a namespace of its own (scripts/faults/netns.sh)")
    args = parser.parse_args()
    nodes = view.parse_nodes(args.nodes)

    if args.command == "setup":
        setup(args, nodes)
        return
    cluster = Cluster(nodes, args.topic, args.cluster_dir, args.cluster_script,
                      tuple(args.netns.split(",")) if args.netns else None)
    if args.command == "heal":
        if wait_for(cluster.healed, HEAL_TIMEOUT_S, interval_s=0.25) is None:
            sys.exit(f"faults: the cluster did not heal within {HEAL_TIMEOUT_S} s")
        return
    kinds = args.kinds.split(",")
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        sys.exit(f"faults: unknown fault kind(s) {unknown}; known: {', '.join(KINDS)}")
    if "isolate" in kinds and not cluster.netns:
        sys.exit("faults: isolate needs --netns (the nodes in network namespaces of their own)")
    start = time.monotonic()
    failed = 0
    acked_before = count_acks(args.acks) if args.acks else 0
    with open(args.out, "w", buffering=1) as out:
        for cycle in range(1, args.cycles + 1):
            if args.producer_pid and not pid_alive(args.producer_pid):
                log(f"the producer (pid {args.producer_pid}) is gone: no more cycles")
                failed += 1
                break
            kind = kinds[(cycle - 1) % len(kinds)]
            record = run_cycle(cluster, cycle, kind, len(kinds), args.partitions, args.session_timeout_ms, start)
            acked = count_acks(args.acks) if args.acks else 0
            record["acked_total"] = acked
            out.write(json.dumps(record) + "\n")
            log(f"[{(time.monotonic() - start):.0f} s] " + describe(record, acked, acked_before).replace(
                f"cycle {cycle} ", f"cycle {cycle}/{args.cycles} ", 1))
            acked_before = acked
            if "problem" in record:
                failed += 1
                if "heal_ms" not in record:
                    log("the cluster did not heal: no more cycles")
                    break
            time.sleep(args.pause_s)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
