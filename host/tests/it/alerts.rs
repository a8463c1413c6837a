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
    let app = TestApp::open(app.stop()).await;
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
