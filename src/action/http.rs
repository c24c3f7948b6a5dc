//! The HTTP client every action shares, and `http.fetch`.

use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde_json::{json, Map, Value};

use super::{Action, ActionCall, ActionError, ArgKind, ArgSpec};

/// Response bodies beyond this are cut, with `body_truncated: true`.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// One reqwest client (one connection pool, one TLS stack) for all actions.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    default_timeout: Duration,
}

/// A response reduced to what results carry.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub result: Value,
}

impl HttpClient {
    pub fn new(default_timeout: Duration) -> Result<HttpClient, reqwest::Error> {
        crate::aws::install_crypto_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5).min(default_timeout))
            .user_agent(concat!("alert-responder/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpClient {
            client,
            default_timeout,
        })
    }

    pub fn default_timeout(&self) -> Duration {
        self.default_timeout
    }

    /// Sends a request and maps the response to `{status, headers, body}`;
    /// `body` is parsed JSON when the response says JSON, else text.
    /// A non-2xx status is a failure that keeps the response as its result.
    pub async fn send(
        &self,
        call: &ActionCall<'_>,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Option<RequestBody>,
        timeout: Duration,
    ) -> Result<HttpResponse, ActionError> {
        let parsed = Url::parse(url).map_err(|err| ActionError::BadArg {
            arg: "url".to_string(),
            reason: format!("is not a URL: {err}"),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ActionError::BadArg {
                arg: "url".to_string(),
                reason: format!("must be http or https, not {}", parsed.scheme()),
            });
        }
        let shown = display_url(&parsed);
        let timeout = call.timeout(timeout);
        if timeout.is_zero() {
            return Err(ActionError::failed(format!(
                "{method} {shown}: no time left before the invocation deadline"
            )));
        }
        let mut request = self
            .client
            .request(method.clone(), parsed)
            .headers(headers)
            .timeout(timeout);
        request = match body {
            Some(RequestBody::Json(value)) => request.json(&value),
            Some(RequestBody::Text(text)) => request.body(text),
            None => request,
        };
        let mut response = request.send().await.map_err(|err| {
            let what = if err.is_timeout() {
                format!("timed out after {} ms", timeout.as_millis())
            } else if err.is_connect() {
                format!("could not connect: {}", root_cause(&err))
            } else {
                root_cause(&err)
            };
            ActionError::failed(format!("{method} {shown}: {what}"))
        })?;

        let status = response.status();
        let headers = header_map(response.headers());
        let is_json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("json"));
        let mut bytes = Vec::new();
        let mut truncated = false;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_RESPONSE_BYTES - bytes.len();
                    if chunk.len() > room {
                        bytes.extend_from_slice(&chunk[..room]);
                        truncated = true;
                        break;
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(err) => {
                    let what = if err.is_timeout() {
                        "timed out reading the body".to_string()
                    } else {
                        root_cause(&err)
                    };
                    return Err(ActionError::failed(format!("{method} {shown}: {what}")));
                }
            }
        }
        let body = match (is_json && !truncated).then(|| serde_json::from_slice::<Value>(&bytes)) {
            Some(Ok(value)) => value,
            _ => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
        };
        let mut result = json!({"status": status.as_u16(), "headers": headers, "body": body});
        if truncated {
            result["body_truncated"] = Value::Bool(true);
        }
        if !status.is_success() {
            return Err(ActionError::Failed {
                message: format!("{method} {shown}: HTTP {}", status.as_u16()),
                result: Some(result),
            });
        }
        Ok(HttpResponse {
            status: status.as_u16(),
            result,
        })
    }
}

pub enum RequestBody {
    Json(Value),
    Text(String),
}

/// A URL without its query or credentials: query strings often hold API keys.
pub fn display_url(url: &Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut source = err;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

fn header_map(headers: &HeaderMap) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match out.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                out.insert(name.as_str().to_string(), Value::String(value));
            }
        }
    }
    out
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
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| bad(format!("is not a header name: {e}")))?;
            let value = HeaderValue::from_str(value.as_str().unwrap_or_default())
                .map_err(|e| bad(format!("is not a header value: {e}")))?;
            headers.insert(header, value);
        }
    }
    Ok(headers)
}

/// Per-action `timeout_ms`, else the client's default.
pub fn timeout_arg(call: &ActionCall<'_>, client: &HttpClient) -> Duration {
    call.args
        .get("timeout_ms")
        .and_then(Value::as_u64)
        .map(Duration::from_millis)
        .unwrap_or(client.default_timeout())
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
        ArgKind::Number,
        "request timeout (default HTTP_TIMEOUT_MS)",
    ),
];

impl Action for Fetch {
    fn uses(&self) -> &'static str {
        "http.fetch"
    }

    fn args(&self) -> &'static [ArgSpec] {
        FETCH_ARGS
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let method_name = call.str_arg("method").unwrap_or("GET").to_ascii_uppercase();
            let method =
                Method::from_bytes(method_name.as_bytes()).map_err(|_| ActionError::BadArg {
                    arg: "method".to_string(),
                    reason: format!("{method_name:?} is not an HTTP method"),
                })?;
            let body = match (call.args.get("json"), call.str_arg("body")) {
                (Some(json), _) if !json.is_null() => Some(RequestBody::Json(json.clone())),
                (_, Some(text)) => Some(RequestBody::Text(text.to_string())),
                _ => None,
            };
            let headers = headers_arg(&call, "headers")?;
            let url = call.str_arg("url").unwrap_or_default();
            let response = self
                .client
                .send(
                    &call,
                    method,
                    url,
                    headers,
                    body,
                    timeout_arg(&call, &self.client),
                )
                .await?;
            Ok(response.result)
        })
    }
}
