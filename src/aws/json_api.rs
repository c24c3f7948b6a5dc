//! AWS's JSON protocol (DynamoDB, Secrets Manager): each operation is a
//! signed `POST /` with an `X-Amz-Target` header and a JSON body, answered
//! with JSON, or with `{"__type": "…#Code", "message": "…"}` on an error.
//!
//! Sent on the shared signed calls (`signed`) rather than through the
//! services' SDK crates: their models and the SDK's orchestrator were
//! 1.28 MiB of the binary (BENCHMARKS.md), for the handful of operations
//! the state table and the secret source make.

use std::time::Duration;

use aws_types::SdkConfig;
use serde_json::{Map, Value};

use super::retry::{bounded, with_retries, CallError};
use super::signed::{Request, SendError, SignedCalls};

/// Bounds one try, answer included: a hung endpoint would otherwise hold
/// the invocation to its timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A service spoken to in the JSON protocol.
pub(super) struct Service {
    /// The signing name and the first label of the regional endpoint.
    pub name: &'static str,
    /// What `X-Amz-Target` starts with, before `.Operation`.
    pub target: &'static str,
    /// `application/x-amz-json-1.0` or `-1.1`, as the service's model says.
    pub content_type: &'static str,
}

/// One service's operations on one configuration.
pub(super) struct JsonApi {
    service: &'static Service,
    calls: SignedCalls,
    /// Where calls go (the configured endpoint, else the region's), or
    /// why there is nowhere (no region): reported by each call.
    url: Result<String, String>,
}

impl JsonApi {
    pub fn new(sdk: &SdkConfig, service: &'static Service) -> JsonApi {
        JsonApi::with_calls(SignedCalls::new(sdk, CALL_TIMEOUT), service)
    }

    /// As [`JsonApi::new`], on a client of its own
    /// ([`SignedCalls::on_own_client`]).
    pub fn on_own_client(sdk: &SdkConfig, service: &'static Service) -> JsonApi {
        JsonApi::with_calls(SignedCalls::on_own_client(sdk, CALL_TIMEOUT), service)
    }

    fn with_calls(calls: SignedCalls, service: &'static Service) -> JsonApi {
        let url = calls
            .endpoint(service.name)
            .map(|base| format!("{base}/"))
            .map_err(|err| err.reason);
        JsonApi { service, calls, url }
    }

    /// Where calls go, without the trailing `/`: the configured endpoint,
    /// else the region's; or why there is nowhere.
    pub fn base_url(&self) -> Result<&str, &str> {
        self.url
            .as_deref()
            .map(|url| url.trim_end_matches('/'))
            .map_err(String::as_str)
    }

    /// `operation` with `input`, tried again while it fails transiently;
    /// the answer, a JSON object. A try whose answer was lost may have
    /// applied: the caller makes a retry harmless (a transaction's
    /// `ClientRequestToken`, a conditional write's stored token) or says
    /// what it costs (a budget counted twice).
    pub async fn call(&self, operation: &str, input: &Value) -> Result<Map<String, Value>, CallError> {
        let body = serde_json::to_vec(input).expect("JSON values serialize");
        let call = format!("{} {operation}", self.service.name);
        with_retries(&call, || self.try_once(operation, &body)).await
    }

    /// `operation` with `input`, tried once: for a write that must not
    /// apply twice and may as well not apply at all.
    pub async fn call_once(&self, operation: &str, input: &Value) -> Result<Map<String, Value>, CallError> {
        let body = serde_json::to_vec(input).expect("JSON values serialize");
        bounded(self.try_once(operation, &body)).await
    }

