//! Secrets for `secret_*` action arguments: a literal (local runs) or a
//! reference `{"secret": "<name or ARN>", "key": "<JSON field>"}` resolved
//! through Secrets Manager at run time, cached in memory for a TTL so warm
//! invocations do not call Secrets Manager again.
//!
//! Errors name the secret, never its value.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use super::reference::{is_secret_name, SecretRef};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret {name:?} was not found")]
    NotFound { name: String },
    #[error("access to secret {name:?} was denied")]
    AccessDenied { name: String },
    #[error("secret {name:?} could not be read: {reason}")]
    Unavailable { name: String, reason: String },
    #[error("secret {name:?} has no string value")]
    NotAString { name: String },
    #[error("secret {name:?} is not a JSON object, so key {key:?} cannot be read from it")]
    NotJson { name: String, key: String },
    #[error("secret {name:?} has no key {key:?}")]
    MissingKey { name: String, key: String },
    #[error("{0}")]
    BadReference(String),
    #[error("secret references need Secrets Manager, which this mode does not use (pass a literal)")]
    NoSource,
}

/// A secret argument that could not be resolved: names the argument and
/// the secret, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argument `{arg}`: {error}")]
pub struct ArgSecretError {
    pub arg: String,
    pub error: SecretError,
}

/// Where secret values come from.
pub trait SecretSource: Send + Sync {
    fn fetch<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<String, SecretError>>;
}

/// Resolves `secret_*` arguments, caching fetched secrets for `ttl`.
pub struct SecretResolver {
    source: Option<Arc<dyn SecretSource>>,
    /// Leave references as they are (`play`: mocks need no secret values).
    passthrough: bool,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Arc<str>, Instant)>>,
}

