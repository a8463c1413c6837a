//! Drives the govmomi vCenter simulator over SOAP with this module's own request builders and
//! checks the live answers; with `PYLON_RECORD_FIXTURES=<directory>` it also (re)writes the
//! fixtures the offline tests read.
//!
//! Recording, from the workspace root:
//!
//! ```text
//! PYLON_RECORD_FIXTURES=$PWD/providers/vsphere/tests/fixtures \
//!     cargo nextest run -p pylon-vsphere --lib inventory::tests::record
//! ```
//!
//! What is recorded, in order (the simulator is 2 datacenters, each with 1 cluster of 2 hosts,
//! 1 standalone host, 2 datastores and 2 VMs per cluster and per standalone host):
//!
//! 1. Setup through SOAP so the inventory has more than the simulator's defaults: a folder
//!    `Prod` in `DC0`'s VM folder with one VM moved into it, a resource pool `Pool1` in the
//!    first cluster, and one VM powered off and marked as a template.
//! 2. `retrieve_vpx.xml`: the `RetrievePropertiesEx` answer for every inventory type.
//! 3. `wait_for_updates_initial.xml`: `WaitForUpdatesEx` without a version on a filter with
//!    the same spec (every object `enter`s).
//! 4. `wait_for_updates_modify.xml`: after `PowerOffVM_Task` on one VM and `Rename_Task` on
//!    another, `WaitForUpdatesEx` with the version from 3.
//! 5. After `Logout`: `retrieve_missingset_notauthenticated.xml`, a `RetrievePropertiesEx`
//!    directly on one VM, which the simulator answers with a `NotAuthenticated` fault in the
//!    `missingSet` of every property; and `fault_not_authenticated.xml`, the SOAP fault
//!    `CreateContainerView` gets without a session.
//!
//! Derived by editing the real answer from 2 (the simulator cannot produce them):
//! `retrieve_missingset_nopermission.xml` (one VM's `summary.quickStats.overallCpuUsage`
//! replaced by a `NoPermission` fault for `System.Read`) and `retrieve_paged_1.xml` +
//! `retrieve_paged_2.xml` (the objects split in two pages joined by a token; the simulator
//! never pages).
//!
//! `triggeredAlarmState` (always an empty `ArrayOfAlarmState` in the simulator) was added by
//! hand to every object of 2 and its derived files, as the live check asks, rather than by
//! recording again.
//!
//! Recording again changes the volatile values (UUIDs, free space, the simulator's temporary
//! paths, which it also uses as datastore ids); the inline expectations in these tests and in
//! `project::tests` then need the new values, which the failing checks print.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pylon_vcsim::{Simulator, SimulatorOptions};

use super::super::paths::{self, INVENTORY_TYPES};
use super::super::request::{self, InventorySpec};
use super::super::xml::{parse_fault, parse_moref_response, parse_update_set, parse_void_response};
use super::super::{parse_retrieve_result, InventorySnapshot, MoRef};

/// The SOAP action of vSphere API 6.5, Pylon's floor, which the simulator reports.
const SOAP_ACTION: &str = "urn:vim25/6.5";

/// The paths of the VM whose CPU usage the `NoPermission` fixture hides.
pub(super) const HIDDEN_PATH: &str = paths::vm::CPU_USAGE_MHZ;

pub(super) fn shape() -> SimulatorOptions {
    SimulatorOptions {
        datacenters: Some(2),
        clusters: Some(1),
        hosts_per_cluster: Some(2),
        standalone_hosts: Some(1),
        vms: Some(2),
        datastores: Some(2),
        ..SimulatorOptions::default()
    }
}

/// A logged-in (or not) SOAP client for the simulator.
struct Live {
    http: reqwest::Client,
    url: String,
}

impl Live {
    fn new(simulator: &Simulator) -> Self {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(pylon_vcsim::tls_config_trusting(simulator.ca_pem()))
            .cookie_store(true)
            .no_proxy()
            .build()
            .expect("the HTTP client builds");
        Self {
            http,
            url: simulator.url().to_owned(),
        }
    }

