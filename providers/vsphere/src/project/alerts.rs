//! Alert conditions of hosts, VMs and datastores, from two sources.
//!
//! **Alarms.** Each entry of an entity's `triggeredAlarmState` whose `overallStatus` is `red`
//! (critical) or `yellow` (warning) is one condition keyed `alarm:<alarm id>`, named after
//! the alarm definition (`info.name`, `info.description`, read once per session and cached,
//! see [`crate::poll`]), with `since` from the alarm's `time` and its `acknowledged` flag.
//! A definition that could not be read leaves the alert named by the alarm's id and is
//! reported as a `degraded` issue.
//!
//! **Health.** Every projected host, VM and datastore
//! whose `overallStatus` is `red` raises a `critical` health condition, `yellow` a
//! `warning` one. `green` and `gray` (unknown) raise nothing: gray says vCenter cannot tell,
//! which the resource's `status` already shows, and an alert nobody can act on is noise.
//!
//! The condition key is `health` for both colours, so a yellow that turns red stays one
//! alert (the host follows its severity) instead of resolving one and opening another.
//! vCenter does not say when a status changed, so `since` is left to the host (the poll
//! that first saw it).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use pylon_core::model::{
    AlertCondition, AlertSeverity, AlertSource, PollIssue, Resource, ResourceType,
};
use pylon_core::FailureCategory;

use crate::inventory::AlarmState;

/// An alarm definition's name and description (`Alarm.info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AlarmDefinition {
    pub name: String,
    pub description: String,
}

/// Alarm definitions by the id of their `Alarm` managed object. `None` marks one that was
/// asked for and could not be read, so it is not asked for again in the same session.
pub(crate) type AlarmCatalog = HashMap<String, Option<AlarmDefinition>>;

/// The severity of a managed entity status colour, with the colour; green and gray raise
/// nothing.
fn severity_of(status: &str) -> Option<(AlertSeverity, &'static str)> {
    match status {
        "red" => Some((AlertSeverity::Critical, "red")),
        "yellow" => Some((AlertSeverity::Warning, "yellow")),
        _ => None,
    }
}

/// The alarm conditions of one projected resource, from its `triggeredAlarmState`. Alarm
/// ids whose definition the catalog lacks are added to `unresolved`.
pub(crate) fn alarm_alerts(
    resource: &Resource,
    states: &[AlarmState],
    catalog: &AlarmCatalog,
    unresolved: &mut BTreeSet<String>,
) -> Vec<AlertCondition> {
    let mut out = Vec::new();
    for state in states {
        let (Some(alarm), Some((severity, colour))) =
            (state.alarm.as_ref(), severity_of(&state.overall_status))
        else {
            continue;
        };
        let definition = catalog.get(&alarm.value).and_then(Option::as_ref);
        if definition.is_none() {
            unresolved.insert(alarm.value.clone());
        }
        let name = definition.map_or_else(|| format!("Alarm {}", alarm.value), |d| d.name.clone());
        let message = match definition {
            Some(d) if !d.description.trim().is_empty() => {
                format!("{} ({colour} on `{}`)", d.description.trim(), resource.name)
            }
            _ => format!("Alarm `{name}` is {colour} on `{}`", resource.name),
        };
        out.push(AlertCondition {
            resource_id: resource.id.clone(),
            key: format!("alarm:{}", alarm.value),
            source: AlertSource::Alarm,
            severity,
            name,
            message,
            since: state
                .time
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t.trim()).ok())
                .map(|t| t.with_timezone(&Utc)),
            acknowledged: state.acknowledged,
        });
    }
    out
}

/// The `degraded` issue for alarm definitions that could not be read.
pub(crate) fn unresolved_issue(unresolved: &BTreeSet<String>) -> Option<PollIssue> {
    let first = unresolved.iter().next()?;
    Some(PollIssue {
        stage: "alarms".to_owned(),
        category: FailureCategory::Permission,
        message: format!(
            "the definition of triggered alarm `{first}`{} could not be read (Alarm.info), so              its alert is named by the alarm id; grant System.Read on the alarms or check that              the alarm still exists",
            match unresolved.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            }
        ),
        occurrences: u32::try_from(unresolved.len()).unwrap_or(u32::MAX),
    })
}

/// The condition key of health alerts.
pub(crate) const HEALTH_KEY: &str = "health";

/// The health conditions of `resources`, in their order (which is by id).
pub(crate) fn health_alerts(resources: &[Resource]) -> Vec<AlertCondition> {
    resources.iter().filter_map(health_alert).collect()
}

fn health_alert(resource: &Resource) -> Option<AlertCondition> {
    let (severity, status) = severity_of(resource.details.get("overallStatus")?.as_str()?)?;
    let what = match resource.resource_type {
        ResourceType::Agent => "Host",
        ResourceType::Vm => "Virtual machine",
        ResourceType::Storage => "Datastore",
    };
    Some(AlertCondition {
        resource_id: resource.id.clone(),
        key: HEALTH_KEY.to_owned(),
        source: AlertSource::Health,
        severity,
        name: format!("{what} health is {status}"),
        message: format!(
            "vCenter reports the overall status of {} `{}` as {status}; its triggered alarms \
             or hardware health say why.",
            what.to_lowercase(),
            resource.name
        ),
        since: None,
        acknowledged: false,
    })
}
