//! `GET /api/resources/{id}/history` and `GET /api/resources/{id}/metrics`: what the feeds of
//! a resource's connection recorded about it (GUIDE section 4).
//!
//! Both answer `not_supported` for a resource whose provider does not declare the capability
//! (history or metrics) in its descriptor, so "this platform has none" is never confused with
//! "nothing happened yet".

use super::error::ApiError;
use super::resources::{page_params, split_page};
use crate::state::AppState;
use crate::store::{
    format_time, parse_time, HistoryPosition, HistoryQuery, MetricQuery, Store, StoreError,
};
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use pylon_core::feeds::{HistoryKind, HistoryRecord, MetricName, MetricSeries};
use pylon_core::{FieldErrors, Registry};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;

/// Points per series when the caller does not say.
pub const DEFAULT_MAX_POINTS: u32 = 360;
/// The most points a series may have; longer ranges are averaged into buckets.
pub const MAX_POINTS: u32 = 1000;
/// The range of `/metrics` when `since` is absent.
pub const DEFAULT_METRICS_RANGE_HOURS: i64 = 1;

/// One page of a resource's history, newest first.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    pub items: Vec<HistoryRecord>,
    /// Pass as `cursor` to read the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A resource's performance history.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MetricsAnswer {
    /// One series per metric that has samples in the range, in canonical metric order.
    pub series: Vec<MetricSeries>,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/resources/{id}/history", get(history))
        .route("/api/resources/{id}/metrics", get(metrics))
}

/// Which optional feed a route serves, to check it against the provider's capabilities.
#[derive(Debug, Clone, Copy)]
pub enum Feed {
    History,
    Metrics,
}

/// Checks that the resource exists and that its provider collects `feed`. The one check
/// behind both routes and the MCP tools.
pub async fn check_feed(
    store: &dyn Store,
    registry: &Registry,
    resource_id: &str,
    feed: Feed,
) -> Result<(), ApiError> {
    let resource = store
        .get_resource(resource_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no resource with id `{resource_id}`")))?;
    let platform = resource
        .get("platform")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(provider) = registry.by_platform(platform) else {
        return Err(ApiError::NotFound(format!(
            "resource `{resource_id}` belongs to platform `{platform}`, which this server does not serve"
        )));
    };
    let capabilities = provider.descriptor().capabilities;
    let (supported, what) = match feed {
        Feed::History => (capabilities.history, "event and task history"),
        Feed::Metrics => (capabilities.metrics, "performance history"),
    };
    if supported {
        Ok(())
    } else {
        Err(ApiError::NotSupported(format!(
            "not supported by this provider: the `{platform}` provider does not collect {what}"
        )))
    }
}

async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<HistoryPage>, ApiError> {
    let mut errors = FieldErrors::new();
    for key in params.keys() {
        if !matches!(key.as_str(), "kind" | "since" | "limit" | "cursor") {
            errors.add(key.clone(), "unknown query parameter");
        }
    }
    let kind = params.get("kind").and_then(|text| {
        let parsed = HistoryKind::parse(text);
        if parsed.is_none() {
            errors.add("kind", "must be one of event, task");
        }
        parsed
    });
    let since = time_param(&params, "since", &mut errors);
    let (limit, cursor) = page_params(&params, &mut errors);
    let after = cursor.and_then(|key| {
        let position = decode_history_position(&key);
        if position.is_none() {
            errors.add("cursor", "is not a cursor returned by this API");
        }
        position
    });
    errors.into_result().map_err(ApiError::Validation)?;
    check_feed(state.store.as_ref(), &state.registry, &id, Feed::History).await?;
    let query = HistoryQuery {
        resource_id: id,
        kind,
        since,
        after,
        limit,
    };
    Ok(Json(history_page(state.store.as_ref(), query).await?))
}

/// One page of history matching `query` (whose `limit` is the page size), newest first: the
/// one store read behind the history route and the MCP `get_history` tool.
pub async fn history_page(
    store: &dyn Store,
    query: HistoryQuery,
) -> Result<HistoryPage, StoreError> {
    let limit = query.limit;
    // One more than asked tells whether another page exists.
    let items = store
        .list_history(&HistoryQuery {
            limit: limit + 1,
            ..query
        })
        .await?;
    let (items, next_cursor) = split_page(items, limit, |last| {
        encode_history_position(&HistoryPosition {
            at: last.at,
            id: last.id.clone(),
        })
    });
    Ok(HistoryPage { items, next_cursor })
}

/// A history position as a cursor key: the stored time (which sorts like the time) and the
/// id, separated by a character neither contains.
fn encode_history_position(position: &HistoryPosition) -> String {
    format!("{}\n{}", format_time(position.at), position.id)
}

/// The position a history cursor's key carries (see [`encode_history_position`]).
pub fn decode_history_position(key: &str) -> Option<HistoryPosition> {
    let (at, id) = key.split_once('\n')?;
    Some(HistoryPosition {
        at: parse_time(at).ok()?,
        id: id.to_owned(),
    })
}

async fn metrics(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<MetricsAnswer>, ApiError> {
    let mut errors = FieldErrors::new();
    for key in params.keys() {
        if !matches!(key.as_str(), "metric" | "since" | "until" | "maxPoints") {
            errors.add(key.clone(), "unknown query parameter");
        }
    }
    let metric = params.get("metric").and_then(|text| {
        let parsed = MetricName::parse(text);
        if parsed.is_none() {
            let names: Vec<&str> = MetricName::ALL.iter().map(|m| m.as_str()).collect();
            errors.add("metric", format!("must be one of {}", names.join(", ")));
        }
        parsed
    });
    let until = time_param(&params, "until", &mut errors).unwrap_or_else(Utc::now);
    let since = time_param(&params, "since", &mut errors)
        .unwrap_or(until - Duration::hours(DEFAULT_METRICS_RANGE_HOURS));
    if since >= until {
        errors.add("since", "must be before `until`");
    }
    let max_points = match params.get("maxPoints") {
        None => DEFAULT_MAX_POINTS,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=MAX_POINTS).contains(&n) => n,
            _ => {
                errors.add(
                    "maxPoints",
                    format!("must be a whole number from 1 to {MAX_POINTS}"),
                );
                DEFAULT_MAX_POINTS
            }
        },
    };
    errors.into_result().map_err(ApiError::Validation)?;
    check_feed(state.store.as_ref(), &state.registry, &id, Feed::Metrics).await?;
    let series = metric_series(state.store.as_ref(), &id, metric, since, until, max_points).await?;
    Ok(Json(MetricsAnswer { series }))
}

