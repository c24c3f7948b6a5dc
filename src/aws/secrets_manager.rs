//! The secret source on AWS Secrets Manager.

use futures::future::BoxFuture;

use crate::secrets::{SecretError, SecretSource};

/// AWS Secrets Manager, with the client made on first use.
#[derive(Default)]
pub struct SecretsManager {
    client: tokio::sync::OnceCell<aws_sdk_secretsmanager::Client>,
}

impl SecretsManager {
    pub fn with_client(client: aws_sdk_secretsmanager::Client) -> SecretsManager {
        SecretsManager {
            client: tokio::sync::OnceCell::new_with(Some(client)),
        }
    }
}

impl SecretSource for SecretsManager {
    fn fetch<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<String, SecretError>> {
        Box::pin(async move {
            use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
            let client = self
                .client
                .get_or_init(|| async { aws_sdk_secretsmanager::Client::new(&super::sdk_config()) })
                .await;
            match client.get_secret_value().secret_id(name).send().await {
                Ok(output) => output
                    .secret_string
                    .ok_or_else(|| SecretError::NotAString { name: name.to_string() }),
                Err(err) => Err(match err.code() {
                    Some("ResourceNotFoundException") => SecretError::NotFound { name: name.to_string() },
                    Some("AccessDeniedException") => SecretError::AccessDenied { name: name.to_string() },
                    Some(code) => SecretError::Unavailable {
                        name: name.to_string(),
                        reason: code.to_string(),
                    },
                    None => SecretError::Unavailable {
                        name: name.to_string(),
                        reason: super::error_chain(&err),
                    },
                }),
            }
        })
    }
}
