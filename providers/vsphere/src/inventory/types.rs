//! The values the property-collector parser produces: managed object references, property
//! values, retrieve results and update sets.
//!
//! Names that repeat on every object (property paths, managed object types, `xsi:type`s,
//! fault types) are [`Name`]s: a `Cow<'static, str>` that borrows the one static copy when the
//! name is one Pylon knows (see [`intern`]), so parsing 5,000 VMs does not allocate the string
//! `summary.quickStats.overallCpuUsage` 5,000 times.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

use super::paths;

/// A name that is usually one of a small, known set. See [`intern`].
pub(crate) type Name = Cow<'static, str>;

/// Returns the static copy of `text` when it is a known name, and an owned copy otherwise.
pub(crate) fn intern(text: &str) -> Name {
    match known_names().get(text) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(text.to_owned()),
    }
}

/// Names that occur once per object or property in a property-collector answer.
fn known_names() -> &'static HashSet<&'static str> {
    static KNOWN: OnceLock<HashSet<&'static str>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        const OTHER: &[&str] = &[
            // Managed object types that show up as references or as the objects themselves.
            paths::VIRTUAL_APP,
            "StoragePod",
            "Network",
            "DistributedVirtualPortgroup",
            "OpaqueNetwork",
            "ContainerView",
            "PropertyCollector",
            "PropertyFilter",
            "Task",
            // `xsi:type`s of scalar values.
            "string",
            "int",
            "long",
            "short",
            "byte",
            "boolean",
            "dateTime",
            "double",
            "float",
            "ManagedEntityStatus",
            "VirtualMachinePowerState",
            "VirtualMachineConnectionState",
            "VirtualMachineToolsStatus",
            "HostSystemConnectionState",
            "HostSystemPowerState",
            "ManagedObjectReference",
            // Fault types seen in missingSets.
            "NoPermission",
            "NotAuthenticated",
            "InvalidProperty",
            "ManagedObjectNotFound",
            "SystemError",
            "RuntimeFault",
        ];
        let mut names: HashSet<&'static str> = HashSet::new();
        for spec in paths::INVENTORY_TYPES {
            names.insert(spec.kind);
            names.extend(spec.paths.iter().copied());
        }
        names.extend(OTHER.iter().copied());
        names
    })
}

/// A managed object reference: `<obj type="VirtualMachine">vm-42</obj>`.
///
/// Ordered by type, then by id in *natural* order (`vm-9` before `vm-10`). vCenter hands out
/// ids from a counter, so natural order is creation order; the projection relies on it to
/// decide which of two objects sharing a hardware UUID keeps the UUID-based id (the older one,
/// so an existing id does not move when a clone appears).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct MoRef {
    pub kind: Name,
    pub value: String,
}

impl MoRef {
    /// A reference to the object `value` of type `kind`. The type is interned: known types
    /// borrow the static name and others are copied, so any `&str` will do.
    pub(crate) fn new(kind: &str, value: impl Into<String>) -> Self {
        Self {
            kind: intern(kind),
            value: value.into(),
        }
    }

    pub(crate) fn is(&self, kind: &str) -> bool {
        self.kind == kind
    }
}

impl fmt::Display for MoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

impl Ord for MoRef {
    fn cmp(&self, other: &Self) -> Ordering {
        self.kind
            .cmp(&other.kind)
            .then_with(|| natural_cmp(&self.value, &other.value))
    }
}

impl PartialOrd for MoRef {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares managed object ids so that runs of digits compare by value: `vm-9 < vm-10`,
/// `host-2 < host-10`. Ties (`vm-01` and `vm-1`) fall back to plain string order, so the
/// order is total and consistent with equality.
pub(crate) fn natural_cmp(left: &str, right: &str) -> Ordering {
    let (mut a, mut b) = (left.as_bytes(), right.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return left.cmp(right),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (digits_a, rest_a) = split_digits(a);
                let (digits_b, rest_b) = split_digits(b);
                let (trimmed_a, trimmed_b) = (trim_zeros(digits_a), trim_zeros(digits_b));
                let by_value = trimmed_a
                    .len()
                    .cmp(&trimmed_b.len())
                    .then_with(|| trimmed_a.cmp(trimmed_b));
                if by_value != Ordering::Equal {
                    return by_value;
                }
                (a, b) = (rest_a, rest_b);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                (a, b) = (&a[1..], &b[1..]);
            }
        }
    }
}

fn split_digits(bytes: &[u8]) -> (&[u8], &[u8]) {
    let end = bytes
        .iter()
        .position(|byte| !byte.is_ascii_digit())
        .unwrap_or(bytes.len());
    bytes.split_at(end)
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let start = digits
        .iter()
        .position(|digit| *digit != b'0')
        .unwrap_or(digits.len());
    &digits[start..]
}

/// One property value from a `<val>` element.
///
/// Only the shapes Pylon reads are decoded; anything else is kept as [`Unsupported`] with its
/// type name, so a vCenter that answers with an unexpected type degrades one property instead
/// of failing the poll.
///
/// [`Unsupported`]: PropertyValue::Unsupported
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PropertyValue {
    /// A value with no child elements: `xsd:string`, `xsd:int`, `xsd:long`, `xsd:boolean`,
    /// `xsd:dateTime` and vSphere enums such as `VirtualMachinePowerState`. `xsi_type` is the
    /// local part of the `xsi:type` (`string`, `long`, `VirtualMachinePowerState`), empty when
    /// the element carried none.
    Text { value: String, xsi_type: Name },
    /// `ManagedObjectReference`.
    Ref(MoRef),
    /// `ArrayOfManagedObjectReference`.
    Refs(Vec<MoRef>),
    /// `ArrayOfString`.
    Texts(Vec<String>),
    /// `ArrayOfDatastoreHostMount`, reduced to each mount's `key` (the host).
    HostMounts(Vec<MoRef>),
    /// `VirtualMachineSnapshotInfo`: the VM's snapshot tree and the current snapshot.
    Snapshots(SnapshotInfo),
    /// `ArrayOfAlarmState`: the alarms triggered on an entity (`triggeredAlarmState`).
    AlarmStates(Vec<AlarmState>),
    /// Any other complex type, by its `xsi:type` local name.
    Unsupported(Name),
}

