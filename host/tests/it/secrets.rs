//! Property test: no generated secret ever appears in a response, a log line (at every
//! level, from every crate) or the database file.

use crate::support::{contains, TestApp};
use axum::http::Method;
use proptest::prelude::*;
use serde_json::json;
use std::sync::{Arc, Mutex, OnceLock};

/// Everything logged by this test process, at trace level.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let buffer = buffer.clone();
            move || LogWriter(buffer.clone())
        };
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(writer)
            .try_init()
            .expect("a test-wide subscriber");
        buffer
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn secrets_never_leak(password in "[A-Za-z0-9!#%&()*+,./:;<=>?@^_{|}~-]{12,40}") {
        let logs = captured_logs();
        runtime().block_on(async {
            let app = TestApp::new().await;
            let port = pylon_vcsim::closed_port().await;
            let draft = json!({"name": "p", "host": "127.0.0.1", "port": port, "username": "u", "password": password});
            let mut answers = Vec::new();
            let (_, created) = app.post("/api/vmware/connections", draft.clone()).await;
            let id = created["id"].as_str().unwrap().to_owned();
            answers.push(created);
            answers.push(app.post("/api/vmware/connections/test", draft.clone()).await.1);
            answers.push(app.call(Method::POST, &format!("/api/vmware/connections/{id}/test"), Some(crate::support::ADMIN), None).await.1);
            answers.push(app.post(&format!("/api/vmware/connections/{id}/test"), json!({"password": password})).await.1);
            answers.push(app.put(&format!("/api/vmware/connections/{id}"), json!({"port": 0, "password": password})).await.1);
            answers.push(app.get("/api/vmware/connections").await.1);
            for answer in &answers {
                prop_assert!(!answer.to_string().contains(&password), "{answer}");
            }
            prop_assert!(!contains(&app.database_bytes(), &password));
            let logged = logs.lock().unwrap().clone();
            prop_assert!(logged.len() > 1000, "the capture works: {} bytes", logged.len());
            prop_assert!(!contains(&logged, &password), "a secret reached the logs");
            Ok(())
        })?;
    }
}
