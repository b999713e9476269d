#!/usr/bin/env bash
# Engine benchmark beside the disk's own limit: runs fio (installed from Debian if missing) on the
# same file system as the engine's data, then engine-bench, and writes everything to
# results/<date>-<commit>/ (fio.json raw, engine.json, engine.md with the fio figures appended).
#
#   scripts/bench-engine.sh            # full: 10 s cases, 60 s sustained run, 15 s fio jobs
#                                      # (fresh files, and overwrites of written files)
#   scripts/bench-engine.sh --quick    # smoke: 2 s cases
#   scripts/bench-engine.sh --keep-all # only fio's fdatasync job and the 30 s run without
#                                      # retention (needs ~40 GiB free): results/<...>/keep-all/
#   scripts/bench-engine.sh --goal     # the issue's goal, on a disk whose speed drifts: fio's
#                                      # fresh-file fdatasync job before and after each of two
#                                      # 60 s sustained runs (1 KiB x 16 partitions, direct,
#                                      # retention and recycling on) and a 30 s keep-all run:
#                                      # results/<...>/goal/
set -euo pipefail
cd "$(dirname "$0")/.."

quick=""
fio_seconds=15
keep_all=""
if [ "${1:-}" = "--quick" ]; then quick="--quick"; fio_seconds=3; fi
if [ "${1:-}" = "--keep-all" ]; then keep_all=1; fi
goal=""
if [ "${1:-}" = "--goal" ]; then goal=1; fi

if ! command -v fio >/dev/null 2>&1; then
    echo "bench-engine: installing fio (Debian package)" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends fio >/dev/null
fi

cargo build --release -q -p skua-bench --bin engine-bench
data=target/engine-bench
mkdir -p "$data"
results="results/$(date -u +%Y-%m-%d)-$(git rev-parse --short HEAD)"
mkdir -p "$results"

# The engine's pattern in fio: 16 jobs, each writing 64 KiB then fdatasync, on its own file.
FDATASYNC_JOB=(--bs=64K --ioengine=psync --numjobs=16 --fdatasync=1)

run_fio() { # name, extra args...
    local name=$1; shift
    echo "bench-engine: fio $name" >&2
    rm -f "$data"/fio.*
    fio --name="$name" --directory="$data" --filename_format='fio.$jobnum' --rw=write --direct=1 \
        --size=1G --time_based --runtime="$fio_seconds" --group_reporting --output-format=json "$@" \
        > "$results/fio-$name.json"
    rm -f "$data"/fio.*
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("%.0f" % (j["jobs"][0]["write"]["bw_bytes"]/1048576))' "$results/fio-$name.json"
}

if [ -n "$goal" ]; then
    results="$results/goal"
    mkdir -p "$results"
    fio_fresh() { run_fio "fdatasync-64K-16files-$1" "${FDATASYNC_JOB[@]}"; }
    before=$(fio_fresh round1-before)
    rows=""
    # Rounds 1 and 2: 60 s with retention (recycling); round 3: 30 s keeping everything (only new
    # files, like fio's job; skipped by engine-bench without 38 GiB free).
    for round in 1 2 3; do
        case=sustained-direct
        [ "$round" = 3 ] && case=keep-all
        ./target/release/engine-bench --dir "$data" --results "$results/round-$round" --only "$case"
        [ -s "$results/round-$round/engine.json" ] || continue
        engine=$(python3 -c 'import json,sys; print("%.0f" % json.load(open(sys.argv[1]))["cases"][0]["mib_per_second"])' \
            "$results/round-$round/engine.json")
        after=$(fio_fresh "round$round-after")
        share=$(python3 -c 'import sys; e,b,a=map(float,sys.argv[1:]); print("%.0f %%" % (100*e/((b+a)/2)))' "$engine" "$before" "$after")
        rows="$rows| $round ($case) | $before | $engine | $after | $share |"$'\n'
        before=$after
    done
    {
        echo "# Engine goal run — $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD))"
        echo
        echo "Appends of 1 KiB batches x 16 partitions, direct, fsync before ack: 60 s sustained with retention"
        echo "256 MiB per partition and segment recycling (rounds 1, 2), 30 s keeping everything (round 3), each"
        echo "beside fio's O_DIRECT 64 KiB + fdatasync job on 16 new files (15 s) run just before and just after:"
        echo "this disk's speed drifts from minute to minute."
        echo
        echo "| round | fio before (MiB/s) | engine mean (MiB/s) | fio after (MiB/s) | engine / mean of the two fio runs |"
        echo "|---|---|---|---|---|"
        printf '%s' "$rows"
    } > "$results/goal.md"
    cat "$results/goal.md"
    exit 0
fi

if [ -n "$keep_all" ]; then
    results="$results/keep-all"
    mkdir -p "$results"
    sync_64k=$(run_fio fdatasync-64K-16files "${FDATASYNC_JOB[@]}")
    ./target/release/engine-bench --dir "$data" --results "$results" --only keep-all
    printf '\n| fio: O_DIRECT 64 KiB write + fdatasync, 16 files in parallel, same run | %s MiB/s |\n' "$sync_64k" \
        >> "$results/engine.md"
    cat "$results/engine.md"
    exit 0
fi

# The disk's raw O_DIRECT limit, large blocks, no syncs.
raw_1m=$(run_fio raw-1M-qd8 --bs=1M --ioengine=io_uring --iodepth=8)
# The engine's pattern: 16 partitions, 64 KiB written per partition per commit, each followed
# by fdatasync. 16 jobs each writing 64 KiB + fdatasync.
sync_64k=$(run_fio fdatasync-64K-16files "${FDATASYNC_JOB[@]}")
# The same over files already written once (fio lays them out first, then overwrites them):
# what a recycled segment gets, no block allocation or freeing behind each sync.
sync_64k_over=$(run_fio fdatasync-64K-16files-overwrite "${FDATASYNC_JOB[@]}" \
    --overwrite=1 --size=256M)
# Same block size without syncs, queue depth 16: what the device does with 64 KiB writes.
raw_64k=$(run_fio raw-64K-qd16 --bs=64K --ioengine=io_uring --iodepth=16)

./target/release/engine-bench $quick --dir "$data" --results "$results" "${@:2}"

{
    echo
    echo "## The disk's own limit, fio in the same run (MiB/s)"
    echo
    echo "| fio job | MiB/s |"
    echo "|---|---|"
    echo "| O_DIRECT sequential write, 1 MiB blocks, io_uring QD 8, no sync | $raw_1m |"
    echo "| O_DIRECT sequential write, 64 KiB blocks, io_uring QD 16, no sync | $raw_64k |"
    echo "| O_DIRECT 64 KiB write + fdatasync, 16 new files in parallel (the engine's pattern) | $sync_64k |"
    echo "| the same over 16 files already written (overwrites, as in recycled segments) | $sync_64k_over |"
} >> "$results/engine.md"
echo "bench-engine: results in $results" >&2
cat "$results/engine.md"
