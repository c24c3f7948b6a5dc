//! S3: the decision records sink, and reading objects (policy bundles,
//! records to replay). Errors name the bucket and key, never credentials.
//!
//! Three calls only — GetObject (conditional on the ETag), PutObject and
//! ListObjectsV2 — made as SigV4-signed HTTP requests on the SDK's
//! configuration (region, credentials, endpoint) rather than through
//! `aws-sdk-s3`: that crate and the checksum tables it links (crc-fast)
//! were 1.9 MiB of a binary budgeted at 12 (BENCHMARKS.md). The tests run
//! these calls against moto's S3, and check them with the real SDK.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_types::SdkConfig;
use futures::future::BoxFuture;

use super::xml;
use crate::config::S3Uri;
use crate::records::{RecordError, RecordObject, RecordSink};

/// Why an S3 object could not be read, written or listed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("s3://{bucket}/{key}: {reason}")]
pub struct S3Error {
    pub bucket: String,
    pub key: String,
    pub reason: String,
    /// Another try may work (a 5xx, a timeout, a dropped connection); it
    /// was tried [`ATTEMPTS`] times already.
    pub transient: bool,
}

/// Why one request failed, and whether another try may work.
struct Failure {
    reason: String,
    transient: bool,
}

impl Failure {
    fn permanent(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            transient: false,
        }
    }
}

/// Tries of one call: S3 asks clients to retry 500, 503 (SlowDown) and
/// dropped connections; backoff 100 ms, then 400 ms.
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// An object read, with its ETag.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub etag: Option<String>,
}

/// Bounds one request, body included.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Bodies are records and bundles: a bound on what a bad object costs.
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// S3 on the shared SDK configuration: AWS's regional endpoint with
/// virtual-hosted buckets, or `AWS_ENDPOINT_URL` path-style (moto and other
/// local servers have no per-bucket host names).
#[derive(Clone)]
pub struct S3 {
    /// Shared: the configuration is large.
    inner: Arc<Inner>,
}

struct Inner {
    sdk: SdkConfig,
}

impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3")
            .field("endpoint", &super::sdk::endpoint_of(&self.inner.sdk, "s3"))
            .finish()
    }
}

/// A request to sign and send.
struct Call<'a> {
    method: &'static str,
    uri: &'a S3Uri,
    /// `list-type=2&prefix=...`, already encoded.
    query: &'a str,
    headers: Vec<(&'static str, String)>,
    body: &'a [u8],
}

impl S3 {
    pub fn new(sdk: &SdkConfig) -> S3 {
        S3 {
            inner: Arc::new(Inner { sdk: sdk.clone() }),
        }
    }

    fn region(&self) -> String {
        self.inner
            .sdk
            .region()
            .map(|r| r.as_ref().to_string())
            .unwrap_or_else(|| "us-east-1".to_string())
    }

    /// The URL of `uri` and its canonical path (encoded once, as S3 signs it).
    fn url(&self, uri: &S3Uri, query: &str) -> String {
        let key: String = uri.key.split('/').map(encode).collect::<Vec<_>>().join("/");
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        match super::sdk::endpoint_of(&self.inner.sdk, "s3") {
            Some(endpoint) => format!("{}/{}/{key}{query}", endpoint.trim_end_matches('/'), uri.bucket),
            // A bucket name with dots does not match S3's wildcard certificate.
            None if uri.bucket.contains('.') => {
                format!(
                    "https://s3.{}.{}/{}/{key}{query}",
                    self.region(),
                    super::signed::domain(&self.region()),
                    uri.bucket
                )
            }
            None => format!(
                "https://{}.s3.{}.{}/{key}{query}",
                uri.bucket,
                self.region(),
                super::signed::domain(&self.region())
            ),
        }
    }

