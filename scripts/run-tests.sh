#!/usr/bin/env bash
# Runs the workspace's test binaries SKUA_TEST_JOBS at a time (default 2), the slowest first, each
# from its package's directory as `cargo test` would run it. Most of their time is spent waiting
# on brokers, clients and timeouts, so two binaries side by side take about half the wall time of
# `cargo test`'s one after the other (each binary still runs its own tests two at a time).
#
#   scripts/run-tests.sh                 # every test binary (release build; builds what is missing)
#   scripts/run-tests.sh some_name       # arguments go to every binary (a test name filter here)
#   SKUA_TEST_JOBS=1 scripts/run-tests.sh   # one binary at a time, as cargo test does
#
# Each binary's output goes to target/test-logs/<binary>.log and is printed whole when it ends
# (never interleaved); then the doc tests run; the last line sums every `test result:` line.
# Exits non-zero if any binary failed, after all of them ran (the failing ones are named last).
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=${SKUA_TEST_JOBS:-2}
logs=target/test-logs
rm -rf "$logs"
mkdir -p "$logs"

# The slowest integration-test binaries, slowest first (from CI logs), so that the queues end
# together.
slow_first=(cluster groups_python groups_kafka_cli kafka_cli_cluster kafka_cli python_clients python_restart record_validation
    kcat against_netd topic_lifecycle)

# name <tab> executable <tab> package directory, one line per test binary, slowest first.
RUSTFLAGS="${RUSTFLAGS:-} -D warnings" cargo test --workspace --release --no-run --message-format=json-render-diagnostics \
    | jq -r 'select(.reason == "compiler-artifact" and .profile.test and .executable != null)
             | [.target.name, .target.kind[0], .executable, (.manifest_path | rtrimstr("/Cargo.toml"))] | @tsv' \
    | while IFS=$'\t' read -r name kind executable dir; do
        rank=100
        for index in "${!slow_first[@]}"; do
            [ "$kind" = test ] && [ "${slow_first[$index]}" = "$name" ] && rank=$index
        done
        printf '%03d\t%s\t%s\t%s\n' "$rank" "$name" "$executable" "$dir"
    done | sort -n | cut -f2- >"$logs/binaries.tsv"

run_one() {
    local name=$1 executable=$2 dir=$3
    local args=()
    mapfile -d '' args <"$logs/args"
    local log
    log="$logs/$(basename "$executable").log"
    local started=$SECONDS status=0
    (cd "$dir" && "$executable" "${args[@]}") >"$log" 2>&1 || status=$?
    echo "$status" >"$log.status"
    # One whole log at a time on the terminal.
    flock "$logs/.print" sh -c 'printf "\n     Running %s (%s, %d s, exit %d)\n" "$1" "$2" "$3" "$4"; cat "$5"' \
        _ "$name" "$(basename "$executable")" "$((SECONDS - started))" "$status" "$log"
}
export -f run_one
export logs

# The caller's arguments, for every binary.
if [ $# -gt 0 ]; then printf '%s\0' "$@"; fi >"$logs/args"
count=$(wc -l <"$logs/binaries.tsv")
echo "run-tests: $count test binaries, $jobs at a time (logs in $logs/)"
# xargs runs one binary per three fields; it never stops early.
while IFS=$'\t' read -r name executable dir; do
    printf '%s\0%s\0%s\0' "$name" "$executable" "$dir"
done <"$logs/binaries.tsv" | xargs -0 -n 3 -P "$jobs" bash -c 'run_one "$@"' _ || true

echo
echo "     Doc-tests"
doc_status=0
RUSTFLAGS="${RUSTFLAGS:-} -D warnings" cargo test --workspace --release --doc "$@" 2>&1 | tee "$logs/doc-tests.log" || doc_status=$?

failed_binaries=()
for status_file in "$logs"/*.log.status; do
    [ "$(cat "$status_file")" = 0 ] || failed_binaries+=("$(basename "$status_file" .log.status)")
done
[ "$doc_status" = 0 ] || failed_binaries+=("doc tests")
ran=$(ls "$logs"/*.log.status 2>/dev/null | wc -l)
passed=$(cat "$logs"/*.log | awk '/^test result:/ { sum += $4 } END { print sum + 0 }')
failed=$(cat "$logs"/*.log | awk '/^test result:/ { sum += $6 } END { print sum + 0 }')
echo
if [ "$ran" -ne "$count" ]; then
    echo "run-tests: only $ran of $count test binaries ran" >&2
    failed_binaries+=("$((count - ran)) binaries that never ran")
fi
echo "summary: $passed passed, $failed failed"
if [ ${#failed_binaries[@]} -gt 0 ]; then
    echo "failed: ${failed_binaries[*]}" >&2
    exit 1
fi
