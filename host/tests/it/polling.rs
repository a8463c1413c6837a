//! The scheduler against the real simulator: a saved connection is polled at once, its
//! projected resources and summary agree, and disable, delete and an outage behave.

use crate::support::{sim_draft, TestApp};
use axum::http::StatusCode;
use pylon_vcsim::{Simulator, SimulatorOptions};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Waits until the connection's list item satisfies `done`, or fails after 60 s.
async fn wait_for(app: &TestApp, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let item = app.item(id).await;
        if done(&item) {
            return item;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}: {item}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn resources(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, page) = app.get(&format!("/api/resources?limit=1000&{query}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn polls_project_and_summarise_the_simulator() {
    let sim = Simulator::start(SimulatorOptions {
        datacenters: Some(2),
        clusters: Some(1),
        hosts_per_cluster: Some(2),
        standalone_hosts: Some(1),
        vms: Some(2),
        datastores: Some(2),
        ..SimulatorOptions::default()
    })
    .await;
    let app = TestApp::new().await;
    let id = app.create(sim_draft(&sim, "lab", "pw")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let item = wait_for(&app, &id, "a first poll", |i| {
        i["observed"]["collectedAt"].is_string()
    })
    .await;
    assert_eq!(item["poll"]["status"], "healthy", "{item}");
    let observed = &item["observed"];
    let inventory = sim.inventory();
    assert_eq!(observed["agents"], inventory.hosts);
    assert_eq!(observed["vms"], inventory.vms);
    assert_eq!(observed["storage"], inventory.datastores);
    assert_eq!(observed["topology"]["datacenters"], inventory.datacenters);
    assert_eq!(observed["topology"]["clusters"], inventory.clusters);
    assert!(observed["system"]["product"]
        .as_str()
        .unwrap()
        .contains("vCenter"));

    // The resources API agrees with the summary, and every relation resolves.
    let all = resources(&app, &format!("connection={id}")).await;
    let count = |kind: &str| all.iter().filter(|r| r["type"] == kind).count() as u64;
    assert_eq!(count("agent"), inventory.hosts);
    assert_eq!(count("vm"), inventory.vms);
    assert_eq!(count("storage"), inventory.datastores);
    let ids: HashSet<&str> = all.iter().map(|r| r["id"].as_str().unwrap()).collect();
    for resource in &all {
        assert_eq!(resource["connectionId"], id.as_str());
        assert_eq!(resource["platform"], "vmware-vsphere");
        for relation in resource["relations"].as_array().unwrap() {
            assert!(
                ids.contains(relation["target"].as_str().unwrap()),
                "dangling {relation} in {resource}"
            );
        }
    }
    for vm in all.iter().filter(|r| r["type"] == "vm") {
        let host = vm["relations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == "runsOn");
        let host = host.unwrap_or_else(|| panic!("VM without runsOn: {vm}"));
        let host = all.iter().find(|r| r["id"] == host["target"]).unwrap();
        assert_eq!(host["type"], "agent");
        assert!(vm["topology"]["datacenter"].is_string(), "{vm}");
    }
    for agent in all.iter().filter(|r| r["type"] == "agent") {
        assert_eq!(
            agent["identity"]["platformType"], "vmware-vsphere",
            "{agent}"
        );
    }

    // Another poll keeps every id.
    app.state.scheduler.poll_now(&id).await;
    let first = item["observed"]["collectedAt"].clone();
    wait_for(&app, &id, "a second poll", |i| {
        i["observed"]["collectedAt"] != first
    })
    .await;
    let again: HashSet<String> = resources(&app, &format!("connection={id}"))
        .await
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        again,
        ids.iter().map(|s| s.to_string()).collect::<HashSet<_>>()
    );

    // A second connection to the same vCenter gets disjoint ids.
    let other = app.create(sim_draft(&sim, "lab-2", "pw")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for(&app, &other, "the second connection's poll", |i| {
        i["observed"]["collectedAt"].is_string()
    })
    .await;
    let other_ids: HashSet<String> = resources(&app, &format!("connection={other}"))
        .await
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(other_ids.len(), ids.len());
    assert!(other_ids.iter().all(|o| !ids.contains(o.as_str())));

    // Disable stops polling; delete removes the resources.
    let (status, _) = app
        .put(
            &format!("/api/vmware/connections/{other}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!app.state.scheduler.scheduled().await.contains(&other));
    assert_eq!(app.item(&other).await["poll"]["status"], "disabled");
    app.delete(&format!("/api/vmware/connections/{other}"))
        .await;
    assert!(resources(&app, &format!("connection={other}"))
        .await
        .is_empty());
    assert_eq!(
        resources(&app, &format!("connection={id}")).await.len(),
        ids.len()
    );

    // An outage makes the connection failing with `network` and keeps last-known resources.
    let expected_vms = inventory.vms;
    sim.stop().await;
    app.state.scheduler.poll_now(&id).await;
    let item = wait_for(&app, &id, "a failed poll", |i| {
        i["poll"]["status"] == "failing"
    })
    .await;
    assert_eq!(item["poll"]["lastError"]["category"], "network", "{item}");
    assert_eq!(
        item["observed"]["vms"], expected_vms,
        "the summary of the last success stays"
    );
    assert_eq!(
        resources(&app, &format!("connection={id}")).await.len(),
        ids.len()
    );
}

#[tokio::test]
async fn resources_survive_a_restart() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let app = TestApp::new().await;
    let id = app.create(sim_draft(&sim, "lab", "pw")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for(&app, &id, "a first poll", |i| {
        i["observed"]["collectedAt"].is_string()
    })
    .await;
    let before = resources(&app, "").await;
    sim.stop().await;
    app.state.scheduler.shutdown().await;
    let app = TestApp::open(app.stop().await).await;
    // Served from the store before (or whatever) the next poll says.
    let after = resources(&app, "").await;
    assert_eq!(after, before);
}

/// One object the account may not fully read (a recorded vCenter answer with a
/// `NoPermission` fault in a `missingSet`, served for `RetrievePropertiesEx` by the proxy):
/// the poll still projects everything, is `degraded`, and its issue names the object.
#[tokio::test]
async fn an_unreadable_property_degrades_the_poll_and_names_the_object() {
    use pylon_vcsim::{FaultProxy, FaultResponse, FaultRule};
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let recorded = include_str!(
        "../../../providers/vsphere/tests/fixtures/retrieve_missingset_nopermission.xml"
    );
    // Only the first `RetrievePropertiesEx` (the inventory read) gets the recorded answer;
    // the feeds' reads that follow in the same poll (tasks, counters) reach the simulator.
    let proxy = FaultProxy::start(
        &sim,
        FaultRule {
            method: "RetrievePropertiesEx".into(),
            response: FaultResponse::Sequence(vec![
                FaultResponse::Garbage(recorded.into()),
                FaultResponse::Forward,
            ]),
        },
    )
    .await;
    let app = TestApp::new().await;
    let mut draft = sim_draft(&sim, "partial", "pw");
    draft["port"] = json!(proxy.port());
    draft["useHttps"] = json!(false);
    draft["caCertificate"] = Value::Null;
    let id = app.create(draft).await["id"].as_str().unwrap().to_owned();

    let item = wait_for(&app, &id, "a first poll", |i| {
        i["observed"]["collectedAt"].is_string()
    })
    .await;
    assert_eq!(item["poll"]["status"], "degraded", "{item}");
    assert!(item["poll"]["lastError"].is_null(), "{item}");
    let issues = item["observed"]["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 1, "{item}");
    assert_eq!(issues[0]["category"], "permission");
    let message = issues[0]["message"].as_str().unwrap();
    assert!(
        message.contains("DC0_H0_VM0") && message.contains("System.Read"),
        "{message}"
    );
    // The other objects of the answer are all there, and the summary agrees.
    let all = resources(&app, &format!("connection={id}")).await;
    assert_eq!(
        item["observed"]["vms"].as_u64().unwrap(),
        all.iter().filter(|r| r["type"] == "vm").count() as u64
    );
    assert!(all.iter().any(|r| r["name"] == "DC0_H0_VM0"));
    assert!(all.len() > 10, "{}", all.len());
}

#[tokio::test]
async fn metrics_expose_poll_health_failures_and_resources_without_secrets() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let app = TestApp::new().await;
    let good = app.create(sim_draft(&sim, "good", "pw-good-1")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut unreachable = sim_draft(&sim, "unreachable", "pw-bad-2");
    unreachable["port"] = json!(crate::support::closed_port_sync());
    let bad = app.create(unreachable).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for(&app, &good, "a first poll", |i| {
        i["observed"]["collectedAt"].is_string()
    })
    .await;
    wait_for(&app, &bad, "a failed poll", |i| {
        i["poll"]["status"] == "failing"
    })
    .await;

    let text = app.metrics_text().await;
    let inventory = sim.inventory();
    let labels = |id: &str| format!("platform=\"vmware-vsphere\",connection=\"{id}\"");
    for line in [
        format!(
            "pylon_resources{{{},type=\"vm\"}} {}",
            labels(&good),
            inventory.vms
        ),
        format!(
            "pylon_resources{{{},type=\"agent\"}} {}",
            labels(&good),
            inventory.hosts
        ),
        format!(
            "pylon_resources{{{},type=\"storage\"}} {}",
            labels(&good),
            inventory.datastores
        ),
        format!(
            "pylon_connection_status{{{},status=\"healthy\"}} 1",
            labels(&good)
        ),
        format!(
            "pylon_connection_status{{{},status=\"failing\"}} 1",
            labels(&bad)
        ),
        format!("pylon_poll_consecutive_failures{{{}}} 0", labels(&good)),
        format!(
            "pylon_poll_failures_total{{{},category=\"network\"}} 1",
            labels(&bad)
        ),
        format!("pylon_poll_duration_seconds_count{{{}}} 1", labels(&good)),
    ] {
        assert!(
            text.contains(&format!("{line}\n")),
            "missing {line:?} in:\n{text}"
        );
    }
    assert!(text.contains(&format!(
        "pylon_poll_last_success_timestamp_seconds{{{}}} ",
        labels(&good)
    )));
    assert!(!text.contains("pw-good-1") && !text.contains("pw-bad-2"));
    assert!(
        !text.contains("\"good\"") && !text.contains("unreachable\""),
        "names are not labels"
    );

    // A deleted connection's series go away.
    app.delete(&format!("/api/vmware/connections/{bad}")).await;
    let text = app.metrics_text().await;
    assert!(!text.contains(&bad), "{text}");
}

/// Steady state through the scheduler: polls that see nothing change (the provider says so
/// and the worker skips projection) move `collectedAt` and every `lastSeenAt`, keep the
/// resources, and a later change is still recorded in full.
#[tokio::test]
async fn unchanged_polls_move_times_only_and_changes_still_land() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let app = TestApp::new().await;
    let id = app.create(sim_draft(&sim, "steady", "pw")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut last = wait_for(&app, &id, "a first poll", |i| {
        i["observed"]["collectedAt"].is_string()
    })
    .await;
    let before = resources(&app, &format!("connection={id}")).await;
    // Poll 2 is the complete WaitForUpdatesEx, polls 3 and 4 see nothing change.
    for _ in 0..3 {
        let previous = last["observed"]["collectedAt"].clone();
        last = app.next_poll(&id).await;
        assert_ne!(last["observed"]["collectedAt"], previous, "{last}");
    }
    assert_eq!(last["poll"]["status"], "healthy", "{last}");
    let after = resources(&app, &format!("connection={id}")).await;
    assert_eq!(before.len(), after.len());
    let collected = last["observed"]["collectedAt"].as_str().unwrap();
    for (b, a) in before.iter().zip(&after) {
        let (mut b, mut a) = (b.clone(), a.clone());
        let seen = a["lastSeenAt"].as_str().unwrap().to_owned();
        assert!(
            seen.as_str()[..19] == collected[..19],
            "lastSeenAt {seen} follows collectedAt {collected}"
        );
        b.as_object_mut().unwrap().remove("lastSeenAt");
        a.as_object_mut().unwrap().remove("lastSeenAt");
        assert_eq!(a, b);
    }

    sim.rename_vm("DC0_H0_VM0", "renamed-after-steady-state")
        .await;
    let previous = last["observed"]["collectedAt"].clone();
    let after_rename = app.next_poll(&id).await;
    assert_ne!(
        after_rename["observed"]["collectedAt"], previous,
        "{after_rename}"
    );
    let renamed = resources(&app, &format!("connection={id}&q=renamed-after")).await;
    assert_eq!(renamed.len(), 1, "{renamed:?}");
}
