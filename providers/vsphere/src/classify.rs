//! Turning every [`SessionError`] into one of Pylon's failure categories with a message an
//! admin can act on.
//!
//! Classification reads types, never error strings: the vSphere fault's `type_` (following
//! the fault hierarchy with `StructType::child_of`), `reqwest`'s `is_timeout`/`is_dns`, the
//! `rustls::Error` and `std::io::Error` found by walking the error's sources, the HTTP
//! status and content type the transport kept, and what the TLS verifier recorded.
//!
//! Messages name the endpoint (`host:port`) and the step that failed. They never contain
//! the password: besides not putting it in, [`classify`] scrubs it from the final text in
//! case a server echoed it back.

use crate::client::{SessionError, Stage, MINIMUM_API_VERSION_TEXT};
use crate::config::VsphereTarget;
use crate::soap::HttpAnswer;
use crate::tls::{TlsObservation, TlsRejection};
use pylon_core::{FailureCategory, ProviderError, SecretString};
use std::error::Error as StdError;
use std::time::Duration;
use vim_rs::types::struct_enum::StructType;
use vim_rs::types::structs::MethodFault;

/// Longest piece of server-supplied text (a fault message) quoted in a message.
const MAX_QUOTED_CHARS: usize = 300;

/// Classifies a failure of talking to `target`.
pub(crate) fn classify(error: &SessionError, target: &VsphereTarget) -> ProviderError {
    let (category, message) = describe(error, target);
    ProviderError::new(category, scrub(message, &target.password))
}

fn describe(error: &SessionError, target: &VsphereTarget) -> (FailureCategory, String) {
    let address = target.address();
    match error {
        SessionError::Setup(detail) => (
            FailureCategory::InvalidConfig,
            format!("cannot connect to {address}: {detail}"),
        ),
        SessionError::Transport { stage, source, tls } => {
            describe_transport(*stage, source, tls, target)
        }
        SessionError::NotVsphere { answer } => (
            FailureCategory::Endpoint,
            describe_not_vsphere(answer, target),
        ),
        SessionError::Fault {
            stage,
            method,
            fault,
        } => describe_fault(*stage, method, fault, &address),
        SessionError::HttpFailure {
            stage,
            method,
            answer,
        } => {
            let what = answer_summary(answer);
            if answer.soap_envelope {
                (
                    FailureCategory::Protocol,
                    format!(
                        "vCenter at {address} answered {method} with {what} and a SOAP fault \
                         that is not a vSphere fault while {}",
                        stage.describe()
                    ),
                )
            } else {
                (
                    FailureCategory::Endpoint,
                    format!(
                        "{address} answered {method} with {what} instead of a vSphere \
                         response while {}; something in front of vCenter (a proxy or load \
                         balancer) may be answering instead",
                        stage.describe()
                    ),
                )
            }
        }
        SessionError::Malformed { stage, method } => (
            FailureCategory::Protocol,
            format!(
                "vCenter at {address} sent an answer to {method} that Pylon cannot read \
                 (malformed or unexpected XML) while {}",
                stage.describe()
            ),
        ),
        SessionError::NotVcenter { api_type, product } if api_type == "HostAgent" => (
            FailureCategory::Unsupported,
            format!(
                "{address} is a direct ESXi host ({}); Pylon's vSphere provider supports \
                 vCenter Server only: connect to the vCenter that manages it",
                quote(product)
            ),
        ),
        SessionError::NotVcenter { api_type, product } => (
            FailureCategory::Unsupported,
            format!(
                "{address} reports the vSphere API type `{}` ({}); Pylon's vSphere provider \
                 supports vCenter Server only",
                quote(api_type),
                quote(product)
            ),
        ),
        SessionError::ApiTooOld { api_version } => (
            FailureCategory::Unsupported,
            format!(
                "vCenter at {address} runs vSphere API {}; Pylon supports vSphere API \
                 {MINIMUM_API_VERSION_TEXT} (vCenter Server {MINIMUM_API_VERSION_TEXT}) and \
                 later: upgrade vCenter",
                quote(api_version)
            ),
        ),
        SessionError::UnreadableApiVersion => (
            FailureCategory::Protocol,
            format!("vCenter at {address} reports an API version Pylon cannot read"),
        ),
        SessionError::TimedOut { stage, after } => (
            FailureCategory::Timeout,
            format!(
                "no answer from {address} within {} while {}: check that host and port are \
                 right, that no firewall silently drops the traffic, and that vCenter is \
                 not overloaded",
                seconds(*after),
                stage.describe()
            ),
        ),
    }
}

