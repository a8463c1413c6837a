//! Tests for the request builders, the streaming reader and the snapshot, on answers
//! recorded from the govmomi simulator (`tests/fixtures`, see `record`) and on hand-written
//! fragments for the shapes the simulator cannot produce.

mod record;

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::paths::{self, INVENTORY_TYPES};
use super::request::{self, InventorySpec};
use super::types::natural_cmp;
use super::xml::{parse_fault, parse_moref_response, parse_void_response};
use super::*;

pub(crate) const RETRIEVE_VPX: &[u8] = include_bytes!("../../tests/fixtures/retrieve_vpx.xml");
pub(crate) const RETRIEVE_NO_PERMISSION: &[u8] =
    include_bytes!("../../tests/fixtures/retrieve_missingset_nopermission.xml");
pub(crate) const RETRIEVE_NOT_AUTHENTICATED: &[u8] =
    include_bytes!("../../tests/fixtures/retrieve_missingset_notauthenticated.xml");
pub(crate) const RETRIEVE_PAGED_1: &[u8] =
    include_bytes!("../../tests/fixtures/retrieve_paged_1.xml");
pub(crate) const RETRIEVE_PAGED_2: &[u8] =
    include_bytes!("../../tests/fixtures/retrieve_paged_2.xml");
pub(crate) const WAIT_INITIAL: &[u8] =
    include_bytes!("../../tests/fixtures/wait_for_updates_initial.xml");
pub(crate) const WAIT_MODIFY: &[u8] =
    include_bytes!("../../tests/fixtures/wait_for_updates_modify.xml");
pub(crate) const FAULT_NOT_AUTHENTICATED: &[u8] =
    include_bytes!("../../tests/fixtures/fault_not_authenticated.xml");

/// Every fixture, for the never-panics property.
const FIXTURES: &[&[u8]] = &[
    RETRIEVE_VPX,
    RETRIEVE_NO_PERMISSION,
    RETRIEVE_NOT_AUTHENTICATED,
    RETRIEVE_PAGED_1,
    RETRIEVE_PAGED_2,
    WAIT_INITIAL,
    WAIT_MODIFY,
    FAULT_NOT_AUTHENTICATED,
];

/// The snapshot of a one-page fixture; panics with the parse error otherwise.
pub(crate) fn snapshot_of(fixture: &[u8]) -> InventorySnapshot {
    let result = parse_retrieve_result(fixture).unwrap_or_else(|e| panic!("fixture parses: {e}"));
    InventorySnapshot::from_results([result])
}

/// The update set of a `WaitForUpdatesEx` answer with changes.
pub(crate) fn update_set_of(answer: &[u8]) -> UpdateSet {
    parse_update_set(answer)
        .unwrap_or_else(|e| panic!("update set parses: {e}"))
        .expect("the answer has changes")
}

/// A `WaitForUpdatesEx` answer with one `modify` of `obj` setting `path` to a value of type
/// `xsi_type` (a `ManagedObjectReference` value is given as `Kind:id`).
pub(crate) fn modify(obj: &MoRef, path: &str, xsi_type: &str, value: &str) -> UpdateSet {
    let val = match value.split_once(':') {
        Some((kind, id)) if xsi_type == "ManagedObjectReference" => {
            format!("<val xsi:type=\"ManagedObjectReference\" type=\"{kind}\">{id}</val>")
        }
        _ => format!("<val xsi:type=\"{xsi_type}\">{value}</val>"),
    };
    update_set_of(
        wait_answer(&format!(
            "<objectSet><kind>modify</kind><obj type=\"{}\">{}</obj><changeSet><name>{path}</name>\
             <op>assign</op>{val}</changeSet></objectSet>",
            obj.kind, obj.value
        ))
        .as_bytes(),
    )
}

/// A `WaitForUpdatesEx` answer around `object_sets`.
pub(crate) fn wait_answer(object_sets: &str) -> String {
    request::envelope(&format!(
        "<WaitForUpdatesExResponse xmlns=\"urn:vim25\"><returnval><version>7</version>\
         <filterSet><filter type=\"PropertyFilter\">filter-1</filter>{object_sets}</filterSet>\
         </returnval></WaitForUpdatesExResponse>"
    ))
}

/// A `RetrievePropertiesEx` answer around `objects`.
fn retrieve_answer(objects: &str) -> String {
    request::envelope(&format!(
        "<RetrievePropertiesExResponse xmlns=\"urn:vim25\"><returnval>{objects}</returnval>\
         </RetrievePropertiesExResponse>"
    ))
}

pub(crate) fn vm(id: &str) -> MoRef {
    MoRef::new(paths::vm::KIND, id)
}

pub(crate) fn host(id: &str) -> MoRef {
    MoRef::new(paths::host::KIND, id)
}

