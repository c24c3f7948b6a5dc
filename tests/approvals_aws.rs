//! Human in the loop on the AWS parts: the real binary in Lambda mode
//! (loopback Runtime API, one process per invocation as Lambda's instances
//! would be), moto's DynamoDB, SNS, Secrets Manager and EventBridge
//! Scheduler through the real SDKs, a loopback Slack API that checks
//! `chat.postMessage` / `chat.update`, and a loopback Lambda API that
//! records the function's asynchronous self-invocation.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use alert_responder::action::Registry;
use alert_responder::aws::DynamoState;
use alert_responder::config::{Config, Endpoints};
use alert_responder::decide::Decider;
use alert_responder::http::HttpClient;
use alert_responder::ingest::ingest_document;
use alert_responder::interaction::{InteractionSettings, Interactions};
use alert_responder::memory::MemoryPublisher;
use alert_responder::pipeline::Responder;
use alert_responder::policy::{PolicyFile, PolicySet};
use alert_responder::secrets::SecretResolver;
use alert_responder::state::WorkflowStore;
use alert_responder::wakeup::{schedule_name, MemoryWakeups, Wakeup};
use common::lambda::{lambda_process, runtime_api, REQUEST_ID};
use common::proxy::OneAtATime;
use common::slack::{ask_then_isolate, buttons, click_event, slack_api, ALERT_POLICY, APPROVER, SIGNING_SECRET};
use common::{
    create_state_table, create_topic, fixture, loopback_allowed, sns_client, subscribe_http, unique, Recorded, Reply,
    TestServer,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:alert-responder";
const BOT_TOKEN: &str = "xoxb-from-secrets-manager";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/alert-responder-scheduler";

/// The README's example, the bot token a Secrets Manager reference.
fn action_policy(bot_secret: &str) -> String {
    format!(
        r#"package action

run contains {{"id": "ask-isolate", "uses": "approval.request", "args": {{
    "secret_token": {{"secret": "{bot_secret}", "key": "token"}}, "channel": "C0SECOPS",
    "text": "Isolate the host?", "approvers": ["{APPROVER}"], "timeout_seconds": 1800,
}}}}

answer := a if {{
    some c in input.called
    c.id == "ask-isolate"
    c.status == "succeeded"
    a := c.result.answer
}}

run contains {{"id": "isolate", "uses": "webhook.post", "args": {{"url": sprintf("%s/isolate", [input.env.HOOKS])}}}} if answer == "approve"

run contains {{"id": "escalate", "uses": "webhook.post", "args": {{"url": sprintf("%s/page", [input.env.HOOKS])}}}} if answer == "timeout"
"#
    )
}

async fn secrets() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&common::sdk::sdk_config())
}

async fn scheduler() -> aws_sdk_scheduler::Client {
    aws_sdk_scheduler::Client::new(&common::sdk::sdk_config())
}

/// A deployment: moto resources, loopback Slack, hooks and Lambda API, and
/// the function's environment.
struct Deployment {
    env: Vec<(String, String)>,
    group: String,
    subscriber: TestServer,
    slack: TestServer,
    hooks: TestServer,
    lambda_api: TestServer,
    _dir: tempfile::TempDir,
}

