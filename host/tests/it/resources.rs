//! `/api/resources`: filters, stable cursor paging, 404s and bad queries, over resources
//! recorded through the store exactly as a poll records them.

use crate::support::{offline_draft, TestApp};
use axum::http::StatusCode;
use chrono::Utc;
use pylon_core::model::ContributionSummary;
use pylon_core::model::{
    LatestMetrics, Projection, Resource, ResourceStatus, ResourceType, Topology, TopologyCounts,
};
use pylon_core::{PollHealth, SystemIdentity};
use pylon_host::store::PollAlerts;
use serde_json::{Map, Value};

/// A poll that reports no alert conditions.
fn no_alerts() -> PollAlerts<'static> {
    PollAlerts {
        conditions: &[],
        observed_at: Utc::now(),
    }
}

fn resource(connection: &str, kind: ResourceType, n: usize) -> Resource {
    Resource {
        id: format!("{connection}-{}-{n:04}", kind.as_str()),
        resource_type: kind,
        platform: "vmware-vsphere".into(),
        connection_id: connection.into(),
        name: format!("{}-{n}", kind.as_str()),
        status: ResourceStatus::Online,
        identity: Map::new(),
        relations: vec![],
        topology: Topology::default(),
        metrics: LatestMetrics::default(),
        details: Map::new(),
        last_seen_at: Utc::now(),
    }
}

/// Records a poll of `agents` hosts and `vms` VMs for a new connection; returns its id.
async fn seeded(app: &TestApp, name: &str, agents: usize, vms: usize) -> String {
    let item = app.create(offline_draft(name)).await;
    let id = item["id"].as_str().unwrap().to_owned();
    let mut resources: Vec<Resource> = (0..agents)
        .map(|n| resource(&id, ResourceType::Agent, n))
        .collect();
    resources.extend((0..vms).map(|n| resource(&id, ResourceType::Vm, n)));
    record(app, &id, resources).await;
    id
}

#[tokio::test]
async fn pages_cover_every_resource_once_in_stable_order() {
    let app = TestApp::new().await;
    // More than one multi-row upsert batch (500 rows) for connection a.
    let a = seeded(&app, "a", 3, 1250).await;
    let b = seeded(&app, "b", 2, 10).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/resources?limit=100&cursor={c}"),
            None => "/api/resources?limit=100".to_owned(),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 100);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 1265);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "ordered by id, no duplicates");

    let count = |v: &Value| v["items"].as_array().unwrap().len();
    assert_eq!(
        count(
            &app.get(&format!("/api/resources?connection={a}&limit=1000"))
                .await
                .1
        ),
        1000
    );
    assert_eq!(
        count(
            &app.get(&format!("/api/resources?connection={b}&type=agent"))
                .await
                .1
        ),
        2
    );
    assert_eq!(count(&app.get("/api/resources?type=agent").await.1), 5);
    assert_eq!(count(&app.get("/api/resources?type=storage").await.1), 0);
    assert_eq!(count(&app.get("/api/resources?platform=other").await.1), 0);
    assert_eq!(
        count(&app.get("/api/resources?q=VM-24&limit=1000").await.1),
        11,
        "vm-24 and vm-240..249"
    );
    assert_eq!(
        count(&app.get("/api/resources?q=%25").await.1),
        0,
        "wildcards are literal"
    );

    let (status, one) = app.get(&format!("/api/resources/{a}-vm-0007")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["name"], "vm-7");
    assert_eq!(one["type"], "vm");
    assert_eq!(one["connectionId"], a);

    // The list item's observed summary agrees with the resources by construction.
    let item = app.item(&a).await;
    assert_eq!(item["observed"]["agents"], 3);
    assert_eq!(item["observed"]["vms"], 1250);
    assert_eq!(item["poll"]["status"], "disabled");
}

