//! `pylon_core::Provider` for a static inventory file.
//!
//! A connection test reads and parses the file once. A session keeps the last parsed file
//! with its stamp (modification time and length): each poll reads only the metadata and
//! re-reads the content only when the stamp changed, so a large unchanged file costs one
//! `stat` per poll. The trait methods stay thin and await the module functions.

use crate::descriptor::{DESCRIPTOR, FIELD_PATH};
use crate::format::InventoryFile;
use crate::project;
use crate::read::{self, Stamp};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pylon_core::model::{count_resources, Projection};
use pylon_core::provider::{Observation, ProviderSession};
use pylon_core::{
    ConnectionConfig, FailureCategory, FieldErrors, PlatformDescriptor, Provider, ProviderError,
    TestContext, TestReport,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Deadline for one poll's read. Generous, because only a stalled file system takes long.
const POLL_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The static-file provider. Stateless: each session holds its own cached file.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileProvider {
    _private: (),
}

/// What one poll observed: the parsed file (shared with the session's cache) and when.
struct FileObservation {
    file: Arc<InventoryFile>,
    file_name: String,
    observed_at: DateTime<Utc>,
}

#[async_trait]
impl Provider for FileProvider {
    fn descriptor(&self) -> &'static PlatformDescriptor {
        &DESCRIPTOR
    }

    fn validate(&self, config: &mut ConnectionConfig) -> Result<(), FieldErrors> {
        normalize(config)
    }

    async fn test(
        &self,
        config: &ConnectionConfig,
        context: &TestContext,
    ) -> Result<TestReport, ProviderError> {
        test_file(config, context.timeout).await
    }

    async fn connect(
        &self,
        config: &ConnectionConfig,
    ) -> Result<Box<dyn ProviderSession>, ProviderError> {
        // Nothing to open: a file is read per poll. The path is checked here so a config
        // that bypassed validation fails at once rather than on every poll.
        let path = configured_path(config)?;
        Ok(Box::new(FileSession { path, cached: None }))
    }

    fn project(
        &self,
        connection_id: &str,
        observation: &Observation,
    ) -> Result<Projection, ProviderError> {
        let observation = observation
            .downcast_ref::<FileObservation>()
            .ok_or_else(|| {
                ProviderError::new(
                    FailureCategory::Protocol,
                    "the observation was not produced by the static-file provider",
                )
            })?;
        Ok(project::project(
            connection_id,
            DESCRIPTOR.platform,
            &observation.file,
            &observation.file_name,
            observation.observed_at,
        ))
    }
}

/// Trims the path and requires it to be absolute: a relative path would depend on the
/// server's working directory, which differs between a service and a shell.
fn normalize(config: &mut ConnectionConfig) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::new();
    let Some(raw) = config.str_setting(FIELD_PATH) else {
        errors.add(FIELD_PATH, "enter the absolute path of the inventory file");
        return Err(errors);
    };
    let trimmed = raw.trim().to_owned();
    if trimmed.is_empty() {
        errors.add(FIELD_PATH, "enter the absolute path of the inventory file");
    } else if !Path::new(&trimmed).is_absolute() {
        errors.add(
            FIELD_PATH,
            "use an absolute path (starting with `/`): a relative one would depend on the \
             server's working directory",
        );
    } else if trimmed.ends_with('/') {
        errors.add(FIELD_PATH, "name the inventory file, not a directory");
    }
    errors.into_result()?;
    config
        .settings
        .insert(FIELD_PATH.into(), serde_json::Value::String(trimmed));
    Ok(())
}

