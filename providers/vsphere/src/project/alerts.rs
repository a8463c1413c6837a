//! Alert conditions from vCenter's health rollup: every projected host, VM and datastore
//! whose `overallStatus` is `red` raises a `critical` health condition, `yellow` a
//! `warning` one. `green` and `gray` (unknown) raise nothing: gray says vCenter cannot tell,
//! which the resource's `status` already shows, and an alert nobody can act on is noise.
//!
//! The condition key is `health` for both colours, so a yellow that turns red stays one
//! alert (the host follows its severity) instead of resolving one and opening another.
//! vCenter does not say when a status changed, so `since` is left to the host (the poll
//! that first saw it).

use pylon_core::model::{AlertCondition, AlertSeverity, AlertSource, Resource, ResourceType};

/// The condition key of health alerts.
pub(crate) const HEALTH_KEY: &str = "health";

/// The health conditions of `resources`, in their order (which is by id).
pub(crate) fn health_alerts(resources: &[Resource]) -> Vec<AlertCondition> {
    resources.iter().filter_map(health_alert).collect()
}

fn health_alert(resource: &Resource) -> Option<AlertCondition> {
    let status = resource.details.get("overallStatus")?.as_str()?;
    let severity = match status {
        "red" => AlertSeverity::Critical,
        "yellow" => AlertSeverity::Warning,
        _ => return None,
    };
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
