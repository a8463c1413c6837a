//! Performance history through `PerformanceManager.QueryPerf` (GUIDE section 5).
//!
//! Once per session the reader resolves counter ids from `PerformanceManager.perfCounter`
//! (with `historicalInterval`, in one `RetrievePropertiesEx`) and reads how many metrics one
//! query may ask for (`config.vpxd.stats.maxQueryMetrics` through
//! `OptionManager.QueryOptions`). Every poll it then asks, in as few `QueryPerf` calls as that
//! limit allows and with at most [`MAX_IN_FLIGHT`] calls at a time:
//! - realtime samples (interval 20 s) of the six host and VM counters, for connected hosts and
//!   powered-on VMs;
//! - the datastores' space counters at the shortest historical interval (realtime is not
//!   kept for datastores), 300 s when the server does not say.
//!
//! Only the aggregate instance (`""`) is read: a host's total, not each NIC or disk.
//!
//! **No gap, no duplicate.** vCenter samples every realtime entity on a shared 20 s grid, so
//! the stored position is one watermark per interval ([`PerfPosition`]): the oldest of the
//! asked entities' newest samples (see [`watermark`]). The next poll asks from there
//! (`startTime` is exclusive in vCenter), so a sample that arrives late for one host is not
//! skipped.
//! Entities that were further ahead would get their newest samples again; within a session
//! the reader remembers each entity's newest sample and drops those, and after a restart the
//! host drops them (samples are keyed by resource, metric and second). A fresh connection
//! starts [`FRESH_LOOKBACK_REALTIME`] back; a stored watermark older than the server keeps
//! data is clamped to that retention. When a call fails, its interval's watermark stays put.
//!
//! **Not hammering vpxd.** A `RestrictedByAdministrator` fault or an HTTP error without a
//! readable fault (how an overloaded vpxd answers) stops the cycle at once and pauses
//! performance collection for 1, 2, 4, ... up to 30 minutes ([`Backoff`]), each skipped poll
//! reporting a `degraded` issue. The inventory poll goes on regardless.
//!
//! Counters the server lacks are reported once per session as a `degraded` issue naming
//! them; the others are still read.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use futures_util::stream::{self, StreamExt};
use pylon_core::feeds::{MetricName, MetricUnit};
use pylon_core::model::PollIssue;
use pylon_core::FailureCategory;
use serde::{Deserialize, Serialize};

use super::{RawSamples, STAGE};
use crate::client::{SessionError, Stage, VcenterSession};
use crate::inventory::paths::{datastore, host, vm};
use crate::inventory::request::{close_method, open_method, push_moref, push_text};
use crate::inventory::types::MoRef;
use crate::inventory::xml::{local_name, visit_prop_sets, Cursor, XmlError};
use crate::inventory::InventorySnapshot;
use crate::BoxFuture;

/// vCenter's realtime interval, in seconds (`refreshRate` of hosts and VMs).
pub(crate) const REALTIME_INTERVAL: i32 = 20;
/// The shortest historical interval of a default vCenter ("past day", 5 minutes), used for
/// datastores when `historicalInterval` does not say.
pub(crate) const DEFAULT_HISTORICAL_INTERVAL: i32 = 300;
/// How far back the first poll of a new connection reads realtime samples: a minute, so a
/// new connection's first feeds phase stays small on a large vCenter (5,000 VMs: ~100,000
/// samples rather than ~500,000 for five minutes) while charts start with a few points.
pub(crate) const FRESH_LOOKBACK_REALTIME: i64 = 60;
/// How far back the first poll reads historical (datastore) samples: a few 5-minute samples.
pub(crate) const FRESH_LOOKBACK_HISTORICAL: i64 = 30 * 60;
/// vCenter keeps realtime samples for about an hour; asking further back brings nothing.
pub(crate) const MAX_LOOKBACK_REALTIME: i64 = 60 * 60;
/// The "past day" historical interval keeps a day.
pub(crate) const MAX_LOOKBACK_HISTORICAL: i64 = 24 * 60 * 60;
/// Metrics (entities x counters) per call when the server does not say.
pub(crate) const DEFAULT_MAX_QUERY_METRICS: usize = 64;
/// Entities per call at most, also when the server sets no limit (`-1`): one call for
/// 5,000 VMs would be a very long answer to wait for and to hold.
pub(crate) const MAX_ENTITIES_PER_CALL: usize = 256;
/// `QueryPerf` calls in flight at once.
pub(crate) const MAX_IN_FLIGHT: usize = 4;
/// The vCenter option that limits metrics per query.
pub(crate) const MAX_QUERY_METRICS_OPTION: &str = "config.vpxd.stats.maxQueryMetrics";
/// The first pause after vCenter refused a query, doubled on each refusal.
pub(crate) const BACKOFF_FIRST_SECONDS: i64 = 60;
pub(crate) const BACKOFF_MAX_SECONDS: i64 = 30 * 60;

/// Which interval (and so which entities) a counter is read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Scope {
    /// Hosts and VMs, every 20 s.
    Realtime,
    /// Datastores, at the shortest historical interval.
    Historical,
}

/// A vSphere counter Pylon reads and the canonical metric it becomes.
struct Wanted {
    /// `group.name.rollup`, as vSphere names counters.
    counter: &'static str,
    metric: MetricName,
    scope: Scope,
}

/// The counters Pylon reads. Disk and network counters are read for VMs as for hosts: both
/// have `disk.*` and `net.*` with an aggregate instance.
const WANTED: [Wanted; 8] = [
    Wanted {
        counter: "cpu.usage.average",
        metric: MetricName::CpuPercent,
        scope: Scope::Realtime,
    },
    Wanted {
        counter: "mem.consumed.average",
        metric: MetricName::MemoryUsedBytes,
        scope: Scope::Realtime,
    },
    Wanted {
        counter: "disk.read.average",
        metric: MetricName::DiskReadBytesPerSecond,
        scope: Scope::Realtime,
    },
    Wanted {
        counter: "disk.write.average",
        metric: MetricName::DiskWriteBytesPerSecond,
        scope: Scope::Realtime,
    },
    Wanted {
        counter: "net.received.average",
        metric: MetricName::NetworkRxBytesPerSecond,
        scope: Scope::Realtime,
    },
    Wanted {
        counter: "net.transmitted.average",
        metric: MetricName::NetworkTxBytesPerSecond,
        scope: Scope::Realtime,
    },
    Wanted {
        counter: "disk.used.latest",
        metric: MetricName::DiskUsedBytes,
        scope: Scope::Historical,
    },
    Wanted {
        counter: "disk.capacity.latest",
        metric: MetricName::DiskTotalBytes,
        scope: Scope::Historical,
    },
];

/// Where performance collection stands: per interval, the newest sample every entity that
/// answered already has. Compact on purpose (two timestamps, whatever the inventory size).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PerfPosition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub historical: Option<DateTime<Utc>>,
}

impl PerfPosition {
    pub(crate) fn is_empty(&self) -> bool {
        self.realtime.is_none() && self.historical.is_none()
    }

    fn get(&self, scope: Scope) -> Option<DateTime<Utc>> {
        match scope {
            Scope::Realtime => self.realtime,
            Scope::Historical => self.historical,
        }
    }

    fn set(&mut self, scope: Scope, at: DateTime<Utc>) {
        match scope {
            Scope::Realtime => self.realtime = Some(at),
            Scope::Historical => self.historical = Some(at),
        }
    }
}

/// What one cycle cost; kept for the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CycleStats {
    /// `QueryPerf` calls made (set-up calls not included).
    pub query_calls: usize,
    /// Set-up calls made (counters, option): only in a session's first cycle.
    pub setup_calls: usize,
    /// Bytes of all answers.
    pub bytes: usize,
    /// Entities asked (hosts, VMs and datastores).
    pub entities: usize,
    /// Samples kept.
    pub samples: usize,
    pub elapsed: std::time::Duration,
    /// Collection was paused by the backoff.
    pub skipped: bool,
}

/// What one cycle read.
#[derive(Debug, Default)]
pub(crate) struct PerfRead {
    pub samples: Vec<RawSamples>,
    pub issues: Vec<PollIssue>,
    pub position: PerfPosition,
}

