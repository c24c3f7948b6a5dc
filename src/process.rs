//! Process set-up, first thing in `main`, before any thread exists.

/// System CA bundles, most specific first: Amazon Linux (Lambda's
/// provided.al2023), Debian/Ubuntu, others.
const CA_BUNDLES: [&str; 3] = [
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/cert.pem",
];

/// Points `SSL_CERT_FILE` at the system's CA bundle when neither it nor
/// `SSL_CERT_DIR` is set, for a process that trusts the system's roots: the
/// loader (`rustls-native-certs`) otherwise reads the bundle *and* every
/// file of the certificate directory (about 150 opens).
///
/// Call first thing in `main`, before any thread exists: it sets a process
/// environment variable.
pub fn prefer_single_ca_bundle() {
    if ca_roots_named() {
        return;
    }
    if let Some(bundle) = CA_BUNDLES.iter().find(|p| std::path::Path::new(p).is_file()) {
        std::env::set_var("SSL_CERT_FILE", bundle);
    }
}

/// Whether `SSL_CERT_FILE` or `SSL_CERT_DIR` names the roots to trust.
/// Read before [`prefer_single_ca_bundle`] sets the first.
pub fn ca_roots_named() -> bool {
    // Empty is unset, as the loader takes it.
    let named = |name| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    named("SSL_CERT_FILE") || named("SSL_CERT_DIR")
}

/// Keeps `RUST_BACKTRACE` to panics: unless `RUST_LIB_BACKTRACE` says
/// otherwise, errors capture no stack trace. regorus's parser builds and
/// drops an `anyhow` error for every alternative it tries, and with
/// `RUST_BACKTRACE=1` (often set on Rust functions to debug panics) each of
/// them walked the stack: compiling the bundled policies took 3.1 ms instead
/// of 1.5 (BENCHMARKS.md). Nothing prints an error's backtrace: errors are
/// shown by their messages.
///
/// Call first thing in `main`, before any thread exists: it sets a process
/// environment variable.
pub fn keep_backtraces_for_panics() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
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
