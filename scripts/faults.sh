#!/usr/bin/env bash
# Replication fault suite (issue 14): a 3-node loopback Skua cluster (scripts/cluster.sh, follower
# fetching on, min.insync.replicas=2), one topic with replication factor 3, an idempotent acks=all
# producer writing numbered records at a fixed rate and a live reader following the topic, while
# one fault at a time happens and the cluster heals before the next:
#   kill-leader      SIGKILL the leader of a partition, wait for a new leader, restart the node
#   stop-leader      SIGSTOP the leader of a partition past broker.session.timeout.ms, then SIGCONT
#   kill-controller  SIGKILL the active controller (the metadata quorum's leader), restart it
#   bounce-leader    SIGKILL the leader of a partition and restart it at once (within its session)
# Afterwards, every node up and the producer flushed, the checks: every acknowledged record is read
# back exactly once at its acknowledged offset (lost = misplaced = duplicated = 0); nothing the live
# reader read was later truncated; the high watermarks it saw never moved back; and, after a clean
# stop, every replica's segment bytes are identical over the range they all hold, each reaching the
# high watermark. docs/faults.md says more.
#
#   scripts/faults.sh                 # the long form: 50 cycles of the four kinds in turn
#   scripts/faults.sh --short         # CI: 3 cycles, kill-leader, stop-leader, kill-controller
#   scripts/faults.sh --cycles 20 --kinds kill-leader,stop-leader
# Options: --short | --long, --cycles N, --kinds K,K,... (taken in turn), --rate RECORDS_PER_S
# (default 500), --partitions P (default 3), --pause-s S (after each healed cycle),
# --max-in-flight N (the producer's requests in flight per connection, default 5 as librdkafka's;
# 1 avoids librdkafka's epoch bumps on a sequence gap behind a NOT_LEADER answer, which can write
# a record twice: docs/faults.md), --producer-acks 1 (experiments: a plain acks=1 producer, whose
# records a SIGKILLed leader may legitimately lose; see docs/faults.md), --keep (keep the nodes'
# data when the run passes; a failing run always keeps it), -h | --help.
# Environment: NETD (the broker; default $CARGO_TARGET_DIR/release/netd, else target/release/netd,
# built when missing), CLUSTER_PORT (default 49700), FAULTS_DIR (run directories, default
# target/faults), FAULTS_BROKER_SETTINGS (extra key=value ... for every node),
# FAULTS_PRODUCER_DEBUG (librdkafka debug contexts into producer.log; default eos, the idempotent
# producer's state changes, which explain a duplicate; empty for none), and cluster.sh's
# timeouts (BROKER_SESSION_TIMEOUT_MS ...; Kafka's defaults).
# Writes results/<date>-<commit>/faults/<mode>-<time>.json and summary.md (every run in that
# directory); the run's logs, delivery log, read log and cluster stay in FAULTS_DIR/<run>/.
# Exit: 0 every check passed; 1 a guarantee was broken (lost, misplaced or duplicated records, a
# truncated read, a high watermark moving back, replicas differing, a fatal producer error);
# 3 the run could not complete (the cluster did not heal, a check did not finish); 2 bad usage.
set -euo pipefail
usage() { sed -n '2,/^set -euo pipefail/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

mode=long
cycles=""
kinds=""
rate=500
partitions=3
max_in_flight=5
producer_acks=all
pause_s=""
keep=false
while [ $# -gt 0 ]; do
    case "$1" in
    -h | --help) usage; exit 0 ;;
    --short) mode=short ;;
    --long) mode=long ;;
    --cycles) cycles=${2:?--cycles N}; shift ;;
    --kinds) kinds=${2:?--kinds K,K,...}; shift ;;
    --rate) rate=${2:?--rate RECORDS_PER_S}; shift ;;
    --partitions) partitions=${2:?--partitions P}; shift ;;
    --pause-s) pause_s=${2:?--pause-s S}; shift ;;
    --max-in-flight) max_in_flight=${2:?--max-in-flight N}; shift ;;
    --producer-acks) producer_acks=${2:?--producer-acks all|1}; shift ;;
    --keep) keep=true ;;
    *) echo "faults: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$mode" = short ]; then
    cycles=${cycles:-3}
    pause_s=${pause_s:-1}
    kinds=${kinds:-kill-leader,stop-leader,kill-controller}
else
    cycles=${cycles:-50}
    pause_s=${pause_s:-3}
    kinds=${kinds:-kill-leader,stop-leader,kill-controller,bounce-leader}
fi
[[ "$cycles" =~ ^[0-9]+$ ]] || { echo "faults: --cycles takes a number, not '$cycles'" >&2; exit 2; }
[[ "$partitions" =~ ^[1-9][0-9]*$ ]] || { echo "faults: --partitions takes a positive number" >&2; exit 2; }

