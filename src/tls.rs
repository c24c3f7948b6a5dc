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

impl TrustedRoots {
    /// In Lambda mode, where the machine's bundle is the runtime's copy of
    /// Mozilla's set, the built-in roots, unless `SSL_CERT_FILE` or
    /// `SSL_CERT_DIR` names others (`roots_named`); the machine's otherwise.
    pub fn for_process(lambda_mode: bool, roots_named: bool) -> TrustedRoots {
        if lambda_mode && !roots_named {
            TrustedRoots::Builtin
        } else {
            TrustedRoots::System
        }
    }
}

static ROOTS: OnceLock<TrustedRoots> = OnceLock::new();

/// Chooses the process's roots; call before the first client is built (the
/// first choice stands). Without a choice the system's are trusted.
pub fn trust(roots: TrustedRoots) {
    let _ = ROOTS.set(roots);
}

/// Makes `ring` the process-wide rustls provider (reqwest uses it). Idempotent.
fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the process's TLS configuration now, so that roots that cannot
/// be loaded fail init rather than every HTTPS call later.
pub fn prepare() -> Result<(), String> {
    client_config().map(drop)
}

/// A `reqwest` client builder on [`client_config`]: where every HTTP client
/// of the process starts.
pub fn client_builder() -> Result<reqwest::ClientBuilder, String> {
    Ok(reqwest::Client::builder().tls_backend_preconfigured(client_config()?))
}

/// The TLS configuration of every HTTP client (the actions' and the AWS
/// calls'): HTTP/1.1, TLS 1.3 and 1.2, SNI, one verifier over the chosen
/// roots — what reqwest builds for itself, but once per process: the
/// system's roots are read and parsed once (~1 ms for the ~150 of a CA
/// bundle), not once per client. A client given it ignores reqwest's own
/// TLS options (versions, SNI, key log): set them here. A failure is kept
/// too: loading the same roots again would fail the same way.
fn client_config() -> Result<rustls::ClientConfig, String> {
    static CONFIG: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| config_over(ROOTS.get().copied().unwrap_or(TrustedRoots::System)))
        .clone()
}

/// A `reqwest` client builder for plain-HTTP calls that must work whatever
/// the roots (reporting an init error, which may be theirs, to the Runtime
/// API): the built-in roots, which load without fail.
pub fn plain_http_client_builder() -> Result<reqwest::ClientBuilder, String> {
    Ok(reqwest::Client::builder().tls_backend_preconfigured(config_over(TrustedRoots::Builtin)?))
}

fn config_over(roots: TrustedRoots) -> Result<rustls::ClientConfig, String> {
    install_crypto_provider();
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let verifier = verifier(roots, provider.clone())?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| format!("TLS could not be configured: {err}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // As reqwest sets it for an HTTP/1.1-only client.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Whether `err` (or an error it wraps) is the verifier refusing the
/// server's certificate: an unknown issuer, an expired certificate, a name
/// it does not cover. Trying again cannot help, unlike a connection that
/// failed: callers fail at once instead of retrying. rustls's error reaches
/// reqwest inside an `io::Error`, whose `source` skips it, so each link's
/// payload is looked at too.
pub fn refused_certificate(err: &(dyn std::error::Error + 'static)) -> bool {
    let refusal = matches!(
        err.downcast_ref::<rustls::Error>(),
        Some(rustls::Error::InvalidCertificate(_))
    );
    // hyper wraps rustls's `io::Error` in another; `source` skips both payloads.
    let payload = err
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
        .is_some_and(|inner| refused_certificate(inner));
    refusal || payload || err.source().is_some_and(refused_certificate)
}

/// The certificate verifier over `roots`.
fn verifier(
    roots: TrustedRoots,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::client::danger::ServerCertVerifier>, String> {
    Ok(match roots {
        TrustedRoots::System => {
            let verifier = rustls_platform_verifier::Verifier::new(provider).map_err(|err| {
                format!("no root certificates could be loaded from SSL_CERT_FILE, SSL_CERT_DIR or the system: {err}")
            })?;
            tracing::debug!(roots = "system", "TLS roots loaded");
            Arc::new(verifier)
        }
        TrustedRoots::Builtin => {
            let store = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            tracing::debug!(roots = "built-in", anchors = store.len(), "TLS roots loaded");
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
    fn a_refused_certificate_is_found_inside_the_errors_wrapping_it() {
        let refused = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let in_io = std::io::Error::new(std::io::ErrorKind::InvalidData, refused.clone());
        assert!(refused_certificate(&refused));
        assert!(refused_certificate(&in_io));
        #[derive(Debug, thiserror::Error)]
        #[error("connect")]
        struct Outer(#[source] std::io::Error);
        let twice = std::io::Error::other(in_io);
        assert!(refused_certificate(&Outer(twice)));
        // A handshake that failed otherwise, or a connection that did, may heal.
        let other = rustls::Error::General("handshake".into());
        assert!(!refused_certificate(&std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            other
        )));
        assert!(!refused_certificate(&std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused
        )));
    }

    #[test]
    fn lambda_mode_trusts_the_built_in_roots_unless_roots_are_named() {
        assert_eq!(TrustedRoots::for_process(true, false), TrustedRoots::Builtin);
        assert_eq!(TrustedRoots::for_process(true, true), TrustedRoots::System);
        assert_eq!(TrustedRoots::for_process(false, false), TrustedRoots::System);
        assert_eq!(TrustedRoots::for_process(false, true), TrustedRoots::System);
    }

    #[test]
    fn clients_speak_http_1_1() {
        assert_eq!(client_config().unwrap().alpn_protocols, [b"http/1.1".to_vec()]);
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
