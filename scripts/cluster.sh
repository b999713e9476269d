#!/usr/bin/env bash
# A Skua cluster on loopback: N netd nodes in KRaft combined mode (process.roles=broker,controller),
# configured with Kafka's own keys and timeouts, the same as scripts/kafka-server.sh cluster-start
# gives Apache Kafka (both take them from scripts/cluster-keys.sh).
#
#   scripts/cluster.sh start [N] [key=value ...]   # N nodes (default 3); waits until each listens
#   scripts/cluster.sh status                      # per node: pid, ports, alive (exit 1 if one is not)
#   scripts/cluster.sh stop                        # SIGTERM every node, SIGKILL after STOP_TIMEOUT_S
#   scripts/cluster.sh start-node ID               # restart one node (after a kill), keeping its data
#
# Node i (1..N) serves clients on 127.0.0.(10+i):CLUSTER_PORT+2(i-1) (default 127.0.0.11:49400,
# 127.0.0.12:49402, ...) and the controller quorum on the next port. Under CLUSTER_DIR (default
# ./cluster-run in the current directory) node i keeps node-<i>/server.properties, data/,
# netd.log, pid and port (the port netd writes once it listens, --port-file). Extra key=value
# pairs go into every server.properties.
# Environment: NETD (default target/release/netd of this repository), CLUSTER_PORT, CLUSTER_DIR,
# STOP_TIMEOUT_S (30), START_TIMEOUT_S (60), and the timeouts BROKER_SESSION_TIMEOUT_MS,
# BROKER_HEARTBEAT_INTERVAL_MS, QUORUM_ELECTION_TIMEOUT_MS, QUORUM_FETCH_TIMEOUT_MS (Kafka's
# defaults when unset; see scripts/cluster-keys.sh).
set -euo pipefail
# The run directory is relative to where the script is called from, the binary to the repository.
cluster_dir=$(realpath -m "${CLUSTER_DIR:-$PWD/cluster-run}")
repository=$(cd "$(dirname "$0")/.." && pwd)
netd=$(realpath -m "${NETD:-$repository/target/release/netd}")
cluster_port=${CLUSTER_PORT:-49400}
stop_timeout_s=${STOP_TIMEOUT_S:-30}
start_timeout_s=${START_TIMEOUT_S:-60}
# shellcheck source=scripts/cluster-keys.sh
. "$repository/scripts/cluster-keys.sh"

node_count() { cat "$cluster_dir/nodes" 2>/dev/null || echo 0; }

node_pid() { cat "$cluster_dir/node-$1/pid" 2>/dev/null || echo -; }

node_alive() {
    local pid
    pid=$(node_pid "$1")
    [ "$pid" != - ] && cluster_pid_alive "$pid"
}

# node_launch ID: starts netd for node ID, appending to its netd.log.
node_launch() {
    local node="$cluster_dir/node-$1"
    rm -f "$node/port"
    echo "--- $(date -u +%FT%TZ) cluster.sh: starting node $1: $netd -c $node/server.properties" >>"$node/netd.log"
    nohup "$netd" -c "$node/server.properties" --port-file "$node/port" >>"$node/netd.log" 2>&1 &
    echo $! >"$node/pid"
}

# node_wait ID: waits until node ID has written its port file; on failure shows its log's tail.
node_wait() {
    local node="$cluster_dir/node-$1" pid status
    pid=$(node_pid "$1")
    for _ in $(seq $((start_timeout_s * 10))); do
        [ -s "$node/port" ] && return 0
        if ! cluster_pid_alive "$pid"; then
            status=0
            wait "$pid" 2>/dev/null || status=$?
            echo "cluster: node $1 exited (status $status) before listening ($netd); the end of $node/netd.log:" >&2
            # This start's lines only, without anyhow's backtrace (RUST_BACKTRACE=1), which would
            # push netd's own message out of the tail.
            awk '/^--- .* cluster.sh: starting node/ { section = "" } { section = section $0 "\n" } END { printf "%s", section }' \
                "$node/netd.log" | sed '/^Stack backtrace:/,$d' | tail -20 | sed 's/^/    /' >&2
            return 1
        fi
        sleep 0.1
    done
    echo "cluster: node $1 wrote no port file within $start_timeout_s s; see $node/netd.log" >&2
    return 1
}

