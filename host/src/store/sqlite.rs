//! The embedded SQLite store (the default). WAL mode so reads never wait for the writer, a
//! busy timeout so concurrent writers queue instead of failing, and every write a single
//! statement so a failure changes nothing.

use super::{
    format_time, parse_time, resource_json, resource_json_text, ActiveAlertCount, AlertQuery,
    ConnectionRecord, FeedRetention, HistoryQuery, MetricQuery, PollAlerts, ResourceJson,
    ResourceQuery, Store, StoreError, StoredResource, TokenRecord,
};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use pylon_core::feeds::{FeedCursor, Feeds, HistoryKind, HistoryRecord, MetricName};
use pylon_core::model::{Alert, AlertSeverity, AlertSource, AlertState, Resource};
use pylon_core::PollHealth;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::collections::{HashMap, HashSet};

/// Rows per multi-row upsert: 8 parameters each stays far below SQLite's 32,766 limit.
const UPSERT_BATCH_ROWS: usize = 500;
/// Samples per multi-row insert: 5 parameters each.
const SAMPLE_BATCH_ROWS: usize = 2_000;
use std::str::FromStr;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Resolved alerts older than this are pruned when their connection records a poll, so the
/// table stays bounded by what is open plus a month of history.
const RESOLVED_ALERT_RETENTION_DAYS: i64 = 30;

/// How often `last_used_at` is refreshed at most, to keep authentication free of writes.
const TOKEN_TOUCH_INTERVAL_SECONDS: i64 = 60;

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

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

fn name_key(name: &str) -> String {
    name.to_lowercase()
}

fn connection_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ConnectionRecord, StoreError> {
    let corrupt = |what: &str, e: serde_json::Error| StoreError::Corrupt(format!("{what}: {e}"));
    let settings: String = row.try_get("settings_json")?;
    let health: String = row.try_get("health_json")?;
    let observed: Option<String> = row.try_get("observed_json")?;
    let interval: i64 = row.try_get("poll_interval_seconds")?;
    Ok(ConnectionRecord {
        id: row.try_get("id")?,
        platform: row.try_get("platform")?,
        name: row.try_get("name")?,
        enabled: row.try_get("enabled")?,
        poll_interval_seconds: u32::try_from(interval)
            .map_err(|_| StoreError::Corrupt(format!("bad poll interval {interval}")))?,
        settings: serde_json::from_str(&settings).map_err(|e| corrupt("settings", e))?,
        sealed_secrets: row.try_get("sealed_secrets")?,
        health: serde_json::from_str(&health).map_err(|e| corrupt("health", e))?,
        observed: observed
            .map(|o| serde_json::from_str(&o))
            .transpose()
            .map_err(|e| corrupt("observed", e))?,
        revision: row.try_get("revision")?,
        created_at: parse_time(&row.try_get::<String, _>("created_at")?)?,
        updated_at: parse_time(&row.try_get::<String, _>("updated_at")?)?,
    })
}

fn token_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<TokenRecord, StoreError> {
    let scopes: String = row.try_get("scopes_json")?;
    let last_used: Option<String> = row.try_get("last_used_at")?;
    Ok(TokenRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        scopes: serde_json::from_str(&scopes)
            .map_err(|e| StoreError::Corrupt(format!("token scopes: {e}")))?,
        token_hash: row.try_get("token_hash")?,
        created_at: parse_time(&row.try_get::<String, _>("created_at")?)?,
        last_used_at: last_used.as_deref().map(parse_time).transpose()?,
    })
}

