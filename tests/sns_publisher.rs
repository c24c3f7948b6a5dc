//! The outcome publisher and `sns.publish`'s topic publisher against an
//! SNS endpoint on loopback that answers as SNS does when it fails: entries
//! failed on SNS's side (retried alone), a sender fault (not retried), a
//! 5xx and throttling (the call retried), an unknown topic (not retried).
//! The happy paths run against moto (`sns_pipeline`, `reliability`).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use alert_responder::action::sns::TopicPublisher;
use alert_responder::aws::{sdk_config_from, Sns, SnsPublisher};
use alert_responder::model::Outcome;
use alert_responder::publish::{PublishError, Publisher};
use common::{Recorded, Reply, TestServer};
use serde_json::json;

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:outcomes";

fn sns_at(server: &TestServer) -> Arc<Sns> {
    let endpoint = server.url("");
    Arc::new(Sns::new(&sdk_config_from(|name| match name {
        "AWS_REGION" => Some("us-east-1".to_string()),
        "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some("secret".to_string()),
        "AWS_ENDPOINT_URL" => Some(endpoint.clone()),
        _ => None,
    })))
}

fn outcomes(n: usize) -> Vec<Outcome> {
    (0..n)
        .map(|i| {
            serde_json::from_value(json!({
                "schema_version": 1,
                "event_type": "action_outcome",
                "outcome_id": format!("outcome-{i}"),
                "status": "succeeded",
                "source_message": {"message_id": format!("m-{i}"), "topic_arn": null, "change_key": null},
                "alert": null,
                "action": {"id": format!("notify & page {i}"), "uses": "webhook.post", "args": {}},
                "result": null,
                "error": null,
                "seq": 0,
                "started_at": "2026-12-05T12:00:00Z",
                "duration_ms": 1,
            }))
            .expect("an outcome")
        })
        .collect()
}

/// The form fields of a request, decoded.
fn form(request: &Recorded) -> BTreeMap<String, String> {
    url_decoded(std::str::from_utf8(&request.body).unwrap())
}

fn url_decoded(body: &str) -> BTreeMap<String, String> {
    body.split('&')
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The entries' ids a PublishBatch request carries, in member order.
fn entry_ids(request: &Recorded) -> Vec<String> {
    let mut members: Vec<(usize, String)> = form(request)
        .into_iter()
        .filter_map(|(key, value)| {
            let n = key
                .strip_prefix("PublishBatchRequestEntries.member.")?
                .strip_suffix(".Id")?;
            Some((n.parse().ok()?, value))
        })
        .collect();
    members.sort();
    members.into_iter().map(|(_, id)| id).collect()
}

/// Signs the recorded request again as AWS would check it (the same
/// credentials, region, service and `x-amz-date`): the signature must match.
fn assert_signed_as_sent(request: &Recorded) {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    let credentials = aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
    let identity = credentials.into();
    let at = chrono::NaiveDateTime::parse_from_str(&request.headers["x-amz-date"], "%Y%m%dT%H%M%SZ").unwrap();
    let params = aws_sigv4::sign::v4::SigningParams::<SigningSettings>::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("sns")
        .time(at.and_utc().into())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let url = format!("http://{}{}", request.headers["host"], request.path);
    let headers = [("content-type", request.headers["content-type"].as_str())];
    let signable = SignableRequest::new("POST", &url, headers.into_iter(), SignableBody::Bytes(&request.body)).unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let (expected, _) = instructions.into_parts();
    let authorization = expected.iter().find(|h| h.name() == "authorization").unwrap();
    assert_eq!(request.headers["authorization"], authorization.value());
}

fn xml(body: String) -> Reply {
    Reply::Respond {
        status: 200,
        headers: vec![("content-type".into(), "text/xml".into())],
        body: body.into_bytes(),
    }
}

fn error(status: u16, code: &str) -> Reply {
    Reply::Respond {
        status,
        headers: vec![("content-type".into(), "text/xml".into())],
        body: format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{code} happened</Message></Error>\
             <RequestId>r</RequestId></ErrorResponse>"
        )
        .into_bytes(),
    }
}

