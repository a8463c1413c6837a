use super::*;
use crate::descriptor::DESCRIPTOR;
use proptest::prelude::*;
use serde_json::json;

/// A self-signed test CA (P-256), valid until 2126.
const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBhjCCAS2gAwIBAgIUUSg8Gi9hojNFD+2TtuAFoUphyNEwCgYIKoZIzj0EAwIw
GDEWMBQGA1UEAwwNUHlsb24gVGVzdCBDQTAgFw0yNjExMjQxMjU3NTBaGA8yMTI2
MTAzMTEyNTc1MFowGDEWMBQGA1UEAwwNUHlsb24gVGVzdCBDQTBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABOmjHmryjtzA8TcF53IInsmkguW8gvewqaNCTuK6dUT1
axBgxIFYrJlL/PPJy2DmFtMNDA3HZLl/TGp7R8n5aQyjUzBRMB0GA1UdDgQWBBSo
/Pa3aQoQR23hvur3WqGezuOSajAfBgNVHSMEGDAWgBSo/Pa3aQoQR23hvur3WqGe
zuOSajAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIFM47NjPz0nf
+MNU0nhC5AUyFKGe5k2lRjf80vPVqICPAiAC66qnWpx6KRelWjyIslROpkJzGQ0Y
syaHdxpSEYbimQ==
-----END CERTIFICATE-----
";

/// Renders `parse_host` for comparison: `host [port] [scheme]` or `error: <message>`.
fn render_host(input: &str) -> String {
    match parse_host(input) {
        Ok(parts) => {
            let mut out = parts.host;
            if let Some(port) = parts.port {
                out.push_str(&format!(" port={port}"));
            }
            match parts.scheme {
                Some(Scheme::Https) => out.push_str(" https"),
                Some(Scheme::Http) => out.push_str(" http"),
                None => {}
            }
            out
        }
        Err(error) => format!("error: {error:?}"),
    }
}

fn check_host(input: &str, expected: &str) {
    assert_eq!(render_host(input), expected, "host input {input:?}");
}

#[test]
fn host_forms() {
    check_host("vc.example", "vc.example");
    check_host("VC.Example.COM", "vc.example.com");
    check_host("vc.example.", "vc.example");
    check_host("https://vc.example:8443", "vc.example port=8443 https");
    check_host("HTTPS://VC.example", "vc.example https");
    check_host("http://10.0.0.1", "10.0.0.1 http");
    check_host("vc.example:8443", "vc.example port=8443");
    check_host("https://vc.example/", "vc.example https");
    check_host("https://vc.example:443/sdk", "vc.example port=443 https");
    check_host("[fe80::1]:443", "fe80::1 port=443");
    check_host("fe80::1", "fe80::1");
    check_host("[::1]", "::1");
    check_host("FE80:0:0:0:0:0:0:1", "fe80::1");
    check_host(
        "https://[2001:DB8::10]:9443/sdk",
        "2001:db8::10 port=9443 https",
    );
    check_host("vc_internal.corp", "vc_internal.corp");
}

#[test]
fn host_rejections_are_specific() {
    check_host("", "error: Empty");
    check_host("https://", "error: Empty");
    check_host("vc example", "error: Whitespace");
    check_host("ftp://vc.example", "error: UnsupportedScheme");
    check_host("https://admin:hunter2@vc.example", "error: UserInfo");
    check_host("admin@vc.example", "error: UserInfo");
    check_host("https://vc.example/ui", "error: Path");
    check_host("vc.example/sdk/extra", "error: Path");
    check_host("vc.example/x://y", "error: Path");
    check_host("vc.example?x=1", "error: Query");
    check_host("https://vc.example/sdk?x=1", "error: Query");
    check_host("vc.example#top", "error: Fragment");
    check_host("vc.example:0", "error: InvalidPort");
    check_host("vc.example:65536", "error: InvalidPort");
    check_host("vc.example:http", "error: InvalidPort");
    check_host("vc.example:", "error: InvalidPort");
    check_host("[fe80::1", "error: InvalidIpv6");
    check_host("[vc.example]:443", "error: InvalidIpv6");
    check_host("fe80::1%eth0", "error: InvalidIpv6");
    check_host("[fe80::1]x", "error: InvalidIpv6");
    check_host("999.1.1.1", "error: InvalidIpv4");
    check_host("010.0.0.1", "error: InvalidIpv4");
    check_host("vcénter.example", "error: NonAscii");
    check_host("-vc.example", "error: InvalidName");
    check_host("vc..example", "error: InvalidName");
    check_host("vc!.example", "error: InvalidName");
    check_host(&format!("{}.example", "a".repeat(64)), "error: InvalidName");
}

