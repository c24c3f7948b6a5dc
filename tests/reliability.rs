//! Fault injection and exactly-once: duplicate deliveries (sequential and
//! concurrent), a crash mid-invocation, transient failures of webhooks,
//! Secrets Manager, DynamoDB and SNS (moto stopped mid-run, a proxy that
//! drops or delays connections), stale changes, persistent counters under
//! concurrency, and policy faults that leave other records running.
//! Side effects are counted at loopback receivers.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alert_responder::app;
use alert_responder::aws::{DynamoState, SecretsManager, Sns, SnsPublisher};
use alert_responder::config::{Config, PolicySource};
use alert_responder::decide::Decider;
use alert_responder::lambda;
use alert_responder::pipeline::{HandleError, Responder, Summary};
use alert_responder::publish::Publisher;
use alert_responder::secrets::SecretResolver;
use alert_responder::state::{PersistOp, PersistWrite, StateStore};
use common::proxy::{Mode, OneAtATime, Proxy};
use common::{
    create_state_table, create_topic, fixture, sns_client, subscribe_http, unique, Recorded, Reply, TestServer,
};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// Policies: one alert per change (in `namespace`), then the given action rules.
fn policies(dir: &Path, namespace: &str, action_rules: &str) {
    std::fs::write(
        dir.join("alert.rego"),
        format!("package alert.matano\nalert contains {{\"title\": input.updated_alert.title, \"severity\": input.updated_alert.severity, \"namespace\": \"{namespace}\"}} if true\n"),
    )
    .unwrap();
    std::fs::write(dir.join("action.rego"), format!("package action\n{action_rules}\n")).unwrap();
}

struct Rig {
    config: Config,
    subscriber: TestServer,
    _dir: tempfile::TempDir,
}

/// A config with a state table, loopback allowed, and outcomes going to a
/// fresh topic whose deliveries `subscriber` records.
async fn rig(action_rules: &str, env: &[(&str, String)]) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    policies(dir.path(), &unique("ns"), action_rules);
    let sns = sns_client().await;
    let topic = create_topic(&sns, "reliability").await;
    let subscriber = TestServer::ok().await;
    subscribe_http(&sns, &topic, &subscriber.url("/"), None).await;
    let config = Config {
        outcome_topic_arn: Some(topic),
        policies: PolicySource::Dir(dir.path().to_path_buf()),
        state_table: Some(create_state_table().await),
        claim_lease: Duration::from_secs(1),
        http_allow_private: true,
        policy_env: env.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        ..Config::default()
    };
    Rig {
        config,
        subscriber,
        _dir: dir,
    }
}

/// A Matano change as a Lambda SNS event.
fn event(alert_id: &str, update_count: u64) -> Value {
    let mut payload: Value = serde_json::from_str(&fixture("matano_alert_change_v2.json")).unwrap();
    payload["updated_alert"]["id"] = json!(alert_id);
    payload["updated_alert"]["update_count"] = json!(update_count);
    let mut event: Value = serde_json::from_str(&fixture("sns_event_matano.json")).unwrap();
    event["Records"][0]["Sns"]["Message"] = Value::String(payload.to_string());
    event
}

/// One invocation with a minute to run, as Lambda gives it.
async fn handle(responder: &Responder, event: Value) -> Result<Summary, HandleError> {
    handle_within(responder, event, Duration::from_secs(60)).await
}

/// One invocation whose deadline is `time` from now.
async fn handle_within(responder: &Responder, event: Value, time: Duration) -> Result<Summary, HandleError> {
    let mut context = Context::default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    context.deadline = (now + time).as_millis() as u64;
    lambda::handle(responder, &"matano".into(), LambdaEvent::new(event, context))
        .await
        .map(|response| response.summary().expect("an SNS invocation answers its counts"))
}

fn outcomes(subscriber: &TestServer) -> Vec<Value> {
    subscriber.requests().iter().map(Recorded::sns_message).collect()
}

fn hits(server: &TestServer, path: &str) -> usize {
    server.requests().iter().filter(|r| r.path == path).count()
}

