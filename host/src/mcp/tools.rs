//! The tools: one input type each (its JSON Schema is the tool's input schema), one function
//! each over [`ReadView`], every answer a one-line summary for people plus the JSON the HTTP
//! API gives for the same query.
//!
//! Bounds: a tool answers at most [`MAX_TOOL_PAGE`] resources or alerts (default
//! [`DEFAULT_TOOL_PAGE`]) and [`MAX_CONNECTIONS`] connections. A larger `limit` is clamped,
//! not refused, and the summary says so, as it says when more results exist and which cursor
//! reads them, so an assistant can neither pull the whole database in one call nor miss
//! that an answer was cut short.

use super::view::ReadView;
use crate::api::connections::ConnectionItem;
use crate::api::error::ApiError;
use crate::api::feeds::{decode_history_position, DEFAULT_METRICS_RANGE_HOURS};
use crate::api::resources::{decode_cursor, page_json};
use crate::store::{AlertQuery, HistoryQuery, RelationFilter, ResourceJson, ResourceQuery};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use pylon_core::feeds::{HistoryKind, MetricName, MetricSeries};
use pylon_core::model::{AlertSeverity, AlertState, RelationKind, ResourceType};
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Page size when a call names no `limit`.
pub const DEFAULT_TOOL_PAGE: u32 = 25;
/// The most resources, related resources or alerts one call answers. Smaller than the HTTP
/// API's 1,000: an answer lands in an assistant's context, where a page of full resources
/// (about 1.5 KB each) must stay readable.
pub const MAX_TOOL_PAGE: u32 = 100;
/// Points per metric series when `get_metrics` names no `maxPoints`.
pub const DEFAULT_TOOL_POINTS: u32 = 60;
/// The most points per series `get_metrics` answers (the HTTP API allows 1,000).
pub const MAX_TOOL_POINTS: u32 = 200;
/// The most connections `list_connections` answers.
pub const MAX_CONNECTIONS: usize = 100;
/// How many names a summary line spells out before it says "and N more".
const NAMES_IN_SUMMARY: usize = 10;

/// A tool's answer: the summary line and the JSON text.
#[derive(Debug)]
pub struct Answer {
    pub summary: String,
    pub json: String,
}

/// Why a tool call produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The arguments are wrong or name nothing; the message says what to do instead.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Api(#[from] ApiError),
}

type ToolFuture<'a> = Pin<Box<dyn Future<Output = Result<Answer, ToolError>> + Send + 'a>>;

/// One tool: its name, what it tells the assistant, its input schema and its function.
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    input_schema: fn() -> JsonObject,
    pub run: for<'a> fn(&'a ReadView, JsonObject) -> ToolFuture<'a>,
}

impl ToolSpec {
    /// The MCP tool definition. Every tool is marked read-only, idempotent and closed-world.
    pub fn definition(&self) -> Tool {
        Tool::new(self.name, self.description, Arc::new((self.input_schema)())).annotate(
            ToolAnnotations::new()
                .read_only(true)
                .destructive(false)
                .idempotent(true)
                .open_world(false),
        )
    }
}

