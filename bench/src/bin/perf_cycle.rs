//! Performance collection cycles against the 5,000-VM simulator (`scripts/bench.sh` runs it
//! after the main benchmark).
//!
//! Logs in, reads the inventory once, then runs three collection cycles 20 s apart with the
//! code a poll runs (`pylon_vsphere::floor::perf_cycles`): the first starts from a fresh
//! position (the last minute), the later ones resume from the previous cycle, as the
//! steady state does every poll. Reports per cycle the entities asked, `QueryPerf` calls,
//! answer bytes, samples kept and wall time. Target (issue 6): a cycle for every entity well
//! under the 20 s realtime interval.
//!
//! `BENCH_VMS_PER_POOL` shrinks the simulator (200: 5,000 VMs; 2: 50 VMs for a smoke run).

use pylon_core::draft::apply_draft;
use pylon_core::Provider;
use pylon_vcsim::{Simulator, SimulatorOptions};
use pylon_vsphere::floor::perf_cycles;
use pylon_vsphere::{VsphereProvider, DESCRIPTOR};
use serde_json::json;
use std::time::Duration;

const CYCLES: usize = 3;
const PAUSE: Duration = Duration::from_secs(20);

#[tokio::main]
async fn main() {
    if let Err(message) = run().await {
        eprintln!("pylon-bench-perf: {message}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let vms_per_pool: u32 = std::env::var("BENCH_VMS_PER_POOL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    eprintln!("starting the simulator: -dc 5 -cluster 4 -ch 8 -host 1 -vm {vms_per_pool} -ds 4");
    let sim = Simulator::start(SimulatorOptions {
        datacenters: Some(5),
        clusters: Some(4),
        hosts_per_cluster: Some(8),
        standalone_hosts: Some(1),
        vms: Some(vms_per_pool),
        datastores: Some(4),
        ..SimulatorOptions::default()
    })
    .await;
    let inventory = sim.inventory().clone();
    eprintln!(
        "simulator: {} VMs, {} hosts, {} datastores; {CYCLES} cycles {} s apart",
        inventory.vms,
        inventory.hosts,
        inventory.datastores,
        PAUSE.as_secs()
    );
    let draft = json!({
        "name": "bench",
        "host": sim.host(),
        "port": sim.port(),
        "username": "bench@vsphere.local",
        "password": "bench-password",
        "caCertificate": sim.ca_pem(),
    });
    let mut config = apply_draft(&DESCRIPTOR, None, &draft).map_err(|e| e.to_string())?;
    VsphereProvider::default()
        .validate(&mut config)
        .map_err(|e| e.to_string())?;
    let cycles = perf_cycles(&config, CYCLES, PAUSE)
        .await
        .map_err(|e| format!("collection failed: {}", e.message))?;
    sim.stop().await;

    println!(
        "| cycle | entities | QueryPerf calls (+ set-up) | answer bytes (incl. set-up) | samples (series) | wall time |"
    );
    println!("|---|---|---|---|---|---|");
    for (index, cycle) in cycles.iter().enumerate() {
        let label = if index == 0 {
            "1 (fresh: last minute)".to_owned()
        } else {
            format!("{} (resumed, {} s later)", index + 1, PAUSE.as_secs())
        };
        println!(
            "| {label} | {} | {} (+ {}) | {:.1} MB | {} ({}) | {:.0} ms |",
            cycle.entities,
            cycle.query_calls,
            cycle.setup_calls,
            cycle.bytes as f64 / 1e6,
            cycle.samples,
            cycle.series,
            cycle.elapsed.as_secs_f64() * 1000.0
        );
        for issue in &cycle.issues {
            println!("|   issue | {issue} | | | | |");
        }
    }
    Ok(())
}
