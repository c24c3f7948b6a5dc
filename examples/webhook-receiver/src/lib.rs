//! An SNS HTTP(S) subscriber for alert-responder outcomes.
//!
//! Every message is checked before anything is done with it: the topic must
//! be allow-listed, the signing certificate must come over HTTPS from an SNS
//! host, and the signature (SignatureVersion 1: SHA1withRSA, 2:
//! SHA256withRSA) must verify over the fields SNS signs. Then subscription
//! confirmations are confirmed, and notifications are deduplicated by
//! `outcome_id` and forwarded (to a Slack incoming webhook in `main`).
//!
//! The certificate source and the forwarder are parameters, so tests use a
//! locally generated key pair and certificate and a recording forwarder.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use serde::Deserialize;
use serde_json::Value;
use x509_cert::der::{DecodePem, Encode};

/// An SNS message as delivered to HTTP subscribers.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnsMessage {
    #[serde(rename = "Type")]
    pub kind: String,
    pub message_id: String,
    pub topic_arn: String,
    pub message: String,
    pub timestamp: String,
    pub signature_version: String,
    pub signature: String,
    #[serde(rename = "SigningCertURL", alias = "SigningCertUrl")]
    pub signing_cert_url: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default, rename = "SubscribeURL", alias = "SubscribeUrl")]
    pub subscribe_url: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("not an SNS message: {0}")]
    Malformed(String),
    #[error("topic {0} is not allowed")]
    TopicNotAllowed(String),
    #[error("signing certificate URL {0} is not an SNS HTTPS URL")]
    UntrustedCertificateUrl(String),
    #[error("could not get the signing certificate: {0}")]
    Certificate(String),
    #[error("unsupported SignatureVersion {0:?}")]
    SignatureVersion(String),
    #[error("signature does not verify")]
    BadSignature,
    #[error("message is too old ({0})")]
    Stale(String),
    #[error("subscribe URL {0} is not an SNS HTTPS URL")]
    UntrustedSubscribeUrl(String),
}

/// Where signing certificates come from (HTTPS in production).
pub trait CertificateSource: Send + Sync {
    fn pem(&self, url: &str) -> Result<String, String>;
}

/// Where verified outcomes go, and how subscriptions are confirmed.
pub trait Destination: Send + Sync {
    fn forward(&self, outcome: &Value) -> Result<(), String>;
    fn confirm_subscription(&self, subscribe_url: &str) -> Result<(), String>;
}

/// What the HTTP layer answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    fn new(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            body: body.into(),
        }
    }
}

/// Whether a URL is HTTPS on an SNS host (`sns.<region>.amazonaws.com[.cn]`).
pub fn is_sns_https_url(raw: &str, path_suffix: Option<&str>) -> bool {
    let Ok(url) = url::Url::parse(raw) else { return false };
    let host = url.host_str().unwrap_or_default();
    let region_ok = |region: &str| {
        !region.is_empty()
            && region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let host_ok = host
        .strip_prefix("sns.")
        .and_then(|rest| {
            rest.strip_suffix(".amazonaws.com")
                .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))
        })
        .is_some_and(region_ok);
    url.scheme() == "https"
        && url.port().is_none()
        && host_ok
        && path_suffix.is_none_or(|suffix| url.path().ends_with(suffix))
}

/// The text SNS signs, per message type.
pub fn string_to_sign(message: &SnsMessage) -> Result<String, Rejection> {
    let mut text = String::new();
    let mut field = |name: &str, value: &str| {
        text.push_str(name);
        text.push('\n');
        text.push_str(value);
        text.push('\n');
    };
    match message.kind.as_str() {
        "Notification" => {
            field("Message", &message.message);
            field("MessageId", &message.message_id);
            if let Some(subject) = &message.subject {
                field("Subject", subject);
            }
            field("Timestamp", &message.timestamp);
            field("TopicArn", &message.topic_arn);
            field("Type", &message.kind);
        }
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
            let missing = |what| Rejection::Malformed(format!("{} without {what}", message.kind));
            field("Message", &message.message);
            field("MessageId", &message.message_id);
            field(
                "SubscribeURL",
                message
                    .subscribe_url
                    .as_deref()
                    .ok_or_else(|| missing("SubscribeURL"))?,
            );
            field("Timestamp", &message.timestamp);
            field("Token", message.token.as_deref().ok_or_else(|| missing("Token"))?);
            field("TopicArn", &message.topic_arn);
            field("Type", &message.kind);
        }
        other => return Err(Rejection::Malformed(format!("unknown Type {other:?}"))),
    }
    Ok(text)
}

