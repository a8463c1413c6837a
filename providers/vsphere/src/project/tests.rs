//! Projection tests on the inventory recorded from the govmomi simulator (two datacenters,
//! each with a cluster of two hosts, a standalone host, two datastores and two VMs per
//! cluster and standalone host; plus a user folder `Prod`, a resource pool `Pool1` and a
//! template, see `inventory::tests::record`), changed where needed with update sets.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, TimeZone, Utc};
use pylon_core::model::{count_resources, Projection, RelationKind, Resource, ResourceStatus};
use pylon_core::{FailureCategory, InventoryCounts, SystemIdentity};
use serde_json::{json, Value};

use super::*;
use crate::inventory::paths;
use crate::inventory::tests::{
    check_json, host, modify, snapshot_of, update_set_of, vm, wait_answer,
    RETRIEVE_NOT_AUTHENTICATED, RETRIEVE_NO_PERMISSION, RETRIEVE_PAGED_1, RETRIEVE_PAGED_2,
    RETRIEVE_VPX, WAIT_MODIFY,
};
use crate::inventory::{parse_retrieve_result, InventorySnapshot, MoRef, UpdateSet};

const CONNECTION: &str = "0190c0de-0000-7000-8000-000000000001";

fn collected_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9)
        .single()
        .expect("a valid time")
}

fn system() -> SystemIdentity {
    SystemIdentity {
        name: "vcsim".to_owned(),
        product: "VMware vCenter Server (govmomi simulator)".to_owned(),
        version: "6.5.0".to_owned(),
        build: "5973321".to_owned(),
        instance_uuid: "dbed6e0c-bd88-4ef6-b594-21283e1c677f".to_owned(),
    }
}

fn projection_of(snapshot: &InventorySnapshot) -> Projection {
    project(
        CONNECTION,
        snapshot,
        &system(),
        collected_at(),
        &AlarmCatalog::new(),
    )
}

fn applied(mut snapshot: InventorySnapshot, updates: &[UpdateSet]) -> InventorySnapshot {
    for update_set in updates {
        snapshot.apply_updates(update_set);
    }
    snapshot
}

/// Resources by name (names are unique in the fixture, except datastores, which are
/// qualified by datacenter).
fn by_name(projection: &Projection) -> HashMap<String, &Resource> {
    projection
        .resources
        .iter()
        .map(|resource| (qualified_name(resource), resource))
        .collect()
}

fn qualified_name(resource: &Resource) -> String {
    match resource.resource_type {
        ResourceType::Storage => format!(
            "{}/{}",
            resource.topology.datacenter.as_deref().unwrap_or("?"),
            resource.name
        ),
        _ => resource.name.clone(),
    }
}

fn resource<'p>(projection: &'p Projection, name: &str) -> &'p Resource {
    by_name(projection)
        .get(name)
        .copied()
        .unwrap_or_else(|| panic!("no resource named {name}"))
}

/// A compact, readable rendering: relation targets by (qualified) name instead of id,
/// resources ordered by type and name.
fn summary(projection: &Projection) -> Value {
    let names: HashMap<&str, String> = projection
        .resources
        .iter()
        .map(|resource| (resource.id.as_str(), qualified_name(resource)))
        .collect();
    let mut resources: Vec<&Resource> = projection.resources.iter().collect();
    resources.sort_by_key(|resource| (resource.resource_type, qualified_name(resource)));
    let rendered: Vec<Value> = resources
        .into_iter()
        .map(|resource| {
            let relations: Vec<String> = resource
                .relations
                .iter()
                .map(|relation| {
                    let kind = serde_json::to_value(relation.kind).unwrap_or_default();
                    format!(
                        "{} {}",
                        kind.as_str().unwrap_or_default(),
                        names
                            .get(relation.target.as_str())
                            .map_or("?", String::as_str)
                    )
                })
                .collect();
            json!({
                "type": resource.resource_type,
                "name": qualified_name(resource),
                "status": resource.status,
                "topology": resource.topology,
                "relations": relations,
                "metrics": resource.metrics,
            })
        })
        .collect();
    json!({
        "resources": rendered,
        "topology": projection.topology,
        "issues": projection.issues,
    })
}

/// Checks the invariants every projection must keep, whatever the input.
#[track_caller]
fn check_invariants(projection: &Projection) {
    let ids: Vec<&str> = projection.resources.iter().map(|r| r.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "resources are sorted by id");
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "ids are unique");
    for resource in &projection.resources {
        assert!(
            resource
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{} is URL-safe",
            resource.id
        );
        assert_eq!(resource.platform, PLATFORM);
        assert_eq!(resource.connection_id, CONNECTION);
        assert_eq!(resource.last_seen_at, collected_at());
        assert!(resource.identity.contains_key("nativeId"));
        for relation in &resource.relations {
            assert!(
                unique.contains(relation.target.as_str()),
                "{} has a relation to {}, which is not a resource",
                resource.name,
                relation.target
            );
        }
        if let Some(cpu) = resource.metrics.cpu_percent {
            assert!((0.0..=100.0).contains(&cpu));
        }
    }
}

