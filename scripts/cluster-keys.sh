# shellcheck shell=bash
# Sourced by scripts/kafka-server.sh (Apache Kafka) and scripts/cluster.sh (Skua): the KRaft keys
# of one node of an N-node loopback cluster in combined mode, so that both brokers run with the
# same keys, the same quorum and the same timeouts. Not a command of its own.
#
# Node ids are 1..N. Node i listens on its own loopback address 127.0.0.(10+i), for clients on
# port BASE+2(i-1) (PLAINTEXT) and for the other controllers on the next one (CONTROLLER). Not on
# 127.0.0.1: these ports lie in Linux's ephemeral range (32768-60999), and while a node is down an
# outgoing connection from 127.0.0.1 may take its port, which it then could not bind on restart
# (seen with Kafka: "Socket server failed to bind ... Address already in use"). Outgoing
# connections on loopback leave from 127.0.0.1, so an address of its own keeps the port free.
# The quorum is static: every node is a voter, listed in controller.quorum.voters (Kafka's
# kraft.version 0; see kafka-server.sh for why).
# CLUSTER_HOST_PREFIX (default 127.0.0.) moves the nodes to PREFIX(10+i): the fault suite puts each
# node in a network namespace of its own on 10.x.y.(10+i) (scripts/faults/netns.sh).
#
# Timeouts, from the environment (Kafka 4.4's defaults when unset), written into every node:
#   BROKER_SESSION_TIMEOUT_MS       broker.session.timeout.ms              9000
#   BROKER_HEARTBEAT_INTERVAL_MS    broker.heartbeat.interval.ms           2000
#   QUORUM_ELECTION_TIMEOUT_MS      controller.quorum.election.timeout.ms  1000
#   QUORUM_FETCH_TIMEOUT_MS         controller.quorum.fetch.timeout.ms     2000

# cluster_host ID: node ID's loopback address.
cluster_host() { echo "${CLUSTER_HOST_PREFIX:-127.0.0.}$((10 + $1))"; }

# cluster_client_port BASE ID
cluster_client_port() { echo $(($1 + 2 * ($2 - 1))); }

# cluster_controller_port BASE ID
cluster_controller_port() { echo $(($1 + 2 * ($2 - 1) + 1)); }

# cluster_voters BASE N: 1@127.0.0.11:port,2@127.0.0.12:port,...
cluster_voters() {
    local base=$1 count=$2 id voters=""
    for id in $(seq "$count"); do
        voters="$voters${voters:+,}$id@$(cluster_host "$id"):$(cluster_controller_port "$base" "$id")"
    done
    echo "$voters"
}

# cluster_node_keys BASE N ID LOG_DIR: the node's server.properties lines shared by both brokers.
cluster_node_keys() {
    local base=$1 count=$2 id=$3 log_dir=$4
    local host client_port controller_port replication
    host=$(cluster_host "$id")
    client_port=$(cluster_client_port "$base" "$id")
    controller_port=$(cluster_controller_port "$base" "$id")
    # The internal topics' replication, as Kafka's defaults (3) where the cluster has 3 nodes.
    replication=$((count < 3 ? count : 3))
    echo "process.roles=broker,controller"
    echo "node.id=$id"
    echo "controller.quorum.voters=$(cluster_voters "$base" "$count")"
    echo "listeners=PLAINTEXT://$host:$client_port,CONTROLLER://$host:$controller_port"
    echo "advertised.listeners=PLAINTEXT://$host:$client_port"
    echo "controller.listener.names=CONTROLLER"
    echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    echo "log.dirs=$log_dir"
    echo "offsets.topic.replication.factor=$replication"
    echo "broker.session.timeout.ms=${BROKER_SESSION_TIMEOUT_MS:-9000}"
    echo "broker.heartbeat.interval.ms=${BROKER_HEARTBEAT_INTERVAL_MS:-2000}"
    echo "controller.quorum.election.timeout.ms=${QUORUM_ELECTION_TIMEOUT_MS:-1000}"
    echo "controller.quorum.fetch.timeout.ms=${QUORUM_FETCH_TIMEOUT_MS:-2000}"
}

# cluster_pid_alive PID: the process runs. A SIGKILLed node can linger for a moment as a zombie
# (its parent, the shell that started it, is gone, and PID 1 reaps it when it gets to it), which
# `kill -0` still finds: that counts as gone.
cluster_pid_alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$state" ] && [ "$state" != Z ]
}

# cluster_wait_gone PID SECONDS: waits for PID to exit; returns 1 if it is still alive after.
cluster_wait_gone() {
    local pid=$1 seconds=$2
    for _ in $(seq $((seconds * 10))); do
        cluster_pid_alive "$pid" || return 0
        sleep 0.1
    done
    ! cluster_pid_alive "$pid"
}
