#!/usr/bin/env bash
# `just bench`: builds a release `pylon` and the benchmark driver, then runs the 5,000-VM
# benchmark (see docs/performance.md). Needs the simulator's packages, which
# scripts/install-test-deps.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pylon-target}"
scripts/install-test-deps.sh
# Release output goes to its own directory so a long release build never holds the lock
# of the debug build directory that tests use.
BENCH_TARGET_DIR="${BENCH_TARGET_DIR:-$HOME/.cache/pylon-bench-target}"
# One invocation, so all binaries share one feature resolution and one build of vim_rs.
CARGO_TARGET_DIR="$BENCH_TARGET_DIR" cargo build --release -p pylon-host -p pylon-bench
# The simulator launcher is found through CARGO_TARGET_DIR (built above for the tests).
"$BENCH_TARGET_DIR/release/pylon-bench"
# Performance collection cycles (QueryPerf batches) against the same simulator shape.
"$BENCH_TARGET_DIR/release/pylon-bench-perf"
