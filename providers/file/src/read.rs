//! Reading an inventory file without blocking the runtime, and classifying every way that
//! can fail into Pylon's one failure vocabulary.
//!
//! The mapping, also documented in `docs/file-provider.md`, follows what each category means
//! for a network platform:
//!
//! | what happened | category | why |
//! |---|---|---|
//! | no file at the path, a path component is not a directory, or the path is a directory | `endpoint` | the address answers, but not with an inventory file |
//! | read permission denied | `permission` | reachable, but the Pylon user lacks a read privilege |
//! | not JSON, wrong shape, unknown field, empty or duplicate id | `protocol` | the source answered with something unexpected |
//! | a format `version` other than 1, or a file over the size limit | `unsupported` | a kind of source this provider does not read |
//! | the read did not finish within the deadline (a stalled network mount, a FIFO nobody writes) | `timeout` | no answer in time |
//! | a network file system lost its server | `network` | unreachable |
//!
//! `auth` and `tls` cannot occur (a local file has neither credentials nor a handshake) and
//! `invalid_config` is caught by validation before any read.

use crate::format::{self, FormatError, InventoryFile};
use pylon_core::{FailureCategory, ProviderError};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Largest file read. Inventory files are hand-written or generated for demos; anything
/// bigger is almost certainly the wrong file, and reading it would cost memory per poll.
pub(crate) const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// What identifies one version of a file cheaply: an unchanged file keeps both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

/// The file's current stamp, under `deadline`.
pub(crate) async fn stamp(path: &Path, deadline: Duration) -> Result<Stamp, ProviderError> {
    within(deadline, path, stamp_now(path)).await
}

/// Reads and parses the whole file under `deadline`, returning the stamp it had before the
/// read (so a change during the read is seen by the next poll, never hidden by it).
pub(crate) async fn read(
    path: &Path,
    deadline: Duration,
) -> Result<(Stamp, Arc<InventoryFile>), ProviderError> {
    within(deadline, path, read_now(path)).await
}

async fn within<T>(
    deadline: Duration,
    path: &Path,
    work: impl std::future::Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    match tokio::time::timeout(deadline, work).await {
        Ok(outcome) => outcome,
        Err(_) => Err(ProviderError::new(
            FailureCategory::Timeout,
            format!(
                "reading {} did not finish within {} s: the file system is not answering \
                 (a stalled network mount, or a pipe nobody writes to)",
                path.display(),
                deadline.as_secs_f32()
            ),
        )),
    }
}

async fn stamp_now(path: &Path) -> Result<Stamp, ProviderError> {
    let metadata = tokio::fs::metadata(path)
        .await
        .map_err(|error| classify_io(path, &error))?;
    if metadata.is_dir() {
        return Err(ProviderError::new(
            FailureCategory::Endpoint,
            format!(
                "{} is a directory; point the connection at the inventory file itself",
                path.display()
            ),
        ));
    }
    let stamp = Stamp {
        modified: metadata.modified().ok(),
        len: metadata.len(),
    };
    check_size(path, stamp.len)?;
    Ok(stamp)
}

async fn read_now(path: &Path) -> Result<(Stamp, Arc<InventoryFile>), ProviderError> {
    let stamp = stamp_now(path).await?;
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|error| classify_io(path, &error))?;
    // The file may have grown since its metadata was read (or be a pipe with no length).
    check_size(path, bytes.len() as u64)?;
    // Parsing a large file is CPU work; keep it off the runtime's worker threads.
    let parsed = tokio::task::spawn_blocking(move || format::parse(&bytes))
        .await
        .map_err(|_| {
            ProviderError::new(
                FailureCategory::Protocol,
                format!("parsing {} stopped unexpectedly", path.display()),
            )
        })?;
    let file = parsed.map_err(|error| classify_format(path, error))?;
    Ok((stamp, Arc::new(file)))
}

