//! AlertChain's action names and argument names, against loopback vendors:
//! what its policies write reaches the vendor as ours would.

mod common;

use alert_responder::action::{ActionError, Registry};
use alert_responder::model::Alert;
use common::{fixture, Reply, TestServer};
use serde_json::{json, Value};

fn alert() -> Alert {
    common::sample_alert(Vec::new(), Vec::new())
}

async fn run(uses: &str, args: Value) -> Result<Value, ActionError> {
    common::run_action(common::loopback_allowed(), &alert(), uses, args, "o-1").await
}

#[tokio::test]
async fn http_fetch_takes_data_and_header() {
    let server = TestServer::start(|_| Reply::json(200, json!({"ok": true}))).await;
    run(
        "http.fetch",
        json!({"method": "POST", "url": server.url("/x"), "data": "raw body", "header": {"X-Team": "secops"}}),
    )
    .await
    .unwrap();
    let request = server.requests().pop().unwrap();
    assert_eq!(request.body, b"raw body");
    assert_eq!(request.headers["x-team"], "secops");
}

#[tokio::test]
async fn slack_post_takes_secret_url_body_color_and_channel() {
    let server = TestServer::start(|_| Reply::text(200, "ok")).await;
    run(
        "slack.post",
        json!({"secret_url": server.url("/hook"), "channel": "#alerts", "text": "New alert", "body": "*Root login* from 5.205.62.253", "color": "#E01E5A"}),
    )
    .await
    .unwrap();
    let body = server.requests().pop().unwrap().json();
    assert_eq!(body["text"], "New alert");
    assert_eq!(body["channel"], "#alerts");
    let attachment = &body["attachments"][0];
    assert_eq!(attachment["color"], "#E01E5A");
    let sections: Vec<&str> = attachment["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["text"]["text"].as_str())
        .collect();
    assert!(sections.contains(&"*Root login* from 5.205.62.253"), "{sections:?}");
    assert!(body.get("blocks").is_none());
}

#[tokio::test]
async fn jira_takes_alertchains_arguments_and_attaches_files() {
    let server = TestServer::start(|req| match req.path.as_str() {
        "/rest/api/3/issue" => Reply::json(
            201,
            json!({"id": "10001", "key": "SEC-7", "self": "https://jira/rest/api/3/issue/10001"}),
        ),
        "/rest/api/3/issue/SEC-7/comment" => Reply::json(201, json!({"id": "2"})),
        _ => Reply::json(200, json!([{"id": "30", "filename": "alert.json", "size": 2}])),
    })
    .await;
    let base = server.url("");
    let auth = json!({"user": "bot@example.org", "secret_token": "tok", "account_id": "5b10ac8d82e05b22cc7d4ef5", "base_url": base});
    let with = |extra: Value| {
        let mut args = auth.clone();
        args.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        args
    };
    let created = run(
        "jira.create_issue",
        with(json!({"project": "SEC", "issue_type": "Bug", "labels": ["matano"], "assignee": "acc-2"})),
    )
    .await
    .unwrap();
    assert_eq!(
        (&created["key"], &created["self"]),
        (&json!("SEC-7"), &json!("https://jira/rest/api/3/issue/10001"))
    );
    run("jira.add_comment", with(json!({"issue_id": "SEC-7", "body": "seen"})))
        .await
        .unwrap();
    let attached = run(
        "jira.add_attachment",
        with(json!({"issue_id": "SEC-7", "file_name": "alert.json", "data": "{\"a\": 1}"})),
    )
    .await
    .unwrap();
    assert_eq!(attached[0]["filename"], "alert.json");

    let requests = server.requests();
    let basic = format!("Basic {}", data_encoding::BASE64.encode(b"bot@example.org:tok"));
    assert!(requests.iter().all(|r| r.headers["authorization"] == basic));
    let fields = &requests[0].json()["fields"];
    assert_eq!(fields["issuetype"]["name"], "Bug");
    assert_eq!(fields["reporter"]["id"], "5b10ac8d82e05b22cc7d4ef5");
    assert_eq!(fields["assignee"]["id"], "acc-2");
    let upload = &requests[2];
    assert_eq!(upload.path, "/rest/api/3/issue/SEC-7/attachments");
    assert_eq!(upload.headers["x-atlassian-token"], "no-check");
    assert!(upload.headers["content-type"].starts_with("multipart/form-data; boundary="));
    let text = String::from_utf8(upload.body.clone()).unwrap();
    assert!(
        text.contains("name=\"file\"; filename=\"alert.json\"") && text.contains("{\"a\": 1}"),
        "{text}"
    );
}

/// A GitHub App installation: the JWT is RS256 over `{iat, exp, iss}`,
/// signed by the App's key (verified here with its public half), and buys
/// the token the issue is created with.
#[tokio::test]
async fn github_authenticates_as_an_app_installation() {
    let server = TestServer::start(|req| match req.path.as_str() {
        "/app/installations/4242/access_tokens" => Reply::json(201, json!({"token": "ghs_installation"})),
        "/repos/acme/security/issues" => Reply::json(
            201,
            json!({"number": 12, "id": 99, "html_url": "https://github/acme/security/issues/12"}),
        ),
        _ => Reply::json(201, json!({"id": 5, "html_url": "https://github/c/5"})),
    })
    .await;
    let key = fixture("github_app_test_key.pem");
    let app = json!({"app_id": 1234, "install_id": 4242, "secret_private_key": key, "owner": "acme", "repo": "security", "base_url": server.url("")});
    let issue = run("github.create_issue", app.clone()).await.unwrap();
    assert_eq!(issue["number"], 12);
    let mut comment = app.clone();
    comment["issue_number"] = json!(12);
    comment["body"] = json!("more");
    run("github.add_comment", comment).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 4, "{requests:#?}");
    let jwt = requests[0].headers["authorization"]
        .strip_prefix("Bearer ")
        .unwrap()
        .to_string();
    let parts: Vec<&str> = jwt.split('.').collect();
    let decode = |part: &str| -> Value {
        serde_json::from_slice(&data_encoding::BASE64URL_NOPAD.decode(part.as_bytes()).unwrap()).unwrap()
    };
    assert_eq!(decode(parts[0]), json!({"alg": "RS256", "typ": "JWT"}));
    let claims = decode(parts[1]);
    assert_eq!(claims["iss"], "1234");
    assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 600);
    let public = public_key_der(&key);
    let signature = data_encoding::BASE64URL_NOPAD.decode(parts[2].as_bytes()).unwrap();
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, public)
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .expect("the JWT is signed by the App's key");
    assert_eq!(requests[1].headers["authorization"], "Bearer ghs_installation");
    assert_eq!(requests[3].path, "/repos/acme/security/issues/12/comments");

    // Neither a token nor a key: the rule names both.
    let err = run("github.create_issue", json!({"owner": "acme", "repo": "security"}))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("`secret_token` and `secret_private_key`: give exactly one"),
        "{err}"
    );
    let err = run(
        "github.create_issue",
        json!({"owner": "acme", "repo": "security", "secret_private_key": key}),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("`app_id` is required with `secret_private_key`"),
        "{err}"
    );
}