/// The performance state of a polling session.
#[derive(Debug, Default)]
pub(crate) struct PerfSession {
    /// Counters and limits, resolved on the first cycle.
    setup: Option<Setup>,
    /// The newest sample kept per entity in this session, to drop samples read again.
    newest: HashMap<(Scope, MoRef), DateTime<Utc>>,
    backoff: Backoff,
    last_cycle: Option<CycleStats>,
}

/// What a session learns once.
#[derive(Debug, Clone)]
struct Setup {
    counters: Vec<Counter>,
    /// Metrics per `QueryPerf` call at most.
    max_metrics: usize,
    historical_interval: i32,
}

/// A resolved counter.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Counter {
    id: i32,
    metric: MetricName,
    /// Multiplies a raw value into the metric's canonical unit.
    factor: f64,
    scope: Scope,
}

/// Pauses collection after vCenter refused a query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// Refusals in a row.
    refusals: u32,
    until: Option<DateTime<Utc>>,
    /// Why, for the issue of skipped polls.
    reason: String,
}

impl Backoff {
    /// The pause after the `refusals`-th refusal in a row: 1, 2, 4, ... minutes, at most 30.
    pub(crate) fn pause(refusals: u32) -> Duration {
        let doublings = refusals.saturating_sub(1).min(16);
        let seconds = BACKOFF_FIRST_SECONDS.saturating_mul(1_i64 << doublings);
        Duration::seconds(seconds.min(BACKOFF_MAX_SECONDS))
    }

    fn refused(&mut self, now: DateTime<Utc>, reason: String) -> Duration {
        self.refusals = self.refusals.saturating_add(1);
        let pause = Self::pause(self.refusals);
        self.until = Some(now + pause);
        self.reason = reason;
        pause
    }

    fn succeeded(&mut self) {
        *self = Self::default();
    }

    /// When collection resumes, if it is paused at `now`.
    fn paused_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.until.filter(|until| now < *until)
    }
}

/// Why a call failed.
#[derive(Debug)]
enum CallFailure {
    /// vCenter refused or is overloaded: back off.
    Refused(String),
    /// Anything else: report, try again next poll.
    Failed(String),
}

impl PerfSession {
    /// What the last cycle cost.
    pub(crate) fn last_cycle(&self) -> Option<CycleStats> {
        self.last_cycle
    }

    /// One collection cycle. Never fails: what cannot be read becomes an issue, and
    /// `position` only moves past what was read.
    pub(crate) async fn read(
        &mut self,
        session: &VcenterSession,
        snapshot: &InventorySnapshot,
        position: &PerfPosition,
    ) -> PerfRead {
        let started = Instant::now();
        let now = Utc::now();
        let mut stats = CycleStats::default();
        let mut read = PerfRead {
            position: position.clone(),
            ..PerfRead::default()
        };
        if let Some(until) = self.backoff.paused_at(now) {
            read.issues.push(issue(
                FailureCategory::Protocol,
                format!(
                    "vCenter performance collection is paused until {} because vCenter refused a query ({}); inventory polling continues",
                    until.to_rfc3339_opts(SecondsFormat::Secs, true),
                    self.backoff.reason
                ),
            ));
            stats.skipped = true;
            self.last_cycle = Some(stats);
            return read;
        }
        let Some(manager) = session.perf_manager() else {
            read.issues.push(issue(
                FailureCategory::Unsupported,
                "this endpoint has no PerformanceManager; no performance history is collected"
                    .to_owned(),
            ));
            self.last_cycle = Some(stats);
            return read;
        };
        if self.setup.is_none() {
            match read_setup(session, &manager, &mut stats).await {
                Ok((setup, missing)) => {
                    if !missing.is_empty() {
                        // Reported once per session: the counters will not appear by
                        // themselves.
                        read.issues.push(issue(
                            FailureCategory::Unsupported,
                            format!(
                                "vCenter lacks the performance counter(s) {}; their metrics are not collected",
                                missing.join(", ")
                            ),
                        ));
                    }
                    self.setup = Some(setup);
                }
                Err(failure) => {
                    read.issues
                        .push(self.failed(failure, now, "reading the counters"));
                    stats.elapsed = started.elapsed();
                    self.last_cycle = Some(stats);
                    return read;
                }
            }
        }
        let Some(setup) = self.setup.clone() else {
            return read;
        };
        let specs = query_specs(snapshot, &setup, position, now);
        stats.entities = specs.len();
        let asked: Vec<(Scope, MoRef)> = specs
            .iter()
            .map(|spec| (spec.scope, spec.entity.clone()))
            .collect();
        let mut scopes_failed: Vec<Scope> = Vec::new();
        let mut answers: Vec<EntityMetric> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        let mut refused: Option<String> = None;
        {
            let calls = plan_calls(specs, setup.max_metrics, MAX_ENTITIES_PER_CALL);
            // Built eagerly as boxed futures: a lazily mapped iterator of async blocks makes
            // rustc fail to prove the poll future `Send` ("not general enough").
            let requests: Vec<_> = calls
                .iter()
                .map(|call| {
                    let scopes: Vec<Scope> = call.iter().map(|spec| spec.scope).collect();
                    query_perf(session, scopes, query_perf_request(&manager, call))
                })
                .collect();
            drop(calls);
            let mut in_flight = stream::iter(requests).buffer_unordered(MAX_IN_FLIGHT);
            while let Some((scopes, outcome)) = in_flight.next().await {
                stats.query_calls += 1;
                match outcome {
                    Ok((bytes, metrics)) => {
                        stats.bytes += bytes;
                        answers.extend(metrics);
                    }
                    Err(failure) => {
                        scopes_failed.extend(scopes);
                        match failure {
                            CallFailure::Refused(reason) => {
                                // Stop at once: the calls still in flight are dropped
                                // (cancelled) and no new one starts.
                                refused = Some(reason);
                                break;
                            }
                            CallFailure::Failed(detail) => failures.push(detail),
                        }
                    }
                }
            }
        }
        let counters: HashMap<i32, Counter> = setup.counters.iter().map(|c| (c.id, *c)).collect();
        let collected = collect(answers, &counters, position, &self.newest, now);
        stats.samples = collected.samples.iter().map(|s| s.points.len()).sum();
        read.samples = collected.samples;
        // Remember only the entities still in the inventory.
        self.newest
            .retain(|(_, entity), _| snapshot.get(entity).is_some());
        for (key, newest) in collected.newest {
            let slot = self.newest.entry(key).or_insert(newest);
            *slot = (*slot).max(newest);
        }
        for scope in [Scope::Realtime, Scope::Historical] {
            if scopes_failed.contains(&scope) || refused.is_some() {
                continue;
            }
            let newest = asked
                .iter()
                .filter(|(s, _)| *s == scope)
                .filter_map(|key| self.newest.get(key).copied());
            if let Some(next) = watermark(newest, stall_after(scope)) {
                let moved = position
                    .get(scope)
                    .map_or(next, |previous| previous.max(next));
                read.position.set(scope, moved);
            }
        }
        if let Some(reason) = refused {
            read.issues.push(self.failed(
                CallFailure::Refused(reason),
                now,
                "querying performance samples",
            ));
        } else {
            self.backoff.succeeded();
        }
        if !failures.is_empty() {
            let count = failures.len();
            read.issues.push(PollIssue {
                occurrences: u32::try_from(count).unwrap_or(u32::MAX),
                ..issue(
                    FailureCategory::Protocol,
                    format!(
                        "{count} vCenter QueryPerf call(s) failed this poll ({}); their samples are read again next poll",
                        failures[0]
                    ),
                )
            });
        }
        if collected.unreadable > 0 {
            read.issues.push(issue(
                FailureCategory::Protocol,
                format!(
                    "{} vCenter performance result(s) had no readable sample time and were left out",
                    collected.unreadable
                ),
            ));
        }
        stats.elapsed = started.elapsed();
        self.last_cycle = Some(stats);
        read
    }

    /// The issue for a failed step; a refusal starts (or lengthens) the pause.
    fn failed(&mut self, failure: CallFailure, now: DateTime<Utc>, step: &str) -> PollIssue {
        match failure {
            CallFailure::Refused(reason) => {
                let pause = self.backoff.refused(now, reason.clone());
                issue(
                    FailureCategory::Protocol,
                    format!(
                        "vCenter refused {step} ({reason}); performance collection pauses for {} minute(s) so vCenter is not hammered",
                        pause.num_minutes()
                    ),
                )
            }
            CallFailure::Failed(detail) => issue(
                FailureCategory::Protocol,
                format!("vCenter performance history could not be read this poll: {step} failed ({detail}); it is read again next poll"),
            ),
        }
    }
}

