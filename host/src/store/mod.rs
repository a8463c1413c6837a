//! Persistence behind one trait, so the SQLite store that ships today and a PostgreSQL store
//! for scale-out are interchangeable. The store sees secrets only as sealed bytes; sealing
//! happens above it (see [`crate::secrets`]).

#[macro_use]
mod sql;
mod postgres;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use pylon_core::feeds::{FeedCursor, Feeds, HistoryKind, HistoryRecord, MetricName};
use pylon_core::model::{Alert, AlertCondition, AlertSeverity, AlertSource, AlertState, Resource};
use pylon_core::PollHealth;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// One saved connection as stored.
#[derive(Clone)]
pub struct ConnectionRecord {
    pub id: String,
    pub platform: String,
    pub name: String,
    pub enabled: bool,
    pub poll_interval_seconds: u32,
    /// Non-secret provider settings.
    pub settings: Map<String, Value>,
    /// Provider secrets sealed by [`crate::secrets::SecretBox`].
    pub sealed_secrets: Vec<u8>,
    /// Recorded poll facts. Its `status` is re-derived with `enabled` when shown.
    pub health: PollHealth,
    /// The contribution summary of the last successful poll, as JSON.
    pub observed: Option<Value>,
    /// Incremented on every configuration write; guards against lost updates.
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ConnectionRecord {
    /// The recorded poll health with its status derived for the current `enabled` flag:
    /// the base every new poll or test outcome is recorded onto.
    pub fn current_health(&self) -> PollHealth {
        let mut health = self.health.clone();
        health.set_enabled(self.enabled);
        health
    }

    /// The provider-facing configuration: the stored fields with the secrets unsealed.
    pub fn config(
        &self,
        secrets: &crate::secrets::SecretBox,
    ) -> Result<pylon_core::ConnectionConfig, crate::secrets::SecretsError> {
        Ok(pylon_core::ConnectionConfig {
            name: self.name.clone(),
            enabled: self.enabled,
            poll_interval_seconds: self.poll_interval_seconds,
            settings: self.settings.clone(),
            secrets: secrets.open(&self.id, &self.sealed_secrets)?,
        })
    }
}

impl std::fmt::Debug for ConnectionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionRecord")
            .field("id", &self.id)
            .field("platform", &self.platform)
            .field("name", &self.name)
            .field("revision", &self.revision)
            .field(
                "sealed_secrets",
                &format_args!("<{} bytes>", self.sealed_secrets.len()),
            )
            .finish_non_exhaustive()
    }
}

/// One API token as stored (its hash, never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A connection with the same name already exists for the platform.
    #[error("a connection with this name already exists")]
    NameConflict,
    /// The record changed since it was read; the caller should re-read and retry.
    #[error("the record changed concurrently")]
    StaleRevision,
    #[error("record not found")]
    NotFound,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The database server did not answer in time at start-up.
    #[error("the database server did not answer within {0} seconds")]
    Unreachable(u64),
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// A resource in its stored form. The body leaves out `lastSeenAt`, which changes on every
/// poll and lives in its own column, so an unchanged resource has an unchanged body and
/// hash and a steady-state poll rewrites only what changed (plus one bulk timestamp
/// update).
#[derive(Debug, Clone)]
pub struct StoredResource {
    pub id: String,
    pub platform: String,
    pub resource_type: &'static str,
    pub name: String,
    pub body: String,
    /// Lowercase hex SHA-256 of `body`.
    pub hash: String,
    pub last_seen_at: DateTime<Utc>,
}

impl StoredResource {
    pub fn from_resource(resource: &Resource) -> Result<Self, StoreError> {
        use sha2::{Digest, Sha256};
        let body = body_without_last_seen(resource)?;
        let hash = hex::encode(Sha256::digest(body.as_bytes()));
        Ok(StoredResource {
            id: resource.id.clone(),
            platform: resource.platform.clone(),
            resource_type: resource.resource_type.as_str(),
            name: resource.name.clone(),
            body,
            hash,
            last_seen_at: resource.last_seen_at,
        })
    }
}

