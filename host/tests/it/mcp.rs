//! The assistant surface (`POST /mcp` and `pylon mcp`) through the official `rmcp` client
//! against a live server: every tool answers what the HTTP API answers for the same query,
//! answers are bounded, secrets never appear, and only `monitoring:read` tokens get in.

use crate::support::{offline_draft, sim_draft, TestApp, ADMIN};
use axum::http::{Method, StatusCode};
use pylon_host::mcp::{MAX_TOOL_PAGE, TOOL_NAMES};
use pylon_vcsim::{Simulator, SimulatorOptions};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, PaginatedRequestParams, ReadResourceRequestParams,
    ResourceContents,
};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

type Client = RunningService<RoleClient, ()>;

/// Serves the app's router on a real loopback socket (rmcp's client speaks HTTP) and
/// answers the `/mcp` URL.
async fn listen(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}/mcp")
}

async fn connect(url: &str, token: &str) -> Result<Client, String> {
    // reqwest is built without a default TLS provider; this client never uses TLS, but
    // building one needs a provider installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url).auth_header(token),
    );
    ().serve(transport).await.map_err(|e| e.to_string())
}

/// A tool's answer: whether it is an error, and its text blocks.
struct ToolAnswer {
    is_error: bool,
    texts: Vec<String>,
}

impl ToolAnswer {
    fn from(result: CallToolResult) -> Self {
        Self {
            is_error: result.is_error == Some(true),
            texts: result
                .content
                .iter()
                .map(|c| c.as_text().expect("text content").text.clone())
                .collect(),
        }
    }

    fn summary(&self) -> &str {
        assert!(!self.is_error, "tool failed: {:?}", self.texts);
        &self.texts[0]
    }

    fn json(&self) -> Value {
        assert!(!self.is_error, "tool failed: {:?}", self.texts);
        assert_eq!(self.texts.len(), 2, "{:?}", self.texts);
        serde_json::from_str(&self.texts[1]).expect("the second block is JSON")
    }

    fn error(&self) -> &str {
        assert!(self.is_error, "expected a tool error: {:?}", self.texts);
        &self.texts[0]
    }
}

async fn call(client: &Client, tool: &str, arguments: Value) -> ToolAnswer {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object");
    };
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments))
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    ToolAnswer::from(result)
}

