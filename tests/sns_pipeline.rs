//! The library handler end to end against moto server: a Lambda `SnsEvent`
//! carrying a Matano change goes through both policies and the actions, and
//! outcomes reach real HTTP subscribers of the outcome topic through moto's
//! SNS delivery, honouring a filter policy.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use alert_responder::config::Config;
use alert_responder::{app, lambda};
use common::{assert_valid_outcome, create_topic, matano_sns_event, sns_client, subscribe_http, Reply, TestServer};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

fn sns_event_with_new_ips(ips: &[&str]) -> Value {
    matano_sns_event("high", ips)
}

fn invocation(payload: Value) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = "req-1".into();
    LambdaEvent::new(payload, context)
}

fn config(topic: &str, env: &[(&str, String)]) -> Config {
    Config {
        outcome_topic_arn: Some(topic.to_string()),
        // The intel API and webhooks of these tests live on loopback.
        http_allow_private: true,
        policy_env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matano_change_flows_to_webhook_subscribers_with_filter_policy() {
    let sns = sns_client().await;
    let topic = create_topic(&sns, "outcomes").await;

    // The intel API answers for one IP and fails for the other.
    let intel = TestServer::start(|req| {
        if req.path.starts_with("/5.205.62.253/") {
            Reply::json(200, json!({"ip": "5.205.62.253", "country": "NL"}))
        } else {
            Reply::json(500, json!({"error": "upstream down"}))
        }
    })
    .await;
    let webhook = TestServer::ok().await;
    let all_outcomes = TestServer::ok().await;
    let failures_only = TestServer::ok().await;
    subscribe_http(&sns, &topic, &all_outcomes.url("/all"), None).await;
    subscribe_http(
        &sns,
        &topic,
        &failures_only.url("/failed"),
        Some(json!({"status": ["failed"]})),
    )
    .await;

    let config = config(
        &topic,
        &[("INTEL_URL", intel.url("")), ("WEBHOOK_URL", webhook.url("/notify"))],
    );
    let responder = app::lambda_responder(&config).expect("init");
    let summary = lambda::handle(
        &responder,
        &"matano".into(),
        invocation(sns_event_with_new_ips(&["5.205.62.253", "203.0.113.9"])),
    )
    .await
    .expect("invocation succeeds")
    .summary()
    .expect("an SNS invocation answers its counts");
    assert_eq!(
        (
            summary.records,
            summary.alerts,
            summary.actions,
            summary.failed_actions,
            summary.outcomes
        ),
        (1, 1, 3, 1, 3)
    );

    // Round 0: both lookups (one failed, forced); round 1: the webhook, with what the lookup committed.
    let notify = webhook.wait_for(1, WAIT).await;
    let body = notify[0].json();
    assert_eq!(body["data"]["countries"], json!({"country_5.205.62.253": "NL"}));
    assert_eq!(body["alert"]["title"], "AWS Root Credentials Change");

    let delivered = all_outcomes.wait_for(3, WAIT).await;
    let mut outcomes: Vec<Value> = delivered.iter().map(|r| r.sns_message()).collect();
    outcomes.sort_by_key(|o| (o["seq"].as_u64(), o["action"]["id"].as_str().map(str::to_string)));
    for outcome in &outcomes {
        assert_valid_outcome(outcome);
        assert_eq!(
            outcome["source_message"]["message_id"],
            "95df01b4-ee98-5cb9-9903-4c221d41eb5e"
        );
        assert_eq!(
            outcome["alert"]["matano_alert_id"],
            "61d3ac78-cedd-434e-b407-ae0b330e1d4a"
        );
    }
    let brief: Vec<(u64, &str, &str)> = outcomes
        .iter()
        .map(|o| {
            (
                o["seq"].as_u64().unwrap(),
                o["action"]["id"].as_str().unwrap(),
                o["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        brief,
        vec![
            (0, "lookup_ip_203.0.113.9", "failed"),
            (0, "lookup_ip_5.205.62.253", "succeeded"),
            (1, "notify_webhook", "succeeded"),
        ]
    );
    assert_eq!(outcomes[0]["result"]["body"]["error"], "upstream down");
    // The commit as written, with the id of the attribute it wrote.
    let commit = &outcomes[1]["commits"][0];
    assert_eq!(
        (&commit["key"], &commit["value"], &commit["persist"]),
        (&json!("country_5.205.62.253"), &json!("NL"), &json!(false))
    );
    assert!(commit["id"].as_str().is_some_and(|id| id.len() == 36), "{commit}");
    assert_eq!(
        outcomes[2]["alert"]["attrs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["key"] == "country_5.205.62.253")
            .count(),
        1
    );

    // Moto delivers during Publish, so by now the filtered subscriber has all it will get.
    let filtered = failures_only.requests();
    assert_eq!(filtered.len(), 1, "{filtered:#?}");
    assert_eq!(filtered[0].sns_message()["action"]["id"], "lookup_ip_203.0.113.9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_republishes_the_same_outcome_ids() {
    let sns = sns_client().await;
    let topic = create_topic(&sns, "redelivery").await;
    let subscriber = TestServer::ok().await;
    subscribe_http(&sns, &topic, &subscriber.url("/"), None).await;
    let mut config = config(&topic, &[]);
    config.dry_run = true;
    let responder = app::lambda_responder(&config).unwrap();
    let event = sns_event_with_new_ips(&["198.51.100.7"]);
    lambda::handle(&responder, &"matano".into(), invocation(event.clone()))
        .await
        .unwrap();
    lambda::handle(&responder, &"matano".into(), invocation(event))
        .await
        .unwrap();
    let delivered = subscriber.wait_for(2, WAIT).await;
    let first = delivered[0].sns_message();
    let second = delivered[1].sns_message();
    assert_eq!(first["status"], "dry_run");
    assert_eq!(first["outcome_id"], second["outcome_id"]);
    assert_eq!(first["alert"]["id"], second["alert"]["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_become_rejected_outcomes_and_good_ones_still_run() {
    let sns = sns_client().await;
    let topic = create_topic(&sns, "rejects").await;
    let subscriber = TestServer::ok().await;
    subscribe_http(
        &sns,
        &topic,
        &subscriber.url("/"),
        Some(json!({"event_type": ["message_rejected"]})),
    )
    .await;
    let mut config = config(&topic, &[]);
    config.dry_run = true;
    let responder = app::lambda_responder(&config).unwrap();

    let good = sns_event_with_new_ips(&["198.51.100.8"]);
    let mut not_json = good["Records"][0].clone();
    not_json["Sns"]["MessageId"] = json!("bad-json");
    not_json["Sns"]["Message"] = json!("{\"updated_alert\": ");
    let mut unknown_schema = good["Records"][0].clone();
    unknown_schema["Sns"]["MessageId"] = json!("unknown-schema");
    unknown_schema["Sns"]["Message"] = json!("{\"finding\": 1}");
    unknown_schema["Sns"]["MessageAttributes"] = json!({"schema": {"Type": "String", "Value": "guardduty"}});
    let event = json!({"Records": [not_json, good["Records"][0].clone(), unknown_schema]});

    let summary = lambda::handle(&responder, &"matano".into(), invocation(event))
        .await
        .expect("bad input does not fail the invocation")
        .summary()
        .expect("an SNS invocation answers its counts");
    assert_eq!((summary.records, summary.rejected, summary.alerts), (3, 2, 1));

    let delivered = subscriber.wait_for(2, WAIT).await;
    let rejected: Vec<Value> = delivered.iter().map(|r| r.sns_message()).collect();
    for outcome in &rejected {
        assert_valid_outcome(outcome);
    }
    assert_eq!(rejected[0]["source_message"]["message_id"], "bad-json");
    assert_eq!(rejected[0]["rejected"]["original"], "{\"updated_alert\": ");
    assert!(rejected[0]["error"]
        .as_str()
        .unwrap()
        .starts_with("message is not JSON"));
    assert_eq!(rejected[1]["source_message"]["message_id"], "unknown-schema");
    assert!(rejected[1]["error"]
        .as_str()
        .unwrap()
        .contains("no alert policy for schema \"guardduty\""));
    assert_eq!(subscriber.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_failure_fails_the_invocation_for_retry() {
    let sns = sns_client().await;
    let topic = create_topic(&sns, "deleted").await;
    sns.delete_topic().topic_arn(&topic).send().await.unwrap();
    let mut config = config(&topic, &[]);
    config.dry_run = true;
    let responder = app::lambda_responder(&config).unwrap();
    let err = lambda::handle(
        &responder,
        &"matano".into(),
        invocation(sns_event_with_new_ips(&["198.51.100.9"])),
    )
    .await
    .expect_err("outcomes could not be published");
    let message = err.to_string();
    assert!(
        message.contains(&topic) && message.contains("publishing 1 of 1 outcomes"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sns_publish_action_reaches_a_topic() {
    let sns = sns_client().await;
    let outcomes_topic = create_topic(&sns, "outcomes-page").await;
    let page_topic = create_topic(&sns, "page").await;
    let pager = TestServer::ok().await;
    subscribe_http(&sns, &page_topic, &pager.url("/page"), None).await;
    let outcomes = TestServer::ok().await;
    subscribe_http(&sns, &outcomes_topic, &outcomes.url("/"), None).await;

    let config = config(&outcomes_topic, &[("PAGE_TOPIC_ARN", page_topic.clone())]);
    let responder = app::lambda_responder(&config).unwrap();
    // Critical and with no new IPs: round 0 pages straight away.
    let mut event = sns_event_with_new_ips(&[]);
    let mut payload: Value = serde_json::from_str(event["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    payload["updated_alert"]["severity"] = json!("critical");
    // A title SNS would refuse as a subject (a line break, characters other
    // than ASCII, over 99 characters) still pages.
    let title = format!("AWS Root Credentials Change\n\u{202E}évil {}", "x".repeat(120));
    payload["updated_alert"]["title"] = json!(title);
    event["Records"][0]["Sns"]["Message"] = Value::String(payload.to_string());
    lambda::handle(&responder, &"matano".into(), invocation(event))
        .await
        .unwrap();

    let page = pager.wait_for(1, WAIT).await;
    let notification = page[0].json();
    let subject = notification["Subject"].as_str().unwrap();
    assert!(
        subject.starts_with("[critical] AWS Root Credentials Change ?vil xxx"),
        "{subject}"
    );
    assert!(subject.len() <= 99 && subject.is_ascii(), "{subject}");
    let message: Value = serde_json::from_str(notification["Message"].as_str().unwrap()).unwrap();
    assert_eq!(message["title"], title);

    let outcome = outcomes.wait_for(1, WAIT).await[0].sns_message();
    assert_valid_outcome(&outcome);
    assert_eq!(outcome["action"]["uses"], "sns.publish");
    assert_eq!(outcome["status"], "succeeded");
    assert_eq!(outcome["result"]["topic_arn"], page_topic);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_ten_outcomes_are_published_in_batches() {
    let sns = sns_client().await;
    let topic = create_topic(&sns, "batches").await;
    let subscriber = TestServer::ok().await;
    subscribe_http(&sns, &topic, &subscriber.url("/"), None).await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("alert.rego"),
        "package alert.matano\nalert contains {\"title\": input.updated_alert.title} if true\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("action.rego"),
        "package action\nrun contains {\"id\": sprintf(\"step_%02d\", [i]), \"uses\": \"http.fetch\", \"args\": {\"url\": \"http://127.0.0.1:9/\"}} if some i in numbers.range(1, 23)\n",
    )
    .unwrap();
    let mut config = config(&topic, &[]);
    config.dry_run = true;
    config.policies = alert_responder::config::PolicySource::Dir(dir.path().to_path_buf());
    let responder = app::lambda_responder(&config).unwrap();
    let summary = lambda::handle(&responder, &"matano".into(), invocation(matano_sns_event("low", &[])))
        .await
        .unwrap()
        .summary()
        .expect("an SNS invocation answers its counts");
    assert_eq!(summary.outcomes, 23);

    let delivered = subscriber.wait_for(23, WAIT).await;
    let mut ids: Vec<String> = delivered
        .iter()
        .map(|r| r.sns_message()["action"]["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let expected: Vec<String> = (1..=23).map(|i| format!("step_{i:02}")).collect();
    assert_eq!(ids, expected);
}
