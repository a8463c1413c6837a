//! The checks themselves. Each reads the fixture's plan (data) and the provider's behaviour,
//! and records one verdict per [`CheckId`]. Outputs that could carry a secret are collected
//! as the checks go, and the secret-leak check reads them all at the end.

use super::capture::LogCapture;
use super::{golden, Findings, Verdict, CONNECTION_ID};
use crate::descriptor::{
    FieldDefault, FieldKind, PlatformDescriptor, ReadinessStage, SupportLevel,
};
use crate::draft::{apply_draft, ConnectionConfig, FieldErrors};
use crate::failure::FailureCategory;
use crate::feeds::Feeds;
use crate::fixture::{CheckId, ConformanceFixture, FixturePlan, FixtureTarget};
use crate::health::{HealthStatus, PollHealth};
use crate::model::{count_resources, ContributionSummary, Projection, ResourceType};
use crate::provider::{Provider, ProviderSession, TestContext, TestReport};
use crate::ProviderError;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Names of the fields core owns; a provider must not declare them.
const COMMON_FIELDS: [&str; 3] = ["name", "enabled", "pollIntervalSeconds"];

/// Substrings of a field name that mark it as holding a secret.
const SECRET_NAME_HINTS: [&str; 6] = [
    "password",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "credential",
];

/// Everything a run produced that must be free of secrets, with where it came from.
#[derive(Default)]
struct Outputs(Vec<(String, String)>);

impl Outputs {
    fn add(&mut self, origin: impl Into<String>, text: impl Into<String>) {
        self.0.push((origin.into(), text.into()));
    }

    fn error(&mut self, origin: &str, error: &ProviderError) {
        self.add(format!("{origin} (message)"), error.message.clone());
        self.add(format!("{origin} (Debug)"), format!("{error:?}"));
    }
}

/// A run in progress.
struct Run<'a> {
    provider: &'a dyn Provider,
    descriptor: &'static PlatformDescriptor,
    findings: BTreeMap<CheckId, Verdict>,
    outputs: Outputs,
}

impl Run<'_> {
    fn record(&mut self, check: CheckId, verdict: Verdict) {
        self.findings.insert(check, verdict);
    }

    /// Records `Pass` when `problems` is empty, else one `Fail` naming them all.
    fn record_problems(&mut self, check: CheckId, problems: Vec<String>) {
        let verdict = if problems.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(problems.join("; "))
        };
        self.record(check, verdict);
    }

    /// Applies and validates a draft exactly as the host does.
    fn config(&mut self, origin: &str, draft: &Value) -> Result<ConnectionConfig, FieldErrors> {
        let outcome = apply_draft(self.descriptor, None, draft)
            .and_then(|mut config| self.provider.validate(&mut config).map(|()| config));
        match &outcome {
            Ok(config) => {
                self.outputs
                    .add(format!("{origin}: config (Debug)"), format!("{config:?}"));
                self.outputs.add(
                    format!("{origin}: redacted config"),
                    Value::Object(config.redacted_json()).to_string(),
                );
            }
            Err(errors) => self
                .outputs
                .add(format!("{origin}: field errors"), errors.to_string()),
        }
        outcome
    }
}

