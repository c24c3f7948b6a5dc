use super::*;
use serde_json::json;

use crate::config::SchemaRouting;

const V1: &str = include_str!("../../tests/fixtures/matano_alert_change_v1.json");
const V2: &str = include_str!("../../tests/fixtures/matano_alert_change_v2.json");
const SNS_EVENT: &str = include_str!("../../tests/fixtures/sns_event_matano.json");

fn one(results: Vec<Ingested>) -> Ingested {
    assert_eq!(results.len(), 1);
    results.into_iter().next().unwrap()
}

#[test]
fn bare_matano_v1_payload_is_typed_and_normalized() {
    let envelope = one(ingest_document(V1.as_bytes(), &"other".into())).unwrap();
    assert_eq!(envelope.schema, "matano");
    let change = envelope.matano.as_ref().unwrap();
    assert_eq!(change.updated_alert.severity, Severity::Medium);
    assert_eq!(change.updated_alert.update_count, 1);
    assert!(change.updated_alert.creation_time.is_some());
    // The nested delivery info is readable at the top level too.
    assert_eq!(
        envelope.payload["destination_to_alert_info"]["slack_my_team"],
        json!("{\"ts\":\"1678861298.161909\"}")
    );
    assert_eq!(envelope.change_key(), "matano/61d3ac78-cedd-434e-b407-ae0b330e1d4a/1");
}

#[test]
fn newer_matano_shape_with_null_creation_time() {
    let envelope = one(ingest_document(V2.as_bytes(), &"matano".into())).unwrap();
    let change = envelope.matano.unwrap();
    assert_eq!(change.updated_alert.creation_time, None);
    assert!(change.updated_alert.destination_to_alert_info.is_none());
    assert_eq!(
        change.destination_to_alert_info().unwrap()["slack_my_team"],
        "{\"ts\":\"1678861298.161909\"}"
    );
}

#[test]
fn lambda_sns_event_carries_topic_and_attributes() {
    let event: Value = serde_json::from_str(SNS_EVENT).unwrap();
    let envelope = one(ingest_lambda_event(&event, &"matano".into())).unwrap();
    assert_eq!(envelope.message_id, "95df01b4-ee98-5cb9-9903-4c221d41eb5e");
    assert!(envelope.topic_arn.unwrap().ends_with(":matano-alerting"));
    assert!(envelope.timestamp.is_some());
    assert_eq!(
        envelope.matano.unwrap().updated_alert.title,
        "AWS Root Credentials Change"
    );
}

#[test]
fn http_notification_envelope_and_schema_attribute() {
    let doc = json!({
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:findings",
        "Message": "{\"finding\": {\"id\": \"f-1\"}}",
        "MessageAttributes": {"schema": {"Type": "String", "Value": "guardduty"}}
    });
    let envelope = one(ingest_document(doc.to_string().as_bytes(), &"matano".into())).unwrap();
    assert_eq!(envelope.schema, "guardduty");
    assert_eq!(envelope.payload["finding"]["id"], "f-1");
    assert!(envelope.matano.is_none());
    assert!(envelope.change_key().starts_with("guardduty/"));
}

