//! The published vocabulary: committed `schemas/` equal what `pylon schema` generates,
//! `/openapi.json` documents every served route without auth, and real API answers validate
//! against the generated schemas.

use crate::support::{closed_port_sync, offline_draft, TestApp, ADMIN};
use axum::http::{Method, StatusCode};
use http_body_util::BodyExt;
use pylon_core::Registry;
use pylon_host::auth::{required_scope, Access};
use pylon_host::schema::{documented_routes, documents, render, write_all};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tower::ServiceExt;

const REGENERATE: &str =
    "regenerate with `cargo run -p pylon-host --bin pylon -- schema --out schemas/` and commit";

fn committed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

fn read_dir(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

fn registry() -> Registry {
    Registry::from_inventory().unwrap()
}

#[test]
fn committed_schemas_equal_the_generated_ones() {
    let generated = tempfile::tempdir().unwrap();
    write_all(&registry(), generated.path()).unwrap();
    let expected = read_dir(generated.path());
    let committed = read_dir(&committed_dir());
    let missing: Vec<&String> = expected
        .keys()
        .filter(|k| !committed.contains_key(*k))
        .collect();
    let extra: Vec<&String> = committed
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "schemas/ lacks {missing:?}; {REGENERATE}"
    );
    assert!(
        extra.is_empty(),
        "schemas/ holds files the generator no longer writes: {extra:?}; delete them"
    );
    for (name, text) in &expected {
        assert!(
            committed[name] == *text,
            "schemas/{name} differs from the generated one; {REGENERATE}"
        );
    }
}

#[test]
fn generation_is_deterministic() {
    let first: Vec<String> = documents(&registry())
        .unwrap()
        .iter()
        .map(|d| render(&d.body))
        .collect();
    let second: Vec<String> = documents(&registry())
        .unwrap()
        .iter()
        .map(|d| render(&d.body))
        .collect();
    assert_eq!(first, second);
}

/// Every `(method, pattern)` the router serves, read from the `.route("...")` and
/// `.route_service("...")` calls in the host's sources and the methods the scope table declares for them (the auth middleware
/// refuses any other method, so this is what a client can reach).
fn served_routes() -> Vec<(&'static str, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.join("ui.rs")];
    for entry in std::fs::read_dir(src.join("api")).unwrap() {
        files.push(entry.unwrap().path());
    }
    let mut patterns = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let calls = text
            .match_indices(".route(")
            .chain(text.match_indices(".route_service("));
        for (at, call) in calls {
            let rest = text[at + call.len()..].trim_start();
            let Some(rest) = rest.strip_prefix('"') else {
                continue;
            };
            let end = rest.find('"').unwrap();
            patterns.push(rest[..end].to_owned());
        }
    }
    assert!(
        patterns.iter().any(|p| p == "/api/{slug}/connections"),
        "the route scan found nothing: {patterns:?}"
    );
    let mut served = Vec::new();
    for pattern in patterns {
        for method in ["GET", "POST", "PUT", "DELETE"] {
            let declared =
                required_scope(&Method::from_bytes(method.as_bytes()).unwrap(), &pattern);
            if declared.is_some() {
                served.push((method, pattern.clone()));
            }
        }
    }
    served
}

#[tokio::test]
async fn openapi_answers_without_auth_and_documents_every_route() {
    let app = TestApp::new().await;
    let (status, doc) = app.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(committed_dir().join("openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        doc, committed,
        "served and committed documents differ; {REGENERATE}"
    );

    // Router -> document: every served route is documented (the admin UI's files excepted).
    let documented = documented_routes();
    for (method, pattern) in served_routes() {
        if pattern == "/" || pattern == "/ui/{file}" {
            continue;
        }
        assert!(
            documented.contains(&(method, pattern.as_str())),
            "{method} {pattern} is served but missing from ROUTES in host/src/schema.rs"
        );
    }

    // Document -> router: every documented route is served, with the scope the table says.
    let slugs: Vec<&str> = app
        .state
        .registry
        .providers()
        .iter()
        .map(|p| p.descriptor().slug)
        .collect();
    for (method, pattern) in documented {
        let access = required_scope(&Method::from_bytes(method.as_bytes()).unwrap(), pattern)
            .unwrap_or_else(|| panic!("{method} {pattern} has no scope"));
        let expected_scope = match access {
            Access::Public => Value::Null,
            Access::Scoped(scope) => json!(scope.as_str()),
        };
        let paths: Vec<String> = if pattern.contains("{slug}") {
            slugs.iter().map(|s| pattern.replace("{slug}", s)).collect()
        } else {
            vec![pattern.to_owned()]
        };
        for path in paths {
            let op = &doc["paths"][&path][method.to_ascii_lowercase()];
            assert!(op.is_object(), "{method} {path} missing from the document");
            assert_eq!(op["x-required-scope"], expected_scope, "{method} {path}");
            let concrete = path.replace("{id}", "no-such-id");
            let (status, body) = probe(&app, method, &concrete).await;
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {concrete}"
            );
            let fallback =
                serde_json::from_str::<Value>(&body).is_ok_and(|v| v["error"] == "no such route");
            assert!(
                !fallback,
                "{method} {concrete} reached the router's fallback"
            );
        }
    }
    let errors = &doc["paths"]["/api/vmware/connections"]["post"]["responses"];
    for status in ["400", "401", "403", "404", "409"] {
        assert!(
            errors[status].is_object(),
            "POST connections lacks {status}"
        );
    }
    assert_refs_resolve(&doc, &doc);
}