pub(crate) async fn run_all(
    provider: &dyn Provider,
    fixture: &dyn ConformanceFixture,
    capture: &LogCapture,
) -> Findings {
    let descriptor = provider.descriptor();
    let mut run = Run {
        provider,
        descriptor,
        findings: BTreeMap::new(),
        outputs: Outputs::default(),
    };
    let verdict = check_descriptor(descriptor);
    run.record(CheckId::Descriptor, verdict);

    let target = match fixture.start().await {
        Ok(target) => target,
        Err(error) => {
            // Nothing was judged: every check fails, so the run cannot pass green.
            let why = format!("the fixture's target did not start: {error}");
            for check in CheckId::ALL {
                run.record(check, Verdict::Fail(why.clone()));
            }
            return Findings {
                findings: run.findings,
                waivers: Vec::new(),
            };
        }
    };
    let plan = target.plan();
    run.outputs.add(
        "descriptor (JSON)",
        serde_json::to_string(descriptor).unwrap_or_default(),
    );

    check_validation(&mut run, &plan);
    let good = run.config("good draft", &plan.good).ok();
    let test_report = check_test_classification(&mut run, &plan, good.as_ref()).await;
    match &good {
        Some(config) => {
            check_lifecycle(&mut run, target.as_ref(), config).await;
            check_polls(
                &mut run,
                &plan,
                target.as_ref(),
                config,
                test_report.as_ref(),
            )
            .await;
        }
        None => {
            let why = "the fixture's good draft does not validate".to_owned();
            run.record(CheckId::SessionLifecycle, Verdict::Fail(why.clone()));
            fail_checks(&mut run, &POLL_CHECKS, &why);
            run.record(CheckId::OutageRecovery, Verdict::Fail(why));
        }
    }
    target.stop().await;

    run.outputs.add("log lines", capture.text());
    let verdict = check_secrets(descriptor, &plan, good.as_ref(), &run.outputs);
    run.record(CheckId::NoSecretLeak, verdict);
    Findings {
        findings: run.findings,
        waivers: plan.waivers,
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_camel_case(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
}

fn is_delivered(level: SupportLevel) -> bool {
    matches!(
        level,
        SupportLevel::Supported | SupportLevel::ReadOnly | SupportLevel::NotApplicable
    )
}

/// Identity, slug, fields, secrets, readiness and the support matrix.
pub(crate) fn check_descriptor(d: &PlatformDescriptor) -> Verdict {
    let mut problems = Vec::new();
    if !is_identifier(d.platform) {
        problems.push(format!(
            "platform id `{}` must be lowercase letters, digits and inner dashes",
            d.platform
        ));
    }
    if !is_identifier(d.slug) {
        problems.push(format!(
            "slug `{}` must be lowercase letters, digits and inner dashes",
            d.slug
        ));
    }
    for (what, text) in [
        ("display name", d.display_name),
        ("description", d.description),
        ("minimum version", d.minimum_version),
    ] {
        if text.trim().is_empty() {
            problems.push(format!("{what} is empty"));
        }
    }
    let mut projections = BTreeSet::new();
    for projection in d.projections {
        if !ResourceType::ALL.iter().any(|t| t.as_str() == *projection) {
            problems.push(format!("projection `{projection}` is not a canonical type"));
        }
        if !projections.insert(projection) {
            problems.push(format!("projection `{projection}` is listed twice"));
        }
    }
    if projections.is_empty() {
        problems.push("no projections declared".into());
    }
    let mut names = BTreeSet::new();
    for field in d.fields {
        let name = field.name;
        if !names.insert(name) {
            problems.push(format!("field `{name}` is declared twice"));
        }
        if COMMON_FIELDS.contains(&name) {
            problems.push(format!("field `{name}` is owned by core"));
        }
        if !is_camel_case(name) {
            problems.push(format!("field `{name}` is not camelCase"));
        }
        if field.label.trim().is_empty() || field.help.trim().is_empty() {
            problems.push(format!("field `{name}` needs a label and help text"));
        }
        let lower = name.to_ascii_lowercase();
        if !field.secret && SECRET_NAME_HINTS.iter().any(|hint| lower.contains(hint)) {
            problems.push(format!(
                "field `{name}` looks like a secret but is not declared `secret`"
            ));
        }
        if field.secret {
            if !matches!(
                field.kind,
                FieldKind::Text { .. } | FieldKind::MultilineText { .. }
            ) {
                problems.push(format!("secret field `{name}` must be text"));
            }
            if field.default.is_some() {
                problems.push(format!("secret field `{name}` must not have a default"));
            }
        }
        match (field.kind, field.default) {
            (_, None) | (FieldKind::Boolean, Some(FieldDefault::Boolean(_))) => {}
            (FieldKind::Integer { min, max }, Some(FieldDefault::Integer(value)))
                if (min..=max).contains(&value) => {}
            _ => problems.push(format!(
                "field `{name}` has a default that does not fit its kind"
            )),
        }
    }
    let m = &d.support_matrix;
    let mut owed = vec![("connectionAdmission", m.connection_admission)];
    if d.readiness >= ReadinessStage::Projection {
        owed.push(("inventory", m.inventory));
    }
    if d.readiness >= ReadinessStage::ReadFloor {
        owed.extend([
            ("alerts", m.alerts),
            ("history", m.history),
            ("metrics", m.metrics),
        ]);
    }
    if d.readiness >= ReadinessStage::Ga {
        owed.extend([
            ("assistantRead", m.assistant_read),
            ("assistantControl", m.assistant_control),
            ("controlActions", m.control_actions),
        ]);
    }
    for (surface, level) in owed {
        if !is_delivered(level) {
            problems.push(format!(
                "readiness `{:?}` requires surface `{surface}` to be supported, read-only or n/a, not {level:?}",
                d.readiness
            ));
        }
    }
    let c = &d.capabilities;
    for (capability, declared, surface, level) in [
        ("alarms", c.alarms, "alerts", m.alerts),
        ("history", c.history, "history", m.history),
        ("metrics", c.metrics, "metrics", m.metrics),
    ] {
        if declared && !matches!(level, SupportLevel::Supported | SupportLevel::ReadOnly) {
            problems.push(format!(
                "capability `{capability}` is declared but the support matrix says `{surface}` is {level:?}"
            ));
        }
    }
    if problems.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(problems.join("; "))
    }
}

/// A value of the wrong JSON type for `kind`.
fn wrong_type(kind: FieldKind) -> Value {
    match kind {
        FieldKind::Text { .. } | FieldKind::MultilineText { .. } => Value::from(12345),
        FieldKind::Integer { .. } | FieldKind::Boolean => Value::from("not-a-number-or-bool"),
    }
}

fn check_validation(run: &mut Run<'_>, plan: &FixturePlan) {
    let mut problems = Vec::new();
    if let Err(errors) = run.config("good draft", &plan.good) {
        problems.push(format!("the good draft is rejected: {errors}"));
    }
    if plan.invalid.is_empty() {
        problems.push(
            "the fixture lists no invalid drafts: a provider must reject bad input of its own fields".into(),
        );
    }
    // Derived from the descriptor: each required field missing, and each field with a value
    // of the wrong type, must be named.
    let mut derived = vec![("name".to_owned(), None)];
    for field in run.descriptor.fields {
        if field.required {
            derived.push((field.name.to_owned(), None));
        }
        derived.push((field.name.to_owned(), Some(wrong_type(field.kind))));
    }
    for (field, value) in derived {
        let mut draft = plan.good.clone();
        let Some(object) = draft.as_object_mut() else {
            problems.push("the good draft is not a JSON object".into());
            break;
        };
        let what = match value {
            Some(value) => {
                object.insert(field.clone(), value);
                "of the wrong type"
            }
            None => {
                object.remove(&field);
                "missing"
            }
        };
        match run.config(&format!("draft with `{field}` {what}"), &draft) {
            Ok(_) => problems.push(format!("a draft with `{field}` {what} is accepted")),
            Err(errors) if !errors.contains(&field) => problems.push(format!(
                "a draft with `{field}` {what} is rejected without naming it: {errors}"
            )),
            Err(_) => {}
        }
    }
    let mut draft = plan.good.clone();
    if let Some(object) = draft.as_object_mut() {
        object.insert("notAField".into(), Value::Bool(true));
        match run.config("draft with an unknown field", &draft) {
            Err(errors) if errors.contains("notAField") => {}
            other => problems.push(format!(
                "an unknown field is not rejected by name: {:?}",
                other.err()
            )),
        }
    }
    for (index, invalid) in plan.invalid.iter().enumerate() {
        match run.config(&format!("invalid draft {index}"), &invalid.draft) {
            Ok(_) => problems.push(format!(
                "invalid draft {index} (bad {:?}) is accepted",
                invalid.fields
            )),
            Err(errors) => {
                for field in &invalid.fields {
                    if !errors.contains(field) {
                        problems.push(format!(
                            "invalid draft {index} is rejected without an error on `{field}`: {errors}"
                        ));
                    }
                }
            }
        }
    }
    run.record_problems(CheckId::Validation, problems);
}

async fn check_test_classification(
    run: &mut Run<'_>,
    plan: &FixturePlan,
    good: Option<&ConnectionConfig>,
) -> Option<TestReport> {
    let mut problems = Vec::new();
    let context = TestContext {
        timeout: plan.test_timeout,
    };
    let mut report = None;
    match good {
        None => problems.push("the good draft does not validate".into()),
        Some(config) => match run.provider.test(config, &context).await {
            Ok(ok) => {
                run.outputs
                    .add("test of the good draft (Debug)", format!("{ok:?}"));
                if ok.system.name.is_empty() || ok.system.product.is_empty() {
                    problems.push(format!(
                        "the good test reports no system identity: {:?}",
                        ok.system
                    ));
                }
                report = Some(ok);
            }
            Err(error) => {
                run.outputs.error("test of the good draft", &error);
                problems.push(format!("the good draft's test fails: {error}"));
            }
        },
    }
    let mut covered = BTreeSet::new();
    for case in &plan.failures {
        covered.insert(case.category);
        let origin = format!("{} case ({})", case.category, case.setup);
        let config = match run.config(&origin, &case.draft) {
            Ok(config) => config,
            Err(errors) => {
                problems.push(format!("the {origin} draft does not validate: {errors}"));
                continue;
            }
        };
        match run.provider.test(&config, &context).await {
            Ok(ok) => {
                run.outputs
                    .add(format!("{origin} (Debug)"), format!("{ok:?}"));
                problems.push(format!("{origin}: the test succeeds"));
            }
            Err(error) => {
                run.outputs.error(&origin, &error);
                if error.category != case.category {
                    problems.push(format!(
                        "{origin}: classified as {} ({})",
                        error.category, error.message
                    ));
                } else if error.message.trim().is_empty() {
                    problems.push(format!("{origin}: the message is empty"));
                }
            }
        }
    }
    let excused: BTreeSet<FailureCategory> = plan
        .not_produced
        .iter()
        .map(|(category, _)| *category)
        .collect();
    for category in FailureCategory::ALL {
        match (covered.contains(&category), excused.contains(&category)) {
            (false, false) => problems.push(format!(
                "no failure case for `{category}` and no reason it cannot occur"
            )),
            (true, true) => problems.push(format!(
                "`{category}` has a failure case and is also listed as not produced"
            )),
            _ => {}
        }
    }
    run.record_problems(CheckId::TestClassification, problems);
    report
}

/// Opens a session, recording a classified failure as a problem.
async fn connect(
    run: &mut Run<'_>,
    config: &ConnectionConfig,
    origin: &str,
    problems: &mut Vec<String>,
) -> Option<Box<dyn ProviderSession>> {
    match run.provider.connect(config).await {
        Ok(session) => Some(session),
        Err(error) => {
            run.outputs.error(origin, &error);
            problems.push(format!("{origin}: connect failed: {error}"));
            None
        }
    }
}

async fn check_lifecycle(run: &mut Run<'_>, target: &dyn FixtureTarget, config: &ConnectionConfig) {
    let Some(baseline) = target.open_sessions() else {
        run.record(
            CheckId::SessionLifecycle,
            Verdict::NotApplicable("the target cannot count open sessions".into()),
        );
        return;
    };
    let mut problems = Vec::new();
    let expect_baseline = |step: &str, problems: &mut Vec<String>| {
        let open = target.open_sessions().unwrap_or(baseline);
        if open != baseline {
            problems.push(format!(
                "{step}: the target holds {open} sessions, {baseline} before"
            ));
        }
    };

    // Open and close twice, without a poll in between.
    if let Some(mut session) = connect(run, config, "lifecycle connect", &mut problems).await {
        session.close().await;
        expect_baseline("after connect and close", &mut problems);
        session.close().await;
        expect_baseline("after a second close", &mut problems);
    }
    // Open, poll, close twice.
    if let Some(mut session) = connect(run, config, "lifecycle connect", &mut problems).await {
        if let Err(error) = session.poll().await {
            run.outputs.error("lifecycle poll", &error);
            problems.push(format!("poll failed: {error}"));
        }
        session.close().await;
        session.close().await;
        expect_baseline("after poll and two closes", &mut problems);
    }
    // A session dropped without close must not keep polling or hold more than it did.
    if let Some(session) = connect(run, config, "lifecycle connect", &mut problems).await {
        drop(session);
    }
    run.record_problems(CheckId::SessionLifecycle, problems);
}

async fn poll_and_project(
    run: &mut Run<'_>,
    session: &mut Box<dyn ProviderSession>,
    origin: &str,
) -> Result<Projection, String> {
    poll_observe(run, session, origin)
        .await
        .map(|(_, projection, _)| projection)
}

/// Polls and projects (inventory and feeds), keeping the observation for a second
/// projection.
async fn poll_observe(
    run: &mut Run<'_>,
    session: &mut Box<dyn ProviderSession>,
    origin: &str,
) -> Result<(crate::provider::Observation, Projection, Feeds), String> {
    let observation = session.poll().await.map_err(|error| {
        run.outputs.error(origin, &error);
        format!("{origin} failed: {error}")
    })?;
    let projection = run
        .provider
        .project(CONNECTION_ID, &observation)
        .map_err(|error| {
            run.outputs.error(origin, &error);
            format!("projecting {origin} failed: {error}")
        })?;
    run.outputs.add(
        format!("{origin} projection (Debug)"),
        format!("{projection:?}"),
    );
    let feed_observation = session.poll_feeds().await.map_err(|error| {
        run.outputs.error(origin, &error);
        format!("reading the feeds of {origin} failed: {error}")
    })?;
    let feeds = run
        .provider
        .project_feeds(CONNECTION_ID, &observation, &feed_observation)
        .map_err(|error| {
            run.outputs.error(origin, &error);
            format!("projecting the feeds of {origin} failed: {error}")
        })?;
    run.outputs
        .add(format!("{origin} feeds (Debug)"), format!("{feeds:?}"));
    Ok((observation, projection, feeds))
}

fn is_url_safe(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':'))
}

