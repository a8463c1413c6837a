//! Every route answers 401 without a valid token and 403 (with `requiredScope`) without
//! its scope; public routes answer without one.

use crate::support::{TestApp, ADMIN};
use axum::http::{Method, StatusCode};
use pylon_host::auth::{required_scope, Access};
use serde_json::json;

/// Every route the API serves, with a concrete path for each pattern.
const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/healthz", "/healthz"),
    ("GET", "/readyz", "/readyz"),
    ("GET", "/api/platforms", "/api/platforms"),
    ("GET", "/api/tokens", "/api/tokens"),
    ("POST", "/api/tokens", "/api/tokens"),
    ("DELETE", "/api/tokens/{id}", "/api/tokens/x"),
    ("GET", "/api/{slug}/connections", "/api/vmware/connections"),
    ("POST", "/api/{slug}/connections", "/api/vmware/connections"),
    (
        "PUT",
        "/api/{slug}/connections/{id}",
        "/api/vmware/connections/x",
    ),
    (
        "DELETE",
        "/api/{slug}/connections/{id}",
        "/api/vmware/connections/x",
    ),
    (
        "POST",
        "/api/{slug}/connections/test",
        "/api/vmware/connections/test",
    ),
    (
        "POST",
        "/api/{slug}/connections/{id}/test",
        "/api/vmware/connections/x/test",
    ),
];

#[tokio::test]
async fn every_route_enforces_its_declared_scope() {
    let app = TestApp::new().await;
    for &(method, pattern, path) in ROUTES {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let access = required_scope(&method, pattern)
            .unwrap_or_else(|| panic!("{method} {pattern} has no declared scope"));
        match access {
            Access::Public => {
                let (status, _) = app.call(method.clone(), path, None, None).await;
                assert_eq!(status, StatusCode::OK, "{method} {path}");
            }
            Access::Scoped(scope) => {
                let (status, body) = app.call(method.clone(), path, None, None).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
                assert_eq!(body["code"], "unauthorized");

                let (status, _) = app
                    .call(method.clone(), path, Some("not-a-token"), None)
                    .await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");

                let others: Vec<&str> = pylon_host::auth::Scope::ALL
                    .iter()
                    .filter(|s| **s != scope)
                    .map(|s| s.as_str())
                    .collect();
                let token = app.token(&others).await;
                let (status, body) = app.call(method.clone(), path, Some(&token), None).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
                assert_eq!(body["code"], "missing_scope");
                assert_eq!(body["details"]["requiredScope"], scope.as_str());

                let token = app.token(&[scope.as_str()]).await;
                let (status, _) = app.call(method.clone(), path, Some(&token), None).await;
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{method} {path} refused a token with {scope}: {status}"
                );
            }
        }
    }
}

#[tokio::test]
async fn errors_use_the_envelope() {
    let app = TestApp::new().await;
    let (status, body) = app.call(Method::GET, "/api/platforms", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("token"));
    assert_eq!(body["details"], json!({}));

    let (status, body) = app.get("/api/nosuch/connections").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");

    let (status, body) = app.get("/no/such/route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");

    let (status, body) = app
        .call(Method::PATCH, "/api/tokens", Some(ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "method_not_allowed");
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive_and_other_schemes_fail() {
    let app = TestApp::new().await;
    let request = |auth: &'static str| {
        axum::http::Request::builder()
            .uri("/api/platforms")
            .header("authorization", auth)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    use tower::ServiceExt;
    let ok = app
        .router
        .clone()
        .oneshot(request("bearer admin-token-for-tests"))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let basic = app
        .router
        .clone()
        .oneshot(request("Basic admin-token-for-tests"))
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
}
