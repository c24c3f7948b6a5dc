//! `webhook.post`: POST the alert (and optional data) as JSON to a URL.

use futures::future::BoxFuture;
use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::{json, Value};

use super::http::{headers_arg, timeout_arg, HttpClient, RequestBody};
use super::{Action, ActionCall, ActionError, ArgKind, ArgSpec};

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
    ArgSpec::optional(
        "data",
        ArgKind::Any,
        "extra JSON sent as `data` beside the alert",
    ),
    ArgSpec::optional("headers", ArgKind::StringMap, "extra request headers"),
    ArgSpec::optional(
        "timeout_ms",
        ArgKind::Number,
        "request timeout (default HTTP_TIMEOUT_MS)",
    ),
];

impl Action for Post {
    fn uses(&self) -> &'static str {
        "webhook.post"
    }

    fn args(&self) -> &'static [ArgSpec] {
        POST_ARGS
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let body = json!({
                "outcome_id": call.outcome_id,
                "action_id": call.action_id,
                "alert": call.alert,
                "data": call.args.get("data").cloned().unwrap_or(Value::Null),
            });
            let mut headers = headers_arg(&call, "headers")?;
            // Receivers deduplicate retries on it: the id is the same on every retry.
            if let Ok(key) = HeaderValue::from_str(call.outcome_id) {
                headers.insert("idempotency-key", key);
            }
            let url = call.str_arg("url").unwrap_or_default();
            let response = self
                .client
                .send(
                    &call,
                    Method::POST,
                    url,
                    headers,
                    Some(RequestBody::Json(body)),
                    timeout_arg(&call, &self.client),
                )
                .await?;
            Ok(response.result)
        })
    }
}
