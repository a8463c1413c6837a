#!/usr/bin/env bash
# Installs what Pylon's tests need beyond Rust (the govmomi simulator's Go sources, PostgreSQL,
# Chromium and Node.js for the admin UI's browser tests, and the pinned npm packages under tests/e2e), then
# builds the vCenter simulator launcher once so that parallel tests find it ready. Safe to run
# repeatedly: it installs only what is missing and reuses a launcher that is already built.
#
# Needs Debian or Ubuntu (apt-get); uses sudo only when not root.
# Honours CARGO_TARGET_DIR like cargo does (the launcher lives in $CARGO_TARGET_DIR/pylon-vcsim).
set -euo pipefail

cd "$(dirname "$0")/.."

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo)
fi

APT_UPDATED=0
apt_install() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        "${SUDO[@]}" apt-get update
        APT_UPDATED=1
    fi
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

PACKAGES=()

# The govmomi vCenter simulator: Go and govmomi 0.24's sources under /usr/share/gocode.
if ! command -v go >/dev/null 2>&1 \
    || [ ! -d /usr/share/gocode/src/github.com/vmware/govmomi/simulator ]; then
    PACKAGES+=(golang-go golang-github-vmware-govmomi-dev)
fi

# The admin UI's browser tests: Debian's Chromium (the tests launch /usr/bin/chromium) and
# Node.js with npm for playwright-core, which drives it.
if [ ! -x /usr/bin/chromium ] || ! command -v chromedriver >/dev/null 2>&1; then
    PACKAGES+=(chromium chromium-driver)
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    PACKAGES+=(nodejs npm)
fi

# PostgreSQL for the store suite and the scale-out tests (scripts/test-postgres.sh runs a
# throwaway server). Debian keeps initdb and pg_ctl in /usr/lib/postgresql/<major>/bin, off
# PATH; the package also creates the `postgres` user the server runs as when we are root.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    PACKAGES+=(postgresql)
fi

if [ "${#PACKAGES[@]}" -gt 0 ]; then
    apt_install "${PACKAGES[@]}"
fi

# playwright-core for the browser tests, exactly as tests/e2e/package-lock.json pins it. A
# stamp of the lock file's hash inside node_modules skips `npm ci` when nothing changed.
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
if [ "$NODE_MAJOR" -lt 20 ]; then
    echo "error: Node.js $(node --version) is too old: playwright-core needs Node.js 20 or later." >&2
    echo "       Install a newer nodejs package (Debian 13 ships 20) and run this script again." >&2
    exit 1
fi
E2E=tests/e2e
LOCK_SUM=$(sha256sum "$E2E/package-lock.json" | cut -d' ' -f1)
STAMP="$E2E/node_modules/.pylon-lock-sha256"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$LOCK_SUM" ]; then
    (cd "$E2E" && npm ci --no-audit --no-fund)
    echo "$LOCK_SUM" >"$STAMP"
fi

# Build (or find) the simulator launcher through the same code the tests use.
cargo run --quiet -p pylon-vcsim --bin pylon-vcsim-build