const TWO_WEBHOOKS: &str = r#"
run contains {"id": "notify", "uses": "webhook.post", "args": {"url": sprintf("%s/notify", [input.env.HOOKS])}}
run contains {"id": "ticket", "uses": "webhook.post", "args": {"url": sprintf("%s/ticket", [input.env.HOOKS])}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sequential_duplicate_delivery_replays_instead_of_running_again() {
    let hooks = TestServer::ok().await;
    let rig = rig(TWO_WEBHOOKS, &[("HOOKS", hooks.url(""))]).await;
    let responder = app::lambda_responder(&rig.config).unwrap();
    let alert_id = unique("alert");

    let first = handle(&responder, event(&alert_id, 1)).await.unwrap();
    let second = handle(&responder, event(&alert_id, 1)).await.unwrap();
    assert_eq!((first.actions, first.replayed), (2, 0));
    assert_eq!((second.actions, second.replayed), (2, 2));
    assert_eq!(
        (hits(&hooks, "/notify"), hits(&hooks, "/ticket")),
        (1, 1),
        "each side effect exactly once"
    );

    let published = rig
        .subscriber
        .wait_for(4, WAIT)
        .await
        .iter()
        .map(Recorded::sns_message)
        .collect::<Vec<_>>();
    let (originals, replays): (Vec<&Value>, Vec<&Value>) = published.iter().partition(|o| o.get("replay").is_none());
    assert_eq!((originals.len(), replays.len()), (2, 2));
    for replay in &replays {
        common::assert_valid_outcome(replay);
        assert_eq!(replay["replay"], true);
        let original = originals
            .iter()
            .find(|o| o["action"]["id"] == replay["action"]["id"])
            .unwrap();
        assert_eq!(original["outcome_id"], replay["outcome_id"]);
        assert_eq!(original["result"], replay["result"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicate_deliveries_run_each_action_once() {
    let hooks = TestServer::ok().await;
    let rig = rig(TWO_WEBHOOKS, &[("HOOKS", hooks.url(""))]).await;
    let responder = app::lambda_responder(&rig.config).unwrap();
    let alert_id = unique("alert");
    let deliveries = (0..6).map(|_| handle(&responder, event(&alert_id, 1)));
    let summaries: Vec<Summary> = futures::future::join_all(deliveries)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        (hits(&hooks, "/notify"), hits(&hooks, "/ticket")),
        (1, 1),
        "each side effect exactly once"
    );
    let replayed: usize = summaries.iter().map(|s| s.replayed).sum();
    assert_eq!(replayed, 10, "the other five deliveries replayed both actions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_invocation_is_finished_by_the_retry_without_repeating_finished_actions() {
    let ticket_healthy = Arc::new(AtomicBool::new(false));
    let healthy = ticket_healthy.clone();
    // The ticket system hangs the first time: the invocation dies in the middle.
    let hooks = TestServer::start(move |req| {
        if req.path == "/ticket" && !healthy.load(Ordering::SeqCst) {
            Reply::Hang
        } else {
            Reply::json(200, json!({"ok": true}))
        }
    })
    .await;
    let rules = r#"
run contains {"id": "notify", "uses": "webhook.post", "args": {"url": sprintf("%s/notify", [input.env.HOOKS])}}
run contains {"id": "ticket", "uses": "webhook.post", "args": {"url": sprintf("%s/ticket", [input.env.HOOKS])}} if {
    some c in input.called
    c.id == "notify"
}
"#;
    let rig = rig(rules, &[("HOOKS", hooks.url(""))]).await;
    let responder = app::lambda_responder(&rig.config).unwrap();
    let alert_id = unique("alert");

    // The "crash": the invocation is dropped once the ticket request is in
    // flight. Its leases last as long as it could have run (a few seconds here).
    let crashed = handle_within(&responder, event(&alert_id, 1), Duration::from_secs(4));
    tokio::select! {
        _ = crashed => panic!("the first invocation should not finish"),
        _ = hooks.wait_for(2, WAIT) => {}
    }
    assert_eq!((hits(&hooks, "/notify"), hits(&hooks, "/ticket")), (1, 1));

    ticket_healthy.store(true, Ordering::SeqCst);
    // The retry waits out the dead invocation's leases (its namespace, then
    // `ticket`), then takes over.
    let retry = handle(&responder, event(&alert_id, 1)).await.unwrap();
    assert_eq!(retry.replayed, 1, "notify is replayed, not repeated");
    assert_eq!(hits(&hooks, "/notify"), 1);
    assert_eq!(
        hits(&hooks, "/ticket"),
        2,
        "the in-flight action is the only one run again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transient_webhook_failure_fails_the_invocation_and_the_retry_runs_only_it() {
    let ticket_healthy = Arc::new(AtomicBool::new(false));
    let healthy = ticket_healthy.clone();
    let hooks = TestServer::start(move |req| {
        if req.path == "/ticket" && !healthy.load(Ordering::SeqCst) {
            Reply::json(503, json!({"error": "maintenance"}))
        } else {
            Reply::json(200, json!({"ok": true}))
        }
    })
    .await;
    let rig = rig(TWO_WEBHOOKS, &[("HOOKS", hooks.url(""))]).await;
    let responder = app::lambda_responder(&rig.config).unwrap();
    let alert_id = unique("alert");

    let err = handle(&responder, event(&alert_id, 1)).await.unwrap_err();
    assert!(matches!(err, HandleError::Retry { count: 1, .. }), "{err}");
    assert!(
        err.to_string().contains("ticket: POST") && err.to_string().contains("HTTP 503"),
        "{err}"
    );
    assert_eq!(hits(&hooks, "/ticket"), 3, "bounded retries inside the invocation");
    // The final outcome of `notify` is out; the not-final `ticket` one is not.
    let published = rig.subscriber.wait_for(1, WAIT).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].sns_message()["action"]["id"], "notify");

    ticket_healthy.store(true, Ordering::SeqCst);
    let retry = handle(&responder, event(&alert_id, 1)).await.unwrap();
    assert_eq!(retry.replayed, 1);
    assert_eq!(hits(&hooks, "/notify"), 1);
    assert_eq!(hits(&hooks, "/ticket"), 4);
    let ticket = outcomes(&rig.subscriber)
        .into_iter()
        .find(|o| o["action"]["id"] == "ticket")
        .unwrap();
    assert_eq!(ticket["status"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_state_table_failures_are_final_outcomes() {
    let hooks = TestServer::start(|_| Reply::json(503, json!({}))).await;
    let mut rig = rig(TWO_WEBHOOKS, &[("HOOKS", hooks.url(""))]).await;
    rig.config.state_table = None;
    let responder = app::lambda_responder(&rig.config).unwrap();
    let summary = handle(&responder, event(&unique("alert"), 1))
        .await
        .expect("no retry without a state table");
    assert_eq!(summary.failed_actions, 2);
    let published = rig.subscriber.wait_for(2, WAIT).await;
    assert!(published.iter().all(|r| r.sns_message()["status"] == "failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_changes_are_reported_and_not_acted_on() {
    let hooks = TestServer::ok().await;
    let rig = rig(TWO_WEBHOOKS, &[("HOOKS", hooks.url(""))]).await;
    let responder = app::lambda_responder(&rig.config).unwrap();
    let alert_id = unique("alert");
    handle(&responder, event(&alert_id, 3)).await.unwrap();
    let stale = handle(&responder, event(&alert_id, 2)).await.unwrap();
    assert_eq!((stale.stale, stale.alerts, stale.actions), (1, 0, 0));
    assert_eq!(hits(&hooks, "/notify"), 1);
    let report = outcomes(&rig.subscriber)
        .into_iter()
        .find(|o| o["event_type"] == "stale_change")
        .expect("a stale_change outcome");
    common::assert_valid_outcome(&report);
    assert_eq!(report["status"], "skipped");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("update_count 2 is older than 3"),
        "{report}"
    );

    let mut config = rig.config.clone();
    config.process_stale_changes = true;
    let processing = app::lambda_responder(&config).unwrap();
    let processed = handle(&processing, event(&alert_id, 1)).await.unwrap();
    assert_eq!(processed.alerts, 1, "STALE_CHANGES=process acts on it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_persistent_counter_loses_no_update_under_concurrency() {
    let hooks = TestServer::ok().await;
    let rules = r#"
run contains {"id": "count", "uses": "http.fetch", "args": {"url": input.env.HOOK},
    "commit": [{"key": "pages", "op": "add", "value": 1, "persist": true, "ttl": 3600}]}
run contains {"id": "seen", "uses": "http.fetch", "args": {"url": sprintf("%s?pages=%v", [input.env.HOOK, a.value])}} if {
    some a in input.alert.attrs
    a.key == "pages"
}
"#;
    let rig = rig(rules, &[("HOOK", hooks.url("/count"))]).await;
    // DynamoDB applies concurrent writes to an item one after another; moto
    // needs them sent that way (see `OneAtATime`).
    let moto = common::moto_endpoint();
    let serialized = OneAtATime::start(moto_addr()).await;
    let responder = responder_with(&rig.config, &moto, &serialized.url(), &moto).await;
    let alerts: Vec<String> = (0..25).map(|_| unique("alert")).collect();
    let runs = alerts.iter().map(|id| handle(&responder, event(id, 1)));
    for result in futures::future::join_all(runs).await {
        result.unwrap();
    }
    let namespace = match &rig.config.policies {
        PolicySource::Dir(dir) => std::fs::read_to_string(dir.join("alert.rego"))
            .unwrap()
            .split("\"namespace\": \"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string(),
        PolicySource::Bundled => unreachable!(),
    };
    let state = DynamoState::new(
        &alert_responder::aws::sdk_config(),
        rig.config.state_table.clone().unwrap(),
    );
    let attrs = state.load_attrs(&namespace).await.unwrap();
    assert_eq!(attrs.len(), 1);
    assert_eq!(attrs[0].value, json!(25), "every concurrent increment counted");
    assert_eq!(attrs[0].ttl, Some(3600), "the ttl it was stored with");

    // A later alert of the namespace sees the persisted value from its first round.
    handle(&responder, event(&unique("alert"), 1)).await.unwrap();
    assert!(
        hooks.requests().iter().any(|r| r.path == "/count?pages=25"),
        "{:?}",
        hooks.requests().iter().map(|r| &r.path).collect::<Vec<_>>()
    );
}

/// An alert policy's `persist: true` attribute goes through the table: the
/// next alert of the namespace sees the first one's value, not its own.
#[tokio::test]
async fn an_alert_policys_persisted_attribute_reaches_the_next_alert_through_the_table() {
    let hooks = TestServer::ok().await;
    let rules = r#"run contains {"id": "seen", "uses": "http.fetch", "args": {"url": sprintf("%s?first=%v", [input.env.HOOK, a.value])}} if {
    some a in input.alert.attrs
    a.key == "first"
}"#;
    let rig = rig(rules, &[("HOOK", hooks.url("/seen"))]).await;
    let PolicySource::Dir(dir) = &rig.config.policies else {
        unreachable!("the rig writes its policies to a directory")
    };
    std::fs::write(
        dir.join("alert.rego"),
        format!(
            r#"package alert.matano
alert contains {{"title": "t", "namespace": "{}", "attrs": [
    {{"key": "first", "id": "first", "value": input.updated_alert.id, "persist": true, "ttl": 600}}
]}} if true
"#,
            unique("ns")
        ),
    )
    .unwrap();
    let responder = app::lambda_responder(&rig.config).unwrap();
    let (first, second) = (unique("alert"), unique("alert"));
    handle(&responder, event(&first, 1)).await.unwrap();
    handle(&responder, event(&second, 1)).await.unwrap();
    let wanted = format!("/seen?first={first}");
    assert_eq!(
        hits(&hooks, &wanted),
        2,
        "{:?}",
        hooks.requests().iter().map(|r| &r.path).collect::<Vec<_>>()
    );
}

/// Attribute writes outside an action record (an alert policy's) all
/// land; one whose id the namespace holds leaves the stored value, even
/// when written without the namespace's lock.
#[tokio::test]
async fn attribute_writes_outside_a_record_land_and_keep_what_is_held() {
    let state = DynamoState::new(&alert_responder::aws::sdk_config(), create_state_table().await);
    let namespace = unique("ns");
    let writes = |value: i64, ttl: u64| -> Vec<PersistWrite> {
        (0..120)
            .map(|i| PersistWrite {
                namespace: namespace.clone(),
                id: format!("a{i}"),
                key: "k".into(),
                kind: Some("number".into()),
                op: PersistOp::Set(json!(i * value)),
                ttl: Duration::from_secs(ttl),
            })
            .collect()
    };
    // Expired as written (DynamoDB has not deleted them yet): not held.
    state.save_attrs(&writes(7, 0)).await.unwrap();
    state.save_attrs(&writes(1, 60)).await.unwrap();
    state.save_attrs(&writes(-1, 60)).await.unwrap();
    let attrs = state.load_attrs(&namespace).await.unwrap();
    assert_eq!(attrs.len(), 120);
    let total: i64 = attrs.iter().map(|attr| attr.value.as_i64().unwrap()).sum();
    assert_eq!(total, (0..120).sum::<i64>(), "the first values stand");
    assert!(attrs
        .iter()
        .all(|attr| attr.kind.as_deref() == Some("number") && attr.ttl.unwrap() <= 60));
}

/// A responder like `app::lambda_responder` builds, with chosen AWS endpoints.
async fn responder_with(
    config: &Config,
    sns_endpoint: &str,
    dynamodb_endpoint: &str,
    secrets_endpoint: &str,
) -> Responder {
    let sdk = alert_responder::aws::sdk_config();
    let at = |endpoint: &str| sdk.to_builder().endpoint_url(endpoint).build();
    let sns = Arc::new(Sns::new(&at(sns_endpoint)));
    let publisher: Arc<dyn Publisher> = Arc::new(SnsPublisher::new(sns, config.outcome_topic_arn.clone().unwrap()));
    let state: Arc<dyn StateStore> = Arc::new(DynamoState::new(
        &at(dynamodb_endpoint),
        config.state_table.clone().unwrap(),
    ));
    let decider = Decider::new(
        Arc::new(app::policies(config).unwrap()),
        app::registry(config, None),
        app::decide_settings(config),
        SecretResolver::new(
            Arc::new(SecretsManager::new(&at(secrets_endpoint))),
            config.secret_cache_ttl,
        ),
        Some(state),
    );
    Responder::new(decider, publisher)
}

fn moto_addr() -> std::net::SocketAddr {
    common::moto_endpoint().trim_start_matches("http://").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_unreachable_fails_the_invocation_before_any_action() {
    let hooks = TestServer::ok().await;
    let rig = rig(TWO_WEBHOOKS, &[("HOOKS", hooks.url(""))]).await;
    let moto = common::moto_endpoint();
    let dropping = Proxy::start(moto_addr(), Mode::Drop).await;
    let responder = responder_with(&rig.config, &moto, &dropping.url(), &moto).await;
    let err = handle(&responder, event(&unique("alert"), 1)).await.unwrap_err();
    assert!(matches!(err, HandleError::State(_)), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("state table {}: ", rig.config.state_table.as_ref().unwrap())),
        "{err}"
    );
    assert!(hooks.requests().is_empty(), "no side effect without a claim");

    // The same event, once DynamoDB is back, runs normally.
    dropping.set_mode(Mode::Forward);
    handle(&responder, event(&unique("alert"), 1)).await.unwrap();
    assert_eq!(hits(&hooks, "/notify"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_manager_unreachable_is_retried_with_the_invocation() {
    let hooks = TestServer::ok().await;
    let secret = unique("prod/hook-key");
    let secrets = aws_sdk_secretsmanager::Client::new(&common::sdk::sdk_config());
    secrets
        .create_secret()
        .name(&secret)
        .secret_string("k3y")
        .send()
        .await
        .unwrap();
    let rules = format!(
        r#"run contains {{"id": "signed", "uses": "webhook.post", "args": {{"url": input.env.HOOK, "secret_signing_key": {{"secret": "{secret}"}}}}}}"#
    );
    let rig = rig(&rules, &[("HOOK", hooks.url("/signed"))]).await;
    let moto = common::moto_endpoint();
    let secrets_proxy = Proxy::start(moto_addr(), Mode::Drop).await;
    let responder = responder_with(&rig.config, &moto, &moto, &secrets_proxy.url()).await;
    let alert_id = unique("alert");

    let err = handle(&responder, event(&alert_id, 1)).await.unwrap_err();
    assert!(matches!(err, HandleError::Retry { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("secret \"{secret}\" could not be read")),
        "{err}"
    );
    assert!(hooks.requests().is_empty());

    secrets_proxy.set_mode(Mode::Forward);
    handle(&responder, event(&alert_id, 1)).await.unwrap();
    assert_eq!(hits(&hooks, "/signed"), 1, "the released claim is taken by the retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sns_through_a_slow_proxy_still_publishes_and_through_a_dropping_one_fails_typed() {
    let hooks = TestServer::ok().await;
    let rig = rig(TWO_WEBHOOKS, &[("HOOKS", hooks.url(""))]).await;
    let moto = common::moto_endpoint();
    let sns_proxy = Proxy::start(moto_addr(), Mode::Delay(Duration::from_millis(300))).await;
    let responder = responder_with(&rig.config, &sns_proxy.url(), &moto, &moto).await;
    handle(&responder, event(&unique("alert"), 1))
        .await
        .expect("a delay is only a delay");
    rig.subscriber.wait_for(2, WAIT).await;

    sns_proxy.set_mode(Mode::Drop);
    let alert_id = unique("alert");
    let started = std::time::Instant::now();
    let err = handle(&responder, event(&alert_id, 1)).await.unwrap_err();
    assert!(matches!(err, HandleError::Publish(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "bounded retries");
    // The actions ran and were recorded: the retry publishes without re-running them.
    sns_proxy.set_mode(Mode::Forward);
    let retry = handle(&responder, event(&alert_id, 1)).await.unwrap();
    assert_eq!(retry.replayed, 2);
    assert_eq!(hits(&hooks, "/notify"), 2, "once per distinct alert");
}

/// A private moto server this test may stop.
struct PrivateMoto {
    child: std::process::Child,
    endpoint: String,
}

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn private_moto() -> PrivateMoto {
    let bin = std::env::var("MOTO_SERVER_BIN").expect("MOTO_SERVER_BIN is not set: run the suite with scripts/test");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(bin)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    // Ready when it accepts connections.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "private moto did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    PrivateMoto { child, endpoint }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moto_stopped_mid_run_fails_the_publish_and_the_retry_does_not_repeat_actions() {
    publish_fails_then_the_retry_replays(
        r#"run contains {"id": "notify", "uses": "webhook.post", "args": {"url": input.env.HOOK}}"#,
    )
    .await;
}

/// The same when the action persisted what it did and the policy asks for
/// it only while that is not there: the retry decides with it, asks for
/// nothing, and still publishes the outcome of what ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_that_no_longer_asks_for_what_ran_still_publishes_its_outcome() {
    publish_fails_then_the_retry_replays(
        r#"notified if {
    some a in input.alert.attrs
    a.key == "notified"
}
run contains {"id": "notify", "uses": "webhook.post", "args": {"url": input.env.HOOK}, "commit": [{"key": "notified", "value": true, "persist": true}]} if not notified"#,
    )
    .await;
}

/// A webhook action whose run stops the invocation's SNS (its publish
/// fails), then Lambda's retry with SNS back: the action is not run again,
/// and its outcome is published as a replay.
async fn publish_fails_then_the_retry_replays(action_rules: &str) {
    let moto = private_moto().await;
    let sdk = common::sdk::sdk_config();
    let private_sns = aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(&sdk)
            .endpoint_url(&moto.endpoint)
            .build(),
    );
    let topic = private_sns
        .create_topic()
        .name("outcomes")
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();

    let private_endpoint = moto.endpoint.clone();
    // The webhook stops moto while the action runs: the publish that follows fails.
    let moto = Arc::new(Mutex::new(Some(moto)));
    let stopper = moto.clone();
    let hooks = TestServer::start(move |_| {
        stopper.lock().unwrap().take();
        Reply::json(200, json!({}))
    })
    .await;
    let mut rig = rig(action_rules, &[("HOOK", hooks.url("/notify"))]).await;
    let main_topic = rig.config.outcome_topic_arn.replace(topic).unwrap();
    let main_moto = common::moto_endpoint();
    let responder = responder_with(&rig.config, &private_endpoint, &main_moto, &main_moto).await;
    let alert_id = unique("alert");
    let err = handle(&responder, event(&alert_id, 1)).await.unwrap_err();
    assert!(matches!(err, HandleError::Publish(_)), "{err}");
    assert!(err.to_string().contains("publishing 1 of 1 outcomes"), "{err}");
    assert_eq!(hits(&hooks, "/notify"), 1);

    // Lambda's retry, with SNS back (the main moto): replayed, not re-run.
    rig.config.outcome_topic_arn = Some(main_topic);
    let retry_responder = responder_with(&rig.config, &main_moto, &main_moto, &main_moto).await;
    let retry = handle(&retry_responder, event(&alert_id, 1)).await.unwrap();
    assert_eq!(retry.replayed, 1);
    assert_eq!(hits(&hooks, "/notify"), 1);
    let published = rig.subscriber.wait_for(1, WAIT).await;
    assert_eq!(published[0].sns_message()["replay"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_policy_fault_in_one_record_leaves_the_others_running() {
    let hooks = TestServer::ok().await;
    let rules = r#"
run contains {"id": "notify", "uses": "webhook.post", "args": {"url": input.env.HOOK}} if {
    input.alert.data.updated_alert.update_count != 7
}

# An invalid entry (no `uses`) for one alert only. (A runtime error such as a
# division by zero would make its body undefined on the VM, as in OPA.)
run contains {"id": "broken"} if input.alert.data.updated_alert.update_count == 7
"#;
    let rig = rig(rules, &[("HOOK", hooks.url("/notify"))]).await;
    let responder = app::lambda_responder(&rig.config).unwrap();
    let bad = event(&unique("alert"), 7);
    let good = event(&unique("alert"), 1);
    let both = json!({"Records": [bad["Records"][0].clone(), good["Records"][0].clone()]});
    let summary = handle(&responder, both).await.unwrap();
    assert_eq!((summary.records, summary.alerts, summary.policy_errors), (2, 2, 1));
    assert_eq!(hits(&hooks, "/notify"), 1);
    let published = rig
        .subscriber
        .wait_for(2, WAIT)
        .await
        .iter()
        .map(Recorded::sns_message)
        .collect::<Vec<_>>();
    let fault = published.iter().find(|o| o["event_type"] == "policy_error").unwrap();
    assert!(fault["error"].as_str().unwrap().contains("data.action.run"), "{fault}");
    assert!(published
        .iter()
        .any(|o| o["action"]["id"] == "notify" && o["status"] == "succeeded"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_result_over_dynamodbs_item_limit_is_recorded_bounded_and_replayed() {
    let big = "x".repeat(600 * 1024);
    let intel = TestServer::start(move |_| Reply::json(200, json!({"report": big}))).await;
    let rules = r#"run contains {"id": "fetch", "uses": "http.fetch", "args": {"url": input.env.URL}}"#;
    let rig = rig(rules, &[("URL", intel.url("/report"))]).await;
    let responder = app::lambda_responder(&rig.config).unwrap();
    let alert_id = unique("alert");
    let first = handle(&responder, event(&alert_id, 1))
        .await
        .expect("the record is stored despite its size");
    let second = handle(&responder, event(&alert_id, 1)).await.unwrap();
    assert_eq!((first.replayed, second.replayed), (0, 1));
    assert_eq!(hits(&intel, "/report"), 1, "replayed, not fetched again");
    let replay = outcomes(&rig.subscriber)
        .into_iter()
        .find(|o| o.get("replay").is_some())
        .expect("a replayed outcome");
    assert_eq!(replay["status"], "succeeded");
    assert_eq!(replay["result"]["truncated"], true);
}

/// Two instances (each its own SDK clients) decide two different alerts of
/// one namespace at the same time under "page once per namespace": the
/// namespace lock serializes them on DynamoDB, so the second sees the first's
/// persisted attribute and one page is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_deciding_one_namespace_page_once() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let paging = gate.clone();
    let hooks = TestServer::start(move |_| Reply::Gated(paging.clone(), Box::new(Reply::json(200, json!({}))))).await;
    let rules = r#"
paged := [a | some a in input.alert.attrs; a.key == "paged"]
run contains {"id": "page", "uses": "webhook.post", "args": {"url": input.env.HOOK},
    "commit": [{"key": "paged", "value": true, "persist": true}]} if count(paged) == 0
"#;
    let rig = rig(rules, &[("HOOK", hooks.url("/page"))]).await;
    let moto = common::moto_endpoint();
    // moto applies conditional writes without a lock; DynamoDB serializes them.
    let serialized = OneAtATime::start(moto_addr()).await;
    let first = responder_with(&rig.config, &moto, &serialized.url(), &moto).await;
    let second = responder_with(&rig.config, &moto, &serialized.url(), &moto).await;
    let (one, two) = (unique("alert"), unique("alert"));
    let runs = async {
        let a = handle(&first, event(&one, 1));
        let b = handle(&second, event(&two, 1));
        let release = async {
            hooks.wait_for(1, WAIT).await;
            gate.add_permits(2);
        };
        let (a, b, ()) = tokio::join!(a, b, release);
        (a.unwrap(), b.unwrap())
    };
    let (a, b) = runs.await;
    assert_eq!(hits(&hooks, "/page"), 1, "one page for the namespace");
    assert_eq!(a.actions + b.actions, 1);
}

/// A claim holds while its invocation can run: with a lease floor of 1 s,
/// an action that takes seconds and a duplicate delivered to a second
/// instance meanwhile, the action runs once and the duplicate replays it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_action_outlives_the_lease_floor_and_runs_once() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let slow = gate.clone();
    let hooks = TestServer::start(move |_| Reply::Gated(slow.clone(), Box::new(Reply::json(200, json!({}))))).await;
    let rig = rig(
        r#"run contains {"id": "slow", "uses": "webhook.post", "args": {"url": input.env.HOOK}}"#,
        &[("HOOK", hooks.url("/slow"))],
    )
    .await;
    assert_eq!(rig.config.claim_lease, Duration::from_secs(1));
    let moto = common::moto_endpoint();
    let first = responder_with(&rig.config, &moto, &moto, &moto).await;
    let second = responder_with(&rig.config, &moto, &moto, &moto).await;
    let alert_id = unique("alert");
    let running = handle(&first, event(&alert_id, 1));
    let duplicate = async {
        hooks.wait_for(1, WAIT).await;
        // Past the lease floor: a fixed lease would have lapsed by now.
        let lapsed = tokio::time::Instant::now() + Duration::from_millis(2500);
        let delivered = handle(&second, event(&alert_id, 1));
        let open = async {
            tokio::time::sleep_until(lapsed).await;
            gate.add_permits(1);
        };
        let (delivered, ()) = tokio::join!(delivered, open);
        delivered
    };
    let (running, duplicate) = tokio::join!(running, duplicate);
    assert_eq!(hits(&hooks, "/slow"), 1, "the action ran once");
    assert_eq!(running.unwrap().replayed + duplicate.unwrap().replayed, 1);
}

/// `ACTION_BUDGETS` counted in the real state table (moto's DynamoDB,
/// conditional updates through the SDK) by two instances: of four alerts'
/// notifications, the budget's two run and two are skipped with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_budget_holds_across_two_instances_on_the_state_table() {
    let hooks = TestServer::ok().await;
    let mut rig = rig(
        r#"run contains {"id": "notify", "uses": "webhook.post", "args": {"url": sprintf("%s/notify", [input.env.HOOKS])}}"#,
        &[("HOOKS", hooks.url(""))],
    )
    .await;
    // The longest window (31 days): a fixed window starts over at its
    // boundary, and this test runs on the wall clock.
    rig.config.action_budgets =
        alert_responder::config::parse_action_budgets(r#"[{"uses": "webhook.*", "limit": 2, "per_seconds": 2678400}]"#)
            .unwrap();
    let one = app::lambda_responder(&rig.config).unwrap();
    let two = app::lambda_responder(&rig.config).unwrap();
    let ids: Vec<String> = (0..4).map(|_| unique("budget")).collect();
    let (a, b) = tokio::join!(
        async {
            for id in &ids[..2] {
                handle(&one, event(id, 1)).await.unwrap();
            }
        },
        async {
            for id in &ids[2..] {
                handle(&two, event(id, 1)).await.unwrap();
            }
        }
    );
    let _ = (a, b);
    assert_eq!(hits(&hooks, "/notify"), 2, "the budget's two runs, no more");
    let published: Vec<Value> = rig
        .subscriber
        .wait_for(4, WAIT)
        .await
        .iter()
        .map(Recorded::sns_message)
        .collect();
    let skipped: Vec<&Value> = published.iter().filter(|o| o["status"] == "skipped").collect();
    assert_eq!(skipped.len(), 2, "{published:#?}");
    for outcome in skipped {
        common::assert_valid_outcome(outcome);
        assert_eq!(outcome["skip_reason"], "budget");
        assert!(
            outcome["error"]
                .as_str()
                .unwrap()
                .contains("uses=webhook.* (2 per 2678400 s)"),
            "{outcome}"
        );
    }
}

/// Two budgets on the same actions in moto's DynamoDB, a daily one
/// before a per-minute one: the runs the per-minute budget refuses are
/// taken back from the daily one, which counts only what ran.
#[tokio::test]
async fn runs_a_later_budget_refuses_are_taken_back_in_the_state_table() {
    let state: Arc<dyn StateStore> = Arc::new(DynamoState::new(
        &alert_responder::aws::sdk_config(),
        create_state_table().await,
    ));
    let budgets = alert_responder::config::parse_action_budgets(
        r#"[{"uses": "vt.*", "limit": 3, "per_seconds": 86400}, {"uses": "vt.*", "limit": 1, "per_seconds": 60}]"#,
    )
    .unwrap();
    let daily = budgets[0].name();
    let guards = alert_responder::workflow::Guards::new(budgets, Some(Arc::clone(&state)), Duration::ZERO);
    // At a minute's last second the second admit may fall in a new minute:
    // count what each gives rather than assume.
    let mut ran = 0;
    for id in ["a", "b", "c", "d"] {
        if guards.admit("vt.lookup", id).await.unwrap().is_none() {
            ran += 1;
        }
    }
    assert!((1..=2).contains(&ran), "{ran} runs of 4 at 1 a minute");
    let day = Duration::from_secs(86400);
    for _ in ran..3 {
        assert!(
            state.take_budget(&daily, 3, day).await.unwrap().is_some(),
            "the daily budget counted only the {ran} runs"
        );
    }
    assert_eq!(state.take_budget(&daily, 3, day).await.unwrap(), None);
}

/// A switch item written by hand with `paused` as a string is not read
/// as "not paused": the read fails (the record is retried, nothing runs).
#[tokio::test]
async fn a_switch_item_whose_paused_is_not_a_boolean_is_an_error() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let table = create_state_table().await;
    common::dynamodb()
        .await
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("control#actions".into()))
        .item("sk", AttributeValue::S("switch".into()))
        .item("paused", AttributeValue::S("true".into()))
        .send()
        .await
        .unwrap();
    let state = DynamoState::new(&alert_responder::aws::sdk_config(), table);
    let err = state.actions_switch().await.unwrap_err();
    assert!(err.to_string().contains("`paused` is not a boolean"), "{err}");
}

/// The kill switch as an operator uses it: `actions pause` on the
/// deployment's table, every instance skips actions, `actions resume`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_actions_switch_pauses_and_resumes_a_deployment() {
    let hooks = TestServer::ok().await;
    let mut rig = rig(
        r#"run contains {"id": "notify", "uses": "webhook.post", "args": {"url": sprintf("%s/notify", [input.env.HOOKS])}}"#,
        &[("HOOKS", hooks.url(""))],
    )
    .await;
    rig.config.actions_switch_refresh = Duration::ZERO;
    let table = rig.config.state_table.clone().unwrap();
    let actions = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_alert-responder"))
            .arg("actions")
            .args(args)
            .args(["--table", &table])
            .env_remove("STATE_TABLE")
            // A broken variable in the operator's shell does not block the switch.
            .env("ACTION_BUDGETS", "not json")
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (code, text) = actions(&["status"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with("actions running"), "{text}");
    let (code, text) = actions(&["pause", "--reason", "vendor incident", "--by", "oncall"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("at most every 10 s"), "{text}");
    let (code, text) = actions(&["status"]);
    assert_eq!(code, 3, "paused: {text}");
    assert!(
        text.contains("actions paused") && text.contains("by oncall: vendor incident"),
        "{text}"
    );

    let responder = app::lambda_responder(&rig.config).unwrap();
    let alert_id = unique("paused");
    let summary = handle(&responder, event(&alert_id, 1)).await.unwrap();
    assert_eq!(summary.outcomes, 1);
    assert_eq!(hits(&hooks, "/notify"), 0);
    let outcome = rig.subscriber.wait_for(1, WAIT).await[0].sns_message();
    assert_eq!(
        (outcome["status"].as_str(), outcome["skip_reason"].as_str()),
        (Some("skipped"), Some("paused"))
    );

    let (code, text) = actions(&["resume", "--by", "oncall"]);
    assert_eq!(code, 0, "{text}");
    handle(&responder, event(&alert_id, 1)).await.unwrap();
    assert_eq!(
        hits(&hooks, "/notify"),
        1,
        "a redelivery after resume runs what was paused"
    );
    let (code, _) = actions(&["status"]);
    assert_eq!(code, 0);
}
