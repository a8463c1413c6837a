//! `pylon-core`: the contract every Pylon provider implements and the logic every provider
//! shares.
//!
//! Architecture invariant: this crate knows nothing of HTTP, SQL or any particular platform.
//! It defines what a provider is ([`provider::Provider`]), how a connection draft is checked
//! ([`draft`]), the one failure vocabulary ([`failure::FailureCategory`]), the poll health state
//! machine ([`health`]), the canonical resource model ([`model`]) and the provider registry
//! ([`registry`]). Hosts and providers depend on it; it depends on neither.

pub mod descriptor;
pub mod draft;
pub mod failure;
pub mod feeds;
pub mod fixture;
pub mod health;
pub mod model;
pub mod provider;
pub mod registry;
pub mod secret;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use descriptor::{
    Capabilities, FieldKind, FieldSpec, IngestionMode, PlatformDescriptor, ReadinessStage,
    SupportLevel, SupportMatrix,
};
pub use draft::{ConnectionConfig, FieldErrors, SecretInput};
pub use failure::{FailureCategory, ProviderError};
pub use health::{HealthStatus, LastError, PollHealth};
pub use provider::{InventoryCounts, Provider, SystemIdentity, TestContext, TestReport};
pub use registry::{ProviderRegistration, Registry, RegistryError};
pub use secret::SecretString;

// Re-exported so a provider crate can register itself without naming `inventory` directly.
pub use inventory;
