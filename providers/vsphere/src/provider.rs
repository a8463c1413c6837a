//! `pylon_core::Provider` for vSphere: validation, connection tests and (for now, a
//! placeholder of) polling.
//!
//! A connection test is the whole admission story in one call: connect, check the endpoint
//! is a supported vCenter, log in, read `about` and the inventory counts, log out. It runs
//! under one deadline (`TestContext::timeout`), and a session that was opened is logged out
//! whatever happened after login, including a missed deadline.

use crate::classify::classify;
use crate::client::{SessionError, SessionOptions, Stage, VcenterEndpoint, VcenterSession};
use crate::config::{self, VsphereTarget};
use crate::descriptor::DESCRIPTOR;
use crate::feeds::FeedBatch;
use crate::poll::{VsphereObservation, VspherePollSession};
use crate::BoxFuture;
use async_trait::async_trait;
use pylon_core::model::Projection;
use pylon_core::provider::{Observation, ProviderSession};
use pylon_core::{
    ConnectionConfig, FailureCategory, FieldErrors, PlatformDescriptor, Provider, ProviderError,
    TestContext, TestReport,
};
use std::time::{Duration, Instant};

/// How long a logout after a test may take. Short, because the test's own deadline has
/// usually been spent; vCenter expires a session whose logout was lost.
const LOGOUT_GRACE: Duration = Duration::from_secs(2);

/// Timeouts of a long-lived polling session (see [`Provider::connect`]).
const SESSION_OPTIONS: SessionOptions = SessionOptions {
    connect_timeout: Duration::from_secs(15),
    request_timeout: Duration::from_secs(120),
};

/// The vSphere provider. Stateless: every connection's state lives in its session.
/// Construct it with `VsphereProvider::default()`; the private field keeps room for
/// provider-wide settings without breaking callers.
#[derive(Debug, Clone, Copy, Default)]
pub struct VsphereProvider {
    _private: (),
}

#[async_trait]
impl Provider for VsphereProvider {
    fn descriptor(&self) -> &'static PlatformDescriptor {
        &DESCRIPTOR
    }

    fn validate(&self, config: &mut ConnectionConfig) -> Result<(), FieldErrors> {
        config::normalize(config)
    }

    async fn test(
        &self,
        config: &ConnectionConfig,
        context: &TestContext,
    ) -> Result<TestReport, ProviderError> {
        self.boxed_test(config, context).await
    }

    async fn connect(
        &self,
        config: &ConnectionConfig,
    ) -> Result<Box<dyn ProviderSession>, ProviderError> {
        self.boxed_connect(config).await
    }

    /// Projects what a [`VspherePollSession`] observed into canonical resources; a pure
    /// function of the observation (see [`crate::project`]).
    fn project(
        &self,
        connection_id: &str,
        observation: &Observation,
    ) -> Result<Projection, ProviderError> {
        let observed = vsphere_observation(observation)?;
        Ok(crate::project::project(
            connection_id,
            &observed.snapshot,
            &observed.system,
            observed.collected_at,
            &observed.alarms,
        ))
    }

    fn project_feeds(
        &self,
        connection_id: &str,
        inventory: &Observation,
        feeds: &Observation,
    ) -> Result<pylon_core::feeds::Feeds, ProviderError> {
        let observed = vsphere_observation(inventory)?;
        let batch = feeds.downcast_ref::<FeedBatch>().ok_or_else(|| {
            ProviderError::new(
                FailureCategory::Protocol,
                "the feed observation handed to the vSphere provider did not come from a vSphere session",
            )
        })?;
        Ok(crate::feeds::project(
            connection_id,
            &observed.snapshot,
            batch,
        ))
    }

    fn unchanged(&self, observation: &Observation) -> bool {
        observation
            .downcast_ref::<VsphereObservation>()
            .is_some_and(|observed| observed.unchanged)
    }
}

/// The observation as a vSphere one; a foreign one (a host bug) is a `protocol` error.
fn vsphere_observation(observation: &Observation) -> Result<&VsphereObservation, ProviderError> {
    observation
        .downcast_ref::<VsphereObservation>()
        .ok_or_else(|| {
            ProviderError::new(
                FailureCategory::Protocol,
                "the observation handed to the vSphere provider did not come from a vSphere session",
            )
        })
}

