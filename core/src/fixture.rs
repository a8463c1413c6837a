//! What a provider hands the conformance kit: a fixture that starts a known target and says,
//! as data, what the provider must do against it.
//!
//! The fixture contract lives outside the `conformance` feature on purpose: a provider's
//! registration ([`crate::ProviderRegistration::with_conformance`]) names its fixture in
//! every build, so enrolment cannot be forgotten. Only the runner and its checks
//! (`pylon_core::conformance`) sit behind the feature. A provider whose fixture needs
//! test-only machinery (a simulator) compiles that part behind its own `conformance`
//! feature and otherwise returns a fixture whose [`ConformanceFixture::start`] fails, which
//! fails the run instead of letting it pass green.

use crate::failure::FailureCategory;
use async_trait::async_trait;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Builds a provider's fixture. A plain function pointer so a registration stays `const`.
pub type FixtureFactory = fn() -> Box<dyn ConformanceFixture>;

/// Why a fixture could not do what the kit asked. Any such error fails the run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("conformance fixture: {0}")]
pub struct FixtureError(pub String);

/// A provider's conformance fixture.
#[async_trait]
pub trait ConformanceFixture: Send + Sync {
    /// Starts the known target (a simulator, a file, a fake). An error fails the run: a
    /// suite whose target never came up has judged nothing.
    async fn start(&self) -> Result<Box<dyn FixtureTarget>, FixtureError>;
}

/// A running target and the expectations that go with it.
#[async_trait]
pub trait FixtureTarget: Send + Sync {
    /// The expectations, as data. Called once, after the target started (addresses and
    /// ports are only known then).
    fn plan(&self) -> FixturePlan;

    /// Takes the target down (`true`) or brings it back (`false`) without losing its state,
    /// so the kit can see a poll fail and the next one recover.
    async fn set_outage(&self, down: bool) -> Result<(), FixtureError>;

    /// How many sessions the target currently holds open for the provider, if the target
    /// can tell. `None` makes the session-lifecycle check not applicable.
    fn open_sessions(&self) -> Option<u64>;

    /// Makes the target raise one platform alarm on one of the resources it projects, for
    /// the check of a declared `alarms` capability. `Ok(false)` (the default) says the target
    /// cannot; a provider declaring `alarms` then fails that check rather than passing
    /// unverified.
    async fn raise_alarm(&self) -> Result<bool, FixtureError> {
        Ok(false)
    }

    /// Stops the target and everything the fixture started.
    async fn stop(self: Box<Self>);
}

/// Everything the kit checks a provider against, for one running target.
#[derive(Debug, Clone)]
pub struct FixturePlan {
    /// A draft (the JSON an API client would send) that validates, tests and polls
    /// successfully against the target.
    pub good: Value,
    /// Secret values used anywhere in this plan. None may appear in any output, error,
    /// `Debug` rendering or log line.
    pub secrets: Vec<String>,
    /// Drafts validation must reject, each with the fields it must name.
    pub invalid: Vec<InvalidDraft>,
    /// Drafts that validate but whose connection test must fail with one category.
    pub failures: Vec<FailureCase>,
    /// Categories the provider cannot produce against any target, each with the reason.
    /// Every category must be either in `failures` or here.
    pub not_produced: Vec<(FailureCategory, &'static str)>,
    /// The golden projection of the good draft's target: a JSON file written in bless mode
    /// (`PYLON_CONFORMANCE_BLESS=1`) and compared on every other run.
    pub golden: PathBuf,
    /// Top-level resource fields (beyond `lastSeenAt`) whose values change between runs of
    /// the same target, such as a path under a temporary directory; masked in the golden
    /// comparison. Keys are `identity.<name>`, `details.<name>`, `metrics.<name>` or
    /// `<field>`, optionally for one type only: `storage/details.url`.
    pub volatile: Vec<&'static str>,
    /// Deadline for one connection test.
    pub test_timeout: Duration,
    /// Checks this provider is excused from, each printed on every run. Mandatory checks
    /// cannot be waived.
    pub waivers: Vec<Waiver>,
}

/// A draft validation must reject.
#[derive(Debug, Clone)]
pub struct InvalidDraft {
    pub draft: Value,
    /// Each of these fields must carry an error.
    pub fields: Vec<&'static str>,
}

/// A draft whose connection test must fail with `category`.
#[derive(Debug, Clone)]
pub struct FailureCase {
    pub category: FailureCategory,
    pub draft: Value,
    /// What about the target makes it fail, for the report.
    pub setup: &'static str,
}

/// An excused check. The reason and the tracking note are printed on every run so waivers
/// cannot pile up unseen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiver {
    pub check: CheckId,
    pub reason: &'static str,
    /// Where the fix is tracked (an issue reference).
    pub tracking: &'static str,
}

