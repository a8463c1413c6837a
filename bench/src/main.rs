//! `just bench`: Pylon's headline numbers against a 5,000-VM simulator.
//!
//! One run, on this machine, reports:
//! - the simulator's floor: session set-up plus the raw `RetrievePropertiesEx` round trip
//!   for Pylon's property set, answer bytes received but not parsed (median of three);
//! - Pylon's first collection: from `POST /api/vmware/connections` to the connection's
//!   `observed.collectedAt` appearing in the list, through a real release `pylon`;
//! - their ratio;
//! - later polls from `pylon`'s own log (`took_ms` for the provider's part, `store_ms` for
//!   the write): the second poll (a complete `WaitForUpdatesEx`) and steady-state
//!   incremental polls with nothing changed;
//! - `pylon`'s peak RSS (`VmHWM`) and the latency of `GET /api/resources?limit=1000` pages.
//!
//! It expects the `pylon` binary next to its own executable (`cargo build --release -p
//! pylon-host -p pylon-bench` builds both; see `scripts/bench.sh`).

use pylon_bench::{estate_config, estate_draft, start_estate};
use pylon_vsphere::floor::raw_inventory_read;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "pylon-bench-admin-token-0123456789abcdef";
/// Steady-state polls measured after the first two.
const INCREMENTAL_POLLS: usize = 3;
const LIST_REQUESTS: usize = 300;

type BenchResult<T> = Result<T, String>;

#[tokio::main]
async fn main() {
    if let Err(message) = run().await {
        eprintln!("pylon-bench: {message}");
        std::process::exit(1);
    }
}

