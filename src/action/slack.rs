//! `slack.post`: a Block Kit message through an incoming webhook
//! (`secret_webhook_url`) or `chat.postMessage` with a bot token
//! (`secret_token` + `channel`). With a token, the message threads under
//! the one Matano's Slack destination posted (`destination_to_alert_info`'s
//! `ts`) when there is one.

use futures::future::BoxFuture;
use reqwest::Method;
use serde_json::{json, Value};

use super::render::{clip, headline, line, slack, slack_field, slack_link, slack_mrkdwn, slack_plain, summary, Markup};
use super::vendor::base_url;
use super::vendor::{json_object, url_with, BASE_URL, TIMEOUT};
use super::{Action, ActionCall, ActionError, ArgKind, ArgRule, ArgSpec};
use crate::http::{HttpClient, HttpRequest};
use crate::model::Alert;

pub struct Post {
    client: HttpClient,
    base: String,
}

impl Post {
    pub fn new(client: HttpClient, base: String) -> Post {
        Post { client, base }
    }
}

const ARGS: &[ArgSpec] = &[
    ArgSpec::optional(
        "secret_webhook_url",
        ArgKind::Secret,
        "incoming webhook URL (or use secret_token + channel)",
    ),
    ArgSpec::optional(
        "secret_token",
        ArgKind::Secret,
        "bot token (xoxb-…) for chat.postMessage",
    ),
    ArgSpec::optional(
        "channel",
        ArgKind::String,
        "channel id or name, with secret_token (legacy incoming webhooks honour it too)",
    ),
    ArgSpec::optional(
        "body",
        ArgKind::String,
        "the message's section in the policy's own mrkdwn; with it, `text` is the notification text (AlertChain's)",
    ),
    ArgSpec::optional(
        "color",
        ArgKind::String,
        "colour bar of the message, e.g. #2EB67D (sent as an attachment, AlertChain's)",
    ),
    ArgSpec::optional(
        "text",
        ArgKind::String,
        "message text (default: a summary of the alert)",
    ),
    ArgSpec::optional(
        "thread_destination",
        ArgKind::String,
        "Matano destination whose message to thread under (default: the first with a `ts`)",
    ),
    BASE_URL,
    TIMEOUT,
];

const RULES: &[ArgRule] = &[
    ArgRule::ExactlyOne(&["secret_webhook_url", "secret_token"]),
    ArgRule::Requires("secret_token", "channel"),
];

/// Title, severity and source, the attributes, the text, a link. Every
/// part from alert data is literal text (`render`); `text` is the policy's
/// own markup when it wrote one, else the escaped summary.
/// The message's section: the host's summary of the alert (plain text), or
/// what the policy wrote (its own `mrkdwn`).
pub(super) enum Section {
    Summary,
    Written(String),
}

/// Slack's longest field text, and section or context text.
const MAX_FIELD: usize = 2000;
const MAX_TEXT: usize = 3000;

/// The alert's blocks. Everything from data is plain text (Slack has no
/// escape for `*`, `_`, `~` or backticks in `mrkdwn`); the one `mrkdwn`
/// the host writes is the ref's link, around its escaped title.
pub(super) fn blocks(alert: &Alert, section: &Section) -> Value {
    let mut fields = vec![
        slack_plain(&clip(
            &format!("Severity\n{}", slack(&line(&alert.severity))),
            MAX_FIELD,
        )),
        slack_plain(&clip(&format!("Source\n{}", slack(&line(&alert.source))), MAX_FIELD)),
    ];
    for attr in alert.attrs.iter().take(8) {
        fields.push(slack_plain(&clip(&slack_field(&attr.key, &attr.value), MAX_FIELD)));
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": clip(&line(&alert.title), 150), "emoji": false}}),
        json!({"type": "section", "fields": fields.into_iter().take(10).collect::<Vec<_>>()}),
    ];
    let text = match section {
        Section::Summary => Some(slack_plain(&clip(&summary(alert, Markup::SlackPlain), MAX_TEXT))),
        Section::Written(text) if !text.is_empty() => Some(slack_mrkdwn(&clip(text, MAX_TEXT))),
        Section::Written(_) => None,
    };
    if let Some(text) = text {
        blocks.push(json!({"type": "section", "text": text}));
    }
    if let Some(link) = alert.refs.first() {
        let linked = slack_link(&link.url, &link.title);
        let element = match linked.chars().count() <= MAX_TEXT {
            true => slack_mrkdwn(&linked),
            // Too long to be a link: its text, clipped.
            false => slack_plain(&clip(&slack(&line(&format!("{} {}", link.title, link.url))), MAX_TEXT)),
        };
        blocks.push(json!({"type": "context", "elements": [element]}));
    }
    Value::Array(blocks)
}

