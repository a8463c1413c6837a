//! The incremental feeds of a vCenter connection: events, tasks and performance samples
//! (GUIDE sections 4 and 5), read after the inventory in every poll.
//!
//! Each reader works on raw SOAP through the session and its own small XML reader (the same
//! [`Cursor`](crate::inventory::xml::Cursor) the inventory uses), never through vim_rs types:
//! vim_rs fails a whole answer on a nested `LocalizedMethodFault` (GUIDE 6.1), which is exactly
//! what a failed task's `info.error` is.
//!
//! Where the feeds stand is a [`FeedPosition`], serialised as the opaque
//! [`FeedCursor`](pylon_core::feeds::FeedCursor) the host stores with the records. A session
//! starts from the stored position ([`FeedSession::resume`]) and moves it as it reads, so a
//! restart continues without a gap, and records are keyed (`event-<key>`, `task-<key>`) so the
//! host drops any it already holds.
//!
//! A feed that cannot be read never fails the poll: it becomes a `degraded` issue naming what
//! was not read, and its position stays where it was, so the next poll tries again.

pub(crate) mod events;
pub(crate) mod perf;
pub(crate) mod tasks;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use pylon_core::feeds::{FeedCursor, Feeds, HistoryKind, HistoryRecord, MetricName, SampleRun};
use pylon_core::model::PollIssue;
use pylon_core::FailureCategory;
use serde::{Deserialize, Serialize};

use crate::client::VcenterSession;
use crate::inventory::types::MoRef;
use crate::inventory::InventorySnapshot;

/// The `stage` of feed issues in `observed.issues`.
pub(crate) const STAGE: &str = "feeds";

/// Where the feeds of one connection stand. Serialised into the host's cursor; every member
/// is optional so a cursor written by an older Pylon (or none) still reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FeedPosition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<events::EventPosition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<tasks::TaskPosition>,
    /// Performance sample watermarks; absent in cursors from before performance history.
    #[serde(default, skip_serializing_if = "perf::PerfPosition::is_empty")]
    pub perf: perf::PerfPosition,
}

impl FeedPosition {
    /// Reads a stored cursor. One that does not parse (hand-edited, or from a future Pylon)
    /// starts the feeds afresh rather than failing the connection: the host drops records
    /// it already holds, so the cost is a re-read, not duplicates.
    pub(crate) fn from_cursor(cursor: &FeedCursor) -> Self {
        let Some(text) = &cursor.0 else {
            return Self::default();
        };
        serde_json::from_str(text).unwrap_or_else(|error| {
            tracing::warn!(%error, "ignoring an unreadable vSphere feed cursor; feeds start afresh");
            Self::default()
        })
    }

    pub(crate) fn to_cursor(&self) -> FeedCursor {
        FeedCursor(serde_json::to_string(self).ok())
    }
}

/// One event or task as read, still keyed by managed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawHistory {
    /// `event-<key>` or `task-<key>`.
    pub id: String,
    pub at: DateTime<Utc>,
    pub kind: HistoryKind,
    pub record_type: String,
    pub message: String,
    pub user: Option<String>,
    /// The inventory object it concerns, most specific first (a VM before its host).
    pub entity: Option<MoRef>,
}

/// Samples of one metric of one inventory object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawSamples {
    pub entity: MoRef,
    pub metric: MetricName,
    pub points: Vec<(DateTime<Utc>, f64)>,
}

/// What the feeds read in one poll.
#[derive(Debug, Clone, Default)]
pub(crate) struct FeedBatch {
    pub history: Vec<RawHistory>,
    pub samples: Vec<RawSamples>,
    pub issues: Vec<PollIssue>,
    pub position: FeedPosition,
}

/// The feed state a polling session keeps between polls.
#[derive(Debug, Default)]
pub(crate) struct FeedSession {
    position: FeedPosition,
    /// Where tasks come from on this endpoint (asked once) and which this session delivered.
    tasks: tasks::TaskSession,
    /// Counters, limits, backoff and per-entity progress of performance collection.
    perf: perf::PerfSession,
}

impl FeedSession {
    pub(crate) fn resume(&mut self, cursor: &FeedCursor) {
        self.position = FeedPosition::from_cursor(cursor);
    }

