//! The poll scheduler: one task per enabled connection, each on its own interval with a
//! little jitter, bounded by a global concurrency limit, never overlapping itself.
//!
//! A task keeps one long-lived provider session between polls (providers keep their own
//! sessions alive and re-login when the platform forgets them); after a failed or timed-out
//! poll the session is dropped and the next poll connects afresh. Editing a connection
//! restarts its task with the new configuration and polls at once; disabling or deleting it
//! interrupts any poll in flight. Shutdown lets polls in flight finish (each is bounded by
//! the poll timeout) and closes every session.
//!
//! With several replicas (PostgreSQL), the scheduler polls only the connections whose lease
//! this replica holds ([`Ownership`]); the lease coordinator ([`crate::lease`]) tells it when
//! that set changes and calls [`PollScheduler::reconcile`] every tick, which is also how
//! edits and deletes made through another replica reach this one.

use crate::lease::Ownership;
use crate::metrics::PollMetrics;
use crate::secrets::SecretBox;
use crate::store::{ConnectionRecord, FeedRetention, PollAlerts, Store, StoreError};
use chrono::{DateTime, Utc};
use pylon_core::feeds::Feeds;
use pylon_core::model::{AlertCondition, ContributionSummary, Projection, Resource};
use pylon_core::provider::{Observation, ProviderSession};
use pylon_core::{
    ConnectionConfig, FailureCategory, PollHealth, Provider, ProviderError, Registry,
};
use rand::Rng;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Scheduler limits, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerSettings {
    /// Polls running at once across all connections.
    pub max_concurrent_polls: usize,
    /// Upper bound of one poll (connect, collect, project).
    pub poll_timeout: Duration,
    /// How much history and performance data is kept.
    pub retention: FeedRetention,
    /// Whether feeds (history, performance) are read after each successful poll.
    pub collect_feeds: bool,
}

struct ConnectionTask {
    revision: i64,
    /// Interrupts the task at once, even mid-poll (disable, delete, edit).
    abort: CancellationToken,
    /// Asks for an immediate poll.
    wake: Arc<Notify>,
    handle: JoinHandle<()>,
}

pub struct PollScheduler {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    secrets: Arc<SecretBox>,
    settings: SchedulerSettings,
    permits: Arc<Semaphore>,
    /// Stops tasks between polls (graceful shutdown).
    stop: CancellationToken,
    tasks: Mutex<HashMap<String, ConnectionTask>>,
    metrics: Arc<PollMetrics>,
    /// Per connection, when the last poll cycle (the poll and its feeds) that finished began.
    cycles: FinishedCycles,
    /// With several replicas, which connections this one may poll; `None` polls them all.
    ownership: Option<Ownership>,
}

impl PollScheduler {
    pub fn new(
        store: Arc<dyn Store>,
        registry: Arc<Registry>,
        secrets: Arc<SecretBox>,
        settings: SchedulerSettings,
        ownership: Option<Ownership>,
    ) -> Self {
        Self {
            ownership,
            store,
            registry,
            secrets,
            permits: Arc::new(Semaphore::new(settings.max_concurrent_polls.max(1))),
            settings,
            stop: CancellationToken::new(),
            tasks: Mutex::new(HashMap::new()),
            metrics: Arc::new(PollMetrics::default()),
            cycles: FinishedCycles::default(),
        }
    }

    /// Counters of finished polls, for `GET /metrics`.
    /// When the last poll cycle of `id` that finished (its poll and, after a success, its
    /// feeds) began: a cycle that began after a change has seen all of it. For tests and
    /// tools that wait for a poll they asked for.
    pub fn last_finished_cycle(&self, id: &str) -> Option<DateTime<Utc>> {
        self.cycles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .copied()
    }

    pub fn metrics(&self) -> &PollMetrics {
        &self.metrics
    }

    /// Schedules every enabled connection of every registered provider.
    pub async fn start_all(&self) -> Result<(), crate::store::StoreError> {
        for provider in self.registry.providers() {
            let platform = provider.descriptor().platform;
            for record in self.store.list_connections(platform).await? {
                let id = record.id.clone();
                self.apply(platform, &id, Some(record)).await;
            }
        }
        Ok(())
    }

