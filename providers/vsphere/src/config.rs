//! Normalising a vSphere connection draft and turning a checked [`ConnectionConfig`] into a
//! typed [`VsphereTarget`].
//!
//! Admins paste whatever their browser shows (`https://vc.example:8443/`), so `host` accepts a
//! scheme and a port and moves them into `useHttps` and `port`; what is stored is the bare,
//! lower-cased host name or IP address (IPv6 without brackets). Everything that would change
//! which endpoint or account Pylon talks to (user information, a path other than `/sdk`, a
//! query, a fragment) is rejected rather than silently dropped. Normalisation is idempotent,
//! so re-validating a stored configuration never changes it.
//!
//! No message produced here quotes a field's value: a host field can carry `user:password@`.

use crate::descriptor::{
    DEFAULT_PORT, FIELD_CA_CERTIFICATE, FIELD_FINGERPRINT, FIELD_HOST, FIELD_INSECURE_SKIP_VERIFY,
    FIELD_PASSWORD, FIELD_PORT, FIELD_USERNAME, FIELD_USE_HTTPS,
};
use pylon_core::{ConnectionConfig, FailureCategory, FieldErrors, ProviderError, SecretString};
use rustls::pki_types::CertificateDer;
use serde_json::Value;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Normalises the provider's fields in place; see the module documentation.
pub fn normalize(config: &mut ConnectionConfig) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::new();

    if let Some(raw) = config.str_setting(FIELD_HOST).map(str::to_owned) {
        match parse_host(&raw) {
            Ok(parsed) => {
                if let Some(scheme) = parsed.scheme {
                    config
                        .settings
                        .insert(FIELD_USE_HTTPS.into(), Value::Bool(scheme == Scheme::Https));
                }
                if let Some(port) = parsed.port {
                    config
                        .settings
                        .insert(FIELD_PORT.into(), Value::from(i64::from(port)));
                }
                config
                    .settings
                    .insert(FIELD_HOST.into(), Value::String(parsed.host));
            }
            Err(error) => errors.add(FIELD_HOST, error.to_string()),
        }
    }

    if let Some(raw) = config.str_setting(FIELD_FINGERPRINT).map(str::to_owned) {
        match normalize_fingerprint(&raw) {
            Ok(canonical) => {
                config
                    .settings
                    .insert(FIELD_FINGERPRINT.into(), Value::String(canonical));
            }
            Err(message) => errors.add(FIELD_FINGERPRINT, message),
        }
    }

    if let Some(pem) = config.str_setting(FIELD_CA_CERTIFICATE) {
        if let Err(message) = parse_ca_certificates(pem) {
            errors.add(FIELD_CA_CERTIFICATE, message);
        }
    }

    errors.into_result()
}

/// `http` or `https`, as written in front of `host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
}

/// `host` split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostParts {
    pub scheme: Option<Scheme>,
    /// Lower-case DNS name, dotted IPv4 or canonical IPv6 (without brackets).
    pub host: String,
    pub port: Option<u16>,
}

/// Why `host` was rejected. The messages never quote the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HostError {
    #[error("must not be empty")]
    Empty,
    #[error("must not contain spaces")]
    Whitespace,
    #[error("must use the https:// or http:// scheme (or none)")]
    UnsupportedScheme,
    #[error("must not contain a user name or password: use the username and password fields")]
    UserInfo,
    #[error("must not contain a path: give only the host name, optionally with scheme and port (the /sdk path is added automatically)")]
    Path,
    #[error("must not contain a query (`?...`)")]
    Query,
    #[error("must not contain a fragment (`#...`)")]
    Fragment,
    #[error("has an invalid port: use a number between 1 and 65535")]
    InvalidPort,
    #[error("is not a valid IPv6 address (write it as `fe80::1` or `[fe80::1]:443`; zone ids are not supported)")]
    InvalidIpv6,
    #[error("is not a valid IPv4 address")]
    InvalidIpv4,
    #[error(
        "must be an ASCII host name; write internationalised names in their punycode (xn--) form"
    )]
    NonAscii,
    #[error("is not a valid host name: use letters, digits, hyphens and dots, with labels of at most 63 characters")]
    InvalidName,
}

