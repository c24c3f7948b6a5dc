//! Actions: Rust executors named `<service>.<verb>`, looked up by the `uses`
//! of a `run` entry. Each declares its arguments so requests are checked
//! before anything runs, and `check` can validate policies offline.

pub mod github;
pub mod http;
pub mod jira;
pub mod openai;
pub mod opsgenie;
pub mod otx;
pub mod pagerduty;
pub mod slack;
pub mod sns;
pub mod vendor;
pub mod virustotal;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use crate::alert::Alert;
use crate::REDACTED;

/// The type an argument must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    String,
    Number,
    Bool,
    /// An object whose values are strings (headers, message attributes).
    StringMap,
    /// An array of strings (labels, tags).
    StringList,
    /// Any JSON value.
    Any,
    /// A literal string, or a Secrets Manager reference
    /// `{"secret": "<name or ARN>", "key": "<JSON field>"}` resolved at run time.
    Secret,
}

impl ArgKind {
    fn accepts(self, value: &Value) -> bool {
        match self {
            ArgKind::String => value.is_string(),
            ArgKind::Number => value.is_number(),
            ArgKind::Bool => value.is_boolean(),
            ArgKind::StringMap => value.as_object().is_some_and(|m| m.values().all(Value::is_string)),
            ArgKind::StringList => value.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            ArgKind::Any => true,
            ArgKind::Secret => value.is_string() || crate::secrets::SecretRef::parse(value).is_ok(),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ArgKind::String => "a string",
            ArgKind::Number => "a number",
            ArgKind::Bool => "a boolean",
            ArgKind::StringMap => "an object of strings",
            ArgKind::StringList => "an array of strings",
            ArgKind::Any => "any JSON value",
            ArgKind::Secret => "a string or {\"secret\": \"<name or ARN>\", \"key\": \"<field>\"}",
        }
    }
}

/// One declared argument of an action.
#[derive(Debug, Clone, Copy)]
pub struct ArgSpec {
    pub name: &'static str,
    pub kind: ArgKind,
    pub required: bool,
    pub doc: &'static str,
}

impl ArgSpec {
    pub const fn required(name: &'static str, kind: ArgKind, doc: &'static str) -> ArgSpec {
        ArgSpec {
            name,
            kind,
            required: true,
            doc,
        }
    }
    pub const fn optional(name: &'static str, kind: ArgKind, doc: &'static str) -> ArgSpec {
        ArgSpec {
            name,
            kind,
            required: false,
            doc,
        }
    }
}

/// Everything an executor gets for one run.
pub struct ActionCall<'a> {
    pub action_id: &'a str,
    /// Deterministic per (alert, action): receivers deduplicate on it.
    pub outcome_id: &'a str,
    pub alert: &'a Alert,
    pub args: &'a Map<String, Value>,
    /// When the invocation must be done; executors stop before it.
    pub deadline: Option<Instant>,
}

impl<'a> ActionCall<'a> {
    /// `wanted`, shortened to what is left before the deadline.
    pub fn timeout(&self, wanted: Duration) -> Duration {
        match self.deadline {
            Some(deadline) => wanted.min(deadline.saturating_duration_since(Instant::now())),
            None => wanted,
        }
    }

    pub fn str_arg(&self, name: &str) -> Option<&'a str> {
        self.args.get(name).and_then(Value::as_str)
    }
}

/// Why an action failed. `result` keeps what the action did get (an HTTP
/// error response, say) so later rounds and subscribers can see it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ActionError {
    #[error("unknown action {uses:?} (requested by run entry {id:?})")]
    Unknown { id: String, uses: String },
    #[error("argument `{arg}` {reason}")]
    BadArg { arg: String, reason: String },
    #[error("{message}")]
    Failed {
        message: String,
        result: Option<Value>,
        /// Connect errors, timeouts, 429 and 5xx: another try may succeed.
        transient: bool,
    },
    #[error("not configured: {0}")]
    NotConfigured(String),
    #[error("argument `{arg}`: {error}")]
    Secret {
        arg: String,
        error: crate::secrets::SecretError,
    },
}

