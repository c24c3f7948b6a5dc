//! `http.fetch`, and helpers every HTTP-based action uses.

use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use serde_json::Value;

use super::{Action, ActionCall, ActionError, ArgKind, ArgSpec};
use crate::http::{HttpClient, HttpError, HttpRequest, RequestBody};

impl From<HttpError> for ActionError {
    fn from(err: HttpError) -> ActionError {
        match err {
            HttpError::BadUrl(reason) => ActionError::BadArg {
                arg: "url".to_string(),
                reason,
            },
            HttpError::Status { status, ref result, .. } => ActionError::Failed {
                result: Some(result.clone()),
                message: err.to_string(),
                transient: status == 429 || status >= 500,
            },
            // A refused certificate stays refused: not retried.
            HttpError::Certificate { .. } => ActionError::failed(err.to_string()),
            HttpError::Connect { .. }
            | HttpError::Timeout { .. }
            | HttpError::Transport { .. }
            | HttpError::Deadline { .. } => ActionError::Failed {
                message: err.to_string(),
                result: None,
                transient: true,
            },
            other => ActionError::failed(other.to_string()),
        }
    }
}

/// Builds a header map from a `StringMap` argument.
pub fn headers_arg(call: &ActionCall<'_>, arg: &str) -> Result<HeaderMap, ActionError> {
    let mut headers = HeaderMap::new();
    if let Some(map) = call.args.get(arg).and_then(Value::as_object) {
        for (name, value) in map {
            let bad = |reason: String| ActionError::BadArg {
                arg: format!("{arg}.{name}"),
                reason,
            };
            let header =
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(format!("is not a header name: {e}")))?;
            let value = HeaderValue::from_str(value.as_str().unwrap_or_default())
                .map_err(|e| bad(format!("is not a header value: {e}")))?;
            headers.insert(header, value);
        }
    }
    Ok(headers)
}

/// Per-action `timeout_ms`, else the client's default.
pub fn timeout_arg(call: &ActionCall<'_>) -> Option<Duration> {
    call.args
        .get("timeout_ms")
        .and_then(Value::as_u64)
        .map(Duration::from_millis)
}

/// `http.fetch`: one HTTP request; result `{status, headers, body}`.
pub struct Fetch {
    client: HttpClient,
}

impl Fetch {
    pub fn new(client: HttpClient) -> Fetch {
        Fetch { client }
    }
}

const FETCH_ARGS: &[ArgSpec] = &[
    ArgSpec::required("url", ArgKind::String, "http(s) URL"),
    ArgSpec::optional("method", ArgKind::String, "HTTP method (default GET)"),
    ArgSpec::optional("headers", ArgKind::StringMap, "request headers"),
    ArgSpec::optional("json", ArgKind::Any, "JSON request body"),
    ArgSpec::optional(
        "body",
        ArgKind::String,
        "text request body (ignored when `json` is set)",
    ),
    ArgSpec::optional(
        "timeout_ms",
        ArgKind::Whole,
        "request timeout (default HTTP_TIMEOUT_MS)",
    ),
    ArgSpec::optional(
        "secret_bearer_token",
        ArgKind::Secret,
        "sent as `Authorization: Bearer …`",
    ),
];

impl Action for Fetch {
    fn uses(&self) -> &'static str {
        "http.fetch"
    }

    fn args(&self) -> &'static [ArgSpec] {
        FETCH_ARGS
    }

    fn aliases(&self) -> &'static [(&'static str, &'static str)] {
        &[("data", "body"), ("header", "headers")]
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let method_name = call.str_arg("method").unwrap_or("GET").to_ascii_uppercase();
            let method = Method::from_bytes(method_name.as_bytes()).map_err(|_| ActionError::BadArg {
                arg: "method".to_string(),
                reason: format!("{method_name:?} is not an HTTP method"),
            })?;
            let mut request =
                HttpRequest::new(method, call.str_arg("url").unwrap_or_default()).timeout(timeout_arg(&call));
            request.headers = headers_arg(&call, "headers")?;
            if let Some(token) = call.str_arg("secret_bearer_token") {
                request = request.secret_header("authorization", &format!("Bearer {token}"));
            }
            request.body = match (call.args.get("json"), call.str_arg("body")) {
                (Some(json), _) if !json.is_null() => Some(RequestBody::Json(json.clone())),
                (_, Some(text)) => Some(RequestBody::Text(text.to_string())),
                _ => None,
            };
            let response = self.client.send(request, call.deadline).await?;
            Ok(response.to_result())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_certificate_fails_for_good_and_a_failed_connection_for_now() {
        let at = |reason: &str| {
            (
                Method::POST,
                "https://hooks.example.com/x".to_string(),
                reason.to_string(),
            )
        };
        let (method, url, reason) = at("invalid peer certificate: UnknownIssuer");
        let refused = ActionError::from(HttpError::Certificate { method, url, reason });
        assert!(!refused.is_transient());
        assert!(
            refused.to_string().contains("the server's certificate was refused"),
            "{refused}"
        );
        let (method, url, reason) = at("connection refused");
        assert!(ActionError::from(HttpError::Connect { method, url, reason }).is_transient());
    }
}