const LAST_SEEN_AT: &str = "lastSeenAt";

/// The resource's JSON without `lastSeenAt`. `lastSeenAt` is the last field `Resource`
/// serialises, so the fast path cuts it off the end of the serialised text instead of
/// going through a `Value` (this runs for every changed resource of every poll); anything
/// else falls back to removing the key from a `Value`.
fn body_without_last_seen(resource: &Resource) -> Result<String, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
    let text = serde_json::to_string(resource).map_err(corrupt)?;
    let seen = serde_json::to_string(&resource.last_seen_at).map_err(corrupt)?;
    let tail = format!(",\"{LAST_SEEN_AT}\":{seen}}}");
    if let Some(head) = text.strip_suffix(&tail) {
        return Ok(format!("{head}}}"));
    }
    let mut value: Value = serde_json::from_str(&text).map_err(corrupt)?;
    if let Some(object) = value.as_object_mut() {
        object.remove(LAST_SEEN_AT);
    }
    Ok(value.to_string())
}

/// One resource of a list page: its id (for the cursor) and its API JSON text.
#[derive(Debug, Clone)]
pub struct ResourceJson {
    pub id: String,
    pub json: String,
}

/// The API JSON text of a stored resource, made without parsing it: the stored body is a
/// compact JSON object without `lastSeenAt`, so the field is spliced in before its closing
/// brace. Listing a page of 1,000 resources this way costs a string copy per resource
/// instead of a parse and a re-serialisation.
pub fn resource_json_text(body: &str, last_seen_at: &str) -> Result<String, StoreError> {
    let inner = body
        .trim_end()
        .strip_suffix('}')
        .filter(|inner| inner.trim_start().starts_with('{'))
        .ok_or_else(|| StoreError::Corrupt("resource: not a JSON object".into()))?;
    let seen =
        serde_json::to_string(last_seen_at).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let separator = if inner.trim() == "{" { "" } else { "," };
    Ok(format!("{inner}{separator}\"{LAST_SEEN_AT}\":{seen}}}"))
}

/// The API form of a stored resource: its body with `lastSeenAt` put back from its column.
pub fn resource_json(body: &str, last_seen_at: &str) -> Result<Value, StoreError> {
    let mut value: Value =
        serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("resource: {e}")))?;
    let Some(object) = value.as_object_mut() else {
        return Err(StoreError::Corrupt("resource: not a JSON object".into()));
    };
    object.insert(LAST_SEEN_AT.into(), Value::String(last_seen_at.to_owned()));
    Ok(value)
}

/// Filters and paging for resource listings. Results are ordered by resource id.
#[derive(Debug, Clone, Default)]
pub struct ResourceQuery {
    pub resource_type: Option<String>,
    pub platform: Option<String>,
    pub connection_id: Option<String>,
    /// Case-insensitive substring of the resource name.
    pub text: Option<String>,
    /// Only resources with a relation to a given resource: the reverse of that resource's
    /// own `relations` (the VMs on a host, the VMs using a datastore).
    pub related_to: Option<RelationFilter>,
    /// Only resources whose id sorts after this one (the paging cursor).
    pub after: Option<String>,
    pub limit: u32,
}

/// Matches resources holding a relation to `target`, of `kind` when given.
#[derive(Debug, Clone, Default)]
pub struct RelationFilter {
    pub target: String,
    /// A relation kind as serialised (`runsOn`, `usesStorage`, ...).
    pub kind: Option<String>,
}

/// The alert conditions of a successful poll and when they were observed: the time an alert
/// opens (unless the provider knows when the condition was raised) and the time it resolves.
#[derive(Debug, Clone, Copy)]
pub struct PollAlerts<'a> {
    pub conditions: &'a [AlertCondition],
    pub observed_at: DateTime<Utc>,
}