/// Every tool, in the order `tools/list` answers.
pub const TOOLS: &[ToolSpec] = &[
    ToolSpec {
        name: "list_platforms",
        description: "List the registered platform providers: platform id, display name, \
                      readiness, support matrix, capabilities and connection fields.",
        input_schema: schema::<NoInput>,
        run: list_platforms,
    },
    ToolSpec {
        name: "list_connections",
        description: "List saved connections with their poll health and what the last poll \
                      observed (system identity, counts, issues). Secrets are masked. At most \
                      100 connections.",
        input_schema: schema::<ListConnectionsInput>,
        run: list_connections,
    },
    ToolSpec {
        name: "search_resources",
        description: "Search canonical resources (agent = hypervisor host, vm, storage = \
                      datastore) by type, platform, connection and name text, in stable id \
                      order. Pages of at most 100 (default 25); pass nextCursor as cursor for \
                      the next page.",
        input_schema: schema::<SearchResourcesInput>,
        run: search_resources,
    },
    ToolSpec {
        name: "get_resource",
        description: "One resource in full: identity, status, relations, topology \
                      (datacenter, cluster, folder, resource pool), latest metrics and details \
                      such as a VM's power state, guest OS, IP addresses and snapshot tree.",
        input_schema: schema::<GetResourceInput>,
        run: get_resource,
    },
    ToolSpec {
        name: "get_related",
        description: "Follow a resource's relations both ways: outgoing (the host a VM runs \
                      on, the datastores it uses) and incoming (the VMs on a host, the VMs \
                      using a datastore). At most 100 each (default 25); incoming pages with \
                      cursor.",
        input_schema: schema::<GetRelatedInput>,
        run: get_related,
    },
    ToolSpec {
        name: "list_alerts",
        description: "List alerts from platform alarms and health, active and resolved, \
                      oldest first, filtered by state, severity, connection or resource. Pages \
                      of at most 100 (default 25).",
        input_schema: schema::<ListAlertsInput>,
        run: list_alerts,
    },
    ToolSpec {
        name: "get_history",
        description: "A resource's events and tasks (what happened to it, who did what), newest \
                      first, optionally only events or tasks, or only since a time. Pages of at \
                      most 100 (default 25). Not every platform records history.",
        input_schema: schema::<GetHistoryInput>,
        run: get_history,
    },
    ToolSpec {
        name: "get_metrics",
        description: "A resource's performance history (CPU, memory, disk and network): one \
                      series per metric over a time range (default the last hour), averaged \
                      into at most 200 points (default 60). Not every platform collects \
                      metrics; get_resource shows the latest values.",
        input_schema: schema::<GetMetricsInput>,
        run: get_metrics,
    },
];

/// The tool names, for documentation and tests.
pub const TOOL_NAMES: [&str; 8] = [
    "list_platforms",
    "list_connections",
    "search_resources",
    "get_resource",
    "get_related",
    "list_alerts",
    "get_history",
    "get_metrics",
];

pub fn find(name: &str) -> Option<&'static ToolSpec> {
    TOOLS.iter().find(|tool| tool.name == name)
}

/// The input schema of `T`: JSON Schema 2020-12 of what it accepts, as MCP expects.
fn schema<T: JsonSchema>() -> JsonObject {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    match schema.to_value() {
        Value::Object(object) => object,
        // A derived schema is always an object; an empty one accepts anything, which the
        // `deny_unknown_fields` parse below still narrows.
        _ => JsonObject::new(),
    }
}

/// Reads a tool's arguments into its input type; unknown fields are refused.
fn parse<T: DeserializeOwned>(arguments: JsonObject) -> Result<T, ToolError> {
    serde_json::from_value(Value::Object(arguments))
        .map_err(|error| ToolError::Invalid(format!("invalid arguments: {error}")))
}