#[test]
fn projects_the_recorded_inventory() {
    let projection = projection_of(&snapshot_of(RETRIEVE_VPX));
    check_invariants(&projection);
    assert_eq!(
        count_resources(&projection.resources),
        InventoryCounts {
            agents: 6,
            vms: 8,
            storage: 4
        }
    );
    assert_eq!(projection.system, system());
    assert_eq!(projection.collected_at, collected_at());
    check_json(
        summary(&projection),
        json!({
          "issues": [],
          "resources": [
            {
              "metrics": {
                "cpuPercent": 1.46,
                "memoryTotalBytes": 4294430720_u64,
                "memoryUsedBytes": 1472200704_u64,
                "uptimeSeconds": 77229
              },
              "name": "DC0_C0_H0",
              "relations": [],
              "status": "online",
              "topology": {
                "cluster": "DC0_C0",
                "datacenter": "DC0"
              },
              "type": "agent"
            },
            {
              "metrics": {
                "cpuPercent": 1.46,
                "memoryTotalBytes": 4294430720_u64,
                "memoryUsedBytes": 1472200704_u64,
                "uptimeSeconds": 77229
              },
              "name": "DC0_C0_H1",
              "relations": [],
              "status": "online",
              "topology": {
                "cluster": "DC0_C0",
                "datacenter": "DC0"
              },
              "type": "agent"
            },
            {
              "metrics": {
                "cpuPercent": 1.46,
                "memoryTotalBytes": 4294430720_u64,
                "memoryUsedBytes": 1472200704_u64,
                "uptimeSeconds": 77229
              },
              "name": "DC0_H0",
              "relations": [],
              "status": "online",
              "topology": {
                "datacenter": "DC0"
              },
              "type": "agent"
            },
            {
              "metrics": {
                "cpuPercent": 1.46,
                "memoryTotalBytes": 4294430720_u64,
                "memoryUsedBytes": 1472200704_u64,
                "uptimeSeconds": 77229
              },
              "name": "DC1_C0_H0",
              "relations": [],
              "status": "online",
              "topology": {
                "cluster": "DC1_C0",
                "datacenter": "DC1"
              },
              "type": "agent"
            },
            {
              "metrics": {
                "cpuPercent": 1.46,
                "memoryTotalBytes": 4294430720_u64,
                "memoryUsedBytes": 1472200704_u64,
                "uptimeSeconds": 77229
              },
              "name": "DC1_C0_H1",
              "relations": [],
              "status": "online",
              "topology": {
                "cluster": "DC1_C0",
                "datacenter": "DC1"
              },
              "type": "agent"
            },
            {
              "metrics": {
                "cpuPercent": 1.46,
                "memoryTotalBytes": 4294430720_u64,
                "memoryUsedBytes": 1472200704_u64,
                "uptimeSeconds": 77229
              },
              "name": "DC1_H0",
              "relations": [],
              "status": "online",
              "topology": {
                "datacenter": "DC1"
              },
              "type": "agent"
            },
            {
              "metrics": {
                "cpuPercent": 0.0,
                "diskTotalBytes": 0,
                "diskUsedBytes": 0,
                "memoryTotalBytes": 33554432,
                "memoryUsedBytes": 0,
                "uptimeSeconds": 0
              },
              "name": "DC0_C0_RP0_VM0",
              "relations": [
                "runsOn DC0_C0_H1",
                "usesStorage DC0/LocalDS_0"
              ],
              "status": "online",
              "topology": {
                "cluster": "DC0_C0",
                "datacenter": "DC0"
              },
              "type": "vm"
            },
            {
              "metrics": {
                "cpuPercent": 0.0,
                "diskTotalBytes": 0,
                "diskUsedBytes": 0,
                "memoryTotalBytes": 33554432,
                "memoryUsedBytes": 0,
                "uptimeSeconds": 0
              },
              "name": "DC0_C0_RP0_VM1",
              "relations": [
                "runsOn DC0_C0_H0",
                "usesStorage DC0/LocalDS_0"
              ],
              "status": "online",
              "topology": {
                "cluster": "DC0_C0",
                "datacenter": "DC0"
              },
              "type": "vm"
            },
            {
              "metrics": {
                "cpuPercent": 0.0,
                "diskTotalBytes": 0,
                "diskUsedBytes": 0,
                "memoryTotalBytes": 33554432,
                "memoryUsedBytes": 0,
                "uptimeSeconds": 0
              },
              "name": "DC0_H0_VM0",
              "relations": [
                "runsOn DC0_H0",
                "usesStorage DC0/LocalDS_0"
              ],
              "status": "online",
              "topology": {
                "datacenter": "DC0",
                "folder": "Prod"
              },
              "type": "vm"
            },
            {
              "metrics": {
                "cpuPercent": 0.0,
                "diskTotalBytes": 0,
                "diskUsedBytes": 0,
                "memoryTotalBytes": 33554432,
                "memoryUsedBytes": 0,
                "uptimeSeconds": 0
              },
              "name": "DC0_H0_VM1",
              "relations": [
                "runsOn DC0_H0",
                "usesStorage DC0/LocalDS_0"
              ],
              "status": "offline",
              "topology": {
                "datacenter": "DC0"
              },
              "type": "vm"
            },
            {
              "metrics": {
                "cpuPercent": 0.0,
                "diskTotalBytes": 0,
                "diskUsedBytes": 0,
                "memoryTotalBytes": 33554432,
                "memoryUsedBytes": 0,
                "uptimeSeconds": 0
              },
              "name": "DC1_C0_RP0_VM0",
              "relations": [
                "runsOn DC1_C0_H1",
                "usesStorage DC1/LocalDS_0"
              ],
              "status": "online",
              "topology": {
                "cluster": "DC1_C0",
                "datacenter": "DC1"
              },
              "type": "vm"
            },
            {
              "metrics": {
                "cpuPercent": 0.0,
                "diskTotalBytes": 0,
                "diskUsedBytes": 0,
                "memoryTotalBytes": 33554432,
                "memoryUsedBytes": 0,
                "uptimeSeconds": 0
              },
              "name": "DC1_C0_RP0_VM1",
              "relations": [
                "runsOn DC1_C0_H0",
                "usesStorage DC1/LocalDS_0"
              ],
              "status": "online",
              "topology": {
                "cluster": "DC1_C0",
                "datacenter": "DC1"
              },
              "type": "vm"
            },
            {
              "metrics": {
                "cpuPercent": 0.0,
                "diskTotalBytes": 0,
                "diskUsedBytes": 0,
                "memoryTotalBytes": 33554432,
                "memoryUsedBytes": 0,
                "uptimeSeconds": 0
              },
              "name": "DC1_H0_VM0",
              "relations": [
                "runsOn DC1_H0",
                "usesStorage DC1/LocalDS_0"
              ],
              "status": "online",
              "topology": {
                "datacenter": "DC1"
              },
              "type": "vm"
            },
            {
              "metrics": {
                "cpuPercent": 0.0,
                "diskTotalBytes": 0,
                "diskUsedBytes": 0,
                "memoryTotalBytes": 33554432,
                "memoryUsedBytes": 0,
                "uptimeSeconds": 0
              },
              "name": "DC1_H0_VM1",
              "relations": [
                "runsOn DC1_H0",
                "usesStorage DC1/LocalDS_0"
              ],
              "status": "online",
              "topology": {
                "datacenter": "DC1"
              },
              "type": "vm"
            },
            {
              "metrics": {
                "diskTotalBytes": 270553174016_u64,
                "diskUsedBytes": 22377156608_u64
              },
              "name": "DC0/LocalDS_0",
              "relations": [
                "mountedOn DC0_C0_H1"
              ],
              "status": "online",
              "topology": {
                "datacenter": "DC0"
              },
              "type": "storage"
            },
            {
              "metrics": {
                "diskTotalBytes": 270553174016_u64,
                "diskUsedBytes": 22372966400_u64
              },
              "name": "DC0/LocalDS_1",
              "relations": [
                "mountedOn DC0_C0_H1"
              ],
              "status": "online",
              "topology": {
                "datacenter": "DC0"
              },
              "type": "storage"
            },
            {
              "metrics": {
                "diskTotalBytes": 270553174016_u64,
                "diskUsedBytes": 22377164800_u64
              },
              "name": "DC1/LocalDS_0",
              "relations": [
                "mountedOn DC1_C0_H1"
              ],
              "status": "online",
              "topology": {
                "datacenter": "DC1"
              },
              "type": "storage"
            },
            {
              "metrics": {
                "diskTotalBytes": 270553174016_u64,
                "diskUsedBytes": 22372974592_u64
              },
              "name": "DC1/LocalDS_1",
              "relations": [
                "mountedOn DC1_C0_H1"
              ],
              "status": "online",
              "topology": {
                "datacenter": "DC1"
              },
              "type": "storage"
            }
          ],
          "topology": {
            "clusters": 2,
            "datacenters": 2,
            "folders": 1,
            "resourcePools": 1
          }
        }),
    );
}

