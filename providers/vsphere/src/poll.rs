//! The long-lived polling session of one connection (GUIDE section 5).
//!
//! One vCenter session lives across polls. Each poll first proves the session alive with a
//! cheap `CurrentTime`; a `NotAuthenticated` answer (vCenter restarted, or the session idled
//! out) triggers one re-login, after which the inventory is read afresh. Anything else is
//! classified and returned, and the host drops the session so the next poll starts clean.
//!
//! Reading the inventory:
//! 1. The first poll of a session creates one `ContainerView` per type on the root folder
//!    and reads everything with one `RetrievePropertiesEx`, following continuation tokens.
//!    Its answer is parsed by our own streaming reader ([`crate::inventory::xml`]), so one
//!    unreadable object becomes an issue instead of failing the whole poll.
//! 2. The second poll creates a property collector of its own (so no other filter of the
//!    session can leak updates into ours), a property filter on it over the same views, and
//!    calls `WaitForUpdatesEx` without a version: that answer is again complete, and it
//!    replaces the snapshot (a full re-read, once per session).
//! 3. From then on each poll sends the filter's version and receives only what changed, so
//!    a steady-state poll of an unchanged vCenter transfers almost nothing. A rejected
//!    version or a lost filter falls back to step 1, after destroying the abandoned
//!    collector and views.

use crate::classify::classify;
use crate::client::{SessionError, SessionOptions, Stage, VcenterSession};
use crate::config::VsphereTarget;
use crate::feeds::{FeedBatch, FeedSession};
use crate::inventory::paths::{alarm, INVENTORY_TYPES, TRIGGERED_ALARM_STATE};
use crate::inventory::request::{self, InventorySpec};
use crate::inventory::types::MoRef;
use crate::inventory::xml::{parse_moref_response, parse_retrieve_result, parse_update_set};
use crate::inventory::InventorySnapshot;
use crate::project::{AlarmCatalog, AlarmDefinition};
use crate::BoxFuture;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pylon_core::provider::{Observation, ProviderSession};
use pylon_core::{FailureCategory, ProviderError, SystemIdentity};
use std::sync::{Arc, Weak};

/// Continuation pages followed at most in one read, so a server that keeps answering with
/// tokens cannot hold a poll forever (the poll timeout bounds it too).
const MAX_PAGES: usize = 10_000;

/// What one poll observed, handed to [`crate::VsphereProvider`]'s `project`.
pub(crate) struct VsphereObservation {
    pub system: SystemIdentity,
    pub snapshot: Arc<InventorySnapshot>,
    pub collected_at: DateTime<Utc>,
    /// The definitions of the alarms triggered in `snapshot`, as far as they could be read.
    pub alarms: Arc<AlarmCatalog>,
    /// Nothing changed since this session's previous observation: the same snapshot (the
    /// version token brought no update) and the same alarm catalog. See
    /// `Provider::unchanged`.
    pub unchanged: bool,
}

/// Server-side objects created for incremental reads; they die with the session, and are
/// destroyed explicitly when the session lives on but they are abandoned.
struct LiveInventory {
    views: Vec<MoRef>,
    /// Our own property collector, holding `filter`.
    collector: Option<MoRef>,
    filter: Option<MoRef>,
    version: Option<String>,
    snapshot: Arc<InventorySnapshot>,
}

pub(crate) struct VspherePollSession {
    target: VsphereTarget,
    options: SessionOptions,
    session: Option<VcenterSession>,
    live: Option<LiveInventory>,
    /// Alarm definitions read so far in this connection's life: definitions rarely change,
    /// so each is read once, when a triggered alarm first names it.
    alarms: Arc<AlarmCatalog>,
    /// What the previous observation held, to tell an unchanged poll. Weak, so a snapshot
    /// being replaced is freed at once; a `Weak` keeps its allocation, so its address cannot
    /// be reused by a newer snapshot and compare equal by accident.
    last_observed: Option<(Weak<InventorySnapshot>, Weak<AlarmCatalog>)>,
    feeds: FeedSession,
}

