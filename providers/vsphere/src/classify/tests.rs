use super::*;
use crate::config::TrustPolicy;
use rustls::CertificateError;
use std::sync::Arc;

const PASSWORD: &str = "pw-Secret-123";

fn target() -> VsphereTarget {
    VsphereTarget {
        host: "vc.example".into(),
        port: 443,
        use_https: true,
        username: "pylon@vsphere.local".into(),
        password: SecretString::new(PASSWORD),
        trust: TrustPolicy::System,
    }
}

/// Classifies `error` and checks the category and that the message contains each fragment.
fn check(error: SessionError, category: FailureCategory, fragments: &[&str]) {
    let classified = classify(&error, &target());
    assert_eq!(classified.category, category, "{}", classified.message);
    for fragment in fragments {
        assert!(
            classified.message.contains(fragment),
            "expected {fragment:?} in {:?}",
            classified.message
        );
    }
    assert!(!classified.message.contains(PASSWORD));
}

fn fault(kind: StructType, extra: &[(&str, miniserde::json::Value)]) -> SessionError {
    SessionError::Fault {
        stage: Stage::Inventory,
        method: "CreateContainerView",
        fault: Arc::new(MethodFault {
            fault_cause: None,
            fault_message: None,
            type_: Some(kind),
            extra_fields_: extra
                .iter()
                .map(|(key, value)| ((*key).to_owned(), value.clone()))
                .collect(),
        }),
    }
}

fn string(value: &str) -> miniserde::json::Value {
    miniserde::json::Value::String(value.into())
}

#[test]
fn faults_by_type() {
    check(
        fault(StructType::InvalidLogin, &[]),
        FailureCategory::Auth,
        &["vc.example:443", "user name or password"],
    );
    check(
        fault(StructType::PasswordExpired, &[]),
        FailureCategory::Auth,
        &["expired"],
    );
    check(
        fault(StructType::NotAuthenticated, &[]),
        FailureCategory::Auth,
        &["NotAuthenticated"],
    );
    let mut object = miniserde::json::Object::new();
    object.insert("@type".into(), string("Folder"));
    object.insert("#text".into(), string("group-d1"));
    check(
        fault(
            StructType::NoPermission,
            &[
                ("privilegeId", string("System.View")),
                ("object", miniserde::json::Value::Object(object)),
            ],
        ),
        FailureCategory::Permission,
        &[
            "`System.View`",
            "`group-d1` (Folder)",
            "CreateContainerView",
            "Read-only",
        ],
    );
    check(
        fault(StructType::NoPermission, &[]),
        FailureCategory::Permission,
        &["a required privilege"],
    );
    check(
        fault(StructType::InvalidArgument, &[]),
        FailureCategory::Protocol,
        &[
            "unexpected fault InvalidArgument",
            "CreateContainerView",
            "reading the inventory",
        ],
    );
}

fn answer(status: u16, content_type: Option<&str>, soap_envelope: bool) -> HttpAnswer {
    HttpAnswer {
        status,
        content_type: content_type.map(str::to_owned),
        soap_envelope,
    }
}

#[test]
fn answers_that_are_not_vsphere_are_endpoint_failures() {
    check(
        SessionError::NotVsphere {
            answer: answer(200, Some("text/html; charset=utf-8"), false),
        },
        FailureCategory::Endpoint,
        &[
            "vc.example:443",
            "HTTP 200 OK",
            "web page",
            "not the vSphere API",
        ],
    );
    check(
        SessionError::NotVsphere {
            answer: answer(404, Some("text/plain"), false),
        },
        FailureCategory::Endpoint,
        &["HTTP 404 Not Found", "https://vc.example:443/sdk"],
    );
    check(
        SessionError::NotVsphere {
            answer: answer(500, Some("text/xml"), true),
        },
        FailureCategory::Endpoint,
        &["not a vSphere ServiceContent"],
    );
    check(
        SessionError::HttpFailure {
            stage: Stage::Inventory,
            method: "RetrievePropertiesEx",
            answer: answer(502, Some("text/html"), false),
        },
        FailureCategory::Endpoint,
        &["HTTP 502 Bad Gateway", "RetrievePropertiesEx"],
    );
    check(
        SessionError::HttpFailure {
            stage: Stage::Login,
            method: "Login",
            answer: answer(500, Some("text/xml"), true),
        },
        FailureCategory::Protocol,
        &["not a vSphere fault"],
    );
    check(
        SessionError::Malformed {
            stage: Stage::Inventory,
            method: "RetrievePropertiesEx",
        },
        FailureCategory::Protocol,
        &["cannot read", "RetrievePropertiesEx"],
    );
}

