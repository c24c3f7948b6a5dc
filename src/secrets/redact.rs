//! Secret values never leave the executor: `secret_*` arguments are
//! redacted wherever an action's request is shown (outcomes, `input.called`,
//! records), and a value an API echoes back is scrubbed from results and
//! errors.

use serde_json::{Map, Value};

use super::reference::{is_secret_name, SecretRef};

/// Replaces the value of every argument whose name marks it as a secret.
pub const REDACTED: &str = "[REDACTED]";

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

/// What to scrub from an action's result and error: the string values of
/// its `secret_*` arguments (those the policy or Secrets Manager gives),
/// each also as it may be shown otherwise ([`other_forms`]), longest first.
/// A `secret_*` key inside another argument is redacted where the request
/// is shown but is no pattern here: it may come from the alert (a tag
/// `secret_x: "malicious"`), and would let alert content rewrite results.
pub fn secret_values(args: &Map<String, Value>) -> Vec<String> {
    fn collect(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) if !s.is_empty() => out.push(s.clone()),
            // A Secrets Manager reference names a secret; it is not one.
            Value::Object(_) if SecretRef::parse(value).is_ok() => {}
            Value::Object(map) => map.values().for_each(|v| collect(v, out)),
            Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (name, value) in args {
        if is_secret_name(name) {
            collect(value, &mut out);
        }
    }
    let forms: Vec<String> = out.iter().flat_map(|secret| other_forms(secret)).collect();
    out.extend(forms);
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out.dedup();
    out
}

/// A secret as it may be shown other than as written: trimmed (a value
/// stored with a trailing newline still works), and a URL as the HTTP
/// client shows one in an error — normalised, without its query — and its
/// path alone (a Slack webhook's path is its credential).
fn other_forms(secret: &str) -> Vec<String> {
    let trimmed = secret.trim();
    let mut forms = vec![trimmed.to_string()];
    if let Some(url) = reqwest::Url::parse(trimmed).ok().filter(|url| url.has_host()) {
        forms.push(url.as_str().to_string());
        let port = url.port().map(|port| format!(":{port}")).unwrap_or_default();
        forms.push(format!(
            "{}://{}{port}{}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.path()
        ));
        if url.path().len() >= MIN_SECRET_PATH {
            forms.push(url.path().to_string());
        }
    }
    forms.retain(|form| !form.is_empty() && form != secret);
    forms
}

/// A URL's path shorter than this (`/`, `/api`) is not scrubbed on its own.
const MIN_SECRET_PATH: usize = 8;

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

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn echoed_secrets_are_scrubbed_from_results() {
        let secrets = secret_values(&args(
            json!({"secret_token": "tok-123", "secret_pair": {"k": "abc"}, "url": "u",
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

    #[test]
    fn a_secret_key_inside_another_argument_is_no_pattern() {
        // Alert data forwarded whole: its `secret_x` must not blank "malicious" in the result.
        let secrets = secret_values(&args(
            json!({"data": {"tags": {"secret_x": "malicious"}}, "secret_token": "tok-123"}),
        ));
        assert_eq!(secrets, vec!["tok-123".to_string()]);
        assert_eq!(scrub_text("verdict malicious", &secrets), "verdict malicious");
    }

    #[test]
    fn a_webhook_url_is_scrubbed_as_the_client_shows_it() {
        let secrets = secret_values(&args(json!({
            "secret_webhook_url": "https://Hooks.Slack.com:443/services/T0/B0/XYZ?x=1\n"
        })));
        for shown in [
            "POST https://hooks.slack.com/services/T0/B0/XYZ: HTTP 404",
            "https://hooks.slack.com/services/T0/B0/XYZ?x=1 failed",
            "no route for /services/T0/B0/XYZ",
            "sent https://Hooks.Slack.com:443/services/T0/B0/XYZ?x=1\n",
        ] {
            let scrubbed = scrub_text(shown, &secrets);
            assert!(!scrubbed.contains("XYZ"), "{shown} -> {scrubbed}");
        }
        // A short path alone is not a pattern.
        let secrets = secret_values(&args(json!({"secret_url": "https://api.example.com/v1?token=abc"})));
        assert!(!secrets.iter().any(|s| s == "/v1"), "{secrets:?}");
    }
}
