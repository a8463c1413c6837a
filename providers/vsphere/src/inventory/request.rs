//! SOAP request bodies for reading the inventory in bulk (GUIDE section 5).
//!
//! The flow: one `CreateContainerView` per managed object type on the root folder (recursive),
//! then one `RetrievePropertiesEx` whose filter spec has one `ObjectSpec` per view (the view
//! itself skipped, its `view` property traversed) and one `PropertySpec` per type with explicit
//! paths, then `ContinueRetrievePropertiesEx` while a `token` comes back, then `DestroyView`.
//! Incremental polling registers the same spec with `CreateFilter` and asks
//! `WaitForUpdatesEx` for what changed since a version.
//!
//! Each function returns the element that goes inside `soapenv:Body` (the method element in
//! the `urn:vim25` namespace, declaring `xsi` itself so it is valid on its own); [`envelope`]
//! wraps one into a whole SOAP message. Elements follow the vim25 WSDL's sequence order,
//! which vCenter enforces. Every value is XML-escaped, including managed object ids, which
//! for session-scoped objects look like `session[52f1…]52a9…`.

use std::fmt::Write as _;

use quick_xml::escape::escape;

use super::paths::TypePaths;
use super::types::MoRef;

const VIM25_NS: &str = "urn:vim25";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// What a property filter reads: the objects of each view, with the paths for each type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InventorySpec<'a> {
    /// One `ContainerView` per type, as returned by `CreateContainerView`.
    pub views: &'a [MoRef],
    /// The paths to read per type (usually [`super::paths::INVENTORY_TYPES`]).
    pub types: &'a [TypePaths],
}

/// Wraps a body element into a whole SOAP 1.1 envelope.
pub(crate) fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:xsi=\"{XSI_NS}\">\
         <soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )
}

/// `CreateContainerView` on the `ViewManager`: every object of `kind` (and its subtypes)
/// anywhere below `container` (the root folder).
pub(crate) fn create_container_view(view_manager: &MoRef, container: &MoRef, kind: &str) -> String {
    let mut out = open_method("CreateContainerView", view_manager);
    push_moref(&mut out, "container", container);
    push_text(&mut out, "type", kind);
    out.push_str("<recursive>true</recursive>");
    close_method(out, "CreateContainerView")
}

/// `DestroyView`: views live as long as the session unless destroyed.
pub(crate) fn destroy_view(view: &MoRef) -> String {
    close_method(open_method("DestroyView", view), "DestroyView")
}

/// `RetrievePropertiesEx` on the property collector for the whole inventory. `max_objects`
/// asks the server for pages of at most that many objects; `None` lets it choose.
pub(crate) fn retrieve_properties_ex(
    collector: &MoRef,
    spec: &InventorySpec<'_>,
    max_objects: Option<u32>,
) -> String {
    let mut out = open_method("RetrievePropertiesEx", collector);
    push_filter_spec(&mut out, "specSet", spec);
    match max_objects {
        Some(max) => {
            let _ = write!(out, "<options><maxObjects>{max}</maxObjects></options>");
        }
        None => out.push_str("<options></options>"),
    }
    close_method(out, "RetrievePropertiesEx")
}

/// `RetrievePropertiesEx` of `paths` on exactly `objects` (all of type `kind`), without
/// traversal: used for objects outside the inventory tree, such as alarm definitions.
pub(crate) fn retrieve_objects(
    collector: &MoRef,
    kind: &str,
    paths: &[&str],
    objects: &[&MoRef],
) -> String {
    let mut out = open_method("RetrievePropertiesEx", collector);
    out.push_str("<specSet><propSet>");
    push_text(&mut out, "type", kind);
    out.push_str("<all>false</all>");
    for path in paths {
        push_text(&mut out, "pathSet", path);
    }
    out.push_str("</propSet>");
    for obj in objects {
        out.push_str("<objectSet>");
        push_moref(&mut out, "obj", obj);
        out.push_str("<skip>false</skip></objectSet>");
    }
    out.push_str("</specSet><options></options>");
    close_method(out, "RetrievePropertiesEx")
}

/// `ContinueRetrievePropertiesEx`: the next page after `token`.
pub(crate) fn continue_retrieve_properties_ex(collector: &MoRef, token: &str) -> String {
    let mut out = open_method("ContinueRetrievePropertiesEx", collector);
    push_text(&mut out, "token", token);
    close_method(out, "ContinueRetrievePropertiesEx")
}