#[test]
fn kinds_and_versions_that_are_not_supported() {
    check(
        SessionError::NotVcenter {
            api_type: "HostAgent".into(),
            product: "VMware ESXi 6.5.0".into(),
        },
        FailureCategory::Unsupported,
        &[
            "direct ESXi host",
            "vCenter Server only",
            "connect to the vCenter that manages it",
        ],
    );
    check(
        SessionError::NotVcenter {
            api_type: "Other".into(),
            product: "X".into(),
        },
        FailureCategory::Unsupported,
        &["`Other`", "vCenter Server only"],
    );
    check(
        SessionError::ApiTooOld {
            api_version: "6.0".into(),
        },
        FailureCategory::Unsupported,
        &["vSphere API 6.0", "6.5"],
    );
    check(
        SessionError::UnreadableApiVersion,
        FailureCategory::Protocol,
        &["API version"],
    );
    check(
        SessionError::TimedOut {
            stage: Stage::Login,
            after: Duration::from_millis(1500),
        },
        FailureCategory::Timeout,
        &["vc.example:443", "1.5 s", "logging in"],
    );
    check(
        SessionError::Setup("TLS configuration: bad".into()),
        FailureCategory::InvalidConfig,
        &["TLS configuration"],
    );
}

fn check_tls(
    rejection: Option<TlsRejection>,
    error: rustls::Error,
    category: FailureCategory,
    fragments: &[&str],
) {
    let observed = TlsObservation {
        leaf_sha256: Some("ab".repeat(32)),
        rejection,
    };
    let (got, message) = describe_tls(&error, &observed, &target());
    assert_eq!(got, category, "{message}");
    for fragment in fragments {
        assert!(
            message.contains(fragment),
            "expected {fragment:?} in {message:?}"
        );
    }
}

#[test]
fn tls_failures_say_why_and_show_the_fingerprint() {
    let fingerprint = "ab".repeat(32);
    let invalid = |e| rustls::Error::InvalidCertificate(e);
    check_tls(
        Some(TlsRejection::UnknownIssuer),
        invalid(CertificateError::UnknownIssuer),
        FailureCategory::Tls,
        &[
            "not trusted (unknown issuer)",
            &fingerprint,
            "`fingerprint`",
            "`caCertificate`",
            "insecureSkipVerify",
        ],
    );
    check_tls(
        Some(TlsRejection::HostnameMismatch {
            presented: vec!["127.0.0.1".into()],
        }),
        invalid(CertificateError::NotValidForName),
        FailureCategory::Tls,
        &[
            "hostname mismatch",
            "`vc.example`",
            "127.0.0.1",
            &fingerprint,
        ],
    );
    check_tls(
        Some(TlsRejection::PinMismatch {
            pinned: "cd".repeat(32),
        }),
        invalid(CertificateError::ApplicationVerificationFailure),
        FailureCategory::Tls,
        &[
            "does not match the pinned fingerprint",
            &"cd".repeat(32),
            &format!("presented SHA-256 is {fingerprint}"),
        ],
    );
    check_tls(
        Some(TlsRejection::Expired),
        invalid(CertificateError::Expired),
        FailureCategory::Tls,
        &["expired"],
    );
    check_tls(
        None,
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
        FailureCategory::Endpoint,
        &["did not answer with TLS", "useHttps"],
    );
    check_tls(
        None,
        rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
        FailureCategory::Tls,
        &["handshake with vc.example:443 failed"],
    );
}

#[test]
fn password_is_scrubbed_from_any_message() {
    assert_eq!(
        scrub(
            format!("server said {PASSWORD}!"),
            &SecretString::new(PASSWORD)
        ),
        "server said ********!"
    );
    assert_eq!(scrub("nothing".into(), &SecretString::new("")), "nothing");
}

#[tokio::test]
async fn refused_connections_are_network_failures() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let error = reqwest::Client::builder()
        .tls_backend_preconfigured(
            crate::tls::client_config(&TrustPolicy::InsecureSkipVerify)
                .unwrap()
                .0,
        )
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}/sdk"))
        .send()
        .await
        .unwrap_err();
    check(
        SessionError::Transport {
            stage: Stage::Connect,
            source: Arc::new(error),
            tls: TlsObservation::default(),
        },
        FailureCategory::Network,
        &["refused the connection", "port 443"],
    );
}
