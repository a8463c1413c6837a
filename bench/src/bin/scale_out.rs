//! `pylon-bench-scale-out`: 100 connections to four simulators across 3 `pylon` replicas on
//! one PostgreSQL (started for the run by `scripts/test-postgres.sh`, with `pg_stat_statements`).
//!
//! Reports:
//! - how long until the leases are spread (34/33/33) and every connection was polled once;
//! - poll throughput over a steady-state window, per replica, from the `poll_runs` table;
//! - the lease overhead: statements on the coordination tables (`replicas`, `leases`) per
//!   minute, in total and per connection, from `pg_stat_statements`;
//! - takeover after a SIGKILL: until every lease of the killed replica is held by a live one,
//!   and until each of its connections was polled again;
//! - whether any connection was ever polled by two replicas at once (it must not be).
//!
//! It expects `pylon` next to its own executable (`cargo build -p pylon-host -p pylon-bench`
//! builds both, debug or `--release`). `BENCH_CONNECTIONS`, `BENCH_LEASE_SECONDS` and
//! `BENCH_WINDOW_SECONDS` change the defaults (100, 15, 60); `BENCH_LOG_DIR` keeps each
//! replica's log there.

use pylon_vcsim::{Simulator, SimulatorOptions};
use serde_json::{json, Value};
use sqlx::{Connection, PgPool};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "pylon-bench-scale-out-admin-token";
const REPLICAS: usize = 3;
/// The smallest interval the API accepts: the most polls per connection.
const POLL_INTERVAL_SECONDS: u64 = 10;
/// Connections are spread over this many simulators.
const SIMULATORS: usize = 4;

type BenchResult<T> = Result<T, String>;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

#[tokio::main]
async fn main() {
    if let Err(message) = run().await {
        eprintln!("pylon-bench-scale-out: {message}");
        std::process::exit(1);
    }
}

/// The throwaway server; stopped (and its directory removed) when dropped.
struct Server {
    dir: tempfile::TempDir,
    script: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// One `pylon` process; SIGKILLed when dropped.
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

async fn run() -> BenchResult<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let connections = setting("BENCH_CONNECTIONS", 100) as usize;
    let lease_seconds = setting("BENCH_LEASE_SECONDS", 15);
    let window = Duration::from_secs(setting("BENCH_WINDOW_SECONDS", 60));
    let pylon = std::env::current_exe()
        .map_err(err)?
        .with_file_name("pylon");
    if !pylon.exists() {
        return Err(format!(
            "{} is missing: build it with `cargo build -p pylon-host -p pylon-bench`",
            pylon.display()
        ));
    }

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/test-postgres.sh");
    let server = Server {
        dir: tempfile::tempdir().map_err(err)?,
        script: script.clone(),
    };
    let started = Command::new(&script)
        .arg("start")
        .arg(server.dir.path())
        .env(
            "PYLON_PG_EXTRA_OPTIONS",
            "-c shared_preload_libraries=pg_stat_statements",
        )
        .output()
        .map_err(err)?;
    if !started.status.success() {
        return Err(String::from_utf8_lossy(&started.stderr).into_owned());
    }
    let base_url = String::from_utf8_lossy(&started.stdout).trim().to_owned();
    let mut admin = sqlx::PgConnection::connect(&format!("{base_url}/postgres"))
        .await
        .map_err(err)?;
    sqlx::query("CREATE DATABASE pylon")
        .execute(&mut admin)
        .await
        .map_err(err)?;
    let url = format!("{base_url}/pylon");
    let pool = PgPool::connect(&url).await.map_err(err)?;
    sqlx::query("CREATE EXTENSION pg_stat_statements")
        .execute(&pool)
        .await
        .map_err(err)?;