async fn run() -> BenchResult<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = start_estate().await;
    let inventory = sim.inventory().clone();
    eprintln!(
        "simulator: {} VMs, {} hosts, {} datastores",
        inventory.vms, inventory.hosts, inventory.datastores
    );
    let mut draft = estate_draft(&sim);
    draft["pollIntervalSeconds"] = json!(10);

    // The floor, measured three times; the median counts.
    let config = estate_config(&draft)?;
    let mut floors = Vec::new();
    for _ in 0..3 {
        let raw = raw_inventory_read(&config)
            .await
            .map_err(|e| format!("raw read failed: {}", e.message))?;
        floors.push(raw);
    }
    floors.sort_by_key(|raw| raw.login + raw.read);
    let floor = floors[1];
    let floor_total = floor.login + floor.read;

    // Pylon, release build, fresh data directory.
    let pylon = Pylon::start()?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let base = &pylon.base;
    let cpu_before_create = cpu_ns(pylon.child.id());
    let started = Instant::now();
    let created: Value = http
        .post(format!("{base}/api/vmware/connections"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&draft)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let id = created["id"]
        .as_str()
        .ok_or_else(|| format!("create failed: {created}"))?
        .to_owned();
    let first_collection = loop {
        let list: Value = http
            .get(format!("{base}/api/vmware/connections"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let item = list
            .as_array()
            .and_then(|items| items.iter().find(|item| item["id"] == id.as_str()));
        if let Some(item) = item {
            if item["observed"]["collectedAt"].is_string() {
                let elapsed = started.elapsed();
                let vms = item["observed"]["vms"].as_u64().unwrap_or(0);
                if vms != inventory.vms {
                    return Err(format!(
                        "observed {vms} VMs, the simulator has {}",
                        inventory.vms
                    ));
                }
                break elapsed;
            }
            if item["poll"]["status"] == "failing" {
                return Err(format!(
                    "the first poll failed: {}",
                    item["poll"]["lastError"]
                ));
            }
        }
        if started.elapsed() > Duration::from_secs(300) {
            return Err("no observed summary within 300 s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    eprintln!("first collection: {first_collection:?}; waiting for later polls (10 s apart)");

    // Later polls, from pylon's log.
    let wanted = 2 + INCREMENTAL_POLLS;
    let deadline = Instant::now() + Duration::from_secs(30 + 15 * wanted as u64);
    let polls = loop {
        let polls = pylon.polls();
        if polls.len() >= wanted {
            break polls;
        }
        if Instant::now() > deadline {
            return Err(format!("only {} polls logged: {polls:?}", polls.len()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // List pages: walk all resources in pages of 1000, repeatedly.
    let mut latencies = Vec::with_capacity(LIST_REQUESTS);
    let mut cursor: Option<String> = None;
    for _ in 0..LIST_REQUESTS {
        let url = match &cursor {
            Some(c) => format!("{base}/api/resources?limit=1000&cursor={c}"),
            None => format!("{base}/api/resources?limit=1000"),
        };
        let sent = Instant::now();
        let page: Value = http
            .get(url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        latencies.push(sent.elapsed());
        cursor = page["nextCursor"].as_str().map(str::to_owned);
    }
    latencies.sort();
    let rss = pylon.peak_rss_kib()?;
    drop(pylon);
    sim.stop().await;

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let first_poll = &polls[0];
    let second = &polls[1];
    let mut steady: Vec<u64> = polls[2..].iter().map(|p| p.took_ms + p.store_ms).collect();
    steady.sort_unstable();
    let steady_median = steady[steady.len() / 2].max(1);
    let full = second.took_ms + second.store_ms;
    // CPU per poll's inventory phase: from the end of the previous poll's feeds phase (or
    // of the previous poll, when its feeds line was not seen) to this poll's line; pylon
    // idles in between. The feeds phase: from the poll's line to its feeds line.
    let cpu_ms = |from: u64, to: u64| to.saturating_sub(from) as f64 / 1e6;
    let phase_end = |poll: &PollLog| poll.feeds.as_ref().map_or(poll.cpu_ns, |f| f.cpu_ns);
    let first_cpu = cpu_ms(cpu_before_create, first_poll.cpu_ns);
    let second_cpu = cpu_ms(phase_end(first_poll), second.cpu_ns);
    let mut steady_cpu: Vec<f64> = polls
        .windows(2)
        .skip(1)
        .map(|pair| cpu_ms(phase_end(&pair[0]), pair[1].cpu_ns))
        .collect();
    let mut feeds_cpu: Vec<(f64, u64, u64, u64)> = polls[2..]
        .iter()
        .filter_map(|poll| {
            let feeds = poll.feeds.as_ref()?;
            Some((
                cpu_ms(poll.cpu_ns, feeds.cpu_ns),
                feeds.took_ms,
                feeds.store_ms,
                feeds.samples,
            ))
        })
        .collect();
    feeds_cpu.sort_by(|a, b| a.0.total_cmp(&b.0));
    let first_feeds = first_poll.feeds.clone();
    steady_cpu.sort_by(f64::total_cmp);
    let steady_cpu_median = steady_cpu[steady_cpu.len() / 2].max(0.001);
    println!("| measurement | value |");
    println!("|---|---|");
    println!(
        "| simulator inventory | {} VMs, {} hosts, {} datastores |",
        inventory.vms, inventory.hosts, inventory.datastores
    );
    println!(
        "| floor: login + views + raw RetrievePropertiesEx ({} page(s), {:.1} MB, not parsed) | {:.0} ms (login {:.0} ms, read {:.0} ms) |",
        floor.pages,
        floor.bytes as f64 / 1e6,
        ms(floor_total),
        ms(floor.login),
        ms(floor.read)
    );
    println!(
        "| pylon first collection: POST to observed.collectedAt via the API | {:.0} ms |",
        ms(first_collection)
    );
    println!(
        "| ratio first collection / floor | {:.2}x |",
        first_collection.as_secs_f64() / floor_total.as_secs_f64()
    );
    println!(
        "| poll 1 (bulk read) in pylon's log: provider + store | {} ms + {} ms |",
        first_poll.took_ms, first_poll.store_ms
    );
    println!(
        "| poll 2 (complete WaitForUpdatesEx): provider + store | {} ms + {} ms |",
        second.took_ms, second.store_ms
    );
    println!(
        "| steady-state incremental poll, nothing changed (median of {}): provider + store | {} ms (all: {:?}) |",
        steady.len(),
        steady_median,
        steady
    );
    println!(
        "| full / incremental poll, wall time (the simulator holds every versioned WaitForUpdatesEx for its 250 ms update ticker) | {:.1}x |",
        full as f64 / steady_median as f64
    );
    println!(
        "| pylon CPU per poll: first (incl. create) / second (complete) / incremental median {:?} | {:.1} / {:.1} / {:.1} ms |",
        steady_cpu.iter().map(|c| (c * 10.0).round() / 10.0).collect::<Vec<_>>(),
        first_cpu,
        second_cpu,
        steady_cpu_median
    );
    println!(
        "| full / incremental poll, pylon CPU | {:.1}x |",
        second_cpu / steady_cpu_median
    );
    if let Some(feeds) = &first_feeds {
        println!(
            "| feeds phase after poll 1 (events, tasks, the last minute of performance): read + store, CPU, samples | {} ms + {} ms, {:.0} ms, {} |",
            feeds.took_ms,
            feeds.store_ms,
            cpu_ms(first_poll.cpu_ns, feeds.cpu_ns),
            feeds.samples
        );
    }
    if let Some((cpu, took, store, samples)) = feeds_cpu.get(feeds_cpu.len() / 2) {
        println!(
            "| steady-state feeds phase (median of {}): read + store, CPU, samples | {took} ms + {store} ms, {cpu:.0} ms, {samples} |",
            feeds_cpu.len()
        );
    }
    println!("| pylon peak RSS (VmHWM) | {:.1} MB |", rss as f64 / 1024.0);
    println!(
        "| GET /api/resources?limit=1000, {} requests: p50 / p99 / max | {:.1} / {:.1} / {:.1} ms |",
        latencies.len(),
        ms(latencies[latencies.len() / 2]),
        ms(latencies[latencies.len() * 99 / 100]),
        ms(latencies[latencies.len() - 1])
    );
    Ok(())
}

#[derive(Debug, Clone)]
struct PollLog {
    took_ms: u64,
    store_ms: u64,
    /// pylon's total CPU time when the line was read (see [`cpu_ns`]).
    cpu_ns: u64,
    /// The feeds phase that followed this poll, once its line was read.
    feeds: Option<FeedsLog>,
}

/// A "feeds recorded" line: the second phase of a poll (history and performance).
#[derive(Debug, Clone)]
struct FeedsLog {
    took_ms: u64,
    store_ms: u64,
    samples: u64,
    cpu_ns: u64,
}

/// CPU time of every thread of `pid` so far, in nanoseconds (`/proc/<pid>/task/*/schedstat`;
/// finer than the clock ticks of `/proc/<pid>/stat`). pylon idles between polls, so the
/// difference between two poll lines is what the later poll cost in CPU.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// A release `pylon` serving on a free loopback port with a throwaway data directory.
struct Pylon {
    child: Child,
    base: String,
    polls: Arc<Mutex<Vec<PollLog>>>,
    _data: tempfile::TempDir,
}

impl Pylon {
    fn start() -> BenchResult<Pylon> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let pylon = exe.with_file_name("pylon");
        if !pylon.exists() {
            return Err(format!(
                "{} is missing: build it with `cargo build --release -p pylon-host -p pylon-bench`",
                pylon.display()
            ));
        }
        let data = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let mut child = Command::new(&pylon)
            .arg("serve")
            .env("PYLON_LISTEN", format!("127.0.0.1:{port}"))
            .env("PYLON_DATA_DIR", data.path())
            .env("PYLON_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("PYLON_LOG", "info")
            .env("PYLON_LOG_FORMAT", "json")
            // `BENCH_COLLECT_FEEDS=false` measures the inventory path alone.
            .env(
                "PYLON_COLLECT_FEEDS",
                std::env::var("BENCH_COLLECT_FEEDS").unwrap_or_else(|_| "true".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", pylon.display()))?;
        let polls = Arc::new(Mutex::new(Vec::new()));
        // The last lines pylon wrote, for error messages.
        let tail = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let polls = polls.clone();
            let tail = tail.clone();
            let pid = child.id();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Ok(mut tail) = tail.lock() {
                        if tail.len() >= 20 {
                            tail.remove(0);
                        }
                        tail.push(line.clone());
                    }
                    match log_line(&line, pid) {
                        Some(LogLine::Poll(poll)) => {
                            if let Ok(mut polls) = polls.lock() {
                                polls.push(poll);
                            }
                        }
                        Some(LogLine::Feeds(feeds)) => {
                            if let Ok(mut polls) = polls.lock() {
                                if let Some(last) = polls.last_mut() {
                                    last.feeds = Some(feeds);
                                }
                            }
                        }
                        None => {}
                    }
                }
            });
        }
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                let said = tail.lock().map(|t| t.join("\n")).unwrap_or_default();
                return Err(format!(
                    "pylon did not start listening within 30 s; it said:\n{said}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Pylon {
            child,
            base,
            polls,
            _data: data,
        })
    }

    fn polls(&self) -> Vec<PollLog> {
        self.polls.lock().map(|p| p.clone()).unwrap_or_default()
    }

    fn peak_rss_kib(&self) -> BenchResult<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .map_err(|e| e.to_string())?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| "no VmHWM in /proc status".into())
    }
}

impl Drop for Pylon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum LogLine {
    Poll(PollLog),
    Feeds(FeedsLog),
}

/// The timings of a "poll succeeded" or "feeds recorded" line of pylon's JSON log, with
/// pylon's CPU time when it was read.
fn log_line(line: &str, pid: u32) -> Option<LogLine> {
    let event: Value = serde_json::from_str(line).ok()?;
    let fields = event.get("fields").unwrap_or(&event);
    let number = |key: &str| {
        let value = fields.get(key)?;
        value
            .as_u64()
            .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
    };
    match fields.get("message")?.as_str()? {
        "poll succeeded" => Some(LogLine::Poll(PollLog {
            took_ms: number("took_ms")?,
            store_ms: number("store_ms")?,
            cpu_ns: cpu_ns(pid),
            feeds: None,
        })),
        "feeds recorded" => Some(LogLine::Feeds(FeedsLog {
            took_ms: number("took_ms")?,
            store_ms: number("store_ms")?,
            samples: number("samples")?,
            cpu_ns: cpu_ns(pid),
        })),
        _ => None,
    }
}
