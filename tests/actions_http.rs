//! `http.fetch` and `webhook.post` against a real HTTP server on loopback.

mod common;

use std::time::Duration;

use alert_responder::action::{ActionCall, ActionError, Registry};
use alert_responder::http::{HttpPolicy, HttpSettings};
use alert_responder::ingest::ingest_document;
use alert_responder::model::{Alert, AlertDraft};
use common::{fixture, loopback_allowed, Reply, TestServer};
use serde_json::{json, Map, Value};

fn alert() -> Alert {
    let envelope = ingest_document(fixture("matano_alert_change_v1.json").as_bytes(), &"matano".into())
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
    run_with(loopback_allowed(), uses, args).await
}

async fn run_with(settings: HttpSettings, uses: &str, args: Value) -> Result<Value, ActionError> {
    common::run_action(settings, &alert(), uses, args, "0123456789abcdef0123456789abcdef").await
}

#[tokio::test]
async fn fetch_parses_json_and_sends_method_headers_and_body() {
    let server = TestServer::start(|_| {
        Reply::json(200, json!({"country": "NL", "asn": 1136})).with_header("x-rate-remaining", "99")
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
    // 404 is not retried.
    let err = run("http.fetch", json!({"url": server.url("/ip/x?apikey=SECRET")}))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("HTTP 404"), "{message}");
    // The query string (often an API key) is not repeated in errors.
    assert!(!message.contains("SECRET"), "{message}");
    let result = err.result().expect("the response is kept");
    assert_eq!(result["status"], 404);
    assert_eq!(result["body"]["error"], "no such ip");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_hung_server_times_out() {
    let server = TestServer::start(|_| Reply::Hang).await;
    let err = run("http.fetch", json!({"url": server.url("/slow"), "timeout_ms": 300}))
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
    let addr = url.trim_start_matches("http://").split('/').next().unwrap().to_string();
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
    let err = run("http.fetch", json!({"url": "not a url"})).await.unwrap_err();
    assert!(err.to_string().starts_with("argument `url` is not a URL"), "{err}");
}

#[tokio::test]
async fn webhook_posts_the_alert_with_an_idempotency_key_and_signature() {
    let server = TestServer::ok().await;
    let result = run(
        "webhook.post",
        json!({"url": server.url("/hook"), "data": {"note": "escalated"}, "headers": {"x-team": "secops"}, "secret_signing_key": "whsec-test"}),
    )
    .await
    .unwrap();
    assert_eq!(result["status"], 200);
    let request = &server.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hook");
    assert_eq!(request.headers["idempotency-key"], "0123456789abcdef0123456789abcdef");
    assert_eq!(request.headers["x-team"], "secops");
    let body = request.json();
    assert_eq!(body["alert"]["title"], "Root credentials change");
    assert_eq!(
        body["alert"]["data"]["updated_alert"]["id"],
        "61d3ac78-cedd-434e-b407-ae0b330e1d4a"
    );
    assert_eq!(body["data"], json!({"note": "escalated"}));
    assert_eq!(body["action_id"], "test-action");

    // X-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body"> under the signing key.
    let header = &request.headers["x-signature"];
    let (t, v1) = header.split_once(",v1=").unwrap();
    let t: i64 = t.strip_prefix("t=").unwrap().parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - t).abs() < 60);
    assert_eq!(
        alert_responder::action::webhook::signature(b"whsec-test", t, &request.body),
        *header
    );
    assert_eq!(v1.len(), 64);
    let tampered = [&request.body[..], b" "].concat();
    assert_ne!(
        alert_responder::action::webhook::signature(b"whsec-test", t, &tampered),
        *header
    );
}

// ---- retries ----

#[tokio::test]
async fn server_errors_and_429_are_retried_then_succeed() {
    let server = TestServer::start(|_| Reply::json(200, json!({"ok": true}))).await;
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let flaky = TestServer::start(
        move |_| match counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => Reply::json(503, json!({"error": "busy"})),
            1 => Reply::json(429, json!({"error": "slow down"})).with_header("retry-after", "0"),
            _ => Reply::json(200, json!({"ok": true})),
        },
    )
    .await;
    let result = run("http.fetch", json!({"url": flaky.url("/")})).await.unwrap();
    assert_eq!(result["status"], 200);
    assert_eq!(result["attempts"], 3);
    assert_eq!(flaky.requests().len(), 3);
    drop(server);
}