impl ActionError {
    pub fn failed(message: impl Into<String>) -> ActionError {
        ActionError::Failed {
            message: message.into(),
            result: None,
            transient: false,
        }
    }

    /// A failure that may not happen again: worth retrying the invocation for.
    pub fn is_transient(&self) -> bool {
        match self {
            ActionError::Failed { transient, .. } => *transient,
            ActionError::Secret { error, .. } => {
                matches!(error, crate::secrets::SecretError::Unavailable { .. })
            }
            _ => false,
        }
    }

    pub fn result(&self) -> Option<&Value> {
        match self {
            ActionError::Failed { result, .. } => result.as_ref(),
            _ => None,
        }
    }
}

/// An executor.
pub trait Action: Send + Sync {
    /// `<service>.<verb>`.
    fn uses(&self) -> &'static str;
    fn args(&self) -> &'static [ArgSpec];
    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>>;
}

/// Vendor API base URLs: the vendor's public endpoint unless configured
/// (`<VENDOR>_BASE_URL`), and an action's `base_url` argument wins over both.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub slack: String,
    pub pagerduty: String,
    pub jira: Option<String>,
    pub github: String,
    pub opsgenie: String,
    pub virustotal: String,
    pub otx: String,
    pub openai: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            slack: "https://slack.com/api".to_string(),
            pagerduty: "https://events.pagerduty.com".to_string(),
            jira: None,
            github: "https://api.github.com".to_string(),
            opsgenie: "https://api.opsgenie.com".to_string(),
            virustotal: "https://www.virustotal.com/api/v3".to_string(),
            otx: "https://otx.alienvault.com".to_string(),
            openai: "https://api.openai.com/v1".to_string(),
        }
    }
}

/// The `base_url` argument, else the configured endpoint; no trailing slash.
pub fn base_url(call: &ActionCall<'_>, configured: Option<&str>) -> Result<String, ActionError> {
    call.str_arg("base_url")
        .or(configured)
        .map(|url| url.trim_end_matches('/').to_string())
        .ok_or_else(|| ActionError::BadArg {
            arg: "base_url".to_string(),
            reason: "is required (or set the service's *_BASE_URL)".to_string(),
        })
}

/// A short plain-text summary of an alert for messages and tickets.
pub fn alert_summary_text(alert: &Alert) -> String {
    let mut text = format!("[{}] {}", alert.severity, alert.title);
    if !alert.description.is_empty() {
        text.push_str(&format!("\n{}", alert.description));
    }
    for attr in &alert.attrs {
        let value = match &attr.value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        text.push_str(&format!("\n{}: {}", attr.key, value));
    }
    if let Some(link) = alert.refs.first() {
        text.push_str(&format!("\n{}", link.url));
    }
    text
}

/// `uses` → executor.
#[derive(Clone, Default)]
pub struct Registry {
    actions: BTreeMap<&'static str, Arc<dyn Action>>,
}

