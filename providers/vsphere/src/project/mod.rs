//! The canonical projection (GUIDE section 4): an [`InventorySnapshot`] into `agent` (ESXi
//! host), `vm` and `storage` (datastore) resources with ids, topology, relations, latest
//! metrics, details and status, plus topology counts and the issues of a partial read.
//!
//! Alert conditions come from each projected object's `overallStatus` (see `alerts.rs`).
//!
//! [`project`] is pure: the same snapshot always gives the same projection, resources sorted
//! by id, so the host can diff polls and tests can compare whole projections.
//!
//! # Ids
//!
//! `{connection_id}-{type}-{h}` where `type` is `agent`, `vm` or `storage` and `h` is the
//! first 20 hex digits (80 bits) of the SHA-256 of the object's stable key:
//!
//! | type | key, in order of preference |
//! |---|---|
//! | vm | `instanceUuid:<config.instanceUuid>`, `uuid:<config.uuid>`, `moid:<id>` |
//! | agent | `hardwareUuid:<summary.hardware.uuid>`, `moid:<id>` |
//! | storage | `url:<summary.url>`, `moid:<id>` |
//!
//! UUIDs are lower-cased. The key names its kind so a UUID and a managed object id can
//! never produce the same hash. A rename or a re-poll changes none of these, so the id is
//! stable; connection ids are unique, so ids are unique across connections. When two objects
//! of one type share a key (cloned hardware UUIDs happen), the first in natural id order
//! (`vm-9` before `vm-10`: creation order in vCenter) keeps it and later ones use
//! `moid:<id>`, so an existing resource keeps its id when a clone appears.
//!
//! # Topology
//!
//! Built locally from `parent` chains, by name. `datacenter` is the nearest datacenter
//! ancestor (for a VM without a parent chain, such as a vApp member, its host's). `cluster`
//! is the host's parent cluster (a VM's through `runtime.host`, else through its resource
//! pool's owner). `folder` is the nearest *user* folder: the folder vCenter keeps at the root
//! and the four hidden ones every datacenter has (`vm`, `host`, `datastore`, `network`) are
//! skipped, because the vSphere Client does not show them and naming `vm` on every VM says
//! nothing. `resourcePool` likewise skips the hidden root pool (`Resources`) of each cluster
//! or standalone host; a vApp counts as a pool. Absent parts are omitted.
//!
//! [`TopologyCounts`] follow the same rule: datacenters, clusters
//! (`ClusterComputeResource`), user folders, and resource pools other than root pools (vApps
//! are not counted).
//!
//! # Issues
//!
//! Properties vCenter could not read (snapshot issues), relations whose target is not a
//! projected resource (dropped, never emitted) and values of an unexpected type (treated as
//! missing) become [`PollIssue`]s at stage `inventory`, grouped by what went wrong (fault,
//! object type and privilege; relation and target type; property and expected type). So
//! 5,000 VMs lacking `System.Read` for one property are one issue with `occurrences: 5000`
//! whose message names the first VM and property and says how many more there are.
//! `NoPermission` is `permission`; `NotAuthenticated` (a subtype of `NoPermission`, but it
//! means the session ended, so granting a privilege would not help) is `auth`; everything
//! else is `protocol`.

// Nothing outside this module calls it until the session layer polls with it (it is the
// next step of the "canonical projection floor" issue); the tests exercise all of it, so
// dead code is only tolerated outside test builds.
#![cfg_attr(
    not(test),
    allow(
        dead_code,
        unused_imports,
        reason = "wired into polling by the session layer next"
    )
)]

pub(crate) mod alerts;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use pylon_core::model::{
    LatestMetrics, PollIssue, Projection, Relation, RelationKind, Resource, ResourceStatus,
    ResourceType, Topology, TopologyCounts,
};
use pylon_core::{FailureCategory, SystemIdentity};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::inventory::paths::{self, datastore, host, resource_pool, vm, TRIGGERED_ALARM_STATE};
use crate::inventory::{
    describe_kind, InventorySnapshot, ManagedObject, MoRef, SnapshotInfo, SnapshotIssue,
    SnapshotNode, ValueMismatch, NOT_AUTHENTICATED,
};
pub(crate) use alerts::{AlarmCatalog, AlarmDefinition};

/// The platform id of every resource this provider projects.
pub(crate) const PLATFORM: &str = "vmware-vsphere";
/// The `stage` of every issue found while projecting the inventory.
const STAGE: &str = "inventory";
/// How many hex digits of the key's SHA-256 an id keeps (80 bits).
const ID_HASH_HEX_DIGITS: usize = 20;
/// Parent chains are walked at most this far, so a cycle in a malformed answer ends.
const MAX_PARENT_DEPTH: usize = 64;
const BYTES_PER_MEBIBYTE: u64 = 1024 * 1024;

