#!/usr/bin/env bash
# Failover benchmark (issue 13): how long a 3-node KRaft cluster in combined mode takes to recover
# from a SIGKILL, measured from the surviving nodes' client listeners. A benchmark (minutes, real
# processes), not a CI test. For ROUNDS rounds each:
#   controller   SIGKILL the active controller (DescribeQuorum's LeaderId); time until a surviving
#                node answers DescribeQuorum with another leader; restart the node, wait until its
#                quorum log has caught up and it serves clients again
#   partitions   on a new topic (one per round) with 6 partitions and replication factor 3, SIGKILL a
#                broker that leads some and is not the active controller (so that only the broker
#                fails over); time until a surviving node's Metadata names a live new leader for each
#                partition it led; restart it and wait until it serves clients again
#   writes       on one topic (created once) with 3 partitions, replication factor 3 and the topic
#                config min.insync.replicas=2, an idempotent acks=all producer writes one record
#                every 5 ms to a partition whose leader is not the active controller; SIGKILL that
#                leader; time until the first acknowledgement after the kill, and until the first
#                acknowledgement of a record produced after it; records failed; when a surviving
#                node's Metadata names the new leader; restart the node and wait until it is back
#                in every ISR (scripts/failover-writes.py, confluent-kafka; its producer settings,
#                the same for both brokers, go into the report: the times include the client's
#                reaction, 1-2 s with librdkafka 2.16, and when it moved to the new leader is
#                measured too; issue 14)
# "first" is the first surviving node to see it, "all" the last one. Every node is polled every
# 50 ms over its own connection (scripts/failover-probe.py, kafka-python's codec in .cache/venv).
#
#   KIND=kafka scripts/failover-bench.sh       # Apache Kafka 4.4 (scripts/kafka-server.sh cluster-start)
#   KIND=skua scripts/failover-bench.sh        # Skua (scripts/cluster.sh; NETD picks the binary)
#   ROUNDS=3 KIND=kafka scripts/failover-bench.sh   # a quick run (default 10 rounds)
#   MEASURES=writes ROUNDS=5 KIND=skua scripts/failover-bench.sh   # some kinds only (default all:
#                                                                  # controller,partitions,writes)
# FAILOVER_BROKER_SETTINGS: extra key=value ... for every node of either broker. WRITES_DEBUG: more
# librdkafka debug contexts for the writer (its `topic` log is always on), in
# target/failover-bench/<kind>/writes-<round>.log beside each round's records (writes-<round>.tsv).
# Timeouts: BROKER_SESSION_TIMEOUT_MS, BROKER_HEARTBEAT_INTERVAL_MS, QUORUM_ELECTION_TIMEOUT_MS,
# QUORUM_FETCH_TIMEOUT_MS (Kafka's defaults 9000, 2000, 1000, 2000; scripts/cluster-keys.sh).
# Writes results/<date>-<commit>/failover/<kind>.json and summary.md (every kind run in that dir);
# `scripts/failover-bench.sh --summary DIR` rewrites DIR/summary.md from the JSON files there.
set -euo pipefail
case "${1:-}" in
    -h | --help)
        sed -n '2,/^set -euo pipefail/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    "" | --summary) ;;
    *)
        echo "failover-bench: unknown argument ${1} (see --help)" >&2
        exit 2
        ;;
esac
cd "$(dirname "$0")/.."

kind=${KIND:-kafka}
rounds=${ROUNDS:-10}
measures=${MEASURES:-controller,partitions,writes}
node_count=3
topic=failover
partitions=6
writes_topic=failover-writes
writes_partitions=3
writes_min_insync=2
# The writer's own bound is about 3 min (warm-up, 90 s for the failover, flush); this is a backstop.
writes_round_s_max=300
python=.cache/venv/bin/python
# read -a: FAILOVER_BROKER_SETTINGS is a list of key=value words.
read -r -a broker_settings <<<"${FAILOVER_BROKER_SETTINGS:-}"
wants() { case ",$measures," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
for measure in ${measures//,/ }; do
    case "$measure" in
    controller | partitions | writes) ;;
    *) echo "failover-bench: MEASURES takes controller, partitions, writes, not '$measure'" >&2; exit 2 ;;
    esac
