//! The PostgreSQL store, for several `pylon` replicas sharing one database. The
//! [`Store`](super::Store) queries are the SQLite ones (see `sql.rs`); this module adds
//! connecting, migrating and the scale-out coordination tables only PostgreSQL has (see
//! [`crate::lease`]).

use super::StoreError;
use crate::lease::{AcquiredLease, LeaseStore, Renewal, ReplicaCensus};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long connecting may take before start-up gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long poll records are kept (they exist for audits, not for the API).
const POLL_RUN_RETENTION: &str = "1 day";

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://` or `postgresql://`) and applies
    /// pending migrations.
    ///
    /// Replicas starting together may run this at the same moment. sqlx's migrator takes a
    /// session-level `pg_advisory_lock` keyed by the database name before it reads the
    /// applied versions and releases it after the last migration (sqlx-postgres 0.8,
    /// `PgConnection::lock` in `migrate.rs`, used by `Migrator::run` while
    /// `Migrator::locking` is true, its default), so the second replica waits, then finds
    /// everything applied. We rely on that lock instead of taking our own.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?.application_name("pylon");
        // One connection first, so an unreachable server or a refused login fails start-up
        // with its cause ("connection refused", "password authentication failed"), which the
        // pool would report only as a timeout.
        let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| StoreError::Unreachable(CONNECT_TIMEOUT.as_secs()))??;
        probe.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }
}

/// PostgreSQL numbers its parameters: the shared queries' `?` become `$1`, `$2`, ...
fn sql(text: &'static str) -> Cow<'static, str> {
    Cow::Owned(super::sql::numbered_parameters(text))
}

/// Resources with a relation to a target: the stored body read as `jsonb`.
const RELATION_TARGET_IS: &str = " AND EXISTS (SELECT 1
       FROM jsonb_array_elements(r.body_json::jsonb -> 'relations') rel
       WHERE rel ->> 'target' = ";
const RELATION_KIND_IS: &str = " AND rel ->> 'kind' = ";

impl_sql_store!(PostgresStore, sqlx::Postgres);

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

#[async_trait]
impl LeaseStore for PostgresStore {
    async fn heartbeat(&self, replica: &str, ttl: Duration) -> Result<ReplicaCensus, StoreError> {
        // One round trip: renew this replica, forget dead ones and old poll records, and
        // count live replicas and enabled connections. The outer SELECT runs on the
        // statement's snapshot, which does not see the CTEs' writes; hence `id <> $1` and
        // the `+ 1` for this replica.
        let (live, connections): (i64, i64) = sqlx::query_as(&format!(
            "WITH beat AS (
                INSERT INTO replicas (id, started_at, expires_at)
                VALUES ($1, now(), now() + make_interval(secs => $2))
                ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at
                RETURNING id
             ), dead AS (
                DELETE FROM replicas WHERE expires_at < now() AND id <> $1 RETURNING id
             ), pruned AS (
                DELETE FROM poll_runs WHERE finished_at < now() - interval '{POLL_RUN_RETENTION}'
                RETURNING id
             )
             SELECT (SELECT count(*) FROM replicas WHERE expires_at >= now() AND id <> $1) + 1,
                    (SELECT count(*) FROM connections WHERE enabled)"
        ))
        .bind(replica)
        .bind(seconds(ttl))
        .fetch_one(&self.pool)
        .await?;
        Ok(ReplicaCensus {
            live_replicas: u64::try_from(live).unwrap_or(1).max(1),
            enabled_connections: u64::try_from(connections).unwrap_or(0),
        })
    }

    async fn renew(
        &self,
        replica: &str,
        ttl: Duration,
        held: &[String],
    ) -> Result<Renewal, StoreError> {
        let mut tx = self.pool.begin().await?;
        // A disabled connection's lease would only take a place in the fair share.
        sqlx::query(
            "DELETE FROM leases l USING connections c
             WHERE l.connection_id = c.id AND l.owner = $1 AND NOT c.enabled",
        )
        .bind(replica)
        .execute(&mut *tx)
        .await?;
        // A lease already past its expiry is not renewed: another replica may have taken it,
        // or may be about to; the holder drops it and competes for it like anyone else.
        let renewed = sqlx::query_scalar(
            "UPDATE leases SET expires_at = now() + make_interval(secs => $2)
             WHERE owner = $1 AND expires_at > now()
             RETURNING connection_id",
        )
        .bind(replica)
        .bind(seconds(ttl))
        .fetch_all(&mut *tx)
        .await?;
        let retired = sqlx::query_scalar(
            "SELECT h.id FROM unnest($1::text[]) AS h (id)
             WHERE NOT EXISTS (SELECT 1 FROM connections c WHERE c.id = h.id AND c.enabled)",
        )
        .bind(held)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Renewal { renewed, retired })
    }

    async fn acquire(
        &self,
        replica: &str,
        ttl: Duration,
        max: u64,
    ) -> Result<Vec<AcquiredLease>, StoreError> {
        // Free or expired leases of enabled connections, in random order so replicas
        // acquiring at the same moment mostly want different rows. The upsert's `WHERE` is
        // re-checked on the current row when two replicas race for one lease: the loser's
        // statement skips it (read committed), so a lease never has two owners.
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "WITH candidates AS MATERIALIZED (
                SELECT c.id, c.platform, l.owner AS previous
                FROM connections c LEFT JOIN leases l ON l.connection_id = c.id
                WHERE c.enabled AND (l.connection_id IS NULL OR l.expires_at <= now())
                ORDER BY random() LIMIT $2
             )
             INSERT INTO leases (connection_id, owner, acquired_at, expires_at)
             SELECT id, $1, now(), now() + make_interval(secs => $3) FROM candidates
             ON CONFLICT (connection_id) DO UPDATE SET owner = excluded.owner,
                acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
                WHERE leases.expires_at <= now()
             RETURNING connection_id,
                (SELECT platform FROM candidates WHERE candidates.id = leases.connection_id),
                (SELECT previous FROM candidates WHERE candidates.id = leases.connection_id)",
        )
        .bind(replica)
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .bind(seconds(ttl))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(connection_id, platform, previous)| AcquiredLease {
                takeover: previous.is_some_and(|owner| owner != replica),
                connection_id,
                platform,
            })
            .collect())
    }

    async fn release(&self, replica: &str, connection_ids: &[String]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE owner = $1 AND connection_id = ANY($2)")
            .bind(replica)
            .bind(connection_ids)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn leave(&self, replica: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM leases WHERE owner = $1")
            .bind(replica)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM replicas WHERE id = $1")
            .bind(replica)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_poll_run(
        &self,
        connection_id: &str,
        replica: &str,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // No foreign key: a run of a connection deleted meanwhile is still a fact worth
        // keeping for the audit.
        sqlx::query(
            "INSERT INTO poll_runs (connection_id, replica_id, started_at, finished_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(connection_id)
        .bind(replica)
        .bind(started_at)
        .bind(finished_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