# stop_nodes ID...: SIGTERM all at once (a node stopping alone after the others would wait for a
# quorum that is gone), then SIGKILL whatever is left after STOP_TIMEOUT_S.
stop_nodes() {
    local id pid pids=()
    for id in "$@"; do
        pid=$(node_pid "$id")
        [ "$pid" != - ] && kill "$pid" 2>/dev/null && pids+=("$pid")
        rm -f "$cluster_dir/node-$id/pid"
    done
    for pid in "${pids[@]}"; do
        if ! cluster_wait_gone "$pid" "$stop_timeout_s"; then
            echo "cluster: pid $pid still running $stop_timeout_s s after SIGTERM: SIGKILL" >&2
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
}

command=${1:-}
case "$command" in
start)
    count=${2:-3}
    shift $(($# >= 2 ? 2 : $#))
    [[ "$count" =~ ^[1-9][0-9]*$ ]] || { echo "cluster: N must be a positive number, not '$count'" >&2; exit 2; }
    [ -x "$netd" ] || { echo "cluster: no netd at $netd: cargo build --release -p skua-netd, or set NETD" >&2; exit 1; }
    for id in $(seq "$(node_count)"); do
        if node_alive "$id"; then
            echo "cluster: node $id of $cluster_dir is running (pid $(node_pid "$id")); stop the cluster first" >&2
            exit 1
        fi
    done
    rm -rf "$cluster_dir"
    mkdir -p "$cluster_dir"
    echo "$count" >"$cluster_dir/nodes"
    for id in $(seq "$count"); do
        node="$cluster_dir/node-$id"
        mkdir -p "$node/data"
        {
            cluster_node_keys "$cluster_port" "$count" "$id" "$node/data"
            # The nodes share one machine: each gets its share of netd's default read cache (a
            # quarter of the memory), not the whole of it. A setting below overrides this.
            echo "skua.read.cache.bytes=$(( $(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) * 1024 / 4 / count ))"
            # Each node's metrics on its own loopback address (the default port, no clash).
            echo "skua.metrics.listener=http://$(cluster_host "$id"):9644"
            for setting in "$@"; do echo "$setting"; done
        } >"$node/server.properties"
    done
    # Every node first, then the waits: a node may wait for the quorum before it listens.
    for id in $(seq "$count"); do node_launch "$id"; done
    for id in $(seq "$count"); do
        if ! node_wait "$id"; then
            stop_nodes $(seq "$count")
            exit 1
        fi
    done
    echo "cluster: $count Skua nodes serving on" \
        "$(for id in $(seq "$count"); do printf '%s:%s ' "$(cluster_host "$id")" "$(cat "$cluster_dir/node-$id/port")"; done)(data $cluster_dir)" >&2
    ;;
start-node)
    id=${2:?start-node ID}
    [ -f "$cluster_dir/node-$id/server.properties" ] || { echo "cluster: no node $id in $cluster_dir" >&2; exit 1; }
    if node_alive "$id"; then
        echo "cluster: node $id is running (pid $(node_pid "$id"))" >&2
        exit 1
    fi
    node_launch "$id"
    node_wait "$id" || exit 1
    echo "cluster: node $id serving again on $(cluster_host "$id"):$(cat "$cluster_dir/node-$id/port") (pid $(node_pid "$id"))" >&2
    ;;
status)
    count=$(node_count)
    [ "$count" -gt 0 ] || { echo "cluster: no cluster in $cluster_dir" >&2; exit 1; }
    all_alive=0
    for id in $(seq "$count"); do
        state=dead
        if node_alive "$id"; then state=alive; else all_alive=1; fi
        echo "node $id: pid $(node_pid "$id"), client $(cluster_host "$id"):$(cluster_client_port "$cluster_port" "$id")" \
            "(bound: $(cat "$cluster_dir/node-$id/port" 2>/dev/null || echo none)), controller" \
            "$(cluster_host "$id"):$(cluster_controller_port "$cluster_port" "$id"), $state"
    done
    exit "$all_alive"
    ;;
stop)
    count=$(node_count)
    [ "$count" -gt 0 ] || { echo "cluster: no cluster in $cluster_dir" >&2; exit 0; }
    stop_nodes $(seq "$count")
    echo "cluster: stopped ($cluster_dir)" >&2
    ;;
*)
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
