//! The poll health state machine, computed here once so every provider reports health the
//! same way.
//!
//! ```text
//!            enable/create            success (complete)
//!  disabled ───────────────▶ pending ─────────────────────▶ healthy
//!      ▲                        │  success (partial)           │ ▲
//!      │ disable (any state)    ├────────────────▶ degraded ◀──┘ │
//!      │                        │ failure                 │      │
//!      └────────────────────────┴──────────▶ failing ◀────┘──────┘
//! ```
//! The status is derived from the recorded facts, never stored on its own, so it cannot
//! disagree with them.

use crate::failure::FailureCategory;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The summary state of a connection's polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Enabled, but nothing has been attempted yet.
    Pending,
    /// The last attempt succeeded completely.
    Healthy,
    /// The last attempt succeeded, but part of the data could not be read.
    Degraded,
    /// The last attempt failed.
    Failing,
    /// The connection is disabled and not polled.
    Disabled,
}

impl HealthStatus {
    /// The wire name, as serialised (`pending`, `healthy`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Pending => "pending",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Failing => "failing",
            HealthStatus::Disabled => "disabled",
        }
    }
}

/// The last classified failure, as shown to admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LastError {
    pub at: DateTime<Utc>,
    pub category: FailureCategory,
    pub message: String,
}

/// The persisted health of one connection (the `poll` block of a connection item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", from = "PollHealthRepr")]
pub struct PollHealth {
    pub interval_seconds: u32,
    pub status: HealthStatus,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    pub last_error: Option<LastError>,
    /// Whether the last successful attempt was partial; drives `degraded`.
    #[serde(default, skip_serializing)]
    pub last_success_partial: bool,
}

/// What is read back: the serialised form leaves out `last_success_partial` (the `poll`
/// block shows only the GUIDE's fields), so it is recovered from the status written with
/// it. Without this, a `degraded` connection read back from a store would re-derive as
/// `healthy`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct PollHealthRepr {
    interval_seconds: u32,
    status: HealthStatus,
    last_attempt_at: Option<DateTime<Utc>>,
    last_success_at: Option<DateTime<Utc>>,
    last_failure_at: Option<DateTime<Utc>>,
    consecutive_failures: u32,
    last_error: Option<LastError>,
    #[serde(default)]
    last_success_partial: bool,
}

impl From<PollHealthRepr> for PollHealth {
    fn from(repr: PollHealthRepr) -> Self {
        PollHealth {
            interval_seconds: repr.interval_seconds,
            last_success_partial: repr.last_success_partial
                || repr.status == HealthStatus::Degraded,
            status: repr.status,
            last_attempt_at: repr.last_attempt_at,
            last_success_at: repr.last_success_at,
            last_failure_at: repr.last_failure_at,
            consecutive_failures: repr.consecutive_failures,
            last_error: repr.last_error,
        }
    }
}

impl PollHealth {
    /// Health of a connection that was just created (or enabled) and not yet attempted.
    pub fn new(interval_seconds: u32, enabled: bool) -> Self {
        let mut health = Self {
            interval_seconds,
            status: HealthStatus::Pending,
            last_attempt_at: None,
            last_success_at: None,
            last_failure_at: None,
            consecutive_failures: 0,
            last_error: None,
            last_success_partial: false,
        };
        health.set_enabled(enabled);
        health
    }

    /// Records a successful attempt; `partial` when some data could not be read.
    pub fn record_success(&mut self, at: DateTime<Utc>, partial: bool) {
        self.last_attempt_at = Some(at);
        self.last_success_at = Some(at);
        self.last_success_partial = partial;
        self.consecutive_failures = 0;
        self.last_error = None;
        self.refresh_status();
    }

    /// Records a failed attempt with its classified cause.
    pub fn record_failure(&mut self, at: DateTime<Utc>, category: FailureCategory, message: &str) {
        self.last_attempt_at = Some(at);
        self.last_failure_at = Some(at);
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.last_error = Some(LastError {
            at,
            category,
            message: message.to_owned(),
        });
        self.refresh_status();
    }

    /// Applies an enable/disable switch. History is kept; only the status changes.
    pub fn set_enabled(&mut self, enabled: bool) {
        if enabled {
            if self.status == HealthStatus::Disabled {
                self.status = HealthStatus::Pending;
            }
            self.refresh_status();
        } else {
            self.status = HealthStatus::Disabled;
        }
    }

    fn refresh_status(&mut self) {
        if self.status == HealthStatus::Disabled {
            return;
        }
        self.status = match (self.last_attempt_at, self.last_failure_at) {
            (None, _) => HealthStatus::Pending,
            (Some(attempt), Some(failure))
                if attempt == failure && self.consecutive_failures > 0 =>
            {
                HealthStatus::Failing
            }
            _ if self.last_success_partial => HealthStatus::Degraded,
            _ => HealthStatus::Healthy,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, second).unwrap()
    }

    #[test]
    fn wire_names_match_serialisation() {
        for status in [
            HealthStatus::Pending,
            HealthStatus::Healthy,
            HealthStatus::Degraded,
            HealthStatus::Failing,
            HealthStatus::Disabled,
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
    }

    #[test]
    fn degraded_survives_a_round_trip_through_storage() {
        let mut health = PollHealth::new(60, true);
        health.record_success(at(1), true);
        let stored = serde_json::to_string(&health).unwrap();
        assert!(!stored.contains("Partial"), "{stored}");
        let mut back: PollHealth = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, health);
        back.set_enabled(true);
        assert_eq!(back.status, HealthStatus::Degraded);
    }

    #[test]
    fn walks_the_state_machine() {
        let mut health = PollHealth::new(60, true);
        assert_eq!(health.status, HealthStatus::Pending);

        health.record_failure(at(1), FailureCategory::Auth, "bad password");
        assert_eq!(health.status, HealthStatus::Failing);
        assert_eq!(health.consecutive_failures, 1);
        health.record_failure(at(2), FailureCategory::Network, "refused");
        assert_eq!(health.consecutive_failures, 2);
        assert_eq!(
            health.last_error.as_ref().unwrap().category,
            FailureCategory::Network
        );

        health.record_success(at(3), true);
        assert_eq!(health.status, HealthStatus::Degraded);
        assert_eq!(health.consecutive_failures, 0);
        assert!(health.last_error.is_none());
        assert_eq!(health.last_failure_at, Some(at(2)));

        health.record_success(at(4), false);
        assert_eq!(health.status, HealthStatus::Healthy);

        health.set_enabled(false);
        assert_eq!(health.status, HealthStatus::Disabled);
        // A saved-connection test of a disabled connection records facts, keeps it disabled.
        health.record_failure(at(5), FailureCategory::Timeout, "slow");
        assert_eq!(health.status, HealthStatus::Disabled);
        health.set_enabled(true);
        assert_eq!(health.status, HealthStatus::Failing);
    }

    #[test]
    fn new_disabled_connection_is_disabled() {
        assert_eq!(PollHealth::new(60, false).status, HealthStatus::Disabled);
    }
}
