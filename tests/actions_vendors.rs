//! Every vendor action against a real loopback server that checks the
//! request as the vendor documents it (method, path, auth scheme, body) and
//! answers with a response of the documented shape; then every action
//! through the failure matrix (401, 404, 429 with Retry-After, 500, timeout,
//! invalid JSON).

mod common;

use alert_responder::action::ActionError;
use alert_responder::model::{Alert, Attr, Reference};
use common::{Recorded, Reply, TestServer};
use serde_json::{json, Value};

fn alert() -> Alert {
    common::sample_alert(
        vec![Attr::new("source_ip", json!("5.205.62.253"))],
        vec![Reference {
            url: "https://runbooks.example.org/root".into(),
            title: "Runbook".into(),
        }],
    )
}

async fn run(uses: &str, args: Value) -> Result<Value, ActionError> {
    common::run_action(
        common::loopback_allowed(),
        &alert(),
        uses,
        args,
        "5f2b0c1d9e8a7b6c5f2b0c1d9e8a7b6c",
    )
    .await
}

fn only(server: &TestServer) -> Recorded {
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    requests.into_iter().next().unwrap()
}

#[tokio::test]
async fn slack_incoming_webhook_posts_block_kit() {
    let server = TestServer::start(|_| Reply::text(200, "ok")).await;
    let result = run(
        "slack.post",
        json!({"secret_webhook_url": server.url("/services/T000/B000/XXXX")}),
    )
    .await
    .unwrap();
    assert_eq!(result, json!({"status": 200, "body": "ok"}));
    let request = only(&server);
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/services/T000/B000/XXXX")
    );
    let body = request.json();
    assert_eq!(body["text"], "[high] AWS Root Credentials Change");
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(
        blocks[0],
        json!({"type": "header", "text": {"type": "plain_text", "text": "AWS Root Credentials Change", "emoji": false}})
    );
    let fields: Vec<&str> = blocks[1]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        vec!["Severity\nhigh", "Source\nmatano", "source_ip\n5.205.62.253"]
    );
    assert_eq!(
        blocks.last().unwrap()["elements"][0]["text"],
        "<https://runbooks.example.org/root|Runbook>"
    );
    assert!(body.get("thread_ts").is_none(), "webhooks cannot thread");
}

#[tokio::test]
async fn slack_chat_post_message_threads_under_matanos_message() {
    let server =
        TestServer::start(|_| Reply::json(200, json!({"ok": true, "channel": "C123", "ts": "1678861300.000200"})))
            .await;
    let result = run(
        "slack.post",
        json!({"secret_token": "xoxb-1", "channel": "#secops", "base_url": server.url("/api")}),
    )
    .await
    .unwrap();
    assert_eq!(
        result,
        json!({"ok": true, "channel": "C123", "ts": "1678861300.000200", "thread_ts": "1678861298.161909"})
    );
    let request = only(&server);
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/api/chat.postMessage")
    );
    assert_eq!(request.headers["authorization"], "Bearer xoxb-1");
    let body = request.json();
    assert_eq!(body["channel"], "#secops");
    // From the fixture's destination_to_alert_info.slack_my_team.
    assert_eq!(body["thread_ts"], "1678861298.161909");
}

#[tokio::test]
async fn slack_api_errors_in_a_200_are_failures() {
    let server = TestServer::start(|_| Reply::json(200, json!({"ok": false, "error": "channel_not_found"}))).await;
    let err = run(
        "slack.post",
        json!({"secret_token": "xoxb-1", "channel": "#nope", "base_url": server.url("")}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "Slack error: channel_not_found");
    assert_eq!(err.result().unwrap()["body"]["error"], "channel_not_found");
    let err = run("slack.post", json!({"channel": "#x"})).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("arguments `secret_webhook_url` and `secret_token`: give exactly one of them (0 given)"),
        "{err}"
    );
}