impl Registry {
    /// The built-in actions, sharing one HTTP client.
    pub fn builtin(
        http: crate::http::HttpClient,
        endpoints: &Endpoints,
        topics: Option<Arc<dyn sns::TopicPublisher>>,
        default_topic: Option<String>,
    ) -> Registry {
        let mut registry = Registry::default();
        registry.register(http::Fetch::new(http.clone()));
        registry.register(webhook::Post::new(http.clone()));
        registry.register(sns::Publish::new(topics, default_topic));
        registry.register(slack::Post::new(http.clone(), endpoints.slack.clone()));
        registry.register(pagerduty::Event::trigger(http.clone(), endpoints.pagerduty.clone()));
        registry.register(pagerduty::Event::resolve(http.clone(), endpoints.pagerduty.clone()));
        registry.register(jira::CreateIssue::new(http.clone(), endpoints.jira.clone()));
        registry.register(jira::AddComment::new(http.clone(), endpoints.jira.clone()));
        registry.register(github::CreateIssue::new(http.clone(), endpoints.github.clone()));
        registry.register(github::CreateComment::new(http.clone(), endpoints.github.clone()));
        registry.register(opsgenie::CreateAlert::new(http.clone(), endpoints.opsgenie.clone()));
        registry.register(virustotal::Lookup::new(http.clone(), endpoints.virustotal.clone()));
        registry.register(otx::Indicator::new(http.clone(), endpoints.otx.clone()));
        registry.register(openai::Chat::new(http, endpoints.openai.clone()));
        registry
    }

    /// The built-in actions on an HTTP client with `settings`, public vendor
    /// endpoints, and no SNS client.
    pub fn with_http(settings: crate::http::HttpSettings) -> Result<Registry, reqwest::Error> {
        Ok(Registry::builtin(
            crate::http::HttpClient::new(settings)?,
            &Endpoints::default(),
            None,
            None,
        ))
    }

    /// The built-in actions as `config` sets them up.
    pub fn for_config(
        config: &crate::config::Config,
        topics: Option<Arc<dyn sns::TopicPublisher>>,
    ) -> Result<Registry, reqwest::Error> {
        Ok(Registry::builtin(
            crate::http::HttpClient::new(config.http_settings())?,
            &config.endpoints,
            topics,
            config.outcome_topic_arn.clone(),
        ))
    }

    pub fn register(&mut self, action: impl Action + 'static) {
        self.actions.insert(action.uses(), Arc::new(action));
    }

    pub fn get(&self, uses: &str) -> Option<&Arc<dyn Action>> {
        self.actions.get(uses)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.actions.keys().copied()
    }

    /// Checks `uses` and the arguments against the declaration.
    pub fn validate(&self, id: &str, uses: &str, args: &Map<String, Value>) -> Result<&Arc<dyn Action>, ActionError> {
        let action = self.get(uses).ok_or_else(|| ActionError::Unknown {
            id: id.to_string(),
            uses: uses.to_string(),
        })?;
        validate_args(action.args(), args)?;
        Ok(action)
    }
}

fn validate_args(specs: &[ArgSpec], args: &Map<String, Value>) -> Result<(), ActionError> {
    for spec in specs {
        match args.get(spec.name) {
            None | Some(Value::Null) if spec.required => {
                return Err(ActionError::BadArg {
                    arg: spec.name.to_string(),
                    reason: format!("is required ({})", spec.kind.describe()),
                })
            }
            Some(value) if !value.is_null() && !spec.kind.accepts(value) => {
                return Err(ActionError::BadArg {
                    arg: spec.name.to_string(),
                    reason: format!("must be {}", spec.kind.describe()),
                })
            }
            _ => {}
        }
    }
    if let Some(unknown) = args.keys().find(|k| !specs.iter().any(|s| s.name == k.as_str())) {
        let known: Vec<_> = specs.iter().map(|s| s.name).collect();
        return Err(ActionError::BadArg {
            arg: unknown.clone(),
            reason: format!("is not an argument of this action (known: {})", known.join(", ")),
        });
    }
    Ok(())
}

/// Whether an argument holds a secret: its value never leaves the executor.
pub fn is_secret_name(name: &str) -> bool {
    name.starts_with("secret_")
}

/// A copy of `args` with every `secret_*` value, at any depth, replaced.
pub fn redact_args(args: &Map<String, Value>) -> Map<String, Value> {
    args.iter()
        .map(|(k, v)| {
            let v = if is_secret_name(k) {
                Value::String(REDACTED.to_string())
            } else {
                redact_value(v)
            };
            (k.clone(), v)
        })
        .collect()
}

