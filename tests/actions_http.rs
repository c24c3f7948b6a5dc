//! `http.fetch` and `webhook.post` against a real HTTP server on loopback.

mod common;

use std::time::Duration;

use alert_responder::action::http::HttpClient;
use alert_responder::action::{ActionCall, ActionError, Registry};
use alert_responder::alert::{Alert, AlertDraft};
use alert_responder::event::ingest_document;
use common::{fixture, Reply, TestServer};
use serde_json::{json, Map, Value};

fn alert() -> Alert {
    let envelope = ingest_document(fixture("matano_alert_change_v1.json").as_bytes(), "matano")
        .pop()
        .unwrap()
        .unwrap();
    let draft = AlertDraft {
        title: "Root credentials change".into(),
        description: String::new(),
        source: "matano".into(),
        severity: "high".into(),
        namespace: "matano".into(),
        attrs: vec![],
        refs: vec![],
    };
    Alert::from_draft(draft, &envelope)
}

async fn run(uses: &str, args: Value) -> Result<Value, ActionError> {
    let registry = Registry::builtin(HttpClient::new(Duration::from_secs(5)).unwrap(), None, None);
    let args: Map<String, Value> = args.as_object().unwrap().clone();
    let action = registry.validate("test-action", uses, &args)?;
    let alert = alert();
    action
        .run(ActionCall {
            action_id: "test-action",
            outcome_id: "0123456789abcdef0123456789abcdef",
            alert: &alert,
            args: &args,
            deadline: None,
        })
        .await
}

#[tokio::test]
async fn fetch_parses_json_and_sends_method_headers_and_body() {
    let server = TestServer::start(|_| {
        Reply::json(200, json!({"country": "NL", "asn": 1136}))
            .with_header("x-rate-remaining", "99")
    })
    .await;
    let result = run(
        "http.fetch",
        json!({
            "url": server.url("/ip/5.205.62.253?token=abc"),
            "method": "post",
            "headers": {"authorization": "Bearer t0k"},
            "json": {"q": "5.205.62.253"}
        }),
    )
    .await
    .unwrap();
    assert_eq!(result["status"], 200);
    assert_eq!(result["body"], json!({"country": "NL", "asn": 1136}));
    assert_eq!(result["headers"]["x-rate-remaining"], "99");

    let request = &server.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/ip/5.205.62.253?token=abc");
    assert_eq!(request.headers["authorization"], "Bearer t0k");
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.json(), json!({"q": "5.205.62.253"}));
}

#[tokio::test]
async fn fetch_returns_text_bodies_as_strings() {
    let server = TestServer::start(|_| Reply::text(200, "plain answer")).await;
    let result = run("http.fetch", json!({"url": server.url("/"), "body": "raw"}))
        .await
        .unwrap();
    assert_eq!(result["body"], "plain answer");
    assert_eq!(server.requests()[0].body, b"raw");
    assert_eq!(server.requests()[0].method, "GET");
}

#[tokio::test]
async fn non_2xx_is_a_failure_that_keeps_the_response() {
    let server = TestServer::start(|_| Reply::json(404, json!({"error": "no such ip"}))).await;
    let err = run(
        "http.fetch",
        json!({"url": server.url("/ip/x?apikey=SECRET")}),
    )
    .await
    .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("HTTP 404"), "{message}");
    // The query string (often an API key) is not repeated in errors.
    assert!(!message.contains("SECRET"), "{message}");
    let result = err.result().expect("the response is kept");
    assert_eq!(result["status"], 404);
    assert_eq!(result["body"]["error"], "no such ip");
}

#[tokio::test]
async fn a_hung_server_times_out() {
    let server = TestServer::start(|_| Reply::Hang).await;
    let err = run(
        "http.fetch",
        json!({"url": server.url("/slow"), "timeout_ms": 300}),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("timed out after 300 ms"), "{err}");
}

#[tokio::test]
async fn connection_refused_is_a_clear_failure() {
    let server = TestServer::ok().await;
    let url = server.url("/gone");
    drop(server);
    // Let the listener close: wait until connecting fails, not a fixed sleep.
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            break;
        }
        tokio::task::yield_now().await;
    }
    let err = run("http.fetch", json!({"url": url})).await.unwrap_err();
    assert!(err.to_string().contains("could not connect"), "{err}");
}

#[tokio::test]
async fn bad_urls_are_rejected_before_sending() {
    let err = run("http.fetch", json!({"url": "file:///etc/passwd"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("must be http or https"), "{err}");
    let err = run("http.fetch", json!({"url": "not a url"}))
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("argument `url` is not a URL"),
        "{err}"
    );
}

#[tokio::test]
async fn webhook_posts_the_alert_with_an_idempotency_key() {
    let server = TestServer::ok().await;
    let result = run(
        "webhook.post",
        json!({"url": server.url("/hook"), "data": {"note": "escalated"}, "headers": {"x-team": "secops"}}),
    )
    .await
    .unwrap();
    assert_eq!(result["status"], 200);
    let request = &server.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hook");
    assert_eq!(
        request.headers["idempotency-key"],
        "0123456789abcdef0123456789abcdef"
    );
    assert_eq!(request.headers["x-team"], "secops");
    let body = request.json();
    assert_eq!(body["alert"]["title"], "Root credentials change");
    assert_eq!(
        body["alert"]["data"]["updated_alert"]["id"],
        "61d3ac78-cedd-434e-b407-ae0b330e1d4a"
    );
    assert_eq!(body["data"], json!({"note": "escalated"}));
    assert_eq!(body["action_id"], "test-action");
}
