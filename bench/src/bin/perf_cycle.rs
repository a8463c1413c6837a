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

use pylon_bench::{estate_config, estate_draft, start_estate};
use pylon_vsphere::floor::perf_cycles;
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
    let sim = start_estate().await;
    let inventory = sim.inventory().clone();
    eprintln!(
        "simulator: {} VMs, {} hosts, {} datastores; {CYCLES} cycles {} s apart",
        inventory.vms,
        inventory.hosts,
        inventory.datastores,
        PAUSE.as_secs()
    );
    let draft = estate_draft(&sim);
    let config = estate_config(&draft)?;
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
