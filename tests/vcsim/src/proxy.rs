//! A plain-HTTP SOAP proxy to the simulator that injects a fault for one method.

use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};

use crate::server::{bind_loopback, local_port, serve, Background, Body};
use crate::{tls_config_trusting, Simulator};

/// Which SOAP operation to intercept and what to answer instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// The operation element's local name, as in `RetrievePropertiesEx` or `Login`.
    pub method: String,
    pub response: FaultResponse,
}

/// The answer for an intercepted call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultResponse {
    /// HTTP 500 with a vSphere `NoPermission` fault on `Folder:group-d1` for `privilege`.
    NoPermission { privilege: String },
    /// HTTP 500 with a vSphere `NotAuthenticated` fault (as for an expired session) on
    /// the request's `_this`, privilege `System.View`.
    NotAuthenticated,
    /// HTTP 200, `Content-Type: text/xml; charset=utf-8`, with this body.
    Garbage(String),
    /// This status with this body as `text/plain; charset=utf-8`.
    HttpStatus(u16, String),
    /// HTTP 500 with a vSphere fault of type `kind` (e.g. `RestrictedByAdministrator`,
    /// `MethodNotFound`), its message, and `fields` as the fault's inner XML.
    Fault {
        kind: String,
        message: String,
        fields: String,
    },
    /// Forwards the call to the simulator as if there were no rule (useful in a sequence).
    Forward,
    /// Answers the calls in turn with these responses; the last one repeats.
    Sequence(Vec<FaultResponse>),
}

/// A plain-HTTP reverse proxy for SOAP in front of a [`Simulator`].
///
/// Forwards every request (method, path, headers including `Cookie`, `SOAPAction` and
/// `Content-Type`, body) to the simulator over HTTPS, trusting its CA, and relays the
/// status, headers (including `Set-Cookie`) and body back, except for requests whose
/// SOAP operation (the first element in the SOAP `Body`) is the rule's method: those
/// get the rule's response and never reach the simulator. Stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    port: u16,
    url: String,
    state: Arc<State>,
    _task: Background,
}

#[derive(Debug)]
struct State {
    /// The rules, each with how many calls it has answered (for sequences).
    rules: Mutex<Vec<(FaultRule, usize)>>,
    requests: Mutex<Vec<String>>,
    /// The request bodies, with their operation, in order.
    bodies: Mutex<Vec<(String, String)>>,
    upstream: String,
    client: reqwest::Client,
}

impl FaultProxy {
    /// # Panics
    ///
    /// When the HTTPS client for the simulator cannot be built.
    pub async fn start(upstream: &Simulator, rule: FaultRule) -> Self {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config_trusting(upstream.ca_pem()))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap_or_else(|e| panic!("FaultProxy: cannot build the upstream client: {e}"));
        let state = Arc::new(State {
            rules: Mutex::new(vec![(rule, 0)]),
            requests: Mutex::new(Vec::new()),
            bodies: Mutex::new(Vec::new()),
            upstream: format!("https://{}:{}", upstream.host(), upstream.port()),
            client,
        });

