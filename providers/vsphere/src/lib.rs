//! Pylon provider for VMware vSphere: read-only access to a vCenter Server over the vSphere
//! Web Services (SOAP) API at `/sdk`.
//!
//! This crate is the connection-admission half: it validates and normalises connection
//! drafts (`config`), builds TLS per connection (`tls`), talks to vCenter through vim_rs's
//! generated bindings on a transport of its own (`soap`, `client`), and classifies every
//! failure into Pylon's one failure vocabulary (`classify`). [`VsphereProvider`] ties these
//! into [`pylon_core::Provider`] (`provider`).
//!
//! Architecture invariant: the crate knows nothing of HTTP routes, storage or the host;
//! generated vSphere binding types never leave it.

mod classify;
mod client;
mod config;
mod conformance;
mod descriptor;
mod feeds;
#[doc(hidden)]
pub mod floor;
pub(crate) mod inventory;
mod poll;
pub(crate) mod project;
mod provider;
mod soap;
mod tls;

pub use descriptor::DESCRIPTOR;

/// A boxed, `Send` future. The provider's trait methods await one of these instead of
/// their bodies directly; see the note in `provider.rs` on why (compile time).
pub(crate) type BoxFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
pub use provider::VsphereProvider;

pylon_core::inventory::submit! {
    pylon_core::ProviderRegistration::new(|| Box::new(VsphereProvider::default()))
        .with_conformance(conformance::fixture)
}
