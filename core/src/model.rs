//! The canonical resource model shared by every provider (GUIDE section 4). JSON names are
//! fixed; providers map their native objects onto these types and nothing else.

use crate::provider::{InventoryCounts, SystemIdentity};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The canonical resource types. There are deliberately no provider-local types: topology
/// such as datacenters or clusters rides along as metadata.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    /// A hypervisor host or other compute node.
    Agent,
    /// A virtual machine.
    Vm,
    /// A datastore or other storage volume.
    Storage,
}

impl ResourceType {
    pub const ALL: [ResourceType; 3] = [Self::Agent, Self::Vm, Self::Storage];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Vm => "vm",
            Self::Storage => "storage",
        }
    }
}

/// Observed state of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResourceStatus {
    Online,
    Offline,
    Degraded,
    Unknown,
}

/// How one resource relates to another.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum RelationKind {
    RunsOn,
    UsesStorage,
    MountedOn,
    MemberOf,
}

#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Relation {
    pub kind: RelationKind,
    /// The id of another resource in the same projection.
    pub target: String,
}

/// Placement by name; absent parts are omitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Topology {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_pool: Option<String>,
}

/// Latest point-in-time metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatestMetrics {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_used_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_total_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_used_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_total_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_seconds: Option<u64>,
}

/// One canonical resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub id: String,
    #[serde(rename = "type")]
    pub resource_type: ResourceType,
    pub platform: String,
    pub connection_id: String,
    pub name: String,
    pub status: ResourceStatus,
    pub identity: Map<String, Value>,
    pub relations: Vec<Relation>,
    pub topology: Topology,
    pub metrics: LatestMetrics,
    pub details: Map<String, Value>,
    pub last_seen_at: DateTime<Utc>,
}

/// A part of a poll that could not be read, reported in `observed.issues`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PollIssue {
    pub stage: String,
    pub category: crate::failure::FailureCategory,
    pub message: String,
    pub occurrences: u32,
}

/// Secondary topology counts shown in the contribution summary.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct TopologyCounts {
    pub datacenters: u64,
    pub clusters: u64,
    pub folders: u64,
    pub resource_pools: u64,
}

/// Everything one poll projected. `Default` so a provider or test can spell only the parts
/// it has (`..Projection::default()`), and a new part does not break every construction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    pub system: SystemIdentity,
    pub resources: Vec<Resource>,
    pub topology: TopologyCounts,
    pub issues: Vec<PollIssue>,
    pub collected_at: DateTime<Utc>,
    /// The alert conditions raised at collection time, at most one per resource and
    /// [`AlertCondition::key`]. The host turns their appearance and disappearance between
    /// polls into the alert lifecycle; a provider only says what holds now.
    pub alerts: Vec<AlertCondition>,
}

/// How serious an alert is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AlertSeverity {
    Critical,
    Warning,
    Info,
}

impl AlertSeverity {
    pub const ALL: [AlertSeverity; 3] = [Self::Critical, Self::Warning, Self::Info];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Warning => "warning",
            Self::Info => "info",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Where an alert comes from: a platform alarm, or the platform's own health rollup.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AlertSource {
    Alarm,
    Health,
}

impl AlertSource {
    pub const ALL: [AlertSource; 2] = [Self::Alarm, Self::Health];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Alarm => "alarm",
            Self::Health => "health",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Whether an alert's condition still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Active,
    Resolved,
}

impl AlertState {
    pub const ALL: [AlertState; 2] = [Self::Active, Self::Resolved];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One condition a provider observed as raised on a resource at collection time. It has no
/// lifecycle of its own: the host opens an alert when a `(resource_id, key)` first appears,
/// keeps it while it is reported, and resolves it when a successful poll no longer reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertCondition {
    /// The projected resource the condition is raised on.
    pub resource_id: String,
    /// Stable per resource while the condition holds (for example `health`, or
    /// `alarm:<alarm id>`), so consecutive polls recognise it as the same condition.
    pub key: String,
    pub source: AlertSource,
    pub severity: AlertSeverity,
    pub name: String,
    pub message: String,
    /// When the platform says the condition was raised, if it says; otherwise the host uses
    /// the time of the poll that first saw it.
    pub since: Option<DateTime<Utc>>,
    pub acknowledged: bool,
}

/// A canonical alert as served by `GET /api/alerts` (GUIDE section 4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub id: String,
    pub resource_id: String,
    pub connection_id: String,
    pub severity: AlertSeverity,
    pub state: AlertState,
    pub source: AlertSource,
    pub name: String,
    pub message: String,
    pub since: DateTime<Utc>,
    /// When a successful poll first no longer saw the condition; `null` while active.
    pub resolved_at: Option<DateTime<Utc>>,
    pub acknowledged: bool,
}

/// The `observed` block of a connection: what it contributes. Computed from a projection
/// only, so it cannot disagree with the resources it summarises.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContributionSummary {
    pub system: SystemIdentity,
    pub agents: u64,
    pub vms: u64,
    pub storage: u64,
    pub collected_at: DateTime<Utc>,
    pub topology: TopologyCounts,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub issues: Vec<PollIssue>,
}

impl ContributionSummary {
    pub fn from_projection(projection: &Projection) -> Self {
        let counts = count_resources(&projection.resources);
        Self {
            system: projection.system.clone(),
            agents: counts.agents,
            vms: counts.vms,
            storage: counts.storage,
            collected_at: projection.collected_at,
            topology: projection.topology,
            issues: projection.issues.clone(),
        }
    }
}

/// Counts resources by canonical type.
pub fn count_resources(resources: &[Resource]) -> InventoryCounts {
    let mut counts = InventoryCounts::default();
    for resource in resources {
        match resource.resource_type {
            ResourceType::Agent => counts.agents += 1,
            ResourceType::Vm => counts.vms += 1,
            ResourceType::Storage => counts.storage += 1,
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The alert JSON field names and enum spellings are fixed by GUIDE section 4.
    #[test]
    fn alerts_serialise_with_the_fixed_names() {
        let since = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let alert = Alert {
            id: "a1".into(),
            resource_id: "c-vm-1".into(),
            connection_id: "c".into(),
            severity: AlertSeverity::Critical,
            state: AlertState::Active,
            source: AlertSource::Health,
            name: "Overall status red".into(),
            message: "m".into(),
            since,
            resolved_at: None,
            acknowledged: false,
        };
        assert_eq!(
            serde_json::to_value(&alert).unwrap(),
            serde_json::json!({
                "id": "a1", "resourceId": "c-vm-1", "connectionId": "c",
                "severity": "critical", "state": "active", "source": "health",
                "name": "Overall status red", "message": "m",
                "since": "2026-01-02T03:04:05Z", "resolvedAt": null, "acknowledged": false,
            })
        );
        for severity in AlertSeverity::ALL {
            assert_eq!(AlertSeverity::parse(severity.as_str()), Some(severity));
        }
        for state in AlertState::ALL {
            assert_eq!(AlertState::parse(state.as_str()), Some(state));
        }
        for source in AlertSource::ALL {
            assert_eq!(AlertSource::parse(source.as_str()), Some(source));
        }
        assert_eq!(AlertSeverity::parse("red"), None);
    }
}
