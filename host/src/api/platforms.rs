//! `GET /api/platforms`, `/healthz` and `/readyz`.

use super::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use pylon_core::{PlatformDescriptor, Registry};
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/platforms", get(platforms))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn platforms(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    serde_json::to_value(descriptors(&state.registry))
        .map(Json)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Every registered provider's descriptor, in registry order: what `GET /api/platforms`
/// and the MCP `list_platforms` tool answer.
pub fn descriptors(registry: &Registry) -> Vec<&'static PlatformDescriptor> {
    registry
        .providers()
        .iter()
        .map(|p| p.descriptor())
        .collect()
}

/// Liveness: the process answers.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the store answers.
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "reason": "database unreachable" })),
            )
        }
    }
}