fn check_size(path: &Path, len: u64) -> Result<(), ProviderError> {
    if len > MAX_FILE_BYTES {
        return Err(ProviderError::new(
            FailureCategory::Unsupported,
            format!(
                "{} is {len} bytes; inventory files are limited to {MAX_FILE_BYTES} bytes",
                path.display()
            ),
        ));
    }
    Ok(())
}

/// One I/O error to its category. Decided by `ErrorKind`, never by message text.
pub(crate) fn classify_io(path: &Path, error: &io::Error) -> ProviderError {
    let path = path.display();
    let (category, message) = match error.kind() {
        io::ErrorKind::NotFound => (
            FailureCategory::Endpoint,
            format!("there is no file at {path}: check the path (it is read on the Pylon server, not in the browser)"),
        ),
        io::ErrorKind::NotADirectory => (
            FailureCategory::Endpoint,
            format!("a part of {path} is a file, not a directory: check the path"),
        ),
        io::ErrorKind::IsADirectory => (
            FailureCategory::Endpoint,
            format!("{path} is a directory; point the connection at the inventory file itself"),
        ),
        io::ErrorKind::PermissionDenied => (
            FailureCategory::Permission,
            format!("the Pylon server's user may not read {path}: grant it read permission on the file and search permission on its directories"),
        ),
        io::ErrorKind::TimedOut => (
            FailureCategory::Timeout,
            format!("reading {path} timed out: the file system is not answering"),
        ),
        io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::NetworkDown
        | io::ErrorKind::ConnectionRefused
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::NotConnected => (
            FailureCategory::Network,
            format!("{path} is on a network file system that cannot reach its server ({error})"),
        ),
        _ => (
            FailureCategory::Protocol,
            format!("reading {path} failed: {error}"),
        ),
    };
    ProviderError::new(category, message)
}

fn classify_format(path: &Path, error: FormatError) -> ProviderError {
    let path = path.display();
    match error {
        FormatError::Malformed(why) => ProviderError::new(
            FailureCategory::Protocol,
            format!(
                "{path} is not a valid Pylon inventory file: {why} (format: docs/file-provider.md)"
            ),
        ),
        FormatError::Inconsistent(why) => ProviderError::new(
            FailureCategory::Protocol,
            format!("{path} is not a valid Pylon inventory file: {why}"),
        ),
        FormatError::UnsupportedVersion(version) => ProviderError::new(
            FailureCategory::Unsupported,
            format!(
                "{path} uses inventory format version {version}; this Pylon reads version {}",
                format::FORMAT_VERSION
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: io::ErrorKind, expected: FailureCategory) {
        let error = classify_io(Path::new("/srv/inventory.json"), &io::Error::from(kind));
        assert_eq!(error.category, expected, "{kind:?}: {}", error.message);
        assert!(
            error.message.contains("/srv/inventory.json"),
            "{}",
            error.message
        );
    }

    #[test]
    fn io_errors_map_to_the_documented_categories() {
        check(io::ErrorKind::NotFound, FailureCategory::Endpoint);
        check(io::ErrorKind::NotADirectory, FailureCategory::Endpoint);
        check(io::ErrorKind::IsADirectory, FailureCategory::Endpoint);
        // The conformance fixture cannot stage this one when the tests run as root.
        check(io::ErrorKind::PermissionDenied, FailureCategory::Permission);
        check(io::ErrorKind::TimedOut, FailureCategory::Timeout);
        check(io::ErrorKind::HostUnreachable, FailureCategory::Network);
        check(io::ErrorKind::InvalidData, FailureCategory::Protocol);
    }

    #[tokio::test]
    async fn an_unchanged_file_keeps_its_stamp_and_an_edit_changes_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("inventory.json");
        std::fs::write(&path, br#"{"version": 1}"#).unwrap_or_else(|e| panic!("{e}"));
        let deadline = Duration::from_secs(5);
        let (first, _) = read(&path, deadline)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(stamp(&path, deadline).await, Ok(first));
        std::fs::write(&path, br#"{"version": 1, "agents": []}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(stamp(&path, deadline).await, Ok(first));
    }
}