impl SecretResolver {
    pub fn new(source: Arc<dyn SecretSource>, ttl: Duration) -> SecretResolver {
        SecretResolver {
            source: Some(source),
            passthrough: false,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Literals only: a reference is an error.
    pub fn literals_only() -> SecretResolver {
        SecretResolver {
            source: None,
            passthrough: false,
            ttl: Duration::ZERO,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Resolves nothing.
    pub fn passthrough() -> SecretResolver {
        SecretResolver {
            passthrough: true,
            ..SecretResolver::literals_only()
        }
    }

    /// `args` with every `secret_*` reference replaced by its value.
    pub async fn resolve_args(&self, args: &Map<String, Value>) -> Result<Map<String, Value>, ArgSecretError> {
        let mut resolved = args.clone();
        if self.passthrough {
            return Ok(resolved);
        }
        for (arg, value) in args {
            if !is_secret_name(arg) || value.is_string() || value.is_null() {
                continue;
            }
            let secret_error = |error| ArgSecretError {
                arg: arg.clone(),
                error,
            };
            let reference =
                SecretRef::parse(value).map_err(|reason| secret_error(SecretError::BadReference(reason)))?;
            let value = self.value(&reference).await.map_err(secret_error)?;
            resolved.insert(arg.clone(), Value::String(value));
        }
        Ok(resolved)
    }

    async fn value(&self, reference: &SecretRef) -> Result<String, SecretError> {
        let raw = self.fetch_cached(&reference.name).await?;
        let Some(key) = &reference.key else {
            return Ok(raw.to_string());
        };
        let not_json = || SecretError::NotJson {
            name: reference.name.clone(),
            key: key.clone(),
        };
        let object: Map<String, Value> = serde_json::from_str(&raw).map_err(|_| not_json())?;
        match object.get(key) {
            Some(Value::String(value)) => Ok(value.clone()),
            Some(Value::Null) | None => Err(SecretError::MissingKey {
                name: reference.name.clone(),
                key: key.clone(),
            }),
            Some(other) => Ok(other.to_string()),
        }
    }

    async fn fetch_cached(&self, name: &str) -> Result<Arc<str>, SecretError> {
        if let Some((value, fetched)) = self.cache.lock().expect("not poisoned").get(name) {
            if fetched.elapsed() < self.ttl {
                return Ok(value.clone());
            }
        }
        let source = self.source.as_ref().ok_or(SecretError::NoSource)?;
        let value: Arc<str> = source.fetch(name).await?.into();
        tracing::debug!(secret = %name, "secret fetched");
        self.cache
            .lock()
            .expect("not poisoned")
            .insert(name.to_string(), (value.clone(), Instant::now()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use serde_json::json;

    struct Counting {
        calls: AtomicUsize,
    }

    impl SecretSource for Counting {
        fn fetch<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<String, SecretError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                match name {
                    "pd" => Ok(r#"{"routing_key": "R0UT1NG", "n": 5}"#.to_string()),
                    "plain" => Ok("pl41n".to_string()),
                    _ => Err(SecretError::NotFound { name: name.to_string() }),
                }
            })
        }
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[tokio::test]
    async fn references_resolve_with_keys_and_are_cached() {
        let source = Arc::new(Counting {
            calls: AtomicUsize::new(0),
        });
        let resolver = SecretResolver::new(source.clone(), Duration::from_secs(300));
        let resolved = resolver
            .resolve_args(&args(json!({
                "secret_routing_key": {"secret": "pd", "key": "routing_key"},
                "secret_n": {"secret": "pd", "key": "n"},
                "secret_literal": "lit",
                "secret_plain": {"secret": "plain"},
                "not_secret": {"secret": "pd"}
            })))
            .await
            .unwrap();
        assert_eq!(resolved["secret_routing_key"], "R0UT1NG");
        assert_eq!(resolved["secret_n"], "5");
        assert_eq!(resolved["secret_literal"], "lit");
        assert_eq!(resolved["secret_plain"], "pl41n");
        assert_eq!(resolved["not_secret"], json!({"secret": "pd"}));
        assert_eq!(source.calls.load(Ordering::SeqCst), 2, "pd fetched once, plain once");
        resolver
            .resolve_args(&args(json!({"secret_x": {"secret": "pd"}})))
            .await
            .unwrap();
        assert_eq!(source.calls.load(Ordering::SeqCst), 2, "served from the cache");
    }

    #[tokio::test]
    async fn expired_entries_are_fetched_again() {
        let source = Arc::new(Counting {
            calls: AtomicUsize::new(0),
        });
        let resolver = SecretResolver::new(source.clone(), Duration::ZERO);
        for _ in 0..2 {
            resolver
                .resolve_args(&args(json!({"secret_x": {"secret": "plain"}})))
                .await
                .unwrap();
        }
        assert_eq!(source.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn errors_name_the_argument_and_secret_never_the_value() {
        let resolver = SecretResolver::new(
            Arc::new(Counting {
                calls: AtomicUsize::new(0),
            }),
            Duration::from_secs(1),
        );
        let cases = [
            (
                json!({"secret_a": {"secret": "gone"}}),
                "argument `secret_a`: secret \"gone\" was not found",
            ),
            (
                json!({"secret_a": {"secret": "pd", "key": "nope"}}),
                "argument `secret_a`: secret \"pd\" has no key \"nope\"",
            ),
            (
                json!({"secret_a": {"secret": "plain", "key": "k"}}),
                "argument `secret_a`: secret \"plain\" is not a JSON object, so key \"k\" cannot be read from it",
            ),
            (
                json!({"secret_a": {"name": "pd"}}),
                "argument `secret_a`: needs `secret`: a Secrets Manager name or ARN",
            ),
        ];
        for (input, expected) in cases {
            let err = resolver.resolve_args(&args(input)).await.unwrap_err().to_string();
            assert_eq!(err, expected);
            assert!(!err.contains("R0UT1NG") && !err.contains("pl41n"));
        }
        let err = SecretResolver::literals_only()
            .resolve_args(&args(json!({"secret_a": {"secret": "pd"}})))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("need Secrets Manager"), "{err}");
    }
}