done
probe() { "$python" scripts/failover-probe.py "$@"; }
field() { "$python" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# summarize DIR: DIR/summary.md from every <kind>.json in DIR, one column per broker.
summarize() {
    "$python" - "$1" <<'EOF'
import glob, json, sys
results = sys.argv[1]
reports = [json.load(open(path)) for path in sorted(glob.glob(f"{results}/*.json"))]
if not reports:
    sys.exit(f"failover-bench: no <kind>.json in {results}")
first = reports[0]
timeouts = [key for key in first["settings"] if key.endswith(".ms")]
names = {"controller_first_ms": "new active controller, first surviving node",
         "controller_all_ms": "new active controller, every surviving node",
         "partition_leaders_first_ms": "new leaders for the killed broker's partitions, first node",
         "partition_leaders_all_ms": "new leaders for the killed broker's partitions, every node",
         "controller_rejoin_ms": "killed controller restarted and caught up (includes process start)",
         "writes_first_ack_ms": "writes: kill → first acknowledgement (any record)",
         "writes_first_ack_sent_after_ms": "writes: kill → first acknowledgement of a record sent after the kill",
         "writes_metadata_leader_ms": "writes: kill → a surviving node's Metadata names the new leader",
         "writes_client_joined_ms": "writes: kill → the client hands the partition to the new leader",
         "writes_joined_to_ack_ms": "writes: client hands over → first acknowledgement of a record sent after the kill",
         "writes_failed_records": "writes: records failed or unresolved (count)",
         "writes_in_flight_at_kill": "writes: records unacknowledged at the kill (count)",
         "writes_ack_latency_before_ms": "writes: median send → ack in the last second before the kill",
         "writes_isr_rejoin_ms": "writes: killed leader restarted and back in every ISR (includes process start)"}
with open(f"{results}/summary.md", "w") as out:
    out.write(f"# Failover after SIGKILL, 3 nodes in combined mode ({first['run']['commit']})\n\n")
    out.write(f"{first['run']['cpu']}, {first['run']['cores']} cores, kernel {first['run']['kernel']}; every node, and "
              "the probe, on loopback on this one machine. " + ", ".join(f"{key}={first['settings'][key]}" for key in timeouts)
              + ". Rounds per measure: " + "; ".join(f"{r['kind']} {r['settings']['rounds']}" for r in reports)
              + "; median [min–max] in ms unless a count; every surviving node polled "
              "every 50 ms over its own connection (`scripts/failover-bench.sh`). Load average at the start: "
              + "; ".join(f"{r['kind']} {r['run']['loadavg_at_start']}" for r in reports) + ".\n\n")
    out.write("| measure (ms) | " + " | ".join(r["kind"] for r in reports) + " |\n")
    out.write("|---|" + "---|" * len(reports) + "\n")
    def cell(report, key):
        measure = report["measures"].get(key)
        return "–" if measure is None else f"{measure['median']:.0f} [{measure['min']:.0f}–{measure['max']:.0f}]"
    for key, name in names.items():
        if any(key in r["measures"] for r in reports):
            out.write(f"| {name} | " + " | ".join(cell(r, key) for r in reports) + " |\n")
    out.write("\n" + "\n".join(f"- {r['kind']}: {r['broker']}" for r in reports) + "\n")
    extra = {r["kind"]: r["settings"]["broker_settings"] for r in reports if r["settings"].get("broker_settings")}
    if extra:
        out.write("\nExtra broker settings: " + "; ".join(f"{k} {' '.join(v)}" for k, v in extra.items()) + ".\n")
    out.write("""
How to read it: a follower controller notices the leader is gone once it has heard nothing for
`controller.quorum.fetch.timeout.ms` (counted from the last answer before the kill), then stands for
election (`controller.quorum.election.timeout.ms` bounds each attempt; a split vote costs another):
the controller measure is about the fetch timeout plus one election. A killed broker is fenced
`broker.session.timeout.ms` after its last heartbeat, which it sent up to
`broker.heartbeat.interval.ms` before the kill, so new partition leaders appear between
session − heartbeat and session, plus the metadata log's trip to the brokers ("every node" minus
"first"). The broker killed in the partition rounds is never the active controller.
""")
    writes = [r for r in reports if "writes" in r["settings"]]
    if writes:
        w = writes[0]["settings"]["writes"]
        if any(r["settings"]["writes"] != w for r in writes):
            out.write("\n**The writes rounds ran with different settings:** "
                      + "; ".join(f"{r['kind']} {json.dumps(r['settings']['writes'])}" for r in writes) + "\n")
        producer = ", ".join(f"`{k}={json.dumps(v) if isinstance(v, bool) else v}`" for k, v in w["producer"].items())
        out.write(f"""
The writes rounds (`scripts/failover-writes.py`): a topic with {w['topic_partitions']} partitions,
replication factor {w['replication_factor']} and the topic config
min.insync.replicas={w['topic_config']['min.insync.replicas']}; one confluent-kafka (librdkafka) producer
sends one record every {w['record_interval_ms']:g} ms to one partition and times each delivery report in
its own process, whose clock starts at the SIGKILL of that partition's leader (never the active
controller). Its settings, the same for both brokers: {producer}.
The times include the client's reaction: librdkafka moves a partition to a new leader only when
a Metadata answer names it; while the leader's broker is down it asks once a second (its topic
scan, "broker is down: re-query" in its `topic` debug log, kept in the run's writes-<round>.log),
so up to about a second passes between "Metadata names the new leader" and "the client hands the
partition to the new leader" (the log line "joining broker" on the new leader's thread); from
there to the first acknowledgement is the new leader's own time (and the client's drain of
requests to the dead leader). After the answer naming the new leader, librdkafka 2.16 parks the
partition on its internal broker ("Reverting from preferred replica N to leader -1") until its
next scan, a second later, for either broker: the client's share is thus 1–2 s.
`topic.metadata.refresh.interval.ms` stays at its default (at 1 s a second answer in flight
sometimes cut that detour short, which only made the client's share vary more). A failed record is one whose
delivery report is an error (none expected: `message.timeout.ms` is far above the failover time).
Records in flight at the kill are retried on the new leader, so "first acknowledgement (any
record)" is usually one of them; answers the leader sent just before it died and the client read
just after do not count (a burst within 200 ms of the kill, followed by the outage). A restarted node counts as back once every node's Metadata lists it in every ISR of the topic.
""")
    if any(r["kind"] == "kafka" for r in reports):
        out.write("""
Kafka's cluster (`scripts/kafka-server.sh cluster-start`): a static quorum, every node a voter in
`controller.quorum.voters`, each node formatted with `kafka-storage format --cluster-id <one id>
--config <its file>` and no `--initial-controllers` (Kafka 4.4 refuses that flag, and `--standalone`,
while `controller.quorum.voters` is set: the dynamic quorum of KIP-853 needs
`controller.quorum.bootstrap.servers` and per-node directory ids instead). Format writes
metadata.version 4.4-IV2 with eligible.leader.replicas.version=1 (KIP-966's ELR on by default).
""")
print(open(f"{results}/summary.md").read())
EOF
}
if [ "${1:-}" = --summary ]; then
    summarize "${2:?--summary results/<date>-<commit>/failover}"
    exit 0
fi

[ -x "$python" ] || scripts/test-deps.sh
libs=$(scripts/kafka-jars.sh)
work="$PWD/target/failover-bench/$kind"
rm -rf "$work"
mkdir -p "$work"

case "$kind" in
kafka)
    export KAFKA_CLUSTER_PORT=49300 KAFKA_CLUSTER_DIR="$work/cluster"
    port_base=$KAFKA_CLUSTER_PORT
    start_cluster() { scripts/kafka-server.sh cluster-start $node_count "${broker_settings[@]}"; }
    start_node() { scripts/kafka-server.sh cluster-start-node "$1"; }
    stop_cluster() { scripts/kafka-server.sh cluster-stop; }
    ;;