impl VspherePollSession {
    pub(crate) fn new(
        target: VsphereTarget,
        options: SessionOptions,
        session: VcenterSession,
    ) -> Self {
        Self {
            target,
            options,
            session: Some(session),
            live: None,
            alarms: Arc::new(AlarmCatalog::new()),
            last_observed: None,
            feeds: FeedSession::default(),
        }
    }

    fn classified(&self, error: &SessionError) -> ProviderError {
        let classified = classify(error, &self.target);
        tracing::debug!(address = %self.target.address(), cause = %error, category = classified.category.as_str(), "vSphere poll step failed");
        classified
    }

    /// A live, authenticated session: the current one if `CurrentTime` works, else one
    /// re-login.
    async fn ensure_session(&mut self) -> Result<(), ProviderError> {
        if let Some(session) = &self.session {
            match session.keepalive().await {
                Ok(()) => return Ok(()),
                Err(error) if is_not_authenticated(&error) => {
                    tracing::info!(address = %self.target.address(), "vCenter session expired; logging in again");
                }
                Err(error) => return Err(self.classified(&error)),
            }
        }
        // Objects created by the old session (views, filter) died with it.
        self.live = None;
        self.session = None;
        let session = VcenterSession::open(&self.target, &self.options)
            .await
            .map_err(|error| self.classified(&error))?;
        self.session = Some(session);
        Ok(())
    }

    async fn collect(&mut self) -> Result<Arc<InventorySnapshot>, ProviderError> {
        self.ensure_session().await?;
        match self.read_inventory().await {
            Ok(snapshot) => Ok(snapshot),
            // The session died between the keepalive and the read (or an object said so
            // in its missingSet): log in again once and read afresh.
            Err(ReadError::SessionLost) => {
                tracing::info!(address = %self.target.address(), "vCenter session lost during the poll; logging in again");
                self.session = None;
                self.live = None;
                self.ensure_session().await?;
                self.read_inventory()
                    .await
                    .map_err(|error| self.read_failure(error))
            }
            Err(error) => Err(self.read_failure(error)),
        }
    }

    fn read_failure(&self, error: ReadError) -> ProviderError {
        if let ReadError::Session(error) = &error {
            // Logged with its cause, as every classified step failure is.
            return self.classified(error);
        }
        read_failure(error, &self.target)
    }

