//! Scale-out with real processes: three `pylon` binaries on one PostgreSQL and the vCenter
//! simulator. Who polled what is read from the `poll_runs` table each replica writes, never
//! from logs.

use crate::binary::{client, free_port};
use crate::pg::TestDatabase;
use crate::support::{offline_draft, sim_draft};
use chrono::{DateTime, Utc};
use pylon_vcsim::{Simulator, SimulatorOptions};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "scale-out-admin-token";
/// Short leases keep the test fast: a dead replica's connections move within about 3 s.
const LEASE_SECONDS: u64 = 3;

/// One row of `poll_runs`: `replica` polled `connection` from `started` to `finished`.
#[derive(Debug, sqlx::FromRow)]
struct PollRun {
    connection: String,
    replica: String,
    started: DateTime<Utc>,
    finished: DateTime<Utc>,
}

/// What every replica shares: the database, the secret key and the admin token.
struct Cluster {
    database: TestDatabase,
    pool: PgPool,
    shared: tempfile::TempDir,
}

/// One `pylon` process; killed (SIGKILL) when dropped so a failing test leaves none behind.
struct Replica {
    child: Child,
    base: String,
    _data: tempfile::TempDir,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cluster {
    async fn new() -> Self {
        let database = TestDatabase::new().await;
        let pool = PgPool::connect(&database.url).await.unwrap();
        Self {
            database,
            pool,
            shared: tempfile::tempdir().unwrap(),
        }
    }

    async fn replica(&self) -> Replica {
        let data = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_pylon"))
            .env_clear()
            .env("PYLON_LISTEN", format!("127.0.0.1:{port}"))
            .env("PYLON_DATA_DIR", data.path())
            .env("PYLON_DATABASE_URL", &self.database.url)
            .env(
                "PYLON_SECRET_KEY_FILE",
                self.shared.path().join("secret.key"),
            )
            .env("PYLON_ADMIN_TOKEN", TOKEN)
            .env("PYLON_LEASE_SECONDS", LEASE_SECONDS.to_string())
            .env("PYLON_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let replica = Replica {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _data: data,
        };
        let http = client();
        let started = Instant::now();
        while http
            .get(format!("{}/readyz", replica.base))
            .send()
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "replica did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        replica
    }

    /// Connection id -> owning replica, for unexpired leases.
    async fn leases(&self) -> BTreeMap<String, String> {
        sqlx::query_as("SELECT connection_id, owner FROM leases WHERE expires_at > now()")
            .fetch_all(&self.pool)
            .await
            .unwrap()
            .into_iter()
            .collect()
    }

    async fn runs(&self) -> Vec<PollRun> {
        sqlx::query_as(
            "SELECT connection_id AS connection, replica_id AS replica, started_at AS started,
                finished_at AS finished
             FROM poll_runs
             ORDER BY started_at",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// Waits until every one of `connections` is leased by exactly `owners` replicas, each
    /// holding its fair share (the floor or the ceiling of the even split); returns the
    /// leases and how long it took.
    async fn balanced(
        &self,
        connections: usize,
        owners: usize,
        within: Duration,
    ) -> (BTreeMap<String, String>, Duration) {
        let started = Instant::now();
        loop {
            let leases = self.leases().await;
            let mut per_owner: HashMap<&String, usize> = HashMap::new();
            for owner in leases.values() {
                *per_owner.entry(owner).or_default() += 1;
            }
            if leases.len() == connections
                && per_owner.len() == owners
                && per_owner
                    .values()
                    .all(|n| (connections / owners..=connections.div_ceil(owners)).contains(n))
            {
                return (leases.clone(), started.elapsed());
            }
            assert!(
                started.elapsed() < within,
                "not balanced over {owners} replicas within {within:?}: {per_owner:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// No connection was polled by two replicas at overlapping times.
fn assert_never_polled_twice_at_once(runs: &[PollRun]) {
    let mut by_connection: BTreeMap<&str, Vec<&PollRun>> = BTreeMap::new();
    for run in runs {
        by_connection.entry(&run.connection).or_default().push(run);
    }
    for (connection, runs) in by_connection {
        for (i, a) in runs.iter().enumerate() {
            for b in &runs[i + 1..] {
                if a.replica != b.replica {
                    assert!(
                        a.finished <= b.started || b.finished <= a.started,
                        "{connection} polled at once: {a:?} and {b:?}"
                    );
                }
            }
        }
    }
}

/// `GET base + path` with the admin token, as JSON.
async fn get_json(http: &reqwest::Client, base: &str, path: &str) -> Value {
    http.get(format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn metrics_text(http: &reqwest::Client, replica: &Replica) -> String {
    http.get(format!("{}/metrics", replica.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Whether `replica` is the one with lease owner id `id`.
async fn is_replica(http: &reqwest::Client, replica: &Replica, id: &str) -> bool {
    metrics_text(http, replica)
        .await
        .contains(&format!("pylon_replica_info{{replica=\"{id}\"}} 1"))
}

async fn metric(http: &reqwest::Client, replica: &Replica, name: &str) -> u64 {
    let text = metrics_text(http, replica).await;
    text.lines()
        .find(|line| line.starts_with(&format!("{name}{{")))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// The index of a replica whose id is not `owner`.
async fn replica_index_not_owning(
    http: &reqwest::Client,
    replicas: &[Replica],
    owner: &str,
) -> usize {
    for (i, replica) in replicas.iter().enumerate() {
        if !is_replica(http, replica, owner).await {
            return i;
        }
    }
    panic!("every replica is {owner}");
}

/// Waits for a poll run of `connection` that finishes from now on; returns when it did.
async fn wait_for_a_finished_run(cluster: &Cluster, connection: &str) -> DateTime<Utc> {
    let since = Utc::now();
    let started = Instant::now();
    loop {
        if let Some(run) = cluster
            .runs()
            .await
            .into_iter()
            .find(|run| run.connection == connection && run.finished > since)
        {
            return run.finished;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{connection} never polled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until each of `connections` has a poll run that started after `since`.
async fn all_polled_since(
    cluster: &Cluster,
    connections: &[String],
    since: DateTime<Utc>,
    within: Duration,
) {
    let started = Instant::now();
    loop {
        let polled: BTreeSet<String> = cluster
            .runs()
            .await
            .into_iter()
            .filter(|run| run.started > since)
            .map(|run| run.connection)
            .collect();
        let missing: Vec<&String> = connections
            .iter()
            .filter(|c| !polled.contains(*c))
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(started.elapsed() < within, "never polled: {missing:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn thirty_connections_are_spread_failed_over_and_rebalanced() {
    let sim = Simulator::start(SimulatorOptions {
        vms: Some(2),
        ..SimulatorOptions::default()
    })
    .await;
    let cluster = Cluster::new().await;
    let mut replicas = vec![
        cluster.replica().await,
        cluster.replica().await,
        cluster.replica().await,
    ];
    let http = client();

    // Thirty connections, created through every replica in turn.
    let mut connections = Vec::new();
    for n in 0..30 {
        let mut draft = sim_draft(&sim, &format!("vc-{n:02}"), "pw");
        draft["pollIntervalSeconds"] = json!(10);
        let created: Value = http
            .post(format!("{}/api/vmware/connections", replicas[n % 3].base))
            .bearer_auth(TOKEN)
            .json(&draft)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        connections.push(created["id"].as_str().unwrap().to_owned());
    }

    // Ten each, every one polled, by exactly its owner.
    let (leases, _) = cluster.balanced(30, 3, Duration::from_secs(15)).await;
    let start = Utc::now() - chrono::Duration::seconds(60);
    all_polled_since(&cluster, &connections, start, Duration::from_secs(20)).await;
    // Long enough for every connection's second poll (10 s interval, 1 s jitter).
    tokio::time::sleep(Duration::from_secs(12)).await;
    let runs = cluster.runs().await;
    let mut pollers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for run in &runs {
        pollers
            .entry(&run.connection)
            .or_default()
            .insert(&run.replica);
    }
    assert_eq!(pollers.len(), 30);
    for (connection, by) in &pollers {
        assert_eq!(
            by.iter().copied().collect::<Vec<_>>(),
            vec![leases[*connection].as_str()],
            "{connection} polled only by its lease owner"
        );
    }
    assert!(
        runs.len() >= 60,
        "every connection polled twice: {}",
        runs.len()
    );
    // Every replica answers the same list from the shared database.
    for replica in &replicas {
        let list = get_json(&http, &replica.base, "/api/vmware/connections").await;
        assert_eq!(list.as_array().unwrap().len(), 30);
        assert!(
            list.as_array()
                .unwrap()
                .iter()
                .all(|item| item["poll"]["status"] == "healthy"),
            "{list}"
        );
    }

    // SIGKILL the replica that holds the first connection: no goodbye, its leases just stop
    // being renewed. The other two take them within one lease period (plus a renewal tick).
    let victim_id = leases[&connections[0]].clone();
    let victim_index = {
        let mut found = None;
        for (i, replica) in replicas.iter().enumerate() {
            if is_replica(&http, replica, &victim_id).await {
                found = Some(i);
            }
        }
        found.expect("a replica exports the lease owner's id")
    };
    let victim = replicas.remove(victim_index);
    let orphaned: Vec<String> = leases
        .iter()
        .filter(|(_, owner)| **owner == victim_id)
        .map(|(connection, _)| connection.clone())
        .collect();
    assert_eq!(orphaned.len(), 10);
    let killed_at = Utc::now();
    drop(victim);
    let (after_kill, took) = cluster.balanced(30, 2, Duration::from_secs(15)).await;
    assert!(after_kill.values().all(|owner| *owner != victim_id));
    assert!(
        took <= Duration::from_secs(LEASE_SECONDS + 2),
        "takeover took {took:?}, more than one lease period ({LEASE_SECONDS} s) and a tick"
    );
    all_polled_since(&cluster, &orphaned, killed_at, Duration::from_secs(10)).await;
    let takeovers = metric(&http, &replicas[0], "pylon_lease_takeovers_total").await
        + metric(&http, &replicas[1], "pylon_lease_takeovers_total").await;
    assert_eq!(takeovers, 10);

    // Restarted, it is a new replica; the others release down to their share for it.
    replicas.push(cluster.replica().await);
    let (rebalanced, _) = cluster.balanced(30, 3, Duration::from_secs(20)).await;
    let newcomer_leases: Vec<String> = rebalanced
        .iter()
        .filter(|(_, owner)| !after_kill.values().any(|o| o == *owner))
        .map(|(c, _)| c.clone())
        .collect();
    assert_eq!(newcomer_leases.len(), 10);
    let rebalanced_at = Utc::now();
    all_polled_since(
        &cluster,
        &connections,
        rebalanced_at,
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(metric(&http, &replicas[2], "pylon_leases_held").await, 10);

    assert_never_polled_twice_at_once(&cluster.runs().await);

    // Edits and deletes made through a replica that does not poll the connection reach the
    // one that does within a lease tick. An edit restarts the poll at once: made just after
    // a poll finished, the next poll within 3 s (not the 10 s interval) proves it was seen.
    let edited = &connections[1];
    let owner = rebalanced[edited].clone();
    let other = replica_index_not_owning(&http, &replicas, &owner).await;
    let last_finished = wait_for_a_finished_run(&cluster, edited).await;
    let mut draft = sim_draft(&sim, "vc-01", "pw");
    draft["pollIntervalSeconds"] = json!(11);
    let response = http
        .put(format!(
            "{}/api/vmware/connections/{edited}",
            replicas[other].base
        ))
        .bearer_auth(TOKEN)
        .json(&draft)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let edit_at = Utc::now();
    let started = Instant::now();
    loop {
        let runs = cluster.runs().await;
        let repolled = runs
            .iter()
            .any(|run| run.connection == *edited && run.started > edit_at && run.replica == owner);
        if repolled {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the owner did not pick up an edit made elsewhere (last poll finished {last_finished})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deleted = &connections[2];
    let owner = rebalanced[deleted].clone();
    let other = replica_index_not_owning(&http, &replicas, &owner).await;
    let response = http
        .delete(format!(
            "{}/api/vmware/connections/{deleted}",
            replicas[other].base
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let deleted_at = Utc::now();
    // Within two ticks the owner has stopped it; nothing polls it after that.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = Utc::now();
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(
        !cluster
            .runs()
            .await
            .iter()
            .any(|run| run.connection == *deleted && run.started > settled),
        "a connection deleted at {deleted_at} through another replica was polled after {settled}"
    );

    // A graceful stop gives the leases back at once instead of letting them expire.
    let leaving = replicas.remove(0);
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(leaving.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let (_, took) = cluster.balanced(29, 2, Duration::from_secs(15)).await;
    assert!(
        took < Duration::from_secs(LEASE_SECONDS),
        "released, not expired: {took:?}"
    );
    drop(leaving);
    assert_never_polled_twice_at_once(&cluster.runs().await);
}

#[tokio::test]
async fn concurrent_writes_through_every_replica_lose_nothing() {
    let cluster = Cluster::new().await;
    let replicas = [
        cluster.replica().await,
        cluster.replica().await,
        cluster.replica().await,
    ];
    let http = client();

    // Fifty creates at once, spread over the replicas, plus five racing for one name.
    let mut writes = Vec::new();
    for n in 0..55 {
        let http = http.clone();
        let base = replicas[n % 3].base.clone();
        let name = if n < 50 {
            format!("c-{n:02}")
        } else {
            "contested".to_owned()
        };
        writes.push(tokio::spawn(async move {
            http.post(format!("{base}/api/vmware/connections"))
                .bearer_auth(TOKEN)
                .json(&offline_draft(&name))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for write in writes {
        statuses.push(write.await.unwrap());
    }
    assert!(statuses[..50].iter().all(|s| *s == 201), "{statuses:?}");
    let mut contested = statuses[50..].to_vec();
    contested.sort_unstable();
    assert_eq!(contested, vec![201, 409, 409, 409, 409]);
    for replica in &replicas {
        let list = get_json(&http, &replica.base, "/api/vmware/connections").await;
        assert_eq!(list.as_array().unwrap().len(), 51);
    }

    // Fifty concurrent edits of one connection through different replicas. Each either
    // lands (re-reading and retrying on a stale revision) or is refused with 409 after its
    // retries; none that was acknowledged is lost: one revision per 200.
    let list = get_json(&http, &replicas[0].base, "/api/vmware/connections").await;
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let mut edits = Vec::new();
    for n in 0..50u32 {
        let http = http.clone();
        let url = format!(
            "{}/api/vmware/connections/{id}",
            replicas[n as usize % 3].base
        );
        let mut draft = offline_draft(list[0]["name"].as_str().unwrap());
        draft["pollIntervalSeconds"] = json!(100 + n);
        edits.push(tokio::spawn(async move {
            let status = http
                .put(url)
                .bearer_auth(TOKEN)
                .json(&draft)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            (100 + n, status)
        }));
    }
    let mut acknowledged = BTreeSet::new();
    for edit in edits {
        let (interval, status) = edit.await.unwrap();
        match status {
            200 => {
                acknowledged.insert(i64::from(interval));
            }
            409 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(!acknowledged.is_empty());
    let (revision, interval): (i64, i64) =
        sqlx::query_as("SELECT revision, poll_interval_seconds FROM connections WHERE id = $1")
            .bind(&id)
            .fetch_one(&cluster.pool)
            .await
            .unwrap();
    assert_eq!(
        revision,
        1 + acknowledged.len() as i64,
        "one revision per acknowledged write"
    );
    assert!(acknowledged.contains(&interval));

    // A token made on one replica works on another and, revoked on a third, stops at once
    // everywhere: there is no token cache.
    let made: Value = http
        .post(format!("{}/api/tokens", replicas[0].base))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "reader", "scopes": ["settings:read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = made["token"].as_str().unwrap();
    let read = |base: &str| {
        http.get(format!("{base}/api/vmware/connections"))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(read(&replicas[1].base).await.unwrap().status(), 200);
    let revoked = http
        .delete(format!(
            "{}/api/tokens/{}",
            replicas[2].base,
            made["id"].as_str().unwrap()
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(read(&replicas[1].base).await.unwrap().status(), 401);
}