skua)
    export CLUSTER_PORT=49400 CLUSTER_DIR="$work/cluster"
    port_base=$CLUSTER_PORT
    if [ -z "${NETD:-}" ]; then cargo build --release -q -p skua-netd; fi
    start_cluster() { scripts/cluster.sh start $node_count "${broker_settings[@]}"; }
    start_node() { scripts/cluster.sh start-node "$1"; }
    stop_cluster() { scripts/cluster.sh stop; }
    ;;
*) echo "failover-bench: KIND is kafka or skua, not '$kind'" >&2; exit 2 ;;
esac
# shellcheck source=scripts/cluster-keys.sh
. scripts/cluster-keys.sh
nodes=$(for id in $(seq $node_count); do printf '%s=%s:%s\n' "$id" "$(cluster_host "$id")" "$(cluster_client_port "$port_base" "$id")"; done | paste -sd,)
bootstrap="$(cluster_host 1):$port_base"
node_pid() { cat "$work/cluster/node-$1/pid"; }
# restart ID PID: once the killed process PID is gone (a SIGKILLed process blocked in the kernel,
# on a disk write say, dies only when that returns), starts node ID again.
restart() {
    cluster_wait_gone "$2" 60 || { echo "failover-bench: pid $2 (node $1) outlived SIGKILL by 60 s" >&2; exit 1; }
    start_node "$1" 2>>"$work/restarts.log" || { tail -20 "$work/restarts.log" >&2; exit 1; }
}

