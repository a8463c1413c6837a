//! `just bench-history`: history ingest into the real SQLite store.
//!
//! 10,000 vSphere-shaped events for one connection, recorded the way polls record them (one
//! `record_feeds` transaction per 1,000, the `ReadNextEvents` page size), then the same
//! 10,000 again (a replay after a crash: every row is a duplicate the store must drop), then
//! 200 pages of one resource's history through `list_history`. Reports wall time per phase,
//! rows per second, the database size and the page latency percentiles.
//!
//! The simulator keeps only its newest 1,000 events, so it cannot produce a 10,000-event
//! backlog; this bench starts at the store, where every poll's history lands.

use chrono::{Duration, Utc};
use pylon_core::feeds::{FeedCursor, Feeds, HistoryKind, HistoryRecord};
use pylon_core::PollHealth;
use pylon_host::store::{ConnectionRecord, FeedRetention, HistoryQuery, SqliteStore, Store};
use std::time::Instant;

const EVENTS: u32 = 10_000;
const PAGE: usize = 1_000;
const RESOURCES: u32 = 500;
const LIST_PAGES: usize = 200;

fn event(connection: &str, key: u32) -> HistoryRecord {
    let resource = key % RESOURCES;
    HistoryRecord {
        id: format!("event-{key}"),
        connection_id: connection.to_owned(),
        at: Utc::now() - Duration::seconds(i64::from(EVENTS - key)),
        kind: if key.is_multiple_of(5) {
            HistoryKind::Task
        } else {
            HistoryKind::Event
        },
        record_type: "VmPoweredOffEvent".to_owned(),
        message: format!(
            "bench-vm-{resource} on bench-host-{} in DC0 is powered off",
            resource % 20
        ),
        user: Some("VSPHERE.LOCAL\\bench".to_owned()),
        resource_id: Some(format!("{connection}-vm-{resource:020}")),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or(f64::NAN)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = SqliteStore::open(&url).await?;
    let connection = "bench-connection";
    let now = Utc::now();
    store
        .insert_connection(&ConnectionRecord {
            id: connection.to_owned(),
            platform: "vmware-vsphere".to_owned(),
            name: "bench".to_owned(),
            enabled: false,
            poll_interval_seconds: 60,
            settings: serde_json::Map::new(),
            sealed_secrets: Vec::new(),
            health: PollHealth::new(60, false),
            observed: None,
            revision: 1,
            created_at: now,
            updated_at: now,
        })
        .await?;
    let records: Vec<HistoryRecord> = (1..=EVENTS).map(|key| event(connection, key)).collect();
    let retention = FeedRetention::default();

    let ingest = |label: &'static str| {
        let store = &store;
        let records = &records;
        async move {
            let started = Instant::now();
            for (n, page) in records.chunks(PAGE).enumerate() {
                let feeds = Feeds {
                    history: page.to_vec(),
                    cursor: FeedCursor(Some(format!("{{\"events\":{n}}}"))),
                    ..Feeds::default()
                };
                store.record_feeds(connection, &feeds, retention).await?;
            }
            let took = started.elapsed();
            println!(
                "{label}: {EVENTS} events in {} transactions: {:.0} ms ({:.0} events/s)",
                EVENTS as usize / PAGE,
                took.as_secs_f64() * 1000.0,
                f64::from(EVENTS) / took.as_secs_f64()
            );
            Ok::<(), Box<dyn std::error::Error>>(())
        }
    };
    ingest("first ingest").await?;
    ingest("replay (all duplicates)").await?;

    let mut latencies = Vec::with_capacity(LIST_PAGES);
    for n in 0..LIST_PAGES {
        let query = HistoryQuery {
            resource_id: format!("{connection}-vm-{:020}", n as u32 % RESOURCES),
            kind: None,
            since: None,
            after: None,
            limit: 100,
        };
        let started = Instant::now();
        let page = store.list_history(&query).await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(
            page.len(),
            (EVENTS / RESOURCES) as usize,
            "each resource's records, once"
        );
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "list_history (one resource, newest 100): p50 {:.2} ms, p99 {:.2} ms over {LIST_PAGES} reads",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir.path())? {
        bytes += entry?.metadata()?.len();
    }
    println!(
        "database on disk (with WAL): {:.1} MB for {EVENTS} records",
        bytes as f64 / 1_048_576.0
    );
    Ok(())
}