async fn check_polls(
    run: &mut Run<'_>,
    plan: &FixturePlan,
    target: &dyn FixtureTarget,
    config: &ConnectionConfig,
    test_report: Option<&TestReport>,
) {
    let mut connect_problems = Vec::new();
    let Some(mut session) = connect(run, config, "poll connect", &mut connect_problems).await
    else {
        let why = connect_problems.join("; ");
        fail_checks(run, &POLL_CHECKS, &why);
        run.record(CheckId::OutageRecovery, Verdict::Fail(why));
        return;
    };
    let first = poll_observe(run, &mut session, "first poll").await;
    let second = poll_observe(run, &mut session, "second poll").await;
    let ((_, first, first_feeds), (observation, second, second_feeds)) = match (first, second) {
        (Ok(first), Ok(second)) => (first, second),
        (Err(why), _) | (_, Err(why)) => {
            fail_checks(run, &POLL_CHECKS, &why);
            check_outage(run, target, &mut session).await;
            session.close().await;
            return;
        }
    };

    // The same observation projected for another connection shows whether ids are scoped.
    let other = run.provider.project(OTHER_CONNECTION_ID, &observation);
    let verdict = stable_ids(&first, &second, other);
    run.record(CheckId::StableIds, verdict);
    let verdict = canonical_types(run.descriptor, &second);
    run.record(CheckId::CanonicalTypes, verdict);
    let verdict = relations_resolve(&second);
    run.record(CheckId::RelationsResolve, verdict);
    let verdict = summary_matches(&second, test_report);
    run.record(CheckId::SummaryMatchesProjection, verdict);
    let verdict = golden::compare(&plan.golden, &golden::normalise(&second, &plan.volatile));
    run.record(CheckId::GoldenProjection, verdict);
    // Incremental updates are shown by a third poll of the still unchanged target, which the
    // provider must call unchanged (and which must project the same resources).
    let incremental = if run.descriptor.capabilities.incremental_updates {
        Some(
            poll_observe(run, &mut session, "third poll")
                .await
                .map(|(observation, third, _)| (run.provider.unchanged(&observation), third)),
        )
    } else {
        None
    };
    check_outage(run, target, &mut session).await;

    // A declared alarm capability is shown by an alarm the target raises, which the next
    // poll must report as an alarm condition on a projected resource. Last, because the
    // raised alarm stays on the target (and may make later polls `degraded`).
    let alarms = if run.descriptor.capabilities.alarms {
        Some(match target.raise_alarm().await {
            Ok(true) => poll_and_project(run, &mut session, "poll after the alarm")
                .await
                .map(Some),
            Ok(false) => Ok(None),
            Err(error) => Err(error.to_string()),
        })
    } else {
        None
    };
    let verdict = declared_capabilities(
        run.descriptor,
        &second,
        &[&first_feeds, &second_feeds],
        incremental,
        alarms,
    );
    run.record(CheckId::DeclaredCapabilities, verdict);
    session.close().await;
}

