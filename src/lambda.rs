//! Lambda mode: serve SNS events with a responder built once at init.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

use crate::app::InitError;
use crate::config::SchemaRouting;
use crate::ingest::ingest_lambda_event;
use crate::pipeline::{HandleError, Responder, Summary};

/// Time kept back from the invocation deadline to publish outcomes.
const PUBLISH_MARGIN: Duration = Duration::from_millis(1500);

/// Serves invocations until the runtime stops.
pub async fn serve(responder: Responder, routing: SchemaRouting) -> Result<(), lambda_runtime::Error> {
    let responder = Arc::new(responder);
    let routing = Arc::new(routing);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let responder = responder.clone();
        let routing = routing.clone();
        async move { handle(&responder, &routing, event).await }
    }))
    .await
}

/// One invocation. The payload is taken as plain JSON so that a malformed
/// event is rejected with an outcome rather than failed (and retried) by the
/// runtime's deserializer.
pub async fn handle(
    responder: &Responder,
    routing: &SchemaRouting,
    event: LambdaEvent<Value>,
) -> Result<Summary, HandleError> {
    // lambda_runtime's "Lambda runtime invoke" span already carries requestId.
    let deadline = deadline_instant(event.context.deadline);
    let records = ingest_lambda_event(&event.payload, routing);
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
    crate::tls::install_crypto_provider();
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
            HandleError::NamespaceBusy(_) => "AlertResponder.NamespaceBusy",
            HandleError::Retry { .. } => "AlertResponder.RetryableActions",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_string(),
            error_message: err.to_string(),
        }
    }
}
