//! Proof that the kit can fail: an in-memory reference provider that passes every check,
//! and one deliberately broken variant per check. `every_check_catches_a_broken_provider`
//! fails if any check has no broken provider it catches, so a check that asserts nothing
//! cannot hide here.

use super::*;
use crate::descriptor::{
    Capabilities, FieldKind, FieldSpec, IngestionMode, PlatformDescriptor, ReadinessStage,
    SupportLevel, SupportMatrix,
};
use crate::draft::{ConnectionConfig, FieldErrors};
use crate::failure::{FailureCategory, ProviderError};
use crate::fixture::{FailureCase, FixturePlan};
use crate::model::{
    LatestMetrics, Projection, Relation, RelationKind, Resource, ResourceStatus, ResourceType,
    Topology, TopologyCounts,
};
use crate::provider::{
    InventoryCounts, Observation, ProviderSession, SystemIdentity, TestContext, TestReport,
};
use async_trait::async_trait;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Runs a future that never waits on I/O (everything here is in memory).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

const TOKEN: &str = "mem-token-5f1e2d";

/// One deliberate defect, and the check that must catch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Defect {
    InvalidSlug,
    AcceptsBadHost,
    AuthAsNetwork,
    SecretInMessage,
    SecretInLog,
    LeaksSessionOnClose,
    IdsChangeBetweenPolls,
    NonCanonicalType,
    DanglingRelation,
    SummaryDisagrees,
    ProjectionDrifts,
    NoRecoveryAfterOutage,
    UnverifiedCapability,
    ClaimsIncrementalUpdates,
    UndeclaredHistory,
    ClaimsAlarms,
}

impl Defect {
    const ALL: [Defect; 16] = [
        Self::InvalidSlug,
        Self::AcceptsBadHost,
        Self::AuthAsNetwork,
        Self::SecretInMessage,
        Self::SecretInLog,
        Self::LeaksSessionOnClose,
        Self::IdsChangeBetweenPolls,
        Self::NonCanonicalType,
        Self::DanglingRelation,
        Self::SummaryDisagrees,
        Self::ProjectionDrifts,
        Self::NoRecoveryAfterOutage,
        Self::UnverifiedCapability,
        Self::ClaimsIncrementalUpdates,
        Self::UndeclaredHistory,
        Self::ClaimsAlarms,
    ];

    /// The check this defect must fail.
    fn caught_by(self) -> CheckId {
        match self {
            Self::InvalidSlug => CheckId::Descriptor,
            Self::AcceptsBadHost => CheckId::Validation,
            Self::AuthAsNetwork => CheckId::TestClassification,
            Self::SecretInMessage | Self::SecretInLog => CheckId::NoSecretLeak,
            Self::LeaksSessionOnClose => CheckId::SessionLifecycle,
            Self::IdsChangeBetweenPolls => CheckId::StableIds,
            Self::NonCanonicalType => CheckId::CanonicalTypes,
            Self::DanglingRelation => CheckId::RelationsResolve,
            Self::SummaryDisagrees => CheckId::SummaryMatchesProjection,
            Self::ProjectionDrifts => CheckId::GoldenProjection,
            Self::NoRecoveryAfterOutage => CheckId::OutageRecovery,
            Self::UnverifiedCapability
            | Self::ClaimsIncrementalUpdates
            | Self::UndeclaredHistory
            | Self::ClaimsAlarms => CheckId::DeclaredCapabilities,
        }
    }
}

static FIELDS: [FieldSpec; 2] = [
    FieldSpec {
        name: "host",
        label: "Host",
        help: "Name of the in-memory target.",
        kind: FieldKind::Text { max_length: 100 },
        required: true,
        secret: false,
        default: None,
    },
    FieldSpec {
        name: "token",
        label: "Token",
        help: "Access token.",
        kind: FieldKind::Text { max_length: 100 },
        required: true,
        secret: true,
        default: None,
    },
];

