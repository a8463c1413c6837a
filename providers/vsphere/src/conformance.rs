//! The vSphere provider's conformance fixture: the govmomi vCenter simulator (through
//! `pylon-vcsim`) and one failing target per failure category, with the expectations the
//! kit checks the provider against.
//!
//! The fixture is named by the provider's registration in every build, so enrolment cannot
//! be forgotten. The simulator is test-only machinery, so it is compiled only with this
//! crate's `conformance` feature (which the workspace's tests turn on); without it the
//! fixture cannot start and a conformance run fails instead of passing green.

use pylon_core::fixture::ConformanceFixture;

/// The fixture the registration in `lib.rs` names.
pub(crate) fn fixture() -> Box<dyn ConformanceFixture> {
    #[cfg(feature = "conformance")]
    {
        Box::new(simulated::VsphereFixture)
    }
    #[cfg(not(feature = "conformance"))]
    {
        Box::new(pylon_core::fixture::UnavailableFixture {
            reason: "pylon-vsphere was built without its `conformance` feature, so it has no \
                     simulator to test against; run `cargo nextest run --workspace`",
        })
    }
}

#[cfg(feature = "conformance")]
mod simulated {
    use async_trait::async_trait;
    use pylon_core::fixture::{
        ConformanceFixture, FailureCase, FixtureError, FixturePlan, FixtureTarget, InvalidDraft,
    };
    use pylon_core::FailureCategory;
    use pylon_vcsim::{
        closed_port, FaultProxy, FaultResponse, FaultRule, HttpServer, HungServer, Mode, Simulator,
        SimulatorOptions,
    };
    use serde_json::{json, Value};
    use std::path::PathBuf;
    use std::time::Duration;

    const USER: &str = "conformance@vsphere.local";
    /// Distinctive, so any echo of it in an output is recognisable.
    const PASSWORD: &str = "Conformance-Pw-7f3a9c";
    const WRONG_PASSWORD: &str = "Wrong-Conformance-Pw-41d2";

    pub(super) struct VsphereFixture;

    #[async_trait]
    impl ConformanceFixture for VsphereFixture {
        async fn start(&self) -> Result<Box<dyn FixtureTarget>, FixtureError> {
            // `pylon-vcsim` panics when the simulator cannot start; that fails the run too.
            let sim = Simulator::start(SimulatorOptions {
                credentials: Some((USER.into(), PASSWORD.into())),
                ..SimulatorOptions::default()
            })
            .await;
            let esx = Simulator::start(SimulatorOptions {
                mode: Mode::Esx,
                ..SimulatorOptions::default()
            })
            .await;
            let proxy = FaultProxy::start(&sim, outage_rule()).await;
            proxy.set_rule(None);
            let permission = FaultProxy::start(
                &sim,
                FaultRule {
                    method: "CreateContainerView".into(),
                    response: FaultResponse::NoPermission {
                        privilege: "System.View".into(),
                    },
                },
            )
            .await;
            let protocol = FaultProxy::start(
                &sim,
                FaultRule {
                    method: "RetrievePropertiesEx".into(),
                    response: FaultResponse::Garbage("<soapenv:Envelope><not-closed".into()),
                },
            )
            .await;
            Ok(Box::new(Target {
                closed_port: closed_port().await,
                hung: HungServer::start().await,
                html: HttpServer::start(200, "text/html; charset=utf-8", "<html>hi</html>").await,
                sim,
                esx,
                proxy,
                permission,
                protocol,
            }))
        }
    }

    /// Every poll starts with a `CurrentTime` keepalive; answering it with 503 is vCenter
    /// being restarted.
    fn outage_rule() -> FaultRule {
        FaultRule {
            method: "CurrentTime".into(),
            response: FaultResponse::HttpStatus(503, "Service Unavailable".into()),
        }
    }

    struct Target {
        sim: Simulator,
        esx: Simulator,
        proxy: FaultProxy,
        permission: FaultProxy,
        protocol: FaultProxy,
        closed_port: u16,
        hung: HungServer,
        html: HttpServer,
    }

