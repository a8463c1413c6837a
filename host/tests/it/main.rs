//! Host integration tests: the HTTP API through `Router::oneshot` on a temporary SQLite
//! file, a few over a real socket, and the `pylon` binary itself. vCenter behaviour comes
//! from the real govmomi simulator (`pylon-vcsim`).

mod alerts;
mod auth;
mod binary;
mod conformance;
mod connections;
mod feeds_metrics;
mod file_provider;
mod history;
mod leases;
mod mcp;
mod persistence;
mod pg;
mod polling;
mod prometheus;
mod resources;
mod scale_out;
mod schema;
mod secrets;
mod store;
mod support;
mod testing;
mod tokens;
mod ui;
mod ui_browser;
