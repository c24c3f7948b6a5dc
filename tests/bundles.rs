//! Policy bundles and shadow policies on moto's S3 through the real SDK:
//! the Lambda loading its bundle at init, refusing a bad one, serving a new
//! version after a refresh while a bad version leaves the last good one
//! serving, and a shadow bundle whose divergence lands in the decision
//! record (Lambda mode, loopback Runtime API and SNS subscriber).

mod common;

use std::sync::Arc;
use std::time::Duration;

use alert_responder::app;
use alert_responder::bundle::{build, BundleSource, CompileOptions, Refresher, Watched};
use alert_responder::config::{Config, Location, PolicyEngine, S3Uri};
use alert_responder::policy::PolicyFile;
use common::lambda::{lambda_process, runtime_api, runtime_api_serving, REQUEST_ID};
use common::{
    assert_valid_record, create_bucket, create_topic, matano_sns_event, s3_client, s3_records, sns_client,
    subscribe_http, TestServer,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

const ALERT: &str = "package alert.matano\nalert contains {\"title\": input.updated_alert.title, \"severity\": input.updated_alert.severity} if true\n";

fn bundle_of(action_rego: &str) -> (Vec<u8>, String) {
    let (bytes, manifest) = build(&[
        PolicyFile {
            name: "alert.rego".into(),
            text: ALERT.into(),
        },
        PolicyFile {
            name: "action.rego".into(),
            text: action_rego.into(),
        },
    ]);
    (bytes, manifest.digest)
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .expect("put object");
}

fn webhook_policy(url: &str, id: &str) -> String {
    format!("package action\nrun contains {{\"id\": \"{id}\", \"uses\": \"webhook.post\", \"args\": {{\"url\": \"{url}\", \"data\": {{\"title\": input.alert.title}}}}}}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_is_served_after_a_refresh_and_a_bad_one_is_refused() {
    let s3 = s3_client().await;
    let bucket = create_bucket(&s3, "bundles").await;
    let key = "bundles/prod.tar.gz";
    let (v1, digest1) = bundle_of("package action\nrun contains {\"id\": \"one\", \"uses\": \"webhook.post\", \"args\": {\"url\": \"http://127.0.0.1:9/x\"}} if false\n");
    put(&s3, &bucket, key, v1).await;

    let config = Config::default();
    let options = CompileOptions {
        timeout: Duration::from_secs(2),
        engine: PolicyEngine::Vm,
        memory: 32 << 20,
        show_prints: false,
    };
    let source = BundleSource::S3 {
        s3: alert_responder::aws::S3::new(&common::sdk::sdk_config()),
        uri: S3Uri::parse(&format!("s3://{bucket}/{key}")).unwrap(),
    };
    let live = Watched::new(source);
    let first = live
        .load_if_changed(&options)
        .await
        .unwrap()
        .expect("the first load reads it");
    assert_eq!(first.digest(), digest1);
    let responder = app::responder(
        &config,
        Arc::new(alert_responder::memory::MemoryPublisher::default()),
        None,
        None,
    )
    .unwrap();
    responder.decider().swap_policies(Arc::new(first));
    // Refreshing at every call, for the test.
    let refresher = Refresher::new(Some(live), None, Duration::ZERO, options);

    assert_eq!(
        refresher.refresh_if_due(responder.decider()).await,
        0,
        "unchanged: not reloaded"
    );
    assert_eq!(responder.decider().policies().digest(), digest1);

    let (v2, digest2) = bundle_of("package action\n");
    put(&s3, &bucket, key, v2).await;
    assert_eq!(refresher.refresh_if_due(responder.decider()).await, 0);
    assert_eq!(
        responder.decider().policies().digest(),
        digest2,
        "the new version serves"
    );

    // A version that does not compile, then one that is not a bundle: refused, v2 keeps serving.
    let (broken, _) = bundle_of("package action\nrun contains {\"id\": x} if {\n");
    put(&s3, &bucket, key, broken).await;
    assert_eq!(refresher.refresh_if_due(responder.decider()).await, 1);
    assert_eq!(responder.decider().policies().digest(), digest2);
    assert_eq!(
        refresher.refresh_if_due(responder.decider()).await,
        0,
        "a refused version is not tried again"
    );
    put(&s3, &bucket, key, b"not a tarball".to_vec()).await;
    assert_eq!(refresher.refresh_if_due(responder.decider()).await, 1);
    assert_eq!(responder.decider().policies().digest(), digest2);
    // An object that cannot be read (deleted here; access denied, S3 down)
    // is not a refused version: nothing counted, the current one serves.
    s3.delete_object().bucket(&bucket).key(key).send().await.unwrap();
    assert_eq!(refresher.refresh_if_due(responder.decider()).await, 0);
    assert_eq!(responder.decider().policies().digest(), digest2);

    // A missing object names the bucket and key.
    let missing = Watched::new(BundleSource::S3 {
        s3: alert_responder::aws::S3::new(&common::sdk::sdk_config()),
        uri: S3Uri::parse(&format!("s3://{bucket}/bundles/none.tar.gz")).unwrap(),
    });
    let err = missing.load_if_changed(&options).await.unwrap_err().to_string();
    assert!(err.contains(&format!("s3://{bucket}/bundles/none.tar.gz")), "{err}");
    assert!(!err.contains("testing"), "no credentials in errors: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_serves_its_bundle_and_records_what_the_shadow_would_do() {
    let s3 = s3_client().await;
    let bucket = create_bucket(&s3, "lambda-bundles").await;
    let webhook = TestServer::ok().await;
    let (live, live_digest) = bundle_of(&webhook_policy(&webhook.url("/live"), "notify"));
    // The shadow asks for the live action with other args, and one more.
    let shadow_policy = format!(
        "{}run contains {{\"id\": \"page\", \"uses\": \"pagerduty.trigger\", \"args\": {{\"secret_routing_key\": \"k\"}}}}\n",
        webhook_policy(&webhook.url("/changed"), "notify")
    );
    let (shadow, shadow_digest) = bundle_of(&shadow_policy);
    put(&s3, &bucket, "bundles/live.tar.gz", live).await;
    put(&s3, &bucket, "bundles/shadow.tar.gz", shadow).await;

    let sns = sns_client().await;
    let topic = create_topic(&sns, "bundled").await;
    let subscriber = TestServer::ok().await;
    subscribe_http(&sns, &topic, &subscriber.url("/"), None).await;
    let api = runtime_api(matano_sns_event("high", &[])).await;
    let live_uri = format!("s3://{bucket}/bundles/live.tar.gz");
    let shadow_uri = format!("s3://{bucket}/bundles/shadow.tar.gz");
    let records_uri = format!("s3://{bucket}/records");
    let _child = lambda_process(
        &api,
        &[
            ("OUTCOME_TOPIC_ARN", topic.as_str()),
            ("POLICY_BUNDLE", live_uri.as_str()),
            ("SHADOW_POLICY_BUNDLE", shadow_uri.as_str()),
            ("DECISION_RECORDS", records_uri.as_str()),
        ],
    );
    answered(&api).await;
    let outcome: Value = subscriber.wait_for(1, WAIT).await[0].sns_message();
    assert_eq!(outcome["bundle_digest"], live_digest.as_str());
    // The live action ran once; the shadow ran nothing.
    let calls = webhook.wait_for(1, WAIT).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].path, "/live");

    let records = s3_records(&s3, &bucket, "records/").await;
    assert_eq!(records.len(), 1);
    let record = &records[0].1;
    assert_valid_record(record);
    assert_eq!(record["bundle_digest"], live_digest.as_str());
    let shadow = &record["shadow"];
    assert_eq!(shadow["bundle_digest"], shadow_digest.as_str());
    assert_eq!(shadow["diverged"], true);
    let divergence = &shadow["divergence"];
    assert_eq!(divergence["actions_added"][0]["id"], "page");
    assert_eq!(
        divergence["actions_added"][0]["args"]["secret_routing_key"],
        "[REDACTED]"
    );
    assert_eq!(divergence["actions_changed"][0]["id"], "notify");
    // Where the shadow asked for an id the live workflow ran, it saw the live result.
    let shadow_actions = shadow["alerts"][0]["actions"].as_array().unwrap();
    let notify = shadow_actions.iter().find(|a| a["id"] == "notify").unwrap();
    assert_eq!(notify["status"], "succeeded");
    let page = shadow_actions.iter().find(|a| a["id"] == "page").unwrap();
    assert_eq!(page["status"], "dry_run");
}

/// A shadow bundle refused at init leaves the live path serving and is
/// counted by the first invocation's `PolicyBundleRefused` (init writes no
/// metrics); one that cannot be read is not a refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_bundle_refused_at_init_is_counted_once_by_the_first_invocation() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("shadow.tar.gz");
    std::fs::write(&broken, bundle_of("package action\nrun contains {\"id\": x} if {\n").0).unwrap();
    let s3 = s3_client().await;
    let bucket = create_bucket(&s3, "shadow-init").await;
    let unreadable = format!("s3://{bucket}/bundles/none.tar.gz");
    for (shadow, refused) in [(Location::Local(broken), 1), (Location::parse(&unreadable).unwrap(), 0)] {
        let config = Config {
            outcome_topic_arn: Some("arn:aws:sns:us-east-1:123456789012:x".into()),
            shadow_bundle: Some(shadow.clone()),
            ..Config::default()
        };
        let parts = app::lambda_init(&config).await.unwrap();
        assert!(parts.responder.decider().shadow().is_none(), "{shadow}");
        let refresher = parts.refresher.expect("the shadow bundle is watched");
        assert_eq!(
            refresher.refresh_if_due(parts.responder.decider()).await,
            refused,
            "{shadow}"
        );
        assert_eq!(
            refresher.refresh_if_due(parts.responder.decider()).await,
            0,
            "{shadow}: counted once"
        );
    }
}

