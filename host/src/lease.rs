//! Scale-out: which replica polls which connection.
//!
//! Several `pylon` replicas share one PostgreSQL database. Each has an id (a UUID made at
//! start-up, logged and exported as `pylon_replica_info`) and polls only the connections
//! whose lease row names it. A [`LeaseCoordinator`] runs one loop per replica, every third of
//! the lease period (`lease_seconds`):
//!
//! 1. heartbeat: renew this replica's row in `replicas` and count the live replicas and the
//!    enabled connections; a fair share is `ceil(connections / live replicas)`;
//! 2. renew every lease it holds; a lease that did not renew is stopped at once;
//! 3. release leases above the fair share (a replica joined), stopping their polls first;
//! 4. acquire free or expired leases up to the fair share;
//! 5. bring the scheduler in line with the database, which also picks up edits and deletes
//!    made through other replicas (so they take effect within one tick).
//!
//! The safety argument, "never two pollers at once": all expiry times are the database's
//! clock. A lease renewed by a request sent at local time `t` expires no earlier than
//! `t + lease`. The coordinator keeps that bound and, when renewals fail or hang, stops
//! every poll by `t + lease - tick`, a full tick before anyone else may take the lease.
//! A poll in flight is interrupted by the same stop (see `PollScheduler`), so its results
//! are not written after the lease is gone. A dead replica's leases expire after at most
//! one lease period and the others take them on their next tick.
//!
//! On SQLite (one process) there is no coordinator: the scheduler polls every enabled
//! connection, as it always has.

use crate::scheduler::PollScheduler;
use crate::store::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a heartbeat learns about the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaCensus {
    /// Replicas whose heartbeat has not expired, this one included (at least 1).
    pub live_replicas: u64,
    pub enabled_connections: u64,
}

impl ReplicaCensus {
    /// How many leases one replica should hold: `ceil(connections / replicas)`, so the
    /// shares of all live replicas cover every connection and none holds more than one
    /// above another.
    pub fn fair_share(&self) -> u64 {
        self.enabled_connections.div_ceil(self.live_replicas.max(1))
    }
}

/// What a renewal found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Renewal {
    /// The connections whose lease this replica still holds, now extended.
    pub renewed: Vec<String>,
    /// Connections it believed it held that were deleted or disabled meanwhile (through any
    /// replica): their polls stop, and that is not a lost lease.
    pub retired: Vec<String>,
}

/// A lease just taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquiredLease {
    pub connection_id: String,
    pub platform: String,
    /// The lease was another replica's and had expired (that replica died or hung).
    pub takeover: bool,
}

/// The database side of leasing, implemented by the PostgreSQL store. Every time is the
/// database's clock.
#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Marks `replica` alive for `ttl` and counts live replicas and enabled connections.
    async fn heartbeat(&self, replica: &str, ttl: Duration) -> Result<ReplicaCensus, StoreError>;
    /// Gives up the leases of `replica` whose connection was disabled, extends every other
    /// unexpired one by `ttl`, and says which of `held` (what the replica believes it holds)
    /// are gone for good (connection deleted or disabled) rather than lost.
    async fn renew(
        &self,
        replica: &str,
        ttl: Duration,
        held: &[String],
    ) -> Result<Renewal, StoreError>;
    /// Takes up to `max` free or expired leases of enabled connections for `ttl`.
    async fn acquire(
        &self,
        replica: &str,
        ttl: Duration,
        max: u64,
    ) -> Result<Vec<AcquiredLease>, StoreError>;
    /// Gives up some leases of `replica`, so other replicas may take them at once.
    async fn release(&self, replica: &str, connection_ids: &[String]) -> Result<(), StoreError>;
    /// Gives up every lease of `replica` and its heartbeat (graceful shutdown).
    async fn leave(&self, replica: &str) -> Result<(), StoreError>;
    /// Records that `replica` polled `connection_id` between the two times (an audit trail,
    /// and what proves no connection was polled by two replicas at once).
    async fn record_poll_run(
        &self,
        connection_id: &str,
        replica: &str,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// Lease counters for `GET /metrics`.
#[derive(Debug, Default)]
pub struct LeaseMetrics {
    held: AtomicU64,
    acquired: AtomicU64,
    takeovers: AtomicU64,
    released: AtomicU64,
    lost: AtomicU64,
}

/// A point-in-time copy of [`LeaseMetrics`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseCounts {
    pub held: u64,
    pub acquired: u64,
    pub takeovers: u64,
    pub released: u64,
    pub lost: u64,
}

