//! `GET /metrics`: the Prometheus exposition (see [`crate::metrics`]). No auth: it names
//! connections by id only and carries nothing secret.

use super::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let mut connections = Vec::new();
    for provider in state.registry.providers() {
        connections.extend(
            state
                .store
                .list_connections(provider.descriptor().platform)
                .await?,
        );
    }
    let active_alerts = state.store.active_alert_counts().await?;
    let body = crate::metrics::render(state.scheduler.metrics(), &connections, &active_alerts);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    ))
}