    /// Brings every task in line with the database: what `start_all` does, plus stopping
    /// tasks of connections that are gone. Run by the lease coordinator every tick, so edits
    /// and deletes made through another replica take effect here within one tick.
    pub async fn reconcile(&self) -> Result<(), StoreError> {
        let mut present = HashSet::new();
        for provider in self.registry.providers() {
            let platform = provider.descriptor().platform;
            for record in self.store.list_connections(platform).await? {
                let id = record.id.clone();
                present.insert(id.clone());
                self.apply(platform, &id, Some(record)).await;
            }
        }
        let gone: Vec<String> = self
            .tasks
            .lock()
            .await
            .keys()
            .filter(|id| !present.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            self.stop_task(&id).await;
            self.metrics.forget(&id);
        }
        Ok(())
    }

    /// Stops at once (even mid-poll) the tasks of connections whose lease this replica no
    /// longer holds.
    pub async fn stop_unheld(&self, ids: &[String]) {
        for id in ids {
            if !self.ownership.as_ref().is_some_and(|o| o.holds(id)) {
                self.stop_task(id).await;
            }
        }
    }

    async fn stop_task(&self, id: &str) {
        if let Some(task) = self.tasks.lock().await.remove(id) {
            task.abort.cancel();
            drop(task.handle);
        }
    }

    /// Brings the task of one connection in line with its stored state: started when
    /// enabled, restarted when its configuration changed, stopped when disabled or gone.
    pub async fn sync(&self, platform: &str, id: &str) {
        if let Some(ownership) = &self.ownership {
            // A connection created or enabled here is leased (by this replica or another) on
            // the next lease tick; ask for that tick now rather than up to a tick later.
            ownership.wake();
        }
        match self.store.get_connection(platform, id).await {
            Ok(record) => self.apply(platform, id, record).await,
            Err(error) => {
                tracing::error!(%platform, connection_id = %id, %error, "cannot read connection to schedule it");
            }
        }
    }

    /// Asks for an immediate poll of a scheduled connection. Returns `false` if it is not
    /// scheduled (disabled or unknown).
    pub async fn poll_now(&self, id: &str) -> bool {
        match self.tasks.lock().await.get(id) {
            Some(task) => {
                task.wake.notify_one();
                true
            }
            None => false,
        }
    }

    /// Ids of the connections being polled.
    pub async fn scheduled(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.tasks.lock().await.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Stops every task after its poll in flight and closes every session.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let tasks: Vec<ConnectionTask> = self.tasks.lock().await.drain().map(|(_, t)| t).collect();
        for task in tasks {
            if let Err(error) = task.handle.await {
                tracing::warn!(%error, "poll task ended abnormally");
            }
        }
    }

    async fn apply(&self, platform: &str, id: &str, record: Option<ConnectionRecord>) {
        let mut tasks = self.tasks.lock().await;
        let record_deleted = record.is_none();
        let held = self.ownership.as_ref().is_none_or(|o| o.holds(id));
        let wanted = record.filter(|r| r.enabled && held && !self.stop.is_cancelled());
        if let (Some(task), Some(record)) = (tasks.get(id), &wanted) {
            if task.revision == record.revision {
                return;
            }
        }
        if let Some(task) = tasks.remove(id) {
            task.abort.cancel();
            // The task closes its session on the way out; do not wait for it here.
            drop(task.handle);
        }
        let Some(record) = wanted else {
            if record_deleted {
                self.metrics.forget(id);
            }
            return;
        };
        let Some(provider) = self.registry.by_platform(platform).cloned() else {
            return;
        };
        let config = match record.config(&self.secrets) {
            Ok(config) => config,
            Err(error) => {
                tracing::error!(%platform, connection_id = %id, %error, "cannot open stored secrets; not polling");
                return;
            }
        };
        let abort = CancellationToken::new();
        let wake = Arc::new(Notify::new());
        let worker = PollWorker {
            id: id.to_owned(),
            platform: platform.to_owned(),
            provider,
            config,
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            cycles: self.cycles.clone(),
            permits: self.permits.clone(),
            poll_timeout: self.settings.poll_timeout,
            retention: self.settings.retention,
            collect_feeds: self.settings.collect_feeds,
            abort: abort.clone(),
            stop: self.stop.clone(),
            wake: wake.clone(),
            last_recorded: None,
            last_summary: None,
            ownership: self.ownership.clone(),
        };
        let handle = tokio::spawn(worker.run());
        tasks.insert(
            id.to_owned(),
            ConnectionTask {
                revision: record.revision,
                abort,
                wake,
                handle,
            },
        );
    }
}

