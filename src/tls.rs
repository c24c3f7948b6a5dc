//! One TLS stack for every client: rustls with the `ring` provider, and one
//! certificate verifier for the process.

use std::sync::{Arc, OnceLock};

/// Makes `ring` the process-wide rustls provider (reqwest uses it). Idempotent.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The TLS configuration of every HTTP client (the actions' and the AWS
/// calls'): HTTP/1.1, the platform's verifier over the system's root
/// certificates. The roots are read and parsed once per process (~2 ms of a
/// cold start for the ~150 of a CA bundle); each client built its own before.
pub fn client_config() -> Result<rustls::ClientConfig, String> {
    static CONFIG: OnceLock<Result<rustls::ClientConfig, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            install_crypto_provider();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
                .map_err(|err| format!("the system's root certificates could not be loaded: {err}"))?;
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|err| format!("TLS could not be configured: {err}"))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            // As reqwest sets it for an HTTP/1.1-only client.
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(config)
        })
        .clone()
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
}