/// Projects a snapshot of one connection's vCenter into canonical resources.
pub(crate) fn project(
    connection_id: &str,
    snapshot: &InventorySnapshot,
    system: &SystemIdentity,
    collected_at: DateTime<Utc>,
    alarms: &AlarmCatalog,
) -> Projection {
    let mut issues = IssueCollector::default();
    for issue in snapshot.issues() {
        issues.snapshot_issue(snapshot, issue);
    }
    let ids = assign_ids(connection_id, snapshot, &mut issues);
    let tree = Tree { snapshot };
    let mut projector = Projector {
        connection_id,
        snapshot,
        tree,
        ids: &ids,
        collected_at,
        issues: &mut issues,
        hosts: HashMap::new(),
    };
    let mut resources = Vec::with_capacity(ids.len());
    for (obj, object) in snapshot.objects_of(host::KIND) {
        resources.push(projector.host(obj, object));
    }
    for (obj, object) in snapshot.objects_of(vm::KIND) {
        resources.push(projector.vm(obj, object));
    }
    for (obj, object) in snapshot.objects_of(datastore::KIND) {
        resources.push(projector.datastore(obj, object));
    }
    resources.sort_by(|left, right| left.id.cmp(&right.id));
    let mut alert_conditions = alerts::health_alerts(&resources);
    let by_id: HashMap<&str, &Resource> = resources.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut unresolved = BTreeSet::new();
    for (kind, _) in PROJECTED {
        for (obj, object) in snapshot.objects_of(kind) {
            let Some(resource) = ids.get(obj).and_then(|id| by_id.get(id.as_str())) else {
                continue;
            };
            match object.alarm_states(TRIGGERED_ALARM_STATE) {
                Ok(states) => alert_conditions.extend(alerts::alarm_alerts(
                    resource,
                    states,
                    alarms,
                    &mut unresolved,
                )),
                Err(mismatch) => issues.mismatch(snapshot, obj, mismatch),
            }
        }
    }
    alert_conditions.sort_by(|a, b| (&a.resource_id, &a.key).cmp(&(&b.resource_id, &b.key)));
    let mut issues = issues.finish();
    issues.extend(alerts::unresolved_issue(&unresolved));
    Projection {
        system: system.clone(),
        topology: count_topology(&tree),
        issues,
        collected_at,
        alerts: alert_conditions,
        resources,
    }
}

/// The resource id of every projected object, by the same rules (and with the same
/// tie-breaks) as [`project`]: for linking feed records to resources.
pub(crate) fn resource_ids<'s>(
    connection_id: &str,
    snapshot: &'s InventorySnapshot,
) -> HashMap<&'s MoRef, String> {
    // Issues were reported by the projection of the same snapshot; these are dropped.
    assign_ids(connection_id, snapshot, &mut IssueCollector::default())
}

/// The canonical types and the managed object types they come from.
const PROJECTED: [(&str, ResourceType); 3] = [
    (host::KIND, ResourceType::Agent),
    (vm::KIND, ResourceType::Vm),
    (datastore::KIND, ResourceType::Storage),
];

/// Gives every projected object its id (see the module documentation).
fn assign_ids<'s>(
    connection_id: &str,
    snapshot: &'s InventorySnapshot,
    issues: &mut IssueCollector,
) -> HashMap<&'s MoRef, String> {
    let mut ids = HashMap::new();
    let mut used_ids = HashSet::new();
    for (kind, resource_type) in PROJECTED {
        let mut used_keys = HashSet::new();
        for (obj, object) in snapshot.objects_of(kind) {
            let mut fields = Fields::new(snapshot, obj, object, issues);
            let key = match stable_key(kind, &mut fields) {
                Some(key) if used_keys.insert(key.clone()) => key,
                _ => format!("moid:{}", obj.value),
            };
            let base = resource_id(connection_id, resource_type, &key);
            // 80 bits make a collision of two different keys practically impossible; this
            // keeps ids unique even then, deterministically.
            let mut id = base.clone();
            let mut suffix = 2u32;
            while !used_ids.insert(id.clone()) {
                id = format!("{base}-{suffix}");
                suffix += 1;
            }
            ids.insert(obj, id);
        }
    }
    ids
}

/// The preferred stable key of an object, if it has one besides its managed object id.
fn stable_key(kind: &str, fields: &mut Fields<'_, '_>) -> Option<String> {
    let uuid = |text: &str| text.trim().to_ascii_lowercase();
    match kind {
        vm::KIND => fields
            .non_empty(vm::INSTANCE_UUID)
            .map(|value| format!("instanceUuid:{}", uuid(value)))
            .or_else(|| {
                fields
                    .non_empty(vm::BIOS_UUID)
                    .map(|value| format!("uuid:{}", uuid(value)))
            }),
        host::KIND => fields
            .non_empty(host::HARDWARE_UUID)
            .map(|value| format!("hardwareUuid:{}", uuid(value))),
        datastore::KIND => fields
            .non_empty(datastore::URL)
            .map(|value| format!("url:{}", value.trim())),
        _ => None,
    }
}

fn resource_id(connection_id: &str, resource_type: ResourceType, key: &str) -> String {
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    let short = digest.get(..ID_HASH_HEX_DIGITS).unwrap_or(&digest);
    format!("{connection_id}-{}-{short}", resource_type.as_str())
}

