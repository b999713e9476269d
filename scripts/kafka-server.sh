#!/usr/bin/env bash
# Apache Kafka, the reference broker: a single KRaft node (broker + controller) from the Maven
# jars (scripts/kafka-jars.sh), on loopback, with its data under target/kafka-<port>/.
#
#   scripts/kafka-server.sh start [PORT] [key=value ...]   # default port 49192; waits until it serves
#   scripts/kafka-server.sh stop [PORT]                    # SIGTERM by pid, then SIGKILL after 30 s
#
# Extra key=value pairs go into server.properties (e.g. log.flush.interval.messages=1 for a
# Kafka that fsyncs every message). Defaults are Kafka's, plus what a single node needs
# (replication factors 1) and group.initial.rebalance.delay.ms=0 as in Kafka's sample config.
set -euo pipefail
cd "$(dirname "$0")/.."

command=${1:-}
port=${2:-49192}
controller_port=$((port + 1))
dir="$PWD/target/kafka-$port"
pidfile="$dir/kafka.pid"

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
*)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
