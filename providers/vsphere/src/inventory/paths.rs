//! The managed object types Pylon reads and the explicit property paths it asks for.
//!
//! Every path is named once, as a constant, so the request builder and the projection cannot
//! disagree about spelling: the projection reads `vm::POWER_STATE`, and the request asks for
//! exactly the paths in `vm::PATHS`. Asking for explicit paths (never `all = true`) keeps the
//! response small and lets a vCenter that lacks a privilege for one property report that one
//! property in a `missingSet` instead of failing the object.
//!
//! Each path exists in vSphere API 6.5 (Pylon's floor) and in govmomi 0.24's simulator
//! (`vim25/types`, `vim25/mo`). The simulator leaves out properties whose value is empty, so
//! not every object carries every path; the projection treats absence as "unknown".

/// The managed object types of the inventory, in request order. Each gets its own
/// `ContainerView` on the root folder and its own `PropertySpec`.
pub(crate) const INVENTORY_TYPES: &[TypePaths] = &[
    TypePaths::new(host::KIND, host::PATHS),
    TypePaths::new(vm::KIND, vm::PATHS),
    TypePaths::new(datastore::KIND, datastore::PATHS),
    TypePaths::new(DATACENTER, TOPOLOGY_PATHS),
    TypePaths::new(FOLDER, TOPOLOGY_PATHS),
    TypePaths::new(CLUSTER_COMPUTE_RESOURCE, TOPOLOGY_PATHS),
    TypePaths::new(COMPUTE_RESOURCE, TOPOLOGY_PATHS),
    TypePaths::new(resource_pool::KIND, resource_pool::PATHS),
];

/// One managed object type and the property paths requested for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TypePaths {
    pub kind: &'static str,
    pub paths: &'static [&'static str],
}

impl TypePaths {
    pub(crate) const fn new(kind: &'static str, paths: &'static [&'static str]) -> Self {
        Self { kind, paths }
    }
}

/// Paths every managed entity has.
pub(crate) const NAME: &str = "name";
pub(crate) const PARENT: &str = "parent";
pub(crate) const OVERALL_STATUS: &str = "overallStatus";
/// The alarms triggered on an entity (`ArrayOfAlarmState`); absent when none are.
pub(crate) const TRIGGERED_ALARM_STATE: &str = "triggeredAlarmState";

pub(crate) const DATACENTER: &str = "Datacenter";
pub(crate) const FOLDER: &str = "Folder";
/// A cluster. A `ContainerView` of `ComputeResource` also returns clusters, because vSphere
/// filters views by type *including subtypes*; the snapshot merges the duplicate.
pub(crate) const CLUSTER_COMPUTE_RESOURCE: &str = "ClusterComputeResource";
/// The compute resource of a standalone host (and the base type of clusters).
pub(crate) const COMPUTE_RESOURCE: &str = "ComputeResource";
/// A vApp: a subtype of `ResourcePool`, so a `ResourcePool` view returns vApps too.
pub(crate) const VIRTUAL_APP: &str = "VirtualApp";

/// Topology objects only need a name and their place in the tree.
pub(crate) const TOPOLOGY_PATHS: &[&str] = &[NAME, PARENT];

/// ESXi hosts, projected as `agent`.
pub(crate) mod host {
    pub(crate) use super::{NAME, OVERALL_STATUS, PARENT, TRIGGERED_ALARM_STATE};

    pub(crate) const KIND: &str = "HostSystem";
    pub(crate) const HARDWARE_UUID: &str = "summary.hardware.uuid";
    pub(crate) const CPU_CORES: &str = "summary.hardware.numCpuCores";
    pub(crate) const CPU_MHZ: &str = "summary.hardware.cpuMhz";
    pub(crate) const MEMORY_SIZE: &str = "summary.hardware.memorySize";
    pub(crate) const VENDOR: &str = "summary.hardware.vendor";
    pub(crate) const MODEL: &str = "summary.hardware.model";
    /// MHz in use across all cores.
    pub(crate) const CPU_USAGE_MHZ: &str = "summary.quickStats.overallCpuUsage";
    /// MB of physical memory in use.
    pub(crate) const MEMORY_USAGE_MB: &str = "summary.quickStats.overallMemoryUsage";
    pub(crate) const UPTIME: &str = "summary.quickStats.uptime";
    pub(crate) const VERSION: &str = "summary.config.product.version";
    pub(crate) const BUILD: &str = "summary.config.product.build";
    pub(crate) const FULL_NAME: &str = "summary.config.product.fullName";
    pub(crate) const CONNECTION_STATE: &str = "runtime.connectionState";
    pub(crate) const POWER_STATE: &str = "runtime.powerState";
    pub(crate) const IN_MAINTENANCE: &str = "runtime.inMaintenanceMode";
    pub(crate) const DATASTORES: &str = "datastore";

    pub(crate) const PATHS: &[&str] = &[
        NAME,
        PARENT,
        OVERALL_STATUS,
        TRIGGERED_ALARM_STATE,
        HARDWARE_UUID,
        CPU_CORES,
        CPU_MHZ,
        MEMORY_SIZE,
        VENDOR,
        MODEL,
        CPU_USAGE_MHZ,
        MEMORY_USAGE_MB,
        UPTIME,
        VERSION,
        BUILD,
        FULL_NAME,
        CONNECTION_STATE,
        POWER_STATE,
        IN_MAINTENANCE,
        DATASTORES,
    ];
}

/// Virtual machines (and templates), projected as `vm`.
pub(crate) mod vm {
    pub(crate) use super::{NAME, OVERALL_STATUS, PARENT, TRIGGERED_ALARM_STATE};