const fn descriptor(slug: &'static str, snapshots: bool, incremental: bool) -> PlatformDescriptor {
    PlatformDescriptor {
        platform: "memory",
        slug,
        display_name: "In-memory test platform",
        description: "The conformance kit's reference provider.",
        ingestion_mode: IngestionMode::Poll,
        projections: &["agent", "vm"],
        readiness: ReadinessStage::Projection,
        support_matrix: SupportMatrix {
            connection_admission: SupportLevel::Supported,
            inventory: SupportLevel::ReadOnly,
            alerts: SupportLevel::Planned,
            history: SupportLevel::Planned,
            metrics: SupportLevel::Planned,
            assistant_read: SupportLevel::Planned,
            assistant_control: SupportLevel::Planned,
            control_actions: SupportLevel::NotApplicable,
        },
        capabilities: Capabilities {
            alarms: false,
            history: false,
            snapshots,
            metrics: false,
            incremental_updates: incremental,
        },
        minimum_version: "any",
        fields: &FIELDS,
    }
}

static GOOD_DESCRIPTOR: PlatformDescriptor = descriptor("memory", false, false);
static BAD_SLUG_DESCRIPTOR: PlatformDescriptor = descriptor("Memory Platform", false, false);
static SNAPSHOT_DESCRIPTOR: PlatformDescriptor = descriptor("memory", true, false);
/// Declares incremental updates but never reports a poll unchanged.
static INCREMENTAL_DESCRIPTOR: PlatformDescriptor = descriptor("memory", false, true);
/// Declares alarms, which the in-memory target cannot raise (and the provider never reports).
static ALARMS_DESCRIPTOR: PlatformDescriptor = {
    let mut declared = descriptor("memory", false, false);
    declared.capabilities.alarms = true;
    declared.support_matrix.alerts = SupportLevel::Supported;
    declared
};

/// The state of one in-memory target, shared by the fixture and the provider's sessions.
#[derive(Default)]
struct TargetState {
    down: Mutex<bool>,
    open_sessions: AtomicU64,
}

/// Targets by name, so a provider (built without a handle) finds the one a draft names.
fn targets() -> &'static Mutex<BTreeMap<String, Arc<TargetState>>> {
    static TARGETS: Mutex<BTreeMap<String, Arc<TargetState>>> = Mutex::new(BTreeMap::new());
    &TARGETS
}

fn target(name: &str) -> Option<Arc<TargetState>> {
    targets()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(name)
        .cloned()
}

struct MemProvider {
    defect: Option<Defect>,
}

impl MemProvider {
    fn has(&self, defect: Defect) -> bool {
        self.defect == Some(defect)
    }
}

/// What a host name asks the in-memory target to do in a connection test.
fn outcome_of(host: &str) -> Option<FailureCategory> {
    FailureCategory::ALL
        .into_iter()
        .find(|c| host == format!("fail-{}", c.as_str()))
}

