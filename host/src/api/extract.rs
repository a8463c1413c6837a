//! Extractors whose rejections use the API error envelope.

use super::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use pylon_core::Provider;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// A JSON request body. Read as bytes and parsed here, whatever the `Content-Type`, so that
/// every failure (too large, malformed, wrong shape) answers with the envelope instead of
/// axum's plain-text 4xx. An empty body reads as `None`.
pub struct JsonBody(pub Option<Value>);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.settings.max_body_bytes;
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge { limit }
                } else {
                    ApiError::InvalidRequest(format!("cannot read the request body: {rejection}"))
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        serde_json::from_slice(&bytes)
            .map(|value| Self(Some(value)))
            .map_err(|e| {
                ApiError::InvalidRequest(format!(
                    "malformed JSON at line {}, column {}: {}",
                    e.line(),
                    e.column(),
                    e.classify_description()
                ))
            })
    }
}

trait ClassifyDescription {
    fn classify_description(&self) -> &'static str;
}

impl ClassifyDescription for serde_json::Error {
    /// A short description that never quotes the input (which may hold a secret).
    fn classify_description(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Eof => "unexpected end of input",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected value",
            serde_json::error::Category::Io => "read error",
        }
    }
}

/// The provider named by the `{slug}` path segment, or 404.
pub struct ProviderBySlug(pub Arc<dyn Provider>);

impl FromRequestParts<AppState> for ProviderBySlug {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
        let slug = params.get("slug").map(String::as_str).unwrap_or_default();
        state
            .registry
            .by_slug(slug)
            .cloned()
            .map(Self)
            .ok_or_else(|| ApiError::NotFound(format!("no provider is registered under `{slug}`")))
    }
}