/// The checks judged from two polls of the good target; when those polls cannot be made,
/// each fails with the reason.
const POLL_CHECKS: [CheckId; 6] = [
    CheckId::StableIds,
    CheckId::CanonicalTypes,
    CheckId::RelationsResolve,
    CheckId::SummaryMatchesProjection,
    CheckId::GoldenProjection,
    CheckId::DeclaredCapabilities,
];

fn fail_checks(run: &mut Run<'_>, checks: &[CheckId], why: &str) {
    for check in checks {
        run.record(*check, Verdict::Fail(why.to_owned()));
    }
}

/// A second connection id, to show ids are unique across connections.
const OTHER_CONNECTION_ID: &str = "conformance-other-connection";

fn stable_ids(
    first: &Projection,
    second: &Projection,
    other: Result<Projection, ProviderError>,
) -> Verdict {
    let ids = |p: &Projection| p.resources.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    let (a, b) = (ids(first), ids(second));
    let set_a: BTreeSet<&String> = a.iter().collect();
    let set_b: BTreeSet<&String> = b.iter().collect();
    let mut problems = Vec::new();
    if set_a.len() != a.len() {
        problems.push("ids repeat within one projection".to_owned());
    }
    if set_a != set_b {
        let gone: Vec<_> = set_a.difference(&set_b).take(3).collect();
        let new: Vec<_> = set_b.difference(&set_a).take(3).collect();
        problems.push(format!(
            "ids changed between two polls of an unchanged target (gone {gone:?}, new {new:?})"
        ));
    }
    if let Some(bad) = a.iter().find(|id| !is_url_safe(id)) {
        problems.push(format!("id {bad:?} is not URL-safe"));
    }
    match other {
        Ok(other) => {
            if let Some(shared) = other.resources.iter().find(|r| set_b.contains(&r.id)) {
                problems.push(format!(
                    "id {:?} is the same for two connections to the same target",
                    shared.id
                ));
            }
        }
        Err(error) => problems.push(format!(
            "the same observation does not project twice: {error}"
        )),
    }
    if problems.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(problems.join("; "))
    }
}