cd "$(dirname "$0")/.."
repository=$PWD
python=$repository/.cache/venv/bin/python
[ -x "$python" ] || scripts/test-deps.sh
if [ -z "${NETD:-}" ]; then
    NETD=${CARGO_TARGET_DIR:-$repository/target}/release/netd
    if [ ! -x "$NETD" ]; then
        echo "faults: building the broker (cargo build --release -p skua-netd)" >&2
        nice -n 19 cargo build --release -q -p skua-netd
    fi
fi
[ -x "$NETD" ] || { echo "faults: no broker at $NETD" >&2; exit 2; }
export NETD
export CLUSTER_PORT=${CLUSTER_PORT:-49700}
node_count=3
topic=faults
run=$mode-$(date -u +%Y%m%dT%H%M%SZ)
work=$(realpath -m "${FAULTS_DIR:-$repository/target/faults}/$run")
export CLUSTER_DIR=$work/cluster
mkdir -p "$work"
# shellcheck source=scripts/cluster-keys.sh
. scripts/cluster-keys.sh
nodes=$(for id in $(seq $node_count); do printf '%s=%s:%s\n' "$id" "$(cluster_host "$id")" "$(cluster_client_port "$CLUSTER_PORT" "$id")"; done | paste -sd,)
bootstrap=$(echo "$nodes" | sed 's/[0-9]*=//g')
session_timeout_ms=${BROKER_SESSION_TIMEOUT_MS:-9000}
# read -a: FAULTS_BROKER_SETTINGS is a list of key=value words.
read -r -a extra_settings <<<"${FAULTS_BROKER_SETTINGS:-}"
settings=(skua.replication.follower.fetch.enable=true min.insync.replicas=2 "${extra_settings[@]}")
# Bounds on the producer's and the reader's lives: the cycles at their slowest, and then some.
duration_s_max=$((600 + cycles * 400))
flush_timeout_s=90

now_ms() { echo $(($(date +%s%N) / 1000000)); }
started_ms=$(now_ms)
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
problems=()
producer_pid=""
tail_pid=""

# stop_process PID SECONDS: SIGTERM, then SIGKILL after SECONDS; true if it ended on its own.
stop_process() {
    local pid=$1 seconds=$2
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq $((seconds * 10))); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 1
}
cleanup() {
    [ -n "$producer_pid" ] && stop_process "$producer_pid" 5
    [ -n "$tail_pid" ] && stop_process "$tail_pid" 5
    # A node the run left stopped (SIGSTOP) would not see the SIGTERM.
    for id in $(seq $node_count); do
        pid=$(cat "$CLUSTER_DIR/node-$id/pid" 2>/dev/null || true)
        [ -n "$pid" ] && kill -CONT "$pid" 2>/dev/null || true
    done
    scripts/cluster.sh stop 2>>"$work/cluster.log" || true
}
trap cleanup EXIT

echo "faults: $mode form, $cycles cycles ($kinds), $rate records/s over $partitions partitions; run directory $work" >&2
if ! scripts/cluster.sh start $node_count "${settings[@]}" 2>>"$work/cluster.log"; then
    tail -20 "$work/cluster.log" >&2
    echo "faults: the cluster did not start; nothing checked" >&2
    exit 3
fi
"$python" scripts/faults/cycles.py setup --nodes "$nodes" --topic $topic --partitions "$partitions" \
    --replicas $node_count --min-insync 2 >"$work/topic.json"
setup_done_ms=$(now_ms)

"$python" scripts/faults/producer.py --bootstrap "$bootstrap" --topic $topic --partitions "$partitions" \
    --rate "$rate" --acks "$work/acks.tsv" --flush-timeout-s $flush_timeout_s --duration-s-max $duration_s_max \
    --max-in-flight "$max_in_flight" --required-acks "$producer_acks" --debug "${FAULTS_PRODUCER_DEBUG-eos}" \
    >"$work/producer.json" 2>"$work/producer.log" &
producer_pid=$!
"$python" scripts/faults/tail.py --bootstrap "$bootstrap" --topic $topic --partitions "$partitions" \
    --log "$work/tail.tsv" --duration-s-max $duration_s_max >"$work/tail.json" 2>"$work/tail.log" &
tail_pid=$!
sleep 3 # the producer under way before the first fault

cycles_status=0
"$python" scripts/faults/cycles.py run --nodes "$nodes" --topic $topic --partitions "$partitions" \
    --cycles "$cycles" --kinds "$kinds" --cluster-dir "$CLUSTER_DIR" --cluster-script "$repository/scripts/cluster.sh" \
    --session-timeout-ms "$session_timeout_ms" --pause-s "$pause_s" --out "$work/cycles.jsonl" \
    --acks "$work/acks.tsv" --producer-pid "$producer_pid" 2> >(tee "$work/cycles.log" >&2) || cycles_status=$?
