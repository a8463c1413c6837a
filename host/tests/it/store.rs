//! The store contract, one test body per behaviour run against both back ends: SQLite on a
//! temporary file and PostgreSQL on a database of its own (see `pg.rs`). Anything the API
//! relies on (conflicts, revisions, the resource diff, paging order, the alert lifecycle,
//! tokens) must answer the same on both.

use crate::pg::TestDatabase;
use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use pylon_core::feeds::{FeedCursor, Feeds, HistoryKind, HistoryRecord, MetricName, SampleRun};
use pylon_core::model::{
    AlertCondition, AlertSeverity, AlertSource, AlertState, LatestMetrics, Resource,
    ResourceStatus, ResourceType, Topology,
};
use pylon_core::model::{Relation, RelationKind};
use pylon_core::{FailureCategory, PollHealth};
use pylon_host::store::{
    AlertQuery, ConnectionRecord, FeedRetention, HistoryPosition, HistoryQuery, MetricQuery,
    PollAlerts, PostgresStore, RelationFilter, ResourceQuery, SqliteStore, Store, StoreError,
    TokenRecord,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// A store and whatever keeps its database alive.
pub struct Backend {
    pub store: Arc<dyn Store>,
    _sqlite: Option<tempfile::TempDir>,
    _postgres: Option<TestDatabase>,
}

impl Backend {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("pylon.db").display());
        Self {
            store: Arc::new(SqliteStore::open(&url).await.unwrap()),
            _sqlite: Some(dir),
            _postgres: None,
        }
    }

    pub async fn postgres() -> Self {
        let database = TestDatabase::new().await;
        Self {
            store: Arc::new(PostgresStore::open(&database.url).await.unwrap()),
            _sqlite: None,
            _postgres: Some(database),
        }
    }
}

/// Runs each named `async fn(&dyn Store)` once per back end, as `<name>::sqlite` and
/// `<name>::postgres`.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    let backend = super::Backend::sqlite().await;
                    super::$name(backend.store.as_ref()).await;
                }

                #[tokio::test]
                async fn postgres() {
                    let backend = super::Backend::postgres().await;
                    super::$name(backend.store.as_ref()).await;
                }
            }
        )*
    };
}

on_both_stores!(
    connections_keep_names_unique_and_revisions_honest,
    health_writes_leave_the_configuration_alone,
    a_poll_replaces_the_resource_set_and_rewrites_only_changes,
    resource_pages_filter_and_order_alike,
    alerts_open_stay_resolve_and_reopen,
    tokens_are_found_by_hash_touched_rarely_and_revoked,
    deleting_a_connection_takes_its_resources_and_alerts,
    resources_are_found_by_their_relations,
    feeds_store_once_page_newest_first_and_prune,
    metric_samples_bucket_and_stay_bounded,
);

/// A fixed instant with milliseconds, as the store keeps them.
fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_780_000_000_000 + seconds * 1000 + 123)
        .unwrap()
}

fn connection(id: &str, name: &str) -> ConnectionRecord {
    let mut settings = Map::new();
    settings.insert("host".into(), json!("vc.example.test"));
    ConnectionRecord {
        id: id.into(),
        platform: "vmware-vsphere".into(),
        name: name.into(),
        enabled: true,
        poll_interval_seconds: 60,
        settings,
        sealed_secrets: vec![0, 1, 2, 255],
        health: PollHealth::new(60, true),
        observed: None,
        revision: 1,
        created_at: at(0),
        updated_at: at(0),
    }
}

fn resource(connection: &str, kind: ResourceType, n: usize, seen: DateTime<Utc>) -> Resource {
    Resource {
        id: format!("{connection}-{}-{n:04}", kind.as_str()),
        resource_type: kind,
        platform: "vmware-vsphere".into(),
        connection_id: connection.into(),
        name: format!("{}_{n}%", kind.as_str()),
        status: ResourceStatus::Online,
        identity: Map::new(),
        relations: vec![],
        topology: Topology::default(),
        metrics: LatestMetrics::default(),
        details: Map::new(),
        last_seen_at: seen,
    }
}

