//! `Provider::connect`, the long-lived polling session and the provider's registration.
//!
//! Polls run through a [`FaultProxy`] in front of the simulator: it records every SOAP
//! operation, which is how these tests prove what a poll sends (one bulk read, then only
//! `WaitForUpdatesEx`), and it injects the session faults the simulator cannot.

use crate::support::*;
use pylon_core::model::{Projection, Resource, ResourceStatus, ResourceType};
use pylon_core::provider::ProviderSession;
use pylon_core::{FailureCategory, Provider, Registry};
use pylon_vcsim::{closed_port, FaultProxy, FaultResponse, FaultRule, Simulator, SimulatorOptions};
use pylon_vsphere::VsphereProvider;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

const CONNECTION: &str = "conn-session-test";

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

async fn poll(session: &mut Box<dyn ProviderSession>) -> Projection {
    poll_noting_change(session).await.0
}

/// A poll's projection, and whether the provider called it unchanged.
async fn poll_noting_change(session: &mut Box<dyn ProviderSession>) -> (Projection, bool) {
    let observation = tokio::time::timeout(TEST_TIMEOUT, session.poll())
        .await
        .expect("the poll finished in time")
        .unwrap_or_else(|error| panic!("poll failed: {error:?}"));
    let provider = VsphereProvider::default();
    let projection = provider
        .project(CONNECTION, &observation)
        .expect("a vSphere observation projects");
    (projection, provider.unchanged(&observation))
}

/// The operations the proxy saw since `from`.
fn sent_since(proxy: &FaultProxy, from: usize) -> Vec<String> {
    proxy.requests().split_off(from)
}

fn count(requests: &[String], method: &str) -> usize {
    requests.iter().filter(|r| *r == method).count()
}

/// Bulk inventory reads since `from`: `RetrievePropertiesEx` calls over the container views,
/// as opposed to the feeds' small reads (recent tasks) through the same method.
fn inventory_reads(proxy: &FaultProxy, from: usize) -> usize {
    proxy
        .request_bodies()
        .split_off(from)
        .iter()
        .filter(|(method, body)| method == "RetrievePropertiesEx" && body.contains("ContainerView"))
        .count()
}

fn vms_by_id(projection: &Projection) -> BTreeMap<String, Resource> {
    projection
        .resources
        .iter()
        .filter(|r| r.resource_type == ResourceType::Vm)
        .map(|r| (r.id.clone(), r.clone()))
        .collect()
}