/// When each connection's last finished poll cycle began (see
/// [`PollScheduler::last_finished_cycle`]).
type FinishedCycles = Arc<std::sync::Mutex<HashMap<String, DateTime<Utc>>>>;

/// The loop that polls one connection.
struct PollWorker {
    id: String,
    platform: String,
    provider: Arc<dyn Provider>,
    config: ConnectionConfig,
    store: Arc<dyn Store>,
    metrics: Arc<PollMetrics>,
    cycles: FinishedCycles,
    permits: Arc<Semaphore>,
    poll_timeout: Duration,
    retention: FeedRetention,
    collect_feeds: bool,
    abort: CancellationToken,
    stop: CancellationToken,
    wake: Arc<Notify>,
    /// The resources and alert conditions of the last recorded successful poll, to skip the
    /// store diff when a poll changed nothing.
    last_recorded: Option<(Vec<Resource>, Vec<AlertCondition>)>,
    /// The summary of the last recorded successful poll (without feed issues), reused
    /// (with a new `collectedAt`) when the provider says a poll saw nothing change.
    last_summary: Option<ContributionSummary>,
    /// With several replicas: where each poll is recorded with this replica's id.
    ownership: Option<Ownership>,
}

/// A successful poll as recorded: what the `poll succeeded` log line reports.
struct RecordedPoll {
    summary: ContributionSummary,
    /// The provider said nothing changed, so nothing was projected.
    skipped_projection: bool,
    /// The comparison with the last poll and the store write.
    store_time: Duration,
    stored: Result<(), StoreError>,
}

/// What one successful poll produced.
struct Polled {
    inventory: PolledInventory,
    /// The provider's observation, handed back with the feeds read after it.
    observation: Observation,
}

enum PolledInventory {
    Projected(Box<Projection>),
    /// The provider saw nothing change since the last recorded poll of this session
    /// ([`Provider::unchanged`]), so nothing was projected.
    Unchanged,
}

impl PollWorker {
    async fn run(mut self) {
        let interval = Duration::from_secs(u64::from(self.config.poll_interval_seconds));
        let mut session: Option<Box<dyn ProviderSession>> = None;
        let mut next = Instant::now();
        loop {
            tokio::select! {
                () = self.abort.cancelled() => break,
                () = self.stop.cancelled() => break,
                () = tokio::time::sleep_until(next) => {},
                () = self.wake.notified() => {},
            }
            let permit = tokio::select! {
                () = self.abort.cancelled() => break,
                () = self.stop.cancelled() => break,
                permit = self.permits.clone().acquire_owned() => permit,
            };
            let Ok(_permit) = permit else { break };
            let started = Instant::now();
            // The attempt's time is when it began: a poll requested after a change is then
            // known to have seen it (`lastAttemptAt` later than the request).
            let attempted_at = Utc::now();
            // Only `abort` interrupts a poll in flight; shutdown lets it finish.
            let outcome = tokio::select! {
                () = self.abort.cancelled() => {
                    self.record_run(attempted_at).await;
                    break;
                }
                outcome = tokio::time::timeout(self.poll_timeout, self.poll_once(&mut session)) => outcome,
            };
            self.record_run(attempted_at).await;
            let outcome = outcome.unwrap_or_else(|_| {
                Err(ProviderError::new(
                    FailureCategory::Timeout,
                    format!(
                        "the poll did not finish within {} seconds",
                        self.poll_timeout.as_secs()
                    ),
                ))
            });
            if outcome.is_err() {
                // The session may be broken or mid-call; start clean next time.
                if let Some(mut broken) = session.take() {
                    broken.close().await;
                }
            }
            if self.abort.is_cancelled() {
                break;
            }
            let (outcome, observation) = match outcome {
                Ok(Polled {
                    inventory,
                    observation,
                }) => (Ok(inventory), Some(observation)),
                Err(error) => (Err(error), None),
            };
            let recorded = self.record(outcome, started.elapsed(), attempted_at).await;
            // The feeds come second, after the inventory and health are recorded, so a slow
            // or failing feed never delays or fails them.
            if let (true, true, Some(observation)) = (recorded, self.collect_feeds, observation) {
                let feeds_started = Instant::now();
                let feeds = tokio::select! {
                    () = self.abort.cancelled() => break,
                    feeds = tokio::time::timeout(self.poll_timeout, self.read_feeds(&mut session, &observation)) => feeds,
                };
                let feeds = feeds.unwrap_or_else(|_| {
                    Err(ProviderError::new(
                        FailureCategory::Timeout,
                        format!(
                            "the feeds were not read within {} seconds",
                            self.poll_timeout.as_secs()
                        ),
                    ))
                });
                let feeds = match feeds {
                    Ok(feeds) => feeds,
                    Err(error) => {
                        // The session may be broken or mid-call; the next poll starts clean.
                        if let Some(mut broken) = session.take() {
                            broken.close().await;
                        }
                        feed_failure(error)
                    }
                };
                self.record_feeds(feeds, feeds_started.elapsed(), attempted_at)
                    .await;
            }
            self.cycles
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(self.id.clone(), attempted_at);
            next = started + interval + jitter(interval);
        }
        if let Some(mut session) = session.take() {
            session.close().await;
        }
        tracing::debug!(platform = %self.platform, connection_id = %self.id, "poll task stopped");
    }

