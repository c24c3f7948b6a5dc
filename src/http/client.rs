//! The one HTTP client every action shares: timeouts, bounded retries with
//! jittered backoff (honouring `Retry-After`, never past the invocation
//! deadline), capped response bodies, redirects followed hop by hop through
//! the SSRF guard (`guard`).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde_json::{json, Map, Value};

use super::guard::{check_destination, GuardedResolver, HttpPolicy, RefusedAddress};
use super::request::{display_url, header_map, HttpError, HttpRequest, HttpResponse, RequestBody};

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    pub default_timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub max_response_bytes: usize,
    pub max_redirects: u32,
    pub policy: HttpPolicy,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(5),
            default_timeout: Duration::from_secs(10),
            max_retries: 2,
            max_response_bytes: 1024 * 1024,
            max_redirects: 5,
            policy: HttpPolicy::default(),
        }
    }
}

#[derive(Clone)]
pub struct HttpClient {
    /// Built on first use: invocations without HTTP actions never need it
    /// (its TLS configuration is the process's, `tls::client_builder`).
    client: Arc<std::sync::OnceLock<Result<reqwest::Client, String>>>,
    settings: Arc<HttpSettings>,
    /// Shared with the resolver, which checks every DNS answer.
    policy: Arc<HttpPolicy>,
}

impl HttpClient {
    pub fn new(settings: HttpSettings) -> HttpClient {
        HttpClient {
            client: Arc::new(std::sync::OnceLock::new()),
            policy: Arc::new(settings.policy.clone()),
            settings: Arc::new(settings),
        }
    }

    fn client(&self) -> Result<&reqwest::Client, HttpError> {
        self.client
            .get_or_init(|| {
                crate::tls::client_builder()?
                    .connect_timeout(self.settings.connect_timeout)
                    .user_agent(concat!("alert-responder/", env!("CARGO_PKG_VERSION")))
                    // Redirects are followed here, hop by hop, so each is checked.
                    .redirect(reqwest::redirect::Policy::none())
                    // No proxy from the environment (HTTPS_PROXY…): a proxy
                    // resolves the names, and the guard would see only its own.
                    .no_proxy()
                    .dns_resolver(GuardedResolver {
                        policy: self.policy.clone(),
                    })
                    .build()
                    .map_err(|err| root_cause(&err))
            })
            .as_ref()
            .map_err(|reason| HttpError::Client(reason.clone()))
    }

    /// Sends `request`, retrying and following redirects; a non-2xx final
    /// status is an error that keeps the response.
    pub async fn send(&self, request: HttpRequest, deadline: Option<Instant>) -> Result<HttpResponse, HttpError> {
        let url = Url::parse(&request.url).map_err(|e| HttpError::BadUrl(format!("is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::BadUrl(format!(
                "must be http or https, not {}",
                url.scheme()
            )));
        }
        let timeout = request.timeout.unwrap_or(self.settings.default_timeout);
        let idempotent = matches!(
            request.method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        let mut attempt = 0;
        loop {
            attempt += 1;
            let err = match self
                .send_following_redirects(&request, url.clone(), timeout, deadline)
                .await
            {
                Ok(response) => {
                    return Ok(HttpResponse {
                        attempts: attempt,
                        ..response
                    })
                }
                Err(err) => err,
            };
            let retry_after = match &err {
                HttpError::Status { status, result, .. } => {
                    let retryable = *status == 429 || (*status >= 500 && (idempotent || request.retry_unsafe));
                    if !retryable {
                        return Err(with_attempts(err, attempt));
                    }
                    retry_after(result)
                }
                // Nothing reached the server: safe to retry whatever the method.
                HttpError::Connect { .. } => None,
                _ => return Err(err),
            };
            if attempt > self.settings.max_retries {
                return Err(with_attempts(err, attempt));
            }
            let wait = retry_after
                .unwrap_or_else(|| backoff(attempt))
                .min(Duration::from_secs(30));
            if let Some(deadline) = deadline {
                // Waiting and another attempt must both fit before the deadline.
                if Instant::now() + wait + Duration::from_millis(100) >= deadline {
                    return Err(with_attempts(err, attempt));
                }
            }
            // The host only: a path can be a secret (a Slack webhook's is).
            tracing::info!(
                host = url.host_str().unwrap_or_default(),
                attempt,
                wait_ms = wait.as_millis() as u64,
                "retrying HTTP request"
            );
            tokio::time::sleep(wait).await;
        }
    }