/// Takes no arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListConnectionsInput {
    /// Only connections of this platform id, e.g. `vmware-vsphere`.
    pub platform: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchResourcesInput {
    /// Only resources of this canonical type.
    #[serde(rename = "type")]
    pub resource_type: Option<ResourceType>,
    /// Only this platform id, e.g. `vmware-vsphere`.
    pub platform: Option<String>,
    /// Only resources of this connection id.
    pub connection: Option<String>,
    /// Case-insensitive text the resource name contains.
    pub text: Option<String>,
    /// Page size, 1 to 100 (default 25); larger values are clamped to 100.
    pub limit: Option<u64>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetResourceInput {
    /// The resource id, as `search_resources` answers it.
    pub id: String,
}

/// Which relations `get_related` follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The resource's own relations (a VM's host and datastores).
    Outgoing,
    /// Relations of other resources to this one (a host's VMs, a datastore's VMs).
    Incoming,
    #[default]
    Both,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetRelatedInput {
    /// The resource id.
    pub id: String,
    /// `outgoing`, `incoming` or `both` (the default).
    pub direction: Option<Direction>,
    /// Only relations of this kind.
    pub kind: Option<RelationKind>,
    /// The most related resources per direction, 1 to 100 (default 25); larger values are
    /// clamped to 100.
    pub limit: Option<u64>,
    /// `nextCursor` of the previous answer: the next page of incoming relations.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListAlertsInput {
    /// Only active or only resolved alerts.
    pub state: Option<AlertState>,
    /// Only alerts of this severity.
    pub severity: Option<AlertSeverity>,
    /// Only alerts of this connection id.
    pub connection: Option<String>,
    /// Only alerts on this resource id.
    pub resource: Option<String>,
    /// Page size, 1 to 100 (default 25); larger values are clamped to 100.
    pub limit: Option<u64>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetHistoryInput {
    /// The resource id.
    pub id: String,
    /// Only events or only tasks.
    pub kind: Option<HistoryKind>,
    /// Only records at or after this RFC 3339 time.
    pub since: Option<DateTime<Utc>>,
    /// Page size, 1 to 100 (default 25); larger values are clamped to 100.
    pub limit: Option<u64>,
    /// `nextCursor` of the previous page (older records).
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GetMetricsInput {
    /// The resource id.
    pub id: String,
    /// One metric; every metric the resource has when absent.
    pub metric: Option<MetricName>,
    /// Start of the range, RFC 3339; default one hour before `until`.
    pub since: Option<DateTime<Utc>>,
    /// End of the range, RFC 3339; default now.
    pub until: Option<DateTime<Utc>>,
    /// Points per series, 1 to 200 (default 60); larger values are clamped to 200. A longer
    /// range is averaged into that many buckets.
    pub max_points: Option<u64>,
}

/// A page size within bounds, and what was changed to get there.
struct PageSize {
    size: u32,
    note: Option<String>,
}

fn page_size(requested: Option<u64>) -> PageSize {
    bounded("limit", requested, DEFAULT_TOOL_PAGE, MAX_TOOL_PAGE)
}

/// `requested` brought within `1..=max` (`default` when absent), saying what changed.
fn bounded(name: &str, requested: Option<u64>, default: u32, max: u32) -> PageSize {
    match requested {
        None => PageSize {
            size: default,
            note: None,
        },
        Some(0) => PageSize {
            size: 1,
            note: Some(format!("{name} 0 was raised to 1")),
        },
        Some(n) if n > u64::from(max) => PageSize {
            size: max,
            note: Some(format!(
                "{name} {n} was clamped to {max}, the most one call answers"
            )),
        },
        // In range, so it fits.
        Some(n) => PageSize {
            size: u32::try_from(n).unwrap_or(max),
            note: None,
        },
    }
}

fn cursor_key(cursor: Option<String>) -> Result<Option<String>, ToolError> {
    match cursor.filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(cursor) => decode_cursor(&cursor).map(Some).ok_or_else(|| {
            ToolError::Invalid(
                "`cursor` is not one this server answered; pass a `nextCursor` unchanged".into(),
            )
        }),
    }
}

fn non_blank(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

fn to_json<T: Serialize>(value: &T) -> Result<String, ToolError> {
    serde_json::to_string(value).map_err(|e| ToolError::Api(ApiError::Internal(e.to_string())))
}

/// "a, b, c and 4 more".
fn name_list(names: impl ExactSizeIterator<Item = String>) -> String {
    let total = names.len();
    let shown: Vec<String> = names.take(NAMES_IN_SUMMARY).collect();
    let mut text = shown.join(", ");
    if total > shown.len() {
        text.push_str(&format!(" and {} more", total - shown.len()));
    }
    text
}

/// The sentence that ends a paged summary: how to continue, or that nothing is left.
fn paging_sentence(next_cursor: Option<&str>, note: Option<&str>) -> String {
    let mut text = match next_cursor {
        Some(cursor) => format!("More match: pass cursor \"{cursor}\" for the next page."),
        None => "That is all of them.".to_owned(),
    };
    if let Some(note) = note {
        text.push_str(&format!(" Note: {note}."));
    }
    text
}

fn plural(count: usize, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

/// The fields of a resource a summary or a relation list names.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceBrief {
    id: String,
    #[serde(rename = "type")]
    resource_type: String,
    name: String,
    status: String,
    #[serde(default)]
    relations: Vec<RelationText>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RelationText {
    kind: String,
    target: String,
}

impl ResourceBrief {
    fn from_value(value: &Value) -> Result<Self, ToolError> {
        serde_json::from_value(value.clone())
            .map_err(|e| ToolError::Api(ApiError::Internal(format!("stored resource: {e}"))))
    }

    fn from_text(item: &ResourceJson) -> Result<Self, ToolError> {
        serde_json::from_str(&item.json)
            .map_err(|e| ToolError::Api(ApiError::Internal(format!("stored resource: {e}"))))
    }

    fn label(&self) -> String {
        format!("{} `{}`", self.resource_type, self.name)
    }
}

fn list_platforms(view: &ReadView, arguments: JsonObject) -> ToolFuture<'_> {
    Box::pin(async move {
        let NoInput {} = parse(arguments)?;
        let platforms = view.platforms();
        let names = platforms
            .iter()
            .map(|d| format!("{} (`{}`)", d.display_name, d.platform));
        Ok(Answer {
            summary: format!(
                "{} registered: {}.",
                plural(platforms.len(), "platform", "platforms"),
                name_list(names)
            ),
            json: to_json(&platforms)?,
        })
    })
}

fn connection_label(item: &ConnectionItem) -> String {
    let name = item
        .config
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let mut label = format!("`{name}` ({}, {}", item.platform, item.poll.status.as_str());
    if let Some(observed) = &item.observed {
        label.push_str(&format!(
            ": {} agents, {} VMs, {} storage",
            observed["agents"], observed["vms"], observed["storage"]
        ));
    }
    label.push(')');
    label
}

fn list_connections(view: &ReadView, arguments: JsonObject) -> ToolFuture<'_> {
    Box::pin(async move {
        let input: ListConnectionsInput = parse(arguments)?;
        let platform = non_blank(input.platform);
        if let Some(platform) = &platform {
            if !view.platforms().iter().any(|d| d.platform == platform) {
                return Err(ToolError::Invalid(format!(
                    "no platform `{platform}` is registered; list_platforms names them"
                )));
            }
        }
        let mut items = view.connections(platform.as_deref()).await?;
        let total = items.len();
        items.truncate(MAX_CONNECTIONS);
        let mut summary = format!(
            "{}: {}.",
            plural(total, "connection", "connections"),
            name_list(items.iter().map(connection_label))
        );
        if total > items.len() {
            summary.push_str(&format!(
                " Showing the first {MAX_CONNECTIONS} of {total}; pass `platform` to narrow."
            ));
        }
        Ok(Answer {
            summary,
            json: to_json(&items)?,
        })
    })
}

fn search_resources(view: &ReadView, arguments: JsonObject) -> ToolFuture<'_> {
    Box::pin(async move {
        let input: SearchResourcesInput = parse(arguments)?;
        let page = page_size(input.limit);
        let query = ResourceQuery {
            resource_type: input.resource_type.map(|t| t.as_str().to_owned()),
            platform: non_blank(input.platform),
            connection_id: non_blank(input.connection),
            text: non_blank(input.text),
            related_to: None,
            after: cursor_key(input.cursor)?,
            limit: page.size,
        };
        let (items, next_cursor) = view.resource_page(query).await?;
        let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
        for item in &items {
            *by_type
                .entry(ResourceBrief::from_text(item)?.resource_type)
                .or_default() += 1;
        }
        let counts = by_type
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut summary = format!(
            "{} in this page",
            plural(items.len(), "resource", "resources")
        );
        if !counts.is_empty() {
            summary.push_str(&format!(" ({counts})"));
        }
        summary.push_str(", in id order. ");
        summary.push_str(&paging_sentence(
            next_cursor.as_deref(),
            page.note.as_deref(),
        ));
        Ok(Answer {
            summary,
            json: page_json(&items, next_cursor.as_deref()),
        })
    })
}

async fn required_resource(view: &ReadView, id: &str) -> Result<Value, ToolError> {
    view.resource(id).await?.ok_or_else(|| {
        ToolError::Invalid(format!(
            "no resource with id `{id}`; search_resources finds resource ids"
        ))
    })
}

fn get_resource(view: &ReadView, arguments: JsonObject) -> ToolFuture<'_> {
    Box::pin(async move {
        let input: GetResourceInput = parse(arguments)?;
        let resource = required_resource(view, &input.id).await?;
        let brief = ResourceBrief::from_value(&resource)?;
        let mut summary = format!(
            "{} is {} (platform {}, connection {}); {}.",
            brief.label(),
            brief.status,
            resource["platform"].as_str().unwrap_or("?"),
            resource["connectionId"].as_str().unwrap_or("?"),
            plural(brief.relations.len(), "relation", "relations"),
        );
        if let Some(snapshots) = resource["details"]["snapshots"].as_array() {
            summary.push_str(&format!(
                " Snapshot tree: {} at the root.",
                plural(snapshots.len(), "snapshot", "snapshots")
            ));
        }
        Ok(Answer {
            summary,
            json: resource.to_string(),
        })
    })
}

