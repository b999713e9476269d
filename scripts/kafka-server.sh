#!/usr/bin/env bash
# Apache Kafka, the reference broker, from the Maven jars (scripts/kafka-jars.sh), on loopback:
# one KRaft node (broker + controller) with its data under target/kafka-<port>/, or an N-node
# KRaft cluster in combined mode under target/kafka-cluster/.
#
#   scripts/kafka-server.sh start [PORT] [key=value ...]   # default port 29192; waits until it serves
#   scripts/kafka-server.sh stop [PORT]                    # SIGTERM by pid, then SIGKILL after 30 s
#
#   scripts/kafka-server.sh cluster-start [N] [key=value ...]  # N nodes (default 3), formatted, serving
#   scripts/kafka-server.sh cluster-status                 # per node: pid, ports, alive (exit 1 if one is not)
#   scripts/kafka-server.sh cluster-stop                   # SIGTERM every node, SIGKILL after 30 s
#   scripts/kafka-server.sh cluster-start-node ID          # restart one node (after a kill), keeping its data
#
# Extra key=value pairs go into server.properties (e.g. log.flush.interval.messages=1 for a
# Kafka that fsyncs every message). Defaults are Kafka's, plus what a single node needs
# (replication factors 1) and group.initial.rebalance.delay.ms=0 as in Kafka's sample config.
#
# The cluster: node i (1..N) serves clients on 127.0.0.(10+i):KAFKA_CLUSTER_PORT+2(i-1) (default
# 127.0.0.11:49300, 127.0.0.12:49302, ...) and its controller on the next port. Keys and timeouts
# (BROKER_SESSION_TIMEOUT_MS, BROKER_HEARTBEAT_INTERVAL_MS, QUORUM_ELECTION_TIMEOUT_MS,
# QUORUM_FETCH_TIMEOUT_MS) come from scripts/cluster-keys.sh, shared with Skua's scripts/cluster.sh.
# Node i keeps node-<i>/server.properties, data/, kafka.log and pid under KAFKA_CLUSTER_DIR
# (default target/kafka-cluster).
# The quorum is static (controller.quorum.voters, every node a voter) and every node is formatted
# with `kafka-storage format --cluster-id <one id> --config <node's file>`: Kafka 4.4 still supports
# it, and it is what Skua parses. Its dynamic quorum (KIP-853) would instead need
# controller.quorum.bootstrap.servers and `format --initial-controllers id@host:port:directory-id,...`
# with a directory id chosen per node; format refuses --initial-controllers when voters are set.
set -euo pipefail
cd "$(dirname "$0")/.."

command=${1:-}
port=${2:-29192}
controller_port=$((port + 1))
dir="$PWD/target/kafka-$port"
pidfile="$dir/kafka.pid"

# shellcheck source=scripts/cluster-keys.sh
. scripts/cluster-keys.sh
cluster_port=${KAFKA_CLUSTER_PORT:-49300}
cluster_dir=${KAFKA_CLUSTER_DIR:-$PWD/target/kafka-cluster}
start_wait_s=120

# node_launch ID: starts node ID from its formatted directory, appending to its kafka.log.
node_launch() {
    local node="$cluster_dir/node-$1"
    nohup java -Xms1g -Xmx1g -XX:+UseG1GC -cp "$libs/*" kafka.Kafka "$node/server.properties" \
        >>"$node/kafka.log" 2>&1 &
    echo $! >"$node/pid"
}

# node_wait ID LOG_LINE: waits until node ID logs "Kafka Server started" after line LOG_LINE of its log.
node_wait() {
    local node="$cluster_dir/node-$1" from=$(($2 + 1))
    for _ in $(seq $((start_wait_s * 10))); do
        if tail -n +"$from" "$node/kafka.log" 2>/dev/null | grep -q "Kafka Server started"; then
            return 0
        fi
        if ! cluster_pid_alive "$(cat "$node/pid")"; then
            echo "kafka-server: node $1 exited; its log:" >&2
            tail -40 "$node/kafka.log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "kafka-server: node $1 did not start within $start_wait_s s; see $node/kafka.log" >&2
    return 1
}

node_count() { cat "$cluster_dir/nodes" 2>/dev/null || echo 0; }

# stop_cluster: SIGTERM every node at once (a node stopping alone after the others would wait for
# a quorum that is gone), then SIGKILL whatever is left after 30 s.
stop_cluster() {
    local id pid pids=()
    for id in $(seq "$(node_count)"); do
        pid=$(cat "$cluster_dir/node-$id/pid" 2>/dev/null) || continue
        kill "$pid" 2>/dev/null && pids+=("$pid")
    done
    for pid in "${pids[@]}"; do
        cluster_wait_gone "$pid" 30 || { echo "kafka-server: pid $pid ignored SIGTERM for 30 s: SIGKILL" >&2; kill -9 "$pid" 2>/dev/null || true; }
    done
    rm -f "$cluster_dir"/node-*/pid
}

