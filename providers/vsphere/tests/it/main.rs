//! Integration tests of the vSphere provider at its crate boundary (`pylon_core::Provider`),
//! against the govmomi vCenter simulator and targets that fail in specific ways.
//!
//! One binary for the whole crate: the vSphere bindings are large, so every extra test
//! binary costs minutes of linking (GUIDE 6.1).

mod support;

mod connection_test;
mod history;
mod perf;
mod secrets;
mod session;
mod validation;
