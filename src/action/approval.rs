//! The actions that suspend a workflow: `approval.request` asks a human in
//! Slack (and at a signed callback URL), `wait` lets time pass. Both return
//! `pending`; the final result comes later (`interaction`, `resume`):
//! `{answer, user, answered_at}`, `{answer: "timeout"}`, `{waited_seconds}`.

use std::sync::Arc;

use chrono::{Duration as Span, Utc};
use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::render::{clip, headline, line, slack};
use super::slack::Section;
use super::vendor::{secret, string_list, BASE_URL, TIMEOUT};
use super::{Action, ActionCall, ActionError, ArgKind, ArgSpec};
use crate::http::HttpClient;
use crate::model::suspended::{APPROVAL_REQUEST, WAIT};

/// The longest a workflow waits: EventBridge Scheduler's one-time
/// schedules have no such bound, but a suspended workflow holds its
/// alert's state; a week covers a weekend and a holiday.
pub const MAX_WAIT_SECONDS: u64 = 7 * 24 * 3600;
const DEFAULT_APPROVAL_TIMEOUT: u64 = 3600;
const DEFAULT_CHOICES: [&str; 2] = ["approve", "deny"];
/// Slack's limits: five buttons in a row is readable, 75 characters a button.
const MAX_CHOICES: usize = 5;
const MAX_CHOICE_CHARS: usize = 75;

/// How a pending action can be answered: the token its Slack buttons
/// carry (accepted only with Slack's signature, from an approver) and, when
/// asked for, a callback URL (a bearer capability of its own).
#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    pub button_token: String,
    /// `<function URL>/callbacks/<token>`, when asked for and the URL is known.
    pub url: Option<String>,
}

/// Signs answer tokens (`interaction::Interactions` in the function).
pub trait Callbacks: Send + Sync {
    fn callback<'a>(
        &'a self,
        alert_id: &'a str,
        action_id: &'a str,
        with_url: bool,
    ) -> BoxFuture<'a, Result<Callback, String>>;
}

pub struct Request {
    client: HttpClient,
    slack: String,
    callbacks: Option<Arc<dyn Callbacks>>,
}

impl Request {
    pub fn new(client: HttpClient, slack: String, callbacks: Option<Arc<dyn Callbacks>>) -> Request {
        Request {
            client,
            slack,
            callbacks,
        }
    }
}

const REQUEST_ARGS: &[ArgSpec] = &[
    ArgSpec::required(
        "secret_token",
        ArgKind::Secret,
        "Slack bot token (xoxb-…) with chat:write",
    ),
    ArgSpec::required("channel", ArgKind::String, "channel id to ask in"),
    ArgSpec::optional(
        "text",
        ArgKind::String,
        "the question, in the policy's own mrkdwn (default: a summary of the alert)",
    ),
    ArgSpec::optional(
        "choices",
        ArgKind::Choices {
            max: MAX_CHOICES,
            chars: MAX_CHOICE_CHARS,
        },
        "the answers offered as buttons (default [\"approve\", \"deny\"], at most 5)",
    ),
    ArgSpec::optional(
        "approvers",
        ArgKind::StringList,
        "Slack user ids allowed to answer (default: anyone who can see the message)",
    ),
    ArgSpec::optional(
        "callback",
        ArgKind::Bool,
        "issue a callback URL other systems can answer at (default: only when there are no approvers: whoever holds the URL can answer)",
    ),
    ArgSpec::optional(
        "timeout_seconds",
        ArgKind::WholeIn(1, MAX_WAIT_SECONDS),
        "how long to wait for an answer before the result is {\"answer\": \"timeout\"} (default 3600, at most 7 days)",
    ),
    BASE_URL,
    TIMEOUT,
];

/// The offered answers: given or the default. Slack's limits, repeats and
/// the host's own answers are refused before the run, by the argument's
/// kind (`ArgKind::Choices`), as `check` refuses them.
fn choices_of(call: &ActionCall<'_>) -> Vec<String> {
    let given = string_list(call, "choices");
    match given.is_empty() {
        true => DEFAULT_CHOICES.iter().map(|c| c.to_string()).collect(),
        false => given,
    }
}

/// `timeout_seconds` / `seconds`, or `default`; its range (1 s to 7 days)
/// is the argument's kind (`ArgKind::WholeIn`), checked before the run.
fn seconds_arg(call: &ActionCall<'_>, arg: &str, default: Option<u64>) -> Result<u64, ActionError> {
    match call.args.get(arg).and_then(Value::as_f64) {
        Some(seconds) => Ok(seconds as u64),
        None => default.ok_or_else(|| ActionError::BadArg {
            arg: arg.to_string(),
            reason: "is required".to_string(),
        }),
    }
}

