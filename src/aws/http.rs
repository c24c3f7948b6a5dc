//! The AWS calls' HTTP client: one `reqwest` client (rustls on `ring`,
//! HTTP/1.1) for the SDK's requests (DynamoDB, Secrets Manager) and the
//! signed calls (S3, SNS, Scheduler, Lambda), instead of smithy's hyper
//! client, which brought a second HTTP stack and HTTP/2 into the binary
//! (BENCHMARKS.md). Built on the first request, not when a client is
//! constructed, on the process's TLS configuration (`tls::client_builder`);
//! one connection pool serves every AWS endpoint.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

/// How long to wait for a connection, as the SDK's standard configuration.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// The process's client for AWS calls: no redirects (a signature is for
/// one URL), the SDK's connect timeout; timeouts are set per request.
pub(super) fn aws_client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            crate::tls::client_builder()?
                .connect_timeout(CONNECT_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("alert-responder/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|err| format!("the HTTP client could not be built: {err}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Whether a signed call that failed with `err` is worth another try: a
/// timeout, or a failure to connect or send — not a refused certificate.
pub(super) fn worth_retrying(err: &reqwest::Error) -> bool {
    (err.is_timeout() || err.is_connect() || err.is_request() || err.is_body()) && !crate::tls::refused_certificate(err)
}

/// The SDK clients' connector onto [`aws_client`].
#[derive(Debug, Clone, Default)]
pub struct ReqwestHttpClient {
    /// Set when a request first asked for the client.
    used: Arc<AtomicBool>,
}

#[cfg(test)]
impl ReqwestHttpClient {
    /// Whether a request was sent through this connector.
    pub fn was_used(&self) -> bool {
        self.used.load(Ordering::Relaxed)
    }
}

impl HttpClient for ReqwestHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(Connector {
            used: self.used.clone(),
            read_timeout: settings.read_timeout(),
        })
    }
}

#[derive(Debug)]
struct Connector {
    used: Arc<AtomicBool>,
    read_timeout: Option<Duration>,
}

impl Connector {
    fn client(&self) -> Result<reqwest::Client, ConnectorError> {
        self.used.store(true, Ordering::Relaxed);
        aws_client()
            .cloned()
            .map_err(|reason| ConnectorError::other(reason.into(), None))
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client();
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let client = client?;
            let method = reqwest::Method::from_bytes(request.method().as_bytes())
                .map_err(|err| ConnectorError::user(err.into()))?;
            let body = request
                .body()
                .bytes()
                .ok_or_else(|| ConnectorError::user("a streaming request body (not sent by these clients)".into()))?
                .to_vec();
            let mut builder = client.request(method, request.uri()).body(body);
            for (name, value) in request.headers() {
                builder = builder.header(name, value);
            }
            if let Some(timeout) = read_timeout {
                builder = builder.timeout(timeout);
            }
            let response = builder.send().await.map_err(connector_error)?;
            let status = StatusCode::try_from(response.status().as_u16())
                .map_err(|err| ConnectorError::other(err.into(), None))?;
            let headers = response.headers().clone();
            let bytes = response.bytes().await.map_err(connector_error)?;
            let mut out = HttpResponse::new(status, SdkBody::from(bytes));
            for (name, value) in &headers {
                if let Ok(value) = value.to_str() {
                    out.headers_mut().append(name.as_str().to_string(), value.to_string());
                }
            }
            Ok(out)
        })
    }
}

/// Timeouts and failures to connect or send are what the SDK's retry
/// strategy retries; a refused certificate is not.
fn connector_error(err: reqwest::Error) -> ConnectorError {
    if crate::tls::refused_certificate(&err) {
        ConnectorError::other(err.into(), None)
    } else if err.is_timeout() {
        ConnectorError::timeout(err.into())
    } else if err.is_connect() || err.is_request() || err.is_body() {
        ConnectorError::io(err.into())
    } else {
        ConnectorError::other(err.into(), None)
    }
}
