//! The contract every provider implements.
//!
//! The host drives a provider through four steps: [`Provider::validate`] normalises a draft,
//! [`Provider::test`] checks that a configuration can reach the platform,
//! [`Provider::connect`] opens a long-lived [`ProviderSession`] whose
//! [`ProviderSession::poll`] returns an [`Observation`], and [`Provider::project`] turns that
//! observation into canonical resources. Poll and projection are pure provider concerns; the
//! host stores and serves what `project` returns.

use crate::descriptor::PlatformDescriptor;
use crate::draft::{ConnectionConfig, FieldErrors};
use crate::failure::ProviderError;
use crate::feeds::{FeedCursor, Feeds};
use crate::model::Projection;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::time::Duration;

/// The platform instance a connection reached, as reported by the platform itself.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SystemIdentity {
    pub name: String,
    pub product: String,
    pub version: String,
    pub build: String,
    pub instance_uuid: String,
}

/// Counts of the canonical resources a connection contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InventoryCounts {
    pub agents: u64,
    pub vms: u64,
    pub storage: u64,
}

/// What a successful connection test observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestReport {
    pub system: SystemIdentity,
    pub counts: InventoryCounts,
}

/// Limits for one connection test.
#[derive(Debug, Clone, Copy)]
pub struct TestContext {
    /// The whole test (connect, log in, read, log out) must finish within this time.
    pub timeout: Duration,
}

impl Default for TestContext {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(15),
        }
    }
}

/// A provider-native observation produced by one poll. The host treats it as opaque and
/// hands it back to the same provider's [`Provider::project`].
pub type Observation = Box<dyn Any + Send + Sync>;

/// A long-lived, authenticated session to one platform endpoint.
#[async_trait]
pub trait ProviderSession: Send + Sync {
    /// Collects the current state of the platform.
    async fn poll(&mut self) -> Result<Observation, ProviderError>;

    /// Ends the session (logs out). Safe to call more than once.
    async fn close(&mut self);

    /// Hands a new session the cursor stored with the connection's last recorded feeds, before
    /// its first poll, so it continues where the previous session stopped (see
    /// [`crate::feeds`]). Sessions without feeds ignore it.
    fn resume(&mut self, cursor: &FeedCursor) {
        let _ = cursor;
    }

    /// Reads what the feeds (history, performance samples) brought since the previous call.
    /// The host calls it after a successful [`ProviderSession::poll`] has been recorded, so a
    /// slow or failing feed never delays or fails the inventory, and hands the result to
    /// [`Provider::project_feeds`]. What a feed cannot read belongs in `Feeds::issues`; an
    /// error here means the session itself is broken. Sessions without feeds keep the default.
    async fn poll_feeds(&mut self) -> Result<Observation, ProviderError> {
        Ok(Box::new(()))
    }
}

/// A platform provider. One instance serves every connection of its platform, so it holds
/// no per-connection state; sessions do.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The provider's static self-description.
    fn descriptor(&self) -> &'static PlatformDescriptor;

    /// Normalises the provider's own fields in place (for example a host name with a scheme
    /// and port) and reports provider-specific field errors. Generic checks (types, bounds,
    /// required fields, unknown fields) have already run in [`crate::draft::apply_draft`].
    fn validate(&self, config: &mut ConnectionConfig) -> Result<(), FieldErrors>;

    /// Connects, authenticates, reads the platform identity and inventory counts, and
    /// disconnects. Every failure is classified.
    async fn test(
        &self,
        config: &ConnectionConfig,
        context: &TestContext,
    ) -> Result<TestReport, ProviderError>;

    /// Opens a long-lived session for polling.
    async fn connect(
        &self,
        config: &ConnectionConfig,
    ) -> Result<Box<dyn ProviderSession>, ProviderError>;

    /// Projects an observation into canonical resources. Pure: no I/O.
    fn project(
        &self,
        connection_id: &str,
        observation: &Observation,
    ) -> Result<Projection, ProviderError>;

    /// Whether `observation` saw nothing change since the same session's previous one, so
    /// the host may keep the previous projection instead of projecting again (for vSphere,
    /// `WaitForUpdatesEx` answered with no update). A hint: `false` is always correct, and
    /// the host only uses it when it holds a projection from that session.
    fn unchanged(&self, observation: &Observation) -> bool {
        let _ = observation;
        false
    }

    /// The history records and performance samples of a [`ProviderSession::poll_feeds`]
    /// observation (`feeds`), with resource ids from the same projection rules as
    /// [`Provider::project`] applied to the inventory observation of the same poll
    /// (`inventory`). Called after every successful poll, including unchanged ones (a quiet
    /// inventory still has new samples). Pure: no I/O.
    fn project_feeds(
        &self,
        connection_id: &str,
        inventory: &Observation,
        feeds: &Observation,
    ) -> Result<Feeds, ProviderError> {
        let _ = (connection_id, inventory, feeds);
        Ok(Feeds::default())
    }
}
