//! The AWS calls' HTTP client: one `reqwest` client (rustls on `ring`,
//! HTTP/1.1) for every signed call (DynamoDB, Secrets Manager, S3, SNS,
//! Scheduler, Lambda), instead of smithy's hyper client, which brought a
//! second HTTP stack and HTTP/2 into the binary (BENCHMARKS.md). Built on
//! the first request, not when an adapter is constructed, on the process's
//! TLS configuration (`tls::client_builder`); one connection pool serves
//! every AWS endpoint.

use std::sync::OnceLock;
use std::time::Duration;

/// How long to wait for a connection, as the SDKs' standard configuration.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// The process's client for AWS calls: no redirects (a signature is for
/// one URL), the SDK's connect timeout; timeouts are set per request.
pub(super) fn aws_client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT.get_or_init(new_aws_client).as_ref().map_err(Clone::clone)
}

/// A client for AWS calls as [`aws_client`]'s, with a pool of its own.
pub(super) fn new_aws_client() -> Result<reqwest::Client, String> {
    crate::tls::client_builder()?
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("alert-responder/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| format!("the HTTP client could not be built: {err}"))
}

/// Whether a signed call that failed with `err` is worth another try: a
/// timeout, or a failure to connect or send — not a refused certificate.
pub(super) fn worth_retrying(err: &reqwest::Error) -> bool {
    (err.is_timeout() || err.is_connect() || err.is_request() || err.is_body()) && !crate::tls::refused_certificate(err)
}
