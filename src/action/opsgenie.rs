//! `opsgenie.create_alert`: Opsgenie Alert API (`POST /v2/alerts`,
//! `Authorization: GenieKey …`). The alias defaults to the Matano alert id,
//! so Opsgenie deduplicates repeats and retries.

use futures::future::BoxFuture;
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::render::{clean, clip, line, summary, Markup};
use super::vendor::base_url;
use super::vendor::{json_object, matano_alert_id, secret, string_list, url_with, BASE_URL, TIMEOUT};
use super::{Action, ActionCall, ActionError, ArgKind, ArgSpec};
use crate::http::{HttpClient, HttpRequest};

pub struct CreateAlert {
    client: HttpClient,
    base: String,
}

impl CreateAlert {
    pub fn new(client: HttpClient, base: String) -> CreateAlert {
        CreateAlert { client, base }
    }
}

const ARGS: &[ArgSpec] = &[
    ArgSpec::required("secret_api_key", ArgKind::Secret, "API integration key"),
    ArgSpec::optional(
        "message",
        ArgKind::String,
        "alert message, ≤130 characters (default: the title)",
    ),
    ArgSpec::optional(
        "alias",
        ArgKind::String,
        "deduplication alias (default: the Matano alert id, else the alert id)",
    ),
    ArgSpec::optional(
        "description",
        ArgKind::String,
        "description (default: a summary of the alert)",
    ),
    ArgSpec::optional(
        "priority",
        ArgKind::OneOf(&["P1", "P2", "P3", "P4", "P5"]),
        "P1–P5 (default: mapped from severity)",
    ),
    ArgSpec::optional("tags", ArgKind::StringList, "tags"),
    ArgSpec::optional(
        "details",
        ArgKind::StringMap,
        "key/value details (default: the alert's attrs)",
    ),
    ArgSpec::optional("source", ArgKind::String, "source (default: the alert's source)"),
    ArgSpec::optional(
        "responders",
        ArgKind::Any,
        "teams, users, escalations or schedules to notify: [{\"type\": \"team\", \"name\": \"SecOps\"}] (AlertChain: `responder_teams`)",
    ),
    BASE_URL,
    TIMEOUT,
];

/// Matano severities → Opsgenie priorities.
pub fn priority(severity: &str) -> &'static str {
    match severity {
        "critical" => "P1",
        "high" => "P2",
        "medium" => "P3",
        "low" => "P4",
        _ => "P5",
    }
}

impl Action for CreateAlert {
    fn uses(&self) -> &'static str {
        "opsgenie.create_alert"
    }

    fn args(&self) -> &'static [ArgSpec] {
        ARGS
    }

    fn aliases(&self) -> &'static [(&'static str, &'static str)] {
        &[("responder_teams", "responders")]
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let alert = call.alert;
            let priority = call.str_arg("priority").unwrap_or(priority(&alert.severity));
            if !["P1", "P2", "P3", "P4", "P5"].contains(&priority) {
                return Err(ActionError::BadArg {
                    arg: "priority".to_string(),
                    reason: format!("{priority:?} is not one of P1–P5"),
                });
            }
            let details = match call.args.get("details") {
                Some(Value::Object(map)) => Value::Object(map.clone()),
                _ => Value::Object(
                    alert
                        .attrs
                        .iter()
                        .map(|a| {
                            let value = a
                                .value
                                .as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| a.value.to_string());
                            (line(&a.key), Value::String(clip(&clean(&value), 8000)))
                        })
                        .collect::<Map<String, Value>>(),
                ),
            };
            let mut body = json!({
                "message": clip(&line(call.str_arg("message").unwrap_or(&alert.title)), 130),
                "alias": clip(call.str_arg("alias").or(matano_alert_id(alert)).unwrap_or(&alert.id), 512),
                "description": clip(&call.str_arg("description").map_or_else(|| summary(alert, Markup::Plain), clean), 15000),
                "priority": priority,
                "tags": string_list(&call, "tags"),
                "details": details,
                // Opsgenie refuses a source over 100 characters.
                "source": clip(&line(call.str_arg("source").unwrap_or(if alert.source.is_empty() { "alert-responder" } else { &alert.source })), 100),
            });
            match call.args.get("responders") {
                None | Some(Value::Null) => {}
                Some(responders @ Value::Array(items)) if items.iter().all(Value::is_object) => {
                    body["responders"] = responders.clone();
                }
                Some(_) => {
                    return Err(ActionError::BadArg {
                        arg: "responders".to_string(),
                        reason: "must be an array of objects ({type, id, name or username})".to_string(),
                    })
                }
            }
            let url = url_with(&base_url(&call, Some(&self.base))?, &["v2", "alerts"])?;
            let mut request = HttpRequest::new(Method::POST, url)
                .secret_header(
                    "authorization",
                    &format!("GenieKey {}", secret(&call, "secret_api_key")?),
                )
                .json(body)
                .timeout(super::http::timeout_arg(&call));
            // The alias deduplicates a repeated create.
            request.retry_unsafe = true;
            let response = self.client.send(request, call.deadline).await?;
            let answer = json_object("Opsgenie", &response)?;
            Ok(json!({
                "request_id": answer.get("requestId"),
                "requestId": answer.get("requestId"),
                "took": answer.get("took"),
                "result": answer.get("result"),
            }))
        })
    }
}