    async fn send_following_redirects(
        &self,
        request: &HttpRequest,
        mut url: Url,
        timeout: Duration,
        deadline: Option<Instant>,
    ) -> Result<HttpResponse, HttpError> {
        let mut method = request.method.clone();
        let mut headers = request.headers.clone();
        let mut send_body = true;
        for _hop in 0..=self.settings.max_redirects {
            check_destination(&self.policy, &url).await?;
            let shown = display_url(&url);
            let timeout = match deadline {
                Some(deadline) => timeout.min(deadline.saturating_duration_since(Instant::now())),
                None => timeout,
            };
            if timeout.is_zero() {
                return Err(HttpError::Deadline { method, url: shown });
            }
            let mut builder = self
                .client()?
                .request(method.clone(), url.clone())
                .headers(headers.clone())
                .timeout(timeout);
            if send_body {
                builder = with_body(builder, request.body.as_ref());
            }
            let response = builder
                .send()
                .await
                .map_err(|err| classify(err, &method, &shown, timeout))?;
            let status = response.status();
            let location = response.headers().get(LOCATION).and_then(|l| l.to_str().ok());
            if let (true, Some(location)) = (status.is_redirection(), location) {
                let next = redirect_target(&url, location)?;
                // Credentials stay with the origin they were meant for, in
                // whatever header they travel (`Authorization`, `x-apikey`, a
                // signature): another host, port or scheme gets only headers
                // known to carry none.
                if next.scheme() != url.scheme()
                    || next.host_str() != url.host_str()
                    || next.port_or_known_default() != url.port_or_known_default()
                {
                    headers = cross_host_headers(&headers);
                }
                if status == StatusCode::SEE_OTHER
                    || ((status == StatusCode::MOVED_PERMANENTLY || status == StatusCode::FOUND)
                        && method == Method::POST)
                {
                    method = Method::GET;
                    send_body = false;
                    headers.remove(CONTENT_TYPE);
                }
                url = next;
                continue;
            }
            return self.read(response, &method, &shown, &sent_secrets(&headers)).await;
        }
        Err(HttpError::TooManyRedirects {
            url: display_url(&url),
            max: self.settings.max_redirects,
        })
    }

    async fn read(
        &self,
        mut response: reqwest::Response,
        method: &Method,
        shown: &str,
        secrets: &[String],
    ) -> Result<HttpResponse, HttpError> {
        let status = response.status().as_u16();
        let headers = header_map(response.headers());
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("json"));
        let (bytes, truncated) = read_capped(&mut response, self.settings.max_response_bytes)
            .await
            .map_err(|err| HttpError::Transport {
                method: method.clone(),
                url: shown.to_string(),
                reason: if err.is_timeout() {
                    "timed out reading the body".to_string()
                } else {
                    root_cause(&err)
                },
            })?;
        let body = match (is_json && !truncated).then(|| serde_json::from_slice::<Value>(&bytes)) {
            Some(Ok(value)) => value,
            _ => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
        };
        // A server that echoes what it was sent must not hand back a
        // credential this request carried: a derived one (Jira's Basic
        // `email:token` in base64, a GitHub App's JWT) is no argument the
        // executor knows to scrub.
        let (body, headers) = match secrets.is_empty() {
            true => (body, headers),
            false => (
                crate::secrets::scrub_value(&body, secrets),
                match crate::secrets::scrub_value(&Value::Object(headers), secrets) {
                    Value::Object(headers) => headers,
                    _ => Map::new(),
                },
            ),
        };
        let response = HttpResponse {
            status,
            headers,
            body,
            truncated,
            attempts: 1,
        };
        if (200..300).contains(&status) {
            Ok(response)
        } else {
            Err(HttpError::Status {
                method: method.clone(),
                url: shown.to_string(),
                status,
                result: response.to_result(),
            })
        }
    }
}

fn with_body(builder: reqwest::RequestBuilder, body: Option<&RequestBody>) -> reqwest::RequestBuilder {
    match body {
        Some(RequestBody::Json(value)) => builder.json(value),
        Some(RequestBody::Text(text)) => builder.body(text.clone()),
        Some(RequestBody::Bytes(bytes)) => builder.body(bytes.clone()),
        None => builder,
    }
}

