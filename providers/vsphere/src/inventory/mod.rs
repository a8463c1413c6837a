//! The vCenter inventory as Pylon reads it: bulk property-collector requests (`request`), a
//! streaming reader for the answers (`xml`), and [`InventorySnapshot`], the objects and
//! their properties after one full read and any number of incremental updates.
//!
//! The snapshot is deliberately dumb: a map from managed object reference to the properties
//! vCenter reported, plus the properties it could not read and why. Meaning (which object is
//! a VM's host, what "online" is) lives in `crate::project`, which reads a snapshot and
//! nothing else, so it can be tested without a network.
//!
//! Faults in a `missingSet` do not lose the object: it stays with what it has, the missing
//! property is cleared, and a [`SnapshotIssue`] records the path and the fault. A
//! `NotAuthenticated` fault is the session expiring, not a permission problem, so
//! [`InventorySnapshot::has_session_fault`] surfaces it for the session layer to log in again.

// Nothing outside this module calls it until the session layer polls with it (it is the
// next step of the "canonical projection floor" issue); the tests exercise all of it, so
// dead code is only tolerated outside test builds.
#![cfg_attr(
    not(test),
    allow(
        dead_code,
        unused_imports,
        reason = "wired into polling by the session layer next"
    )
)]

pub(crate) mod paths;
pub(crate) mod request;
pub(crate) mod types;
pub(crate) mod xml;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::ops::Bound;

pub(crate) use types::{
    AlarmState, MissingProperty, MoRef, Name, ObjectContent, ObjectUpdateKind, PropertyChangeOp,
    PropertyValue, RetrieveResult, SnapshotInfo, SnapshotNode, SoapFault, UpdateSet,
};
pub(crate) use xml::{parse_retrieve_result, parse_update_set, XmlError};

/// The fault vCenter reports when the session is no longer logged in.
pub(crate) const NOT_AUTHENTICATED: &str = "NotAuthenticated";

/// One managed object's properties, in the order vCenter sent them.
///
/// A handful of properties per object makes a vector with a linear search both smaller and
/// faster than a map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ManagedObject {
    props: Vec<(Name, PropertyValue)>,
}

/// A property holds a value of another type than the one Pylon reads it as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValueMismatch {
    pub path: String,
    /// What the reader expected: `an integer`, `a boolean`, ...
    pub expected: &'static str,
    /// What was there, from [`PropertyValue::describe`].
    pub found: String,
}

impl ManagedObject {
    pub(crate) fn get(&self, path: &str) -> Option<&PropertyValue> {
        self.props
            .iter()
            .find(|(name, _)| name == path)
            .map(|(_, value)| value)
    }

    /// Every property, in the order received.
    pub(crate) fn props(&self) -> impl Iterator<Item = (&str, &PropertyValue)> {
        self.props
            .iter()
            .map(|(name, value)| (name.as_ref(), value))
    }

    /// The object's `name`, if it is text.
    pub(crate) fn name(&self) -> Option<&str> {
        self.str(paths::NAME).ok().flatten()
    }

    /// A text property (any scalar type: strings, enums, numbers as written).
    pub(crate) fn str(&self, path: &str) -> Result<Option<&str>, ValueMismatch> {
        match self.get(path) {
            None => Ok(None),
            Some(PropertyValue::Text { value, .. }) => Ok(Some(value)),
            Some(other) => Err(mismatch(path, "text", other)),
        }
    }

