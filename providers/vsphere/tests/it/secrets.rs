//! The password never appears in a classified failure, whatever it is.

use crate::support::*;
use proptest::prelude::*;
use pylon_core::draft::apply_draft;
use pylon_core::{FailureCategory, Provider, ProviderError, TestContext};
use pylon_vcsim::{closed_port, Simulator, SimulatorOptions};
use pylon_vsphere::{VsphereProvider, DESCRIPTOR};
use serde_json::json;
use std::time::Duration;

fn assert_secret_free(error: &ProviderError, password: &str) -> Result<(), TestCaseError> {
    prop_assert!(!error.message.contains(password), "{}", error.message);
    let debug = format!("{error:?}");
    prop_assert!(!debug.contains(password), "{}", debug);
    let display = error.to_string();
    prop_assert!(!display.contains(password), "{}", display);
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Passwords with a marker so they cannot occur in a message by coincidence.
fn password() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#%&()*+,./:;<=>?@^_{|}~ -]{6,40}".prop_map(|p| format!("Pw{p}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn password_absent_from_network_and_validation_failures(password in password()) {
        let rt = runtime();
        let port = rt.block_on(closed_port());
        let body = with(draft("127.0.0.1", port), "password", json!(password));
        let error = rt.block_on(run(&body, Duration::from_secs(5))).unwrap_err();
        prop_assert_eq!(error.category, FailureCategory::Network);
        assert_secret_free(&error, &password)?;

        // A draft whose host carries the password as userinfo: rejected without echoing it.
        let body = with(body, "host", json!(format!("https://admin:{password}@vc.example")));
        let mut config = apply_draft(&DESCRIPTOR, None, &body).unwrap();
        let errors = VsphereProvider::default().validate(&mut config).unwrap_err();
        prop_assert!(!errors.to_string().contains(&password), "{}", errors);
        let errors_debug = format!("{errors:?}");
        prop_assert!(!errors_debug.contains(&password));
        let error = rt.block_on(VsphereProvider::default().test(&config, &TestContext::default())).unwrap_err();
        prop_assert_eq!(error.category, FailureCategory::InvalidConfig);
        assert_secret_free(&error, &password)?;
    }
}

#[test]
fn password_absent_from_auth_failures() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt.block_on(Simulator::start(SimulatorOptions {
        credentials: Some(("pylon@vsphere.local".into(), "the-right-one".into())),
        ..SimulatorOptions::default()
    }));
    let base = with(sim_draft(&sim), "caCertificate", json!(sim.ca_pem()));
    proptest!(ProptestConfig::with_cases(16), |(password in password())| {
        let body = with(base.clone(), "password", json!(password));
        let error = rt.block_on(run(&body, TEST_TIMEOUT)).unwrap_err();
        prop_assert_eq!(error.category, FailureCategory::Auth, "{}", error.message);
        assert_secret_free(&error, &password)?;
    });
    rt.block_on(sim.stop());
}