    /// Sends `call` until it succeeds, fails for good, or [`ATTEMPTS`] tries
    /// failed transiently; the final response (any status) or why none came.
    async fn call(&self, call: &Call<'_>) -> Result<(reqwest::StatusCode, Option<String>, Vec<u8>), Failure> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            let tried = match self.send(call).await {
                Ok(response) => {
                    let status = response.status();
                    let etag = response
                        .headers()
                        .get("etag")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    read_body(response).await.map(|body| (status, etag, body))
                }
                Err(failure) => Err(failure),
            };
            let retry = match &tried {
                Ok((status, _, _)) => status.is_server_error(),
                Err(failure) => failure.transient,
            };
            if !retry || attempt >= ATTEMPTS {
                return match tried {
                    Ok((status, _, body)) if status.is_server_error() => Err(Failure {
                        reason: error_text(status, &body),
                        transient: true,
                    }),
                    other => other,
                };
            }
            tokio::time::sleep(backoff).await;
            backoff *= 4;
            attempt += 1;
        }
    }

    async fn send(&self, call: &Call<'_>) -> Result<reqwest::Response, Failure> {
        let identity = super::signed::identity(&self.inner.sdk)
            .await
            .map_err(Failure::permanent)?;
        let url = self.url(call.uri, call.query);
        let signed = signature_headers(
            &Signing {
                method: call.method,
                url: &url,
                headers: &call.headers,
                body: call.body,
            },
            &identity,
            &self.region(),
            SystemTime::now(),
        )
        .map_err(Failure::permanent)?;
        let method = reqwest::Method::from_bytes(call.method.as_bytes()).expect("a valid method");
        let mut request = super::http::aws_client()
            .map_err(Failure::permanent)?
            .request(method, &url)
            .timeout(CALL_TIMEOUT);
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        for (name, value) in signed {
            request = request.header(name, value);
        }
        request.body(call.body.to_vec()).send().await.map_err(|err| Failure {
            transient: super::http::worth_retrying(&err),
            reason: super::error_chain(&err),
        })
    }

    /// The object, or `None` when its ETag is still `if_none_match`.
    pub async fn get(&self, uri: &S3Uri, if_none_match: Option<&str>) -> Result<Option<Fetched>, S3Error> {
        let failed = |failure: Failure| S3Error {
            bucket: uri.bucket.clone(),
            key: uri.key.clone(),
            reason: failure.reason,
            transient: failure.transient,
        };
        let headers = if_none_match
            .map(|etag| vec![("if-none-match", etag.to_string())])
            .unwrap_or_default();
        let call = Call {
            method: "GET",
            uri,
            query: "",
            headers,
            body: &[],
        };
        let (status, etag, body) = self.call(&call).await.map_err(failed)?;
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(failed(Failure::permanent(error_text(status, &body))));
        }
        Ok(Some(Fetched { body, etag }))
    }

    /// Every key under `uri`'s key as a prefix, in S3's (lexical) order.
    pub async fn list(&self, uri: &S3Uri) -> Result<Vec<String>, S3Error> {
        let failed = |failure: Failure| S3Error {
            bucket: uri.bucket.clone(),
            key: uri.key.clone(),
            reason: format!("listing: {}", failure.reason),
            transient: failure.transient,
        };
        let bucket = S3Uri {
            bucket: uri.bucket.clone(),
            key: String::new(),
        };
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = format!("list-type=2&prefix={}", encode(&uri.key));
            if let Some(token) = &token {
                query = format!("continuation-token={}&{query}", encode(token));
            }
            let call = Call {
                method: "GET",
                uri: &bucket,
                query: &query,
                headers: Vec::new(),
                body: &[],
            };
            let (status, _, body) = self.call(&call).await.map_err(failed)?;
            if !status.is_success() {
                return Err(failed(Failure::permanent(error_text(status, &body))));
            }
            let text = String::from_utf8_lossy(&body);
            keys.extend(xml::values(&text, "Key"));
            let truncated = xml::values(&text, "IsTruncated").first().is_some_and(|t| t == "true");
            match xml::values(&text, "NextContinuationToken").pop() {
                Some(next) if truncated => token = Some(next),
                _ => return Ok(keys),
            }
        }
    }

    async fn put(&self, uri: &S3Uri, body: &[u8], content_type: &str) -> Result<(), S3Error> {
        let failed = |failure: Failure| S3Error {
            bucket: uri.bucket.clone(),
            key: uri.key.clone(),
            reason: failure.reason,
            transient: failure.transient,
        };
        let call = Call {
            method: "PUT",
            uri,
            query: "",
            headers: vec![("content-type", content_type.to_string())],
            body,
        };
        let (status, _, body) = self.call(&call).await.map_err(failed)?;
        if status.is_success() {
            return Ok(());
        }
        Err(failed(Failure::permanent(error_text(status, &body))))
    }
}

/// What SigV4 signs of a request.
struct Signing<'a> {
    method: &'a str,
    url: &'a str,
    headers: &'a [(&'static str, String)],
    body: &'a [u8],
}