fn issue(category: FailureCategory, message: String) -> PollIssue {
    PollIssue {
        stage: STAGE.to_owned(),
        category,
        message,
        occurrences: 1,
    }
}

/// Counters, the interval for datastores and the batch limit. Answers the counters the
/// server lacks alongside.
async fn read_setup(
    session: &VcenterSession,
    manager: &MoRef,
    stats: &mut CycleStats,
) -> Result<(Setup, Vec<&'static str>), CallFailure> {
    let body = perf_manager_request(&session.property_collector(), manager);
    let answer = call(session, "RetrievePropertiesEx", &body).await?;
    stats.setup_calls += 1;
    stats.bytes += answer.len();
    let info = parse_perf_manager(answer.as_bytes())
        .map_err(|e| CallFailure::Failed(unreadable("RetrievePropertiesEx", &e)))?;
    drop(answer);
    let (counters, missing) = resolve_counters(&info.counters);
    let max_metrics = match session.setting_manager() {
        Some(settings) => {
            stats.setup_calls += 1;
            read_max_query_metrics(session, &settings).await
        }
        None => None,
    };
    let setup = Setup {
        counters,
        max_metrics: metrics_per_call(max_metrics),
        historical_interval: info
            .shortest_historical
            .unwrap_or(DEFAULT_HISTORICAL_INTERVAL),
    };
    tracing::debug!(
        counters = setup.counters.len(),
        max_metrics = setup.max_metrics,
        historical_interval = setup.historical_interval,
        "vCenter performance counters resolved"
    );
    Ok((setup, missing))
}

/// `config.vpxd.stats.maxQueryMetrics`, or `None` when the server has no such option (an
/// `InvalidName` fault, as the simulator answers), cannot be asked, or says nothing readable:
/// the limit is a courtesy to vpxd, so its absence is no issue.
async fn read_max_query_metrics(session: &VcenterSession, settings: &MoRef) -> Option<i64> {
    let mut body = open_method("QueryOptions", settings);
    push_text(&mut body, "name", MAX_QUERY_METRICS_OPTION);
    let body = close_method(body, "QueryOptions");
    match session
        .call_raw(Stage::Inventory, "QueryOptions", &body)
        .await
    {
        Ok(answer) => match parse_query_options(answer.as_bytes(), MAX_QUERY_METRICS_OPTION) {
            Ok(value) => value,
            Err(error) => {
                tracing::debug!(%error, "unreadable QueryOptions answer; using the default query size");
                None
            }
        },
        Err(error) => {
            tracing::debug!(%error, "{MAX_QUERY_METRICS_OPTION} not readable; using the default query size");
            None
        }
    }
}

/// Metrics per call for an option value: `-1` is vCenter's "no limit" (capped by entities
/// per call instead); an absent, zero or otherwise negative value takes the safe default.
pub(crate) fn metrics_per_call(option: Option<i64>) -> usize {
    match option {
        Some(-1) => usize::MAX,
        Some(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
        _ => DEFAULT_MAX_QUERY_METRICS,
    }
}

async fn call(
    session: &VcenterSession,
    method: &'static str,
    body: &str,
) -> Result<String, CallFailure> {
    session
        .call_raw(Stage::Inventory, method, body)
        .await
        .map_err(|error| call_failure(method, &error))
}

/// Sorts a failed call into "back off" and "try again next poll".
fn call_failure(method: &str, error: &SessionError) -> CallFailure {
    match error {
        SessionError::Fault { fault, .. } => {
            let kind = fault.type_.map(|t| t.as_str()).unwrap_or("MethodFault");
            let detail = format!("{method}: {kind}");
            if kind == "RestrictedByAdministrator" {
                CallFailure::Refused(detail)
            } else {
                CallFailure::Failed(detail)
            }
        }
        SessionError::HttpFailure { answer, .. } if answer.status >= 500 => CallFailure::Refused(
            format!("{method}: HTTP {} without a vSphere fault", answer.status),
        ),
        // An HTTP error whose status record was taken by a concurrent call on the same
        // transport (the record is per transport, not per call): an error answer without a
        // fault all the same.
        SessionError::Malformed { .. } => {
            CallFailure::Refused(format!("{method}: an error answer without a vSphere fault"))
        }
        other => CallFailure::Failed(format!("{method}: {other}")),
    }
}

fn unreadable(method: &str, error: &XmlError) -> String {
    match error.fault() {
        Some(fault) => format!("{method} answered {}: {}", fault.fault_type, fault.message),
        None => format!("{method} answered something Pylon cannot read ({error})"),
    }
}

/// One `QueryPerf` call: the answer's size and its entity metrics.
/// What one `QueryPerf` call brought: the answer's size and its entity metrics.
type QueryAnswer = Result<(usize, Vec<EntityMetric>), CallFailure>;

/// One `QueryPerf` call, answering the scopes it asked for with what it brought.
fn query_perf(
    session: &VcenterSession,
    scopes: Vec<Scope>,
    body: String,
) -> BoxFuture<'_, (Vec<Scope>, QueryAnswer)> {
    Box::pin(async move {
        let outcome = match call(session, "QueryPerf", &body).await {
            Ok(answer) => parse_query_perf(answer.as_bytes())
                .map(|metrics| (answer.len(), metrics))
                .map_err(|e| match e.fault() {
                    Some(fault) if fault.fault_type == "RestrictedByAdministrator" => {
                        CallFailure::Refused(format!(
                            "QueryPerf: {}: {}",
                            fault.fault_type, fault.message
                        ))
                    }
                    _ => CallFailure::Failed(unreadable("QueryPerf", &e)),
                }),
            Err(failure) => Err(failure),
        };
        (scopes, outcome)
    })
}

/// The counters Pylon reads, resolved against the server's list, and the names of those it
/// lacks. A counter whose unit cannot become the metric's canonical unit counts as lacking.
fn resolve_counters(infos: &[CounterInfo]) -> (Vec<Counter>, Vec<&'static str>) {
    let by_name: BTreeMap<String, &CounterInfo> =
        infos.iter().map(|info| (info.full_name(), info)).collect();
    let mut counters = Vec::new();
    let mut missing = Vec::new();
    for wanted in &WANTED {
        let resolved = by_name.get(wanted.counter).and_then(|info| {
            let factor = unit_factor(&info.unit, wanted.metric.unit())?;
            Some(Counter {
                id: info.key,
                metric: wanted.metric,
                factor,
                scope: wanted.scope,
            })
        });
        match resolved {
            Some(counter) => counters.push(counter),
            None => missing.push(wanted.counter),
        }
    }
    (counters, missing)
}

/// The factor from a vSphere counter unit to a canonical unit, if one exists. vSphere
/// reports percentages in hundredths of a percent, and sizes and rates in (binary) kilobytes.
pub(crate) fn unit_factor(unit: &str, canonical: MetricUnit) -> Option<f64> {
    const KIB: f64 = 1024.0;
    match (unit, canonical) {
        ("percent", MetricUnit::Percent) => Some(0.01),
        ("kiloBytes", MetricUnit::Bytes) => Some(KIB),
        ("megaBytes", MetricUnit::Bytes) => Some(KIB * KIB),
        ("teraBytes", MetricUnit::Bytes) => Some(KIB * KIB * KIB * KIB),
        ("kiloBytesPerSecond", MetricUnit::BytesPerSecond) => Some(KIB),
        ("megaBytesPerSecond", MetricUnit::BytesPerSecond) => Some(KIB * KIB),
        _ => None,
    }
}

/// One entity's query.
#[derive(Debug, Clone, PartialEq)]
struct QuerySpec {
    entity: MoRef,
    scope: Scope,
    interval: i32,
    start: DateTime<Utc>,
    max_sample: i64,
    counters: Vec<i32>,
}

