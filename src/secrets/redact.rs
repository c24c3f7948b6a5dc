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

/// The string values of every `secret_*` argument, at any depth.
pub fn secret_values(args: &Map<String, Value>) -> Vec<String> {
    fn collect(value: &Value, secret: bool, out: &mut Vec<String>) {
        match value {
            Value::String(s) if secret && !s.is_empty() => out.push(s.clone()),
            // A Secrets Manager reference names a secret; it is not one.
            Value::Object(_) if secret && SecretRef::parse(value).is_ok() => {}
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

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
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