/// How many alerts of one severity a connection has open.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActiveAlertCount {
    pub connection_id: String,
    pub severity: String,
    pub count: i64,
}

/// Filters and paging for alert listings. Results are ordered by alert id, which is a
/// UUIDv7 made when the alert opened, so pages run oldest first and stay stable.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    pub state: Option<AlertState>,
    pub severity: Option<AlertSeverity>,
    pub connection_id: Option<String>,
    pub resource_id: Option<String>,
    /// Only alerts whose id sorts after this one (the paging cursor).
    pub after: Option<String>,
    pub limit: u32,
}

/// How much feed data is kept. Pruned when a connection records feeds, so the tables stay
/// bounded however long Pylon runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedRetention {
    /// History records older than this many days are removed.
    pub history_days: u32,
    /// At most this many history records per connection (the newest are kept).
    pub history_rows_per_connection: u32,
    /// Performance samples older than this many hours are removed.
    pub metrics_hours: u32,
}

impl Default for FeedRetention {
    fn default() -> Self {
        Self {
            history_days: 30,
            history_rows_per_connection: 10_000,
            metrics_hours: 6,
        }
    }
}

/// The position of a history record in its listing: newest first, by time then id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPosition {
    pub at: DateTime<Utc>,
    pub id: String,
}

/// Filters and paging for a resource's history. Results run newest first.
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    pub resource_id: String,
    pub kind: Option<HistoryKind>,
    /// Only records at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only records that sort after this one (the paging cursor).
    pub after: Option<HistoryPosition>,
    pub limit: u32,
}

/// A time range of a resource's metrics, averaged into buckets of `bucket_seconds` (1 for
/// raw samples) so a long range answers with a bounded number of points.
#[derive(Debug, Clone)]
pub struct MetricQuery {
    pub resource_id: String,
    /// One metric, or every metric the resource has.
    pub metric: Option<MetricName>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub bucket_seconds: i64,
}