    /// An integer property (`xsd:int`, `xsd:long`, `xsd:short`, ...). The text must be an
    /// integer whatever its `xsi:type`; anything else is a mismatch, never a guess.
    pub(crate) fn i64(&self, path: &str) -> Result<Option<i64>, ValueMismatch> {
        match self.get(path) {
            None => Ok(None),
            Some(value @ PropertyValue::Text { value: text, .. }) => text
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| mismatch(path, "an integer", value)),
            Some(other) => Err(mismatch(path, "an integer", other)),
        }
    }

    /// A boolean property (`true`/`false`, or `1`/`0` as XML Schema allows).
    pub(crate) fn bool(&self, path: &str) -> Result<Option<bool>, ValueMismatch> {
        match self.get(path) {
            None => Ok(None),
            Some(value @ PropertyValue::Text { value: text, .. }) => match text.trim() {
                "true" | "1" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                _ => Err(mismatch(path, "a boolean", value)),
            },
            Some(other) => Err(mismatch(path, "a boolean", other)),
        }
    }

    /// A managed object reference property (`parent`, `runtime.host`, ...).
    pub(crate) fn reference(&self, path: &str) -> Result<Option<&MoRef>, ValueMismatch> {
        match self.get(path) {
            None => Ok(None),
            Some(PropertyValue::Ref(reference)) => Ok(Some(reference)),
            Some(other) => Err(mismatch(path, "a managed object reference", other)),
        }
    }

    /// A list of references: `ArrayOfManagedObjectReference`, or the hosts of an
    /// `ArrayOfDatastoreHostMount`. Absent is empty.
    pub(crate) fn refs(&self, path: &str) -> Result<&[MoRef], ValueMismatch> {
        match self.get(path) {
            None => Ok(&[]),
            Some(PropertyValue::Refs(references) | PropertyValue::HostMounts(references)) => {
                Ok(references)
            }
            Some(other) => Err(mismatch(path, "a list of references", other)),
        }
    }

    /// A `VirtualMachineSnapshotInfo` property. Absent (a VM without snapshots) is `None`.
    pub(crate) fn snapshots(&self, path: &str) -> Result<Option<&SnapshotInfo>, ValueMismatch> {
        match self.get(path) {
            None => Ok(None),
            Some(PropertyValue::Snapshots(info)) => Ok(Some(info)),
            Some(other) => Err(mismatch(path, "a snapshot tree", other)),
        }
    }

    /// An `ArrayOfAlarmState` property. Absent (nothing triggered) is empty.
    pub(crate) fn alarm_states(&self, path: &str) -> Result<&[AlarmState], ValueMismatch> {
        match self.get(path) {
            None => Ok(&[]),
            Some(PropertyValue::AlarmStates(states)) => Ok(states),
            Some(other) => Err(mismatch(path, "a list of triggered alarms", other)),
        }
    }

    /// An `ArrayOfString` property. Absent is empty.
    pub(crate) fn texts(&self, path: &str) -> Result<&[String], ValueMismatch> {
        match self.get(path) {
            None => Ok(&[]),
            Some(PropertyValue::Texts(texts)) => Ok(texts),
            Some(other) => Err(mismatch(path, "a list of strings", other)),
        }
    }

    fn set(&mut self, path: Name, value: PropertyValue) {
        match self.props.iter_mut().find(|(name, _)| *name == path) {
            Some(slot) => slot.1 = value,
            None => self.props.push((path, value)),
        }
    }

    fn clear(&mut self, path: &str) {
        self.props.retain(|(name, _)| name != path);
    }
}

fn mismatch(path: &str, expected: &'static str, found: &PropertyValue) -> ValueMismatch {
    ValueMismatch {
        path: path.to_owned(),
        expected,
        found: found.describe(),
    }
}

/// A property (or, with `path: None`, a whole object) vCenter could not report, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotIssue {
    pub obj: MoRef,
    pub path: Option<Name>,
    pub fault_type: Name,
    pub privilege: Option<String>,
    pub message: Option<String>,
}

impl SnapshotIssue {
    fn from_missing(obj: &MoRef, missing: &MissingProperty) -> Self {
        Self {
            obj: obj.clone(),
            path: Some(missing.path.clone()),
            fault_type: missing.fault_type.clone(),
            privilege: missing.privilege.clone(),
            message: missing.message.clone(),
        }
    }

    pub(crate) fn is_session_fault(&self) -> bool {
        self.fault_type == NOT_AUTHENTICATED
    }
}

/// Issues are keyed by object and path, so a property that fails on every poll is one
/// issue, and one that becomes readable again clears its issue.
type IssueKey = (MoRef, Option<Name>);

/// Every inventory object Pylon read, by managed object reference, in natural id order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InventorySnapshot {
    objects: BTreeMap<MoRef, ManagedObject>,
    issues: BTreeMap<IssueKey, SnapshotIssue>,
    /// The `WaitForUpdatesEx` version the snapshot is current to, once updates were applied.
    version: Option<String>,
}

impl InventorySnapshot {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A snapshot of the pages of one full `RetrievePropertiesEx` read.
    pub(crate) fn from_results(results: impl IntoIterator<Item = RetrieveResult>) -> Self {
        let mut snapshot = Self::new();
        for result in results {
            snapshot.apply_result(result);
        }
        snapshot
    }

    /// Merges one page of a `RetrievePropertiesEx` read. Reported properties are set, missing
    /// ones cleared and recorded as issues. Properties the page does not mention are kept,
    /// so a fresh full read belongs in a fresh snapshot.
    pub(crate) fn apply_result(&mut self, result: RetrieveResult) {
        for content in result.objects {
            let ObjectContent {
                obj,
                props,
                missing,
            } = content;
            if !self.issues.is_empty() {
                for (path, _) in &props {
                    self.issues.remove(&(obj.clone(), Some(path.clone())));
                }
            }
            for entry in &missing {
                let issue = SnapshotIssue::from_missing(&obj, entry);
                self.issues
                    .insert((obj.clone(), Some(entry.path.clone())), issue);
            }
            match self.objects.entry(obj) {
                // The common case, a new object: take its properties without copying.
                Entry::Vacant(vacant) => {
                    vacant.insert(ManagedObject { props });
                }
                Entry::Occupied(mut occupied) => {
                    let object = occupied.get_mut();
                    for (path, value) in props {
                        object.set(path, value);
                    }
                    for entry in &missing {
                        object.clear(&entry.path);
                    }
                }
            }
        }
    }

