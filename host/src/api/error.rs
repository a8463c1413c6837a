//! The one API error type and its envelope: `{"error", "code", "details"}`.

use crate::auth::Scope;
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pylon_core::FieldErrors;
use serde_json::{json, Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The input failed validation; each bad field is named.
    #[error("invalid input")]
    Validation(FieldErrors),
    /// The request could not be read at all (malformed JSON, wrong shape).
    #[error("{0}")]
    InvalidRequest(String),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("missing or unknown API token")]
    Unauthorized,
    #[error("this token lacks the `{0}` scope")]
    MissingScope(Scope),
    #[error("this route is not open to API tokens")]
    Forbidden,
    #[error("this route does not accept that method")]
    MethodNotAllowed,
    /// Anything else. The detail is logged by the error-logging layer, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn field(field: &str, message: &str) -> Self {
        let mut errors = FieldErrors::new();
        errors.add(field, message);
        Self::Validation(errors)
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) | Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::MissingScope(_) | Self::Forbidden => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation_error",
            Self::InvalidRequest(_) => "invalid_request",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Unauthorized => "unauthorized",
            Self::MissingScope(_) | Self::Forbidden => "missing_scope",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Internal(_) => "internal_error",
        }
    }

    fn details(&self) -> Value {
        match self {
            Self::Validation(errors) => {
                let fields: Map<String, Value> = errors
                    .iter()
                    .map(|(field, message)| (field.to_owned(), Value::String(message.to_owned())))
                    .collect();
                json!({ "fields": fields })
            }
            Self::MissingScope(scope) => json!({ "requiredScope": scope.as_str() }),
            Self::PayloadTooLarge { limit } => json!({ "limitBytes": limit }),
            _ => json!({}),
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::Validation(errors) => format!("invalid input: {errors}"),
            Self::Internal(_) => "internal error; see the server log".to_owned(),
            other => other.to_string(),
        }
    }
}

/// Carried on 500 responses so the logging layer can record the hidden detail.
#[derive(Debug, Clone)]
pub struct InternalErrorDetail(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": self.public_message(),
            "code": self.code(),
            "details": self.details(),
        });
        let status = self.status();
        let mut response = (status, Json(body)).into_response();
        if let Self::Internal(detail) = self {
            response
                .extensions_mut()
                .insert(InternalErrorDetail(detail));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NameConflict => {
                Self::Conflict("a connection with this name already exists".to_owned())
            }
            StoreError::NotFound => Self::NotFound("not found".to_owned()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<crate::secrets::SecretsError> for ApiError {
    fn from(error: crate::secrets::SecretsError) -> Self {
        Self::Internal(error.to_string())
    }
}
