//! The one HTTP client every action shares: timeouts, bounded retries with
//! jittered backoff (honouring `Retry-After`, never past the invocation
//! deadline), capped response bodies, and an SSRF guard.
//!
//! Alert content is attacker-influenced, so URLs built from it must not reach
//! the function's own network: by default requests to loopback, private,
//! link-local (including the instance metadata service), unique-local,
//! CGNAT, multicast and reserved addresses are refused — checked on IP
//! literals before sending and on every DNS answer when connecting (so DNS
//! rebinding is covered), on every redirect hop. The Lambda Runtime API
//! address is refused always. `HTTP_ALLOW_HOSTS` and `HTTP_ALLOW_PRIVATE` opt in.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde_json::{json, Map, Value};

/// Which destinations the client may reach.
#[derive(Debug, Clone, Default)]
pub struct HttpPolicy {
    /// Reach non-public addresses too (local development, tests).
    pub allow_private: bool,
    /// Hosts (exact, or `*.suffix`) and IP literals reachable whatever they resolve to.
    pub allow_hosts: Vec<String>,
    /// The Lambda Runtime API (`host:port`), refused always.
    pub runtime_api: Option<String>,
}

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

#[derive(Clone)]
pub struct HttpClient {
    /// Built on first use: loading root certificates costs milliseconds of
    /// cold start that invocations without HTTP actions never need.
    client: Arc<std::sync::OnceLock<Result<reqwest::Client, String>>>,
    settings: Arc<HttpSettings>,
}

impl HttpClient {
    pub fn new(settings: HttpSettings) -> Result<HttpClient, reqwest::Error> {
        Ok(HttpClient {
            client: Arc::new(std::sync::OnceLock::new()),
            settings: Arc::new(settings),
        })
    }

    fn client(&self) -> Result<&reqwest::Client, HttpError> {
        self.client
            .get_or_init(|| {
                crate::aws::install_crypto_provider();
                reqwest::Client::builder()
                    .connect_timeout(self.settings.connect_timeout)
                    .user_agent(concat!("alert-responder/", env!("CARGO_PKG_VERSION")))
                    // Redirects are followed here, hop by hop, so each is checked.
                    .redirect(reqwest::redirect::Policy::none())
                    .dns_resolver(GuardedResolver {
                        policy: self.settings.clone(),
                    })
                    .build()
                    .map_err(|err| root_cause(&err))
            })
            .as_ref()
            .map_err(|reason| HttpError::Client(reason.clone()))
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.settings
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
            tracing::info!(url = %display_url(&url), attempt, wait_ms = wait.as_millis() as u64, "retrying HTTP request");
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
            self.check_destination(&url).await?;
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
                builder = match &request.body {
                    Some(RequestBody::Json(value)) => builder.json(value),
                    Some(RequestBody::Text(text)) => builder.body(text.clone()),
                    Some(RequestBody::Bytes(bytes)) => builder.body(bytes.clone()),
                    None => builder,
                };
            }
            let response = builder
                .send()
                .await
                .map_err(|err| classify(err, &method, &shown, timeout))?;
            let status = response.status();
            if status.is_redirection() {
                let Some(location) = response.headers().get(LOCATION).and_then(|l| l.to_str().ok()) else {
                    return self.read(response, &method, &shown).await;
                };
                let next = url
                    .join(location)
                    .map_err(|e| HttpError::BadUrl(format!("redirect to an invalid location: {e}")))?;
                if !matches!(next.scheme(), "http" | "https") {
                    return Err(HttpError::Refused {
                        url: display_url(&next),
                        reason: "redirect to a non-http(s) URL".to_string(),
                    });
                }
                // Credentials stay with the host they were meant for.
                if next.host_str() != url.host_str() || next.port_or_known_default() != url.port_or_known_default() {
                    headers.remove(AUTHORIZATION);
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
            return self.read(response, &method, &shown).await;
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
    ) -> Result<HttpResponse, HttpError> {
        let status = response.status().as_u16();
        let headers = header_map(response.headers());
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("json"));
        let limit = self.settings.max_response_bytes;
        let mut bytes = Vec::new();
        let mut truncated = false;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = limit.saturating_sub(bytes.len());
                    if chunk.len() > room {
                        bytes.extend_from_slice(&chunk[..room]);
                        truncated = true;
                        break;
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(err) => {
                    return Err(HttpError::Transport {
                        method: method.clone(),
                        url: shown.to_string(),
                        reason: if err.is_timeout() {
                            "timed out reading the body".to_string()
                        } else {
                            root_cause(&err)
                        },
                    })
                }
            }
        }
        let body = match (is_json && !truncated).then(|| serde_json::from_slice::<Value>(&bytes)) {
            Some(Ok(value)) => value,
            _ => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
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

    /// Refuses the Runtime API, and non-public IP literals unless allowed.
    /// Host names are checked by the resolver when connecting.
    async fn check_destination(&self, url: &Url) -> Result<(), HttpError> {
        let policy = &self.settings.policy;
        let refused = |reason: String| HttpError::Refused {
            url: display_url(url),
            reason,
        };
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port_or_known_default().unwrap_or(0);
        if let Some(api) = &policy.runtime_api {
            if let Ok(api_addrs) = tokio::net::lookup_host(api.as_str()).await {
                let api_addrs: Vec<SocketAddr> = api_addrs.collect();
                let target: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), port)).await {
                    Ok(addrs) => addrs.collect(),
                    Err(_) => Vec::new(),
                };
                if target.iter().any(|t| api_addrs.contains(t)) {
                    return Err(refused("the Lambda Runtime API is never a destination".to_string()));
                }
            }
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            if !policy.allow_private && !policy.host_allowed(&host) && !is_public(ip) {
                return Err(refused(format!(
                    "{ip} is not a public address (set HTTP_ALLOW_HOSTS or HTTP_ALLOW_PRIVATE to allow it)"
                )));
            }
        }
        Ok(())
    }
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

