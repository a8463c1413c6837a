//! Connection CRUD, validation and the masked-secret semantics, without a vCenter.

use crate::support::{contains, offline_draft, TestApp};
use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn create_answers_the_redacted_item_with_defaults() {
    let app = TestApp::new().await;
    let item = app
        .create(json!({
            "name": "Lab vCenter",
            "host": "https://VC.Example.test:8443",
            "username": "reader@vsphere.local",
            "password": "pw-1",
            "fingerprint": "",
        }))
        .await;
    assert_eq!(item["name"], "Lab vCenter");
    assert_eq!(item["host"], "vc.example.test");
    assert_eq!(item["port"], 8443);
    assert_eq!(item["useHttps"], true);
    assert_eq!(item["insecureSkipVerify"], false);
    assert_eq!(item["enabled"], true);
    assert_eq!(item["pollIntervalSeconds"], 60);
    assert_eq!(item["password"], "********");
    assert_eq!(item["platform"], "vmware-vsphere");
    assert!(
        item.get("fingerprint").is_none(),
        "empty optional fields are unset: {item}"
    );
    assert!(item["id"].as_str().unwrap().len() >= 32);
    assert!(item["createdAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(item["poll"]["status"], "pending");
    assert_eq!(item["poll"]["intervalSeconds"], 60);
    assert_eq!(item["poll"]["consecutiveFailures"], 0);
    assert_eq!(item["poll"]["lastError"], Value::Null);
    assert_eq!(item["observed"], Value::Null);

    // The list shows the same item (its health may already reflect a first poll attempt).
    let (status, list) = app.get("/api/vmware/connections").await;
    assert_eq!(status, StatusCode::OK);
    let without_health = |mut v: Value| {
        v.as_object_mut().unwrap().remove("poll");
        v
    };
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(without_health(list[0].clone()), without_health(item));
}

#[tokio::test]
async fn names_are_unique_per_platform_ignoring_case() {
    let app = TestApp::new().await;
    app.create(offline_draft("Prod")).await;
    let (status, body) = app
        .post("/api/vmware/connections", offline_draft("prod"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "conflict");

    let other = app.create(offline_draft("Other")).await;
    let (status, body) = app
        .put(
            &format!("/api/vmware/connections/{}", other["id"].as_str().unwrap()),
            json!({"name": "PROD"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        app.item(other["id"].as_str().unwrap()).await["name"],
        "Other"
    );
}

/// Each bad draft is a 400 naming the bad field, and nothing is stored.
#[tokio::test]
async fn bad_drafts_are_field_errors_and_store_nothing() {
    let app = TestApp::new().await;
    let with = |patch: Value| {
        let mut draft = offline_draft("c");
        for (k, v) in patch.as_object().unwrap() {
            draft[k] = v.clone();
        }
        draft
    };
    let cases = [
        (with(json!({"port": 0})), "port"),
        (with(json!({"port": 70000})), "port"),
        (with(json!({"port": "443"})), "port"),
        (
            with(json!({"pollIntervalSeconds": 9})),
            "pollIntervalSeconds",
        ),
        (
            with(json!({"pollIntervalSeconds": 3601})),
            "pollIntervalSeconds",
        ),
        (
            with(json!({"pollIntervalSeconds": 1.5})),
            "pollIntervalSeconds",
        ),
        (with(json!({"fingerprint": "abc"})), "fingerprint"),
        (with(json!({"fingerprint": "zz".repeat(32)})), "fingerprint"),
        (
            with(
                json!({"caCertificate": "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----"}),
            ),
            "caCertificate",
        ),
        (with(json!({"caCertificate": "not a pem"})), "caCertificate"),
        (with(json!({"host": "https://user:pw@vc.example"})), "host"),
        (with(json!({"host": "vc.example/ui"})), "host"),
        (with(json!({"host": "vc.example?x=1"})), "host"),
        (with(json!({"host": "vc.example#top"})), "host"),
        (with(json!({"host": "ftp://vc.example"})), "host"),
        (with(json!({"host": ""})), "host"),
        (with(json!({"enabled": "yes"})), "enabled"),
        (with(json!({"useHttps": 1})), "useHttps"),
        (with(json!({"surprise": true})), "surprise"),
        (with(json!({"name": ""})), "name"),
        (with(json!({"password": ""})), "password"),
        (with(json!({"username": null})), "username"),
    ];
    for (draft, field) in cases {
        let (status, body) = app.post("/api/vmware/connections", draft.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{draft} -> {body}");
        assert_eq!(body["code"], "validation_error", "{body}");
        assert!(
            body["details"]["fields"][field].is_string(),
            "{draft} -> {body}"
        );
        assert!(!body.to_string().contains("correct horse"), "{body}");
    }
    let (_, list) = app.get("/api/vmware/connections").await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn unreadable_bodies_are_invalid_requests() {
    let app = TestApp::new().await;
    let cases: [(&[u8], StatusCode, &str); 5] = [
        (b"{\"name\": ", StatusCode::BAD_REQUEST, "invalid_request"),
        (b"not json", StatusCode::BAD_REQUEST, "invalid_request"),
        (b"", StatusCode::BAD_REQUEST, "invalid_request"),
        (b"[1, 2]", StatusCode::BAD_REQUEST, "validation_error"),
        (b"\"text\"", StatusCode::BAD_REQUEST, "validation_error"),
    ];
    for (body, expected_status, code) in cases {
        let (status, answer) = app
            .raw(
                Method::POST,
                "/api/vmware/connections",
                Some(crate::support::ADMIN),
                Body::from(body.to_vec()),
            )
            .await;
        assert_eq!(status, expected_status, "{}", String::from_utf8_lossy(body));
        assert_eq!(answer["code"], code, "{answer}");
    }
    let huge = json!({"name": "x", "caCertificate": "A".repeat(200 * 1024)});
    let (status, answer) = app.post("/api/vmware/connections", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer["code"], "payload_too_large");
}

#[tokio::test]
async fn update_merges_keeps_masked_secret_and_path_id_wins() {
    let app = TestApp::new().await;
    let item = app.create(offline_draft("a")).await;
    let id = item["id"].as_str().unwrap();
    let path = format!("/api/vmware/connections/{id}");

    let (status, updated) = app
        .put(
            &path,
            json!({"id": "someone-else", "password": "********", "pollIntervalSeconds": 300}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["id"], id);
    assert_eq!(updated["pollIntervalSeconds"], 300);
    assert_eq!(updated["poll"]["intervalSeconds"], 300);
    assert_eq!(updated["poll"]["status"], "disabled");
    assert_eq!(updated["host"], "vcenter.example.test");
    assert_eq!(updated["password"], "********");
    assert_ne!(updated["updatedAt"], Value::Null);

    // The stored secret is still the original one.
    let record = app
        .state
        .store
        .get_connection("vmware-vsphere", id)
        .await
        .unwrap()
        .unwrap();
    let secrets = app.state.secrets.open(id, &record.sealed_secrets).unwrap();
    assert_eq!(secrets["password"].expose(), "correct horse battery staple");

    // A new value replaces it; an empty one clears it and then fails validation.
    app.put(&path, json!({"password": "next"})).await;
    let record = app
        .state
        .store
        .get_connection("vmware-vsphere", id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        app.state.secrets.open(id, &record.sealed_secrets).unwrap()["password"].expose(),
        "next"
    );
    let (status, body) = app.put(&path, json!({"password": ""})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["details"]["fields"]["password"], "is required");
    let record = app
        .state
        .store
        .get_connection("vmware-vsphere", id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        app.state.secrets.open(id, &record.sealed_secrets).unwrap()["password"].expose(),
        "next",
        "a failed write changes nothing"
    );

    let (status, body) = app
        .put("/api/vmware/connections/nope", json!({"name": "x"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn delete_removes_and_then_404s() {
    let app = TestApp::new().await;
    let item = app.create(offline_draft("a")).await;
    let id = item["id"].as_str().unwrap();
    let (status, body) = app.delete(&format!("/api/vmware/connections/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"success": true, "id": id}));
    let (status, body) = app.delete(&format!("/api/vmware/connections/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
    assert!(!contains(&app.database_bytes(), "correct horse"));
}

#[tokio::test]
async fn fifty_concurrent_creates_and_updates_lose_nothing() {
    let app = std::sync::Arc::new(TestApp::new().await);
    let creates = (0..50).map(|i| {
        let app = app.clone();
        tokio::spawn(async move { app.create(offline_draft(&format!("conn-{i}"))).await })
    });
    let items: Vec<Value> = futures_join(creates).await;
    let (_, list) = app.get("/api/vmware/connections").await;
    assert_eq!(list.as_array().unwrap().len(), 50);

    // Concurrent edits, two per connection touching different fields: both must land.
    let mut updates = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("/api/vmware/connections/{}", item["id"].as_str().unwrap());
        for body in [
            json!({"pollIntervalSeconds": 100 + i}),
            json!({"username": format!("user-{i}")}),
        ] {
            let app = app.clone();
            let path = path.clone();
            updates.push(tokio::spawn(async move {
                let (status, body) = app.put(&path, body).await;
                assert_eq!(status, StatusCode::OK, "{body}");
            }));
        }
    }
    futures_join(updates).await;
    let (_, list) = app.get("/api/vmware/connections").await;
    for (i, item) in items.iter().enumerate() {
        let stored = list
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == item["id"])
            .unwrap();
        assert_eq!(stored["pollIntervalSeconds"], 100 + i);
        assert_eq!(stored["username"], format!("user-{i}"));
    }

    // Racing creates of one name: exactly one wins.
    let racers = (0..20).map(|_| {
        let app = app.clone();
        tokio::spawn(async move {
            app.post("/api/vmware/connections", offline_draft("same"))
                .await
                .0
        })
    });
    let statuses = futures_join(racers).await;
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        19
    );
}

async fn futures_join<T>(handles: impl IntoIterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn platforms_lists_the_vsphere_descriptor() {
    let app = TestApp::new().await;
    let (status, platforms) = app.get("/api/platforms").await;
    assert_eq!(status, StatusCode::OK);
    let vsphere = platforms
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["platform"] == "vmware-vsphere")
        .expect("the vSphere provider is registered");
    assert_eq!(vsphere["slug"], "vmware");
    let password = vsphere["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "password")
        .unwrap();
    assert_eq!(password["secret"], true);
}
