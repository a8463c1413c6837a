//! `Provider::test` against the simulator and failing targets: one test per outcome an admin
//! can meet, each checking the category and the key words of the message.

use crate::support::*;
use pylon_core::{FailureCategory, InventoryCounts};
use pylon_vcsim::{
    closed_port, FaultProxy, FaultResponse, FaultRule, HttpServer, HungServer, Mode, Simulator,
    SimulatorOptions,
};
use serde_json::json;
use std::time::Duration;

/// The version govmomi's simulator reports.
const SIM_VERSION: &str = "6.5.0";

async fn sim() -> Simulator {
    Simulator::start(SimulatorOptions::default()).await
}

fn success(sim: &Simulator) -> Expect<'static> {
    Expect::Success {
        product_contains: "vCenter",
        version: SIM_VERSION,
        counts: sim_counts(sim),
    }
}

#[tokio::test]
async fn good_login_with_custom_ca_reports_identity_and_counts() {
    let sim = sim().await;
    assert_eq!(sim.inventory().api_type, "VirtualCenter");
    check(
        &with(sim_draft(&sim), "caCertificate", json!(sim.ca_pem())),
        success(&sim),
    )
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn counts_follow_a_larger_inventory() {
    let sim = Simulator::start(SimulatorOptions {
        datacenters: Some(2),
        clusters: Some(2),
        hosts_per_cluster: Some(2),
        vms: Some(3),
        datastores: Some(2),
        ..SimulatorOptions::default()
    })
    .await;
    let counts = sim_counts(&sim);
    assert!(
        counts.agents > 4 && counts.vms > 4 && counts.storage > 1,
        "{counts:?}"
    );
    check(
        &with(sim_draft(&sim), "caCertificate", json!(sim.ca_pem())),
        success(&sim),
    )
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn wrong_password_is_auth() {
    let sim = Simulator::start(SimulatorOptions {
        credentials: Some(("pylon@vsphere.local".into(), "the-right-one".into())),
        ..SimulatorOptions::default()
    })
    .await;
    let body = with(sim_draft(&sim), "caCertificate", json!(sim.ca_pem()));
    check(
        &body,
        Expect::Failure {
            category: FailureCategory::Auth,
            contains: &["127.0.0.1:", "user name or password"],
        },
    )
    .await;
    check(
        &with(body, "password", json!("the-right-one")),
        success(&sim),
    )
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn untrusted_certificate_is_tls_with_the_presented_fingerprint() {
    let sim = sim().await;
    let fingerprint = sim.leaf_sha256().to_owned();
    check(
        &sim_draft(&sim),
        Expect::Failure {
            category: FailureCategory::Tls,
            contains: &[
                "not trusted (unknown issuer)",
                &format!("127.0.0.1:{}", sim.port()),
                &format!("fingerprint is {fingerprint}"),
                "`fingerprint`",
                "`caCertificate`",
                "insecureSkipVerify",
            ],
        },
    )
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn pinned_fingerprint_in_display_form_is_trusted() {
    let sim = sim().await;
    let pin = display_fingerprint(sim.leaf_sha256());
    assert!(pin.starts_with("SHA256:") && pin.contains(':'), "{pin}");
    check(
        &with(sim_draft(&sim), "fingerprint", json!(pin)),
        success(&sim),
    )
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn pin_mismatch_is_tls_naming_both_fingerprints() {
    let sim = sim().await;
    let pinned = "0".repeat(64);
    // Even with the right CA (and insecureSkipVerify) a pin must match: it takes precedence.
    let body = with(sim_draft(&sim), "fingerprint", json!(pinned));
    let body = with(body, "caCertificate", json!(sim.ca_pem()));
    let body = with(body, "insecureSkipVerify", json!(true));
    check(
        &body,
        Expect::Failure {
            category: FailureCategory::Tls,
            contains: &[
                "does not match the pinned fingerprint",
                &pinned,
                &format!("presented SHA-256 is {}", sim.leaf_sha256()),
            ],
        },
    )
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn custom_ca_with_a_name_the_certificate_lacks_is_a_hostname_mismatch() {
    let sim = sim().await;
    let body = with(
        draft("localhost", sim.port()),
        "caCertificate",
        json!(sim.ca_pem()),
    );
    check(
        &body,
        Expect::Failure {
            category: FailureCategory::Tls,
            contains: &[
                "hostname mismatch",
                "`localhost`",
                "127.0.0.1",
                sim.leaf_sha256(),
            ],
        },
    )
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn insecure_skip_verify_accepts_the_certificate() {
    let sim = sim().await;
    check(
        &with(sim_draft(&sim), "insecureSkipVerify", json!(true)),
        success(&sim),
    )
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn scheme_and_port_in_host_are_honoured() {
    let sim = sim().await;
    let body = with(
        draft(&format!("HTTPS://127.0.0.1:{}/sdk", sim.port()), 1),
        "insecureSkipVerify",
        json!(true),
    );
    check(&body, success(&sim)).await;
    sim.stop().await;
}

#[tokio::test]
async fn closed_port_is_network() {
    let port = closed_port().await;
    check(
        &draft("127.0.0.1", port),
        Expect::Failure {
            category: FailureCategory::Network,
            contains: &[&format!("127.0.0.1:{port} refused the connection")],
        },
    )
    .await;
}

#[tokio::test]
async fn html_page_is_endpoint() {
    let server = HttpServer::start(
        200,
        "text/html; charset=utf-8",
        "<!DOCTYPE html><html><body><h1>Welcome</h1></body></html>",
    )
    .await;
    let body = with(draft("127.0.0.1", server.port()), "useHttps", json!(false));
    check(
        &body,
        Expect::Failure {
            category: FailureCategory::Endpoint,
            contains: &["HTTP 200 OK", "web page", "not the vSphere API"],
        },
    )
    .await;
}

#[tokio::test]
async fn not_found_is_endpoint() {
    let server = HttpServer::start(404, "text/plain; charset=utf-8", "404 page not found").await;
    let body = with(draft("127.0.0.1", server.port()), "useHttps", json!(false));
    check(
        &body,
        Expect::Failure {
            category: FailureCategory::Endpoint,
            contains: &["HTTP 404 Not Found", "not the vSphere API"],
        },
    )
    .await;
}

#[tokio::test]
async fn plain_http_server_on_https_is_endpoint() {
    let server = HttpServer::start(200, "text/html", "<html></html>").await;
    check(
        &draft("127.0.0.1", server.port()),
        Expect::Failure {
            category: FailureCategory::Endpoint,
            contains: &["did not answer with TLS", "useHttps"],
        },
    )
    .await;
}

#[tokio::test]
async fn hung_server_is_timeout_within_the_deadline() {
    let server = HungServer::start().await;
    let timeout = Duration::from_millis(1500);
    let elapsed = check_within(
        &draft("127.0.0.1", server.port()),
        timeout,
        Expect::Failure {
            category: FailureCategory::Timeout,
            contains: &[&format!("127.0.0.1:{}", server.port()), "connecting"],
        },
    )
    .await;
    assert!(
        elapsed < timeout + Duration::from_secs(1),
        "took {elapsed:?} for a {timeout:?} deadline"
    );
}

#[tokio::test]
async fn slow_inventory_is_timeout_and_still_logs_out() {
    let sim = Simulator::start(SimulatorOptions {
        method_delay: vec![("RetrievePropertiesEx".into(), 3000)],
        ..SimulatorOptions::default()
    })
    .await;
    let proxy = FaultProxy::start(&sim, no_fault()).await;
    let timeout = Duration::from_secs(2);
    let elapsed = check_within(
        &proxy_draft(&proxy),
        timeout,
        Expect::Failure {
            category: FailureCategory::Timeout,
            contains: &["reading the inventory"],
        },
    )
    .await;
    assert!(
        elapsed < timeout + Duration::from_secs(3),
        "took {elapsed:?}"
    );
    assert_eq!(
        proxy.requests().last().map(String::as_str),
        Some("Logout"),
        "{:?}",
        proxy.requests()
    );
    sim.stop().await;
}

#[tokio::test]
async fn direct_esxi_host_is_unsupported() {
    let sim = Simulator::start(SimulatorOptions {
        mode: Mode::Esx,
        ..SimulatorOptions::default()
    })
    .await;
    assert_eq!(sim.inventory().api_type, "HostAgent");
    check(
        &with(sim_draft(&sim), "caCertificate", json!(sim.ca_pem())),
        Expect::Failure {
            category: FailureCategory::Unsupported,
            contains: &[
                "direct ESXi host",
                "vCenter Server only",
                "connect to the vCenter that manages it",
            ],
        },
    )
    .await;
    sim.stop().await;
}

/// A rule for a method never called, so the proxy forwards everything.
fn no_fault() -> FaultRule {
    FaultRule {
        method: "NoSuchMethod".into(),
        response: FaultResponse::HttpStatus(500, String::new()),
    }
}

fn proxy_draft(proxy: &FaultProxy) -> serde_json::Value {
    with(draft("127.0.0.1", proxy.port()), "useHttps", json!(false))
}

/// The calls a successful test makes: anonymous bootstrap, login, one view per counted
/// type, one property read for all of them, cleanup, logout. Never one call per object.
const TEST_CALLS: [&str; 10] = [
    "RetrieveServiceContent",
    "Login",
    "CreateContainerView",
    "CreateContainerView",
    "CreateContainerView",
    "RetrievePropertiesEx",
    "DestroyView",
    "DestroyView",
    "DestroyView",
    "Logout",
];

#[tokio::test]
async fn plain_http_test_makes_bulk_calls_and_logs_out() {
    let sim = sim().await;
    let proxy = FaultProxy::start(&sim, no_fault()).await;
    check(&proxy_draft(&proxy), success(&sim)).await;
    assert_eq!(proxy.requests(), TEST_CALLS);
    sim.stop().await;
}

#[tokio::test]
async fn missing_privilege_is_permission_and_still_logs_out() {
    let sim = sim().await;
    let proxy = FaultProxy::start(
        &sim,
        FaultRule {
            method: "CreateContainerView".into(),
            response: FaultResponse::NoPermission {
                privilege: "System.View".into(),
            },
        },
    )
    .await;
    check(
        &proxy_draft(&proxy),
        Expect::Failure {
            category: FailureCategory::Permission,
            contains: &[
                "`System.View`",
                "`group-d1` (Folder)",
                "CreateContainerView",
                "Read-only",
            ],
        },
    )
    .await;
    let requests = proxy.requests();
    assert_eq!(
        requests.last().map(String::as_str),
        Some("Logout"),
        "{requests:?}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn garbage_answer_is_protocol_and_still_logs_out() {
    let sim = sim().await;
    let proxy = FaultProxy::start(
        &sim,
        FaultRule {
            method: "RetrievePropertiesEx".into(),
            response: FaultResponse::Garbage("<soapenv:Envelope><not-closed".into()),
        },
    )
    .await;
    check(
        &proxy_draft(&proxy),
        Expect::Failure {
            category: FailureCategory::Protocol,
            contains: &["RetrievePropertiesEx", "cannot read"],
        },
    )
    .await;
    // The views created before the failure are destroyed, then the session ends.
    let requests = proxy.requests();
    assert_eq!(
        &requests[requests.len() - 4..],
        &TEST_CALLS[6..],
        "{requests:?}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn html_error_page_mid_session_is_endpoint() {
    let sim = sim().await;
    let proxy = FaultProxy::start(
        &sim,
        FaultRule {
            method: "RetrievePropertiesEx".into(),
            response: FaultResponse::HttpStatus(502, "Bad Gateway".into()),
        },
    )
    .await;
    check(
        &proxy_draft(&proxy),
        Expect::Failure {
            category: FailureCategory::Endpoint,
            contains: &["HTTP 502 Bad Gateway", "RetrievePropertiesEx"],
        },
    )
    .await;
    sim.stop().await;
}

#[tokio::test]
async fn counts_are_zero_for_an_empty_vcenter() {
    let sim = Simulator::start(SimulatorOptions {
        datacenters: Some(1),
        clusters: Some(0),
        standalone_hosts: Some(0),
        vms: Some(0),
        datastores: Some(0),
        ..SimulatorOptions::default()
    })
    .await;
    let expected = sim_counts(&sim);
    assert_eq!(
        expected,
        InventoryCounts::default(),
        "{:?}",
        sim.inventory()
    );
    check(
        &with(sim_draft(&sim), "insecureSkipVerify", json!(true)),
        success(&sim),
    )
    .await;
    sim.stop().await;
}
