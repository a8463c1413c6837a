//! The pure projection of a parsed inventory file into canonical resources.
//!
//! Ids are `{connection}-{type}-{hash}` where `hash` is the first 16 hex digits of the
//! SHA-256 of the entry's file id: stable across polls and renames (the name is not part of
//! it), URL-safe whatever characters the file's ids use, and disjoint for two connections to
//! the same file. Relations name their target by file id; a target the file does not define,
//! or an entry relating to itself, is left out and reported as a [`PollIssue`] so the
//! connection shows `degraded` instead of serving a dangling relation.

use crate::format::{Entry, FileSystem, InventoryFile};
use chrono::{DateTime, Utc};
use pylon_core::model::{
    LatestMetrics, PollIssue, Projection, Relation, RelationKind, Resource, ResourceType, Topology,
    TopologyCounts,
};
use pylon_core::{FailureCategory, SystemIdentity};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// The stage named in issues this projection reports.
const RELATIONS_STAGE: &str = "relations";

/// The product named when the file does not say.
pub(crate) const DEFAULT_PRODUCT: &str = "Pylon static inventory file";

/// The platform identity a file stands for; `file_name` names it when the file does not.
pub(crate) fn system(system: &FileSystem, file_name: &str) -> SystemIdentity {
    SystemIdentity {
        name: system.name.clone().unwrap_or_else(|| file_name.to_owned()),
        product: system
            .product
            .clone()
            .unwrap_or_else(|| DEFAULT_PRODUCT.to_owned()),
        version: system.version.clone().unwrap_or_default(),
        build: system.build.clone().unwrap_or_default(),
        instance_uuid: system.instance_uuid.clone().unwrap_or_default(),
    }
}

/// The canonical id of a file entry for one connection.
pub(crate) fn resource_id(connection_id: &str, kind: ResourceType, file_id: &str) -> String {
    let digest = Sha256::digest(file_id.as_bytes());
    let hash = hex::encode(&digest[..8]);
    format!("{connection_id}-{}-{hash}", kind.as_str())
}

pub(crate) fn project(
    connection_id: &str,
    platform: &str,
    file: &InventoryFile,
    file_name: &str,
    observed_at: DateTime<Utc>,
) -> Projection {
    let sections = [
        (ResourceType::Agent, &file.agents),
        (ResourceType::Vm, &file.vms),
        (ResourceType::Storage, &file.storage),
    ];
    let ids: BTreeMap<&str, String> = sections
        .iter()
        .flat_map(|(kind, entries)| {
            entries
                .iter()
                .map(move |e| (e.id.as_str(), resource_id(connection_id, *kind, &e.id)))
        })
        .collect();
    let mut issues = Issues::default();
    let mut resources = Vec::with_capacity(ids.len());
    let mut places = PlaceNames::default();
    for (kind, entries) in sections {
        for entry in entries.iter() {
            places.add(entry);
            resources.push(Resource {
                id: resource_id(connection_id, kind, &entry.id),
                resource_type: kind,
                platform: platform.to_owned(),
                connection_id: connection_id.to_owned(),
                name: entry.name.clone(),
                status: entry.status,
                identity: identity(entry),
                relations: relations(entry, &ids, &mut issues),
                topology: Topology {
                    datacenter: entry.topology.datacenter.clone(),
                    cluster: entry.topology.cluster.clone(),
                    folder: entry.topology.folder.clone(),
                    resource_pool: entry.topology.resource_pool.clone(),
                },
                metrics: LatestMetrics {
                    cpu_percent: entry.metrics.cpu_percent,
                    memory_used_bytes: entry.metrics.memory_used_bytes,
                    memory_total_bytes: entry.metrics.memory_total_bytes,
                    disk_used_bytes: entry.metrics.disk_used_bytes,
                    disk_total_bytes: entry.metrics.disk_total_bytes,
                    uptime_seconds: entry.metrics.uptime_seconds,
                },
                details: entry.details.clone(),
                last_seen_at: observed_at,
            });
        }
    }
    Projection {
        system: system(&file.system, file_name),
        resources,
        topology: places.counts(),
        issues: issues.finish(),
        collected_at: observed_at,
        // Format version 1 has no alerts yet (the support matrix says `planned`); parts the
        // model gains later start empty rather than breaking this crate.
        ..Projection::default()
    }
}

fn identity(entry: &Entry) -> Map<String, Value> {
    let mut identity = Map::new();
    identity.insert("nativeId".into(), Value::String(entry.id.clone()));
    if let Some(uuid) = &entry.uuid {
        identity.insert("uuid".into(), Value::String(uuid.clone()));
    }
    identity
}

fn relations(entry: &Entry, ids: &BTreeMap<&str, String>, issues: &mut Issues) -> Vec<Relation> {
    let mut out = BTreeSet::new();
    for relation in &entry.relations {
        if relation.target == entry.id {
            issues.add(format!(
                "`{}` relates to itself ({}); the relation is left out",
                entry.id,
                kind_name(relation.kind)
            ));
            continue;
        }
        match ids.get(relation.target.as_str()) {
            Some(target) => {
                out.insert(Relation {
                    kind: relation.kind,
                    target: target.clone(),
                });
            }
            None => issues.add(format!(
                "`{}` relates ({}) to `{}`, which the file does not define; the relation is left out",
                entry.id,
                kind_name(relation.kind),
                relation.target
            )),
        }
    }
    out.into_iter().collect()
}