    fn draft(port: u16, https: bool) -> Value {
        json!({
            "name": "conformance",
            "host": "127.0.0.1",
            "port": port,
            "username": USER,
            "password": PASSWORD,
            "useHttps": https,
        })
    }

    fn with(mut draft: Value, field: &str, value: Value) -> Value {
        draft[field] = value;
        draft
    }

    #[async_trait]
    impl FixtureTarget for Target {
        fn plan(&self) -> FixturePlan {
            let good = draft(self.proxy.port(), false);
            let case = |category, draft, setup| FailureCase {
                category,
                draft,
                setup,
            };
            FixturePlan {
                good: good.clone(),
                secrets: vec![PASSWORD.into(), WRONG_PASSWORD.into()],
                invalid: vec![
                    InvalidDraft {
                        draft: with(good.clone(), "host", json!("https://user@vc.example/x")),
                        fields: vec!["host"],
                    },
                    InvalidDraft {
                        draft: with(good.clone(), "fingerprint", json!("sha256:abc")),
                        fields: vec!["fingerprint"],
                    },
                    InvalidDraft {
                        draft: with(good.clone(), "caCertificate", json!("not a PEM")),
                        fields: vec!["caCertificate"],
                    },
                ],
                failures: vec![
                    case(
                        FailureCategory::Auth,
                        with(good.clone(), "password", json!(WRONG_PASSWORD)),
                        "wrong password",
                    ),
                    case(
                        FailureCategory::Tls,
                        draft(self.sim.port(), true),
                        "certificate from an untrusted CA",
                    ),
                    case(
                        FailureCategory::Network,
                        draft(self.closed_port, false),
                        "nothing listens",
                    ),
                    case(
                        FailureCategory::Timeout,
                        draft(self.hung.port(), false),
                        "accepts and never answers",
                    ),
                    case(
                        FailureCategory::Endpoint,
                        draft(self.html.port(), false),
                        "a web page, not the vSphere API",
                    ),
                    case(
                        FailureCategory::Unsupported,
                        with(
                            draft(self.esx.port(), true),
                            "fingerprint",
                            json!(self.esx.leaf_sha256()),
                        ),
                        "a direct ESXi host",
                    ),
                    case(
                        FailureCategory::Permission,
                        draft(self.permission.port(), false),
                        "NoPermission on CreateContainerView",
                    ),
                    case(
                        FailureCategory::Protocol,
                        draft(self.protocol.port(), false),
                        "unreadable RetrievePropertiesEx answer",
                    ),
                ],
                not_produced: vec![(
                    FailureCategory::InvalidConfig,
                    "validation rejects every configuration the provider cannot use, before a test runs",
                )],
                golden: PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/conformance/golden.json"
                )),
                // The simulator backs each datastore with a fresh temporary directory and
                // reports the host file system's free space.
                volatile: vec![
                    "storage/identity.nativeId",
                    "storage/identity.url",
                    "storage/details.url",
                    "storage/details.freeBytes",
                    "storage/metrics.diskUsedBytes",
                ],
                test_timeout: Duration::from_secs(3),
                waivers: vec![],
            }
        }

        async fn set_outage(&self, down: bool) -> Result<(), FixtureError> {
            self.proxy.set_rule(down.then(outage_rule));
            Ok(())
        }

        fn open_sessions(&self) -> Option<u64> {
            let requests = self.proxy.requests();
            let count = |method: &str| requests.iter().filter(|r| *r == method).count() as u64;
            Some(count("Login").saturating_sub(count("Logout")))
        }

        /// The simulator has no alarm manager; the launcher sets a triggered alarm state on a
        /// VM directly (see `pylon_vcsim::Simulator::set_triggered_alarm`).
        async fn raise_alarm(&self) -> Result<bool, FixtureError> {
            self.sim
                .set_triggered_alarm("VirtualMachine", "DC0_H0_VM0", "alarm-conformance", "red")
                .await;
            Ok(true)
        }

        async fn stop(self: Box<Self>) {
            let Target { sim, esx, .. } = *self;
            esx.stop().await;
            sim.stop().await;
        }
    }
}