/// Verifies an SNS message's signature with the certificate in `pem`.
pub fn verify_signature(message: &SnsMessage, pem: &str) -> Result<(), Rejection> {
    let certificate =
        x509_cert::Certificate::from_pem(pem.as_bytes()).map_err(|e| Rejection::Certificate(e.to_string()))?;
    let spki = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| Rejection::Certificate(e.to_string()))?;
    let key =
        RsaPublicKey::from_public_key_der(&spki).map_err(|e| Rejection::Certificate(format!("not an RSA key: {e}")))?;
    let signature = data_encoding::BASE64
        .decode(message.signature.as_bytes())
        .ok()
        .and_then(|bytes| Signature::try_from(bytes.as_slice()).ok())
        .ok_or(Rejection::BadSignature)?;
    let text = string_to_sign(message)?;
    let verified = match message.signature_version.as_str() {
        "1" => VerifyingKey::<sha1::Sha1>::new(key).verify(text.as_bytes(), &signature),
        "2" => VerifyingKey::<sha2::Sha256>::new(key).verify(text.as_bytes(), &signature),
        other => return Err(Rejection::SignatureVersion(other.to_string())),
    };
    verified.map_err(|_| Rejection::BadSignature)
}

/// Remembers the last `capacity` outcome ids.
struct Seen {
    order: VecDeque<String>,
    ids: HashSet<String>,
    capacity: usize,
}

impl Seen {
    /// True when `id` is new.
    fn insert(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        self.order.push_back(id.to_string());
        self.ids.insert(id.to_string());
        true
    }
}

pub struct Receiver {
    allowed_topics: HashSet<String>,
    certificates: Box<dyn CertificateSource>,
    destination: Box<dyn Destination>,
    /// Messages older than this are refused (replays of captured messages).
    max_age: chrono::Duration,
    seen: Mutex<Seen>,
    cert_cache: Mutex<HashMap<String, String>>,
}