/// What the VMs of a host need from it.
#[derive(Clone, Default)]
struct HostFacts<'s> {
    cpu_mhz: Option<i64>,
    datacenter: Option<&'s str>,
    cluster: Option<&'s str>,
}

struct Projector<'s, 'c> {
    connection_id: &'s str,
    snapshot: &'s InventorySnapshot,
    tree: Tree<'s>,
    ids: &'c HashMap<&'s MoRef, String>,
    collected_at: DateTime<Utc>,
    issues: &'c mut IssueCollector,
    hosts: HashMap<&'s MoRef, HostFacts<'s>>,
}

impl<'s> Projector<'s, '_> {
    fn resource(&self, obj: &MoRef, resource_type: ResourceType, name: Option<&str>) -> Resource {
        Resource {
            id: self.ids.get(obj).cloned().unwrap_or_default(),
            resource_type,
            platform: PLATFORM.to_owned(),
            connection_id: self.connection_id.to_owned(),
            name: name.unwrap_or(&obj.value).to_owned(),
            status: ResourceStatus::Unknown,
            identity: Map::new(),
            relations: Vec::new(),
            topology: Topology::default(),
            metrics: LatestMetrics::default(),
            details: Map::new(),
            last_seen_at: self.collected_at,
        }
    }

    fn host(&mut self, obj: &'s MoRef, object: &'s ManagedObject) -> Resource {
        let mut fields = Fields::new(self.snapshot, obj, object, self.issues);
        let name = fields.str(host::NAME);
        let cpu_cores = fields.i64(host::CPU_CORES);
        let cpu_mhz = fields.i64(host::CPU_MHZ);
        let cpu_usage = fields.i64(host::CPU_USAGE_MHZ);
        let memory_usage_mb = fields.i64(host::MEMORY_USAGE_MB);
        let memory_size = fields.i64(host::MEMORY_SIZE);
        let uptime = fields.i64(host::UPTIME);
        let connection_state = fields.str(host::CONNECTION_STATE);
        let power_state = fields.str(host::POWER_STATE);
        let maintenance = fields.bool(host::IN_MAINTENANCE);
        let overall_status = fields.str(host::OVERALL_STATUS);
        let hardware_uuid = fields.non_empty(host::HARDWARE_UUID);

        let mut identity = Map::new();
        put(&mut identity, "nativeId", Some(obj.value.as_str()));
        put(&mut identity, "uuid", hardware_uuid);
        put(&mut identity, "platformType", Some(PLATFORM));

        let mut details = Map::new();
        put(&mut details, "version", fields.str(host::VERSION));
        put(&mut details, "build", fields.str(host::BUILD));
        put(&mut details, "product", fields.str(host::FULL_NAME));
        put(&mut details, "cpuCores", cpu_cores);
        put(&mut details, "cpuMhz", cpu_mhz);
        put(&mut details, "maintenance", maintenance);
        put(&mut details, "vendor", fields.str(host::VENDOR));
        put(&mut details, "model", fields.str(host::MODEL));
        put(&mut details, "connectionState", connection_state);
        put(&mut details, "powerState", power_state);
        put(&mut details, "overallStatus", overall_status);

        let capacity_mhz = cpu_cores
            .zip(cpu_mhz)
            .and_then(|(cores, mhz)| cores.checked_mul(mhz));
        let metrics = LatestMetrics {
            cpu_percent: percent(cpu_usage, capacity_mhz),
            memory_used_bytes: mebibytes(memory_usage_mb),
            memory_total_bytes: non_negative(memory_size),
            uptime_seconds: non_negative(uptime),
            ..LatestMetrics::default()
        };

        let facts = HostFacts {
            cpu_mhz,
            datacenter: self.tree.datacenter(obj),
            cluster: self.tree.cluster_of_host(obj),
        };
        let topology = Topology {
            datacenter: facts.datacenter.map(str::to_owned),
            cluster: facts.cluster.map(str::to_owned),
            folder: self.tree.folder(obj).map(str::to_owned),
            resource_pool: None,
        };
        self.hosts.insert(obj, facts);

        let mut resource = self.resource(obj, ResourceType::Agent, name);
        resource.status = host_status(connection_state, power_state, maintenance, overall_status);
        resource.identity = identity;
        resource.details = details;
        resource.metrics = metrics;
        resource.topology = topology;
        resource
    }

    fn vm(&mut self, obj: &'s MoRef, object: &'s ManagedObject) -> Resource {
        let mut fields = Fields::new(self.snapshot, obj, object, self.issues);
        let name = fields.str(vm::NAME);
        let host_ref = fields.reference(vm::HOST);
        let pool_ref = fields.reference(vm::RESOURCE_POOL);
        let datastores = fields.refs(vm::DATASTORES);
        let power_state = fields.str(vm::POWER_STATE);
        let connection_state = fields.str(vm::CONNECTION_STATE);
        let template = fields.bool(vm::TEMPLATE);
        let overall_status = fields.str(vm::OVERALL_STATUS);
        let instance_uuid = fields.non_empty(vm::INSTANCE_UUID);
        let bios_uuid = fields.non_empty(vm::BIOS_UUID);
        let num_cpu = fields.i64(vm::NUM_CPU);
        let memory_mb = fields.i64(vm::MEMORY_MB);
        let cpu_usage = fields.i64(vm::CPU_USAGE_MHZ);
        let guest_memory_mb = fields.i64(vm::GUEST_MEMORY_USAGE_MB);
        let uptime = fields.i64(vm::UPTIME);
        let committed = fields.i64(vm::STORAGE_COMMITTED);
        let uncommitted = fields.i64(vm::STORAGE_UNCOMMITTED);
        let guest_os = fields
            .non_empty(vm::GUEST_FULL_NAME)
            .or_else(|| fields.non_empty(vm::GUEST_ID));
        let guest_id = fields.str(vm::GUEST_ID);
        let tools_status = fields.str(vm::TOOLS_STATUS);
        let tools_running = fields.str(vm::TOOLS_RUNNING_STATUS);
        let ip_address = fields.non_empty(vm::IP_ADDRESS);
        let guest_host_name = fields.non_empty(vm::GUEST_HOST_NAME);
        let snapshots = fields.snapshots(vm::SNAPSHOT);

        let mut identity = Map::new();
        put(&mut identity, "nativeId", Some(obj.value.as_str()));
        put(&mut identity, "uuid", instance_uuid.or(bios_uuid));
        put(&mut identity, "instanceUuid", instance_uuid);
        put(&mut identity, "biosUuid", bios_uuid);

        let mut details = Map::new();
        put(&mut details, "powerState", power_state);
        put(&mut details, "connectionState", connection_state);
        put(&mut details, "guestOs", guest_os);
        put(&mut details, "guestId", guest_id);
        put(&mut details, "toolsStatus", tools_status);
        put(&mut details, "toolsRunningStatus", tools_running);
        // Always present on VMs (empty without snapshots), so a reader can tell "none" from
        // "not reported".
        details.insert(
            "snapshots".into(),
            Value::Array(snapshots.map(snapshot_tree).unwrap_or_default()),
        );
        details.insert(
            "ipAddresses".to_owned(),
            Value::Array(ip_address.map(Value::from).into_iter().collect()),
        );
        put(&mut details, "hostName", guest_host_name);
        put(&mut details, "template", Some(template.unwrap_or(false)));
        put(&mut details, "cpuCount", num_cpu);
        put(&mut details, "memoryMb", memory_mb);
        put(&mut details, "overallStatus", overall_status);

        let host = host_ref.and_then(|host| self.hosts.get(host)).cloned();
        let host_mhz = host.as_ref().and_then(|facts| facts.cpu_mhz);
        let capacity_mhz = num_cpu
            .zip(host_mhz)
            .and_then(|(cpus, mhz)| cpus.checked_mul(mhz));
        let metrics = LatestMetrics {
            cpu_percent: percent(cpu_usage, capacity_mhz),
            memory_used_bytes: mebibytes(guest_memory_mb),
            memory_total_bytes: mebibytes(memory_mb),
            disk_used_bytes: non_negative(committed),
            disk_total_bytes: non_negative(committed)
                .zip(non_negative(uncommitted))
                .and_then(|(used, free)| used.checked_add(free)),
            uptime_seconds: non_negative(uptime),
        };

        let pool_owner_cluster = pool_ref.and_then(|pool| self.tree.pool_cluster(pool));
        let topology = Topology {
            datacenter: self
                .tree
                .datacenter(obj)
                .or_else(|| host.as_ref().and_then(|facts| facts.datacenter))
                .or_else(|| pool_ref.and_then(|pool| self.tree.datacenter(pool)))
                .map(str::to_owned),
            cluster: host
                .as_ref()
                .and_then(|facts| facts.cluster)
                .or(pool_owner_cluster)
                .map(str::to_owned),
            folder: self.tree.folder(obj).map(str::to_owned),
            resource_pool: pool_ref
                .and_then(|pool| self.tree.user_pool_name(pool))
                .map(str::to_owned),
        };

        let mut relations = BTreeSet::new();
        if let Some(host_ref) = host_ref {
            self.relate(obj, RelationKind::RunsOn, host_ref, &mut relations);
        }
        for datastore_ref in datastores {
            self.relate(
                obj,
                RelationKind::UsesStorage,
                datastore_ref,
                &mut relations,
            );
        }

        let mut resource = self.resource(obj, ResourceType::Vm, name);
        resource.status = vm_status(template, connection_state, power_state, overall_status);
        resource.identity = identity;
        resource.details = details;
        resource.metrics = metrics;
        resource.topology = topology;
        resource.relations = relations.into_iter().collect();
        resource
    }

    fn datastore(&mut self, obj: &'s MoRef, object: &'s ManagedObject) -> Resource {
        let mut fields = Fields::new(self.snapshot, obj, object, self.issues);
        let name = fields.str(datastore::NAME);
        let url = fields.non_empty(datastore::URL);
        let capacity = fields.i64(datastore::CAPACITY);
        let free = fields.i64(datastore::FREE_SPACE);
        let accessible = fields.bool(datastore::ACCESSIBLE);
        let maintenance = fields.str(datastore::MAINTENANCE_MODE);
        let overall_status = fields.str(datastore::OVERALL_STATUS);
        let kind = fields.str(datastore::TYPE);
        let mounts = fields.refs(datastore::HOST_MOUNTS);

        let mut identity = Map::new();
        put(&mut identity, "nativeId", Some(obj.value.as_str()));
        put(&mut identity, "url", url);

        let mut details = Map::new();
        put(&mut details, "capacityBytes", non_negative(capacity));
        put(&mut details, "freeBytes", non_negative(free));
        put(&mut details, "kind", kind);
        put(&mut details, "accessible", accessible);
        put(&mut details, "url", url);
        put(&mut details, "maintenanceMode", maintenance);
        put(&mut details, "overallStatus", overall_status);

        let metrics = LatestMetrics {
            disk_total_bytes: non_negative(capacity),
            disk_used_bytes: capacity
                .zip(free)
                .and_then(|(capacity, free)| capacity.checked_sub(free))
                .and_then(|used| non_negative(Some(used))),
            ..LatestMetrics::default()
        };

        let topology = Topology {
            datacenter: self.tree.datacenter(obj).map(str::to_owned),
            cluster: None,
            folder: self.tree.folder(obj).map(str::to_owned),
            resource_pool: None,
        };

        let mut relations = BTreeSet::new();
        for host_ref in mounts {
            self.relate(obj, RelationKind::MountedOn, host_ref, &mut relations);
        }

        let mut resource = self.resource(obj, ResourceType::Storage, name);
        resource.status = datastore_status(accessible, maintenance, overall_status);
        resource.identity = identity;
        resource.details = details;
        resource.metrics = metrics;
        resource.topology = topology;
        resource.relations = relations.into_iter().collect();
        resource
    }

    /// Adds a relation to `target` if it is a projected resource; otherwise records a
    /// dangling relation, because every relation target must exist.
    fn relate(
        &mut self,
        source: &MoRef,
        kind: RelationKind,
        target: &MoRef,
        relations: &mut BTreeSet<Relation>,
    ) {
        match self.ids.get(target) {
            Some(id) => {
                relations.insert(Relation {
                    kind,
                    target: id.clone(),
                });
            }
            None => self.issues.dangling(self.snapshot, source, kind, target),
        }
    }
}

