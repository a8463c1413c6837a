//! `Provider::connect` and the long-lived session, and the provider's registration.

use crate::support::*;
use pylon_core::{FailureCategory, Provider, Registry};
use pylon_vcsim::{closed_port, FaultProxy, FaultResponse, FaultRule, Simulator, SimulatorOptions};
use pylon_vsphere::VsphereProvider;
use serde_json::json;

#[test]
fn provider_is_registered_through_inventory() {
    let registry = Registry::from_inventory().unwrap();
    let provider = registry
        .by_slug("vmware")
        .expect("vSphere provider registered");
    assert_eq!(provider.descriptor().platform, "vmware-vsphere");
    assert!(registry.by_platform("vmware-vsphere").is_some());
}

#[tokio::test]
async fn connected_session_polls_placeholder_and_logs_out_on_close() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let proxy = FaultProxy::start(
        &sim,
        FaultRule {
            method: "NoSuchMethod".into(),
            response: FaultResponse::HttpStatus(500, String::new()),
        },
    )
    .await;
    let body = with(draft("127.0.0.1", proxy.port()), "useHttps", json!(false));
    let mut session = VsphereProvider::default()
        .connect(&config(&body))
        .await
        .unwrap();

    let error = session
        .poll()
        .await
        .expect_err("polling is not implemented yet");
    assert_eq!(error.category, FailureCategory::Unsupported);
    assert!(
        error.message.contains("projection feature"),
        "{}",
        error.message
    );

    session.close().await;
    session.close().await;
    assert_eq!(
        proxy.requests(),
        ["RetrieveServiceContent", "Login", "CurrentTime", "Logout"]
    );
    sim.stop().await;
}

#[tokio::test]
async fn expired_session_is_reported_by_poll() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let proxy = FaultProxy::start(
        &sim,
        FaultRule {
            method: "CurrentTime".into(),
            response: FaultResponse::NotAuthenticated,
        },
    )
    .await;
    let body = with(draft("127.0.0.1", proxy.port()), "useHttps", json!(false));
    let mut session = VsphereProvider::default()
        .connect(&config(&body))
        .await
        .unwrap();
    let error = session
        .poll()
        .await
        .expect_err("an expired session fails the poll");
    assert_eq!(error.category, FailureCategory::Auth, "{}", error.message);
    assert!(error.message.contains("expired"), "{}", error.message);
    session.close().await;
    sim.stop().await;
}

#[tokio::test]
async fn connect_failures_are_classified() {
    let port = closed_port().await;
    let error = VsphereProvider::default()
        .connect(&config(&draft("127.0.0.1", port)))
        .await
        .err()
        .expect("nothing listens");
    assert_eq!(
        error.category,
        FailureCategory::Network,
        "{}",
        error.message
    );
}

#[tokio::test]
async fn projection_is_not_implemented_yet() {
    let observation: pylon_core::provider::Observation = Box::new(());
    let error = VsphereProvider::default()
        .project("c1", &observation)
        .unwrap_err();
    assert_eq!(error.category, FailureCategory::Unsupported);
}