/// A relation kind by its wire name, as an author wrote it in the file.
fn kind_name(kind: RelationKind) -> &'static str {
    match kind {
        RelationKind::RunsOn => "runsOn",
        RelationKind::UsesStorage => "usesStorage",
        RelationKind::MountedOn => "mountedOn",
        RelationKind::MemberOf => "memberOf",
    }
}

/// Issues, identical messages counted once with their occurrences.
#[derive(Default)]
struct Issues(BTreeMap<String, u32>);

impl Issues {
    fn add(&mut self, message: String) {
        *self.0.entry(message).or_default() += 1;
    }

    fn finish(self) -> Vec<PollIssue> {
        self.0
            .into_iter()
            .map(|(message, occurrences)| PollIssue {
                stage: RELATIONS_STAGE.to_owned(),
                category: FailureCategory::Protocol,
                message,
                occurrences,
            })
            .collect()
    }
}

/// Distinct placement names, for the secondary topology counts.
#[derive(Default)]
struct PlaceNames {
    datacenters: BTreeSet<String>,
    clusters: BTreeSet<String>,
    folders: BTreeSet<String>,
    resource_pools: BTreeSet<String>,
}

impl PlaceNames {
    fn add(&mut self, entry: &Entry) {
        let t = &entry.topology;
        for (set, name) in [
            (&mut self.datacenters, &t.datacenter),
            (&mut self.clusters, &t.cluster),
            (&mut self.folders, &t.folder),
            (&mut self.resource_pools, &t.resource_pool),
        ] {
            if let Some(name) = name {
                set.insert(name.clone());
            }
        }
    }

    fn counts(&self) -> TopologyCounts {
        TopologyCounts {
            datacenters: self.datacenters.len() as u64,
            clusters: self.clusters.len() as u64,
            folders: self.folders.len() as u64,
            resource_pools: self.resource_pools.len() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::parse;

    fn projected(json: &str) -> Projection {
        let file = parse(json.as_bytes()).unwrap_or_else(|e| panic!("{e:?}"));
        project("c1", "static-file", &file, "inventory.json", Utc::now())
    }

    #[test]
    fn ids_are_scoped_hashed_and_independent_of_names() {
        let a = projected(r#"{"version": 1, "vms": [{"id": "vm/1 ü", "name": "A"}]}"#);
        let b = projected(r#"{"version": 1, "vms": [{"id": "vm/1 ü", "name": "Renamed"}]}"#);
        assert_eq!(a.resources[0].id, b.resources[0].id);
        assert_eq!(
            a.resources[0].id,
            resource_id("c1", ResourceType::Vm, "vm/1 ü")
        );
        assert!(a.resources[0].id.starts_with("c1-vm-"));
        assert_eq!(a.resources[0].id.len(), "c1-vm-".len() + 16);
        assert_ne!(
            resource_id("c1", ResourceType::Vm, "x"),
            resource_id("c2", ResourceType::Vm, "x")
        );
    }

    #[test]
    fn relations_resolve_or_become_issues() {
        let p = projected(
            r#"{"version": 1,
                "agents": [{"id": "h", "name": "H"}],
                "vms": [{"id": "v", "name": "V", "relations": [
                    {"kind": "runsOn", "target": "h"},
                    {"kind": "runsOn", "target": "h"},
                    {"kind": "usesStorage", "target": "missing"},
                    {"kind": "memberOf", "target": "v"}]}]}"#,
        );
        let vm = &p.resources[1];
        assert_eq!(
            vm.relations,
            [Relation {
                kind: RelationKind::RunsOn,
                target: p.resources[0].id.clone()
            }]
        );
        let messages: Vec<&str> = p.issues.iter().map(|i| i.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "`v` relates (usesStorage) to `missing`, which the file does not define; the relation is left out",
                "`v` relates to itself (memberOf); the relation is left out",
            ]
        );
        assert!(p
            .issues
            .iter()
            .all(|i| i.category == FailureCategory::Protocol));
    }

    #[test]
    fn system_and_topology_counts_come_from_the_file() {
        let p = projected(
            r#"{"version": 1, "system": {"name": "Lab"},
                "agents": [{"id": "a", "name": "A", "topology": {"datacenter": "DC", "cluster": "C1"}},
                           {"id": "b", "name": "B", "topology": {"datacenter": "DC", "cluster": "C2"}}]}"#,
        );
        assert_eq!(p.system.name, "Lab");
        assert_eq!(p.system.product, DEFAULT_PRODUCT);
        assert_eq!(
            (
                p.topology.datacenters,
                p.topology.clusters,
                p.topology.folders
            ),
            (1, 2, 0)
        );
        let unnamed = projected(r#"{"version": 1}"#);
        assert_eq!(unnamed.system.name, "inventory.json");
    }
}