/// The HTTP API's answer to `GET path` with the admin token, asserting 200.
async fn http(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.get(path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// Every resource id with a relation to `target`, as `(kind, source id)`, from the HTTP API.
fn incoming(all: &[Value], target: &str) -> BTreeSet<(String, String)> {
    all.iter()
        .flat_map(|r| {
            r["relations"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|rel| rel["target"] == target)
                .map(|rel| {
                    (
                        rel["kind"].as_str().unwrap().to_owned(),
                        r["id"].as_str().unwrap().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn entries(answer: &Value, direction: &str) -> BTreeSet<(String, String)> {
    answer[direction]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn polled_simulator_app() -> (Simulator, TestApp, String) {
    let sim = Simulator::start(SimulatorOptions {
        clusters: Some(1),
        hosts_per_cluster: Some(2),
        vms: Some(2),
        datastores: Some(2),
        ..SimulatorOptions::default()
    })
    .await;
    let app = TestApp::new().await;
    let id = app.create(sim_draft(&sim, "lab", "sim-password")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let item = app.next_poll(&id).await;
    assert_eq!(item["poll"]["status"], "healthy", "{item}");
    (sim, app, id)
}

#[tokio::test]
async fn every_tool_answers_what_the_http_api_answers() {
    let (_sim, app, connection) = polled_simulator_app().await;
    let url = listen(&app).await;
    let token = app.token(&["monitoring:read"]).await;
    let client = connect(&url, &token).await.unwrap();

    let info = client.peer_info().expect("initialised");
    assert_eq!(
        info.server_info.as_ref().map(|s| s.name.as_str()),
        Some("pylon")
    );
    assert!(info.capabilities.tools.is_some() && info.capabilities.resources.is_some());

    let tools = client.list_all_tools().await.unwrap();
    let names: BTreeSet<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, TOOL_NAMES.into_iter().collect());
    for tool in &tools {
        let hints = tool.annotations.as_ref().expect("annotated");
        assert_eq!(hints.read_only_hint, Some(true), "{}", tool.name);
        assert_eq!(hints.destructive_hint, Some(false), "{}", tool.name);
        assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
    }

    // Platforms and connections: the same JSON as the settings routes.
    let platforms = call(&client, "list_platforms", json!({})).await;
    assert_eq!(platforms.json(), http(&app, "/api/platforms").await);
    for platform in platforms.json().as_array().unwrap() {
        assert_eq!(platform["supportMatrix"]["assistantRead"], "supported");
        assert_eq!(platform["supportMatrix"]["assistantControl"], "read-only");
    }
    let connections = call(&client, "list_connections", json!({})).await;
    let mut expected = Vec::new();
    for slug in ["file", "vmware"] {
        expected.extend(
            http(&app, &format!("/api/{slug}/connections"))
                .await
                .as_array()
                .unwrap()
                .clone(),
        );
    }
    assert_eq!(connections.json(), Value::Array(expected));
    assert!(connections
        .summary()
        .contains("`lab` (vmware-vsphere, healthy"));
    let vmware_only = call(
        &client,
        "list_connections",
        json!({"platform": "vmware-vsphere"}),
    )
    .await;
    assert_eq!(
        vmware_only.json(),
        http(&app, "/api/vmware/connections").await
    );
    assert!(
        call(&client, "list_connections", json!({"platform": "nope"}))
            .await
            .error()
            .contains("list_platforms")
    );

    // Resources: the same pages, and the cursor continues them the same way.
    let first = call(
        &client,
        "search_resources",
        json!({"type": "vm", "limit": 1}),
    )
    .await;
    let http_first = http(&app, "/api/resources?type=vm&limit=1").await;
    assert_eq!(first.json(), http_first);
    let cursor = http_first["nextCursor"].as_str().expect("two VMs");
    assert!(first.summary().contains(cursor), "{}", first.summary());
    let second = call(
        &client,
        "search_resources",
        json!({"type": "vm", "limit": 1, "cursor": cursor}),
    )
    .await;
    assert_eq!(
        second.json(),
        http(
            &app,
            &format!("/api/resources?type=vm&limit=1&cursor={cursor}")
        )
        .await
    );
    let all = http(
        &app,
        &format!("/api/resources?connection={connection}&limit=1000"),
    )
    .await["items"]
        .as_array()
        .unwrap()
        .clone();
    let vm = all.iter().find(|r| r["type"] == "vm").unwrap().clone();
    let vm_name = vm["name"].as_str().unwrap();
    let by_text = call(
        &client,
        "search_resources",
        json!({"text": vm_name, "connection": connection, "platform": "vmware-vsphere"}),
    )
    .await;
    assert_eq!(
        by_text.json(),
        http(
            &app,
            &format!(
                "/api/resources?q={vm_name}&connection={connection}&platform=vmware-vsphere&limit=25"
            )
        )
        .await
    );
    assert!(call(
        &client,
        "search_resources",
        json!({"cursor": "not a cursor"})
    )
    .await
    .error()
    .contains("cursor"));

    // One resource in full, and its relations both ways.
    let vm_id = vm["id"].as_str().unwrap();
    let detail = call(&client, "get_resource", json!({"id": vm_id})).await;
    assert_eq!(
        detail.json(),
        http(&app, &format!("/api/resources/{vm_id}")).await
    );
    assert!(detail.summary().starts_with(&format!("vm `{vm_name}`")));
    assert!(call(&client, "get_resource", json!({"id": "no-such-id"}))
        .await
        .error()
        .contains("no resource with id `no-such-id`"));

    let related = call(&client, "get_related", json!({"id": vm_id}))
        .await
        .json();
    let own: BTreeSet<(String, String)> = vm["relations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(own.iter().any(|(kind, _)| kind == "runsOn"), "{vm}");
    assert_eq!(entries(&related, "outgoing"), own);
    assert_eq!(entries(&related, "incoming"), incoming(&all, vm_id));
    for (kind, target) in &own {
        // Which host runs this VM, which VMs use this datastore: the reverse direction
        // of each relation finds the VM again, with the same kind.
        let back = call(
            &client,
            "get_related",
            json!({"id": target, "direction": "incoming", "kind": kind}),
        )
        .await
        .json();
        let expected: BTreeSet<_> = incoming(&all, target)
            .into_iter()
            .filter(|(k, _)| k == kind)
            .collect();
        assert!(expected.contains(&(kind.clone(), vm_id.to_owned())));
        assert_eq!(entries(&back, "incoming"), expected, "{target}");
        assert_eq!(back["outgoing"], json!([]));
    }

    // Alerts, history and metrics: the same answers, errors included.
    let alerts = call(&client, "list_alerts", json!({})).await;
    assert_eq!(alerts.json(), http(&app, "/api/alerts?limit=25").await);
    let active = call(
        &client,
        "list_alerts",
        json!({"state": "active", "severity": "critical", "connection": connection}),
    )
    .await;
    assert_eq!(
        active.json(),
        http(
            &app,
            &format!("/api/alerts?state=active&severity=critical&connection={connection}&limit=25")
        )
        .await
    );
    for (tool, arguments, path) in [
        (
            "get_history",
            json!({"id": vm_id, "kind": "event"}),
            format!("/api/resources/{vm_id}/history?kind=event&limit=25"),
        ),
        (
            "get_metrics",
            json!({"id": vm_id, "since": "2026-01-01T00:00:00Z", "until": "2026-01-01T01:00:00Z"}),
            format!(
                "/api/resources/{vm_id}/metrics?since=2026-01-01T00:00:00Z\
                 &until=2026-01-01T01:00:00Z&maxPoints=60"
            ),
        ),
    ] {
        let answer = call(&client, tool, arguments).await;
        let (status, body) = app.get(&path).await;
        if status == StatusCode::OK {
            assert_eq!(answer.json(), body, "{tool}");
        } else {
            // A provider without the feed: the same refusal, in the tool's own words.
            assert_eq!(answer.error(), body["error"], "{tool}");
        }
    }

    // Resources by URI: listed a page at a time, read as get_resource answers them.
    let listed = client.list_resources(None).await.unwrap();
    let uris: Vec<String> = listed.resources.iter().map(|r| r.uri.clone()).collect();
    let page = http(&app, "/api/resources?limit=100").await;
    let expected: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("pylon://resources/{}", r["id"].as_str().unwrap()))
        .collect();
    assert_eq!(uris, expected);
    let read = client
        .read_resource(ReadResourceRequestParams::new(format!(
            "pylon://resources/{vm_id}"
        )))
        .await
        .unwrap();
    let ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
        panic!("text contents");
    };
    assert_eq!(serde_json::from_str::<Value>(text).unwrap(), detail.json());
    assert!(client
        .read_resource(ReadResourceRequestParams::new(
            "pylon://resources/no-such-id"
        ))
        .await
        .is_err());
    let templates = client.list_resource_templates(None).await.unwrap();
    assert_eq!(
        templates.resource_templates[0].uri_template,
        "pylon://resources/{id}"
    );

    client.cancel().await.unwrap();
}

/// A file inventory with one host, one datastore and `vms` VMs on both.
fn big_inventory(vms: usize) -> Value {
    let vms: Vec<Value> = (0..vms)
        .map(|n| {
            json!({
                "id": format!("vm-{n:04}"),
                "name": format!("vm-{n:04}"),
                "status": "online",
                "relations": [
                    {"kind": "runsOn", "target": "esx"},
                    {"kind": "usesStorage", "target": "ds"},
                ],
            })
        })
        .collect();
    json!({
        "version": 1,
        "system": {"name": "big", "product": "test", "version": "1", "instanceUuid": "big-1"},
        "agents": [{"id": "esx", "name": "esx", "status": "online"}],
        "storage": [{"id": "ds", "name": "ds", "status": "online",
                     "relations": [{"kind": "mountedOn", "target": "esx"}]}],
        "vms": vms,
    })
}

#[tokio::test]
async fn oversize_requests_are_clamped_and_say_so() {
    let app = TestApp::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inventory.json");
    std::fs::write(&path, big_inventory(250).to_string()).unwrap();
    let (status, created) = app
        .post(
            "/api/file/connections",
            json!({"name": "big", "path": path.to_str().unwrap()}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    loop {
        let (_, list) = app.get("/api/file/connections").await;
        if list[0]["observed"].is_object() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = listen(&app).await;
    let client = connect(&url, ADMIN).await.unwrap();
    let max = MAX_TOOL_PAGE as usize;

    let page = call(&client, "search_resources", json!({"limit": 1_000_000})).await;
    assert_eq!(
        page.json(),
        http(&app, &format!("/api/resources?limit={max}")).await
    );
    assert_eq!(page.json()["items"].as_array().unwrap().len(), max);
    let summary = page.summary();
    assert!(
        summary.contains("limit 1000000 was clamped to 100") && summary.contains("pass cursor"),
        "{summary}"
    );
    let default = call(&client, "search_resources", json!({})).await;
    assert_eq!(default.json()["items"].as_array().unwrap().len(), 25);

    // 250 VMs run on the host: incoming relations page at 100 with a cursor.
    let agents = http(&app, &format!("/api/resources?type=agent&connection={id}")).await;
    let host = agents["items"][0]["id"].as_str().unwrap().to_owned();
    let related = call(
        &client,
        "get_related",
        json!({"id": host, "direction": "incoming", "limit": 1_000_000}),
    )
    .await;
    let answer = related.json();
    assert_eq!(
        answer["incoming"].as_array().unwrap().len(),
        max,
        "{answer}"
    );
    let cursor = answer["nextCursor"].as_str().expect("more VMs");
    assert!(related.summary().contains("clamped to 100"));
    let mut seen: BTreeSet<String> = entries(&answer, "incoming")
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let mut cursor = cursor.to_owned();
    loop {
        let next = call(
            &client,
            "get_related",
            json!({"id": host, "direction": "incoming", "limit": 100, "cursor": cursor}),
        )
        .await
        .json();
        seen.extend(entries(&next, "incoming").into_iter().map(|(_, id)| id));
        match next["nextCursor"].as_str() {
            Some(more) => cursor = more.to_owned(),
            None => break,
        }
    }
    // The datastore mounts on the host too.
    assert_eq!(seen.len(), 251);

    let alerts = call(&client, "list_alerts", json!({"limit": 1_000_000})).await;
    assert!(alerts.summary().contains("clamped to 100"));
    let metrics = call(
        &client,
        "get_metrics",
        json!({"id": host, "maxPoints": 1_000_000}),
    )
    .await;
    // The file provider collects no metrics: refused before any bound applies.
    assert!(
        metrics.error().contains("not supported"),
        "{}",
        metrics.error()
    );
    let resources = client
        .list_resources(Some(PaginatedRequestParams::default()))
        .await
        .unwrap();
    assert_eq!(resources.resources.len(), max);
    assert!(resources.next_cursor.is_some());

    client.cancel().await.unwrap();
}

#[tokio::test]
async fn only_tokens_with_monitoring_read_get_in() {
    let app = TestApp::new().await;
    let url = listen(&app).await;
    let settings_only = app.token(&["settings:read", "settings:write"]).await;
    let monitoring = app.token(&["monitoring:read"]).await;

    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "1"}},
    });
    let (status, body) = app
        .call(
            Method::POST,
            "/mcp",
            Some(&settings_only),
            Some(initialize.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["details"]["requiredScope"], "monitoring:read");
    let (status, _) = app
        .call(Method::POST, "/mcp", None, Some(initialize.clone()))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .call(
            Method::POST,
            "/mcp",
            Some("pylon_unknown"),
            Some(initialize),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Stateless: no stream to open and no session to end.
    for method in [Method::GET, Method::DELETE] {
        let (status, _) = app.call(method, "/mcp", Some(&monitoring), None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }

    // Stateless: one plain JSON-RPC POST answers, as `docs/assistant.md` shows with curl.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&monitoring)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "search_resources", "arguments": {"type": "vm", "text": "web"}},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["id"], 7, "{answer}");
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    let page: Value =
        serde_json::from_str(answer["result"]["content"][1]["text"].as_str().unwrap()).unwrap();
    assert_eq!(page, json!({"items": [], "nextCursor": null}));

    assert!(connect(&url, &settings_only).await.is_err());
    let client = connect(&url, &monitoring).await.unwrap();
    assert!(!client.list_all_tools().await.unwrap().is_empty());
    client.cancel().await.unwrap();

    // Revocation takes effect on the next request.
    let client = connect(&url, &monitoring).await.unwrap();
    let (_, tokens) = app.get("/api/tokens").await;
    let id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["scopes"] == json!(["monitoring:read"]))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.delete(&format!("/api/tokens/{id}")).await;
    assert!(client
        .call_tool(CallToolRequestParams::new("list_platforms"))
        .await
        .is_err());
}

/// Secrets unlike anything else in an answer: long, and without the characters JSON escapes
/// or the mask is made of, so a leak would show verbatim.
fn random_secrets(count: usize) -> Vec<String> {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;
    let strategy =
        proptest::string::string_regex("[A-Za-z0-9!#$%&'()+,./:;<=>?@^_`{|}~-]{16,48}").unwrap();
    let mut runner = TestRunner::deterministic();
    (0..count)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}

#[tokio::test]
async fn no_answer_contains_a_connection_secret() {
    let secrets = random_secrets(24);
    let sim = Simulator::start(SimulatorOptions {
        vms: Some(2),
        ..SimulatorOptions::default()
    })
    .await;
    let app = TestApp::new().await;
    // One polled connection, whose resources and summary are real, and many saved ones.
    let (polled, offline) = secrets.split_first().unwrap();
    let id = app.create(sim_draft(&sim, "lab", polled)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.next_poll(&id).await;
    for (n, secret) in offline.iter().enumerate() {
        let mut draft = offline_draft(&format!("saved-{n}"));
        draft["password"] = json!(secret);
        app.create(draft).await;
    }
    let url = listen(&app).await;
    let client = connect(&url, ADMIN).await.unwrap();

    let resources = http(&app, &format!("/api/resources?connection={id}&limit=1000")).await;
    let ids: Vec<String> = resources["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let mut calls: Vec<(&str, Value)> = vec![
        ("list_platforms", json!({})),
        ("list_connections", json!({})),
        ("list_connections", json!({"platform": "vmware-vsphere"})),
        ("search_resources", json!({"limit": 1_000_000})),
        ("list_alerts", json!({"limit": 1_000_000})),
        ("get_resource", json!({"id": "no-such-id"})),
    ];
    for id in &ids {
        calls.push(("get_resource", json!({"id": id})));
        calls.push(("get_related", json!({"id": id})));
        calls.push(("get_history", json!({"id": id})));
        calls.push(("get_metrics", json!({"id": id})));
    }
    let mut answers = Vec::new();
    for (tool, arguments) in calls {
        let answer = call(&client, tool, arguments).await;
        answers.push((tool, answer.texts.join("\n")));
    }
    for resource in client.list_resources(None).await.unwrap().resources {
        let read = client
            .read_resource(ReadResourceRequestParams::new(resource.uri.clone()))
            .await
            .unwrap();
        answers.push(("resources/read", format!("{resource:?} {read:?}")));
    }
    let connections = &answers[1].1;
    assert!(
        connections.contains("\"password\":\"********\""),
        "{connections}"
    );
    for (tool, text) in &answers {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{tool} answered a connection secret"
            );
        }
    }
    client.cancel().await.unwrap();
}

/// `pylon mcp` on stdio: the same tools, with the token from the environment.
#[tokio::test]
async fn pylon_mcp_serves_the_tools_on_stdio() {
    let app = TestApp::new().await;
    let token = app.token(&["monitoring:read"]).await;
    let settings_only = app.token(&["settings:read"]).await;
    let expected_platforms = http(&app, "/api/platforms").await;
    let data_dir = app.dir.path().to_owned();
    let database = app.database_env();
    let command = |token: &str| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_pylon"));
        command
            .arg("mcp")
            .env_clear()
            .env("PYLON_DATA_DIR", &data_dir)
            .envs(database.clone())
            .env("PYLON_MCP_TOKEN", token)
            .env("PYLON_LOG", "debug")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        command
    };

    // A token without the scope is refused before anything is served.
    let refused = command(&settings_only).output().await.unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("lacks the monitoring:read scope"),
        "{stderr}"
    );

    let mut child = command(&token).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let stdin = child.stdin.take().unwrap();
    let client = ().serve((stdout, stdin)).await.unwrap();
    let names: BTreeSet<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(
        names,
        TOOL_NAMES
            .iter()
            .map(|n| n.to_string())
            .collect::<BTreeSet<_>>()
    );
    let platforms = call(&client, "list_platforms", json!({})).await;
    assert_eq!(platforms.json(), expected_platforms);
    let connections = call(&client, "list_connections", json!({})).await;
    assert_eq!(connections.json(), json!([]));

    // Closing the client's end ends the process cleanly.
    client.cancel().await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("pylon mcp exits when its client goes")
        .unwrap();
    assert!(status.success(), "{status}");
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert!(stderr.contains("serving MCP on stdio"), "{stderr}");
    assert!(!stderr.contains(&token), "the token was logged");
}
