//! What a provider says about itself: identity, route slug, connection fields, support matrix,
//! readiness and capabilities. Everything here is `'static` so a provider can declare its
//! descriptor as a `static` and the host can serve it without allocation.

use serde::Serialize;

/// A provider's self-description, served by `GET /api/platforms` and used by the host to
/// build routes, validate drafts and render forms.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformDescriptor {
    /// Stable platform id stored on every connection and resource, e.g. `vmware-vsphere`.
    pub platform: &'static str,
    /// URL segment of the provider's route family, e.g. `vmware` in `/api/vmware/connections`.
    pub slug: &'static str,
    pub display_name: &'static str,
    pub description: &'static str,
    pub ingestion_mode: IngestionMode,
    /// Canonical resource types this provider projects (`agent`, `vm`, `storage`).
    pub projections: &'static [&'static str],
    pub readiness: ReadinessStage,
    pub support_matrix: SupportMatrix,
    pub capabilities: Capabilities,
    /// Oldest platform version the provider talks to, stated for admins.
    pub minimum_version: &'static str,
    /// Provider-specific connection fields. The common fields `name`, `enabled` and
    /// `pollIntervalSeconds` are owned by core and are not listed here.
    pub fields: &'static [FieldSpec],
}

impl PlatformDescriptor {
    /// The field spec named `name`, if the provider declares one.
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Names of the fields whose values are secrets.
    pub fn secret_fields(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.fields.iter().filter(|f| f.secret).map(|f| f.name)
    }
}

/// How a provider obtains data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum IngestionMode {
    /// Pylon polls the platform's API on each connection's interval.
    Poll,
}

/// How far along a provider is, from the Pulse platform support model. Ordered: each stage
/// includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ReadinessStage {
    /// Connection admission only: validate, test, save.
    Admission,
    /// Inventory projects into canonical resources.
    Projection,
    /// Alerts, history and metrics complete the read floor.
    ReadFloor,
    /// Generally available.
    Ga,
}

/// Support for one surface of the shared support matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SupportLevel {
    Supported,
    ReadOnly,
    Planned,
    NotApplicable,
}

/// The shared surfaces every provider states its support for, one vocabulary for all.
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SupportMatrix {
    pub connection_admission: SupportLevel,
    pub inventory: SupportLevel,
    pub alerts: SupportLevel,
    pub history: SupportLevel,
    pub metrics: SupportLevel,
    pub assistant_read: SupportLevel,
    pub assistant_control: SupportLevel,
    pub control_actions: SupportLevel,
}

/// Optional data a provider can deliver; the host answers "not supported" for what is absent.
#[derive(Debug, Clone, Copy, Default, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    pub alarms: bool,
    pub history: bool,
    pub snapshots: bool,
    pub metrics: bool,
    pub incremental_updates: bool,
}

/// One provider-specific connection field.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldSpec {
    /// JSON name of the field (camelCase).
    pub name: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    pub kind: FieldKind,
    pub required: bool,
    /// Secret fields are encrypted at rest and replaced by the mask in every response.
    pub secret: bool,
    /// The value used when the field is absent from a new draft.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<FieldDefault>,
}

/// The JSON type of a field and its bounds.
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum FieldKind {
    /// A single-line string.
    Text {
        max_length: usize,
    },
    /// A multi-line string, such as a PEM document.
    MultilineText {
        max_length: usize,
    },
    /// An integer within inclusive bounds.
    Integer {
        min: i64,
        max: i64,
    },
    Boolean,
}

/// A field's default value.
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum FieldDefault {
    Integer(i64),
    Boolean(bool),
}
