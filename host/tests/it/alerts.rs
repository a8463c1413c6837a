//! Alerts: the lifecycle the store applies to the conditions each successful poll reports
//! (open once, stay active, resolve, reopen as a new alert), its survival across a restart
//! and removal with the connection.

use crate::support::{offline_draft, TestApp};
use axum::http::StatusCode;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use pylon_core::model::{Alert, AlertCondition, AlertSeverity, AlertSource, AlertState};
use pylon_core::PollHealth;
use pylon_host::store::{AlertQuery, PollAlerts};

fn condition(resource: &str, key: &str, severity: AlertSeverity) -> AlertCondition {
    AlertCondition {
        resource_id: resource.into(),
        key: key.into(),
        source: AlertSource::Health,
        severity,
        name: format!("{key} on {resource}"),
        message: format!("{resource} reports {key}"),
        since: None,
        acknowledged: false,
    }
}

/// Records a successful poll of `id` at `at` reporting `conditions` (and no resources: the
/// lifecycle does not depend on them).
async fn poll(app: &TestApp, id: &str, at: DateTime<Utc>, conditions: &[AlertCondition]) {
    let mut health = PollHealth::new(60, true);
    health.record_success(at, false);
    let alerts = PollAlerts {
        conditions,
        observed_at: at,
    };
    assert!(app
        .state
        .store
        .record_poll(id, &health, &serde_json::json!({}), &[], alerts)
        .await
        .unwrap());
}

async fn stored(app: &TestApp, id: &str) -> Vec<Alert> {
    let query = AlertQuery {
        connection_id: Some(id.into()),
        limit: 1000,
        ..AlertQuery::default()
    };
    app.state.store.list_alerts(&query).await.unwrap()
}

/// `(resource, state, severity, resolved)` of each stored alert, in list order.
fn summary(alerts: &[Alert]) -> Vec<(String, AlertState, AlertSeverity, bool)> {
    alerts
        .iter()
        .map(|a| {
            (
                a.resource_id.clone(),
                a.state,
                a.severity,
                a.resolved_at.is_some(),
            )
        })
        .collect()
}