#[tokio::test]
async fn polls_read_everything_once_then_only_changes() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let proxy = recording_proxy(&sim).await;
    let mut session = open(&proxy).await;

    // Poll 1: one bulk read.
    let from = proxy.requests().len();
    let (first, unchanged) = poll_noting_change(&mut session).await;
    assert!(!unchanged, "a first poll is never unchanged");
    let sent = sent_since(&proxy, from);
    assert_eq!(inventory_reads(&proxy, from), 1, "{sent:?}");
    assert_eq!(count(&sent, "WaitForUpdatesEx"), 0, "{sent:?}");
    assert_eq!(vms_by_id(&first).len() as u64, sim.inventory().vms);

    // Poll 2: a filter and one complete WaitForUpdatesEx, no second bulk read.
    let from = proxy.requests().len();
    let second = poll(&mut session).await;
    let sent = sent_since(&proxy, from);
    assert_eq!(count(&sent, "CreateFilter"), 1, "{sent:?}");
    assert_eq!(count(&sent, "WaitForUpdatesEx"), 1, "{sent:?}");
    assert_eq!(inventory_reads(&proxy, from), 0, "{sent:?}");
    assert_eq!(
        vms_by_id(&first).keys().collect::<Vec<_>>(),
        vms_by_id(&second).keys().collect::<Vec<_>>(),
        "ids are stable across polls"
    );

    // Rename and power off one VM; the next poll sees both through the version token.
    let before = second
        .resources
        .iter()
        .find(|r| r.name == "DC0_H0_VM0")
        .expect("the simulator's first VM")
        .clone();
    assert_eq!(before.status, ResourceStatus::Online);
    sim.rename_vm("DC0_H0_VM0", "pylon-renamed-vm").await;
    sim.power_off_vm("pylon-renamed-vm").await;

    let from = proxy.requests().len();
    let (third, unchanged) = poll_noting_change(&mut session).await;
    assert!(!unchanged, "a rename and a power-off are changes");
    let sent = sent_since(&proxy, from);
    assert_eq!(count(&sent, "WaitForUpdatesEx"), 1, "{sent:?}");
    assert_eq!(
        inventory_reads(&proxy, from),
        0,
        "incremental poll: {sent:?}"
    );
    for full_read in ["CreateFilter", "CreateContainerView"] {
        assert_eq!(count(&sent, full_read), 0, "incremental poll: {sent:?}");
    }
    let after = vms_by_id(&third)
        .remove(&before.id)
        .expect("the renamed VM keeps its id");
    assert_eq!(after.name, "pylon-renamed-vm");
    assert_eq!(after.status, ResourceStatus::Offline);
    assert_eq!(after.details["powerState"], json!("poweredOff"));
    assert_eq!(vms_by_id(&third).len(), vms_by_id(&second).len());

    // Nothing changed since: still no full read, same resources.
    let from = proxy.requests().len();
    let (fourth, unchanged) = poll_noting_change(&mut session).await;
    assert!(unchanged, "nothing changed since the third poll");
    let sent = sent_since(&proxy, from);
    assert_eq!(inventory_reads(&proxy, from), 0, "{sent:?}");
    assert_eq!(vms_by_id(&fourth), {
        let mut expected = vms_by_id(&third);
        // Only the observation time moves.
        for (id, resource) in expected.iter_mut() {
            resource.last_seen_at = vms_by_id(&fourth)[id].last_seen_at;
        }
        expected
    });

    session.close().await;
    assert_eq!(count(&proxy.requests(), "Logout"), 1);
}

#[tokio::test]
async fn an_idle_expired_session_is_replaced_by_one_login() {
    let sim = Simulator::start(SimulatorOptions {
        session_idle_timeout: Some(Duration::from_millis(500)),
        ..SimulatorOptions::default()
    })
    .await;
    let proxy = recording_proxy(&sim).await;
    let mut session = open(&proxy).await;
    let first = poll(&mut session).await;

    // The simulator checks idle sessions on a timer of the same period: wait past two.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let second = poll(&mut session).await;

    let sent = proxy.requests();
    assert_eq!(count(&sent, "Login"), 2, "one re-login: {sent:?}");
    assert_eq!(
        vms_by_id(&first).keys().collect::<Vec<_>>(),
        vms_by_id(&second).keys().collect::<Vec<_>>()
    );
    session.close().await;
}

#[tokio::test]
async fn a_not_authenticated_keepalive_leads_to_exactly_one_login() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let proxy = recording_proxy(&sim).await;
    let mut session = open(&proxy).await;
    poll(&mut session).await;

    // vCenter restarted: the session's next call says NotAuthenticated once.
    proxy.set_rule(Some(FaultRule {
        method: "CurrentTime".into(),
        response: FaultResponse::NotAuthenticated,
    }));
    let from = proxy.requests().len();
    let projection = poll(&mut session).await;
    let sent = sent_since(&proxy, from);
    assert_eq!(count(&sent, "Login"), 1, "{sent:?}");
    // The new session reads everything afresh: its views and filter died with the old one.
    assert_eq!(inventory_reads(&proxy, from), 1, "{sent:?}");
    assert_eq!(vms_by_id(&projection).len() as u64, sim.inventory().vms);
    session.close().await;
}

#[tokio::test]
async fn a_session_that_dies_again_after_login_fails_as_auth() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let proxy = recording_proxy(&sim).await;
    let mut session = open(&proxy).await;
    proxy.set_rule(Some(FaultRule {
        method: "RetrievePropertiesEx".into(),
        response: FaultResponse::NotAuthenticated,
    }));
    let error = match tokio::time::timeout(TEST_TIMEOUT, session.poll()).await {
        Ok(Err(error)) => error,
        Ok(Ok(_)) => panic!("the poll succeeded although every read is refused"),
        Err(_) => panic!("the poll did not finish"),
    };
    assert_eq!(error.category, FailureCategory::Auth, "{}", error.message);
    let sent = proxy.requests();
    // Exactly one retry: the initial login and one more, never a loop.
    assert_eq!(count(&sent, "Login"), 2, "{sent:?}");
    assert!(!error.message.contains(PASSWORD));
    session.close().await;
}

