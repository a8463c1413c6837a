//! Feeds in the host: event and task history end to end against the simulator (served per
//! resource, resumed across a restart without a gap), the store's rules for feed data
//! (duplicates dropped, retention, bucketed series, the cursor), and the routes' input checks
//! and `not_supported` answers.

use crate::support::{offline_draft, TestApp};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, DurationRound, Utc};
use pylon_core::feeds::{FeedCursor, Feeds, HistoryKind, HistoryRecord, MetricName, SampleRun};
use pylon_host::store::{FeedRetention, HistoryQuery, MetricQuery};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const FILE_INVENTORY: &str = include_str!("../../../providers/file/examples/inventory.json");

/// The id of some resource of `connection`, once its first poll has stored them.
pub async fn first_resource(app: &TestApp, connection: &str) -> String {
    let started = std::time::Instant::now();
    loop {
        let (_, page) = app
            .get(&format!("/api/resources?limit=1&connection={connection}"))
            .await;
        if let Some(id) = page["items"][0]["id"].as_str() {
            return id.to_owned();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no resources: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn resource_id(app: &TestApp, connection: &str, name: &str) -> String {
    let (status, page) = app
        .get(&format!(
            "/api/resources?limit=1000&connection={connection}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no resource {name}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every history item of a resource, walking the pages `limit` at a time.
async fn all_history(app: &TestApp, resource: &str, query: &str, limit: u32) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/resources/{resource}/history?limit={limit}{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let page_items = page["items"].as_array().unwrap();
        assert!(page_items.len() <= limit as usize);
        items.extend(page_items.iter().cloned());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

/// The resource's history once it holds a record of `record_type`: feeds are recorded in a
/// second phase, just after the poll that `next_poll` waits for.
async fn history_with(app: &TestApp, resource: &str, record_type: &str) -> Vec<Value> {
    let started = std::time::Instant::now();
    loop {
        let history = all_history(app, resource, "", 100).await;
        if types_of(&history).iter().any(|t| t == record_type) {
            return history;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no {record_type} in {history:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn types_of(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn simulator_history_is_served_per_resource_and_resumes_after_a_restart_without_a_gap() {
    use pylon_vcsim::{Simulator, SimulatorOptions};

    let sim = Simulator::start(SimulatorOptions::default()).await;
    let app = TestApp::new().await;
    let id = app.polled_sim_connection(&sim).await;
    let vm = resource_id(&app, &id, "DC0_H0_VM0").await;

    sim.power_off_vm("DC0_H0_VM0").await;
    let item = app.next_poll(&id).await;
    assert_eq!(item["poll"]["status"], "healthy", "{item}");
    let history = history_with(&app, &vm, "VmPoweredOffEvent").await;
    let event = history
        .iter()
        .find(|h| h["type"] == "VmPoweredOffEvent")
        .unwrap();
    assert_eq!(event["kind"], "event");
    assert_eq!(event["resourceId"], vm.as_str());
    assert_eq!(event["connectionId"], id.as_str());
    assert!(event["at"].as_str().unwrap().ends_with('Z'));
    let tasks = all_history(&app, &vm, "&kind=task", 100).await;
    assert!(!tasks.is_empty(), "the power-off task");
    assert!(tasks.iter().all(|t| t["kind"] == "task"), "{tasks:#?}");
    // Newest first, and paging one at a time walks the same list.
    let ats: Vec<&str> = history.iter().map(|h| h["at"].as_str().unwrap()).collect();
    assert!(ats.windows(2).all(|w| w[0] >= w[1]), "{ats:?}");
    assert_eq!(all_history(&app, &vm, "", 1).await, history);

    // Stop Pylon; the VM changes while nothing watches; Pylon comes back.
    let dir = app.stop().await;
    sim.power_on_vm("DC0_H0_VM0").await;
    let app = TestApp::open(dir).await;
    let item = app.next_poll(&id).await;
    assert_eq!(item["poll"]["status"], "healthy", "{item}");
    // The event that happened while Pylon was down is there.
    let after = history_with(&app, &vm, "VmPoweredOnEvent").await;
    let ids: Vec<&str> = after.iter().map(|h| h["id"].as_str().unwrap()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "no record twice: {ids:?}");
    assert!(
        history.iter().all(|h| after.contains(h)),
        "what was stored before the restart is still there"
    );
}

/// `seconds` after a base fixed for the whole run: 90 minutes ago on a whole minute. The
/// default retention keeps all of the hour of samples after it; a 1-hour retention drops
/// about its older half, whenever the test runs.
fn at(seconds: i64) -> DateTime<Utc> {
    static BASE: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    *BASE.get_or_init(|| {
        Utc::now().duration_trunc(Duration::minutes(1)).unwrap() - Duration::minutes(90)
    }) + Duration::seconds(seconds)
}

fn record(connection: &str, n: u32, seconds: i64, resource: Option<&str>) -> HistoryRecord {
    HistoryRecord {
        id: format!("event-{n}"),
        connection_id: connection.to_owned(),
        at: at(seconds),
        kind: if n.is_multiple_of(2) {
            HistoryKind::Task
        } else {
            HistoryKind::Event
        },
        record_type: "VmPoweredOffEvent".into(),
        message: format!("record {n}"),
        user: Some("alice".into()),
        resource_id: resource.map(str::to_owned),
    }
}

#[tokio::test]
async fn feed_records_are_stored_once_pruned_by_retention_and_bucketed() {
    let app = TestApp::new().await;
    let id = app.create(offline_draft("feeds")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let store = app.state.store.clone();
    assert_eq!(store.feed_cursor(&id).await.unwrap(), FeedCursor(None));

    let history: Vec<HistoryRecord> = (1..=6)
        .map(|n| record(&id, n, i64::from(n), Some("res-1")))
        .collect();
    let samples = vec![SampleRun {
        resource_id: "res-1".into(),
        metric: MetricName::CpuPercent,
        points: (0..180).map(|i| (at(i * 20), i as f64)).collect(),
    }];
    let feeds = Feeds {
        history: history.clone(),
        samples: samples.clone(),
        issues: Vec::new(),
        cursor: FeedCursor(Some("{\"events\":1}".into())),
    };
    let retention = FeedRetention::default();
    assert!(store.record_feeds(&id, &feeds, retention).await.unwrap());
    // The same records and samples again (a replay after a crash) store nothing new.
    assert!(store.record_feeds(&id, &feeds, retention).await.unwrap());
    assert_eq!(
        store.feed_cursor(&id).await.unwrap(),
        FeedCursor(Some("{\"events\":1}".into()))
    );
    let query = HistoryQuery {
        resource_id: "res-1".into(),
        kind: None,
        since: None,
        after: None,
        limit: 100,
    };
    let stored = store.list_history(&query).await.unwrap();
    assert_eq!(stored.len(), 6, "each record once");
    assert_eq!(stored[0].id, "event-6", "newest first");
    assert_eq!(stored, history.iter().rev().cloned().collect::<Vec<_>>());
    let raw = MetricQuery {
        resource_id: "res-1".into(),
        metric: None,
        since: at(0),
        until: at(3600),
        bucket_seconds: 1,
    };
    let series = store.metric_points(&raw).await.unwrap();
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].1.len(), 180, "each sample once");

    // The series the metrics route serves: at most `maxPoints`, each the mean of its bucket.
    let bucketed = pylon_host::api::feeds::metric_series(
        store.as_ref(),
        "res-1",
        Some(MetricName::CpuPercent),
        at(0),
        at(3599),
        18,
    )
    .await
    .unwrap();
    assert_eq!(bucketed.len(), 1);
    let points = &bucketed[0].points;
    assert!(points.len() <= 18 && points.len() >= 17, "{}", points.len());
    // Buckets are aligned to multiples of their width (200 s), so the first and last may be
    // partial; every whole one holds 10 samples of consecutive values: its mean is x.5.
    let whole = &points[1..points.len() - 1];
    assert!(whole.iter().all(|(_, v)| v.fract() == 0.5), "{points:?}");
    assert!(
        whole
            .windows(2)
            .all(|w| (w[1].0 - w[0].0).num_seconds() == 200),
        "{points:?}"
    );
    assert_eq!(bucketed[0].unit, MetricName::CpuPercent.unit());

    // Retention: rows beyond the cap and records older than the window go.
    let tight = FeedRetention {
        history_days: 1,
        history_rows_per_connection: 4,
        metrics_hours: 1,
    };
    let old = HistoryRecord {
        at: Utc::now() - Duration::days(3),
        ..record(&id, 99, 0, Some("res-1"))
    };
    let newer = Feeds {
        history: vec![old, record(&id, 7, 7, Some("res-1"))],
        samples: Vec::new(),
        issues: Vec::new(),
        cursor: FeedCursor(Some("{\"events\":2}".into())),
    };
    assert!(store.record_feeds(&id, &newer, tight).await.unwrap());
    let kept: Vec<String> = store
        .list_history(&query)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(kept, ["event-7", "event-6", "event-5", "event-4"]);
    let remaining = store.metric_points(&raw).await.unwrap();
    let cutoff = (Utc::now() - Duration::hours(1)).timestamp();
    assert!(
        remaining
            .iter()
            .flat_map(|(_, p)| p)
            .all(|(t, _)| t.timestamp() >= cutoff),
        "samples older than an hour are gone"
    );
    assert!(remaining[0].1.len() < 180);

    // Feeds of a connection that is gone are refused, and deleting one removes its feeds.
    assert!(!store
        .record_feeds("no-such-connection", &feeds, retention)
        .await
        .unwrap());
    let (status, _) = app.delete(&format!("/api/vmware/connections/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(store.list_history(&query).await.unwrap().is_empty());
    assert!(store.metric_points(&raw).await.unwrap().is_empty());
}

#[tokio::test]
async fn feed_routes_check_their_input_and_say_what_a_provider_does_not_collect() {
    let app = TestApp::new().await;
    // An unknown resource is not found, for both routes.
    for route in ["history", "metrics"] {
        let (status, body) = app.get(&format!("/api/resources/nope/{route}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["code"], "not_found");
    }
    // Bad input is a 400 naming each field, checked before anything is read.
    let (status, body) = app
        .get("/api/resources/x/history?kind=alarm&since=yesterday&limit=0&cursor=%%&extra=1")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields = body["details"]["fields"].as_object().unwrap();
    for field in ["kind", "since", "limit", "extra"] {
        assert!(fields.contains_key(field), "{field}: {body}");
    }
    let (status, body) = app
        .get("/api/resources/x/metrics?metric=cpu&since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z&maxPoints=5000")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields = body["details"]["fields"].as_object().unwrap();
    for field in ["metric", "since", "maxPoints"] {
        assert!(fields.contains_key(field), "{field}: {body}");
    }
    assert!(
        fields["metric"].as_str().unwrap().contains("cpuPercent"),
        "the message lists the canonical names: {body}"
    );

    // A file-provider resource: the provider declares neither history nor metrics.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.json");
    std::fs::write(&path, FILE_INVENTORY).unwrap();
    let (status, created) = app
        .post(
            "/api/file/connections",
            json!({"name": "demo", "path": path.to_str().unwrap()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    let host = first_resource(&app, id).await;
    for (route, what) in [("history", "history"), ("metrics", "performance history")] {
        let (status, body) = app.get(&format!("/api/resources/{host}/{route}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["code"], "not_supported", "{body}");
        let message = body["error"].as_str().unwrap();
        assert!(
            message.contains("not supported by this provider"),
            "{message}"
        );
        assert!(
            message.contains("static-file") && message.contains(what),
            "{message}"
        );
    }
    // A token without monitoring:read cannot read either.
    let settings_only = app.token(&["settings:read"]).await;
    let (status, _) = app
        .call(
            axum::http::Method::GET,
            &format!("/api/resources/{host}/history"),
            Some(&settings_only),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