fn describe_transport(
    stage: Stage,
    source: &reqwest::Error,
    tls: &TlsObservation,
    target: &VsphereTarget,
) -> (FailureCategory, String) {
    let address = target.address();
    let doing = stage.describe();
    if let Some(tls_error) = find_cause::<rustls::Error>(source) {
        return describe_tls(tls_error, tls, target);
    }
    if source.is_timeout() {
        return (
            FailureCategory::Timeout,
            format!(
                "no answer from {address} in time while {doing}: check that host and port \
                 are right and that no firewall silently drops the traffic"
            ),
        );
    }
    if source.is_dns() {
        return (
            FailureCategory::Network,
            format!(
                "cannot resolve the host name `{}`: check its spelling and the DNS \
                 configuration of the Pylon server",
                target.host
            ),
        );
    }
    if let Some(io) = find_cause::<std::io::Error>(source) {
        use std::io::ErrorKind;
        let message = match io.kind() {
            ErrorKind::ConnectionRefused => Some(format!(
                "{address} refused the connection: nothing listens on port {} (check the \
                 port, and that the vCenter services are running)",
                target.port
            )),
            ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => Some(format!(
                "{address} is unreachable: the Pylon server has no network route to it"
            )),
            ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::UnexpectedEof => {
                Some(format!("{address} closed the connection while {doing}"))
            }
            ErrorKind::TimedOut => {
                return (
                    FailureCategory::Timeout,
                    format!("no answer from {address} in time while {doing}"),
                )
            }
            _ => None,
        };
        if let Some(message) = message {
            return (FailureCategory::Network, message);
        }
    }
    let cause = innermost(source);
    if source.is_connect() {
        return (
            FailureCategory::Network,
            format!("cannot connect to {address}: {cause}"),
        );
    }
    (
        FailureCategory::Network,
        format!("the connection to {address} failed while {doing}: {cause}"),
    )
}