    async fn read_inventory(&mut self) -> Result<Arc<InventorySnapshot>, ReadError> {
        let Some(session) = &self.session else {
            return Err(ReadError::SessionLost);
        };
        let collector = session.property_collector();
        if self.live.is_none() {
            let views = create_views(session).await?;
            let spec = InventorySpec {
                views: &views,
                types: INVENTORY_TYPES,
            };
            let snapshot = read_full(session, &collector, &spec).await?;
            if snapshot.has_session_fault() {
                return Err(ReadError::SessionLost);
            }
            let snapshot = Arc::new(snapshot);
            self.live = Some(LiveInventory {
                views,
                collector: None,
                filter: None,
                version: None,
                snapshot: snapshot.clone(),
            });
            return Ok(snapshot);
        }
        let Some(live) = self.live.as_mut() else {
            return Err(ReadError::SessionLost);
        };
        if live.filter.is_none() {
            let own = match &live.collector {
                Some(own) => own.clone(),
                None => {
                    let body = request::create_property_collector(&collector);
                    let answer = call(session, "CreatePropertyCollector", &body).await?;
                    let own =
                        parse_moref_response(answer.as_bytes(), "CreatePropertyCollectorResponse")
                            .map_err(|e| {
                                ReadError::Malformed("CreatePropertyCollector", e.to_string())
                            })?;
                    live.collector = Some(own.clone());
                    own
                }
            };
            let spec = InventorySpec {
                views: &live.views,
                types: INVENTORY_TYPES,
            };
            let body = request::create_filter(&own, &spec);
            let answer = call(session, "CreateFilter", &body).await?;
            let filter = parse_moref_response(answer.as_bytes(), "CreateFilterResponse")
                .map_err(|e| ReadError::Malformed("CreateFilter", e.to_string()))?;
            live.filter = Some(filter);
            live.version = None;
        }
        // Without a version the first answer is complete: start from an empty snapshot.
        let mut snapshot = match &live.version {
            Some(_) => Arc::clone(&live.snapshot),
            None => {
                // Let the previous complete snapshot go before the new one is built, so the
                // two are never held at once.
                live.snapshot = Arc::new(InventorySnapshot::new());
                Arc::new(InventorySnapshot::new())
            }
        };
        let Some(own) = live.collector.clone() else {
            return Err(ReadError::Malformed(
                "CreatePropertyCollector",
                "no property collector of our own".into(),
            ));
        };
        for _ in 0..MAX_PAGES {
            let body = request::wait_for_updates_ex(&own, live.version.as_deref());
            let answer = match call(session, "WaitForUpdatesEx", &body).await {
                Ok(answer) => answer,
                // A version the collector no longer knows, or a filter it lost: re-read
                // everything.
                Err(ReadError::Session(error))
                    if fault_type_is(&error, "InvalidCollectorVersion")
                        || fault_type_is(&error, "ManagedObjectNotFound") =>
                {
                    tracing::info!(address = %self.target.address(), "vCenter rejected the update version; reading the inventory afresh");
                    if let Some(abandoned) = self.live.take() {
                        release(session, abandoned).await;
                    }
                    return Box::pin(self.read_inventory()).await;
                }
                Err(error) => return Err(error),
            };
            let update = parse_update_set(answer.as_bytes())
                .map_err(|e| ReadError::Malformed("WaitForUpdatesEx", e.to_string()))?;
            drop(answer);
            let Some(update) = update else {
                // Nothing changed since the version.
                break;
            };
            Arc::make_mut(&mut snapshot).apply_updates(&update);
            live.version = Some(update.version.clone());
            if !update.truncated {
                break;
            }
        }
        if snapshot.has_session_fault() {
            return Err(ReadError::SessionLost);
        }
        live.snapshot = snapshot.clone();
        Ok(snapshot)
    }
}

#[async_trait]
impl ProviderSession for VspherePollSession {
    async fn poll(&mut self) -> Result<Observation, ProviderError> {
        // Boxed in a method without where-clauses: see `provider.rs` (compile time).
        self.boxed_poll().await
    }

    async fn close(&mut self) {
        self.boxed_close().await;
    }

    fn resume(&mut self, cursor: &pylon_core::feeds::FeedCursor) {
        self.feeds.resume(cursor);
    }

    async fn poll_feeds(&mut self) -> Result<Observation, ProviderError> {
        // Boxed in a method without where-clauses: see `provider.rs` (compile time).
        self.boxed_poll_feeds().await
    }
}