/// In Lambda mode, the refusal is counted even when the first invocation
/// decides nothing (a function URL request): its one EMF line says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_invocation_counts_a_shadow_refused_at_init_even_a_click() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("shadow.tar.gz");
    std::fs::write(&broken, bundle_of("package action\nrun contains {\"id\": x} if {\n").0).unwrap();
    let click = serde_json::json!({"version": "2.0", "rawPath": "/slack/actions", "headers": {},
        "requestContext": {"http": {"method": "POST", "path": "/slack/actions"}}, "body": "", "isBase64Encoded": false});
    let api = runtime_api(click).await;
    let mut child = lambda_process(
        &api,
        &[
            ("OUTCOME_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:x"),
            ("SHADOW_POLICY_BUNDLE", broken.to_str().unwrap()),
        ],
    );
    answered(&api).await;
    child.kill().await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    let refused: Vec<f64> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|line| line["PolicyBundleRefused"].as_f64())
        .collect();
    assert_eq!(refused, [1.0]);
}

/// Waits until the function answered its first invocation.
async fn answered(api: &TestServer) {
    let requests = api.wait_for(3, WAIT).await;
    assert!(
        requests
            .iter()
            .any(|r| r.path == format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/response")),
        "{requests:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_without_a_good_bundle_fails_init_naming_it() {
    let s3 = s3_client().await;
    let bucket = create_bucket(&s3, "bad-bundles").await;
    put(&s3, &bucket, "bundles/bad.tar.gz", b"\x1f\x8b truncated".to_vec()).await;
    let api = runtime_api_serving(Vec::new()).await;
    let uri = format!("s3://{bucket}/bundles/bad.tar.gz");
    let child = lambda_process(
        &api,
        &[
            ("OUTCOME_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:x"),
            ("POLICY_BUNDLE", uri.as_str()),
        ],
    );
    let output = child.wait_with_output().await.unwrap();
    assert!(!output.status.success());
    let init = api
        .requests()
        .into_iter()
        .find(|r| r.path == "/2018-06-01/runtime/init/error")
        .expect("init error reported");
    let body = String::from_utf8_lossy(&init.body).to_string();
    assert!(body.contains(&uri) && body.contains("gzip"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_calls_retry_what_s3_asks_to_retry_and_no_more() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    // 503 SlowDown twice, then success; a 403 on another key at once.
    let server = TestServer::start(move |req| {
        if req.path.contains("denied") {
            return common::Reply::text(
                403,
                "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
            );
        }
        match seen.fetch_add(1, Ordering::SeqCst) {
            0 | 1 => common::Reply::text(
                503,
                "<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>",
            ),
            _ => common::Reply::text(200, ""),
        }
    })
    .await;
    let sdk = alert_responder::aws::sdk_config_from(|name| match name {
        "AWS_ENDPOINT_URL" => Some(server.url("")),
        "AWS_REGION" => Some("us-east-1".into()),
        "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".into()),
        "AWS_SECRET_ACCESS_KEY" => Some("not-a-real-secret-value".into()),
        _ => None,
    });
    let records = alert_responder::aws::S3Records::new(
        alert_responder::aws::S3::new(&sdk),
        S3Uri::parse("s3://records-bucket/records").unwrap(),
    );
    let object = alert_responder::records::RecordObject {
        key: "dt=2026-11-29/hour=07/x.jsonl.gz".into(),
        body: b"gz".to_vec(),
        count: 1,
    };
    use alert_responder::records::RecordSink;
    records.write(&object).await.expect("the third try succeeds");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let put = server.requests().into_iter().last().unwrap();
    assert_eq!(put.method, "PUT");
    assert_eq!(put.path, "/records-bucket/records/dt%3D2026-11-29/hour%3D07/x.jsonl.gz");
    assert!(
        put.headers["authorization"].starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
        "{:?}",
        put.headers
    );
    assert!(put.headers.contains_key("x-amz-content-sha256"));

    let denied = alert_responder::aws::S3Records::new(
        alert_responder::aws::S3::new(&sdk),
        S3Uri::parse("s3://records-bucket/denied").unwrap(),
    );
    let before = server.requests().len();
    let err = denied.write(&object).await.unwrap_err().to_string();
    assert_eq!(server.requests().len(), before + 1, "a 403 is not retried");
    assert!(
        err.contains("s3://records-bucket/denied/dt=2026-11-29/hour=07/x.jsonl.gz")
            && err.contains("HTTP 403 AccessDenied: Access Denied"),
        "{err}"
    );
    assert!(
        !err.contains("not-a-real-secret-value") && !err.contains("AKIDEXAMPLE"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reads_records_from_an_s3_prefix_and_names_what_it_cannot_read() {
    let s3 = s3_client().await;
    let bucket = create_bucket(&s3, "replay-records").await;
    let root = tempfile::tempdir().unwrap();
    let policies = root.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("alert.rego"), ALERT).unwrap();
    std::fs::write(
        policies.join("action.rego"),
        webhook_policy("https://hooks.example.com/a", "notify"),
    )
    .unwrap();
    let records = root.path().join("records");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_alert-responder"))
        .args([
            "run",
            "--dry-run",
            "--policies",
            policies.to_str().unwrap(),
            "--records",
            records.to_str().unwrap(),
        ])
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    for file in common::files_under(&records) {
        let key = format!("records/{}", file.strip_prefix(&records).unwrap().display());
        put(&s3, &bucket, &key, std::fs::read(&file).unwrap()).await;
    }
    std::fs::write(
        policies.join("action.rego"),
        webhook_policy("https://hooks.example.com/b", "notify"),
    )
    .unwrap();
    let replay = |from: String| {
        std::process::Command::new(env!("CARGO_BIN_EXE_alert-responder"))
            .args([
                "replay",
                "--json",
                "--from",
                &from,
                "--policies",
                policies.to_str().unwrap(),
            ])
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .output()
            .unwrap()
    };
    let output = replay(format!("s3://{bucket}/records/"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (report["changes"].as_u64(), report["differing"].as_u64()),
        (Some(1), Some(1)),
        "{report:#}"
    );
    assert!(report["differences"][0]["at"]
        .as_str()
        .unwrap()
        .starts_with(&format!("s3://{bucket}/records/dt=")));

    let output = replay("s3://no-such-bucket-here/records/".to_string());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(said.contains("s3://no-such-bucket-here/records/: listing:"), "{said}");
    assert!(!said.contains("testing"), "no credentials: {said}");
}