/// The string values of every `secret_*` argument, at any depth.
pub fn secret_values(args: &Map<String, Value>) -> Vec<String> {
    fn collect(value: &Value, secret: bool, out: &mut Vec<String>) {
        match value {
            Value::String(s) if secret && !s.is_empty() => out.push(s.clone()),
            // A Secrets Manager reference names a secret; it is not one.
            Value::Object(_) if secret && crate::secrets::SecretRef::parse(value).is_ok() => {}
            Value::Object(map) => {
                for (k, v) in map {
                    collect(v, secret || is_secret_name(k), out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, secret, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    collect(&Value::Object(args.clone()), false, &mut out);
    out
}

/// Replaces every occurrence of a secret value inside `text`: an action's
/// result or error may echo what it sent (an auth header, a signed URL).
pub fn scrub_text(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |acc, secret| acc.replace(secret.as_str(), REDACTED))
}

/// [`scrub_text`] over every string (keys included) of a JSON value.
pub fn scrub_value(value: &Value, secrets: &[String]) -> Value {
    if secrets.is_empty() {
        return value.clone();
    }
    match value {
        Value::String(s) => Value::String(scrub_text(s, secrets)),
        Value::Array(items) => Value::Array(items.iter().map(|v| scrub_value(v, secrets)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (scrub_text(k, secrets), scrub_value(v, secrets)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn redact_value(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(redact_args(map)),
        Value::Array(items) => Value::Array(items.iter().map(redact_value).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registry() -> Registry {
        Registry::with_http(crate::http::HttpSettings::default()).unwrap()
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn unknown_uses_names_the_run_entry() {
        let err = registry()
            .validate("page-oncall", "pager.page", &Map::new())
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "unknown action \"pager.page\" (requested by run entry \"page-oncall\")"
        );
    }

    #[test]
    fn args_are_checked_against_the_declaration() {
        let r = registry();
        let err = r.validate("a", "http.fetch", &Map::new()).err().unwrap();
        assert!(err.to_string().starts_with("argument `url` is required"), "{err}");
        let err = r.validate("a", "http.fetch", &args(json!({"url": 5}))).err().unwrap();
        assert!(err.to_string().contains("`url` must be a string"), "{err}");
        let err = r
            .validate("a", "http.fetch", &args(json!({"url": "http://x", "methd": "GET"})))
            .err()
            .unwrap();
        assert!(err.to_string().contains("`methd` is not an argument"), "{err}");
        assert!(r
            .validate(
                "a",
                "http.fetch",
                &args(json!({"url": "http://x", "headers": {"a": "b"}}))
            )
            .is_ok());
    }

    #[test]
    fn echoed_secrets_are_scrubbed_from_results() {
        let secrets = secret_values(&args(
            json!({"secret_token": "tok-123", "x": {"secret_pair": {"k": "abc"}}, "url": "u",
                   "secret_ref": {"secret": "prod/x", "key": "routing_key"}}),
        ));
        // A reference is not a secret value: its name and key are not scrubbed.
        assert_eq!(secrets, vec!["tok-123".to_string(), "abc".to_string()]);
        let result = json!({"headers": {"authorization": "Bearer tok-123"}, "tok-123": ["abc"]});
        let text = scrub_value(&result, &secrets).to_string();
        assert!(!text.contains("tok-123") && !text.contains("abc"), "{text}");
        assert_eq!(scrub_text("bad token tok-123", &secrets), "bad token [REDACTED]");
    }

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let redacted = redact_args(&args(json!({
            "url": "http://x",
            "secret_token": "s3cr3t",
            "nested": {"secret_key": {"secret": "name"}, "list": [{"secret_x": 1}]}
        })));
        let text = Value::Object(redacted).to_string();
        assert!(
            !text.contains("s3cr3t") && !text.contains("\"name\"") && !text.contains(":1"),
            "{text}"
        );
        assert!(text.contains("http://x"));
    }
}
