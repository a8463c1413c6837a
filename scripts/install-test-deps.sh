#!/usr/bin/env bash
# Installs what Pylon's tests need beyond Rust, then builds the vCenter simulator launcher
# once so that parallel tests find it ready. Safe to run repeatedly: it installs only what
# is missing and reuses a launcher that is already built.
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

# --- More test dependencies go here (checked the same way, added to PACKAGES). ---
# Chromium (admin UI tests): e.g. command -v chromium || PACKAGES+=(chromium)
# PostgreSQL (store tests):   e.g. command -v pg_ctl  || PACKAGES+=(postgresql)
# -------------------------------------------------------------------------------

if [ "${#PACKAGES[@]}" -gt 0 ]; then
    apt_install "${PACKAGES[@]}"
fi

# Build (or find) the simulator launcher through the same code the tests use.
cargo run --quiet -p pylon-vcsim --bin pylon-vcsim-build