/// Parses and normalises a `host` value. See the module documentation for what is accepted.
pub(crate) fn parse_host(input: &str) -> Result<HostParts, HostError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(HostError::Empty);
    }
    if input.chars().any(char::is_whitespace) {
        return Err(HostError::Whitespace);
    }

    let (scheme, rest) = match input
        .find("://")
        .filter(|&index| looks_like_scheme(&input[..index]))
    {
        Some(index) => {
            let scheme = match input[..index].to_ascii_lowercase().as_str() {
                "https" => Scheme::Https,
                "http" => Scheme::Http,
                _ => return Err(HostError::UnsupportedScheme),
            };
            (Some(scheme), &input[index + 3..])
        }
        None => (None, input),
    };

    // The authority ends at the first of `/`, `?` or `#`, as in RFC 3986.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    check_tail(tail)?;

    if authority.contains('@') {
        return Err(HostError::UserInfo);
    }
    if authority.is_empty() {
        return Err(HostError::Empty);
    }

    let (host, port) = split_host_port(authority)?;
    let host = normalize_host_name(host)?;
    Ok(HostParts { scheme, host, port })
}

/// `true` when `candidate` has the shape of a URI scheme (RFC 3986: a letter, then letters,
/// digits, `+`, `-` or `.`), so `vc.example/x://y` is reported as a path, not a scheme.
fn looks_like_scheme(candidate: &str) -> bool {
    let mut chars = candidate.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Accepts nothing, a lone `/` or the vSphere API path `/sdk`; rejects everything else with
/// the most specific error.
fn check_tail(tail: &str) -> Result<(), HostError> {
    if tail.is_empty() {
        return Ok(());
    }
    let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
    let (path, rest) = tail.split_at(path_end);
    if !matches!(path, "" | "/" | "/sdk") {
        return Err(HostError::Path);
    }
    if rest.starts_with('?') {
        return Err(HostError::Query);
    }
    if rest.starts_with('#') {
        return Err(HostError::Fragment);
    }
    Ok(())
}

/// Splits `authority` (no user information) into host and optional port. A bracketed IPv6
/// literal may carry a port; a bare one (more than one colon) cannot.
fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), HostError> {
    if let Some(inner) = authority.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            return Err(HostError::InvalidIpv6);
        };
        let host = &inner[..close];
        let after = &inner[close + 1..];
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(HostError::InvalidIpv6);
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(parse_port(port)?),
                None => return Err(HostError::InvalidIpv6),
            },
        };
        return Ok((host, port));
    }
    match authority.matches(':').count() {
        0 => Ok((authority, None)),
        1 => {
            let (host, port) = authority.split_at(authority.find(':').unwrap_or(0));
            Ok((host, Some(parse_port(&port[1..])?)))
        }
        _ => {
            if authority.parse::<Ipv6Addr>().is_err() {
                return Err(HostError::InvalidIpv6);
            }
            Ok((authority, None))
        }
    }
}

fn parse_port(port: &str) -> Result<u16, HostError> {
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HostError::InvalidPort);
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(HostError::InvalidPort),
        Ok(port) => Ok(port),
    }
}

/// Returns the canonical form of a host without port: canonical IPv6 text, dotted IPv4, or a
/// lower-case DNS name without a trailing dot.
fn normalize_host_name(host: &str) -> Result<String, HostError> {
    if host.is_empty() {
        return Err(HostError::Empty);
    }
    if host.contains(':') {
        return host
            .parse::<Ipv6Addr>()
            .map(|ip| ip.to_string())
            .map_err(|_| HostError::InvalidIpv6);
    }
    if !host.is_ascii() {
        return Err(HostError::NonAscii);
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(ip.to_string());
    }
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if name.is_empty() || name.len() > 253 {
        return Err(HostError::InvalidName);
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            // Underscores are not valid in host names, but they occur in internal DNS and
            // certificates; vCenter itself does not care.
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(HostError::InvalidName);
        }
    }
    // A name whose last label is all digits would be read as an IPv4 address by resolvers;
    // it can only be a mistyped one.
    if labels
        .last()
        .is_some_and(|label| label.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(HostError::InvalidIpv4);
    }
    Ok(name)
}

