//! Lambda mode: init once (config, policies, clients), then serve SNS events.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

use crate::action::sns::TopicPublisher;
use crate::action::Registry;
use crate::config::Config;
use crate::event::ingest_lambda_event;
use crate::outcome::{Publisher, SnsPublisher};
use crate::pipeline::{HandleError, Responder, Summary};
use crate::policy::{PolicyError, PolicySet};
use crate::secrets::{SecretResolver, SecretsManager};
use crate::state::DynamoState;

/// Time kept back from the invocation deadline to publish outcomes.
const PUBLISH_MARGIN: Duration = Duration::from_millis(1500);

/// Why the function could not start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("policies: {0}")]
    Policy(#[from] PolicyError),
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("OUTCOME_TOPIC_ARN is required in Lambda mode")]
    NoOutcomeTopic,
}

/// Builds the responder for Lambda: outcomes go to `OUTCOME_TOPIC_ARN`.
pub async fn init(config: &Config) -> Result<Responder, InitError> {
    let topic = config.outcome_topic_arn.clone().ok_or(InitError::NoOutcomeTopic)?;
    let policies = PolicySet::load(&config.policies, config.policy_timeout)?.with_engine(config.policy_engine);
    let sdk = crate::aws::sdk_config();
    let sns = aws_sdk_sns::Client::new(&sdk);
    let publisher: Arc<dyn Publisher> = Arc::new(SnsPublisher::new(sns.clone(), topic.clone()));
    let registry = Registry::for_config(config, Some(Arc::new(sns) as Arc<dyn TopicPublisher>))?;
    // Made on first use: building an SDK client builds its TLS connector.
    let secrets = SecretResolver::new(Arc::new(SecretsManager::default()), config.secret_cache_ttl);
    tracing::info!(files = policies.files().len(), schemas = ?policies.schemas(), dry_run = config.dry_run, state_table = ?config.state_table, "initialized");
    let responder = Responder::new(config, policies, registry, secrets, publisher);
    Ok(with_state_table(responder, config, &sdk))
}

/// Adds the DynamoDB state table when `STATE_TABLE` names one.
pub fn with_state_table(responder: Responder, config: &Config, sdk: &aws_types::SdkConfig) -> Responder {
    match &config.state_table {
        Some(table) => responder.with_state(Arc::new(DynamoState::new(aws_sdk_dynamodb::Client::new(sdk), table))),
        None => responder,
    }
}

/// Serves invocations until the runtime stops.
pub async fn serve(responder: Responder, default_schema: String) -> Result<(), lambda_runtime::Error> {
    let responder = Arc::new(responder);
    let default_schema = Arc::new(default_schema);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let responder = responder.clone();
        let default_schema = default_schema.clone();
        async move { handle(&responder, &default_schema, event).await }
    }))
    .await
}

/// One invocation. The payload is taken as plain JSON so that a malformed
/// event is rejected with an outcome rather than failed (and retried) by the
/// runtime's deserializer.
pub async fn handle(
    responder: &Responder,
    default_schema: &str,
    event: LambdaEvent<Value>,
) -> Result<Summary, HandleError> {
    // lambda_runtime's "Lambda runtime invoke" span already carries requestId.
    let deadline = deadline_instant(event.context.deadline);
    let records = ingest_lambda_event(&event.payload, default_schema);
    let result = responder.handle(records, deadline).await;
    let function = event.context.env_config.function_name.as_str();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let lines = match &result {
        Ok(summary) => crate::metrics::emf_lines(function, summary, false, now_ms),
        Err(err) => crate::metrics::emf_lines(
            function,
            &Summary::default(),
            matches!(err, HandleError::Publish(_)),
            now_ms,
        ),
    };
    // EMF goes to stdout as whole lines, beside the JSON logs.
    for line in lines {
        println!("{line}");
    }
    match &result {
        Ok(summary) => tracing::info!(
            records = summary.records,
            rejected = summary.rejected,
            alerts = summary.alerts,
            actions = summary.actions,
            outcomes = summary.outcomes,
            "invocation done"
        ),
        Err(err) => tracing::error!(error = %err, "invocation failed; Lambda will retry the event"),
    }
    result
}

/// The runtime's deadline (epoch milliseconds) as an `Instant`, less the
/// margin kept for publishing.
fn deadline_instant(deadline_ms: u64) -> Option<Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_millis() as u64;
    let remaining = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Some(Instant::now() + remaining.saturating_sub(PUBLISH_MARGIN))
}

/// Tells the Runtime API that init failed, so Lambda reports the reason.
pub async fn report_init_error(runtime_api: &str, error: &InitError) {
    let url = format!("http://{runtime_api}/2018-06-01/runtime/init/error");
    let body = serde_json::json!({"errorType": "Runtime.InitError", "errorMessage": error.to_string()});
    crate::aws::install_crypto_provider();
    let client = reqwest::Client::new();
    if let Err(err) = client
        .post(url)
        .header("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
        .json(&body)
        .send()
        .await
    {
        tracing::error!(error = %err, "could not report the init error to the Runtime API");
    }
}

impl From<HandleError> for lambda_runtime::Diagnostic {
    fn from(err: HandleError) -> Self {
        let error_type = match &err {
            HandleError::Publish(_) => "AlertResponder.PublishError",
            HandleError::State(_) => "AlertResponder.StateError",
            HandleError::Retry { .. } => "AlertResponder.RetryableActions",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_string(),
            error_message: err.to_string(),
        }
    }
}
