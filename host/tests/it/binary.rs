//! The `pylon` binary over a real socket: first-start bootstrap, the API, log hygiene and
//! graceful shutdown on SIGTERM.

use crate::support::{closed_port_sync, contains};
use serde_json::{json, Value};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test]
async fn serves_bootstraps_and_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pylon"))
        .env_clear()
        .env("PYLON_LISTEN", format!("127.0.0.1:{port}"))
        .env("PYLON_DATA_DIR", dir.path())
        .env("PYLON_LOG", "debug")
        .env("PYLON_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = client();
    let started = Instant::now();
    loop {
        if let Ok(response) = http.get(format!("{base}/healthz")).send().await {
            assert_eq!(response.status(), 200);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "pylon did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A generated admin token, readable only by its owner.
    let token_path = dir.path().join("admin-token");
    let token = std::fs::read_to_string(&token_path)
        .unwrap()
        .trim()
        .to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in ["admin-token", "secret.key"] {
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }

    let password = "binary-test-secret-0xC0FFEE";
    let created: Value = http
        .post(format!("{base}/api/vmware/connections"))
        .bearer_auth(&token)
        .json(&json!({"name": "bin", "host": "127.0.0.1", "port": closed_port_sync(), "username": "u", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let result: Value = http
        .post(format!("{base}/api/vmware/connections/{id}/test"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(result["category"], "network", "{result}");

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "pylon did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit}");

    let mut logs = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut logs).unwrap();
    child.stderr.take().unwrap().read_to_end(&mut logs).unwrap();
    let text = String::from_utf8_lossy(&logs);
    assert!(
        text.contains("admin-token"),
        "the token path is logged: {text}"
    );
    assert!(text.contains("connection test failed"), "{text}");
    assert!(!contains(&logs, password), "a secret reached the logs");
    assert!(!contains(&logs, &token), "the admin token reached the logs");
}

#[test]
fn providers_subcommand_lists_vsphere() {
    let output = Command::new(env!("CARGO_BIN_EXE_pylon"))
        .arg("providers")
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("vmware-vsphere"), "{text}");
    assert!(text.contains("/api/vmware/connections"), "{text}");
}

#[test]
fn invalid_configuration_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_pylon"))
        .env_clear()
        .env("PYLON_DATA_DIR", dir.path())
        .env("PYLON_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.to_lowercase().contains("listen"), "{text}");
}

#[test]
fn an_unreachable_postgres_fails_start_up_with_its_cause_and_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let password = "pg-password-0xBADC0DE";
    let output = Command::new(env!("CARGO_BIN_EXE_pylon"))
        .env_clear()
        .env("PYLON_DATA_DIR", dir.path())
        .env(
            "PYLON_DATABASE_URL",
            format!(
                "postgres://pylon:{password}@127.0.0.1:{}/pylon",
                closed_port_sync()
            ),
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("cannot open the PostgreSQL database"),
        "{text}"
    );
    assert!(text.contains("Connection refused"), "{text}");
    assert!(!text.contains(password), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn lease_seconds_out_of_range_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_pylon"))
        .env_clear()
        .env("PYLON_DATA_DIR", dir.path())
        .env("PYLON_LEASE_SECONDS", "1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("lease_seconds must be between 3 and 600"),
        "{text}"
    );
}