/// A PublishBatch answer: every entry of `request` published but `failed`
/// (id, sender fault).
fn batch_answer(request: &Recorded, failed: &[(&str, bool)]) -> Reply {
    let mut successful = String::new();
    let mut failures = String::new();
    for id in entry_ids(request) {
        match failed.iter().find(|(f, _)| *f == id) {
            Some((_, sender)) => failures.push_str(&format!(
                "<member><Id>{id}</Id><Code>InternalError</Code><Message>entry {id} failed</Message>\
                 <SenderFault>{sender}</SenderFault></member>"
            )),
            None => successful.push_str(&format!(
                "<member><Id>{id}</Id><MessageId>msg-{id}</MessageId></member>"
            )),
        }
    }
    xml(format!(
        "<PublishBatchResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishBatchResult>\
         <Successful>{successful}</Successful><Failed>{failures}</Failed></PublishBatchResult>\
         <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishBatchResponse>"
    ))
}

/// A server answering its `n`th request (from 0) with `answer(n, request)`.
async fn sns_answering(answer: impl Fn(usize, &Recorded) -> Reply + Send + Sync + 'static) -> TestServer {
    let calls = AtomicUsize::new(0);
    TestServer::start(move |request| answer(calls.fetch_add(1, Ordering::SeqCst), request)).await
}

/// `n` outcomes published to `server` as the function publishes them.
async fn publish_to(server: &TestServer, n: usize) -> Result<(), PublishError> {
    SnsPublisher::new(sns_at(server), TOPIC).publish(&outcomes(n)).await
}

