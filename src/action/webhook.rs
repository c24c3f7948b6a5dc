//! `webhook.post`: POST the alert (and optional data) as JSON to a URL,
//! signed when a signing key is given.

use futures::future::BoxFuture;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

use super::http::{headers_arg, timeout_arg};
use super::{Action, ActionCall, ActionError, ArgKind, ArgSpec};
use crate::http::{HttpClient, HttpRequest, RequestBody};

pub struct Post {
    client: HttpClient,
}

impl Post {
    pub fn new(client: HttpClient) -> Post {
        Post { client }
    }
}

const POST_ARGS: &[ArgSpec] = &[
    ArgSpec::required("url", ArgKind::String, "http(s) URL of the receiver"),
    ArgSpec::optional("data", ArgKind::Any, "extra JSON sent as `data` beside the alert"),
    ArgSpec::optional("headers", ArgKind::StringMap, "extra request headers"),
    ArgSpec::optional(
        "timeout_ms",
        ArgKind::Whole,
        "request timeout (default HTTP_TIMEOUT_MS)",
    ),
    ArgSpec::optional(
        "secret_signing_key",
        ArgKind::Secret,
        "HMAC-SHA256 key for the X-Signature header",
    ),
];

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub fn signature(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

impl Action for Post {
    fn uses(&self) -> &'static str {
        "webhook.post"
    }

    fn args(&self) -> &'static [ArgSpec] {
        POST_ARGS
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let body = serde_json::to_vec(&json!({
                "outcome_id": call.outcome_id,
                "action_id": call.action_id,
                "alert": call.alert,
                "data": call.args.get("data").cloned().unwrap_or(Value::Null),
            }))
            .expect("JSON");
            let mut request =
                HttpRequest::new(Method::POST, call.str_arg("url").unwrap_or_default()).timeout(timeout_arg(&call));
            request.headers = headers_arg(&call, "headers")?;
            // Receivers deduplicate retries on it: the id is the same on every retry,
            // which is also what makes retrying a POST on 5xx safe here.
            request = request
                .header("idempotency-key", call.outcome_id)
                .header("content-type", "application/json");
            request.retry_unsafe = true;
            if let Some(key) = call.str_arg("secret_signing_key") {
                let signed = signature(key.as_bytes(), chrono::Utc::now().timestamp(), &body);
                request = request.header("x-signature", &signed);
            }
            request.body = Some(RequestBody::Bytes(body));
            let response = self.client.send(request, call.deadline).await?;
            Ok(response.to_result())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Reference value computed independently:
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
        assert_eq!(
            signature(b"key", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
        );
    }
}