    async fn try_once(&self, operation: &str, body: &[u8]) -> Result<Map<String, Value>, CallError> {
        let url = self.url.as_deref().map_err(SendError::permanent)?;
        let target = format!("{}.{operation}", self.service.target);
        let request = Request {
            service: self.service.name,
            method: "POST",
            url,
            headers: &[("content-type", self.service.content_type), ("x-amz-target", &target)],
            body,
        };
        let (status, answer) = self.calls.send(&request).await?;
        match status {
            200..=299 if answer.is_empty() => Ok(Map::new()),
            200..=299 => match serde_json::from_slice(&answer) {
                Ok(Value::Object(answer)) => Ok(answer),
                Ok(_) => Err(unreadable(status, operation, "not a JSON object")),
                Err(err) => Err(unreadable(status, operation, &format!("not JSON: {err}"))),
            },
            _ => Err(answered_error(status, &answer)),
        }
    }
}

/// A success answer that cannot be what the operation answers.
fn unreadable(status: u16, operation: &str, why: &str) -> CallError {
    CallError::permanent(format!("HTTP {status}: the answer to {operation} is {why}"))
}

/// An error answer: its code (`__type`, without the namespace before `#`
/// or anything after `:`) and a line naming it.
fn answered_error(status: u16, answer: &[u8]) -> CallError {
    let document: Value = serde_json::from_slice(answer).unwrap_or(Value::Null);
    let code = ["__type", "code"]
        .iter()
        .find_map(|field| document[field].as_str())
        .map(|raw| {
            let code = raw.rsplit('#').next().unwrap_or(raw);
            code.split(':').next().unwrap_or(code).to_string()
        })
        .filter(|code| !code.is_empty());
    let message = ["message", "Message"].iter().find_map(|field| document[field].as_str());
    let reason = match (&code, message) {
        (Some(code), Some(message)) => format!("HTTP {status} {code}: {message}"),
        (Some(code), None) => format!("HTTP {status} {code}"),
        (None, _) => format!("HTTP {status}"),
    };
    CallError::answered(status, code, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers_name_the_code_and_say_whether_to_retry() {
        let answer =
            |kind: &str| format!(r#"{{"__type": "{kind}", "message": "The conditional request failed"}}"#).into_bytes();
        let failed = answered_error(
            400,
            &answer("com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"),
        );
        assert_eq!(failed.code.as_deref(), Some("ConditionalCheckFailedException"));
        assert_eq!(
            failed.reason,
            "HTTP 400 ConditionalCheckFailedException: The conditional request failed"
        );
        assert!(failed.is("ConditionalCheckFailedException") && !failed.transient);
        // A code with a trailing `:` part, and Secrets Manager's `Message`.
        let not_found = answered_error(
            400,
            br#"{"__type": "ResourceNotFoundException:http://internal", "Message": "no such secret"}"#,
        );
        assert_eq!(not_found.code.as_deref(), Some("ResourceNotFoundException"));
        assert_eq!(not_found.reason, "HTTP 400 ResourceNotFoundException: no such secret");
        let throttled = answered_error(400, &answer("ProvisionedThroughputExceededException"));
        assert!(throttled.transient && throttled.throttled);
        assert!(answered_error(429, b"").throttled);
        assert!(answered_error(400, &answer("RequestTimeoutException")).transient);
        let unavailable = answered_error(503, b"<html>");
        assert!(unavailable.transient && unavailable.code.is_none());
        assert_eq!(unavailable.reason, "HTTP 503");
        assert!(!answered_error(400, &answer("ValidationException")).transient);
        assert!(!answered_error(403, &answer("AccessDeniedException")).transient);
    }

    #[tokio::test]
    async fn without_a_region_or_endpoint_a_call_says_to_set_aws_region() {
        const SERVICE: Service = Service {
            name: "dynamodb",
            target: "DynamoDB_20120810",
            content_type: "application/x-amz-json-1.0",
        };
        let sdk = super::super::sdk_config_from(|name| match name {
            "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("x".to_string()),
            _ => None,
        });
        let err = JsonApi::new(&sdk, &SERVICE)
            .call("GetItem", &serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(err.reason.contains("AWS_REGION") && !err.transient, "{err:?}");
    }
}