#[tokio::test]
async fn malformed_inventory_answers_are_protocol_failures() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let proxy = recording_proxy(&sim).await;
    let mut session = open(&proxy).await;
    proxy.set_rule(Some(FaultRule {
        method: "RetrievePropertiesEx".into(),
        response: FaultResponse::Garbage(
            "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body><RetrievePropertiesExResponse><returnval><objects><obj type=\"VirtualMachine\">vm-1</obj><propSet><name>name</name>".into(),
        ),
    }));
    let error = match tokio::time::timeout(TEST_TIMEOUT, session.poll()).await {
        Ok(Err(error)) => error,
        Ok(Ok(_)) => panic!("a truncated answer was accepted"),
        Err(_) => panic!("the poll did not finish"),
    };
    assert_eq!(
        error.category,
        FailureCategory::Protocol,
        "{}",
        error.message
    );
    assert!(
        error.message.contains("RetrievePropertiesEx"),
        "{}",
        error.message
    );

    // The session survives: once the answers are sane again, the next poll works.
    proxy.set_rule(None);
    let projection = poll(&mut session).await;
    assert_eq!(vms_by_id(&projection).len() as u64, sim.inventory().vms);
    session.close().await;
}

#[test]
fn projecting_a_foreign_observation_is_a_protocol_error() {
    let observation: pylon_core::provider::Observation = Box::new("not a vSphere observation");
    let error = VsphereProvider::default()
        .project(CONNECTION, &observation)
        .expect_err("a foreign observation is refused");
    assert_eq!(error.category, FailureCategory::Protocol);
}

#[tokio::test]
async fn snapshot_trees_are_projected_and_follow_changes() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    sim.snapshot_vm("DC0_H0_VM0", "base").await;
    sim.snapshot_vm("DC0_H0_VM0", "patched").await;
    let proxy = recording_proxy(&sim).await;
    let mut session = open(&proxy).await;

    let first = poll(&mut session).await;
    let vm = first
        .resources
        .iter()
        .find(|r| r.name == "DC0_H0_VM0")
        .expect("the VM");
    let tree = &vm.details["snapshots"];
    assert_eq!(tree.as_array().unwrap().len(), 1, "{tree}");
    let base = &tree[0];
    assert_eq!(base["name"], "base");
    assert_eq!(base["description"], "made by a Pylon test");
    assert_eq!(base["current"], false);
    assert_eq!(base["quiesced"], false);
    assert!(base["createTime"].is_string(), "{base}");
    assert!(base["state"].is_string(), "{base}");
    let patched = &base["children"][0];
    assert_eq!(patched["name"], "patched");
    assert_eq!(patched["current"], true);
    assert_eq!(patched["children"], json!([]));
    assert_ne!(base["id"], patched["id"]);
    // Every other VM says it has none.
    for other in first
        .resources
        .iter()
        .filter(|r| r.resource_type == ResourceType::Vm && r.name != "DC0_H0_VM0")
    {
        assert_eq!(other.details["snapshots"], json!([]), "{}", other.name);
    }

    // A snapshot taken later arrives through the incremental path.
    poll(&mut session).await;
    sim.snapshot_vm("DC0_H0_VM0", "later").await;
    let from = proxy.requests().len();
    let third = poll(&mut session).await;
    let sent = sent_since(&proxy, from);
    assert_eq!(inventory_reads(&proxy, from), 0, "{sent:?}");
    let vm = third
        .resources
        .iter()
        .find(|r| r.name == "DC0_H0_VM0")
        .expect("the VM");
    let later = &vm.details["snapshots"][0]["children"][0]["children"][0];
    assert_eq!(later["name"], "later", "{}", vm.details["snapshots"]);
    assert_eq!(later["current"], true);
    assert_eq!(vm.details["snapshots"][0]["children"][0]["current"], false);
    session.close().await;
}
