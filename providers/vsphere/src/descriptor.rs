//! The vSphere provider's self-description: identity, route slug, support matrix and the
//! connection form.
//!
//! It is a `static` so the host can serve it without allocation and so the field names the
//! rest of this crate reads (`host`, `useHttps`, ...) are declared in exactly one place: the
//! `FIELD_*` constants below.

use pylon_core::descriptor::FieldDefault;
use pylon_core::{
    Capabilities, FieldKind, FieldSpec, IngestionMode, PlatformDescriptor, ReadinessStage,
    SupportLevel, SupportMatrix,
};

/// JSON names of the provider's connection fields.
pub(crate) const FIELD_HOST: &str = "host";
pub(crate) const FIELD_PORT: &str = "port";
pub(crate) const FIELD_USERNAME: &str = "username";
pub(crate) const FIELD_PASSWORD: &str = "password";
pub(crate) const FIELD_USE_HTTPS: &str = "useHttps";
pub(crate) const FIELD_INSECURE_SKIP_VERIFY: &str = "insecureSkipVerify";
pub(crate) const FIELD_FINGERPRINT: &str = "fingerprint";
pub(crate) const FIELD_CA_CERTIFICATE: &str = "caCertificate";

/// The port vCenter serves its API on unless told otherwise.
pub(crate) const DEFAULT_PORT: u16 = 443;

/// The descriptor served by `GET /api/platforms` and used to validate drafts.
pub static DESCRIPTOR: PlatformDescriptor = PlatformDescriptor {
    platform: "vmware-vsphere",
    slug: "vmware",
    display_name: "VMware vSphere",
    description: "Read-only inventory of a VMware vCenter Server (ESXi hosts, virtual machines \
                  and datastores) over the vSphere Web Services API.",
    ingestion_mode: IngestionMode::Poll,
    projections: &["agent", "vm", "storage"],
    readiness: ReadinessStage::Projection,
    support_matrix: SupportMatrix {
        connection_admission: SupportLevel::Supported,
        inventory: SupportLevel::Supported,
        // Health and triggered-alarm alerts (`GET /api/alerts`).
        alerts: SupportLevel::Supported,
        // Events and tasks (`GET /api/resources/{id}/history`).
        history: SupportLevel::Supported,
        // Performance history (`GET /api/resources/{id}/metrics`).
        metrics: SupportLevel::Supported,
        // The host's MCP tools read every projected resource; none controls anything.
        assistant_read: SupportLevel::Supported,
        assistant_control: SupportLevel::ReadOnly,
        control_actions: SupportLevel::NotApplicable,
    },
    capabilities: Capabilities {
        // Triggered alarms (`triggeredAlarmState`) become alerts with `source: "alarm"`.
        alarms: true,
        history: true,
        snapshots: true,
        metrics: true,
        // `WaitForUpdatesEx` after the first read; an unchanged poll is reported unchanged.
        incremental_updates: true,
    },
    minimum_version: "vSphere API 6.5 (vCenter Server)",
    fields: &[
        FieldSpec {
            name: FIELD_HOST,
            label: "vCenter Server",
            help: "Host name or IP address of the vCenter Server, e.g. `vcenter.example.com`. \
                   A scheme and port are accepted and moved into their own fields \
                   (`https://vcenter.example.com:8443`). Connect to vCenter, not to an \
                   individual ESXi host.",
            kind: FieldKind::Text { max_length: 255 },
            required: true,
            secret: false,
            default: None,
        },
        FieldSpec {
            name: FIELD_PORT,
            label: "Port",
            help: "TCP port of the vCenter API. vCenter serves it on 443.",
            kind: FieldKind::Integer { min: 1, max: 65535 },
            required: false,
            secret: false,
            default: Some(FieldDefault::Integer(DEFAULT_PORT as i64)),
        },
        FieldSpec {
            name: FIELD_USERNAME,
            label: "Username",
            help: "A vCenter account, e.g. `pylon@vsphere.local`. A read-only role \
                   (System.Anonymous, System.Read, System.View) propagated from the root \
                   folder is enough.",
            kind: FieldKind::Text { max_length: 256 },
            required: true,
            secret: false,
            default: None,
        },
        FieldSpec {
            name: FIELD_PASSWORD,
            label: "Password",
            help: "Password of the vCenter account. Stored encrypted and never shown again.",
            kind: FieldKind::Text { max_length: 1024 },
            required: true,
            secret: true,
            default: None,
        },
        FieldSpec {
            name: FIELD_USE_HTTPS,
            label: "Use HTTPS",
            help: "Talk to vCenter over HTTPS. Turn off only for a plain-HTTP test endpoint: \
                   without HTTPS the password crosses the network in clear text.",
            kind: FieldKind::Boolean,
            required: false,
            secret: false,
            default: Some(FieldDefault::Boolean(true)),
        },
        FieldSpec {
            name: FIELD_INSECURE_SKIP_VERIFY,
            label: "Skip certificate verification",
            help: "Accept any certificate vCenter presents. For labs only: anyone on the \
                   network path could impersonate vCenter. Prefer pinning the fingerprint \
                   or adding the CA certificate.",
            kind: FieldKind::Boolean,
            required: false,
            secret: false,
            default: Some(FieldDefault::Boolean(false)),
        },
        FieldSpec {
            name: FIELD_FINGERPRINT,
            label: "Certificate fingerprint (SHA-256)",
            help: "Trust exactly this certificate: the SHA-256 fingerprint of vCenter's \
                   certificate, 64 hexadecimal digits, with or without colons and a \
                   `sha256:` prefix. A failed connection test shows the fingerprint \
                   vCenter presented. Takes precedence over the CA certificate.",
            kind: FieldKind::Text { max_length: 200 },
            required: false,
            secret: false,
            default: None,
        },
        FieldSpec {
            name: FIELD_CA_CERTIFICATE,
            label: "CA certificate (PEM)",
            help: "PEM-encoded certificate(s) of the CA that issued vCenter's certificate \
                   (for vCenter's own VMCA, download it from https://<vcenter>/certs/download.zip). \
                   Trusted in addition to the system's trusted CAs.",
            kind: FieldKind::MultilineText { max_length: 65536 },
            required: false,
            secret: false,
            default: None,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_constant_is_declared_once() {
        let names = [
            FIELD_HOST,
            FIELD_PORT,
            FIELD_USERNAME,
            FIELD_PASSWORD,
            FIELD_USE_HTTPS,
            FIELD_INSECURE_SKIP_VERIFY,
            FIELD_FINGERPRINT,
            FIELD_CA_CERTIFICATE,
        ];
        assert_eq!(DESCRIPTOR.fields.len(), names.len());
        for name in names {
            assert_eq!(
                DESCRIPTOR.fields.iter().filter(|f| f.name == name).count(),
                1,
                "{name}"
            );
        }
        let secrets: Vec<_> = DESCRIPTOR.secret_fields().collect();
        assert_eq!(secrets, [FIELD_PASSWORD]);
    }
}