fn draft(body: serde_json::Value) -> Result<ConnectionConfig, FieldErrors> {
    let mut config = pylon_core::draft::apply_draft(&DESCRIPTOR, None, &body)?;
    normalize(&mut config)?;
    Ok(config)
}

fn base_draft() -> serde_json::Value {
    json!({"name": "vc", "host": "vc.example", "username": "pylon@vsphere.local", "password": "pw-Secret-123"})
}

fn with(field: &str, value: serde_json::Value) -> serde_json::Value {
    let mut body = base_draft();
    body[field] = value;
    body
}

#[test]
fn scheme_and_port_move_into_their_fields() {
    let config = draft(with("host", json!("http://VC.example:8080/"))).unwrap();
    assert_eq!(config.str_setting(FIELD_HOST), Some("vc.example"));
    assert_eq!(config.int_setting(FIELD_PORT), Some(8080));
    assert_eq!(config.bool_setting(FIELD_USE_HTTPS), Some(false));

    // Without a scheme or port in `host`, the explicit fields (or defaults) stay.
    let config = draft(
        json!({"name": "vc", "host": "vc.example", "port": 9443, "useHttps": false,
        "username": "u", "password": "p"}),
    )
    .unwrap();
    assert_eq!(config.int_setting(FIELD_PORT), Some(9443));
    assert_eq!(config.bool_setting(FIELD_USE_HTTPS), Some(false));
    let config = draft(base_draft()).unwrap();
    assert_eq!(config.int_setting(FIELD_PORT), Some(443));
    assert_eq!(config.bool_setting(FIELD_USE_HTTPS), Some(true));
}

#[test]
fn field_errors_name_the_field_and_never_echo_the_value() {
    let errors = draft(with("host", json!("https://admin:hunter2@vc.example"))).unwrap_err();
    let message = errors.get(FIELD_HOST).unwrap();
    assert!(message.contains("user name or password"), "{message}");
    assert!(!errors.to_string().contains("hunter2"), "{errors}");

    let errors = draft(with("fingerprint", json!("not-a-fingerprint-hunter2"))).unwrap_err();
    assert!(errors.contains(FIELD_FINGERPRINT));
    assert!(!errors.to_string().contains("hunter2"), "{errors}");
}

fn check_fingerprint(input: &str, expected: &str) {
    let rendered = match normalize_fingerprint(input) {
        Ok(canonical) => canonical,
        Err(message) => format!("error: {message}"),
    };
    assert_eq!(rendered, expected, "fingerprint input {input:?}");
}

#[test]
fn fingerprint_forms() {
    let canonical = "ab".repeat(32);
    check_fingerprint(&canonical, &canonical);
    check_fingerprint(&"AB".repeat(32), &canonical);
    check_fingerprint(&format!("sha256:{}", "AB".repeat(32)), &canonical);
    check_fingerprint(&format!("SHA256:{}", "ab".repeat(32)), &canonical);
    let colons = vec!["AB"; 32].join(":");
    check_fingerprint(&colons, &canonical);
    check_fingerprint(&format!("SHA256:{colons}"), &canonical);
    check_fingerprint(&vec!["ab"; 32].join(" "), &canonical);
    check_fingerprint(
        &"ab".repeat(20),
        "error: looks like a SHA-1 thumbprint (40 hexadecimal digits); give the SHA-256 \
         fingerprint (64 hexadecimal digits) instead",
    );
    check_fingerprint(
        &"ab".repeat(31),
        "error: must be a SHA-256 fingerprint of 64 hexadecimal digits (found 62)",
    );
    check_fingerprint(
        &"zz".repeat(32),
        "error: must be a SHA-256 fingerprint: 64 hexadecimal digits, optionally prefixed \
         with `sha256:` and separated by colons",
    );
    check_fingerprint(
        &format!("md5:{}", "ab".repeat(32)),
        "error: must be a SHA-256 fingerprint: 64 hexadecimal digits, optionally prefixed \
         with `sha256:` and separated by colons",
    );
}