#[test]
fn one_vm_in_full() {
    let projection = projection_of(&snapshot_of(RETRIEVE_VPX));
    let vm = resource(&projection, "DC0_C0_RP0_VM0");
    check_json(
        serde_json::to_value(vm).unwrap_or_default(),
        json!({
          "connectionId": "0190c0de-0000-7000-8000-000000000001",
          "details": {
            "connectionState": "connected",
            "cpuCount": 1,
            "guestId": "otherGuest",
            "guestOs": "otherGuest",
            "ipAddresses": [],
            "memoryMb": 32,
            "overallStatus": "green",
            "powerState": "poweredOn",
            "snapshots": [],
            "template": false,
            "toolsRunningStatus": "guestToolsNotRunning",
            "toolsStatus": "toolsNotInstalled"
          },
          "id": "0190c0de-0000-7000-8000-000000000001-vm-b1d2085980b03661d239",
          "identity": {
            "biosUuid": "cd0681bf-2f18-5c00-9b9b-8197c0095348",
            "instanceUuid": "bfff331f-7f07-572d-951e-edd3701dc061",
            "nativeId": "vm-105",
            "uuid": "bfff331f-7f07-572d-951e-edd3701dc061"
          },
          "lastSeenAt": "2024-05-06T07:08:09Z",
          "metrics": {
            "cpuPercent": 0.0,
            "diskTotalBytes": 0,
            "diskUsedBytes": 0,
            "memoryTotalBytes": 33554432,
            "memoryUsedBytes": 0,
            "uptimeSeconds": 0
          },
          "name": "DC0_C0_RP0_VM0",
          "platform": "vmware-vsphere",
          "relations": [
            {
              "kind": "runsOn",
              "target": "0190c0de-0000-7000-8000-000000000001-agent-096ca7e37781e6c219de"
            },
            {
              "kind": "usesStorage",
              "target": "0190c0de-0000-7000-8000-000000000001-storage-3b191343f04f1ebbd4aa"
            }
          ],
          "status": "online",
          "topology": {
            "cluster": "DC0_C0",
            "datacenter": "DC0"
          },
          "type": "vm"
        }),
    );
}

