#!/usr/bin/env bash
# Runs every Skua test: formatting, lints (warnings are errors), and the whole workspace's tests,
# including the engine's seeded fuzzer and real-file crash tests. Installs nothing by hand:
# anything a test needs is set up by this script.
#
#   scripts/test.sh            # what CI runs
#   SKUA_FUZZ_SEEDS=20000 scripts/test.sh   # the long fuzz mode
#   SEED=1234 cargo test -p skua-engine --test fuzz -- --nocapture   # replay one fuzz seed
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust with rustup (https://rustup.rs) first" >&2
    exit 1
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy

step "test dependencies (real Kafka clients)"
scripts/test-deps.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo test"
mkdir -p target
set +e
RUSTFLAGS="${RUSTFLAGS:-} -D warnings" cargo test --workspace --release 2>&1 | tee target/test-output.log
status=${PIPESTATUS[0]}
set -e
passed=$(awk '/^test result:/ { sum += $4 } END { print sum + 0 }' target/test-output.log)
failed=$(awk '/^test result:/ { sum += $6 } END { print sum + 0 }' target/test-output.log)
echo
echo "summary: $passed passed, $failed failed"
exit "$status"
