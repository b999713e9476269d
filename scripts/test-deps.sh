#!/usr/bin/env bash
# Installs what the end-to-end tests drive: real Kafka clients. Idempotent and quiet when
# everything is already there. Needs root (or sudo) for apt-get.
set -euo pipefail

need_apt=()
command -v kcat >/dev/null 2>&1 || need_apt+=(kcat)

if [ ${#need_apt[@]} -gt 0 ]; then
    echo "test-deps: installing ${need_apt[*]} (Debian packages)"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
echo "test-deps: kcat $(kcat -V 2>&1 | head -1)"
