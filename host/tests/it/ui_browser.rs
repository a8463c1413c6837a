//! The admin UI end to end in a real browser: headless Chromium from Debian's packages,
//! driven by `playwright-core` (`tests/e2e/admin.mjs`), against a real `pylon` process and the
//! real govmomi simulator.
//!
//! This test starts both servers and hands their addresses to the Node script, which drives
//! the page and saves screenshots under `$CARGO_TARGET_DIR/ui-artifacts/`. It fails, never
//! skips, when Chromium, Node or the npm packages are missing: `scripts/install-test-deps.sh`
//! (run by `scripts/test.sh`) installs them.

use pylon_vcsim::{Simulator, SimulatorOptions};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's Chromium; the script launches exactly this binary.
const CHROMIUM: &str = "/usr/bin/chromium";
/// `playwright-core` needs Node 20 or later.
const MIN_NODE_MAJOR: u32 = 20;
/// The whole browser run; it normally takes well under a minute.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(150);

const ADMIN_TOKEN: &str = "pylon_ui-browser-test-admin-token";
const USERNAME: &str = "reader@vsphere.local";
const PASSWORD: &str = "ui-test-correct-pw-41f7";
const WRONG_PASSWORD: &str = "ui-test-wrong-pw-9a2c";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `$CARGO_TARGET_DIR/ui-artifacts`, found from the binary cargo built for this test.
fn artifact_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_pylon"))
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("ui-artifacts")
}

/// Fails with what to run when a browser-test dependency is missing.
fn require_browser_toolchain(e2e: &Path) {
    const FIX: &str = "run scripts/install-test-deps.sh (scripts/test.sh does) to install it";
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing (Debian packages chromium, chromium-driver): {FIX}"
    );
    let node = Command::new("node").arg("--version").output();
    let version = match node {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        }
        _ => panic!("`node` is not on PATH: {FIX}"),
    };
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= MIN_NODE_MAJOR,
        "node {version} is too old for playwright-core (needs {MIN_NODE_MAJOR} or later)"
    );
    assert!(
        e2e.join("node_modules/playwright-core/package.json")
            .is_file(),
        "tests/e2e/node_modules is missing playwright-core: {FIX}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `pylon serve` process on a free port with its own data directory; killed on drop.
struct Pylon {
    child: Child,
    base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Pylon {
    async fn start() -> Pylon {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = dir.path().join("pylon.log");
        let out = File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pylon"))
            .arg("serve")
            .env_clear()
            .env("PYLON_LISTEN", format!("127.0.0.1:{port}"))
            .env("PYLON_DATA_DIR", dir.path().join("data"))
            .env("PYLON_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("PYLON_LOG", "info")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let pylon = Pylon {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let started = Instant::now();
        while http
            .get(format!("{}/healthz", pylon.base))
            .send()
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "pylon did not start: {}",
                pylon.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        pylon
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Pylon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn admin_workspace_in_headless_chromium() {
    let e2e = workspace_root().join("tests/e2e");
    require_browser_toolchain(&e2e);
    let artifacts = artifact_dir();
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).unwrap();

    // 4 hosts, 8 VMs and a datastore: 13 resources, more than one page of 10.
    let sim = Simulator::start(SimulatorOptions {
        vms: Some(4),
        credentials: Some((USERNAME.to_owned(), PASSWORD.to_owned())),
        ..SimulatorOptions::default()
    })
    .await;
    let inventory = sim.inventory().clone();
    let pylon = Pylon::start().await;

    let started = Instant::now();
    let mut script = tokio::process::Command::new("node")
        .arg("admin.mjs")
        .current_dir(&e2e)
        .env("PYLON_URL", &pylon.base)
        .env("PYLON_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("CHROMIUM", CHROMIUM)
        .env("SIM_HOST", sim.host())
        .env("SIM_PORT", sim.port().to_string())
        .env("SIM_CA_PEM", sim.ca_pem())
        .env("SIM_USERNAME", USERNAME)
        .env("SIM_PASSWORD", PASSWORD)
        .env("SIM_WRONG_PASSWORD", WRONG_PASSWORD)
        .env("EXPECT_AGENTS", inventory.hosts.to_string())
        .env("EXPECT_VMS", inventory.vms.to_string())
        .env("EXPECT_STORAGE", inventory.datastores.to_string())
        .env("ARTIFACT_DIR", &artifacts)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let stdout = script.stdout.take().unwrap();
    let stderr = script.stderr.take().unwrap();
    let read = |mut pipe: Box<dyn tokio::io::AsyncRead + Unpin + Send>| {
        tokio::spawn(async move {
            let mut text = String::new();
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut pipe, &mut text).await;
            text
        })
    };
    let stdout = read(Box::new(stdout));
    let stderr = read(Box::new(stderr));
    let status = tokio::time::timeout(SCRIPT_TIMEOUT, script.wait()).await;
    let status = match status {
        Ok(status) => Some(status.unwrap()),
        Err(_) => {
            let _ = script.kill().await;
            None
        }
    };
    let output = format!(
        "--- browser script stdout ---\n{}\n--- browser script stderr ---\n{}\n--- pylon log ---\n{}",
        stdout.await.unwrap(),
        stderr.await.unwrap(),
        pylon.log()
    );
    println!("{output}");
    println!(
        "browser run took {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        artifacts.display()
    );
    // The output is printed above; nextest shows it with the failure.
    match status {
        None => panic!("the browser script did not finish within {SCRIPT_TIMEOUT:?}"),
        Some(status) => assert!(status.success(), "the browser script failed ({status})"),
    }
    let screenshots = std::fs::read_dir(&artifacts)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "png"))
        })
        .count();
    assert!(screenshots >= 5, "only {screenshots} screenshots saved");

    // Secrets typed into the browser never reach the server's log.
    let log = pylon.log();
    for secret in [PASSWORD, WRONG_PASSWORD, ADMIN_TOKEN] {
        assert!(!log.contains(secret), "a secret reached the pylon log");
    }
    drop(pylon);
    sim.stop().await;
}
