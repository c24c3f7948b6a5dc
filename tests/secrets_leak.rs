//! Secrets from Secrets Manager (moto) used by real actions, and a grep of
//! every byte the program emitted — logs at trace level, the invocation
//! response, every outcome on SNS, `input.called` as a later round saw it,
//! `run` and `play` output — for the secret values.

mod common;

use std::time::Duration;

use common::lambda::{lambda_process, runtime_api, REQUEST_ID};
use common::{
    assert_valid_record, create_bucket, create_topic, matano_sns_event, s3_client, s3_records, sns_client,
    subscribe_http, Reply, TestServer,
};
use serde_json::{json, Value};

const ROUTING_KEY: &str = "PD-ROUTING-KEY-7f3a9c";
const SIGNING_KEY: &str = "whsec-SIGNING-KEY-5be1";
const BEARER: &str = "BEARER-TOKEN-91c2d0";
/// The secret part of a Slack incoming webhook: its URL's path.
const SLACK_PATH: &str = "T0SECOPS/B0ALERTS/SLACK-PATH-4e8d21";
const WAIT: Duration = Duration::from_secs(30);

async fn secrets_client() -> aws_sdk_secretsmanager::Client {
    let sdk = common::sdk::sdk_config();
    aws_sdk_secretsmanager::Client::new(&sdk)
}

