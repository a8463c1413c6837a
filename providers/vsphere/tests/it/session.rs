//! `Provider::connect` and the long-lived session, and the provider's registration.

use crate::support::*;
use pylon_core::{FailureCategory, Provider, Registry};
use pylon_vcsim::closed_port;
use pylon_vsphere::VsphereProvider;

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
