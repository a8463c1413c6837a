//! `GET /openapi.json`: the OpenAPI 3.1 document, generated per request from the registered
//! providers by [`crate::schema::openapi`] (the same generator `pylon schema` writes with).

use super::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi))
}

async fn openapi(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    crate::schema::openapi(&state.registry)
        .map(Json)
        .map_err(|e| ApiError::Internal(e.to_string()))
}