#[test]
fn ca_certificate_must_hold_a_certificate() {
    assert_eq!(parse_ca_certificates(TEST_CA_PEM).unwrap().len(), 1);
    let bundle = format!("{TEST_CA_PEM}\n{TEST_CA_PEM}");
    assert_eq!(parse_ca_certificates(&bundle).unwrap().len(), 2);

    let check_error = |pem: &str, expected: &str| {
        let message = parse_ca_certificates(pem).unwrap_err();
        assert!(message.contains(expected), "{pem:?}: {message}");
    };
    check_error("garbage", "at least one PEM certificate");
    check_error(
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
        "at least one PEM certificate",
    );
    check_error(
        "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n",
        "not valid PEM",
    );
    check_error(
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        "not a valid X.509 certificate",
    );

    let errors = draft(with("caCertificate", json!("garbage"))).unwrap_err();
    assert!(errors.contains(FIELD_CA_CERTIFICATE));
}

fn target(body: serde_json::Value) -> VsphereTarget {
    VsphereTarget::from_config(&draft(body).unwrap()).unwrap()
}

#[test]
fn target_urls_bracket_ipv6() {
    let check = |host: &str, url: &str, address: &str| {
        let target = target(with("host", json!(host)));
        assert_eq!(target.endpoint_url(), url);
        assert_eq!(target.address(), address);
        assert!(url::Url::parse(&target.endpoint_url()).is_ok());
    };
    check("vc.example", "https://vc.example:443/sdk", "vc.example:443");
    check(
        "http://10.0.0.1:8080",
        "http://10.0.0.1:8080/sdk",
        "10.0.0.1:8080",
    );
    check("fe80::1", "https://[fe80::1]:443/sdk", "[fe80::1]:443");
    check("[::1]:9443", "https://[::1]:9443/sdk", "[::1]:9443");
}

#[test]
fn trust_policy_precedence() {
    let fingerprint = "cd".repeat(32);
    let check = |body: serde_json::Value, expected: &str| {
        assert_eq!(format!("{:?}", target(body).trust), expected);
    };
    check(base_draft(), "System");
    check(
        with("caCertificate", json!(TEST_CA_PEM)),
        "CustomCa(1 certificates)",
    );
    check(
        with("insecureSkipVerify", json!(true)),
        "InsecureSkipVerify",
    );
    let mut body = with("fingerprint", json!(fingerprint));
    body["insecureSkipVerify"] = json!(true);
    body["caCertificate"] = json!(TEST_CA_PEM);
    check(body, &format!("Pinned({fingerprint})"));
    let mut body = with("insecureSkipVerify", json!(true));
    body["caCertificate"] = json!(TEST_CA_PEM);
    check(body, "InsecureSkipVerify");
}

#[test]
fn target_debug_hides_credentials() {
    let target = target(base_draft());
    let debug = format!("{target:?}");
    assert!(!debug.contains("pw-Secret-123"), "{debug}");
    assert!(!debug.contains("pylon@vsphere.local"), "{debug}");
    assert!(debug.contains("vc.example"), "{debug}");
}