/// One related resource as `get_related` lists it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RelatedEntry {
    /// The relation kind, read from the resource that holds the relation.
    kind: String,
    id: String,
    #[serde(rename = "type")]
    resource_type: Option<String>,
    name: Option<String>,
    status: Option<String>,
}

impl RelatedEntry {
    fn of(kind: &str, brief: &ResourceBrief) -> Self {
        Self {
            kind: kind.to_owned(),
            id: brief.id.clone(),
            resource_type: Some(brief.resource_type.clone()),
            name: Some(brief.name.clone()),
            status: Some(brief.status.clone()),
        }
    }

    fn label(&self) -> String {
        format!(
            "{} `{}`",
            self.resource_type.as_deref().unwrap_or("resource"),
            self.name.as_deref().unwrap_or(&self.id)
        )
    }

    fn describe(&self) -> String {
        match (&self.resource_type, &self.name) {
            (Some(kind), Some(name)) => format!("{} {kind} `{name}`", self.kind),
            _ => format!("{} `{}` (not in the store)", self.kind, self.id),
        }
    }
}

fn relation_kind_text(kind: RelationKind) -> Result<String, ToolError> {
    match serde_json::to_value(kind) {
        Ok(Value::String(text)) => Ok(text),
        _ => Err(ToolError::Api(ApiError::Internal(
            "relation kind does not serialise to a string".into(),
        ))),
    }
}