/// Reads one object's properties, turning values of an unexpected type into "missing" plus
/// an issue, so a bad value never fails the projection.
struct Fields<'s, 'c> {
    snapshot: &'s InventorySnapshot,
    obj: &'s MoRef,
    object: &'s ManagedObject,
    issues: &'c mut IssueCollector,
}

impl<'s, 'c> Fields<'s, 'c> {
    fn new(
        snapshot: &'s InventorySnapshot,
        obj: &'s MoRef,
        object: &'s ManagedObject,
        issues: &'c mut IssueCollector,
    ) -> Self {
        Self {
            snapshot,
            obj,
            object,
            issues,
        }
    }

    fn checked<T>(&mut self, result: Result<Option<T>, ValueMismatch>) -> Option<T> {
        match result {
            Ok(value) => value,
            Err(mismatch) => {
                self.issues.mismatch(self.snapshot, self.obj, mismatch);
                None
            }
        }
    }

    fn str(&mut self, path: &str) -> Option<&'s str> {
        let object = self.object;
        self.checked(object.str(path))
    }

    /// A text property that is not blank.
    fn non_empty(&mut self, path: &str) -> Option<&'s str> {
        self.str(path).filter(|text| !text.trim().is_empty())
    }

    fn i64(&mut self, path: &str) -> Option<i64> {
        let object = self.object;
        self.checked(object.i64(path))
    }

    fn bool(&mut self, path: &str) -> Option<bool> {
        let object = self.object;
        self.checked(object.bool(path))
    }

    fn reference(&mut self, path: &str) -> Option<&'s MoRef> {
        let object = self.object;
        self.checked(object.reference(path))
    }

    fn snapshots(&mut self, path: &str) -> Option<&'s SnapshotInfo> {
        let object = self.object;
        self.checked(object.snapshots(path))
    }

    fn refs(&mut self, path: &str) -> &'s [MoRef] {
        let object = self.object;
        match object.refs(path) {
            Ok(references) => references,
            Err(mismatch) => {
                self.issues.mismatch(self.snapshot, self.obj, mismatch);
                &[]
            }
        }
    }
}

