//! Lambda mode: serve SNS events with a responder built once at init.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

use crate::app::InitError;
use crate::bundle::Refresher;
use crate::config::SchemaRouting;
use crate::deadline::PUBLISH_MARGIN;
use crate::ingest::{ingest_lambda_event, ingest_sqs_event, is_sqs_event};
use crate::interaction::{is_http_event, HttpAnswer, Interactions};
use crate::metrics::Faults;
use crate::pipeline::{BatchResponse, HandleError, Responder, Summary};
use crate::wakeup::Wakeup;

/// What the handler needs besides the responder, read from `Config` at init.
#[derive(Debug, Clone)]
pub struct LambdaSettings {
    pub routing: SchemaRouting,
    /// Records of one SQS batch decided at a time.
    pub batch_concurrency: usize,
    /// Serves the function URL (answers to pending actions), when configured.
    pub interactions: Option<Arc<Interactions>>,
}

/// What an invocation answers: SNS invocations their counts; SQS batches
/// the records to deliver again (`ReportBatchItemFailures`).
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Response {
    Summary(Summary),
    Batch(BatchResponse),
    /// A function URL's HTTP response.
    Http(Value),
}

impl From<&str> for LambdaSettings {
    /// A default schema, no topic mapping, the default batch concurrency.
    fn from(default_schema: &str) -> LambdaSettings {
        LambdaSettings {
            routing: SchemaRouting::from(default_schema),
            batch_concurrency: crate::config::Config::default().batch_concurrency,
            interactions: None,
        }
    }
}

impl Response {
    /// The counts of an SNS invocation (a batch answers its failures instead).
    pub fn summary(self) -> Option<Summary> {
        match self {
            Response::Summary(summary) => Some(summary),
            Response::Batch(_) | Response::Http(_) => None,
        }
    }
}

/// Serves invocations until the runtime stops; `refresher` re-checks the
/// policy bundles between them.
pub async fn serve(
    responder: Responder,
    settings: LambdaSettings,
    refresher: Option<Refresher>,
) -> Result<(), lambda_runtime::Error> {
    let responder = Arc::new(responder);
    let settings = Arc::new(settings);
    let refresher = Arc::new(refresher);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let responder = responder.clone();
        let settings = settings.clone();
        let refresher = refresher.clone();
        async move {
            let refused = match refresher.as_ref() {
                Some(refresher) => refresher.refresh_if_due(responder.decider()).await,
                None => 0,
            };
            handle_with(&responder, &settings, event, refused).await
        }
    }))
    .await
}

/// One invocation. The payload is taken as plain JSON so that a malformed
/// event is rejected with an outcome rather than failed (and retried) by the
/// runtime's deserializer.
pub async fn handle(
    responder: &Responder,
    settings: &LambdaSettings,
    event: LambdaEvent<Value>,
) -> Result<Response, HandleError> {
    handle_with(responder, settings, event, 0).await
}

/// [`handle`], `bundles_refused` bundle versions having been refused just
/// before (a metric).
async fn handle_with(
    responder: &Responder,
    settings: &LambdaSettings,
    event: LambdaEvent<Value>,
    bundles_refused: usize,
) -> Result<Response, HandleError> {
    // lambda_runtime's "Lambda runtime invoke" span already carries requestId.
    let deadline = deadline_instant(event.context.deadline);
    let function = event.context.env_config.function_name.as_str();
    if let Some(wakeups) = responder.decider().wakeups() {
        wakeups.learn_function(&event.context.invoked_function_arn);
    }
    if is_http_event(&event.payload) {
        let answer = match &settings.interactions {
            Some(interactions) => interactions.serve(responder, &event.payload).await,
            None => HttpAnswer::not_configured(),
        };
        count_refused(function, bundles_refused);
        return Ok(Response::Http(answer.to_event()));
    }
    if let Some(wakeup) = Wakeup::of_event(&event.payload) {
        let wakeup = match wakeup {
            Ok(wakeup) => wakeup,
            Err(reason) => {
                // Not retried: a malformed self-event will not heal.
                tracing::error!(reason = %reason, "ignored an alert_responder event");
                count_refused(function, bundles_refused);
                return Ok(Response::Summary(Summary::default()));
            }
        };
        let (summary, result) = responder
            .wake_counted(&wakeup, deadline, Some(&event.context.request_id))
            .await;
        return reported(function, summary, result, bundles_refused);
    }
    if is_sqs_event(&event.payload) {
        let records = ingest_sqs_event(&event.payload, &settings.routing);
        let handled = responder
            .handle_batch(
                records,
                deadline,
                settings.batch_concurrency,
                Some(&event.context.request_id),
            )
            .await;
        let faults = Faults {
            publish_failed: handled.publish_failed,
            records_failed: handled.records_failed,
            bundles_refused,
            records_retried: handled.response.batch_item_failures.len(),
        };
        report(function, &handled.summary, None, faults);
        for (item_id, cause) in &handled.causes {
            tracing::warn!(item_id = %item_id, cause = %cause, "record left on the queue for a retry");
        }
        return Ok(Response::Batch(handled.response));
    }
    let records = ingest_lambda_event(&event.payload, &settings.routing);
    let (summary, result) = responder
        .handle_invocation_counted(records, deadline, Some(&event.context.request_id))
        .await;
    reported(function, summary, result, bundles_refused)
}

/// An invocation's metrics and log line written: `summary` is what it did,
/// up to its error when it failed.
fn reported(
    function: &str,
    summary: Summary,
    result: Result<(), HandleError>,
    bundles_refused: usize,
) -> Result<Response, HandleError> {
    let faults = faults_of(&result, bundles_refused);
    report(function, &summary, result.as_ref().err(), faults);
    result.map(|()| Response::Summary(summary))
}

