#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests need (the
# govmomi vCenter simulator's and PostgreSQL's Debian packages), starts one throwaway
# PostgreSQL server for the run (each test makes its own database on it; stopped at the end,
# also on failure), then runs the suite with cargo-nextest, and the host's API tests a second
# time on PostgreSQL.
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

status=0
cargo nextest run --workspace --no-fail-fast || status=$?

# The host's API tests once more with every TestApp on PostgreSQL, so each API answers the
# same on both stores. Left out: what already runs on both (store, leases, scale_out) and the
# browser tests (they exercise the UI, not the store).
PYLON_TEST_STORE=postgres cargo nextest run --workspace --no-fail-fast \
    -E 'package(pylon-host) and binary(it) and not test(/^(store|leases|scale_out|ui_browser)::/)' \
    || status=$?
exit "$status"