#[tokio::test]
async fn alerts_open_once_follow_their_condition_resolve_reopen_and_survive_restart() {
    let app = TestApp::new().await;
    let id = app.create(offline_draft("alerts")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let t0 = Utc::now();
    let (a, b) = ("c-vm-a", "c-vm-b");

    poll(
        &app,
        &id,
        t0,
        &[
            condition(a, "health", AlertSeverity::Critical),
            condition(b, "health", AlertSeverity::Warning),
            // A repeated condition in one poll counts once.
            condition(b, "health", AlertSeverity::Warning),
        ],
    )
    .await;
    let first = stored(&app, &id).await;
    assert_eq!(
        summary(&first),
        [
            (a.into(), AlertState::Active, AlertSeverity::Critical, false),
            (b.into(), AlertState::Active, AlertSeverity::Warning, false),
        ]
    );
    assert!(first.iter().all(|alert| alert.since == t0.trunc_subsecs(3)));
    assert!(first.iter().all(|alert| alert.connection_id == id));

    // Still reported: the same alerts, no duplicates; a changed severity is followed.
    let t1 = t0 + Duration::seconds(60);
    poll(
        &app,
        &id,
        t1,
        &[
            condition(a, "health", AlertSeverity::Critical),
            condition(b, "health", AlertSeverity::Critical),
        ],
    )
    .await;
    let second = stored(&app, &id).await;
    assert_eq!(
        second.iter().map(|x| &x.id).collect::<Vec<_>>(),
        first.iter().map(|x| &x.id).collect::<Vec<_>>()
    );
    assert_eq!(second[1].severity, AlertSeverity::Critical);
    assert_eq!(second[1].since, first[1].since);

    // `a` cleared: its alert resolves at the poll's time, `b` stays active.
    let t2 = t1 + Duration::seconds(60);
    poll(
        &app,
        &id,
        t2,
        &[condition(b, "health", AlertSeverity::Critical)],
    )
    .await;
    let third = stored(&app, &id).await;
    assert_eq!(third[0].state, AlertState::Resolved);
    assert_eq!(third[0].resolved_at, Some(t2.trunc_subsecs(3)));
    assert_eq!(third[1].state, AlertState::Active);

    // `a` returns: a new alert with its own id; the resolved one stays as history.
    let t3 = t2 + Duration::seconds(60);
    let mut returned = condition(a, "health", AlertSeverity::Warning);
    returned.since = Some(t3 - Duration::seconds(5));
    poll(
        &app,
        &id,
        t3,
        &[condition(b, "health", AlertSeverity::Critical), returned],
    )
    .await;
    let fourth = stored(&app, &id).await;
    assert_eq!(fourth.len(), 3, "{fourth:?}");
    assert_eq!(fourth[2].resource_id, a);
    assert_eq!(fourth[2].state, AlertState::Active);
    assert_eq!(
        fourth[2].since,
        (t3 - Duration::seconds(5)).trunc_subsecs(3)
    );
    assert_ne!(fourth[2].id, fourth[0].id);

    // A restart keeps every alert as it was, and the next poll carries on from there.
    let app = TestApp::open(app.stop().await).await;
    assert_eq!(stored(&app, &id).await, fourth);
    poll(&app, &id, t3 + Duration::seconds(60), &[]).await;
    assert!(stored(&app, &id)
        .await
        .iter()
        .all(|alert| alert.state == AlertState::Resolved));

    // Deleting the connection removes its alerts.
    let (status, _) = app.delete(&format!("/api/vmware/connections/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(stored(&app, &id).await.is_empty());
}

/// GETs an alert list and returns its items' resource ids and states, and the next cursor.
async fn page(app: &TestApp, query: &str) -> (Vec<(String, String)>, Option<String>) {
    let (status, body) = app.get(&format!("/api/alerts?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    let items = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["resourceId"].as_str().unwrap().to_owned(),
                a["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (items, body["nextCursor"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn the_alert_list_filters_pages_and_refuses_bad_filters() {
    let app = TestApp::new().await;
    let one = app.create(offline_draft("one")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let two = app.create(offline_draft("two")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let t0 = Utc::now();
    poll(
        &app,
        &one,
        t0,
        &[
            condition("one-vm-1", "health", AlertSeverity::Critical),
            condition("one-vm-2", "health", AlertSeverity::Warning),
            condition("one-vm-3", "health", AlertSeverity::Info),
        ],
    )
    .await;
    poll(
        &app,
        &two,
        t0,
        &[condition("two-vm-1", "health", AlertSeverity::Critical)],
    )
    .await;
    // `one-vm-3` clears.
    poll(
        &app,
        &one,
        t0 + Duration::seconds(60),
        &[
            condition("one-vm-1", "health", AlertSeverity::Critical),
            condition("one-vm-2", "health", AlertSeverity::Warning),
        ],
    )
    .await;

    let active = |r: &str| (r.to_owned(), "active".to_owned());
    let resolved = |r: &str| (r.to_owned(), "resolved".to_owned());
    for (query, expected) in [
        (
            "",
            vec![
                active("one-vm-1"),
                active("one-vm-2"),
                resolved("one-vm-3"),
                active("two-vm-1"),
            ],
        ),
        (
            "state=active",
            vec![active("one-vm-1"), active("one-vm-2"), active("two-vm-1")],
        ),
        ("state=resolved", vec![resolved("one-vm-3")]),
        (
            "severity=critical",
            vec![active("one-vm-1"), active("two-vm-1")],
        ),
        (&format!("connection={two}"), vec![active("two-vm-1")]),
        ("resource=one-vm-2", vec![active("one-vm-2")]),
        (
            &format!("connection={one}&severity=warning&state=active"),
            vec![active("one-vm-2")],
        ),
        ("resource=nothing-here", vec![]),
    ] {
        let (items, next) = page(&app, query).await;
        assert_eq!(items, expected, "{query}");
        assert_eq!(next, None, "{query}");
    }

    // A real answer, with active and resolved alerts, matches the published schema.
    let (_, body) = app.get("/api/alerts").await;
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../schemas/alert-page.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let problems: Vec<String> = jsonschema::validator_for(&schema)
        .unwrap()
        .iter_errors(&body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}\n{body:#}");

    // Pages of one cover every alert once, in the order of the full list.
    let (all, _) = page(&app, "").await;
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("limit=1&cursor={c}"),
            None => "limit=1".to_owned(),
        };
        let (items, next) = page(&app, &query).await;
        assert_eq!(items.len(), 1, "{query}");
        walked.extend(items);
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(walked, all);

    for (query, field) in [
        ("state=open", "state"),
        ("severity=red", "severity"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("cursor=%%%", "cursor"),
        ("sort=since", "sort"),
    ] {
        let (status, body) = app.get(&format!("/api/alerts?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["code"], "validation_error");
        assert!(
            body["details"]["fields"][field].is_string(),
            "{query}: {body}"
        );
    }

    // Reading alerts takes `monitoring:read`.
    let settings = app.token(&["settings:read"]).await;
    let (status, body) = app
        .call(
            axum::http::Method::GET,
            "/api/alerts",
            Some(&settings),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["details"]["requiredScope"], "monitoring:read");
    let monitoring = app.token(&["monitoring:read"]).await;
    let (status, body) = app
        .call(
            axum::http::Method::GET,
            "/api/alerts",
            Some(&monitoring),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn alert_items(app: &TestApp, query: &str) -> Vec<serde_json::Value> {
    let (status, body) = app.get(&format!("/api/alerts?limit=1000&{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// The simulator's health rollup through the scheduler: a red VM and a yellow host open one
/// alert each, later polls keep them without duplicates, a VM back to green resolves its
/// alert, a restart keeps them all and a failed poll changes nothing.
#[tokio::test]
async fn simulator_health_alerts_open_stay_resolve_and_survive_a_restart() {
    use pylon_vcsim::{Simulator, SimulatorOptions};

    let sim = Simulator::start(SimulatorOptions::default()).await;
    let app = TestApp::new().await;
    let id = app.polled_sim_connection(&sim).await;
    assert_eq!(alert_items(&app, "").await, Vec::<serde_json::Value>::new());

    sim.set_overall_status("VirtualMachine", "DC0_H0_VM0", "red")
        .await;
    sim.set_overall_status("HostSystem", "DC0_H0", "yellow")
        .await;
    app.next_poll(&id).await;
    let opened = alert_items(&app, "state=active").await;
    let (_, resources) = app
        .get(&format!("/api/resources?limit=1000&connection={id}"))
        .await;
    let id_of = |name: &str| -> String {
        let found: Vec<&serde_json::Value> = resources["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"] == name)
            .collect();
        assert_eq!(found.len(), 1, "{name}");
        found[0]["id"].as_str().unwrap().to_owned()
    };
    let by_name = |alerts: &[serde_json::Value], name: &str| -> serde_json::Value {
        let resource = id_of(name);
        let found: Vec<&serde_json::Value> = alerts
            .iter()
            .filter(|a| a["resourceId"] == resource.as_str())
            .collect();
        assert_eq!(found.len(), 1, "{name}: {alerts:#?}");
        found[0].clone()
    };
    assert_eq!(opened.len(), 2, "{opened:#?}");
    let vm = by_name(&opened, "DC0_H0_VM0");
    let host = by_name(&opened, "DC0_H0");
    assert_eq!(vm["severity"], "critical", "{vm}");
    assert_eq!(vm["source"], "health");
    assert_eq!(vm["connectionId"], id.as_str());
    assert_eq!(host["severity"], "warning", "{host}");
    // Prometheus sees them too.
    let exposition = app.metrics_text().await;
    for severity in ["critical", "warning"] {
        let line = format!(
            "pylon_alerts_active{{platform=\"vmware-vsphere\",connection=\"{id}\",severity=\"{severity}\"}} 1\n"
        );
        assert!(
            exposition.contains(&line),
            "missing {line:?} in:\n{exposition}"
        );
    }

    // Later polls keep the same two alerts.
    app.next_poll(&id).await;
    app.next_poll(&id).await;
    assert_eq!(alert_items(&app, "").await, opened);

    // The VM turns green: its alert resolves, the host's stays.
    sim.set_overall_status("VirtualMachine", "DC0_H0_VM0", "green")
        .await;
    app.next_poll(&id).await;
    let resolved = alert_items(&app, "state=resolved").await;
    assert_eq!(resolved.len(), 1, "{resolved:#?}");
    assert_eq!(resolved[0]["id"], vm["id"]);
    assert!(resolved[0]["resolvedAt"].is_string(), "{}", resolved[0]);
    assert_eq!(alert_items(&app, "state=active").await, vec![host.clone()]);

    // A restart keeps every alert, and polls after it open no duplicate.
    let before = alert_items(&app, "").await;
    app.state.scheduler.shutdown().await;
    let app = TestApp::open(app.stop().await).await;
    assert_eq!(alert_items(&app, "").await, before);
    let item = app.next_poll(&id).await;
    assert_eq!(item["poll"]["status"], "healthy", "{item}");
    assert_eq!(alert_items(&app, "").await, before);

    // A failed poll changes nothing, though the host's condition is not reported.
    sim.stop().await;
    let item = app.next_poll(&id).await;
    assert_eq!(item["poll"]["status"], "failing", "{item}");
    assert_eq!(alert_items(&app, "").await, before);
    app.state.scheduler.shutdown().await;
}

/// A triggered alarm in the simulator (which has no alarm definitions, like a vCenter whose
/// definition was deleted or is unreadable): one active `alarm` alert with the alarm's time,
/// named by the alarm id, the poll `degraded` with an issue naming the alarm; cleared, the
/// alert resolves.
#[tokio::test]
async fn simulator_triggered_alarms_open_and_resolve_alarm_alerts() {
    use crate::support::sim_draft;
    use pylon_vcsim::{Simulator, SimulatorOptions};

    let sim = Simulator::start(SimulatorOptions::default()).await;
    let app = TestApp::new().await;
    let id = app.create(sim_draft(&sim, "lab", "pw")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.next_poll(&id).await;
    let before = Utc::now() - Duration::seconds(1);
    sim.set_triggered_alarm("VirtualMachine", "DC0_H0_VM0", "alarm-7", "red")
        .await;
    let item = app.next_poll(&id).await;
    assert_eq!(item["poll"]["status"], "degraded", "{item}");
    let issues = item["observed"]["issues"].as_array().unwrap();
    assert!(
        issues
            .iter()
            .any(|i| i["stage"] == "alarms" && i["message"].as_str().unwrap().contains("alarm-7")),
        "{item}"
    );
    let active = alert_items(&app, "state=active").await;
    assert_eq!(active.len(), 1, "{active:#?}");
    let alert = &active[0];
    assert_eq!(alert["source"], "alarm");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["name"], "Alarm alarm-7");
    assert_eq!(alert["acknowledged"], false);
    let since: DateTime<Utc> = alert["since"].as_str().unwrap().parse().unwrap();
    assert!(since >= before, "{alert}");
    let (_, resource) = app
        .get(&format!(
            "/api/resources/{}",
            alert["resourceId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(resource["name"], "DC0_H0_VM0");

    // Still triggered: the same alert; cleared: it resolves.
    app.next_poll(&id).await;
    assert_eq!(alert_items(&app, "").await, active);
    sim.set_triggered_alarm("VirtualMachine", "DC0_H0_VM0", "alarm-7", "none")
        .await;
    app.next_poll(&id).await;
    let all = alert_items(&app, "").await;
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["id"], alert["id"]);
    assert_eq!(all[0]["state"], "resolved");
    app.state.scheduler.shutdown().await;
}
