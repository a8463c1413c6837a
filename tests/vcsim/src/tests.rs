//! Tests against the real simulator and the other targets.

use std::io::{Read, Write};
use std::net::TcpStream as StdTcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use rustls::pki_types::ServerName;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::*;

fn envelope(operation: &str, inner: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><{operation} xmlns="urn:vim25">{inner}</{operation}></soapenv:Body></soapenv:Envelope>"#
    )
}

fn retrieve_service_content() -> String {
    envelope(
        "RetrieveServiceContent",
        r#"<_this type="ServiceInstance">ServiceInstance</_this>"#,
    )
}

fn login(user: &str, password: &str) -> String {
    envelope(
        "Login",
        &format!(
            r#"<_this type="SessionManager">SessionManager</_this><userName>{user}</userName><password>{password}</password>"#
        ),
    )
}

fn current_time() -> String {
    envelope(
        "CurrentTime",
        r#"<_this type="ServiceInstance">ServiceInstance</_this>"#,
    )
}

fn retrieve_properties_ex() -> String {
    envelope(
        "RetrievePropertiesEx",
        r#"<_this type="PropertyCollector">propertyCollector</_this><specSet><propSet><type>Folder</type><pathSet>name</pathSet></propSet><objectSet><obj type="Folder">group-d1</obj></objectSet></specSet><options></options>"#,
    )
}

/// A client trusting `ca_pem`, or nothing (for plain HTTP).
fn client(ca_pem: Option<&str>) -> reqwest::Client {
    let tls = match ca_pem {
        Some(ca) => tls_config_trusting(ca),
        None => rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth(),
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .build()
        .expect("the test client builds")
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn post(client: &reqwest::Client, url: &str, body: String, cookie: Option<&str>) -> Reply {
    let mut request = client
        .post(url)
        .header(CONTENT_TYPE, "text/xml; charset=utf-8")
        .header("SOAPAction", "urn:vim25/6.5")
        .body(body);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e:?}"));
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.expect("a text body"),
    }
}

fn session_cookie(reply: &Reply) -> String {
    let set_cookie = reply
        .headers
        .get(SET_COOKIE)
        .unwrap_or_else(|| panic!("no Set-Cookie in the Login reply: {}", reply.body))
        .to_str()
        .expect("an ASCII cookie");
    set_cookie
        .split(';')
        .next()
        .expect("a cookie pair")
        .to_owned()
}

#[tokio::test]
async fn vpx_inventory_follows_the_flags() {
    let sim = Simulator::start(SimulatorOptions {
        datacenters: Some(2),
        clusters: Some(1),
        hosts_per_cluster: Some(2),
        standalone_hosts: Some(1),
        vms: Some(2),
        datastores: Some(2),
        ..SimulatorOptions::default()
    })
    .await;

    assert_eq!(sim.host(), "127.0.0.1");
    assert_eq!(sim.url(), format!("https://127.0.0.1:{}/sdk", sim.port()));
    assert!(sim.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(sim.leaf_sha256().len(), 64);
    assert!(sim
        .leaf_sha256()
        .chars()
        .all(|c| matches!(c, '0'..='9' | 'a'..='f')));

    // Per datacenter: 1 cluster of 2 hosts + 1 standalone host = 3 hosts; 2 VMs on the
    // standalone host and 2 in the cluster's root pool = 4 VMs; 2 datastores shared by
    // the datacenter's hosts.
    assert_eq!(
        *sim.inventory(),
        Inventory {
            datacenters: 2,
            clusters: 2,
            hosts: 6,
            vms: 8,
            datastores: 4,
            api_type: "VirtualCenter".into(),
        }
    );

    let port = sim.port();
    sim.stop().await;
    let refused = TcpStream::connect(("127.0.0.1", port)).await;
    assert!(refused.is_err(), "the simulator still listens after stop");
}

#[tokio::test]
async fn default_vpx_inventory_and_tls_with_the_test_ca() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    assert_eq!(
        *sim.inventory(),
        Inventory {
            datacenters: 1,
            clusters: 1,
            hosts: 4,
            vms: 4,
            datastores: 1,
            api_type: "VirtualCenter".into(),
        }
    );

    let config = Arc::new(tls_config_trusting(sim.ca_pem()));
    let port = sim.port();
    let leaf = tokio::task::spawn_blocking(move || {
        let server_name = ServerName::try_from("127.0.0.1").expect("an IP server name");
        let mut conn =
            rustls::ClientConnection::new(config, server_name).expect("a client connection");
        let mut sock = StdTcpStream::connect(("127.0.0.1", port)).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set a timeout");
        while conn.is_handshaking() {
            conn.complete_io(&mut sock)
                .unwrap_or_else(|e| panic!("the TLS handshake with the simulator failed: {e}"));
        }
        let certs = conn
            .peer_certificates()
            .expect("the server sent certificates");
        certs[0].as_ref().to_vec()
    })
    .await
    .expect("the TLS check ran");
    assert_eq!(hex::encode(Sha256::digest(&leaf)), sim.leaf_sha256());

    // The same through reqwest.
    let reply = post(
        &client(Some(sim.ca_pem())),
        sim.url(),
        retrieve_service_content(),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body.contains("<apiType>VirtualCenter</apiType>"));
}

