//! SigV4-signed HTTP calls on the shared SDK configuration (region,
//! credentials, endpoint): the Scheduler and Lambda calls of `wakeups` and
//! SNS's query API. Each is one request to sign and send; a service's SDK
//! crate would add its model to the binary and its orchestration (endpoint
//! resolution, interceptors, serializers) to every call. S3 signs its own
//! way (unnormalized paths, signed payload hash) in `s3`.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_types::SdkConfig;

/// One request to a service. `url` is complete and encoded.
#[derive(Clone, Copy)]
pub(super) struct Request<'a> {
    /// The signing name (`sns`, `scheduler`, `lambda`).
    pub service: &'static str,
    pub method: &'static str,
    pub url: &'a str,
    /// Sent and signed.
    pub headers: &'a [(&'static str, &'a str)],
    pub body: &'a [u8],
}

/// Why a request got no response, and whether another try may get one
/// (a timeout, a refused or dropped connection).
#[derive(Debug)]
pub(super) struct SendError {
    pub reason: String,
    pub transient: bool,
}

impl SendError {
    fn permanent(reason: impl Into<String>) -> SendError {
        SendError {
            reason: reason.into(),
            transient: false,
        }
    }
}

/// Signed calls on one configuration, through one `reqwest` client built
/// on the first call.
pub(super) struct SignedCalls {
    sdk: SdkConfig,
    timeout: Duration,
    http: OnceLock<Result<reqwest::Client, String>>,
}

impl SignedCalls {
    /// `timeout` bounds each request, response body included.
    pub fn new(sdk: &SdkConfig, timeout: Duration) -> SignedCalls {
        SignedCalls {
            sdk: sdk.clone(),
            timeout,
            http: OnceLock::new(),
        }
    }

    pub fn region(&self) -> String {
        self.sdk
            .region()
            .map(|r| r.as_ref().to_string())
            .unwrap_or_else(|| "us-east-1".to_string())
    }

    /// The service's base URL, without a trailing slash: `configured`, else
    /// the configuration's `AWS_ENDPOINT_URL`, else AWS's regional endpoint.
    pub fn endpoint(&self, service: &str, configured: Option<&str>) -> String {
        match configured.or(self.sdk.endpoint_url()) {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let region = self.region();
                format!("https://{service}.{region}.{}", super::s3::domain(&region))
            }
        }
    }

    fn client(&self) -> Result<&reqwest::Client, String> {
        self.http
            .get_or_init(|| super::http::signed_calls_client(self.timeout))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Signs and sends `request`: the status and the body, whatever the
    /// status.
    pub async fn send(&self, request: &Request<'_>) -> Result<(u16, Vec<u8>), SendError> {
        let provider = self
            .sdk
            .credentials_provider()
            .ok_or_else(|| SendError::permanent("no AWS credentials configured"))?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|err| SendError::permanent(super::error_chain(&err)))?;
        let identity: Identity = credentials.into();
        let region = self.region();
        let params: aws_sigv4::http_request::SigningParams<'_> =
            aws_sigv4::sign::v4::SigningParams::<SigningSettings>::builder()
                .identity(&identity)
                .region(&region)
                .name(request.service)
                .time(SystemTime::now())
                .settings(SigningSettings::default())
                .build()
                .map_err(|err| SendError::permanent(err.to_string()))?
                .into();
        let signable = SignableRequest::new(
            request.method,
            request.url,
            request.headers.iter().copied(),
            SignableBody::Bytes(request.body),
        )
        .map_err(|err| SendError::permanent(err.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|err| SendError::permanent(err.to_string()))?
            .into_parts();
        let (signed, _) = instructions.into_parts();
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|err| SendError::permanent(err.to_string()))?;
        let mut builder = self
            .client()
            .map_err(SendError::permanent)?
            .request(method, request.url);
        for (name, value) in request.headers {
            builder = builder.header(*name, *value);
        }
        for header in signed {
            builder = builder.header(header.name(), header.value());
        }
        let transient =
            |err: &reqwest::Error| err.is_timeout() || err.is_connect() || err.is_request() || err.is_body();
        let response = builder
            .body(request.body.to_vec())
            .send()
            .await
            .map_err(|err| SendError {
                transient: transient(&err),
                reason: super::error_chain(&err),
            })?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|err| SendError {
            transient: transient(&err),
            reason: super::error_chain(&err),
        })?;
        Ok((status, body.to_vec()))
    }
}