#[tokio::test]
async fn bad_queries_and_unknown_ids() {
    let app = TestApp::new().await;
    for (query, field) in [
        ("type=datacenter", "type"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("cursor=%%%", "cursor"),
        ("sort=name", "sort"),
    ] {
        let (status, body) = app.get(&format!("/api/resources?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["code"], "validation_error");
        assert!(
            body["details"]["fields"][field].is_string(),
            "{query}: {body}"
        );
    }
    let (status, body) = app.get("/api/resources/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn deleting_a_connection_removes_its_resources() {
    let app = TestApp::new().await;
    let a = seeded(&app, "a", 2, 2).await;
    let b = seeded(&app, "b", 1, 1).await;
    app.delete(&format!("/api/vmware/connections/{a}")).await;
    let (_, page) = app.get("/api/resources").await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|id| id.starts_with(&b)), "{ids:?}");
}

/// Records `resources` as the next successful poll of `id`.
async fn record(app: &TestApp, id: &str, resources: Vec<Resource>) {
    let projection = Projection {
        system: SystemIdentity::default(),
        resources,
        topology: TopologyCounts::default(),
        issues: vec![],
        collected_at: Utc::now(),
        alerts: vec![],
    };
    let observed = serde_json::to_value(ContributionSummary::from_projection(&projection)).unwrap();
    let mut health = PollHealth::new(60, true);
    health.record_success(Utc::now(), false);
    assert!(app
        .state
        .store
        .record_poll(id, &health, &observed, &projection.resources, no_alerts())
        .await
        .unwrap());
}

#[tokio::test]
async fn later_polls_apply_changes_removals_and_additions_and_move_last_seen() {
    let app = TestApp::new().await;
    let id = seeded(&app, "a", 0, 3).await;
    let (_, first) = app.get("/api/resources?type=vm").await;
    let first = first["items"].as_array().unwrap().clone();
    assert_eq!(first.len(), 3);

    // Next poll: VM 0 renamed, VM 1 unchanged, VM 2 gone, VM 3 new; all seen later.
    let seen = Utc::now() + chrono::Duration::seconds(30);
    let at = |mut r: Resource| {
        r.last_seen_at = seen;
        r
    };
    let mut renamed = resource(&id, ResourceType::Vm, 0);
    renamed.name = "renamed".into();
    record(
        &app,
        &id,
        vec![
            at(renamed),
            at(resource(&id, ResourceType::Vm, 1)),
            at(resource(&id, ResourceType::Vm, 3)),
        ],
    )
    .await;

    let (_, second) = app.get("/api/resources?type=vm").await;
    let items = second["items"].as_array().unwrap();
    let names: Vec<&str> = items.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["renamed", "vm-1", "vm-3"]);
    let expected_seen = seen.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for item in items {
        assert_eq!(
            item["lastSeenAt"].as_str().unwrap()[..19],
            expected_seen[..19],
            "every resource of the poll is marked seen: {item}"
        );
    }
    // The unchanged resource reads back exactly as before, but for lastSeenAt.
    let mut before = first[1].clone();
    let mut after = items[1].clone();
    before.as_object_mut().unwrap().remove("lastSeenAt");
    after.as_object_mut().unwrap().remove("lastSeenAt");
    assert_eq!(before, after);
    let (status, _) = app
        .get(&format!(
            "/api/resources/{}",
            first[2]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a vanished resource is removed"
    );
}

#[tokio::test]
async fn an_unchanged_poll_moves_last_seen_without_rewriting_resources() {
    let app = TestApp::new().await;
    let id = seeded(&app, "a", 1, 2).await;
    let (_, before) = app.get("/api/resources").await;
    let later = Utc::now() + chrono::Duration::seconds(90);
    let mut health = PollHealth::new(60, true);
    health.record_success(later, false);
    assert!(app
        .state
        .store
        .record_unchanged_poll(&id, &health, &serde_json::json!({"vms": 2}), later)
        .await
        .unwrap());
    let (_, after) = app.get("/api/resources").await;
    let expected = later.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (before, after) = (
        before["items"].as_array().unwrap(),
        after["items"].as_array().unwrap(),
    );
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(after) {
        assert_eq!(a["lastSeenAt"], expected.as_str(), "{a}");
        let (mut b, mut a) = (b.clone(), a.clone());
        b.as_object_mut().unwrap().remove("lastSeenAt");
        a.as_object_mut().unwrap().remove("lastSeenAt");
        assert_eq!(a, b);
    }
    let (_, one) = app
        .get(&format!(
            "/api/resources/{}",
            before[0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(one["lastSeenAt"], expected.as_str());
    // A connection that is gone records nothing.
    assert!(!app
        .state
        .store
        .record_unchanged_poll("no-such-connection", &health, &serde_json::json!({}), later)
        .await
        .unwrap());
}