/// Walks `parent` chains in the snapshot. Reads here are lenient (a bad `parent` ends the
/// walk), because the object's own fields already reported any mismatch.
#[derive(Clone, Copy)]
struct Tree<'s> {
    snapshot: &'s InventorySnapshot,
}

impl<'s> Tree<'s> {
    fn parent(&self, obj: &MoRef) -> Option<&'s MoRef> {
        self.snapshot
            .get(obj)?
            .reference(paths::PARENT)
            .ok()
            .flatten()
    }

    /// The ancestors of `obj`, nearest first, as far as the snapshot knows them.
    fn ancestors(&self, obj: &'s MoRef) -> impl Iterator<Item = &'s MoRef> + 's {
        let tree = *self;
        std::iter::successors(tree.parent(obj), move |current| tree.parent(current))
            .take(MAX_PARENT_DEPTH)
    }

    fn datacenter(&self, obj: &'s MoRef) -> Option<&'s str> {
        self.ancestors(obj)
            .find(|ancestor| ancestor.is(paths::DATACENTER))
            .and_then(|datacenter| self.snapshot.name_of(datacenter))
    }

    /// The nearest folder a user made (see the module documentation).
    fn folder(&self, obj: &'s MoRef) -> Option<&'s str> {
        self.ancestors(obj)
            .find(|ancestor| ancestor.is(paths::FOLDER) && !self.is_hidden_folder(ancestor))
            .and_then(|folder| self.snapshot.name_of(folder))
    }

    /// The root folder (no parent) and each datacenter's `vm`, `host`, `datastore` and
    /// `network` folders (parent is the datacenter).
    fn is_hidden_folder(&self, folder: &MoRef) -> bool {
        match self.parent(folder) {
            None => true,
            Some(parent) => parent.is(paths::DATACENTER),
        }
    }

    fn cluster_of_host(&self, host: &MoRef) -> Option<&'s str> {
        self.parent(host)
            .filter(|parent| parent.is(paths::CLUSTER_COMPUTE_RESOURCE))
            .and_then(|cluster| self.snapshot.name_of(cluster))
    }

    /// Whether a resource pool is the hidden root pool of a cluster or standalone host.
    fn is_root_pool(&self, pool: &MoRef) -> bool {
        pool.is(resource_pool::KIND)
            && self.parent(pool).is_some_and(|parent| {
                parent.is(paths::COMPUTE_RESOURCE) || parent.is(paths::CLUSTER_COMPUTE_RESOURCE)
            })
    }

    /// The name of a pool a user made (or a vApp), or `None` for a root pool.
    fn user_pool_name(&self, pool: &MoRef) -> Option<&'s str> {
        if self.is_root_pool(pool) {
            return None;
        }
        self.snapshot.name_of(pool)
    }

    /// The cluster owning a resource pool, through its `owner`.
    fn pool_cluster(&self, pool: &MoRef) -> Option<&'s str> {
        self.snapshot
            .get(pool)?
            .reference(resource_pool::OWNER)
            .ok()
            .flatten()
            .filter(|owner| owner.is(paths::CLUSTER_COMPUTE_RESOURCE))
            .and_then(|cluster| self.snapshot.name_of(cluster))
    }
}

