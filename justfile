# Pylon tasks. `just` is optional: each recipe is a plain command you can also run by hand.

# Run the server on embedded SQLite (data in ./data).
run:
    cargo run -p pylon-host --bin pylon -- serve

# Install test dependencies and run every test (what CI runs).
test:
    ./scripts/test.sh

# Format and lint.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

fmt:
    cargo fmt --all

# Benchmark: 5,000-VM simulator against a release `pylon` (numbers in docs/performance.md).
bench:
    ./scripts/bench.sh

# History ingest into the real SQLite store: 10,000 events, a replay, and page latency.
bench-history:
    cargo run --release -p pylon-bench --bin pylon-bench-history

# Scale-out: 100 connections across 3 replicas on a throwaway PostgreSQL (docs/scale-out.md).
bench-scale-out:
    cargo build -p pylon-host -p pylon-bench --bin pylon --bin pylon-bench-scale-out
    "${CARGO_TARGET_DIR:-target}/debug/pylon-bench-scale-out"