#[tokio::test]
async fn pagerduty_trigger_and_resolve_use_events_api_v2() {
    let server = TestServer::start(|req| {
        let dedup = req.json()["dedup_key"].clone();
        Reply::json(
            202,
            json!({"status": "success", "message": "Event processed", "dedup_key": dedup}),
        )
    })
    .await;
    let result = run(
        "pagerduty.trigger",
        json!({"secret_routing_key": "R0UTING", "base_url": server.url("")}),
    )
    .await
    .unwrap();
    assert_eq!(
        result,
        json!({"status": "success", "message": "Event processed", "dedup_key": "61d3ac78-cedd-434e-b407-ae0b330e1d4a"})
    );
    let resolve = run(
        "pagerduty.resolve",
        json!({"secret_routing_key": "R0UTING", "base_url": server.url("")}),
    )
    .await
    .unwrap();
    assert_eq!(resolve["dedup_key"], "61d3ac78-cedd-434e-b407-ae0b330e1d4a");

    let requests = server.requests();
    assert!(requests.iter().all(|r| r.method == "POST" && r.path == "/v2/enqueue"));
    let trigger = requests[0].json();
    assert_eq!(trigger["routing_key"], "R0UTING");
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["payload"]["summary"], "[high] AWS Root Credentials Change");
    assert_eq!(trigger["payload"]["severity"], "error");
    assert_eq!(trigger["payload"]["source"], "matano");
    assert_eq!(
        trigger["payload"]["custom_details"],
        json!({"source_ip": "5.205.62.253"})
    );
    assert_eq!(
        trigger["links"],
        json!([{"href": "https://runbooks.example.org/root", "text": "Runbook"}])
    );
    let resolve = requests[1].json();
    assert_eq!(
        resolve,
        json!({"routing_key": "R0UTING", "event_action": "resolve", "dedup_key": "61d3ac78-cedd-434e-b407-ae0b330e1d4a"})
    );

    let err = run(
        "pagerduty.trigger",
        json!({"secret_routing_key": "R", "severity": "sev1", "base_url": server.url("")}),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("argument `severity` must be one of critical, error, warning, info (got the string \"sev1\")"),
        "{err}"
    );
}

