//! The real binary in Lambda mode, driven through a loopback implementation
//! of the Lambda Runtime API (2018-06-01): `invocation/next`, `/response`,
//! `/error` and `init/error`; outcomes land on moto.

mod common;

use std::time::Duration;

use common::lambda::{lambda_process, runtime_api, REQUEST_ID};
use common::{assert_valid_outcome, create_topic, matano_sns_event, sns_client, subscribe_http, Reply, TestServer};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_an_sns_event_and_publishes_outcomes() {
    let sns = sns_client().await;
    let topic = create_topic(&sns, "lambda-outcomes").await;
    let subscriber = TestServer::ok().await;
    subscribe_http(&sns, &topic, &subscriber.url("/"), None).await;
    let webhook = TestServer::ok().await;
    let intel = TestServer::start(|_| Reply::json(200, json!({"country": "DE"}))).await;

    let api = runtime_api(matano_sns_event("high", &[])).await;
    let intel_url = intel.url("");
    let webhook_url = webhook.url("/hook");
    let mut child = lambda_process(
        &api,
        &[
            ("OUTCOME_TOPIC_ARN", topic.as_str()),
            ("POLICY_ENV", "INTEL_URL,WEBHOOK_URL"),
            ("INTEL_URL", intel_url.as_str()),
            ("WEBHOOK_URL", webhook_url.as_str()),
        ],
    );

    // next, response, then the next long poll.
    let requests = api.wait_for(3, WAIT).await;
    let response = requests
        .iter()
        .find(|r| r.path == format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/response"))
        .unwrap_or_else(|| panic!("no response posted: {requests:#?}"));
    let summary = response.json();
    // The fixture's diff has no new source IP, so no lookup: the webhook runs in round 0.
    assert_eq!(
        summary,
        json!({"records": 1, "rejected": 0, "alerts": 1, "actions": 1, "failed_actions": 0, "policy_errors": 0, "outcomes": 1})
    );

    let hook = webhook.wait_for(1, WAIT).await;
    assert_eq!(hook[0].json()["alert"]["title"], "AWS Root Credentials Change");
    let outcome = subscriber.wait_for(1, WAIT).await[0].sns_message();
    assert_valid_outcome(&outcome);
    assert_eq!(outcome["action"]["id"], "notify_webhook");
    assert_eq!(outcome["status"], "succeeded");
    assert!(intel.requests().is_empty());

    child.kill().await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    let logs = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    // JSON logs with the request id on the invocation's lines.
    let done = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "invocation done")
        .unwrap_or_else(|| panic!("no 'invocation done' log line in:\n{logs}"));
    assert_eq!(done["span"]["requestId"], REQUEST_ID, "{done}");
    // Structured fields on action lines.
    let action = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "action done")
        .unwrap_or_else(|| panic!("no 'action done' log line in:\n{logs}"));
    assert_eq!(action["fields"]["action_id"], "notify_webhook");
    assert_eq!(action["fields"]["alert_id"], outcome["alert"]["id"]);
    assert_eq!(action["span"]["requestId"], REQUEST_ID);
    // One Embedded Metric Format line for the invocation, one per (uses, status).
    let emf: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l.get("_aws").is_some())
        .collect();
    assert_eq!(emf.len(), 2, "{logs}");
    assert_eq!(emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"], "AlertResponder");
    assert_eq!(emf[0]["FunctionName"], "alert-responder");
    assert_eq!(
        (
            emf[0]["AlertsReceived"].as_f64(),
            emf[0]["AlertsMatched"].as_f64(),
            emf[0]["ActionsRun"].as_f64()
        ),
        (Some(1.0), Some(1.0), Some(1.0))
    );
    assert!(emf[0]["PolicyEvaluationTime"].as_f64().unwrap() > 0.0);
    assert_eq!(
        (
            emf[1]["Uses"].as_str(),
            emf[1]["Status"].as_str(),
            emf[1]["Actions"].as_u64()
        ),
        (Some("webhook.post"), Some("succeeded"), Some(1))
    );
    assert!(!logs.contains("testing"), "credentials leaked into logs:\n{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_failure_is_reported_as_an_invocation_error() {
    let sns = sns_client().await;
    let topic = create_topic(&sns, "lambda-gone").await;
    sns.delete_topic().topic_arn(&topic).send().await.unwrap();
    let api = runtime_api(matano_sns_event("high", &[])).await;
    let _child = lambda_process(
        &api,
        &[
            ("OUTCOME_TOPIC_ARN", topic.as_str()),
            ("DRY_RUN", "true"),
            ("POLICY_ENV", "WEBHOOK_URL"),
            ("WEBHOOK_URL", "http://127.0.0.1:9/never-called"),
        ],
    );

    let requests = api.wait_for(3, WAIT).await;
    let error = requests
        .iter()
        .find(|r| r.path == format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/error"))
        .unwrap_or_else(|| panic!("no error posted: {requests:#?}"));
    let body = error.json();
    assert_eq!(body["errorType"], "AlertResponder.PublishError");
    assert!(body["errorMessage"].as_str().unwrap().contains(&topic), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_failure_is_reported_to_init_error() {
    let api = runtime_api(json!({})).await;
    let child = lambda_process(&api, &[]);
    let requests = api.wait_for(1, WAIT).await;
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/2018-06-01/runtime/init/error");
    assert_eq!(
        requests[0].headers["lambda-runtime-function-error-type"],
        "Runtime.InitError"
    );
    let body = requests[0].json();
    assert!(
        body["errorMessage"].as_str().unwrap().contains("OUTCOME_TOPIC_ARN"),
        "{body}"
    );
    let status = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap()
        .status;
    assert!(!status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_policy_dir_fails_init_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("action.rego"),
        "package action\nrun contains x if {\n  x := \n}\n",
    )
    .unwrap();
    let api = runtime_api(json!({})).await;
    let _child = lambda_process(
        &api,
        &[
            ("OUTCOME_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:t"),
            ("POLICY_DIR", dir.path().to_str().unwrap()),
        ],
    );
    let requests = api.wait_for(1, WAIT).await;
    assert_eq!(requests[0].path, "/2018-06-01/runtime/init/error");
    let message = requests[0].json()["errorMessage"].as_str().unwrap().to_string();
    assert!(message.contains("action.rego:"), "{message}");
}