fn alert_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Alert, StoreError> {
    let severity: String = row.try_get("severity")?;
    let source: String = row.try_get("source")?;
    let resolved_at: Option<String> = row.try_get("resolved_at")?;
    Ok(Alert {
        id: row.try_get("id")?,
        resource_id: row.try_get("resource_id")?,
        connection_id: row.try_get("connection_id")?,
        severity: AlertSeverity::parse(&severity)
            .ok_or_else(|| StoreError::Corrupt(format!("alert severity {severity:?}")))?,
        state: if resolved_at.is_some() {
            AlertState::Resolved
        } else {
            AlertState::Active
        },
        source: AlertSource::parse(&source)
            .ok_or_else(|| StoreError::Corrupt(format!("alert source {source:?}")))?,
        name: row.try_get("name")?,
        message: row.try_get("message")?,
        since: parse_time(&row.try_get::<String, _>("since")?)?,
        resolved_at: resolved_at.as_deref().map(parse_time).transpose()?,
        acknowledged: row.try_get("acknowledged")?,
    })
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

/// The alert lifecycle of one successful poll, inside its transaction: conditions not open
/// yet open an alert; open ones still reported stay open (their severity, name, message and
/// acknowledgement follow the platform); open ones no longer reported resolve at the poll's
/// time. A repeated `(resource, key)` in one poll counts once, the first report winning.
async fn apply_alerts(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    connection_id: &str,
    alerts: PollAlerts<'_>,
) -> Result<(), StoreError> {
    let open: Vec<OpenAlert> = sqlx::query_as(
        "SELECT id, resource_id, condition_key, severity, name, message, acknowledged
         FROM alerts WHERE connection_id = ? AND resolved_at IS NULL",
    )
    .bind(connection_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut open: HashMap<(&str, &str), &OpenAlert> = open
        .iter()
        .map(|alert| {
            (
                (alert.resource_id.as_str(), alert.condition_key.as_str()),
                alert,
            )
        })
        .collect();
    let at = format_time(alerts.observed_at);
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
                    sqlx::query(
                        "UPDATE alerts SET severity = ?, name = ?, message = ?, acknowledged = ?
                         WHERE id = ?",
                    )
                    .bind(condition.severity.as_str())
                    .bind(&condition.name)
                    .bind(&condition.message)
                    .bind(condition.acknowledged)
                    .bind(&alert.id)
                    .execute(&mut **tx)
                    .await?;
                }
            }
            None => {
                sqlx::query(
                    "INSERT INTO alerts (id, connection_id, resource_id, condition_key, source,
                        severity, name, message, since, resolved_at, acknowledged)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(connection_id)
                .bind(&condition.resource_id)
                .bind(&condition.key)
                .bind(condition.source.as_str())
                .bind(condition.severity.as_str())
                .bind(&condition.name)
                .bind(&condition.message)
                .bind(condition.since.map_or_else(|| at.clone(), format_time))
                .bind(condition.acknowledged)
                .execute(&mut **tx)
                .await?;
            }
        }
    }
    for gone in open.values() {
        sqlx::query("UPDATE alerts SET resolved_at = ? WHERE id = ?")
            .bind(&at)
            .bind(&gone.id)
            .execute(&mut **tx)
            .await?;
    }
    let prune_before =
        format_time(alerts.observed_at - Duration::days(RESOLVED_ALERT_RETENTION_DAYS));
    sqlx::query("DELETE FROM alerts WHERE connection_id = ? AND resolved_at < ?")
        .bind(connection_id)
        .bind(prune_before)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn history_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<HistoryRecord, StoreError> {
    let kind: String = row.try_get("kind")?;
    Ok(HistoryRecord {
        id: row.try_get("id")?,
        connection_id: row.try_get("connection_id")?,
        at: parse_time(&row.try_get::<String, _>("at")?)?,
        kind: HistoryKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("history kind {kind:?}")))?,
        record_type: row.try_get("type")?,
        message: row.try_get("message")?,
        user: row.try_get("user_name")?,
        resource_id: row.try_get("resource_id")?,
    })
}