    /// Applies a `WaitForUpdatesEx` answer: `enter` replaces an object, `modify` sets or (for
    /// `remove`/`indirectRemove`, or an assignment without a value) clears properties, `leave`
    /// removes the object and its issues. `add` is treated as an assignment because filters
    /// are created with `partialUpdates = false`, so values arrive whole.
    pub(crate) fn apply_updates(&mut self, update_set: &UpdateSet) {
        for filter in &update_set.filters {
            for update in &filter.objects {
                match update.kind {
                    ObjectUpdateKind::Enter => {
                        self.remove_issues_of(&update.obj);
                        let mut object = ManagedObject::default();
                        for change in &update.changes {
                            if let (PropertyChangeOp::Assign | PropertyChangeOp::Add, Some(val)) =
                                (change.op, &change.val)
                            {
                                object.set(change.path.clone(), val.clone());
                            }
                        }
                        self.objects.insert(update.obj.clone(), object);
                    }
                    ObjectUpdateKind::Modify => {
                        let object = self.objects.entry(update.obj.clone()).or_default();
                        for change in &update.changes {
                            match (change.op, &change.val) {
                                (PropertyChangeOp::Assign | PropertyChangeOp::Add, Some(val)) => {
                                    object.set(change.path.clone(), val.clone());
                                    self.issues
                                        .remove(&(update.obj.clone(), Some(change.path.clone())));
                                }
                                _ => object.clear(&change.path),
                            }
                        }
                    }
                    ObjectUpdateKind::Leave => {
                        self.objects.remove(&update.obj);
                        self.remove_issues_of(&update.obj);
                        continue;
                    }
                }
                for missing in &update.missing {
                    if let Some(object) = self.objects.get_mut(&update.obj) {
                        object.clear(&missing.path);
                    }
                    let issue = SnapshotIssue::from_missing(&update.obj, missing);
                    self.issues
                        .insert((update.obj.clone(), Some(missing.path.clone())), issue);
                }
            }
            for missing in &filter.missing_objects {
                let issue = SnapshotIssue {
                    obj: missing.obj.clone(),
                    path: None,
                    fault_type: missing.fault_type.clone(),
                    privilege: missing.privilege.clone(),
                    message: missing.message.clone(),
                };
                self.issues.insert((missing.obj.clone(), None), issue);
            }
        }
        self.version = Some(update_set.version.clone());
    }

    fn remove_issues_of(&mut self, obj: &MoRef) {
        let keys: Vec<IssueKey> = self
            .issues
            .range((Bound::Included((obj.clone(), None)), Bound::Unbounded))
            .take_while(|((issue_obj, _), _)| issue_obj == obj)
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            self.issues.remove(&key);
        }
    }

    pub(crate) fn get(&self, obj: &MoRef) -> Option<&ManagedObject> {
        self.objects.get(obj)
    }

    /// Every object, by type and then natural id order.
    pub(crate) fn objects(&self) -> impl Iterator<Item = (&MoRef, &ManagedObject)> {
        self.objects.iter()
    }

    /// The objects of exactly one type (`VirtualMachine`), in natural id order.
    pub(crate) fn objects_of<'s>(
        &'s self,
        kind: &'s str,
    ) -> impl Iterator<Item = (&'s MoRef, &'s ManagedObject)> + 's {
        let start = MoRef::new(kind, String::new());
        self.objects
            .range((Bound::Included(start), Bound::Unbounded))
            .take_while(move |(obj, _)| obj.kind == kind)
    }

    pub(crate) fn len(&self) -> usize {
        self.objects.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The `name` of an object, if known.
    pub(crate) fn name_of(&self, obj: &MoRef) -> Option<&str> {
        self.objects.get(obj).and_then(ManagedObject::name)
    }

    /// How messages name an object: `VM "web-01" (vm-42)`, or `VM vm-42` without a name.
    pub(crate) fn label(&self, obj: &MoRef) -> String {
        let kind = describe_kind(&obj.kind);
        match self.name_of(obj) {
            Some(name) => format!("{kind} {name:?} ({})", obj.value),
            None => format!("{kind} {}", obj.value),
        }
    }

    /// What could not be read, by object and path.
    pub(crate) fn issues(&self) -> impl Iterator<Item = &SnapshotIssue> {
        self.issues.values()
    }

    /// Whether any property failed with `NotAuthenticated`: the session expired while the
    /// answer was assembled, so the session layer should log in again and re-read rather
    /// than report permission problems.
    pub(crate) fn has_session_fault(&self) -> bool {
        self.issues.values().any(SnapshotIssue::is_session_fault)
    }

    /// The `WaitForUpdatesEx` version of the last update set applied.
    pub(crate) fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }
}

/// Admin-facing names for managed object types.
pub(crate) fn describe_kind(kind: &str) -> &str {
    match kind {
        paths::vm::KIND => "VM",
        paths::host::KIND => "host",
        paths::datastore::KIND => "datastore",
        paths::DATACENTER => "datacenter",
        paths::FOLDER => "folder",
        paths::CLUSTER_COMPUTE_RESOURCE => "cluster",
        paths::COMPUTE_RESOURCE => "compute resource",
        paths::resource_pool::KIND => "resource pool",
        paths::VIRTUAL_APP => "vApp",
        other => other,
    }
}
