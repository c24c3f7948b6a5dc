//! A request, its response, and what it can fail on.

use reqwest::header::HeaderMap;
use reqwest::header::HeaderValue;
use reqwest::{Method, Url};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// What an HTTP request failed on. Messages show URLs without their query
/// strings, which often carry API keys.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    #[error("argument `url` {0}")]
    BadUrl(String),
    #[error("refused {url}: {reason}")]
    Refused { url: String, reason: String },
    #[error("{method} {url}: timed out after {ms} ms")]
    Timeout { method: Method, url: String, ms: u128 },
    #[error("{method} {url}: could not connect: {reason}")]
    Connect {
        method: Method,
        url: String,
        reason: String,
    },
    /// The server's certificate was refused: not retried, trying again
    /// cannot help.
    #[error("{method} {url}: the server's certificate was refused: {reason}")]
    Certificate {
        method: Method,
        url: String,
        reason: String,
    },
    #[error("{method} {url}: {reason}")]
    Transport {
        method: Method,
        url: String,
        reason: String,
    },
    #[error("{method} {url}: HTTP {status}")]
    Status {
        method: Method,
        url: String,
        status: u16,
        /// The response, as a result: `{status, headers, body}`.
        result: Value,
    },
    #[error("{method} {url}: no time left before the invocation deadline")]
    Deadline { method: Method, url: String },
    #[error("the HTTP client could not be built: {0}")]
    Client(String),
    #[error("{url}: more than {max} redirects")]
    TooManyRedirects { url: String, max: u32 },
}

pub enum RequestBody {
    Json(Value),
    Text(String),
    Bytes(Vec<u8>),
}

/// One logical request (retries and redirects included).
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    pub headers: HeaderMap,
    pub body: Option<RequestBody>,
    pub timeout: Option<Duration>,
    /// Retry on 5xx even though the method is not idempotent: for APIs that
    /// deduplicate (an idempotency key, a dedup key).
    pub retry_unsafe: bool,
}

impl HttpRequest {
    pub fn new(method: Method, url: impl Into<String>) -> HttpRequest {
        HttpRequest {
            method,
            url: url.into(),
            headers: HeaderMap::new(),
            body: None,
            timeout: None,
            retry_unsafe: false,
        }
    }

    pub fn json(mut self, body: Value) -> HttpRequest {
        self.body = Some(RequestBody::Json(body));
        self
    }

    pub fn header(mut self, name: &'static str, value: &str) -> HttpRequest {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.insert(name, value);
        }
        self
    }

    /// A header whose value is a credential: never logged, marked sensitive.
    pub fn secret_header(mut self, name: &'static str, value: &str) -> HttpRequest {
        if let Ok(mut value) = HeaderValue::from_str(value) {
            value.set_sensitive(true);
            self.headers.insert(name, value);
        }
        self
    }

    pub fn timeout(mut self, timeout: Option<Duration>) -> HttpRequest {
        self.timeout = timeout;
        self
    }
}

/// A 2xx response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Map<String, Value>,
    /// Parsed JSON when the response says JSON, else text.
    pub body: Value,
    pub truncated: bool,
    pub attempts: u32,
}

impl HttpResponse {
    /// `{status, headers, body}` (+ `body_truncated`, `attempts` when notable).
    pub fn to_result(&self) -> Value {
        let mut result = json!({"status": self.status, "headers": self.headers, "body": self.body});
        if self.truncated {
            result["body_truncated"] = Value::Bool(true);
        }
        if self.attempts > 1 {
            result["attempts"] = json!(self.attempts);
        }
        result
    }
}

/// A URL without its query or credentials.
pub fn display_url(url: &Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
}

pub(super) fn header_map(headers: &HeaderMap) -> Map<String, Value> {
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
