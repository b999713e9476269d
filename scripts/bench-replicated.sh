#!/usr/bin/env bash
# Replicated produce benchmark (issue 14's `replicated` suite): a 3-node loopback cluster of each
# broker, topic with 16 partitions, replication factor 3 and min.insync.replicas=2, 1 KiB records
# with acks=all from Apache Kafka's own kafka-producer-perf-test (the Maven jars: an independent
# client). Two phases per broker, one broker after the other on this machine:
#   max     as fast as the producer goes (throughput -1)
#   fixed   RATE records/s (default: half of kafka's max from this run's max phase, else 20,000),
#           for publish latency at a load every broker sustains
# Brokers and their durability:
#   skua          fsync on the leader and on every ISR follower before ack (Skua's default)
#   skua-memory   skua.replication.follower.fsync.before.ack=false (followers fsync in the background)
#   kafka         Apache Kafka 4.4, defaults (no fsync: the ISR's page caches acknowledge)
#   kafka-fsync   Kafka with log.flush.interval.messages=1 (every broker fsyncs every batch)
# Writes results/<date>-<commit>/replicated/results.json and summary.md.
#
#   scripts/bench-replicated.sh                          # 1,000,000 records per run (~1 GiB)
#   RECORDS=200000 scripts/bench-replicated.sh           # a quick run
#   BROKERS="skua kafka" PHASES=max scripts/bench-replicated.sh
# Loopback only (scripts/cluster.sh and scripts/kafka-server.sh cluster-start); every cluster's
# data is removed after its run. The machine is shared by the producer and all three nodes: the
# numbers compare brokers on the same hardware, not what either does with a core per node.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi

records=${RECORDS:-1000000}
brokers=${BROKERS:-skua skua-memory kafka kafka-fsync}
phases=${PHASES:-max fixed}
record_size=1024
partitions=16
warmup_records=50000

kafka_libs=$(scripts/kafka-jars.sh)
netd=${NETD:-./target/release/netd}
[ -n "${NETD:-}" ] || cargo build --release -q -p skua-netd
export NETD="$netd"

commit=$(git rev-parse --short HEAD)
results="results/$(date -u +%Y-%m-%d)-$commit/replicated"
mkdir -p "$results"
work=target/bench-replicated
rm -rf "$work"
mkdir -p "$work"

perf_tool() {
    java -Xmx1g -cp "$kafka_libs/*" org.apache.kafka.tools.ProducerPerformance "$@" 2>/dev/null
}

# run NAME BOOTSTRAP PHASE THROUGHPUT: the measured run, its summary line in $work/NAME-PHASE.txt.
run() {
    local name=$1 bootstrap=$2 phase=$3 throughput=$4
    echo "bench-replicated: $name: $phase: $records records of $record_size B, acks=all, throughput $throughput" >&2
    timeout 900 java -Xmx1g -cp "$kafka_libs/*" org.apache.kafka.tools.ProducerPerformance \
        --topic perf --num-records "$records" --record-size $record_size --throughput "$throughput" \
        --producer-props "bootstrap.servers=$bootstrap" acks=all linger.ms=5 batch.size=131072 2>/dev/null \
        | tee "$work/$name-$phase.txt" | tail -1 >&2
}

# load NAME BOOTSTRAP: topic, warm-up, then each phase.
load() {
    local name=$1 bootstrap=$2
    java -cp "$kafka_libs/*" org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --create \
        --topic perf --partitions $partitions --replication-factor 3 --config min.insync.replicas=2 >&2
    echo "bench-replicated: $name: warm-up" >&2
    perf_tool --topic perf --num-records $warmup_records --record-size $record_size --throughput -1 \
        --producer-props "bootstrap.servers=$bootstrap" acks=all >/dev/null
    for phase in $phases; do
        case "$phase" in
        max) run "$name" "$bootstrap" max -1 ;;
        fixed) run "$name" "$bootstrap" fixed "$(fixed_rate)" ;;
        *) echo "bench-replicated: unknown phase $phase (max, fixed)" >&2; exit 2 ;;
        esac
    done
}

# Half of kafka's max-phase rate in this run if it ran, else RATE or 20,000 records/s.
fixed_rate() {
    if [ -n "${RATE:-}" ]; then echo "$RATE"; return; fi
    if [ -f "$work/kafka-max.txt" ]; then
        python3 -c 'import re,sys; m=re.search(r"([0-9.]+) records/sec", open(sys.argv[1]).read().strip().splitlines()[-1]); print(int(float(m.group(1))/2))' "$work/kafka-max.txt"
        return
    fi
    echo 20000
}

# Kafka first: the fixed phase's rate is half of its max.
ordered=""
for broker in kafka $brokers; do
    case " $brokers " in *" $broker "*) ;; *) continue ;; esac
    case " $ordered " in *" $broker "*) ;; *) ordered="$ordered $broker" ;; esac
done