/// Inserts what is new of a poll's feeds and prunes beyond retention, inside `tx`.
async fn insert_feeds(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    connection_id: &str,
    feeds: &Feeds,
    retention: FeedRetention,
) -> Result<(), StoreError> {
    for batch in feeds.history.chunks(UPSERT_BATCH_ROWS) {
        let mut sql = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO history
               (connection_id, id, at, kind, type, message, user_name, resource_id) ",
        );
        sql.push_values(batch, |mut values, record| {
            values
                .push_bind(connection_id)
                .push_bind(&record.id)
                .push_bind(format_time(record.at))
                .push_bind(record.kind.as_str())
                .push_bind(&record.record_type)
                .push_bind(&record.message)
                .push_bind(&record.user)
                .push_bind(&record.resource_id);
        });
        sql.push(" ON CONFLICT DO NOTHING");
        sql.build().execute(&mut **tx).await?;
    }
    let samples: Vec<(&str, &'static str, i64, f64)> = feeds
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
        .collect();
    for batch in samples.chunks(SAMPLE_BATCH_ROWS) {
        let mut sql = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO metric_samples (resource_id, metric, at, value, connection_id) ",
        );
        sql.push_values(batch, |mut values, (resource_id, metric, at, value)| {
            values
                .push_bind(*resource_id)
                .push_bind(*metric)
                .push_bind(*at)
                .push_bind(*value)
                .push_bind(connection_id);
        });
        sql.push(" ON CONFLICT DO NOTHING");
        sql.build().execute(&mut **tx).await?;
    }
    let now = Utc::now();
    let history_cutoff = now - Duration::days(i64::from(retention.history_days));
    sqlx::query("DELETE FROM history WHERE connection_id = ? AND at < ?")
        .bind(connection_id)
        .bind(format_time(history_cutoff))
        .execute(&mut **tx)
        .await?;
    if !feeds.history.is_empty() {
        // Only a poll that added records can push the connection over its row cap.
        sqlx::query(
            "DELETE FROM history WHERE connection_id = ?1 AND id IN (
                 SELECT id FROM history WHERE connection_id = ?1
                 ORDER BY at DESC, id DESC LIMIT -1 OFFSET ?2)",
        )
        .bind(connection_id)
        .bind(i64::from(retention.history_rows_per_connection))
        .execute(&mut **tx)
        .await?;
    }
    let metrics_cutoff = now - Duration::hours(i64::from(retention.metrics_hours));
    sqlx::query("DELETE FROM metric_samples WHERE connection_id = ? AND at < ?")
        .bind(connection_id)
        .bind(metrics_cutoff.timestamp())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_connection(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO connections (id, platform, name, name_key, enabled, poll_interval_seconds,
                settings_json, sealed_secrets, health_json, observed_json, revision, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&record.id)
        .bind(&record.platform)
        .bind(&record.name)
        .bind(name_key(&record.name))
        .bind(record.enabled)
        .bind(i64::from(record.poll_interval_seconds))
        .bind(to_json(&record.settings)?)
        .bind(&record.sealed_secrets)
        .bind(to_json(&record.health)?)
        .bind(record.observed.as_ref().map(to_json).transpose()?)
        .bind(record.revision)
        .bind(format_time(record.created_at))
        .bind(format_time(record.updated_at))
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::NameConflict),
            Err(e) => Err(e.into()),
        }
    }

    async fn update_connection(
        &self,
        record: &ConnectionRecord,
        expected_revision: i64,
    ) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE connections SET name = ?, name_key = ?, enabled = ?, poll_interval_seconds = ?,
                settings_json = ?, sealed_secrets = ?, revision = ?, updated_at = ?
             WHERE id = ? AND platform = ? AND revision = ?",
        )
        .bind(&record.name)
        .bind(name_key(&record.name))
        .bind(record.enabled)
        .bind(i64::from(record.poll_interval_seconds))
        .bind(to_json(&record.settings)?)
        .bind(&record.sealed_secrets)
        .bind(record.revision)
        .bind(format_time(record.updated_at))
        .bind(&record.id)
        .bind(&record.platform)
        .bind(expected_revision)
        .execute(&self.pool)
        .await;
        match result {
            Ok(done) if done.rows_affected() == 1 => Ok(()),
            Ok(_) => {
                let exists = sqlx::query("SELECT 1 FROM connections WHERE id = ? AND platform = ?")
                    .bind(&record.id)
                    .bind(&record.platform)
                    .fetch_optional(&self.pool)
                    .await?
                    .is_some();
                Err(if exists {
                    StoreError::StaleRevision
                } else {
                    StoreError::NotFound
                })
            }
            Err(e) if is_unique_violation(&e) => Err(StoreError::NameConflict),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_connection(
        &self,
        platform: &str,
        id: &str,
    ) -> Result<Option<ConnectionRecord>, StoreError> {
        sqlx::query("SELECT * FROM connections WHERE id = ? AND platform = ?")
            .bind(id)
            .bind(platform)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(connection_from_row)
            .transpose()
    }

    async fn list_connections(&self, platform: &str) -> Result<Vec<ConnectionRecord>, StoreError> {
        sqlx::query("SELECT * FROM connections WHERE platform = ? ORDER BY created_at, id")
            .bind(platform)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(connection_from_row)
            .collect()
    }

    async fn delete_connection(&self, platform: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM connections WHERE id = ? AND platform = ?")
            .bind(id)
            .bind(platform)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn update_health(
        &self,
        id: &str,
        health: &PollHealth,
        observed: Option<&Value>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE connections SET health_json = ?, observed_json = COALESCE(?, observed_json)
             WHERE id = ?",
        )
        .bind(to_json(health)?)
        .bind(observed.map(to_json).transpose()?)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_poll(
        &self,
        id: &str,
        health: &PollHealth,
        observed: &Value,
        resources: &[Resource],
        alerts: PollAlerts<'_>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The first statement writes, so the transaction takes SQLite's write lock at once
        // instead of upgrading from a read lock later (which can fail under contention).
        let updated =
            sqlx::query("UPDATE connections SET health_json = ?, observed_json = ? WHERE id = ?")
                .bind(to_json(health)?)
                .bind(to_json(observed)?)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if updated.rows_affected() == 0 {
            return Ok(false);
        }
        // Diff against what is stored: unchanged bodies (by hash) are not rewritten, so a
        // steady-state poll costs one read of ids and hashes and one timestamp update.
        let stored: HashMap<String, Option<String>> =
            sqlx::query_as("SELECT id, body_hash FROM resources WHERE connection_id = ?")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        // Providers stamp every resource of a poll with the same time; it is recorded once
        // on the connection, and rows written below carry their own.
        let common_seen_at = resources.first().map(|r| format_time(r.last_seen_at));
        if let Some(seen_at) = &common_seen_at {
            sqlx::query("UPDATE connections SET resources_seen_at = ? WHERE id = ?")
                .bind(seen_at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let mut seen = HashSet::with_capacity(resources.len());
        let mut changed = Vec::new();
        for resource in resources {
            let row = StoredResource::from_resource(resource)?;
            seen.insert(row.id.clone());
            let seen_at = format_time(row.last_seen_at);
            let unchanged =
                stored.get(&row.id).and_then(Option::as_deref) == Some(row.hash.as_str());
            if unchanged && common_seen_at.as_deref() >= Some(seen_at.as_str()) {
                continue;
            }
            changed.push((row, seen_at));
        }
        // Multi-row upserts: a first poll of 5,000 VMs is a few dozen statements, not 5,000.
        for batch in changed.chunks(UPSERT_BATCH_ROWS) {
            let mut sql = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO resources
                   (id, connection_id, platform, type, name, body_json, body_hash, last_seen_at) ",
            );
            sql.push_values(batch, |mut values, (row, seen_at)| {
                values
                    .push_bind(&row.id)
                    .push_bind(id)
                    .push_bind(&row.platform)
                    .push_bind(row.resource_type)
                    .push_bind(&row.name)
                    .push_bind(&row.body)
                    .push_bind(&row.hash)
                    .push_bind(seen_at);
            });
            sql.push(
                " ON CONFLICT (id) DO UPDATE SET connection_id = excluded.connection_id,
                   platform = excluded.platform, type = excluded.type, name = excluded.name,
                   body_json = excluded.body_json, body_hash = excluded.body_hash,
                   last_seen_at = excluded.last_seen_at",
            );
            sql.build().execute(&mut *tx).await?;
        }
        for gone in stored.keys().filter(|stored_id| !seen.contains(*stored_id)) {
            sqlx::query("DELETE FROM resources WHERE id = ?")
                .bind(gone)
                .execute(&mut *tx)
                .await?;
        }
        apply_alerts(&mut tx, id, alerts).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn record_unchanged_poll(
        &self,
        id: &str,
        health: &PollHealth,
        observed: &Value,
        seen_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE connections SET health_json = ?, observed_json = ?, resources_seen_at = ?
             WHERE id = ?",
        )
        .bind(to_json(health)?)
        .bind(to_json(observed)?)
        .bind(format_time(seen_at))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    async fn record_feeds(
        &self,
        connection_id: &str,
        feeds: &Feeds,
        retention: FeedRetention,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Writing first takes the write lock at once (see `record_poll`).
        let updated = sqlx::query("UPDATE connections SET feed_cursor = ? WHERE id = ?")
            .bind(&feeds.cursor.0)
            .bind(connection_id)
            .execute(&mut *tx)
            .await?;
        if updated.rows_affected() == 0 {
            return Ok(false);
        }
        insert_feeds(&mut tx, connection_id, feeds, retention).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn feed_cursor(&self, connection_id: &str) -> Result<FeedCursor, StoreError> {
        let cursor: Option<Option<String>> =
            sqlx::query_scalar("SELECT feed_cursor FROM connections WHERE id = ?")
                .bind(connection_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(FeedCursor(cursor.flatten()))
    }

    async fn list_history(&self, query: &HistoryQuery) -> Result<Vec<HistoryRecord>, StoreError> {
        let mut sql =
            sqlx::QueryBuilder::<sqlx::Sqlite>::new("SELECT * FROM history WHERE resource_id = ");
        sql.push_bind(&query.resource_id);
        if let Some(kind) = query.kind {
            sql.push(" AND kind = ").push_bind(kind.as_str());
        }
        if let Some(since) = query.since {
            sql.push(" AND at >= ").push_bind(format_time(since));
        }
        if let Some(after) = &query.after {
            let at = format_time(after.at);
            sql.push(" AND (at < ")
                .push_bind(at.clone())
                .push(" OR (at = ")
                .push_bind(at)
                .push(" AND id < ")
                .push_bind(&after.id)
                .push("))");
        }
        sql.push(" ORDER BY at DESC, id DESC LIMIT ")
            .push_bind(i64::from(query.limit));
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(history_from_row)
            .collect()
    }

    async fn metric_points(
        &self,
        query: &MetricQuery,
    ) -> Result<Vec<(MetricName, Vec<(DateTime<Utc>, f64)>)>, StoreError> {
        let bucket = query.bucket_seconds.max(1);
        let mut sql = sqlx::QueryBuilder::<sqlx::Sqlite>::new("SELECT metric, (at / ");
        sql.push_bind(bucket)
            .push(") * ")
            .push_bind(bucket)
            .push(" AS bucket, avg(value) AS value FROM metric_samples WHERE resource_id = ")
            .push_bind(&query.resource_id)
            .push(" AND at >= ")
            .push_bind(query.since.timestamp())
            .push(" AND at <= ")
            .push_bind(query.until.timestamp());
        if let Some(metric) = query.metric {
            sql.push(" AND metric = ").push_bind(metric.as_str());
        }
        sql.push(" GROUP BY metric, bucket ORDER BY metric, bucket");
        let mut series: Vec<(MetricName, Vec<(DateTime<Utc>, f64)>)> = Vec::new();
        for row in sql.build().fetch_all(&self.pool).await? {
            let name: String = row.try_get("metric")?;
            let metric = MetricName::parse(&name)
                .ok_or_else(|| StoreError::Corrupt(format!("metric name {name:?}")))?;
            let seconds: i64 = row.try_get("bucket")?;
            let at = DateTime::from_timestamp(seconds, 0)
                .ok_or_else(|| StoreError::Corrupt(format!("sample time {seconds}")))?;
            let value: f64 = row.try_get("value")?;
            match series.last_mut() {
                Some((last, points)) if *last == metric => points.push((at, value)),
                _ => series.push((metric, vec![(at, value)])),
            }
        }
        // Rows come sorted by the metric's stored name; answer in the canonical order.
        series.sort_by_key(|(metric, _)| *metric);
        Ok(series)
    }

    async fn list_resources(&self, query: &ResourceQuery) -> Result<Vec<ResourceJson>, StoreError> {
        let mut sql = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "SELECT r.id, r.body_json, COALESCE(max(r.last_seen_at, c.resources_seen_at), r.last_seen_at)
               AS last_seen_at
             FROM resources r JOIN connections c ON c.id = r.connection_id WHERE 1 = 1",
        );
        if let Some(kind) = &query.resource_type {
            sql.push(" AND r.type = ").push_bind(kind);
        }
        if let Some(platform) = &query.platform {
            sql.push(" AND r.platform = ").push_bind(platform);
        }
        if let Some(connection) = &query.connection_id {
            sql.push(" AND r.connection_id = ").push_bind(connection);
        }
        if let Some(text) = &query.text {
            let pattern = format!("%{}%", escape_like(&text.to_lowercase()));
            sql.push(" AND lower(r.name) LIKE ")
                .push_bind(pattern)
                .push(" ESCAPE '\\'");
        }
        if let Some(related) = &query.related_to {
            sql.push(
                " AND EXISTS (SELECT 1 FROM json_each(r.body_json, '$.relations') rel
                   WHERE json_extract(rel.value, '$.target') = ",
            )
            .push_bind(&related.target);
            if let Some(kind) = &related.kind {
                sql.push(" AND json_extract(rel.value, '$.kind') = ")
                    .push_bind(kind);
            }
            sql.push(")");
        }
        if let Some(after) = &query.after {
            sql.push(" AND r.id > ").push_bind(after);
        }
        sql.push(" ORDER BY r.id LIMIT ")
            .push_bind(i64::from(query.limit));
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok(ResourceJson {
                    id: row.try_get("id")?,
                    json: resource_json_text(
                        &row.try_get::<String, _>("body_json")?,
                        &row.try_get::<String, _>("last_seen_at")?,
                    )?,
                })
            })
            .collect()
    }

    async fn get_resource(&self, id: &str) -> Result<Option<Value>, StoreError> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT r.body_json,
                   COALESCE(max(r.last_seen_at, c.resources_seen_at), r.last_seen_at)
                 FROM resources r JOIN connections c ON c.id = r.connection_id WHERE r.id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(body, seen_at)| resource_json(&body, &seen_at))
            .transpose()
    }

    async fn active_alert_counts(&self) -> Result<Vec<ActiveAlertCount>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT connection_id, severity, COUNT(*) AS count FROM alerts
             WHERE resolved_at IS NULL GROUP BY connection_id, severity
             ORDER BY connection_id, severity",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn list_alerts(&self, query: &AlertQuery) -> Result<Vec<Alert>, StoreError> {
        let mut sql = sqlx::QueryBuilder::<sqlx::Sqlite>::new("SELECT * FROM alerts WHERE 1 = 1");
        match query.state {
            Some(AlertState::Active) => {
                sql.push(" AND resolved_at IS NULL");
            }
            Some(AlertState::Resolved) => {
                sql.push(" AND resolved_at IS NOT NULL");
            }
            None => {}
        }
        if let Some(severity) = query.severity {
            sql.push(" AND severity = ").push_bind(severity.as_str());
        }
        if let Some(connection) = &query.connection_id {
            sql.push(" AND connection_id = ").push_bind(connection);
        }
        if let Some(resource) = &query.resource_id {
            sql.push(" AND resource_id = ").push_bind(resource);
        }
        if let Some(after) = &query.after {
            sql.push(" AND id > ").push_bind(after);
        }
        sql.push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(query.limit));
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(alert_from_row)
            .collect()
    }

    async fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, name, scopes_json, token_hash, created_at, last_used_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&token.id)
        .bind(&token.name)
        .bind(to_json(&token.scopes)?)
        .bind(&token.token_hash)
        .bind(format_time(token.created_at))
        .bind(token.last_used_at.map(format_time))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        sqlx::query("SELECT * FROM api_tokens ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(token_from_row)
            .collect()
    }

    async fn delete_token(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn find_token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        sqlx::query("SELECT * FROM api_tokens WHERE token_hash = ?")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(token_from_row)
            .transpose()
    }

    async fn touch_token(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let stale_before = format_time(at - Duration::seconds(TOKEN_TOUCH_INTERVAL_SECONDS));
        sqlx::query(
            "UPDATE api_tokens SET last_used_at = ?
             WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
        )
        .bind(format_time(at))
        .bind(id)
        .bind(stale_before)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn token_count(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
