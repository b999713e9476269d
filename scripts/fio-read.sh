#!/usr/bin/env bash
# The disk's sequential read rate, for the read-back benchmark (`bench --suite read-back`): fio
# reads a 2 GiB file under target/bench with O_DIRECT, 1 MiB blocks, 8 in flight (io_uring), for
# FIO_SECONDS (default 10), and prints fio's JSON report on stdout. Installs fio from Debian when
# it is missing. The file is written once (fio lays it out) and removed afterwards.
#
#   scripts/fio-read.sh | python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["read"]["bw_bytes"])'
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
if ! command -v fio >/dev/null 2>&1; then
    echo "fio-read: installing fio (Debian package)" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends fio >/dev/null
fi
dir=target/bench
mkdir -p "$dir"
file="$dir/fio-read.dat"
trap 'rm -f "$file"' EXIT
fio --name=sequential-read --filename="$file" --size=2G --rw=read --bs=1M --direct=1 \
    --ioengine=io_uring --iodepth=8 --time_based --runtime="${FIO_SECONDS:-10}" \
    --output-format=json