/// Every check of the conformance kit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CheckId {
    /// Ids, slug, fields, secret fields declared, readiness and support matrix agree.
    Descriptor,
    /// Bad drafts are rejected with field errors; the good one is accepted.
    Validation,
    /// The good draft tests successfully; every failure case yields exactly its category.
    TestClassification,
    /// No secret in any output, error, `Debug` rendering or log line.
    NoSecretLeak,
    /// Open/close twice and close without a poll leave no session open on the target.
    SessionLifecycle,
    /// Two polls project the same ids; ids are URL-safe, unique and scoped to the connection.
    StableIds,
    /// Only the descriptor's canonical types, with the provider's platform and connection.
    CanonicalTypes,
    /// Every relation names a resource of the same projection.
    RelationsResolve,
    /// The test's counts and the contribution summary equal the projected counts.
    SummaryMatchesProjection,
    /// The projection equals the golden file.
    GoldenProjection,
    /// A poll during an outage is classified; the next poll after it recovers.
    OutageRecovery,
    /// Every declared capability shows in what the provider delivers.
    DeclaredCapabilities,
}

impl CheckId {
    pub const ALL: [CheckId; 12] = [
        Self::Descriptor,
        Self::Validation,
        Self::TestClassification,
        Self::NoSecretLeak,
        Self::SessionLifecycle,
        Self::StableIds,
        Self::CanonicalTypes,
        Self::RelationsResolve,
        Self::SummaryMatchesProjection,
        Self::GoldenProjection,
        Self::OutageRecovery,
        Self::DeclaredCapabilities,
    ];

    /// The name printed in reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Descriptor => "descriptor",
            Self::Validation => "validation",
            Self::TestClassification => "test-classification",
            Self::NoSecretLeak => "no-secret-leak",
            Self::SessionLifecycle => "session-lifecycle",
            Self::StableIds => "stable-ids",
            Self::CanonicalTypes => "canonical-types",
            Self::RelationsResolve => "relations-resolve",
            Self::SummaryMatchesProjection => "summary-matches-projection",
            Self::GoldenProjection => "golden-projection",
            Self::OutageRecovery => "outage-recovery",
            Self::DeclaredCapabilities => "declared-capabilities",
        }
    }

    /// Mandatory checks can be neither skipped nor waived: descriptor, validate, test,
    /// poll, project, health and summary are the floor every provider stands on. A secret
    /// leak is never excusable either.
    pub const fn is_mandatory(self) -> bool {
        !matches!(self, Self::SessionLifecycle | Self::DeclaredCapabilities)
    }
}

/// A fixture for a provider built without the test machinery its real fixture needs.
/// Starting it fails, so the run fails and says how to build it.
pub struct UnavailableFixture {
    pub reason: &'static str,
}

#[async_trait]
impl ConformanceFixture for UnavailableFixture {
    async fn start(&self) -> Result<Box<dyn FixtureTarget>, FixtureError> {
        Err(FixtureError(self.reason.to_owned()))
    }
}
