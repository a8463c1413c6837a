//! The one API error type and its envelope: `{"error", "code", "details"}`.

use crate::auth::Scope;
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pylon_core::FieldErrors;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;

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
    /// The resource exists, but its provider does not deliver what the route serves (its
    /// descriptor does not declare the capability).
    #[error("{0}")]
    NotSupported(String),
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
            Self::NotFound(_) | Self::NotSupported(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::MissingScope(_) | Self::Forbidden => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> ErrorCode {
        match self {
            Self::Validation(_) => ErrorCode::ValidationError,
            Self::InvalidRequest(_) => ErrorCode::InvalidRequest,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::NotSupported(_) => ErrorCode::NotSupported,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::MissingScope(_) | Self::Forbidden => ErrorCode::MissingScope,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }

    fn details(&self) -> ErrorDetails {
        match self {
            Self::Validation(errors) => ErrorDetails {
                fields: Some(
                    errors
                        .iter()
                        .map(|(field, message)| (field.to_owned(), message.to_owned()))
                        .collect(),
                ),
                ..ErrorDetails::default()
            },
            Self::MissingScope(scope) => ErrorDetails {
                required_scope: Some(*scope),
                ..ErrorDetails::default()
            },
            Self::PayloadTooLarge { limit } => ErrorDetails {
                limit_bytes: Some(*limit),
                ..ErrorDetails::default()
            },
            _ => ErrorDetails::default(),
        }
    }

    /// The message a caller may see: the error itself, except that an internal error's
    /// detail stays in the server log.
    pub fn public_message(&self) -> String {
        match self {
            Self::Validation(errors) => format!("invalid input: {errors}"),
            Self::Internal(_) => "internal error; see the server log".to_owned(),
            other => other.to_string(),
        }
    }
}

/// The body of every error response. The handlers serialise this type, and the published
/// JSON Schema (`schemas/error.schema.json`) is derived from it, so the two cannot disagree.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorEnvelope {
    /// A human-readable message, safe to show; never contains a secret.
    pub error: String,
    pub code: ErrorCode,
    pub details: ErrorDetails,
}

/// The machine-readable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the input failed validation; `details.fields` names each bad field.
    ValidationError,
    /// 400: the request could not be read at all (malformed JSON, missing body).
    InvalidRequest,
    /// 413: the body exceeds the configured limit; `details.limitBytes` says how far.
    PayloadTooLarge,
    /// 404: no such route, connection, token or resource.
    NotFound,
    /// 404: the resource's provider does not deliver this (history or metrics); the
    /// message names the provider and what it lacks.
    NotSupported,
    /// 409: a name conflict or a concurrent edit.
    Conflict,
    /// 401: no token, or an unknown or revoked one.
    Unauthorized,
    /// 403: the token lacks the route's scope; `details.requiredScope` names it.
    MissingScope,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 500: the detail is in the server log, never in the response.
    InternalError,
}

/// Structured detail of an error; which member is present depends on the code.
#[derive(Debug, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetails {
    /// Each bad field (or query parameter) with what is wrong with it (`validation_error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
    /// The scope the route needs (`missing_scope` for a token without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_scope: Option<Scope>,
    /// The body size limit (`payload_too_large`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_bytes: Option<usize>,
}

/// Carried on 500 responses so the logging layer can record the hidden detail.
#[derive(Debug, Clone)]
pub struct InternalErrorDetail(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorEnvelope {
            error: self.public_message(),
            code: self.code(),
            details: self.details(),
        };
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
