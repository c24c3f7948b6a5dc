//! What marks a secret: an argument named `secret_*`, whose value is a
//! literal or a Secrets Manager reference.

use serde_json::Value;

/// Whether an argument holds a secret: its value never leaves the executor.
pub fn is_secret_name(name: &str) -> bool {
    name.starts_with("secret_")
}

/// A parsed secret reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub name: String,
    pub key: Option<String>,
}

impl SecretRef {
    pub fn parse(value: &Value) -> Result<SecretRef, String> {
        let object = value.as_object().ok_or("is not a secret reference object")?;
        let name = object
            .get("secret")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or("needs `secret`: a Secrets Manager name or ARN")?;
        let key = match object.get("key") {
            None | Some(Value::Null) => None,
            Some(Value::String(key)) => Some(key.clone()),
            Some(_) => return Err("`key` must be a string".to_string()),
        };
        if let Some(unknown) = object.keys().find(|k| *k != "secret" && *k != "key") {
            return Err(format!(
                "unknown field `{unknown}` (a reference has `secret` and `key`)"
            ));
        }
        Ok(SecretRef {
            name: name.to_string(),
            key,
        })
    }
}