#[tokio::test]
async fn jira_create_issue_and_comment_use_rest_v3_with_adf() {
    let server = TestServer::start(|req| {
        if req.path.ends_with("/comment") {
            Reply::json(
                201,
                json!({"id": "10010", "self": "https://acme.atlassian.net/rest/api/3/issue/10001/comment/10010"}),
            )
        } else {
            Reply::json(
                201,
                json!({"id": "10001", "key": "SEC-42", "self": "https://acme.atlassian.net/rest/api/3/issue/10001"}),
            )
        }
    })
    .await;
    let base = server.url("");
    let created = run(
        "jira.create_issue",
        json!({"project": "SEC", "email": "bot@example.org", "secret_api_token": "tok", "labels": ["matano"], "base_url": base}),
    )
    .await
    .unwrap();
    assert_eq!(
        created,
        json!({"id": "10001", "key": "SEC-42", "url": format!("{base}/browse/SEC-42"),
            "self": "https://acme.atlassian.net/rest/api/3/issue/10001"})
    );
    let comment = run(
        "jira.add_comment",
        json!({"issue": "SEC-42", "secret_api_token": "pat", "body": "seen again", "base_url": base}),
    )
    .await
    .unwrap();
    assert_eq!(comment, json!({"id": "10010", "issue": "SEC-42"}));

    let requests = server.requests();
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("POST", "/rest/api/3/issue")
    );
    // Basic base64("bot@example.org:tok").
    assert_eq!(
        requests[0].headers["authorization"],
        "Basic Ym90QGV4YW1wbGUub3JnOnRvaw=="
    );
    let fields = &requests[0].json()["fields"];
    assert_eq!(fields["project"], json!({"key": "SEC"}));
    assert_eq!(fields["issuetype"], json!({"name": "Task"}));
    assert_eq!(fields["summary"], "[high] AWS Root Credentials Change");
    assert_eq!(fields["labels"], json!(["matano"]));
    assert_eq!(fields["description"]["type"], "doc");
    assert_eq!(
        fields["description"]["content"][0]["content"][0]["text"],
        "[high] AWS Root Credentials Change"
    );
    assert_eq!(
        (requests[1].method.as_str(), requests[1].path.as_str()),
        ("POST", "/rest/api/3/issue/SEC-42/comment")
    );
    assert_eq!(requests[1].headers["authorization"], "Bearer pat");
    assert_eq!(
        requests[1].json()["body"]["content"][0]["content"][0]["text"],
        "seen again"
    );

    let err = run("jira.create_issue", json!({"project": "SEC", "secret_api_token": "t"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`base_url` is required"), "{err}");
    let err = run(
        "jira.add_comment",
        json!({"issue": "../../admin", "secret_api_token": "t", "base_url": base}),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not a plain name"), "{err}");
}

#[tokio::test]
async fn github_issue_and_comment_use_the_rest_api_headers() {
    let server = TestServer::start(|req| {
        if req.path.ends_with("/comments") {
            Reply::json(
                201,
                json!({"id": 1, "html_url": "https://github.com/acme/sec/issues/7#issuecomment-1"}),
            )
        } else {
            Reply::json(
                201,
                json!({"id": 99, "number": 7, "html_url": "https://github.com/acme/sec/issues/7"}),
            )
        }
    })
    .await;
    let issue = run(
        "github.create_issue",
        json!({"owner": "acme", "repo": "sec", "secret_token": "ghp", "labels": ["alert"], "base_url": server.url("")}),
    )
    .await
    .unwrap();
    assert_eq!(
        issue,
        json!({"number": 7, "id": 99, "url": "https://github.com/acme/sec/issues/7",
            "html_url": "https://github.com/acme/sec/issues/7", "state": null, "title": null})
    );
    let comment = run(
        "github.create_comment",
        json!({"owner": "acme", "repo": "sec", "issue_number": 7, "secret_token": "ghp", "base_url": server.url("")}),
    )
    .await
    .unwrap();
    assert_eq!(comment["id"], 1);

    let requests = server.requests();
    assert_eq!(
        (requests[0].method.as_str(), requests[0].path.as_str()),
        ("POST", "/repos/acme/sec/issues")
    );
    assert_eq!(requests[1].path, "/repos/acme/sec/issues/7/comments");
    for request in &requests {
        assert_eq!(request.headers["authorization"], "Bearer ghp");
        assert_eq!(request.headers["accept"], "application/vnd.github+json");
        assert_eq!(request.headers["x-github-api-version"], "2022-11-28");
        assert!(request.headers["user-agent"].starts_with("alert-responder/"));
    }
    let body = requests[0].json();
    assert_eq!(body["title"], "[high] AWS Root Credentials Change");
    assert_eq!(body["labels"], json!(["alert"]));
    // Markdown from alert data is literal: the punctuation is escaped.
    assert!(
        body["body"]
            .as_str()
            .unwrap()
            .contains("source\\_ip:\u{2060} 5\\.205\\.62\\.253"),
        "{}",
        body["body"]
    );
}

#[tokio::test]
async fn opsgenie_create_alert_uses_genie_key_and_alias() {
    let server = TestServer::start(|_| Reply::json(202, json!({"result": "Request will be processed", "took": 0.302, "requestId": "43a29c5c-3dbf-4fa4-9c26-f4f71023e120"}))).await;
    let result = run(
        "opsgenie.create_alert",
        json!({"secret_api_key": "gk", "tags": ["matano"], "base_url": server.url("")}),
    )
    .await
    .unwrap();
    assert_eq!(
        result,
        json!({"request_id": "43a29c5c-3dbf-4fa4-9c26-f4f71023e120", "requestId": "43a29c5c-3dbf-4fa4-9c26-f4f71023e120",
            "took": 0.302, "result": "Request will be processed"})
    );
    let request = only(&server);
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/v2/alerts"));
    assert_eq!(request.headers["authorization"], "GenieKey gk");
    let body = request.json();
    assert_eq!(body["message"], "AWS Root Credentials Change");
    assert_eq!(body["alias"], "61d3ac78-cedd-434e-b407-ae0b330e1d4a");
    assert_eq!(body["priority"], "P2");
    assert_eq!(body["tags"], json!(["matano"]));
    assert_eq!(body["details"], json!({"source_ip": "5.205.62.253"}));
}

#[tokio::test]
async fn virustotal_lookups_by_kind_and_unknown_indicators() {
    let server = TestServer::start(|req| {
        if req.path.starts_with("/api/v3/files/") {
            Reply::json(404, json!({"error": {"code": "NotFoundError", "message": "File not found"}}))
        } else {
            Reply::json(200, json!({"data": {"id": "x", "type": "ip_address", "attributes": {
                "last_analysis_stats": {"malicious": 4, "suspicious": 1, "harmless": 60, "undetected": 20, "timeout": 0},
                "reputation": -11}}}))
        }
    })
    .await;
    let base = server.url("/api/v3");
    let ip = run(
        "virustotal.lookup",
        json!({"indicator": "5.205.62.253", "secret_api_key": "vt", "base_url": base}),
    )
    .await
    .unwrap();
    assert_eq!(
        ip,
        json!({"indicator": "5.205.62.253", "type": "ip", "found": true, "malicious": 4, "suspicious": 1, "harmless": 60,
               "undetected": 20, "reputation": -11, "link": "https://www.virustotal.com/gui/ip-address/5.205.62.253"})
    );
    run(
        "virustotal.lookup",
        json!({"indicator": "evil.example", "secret_api_key": "vt", "base_url": base}),
    )
    .await
    .unwrap();
    run(
        "virustotal.lookup",
        json!({"indicator": "https://evil.example/a?b", "secret_api_key": "vt", "base_url": base}),
    )
    .await
    .unwrap();
    let file = run(
        "virustotal.lookup",
        json!({"indicator": "44d88612fea8a8f36de82e1278abb02f", "secret_api_key": "vt", "base_url": base}),
    )
    .await
    .unwrap();
    assert_eq!(file["found"], false);
    assert_eq!(
        (file["malicious"].as_u64(), &file["reputation"]),
        (Some(0), &Value::Null),
        "{file}"
    );

    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        vec![
            "/api/v3/ip_addresses/5.205.62.253",
            "/api/v3/domains/evil.example",
            // base64url of the URL, unpadded.
            "/api/v3/urls/aHR0cHM6Ly9ldmlsLmV4YW1wbGUvYT9i",
            "/api/v3/files/44d88612fea8a8f36de82e1278abb02f",
        ]
    );
    assert!(server
        .requests()
        .iter()
        .all(|r| r.method == "GET" && r.headers["x-apikey"] == "vt"));

    // An indicator that would address another resource is refused, sent nowhere;
    // a link from a hostile one holds no markup.
    for nothing in ["..", ".", "  "] {
        let err = run(
            "virustotal.lookup",
            json!({"indicator": nothing, "secret_api_key": "vt", "base_url": base}),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("indicator"), "{err}");
    }
    assert_eq!(server.requests().len(), 4);
    let hostile = run(
        "virustotal.lookup",
        json!({"indicator": "x|Reset MFA> <!channel", "type": "domain", "secret_api_key": "vt", "base_url": base}),
    )
    .await
    .unwrap();
    let link = hostile["link"].as_str().unwrap();
    assert!(link.starts_with("https://www.virustotal.com/gui/domain/"), "{link}");
    assert!(!link.contains(['|', '<', '>', ' ']), "{link}");
}

#[tokio::test]
async fn otx_indicator_general_section() {
    let server = TestServer::start(|_| {
        Reply::json(200, json!({"indicator": "5.205.62.253", "reputation": 0,
            "pulse_info": {"count": 2, "pulses": [{"id": "p1", "name": "Scanners 2023"}, {"id": "p2", "name": "Tor exits"}]}}))
    })
    .await;
    let result = run(
        "otx.indicator",
        json!({"indicator": "5.205.62.253", "secret_api_key": "otx", "base_url": server.url("")}),
    )
    .await
    .unwrap();
    assert_eq!(
        result,
        json!({"indicator": "5.205.62.253", "type": "IPv4", "pulse_count": 2, "pulses": ["Scanners 2023", "Tor exits"], "reputation": 0})
    );
    run("otx.indicator", json!({"indicator": "https://evil.example/a/b", "section": "url_list", "secret_api_key": "otx", "base_url": server.url("")})).await.unwrap();
    let requests = server.requests();
    assert_eq!(requests[0].path, "/api/v1/indicators/IPv4/5.205.62.253/general");
    assert_eq!(requests[0].headers["x-otx-api-key"], "otx");
    // The URL is one path segment, percent-encoded.
    assert_eq!(
        requests[1].path,
        "/api/v1/indicators/url/https:%2F%2Fevil.example%2Fa%2Fb/url_list"
    );
}

#[tokio::test]
async fn openai_chat_sends_prompt_and_alert() {
    let server = TestServer::start(|_| {
        Reply::json(200, json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Likely credential misuse."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 812, "completion_tokens": 6, "total_tokens": 818}}))
    })
    .await;
    let result = run("openai.chat", json!({"prompt": "Summarize the risk.", "secret_api_key": "sk-1", "max_tokens": 200, "base_url": server.url("/v1")})).await.unwrap();
    assert_eq!(result["content"], "Likely credential misuse.");
    assert_eq!(result["finish_reason"], "stop");
    assert_eq!(result["usage"]["total_tokens"], 818);
    let request = only(&server);
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(request.headers["authorization"], "Bearer sk-1");
    let body = request.json();
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["max_tokens"], 200);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1]["content"], "Summarize the risk.");
    let alert = body["messages"][2]["content"].as_str().unwrap();
    assert!(alert.starts_with("<untrusted_alert>\n"), "{alert}");
    assert!(alert.contains("61d3ac78-cedd-434e-b407-ae0b330e1d4a"));
}