fn count_topology(tree: &Tree<'_>) -> TopologyCounts {
    let snapshot = tree.snapshot;
    TopologyCounts {
        datacenters: snapshot.objects_of(paths::DATACENTER).count() as u64,
        clusters: snapshot.objects_of(paths::CLUSTER_COMPUTE_RESOURCE).count() as u64,
        folders: snapshot
            .objects_of(paths::FOLDER)
            .filter(|(folder, _)| !tree.is_hidden_folder(folder))
            .count() as u64,
        resource_pools: snapshot
            .objects_of(resource_pool::KIND)
            .filter(|(pool, _)| !tree.is_root_pool(pool))
            .count() as u64,
    }
}

/// `online` when connected and powered on (`degraded` in maintenance mode), `offline` when
/// disconnected, not responding, powered off or in standby, `unknown` otherwise.
fn host_status(
    connection_state: Option<&str>,
    power_state: Option<&str>,
    maintenance: Option<bool>,
    overall_status: Option<&str>,
) -> ResourceStatus {
    let status = match (connection_state, power_state) {
        (Some("disconnected" | "notResponding"), _) => ResourceStatus::Offline,
        (_, Some("poweredOff" | "standBy")) => ResourceStatus::Offline,
        (Some("connected"), Some("poweredOn")) if maintenance == Some(true) => {
            ResourceStatus::Degraded
        }
        (Some("connected"), Some("poweredOn")) => ResourceStatus::Online,
        _ => ResourceStatus::Unknown,
    };
    degrade_if_red(status, overall_status)
}

/// Templates are `offline`; otherwise `unknown` when vCenter is not connected to the VM
/// (orphaned, inaccessible, ...), then by power state.
fn vm_status(
    template: Option<bool>,
    connection_state: Option<&str>,
    power_state: Option<&str>,
    overall_status: Option<&str>,
) -> ResourceStatus {
    if template == Some(true) {
        return ResourceStatus::Offline;
    }
    let status = match (connection_state, power_state) {
        (Some(state), _) if state != "connected" => ResourceStatus::Unknown,
        (_, Some("poweredOn")) => ResourceStatus::Online,
        (_, Some("poweredOff" | "suspended")) => ResourceStatus::Offline,
        _ => ResourceStatus::Unknown,
    };
    degrade_if_red(status, overall_status)
}

