//! The HTTP side: a Function URL event in, a response out. Requests are
//! checked in this order, and nothing is read from the state table before
//! the request is proven: size (400), route (404/405), signature or token
//! (401), shape (400); then the answer (404 unknown workflow, 403 not an
//! approver, 400 not a choice, 409 or an ephemeral note when answered
//! already).

use std::time::Duration;

use chrono::Utc;
use data_encoding::BASE64;
use reqwest::Method;
use serde_json::{json, Value};

use super::{Interactions, Purpose};
use crate::action::render::{clip, line, slack};
use crate::http::HttpRequest;
use crate::model::suspended::{Resolution, SuspendedWorkflow};
use crate::model::ActionRecord;
use crate::pipeline::Responder;
use crate::resume::{AnswerError, Answered, AnsweredBy};
use crate::wakeup::Wakeup;

/// Slack's payloads are a few KiB; a callback's answer is smaller.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long the Slack message update may take: Slack wants its answer in 3 s.
const SLACK_UPDATE_TIMEOUT: Duration = Duration::from_millis(1500);

/// An HTTP response of the function URL.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: Value,
}

impl HttpAnswer {
    fn new(status: u16, body: Value) -> HttpAnswer {
        HttpAnswer { status, body }
    }

    /// The function has no answer keys configured: nothing to serve.
    pub fn not_configured() -> HttpAnswer {
        HttpAnswer::error(
            404,
            "interactions are not configured (SLACK_SIGNING_SECRET or CALLBACK_SECRET)",
        )
    }

    fn error(status: u16, message: impl std::fmt::Display) -> HttpAnswer {
        HttpAnswer::new(status, json!({"error": message.to_string()}))
    }

    /// The response as Lambda's Function URL expects it.
    pub fn to_event(&self) -> Value {
        json!({
            "statusCode": self.status,
            "headers": {"content-type": "application/json"},
            "body": self.body.to_string(),
        })
    }
}

/// Whether an invocation event is an HTTP request (Function URL, API Gateway v2).
pub fn is_http_event(event: &Value) -> bool {
    event.pointer("/requestContext/http/method").is_some()
}

struct Request {
    method: String,
    path: String,
    headers: serde_json::Map<String, Value>,
    body: Vec<u8>,
}