fn configured_path(config: &ConnectionConfig) -> Result<PathBuf, ProviderError> {
    config
        .str_setting(FIELD_PATH)
        .filter(|path| Path::new(path).is_absolute())
        .map(PathBuf::from)
        .ok_or_else(|| {
            ProviderError::new(
                FailureCategory::InvalidConfig,
                "the connection has no absolute inventory file path",
            )
        })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

async fn test_file(
    config: &ConnectionConfig,
    timeout: Duration,
) -> Result<TestReport, ProviderError> {
    let path = configured_path(config)?;
    let (_, file) = read::read(&path, timeout).await?;
    // The counts come from the same projection a poll makes, so they cannot disagree.
    let projection = project::project(
        "test",
        DESCRIPTOR.platform,
        &file,
        &file_name(&path),
        Utc::now(),
    );
    Ok(TestReport {
        counts: count_resources(&projection.resources),
        system: projection.system,
    })
}

struct FileSession {
    path: PathBuf,
    cached: Option<(Stamp, Arc<InventoryFile>)>,
}

impl FileSession {
    async fn poll_file(&mut self) -> Result<Observation, ProviderError> {
        let stamp = read::stamp(&self.path, POLL_READ_TIMEOUT).await?;
        let file = match &self.cached {
            Some((cached, file)) if *cached == stamp => Arc::clone(file),
            _ => {
                let (stamp, file) = read::read(&self.path, POLL_READ_TIMEOUT).await?;
                tracing::debug!(
                    path = %self.path.display(),
                    agents = file.agents.len(),
                    vms = file.vms.len(),
                    storage = file.storage.len(),
                    "inventory file (re)read"
                );
                self.cached = Some((stamp, Arc::clone(&file)));
                file
            }
        };
        Ok(Box::new(FileObservation {
            file,
            file_name: file_name(&self.path),
            observed_at: Utc::now(),
        }))
    }
}

#[async_trait]
impl ProviderSession for FileSession {
    async fn poll(&mut self) -> Result<Observation, ProviderError> {
        self.poll_file().await
    }

    async fn close(&mut self) {
        // Nothing is held open between polls; dropping the cache frees its memory.
        self.cached = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pylon_core::draft::apply_draft;
    use serde_json::json;

    fn check(path: serde_json::Value, expected: Result<&str, &str>) {
        let draft = json!({"name": "demo", "path": path});
        let outcome = apply_draft(&DESCRIPTOR, None, &draft)
            .and_then(|mut config| normalize(&mut config).map(|()| config));
        match (outcome, expected) {
            (Ok(config), Ok(normalized)) => {
                assert_eq!(config.str_setting(FIELD_PATH), Some(normalized))
            }
            (Err(errors), Err(message)) => {
                let got = errors.get(FIELD_PATH).unwrap_or_default();
                assert!(got.contains(message), "{got}");
            }
            (other, expected) => panic!("{draft}: {other:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn validation_requires_an_absolute_file_path() {
        check(json!(" /srv/inventory.json "), Ok("/srv/inventory.json"));
        check(json!("inventory.json"), Err("absolute path"));
        check(json!("./x/inventory.json"), Err("absolute path"));
        check(json!("   "), Err("required"));
        check(json!("/srv/"), Err("not a directory"));
        // Core rejects control characters in text fields before `validate` runs.
        check(json!("/srv/a\u{0}b"), Err("control characters"));
    }

    #[tokio::test]
    async fn a_poll_sees_an_edit_and_reuses_an_unchanged_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("inventory.json");
        std::fs::write(
            &path,
            br#"{"version": 1, "agents": [{"id": "a", "name": "A"}]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut session = FileSession {
            path: path.clone(),
            cached: None,
        };
        let count = |o: &Observation| {
            o.downcast_ref::<FileObservation>()
                .map(|o| (o.file.agents.len(), Arc::strong_count(&o.file)))
        };
        let first = session.poll_file().await.unwrap_or_else(|e| panic!("{e}"));
        let second = session.poll_file().await.unwrap_or_else(|e| panic!("{e}"));
        // Both observations and the cache share one parsed file.
        assert_eq!(count(&second), Some((1, 3)));
        drop((first, second));
        std::fs::write(
            &path,
            br#"{"version": 1, "agents": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let third = session.poll_file().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(count(&third).map(|c| c.0), Some(2));
    }
}