/// Minimal valid args for every HTTP action, aimed at `base`.
fn every_action(base: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("http.fetch", json!({"url": format!("{base}/x")})),
        ("webhook.post", json!({"url": format!("{base}/x")})),
        (
            "slack.post",
            json!({"secret_token": "t", "channel": "c", "base_url": base}),
        ),
        ("slack.post", json!({"secret_webhook_url": format!("{base}/hook")})),
        (
            "pagerduty.trigger",
            json!({"secret_routing_key": "r", "base_url": base}),
        ),
        (
            "pagerduty.resolve",
            json!({"secret_routing_key": "r", "base_url": base}),
        ),
        (
            "jira.create_issue",
            json!({"project": "SEC", "secret_api_token": "t", "base_url": base}),
        ),
        (
            "jira.add_comment",
            json!({"issue": "SEC-1", "secret_api_token": "t", "base_url": base}),
        ),
        (
            "github.create_issue",
            json!({"owner": "o", "repo": "r", "secret_token": "t", "base_url": base}),
        ),
        (
            "github.create_comment",
            json!({"owner": "o", "repo": "r", "issue_number": 1, "secret_token": "t", "base_url": base}),
        ),
        (
            "opsgenie.create_alert",
            json!({"secret_api_key": "k", "base_url": base}),
        ),
        (
            "virustotal.lookup",
            json!({"indicator": "5.205.62.253", "secret_api_key": "k", "base_url": base}),
        ),
        (
            "otx.indicator",
            json!({"indicator": "5.205.62.253", "secret_api_key": "k", "base_url": base}),
        ),
        (
            "openai.chat",
            json!({"prompt": "p", "secret_api_key": "k", "base_url": base}),
        ),
        (
            "jira.add_attachment",
            json!({"issue": "SEC-1", "file_name": "a.json", "data": "{}", "secret_api_token": "t", "base_url": base}),
        ),
        ("chatgpt.query", json!({"secret_api_key": "k", "base_url": base})),
        (
            "github.add_comment",
            json!({"owner": "o", "repo": "r", "issue_number": 1, "secret_token": "t", "base_url": base}),
        ),
    ]
}