/// Everything the host persists.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    async fn insert_connection(&self, record: &ConnectionRecord) -> Result<(), StoreError>;
    /// Replaces the configuration of `record.id` if its stored revision is
    /// `expected_revision`; the stored revision becomes `record.revision`. Health and the
    /// observed summary are left alone: they are written only by [`Store::update_health`], so
    /// an edit racing a poll cannot roll back the poll's result.
    async fn update_connection(
        &self,
        record: &ConnectionRecord,
        expected_revision: i64,
    ) -> Result<(), StoreError>;
    async fn get_connection(
        &self,
        platform: &str,
        id: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError>;
    /// Connections of a platform, oldest first.
    async fn list_connections(&self, platform: &str) -> Result<Vec<ConnectionRecord>, StoreError>;
    async fn delete_connection(&self, platform: &str, id: &str) -> Result<bool, StoreError>;
    /// Writes only the health (and, when given, the observed summary) of a connection.
    async fn update_health(
        &self,
        id: &str,
        health: &PollHealth,
        observed: Option<&Value>,
    ) -> Result<bool, StoreError>;

    /// Records a successful poll atomically: health, the observed summary, the complete
    /// resource set of the connection (replacing the previous set; only changed resources
    /// are rewritten) and the alert lifecycle (a new condition opens an alert, a reported
    /// one keeps its open alert, an open alert no longer reported resolves). Returns
    /// `false`, writing nothing, when the connection no longer exists.
    async fn record_poll(
        &self,
        id: &str,
        health: &PollHealth,
        observed: &Value,
        resources: &[Resource],
        alerts: PollAlerts<'_>,
    ) -> Result<bool, StoreError>;
    /// Records a successful poll whose resources and alert conditions equal the last
    /// recorded ones but for `lastSeenAt`: health, summary and when they were seen, without
    /// touching a resource or alert row. Returns `false` when the connection no longer
    /// exists.
    async fn record_unchanged_poll(
        &self,
        id: &str,
        health: &PollHealth,
        observed: &Value,
        seen_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Records what a poll's feeds brought and the cursor that says where they stand, in one
    /// transaction: history records whose id is stored already and samples already stored
    /// (same resource, metric and second) are dropped, so a replay after a restart stores
    /// nothing twice. Then prunes the connection's feed data beyond `retention`. Returns
    /// `false`, writing nothing, when the connection no longer exists.
    async fn record_feeds(
        &self,
        connection_id: &str,
        feeds: &Feeds,
        retention: FeedRetention,
    ) -> Result<bool, StoreError>;
    /// The cursor stored by the connection's last [`Store::record_feeds`].
    async fn feed_cursor(&self, connection_id: &str) -> Result<FeedCursor, StoreError>;
    /// A page of one resource's history, newest first.
    async fn list_history(&self, query: &HistoryQuery) -> Result<Vec<HistoryRecord>, StoreError>;
    /// A resource's samples in a time range, bucketed, by metric then time.
    async fn metric_points(
        &self,
        query: &MetricQuery,
    ) -> Result<Vec<(MetricName, Vec<(DateTime<Utc>, f64)>)>, StoreError>;

    /// A page of resources as API JSON texts (see [`resource_json_text`]).
    async fn list_resources(&self, query: &ResourceQuery) -> Result<Vec<ResourceJson>, StoreError>;
    async fn get_resource(&self, id: &str) -> Result<Option<Value>, StoreError>;
    /// A page of alerts, open and resolved.
    async fn list_alerts(&self, query: &AlertQuery) -> Result<Vec<Alert>, StoreError>;
    /// Open alerts counted by connection and severity, for `GET /metrics`.
    async fn active_alert_counts(&self) -> Result<Vec<ActiveAlertCount>, StoreError>;

    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError>;
    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
    async fn delete_token(&self, id: &str) -> Result<bool, StoreError>;
    async fn find_token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Records a use of the token, at most about once a minute per token.
    async fn touch_token(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    async fn token_count(&self) -> Result<u64, StoreError>;
}

/// The one timestamp format in the database: RFC 3339 UTC with milliseconds, which sorts
/// lexically in time order.
pub(crate) fn format_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("bad timestamp {text:?}: {e}")))
}

// Shared by every SQL store (see `sql.rs`): what is the same whatever the database.

/// Resolved alerts older than this are pruned when their connection records a poll, so the
/// table stays bounded by what is open plus a month of history.
const RESOLVED_ALERT_RETENTION_DAYS: i64 = 30;

/// How often `last_used_at` is refreshed at most, to keep authentication free of writes.
const TOKEN_TOUCH_INTERVAL_SECONDS: i64 = 60;

/// Rows per multi-row upsert: 8 parameters each stays far below SQLite's 32,766 and
/// PostgreSQL's 65,535 parameter limits.
const UPSERT_BATCH_ROWS: usize = 500;

