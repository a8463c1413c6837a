//! Performance history against the simulator, through the recording [`FaultProxy`].
//!
//! What the simulator cannot do, and how these tests live with it:
//! - It has no `config.vpxd.stats.maxQueryMetrics` (`QueryOptions` answers `InvalidName`), so
//!   the limit is served by the proxy.
//! - It never refuses a query: `RestrictedByAdministrator` and HTTP 500 are injected.
//! - Its samples are not on a shared 20 s grid: each `QueryPerf` call counts back from its own
//!   "now" in steps of the interval, and it makes up values (with noise) for any counter id.
//!   So "no gap" is checked as "no two consecutive samples further apart than one interval
//!   plus a second", which a missed 20 s sample would break.
//! - It has no `historicalInterval`, so datastores are read at the 300 s default.

use crate::support::*;
use pylon_core::feeds::{Feeds, MetricName, SampleRun};
use pylon_core::model::{Projection, ResourceType};
use pylon_core::provider::ProviderSession;
use pylon_vcsim::{FaultProxy, FaultResponse, FaultRule, Simulator, SimulatorOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const CONNECTION: &str = "conn-perf";

async fn poll_feeds(session: &mut Box<dyn ProviderSession>) -> (Projection, Feeds) {
    poll_with_feeds(session, CONNECTION).await
}

fn ids_of(projection: &Projection, kind: ResourceType) -> BTreeSet<String> {
    projection
        .resources
        .iter()
        .filter(|r| r.resource_type == kind)
        .map(|r| r.id.clone())
        .collect()
}

fn runs_of(feeds: &Feeds, metric: MetricName) -> Vec<&SampleRun> {
    feeds
        .samples
        .iter()
        .filter(|r| r.metric == metric)
        .collect()
}

/// The bodies of the `QueryPerf` calls since `from`.
fn query_perf_bodies(proxy: &FaultProxy, from: usize) -> Vec<String> {
    proxy
        .request_bodies()
        .split_off(from)
        .into_iter()
        .filter(|(method, _)| method == "QueryPerf")
        .map(|(_, body)| body)
        .collect()
}

fn count(proxy: &FaultProxy, method: &str) -> usize {
    proxy.requests().iter().filter(|m| *m == method).count()
}

/// A `QueryOptionsResponse` with `config.vpxd.stats.maxQueryMetrics` = `value`.
fn max_query_metrics(value: i64) -> FaultResponse {
    FaultResponse::Garbage(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope \
         xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>\
         <QueryOptionsResponse xmlns=\"urn:vim25\"><returnval><key>config.vpxd.stats.maxQueryMetrics</key>\
         <value xsi:type=\"xsd:int\">{value}</value></returnval></QueryOptionsResponse>\
         </soapenv:Body></soapenv:Envelope>"
    ))
}

#[tokio::test]
async fn hosts_vms_and_datastores_get_samples_linked_to_their_resources() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let proxy = recording_proxy(&sim).await;
    let mut session = open(&proxy).await;
    let (projection, feeds) = poll_feeds(&mut session).await;
    assert!(feeds.issues.is_empty(), "{:?}", feeds.issues);
    let hosts = ids_of(&projection, ResourceType::Agent);
    let vms = ids_of(&projection, ResourceType::Vm);
    let datastores = ids_of(&projection, ResourceType::Storage);

    let cpu = runs_of(&feeds, MetricName::CpuPercent);
    let cpu_ids: BTreeSet<String> = cpu.iter().map(|r| r.resource_id.clone()).collect();
    assert_eq!(
        cpu_ids,
        hosts.union(&vms).cloned().collect(),
        "every host and VM has cpuPercent"
    );
    for run in &cpu {
        // A fresh connection reads the last minute: about 3 samples 20 s apart.
        assert!(
            run.points.len() >= 2,
            "{} has {} points",
            run.resource_id,
            run.points.len()
        );
        assert!(
            run.points.iter().all(|(_, v)| (0.0..=100.0).contains(v)),
            "{:?}",
            run.points
        );
        assert!(
            run.points.windows(2).all(|w| w[0].0 < w[1].0),
            "oldest first, no repeats"
        );
    }
    for metric in [
        MetricName::MemoryUsedBytes,
        MetricName::DiskReadBytesPerSecond,
        MetricName::DiskWriteBytesPerSecond,
        MetricName::NetworkRxBytesPerSecond,
        MetricName::NetworkTxBytesPerSecond,
    ] {
        let ids: BTreeSet<String> = runs_of(&feeds, metric)
            .iter()
            .map(|r| r.resource_id.clone())
            .collect();
        assert!(
            ids.is_subset(&hosts.union(&vms).cloned().collect()),
            "{metric:?}"
        );
        assert!(!ids.is_empty(), "{metric:?}");
    }
    let used: BTreeSet<String> = runs_of(&feeds, MetricName::DiskUsedBytes)
        .iter()
        .map(|r| r.resource_id.clone())
        .collect();
    assert_eq!(used, datastores, "datastores get diskUsedBytes");

    // Set-up happens once per session: counters and the option, not every poll.
    let setup_reads = |proxy: &FaultProxy| {
        proxy
            .request_bodies()
            .iter()
            .filter(|(m, b)| m == "RetrievePropertiesEx" && b.contains("perfCounter"))
            .count()
    };
    assert_eq!(setup_reads(&proxy), 1);
    assert_eq!(count(&proxy, "QueryOptions"), 1);
    let (_, second) = poll_feeds(&mut session).await;
    assert!(second.issues.is_empty(), "{:?}", second.issues);
    assert_eq!(setup_reads(&proxy), 1);
    assert_eq!(count(&proxy, "QueryOptions"), 1);
    // Every query asks for the aggregate instance with a start and a sample limit.
    for body in query_perf_bodies(&proxy, 0) {
        assert!(body.contains("<maxSample>"), "{body}");
        assert!(body.contains("<startTime>"), "{body}");
        assert!(body.contains("<instance></instance>"), "{body}");
    }
    session.close().await;
}

