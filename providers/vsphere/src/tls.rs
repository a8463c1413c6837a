//! TLS for one vCenter target: a `rustls::ClientConfig` per [`TrustPolicy`], with a
//! certificate verifier that records what the server presented.
//!
//! Admins meet vCenter's self-signed VMCA certificate on day one, so a TLS failure must say
//! which certificate was presented and how to trust it. rustls reports only *that* the
//! certificate was rejected, deep inside a `reqwest` error chain, so every verifier here
//! writes the presented leaf's SHA-256 and the reason for a rejection into a shared
//! [`TlsObservationSlot`] that classification reads afterwards.
//!
//! Every policy, including pinning and `insecureSkipVerify`, still verifies the TLS 1.2/1.3
//! handshake signatures with the presented leaf's public key. Without that, a pinned
//! certificate (which is public) could be replayed by anyone on the network path.
//!
//! The `ring` provider is named explicitly rather than taken from a process default, so the
//! crate behaves the same whichever other rustls users are linked into the host binary.

use crate::config::TrustPolicy;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Why the verifier rejected a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TlsRejection {
    /// Not signed by a trusted CA (the usual case for vCenter's own VMCA).
    UnknownIssuer,
    /// Trusted, but issued for other names than the one Pylon connected to.
    HostnameMismatch {
        presented: Vec<String>,
    },
    Expired,
    NotYetValid,
    Revoked,
    /// The leaf's SHA-256 differs from the pinned fingerprint.
    PinMismatch {
        pinned: String,
    },
    /// Anything else webpki rejects (bad encoding, wrong key usage, ...), described by
    /// rustls.
    Invalid(String),
}

/// What the verifier saw during the last handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsObservation {
    /// Lower-case hex SHA-256 of the presented leaf certificate.
    pub leaf_sha256: Option<String>,
    pub rejection: Option<TlsRejection>,
}

/// Shared between the verifier (writer) and classification (reader).
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsObservationSlot(Arc<Mutex<TlsObservation>>);

impl TlsObservationSlot {
    fn record(&self, observation: TlsObservation) {
        // A poisoned lock only means a panicking writer; the data is a plain value.
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = observation;
    }

    /// The observation of the most recent handshake.
    pub(crate) fn get(&self) -> TlsObservation {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Builds the client TLS configuration for `policy`; the returned slot receives what each
/// handshake saw.
pub(crate) fn client_config(
    policy: &TrustPolicy,
) -> Result<(rustls::ClientConfig, TlsObservationSlot), rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let slot = TlsObservationSlot::default();
    let check = match policy {
        TrustPolicy::System => chain_check(system_roots().clone(), &provider),
        TrustPolicy::CustomCa(certificates) => {
            let mut roots = system_roots().clone();
            for certificate in certificates {
                roots.add(certificate.clone())?;
            }
            chain_check(roots, &provider)
        }
        TrustPolicy::Pinned(pin) => LeafCheck::Pinned(*pin),
        TrustPolicy::InsecureSkipVerify => LeafCheck::AcceptAny,
    };
    let verifier = RecordingVerifier {
        check,
        provider: provider.clone(),
        slot: slot.clone(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok((config, slot))
}

/// The system's trusted CAs, loaded once per process: reading and parsing the system store
/// takes milliseconds and does not change while Pylon runs. Unreadable entries are skipped;
/// an empty store simply trusts nothing.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        if !loaded.errors.is_empty() {
            tracing::debug!(
                errors = loaded.errors.len(),
                "some system CA certificates could not be loaded"
            );
        }
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
        tracing::debug!(added, ignored, "loaded system CA certificates");
        roots
    })
}

fn chain_check(roots: RootCertStore, provider: &Arc<CryptoProvider>) -> LeafCheck {
    if roots.is_empty() {
        return LeafCheck::NoTrustAnchors;
    }
    match WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build() {
        Ok(verifier) => LeafCheck::Chain(verifier),
        // Only an empty store fails to build, handled above; treat anything else the same
        // way: nothing can be trusted.
        Err(_) => LeafCheck::NoTrustAnchors,
    }
}