#[async_trait]
impl Provider for MemProvider {
    fn descriptor(&self) -> &'static PlatformDescriptor {
        match self.defect {
            Some(Defect::InvalidSlug) => &BAD_SLUG_DESCRIPTOR,
            Some(Defect::UnverifiedCapability) => &SNAPSHOT_DESCRIPTOR,
            Some(Defect::ClaimsIncrementalUpdates) => &INCREMENTAL_DESCRIPTOR,
            Some(Defect::ClaimsAlarms) => &ALARMS_DESCRIPTOR,
            _ => &GOOD_DESCRIPTOR,
        }
    }

    fn validate(&self, config: &mut ConnectionConfig) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::new();
        if let Some(host) = config.str_setting("host") {
            if host.contains('/') && !self.has(Defect::AcceptsBadHost) {
                errors.add("host", "must be a bare name, without a path");
            }
        }
        errors.into_result()
    }

    async fn test(
        &self,
        config: &ConnectionConfig,
        _context: &TestContext,
    ) -> Result<TestReport, ProviderError> {
        let host = config.str_setting("host").unwrap_or_default();
        let token = config
            .secret("token")
            .map(|s| s.expose())
            .unwrap_or_default();
        if self.has(Defect::SecretInLog) {
            tracing::info!(token, "testing the in-memory target");
        }
        if let Some(category) = outcome_of(host) {
            let category = match category {
                FailureCategory::Auth if self.has(Defect::AuthAsNetwork) => {
                    FailureCategory::Network
                }
                other => other,
            };
            let mut message = format!("the in-memory target `{host}` says {category}");
            if self.has(Defect::SecretInMessage) {
                message.push_str(&format!(" (token {token})"));
            }
            return Err(ProviderError::new(category, message));
        }
        if target(host).is_none() {
            return Err(ProviderError::new(
                FailureCategory::Network,
                format!("no in-memory target `{host}`"),
            ));
        }
        let mut counts = InventoryCounts {
            agents: 1,
            vms: 2,
            storage: 0,
        };
        if self.has(Defect::SummaryDisagrees) {
            counts.vms += 1;
        }
        Ok(TestReport {
            system: system(),
            counts,
        })
    }

    async fn connect(
        &self,
        config: &ConnectionConfig,
    ) -> Result<Box<dyn ProviderSession>, ProviderError> {
        let host = config.str_setting("host").unwrap_or_default();
        let Some(state) = target(host) else {
            return Err(ProviderError::new(
                FailureCategory::Network,
                format!("no in-memory target `{host}`"),
            ));
        };
        state.open_sessions.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(MemSession {
            state,
            defect: self.defect,
            open: true,
            polls: 0,
            broken: false,
        }))
    }

    fn project(
        &self,
        connection_id: &str,
        observation: &Observation,
    ) -> Result<Projection, ProviderError> {
        let polls = observation.downcast_ref::<u64>().copied().ok_or_else(|| {
            ProviderError::new(FailureCategory::Protocol, "not an in-memory observation")
        })?;
        let id = |kind: &str, n: u32| {
            if self.has(Defect::IdsChangeBetweenPolls) {
                format!("{connection_id}-{kind}-{n}-p{polls}")
            } else {
                format!("{connection_id}-{kind}-{n}")
            }
        };
        let host_id = id("agent", 0);
        let mut resources = vec![resource(&host_id, ResourceType::Agent, "host-0", vec![])];
        for n in 0..2 {
            let mut target = host_id.clone();
            if n == 1 && self.has(Defect::DanglingRelation) {
                target = format!("{connection_id}-agent-9");
            }
            let name = if n == 1 && self.has(Defect::ProjectionDrifts) {
                "vm-one".to_owned()
            } else {
                format!("vm-{n}")
            };
            let relations = vec![Relation {
                kind: RelationKind::RunsOn,
                target,
            }];
            resources.push(resource(&id("vm", n), ResourceType::Vm, &name, relations));
        }
        if self.has(Defect::NonCanonicalType) {
            resources.push(resource(
                &id("storage", 0),
                ResourceType::Storage,
                "ds-0",
                vec![],
            ));
        }
        for resource in &mut resources {
            resource.connection_id = connection_id.to_owned();
        }
        Ok(Projection {
            system: system(),
            resources,
            topology: TopologyCounts::default(),
            issues: vec![],
            collected_at: chrono::Utc::now(),
            alerts: vec![],
        })
    }

    /// The reference provider has no feeds; the broken one delivers history it does not
    /// declare.
    fn project_feeds(
        &self,
        connection_id: &str,
        observation: &Observation,
        _feeds: &Observation,
    ) -> Result<crate::feeds::Feeds, ProviderError> {
        let polls = observation
            .downcast_ref::<u64>()
            .copied()
            .unwrap_or_default();
        if !self.has(Defect::UndeclaredHistory) {
            return Ok(crate::feeds::Feeds::default());
        }
        Ok(crate::feeds::Feeds {
            history: vec![crate::feeds::HistoryRecord {
                id: format!("event-{polls}"),
                connection_id: connection_id.to_owned(),
                at: chrono::Utc::now(),
                kind: crate::feeds::HistoryKind::Event,
                record_type: "Polled".into(),
                message: "polled".into(),
                user: None,
                resource_id: None,
            }],
            cursor: crate::feeds::FeedCursor(Some(polls.to_string())),
            ..crate::feeds::Feeds::default()
        })
    }
}

fn system() -> SystemIdentity {
    SystemIdentity {
        name: "memory-0".into(),
        product: "In-memory platform".into(),
        version: "1.0".into(),
        build: "1".into(),
        instance_uuid: "00000000-0000-0000-0000-000000000001".into(),
    }
}

fn resource(id: &str, kind: ResourceType, name: &str, relations: Vec<Relation>) -> Resource {
    let mut identity = Map::new();
    identity.insert("nativeId".into(), Value::String(name.into()));
    Resource {
        id: id.to_owned(),
        resource_type: kind,
        platform: "memory".into(),
        connection_id: String::new(),
        name: name.to_owned(),
        status: ResourceStatus::Online,
        identity,
        relations,
        topology: Topology::default(),
        metrics: LatestMetrics::default(),
        details: Map::new(),
        last_seen_at: chrono::Utc::now(),
    }
}

