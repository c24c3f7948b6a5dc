//! The SDK's HTTP client: requests sent by the same `reqwest` (rustls on
//! `ring`, HTTP/1.1) the actions and S3 use, instead of smithy's hyper
//! client, which brought a second HTTP stack and HTTP/2 into the binary
//! (BENCHMARKS.md). Built on the first request, not when an SDK client is
//! constructed: root certificates are read once, only when needed.

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

/// One `reqwest` client for every SDK client sharing a configuration.
#[derive(Debug, Clone, Default)]
pub struct ReqwestHttpClient {
    client: Arc<OnceLock<Result<reqwest::Client, String>>>,
}

#[cfg(test)]
impl ReqwestHttpClient {
    /// Whether the underlying client was built (a request was sent).
    pub fn is_built(&self) -> bool {
        self.client.get().is_some()
    }
}

impl HttpClient for ReqwestHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(Connector {
            client: self.client.clone(),
            read_timeout: settings.read_timeout(),
        })
    }
}

#[derive(Debug)]
struct Connector {
    client: Arc<OnceLock<Result<reqwest::Client, String>>>,
    read_timeout: Option<Duration>,
}

impl Connector {
    fn client(&self) -> Result<reqwest::Client, ConnectorError> {
        self.client
            .get_or_init(|| {
                crate::tls::install_crypto_provider();
                reqwest::Client::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|err| err.to_string())
            })
            .clone()
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
/// strategy retries.
fn connector_error(err: reqwest::Error) -> ConnectorError {
    if err.is_timeout() {
        ConnectorError::timeout(err.into())
    } else if err.is_connect() || err.is_request() || err.is_body() {
        ConnectorError::io(err.into())
    } else {
        ConnectorError::other(err.into(), None)
    }
}

/// The `reqwest` client of the hand-signed REST calls (`s3`, `wakeups`):
/// no redirects (a signature is for one URL), the SDK's connect timeout,
/// `timeout` per request.
pub(super) fn signed_calls_client(timeout: Duration) -> Result<reqwest::Client, String> {
    crate::tls::install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("alert-responder/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| format!("the HTTP client could not be built: {err}"))
}
