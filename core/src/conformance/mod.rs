//! The conformance kit: one suite that judges every provider, driven by the provider's
//! [`crate::fixture`] data.
//!
//! [`run`] starts the fixture's target, runs every [`CheckId`] and answers a [`Report`].
//! A check ends as one of four [`Verdict`]s. `NotApplicable` is printed as *skipped*, never
//! counted as a pass; `Waived` prints its reason and tracking note on every run; a waiver for
//! a check that passes fails, so stale waivers cannot pile up; and the mandatory checks
//! ([`CheckId::is_mandatory`]) fail rather than being skipped or waived. If the target cannot
//! start, every check fails: a suite that judged nothing is not green.
//!
//! Every provider call runs under a tracing subscriber that captures each log line, so the
//! secret-leak check reads the logs as well as the results, errors and `Debug` renderings.
//!
//! Bless mode: with `PYLON_CONFORMANCE_BLESS=1` the golden projection is rewritten from what
//! the provider projected, and the golden check fails with a note to review the diff and run
//! again, so a blessed run is never mistaken for a passing one.

mod capture;
mod checks;
mod golden;

pub use crate::fixture::{
    CheckId, ConformanceFixture, FailureCase, FixtureError, FixturePlan, FixtureTarget,
    InvalidDraft, UnavailableFixture, Waiver,
};

use crate::provider::Provider;
use std::collections::BTreeMap;
use std::fmt;

/// The environment variable that turns on bless mode.
pub const BLESS_ENV: &str = "PYLON_CONFORMANCE_BLESS";

/// The connection id every projection in a run is made for, so goldens are reproducible.
pub const CONNECTION_ID: &str = "conformance-connection";

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// What is wrong, specific enough to act on.
    Fail(String),
    /// Why the check does not apply to this provider; printed as skipped.
    NotApplicable(String),
    /// The check failed and the provider holds a waiver for it.
    Waived {
        finding: String,
        reason: &'static str,
        tracking: &'static str,
    },
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    pub check: CheckId,
    pub verdict: Verdict,
}

/// The result of a whole run for one provider.
#[derive(Debug, Clone)]
pub struct Report {
    pub platform: &'static str,
    pub results: Vec<CheckResult>,
}

impl Report {
    /// The verdict for `check`.
    pub fn verdict(&self, check: CheckId) -> Option<&Verdict> {
        self.results
            .iter()
            .find(|r| r.check == check)
            .map(|r| &r.verdict)
    }

    /// Checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Fail(_)))
    }

    pub fn is_conformant(&self) -> bool {
        self.failures().next().is_none()
    }

    /// Prints the report (skips and waivers included, on every run) and panics when a
    /// check failed. For use in a provider's or the host's tests.
    pub fn assert_conformant(&self) {
        println!("{self}");
        assert!(
            self.is_conformant(),
            "provider `{}` is not conformant:\n{self}",
            self.platform
        );
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut tally = BTreeMap::<&str, usize>::new();
        writeln!(f, "conformance of `{}`:", self.platform)?;
        for result in &self.results {
            let name = result.check.as_str();
            let word = match &result.verdict {
                Verdict::Pass => {
                    writeln!(f, "  PASS     {name}")?;
                    "passed"
                }
                Verdict::Fail(why) => {
                    writeln!(f, "  FAIL     {name}: {why}")?;
                    "failed"
                }
                Verdict::NotApplicable(why) => {
                    writeln!(f, "  SKIPPED  {name} (not applicable): {why}")?;
                    "skipped"
                }
                Verdict::Waived {
                    finding,
                    reason,
                    tracking,
                } => {
                    writeln!(
                        f,
                        "  WAIVED   {name}: {reason} [tracking: {tracking}]; finding: {finding}"
                    )?;
                    "waived"
                }
            };
            *tally.entry(word).or_default() += 1;
        }
        let summary: Vec<String> = tally.iter().map(|(k, v)| format!("{v} {k}")).collect();
        write!(f, "  = {}", summary.join(", "))
    }
}

/// Runs the whole suite for `provider` against `fixture`.
pub async fn run(provider: &dyn Provider, fixture: &dyn ConformanceFixture) -> Report {
    let platform = provider.descriptor().platform;
    let capture = capture::LogCapture::default();
    let findings = {
        use tracing::instrument::WithSubscriber;
        checks::run_all(provider, fixture, &capture)
            .with_subscriber(capture.dispatch())
            .await
    };
    Report {
        platform,
        results: judge(findings.findings, &findings.waivers),
    }
}

/// What the checks found, before waivers are applied.
pub(crate) struct Findings {
    pub findings: BTreeMap<CheckId, Verdict>,
    pub waivers: Vec<Waiver>,
}

/// Applies the rules no provider can bend: every check has a verdict, mandatory checks are
/// neither skipped nor waived, and a waiver must excuse an actual failure.
fn judge(mut findings: BTreeMap<CheckId, Verdict>, waivers: &[Waiver]) -> Vec<CheckResult> {
    CheckId::ALL
        .iter()
        .map(|&check| {
            let found = findings.remove(&check).unwrap_or_else(|| {
                Verdict::Fail("the kit produced no verdict for this check".into())
            });
            let waiver = waivers.iter().find(|w| w.check == check);
            let verdict = match (found, waiver) {
                (Verdict::NotApplicable(why), _) if check.is_mandatory() => Verdict::Fail(format!(
                    "a mandatory check cannot be skipped (it said: {why})"
                )),
                (found, Some(_)) if check.is_mandatory() => Verdict::Fail(format!(
                    "a mandatory check cannot be waived; remove the waiver (verdict was {found:?})"
                )),
                (Verdict::Fail(finding), Some(waiver)) => Verdict::Waived {
                    finding,
                    reason: waiver.reason,
                    tracking: waiver.tracking,
                },
                (Verdict::Pass, Some(waiver)) => Verdict::Fail(format!(
                    "waived ({}) but the check passes: remove the waiver",
                    waiver.tracking
                )),
                (found, _) => found,
            };
            CheckResult { check, verdict }
        })
        .collect()
}

#[cfg(test)]
mod tests;
