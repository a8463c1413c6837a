//! The HTTP API. [`app`] builds the whole router from the application state; `main` only
//! wires configuration to it.

pub mod alerts;
pub mod connections;
pub mod error;
pub mod extract;
pub mod feeds;
pub mod metrics;
pub mod openapi;
pub mod platforms;
pub mod resources;
pub mod tokens;

use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::Router;
use error::{ApiError, InternalErrorDetail};
use tower_http::trace::TraceLayer;

/// The complete application router.
pub fn app(state: AppState) -> Router {
    let body_limit = state.settings.max_body_bytes;
    // This router's request series: counted by the layer below, served by `/metrics`.
    let http_metrics = crate::metrics::HttpMetrics::default();
    Router::new()
        .merge(platforms::router())
        .merge(tokens::router())
        .merge(connections::router())
        .merge(resources::router())
        .merge(feeds::router())
        .merge(alerts::router())
        .merge(openapi::router())
        .merge(metrics::router(http_metrics.clone()))
        .merge(crate::ui::router())
        // The assistant surface: MCP over streamable HTTP, behind the same auth middleware.
        .route_service("/mcp", crate::mcp::http_service(&state))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        // Route layers run after routing, so the auth middleware sees the matched route.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authorize,
        ))
        .layer(middleware::map_response(log_internal_errors))
        // Outside the auth layer so 401s and 403s are counted; `Router::layer` wraps each
        // route after routing, so the matched route pattern is known (see `record_http`).
        .layer(middleware::from_fn_with_state(
            http_metrics,
            metrics::record_http,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn fallback() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Logs the detail of a 500 that the response itself hides.
async fn log_internal_errors(response: Response) -> Response {
    if let Some(InternalErrorDetail(detail)) = response.extensions().get::<InternalErrorDetail>() {
        tracing::error!(error = %detail, "request failed with an internal error");
    }
    response.into_response()
}
