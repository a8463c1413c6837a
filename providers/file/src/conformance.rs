//! The static-file provider's conformance fixture: the documented example inventory
//! (`examples/inventory.json`) in a temporary directory, one file per failure category, and
//! the expectations the kit checks the provider against.
//!
//! An outage is the inventory file moved away (the poll sees `endpoint`); recovery moves it
//! back. Temporary files are test-only machinery, so the fixture is compiled only with this
//! crate's `conformance` feature; without it the fixture cannot start and a conformance run
//! fails instead of passing green.

use pylon_core::fixture::ConformanceFixture;

/// The fixture the registration in `lib.rs` names.
pub(crate) fn fixture() -> Box<dyn ConformanceFixture> {
    #[cfg(feature = "conformance")]
    {
        Box::new(files::FileFixture)
    }
    #[cfg(not(feature = "conformance"))]
    {
        Box::new(pylon_core::fixture::UnavailableFixture {
            reason: "pylon-file was built without its `conformance` feature; run \
                     `cargo nextest run --workspace`",
        })
    }
}

#[cfg(feature = "conformance")]
mod files {
    use async_trait::async_trait;
    use pylon_core::fixture::{
        ConformanceFixture, FailureCase, FixtureError, FixturePlan, FixtureTarget, InvalidDraft,
    };
    use pylon_core::FailureCategory;
    use serde_json::{json, Value};
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    /// The known inventory: the example shipped with the crate, so it is always valid.
    const INVENTORY: &str = include_str!("../examples/inventory.json");

    pub(super) struct FileFixture;

    fn fail(what: &str, error: impl std::fmt::Display) -> FixtureError {
        FixtureError(format!("{what}: {error}"))
    }

    #[async_trait]
    impl ConformanceFixture for FileFixture {
        async fn start(&self) -> Result<Box<dyn FixtureTarget>, FixtureError> {
            let dir = tempfile::tempdir().map_err(|e| fail("temporary directory", e))?;
            let root = dir.path().to_owned();
            let write = |name: &str, content: &str| {
                let path = root.join(name);
                std::fs::write(&path, content)
                    .map(|()| path)
                    .map_err(|e| fail(name, e))
            };
            let good = write("inventory.json", INVENTORY)?;
            let protocol = write("malformed.json", "{\"version\": 1, \"agents\": [")?;
            let unsupported = write("future.json", "{\"version\": 2, \"hosts\": []}")?;
            let unreadable = write("unreadable.json", INVENTORY)?;
            std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000))
                .map_err(|e| fail("chmod 000", e))?;
            // Root reads a file whatever its mode, so the permission case can only be staged
            // for another user. Probe rather than guess from the user id.
            let permission = std::fs::read(&unreadable).is_err().then_some(unreadable);
            // A FIFO nobody writes to blocks its reader: the one local file that does not
            // answer, standing in for a stalled network mount.
            let fifo = root.join("stalled.fifo");
            let made = std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .map_err(|e| fail("mkfifo", e))?;
            if !made.success() {
                return Err(fail("mkfifo", made));
            }
            Ok(Box::new(Target {
                hidden: root.join("inventory.json.away"),
                missing: root.join("no-such-inventory.json"),
                good,
                protocol,
                unsupported,
                permission,
                fifo,
                _dir: dir,
            }))
        }
    }

    struct Target {
        good: PathBuf,
        hidden: PathBuf,
        missing: PathBuf,
        protocol: PathBuf,
        unsupported: PathBuf,
        permission: Option<PathBuf>,
        fifo: PathBuf,
        _dir: tempfile::TempDir,
    }

    fn draft(path: &Path) -> Value {
        json!({"name": "conformance", "path": path.to_string_lossy()})
    }

    #[async_trait]
    impl FixtureTarget for Target {
        fn plan(&self) -> FixturePlan {
            let case = |category, path: &Path, setup| FailureCase {
                category,
                draft: draft(path),
                setup,
            };
            let mut failures = vec![
                case(
                    FailureCategory::Endpoint,
                    &self.missing,
                    "no file at the path",
                ),
                case(FailureCategory::Protocol, &self.protocol, "truncated JSON"),
                case(
                    FailureCategory::Unsupported,
                    &self.unsupported,
                    "format version 2",
                ),
                case(
                    FailureCategory::Timeout,
                    &self.fifo,
                    "a FIFO nobody writes to",
                ),
            ];
            let mut not_produced = vec![
                (
                    FailureCategory::InvalidConfig,
                    "validation rejects a missing, relative or directory path before a test runs",
                ),
                (FailureCategory::Auth, "a local file has no credentials"),
                (FailureCategory::Tls, "a local file has no TLS handshake"),
                (
                    FailureCategory::Network,
                    "only a network file system that lost its server yields it; a test cannot stage one",
                ),
            ];
            match &self.permission {
                Some(path) => failures.push(case(
                    FailureCategory::Permission,
                    path,
                    "a file with mode 000",
                )),
                None => not_produced.push((
                    FailureCategory::Permission,
                    "the tests run as root, which reads a mode-000 file; the mapping is unit-tested in read.rs",
                )),
            }
            FixturePlan {
                good: draft(&self.good),
                secrets: vec![],
                invalid: vec![
                    InvalidDraft {
                        draft: json!({"name": "conformance", "path": "inventory.json"}),
                        fields: vec!["path"],
                    },
                    InvalidDraft {
                        draft: json!({"name": "conformance", "path": "  "}),
                        fields: vec!["path"],
                    },
                    InvalidDraft {
                        draft: json!({"name": "conformance", "path": "/srv/pylon/"}),
                        fields: vec!["path"],
                    },
                ],
                failures,
                not_produced,
                golden: PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/conformance/golden.json"
                )),
                volatile: vec![],
                test_timeout: Duration::from_secs(2),
                waivers: vec![],
            }
        }

        async fn set_outage(&self, down: bool) -> Result<(), FixtureError> {
            let (from, to) = if down {
                (&self.good, &self.hidden)
            } else {
                (&self.hidden, &self.good)
            };
            tokio::fs::rename(from, to)
                .await
                .map_err(|e| fail("moving the inventory file", e))
        }

        /// A file holds no sessions.
        fn open_sessions(&self) -> Option<u64> {
            None
        }

        async fn stop(self: Box<Self>) {
            // The timed-out test left a blocking-pool thread waiting in `open` for a writer;
            // the runtime waits for that thread when it shuts down. Opening the FIFO for
            // reading and writing never blocks on Linux, completes the waiting reader's open,
            // and closing it at once lets that reader see end-of-file. Bounded anyway, so a
            // stuck file system cannot hang the run.
            let fifo = self.fifo.clone();
            let release = tokio::task::spawn_blocking(move || {
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(fifo)
                    .map(drop)
            });
            let _ = tokio::time::timeout(Duration::from_secs(2), release).await;
        }
    }
}
