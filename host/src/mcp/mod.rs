//! The assistant read surface: a Model Context Protocol server over the canonical model, so
//! any MCP-capable assistant can inspect what every provider projects.
//!
//! Two transports serve the same [`AssistantServer`]: stateless streamable HTTP at
//! `POST /mcp` on the API listener (bearer token with `monitoring:read`, checked by the
//! API's auth middleware like every route), and stdio for local assistants (`pylon mcp`,
//! acting with the configured `mcp_token`, see [`stdio`]).
//!
//! Read-only by construction: the server holds a [`ReadView`], which exposes only the
//! read functions the HTTP API itself answers with (resource and alert pages, one resource,
//! the redacted connection list, the platform descriptors). It holds no scheduler and no
//! provider, so no tool can poll, test, create or change anything, and connection secrets
//! only ever pass through the same redaction as `GET /api/{slug}/connections`.
//!
//! Architecture invariant: no tool is provider-specific; every answer is built from the
//! canonical model and the shared read functions in [`crate::api`].

mod server;
pub mod stdio;
mod tools;
mod view;

pub use server::AssistantServer;
pub use tools::{MAX_TOOL_PAGE, TOOL_NAMES};
pub use view::ReadView;

use crate::state::AppState;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::sync::Arc;

/// The service mounted at `POST /mcp`.
pub type McpHttpService = StreamableHttpService<AssistantServer, NeverSessionManager>;

/// The streamable HTTP transport for the API router.
///
/// Stateless, answering each POST with one JSON body: nothing to remember between requests,
/// no stream held open across a graceful shutdown, and every request passes the auth
/// middleware on its own. rmcp's `Host` allow-list (loopback only by default, against DNS
/// rebinding) is turned off because Pylon listens on whatever address it is configured
/// for, and a page rebound to it cannot supply the bearer token every request needs.
pub fn http_service(state: &AppState) -> McpHttpService {
    let server = AssistantServer::new(ReadView::from_state(state), server::Admission::Http);
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_sse_retry(None)
        .disable_allowed_hosts()
        .with_max_request_body_bytes(state.settings.max_body_bytes);
    StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}