impl HttpPolicy {
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.allow_hosts.iter().any(|pattern| {
            let pattern = pattern.to_ascii_lowercase();
            match pattern.strip_prefix("*.") {
                Some(suffix) => host.ends_with(&format!(".{suffix}")),
                None => host == pattern,
            }
        })
    }
}

/// Resolves names, keeping only addresses the policy allows.
struct GuardedResolver {
    policy: Arc<HttpSettings>,
}

/// A resolution refused by the SSRF guard.
#[derive(Debug)]
struct RefusedAddress(String);

impl std::fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RefusedAddress {}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let settings = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let policy = &settings.policy;
            if policy.allow_private || policy.host_allowed(&host) {
                return Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs);
            }
            let (public, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                addrs.into_iter().partition(|a| is_public(a.ip()));
            if public.is_empty() {
                let list: Vec<String> = refused.iter().map(|a| a.ip().to_string()).collect();
                return Err(Box::new(RefusedAddress(format!(
                    "{host} resolves only to non-public addresses ({}); set HTTP_ALLOW_HOSTS or HTTP_ALLOW_PRIVATE to allow it",
                    list.join(", ")
                ))) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether `ip` is a globally routable unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) embeds an IPv4 address.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                return is_public_v4(Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                ));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7, incl. fd00:ec2::254
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated)
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1)
                || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0))
            // IPv4-compatible
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_unspecified()
        || o[0] == 0
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, incl. 169.254.169.254
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || ip.is_broadcast()
        || ip.is_multicast()
        || o[0] >= 240)
}

fn classify(err: reqwest::Error, method: &Method, url: &str, timeout: Duration) -> HttpError {
    if let Some(refused) = find_source::<RefusedAddress>(&err) {
        return HttpError::Refused {
            url: url.to_string(),
            reason: refused.0.clone(),
        };
    }
    if err.is_timeout() {
        return HttpError::Timeout {
            method: method.clone(),
            url: url.to_string(),
            ms: timeout.as_millis(),
        };
    }
    if err.is_connect() {
        return HttpError::Connect {
            method: method.clone(),
            url: url.to_string(),
            reason: root_cause(&err),
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

/// A URL without its query or credentials.
pub fn display_url(url: &Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_and_non_public_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.0.170",
            "::1",
            "::",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} must not be public");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "5.205.62.253",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip} must be public");
        }
    }

    #[test]
    fn allow_hosts_match_exactly_or_by_suffix() {
        let policy = HttpPolicy {
            allow_hosts: vec!["intel.internal".into(), "*.corp.example".into()],
            ..HttpPolicy::default()
        };
        assert!(policy.host_allowed("intel.internal"));
        assert!(policy.host_allowed("Jira.Corp.Example"));
        assert!(!policy.host_allowed("corp.example"));
        assert!(!policy.host_allowed("evilintel.internal"));
    }

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
