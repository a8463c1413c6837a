#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests need (the
# govmomi vCenter simulator's Debian packages), then runs the suite with cargo-nextest.
# Build output is kept outside the checkout so repeated runs (and fresh clones) reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pylon-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

scripts/install-test-deps.sh

cargo nextest run --workspace --no-fail-fast