/// A message other than a Matano change is one publish of its content: a
/// redelivery (the same message id) is the same change, the same content
/// published again (a new message id) a new one, as AlertChain makes every
/// event a new alert. A replay keeps the key its record holds.
#[test]
fn the_same_content_published_again_is_a_new_change_and_a_redelivery_is_not() {
    let notification = |message_id: &str| {
        json!({
            "Type": "Notification",
            "MessageId": message_id,
            "Message": "{\"host\": \"db-1\", \"status\": \"down\"}",
            "MessageAttributes": {"schema": {"Type": "String", "Value": "uptime"}}
        })
    };
    let key = |doc: Value| {
        one(ingest_document(doc.to_string().as_bytes(), &"matano".into()))
            .unwrap()
            .change_key()
    };
    let first = key(notification("m-1"));
    assert_eq!(key(notification("m-1")), first, "a redelivery");
    assert_ne!(key(notification("m-2")), first, "published again");
    assert!(first.starts_with("uptime/") && first.ends_with("@m-1"), "{first}");
    // A raw SQS message has no SNS id (SQS gives a redriven message a new
    // one): keyed by its content, so a dead-letter redrive replays.
    let mut event: Value = serde_json::from_str(SQS_EVENT).unwrap();
    event["Records"][1]["messageAttributes"]["schema"] = json!({"stringValue": "uptime", "dataType": "String"});
    event["Records"][1]["body"] = json!("{\"host\": \"db-1\"}");
    let sqs_key = |id: &str| {
        let mut event = event.clone();
        event["Records"][1]["messageId"] = json!(id);
        ingest_sqs_event(&event, &"matano".into())
            .remove(1)
            .ingested
            .unwrap()
            .change_key()
    };
    assert_eq!(sqs_key("q-1"), sqs_key("q-2"));
    assert!(!sqs_key("q-1").contains('@'));
    // A Matano change is its alert's update, whatever the message.
    let matano = |message_id: &str| {
        let mut event: Value = serde_json::from_str(SNS_EVENT).unwrap();
        event["Records"][0]["Sns"]["MessageId"] = json!(message_id);
        one(ingest_lambda_event(&event, &"matano".into())).unwrap().change_key()
    };
    assert_eq!(matano("a"), matano("b"));
    // A replay derives the ids its record holds.
    let payload = json!({"host": "db-1", "status": "down"});
    let recorded = envelope_from_recorded(payload, "uptime", Some("m-9"), None, None, Some("uptime/abc")).unwrap();
    assert_eq!(recorded.change_key(), "uptime/abc");
}