fn describe_tls(
    error: &rustls::Error,
    observed: &TlsObservation,
    target: &VsphereTarget,
) -> (FailureCategory, String) {
    let address = target.address();
    let fingerprint = observed
        .leaf_sha256
        .clone()
        .unwrap_or_else(|| "unknown".to_owned());
    let how_to_trust = "pin it with `fingerprint`, add its CA with `caCertificate`, or (lab \
                        only) set insecureSkipVerify";
    let message = match &observed.rejection {
        Some(TlsRejection::UnknownIssuer) => format!(
            "TLS: the certificate presented by {address} is not trusted (unknown issuer). \
             Its SHA-256 fingerprint is {fingerprint}; {how_to_trust}."
        ),
        Some(TlsRejection::HostnameMismatch { presented }) => {
            let names = if presented.is_empty() {
                String::new()
            } else {
                format!(
                    " (it names {})",
                    presented
                        .iter()
                        .map(|name| quote(name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            format!(
                "TLS: hostname mismatch: the certificate presented by {address} is not valid \
                 for `{}`{names}. Connect using a name the certificate lists, or pin its \
                 SHA-256 fingerprint {fingerprint} with `fingerprint`.",
                target.host
            )
        }
        Some(TlsRejection::Expired) => format!(
            "TLS: the certificate presented by {address} has expired. Renew vCenter's \
             certificate, or pin its SHA-256 fingerprint {fingerprint} with `fingerprint`."
        ),
        Some(TlsRejection::NotYetValid) => format!(
            "TLS: the certificate presented by {address} is not valid yet; check the clocks \
             of vCenter and the Pylon server. Its SHA-256 fingerprint is {fingerprint}."
        ),
        Some(TlsRejection::Revoked) => format!(
            "TLS: the certificate presented by {address} has been revoked by its CA. Its \
             SHA-256 fingerprint is {fingerprint}."
        ),
        Some(TlsRejection::PinMismatch { pinned }) => format!(
            "TLS: the certificate presented by {address} does not match the pinned \
             fingerprint {pinned}: the presented SHA-256 is {fingerprint}. If vCenter's \
             certificate was replaced, update `fingerprint`; otherwise something is \
             intercepting the connection."
        ),
        Some(TlsRejection::Invalid(reason)) => format!(
            "TLS: the certificate presented by {address} was rejected ({reason}). Its \
             SHA-256 fingerprint is {fingerprint}; {how_to_trust}."
        ),
        None => {
            if matches!(
                error,
                rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. }
            ) {
                return (
                    FailureCategory::Endpoint,
                    format!(
                        "{address} did not answer with TLS; if it serves plain HTTP, set \
                         useHttps to false (and check the port)"
                    ),
                );
            }
            format!("TLS: the handshake with {address} failed: {error}")
        }
    };
    (FailureCategory::Tls, message)
}

fn describe_not_vsphere(answer: &HttpAnswer, target: &VsphereTarget) -> String {
    let address = target.address();
    let url = target.endpoint_url();
    if answer.soap_envelope {
        return format!(
            "{address} answered {url} with a SOAP response that is not a vSphere \
             ServiceContent ({}): this is some other SOAP service, not vCenter",
            answer_summary(answer)
        );
    }
    let html = answer
        .content_type
        .as_deref()
        .is_some_and(|content_type| content_type.to_ascii_lowercase().contains("html"));
    let hint = if html {
        " (a web page: is this a web UI, a reverse proxy or another product?)"
    } else {
        ""
    };
    format!(
        "{address} answered {url} with {}{hint}, which is not the vSphere API: check host and \
         port (vCenter serves its API at https://<vcenter>/sdk, normally on port 443)",
        answer_summary(answer)
    )
}

/// "HTTP 404 Not Found (text/html)".
fn answer_summary(answer: &HttpAnswer) -> String {
    let reason = reqwest::StatusCode::from_u16(answer.status)
        .ok()
        .and_then(|status| status.canonical_reason())
        .map(|reason| format!(" {reason}"))
        .unwrap_or_default();
    let content_type = answer
        .content_type
        .as_deref()
        .map(|content_type| format!(" ({})", quote(content_type)))
        .unwrap_or_default();
    format!("HTTP {}{reason}{content_type}", answer.status)
}

fn describe_fault(
    stage: Stage,
    method: &str,
    fault: &MethodFault,
    address: &str,
) -> (FailureCategory, String) {
    let doing = stage.describe();
    let Some(kind) = fault.type_ else {
        return (
            FailureCategory::Protocol,
            format!("vCenter at {address} answered {method} with an untyped fault while {doing}"),
        );
    };
    if kind.child_of(StructType::PasswordExpired) {
        return (
            FailureCategory::Auth,
            format!(
                "vCenter at {address} rejected the login: the account's password has \
                 expired; set a new one in vCenter and update the connection"
            ),
        );
    }
    if kind.child_of(StructType::InvalidLogin) {
        return (
            FailureCategory::Auth,
            format!(
                "vCenter at {address} rejected the user name or password (InvalidLogin): \
                 check both; SSO accounts need their domain, e.g. `user@vsphere.local`"
            ),
        );
    }
    // NotAuthenticated is a kind of NoPermission, so it is checked first.
    if kind.child_of(StructType::NotAuthenticated) {
        let message = match stage {
            Stage::Keepalive => format!(
                "the vCenter session at {address} has expired or was ended in vCenter \
                 (NotAuthenticated)"
            ),
            _ => format!(
                "vCenter at {address} did not accept the session it had just created \
                 (NotAuthenticated while {doing}); if a proxy or load balancer sits in front \
                 of vCenter, make sure it keeps the session cookie"
            ),
        };
        return (FailureCategory::Auth, message);
    }
    if kind.child_of(StructType::NoPermission) {
        let privilege = fault_string(fault, "privilegeId");
        let object = fault_object(fault);
        let privilege_text = privilege
            .map(|privilege| format!("the privilege `{}`", quote(&privilege)))
            .unwrap_or_else(|| "a required privilege".to_owned());
        let object_text = object
            .map(|object| format!(" on {object}"))
            .unwrap_or_default();
        return (
            FailureCategory::Permission,
            format!(
                "the vCenter account at {address} lacks {privilege_text}{object_text}, needed \
                 for {method} while {doing}: give it a role with System.Anonymous, \
                 System.Read and System.View (the built-in Read-only role) on the vCenter \
                 root, propagated to children"
            ),
        );
    }
    let detail = fault
        .fault_message
        .iter()
        .flatten()
        .filter_map(|message| message.message.as_deref())
        .next()
        .map(|text| format!(": {}", quote(text)))
        .unwrap_or_default();
    (
        FailureCategory::Protocol,
        format!(
            "vCenter at {address} answered {method} with the unexpected fault {} while \
             {doing}{detail}",
            kind.as_str()
        ),
    )
}

/// A string field of a fault subtype (kept by vim_rs in `extra_fields_`).
fn fault_string(fault: &MethodFault, name: &str) -> Option<String> {
    match fault.extra_fields_.get(name)? {
        miniserde::json::Value::String(value) => Some(value.clone()),
        _ => None,
    }
}

/// The managed object a `NoPermission` names, as "`group-d1` (Folder)".
fn fault_object(fault: &MethodFault) -> Option<String> {
    match fault.extra_fields_.get("object")? {
        miniserde::json::Value::String(value) => Some(format!("`{}`", quote(value))),
        miniserde::json::Value::Object(fields) => {
            let text = |key: &str| match fields.get(key) {
                Some(miniserde::json::Value::String(value)) => Some(quote(value)),
                _ => None,
            };
            // vim_rs keeps an untyped reference in its XML shape (`#text`, `@type`); accept
            // the JSON shape (`value`, `type`) too.
            let value = text("#text").or_else(|| text("value"))?;
            Some(match text("@type").or_else(|| text("type")) {
                Some(kind) => format!("`{value}` ({kind})"),
                None => format!("`{value}`"),
            })
        }
        _ => None,
    }
}

/// Finds the first error of type `T` among `error`'s causes. `std::io::Error` hides the
/// error it wraps from `source()`, so it is looked into explicitly.
fn find_cause<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(found) = find_cause::<T>(inner) {
                    return Some(found);
                }
            }
        }
        current = error.source();
    }
    None
}

/// The description of the innermost cause, which is the most specific one.
fn innermost(error: &(dyn StdError + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    quote(&current.to_string())
}

/// Server- or library-supplied text, shortened to [`MAX_QUOTED_CHARS`].
fn quote(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= MAX_QUOTED_CHARS {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(MAX_QUOTED_CHARS).collect();
    short.push('…');
    short
}

fn seconds(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds.fract() == 0.0 {
        format!("{seconds:.0} s")
    } else {
        format!("{seconds:.1} s")
    }
}

/// Replaces every occurrence of the password with the mask: the last line of defence in
/// case a server or library echoed it into an error.
fn scrub(message: String, password: &SecretString) -> String {
    let secret = password.expose();
    if secret.is_empty() || !message.contains(secret) {
        return message;
    }
    message.replace(secret, SecretString::MASK)
}

#[cfg(test)]
mod tests;
