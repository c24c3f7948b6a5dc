//! `openai.chat`: an OpenAI-compatible chat completion
//! (`POST {base}/chat/completions`, bearer key) over a prompt and the alert.

use futures::future::BoxFuture;
use reqwest::Method;
use serde_json::{json, Value};

use super::vendor::base_url;
use super::vendor::{json_object, secret, url_with, BASE_URL, TIMEOUT};
use super::{Action, ActionCall, ActionError, ArgKind, ArgSpec};
use crate::http::{HttpClient, HttpRequest};

const DEFAULT_MODEL: &str = "gpt-4o-mini";
const DEFAULT_SYSTEM: &str = "You are a security analyst. Answer concisely, based only on the alert given.";

pub struct Chat {
    client: HttpClient,
    base: String,
}

impl Chat {
    pub fn new(client: HttpClient, base: String) -> Chat {
        Chat { client, base }
    }
}

const ARGS: &[ArgSpec] = &[
    ArgSpec::required("prompt", ArgKind::String, "the question; the alert JSON is appended"),
    ArgSpec::required("secret_api_key", ArgKind::Secret, "API key"),
    ArgSpec::optional("model", ArgKind::String, "model (default gpt-4o-mini)"),
    ArgSpec::optional("system", ArgKind::String, "system message"),
    ArgSpec::optional(
        "include_alert",
        ArgKind::Bool,
        "append the alert as JSON (default true)",
    ),
    ArgSpec::optional("max_tokens", ArgKind::Number, "completion token limit"),
    ArgSpec::optional("temperature", ArgKind::Number, "sampling temperature"),
    BASE_URL,
    TIMEOUT,
];

impl Action for Chat {
    fn uses(&self) -> &'static str {
        "openai.chat"
    }

    fn args(&self) -> &'static [ArgSpec] {
        ARGS
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let mut content = call.str_arg("prompt").unwrap_or_default().to_string();
            if call.args.get("include_alert").and_then(Value::as_bool).unwrap_or(true) {
                let alert = serde_json::to_string_pretty(call.alert).expect("JSON");
                content.push_str("\n\nAlert:\n");
                content.push_str(&super::vendor::clip(&alert, 60_000));
            }
            let mut body = json!({
                "model": call.str_arg("model").unwrap_or(DEFAULT_MODEL),
                "messages": [
                    {"role": "system", "content": call.str_arg("system").unwrap_or(DEFAULT_SYSTEM)},
                    {"role": "user", "content": content},
                ],
            });
            for arg in ["max_tokens", "temperature"] {
                if let Some(value) = call.args.get(arg).filter(|v| v.is_number()) {
                    body[arg] = value.clone();
                }
            }
            let url = url_with(&base_url(&call, Some(&self.base))?, &["chat", "completions"])?;
            let request = HttpRequest::new(Method::POST, url)
                .secret_header("authorization", &format!("Bearer {}", secret(&call, "secret_api_key")?))
                .json(body)
                .timeout(super::http::timeout_arg(&call));
            let response = self.client.send(request, call.deadline).await?;
            let answer = json_object("The chat completions API", &response)?;
            let choice = answer
                .get("choices")
                .and_then(|c| c.get(0))
                .ok_or_else(|| ActionError::Failed {
                    transient: false,
                    message: "chat completion has no choices".to_string(),
                    result: Some(response.to_result()),
                })?;
            Ok(json!({
                "content": choice.pointer("/message/content").cloned().unwrap_or(Value::Null),
                "finish_reason": choice.get("finish_reason").cloned().unwrap_or(Value::Null),
                "model": answer.get("model").cloned().unwrap_or(Value::Null),
                "usage": answer.get("usage").cloned().unwrap_or(Value::Null),
            }))
        })
    }
}