async fn deployment() -> Deployment {
    let dir = tempfile::tempdir().unwrap();
    let bot_secret = unique("slack-bot");
    std::fs::write(dir.path().join("alert.rego"), ALERT_POLICY).unwrap();
    std::fs::write(dir.path().join("action.rego"), action_policy(&bot_secret)).unwrap();
    let secrets = secrets().await;
    secrets
        .create_secret()
        .name(&bot_secret)
        .secret_string(json!({"token": BOT_TOKEN}).to_string())
        .send()
        .await
        .unwrap();
    let signing_secret = unique("slack-signing");
    secrets
        .create_secret()
        .name(&signing_secret)
        .secret_string(SIGNING_SECRET)
        .send()
        .await
        .unwrap();
    let group = unique("alert-responder");
    scheduler()
        .await
        .create_schedule_group()
        .name(&group)
        .send()
        .await
        .unwrap();
    let sns = sns_client().await;
    let topic = create_topic(&sns, "approvals").await;
    let subscriber = TestServer::ok().await;
    subscribe_http(&sns, &topic, &subscriber.url("/"), None).await;
    let slack = slack_api().await;
    let hooks = TestServer::ok().await;
    let lambda_api = TestServer::start(|_| Reply::json(202, json!({}))).await;
    let env = vec![
        ("OUTCOME_TOPIC_ARN", topic),
        ("POLICY_DIR", dir.path().display().to_string()),
        ("STATE_TABLE", create_state_table().await),
        ("SLACK_SIGNING_SECRET_ID", signing_secret),
        ("SCHEDULE_GROUP", group.clone()),
        ("SCHEDULER_ROLE_ARN", ROLE_ARN.to_string()),
        ("AWS_ENDPOINT_URL_LAMBDA", lambda_api.url("")),
        ("SLACK_BASE_URL", slack.url("")),
        (
            "INTERACTIONS_URL",
            "https://abc.lambda-url.us-east-1.on.aws".to_string(),
        ),
        ("POLICY_ENV", "HOOKS".to_string()),
        ("HOOKS", hooks.url("")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Deployment {
        env,
        group,
        subscriber,
        slack,
        hooks,
        lambda_api,
        _dir: dir,
    }
}

/// One invocation in a fresh instance of the binary: its response, and
/// how long it took from the process's start (a cold start) to the response.
async fn invoke(deployment: &Deployment, event: Value) -> (Value, Duration) {
    let api = runtime_api(event).await;
    let env: Vec<(&str, &str)> = deployment.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // From the start of a cold instance: init counts against Slack's 3 s too.
    let started = Instant::now();
    let mut child = lambda_process(&api, &env);
    let requests = api.wait_for(2, WAIT).await;
    let took = started.elapsed();
    child.kill().await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    let logs = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    let response = requests
        .iter()
        .find(|r| r.path == format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/response"))
        .unwrap_or_else(|| panic!("no response posted: {requests:#?}\n{logs}"));
    for secret in [SIGNING_SECRET, BOT_TOKEN] {
        assert!(!logs.contains(secret), "a secret in the logs:\n{logs}");
    }
    (response.json(), took)
}

fn change_event(alert_id: &str) -> Value {
    let mut payload: Value = serde_json::from_str(&fixture("matano_alert_change_v2.json")).unwrap();
    payload["updated_alert"]["id"] = json!(alert_id);
    let mut event: Value = serde_json::from_str(&fixture("sns_event_matano.json")).unwrap();
    event["Records"][0]["Sns"]["Message"] = Value::String(payload.to_string());
    event["Records"][0]["Sns"]["MessageId"] = json!(unique("message"));
    event
}

/// Slack's signed interaction request for a click on `value` by `user`.
fn click(value: &str, user: &str) -> Value {
    click_event(value, user, None)
}

/// The approve button of the last approval message Slack was asked to post.
fn approve_button(slack: &TestServer) -> String {
    let posted = slack
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/chat.postMessage")
        .expect("an approval message");
    assert_eq!(posted.headers["authorization"], format!("Bearer {BOT_TOKEN}"));
    // The host's notification text is data: sent with mrkdwn off.
    assert_eq!(posted.json()["mrkdwn"], false, "{}", posted.json());
    let blocks = posted.json()["blocks"].clone();
    blocks.as_array().unwrap().last().unwrap()["elements"][0]["value"]
        .as_str()
        .unwrap()
        .to_string()
}

fn outcomes_of(subscriber: &TestServer, action_id: &str) -> Vec<Value> {
    subscriber
        .requests()
        .iter()
        .map(Recorded::sns_message)
        .filter(|o| o["action"]["id"] == action_id)
        .collect()
}

async fn schedule(group: &str, name: &str) -> Option<aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput> {
    scheduler()
        .await
        .get_schedule()
        .group_name(group)
        .name(name)
        .send()
        .await
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_lambda_a_change_asks_slack_the_click_is_acknowledged_in_3_s_and_the_resume_acts_once() {
    let deployment = deployment().await;
    let (summary, _) = invoke(&deployment, change_event(&unique("matano-alert"))).await;
    assert_eq!(summary["outcomes"], 1, "{summary}");
    let pending = deployment.subscriber.wait_for(1, WAIT).await[0].sns_message();
    common::assert_valid_outcome(&pending);
    assert_eq!(
        (pending["action"]["id"].as_str(), pending["status"].as_str()),
        (Some("ask-isolate"), Some("pending"))
    );
    let workflow = pending["alert"]["id"].as_str().unwrap().to_string();
    // The timeout is a one-time schedule invoking the function with its wakeup.
    let name = schedule_name(&workflow, "ask-isolate");
    let scheduled = schedule(&deployment.group, &name).await.expect("a schedule in moto");
    assert!(scheduled.schedule_expression().unwrap().starts_with("at(20"));
    let target = scheduled.target().unwrap();
    assert_eq!((target.arn(), target.role_arn()), (FUNCTION_ARN, ROLE_ARN));
    let input: Value = serde_json::from_str(target.input().unwrap()).unwrap();
    assert_eq!(
        input,
        Wakeup::Due {
            workflow: workflow.clone(),
            action: "ask-isolate".into()
        }
        .event()
    );

    // The click: answered within Slack's 3 s, the message updated with the
    // bot token from Secrets Manager, the resume sent to another invocation.
    let (answer, took) = invoke(&deployment, click(&approve_button(&deployment.slack), APPROVER)).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert!(took < Duration::from_secs(3), "acknowledged in {took:?}");
    let update = deployment
        .slack
        .requests()
        .into_iter()
        .find(|r| r.path == "/chat.update")
        .expect("chat.update");
    assert_eq!(update.headers["authorization"], format!("Bearer {BOT_TOKEN}"));
    let update = update.json();
    assert_eq!(
        (update["channel"].as_str(), update["ts"].as_str()),
        (Some("C0SECOPS"), Some("1700000000.000100"))
    );
    assert!(
        update["text"].as_str().unwrap().contains("*approve* by <@U0LEAD>"),
        "{update}"
    );
    assert_eq!(update["blocks"][0]["text"]["emoji"], false, "{update}");
    assert_eq!(update["blocks"][1]["text"]["verbatim"], true, "{update}");
    assert!(
        schedule(&deployment.group, &name).await.is_none(),
        "the timeout is deleted"
    );
    let invoked = deployment.lambda_api.wait_for(1, WAIT).await;
    assert_eq!(invoked[0].method, "POST");
    assert_eq!(
        invoked[0].path,
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aalert-responder/invocations"
    );
    assert_eq!(invoked[0].headers["x-amz-invocation-type"], "Event");
    assert!(invoked[0].headers["authorization"].starts_with("AWS4-HMAC-SHA256 Credential="));
    assert_eq!(
        invoked[0].json(),
        Wakeup::Resume {
            workflow: workflow.clone()
        }
        .event()
    );
    assert!(
        deployment.hooks.requests().is_empty(),
        "nothing acted before the resume"
    );

    // The resume invocation: the approved action runs once.
    let (summary, _) = invoke(&deployment, invoked[0].json()).await;
    assert_eq!(summary["outcomes"], 2, "{summary}");
    let hooks = deployment.hooks.wait_for(1, WAIT).await;
    assert_eq!(hooks[0].path, "/isolate");
    deployment.subscriber.wait_for(3, WAIT).await;
    let asked = outcomes_of(&deployment.subscriber, "ask-isolate");
    let answered = asked
        .iter()
        .find(|o| o["status"] == "succeeded")
        .expect("the final approval outcome");
    common::assert_valid_outcome(answered);
    assert_eq!(answered["result"]["answer"], "approve");
    assert_eq!(answered["result"]["user"], APPROVER);
    assert_ne!(answered["outcome_id"], pending["outcome_id"]);
    assert_eq!(outcomes_of(&deployment.subscriber, "isolate")[0]["status"], "succeeded");
    // Delivered again (Lambda's retry of the async invocation): nothing more.
    let (summary, _) = invoke(&deployment, invoked[0].json()).await;
    assert_eq!(summary["outcomes"], 0, "{summary}");
    assert_eq!(deployment.hooks.requests().len(), 1, "isolated once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_lambda_an_unanswered_approval_times_out_through_its_schedule() {
    let deployment = deployment().await;
    invoke(&deployment, change_event(&unique("matano-alert"))).await;
    let pending = deployment.subscriber.wait_for(1, WAIT).await[0].sns_message();
    let workflow = pending["alert"]["id"].as_str().unwrap().to_string();
    let scheduled = schedule(&deployment.group, &schedule_name(&workflow, "ask-isolate"))
        .await
        .expect("a schedule");
    // Scheduler fires: the function gets the schedule's input as its event.
    let input: Value = serde_json::from_str(scheduled.target().unwrap().input().unwrap()).unwrap();
    let (summary, _) = invoke(&deployment, input.clone()).await;
    assert_eq!(summary["outcomes"], 2, "{summary}");
    assert_eq!(deployment.hooks.wait_for(1, WAIT).await[0].path, "/page");
    deployment.subscriber.wait_for(3, WAIT).await;
    let timed_out = outcomes_of(&deployment.subscriber, "ask-isolate")
        .into_iter()
        .find(|o| o["status"] == "succeeded")
        .unwrap();
    assert_eq!(timed_out["result"], json!({"answer": "timeout"}));
    // The approver clicks afterwards: acknowledged, nothing runs.
    let (answer, _) = invoke(&deployment, click(&approve_button(&deployment.slack), APPROVER)).await;
    assert_eq!(answer["statusCode"], 200);
    assert_eq!(
        serde_json::from_str::<Value>(answer["body"].as_str().unwrap()).unwrap()["status"],
        "already_answered"
    );
    assert!(deployment.lambda_api.requests().is_empty(), "no resume sent");
    assert_eq!(deployment.hooks.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_lambda_a_badly_signed_interaction_is_refused_without_touching_state() {
    let deployment = deployment().await;
    invoke(&deployment, change_event(&unique("matano-alert"))).await;
    let mut forged = click(&approve_button(&deployment.slack), APPROVER);
    forged["headers"]["x-slack-signature"] = json!("v0=00");
    let (answer, _) = invoke(&deployment, forged).await;
    assert_eq!(answer["statusCode"], 401, "{answer}");
    let table = deployment
        .env
        .iter()
        .find(|(k, _)| k == "STATE_TABLE")
        .unwrap()
        .1
        .clone();
    let items = common::dynamodb().await.scan().table_name(&table).send().await.unwrap();
    let pending = items
        .items()
        .iter()
        .filter(|i| i.get("pending").is_some_and(|p| p.as_bool() == Ok(&true)))
        .count();
    assert_eq!(pending, 1, "the approval is still pending");
    assert!(deployment.lambda_api.requests().is_empty());
}

/// Two instances take a double click at once (DynamoDB serializes writes
/// to an item; moto needs them sent one after another): one answer is
/// recorded, one resume runs, the approved action runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_double_click_on_two_instances_records_one_answer_and_resumes_once() {
    let slack = slack_api().await;
    let hooks = TestServer::ok().await;
    let table = create_state_table().await;
    let moto: std::net::SocketAddr = common::moto_endpoint().trim_start_matches("http://").parse().unwrap();
    let serialized = OneAtATime::start(moto).await;
    let dynamodb = alert_responder::aws::sdk_config()
        .to_builder()
        .endpoint_url(serialized.url())
        .build();
    let policy = ask_then_isolate(&hooks.url("/isolate"), &[]);
    let instance = || {
        let policies = PolicySet::compile(
            vec![
                PolicyFile {
                    name: "alert.rego".into(),
                    text: ALERT_POLICY.into(),
                },
                PolicyFile {
                    name: "action.rego".into(),
                    text: policy.clone(),
                },
            ],
            Duration::from_secs(2),
        )
        .unwrap();
        let interactions = Arc::new(Interactions::new(
            InteractionSettings {
                slack_signing_secret: Some(json!(SIGNING_SECRET)),
                ..InteractionSettings::default()
            },
            SecretResolver::literals_only(),
            None,
            HttpClient::new(loopback_allowed()),
            slack.url(""),
        ));
        let http = HttpClient::new(loopback_allowed());
        let endpoints = Endpoints {
            slack: slack.url(""),
            ..Endpoints::default()
        };
        let registry = Registry::builtin(http.clone(), &endpoints, None, None).with_callbacks(
            http,
            &slack.url(""),
            interactions.clone(),
        );
        let wakeups = Arc::new(MemoryWakeups::default());
        let decider = Decider::new(
            Arc::new(policies),
            registry,
            alert_responder::app::decide_settings(&Config::default()),
            SecretResolver::literals_only(),
            Some(Arc::new(DynamoState::new(&dynamodb, &table))),
        )
        .with_wakeups(wakeups.clone());
        (
            Responder::new(decider, Arc::new(MemoryPublisher::default())),
            interactions,
            wakeups,
        )
    };
    let (first, first_url, first_wakeups) = instance();
    let (second, second_url, second_wakeups) = instance();
    let change = ingest_document(fixture("matano_alert_change_v2.json").as_bytes(), &"matano".into());
    first.handle(change, None).await.unwrap();
    let click = click(&buttons(&slack)[0], APPROVER);
    let (a, b) = tokio::join!(first_url.serve(&first, &click), second_url.serve(&second, &click));
    let mut statuses = vec![a.body["status"].clone(), b.body["status"].clone()];
    statuses.sort_by_key(ToString::to_string);
    assert_eq!(
        statuses,
        vec![json!("already_answered"), json!("recorded")],
        "{a:?} {b:?}"
    );
    // The second click may send the resume again (in case the first could
    // not): delivered to both instances at once, it runs once.
    let mut sent = first_wakeups.take_sent();
    sent.extend(second_wakeups.take_sent());
    assert!(!sent.is_empty() && sent.iter().all(|w| *w == sent[0]), "{sent:?}");
    // One takes it; the other finds it held, or already ended (a held one
    // fails for Lambda to retry later: its holder may have died).
    let (x, y) = tokio::join!(first.wake(&sent[0], None, None), second.wake(&sent[0], None, None));
    let mut published = 0;
    for result in [x, y] {
        match result {
            Ok(summary) => published += summary.outcomes,
            Err(alert_responder::pipeline::HandleError::WorkflowBusy(_)) => {}
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(published, 2, "the approval's and the isolation's outcomes, once");
    for again in &sent[1..] {
        assert_eq!(first.wake(again, None, None).await.unwrap().outcomes, 0);
    }
    assert_eq!(hooks.requests().len(), 1, "isolated once");
}

struct Cli {
    code: i32,
    stdout: String,
    stderr: String,
}

fn cli(args: &[&str], env: &[(&str, &str)]) -> Cli {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_alert-responder"))
        .args(args)
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("POLICY_DIR")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Cli {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// A local run's deployment: the example that asks then isolates (the
/// isolation a loopback hook), its state table in moto, a loopback Slack.
struct LocalRun {
    _slack: TestServer,
    slack_url: String,
    hooks: TestServer,
    table: String,
    policies: String,
    _dir: tempfile::TempDir,
}

impl LocalRun {
    async fn new() -> LocalRun {
        let slack = slack_api().await;
        let hooks = TestServer::ok().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("alert.rego"), ALERT_POLICY).unwrap();
        std::fs::write(
            dir.path().join("action.rego"),
            ask_then_isolate(&hooks.url("/isolate"), &[APPROVER]),
        )
        .unwrap();
        LocalRun {
            slack_url: slack.url(""),
            _slack: slack,
            hooks,
            table: create_state_table().await,
            policies: dir.path().to_str().unwrap().to_string(),
            _dir: dir,
        }
    }

    fn env(&self) -> [(&str, &str); 4] {
        [
            ("STATE_TABLE", self.table.as_str()),
            ("SLACK_BASE_URL", self.slack_url.as_str()),
            ("SLACK_SIGNING_SECRET", SIGNING_SECRET),
            ("HTTP_ALLOW_PRIVATE", "true"),
        ]
    }
}

/// `run` suspends on an approval (local run, state table in moto); the
/// operator lists the suspended workflows, shows one, answers and resumes
/// it (its outcomes printed), and cancels another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_are_listed_shown_resumed_and_cancelled_from_the_cli() {
    let local = LocalRun::new().await;
    let (hooks, table, policies) = (&local.hooks, &local.table, &local.policies);
    let env = local.env();
    let changes = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for n in 0..2 {
        let mut payload: Value = serde_json::from_str(&fixture("matano_alert_change_v2.json")).unwrap();
        payload["updated_alert"]["id"] = json!(unique("cli-alert"));
        let path = changes.path().join(format!("change{n}.json"));
        std::fs::write(&path, payload.to_string()).unwrap();
        let run = cli(
            &["run", "--policies", policies, "--input", path.to_str().unwrap()],
            &env,
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        let outcome: Value = serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
        assert_eq!(outcome["status"], "pending", "{}", run.stdout);
        assert!(
            run.stderr.contains("no schedules (SCHEDULE_GROUP unset)"),
            "{}",
            run.stderr
        );
        ids.push(outcome["alert"]["id"].as_str().unwrap().to_string());
    }
    let list = cli(&["workflows", "list", "--table", table], &[]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    for id in &ids {
        let line = list
            .stdout
            .lines()
            .find(|l| l.starts_with(id.as_str()))
            .unwrap_or_else(|| panic!("{}", list.stdout));
        assert!(
            line.contains("Suspended") && line.contains("waiting: ask-isolate (approval.request, due "),
            "{line}"
        );
    }
    assert!(list.stderr.contains("2 suspended workflow(s)"));
    let show = cli(&["workflows", "show", &ids[0], "--table", table], &[]);
    let shown: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(shown["pending"][0]["approvers"], json!([APPROVER]));
    assert_eq!(shown["rounds"], 1);
    assert!(
        !show.stdout.contains("xoxb-literal"),
        "a literal secret is never stored"
    );
    assert_eq!(cli(&["workflows", "show", "nope", "--table", table], &[]).code, 4);

    // Not with whatever policies happen to be here: the ones that suspended it.
    let unchosen = cli(
        &["workflows", "resume", &ids[0], "--answer", "approve", "--table", table],
        &env,
    );
    assert_eq!(unchosen.code, 2, "{}", unchosen.stderr);
    assert!(
        unchosen.stderr.contains("give --policies DIR or POLICY_BUNDLE"),
        "{}",
        unchosen.stderr
    );
    let resume_args = [
        "workflows",
        "resume",
        &ids[0],
        "--answer",
        "approve",
        "--by",
        "alice",
        "--table",
        table,
        "--policies",
        policies,
    ];
    // Another invocation is resuming it: the answer is recorded, nothing
    // else is done now (5), and the message says so.
    let store = DynamoState::new(&alert_responder::aws::sdk_config(), table.as_str());
    store.take_workflow(&ids[0], Duration::from_secs(60)).await.unwrap();
    let busy = cli(&resume_args, &env);
    assert_eq!(busy.code, 5, "{}", busy.stderr);
    assert!(
        busy.stderr
            .contains("is being resumed right now (your answer is recorded)"),
        "{}",
        busy.stderr
    );
    assert_eq!(hooks.requests().len(), 0);
    // Answered, not resumed yet: listed as resolved, and another answer is
    // told what to do instead.
    let list = cli(&["workflows", "list", "--table", table], &[]);
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with(ids[0].as_str()))
        .unwrap_or_else(|| panic!("{}", list.stdout));
    assert!(line.contains("ask-isolate (approval.request, resolved"), "{line}");
    let again = cli(&resume_args, &env);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(
        again.stderr.contains("waits for an answer (each has its result)"),
        "{}",
        again.stderr
    );
    // That invocation gave it back (it died, its lease ran out): resumed
    // with the recorded answer.
    store.release_workflow(&ids[0]).await.unwrap();
    let without_answer: Vec<&str> = resume_args
        .iter()
        .copied()
        .filter(|a| !["--answer", "approve", "--by", "alice"].contains(a))
        .collect();
    let resume = cli(&without_answer, &env);
    assert_eq!(resume.code, 0, "{}", resume.stderr);
    let outcomes: Vec<Value> = resume
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_id = |id: &str| {
        outcomes
            .iter()
            .find(|o| o["action"]["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{outcomes:#?}"))
    };
    assert_eq!(by_id("ask-isolate")["result"]["answer"], "approve");
    assert_eq!(by_id("ask-isolate")["result"]["user"], "alice");
    assert_eq!(by_id("isolate")["status"], "succeeded");
    assert_eq!(hooks.requests().len(), 1);
    assert!(resume.stderr.contains("resumed: 2 action(s)"), "{}", resume.stderr);

    let cancel = cli(&["workflows", "cancel", &ids[1], "--by", "bob", "--table", table], &env);
    assert_eq!(cancel.code, 0, "{}", cancel.stderr);
    let cancelled: Value = serde_json::from_str(cancel.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(
        (cancelled["status"].as_str(), cancelled["skip_reason"].as_str()),
        (Some("skipped"), Some("cancelled"))
    );
    let list = cli(&["workflows", "list", "--table", table], &[]);
    assert!(
        list.stdout.is_empty() && list.stderr.contains("0 suspended workflow(s)"),
        "{}{}",
        list.stdout,
        list.stderr
    );
    assert_eq!(hooks.requests().len(), 1, "the cancelled one never isolated");
}

/// The failed-events runbook: a resume that failed (here, another
/// invocation held the workflow) lands in the failed-events queue as
/// Lambda's on-failure record of the wakeup; `run --input` reads that
/// record as is and resumes the workflow, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_resume_event_is_replayed_by_run_as_the_runbook_says() {
    let local = LocalRun::new().await;
    let (hooks, table, policies) = (&local.hooks, &local.table, &local.policies);
    let env = local.env();
    let mut payload: Value = serde_json::from_str(&fixture("matano_alert_change_v2.json")).unwrap();
    payload["updated_alert"]["id"] = json!(unique("failed-resume"));
    let files = tempfile::tempdir().unwrap();
    let change = files.path().join("change.json");
    std::fs::write(&change, payload.to_string()).unwrap();
    let run = cli(
        &["run", "--policies", policies, "--input", change.to_str().unwrap()],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let pending: Value = serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    let workflow = pending["alert"]["id"].as_str().unwrap().to_string();
    // Answered while another invocation holds it: recorded, not resumed.
    let store = DynamoState::new(&alert_responder::aws::sdk_config(), table.as_str());
    store.take_workflow(&workflow, Duration::from_secs(60)).await.unwrap();
    let answer = [
        "workflows",
        "resume",
        &workflow,
        "--answer",
        "approve",
        "--table",
        table,
        "--policies",
        policies,
    ];
    assert_eq!(cli(&answer, &env).code, 5);
    store.release_workflow(&workflow).await.unwrap();
    let failed = files.path().join("failed-event.json");
    let record = json!({
        "version": "1.0",
        "requestContext": {"requestId": "r-1", "functionArn": FUNCTION_ARN, "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": Wakeup::Resume { workflow: workflow.clone() }.event(),
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorType": "AlertResponder.WorkflowBusy", "errorMessage": "held"},
    });
    std::fs::write(&failed, record.to_string()).unwrap();
    let failed = failed.to_str().unwrap();

    // A dry run cannot resume a stored workflow: refused, naming why.
    let dry = cli(&["run", "--dry-run", "--policies", policies, "--input", failed], &env);
    assert_eq!(dry.code, 1, "{}", dry.stderr);
    assert!(
        dry.stderr.contains("workflow wakeup") && dry.stderr.contains("dry run"),
        "{}",
        dry.stderr
    );
    assert!(hooks.requests().is_empty());

    let replayed = cli(&["run", "--policies", policies, "--input", failed], &env);
    assert_eq!(replayed.code, 0, "{}", replayed.stderr);
    let outcomes: Vec<Value> = replayed
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let isolate = outcomes
        .iter()
        .find(|o| o["action"]["id"] == "isolate")
        .expect("isolate's outcome");
    assert_eq!(isolate["status"], "succeeded");
    assert_eq!(hooks.requests().len(), 1);
    // Replayed again: the workflow has ended, nothing runs.
    let again = cli(&["run", "--policies", policies, "--input", failed], &env);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains("0 resumed"), "{}", again.stderr);
    assert_eq!(hooks.requests().len(), 1, "isolated once");
}