/// Samples per multi-row insert: 5 parameters each (10,000 a statement).
const SAMPLE_BATCH_ROWS: usize = 2_000;
// The multi-row statements above run with `persistent(false)`: their text depends on the
// batch size, so caching them as prepared statements on every pooled connection would keep
// megabytes of compiled SQL alive for statements that are rarely the same twice.

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Escapes `LIKE` wildcards so a search for `50%` matches literally.
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The case-folded name that makes connection names unique per platform. Folded here, not
/// in SQL, so both databases fold alike.
fn name_key(name: &str) -> String {
    name.to_lowercase()
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A `connections` row as both databases return it.
#[derive(sqlx::FromRow)]
struct ConnectionRow {
    id: String,
    platform: String,
    name: String,
    enabled: bool,
    poll_interval_seconds: i64,
    settings_json: String,
    sealed_secrets: Vec<u8>,
    health_json: String,
    observed_json: Option<String>,
    revision: i64,
    created_at: String,
    updated_at: String,
}

impl TryFrom<ConnectionRow> for ConnectionRecord {
    type Error = StoreError;

    fn try_from(row: ConnectionRow) -> Result<Self, StoreError> {
        let corrupt =
            |what: &str, e: serde_json::Error| StoreError::Corrupt(format!("{what}: {e}"));
        let interval = row.poll_interval_seconds;
        Ok(ConnectionRecord {
            id: row.id,
            platform: row.platform,
            name: row.name,
            enabled: row.enabled,
            poll_interval_seconds: u32::try_from(interval)
                .map_err(|_| StoreError::Corrupt(format!("bad poll interval {interval}")))?,
            settings: serde_json::from_str(&row.settings_json)
                .map_err(|e| corrupt("settings", e))?,
            sealed_secrets: row.sealed_secrets,
            health: serde_json::from_str(&row.health_json).map_err(|e| corrupt("health", e))?,
            observed: row
                .observed_json
                .map(|o| serde_json::from_str(&o))
                .transpose()
                .map_err(|e| corrupt("observed", e))?,
            revision: row.revision,
            created_at: parse_time(&row.created_at)?,
            updated_at: parse_time(&row.updated_at)?,
        })
    }
}

/// An `api_tokens` row.
#[derive(sqlx::FromRow)]
struct TokenRow {
    id: String,
    name: String,
    scopes_json: String,
    token_hash: String,
    created_at: String,
    last_used_at: Option<String>,
}

impl TryFrom<TokenRow> for TokenRecord {
    type Error = StoreError;

    fn try_from(row: TokenRow) -> Result<Self, StoreError> {
        Ok(TokenRecord {
            id: row.id,
            name: row.name,
            scopes: serde_json::from_str(&row.scopes_json)
                .map_err(|e| StoreError::Corrupt(format!("token scopes: {e}")))?,
            token_hash: row.token_hash,
            created_at: parse_time(&row.created_at)?,
            last_used_at: row.last_used_at.as_deref().map(parse_time).transpose()?,
        })
    }
}

/// An `alerts` row.
#[derive(sqlx::FromRow)]
struct AlertRow {
    id: String,
    connection_id: String,
    resource_id: String,
    source: String,
    severity: String,
    name: String,
    message: String,
    since: String,
    resolved_at: Option<String>,
    acknowledged: bool,
}

impl TryFrom<AlertRow> for Alert {
    type Error = StoreError;

    fn try_from(row: AlertRow) -> Result<Self, StoreError> {
        Ok(Alert {
            severity: AlertSeverity::parse(&row.severity)
                .ok_or_else(|| StoreError::Corrupt(format!("alert severity {:?}", row.severity)))?,
            state: if row.resolved_at.is_some() {
                AlertState::Resolved
            } else {
                AlertState::Active
            },
            source: AlertSource::parse(&row.source)
                .ok_or_else(|| StoreError::Corrupt(format!("alert source {:?}", row.source)))?,
            since: parse_time(&row.since)?,
            resolved_at: row.resolved_at.as_deref().map(parse_time).transpose()?,
            id: row.id,
            resource_id: row.resource_id,
            connection_id: row.connection_id,
            name: row.name,
            message: row.message,
            acknowledged: row.acknowledged,
        })
    }
}

/// A `history` row.
#[derive(sqlx::FromRow)]
struct HistoryRow {
    id: String,
    connection_id: String,
    at: String,
    kind: String,
    #[sqlx(rename = "type")]
    record_type: String,
    message: String,
    user_name: Option<String>,
    resource_id: Option<String>,
}

impl TryFrom<HistoryRow> for HistoryRecord {
    type Error = StoreError;

    fn try_from(row: HistoryRow) -> Result<Self, StoreError> {
        Ok(HistoryRecord {
            kind: HistoryKind::parse(&row.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("history kind {:?}", row.kind)))?,
            at: parse_time(&row.at)?,
            id: row.id,
            connection_id: row.connection_id,
            record_type: row.record_type,
            message: row.message,
            user: row.user_name,
            resource_id: row.resource_id,
        })
    }
}

