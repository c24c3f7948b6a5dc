//! The AWS SDK clients tests set up and inspect moto with: the library's
//! configuration (which signs its own calls and carries no HTTP client),
//! with an HTTP client for the SDK on `reqwest` and the SDK's standard
//! retries.

use std::time::Duration;

use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::RetryConfig;
use aws_types::SdkConfig;

/// The environment's configuration, ready for an SDK client.
pub fn sdk_config() -> SdkConfig {
    let mut builder = alert_responder::aws::sdk_config()
        .to_builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(SharedHttpClient::new(Reqwest))
        .retry_config(RetryConfig::standard())
        .time_source(aws_smithy_async::time::SystemTimeSource::new());
    builder.set_sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep());
    builder.build()
}

#[derive(Debug)]
struct Reqwest;

impl HttpClient for Reqwest {
    fn http_connector(&self, settings: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(Connector {
            read_timeout: settings.read_timeout(),
        })
    }
}

#[derive(Debug)]
struct Connector {
    read_timeout: Option<Duration>,
}

fn client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            alert_responder::tls::client_builder()
                .expect("the TLS configuration")
                .build()
                .expect("a reqwest client")
        })
        .clone()
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let method = reqwest::Method::from_bytes(request.method().as_bytes())
                .map_err(|err| ConnectorError::user(err.into()))?;
            let body = request
                .body()
                .bytes()
                .ok_or_else(|| ConnectorError::user("a streaming request body".into()))?
                .to_vec();
            let mut builder = client().request(method, request.uri()).body(body);
            for (name, value) in request.headers() {
                builder = builder.header(name, value);
            }
            if let Some(timeout) = read_timeout {
                builder = builder.timeout(timeout);
            }
            let response = builder.send().await.map_err(|err| ConnectorError::io(err.into()))?;
            let status = StatusCode::try_from(response.status().as_u16())
                .map_err(|err| ConnectorError::other(err.into(), None))?;
            let headers = response.headers().clone();
            let bytes = response.bytes().await.map_err(|err| ConnectorError::io(err.into()))?;
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
