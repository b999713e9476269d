#!/usr/bin/env bash
# Broker produce benchmark with Apache Kafka's own kafka-producer-perf-test (from the Maven
# jars): 1 KiB records, acks=all, 16 partitions, max rate. Runs the same load, one after the
# other on this machine, against
#   skua            netd, fsync before ack (its default), sampled with `perf record -e cpu-clock`
#   kafka           Apache Kafka 4.4 with its defaults (no fsync: the page cache acknowledges)
#   kafka-fsync     Apache Kafka with log.flush.interval.messages=1 (fsync every message batch)
# and writes results/<date>-<commit>/broker-produce.{json,md}.
#
#   scripts/bench-broker.sh                        # 2,000,000 records per broker (~2 GiB)
#   RECORDS=200000 scripts/bench-broker.sh         # a quick run
#   BROKERS=skua scripts/bench-broker.sh           # only some of: skua kafka kafka-fsync
#   NETD=/path/to/netd BROKERS=skua scripts/bench-broker.sh   # another netd build (before/after)
# Loopback only; each broker's data dir is removed after its run.
set -euo pipefail
cd "$(dirname "$0")/.."

records=${RECORDS:-2000000}
brokers=${BROKERS:-skua kafka kafka-fsync}
record_size=1024
partitions=16
# Below the ephemeral range (32768-60999): no outgoing connection from 127.0.0.1 can hold them.
skua_port=29292
kafka_port=29192

if ! command -v perf >/dev/null 2>&1; then
    echo "bench-broker: installing linux-perf (Debian package)" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends linux-perf >/dev/null
fi
kafka_libs=$(scripts/kafka-jars.sh)
netd=${NETD:-./target/release/netd}
[ -n "${NETD:-}" ] || cargo build --release -q -p skua-netd

commit=$(git rev-parse --short HEAD)
results="results/$(date -u +%Y-%m-%d)-$commit"
mkdir -p "$results"
work=target/bench-broker
rm -rf "$work"
mkdir -p "$work"

perf_tool() {
    java -Xmx1g -cp "$kafka_libs/*" org.apache.kafka.tools.ProducerPerformance "$@" 2>/dev/null
}

# load NAME PORT: warm-up (creates the topic), then the measured run.
load() {
    local name=$1 port=$2
    java -cp "$kafka_libs/*" org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$port" --create \
        --topic perf --partitions $partitions --replication-factor 1 >/dev/null 2>&1
    echo "bench-broker: $name: warm-up" >&2
    perf_tool --topic perf --num-records 20000 --record-size $record_size --throughput -1 \
        --producer-props "bootstrap.servers=127.0.0.1:$port" acks=all >/dev/null
    echo "bench-broker: $name: $records records of $record_size B, acks=all, max rate" >&2
    perf_tool --topic perf --num-records "$records" --record-size $record_size --throughput -1 \
        --producer-props "bootstrap.servers=127.0.0.1:$port" acks=all linger.ms=5 batch.size=131072 \
        | tee "$work/$name.txt" >&2
}

for broker in $brokers; do
    case "$broker" in
    skua)
        "$netd" --override "listeners=PLAINTEXT://127.0.0.1:$skua_port" \
            --override "log.dirs=$work/skua-data" >"$work/netd.log" 2>&1 &
        netd_pid=$!
        for _ in $(seq 100); do grep -q "all shards serving" "$work/netd.log" && break; sleep 0.1; done
        perf record -e cpu-clock -F 499 -g -p "$netd_pid" -o "$work/perf.data" >/dev/null 2>&1 &
        perf_pid=$!
        load skua $skua_port
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        kill "$netd_pid"; wait "$netd_pid" 2>/dev/null || true
        rm -rf "$work/skua-data"
        perf report -i "$work/perf.data" --no-children --sort symbol --stdio 2>/dev/null \
            | grep -E '^ +[0-9]' | head -25 | sed -E 's/ +- +- *$//; s/ +$//' | cut -c1-120 >"$work/profile.txt" || true
        perf report -i "$work/perf.data" --no-children --sort comm --stdio 2>/dev/null \
            | grep -E '^ +[0-9]' | head -8 | sed -E 's/ +$//' >"$work/threads.txt" || true
        ;;
    kafka | kafka-fsync)
        extra=()
        [ "$broker" = kafka-fsync ] && extra=(log.flush.interval.messages=1)
        scripts/kafka-server.sh start $kafka_port "${extra[@]}"
        load "$broker" $kafka_port
        scripts/kafka-server.sh stop $kafka_port
        rm -rf "target/kafka-$kafka_port/data"
        ;;
    *) echo "bench-broker: unknown broker $broker (skua, kafka, kafka-fsync)" >&2; exit 2 ;;
    esac