/// One stored sample: resource, metric name, Unix seconds, value.
type SampleRow<'a> = (&'a str, &'static str, i64, f64);

/// A poll's samples as rows, leaving out values a database cannot store as a number (NaN,
/// infinities).
fn sample_rows(feeds: &Feeds) -> Vec<SampleRow<'_>> {
    feeds
        .samples
        .iter()
        .flat_map(|run| {
            run.points.iter().map(move |(at, value)| {
                (
                    run.resource_id.as_str(),
                    run.metric.as_str(),
                    at.timestamp(),
                    *value,
                )
            })
        })
        .filter(|sample| sample.3.is_finite())
        .collect()
}

/// One metric's points, as [`Store::metric_points`] answers them.
type Series = (MetricName, Vec<(DateTime<Utc>, f64)>);

/// Bucketed sample rows `(metric, bucket start in Unix seconds, average)`, sorted by stored
/// metric name then time, as series in the canonical metric order.
fn metric_series(rows: Vec<(String, i64, f64)>) -> Result<Vec<Series>, StoreError> {
    let mut series: Vec<Series> = Vec::new();
    for (name, seconds, value) in rows {
        let metric = MetricName::parse(&name)
            .ok_or_else(|| StoreError::Corrupt(format!("metric name {name:?}")))?;
        let at = DateTime::from_timestamp(seconds, 0)
            .ok_or_else(|| StoreError::Corrupt(format!("sample time {seconds}")))?;
        match series.last_mut() {
            Some((last, points)) if *last == metric => points.push((at, value)),
            _ => series.push((metric, vec![(at, value)])),
        }
    }
    // Rows come sorted by the metric's stored name; answer in the canonical order.
    series.sort_by_key(|(metric, _)| *metric);
    Ok(series)
}

/// An open alert as read back for the lifecycle diff.
#[derive(sqlx::FromRow)]
struct OpenAlert {
    id: String,
    resource_id: String,
    condition_key: String,
    severity: String,
    name: String,
    message: String,
    acknowledged: bool,
}

/// The writes the alert lifecycle of one successful poll needs (see [`plan_alerts`]).
struct AlertPlan<'a> {
    /// Open alerts still reported whose severity, name, message or acknowledgement changed.
    changed: Vec<(&'a str, &'a AlertCondition)>,
    /// Conditions with no open alert: each opens one.
    opened: Vec<&'a AlertCondition>,
    /// Open alerts no longer reported: each resolves at `at`.
    resolved: Vec<&'a str>,
    /// The poll's time, as stored.
    at: String,
    /// Resolved alerts older than this are pruned.
    prune_before: String,
}

/// The alert lifecycle of one successful poll: conditions not open yet open an alert; open
/// ones still reported stay open (their severity, name, message and acknowledgement follow
/// the platform); open ones no longer reported resolve at the poll's time. A repeated
/// `(resource, key)` in one poll counts once, the first report winning.
fn plan_alerts<'a>(open: &'a [OpenAlert], alerts: PollAlerts<'a>) -> AlertPlan<'a> {
    let mut open: HashMap<(&str, &str), &OpenAlert> = open
        .iter()
        .map(|alert| {
            (
                (alert.resource_id.as_str(), alert.condition_key.as_str()),
                alert,
            )
        })
        .collect();
    let mut plan = AlertPlan {
        changed: Vec::new(),
        opened: Vec::new(),
        resolved: Vec::new(),
        at: format_time(alerts.observed_at),
        prune_before: format_time(
            alerts.observed_at - chrono::Duration::days(RESOLVED_ALERT_RETENTION_DAYS),
        ),
    };
    let mut reported = HashSet::new();
    for condition in alerts.conditions {
        let key = (condition.resource_id.as_str(), condition.key.as_str());
        if !reported.insert(key) {
            continue;
        }
        match open.remove(&key) {
            Some(alert) => {
                let same = alert.severity == condition.severity.as_str()
                    && alert.name == condition.name
                    && alert.message == condition.message
                    && alert.acknowledged == condition.acknowledged;
                if !same {
                    plan.changed.push((alert.id.as_str(), condition));
                }
            }
            None => plan.opened.push(condition),
        }
    }
    let mut resolved: Vec<&str> = open.values().map(|alert| alert.id.as_str()).collect();
    // Sorted so the writes (and any lock order) do not depend on hash order.
    resolved.sort_unstable();
    plan.resolved = resolved;
    plan
}

