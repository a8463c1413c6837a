//! The shared connection route family, `/api/{slug}/connections…`, served for every
//! registered provider by the same code.

use super::error::ApiError;
use super::extract::{JsonBody, ProviderBySlug};
use crate::secrets::SecretBox;
use crate::state::AppState;
use crate::store::{ConnectionRecord, Store, StoreError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{SecondsFormat, Utc};
use pylon_core::draft::apply_draft;
use pylon_core::model::ContributionSummary;
use pylon_core::{
    ConnectionConfig, FailureCategory, PollHealth, Provider, ProviderError, SystemIdentity,
    TestContext, TestReport,
};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many times an edit is re-applied when a concurrent edit changed the record first.
const MAX_UPDATE_ATTEMPTS: usize = 8;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/{slug}/connections", get(list).post(create))
        .route("/api/{slug}/connections/test", post(test_draft))
        .route("/api/{slug}/connections/{id}", put(update).delete(remove))
        .route("/api/{slug}/connections/{id}/test", post(test_saved))
}

/// One saved connection as the API shows it. The handlers serialise this type and the
/// published schema (`schemas/connection.schema.json`) is derived from it.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionItem {
    /// The common fields (`name`, `enabled`, `pollIntervalSeconds`) and the provider's own
    /// fields, every secret replaced by the mask `********` (omitted when unset). Which
    /// fields exist depends on the provider: see its `connection-input.<slug>.json`.
    #[serde(flatten)]
    pub config: Map<String, Value>,
    pub id: String,
    /// The platform id, e.g. `vmware-vsphere`.
    pub platform: String,
    #[schemars(with = "chrono::DateTime<Utc>")]
    pub created_at: String,
    #[schemars(with = "chrono::DateTime<Utc>")]
    pub updated_at: String,
    pub poll: PollHealth,
    /// What the last successful poll contributed; `null` until one succeeded. Stored as the
    /// summary's own JSON, so it is passed through as is.
    #[schemars(with = "Option<ContributionSummary>")]
    pub observed: Option<Value>,
}

/// The answer of both test routes when the test ran (a bad draft is a 400 instead).
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    pub success: bool,
    /// Why the test failed; `null` on success.
    pub category: Option<FailureCategory>,
    /// What was found, or what went wrong and what to do about it; never a secret.
    pub message: String,
    /// Wall-clock time of the test in milliseconds.
    pub latency_ms: u64,
    /// The platform instance reached; `null` on failure.
    pub system: Option<SystemIdentity>,
    /// Inventory counts seen by the test; `null` on failure.
    pub agents: Option<u64>,
    pub vms: Option<u64>,
    pub storage: Option<u64>,
}

/// The answer of a successful `DELETE` (connections and tokens).
#[derive(Debug, Serialize, JsonSchema)]
pub struct Deleted {
    /// Always `true`; failures answer with the error envelope instead.
    pub success: bool,
    pub id: String,
}

fn connection_id(params: &HashMap<String, String>) -> &str {
    params.get("id").map(String::as_str).unwrap_or_default()
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no connection with id `{id}`"))
}