impl Request {
    fn of(event: &Value) -> Result<Request, HttpAnswer> {
        let text = |pointer: &str| event.pointer(pointer).and_then(Value::as_str).unwrap_or_default();
        let raw = text("/body");
        let body = match event.get("isBase64Encoded").and_then(Value::as_bool) {
            Some(true) => BASE64
                .decode(raw.as_bytes())
                .map_err(|_| HttpAnswer::error(400, "the body is not valid base64"))?,
            _ => raw.as_bytes().to_vec(),
        };
        if body.len() > MAX_BODY_BYTES {
            return Err(HttpAnswer::error(
                400,
                format!("the body is {} bytes; at most {MAX_BODY_BYTES}", body.len()),
            ));
        }
        let path = match text("/rawPath") {
            "" => text("/requestContext/http/path"),
            path => path,
        };
        let headers = event
            .get("headers")
            .and_then(Value::as_object)
            .map(|h| h.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect())
            .unwrap_or_default();
        Ok(Request {
            method: text("/requestContext/http/method").to_ascii_uppercase(),
            path: path.to_string(),
            headers,
            body,
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(Value::as_str)
    }
}

impl Interactions {
    /// Serves one HTTP request of the function URL.
    pub async fn serve(&self, responder: &Responder, event: &Value) -> HttpAnswer {
        let request = match Request::of(event) {
            Ok(request) => request,
            Err(answer) => return answer,
        };
        let route = request.path.trim_end_matches('/');
        let answer = match route.strip_prefix("/callbacks/") {
            _ if route == "/slack/interactions" => match request.method.as_str() {
                "POST" => self.slack(responder, &request).await,
                _ => HttpAnswer::error(405, "POST only"),
            },
            Some(token) if !token.is_empty() && !token.contains('/') => match request.method.as_str() {
                "POST" => self.callback(responder, token, &request).await,
                _ => HttpAnswer::error(405, "POST only"),
            },
            _ => HttpAnswer::error(404, format!("no route {:?}", request.path)),
        };
        tracing::info!(method = %request.method, path = %route_name(route), status = answer.status, "interaction answered");
        answer
    }

    async fn slack(&self, responder: &Responder, request: &Request) -> HttpAnswer {
        let secret = match self.slack_secret().await {
            Ok(Some(secret)) => secret,
            Ok(None) => return HttpAnswer::error(404, "Slack interactions are not configured (SLACK_SIGNING_SECRET)"),
            Err(err) => {
                tracing::error!(error = %err, "the Slack signing secret is unavailable");
                return HttpAnswer::error(500, "the signing secret is unavailable");
            }
        };
        if let Err(err) = super::verify_slack(
            secret.as_bytes(),
            request.header("x-slack-request-timestamp"),
            request.header("x-slack-signature"),
            &request.body,
            Utc::now().timestamp(),
        ) {
            tracing::warn!(reason = %err, "Slack interaction refused");
            return HttpAnswer::error(401, err);
        }
        let payload = match form_field(&request.body, "payload").map(|p| serde_json::from_str::<Value>(&p)) {
            Some(Ok(payload)) => payload,
            _ => return HttpAnswer::error(400, "the body has no JSON `payload` field"),
        };
        if payload.get("type").and_then(Value::as_str) != Some("block_actions") {
            return HttpAnswer::new(200, json!({"status": "ignored"}));
        }
        let value = payload
            .pointer("/actions/0/value")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some((token, choice)) = value.split_once('|') else {
            return HttpAnswer::error(400, "the action is not an alert-responder answer");
        };
        let Some(user) = payload.pointer("/user/id").and_then(Value::as_str) else {
            return HttpAnswer::error(400, "the payload names no user");
        };
        let claims = match self.callback_key().await.map(|key| key.verify(Purpose::Slack, token)) {
            Ok(Some(claims)) => claims,
            // As on the callback route: a token this function did not issue.
            Ok(None) => return HttpAnswer::error(401, "the answer's token is not this function's"),
            Err(err) => return key_unavailable(&err),
        };
        let resolution = Resolution::Answered {
            answer: choice.to_string(),
            user: user.to_string(),
            answered_at: Utc::now(),
        };
        let response_url = payload.get("response_url").and_then(Value::as_str);
        match responder
            .answer(
                &claims.workflow,
                &claims.action_id,
                &resolution,
                AnsweredBy::Slack(user),
            )
            .await
        {
            // The question gives way to its answer only once the resume has
            // started: until then its buttons stay, and a click again
            // starts it.
            Ok(Answered::Recorded {
                workflow,
                record,
                ready,
            }) => match self.start_resume(responder, &claims.workflow, ready).await {
                true => {
                    self.show_answer(&workflow, &record, response_url).await;
                    HttpAnswer::new(200, json!({"status": "recorded"}))
                }
                false => not_resumed(),
            },
            Ok(Answered::Already {
                record,
                suspended,
                workflow,
            }) => {
                let note = format!("Already answered: {}", answer_text(record.as_ref()));
                self.ephemeral(response_url, &note).await;
                // A first answer whose resume could not start: start it now,
                // and show the answer that was kept.
                match self.start_resume(responder, &claims.workflow, suspended).await {
                    true => {
                        if let (Some(workflow), Some(record)) = (workflow.filter(|_| suspended), &record) {
                            self.show_answer(&workflow, record, response_url).await;
                        }
                        HttpAnswer::new(200, json!({"status": "already_answered"}))
                    }
                    false => not_resumed(),
                }
            }
            Err(err) => {
                let answer = error_answer(&err);
                if answer.status == 403 {
                    self.ephemeral(response_url, "You are not one of the approvers of this request.")
                        .await;
                }
                answer
            }
        }
    }

    async fn callback(&self, responder: &Responder, token: &str, request: &Request) -> HttpAnswer {
        let claims = match self
            .callback_key()
            .await
            .map(|key| key.verify(Purpose::Callback, token))
        {
            Ok(Some(claims)) => claims,
            Ok(None) => return HttpAnswer::error(401, "the callback token is not valid"),
            Err(err) => return key_unavailable(&err),
        };
        let body: Value = match serde_json::from_slice(&request.body) {
            Ok(body) => body,
            Err(err) => return HttpAnswer::error(400, format!("the body is not JSON: {err}")),
        };
        let Some(answer) = body.get("answer").and_then(Value::as_str).filter(|a| !a.is_empty()) else {
            return HttpAnswer::error(400, "the body needs `answer`, a string");
        };
        // Not a Slack user: whoever holds the URL names themselves.
        let user = match body.get("user").and_then(Value::as_str) {
            Some(name) => format!("callback:{}", clip(&line(name), 200)),
            None => "callback".to_string(),
        };
        let resolution = Resolution::Answered {
            answer: answer.to_string(),
            user,
            answered_at: Utc::now(),
        };
        match responder
            .answer(&claims.workflow, &claims.action_id, &resolution, AnsweredBy::Callback)
            .await
        {
            Ok(Answered::Recorded {
                workflow,
                record,
                ready,
            }) => match self.start_resume(responder, &claims.workflow, ready).await {
                true => {
                    self.show_answer(&workflow, &record, None).await;
                    HttpAnswer::new(200, json!({"status": "recorded", "result": record.result}))
                }
                false => not_resumed(),
            },
            Ok(Answered::Already {
                record,
                suspended,
                workflow,
            }) => match self.start_resume(responder, &claims.workflow, suspended).await {
                true => {
                    if let (Some(workflow), Some(record)) = (workflow.filter(|_| suspended), &record) {
                        self.show_answer(&workflow, record, None).await;
                    }
                    HttpAnswer::new(
                        409,
                        json!({"status": "already_answered", "result": record.and_then(|r| r.result)}),
                    )
                }
                false => not_resumed(),
            },
            Err(err) => error_answer(&err),
        }
    }

    /// Starts the workflow's next rounds without making the caller wait: in
    /// another invocation; in this one when there is no other (local runs).
    /// False when it could not be started: the caller is told to retry (the
    /// answer is kept; its retry starts the resume).
    async fn start_resume(&self, responder: &Responder, workflow: &str, ready: bool) -> bool {
        if !ready {
            return true;
        }
        let wakeup = Wakeup::Resume {
            workflow: workflow.to_string(),
        };
        match responder.decider().wakeups() {
            Some(wakeups) => match wakeups.send(&wakeup).await {
                Ok(()) => true,
                Err(err) => {
                    tracing::error!(workflow, error = %err, "could not start the resume; a retried answer or `alert-responder workflows resume` starts it");
                    false
                }
            },
            None => match responder.resume(workflow, None, None).await {
                Ok(_) => true,
                Err(err) => {
                    tracing::error!(workflow, error = %err, "resume failed");
                    false
                }
            },
        }
    }

    /// Replaces the question in Slack by its answer: `chat.update` with the
    /// bot token the policy referenced, else Slack's `response_url`.
    async fn show_answer(&self, workflow: &SuspendedWorkflow, record: &ActionRecord, response_url: Option<&str>) {
        let Some(pending) = workflow.pending_action(&record.id) else {
            return;
        };
        let text = answer_text(Some(record));
        let blocks = json!([
            {"type": "header", "text": {"type": "plain_text", "text": clip(&line(&workflow.alert.title), 150), "emoji": false}},
            // Verbatim: a callback's name (`callback:<name>`) is not turned into a link or mention.
            {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": true}},
        ]);
        let token = match pending.secret_refs.get("secret_token") {
            Some(reference) => self.secret(reference, "secret_token").await.ok(),
            None => None,
        };
        let request = match (token, &pending.channel, &pending.ts, response_url) {
            (Some(token), Some(channel), Some(ts), _) => {
                let url = format!("{}/chat.update", self.slack_base.trim_end_matches('/'));
                HttpRequest::new(Method::POST, url)
                    .secret_header("authorization", &format!("Bearer {token}"))
                    .json(json!({"channel": channel, "ts": ts, "text": text, "blocks": blocks}))
            }
            (_, _, _, Some(url)) if self.is_slack_url(url) => HttpRequest::new(Method::POST, url)
                .json(json!({"replace_original": true, "text": text, "blocks": blocks})),
            _ => return,
        };
        let deadline = std::time::Instant::now() + SLACK_UPDATE_TIMEOUT;
        match self
            .http
            .send(request.timeout(Some(SLACK_UPDATE_TIMEOUT)), Some(deadline))
            .await
        {
            Ok(response) if response.body.get("ok") == Some(&Value::Bool(false)) => {
                let error = response.body.get("error").cloned().unwrap_or_default();
                tracing::warn!(workflow = %workflow.id(), error = %error, "Slack did not update the message")
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(workflow = %workflow.id(), error = %err, "could not update the Slack message"),
        }
    }

    /// Slack's `response_url`s are on hooks.slack.com (or, configured
    /// elsewhere, on SLACK_BASE_URL's host); no other URL is called.
    fn is_slack_url(&self, url: &str) -> bool {
        let origin = |u: &str| {
            let rest = u
                .split_once("://")
                .map(|(scheme, rest)| (scheme.to_string(), rest.to_string()));
            rest.map(|(scheme, rest)| format!("{scheme}://{}", rest.split('/').next().unwrap_or_default()))
        };
        url.starts_with("https://hooks.slack.com/") || origin(url).is_some_and(|o| Some(o) == origin(&self.slack_base))
    }

    /// A note only the clicking user sees (Slack's `response_url`).
    async fn ephemeral(&self, response_url: Option<&str>, text: &str) {
        let Some(url) = response_url.filter(|u| self.is_slack_url(u)) else {
            return;
        };
        let request = HttpRequest::new(Method::POST, url)
            .json(json!({"response_type": "ephemeral", "replace_original": false, "text": text}))
            .timeout(Some(SLACK_UPDATE_TIMEOUT));
        let deadline = std::time::Instant::now() + SLACK_UPDATE_TIMEOUT;
        if let Err(err) = self.http.send(request, Some(deadline)).await {
            tracing::warn!(error = %err, "could not send Slack a note");
        }
    }
}

/// "*approve* by <@U1> at …", or the timeout, for people.
fn answer_text(record: Option<&ActionRecord>) -> String {
    let result = record.and_then(|r| r.result.as_ref());
    let field = |name: &str| {
        result
            .and_then(|r| r.get(name))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    match field("answer") {
        "" => "no answer recorded".to_string(),
        "timeout" => "*timed out* without an answer".to_string(),
        answer => {
            let user = field("user");
            let by = if user.starts_with('U') || user.starts_with('W') {
                format!("<@{}>", slack(user))
            } else {
                slack(&line(user))
            };
            match field("answered_at") {
                "" => format!("*{}* by {by}", slack(&line(answer))),
                at => format!("*{}* by {by} at {}", slack(&line(answer)), slack(at)),
            }
        }
    }
}

/// The key that verifies tokens could not be read: said in the log, not
/// to an unauthenticated caller.
fn key_unavailable(reason: &str) -> HttpAnswer {
    tracing::error!(reason, "the answer key is unavailable");
    HttpAnswer::error(500, "the answer key is unavailable")
}

/// The answer is recorded but its workflow could not be resumed: a retry
/// of the same request starts the resume.
fn not_resumed() -> HttpAnswer {
    HttpAnswer::error(
        500,
        "the answer is recorded; the workflow could not be resumed now: retry",
    )
}

fn error_answer(err: &AnswerError) -> HttpAnswer {
    let status = match err {
        AnswerError::NoState | AnswerError::Unknown { .. } => 404,
        AnswerError::NotAnApprover { .. } => 403,
        AnswerError::Resolve(_) => 400,
        AnswerError::State(_) => 500,
    };
    if status == 500 {
        tracing::error!(error = %err, "answer not recorded");
    }
    HttpAnswer::error(status, err)
}

/// The route for the log, without a callback's token.
fn route_name(route: &str) -> &str {
    match route.starts_with("/callbacks/") {
        true => "/callbacks/{token}",
        false => route,
    }
}

/// One field of an `application/x-www-form-urlencoded` body, decoded.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (percent_decode(key)? == name).then(|| percent_decode(value)).flatten()
    })
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex_pair = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex_pair, 16).ok()?);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The note on an answered question names who answered, and when
    /// when it is known (a cancel records no time).
    #[test]
    fn answers_are_told_with_their_time_when_they_have_one() {
        let record = |result: Value| -> ActionRecord {
            serde_json::from_value(json!({
                "id": "ask", "uses": "approval.request", "args": {}, "seq": 0, "status": "succeeded",
                "result": result, "error": null, "outcome_id": "o", "commits": [],
                "started_at": "2026-12-07T10:00:00Z", "duration_ms": 0,
            }))
            .unwrap()
        };
        let answered = record(json!({"answer": "approve", "user": "U1", "answered_at": "2026-12-07T10:01:00Z"}));
        assert_eq!(
            answer_text(Some(&answered)),
            "*approve* by <@U1> at 2026-12-07T10:01:00Z"
        );
        let cancelled = record(json!({"answer": "cancelled", "user": "erin"}));
        assert_eq!(answer_text(Some(&cancelled)), "*cancelled* by erin");
        assert_eq!(answer_text(None), "no answer recorded");
    }

    #[test]
    fn form_fields_decode() {
        let body = b"a=1&payload=%7B%22type%22%3A+%22x%22%7D";
        assert_eq!(form_field(body, "payload").as_deref(), Some("{\"type\": \"x\"}"));
        assert_eq!(form_field(body, "b"), None);
        assert_eq!(form_field(b"payload=%zz", "payload"), None);
    }

    #[test]
    fn requests_over_the_limit_or_badly_encoded_are_refused_before_routing() {
        let big = json!({"requestContext": {"http": {"method": "POST"}}, "rawPath": "/slack/interactions",
            "body": "x".repeat(MAX_BODY_BYTES + 1)});
        assert_eq!(Request::of(&big).err().map(|a| a.status), Some(400));
        let bad = json!({"requestContext": {"http": {"method": "POST"}}, "rawPath": "/x", "body": "***", "isBase64Encoded": true});
        assert_eq!(Request::of(&bad).err().map(|a| a.status), Some(400));
        assert!(is_http_event(&big));
        assert!(!is_http_event(&json!({"Records": []})));
    }
}
