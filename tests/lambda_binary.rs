//! The real binary in Lambda mode, driven through a loopback implementation
//! of the Lambda Runtime API (2018-06-01): `invocation/next`, `/response`,
//! `/error` and `init/error`; outcomes land on moto.

mod common;

use std::time::Duration;

use aws_sdk_sqs::types::Message;
use common::lambda::{lambda_process, lambda_process_of, runtime_api, REQUEST_ID};
use common::{assert_valid_outcome, create_topic, matano_sns_event, sns_client, subscribe_http, Reply, TestServer};
use serde_json::{json, Value};
use tokio::process::Child;

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
    let summary = invocation_response(&api).await;
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

/// What the function answered its (first) invocation, once it has.
async fn invocation_response(api: &TestServer) -> Value {
    let requests = api.wait_for(3, WAIT).await;
    requests
        .iter()
        .find(|r| r.path == format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/response"))
        .unwrap_or_else(|| panic!("no response posted: {requests:#?}"))
        .json()
}

/// The invocation's EMF line, read once the process is stopped.
async fn invocation_metrics(mut child: Child) -> Value {
    child.kill().await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l.get("AlertsReceived").is_some())
        .unwrap_or_else(|| panic!("no EMF line in:\n{stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_failure_is_reported_as_an_invocation_error() {
    let sns = sns_client().await;
    let topic = create_topic(&sns, "lambda-gone").await;
    sns.delete_topic().topic_arn(&topic).send().await.unwrap();
    let api = runtime_api(matano_sns_event("high", &[])).await;
    let child = lambda_process(
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

    // The failed invocation's metrics still count what it decided.
    let emf = invocation_metrics(child).await;
    assert_eq!(
        (
            emf["AlertsReceived"].as_f64(),
            emf["AlertsMatched"].as_f64(),
            emf["OutcomePublishFailures"].as_f64(),
            emf["OutcomesPublished"].as_f64()
        ),
        (Some(1.0), Some(1.0), Some(1.0), Some(0.0)),
        "{emf}"
    );
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

/// An SNS record as Lambda delivers it from `topic`, carrying `message`
/// with no message attributes (EventBridge → SNS sets none).
fn sns_record_event(topic: &str, message: &str, message_id: &str) -> Value {
    let mut event: Value = serde_json::from_str(&common::fixture("sns_event_matano.json")).unwrap();
    let sns = &mut event["Records"][0]["Sns"];
    sns["TopicArn"] = json!(topic);
    sns["MessageId"] = json!(message_id);
    sns["Message"] = json!(message);
    sns["MessageAttributes"] = json!({});
    event["Records"][0]["EventSubscriptionArn"] = json!(format!("{topic}:0b5d4f6e-1111-2222-3333-444455556666"));
    event
}

/// One deployment, two further source topics mapped to two schemas
/// (TOPIC_SCHEMAS): a GuardDuty finding and a Security Hub finding, both
/// from EventBridge through SNS with no `schema` attribute, each reach their
/// own alert policy; the same finding from a topic nothing maps is rejected
/// with how to route it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_topics_route_to_their_schemas() {
    let sns = sns_client().await;
    let outcomes = create_topic(&sns, "lambda-routing-outcomes").await;
    let guardduty_topic = create_topic(&sns, "guardduty-findings").await;
    let hub_topic = create_topic(&sns, "security-hub-findings").await;
    let unmapped_topic = create_topic(&sns, "unmapped-findings").await;
    let subscriber = TestServer::ok().await;
    subscribe_http(&sns, &outcomes, &subscriber.url("/"), None).await;
    let webhook = TestServer::ok().await;

    let policies = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(policies.path().join("alert")).unwrap();
    std::fs::write(
        policies.path().join("alert/guardduty.rego"),
        r#"package alert.guardduty

alert contains {
	"title": input.detail.title,
	"severity": "high",
	"source": "guardduty",
	"namespace": "guardduty",
	"attrs": [{"key": "finding_type", "value": input.detail.type}],
} if input.detail.severity >= 4
"#,
    )
    .unwrap();
    std::fs::write(
        policies.path().join("alert/security_hub.rego"),
        r#"package alert.security_hub

alert contains {
	"title": finding.Title,
	"severity": lower(finding.Severity.Label),
	"source": "security_hub",
	"namespace": "security_hub",
} if some finding in input.detail.findings
"#,
    )
    .unwrap();
    std::fs::write(
        policies.path().join("action.rego"),
        r#"package action

run contains {
	"id": "notify",
	"uses": "webhook.post",
	"args": {"url": input.env.WEBHOOK_URL, "data": {"source": input.alert.source, "title": input.alert.title}},
} if input.seq == 0
"#,
    )
    .unwrap();

    let fixture = |name: &str| common::fixture(name);
    let api = common::lambda::runtime_api_serving(vec![
        sns_record_event(&guardduty_topic, &fixture("guardduty_finding_eventbridge.json"), "gd-1"),
        sns_record_event(&hub_topic, &fixture("securityhub_findings_imported.json"), "hub-1"),
        sns_record_event(
            &unmapped_topic,
            &fixture("guardduty_finding_eventbridge.json"),
            "gd-unmapped",
        ),
    ])
    .await;
    let webhook_url = webhook.url("/hook");
    let topic_schemas = format!("{guardduty_topic}=guardduty, {hub_topic}=security_hub");
    let _child = lambda_process(
        &api,
        &[
            ("OUTCOME_TOPIC_ARN", outcomes.as_str()),
            ("POLICY_DIR", policies.path().to_str().unwrap()),
            ("POLICY_ENV", "WEBHOOK_URL"),
            ("WEBHOOK_URL", webhook_url.as_str()),
            ("TOPIC_SCHEMAS", topic_schemas.as_str()),
        ],
    );

    // Three invocations answered, then the next long poll.
    let requests = api.wait_for(7, WAIT).await;
    let responses: Vec<Value> = (0..3)
        .map(|index| {
            let path = format!(
                "/2018-06-01/runtime/invocation/{}/response",
                common::lambda::request_id(index)
            );
            requests
                .iter()
                .find(|r| r.path == path)
                .unwrap_or_else(|| panic!("no response for invocation {index}: {requests:#?}"))
                .json()
        })
        .collect();
    assert_eq!(
        (responses[0]["alerts"].as_u64(), responses[0]["rejected"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        (responses[1]["alerts"].as_u64(), responses[1]["rejected"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        (responses[2]["alerts"].as_u64(), responses[2]["rejected"].as_u64()),
        (Some(0), Some(1))
    );

    let mut posted: Vec<(String, String)> = webhook
        .wait_for(2, WAIT)
        .await
        .iter()
        .map(|r| {
            let body = r.json();
            (
                body["data"]["source"].as_str().unwrap().to_string(),
                body["data"]["title"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    posted.sort();
    assert_eq!(
        posted,
        vec![
            (
                "guardduty".to_string(),
                "198.51.100.23 is performing SSH brute force attacks against i-99999999.".to_string()
            ),
            (
                "security_hub".to_string(),
                "S3.8 S3 Block Public Access setting should be enabled at the bucket-level".to_string()
            ),
        ]
    );
    // Two action outcomes and the rejection, on the outcome topic.
    let published: Vec<Value> = subscriber
        .wait_for(3, WAIT)
        .await
        .iter()
        .map(|r| r.sns_message())
        .collect();
    for outcome in &published {
        assert_valid_outcome(outcome);
    }
    let rejected = published
        .iter()
        .find(|o| o["status"] == "rejected")
        .unwrap_or_else(|| panic!("no rejection published: {published:#?}"));
    let error = rejected["error"].as_str().unwrap();
    assert!(
        error.contains("TOPIC_SCHEMAS") && error.contains("not a Matano alert change"),
        "{error}"
    );
    assert_eq!(
        rejected["source_message"]["topic_arn"],
        json!(unmapped_topic),
        "{rejected:#}"
    );
}

/// The SQS record Lambda's poller builds of `message` (a queue message).
fn sqs_record(message: &Message, queue_arn: &str) -> Value {
    let attributes: serde_json::Map<String, Value> = message
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let attribute = json!({"stringValue": value.string_value(), "stringListValues": [],
                "binaryListValues": [], "dataType": value.data_type()});
            (name.clone(), attribute)
        })
        .collect();
    json!({
        "messageId": message.message_id(),
        "receiptHandle": message.receipt_handle(),
        "body": message.body(),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": attributes,
        "md5OfBody": message.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1"
    })
}

/// A queue subscribed to `topic` (with SNS's raw delivery on or off): its
/// URL and ARN.
async fn subscribed_queue(
    sns: &aws_sdk_sns::Client,
    sqs: &aws_sdk_sqs::Client,
    topic: &str,
    raw_delivery: bool,
) -> (String, String) {
    let queue_url = sqs
        .create_queue()
        .queue_name(common::unique("ingest"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(topic)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .attributes("RawMessageDelivery", raw_delivery.to_string())
        .send()
        .await
        .unwrap();
    (queue_url, queue_arn)
}

/// SQS ingestion through moto: Matano's topic delivering to a queue, an
/// outcome topic with a subscriber, and a Matano change to publish.
struct SqsIngest {
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
    alerting: String,
    outcomes: String,
    subscriber: TestServer,
    queue_url: String,
    queue_arn: String,
    change: String,
}

impl SqsIngest {
    async fn new(raw_delivery: bool) -> SqsIngest {
        let sns = sns_client().await;
        let sqs = common::sqs_client().await;
        let alerting = create_topic(&sns, "ingest-alerting").await;
        let outcomes = create_topic(&sns, "ingest-outcomes").await;
        let subscriber = TestServer::ok().await;
        subscribe_http(&sns, &outcomes, &subscriber.url("/"), None).await;
        let (queue_url, queue_arn) = subscribed_queue(&sns, &sqs, &alerting, raw_delivery).await;
        let change = matano_sns_event("high", &[])["Records"][0]["Sns"]["Message"]
            .as_str()
            .unwrap()
            .to_string();
        SqsIngest {
            sns,
            sqs,
            alerting,
            outcomes,
            subscriber,
            queue_url,
            queue_arn,
            change,
        }
    }

    /// Publishes `message` to Matano's topic (which delivers it to the queue).
    async fn publish(&self, message: &str) {
        self.publish_as(message, None).await;
    }

    /// [`SqsIngest::publish`] with an SNS subject.
    async fn publish_as(&self, message: &str, subject: Option<&str>) {
        self.sns
            .publish()
            .topic_arn(&self.alerting)
            .message(message)
            .set_subject(subject.map(str::to_string))
            .send()
            .await
            .unwrap();
    }

    /// The queue's visible and in-flight message counts.
    async fn counts(&self) -> (u32, u32) {
        use aws_sdk_sqs::types::QueueAttributeName;
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        let count = |name: QueueAttributeName| attributes.get(&name).map(|n| n.parse::<u32>().unwrap());
        (
            count(QueueAttributeName::ApproximateNumberOfMessages).unwrap_or(0),
            count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible).unwrap_or(0),
        )
    }

    /// `count` messages received from the queue (hidden 300 s each), with
    /// their attributes and receive counts, as Lambda's poller reads them.
    async fn receive(&self, count: usize) -> Vec<Message> {
        let mut received = Vec::new();
        for _ in 0..6 {
            let batch = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(300)
                .wait_time_seconds(5)
                .message_attribute_names("All")
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
                .unwrap();
            received.extend(batch.messages.unwrap_or_default());
            if received.len() >= count {
                return received;
            }
        }
        panic!("{} of {count} messages arrived in 30 s", received.len());
    }
}

/// A queue fed with raw delivery on: bare payloads, routed by the SQS
/// message attribute `schema` (SNS copies the message's attributes) — here
/// a Matano change to a policy of another schema, which only the attribute
/// can reach. Through moto's SNS and SQS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_delivery_queue_routes_by_its_schema_attribute() {
    let ingest = SqsIngest::new(true).await;
    let schema = aws_sdk_sns::types::MessageAttributeValue::builder()
        .data_type("String")
        .string_value("triage")
        .build()
        .unwrap();
    ingest
        .sns
        .publish()
        .topic_arn(&ingest.alerting)
        .message(&ingest.change)
        .message_attributes("schema", schema)
        .send()
        .await
        .unwrap();
    let received = ingest.receive(1).await;
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].body(),
        Some(ingest.change.as_str()),
        "raw delivery: the payload itself"
    );
    let policies = tempfile::tempdir().unwrap();
    std::fs::write(
        policies.path().join("triage.rego"),
        "package alert.triage\nalert contains {\"title\": input.updated_alert.title} if true\n",
    )
    .unwrap();
    std::fs::write(
        policies.path().join("action.rego"),
        "package action\nrun contains {\"id\": \"notify\", \"uses\": \"webhook.post\", \"args\": {\"url\": \"https://hooks.example.org/x\"}}\n",
    )
    .unwrap();
    let api = runtime_api(json!({"Records": [sqs_record(&received[0], &ingest.queue_arn)]})).await;
    let policy_dir = policies.path().display().to_string();
    let _child = lambda_process(
        &api,
        &[
            ("OUTCOME_TOPIC_ARN", ingest.outcomes.as_str()),
            ("DRY_RUN", "true"),
            ("POLICY_DIR", policy_dir.as_str()),
        ],
    );
    let response = invocation_response(&api).await;
    assert_eq!(response, json!({"batchItemFailures": []}));
    let published = ingest.subscriber.wait_for(1, WAIT).await;
    let outcome = published[0].sns_message();
    assert_valid_outcome(&outcome);
    assert_eq!(
        (outcome["event_type"].as_str(), outcome["alert"]["schema"].as_str()),
        (Some("action_outcome"), Some("triage")),
        "{outcome}"
    );
    // Raw delivery names no topic.
    assert!(outcome["source_message"]["topic_arn"].is_null(), "{outcome}");
}

/// A batch's record the state table fails is listed for a retry — the
/// batch succeeds, so its metric `RecordsRetried` is what says so; a bad
/// record beside it is rejected, not retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_record_the_state_table_fails_is_retried_and_counted() {
    let sns = sns_client().await;
    let outcomes = create_topic(&sns, "retried-outcomes").await;
    let notification = matano_sns_event("high", &[])["Records"][0]["Sns"].clone();
    let record = |id: &str, body: String| {
        json!({"messageId": id, "body": body, "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": "us-east-1"})
    };
    let event = json!({"Records": [record("good", notification.to_string()), record("bad", "{not json".to_string())]});
    let api = runtime_api(event).await;
    let missing_table = common::unique("no-such-table");
    let child = lambda_process(
        &api,
        &[
            ("OUTCOME_TOPIC_ARN", outcomes.as_str()),
            ("STATE_TABLE", missing_table.as_str()),
            ("POLICY_ENV", "WEBHOOK_URL"),
            ("WEBHOOK_URL", "http://127.0.0.1:9/never-called"),
        ],
    );
    let response = invocation_response(&api).await;
    assert_eq!(response, json!({"batchItemFailures": [{"itemIdentifier": "good"}]}));
    let emf = invocation_metrics(child).await;
    assert_eq!(
        (
            emf["AlertsReceived"].as_f64(),
            emf["MessagesRejected"].as_f64(),
            emf["RecordsRetried"].as_f64()
        ),
        (Some(2.0), Some(1.0), Some(1.0)),
        "{emf}"
    );
}

/// A retried record does not wait out the queue's visibility timeout (300 s
/// here): the batch makes it visible again after `INGEST_RETRY_DELAY_SECONDS`
/// (0: at once), through moto's SQS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_sqs_record_is_visible_again_after_its_delay() {
    let ingest = SqsIngest::new(false).await;
    ingest.publish(&ingest.change).await;
    let received = ingest.receive(1).await;
    assert_eq!(received.len(), 1);
    let api = runtime_api(json!({"Records": [sqs_record(&received[0], &ingest.queue_arn)]})).await;
    let missing_table = common::unique("no-such-table");
    let _child = lambda_process(
        &api,
        &[
            ("OUTCOME_TOPIC_ARN", ingest.outcomes.as_str()),
            ("STATE_TABLE", missing_table.as_str()),
            ("INGEST_RETRY_DELAY_SECONDS", "0"),
        ],
    );
    let response = invocation_response(&api).await;
    let message_id = received[0].message_id().unwrap();
    assert_eq!(response, json!({"batchItemFailures": [{"itemIdentifier": message_id}]}));
    let again = ingest.receive(1).await;
    assert_eq!(
        again.iter().map(|m| m.message_id()).collect::<Vec<_>>(),
        [Some(message_id)],
        "the retried record is back before the queue's 300 s"
    );
    let count = again[0]
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount));
    assert_eq!(count.map(String::as_str), Some("2"));
}

/// A batch of three through moto's SNS and SQS, the second a "poison"
/// record (the test build's fault injection panics on its subject), handed
/// to this build's binary — not `LAMBDA_BINARY`'s: a release build has no
/// fault injection. (It unwinds, where a release build aborts: the hook
/// runs first either way.) The messages as received, the poison record's
/// position, and the process once it has reported the invocation's error.
async fn a_batch_with_a_poison_record(ingest: &SqsIngest, retry_delay: &str) -> (Vec<Message>, usize, Child) {
    let poison_subject = alert_responder::crash::PANIC_SUBJECT;
    for subject in [None, Some(poison_subject), None] {
        ingest.publish_as(&ingest.change, subject).await;
    }
    let received = ingest.receive(3).await;
    assert_eq!(received.len(), 3);
    let mut records: Vec<Value> = received.iter().map(|m| sqs_record(m, &ingest.queue_arn)).collect();
    let poison = records
        .iter()
        .position(|r| r["body"].as_str().unwrap().contains(poison_subject))
        .expect("the poison record's notification carries its subject");
    // Delivered most often, it is decided first: the batch sorts its
    // records, and the hook must still blame this one.
    for (index, record) in records.iter_mut().enumerate() {
        let count = if index == poison { 3 } else { 1 };
        record["attributes"]["ApproximateReceiveCount"] = json!(count.to_string());
    }
    let api = runtime_api(json!({"Records": records})).await;
    let child = lambda_process_of(
        tokio::process::Command::new(env!("CARGO_BIN_EXE_alert-responder")),
        &api,
        &[
            ("OUTCOME_TOPIC_ARN", ingest.outcomes.as_str()),
            ("DRY_RUN", "true"),
            ("INGEST_RETRY_DELAY_SECONDS", retry_delay),
        ],
    );
    let requests = api.wait_for(3, WAIT).await;
    let error = requests
        .iter()
        .find(|r| r.path == format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/error"))
        .unwrap_or_else(|| panic!("no error posted: {requests:#?}"))
        .json();
    assert!(error.to_string().contains("fault injection"), "{error}");
    (received, poison, child)
}

/// The process's JSON log lines, once it is stopped.
async fn log_lines(mut child: Child) -> Vec<Value> {
    child.kill().await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .collect()
}

/// A record that panics the function does not take its batch-mates with it:
/// the panic hook makes them visible again at once (no state table: no
/// lease to wait out), through moto's SQS, while it stays hidden for the
/// queue's visibility timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_panics_the_function_spares_its_batch_mates() {
    let ingest = SqsIngest::new(false).await;
    let (received, poison, child) = a_batch_with_a_poison_record(&ingest, "30").await;
    // The hook ran before the panic went on: its calls are done.
    assert_eq!(
        ingest.counts().await,
        (2, 1),
        "two batch-mates visible, the poison record hidden"
    );
    let again = ingest.receive(2).await;
    let mut ids: Vec<&str> = again.iter().filter_map(|m| m.message_id()).collect();
    ids.sort_unstable();
    let mut mates: Vec<&str> = received
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != poison)
        .filter_map(|(_, m)| m.message_id())
        .collect();
    mates.sort_unstable();
    assert_eq!(ids, mates);
    let logs = log_lines(child).await;
    let line = logs
        .iter()
        .find(|line| line["fields"]["batch_mates"].is_number())
        .unwrap_or_else(|| panic!("no log line of the batch-mates: {logs:#?}"));
    assert_eq!(line["level"], "ERROR");
    assert_eq!(line["fields"]["message_id"], received[poison].message_id().unwrap());
    assert_eq!(line["fields"]["batch_mates"], 2);
}

/// With `INGEST_RETRY_DELAY_SECONDS=off` the function changes no
/// visibility, a panic's batch-mates included: all three stay hidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_retry_delays_off_a_panic_leaves_the_batch_to_the_visibility_timeout() {
    let ingest = SqsIngest::new(false).await;
    let (_, _, child) = a_batch_with_a_poison_record(&ingest, "off").await;
    assert_eq!(ingest.counts().await, (0, 3));
    let logs = log_lines(child).await;
    assert!(
        !logs.iter().any(|line| line["fields"]["batch_mates"].is_number()),
        "{logs:#?}"
    );
}

/// IngestMode=sqs as deployed: Matano publishes to SNS, SNS delivers to a
/// queue (raw delivery off), Lambda polls it and hands the function an
/// SqsEvent. The messages here go through moto's SNS and SQS for real; the
/// batch's response names only the records to deliver again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_batch_from_sns_is_decided_and_answers_its_failures() {
    let ingest = SqsIngest::new(false).await;
    for message in [ingest.change.as_str(), "{not json"] {
        ingest.publish(message).await;
    }
    let received = ingest.receive(2).await;
    // The event Lambda's SQS poller builds from those messages.
    let records: Vec<Value> = received.iter().map(|m| sqs_record(m, &ingest.queue_arn)).collect();
    let api = runtime_api(json!({"Records": records})).await;
    let webhook = TestServer::ok().await;
    let webhook_url = webhook.url("/hook");
    let _child = lambda_process(
        &api,
        &[
            ("OUTCOME_TOPIC_ARN", ingest.outcomes.as_str()),
            ("DRY_RUN", "true"),
            ("POLICY_ENV", "WEBHOOK_URL"),
            ("WEBHOOK_URL", webhook_url.as_str()),
        ],
    );
    let response = invocation_response(&api).await;
    // A bad record is rejected (an outcome), not retried; the good one is handled.
    assert_eq!(response, json!({"batchItemFailures": []}));
    let published: Vec<Value> = ingest
        .subscriber
        .wait_for(2, WAIT)
        .await
        .iter()
        .map(|r| r.sns_message())
        .collect();
    let kinds: std::collections::BTreeSet<&str> = published.iter().map(|o| o["event_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["action_outcome", "message_rejected"].into_iter().collect());
    for outcome in &published {
        assert_valid_outcome(outcome);
    }
    let action = published.iter().find(|o| o["event_type"] == "action_outcome").unwrap();
    assert_eq!(action["source_message"]["topic_arn"], ingest.alerting.as_str());
    assert_eq!(action["status"], "dry_run", "{action}");
    assert!(webhook.requests().is_empty(), "a dry run calls nothing");
}