#[tokio::test]
async fn every_action_reports_http_failures() {
    for status in [401u16, 404, 429, 500] {
        let server =
            TestServer::start(move |_| Reply::json(status, json!({"error": "e"})).with_header("retry-after", "0"))
                .await;
        for (uses, args) in every_action(&server.url("")) {
            let outcome = run(uses, args).await;
            if uses == "virustotal.lookup" && status == 404 {
                assert_eq!(outcome.unwrap()["found"], false, "an unknown indicator is a result");
                continue;
            }
            let err = outcome.expect_err(uses);
            assert!(
                err.to_string().contains(&format!("HTTP {status}")),
                "{uses} on {status}: {err}"
            );
            let result = err
                .result()
                .unwrap_or_else(|| panic!("{uses} on {status} keeps the response"));
            assert_eq!(result["status"], status, "{uses}");
            if status == 429 {
                assert_eq!(result["headers"]["retry-after"], "0", "{uses}");
            }
        }
    }
}

#[tokio::test]
async fn every_action_times_out() {
    let server = TestServer::start(|_| Reply::Hang).await;
    for (uses, mut args) in every_action(&server.url("")) {
        args["timeout_ms"] = json!(200);
        if uses == "slack.post" && args.get("secret_webhook_url").is_some() {
            continue; // the same request path as the token variant
        }
        let err = run(uses, args).await.expect_err(uses);
        assert!(err.to_string().contains("timed out after 200 ms"), "{uses}: {err}");
    }
}

