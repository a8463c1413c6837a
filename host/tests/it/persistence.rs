//! State survives a restart on the same data directory.

use crate::support::{offline_draft, TestApp};
use axum::http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn connections_health_and_tokens_survive_a_restart() {
    let app = TestApp::new().await;
    let item = app.create(offline_draft("kept")).await;
    let id = item["id"].as_str().unwrap().to_owned();
    // A saved test against a closed port records a failure in the stored health.
    let port = pylon_vcsim::closed_port().await;
    app.put(
        &format!("/api/vmware/connections/{id}"),
        json!({"host": "127.0.0.1", "port": port}),
    )
    .await;
    let (_, result) = app
        .call(
            Method::POST,
            &format!("/api/vmware/connections/{id}/test"),
            Some(crate::support::ADMIN),
            None,
        )
        .await;
    assert_eq!(result["category"], "network", "{result}");
    let token = app.token(&["settings:read"]).await;
    let before = app.item(&id).await;
    // Disabled connections are not polled, so the recorded test result is all there is.
    assert_eq!(before["poll"]["status"], "disabled");
    assert_eq!(before["poll"]["consecutiveFailures"], 1);
    assert_eq!(before["poll"]["lastError"]["category"], "network");

    let app = TestApp::open(app.stop().await).await;
    let after = app.item(&id).await;
    assert_eq!(after, before);
    let (status, _) = app
        .call(Method::GET, "/api/platforms", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    // The secret still decrypts with the key file kept in the data directory.
    let record = app
        .state
        .store
        .get_connection("vmware-vsphere", &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        app.state.secrets.open(&id, &record.sealed_secrets).unwrap()["password"].expose(),
        "correct horse battery staple"
    );
}
