//! `pagerduty.trigger` / `pagerduty.resolve`: PagerDuty Events API v2
//! (`POST /v2/enqueue`). The routing key travels in the body; `dedup_key`
//! defaults to the Matano alert id, so every change of one Matano alert
//! updates one PagerDuty incident, and retries cannot open a second one.

use futures::future::BoxFuture;
use reqwest::Method;
use serde_json::{json, Value};

use super::render::{clean, clip, headline, line};
use super::vendor::base_url;
use super::vendor::{json_object, matano_alert_id, secret, url_with, BASE_URL, TIMEOUT};
use super::{Action, ActionCall, ActionError, ArgKind, ArgSpec};
use crate::http::{HttpClient, HttpRequest};

pub struct Event {
    client: HttpClient,
    base: String,
    resolve: bool,
}

impl Event {
    pub fn trigger(client: HttpClient, base: String) -> Event {
        Event {
            client,
            base,
            resolve: false,
        }
    }
    pub fn resolve(client: HttpClient, base: String) -> Event {
        Event {
            client,
            base,
            resolve: true,
        }
    }
}

const TRIGGER_ARGS: &[ArgSpec] = &[
    ArgSpec::required(
        "secret_routing_key",
        ArgKind::Secret,
        "integration (routing) key of the PagerDuty service",
    ),
    ArgSpec::optional(
        "summary",
        ArgKind::String,
        "incident summary (default `[severity] title`)",
    ),
    ArgSpec::optional(
        "severity",
        ArgKind::OneOf(&["critical", "error", "warning", "info"]),
        "critical, error, warning or info (default: mapped from the alert)",
    ),
    ArgSpec::optional(
        "source",
        ArgKind::String,
        "affected system (default: the alert's source)",
    ),
    ArgSpec::optional(
        "dedup_key",
        ArgKind::String,
        "incident key (default: the Matano alert id, else the alert id)",
    ),
    ArgSpec::optional(
        "custom_details",
        ArgKind::Any,
        "details shown on the incident (default: the alert's attrs)",
    ),
    BASE_URL,
    TIMEOUT,
];

const RESOLVE_ARGS: &[ArgSpec] = &[
    ArgSpec::required(
        "secret_routing_key",
        ArgKind::Secret,
        "integration (routing) key of the PagerDuty service",
    ),
    ArgSpec::optional(
        "dedup_key",
        ArgKind::String,
        "incident key (default: the Matano alert id, else the alert id)",
    ),
    BASE_URL,
    TIMEOUT,
];

/// Matano severities → PagerDuty's four.
fn pagerduty_severity(severity: &str) -> &'static str {
    match severity {
        "critical" => "critical",
        "high" => "error",
        "medium" => "warning",
        _ => "info",
    }
}

impl Action for Event {
    fn uses(&self) -> &'static str {
        if self.resolve {
            "pagerduty.resolve"
        } else {
            "pagerduty.trigger"
        }
    }

    fn args(&self) -> &'static [ArgSpec] {
        if self.resolve {
            RESOLVE_ARGS
        } else {
            TRIGGER_ARGS
        }
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let alert = call.alert;
            let dedup_key = call
                .str_arg("dedup_key")
                .or(matano_alert_id(alert))
                .unwrap_or(&alert.id)
                .to_string();
            let mut body = json!({
                "routing_key": secret(&call, "secret_routing_key")?,
                "event_action": if self.resolve { "resolve" } else { "trigger" },
                "dedup_key": dedup_key,
            });
            if !self.resolve {
                let severity = call.str_arg("severity").unwrap_or(pagerduty_severity(&alert.severity));
                if !["critical", "error", "warning", "info"].contains(&severity) {
                    return Err(ActionError::BadArg {
                        arg: "severity".to_string(),
                        reason: format!("{severity:?} is not one of critical, error, warning, info"),
                    });
                }
                // Shown to people: the alert's text, cleaned as elsewhere.
                let details = call.args.get("custom_details").cloned().unwrap_or_else(|| {
                    Value::Object(
                        alert
                            .attrs
                            .iter()
                            .map(|a| {
                                let value = a.value.as_str().map_or_else(|| a.value.to_string(), str::to_string);
                                (line(&a.key), Value::String(clip(&clean(&value), 8000)))
                            })
                            .collect(),
                    )
                });
                let source = call
                    .str_arg("source")
                    .filter(|s| !s.is_empty())
                    .unwrap_or(if alert.source.is_empty() {
                        "alert-responder"
                    } else {
                        &alert.source
                    });
                body["payload"] = json!({
                    "summary": clip(&line(&call.str_arg("summary").map_or_else(|| headline(alert), str::to_string)), 1024),
                    "source": clip(&line(source), 255),
                    "severity": severity,
                    "custom_details": details,
                });
                // A link only to a web page: PagerDuty would show any other
                // scheme (`javascript:`) as a link too.
                body["links"] = Value::Array(
                    alert
                        .refs
                        .iter()
                        .filter(|r| r.url.starts_with("https://") || r.url.starts_with("http://"))
                        .map(|r| json!({"href": r.url, "text": clip(&line(&r.title), 1024)}))
                        .collect(),
                );
                body["client"] = json!("alert-responder");
            }
            let url = url_with(&base_url(&call, Some(&self.base))?, &["v2", "enqueue"])?;
            let mut request = HttpRequest::new(Method::POST, url)
                .json(body)
                .timeout(super::http::timeout_arg(&call));
            // The dedup key makes a repeated event harmless.
            request.retry_unsafe = true;
            let response = self.client.send(request, call.deadline).await?;
            let answer = json_object("PagerDuty", &response)?;
            Ok(json!({
                "status": answer.get("status").cloned().unwrap_or(Value::Null),
                "message": answer.get("message").cloned().unwrap_or(Value::Null),
                "dedup_key": answer.get("dedup_key").cloned().unwrap_or(Value::String(dedup_key)),
            }))
        })
    }
}