fn healthy(at: DateTime<Utc>) -> PollHealth {
    let mut health = PollHealth::new(60, true);
    health.record_success(at, false);
    health
}

async fn record(
    store: &dyn Store,
    id: &str,
    resources: &[Resource],
    conditions: &[AlertCondition],
    when: DateTime<Utc>,
) {
    let alerts = PollAlerts {
        conditions,
        observed_at: when,
    };
    assert!(store
        .record_poll(
            id,
            &healthy(when),
            &json!({"vms": resources.len()}),
            resources,
            alerts
        )
        .await
        .unwrap());
}

async fn all_resources(store: &dyn Store, query: ResourceQuery) -> Vec<Value> {
    store
        .list_resources(&ResourceQuery {
            limit: 1000,
            ..query
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| serde_json::from_str(&r.json).unwrap())
        .collect()
}

async fn connections_keep_names_unique_and_revisions_honest(store: &dyn Store) {
    store.ping().await.unwrap();
    store
        .insert_connection(&connection("c1", "Lab"))
        .await
        .unwrap();
    // Names are unique per platform, case-insensitively.
    assert!(matches!(
        store.insert_connection(&connection("c2", "LAB")).await,
        Err(StoreError::NameConflict)
    ));
    let mut other_platform = connection("c2", "lab");
    other_platform.platform = "file".into();
    store.insert_connection(&other_platform).await.unwrap();
    store
        .insert_connection(&connection("c3", "Prod"))
        .await
        .unwrap();

    let stored = store
        .get_connection("vmware-vsphere", "c1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.name, "Lab");
    assert_eq!(stored.sealed_secrets, vec![0, 1, 2, 255]);
    assert_eq!(stored.settings["host"], "vc.example.test");
    assert_eq!(stored.created_at, at(0));
    assert_eq!(stored.revision, 1);
    assert!(store.get_connection("file", "c1").await.unwrap().is_none());

    // Optimistic revisions: a write against the revision read succeeds once.
    let mut edited = stored.clone();
    edited.name = "Lab 2".into();
    edited.revision = 2;
    edited.updated_at = at(5);
    store.update_connection(&edited, 1).await.unwrap();
    assert!(matches!(
        store.update_connection(&edited, 1).await,
        Err(StoreError::StaleRevision)
    ));
    let mut renamed = edited.clone();
    renamed.name = "prod".into();
    renamed.revision = 3;
    assert!(matches!(
        store.update_connection(&renamed, 2).await,
        Err(StoreError::NameConflict)
    ));
    let mut missing = edited.clone();
    missing.id = "nope".into();
    assert!(matches!(
        store.update_connection(&missing, 2).await,
        Err(StoreError::NotFound)
    ));

    let listed: Vec<(String, String, i64)> = store
        .list_connections("vmware-vsphere")
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.id, c.name, c.revision))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("c1".into(), "Lab 2".into(), 2),
            ("c3".into(), "Prod".into(), 1)
        ]
    );
    assert!(store
        .delete_connection("vmware-vsphere", "c3")
        .await
        .unwrap());
    assert!(!store
        .delete_connection("vmware-vsphere", "c3")
        .await
        .unwrap());
}

