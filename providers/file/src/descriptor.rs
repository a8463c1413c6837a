//! The static-file provider's self-description. One connection field, the file's path; no
//! secrets, because a local file is read with the Pylon server's own permissions.

use pylon_core::{
    Capabilities, FieldKind, FieldSpec, IngestionMode, PlatformDescriptor, ReadinessStage,
    SupportLevel, SupportMatrix,
};

/// JSON name of the path field.
pub(crate) const FIELD_PATH: &str = "path";

/// The descriptor served by `GET /api/platforms` and used to validate drafts.
pub static DESCRIPTOR: PlatformDescriptor = PlatformDescriptor {
    platform: "static-file",
    slug: "file",
    display_name: "Static inventory file",
    description: "Agents, VMs and storage read from a JSON inventory file on the Pylon server, \
                  re-read on every poll. For demos, UI tests and platforms without an API.",
    ingestion_mode: IngestionMode::Poll,
    projections: &["agent", "vm", "storage"],
    readiness: ReadinessStage::Projection,
    support_matrix: SupportMatrix {
        connection_admission: SupportLevel::Supported,
        inventory: SupportLevel::Supported,
        // The format could carry alerts and metric series once the canonical model has
        // them; a static file has no event or task history to report.
        alerts: SupportLevel::Planned,
        history: SupportLevel::NotApplicable,
        metrics: SupportLevel::Planned,
        // The host's MCP tools read every projected resource; none controls anything.
        assistant_read: SupportLevel::Supported,
        assistant_control: SupportLevel::ReadOnly,
        control_actions: SupportLevel::NotApplicable,
    },
    // Latest metrics, details (including a VM's `snapshots`, if the file has them) are
    // passed through, but nothing is guaranteed for every file, so nothing is declared.
    capabilities: Capabilities {
        alarms: false,
        history: false,
        snapshots: false,
        metrics: false,
        incremental_updates: false,
    },
    minimum_version: "inventory file format version 1",
    fields: &[FieldSpec {
        name: FIELD_PATH,
        label: "Inventory file",
        help: "Absolute path of the JSON inventory file on the Pylon server, e.g. \
               `/srv/pylon/demo-inventory.json`. Pylon's own user must be able to read it. \
               The format is described in docs/file-provider.md.",
        kind: FieldKind::Text { max_length: 4096 },
        required: true,
        secret: false,
        default: None,
    }],
};
