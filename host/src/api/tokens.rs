//! `/api/tokens`: create (shown once), list, revoke.

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
use serde_json::{json, Value};

const MAX_TOKEN_NAME_LENGTH: usize = 128;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/tokens", get(list).post(create))
        .route("/api/tokens/{id}", delete(revoke))
}

fn token_json(token: &TokenRecord) -> Value {
    json!({
        "id": token.id,
        "name": token.name,
        "scopes": token.scopes,
        "createdAt": token.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "lastUsedAt": token.last_used_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
    })
}

async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let tokens = state.store.list_tokens().await?;
    Ok(Json(Value::Array(tokens.iter().map(token_json).collect())))
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
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    let mut out = token_json(&record);
    if let Value::Object(map) = &mut out {
        map.remove("lastUsedAt");
        map.insert(
            "token".into(),
            Value::String(new_token.token.expose().to_owned()),
        );
    }
    Ok((StatusCode::CREATED, Json(out)))
}

async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !state.store.delete_token(&id).await? {
        return Err(ApiError::NotFound(format!("no token with id `{id}`")));
    }
    tracing::info!(token_id = %id, "API token revoked");
    Ok(Json(json!({ "success": true, "id": id })))
}