    /// Reads what is new in every feed. Never fails: what cannot be read is an issue.
    pub(crate) async fn read(
        &mut self,
        session: &VcenterSession,
        snapshot: &InventorySnapshot,
    ) -> FeedBatch {
        let mut batch = FeedBatch::default();
        match events::read_new(session, self.position.events.as_ref()).await {
            Ok(read) => {
                if let Some(newest) = read.position {
                    self.position.events = Some(newest);
                }
                if read.unreadable > 0 {
                    batch.issues.push(PollIssue {
                        stage: STAGE.to_owned(),
                        category: FailureCategory::Protocol,
                        message: format!(
                            "{} vCenter event(s) had no key or creation time and were left out of the history",
                            read.unreadable
                        ),
                        occurrences: u32::try_from(read.unreadable).unwrap_or(u32::MAX),
                    });
                }
                batch.history.extend(read.records);
            }
            Err(error) => batch.issues.push(error.issue("events")),
        }
        match tasks::read_new(session, &mut self.tasks, self.position.tasks.as_ref()).await {
            Ok(read) => {
                if let Some(newest) = read.position {
                    self.position.tasks = Some(newest);
                }
                batch.history.extend(read.records);
            }
            Err(error) => batch.issues.push(error.issue("tasks")),
        }
        let perf = self.perf.read(session, snapshot, &self.position.perf).await;
        self.position.perf = perf.position;
        batch.samples.extend(perf.samples);
        batch.issues.extend(perf.issues);
        batch.position = self.position.clone();
        batch
    }
}

/// Why a feed could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FeedError {
    pub category: FailureCategory,
    pub detail: String,
}

impl FeedError {
    pub(crate) fn new(category: FailureCategory, detail: impl Into<String>) -> Self {
        Self {
            category,
            detail: detail.into(),
        }
    }

    /// A call vCenter failed (a fault, or the transport).
    pub(crate) fn failed_call(method: &str, error: &crate::client::SessionError) -> Self {
        Self::new(FailureCategory::Protocol, format!("{method}: {error}"))
    }

    /// An answer that is a fault or that Pylon cannot read.
    pub(crate) fn unreadable(method: &str, error: &crate::inventory::xml::XmlError) -> Self {
        match error.fault() {
            Some(fault) => Self::new(
                FailureCategory::Protocol,
                format!("{method} answered {}: {}", fault.fault_type, fault.message),
            ),
            None => Self::new(
                FailureCategory::Protocol,
                format!("{method} answered something Pylon cannot read ({error})"),
            ),
        }
    }

    fn issue(&self, feed: &str) -> PollIssue {
        PollIssue {
            stage: STAGE.to_owned(),
            category: self.category,
            message: format!(
                "vCenter {feed} could not be read this poll ({}); they are read again next poll",
                self.detail
            ),
            occurrences: 1,
        }
    }
}

/// Canonical history and samples from a batch: entities become resource ids by the same
/// rules as the inventory projection. A record about something that is not a projected
/// resource (a datacenter, a cluster) keeps a `null` resource id; samples of an object that
/// is not projected are dropped.
pub(crate) fn project(
    connection_id: &str,
    snapshot: &InventorySnapshot,
    batch: &FeedBatch,
) -> Feeds {
    let ids: HashMap<&MoRef, String> = crate::project::resource_ids(connection_id, snapshot);
    let history = batch
        .history
        .iter()
        .map(|raw| HistoryRecord {
            id: raw.id.clone(),
            connection_id: connection_id.to_owned(),
            at: raw.at,
            kind: raw.kind,
            record_type: raw.record_type.clone(),
            message: raw.message.clone(),
            user: raw.user.clone(),
            resource_id: raw.entity.as_ref().and_then(|e| ids.get(e)).cloned(),
        })
        .collect();
    let samples = batch
        .samples
        .iter()
        .filter_map(|raw| {
            Some(SampleRun {
                resource_id: ids.get(&raw.entity)?.clone(),
                metric: raw.metric,
                points: raw.points.clone(),
            })
        })
        .collect();
    Feeds {
        history,
        samples,
        issues: batch.issues.clone(),
        cursor: batch.position.to_cursor(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_bad_cursors_start_afresh() {
        let position = FeedPosition {
            events: Some(events::EventPosition {
                key: 42,
                at: DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
                    .unwrap()
                    .with_timezone(&Utc),
            }),
            tasks: None,
            perf: perf::PerfPosition::default(),
        };
        assert_eq!(FeedPosition::from_cursor(&position.to_cursor()), position);
        assert_eq!(
            FeedPosition::from_cursor(&FeedCursor(Some("{not json".into()))),
            FeedPosition::default()
        );
        assert_eq!(
            FeedPosition::from_cursor(&FeedCursor(None)),
            FeedPosition::default()
        );
    }
}