/// The message asking: the alert's blocks, the question, one button per
/// answer carrying the token (the interaction handler checks it).
fn approval_blocks(call: &ActionCall<'_>, question: &Section, choices: &[String], token: &str) -> Value {
    let mut blocks = match super::slack::blocks(call.alert, question) {
        Value::Array(blocks) => blocks,
        _ => Vec::new(),
    };
    let buttons: Vec<Value> = choices
        .iter()
        .enumerate()
        .map(|(index, choice)| {
            let mut button = json!({
                "type": "button",
                "action_id": format!("alert_responder_answer_{index}"),
                "text": {"type": "plain_text", "text": clip(&line(choice), MAX_CHOICE_CHARS)},
                "value": format!("{token}|{choice}"),
            });
            match choice.as_str() {
                "approve" | "approved" | "yes" => button["style"] = json!("primary"),
                "deny" | "denied" | "no" | "reject" => button["style"] = json!("danger"),
                _ => {}
            }
            button
        })
        .collect();
    blocks.push(json!({"type": "actions", "block_id": "alert_responder_answer", "elements": buttons}));
    Value::Array(blocks)
}

impl Action for Request {
    fn uses(&self) -> &'static str {
        APPROVAL_REQUEST
    }

    fn args(&self) -> &'static [ArgSpec] {
        REQUEST_ARGS
    }

    fn suspends(&self) -> bool {
        true
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let choices = choices_of(&call);
            let timeout = seconds_arg(&call, "timeout_seconds", Some(DEFAULT_APPROVAL_TIMEOUT))?;
            let approvers = string_list(&call, "approvers");
            // Given but empty (a list computed from data that was missing):
            // refused, rather than read as "anyone" with a bearer URL.
            if call.args.contains_key("approvers") && approvers.is_empty() {
                return Err(ActionError::BadArg {
                    arg: "approvers".to_string(),
                    reason: "is empty: nobody could answer (leave it out to let anyone in the channel answer)"
                        .to_string(),
                });
            }
            let token = secret(&call, "secret_token")?;
            let channel = call.str_arg("channel").unwrap_or_default();
            let callbacks = self.callbacks.as_ref().ok_or_else(|| {
                ActionError::NotConfigured(
                    "approval.request needs SLACK_SIGNING_SECRET (or _ID) or CALLBACK_SECRET (or _ID) to verify its answers"
                        .to_string(),
                )
            })?;
            let with_url = call
                .args
                .get("callback")
                .and_then(Value::as_bool)
                .unwrap_or(approvers.is_empty());
            // The key is a secret read from Secrets Manager: another try may work.
            let callback = callbacks
                .callback(&call.alert.id, call.action_id, with_url)
                .await
                .map_err(|reason| ActionError::Failed {
                    message: format!("approval.request: {reason}"),
                    result: None,
                    transient: true,
                })?;
            let question = match call.str_arg("text") {
                Some(text) => Section::Written(text.to_string()),
                None => Section::Summary,
            };
            let notification = format!("Approval requested: {}", slack(&headline(call.alert)));
            // The notification is data: no emphasis or link is read from it.
            let message = json!({
                "channel": channel,
                "text": clip(&notification, 3000),
                "mrkdwn": false,
                "blocks": approval_blocks(&call, &question, &choices, &callback.button_token),
            });
            let answer = super::slack::post_message(&self.client, &self.slack, &call, token, message).await?;
            let due_at = Utc::now() + Span::seconds(timeout as i64);
            Ok(json!({
                "status": "pending",
                "channel": answer.get("channel"),
                "ts": answer.get("ts"),
                "choices": choices,
                "approvers": approvers,
                "timeout_seconds": timeout,
                "due_at": due_at.to_rfc3339(),
                "callback_url": callback.url,
            }))
        })
    }
}

/// `wait`: the workflow's next round comes after `seconds`.
pub struct Wait;

const WAIT_ARGS: &[ArgSpec] = &[ArgSpec::required(
    "seconds",
    ArgKind::WholeIn(1, MAX_WAIT_SECONDS),
    "how long to wait (1 s to 7 days); the result is {\"waited_seconds\": N}",
)];

impl Action for Wait {
    fn uses(&self) -> &'static str {
        WAIT
    }

    fn args(&self) -> &'static [ArgSpec] {
        WAIT_ARGS
    }

    fn suspends(&self) -> bool {
        true
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let seconds = seconds_arg(&call, "seconds", None)?;
            let due_at = Utc::now() + Span::seconds(seconds as i64);
            Ok(json!({"status": "pending", "seconds": seconds, "due_at": due_at.to_rfc3339()}))
        })
    }
}