#[tokio::test]
async fn retries_are_bounded() {
    let server = TestServer::start(|_| Reply::json(500, json!({"error": "down"}))).await;
    let err = run("http.fetch", json!({"url": server.url("/")})).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 500"), "{err}");
    assert_eq!(err.result().unwrap()["attempts"], 3);
    assert_eq!(server.requests().len(), 3, "1 attempt + HTTP_MAX_RETRIES (2)");
}

#[tokio::test]
async fn a_post_is_not_retried_on_5xx_unless_it_is_deduplicated() {
    let server = TestServer::start(|_| Reply::json(502, json!({}))).await;
    run(
        "http.fetch",
        json!({"url": server.url("/"), "method": "POST", "json": {}}),
    )
    .await
    .unwrap_err();
    assert_eq!(server.requests().len(), 1, "a plain POST may have had its effect");
    // webhook.post carries an Idempotency-Key, so retrying is safe.
    run("webhook.post", json!({"url": server.url("/hook")}))
        .await
        .unwrap_err();
    let hooks: Vec<_> = server.requests().into_iter().filter(|r| r.path == "/hook").collect();
    assert_eq!(hooks.len(), 3);
    assert!(hooks
        .iter()
        .all(|r| r.headers["idempotency-key"] == hooks[0].headers["idempotency-key"]));
}

#[tokio::test]
async fn retry_after_longer_than_the_deadline_is_not_waited_for() {
    let server = TestServer::start(|_| Reply::json(429, json!({})).with_header("retry-after", "3600")).await;
    let registry = Registry::with_http(loopback_allowed());
    let args: Map<String, Value> = json!({"url": server.url("/")}).as_object().unwrap().clone();
    let alert = alert();
    let started = std::time::Instant::now();
    let err = registry
        .get("http.fetch")
        .unwrap()
        .run(ActionCall {
            action_id: "a",
            outcome_id: "o",
            alert: &alert,
            args: &args,
            deadline: Some(std::time::Instant::now() + Duration::from_secs(5)),
        })
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(err.to_string().contains("HTTP 429"), "{err}");
    assert_eq!(err.result().unwrap()["headers"]["retry-after"], "3600");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn response_bodies_are_capped() {
    let server = TestServer::start(|_| Reply::text(200, &"x".repeat(5000))).await;
    let settings = HttpSettings {
        max_response_bytes: 1000,
        ..loopback_allowed()
    };
    let result = run_with(settings, "http.fetch", json!({"url": server.url("/")}))
        .await
        .unwrap();
    assert_eq!(result["body"].as_str().unwrap().len(), 1000);
    assert_eq!(result["body_truncated"], true);
}

// ---- SSRF guard ----

/// A connect that times out (a listener whose backlog is full drops the
/// SYN) reached no server: a connect error, retried, not the request's
/// timeout.
#[tokio::test]
async fn a_connect_timeout_is_a_connect_error_and_retried() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let address = listener.local_addr().unwrap();
    // Fills the backlog (never accepted): later connects hang.
    let _queued = tokio::net::TcpStream::connect(address).await.unwrap();
    let settings = HttpSettings {
        connect_timeout: Duration::from_millis(200),
        default_timeout: Duration::from_secs(20),
        max_retries: 1,
        ..loopback_allowed()
    };
    let started = std::time::Instant::now();
    let err = run_with(settings, "http.fetch", json!({"url": format!("http://{address}/x")}))
        .await
        .unwrap_err();
    let ActionError::Failed { message, transient, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(message.contains("could not connect"), "{message}");
    assert!(*transient);
    // Two attempts of 200 ms (and a backoff), far from the 20 s timeout.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(10),
        "{took:?}"
    );
    drop(listener);
}

fn guarded() -> HttpSettings {
    HttpSettings::default()
}

