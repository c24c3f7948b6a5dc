//! Process set-up, first thing in `main`, before any thread exists.

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

/// The roots to trust: in Lambda mode, where the machine's bundle is the
/// runtime's stock copy of Mozilla's, the same roots compiled in (nothing
/// to read and parse on a cold start, ~1 ms); the machine's otherwise, and
/// whenever `SSL_CERT_FILE` or `SSL_CERT_DIR` names them. Call before
/// [`prefer_single_ca_bundle`], which sets `SSL_CERT_FILE`.
pub fn trusted_roots(lambda_mode: bool) -> crate::tls::TrustedRoots {
    let named = std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some();
    roots_for(lambda_mode, named)
}

fn roots_for(lambda_mode: bool, named: bool) -> crate::tls::TrustedRoots {
    if lambda_mode && !named {
        crate::tls::TrustedRoots::Builtin
    } else {
        crate::tls::TrustedRoots::System
    }
}

/// Turns transparent huge pages off for this process: with them the kernel
/// zeroes 2 MiB on the first touch of the allocator's arenas, a fifth of
/// the cold start in `perf` (mimalloc's own switch is a build option the
/// allocator regorus ships does not set).
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        const PR_SET_THP_DISABLE: std::ffi::c_int = 41;
        extern "C" {
            fn prctl(option: std::ffi::c_int, ...) -> std::ffi::c_int;
        }
        // SAFETY: prctl with PR_SET_THP_DISABLE takes one unsigned long and
        // changes only this process's memory policy.
        unsafe {
            prctl(
                PR_SET_THP_DISABLE,
                1 as std::ffi::c_ulong,
                0 as std::ffi::c_ulong,
                0 as std::ffi::c_ulong,
                0 as std::ffi::c_ulong,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::TrustedRoots;

    #[test]
    fn lambda_mode_trusts_the_built_in_roots_unless_roots_are_named() {
        assert_eq!(roots_for(true, false), TrustedRoots::Builtin);
        assert_eq!(roots_for(true, true), TrustedRoots::System);
        assert_eq!(roots_for(false, false), TrustedRoots::System);
        assert_eq!(roots_for(false, true), TrustedRoots::System);
    }
}