/// Where a redirect leads, if it may be followed at all.
fn redirect_target(url: &Url, location: &str) -> Result<Url, HttpError> {
    let next = url
        .join(location)
        .map_err(|e| HttpError::BadUrl(format!("redirect to an invalid location: {e}")))?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(HttpError::Refused {
            url: display_url(&next),
            reason: "redirect to a non-http(s) URL".to_string(),
        });
    }
    Ok(next)
}

/// The body, up to `limit` bytes; true when it was cut.
async fn read_capped(response: &mut reqwest::Response, limit: usize) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit.saturating_sub(bytes.len());
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            return Ok((bytes, true));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok((bytes, false))
}

/// The headers a redirect to another host keeps: those that carry no
/// credential.
fn cross_host_headers(headers: &HeaderMap) -> HeaderMap {
    const KEPT: [&str; 4] = ["accept", "content-type", "user-agent", "idempotency-key"];
    headers
        .iter()
        .filter(|(name, _)| KEPT.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// Records in a status error's result how many attempts were made.
fn with_attempts(mut err: HttpError, attempts: u32) -> HttpError {
    if let HttpError::Status { result, .. } = &mut err {
        if attempts > 1 {
            result["attempts"] = json!(attempts);
        }
    }
    err
}

fn classify(err: reqwest::Error, method: &Method, url: &str, timeout: Duration) -> HttpError {
    if let Some(refused) = find_source::<RefusedAddress>(&err) {
        return HttpError::Refused {
            url: url.to_string(),
            reason: refused.0.clone(),
        };
    }
    if crate::tls::refused_certificate(&err) {
        return HttpError::Certificate {
            method: method.clone(),
            url: url.to_string(),
            reason: root_cause(&err),
        };
    }
    // Before the timeout: a connect that timed out reached no server, so it
    // is retried as any connect error (and is not the request's timeout).
    if err.is_connect() {
        return HttpError::Connect {
            method: method.clone(),
            url: url.to_string(),
            reason: root_cause(&err),
        };
    }
    if err.is_timeout() {
        return HttpError::Timeout {
            method: method.clone(),
            url: url.to_string(),
            ms: timeout.as_millis(),
        };
    }
    HttpError::Transport {
        method: method.clone(),
        url: url.to_string(),
        reason: root_cause(&err),
    }
}

fn find_source<'a, T: std::error::Error + 'static>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a T> {
    let mut source = Some(err);
    while let Some(current) = source {
        if let Some(found) = current.downcast_ref::<T>() {
            return Some(found);
        }
        source = current.source();
    }
    None
}

fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut source = err;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

/// `Retry-After` in seconds or as an HTTP date, from a response result.
fn retry_after(result: &Value) -> Option<Duration> {
    let value = result["headers"][RETRY_AFTER.as_str()].as_str()?;
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    (when.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().ok()
}

/// Exponential backoff with jitter: 200 ms × 2^(attempt-1), between half and all of it.
fn backoff(attempt: u32) -> Duration {
    let base = 200u64.saturating_mul(1 << (attempt - 1).min(6));
    let random = RandomState::new().build_hasher().finish();
    Duration::from_millis(base / 2 + random % (base / 2 + 1))
}

/// The credentials in `headers` (those marked sensitive): a value's part
/// after its scheme (`Basic …`, `Bearer …`: an echo reads `Bearer
/// [REDACTED]`), else the whole value.
fn sent_secrets(headers: &HeaderMap) -> Vec<String> {
    let mut secrets = Vec::new();
    for value in headers.values().filter(|value| value.is_sensitive()) {
        let Ok(text) = value.to_str() else { continue };
        match text.split_once(' ') {
            Some((_, credential)) if credential.len() >= 8 => secrets.push(credential.to_string()),
            _ => secrets.push(text.to_string()),
        }
    }
    secrets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(
            retry_after(&json!({"headers": {"retry-after": "7"}})),
            Some(Duration::from_secs(7))
        );
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let parsed = retry_after(&json!({"headers": {"retry-after": soon}})).unwrap();
        assert!(
            parsed > Duration::from_secs(25) && parsed <= Duration::from_secs(30),
            "{parsed:?}"
        );
        assert_eq!(retry_after(&json!({"headers": {}})), None);
    }

    #[test]
    fn backoff_grows_with_jitter_inside_bounds() {
        for attempt in 1..=4 {
            let base = 200u64 << (attempt - 1);
            let wait = backoff(attempt).as_millis() as u64;
            assert!(wait >= base / 2 && wait <= base, "attempt {attempt}: {wait} ms");
        }
    }
}