fn canonical_types(descriptor: &PlatformDescriptor, projection: &Projection) -> Verdict {
    let mut problems = Vec::new();
    for resource in &projection.resources {
        let type_name = resource.resource_type.as_str();
        if !descriptor.projections.contains(&type_name) {
            problems.push(format!(
                "{} has type `{type_name}`, which the descriptor does not project",
                resource.id
            ));
        }
        if resource.platform != descriptor.platform {
            problems.push(format!(
                "{} has platform `{}`, not `{}`",
                resource.id, resource.platform, descriptor.platform
            ));
        }
        if resource.connection_id != CONNECTION_ID {
            problems.push(format!(
                "{} has connection `{}`, not the one it was projected for",
                resource.id, resource.connection_id
            ));
        }
        if resource.name.trim().is_empty() {
            problems.push(format!("{} has no name", resource.id));
        }
        if !resource.identity.contains_key("nativeId") {
            problems.push(format!("{} has no identity.nativeId", resource.id));
        }
        // The wire form must read back as the canonical type: nothing the model cannot hold.
        let round_trip = serde_json::to_value(resource)
            .and_then(serde_json::from_value::<crate::model::Resource>);
        if let Err(error) = round_trip {
            problems.push(format!("{} does not round-trip: {error}", resource.id));
        }
        if problems.len() > 5 {
            break;
        }
    }
    if projection.resources.is_empty() {
        problems.push("the known target projects no resources".into());
    }
    if problems.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(problems.join("; "))
    }
}