    /// With several replicas, records that this replica polled the connection (see
    /// [`crate::lease::LeaseStore::record_poll_run`]). An audit failure is logged, never a
    /// reason to drop a poll's result.
    async fn record_run(&self, started_at: DateTime<Utc>) {
        let Some(ownership) = &self.ownership else {
            return;
        };
        if let Err(error) = ownership
            .runs
            .record_poll_run(&self.id, &ownership.replica_id, started_at, Utc::now())
            .await
        {
            tracing::warn!(connection_id = %self.id, %error, "cannot record the poll run");
        }
    }

    async fn poll_once(
        &self,
        session: &mut Option<Box<dyn ProviderSession>>,
    ) -> Result<Polled, ProviderError> {
        if session.is_none() {
            let mut opened = self.provider.connect(&self.config).await?;
            // A new session continues the feeds where the stored records end.
            match self.store.feed_cursor(&self.id).await {
                Ok(cursor) => opened.resume(&cursor),
                Err(error) => {
                    // Starting over is safe: records already stored are not stored twice.
                    tracing::warn!(connection_id = %self.id, %error, "cannot read the feed cursor; feeds start over");
                }
            }
            *session = Some(opened);
        }
        let Some(active) = session.as_mut() else {
            return Err(ProviderError::new(FailureCategory::Protocol, "no session"));
        };
        let observation = active.poll().await?;
        // Re-projecting an unchanged inventory is most of a steady-state poll's CPU; the
        // previous projection is recorded already, so only the times move.
        let inventory = if self.last_summary.is_some() && self.provider.unchanged(&observation) {
            PolledInventory::Unchanged
        } else {
            PolledInventory::Projected(Box::new(self.provider.project(&self.id, &observation)?))
        };
        Ok(Polled {
            inventory,
            observation,
        })
    }

    /// The feeds read after a successful poll, projected against its observation.
    async fn read_feeds(
        &self,
        session: &mut Option<Box<dyn ProviderSession>>,
        inventory: &Observation,
    ) -> Result<Feeds, ProviderError> {
        let Some(active) = session.as_mut() else {
            return Err(ProviderError::new(FailureCategory::Protocol, "no session"));
        };
        let feeds = active.poll_feeds().await?;
        self.provider.project_feeds(&self.id, inventory, &feeds)
    }

    /// Records what the feeds brought with their cursor; when they could not all be read,
    /// also shows their issues in the summary and marks the poll `degraded` (the inventory
    /// was recorded already, without them).
    async fn record_feeds(&mut self, feeds: Feeds, took: Duration, attempted_at: DateTime<Utc>) {
        let storing = std::time::Instant::now();
        let stored = if !feeds.is_empty() || feeds.cursor.0.is_some() {
            self.store
                .record_feeds(&self.id, &feeds, self.retention)
                .await
                .map(|_| ())
        } else {
            Ok(())
        };
        let amended = match (&stored, self.last_summary.as_ref()) {
            (Ok(()), Some(base)) if !feeds.issues.is_empty() => {
                let mut summary = base.clone();
                summary.issues.extend(feeds.issues.iter().cloned());
                self.amend_summary(&summary, attempted_at).await
            }
            _ => Ok(()),
        };
        tracing::info!(
            platform = %self.platform,
            connection_id = %self.id,
            took_ms = took.as_millis(),
            store_ms = storing.elapsed().as_millis(),
            history = feeds.history.len(),
            samples = feeds.sample_count(),
            issues = feeds.issues.len(),
            "feeds recorded"
        );
        if let Err(error) = stored.and(amended) {
            tracing::error!(connection_id = %self.id, %error, "cannot record the feeds");
        }
    }

