//! Prometheus exposition for `GET /metrics` (no auth, no secrets), on the Prometheus
//! project's `prometheus-client` crate.
//!
//! Three sources, on purpose:
//! - what only this process knows about polls, counted as polls finish ([`PollMetrics`]):
//!   the poll duration histogram and failures by category. Counters start at zero when
//!   `pylon` starts, as Prometheus counters do;
//! - what only this process knows about HTTP, counted by one middleware layer
//!   ([`HttpMetrics`]): requests by method, matched route pattern and status, and their
//!   latency;
//! - what the store knows, read at scrape time ([`StoreGauges`]): each connection's status,
//!   last success, consecutive failures, the resources it contributes by type and its open
//!   alerts by severity. Reading these from the store keeps them right after a restart and
//!   identical on every replica.
//!
//! The format is the Prometheus text format 0.0.4 ([`CONTENT_TYPE`]) rather than
//! OpenMetrics: it is what `/metrics` has always served, so every series keeps its name,
//! `# TYPE` and content type (OpenMetrics would turn `pylon_build_info` into an `info`
//! family and end the body with `# EOF`).
//!
//! Label values are connection ids, platform ids, category, type and severity names, HTTP
//! methods, route patterns and status codes: never names an admin typed, never a raw path
//! (ids would become label values), never anything secret.

use crate::lease::LeaseCounts;
use crate::store::{ActiveAlertCount, ConnectionRecord};
use axum::http::{Method, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use pylon_core::{FailureCategory, HealthStatus};
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The `Content-Type` of the exposition: Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds of the poll duration histogram, in seconds: from a steady-state
/// incremental poll (tens of milliseconds) to a first read of a large vCenter (minutes).
const POLL_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Upper bounds of the HTTP request duration histogram, in seconds: the client libraries'
/// usual defaults, from a cached read (a few milliseconds) to a draft connection test that
/// waits on a slow vCenter (seconds).
const HTTP_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The `route` label of a request that matched no route. Raw paths never become label
/// values: a scanner walking random paths would otherwise create a series per path.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The `method` label of a request whose method is not one of the standard ones, for the
/// same reason: a client can send any token as a method.
pub const OTHER_METHOD: &str = "other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    platform: String,
    connection: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    platform: String,
    connection: String,
    category: &'static str,
}

/// Per-connection poll counters kept in memory.
#[derive(Debug)]
pub struct PollMetrics {
    durations: Family<ConnectionLabels, Histogram>,
    failures: Family<FailureLabels, Counter>,
    /// The platform each recorded connection polls under. A `Family` is keyed by whole label
    /// sets and cannot be searched, so [`PollMetrics::forget`], which has only the id, looks
    /// the rest of the key up here. Held while the families change, so a `forget` racing a
    /// `record` leaves no series behind that this map does not know.
    platforms: Mutex<BTreeMap<String, String>>,
}

impl Default for PollMetrics {
    fn default() -> Self {
        Self {
            durations: Family::new_with_constructor(|| Histogram::new(POLL_BUCKETS)),
            failures: Family::default(),
            platforms: Mutex::default(),
        }
    }
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
        let mut platforms = self
            .platforms
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        platforms.insert(connection_id.to_owned(), platform.to_owned());
        self.durations
            .get_or_create(&ConnectionLabels {
                platform: platform.to_owned(),
                connection: connection_id.to_owned(),
            })
            .observe(took.as_secs_f64());
        if let Some(category) = failure {
            self.failures
                .get_or_create(&FailureLabels {
                    platform: platform.to_owned(),
                    connection: connection_id.to_owned(),
                    category: category.as_str(),
                })
                .inc();
        }
    }

    /// Drops the series of a deleted connection, so deleted connections do not accumulate.
    pub fn forget(&self, connection_id: &str) {
        let mut platforms = self
            .platforms
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(platform) = platforms.remove(connection_id) else {
            return;
        };
        self.durations.remove(&ConnectionLabels {
            platform: platform.clone(),
            connection: connection_id.to_owned(),
        });
        for category in FailureCategory::ALL {
            self.failures.remove(&FailureLabels {
                platform: platform.clone(),
                connection: connection_id.to_owned(),
                category: category.as_str(),
            });
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

/// HTTP request counts and latencies, recorded by the API's middleware layer. Cheap to
/// clone: clones share the series.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            durations: Family::new_with_constructor(|| Histogram::new(HTTP_BUCKETS)),
        }
    }
}

impl HttpMetrics {
    /// Records one answered request. `route` is the matched route pattern (`None` when no
    /// route matched), never the raw path.
    pub fn record(&self, method: &Method, route: Option<&str>, status: StatusCode, took: Duration) {
        let method = method_label(method);
        let route = route_label(route);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route: route.to_owned(),
                status: status.as_u16(),
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabels {
                method,
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }
}

/// The `method` label: the standard methods by name, anything else as [`OTHER_METHOD`].
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => OTHER_METHOD,
    }
}