#[test]
fn one_host_and_one_datastore_in_full() {
    let projection = projection_of(&snapshot_of(RETRIEVE_VPX));
    check_json(
        serde_json::to_value(resource(&projection, "DC0_C0_H0")).unwrap_or_default(),
        json!({
          "connectionId": "0190c0de-0000-7000-8000-000000000001",
          "details": {
            "build": "5969303",
            "connectionState": "connected",
            "cpuCores": 2,
            "cpuMhz": 2294,
            "maintenance": false,
            "model": "VMware Virtual Platform",
            "overallStatus": "green",
            "powerState": "poweredOn",
            "product": "VMware ESXi 6.5.0 build-5969303",
            "vendor": "VMware, Inc.",
            "version": "6.5.0"
          },
          "id": "0190c0de-0000-7000-8000-000000000001-agent-590b0c2a111083bcfea8",
          "identity": {
            "nativeId": "host-34",
            "platformType": "vmware-vsphere",
            "uuid": "c2ac5c27-2c72-5d75-9472-fd619e1af669"
          },
          "lastSeenAt": "2024-05-06T07:08:09Z",
          "metrics": {
            "cpuPercent": 1.46,
            "memoryTotalBytes": 4294430720_u64,
            "memoryUsedBytes": 1472200704_u64,
            "uptimeSeconds": 77229
          },
          "name": "DC0_C0_H0",
          "platform": "vmware-vsphere",
          "relations": [],
          "status": "online",
          "topology": {
            "cluster": "DC0_C0",
            "datacenter": "DC0"
          },
          "type": "agent"
        }),
    );
    check_json(
        serde_json::to_value(resource(&projection, "DC0/LocalDS_0")).unwrap_or_default(),
        json!({
          "connectionId": "0190c0de-0000-7000-8000-000000000001",
          "details": {
            "accessible": true,
            "capacityBytes": 270553174016_u64,
            "freeBytes": 248176017408_u64,
            "kind": "OTHER",
            "maintenanceMode": "normal",
            "overallStatus": "green",
            "url": "/tmp/pylon-vcsim-4xwZpd/govcsim-DC0-LocalDS_0-3497461644"
          },
          "id": "0190c0de-0000-7000-8000-000000000001-storage-3b191343f04f1ebbd4aa",
          "identity": {
            "nativeId": "/tmp/pylon-vcsim-4xwZpd/govcsim-DC0-LocalDS_0-3497461644@folder-5",
            "url": "/tmp/pylon-vcsim-4xwZpd/govcsim-DC0-LocalDS_0-3497461644"
          },
          "lastSeenAt": "2024-05-06T07:08:09Z",
          "metrics": {
            "diskTotalBytes": 270553174016_u64,
            "diskUsedBytes": 22377156608_u64
          },
          "name": "LocalDS_0",
          "platform": "vmware-vsphere",
          "relations": [
            {
              "kind": "mountedOn",
              "target": "0190c0de-0000-7000-8000-000000000001-agent-096ca7e37781e6c219de"
            }
          ],
          "status": "online",
          "topology": {
            "datacenter": "DC0"
          },
          "type": "storage"
        }),
    );
}

#[test]
fn vms_run_on_the_host_runtime_host_names() {
    let snapshot = snapshot_of(RETRIEVE_VPX);
    let projection = projection_of(&snapshot);
    let ids_by_native: HashMap<(&str, String), &str> = projection
        .resources
        .iter()
        .map(|r| {
            let native = r
                .identity
                .get("nativeId")
                .and_then(Value::as_str)
                .unwrap_or_default();
            ((r.resource_type.as_str(), native.to_owned()), r.id.as_str())
        })
        .collect();
    for (obj, object) in snapshot.objects_of(paths::vm::KIND) {
        let host = object
            .reference(paths::vm::HOST)
            .ok()
            .flatten()
            .expect("every simulator VM has a host");
        let vm = ids_by_native[&("vm", obj.value.clone())];
        let resource = projection
            .resources
            .iter()
            .find(|r| r.id == vm)
            .expect("the VM is projected");
        let runs_on: Vec<&str> = resource
            .relations
            .iter()
            .filter(|relation| relation.kind == RelationKind::RunsOn)
            .map(|relation| relation.target.as_str())
            .collect();
        assert_eq!(runs_on, [ids_by_native[&("agent", host.value.clone())]]);
    }
}

#[test]
fn ids_are_stable_across_polls_renames_and_pages() {
    let snapshot = snapshot_of(RETRIEVE_VPX);
    let ids = |projection: &Projection| -> BTreeSet<String> {
        projection.resources.iter().map(|r| r.id.clone()).collect()
    };
    let first = projection_of(&snapshot);
    // A re-poll (a fresh parse of the same answer) and a paged read give the same ids.
    assert_eq!(first, projection_of(&snapshot_of(RETRIEVE_VPX)));
    let paged = InventorySnapshot::from_results([
        parse_retrieve_result(RETRIEVE_PAGED_1).expect("page 1"),
        parse_retrieve_result(RETRIEVE_PAGED_2).expect("page 2"),
    ]);
    assert_eq!(first, projection_of(&paged));

    // The recorded rename and power-off, and renames of a host and a datastore.
    let datastore = snapshot
        .objects_of(paths::datastore::KIND)
        .next()
        .map(|(obj, _)| obj.clone())
        .expect("a datastore");
    let changed = applied(
        snapshot.clone(),
        &[
            update_set_of(WAIT_MODIFY),
            modify(&host("host-34"), paths::NAME, "xsd:string", "esx-renamed"),
            modify(&datastore, paths::NAME, "xsd:string", "ds-renamed"),
        ],
    );
    let after = projection_of(&changed);
    check_invariants(&after);
    assert_eq!(ids(&after), ids(&first));
    let renamed = resource(&after, "DC0_renamed_VM");
    assert_eq!(renamed.id, resource(&first, "DC1_H0_VM0").id);
    assert_eq!(
        resource(&after, "esx-renamed").id,
        resource(&first, "DC0_C0_H0").id
    );
    assert_eq!(
        resource(&after, "DC0/ds-renamed").id,
        resource(&first, "DC0/LocalDS_0").id
    );
    let powered_off = resource(&after, "DC0_C0_RP0_VM0");
    assert_eq!(powered_off.status, ResourceStatus::Offline);
    assert_eq!(powered_off.details["powerState"], "poweredOff");
}

#[test]
fn ids_are_built_from_the_stable_key() {
    let projection = projection_of(&snapshot_of(RETRIEVE_VPX));
    let vm = resource(&projection, "DC0_C0_RP0_VM0");
    assert_eq!(
        vm.id,
        resource_id(
            CONNECTION,
            ResourceType::Vm,
            "instanceUuid:bfff331f-7f07-572d-951e-edd3701dc061"
        )
    );
    let expected_hash = &hex::encode(Sha256::digest(
        b"instanceUuid:bfff331f-7f07-572d-951e-edd3701dc061",
    ))[..20];
    assert_eq!(vm.id, format!("{CONNECTION}-vm-{expected_hash}"));
    let host = resource(&projection, "DC0_C0_H0");
    assert_eq!(
        host.id,
        resource_id(
            CONNECTION,
            ResourceType::Agent,
            "hardwareUuid:c2ac5c27-2c72-5d75-9472-fd619e1af669"
        )
    );
    let datastore = resource(&projection, "DC0/LocalDS_0");
    let url = datastore.identity["url"].as_str().expect("a URL");
    assert_eq!(
        datastore.id,
        resource_id(CONNECTION, ResourceType::Storage, &format!("url:{url}"))
    );
}