impl LeaseMetrics {
    pub fn snapshot(&self) -> LeaseCounts {
        LeaseCounts {
            held: self.held.load(Ordering::Relaxed),
            acquired: self.acquired.load(Ordering::Relaxed),
            takeovers: self.takeovers.load(Ordering::Relaxed),
            released: self.released.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
        }
    }
}

/// The connections this replica may poll, shared by the coordinator (which writes it) and
/// the scheduler (which polls only what is in it).
#[derive(Clone)]
pub struct Ownership {
    pub replica_id: String,
    held: Arc<RwLock<HashSet<String>>>,
    /// Where each poll is recorded with this replica's id.
    pub runs: Arc<dyn LeaseStore>,
    /// Asks the lease loop for a tick now.
    wake: Arc<tokio::sync::Notify>,
}

impl Ownership {
    pub fn new(replica_id: String, runs: Arc<dyn LeaseStore>) -> Self {
        Self {
            replica_id,
            held: Arc::new(RwLock::new(HashSet::new())),
            runs,
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Asks for a lease tick now (a connection was created or changed here), so a new
    /// connection is leased and polled at once instead of up to a tick later. Ticks never
    /// come closer than a quarter of the tick apart however often this is called.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn holds(&self, connection_id: &str) -> bool {
        self.held
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(connection_id)
    }

    /// How many connections this replica holds.
    pub fn len(&self) -> usize {
        self.held
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashSet<String>> {
        self.held.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Lease timing, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct LeaseSettings {
    /// How long a lease (and a heartbeat) lasts without renewal.
    pub lease: Duration,
}

impl LeaseSettings {
    /// How often the coordinator renews: a third of the lease, so two renewals can fail
    /// before it must stop polling.
    pub fn tick(&self) -> Duration {
        self.lease / 3
    }
}

/// Runs the lease loop of one replica (see the module documentation).
pub struct LeaseCoordinator {
    store: Arc<dyn LeaseStore>,
    ownership: Ownership,
    settings: LeaseSettings,
    metrics: Arc<LeaseMetrics>,
    stop: CancellationToken,
    handle: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl LeaseCoordinator {
    pub fn new(store: Arc<dyn LeaseStore>, ownership: Ownership, settings: LeaseSettings) -> Self {
        Self {
            store,
            ownership,
            settings,
            metrics: Arc::new(LeaseMetrics::default()),
            stop: CancellationToken::new(),
            handle: tokio::sync::Mutex::new(None),
        }
    }

    pub fn replica_id(&self) -> &str {
        &self.ownership.replica_id
    }

    pub fn metrics(&self) -> &LeaseMetrics {
        &self.metrics
    }

    /// Starts the loop; it runs until [`LeaseCoordinator::shutdown`].
    pub async fn start(&self, scheduler: Arc<PollScheduler>) {
        let worker = LeaseLoop {
            store: self.store.clone(),
            ownership: self.ownership.clone(),
            settings: self.settings,
            metrics: self.metrics.clone(),
            scheduler,
            valid_until: None,
        };
        let handle = tokio::spawn(worker.run(self.stop.clone()));
        *self.handle.lock().await = Some(handle);
    }

    /// Stops the loop and gives every lease back, so the other replicas take this one's
    /// connections on their next tick instead of after the lease expires. Call after the
    /// scheduler has stopped polling.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        if let Some(handle) = self.handle.lock().await.take() {
            if let Err(error) = handle.await {
                tracing::warn!(%error, "lease loop ended abnormally");
            }
        }
        self.ownership.write().clear();
        self.metrics.held.store(0, Ordering::Relaxed);
        match self.store.leave(&self.ownership.replica_id).await {
            Ok(()) => {
                tracing::info!(replica_id = %self.ownership.replica_id, "released every lease")
            }
            Err(error) => {
                tracing::warn!(replica_id = %self.ownership.replica_id, %error, "cannot release leases; they expire on their own");
            }
        }
    }
}

struct LeaseLoop {
    store: Arc<dyn LeaseStore>,
    ownership: Ownership,
    settings: LeaseSettings,
    metrics: Arc<LeaseMetrics>,
    scheduler: Arc<PollScheduler>,
    /// Until when the leases this replica holds are certainly still its own: the local time
    /// the last successful renewal was sent plus the lease period.
    valid_until: Option<Instant>,
}

impl LeaseLoop {
    async fn run(mut self, stop: CancellationToken) {
        let tick = self.settings.tick();
        loop {
            let started = Instant::now();
            // A tick never outlives its period: a hung database must not keep the loop from
            // noticing that the leases ran out.
            match tokio::time::timeout(tick, self.tick(started)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(replica_id = %self.ownership.replica_id, %error, "lease renewal failed");
                }
                Err(_) => {
                    tracing::warn!(replica_id = %self.ownership.replica_id, "lease renewal timed out");
                }
            }
            if self
                .valid_until
                .is_some_and(|until| Instant::now() + tick >= until)
            {
                // Renewals kept failing: stop polling a full tick before the leases may
                // expire, so no other replica can start while this one still polls.
                tracing::error!(replica_id = %self.ownership.replica_id, "cannot renew leases in time; stopping every poll until the database answers");
                self.valid_until = None;
                let lost: Vec<String> = self.ownership.write().drain().collect();
                self.forget(&lost, true).await;
            }
            let earliest = started + tick / 4;
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep_until(started + tick) => {}
                () = async {
                    self.ownership.wake.notified().await;
                    tokio::time::sleep_until(earliest).await;
                } => {}
            }
        }
    }

    async fn tick(&mut self, sent: Instant) -> Result<(), StoreError> {
        let replica = self.ownership.replica_id.clone();
        let lease = self.settings.lease;
        let census = self.store.heartbeat(&replica, lease).await?;
        let believed: Vec<String> = self.ownership.write().iter().cloned().collect();
        let renewal = self.store.renew(&replica, lease, &believed).await?;
        self.valid_until = Some(sent + lease);
        let renewed: HashSet<String> = renewal.renewed.into_iter().collect();
        let retired: HashSet<String> = renewal.retired.into_iter().collect();
        let (lost, gone): (Vec<String>, Vec<String>) = {
            let mut held = self.ownership.write();
            let ended: Vec<String> = held.difference(&renewed).cloned().collect();
            *held = renewed.clone();
            ended.into_iter().partition(|id| !retired.contains(id))
        };
        if !gone.is_empty() {
            // Deleted or disabled through some replica: the reconcile below stops them too;
            // stopping here keeps them from counting as lost.
            self.forget(&gone, false).await;
        }
        if !lost.is_empty() {
            tracing::warn!(%replica, lost = lost.len(), "leases expired before renewal; stopped their polls");
            self.forget(&lost, true).await;
        }
        // Rows renewed but not known locally (e.g. after the loop dropped everything while
        // the database was slow) are polled again from the reconcile below.
        let share = census.fair_share();
        let holding = renewed.len() as u64;
        if holding > share {
            let mut extras: Vec<String> = renewed.into_iter().collect();
            extras.sort_unstable();
            let extras: Vec<String> = extras
                .into_iter()
                .take(usize::try_from(holding - share).unwrap_or(usize::MAX))
                .collect();
            // Stop first, then release: the lease is given up only once nothing polls it.
            {
                let mut held = self.ownership.write();
                for id in &extras {
                    held.remove(id);
                }
            }
            self.forget(&extras, false).await;
            self.store.release(&replica, &extras).await?;
            self.metrics
                .released
                .fetch_add(extras.len() as u64, Ordering::Relaxed);
            tracing::info!(%replica, released = extras.len(), share, live_replicas = census.live_replicas, "released leases above the fair share");
        } else if holding < share {
            let acquired = self.store.acquire(&replica, lease, share - holding).await?;
            if !acquired.is_empty() {
                let takeovers = acquired.iter().filter(|a| a.takeover).count() as u64;
                {
                    let mut held = self.ownership.write();
                    for lease in &acquired {
                        held.insert(lease.connection_id.clone());
                    }
                }
                self.metrics
                    .acquired
                    .fetch_add(acquired.len() as u64, Ordering::Relaxed);
                self.metrics
                    .takeovers
                    .fetch_add(takeovers, Ordering::Relaxed);
                tracing::info!(%replica, acquired = acquired.len(), takeovers, share, live_replicas = census.live_replicas, "acquired leases");
            }
        }
        self.publish_held();
        self.scheduler.reconcile().await?;
        Ok(())
    }

    /// Stops the polls of connections no longer held.
    async fn forget(&self, ids: &[String], lost: bool) {
        if lost {
            self.metrics
                .lost
                .fetch_add(ids.len() as u64, Ordering::Relaxed);
        }
        self.scheduler.stop_unheld(ids).await;
        self.publish_held();
    }

    fn publish_held(&self) {
        self.metrics
            .held
            .store(self.ownership.len() as u64, Ordering::Relaxed);
    }
}