async fn health_writes_leave_the_configuration_alone(store: &dyn Store) {
    store
        .insert_connection(&connection("c1", "lab"))
        .await
        .unwrap();
    let mut health = PollHealth::new(60, true);
    health.record_failure(at(10), FailureCategory::Network, "refused");
    assert!(store.update_health("c1", &health, None).await.unwrap());
    assert!(!store.update_health("gone", &health, None).await.unwrap());
    let stored = store
        .get_connection("vmware-vsphere", "c1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.health, health);
    assert_eq!(stored.observed, None);
    assert_eq!(stored.revision, 1);

    // A summary given is kept; none given keeps the last one.
    let observed = json!({"vms": 3});
    assert!(store
        .update_health("c1", &healthy(at(20)), Some(&observed))
        .await
        .unwrap());
    assert!(store
        .update_health("c1", &healthy(at(30)), None)
        .await
        .unwrap());
    let stored = store
        .get_connection("vmware-vsphere", "c1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.observed, Some(observed));
    assert_eq!(stored.health, healthy(at(30)));
}

async fn a_poll_replaces_the_resource_set_and_rewrites_only_changes(store: &dyn Store) {
    store
        .insert_connection(&connection("c1", "lab"))
        .await
        .unwrap();
    // More than one multi-row upsert batch.
    let first: Vec<Resource> = (0..620)
        .map(|n| resource("c1", ResourceType::Vm, n, at(100)))
        .collect();
    record(store, "c1", &first, &[], at(100)).await;
    let listed = all_resources(store, ResourceQuery::default()).await;
    assert_eq!(listed.len(), 620);
    assert_eq!(listed[0]["lastSeenAt"], "2026-05-28T20:28:20.123Z");
    assert_eq!(
        store.get_resource("c1-vm-0000").await.unwrap().unwrap(),
        serde_json::to_value(&first[0]).unwrap()
    );

    // The next poll: one renamed, the last 20 gone, one new; everything seen later.
    let mut second: Vec<Resource> = first[..600]
        .iter()
        .map(|r| Resource {
            last_seen_at: at(200),
            ..r.clone()
        })
        .collect();
    second[3].name = "renamed".into();
    second.push(resource("c1", ResourceType::Agent, 0, at(200)));
    record(store, "c1", &second, &[], at(200)).await;
    let listed = all_resources(store, ResourceQuery::default()).await;
    assert_eq!(listed.len(), 601);
    assert!(listed
        .iter()
        .all(|r| r["lastSeenAt"] == "2026-05-28T20:30:00.123Z"));
    assert_eq!(
        store.get_resource("c1-vm-0003").await.unwrap().unwrap()["name"],
        "renamed"
    );
    assert!(store.get_resource("c1-vm-0610").await.unwrap().is_none());

    // An unchanged poll moves every `lastSeenAt` without a resource write.
    assert!(store
        .record_unchanged_poll("c1", &healthy(at(300)), &json!({"vms": 601}), at(300))
        .await
        .unwrap());
    assert_eq!(
        store.get_resource("c1-vm-0599").await.unwrap().unwrap()["lastSeenAt"],
        "2026-05-28T20:31:40.123Z"
    );
    let stored = store
        .get_connection("vmware-vsphere", "c1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.observed, Some(json!({"vms": 601})));
    // A poll of a connection deleted meanwhile writes nothing.
    assert!(!store
        .record_unchanged_poll("gone", &healthy(at(300)), &json!({}), at(300))
        .await
        .unwrap());
    let alerts = PollAlerts {
        conditions: &[],
        observed_at: at(300),
    };
    assert!(!store
        .record_poll("gone", &healthy(at(300)), &json!({}), &second, alerts)
        .await
        .unwrap());
}

async fn resource_pages_filter_and_order_alike(store: &dyn Store) {
    store
        .insert_connection(&connection("a", "a"))
        .await
        .unwrap();
    store
        .insert_connection(&connection("B", "b"))
        .await
        .unwrap();
    let mut a: Vec<Resource> = (0..5)
        .map(|n| resource("a", ResourceType::Vm, n, at(1)))
        .collect();
    a.push(resource("a", ResourceType::Storage, 0, at(1)));
    a[2].name = "Web_01".into();
    a[4].name = "web-02".into();
    let b: Vec<Resource> = (0..3)
        .map(|n| resource("B", ResourceType::Agent, n, at(1)))
        .collect();
    record(store, "a", &a, &[], at(1)).await;
    record(store, "B", &b, &[], at(1)).await;

    // Byte order: upper-case ids sort before lower-case ones on both databases.
    let ids = |values: &[Value]| -> Vec<String> {
        values
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let every = all_resources(store, ResourceQuery::default()).await;
    assert_eq!(
        ids(&every),
        vec![
            "B-agent-0000",
            "B-agent-0001",
            "B-agent-0002",
            "a-storage-0000",
            "a-vm-0000",
            "a-vm-0001",
            "a-vm-0002",
            "a-vm-0003",
            "a-vm-0004"
        ]
    );
    // Cursor paging walks the same order.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_resources(&ResourceQuery {
                after: after.clone(),
                limit: 4,
                ..ResourceQuery::default()
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|r| r.id.clone());
        paged.extend(page.into_iter().map(|r| r.id));
    }
    assert_eq!(paged, ids(&every));

    let vms = all_resources(
        store,
        ResourceQuery {
            resource_type: Some("vm".into()),
            connection_id: Some("a".into()),
            platform: Some("vmware-vsphere".into()),
            ..ResourceQuery::default()
        },
    )
    .await;
    assert_eq!(vms.len(), 5);
    // Case-insensitive substring; `_` and `%` are literal.
    let web = all_resources(
        store,
        ResourceQuery {
            text: Some("WEB".into()),
            ..ResourceQuery::default()
        },
    )
    .await;
    assert_eq!(ids(&web), vec!["a-vm-0002", "a-vm-0004"]);
    let underscore = all_resources(
        store,
        ResourceQuery {
            text: Some("b_0".into()),
            ..ResourceQuery::default()
        },
    )
    .await;
    assert_eq!(ids(&underscore), vec!["a-vm-0002"]);
    let percent = all_resources(
        store,
        ResourceQuery {
            text: Some("_1%".into()),
            ..ResourceQuery::default()
        },
    )
    .await;
    assert_eq!(ids(&percent), vec!["B-agent-0001", "a-vm-0001"]);
}

fn condition(resource: &str, key: &str, severity: AlertSeverity) -> AlertCondition {
    AlertCondition {
        resource_id: resource.into(),
        key: key.into(),
        source: AlertSource::Health,
        severity,
        name: format!("{key} on {resource}"),
        message: format!("{resource} reports {key}"),
        since: None,
        acknowledged: false,
    }
}

async fn alerts_open_stay_resolve_and_reopen(store: &dyn Store) {
    store
        .insert_connection(&connection("c1", "lab"))
        .await
        .unwrap();
    let query = AlertQuery {
        limit: 100,
        ..AlertQuery::default()
    };
    let red = condition("vm-1", "health", AlertSeverity::Critical);
    let mut alarm = condition("vm-2", "alarm:1", AlertSeverity::Warning);
    alarm.since = Some(at(-50));
    record(
        store,
        "c1",
        &[],
        &[red.clone(), alarm.clone(), red.clone()],
        at(0),
    )
    .await;
    let first = store.list_alerts(&query).await.unwrap();
    assert_eq!(first.len(), 2, "a repeated condition counts once");
    assert_eq!(first[0].since, at(0));
    assert_eq!(first[1].since, at(-50));
    assert!(first.iter().all(|a| a.state == AlertState::Active));

    // Still reported: same alert, following the platform's severity and acknowledgement.
    let mut yellow = red.clone();
    yellow.severity = AlertSeverity::Warning;
    yellow.acknowledged = true;
    record(store, "c1", &[], &[yellow, alarm.clone()], at(60)).await;
    let second = store.list_alerts(&query).await.unwrap();
    assert_eq!(second[0].id, first[0].id);
    assert_eq!(second[0].severity, AlertSeverity::Warning);
    assert!(second[0].acknowledged);
    assert_eq!(second[0].since, at(0));

    // No longer reported: resolved at the poll's time. Reported again: a new alert.
    record(store, "c1", &[], &[alarm.clone()], at(120)).await;
    record(store, "c1", &[], &[alarm.clone(), red.clone()], at(180)).await;
    let all = store.list_alerts(&query).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].state, AlertState::Resolved);
    assert_eq!(all[0].resolved_at, Some(at(120)));
    assert_eq!(all[2].state, AlertState::Active);
    assert_eq!(all[2].since, at(180));

    let active = store
        .list_alerts(&AlertQuery {
            state: Some(AlertState::Active),
            severity: Some(AlertSeverity::Critical),
            ..query.clone()
        })
        .await
        .unwrap();
    assert_eq!(active.len(), 1);
    let page = store
        .list_alerts(&AlertQuery {
            after: Some(all[0].id.clone()),
            limit: 1,
            resource_id: Some("vm-1".into()),
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].id, all[2].id);
    let counts: Vec<(String, String, i64)> = store
        .active_alert_counts()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.connection_id, c.severity, c.count))
        .collect();
    assert_eq!(
        counts,
        vec![
            ("c1".into(), "critical".into(), 1),
            ("c1".into(), "warning".into(), 1)
        ]
    );

    // Resolved alerts older than the retention are pruned by a later poll.
    record(store, "c1", &[], &[alarm], at(0) + Duration::days(31)).await;
    let left = store.list_alerts(&query).await.unwrap();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|a| a.id != all[0].id));
}

