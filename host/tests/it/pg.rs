//! Throwaway PostgreSQL for tests: a database of its own per test, on the server
//! `scripts/test.sh` started for the whole run (`PYLON_TEST_DATABASE_URL`), or, when a test
//! runs without it (`cargo nextest run` by hand), on a server of its own started through the
//! same `scripts/test-postgres.sh` and stopped when the test ends, also on a panic (`Drop`).
//!
//! One shared server because nextest runs every test in its own process: a server per test
//! costs about a second of initdb and start-up each; a database per test keeps tests apart
//! just as well and lets them run in parallel.

use sqlx::Connection;
use std::path::PathBuf;
use std::process::Command;
use tempfile::TempDir;

/// A database that lives as long as this value (or, on the shared server, the run).
pub struct TestDatabase {
    pub url: String,
    /// The server started for this test alone, stopped on drop.
    _server: Option<OwnServer>,
}

struct OwnServer {
    dir: TempDir,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/test-postgres.sh")
}

impl OwnServer {
    fn start() -> (Self, String) {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(script())
            .arg("start")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "cannot start PostgreSQL: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let url = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        (Self { dir }, url)
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

impl TestDatabase {
    pub async fn new() -> Self {
        let (server, base) = match std::env::var("PYLON_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => (None, url),
            _ => {
                let (server, url) = OwnServer::start();
                (Some(server), url)
            }
        };
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&format!("{base}/postgres"))
            .await
            .unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        Self {
            url: format!("{base}/{name}"),
            _server: server,
        }
    }
}

/// A PostgreSQL client program: from `PATH`, else from Debian's versioned directory.
pub fn binary(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file());
    if let Some(found) = on_path {
        return found;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    versions.sort();
    versions
        .last()
        .map(|dir| dir.join("bin").join(name))
        .unwrap_or_else(|| PathBuf::from(name))
}
