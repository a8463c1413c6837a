//! `pylon-host`: the `pylon` process. It owns everything stateful: the HTTP API, the store,
//! secrets at rest, API tokens and (later) the poll scheduler and UI.
//!
//! Architecture invariant: only this crate defines HTTP request/response types and SQL; it
//! talks to providers solely through `pylon_core::Provider`, so it never names a platform.
//! The one exception is the link line below that pulls each provider crate into the binary.

// Link every provider crate so its `inventory` registration is kept by the linker.
use pylon_file as _;
use pylon_vsphere as _;

pub mod api;
pub mod auth;
pub mod bootstrap;
pub mod config;
pub mod lease;
pub mod mcp;
pub mod metrics;
pub mod scheduler;
pub mod schema;
pub mod secrets;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod ui;

pub use api::app;
