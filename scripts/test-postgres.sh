#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL server for the tests, in a directory of its own, on
# a free loopback port, tuned for speed over durability (fsync off).
#
#   scripts/test-postgres.sh start DIR   prints the server's URL: postgres://postgres@127.0.0.1:PORT
#   scripts/test-postgres.sh stop DIR    stops the server and removes DIR
#
# scripts/test.sh starts one server for the whole run and hands its URL to the tests as
# PYLON_TEST_DATABASE_URL (each test creates its own database on it); a test run without that
# variable starts one server per test through this same script (see host/tests/it/pg.rs).
#
# PYLON_PG_EXTRA_OPTIONS adds server options (the scale-out bench loads pg_stat_statements).
#
# PostgreSQL refuses to run as root, so as root the server runs as the `postgres` system user
# (created by Debian's postgresql package) and DIR is handed to that user.
set -euo pipefail

usage() {
    echo "usage: $0 start|stop DIR" >&2
    exit 2
}
[ $# -eq 2 ] || usage
ACTION=$1
DIR=$2

# Debian installs the server binaries under /usr/lib/postgresql/<major>/bin, off PATH.
if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    BIN=$(dirname "$(command -v pg_ctl)")
else
    BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
if [ -z "$BIN" ] || [ ! -x "$BIN/pg_ctl" ]; then
    echo "error: PostgreSQL server binaries not found; run scripts/install-test-deps.sh" >&2
    exit 1
fi

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case "$ACTION" in
start)
    mkdir -p "$DIR"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$DIR"
    fi
    as_owner "$BIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --no-sync \
        >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; exit 1; }
    # A random port, retried if taken: the server is the only reliable judge of "free".
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        PORT=$((20000 + RANDOM % 40000))
        if as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
            -o "-h 127.0.0.1 -p $PORT -k $DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 ${PYLON_PG_EXTRA_OPTIONS:-}" \
            start >/dev/null; then
            echo "postgres://postgres@127.0.0.1:$PORT"
            exit 0
        fi
    done
    cat "$DIR/server.log" >&2
    exit 1
    ;;
stop)
    if [ -d "$DIR/data" ]; then
        as_owner "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$DIR"
    ;;
*)
    usage
    ;;
esac
