//! Signature verification with a locally generated key pair and certificate
//! (tests/fixtures/generate.sh), the SNS URL checks, deduplication, and the
//! real HTTP server forwarding to a loopback "Slack".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use webhook_receiver::{is_sns_https_url, string_to_sign, CertificateSource, Destination, Receiver, SnsMessage};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:alert-responder-outcomes";
const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem";
const SIGNING_KEY: &str = include_str!("fixtures/signing-key.pem");
const SIGNING_CERT: &str = include_str!("fixtures/signing-cert.pem");
const OTHER_KEY: &str = include_str!("fixtures/other-key.pem");

struct LocalCertificates(HashMap<String, String>);

impl CertificateSource for LocalCertificates {
    fn pem(&self, url: &str) -> Result<String, String> {
        self.0
            .get(url)
            .cloned()
            .ok_or_else(|| format!("no certificate at {url}"))
    }
}

#[derive(Default, Clone)]
struct Recorder {
    forwarded: Arc<Mutex<Vec<Value>>>,
    confirmed: Arc<Mutex<Vec<String>>>,
}

impl Destination for Recorder {
    fn forward(&self, outcome: &Value) -> Result<(), String> {
        self.forwarded.lock().unwrap().push(outcome.clone());
        Ok(())
    }
    fn confirm_subscription(&self, url: &str) -> Result<(), String> {
        self.confirmed.lock().unwrap().push(url.to_string());
        Ok(())
    }
}

fn receiver() -> (Receiver, Recorder) {
    let recorder = Recorder::default();
    let certificates = LocalCertificates(HashMap::from([(CERT_URL.to_string(), SIGNING_CERT.to_string())]));
    (
        Receiver::new([TOPIC.to_string()], Box::new(certificates), Box::new(recorder.clone())),
        recorder,
    )
}

fn outcome(id: &str) -> String {
    json!({"schema_version": 1, "event_type": "action_outcome", "outcome_id": id, "status": "failed",
           "alert": {"title": "AWS Root Credentials Change", "severity": "high"},
           "action": {"id": "page", "uses": "pagerduty.trigger"}, "error": "HTTP 500"})
    .to_string()
}

/// A notification, signed as SNS signs it.
fn notification(message: &str, version: &str, key_pem: &str) -> Value {
    let mut body = json!({
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Subject": "outcome",
        "Message": message,
        "Timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "SignatureVersion": version,
        "Signature": "",
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    });
    sign(&mut body, key_pem);
    body
}

fn sign(body: &mut Value, key_pem: &str) {
    let message: SnsMessage = serde_json::from_value(body.clone()).unwrap();
    let text = string_to_sign(&message).unwrap();
    let key = RsaPrivateKey::from_pkcs8_pem(key_pem).unwrap();
    let signature = match message.signature_version.as_str() {
        "1" => SigningKey::<sha1::Sha1>::new(key).sign(text.as_bytes()).to_vec(),
        _ => SigningKey::<sha2::Sha256>::new(key).sign(text.as_bytes()).to_vec(),
    };
    body["Signature"] = json!(data_encoding::BASE64.encode(&signature));
}

fn post(receiver: &Receiver, body: &Value) -> (u16, String) {
    let reply = receiver.handle(body.to_string().as_bytes());
    (reply.status, reply.body)
}

#[test]
fn signature_versions_1_and_2_verify_and_forward() {
    let (receiver, recorder) = receiver();
    assert_eq!(
        post(&receiver, &notification(&outcome("o-1"), "1", SIGNING_KEY)),
        (200, "forwarded".to_string())
    );
    assert_eq!(
        post(&receiver, &notification(&outcome("o-2"), "2", SIGNING_KEY)),
        (200, "forwarded".to_string())
    );
    let forwarded = recorder.forwarded.lock().unwrap();
    assert_eq!(forwarded.len(), 2);
    assert_eq!(forwarded[0]["outcome_id"], "o-1");
}

#[test]
fn duplicates_are_forwarded_once() {
    let (receiver, recorder) = receiver();
    let first = notification(&outcome("o-dup"), "2", SIGNING_KEY);
    let mut redelivery = notification(&outcome("o-dup"), "2", SIGNING_KEY);
    redelivery["MessageId"] = json!("another-delivery");
    sign(&mut redelivery, SIGNING_KEY);
    assert_eq!(post(&receiver, &first).0, 200);
    assert_eq!(post(&receiver, &redelivery), (200, "duplicate".to_string()));
    assert_eq!(recorder.forwarded.lock().unwrap().len(), 1);
}

#[test]
fn tampered_messages_are_rejected() {
    let (receiver, recorder) = receiver();
    let mut tampered = notification(&outcome("o-3"), "2", SIGNING_KEY);
    tampered["Message"] = json!(outcome("o-3").replace("failed", "succeeded"));
    assert_eq!(
        post(&receiver, &tampered),
        (403, "signature does not verify".to_string())
    );

    let mut retitled = notification(&outcome("o-4"), "1", SIGNING_KEY);
    retitled["Subject"] = json!("something else");
    assert_eq!(post(&receiver, &retitled).0, 403);

    // Signed by another key, pointing at the trusted certificate.
    let forged = notification(&outcome("o-5"), "2", OTHER_KEY);
    assert_eq!(post(&receiver, &forged).0, 403);

    let mut unsigned = notification(&outcome("o-6"), "2", SIGNING_KEY);
    unsigned["Signature"] = json!("");
    assert_eq!(post(&receiver, &unsigned).0, 403);
    let mut missing = notification(&outcome("o-7"), "2", SIGNING_KEY);
    missing.as_object_mut().unwrap().remove("Signature");
    assert_eq!(post(&receiver, &missing).0, 400);

    assert!(recorder.forwarded.lock().unwrap().is_empty());
}