/// The writes that replace a connection's stored resource set with a poll's (see
/// [`plan_resources`]).
struct ResourcePlan {
    /// When the poll saw its resources: providers stamp every resource of a poll with the
    /// same time, recorded once on the connection.
    common_seen_at: Option<String>,
    /// Resources to upsert (new, changed, or seen later than the common time), with their
    /// own `last_seen_at`.
    changed: Vec<(StoredResource, String)>,
    /// Stored resources the poll no longer reported.
    gone: Vec<String>,
}

/// Diffs a poll's resources against the stored ids and body hashes: unchanged bodies (by
/// hash) are not rewritten, so a steady-state poll costs one read of ids and hashes and one
/// timestamp update.
fn plan_resources(
    stored: &HashMap<String, Option<String>>,
    resources: &[Resource],
) -> Result<ResourcePlan, StoreError> {
    let common_seen_at = resources.first().map(|r| format_time(r.last_seen_at));
    let mut seen = HashSet::with_capacity(resources.len());
    let mut changed = Vec::new();
    for resource in resources {
        let row = StoredResource::from_resource(resource)?;
        seen.insert(row.id.clone());
        let seen_at = format_time(row.last_seen_at);
        let unchanged = stored.get(&row.id).and_then(Option::as_deref) == Some(row.hash.as_str());
        if unchanged && common_seen_at.as_deref() >= Some(seen_at.as_str()) {
            continue;
        }
        changed.push((row, seen_at));
    }
    let mut gone: Vec<String> = stored
        .keys()
        .filter(|stored_id| !seen.contains(*stored_id))
        .cloned()
        .collect();
    gone.sort_unstable();
    Ok(ResourcePlan {
        common_seen_at,
        changed,
        gone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pylon_core::model::{
        LatestMetrics, Relation, RelationKind, ResourceStatus, ResourceType, Topology,
    };

    #[test]
    fn stored_bodies_leave_out_last_seen_and_read_back_whole() {
        let resource = Resource {
            id: "c-vm-1".into(),
            resource_type: ResourceType::Vm,
            platform: "vmware-vsphere".into(),
            connection_id: "c".into(),
            name: "web \"01\"".into(),
            status: ResourceStatus::Online,
            identity: Map::new(),
            relations: vec![Relation {
                kind: RelationKind::RunsOn,
                target: "c-agent-1".into(),
            }],
            topology: Topology::default(),
            metrics: LatestMetrics::default(),
            details: Map::new(),
            last_seen_at: Utc::now(),
        };
        let stored = StoredResource::from_resource(&resource).unwrap();
        assert!(!stored.body.contains(LAST_SEEN_AT), "{}", stored.body);
        let seen = format_time(resource.last_seen_at);
        let back = resource_json(&stored.body, &seen).unwrap();
        let mut expected = serde_json::to_value(&resource).unwrap();
        expected[LAST_SEEN_AT] = Value::String(seen.clone());
        assert_eq!(back, expected);
        // The spliced text of list pages is the same JSON.
        let text = resource_json_text(&stored.body, &seen).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), expected);
    }

    #[test]
    fn splicing_handles_empty_objects_and_refuses_non_objects() {
        assert_eq!(
            resource_json_text("{}", "2026-01-01T00:00:00.000Z").unwrap(),
            r#"{"lastSeenAt":"2026-01-01T00:00:00.000Z"}"#
        );
        assert!(resource_json_text("[1]", "t").is_err());
        assert!(resource_json_text("", "t").is_err());
    }
}