fn get_related(view: &ReadView, arguments: JsonObject) -> ToolFuture<'_> {
    Box::pin(async move {
        let input: GetRelatedInput = parse(arguments)?;
        let page = page_size(input.limit);
        let direction = input.direction.unwrap_or_default();
        let kind = input.kind.map(relation_kind_text).transpose()?;
        let after = cursor_key(input.cursor)?;
        let resource = required_resource(view, &input.id).await?;
        let brief = ResourceBrief::from_value(&resource)?;

        let mut outgoing = Vec::new();
        let mut outgoing_total = 0;
        if direction != Direction::Incoming {
            let relations: Vec<&RelationText> = brief
                .relations
                .iter()
                .filter(|r| kind.as_ref().is_none_or(|k| *k == r.kind))
                .collect();
            outgoing_total = relations.len();
            for relation in relations.into_iter().take(page.size as usize) {
                // Every target exists when the store is consistent; a dangling one is shown
                // as such rather than failing the whole answer.
                let entry = match view.resource(&relation.target).await? {
                    Some(target) => {
                        RelatedEntry::of(&relation.kind, &ResourceBrief::from_value(&target)?)
                    }
                    None => RelatedEntry {
                        kind: relation.kind.clone(),
                        id: relation.target.clone(),
                        resource_type: None,
                        name: None,
                        status: None,
                    },
                };
                outgoing.push(entry);
            }
        }

        let mut incoming = Vec::new();
        let mut next_cursor = None;
        if direction != Direction::Outgoing {
            let query = ResourceQuery {
                // Relations stay within one connection's projection.
                connection_id: resource["connectionId"].as_str().map(str::to_owned),
                related_to: Some(RelationFilter {
                    target: brief.id.clone(),
                    kind: kind.clone(),
                }),
                after,
                limit: page.size,
                ..ResourceQuery::default()
            };
            let (items, cursor) = view.resource_page(query).await?;
            next_cursor = cursor;
            for item in &items {
                let source = ResourceBrief::from_text(item)?;
                for relation in source
                    .relations
                    .iter()
                    .filter(|r| r.target == brief.id && kind.as_ref().is_none_or(|k| *k == r.kind))
                {
                    incoming.push(RelatedEntry::of(&relation.kind, &source));
                }
            }
        }

        let mut summary = format!("{}.", brief.label());
        if direction != Direction::Incoming {
            summary.push_str(&format!(
                " Outgoing: {}.",
                if outgoing.is_empty() {
                    "none".to_owned()
                } else {
                    name_list(outgoing.iter().map(RelatedEntry::describe))
                }
            ));
            if outgoing_total > outgoing.len() {
                summary.push_str(&format!(
                    " Showing {} of {outgoing_total} outgoing relations; raise `limit` (at most \
                     {MAX_TOOL_PAGE}) for more.",
                    outgoing.len()
                ));
            }
        }
        if direction != Direction::Outgoing {
            summary.push_str(&format!(
                " Incoming: {}.",
                if incoming.is_empty() {
                    "none".to_owned()
                } else {
                    name_list(
                        incoming
                            .iter()
                            .map(|e| format!("{} from {}", e.kind, e.label())),
                    )
                }
            ));
            if let Some(cursor) = &next_cursor {
                summary.push_str(&format!(
                    " More incoming relations: pass cursor \"{cursor}\" for the next page."
                ));
            }
        }
        if let Some(note) = &page.note {
            summary.push_str(&format!(" Note: {note}."));
        }
        let answer = json!({
            "resource": {
                "id": brief.id,
                "type": brief.resource_type,
                "name": brief.name,
                "status": brief.status,
            },
            "outgoing": outgoing,
            "incoming": incoming,
            "nextCursor": next_cursor,
        });
        Ok(Answer {
            summary,
            json: answer.to_string(),
        })
    })
}

