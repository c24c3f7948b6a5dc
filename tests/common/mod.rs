//! Shared test infrastructure: a real HTTP/1.1 server on loopback that
//! records requests and answers through a handler, and moto helpers.
#![allow(dead_code)]

pub mod lambda;
pub mod proxy;
pub mod sdk;
pub mod slack;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Lower-cased names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body of {} {} is not JSON: {e}", self.method, self.path))
    }

    /// The outcome inside an SNS HTTP notification.
    pub fn sns_message(&self) -> Value {
        let notification = self.json();
        assert_eq!(notification["Type"], "Notification", "{notification}");
        serde_json::from_str(notification["Message"].as_str().expect("Message is a string")).expect("Message is JSON")
    }
}

/// What the server does with a request.
pub enum Reply {
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Never answer (until the server is dropped): a hung upstream.
    Hang,
    /// Close the connection without answering: a dropped connection.
    Drop,
    /// Answer once the test adds a permit to the semaphore: a slow upstream
    /// whose pace the test sets.
    Gated(Arc<tokio::sync::Semaphore>, Box<Reply>),
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply::Respond {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    pub fn text(status: u16, body: &str) -> Reply {
        Reply::Respond {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        if let Reply::Respond { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }
}

type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

pub struct TestServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    count: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// A server that answers 200 `{}` to everything.
    pub async fn ok() -> TestServer {
        TestServer::start(|_| Reply::json(200, serde_json::json!({}))).await
    }

    pub async fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (count_tx, count) = watch::channel(0usize);
        let handler: Handler = Arc::new(handler);
        let state = (requests.clone(), Arc::new(count_tx));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (requests, count_tx) = state.clone();
                let handler = handler.clone();
                tokio::spawn(async move {
                    let _ = serve_connection(stream, handler, requests, count_tx).await;
                });
            }
        });
        TestServer {
            addr,
            requests,
            count,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits (on the request counter, not a sleep) until `n` requests arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Recorded> {
        let mut count = self.count.clone();
        let reached = tokio::time::timeout(within, count.wait_for(|c| *c >= n)).await;
        let got = self.requests();
        assert!(
            reached.is_ok(),
            "expected {n} request(s) within {within:?}, got {}: {got:#?}",
            got.len()
        );
        got
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    handler: Handler,
    requests: Arc<Mutex<Vec<Recorded>>>,
    count_tx: Arc<watch::Sender<usize>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let mut headers = HashMap::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).await?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
            }
        }
        let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        let recorded = Recorded {
            method,
            path,
            headers,
            body,
        };
        let reply = handler(&recorded);
        requests.lock().unwrap().push(recorded);
        count_tx.send_modify(|c| *c += 1);
        let reply = match reply {
            Reply::Gated(gate, reply) => {
                gate.acquire().await.expect("gate open").forget();
                *reply
            }
            reply => reply,
        };
        match reply {
            Reply::Hang | Reply::Gated(..) => std::future::pending::<()>().await,
            Reply::Drop => return Ok(()),
            Reply::Respond { status, headers, body } => {
                let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                write.write_all(head.as_bytes()).await?;
                write.write_all(&body).await?;
                write.flush().await?;
            }
        }
    }
}

/// moto's endpoint, exported by `scripts/test`. Tests that need it fail
/// (never skip) without it.
pub fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT")
        .expect("MOTO_ENDPOINT is not set: run the suite with scripts/test, which starts moto server (these suites need `--features moto-tests`)")
}

/// An SNS client for test setup, pointed at moto.
pub async fn sns_client() -> aws_sdk_sns::Client {
    let sdk = sdk::sdk_config();
    let config = aws_sdk_sns::config::Builder::from(&sdk)
        .endpoint_url(moto_endpoint())
        .build();
    aws_sdk_sns::Client::from_conf(config)
}