# Other processes on the machine move these numbers: the load average goes into the report.
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "failover-bench: starting a $node_count-node $kind cluster" >&2
if ! start_cluster; then
    echo "failover-bench: KIND=$kind: the $node_count-node cluster did not start (the reason is above); nothing measured" >&2
    exit 1
fi
trap stop_cluster EXIT

# create_topic NAME ARGS...: TopicCommand --create, again each second for a minute (until a broker
# restarted last round is registered again).
create_topic() {
    local name=$1
    shift
    for _ in $(seq 60); do
        if java -cp "$libs/*" org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --create \
            --topic "$name" "$@" >"$work/topic.log" 2>&1; then
            return 0
        fi
        sleep 1
    done
    tail -20 "$work/topic.log" >&2
    return 1
}

touch "$work/controller.jsonl" "$work/partitions.jsonl" "$work/writes.jsonl"
wants controller && echo "failover-bench: $kind: controller failover, $rounds rounds" >&2
wants controller && for round in $(seq "$rounds"); do
    leader=$(probe quorum-leader --nodes "$nodes" | field leader)
    pid=$(node_pid "$leader")
    result=$(probe kill-controller --nodes "$nodes" --node "$leader" --pid "$pid")
    restart_start_ns=$(date +%s%N)
    restart "$leader" "$pid"
    probe caught-up --nodes "$nodes" --node "$leader" >/dev/null
    # Back as a broker too (a restarted broker waits out its old registration's session).
    probe serving --nodes "$nodes" --node "$leader" >/dev/null
    rejoin_ms=$((($(date +%s%N) - restart_start_ns) / 1000000))
    echo "$result" | "$python" -c 'import json, sys; r = json.load(sys.stdin); r.update(round=int(sys.argv[1]), killed=int(sys.argv[2]), rejoin_ms=int(sys.argv[3])); print(json.dumps(r))' \
        "$round" "$leader" "$rejoin_ms" | tee -a "$work/controller.jsonl" >&2
done

