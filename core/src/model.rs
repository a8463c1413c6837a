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

/// Everything one poll projected.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    pub system: SystemIdentity,
    pub resources: Vec<Resource>,
    pub topology: TopologyCounts,
    pub issues: Vec<PollIssue>,
    pub collected_at: DateTime<Utc>,
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