/// Length of a SHA-256 digest in hexadecimal digits.
const SHA256_HEX_LEN: usize = 64;
/// Length of a SHA-1 digest in hexadecimal digits; vSphere calls this a "thumbprint".
const SHA1_HEX_LEN: usize = 40;

/// Canonicalises a certificate fingerprint to 64 lower-case hex digits: an optional
/// `sha256:` prefix (any case) is dropped, and colons and spaces are ignored.
pub(crate) fn normalize_fingerprint(input: &str) -> Result<String, String> {
    let trimmed = input.trim();
    let without_prefix = match trimmed.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("sha256:") => &trimmed[7..],
        _ => trimmed,
    };
    let digits: String = without_prefix
        .chars()
        .filter(|c| *c != ':' && *c != ' ')
        .collect();
    if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(
            "must be a SHA-256 fingerprint: 64 hexadecimal digits, optionally \
                    prefixed with `sha256:` and separated by colons"
                .into(),
        );
    }
    match digits.len() {
        SHA256_HEX_LEN => Ok(digits.to_ascii_lowercase()),
        SHA1_HEX_LEN => Err(
            "looks like a SHA-1 thumbprint (40 hexadecimal digits); give the \
                             SHA-256 fingerprint (64 hexadecimal digits) instead"
                .into(),
        ),
        found => Err(format!(
            "must be a SHA-256 fingerprint of 64 hexadecimal digits (found {found})"
        )),
    }
}

/// Decodes a canonical fingerprint (as stored by [`normalize_fingerprint`]).
fn fingerprint_bytes(canonical: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(canonical, &mut out).ok()?;
    Some(out)
}

/// Parses a PEM bundle into certificates, requiring at least one and checking that each one
/// can serve as a trust anchor.
pub(crate) fn parse_ca_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut reader = pem.as_bytes();
    let mut certificates = Vec::new();
    for item in rustls_pemfile::certs(&mut reader) {
        match item {
            Ok(certificate) => certificates.push(certificate),
            Err(_) => {
                return Err("contains a CERTIFICATE block that is not valid PEM \
                            (check for truncated or altered base64)"
                    .into())
            }
        }
    }
    if certificates.is_empty() {
        return Err("must contain at least one PEM certificate \
                    (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)"
            .into());
    }
    for (index, certificate) in certificates.iter().enumerate() {
        let mut store = rustls::RootCertStore::empty();
        if store.add(certificate.clone()).is_err() {
            return Err(format!(
                "certificate {} of {} is not a valid X.509 certificate",
                index + 1,
                certificates.len()
            ));
        }
    }
    Ok(certificates)
}

/// Which certificates vCenter may present.
#[derive(Clone, PartialEq, Eq)]
pub enum TrustPolicy {
    /// The system's trusted CAs, with host name and validity checks.
    System,
    /// The given CA certificates in addition to the system's, with host name and validity
    /// checks.
    CustomCa(Vec<CertificateDer<'static>>),
    /// Exactly the certificate whose SHA-256 is given. Host name and validity dates are not
    /// checked: the pin says more than either.
    Pinned([u8; 32]),
    /// Any certificate (labs only). Handshake signatures are still verified.
    InsecureSkipVerify,
}

impl fmt::Debug for TrustPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System => f.write_str("System"),
            Self::CustomCa(certificates) => {
                write!(f, "CustomCa({} certificates)", certificates.len())
            }
            Self::Pinned(pin) => write!(f, "Pinned({})", hex::encode(pin)),
            Self::InsecureSkipVerify => f.write_str("InsecureSkipVerify"),
        }
    }
}

