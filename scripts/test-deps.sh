#!/usr/bin/env bash
# Installs what the end-to-end tests drive: real Kafka clients. Idempotent, cached, and quiet when
# everything is already there. Needs root (or sudo) for apt-get.
#   kcat                        Debian package (librdkafka)
#   confluent-kafka, kafka-python   PyPI, in the venv .cache/venv
#   Apache Kafka's jars (CLI tools)  Maven Central, in .cache/kafka-<version>/libs
#   g++                         Debian package, to build librdkafka for loadgen (no cmake, no curl)
#   prometheus, promtool         Debian package (netd/tests/metrics_prometheus.rs scrapes netd with it)
#   franz-go (netd/tests/go/groups)  the Go module proxy, in Go's module cache (needs Go 1.26+)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON_PACKAGES=("confluent-kafka==2.16.1" "kafka-python==3.0.12")

need_apt=()
command -v kcat >/dev/null 2>&1 || need_apt+=(kcat)
# The metrics test checks the exposition with promtool and queries a real Prometheus server.
{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || need_apt+=(prometheus)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
# loadgen builds librdkafka from source with its own configure (C and C++), zlib and zstd from
# their crates' bundled sources: a C and C++ compiler and make are all it needs.
command -v c++ >/dev/null 2>&1 || need_apt+=(g++)
command -v make >/dev/null 2>&1 || need_apt+=(make)

if [ ${#need_apt[@]} -gt 0 ]; then
    echo "test-deps: installing ${need_apt[*]} (Debian packages)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

venv=.cache/venv
stamp="$venv/.installed-$(printf '%s ' "${PYTHON_PACKAGES[@]}" | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    echo "test-deps: creating $venv with ${PYTHON_PACKAGES[*]}"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "${PYTHON_PACKAGES[@]}"
    touch "$stamp"
fi
kafka_libs=$(scripts/kafka-jars.sh)
go_modules="not downloaded (go not found: netd/tests/groups_franz.rs needs Go 1.26+)"
go_command=$(command -v go || { [ -x /usr/local/go/bin/go ] && echo /usr/local/go/bin/go; } || true)
if [ -n "$go_command" ]; then
    # Quiet and a no-op once the modules of go.sum are in the module cache.
    (cd netd/tests/go/groups && "$go_command" mod download)
    go_modules="$("$go_command" env GOVERSION), modules in $("$go_command" env GOMODCACHE)"
fi
echo "test-deps: franz-go for netd/tests/go/groups: $go_modules"
echo "test-deps: Apache Kafka jars in $kafka_libs"
echo "test-deps: $(prometheus --version 2>&1 | head -1)"
echo "test-deps: kcat $(kcat -V 2>&1 | head -1 | cut -d' ' -f2-), $("$venv/bin/python" -c 'import confluent_kafka, kafka; print("confluent-kafka", confluent_kafka.version(), "librdkafka", confluent_kafka.libversion()[0], "kafka-python", kafka.__version__)')"
