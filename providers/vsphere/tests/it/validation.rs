//! `Provider::validate` through core's draft handling, as the host calls it.

use crate::support::*;
use proptest::prelude::*;
use pylon_core::draft::apply_draft;
use pylon_core::{FailureCategory, Provider, TestContext};
use pylon_vsphere::{VsphereProvider, DESCRIPTOR};
use serde_json::json;

fn validate(body: &serde_json::Value) -> Result<pylon_core::ConnectionConfig, String> {
    let mut config = apply_draft(&DESCRIPTOR, None, body).map_err(|e| e.to_string())?;
    VsphereProvider::default()
        .validate(&mut config)
        .map_err(|e| e.to_string())?;
    Ok(config)
}

/// Validates `host` and renders the stored `host port useHttps`, or the field errors.
fn check(host: &str, expected: &str) {
    let rendered = match validate(&draft(host, 443)) {
        Ok(config) => format!(
            "{} {} {}",
            config.str_setting("host").unwrap_or_default(),
            config.int_setting("port").unwrap_or_default(),
            config.bool_setting("useHttps").unwrap_or_default()
        ),
        Err(errors) => errors,
    };
    assert_eq!(rendered, expected, "host {host:?}");
}

#[test]
fn host_is_normalised_into_host_port_and_scheme() {
    check("https://VC.example:8443", "vc.example 8443 true");
    check("http://10.0.0.1", "10.0.0.1 443 false");
    check("vc.example:8443", "vc.example 8443 true");
    check("[FE80::1]:443", "fe80::1 443 true");
    check("fe80::1", "fe80::1 443 true");
    check("[::1]", "::1 443 true");
    check("https://vc.example/sdk", "vc.example 443 true");
    check(
        "https://root:secret@vc.example",
        "host: must not contain a user name or password: use the username and password fields",
    );
    check("https://vc.example/ui", "host: must not contain a path: give only the host name, optionally with scheme and port (the /sdk path is added automatically)");
    check("vc.example?a=b", "host: must not contain a query (`?...`)");
    check("vc.example#x", "host: must not contain a fragment (`#...`)");
    check(
        "ftp://vc.example",
        "host: must use the https:// or http:// scheme (or none)",
    );
    check(
        "vc.example:99999",
        "host: has an invalid port: use a number between 1 and 65535",
    );
}

#[test]
fn fingerprint_and_ca_are_checked() {
    let body = with(
        draft("vc.example", 443),
        "fingerprint",
        json!(format!("sha256:{}", "AB:".repeat(31) + "AB")),
    );
    assert_eq!(
        validate(&body).unwrap().str_setting("fingerprint"),
        Some("ab".repeat(32).as_str())
    );
    let body = with(draft("vc.example", 443), "fingerprint", json!("abc"));
    assert!(validate(&body).unwrap_err().starts_with("fingerprint: "));
    let body = with(
        draft("vc.example", 443),
        "caCertificate",
        json!("not a certificate"),
    );
    assert!(validate(&body)
        .unwrap_err()
        .starts_with("caCertificate: must contain at least one PEM certificate"));
}

#[tokio::test]
async fn invalid_stored_config_fails_the_test_as_invalid_config() {
    let mut config = config(&draft("vc.example", 443));
    config
        .settings
        .insert("host".into(), json!("http://user:pw@vc.example/x"));
    let error = VsphereProvider::default()
        .test(&config, &TestContext::default())
        .await
        .unwrap_err();
    assert_eq!(error.category, FailureCategory::InvalidConfig);
}

proptest! {
    #[test]
    fn validation_is_idempotent(
        scheme in prop_oneof![Just(""), Just("https://"), Just("http://")],
        host in prop_oneof!["[a-zA-Z0-9]{1,10}(\\.[a-zA-Z0-9]{1,10}){0,3}", any::<std::net::Ipv6Addr>().prop_map(|ip| format!("[{ip}]")), any::<std::net::Ipv4Addr>().prop_map(|ip| ip.to_string())],
        port in prop::option::of(1u16..),
        tail in prop_oneof![Just(""), Just("/"), Just("/sdk")],
    ) {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let input = format!("{scheme}{host}{port}{tail}");
        let Ok(once) = validate(&draft(&input, 443)) else { return Ok(()) };
        let mut twice = once.clone();
        prop_assert!(VsphereProvider::default().validate(&mut twice).is_ok());
        prop_assert_eq!(twice, once);
    }
}