#[test]
fn ids_of_two_connections_are_disjoint() {
    let snapshot = snapshot_of(RETRIEVE_VPX);
    let ids = |connection: &str| -> HashSet<String> {
        project(
            connection,
            &snapshot,
            &system(),
            collected_at(),
            &AlarmCatalog::new(),
        )
        .resources
        .into_iter()
        .map(|r| r.id)
        .collect()
    };
    let first = ids("0190c0de-0000-7000-8000-00000000000a");
    let second = ids("0190c0de-0000-7000-8000-00000000000b");
    assert_eq!(first.len(), 18);
    assert!(first.is_disjoint(&second));
}

#[test]
fn a_shared_stable_key_falls_back_to_the_managed_object_id() {
    let snapshot = snapshot_of(RETRIEVE_VPX);
    let before = projection_of(&snapshot);
    // host-42 gets host-34's hardware UUID (cloned hardware); vm-108 gets vm-105's instance
    // UUID and BIOS UUID.
    let cloned = applied(
        snapshot,
        &[
            modify(
                &host("host-42"),
                paths::host::HARDWARE_UUID,
                "xsd:string",
                "C2AC5C27-2C72-5D75-9472-FD619E1AF669",
            ),
            modify(
                &vm("vm-108"),
                paths::vm::INSTANCE_UUID,
                "xsd:string",
                "bfff331f-7f07-572d-951e-edd3701dc061",
            ),
        ],
    );
    let after = projection_of(&cloned);
    check_invariants(&after);
    // The first in natural id order keeps its id; the clone falls back to its moid.
    assert_eq!(
        resource(&after, "DC0_C0_H0").id,
        resource(&before, "DC0_C0_H0").id
    );
    assert_eq!(
        resource(&after, "DC0_C0_H1").id,
        resource_id(CONNECTION, ResourceType::Agent, "moid:host-42")
    );
    assert_eq!(
        resource(&after, "DC0_C0_RP0_VM0").id,
        resource(&before, "DC0_C0_RP0_VM0").id
    );
    assert_eq!(
        resource(&after, "DC0_C0_RP0_VM1").id,
        resource_id(CONNECTION, ResourceType::Vm, "moid:vm-108")
    );
    // Sharing is not a poll problem.
    assert!(after.issues.is_empty());
}

#[test]
fn keys_fall_back_in_order() {
    let snapshot = snapshot_of(RETRIEVE_VPX);
    let without_instance_uuid = wait_answer(
        "<objectSet><kind>modify</kind><obj type=\"VirtualMachine\">vm-105</obj>\
         <changeSet><name>config.instanceUuid</name><op>assign</op></changeSet></objectSet>\
         <objectSet><kind>modify</kind><obj type=\"VirtualMachine\">vm-108</obj>\
         <changeSet><name>config.instanceUuid</name><op>assign</op></changeSet>\
         <changeSet><name>config.uuid</name><op>assign</op><val xsi:type=\"xsd:string\"> </val></changeSet></objectSet>\
         <objectSet><kind>modify</kind><obj type=\"HostSystem\">host-34</obj>\
         <changeSet><name>summary.hardware.uuid</name><op>remove</op></changeSet></objectSet>",
    );
    let projection = projection_of(&applied(
        snapshot,
        &[update_set_of(without_instance_uuid.as_bytes())],
    ));
    check_invariants(&projection);
    let vm = resource(&projection, "DC0_C0_RP0_VM0");
    assert_eq!(
        vm.id,
        resource_id(
            CONNECTION,
            ResourceType::Vm,
            "uuid:cd0681bf-2f18-5c00-9b9b-8197c0095348"
        )
    );
    assert_eq!(vm.identity["uuid"], "cd0681bf-2f18-5c00-9b9b-8197c0095348");
    assert!(!vm.identity.contains_key("instanceUuid"));
    assert_eq!(
        resource(&projection, "DC0_C0_RP0_VM1").id,
        resource_id(CONNECTION, ResourceType::Vm, "moid:vm-108")
    );
    assert_eq!(
        resource(&projection, "DC0_C0_H0").id,
        resource_id(CONNECTION, ResourceType::Agent, "moid:host-34")
    );
}

#[test]
fn topology_follows_parent_chains() {
    let snapshot = snapshot_of(RETRIEVE_VPX);
    let pool = MoRef::new("ResourcePool", "resgroup-124");
    assert_eq!(snapshot.name_of(&pool), Some("Pool1"));
    let projection = projection_of(&applied(
        snapshot,
        &[modify(
            &vm("vm-105"),
            paths::vm::RESOURCE_POOL,
            "ManagedObjectReference",
            "ResourcePool:resgroup-124",
        )],
    ));
    let topology = |name: &str| {
        serde_json::to_value(&resource(&projection, name).topology).unwrap_or_default()
    };
    // A VM in a user folder on a standalone host, in the host's hidden root pool.
    check_json(
        topology("DC0_H0_VM0"),
        json!({ "datacenter": "DC0", "folder": "Prod" }),
    );
    // A VM in a cluster, moved into a user pool.
    check_json(
        topology("DC0_C0_RP0_VM0"),
        json!({ "datacenter": "DC0", "cluster": "DC0_C0", "resourcePool": "Pool1" }),
    );
    check_json(
        topology("DC1_C0_RP0_VM1"),
        json!({ "datacenter": "DC1", "cluster": "DC1_C0" }),
    );
    check_json(
        topology("DC1_C0_H1"),
        json!({ "datacenter": "DC1", "cluster": "DC1_C0" }),
    );
    check_json(topology("DC1_H0"), json!({ "datacenter": "DC1" }));
    check_json(topology("DC1/LocalDS_1"), json!({ "datacenter": "DC1" }));
    assert_eq!(
        projection.topology,
        TopologyCounts {
            datacenters: 2,
            clusters: 2,
            folders: 1,
            resource_pools: 1,
        }
    );
}