#[tokio::test]
async fn json_apis_reject_invalid_json() {
    let server = TestServer::start(|_| Reply::Respond {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: b"<html>proxy error</html>".to_vec(),
    })
    .await;
    for (uses, args) in every_action(&server.url("")) {
        let outcome = run(uses, args.clone()).await;
        match uses {
            // Generic HTTP actions return whatever came back.
            "http.fetch" | "webhook.post" => {
                assert_eq!(outcome.unwrap()["body"], "<html>proxy error</html>")
            }
            "slack.post" if args.get("secret_webhook_url").is_some() => assert!(outcome.is_ok()),
            "virustotal.lookup" => {
                let err = outcome.expect_err(uses);
                assert!(err.to_string().contains("without data.attributes"), "{err}");
            }
            "jira.add_attachment" => {
                let err = outcome.expect_err(uses);
                assert!(err.to_string().contains("not a list of attachments"), "{err}");
            }
            _ => {
                let err = outcome.expect_err(uses);
                assert!(err.to_string().contains("not a JSON object"), "{uses}: {err}");
                assert_eq!(err.result().unwrap()["body"], "<html>proxy error</html>");
            }
        }
    }
}

/// A server that echoes the request's credentials does not hand back a
/// derived one: Jira's Basic `email:token` in base64 is scrubbed from the
/// failed response kept in the error's result, and from a success's body.
#[tokio::test]
async fn an_echoed_derived_credential_is_scrubbed_from_the_response() {
    let server = TestServer::start(|req| {
        let auth = req.headers.get("authorization").cloned().unwrap_or_default();
        match req.path.ends_with("/comment") {
            true => Reply::json(201, json!({"id": "1", "seen": auth})),
            false => Reply::json(401, json!({"error": format!("bad credentials: {auth}")})),
        }
    })
    .await;
    let args = json!({"secret_api_token": "jira-token-5e1", "email": "r@example.org", "base_url": server.url("")});
    let mut create = args.clone();
    create["project"] = json!("SEC");
    let mut comment = args;
    comment["issue"] = json!("SEC-1");
    let basic = data_encoding::BASE64.encode(b"r@example.org:jira-token-5e1");
    let err = run("jira.create_issue", create).await.unwrap_err();
    let shown = format!("{err} {}", serde_json::to_string(&err.result()).unwrap());
    assert!(shown.contains("401"), "{shown}");
    assert!(!shown.contains(&basic), "the Basic credential came back: {shown}");
    let ok = run("jira.add_comment", comment).await.unwrap();
    assert!(!ok.to_string().contains(&basic), "{ok}");
    assert!(
        server.requests()[0].headers["authorization"].ends_with(&basic),
        "it was sent"
    );
}