case "$command" in
start)
    shift $(($# >= 2 ? 2 : $#))
    libs=$(scripts/kafka-jars.sh)
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "kafka-server: already running on port $port (pid $(cat "$pidfile"))" >&2
        exit 1
    fi
    rm -rf "$dir"
    mkdir -p "$dir/data"
    {
        echo "process.roles=broker,controller"
        echo "node.id=1"
        echo "controller.quorum.voters=1@127.0.0.1:$controller_port"
        echo "listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port"
        echo "advertised.listeners=PLAINTEXT://127.0.0.1:$port"
        echo "controller.listener.names=CONTROLLER"
        echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        echo "log.dirs=$dir/data"
        echo "offsets.topic.replication.factor=1"
        echo "transaction.state.log.replication.factor=1"
        echo "transaction.state.log.min.isr=1"
        echo "group.initial.rebalance.delay.ms=0"
        for setting in "$@"; do echo "$setting"; done
    } >"$dir/server.properties"
    cluster_id=$(java -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
    java -cp "$libs/*" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" \
        >"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; exit 1; }
    nohup java -Xms1g -Xmx1g -XX:+UseG1GC -cp "$libs/*" kafka.Kafka "$dir/server.properties" \
        >"$dir/kafka.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 600); do
        if grep -q "Kafka Server started" "$dir/kafka.log" 2>/dev/null; then
            echo "kafka-server: Apache Kafka serving on 127.0.0.1:$port (pid $(cat "$pidfile"), data $dir/data)" >&2
            exit 0
        fi
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "kafka-server: Kafka exited; its log:" >&2
            tail -40 "$dir/kafka.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "kafka-server: Kafka did not start within 60 s; see $dir/kafka.log" >&2
    exit 1
    ;;
stop)
    [ -f "$pidfile" ] || { echo "kafka-server: nothing running on port $port" >&2; exit 0; }
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
    echo "kafka-server: stopped (port $port)" >&2
    ;;
cluster-start)
    count=${2:-3}
    shift $(($# >= 2 ? 2 : $#))
    libs=$(scripts/kafka-jars.sh)
    for id in $(seq "$(node_count)"); do
        if cluster_pid_alive "$(cat "$cluster_dir/node-$id/pid" 2>/dev/null)"; then
            echo "kafka-server: the cluster in $cluster_dir is running (node $id); cluster-stop first" >&2
            exit 1
        fi
    done
    rm -rf "$cluster_dir"
    mkdir -p "$cluster_dir"
    cluster_id=$(java -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
    echo "$cluster_id" >"$cluster_dir/cluster-id"
    echo "$count" >"$cluster_dir/nodes"
    for id in $(seq "$count"); do
        node="$cluster_dir/node-$id"
        mkdir -p "$node/data"
        {
            cluster_node_keys "$cluster_port" "$count" "$id" "$node/data"
            echo "transaction.state.log.replication.factor=$((count < 3 ? count : 3))"
            echo "transaction.state.log.min.isr=$((count < 2 ? count : 2))"
            echo "group.initial.rebalance.delay.ms=0"
            for setting in "$@"; do echo "$setting"; done
        } >"$node/server.properties"
        # Static quorum: the same cluster id everywhere and no --initial-controllers.
        java -cp "$libs/*" kafka.tools.StorageTool format --cluster-id "$cluster_id" --config "$node/server.properties" \
            >"$node/format.log" 2>&1 || { cat "$node/format.log" >&2; exit 1; }
    done
    # Every node first, then the waits: a broker serves only once the quorum has a leader.
    for id in $(seq "$count"); do node_launch "$id"; done
    for id in $(seq "$count"); do node_wait "$id" 0 || { stop_cluster; exit 1; }; done
    echo "kafka-server: $count-node Apache Kafka cluster $cluster_id serving on" \
        "$(for id in $(seq "$count"); do printf '%s:%s ' "$(cluster_host "$id")" "$(cluster_client_port "$cluster_port" "$id")"; done)(data $cluster_dir)" >&2
    ;;
cluster-start-node)
    id=${2:?cluster-start-node ID}
    node="$cluster_dir/node-$id"
    [ -f "$node/server.properties" ] || { echo "kafka-server: no node $id in $cluster_dir" >&2; exit 1; }
    if cluster_pid_alive "$(cat "$node/pid")"; then
        echo "kafka-server: node $id is running (pid $(cat "$node/pid"))" >&2
        exit 1
    fi
    libs=$(scripts/kafka-jars.sh)
    lines=$(wc -l <"$node/kafka.log")
    node_launch "$id"
    node_wait "$id" "$lines" || exit 1
    echo "kafka-server: node $id serving again on $(cluster_host "$id"):$(cluster_client_port "$cluster_port" "$id") (pid $(cat "$node/pid"))" >&2
    ;;
cluster-status)
    count=$(node_count)
    [ "$count" -gt 0 ] || { echo "kafka-server: no cluster in $cluster_dir" >&2; exit 1; }
    all_alive=0
    for id in $(seq "$count"); do
        pid=$(cat "$cluster_dir/node-$id/pid" 2>/dev/null || echo -)
        state=dead
        if [ "$pid" != - ] && cluster_pid_alive "$pid"; then state=alive; else all_alive=1; fi
        echo "node $id: pid $pid, client $(cluster_host "$id"):$(cluster_client_port "$cluster_port" "$id")," \
            "controller $(cluster_host "$id"):$(cluster_controller_port "$cluster_port" "$id"), $state"
    done
    exit "$all_alive"
    ;;
cluster-stop)
    count=$(node_count)
    [ "$count" -gt 0 ] || { echo "kafka-server: no cluster in $cluster_dir" >&2; exit 0; }
    stop_cluster
    echo "kafka-server: cluster stopped ($cluster_dir)" >&2
    ;;
*)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
