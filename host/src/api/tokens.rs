//! `/api/tokens`: create (shown once), list, revoke.

use super::connections::Deleted;
use super::error::ApiError;
use super::extract::JsonBody;
use crate::auth::{generate_token, Scope};
use crate::state::AppState;
use crate::store::TokenRecord;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::{SecondsFormat, Utc};
use pylon_core::FieldErrors;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

const MAX_TOKEN_NAME_LENGTH: usize = 128;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/tokens", get(list).post(create))
        .route("/api/tokens/{id}", delete(revoke))
}

/// The body of `POST /api/tokens`. The handler parses it by hand to name every bad field;
/// this type exists for the published schema.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
pub struct TokenRequest {
    /// A label for people, 1 to 128 characters.
    #[schemars(length(min = 1, max = 128))]
    pub name: String,
    /// At least one scope.
    #[schemars(length(min = 1))]
    pub scopes: Vec<Scope>,
}

/// One token as listed; the secret itself is never shown again.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenItem {
    pub id: String,
    pub name: String,
    #[schemars(with = "Vec<Scope>")]
    pub scopes: Vec<String>,
    #[schemars(with = "chrono::DateTime<Utc>")]
    pub created_at: String,
    /// `null` until the token is first used.
    #[schemars(with = "Option<chrono::DateTime<Utc>>")]
    pub last_used_at: Option<String>,
}

/// The answer of `POST /api/tokens`: the only time the token is shown.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    pub id: String,
    pub name: String,
    #[schemars(with = "Vec<Scope>")]
    pub scopes: Vec<String>,
    #[schemars(with = "chrono::DateTime<Utc>")]
    pub created_at: String,
    /// The bearer token. Store it now: only its hash is kept.
    pub token: String,
}

fn rfc3339(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn token_item(token: &TokenRecord) -> TokenItem {
    TokenItem {
        id: token.id.clone(),
        name: token.name.clone(),
        scopes: token.scopes.clone(),
        created_at: rfc3339(token.created_at),
        last_used_at: token.last_used_at.map(rfc3339),
    }
}

async fn list(State(state): State<AppState>) -> Result<Json<Vec<TokenItem>>, ApiError> {
    let tokens = state.store.list_tokens().await?;
    Ok(Json(tokens.iter().map(token_item).collect()))
}

/// Parses `{"name", "scopes"}` with a field error for each problem.
fn parse_request(body: &Value) -> Result<(String, Vec<Scope>), ApiError> {
    let mut errors = FieldErrors::new();
    let Some(object) = body.as_object() else {
        return Err(ApiError::field("body", "must be a JSON object"));
    };
    for key in object
        .keys()
        .filter(|k| !matches!(k.as_str(), "name" | "scopes"))
    {
        errors.add(key.clone(), "unknown field");
    }
    let name = match object.get("name") {
        Some(Value::String(name)) if name.trim().is_empty() => {
            errors.add("name", "must not be empty");
            String::new()
        }
        Some(Value::String(name)) if name.trim().chars().count() > MAX_TOKEN_NAME_LENGTH => {
            errors.add(
                "name",
                format!("must be at most {MAX_TOKEN_NAME_LENGTH} characters"),
            );
            String::new()
        }
        Some(Value::String(name)) => name.trim().to_owned(),
        Some(_) => {
            errors.add("name", "must be a string");
            String::new()
        }
        None => {
            errors.add("name", "is required");
            String::new()
        }
    };
    let mut scopes = Vec::new();
    match object.get("scopes") {
        Some(Value::Array(items)) if items.is_empty() => {
            errors.add("scopes", "must name at least one scope")
        }
        Some(Value::Array(items)) => {
            for item in items {
                match item.as_str().and_then(Scope::parse) {
                    Some(scope) if !scopes.contains(&scope) => scopes.push(scope),
                    Some(_) => {}
                    None => {
                        let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                        errors.add(
                            "scopes",
                            format!(
                                "unknown scope {item}; known scopes are {}",
                                known.join(", ")
                            ),
                        );
                    }
                }
            }
        }
        Some(_) => errors.add("scopes", "must be an array of scope names"),
        None => errors.add("scopes", "is required"),
    }
    errors.into_result().map_err(ApiError::Validation)?;
    scopes.sort();
    Ok((name, scopes))
}

async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let body =
        body.ok_or_else(|| ApiError::InvalidRequest("a JSON object body is required".into()))?;
    let (name, scopes) = parse_request(&body)?;
    let new_token = generate_token();
    let record = TokenRecord {
        id: uuid::Uuid::now_v7().to_string(),
        name,
        scopes: scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        token_hash: new_token.hash,
        created_at: Utc::now(),
        last_used_at: None,
    };
    state.store.insert_token(&record).await?;
    tracing::info!(token_id = %record.id, scopes = ?record.scopes, "API token created");
    let created = CreatedToken {
        created_at: rfc3339(record.created_at),
        token: new_token.token.expose().to_owned(),
        id: record.id,
        name: record.name,
        scopes: record.scopes,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    if !state.store.delete_token(&id).await? {
        return Err(ApiError::NotFound(format!("no token with id `{id}`")));
    }
    tracing::info!(token_id = %id, "API token revoked");
    Ok(Json(Deleted { success: true, id }))
}