/// Consecutive polls: no (resource, metric, time) twice, and no 20 s sample missed between
/// them. The polls are 25 s apart so that a poll starting after "now" instead of after the
/// last sample would show a hole.
#[tokio::test]
async fn consecutive_polls_leave_no_gap_and_no_duplicate() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let proxy = recording_proxy(&sim).await;
    let mut session = open(&proxy).await;
    let (_, first) = poll_feeds(&mut session).await;
    tokio::time::sleep(Duration::from_secs(25)).await;
    let (_, second) = poll_feeds(&mut session).await;
    assert!(second.issues.is_empty(), "{:?}", second.issues);
    assert!(
        !runs_of(&second, MetricName::CpuPercent).is_empty(),
        "the second poll has new samples"
    );

    let mut series: BTreeMap<(String, MetricName), Vec<chrono::DateTime<chrono::Utc>>> =
        BTreeMap::new();
    for feeds in [&first, &second] {
        for run in &feeds.samples {
            series
                .entry((run.resource_id.clone(), run.metric))
                .or_default()
                .extend(run.points.iter().map(|(t, _)| *t));
        }
    }
    for ((resource, metric), times) in &series {
        let unique: BTreeSet<_> = times.iter().collect();
        assert_eq!(
            unique.len(),
            times.len(),
            "{resource} {metric:?} has a sample twice: {times:?}"
        );
        if *metric == MetricName::DiskUsedBytes || *metric == MetricName::DiskTotalBytes {
            continue; // 300 s samples: the polls are too close to say anything about gaps.
        }
        for pair in times.windows(2) {
            let step = (pair[1] - pair[0]).num_seconds();
            assert!(
                (1..=21).contains(&step),
                "{resource} {metric:?}: {step} s between samples {pair:?} (all: {times:?})"
            );
        }
    }
    // The position survives a restart: a new session resumed from the cursor starts after
    // the stored samples (the host drops what it already holds; it is never older).
    let newest_stored = series
        .iter()
        .filter(|((_, m), _)| *m == MetricName::CpuPercent)
        .filter_map(|(_, times)| times.last().copied())
        .min()
        .expect("cpu samples");
    session.close().await;
    let mut resumed = open(&proxy).await;
    resumed.resume(&second.cursor);
    let from = proxy.requests().len();
    let (_, after) = poll_feeds(&mut resumed).await;
    let cursor_text = second.cursor.0.clone().unwrap_or_default();
    assert!(cursor_text.contains("\"perf\""), "{cursor_text}");
    assert!(
        cursor_text.len() < 1000,
        "the cursor stays compact: {cursor_text}"
    );
    for run in runs_of(&after, MetricName::CpuPercent) {
        assert!(
            run.points
                .iter()
                .all(|(t, _)| *t > newest_stored - chrono::Duration::seconds(21)),
            "{} re-read old samples after the restart: {:?}",
            run.resource_id,
            run.points
        );
    }
    let bodies = query_perf_bodies(&proxy, from);
    assert!(!bodies.is_empty());
    resumed.close().await;
}