for broker in $ordered; do
    case "$broker" in
    skua | skua-memory)
        extra=(default.replication.factor=3 min.insync.replicas=2)
        [ "$broker" = skua-memory ] && extra+=(skua.replication.follower.fsync.before.ack=false)
        CLUSTER_DIR="$work/cluster" scripts/cluster.sh start 3 "${extra[@]}" >&2
        load "$broker" 127.0.0.11:49400 || { CLUSTER_DIR="$work/cluster" scripts/cluster.sh stop >&2; exit 1; }
        CLUSTER_DIR="$work/cluster" scripts/cluster.sh stop >&2
        rm -rf "$work/cluster"
        ;;
    kafka | kafka-fsync)
        extra=(default.replication.factor=3 min.insync.replicas=2)
        [ "$broker" = kafka-fsync ] && extra+=(log.flush.interval.messages=1)
        KAFKA_CLUSTER_DIR="$work/kafka-cluster" scripts/kafka-server.sh cluster-start 3 "${extra[@]}" >&2
        load "$broker" 127.0.0.11:49300 || { KAFKA_CLUSTER_DIR="$work/kafka-cluster" scripts/kafka-server.sh cluster-stop >&2; exit 1; }
        KAFKA_CLUSTER_DIR="$work/kafka-cluster" scripts/kafka-server.sh cluster-stop >&2
        rm -rf "$work/kafka-cluster"
        ;;
    *) echo "bench-replicated: unknown broker $broker (skua, skua-memory, kafka, kafka-fsync)" >&2; exit 2 ;;
    esac
done

python3 - "$results" "$commit" "$records" "$record_size" "$partitions" "$work" "$phases" $ordered <<'EOF'
import json, os, platform, re, sys
results, commit, records, size, partitions, work, phases, *brokers = sys.argv[1:]
patterns = {
    "records": r"([0-9.]+) records sent", "records_per_sec": r"([0-9.]+) records/sec",
    "mib_per_sec": r"\(([0-9.]+) MB/sec\)", "avg_ms": r"([0-9.]+) ms avg latency",
    "max_ms": r"([0-9.]+) ms max latency", "p50_ms": r"([0-9.]+) ms 50th", "p95_ms": r"([0-9.]+) ms 95th",
    "p99_ms": r"([0-9.]+) ms 99th", "p999_ms": r"([0-9.]+) ms 99.9th",
}
durability = {
    "skua": "3 nodes, RF 3, min ISR 2; fsync on the leader and every ISR follower before ack",
    "skua-memory": "3 nodes, RF 3, min ISR 2; fsync on the leader, followers fsync in the background",
    "kafka": "3 nodes, RF 3, min ISR 2; Kafka 4.4 defaults (no fsync before ack)",
    "kafka-fsync": "3 nodes, RF 3, min ISR 2; Kafka 4.4 with log.flush.interval.messages=1",
}
runs = {}
for broker in brokers:
    for phase in phases.split():
        path = f"{work}/{broker}-{phase}.txt"
        if not os.path.exists(path):
            continue
        lines = open(path).read().strip().splitlines()
        if not lines:
            sys.exit(f"bench-replicated: {broker} {phase} printed nothing")
        summary = lines[-1]
        numbers = {}
        for name, pattern in patterns.items():
            found = re.search(pattern, summary)
            if not found:
                sys.exit(f"bench-replicated: could not read {name} from {broker} {phase}: {summary!r}")
            numbers[name] = float(found.group(1))
        runs[f"{broker}/{phase}"] = {"broker": broker, "phase": phase, "durability": durability[broker],
                                     "result": numbers, "tool_summary": summary}
document = {
    "suite": "replicated", "commit": commit, "records": int(records), "record_size": int(size),
    "partitions": int(partitions), "replication_factor": 3, "min_insync_replicas": 2, "acks": "all",
    "tool": "kafka-producer-perf-test (Apache Kafka 4.4 jars), linger.ms=5 batch.size=131072",
    "machine": {"cores": os.cpu_count(), "kernel": platform.release()}, "runs": runs,
}
with open(f"{results}/results.json", "w") as out:
    json.dump(document, out, indent=2)
rows = ["| broker | phase | records/s | MiB/s | p50 ms | p99 ms | p99.9 ms | max ms | durability |",
        "|---|---|---|---|---|---|---|---|---|"]
for run in runs.values():
    r = run["result"]
    rows.append(f"| {run['broker']} | {run['phase']} | {r['records_per_sec']:,.0f} | {r['mib_per_sec']:.1f} | "
                f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['p999_ms']:.0f} | {r['max_ms']:.0f} | {run['durability']} |")
text = (f"# Replicated produce, {commit}\n\n{records} records of {size} B per run, {partitions} partitions, "
        "RF 3, min.insync.replicas=2, acks=all; one 3-node loopback cluster at a time on this machine "
        f"({os.cpu_count()} cores shared by the producer and the three nodes).\n\n" + "\n".join(rows) + "\n")
with open(f"{results}/summary.md", "w") as out:
    out.write(text)
print(text)
EOF