/// An S3 client for test setup, pointed at moto (path-style addressing).
pub async fn s3_client() -> aws_sdk_s3::Client {
    let sdk = sdk::sdk_config();
    let config = aws_sdk_s3::config::Builder::from(&sdk)
        .endpoint_url(moto_endpoint())
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A bucket with a name no other test uses.
pub async fn create_bucket(s3: &aws_sdk_s3::Client, prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let name = format!("{prefix}-{}-{n}", std::process::id());
    s3.create_bucket().bucket(&name).send().await.expect("create bucket");
    name
}

/// Every decision record under `s3://bucket/prefix`, with the keys they were in.
pub async fn s3_records(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Vec<(String, Value)> {
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("list");
    let mut records = Vec::new();
    for object in listed.contents() {
        let key = object.key().unwrap().to_string();
        let body = s3.get_object().bucket(bucket).key(&key).send().await.expect("get");
        let bytes = body.body.collect().await.unwrap().into_bytes();
        for record in alert_responder::records::decode(&bytes).expect("records decode") {
            records.push((key.clone(), serde_json::to_value(record).unwrap()));
        }
    }
    records
}

/// Validates a decision record against `schemas/decision.v1.json`.
pub fn assert_valid_record(record: &Value) {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    assert_valid(
        &SCHEMA,
        "schemas/decision.v1.json",
        include_str!("../../schemas/decision.v1.json"),
        record,
    );
}

/// A topic with a name no other test uses.
pub async fn create_topic(sns: &aws_sdk_sns::Client, prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let name = format!("{prefix}-{}-{n}", std::process::id());
    sns.create_topic()
        .name(name)
        .send()
        .await
        .expect("create topic")
        .topic_arn
        .unwrap()
}

/// Subscribes an HTTP endpoint, optionally with a filter policy on message attributes.
pub async fn subscribe_http(sns: &aws_sdk_sns::Client, topic_arn: &str, url: &str, filter_policy: Option<Value>) {
    let mut request = sns.subscribe().topic_arn(topic_arn).protocol("http").endpoint(url);
    if let Some(policy) = filter_policy {
        request = request.attributes("FilterPolicy", policy.to_string());
    }
    request.send().await.expect("subscribe");
}

/// Validates `value` against a committed JSON Schema.
fn assert_valid(schema: &'static std::sync::OnceLock<jsonschema::Validator>, file: &str, text: &str, value: &Value) {
    let validator = schema.get_or_init(|| {
        let schema: Value = serde_json::from_str(text).unwrap();
        jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{file} compiles: {e}"))
    });
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "does not match {file}: {errors:#?}\n{value:#}");
}

/// Validates an outcome against `schemas/outcome.v1.json`.
pub fn assert_valid_outcome(outcome: &Value) {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    assert_valid(
        &SCHEMA,
        "schemas/outcome.v1.json",
        include_str!("../../schemas/outcome.v1.json"),
        outcome,
    );
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The SNS event fixture with the Matano change's severity and never-seen
/// source IPs (`context_diff.source.ip`) replaced.
pub fn matano_sns_event(severity: &str, new_ips: &[&str]) -> Value {
    let mut event: Value = serde_json::from_str(&fixture("sns_event_matano.json")).unwrap();
    let mut payload: Value = serde_json::from_str(event["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    payload["updated_alert"]["severity"] = Value::String(severity.to_string());
    payload["context_diff"]["source"] = serde_json::json!({ "ip": new_ips });
    event["Records"][0]["Sns"]["Message"] = Value::String(payload.to_string());
    event
}

pub fn fixture_path(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// HTTP settings for tests: loopback servers are private addresses, so the
/// tests opt in as a user would.
pub fn loopback_allowed() -> alert_responder::http::HttpSettings {
    alert_responder::http::HttpSettings {
        default_timeout: std::time::Duration::from_secs(5),
        policy: alert_responder::http::HttpPolicy {
            allow_private: true,
            ..alert_responder::http::HttpPolicy::default()
        },
        ..alert_responder::http::HttpSettings::default()
    }
}

/// Runs one built-in action for `alert`, as the workflow would.
pub async fn run_action(
    settings: alert_responder::http::HttpSettings,
    alert: &alert_responder::model::Alert,
    uses: &str,
    args: Value,
    outcome_id: &str,
) -> Result<Value, alert_responder::action::ActionError> {
    let registry = alert_responder::action::Registry::with_http(settings);
    let args: serde_json::Map<String, Value> = args.as_object().unwrap().clone();
    let action = registry.validate("test-action", uses, &args)?;
    // As the workflow hands them: AlertChain's argument names renamed.
    let args = registry.canonical_args(uses, &args);
    action
        .run(alert_responder::action::ActionCall {
            action_id: "test-action",
            outcome_id,
            alert,
            args: &args,
            deadline: None,
        })
        .await
}

pub async fn sqs_client() -> aws_sdk_sqs::Client {
    let sdk = sdk::sdk_config();
    let config = aws_sdk_sqs::config::Builder::from(&sdk)
        .endpoint_url(moto_endpoint())
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// The Matano sample change's alert, as the starter kit's alert policy makes
/// it, with the given attributes and references.
pub fn sample_alert(
    attrs: Vec<alert_responder::model::Attr>,
    refs: Vec<alert_responder::model::Reference>,
) -> alert_responder::model::Alert {
    let envelope =
        alert_responder::ingest::ingest_document(fixture("matano_alert_change_v1.json").as_bytes(), &"matano".into())
            .pop()
            .unwrap()
            .unwrap();
    let draft = alert_responder::model::AlertDraft {
        title: "AWS Root Credentials Change".into(),
        description: "Check the AWS root account activity".into(),
        source: "matano".into(),
        severity: "high".into(),
        namespace: "matano".into(),
        attrs,
        refs,
    };
    alert_responder::model::Alert::from_draft(draft, &envelope)
}

/// Every file below `dir`, in name order.
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A name unique to this test process and call.
pub fn unique(name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    )
}

pub async fn dynamodb() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk::sdk_config())
}

/// A state table laid out as the templates create it.
pub async fn create_state_table() -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification,
    };
    let table = unique("alert-responder-state");
    let client = dynamodb().await;
    client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("sk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("sk")
                .key_type(KeyType::Range)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    client
        .update_time_to_live()
        .table_name(&table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    table
}