/// `online` when accessible (`degraded` in or entering maintenance, like a host), `offline`
/// when not.
fn datastore_status(
    accessible: Option<bool>,
    maintenance: Option<&str>,
    overall_status: Option<&str>,
) -> ResourceStatus {
    let status = match accessible {
        Some(false) => ResourceStatus::Offline,
        Some(true) if matches!(maintenance, Some("inMaintenance" | "enteringMaintenance")) => {
            ResourceStatus::Degraded
        }
        Some(true) => ResourceStatus::Online,
        None => ResourceStatus::Unknown,
    };
    degrade_if_red(status, overall_status)
}

/// vCenter's `red` health marks a working resource as degraded; it does not make an offline
/// or unknown one any more known.
fn degrade_if_red(status: ResourceStatus, overall_status: Option<&str>) -> ResourceStatus {
    match (status, overall_status) {
        (ResourceStatus::Online, Some("red")) => ResourceStatus::Degraded,
        (status, _) => status,
    }
}

/// `used / capacity` as a percentage rounded to hundredths and clamped to `0..=100`.
fn percent(used: Option<i64>, capacity: Option<i64>) -> Option<f64> {
    let (used, capacity) = (used?, capacity?);
    if capacity <= 0 || used < 0 {
        return None;
    }
    let value = (used as f64 / capacity as f64 * 100.0).clamp(0.0, 100.0);
    Some((value * 100.0).round() / 100.0)
}

fn mebibytes(megabytes: Option<i64>) -> Option<u64> {
    u64::try_from(megabytes?)
        .ok()?
        .checked_mul(BYTES_PER_MEBIBYTE)
}

fn non_negative(value: Option<i64>) -> Option<u64> {
    u64::try_from(value?).ok()
}

fn put<T: Into<Value>>(map: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), value.into());
    }
}

/// What kind of problem an issue is; issues of one kind are one [`PollIssue`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum IssueKind {
    /// Properties (or, without `property`, whole objects) vCenter could not read.
    Fault {
        category: FailureCategory,
        object_kind: String,
        whole_object: bool,
        fault_type: String,
        privilege: Option<String>,
    },
    /// Relations whose target is not a projected resource.
    Dangling {
        object_kind: String,
        relation: RelationKind,
        target_kind: String,
    },
    /// A property of an unexpected type.
    Mismatch {
        object_kind: String,
        path: String,
        expected: &'static str,
    },
}

impl IssueKind {
    fn category(&self) -> FailureCategory {
        match self {
            Self::Fault { category, .. } => *category,
            Self::Dangling { .. } | Self::Mismatch { .. } => FailureCategory::Protocol,
        }
    }
}

/// The first occurrence of an issue kind (in snapshot order) and how far it reaches.
struct IssueGroup {
    /// The first object's label, as in `VM "web-01" (vm-42)`.
    subject: String,
    /// What the first occurrence is about: a property path, a relation target, a value.
    detail: String,
    /// vCenter's own message for the first fault, if it sent one.
    fault_message: Option<String>,
    objects: HashSet<MoRef>,
    details: HashSet<String>,
    occurrences: u32,
}

#[derive(Default)]
struct IssueCollector {
    groups: BTreeMap<IssueKind, IssueGroup>,
    /// A property read twice (for the id and for the resource) reports one mismatch.
    seen_mismatches: HashSet<(MoRef, String)>,
}

impl IssueCollector {
    fn add(
        &mut self,
        kind: IssueKind,
        obj: &MoRef,
        subject: impl FnOnce() -> String,
        detail: String,
        fault_message: Option<&String>,
    ) {
        let group = self.groups.entry(kind).or_insert_with(|| IssueGroup {
            subject: subject(),
            detail: detail.clone(),
            fault_message: fault_message.cloned(),
            objects: HashSet::new(),
            details: HashSet::new(),
            occurrences: 0,
        });
        group.occurrences = group.occurrences.saturating_add(1);
        group.objects.insert(obj.clone());
        group.details.insert(detail);
    }

    fn snapshot_issue(&mut self, snapshot: &InventorySnapshot, issue: &SnapshotIssue) {
        let category = match issue.fault_type.as_ref() {
            NOT_AUTHENTICATED => FailureCategory::Auth,
            "NoPermission" => FailureCategory::Permission,
            _ => FailureCategory::Protocol,
        };
        let kind = IssueKind::Fault {
            category,
            object_kind: issue.obj.kind.to_string(),
            whole_object: issue.path.is_none(),
            fault_type: issue.fault_type.to_string(),
            privilege: issue.privilege.clone(),
        };
        let detail = issue
            .path
            .as_ref()
            .map(|path| path.to_string())
            .unwrap_or_default();
        self.add(
            kind,
            &issue.obj,
            || snapshot.label(&issue.obj),
            detail,
            issue.message.as_ref(),
        );
    }

