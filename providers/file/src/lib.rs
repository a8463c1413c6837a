//! Pylon provider for a static inventory file: agents, VMs and storage read from a JSON file
//! on the Pylon server (format: `docs/file-provider.md`), re-read on every poll. Useful for
//! demos, UI tests and as the smallest complete example of a provider.
//!
//! `format` defines and checks the file, `read` reads it without blocking the runtime and
//! classifies failures, `project` turns it into canonical resources, `provider` ties them
//! into [`pylon_core::Provider`], and `conformance` is the fixture the registration names.
//!
//! Architecture invariant: the crate knows nothing of HTTP routes, storage or the host.

mod conformance;
mod descriptor;
mod format;
mod project;
mod provider;
mod read;

pub use descriptor::DESCRIPTOR;
pub use provider::FileProvider;

pylon_core::inventory::submit! {
    pylon_core::ProviderRegistration::new(|| Box::new(FileProvider::default()))
        .with_conformance(conformance::fixture)
}