    pub(crate) const KIND: &str = "VirtualMachine";
    pub(crate) const RESOURCE_POOL: &str = "resourcePool";
    pub(crate) const HOST: &str = "runtime.host";
    pub(crate) const POWER_STATE: &str = "runtime.powerState";
    pub(crate) const CONNECTION_STATE: &str = "runtime.connectionState";
    pub(crate) const INSTANCE_UUID: &str = "config.instanceUuid";
    /// The BIOS UUID. Clones made outside vCenter can share it, so it is only a fallback.
    pub(crate) const BIOS_UUID: &str = "config.uuid";
    pub(crate) const GUEST_FULL_NAME: &str = "config.guestFullName";
    pub(crate) const GUEST_ID: &str = "config.guestId";
    pub(crate) const TEMPLATE: &str = "config.template";
    pub(crate) const NUM_CPU: &str = "config.hardware.numCPU";
    pub(crate) const MEMORY_MB: &str = "config.hardware.memoryMB";
    pub(crate) const TOOLS_RUNNING_STATUS: &str = "guest.toolsRunningStatus";
    pub(crate) const TOOLS_STATUS: &str = "guest.toolsStatus";
    pub(crate) const IP_ADDRESS: &str = "guest.ipAddress";
    pub(crate) const GUEST_HOST_NAME: &str = "guest.hostName";
    /// MHz in use.
    pub(crate) const CPU_USAGE_MHZ: &str = "summary.quickStats.overallCpuUsage";
    /// MB of guest memory actively in use.
    pub(crate) const GUEST_MEMORY_USAGE_MB: &str = "summary.quickStats.guestMemoryUsage";
    pub(crate) const UPTIME: &str = "summary.quickStats.uptimeSeconds";
    pub(crate) const STORAGE_COMMITTED: &str = "summary.storage.committed";
    pub(crate) const STORAGE_UNCOMMITTED: &str = "summary.storage.uncommitted";
    pub(crate) const DATASTORES: &str = "datastore";
    /// `VirtualMachineSnapshotInfo`; absent when the VM has no snapshots.
    pub(crate) const SNAPSHOT: &str = "snapshot";

    pub(crate) const PATHS: &[&str] = &[
        NAME,
        PARENT,
        RESOURCE_POOL,
        OVERALL_STATUS,
        TRIGGERED_ALARM_STATE,
        HOST,
        POWER_STATE,
        CONNECTION_STATE,
        INSTANCE_UUID,
        BIOS_UUID,
        GUEST_FULL_NAME,
        GUEST_ID,
        TEMPLATE,
        NUM_CPU,
        MEMORY_MB,
        TOOLS_RUNNING_STATUS,
        TOOLS_STATUS,
        IP_ADDRESS,
        GUEST_HOST_NAME,
        CPU_USAGE_MHZ,
        GUEST_MEMORY_USAGE_MB,
        UPTIME,
        STORAGE_COMMITTED,
        STORAGE_UNCOMMITTED,
        DATASTORES,
        SNAPSHOT,
    ];
}

/// Datastores, projected as `storage`.
pub(crate) mod datastore {
    pub(crate) use super::{NAME, OVERALL_STATUS, PARENT, TRIGGERED_ALARM_STATE};

    pub(crate) const KIND: &str = "Datastore";
    pub(crate) const URL: &str = "summary.url";
    pub(crate) const CAPACITY: &str = "summary.capacity";
    pub(crate) const FREE_SPACE: &str = "summary.freeSpace";
    /// The file system type (`VMFS`, `NFS`, `vsan`, ...).
    pub(crate) const TYPE: &str = "summary.type";
    pub(crate) const ACCESSIBLE: &str = "summary.accessible";
    pub(crate) const MAINTENANCE_MODE: &str = "summary.maintenanceMode";
    /// An `ArrayOfDatastoreHostMount`; only each mount's `key` (the host) is kept.
    pub(crate) const HOST_MOUNTS: &str = "host";

    pub(crate) const PATHS: &[&str] = &[
        NAME,
        PARENT,
        OVERALL_STATUS,
        TRIGGERED_ALARM_STATE,
        URL,
        CAPACITY,
        FREE_SPACE,
        TYPE,
        ACCESSIBLE,
        MAINTENANCE_MODE,
        HOST_MOUNTS,
    ];
}

/// Resource pools (and vApps). `owner` is the compute resource the pool belongs to.
pub(crate) mod resource_pool {
    pub(crate) use super::{NAME, PARENT};

    pub(crate) const KIND: &str = "ResourcePool";
    pub(crate) const OWNER: &str = "owner";

    pub(crate) const PATHS: &[&str] = &[NAME, PARENT, OWNER];
}

/// Alarm definitions: not in the inventory tree, read by id when a triggered alarm names one.
pub(crate) mod alarm {
    pub(crate) const KIND: &str = "Alarm";
    pub(crate) const NAME: &str = "info.name";
    pub(crate) const DESCRIPTION: &str = "info.description";

    pub(crate) const PATHS: &[&str] = &[NAME, DESCRIPTION];
}