/// The installation token's request honours the action's `timeout_ms`:
/// a token endpoint that never answers fails the action at that bound
/// (retried as transient), instead of holding it to the client's default.
#[tokio::test]
async fn a_hung_token_endpoint_fails_at_the_actions_timeout() {
    let server = TestServer::start(|req| match req.path.as_str() {
        "/app/installations/4242/access_tokens" => Reply::Hang,
        _ => Reply::json(201, json!({"number": 1})),
    })
    .await;
    let key = fixture("github_app_test_key.pem");
    let args = json!({"app_id": 1234, "install_id": 4242, "secret_private_key": key, "owner": "acme",
        "repo": "security", "base_url": server.url(""), "title": "t", "timeout_ms": 300});
    let err = run("github.create_issue", args).await.unwrap_err();
    assert!(err.to_string().contains("timed out after 300 ms"), "{err}");
    assert!(err.is_transient(), "{err}");
    assert_eq!(server.requests().len(), 1, "no issue without a token");
}

/// The public key of a PKCS#1 PEM, as ring's verifier takes it.
fn public_key_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = data_encoding::BASE64.decode(body.as_bytes()).unwrap();
    let pair = ring::signature::RsaKeyPair::from_der(&der).unwrap();
    ring::signature::KeyPair::public_key(&pair).as_ref().to_vec()
}

#[tokio::test]
async fn opsgenie_takes_responder_teams() {
    let server = TestServer::start(|_| {
        Reply::json(
            202,
            json!({"requestId": "r-1", "took": 0.1, "result": "Request will be processed"}),
        )
    })
    .await;
    let result = run(
        "opsgenie.create_alert",
        json!({"secret_api_key": "k", "responder_teams": [{"type": "team", "name": "SecOps"}], "base_url": server.url("")}),
    )
    .await
    .unwrap();
    assert_eq!((&result["requestId"], &result["took"]), (&json!("r-1"), &json!(0.1)));
    let body = server.requests().pop().unwrap().json();
    assert_eq!(body["responders"], json!([{"type": "team", "name": "SecOps"}]));
}

/// `chatgpt.query` returns the completion as OpenAI answers it; without a
/// prompt the alert goes as untrusted data in its own message.
#[tokio::test]
async fn chatgpt_query_returns_the_raw_completion() {
    let completion = json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Rotate the root keys."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}});
    let answer = completion.clone();
    let server = TestServer::start(move |_| Reply::json(200, answer.clone())).await;
    let result = run(
        "chatgpt.query",
        json!({"secret_api_key": "k", "base_url": server.url("")}),
    )
    .await
    .unwrap();
    assert_eq!(result, completion);
    let body = server.requests().pop().unwrap().json();
    assert_eq!(body["model"], "gpt-4o");
    let messages = body["messages"].as_array().unwrap();
    assert!(messages[2]["content"]
        .as_str()
        .unwrap()
        .starts_with("<untrusted_alert>"));
    run(
        "chatgpt.query",
        json!({"secret_api_key": "k", "prompt": "Summarise.", "base_url": server.url("")}),
    )
    .await
    .unwrap();
    let body = server.requests().pop().unwrap().json();
    assert_eq!(body["messages"], json!([{"role": "user", "content": "Summarise."}]));
}

/// A policy giving both names of one argument is told to give one.
#[test]
fn both_names_of_an_argument_are_a_problem() {
    let registry = Registry::with_http(common::loopback_allowed());
    let args = json!({"url": "https://x", "body": "a", "data": "b"});
    let err = registry
        .validate("e", "http.fetch", args.as_object().unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("`data` is AlertChain's name for `body`: give one of them"),
        "{err}"
    );
}