    /// Sends one method body; answers the HTTP status and the response body.
    async fn call(&self, body: &str) -> (u16, String) {
        let response = self
            .http
            .post(&self.url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", SOAP_ACTION)
            .body(request::envelope(body))
            .send()
            .await
            .expect("the simulator answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("the answer is text");
        (status, text)
    }

    /// Sends one method body and insists on success.
    async fn ok(&self, method: &str, body: &str) -> String {
        let (status, text) = self.call(body).await;
        assert!(
            (200..300).contains(&status),
            "{method} answered HTTP {status}: {text}"
        );
        text
    }
}

/// Service content: the objects every session starts from.
struct Service {
    root_folder: MoRef,
    property_collector: MoRef,
    view_manager: MoRef,
    session_manager: MoRef,
}

/// The `<element type="Kind">id</element>` reference inside `xml`, by element name.
fn moref_in(xml: &str, element: &str) -> MoRef {
    let open = format!("<{element} type=\"");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{element}> in {xml}"))
        + open.len();
    let rest = &xml[start..];
    let kind = &rest[..rest.find('"').expect("the type attribute ends")];
    let value_start = rest.find('>').expect("the element opens") + 1;
    let value_end = rest.find('<').expect("the element closes");
    MoRef::new(kind, &rest[value_start..value_end])
}

fn simple_call(method: &str, this: &MoRef, params: &str) -> String {
    format!(
        "<{method} xmlns=\"urn:vim25\"><_this type=\"{}\">{}</_this>{params}</{method}>",
        this.kind, this.value
    )
}

/// The views of one session and the spec that reads them.
struct Views {
    views: Vec<MoRef>,
}

impl Views {
    async fn create(live: &Live, service: &Service) -> Self {
        let mut views = Vec::new();
        for type_paths in INVENTORY_TYPES {
            let body = request::create_container_view(
                &service.view_manager,
                &service.root_folder,
                type_paths.kind,
            );
            let answer = live.ok("CreateContainerView", &body).await;
            let view = parse_moref_response(answer.as_bytes(), "CreateContainerViewResponse")
                .expect("CreateContainerView answers a view");
            assert!(view.is("ContainerView"), "{view}");
            views.push(view);
        }
        Self { views }
    }

    fn spec(&self) -> InventorySpec<'_> {
        InventorySpec {
            views: &self.views,
            types: INVENTORY_TYPES,
        }
    }

    async fn destroy(self, live: &Live) {
        for view in &self.views {
            let answer = live.ok("DestroyView", &request::destroy_view(view)).await;
            parse_void_response(answer.as_bytes(), "DestroyViewResponse")
                .expect("DestroyView succeeds");
        }
    }
}

async fn retrieve(live: &Live, service: &Service, views: &Views) -> String {
    let body = request::retrieve_properties_ex(&service.property_collector, &views.spec(), None);
    live.ok("RetrievePropertiesEx", &body).await
}

/// What an inventory looks like without its volatile parts (ids, sizes, times): per object
/// type and name, which properties it has and which it could not read.
pub(super) fn shape_of(
    snapshot: &InventorySnapshot,
) -> BTreeMap<(String, String), BTreeSet<String>> {
    snapshot
        .objects()
        .map(|(obj, object)| {
            let name = object.name().unwrap_or(&obj.value).to_owned();
            let paths = object.props().map(|(path, _)| path.to_owned()).collect();
            ((obj.kind.to_string(), name), paths)
        })
        .collect()
}

fn count(snapshot: &InventorySnapshot, kind: &str) -> u64 {
    snapshot.objects_of(kind).count() as u64
}

/// Finds the objects the setup changes: VMs in `DC0`'s VM folder, in natural id order.
fn dc0_vm_folder_and_vms(snapshot: &InventorySnapshot) -> (MoRef, Vec<MoRef>) {
    let dc0 = snapshot
        .objects_of(paths::DATACENTER)
        .find(|(_, object)| object.name() == Some("DC0"))
        .map(|(obj, _)| obj.clone())
        .expect("the simulator has DC0");
    let vm_folder = snapshot
        .objects_of(paths::FOLDER)
        .find(|(_, object)| {
            object.name() == Some("vm") && object.reference(paths::PARENT) == Ok(Some(&dc0))
        })
        .map(|(obj, _)| obj.clone())
        .expect("DC0 has a VM folder");
    let vms = snapshot
        .objects_of(paths::vm::KIND)
        .filter(|(_, object)| object.reference(paths::PARENT) == Ok(Some(&vm_folder)))
        .map(|(obj, _)| obj.clone())
        .collect();
    (vm_folder, vms)
}

fn first_cluster_root_pool(snapshot: &InventorySnapshot) -> MoRef {
    snapshot
        .objects_of(paths::resource_pool::KIND)
        .find(|(_, object)| {
            object
                .reference(paths::PARENT)
                .ok()
                .flatten()
                .is_some_and(|parent| parent.is(paths::CLUSTER_COMPUTE_RESOURCE))
        })
        .map(|(obj, _)| obj.clone())
        .expect("the cluster has a root resource pool")
}

const POOL_SPEC: &str = "<spec>\
    <cpuAllocation><reservation>0</reservation><expandableReservation>true</expandableReservation>\
    <limit>-1</limit><shares><shares>4000</shares><level>normal</level></shares></cpuAllocation>\
    <memoryAllocation><reservation>0</reservation><expandableReservation>true</expandableReservation>\
    <limit>-1</limit><shares><shares>163840</shares><level>normal</level></shares></memoryAllocation>\
    </spec>";

/// The name the update fixture gives the renamed VM.
pub(super) const RENAMED: &str = "DC0_renamed_VM";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_and_check_live_simulator() {
    let simulator = Simulator::start(shape()).await;
    let live = Live::new(&simulator);
    let expected = simulator.inventory().clone();

    let content = live
        .ok(
            "RetrieveServiceContent",
            "<RetrieveServiceContent xmlns=\"urn:vim25\">\
             <_this type=\"ServiceInstance\">ServiceInstance</_this></RetrieveServiceContent>",
        )
        .await;
    let service = Service {
        root_folder: moref_in(&content, "rootFolder"),
        property_collector: moref_in(&content, "propertyCollector"),
        view_manager: moref_in(&content, "viewManager"),
        session_manager: moref_in(&content, "sessionManager"),
    };
    live.ok(
        "Login",
        &simple_call(
            "Login",
            &service.session_manager,
            "<userName>pylon</userName><password>pylon</password>",
        ),
    )
    .await;

    let views = Views::create(&live, &service).await;
    let first = parse_retrieve_result(retrieve(&live, &service, &views).await.as_bytes())
        .expect("the live answer parses");
    assert_eq!(first.token, None, "the simulator never pages");
    let first = InventorySnapshot::from_results([first]);
    // The simulator's views do not pick up resource pools created after them (it looks for
    // the new pool before linking it to its parent), so read the setup with fresh views.
    views.destroy(&live).await;

    // Setup: a user folder with a VM in it, a user resource pool, and a template.
    let (vm_folder, dc0_vms) = dc0_vm_folder_and_vms(&first);
    assert!(
        dc0_vms.len() >= 2,
        "DC0's VM folder holds the standalone host's VMs"
    );
    let answer = live
        .ok(
            "CreateFolder",
            &simple_call("CreateFolder", &vm_folder, "<name>Prod</name>"),
        )
        .await;
    let prod = parse_moref_response(answer.as_bytes(), "CreateFolderResponse")
        .expect("CreateFolder answers the folder");
    let moved = &dc0_vms[0];
    live.ok(
        "MoveIntoFolder_Task",
        &simple_call(
            "MoveIntoFolder_Task",
            &prod,
            &format!("<list type=\"VirtualMachine\">{}</list>", moved.value),
        ),
    )
    .await;
    let root_pool = first_cluster_root_pool(&first);
    live.ok(
        "CreateResourcePool",
        &simple_call(
            "CreateResourcePool",
            &root_pool,
            &format!("<name>Pool1</name>{POOL_SPEC}"),
        ),
    )
    .await;
    let template = &dc0_vms[1];
    live.ok(
        "PowerOffVM_Task",
        &simple_call("PowerOffVM_Task", template, ""),
    )
    .await;
    live.ok(
        "MarkAsTemplate",
        &simple_call("MarkAsTemplate", template, ""),
    )
    .await;

    // The full read.
    let views = Views::create(&live, &service).await;
    let retrieve_vpx = retrieve(&live, &service, &views).await;
    let result = parse_retrieve_result(retrieve_vpx.as_bytes()).expect("the live answer parses");
    for object in &result.objects {
        assert!(
            object.missing.is_empty(),
            "every requested path exists in the simulator, but {} misses {:?}",
            object.obj,
            object.missing
        );
    }
    let snapshot = InventorySnapshot::from_results([result]);
    assert_eq!(count(&snapshot, paths::host::KIND), expected.hosts);
    assert_eq!(count(&snapshot, paths::vm::KIND), expected.vms);
    assert_eq!(
        count(&snapshot, paths::datastore::KIND),
        expected.datastores
    );
    assert_eq!(count(&snapshot, paths::DATACENTER), expected.datacenters);
    assert_eq!(
        count(&snapshot, paths::CLUSTER_COMPUTE_RESOURCE),
        expected.clusters
    );
    assert_eq!(
        snapshot
            .get(moved)
            .and_then(|vm| vm.reference(paths::PARENT).ok().flatten()),
        Some(&prod)
    );
    assert_eq!(
        snapshot
            .get(template)
            .and_then(|vm| vm.bool(paths::vm::TEMPLATE).ok().flatten()),
        Some(true)
    );

    // Incremental reads through a property filter.
    let answer = live
        .ok(
            "CreateFilter",
            &request::create_filter(&service.property_collector, &views.spec()),
        )
        .await;
    let filter = parse_moref_response(answer.as_bytes(), "CreateFilterResponse")
        .expect("CreateFilter answers the filter");
    let initial = live
        .ok(
            "WaitForUpdatesEx",
            &request::wait_for_updates_ex(&service.property_collector, None),
        )
        .await;
    let initial_set = parse_update_set(initial.as_bytes())
        .expect("the initial update set parses")
        .expect("the initial update set is not empty");
    let mut from_updates = InventorySnapshot::new();
    from_updates.apply_updates(&initial_set);
    assert_eq!(shape_of(&from_updates), shape_of(&snapshot));

    let powered_off = &dc0_vms[2.min(dc0_vms.len() - 1)];
    let renamed = first
        .objects_of(paths::vm::KIND)
        .map(|(obj, _)| obj)
        .find(|obj| !dc0_vms.contains(obj))
        .expect("there are VMs outside DC0's VM folder")
        .clone();
    live.ok(
        "PowerOffVM_Task",
        &simple_call("PowerOffVM_Task", powered_off, ""),
    )
    .await;
    live.ok(
        "Rename_Task",
        &simple_call(
            "Rename_Task",
            &renamed,
            &format!("<newName>{RENAMED}</newName>"),
        ),
    )
    .await;
    let mut modify = None;
    for _ in 0..20 {
        let answer = live
            .ok(
                "WaitForUpdatesEx",
                &request::wait_for_updates_ex(
                    &service.property_collector,
                    Some(&initial_set.version),
                ),
            )
            .await;
        if parse_update_set(answer.as_bytes())
            .expect("the update set parses")
            .is_some()
        {
            modify = Some(answer);
            break;
        }
    }
    let modify = modify.expect("the power-off and the rename are reported");
    let modify_set = parse_update_set(modify.as_bytes())
        .expect("the update set parses")
        .expect("the update set is not empty");
    let mut updated = snapshot.clone();
    updated.apply_updates(&modify_set);
    assert_eq!(updated.name_of(&renamed), Some(RENAMED));
    assert_eq!(
        updated
            .get(powered_off)
            .and_then(|vm| vm.str(paths::vm::POWER_STATE).ok().flatten()),
        Some("poweredOff")
    );

    let answer = live
        .ok(
            "DestroyPropertyFilter",
            &request::destroy_property_filter(&filter),
        )
        .await;
    parse_void_response(answer.as_bytes(), "DestroyPropertyFilterResponse")
        .expect("DestroyPropertyFilter succeeds");
    views.destroy(&live).await;
    live.ok(
        "Logout",
        &simple_call("Logout", &service.session_manager, ""),
    )
    .await;

    // Without a session.
    let direct = format!(
        "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"{}\">{}</_this><specSet>\
         <propSet><type>VirtualMachine</type><all>false</all>{}</propSet>\
         <objectSet><obj type=\"VirtualMachine\">{}</obj><skip>false</skip></objectSet>\
         </specSet><options></options></RetrievePropertiesEx>",
        service.property_collector.kind,
        service.property_collector.value,
        paths::vm::PATHS
            .iter()
            .map(|path| format!("<pathSet>{path}</pathSet>"))
            .collect::<String>(),
        renamed.value,
    );
    let not_authenticated = live.ok("RetrievePropertiesEx", &direct).await;
    let expired =
        InventorySnapshot::from_results([parse_retrieve_result(not_authenticated.as_bytes())
            .expect("a missingSet answer parses")]);
    assert!(expired.has_session_fault());

    let (status, fault) = live
        .call(&request::create_container_view(
            &service.view_manager,
            &service.root_folder,
            paths::vm::KIND,
        ))
        .await;
    assert_eq!(status, 500, "{fault}");
    let parsed = parse_fault(fault.as_bytes()).expect("the fault parses");
    assert_eq!(parsed.fault_type, "NotAuthenticated", "{parsed:?}");

    simulator.stop().await;

    if let Some(directory) = std::env::var_os("PYLON_RECORD_FIXTURES") {
        let directory = PathBuf::from(directory);
        write(&directory, "retrieve_vpx.xml", &retrieve_vpx);
        write(&directory, "wait_for_updates_initial.xml", &initial);
        write(&directory, "wait_for_updates_modify.xml", &modify);
        write(
            &directory,
            "retrieve_missingset_notauthenticated.xml",
            &not_authenticated,
        );
        write(&directory, "fault_not_authenticated.xml", &fault);
        let hidden = snapshot
            .objects_of(paths::vm::KIND)
            .find(|(obj, object)| *obj != template && object.get(HIDDEN_PATH).is_some())
            .map(|(obj, _)| obj.clone())
            .expect("a VM reports CPU usage");
        write(
            &directory,
            "retrieve_missingset_nopermission.xml",
            &with_no_permission(&retrieve_vpx, &hidden, HIDDEN_PATH),
        );
        let (page_1, page_2) = split_in_pages(&retrieve_vpx);
        write(&directory, "retrieve_paged_1.xml", &page_1);
        write(&directory, "retrieve_paged_2.xml", &page_2);
    } else {
        // Without recording, the committed fixture must still look like a live answer: same
        // objects by name, same properties each. A changed path list or simulator shape fails
        // here until the fixtures are recorded again.
        let committed = parse_retrieve_result(super::RETRIEVE_VPX).expect("the fixture parses");
        assert_eq!(
            shape_of(&InventorySnapshot::from_results([committed])),
            shape_of(&snapshot),
            "tests/fixtures/retrieve_vpx.xml is stale; record it again (see this module's docs)"
        );
    }
}

fn write(directory: &Path, name: &str, contents: &str) {
    std::fs::create_dir_all(directory).expect("the fixture directory can be created");
    let path = directory.join(name);
    std::fs::write(&path, contents)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// The `<objects>…</objects>` spans of a `RetrievePropertiesEx` answer.
fn object_spans(xml: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(start) = xml[from..].find("<objects>") {
        let start = from + start;
        let end = start
            + xml[start..]
                .find("</objects>")
                .expect("every object closes")
            + "</objects>".len();
        spans.push((start, end));
        from = end;
    }
    spans
}

/// Replaces `path` of `vm` by a `NoPermission` fault for `System.Read` in its `missingSet`, as
/// a vCenter does for a role without that privilege on the object.
fn with_no_permission(xml: &str, vm: &MoRef, path: &str) -> String {
    let obj = format!("<obj type=\"{}\">{}</obj>", vm.kind, vm.value);
    let (start, end) = object_spans(xml)
        .into_iter()
        .find(|(start, end)| xml[*start..*end].contains(&obj))
        .expect("the VM is in the answer");
    let object = &xml[start..end];
    let name = format!("<name>{path}</name>");
    let prop_start = object.find(&name).expect("the VM has the property");
    let prop_start = object[..prop_start]
        .rfind("<propSet>")
        .expect("the property is in a propSet");
    let prop_end = prop_start
        + object[prop_start..]
            .find("</propSet>")
            .expect("the propSet closes")
        + "</propSet>".len();
    let missing = format!(
        "<missingSet><path>{path}</path><fault><fault xsi:type=\"NoPermission\">\
         <object type=\"{}\">{}</object><privilegeId>System.Read</privilegeId></fault>\
         <localizedMessage>Permission to perform this operation was denied.</localizedMessage>\
         </fault></missingSet>",
        vm.kind, vm.value
    );
    let without = format!("{}{}", &object[..prop_start], &object[prop_end..]);
    let close = without.len() - "</objects>".len();
    let edited = format!("{}{missing}</objects>", &without[..close]);
    format!("{}{edited}{}", &xml[..start], &xml[end..])
}

/// Splits an answer into a first page with a token and a `ContinueRetrievePropertiesEx` page.
fn split_in_pages(xml: &str) -> (String, String) {
    let spans = object_spans(xml);
    let (first_start, _) = spans[0];
    let (_, last_end) = spans[spans.len() - 1];
    // A third keeps VMs on both pages, and hosts on another page than VMs naming them.
    let middle = spans[spans.len() / 3].0;
    let head = &xml[..first_start];
    let tail = &xml[last_end..];
    let page_1 = format!("{head}{}<token>1</token>{tail}", &xml[first_start..middle]);
    let page_2 = format!(
        "{}{}{}",
        head.replace(
            "RetrievePropertiesExResponse",
            "ContinueRetrievePropertiesExResponse"
        ),
        &xml[middle..last_end],
        tail.replace(
            "RetrievePropertiesExResponse",
            "ContinueRetrievePropertiesExResponse"
        ),
    );
    (page_1, page_2)
}
