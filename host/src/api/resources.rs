//! `GET /api/resources` and `GET /api/resources/{id}`: the canonical resources every
//! provider projects, filtered and paged in stable id order.

use super::error::ApiError;
use crate::state::AppState;
use crate::store::{ResourceJson, ResourceQuery, Store, StoreError};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use pylon_core::model::{Resource, ResourceType};
use pylon_core::FieldErrors;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 1000;

/// One page of `/api/resources`, in stable id order.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourcePage {
    /// Resources as stored: the canonical resource, passed through as is.
    #[schemars(with = "Vec<Resource>")]
    pub items: Vec<Value>,
    /// Pass as `cursor` to read the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/resources", get(list))
        .route("/api/resources/{id}", get(one))
}

/// Reads `limit` and `cursor`, shared by every paged list.
pub fn page_params(
    params: &HashMap<String, String>,
    errors: &mut FieldErrors,
) -> (u32, Option<String>) {
    let limit = match params.get("limit") {
        None => DEFAULT_PAGE_SIZE,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                errors.add(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                );
                DEFAULT_PAGE_SIZE
            }
        },
    };
    let after = params
        .get("cursor")
        .filter(|c| !c.is_empty())
        .and_then(|cursor| {
            let decoded = decode_cursor(cursor);
            if decoded.is_none() {
                errors.add("cursor", "is not a cursor returned by this API");
            }
            decoded
        });
    (limit, after)
}

pub fn encode_cursor(last_key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last_key.as_bytes())
}

/// The key a cursor from [`encode_cursor`] carries; `None` for anything else.
pub fn decode_cursor(cursor: &str) -> Option<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

/// Cuts a page read with one row more than `limit` back to `limit`, and makes the cursor
/// of the next page from the last kept item's key: `None` when the extra row was absent,
/// so no further page exists. Every paged list (HTTP and MCP) pages through this.
pub fn split_page<T>(
    mut items: Vec<T>,
    limit: u32,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let limit = limit as usize;
    if items.len() <= limit {
        return (items, None);
    }
    items.truncate(limit);
    // The key is made once a page, for its last item.
    let next_cursor = items.last().map(|item| encode_cursor(&key(item)));
    (items, next_cursor)
}

/// One page of resources matching `query` (whose `limit` is the page size), in id order:
/// the one store read behind `GET /api/resources`, the MCP `search_resources` tool and the
/// MCP resource listing.
pub async fn resource_page(
    store: &dyn Store,
    query: ResourceQuery,
) -> Result<(Vec<ResourceJson>, Option<String>), StoreError> {
    let limit = query.limit;
    // One more than asked tells whether another page exists.
    let items = store
        .list_resources(&ResourceQuery {
            limit: limit + 1,
            ..query
        })
        .await?;
    Ok(split_page(items, limit, |item| item.id.clone()))
}

async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let mut errors = FieldErrors::new();
    for key in params.keys() {
        if !matches!(
            key.as_str(),
            "type" | "platform" | "connection" | "q" | "limit" | "cursor"
        ) {
            errors.add(key.clone(), "unknown query parameter");
        }
    }
    let resource_type = params.get("type").cloned();
    if let Some(kind) = &resource_type {
        if !ResourceType::ALL.iter().any(|t| t.as_str() == kind) {
            errors.add("type", "must be one of agent, vm, storage");
        }
    }
    let (limit, after) = page_params(&params, &mut errors);
    errors.into_result().map_err(ApiError::Validation)?;
    let query = ResourceQuery {
        resource_type,
        platform: params.get("platform").cloned(),
        connection_id: params.get("connection").cloned(),
        text: params
            .get("q")
            .filter(|q| !q.trim().is_empty())
            .map(|q| q.trim().to_owned()),
        related_to: None,
        after,
        limit,
    };
    let (items, next_cursor) = resource_page(state.store.as_ref(), query).await?;
    Ok(page_response(&items, next_cursor.as_deref()))
}

fn page_response(items: &[ResourceJson], next_cursor: Option<&str>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        page_json(items, next_cursor),
    )
        .into_response()
}

/// A [`ResourcePage`] written from the stored JSON texts: no resource is parsed or
/// re-serialised on this hot path (a page of 1,000 is about 1.5 MB).
pub fn page_json(items: &[ResourceJson], next_cursor: Option<&str>) -> String {
    let mut body =
        String::with_capacity(items.iter().map(|i| i.json.len() + 1).sum::<usize>() + 64);
    body.push_str("{\"items\":[");
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            body.push(',');
        }
        body.push_str(&item.json);
    }
    body.push_str("],\"nextCursor\":");
    body.push_str(&Value::from(next_cursor).to_string());
    body.push('}');
    body
}

async fn one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .store
        .get_resource(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no resource with id `{id}`")))
}