impl Receiver {
    pub fn new(
        allowed_topics: impl IntoIterator<Item = String>,
        certificates: Box<dyn CertificateSource>,
        destination: Box<dyn Destination>,
    ) -> Receiver {
        Receiver {
            allowed_topics: allowed_topics.into_iter().collect(),
            certificates,
            destination,
            max_age: chrono::Duration::hours(1),
            seen: Mutex::new(Seen {
                order: VecDeque::new(),
                ids: HashSet::new(),
                capacity: 10_000,
            }),
            cert_cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn with_max_age(mut self, max_age: chrono::Duration) -> Receiver {
        self.max_age = max_age;
        self
    }

    /// Handles one POST body.
    pub fn handle(&self, body: &[u8]) -> Reply {
        match self.verified(body) {
            Err(rejection @ (Rejection::Malformed(_) | Rejection::SignatureVersion(_))) => {
                Reply::new(400, rejection.to_string())
            }
            Err(rejection @ Rejection::Certificate(_)) => Reply::new(502, rejection.to_string()),
            Err(rejection) => Reply::new(403, rejection.to_string()),
            Ok(message) => self.act(&message),
        }
    }

    fn verified(&self, body: &[u8]) -> Result<SnsMessage, Rejection> {
        let message: SnsMessage = serde_json::from_slice(body).map_err(|e| Rejection::Malformed(e.to_string()))?;
        if !self.allowed_topics.contains(&message.topic_arn) {
            return Err(Rejection::TopicNotAllowed(message.topic_arn));
        }
        if !is_sns_https_url(&message.signing_cert_url, Some(".pem")) {
            return Err(Rejection::UntrustedCertificateUrl(message.signing_cert_url));
        }
        let pem = self.certificate(&message.signing_cert_url)?;
        verify_signature(&message, &pem)?;
        let sent = chrono::DateTime::parse_from_rfc3339(&message.timestamp)
            .map_err(|e| Rejection::Malformed(format!("Timestamp: {e}")))?;
        if chrono::Utc::now().signed_duration_since(sent) > self.max_age {
            return Err(Rejection::Stale(message.timestamp));
        }
        Ok(message)
    }

    fn certificate(&self, url: &str) -> Result<String, Rejection> {
        if let Some(pem) = self.cert_cache.lock().unwrap().get(url) {
            return Ok(pem.clone());
        }
        let pem = self.certificates.pem(url).map_err(Rejection::Certificate)?;
        self.cert_cache.lock().unwrap().insert(url.to_string(), pem.clone());
        Ok(pem)
    }

    fn act(&self, message: &SnsMessage) -> Reply {
        match message.kind.as_str() {
            "SubscriptionConfirmation" => {
                let url = message.subscribe_url.as_deref().unwrap_or_default();
                if !is_sns_https_url(url, None) {
                    return Reply::new(403, Rejection::UntrustedSubscribeUrl(url.to_string()).to_string());
                }
                match self.destination.confirm_subscription(url) {
                    Ok(()) => Reply::new(200, "subscription confirmed"),
                    Err(err) => Reply::new(502, format!("could not confirm the subscription: {err}")),
                }
            }
            "UnsubscribeConfirmation" => Reply::new(200, "unsubscribed"),
            _ => {
                let outcome: Value = match serde_json::from_str(&message.message) {
                    Ok(outcome) => outcome,
                    Err(err) => return Reply::new(400, format!("Message is not an outcome: {err}")),
                };
                let id = outcome["outcome_id"]
                    .as_str()
                    .unwrap_or(&message.message_id)
                    .to_string();
                if !self.seen.lock().unwrap().insert(&id) {
                    return Reply::new(200, "duplicate");
                }
                match self.destination.forward(&outcome) {
                    Ok(()) => Reply::new(200, "forwarded"),
                    Err(err) => {
                        // Not delivered: forget it so SNS's redelivery is forwarded.
                        let mut seen = self.seen.lock().unwrap();
                        seen.ids.remove(&id);
                        seen.order.retain(|s| s != &id);
                        Reply::new(502, format!("could not forward: {err}"))
                    }
                }
            }
        }
    }
}

/// The text a Slack message shows for an outcome. Every value in it comes
/// from alert data or an action's error, which an attacker can influence:
/// each is made literal text (`&`, `<`, `>` escaped, so no `<!channel>`,
/// `<@U…>` or `<url|label>` from data; control and bidirectional
/// characters removed; one line; clipped).
pub fn slack_text(outcome: &Value) -> String {
    let field = |value: &Value, default: &str| literal(value.as_str().unwrap_or(default), 300);
    let status = field(&outcome["status"], "?");
    let title = field(&outcome["alert"]["title"], "(no alert)");
    let severity = field(&outcome["alert"]["severity"], "");
    let action = field(&outcome["action"]["id"], outcome["event_type"].as_str().unwrap_or(""));
    let mut text = format!("*{status}*: `{action}` for [{severity}] {title}");
    if let Some(error) = outcome["error"].as_str() {
        text.push_str(&format!("\n> {}", literal(error, 1000)));
    }
    text
}

/// `text` as literal Slack mrkdwn on one line, at most `max` characters.
fn literal(text: &str, max: usize) -> String {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    };
    let one_line: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
        .filter(|c| !hidden(*c))
        .collect();
    let mut clipped: String = one_line.chars().take(max).collect();
    if one_line.chars().count() > max {
        clipped.push('…');
    }
    clipped
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('`', "'")
}

/// Certificates over HTTPS (only SNS hosts reach here: the URL is checked first).
pub struct HttpsCertificates {
    agent: ureq::Agent,
}

impl Default for HttpsCertificates {
    fn default() -> Self {
        HttpsCertificates {
            agent: ureq::Agent::new_with_defaults(),
        }
    }
}

impl CertificateSource for HttpsCertificates {
    fn pem(&self, url: &str) -> Result<String, String> {
        let mut response = self.agent.get(url).call().map_err(|e| e.to_string())?;
        response.body_mut().read_to_string().map_err(|e| e.to_string())
    }
}

/// Forwards to a Slack incoming webhook; confirms subscriptions over HTTPS.
pub struct SlackWebhook {
    url: String,
    agent: ureq::Agent,
}

impl SlackWebhook {
    pub fn new(url: impl Into<String>) -> SlackWebhook {
        SlackWebhook {
            url: url.into(),
            agent: ureq::Agent::new_with_defaults(),
        }
    }
}

impl Destination for SlackWebhook {
    fn forward(&self, outcome: &Value) -> Result<(), String> {
        let body = serde_json::json!({ "text": slack_text(outcome) });
        self.agent
            .post(&self.url)
            .header("content-type", "application/json")
            .send(body.to_string().as_bytes())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn confirm_subscription(&self, subscribe_url: &str) -> Result<(), String> {
        self.agent
            .get(subscribe_url)
            .call()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Serves `receiver` on `server` until it is closed.
pub fn serve(server: &tiny_http::Server, receiver: &Receiver) {
    for mut request in server.incoming_requests() {
        let reply = if *request.method() != tiny_http::Method::Post {
            Reply::new(405, "POST only")
        } else {
            let mut body = Vec::new();
            match std::io::Read::read_to_end(&mut std::io::Read::take(request.as_reader(), 1 << 20), &mut body) {
                Ok(_) => receiver.handle(&body),
                Err(err) => Reply::new(400, err.to_string()),
            }
        };
        if reply.status != 200 {
            eprintln!("webhook-receiver: {} {}", reply.status, reply.body);
        }
        let _ = request.respond(tiny_http::Response::from_string(reply.body).with_status_code(reply.status));
    }
}
