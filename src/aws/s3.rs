//! S3: the decision records sink, and reading objects (policy bundles,
//! records to replay). Errors name the bucket and key, never credentials.

use futures::future::BoxFuture;

use crate::config::S3Uri;
use crate::records::{RecordError, RecordObject, RecordSink};

use super::sdk::error_chain;

/// Why an S3 object could not be read or listed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("s3://{bucket}/{key}: {reason}")]
pub struct S3Error {
    pub bucket: String,
    pub key: String,
    pub reason: String,
}

/// An object read, with its ETag.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub etag: Option<String>,
}

/// An S3 client for our purposes: path-style addressing when an endpoint is
/// set (moto and other local servers have no per-bucket host names).
#[derive(Clone, Debug)]
pub struct S3 {
    client: aws_sdk_s3::Client,
}

impl S3 {
    pub fn new(sdk: &aws_types::SdkConfig) -> S3 {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        S3 {
            client: aws_sdk_s3::Client::from_conf(config),
        }
    }

    /// The object, or `None` when its ETag is still `if_none_match`.
    pub async fn get(&self, uri: &S3Uri, if_none_match: Option<&str>) -> Result<Option<Fetched>, S3Error> {
        let failed = |reason: String| S3Error {
            bucket: uri.bucket.clone(),
            key: uri.key.clone(),
            reason,
        };
        let sent = self
            .client
            .get_object()
            .bucket(&uri.bucket)
            .key(&uri.key)
            .set_if_none_match(if_none_match.map(str::to_string))
            .send()
            .await;
        let output = match sent {
            Ok(output) => output,
            Err(err) => {
                let not_modified = err.raw_response().is_some_and(|r| r.status().as_u16() == 304);
                if not_modified {
                    return Ok(None);
                }
                return Err(failed(error_chain(&err)));
            }
        };
        let etag = output.e_tag().map(str::to_string);
        let body = output
            .body
            .collect()
            .await
            .map_err(|err| failed(format!("reading the body: {}", error_chain(&err))))?;
        Ok(Some(Fetched {
            body: body.into_bytes().to_vec(),
            etag,
        }))
    }

    /// Every key under `uri`'s key as a prefix, in S3's (lexical) order.
    pub async fn list(&self, uri: &S3Uri) -> Result<Vec<String>, S3Error> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&uri.bucket)
                .prefix(&uri.key)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|err| S3Error {
                    bucket: uri.bucket.clone(),
                    key: uri.key.clone(),
                    reason: format!("listing: {}", error_chain(&err)),
                })?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => return Ok(keys),
            }
        }
    }

    async fn put(&self, uri: &S3Uri, body: Vec<u8>, content_type: &str) -> Result<(), S3Error> {
        self.client
            .put_object()
            .bucket(&uri.bucket)
            .key(&uri.key)
            .content_type(content_type)
            .body(body.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|err| S3Error {
                bucket: uri.bucket.clone(),
                key: uri.key.clone(),
                reason: error_chain(&err),
            })
    }
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
                .put(&uri, object.body.clone(), "application/gzip")
                .await
                .map_err(|err| RecordError::Write {
                    destination: format!("s3://{}/{}", err.bucket, err.key),
                    count: object.count,
                    reason: err.reason,
                })
        })
    }
}