/// One triggered alarm (`AlarmState`), reduced to what an alert needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AlarmState {
    /// The alarm definition (`Alarm` managed object) that triggered.
    pub alarm: Option<MoRef>,
    /// `red`, `yellow`, `green` or `gray`.
    pub overall_status: String,
    /// When it triggered (`xsd:dateTime` text).
    pub time: Option<String>,
    pub acknowledged: bool,
}

/// A VM's snapshots (`VirtualMachineSnapshotInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SnapshotInfo {
    /// The snapshot the VM runs from (`currentSnapshot`), when any.
    pub current: Option<MoRef>,
    pub roots: Vec<SnapshotNode>,
}

/// One snapshot (`VirtualMachineSnapshotTree`) and its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SnapshotNode {
    pub snapshot: Option<MoRef>,
    /// The numeric `id`, unique per VM.
    pub id: Option<String>,
    pub name: String,
    pub description: String,
    pub create_time: Option<String>,
    /// The VM's power state when the snapshot was taken.
    pub state: Option<String>,
    pub quiesced: bool,
    pub children: Vec<SnapshotNode>,
}

impl PropertyValue {
    /// A short description for messages: the type, and the text for scalars.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Text { value, xsi_type } => {
                let mut shown: String = value.chars().take(40).collect();
                if shown.len() < value.len() {
                    shown.push('…');
                }
                if xsi_type.is_empty() {
                    format!("untyped text {shown:?}")
                } else {
                    format!("{xsi_type} {shown:?}")
                }
            }
            Self::Ref(reference) => format!("a reference to {reference}"),
            Self::Refs(_) => "ArrayOfManagedObjectReference".to_owned(),
            Self::Texts(_) => "ArrayOfString".to_owned(),
            Self::HostMounts(_) => "ArrayOfDatastoreHostMount".to_owned(),
            Self::Snapshots(_) => "VirtualMachineSnapshotInfo".to_owned(),
            Self::AlarmStates(_) => "ArrayOfAlarmState".to_owned(),
            Self::Unsupported(name) => format!("unsupported type {name}"),
        }
    }
}

/// A property that could not be read, from a `missingSet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MissingProperty {
    pub path: Name,
    /// The fault's `xsi:type`: `NoPermission`, `NotAuthenticated`, `InvalidProperty`, ...
    pub fault_type: Name,
    /// `privilegeId` of a `NoPermission` (or subtype) fault.
    pub privilege: Option<String>,
    /// The fault's `localizedMessage`, when the server sent one.
    pub message: Option<String>,
}

/// One object of a `RetrieveResult`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectContent {
    pub obj: MoRef,
    pub props: Vec<(Name, PropertyValue)>,
    pub missing: Vec<MissingProperty>,
}

/// One page of `RetrievePropertiesEx` or `ContinueRetrievePropertiesEx`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RetrieveResult {
    pub objects: Vec<ObjectContent>,
    /// Present when more pages follow; pass it to `ContinueRetrievePropertiesEx`.
    pub token: Option<String>,
}

/// A SOAP fault answered instead of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SoapFault {
    /// The vSphere fault type (`NotAuthenticated`, `NoPermission`, `InvalidLogin`, ...): the
    /// detail's `xsi:type`, or its element name without the `Fault` suffix.
    pub fault_type: String,
    /// `faultstring`.
    pub message: String,
    pub privilege: Option<String>,
    /// The object a permission fault names.
    pub object: Option<MoRef>,
}

/// The answer to `WaitForUpdatesEx`: what changed since `version`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UpdateSet {
    /// Pass this to the next `WaitForUpdatesEx`.
    pub version: String,
    /// More updates are waiting; call again at once with `version`.
    pub truncated: bool,
    pub filters: Vec<PropertyFilterUpdate>,
}

/// The changes one property filter saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PropertyFilterUpdate {
    pub filter: MoRef,
    pub objects: Vec<ObjectUpdate>,
    /// Objects the filter could not read at all.
    pub missing_objects: Vec<MissingObject>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObjectUpdateKind {
    /// The object entered the filter (first report, or it was created).
    Enter,
    Modify,
    /// The object left the filter (deleted, or moved out of the view).
    Leave,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectUpdate {
    pub kind: ObjectUpdateKind,
    pub obj: MoRef,
    pub changes: Vec<PropertyChange>,
    pub missing: Vec<MissingProperty>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PropertyChangeOp {
    Add,
    Remove,
    Assign,
    IndirectRemove,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PropertyChange {
    pub path: Name,
    pub op: PropertyChangeOp,
    /// Absent for removals, and when the property became unset.
    pub val: Option<PropertyValue>,
}

/// An object a filter could not read, from a `PropertyFilterUpdate.missingSet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MissingObject {
    pub obj: MoRef,
    pub fault_type: Name,
    pub privilege: Option<String>,
    pub message: Option<String>,
}