#[test]
fn unvalidated_config_is_invalid_config_not_a_panic() {
    let mut config = draft(base_draft()).unwrap();
    config
        .settings
        .insert(FIELD_HOST.into(), json!("https://u:pw@vc"));
    let error = VsphereTarget::from_config(&config).unwrap_err();
    assert_eq!(error.category, FailureCategory::InvalidConfig);
    assert!(error.message.contains("host"), "{}", error.message);

    config.settings.remove(FIELD_HOST);
    config.secrets.clear();
    let error = VsphereTarget::from_config(&config).unwrap_err();
    assert!(
        error.message.contains("host: is required"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("password: is required"),
        "{}",
        error.message
    );
}

/// Host inputs in every accepted shape, with random case.
fn host_input() -> impl Strategy<Value = String> {
    let label = "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?";
    let dns = prop::collection::vec(label, 1..4)
        .prop_map(|labels| format!("{}.example", labels.join(".")));
    let ipv4 = any::<[u8; 4]>().prop_map(|o| format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3]));
    let ipv6 = any::<[u16; 8]>().prop_map(|s| Ipv6Addr::from(s).to_string());
    let host = prop_oneof![dns, ipv4, ipv6.clone()];
    (
        prop_oneof![
            Just(""),
            Just("https://"),
            Just("http://"),
            Just("HTTPS://")
        ],
        prop_oneof![host.prop_map(|h| (h, false)), ipv6.prop_map(|h| (h, true))],
        prop::option::of(1u16..=65535),
        prop_oneof![Just(""), Just("/"), Just("/sdk")],
        any::<bool>(),
    )
        .prop_map(|(scheme, (host, force_brackets), port, tail, upper)| {
            let is_ipv6 = host.contains(':');
            let host = if upper { host.to_uppercase() } else { host };
            let authority = match (is_ipv6, force_brackets || port.is_some()) {
                (true, true) => format!("[{host}]"),
                _ => host,
            };
            let authority = match port {
                Some(port) => format!("{authority}:{port}"),
                None => authority,
            };
            // A path needs something before it that is clearly an authority.
            let tail = if is_ipv6 && !authority.starts_with('[') {
                ""
            } else {
                tail
            };
            format!("{scheme}{authority}{tail}")
        })
}

proptest! {
    #[test]
    fn accepted_hosts_normalise_idempotently(input in host_input()) {
        let first = parse_host(&input).map_err(|e| TestCaseError::fail(format!("{input}: {e}")))?;
        let again = parse_host(&first.host).map_err(|e| TestCaseError::fail(format!("{}: {e}", first.host)))?;
        prop_assert_eq!(&again.host, &first.host);
        prop_assert_eq!(again.port, None);
        prop_assert_eq!(again.scheme, None);
        prop_assert!(!first.host.starts_with('['));
        prop_assert_eq!(first.host.to_lowercase(), first.host.clone());
    }

    #[test]
    fn normalising_a_config_twice_changes_nothing(input in prop_oneof![host_input(), "\\PC{0,40}"]) {
        let mut config = match pylon_core::draft::apply_draft(&DESCRIPTOR, None, &with("host", json!(input))) {
            Ok(config) => config,
            Err(_) => return Ok(()),
        };
        if normalize(&mut config).is_err() {
            return Ok(());
        }
        let once = config.clone();
        prop_assert!(normalize(&mut config).is_ok());
        prop_assert_eq!(config, once);
    }

    #[test]
    fn fingerprints_normalise_idempotently(bytes in any::<[u8; 32]>(), upper: bool, colons: bool, prefix: bool) {
        let hex = hex::encode(bytes);
        let mut input = if upper { hex.to_uppercase() } else { hex.clone() };
        if colons {
            input = input.as_bytes().chunks(2).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(":");
        }
        if prefix {
            input = format!("sha256:{input}");
        }
        let canonical = normalize_fingerprint(&input).map_err(TestCaseError::fail)?;
        prop_assert_eq!(&canonical, &hex);
        prop_assert_eq!(normalize_fingerprint(&canonical), Ok(canonical.clone()));
    }

    #[test]
    fn host_errors_never_echo_the_input(secret in "[a-zA-Z0-9]{8,16}") {
        for input in [
            format!("https://admin:{secret}@vc.example"),
            format!("vc.example/{secret}"),
            format!("vc.example?{secret}"),
            format!("vc.example#{secret}"),
            format!("{secret}://vc.example"),
        ] {
            let error = parse_host(&input).err().map(|e| e.to_string()).unwrap_or_default();
            prop_assert!(!error.is_empty(), "{} was accepted", input);
            prop_assert!(!error.contains(&secret), "{}", error);
        }
    }
}