fn list_alerts(view: &ReadView, arguments: JsonObject) -> ToolFuture<'_> {
    Box::pin(async move {
        let input: ListAlertsInput = parse(arguments)?;
        let page = page_size(input.limit);
        let query = AlertQuery {
            state: input.state,
            severity: input.severity,
            connection_id: non_blank(input.connection),
            resource_id: non_blank(input.resource),
            after: cursor_key(input.cursor)?,
            limit: page.size,
        };
        let alerts = view.alert_page(query).await?;
        let active = alerts
            .items
            .iter()
            .filter(|a| a.state == AlertState::Active)
            .count();
        let mut summary = format!(
            "{} in this page ({active} active), oldest first",
            plural(alerts.items.len(), "alert", "alerts")
        );
        if !alerts.items.is_empty() {
            summary.push_str(&format!(
                ": {}",
                name_list(alerts.items.iter().map(|a| format!(
                    "{} ({}, {})",
                    a.name,
                    a.severity.as_str(),
                    a.state.as_str()
                )))
            ));
        }
        summary.push_str(". ");
        summary.push_str(&paging_sentence(
            alerts.next_cursor.as_deref(),
            page.note.as_deref(),
        ));
        Ok(Answer {
            summary,
            json: to_json(&alerts)?,
        })
    })
}