    // Several simulators: one govmomi simulator answering 100 sessions' logins at once stalls
    // some of them for minutes (seen here: logins hanging 95 s), which measures the simulator,
    // not the leases.
    eprintln!("starting {SIMULATORS} simulators (default model)");
    let mut sims = Vec::new();
    for _ in 0..SIMULATORS {
        sims.push(Simulator::start(SimulatorOptions::default()).await);
    }
    let shared = tempfile::tempdir().map_err(err)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(err)?;
    let spawn = |index: usize| -> BenchResult<Replica> {
        let data = tempfile::tempdir().map_err(err)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(err)?
            .port();
        let child = Command::new(&pylon)
            .env_clear()
            .env("PYLON_LISTEN", format!("127.0.0.1:{port}"))
            .env("PYLON_DATA_DIR", data.path())
            .env("PYLON_DATABASE_URL", &url)
            .env("PYLON_SECRET_KEY_FILE", shared.path().join("secret.key"))
            .env("PYLON_ADMIN_TOKEN", TOKEN)
            .env("PYLON_LEASE_SECONDS", lease_seconds.to_string())
            .env("PYLON_MAX_CONCURRENT_POLLS", "16")
            // A stalled simulator login fails the poll in 30 s and is retried, instead of
            // holding the connection for the default 120 s.
            .env("PYLON_POLL_TIMEOUT_SECONDS", "30")
            .env(
                "PYLON_LOG",
                std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stderr(Stdio::null())
            .stdout(match std::env::var_os("BENCH_LOG_DIR") {
                Some(dir) => {
                    std::fs::File::create(PathBuf::from(dir).join(format!("replica-{index}.log")))
                        .map_err(err)?
                        .into()
                }
                None => Stdio::null(),
            })
            .spawn()
            .map_err(|e| format!("replica {index}: {e}"))?;
        Ok(Replica {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _data: data,
        })
    };
    // The first replica makes the secret key the others share.
    let mut replicas = vec![spawn(0)?];
    ready(&http, &replicas[0]).await?;
    for index in 1..REPLICAS {
        replicas.push(spawn(index)?);
    }
    for replica in &replicas {
        ready(&http, replica).await?;
    }

    eprintln!("creating {connections} connections through the replicas in turn");
    let created_at = Instant::now();
    let mut ids = Vec::new();
    for n in 0..connections {
        let sim = &sims[n % SIMULATORS];
        let body = json!({
            "name": format!("vc-{n:03}"),
            "host": sim.host(),
            "port": sim.port(),
            "username": "user",
            "password": "pw",
            "caCertificate": sim.ca_pem(),
            "pollIntervalSeconds": POLL_INTERVAL_SECONDS,
        });
        let item: Value = http
            .post(format!(
                "{}/api/vmware/connections",
                replicas[n % REPLICAS].base
            ))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .map_err(err)?
            .json()
            .await
            .map_err(err)?;
        ids.push(item["id"].as_str().ok_or("no id in the answer")?.to_owned());
    }
    let spread = wait_spread(&pool, connections, REPLICAS, Duration::from_secs(120)).await?;
    let spread_after = created_at.elapsed();
    wait_polled(&pool, &ids, Duration::ZERO, Duration::from_secs(300)).await?;
    let polled_after = created_at.elapsed();

    // Steady state: poll runs and coordination statements over the window.
    sqlx::query("SELECT pg_stat_statements_reset()")
        .execute(&pool)
        .await
        .map_err(err)?;
    let window_start: chrono::DateTime<chrono::Utc> = chrono::Utc::now();
    tokio::time::sleep(window).await;
    let per_replica: Vec<(String, i64)> = sqlx::query_as(
        "SELECT replica_id, count(*) FROM poll_runs WHERE started_at >= $1
         GROUP BY replica_id ORDER BY replica_id",
    )
    .bind(window_start)
    .fetch_all(&pool)
    .await
    .map_err(err)?;
    let (lease_calls, all_calls): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(sum(calls) FILTER (WHERE query ~* '\\m(replicas|leases)\\M'), 0)::bigint,
                COALESCE(sum(calls), 0)::bigint
         FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'pylon')",
    )
    .fetch_one(&pool)
    .await
    .map_err(err)?;
    let minutes = window.as_secs_f64() / 60.0;
    let total_polls: i64 = per_replica.iter().map(|(_, n)| n).sum();

    // SIGKILL the first replica: how long until its leases and polls move.
    let victim_id = owner_of(&pool, &ids[0]).await?;
    let mut victim_index = None;
    for (index, replica) in replicas.iter().enumerate() {
        let text = http
            .get(format!("{}/metrics", replica.base))
            .send()
            .await
            .map_err(err)?
            .text()
            .await
            .map_err(err)?;
        if text.contains(&format!("pylon_replica_info{{replica=\"{victim_id}\"}} 1")) {
            victim_index = Some(index);
        }
    }
    let victim = replicas.remove(victim_index.ok_or("no replica exports the owner's id")?);
    let orphaned: Vec<String> = spread
        .iter()
        .filter(|(_, owner)| **owner == victim_id)
        .map(|(connection, _)| connection.clone())
        .collect();
    let killed = chrono::Utc::now();
    let kill_clock = Instant::now();
    drop(victim);
    wait_spread(&pool, connections, REPLICAS - 1, Duration::from_secs(120)).await?;
    let leases_moved = kill_clock.elapsed();
    let since_kill =
        Duration::from_millis((chrono::Utc::now() - killed).num_milliseconds().max(0) as u64);
    wait_polled(&pool, &orphaned, since_kill, Duration::from_secs(120)).await?;
    let polls_moved = kill_clock.elapsed();

    let overlaps: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM poll_runs a JOIN poll_runs b
           ON a.connection_id = b.connection_id AND a.replica_id < b.replica_id
          AND a.started_at < b.finished_at AND b.started_at < a.finished_at",
    )
    .fetch_one(&pool)
    .await
    .map_err(err)?;

    println!("pylon scale-out bench: {connections} connections, {REPLICAS} replicas, lease {lease_seconds} s, poll interval {POLL_INTERVAL_SECONDS} s");
    println!(
        "  leases spread ({}): {:.1} s after the first create; every connection polled: {:.1} s",
        spread_summary(&spread),
        spread_after.as_secs_f64(),
        polled_after.as_secs_f64()
    );
    println!(
        "  steady state over {:.0} s: {total_polls} polls ({:.1}/s; {:.2} per connection per minute, ideal {:.2}); per replica: {}",
        window.as_secs_f64(),
        total_polls as f64 / window.as_secs_f64(),
        total_polls as f64 / minutes / connections as f64,
        60.0 / POLL_INTERVAL_SECONDS as f64,
        per_replica.iter().map(|(_, n)| n.to_string()).collect::<Vec<_>>().join(" / ")
    );
    println!(
        "  lease overhead: {lease_calls} statements on replicas/leases in {:.0} s = {:.1}/min for the cluster, {:.3}/min per connection ({:.1}% of all {all_calls} statements)",
        window.as_secs_f64(),
        lease_calls as f64 / minutes,
        lease_calls as f64 / minutes / connections as f64,
        100.0 * lease_calls as f64 / all_calls.max(1) as f64
    );
    println!(
        "  SIGKILL of a replica holding {} connections: leases held by the survivors after {:.1} s, each of its connections polled again after {:.1} s",
        orphaned.len(),
        leases_moved.as_secs_f64(),
        polls_moved.as_secs_f64()
    );
    println!("  polls of one connection by two replicas at once: {overlaps}");
    drop(replicas);
    drop(server);
    if overlaps > 0 {
        return Err("a connection was polled by two replicas at once".into());
    }
    Ok(())
}

