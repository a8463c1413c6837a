//! `GET /api/alerts`: the alerts the store derived from what each poll reported, open and
//! resolved, filtered and paged in the order they opened.

use super::error::ApiError;
use super::resources::{page_params, split_page};
use crate::state::AppState;
use crate::store::{AlertQuery, Store, StoreError};
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use pylon_core::model::{Alert, AlertSeverity, AlertState};
use pylon_core::FieldErrors;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::HashMap;

/// One page of `/api/alerts`, oldest alert first.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertPage {
    pub items: Vec<Alert>,
    /// Pass as `cursor` to read the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/alerts", get(list))
}

async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<AlertPage>, ApiError> {
    let mut errors = FieldErrors::new();
    for key in params.keys() {
        if !matches!(
            key.as_str(),
            "state" | "severity" | "connection" | "resource" | "limit" | "cursor"
        ) {
            errors.add(key.clone(), "unknown query parameter");
        }
    }
    let alert_state = params.get("state").and_then(|text| {
        let parsed = AlertState::parse(text);
        if parsed.is_none() {
            errors.add("state", "must be one of active, resolved");
        }
        parsed
    });
    let severity = params.get("severity").and_then(|text| {
        let parsed = AlertSeverity::parse(text);
        if parsed.is_none() {
            errors.add("severity", "must be one of critical, warning, info");
        }
        parsed
    });
    let (limit, after) = page_params(&params, &mut errors);
    errors.into_result().map_err(ApiError::Validation)?;
    let query = AlertQuery {
        state: alert_state,
        severity,
        connection_id: params.get("connection").cloned(),
        resource_id: params.get("resource").cloned(),
        after,
        limit,
    };
    Ok(Json(alert_page(state.store.as_ref(), query).await?))
}

/// One page of alerts matching `query` (whose `limit` is the page size), oldest first: the
/// one store read behind `GET /api/alerts` and the MCP `list_alerts` tool.
pub async fn alert_page(store: &dyn Store, query: AlertQuery) -> Result<AlertPage, StoreError> {
    let limit = query.limit;
    // One more than asked tells whether another page exists.
    let items = store
        .list_alerts(&AlertQuery {
            limit: limit + 1,
            ..query
        })
        .await?;
    let (items, next_cursor) = split_page(items, limit, |item| item.id.clone());
    Ok(AlertPage { items, next_cursor })
}