/// A property value as compact JSON: `"int:67"`, `"->HostSystem:host-42"`, lists as arrays.
fn render_value(value: &PropertyValue) -> Value {
    let reference = |obj: &MoRef| Value::from(format!("->{obj}"));
    match value {
        PropertyValue::Text { value, xsi_type } => Value::from(format!("{xsi_type}:{value}")),
        PropertyValue::Ref(obj) => reference(obj),
        PropertyValue::Refs(objs) => Value::Array(objs.iter().map(reference).collect()),
        PropertyValue::Texts(texts) => json!(texts),
        PropertyValue::HostMounts(objs) => {
            json!({ "mounts": objs.iter().map(reference).collect::<Vec<_>>() })
        }
        PropertyValue::Snapshots(info) => {
            fn node(n: &crate::inventory::SnapshotNode) -> Value {
                json!({
                    "snapshot": n.snapshot.as_ref().map(|s| s.to_string()),
                    "id": n.id, "name": n.name, "description": n.description,
                    "createTime": n.create_time, "state": n.state, "quiesced": n.quiesced,
                    "children": n.children.iter().map(node).collect::<Vec<_>>(),
                })
            }
            json!({
                "current": info.current.as_ref().map(|s| s.to_string()),
                "roots": info.roots.iter().map(node).collect::<Vec<_>>(),
            })
        }
        PropertyValue::AlarmStates(states) => Value::Array(
            states
                .iter()
                .map(|state| {
                    json!({
                        "alarm": state.alarm.as_ref().map(|a| a.to_string()),
                        "overallStatus": state.overall_status,
                        "time": state.time,
                        "acknowledged": state.acknowledged,
                    })
                })
                .collect(),
        ),
        PropertyValue::Unsupported(name) => Value::from(format!("unsupported:{name}")),
    }
}

#[test]
fn snapshot_trees_are_read_with_their_children_and_the_current_one() {
    let answer = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="VirtualMachine">vm-7</obj><propSet><name>snapshot</name><val xsi:type="VirtualMachineSnapshotInfo"><currentSnapshot type="VirtualMachineSnapshot">snapshot-2</currentSnapshot><rootSnapshotList><snapshot type="VirtualMachineSnapshot">snapshot-1</snapshot><vm type="VirtualMachine">vm-7</vm><name>base &amp; clean</name><description>before patching</description><id>1</id><createTime>2026-11-01T10:00:00Z</createTime><state>poweredOff</state><quiesced>false</quiesced><childSnapshotList><snapshot type="VirtualMachineSnapshot">snapshot-2</snapshot><vm type="VirtualMachine">vm-7</vm><name>patched</name><description></description><id>2</id><createTime>2026-11-02T10:00:00Z</createTime><state>poweredOn</state><quiesced>true</quiesced><replaySupported>false</replaySupported></childSnapshotList></rootSnapshotList></val></propSet></objects></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#;
    let result = parse_retrieve_result(answer.as_bytes()).unwrap();
    let (_, value) = &result.objects[0].props[0];
    assert_eq!(
        render_value(value),
        json!({
            "current": "VirtualMachineSnapshot:snapshot-2",
            "roots": [{
                "snapshot": "VirtualMachineSnapshot:snapshot-1",
                "id": "1", "name": "base & clean", "description": "before patching",
                "createTime": "2026-11-01T10:00:00Z", "state": "poweredOff", "quiesced": false,
                "children": [{
                    "snapshot": "VirtualMachineSnapshot:snapshot-2",
                    "id": "2", "name": "patched", "description": "",
                    "createTime": "2026-11-02T10:00:00Z", "state": "poweredOn", "quiesced": true,
                    "children": [],
                }],
            }],
        })
    );
}

fn render_object(object: &ManagedObject) -> Value {
    let map: serde_json::Map<String, Value> = object
        .props()
        .map(|(path, value)| (path.to_owned(), render_value(value)))
        .collect();
    Value::Object(map)
}

