//! Shared helpers: building configurations through the real validation path and one
//! `check` helper for connection-test outcomes.

use pylon_core::draft::apply_draft;
use pylon_core::provider::ProviderSession;
use pylon_core::{
    ConnectionConfig, FailureCategory, InventoryCounts, Provider, ProviderError, TestContext,
    TestReport,
};
use pylon_vcsim::{FaultProxy, FaultResponse, FaultRule, Simulator};
use pylon_vsphere::{VsphereProvider, DESCRIPTOR};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Deadline for tests that are expected to finish; generous for a loaded CI machine.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

pub const PASSWORD: &str = "pw-Secret-123";

/// A draft for `host`/`port` with valid credentials; extend it with [`with`].
pub fn draft(host: &str, port: u16) -> Value {
    json!({
        "name": "vc",
        "host": host,
        "port": port,
        "username": "pylon@vsphere.local",
        "password": PASSWORD,
    })
}

/// A draft for the simulator over HTTPS.
pub fn sim_draft(sim: &Simulator) -> Value {
    draft(sim.host(), sim.port())
}

/// `body` with `field` set to `value`.
pub fn with(mut body: Value, field: &str, value: Value) -> Value {
    body[field] = value;
    body
}

/// Applies and validates a draft as the host does.
pub fn config(body: &Value) -> ConnectionConfig {
    let mut config = apply_draft(&DESCRIPTOR, None, body)
        .unwrap_or_else(|errors| panic!("draft rejected: {errors}"));
    VsphereProvider::default()
        .validate(&mut config)
        .unwrap_or_else(|errors| panic!("draft rejected by the provider: {errors}"));
    config
}

/// Runs a connection test with `timeout`.
pub async fn run(body: &Value, timeout: Duration) -> Result<TestReport, ProviderError> {
    VsphereProvider::default()
        .test(&config(body), &TestContext { timeout })
        .await
}

/// What a connection test should produce.
pub enum Expect<'a> {
    /// Success, reporting this identity (fragments of `product`) and these counts.
    Success {
        product_contains: &'a str,
        version: &'a str,
        counts: InventoryCounts,
    },
    /// Failure with this category, the message containing every fragment.
    Failure {
        category: FailureCategory,
        contains: &'a [&'a str],
    },
}

/// Runs a connection test of `body` and checks its outcome.
pub async fn check(body: &Value, expected: Expect<'_>) {
    check_within(body, TEST_TIMEOUT, expected).await;
}

/// Like [`check`], with an explicit test deadline. Answers the elapsed time.
pub async fn check_within(body: &Value, timeout: Duration, expected: Expect<'_>) -> Duration {
    let started = Instant::now();
    let outcome = run(body, timeout).await;
    let elapsed = started.elapsed();
    match (expected, outcome) {
        (
            Expect::Success {
                product_contains,
                version,
                counts,
            },
            Ok(report),
        ) => {
            assert!(
                report.system.product.contains(product_contains),
                "product {:?} lacks {product_contains:?}",
                report.system.product
            );
            assert_eq!(report.system.version, version, "{:?}", report.system);
            assert!(!report.system.name.is_empty(), "{:?}", report.system);
            assert!(!report.system.build.is_empty(), "{:?}", report.system);
            assert!(
                !report.system.instance_uuid.is_empty(),
                "{:?}",
                report.system
            );
            assert_eq!(report.counts, counts);
        }
        (Expect::Failure { category, contains }, Err(error)) => {
            assert_eq!(error.category, category, "{}", error.message);
            for fragment in contains {
                assert!(
                    error.message.contains(fragment),
                    "expected {fragment:?} in {:?}",
                    error.message
                );
            }
            assert!(!error.message.contains(PASSWORD), "{}", error.message);
        }
        (Expect::Success { .. }, Err(error)) => panic!("expected success, got {error:?}"),
        (Expect::Failure { category, .. }, Ok(report)) => {
            panic!("expected a {category} failure, got success: {report:?}")
        }
    }
    elapsed
}

/// The counts a connection test must report for `sim`.
pub fn sim_counts(sim: &Simulator) -> InventoryCounts {
    let inventory = sim.inventory();
    InventoryCounts {
        agents: inventory.hosts,
        vms: inventory.vms,
        storage: inventory.datastores,
    }
}

/// `AA:BB:...` upper-case, colon-separated, `SHA256:`-prefixed form of a fingerprint.
pub fn display_fingerprint(hex: &str) -> String {
    let pairs: Vec<String> = hex
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect();
    format!("SHA256:{}", pairs.join(":"))
}

/// A plain-HTTP proxy to `sim` that records every call and forwards everything until a
/// test sets rules on it.
pub async fn recording_proxy(sim: &Simulator) -> FaultProxy {
    let proxy = FaultProxy::start(
        sim,
        FaultRule {
            method: "Login".into(),
            response: FaultResponse::NotAuthenticated,
        },
    )
    .await;
    proxy.set_rule(None);
    proxy
}

/// A polling session through `proxy`.
pub async fn open(proxy: &FaultProxy) -> Box<dyn ProviderSession> {
    let body = with(draft("127.0.0.1", proxy.port()), "useHttps", json!(false));
    VsphereProvider::default()
        .connect(&config(&body))
        .await
        .unwrap_or_else(|error| panic!("connect failed: {error:?}"))
}

/// One poll as the host runs it: the inventory, then the feeds against it. Answers the
/// projection and what the feeds brought, for `connection`.
pub async fn poll_with_feeds(
    session: &mut Box<dyn ProviderSession>,
    connection: &str,
) -> (pylon_core::model::Projection, pylon_core::feeds::Feeds) {
    let observation = tokio::time::timeout(TEST_TIMEOUT, session.poll())
        .await
        .expect("the poll finished in time")
        .unwrap_or_else(|error| panic!("poll failed: {error:?}"));
    let feed_observation = tokio::time::timeout(TEST_TIMEOUT, session.poll_feeds())
        .await
        .expect("the feeds were read in time")
        .unwrap_or_else(|error| panic!("reading the feeds failed: {error:?}"));
    let provider = VsphereProvider::default();
    let projection = provider.project(connection, &observation).unwrap();
    let feeds = provider
        .project_feeds(connection, &observation, &feed_observation)
        .unwrap();
    (projection, feeds)
}