async fn tokens_are_found_by_hash_touched_rarely_and_revoked(store: &dyn Store) {
    assert_eq!(store.token_count().await.unwrap(), 0);
    let token = TokenRecord {
        id: "t1".into(),
        name: "reader".into(),
        scopes: vec!["monitoring:read".into(), "settings:read".into()],
        token_hash: "ab".repeat(32),
        created_at: at(0),
        last_used_at: None,
    };
    store.insert_token(&token).await.unwrap();
    assert!(store.insert_token(&token).await.is_err());
    assert_eq!(
        store.find_token_by_hash(&token.token_hash).await.unwrap(),
        Some(token.clone())
    );
    assert!(store.find_token_by_hash("cd").await.unwrap().is_none());

    store.touch_token("t1", at(10)).await.unwrap();
    // Within a minute of the last touch: not rewritten.
    store.touch_token("t1", at(40)).await.unwrap();
    assert_eq!(
        store.list_tokens().await.unwrap()[0].last_used_at,
        Some(at(10))
    );
    store.touch_token("t1", at(71)).await.unwrap();
    assert_eq!(
        store.list_tokens().await.unwrap()[0].last_used_at,
        Some(at(71))
    );

    assert_eq!(store.token_count().await.unwrap(), 1);
    assert!(store.delete_token("t1").await.unwrap());
    assert!(!store.delete_token("t1").await.unwrap());
    assert!(store
        .find_token_by_hash(&token.token_hash)
        .await
        .unwrap()
        .is_none());
}