fn render_result(result: &RetrieveResult) -> Value {
    json!({
        "objects": result.objects.iter().map(|content| {
            let props: serde_json::Map<String, Value> = content
                .props
                .iter()
                .map(|(path, value)| (path.to_string(), render_value(value)))
                .collect();
            json!({
                "obj": content.obj.to_string(),
                "props": props,
                "missing": content.missing.iter().map(|missing| json!({
                    "path": missing.path,
                    "fault": missing.fault_type,
                    "privilege": missing.privilege,
                    "message": missing.message,
                })).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>(),
        "token": result.token,
    })
}

fn render_issues(snapshot: &InventorySnapshot) -> Value {
    snapshot
        .issues()
        .map(|issue| {
            json!({
                "obj": issue.obj.to_string(),
                "label": snapshot.label(&issue.obj),
                "path": issue.path,
                "fault": issue.fault_type,
                "privilege": issue.privilege,
                "message": issue.message,
            })
        })
        .collect()
}

/// Counts objects by managed object type.
fn counts(snapshot: &InventorySnapshot) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (obj, _) in snapshot.objects() {
        *counts.entry(obj.kind.to_string()).or_default() += 1;
    }
    counts
}

/// Compares JSON and shows both sides pretty-printed, so a changed expectation can be
/// reviewed and pasted.
#[track_caller]
pub(crate) fn check_json(actual: Value, expected: Value) {
    assert!(
        actual == expected,
        "actual:\n{}\nexpected:\n{}",
        serde_json::to_string_pretty(&actual).unwrap_or_default(),
        serde_json::to_string_pretty(&expected).unwrap_or_default()
    );
}

/// One request builder's output against the exact XML expected.
#[track_caller]
fn check_request(actual: String, expected: &str) {
    assert_eq!(actual, expected);
    // The body must also stand alone as XML inside an envelope.
    let envelope = request::envelope(&actual);
    let mut reader = quick_xml::Reader::from_str(&envelope);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("the request is not well-formed XML: {e}\n{envelope}"),
        }
    }
}

/// One parser input against the expected rendering (or error).
#[track_caller]
fn check_retrieve(input: &str, expected: Value) {
    let actual = match parse_retrieve_result(input.as_bytes()) {
        Ok(result) => render_result(&result),
        Err(error) => json!({ "error": error_kind(&error) }),
    };
    check_json(actual, expected);
}

fn error_kind(error: &XmlError) -> String {
    match error {
        XmlError::Malformed { .. } => "malformed".to_owned(),
        XmlError::Unexpected { .. } => "unexpected".to_owned(),
        XmlError::Fault(fault) => format!("fault:{}", fault.fault_type),
    }
}

#[test]
fn request_bodies_follow_the_wsdl() {
    let view_manager = MoRef::new("ViewManager", "ViewManager");
    let root = MoRef::new("Folder", "group-d1");
    let collector = MoRef::new("PropertyCollector", "propertyCollector");
    let views = [
        MoRef::new("ContainerView", "session[5f1]52a"),
        MoRef::new("ContainerView", "session[5f1]53b"),
    ];
    let types = [
        paths::TypePaths::new("Datacenter", paths::TOPOLOGY_PATHS),
        paths::TypePaths::new("ResourcePool", paths::resource_pool::PATHS),
    ];
    let spec = InventorySpec {
        views: &views,
        types: &types,
    };
    const OPEN: &str =
        "xmlns=\"urn:vim25\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";
    const SPEC: &str = "<propSet><type>Datacenter</type><all>false</all><pathSet>name</pathSet>\
        <pathSet>parent</pathSet></propSet><propSet><type>ResourcePool</type><all>false</all>\
        <pathSet>name</pathSet><pathSet>parent</pathSet><pathSet>owner</pathSet></propSet>\
        <objectSet><obj type=\"ContainerView\">session[5f1]52a</obj><skip>true</skip>\
        <selectSet xsi:type=\"TraversalSpec\"><name>traverseView</name><type>ContainerView</type>\
        <path>view</path><skip>false</skip></selectSet></objectSet>\
        <objectSet><obj type=\"ContainerView\">session[5f1]53b</obj><skip>true</skip>\
        <selectSet xsi:type=\"TraversalSpec\"><name>traverseView</name><type>ContainerView</type>\
        <path>view</path><skip>false</skip></selectSet></objectSet>";

    check_request(
        request::create_container_view(&view_manager, &root, "VirtualMachine"),
        &format!(
            "<CreateContainerView {OPEN}><_this type=\"ViewManager\">ViewManager</_this>\
             <container type=\"Folder\">group-d1</container><type>VirtualMachine</type>\
             <recursive>true</recursive></CreateContainerView>"
        ),
    );
    check_request(
        request::destroy_view(&views[0]),
        &format!(
            "<DestroyView {OPEN}><_this type=\"ContainerView\">session[5f1]52a</_this></DestroyView>"
        ),
    );
    check_request(
        request::retrieve_properties_ex(&collector, &spec, None),
        &format!(
            "<RetrievePropertiesEx {OPEN}><_this type=\"PropertyCollector\">propertyCollector</_this>\
             <specSet>{SPEC}</specSet><options></options></RetrievePropertiesEx>"
        ),
    );
    check_request(
        request::retrieve_properties_ex(&collector, &spec, Some(500)),
        &format!(
            "<RetrievePropertiesEx {OPEN}><_this type=\"PropertyCollector\">propertyCollector</_this>\
             <specSet>{SPEC}</specSet><options><maxObjects>500</maxObjects></options></RetrievePropertiesEx>"
        ),
    );
    // Alarm definitions are read by id, without a view or traversal.
    let alarms = [
        MoRef::new("Alarm", "alarm-1"),
        MoRef::new("Alarm", "alarm-<2>"),
    ];
    check_request(
        request::retrieve_objects(
            &collector,
            paths::alarm::KIND,
            paths::alarm::PATHS,
            &alarms.iter().collect::<Vec<_>>(),
        ),
        &format!(
            "<RetrievePropertiesEx {OPEN}><_this type=\"PropertyCollector\">propertyCollector</_this>\
             <specSet><propSet><type>Alarm</type><all>false</all><pathSet>info.name</pathSet>\
             <pathSet>info.description</pathSet></propSet>\
             <objectSet><obj type=\"Alarm\">alarm-1</obj><skip>false</skip></objectSet>\
             <objectSet><obj type=\"Alarm\">alarm-&lt;2&gt;</obj><skip>false</skip></objectSet>\
             </specSet><options></options></RetrievePropertiesEx>"
        ),
    );
    check_request(
        request::continue_retrieve_properties_ex(&collector, "tok<1>&2"),
        &format!(
            "<ContinueRetrievePropertiesEx {OPEN}><_this type=\"PropertyCollector\">propertyCollector\
             </_this><token>tok&lt;1&gt;&amp;2</token></ContinueRetrievePropertiesEx>"
        ),
    );
    check_request(
        request::cancel_retrieve_properties_ex(&collector, "1"),
        &format!(
            "<CancelRetrievePropertiesEx {OPEN}><_this type=\"PropertyCollector\">propertyCollector\
             </_this><token>1</token></CancelRetrievePropertiesEx>"
        ),
    );
    check_request(
        request::create_filter(&collector, &spec),
        &format!(
            "<CreateFilter {OPEN}><_this type=\"PropertyCollector\">propertyCollector</_this>\
             <spec>{SPEC}</spec><partialUpdates>false</partialUpdates></CreateFilter>"
        ),
    );
    check_request(
        request::wait_for_updates_ex(&collector, None),
        &format!(
            "<WaitForUpdatesEx {OPEN}><_this type=\"PropertyCollector\">propertyCollector</_this>\
             <options><maxWaitSeconds>0</maxWaitSeconds></options></WaitForUpdatesEx>"
        ),
    );
    check_request(
        request::wait_for_updates_ex(&collector, Some("3")),
        &format!(
            "<WaitForUpdatesEx {OPEN}><_this type=\"PropertyCollector\">propertyCollector</_this>\
             <version>3</version><options><maxWaitSeconds>0</maxWaitSeconds></options></WaitForUpdatesEx>"
        ),
    );
    check_request(
        request::destroy_property_filter(&MoRef::new("PropertyFilter", "session[1]\"2\"")),
        &format!(
            "<DestroyPropertyFilter {OPEN}><_this type=\"PropertyFilter\">session[1]&quot;2&quot;\
             </_this></DestroyPropertyFilter>"
        ),
    );
}

#[test]
fn every_inventory_type_is_requested_with_its_paths() {
    let kinds: Vec<&str> = INVENTORY_TYPES.iter().map(|spec| spec.kind).collect();
    assert_eq!(
        kinds,
        [
            "HostSystem",
            "VirtualMachine",
            "Datastore",
            "Datacenter",
            "Folder",
            "ClusterComputeResource",
            "ComputeResource",
            "ResourcePool"
        ]
    );
    assert_eq!(paths::host::PATHS.len(), 20);
    assert_eq!(paths::vm::PATHS.len(), 26);
    assert_eq!(paths::datastore::PATHS.len(), 11);
}

#[test]
fn the_recorded_answer_parses() {
    let result = parse_retrieve_result(RETRIEVE_VPX).expect("the fixture parses");
    assert_eq!(result.token, None);
    assert!(result
        .objects
        .iter()
        .all(|object| object.missing.is_empty()));
    let snapshot = InventorySnapshot::from_results([result]);
    check_json(
        json!(counts(&snapshot)),
        json!({
            "ClusterComputeResource": 2,
            "ComputeResource": 2,
            "Datacenter": 2,
            "Datastore": 4,
            "Folder": 9,
            "HostSystem": 6,
            "ResourcePool": 5,
            "VirtualMachine": 8,
        }),
    );
    check_json(
        render_object(snapshot.get(&vm("vm-105")).expect("vm-105")),
        json!({
            "name": "string:DC0_C0_RP0_VM0",
            "parent": "->Folder:folder-3",
            "resourcePool": "->ResourcePool:resgroup-26",
            "overallStatus": "ManagedEntityStatus:green",
            "runtime.host": "->HostSystem:host-42",
            "runtime.powerState": "VirtualMachinePowerState:poweredOn",
            "runtime.connectionState": "VirtualMachineConnectionState:connected",
            "config.instanceUuid": "string:bfff331f-7f07-572d-951e-edd3701dc061",
            "config.uuid": "string:cd0681bf-2f18-5c00-9b9b-8197c0095348",
            "config.guestFullName": "string:otherGuest",
            "config.guestId": "string:otherGuest",
            "config.template": "boolean:false",
            "config.hardware.numCPU": "int:1",
            "config.hardware.memoryMB": "int:32",
            "guest.toolsRunningStatus": "string:guestToolsNotRunning",
            "guest.toolsStatus": "VirtualMachineToolsStatus:toolsNotInstalled",
            "summary.quickStats.overallCpuUsage": "int:0",
            "summary.quickStats.guestMemoryUsage": "int:0",
            "summary.quickStats.uptimeSeconds": "int:0",
            "summary.storage.committed": "long:0",
            "summary.storage.uncommitted": "long:0",
            "triggeredAlarmState": [],
            "datastore": [
                "->Datastore:/tmp/pylon-vcsim-4xwZpd/govcsim-DC0-LocalDS_0-3497461644@folder-5"
            ],
        }),
    );
    let esx = snapshot.get(&host("host-34")).expect("host-34");
    assert_eq!(esx.str(paths::host::VERSION), Ok(Some("6.5.0")));
    assert_eq!(esx.i64(paths::host::CPU_CORES), Ok(Some(2)));
    assert_eq!(
        esx.reference(paths::PARENT),
        Ok(Some(&MoRef::new(
            "ClusterComputeResource",
            "clustercomputeresource-27"
        )))
    );
    let (_, datastore) = snapshot
        .objects_of(paths::datastore::KIND)
        .next()
        .expect("a datastore");
    assert_eq!(
        datastore.refs(paths::datastore::HOST_MOUNTS),
        Ok(&[host("host-42")][..])
    );
    assert_eq!(datastore.bool(paths::datastore::ACCESSIBLE), Ok(Some(true)));
    assert_eq!(snapshot.issues().count(), 0);
    assert!(!snapshot.has_session_fault());
}

#[test]
fn a_no_permission_fault_keeps_the_object_and_names_the_privilege() {
    let complete = snapshot_of(RETRIEVE_VPX);
    let partial = snapshot_of(RETRIEVE_NO_PERMISSION);
    assert_eq!(counts(&partial), counts(&complete));
    for (obj, object) in complete.objects() {
        let faulted = *obj == vm("vm-99");
        let other = partial.get(obj).expect("every object is kept");
        assert_eq!(other == object, !faulted, "{obj}");
    }
    let faulted = partial.get(&vm("vm-99")).expect("the faulted VM is kept");
    assert_eq!(faulted.get(record::HIDDEN_PATH), None);
    assert_eq!(faulted.name(), Some("DC0_H0_VM0"));
    assert_eq!(
        faulted.props().count() + 1,
        complete.get(&vm("vm-99")).map_or(0, |o| o.props().count())
    );
    check_json(
        render_issues(&partial),
        json!([{
            "obj": "VirtualMachine:vm-99",
            "label": "VM \"DC0_H0_VM0\" (vm-99)",
            "path": "summary.quickStats.overallCpuUsage",
            "fault": "NoPermission",
            "privilege": "System.Read",
            "message": "Permission to perform this operation was denied.",
        }]),
    );
    assert!(!partial.has_session_fault());
}

#[test]
fn a_not_authenticated_missing_set_is_a_session_fault() {
    let snapshot = snapshot_of(RETRIEVE_NOT_AUTHENTICATED);
    assert!(snapshot.has_session_fault());
    assert_eq!(snapshot.len(), 1);
    let (obj, object) = snapshot.objects().next().expect("the VM is kept");
    assert_eq!(obj, &vm("vm-111"));
    assert_eq!(object.props().count(), 0);
    // The answer was recorded before `snapshot` and `triggeredAlarmState` joined the VM
    // paths: one issue per path it was asked for.
    assert_eq!(snapshot.issues().count(), paths::vm::PATHS.len() - 2);
    assert!(snapshot
        .issues()
        .all(|issue| issue.fault_type == NOT_AUTHENTICATED
            && issue.privilege.as_deref() == Some("System.Read")));
}

#[test]
fn pages_merge_into_the_same_snapshot() {
    let first = parse_retrieve_result(RETRIEVE_PAGED_1).expect("page 1 parses");
    let second = parse_retrieve_result(RETRIEVE_PAGED_2).expect("page 2 parses");
    assert_eq!(first.token.as_deref(), Some("1"));
    assert_eq!(second.token, None);
    assert!(!first.objects.is_empty() && !second.objects.is_empty());
    assert_eq!(
        InventorySnapshot::from_results([first, second]),
        snapshot_of(RETRIEVE_VPX)
    );
}

#[test]
fn the_initial_update_set_enters_every_object() {
    let updates = update_set_of(WAIT_INITIAL);
    assert_eq!(updates.version, "-");
    assert!(!updates.truncated);
    assert!(updates
        .filters
        .iter()
        .flat_map(|filter| &filter.objects)
        .all(|object| object.kind == ObjectUpdateKind::Enter));
    let mut from_updates = InventorySnapshot::new();
    assert!(from_updates.is_empty());
    from_updates.apply_updates(&updates);
    assert!(!from_updates.is_empty());
    assert_eq!(from_updates.version(), Some("-"));
    let retrieved = snapshot_of(RETRIEVE_VPX);
    let objects = |snapshot: &InventorySnapshot| -> BTreeMap<String, Value> {
        snapshot
            .objects()
            .map(|(obj, object)| {
                let mut props: Vec<(String, Value)> = object
                    .props()
                    .map(|(path, value)| (path.to_owned(), render_value(value)))
                    .collect();
                props.sort_by(|a, b| a.0.cmp(&b.0));
                (obj.to_string(), json!(props))
            })
            .collect()
    };
    assert_eq!(objects(&from_updates), objects(&retrieved));
}

#[test]
fn a_recorded_modify_changes_power_state_and_name() {
    let updates = update_set_of(WAIT_MODIFY);
    let mut snapshot = snapshot_of(RETRIEVE_VPX);
    let before = snapshot.clone();
    snapshot.apply_updates(&updates);
    assert_eq!(snapshot.version(), Some("-"));
    let powered_off = snapshot.get(&vm("vm-105")).expect("vm-105");
    assert_eq!(
        powered_off.str(paths::vm::POWER_STATE),
        Ok(Some("poweredOff"))
    );
    assert_eq!(snapshot.name_of(&vm("vm-111")), Some(record::RENAMED));
    // Nothing else changed.
    assert_eq!(snapshot.len(), before.len());
    let changed: Vec<String> = snapshot
        .objects()
        .filter(|(obj, object)| before.get(obj) != Some(*object))
        .map(|(obj, _)| obj.to_string())
        .collect();
    assert_eq!(changed, ["VirtualMachine:vm-105", "VirtualMachine:vm-111"]);
}

#[test]
fn updates_enter_modify_and_leave() {
    let mut snapshot = snapshot_of(RETRIEVE_VPX);
    let answer = wait_answer(
        "<objectSet><kind>enter</kind><obj type=\"VirtualMachine\">vm-500</obj>\
         <changeSet><name>name</name><op>assign</op><val xsi:type=\"xsd:string\">new</val></changeSet>\
         <changeSet><name>config.template</name><op>assign</op><val xsi:type=\"xsd:boolean\">true</val></changeSet>\
         </objectSet>\
         <objectSet><kind>modify</kind><obj type=\"VirtualMachine\">vm-105</obj>\
         <changeSet><name>guest.toolsStatus</name><op>remove</op></changeSet>\
         <changeSet><name>runtime.host</name><op>assign</op></changeSet>\
         <changeSet><name>config.hardware.numCPU</name><op>indirectRemove</op></changeSet>\
         <missingSet><path>summary.quickStats.overallCpuUsage</path><fault><fault xsi:type=\"NoPermission\">\
         <privilegeId>System.Read</privilegeId></fault></fault></missingSet>\
         </objectSet>\
         <objectSet><kind>leave</kind><obj type=\"VirtualMachine\">vm-108</obj></objectSet>",
    );
    snapshot.apply_updates(&update_set_of(answer.as_bytes()));
    assert_eq!(snapshot.version(), Some("7"));
    let entered = snapshot.get(&vm("vm-500")).expect("vm-500 entered");
    assert_eq!(entered.name(), Some("new"));
    assert_eq!(entered.bool(paths::vm::TEMPLATE), Ok(Some(true)));
    let modified = snapshot.get(&vm("vm-105")).expect("vm-105 stays");
    for cleared in [
        paths::vm::TOOLS_STATUS,
        paths::vm::HOST,
        paths::vm::NUM_CPU,
        paths::vm::CPU_USAGE_MHZ,
    ] {
        assert_eq!(modified.get(cleared), None, "{cleared}");
    }
    assert_eq!(modified.name(), Some("DC0_C0_RP0_VM0"));
    assert!(snapshot.get(&vm("vm-108")).is_none());
    check_json(
        render_issues(&snapshot),
        json!([{
            "obj": "VirtualMachine:vm-105",
            "label": "VM \"DC0_C0_RP0_VM0\" (vm-105)",
            "path": "summary.quickStats.overallCpuUsage",
            "fault": "NoPermission",
            "privilege": "System.Read",
            "message": null,
        }]),
    );

    // The property becoming readable again clears its issue; leaving clears the rest.
    snapshot.apply_updates(&modify(
        &vm("vm-105"),
        paths::vm::CPU_USAGE_MHZ,
        "xsd:int",
        "12",
    ));
    assert_eq!(snapshot.issues().count(), 0);
    let leave = wait_answer(
        "<objectSet><kind>modify</kind><obj type=\"VirtualMachine\">vm-105</obj>\
         <missingSet><path>name</path><fault><fault xsi:type=\"NotAuthenticated\"></fault></fault>\
         </missingSet></objectSet>",
    );
    snapshot.apply_updates(&update_set_of(leave.as_bytes()));
    assert!(snapshot.has_session_fault());
    assert_eq!(snapshot.label(&vm("vm-105")), "VM vm-105");
    let leave = wait_answer(
        "<objectSet><kind>leave</kind><obj type=\"VirtualMachine\">vm-105</obj></objectSet>",
    );
    snapshot.apply_updates(&update_set_of(leave.as_bytes()));
    assert!(!snapshot.has_session_fault());
    assert_eq!(snapshot.issues().count(), 0);
}

#[test]
fn missing_objects_of_a_filter_are_issues() {
    let answer = request::envelope(
        "<WaitForUpdatesExResponse xmlns=\"urn:vim25\"><returnval><version>2</version>\
         <truncated>true</truncated><filterSet><filter type=\"PropertyFilter\">f</filter>\
         <missingSet><obj type=\"HostSystem\">host-9</obj><fault><fault xsi:type=\"NoPermission\">\
         <privilegeId>System.View</privilegeId></fault><localizedMessage>denied</localizedMessage>\
         </fault></missingSet></filterSet></returnval></WaitForUpdatesExResponse>",
    );
    let updates = update_set_of(answer.as_bytes());
    assert!(updates.truncated);
    let mut snapshot = InventorySnapshot::new();
    snapshot.apply_updates(&updates);
    check_json(
        render_issues(&snapshot),
        json!([{
            "obj": "HostSystem:host-9",
            "label": "host host-9",
            "path": null,
            "fault": "NoPermission",
            "privilege": "System.View",
            "message": "denied",
        }]),
    );
}

#[test]
fn no_changes_is_none() {
    let answer = request::envelope(
        "<WaitForUpdatesExResponse xmlns=\"urn:vim25\"></WaitForUpdatesExResponse>",
    );
    assert_eq!(parse_update_set(answer.as_bytes()), Ok(None));
    let answer = request::envelope("<WaitForUpdatesExResponse xmlns=\"urn:vim25\"/>");
    assert_eq!(parse_update_set(answer.as_bytes()), Ok(None));
}

#[test]
fn a_soap_fault_is_typed() {
    let fault = parse_fault(FAULT_NOT_AUTHENTICATED).expect("the fault parses");
    assert_eq!(
        fault,
        SoapFault {
            fault_type: "NotAuthenticated".to_owned(),
            message: String::new(),
            privilege: Some("System.View".to_owned()),
            object: Some(MoRef::new("ViewManager", "ViewManager")),
        }
    );
    let error = parse_retrieve_result(FAULT_NOT_AUTHENTICATED).expect_err("a fault is no result");
    assert_eq!(error.fault(), Some(&fault));
    assert!(parse_update_set(FAULT_NOT_AUTHENTICATED).is_err());

    // A vCenter-style fault without xsi:type on the detail, and one without any detail.
    let without_type = request::envelope(
        "<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Permission to perform \
         this operation was denied.</faultstring><detail><NoPermissionFault xmlns=\"urn:vim25\">\
         <object type=\"Folder\">group-d1</object><privilegeId>System.View</privilegeId>\
         </NoPermissionFault></detail></soapenv:Fault>",
    );
    let fault = parse_fault(without_type.as_bytes()).expect("the fault parses");
    assert_eq!(fault.fault_type, "NoPermission");
    assert_eq!(
        fault.message,
        "Permission to perform this operation was denied."
    );
    let bare = request::envelope(
        "<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>oops</faultstring></soapenv:Fault>",
    );
    assert_eq!(
        parse_fault(bare.as_bytes()).map(|fault| fault.fault_type),
        Ok("SoapFault".to_owned())
    );
    assert!(matches!(
        parse_fault(RETRIEVE_VPX),
        Err(XmlError::Unexpected { .. })
    ));
}

#[test]
fn single_reference_and_void_answers() {
    let view = request::envelope(
        "<CreateContainerViewResponse xmlns=\"urn:vim25\"><returnval type=\"ContainerView\">\
         session[1]2</returnval></CreateContainerViewResponse>",
    );
    assert_eq!(
        parse_moref_response(view.as_bytes(), "CreateContainerViewResponse"),
        Ok(MoRef::new("ContainerView", "session[1]2"))
    );
    assert!(matches!(
        parse_moref_response(view.as_bytes(), "CreateFilterResponse"),
        Err(XmlError::Unexpected { .. })
    ));
    let empty = request::envelope("<CreateFilterResponse xmlns=\"urn:vim25\"/>");
    assert!(matches!(
        parse_moref_response(empty.as_bytes(), "CreateFilterResponse"),
        Err(XmlError::Unexpected { .. })
    ));
    let void = request::envelope("<DestroyViewResponse xmlns=\"urn:vim25\"></DestroyViewResponse>");
    assert_eq!(
        parse_void_response(void.as_bytes(), "DestroyViewResponse"),
        Ok(())
    );
    assert!(matches!(
        parse_void_response(FAULT_NOT_AUTHENTICATED, "DestroyViewResponse"),
        Err(XmlError::Fault(_))
    ));
}

#[test]
fn values_of_every_shape() {
    check_retrieve(
        &retrieve_answer(
            "<objects><obj type=\"VirtualMachine\">vm-1</obj>\
             <propSet><name>a</name><val xsi:type=\"xsd:string\">x &amp; y &lt;z&gt; &#x41;&#66;</val></propSet>\
             <propSet><name>b</name><val xsi:type=\"xsd:int\"> 42 </val></propSet>\
             <propSet><name>c</name><val xsi:type=\"xsd:string\"></val></propSet>\
             <propSet><name>d</name><val xsi:type=\"xsd:string\"/></propSet>\
             <propSet><name>e</name><val><![CDATA[<raw>]]></val></propSet>\
             <propSet><name>f</name><val xsi:type=\"ManagedObjectReference\" type=\"HostSystem\">host-1</val></propSet>\
             <propSet><name>g</name><val xsi:type=\"ArrayOfManagedObjectReference\">\
               <ManagedObjectReference type=\"Datastore\">ds-1</ManagedObjectReference>\
               <ManagedObjectReference type=\"Datastore\">ds-2</ManagedObjectReference></val></propSet>\
             <propSet><name>h</name><val xsi:type=\"ArrayOfManagedObjectReference\"/></propSet>\
             <propSet><name>i</name><val xsi:type=\"ArrayOfString\"><string>10.0.0.1</string><string>fe80::1</string></val></propSet>\
             <propSet><name>j</name><val xsi:type=\"ArrayOfDatastoreHostMount\"><DatastoreHostMount>\
               <key type=\"HostSystem\">host-1</key><mountInfo><path>/x</path></mountInfo></DatastoreHostMount>\
               <DatastoreHostMount><mountInfo/><key type=\"HostSystem\">host-2</key></DatastoreHostMount></val></propSet>\
             <propSet><name>k</name><val xsi:type=\"VirtualMachineSnapshotTree\"><name>s</name><childSnapshotList><x/></childSnapshotList></val></propSet>\
             <propSet><name>l</name><val xmlns:other=\"http://www.w3.org/2001/XMLSchema-instance\" other:type=\"other:dateTime\">2024-01-01T00:00:00Z</val></propSet>\
             <propSet><name>m</name></propSet>\
             <propSet><name>n</name><val xsi:type=\"xsd:string\">a\r\nb</val><unknown>skipped</unknown></propSet>\
             <somethingNew><nested/></somethingNew>\
             </objects><token>next</token>",
        ),
        json!({
            "objects": [{
                "obj": "VirtualMachine:vm-1",
                "props": {
                    "a": "string:x & y <z> AB",
                    "b": "int: 42 ",
                    "c": "string:",
                    "d": "string:",
                    "e": ":<raw>",
                    "f": "->HostSystem:host-1",
                    "g": ["->Datastore:ds-1", "->Datastore:ds-2"],
                    "h": [],
                    "i": ["10.0.0.1", "fe80::1"],
                    "j": { "mounts": ["->HostSystem:host-1", "->HostSystem:host-2"] },
                    "k": "unsupported:VirtualMachineSnapshotTree",
                    "l": "dateTime:2024-01-01T00:00:00Z",
                    "n": "string:a\nb",
                },
                "missing": [],
            }],
            "token": "next",
        }),
    );
    // An integer read from a padded value still parses; text where an integer belongs is a
    // mismatch, never a panic.
    let snapshot = InventorySnapshot::from_results([parse_retrieve_result(
        retrieve_answer(
            "<objects><obj type=\"VirtualMachine\">vm-1</obj>\
             <propSet><name>b</name><val xsi:type=\"xsd:int\"> 42 </val></propSet>\
             <propSet><name>s</name><val xsi:type=\"xsd:string\">abc</val></propSet></objects>",
        )
        .as_bytes(),
    )
    .expect("parses")]);
    let object = snapshot.get(&vm("vm-1")).expect("vm-1");
    assert_eq!(object.i64("b"), Ok(Some(42)));
    assert_eq!(object.i64("absent"), Ok(None));
    assert_eq!(
        object.i64("s"),
        Err(ValueMismatch {
            path: "s".to_owned(),
            expected: "an integer",
            found: "string \"abc\"".to_owned(),
        })
    );
    assert!(object.bool("s").is_err());
    assert!(object.reference("s").is_err());
    assert!(object.refs("s").is_err());
    assert_eq!(object.refs("absent"), Ok(&[][..]));
    assert!(object.texts("s").is_err());
}

#[test]
fn an_empty_answer_is_an_empty_result() {
    check_retrieve(
        &request::envelope("<RetrievePropertiesExResponse xmlns=\"urn:vim25\"/>"),
        json!({ "objects": [], "token": null }),
    );
    // The response element on its own, without an envelope, is accepted too.
    check_retrieve(
        "<ContinueRetrievePropertiesExResponse><returnval><token>t</token></returnval></ContinueRetrievePropertiesExResponse>",
        json!({ "objects": [], "token": "t" }),
    );
}

#[test]
fn malformed_or_unexpected_answers_are_typed_errors() {
    let cases: &[(&str, &str)] = &[
        ("", "unexpected"),
        ("not xml at all", "unexpected"),
        ("<html><body>Login</body></html>", "unexpected"),
        ("<RetrievePropertiesExResponse><returnval>", "malformed"),
        ("<RetrievePropertiesExResponse></returnval>", "malformed"),
        ("<RetrievePropertiesExResponse><returnval></RetrievePropertiesExResponse>", "malformed"),
        ("<RetrievePropertiesExResponse><returnval><objects><propSet><name>n</name></propSet></objects></returnval></RetrievePropertiesExResponse>", "unexpected"),
        ("<RetrievePropertiesExResponse><returnval><objects><obj>vm-1</obj></objects></returnval></RetrievePropertiesExResponse>", "unexpected"),
        ("<RetrievePropertiesExResponse><returnval><objects><obj type=\"VirtualMachine\">vm-1</obj><propSet><val>1</val></propSet></objects></returnval></RetrievePropertiesExResponse>", "unexpected"),
        ("<RetrievePropertiesExResponse><returnval>stray text</returnval></RetrievePropertiesExResponse>", "unexpected"),
        ("<RetrievePropertiesExResponse><returnval><token><b/></token></returnval></RetrievePropertiesExResponse>", "unexpected"),
        ("<RetrievePropertiesExResponse><returnval><token>&nbsp;</token></returnval></RetrievePropertiesExResponse>", "malformed"),
        ("<RetrievePropertiesExResponse><returnval><token>&#0;</token></returnval></RetrievePropertiesExResponse>", "malformed"),
        ("<RetrievePropertiesExResponse/><extra/>", "unexpected"),
        ("<WaitForUpdatesExResponse/>", "unexpected"),
        ("<RetrievePropertiesExResponse><returnval><objects><obj type=\"a\" type=\"b\">x</obj></objects></returnval></RetrievePropertiesExResponse>", "malformed"),
    ];
    for (input, expected) in cases {
        let actual = match parse_retrieve_result(input.as_bytes()) {
            Ok(result) => format!("ok: {result:?}"),
            Err(error) => {
                // Every error renders as a message that says where.
                assert!(error.to_string().contains("byte") || error.fault().is_some());
                error_kind(&error)
            }
        };
        assert_eq!(&actual, expected, "for {input:?}");
    }
    assert!(matches!(
        parse_retrieve_result(
            b"<RetrievePropertiesExResponse>\xff\xfe</RetrievePropertiesExResponse>"
        ),
        Err(XmlError::Malformed { .. })
    ));
    let bad_kind = wait_answer(
        "<objectSet><kind>teleport</kind><obj type=\"VirtualMachine\">vm-1</obj></objectSet>",
    );
    assert!(matches!(
        parse_update_set(bad_kind.as_bytes()),
        Err(XmlError::Unexpected { .. })
    ));
    let bad_op = wait_answer(
        "<objectSet><kind>modify</kind><obj type=\"VirtualMachine\">vm-1</obj>\
         <changeSet><name>name</name><op>explode</op></changeSet></objectSet>",
    );
    assert!(matches!(
        parse_update_set(bad_op.as_bytes()),
        Err(XmlError::Unexpected { .. })
    ));
    let no_version = request::envelope(
        "<WaitForUpdatesExResponse><returnval><truncated>maybe</truncated></returnval></WaitForUpdatesExResponse>",
    );
    assert!(matches!(
        parse_update_set(no_version.as_bytes()),
        Err(XmlError::Unexpected { .. })
    ));
}

#[test]
fn managed_object_ids_sort_naturally() {
    let mut ids = vec![
        "vm-10", "vm-9", "vm-100", "host-2", "vm-09", "vm-9a", "vm-", "vm-1x2",
    ];
    ids.sort_by(|a, b| natural_cmp(a, b));
    assert_eq!(
        ids,
        ["host-2", "vm-", "vm-1x2", "vm-09", "vm-9", "vm-9a", "vm-10", "vm-100"]
    );
    let mut refs = vec![vm("vm-10"), host("host-3"), vm("vm-9")];
    refs.sort();
    assert_eq!(refs, [host("host-3"), vm("vm-9"), vm("vm-10")]);
    assert_eq!(
        natural_cmp("vm-99999999999999999999999", "vm-100000000000000000000000"),
        std::cmp::Ordering::Less
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_reader_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_retrieve_result(&bytes);
        let _ = parse_update_set(&bytes);
        let _ = parse_fault(&bytes);
        let _ = parse_moref_response(&bytes, "CreateFilterResponse");
    }

    #[test]
    fn the_reader_never_panics_on_truncated_answers(fixture in 0..FIXTURES.len(), cut in any::<proptest::sample::Index>()) {
        let full = FIXTURES[fixture].trim_ascii_end();
        let prefix = &full[..cut.index(full.len())];
        // A strict prefix of a document is never a complete answer.
        prop_assert!(parse_retrieve_result(prefix).is_err());
        prop_assert!(parse_update_set(prefix).is_err());
        let _ = parse_fault(prefix);
    }

    #[test]
    fn the_reader_never_panics_on_mangled_answers(fixture in 0..FIXTURES.len(), at in any::<proptest::sample::Index>(), byte in any::<u8>()) {
        let mut mangled = FIXTURES[fixture].to_vec();
        let index = at.index(mangled.len());
        mangled[index] = byte;
        let _ = parse_retrieve_result(&mangled);
        let _ = parse_update_set(&mangled);
        let _ = parse_fault(&mangled);
    }
}