#[tokio::test]
async fn sans_control_the_certificate_names() {
    let sim = Simulator::start(SimulatorOptions {
        sans: vec!["vcenter.test".into()],
        ..SimulatorOptions::default()
    })
    .await;
    let config = Arc::new(tls_config_trusting(sim.ca_pem()));
    let port = sim.port();
    let handshake = move |name: &'static str| {
        let config = config.clone();
        move || -> Result<(), rustls::Error> {
            let server_name = ServerName::try_from(name).expect("a server name");
            let mut conn = rustls::ClientConnection::new(config, server_name)?;
            let mut sock = StdTcpStream::connect(("127.0.0.1", port)).expect("connect");
            let mut tls = rustls::Stream::new(&mut conn, &mut sock);
            tls.write_all(b"GET /about HTTP/1.0\r\n\r\n").map_err(|e| {
                e.into_inner()
                    .and_then(|e| e.downcast::<rustls::Error>().ok())
                    .map_or(rustls::Error::General("io".into()), |e| *e)
            })?;
            let mut response = String::new();
            let _ = tls.read_to_string(&mut response);
            Ok(())
        }
    };
    tokio::task::spawn_blocking(handshake("vcenter.test"))
        .await
        .expect("ran")
        .expect("the DNS SAN is accepted");
    let mismatch = tokio::task::spawn_blocking(handshake("127.0.0.1"))
        .await
        .expect("ran")
        .expect_err("127.0.0.1 is not in the certificate");
    assert!(
        matches!(
            mismatch,
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. }
            ) | rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName)
        ),
        "{mismatch:?}"
    );
}

#[tokio::test]
async fn esx_mode_is_a_host_agent() {
    let sim = Simulator::start(SimulatorOptions {
        mode: Mode::Esx,
        ..SimulatorOptions::default()
    })
    .await;
    assert_eq!(
        *sim.inventory(),
        Inventory {
            datacenters: 1,
            clusters: 0,
            hosts: 1,
            vms: 2,
            datastores: 1,
            api_type: "HostAgent".into(),
        }
    );
    let reply = post(
        &client(Some(sim.ca_pem())),
        sim.url(),
        retrieve_service_content(),
        None,
    )
    .await;
    assert!(
        reply.body.contains("<apiType>HostAgent</apiType>"),
        "{}",
        reply.body
    );
    sim.stop().await;
}