wants partitions && echo "failover-bench: $kind: partition leader failover, $rounds rounds" >&2
wants partitions && for round in $(seq "$rounds"); do
    # A fresh topic each round: its replicas and ISR are every broker and its leaders the preferred
    # replicas. (Reusing one topic would need the killed broker back in the ISR, which Skua's
    # leaders cannot ask for before replication, issue 14; Kafka is measured the same way.)
    round_topic="$topic-$round"
    create_topic "$round_topic" --partitions $partitions --replication-factor $node_count || exit 1
    probe in-sync --nodes "$nodes" --topic "$round_topic" --replicas $node_count >/dev/null
    controller=$(probe quorum-leader --nodes "$nodes" | field leader)
    # The brokers that lead a partition and are not the active controller, one per round in turn.
    mapfile -t candidates < <(probe leaders --nodes "$nodes" --topic "$round_topic" | "$python" -c \
        'import json, sys; print("\n".join(sorted({str(l) for l in json.load(sys.stdin)["leaders"].values()} - {sys.argv[1]})))' "$controller")
    [ ${#candidates[@]} -gt 0 ] || { echo "failover-bench: only the controller leads partitions" >&2; exit 1; }
    victim=${candidates[$((round % ${#candidates[@]}))]}
    pid=$(node_pid "$victim")
    result=$(probe kill-broker --nodes "$nodes" --node "$victim" --pid "$pid" --topic "$round_topic")
    restart "$victim" "$pid"
    probe serving --nodes "$nodes" --node "$victim" >/dev/null
    echo "$result" | "$python" -c 'import json, sys; r = json.load(sys.stdin); r.update(round=int(sys.argv[1]), killed=int(sys.argv[2]), controller=int(sys.argv[3])); print(json.dumps(r))' \
        "$round" "$victim" "$controller" | tee -a "$work/partitions.jsonl" >&2
done
if wants writes; then
    echo "failover-bench: $kind: writes after a partition leader's SIGKILL, $rounds rounds" >&2
    create_topic "$writes_topic" --partitions $writes_partitions --replication-factor $node_count \
        --config min.insync.replicas=$writes_min_insync || exit 1
fi
wants writes && for round in $(seq "$rounds"); do
    # Every replica in every ISR (the node restarted last round caught up), whoever leads.
    probe in-sync --nodes "$nodes" --topic "$writes_topic" --replicas $node_count --any-leader >/dev/null
    controller=$(probe quorum-leader --nodes "$nodes" | field leader)
    # Victims in turn among the nodes that lead a partition and are not the active controller, and
    # the lowest partition each leads. Failovers pile leadership onto the survivors: if only the
    # controller leads, a preferred election (every ISR is full) spreads it again.
    pick() {
        probe leaders --nodes "$nodes" --topic "$writes_topic" | "$python" -c '
import json, sys
leaders, controller, round = json.load(sys.stdin)["leaders"], int(sys.argv[1]), int(sys.argv[2])
led = {}
for partition, leader in sorted(leaders.items(), key=lambda item: int(item[0])):
    if leader >= 0 and leader != controller:
        led.setdefault(leader, int(partition))
if led:
    victim = sorted(led)[round % len(led)]
    print(victim, led[victim])' "$controller" "$round"
    }
    choice=$(pick)
    if [ -z "$choice" ]; then
        # (It answers an error for partitions whose preferred replica leads already: ignored.)
        timeout 120 java -cp "$libs/*" org.apache.kafka.tools.LeaderElectionCommand --bootstrap-server "$bootstrap" \
            --election-type PREFERRED --all-topic-partitions >"$work/election.log" 2>&1 || true
        probe in-sync --nodes "$nodes" --topic "$writes_topic" --replicas $node_count >/dev/null
        choice=$(pick)
        [ -n "$choice" ] || { echo "failover-bench: only the controller leads $writes_topic; see $work/election.log" >&2; exit 1; }
    fi
    read -r victim partition <<<"$choice"
    pid=$(node_pid "$victim")
    if ! result=$(timeout $writes_round_s_max "$python" scripts/failover-writes.py --bootstrap "$bootstrap" --nodes "$nodes" \
        --topic "$writes_topic" --partition "$partition" --node "$victim" --pid "$pid" --log "$work/writes-$round.tsv" \
        --debug "${WRITES_DEBUG:-}" \
        2>"$work/writes-$round.log"); then
        tail -20 "$work/writes-$round.log" >&2
        echo "failover-bench: the writer failed in round $round (log $work/writes-$round.log)" >&2
        exit 1
    fi
    restart_start_ns=$(date +%s%N)
    restart "$victim" "$pid"
    probe serving --nodes "$nodes" --node "$victim" >/dev/null
    probe in-sync --nodes "$nodes" --topic "$writes_topic" --replicas $node_count --any-leader >/dev/null
    rejoin_ms=$((($(date +%s%N) - restart_start_ns) / 1000000))
    echo "$result" | "$python" -c 'import json, sys; r = json.load(sys.stdin); r.update(round=int(sys.argv[1]), killed=int(sys.argv[2]), controller=int(sys.argv[3]), isr_rejoin_ms=int(sys.argv[4])); print(json.dumps(r))' \
        "$round" "$victim" "$controller" "$rejoin_ms" | tee -a "$work/writes.jsonl" >&2
    if [ "$(echo "$result" | field recovered)" != True ]; then
        echo "failover-bench: round $round: no write acknowledged within the writer's bound; records in $work/writes-$round.tsv" >&2
        exit 1
    fi
done
settings_file="$work/cluster/node-1/server.properties"
stop_cluster
trap - EXIT

commit=$(git rev-parse --short HEAD)
results="results/$(date -u +%Y-%m-%d)-$commit/failover"
mkdir -p "$results"
"$python" - "$results" "$kind" "$commit" "$work" "$settings_file" "$rounds" "$load_at_start" \
    "$writes_partitions" "$writes_min_insync" "$("$python" scripts/failover-writes.py --settings)" "${broker_settings[*]}" <<'EOF'
import json, os, platform, statistics, sys
(results, kind, commit, work, settings_file, rounds, load_at_start,
 writes_partitions, writes_min_insync, producer, broker_settings) = sys.argv[1:]
settings = dict(line.strip().split("=", 1) for line in open(settings_file) if "=" in line and not line.startswith("#"))
timeouts = {key: int(settings[key]) for key in ("broker.session.timeout.ms", "broker.heartbeat.interval.ms",
                                                 "controller.quorum.election.timeout.ms", "controller.quorum.fetch.timeout.ms")}
def rows(name):
    return [json.loads(line) for line in open(f"{work}/{name}.jsonl")]
def stats(values):
    return {"median": round(statistics.median(values), 1), "min": min(values), "max": max(values), "samples": values}
controller, partition, writes = rows("controller"), rows("partitions"), rows("writes")
measures = {}
if controller:
    measures.update({
        "controller_first_ms": stats([r["first_ms"] for r in controller]),
        "controller_all_ms": stats([r["all_ms"] for r in controller]),
        "controller_rejoin_ms": stats([r["rejoin_ms"] for r in controller]),
    })
if partition:
    measures.update({
        "partition_leaders_first_ms": stats([r["first_ms"] for r in partition]),
        "partition_leaders_all_ms": stats([r["all_ms"] for r in partition]),
    })
if writes:
    measures.update({
        "writes_first_ack_ms": stats([r["first_ack_ms"] for r in writes]),
        "writes_first_ack_sent_after_ms": stats([r["first_ack_sent_after_ms"] for r in writes]),
        "writes_metadata_leader_ms": stats([r["metadata_leader_ms"] for r in writes]),
        "writes_client_joined_ms": stats([r["client_joined_ms"] for r in writes]),
        "writes_joined_to_ack_ms": stats([round(r["first_ack_sent_after_ms"] - r["client_joined_ms"], 1) for r in writes]),
        "writes_failed_records": stats([r["failed"] + r["unresolved"] for r in writes]),
        "writes_in_flight_at_kill": stats([r["in_flight_at_kill"] for r in writes]),
        "writes_ack_latency_before_ms": stats([r["ack_latency_ms_before"] for r in writes]),
        "writes_isr_rejoin_ms": stats([r["isr_rejoin_ms"] for r in writes]),
    })
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
broker = {"kafka": "Apache Kafka 4.4.0 (Maven jars), static quorum (controller.quorum.voters)",
          "skua": "Skua netd"}[kind]
report = {"benchmark": "failover", "broker": broker, "kind": kind,
          "run": {"commit": commit, "kernel": platform.release(), "cpu": cpu, "cores": os.cpu_count(),
                  "loadavg_at_start": load_at_start},
          "settings": {"nodes": 3, "process.roles": "broker,controller", "rounds": int(rounds), "poll_interval_ms": 50,
                       "topic_partitions": 6, "replication_factor": 3, **timeouts},
          "measures": measures, "rounds": {"controller": controller, "partitions": partition, "writes": writes}}
if writes:
    report["settings"]["writes"] = {"topic_partitions": int(writes_partitions), "replication_factor": 3,
                                    "topic_config": {"min.insync.replicas": int(writes_min_insync)},
                                    "record_interval_ms": writes[0]["interval_ms"], "producer": json.loads(producer)}
extra = [setting for setting in broker_settings.split() if setting]
if extra:
    report["settings"]["broker_settings"] = extra
json.dump(report, open(f"{results}/{kind}.json", "w"), indent=2)
EOF
summarize "$results"