#[test]
fn templates_are_offline_vms() {
    let projection = projection_of(&snapshot_of(RETRIEVE_VPX));
    let template = resource(&projection, "DC0_H0_VM1");
    assert_eq!(template.resource_type, ResourceType::Vm);
    assert_eq!(template.status, ResourceStatus::Offline);
    assert_eq!(template.details["template"], true);
    assert_eq!(template.topology.resource_pool, None);
    let vm = resource(&projection, "DC0_H0_VM0");
    assert_eq!(vm.details["template"], false);
}

#[test]
fn a_missing_privilege_is_one_permission_issue() {
    let projection = projection_of(&snapshot_of(RETRIEVE_NO_PERMISSION));
    check_invariants(&projection);
    assert_eq!(projection.resources.len(), 18);
    let vm = resource(&projection, "DC0_H0_VM0");
    assert_eq!(vm.metrics.cpu_percent, None);
    assert!(vm.metrics.memory_total_bytes.is_some());
    check_json(
        json!(projection.issues),
        json!([{
            "stage": "inventory",
            "category": "permission",
            "message": "cannot read summary.quickStats.overallCpuUsage of VM \"DC0_H0_VM0\" (vm-99): NoPermission, the account lacks the privilege System.Read",
            "occurrences": 1,
        }]),
    );
    assert_eq!(projection.issues[0].category, FailureCategory::Permission);
}

#[test]
fn an_unauthenticated_read_is_one_auth_issue() {
    let snapshot = snapshot_of(RETRIEVE_NOT_AUTHENTICATED);
    assert!(snapshot.has_session_fault());
    let projection = projection_of(&snapshot);
    check_invariants(&projection);
    let vm = &projection.resources[0];
    assert_eq!(vm.name, "vm-111");
    assert_eq!(vm.status, ResourceStatus::Unknown);
    assert_eq!(
        vm.id,
        resource_id(CONNECTION, ResourceType::Vm, "moid:vm-111")
    );
    check_json(
        json!(projection.issues),
        json!([{
            "stage": "inventory",
            "category": "auth",
            "message": "cannot read config.guestFullName and 23 other properties of VM vm-111: the session is not authenticated (NotAuthenticated): it was logged out or expired",
            "occurrences": 24,
        }]),
    );
}

#[test]
fn a_value_of_the_wrong_type_is_missing_and_reported() {
    let snapshot = applied(
        snapshot_of(RETRIEVE_VPX),
        &[
            modify(&vm("vm-105"), paths::vm::CPU_USAGE_MHZ, "xsd:string", "abc"),
            modify(
                &vm("vm-108"),
                paths::vm::CPU_USAGE_MHZ,
                "xsd:string",
                "lots",
            ),
            modify(&vm("vm-105"), paths::vm::HOST, "xsd:string", "host-42"),
            modify(
                &host("host-34"),
                paths::host::IN_MAINTENANCE,
                "xsd:int",
                "7",
            ),
        ],
    );
    let projection = projection_of(&snapshot);
    check_invariants(&projection);
    let vm = resource(&projection, "DC0_C0_RP0_VM0");
    assert_eq!(vm.metrics.cpu_percent, None);
    assert!(vm.relations.iter().all(|r| r.kind != RelationKind::RunsOn));
    // An unreadable maintenance flag does not make a connected, powered-on host unknown.
    assert_eq!(
        resource(&projection, "DC0_C0_H0").status,
        ResourceStatus::Online
    );
    assert_eq!(
        resource(&projection, "DC0_C0_H0")
            .details
            .get("maintenance"),
        None
    );
    check_json(
        json!(projection.issues),
        json!([
          {
            "category": "protocol",
            "message": "runtime.inMaintenanceMode of host \"DC0_C0_H0\" (host-34) is int \"7\", not a boolean; it was treated as missing",
            "occurrences": 1,
            "stage": "inventory"
          },
          {
            "category": "protocol",
            "message": "runtime.host of VM \"DC0_C0_RP0_VM0\" (vm-105) is string \"host-42\", not a managed object reference; it was treated as missing",
            "occurrences": 1,
            "stage": "inventory"
          },
          {
            "category": "protocol",
            "message": "summary.quickStats.overallCpuUsage of VM \"DC0_C0_RP0_VM0\" (vm-105) and 1 other VM is string \"abc\", not an integer; it was treated as missing",
            "occurrences": 2,
            "stage": "inventory"
          }
        ]),
    );
}

#[test]
fn dangling_relations_are_left_out_and_reported() {
    // host-42 leaves: VMs on it and datastores mounted on it point at nothing.
    let leave = wait_answer(
        "<objectSet><kind>leave</kind><obj type=\"HostSystem\">host-42</obj></objectSet>",
    );
    let projection = projection_of(&applied(
        snapshot_of(RETRIEVE_VPX),
        &[update_set_of(leave.as_bytes())],
    ));
    check_invariants(&projection);
    assert_eq!(projection.resources.len(), 17);
    check_json(
        json!(projection.issues),
        json!([
          {
            "category": "protocol",
            "message": "left out 2 mountedOn relations from datastore \"LocalDS_0\" (/tmp/pylon-vcsim-4xwZpd/govcsim-DC0-LocalDS_0-3497461644@folder-5) and 1 other datastore to host host-42: the target is not in the inventory (not visible to this account, or removed during the read)",
            "occurrences": 2,
            "stage": "inventory"
          },
          {
            "category": "protocol",
            "message": "left out 1 runsOn relation from VM \"DC0_C0_RP0_VM0\" (vm-105) to host host-42: the target is not in the inventory (not visible to this account, or removed during the read)",
            "occurrences": 1,
            "stage": "inventory"
          }
        ]),
    );
}