impl VspherePollSession {
    fn boxed_poll(&mut self) -> BoxFuture<'_, Result<Observation, ProviderError>> {
        Box::pin(self.observe())
    }

    fn boxed_poll_feeds(&mut self) -> BoxFuture<'_, Result<Observation, ProviderError>> {
        Box::pin(self.observe_feeds())
    }

    fn boxed_close(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(self.end())
    }

    async fn observe(&mut self) -> Result<Observation, ProviderError> {
        let snapshot = self.collect().await?;
        self.resolve_alarms(&snapshot).await;
        let system = match &self.session {
            Some(session) => session.about().system_identity(),
            None => SystemIdentity::default(),
        };
        // An unchanged read hands back the very same snapshot `Arc` (updates are applied
        // copy-on-write), so pointer equality is exact, not a guess.
        let unchanged = self.last_observed.as_ref().is_some_and(|(last, alarms)| {
            std::ptr::eq(last.as_ptr(), Arc::as_ptr(&snapshot))
                && std::ptr::eq(alarms.as_ptr(), Arc::as_ptr(&self.alarms))
        });
        self.last_observed = Some((Arc::downgrade(&snapshot), Arc::downgrade(&self.alarms)));
        Ok(Box::new(VsphereObservation {
            system,
            snapshot,
            collected_at: Utc::now(),
            alarms: Arc::clone(&self.alarms),
            unchanged,
        }))
    }

    /// Reads the feeds against the snapshot of the last poll (see
    /// `ProviderSession::poll_feeds`). Never fails: what cannot be read is an issue.
    async fn observe_feeds(&mut self) -> Result<Observation, ProviderError> {
        let snapshot = self.live.as_ref().map(|live| Arc::clone(&live.snapshot));
        let batch = match (&self.session, snapshot) {
            (Some(session), Some(snapshot)) => self.feeds.read(session, &snapshot).await,
            // No poll has succeeded in this session: nothing to link records to yet.
            _ => FeedBatch::default(),
        };
        Ok(Box::new(batch))
    }

    /// Reads the definitions of triggered alarms not in the catalog yet, with one
    /// `RetrievePropertiesEx`. An alarm the answer leaves out (deleted meanwhile, or not
    /// readable) is remembered as unreadable; the projection names it by id and reports it.
    async fn resolve_alarms(&mut self, snapshot: &InventorySnapshot) {
        let unknown: Vec<MoRef> = triggered_alarm_ids(snapshot)
            .into_iter()
            .filter(|alarm| !self.alarms.contains_key(&alarm.value))
            .collect();
        if unknown.is_empty() {
            return;
        }
        let Some(session) = &self.session else {
            return;
        };
        let collector = session.property_collector();
        let refs: Vec<&MoRef> = unknown.iter().collect();
        let body = request::retrieve_objects(&collector, alarm::KIND, alarm::PATHS, &refs);
        // Names are a nicety: a failed read never fails the poll. The alarms are remembered
        // as unreadable for this session (so a refusing vCenter is not asked every poll) and
        // the projection reports them as a `degraded` issue.
        let read = match call(session, "RetrievePropertiesEx", &body).await {
            Ok(answer) => parse_retrieve_result(answer.as_bytes()).map_err(|e| e.to_string()),
            Err(ReadError::Session(error)) => Err(error.to_string()),
            Err(ReadError::SessionLost) => Err("the session ended".to_owned()),
            Err(ReadError::Malformed(_, detail)) => Err(detail),
        };
        let read = match read {
            Ok(read) => read,
            Err(error) => {
                tracing::debug!(address = %self.target.address(), %error, "reading alarm definitions failed");
                let catalog = Arc::make_mut(&mut self.alarms);
                for alarm in unknown {
                    catalog.insert(alarm.value, None);
                }
                return;
            }
        };
        let definitions = InventorySnapshot::from_results([read]);
        let catalog = Arc::make_mut(&mut self.alarms);
        for alarm in unknown {
            let definition = definitions.get(&alarm).and_then(|object| {
                let name = object.str(alarm::NAME).ok().flatten()?;
                Some(AlarmDefinition {
                    name: name.to_owned(),
                    description: object
                        .str(alarm::DESCRIPTION)
                        .ok()
                        .flatten()
                        .unwrap_or_default()
                        .to_owned(),
                })
            });
            catalog.insert(alarm.value, definition);
        }
    }

    async fn end(&mut self) {
        self.live = None;
        if let Some(session) = self.session.take() {
            // Views and filters die with the session, so logging out releases them too.
            session.close().await;
        }
    }
}

/// The classified failure of an inventory read on a freshly logged-in session.
pub(crate) fn read_failure(error: ReadError, target: &VsphereTarget) -> ProviderError {
    match error {
        ReadError::Session(error) => classify(&error, target),
        ReadError::SessionLost => ProviderError::new(
            FailureCategory::Auth,
            format!(
                "vCenter {} ended the session again right after a new login; check that the account is not being logged out by another client",
                target.address()
            ),
        ),
        ReadError::Malformed(method, detail) => ProviderError::new(
            FailureCategory::Protocol,
            format!(
                "vCenter {} answered {method} with something Pylon cannot read ({detail})",
                target.address()
            ),
        ),
    }
}

