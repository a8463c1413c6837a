//! Performance history end to end: the scheduler polls the simulator, the vSphere provider
//! queries `QueryPerf`, the store keeps the samples, and `GET /api/resources/{id}/metrics`
//! serves them; a restart resumes from the stored cursor without storing a sample twice.

use crate::support::{sim_draft, TestApp};
use axum::http::StatusCode;
use pylon_vcsim::{Simulator, SimulatorOptions};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Waits until the connection has been observed once, or fails after 60 s.
async fn first_collection(app: &TestApp, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let item = app.item(id).await;
        if item["observed"]["collectedAt"].is_string() {
            return item;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for a first poll: {item}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The points of `resource`'s `cpuPercent` series over the last hour, at full resolution
/// (1,000 points of 4 s buckets cover the hour, finer than the 20 s samples); none before
/// the first feeds phase is recorded.
async fn cpu_points(app: &TestApp, resource: &str) -> Vec<(String, f64)> {
    let (status, body) = app
        .get(&format!(
            "/api/resources/{resource}/metrics?metric=cpuPercent&maxPoints=1000"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let series = body["series"].as_array().expect("series");
    // Empty until the first feeds phase has been recorded (it follows the poll).
    if series.is_empty() {
        return Vec::new();
    }
    assert_eq!(series.len(), 1, "{body}");
    assert_eq!(series[0]["metric"], "cpuPercent");
    assert_eq!(series[0]["unit"], "percent");
    series[0]["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|point| {
            (
                point[0].as_str().expect("a time").to_owned(),
                point[1].as_f64().expect("a value"),
            )
        })
        .collect()
}

#[tokio::test]
async fn host_cpu_history_is_served_and_a_restart_stores_no_sample_twice() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let app = TestApp::new().await;
    let id = app.create(sim_draft(&sim, "perf", "pw")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let item = first_collection(&app, &id).await;
    assert_eq!(item["poll"]["status"], "healthy", "{item}");
    let (status, page) = app
        .get(&format!("/api/resources?type=agent&connection={id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let host = page["items"][0]["id"].as_str().expect("a host").to_owned();

    // The feeds are recorded just after the inventory (their own phase of the poll).
    let waited = std::time::Instant::now();
    let before = loop {
        let points = cpu_points(&app, &host).await;
        if points.len() >= 2 || waited.elapsed() > std::time::Duration::from_secs(30) {
            break points;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(before.len() >= 2, "a minute of 20 s samples: {before:?}");
    assert!(
        before.iter().all(|(_, v)| (0.0..=100.0).contains(v)),
        "{before:?}"
    );

    // Restart on the same data directory; the new session resumes from the stored cursor.
    app.state.scheduler.shutdown().await;
    let app = TestApp::open(app.stop().await).await;
    let item = app.next_poll(&id).await;
    assert_eq!(item["poll"]["status"], "healthy", "{item}");
    let after = cpu_points(&app, &host).await;
    let times: Vec<&String> = after.iter().map(|(t, _)| t).collect();
    let unique: BTreeSet<&String> = times.iter().copied().collect();
    assert_eq!(unique.len(), times.len(), "a timestamp twice: {times:?}");
    assert!(after.len() >= before.len(), "{before:?} then {after:?}");
    // What was stored before the restart is still there.
    for (time, _) in &before {
        assert!(unique.contains(time), "{time} vanished: {times:?}");
    }
    sim.stop().await;
}
