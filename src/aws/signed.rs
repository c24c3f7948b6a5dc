//! SigV4-signed HTTP calls on the shared configuration (region,
//! credentials, endpoint): the Scheduler and Lambda calls of `wakeups`,
//! SNS's query API, and the JSON protocol of DynamoDB and Secrets Manager
//! (`json_api`). Each is one request to sign and send; a service's SDK
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
    pub fn permanent(reason: impl Into<String>) -> SendError {
        SendError {
            reason: reason.into(),
            transient: false,
        }
    }
}

/// Signed calls on one configuration, through the process's AWS client
/// (`http::aws_client`).
pub(super) struct SignedCalls {
    sdk: SdkConfig,
    timeout: Duration,
    /// A client of these calls' own, built at their first request; else
    /// the process's.
    own_client: Option<OnceLock<Result<reqwest::Client, String>>>,
}

impl SignedCalls {
    /// `timeout` bounds each request, response body included.
    pub fn new(sdk: &SdkConfig, timeout: Duration) -> SignedCalls {
        SignedCalls {
            sdk: sdk.clone(),
            timeout,
            own_client: None,
        }
    }

    /// As [`SignedCalls::new`], on a client (and connection pool) of their
    /// own: for calls made on another runtime than the process's, whose
    /// pooled connections are driven by the runtime that opened them.
    pub fn on_own_client(sdk: &SdkConfig, timeout: Duration) -> SignedCalls {
        SignedCalls {
            own_client: Some(OnceLock::new()),
            ..SignedCalls::new(sdk, timeout)
        }
    }

    fn client(&self) -> Result<&reqwest::Client, String> {
        match &self.own_client {
            None => super::http::aws_client(),
            Some(own) => own
                .get_or_init(super::http::new_aws_client)
                .as_ref()
                .map_err(Clone::clone),
        }
    }

    /// The configured region: calls are signed for it and, without an
    /// endpoint, sent to it. Lambda sets `AWS_REGION`; a local run may not.
    fn region(&self) -> Result<&str, SendError> {
        self.sdk
            .region()
            .map(|r| r.as_ref())
            .ok_or_else(|| SendError::permanent("no AWS region configured: set AWS_REGION"))
    }

    /// The service's base URL, without a trailing slash: the
    /// configuration's endpoint for `service` (`AWS_ENDPOINT_URL_<SERVICE>`,
    /// else `AWS_ENDPOINT_URL`), else AWS's regional endpoint.
    pub fn endpoint(&self, service: &str) -> Result<String, SendError> {
        Ok(match super::sdk::endpoint_of(&self.sdk, service) {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let region = self.region()?;
                format!("https://{service}.{region}.{}", domain(region))
            }
        })
    }

    /// Signs and sends `request`: the status and the body, whatever the
    /// status.
    pub async fn send(&self, request: &Request<'_>) -> Result<(u16, Vec<u8>), SendError> {
        let identity = identity(&self.sdk).await.map_err(SendError::permanent)?;
        let region = self.region()?;
        let params: aws_sigv4::http_request::SigningParams<'_> =
            aws_sigv4::sign::v4::SigningParams::<SigningSettings>::builder()
                .identity(&identity)
                .region(region)
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
            .request(method, request.url)
            .timeout(self.timeout);
        for (name, value) in request.headers {
            builder = builder.header(*name, *value);
        }
        for header in signed {
            builder = builder.header(header.name(), header.value());
        }
        let response = builder
            .body(request.body.to_vec())
            .send()
            .await
            .map_err(|err| SendError {
                transient: super::http::worth_retrying(&err),
                reason: super::error_chain(&err),
            })?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|err| SendError {
            transient: super::http::worth_retrying(&err),
            reason: super::error_chain(&err),
        })?;
        Ok((status, body.to_vec()))
    }
}

/// The configuration's credentials, as the signer takes them; why not, in
/// words (naming the variables to set when there are none).
pub(super) async fn identity(sdk: &SdkConfig) -> Result<Identity, String> {
    let provider = sdk.credentials_provider().ok_or("no AWS credentials configured")?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|err| super::error_chain(&err))?;
    Ok(credentials.into())
}

/// AWS's domain for a region's partition.
pub(super) fn domain(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(vars: &[(&str, &str)]) -> SignedCalls {
        let vars: std::collections::HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        SignedCalls::new(
            &super::super::sdk_config_from(|name| vars.get(name).cloned()),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn endpoints_are_configured_else_regional_and_a_missing_region_is_named() {
        let regional = calls(&[("AWS_REGION", "eu-west-1")]);
        assert_eq!(regional.endpoint("sns").unwrap(), "https://sns.eu-west-1.amazonaws.com");
        let own = calls(&[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:9/"),
        ]);
        assert_eq!(
            own.endpoint("lambda").unwrap(),
            "http://127.0.0.1:9",
            "a service's own endpoint wins, without its trailing slash"
        );
        assert_eq!(own.endpoint("scheduler").unwrap(), "http://127.0.0.1:5000");
        let china = calls(&[("AWS_REGION", "cn-north-1")]);
        assert_eq!(
            china.endpoint("sns").unwrap(),
            "https://sns.cn-north-1.amazonaws.com.cn"
        );
        let local = calls(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:5000/")]);
        assert_eq!(local.endpoint("sns").unwrap(), "http://127.0.0.1:5000");
        let err = calls(&[]).endpoint("sns").unwrap_err();
        assert!(err.reason.contains("AWS_REGION") && !err.transient, "{err:?}");
    }

    #[tokio::test]
    async fn without_credentials_nothing_is_sent_and_the_error_names_what_to_set() {
        // Port 9 (discard) on loopback: a request would fail to connect,
        // with another message.
        let calls = calls(&[("AWS_REGION", "us-east-1"), ("AWS_ENDPOINT_URL", "http://127.0.0.1:9")]);
        let request = Request {
            service: "sns",
            method: "POST",
            url: "http://127.0.0.1:9/",
            headers: &[],
            body: b"",
        };
        let err = calls.send(&request).await.unwrap_err();
        assert!(err.reason.contains("AWS_ACCESS_KEY_ID"), "{err:?}");
        assert!(!err.transient);
    }
}
