//! One TLS stack for every client: rustls with the `ring` provider, roots
//! read from one CA bundle file.

/// System CA bundles, most specific first: Amazon Linux (Lambda's
/// provided.al2023), Debian/Ubuntu, others.
const CA_BUNDLES: [&str; 3] = [
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/cert.pem",
];

/// Points `SSL_CERT_FILE` at the system's CA bundle when neither it nor
/// `SSL_CERT_DIR` is set. Both TLS clients (the SDK's and reqwest's) load
/// native roots through `rustls-native-certs`, which otherwise reads the
/// bundle *and* every file of the certificate directory (about 150 opens, the
/// bulk of the SDK client's construction at cold start).
///
/// Call first thing in `main`, before any thread exists: it sets a process
/// environment variable.
pub fn prefer_single_ca_bundle() {
    if std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some() {
        return;
    }
    if let Some(bundle) = CA_BUNDLES.iter().find(|p| std::path::Path::new(p).is_file()) {
        std::env::set_var("SSL_CERT_FILE", bundle);
    }
}

/// Makes `ring` the process-wide rustls provider (reqwest uses it). Idempotent.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
