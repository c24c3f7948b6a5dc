//! One TLS stack for every client: rustls with the `ring` provider, and one
//! certificate verifier for the process, over the roots `main` chose.

use std::sync::{Arc, OnceLock};

/// Where the process's trusted root certificates come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedRoots {
    /// The machine's (`SSL_CERT_FILE`, `SSL_CERT_DIR`, or the system's
    /// store), read and parsed when the first client is built: ~1 ms for
    /// the ~150 roots of a CA bundle.
    System,
    /// Mozilla's roots, compiled in (`webpki-roots`): nothing to read or
    /// parse. The set the binary was built with.
    Builtin,
}

static ROOTS: OnceLock<TrustedRoots> = OnceLock::new();

/// Chooses the process's roots; call before the first client is built (the
/// first choice stands). Without a choice the system's are trusted.
pub fn trust(roots: TrustedRoots) {
    let _ = ROOTS.set(roots);
}

/// The roots [`client_config`] trusts.
pub fn trusted_roots() -> TrustedRoots {
    ROOTS.get().copied().unwrap_or(TrustedRoots::System)
}

/// Makes `ring` the process-wide rustls provider (reqwest uses it). Idempotent.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The TLS configuration of every HTTP client (the actions' and the AWS
/// calls'): HTTP/1.1, one verifier over the [`trusted_roots`]. Built once per
/// process: the system's roots are read and parsed once (~1 ms for the ~150
/// of a CA bundle), not once per client.
pub fn client_config() -> Result<rustls::ClientConfig, String> {
    static CONFIG: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            install_crypto_provider();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = verifier(trusted_roots(), provider.clone())?;
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|err| format!("TLS could not be configured: {err}"))?
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            // As reqwest sets it for an HTTP/1.1-only client.
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(config)
        })
        .clone()
}

/// The certificate verifier over `roots`.
fn verifier(
    roots: TrustedRoots,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::client::danger::ServerCertVerifier>, String> {
    Ok(match roots {
        TrustedRoots::System => Arc::new(
            rustls_platform_verifier::Verifier::new(provider)
                .map_err(|err| format!("the system's root certificates could not be loaded: {err}"))?,
        ),
        TrustedRoots::Builtin => {
            let store = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
                .build()
                .map_err(|err| format!("the built-in root certificates could not be used: {err}"))?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_gets_the_one_configuration_built() {
        let first = client_config().unwrap();
        let second = client_config().unwrap();
        // Built once: the clones share what the one build made.
        assert!(Arc::ptr_eq(first.crypto_provider(), second.crypto_provider()));
        assert_eq!(first.alpn_protocols, [b"http/1.1".to_vec()]);
    }

    #[test]
    fn the_built_in_roots_refuse_a_certificate_of_a_ca_they_do_not_hold() {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

        let pem = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/server.pem");
        let chain: Vec<CertificateDer> = CertificateDer::pem_file_iter(pem)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builtin = verifier(TrustedRoots::Builtin, provider).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let err = builtin
            .verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now())
            .unwrap_err();
        assert_eq!(
            err,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        );
    }
}
