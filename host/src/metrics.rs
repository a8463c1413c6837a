//! Prometheus exposition for `GET /metrics` (no auth, no secrets).
//!
//! Two sources, on purpose:
//! - what only this process knows, counted as polls finish ([`PollMetrics`]): the poll
//!   duration histogram and failures by category. Counters start at zero when `pylon`
//!   starts, as Prometheus counters do;
//! - what the store knows, read at scrape time ([`render`]): each connection's status, last
//!   success, consecutive failures and the resources it contributes by type. Reading these
//!   from the store keeps them right after a restart and identical on every replica.
//!
//! Label values are connection ids, platform ids, category and type names: never names an
//! admin typed, never anything secret.

use crate::store::{ActiveAlertCount, ConnectionRecord};
use pylon_core::{FailureCategory, HealthStatus};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds of the poll duration histogram, in seconds: from a steady-state
/// incremental poll (tens of milliseconds) to a first read of a large vCenter (minutes).
const POLL_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Per-connection poll counters kept in memory.
#[derive(Debug, Default)]
pub struct PollMetrics {
    connections: Mutex<BTreeMap<String, ConnectionPolls>>,
}

#[derive(Debug, Clone)]
struct ConnectionPolls {
    platform: String,
    /// Cumulative counts per bucket of [`POLL_BUCKETS`].
    buckets: [u64; POLL_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
    failures: BTreeMap<FailureCategory, u64>,
}

impl PollMetrics {
    /// Records one finished poll of `connection_id`: how long it took and, when it failed,
    /// its category.
    pub fn record(
        &self,
        platform: &str,
        connection_id: &str,
        took: Duration,
        failure: Option<FailureCategory>,
    ) {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let polls = connections
            .entry(connection_id.to_owned())
            .or_insert_with(|| ConnectionPolls {
                platform: platform.to_owned(),
                buckets: [0; POLL_BUCKETS.len()],
                count: 0,
                sum_seconds: 0.0,
                failures: BTreeMap::new(),
            });
        let seconds = took.as_secs_f64();
        for (bound, bucket) in POLL_BUCKETS.iter().zip(polls.buckets.iter_mut()) {
            if seconds <= *bound {
                *bucket += 1;
            }
        }
        polls.count += 1;
        polls.sum_seconds += seconds;
        if let Some(category) = failure {
            *polls.failures.entry(category).or_default() += 1;
        }
    }

    /// Drops the series of a deleted connection, so deleted connections do not accumulate.
    pub fn forget(&self, connection_id: &str) {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(connection_id);
    }