    /// Rewrites the recorded summary of this poll with `summary` and marks the poll partial.
    async fn amend_summary(
        &self,
        summary: &ContributionSummary,
        attempted_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some(record) = self.store.get_connection(&self.platform, &self.id).await? else {
            return Ok(());
        };
        let mut health = record.current_health();
        health.record_success(attempted_at, true);
        let observed = serde_json::to_value(summary)
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        self.store
            .update_health(&self.id, &health, Some(&observed))
            .await
            .map(|_| ())
    }

    /// Records a poll's outcome; `true` when a successful poll was recorded (so its feeds
    /// may follow).
    async fn record(
        &mut self,
        outcome: Result<PolledInventory, ProviderError>,
        took: Duration,
        attempted_at: DateTime<Utc>,
    ) -> bool {
        let record = match self.store.get_connection(&self.platform, &self.id).await {
            Ok(Some(record)) => record,
            // Deleted meanwhile: nothing to record.
            Ok(None) => return false,
            Err(error) => {
                tracing::error!(connection_id = %self.id, %error, "cannot read connection health");
                return false;
            }
        };
        self.metrics.record(
            &self.platform,
            &self.id,
            took,
            outcome.as_ref().err().map(|error| error.category),
        );
        let mut health = record.current_health();
        let now = Utc::now();
        let took_ms = took.as_millis();
        let result = match outcome {
            Ok(polled) => {
                let Some(RecordedPoll {
                    summary,
                    skipped_projection,
                    store_time,
                    stored,
                }) = self
                    .record_success(polled, &mut health, attempted_at, now)
                    .await
                else {
                    return false;
                };
                // `took_ms` is the provider's part (session, read, projection); `store_ms`
                // the write. Together they are what one poll costs.
                tracing::info!(
                    platform = %self.platform,
                    connection_id = %self.id,
                    took_ms,
                    store_ms = store_time.as_millis(),
                    agents = summary.agents,
                    vms = summary.vms,
                    storage = summary.storage,
                    issues = summary.issues.len(),
                    unchanged = skipped_projection,
                    "poll succeeded"
                );
                stored.map(|()| true)
            }
            Err(error) => {
                tracing::warn!(
                    platform = %self.platform,
                    connection_id = %self.id,
                    took_ms,
                    category = %error.category,
                    message = %error.message,
                    "poll failed"
                );
                health.record_failure(attempted_at, error.category, &error.message);
                // Last-known resources stay, marked by their `lastSeenAt`.
                self.store
                    .update_health(&self.id, &health, None)
                    .await
                    .map(|_| false)
            }
        };
        let recorded_success = matches!(&result, Ok(true));
        if let Err(error) = result {
            tracing::error!(connection_id = %self.id, %error, "cannot record poll result");
        }
        recorded_success
    }