async fn deleting_a_connection_takes_its_resources_and_alerts(store: &dyn Store) {
    store
        .insert_connection(&connection("c1", "one"))
        .await
        .unwrap();
    store
        .insert_connection(&connection("c2", "two"))
        .await
        .unwrap();
    for id in ["c1", "c2"] {
        let resources = [resource(id, ResourceType::Vm, 0, at(0))];
        let conditions = [condition(
            &resources[0].id,
            "health",
            AlertSeverity::Critical,
        )];
        record(store, id, &resources, &conditions, at(0)).await;
    }
    assert!(store
        .delete_connection("vmware-vsphere", "c1")
        .await
        .unwrap());
    assert!(store.get_resource("c1-vm-0000").await.unwrap().is_none());
    assert!(store.get_resource("c2-vm-0000").await.unwrap().is_some());
    let alerts = store
        .list_alerts(&AlertQuery {
            limit: 10,
            ..AlertQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].connection_id, "c2");
}

async fn resources_are_found_by_their_relations(store: &dyn Store) {
    store
        .insert_connection(&connection("c1", "lab"))
        .await
        .unwrap();
    let host = resource("c1", ResourceType::Agent, 0, at(0));
    let disk = resource("c1", ResourceType::Storage, 0, at(0));
    let mut vms: Vec<Resource> = (0..3)
        .map(|n| resource("c1", ResourceType::Vm, n, at(0)))
        .collect();
    for vm in &mut vms[..2] {
        vm.relations.push(Relation {
            kind: RelationKind::RunsOn,
            target: host.id.clone(),
        });
    }
    vms[1].relations.push(Relation {
        kind: RelationKind::UsesStorage,
        target: disk.id.clone(),
    });
    let mut all = vec![host.clone(), disk.clone()];
    all.extend(vms);
    record(store, "c1", &all, &[], at(0)).await;
    let related = |target: &str, kind: Option<&str>| ResourceQuery {
        related_to: Some(RelationFilter {
            target: target.into(),
            kind: kind.map(str::to_owned),
        }),
        ..ResourceQuery::default()
    };
    let ids = |values: Vec<Value>| -> Vec<String> {
        values
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(all_resources(store, related(&host.id, None)).await),
        vec!["c1-vm-0000", "c1-vm-0001"]
    );
    assert_eq!(
        ids(all_resources(store, related(&disk.id, Some("usesStorage"))).await),
        vec!["c1-vm-0001"]
    );
    assert!(all_resources(store, related(&disk.id, Some("runsOn")))
        .await
        .is_empty());
}