async fn ready(http: &reqwest::Client, replica: &Replica) -> BenchResult<()> {
    let started = Instant::now();
    while http
        .get(format!("{}/readyz", replica.base))
        .send()
        .await
        .is_err()
    {
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!("{} did not start", replica.base));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn leases(pool: &PgPool) -> BenchResult<BTreeMap<String, String>> {
    Ok(
        sqlx::query_as("SELECT connection_id, owner FROM leases WHERE expires_at > now()")
            .fetch_all(pool)
            .await
            .map_err(err)?
            .into_iter()
            .collect(),
    )
}

async fn owner_of(pool: &PgPool, connection: &str) -> BenchResult<String> {
    leases(pool)
        .await?
        .remove(connection)
        .ok_or_else(|| format!("{connection} has no lease"))
}

fn spread_summary(leases: &BTreeMap<String, String>) -> String {
    let mut counts: HashMap<&String, usize> = HashMap::new();
    for owner in leases.values() {
        *counts.entry(owner).or_default() += 1;
    }
    let mut counts: Vec<usize> = counts.into_values().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    counts
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("/")
}

/// Waits until `connections` leases are held by `owners` replicas, none above its fair share
/// (`ceil(connections / owners)`; 100 over 3 may settle as 34/34/32).
async fn wait_spread(
    pool: &PgPool,
    connections: usize,
    owners: usize,
    within: Duration,
) -> BenchResult<BTreeMap<String, String>> {
    let started = Instant::now();
    loop {
        let held = leases(pool).await?;
        let mut counts: HashMap<&String, usize> = HashMap::new();
        for owner in held.values() {
            *counts.entry(owner).or_default() += 1;
        }
        if held.len() == connections
            && counts.len() == owners
            && counts.values().all(|n| *n <= connections.div_ceil(owners))
        {
            return Ok(held);
        }
        if started.elapsed() > within {
            return Err(format!(
                "leases not spread over {owners} replicas: {counts:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until each of `ids` has a poll run that started at most `ago` before the call.
async fn wait_polled(
    pool: &PgPool,
    ids: &[String],
    ago: Duration,
    within: Duration,
) -> BenchResult<()> {
    let since = chrono::Utc::now() - chrono::Duration::milliseconds(ago.as_millis() as i64);
    let since = if ago.is_zero() {
        chrono::DateTime::<chrono::Utc>::UNIX_EPOCH
    } else {
        since
    };
    let started = Instant::now();
    loop {
        let polled: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT connection_id FROM poll_runs WHERE started_at >= $1",
        )
        .bind(since)
        .fetch_all(pool)
        .await
        .map_err(err)?;
        if ids.iter().all(|id| polled.contains(id)) {
            return Ok(());
        }
        if started.elapsed() > within {
            let missing: Vec<&String> = ids.iter().filter(|id| !polled.contains(id)).collect();
            return Err(format!("never polled within {within:?}: {missing:?}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