    fn dangling(
        &mut self,
        snapshot: &InventorySnapshot,
        source: &MoRef,
        relation: RelationKind,
        target: &MoRef,
    ) {
        let kind = IssueKind::Dangling {
            object_kind: source.kind.to_string(),
            relation,
            target_kind: target.kind.to_string(),
        };
        self.add(
            kind,
            source,
            || snapshot.label(source),
            snapshot.label(target),
            None,
        );
    }

    fn mismatch(&mut self, snapshot: &InventorySnapshot, obj: &MoRef, mismatch: ValueMismatch) {
        if !self
            .seen_mismatches
            .insert((obj.clone(), mismatch.path.clone()))
        {
            return;
        }
        let ValueMismatch {
            path,
            expected,
            found,
        } = mismatch;
        let kind = IssueKind::Mismatch {
            object_kind: obj.kind.to_string(),
            path,
            expected,
        };
        self.add(kind, obj, || snapshot.label(obj), found, None);
    }

    fn finish(self) -> Vec<PollIssue> {
        self.groups
            .into_iter()
            .map(|(kind, group)| PollIssue {
                stage: STAGE.to_owned(),
                category: kind.category(),
                message: message(&kind, &group),
                occurrences: group.occurrences,
            })
            .collect()
    }
}

/// An admin-facing message naming the first object, the property and the privilege, and
/// how many more objects (and properties) the same problem affects.
fn message(kind: &IssueKind, group: &IssueGroup) -> String {
    let subject = |object_kind: &str| {
        let others = group.objects.len().saturating_sub(1);
        match others {
            0 => group.subject.clone(),
            _ => format!(
                "{} and {}",
                group.subject,
                count_of(others, &format!("other {}", describe_kind(object_kind)))
            ),
        }
    };
    let first_and_others = |noun: &str| match group.details.len().saturating_sub(1) {
        0 => group.detail.clone(),
        others => format!("{} and {}", group.detail, count_of(others, noun)),
    };
    match kind {
        IssueKind::Fault {
            object_kind,
            whole_object,
            fault_type,
            privilege,
            ..
        } => {
            let what = if *whole_object {
                format!("cannot read {}", subject(object_kind))
            } else {
                format!(
                    "cannot read {} of {}",
                    first_and_others("other property"),
                    subject(object_kind)
                )
            };
            let why = match (fault_type.as_str(), privilege, &group.fault_message) {
                (NOT_AUTHENTICATED, _, _) => "the session is not authenticated \
                    (NotAuthenticated): it was logged out or expired"
                    .to_owned(),
                (_, Some(privilege), _) => {
                    format!("{fault_type}, the account lacks the privilege {privilege}")
                }
                (_, None, Some(fault_message)) => format!("{fault_type}: {fault_message}"),
                (_, None, None) => fault_type.clone(),
            };
            format!("{what}: {why}")
        }
        IssueKind::Dangling {
            object_kind,
            relation,
            target_kind,
        } => {
            let relation = serde_json::to_value(relation)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!(
                "left out {} from {} to {}: the target is not in the inventory (not visible to \
                 this account, or removed during the read)",
                count_of(group.occurrences as usize, &format!("{relation} relation")),
                subject(object_kind),
                first_and_others(&format!("other {}", describe_kind(target_kind)))
            )
        }
        IssueKind::Mismatch {
            object_kind,
            path,
            expected,
        } => format!(
            "{path} of {} is {}, not {expected}; it was treated as missing",
            subject(object_kind),
            group.detail
        ),
    }
}

/// `1 other VM`, `3 other VMs`: English plurals of the nouns used here take an `s`
/// (`property` is the one exception).
fn count_of(count: usize, noun: &str) -> String {
    match (count, noun.strip_suffix("property")) {
        (1, _) => format!("{count} {noun}"),
        (_, Some(stem)) => format!("{count} {stem}properties"),
        (_, None) => format!("{count} {noun}s"),
    }
}

/// `details.snapshots`: the snapshot forest, each node with its children nested and
/// `current` marking the one the VM runs from.
fn snapshot_tree(info: &SnapshotInfo) -> Vec<Value> {
    fn node(snapshot: &SnapshotNode, current: Option<&MoRef>) -> Value {
        let mut out = Map::new();
        put(&mut out, "id", snapshot.id.as_deref());
        out.insert("name".into(), Value::String(snapshot.name.clone()));
        out.insert(
            "description".into(),
            Value::String(snapshot.description.clone()),
        );
        put(&mut out, "createTime", snapshot.create_time.as_deref());
        put(&mut out, "state", snapshot.state.as_deref());
        out.insert("quiesced".into(), Value::Bool(snapshot.quiesced));
        out.insert(
            "current".into(),
            Value::Bool(current.is_some() && snapshot.snapshot.as_ref() == current),
        );
        out.insert(
            "children".into(),
            Value::Array(
                snapshot
                    .children
                    .iter()
                    .map(|child| node(child, current))
                    .collect(),
            ),
        );
        Value::Object(out)
    }
    info.roots
        .iter()
        .map(|root| node(root, info.current.as_ref()))
        .collect()
}