/// A resource's series over `[since, until]`, each with at most `max_points` points: a longer
/// range is averaged into equal buckets. The one read behind the metrics route and the MCP
/// `get_metrics` tool.
pub async fn metric_series(
    store: &dyn Store,
    resource_id: &str,
    metric: Option<MetricName>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    max_points: u32,
) -> Result<Vec<MetricSeries>, StoreError> {
    let range_seconds = (until - since).num_seconds().max(1);
    let points = i64::from(max_points.max(1));
    // Ceiling division: the buckets must cover the range in at most `max_points` steps.
    let bucket_seconds = (range_seconds + points - 1) / points;
    let query = MetricQuery {
        resource_id: resource_id.to_owned(),
        metric,
        since,
        until,
        bucket_seconds,
    };
    Ok(store
        .metric_points(&query)
        .await?
        .into_iter()
        .map(|(metric, mut points)| {
            // Bucket edges can add one point beyond the bound; keep the newest.
            let excess = points.len().saturating_sub(max_points as usize);
            points.drain(..excess);
            MetricSeries {
                metric,
                unit: metric.unit(),
                points,
            }
        })
        .collect())
}

/// An RFC 3339 time query parameter.
fn time_param(
    params: &HashMap<String, String>,
    name: &str,
    errors: &mut FieldErrors,
) -> Option<DateTime<Utc>> {
    let text = params.get(name)?;
    match DateTime::parse_from_rfc3339(text) {
        Ok(at) => Some(at.with_timezone(&Utc)),
        Err(_) => {
            errors.add(
                name,
                "must be an RFC 3339 time such as 2026-01-02T03:04:05Z",
            );
            None
        }
    }
}