/// `chat.postMessage` with a bot token: Slack's answer, or a failure
/// (Slack reports errors in the body of a 200) keeping the response.
pub(super) async fn post_message(
    client: &HttpClient,
    base: &str,
    call: &ActionCall<'_>,
    token: &str,
    message: Value,
) -> Result<serde_json::Map<String, Value>, ActionError> {
    let url = url_with(&base_url(call, Some(base))?, &["chat.postMessage"])?;
    let request = HttpRequest::new(Method::POST, url)
        .secret_header("authorization", &format!("Bearer {token}"))
        .json(message)
        .timeout(super::http::timeout_arg(call));
    let response = client.send(request, call.deadline).await?;
    let answer = json_object("Slack", &response)?;
    if answer.get("ok") != Some(&Value::Bool(true)) {
        return Err(ActionError::Failed {
            transient: false,
            message: format!(
                "Slack error: {}",
                answer.get("error").and_then(Value::as_str).unwrap_or("unknown")
            ),
            result: Some(response.to_result()),
        });
    }
    Ok(answer.clone())
}

/// The `ts` of the Slack message a Matano destination posted for this alert.
pub fn thread_ts(alert: &Alert, destination: Option<&str>) -> Option<String> {
    let info = alert.data.get("destination_to_alert_info")?.as_object()?;
    let ts_of = |value: &Value| -> Option<String> {
        let parsed: Value = serde_json::from_str(value.as_str()?).ok()?;
        parsed.get("ts")?.as_str().map(str::to_string)
    };
    match destination {
        Some(name) => ts_of(info.get(name)?),
        None => info.values().find_map(ts_of),
    }
}

impl Action for Post {
    fn uses(&self) -> &'static str {
        "slack.post"
    }

    fn args(&self) -> &'static [ArgSpec] {
        ARGS
    }

    fn aliases(&self) -> &'static [(&'static str, &'static str)] {
        &[("secret_url", "secret_webhook_url")]
    }

    fn rules(&self) -> &'static [ArgRule] {
        RULES
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let alert = call.alert;
            // AlertChain's form: `body` is the section, `text` the
            // notification text. Ours: `text` is the section.
            let (section, notification) = match (call.str_arg("body"), call.str_arg("text")) {
                (Some(body), text) => (Section::Written(body.to_string()), text.map(str::to_string)),
                (None, Some(text)) => (Section::Written(text.to_string()), None),
                (None, None) => (Section::Summary, None),
            };
            let blocks = blocks(alert, &section);
            // The notification text the host writes is the headline, read as
            // plain text (`mrkdwn: false`); a policy's is its own markup.
            let (notification, markup) = match notification {
                Some(text) => (text, true),
                None => (slack(&headline(alert)), false),
            };
            let mut message = match call.str_arg("color") {
                Some(color) => {
                    json!({"text": clip(&notification, MAX_TEXT), "attachments": [{"color": color, "blocks": blocks}]})
                }
                None => json!({"text": clip(&notification, MAX_TEXT), "blocks": blocks}),
            };
            if !markup {
                message["mrkdwn"] = json!(false);
            }
            let timeout = super::http::timeout_arg(&call);
            match (call.str_arg("secret_webhook_url"), call.str_arg("secret_token")) {
                (Some(webhook), None) => {
                    if let Some(channel) = call.str_arg("channel") {
                        message["channel"] = json!(channel);
                    }
                    let request = HttpRequest::new(Method::POST, webhook).json(message).timeout(timeout);
                    let response = self.client.send(request, call.deadline).await?;
                    Ok(json!({"status": response.status, "body": response.body}))
                }
                (None, Some(token)) => {
                    let channel = call.str_arg("channel").ok_or_else(|| ActionError::BadArg {
                        arg: "channel".to_string(),
                        reason: "is required with secret_token".to_string(),
                    })?;
                    message["channel"] = json!(channel);
                    let thread = thread_ts(alert, call.str_arg("thread_destination"));
                    if let Some(ts) = &thread {
                        message["thread_ts"] = json!(ts);
                    }
                    let answer = post_message(&self.client, &self.base, &call, token, message).await?;
                    Ok(
                        json!({"ok": true, "channel": answer.get("channel"), "ts": answer.get("ts"), "thread_ts": thread}),
                    )
                }
                _ => Err(ActionError::BadArg {
                    arg: "secret_webhook_url".to_string(),
                    reason: "give exactly one of secret_webhook_url and secret_token".to_string(),
                }),
            }
        })
    }
}