        let listener = bind_loopback().await;
        let port = local_port(&listener);
        let handler_state = state.clone();
        let task = serve(listener, move |request| {
            let state = handler_state.clone();
            async move { state.handle(request).await }
        });
        FaultProxy {
            port,
            url: format!("http://127.0.0.1:{port}/sdk"),
            state,
            _task: task,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>/sdk`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The SOAP operations seen so far, in order, intercepted or not.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.state.requests).clone()
    }

    /// The SOAP operations seen so far with their request bodies, in order.
    pub fn request_bodies(&self) -> Vec<(String, String)> {
        lock(&self.state.bodies).clone()
    }

    /// Replaces every rule; `None` forwards everything from now on.
    pub fn set_rule(&self, rule: Option<FaultRule>) {
        *lock(&self.state.rules) = rule.into_iter().map(|r| (r, 0)).collect();
    }

    /// Adds a rule for another operation, replacing any rule for the same one.
    pub fn add_rule(&self, rule: FaultRule) {
        let mut rules = lock(&self.state.rules);
        rules.retain(|(r, _)| r.method != rule.method);
        rules.push((rule, 0));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking test thread must not hide the state from the others.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Headers that describe one connection, not the message.
const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        if !HOP_BY_HOP.contains(&name.as_str()) && name != hyper::header::CONTENT_LENGTH {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

impl State {
    async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let body = match body.collect().await {
            Ok(body) => body.to_bytes(),
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("reading the request: {e}")),
        };

        let xml = String::from_utf8_lossy(&body);
        if let Some(operation) = soap_operation(&xml) {
            lock(&self.requests).push(operation.to_owned());
            lock(&self.bodies).push((operation.to_owned(), xml.to_string()));
            let response = {
                let mut rules = lock(&self.rules);
                rules
                    .iter_mut()
                    .find(|(rule, _)| rule.method == operation)
                    .map(|(rule, calls)| {
                        *calls += 1;
                        match &rule.response {
                            FaultResponse::Sequence(steps) => steps
                                .get(*calls - 1)
                                .or(steps.last())
                                .cloned()
                                .unwrap_or(FaultResponse::Forward),
                            other => other.clone(),
                        }
                    })
            };
            if let Some(response) = response.filter(|r| *r != FaultResponse::Forward) {
                return respond(&response, &xml);
            }
        }

        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let upstream = self
            .client
            .request(parts.method, format!("{}{path}", self.upstream))
            .headers(end_to_end(&parts.headers))
            .body(body)
            .send()
            .await;
        let upstream = match upstream {
            Ok(upstream) => upstream,
            Err(e) => return text(StatusCode::BAD_GATEWAY, format!("FaultProxy upstream: {e}")),
        };
        let status = upstream.status();
        let headers = end_to_end(upstream.headers());
        let body = match upstream.bytes().await {
            Ok(body) => body,
            Err(e) => {
                return text(
                    StatusCode::BAD_GATEWAY,
                    format!("FaultProxy upstream body: {e}"),
                )
            }
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn xml_response(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    response
}

fn respond(fault: &FaultResponse, request: &str) -> Response<Body> {
    match fault {
        FaultResponse::NoPermission { privilege } => xml_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            soap_fault(
                "Permission to perform this operation was denied.",
                "NoPermission",
                &format!(
                    r#"<object type="Folder">group-d1</object><privilegeId>{}</privilegeId>"#,
                    escape(privilege)
                ),
            ),
        ),
        FaultResponse::NotAuthenticated => {
            let (kind, value) = this_ref(request).unwrap_or(("Folder", "group-d1"));
            xml_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                soap_fault(
                    "The session is not authenticated.",
                    "NotAuthenticated",
                    &format!(
                        r#"<object type="{kind}">{value}</object><privilegeId>System.View</privilegeId>"#
                    ),
                ),
            )
        }
        FaultResponse::Garbage(body) => xml_response(StatusCode::OK, body.clone()),
        FaultResponse::Fault {
            kind,
            message,
            fields,
        } => xml_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            soap_fault(message, kind, fields),
        ),
        // Resolved by the caller; a nested one answers like an unknown method would.
        FaultResponse::Forward | FaultResponse::Sequence(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "FaultProxy: nested sequence".to_owned(),
        ),
        FaultResponse::HttpStatus(status, body) => {
            let status = StatusCode::from_u16(*status)
                .unwrap_or_else(|e| panic!("FaultResponse::HttpStatus({status}): {e}"));
            text(status, body.clone())
        }
    }
}

/// A SOAP fault in the exact envelope govmomi's simulator writes
/// (`simulator.Service.ServeSDK`): `soapenv` envelope with the soapenc, soapenv, xsd
/// and xsi namespaces, `ServerFaultCode`, and the fault in `<detail>` as
/// `<{Kind}Fault xmlns="urn:vim25" xsi:type="{Kind}">`.
fn soap_fault(message: &str, kind: &str, fields: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <soapenv:Envelope xmlns:soapenc=\"http://schemas.xmlsoap.org/soap/encoding/\" \
         xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
         <soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode>\
         <faultstring>{}</faultstring><detail>\
         <{kind}Fault xmlns=\"urn:vim25\" xsi:type=\"{kind}\">{fields}</{kind}Fault>\
         </detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>",
        escape(message)
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn local_name(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn is_name_end(c: char) -> bool {
    c.is_whitespace() || c == '>' || c == '/'
}

/// The local name of the first element inside the SOAP `Body`, such as
/// `RetrievePropertiesEx`; `None` when the text is not a SOAP request.
pub(crate) fn soap_operation(xml: &str) -> Option<&str> {
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let name = &rest[..rest.find(is_name_end)?];
        if !name.starts_with(['/', '?', '!']) && local_name(name) == "Body" {
            let after = &rest[rest.find('>')? + 1..];
            return first_element(after);
        }
    }
    None
}

fn first_element(mut xml: &str) -> Option<&str> {
    loop {
        xml = xml.trim_start();
        if let Some(comment) = xml.strip_prefix("<!--") {
            xml = &comment[comment.find("-->")? + 3..];
        } else if let Some(instruction) = xml.strip_prefix("<?") {
            xml = &instruction[instruction.find("?>")? + 2..];
        } else {
            let tag = xml.strip_prefix('<')?;
            if tag.starts_with('/') {
                return None; // an empty Body
            }
            let name = &tag[..tag.find(is_name_end)?];
            return Some(local_name(name)).filter(|n| !n.is_empty());
        }
    }
}

/// The `type` and value of the request's `<_this type="...">value</_this>`, as raw XML.
fn this_ref(xml: &str) -> Option<(&str, &str)> {
    let start = xml.find("<_this")?;
    let rest = &xml[start + "<_this".len()..];
    let tag_end = rest.find('>')?;
    let attrs = &rest[..tag_end];
    let content = &rest[tag_end + 1..];
    let value = content[..content.find('<')?].trim();

    // `type="..."` but not `xsi:type="..."`.
    let mut search = attrs;
    while let Some(at) = search.find("type=") {
        let preceded_by_space = search[..at].ends_with(char::is_whitespace);
        let after = &search[at + "type=".len()..];
        if preceded_by_space {
            let quote = after.chars().next().filter(|q| *q == '"' || *q == '\'')?;
            let inner = &after[1..];
            let kind = &inner[..inner.find(quote)?];
            return Some((kind, value));
        }
        search = after;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderName;

    #[test]
    fn finds_the_operation_after_the_body() {
        let xml = r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header><x/></soapenv:Header><soapenv:Body>
            <!-- c --><RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this></RetrievePropertiesEx></soapenv:Body></soapenv:Envelope>"#;
        assert_eq!(soap_operation(xml), Some("RetrievePropertiesEx"));
        assert_eq!(
            this_ref(xml),
            Some(("PropertyCollector", "propertyCollector"))
        );

        let prefixed = r#"<S:Envelope xmlns:S="s"><S:Body><vim:Login xmlns:vim="urn:vim25"><_this xsi:type="ManagedObjectReference" type='SessionManager'>SessionManager</_this></vim:Login></S:Body></S:Envelope>"#;
        assert_eq!(soap_operation(prefixed), Some("Login"));
        assert_eq!(
            this_ref(prefixed),
            Some(("SessionManager", "SessionManager"))
        );

        assert_eq!(soap_operation("<a><Body/></a>"), None);
        assert_eq!(soap_operation("not xml"), None);
        assert_eq!(soap_operation(""), None);
    }

    #[test]
    fn escapes_the_privilege() {
        let response = respond(
            &FaultResponse::NoPermission {
                privilege: "A<&>".into(),
            },
            "",
        );
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn header_filter_keeps_cookies_and_drops_hop_by_hop() {
        let mut headers = HeaderMap::new();
        headers.append("set-cookie", HeaderValue::from_static("a=1"));
        headers.append("set-cookie", HeaderValue::from_static("b=2"));
        headers.append("connection", HeaderValue::from_static("close"));
        headers.append("content-length", HeaderValue::from_static("3"));
        headers.append(
            HeaderName::from_static("soapaction"),
            HeaderValue::from_static("urn:vim25/6.5"),
        );
        let out = end_to_end(&headers);
        assert_eq!(out.get_all("set-cookie").iter().count(), 2);
        assert!(out.get("connection").is_none());
        assert!(out.get("content-length").is_none());
        assert!(out.get("soapaction").is_some());
    }
}