struct MemSession {
    state: Arc<TargetState>,
    defect: Option<Defect>,
    open: bool,
    polls: u64,
    /// Set by an outage; a session with the recovery defect never heals.
    broken: bool,
}

#[async_trait]
impl ProviderSession for MemSession {
    async fn poll(&mut self) -> Result<Observation, ProviderError> {
        let down = *self.state.down.lock().unwrap_or_else(|p| p.into_inner());
        if down {
            self.broken = self.defect == Some(Defect::NoRecoveryAfterOutage);
            return Err(ProviderError::new(
                FailureCategory::Network,
                "the in-memory target is down",
            ));
        }
        if self.broken {
            return Err(ProviderError::new(
                FailureCategory::Protocol,
                "the session did not survive the outage",
            ));
        }
        self.polls += 1;
        Ok(Box::new(self.polls))
    }

    async fn close(&mut self) {
        if self.open && self.defect != Some(Defect::LeaksSessionOnClose) {
            self.state.open_sessions.fetch_sub(1, Ordering::SeqCst);
        }
        self.open = false;
    }
}

impl Drop for MemSession {
    fn drop(&mut self) {
        // Like a real provider's session, dropping one releases it.
        if self.open {
            self.state.open_sessions.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The fixture: a uniquely named in-memory target.
struct MemFixture {
    waivers: Vec<Waiver>,
    starts: bool,
}

impl MemFixture {
    fn new() -> Self {
        Self {
            waivers: vec![],
            starts: true,
        }
    }
}

#[async_trait]
impl ConformanceFixture for MemFixture {
    async fn start(&self) -> Result<Box<dyn FixtureTarget>, FixtureError> {
        if !self.starts {
            return Err(FixtureError("the in-memory target refused to start".into()));
        }
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("target-{}", NEXT.fetch_add(1, Ordering::SeqCst));
        let state = Arc::new(TargetState::default());
        targets()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), state.clone());
        Ok(Box::new(MemTarget {
            name,
            state,
            waivers: self.waivers.clone(),
        }))
    }
}

struct MemTarget {
    name: String,
    state: Arc<TargetState>,
    waivers: Vec<Waiver>,
}

#[async_trait]
impl FixtureTarget for MemTarget {
    fn plan(&self) -> FixturePlan {
        let draft = |host: &str| json!({"name": "mem", "host": host, "token": TOKEN});
        FixturePlan {
            good: draft(&self.name),
            secrets: vec![TOKEN.into()],
            invalid: vec![InvalidDraft {
                draft: draft("a/b"),
                fields: vec!["host"],
            }],
            failures: [
                FailureCategory::Auth,
                FailureCategory::Network,
                FailureCategory::Timeout,
            ]
            .into_iter()
            .map(|category| FailureCase {
                category,
                draft: draft(&format!("fail-{}", category.as_str())),
                setup: "the target is told to fail",
            })
            .collect(),
            not_produced: FailureCategory::ALL
                .into_iter()
                .filter(|c| {
                    !matches!(
                        c,
                        FailureCategory::Auth | FailureCategory::Network | FailureCategory::Timeout
                    )
                })
                .map(|c| (c, "the in-memory target has no such failure"))
                .collect(),
            golden: PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/src/conformance/testdata/memory-golden.json"
            )),
            volatile: vec![],
            test_timeout: Duration::from_secs(1),
            waivers: self.waivers.clone(),
        }
    }

    async fn set_outage(&self, down: bool) -> Result<(), FixtureError> {
        *self.state.down.lock().unwrap_or_else(|p| p.into_inner()) = down;
        Ok(())
    }

    fn open_sessions(&self) -> Option<u64> {
        Some(self.state.open_sessions.load(Ordering::SeqCst))
    }

    async fn stop(self: Box<Self>) {
        targets()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.name);
    }
}

fn run_with(defect: Option<Defect>, fixture: &MemFixture) -> Report {
    block_on(run(&MemProvider { defect }, fixture))
}

#[test]
fn the_reference_provider_passes_every_applicable_check() {
    let report = run_with(None, &MemFixture::new());
    report.assert_conformant();
    for result in &report.results {
        let expected = if result.check == CheckId::DeclaredCapabilities {
            matches!(result.verdict, Verdict::NotApplicable(_))
        } else {
            result.verdict == Verdict::Pass
        };
        assert!(expected, "{report}");
    }
}

