use super::*;
use crate::descriptor::*;
use serde_json::json;

static FIELDS: [FieldSpec; 4] = [
    FieldSpec {
        name: "host",
        label: "Host",
        help: "",
        kind: FieldKind::Text { max_length: 20 },
        required: true,
        secret: false,
        default: None,
    },
    FieldSpec {
        name: "port",
        label: "Port",
        help: "",
        kind: FieldKind::Integer { min: 1, max: 65535 },
        required: false,
        secret: false,
        default: Some(FieldDefault::Integer(443)),
    },
    FieldSpec {
        name: "password",
        label: "Password",
        help: "",
        kind: FieldKind::Text { max_length: 64 },
        required: true,
        secret: true,
        default: None,
    },
    FieldSpec {
        name: "verify",
        label: "Verify",
        help: "",
        kind: FieldKind::Boolean,
        required: false,
        secret: false,
        default: Some(FieldDefault::Boolean(true)),
    },
];

static DESCRIPTOR: PlatformDescriptor = PlatformDescriptor {
    platform: "test-platform",
    slug: "test",
    display_name: "Test",
    description: "",
    ingestion_mode: IngestionMode::Poll,
    projections: &[],
    readiness: ReadinessStage::Admission,
    support_matrix: SupportMatrix {
        connection_admission: SupportLevel::Supported,
        inventory: SupportLevel::Planned,
        alerts: SupportLevel::Planned,
        history: SupportLevel::Planned,
        metrics: SupportLevel::Planned,
        assistant_read: SupportLevel::Planned,
        assistant_control: SupportLevel::ReadOnly,
        control_actions: SupportLevel::NotApplicable,
    },
    capabilities: Capabilities {
        alarms: false,
        history: false,
        snapshots: false,
        metrics: false,
        incremental_updates: false,
    },
    minimum_version: "1",
    fields: &FIELDS,
};

/// Applies `body` and compares the redacted result (or the field errors) with `expected`.
fn check(base: Option<&ConnectionConfig>, body: serde_json::Value, expected: serde_json::Value) {
    let actual = match apply_draft(&DESCRIPTOR, base, &body) {
        Ok(config) => serde_json::Value::Object(config.redacted_json()),
        Err(errors) => json!({
            "errors": errors.iter().map(|(k, v)| (k.to_owned(), json!(v))).collect::<serde_json::Map<_, _>>()
        }),
    };
    assert_eq!(actual, expected, "body: {body}");
}

fn stored() -> ConnectionConfig {
    apply_draft(
        &DESCRIPTOR,
        None,
        &json!({"name": "a", "host": "h", "password": "pw"}),
    )
    .unwrap()
}

#[test]
fn create_applies_defaults_and_masks_secrets() {
    check(
        None,
        json!({"name": " a ", "host": "h", "password": "pw"}),
        json!({"name": "a", "enabled": true, "pollIntervalSeconds": 60, "host": "h", "port": 443, "verify": true, "password": "********"}),
    );
}

#[test]
fn create_reports_every_bad_field() {
    check(
        None,
        json!({"port": 0, "verify": "yes", "pollIntervalSeconds": 5, "extra": 1, "password": 7}),
        json!({"errors": {
            "name": "is required",
            "host": "is required",
            "port": "must be between 1 and 65535",
            "verify": "must be true or false",
            "pollIntervalSeconds": "must be between 10 and 3600 seconds",
            "extra": "unknown field",
            "password": "must be a string",
        }}),
    );
}

#[test]
fn masked_absent_and_null_secrets_keep_the_stored_one() {
    let base = stored();
    for body in [
        json!({"password": "********"}),
        json!({}),
        json!({"password": null}),
    ] {
        let config = apply_draft(&DESCRIPTOR, Some(&base), &body).unwrap();
        assert_eq!(config.secret("password").unwrap().expose(), "pw");
    }
}

#[test]
fn new_secret_replaces_and_empty_clears() {
    let base = stored();
    let config = apply_draft(&DESCRIPTOR, Some(&base), &json!({"password": "new"})).unwrap();
    assert_eq!(config.secret("password").unwrap().expose(), "new");
    check(
        Some(&base),
        json!({"password": ""}),
        json!({"errors": {"password": "is required"}}),
    );
}

#[test]
fn update_keeps_absent_fields_and_null_resets_to_default() {
    let base = apply_draft(&DESCRIPTOR, Some(&stored()), &json!({"port": 8443})).unwrap();
    check(
        Some(&base),
        json!({"id": "ignored", "enabled": false}),
        json!({"name": "a", "enabled": false, "pollIntervalSeconds": 60, "host": "h", "port": 8443, "verify": true, "password": "********"}),
    );
    check(
        Some(&base),
        json!({"port": null}),
        json!({"name": "a", "enabled": true, "pollIntervalSeconds": 60, "host": "h", "port": 443, "verify": true, "password": "********"}),
    );
}

#[test]
fn rejects_non_objects_and_oversize_values() {
    check(
        None,
        json!([1]),
        json!({"errors": {"body": "must be a JSON object"}}),
    );
    check(
        None,
        json!({"name": "a", "host": "h".repeat(21), "password": "p".repeat(65)}),
        json!({"errors": {"host": "must be at most 20 characters", "password": "must be at most 64 characters"}}),
    );
}

#[test]
fn secret_errors_never_echo_the_value() {
    let errors = apply_draft(
        &DESCRIPTOR,
        None,
        &json!({"name": "a", "host": "h", "password": "s3cr3t-".repeat(20)}),
    )
    .unwrap_err();
    assert!(!errors.to_string().contains("s3cr3t"));
}

#[test]
fn debug_output_masks_secrets() {
    let debug = format!("{:?}", stored());
    assert!(!debug.contains("pw\""), "{debug}");
    assert!(debug.contains("********"));
}