// Why the trait methods above only await a boxed future: `#[async_trait]` gives each method
// a param-env with lifetime bounds, and inside such a param-env rustc cannot use its global
// cache for the `Send` proofs of the future's contents. Our futures hold vim_rs values
// whose types form a graph of thousands of structs, so proving them `Send` there took
// minutes per method (measured with `-Z self-profile`: ~150 s of `check_coroutine_obligations`
// each for `test`, `connect` and `poll`). Coercing to `BoxFuture` in a plain method with no
// where-clauses lets every proof be made once and cached.
impl VsphereProvider {
    fn boxed_test<'a>(
        &'a self,
        config: &'a ConnectionConfig,
        context: &'a TestContext,
    ) -> BoxFuture<'a, Result<TestReport, ProviderError>> {
        Box::pin(self.run_connection_test(config, context))
    }

    fn boxed_connect<'a>(
        &'a self,
        config: &'a ConnectionConfig,
    ) -> BoxFuture<'a, Result<Box<dyn ProviderSession>, ProviderError>> {
        Box::pin(self.open_poll_session(config))
    }

    async fn run_connection_test(
        &self,
        config: &ConnectionConfig,
        context: &TestContext,
    ) -> Result<TestReport, ProviderError> {
        let target = VsphereTarget::from_config(config)?;
        let started = Instant::now();
        let options = SessionOptions {
            connect_timeout: context.timeout,
            request_timeout: context.timeout,
        };

        // The session and the current stage live outside the deadline-bound future, so
        // both survive it being dropped: the session is still logged out and the timeout
        // says what was under way.
        let mut opened: Option<VcenterSession> = None;
        let mut stage = Stage::Connect;
        let outcome = tokio::time::timeout(
            context.timeout,
            run_test(&target, &options, &mut opened, &mut stage),
        )
        .await
        .unwrap_or_else(|_elapsed| {
            Err(SessionError::TimedOut {
                stage,
                after: context.timeout,
            })
        });
        if let Some(session) = opened.take() {
            if tokio::time::timeout(LOGOUT_GRACE, session.close())
                .await
                .is_err()
            {
                tracing::debug!(address = %target.address(), "vCenter logout after the test timed out");
            }
        }

        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match outcome {
            Ok(report) => {
                tracing::info!(
                    platform = DESCRIPTOR.platform,
                    address = %target.address(),
                    elapsed_ms,
                    agents = report.counts.agents,
                    vms = report.counts.vms,
                    storage = report.counts.storage,
                    "vSphere connection test succeeded"
                );
                Ok(report)
            }
            Err(error) => {
                let classified = classify(&error, &target);
                tracing::info!(
                    platform = DESCRIPTOR.platform,
                    address = %target.address(),
                    elapsed_ms,
                    stage = stage.as_str(),
                    category = classified.category.as_str(),
                    cause = %error,
                    "vSphere connection test failed"
                );
                Err(classified)
            }
        }
    }

    async fn open_poll_session(
        &self,
        config: &ConnectionConfig,
    ) -> Result<Box<dyn ProviderSession>, ProviderError> {
        let target = VsphereTarget::from_config(config)?;
        match VcenterSession::open(&target, &SESSION_OPTIONS).await {
            Ok(session) => Ok(Box::new(VspherePollSession::new(
                target,
                SESSION_OPTIONS,
                session,
            ))),
            Err(error) => {
                let classified = classify(&error, &target);
                tracing::info!(
                    platform = DESCRIPTOR.platform,
                    address = %target.address(),
                    category = classified.category.as_str(),
                    cause = %error,
                    "vSphere session could not be opened"
                );
                Err(classified)
            }
        }
    }
}

/// Runs the steps of a connection test, recording the stage it is in and handing the
/// session out through `opened` as soon as it exists.
async fn run_test(
    target: &VsphereTarget,
    options: &SessionOptions,
    opened: &mut Option<VcenterSession>,
    stage: &mut Stage,
) -> Result<TestReport, SessionError> {
    *stage = Stage::Connect;
    let endpoint = VcenterEndpoint::connect(target, options).await?;
    *stage = Stage::Login;
    let session = opened.insert(endpoint.login(target).await?);
    *stage = Stage::Inventory;
    let counts = session.count_inventory().await?;
    Ok(TestReport {
        system: session.about().system_identity(),
        counts,
    })
}
