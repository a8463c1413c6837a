//! The published vocabulary: JSON Schemas of every public shape and the OpenAPI document,
//! generated from the same Rust types the handlers serialise (`schemars` derives on the core
//! model and on the host's response types), so the documents cannot drift from the code.
//!
//! `pylon schema --out schemas/` writes them (committed, and checked by a drift test);
//! `GET /openapi.json` serves the OpenAPI document. Connection input schemas are built from
//! each registered provider's `FieldSpec`s, the same specs `apply_draft` enforces, so a new
//! provider gets its schema without touching this module. Output is deterministic: keys
//! sorted, two-space indentation, trailing newline.

use crate::api::alerts::AlertPage;
use crate::api::connections::{ConnectionItem, Deleted, TestResult};
use crate::api::error::ErrorEnvelope;
use crate::api::feeds::{HistoryPage, MetricsAnswer, DEFAULT_MAX_POINTS, MAX_POINTS};
use crate::api::resources::{ResourcePage, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use crate::api::tokens::{CreatedToken, TokenItem, TokenRequest};
use crate::auth::{required_scope, Access};
use axum::http::Method;
use pylon_core::descriptor::{FieldDefault, FieldKind, FieldSpec};
use pylon_core::draft::{DEFAULT_POLL_INTERVAL_SECONDS, MAX_NAME_LENGTH, POLL_INTERVAL_RANGE};
use pylon_core::feeds::{HistoryKind, HistoryRecord, MetricName, MetricSeries};
use pylon_core::model::{Alert, Resource, ResourceType};
use pylon_core::{Capabilities, FailureCategory, PlatformDescriptor, Registry, SecretString};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// Why the documents could not be produced or written.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A documented route has no entry in the scope table, so the server would refuse it.
    #[error("{method} {route} is documented but has no scope in auth::required_scope")]
    UndeclaredRoute {
        method: &'static str,
        route: &'static str,
    },
    #[error("could not write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One generated document: its file name under the output directory and its content.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub file_name: String,
    pub body: Value,
}

