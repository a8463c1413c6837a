//! `GET /metrics`: the Prometheus exposition (see [`crate::metrics`]), and [`record_http`],
//! the middleware that counts every request into it. No auth: it names connections by id
//! only and carries nothing secret.

use super::error::ApiError;
use crate::metrics::{HttpMetrics, ReplicaLeases, StoreGauges};
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use std::time::Instant;

/// The `/metrics` route. `http` is the same set of series [`record_http`] counts into, so
/// the exposition shows the requests this router answered.
pub fn router(http: HttpMetrics) -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .layer(Extension(http))
}

async fn metrics(
    State(state): State<AppState>,
    Extension(http): Extension<HttpMetrics>,
) -> Result<impl IntoResponse, ApiError> {
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
    let store = StoreGauges::new(&connections, &active_alerts);
    let leases = state.lease.as_deref().map(|lease| ReplicaLeases {
        replica_id: lease.replica_id().to_owned(),
        counts: lease.metrics().snapshot(),
    });
    let body = crate::metrics::render_replica(state.scheduler.metrics(), &http, store, leases)
        .map_err(|error| ApiError::Internal(format!("cannot encode the metrics: {error}")))?;
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body))
}

/// Counts a request and times it until its response head is ready (a streamed body is not
/// waited for). Added with `Router::layer`, which axum applies to each route after routing,
/// so [`MatchedPath`] is there for every matched route and absent only for the fallback.
pub async fn record_http(
    State(http): State<HttpMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    // The pattern (`/api/resources/{id}`), never the raw path: ids are no label values.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    http.record(
        &method,
        route.as_deref(),
        response.status(),
        started.elapsed(),
    );
    response
}
