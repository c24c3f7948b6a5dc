//! Slack's side of approvals: a loopback Slack API and the interaction
//! requests Slack sends a function URL, signed as Slack signs them.

use serde_json::{json, Value};

use super::{Recorded, Reply, TestServer};

pub const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
pub const APPROVER: &str = "U0LEAD";

/// One alert per Matano change, about a host.
pub const ALERT_POLICY: &str = r#"package alert.matano
alert contains {"title": input.updated_alert.title, "severity": input.updated_alert.severity, "namespace": "hosts"} if true
"#;

/// Asks with a literal token (`approvers` when given) and isolates through
/// `isolate_url` on approval.
pub fn ask_then_isolate(isolate_url: &str, approvers: &[&str]) -> String {
    // No approvers: the argument left out (anyone may answer); given empty it fails.
    let approvers = match approvers {
        [] => String::new(),
        some => format!(r#", "approvers": {}"#, json!(some)),
    };
    format!(
        r#"package action
run contains {{"id": "ask-isolate", "uses": "approval.request", "args": {{"secret_token": "xoxb-literal", "channel": "C0SECOPS"{}}}}}
run contains {{"id": "isolate", "uses": "webhook.post", "args": {{"url": "{isolate_url}"}}}} if {{
    some c in input.called
    c.id == "ask-isolate"
    c.result.answer == "approve"
}}
"#,
        approvers
    )
}

/// Slack's API (chat.postMessage, chat.update) and a response_url, on loopback.
pub async fn slack_api() -> TestServer {
    TestServer::start(|req: &Recorded| match req.path.as_str() {
        "/chat.postMessage" => Reply::json(
            200,
            json!({"ok": true, "channel": "C0SECOPS", "ts": "1700000000.000100"}),
        ),
        "/chat.update" => Reply::json(200, json!({"ok": true})),
        _ => Reply::json(200, json!({})),
    })
    .await
}

/// The button values of the last approval message Slack was asked to post.
pub fn buttons(slack: &TestServer) -> Vec<String> {
    let posted = slack
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/chat.postMessage")
        .expect("an approval message")
        .json();
    let actions = posted["blocks"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(actions["type"], "actions", "{posted}");
    actions["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["value"].as_str().unwrap().to_string())
        .collect()
}

/// `payload=<JSON>`, form-encoded as Slack sends it.
pub fn form_encode(payload: &Value) -> String {
    let encoded: String = payload
        .to_string()
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("payload={encoded}")
}

/// A Function URL event of Slack's interaction request, signed with `secret`.
pub fn signed_event(body: &str, timestamp: &str, secret: &str) -> Value {
    let signature = alert_responder::interaction::slack_signature(secret.as_bytes(), timestamp, body.as_bytes());
    json!({
        "version": "2.0",
        "rawPath": "/slack/interactions",
        "headers": {
            "content-type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
        },
        "requestContext": {"http": {"method": "POST", "path": "/slack/interactions"}},
        "body": body,
        "isBase64Encoded": false,
    })
}

/// Slack's signed interaction for a click on the button with `value` by
/// `user`, now; `response_url` when given.
pub fn click_event(value: &str, user: &str, response_url: Option<String>) -> Value {
    let mut payload = json!({
        "type": "block_actions",
        "user": {"id": user},
        "channel": {"id": "C0SECOPS"},
        "message": {"ts": "1700000000.000100"},
        "actions": [{"action_id": "alert_responder_answer_0", "block_id": "alert_responder_answer", "value": value, "type": "button"}],
    });
    if let Some(url) = response_url {
        payload["response_url"] = json!(url);
    }
    let now = chrono::Utc::now().timestamp().to_string();
    signed_event(&form_encode(&payload), &now, SIGNING_SECRET)
}