/// How the leaf certificate itself is judged.
#[derive(Debug)]
enum LeafCheck {
    /// webpki path building to the roots, with host name and validity checks.
    Chain(Arc<WebPkiServerVerifier>),
    /// No trust anchors at all (a container without a CA bundle): every chain is unknown.
    NoTrustAnchors,
    Pinned([u8; 32]),
    AcceptAny,
}

#[derive(Debug)]
struct RecordingVerifier {
    check: LeafCheck,
    provider: Arc<CryptoProvider>,
    slot: TlsObservationSlot,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        let result = match &self.check {
            LeafCheck::Chain(verifier) => verifier.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            LeafCheck::NoTrustAnchors => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
            LeafCheck::Pinned(pin) if *pin == digest => Ok(ServerCertVerified::assertion()),
            LeafCheck::Pinned(_) => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
            LeafCheck::AcceptAny => Ok(ServerCertVerified::assertion()),
        };
        let rejection = result.as_ref().err().map(|error| match &self.check {
            LeafCheck::Pinned(pin) => TlsRejection::PinMismatch {
                pinned: hex::encode(pin),
            },
            _ => rejection_of(error),
        });
        self.slot.record(TlsObservation {
            leaf_sha256: Some(hex::encode(digest)),
            rejection,
        });
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Maps a webpki rejection onto the reasons an admin can act on.
fn rejection_of(error: &rustls::Error) -> TlsRejection {
    match error {
        rustls::Error::InvalidCertificate(certificate_error) => match certificate_error {
            CertificateError::UnknownIssuer => TlsRejection::UnknownIssuer,
            CertificateError::NotValidForName => {
                TlsRejection::HostnameMismatch { presented: vec![] }
            }
            CertificateError::NotValidForNameContext { presented, .. } => {
                TlsRejection::HostnameMismatch {
                    presented: presented.iter().map(|name| presented_name(name)).collect(),
                }
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                TlsRejection::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                TlsRejection::NotYetValid
            }
            CertificateError::Revoked => TlsRejection::Revoked,
            other => TlsRejection::Invalid(format!("{other:?}")),
        },
        other => TlsRejection::Invalid(other.to_string()),
    }
}

/// rustls describes the names in a certificate in their `Debug` form (`DnsName("vc")`,
/// `IpAddress(10.0.0.1)`); admins need just the name.
fn presented_name(described: &str) -> String {
    let unwrapped = described
        .strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
        .or_else(|| {
            described
                .strip_prefix("IpAddress(")
                .and_then(|rest| rest.strip_suffix(')'))
        });
    unwrapped.unwrap_or(described).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_builds_a_config() {
        for policy in [
            TrustPolicy::System,
            TrustPolicy::CustomCa(vec![]),
            TrustPolicy::Pinned([7; 32]),
            TrustPolicy::InsecureSkipVerify,
        ] {
            let built = client_config(&policy);
            assert!(built.is_ok(), "{policy:?}");
        }
    }

    #[test]
    fn rejections_map_to_actionable_reasons() {
        let check = |error: CertificateError, expected: TlsRejection| {
            assert_eq!(
                rejection_of(&rustls::Error::InvalidCertificate(error)),
                expected
            );
        };
        check(CertificateError::UnknownIssuer, TlsRejection::UnknownIssuer);
        check(
            CertificateError::NotValidForName,
            TlsRejection::HostnameMismatch { presented: vec![] },
        );
        check(CertificateError::Expired, TlsRejection::Expired);
        check(CertificateError::NotValidYet, TlsRejection::NotYetValid);
        check(CertificateError::Revoked, TlsRejection::Revoked);
        check(
            CertificateError::NotValidForNameContext {
                expected: ServerName::try_from("localhost").unwrap(),
                presented: vec![
                    "IpAddress(127.0.0.1)".into(),
                    "DnsName(\"vc.example\")".into(),
                    "DirectoryName".into(),
                ],
            },
            TlsRejection::HostnameMismatch {
                presented: vec![
                    "127.0.0.1".into(),
                    "vc.example".into(),
                    "DirectoryName".into(),
                ],
            },
        );
    }
}