fn history(
    id: &str,
    at: DateTime<Utc>,
    kind: HistoryKind,
    resource: Option<&str>,
) -> HistoryRecord {
    HistoryRecord {
        id: id.into(),
        connection_id: "c1".into(),
        at,
        kind,
        record_type: "VmPoweredOffEvent".into(),
        message: format!("{id} happened"),
        user: (kind == HistoryKind::Task).then(|| "admin".to_owned()),
        resource_id: resource.map(str::to_owned),
    }
}

async fn feeds_store_once_page_newest_first_and_prune(store: &dyn Store) {
    store
        .insert_connection(&connection("c1", "lab"))
        .await
        .unwrap();
    assert_eq!(store.feed_cursor("c1").await.unwrap(), FeedCursor(None));
    // Near the real now (retention counts from it), in the store's millisecond precision.
    let now = Utc::now().trunc_subsecs(3);
    let records: Vec<HistoryRecord> = (0..6)
        .map(|n| {
            let kind = if n % 2 == 0 {
                HistoryKind::Event
            } else {
                HistoryKind::Task
            };
            // Two records share a time: the id breaks the tie.
            let when = now - Duration::minutes(10 - (n / 2) * 2);
            history(&format!("e-{n}"), when, kind, Some("vm-1"))
        })
        .chain([history(
            "old",
            now - Duration::days(40),
            HistoryKind::Event,
            Some("vm-1"),
        )])
        .chain([history("dc", now, HistoryKind::Event, None)])
        .collect();
    let feeds = Feeds {
        history: records.clone(),
        cursor: FeedCursor(Some("key-6".into())),
        ..Feeds::default()
    };
    let retention = FeedRetention::default();
    assert!(store.record_feeds("c1", &feeds, retention).await.unwrap());
    // A replay stores nothing twice; the cursor moves with the records.
    let replay = Feeds {
        cursor: FeedCursor(Some("key-7".into())),
        ..feeds.clone()
    };
    assert!(store.record_feeds("c1", &replay, retention).await.unwrap());
    assert!(!store
        .record_feeds("gone", &replay, retention)
        .await
        .unwrap());
    assert_eq!(
        store.feed_cursor("c1").await.unwrap(),
        FeedCursor(Some("key-7".into()))
    );

    let query = HistoryQuery {
        resource_id: "vm-1".into(),
        kind: None,
        since: None,
        after: None,
        limit: 4,
    };
    let first = store.list_history(&query).await.unwrap();
    let ids =
        |page: &[HistoryRecord]| -> Vec<String> { page.iter().map(|r| r.id.clone()).collect() };
    // Older than the retention: pruned on write.
    assert_eq!(ids(&first), vec!["e-5", "e-4", "e-3", "e-2"]);
    assert_eq!(first[0], records[5]);
    let last = first.last().unwrap();
    let second = store
        .list_history(&HistoryQuery {
            after: Some(HistoryPosition {
                at: last.at,
                id: last.id.clone(),
            }),
            ..query.clone()
        })
        .await
        .unwrap();
    assert_eq!(ids(&second), vec!["e-1", "e-0"]);
    let tasks = store
        .list_history(&HistoryQuery {
            kind: Some(HistoryKind::Task),
            since: Some(now - Duration::minutes(9)),
            ..query.clone()
        })
        .await
        .unwrap();
    assert_eq!(ids(&tasks), vec!["e-5", "e-3"]);

    // The newest records are kept up to the row cap.
    let capped = FeedRetention {
        history_rows_per_connection: 3,
        ..retention
    };
    let one_more = Feeds {
        history: vec![history("e-9", now, HistoryKind::Event, Some("vm-1"))],
        ..Feeds::default()
    };
    assert!(store.record_feeds("c1", &one_more, capped).await.unwrap());
    let kept = store
        .list_history(&HistoryQuery {
            limit: 100,
            ..query.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        ids(&kept),
        vec!["e-9", "e-5"],
        "dc (no resource) is the third"
    );
}

async fn metric_samples_bucket_and_stay_bounded(store: &dyn Store) {
    store
        .insert_connection(&connection("c1", "lab"))
        .await
        .unwrap();
    let base = Utc
        .timestamp_opt(Utc::now().timestamp() / 60 * 60 - 3600, 0)
        .unwrap();
    let points = |offset: i64, values: &[f64]| -> Vec<(DateTime<Utc>, f64)> {
        values
            .iter()
            .enumerate()
            .map(|(n, v)| (base + Duration::seconds(offset + 20 * n as i64), *v))
            .collect()
    };
    let feeds = Feeds {
        samples: vec![
            SampleRun {
                resource_id: "vm-1".into(),
                metric: MetricName::MemoryUsedBytes,
                points: points(0, &[100.0, 200.0, 300.0, 400.0]),
            },
            SampleRun {
                resource_id: "vm-1".into(),
                metric: MetricName::CpuPercent,
                points: points(0, &[10.0, f64::NAN, 30.0]),
            },
            SampleRun {
                resource_id: "vm-2".into(),
                metric: MetricName::CpuPercent,
                points: points(0, &[99.0]),
            },
            // Older than the retention: pruned on write.
            SampleRun {
                resource_id: "vm-1".into(),
                metric: MetricName::CpuPercent,
                points: points(-2 * 86_400, &[50.0]),
            },
        ],
        ..Feeds::default()
    };
    let retention = FeedRetention::default();
    assert!(store.record_feeds("c1", &feeds, retention).await.unwrap());
    // Samples already stored (same resource, metric and second) are not stored again.
    assert!(store.record_feeds("c1", &feeds, retention).await.unwrap());

    let query = MetricQuery {
        resource_id: "vm-1".into(),
        metric: None,
        since: base - Duration::days(3),
        until: base + Duration::hours(1),
        bucket_seconds: 1,
    };
    let raw = store.metric_points(&query).await.unwrap();
    // Canonical metric order; the NaN was never stored.
    assert_eq!(raw.len(), 2);
    assert_eq!(raw[0].0, MetricName::CpuPercent);
    assert_eq!(
        raw[0].1,
        points(0, &[10.0])
            .into_iter()
            .chain(points(40, &[30.0]))
            .collect::<Vec<_>>()
    );
    assert_eq!(raw[1].0, MetricName::MemoryUsedBytes);
    assert_eq!(raw[1].1.len(), 4);

    let minute = store
        .metric_points(&MetricQuery {
            metric: Some(MetricName::MemoryUsedBytes),
            bucket_seconds: 60,
            ..query.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        minute,
        vec![(
            MetricName::MemoryUsedBytes,
            vec![(base, 200.0), (base + Duration::seconds(60), 400.0)]
        )]
    );
}