/// The queries of one cycle: connected hosts and powered-on VMs at the realtime interval,
/// accessible datastores at the historical one. An entity whose state is unknown is asked.
fn query_specs(
    snapshot: &InventorySnapshot,
    setup: &Setup,
    position: &PerfPosition,
    now: DateTime<Utc>,
) -> Vec<QuerySpec> {
    let ids = |scope: Scope| -> Vec<i32> {
        setup
            .counters
            .iter()
            .filter(|c| c.scope == scope)
            .map(|c| c.id)
            .collect()
    };
    let mut specs = Vec::new();
    for (scope, interval) in [
        (Scope::Realtime, REALTIME_INTERVAL),
        (Scope::Historical, setup.historical_interval),
    ] {
        let counters = ids(scope);
        if counters.is_empty() {
            continue;
        }
        let window = Window::new(scope, interval, position.get(scope), now);
        let entities: Vec<&MoRef> = match scope {
            Scope::Realtime => {
                let hosts = snapshot.objects_of(host::KIND).filter(|(_, object)| {
                    object
                        .str(host::CONNECTION_STATE)
                        .ok()
                        .flatten()
                        .unwrap_or("connected")
                        == "connected"
                });
                let vms = snapshot.objects_of(vm::KIND).filter(|(_, object)| {
                    object
                        .str(vm::POWER_STATE)
                        .ok()
                        .flatten()
                        .unwrap_or("poweredOn")
                        == "poweredOn"
                });
                hosts.chain(vms).map(|(obj, _)| obj).collect()
            }
            Scope::Historical => snapshot
                .objects_of(datastore::KIND)
                .filter(|(_, object)| {
                    object.bool(datastore::ACCESSIBLE).ok().flatten() != Some(false)
                })
                .map(|(obj, _)| obj)
                .collect(),
        };
        specs.extend(entities.into_iter().map(|entity| QuerySpec {
            entity: entity.clone(),
            scope,
            interval,
            start: window.start,
            max_sample: window.max_sample,
            counters: counters.clone(),
        }));
    }
    specs
}

/// The time range one interval is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    /// Exclusive: samples after it.
    start: DateTime<Utc>,
    /// Enough samples for the whole range, so the newest ones never push out older ones.
    max_sample: i64,
}

impl Window {
    fn new(
        scope: Scope,
        interval: i32,
        watermark: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Self {
        let (fresh, max) = match scope {
            Scope::Realtime => (FRESH_LOOKBACK_REALTIME, MAX_LOOKBACK_REALTIME),
            Scope::Historical => (FRESH_LOOKBACK_HISTORICAL, MAX_LOOKBACK_HISTORICAL),
        };
        let oldest = now - Duration::seconds(max);
        let start = match watermark {
            Some(watermark) => watermark.max(oldest),
            None => now - Duration::seconds(fresh),
        };
        Self {
            start,
            max_sample: max / i64::from(interval.max(1)) + 1,
        }
    }
}

/// Packs the queries into calls of at most `max_metrics` metrics (entities x counters) and
/// `max_entities` query specs. An entity with more counters than one call may hold is split
/// over several specs.
fn plan_calls(
    specs: Vec<QuerySpec>,
    max_metrics: usize,
    max_entities: usize,
) -> Vec<Vec<QuerySpec>> {
    let max_metrics = max_metrics.max(1);
    let max_entities = max_entities.max(1);
    let mut calls: Vec<Vec<QuerySpec>> = Vec::new();
    let mut current: Vec<QuerySpec> = Vec::new();
    let mut metrics = 0;
    for spec in specs {
        for counters in spec.counters.chunks(max_metrics) {
            if !current.is_empty()
                && (metrics + counters.len() > max_metrics || current.len() >= max_entities)
            {
                calls.push(std::mem::take(&mut current));
                metrics = 0;
            }
            metrics += counters.len();
            current.push(QuerySpec {
                counters: counters.to_vec(),
                ..spec.clone()
            });
        }
    }
    if !current.is_empty() {
        calls.push(current);
    }
    calls
}

/// `QueryPerf` with one `PerfQuerySpec` per entity, members in WSDL order (entity,
/// startTime, endTime, maxSample, metricId, intervalId, format).
fn query_perf_request(manager: &MoRef, specs: &[QuerySpec]) -> String {
    let mut out = open_method("QueryPerf", manager);
    for spec in specs {
        out.push_str("<querySpec>");
        push_moref(&mut out, "entity", &spec.entity);
        push_text(
            &mut out,
            "startTime",
            &spec.start.to_rfc3339_opts(SecondsFormat::Secs, true),
        );
        push_text(&mut out, "maxSample", &spec.max_sample.to_string());
        for counter in &spec.counters {
            // The aggregate instance: the entity's total, not per device.
            out.push_str("<metricId>");
            push_text(&mut out, "counterId", &counter.to_string());
            out.push_str("<instance></instance></metricId>");
        }
        push_text(&mut out, "intervalId", &spec.interval.to_string());
        out.push_str("<format>normal</format></querySpec>");
    }
    close_method(out, "QueryPerf")
}

/// `RetrievePropertiesEx` of the performance manager's counters and historical intervals.
fn perf_manager_request(collector: &MoRef, manager: &MoRef) -> String {
    let mut out = open_method("RetrievePropertiesEx", collector);
    out.push_str("<specSet><propSet><type>PerformanceManager</type><all>false</all>");
    push_text(&mut out, "pathSet", "perfCounter");
    push_text(&mut out, "pathSet", "historicalInterval");
    out.push_str("</propSet><objectSet>");
    push_moref(&mut out, "obj", manager);
    out.push_str("<skip>false</skip></objectSet></specSet><options></options>");
    close_method(out, "RetrievePropertiesEx")
}

/// What Pylon keeps of a `PerfCounterInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct CounterInfo {
    key: i32,
    group: String,
    name: String,
    rollup: String,
    unit: String,
    /// The statistics level that collects it historically (realtime has all of them).
    level: Option<i32>,
}

impl CounterInfo {
    fn full_name(&self) -> String {
        format!("{}.{}.{}", self.group, self.name, self.rollup)
    }
}

#[derive(Debug, Default)]
struct PerfManagerInfo {
    counters: Vec<CounterInfo>,
    /// The shortest enabled historical sampling period, in seconds.
    shortest_historical: Option<i32>,
}

/// Parses the `RetrievePropertiesExResponse` of [`perf_manager_request`]. Counters without a
/// key or name are left out; unknown members are skipped.
fn parse_perf_manager(bytes: &[u8]) -> Result<PerfManagerInfo, XmlError> {
    let mut info = PerfManagerInfo::default();
    visit_prop_sets(bytes, |cursor| {
        read_perf_manager_property(cursor, &mut info)
    })?;
    Ok(info)
}

/// One `propSet` (`name` before `val`, as vSphere sends it).
fn read_perf_manager_property(
    cursor: &mut Cursor<'_>,
    info: &mut PerfManagerInfo,
) -> Result<(), XmlError> {
    let mut name = String::new();
    while let Some(child) = cursor.child()? {
        match (local_name(&child), name.as_str()) {
            ("name", _) => name = cursor.text()?.trim().to_owned(),
            ("val", "perfCounter") => {
                while cursor.child()?.is_some() {
                    if let Some(counter) = read_counter_info(cursor)? {
                        info.counters.push(counter);
                    }
                }
            }
            ("val", "historicalInterval") => {
                while cursor.child()?.is_some() {
                    let (period, enabled) = read_interval(cursor)?;
                    if let (Some(period), true) = (period, enabled) {
                        info.shortest_historical = Some(
                            info.shortest_historical
                                .map_or(period, |p: i32| p.min(period)),
                        );
                    }
                }
            }
            _ => cursor.skip()?,
        }
    }
    Ok(())
}

fn read_counter_info(cursor: &mut Cursor<'_>) -> Result<Option<CounterInfo>, XmlError> {
    let mut counter = CounterInfo::default();
    let mut key = None;
    while let Some(child) = cursor.child()? {
        match local_name(&child) {
            "key" => key = cursor.text()?.trim().parse::<i32>().ok(),
            "nameInfo" => counter.name = description_key(cursor)?,
            "groupInfo" => counter.group = description_key(cursor)?,
            "unitInfo" => counter.unit = description_key(cursor)?,
            "rollupType" => counter.rollup = cursor.text()?.trim().to_owned(),
            "level" => counter.level = cursor.text()?.trim().parse::<i32>().ok(),
            _ => cursor.skip()?,
        }
    }
    let Some(key) = key else {
        return Ok(None);
    };
    counter.key = key;
    Ok((!counter.name.is_empty() && !counter.group.is_empty()).then_some(counter))
}

