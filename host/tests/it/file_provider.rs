//! The second provider, `pylon-file`, served by the same routes as vSphere with no host code
//! of its own: one link line in `lib.rs` is all the host knows of it.

use crate::support::TestApp;
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const EXAMPLE: &str = include_str!("../../../providers/file/examples/inventory.json");

#[tokio::test]
async fn platforms_lists_both_providers_in_platform_order() {
    let app = TestApp::new().await;
    let (status, platforms) = app.get("/api/platforms").await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<(&str, &str)> = platforms
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["platform"].as_str().unwrap(), p["slug"].as_str().unwrap()))
        .collect();
    assert_eq!(ids, [("static-file", "file"), ("vmware-vsphere", "vmware")]);
    let file = &platforms[0];
    assert_eq!(file["readiness"], "projection");
    let fields: Vec<(&str, bool)> = file["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["secret"].as_bool().unwrap()))
        .collect();
    assert_eq!(fields, [("path", false)]);
}

async fn file_item(app: &TestApp, id: &str) -> Value {
    let (status, list) = app.get("/api/file/connections").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no item {id} in {list}"))
}

#[tokio::test]
async fn the_same_routes_serve_file_connections() {
    let app = TestApp::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.json");
    std::fs::write(&path, EXAMPLE).unwrap();
    let path = path.to_str().unwrap().to_owned();

    // Validation is the provider's: a relative path is a field error on `path`.
    let (status, error) = app
        .post(
            "/api/file/connections",
            json!({"name": "demo", "path": "inventory.json"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(error["details"]["fields"]["path"].is_string(), "{error}");
    // vSphere's fields are not the file provider's, and the other way round.
    let (status, _) = app
        .post(
            "/api/vmware/connections",
            json!({"name": "demo", "path": path}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A draft test of a missing file runs and is classified.
    let (status, result) = app
        .post(
            "/api/file/connections/test",
            json!({"name": "demo", "path": format!("{path}.missing")}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["success"], false);
    assert_eq!(result["category"], "endpoint");

    let (status, created) = app
        .post(
            "/api/file/connections",
            json!({"name": "demo", "path": path, "pollIntervalSeconds": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["platform"], "static-file");
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, result) = app
        .post(&format!("/api/file/connections/{id}/test"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["success"], true, "{result}");
    assert_eq!(
        (&result["agents"], &result["vms"], &result["storage"]),
        (&json!(2), &json!(3), &json!(2))
    );

    // The scheduler polls a new connection at once; its resources carry the platform. Wait
    // for the poll's summary, not for `healthy`: the saved-connection test above already set
    // that.
    let started = Instant::now();
    let item = loop {
        let item = file_item(&app, &id).await;
        if item["observed"].is_object() {
            break item;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no poll: {item}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(item["poll"]["status"], "healthy", "{item}");
    assert_eq!(item["observed"]["system"]["name"], "Demo lab", "{item}");
    assert_eq!(item["observed"]["vms"], 3, "{item}");
    assert_eq!(item["observed"]["topology"]["clusters"], 1, "{item}");
    let (status, page) = app
        .get("/api/resources?platform=static-file&limit=1000")
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let resources = page["items"].as_array().unwrap();
    assert_eq!(resources.len(), 7, "{page}");
    let web = resources.iter().find(|r| r["name"] == "web-01").unwrap();
    assert_eq!(web["connectionId"], id.as_str());
    assert_eq!(web["identity"]["nativeId"], "vm-web-01");
    assert!(web["id"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{id}-vm-")));
    // Only vSphere connections are listed under its slug.
    let (_, vmware) = app.get("/api/vmware/connections").await;
    assert_eq!(vmware, json!([]));

    let (status, deleted) = app.delete(&format!("/api/file/connections/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
}