#[test]
fn every_check_catches_a_broken_provider() {
    // In bless mode a drifting provider would rewrite the reference golden; bless runs only
    // the reference provider (`the_reference_provider_passes_every_applicable_check`).
    assert!(
        std::env::var_os(BLESS_ENV).is_none(),
        "run bless mode with -E 'test(the_reference_provider)' only"
    );
    let mut caught = BTreeMap::<CheckId, Vec<Defect>>::new();
    for defect in Defect::ALL {
        let report = run_with(Some(defect), &MemFixture::new());
        let check = defect.caught_by();
        assert!(
            matches!(report.verdict(check), Some(Verdict::Fail(_))),
            "{defect:?} is not caught by {}:\n{report}",
            check.as_str()
        );
        assert!(!report.is_conformant());
        caught.entry(check).or_default().push(defect);
    }
    let uncovered: Vec<&str> = CheckId::ALL
        .iter()
        .filter(|check| !caught.contains_key(check))
        .map(|check| check.as_str())
        .collect();
    assert!(
        uncovered.is_empty(),
        "checks with no broken provider that they catch: {uncovered:?}"
    );
}

#[test]
fn a_secret_in_a_log_line_is_found_in_the_captured_logs() {
    let report = run_with(Some(Defect::SecretInLog), &MemFixture::new());
    let Some(Verdict::Fail(why)) = report.verdict(CheckId::NoSecretLeak) else {
        panic!("{report}");
    };
    assert!(why.contains("log lines"), "{why}");
}

#[test]
fn a_target_that_cannot_start_fails_every_check() {
    let fixture = MemFixture {
        starts: false,
        ..MemFixture::new()
    };
    let report = run_with(None, &fixture);
    for result in &report.results {
        assert!(matches!(result.verdict, Verdict::Fail(_)), "{report}");
    }
}

#[test]
fn waivers_print_cannot_cover_mandatory_checks_and_must_not_go_stale() {
    let waiver = |check| Waiver {
        check,
        reason: "known gap",
        tracking: "issue 99",
    };
    // A waived optional failure is reported as waived, with its reason and tracking note.
    let fixture = MemFixture {
        waivers: vec![waiver(CheckId::SessionLifecycle)],
        ..MemFixture::new()
    };
    let report = run_with(Some(Defect::LeaksSessionOnClose), &fixture);
    assert!(
        matches!(
            report.verdict(CheckId::SessionLifecycle),
            Some(Verdict::Waived { .. })
        ),
        "{report}"
    );
    let text = report.to_string();
    assert!(
        text.contains("WAIVED") && text.contains("known gap") && text.contains("issue 99"),
        "{text}"
    );
    assert!(report.is_conformant(), "{report}");

    // A waiver for a check that passes fails: waivers cannot pile up.
    let report = run_with(None, &fixture);
    assert!(
        matches!(
            report.verdict(CheckId::SessionLifecycle),
            Some(Verdict::Fail(_))
        ),
        "{report}"
    );

    // A mandatory check cannot be waived.
    let fixture = MemFixture {
        waivers: vec![waiver(CheckId::StableIds)],
        ..MemFixture::new()
    };
    let report = run_with(Some(Defect::IdsChangeBetweenPolls), &fixture);
    assert!(
        matches!(report.verdict(CheckId::StableIds), Some(Verdict::Fail(_))),
        "{report}"
    );
}

#[test]
fn skipped_checks_are_never_counted_as_passes_and_mandatory_ones_cannot_be_skipped() {
    let mut findings = BTreeMap::new();
    for check in CheckId::ALL {
        findings.insert(check, Verdict::NotApplicable("nothing to see".into()));
    }
    for result in judge(findings, &[]) {
        match result.verdict {
            Verdict::NotApplicable(_) => assert!(!result.check.is_mandatory()),
            Verdict::Fail(_) => assert!(result.check.is_mandatory()),
            other => panic!("{:?}: {other:?}", result.check),
        }
    }
    let report = run_with(None, &MemFixture::new());
    let text = report.to_string();
    assert!(
        text.contains("SKIPPED  declared-capabilities") && text.contains("1 skipped"),
        "{text}"
    );
}