#[test]
fn status_rules() {
    use ResourceStatus::{Degraded, Offline, Online, Unknown};
    let host_cases = [
        (
            (
                Some("connected"),
                Some("poweredOn"),
                Some(false),
                Some("green"),
            ),
            Online,
        ),
        ((Some("connected"), Some("poweredOn"), None, None), Online),
        (
            (
                Some("connected"),
                Some("poweredOn"),
                Some(true),
                Some("green"),
            ),
            Degraded,
        ),
        (
            (
                Some("connected"),
                Some("poweredOn"),
                Some(false),
                Some("red"),
            ),
            Degraded,
        ),
        (
            (
                Some("connected"),
                Some("poweredOn"),
                Some(false),
                Some("yellow"),
            ),
            Online,
        ),
        (
            (Some("disconnected"), Some("poweredOn"), None, Some("red")),
            Offline,
        ),
        ((Some("notResponding"), None, None, None), Offline),
        ((Some("connected"), Some("poweredOff"), None, None), Offline),
        ((Some("connected"), Some("standBy"), None, None), Offline),
        (
            (Some("connected"), Some("unknown"), None, Some("red")),
            Unknown,
        ),
        ((None, None, None, None), Unknown),
    ];
    for ((connection, power, maintenance, overall), expected) in host_cases {
        assert_eq!(
            host_status(connection, power, maintenance, overall),
            expected,
            "host {connection:?} {power:?} {maintenance:?} {overall:?}"
        );
    }
    let vm_cases = [
        ((None, Some("connected"), Some("poweredOn"), None), Online),
        (
            (
                Some(false),
                Some("connected"),
                Some("poweredOn"),
                Some("red"),
            ),
            Degraded,
        ),
        ((None, Some("connected"), Some("poweredOff"), None), Offline),
        ((None, Some("connected"), Some("suspended"), None), Offline),
        ((None, None, Some("poweredOn"), None), Online),
        ((None, Some("orphaned"), Some("poweredOn"), None), Unknown),
        (
            (None, Some("inaccessible"), Some("poweredOff"), None),
            Unknown,
        ),
        (
            (Some(true), Some("connected"), Some("poweredOff"), None),
            Offline,
        ),
        ((Some(true), None, None, None), Offline),
        ((None, Some("connected"), None, None), Unknown),
    ];
    for ((template, connection, power, overall), expected) in vm_cases {
        assert_eq!(
            vm_status(template, connection, power, overall),
            expected,
            "vm {template:?} {connection:?} {power:?} {overall:?}"
        );
    }
    let datastore_cases = [
        ((Some(true), Some("normal"), Some("green")), Online),
        ((Some(true), None, Some("red")), Degraded),
        ((Some(true), Some("inMaintenance"), None), Degraded),
        ((Some(true), Some("enteringMaintenance"), None), Degraded),
        ((Some(false), Some("normal"), Some("red")), Offline),
        ((None, None, None), Unknown),
    ];
    for ((accessible, maintenance, overall), expected) in datastore_cases {
        assert_eq!(
            datastore_status(accessible, maintenance, overall),
            expected,
            "datastore {accessible:?} {maintenance:?} {overall:?}"
        );
    }
}

#[test]
fn metric_arithmetic_is_safe() {
    assert_eq!(percent(Some(50), Some(200)), Some(25.0));
    assert_eq!(percent(Some(1), Some(3)), Some(33.33));
    assert_eq!(percent(Some(500), Some(200)), Some(100.0));
    assert_eq!(percent(Some(-1), Some(200)), None);
    assert_eq!(percent(Some(1), Some(0)), None);
    assert_eq!(percent(None, Some(1)), None);
    assert_eq!(mebibytes(Some(2)), Some(2 * 1024 * 1024));
    assert_eq!(mebibytes(Some(-2)), None);
    assert_eq!(mebibytes(Some(i64::MAX)), None);
    assert_eq!(non_negative(Some(-5)), None);

    let snapshot = applied(
        snapshot_of(RETRIEVE_VPX),
        &[
            modify(&vm("vm-105"), paths::vm::CPU_USAGE_MHZ, "xsd:int", "1147"),
            modify(&vm("vm-105"), paths::vm::NUM_CPU, "xsd:int", "2"),
            modify(
                &vm("vm-105"),
                paths::vm::STORAGE_COMMITTED,
                "xsd:long",
                "1000",
            ),
            modify(
                &vm("vm-105"),
                paths::vm::STORAGE_UNCOMMITTED,
                "xsd:long",
                "24",
            ),
            modify(
                &vm("vm-105"),
                paths::vm::GUEST_MEMORY_USAGE_MB,
                "xsd:int",
                "16",
            ),
            modify(
                &host("host-42"),
                paths::host::CPU_USAGE_MHZ,
                "xsd:int",
                "99999999",
            ),
        ],
    );
    let projection = projection_of(&snapshot);
    // vm-105 runs on host-42 (2294 MHz per core): 1147 / (2 × 2294) = 25 %.
    let vm = resource(&projection, "DC0_C0_RP0_VM0");
    check_json(
        json!(vm.metrics),
        json!({
            "cpuPercent": 25.0,
            "memoryUsedBytes": 16 * 1024 * 1024,
            "memoryTotalBytes": 32 * 1024 * 1024,
            "diskUsedBytes": 1000,
            "diskTotalBytes": 1024,
            "uptimeSeconds": 0,
        }),
    );
    assert_eq!(
        resource(&projection, "DC0_C0_H1").metrics.cpu_percent,
        Some(100.0)
    );
}

