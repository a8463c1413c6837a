//! Property test: no generated secret ever appears in a response or in the database file.

use crate::support::{contains, TestApp};
use axum::http::Method;
use proptest::prelude::*;
use serde_json::json;

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
            Ok(())
        })?;
    }
}