/// The `key` of an `ElementDescription`.
fn description_key(cursor: &mut Cursor<'_>) -> Result<String, XmlError> {
    let mut key = String::new();
    while let Some(child) = cursor.child()? {
        if local_name(&child) == "key" {
            key = cursor.text()?.trim().to_owned();
        } else {
            cursor.skip()?;
        }
    }
    Ok(key)
}

/// A `PerfInterval`: its sampling period and whether it is enabled (absent: enabled).
fn read_interval(cursor: &mut Cursor<'_>) -> Result<(Option<i32>, bool), XmlError> {
    let mut period = None;
    let mut enabled = true;
    while let Some(child) = cursor.child()? {
        match local_name(&child) {
            "samplingPeriod" => period = cursor.text()?.trim().parse::<i32>().ok(),
            "enabled" => enabled = cursor.boolean()?,
            _ => cursor.skip()?,
        }
    }
    Ok((period.filter(|p| *p > 0), enabled))
}

/// The value of option `key` in a `QueryOptionsResponse` (vCenter matches by prefix, so
/// other options may come along). `None` when absent or not a number.
fn parse_query_options(bytes: &[u8], key: &str) -> Result<Option<i64>, XmlError> {
    let mut cursor = Cursor::new(bytes);
    cursor.enter_response(&["QueryOptionsResponse"])?;
    let mut found = None;
    while let Some(child) = cursor.child()? {
        if local_name(&child) != "returnval" {
            cursor.skip()?;
            continue;
        }
        let mut this_key = String::new();
        let mut value = None;
        while let Some(member) = cursor.child()? {
            match local_name(&member) {
                "key" => this_key = cursor.text()?.trim().to_owned(),
                "value" => value = cursor.text()?.trim().parse::<i64>().ok(),
                _ => cursor.skip()?,
            }
        }
        if this_key == key {
            found = value;
        }
    }
    cursor.finish()?;
    Ok(found)
}

/// One `PerfEntityMetric` as read: sample times (in order, `None` where unreadable) and the
/// aggregate series by counter id.
#[derive(Debug, Clone, PartialEq)]
struct EntityMetric {
    entity: MoRef,
    times: Vec<Option<DateTime<Utc>>>,
    series: Vec<(i32, Vec<i64>)>,
}

/// Parses a `QueryPerfResponse`. Results of other types (`PerfEntityMetricCSV`, which Pylon
/// does not ask for) and per-instance series are skipped; an empty answer is no results.
fn parse_query_perf(bytes: &[u8]) -> Result<Vec<EntityMetric>, XmlError> {
    let mut cursor = Cursor::new(bytes);
    cursor.enter_response(&["QueryPerfResponse"])?;
    let mut metrics = Vec::new();
    while let Some(child) = cursor.child()? {
        let xsi_type = cursor.attributes(&child)?.xsi_type;
        let is_entity_metric = xsi_type.as_deref().is_none_or(|t| t == "PerfEntityMetric");
        if local_name(&child) != "returnval" || !is_entity_metric {
            cursor.skip()?;
            continue;
        }
        if let Some(metric) = read_entity_metric(&mut cursor)? {
            metrics.push(metric);
        }
    }
    cursor.finish()?;
    Ok(metrics)
}

fn read_entity_metric(cursor: &mut Cursor<'_>) -> Result<Option<EntityMetric>, XmlError> {
    let mut entity = None;
    let mut times = Vec::new();
    let mut series = Vec::new();
    while let Some(child) = cursor.child()? {
        match local_name(&child) {
            "entity" => entity = Some(cursor.moref(&child)?),
            "sampleInfo" => {
                let mut at = None;
                while let Some(field) = cursor.child()? {
                    if local_name(&field) == "timestamp" {
                        at = DateTime::parse_from_rfc3339(cursor.text()?.trim())
                            .ok()
                            .map(|t| t.with_timezone(&Utc));
                    } else {
                        cursor.skip()?;
                    }
                }
                times.push(at);
            }
            "value" => {
                let xsi_type = cursor.attributes(&child)?.xsi_type;
                if xsi_type
                    .as_deref()
                    .is_some_and(|t| t != "PerfMetricIntSeries")
                {
                    cursor.skip()?;
                    continue;
                }
                if let Some(read) = read_int_series(cursor)? {
                    series.push(read);
                }
            }
            _ => cursor.skip()?,
        }
    }
    Ok(entity.map(|entity| EntityMetric {
        entity,
        times,
        series,
    }))
}

/// A `PerfMetricIntSeries` of the aggregate instance: its counter id and values. Series of
/// other instances, or without a counter id, are `None`.
fn read_int_series(cursor: &mut Cursor<'_>) -> Result<Option<(i32, Vec<i64>)>, XmlError> {
    let mut counter = None;
    let mut instance = String::new();
    let mut values = Vec::new();
    while let Some(child) = cursor.child()? {
        match local_name(&child) {
            "id" => {
                while let Some(field) = cursor.child()? {
                    match local_name(&field) {
                        "counterId" => counter = cursor.text()?.trim().parse::<i32>().ok(),
                        "instance" => instance = cursor.text()?.trim().to_owned(),
                        _ => cursor.skip()?,
                    }
                }
            }
            // A value that is not a number is kept as "no value" so the rest stay aligned
            // with their sample times.
            "value" => values.push(cursor.text()?.trim().parse::<i64>().unwrap_or(-1)),
            _ => cursor.skip()?,
        }
    }
    Ok(counter.filter(|_| instance.is_empty()).map(|c| (c, values)))
}

/// Samples of one cycle and each entity's newest sample among them.
#[derive(Debug, Default)]
struct Collected {
    samples: Vec<RawSamples>,
    newest: HashMap<(Scope, MoRef), DateTime<Utc>>,
    unreadable: usize,
}

