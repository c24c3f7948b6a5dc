//! Answers to pending actions over HTTP: the function's URL (a Lambda
//! Function URL, API Gateway v2 payload) serves `POST /slack/interactions`
//! (Slack's signed form-encoded `payload`) and `POST /callbacks/<token>`
//! (JSON `{"answer": …}` with a signed token). Every request is verified
//! before any state is read; an answer is recorded first-wins, Slack's
//! message is updated, and the resume starts in another invocation.

mod endpoint;
mod verify;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use crate::action::approval::{Callback, Callbacks};
use crate::http::HttpClient;
use crate::secrets::SecretResolver;
pub use endpoint::{is_http_event, HttpAnswer, MAX_BODY_BYTES};
pub use verify::{slack_signature, verify_slack, CallbackKey, Purpose, SignatureError, TokenClaims};

/// Finds the function's own public URL (its Function URL) when none is configured.
pub trait FunctionUrl: Send + Sync {
    fn function_url(&self) -> BoxFuture<'_, Result<Option<String>, String>>;
}

/// The answer keys and where answers come in, read once from the configuration.
#[derive(Debug, Clone, Default)]
pub struct InteractionSettings {
    /// `SLACK_SIGNING_SECRET` (a literal) or `SLACK_SIGNING_SECRET_ID` (a
    /// Secrets Manager reference `{"secret": id}`).
    pub slack_signing_secret: Option<Value>,
    /// `CALLBACK_SECRET` / `CALLBACK_SECRET_ID`; else the Slack signing secret.
    pub callback_secret: Option<Value>,
    /// `INTERACTIONS_URL`: the public base URL of the function.
    pub public_url: Option<String>,
}

impl InteractionSettings {
    pub fn is_configured(&self) -> bool {
        self.slack_signing_secret.is_some() || self.callback_secret.is_some()
    }
}

/// Verifies answers and signs callback tokens.
pub struct Interactions {
    settings: InteractionSettings,
    secrets: SecretResolver,
    lookup: Option<Arc<dyn FunctionUrl>>,
    url: OnceCell<String>,
    http: HttpClient,
    slack_base: String,
}

impl std::fmt::Debug for Interactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interactions")
            .field("slack", &self.settings.slack_signing_secret.is_some())
            .field("callback_secret", &self.settings.callback_secret.is_some())
            .field("public_url", &self.settings.public_url)
            .finish()
    }
}

impl Interactions {
    pub fn new(
        settings: InteractionSettings,
        secrets: SecretResolver,
        lookup: Option<Arc<dyn FunctionUrl>>,
        http: HttpClient,
        slack_base: String,
    ) -> Interactions {
        Interactions {
            settings,
            secrets,
            lookup,
            url: OnceCell::new(),
            http,
            slack_base,
        }
    }

    /// A configured secret's value (a literal, or resolved from Secrets Manager).
    async fn secret(&self, setting: &Value, name: &str) -> Result<String, String> {
        let mut args = Map::new();
        args.insert("secret_value".to_string(), setting.clone());
        let resolved = self
            .secrets
            .resolve_args(&args)
            .await
            .map_err(|err| format!("{name}: {err}"))?;
        resolved
            .get("secret_value")
            .and_then(Value::as_str)
            .map(str::to_string)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("{name} is empty"))
    }

    async fn slack_secret(&self) -> Result<Option<String>, String> {
        match &self.settings.slack_signing_secret {
            Some(setting) => self.secret(setting, "SLACK_SIGNING_SECRET").await.map(Some),
            None => Ok(None),
        }
    }

    async fn callback_key(&self) -> Result<CallbackKey, String> {
        let secret = match (&self.settings.callback_secret, &self.settings.slack_signing_secret) {
            (Some(setting), _) => self.secret(setting, "CALLBACK_SECRET").await?,
            (None, Some(setting)) => self.secret(setting, "SLACK_SIGNING_SECRET").await?,
            (None, None) => {
                return Err(
                    "answers cannot be verified: set SLACK_SIGNING_SECRET(_ID) or CALLBACK_SECRET(_ID)".to_string(),
                )
            }
        };
        Ok(CallbackKey::derive(secret.as_bytes()))
    }

    /// The public base URL: configured, else the Function URL (looked up once).
    async fn public_url(&self) -> Option<String> {
        if let Some(url) = &self.settings.public_url {
            return Some(url.trim_end_matches('/').to_string());
        }
        let lookup = self.lookup.as_ref()?;
        if let Some(url) = self.url.get() {
            return Some(url.clone());
        }
        // Only a URL found is kept: a failed lookup is tried again next time.
        match lookup.function_url().await {
            Ok(Some(url)) => Some(
                self.url
                    .get_or_init(|| async { url.trim_end_matches('/').to_string() })
                    .await
                    .clone(),
            ),
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(error = %err, "could not look up the function URL; this approval carries no callback URL (set INTERACTIONS_URL)");
                None
            }
        }
    }
}

impl Callbacks for Interactions {
    fn callback<'a>(
        &'a self,
        alert_id: &'a str,
        action_id: &'a str,
        with_url: bool,
    ) -> BoxFuture<'a, Result<Callback, String>> {
        Box::pin(async move {
            let key = self.callback_key().await?;
            let url = match with_url {
                true => self
                    .public_url()
                    .await
                    .map(|base| format!("{base}/callbacks/{}", key.token(Purpose::Callback, alert_id, action_id))),
                false => None,
            };
            Ok(Callback {
                button_token: key.token(Purpose::Slack, alert_id, action_id),
                url,
            })
        })
    }
}
