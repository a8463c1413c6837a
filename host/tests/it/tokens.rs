//! `/api/tokens`: shown once, stored as a hash, scoped, revocable at once.

use crate::support::{contains, TestApp};
use axum::http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn create_list_use_and_revoke() {
    let app = TestApp::new().await;
    let (status, created) = app
        .post(
            "/api/tokens",
            json!({"name": "grafana", "scopes": ["monitoring:read", "settings:read"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["name"], "grafana");
    assert_eq!(
        created["scopes"],
        json!(["settings:read", "monitoring:read"])
    );
    assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));
    assert!(token.len() >= 40);

    // The token works, and its use is recorded.
    let (status, _) = app
        .call(Method::GET, "/api/platforms", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, list) = app.get("/api/tokens").await;
    assert_eq!(status, StatusCode::OK);
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap();
    assert!(
        listed.get("token").is_none(),
        "the token is shown only once"
    );
    assert!(listed["lastUsedAt"].is_string());
    assert!(!list.to_string().contains(&token));

    // Stored only as a hash.
    assert!(!contains(&app.database_bytes(), &token));

    let (status, body) = app.delete(&format!("/api/tokens/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"success": true, "id": id}));
    let (status, _) = app
        .call(Method::GET, "/api/platforms", Some(&token), None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "revocation takes effect at once"
    );

    let (status, body) = app.delete(&format!("/api/tokens/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn bad_token_requests_are_field_errors() {
    let app = TestApp::new().await;
    let cases = [
        (json!({"name": "x", "scopes": ["admin"]}), "scopes"),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "x", "scopes": "settings:read"}), "scopes"),
        (json!({"scopes": ["settings:read"]}), "name"),
        (json!({"name": " ", "scopes": ["settings:read"]}), "name"),
        (
            json!({"name": "x", "scopes": ["settings:read"], "expires": 1}),
            "expires",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = app.post("/api/tokens", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["code"], "validation_error");
        assert!(
            answer["details"]["fields"][field].is_string(),
            "{body} -> {answer}"
        );
    }
}