fn relations_resolve(projection: &Projection) -> Verdict {
    let ids: BTreeSet<&str> = projection.resources.iter().map(|r| r.id.as_str()).collect();
    let mut problems = Vec::new();
    for resource in &projection.resources {
        for relation in &resource.relations {
            if relation.target == resource.id {
                problems.push(format!("{} relates to itself", resource.id));
            } else if !ids.contains(relation.target.as_str()) {
                problems.push(format!(
                    "{} {:?} {}, which is not in the projection",
                    resource.id, relation.kind, relation.target
                ));
            }
        }
    }
    problems.truncate(5);
    if problems.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(problems.join("; "))
    }
}

fn summary_matches(projection: &Projection, test_report: Option<&TestReport>) -> Verdict {
    let counts = count_resources(&projection.resources);
    let summary = ContributionSummary::from_projection(projection);
    let mut problems = Vec::new();
    if (summary.agents, summary.vms, summary.storage) != (counts.agents, counts.vms, counts.storage)
    {
        problems.push(format!(
            "the contribution summary {summary:?} disagrees with the projected counts {counts:?}"
        ));
    }
    match test_report {
        None => problems.push("no successful connection test to compare with".into()),
        Some(report) => {
            if report.counts != counts {
                problems.push(format!(
                    "the connection test reports {:?}, the projection holds {counts:?}",
                    report.counts
                ));
            }
            if report.system.instance_uuid != projection.system.instance_uuid
                || report.system.name != projection.system.name
            {
                problems.push(format!(
                    "the connection test saw system {:?}, the poll {:?}",
                    report.system, projection.system
                ));
            }
        }
    }
    if problems.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(problems.join("; "))
    }
}

/// Positive checks for what the descriptor declares, and the converse: a provider delivering
/// history or metrics it does not declare fails too (the host would hide them behind
/// `not_supported`). A declared capability the kit cannot yet observe through the provider
/// contract fails rather than passing unverified.
fn declared_capabilities(
    descriptor: &PlatformDescriptor,
    projection: &Projection,
    feeds: &[&Feeds],
    incremental: Option<Result<(bool, Projection), String>>,
    alarms: Option<Result<Option<Projection>, String>>,
) -> Verdict {
    let c = &descriptor.capabilities;
    let mut problems = Vec::new();
    let records = feeds.iter().map(|f| f.history.len()).sum::<usize>();
    let runs = feeds.iter().map(|f| f.samples.len()).sum::<usize>();
    if !c.history && records > 0 {
        problems.push(format!(
            "the feeds delivered {records} history record(s) but `history` is not declared"
        ));
    }
    if !c.metrics && runs > 0 {
        problems.push(format!(
            "the feeds delivered {runs} metric series but `metrics` is not declared"
        ));
    }
    let declared: Vec<&str> = [
        ("alarms", c.alarms),
        ("history", c.history),
        ("snapshots", c.snapshots),
        ("metrics", c.metrics),
        ("incrementalUpdates", c.incremental_updates),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    if declared.is_empty() && problems.is_empty() {
        return Verdict::NotApplicable("the descriptor declares no optional capability".into());
    }
    let resource_ids: BTreeSet<&str> = projection.resources.iter().map(|r| r.id.as_str()).collect();
    for capability in declared {
        match capability {
            "snapshots" => {
                let shown = projection.resources.iter().any(|r| {
                    r.resource_type == ResourceType::Vm && r.details.contains_key("snapshots")
                });
                if !shown {
                    problems.push(
                        "`snapshots` is declared but no VM carries `details.snapshots`".to_owned(),
                    );
                }
            }
            "history" => problems.extend(history_problems(feeds, &resource_ids)),
            "alarms" => match &alarms {
                Some(Ok(Some(after))) => {
                    let after_ids: BTreeSet<&str> =
                        after.resources.iter().map(|r| r.id.as_str()).collect();
                    let raised = after.alerts.iter().any(|condition| {
                        condition.source == crate::model::AlertSource::Alarm
                            && after_ids.contains(condition.resource_id.as_str())
                    });
                    if !raised {
                        problems.push(
                            "`alarms` is declared but the poll after the target raised an alarm reports no alarm condition on a projected resource".to_owned(),
                        );
                    }
                }
                Some(Ok(None)) => problems.push(
                    "`alarms` is declared but the fixture cannot raise an alarm (`FixtureTarget::raise_alarm`)".to_owned(),
                ),
                Some(Err(why)) => problems.push(why.clone()),
                None => problems.push("the alarm check did not run".to_owned()),
            },
            "incrementalUpdates" => match &incremental {
                Some(Ok((true, third))) => {
                    let third_ids: BTreeSet<&str> =
                        third.resources.iter().map(|r| r.id.as_str()).collect();
                    if third_ids != resource_ids {
                        problems.push(
                            "a poll called unchanged projects different resources".to_owned(),
                        );
                    }
                }
                Some(Ok((false, _))) => problems.push(
                    "`incrementalUpdates` is declared but a third poll of the unchanged target is not reported unchanged (`Provider::unchanged`)".to_owned(),
                ),
                Some(Err(why)) => problems.push(why.clone()),
                None => problems.push("the third poll did not run".to_owned()),
            },
            "metrics" => problems.extend(metrics_problems(feeds, &resource_ids)),
            other => problems.push(format!(
                "`{other}` is declared but the provider contract has no way to deliver it yet; declare it once it does"
            )),
        }
    }
    if problems.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(problems.join("; "))
    }
}