/// `CancelRetrievePropertiesEx`: releases the server's paging state when the remaining pages
/// are not wanted (for example after a failure part-way).
pub(crate) fn cancel_retrieve_properties_ex(collector: &MoRef, token: &str) -> String {
    let mut out = open_method("CancelRetrievePropertiesEx", collector);
    push_text(&mut out, "token", token);
    close_method(out, "CancelRetrievePropertiesEx")
}

/// `CreateFilter` with the inventory spec. `partialUpdates` is false, so a change to any part
/// of a requested property reports the whole property, which is what the snapshot stores.
pub(crate) fn create_filter(collector: &MoRef, spec: &InventorySpec<'_>) -> String {
    let mut out = open_method("CreateFilter", collector);
    push_filter_spec(&mut out, "spec", spec);
    out.push_str("<partialUpdates>false</partialUpdates>");
    close_method(out, "CreateFilter")
}

/// `WaitForUpdatesEx` with `maxWaitSeconds = 0`: compute what changed since `version` and
/// answer at once (polling, not long-polling). `None` asks for the full current state.
pub(crate) fn wait_for_updates_ex(collector: &MoRef, version: Option<&str>) -> String {
    let mut out = open_method("WaitForUpdatesEx", collector);
    if let Some(version) = version {
        push_text(&mut out, "version", version);
    }
    out.push_str("<options><maxWaitSeconds>0</maxWaitSeconds></options>");
    close_method(out, "WaitForUpdatesEx")
}

/// `CreatePropertyCollector` on the service's collector: a collector of our own, so the
/// updates `WaitForUpdatesEx` reports come from our filter only, never from filters other
/// code in the same session created on the shared collector.
pub(crate) fn create_property_collector(collector: &MoRef) -> String {
    close_method(
        open_method("CreatePropertyCollector", collector),
        "CreatePropertyCollector",
    )
}

/// `DestroyPropertyCollector`: also destroys the filters created on it.
pub(crate) fn destroy_property_collector(collector: &MoRef) -> String {
    close_method(
        open_method("DestroyPropertyCollector", collector),
        "DestroyPropertyCollector",
    )
}

/// `DestroyPropertyFilter`: filters live as long as the session unless destroyed.
pub(crate) fn destroy_property_filter(filter: &MoRef) -> String {
    close_method(
        open_method("DestroyPropertyFilter", filter),
        "DestroyPropertyFilter",
    )
}

pub(crate) fn open_method(method: &str, this: &MoRef) -> String {
    let mut out = String::with_capacity(512);
    let _ = write!(
        out,
        "<{method} xmlns=\"{VIM25_NS}\" xmlns:xsi=\"{XSI_NS}\">"
    );
    push_moref(&mut out, "_this", this);
    out
}

pub(crate) fn close_method(mut out: String, method: &str) -> String {
    let _ = write!(out, "</{method}>");
    out
}

/// A `PropertyFilterSpec`: `propSet`s first, then `objectSet`s, as the WSDL orders them.
fn push_filter_spec(out: &mut String, element: &str, spec: &InventorySpec<'_>) {
    let _ = write!(out, "<{element}>");
    for type_paths in spec.types {
        out.push_str("<propSet>");
        push_text(out, "type", type_paths.kind);
        out.push_str("<all>false</all>");
        for path in type_paths.paths {
            push_text(out, "pathSet", path);
        }
        out.push_str("</propSet>");
    }
    for view in spec.views {
        out.push_str("<objectSet>");
        push_moref(out, "obj", view);
        // The view itself is not inventory; the objects it lists are.
        out.push_str(
            "<skip>true</skip>\
             <selectSet xsi:type=\"TraversalSpec\">\
             <name>traverseView</name><type>ContainerView</type><path>view</path>\
             <skip>false</skip></selectSet>",
        );
        out.push_str("</objectSet>");
    }
    let _ = write!(out, "</{element}>");
}

pub(crate) fn push_moref(out: &mut String, element: &str, reference: &MoRef) {
    let _ = write!(
        out,
        "<{element} type=\"{}\">{}</{element}>",
        escape(reference.kind.as_ref()),
        escape(reference.value.as_str())
    );
}

pub(crate) fn push_text(out: &mut String, element: &str, text: &str) {
    let _ = write!(out, "<{element}>{}</{element}>", escape(text));
}
