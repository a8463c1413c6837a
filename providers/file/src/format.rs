//! The static inventory file format, version 1 (documented for authors in
//! `docs/file-provider.md`), and the checks that make a parsed file usable.
//!
//! The types deny unknown fields: a misspelt `topolgy` in a hand-written demo file should be
//! an error that names it, not a silently empty placement. Checks that concern the file as a
//! whole (format version, unique non-empty ids) fail the read; a relation to an id the file
//! does not define is left for the projection, which reports it as an issue, so one typo does
//! not hide a whole inventory.

use pylon_core::model::{RelationKind, ResourceStatus};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// The only format version this provider reads.
pub(crate) const FORMAT_VERSION: u64 = 1;

/// A whole inventory file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct InventoryFile {
    /// Format version; must be [`FORMAT_VERSION`].
    pub version: u64,
    #[serde(default)]
    pub system: FileSystem,
    #[serde(default)]
    pub agents: Vec<Entry>,
    #[serde(default)]
    pub vms: Vec<Entry>,
    #[serde(default)]
    pub storage: Vec<Entry>,
}

/// The platform instance the file stands for, shown as the connection's `observed.system`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FileSystem {
    pub name: Option<String>,
    pub product: Option<String>,
    pub version: Option<String>,
    pub build: Option<String>,
    pub instance_uuid: Option<String>,
}

/// One agent, VM or storage entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Entry {
    /// Stable id, unique in the file; the canonical id is derived from it.
    pub id: String,
    pub name: String,
    #[serde(default = "unknown_status")]
    pub status: ResourceStatus,
    /// Optional extra identity such as a UUID, shown as `identity.uuid`.
    pub uuid: Option<String>,
    #[serde(default)]
    pub relations: Vec<FileRelation>,
    #[serde(default)]
    pub topology: FileTopology,
    #[serde(default)]
    pub metrics: FileMetrics,
    /// Type-specific details, passed through as given (see the canonical model for names).
    #[serde(default)]
    pub details: Map<String, Value>,
}

fn unknown_status() -> ResourceStatus {
    ResourceStatus::Unknown
}

/// A relation to another entry of the same file, by its file id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileRelation {
    pub kind: RelationKind,
    pub target: String,
}

/// Placement by name, as in the canonical model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FileTopology {
    pub datacenter: Option<String>,
    pub cluster: Option<String>,
    pub folder: Option<String>,
    pub resource_pool: Option<String>,
}

/// Latest metrics, as in the canonical model.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FileMetrics {
    pub cpu_percent: Option<f64>,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    pub disk_used_bytes: Option<u64>,
    pub disk_total_bytes: Option<u64>,
    pub uptime_seconds: Option<u64>,
}

/// Why file content cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FormatError {
    /// Not JSON, or not the shape of an inventory file.
    Malformed(String),
    /// A format version this provider does not read.
    UnsupportedVersion(u64),
    /// The file is well-formed but breaks a rule about ids.
    Inconsistent(String),
}

/// Parses and checks file content. CPU-bound: callers run it off the async runtime.
pub(crate) fn parse(bytes: &[u8]) -> Result<InventoryFile, FormatError> {
    // The version is read first so a future format is reported as unsupported rather than
    // as a pile of unknown-field errors.
    #[derive(Deserialize)]
    struct Versioned {
        version: Option<Value>,
    }
    let versioned: Versioned =
        serde_json::from_slice(bytes).map_err(|error| FormatError::Malformed(describe(&error)))?;
    match versioned.version {
        Some(Value::Number(n)) if n.as_u64() == Some(FORMAT_VERSION) => {}
        Some(Value::Number(n)) => match n.as_u64() {
            Some(other) => return Err(FormatError::UnsupportedVersion(other)),
            None => return Err(FormatError::Malformed("`version` must be 1".into())),
        },
        Some(_) => {
            return Err(FormatError::Malformed(
                "`version` must be the number 1".into(),
            ))
        }
        None => {
            return Err(FormatError::Malformed(
                "the field `version` is missing".into(),
            ))
        }
    }
    let file: InventoryFile =
        serde_json::from_slice(bytes).map_err(|error| FormatError::Malformed(describe(&error)))?;
    check_ids(&file)?;
    Ok(file)
}

