//! The two test routes against the real vCenter simulator: draft tests store nothing,
//! saved tests reuse the stored secret, bodyless saved tests record health, overlay tests
//! do not.

use crate::support::{sim_draft, TestApp};
use axum::http::StatusCode;
use pylon_vcsim::{Simulator, SimulatorOptions};
use serde_json::{json, Value};

async fn sim_with_password(password: &str) -> Simulator {
    Simulator::start(SimulatorOptions {
        credentials: Some(("user".into(), password.into())),
        ..SimulatorOptions::default()
    })
    .await
}

#[tokio::test]
async fn draft_test_reports_and_stores_nothing() {
    let sim = sim_with_password("right").await;
    let app = TestApp::new().await;

    let mut draft = sim_draft(&sim, "ignored", "right");
    draft.as_object_mut().unwrap().remove("name");
    let (status, result) = app.post("/api/vmware/connections/test", draft).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["success"], true, "{result}");
    assert_eq!(result["category"], Value::Null);
    assert_eq!(
        result["system"]["product"]
            .as_str()
            .map(|p| p.contains("vCenter")),
        Some(true),
        "{result}"
    );
    assert_eq!(result["agents"], sim.inventory().hosts);
    assert_eq!(result["vms"], sim.inventory().vms);
    assert_eq!(result["storage"], sim.inventory().datastores);
    assert!(result["latencyMs"].is_u64());

    let (status, result) = app
        .post(
            "/api/vmware/connections/test",
            sim_draft(&sim, "x", "wrong"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result["success"], false);
    assert_eq!(result["category"], "auth", "{result}");
    assert!(!result.to_string().contains("wrong\""));

    // An invalid draft is the only 400.
    let (status, result) = app
        .post(
            "/api/vmware/connections/test",
            json!({"host": "a/b", "username": "u", "password": "p"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(result["details"]["fields"]["host"].is_string());

    let (_, list) = app.get("/api/vmware/connections").await;
    assert_eq!(list, json!([]), "draft tests never store");
    sim.stop().await;
}

#[tokio::test]
async fn saved_test_reuses_the_stored_secret_and_records_health() {
    let sim = sim_with_password("right").await;
    let app = TestApp::new().await;
    // Disabled, so only the tests below write its health (no scheduled poll interleaves).
    let mut draft = sim_draft(&sim, "lab", "right");
    draft["enabled"] = json!(false);
    let item = app.create(draft).await;
    let id = item["id"].as_str().unwrap().to_owned();
    let test_path = format!("/api/vmware/connections/{id}/test");

    // Bodyless: the stored password is used and the result becomes the stored health.
    let (status, result) = app
        .call(
            axum::http::Method::POST,
            &test_path,
            Some(crate::support::ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result["success"], true, "{result}");
    let poll = &app.item(&id).await["poll"];
    assert_eq!(poll["status"], "disabled", "{poll}");
    assert_eq!(poll["lastError"], Value::Null);
    assert!(poll["lastSuccessAt"].is_string());

    // An overlay with the mask keeps the stored password; with a wrong one it fails; neither
    // touches stored health.
    let (_, result) = app
        .post(
            &test_path,
            json!({"password": "********", "pollIntervalSeconds": 30}),
        )
        .await;
    assert_eq!(result["success"], true, "{result}");
    let (_, result) = app.post(&test_path, json!({"password": "wrong"})).await;
    assert_eq!(result["category"], "auth", "{result}");
    assert_eq!(app.item(&id).await["poll"], *poll);

    // Saving a wrong password and re-testing records a classified failure, twice.
    let (status, _) = app
        .put(
            &format!("/api/vmware/connections/{id}"),
            json!({"password": "wrong"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for expected in 1..=2 {
        let (_, result) = app
            .call(
                axum::http::Method::POST,
                &test_path,
                Some(crate::support::ADMIN),
                None,
            )
            .await;
        assert_eq!(result["category"], "auth");
        let poll = app.item(&id).await["poll"].clone();
        assert_eq!(poll["status"], "disabled", "{poll}");
        assert_eq!(poll["consecutiveFailures"], expected);
        assert_eq!(poll["lastError"]["category"], "auth");
        assert!(poll["lastError"]["message"].as_str().unwrap().len() > 10);
        assert!(poll["lastFailureAt"].is_string());
    }

    // Fixing the password makes the next test healthy again and resets the count.
    app.put(
        &format!("/api/vmware/connections/{id}"),
        json!({"password": "right"}),
    )
    .await;
    let (_, result) = app
        .call(
            axum::http::Method::POST,
            &test_path,
            Some(crate::support::ADMIN),
            None,
        )
        .await;
    assert_eq!(result["success"], true);
    let poll = app.item(&id).await["poll"].clone();
    assert!(poll["lastSuccessAt"].as_str() > poll["lastFailureAt"].as_str());
    assert_eq!(poll["consecutiveFailures"], 0);
    assert_eq!(poll["lastError"], Value::Null);

    let (status, body) = app
        .post("/api/vmware/connections/nope/test", json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
    sim.stop().await;
}

#[tokio::test]
async fn closed_port_is_a_network_failure() {
    let app = TestApp::new().await;
    let port = pylon_vcsim::closed_port().await;
    let (status, result) = app
        .post(
            "/api/vmware/connections/test",
            json!({"host": "127.0.0.1", "port": port, "username": "u", "password": "p"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(result["success"], false);
    assert_eq!(result["category"], "network", "{result}");
}