/// Calls a route with the admin token and no body; answers the status and the raw body,
/// which is not JSON for every route (`/metrics`).
async fn probe(app: &TestApp, method: &str, path: &str) -> (StatusCode, String) {
    let request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {ADMIN}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Every local `$ref` in the document points at something that exists.
fn assert_refs_resolve(doc: &Value, node: &Value) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                let pointer = target.strip_prefix('#').unwrap_or(target);
                assert!(doc.pointer(pointer).is_some(), "dangling $ref {target}");
            }
            map.values().for_each(|v| assert_refs_resolve(doc, v));
        }
        Value::Array(items) => items.iter().for_each(|v| assert_refs_resolve(doc, v)),
        _ => {}
    }
}

/// Validates `instance` against the committed schema `file`, naming every violation.
fn check(file: &str, instance: &Value) {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(committed_dir().join(file)).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let problems: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(problems.is_empty(), "{file}: {problems:#?}\n{instance:#}");
}

#[tokio::test]
async fn real_answers_validate_against_the_schemas() {
    let app = TestApp::new().await;
    let draft = offline_draft("schema check");
    check("connection-input.vmware.schema.json", &draft);

    let (status, created) = app.post("/api/vmware/connections", draft).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    check("connection.schema.json", &created);
    let (_, list) = app.get("/api/vmware/connections").await;
    for item in list.as_array().unwrap() {
        check("connection.schema.json", item);
    }

    let (status, invalid) = app
        .post(
            "/api/vmware/connections",
            json!({ "name": "", "pollIntervalSeconds": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    check("error.schema.json", &invalid);
    assert!(invalid["details"]["fields"]["pollIntervalSeconds"].is_string());
    // The input schema rejects the same body the server rejects.
    let input_schema: Value = serde_json::from_str(
        &std::fs::read_to_string(committed_dir().join("connection-input.vmware.schema.json"))
            .unwrap(),
    )
    .unwrap();
    assert!(!jsonschema::is_valid(
        &input_schema,
        &json!({ "name": "x", "pollIntervalSeconds": 1, "host": "h", "username": "u", "password": "p" })
    ));

    let (status, unauthorized) = app.call(Method::GET, "/api/platforms", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    check("error.schema.json", &unauthorized);

    let (_, platforms) = app.get("/api/platforms").await;
    check("platforms.schema.json", &platforms);

    let mut test_draft = offline_draft("unreachable");
    test_draft["host"] = json!("127.0.0.1");
    test_draft["port"] = json!(closed_port_sync());
    let (status, result) = app.post("/api/vmware/connections/test", test_draft).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["success"], false);
    check("test-result.schema.json", &result);

    let (_, page) = app.get("/api/resources?limit=5").await;
    check("resource-page.schema.json", &page);

    let (status, token) = app
        .post(
            "/api/tokens",
            json!({ "name": "reader", "scopes": ["monitoring:read"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    check("token-created.schema.json", &token);
    let (_, tokens) = app.get("/api/tokens").await;
    for item in tokens.as_array().unwrap() {
        check("token.schema.json", item);
    }

    let (status, deleted) = app
        .delete(&format!(
            "/api/vmware/connections/{}",
            created["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    check("connection-deleted.schema.json", &deleted);
}

#[test]
fn schemas_reject_what_the_server_never_sends() {
    // A failure category outside the vocabulary and a test result without its required
    // members must fail, or the validation above proves nothing.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(committed_dir().join("test-result.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let good = json!({
        "success": false, "category": "network", "message": "refused", "latencyMs": 3,
        "system": null, "agents": null, "vms": null, "storage": null,
    });
    assert!(validator.is_valid(&good));
    let mut bad_category = good.clone();
    bad_category["category"] = json!("dns");
    assert!(!validator.is_valid(&bad_category));
    let mut missing = good;
    missing.as_object_mut().unwrap().remove("latencyMs");
    assert!(!validator.is_valid(&missing));
}