fn get_history(view: &ReadView, arguments: JsonObject) -> ToolFuture<'_> {
    Box::pin(async move {
        let input: GetHistoryInput = parse(arguments)?;
        let page = page_size(input.limit);
        let after = match cursor_key(input.cursor)? {
            None => None,
            Some(key) => Some(decode_history_position(&key).ok_or_else(|| {
                ToolError::Invalid(
                    "`cursor` is not a history cursor; pass a `nextCursor` of get_history \
                     unchanged"
                        .into(),
                )
            })?),
        };
        let history = view
            .history_page(HistoryQuery {
                resource_id: input.id.clone(),
                kind: input.kind,
                since: input.since,
                after,
                limit: page.size,
            })
            .await?;
        let mut summary = format!(
            "{} for `{}` in this page, newest first",
            plural(history.items.len(), "history record", "history records"),
            input.id
        );
        if let (Some(newest), Some(oldest)) = (history.items.first(), history.items.last()) {
            summary.push_str(&format!(
                ", from {} back to {}: {}",
                rfc3339(newest.at),
                rfc3339(oldest.at),
                name_list(history.items.iter().map(|r| format!(
                    "{} {}",
                    r.kind.as_str(),
                    r.record_type
                )))
            ));
        }
        summary.push_str(". ");
        summary.push_str(&paging_sentence(
            history.next_cursor.as_deref(),
            page.note.as_deref(),
        ));
        Ok(Answer {
            summary,
            json: to_json(&history)?,
        })
    })
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// "cpuPercent: 60 points, latest 12.5, min 3.25, max 40".
fn describe_series(series: &MetricSeries) -> String {
    let round = |v: f64| (v * 100.0).round() / 100.0;
    let values = series.points.iter().map(|(_, v)| *v);
    let min = values.clone().fold(f64::INFINITY, f64::min);
    let max = values.fold(f64::NEG_INFINITY, f64::max);
    match series.points.last() {
        Some((_, latest)) => format!(
            "{}: {} points, latest {}, min {}, max {}",
            series.metric.as_str(),
            series.points.len(),
            round(*latest),
            round(min),
            round(max)
        ),
        None => format!("{}: no points", series.metric.as_str()),
    }
}

fn get_metrics(view: &ReadView, arguments: JsonObject) -> ToolFuture<'_> {
    Box::pin(async move {
        let input: GetMetricsInput = parse(arguments)?;
        let points = bounded(
            "maxPoints",
            input.max_points,
            DEFAULT_TOOL_POINTS,
            MAX_TOOL_POINTS,
        );
        let until = input.until.unwrap_or_else(Utc::now);
        let since = input
            .since
            .unwrap_or(until - Duration::hours(DEFAULT_METRICS_RANGE_HOURS));
        if since >= until {
            return Err(ToolError::Invalid("`since` must be before `until`".into()));
        }
        let series = view
            .metric_series(&input.id, input.metric, since, until, points.size)
            .await?;
        let mut summary = format!(
            "{} for `{}` from {} to {}, at most {} points each",
            plural(series.len(), "metric series", "metric series"),
            input.id,
            rfc3339(since),
            rfc3339(until),
            points.size
        );
        if series.is_empty() {
            summary.push_str(": no samples in this range");
        } else {
            summary.push_str(&format!(
                ": {}",
                series
                    .iter()
                    .map(describe_series)
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        summary.push('.');
        if let Some(note) = &points.note {
            summary.push_str(&format!(" Note: {note}."));
        }
        Ok(Answer {
            summary,
            json: json!({ "series": series }).to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_list_matches_the_table() {
        let names: Vec<&str> = TOOLS.iter().map(|t| t.name).collect();
        assert_eq!(names, TOOL_NAMES);
    }

    #[test]
    fn page_sizes_are_clamped_and_the_clamp_is_said() {
        let check = |requested: Option<u64>, size: u32, note: Option<&str>| {
            let page = page_size(requested);
            assert_eq!(
                (page.size, page.note.as_deref()),
                (size, note),
                "{requested:?}"
            );
        };
        check(None, DEFAULT_TOOL_PAGE, None);
        check(Some(7), 7, None);
        check(Some(100), 100, None);
        check(
            Some(1_000_000),
            100,
            Some("limit 1000000 was clamped to 100, the most one call answers"),
        );
        check(Some(0), 1, Some("limit 0 was raised to 1"));
    }

    #[test]
    fn input_schemas_are_objects_that_refuse_unknown_fields() {
        for tool in TOOLS {
            let schema = (tool.input_schema)();
            assert_eq!(schema["type"], "object", "{}", tool.name);
            assert_eq!(schema["additionalProperties"], false, "{}", tool.name);
        }
    }
}