/// Turns answers into canonical samples. A sample is kept when it is newer than the
/// interval's watermark and than what this session already has of the entity; vSphere's
/// `-1` ("not collected") is dropped; times are whole seconds, as the host stores them.
fn collect(
    answers: Vec<EntityMetric>,
    counters: &HashMap<i32, Counter>,
    position: &PerfPosition,
    known: &HashMap<(Scope, MoRef), DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Collected {
    let mut collected = Collected::default();
    // Several specs (counter chunks) of one entity come back as several results.
    let mut runs: BTreeMap<(MoRef, MetricName), BTreeMap<DateTime<Utc>, f64>> = BTreeMap::new();
    for answer in answers {
        if answer.times.iter().any(Option::is_none) {
            collected.unreadable += 1;
        }
        for (counter_id, values) in &answer.series {
            let Some(counter) = counters.get(counter_id) else {
                continue;
            };
            let key = (counter.scope, answer.entity.clone());
            let floor = match (position.get(counter.scope), known.get(&key)) {
                (Some(w), Some(k)) => Some(w.max(*k)),
                (w, k) => w.or(k.copied()),
            };
            let run = runs
                .entry((answer.entity.clone(), counter.metric))
                .or_default();
            let mut newest = None;
            for (at, value) in answer.times.iter().zip(values) {
                let Some(at) = at.and_then(whole_second) else {
                    continue;
                };
                // Samples from the future are a clock problem on the server; a watermark
                // there would stall collection, so they are not kept.
                if *value < 0 || floor.is_some_and(|f| at <= f) || at > now + Duration::minutes(5) {
                    continue;
                }
                run.insert(at, *value as f64 * counter.factor);
                newest = newest.max(Some(at));
            }
            if let Some(newest) = newest {
                let slot = collected.newest.entry(key).or_insert(newest);
                *slot = (*slot).max(newest);
            }
        }
    }
    collected.samples = runs
        .into_iter()
        .filter(|(_, points)| !points.is_empty())
        .map(|((entity, metric), points)| RawSamples {
            entity,
            metric,
            points: points.into_iter().collect(),
        })
        .collect();
    collected
}

/// The watermark of one interval: the oldest of the asked entities' newest samples (what
/// this session holds of each, this poll's included), so an entity whose data arrives late
/// is asked again from where it stands. An entity more than `stall` behind the newest one
/// (a host that stopped reporting while vCenter still calls it connected) is left out, so it
/// cannot hold every other entity's queries an hour back; it loses those samples. `None`
/// when no entity has a sample yet.
fn watermark(
    newest: impl Iterator<Item = DateTime<Utc>>,
    stall: Duration,
) -> Option<DateTime<Utc>> {
    let newest: Vec<DateTime<Utc>> = newest.collect();
    let ahead = newest.iter().max().copied()?;
    newest.into_iter().filter(|t| *t >= ahead - stall).min()
}

/// How far behind the others an entity may fall before it no longer holds the watermark:
/// fifteen realtime samples, or a few of vCenter's half-hourly datastore space samples.
fn stall_after(scope: Scope) -> Duration {
    match scope {
        Scope::Realtime => Duration::minutes(5),
        Scope::Historical => Duration::hours(2),
    }
}

fn whole_second(at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(at.timestamp(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn soap(inner: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{inner}</soapenv:Body></soapenv:Envelope>"#
        )
    }

    fn counter_info(key: i32, group: &str, name: &str, rollup: &str, unit: &str) -> String {
        format!(
            "<PerfCounterInfo xsi:type=\"PerfCounterInfo\"><key>{key}</key>\
             <nameInfo><label>L</label><summary>S</summary><key>{name}</key></nameInfo>\
             <groupInfo><label>G</label><summary>S</summary><key>{group}</key></groupInfo>\
             <unitInfo><label>U</label><summary>S</summary><key>{unit}</key></unitInfo>\
             <rollupType>{rollup}</rollupType><statsType>rate</statsType><level>1</level>\
             <perDeviceLevel>3</perDeviceLevel><futureField><x>1</x></futureField></PerfCounterInfo>"
        )
    }

    fn perf_manager_answer(counters: &[String], intervals: &str) -> String {
        soap(&format!(
            "<RetrievePropertiesExResponse xmlns=\"urn:vim25\"><returnval><objects>\
             <obj type=\"PerformanceManager\">PerfMgr</obj>\
             <propSet><name>perfCounter</name><val xsi:type=\"ArrayOfPerfCounterInfo\">{}</val></propSet>\
             {intervals}</objects></returnval></RetrievePropertiesExResponse>",
            counters.join("")
        ))
    }

    fn all_counters() -> Vec<String> {
        vec![
            counter_info(1, "cpu", "usage", "none", "percent"),
            counter_info(2, "cpu", "usage", "average", "percent"),
            counter_info(98, "mem", "consumed", "average", "kiloBytes"),
            counter_info(130, "disk", "read", "average", "kiloBytesPerSecond"),
            counter_info(131, "disk", "write", "average", "kiloBytesPerSecond"),
            counter_info(148, "net", "received", "average", "kiloBytesPerSecond"),
            counter_info(149, "net", "transmitted", "average", "kiloBytesPerSecond"),
            counter_info(281, "disk", "used", "latest", "kiloBytes"),
            counter_info(283, "disk", "capacity", "latest", "kiloBytes"),
        ]
    }

    #[test]
    fn counters_are_resolved_by_name_with_their_units() {
        let intervals = "<propSet><name>historicalInterval</name><val xsi:type=\"ArrayOfPerfInterval\">\
            <PerfInterval><key>2</key><samplingPeriod>1800</samplingPeriod><name>Past week</name><length>604800</length><level>1</level><enabled>true</enabled></PerfInterval>\
            <PerfInterval><key>1</key><samplingPeriod>300</samplingPeriod><name>Past day</name><length>86400</length><level>1</level><enabled>true</enabled></PerfInterval>\
            <PerfInterval><key>0</key><samplingPeriod>60</samplingPeriod><enabled>false</enabled></PerfInterval>\
            </val></propSet>";
        let info =
            parse_perf_manager(perf_manager_answer(&all_counters(), intervals).as_bytes()).unwrap();
        assert_eq!(info.counters.len(), 9);
        assert_eq!(
            info.shortest_historical,
            Some(300),
            "the disabled 60 s interval is not used"
        );
        let (counters, missing) = resolve_counters(&info.counters);
        assert!(missing.is_empty(), "{missing:?}");
        let cpu = counters
            .iter()
            .find(|c| c.metric == MetricName::CpuPercent)
            .unwrap();
        assert_eq!((cpu.id, cpu.factor, cpu.scope), (2, 0.01, Scope::Realtime));
        let used = counters
            .iter()
            .find(|c| c.metric == MetricName::DiskUsedBytes)
            .unwrap();
        assert_eq!(
            (used.id, used.factor, used.scope),
            (281, 1024.0, Scope::Historical)
        );
        let rx = counters
            .iter()
            .find(|c| c.metric == MetricName::NetworkRxBytesPerSecond)
            .unwrap();
        assert_eq!((rx.id, rx.factor), (148, 1024.0));
    }

    #[test]
    fn lacking_counters_and_wrong_units_are_named() {
        let mut counters = all_counters();
        counters.retain(|c| !c.contains("<key>transmitted</key>"));
        // A unit that cannot become bytes per second.
        counters.push(counter_info(500, "net", "transmitted", "average", "number"));
        counters.retain(|c| !c.contains("<key>capacity</key>"));
        // A counter without a key is left out, not an error.
        counters.push(
            "<PerfCounterInfo><nameInfo><key>capacity</key></nameInfo></PerfCounterInfo>".into(),
        );
        let info = parse_perf_manager(perf_manager_answer(&counters, "").as_bytes()).unwrap();
        assert_eq!(info.shortest_historical, None);
        let (resolved, missing) = resolve_counters(&info.counters);
        assert_eq!(missing, ["net.transmitted.average", "disk.capacity.latest"]);
        assert_eq!(resolved.len(), 6);
    }

    #[test]
    fn unit_conversions() {
        assert_eq!(unit_factor("percent", MetricUnit::Percent), Some(0.01));
        assert_eq!(unit_factor("kiloBytes", MetricUnit::Bytes), Some(1024.0));
        assert_eq!(
            unit_factor("megaBytes", MetricUnit::Bytes),
            Some(1_048_576.0)
        );
        assert_eq!(
            unit_factor("kiloBytesPerSecond", MetricUnit::BytesPerSecond),
            Some(1024.0)
        );
        assert_eq!(unit_factor("kiloBytes", MetricUnit::BytesPerSecond), None);
        assert_eq!(unit_factor("megaHertz", MetricUnit::Percent), None);
        // 2,345 hundredths of a percent is 23.45 %.
        let counters: HashMap<i32, Counter> = [(
            2,
            Counter {
                id: 2,
                metric: MetricName::CpuPercent,
                factor: 0.01,
                scope: Scope::Realtime,
            },
        )]
        .into();
        let answer = EntityMetric {
            entity: MoRef::new("HostSystem", "host-1"),
            times: vec![Some(at("2026-01-01T00:00:20Z"))],
            series: vec![(2, vec![2345])],
        };
        let now = at("2026-01-01T00:01:00Z");
        let collected = collect(
            vec![answer],
            &counters,
            &PerfPosition::default(),
            &HashMap::new(),
            now,
        );
        assert!((collected.samples[0].points[0].1 - 23.45).abs() < 1e-9);
    }

    #[test]
    fn max_query_metrics_option() {
        let answer = soap(
            "<QueryOptionsResponse xmlns=\"urn:vim25\"><returnval><key>config.vpxd.stats.maxQueryMetricsX</key><value xsi:type=\"xsd:int\">7</value></returnval>\
             <returnval><key>config.vpxd.stats.maxQueryMetrics</key><value xsi:type=\"xsd:string\"> 64 </value><extra/></returnval></QueryOptionsResponse>",
        );
        assert_eq!(
            parse_query_options(answer.as_bytes(), MAX_QUERY_METRICS_OPTION).unwrap(),
            Some(64)
        );
        let empty = soap("<QueryOptionsResponse xmlns=\"urn:vim25\"></QueryOptionsResponse>");
        assert_eq!(
            parse_query_options(empty.as_bytes(), MAX_QUERY_METRICS_OPTION).unwrap(),
            None
        );
        let fault = soap(
            "<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>bad</faultstring>\
             <detail><InvalidNameFault xmlns=\"urn:vim25\" xsi:type=\"InvalidName\"><name>x</name></InvalidNameFault></detail></soapenv:Fault>",
        );
        assert!(parse_query_options(fault.as_bytes(), MAX_QUERY_METRICS_OPTION).is_err());
        assert_eq!(metrics_per_call(Some(64)), 64);
        assert_eq!(metrics_per_call(None), DEFAULT_MAX_QUERY_METRICS);
        assert_eq!(metrics_per_call(Some(0)), DEFAULT_MAX_QUERY_METRICS);
        assert_eq!(metrics_per_call(Some(-7)), DEFAULT_MAX_QUERY_METRICS);
        assert_eq!(metrics_per_call(Some(-1)), usize::MAX);
    }

    fn spec(entity: &str, counters: &[i32]) -> QuerySpec {
        QuerySpec {
            entity: MoRef::new("VirtualMachine", entity),
            scope: Scope::Realtime,
            interval: REALTIME_INTERVAL,
            start: at("2026-01-01T00:00:00Z"),
            max_sample: 181,
            counters: counters.to_vec(),
        }
    }

    fn check_plan(
        entities: usize,
        counters: usize,
        max_metrics: usize,
        max_entities: usize,
        expected_calls: usize,
    ) {
        let ids: Vec<i32> = (0..i32::try_from(counters).unwrap()).collect();
        let specs: Vec<QuerySpec> = (0..entities)
            .map(|i| spec(&format!("vm-{i}"), &ids))
            .collect();
        let calls = plan_calls(specs, max_metrics, max_entities);
        assert_eq!(
            calls.len(),
            expected_calls,
            "{entities} x {counters} at {max_metrics}/{max_entities}"
        );
        for call in &calls {
            let metrics: usize = call.iter().map(|s| s.counters.len()).sum();
            assert!(
                metrics <= max_metrics.max(1),
                "{metrics} metrics in one call"
            );
            assert!(call.len() <= max_entities);
        }
        // Every (entity, counter) is asked exactly once.
        let mut asked: Vec<(String, i32)> = calls
            .iter()
            .flatten()
            .flat_map(|s| s.counters.iter().map(|c| (s.entity.value.clone(), *c)))
            .collect();
        asked.sort();
        asked.dedup();
        assert_eq!(asked.len(), entities * counters);
    }

    #[test]
    fn batches_respect_the_metric_and_entity_limits() {
        check_plan(100, 6, 64, MAX_ENTITIES_PER_CALL, 10); // 10 entities (60 metrics) a call
        check_plan(5000, 6, 64, MAX_ENTITIES_PER_CALL, 500);
        check_plan(5000, 6, usize::MAX, MAX_ENTITIES_PER_CALL, 20); // -1: entities cap
        check_plan(3, 6, 4, MAX_ENTITIES_PER_CALL, 6); // an entity split over calls
        check_plan(0, 6, 64, MAX_ENTITIES_PER_CALL, 0);
        check_plan(1, 6, 0, MAX_ENTITIES_PER_CALL, 6); // a nonsense limit still works
    }

    #[test]
    fn the_request_carries_start_max_sample_and_the_aggregate_instance() {
        let body = query_perf_request(
            &MoRef::new("PerformanceManager", "PerfMgr"),
            &[spec("vm-1", &[2, 98]), spec("vm-<2>", &[2])],
        );
        assert!(body.starts_with("<QueryPerf xmlns=\"urn:vim25\""), "{body}");
        assert!(body.contains("<_this type=\"PerformanceManager\">PerfMgr</_this>"));
        assert!(body.contains(
            "<querySpec><entity type=\"VirtualMachine\">vm-1</entity><startTime>2026-01-01T00:00:00Z</startTime><maxSample>181</maxSample>\
             <metricId><counterId>2</counterId><instance></instance></metricId><metricId><counterId>98</counterId><instance></instance></metricId>\
             <intervalId>20</intervalId><format>normal</format></querySpec>"
        ), "{body}");
        assert!(body.contains("vm-&lt;2&gt;"));
        assert_eq!(body.matches("<querySpec>").count(), 2);
    }

    /// A series: counter id, instance and values.
    type Series<'a> = (i32, &'a str, &'a [i64]);

    /// A `QueryPerfResponse` with, per entity, samples at `times` (seconds after midnight,
    /// newest first as vCenter sends them) and its series.
    fn perf_answer(entities: &[(&str, &[u32], &[Series<'_>])]) -> String {
        let mut inner = String::from("<QueryPerfResponse xmlns=\"urn:vim25\">");
        for (entity, times, series) in entities {
            inner.push_str(&format!(
                "<returnval xsi:type=\"PerfEntityMetric\"><entity type=\"HostSystem\">{entity}</entity>"
            ));
            for t in *times {
                inner.push_str(&format!(
                    "<sampleInfo><timestamp>2026-01-01T00:{:02}:{:02}.{}Z</timestamp><interval>20</interval></sampleInfo>",
                    t / 60,
                    t % 60,
                    "5"
                ));
            }
            for (counter, instance, values) in *series {
                inner.push_str(&format!(
                    "<value xsi:type=\"PerfMetricIntSeries\"><id><counterId>{counter}</counterId><instance>{instance}</instance></id>"
                ));
                for v in *values {
                    inner.push_str(&format!("<value>{v}</value>"));
                }
                inner.push_str("</value>");
            }
            inner.push_str("<unknownMember>1</unknownMember></returnval>");
        }
        inner.push_str("</QueryPerfResponse>");
        soap(&inner)
    }

    #[test]
    fn answers_are_parsed_aggregate_instance_only() {
        let answer = perf_answer(&[(
            "host-1",
            &[40, 20],
            &[(2, "", &[150, 100]), (2, "0", &[1, 1]), (98, "", &[1, -1])],
        )]);
        let mut text = answer.replace(
            "</QueryPerfResponse>",
            "<returnval xsi:type=\"PerfEntityMetricCSV\"><entity type=\"HostSystem\">host-2</entity><sampleInfoCSV>20,x</sampleInfoCSV></returnval></QueryPerfResponse>",
        );
        let metrics = parse_query_perf(text.as_bytes()).unwrap();
        assert_eq!(metrics.len(), 1, "the CSV result is skipped");
        assert_eq!(metrics[0].entity.value, "host-1");
        assert_eq!(
            metrics[0].series,
            vec![(2, vec![150, 100]), (98, vec![1, -1])]
        );
        assert_eq!(metrics[0].times.len(), 2);
        // An empty answer is no results; garbage and faults are errors, not panics.
        let empty = soap("<QueryPerfResponse xmlns=\"urn:vim25\"/>");
        assert!(parse_query_perf(empty.as_bytes()).unwrap().is_empty());
        assert!(parse_query_perf(b"<html>busy</html>").is_err());
        text.truncate(text.len() / 2);
        assert!(parse_query_perf(text.as_bytes()).is_err());
        assert!(parse_perf_manager(b"").is_err());
    }

    fn realtime_counters() -> HashMap<i32, Counter> {
        [
            (
                2,
                Counter {
                    id: 2,
                    metric: MetricName::CpuPercent,
                    factor: 0.01,
                    scope: Scope::Realtime,
                },
            ),
            (
                98,
                Counter {
                    id: 98,
                    metric: MetricName::MemoryUsedBytes,
                    factor: 1024.0,
                    scope: Scope::Realtime,
                },
            ),
        ]
        .into()
    }

    fn points(collected: &Collected, entity: &str, metric: MetricName) -> Vec<DateTime<Utc>> {
        collected
            .samples
            .iter()
            .filter(|s| s.entity.value == entity && s.metric == metric)
            .flat_map(|s| s.points.iter().map(|(t, _)| *t))
            .collect()
    }

    #[test]
    fn consecutive_answers_leave_no_gap_and_no_duplicate() {
        let counters = realtime_counters();
        let now = at("2026-01-01T00:10:00Z");
        // Poll 1: host-1 is a sample ahead of host-2 (its data arrived later).
        let first = parse_query_perf(
            perf_answer(&[
                (
                    "host-1",
                    &[60, 40, 20],
                    &[(2, "", &[3, 2, 1]), (98, "", &[3, 2, 1])],
                ),
                ("host-2", &[40, 20], &[(2, "", &[2, 1]), (98, "", &[-1, 1])]),
            ])
            .as_bytes(),
        )
        .unwrap();
        let one = collect(
            first,
            &counters,
            &PerfPosition::default(),
            &HashMap::new(),
            now,
        );
        assert_eq!(
            points(&one, "host-1", MetricName::CpuPercent),
            [
                at("2026-01-01T00:00:20Z"),
                at("2026-01-01T00:00:40Z"),
                at("2026-01-01T00:01:00Z")
            ],
            "oldest first, in whole seconds"
        );
        // -1 is "not collected": no sample.
        assert_eq!(
            points(&one, "host-2", MetricName::MemoryUsedBytes),
            [at("2026-01-01T00:00:20Z")]
        );
        // The watermark is the newest sample both hosts have: host-2's 00:00:40 (a `-1`
        // is a sample time without a value, not a lag).
        let mut position = PerfPosition::default();
        let realtime = |newest: &HashMap<(Scope, MoRef), DateTime<Utc>>| {
            watermark(newest.values().copied(), stall_after(Scope::Realtime)).unwrap()
        };
        position.set(Scope::Realtime, realtime(&one.newest));
        assert_eq!(position.realtime, Some(at("2026-01-01T00:00:40Z")));
        let window = Window::new(Scope::Realtime, REALTIME_INTERVAL, position.realtime, now);
        assert_eq!(window.start, at("2026-01-01T00:00:40Z"));

        // Poll 2 asks from the watermark: the server answers everything after it, host-1's
        // 00:01:00 again (this session already has it) and host-2's 00:01:00, which it has
        // not seen.
        let second = parse_query_perf(
            perf_answer(&[
                ("host-1", &[80, 60], &[(2, "", &[4, 3]), (98, "", &[4, 3])]),
                ("host-2", &[80, 60], &[(2, "", &[4, 3]), (98, "", &[4, 3])]),
            ])
            .as_bytes(),
        )
        .unwrap();
        let two = collect(second, &counters, &position, &one.newest, now);
        assert_eq!(
            points(&two, "host-1", MetricName::CpuPercent),
            [at("2026-01-01T00:01:20Z")]
        );
        assert_eq!(
            points(&two, "host-2", MetricName::CpuPercent),
            [at("2026-01-01T00:01:00Z"), at("2026-01-01T00:01:20Z")],
            "host-2's late sample is not lost"
        );
        // Together: every 20 s sample of every series exactly once (host-2's memory has no
        // value at 00:00:40).
        let grid = |seconds: &[i64]| -> Vec<DateTime<Utc>> {
            seconds
                .iter()
                .map(|s| at("2026-01-01T00:00:00Z") + Duration::seconds(*s))
                .collect()
        };
        for entity in ["host-1", "host-2"] {
            for metric in [MetricName::CpuPercent, MetricName::MemoryUsedBytes] {
                let mut all = points(&one, entity, metric);
                all.extend(points(&two, entity, metric));
                let expected = if (entity, metric) == ("host-2", MetricName::MemoryUsedBytes) {
                    grid(&[20, 60, 80])
                } else {
                    grid(&[20, 40, 60, 80])
                };
                assert_eq!(all, expected, "{entity} {metric:?}");
            }
        }
        let mut known = one.newest.clone();
        known.extend(two.newest.clone());
        assert_eq!(realtime(&known), at("2026-01-01T00:01:20Z"));

        // After a restart the session knows nothing per entity: the watermark alone keeps
        // every sample at or before it out.
        let restarted = collect(
            parse_query_perf(
                perf_answer(&[("host-1", &[80, 60, 40, 20], &[(2, "", &[4, 3, 2, 1])])]).as_bytes(),
            )
            .unwrap(),
            &counters,
            &position,
            &HashMap::new(),
            now,
        );
        assert_eq!(
            points(&restarted, "host-1", MetricName::CpuPercent),
            [at("2026-01-01T00:01:00Z"), at("2026-01-01T00:01:20Z")],
            "host-1's 00:01:00 comes again; the host drops it as stored"
        );
    }

    #[test]
    fn a_lagging_entity_holds_the_watermark_and_a_stalled_one_does_not() {
        let t = |s: i64| at("2026-01-01T00:00:00Z") + Duration::seconds(s);
        let stall = stall_after(Scope::Realtime);
        // host-2 did not progress this poll: the next poll asks from its newest sample,
        // so its late 00:02:00 sample is still read.
        assert_eq!(watermark([t(120), t(100)].into_iter(), stall), Some(t(100)));
        // A host six minutes behind the others no longer holds everyone back.
        assert_eq!(
            watermark([t(1000), t(980), t(1000 - 360)].into_iter(), stall),
            Some(t(980))
        );
        assert_eq!(watermark(std::iter::empty(), stall), None);
    }

    #[test]
    fn an_answer_without_new_samples_keeps_the_watermark() {
        let counters = realtime_counters();
        let now = at("2026-01-01T00:10:00Z");
        let position = PerfPosition {
            realtime: Some(at("2026-01-01T00:01:00Z")),
            historical: None,
        };
        let same = parse_query_perf(perf_answer(&[("host-1", &[60], &[(2, "", &[3])])]).as_bytes())
            .unwrap();
        let collected = collect(same, &counters, &position, &HashMap::new(), now);
        assert!(collected.samples.is_empty());
        assert!(collected.newest.is_empty());
        // A time the server cannot have yet is not kept.
        let future = parse_query_perf(
            perf_answer(&[("host-1", &[80], &[(2, "", &[3])])])
                .replace("2026-01-01T00:01:20.5Z", "2027-01-01T00:00:00Z")
                .as_bytes(),
        )
        .unwrap();
        let collected = collect(future, &counters, &position, &HashMap::new(), now);
        assert!(collected.samples.is_empty());
    }

    #[test]
    fn windows_start_bounded_back() {
        let now = at("2026-01-01T12:00:00Z");
        let fresh = Window::new(Scope::Realtime, 20, None, now);
        assert_eq!(fresh.start, at("2026-01-01T11:59:00Z"));
        assert_eq!(fresh.max_sample, 181);
        let resumed = Window::new(Scope::Realtime, 20, Some(at("2026-01-01T11:59:40Z")), now);
        assert_eq!(resumed.start, at("2026-01-01T11:59:40Z"));
        let stale = Window::new(Scope::Realtime, 20, Some(at("2025-12-01T00:00:00Z")), now);
        assert_eq!(
            stale.start,
            at("2026-01-01T11:00:00Z"),
            "clamped to realtime retention"
        );
        let datastores = Window::new(Scope::Historical, 300, None, now);
        assert_eq!(datastores.start, at("2026-01-01T11:30:00Z"));
        assert_eq!(datastores.max_sample, 289);
    }

    #[test]
    fn backoff_doubles_up_to_half_an_hour_and_resets() {
        let minutes: Vec<i64> = (1..=8).map(|n| Backoff::pause(n).num_minutes()).collect();
        assert_eq!(minutes, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(Backoff::pause(u32::MAX).num_minutes(), 30);
        let now = at("2026-01-01T00:00:00Z");
        let mut backoff = Backoff::default();
        assert_eq!(backoff.paused_at(now), None);
        backoff.refused(now, "RestrictedByAdministrator".into());
        assert_eq!(
            backoff.paused_at(now + Duration::seconds(59)),
            Some(now + Duration::minutes(1))
        );
        assert_eq!(backoff.paused_at(now + Duration::minutes(1)), None);
        let later = now + Duration::minutes(1);
        assert_eq!(
            backoff.refused(later, "HTTP 500".into()),
            Duration::minutes(2)
        );
        backoff.succeeded();
        assert_eq!(backoff.refused(later, "again".into()), Duration::minutes(1));
    }

    #[test]
    fn cursors_without_performance_read_and_empty_positions_are_not_written() {
        let old: super::super::FeedPosition =
            serde_json::from_str(r#"{"events":{"key":1,"at":"2026-01-01T00:00:00Z"}}"#).unwrap();
        assert!(old.perf.is_empty());
        let text = serde_json::to_string(&old).unwrap();
        assert!(!text.contains("perf"), "{text}");
        let position = PerfPosition {
            realtime: Some(at("2026-01-01T00:00:20Z")),
            historical: None,
        };
        let text = serde_json::to_string(&position).unwrap();
        assert_eq!(text, r#"{"realtime":"2026-01-01T00:00:20Z"}"#);
        assert_eq!(
            serde_json::from_str::<PerfPosition>(&text).unwrap(),
            position
        );
    }
}
