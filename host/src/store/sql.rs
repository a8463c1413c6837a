//! The one implementation of [`Store`](super::Store) for every SQL database, so SQLite and
//! PostgreSQL behave identically by construction instead of by two copies kept in step.
//!
//! `impl_sql_store!(Store, Database)` expands in a store module that defines
//! `fn sql(text: &'static str) -> Cow<'static, str>`, which turns the dialect-neutral text
//! written here into the module's dialect, and the two fragments JSON needs, which no
//! spelling shares: `RELATION_TARGET_IS` (opens `AND EXISTS (...` over the resource's
//! `relations`, ending in a comparison of a relation's `target` with the next parameter) and
//! `RELATION_KIND_IS` (the same for its `kind`); the macro closes the parenthesis. The rules
//! that keep the rest neutral:
//! - parameters are `?`; `sql` rewrites them for databases that number them (`$1`);
//! - only SQL both databases read alike: no `max(a, b)` (SQLite) or `GREATEST` (PostgreSQL),
//!   `CASE` instead; `ON CONFLICT ... excluded.`, `LIKE ... ESCAPE`, `COALESCE`;
//! - timestamps are RFC 3339 text (see [`format_time`](super::format_time)), compared as
//!   text, and PostgreSQL's text columns use the `C` collation, so comparisons, cursors and
//!   `ORDER BY` agree byte for byte with SQLite;
//! - multi-row statements go through `sqlx::QueryBuilder`, which numbers its own
//!   parameters.
//!
//! A macro rather than a function generic over `sqlx::Database` because the generic form
//! needs a bound for every type bound and decoded on every database, which costs more to
//! read than the few names this macro resolves at its call site.