/// Ids must be non-empty and unique across the whole file: relations name their target by
/// id alone, whatever its type.
fn check_ids(file: &InventoryFile) -> Result<(), FormatError> {
    let mut seen = BTreeSet::new();
    for (section, entries) in [
        ("agents", &file.agents),
        ("vms", &file.vms),
        ("storage", &file.storage),
    ] {
        for (index, entry) in entries.iter().enumerate() {
            if entry.id.trim().is_empty() {
                return Err(FormatError::Inconsistent(format!(
                    "{section}[{index}] has an empty `id`"
                )));
            }
            if entry.name.trim().is_empty() {
                return Err(FormatError::Inconsistent(format!(
                    "{section}[{index}] (`{}`) has an empty `name`",
                    entry.id
                )));
            }
            if !seen.insert(entry.id.as_str()) {
                return Err(FormatError::Inconsistent(format!(
                    "the id `{}` is used twice (ids must be unique across agents, vms and storage)",
                    entry.id
                )));
            }
        }
    }
    Ok(())
}

/// A serde_json error as a message that locates the problem without quoting file content:
/// the path may point at a file that was never meant to be an inventory, and its values
/// could be anything. Double-quoted values are masked, and so is the first backticked one
/// (serde's `unknown variant `…``) unless the message is about a field name, which is what an
/// author needs to fix a typo. The lists of expected names come from this format, not the
/// file, and are kept.
fn describe(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let names_a_field = ["unknown field", "missing field", "duplicate field"]
        .iter()
        .any(|prefix| text.starts_with(prefix));
    let mut out = String::with_capacity(text.len());
    let mut masking: Option<char> = None;
    let mut backticks_seen = 0;
    for c in text.chars() {
        match (c, masking) {
            (close, Some(open)) if close == open => {
                masking = None;
                out.push(close);
            }
            (_, Some(_)) => {}
            ('"', None) => {
                masking = Some('"');
                out.push_str("\"…");
            }
            ('`', None) => {
                backticks_seen += 1;
                if backticks_seen == 1 && !names_a_field {
                    masking = Some('`');
                    out.push_str("`…");
                } else {
                    out.push('`');
                }
            }
            (c, None) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<(), FormatError>) {
        assert_eq!(parse(input.as_bytes()).map(|_| ()), expected, "{input}");
    }

    #[test]
    fn accepts_a_minimal_file() {
        check(r#"{"version": 1}"#, Ok(()));
        check(
            r#"{"version": 1, "agents": [{"id": "a", "name": "A"}], "vms": [{"id": "v", "name": "V", "relations": [{"kind": "runsOn", "target": "a"}]}]}"#,
            Ok(()),
        );
    }

    #[test]
    fn rejects_what_is_not_an_inventory() {
        assert!(matches!(parse(b"not json"), Err(FormatError::Malformed(_))));
        assert!(matches!(parse(b"[]"), Err(FormatError::Malformed(_))));
        check(
            r#"{"agents": []}"#,
            Err(FormatError::Malformed(
                "the field `version` is missing".into(),
            )),
        );
        check(r#"{"version": 2}"#, Err(FormatError::UnsupportedVersion(2)));
        check(
            r#"{"version": "1"}"#,
            Err(FormatError::Malformed(
                "`version` must be the number 1".into(),
            )),
        );
    }

    #[test]
    fn names_unknown_fields_but_never_quotes_values() {
        let Err(FormatError::Malformed(message)) =
            parse(br#"{"version": 1, "agents": [{"id": "a", "name": "A", "topolgy": {}}]}"#)
        else {
            panic!("an unknown field must be malformed");
        };
        assert!(message.contains("`topolgy`"), "{message}");
        let Err(FormatError::Malformed(message)) = parse(
            br#"{"version": 1, "agents": [{"id": "a", "name": "A", "status": "s3cr3t-value"}]}"#,
        ) else {
            panic!("an unknown status must be malformed");
        };
        assert!(!message.contains("s3cr3t-value"), "{message}");
        assert!(message.contains("`online`"), "{message}");
        let Err(FormatError::Malformed(message)) =
            parse(br#"{"version": 1, "agents": [{"id": 7, "name": "A"}]}"#)
        else {
            panic!("a numeric id must be malformed");
        };
        assert!(message.contains("line 1"), "{message}");
    }

    #[test]
    fn ids_are_unique_and_non_empty_across_sections() {
        check(
            r#"{"version": 1, "agents": [{"id": "x", "name": "A"}], "storage": [{"id": "x", "name": "S"}]}"#,
            Err(FormatError::Inconsistent(
                "the id `x` is used twice (ids must be unique across agents, vms and storage)"
                    .into(),
            )),
        );
        check(
            r#"{"version": 1, "vms": [{"id": " ", "name": "V"}]}"#,
            Err(FormatError::Inconsistent("vms[0] has an empty `id`".into())),
        );
    }
}