    /// Records a successful poll: its summary, health and (when projected) resources and
    /// alerts. `None` when there is nothing to record from (the summary could not be
    /// serialised, logged here).
    /// `attempted_at` is when the poll began (its health times), `now` when it was
    /// recorded (the collection time of an unchanged poll).
    async fn record_success(
        &mut self,
        inventory: PolledInventory,
        health: &mut PollHealth,
        attempted_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<RecordedPoll> {
        let (summary, projection) = match inventory {
            PolledInventory::Unchanged => {
                let mut summary = self.last_summary.clone()?;
                summary.collected_at = now;
                (summary, None)
            }
            PolledInventory::Projected(projection) => (
                ContributionSummary::from_projection(&projection),
                Some(*projection),
            ),
        };
        health.record_success(attempted_at, !summary.issues.is_empty());
        let observed = match serde_json::to_value(&summary) {
            Ok(observed) => observed,
            Err(error) => {
                tracing::error!(connection_id = %self.id, %error, "cannot serialise the summary");
                return None;
            }
        };
        let storing = std::time::Instant::now();
        let projection_skipped = projection.is_none();
        let stored = match projection {
            None => self
                .store
                .record_unchanged_poll(&self.id, health, &observed, now)
                .await
                .map(|_| ()),
            Some(projection) => self.record_projection(projection, health, &observed).await,
        };
        self.last_summary = stored.is_ok().then(|| summary.clone());
        Some(RecordedPoll {
            summary,
            skipped_projection: projection_skipped,
            store_time: storing.elapsed(),
            stored,
        })
    }

    /// Records a projected poll: the whole resource set and alert lifecycle, or only the
    /// times when it equals the last recorded one.
    async fn record_projection(
        &mut self,
        projection: Projection,
        health: &PollHealth,
        observed: &serde_json::Value,
    ) -> Result<(), StoreError> {
        // The shortcut skips the alert lifecycle too, so it is taken only when the alert
        // conditions are also the ones recorded last time.
        let unchanged = self
            .last_recorded
            .as_ref()
            .is_some_and(|(resources, alerts)| same_poll(resources, alerts, &projection));
        let seen_at = projection.resources.first().map(|r| r.last_seen_at);
        let stored = match (unchanged, seen_at) {
            (true, Some(seen_at)) => {
                self.store
                    .record_unchanged_poll(&self.id, health, observed, seen_at)
                    .await
            }
            _ => {
                let alerts = PollAlerts {
                    conditions: &projection.alerts,
                    observed_at: projection.collected_at,
                };
                self.store
                    .record_poll(&self.id, health, observed, &projection.resources, alerts)
                    .await
            }
        }
        .map(|_| ());
        self.last_recorded = stored
            .is_ok()
            .then_some((projection.resources, projection.alerts));
        stored
    }
}

/// Feeds that could not be read at all: one issue, which degrades the poll, and no cursor,
/// so nothing stored moves.
fn feed_failure(error: ProviderError) -> Feeds {
    Feeds {
        issues: vec![pylon_core::model::PollIssue {
            stage: "feeds".into(),
            category: error.category,
            message: error.message,
            occurrences: 1,
        }],
        ..Feeds::default()
    }
}

/// Up to a tenth of the interval (at most 5 s), so connections created together spread out.
fn jitter(interval: Duration) -> Duration {
    let max_ms = (interval.as_millis() / 10).min(5_000) as u64;
    Duration::from_millis(rand::rng().random_range(0..=max_ms))
}

/// Whether a projection records exactly what the last recorded poll did: the same resources
/// (but for `lastSeenAt`) and the same alert conditions, so the store has nothing to diff.
fn same_poll(resources: &[Resource], alerts: &[AlertCondition], next: &Projection) -> bool {
    same_resources(resources, &next.resources) && alerts == next.alerts.as_slice()
}

/// Whether two projected resource sets are equal but for `lastSeenAt`. The destructuring is
/// exhaustive on purpose: a new field of `Resource` must be decided on here.
fn same_resources(last: &[Resource], next: &[Resource]) -> bool {
    last.len() == next.len()
        && last.iter().zip(next).all(|(a, b)| {
            let Resource {
                id,
                resource_type,
                platform,
                connection_id,
                name,
                status,
                identity,
                relations,
                topology,
                metrics,
                details,
                last_seen_at: _,
            } = a;
            *id == b.id
                && *resource_type == b.resource_type
                && *platform == b.platform
                && *connection_id == b.connection_id
                && *name == b.name
                && *status == b.status
                && *identity == b.identity
                && *relations == b.relations
                && *topology == b.topology
                && *metrics == b.metrics
                && *details == b.details
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pylon_core::model::{AlertSeverity, AlertSource};

    /// The unchanged-poll shortcut skips the alert lifecycle, so a poll whose resources are
    /// unchanged but whose alert conditions differ must not take it.
    #[test]
    fn a_changed_alert_condition_defeats_the_unchanged_shortcut() {
        let raised = AlertCondition {
            resource_id: "c-vm-1".into(),
            key: "health".into(),
            source: AlertSource::Health,
            severity: AlertSeverity::Critical,
            name: "red".into(),
            message: "red".into(),
            since: None,
            acknowledged: false,
        };
        let quiet = Projection::default();
        let alarmed = Projection {
            alerts: vec![raised.clone()],
            ..Projection::default()
        };
        assert!(same_poll(&[], &[], &quiet));
        assert!(!same_poll(&[], &[], &alarmed));
        assert!(!same_poll(&[], std::slice::from_ref(&raised), &quiet));
        assert!(same_poll(&[], &[raised], &alarmed));
    }
}