#[test]
fn red_and_yellow_overall_status_raise_health_alerts() {
    let snapshot = snapshot_of(RETRIEVE_VPX);
    // The recorded simulator is all green: nothing is raised.
    assert_eq!(projection_of(&snapshot).alerts, vec![]);

    let datastore = snapshot
        .objects_of(paths::datastore::KIND)
        .next()
        .map(|(obj, _)| obj.clone())
        .expect("a datastore");
    let status = |obj: &MoRef, colour: &str| {
        modify(obj, paths::OVERALL_STATUS, "ManagedEntityStatus", colour)
    };
    let projection = projection_of(&applied(
        snapshot,
        &[
            status(&vm("vm-105"), "red"),
            status(&host("host-34"), "yellow"),
            status(&datastore, "red"),
            // Gray (vCenter cannot tell) raises nothing.
            status(&vm("vm-108"), "gray"),
        ],
    ));
    let alerts: Vec<Value> = projection
        .alerts
        .iter()
        .map(|alert| {
            let on = projection
                .resources
                .iter()
                .find(|r| r.id == alert.resource_id)
                .expect("an alert names a projected resource");
            json!({
                "on": qualified_name(on),
                "key": alert.key,
                "source": alert.source,
                "severity": alert.severity,
                "name": alert.name,
                "since": alert.since,
            })
        })
        .collect();
    let mut expected = vec![
        json!({ "on": resource_name(&projection, &vm("vm-105")), "key": "health",
                "source": "health", "severity": "critical",
                "name": "Virtual machine health is red", "since": null }),
        json!({ "on": resource_name(&projection, &host("host-34")), "key": "health",
                "source": "health", "severity": "warning",
                "name": "Host health is yellow", "since": null }),
        json!({ "on": resource_name(&projection, &datastore), "key": "health",
                "source": "health", "severity": "critical",
                "name": "Datastore health is red", "since": null }),
    ];
    // Alerts come in resource id order.
    let order = |v: &Value| {
        let name = v["on"].as_str().unwrap_or_default().to_owned();
        by_name(&projection).get(&name).map(|r| r.id.clone())
    };
    expected.sort_by_key(order);
    check_json(Value::Array(alerts), Value::Array(expected));
    assert!(projection.alerts[0].message.contains("overall status"));
}

/// The qualified name of the resource projected from `obj`.
fn resource_name(projection: &Projection, obj: &MoRef) -> String {
    projection
        .resources
        .iter()
        .find(|r| r.identity.get("nativeId").and_then(Value::as_str) == Some(obj.value.as_str()))
        .map(qualified_name)
        .expect("a projected resource")
}

#[test]
fn triggered_alarms_raise_named_alarm_alerts() {
    let snapshot = snapshot_of(RETRIEVE_VPX);
    let state = |alarm: &str, status: &str, acknowledged: bool| {
        format!(
            "<AlarmState><key>{alarm}.vm-105</key>\
             <entity type=\"VirtualMachine\">vm-105</entity>\
             <alarm type=\"Alarm\">{alarm}</alarm><overallStatus>{status}</overallStatus>\
             <time>2024-05-06T07:00:00.5Z</time><acknowledged>{acknowledged}</acknowledged>\
             <eventKey>42</eventKey></AlarmState>"
        )
    };
    let states = [
        state("alarm-1", "red", false),
        state("alarm-2", "yellow", true),
        // Green (cleared but still listed) raises nothing.
        state("alarm-3", "green", false),
    ]
    .concat();
    let changed = applied(
        snapshot,
        &[modify(
            &vm("vm-105"),
            paths::TRIGGERED_ALARM_STATE,
            "ArrayOfAlarmState",
            &states,
        )],
    );
    let catalog = AlarmCatalog::from([(
        "alarm-1".to_owned(),
        Some(AlarmDefinition {
            name: "Virtual machine CPU usage".to_owned(),
            description: "Default alarm to monitor virtual machine CPU usage".to_owned(),
        }),
    )]);
    let projection = project(CONNECTION, &changed, &system(), collected_at(), &catalog);
    let on = projection
        .resources
        .iter()
        .find(|r| r.identity.get("nativeId").and_then(Value::as_str) == Some("vm-105"))
        .expect("vm-105 is projected")
        .id
        .clone();
    let alerts: Vec<Value> = projection
        .alerts
        .iter()
        .map(|a| {
            json!({ "on": a.resource_id == on, "key": a.key, "source": a.source,
                    "severity": a.severity, "name": a.name, "message": a.message,
                    "since": a.since, "acknowledged": a.acknowledged })
        })
        .collect();
    check_json(
        Value::Array(alerts),
        json!([
            { "on": true, "key": "alarm:alarm-1", "source": "alarm", "severity": "critical",
              "name": "Virtual machine CPU usage",
              "message": "Default alarm to monitor virtual machine CPU usage (red on `DC0_C0_RP0_VM0`)",
              "since": "2024-05-06T07:00:00.500Z", "acknowledged": false },
            { "on": true, "key": "alarm:alarm-2", "source": "alarm", "severity": "warning",
              "name": "Alarm alarm-2",
              "message": "Alarm `Alarm alarm-2` is yellow on `DC0_C0_RP0_VM0`",
              "since": "2024-05-06T07:00:00.500Z", "acknowledged": true },
        ]),
    );
    // The definition that could not be resolved is one degraded issue naming it.
    let issue = projection
        .issues
        .iter()
        .find(|i| i.stage == "alarms")
        .expect("an alarms issue");
    assert_eq!(issue.category, FailureCategory::Permission);
    assert!(issue.message.contains("`alarm-2`"), "{}", issue.message);
    assert_eq!(issue.occurrences, 1);
}