/// What is wrong with the history two polls delivered: none at all, a record of another
/// connection, an id twice, a record linked to a resource the projection does not have, or
/// no cursor to resume from.
fn history_problems(feeds: &[&Feeds], resource_ids: &BTreeSet<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    let records: Vec<_> = feeds.iter().flat_map(|f| f.history.iter()).collect();
    if records.is_empty() {
        problems.push("`history` is declared but two polls delivered no history record".into());
    }
    let mut seen = BTreeSet::new();
    for record in &records {
        if record.connection_id != CONNECTION_ID {
            problems.push(format!(
                "history record `{}` names connection `{}`",
                record.id, record.connection_id
            ));
        }
        if !seen.insert(record.id.as_str()) {
            problems.push(format!(
                "history record `{}` was delivered twice",
                record.id
            ));
        }
        if let Some(resource) = &record.resource_id {
            if !resource_ids.contains(resource.as_str()) {
                problems.push(format!(
                    "history record `{}` points at `{resource}`, which is not a projected resource",
                    record.id
                ));
            }
        }
        if record.record_type.trim().is_empty() {
            problems.push(format!("history record `{}` has no type", record.id));
        }
    }
    if !records.is_empty() && feeds.iter().all(|f| f.cursor.0.is_none()) {
        problems.push("history was delivered without a cursor to resume from".into());
    }
    problems.truncate(5);
    problems
}

/// What is wrong with the samples two polls delivered: none at all, samples of a resource
/// the projection does not have, values that are not finite, or a sample delivered twice.
fn metrics_problems(feeds: &[&Feeds], resource_ids: &BTreeSet<&str>) -> Vec<String> {
    let mut problems = Vec::new();
    let runs: Vec<_> = feeds.iter().flat_map(|f| f.samples.iter()).collect();
    if runs.iter().all(|run| run.points.is_empty()) {
        problems.push("`metrics` is declared but two polls delivered no sample".into());
    }
    let mut seen = BTreeSet::new();
    for run in runs {
        if !resource_ids.contains(run.resource_id.as_str()) {
            problems.push(format!(
                "samples of `{}` point at a resource the projection does not have",
                run.resource_id
            ));
        }
        for (at, value) in &run.points {
            if !value.is_finite() {
                problems.push(format!(
                    "{} of `{}` at {at} is {value}",
                    run.metric.as_str(),
                    run.resource_id
                ));
            }
            if !seen.insert((run.resource_id.as_str(), run.metric, *at)) {
                problems.push(format!(
                    "{} of `{}` at {at} was delivered twice",
                    run.metric.as_str(),
                    run.resource_id
                ));
            }
        }
    }
    problems.truncate(5);
    problems
}

async fn check_outage(
    run: &mut Run<'_>,
    target: &dyn FixtureTarget,
    session: &mut Box<dyn ProviderSession>,
) {
    let mut problems = Vec::new();
    let mut health = PollHealth::new(60, true);
    health.record_success(chrono::Utc::now(), false);
    if let Err(error) = target.set_outage(true).await {
        run.record(CheckId::OutageRecovery, Verdict::Fail(error.to_string()));
        return;
    }
    match session.poll().await {
        Ok(_) => problems.push("a poll during the outage succeeds".to_owned()),
        Err(error) => {
            run.outputs.error("poll during the outage", &error);
            if error.message.trim().is_empty() {
                problems.push("the outage failure has no message".into());
            }
            if error.category == FailureCategory::InvalidConfig {
                problems.push(format!(
                    "an outage is classified as invalid_config: {}",
                    error.message
                ));
            }
            health.record_failure(chrono::Utc::now(), error.category, &error.message);
            if health.status != HealthStatus::Failing {
                problems.push(format!("health after the outage is {:?}", health.status));
            }
        }
    }
    if let Err(error) = target.set_outage(false).await {
        problems.push(error.to_string());
    }
    match poll_and_project(run, session, "poll after the outage").await {
        Ok(projection) => {
            health.record_success(projection.collected_at, !projection.issues.is_empty());
            if health.status != HealthStatus::Healthy {
                problems.push(format!("health after recovery is {:?}", health.status));
            }
        }
        Err(why) => problems.push(format!("no recovery: {why}")),
    }
    run.record_problems(CheckId::OutageRecovery, problems);
}