macro_rules! impl_sql_store {
    ($store:ty, $db:ty) => {
        /// The alert lifecycle of one successful poll (see
        /// [`plan_alerts`]($crate::store::plan_alerts)), inside its transaction.
        async fn apply_alerts(
            tx: &mut sqlx::Transaction<'_, $db>,
            connection_id: &str,
            alerts: $crate::store::PollAlerts<'_>,
        ) -> Result<(), $crate::store::StoreError> {
            let open: Vec<$crate::store::OpenAlert> = sqlx::query_as(&sql(
                "SELECT id, resource_id, condition_key, severity, name, message, acknowledged
                 FROM alerts WHERE connection_id = ? AND resolved_at IS NULL
                 ORDER BY id",
            ))
            .bind(connection_id)
            .fetch_all(&mut **tx)
            .await?;
            let plan = $crate::store::plan_alerts(&open, alerts);
            for (id, condition) in &plan.changed {
                sqlx::query(&sql(
                    "UPDATE alerts SET severity = ?, name = ?, message = ?, acknowledged = ?
                     WHERE id = ?",
                ))
                .bind(condition.severity.as_str())
                .bind(&condition.name)
                .bind(&condition.message)
                .bind(condition.acknowledged)
                .bind(*id)
                .execute(&mut **tx)
                .await?;
            }
            for condition in &plan.opened {
                sqlx::query(&sql(
                    "INSERT INTO alerts (id, connection_id, resource_id, condition_key, source,
                        severity, name, message, since, resolved_at, acknowledged)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                ))
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(connection_id)
                .bind(&condition.resource_id)
                .bind(&condition.key)
                .bind(condition.source.as_str())
                .bind(condition.severity.as_str())
                .bind(&condition.name)
                .bind(&condition.message)
                .bind(
                    condition
                        .since
                        .map_or_else(|| plan.at.clone(), $crate::store::format_time),
                )
                .bind(condition.acknowledged)
                .execute(&mut **tx)
                .await?;
            }
            for id in &plan.resolved {
                sqlx::query(&sql("UPDATE alerts SET resolved_at = ? WHERE id = ?"))
                    .bind(&plan.at)
                    .bind(*id)
                    .execute(&mut **tx)
                    .await?;
            }
            sqlx::query(&sql(
                "DELETE FROM alerts WHERE connection_id = ? AND resolved_at < ?",
            ))
            .bind(connection_id)
            .bind(&plan.prune_before)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }

        /// Inserts what is new of a poll's feeds and prunes beyond retention, inside `tx`.
        async fn insert_feeds(
            tx: &mut sqlx::Transaction<'_, $db>,
            connection_id: &str,
            feeds: &pylon_core::feeds::Feeds,
            retention: $crate::store::FeedRetention,
        ) -> Result<(), $crate::store::StoreError> {
            use $crate::store::format_time;
            for batch in feeds.history.chunks($crate::store::UPSERT_BATCH_ROWS) {
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO history
                       (connection_id, id, at, kind, type, message, user_name, resource_id) ",
                );
                query.push_values(batch, |mut values, record| {
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
                query.push(" ON CONFLICT DO NOTHING");
                query.build().persistent(false).execute(&mut **tx).await?;
            }
            let samples = $crate::store::sample_rows(feeds);
            for batch in samples.chunks($crate::store::SAMPLE_BATCH_ROWS) {
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO metric_samples (resource_id, metric, at, value, connection_id) ",
                );
                query.push_values(batch, |mut values, (resource_id, metric, at, value)| {
                    values
                        .push_bind(*resource_id)
                        .push_bind(*metric)
                        .push_bind(*at)
                        .push_bind(*value)
                        .push_bind(connection_id);
                });
                query.push(" ON CONFLICT DO NOTHING");
                query.build().persistent(false).execute(&mut **tx).await?;
            }
            let now = chrono::Utc::now();
            let history_cutoff = now - chrono::Duration::days(i64::from(retention.history_days));
            sqlx::query(&sql("DELETE FROM history WHERE connection_id = ? AND at < ?"))
                .bind(connection_id)
                .bind(format_time(history_cutoff))
                .execute(&mut **tx)
                .await?;
            if !feeds.history.is_empty() {
                // Only a poll that added records can push the connection over its row cap.
                // `LIMIT <max> OFFSET n` because SQLite has no bare `OFFSET`.
                sqlx::query(&sql(
                    "DELETE FROM history WHERE connection_id = ? AND id IN (
                         SELECT id FROM history WHERE connection_id = ?
                         ORDER BY at DESC, id DESC LIMIT ? OFFSET ?)",
                ))
                .bind(connection_id)
                .bind(connection_id)
                .bind(i64::MAX)
                .bind(i64::from(retention.history_rows_per_connection))
                .execute(&mut **tx)
                .await?;
            }
            let metrics_cutoff = now - chrono::Duration::hours(i64::from(retention.metrics_hours));
            sqlx::query(&sql("DELETE FROM metric_samples WHERE connection_id = ? AND at < ?"))
                .bind(connection_id)
                .bind(metrics_cutoff.timestamp())
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn ping(&self) -> Result<(), $crate::store::StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn insert_connection(
                &self,
                record: &$crate::store::ConnectionRecord,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::{format_time, is_unique_violation, name_key, to_json};
                let result = sqlx::query(&sql(
                    "INSERT INTO connections (id, platform, name, name_key, enabled,
                        poll_interval_seconds, settings_json, sealed_secrets, health_json,
                        observed_json, revision, created_at, updated_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ))
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
                    Err(e) if is_unique_violation(&e) => {
                        Err($crate::store::StoreError::NameConflict)
                    }
                    Err(e) => Err(e.into()),
                }
            }

            async fn update_connection(
                &self,
                record: &$crate::store::ConnectionRecord,
                expected_revision: i64,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::{format_time, is_unique_violation, name_key, to_json, StoreError};
                let result = sqlx::query(&sql(
                    "UPDATE connections SET name = ?, name_key = ?, enabled = ?,
                        poll_interval_seconds = ?, settings_json = ?, sealed_secrets = ?,
                        revision = ?, updated_at = ?
                     WHERE id = ? AND platform = ? AND revision = ?",
                ))
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
                        let exists = sqlx::query(&sql(
                            "SELECT 1 FROM connections WHERE id = ? AND platform = ?",
                        ))
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
            ) -> Result<Option<$crate::store::ConnectionRecord>, $crate::store::StoreError> {
                sqlx::query_as::<_, $crate::store::ConnectionRow>(&sql(
                    "SELECT * FROM connections WHERE id = ? AND platform = ?",
                ))
                .bind(id)
                .bind(platform)
                .fetch_optional(&self.pool)
                .await?
                .map(TryInto::try_into)
                .transpose()
            }

            async fn list_connections(
                &self,
                platform: &str,
            ) -> Result<Vec<$crate::store::ConnectionRecord>, $crate::store::StoreError> {
                sqlx::query_as::<_, $crate::store::ConnectionRow>(&sql(
                    "SELECT * FROM connections WHERE platform = ? ORDER BY created_at, id",
                ))
                .bind(platform)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(TryInto::try_into)
                .collect()
            }

            async fn delete_connection(
                &self,
                platform: &str,
                id: &str,
            ) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query(&sql("DELETE FROM connections WHERE id = ? AND platform = ?"))
                    .bind(id)
                    .bind(platform)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn update_health(
                &self,
                id: &str,
                health: &pylon_core::PollHealth,
                observed: Option<&serde_json::Value>,
            ) -> Result<bool, $crate::store::StoreError> {
                use $crate::store::to_json;
                let done = sqlx::query(&sql(
                    "UPDATE connections SET health_json = ?,
                        observed_json = COALESCE(?, observed_json)
                     WHERE id = ?",
                ))
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
                health: &pylon_core::PollHealth,
                observed: &serde_json::Value,
                resources: &[pylon_core::model::Resource],
                alerts: $crate::store::PollAlerts<'_>,
            ) -> Result<bool, $crate::store::StoreError> {
                use $crate::store::to_json;
                let mut tx = self.pool.begin().await?;
                // The first statement writes, so the transaction takes SQLite's write lock at
                // once instead of upgrading from a read lock later (which can fail under
                // contention), and on PostgreSQL locks the connection's row, so two writers
                // of one connection's poll queue instead of interleaving their diffs.
                let updated = sqlx::query(&sql(
                    "UPDATE connections SET health_json = ?, observed_json = ? WHERE id = ?",
                ))
                .bind(to_json(health)?)
                .bind(to_json(observed)?)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() == 0 {
                    return Ok(false);
                }
                let stored: std::collections::HashMap<String, Option<String>> =
                    sqlx::query_as(&sql("SELECT id, body_hash FROM resources WHERE connection_id = ?"))
                        .bind(id)
                        .fetch_all(&mut *tx)
                        .await?
                        .into_iter()
                        .collect();
                let plan = $crate::store::plan_resources(&stored, resources)?;
                if let Some(seen_at) = &plan.common_seen_at {
                    sqlx::query(&sql("UPDATE connections SET resources_seen_at = ? WHERE id = ?"))
                        .bind(seen_at)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                // Multi-row upserts: a first poll of 5,000 VMs is a few dozen statements, not
                // 5,000.
                for batch in plan.changed.chunks($crate::store::UPSERT_BATCH_ROWS) {
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO resources
                           (id, connection_id, platform, type, name, body_json, body_hash,
                            last_seen_at) ",
                    );
                    query.push_values(batch, |mut values, (row, seen_at)| {
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
                    query.push(
                        " ON CONFLICT (id) DO UPDATE SET connection_id = excluded.connection_id,
                           platform = excluded.platform, type = excluded.type,
                           name = excluded.name, body_json = excluded.body_json,
                           body_hash = excluded.body_hash, last_seen_at = excluded.last_seen_at",
                    );
                    query.build().persistent(false).execute(&mut *tx).await?;
                }
                for gone in &plan.gone {
                    sqlx::query(&sql("DELETE FROM resources WHERE id = ?"))
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
                health: &pylon_core::PollHealth,
                observed: &serde_json::Value,
                seen_at: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                use $crate::store::{format_time, to_json};
                let updated = sqlx::query(&sql(
                    "UPDATE connections SET health_json = ?, observed_json = ?,
                        resources_seen_at = ?
                     WHERE id = ?",
                ))
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
                feeds: &pylon_core::feeds::Feeds,
                retention: $crate::store::FeedRetention,
            ) -> Result<bool, $crate::store::StoreError> {
                let mut tx = self.pool.begin().await?;
                // Writing first takes the write lock at once (see `record_poll`).
                let updated = sqlx::query(&sql("UPDATE connections SET feed_cursor = ? WHERE id = ?"))
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

            async fn feed_cursor(
                &self,
                connection_id: &str,
            ) -> Result<pylon_core::feeds::FeedCursor, $crate::store::StoreError> {
                let cursor: Option<Option<String>> =
                    sqlx::query_scalar(&sql("SELECT feed_cursor FROM connections WHERE id = ?"))
                        .bind(connection_id)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(pylon_core::feeds::FeedCursor(cursor.flatten()))
            }

            async fn list_history(
                &self,
                query: &$crate::store::HistoryQuery,
            ) -> Result<Vec<pylon_core::feeds::HistoryRecord>, $crate::store::StoreError> {
                use $crate::store::format_time;
                let mut sql =
                    sqlx::QueryBuilder::<$db>::new("SELECT * FROM history WHERE resource_id = ");
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
                sql.build_query_as::<$crate::store::HistoryRow>()
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(TryInto::try_into)
                    .collect()
            }

            async fn metric_points(
                &self,
                query: &$crate::store::MetricQuery,
            ) -> Result<
                Vec<(
                    pylon_core::feeds::MetricName,
                    Vec<(chrono::DateTime<chrono::Utc>, f64)>,
                )>,
                $crate::store::StoreError,
            > {
                let bucket = query.bucket_seconds.max(1);
                // Integer division on both databases: `at` and the bucket are 64-bit integers.
                let mut sql = sqlx::QueryBuilder::<$db>::new("SELECT metric, (at / ");
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
                let rows: Vec<(String, i64, f64)> =
                    sql.build_query_as().fetch_all(&self.pool).await?;
                $crate::store::metric_series(rows)
            }

            async fn list_resources(
                &self,
                query: &$crate::store::ResourceQuery,
            ) -> Result<Vec<$crate::store::ResourceJson>, $crate::store::StoreError> {
                use sqlx::Row as _;
                let mut sql = sqlx::QueryBuilder::<$db>::new(concat!(
                    "SELECT r.id, r.body_json, ",
                    $crate::store::sql::resource_seen_at!(),
                    " AS last_seen_at
                     FROM resources r JOIN connections c ON c.id = r.connection_id WHERE 1 = 1"
                ));
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
                    let pattern = format!("%{}%", $crate::store::escape_like(&text.to_lowercase()));
                    sql.push(" AND lower(r.name) LIKE ")
                        .push_bind(pattern)
                        .push(" ESCAPE '\\'");
                }
                if let Some(related) = &query.related_to {
                    // JSON differs by dialect: the store module spells "some relation of the
                    // resource has this target (and kind)".
                    sql.push(RELATION_TARGET_IS).push_bind(&related.target);
                    if let Some(kind) = &related.kind {
                        sql.push(RELATION_KIND_IS).push_bind(kind);
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
                        Ok($crate::store::ResourceJson {
                            id: row.try_get("id")?,
                            json: $crate::store::resource_json_text(
                                &row.try_get::<String, _>("body_json")?,
                                &row.try_get::<String, _>("last_seen_at")?,
                            )?,
                        })
                    })
                    .collect()
            }

            async fn get_resource(
                &self,
                id: &str,
            ) -> Result<Option<serde_json::Value>, $crate::store::StoreError> {
                let row: Option<(String, String)> = sqlx::query_as(&sql(concat!(
                    "SELECT r.body_json, ",
                    $crate::store::sql::resource_seen_at!(),
                    " FROM resources r JOIN connections c ON c.id = r.connection_id
                     WHERE r.id = ?"
                )))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|(body, seen_at)| $crate::store::resource_json(&body, &seen_at))
                    .transpose()
            }

            async fn active_alert_counts(
                &self,
            ) -> Result<Vec<$crate::store::ActiveAlertCount>, $crate::store::StoreError> {
                Ok(sqlx::query_as(
                    "SELECT connection_id, severity, COUNT(*) AS count FROM alerts
                     WHERE resolved_at IS NULL GROUP BY connection_id, severity
                     ORDER BY connection_id, severity",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn list_alerts(
                &self,
                query: &$crate::store::AlertQuery,
            ) -> Result<Vec<pylon_core::model::Alert>, $crate::store::StoreError> {
                use pylon_core::model::AlertState;
                let mut sql = sqlx::QueryBuilder::<$db>::new("SELECT * FROM alerts WHERE 1 = 1");
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
                sql.build_query_as::<$crate::store::AlertRow>()
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(TryInto::try_into)
                    .collect()
            }

            async fn insert_token(
                &self,
                token: &$crate::store::TokenRecord,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::{format_time, to_json};
                sqlx::query(&sql(
                    "INSERT INTO api_tokens
                        (id, name, scopes_json, token_hash, created_at, last_used_at)
                     VALUES (?, ?, ?, ?, ?, ?)",
                ))
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

            async fn list_tokens(
                &self,
            ) -> Result<Vec<$crate::store::TokenRecord>, $crate::store::StoreError> {
                sqlx::query_as::<_, $crate::store::TokenRow>(
                    "SELECT * FROM api_tokens ORDER BY created_at, id",
                )
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(TryInto::try_into)
                .collect()
            }

            async fn delete_token(&self, id: &str) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query(&sql("DELETE FROM api_tokens WHERE id = ?"))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn find_token_by_hash(
                &self,
                hash: &str,
            ) -> Result<Option<$crate::store::TokenRecord>, $crate::store::StoreError> {
                sqlx::query_as::<_, $crate::store::TokenRow>(&sql(
                    "SELECT * FROM api_tokens WHERE token_hash = ?",
                ))
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?
                .map(TryInto::try_into)
                .transpose()
            }

            async fn touch_token(
                &self,
                id: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::store::StoreError> {
                use $crate::store::{format_time, TOKEN_TOUCH_INTERVAL_SECONDS};
                let stale_before =
                    format_time(at - chrono::Duration::seconds(TOKEN_TOUCH_INTERVAL_SECONDS));
                sqlx::query(&sql(
                    "UPDATE api_tokens SET last_used_at = ?
                     WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
                ))
                .bind(format_time(at))
                .bind(id)
                .bind(stale_before)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn token_count(&self) -> Result<u64, $crate::store::StoreError> {
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(u64::try_from(count).unwrap_or(0))
            }
        }
    };
}

/// When a stored resource was last seen: its own `last_seen_at`, or its connection's
/// `resources_seen_at` when that is later (see the `resources_seen_at` migration). `CASE`
/// because SQLite's two-argument `max` and PostgreSQL's `GREATEST` have no common spelling;
/// a `NULL` `resources_seen_at` compares as unknown and falls to the row's own time.
macro_rules! resource_seen_at {
    () => {
        "CASE WHEN c.resources_seen_at > r.last_seen_at THEN c.resources_seen_at
              ELSE r.last_seen_at END"
    };
}

pub(crate) use resource_seen_at;

/// Rewrites `?` parameters as `$1`, `$2`, ... for PostgreSQL, leaving quoted text alone.
pub(super) fn numbered_parameters(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut number = 0;
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                number += 1;
                out.push('$');
                out.push_str(&number.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::numbered_parameters;

    #[test]
    fn parameters_are_numbered_outside_quotes() {
        assert_eq!(
            numbered_parameters("UPDATE t SET a = ?, b = '?' WHERE c = ? AND d LIKE ? ESCAPE '\\'"),
            "UPDATE t SET a = $1, b = '?' WHERE c = $2 AND d LIKE $3 ESCAPE '\\'"
        );
    }
}
