//! A test instance of the API on a temporary data directory.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use pylon_core::{Registry, SecretString};
use pylon_host::config::Config;
use pylon_host::state::AppState;
use serde_json::{json, Value};
use tempfile::TempDir;
use tower::ServiceExt;

pub const ADMIN: &str = "admin-token-for-tests";

pub struct TestApp {
    pub dir: TempDir,
    pub state: AppState,
    pub router: Router,
    /// The PostgreSQL database when the tests run on PostgreSQL (see [`on_postgres`]).
    postgres_url: Option<String>,
}

/// Whether `TestApp` runs on PostgreSQL: `PYLON_TEST_STORE=postgres`, which
/// `scripts/test.sh` sets for a second pass of the API tests, so every API behaves the same
/// on both stores. SQLite otherwise.
pub fn on_postgres() -> bool {
    std::env::var("PYLON_TEST_STORE").is_ok_and(|store| store == "postgres")
}

/// Databases made for this test process, kept until it exits: a restarted `TestApp` finds its
/// database again through a file in its data directory.
static DATABASES: std::sync::Mutex<Vec<crate::pg::TestDatabase>> =
    std::sync::Mutex::new(Vec::new());

async fn postgres_url(dir: &std::path::Path) -> String {
    let file = dir.join("test-database-url");
    if let Ok(url) = std::fs::read_to_string(&file) {
        return url;
    }
    let database = crate::pg::TestDatabase::new().await;
    let url = database.url.clone();
    std::fs::write(&file, &url).unwrap();
    DATABASES.lock().unwrap().push(database);
    url
}

impl TestApp {
    pub async fn new() -> Self {
        Self::open(tempfile::tempdir().unwrap()).await
    }

    /// Starts (or restarts) an instance on an existing data directory.
    pub async fn open(dir: TempDir) -> Self {
        let mut config = Config::for_data_dir(dir.path());
        config.admin_token = Some(SecretString::new(ADMIN));
        config.test_timeout_seconds = 5;
        config.max_body_bytes = 64 * 1024;
        let postgres_url = if on_postgres() {
            Some(postgres_url(dir.path()).await)
        } else {
            None
        };
        config.database_url = postgres_url.clone();
        // Short leases, so a restarted instance (a new replica) polls at once.
        config.lease_seconds = 3;
        let state =
            pylon_host::bootstrap::build_state(&config, Registry::from_inventory().unwrap())
                .await
                .unwrap();
        let router = pylon_host::app(state.clone());
        Self {
            dir,
            state,
            router,
            postgres_url,
        }
    }

    /// Stops the instance as `pylon` stops on SIGTERM (polls finish, sessions close, leases
    /// are given back) and returns its data directory for a restart.
    pub async fn stop(self) -> TempDir {
        self.state.scheduler.shutdown().await;
        if let Some(lease) = &self.state.lease {
            lease.shutdown().await;
        }
        self.dir
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = match body {
            Some(value) => Body::from(serde_json::to_vec(&value).unwrap()),
            None => Body::empty(),
        };
        self.raw(method, path, token, body).await
    }

    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Body,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request = request.header("content-type", "application/json");
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("response is not JSON: {}", String::from_utf8_lossy(&bytes))
            })
        };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(ADMIN), None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(ADMIN), Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(ADMIN), Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(ADMIN), None).await
    }

    /// Creates a connection and returns its item, asserting 201.
    pub async fn create(&self, body: Value) -> Value {
        let (status, item) = self.post("/api/vmware/connections", body).await;
        assert_eq!(status, StatusCode::CREATED, "{item}");
        item
    }

    /// Creates a token with `scopes` and returns the token string.
    pub async fn token(&self, scopes: &[&str]) -> String {
        let (status, body) = self
            .post("/api/tokens", json!({"name": "t", "scopes": scopes}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// The list item with `id`.
    pub async fn item(&self, id: &str) -> Value {
        let (status, list) = self.get("/api/vmware/connections").await;
        assert_eq!(status, StatusCode::OK);
        list.as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no item {id} in {list}"))
    }

    /// Asks the scheduler for a poll of `id` and waits until an attempt that began after the
    /// request has been recorded, successful or not, with the feeds read after it (60 s at
    /// most); returns the connection item. (`lastAttemptAt` is when an attempt began, so a
    /// poll already running when the test changed something does not count.)
    pub async fn next_poll(&self, id: &str) -> Value {
        let requested = chrono::Utc::now();
        self.state.scheduler.poll_now(id).await;
        let started = std::time::Instant::now();
        loop {
            let item = self.item(id).await;
            let attempted = item["poll"]["lastAttemptAt"]
                .as_str()
                .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok());
            // The whole cycle: the poll and the feeds recorded after it.
            let finished = self.state.scheduler.last_finished_cycle(id);
            if attempted.is_some_and(|at| at > requested)
                && finished.is_some_and(|at| at > requested)
                && item["poll"]["status"] != "pending"
            {
                return self.item(id).await;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "timed out waiting for a poll: {item}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Creates a connection named `lab` to `sim`, waits for its first poll and checks it
    /// was healthy; returns the connection id.
    pub async fn polled_sim_connection(&self, sim: &pylon_vcsim::Simulator) -> String {
        let id = self.create(sim_draft(sim, "lab", "pw")).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let item = self.next_poll(&id).await;
        assert_eq!(item["poll"]["status"], "healthy", "{item}");
        id
    }

    /// `GET /metrics` without a token, as Prometheus scrapes it: the exposition text.
    pub async fn metrics_text(&self) -> String {
        let response = self
            .router
            .clone()
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// The environment that points a `pylon` child process at this instance's database
    /// (nothing on SQLite, where `PYLON_DATA_DIR` does).
    pub fn database_env(&self) -> Vec<(&'static str, String)> {
        self.postgres_url
            .iter()
            .map(|url| ("PYLON_DATABASE_URL", url.clone()))
            .collect()
    }

    /// Every byte the database holds on disk (main file, WAL and shared memory); on
    /// PostgreSQL, a dump of its data (text columns as text, `bytea` as hex).
    pub fn database_bytes(&self) -> Vec<u8> {
        if let Some(url) = &self.postgres_url {
            let output = std::process::Command::new(crate::pg::binary("pg_dump"))
                .arg("--data-only")
                .arg(url)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            return output.stdout;
        }
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("pylon.db")
            {
                bytes.extend(std::fs::read(path).unwrap());
            }
        }
        bytes
    }
}

/// A valid draft for a simulator, trusting its CA.
pub fn sim_draft(sim: &pylon_vcsim::Simulator, name: &str, password: &str) -> Value {
    json!({
        "name": name,
        "host": sim.host(),
        "port": sim.port(),
        "username": "user",
        "password": password,
        "caCertificate": sim.ca_pem(),
    })
}

/// A draft that needs no network to validate. Disabled, so the scheduler leaves it alone
/// and tests of stored state are deterministic.
pub fn offline_draft(name: &str) -> Value {
    json!({
        "name": name,
        "enabled": false,
        "host": "vcenter.example.test",
        "username": "reader@vsphere.local",
        "password": "correct horse battery staple",
    })
}

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A loopback port with nothing listening, for code that is not async.
pub fn closed_port_sync() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
