//! [`AssistantServer`]: the MCP handler. Tools come from [`super::tools`]; resources are
//! readable as `pylon://resources/{id}` and listed a bounded page at a time.

use super::tools::{self, Answer, ToolError, MAX_TOOL_PAGE, TOOLS};
use super::view::{ReadView, TokenStanding};
use crate::api::error::ApiError;
use crate::api::resources::decode_cursor;
use crate::store::ResourceQuery;
use pylon_core::SecretString;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::Deserialize;

/// The URI of a resource: this prefix and its id.
pub const RESOURCE_URI_PREFIX: &str = "pylon://resources/";
const JSON_MIME_TYPE: &str = "application/json";

/// How a request was admitted.
#[derive(Clone)]
pub enum Admission {
    /// By the API's auth middleware, before the request reached this handler.
    Http,
    /// By this token, looked up on every request (stdio has no middleware).
    Token(SecretString),
}

/// The MCP server: read-only tools and resources over a [`ReadView`].
#[derive(Clone)]
pub struct AssistantServer {
    view: ReadView,
    admission: Admission,
}

const INSTRUCTIONS: &str = "Read-only access to Pylon's canonical inventory: agents \
    (hypervisor hosts), VMs and storage (datastores) from every connected platform, their \
    relations, alerts and connection health. Start with search_resources or list_connections; \
    get_resource shows one resource in full and get_related follows its relations. Answers are \
    bounded: follow nextCursor for more. Nothing here changes anything.";

impl AssistantServer {
    pub fn new(view: ReadView, admission: Admission) -> Self {
        Self { view, admission }
    }

    async fn admit(&self) -> Result<(), ErrorData> {
        let Admission::Token(token) = &self.admission else {
            return Ok(());
        };
        match self
            .view
            .token_standing(token.expose())
            .await
            .map_err(internal)?
        {
            TokenStanding::Admitted => Ok(()),
            TokenStanding::Unknown => Err(ErrorData::invalid_request(
                "the configured mcp_token is unknown or revoked",
                None,
            )),
            TokenStanding::MissingScope => Err(ErrorData::invalid_request(
                "the configured mcp_token lacks the monitoring:read scope",
                None,
            )),
        }
    }
}

/// A failure the caller cannot fix: logged here, answered without its detail.
fn internal(error: ApiError) -> ErrorData {
    if let ApiError::Internal(detail) = &error {
        tracing::error!(error = %detail, "assistant request failed");
    }
    ErrorData::internal_error(error.public_message(), None)
}

fn tool_result(outcome: Result<Answer, ToolError>) -> Result<CallToolResult, ErrorData> {
    match outcome {
        Ok(answer) => Ok(CallToolResult::success(vec![
            ContentBlock::text(answer.summary),
            ContentBlock::text(answer.json),
        ])),
        Err(ToolError::Invalid(message)) => {
            Ok(CallToolResult::error(vec![ContentBlock::text(message)]))
        }
        Err(ToolError::Api(error @ ApiError::Internal(_))) => Err(internal(error)),
        // Not found, invalid input and the like: the assistant can act on the message.
        Err(ToolError::Api(error)) => Ok(CallToolResult::error(vec![ContentBlock::text(
            error.public_message(),
        )])),
    }
}

/// The fields of a stored resource its MCP listing names.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedResource {
    id: String,
    #[serde(rename = "type")]
    resource_type: String,
    name: String,
    platform: String,
    connection_id: String,
}

impl ServerHandler for AssistantServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("pylon", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            TOOLS.iter().map(tools::ToolSpec::definition).collect(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::find(name).map(tools::ToolSpec::definition)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.admit().await?;
        let Some(tool) = tools::find(&request.name) else {
            return Err(ErrorData::invalid_params(
                format!("no tool named `{}`", request.name),
                None,
            ));
        };
        let arguments = request.arguments.unwrap_or_default();
        tool_result((tool.run)(&self.view, arguments).await).map(Into::into)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.admit().await?;
        let after = match request.and_then(|r| r.cursor).filter(|c| !c.is_empty()) {
            None => None,
            Some(cursor) => Some(decode_cursor(&cursor).ok_or_else(|| {
                ErrorData::invalid_params("the cursor is not one this server answered", None)
            })?),
        };
        let (items, next_cursor) = self
            .view
            .resource_page(ResourceQuery {
                after,
                limit: MAX_TOOL_PAGE,
                ..ResourceQuery::default()
            })
            .await
            .map_err(internal)?;
        let mut resources = Vec::with_capacity(items.len());
        for item in &items {
            let listed: ListedResource = serde_json::from_str(&item.json)
                .map_err(|e| internal(ApiError::Internal(format!("stored resource: {e}"))))?;
            resources.push(
                Resource::new(
                    format!("{RESOURCE_URI_PREFIX}{}", listed.id),
                    listed.name.clone(),
                )
                .with_description(format!(
                    "{} `{}` on {}, connection {}",
                    listed.resource_type, listed.name, listed.platform, listed.connection_id
                ))
                .with_mime_type(JSON_MIME_TYPE),
            );
        }
        let mut result = ListResourcesResult::with_all_items(resources);
        result.next_cursor = next_cursor;
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(format!("{RESOURCE_URI_PREFIX}{{id}}"), "resource")
                .with_description(
                    "One canonical resource (agent, vm or storage) by id, as get_resource \
                     answers it.",
                )
                .with_mime_type(JSON_MIME_TYPE),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.admit().await?;
        let not_found =
            || ErrorData::resource_not_found(format!("no resource at `{}`", request.uri), None);
        let id = request
            .uri
            .strip_prefix(RESOURCE_URI_PREFIX)
            .filter(|id| !id.is_empty())
            .ok_or_else(not_found)?;
        let resource = self
            .view
            .resource(id)
            .await
            .map_err(internal)?
            .ok_or_else(not_found)?;
        Ok(ReadResourceResult::new(vec![ResourceContents::text(
            resource.to_string(),
            request.uri.clone(),
        )
        .with_mime_type(JSON_MIME_TYPE)])
        .into())
    }
}