#[tokio::test]
async fn a_batch_is_one_signed_form_with_every_entry_and_its_attributes() {
    let sns = sns_answering(|_, request| batch_answer(request, &[])).await;
    let publisher = SnsPublisher::new(sns_at(&sns), TOPIC);
    publisher.publish(&outcomes(12)).await.expect("published");
    let requests = sns.requests();
    assert_eq!(requests.len(), 2, "12 outcomes: batches of 10 and 2");
    assert_eq!(entry_ids(&requests[0]).len(), 10);
    assert_eq!(entry_ids(&requests[1]), ["0", "1"]);
    let first = &requests[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/");
    assert!(first.headers["authorization"].contains("/us-east-1/sns/aws4_request"));
    assert_signed_as_sent(first);
    assert!(first.headers["content-type"].starts_with("application/x-www-form-urlencoded"));
    let fields = form(first);
    assert_eq!(fields["Action"], "PublishBatch");
    assert_eq!(fields["Version"], "2010-03-31");
    assert_eq!(fields["TopicArn"], TOPIC);
    let expected = outcomes(1).remove(0);
    let message: serde_json::Value =
        serde_json::from_str(&fields["PublishBatchRequestEntries.member.1.Message"]).unwrap();
    assert_eq!(message, serde_json::to_value(&expected).unwrap());
    // The attributes subscribers filter on, each a String.
    let attributes: BTreeMap<String, String> = (1..=10)
        .map_while(|n| {
            let key = format!("PublishBatchRequestEntries.member.1.MessageAttributes.entry.{n}");
            let name = fields.get(&format!("{key}.Name"))?;
            assert_eq!(fields[&format!("{key}.Value.DataType")], "String");
            Some((name.clone(), fields[&format!("{key}.Value.StringValue")].clone()))
        })
        .collect();
    let want: BTreeMap<String, String> = expected
        .attributes()
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
    assert_eq!(attributes, want);
    assert_eq!(attributes["action_id"], "notify & page 0");
}

#[tokio::test]
async fn entries_sns_failed_are_retried_alone() {
    let sns = sns_answering(|n, request| match n {
        0 => batch_answer(request, &[("1", false), ("3", false)]),
        _ => batch_answer(request, &[]),
    })
    .await;
    let publisher = SnsPublisher::new(sns_at(&sns), TOPIC);
    publisher.publish(&outcomes(5)).await.expect("published on the retry");
    let requests = sns.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(entry_ids(&requests[0]), ["0", "1", "2", "3", "4"]);
    assert_eq!(entry_ids(&requests[1]), ["1", "3"], "only the failed entries again");
    let retried = form(&requests[1]);
    let message: serde_json::Value =
        serde_json::from_str(&retried["PublishBatchRequestEntries.member.2.Message"]).unwrap();
    assert_eq!(message["outcome_id"], "outcome-3", "the entry with id 3 is outcome 3");
}

#[tokio::test]
async fn an_entry_the_answer_does_not_list_is_tried_again_and_an_answer_without_a_result_is_not_success() {
    // The first answer lists entry 1 nowhere; the second is not SNS's.
    let sns = sns_answering(|n, request| match n {
        0 => {
            let Reply::Respond { body, .. } = batch_answer(request, &[]) else {
                unreachable!()
            };
            let body = String::from_utf8(body).unwrap();
            xml(body.replace("<member><Id>1</Id><MessageId>msg-1</MessageId></member>", ""))
        }
        1 => xml("<html>a proxy's page</html>".to_string()),
        _ => batch_answer(request, &[]),
    })
    .await;
    publish_to(&sns, 3).await.expect("published on the third try");
    let requests = sns.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(entry_ids(&requests[1]), ["1"]);
    assert_eq!(entry_ids(&requests[2]), ["1"]);

    let garbage = sns_answering(|_, _| xml(String::new())).await;
    let err = publish_to(&garbage, 1).await.unwrap_err();
    assert!(err.to_string().contains("PublishBatchResult"), "{err}");
    assert_eq!(garbage.requests().len(), 4);
}

#[tokio::test]
async fn a_dropped_connection_is_tried_again() {
    let sns = sns_answering(|n, request| match n {
        0 => Reply::Drop,
        _ => batch_answer(request, &[]),
    })
    .await;
    publish_to(&sns, 2).await.expect("published on the second try");
    let requests = sns.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(entry_ids(&requests[1]), ["0", "1"], "the whole call again");
}

#[tokio::test]
async fn a_sender_fault_fails_the_publish_without_a_retry() {
    let sns = sns_answering(|_, request| batch_answer(request, &[("2", true)])).await;
    let publisher = SnsPublisher::new(sns_at(&sns), TOPIC);
    let err = publisher.publish(&outcomes(3)).await.unwrap_err();
    let PublishError::Failed {
        destination,
        failed,
        total,
        reason,
        unpublished,
    } = &err
    else {
        panic!("a refused entry is a failure, not lateness: {err}");
    };
    assert_eq!((destination.as_str(), *failed, *total), (TOPIC, 1, 3));
    assert_eq!(reason, "InternalError: entry 2 failed");
    assert_eq!(unpublished, &[2]);
    assert_eq!(sns.requests().len(), 1);
}

#[tokio::test]
async fn an_entry_refused_for_good_does_not_hold_back_the_next_batch() {
    // 12 outcomes: two calls of 10 and 2; the first refuses its entry 3.
    let sns = sns_answering(|n, request| match n {
        0 => batch_answer(request, &[("3", true)]),
        _ => batch_answer(request, &[]),
    })
    .await;
    let publisher = SnsPublisher::new(sns_at(&sns), TOPIC);
    let err = publisher.publish(&outcomes(12)).await.unwrap_err();
    assert_eq!(err.unpublished(), [3]);
    let requests = sns.requests();
    assert_eq!(requests.len(), 2, "the second batch is still sent");
    assert_eq!(entry_ids(&requests[1]), ["0", "1"]);
}

#[tokio::test]
async fn entries_failed_beside_a_sender_fault_are_still_tried_again() {
    // Entry 1 is refused for good; entry 3 fails transiently beside it.
    let sns = sns_answering(|n, request| match n {
        0 => batch_answer(request, &[("1", true), ("3", false)]),
        _ => batch_answer(request, &[]),
    })
    .await;
    let err = publish_to(&sns, 5).await.unwrap_err();
    assert_eq!(err.unpublished(), [1], "only the refused entry is left out");
    assert!(err.to_string().contains("entry 1 failed"), "{err}");
    let requests = sns.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(entry_ids(&requests[1]), ["3"], "the transient one alone, again");

    // When the call retrying the others then fails for good, that is the
    // reason given (it stops the later batches), the refusal beside it.
    let gone = sns_answering(|n, request| match n {
        0 => batch_answer(request, &[("1", true), ("3", false)]),
        _ => error(404, "NotFound"),
    })
    .await;
    let err = publish_to(&gone, 5).await.unwrap_err();
    assert_eq!(err.unpublished(), [1, 3]);
    let text = err.to_string();
    assert!(
        text.contains("HTTP 404 NotFound") && text.contains("an entry was also refused: InternalError: entry 1 failed"),
        "{text}"
    );
}

#[tokio::test]
async fn a_server_error_or_throttling_is_retried_and_a_missing_topic_is_not() {
    let flaky = sns_answering(|n, request| match n {
        0 => error(500, "InternalFailure"),
        1 => error(400, "Throttling"),
        2 => error(429, "TooManyRequests"),
        _ => batch_answer(request, &[]),
    })
    .await;
    publish_to(&flaky, 2).await.expect("published on the fourth try");
    assert_eq!(flaky.requests().len(), 4);

    let missing = sns_answering(|_, _| error(404, "NotFound")).await;
    let err = publish_to(&missing, 2).await.unwrap_err();
    assert!(
        err.to_string().contains("HTTP 404 NotFound: NotFound happened"),
        "{err}"
    );
    assert!(err.to_string().contains(TOPIC), "{err}");
    assert_eq!(missing.requests().len(), 1);

    let down = sns_answering(|_, _| error(503, "ServiceUnavailable")).await;
    let err = publish_to(&down, 1).await.unwrap_err();
    assert!(err.to_string().contains("HTTP 503 ServiceUnavailable"), "{err}");
    assert_eq!(down.requests().len(), 4, "every try used");
}

#[tokio::test]
async fn a_topic_publish_sends_subject_and_attributes_and_returns_the_message_id() {
    let sns = sns_answering(|n, _| match n {
        0 => error(502, "BadGateway"),
        _ => xml(
            "<PublishResponse><PublishResult><MessageId>94f20ce6-13c5</MessageId></PublishResult></PublishResponse>"
                .to_string(),
        ),
    })
    .await;
    let attributes = BTreeMap::from([("severity".to_string(), "high".to_string())]);
    let id = TopicPublisher::publish(
        sns_at(&sns).as_ref(),
        TOPIC,
        Some("[high] Root login"),
        "{\"a\": 1}",
        &attributes,
    )
    .await
    .expect("published on the retry");
    assert_eq!(id, "94f20ce6-13c5");
    let requests = sns.requests();
    assert_eq!(requests.len(), 2);
    let fields = form(&requests[1]);
    assert_eq!(fields["Action"], "Publish");
    assert_eq!(fields["Version"], "2010-03-31");
    assert_eq!(fields["TopicArn"], TOPIC);
    assert_eq!(fields["Subject"], "[high] Root login");
    assert_eq!(fields["Message"], "{\"a\": 1}");
    assert_eq!(fields["MessageAttributes.entry.1.Name"], "severity");
    assert_eq!(fields["MessageAttributes.entry.1.Value.DataType"], "String");
    assert_eq!(fields["MessageAttributes.entry.1.Value.StringValue"], "high");
    assert_signed_as_sent(&requests[1]);

    let silent = sns_answering(|_, _| xml("<PublishResponse><PublishResult/></PublishResponse>".to_string())).await;
    let err = TopicPublisher::publish(sns_at(&silent).as_ref(), TOPIC, None, "m", &BTreeMap::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("MessageId"), "{err}");
    assert_eq!(silent.requests().len(), 1, "it may have published: not sent again");

    let gone = sns_answering(|_, _| error(403, "AuthorizationError")).await;
    let err = TopicPublisher::publish(sns_at(&gone).as_ref(), TOPIC, None, "m", &BTreeMap::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("AuthorizationError"), "{err}");
    assert_eq!(gone.requests().len(), 1);
}