/// `maxQueryMetrics` = 64 splits the queries into calls of at most 64 metrics (hosts and VMs
/// have 6 counters each, datastores 2), many entities per call; `-1` (no limit) needs one
/// call for this small inventory.
#[tokio::test]
async fn max_query_metrics_splits_the_queries() {
    let sim = Simulator::start(SimulatorOptions {
        vms: Some(6),
        ..SimulatorOptions::default()
    })
    .await;
    let proxy = recording_proxy(&sim).await;
    proxy.add_rule(FaultRule {
        method: "QueryOptions".into(),
        response: max_query_metrics(64),
    });
    let mut session = open(&proxy).await;
    let (projection, feeds) = poll_feeds(&mut session).await;
    assert!(feeds.issues.is_empty(), "{:?}", feeds.issues);
    let realtime = ids_of(&projection, ResourceType::Agent).len()
        + ids_of(&projection, ResourceType::Vm).len();
    let metrics = realtime * 6 + ids_of(&projection, ResourceType::Storage).len() * 2;
    let bodies = query_perf_bodies(&proxy, 0);
    assert!(
        bodies.len() >= metrics.div_ceil(64) && bodies.len() >= 2,
        "{metrics} metrics in {} call(s)",
        bodies.len()
    );
    for body in &bodies {
        let asked = body.matches("<metricId>").count();
        assert!(asked <= 64, "{asked} metrics in one call");
        assert!(
            body.matches("<querySpec>").count() > 1,
            "many entities per call"
        );
    }
    let cpu: BTreeSet<String> = runs_of(&feeds, MetricName::CpuPercent)
        .iter()
        .map(|r| r.resource_id.clone())
        .collect();
    assert_eq!(cpu.len(), realtime, "every entity is still read");
    session.close().await;

    // No limit (-1): one call of at most 256 entities.
    let proxy = recording_proxy(&sim).await;
    proxy.add_rule(FaultRule {
        method: "QueryOptions".into(),
        response: max_query_metrics(-1),
    });
    let mut session = open(&proxy).await;
    let _ = poll_feeds(&mut session).await;
    assert_eq!(query_perf_bodies(&proxy, 0).len(), 1);
    session.close().await;
}

/// A `RestrictedByAdministrator` fault pauses performance collection: the next poll sends no
/// `QueryPerf`, reports why, and still reads the inventory.
#[tokio::test]
async fn a_refused_query_backs_off_and_the_inventory_poll_goes_on() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let proxy = recording_proxy(&sim).await;
    proxy.add_rule(FaultRule {
        method: "QueryPerf".into(),
        response: FaultResponse::Fault {
            kind: "RestrictedByAdministrator".into(),
            message: "Query is too large".into(),
            fields: String::new(),
        },
    });
    let mut session = open(&proxy).await;
    let (projection, feeds) = poll_feeds(&mut session).await;
    let expected = sim.inventory().hosts + sim.inventory().vms + sim.inventory().datastores;
    assert_eq!(projection.resources.len() as u64, expected);
    assert!(feeds.samples.is_empty(), "{:?}", feeds.samples);
    assert_eq!(feeds.issues.len(), 1, "{:?}", feeds.issues);
    let message = &feeds.issues[0].message;
    assert!(message.contains("RestrictedByAdministrator"), "{message}");
    assert!(message.contains("pauses"), "{message}");
    assert_eq!(feeds.issues[0].stage, "feeds");
    assert_eq!(
        query_perf_bodies(&proxy, 0).len(),
        1,
        "the first refusal stops the cycle"
    );

    let from = proxy.requests().len();
    let (projection, next) = poll_feeds(&mut session).await;
    assert_eq!(
        projection.resources.len() as u64,
        expected,
        "the inventory is read"
    );
    assert!(
        query_perf_bodies(&proxy, from).is_empty(),
        "no QueryPerf while paused"
    );
    assert_eq!(next.issues.len(), 1, "{:?}", next.issues);
    assert!(
        next.issues[0].message.contains("paused"),
        "{}",
        next.issues[0].message
    );
    session.close().await;
}

/// An HTTP 500 without a fault (an overloaded vpxd) backs off as well.
#[tokio::test]
async fn an_http_500_backs_off() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let proxy = recording_proxy(&sim).await;
    proxy.add_rule(FaultRule {
        method: "QueryPerf".into(),
        response: FaultResponse::HttpStatus(500, "vpxd is busy".into()),
    });
    let mut session = open(&proxy).await;
    let (_, feeds) = poll_feeds(&mut session).await;
    assert_eq!(feeds.issues.len(), 1, "{:?}", feeds.issues);
    assert!(
        feeds.issues[0].message.contains("HTTP 500"),
        "{}",
        feeds.issues[0].message
    );
    let from = proxy.requests().len();
    let _ = poll_feeds(&mut session).await;
    assert!(query_perf_bodies(&proxy, from).is_empty());
    session.close().await;
}
