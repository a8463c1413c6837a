//! The conformance kit for every provider linked into the host, found through the same
//! registry the server uses. A provider cannot opt out: its registration must name a
//! fixture, and the kit runs against it here, in the README's test command.

use pylon_core::{conformance, ProviderRegistration, Registry};

#[test]
fn every_registered_provider_names_a_conformance_fixture() {
    let registrations: Vec<&ProviderRegistration> = ProviderRegistration::linked().collect();
    assert!(
        !registrations.is_empty(),
        "no provider is linked into the host"
    );
    let missing: Vec<&str> = registrations
        .iter()
        .filter(|r| r.conformance.is_none())
        .map(|r| (r.build)().descriptor().platform)
        .collect();
    assert!(
        missing.is_empty(),
        "providers registered without a conformance fixture: {missing:?}; name one with \
         `ProviderRegistration::new(..).with_conformance(..)`"
    );
    // The registry the server builds holds the same providers.
    let registry = Registry::from_inventory().expect("the registry builds");
    assert_eq!(registry.providers().len(), registrations.len());
}

#[tokio::test]
async fn every_registered_provider_passes_the_conformance_kit() {
    let mut reports = Vec::new();
    for registration in ProviderRegistration::linked() {
        let provider = (registration.build)();
        let platform = provider.descriptor().platform;
        let Some(fixture) = registration.conformance else {
            panic!("`{platform}` has no conformance fixture");
        };
        let report = conformance::run(provider.as_ref(), fixture().as_ref()).await;
        // Printed on every run, so skipped and waived checks are always visible.
        println!("{report}");
        reports.push(report);
    }
    let failing: Vec<String> = reports
        .iter()
        .filter(|r| !r.is_conformant())
        .map(|r| r.to_string())
        .collect();
    assert!(failing.is_empty(), "{}", failing.join("\n"));
}

/// The host's half of the capability contract, for every linked provider: a resource of a
/// provider that declares `history` or `metrics` is answered on its route, and one that does
/// not is answered `not_supported`, never an empty list that reads like "nothing happened".
#[tokio::test]
async fn every_provider_s_feed_routes_follow_its_declared_capabilities() {
    use crate::history::first_resource;
    use crate::support::TestApp;
    use axum::http::StatusCode;

    for registration in ProviderRegistration::linked() {
        let provider = (registration.build)();
        let descriptor = provider.descriptor();
        let fixture = registration.conformance.expect("a fixture")();
        let target = fixture.start().await.expect("the fixture's target starts");
        let mut draft = target.plan().good;
        draft["name"] = serde_json::json!("capability routes");
        let app = TestApp::new().await;
        let (status, created) = app
            .post(&format!("/api/{}/connections", descriptor.slug), draft)
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}: {created}",
            descriptor.platform
        );
        let resource = first_resource(&app, created["id"].as_str().unwrap()).await;
        for (route, declared) in [
            ("history", descriptor.capabilities.history),
            ("metrics", descriptor.capabilities.metrics),
        ] {
            let (status, body) = app.get(&format!("/api/resources/{resource}/{route}")).await;
            if declared {
                assert_eq!(
                    status,
                    StatusCode::OK,
                    "{} {route}: {body}",
                    descriptor.platform
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::NOT_FOUND,
                    "{} {route}: {body}",
                    descriptor.platform
                );
                assert_eq!(
                    body["code"], "not_supported",
                    "{} {route}: {body}",
                    descriptor.platform
                );
            }
        }
        drop(app);
        target.stop().await;
    }
}