/// The `route` label: the matched route pattern, or [`UNMATCHED_ROUTE`].
pub fn route_label(matched: Option<&str>) -> &str {
    matched.unwrap_or(UNMATCHED_ROUTE)
}

/// What the store says about every connection, read by the `/metrics` handler just before
/// encoding: the gauges that must be right after a restart and identical across replicas.
///
/// A `prometheus-client` [`Collector`] encodes synchronously, while the store is async, so
/// the collector cannot read the store itself; it is built per scrape from what the handler
/// read, and registered in that scrape's registry. Concurrent scrapes therefore never share
/// a half-updated snapshot, and only the fields below (no settings, no sealed secrets) are
/// kept from the connection records.
#[derive(Debug)]
pub struct StoreGauges {
    connections: Vec<ConnectionGauges>,
    /// Open alerts: platform, connection id, severity and count.
    alerts: Vec<(String, String, String, i64)>,
}

#[derive(Debug)]
struct ConnectionGauges {
    platform: String,
    id: String,
    status: HealthStatus,
    last_success_seconds: Option<f64>,
    consecutive_failures: u32,
    /// Resources by canonical type, as the last successful poll contributed them.
    resources: Vec<(&'static str, u64)>,
}

impl StoreGauges {
    /// Keeps what the gauges need from `connections` (every stored connection of every
    /// platform) and `active_alerts` (open alerts counted by connection and severity).
    pub fn new(connections: &[ConnectionRecord], active_alerts: &[ActiveAlertCount]) -> Self {
        let platform_of: BTreeMap<&str, &str> = connections
            .iter()
            .map(|record| (record.id.as_str(), record.platform.as_str()))
            .collect();
        let alerts = active_alerts
            .iter()
            .filter_map(|count| {
                // Counts of a connection deleted since are left out, as its other series.
                let platform = platform_of.get(count.connection_id.as_str())?;
                Some((
                    (*platform).to_owned(),
                    count.connection_id.clone(),
                    count.severity.clone(),
                    count.count,
                ))
            })
            .collect();
        let connections = connections
            .iter()
            .map(|record| ConnectionGauges {
                platform: record.platform.clone(),
                id: record.id.clone(),
                status: record.current_health().status,
                last_success_seconds: record
                    .health
                    .last_success_at
                    .map(|at| at.timestamp_millis() as f64 / 1000.0),
                consecutive_failures: record.health.consecutive_failures,
                // The observed summary is computed from the projected set, so these counts
                // equal the resources API by construction.
                resources: record
                    .observed
                    .as_ref()
                    .map(|observed| {
                        [("agent", "agents"), ("vm", "vms"), ("storage", "storage")]
                            .into_iter()
                            .filter_map(|(kind, field)| {
                                let count = observed.get(field)?.as_u64()?;
                                Some((kind, count))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();
        Self {
            connections,
            alerts,
        }
    }
}

const STATUSES: [HealthStatus; 5] = [
    HealthStatus::Pending,
    HealthStatus::Healthy,
    HealthStatus::Degraded,
    HealthStatus::Failing,
    HealthStatus::Disabled,
];

impl Collector for StoreGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode_gauges(
            &mut encoder,
            "pylon_connection_status",
            "1 for the connection's current poll status, 0 for the others.",
            self.connections.iter().flat_map(|c| {
                STATUSES.into_iter().map(move |status| {
                    let [platform, connection] = connection_labels(c);
                    (
                        [platform, connection, ("status", status.as_str())],
                        i64::from(c.status == status),
                    )
                })
            }),
        )?;
        encode_gauges(
            &mut encoder,
            "pylon_poll_last_success_timestamp_seconds",
            "Unix time of the connection's last successful poll (absent before the first).",
            self.connections
                .iter()
                .filter_map(|c| Some((connection_labels(c), c.last_success_seconds?))),
        )?;
        encode_gauges(
            &mut encoder,
            "pylon_poll_consecutive_failures",
            "Failed polls since the connection's last success.",
            self.connections
                .iter()
                .map(|c| (connection_labels(c), c.consecutive_failures)),
        )?;
        encode_gauges(
            &mut encoder,
            "pylon_resources",
            "Canonical resources the connection contributed in its last successful poll, by type.",
            self.connections.iter().flat_map(|c| {
                c.resources.iter().map(move |(kind, count)| {
                    let [platform, connection] = connection_labels(c);
                    ([platform, connection, ("type", *kind)], *count)
                })
            }),
        )?;
        encode_gauges(
            &mut encoder,
            "pylon_alerts_active",
            "Open alerts by connection and severity (severities with none are left out).",
            self.alerts
                .iter()
                .map(|(platform, connection, severity, count)| {
                    (
                        [
                            ("platform", platform.as_str()),
                            ("connection", connection.as_str()),
                            ("severity", severity.as_str()),
                        ],
                        *count,
                    )
                }),
        )
    }
}

/// This replica's id and lease counters, when it runs with others on PostgreSQL. Every
/// series carries the `replica` label, so a dashboard summing over replicas sees the whole
/// cluster and one filtering by instance sees one replica.
#[derive(Debug)]
pub struct ReplicaLeases {
    pub replica_id: String,
    pub counts: LeaseCounts,
}

impl Collector for ReplicaLeases {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let labels = [("replica", self.replica_id.as_str())];
        encode_gauges(
            &mut encoder,
            "pylon_replica_info",
            "Always 1; the replica label is this process's id in the lease tables.",
            std::iter::once((labels, 1_u64)),
        )?;
        encode_gauges(
            &mut encoder,
            "pylon_leases_held",
            "Connection leases this replica holds (the connections it polls).",
            std::iter::once((labels, self.counts.held)),
        )?;
        let counts = self.counts;
        // Counters get their `_total` suffix from the encoder.
        for (name, help, value) in [
            (
                "pylon_lease_acquisitions",
                "Leases this replica took, free or expired.",
                counts.acquired,
            ),
            (
                "pylon_lease_takeovers",
                "Leases this replica took after another replica's lease expired (that replica died or hung).",
                counts.takeovers,
            ),
            (
                "pylon_lease_releases",
                "Leases this replica gave up to rebalance (a replica joined).",
                counts.released,
            ),
            (
                "pylon_leases_lost",
                "Leases this replica could not renew in time.",
                counts.lost,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

fn connection_labels(c: &ConnectionGauges) -> [(&'static str, &str); 2] {
    [("platform", &c.platform), ("connection", &c.id)]
}

/// Encodes one gauge family from `series`; nothing at all when it is empty, as the
/// registry does for its own empty families.
fn encode_gauges<L, V>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl Iterator<Item = (L, V)>,
) -> Result<(), std::fmt::Error>
where
    L: EncodeLabelSet,
    V: prometheus_client::encoding::EncodeGaugeValue,
{
    let mut series = series.peekable();
    if series.peek().is_none() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// The whole exposition: process counters from `polls` and `http`, per-connection state
/// from `store` (read from the store for this scrape).
///
/// The registry is assembled per scrape: the in-memory families are shared handles (a
/// clone is a reference count), and the store's gauges exist only for this scrape (see
/// [`StoreGauges`]). The registry writes its families in registration order, then the
/// collector's gauges.
pub fn render(
    polls: &PollMetrics,
    http: &HttpMetrics,
    store: StoreGauges,
) -> Result<String, std::fmt::Error> {
    render_replica(polls, http, store, None)
}

/// [`render`] plus, when this process is one of several replicas on PostgreSQL, its lease
/// series (see [`ReplicaLeases`]).
pub fn render_replica(
    polls: &PollMetrics,
    http: &HttpMetrics,
    store: StoreGauges,
    leases: Option<ReplicaLeases>,
) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    // Encoded as `pylon_build_info{version="…"} 1`, a gauge in the 0.0.4 format.
    registry.register(
        "pylon_build",
        "Always 1; the version label says which pylon is running",
        Info::new([("version", env!("CARGO_PKG_VERSION"))]),
    );
    registry.register(
        "pylon_poll_duration_seconds",
        "How long polls took (session, read and projection; successful or not)",
        polls.durations.clone(),
    );
    // Counters get their `_total` suffix from the encoder: `pylon_poll_failures_total`.
    registry.register(
        "pylon_poll_failures",
        "Failed polls by failure category since this process started",
        polls.failures.clone(),
    );
    registry.register_collector(Box::new(store));
    if let Some(leases) = leases {
        registry.register_collector(Box::new(leases));
    }
    registry.register(
        "pylon_http_requests",
        "HTTP requests answered since this process started, by method, matched route \
         pattern and status",
        http.requests.clone(),
    );
    registry.register(
        "pylon_http_request_duration_seconds",
        "Time to answer HTTP requests (until the response head), by method and matched \
         route pattern",
        http.durations.clone(),
    );
    let mut out = String::with_capacity(8192);
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_polls(polls: &PollMetrics) -> String {
        render(polls, &HttpMetrics::default(), StoreGauges::new(&[], &[])).unwrap()
    }

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
        let text = render_polls(&metrics);
        for line in [
            "# TYPE pylon_poll_duration_seconds histogram",
            "pylon_poll_duration_seconds_bucket{platform=\"p\",connection=\"c1\",le=\"0.05\"} 1",
            "pylon_poll_duration_seconds_bucket{platform=\"p\",connection=\"c1\",le=\"1\"} 2",
            "pylon_poll_duration_seconds_bucket{platform=\"p\",connection=\"c1\",le=\"300\"} 2",
            "pylon_poll_duration_seconds_bucket{platform=\"p\",connection=\"c1\",le=\"+Inf\"} 3",
            "pylon_poll_duration_seconds_count{platform=\"p\",connection=\"c1\"} 3",
            "# TYPE pylon_poll_failures_total counter",
            "pylon_poll_failures_total{platform=\"p\",connection=\"c1\",category=\"timeout\"} 1",
            "# TYPE pylon_build_info gauge",
            &format!(
                "pylon_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            ),
        ] {
            assert!(
                text.contains(&format!("{line}\n")),
                "missing {line:?} in:\n{text}"
            );
        }
        metrics.forget("c1");
        let text = render_polls(&metrics);
        assert!(!text.contains("c1"), "{text}");
        // Forgetting an unknown connection is not an error.
        metrics.forget("c1");
    }

    #[test]
    fn store_gauges_are_encoded_with_escaped_labels() {
        let store = StoreGauges {
            connections: vec![ConnectionGauges {
                platform: "p".into(),
                id: "c1".into(),
                status: HealthStatus::Failing,
                last_success_seconds: Some(1_700_000_000.5),
                consecutive_failures: 3,
                resources: vec![("vm", 7)],
            }],
            alerts: vec![("p".into(), "c1".into(), "a\"b\\c\nd".into(), 2)],
        };
        let text = render(&PollMetrics::default(), &HttpMetrics::default(), store).unwrap();
        for line in [
            "# TYPE pylon_connection_status gauge",
            "pylon_connection_status{platform=\"p\",connection=\"c1\",status=\"failing\"} 1",
            "pylon_connection_status{platform=\"p\",connection=\"c1\",status=\"healthy\"} 0",
            "pylon_poll_last_success_timestamp_seconds{platform=\"p\",connection=\"c1\"} 1700000000.5",
            "pylon_poll_consecutive_failures{platform=\"p\",connection=\"c1\"} 3",
            "pylon_resources{platform=\"p\",connection=\"c1\",type=\"vm\"} 7",
            "pylon_alerts_active{platform=\"p\",connection=\"c1\",severity=\"a\\\"b\\\\c\\nd\"} 2",
        ] {
            assert!(
                text.contains(&format!("{line}\n")),
                "missing {line:?} in:\n{text}"
            );
        }
    }

    #[test]
    fn http_labels_are_bounded() {
        for (method, expected) in [
            (Method::GET, "GET"),
            (Method::DELETE, "DELETE"),
            (Method::from_bytes(b"PROPFIND").unwrap(), OTHER_METHOD),
        ] {
            assert_eq!(method_label(&method), expected);
        }
        assert_eq!(
            route_label(Some("/api/resources/{id}")),
            "/api/resources/{id}"
        );
        assert_eq!(route_label(None), UNMATCHED_ROUTE);
    }

    #[test]
    fn http_requests_are_counted_by_route_pattern() {
        let http = HttpMetrics::default();
        let route = Some("/api/resources/{id}");
        http.record(
            &Method::GET,
            route,
            StatusCode::OK,
            Duration::from_millis(3),
        );
        http.record(
            &Method::GET,
            route,
            StatusCode::NOT_FOUND,
            Duration::from_millis(30),
        );
        http.record(
            &Method::GET,
            None,
            StatusCode::NOT_FOUND,
            Duration::from_millis(1),
        );
        let text = render(&PollMetrics::default(), &http, StoreGauges::new(&[], &[])).unwrap();
        for line in [
            "# TYPE pylon_http_requests_total counter",
            "pylon_http_requests_total{method=\"GET\",route=\"/api/resources/{id}\",status=\"200\"} 1",
            "pylon_http_requests_total{method=\"GET\",route=\"/api/resources/{id}\",status=\"404\"} 1",
            "pylon_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
            "# TYPE pylon_http_request_duration_seconds histogram",
            "pylon_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/resources/{id}\",le=\"0.005\"} 1",
            "pylon_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/resources/{id}\",le=\"+Inf\"} 2",
            "pylon_http_request_duration_seconds_count{method=\"GET\",route=\"unmatched\"} 1",
        ] {
            assert!(
                text.contains(&format!("{line}\n")),
                "missing {line:?} in:\n{text}"
            );
        }
    }
}