/// One vCenter endpoint and the account to use, built from a checked configuration.
#[derive(Clone)]
pub struct VsphereTarget {
    /// Lower-case host name or IP address; IPv6 without brackets.
    pub host: String,
    pub port: u16,
    pub use_https: bool,
    pub username: String,
    pub password: SecretString,
    pub trust: TrustPolicy,
}

impl fmt::Debug for VsphereTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The user name is left out as well: a mistyped form can put a password there.
        f.debug_struct("VsphereTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("use_https", &self.use_https)
            .field("password", &self.password)
            .field("trust", &self.trust)
            .finish_non_exhaustive()
    }
}

impl VsphereTarget {
    /// Builds the target from a configuration. The configuration is normalised again first,
    /// so a stored configuration from an older release still works; anything that does not
    /// validate is an `invalid_config` failure naming the fields.
    pub fn from_config(config: &ConnectionConfig) -> Result<Self, ProviderError> {
        let mut config = config.clone();
        normalize(&mut config).map_err(invalid_config)?;

        let mut missing = FieldErrors::new();
        let host = config.str_setting(FIELD_HOST).map(str::to_owned);
        let username = config.str_setting(FIELD_USERNAME).map(str::to_owned);
        let password = config.secret(FIELD_PASSWORD).cloned();
        if host.is_none() {
            missing.add(FIELD_HOST, "is required");
        }
        if username.is_none() {
            missing.add(FIELD_USERNAME, "is required");
        }
        if password.as_ref().is_none_or(SecretString::is_empty) {
            missing.add(FIELD_PASSWORD, "is required");
        }
        let port = match config.int_setting(FIELD_PORT) {
            None => DEFAULT_PORT,
            Some(port) => match u16::try_from(port) {
                Ok(port) if port > 0 => port,
                _ => {
                    missing.add(FIELD_PORT, "must be between 1 and 65535");
                    DEFAULT_PORT
                }
            },
        };
        let (Some(host), Some(username), Some(password), true) =
            (host, username, password, missing.is_empty())
        else {
            return Err(invalid_config(missing));
        };

        let pin = config
            .str_setting(FIELD_FINGERPRINT)
            .and_then(fingerprint_bytes);
        let trust = if let Some(pin) = pin {
            TrustPolicy::Pinned(pin)
        } else if config.bool_setting(FIELD_INSECURE_SKIP_VERIFY) == Some(true) {
            TrustPolicy::InsecureSkipVerify
        } else if let Some(pem) = config.str_setting(FIELD_CA_CERTIFICATE) {
            let certificates = parse_ca_certificates(pem).map_err(|message| {
                let mut errors = FieldErrors::new();
                errors.add(FIELD_CA_CERTIFICATE, message);
                invalid_config(errors)
            })?;
            TrustPolicy::CustomCa(certificates)
        } else {
            TrustPolicy::System
        };

        Ok(Self {
            host,
            port,
            use_https: config.bool_setting(FIELD_USE_HTTPS).unwrap_or(true),
            username,
            password,
            trust,
        })
    }

    /// The host as it appears in a URL: IPv6 literals in brackets.
    pub fn url_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// `host:port` for messages and logs, e.g. `vc.example:443` or `[fe80::1]:443`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.url_host(), self.port)
    }

    /// The SOAP endpoint, e.g. `https://vc.example:443/sdk`.
    pub fn endpoint_url(&self) -> String {
        let scheme = if self.use_https { "https" } else { "http" };
        format!("{scheme}://{}/sdk", self.address())
    }
}

fn invalid_config(errors: FieldErrors) -> ProviderError {
    ProviderError::new(
        FailureCategory::InvalidConfig,
        format!("the connection settings are invalid: {errors}"),
    )
}

#[cfg(test)]
mod tests;
