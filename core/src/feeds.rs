//! Incremental feeds: event/task history and performance samples (GUIDE section 4).
//!
//! Unlike the inventory, which every poll restates in full, a feed only grows: each poll
//! brings what happened since the previous one. So a provider reports *new* records plus a
//! [`FeedCursor`] saying where it stands, and the host stores both in one transaction. A new
//! session (after a restart, a re-login or a failure) is handed the stored cursor through
//! [`crate::provider::ProviderSession::resume`] and continues from there: no gap, and no
//! record stored twice (the host also drops records whose id it already holds).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::PollIssue;

/// Whether a history record is something that happened (an event) or something that was
/// done (a task).
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
pub enum HistoryKind {
    Event,
    Task,
}

impl HistoryKind {
    pub const ALL: [HistoryKind; 2] = [Self::Event, Self::Task];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Task => "task",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// One event or task, as served by `GET /api/resources/{id}/history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRecord {
    /// Unique within the connection and stable across polls (for vSphere `event-<key>` or
    /// `task-<key>`), so a record seen twice is stored once.
    pub id: String,
    pub connection_id: String,
    /// When it happened (events) or was queued (tasks).
    pub at: DateTime<Utc>,
    pub kind: HistoryKind,
    /// The platform's name for what happened, e.g. `VmPoweredOffEvent` or
    /// `VirtualMachine.powerOff`.
    #[serde(rename = "type")]
    pub record_type: String,
    pub message: String,
    /// Who did it, when the platform says.
    pub user: Option<String>,
    /// The projected resource it concerns; `null` for records about something that is not a
    /// canonical resource (a datacenter, the vCenter itself).
    pub resource_id: Option<String>,
}

/// The unit of a canonical metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum MetricUnit {
    Percent,
    Bytes,
    BytesPerSecond,
}

impl MetricUnit {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Percent => "percent",
            Self::Bytes => "bytes",
            Self::BytesPerSecond => "bytesPerSecond",
        }
    }
}

/// The canonical performance metrics: one vocabulary for every provider, each with one unit,
/// so a chart or an alert rule written once works for all platforms.
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
pub enum MetricName {
    CpuPercent,
    MemoryUsedBytes,
    DiskReadBytesPerSecond,
    DiskWriteBytesPerSecond,
    NetworkRxBytesPerSecond,
    NetworkTxBytesPerSecond,
    DiskUsedBytes,
    DiskTotalBytes,
}

impl MetricName {
    pub const ALL: [MetricName; 8] = [
        Self::CpuPercent,
        Self::MemoryUsedBytes,
        Self::DiskReadBytesPerSecond,
        Self::DiskWriteBytesPerSecond,
        Self::NetworkRxBytesPerSecond,
        Self::NetworkTxBytesPerSecond,
        Self::DiskUsedBytes,
        Self::DiskTotalBytes,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CpuPercent => "cpuPercent",
            Self::MemoryUsedBytes => "memoryUsedBytes",
            Self::DiskReadBytesPerSecond => "diskReadBytesPerSecond",
            Self::DiskWriteBytesPerSecond => "diskWriteBytesPerSecond",
            Self::NetworkRxBytesPerSecond => "networkRxBytesPerSecond",
            Self::NetworkTxBytesPerSecond => "networkTxBytesPerSecond",
            Self::DiskUsedBytes => "diskUsedBytes",
            Self::DiskTotalBytes => "diskTotalBytes",
        }
    }

    pub const fn unit(self) -> MetricUnit {
        match self {
            Self::CpuPercent => MetricUnit::Percent,
            Self::MemoryUsedBytes | Self::DiskUsedBytes | Self::DiskTotalBytes => MetricUnit::Bytes,
            Self::DiskReadBytesPerSecond
            | Self::DiskWriteBytesPerSecond
            | Self::NetworkRxBytesPerSecond
            | Self::NetworkTxBytesPerSecond => MetricUnit::BytesPerSecond,
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

/// Samples of one metric of one resource, oldest first, as a provider reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRun {
    pub resource_id: String,
    pub metric: MetricName,
    pub points: Vec<(DateTime<Utc>, f64)>,
}

/// One metric's points over a time range, as served by `GET /api/resources/{id}/metrics`.
/// Points are `[time, value]` pairs, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricSeries {
    pub metric: MetricName,
    pub unit: MetricUnit,
    pub points: Vec<(DateTime<Utc>, f64)>,
}

/// Where a connection's feeds stand, in the provider's own terms (for vSphere: the newest
/// event key and task time, and the newest performance sample per interval). Opaque to the
/// host, which stores it next to the records it came with and hands it to the next session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedCursor(pub Option<String>);

/// What the feeds brought in one poll.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Feeds {
    /// Records new since the previous poll of the connection.
    pub history: Vec<HistoryRecord>,
    /// Samples new since the previous poll of the connection.
    pub samples: Vec<SampleRun>,
    /// Parts of the feeds that could not be read; they make the poll `degraded`.
    pub issues: Vec<PollIssue>,
    /// Where the feeds stand after this poll; stored with the records.
    pub cursor: FeedCursor,
}

impl Feeds {
    pub fn is_empty(&self) -> bool {
        self.history.is_empty() && self.samples.is_empty() && self.issues.is_empty()
    }

    pub fn sample_count(&self) -> usize {
        self.samples.iter().map(|run| run.points.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_units_match_their_serialisation() {
        for metric in MetricName::ALL {
            assert_eq!(
                serde_json::to_value(metric).unwrap(),
                serde_json::json!(metric.as_str())
            );
            assert_eq!(MetricName::parse(metric.as_str()), Some(metric));
            assert_eq!(
                serde_json::to_value(metric.unit()).unwrap(),
                serde_json::json!(metric.unit().as_str())
            );
        }
        for kind in HistoryKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
            assert_eq!(HistoryKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(MetricName::parse("cpu.usage.average"), None);
    }

    #[test]
    fn history_records_serialise_with_the_fixed_names() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let record = HistoryRecord {
            id: "event-7".into(),
            connection_id: "c".into(),
            at,
            kind: HistoryKind::Event,
            record_type: "VmPoweredOffEvent".into(),
            message: "vm1 is powered off".into(),
            user: Some("root".into()),
            resource_id: Some("c-vm-1".into()),
        };
        assert_eq!(
            serde_json::to_value(&record).unwrap(),
            serde_json::json!({
                "id": "event-7", "connectionId": "c", "at": "2026-01-02T03:04:05Z",
                "kind": "event", "type": "VmPoweredOffEvent", "message": "vm1 is powered off",
                "user": "root", "resourceId": "c-vm-1",
            })
        );
        let series = MetricSeries {
            metric: MetricName::CpuPercent,
            unit: MetricUnit::Percent,
            points: vec![(at, 12.5)],
        };
        assert_eq!(
            serde_json::to_value(&series).unwrap(),
            serde_json::json!({"metric": "cpuPercent", "unit": "percent",
                "points": [["2026-01-02T03:04:05Z", 12.5]]})
        );
    }
}
