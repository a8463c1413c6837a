//! What the benchmark binaries share: the 5,000-VM simulator estate they measure against and
//! the connection to it, built through the same validation path as the API.

use pylon_core::draft::apply_draft;
use pylon_core::{ConnectionConfig, Provider};
use pylon_vcsim::{Simulator, SimulatorOptions};
use pylon_vsphere::{VsphereProvider, DESCRIPTOR};
use serde_json::{json, Value};

/// Starts the benchmark estate: 5 datacenters of 4 clusters of 8 hosts plus a standalone
/// host, `BENCH_VMS_PER_POOL` VMs per resource pool (default 200, 5,000 VMs in all) and 4
/// datastores each.
pub async fn start_estate() -> Simulator {
    let vms_per_pool: u32 = std::env::var("BENCH_VMS_PER_POOL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    eprintln!("starting the simulator: -dc 5 -cluster 4 -ch 8 -host 1 -vm {vms_per_pool} -ds 4");
    Simulator::start(SimulatorOptions {
        datacenters: Some(5),
        clusters: Some(4),
        hosts_per_cluster: Some(8),
        standalone_hosts: Some(1),
        vms: Some(vms_per_pool),
        datastores: Some(4),
        ..SimulatorOptions::default()
    })
    .await
}

/// The connection draft for `sim`, as an API client would send it.
pub fn estate_draft(sim: &Simulator) -> Value {
    json!({
        "name": "bench",
        "host": sim.host(),
        "port": sim.port(),
        "username": "bench@vsphere.local",
        "password": "bench-password",
        "caCertificate": sim.ca_pem(),
    })
}

/// The provider configuration of `draft`, validated as the API validates it.
pub fn estate_config(draft: &Value) -> Result<ConnectionConfig, String> {
    let mut config = apply_draft(&DESCRIPTOR, None, draft).map_err(|e| e.to_string())?;
    VsphereProvider::default()
        .validate(&mut config)
        .map_err(|e| e.to_string())?;
    Ok(config)
}
