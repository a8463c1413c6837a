//! Test support for Pylon: a real vCenter simulator and other network targets.
//!
//! # The simulator
//!
//! [`Simulator::start`] runs the govmomi vCenter simulator (govmomi 0.24 from Debian's
//! `golang-github-vmware-govmomi-dev`, Go source under `/usr/share/gocode`) through a small
//! Go launcher, `go/main.go`, on `https://127.0.0.1:<free port>/sdk`. The launcher prints
//! one JSON line (URL, CA, leaf fingerprint and the inventory counted from the
//! simulator's own registry) and serves until its stdin closes, so the simulator also
//! dies with the test process.
//!
//! **Why the certificate is our own.** Left alone, the simulator serves Go's built-in
//! test certificate: RSA-1024 and flagged as a CA. rustls refuses it even when its
//! fingerprint is pinned, because it cannot verify a handshake signature made with a
//! 1024-bit key, and real vCenters use 2048-bit keys or more. So the launcher makes a
//! throwaway test CA at start-up and an RSA-2048 leaf for the requested SANs
//! (`127.0.0.1` by default) signed by it, and hands it to the simulator through
//! `model.Service.TLS` before `NewServer()`. Tests trust [`Simulator::ca_pem`] (see
//! [`tls_config_trusting`]), pin [`Simulator::leaf_sha256`], or trust neither to get an
//! unknown-CA failure; a SAN list without `127.0.0.1` gives a hostname mismatch.
//!
//! **How the launcher binary is cached.** [`launcher_path`] builds `go/main.go` (embedded
//! in this crate) with `GOPATH=/usr/share/gocode GO111MODULE=off` into
//! `$CARGO_TARGET_DIR/pylon-vcsim/pylon-vcsim-<hash of main.go>` (`<workspace>/target/...`
//! without `CARGO_TARGET_DIR`), with `GOCACHE` next to it. A changed `main.go` gets a new
//! file name; an existing file is reused. cargo-nextest runs every test in its own
//! process, so one process builds while the others wait on a lock directory, and the
//! binary is written to a unique temporary file and renamed into place, so no process
//! ever sees half a binary. `PYLON_VCSIM_BIN` points at a prebuilt launcher instead, and
//! `cargo run -p pylon-vcsim --bin pylon-vcsim-build` (run by
//! `scripts/install-test-deps.sh`) builds it ahead of the tests.
//!
//! # Other targets
//!
//! For failure classification: [`closed_port`] (nothing listens), [`HungServer`]
//! (accepts and never answers), [`HttpServer`] (one canned HTTP response) and
//! [`FaultProxy`] (plain-HTTP SOAP proxy to a simulator that injects a fault for one
//! method). All of them bind `127.0.0.1` only and stop when dropped.
//!
//! Everything here panics on failure, with a message that says what went wrong: this
//! crate is only used by tests.

mod launcher;
mod proxy;
mod server;
mod simulator;
mod targets;
mod tls;

#[cfg(test)]
mod tests;

pub use launcher::launcher_path;
pub use proxy::{FaultProxy, FaultResponse, FaultRule};
pub use simulator::{Inventory, Mode, Simulator, SimulatorOptions};
pub use targets::{closed_port, HttpServer, HungServer};
pub use tls::tls_config_trusting;
