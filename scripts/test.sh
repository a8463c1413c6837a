#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests need (the
# govmomi vCenter simulator's and PostgreSQL's Debian packages), starts one throwaway
# PostgreSQL server for the run (each test makes its own database on it; stopped at the end,
# also on failure), then runs the suite with cargo-nextest.
# Build output is kept outside the checkout so repeated runs (and fresh clones) reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pylon-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

scripts/install-test-deps.sh

PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pylon-test-pg.XXXXXX")
trap 'scripts/test-postgres.sh stop "$PG_DIR"' EXIT
PYLON_TEST_DATABASE_URL=$(scripts/test-postgres.sh start "$PG_DIR")
export PYLON_TEST_DATABASE_URL

cargo nextest run --workspace --no-fail-fast
