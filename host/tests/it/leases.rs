//! The lease table on a real PostgreSQL (see `pylon_host::lease`): one owner per lease even
//! when replicas race, expiry and takeover on the database's clock, release, and the census
//! the fair share is computed from.

use crate::pg::TestDatabase;
use pylon_core::PollHealth;
use pylon_host::lease::{LeaseStore, ReplicaCensus};
use pylon_host::store::{ConnectionRecord, PostgresStore, Store};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

async fn store_with(connections: usize) -> (TestDatabase, Arc<PostgresStore>) {
    let database = TestDatabase::new().await;
    let store = Arc::new(PostgresStore::open(&database.url).await.unwrap());
    for n in 0..connections {
        store
            .insert_connection(&ConnectionRecord {
                id: format!("c{n:03}"),
                platform: "vmware-vsphere".into(),
                name: format!("c{n}"),
                enabled: true,
                poll_interval_seconds: 60,
                settings: serde_json::Map::new(),
                sealed_secrets: vec![],
                health: PollHealth::new(60, true),
                observed: None,
                revision: 1,
                created_at: chrono::Utc::now(),
                updated_at: chrono::Utc::now(),
            })
            .await
            .unwrap();
    }
    (database, store)
}

fn ids(leases: &[pylon_host::lease::AcquiredLease]) -> HashSet<String> {
    leases.iter().map(|l| l.connection_id.clone()).collect()
}

#[tokio::test]
async fn racing_replicas_never_share_a_lease() {
    let (_db, store) = store_with(40).await;
    // Four replicas grab as much as they can at the same moment, several rounds.
    let mut owned: Vec<HashSet<String>> = vec![HashSet::new(); 4];
    for _ in 0..3 {
        let rounds = (0..4).map(|r| {
            let store = store.clone();
            tokio::spawn(async move { store.acquire(&format!("r{r}"), LONG, 40).await.unwrap() })
        });
        for (r, round) in rounds.enumerate() {
            owned[r].extend(ids(&round.await.unwrap()));
        }
    }
    let total: usize = owned.iter().map(HashSet::len).sum();
    let union: HashSet<&String> = owned.iter().flatten().collect();
    assert_eq!(total, 40, "every lease taken exactly once: {owned:?}");
    assert_eq!(union.len(), 40);
    for (r, held) in owned.iter().enumerate() {
        let renewed: HashSet<String> = store
            .renew(&format!("r{r}"), LONG, &[])
            .await
            .unwrap()
            .renewed
            .into_iter()
            .collect();
        assert_eq!(&renewed, held);
    }
}

#[tokio::test]
async fn expired_leases_are_taken_over_and_released_ones_at_once() {
    let (_db, store) = store_with(3).await;
    let short = Duration::from_millis(1500);
    let first = store.acquire("old", short, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|l| !l.takeover));
    // Held and unexpired: nobody else gets them.
    let rest = store.acquire("new", LONG, 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert!(ids(&first).is_disjoint(&ids(&rest)));

    tokio::time::sleep(Duration::from_millis(1700)).await;
    // The old owner cannot renew an expired lease; the new one takes both over.
    assert!(store
        .renew("old", LONG, &[])
        .await
        .unwrap()
        .renewed
        .is_empty());
    let taken = store.acquire("new", LONG, 10).await.unwrap();
    assert_eq!(ids(&taken), ids(&first));
    assert!(taken
        .iter()
        .all(|l| l.takeover && l.platform == "vmware-vsphere"));

    // Released leases are free at once.
    let released: Vec<String> = ids(&taken).into_iter().collect();
    store.release("new", &released).await.unwrap();
    assert_eq!(
        store.renew("new", LONG, &[]).await.unwrap().renewed.len(),
        1
    );
    let again = store.acquire("third", LONG, 10).await.unwrap();
    assert_eq!(ids(&again), released.iter().cloned().collect());
    assert!(again.iter().all(|l| !l.takeover));
    // Leaving gives everything back.
    store.leave("third").await.unwrap();
    assert!(store
        .renew("third", LONG, &[])
        .await
        .unwrap()
        .renewed
        .is_empty());
    assert_eq!(store.acquire("new", LONG, 10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn the_census_counts_live_replicas_and_enabled_connections() {
    let (_db, store) = store_with(10).await;
    let mut record = store
        .get_connection("vmware-vsphere", "c000")
        .await
        .unwrap()
        .unwrap();
    record.enabled = false;
    record.revision = 2;
    store.update_connection(&record, 1).await.unwrap();

    assert_eq!(
        store
            .heartbeat("a", Duration::from_millis(1500))
            .await
            .unwrap(),
        ReplicaCensus {
            live_replicas: 1,
            enabled_connections: 9
        }
    );
    let census = store.heartbeat("b", LONG).await.unwrap();
    assert_eq!(census.live_replicas, 2);
    assert_eq!(census.fair_share(), 5);
    // Disabled connections are never leased.
    assert!(!ids(&store.acquire("b", LONG, 100).await.unwrap()).contains("c000"));
    // A replica that stops beating is no longer counted.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(store.heartbeat("b", LONG).await.unwrap().live_replicas, 1);
    store.leave("b").await.unwrap();
    assert_eq!(store.heartbeat("c", LONG).await.unwrap().live_replicas, 1);
}

#[tokio::test]
async fn disabled_and_deleted_connections_retire_their_leases() {
    let (_db, store) = store_with(3).await;
    let held: Vec<String> = ids(&store.acquire("r", LONG, 10).await.unwrap())
        .into_iter()
        .collect();
    assert_eq!(held.len(), 3);
    let mut record = store
        .get_connection("vmware-vsphere", "c000")
        .await
        .unwrap()
        .unwrap();
    record.enabled = false;
    record.revision = 2;
    store.update_connection(&record, 1).await.unwrap();
    assert!(store
        .delete_connection("vmware-vsphere", "c001")
        .await
        .unwrap());

    let renewal = store.renew("r", LONG, &held).await.unwrap();
    assert_eq!(renewal.renewed, vec!["c002".to_owned()]);
    let mut retired = renewal.retired;
    retired.sort();
    assert_eq!(retired, vec!["c000".to_owned(), "c001".to_owned()]);
    // The disabled connection's lease is gone, not just left to expire.
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM leases")
        .fetch_one(&sqlx::PgPool::connect(&_db.url).await.unwrap())
        .await
        .unwrap();
    assert_eq!(rows, 1);
}
