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

/// The log filter for `level` (`LOG_LEVEL` or `--log-level`, any form
/// `tracing` reads: `debug`, `TRACE`, `5`, `alert_responder=debug`), else
/// `fallback`. HTTP and AWS signing internals are never below info, since their
/// debug and trace output can carry request and response bodies (a Secrets
/// Manager response is a secret).
pub fn log_filter(level: &str, fallback: &str) -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::filter::LevelFilter;
    // `aws_sigv4` traces the requests it signs and their canonical form;
    // `lambda_runtime` traces each raw event (an interaction's callback
    // token, a Slack payload). The modules that do are named too: a
    // directive for a deeper target would win over the crate's.
    const CAPPED: &str = "aws_smithy_runtime_api=info,aws_sigv4=info,\
        aws_sigv4::http_request=info,aws_sigv4::http_request::sign=info,\
        hyper=info,hyper_util=info,h2=info,reqwest=info,rustls=info,lambda_runtime_api_client=info,\
        lambda_runtime=info,lambda_runtime::layers=info,lambda_runtime::layers::api_response=info";
    // A span directive (`[span]=trace`) enables everything inside its span,
    // whatever the target's own directive: it would lift the cap, so such a
    // level is not taken.
    if level.contains('[') {
        return tracing_subscriber::EnvFilter::new(fallback);
    }
    let Ok(asked) = tracing_subscriber::EnvFilter::try_new(level) else {
        return tracing_subscriber::EnvFilter::new(fallback);
    };
    // Below info anywhere: the capped targets are held at info (a later
    // directive for the same target wins). Not below: nothing is raised.
    if asked.max_level_hint().is_some_and(|max| max > LevelFilter::INFO) {
        tracing_subscriber::EnvFilter::new(format!("{level},{CAPPED}"))
    } else {
        asked
    }
}

#[cfg(test)]
mod tests {
    use super::log_filter;
    use tracing::Level;
    use tracing_subscriber::layer::SubscriberExt;

    fn enabled(level: &str, target_level: Level, http: bool) -> bool {
        let subscriber = tracing_subscriber::registry().with(log_filter(level, "warn"));
        tracing::subscriber::with_default(subscriber, || match (http, target_level) {
            (true, Level::DEBUG) => {
                tracing::enabled!(target: "hyper::proto", Level::DEBUG)
                    || tracing::enabled!(target: "aws_sigv4::http_request::sign", Level::DEBUG)
            }
            (true, Level::TRACE) => tracing::enabled!(target: "lambda_runtime::layers::api_response", Level::TRACE),
            (true, _) => tracing::enabled!(target: "aws_sigv4::http_request::sign", Level::INFO),
            (false, Level::DEBUG) => tracing::enabled!(target: "alert_responder::decide", Level::DEBUG),
            (false, _) => tracing::enabled!(target: "alert_responder::decide", Level::INFO),
        })
    }

    #[test]
    fn http_internals_stay_at_info_whatever_form_the_level_takes() {
        for level in [
            "debug",
            "trace",
            "TRACE",
            "Debug",
            "4",
            "5",
            "alert_responder=TRACE",
            "info,hyper=trace",
            "lambda_runtime::layers=trace",
            "lambda_runtime::layers::api_response=trace,aws_sigv4::http_request::sign=debug",
        ] {
            assert!(
                !enabled(level, Level::DEBUG, true),
                "{level}: HTTP debug output is capped"
            );
            assert!(
                !enabled(level, Level::TRACE, true),
                "{level}: the runtime's trace of each raw event is capped"
            );
        }
        for level in ["debug", "TRACE", "5", "alert_responder=Trace"] {
            assert!(
                enabled(level, Level::DEBUG, false),
                "{level}: our own debug output is on"
            );
            assert!(enabled(level, Level::INFO, true), "{level}: HTTP info stays");
        }
    }

    #[test]
    fn a_quiet_level_raises_nothing_and_a_bad_one_falls_back() {
        assert!(!enabled("warn", Level::INFO, true), "warn does not raise HTTP to info");
        assert!(!enabled("error", Level::INFO, false));
        assert!(enabled("info", Level::INFO, false));
        // `warn` is the fallback here.
        assert!(!enabled("loud!", Level::INFO, false));
        // Span directives would lift the cap inside their spans: not taken.
        for level in ["[{requestId}]=trace", "[invoke]=debug", "alert_responder[decide]=trace"] {
            assert!(!enabled(level, Level::INFO, false), "{level}: the fallback, warn");
        }
    }
}