fn rfc3339(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Rebuilds the checked configuration of a stored connection, secrets decrypted.
fn config_of(state: &AppState, record: &ConnectionRecord) -> Result<ConnectionConfig, ApiError> {
    Ok(record.config(&state.secrets)?)
}

/// Generic checks from core, then the provider's own normalisation.
fn check_draft(
    provider: &dyn Provider,
    base: Option<&ConnectionConfig>,
    body: &Value,
) -> Result<ConnectionConfig, ApiError> {
    let mut config =
        apply_draft(provider.descriptor(), base, body).map_err(ApiError::Validation)?;
    provider
        .validate(&mut config)
        .map_err(ApiError::Validation)?;
    Ok(config)
}

/// The health shown for a record: recorded facts, status re-derived with `enabled`.
fn shown_health(record: &ConnectionRecord) -> PollHealth {
    let mut health = record.current_health();
    health.interval_seconds = record.poll_interval_seconds;
    health
}

/// The connection item: redacted configuration plus identity, health and observed summary.
fn item(state: &AppState, record: &ConnectionRecord) -> Result<ConnectionItem, ApiError> {
    redacted_item(&state.secrets, record)
}

/// The connection item of `record`, every secret masked: the one redaction behind the HTTP
/// connection routes and the MCP `list_connections` tool.
pub fn redacted_item(
    secrets: &SecretBox,
    record: &ConnectionRecord,
) -> Result<ConnectionItem, ApiError> {
    let config = record.config(secrets)?;
    Ok(ConnectionItem {
        config: config.redacted_json(),
        id: record.id.clone(),
        platform: record.platform.clone(),
        created_at: rfc3339(record.created_at),
        updated_at: rfc3339(record.updated_at),
        poll: shown_health(record),
        // A stored JSON `null` and no summary at all read the same.
        observed: record.observed.clone().filter(|v| !v.is_null()),
    })
}

async fn list(
    State(state): State<AppState>,
    ProviderBySlug(provider): ProviderBySlug,
) -> Result<Json<Vec<ConnectionItem>>, ApiError> {
    let items = connection_items(
        state.store.as_ref(),
        &state.secrets,
        provider.descriptor().platform,
    )
    .await?;
    Ok(Json(items))
}

/// Every connection of `platform`, oldest first, as redacted items: the one read behind
/// `GET /api/{slug}/connections` and the MCP `list_connections` tool.
pub async fn connection_items(
    store: &dyn Store,
    secrets: &SecretBox,
    platform: &str,
) -> Result<Vec<ConnectionItem>, ApiError> {
    store
        .list_connections(platform)
        .await?
        .iter()
        .map(|record| redacted_item(secrets, record))
        .collect()
}

fn require_body(body: Option<Value>) -> Result<Value, ApiError> {
    body.ok_or_else(|| ApiError::InvalidRequest("a JSON object body is required".into()))
}

async fn create(
    State(state): State<AppState>,
    ProviderBySlug(provider): ProviderBySlug,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<ConnectionItem>), ApiError> {
    let config = check_draft(provider.as_ref(), None, &require_body(body)?)?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = Utc::now();
    let record = ConnectionRecord {
        platform: provider.descriptor().platform.to_owned(),
        name: config.name.clone(),
        enabled: config.enabled,
        poll_interval_seconds: config.poll_interval_seconds,
        settings: config.settings.clone(),
        sealed_secrets: state.secrets.seal(&id, &config.secrets)?,
        health: PollHealth::new(config.poll_interval_seconds, config.enabled),
        observed: None,
        revision: 1,
        created_at: now,
        updated_at: now,
        id,
    };
    state.store.insert_connection(&record).await?;
    state.scheduler.sync(&record.platform, &record.id).await;
    tracing::info!(platform = %record.platform, connection_id = %record.id, "connection created");
    Ok((StatusCode::CREATED, Json(item(&state, &record)?)))
}

async fn update(
    State(state): State<AppState>,
    ProviderBySlug(provider): ProviderBySlug,
    Path(params): Path<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<Json<ConnectionItem>, ApiError> {
    let id = connection_id(&params);
    let body = require_body(body)?;
    let platform = provider.descriptor().platform;
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        let record = state
            .store
            .get_connection(platform, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let stored = config_of(&state, &record)?;
        let config = check_draft(provider.as_ref(), Some(&stored), &body)?;
        let updated = ConnectionRecord {
            name: config.name.clone(),
            enabled: config.enabled,
            poll_interval_seconds: config.poll_interval_seconds,
            settings: config.settings.clone(),
            sealed_secrets: state.secrets.seal(&record.id, &config.secrets)?,
            revision: record.revision + 1,
            updated_at: Utc::now(),
            ..record.clone()
        };
        match state
            .store
            .update_connection(&updated, record.revision)
            .await
        {
            Ok(()) => {
                tracing::info!(%platform, connection_id = %id, "connection updated");
                state.scheduler.sync(platform, id).await;
                return Ok(Json(item(&state, &updated)?));
            }
            // Someone else wrote first: re-apply this edit on top of theirs.
            Err(StoreError::StaleRevision) => continue,
            Err(StoreError::NotFound) => return Err(not_found(id)),
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::Conflict(
        "the connection is being edited concurrently; retry".into(),
    ))
}

async fn remove(
    State(state): State<AppState>,
    ProviderBySlug(provider): ProviderBySlug,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Json<Deleted>, ApiError> {
    let id = connection_id(&params);
    let platform = provider.descriptor().platform;
    if !state.store.delete_connection(platform, id).await? {
        return Err(not_found(id));
    }
    state.scheduler.sync(platform, id).await;
    tracing::info!(%platform, connection_id = %id, "connection deleted");
    Ok(Json(Deleted {
        success: true,
        id: id.to_owned(),
    }))
}

/// Runs a provider test under the configured time limit, measuring latency.
async fn run_test(
    state: &AppState,
    provider: &Arc<dyn Provider>,
    config: &ConnectionConfig,
) -> (Result<TestReport, ProviderError>, Duration) {
    let limit = state.settings.test_timeout;
    let context = TestContext { timeout: limit };
    let started = Instant::now();
    // The provider enforces the limit itself; this outer bound, a little longer, guarantees an
    // answer even from a provider that does not.
    let outcome = match tokio::time::timeout(
        limit + Duration::from_secs(2),
        provider.test(config, &context),
    )
    .await
    {
        Ok(outcome) => outcome,
        Err(_) => Err(ProviderError::new(
            FailureCategory::Timeout,
            format!("no answer within {} seconds", limit.as_secs()),
        )),
    };
    (outcome, started.elapsed())
}

fn test_response(outcome: &Result<TestReport, ProviderError>, latency: Duration) -> TestResult {
    let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(report) => TestResult {
            success: true,
            category: None,
            message: format!(
                "Connected to {} ({} {}): {} agents, {} VMs, {} storage.",
                report.system.name,
                report.system.product,
                report.system.version,
                report.counts.agents,
                report.counts.vms,
                report.counts.storage
            ),
            latency_ms,
            system: Some(report.system.clone()),
            agents: Some(report.counts.agents),
            vms: Some(report.counts.vms),
            storage: Some(report.counts.storage),
        },
        Err(error) => TestResult {
            success: false,
            category: Some(error.category),
            message: error.message.clone(),
            latency_ms,
            system: None,
            agents: None,
            vms: None,
            storage: None,
        },
    }
}

fn log_test(
    platform: &str,
    connection_id: Option<&str>,
    outcome: &Result<TestReport, ProviderError>,
    latency: Duration,
) {
    let latency_ms = latency.as_millis();
    match outcome {
        Ok(_) => tracing::info!(%platform, connection_id, latency_ms, "connection test succeeded"),
        Err(error) => tracing::info!(
            %platform,
            connection_id,
            category = %error.category,
            latency_ms,
            message = %error.message,
            "connection test failed"
        ),
    }
}

async fn test_draft(
    State(state): State<AppState>,
    ProviderBySlug(provider): ProviderBySlug,
    JsonBody(body): JsonBody,
) -> Result<Json<TestResult>, ApiError> {
    let mut body = require_body(body)?;
    // A draft may be tested before it is named.
    if let Some(object) = body.as_object_mut() {
        object
            .entry("name")
            .or_insert_with(|| Value::String("draft".into()));
    }
    let config = check_draft(provider.as_ref(), None, &body)?;
    let (outcome, latency) = run_test(&state, &provider, &config).await;
    log_test(provider.descriptor().platform, None, &outcome, latency);
    Ok(Json(test_response(&outcome, latency)))
}

async fn test_saved(
    State(state): State<AppState>,
    ProviderBySlug(provider): ProviderBySlug,
    Path(params): Path<HashMap<String, String>>,
    JsonBody(body): JsonBody,
) -> Result<Json<TestResult>, ApiError> {
    let id = connection_id(&params);
    let platform = provider.descriptor().platform;
    let record = state
        .store
        .get_connection(platform, id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let stored = config_of(&state, &record)?;
    // With a body, the edited form is tested on top of the stored configuration (masked
    // secrets keep the stored ones) and nothing is recorded; without one, the saved
    // configuration is tested and the result becomes its health.
    let overlay = body.filter(|b| !b.is_null());
    let config = match &overlay {
        Some(body) => check_draft(provider.as_ref(), Some(&stored), body)?,
        None => stored,
    };
    let (outcome, latency) = run_test(&state, &provider, &config).await;
    log_test(platform, Some(id), &outcome, latency);
    if overlay.is_none() {
        let mut health = record.current_health();
        let now = Utc::now();
        match &outcome {
            Ok(_) => health.record_success(now, false),
            Err(error) => health.record_failure(now, error.category, &error.message),
        }
        // The connection may have been deleted while the test ran; then there is nothing to
        // record, and the test result is still worth answering.
        state.store.update_health(id, &health, None).await?;
    }
    Ok(Json(test_response(&outcome, latency)))
}
