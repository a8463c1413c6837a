//! rustls client configuration for talking to the simulator.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// A rustls client configuration (ring provider, safe defaults, no client certificate)
/// that trusts exactly the certificates in `ca_pem`, such as [`crate::Simulator::ca_pem`].
///
/// Pass it to `reqwest::ClientBuilder::tls_backend_preconfigured`.
///
/// # Panics
///
/// When `ca_pem` holds no certificate or one rustls rejects as a trust anchor.
pub fn tls_config_trusting(ca_pem: &str) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.unwrap_or_else(|e| panic!("the CA PEM does not parse: {e}"));
        roots
            .add(cert)
            .unwrap_or_else(|e| panic!("rustls rejects the CA certificate: {e}"));
        count += 1;
    }
    assert!(count > 0, "the CA PEM holds no certificate: {ca_pem:?}");

    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}
