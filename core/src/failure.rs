//! The one failure vocabulary shared by tests, polls, logs and metrics.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why talking to a platform failed. Every provider classifies every failure into exactly one
/// of these, so an admin (and a dashboard) reads the same words whatever the platform.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FailureCategory {
    /// The saved or drafted configuration itself cannot work (caught before any network call).
    InvalidConfig,
    /// The platform rejected the credentials.
    Auth,
    /// The TLS handshake failed: untrusted certificate, hostname or fingerprint mismatch.
    Tls,
    /// DNS failure, connection refused or host unreachable.
    Network,
    /// No answer within the allowed time.
    Timeout,
    /// Something answered, but it is not the platform's API.
    Endpoint,
    /// The platform answered but is a kind or version this provider does not support.
    Unsupported,
    /// Authenticated, but a read privilege is missing.
    Permission,
    /// The platform's API answered with something unexpected.
    Protocol,
}

impl FailureCategory {
    /// Every category, in a stable order (used for metrics and schema generation).
    pub const ALL: [FailureCategory; 9] = [
        Self::InvalidConfig,
        Self::Auth,
        Self::Tls,
        Self::Network,
        Self::Timeout,
        Self::Endpoint,
        Self::Unsupported,
        Self::Permission,
        Self::Protocol,
    ];

    /// The wire name, as used in JSON, logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidConfig => "invalid_config",
            Self::Auth => "auth",
            Self::Tls => "tls",
            Self::Network => "network",
            Self::Timeout => "timeout",
            Self::Endpoint => "endpoint",
            Self::Unsupported => "unsupported",
            Self::Permission => "permission",
            Self::Protocol => "protocol",
        }
    }
}

impl fmt::Display for FailureCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified failure reported by a provider. The message is shown to admins as is, so it
/// must be actionable and must never contain a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{category}: {message}")]
pub struct ProviderError {
    pub category: FailureCategory,
    pub message: String,
}

impl ProviderError {
    pub fn new(category: FailureCategory, message: impl Into<String>) -> Self {
        Self {
            category,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for category in FailureCategory::ALL {
            let json = serde_json::to_value(category).unwrap();
            assert_eq!(json, serde_json::Value::String(category.as_str().into()));
        }
    }
}