/// Why reading the inventory failed.
pub(crate) enum ReadError {
    /// A transport or HTTP failure, classified by [`classify`].
    Session(SessionError),
    /// vCenter no longer knows the session.
    SessionLost,
    /// An answer our reader could not understand.
    Malformed(&'static str, String),
}

fn fault_type_is(error: &SessionError, name: &str) -> bool {
    matches!(error, SessionError::Fault { fault, .. }
        if fault.type_.map(|t| t.as_str() == name).unwrap_or(false))
}

fn is_not_authenticated(error: &SessionError) -> bool {
    fault_type_is(error, "NotAuthenticated")
}

/// Sends one raw SOAP call. vSphere faults come back typed by the session layer (and are
/// classified by [`classify`]); the one that means the session is gone is reported as
/// [`ReadError::SessionLost`].
pub(crate) async fn call(
    session: &VcenterSession,
    method: &'static str,
    body: &str,
) -> Result<String, ReadError> {
    match session.call_raw(Stage::Inventory, method, body).await {
        Ok(answer) => Ok(answer),
        Err(error) if is_not_authenticated(&error) => Err(ReadError::SessionLost),
        Err(error) => Err(ReadError::Session(error)),
    }
}

/// Destroys the server-side objects of an abandoned read while the session lives on (a
/// collector takes its filter with it). Best effort: they die with the session anyway.
async fn release(session: &VcenterSession, live: LiveInventory) {
    let mut calls = Vec::with_capacity(live.views.len() + 1);
    if let Some(collector) = &live.collector {
        calls.push((
            "DestroyPropertyCollector",
            request::destroy_property_collector(collector),
        ));
    }
    for view in &live.views {
        calls.push(("DestroyView", request::destroy_view(view)));
    }
    for (method, body) in calls {
        if let Err(error) = session.call_raw(Stage::Inventory, method, &body).await {
            tracing::debug!(%error, method, "releasing an abandoned inventory read failed");
        }
    }
}

pub(crate) async fn create_views(session: &VcenterSession) -> Result<Vec<MoRef>, ReadError> {
    let view_manager = session
        .view_manager()
        .ok_or_else(|| ReadError::Malformed("RetrieveServiceContent", "no ViewManager".into()))?;
    let root = session.root_folder();
    let mut views = Vec::with_capacity(INVENTORY_TYPES.len());
    for paths in INVENTORY_TYPES {
        let body = request::create_container_view(&view_manager, &root, paths.kind);
        let answer = call(session, "CreateContainerView", &body).await?;
        let view = parse_moref_response(answer.as_bytes(), "CreateContainerViewResponse")
            .map_err(|e| ReadError::Malformed("CreateContainerView", e.to_string()))?;
        views.push(view);
    }
    Ok(views)
}

/// One full read through `RetrievePropertiesEx`, following continuation tokens.
async fn read_full(
    session: &VcenterSession,
    collector: &MoRef,
    spec: &InventorySpec<'_>,
) -> Result<InventorySnapshot, ReadError> {
    let mut snapshot = InventorySnapshot::new();
    let body = request::retrieve_properties_ex(collector, spec, None);
    let mut answer = call(session, "RetrievePropertiesEx", &body).await?;
    let mut method = "RetrievePropertiesEx";
    for _ in 0..MAX_PAGES {
        let page = parse_retrieve_result(answer.as_bytes())
            .map_err(|e| ReadError::Malformed(method, e.to_string()))?;
        // The parsed page owns its data: free the answer's text (tens of MB for a large
        // vCenter) before the snapshot grows.
        drop(std::mem::take(&mut answer));
        let token = page.token.clone();
        snapshot.apply_result(page);
        let Some(token) = token else {
            return Ok(snapshot);
        };
        method = "ContinueRetrievePropertiesEx";
        let body = request::continue_retrieve_properties_ex(collector, &token);
        answer = call(session, method, &body).await?;
    }
    Err(ReadError::Malformed(
        "ContinueRetrievePropertiesEx",
        format!("more than {MAX_PAGES} pages"),
    ))
}

/// The alarms triggered on any object of the snapshot, each once.
fn triggered_alarm_ids(snapshot: &InventorySnapshot) -> std::collections::BTreeSet<MoRef> {
    snapshot
        .objects()
        .filter_map(|(_, object)| object.alarm_states(TRIGGERED_ALARM_STATE).ok())
        .flatten()
        .filter_map(|state| state.alarm.clone())
        .collect()
}