#[test]
fn on_failure_destination_records_yield_their_event() {
    let event: Value = serde_json::from_str(SNS_EVENT).unwrap();
    let record = json!({
        "version": "1.0",
        "timestamp": "2023-03-15T06:22:40.000Z",
        "requestContext": {"requestId": "r-1", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorType": "AlertResponder.PublishError", "errorMessage": "publishing failed"}
    });
    let envelope = one(ingest_document(record.to_string().as_bytes(), &"matano".into())).unwrap();
    assert_eq!(envelope.message_id, "95df01b4-ee98-5cb9-9903-4c221d41eb5e");
}

#[test]
fn other_json_gets_the_default_schema() {
    let envelope = one(ingest_document(br#"{"detail": 1}"#, &"custom".into())).unwrap();
    assert_eq!(envelope.schema, "custom");
}

/// A GuardDuty finding through EventBridge → SNS carries no `schema`
/// attribute: its topic routes it. The attribute still wins, and a topic
/// nothing maps falls back to Matano detection, then the default.
#[test]
fn a_mapped_topic_routes_its_messages() {
    let guardduty = "arn:aws:sns:us-east-1:123456789012:guardduty-findings";
    let routing = SchemaRouting {
        default: "matano".to_string(),
        by_topic: [(guardduty.to_string(), "guardduty".to_string())].into(),
    };
    let record = |topic: &str, message: &str, schema: Option<&str>| {
        let mut sns = json!({"Type": "Notification", "MessageId": "m", "TopicArn": topic, "Message": message});
        if let Some(schema) = schema {
            sns["MessageAttributes"] = json!({"schema": {"Type": "String", "Value": schema}});
        }
        json!({"Records": [{"EventSource": "aws:sns", "Sns": sns}]})
    };
    let finding = r#"{"detail-type": "GuardDuty Finding", "detail": {"severity": 8}}"#;
    let envelope = one(ingest_lambda_event(&record(guardduty, finding, None), &routing)).unwrap();
    assert_eq!(envelope.schema, "guardduty");
    assert_eq!(envelope.topic_arn.as_deref(), Some(guardduty));
    let envelope = one(ingest_lambda_event(
        &record(guardduty, finding, Some("custom")),
        &routing,
    ))
    .unwrap();
    assert_eq!(envelope.schema, "custom");
    let other = "arn:aws:sns:us-east-1:123456789012:matano-alerts";
    let envelope = one(ingest_lambda_event(&record(other, V1, None), &routing)).unwrap();
    assert_eq!(envelope.schema, "matano");
    // A Matano payload routed elsewhere is that schema's, untyped.
    let envelope = one(ingest_lambda_event(&record(guardduty, V1, None), &routing)).unwrap();
    assert_eq!(envelope.schema, "guardduty");
    assert!(envelope.matano.is_none());
}

/// A payload that is not Matano's, reaching the Matano schema only because
/// it is the default, is rejected with how to route it; one routed to
/// Matano on purpose is checked field by field.
#[test]
fn a_payload_that_is_not_matanos_says_how_to_route_it() {
    let finding = br#"{"detail-type": "GuardDuty Finding", "detail": {}}"#;
    let rejected = one(ingest_document(finding, &"matano".into())).unwrap_err();
    assert_eq!(rejected.error, IngestError::NotMatano { has_topic: false });
    let message = rejected.error.to_string();
    for part in [
        "no `updated_alert`",
        "`schema` message attribute",
        "DEFAULT_SCHEMA",
        "names no SNS topic",
        "package alert.<schema>",
    ] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    assert!(!message.contains("map its topic"), "{message}");
    // From a topic, mapping the topic is one way.
    let notification = json!({"Type": "Notification", "Message": "{\"detail\": {}}",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:guardduty-findings"});
    let rejected = one(ingest_document(notification.to_string().as_bytes(), &"matano".into())).unwrap_err();
    assert_eq!(rejected.error, IngestError::NotMatano { has_topic: true });
    let message = rejected.error.to_string();
    assert!(
        message.contains("map its topic in TOPIC_SCHEMAS (TOPIC_ARN=schema)"),
        "{message}"
    );
    let doc = json!({"Type": "Notification", "Message": "{\"detail\": {}}",
        "MessageAttributes": {"schema": {"Type": "String", "Value": "matano"}}});
    let rejected = one(ingest_document(doc.to_string().as_bytes(), &"matano".into())).unwrap_err();
    assert!(
        matches!(rejected.error, IngestError::WrongShape { .. }),
        "{}",
        rejected.error
    );
}

#[test]
fn every_record_is_handled_and_bad_ones_keep_the_original() {
    let event: Value = serde_json::from_str(SNS_EVENT).unwrap();
    let mut bad = event["Records"][0].clone();
    bad["Sns"]["Message"] = json!("{not json");
    bad["Sns"]["MessageId"] = json!("bad-1");
    let event = json!({"Records": [event["Records"][0].clone(), bad]});
    let results = ingest_lambda_event(&event, &"matano".into());
    assert_eq!(results.len(), 2);
    assert!(results[0].is_ok());
    let rejected = results[1].as_ref().unwrap_err();
    assert_eq!(rejected.message_id.as_deref(), Some("bad-1"));
    assert_eq!(rejected.original, "{not json");
    assert!(matches!(rejected.error, IngestError::NotJson { .. }));
}

/// A CloudTrail log file has `Records` too: none from SNS, so it is a
/// payload for its schema's policy (as AlertChain reads it), not an event.
#[test]
fn records_not_from_sns_are_a_payload() {
    let trail = json!({"Records": [{"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances"}]});
    let envelope = one(ingest_document(trail.to_string().as_bytes(), &"cloudtrail".into())).unwrap();
    assert_eq!(envelope.schema, "cloudtrail");
    assert_eq!(envelope.payload["Records"][0]["eventName"], "RunInstances");
    // Nor is a failed event's record that wraps no SNS records.
    let wrapped = json!({"requestPayload": trail, "responseContext": {}});
    let envelope = one(ingest_document(wrapped.to_string().as_bytes(), &"cloudtrail".into())).unwrap();
    assert!(envelope.payload.get("requestPayload").is_some());
    // An SNS event with a malformed record is still an event.
    let event = json!({"Records": [{"EventSource": "aws:sns"}]});
    let results = ingest_document(event.to_string().as_bytes(), &"cloudtrail".into());
    assert!(matches!(
        results[0].as_ref().unwrap_err().error,
        IngestError::NotSnsRecord { .. }
    ));
}

#[test]
fn wrong_matano_shape_names_the_field() {
    let mut payload: Value = serde_json::from_str(V1).unwrap();
    payload["updated_alert"]["severity"] = json!("urgent");
    let rejected = one(ingest_document(payload.to_string().as_bytes(), &"matano".into())).unwrap_err();
    let message = rejected.error.to_string();
    assert!(message.contains("updated_alert.severity"), "{message}");
    assert!(message.contains("urgent"), "{message}");

    payload["updated_alert"].as_object_mut().unwrap().remove("id");
    payload["updated_alert"]["severity"] = json!("low");
    let rejected = one(ingest_document(payload.to_string().as_bytes(), &"matano".into())).unwrap_err();
    assert!(
        rejected.error.to_string().contains("missing field `id`"),
        "{}",
        rejected.error
    );

    // An id too long to key the state table is the payload's fault: rejected, not retried.
    payload["updated_alert"]["id"] = json!("a".repeat(3000));
    let rejected = one(ingest_document(payload.to_string().as_bytes(), &"matano".into())).unwrap_err();
    let message = rejected.error.to_string();
    assert!(
        message.contains("updated_alert.id") && message.contains("3000 bytes long, over 512"),
        "{message}"
    );
    payload["updated_alert"]["id"] = json!("a".repeat(512));
    assert!(one(ingest_document(payload.to_string().as_bytes(), &"matano".into())).is_ok());
}

/// The README's bound: JSON nested 128 levels deep or more is rejected,
/// 127 levels are read (the top-level object is the first level).
#[test]
fn nesting_is_read_to_127_levels_and_rejected_from_128() {
    let nested = |levels: usize| format!("{}{{}}{}", "{\"a\":".repeat(levels - 1), "}".repeat(levels - 1));
    let not_json = |levels: usize| {
        let error = match one(ingest_document(nested(levels).as_bytes(), &"other".into())) {
            Ok(_) => return false,
            Err(rejected) => rejected.error,
        };
        matches!(error, IngestError::NotJson { .. })
    };
    assert!(!not_json(127), "127 levels are JSON");
    assert!(not_json(128), "128 levels are not");
}

#[test]
fn malformed_inputs_are_rejected_with_reasons() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "empty"),
        (b"[1,2]".to_vec(), "not an object (found an array)"),
        (b"{\"a\":".to_vec(), "not JSON"),
        (vec![0xff, 0xfe, b'{'], "not JSON"),
        (vec![b' '; MAX_MESSAGE_BYTES + 1], "over the 262144-byte limit"),
        ("[".repeat(10_000).into_bytes(), "recursion limit"),
    ];
    for (input, expected) in cases {
        let rejected = one(ingest_document(&input, &"matano".into())).unwrap_err();
        assert!(
            rejected.error.to_string().contains(expected),
            "{expected:?} not in {:?}",
            rejected.error.to_string()
        );
    }
    let doc = json!({"Type": "Notification", "MessageId": "x", "Message": ""});
    let rejected = one(ingest_document(doc.to_string().as_bytes(), &"matano".into())).unwrap_err();
    assert_eq!(rejected.error, IngestError::Empty);
    let rejected = one(ingest_lambda_event(&json!({"detail": 1}), &"matano".into())).unwrap_err();
    assert!(rejected.error.to_string().contains("no `Records` array"));
}

#[test]
fn bad_schema_attribute_is_rejected() {
    let doc = json!({"Type": "Notification", "Message": "{}",
        "MessageAttributes": {"schema": {"Type": "String", "Value": "a.b"}}});
    let rejected = one(ingest_document(doc.to_string().as_bytes(), &"matano".into())).unwrap_err();
    assert!(matches!(rejected.error, IngestError::BadSchemaName { .. }));
}

const SQS_EVENT: &str = include_str!("../../tests/fixtures/sqs_event_matano.json");

#[test]
fn sqs_records_carry_sns_notifications_or_raw_payloads() {
    let event: Value = serde_json::from_str(SQS_EVENT).unwrap();
    assert!(is_sqs_event(&event));
    let sns_event: Value = serde_json::from_str(SNS_EVENT).unwrap();
    assert!(!is_sqs_event(&sns_event));
    let records = ingest_sqs_event(&event, &"matano".into());
    assert_eq!(records.len(), 2);
    // Raw delivery off: SNS's envelope, its message id, topic and attributes.
    assert_eq!(records[0].item_id, "059f36b4-87a3-44ab-83d2-661975830a7d");
    let matano = records[0].ingested.as_ref().unwrap();
    assert_eq!(matano.schema, "matano");
    assert_eq!(matano.message_id, "5f8c3f0e-7b1a-5d2e-9c4d-1a2b3c4d5e6f");
    assert_eq!(
        matano.topic_arn.as_deref(),
        Some("arn:aws:sns:us-east-1:123456789012:matano-alerting")
    );
    assert!(matano.matano.is_some());
    // Raw delivery on: the schema from the SQS message attribute.
    let finding = records[1].ingested.as_ref().unwrap();
    assert_eq!(finding.schema, "aws_guardduty");
    assert_eq!(finding.message_id, "2e1424d4-f796-459a-8184-9c92662be6da");
    assert_eq!(
        finding.payload["detail"]["type"],
        "UnauthorizedAccess:EC2/SSHBruteForce"
    );
}

#[test]
fn a_records_deliveries_come_from_its_receive_count() {
    let mut event: Value = serde_json::from_str(SQS_EVENT).unwrap();
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = json!("3");
    event["Records"][1]["attributes"] = json!({});
    let records = ingest_sqs_event(&event, &"matano".into());
    assert_eq!((records[0].deliveries, records[1].deliveries), (3, 1));
}

#[test]
fn subscription_messages_are_rejected_as_such() {
    let confirmation = json!({"Type": "SubscriptionConfirmation", "MessageId": "c1", "Token": "2336412f37",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:matano-alerting",
        "Message": "You have chosen to subscribe to the topic", "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"});
    let rejected = one(ingest_document(confirmation.to_string().as_bytes(), &"matano".into())).unwrap_err();
    assert_eq!(
        rejected.error,
        IngestError::NotANotification {
            kind: "SubscriptionConfirmation".into()
        }
    );
    let mut event: Value = serde_json::from_str(SQS_EVENT).unwrap();
    event["Records"][0]["body"] = json!(confirmation.to_string());
    let records = ingest_sqs_event(&event, &"matano".into());
    assert!(matches!(
        records[0].ingested.as_ref().unwrap_err().error,
        IngestError::NotANotification { .. }
    ));
    // In a Lambda SnsEvent the record is SNS's own: another type than
    // `Notification` is refused, whatever its message holds.
    for kind in ["SubscriptionConfirmation", "UnsubscribeConfirmation"] {
        let mut event: Value = serde_json::from_str(SNS_EVENT).unwrap();
        event["Records"][0]["Sns"]["Type"] = json!(kind);
        let rejected = one(ingest_lambda_event(&event, &"matano".into())).unwrap_err();
        assert_eq!(rejected.error, IngestError::NotANotification { kind: kind.into() });
    }
    // A payload of its own with such a `Type` but not SNS's fields is a payload.
    let payload = json!({"Type": "SubscriptionConfirmation", "updated_alert": {}});
    let rejected = one(ingest_document(payload.to_string().as_bytes(), &"matano".into())).unwrap_err();
    assert!(
        !matches!(rejected.error, IngestError::NotANotification { .. }),
        "{}",
        rejected.error
    );
}

#[test]
fn a_binary_schema_attribute_is_read_as_its_text() {
    let mut event: Value = serde_json::from_str(SQS_EVENT).unwrap();
    // "aws_guardduty" in base64, as SQS carries a Binary attribute.
    event["Records"][1]["messageAttributes"]["schema"] =
        json!({"binaryValue": "YXdzX2d1YXJkZHV0eQ==", "dataType": "Binary"});
    let records = ingest_sqs_event(&event, &"matano".into());
    assert_eq!(records[1].ingested.as_ref().unwrap().schema, "aws_guardduty");
    // Bytes that are no text stay as written: refused by name, not dropped.
    event["Records"][1]["messageAttributes"]["schema"] = json!({"binaryValue": "/w==", "dataType": "Binary"});
    let records = ingest_sqs_event(&event, &"matano".into());
    let rejected = records[1].ingested.as_ref().unwrap_err();
    assert!(
        matches!(rejected.error, IngestError::BadSchemaName { .. }),
        "{}",
        rejected.error
    );
    assert!(rejected.error.to_string().contains("/w=="), "{}", rejected.error);
    // In SNS's envelope: `Type: Binary`, the value in base64.
    let doc = json!({"Type": "Notification", "Message": "{\"detail\": {}}",
        "MessageAttributes": {"schema": {"Type": "Binary", "Value": "YXdzX2d1YXJkZHV0eQ=="}}});
    let envelope = one(ingest_document(doc.to_string().as_bytes(), &"matano".into())).unwrap();
    assert_eq!(envelope.schema, "aws_guardduty");
}

#[test]
fn sqs_topic_routing_works_through_the_envelope() {
    let mut event: Value = serde_json::from_str(SQS_EVENT).unwrap();
    let mut body: Value = serde_json::from_str(event["Records"][0]["body"].as_str().unwrap()).unwrap();
    body["MessageAttributes"] = json!({});
    body["TopicArn"] = json!("arn:aws:sns:us-east-1:123456789012:guardduty");
    body["Message"] = json!(include_str!("../../tests/fixtures/guardduty_finding_eventbridge.json"));
    event["Records"][0]["body"] = json!(body.to_string());
    let routing = SchemaRouting {
        default: "matano".to_string(),
        by_topic: [(
            "arn:aws:sns:us-east-1:123456789012:guardduty".to_string(),
            "aws_guardduty".to_string(),
        )]
        .into(),
    };
    let records = ingest_sqs_event(&event, &routing);
    assert_eq!(records[0].ingested.as_ref().unwrap().schema, "aws_guardduty");
}

#[test]
fn bad_sqs_records_are_rejected_with_their_message_id() {
    let event = json!({"Records": [
        {"messageId": "a", "body": "{not json", "eventSource": "aws:sqs"},
        {"messageId": "b", "eventSource": "aws:sqs"},
        {"messageId": "c", "body": "[1, 2]", "eventSource": "aws:sqs"},
        {"messageId": "d", "body": "", "eventSource": "aws:sqs"},
    ]});
    let records = ingest_sqs_event(&event, &"matano".into());
    let errors: Vec<(String, Option<String>, String)> = records
        .into_iter()
        .map(|r| {
            let rejected = r.ingested.unwrap_err();
            (r.item_id, rejected.message_id, rejected.error.to_string())
        })
        .collect();
    assert_eq!(errors[0].0, "a");
    assert_eq!(errors[0].1.as_deref(), Some("a"));
    assert!(errors[0].2.starts_with("message is not JSON"), "{errors:?}");
    assert_eq!(
        errors[1].2,
        "record 1 is not an SQS message: record has no `body` string"
    );
    assert_eq!(errors[2].2, "message is JSON but not an object (found an array)");
    assert_eq!(errors[3].2, "message is empty");
}

#[test]
fn a_malformed_sns_envelope_in_an_sqs_body_is_named_at_its_record() {
    let topic = "arn:aws:sns:us-east-1:123456789012:matano-alerting";
    let envelope = |body: Value| json!({"messageId": "m", "body": body.to_string(), "eventSource": "aws:sqs"});
    let event = json!({"Records": [
        envelope(json!({"updated": 1})),
        envelope(json!({"Type": "Notification", "TopicArn": topic, "Message": {"updated_alert": {}}})),
    ]});
    let records = ingest_sqs_event(&event, &"aws_guardduty".into());
    let raw = records[0]
        .ingested
        .as_ref()
        .expect("a body that is no SNS notification is a raw payload");
    assert_eq!((raw.schema.as_str(), raw.topic_arn.as_deref()), ("aws_guardduty", None));
    assert_eq!(
        records[1].ingested.as_ref().unwrap_err().error.to_string(),
        "record 1 is not an SNS notification: `Message` is missing or not a string"
    );
}

#[test]
fn the_cli_reads_an_sqs_event_too() {
    let results = ingest_document(SQS_EVENT.as_bytes(), &"matano".into());
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(Result::is_ok));
}

#[test]
fn an_sqs_body_is_held_to_sqs_limit_and_its_message_to_sns() {
    // A message just under SNS's limit, escaped inside SNS's envelope, makes
    // a body over 256 KiB: it is taken.
    let mut payload: Value = serde_json::from_str(V1).unwrap();
    payload["padding"] = json!("\"".repeat(MAX_MESSAGE_BYTES / 2 - 4096));
    let message = payload.to_string();
    assert!(message.len() < MAX_MESSAGE_BYTES);
    let body =
        json!({"Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": message});
    let body = body.to_string();
    assert!(body.len() > MAX_MESSAGE_BYTES);
    let event = json!({"Records": [{"messageId": "a", "body": body, "eventSource": "aws:sqs"}]});
    assert!(ingest_sqs_event(&event, &"matano".into())[0].ingested.is_ok());
    let huge =
        json!({"Records": [{"messageId": "b", "body": "x".repeat(MAX_SQS_BODY_BYTES + 1), "eventSource": "aws:sqs"}]});
    let error = ingest_sqs_event(&huge, &"matano".into())
        .remove(0)
        .ingested
        .unwrap_err()
        .error;
    assert!(
        matches!(error, IngestError::Oversize { limit, .. } if limit == MAX_SQS_BODY_BYTES),
        "{error}"
    );
}

/// A payload of `bytes` bytes (a Matano change with padding).
fn padded_payload(bytes: usize) -> String {
    let mut payload: Value = serde_json::from_str(V1).unwrap();
    payload["padding"] = json!("");
    let base = payload.to_string().len();
    payload["padding"] = json!("p".repeat(bytes - base));
    let text = payload.to_string();
    assert_eq!(text.len(), bytes);
    text
}

#[test]
fn a_raw_sqs_payload_is_held_to_the_message_limit() {
    for (bytes, taken) in [(MAX_MESSAGE_BYTES, true), (MAX_MESSAGE_BYTES + 1, false)] {
        let event = json!({"Records": [{"messageId": "r", "body": padded_payload(bytes), "eventSource": "aws:sqs"}]});
        let ingested = ingest_sqs_event(&event, &"matano".into()).remove(0).ingested;
        match taken {
            true => assert!(ingested.is_ok(), "{bytes} bytes"),
            false => assert!(
                matches!(ingested.unwrap_err().error, IngestError::Oversize { limit, .. } if limit == MAX_MESSAGE_BYTES),
                "{bytes} bytes"
            ),
        }
    }
}

/// The CLI holds each message of an event to the limit, not the event.
#[test]
fn a_document_wrapping_messages_checks_each_of_them() {
    let record = |message: String, id: &str| json!({"Sns": {"MessageId": id, "Message": message}});
    let event = json!({"Records": [
        record(padded_payload(200 * 1024), "a"),
        record(padded_payload(200 * 1024), "b"),
        record(padded_payload(MAX_MESSAGE_BYTES + 1), "c"),
    ]});
    let text = event.to_string();
    assert!(text.len() > 2 * MAX_MESSAGE_BYTES);
    let results = ingest_document(text.as_bytes(), &"matano".into());
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[1].is_ok(), "two messages under the limit");
    let error = &results[2].as_ref().unwrap_err().error;
    assert!(
        matches!(error, IngestError::Oversize { limit, .. } if *limit == MAX_MESSAGE_BYTES),
        "{error}"
    );
    // A bare payload is one message.
    let bare = padded_payload(MAX_MESSAGE_BYTES + 1);
    let error = one(ingest_document(bare.as_bytes(), &"matano".into()))
        .unwrap_err()
        .error;
    assert!(
        matches!(error, IngestError::Oversize { limit, .. } if limit == MAX_MESSAGE_BYTES),
        "{error}"
    );
    // And a document is read up to Lambda's event limit.
    let huge = vec![b' '; MAX_DOCUMENT_BYTES + 1];
    let error = one(ingest_document(&huge, &"matano".into())).unwrap_err().error;
    assert!(
        matches!(error, IngestError::Oversize { limit, .. } if limit == MAX_DOCUMENT_BYTES),
        "{error}"
    );
}

#[test]
fn a_batch_whose_first_record_is_malformed_is_still_an_sqs_batch() {
    let mut event: Value = serde_json::from_str(SQS_EVENT).unwrap();
    event["Records"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!("not a record"));
    assert!(is_sqs_event(&event));
    let records = ingest_sqs_event(&event, &"matano".into());
    assert_eq!(records.len(), 3);
    // The malformed one is rejected; the others go through.
    assert!(records[0].ingested.is_err());
    assert!(records[1].ingested.is_ok() && records[2].ingested.is_ok());
}