fn faults_of<T>(result: &Result<T, HandleError>, bundles_refused: usize) -> Faults {
    Faults {
        publish_failed: matches!(result, Err(HandleError::Publish(_))),
        records_failed: matches!(result, Err(HandleError::Records(_))),
        bundles_refused,
        records_retried: 0,
    }
}

/// EMF metric lines and the invocation's log line. `summary` is what the
/// invocation did, up to `error` when it failed.
/// The metrics of an invocation that decided nothing (a button click, an
/// ignored event), written only when bundles were refused before it: the
/// refusal is counted once, by the invocation that follows it.
fn count_refused(function: &str, bundles_refused: usize) {
    if bundles_refused > 0 {
        let faults = Faults {
            bundles_refused,
            ..Faults::default()
        };
        write_metrics(function, &Summary::default(), faults);
    }
}

fn report(function: &str, summary: &Summary, error: Option<&HandleError>, faults: Faults) {
    write_metrics(function, summary, faults);
    match error {
        None => tracing::info!(
            records = summary.records,
            rejected = summary.rejected,
            alerts = summary.alerts,
            actions = summary.actions,
            outcomes = summary.outcomes,
            "invocation done"
        ),
        Some(err) => tracing::error!(error = %err, "invocation failed; Lambda will retry the event"),
    }
}

/// EMF lines for one invocation, to stdout as whole lines beside the JSON
/// logs, in one write: `println!` of a line longer than stdout's buffer
/// (1 KiB, and the invocation line is longer) took two writes, three
/// system calls per invocation where one will do. A stdout that cannot be
/// written loses the metrics, not the invocation.
fn write_metrics(function: &str, summary: &Summary, faults: Faults) {
    use std::io::Write;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut text = String::new();
    for line in crate::metrics::emf_lines(function, summary, faults, now_ms) {
        text.push_str(&line);
        text.push('\n');
    }
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// The runtime's deadline (epoch milliseconds) as an `Instant`, less the
/// margin kept for publishing. None when there is none, or when it had
/// passed before the invocation began: Lambda never sends that, so the
/// clocks disagree (or the Runtime API is not Lambda's), and deciding
/// nothing for want of time would fail every invocation; the policy
/// timeout and the action timeouts still bound the work.
fn deadline_instant(deadline_ms: u64) -> Option<Instant> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_millis() as u64;
    if deadline_ms <= now_ms {
        if deadline_ms != 0 {
            tracing::warn!(
                deadline_ms,
                now_ms,
                "the invocation's deadline had passed when it arrived; deciding without one"
            );
        }
        return None;
    }
    let remaining = Duration::from_millis(deadline_ms - now_ms);
    let now = Instant::now();
    // With less than the margin left the decisions' deadline is already
    // past (nothing starts), and publishing keeps to what is left of
    // Lambda's: not the whole margin from now.
    Some(match remaining.checked_sub(PUBLISH_MARGIN) {
        Some(left) => now + left,
        None => now.checked_sub(PUBLISH_MARGIN - remaining).unwrap_or(now),
    })
}

/// Tells the Runtime API that init failed, so Lambda reports the reason.
pub async fn report_init_error(runtime_api: &str, error: &InitError) {
    let url = format!("http://{runtime_api}/2018-06-01/runtime/init/error");
    let body = serde_json::json!({"errorType": "Runtime.InitError", "errorMessage": error.to_string()});
    // Plain HTTP, but a reqwest client builds TLS anyway: on the built-in
    // roots, so that roots that failed init do not silence its report (and
    // no panic without any, as `Client::new` would).
    let built =
        crate::tls::plain_http_client_builder().and_then(|builder| builder.build().map_err(|err| err.to_string()));
    let client = match built {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "could not report the init error to the Runtime API: no HTTP client");
            return;
        }
    };
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
            HandleError::Records(_) => "AlertResponder.DecisionRecordsError",
            HandleError::NamespaceBusy(_) => "AlertResponder.NamespaceBusy",
            HandleError::WorkflowBusy(_) => "AlertResponder.WorkflowBusy",
            HandleError::Deadline(_) => "AlertResponder.Deadline",
            HandleError::Retry { .. } => "AlertResponder.RetryableActions",
            HandleError::Wakeup(_) => "AlertResponder.WakeupError",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_string(),
            error_message: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch_ms(offset: Duration, later: bool) -> u64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        (if later { now + offset } else { now - offset }).as_millis() as u64
    }

    #[test]
    fn a_deadline_keeps_the_publish_margin_and_one_already_past_is_none() {
        let soon = deadline_instant(epoch_ms(Duration::from_secs(10), true)).unwrap();
        let left = soon.saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(8) && left <= Duration::from_millis(8500),
            "{left:?}"
        );
        // Less than the margin left: the decisions' deadline has passed, by
        // as much as the margin is short (publishing then has what is left).
        let late = deadline_instant(epoch_ms(Duration::from_millis(1000), true)).unwrap();
        let past = Instant::now().saturating_duration_since(late);
        assert!(
            past >= Duration::from_millis(400) && past <= Duration::from_millis(520),
            "{past:?}"
        );
        assert_eq!(deadline_instant(0), None);
        // AWS's documentation example, long past.
        assert_eq!(deadline_instant(1_542_409_706_888), None);
        assert_eq!(deadline_instant(epoch_ms(Duration::from_secs(1), false)), None);
    }
}
