//! One TLS stack for every client: rustls with the `ring` provider.

/// Makes `ring` the process-wide rustls provider (reqwest uses it). Idempotent.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