done

python3 - "$results" "$commit" "$records" "$record_size" "$partitions" "$work" $brokers <<'EOF'
import json, os, platform, re, sys
results, commit, records, size, partitions, work, *brokers = sys.argv[1:]
patterns = {
    "records": r"([0-9.]+) records sent", "records_per_sec": r"([0-9.]+) records/sec",
    "mib_per_sec": r"\(([0-9.]+) MB/sec\)", "avg_ms": r"([0-9.]+) ms avg latency",
    "max_ms": r"([0-9.]+) ms max latency", "p50_ms": r"([0-9.]+) ms 50th", "p95_ms": r"([0-9.]+) ms 95th",
    "p99_ms": r"([0-9.]+) ms 99th", "p999_ms": r"([0-9.]+) ms 99.9th",
}
durability = {
    "skua": "fsync before ack (default), direct writes, one shard per core",
    "kafka": "Kafka defaults: acknowledged from the page cache, no fsync",
    "kafka-fsync": "log.flush.interval.messages=1: fsync before ack",
}
runs = {}
for broker in brokers:
    summary = open(f"{work}/{broker}.txt").read().strip().splitlines()[-1]
    numbers = {}
    for name, pattern in patterns.items():
        found = re.search(pattern, summary)
        if not found:
            sys.exit(f"bench-broker: could not read {name} from {broker}'s summary: {summary!r}")
        numbers[name] = float(found.group(1))
    runs[broker] = {"durability": durability[broker], "result": numbers, "tool_summary": summary}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
facts = {"commit": commit, "kernel": platform.release(), "cpu": cpu, "cores": os.cpu_count()}
settings = {"records": int(records), "record_bytes": int(size), "partitions": int(partitions), "acks": "all",
            "linger_ms": 5, "batch_size": 131072, "throughput": "max"}
json.dump({"benchmark": "broker-produce", "tool": "kafka-producer-perf-test (Apache Kafka 4.4.0 jars)",
           "settings": settings, "run": facts, "brokers": runs}, open(f"{results}/broker-produce.json", "w"), indent=2)
with open(f"{results}/broker-produce.md", "w") as out:
    out.write(f"# Broker produce benchmark ({commit})\n\n")
    out.write(f"{cpu}, {facts['cores']} cores, kernel {facts['kernel']}. kafka-producer-perf-test from the Kafka 4.4.0 jars, "
              f"{records} records of {size} B per broker, acks=all, linger.ms=5, batch.size=128 KiB, {partitions} partitions, "
              "max rate; producer and broker share the 2 cores; brokers run one after the other.\n\n")
    out.write("| broker | durability | records/s | MiB/s | avg ms | p50 ms | p99 ms | p99.9 ms | max ms |\n")
    out.write("|---|---|---|---|---|---|---|---|---|\n")
    for broker, run in runs.items():
        n = run["result"]
        out.write(f"| {broker} | {run['durability']} | {n['records_per_sec']:.0f} | {n['mib_per_sec']:.1f} | {n['avg_ms']:.1f} | "
                  f"{n['p50_ms']:.0f} | {n['p99_ms']:.0f} | {n['p999_ms']:.0f} | {n['max_ms']:.0f} |\n")
    if os.path.exists(f"{work}/threads.txt"):
        out.write("\n## Where netd's CPU time goes (perf record -e cpu-clock), by thread\n\n```\n" + open(f"{work}/threads.txt").read() + "```\n")
        out.write("\n## Top symbols\n\n```\n" + open(f"{work}/profile.txt").read() + "```\n")
print(open(f"{results}/broker-produce.md").read())
EOF