fn check_secrets(
    descriptor: &PlatformDescriptor,
    plan: &FixturePlan,
    good: Option<&ConnectionConfig>,
    outputs: &Outputs,
) -> Verdict {
    let mut secrets: BTreeSet<String> = plan.secrets.iter().cloned().collect();
    if let Some(config) = good {
        secrets.extend(config.secrets.values().map(|s| s.expose().to_owned()));
    }
    // Very short values would match by accident; the fixture must use distinctive secrets.
    let short: Vec<&String> = secrets.iter().filter(|s| s.len() < 6).collect();
    let declares_secrets = descriptor.secret_fields().next().is_some();
    if !short.is_empty() || (secrets.is_empty() && declares_secrets) {
        return Verdict::Fail(
            "the fixture must name its secrets, each at least 6 characters, so a leak is recognisable".into(),
        );
    }
    if secrets.is_empty() {
        // No secret field is declared (the descriptor check fails secret-looking fields that
        // are not) and the fixture names no secret: there is nothing a leak could expose.
        return Verdict::Pass;
    }
    let leaks: Vec<&str> = outputs
        .0
        .iter()
        .filter(|(_, text)| secrets.iter().any(|secret| text.contains(secret.as_str())))
        .map(|(origin, _)| origin.as_str())
        .take(5)
        .collect();
    if leaks.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(format!("a secret appears in: {}", leaks.join(", ")))
    }
}

#[cfg(test)]
mod secret_tests {
    //! The no-secret-leak verdict for fixtures that name no secret. The broken providers in
    //! `tests.rs` prove leaks are caught; these pin what an empty secret list means.

    use super::*;
    use crate::descriptor::{Capabilities, FieldSpec, IngestionMode, SupportMatrix};
    use std::path::PathBuf;
    use std::time::Duration;

    const MATRIX: SupportMatrix = SupportMatrix {
        connection_admission: SupportLevel::Supported,
        inventory: SupportLevel::Supported,
        alerts: SupportLevel::Planned,
        history: SupportLevel::Planned,
        metrics: SupportLevel::Planned,
        assistant_read: SupportLevel::Planned,
        assistant_control: SupportLevel::Planned,
        control_actions: SupportLevel::Planned,
    };

    const fn descriptor(fields: &'static [FieldSpec]) -> PlatformDescriptor {
        PlatformDescriptor {
            platform: "secretless",
            slug: "secretless",
            display_name: "Secretless",
            description: "A provider for the secret-check tests.",
            ingestion_mode: IngestionMode::Poll,
            projections: &["vm"],
            readiness: ReadinessStage::Projection,
            support_matrix: MATRIX,
            capabilities: Capabilities {
                alarms: false,
                history: false,
                snapshots: false,
                metrics: false,
                incremental_updates: false,
            },
            minimum_version: "1",
            fields,
        }
    }

    static WITHOUT_SECRETS: PlatformDescriptor = descriptor(&[]);
    static WITH_A_SECRET: PlatformDescriptor = descriptor(&[FieldSpec {
        name: "token",
        label: "Token",
        help: "An API token.",
        kind: FieldKind::Text { max_length: 100 },
        required: false,
        secret: true,
        default: None,
    }]);

    fn plan(secrets: &[&str]) -> FixturePlan {
        FixturePlan {
            good: Value::Null,
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
            invalid: vec![],
            failures: vec![],
            not_produced: vec![],
            golden: PathBuf::new(),
            volatile: vec![],
            test_timeout: Duration::from_secs(1),
            waivers: vec![],
        }
    }

    fn check(descriptor: &PlatformDescriptor, secrets: &[&str], output: &str) -> Verdict {
        let mut outputs = Outputs::default();
        outputs.add("output", output);
        check_secrets(descriptor, &plan(secrets), None, &outputs)
    }

    #[test]
    fn a_provider_without_secret_fields_needs_no_named_secret() {
        assert_eq!(check(&WITHOUT_SECRETS, &[], "anything"), Verdict::Pass);
    }

    #[test]
    fn a_declared_secret_field_still_requires_named_secrets() {
        assert!(matches!(
            check(&WITH_A_SECRET, &[], "anything"),
            Verdict::Fail(_)
        ));
        assert!(matches!(
            check(&WITHOUT_SECRETS, &["short"], "anything"),
            Verdict::Fail(_)
        ));
        assert!(matches!(
            check(
                &WITHOUT_SECRETS,
                &["canary-value"],
                "has canary-value in it"
            ),
            Verdict::Fail(_)
        ));
    }
}