#[tokio::test]
async fn private_and_metadata_addresses_are_refused_by_default() {
    for url in [
        "http://127.0.0.1:9/x",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:9/",
        "http://0.0.0.0:9/",
    ] {
        let err = run_with(guarded(), "http.fetch", json!({"url": url}))
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("refused "), "{url}: {message}");
        assert!(message.contains("is not a public address"), "{url}: {message}");
    }
}

#[tokio::test]
async fn names_resolving_to_private_addresses_are_refused() {
    let server = TestServer::ok().await;
    let url = format!("http://localhost:{}/x", server.addr.port());
    let err = run_with(guarded(), "http.fetch", json!({"url": url}))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("localhost resolves only to non-public addresses"),
        "{message}"
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn redirects_to_private_addresses_are_refused_on_every_hop() {
    let target = TestServer::ok().await;
    let inner = target.url("/internal");
    // The first hop is allowed by name; where it redirects to is checked again.
    let redirector = TestServer::start(move |_| Reply::text(302, "").with_header("location", &inner)).await;
    let settings = HttpSettings {
        policy: HttpPolicy {
            allow_hosts: vec!["localhost".into()],
            ..HttpPolicy::default()
        },
        ..HttpSettings::default()
    };
    let url = format!("http://localhost:{}/start", redirector.addr.port());
    let err = run_with(settings, "http.fetch", json!({"url": url})).await.unwrap_err();
    assert!(err.to_string().contains("127.0.0.1 is not a public address"), "{err}");
    assert_eq!(redirector.requests().len(), 1);
    assert!(target.requests().is_empty());
}

#[tokio::test]
async fn allowed_redirects_are_followed_and_drop_credentials_across_hosts() {
    let target = TestServer::start(|_| Reply::json(200, json!({"landed": true}))).await;
    let inner = target.url("/landed");
    let redirector = TestServer::start(move |_| Reply::text(303, "").with_header("location", &inner)).await;
    let url = format!("http://localhost:{}/start", redirector.addr.port());
    let result = run(
        "http.fetch",
        json!({"url": url, "method": "POST", "json": {"a": 1}, "secret_bearer_token": "tok",
               "headers": {"x-apikey": "vt-key", "accept": "application/json"}}),
    )
    .await
    .unwrap();
    assert_eq!(result["body"], json!({"landed": true}));
    assert_eq!(redirector.requests()[0].headers["authorization"], "Bearer tok");
    assert_eq!(redirector.requests()[0].headers["x-apikey"], "vt-key");
    let landed = &target.requests()[0];
    assert_eq!(landed.method, "GET", "303 turns a POST into a GET");
    for credential in ["authorization", "x-apikey"] {
        assert!(
            !landed.headers.contains_key(credential),
            "{credential}: credentials stay with their host, whatever header they are in"
        );
    }
    assert_eq!(landed.headers["accept"], "application/json", "harmless headers go on");
}

#[tokio::test]
async fn allow_hosts_opens_exactly_the_listed_hosts() {
    let server = TestServer::ok().await;
    let settings = HttpSettings {
        policy: HttpPolicy {
            allow_hosts: vec!["127.0.0.1".into()],
            ..HttpPolicy::default()
        },
        ..HttpSettings::default()
    };
    run_with(settings.clone(), "http.fetch", json!({"url": server.url("/")}))
        .await
        .unwrap();
    let err = run_with(
        settings,
        "http.fetch",
        json!({"url": format!("http://[::1]:{}/", server.addr.port())}),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().starts_with("refused"), "{err}");
}

#[tokio::test]
async fn the_lambda_runtime_api_is_refused_even_when_private_is_allowed() {
    let runtime = TestServer::ok().await;
    let settings = HttpSettings {
        policy: HttpPolicy {
            allow_private: true,
            runtime_api: Some(runtime.addr.to_string()),
            ..HttpPolicy::default()
        },
        ..HttpSettings::default()
    };
    for host in ["127.0.0.1", "localhost"] {
        let url = format!(
            "http://{host}:{}/2018-06-01/runtime/invocation/next",
            runtime.addr.port()
        );
        let err = run_with(settings.clone(), "http.fetch", json!({"url": url}))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("the Lambda Runtime API is never a destination"),
            "{err}"
        );
    }
    assert!(runtime.requests().is_empty());
}