#[test]
fn wrong_topics_and_untrusted_certificate_urls_are_rejected() {
    let (receiver, recorder) = receiver();
    let mut other_topic = notification(&outcome("o-8"), "2", SIGNING_KEY);
    other_topic["TopicArn"] = json!("arn:aws:sns:us-east-1:999999999999:someone-else");
    sign(&mut other_topic, SIGNING_KEY);
    let (status, body) = post(&receiver, &other_topic);
    assert_eq!(status, 403);
    assert!(body.contains("is not allowed"), "{body}");

    for url in [
        "https://attacker.example/cert.pem",
        "http://sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com.attacker.example/cert.pem",
        "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
        "https://sns.us-east-1.amazonaws.com/cert.txt",
        "https://evil.sns.us-east-1.amazonaws.com/cert.pem",
    ] {
        let mut message = notification(&outcome("o-9"), "2", SIGNING_KEY);
        message["SigningCertURL"] = json!(url);
        let (status, body) = post(&receiver, &message);
        assert_eq!(status, 403, "{url}: {body}");
        assert!(body.contains("is not an SNS HTTPS URL"), "{url}: {body}");
    }
    assert!(is_sns_https_url(
        "https://sns.cn-north-1.amazonaws.com.cn/c.pem",
        Some(".pem")
    ));
    assert!(recorder.forwarded.lock().unwrap().is_empty());
}

#[test]
fn old_messages_and_unknown_versions_are_rejected() {
    let (receiver, _) = receiver();
    let mut old = notification(&outcome("o-10"), "2", SIGNING_KEY);
    old["Timestamp"] = json!((chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339());
    sign(&mut old, SIGNING_KEY);
    assert!(post(&receiver, &old).1.starts_with("message is too old"));

    let mut v3 = notification(&outcome("o-11"), "2", SIGNING_KEY);
    v3["SignatureVersion"] = json!("3");
    assert_eq!(
        post(&receiver, &v3),
        (400, "unsupported SignatureVersion \"3\"".to_string())
    );
}

#[test]
fn subscription_confirmations_are_verified_then_confirmed() {
    let (receiver, recorder) = receiver();
    let mut confirmation = json!({
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e2425c464de12884",
        "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe to the topic.",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f37fb687f5d51e6e2425c464de12884",
        "Timestamp": chrono::Utc::now().to_rfc3339(),
        "SignatureVersion": "2",
        "Signature": "",
        "SigningCertURL": CERT_URL,
    });
    sign(&mut confirmation, SIGNING_KEY);
    assert_eq!(
        post(&receiver, &confirmation),
        (200, "subscription confirmed".to_string())
    );
    assert_eq!(recorder.confirmed.lock().unwrap().len(), 1);

    confirmation["SubscribeURL"] = json!("https://attacker.example/?Action=ConfirmSubscription");
    sign(&mut confirmation, SIGNING_KEY);
    assert_eq!(post(&receiver, &confirmation).0, 403);
    assert_eq!(recorder.confirmed.lock().unwrap().len(), 1);
}

#[test]
fn the_http_server_forwards_to_a_slack_webhook() {
    // "Slack": a loopback HTTP server that records what it receives.
    let slack = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let slack_url = format!("http://{}/services/T0/B0/X", slack.server_addr().to_ip().unwrap());
    let slack_thread = std::thread::spawn(move || {
        let mut request = slack.recv().unwrap();
        let mut body = String::new();
        request.as_reader().read_to_string(&mut body).unwrap();
        request.respond(tiny_http::Response::from_string("ok")).unwrap();
        body
    });

    let certificates = LocalCertificates(HashMap::from([(CERT_URL.to_string(), SIGNING_CERT.to_string())]));
    let receiver = Receiver::new(
        [TOPIC.to_string()],
        Box::new(certificates),
        Box::new(webhook_receiver::SlackWebhook::new(slack_url)),
    );
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let address = server.server_addr().to_ip().unwrap();
    let serving = server.clone();
    std::thread::spawn(move || webhook_receiver::serve(&serving, &receiver));

    let body = notification(&outcome("o-http"), "2", SIGNING_KEY).to_string();
    let mut response = ureq::post(&format!("http://{address}/")).send(body.as_bytes()).unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.body_mut().read_to_string().unwrap(), "forwarded");
    let slack_body: Value = serde_json::from_str(&slack_thread.join().unwrap()).unwrap();
    assert_eq!(
        slack_body["text"],
        "*failed*: `page` for [high] AWS Root Credentials Change\n> HTTP 500"
    );
    server.unblock();
}

/// Alert content forwarded to Slack is literal text: no broadcast, mention,
/// channel or link from data, no hidden characters, one line per field.
#[test]
fn outcomes_forwarded_to_slack_render_alert_content_as_text() {
    let outcome = serde_json::json!({
        "status": "failed",
        "event_type": "action_outcome",
        "action": {"id": "page <!here>"},
        "alert": {
            "title": "Root login <!channel> <https://evil.example/mfa|Reset your MFA now> & <@U012AB3CD>\nsecond line \u{202E}rtl",
            "severity": "high <#C0123>",
        },
        "error": "upstream said <!everyone>",
    });
    let text = webhook_receiver::slack_text(&outcome);
    assert_eq!(
        text,
        "*failed*: `page &lt;!here&gt;` for [high &lt;#C0123&gt;] Root login &lt;!channel&gt; &lt;https://evil.example/mfa|Reset your MFA now&gt; &amp; &lt;@U012AB3CD&gt; second line rtl\n> upstream said &lt;!everyone&gt;"
    );
}