/// The headers that sign `request` for S3 (`authorization`, `x-amz-date`,
/// `x-amz-content-sha256`, the session token when there is one).
fn signature_headers(
    request: &Signing<'_>,
    identity: &Identity,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(&'static str, String)>, String> {
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let params: aws_sigv4::http_request::SigningParams<'_> =
        aws_sigv4::sign::v4::SigningParams::<SigningSettings>::builder()
            .identity(identity)
            .region(region)
            .name("s3")
            .time(time)
            .settings(settings)
            .build()
            .map_err(|err| err.to_string())?
            .into();
    let headers = request.headers.iter().map(|(k, v)| (*k, v.as_str()));
    let signable = SignableRequest::new(request.method, request.url, headers, SignableBody::Bytes(request.body))
        .map_err(|err| err.to_string())?;
    let (instructions, _) = sign(signable, &params).map_err(|err| err.to_string())?.into_parts();
    let (signed, _) = instructions.into_parts();
    Ok(signed
        .into_iter()
        .map(|header| (header.name(), header.value().to_string()))
        .collect())
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|err| Failure {
        reason: super::error_chain(&err),
        transient: true,
    })? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Failure::permanent(format!("the object is over {MAX_BODY_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// S3's error document in a line: `HTTP 404 NoSuchKey: The specified key does not exist.`
fn error_text(status: reqwest::StatusCode, body: &[u8]) -> String {
    xml::error_line(status.as_u16(), &String::from_utf8_lossy(body)).0
}

/// Percent-encodes everything but S3's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Decision records in a bucket, under a prefix (`DECISION_RECORDS`).
pub struct S3Records {
    s3: S3,
    location: S3Uri,
}

impl S3Records {
    pub fn new(s3: S3, location: S3Uri) -> S3Records {
        S3Records { s3, location }
    }
}

impl RecordSink for S3Records {
    fn write<'a>(&'a self, object: &'a RecordObject) -> BoxFuture<'a, Result<(), RecordError>> {
        Box::pin(async move {
            let uri = self.location.join(&object.key);
            self.s3
                .put(&uri, &object.body, "application/gzip")
                .await
                .map_err(|err| RecordError::Write {
                    destination: format!("s3://{}/{}", err.bucket, err.key),
                    count: object.count,
                    reason: err.reason,
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_queries_are_encoded_once() {
        assert_eq!(encode("dt=2026-11-29/hour=07"), "dt%3D2026-11-29%2Fhour%3D07");
        let s3 = S3::new(&crate::aws::sdk_config_from(|name| match name {
            "AWS_REGION" => Some("eu-west-1".into()),
            _ => None,
        }));
        let uri = S3Uri::parse("s3://my-bucket/records/dt=2026-11-29/a b.gz").unwrap();
        assert_eq!(
            s3.url(&uri, ""),
            "https://my-bucket.s3.eu-west-1.amazonaws.com/records/dt%3D2026-11-29/a%20b.gz"
        );
        let dotted = S3Uri::parse("s3://bundles.example.com/k").unwrap();
        assert_eq!(
            s3.url(&dotted, ""),
            "https://s3.eu-west-1.amazonaws.com/bundles.example.com/k"
        );
        let local = S3::new(&crate::aws::sdk_config_from(|name| match name {
            "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:5000/".into()),
            _ => None,
        }));
        assert_eq!(
            local.url(&uri, "list-type=2"),
            "http://127.0.0.1:5000/my-bucket/records/dt%3D2026-11-29/a%20b.gz?list-type=2"
        );
    }

    /// AWS's worked example of a signed GetObject (S3 API reference,
    /// "Signature calculations for the Authorization header").
    #[test]
    fn requests_are_signed_as_in_aws_worked_example() {
        let credentials = aws_credential_types::Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "example",
        );
        let identity: Identity = credentials.into();
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600); // 2013-05-24T00:00:00Z
        let headers = [("range", "bytes=0-9".to_string())];
        let signed = signature_headers(
            &Signing {
                method: "GET",
                url: "https://examplebucket.s3.amazonaws.com/test.txt",
                headers: &headers,
                body: &[],
            },
            &identity,
            "us-east-1",
            time,
        )
        .unwrap();
        let authorization = signed.iter().find(|(name, _)| *name == "authorization").unwrap();
        assert_eq!(
            authorization.1,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn list_results_and_errors_are_read_from_s3s_xml() {
        let page = "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a&amp;b</Key></Contents>\
                    <Contents><Key>c</Key></Contents><NextContinuationToken>t1</NextContinuationToken></ListBucketResult>";
        assert_eq!(xml::values(page, "Key"), ["a&b", "c"]);
        assert_eq!(xml::values(page, "NextContinuationToken"), ["t1"]);
        let error = b"<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(
            error_text(reqwest::StatusCode::NOT_FOUND, error),
            "HTTP 404 NoSuchBucket: The specified bucket does not exist"
        );
        assert_eq!(error_text(reqwest::StatusCode::FORBIDDEN, b""), "HTTP 403");
    }
}
