//! API tokens and scopes.
//!
//! Tokens are 256 random bits shown once at creation and stored only as their SHA-256 hash
//! (a fast hash is enough: the input has full entropy, so there is nothing to brute-force).
//! Every lookup goes to the store, so a revoked token stops working on the next request.
//! Each route's required scope is declared in [`required_scope`], the one table consulted by
//! the authentication middleware; a route missing from it is refused, never left open.

use crate::api::error::ApiError;
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use rand::RngCore;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// What a token may do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum Scope {
    #[serde(rename = "settings:read")]
    SettingsRead,
    #[serde(rename = "settings:write")]
    SettingsWrite,
    #[serde(rename = "monitoring:read")]
    MonitoringRead,
}

impl Scope {
    pub const ALL: [Scope; 3] = [
        Self::SettingsRead,
        Self::SettingsWrite,
        Self::MonitoringRead,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SettingsRead => "settings:read",
            Self::SettingsWrite => "settings:write",
            Self::MonitoringRead => "monitoring:read",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a route is open to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed (liveness, readiness, metrics, API document).
    Public,
    /// A valid token holding this scope.
    Scoped(Scope),
}

/// The one table of route scopes, keyed by method and the route pattern as registered.
/// Returns `None` for an undeclared route, which the middleware refuses.
pub fn required_scope(method: &Method, route: &str) -> Option<Access> {
    use Access::{Public, Scoped};
    use Scope::*;
    let access = match (method.as_str(), route) {
        ("GET", "/healthz" | "/readyz" | "/metrics" | "/openapi.json") => Public,
        // The admin UI's static files hold no data; the page asks for a token to call the API.
        ("GET" | "HEAD", "/" | "/ui/{file}") => Public,
        ("GET", "/api/platforms") => Scoped(SettingsRead),
        ("GET", "/api/tokens") => Scoped(SettingsWrite),
        ("POST", "/api/tokens") => Scoped(SettingsWrite),
        ("DELETE", "/api/tokens/{id}") => Scoped(SettingsWrite),
        ("GET", "/api/{slug}/connections") => Scoped(SettingsRead),
        ("POST", "/api/{slug}/connections") => Scoped(SettingsWrite),
        ("PUT", "/api/{slug}/connections/{id}") => Scoped(SettingsWrite),
        ("DELETE", "/api/{slug}/connections/{id}") => Scoped(SettingsWrite),
        ("POST", "/api/{slug}/connections/test") => Scoped(SettingsWrite),
        ("POST", "/api/{slug}/connections/{id}/test") => Scoped(SettingsWrite),
        ("GET", "/api/resources" | "/api/resources/{id}") => Scoped(MonitoringRead),
        ("GET", "/api/resources/{id}/history" | "/api/resources/{id}/metrics") => {
            Scoped(MonitoringRead)
        }
        ("GET", "/api/alerts") => Scoped(MonitoringRead),
        // The MCP endpoint answers only POST: it runs stateless, with no stream to GET and
        // no session to DELETE.
        ("POST", "/mcp") => Scoped(MonitoringRead),
        _ => return None,
    };
    Some(access)
}

/// A freshly generated token: the secret shown once, and the hash that is stored.
pub struct NewToken {
    pub token: pylon_core::SecretString,
    pub hash: String,
}

/// Prefix that makes Pylon tokens recognisable to secret scanners.
const TOKEN_PREFIX: &str = "pylon_";

pub fn generate_token() -> NewToken {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = hash_token(&token);
    NewToken {
        token: pylon_core::SecretString::new(token),
        hash,
    }
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The authenticated caller, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
    pub scopes: Vec<Scope>,
}

/// Middleware: resolves the bearer token and enforces the route's declared scope.
pub async fn authorize(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let Some(route) = route else {
        // No route matched: let the router answer 404/405.
        return Ok(next.run(request).await);
    };
    let Some(access) = required_scope(request.method(), &route) else {
        // Fail closed: a handler whose method is missing from the table is never reached.
        let declared_for_other_methods = [Method::GET, Method::POST, Method::PUT, Method::DELETE]
            .iter()
            .any(|m| required_scope(m, &route).is_some());
        if declared_for_other_methods {
            return Err(ApiError::MethodNotAllowed);
        }
        tracing::error!(%route, method = %request.method(), "route has no declared scope; refusing");
        return Err(ApiError::Forbidden);
    };
    let Access::Scoped(scope) = access else {
        return Ok(next.run(request).await);
    };

    let token = bearer_token(&request).ok_or(ApiError::Unauthorized)?;
    let record = state
        .store
        .find_token_by_hash(&hash_token(token))
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let scopes: Vec<Scope> = record
        .scopes
        .iter()
        .filter_map(|s| Scope::parse(s))
        .collect();
    if !scopes.contains(&scope) {
        return Err(ApiError::MissingScope(scope));
    }
    if let Err(error) = state
        .store
        .touch_token(&record.id, chrono::Utc::now())
        .await
    {
        // Failing to record last use must not fail the request.
        tracing::warn!(token_id = %record.id, %error, "could not record token use");
    }
    let mut request = request;
    request.extensions_mut().insert(Caller {
        token_id: record.id,
        scopes,
    });
    Ok(next.run(request).await)
}

fn bearer_token(request: &Request) -> Option<&str> {
    let header = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
