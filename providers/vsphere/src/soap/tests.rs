use super::*;
use vim_rs::types::struct_enum::StructType;

fn fault_envelope(detail: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>denied</faultstring><detail>{detail}</detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#
    )
}

#[test]
fn invalid_login_fault_is_typed() {
    let body = fault_envelope(
        r#"<InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault>"#,
    );
    let fault = extract_method_fault(&body).unwrap();
    assert_eq!(fault.type_, Some(StructType::InvalidLogin));
}

#[test]
fn no_permission_fault_keeps_privilege_and_object() {
    let body = fault_envelope(
        r#"<NoPermissionFault xmlns="urn:vim25" xsi:type="NoPermission"><object type="Folder">group-d1</object><privilegeId>System.View</privilegeId></NoPermissionFault>"#,
    );
    let fault = extract_method_fault(&body).unwrap();
    assert_eq!(fault.type_, Some(StructType::NoPermission));
    assert!(matches!(
        fault.extra_fields_.get("privilegeId"),
        Some(miniserde::json::Value::String(p)) if p == "System.View"
    ));
    // vim_rs keeps an untyped managed object reference as its XML shape.
    let Some(miniserde::json::Value::Object(object)) = fault.extra_fields_.get("object") else {
        panic!("{fault:?}");
    };
    assert!(
        matches!(object.get("#text"), Some(miniserde::json::Value::String(v)) if v == "group-d1")
    );
    assert!(
        matches!(object.get("@type"), Some(miniserde::json::Value::String(t)) if t == "Folder")
    );
}

#[test]
fn not_authenticated_is_a_kind_of_no_permission() {
    let body = fault_envelope(
        r#"<NotAuthenticatedFault xmlns="urn:vim25" xsi:type="NotAuthenticated"><object type="Folder">group-d1</object><privilegeId>System.View</privilegeId></NotAuthenticatedFault>"#,
    );
    let fault = extract_method_fault(&body).unwrap();
    let kind = fault.type_.unwrap();
    assert_eq!(kind, StructType::NotAuthenticated);
    assert!(kind.child_of(StructType::NoPermission));
    assert!(!StructType::NoPermission.child_of(StructType::NotAuthenticated));
}

#[test]
fn faults_without_detail_are_not_typed() {
    let body = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>boom</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
    assert!(extract_method_fault(body).is_none());
    assert!(is_soap_envelope(body));
    assert!(extract_method_fault("<html><body>detail</body></html>").is_none());
}

#[test]
fn envelope_detection() {
    assert!(is_soap_envelope(&fault_envelope("")));
    assert!(!is_soap_envelope(
        "<!DOCTYPE html><html><head></head></html>"
    ));
    assert!(!is_soap_envelope("<html><body>Not Found</body></html>"));
    assert!(!is_soap_envelope("404 page not found"));
    assert!(!is_soap_envelope(""));
}

#[test]
fn method_xml_without_parameters() {
    assert_eq!(
        method_xml(
            "RetrieveServiceContent",
            "ServiceInstance",
            "ServiceInstance",
            None
        ),
        r#"<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>"#
    );
    assert_eq!(
        method_xml("DestroyView", "ContainerView", "session[a&b]", None),
        r#"<DestroyView xmlns="urn:vim25"><_this type="ContainerView">session[a&amp;b]</_this></DestroyView>"#
    );
}

#[test]
fn versions_parse_and_negotiate() {
    assert_eq!(parse_version("6.5"), Some([6, 5, 0, 0]));
    assert_eq!(parse_version("8.0.3.0"), Some([8, 0, 3, 0]));
    assert_eq!(parse_version("6.7.3"), Some([6, 7, 3, 0]));
    assert_eq!(parse_version(""), None);
    assert_eq!(parse_version("6.x"), None);
    assert_eq!(parse_version("1.2.3.4.5"), None);
    assert!(parse_version("6.0").unwrap() < [6, 5, 0, 0]);
    assert!(parse_version("6.5").unwrap() >= [6, 5, 0, 0]);

    assert_eq!(negotiated_api_version("6.5"), "6.5");
    assert_eq!(negotiated_api_version("8.0.3.0"), "8.0.3.0");
    assert_eq!(negotiated_api_version("99.0"), NEWEST_KNOWN_API_VERSION);
    assert_eq!(negotiated_api_version("garbage"), BOOTSTRAP_API_VERSION);
}

#[test]
fn xsi_is_declared_once() {
    assert_eq!(
        declare_xsi(r#"<A xsi:type="B"/>"#),
        r#"<A xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="B"/>"#
    );
    let declared = r#"<A xmlns:xsi="x" xsi:type="B"/>"#;
    assert_eq!(declare_xsi(declared), declared);
}

/// Canary for the vim_rs 0.7 bug noted in GUIDE 6.1: a `LocalizedMethodFault` nested in a
/// struct (`MissingProperty.fault`, `TaskInfo.error`) fails the whole SOAP response, while
/// the same response without it, or a `LocalizedMethodFault` on its own, parses. Polling
/// therefore reads `info.error` on its own and detects expired sessions with
/// `CurrentTime`. When this test fails, vim_rs has fixed the bug and the workaround can go.
#[test]
fn vim_rs_fails_a_response_with_a_nested_localized_method_fault() {
    let response = |objects: &str| {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects>{objects}</objects></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#
        )
    };
    let fault = r#"<fault xsi:type="NoPermission"><object type="Folder">group-d1</object><privilegeId>System.View</privilegeId></fault><localizedMessage>denied</localizedMessage>"#;
    let missing = response(&format!(
        r#"<obj type="ContainerView">session[1]1</obj><missingSet><path>view</path><fault>{fault}</fault></missingSet>"#
    ));
    assert!(soap::vim_response::<RetrieveResult>(&missing).is_err());

    let task = |error: &str| {
        response(&format!(
            r#"<obj type="Task">task-1</obj><propSet><name>info</name><val xsi:type="TaskInfo"><key>task-1</key><task type="Task">task-1</task><descriptionId>VirtualMachine.powerOn</descriptionId><state>error</state><cancelled>false</cancelled><cancelable>false</cancelable>{error}<reason xsi:type="TaskReasonUser"><userName>u</userName></reason><queueTime>2024-01-01T00:00:00Z</queueTime><eventChainId>1</eventChainId></val></propSet>"#
        ))
    };
    assert!(soap::vim_response::<RetrieveResult>(&task("")).is_ok());
    assert!(
        soap::vim_response::<RetrieveResult>(&task(&format!("<error>{fault}</error>"))).is_err()
    );

    let alone = format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><R xmlns="urn:vim25"><returnval>{fault}</returnval></R></soapenv:Body></soapenv:Envelope>"#
    );
    assert!(soap::vim_response::<vim_rs::types::structs::LocalizedMethodFault>(&alone).is_ok());
}
