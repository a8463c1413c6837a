//! Shared application state handed to every handler.

use crate::lease::LeaseCoordinator;
use crate::scheduler::PollScheduler;
use crate::secrets::SecretBox;
use crate::store::Store;
use pylon_core::Registry;
use std::sync::Arc;
use std::time::Duration;

/// Request-independent settings the handlers need.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Upper bound of one connection test.
    pub test_timeout: Duration,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub registry: Arc<Registry>,
    pub secrets: Arc<SecretBox>,
    pub settings: Arc<ApiSettings>,
    pub scheduler: Arc<PollScheduler>,
    /// With several replicas (PostgreSQL): this replica's lease loop.
    pub lease: Option<Arc<LeaseCoordinator>>,
}