fn unique(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

fn assert_no_secret(channel: &str, text: &str) {
    for secret in [ROUTING_KEY, SIGNING_KEY, BEARER, SLACK_PATH] {
        assert!(!text.contains(secret), "{channel} contains a secret value:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_resolve_from_secrets_manager_and_never_leak() {
    let secrets = secrets_client().await;
    let pagerduty_secret = unique("prod/pagerduty");
    let signing_secret = unique("prod/webhook-signing");
    let bearer_secret = unique("prod/intel");
    let slack_secret = unique("prod/slack-webhook");
    secrets
        .create_secret()
        .name(&pagerduty_secret)
        .secret_string(json!({"routing_key": ROUTING_KEY, "team": "secops"}).to_string())
        .send()
        .await
        .unwrap();
    secrets
        .create_secret()
        .name(&signing_secret)
        .secret_string(SIGNING_KEY)
        .send()
        .await
        .unwrap();
    secrets
        .create_secret()
        .name(&bearer_secret)
        .secret_string(BEARER)
        .send()
        .await
        .unwrap();

    // Vendors that echo what they were sent, as real APIs sometimes do in errors.
    let pagerduty = TestServer::start(|req| {
        let body = req.json();
        Reply::json(202, json!({"status": "success", "message": format!("accepted key {}", body["routing_key"].as_str().unwrap()), "dedup_key": body["dedup_key"]}))
    })
    .await;
    let intel = TestServer::start(|req| {
        Reply::json(
            401,
            json!({"error": format!("bad token: {}", req.headers.get("authorization").cloned().unwrap_or_default())}),
        )
    })
    .await;
    let webhook = TestServer::ok().await;
    // Slack throttles the first post: the client retries (and logs it).
    let slack_calls = std::sync::atomic::AtomicUsize::new(0);
    let slack = TestServer::start(
        move |_| match slack_calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => Reply::text(429, "rate_limited").with_header("retry-after", "0"),
            _ => Reply::text(200, "ok"),
        },
    )
    .await;
    secrets
        .create_secret()
        .name(&slack_secret)
        .secret_string(slack.url(&format!("/services/{SLACK_PATH}")))
        .send()
        .await
        .unwrap();
    // A webhook that is gone, its URL stored as people paste it (a trailing
    // newline, the scheme in capitals): the client's error shows it
    // normalised, and that form is scrubbed too.
    let gone = TestServer::start(|_| Reply::text(404, "no_service")).await;
    let gone_secret = unique("prod/slack-webhook-gone");
    let pasted = gone
        .url(&format!("/services/{SLACK_PATH}"))
        .replacen("http://", "HTTP://", 1)
        + "\n";
    secrets
        .create_secret()
        .name(&gone_secret)
        .secret_string(pasted)
        .send()
        .await
        .unwrap();

    let policies = tempfile::tempdir().unwrap();
    std::fs::write(policies.path().join("alert.rego"), "package alert.matano\nalert contains {\"title\": input.updated_alert.title, \"severity\": input.updated_alert.severity} if true\n").unwrap();
    std::fs::write(
        policies.path().join("action.rego"),
        format!(
            r#"package action

run contains {{"id": "page", "uses": "pagerduty.trigger", "force": true, "args": {{
    "secret_routing_key": {{"secret": "{pagerduty_secret}", "key": "routing_key"}},
    "base_url": "{pd}"}}}}

run contains {{"id": "intel", "uses": "http.fetch", "force": true, "args": {{
    "url": "{intel}/lookup", "secret_bearer_token": {{"secret": "{bearer_secret}"}}}}}}

run contains {{"id": "missing", "uses": "pagerduty.trigger", "force": true, "args": {{
    "secret_routing_key": {{"secret": "prod/does-not-exist"}}, "base_url": "{pd}"}}}}

run contains {{"id": "chat", "uses": "slack.post", "force": true, "args": {{
    "secret_webhook_url": {{"secret": "{slack_secret}"}}, "text": "new alert"}}}}

run contains {{"id": "chat-gone", "uses": "slack.post", "force": true, "args": {{
    "secret_webhook_url": {{"secret": "{gone_secret}"}}, "text": "new alert"}}}}

# Round 1: everything the policy can see of round 0 goes to the webhook.
run contains {{"id": "report", "uses": "webhook.post", "args": {{
    "url": "{hook}", "data": {{"called": input.called}},
    "secret_signing_key": {{"secret": "{signing_secret}"}}}}}} if count(input.called) == 5
"#,
            pd = pagerduty.url(""),
            intel = intel.url(""),
            hook = webhook.url("/report"),
        ),
    )
    .unwrap();

    let sns = sns_client().await;
    let topic = create_topic(&sns, "leak").await;
    let subscriber = TestServer::ok().await;
    subscribe_http(&sns, &topic, &subscriber.url("/"), None).await;

    let s3 = s3_client().await;
    let bucket = create_bucket(&s3, "records").await;
    let records_uri = format!("s3://{bucket}/decisions");
    let api = runtime_api(matano_sns_event("high", &[])).await;
    let child = lambda_process(
        &api,
        &[
            ("OUTCOME_TOPIC_ARN", topic.as_str()),
            ("POLICY_DIR", policies.path().to_str().unwrap()),
            ("LOG_LEVEL", "TRACE"),
            ("DECISION_RECORDS", records_uri.as_str()),
        ],
    );
    let requests = api.wait_for(3, WAIT).await;
    let response = requests
        .iter()
        .find(|r| r.path == format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/response"))
        .unwrap_or_else(|| panic!("no response: {requests:#?}"));
    let outcomes: Vec<Value> = subscriber
        .wait_for(6, WAIT)
        .await
        .iter()
        .map(|r| r.sns_message())
        .collect();
    let report = webhook.wait_for(1, WAIT).await;

    // Positive controls: the secrets were resolved and used where they belong.
    assert_eq!(pagerduty.requests()[0].json()["routing_key"], ROUTING_KEY);
    assert_eq!(intel.requests()[0].headers["authorization"], format!("Bearer {BEARER}"));
    let signature = &report[0].headers["x-signature"];
    let t: i64 = signature
        .split(',')
        .next()
        .unwrap()
        .trim_start_matches("t=")
        .parse()
        .unwrap();
    assert_eq!(
        alert_responder::action::webhook::signature(SIGNING_KEY.as_bytes(), t, &report[0].body),
        *signature
    );

    let by_id = |id: &str| {
        outcomes
            .iter()
            .find(|o| o["action"]["id"] == id)
            .unwrap_or_else(|| panic!("no outcome for {id}"))
    };
    assert_eq!(by_id("page")["status"], "succeeded");
    assert_eq!(by_id("page")["result"]["message"], "accepted key [REDACTED]");
    assert_eq!(by_id("page")["action"]["args"]["secret_routing_key"], "[REDACTED]");
    assert_eq!(by_id("intel")["status"], "failed");
    assert_eq!(
        by_id("intel")["result"]["body"]["error"],
        "bad token: Bearer [REDACTED]"
    );
    let missing = by_id("missing");
    assert_eq!(missing["status"], "failed");
    assert_eq!(
        missing["error"],
        "action \"missing\": argument `secret_routing_key`: secret \"prod/does-not-exist\" was not found"
    );
    assert_eq!(by_id("report")["status"], "succeeded");
    assert_eq!(by_id("chat")["status"], "succeeded");
    assert_eq!(slack.requests().len(), 2, "retried after the 429");
    assert!(slack.requests()[1].path.ends_with(SLACK_PATH));
    let gone_outcome = by_id("chat-gone");
    assert_eq!(gone_outcome["status"], "failed");
    assert_eq!(gone.requests().len(), 1, "the pasted URL was used");
    let error = gone_outcome["error"].as_str().unwrap();
    assert!(error.contains("404") && error.contains("[REDACTED]"), "{error}");

    // Every channel, every byte.
    let mut child = child;
    child.start_kill().unwrap();
    let output = child.wait_with_output().await.unwrap();
    let logs = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    assert!(
        logs.contains("\"level\":\"TRACE\"") || logs.contains("\"level\":\"DEBUG\""),
        "trace logging was on:\n{logs}"
    );
    assert!(logs.contains("retrying HTTP request"), "the retry was logged:\n{logs}");
    assert_no_secret("the function's logs", &logs);
    assert_no_secret("the invocation response", &String::from_utf8_lossy(&response.body));
    for outcome in &outcomes {
        assert_no_secret("an outcome", &outcome.to_string());
    }
    assert_no_secret(
        "input.called, as the next round saw it",
        &String::from_utf8_lossy(&report[0].body),
    );
    // The decision record (written before the invocation succeeded): every
    // action with its redacted args and scrubbed results, in moto's S3.
    let records = s3_records(&s3, &bucket, "decisions/").await;
    assert_eq!(records.len(), 1, "{records:#?}");
    let (key, record) = &records[0];
    assert!(
        key.starts_with("decisions/dt=") && key.contains("/hour=") && key.ends_with(".jsonl.gz"),
        "{key}"
    );
    assert_valid_record(record);
    assert_eq!(record["request_id"], REQUEST_ID);
    let actions = record["alerts"][0]["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 6, "{record:#}");
    let page = actions.iter().find(|a| a["id"] == "page").unwrap();
    assert_eq!(page["args"]["secret_routing_key"], "[REDACTED]");
    assert_eq!(page["result"]["message"], "accepted key [REDACTED]");
    assert_eq!(record["bundle_digest"], by_id("page")["bundle_digest"]);
    assert_no_secret("the decision record", &record.to_string());
    assert_no_secret(
        "SNS deliveries",
        &subscriber
            .requests()
            .iter()
            .map(|r| String::from_utf8_lossy(&r.body).to_string())
            .collect::<String>(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literal_secrets_never_reach_run_or_play_output() {
    let echo = TestServer::start(|req| Reply::json(500, json!({"echo": req.headers.get("authorization")}))).await;
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(
        policies.path().join("alert.rego"),
        "package alert.matano\nalert contains {\"title\": input.updated_alert.title} if true\n",
    )
    .unwrap();
    std::fs::write(
        policies.path().join("action.rego"),
        format!(
            "package action\nrun contains {{\"id\": \"fetch\", \"uses\": \"http.fetch\", \"args\": {{\"url\": \"{}\", \"secret_bearer_token\": \"{BEARER}\"}}}}\n",
            echo.url("/x")
        ),
    )
    .unwrap();
    let records = tempfile::tempdir().unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_alert-responder"))
        .args([
            "run",
            "--log-level",
            "trace",
            "--policies",
            policies.path().to_str().unwrap(),
            "--records",
            records.path().to_str().unwrap(),
        ])
        .env("HTTP_ALLOW_PRIVATE", "true")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("\"status\":\"failed\""), "{stdout}");
    assert!(
        stdout.contains("Bearer [REDACTED]"),
        "the echoed header is scrubbed: {stdout}"
    );
    assert_no_secret("run stdout", &stdout);
    assert_no_secret("run stderr", &String::from_utf8_lossy(&run.stderr));
    assert_eq!(echo.requests()[0].headers["authorization"], format!("Bearer {BEARER}"));
    let mut record_text = String::new();
    for hour in std::fs::read_dir(records.path()).unwrap() {
        for dir in std::fs::read_dir(hour.unwrap().path()).unwrap() {
            for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
                let body = std::fs::read(file.unwrap().path()).unwrap();
                for record in alert_responder::records::decode(&body).unwrap() {
                    record_text.push_str(&serde_json::to_string(&record).unwrap());
                }
            }
        }
    }
    assert!(
        record_text.contains("Bearer [REDACTED]"),
        "the run's record: {record_text}"
    );
    assert_no_secret("run --records", &record_text);

    let scenarios = tempfile::tempdir().unwrap();
    std::fs::write(
        scenarios.path().join("s.yaml"),
        format!(
            "id: leak\nevents:\n  - input_file: {}\nactions:\n  fetch: [{{result: {{status: 200}}}}]\nexpect:\n  rounds: [[fetch]]\n",
            common::fixture_path("matano_alert_change_v1.json")
        ),
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let play = std::process::Command::new(env!("CARGO_BIN_EXE_alert-responder"))
        .args([
            "play",
            "--log-level",
            "trace",
            "--policies",
            policies.path().to_str().unwrap(),
        ])
        .args([
            "--scenarios",
            scenarios.path().to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let play_stdout = String::from_utf8_lossy(&play.stdout);
    assert!(
        play.status.success(),
        "{play_stdout}{}",
        String::from_utf8_lossy(&play.stderr)
    );
    assert_no_secret("play stdout", &play_stdout);
    assert_no_secret("play stderr", &String::from_utf8_lossy(&play.stderr));
    let result = std::fs::read_to_string(out.path().join("leak/result.json")).unwrap();
    assert!(result.contains("\"secret_bearer_token\": \"[REDACTED]\""), "{result}");
    assert_no_secret("play result.json", &result);
}