#[tokio::test]
async fn credentials_are_enforced() {
    let sim = Simulator::start(SimulatorOptions {
        credentials: Some(("alice".into(), "s3cret".into())),
        ..SimulatorOptions::default()
    })
    .await;
    let client = client(Some(sim.ca_pem()));

    let content = post(&client, sim.url(), retrieve_service_content(), None).await;
    assert_eq!(content.status, StatusCode::OK, "{}", content.body);

    let wrong = post(&client, sim.url(), login("alice", "wrong"), None).await;
    assert_eq!(wrong.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        wrong
            .body
            .contains(r#"<InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin">"#),
        "{}",
        wrong.body
    );

    let right = post(&client, sim.url(), login("alice", "s3cret"), None).await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.body);
    assert!(right.body.contains("<userName>alice</userName>"));
    let cookie = session_cookie(&right);
    let time = post(&client, sim.url(), current_time(), Some(&cookie)).await;
    assert_eq!(time.status, StatusCode::OK, "{}", time.body);
}

#[tokio::test]
async fn any_credentials_work_by_default() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let reply = post(
        &client(Some(sim.ca_pem())),
        sim.url(),
        login("anyone", "anything"),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
#[should_panic(expected = "-username and -password must be given together")]
async fn start_failures_report_the_launchers_stderr() {
    Simulator::start(SimulatorOptions {
        credentials: Some(("alice".into(), String::new())),
        ..SimulatorOptions::default()
    })
    .await;
}

#[tokio::test]
async fn method_delay_slows_that_method() {
    let sim = Simulator::start(SimulatorOptions {
        method_delay: vec![("RetrieveServiceContent".into(), 700)],
        ..SimulatorOptions::default()
    })
    .await;
    let client = client(Some(sim.ca_pem()));
    let started = Instant::now();
    let reply = post(&client, sim.url(), retrieve_service_content(), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let reply = post(&client, sim.url(), login("u", "p"), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn idle_sessions_expire() {
    let sim = Simulator::start(SimulatorOptions {
        session_idle_timeout: Some(Duration::from_millis(400)),
        ..SimulatorOptions::default()
    })
    .await;
    let client = client(Some(sim.ca_pem()));
    let cookie = session_cookie(&post(&client, sim.url(), login("u", "p"), None).await);
    let fresh = post(&client, sim.url(), current_time(), Some(&cookie)).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.body);

    // The simulator checks on a timer, so expiry takes up to twice the timeout.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let expired = post(&client, sim.url(), current_time(), Some(&cookie)).await;
    assert_eq!(expired.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        expired.body.contains("NotAuthenticatedFault"),
        "{}",
        expired.body
    );
}

#[tokio::test]
async fn fault_proxy_forwards_and_injects() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    let proxy = FaultProxy::start(
        &sim,
        FaultRule {
            method: "RetrievePropertiesEx".into(),
            response: FaultResponse::NoPermission {
                privilege: "System.View".into(),
            },
        },
    )
    .await;
    assert_eq!(
        proxy.url(),
        format!("http://127.0.0.1:{}/sdk", proxy.port())
    );
    let direct = client(Some(sim.ca_pem()));
    let plain = client(None);

    // Forwarded unchanged.
    let expected = post(&direct, sim.url(), retrieve_service_content(), None).await;
    let proxied = post(&plain, proxy.url(), retrieve_service_content(), None).await;
    assert_eq!(proxied.status, StatusCode::OK);
    assert_eq!(proxied.body, expected.body);
    assert_eq!(
        proxied.headers.get(CONTENT_TYPE),
        expected.headers.get(CONTENT_TYPE)
    );

    // Set-Cookie comes back and Cookie goes through.
    let login = post(&plain, proxy.url(), login("u", "p"), None).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let cookie = session_cookie(&login);
    let time = post(&plain, proxy.url(), current_time(), Some(&cookie)).await;
    assert_eq!(time.status, StatusCode::OK, "{}", time.body);

    // The chosen method gets the fault, with the session still valid upstream.
    let denied = post(&plain, proxy.url(), retrieve_properties_ex(), Some(&cookie)).await;
    assert_eq!(denied.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        denied.headers.get(CONTENT_TYPE).map(|v| v.as_bytes()),
        Some(&b"text/xml; charset=utf-8"[..])
    );
    assert!(denied.body.contains(
        r#"<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Permission to perform this operation was denied.</faultstring><detail><NoPermissionFault xmlns="urn:vim25" xsi:type="NoPermission"><object type="Folder">group-d1</object><privilegeId>System.View</privilegeId></NoPermissionFault></detail></soapenv:Fault>"#
    ), "{}", denied.body);
    let allowed = post(&direct, sim.url(), retrieve_properties_ex(), Some(&cookie)).await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.body);

    assert_eq!(
        proxy.requests(),
        [
            "RetrieveServiceContent",
            "Login",
            "CurrentTime",
            "RetrievePropertiesEx"
        ]
    );

    // NotAuthenticated mirrors the simulator's own fault byte for byte, apart from
    // the message (the simulator leaves it empty; vCenter does not).
    proxy.set_rule(Some(FaultRule {
        method: "CurrentTime".into(),
        response: FaultResponse::NotAuthenticated,
    }));
    let injected = post(&plain, proxy.url(), current_time(), Some(&cookie)).await;
    let genuine = post(&direct, sim.url(), current_time(), None).await;
    assert_eq!(injected.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(genuine.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        injected.body,
        genuine.body.replace(
            "<faultstring></faultstring>",
            "<faultstring>The session is not authenticated.</faultstring>"
        )
    );

    proxy.set_rule(Some(FaultRule {
        method: "CurrentTime".into(),
        response: FaultResponse::Garbage("<html>not soap".into()),
    }));
    let garbage = post(&plain, proxy.url(), current_time(), Some(&cookie)).await;
    assert_eq!(
        (garbage.status, garbage.body.as_str()),
        (StatusCode::OK, "<html>not soap")
    );

    proxy.set_rule(Some(FaultRule {
        method: "CurrentTime".into(),
        response: FaultResponse::HttpStatus(503, "maintenance".into()),
    }));
    let unavailable = post(&plain, proxy.url(), current_time(), Some(&cookie)).await;
    assert_eq!(
        (unavailable.status, unavailable.body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "maintenance")
    );

    proxy.set_rule(None);
    let time = post(&plain, proxy.url(), current_time(), Some(&cookie)).await;
    assert_eq!(time.status, StatusCode::OK, "{}", time.body);
}

#[tokio::test]
async fn hung_server_never_answers() {
    let server = HungServer::start().await;
    let mut stream = TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .expect("the hung server accepts connections");
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await;
    assert!(read.is_err(), "the hung server answered: {read:?}");

    let error = client(None)
        .get(format!("http://127.0.0.1:{}/sdk", server.port()))
        .timeout(Duration::from_millis(500))
        .send()
        .await
        .expect_err("no answer");
    assert!(error.is_timeout(), "{error:?}");

    let port = server.port();
    drop(server);
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

#[tokio::test]
async fn http_server_answers_its_body() {
    let server = HttpServer::start(404, "text/html", "<html>not here</html>").await;
    let client = client(None);
    for _ in 0..2 {
        let reply = post(
            &client,
            &format!("http://127.0.0.1:{}/sdk", server.port()),
            retrieve_service_content(),
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(
            reply.headers.get(CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"text/html"[..])
        );
        assert_eq!(reply.body, "<html>not here</html>");
    }
    let get = client
        .get(format!("http://127.0.0.1:{}/", server.port()))
        .send()
        .await
        .expect("GET works");
    assert_eq!(get.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn closed_port_refuses() {
    let port = closed_port().await;
    let error = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect_err("nothing listens");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[tokio::test]
async fn inventory_commands_change_the_simulator() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    sim.rename_vm("DC0_H0_VM0", "pylon-renamed").await;
    // Found by its new name only: the rename happened.
    sim.power_off_vm("pylon-renamed").await;
    sim.power_on_vm("pylon-renamed").await;
    sim.stop().await;
}

#[tokio::test]
#[should_panic(expected = "0 virtual machines are named")]
async fn inventory_commands_report_what_failed() {
    let sim = Simulator::start(SimulatorOptions::default()).await;
    sim.power_off_vm("no-such-vm").await;
}
