//! The secret source on AWS Secrets Manager (`GetSecretValue`).

use std::sync::OnceLock;

use aws_types::SdkConfig;
use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::json_api::{JsonApi, Service};
use crate::secrets::{SecretError, SecretSource};

const SECRETS_MANAGER: Service = Service {
    name: "secretsmanager",
    target: "secretsmanager",
    content_type: "application/x-amz-json-1.1",
};

/// AWS Secrets Manager, on the environment's configuration read on first
/// use (no AWS call until a policy uses a secret), or on one given.
#[derive(Default)]
pub struct SecretsManager {
    api: OnceLock<JsonApi>,
}

impl SecretsManager {
    pub fn new(sdk: &SdkConfig) -> SecretsManager {
        SecretsManager {
            api: OnceLock::from(JsonApi::new(sdk, &SECRETS_MANAGER)),
        }
    }
}

impl SecretSource for SecretsManager {
    fn fetch<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<String, SecretError>> {
        Box::pin(async move {
            let api = self
                .api
                .get_or_init(|| JsonApi::new(&super::sdk_config(), &SECRETS_MANAGER));
            match api.call("GetSecretValue", &json!({ "SecretId": name })).await {
                Ok(mut answer) => match answer.remove("SecretString") {
                    Some(Value::String(secret)) => Ok(secret),
                    _ => Err(SecretError::NotAString { name: name.to_string() }),
                },
                // The code, never the message: nothing of an answer about a
                // secret reaches an error.
                Err(err) => Err(match err.code.as_deref() {
                    Some("ResourceNotFoundException") => SecretError::NotFound { name: name.to_string() },
                    Some("AccessDeniedException") => SecretError::AccessDenied { name: name.to_string() },
                    Some(code) => SecretError::Unavailable {
                        name: name.to_string(),
                        reason: code.to_string(),
                    },
                    None => SecretError::Unavailable {
                        name: name.to_string(),
                        reason: err.reason,
                    },
                }),
            }
        })
    }
}