cycles_done_ms=$(now_ms)
[ $cycles_status -eq 0 ] || problems+=("the fault cycles reported a problem (exit $cycles_status; see cycles.log)")

# Every node up again (a cycle that failed may have left one down), the cluster healed.
for id in $(seq $node_count); do
    pid=$(cat "$CLUSTER_DIR/node-$id/pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill -CONT "$pid" 2>/dev/null || true
    if [ -z "$pid" ] || ! cluster_pid_alive "$pid"; then
        echo "faults: node $id is down after the cycles: starting it" >&2
        scripts/cluster.sh start-node "$id" 2>>"$work/cluster.log" || problems+=("node $id did not start after the cycles")
    fi
done
if ! "$python" scripts/faults/cycles.py heal --nodes "$nodes" --topic $topic --cluster-dir "$CLUSTER_DIR"; then
    problems+=("the cluster did not heal after the cycles")
fi

# The producer stops and flushes (every record acknowledged or failed), then the reader.
echo "faults: stopping the producer (flushing for at most $flush_timeout_s s)" >&2
stop_process "$producer_pid" $((flush_timeout_s + 15)) || problems+=("the producer did not stop within $((flush_timeout_s + 15)) s")
producer_pid=""
[ -s "$work/producer.json" ] || problems+=("the producer reported no counts (see producer.log)")
sleep 2 # the reader reaches the end
stop_process "$tail_pid" 15 || problems+=("the live reader did not stop")
tail_pid=""
producer_done_ms=$(now_ms)

echo "faults: checking the records" >&2
"$python" scripts/faults/check.py records --bootstrap "$bootstrap" --topic $topic --partitions "$partitions" \
    --acks "$work/acks.tsv" --tail "$work/tail.tsv" --cycles "$work/cycles.jsonl" --out "$work/records.json" ||
    problems+=("the records check failed to run")
records_done_ms=$(now_ms)
scripts/cluster.sh stop 2>>"$work/cluster.log" || problems+=("the cluster did not stop cleanly")
echo "faults: checking the replicas' bytes" >&2
"$python" scripts/faults/check.py replicas --cluster-dir "$CLUSTER_DIR" --topic $topic --partitions "$partitions" \
    --nodes $node_count --records "$work/records.json" --out "$work/replicas.json" || problems+=("the replicas check failed to run")
finished_ms=$(now_ms)
trap - EXIT

seconds() { awk -v ms="$1" 'BEGIN { printf "%.1f", ms / 1000 }'; }
"$python" - "$work/phases.json" "${problems[@]}" <<EOF
import json, sys
json.dump({"problems": sys.argv[2:], "durations_s": {
    "total": $(seconds $((finished_ms - started_ms))), "setup": $(seconds $((setup_done_ms - started_ms))),
    "cycles": $(seconds $((cycles_done_ms - setup_done_ms))), "flush": $(seconds $((producer_done_ms - cycles_done_ms))),
    "check_records": $(seconds $((records_done_ms - producer_done_ms))),
    "check_replicas": $(seconds $((finished_ms - records_done_ms)))}}, open(sys.argv[1], "w"))
EOF
settings_json=$("$python" -c 'import json, sys; print(json.dumps({"mode": sys.argv[1], "cycles": int(sys.argv[2]),
    "kinds": sys.argv[3].split(","), "rate_per_s": float(sys.argv[4]), "partitions": int(sys.argv[5]), "nodes": 3,
    "replication_factor": 3, "broker_settings": sys.argv[6].split(), "broker.session.timeout.ms": int(sys.argv[7]),
    "pause_s": float(sys.argv[8]), "loadavg_at_start": sys.argv[9], "netd": sys.argv[10],
    "producer_max_in_flight": int(sys.argv[11]), "producer_acks": sys.argv[12]}))' \
    "$mode" "$cycles" "$kinds" "$rate" "$partitions" "${settings[*]}" "$session_timeout_ms" "$pause_s" "$load_at_start" "$NETD" \
    "$max_in_flight" "$producer_acks")
results="results/$(date -u +%Y-%m-%d)-$(git rev-parse --short HEAD)/faults"
status=0
"$python" scripts/faults/check.py report --work "$work" --results "$results" --name "$mode-$(date -u +%H%M%S)" \
    --settings "$settings_json" || status=$?
if [ $status -eq 0 ] && ! $keep; then
    rm -rf "$CLUSTER_DIR"/node-*/data # the logs stay
else
    echo "faults: the evidence stays in $work (cluster data, netd logs, acks.tsv, tail.tsv, records.json, replicas.json)" >&2
fi
exit $status