    fn snapshot(&self) -> BTreeMap<String, ConnectionPolls> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The whole exposition: process counters from `polls`, per-connection state from
/// `connections` (every stored connection of every platform).
pub fn render(
    polls: &PollMetrics,
    connections: &[ConnectionRecord],
    active_alerts: &[ActiveAlertCount],
) -> String {
    let mut out = String::with_capacity(4096);
    let polls = polls.snapshot();

    header(
        &mut out,
        "pylon_build_info",
        "gauge",
        "Always 1; the version label says which pylon is running.",
    );
    let _ = writeln!(
        out,
        "pylon_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );

    header(
        &mut out,
        "pylon_poll_duration_seconds",
        "histogram",
        "How long polls took (session, read and projection; successful or not).",
    );
    for (id, p) in &polls {
        let labels = format!(
            "platform=\"{}\",connection=\"{}\"",
            esc(&p.platform),
            esc(id)
        );
        for (bound, count) in POLL_BUCKETS.iter().zip(p.buckets.iter()) {
            let _ = writeln!(
                out,
                "pylon_poll_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "pylon_poll_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
            p.count
        );
        let _ = writeln!(
            out,
            "pylon_poll_duration_seconds_sum{{{labels}}} {}",
            p.sum_seconds
        );
        let _ = writeln!(
            out,
            "pylon_poll_duration_seconds_count{{{labels}}} {}",
            p.count
        );
    }

    header(
        &mut out,
        "pylon_poll_failures_total",
        "counter",
        "Failed polls by failure category since this process started.",
    );
    for (id, p) in &polls {
        for (category, count) in &p.failures {
            let _ = writeln!(
                out,
                "pylon_poll_failures_total{{platform=\"{}\",connection=\"{}\",category=\"{}\"}} {count}",
                esc(&p.platform),
                esc(id),
                category.as_str()
            );
        }
    }

    header(
        &mut out,
        "pylon_connection_status",
        "gauge",
        "1 for the connection's current poll status, 0 for the others.",
    );
    for record in connections {
        let health = record.current_health();
        for status in STATUSES {
            let _ = writeln!(
                out,
                "pylon_connection_status{{{},status=\"{}\"}} {}",
                connection_labels(record),
                status.as_str(),
                u8::from(health.status == status)
            );
        }
    }

    header(
        &mut out,
        "pylon_poll_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the connection's last successful poll (absent before the first).",
    );
    for record in connections {
        if let Some(at) = record.health.last_success_at {
            let _ = writeln!(
                out,
                "pylon_poll_last_success_timestamp_seconds{{{}}} {}",
                connection_labels(record),
                at.timestamp_millis() as f64 / 1000.0
            );
        }
    }

    header(
        &mut out,
        "pylon_poll_consecutive_failures",
        "gauge",
        "Failed polls since the connection's last success.",
    );
    for record in connections {
        let _ = writeln!(
            out,
            "pylon_poll_consecutive_failures{{{}}} {}",
            connection_labels(record),
            record.health.consecutive_failures
        );
    }

    header(
        &mut out,
        "pylon_resources",
        "gauge",
        "Canonical resources the connection contributed in its last successful poll, by type.",
    );
    for record in connections {
        let Some(observed) = &record.observed else {
            continue;
        };
        // The observed summary is computed from the projected set, so these counts equal
        // the resources API by construction.
        for (kind, field) in [("agent", "agents"), ("vm", "vms"), ("storage", "storage")] {
            if let Some(count) = observed.get(field).and_then(serde_json::Value::as_u64) {
                let _ = writeln!(
                    out,
                    "pylon_resources{{{},type=\"{kind}\"}} {count}",
                    connection_labels(record)
                );
            }
        }
    }

    header(
        &mut out,
        "pylon_alerts_active",
        "gauge",
        "Open alerts by connection and severity (severities with none are left out).",
    );
    let platform_of: BTreeMap<&str, &str> = connections
        .iter()
        .map(|record| (record.id.as_str(), record.platform.as_str()))
        .collect();
    for count in active_alerts {
        let Some(platform) = platform_of.get(count.connection_id.as_str()) else {
            continue;
        };
        let _ = writeln!(
            out,
            "pylon_alerts_active{{platform=\"{}\",connection=\"{}\",severity=\"{}\"}} {}",
            esc(platform),
            esc(&count.connection_id),
            esc(&count.severity),
            count.count
        );
    }
    out
}

const STATUSES: [HealthStatus; 5] = [
    HealthStatus::Pending,
    HealthStatus::Healthy,
    HealthStatus::Degraded,
    HealthStatus::Failing,
    HealthStatus::Disabled,
];

fn connection_labels(record: &ConnectionRecord) -> String {
    format!(
        "platform=\"{}\",connection=\"{}\"",
        esc(&record.platform),
        esc(&record.id)
    )
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value as the text exposition format requires.
fn esc(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_failures_counted_by_category() {
        let metrics = PollMetrics::default();
        metrics.record("p", "c1", Duration::from_millis(40), None);
        metrics.record("p", "c1", Duration::from_millis(700), None);
        metrics.record(
            "p",
            "c1",
            Duration::from_secs(400),
            Some(FailureCategory::Timeout),
        );
        let text = render(&metrics, &[], &[]);
        assert!(text.contains(
            "pylon_poll_duration_seconds_bucket{platform=\"p\",connection=\"c1\",le=\"0.05\"} 1\n"
        ));
        assert!(text.contains(
            "pylon_poll_duration_seconds_bucket{platform=\"p\",connection=\"c1\",le=\"1\"} 2\n"
        ));
        assert!(text.contains(
            "pylon_poll_duration_seconds_bucket{platform=\"p\",connection=\"c1\",le=\"300\"} 2\n"
        ));
        assert!(text.contains(
            "pylon_poll_duration_seconds_bucket{platform=\"p\",connection=\"c1\",le=\"+Inf\"} 3\n"
        ));
        assert!(text
            .contains("pylon_poll_duration_seconds_count{platform=\"p\",connection=\"c1\"} 3\n"));
        assert!(text.contains(
            "pylon_poll_failures_total{platform=\"p\",connection=\"c1\",category=\"timeout\"} 1\n"
        ));
        metrics.forget("c1");
        assert!(!render(&metrics, &[], &[]).contains("c1"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