/// Serialises a document the one deterministic way: keys sorted at every level, pretty
/// printed, with a trailing newline.
pub fn render(value: &Value) -> String {
    // `serde_json::Map` keeps insertion order when another crate turns on `preserve_order`,
    // so keys are sorted explicitly rather than trusting the map type.
    let mut text = serde_json::to_string_pretty(&sorted(value)).unwrap_or_default();
    text.push('\n');
    text
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Schemas describe what the server sends, so optional members that are always sent (as
/// `null`) are required, and fields the server never sends are left out.
fn settings() -> SchemaSettings {
    SchemaSettings::draft2020_12().for_serialize()
}

fn root_schema<T: JsonSchema>() -> Value {
    settings()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value()
}

/// Every JSON Schema file, sorted by name, followed by `openapi.json`.
pub fn documents(registry: &Registry) -> Result<Vec<Document>, SchemaError> {
    let mut documents: Vec<Document> = vec![
        ("alert", root_schema::<Alert>()),
        ("alert-page", root_schema::<AlertPage>()),
        ("capabilities", root_schema::<Capabilities>()),
        ("connection", root_schema::<ConnectionItem>()),
        ("connection-deleted", root_schema::<Deleted>()),
        ("error", root_schema::<ErrorEnvelope>()),
        ("failure-category", root_schema::<FailureCategory>()),
        ("history-page", root_schema::<HistoryPage>()),
        ("history-record", root_schema::<HistoryRecord>()),
        ("metric-name", root_schema::<MetricName>()),
        ("metric-series", root_schema::<MetricSeries>()),
        ("metrics", root_schema::<MetricsAnswer>()),
        ("platform", root_schema::<PlatformDescriptor>()),
        ("platforms", root_schema::<Vec<PlatformDescriptor>>()),
        ("resource", root_schema::<Resource>()),
        ("resource-page", root_schema::<ResourcePage>()),
        ("resource-type", root_schema::<ResourceType>()),
        ("test-result", root_schema::<TestResult>()),
        ("token", root_schema::<TokenItem>()),
        ("token-created", root_schema::<CreatedToken>()),
        ("token-request", root_schema::<TokenRequest>()),
    ]
    .into_iter()
    .map(|(name, body)| Document {
        file_name: format!("{name}.schema.json"),
        body,
    })
    .collect();
    for provider in registry.providers() {
        let descriptor = provider.descriptor();
        let mut body = connection_input(descriptor, InputMode::Create);
        if let Value::Object(map) = &mut body {
            map.insert(
                "$schema".into(),
                json!("https://json-schema.org/draft/2020-12/schema"),
            );
        }
        documents.push(Document {
            file_name: format!("connection-input.{}.schema.json", descriptor.slug),
            body,
        });
    }
    documents.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    documents.push(Document {
        file_name: "openapi.json".into(),
        body: openapi(registry)?,
    });
    Ok(documents)
}

/// Writes every document into `dir` (created if missing) and returns the paths written.
pub fn write_all(registry: &Registry, dir: &Path) -> Result<Vec<PathBuf>, SchemaError> {
    std::fs::create_dir_all(dir).map_err(|source| SchemaError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let mut written = Vec::new();
    for document in documents(registry)? {
        let path = dir.join(&document.file_name);
        std::fs::write(&path, render(&document.body)).map_err(|source| SchemaError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Whether a connection body creates (required fields must be present) or edits (everything
/// absent keeps the stored value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputMode {
    Create,
    Edit,
}

/// The connection body a provider accepts, from the common fields owned by core and the
/// provider's `FieldSpec`s: the same facts `apply_draft` checks against.
fn connection_input(descriptor: &PlatformDescriptor, mode: InputMode) -> Value {
    let mut properties = Map::new();
    properties.insert(
        "id".into(),
        json!({ "type": "string", "description": "Ignored: the id in the path wins." }),
    );
    properties.insert(
        "name".into(),
        json!({
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_NAME_LENGTH,
            "description": "Unique per platform.",
        }),
    );
    properties.insert(
        "enabled".into(),
        json!({ "type": "boolean", "default": true, "description": "Whether the connection is polled." }),
    );
    properties.insert(
        "pollIntervalSeconds".into(),
        json!({
            "type": "integer",
            "minimum": POLL_INTERVAL_RANGE.start(),
            "maximum": POLL_INTERVAL_RANGE.end(),
            "default": DEFAULT_POLL_INTERVAL_SECONDS,
        }),
    );
    let mut required = Vec::new();
    if mode == InputMode::Create {
        required.push(json!("name"));
    }
    for spec in descriptor.fields {
        properties.insert(spec.name.into(), field_schema(spec));
        if spec.required && mode == InputMode::Create {
            required.push(json!(spec.name));
        }
    }
    let title = match mode {
        InputMode::Create => format!("{} connection", descriptor.display_name),
        InputMode::Edit => format!("{} connection edit", descriptor.display_name),
    };
    json!({
        "title": title,
        "description": "Unknown fields are rejected. A secret given as the mask `********`, \
                        absent or `null` keeps the stored one; an empty string clears it.",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn field_schema(spec: &FieldSpec) -> Value {
    let mut schema = match spec.kind {
        FieldKind::Text { max_length } | FieldKind::MultilineText { max_length } => {
            json!({ "type": ["string", "null"], "maxLength": max_length })
        }
        FieldKind::Integer { min, max } => {
            json!({ "type": ["integer", "null"], "minimum": min, "maximum": max })
        }
        FieldKind::Boolean => json!({ "type": ["boolean", "null"] }),
    };
    let Value::Object(map) = &mut schema else {
        return schema;
    };
    map.insert("title".into(), json!(spec.label));
    map.insert("description".into(), json!(spec.help));
    if let Some(default) = spec.default {
        let value = match default {
            FieldDefault::Integer(i) => json!(i),
            FieldDefault::Boolean(b) => json!(b),
        };
        map.insert("default".into(), value);
    }
    if spec.secret {
        map.insert("writeOnly".into(), json!(true));
        map.insert("x-secret".into(), json!(true));
        map.insert("examples".into(), json!([SecretString::MASK]));
    }
    schema
}

/// What a route takes as its body.
#[derive(Debug, Clone, Copy)]
enum Body {
    None,
    /// The provider's connection input; required fields must be present.
    ConnectionCreate,
    /// The provider's connection input with nothing required (edits, test overlays).
    ConnectionEdit {
        optional: bool,
    },
    Schema(&'static str),
    /// A JSON-RPC 2.0 message of the Model Context Protocol (`POST /mcp`).
    JsonRpc,
}

/// What a route answers on success.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Schema(u16, &'static str),
    ArrayOf(u16, &'static str),
    Inline(u16, &'static str),
    /// A non-JSON body of this media type.
    Text(u16, &'static str),
}

/// One documented route, keyed exactly as registered in the router and the scope table.
struct Route {
    method: &'static str,
    pattern: &'static str,
    summary: &'static str,
    body: Body,
    answer: Answer,
    /// Error statuses beyond 401/403 (added for every scoped route) and 400 (for every body).
    errors: &'static [u16],
}

/// Every route the server serves under `/api`, `/healthz`, `/readyz` and `/openapi.json`. A
/// test compares this table with the router and the scope table, in both directions.
const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        pattern: "/healthz",
        summary: "Liveness: the process answers.",
        body: Body::None,
        answer: Answer::Inline(200, "ok"),
        errors: &[],
    },
    Route {
        method: "GET",
        pattern: "/readyz",
        summary: "Readiness: the store answers (503 when it does not).",
        body: Body::None,
        answer: Answer::Inline(200, "ready"),
        errors: &[],
    },
    Route {
        method: "GET",
        pattern: "/metrics",
        summary: "Prometheus metrics (names prefixed `pylon_`).",
        body: Body::None,
        answer: Answer::Text(200, "text/plain; version=0.0.4"),
        errors: &[],
    },
    Route {
        method: "GET",
        pattern: "/openapi.json",
        summary: "This document.",
        body: Body::None,
        answer: Answer::Inline(200, "openapi"),
        errors: &[],
    },
    Route {
        method: "GET",
        pattern: "/api/platforms",
        summary: "Registered providers: descriptor, connection fields, support matrix, readiness.",
        body: Body::None,
        answer: Answer::ArrayOf(200, "PlatformDescriptor"),
        errors: &[],
    },
    Route {
        method: "GET",
        pattern: "/api/tokens",
        summary: "List API tokens (never the secrets).",
        body: Body::None,
        answer: Answer::ArrayOf(200, "TokenItem"),
        errors: &[],
    },
    Route {
        method: "POST",
        pattern: "/api/tokens",
        summary: "Create an API token; the answer is the only time it is shown.",
        body: Body::Schema("TokenRequest"),
        answer: Answer::Schema(201, "CreatedToken"),
        errors: &[],
    },
    Route {
        method: "DELETE",
        pattern: "/api/tokens/{id}",
        summary: "Revoke a token, effective immediately.",
        body: Body::None,
        answer: Answer::Schema(200, "Deleted"),
        errors: &[404],
    },
    Route {
        method: "GET",
        pattern: "/api/{slug}/connections",
        summary: "List connections: redacted configuration, poll health and observed summary.",
        body: Body::None,
        answer: Answer::ArrayOf(200, "ConnectionItem"),
        errors: &[404],
    },
    Route {
        method: "POST",
        pattern: "/api/{slug}/connections",
        summary: "Create a connection (validated) and start polling it if enabled.",
        body: Body::ConnectionCreate,
        answer: Answer::Schema(201, "ConnectionItem"),
        errors: &[404, 409],
    },
    Route {
        method: "PUT",
        pattern: "/api/{slug}/connections/{id}",
        summary: "Edit a connection; a masked secret keeps the stored one.",
        body: Body::ConnectionEdit { optional: false },
        answer: Answer::Schema(200, "ConnectionItem"),
        errors: &[404, 409],
    },
    Route {
        method: "DELETE",
        pattern: "/api/{slug}/connections/{id}",
        summary: "Delete a connection: stops polling and removes its resources.",
        body: Body::None,
        answer: Answer::Schema(200, "Deleted"),
        errors: &[404],
    },
    Route {
        method: "POST",
        pattern: "/api/{slug}/connections/test",
        summary: "Test a draft without saving it (`name` may be omitted).",
        body: Body::ConnectionEdit { optional: false },
        answer: Answer::Schema(200, "TestResult"),
        errors: &[404],
    },
    Route {
        method: "POST",
        pattern: "/api/{slug}/connections/{id}/test",
        summary: "Re-test a saved connection with its stored secret. Without a body the result \
                  becomes its poll health; with an edited-form overlay it is only reported.",
        body: Body::ConnectionEdit { optional: true },
        answer: Answer::Schema(200, "TestResult"),
        errors: &[404],
    },
    Route {
        method: "GET",
        pattern: "/api/resources",
        summary: "Canonical resources, filtered and paged in stable id order.",
        body: Body::None,
        answer: Answer::Schema(200, "ResourcePage"),
        errors: &[],
    },
    Route {
        method: "GET",
        pattern: "/api/resources/{id}",
        summary: "One canonical resource.",
        body: Body::None,
        answer: Answer::Schema(200, "Resource"),
        errors: &[404],
    },
    Route {
        method: "GET",
        pattern: "/api/resources/{id}/history",
        summary: "A resource's events and tasks, newest first, paged. `not_supported` (404) \
                  when its provider does not collect history.",
        body: Body::None,
        answer: Answer::Schema(200, "HistoryPage"),
        errors: &[404],
    },
    Route {
        method: "GET",
        pattern: "/api/resources/{id}/metrics",
        summary: "A resource's performance history, one series per canonical metric, averaged \
                  into at most `maxPoints` points. `not_supported` (404) when its provider \
                  does not collect metrics.",
        body: Body::None,
        answer: Answer::Schema(200, "MetricsAnswer"),
        errors: &[404],
    },
    Route {
        method: "GET",
        pattern: "/api/alerts",
        summary: "Alerts from platform alarms and health, active and resolved, filtered and \
                  paged in the order they opened.",
        body: Body::None,
        answer: Answer::Schema(200, "AlertPage"),
        errors: &[],
    },
    Route {
        method: "POST",
        pattern: "/mcp",
        summary: "The read-only assistant surface: Model Context Protocol over streamable HTTP, \
                  stateless, one JSON answer per request. Tools and resources over the \
                  canonical model; see docs/assistant.md.",
        body: Body::JsonRpc,
        answer: Answer::Inline(200, "jsonrpc"),
        errors: &[],
    },
];

/// The documented `(method, route pattern)` pairs, as registered in the router.
pub fn documented_routes() -> Vec<(&'static str, &'static str)> {
    ROUTES.iter().map(|r| (r.method, r.pattern)).collect()
}

/// Component schemas: every response type, with its parts, referenced as
/// `#/components/schemas/<Name>`.
fn component_schemas() -> Map<String, Value> {
    let mut generator: SchemaGenerator = settings()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    // Each call records the type (and its parts) as a definition and returns a reference.
    generator.subschema_for::<PlatformDescriptor>();
    generator.subschema_for::<TokenItem>();
    generator.subschema_for::<TokenRequest>();
    generator.subschema_for::<CreatedToken>();
    generator.subschema_for::<Deleted>();
    generator.subschema_for::<ConnectionItem>();
    generator.subschema_for::<TestResult>();
    generator.subschema_for::<ResourcePage>();
    generator.subschema_for::<Resource>();
    generator.subschema_for::<AlertPage>();
    generator.subschema_for::<HistoryPage>();
    generator.subschema_for::<MetricsAnswer>();
    generator.subschema_for::<HistoryKind>();
    generator.subschema_for::<MetricName>();
    generator.subschema_for::<ErrorEnvelope>();
    generator.subschema_for::<FailureCategory>();
    generator.take_definitions(true)
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn inline_answer(kind: &str) -> Value {
    match kind {
        "openapi" => json!({ "type": "object", "description": "An OpenAPI 3.1 document." }),
        "jsonrpc" => json!({
            "type": "object",
            "description": "A JSON-RPC 2.0 response of the Model Context Protocol (none for a \
                            notification, which is answered 202).",
        }),
        status => json!({
            "type": "object",
            "properties": { "status": { "const": status } },
            "required": ["status"],
        }),
    }
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": json_content(schema_ref("ErrorEnvelope")) })
}

/// Shared error responses. The 400 and 403 ones pin the code and the detail they carry.
fn component_responses() -> Value {
    json!({
        "BadRequest": {
            "description": "`validation_error` with `details.fields` naming each bad field, \
                            or `invalid_request` for a body that is not readable JSON.",
            "content": json_content(json!({
                "allOf": [schema_ref("ErrorEnvelope")],
                "properties": { "code": { "enum": ["validation_error", "invalid_request"] } },
            })),
        },
        "Unauthorized": error_response("`unauthorized`: no token, or an unknown or revoked one."),
        "Forbidden": {
            "description": "`missing_scope`: the token lacks the route's scope, named in \
                            `details.requiredScope`.",
            "content": json_content(json!({
                "allOf": [schema_ref("ErrorEnvelope")],
                "properties": {
                    "code": { "const": "missing_scope" },
                    "details": { "required": ["requiredScope"] },
                },
            })),
        },
        "NotFound": error_response("`not_found`: no such provider slug, connection, token or resource; `not_supported`: the resource's provider does not deliver what the route serves."),
        "Conflict": error_response("`conflict`: the name is taken on this platform, or concurrent edits."),
    })
}

fn parameter(name: &str, location: &str, description: &str, schema: Value) -> Value {
    json!({
        "name": name,
        "in": location,
        "required": location == "path",
        "description": description,
        "schema": schema,
    })
}

fn resource_query_parameters() -> Vec<Value> {
    vec![
        parameter(
            "type",
            "query",
            "Only resources of this canonical type.",
            json!({ "$ref": "#/components/schemas/ResourceType" }),
        ),
        parameter(
            "platform",
            "query",
            "Only this platform id.",
            json!({ "type": "string" }),
        ),
        parameter(
            "connection",
            "query",
            "Only resources of this connection id.",
            json!({ "type": "string" }),
        ),
        parameter(
            "q",
            "query",
            "Text search in names.",
            json!({ "type": "string" }),
        ),
        parameter(
            "limit",
            "query",
            "Page size.",
            json!({ "type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE }),
        ),
        parameter(
            "cursor",
            "query",
            "`nextCursor` of the previous page.",
            json!({ "type": "string" }),
        ),
    ]
}

fn alert_query_parameters() -> Vec<Value> {
    let mut parameters = vec![
        parameter(
            "state",
            "query",
            "Only active or only resolved alerts.",
            json!({ "$ref": "#/components/schemas/AlertState" }),
        ),
        parameter(
            "severity",
            "query",
            "Only alerts of this severity.",
            json!({ "$ref": "#/components/schemas/AlertSeverity" }),
        ),
        parameter(
            "connection",
            "query",
            "Only alerts of this connection id.",
            json!({ "type": "string" }),
        ),
        parameter(
            "resource",
            "query",
            "Only alerts on this resource id.",
            json!({ "type": "string" }),
        ),
    ];
    // `limit` and `cursor` page alerts exactly as they page resources.
    parameters.extend(
        resource_query_parameters()
            .into_iter()
            .filter(|p| matches!(p["name"].as_str(), Some("limit" | "cursor"))),
    );
    parameters
}

fn history_query_parameters() -> Vec<Value> {
    let mut parameters = vec![
        parameter(
            "kind",
            "query",
            "Only events or only tasks.",
            json!({ "$ref": "#/components/schemas/HistoryKind" }),
        ),
        parameter(
            "since",
            "query",
            "Only records at or after this RFC 3339 time.",
            json!({ "type": "string", "format": "date-time" }),
        ),
    ];
    parameters.extend(
        resource_query_parameters()
            .into_iter()
            .filter(|p| matches!(p["name"].as_str(), Some("limit" | "cursor"))),
    );
    parameters
}

fn metrics_query_parameters() -> Vec<Value> {
    vec![
        parameter(
            "metric",
            "query",
            "Only this canonical metric.",
            json!({ "$ref": "#/components/schemas/MetricName" }),
        ),
        parameter(
            "since",
            "query",
            "Start of the range (RFC 3339); default one hour before `until`.",
            json!({ "type": "string", "format": "date-time" }),
        ),
        parameter(
            "until",
            "query",
            "End of the range (RFC 3339); default now.",
            json!({ "type": "string", "format": "date-time" }),
        ),
        parameter(
            "maxPoints",
            "query",
            "Most points per series; a longer range is averaged into equal buckets.",
            json!({ "type": "integer", "minimum": 1, "maximum": MAX_POINTS, "default": DEFAULT_MAX_POINTS }),
        ),
    ]
}

fn operation(
    route: &Route,
    slug: Option<&str>,
    input_names: Option<(&str, &str)>,
) -> Result<Value, SchemaError> {
    let access = required_scope(&method(route.method), route.pattern).ok_or(
        SchemaError::UndeclaredRoute {
            method: route.method,
            route: route.pattern,
        },
    )?;
    let mut op = Map::new();
    op.insert("summary".into(), json!(route.summary));
    let tag = match slug {
        Some(slug) => format!("connections: {slug}"),
        None if route.pattern.starts_with("/api/") => route
            .pattern
            .trim_start_matches("/api/")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned(),
        None => "service".to_owned(),
    };
    op.insert("tags".into(), json!([tag]));

    let mut parameters = Vec::new();
    if route.pattern.contains("{id}") {
        parameters.push(parameter(
            "id",
            "path",
            "The object's id.",
            json!({ "type": "string" }),
        ));
    }
    if route.pattern == "/api/resources" {
        parameters.extend(resource_query_parameters());
    }
    if route.pattern == "/api/alerts" {
        parameters.extend(alert_query_parameters());
    }
    if route.pattern == "/api/resources/{id}/history" {
        parameters.extend(history_query_parameters());
    }
    if route.pattern == "/api/resources/{id}/metrics" {
        parameters.extend(metrics_query_parameters());
    }
    if !parameters.is_empty() {
        op.insert("parameters".into(), Value::Array(parameters));
    }

    let request = match (route.body, input_names) {
        (Body::None, _) => None,
        (Body::Schema(name), _) => Some((schema_ref(name), true)),
        (Body::JsonRpc, _) => Some((
            json!({
                "type": "object",
                "description": "A JSON-RPC 2.0 request or notification of the Model Context \
                                Protocol, e.g. `initialize`, `tools/list`, `tools/call`.",
            }),
            true,
        )),
        (Body::ConnectionCreate, Some((create, _))) => Some((schema_ref(create), true)),
        (Body::ConnectionEdit { optional }, Some((_, edit))) => Some((schema_ref(edit), !optional)),
        (_, None) => None,
    };
    if let Some((schema, required)) = &request {
        op.insert(
            "requestBody".into(),
            json!({ "required": required, "content": json_content(schema.clone()) }),
        );
    }

    let mut responses = Map::new();
    let (status, content) = match route.answer {
        Answer::Schema(status, name) => (status, json_content(schema_ref(name))),
        Answer::ArrayOf(status, name) => (
            status,
            json_content(json!({ "type": "array", "items": schema_ref(name) })),
        ),
        Answer::Inline(status, kind) => (status, json_content(inline_answer(kind))),
        Answer::Text(status, media_type) => (
            status,
            json!({ media_type: { "schema": { "type": "string" } } }),
        ),
    };
    responses.insert(
        status.to_string(),
        json!({ "description": "Success.", "content": content }),
    );
    // The MCP transport answers malformed messages itself, not with the error envelope.
    let takes_input = (request.is_some() && !matches!(route.body, Body::JsonRpc))
        || matches!(
            route.pattern,
            "/api/resources"
                | "/api/alerts"
                | "/api/resources/{id}/history"
                | "/api/resources/{id}/metrics"
        );
    if takes_input {
        responses.insert(
            "400".into(),
            json!({ "$ref": "#/components/responses/BadRequest" }),
        );
    }
    match access {
        Access::Public => {
            op.insert("security".into(), json!([]));
            op.insert("x-required-scope".into(), Value::Null);
        }
        Access::Scoped(scope) => {
            op.insert("security".into(), json!([{ "bearer": [] }]));
            op.insert("x-required-scope".into(), json!(scope.as_str()));
            responses.insert(
                "401".into(),
                json!({ "$ref": "#/components/responses/Unauthorized" }),
            );
            responses.insert(
                "403".into(),
                json!({ "$ref": "#/components/responses/Forbidden" }),
            );
        }
    }
    for status in route.errors {
        let name = match status {
            404 => "NotFound",
            409 => "Conflict",
            _ => continue,
        };
        responses.insert(
            status.to_string(),
            json!({ "$ref": format!("#/components/responses/{name}") }),
        );
    }
    if route.pattern == "/readyz" {
        responses.insert(
            "503".into(),
            json!({ "description": "The store does not answer." }),
        );
    }
    op.insert("responses".into(), Value::Object(responses));
    Ok(Value::Object(op))
}

fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).unwrap_or(Method::GET)
}

/// The OpenAPI 3.1 document of every route. Provider route families are listed once per
/// registered provider (`/api/vmware/connections`, ...), each with its own input schema.
pub fn openapi(registry: &Registry) -> Result<Value, SchemaError> {
    let mut schemas = component_schemas();
    let mut paths = Map::new();
    for route in ROUTES {
        if route.pattern.contains("{slug}") {
            for provider in registry.providers() {
                let descriptor = provider.descriptor();
                let create = format!("ConnectionInput.{}", descriptor.slug);
                let edit = format!("ConnectionEdit.{}", descriptor.slug);
                schemas
                    .entry(create.clone())
                    .or_insert_with(|| connection_input(descriptor, InputMode::Create));
                schemas
                    .entry(edit.clone())
                    .or_insert_with(|| connection_input(descriptor, InputMode::Edit));
                let path = route.pattern.replace("{slug}", descriptor.slug);
                let op = operation(route, Some(descriptor.slug), Some((&create, &edit)))?;
                insert_operation(&mut paths, &path, route.method, op);
            }
        } else {
            let op = operation(route, None, None)?;
            insert_operation(&mut paths, route.pattern, route.method, op);
        }
    }
    Ok(json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Pylon API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every route declares its scope in `x-required-scope` (`null`: no \
                            token needed). Errors answer with `ErrorEnvelope`.",
        },
        "components": {
            "schemas": schemas,
            "responses": component_responses(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token from `POST /api/tokens` or the admin token.",
                },
            },
        },
        "paths": paths,
    }))
}

fn insert_operation(paths: &mut Map<String, Value>, path: &str, method: &str, op: Value) {
    let item = paths
        .entry(path.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(item) = item {
        item.insert(method.to_ascii_lowercase(), op);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_sorts_keys_at_every_level() {
        let value = json!({ "b": 1, "a": { "d": [ { "z": 1, "y": 2 } ], "c": 3 } });
        assert_eq!(
            render(&value),
            "{\n  \"a\": {\n    \"c\": 3,\n    \"d\": [\n      {\n        \"y\": 2,\n        \"z\": 1\n      }\n    ]\n  },\n  \"b\": 1\n}\n"
        );
    }
}
