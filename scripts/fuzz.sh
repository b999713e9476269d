#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz / libFuzzer) of the three places hostile bytes reach:
#   request_decode  a request frame through header and body decoding, every API and version
#   record_batch    a partition's records through batch validation
#   recovery_scan   a segment file through the engine's recovery on the simulated file system
#
#   scripts/fuzz.sh                 # every target for SKUA_FUZZ_SECONDS (default 60) each
#   scripts/fuzz.sh request_decode  # one target
#   SKUA_FUZZ_SECONDS=3600 scripts/fuzz.sh   # the long run
#   scripts/fuzz.sh --build-only   # install and build only (scripts/test.sh does this while the
#                                   # tests run, then a short pass after them)
#   SKUA_FUZZ_SANITIZER=none scripts/fuzz.sh  # without AddressSanitizer (faster to build; what the
#                                   # CI pass uses: the targets' code is safe Rust, ASan guards the
#                                   # unsafe parts and C code, so long runs keep it)
#   SKUA_FUZZ_PROFILE=dev scripts/fuzz.sh  # unoptimised, with debug assertions and overflow checks:
#                                   # builds in half the time (3 min instead of 6 here) and runs
#                                   # ~5x slower; what the 15-second CI pass uses
#
# Installs what it needs (a nightly toolchain, cargo-fuzz). Corpora grow under target/fuzz-corpus/
# from the seeds in fuzz/corpus/. One allocation past the decode bound is a crash: inputs are at
# most FUZZ_INPUT_BYTES_MAX bytes and libFuzzer's -malloc_limit_mb is the bound for that size
# (an array count may not exceed the bytes left, each element at most 1 KiB in memory); the other
# targets get the limits malloc_limit_mb gives. libFuzzer enforces these limits only with a
# sanitizer: the CI pass (SKUA_FUZZ_SANITIZER=none) leaves the decode bound to decode_bounds.rs.
# Prints one summary line per target; exits non-zero on any crash, leaving the input under
# fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${SKUA_FUZZ_SECONDS:-60}
sanitizer=${SKUA_FUZZ_SANITIZER:-address}
case "${SKUA_FUZZ_PROFILE:-release}" in
release) profile=(-O) ;;
dev) profile=(--dev) ;;
*)
    echo "fuzz: SKUA_FUZZ_PROFILE is release or dev" >&2
    exit 2
    ;;
esac
build_only=false
if [ "${1:-}" = "--build-only" ]; then
    build_only=true
    shift
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(request_decode record_batch recovery_scan)

FUZZ_INPUT_BYTES_MAX=4096
# The largest single allocation each target may make, in MiB (libFuzzer reports a larger one as
# a crash). request_decode: 4096 bytes x 1 KiB per byte + slack, the decode bound. record_batch:
# a zstd frame may declare a window up to libzstd's default limit of 128 MiB, which the decoder
# reserves (and fills only as far as the 64 MiB decompression cap lets it). recovery_scan: the
# engine's own buffers.
malloc_limit_mb() {
    case "$1" in
    request_decode) echo 5 ;;
    record_batch) echo 160 ;;
    *) echo 64 ;;
    esac
}

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: installing a nightly toolchain (cargo fuzz needs it)" >&2
    rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

echo "fuzz: building the targets (${SKUA_FUZZ_PROFILE:-release}, sanitizer: $sanitizer)" >&2
(cd fuzz && cargo +nightly fuzz build "${profile[@]}" -s "$sanitizer")
if $build_only; then
    exit 0
fi

status=0
for target in "${targets[@]}"; do
    corpus="target/fuzz-corpus/$target"
    mkdir -p "$corpus" "fuzz/artifacts/$target"
    [ -d "fuzz/corpus/$target" ] && cp -n fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null || true
    log="target/fuzz-$target.log"
    set +e
    (cd fuzz && cargo +nightly fuzz run "${profile[@]}" -s "$sanitizer" "$target" "../$corpus" -- \
        -max_total_time="$seconds" -max_len="$FUZZ_INPUT_BYTES_MAX" -malloc_limit_mb="$(malloc_limit_mb "$target")" \
        -rss_limit_mb=2048 -print_final_stats=1) >"$log" 2>&1
    result=$?
    set -e
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    crashes=$(ls "fuzz/artifacts/$target" 2>/dev/null | wc -l)
    echo "fuzz: $target: $runs executions in ${seconds}s, exit $result, $crashes inputs in fuzz/artifacts/$target"
    if [ "$result" -ne 0 ]; then
        grep -E 'ERROR|panicked|malloc\(|SUMMARY' "$log" | head -5 >&2
        status=1
    fi
done
exit $status
