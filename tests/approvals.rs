//! Human in the loop, in process: the real `approval.request` and `wait`
//! actions against a loopback Slack API, the in-memory state and wakeups,
//! the function URL's handler fed API Gateway v2 events signed as Slack
//! signs them. The moto-backed and Lambda-mode halves are in
//! `approvals_aws.rs`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use alert_responder::action::Registry;
use alert_responder::config::{Config, Endpoints};
use alert_responder::decide::Decider;
use alert_responder::http::HttpClient;
use alert_responder::ingest::ingest_document;
use alert_responder::interaction::{CallbackKey, InteractionSettings, Interactions, Purpose};
use alert_responder::memory::{MemoryPublisher, MemoryRecords, MemoryState};
use alert_responder::model::{Outcome, Status};
use alert_responder::pipeline::Responder;
use alert_responder::policy::{PolicyFile, PolicySet};
use alert_responder::secrets::SecretResolver;
use alert_responder::state::{StateStore, WorkflowStore};
use alert_responder::wakeup::{MemoryWakeups, Wakeup};
use common::slack::{buttons, click_event, signed_event, slack_api, ALERT_POLICY, APPROVER, SIGNING_SECRET};
use common::{fixture, loopback_allowed, Recorded, Reply, TestServer};
use serde_json::{json, Value};

/// The README's worked example: isolate on approval, escalate when nobody
/// answered in 30 minutes; the isolation and the page are webhooks here.
fn example_policy(hooks: &str) -> String {
    format!(
        r#"package action

run contains {{"id": "ask-isolate", "uses": "approval.request", "args": {{
    "secret_token": "xoxb-test", "channel": "C0SECOPS",
    "text": "Isolate the host?", "approvers": ["{APPROVER}"], "timeout_seconds": 1800,
}}}}

answer := a if {{
    some c in input.called
    c.id == "ask-isolate"
    c.status == "succeeded"
    a := c.result.answer
}}

run contains {{"id": "isolate", "uses": "webhook.post", "args": {{"url": "{hooks}/isolate", "data": {{"by": by}}}}}} if {{
    answer == "approve"
    some c in input.called
    c.id == "ask-isolate"
    by := c.result.user
}}

run contains {{"id": "escalate", "uses": "webhook.post", "args": {{"url": "{hooks}/page"}}}} if answer == "timeout"
"#
    )
}

struct Rig {
    responder: Responder,
    interactions: Arc<Interactions>,
    state: Arc<MemoryState>,
    wakeups: Arc<MemoryWakeups>,
    publisher: Arc<MemoryPublisher>,
    records: Arc<MemoryRecords>,
    slack: TestServer,
    hooks: TestServer,
}

async fn rig(action_policy: impl Fn(&str) -> String) -> Rig {
    rig_with(action_policy, true).await
}

async fn rig_with(action_policy: impl Fn(&str) -> String, with_state: bool) -> Rig {
    rig_on(action_policy, with_state, TestServer::ok().await).await
}

async fn rig_on(action_policy: impl Fn(&str) -> String, with_state: bool, hooks: TestServer) -> Rig {
    rig_configured(action_policy, with_state, hooks, &Config::default()).await
}

/// [`rig_on`] with the decisions' settings (budgets, the switch's refresh) from `config`.
async fn rig_configured(
    action_policy: impl Fn(&str) -> String,
    with_state: bool,
    hooks: TestServer,
    config: &Config,
) -> Rig {
    let slack = slack_api().await;
    let policies = PolicySet::compile(
        vec![
            PolicyFile {
                name: "alert.rego".into(),
                text: ALERT_POLICY.into(),
            },
            PolicyFile {
                name: "action.rego".into(),
                text: action_policy(&hooks.url("")),
            },
        ],
        Duration::from_secs(2),
    )
    .unwrap();
    let slack_base = slack.url("");
    let interactions = Arc::new(Interactions::new(
        InteractionSettings {
            slack_signing_secret: Some(json!(SIGNING_SECRET)),
            callback_secret: None,
            public_url: Some("https://abc.lambda-url.us-east-1.on.aws/".into()),
        },
        SecretResolver::literals_only(),
        None,
        HttpClient::new(loopback_allowed()),
        slack_base.clone(),
    ));
    let endpoints = Endpoints {
        slack: slack_base.clone(),
        ..Endpoints::default()
    };
    let http = HttpClient::new(loopback_allowed());
    let registry =
        Registry::builtin(http.clone(), &endpoints, None, None).with_callbacks(http, &slack_base, interactions.clone());
    let state = Arc::new(MemoryState::new());
    let wakeups = Arc::new(MemoryWakeups::default());
    let store: Option<Arc<dyn StateStore>> = match with_state {
        true => Some(state.clone()),
        false => None,
    };
    let decider = Decider::new(
        Arc::new(policies),
        registry,
        alert_responder::app::decide_settings(config),
        SecretResolver::literals_only(),
        store,
    )
    .with_wakeups(wakeups.clone());
    let publisher = Arc::new(MemoryPublisher::default());
    let records = Arc::new(MemoryRecords::default());
    Rig {
        responder: Responder::new(decider, publisher.clone()).with_records(records.clone()),
        records,
        interactions,
        state,
        wakeups,
        publisher,
        slack,
        hooks,
    }
}

fn change() -> Vec<u8> {
    fixture("matano_alert_change_v2.json").into_bytes()
}

impl Rig {
    async fn deliver_change(&self) -> Vec<Outcome> {
        let records = ingest_document(&change(), &"matano".into());
        self.responder.handle(records, None).await.unwrap();
        self.publisher.take()
    }

    /// Delivers the change and approves its request: the wakeup the answer
    /// sent (its invocation resumes the workflow).
    async fn approved(&self) -> Wakeup {
        self.deliver_change().await;
        let buttons = self.buttons();
        self.serve(&self.click(&buttons[0], APPROVER)).await;
        self.wakeups.take_sent().remove(0)
    }

    /// Delivers the change and wakes its workflow once, which must fail for
    /// a retry (an action left to it); the wakeup, for Lambda's retry.
    async fn first_wake_left_to_a_retry(&self) -> Wakeup {
        self.deliver_change().await;
        let (_, _, due) = self.wakeups.scheduled().pop().unwrap();
        let err = self.responder.wake(&due, None, None).await.unwrap_err();
        assert!(
            matches!(err, alert_responder::pipeline::HandleError::Retry { .. }),
            "{err}"
        );
        due
    }

    /// The one suspended workflow's id.
    async fn workflow_id(&self) -> String {
        let workflows = self.state.workflows().await.unwrap();
        assert_eq!(workflows.len(), 1, "{workflows:?}");
        workflows[0].id().to_string()
    }

    /// The button values of the approval message Slack was asked to post (once).
    fn buttons(&self) -> Vec<String> {
        let posted = self
            .slack
            .requests()
            .iter()
            .filter(|r| r.path == "/chat.postMessage")
            .count();
        assert_eq!(posted, 1, "one approval message");
        buttons(&self.slack)
    }

    /// Slack's interaction for a click on the button with `value` by `user`.
    fn click(&self, value: &str, user: &str) -> Value {
        click_event(value, user, Some(self.slack.url("/response")))
    }

    async fn serve(&self, event: &Value) -> (u16, Value) {
        let answer = self.interactions.serve(&self.responder, event).await;
        (answer.status, answer.body)
    }

    fn hits(&self, path: &str) -> usize {
        self.hooks.requests().iter().filter(|r| r.path == path).count()
    }
}

fn callback_event(token: &str, body: Value) -> Value {
    json!({
        "version": "2.0",
        "rawPath": format!("/callbacks/{token}"),
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": format!("/callbacks/{token}")}},
        "body": body.to_string(),
        "isBase64Encoded": false,
    })
}

fn by_action<'a>(outcomes: &'a [Outcome], id: &str) -> Vec<&'a Outcome> {
    outcomes
        .iter()
        .filter(|o| o.action.as_ref().is_some_and(|a| a.id == id))
        .collect()
}

#[tokio::test]
async fn an_approval_suspends_the_workflow_and_the_answer_resumes_it_once() {
    let rig = rig(example_policy).await;
    let outcomes = rig.deliver_change().await;
    // The question is posted once, the workflow suspended with its pending outcome.
    let asked = by_action(&outcomes, "ask-isolate");
    assert_eq!(asked.len(), 1, "{outcomes:#?}");
    assert_eq!(asked[0].status, Status::Pending);
    let ids = alert_responder::model::outcome::pending_outcome_id(&asked[0].alert.as_ref().unwrap().id, "ask-isolate");
    assert_eq!(asked[0].outcome_id, ids, "the pending outcome has its own id");
    let pending_result = asked[0].result.clone().unwrap();
    assert_eq!(pending_result["status"], "pending");
    assert_eq!(pending_result["approvers"], json!([APPROVER]));
    // With approvers, no callback URL unless the policy asks for one:
    // whoever holds it could answer.
    assert_eq!(pending_result["callback_url"], Value::Null);
    assert_eq!(outcomes.len(), 1, "nothing else ran: {outcomes:#?}");
    let workflow = rig.workflow_id().await;
    let scheduled = rig.wakeups.scheduled();
    assert_eq!(scheduled.len(), 1, "one timeout schedule: {scheduled:?}");
    assert_eq!(
        scheduled[0].2,
        Wakeup::Due {
            workflow: workflow.clone(),
            action: "ask-isolate".into()
        }
    );
    let due_in = scheduled[0].1 - chrono::Utc::now();
    assert!(
        (1790..=1800).contains(&due_in.num_seconds()),
        "timeout_seconds 1800: {due_in:?}"
    );
    let buttons = rig.buttons();
    assert_eq!(buttons.len(), 2);
    assert!(
        buttons[0].ends_with("|approve") && buttons[1].ends_with("|deny"),
        "{buttons:?}"
    );
    // The Slack message is the alert's, with the question.
    let posted = rig.slack.requests()[0].json();
    assert_eq!(posted["channel"], "C0SECOPS");
    assert_eq!(rig.slack.requests()[0].headers["authorization"], "Bearer xoxb-test");
    assert!(posted["blocks"].to_string().contains("Isolate the host?"));

    // A redelivery of the change posts nothing again: the pending record replays.
    let again = rig.deliver_change().await;
    assert_eq!(by_action(&again, "ask-isolate")[0].status, Status::Pending);
    assert!(by_action(&again, "ask-isolate")[0].replay);
    assert_eq!(rig.slack.requests().len(), 1, "asked once");

    // The approver clicks Approve: recorded, Slack's message replaced, the
    // resume sent to another invocation, the timeout schedule deleted.
    let (status, body) = rig.serve(&rig.click(&buttons[0], APPROVER)).await;
    assert_eq!((status, &body["status"]), (200, &json!("recorded")), "{body}");
    let replaced: Vec<Value> = rig
        .slack
        .requests()
        .iter()
        .filter(|r| r.path == "/response")
        .map(Recorded::json)
        .collect();
    assert_eq!(
        replaced.len(),
        1,
        "the message is updated through response_url (a literal token is not kept)"
    );
    assert_eq!(replaced[0]["replace_original"], true);
    assert!(
        replaced[0]["text"].as_str().unwrap().contains("*approve* by <@U0LEAD>"),
        "{replaced:?}"
    );
    assert!(rig.wakeups.scheduled().is_empty(), "the timeout schedule is deleted");
    let sent = rig.wakeups.take_sent();
    assert_eq!(
        sent,
        vec![Wakeup::Resume {
            workflow: workflow.clone()
        }]
    );
    assert_eq!(rig.hits("/isolate"), 0, "nothing ran yet: Slack is answered first");

    // The resume invocation: the approved action runs, once.
    let summary = rig.responder.wake(&sent[0], None, None).await.unwrap();
    let resumed = rig.publisher.take();
    assert_eq!(rig.hits("/isolate"), 1);
    assert_eq!(rig.hooks.requests()[0].json()["data"]["by"], APPROVER);
    let final_ask = by_action(&resumed, "ask-isolate");
    assert_eq!(final_ask.len(), 1, "{resumed:#?}");
    assert_eq!(final_ask[0].status, Status::Succeeded);
    assert_ne!(final_ask[0].outcome_id, ids, "the final outcome has the action's id");
    assert_eq!(final_ask[0].result.as_ref().unwrap()["answer"], "approve");
    assert_eq!(final_ask[0].result.as_ref().unwrap()["user"], APPROVER);
    assert_eq!(by_action(&resumed, "isolate")[0].status, Status::Succeeded);
    assert!(by_action(&resumed, "escalate").is_empty());
    assert_eq!(summary.outcomes, 2);
    assert!(rig.state.workflows().await.unwrap().is_empty(), "the workflow ended");

    // A double click, a second resume, a late timeout: nothing changes.
    let (status, body) = rig.serve(&rig.click(&buttons[1], APPROVER)).await;
    assert_eq!((status, &body["status"]), (200, &json!("already_answered")), "{body}");
    let noted = rig.slack.requests().last().unwrap().json();
    assert_eq!(noted["response_type"], "ephemeral");
    assert!(noted["text"]
        .as_str()
        .unwrap()
        .starts_with("Already answered: *approve*"));
    let late = Wakeup::Due {
        workflow: workflow.clone(),
        action: "ask-isolate".into(),
    };
    assert_eq!(rig.responder.wake(&late, None, None).await.unwrap().outcomes, 0);
    let again = Wakeup::Resume { workflow };
    assert_eq!(rig.responder.wake(&again, None, None).await.unwrap().outcomes, 0);
    assert_eq!(rig.hits("/isolate"), 1, "isolated once");
    assert!(rig.publisher.take().is_empty());
}

#[tokio::test]
async fn without_an_answer_the_timeout_escalates_and_a_late_click_changes_nothing() {
    let rig = rig(example_policy).await;
    rig.deliver_change().await;
    let buttons = rig.buttons();
    let (_, _, due) = rig.wakeups.scheduled().pop().unwrap();
    // The schedule fires: its invocation resolves the approval and resumes.
    let summary = rig.responder.wake(&due, None, None).await.unwrap();
    let outcomes = rig.publisher.take();
    assert_eq!(
        by_action(&outcomes, "ask-isolate")[0].result.as_ref().unwrap(),
        &json!({"answer": "timeout"})
    );
    assert_eq!(by_action(&outcomes, "escalate")[0].status, Status::Succeeded);
    assert_eq!((rig.hits("/page"), rig.hits("/isolate")), (1, 0));
    assert_eq!(summary.outcomes, 2);
    // The approver clicks after the timeout: said so, nothing runs.
    let (status, body) = rig.serve(&rig.click(&buttons[0], APPROVER)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("already_answered")));
    assert!(rig.slack.requests().last().unwrap().json()["text"]
        .as_str()
        .unwrap()
        .contains("timed out"));
    // The workflow ended: nothing to resume, so nothing is sent.
    assert!(rig.wakeups.take_sent().is_empty());
    assert_eq!(rig.hits("/isolate"), 0);
}

/// A wakeup whose resume fails counts what it did (its metrics), and its
/// retry republishes without running the escalation again.
#[tokio::test]
async fn a_failed_wakeup_counts_what_its_resume_did_and_the_retry_replays() {
    let rig = rig(example_policy).await;
    rig.deliver_change().await;
    let (_, _, due) = rig.wakeups.scheduled().pop().unwrap();
    rig.publisher.set_failing(true);
    let (summary, result) = rig.responder.wake_counted(&due, None, None).await;
    assert!(
        matches!(result, Err(alert_responder::pipeline::HandleError::Publish(_))),
        "{result:?}"
    );
    assert_eq!(
        (summary.records, summary.actions, summary.outcomes),
        (1, 2, 0),
        "{summary:?}"
    );
    assert_eq!(rig.hits("/page"), 1);
    rig.publisher.set_failing(false);
    let retried = rig.responder.wake(&due, None, None).await.unwrap();
    assert_eq!((retried.outcomes, retried.replayed), (2, 1), "{retried:?}");
    assert_eq!(rig.hits("/page"), 1, "escalated once");
}

#[tokio::test]
async fn requests_that_are_not_proven_or_not_allowed_touch_nothing() {
    let rig = rig(example_policy).await;
    rig.deliver_change().await;
    let buttons = rig.buttons();
    let workflow = rig.workflow_id().await;
    let good = rig.click(&buttons[0], APPROVER);
    let now = chrono::Utc::now().timestamp();
    let body = good["body"].as_str().unwrap().to_string();

    let mut unsigned = good.clone();
    unsigned["headers"].as_object_mut().unwrap().remove("X-Slack-Signature");
    let badly_signed = signed_event(&body, &now.to_string(), "not-the-secret");
    let stale = signed_event(&body, &(now - 301).to_string(), SIGNING_SECRET);
    let wrong_approver = rig.click(&buttons[0], "U0INTERN");
    let key = CallbackKey::derive(SIGNING_SECRET.as_bytes());
    let unknown = rig.click(
        &format!("{}|approve", key.token(Purpose::Slack, "0000", "ask-isolate")),
        APPROVER,
    );
    let forged = rig.click(
        &format!(
            "{}|approve",
            CallbackKey::derive(b"other").token(Purpose::Slack, &workflow, "ask-isolate")
        ),
        APPROVER,
    );
    let not_a_choice = rig.click(&format!("{}|maybe", buttons[0].split_once('|').unwrap().0), APPROVER);
    let mut oversized = signed_event(&"x".repeat(70 * 1024), &now.to_string(), SIGNING_SECRET);
    oversized["body"] = json!("x".repeat(70 * 1024));
    let mut get = good.clone();
    get["requestContext"]["http"]["method"] = json!("GET");
    let mut elsewhere = good.clone();
    elsewhere["rawPath"] = json!("/admin");
    for (name, event, expected) in [
        ("unsigned", &unsigned, 401),
        ("badly signed", &badly_signed, 401),
        ("stale", &stale, 401),
        ("wrong approver", &wrong_approver, 403),
        ("unknown workflow", &unknown, 404),
        ("forged token", &forged, 401),
        ("not a choice", &not_a_choice, 400),
        ("oversized", &oversized, 400),
        ("not a POST", &get, 405),
        ("unknown route", &elsewhere, 404),
    ] {
        let (status, body) = rig.serve(event).await;
        assert_eq!(status, expected, "{name}: {body}");
        assert!(body["error"].is_string(), "{name}: says why: {body}");
    }
    // Still pending: nothing was recorded, nothing resumed.
    let stored = rig
        .state
        .action_record(&workflow, "ask-isolate")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, Status::Pending);
    assert!(rig.wakeups.take_sent().is_empty());
    assert_eq!(rig.wakeups.scheduled().len(), 1);
    // The approver's own click still works afterwards, its body base64
    // encoded as a function URL may hand it over.
    let mut encoded = good.clone();
    encoded["body"] = json!(data_encoding::BASE64.encode(body.as_bytes()));
    encoded["isBase64Encoded"] = json!(true);
    let (status, answer) = rig.serve(&encoded).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("recorded")), "{answer}");
}

#[tokio::test]
async fn a_signed_callback_answers_without_slack() {
    let rig = rig(|hooks| {
        example_policy(hooks).replace(
            "\"timeout_seconds\": 1800,",
            "\"timeout_seconds\": 1800, \"callback\": true,",
        )
    })
    .await;
    let outcomes = rig.deliver_change().await;
    let url = by_action(&outcomes, "ask-isolate")[0].result.as_ref().unwrap()["callback_url"]
        .as_str()
        .unwrap()
        .to_string();
    let token = url.rsplit_once("/callbacks/").unwrap().1.to_string();
    assert!(
        url.starts_with("https://abc.lambda-url.us-east-1.on.aws/callbacks/"),
        "{url}"
    );
    // A Slack button's token is no callback token: someone who can read
    // the channel cannot answer past `approvers` this way.
    let button = rig.buttons()[0].split_once('|').unwrap().0.to_string();
    assert_ne!(button, token);
    let (status, _) = rig.serve(&callback_event(&button, json!({"answer": "approve"}))).await;
    assert_eq!(status, 401);
    // Nor is a callback token a button's.
    let (status, _) = rig.serve(&rig.click(&format!("{token}|approve"), APPROVER)).await;
    assert_eq!(status, 401);
    let (status, body) = rig
        .serve(&callback_event(&token, json!({"answer": "deny", "user": "soar"})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["answer"], "deny");
    assert_eq!(
        body["result"]["user"], "callback:soar",
        "a callback names no Slack user"
    );
    let (status, body) = rig.serve(&callback_event(&token, json!({"answer": "approve"}))).await;
    assert_eq!((status, &body["status"]), (409, &json!("already_answered")), "{body}");
    assert_eq!(body["result"]["answer"], "deny");
    for (name, event, expected) in [
        (
            "bad token",
            callback_event("abc.def.ghi", json!({"answer": "approve"})),
            401,
        ),
        ("no answer", callback_event(&token, json!({"user": "x"})), 400),
        (
            "not JSON",
            {
                let mut e = callback_event(&token, json!({}));
                e["body"] = json!("answer=approve");
                e
            },
            400,
        ),
    ] {
        assert_eq!(rig.serve(&event).await.0, expected, "{name}");
    }
    // The second answer sent the resume again: harmless, it finds nothing to do.
    let sent = rig.wakeups.take_sent();
    assert_eq!(sent.len(), 2);
    rig.responder.wake(&sent[0], None, None).await.unwrap();
    assert_eq!(rig.responder.wake(&sent[1], None, None).await.unwrap().outcomes, 0);
    assert_eq!(
        (rig.hits("/isolate"), rig.hits("/page")),
        (0, 0),
        "denied: nothing runs"
    );
    assert!(rig.state.workflows().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_wait_resumes_when_its_time_comes_with_the_time_waited() {
    let rig = rig(|hooks| {
        format!(
            r#"package action
run contains {{"id": "cool-down", "uses": "wait", "args": {{"seconds": 90}}}}
run contains {{"id": "recheck", "uses": "webhook.post", "args": {{"url": "{hooks}/recheck", "data": {{"waited": c.result.waited_seconds}}}}}} if {{
    some c in input.called
    c.id == "cool-down"
    c.status == "succeeded"
}}
"#
        )
    })
    .await;
    let outcomes = rig.deliver_change().await;
    assert_eq!(by_action(&outcomes, "cool-down")[0].status, Status::Pending);
    let (_, at, due) = rig.wakeups.scheduled().pop().unwrap();
    assert!(
        (at - chrono::Utc::now()).num_seconds() >= 59,
        "scheduled a minute ahead at least"
    );
    // Early resumes do nothing: the wait has no result yet.
    let workflow = rig.workflow_id().await;
    // A wait takes no answer: refused naming it, nothing recorded.
    let answer = alert_responder::model::suspended::Resolution::Answered {
        answer: "approve".into(),
        user: "oncall".into(),
        answered_at: chrono::Utc::now(),
    };
    let refused = rig
        .responder
        .answer(
            &workflow,
            "cool-down",
            &answer,
            alert_responder::resume::AnsweredBy::Operator,
        )
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("\"cool-down\" is a `wait`, not an approval"),
        "{refused}"
    );
    let early = Wakeup::Resume { workflow };
    assert_eq!(rig.responder.wake(&early, None, None).await.unwrap().outcomes, 0);
    assert_eq!(rig.hits("/recheck"), 0);
    rig.responder.wake(&due, None, None).await.unwrap();
    let resumed = rig.publisher.take();
    let waited = by_action(&resumed, "cool-down")[0].result.clone().unwrap();
    assert!(waited["waited_seconds"].as_i64().is_some(), "{waited}");
    assert_eq!(rig.hits("/recheck"), 1);
    assert_eq!(
        rig.hooks.requests()[0].json()["data"]["waited"],
        waited["waited_seconds"]
    );
}

/// A resumed workflow's actions answer to the kill switch and to the
/// budgets as a first decision's do: paused during the wait, the action the
/// resume asks for is skipped; resumed, a budget already spent skips it.
#[tokio::test]
async fn a_resumed_workflow_is_held_by_the_kill_switch_and_the_budgets() {
    let policy = |hooks: &str| {
        format!(
            r#"package action
run contains {{"id": "cool-down", "uses": "wait", "args": {{"seconds": 90}}}}
run contains {{"id": "recheck", "uses": "webhook.post", "args": {{"url": "{hooks}/recheck"}}}} if {{
    some c in input.called
    c.id == "cool-down"
    c.status == "succeeded"
}}
"#
        )
    };
    let config = Config {
        actions_switch_refresh: Duration::ZERO,
        action_budgets: alert_responder::config::parse_action_budgets(
            r#"[{"uses": "webhook.*", "limit": 1, "per_seconds": 2678400}]"#,
        )
        .unwrap(),
        ..Config::default()
    };
    for (paused, reason) in [(true, "paused"), (false, "budget")] {
        let rig = rig_configured(policy, true, TestServer::ok().await, &config).await;
        if !paused {
            // The budget's one run, spent before the resume.
            let budget = &config.action_budgets[0];
            let spent = rig.state.take_budget(&budget.name(), budget.limit, budget.per).await;
            assert!(spent.unwrap().is_some());
        }
        rig.deliver_change().await;
        let (_, _, due) = rig.wakeups.scheduled().pop().unwrap();
        let switch = alert_responder::state::ActionsSwitch {
            paused,
            ..Default::default()
        };
        rig.state.set_actions_switch(&switch).await.unwrap();
        rig.responder.wake(&due, None, None).await.unwrap();
        let resumed = rig.publisher.take();
        let recheck = by_action(&resumed, "recheck");
        assert_eq!(recheck.len(), 1, "{resumed:#?}");
        assert_eq!(recheck[0].status, Status::Skipped);
        assert_eq!(recheck[0].skip_reason.map(|r| r.as_str()), Some(reason));
        assert_eq!(rig.hits("/recheck"), 0);
    }
}

/// A resumed workflow whose next round runs into the invocation's
/// deadline publishes what ran and is given back: the event's retry
/// resumes it again (what ran replays) instead of finding it held.
#[tokio::test]
async fn a_resume_stopped_by_the_deadline_is_given_back_for_the_retry() {
    let rig = rig(|hooks| {
        format!(
            r#"package action
slow if {{
    some i in numbers.range(1, 10000)
    some j in numbers.range(1, 10000)
    i * j < 0
}}
run contains {{"id": "cool-down", "uses": "wait", "args": {{"seconds": 90}}}}
run contains {{"id": "recheck", "uses": "webhook.post", "args": {{"url": "{hooks}/recheck", "data": {{}}}}}} if {{
    some c in input.called
    c.id == "cool-down"
    c.status == "succeeded"
}}
run contains {{"id": "after", "uses": "webhook.post", "args": {{"url": "{hooks}/after", "data": {{}}}}}} if {{
    some c in input.called
    c.id == "recheck"
    not slow
}}
"#
        )
    })
    .await;
    rig.deliver_change().await;
    let (_, _, due) = rig.wakeups.scheduled().pop().unwrap();
    for attempt in 0..2 {
        let deadline = Some(std::time::Instant::now() + Duration::from_millis(600));
        let err = rig.responder.wake(&due, deadline, None).await.unwrap_err();
        assert!(
            matches!(err, alert_responder::pipeline::HandleError::Deadline(_)),
            "attempt {attempt}: {err}"
        );
        let outcomes = rig.publisher.take();
        let recheck = by_action(&outcomes, "recheck");
        assert_eq!(
            (recheck[0].status, recheck[0].replay),
            (Status::Succeeded, attempt == 1),
            "attempt {attempt}"
        );
        assert_eq!(
            rig.state.workflows().await.unwrap().len(),
            1,
            "still stored for the retry"
        );
    }
    assert_eq!((rig.hits("/recheck"), rig.hits("/after")), (1, 0));
}

/// A resumed round where one action aborts and another, after it in the
/// round's order, fails transiently:
/// the invocation fails for a retry, and the workflow is given back (not
/// ended), so the retry runs the action that failed.
#[tokio::test]
async fn a_resumed_round_that_aborts_with_a_retry_pending_is_given_back() {
    let busy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let answer = busy.clone();
    let hooks = TestServer::start(move |request| {
        match request.path == "/flaky" && answer.load(std::sync::atomic::Ordering::SeqCst) {
            true => Reply::text(503, "busy"),
            false => Reply::json(200, json!({})),
        }
    })
    .await;
    let after_the_wait = r#"some c in input.called; c.id == "cool-down"; c.status == "succeeded""#;
    let rig = rig_on(
        |hooks| {
            format!(
                r#"package action
run contains {{"id": "cool-down", "uses": "wait", "args": {{"seconds": 90}}}}
run contains {{"id": "a-stop", "uses": "webhook.post", "args": {{"url": "{hooks}/stop", "data": {{}}}}, "abort": true}} if {{ {after_the_wait} }}
run contains {{"id": "b-flaky", "uses": "webhook.post", "args": {{"url": "{hooks}/flaky", "data": {{}}}}}} if {{ {after_the_wait} }}
"#
            )
        },
        true,
        hooks,
    )
    .await;
    let due = rig.first_wake_left_to_a_retry().await;
    assert_eq!(
        rig.state.workflows().await.unwrap().len(),
        1,
        "given back for the retry"
    );
    busy.store(false, std::sync::atomic::Ordering::SeqCst);
    rig.responder.wake(&due, None, None).await.unwrap();
    let outcomes = rig.publisher.take();
    assert_eq!(by_action(&outcomes, "b-flaky")[0].status, Status::Succeeded);
    assert_eq!(rig.hits("/stop"), 1, "the abort's action ran once");
}

/// A click after the due time, before the timeout's schedule fired, is
/// too late: the timeout is recorded (and acted on), the click told so.
#[tokio::test]
async fn a_click_after_the_due_time_records_the_timeout_not_the_answer() {
    let rig = rig(example_policy).await;
    rig.deliver_change().await;
    let buttons = rig.buttons();
    let mut stored = rig.state.workflows().await.unwrap().pop().unwrap();
    stored.pending[0].due_at = chrono::Utc::now() - chrono::Duration::seconds(1);
    assert!(rig.state.save_workflow(&stored, true).await.unwrap());
    let (status, body) = rig.serve(&rig.click(&buttons[0], APPROVER)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("already_answered")),
        "{body}"
    );
    assert!(
        rig.wakeups.scheduled().is_empty(),
        "its schedule is not needed any more"
    );
    let sent = rig.wakeups.take_sent();
    rig.responder.wake(&sent[0], None, None).await.unwrap();
    let outcomes = rig.publisher.take();
    assert_eq!(
        by_action(&outcomes, "ask-isolate")[0].result.as_ref().unwrap()["answer"],
        "timeout"
    );
    assert_eq!(
        (rig.hits("/isolate"), rig.hits("/page")),
        (0, 1),
        "the timeout's branch ran"
    );
}

/// An operator's answer (`workflows resume --answer`) counts after the due
/// time, until the timeout is recorded: without schedules it is how a
/// late answer is given.
#[tokio::test]
async fn an_operators_answer_after_the_due_time_still_counts() {
    let rig = rig(example_policy).await;
    rig.deliver_change().await;
    let mut stored = rig.state.workflows().await.unwrap().pop().unwrap();
    stored.pending[0].due_at = chrono::Utc::now() - chrono::Duration::seconds(1);
    assert!(rig.state.save_workflow(&stored, true).await.unwrap());
    let approve = alert_responder::model::suspended::Resolution::Answered {
        answer: "approve".into(),
        user: "oncall".into(),
        answered_at: chrono::Utc::now(),
    };
    answer_as_operator(&rig, stored.id(), &approve).await;
}

/// An operator's answer to the approval (`workflows resume`), which must be
/// recorded with nothing else pending.
async fn answer_as_operator(rig: &Rig, workflow: &str, resolution: &alert_responder::model::suspended::Resolution) {
    let answered = rig
        .responder
        .answer(
            workflow,
            "ask-isolate",
            resolution,
            alert_responder::resume::AnsweredBy::Operator,
        )
        .await
        .unwrap();
    assert!(
        matches!(
            answered,
            alert_responder::resume::Answered::Recorded { ready: true, .. }
        ),
        "{answered:?}"
    );
}

/// An operator's forced timeout (`workflows resume` without `--answer`)
/// cancels the due time's schedule like any answer but the schedule's own,
/// so the schedule does not fire on a workflow that moved on.
#[tokio::test]
async fn an_operators_forced_timeout_cancels_the_schedule() {
    let rig = rig(example_policy).await;
    rig.deliver_change().await;
    assert_eq!(rig.wakeups.scheduled().len(), 1);
    let workflow = rig.workflow_id().await;
    let due = alert_responder::model::suspended::Resolution::DueTime {
        now: chrono::Utc::now(),
    };
    answer_as_operator(&rig, &workflow, &due).await;
    assert!(rig.wakeups.scheduled().is_empty(), "{:?}", rig.wakeups.scheduled());
    rig.responder.resume(&workflow, None, None).await.unwrap();
    assert_eq!(
        (rig.hits("/page"), rig.hits("/isolate")),
        (1, 0),
        "the timeout's branch ran"
    );
}

/// `approvers` given but empty (computed from data that was missing) fails
/// the approval: it is not read as "anyone", with a bearer callback URL.
#[tokio::test]
async fn an_empty_approvers_list_fails_the_approval() {
    let rig = rig(|_| {
        r#"package action
run contains {"id": "ask", "uses": "approval.request", "args": {"secret_token": "xoxb-test", "channel": "C0SECOPS", "approvers": [u | some u in object.get(input.env, "ONCALL", [])]}}
"#
        .to_string()
    })
    .await;
    let outcomes = rig.deliver_change().await;
    let asked = by_action(&outcomes, "ask");
    assert_eq!(asked[0].status, Status::Failed, "{asked:?}");
    assert!(asked[0].error.as_deref().unwrap().contains("approvers"), "{asked:?}");
    assert!(rig.slack.requests().is_empty(), "nothing posted");
}

#[tokio::test]
async fn without_a_state_table_an_approval_fails_saying_what_it_needs() {
    let rig = rig_with(example_policy, false).await;
    let outcomes = rig.deliver_change().await;
    let asked = by_action(&outcomes, "ask-isolate");
    assert_eq!(asked[0].status, Status::Failed);
    assert!(
        asked[0]
            .error
            .as_deref()
            .unwrap()
            .contains("needs a state table (STATE_TABLE)"),
        "{asked:?}"
    );
    assert!(rig.slack.requests().is_empty(), "nothing posted");
}

#[tokio::test]
async fn a_cancelled_workflow_publishes_its_pending_actions_skipped_and_runs_no_more() {
    let rig = rig(example_policy).await;
    let asked = rig.deliver_change().await;
    let digest = asked[0].bundle_digest.clone();
    assert!(digest.is_some());
    let buttons = rig.buttons();
    let workflow = rig.workflow_id().await;
    let summary = rig.responder.cancel(&workflow, "oncall").await.unwrap();
    let outcomes = rig.publisher.take();
    assert_eq!(summary.outcomes, 1);
    let cancelled = by_action(&outcomes, "ask-isolate");
    assert_eq!(cancelled[0].status, Status::Skipped);
    assert_eq!(
        cancelled[0].skip_reason,
        Some(alert_responder::model::SkipReason::Cancelled)
    );
    assert_eq!(
        cancelled[0].bundle_digest, digest,
        "named by the bundle that decided it"
    );
    assert!(rig.state.workflows().await.unwrap().is_empty());
    assert!(rig.wakeups.scheduled().is_empty());
    // A click afterwards: said so, nothing runs.
    let (status, body) = rig.serve(&rig.click(&buttons[0], APPROVER)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("already_answered")));
    assert_eq!(rig.hits("/isolate"), 0);
}

/// A cancel whose publish fails gives the workflow back, and cancelling
/// again publishes the cancelled action (same outcome id); an approval
/// answered before the cancel gets its answer's outcome, as no resume will
/// publish it.
#[tokio::test]
async fn a_cancel_publishes_before_it_ends_the_workflow_and_keeps_an_earlier_answer() {
    let rig = rig(example_policy).await;
    rig.deliver_change().await;
    let workflow = rig.workflow_id().await;
    rig.publisher.set_failing(true);
    assert!(rig.responder.cancel(&workflow, "oncall").await.is_err());
    assert_eq!(
        rig.state.workflows().await.unwrap().len(),
        1,
        "still there to cancel again"
    );
    rig.publisher.set_failing(false);
    let summary = rig.responder.cancel(&workflow, "oncall").await.unwrap();
    assert_eq!(summary.outcomes, 1);
    let outcomes = rig.publisher.take();
    let cancelled = by_action(&outcomes, "ask-isolate");
    assert_eq!(cancelled[0].status, Status::Skipped);
    assert!(rig.state.workflows().await.unwrap().is_empty());

    // Answered, its resume not run yet, then cancelled: the answer goes out.
    let rig = rig_with(example_policy, true).await;
    rig.deliver_change().await;
    let workflow = rig.workflow_id().await;
    rig.publisher.take();
    let approve = alert_responder::model::suspended::Resolution::Answered {
        answer: "approve".into(),
        user: "oncall".into(),
        answered_at: chrono::Utc::now(),
    };
    answer_as_operator(&rig, &workflow, &approve).await;
    rig.responder.cancel(&workflow, "oncall").await.unwrap();
    let outcomes = rig.publisher.take();
    let answered = by_action(&outcomes, "ask-isolate");
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(answered[0].status, Status::Succeeded);
    assert_eq!(answered[0].result.as_ref().unwrap()["answer"], "approve");
    assert_eq!(rig.hits("/isolate"), 0, "no round runs after a cancel");
}

#[tokio::test]
async fn an_answer_whose_resume_cannot_start_asks_for_a_retry_which_starts_it() {
    let rig = rig(example_policy).await;
    rig.deliver_change().await;
    let buttons = rig.buttons();
    rig.wakeups.set_failing(true);
    let (status, body) = rig.serve(&rig.click(&buttons[0], APPROVER)).await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("the answer is recorded"),
        "{body}"
    );
    // The question keeps its buttons, to be clicked again (the message is
    // replaced through response_url: a literal token is not kept).
    let replaced = |rig: &Rig| -> Vec<Value> {
        rig.slack
            .requests()
            .iter()
            .filter(|r| r.path == "/response")
            .map(Recorded::json)
            .filter(|body| body["replace_original"] == true)
            .collect()
    };
    assert!(
        replaced(&rig).is_empty(),
        "the message is not replaced before the resume starts"
    );
    // Slack retries (or the approver clicks again): the resume starts, and
    // the question gives way to the answer kept.
    rig.wakeups.set_failing(false);
    let (status, body) = rig.serve(&rig.click(&buttons[0], APPROVER)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("already_answered")));
    let replaced = replaced(&rig);
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    assert!(
        replaced[0]["text"].as_str().unwrap().contains("*approve* by <@U0LEAD>"),
        "{replaced:?}"
    );
    let sent = rig.wakeups.take_sent();
    assert_eq!(sent.len(), 1);
    rig.responder.wake(&sent[0], None, None).await.unwrap();
    assert_eq!(rig.hits("/isolate"), 1);
}

/// The suspension and the resume are both on record: the first record's
/// workflow stops `suspended` with the pending action; the resume's record
/// has its own id and round, and `replay` leaves it to the first one.
#[tokio::test]
async fn a_suspended_and_resumed_workflow_is_on_record_twice_and_replays_once() {
    let rig = rig(example_policy).await;
    let woken = rig.approved().await;
    rig.responder.wake(&woken, None, None).await.unwrap();
    let mut records = rig.records.records();
    records.sort_by_key(|r| r.resumed_at_round);
    assert_eq!(records.len(), 2, "{records:#?}");
    for record in &records {
        common::assert_valid_record(&serde_json::to_value(record).unwrap());
    }
    let (first, resumed) = (&records[0], &records[1]);
    assert_eq!(first.resumed_at_round, None);
    assert_eq!(first.alerts[0].stop.reason, "suspended");
    assert_ne!(first.record_id, resumed.record_id);
    assert_eq!(resumed.resumed_at_round, Some(1));
    assert_eq!(resumed.alerts[0].stop.reason, "completed");
    let statuses: Vec<(String, String)> = resumed.alerts[0]
        .actions
        .iter()
        .map(|a| {
            (
                a.id.clone(),
                serde_json::to_value(a.status).unwrap().as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("ask-isolate".to_string(), "succeeded".to_string()),
            ("isolate".to_string(), "succeeded".to_string())
        ]
    );
    let chunk = |record: &alert_responder::model::decision::DecisionRecord| alert_responder::replay::input::Chunk {
        origin: "records.jsonl".into(),
        line: 1,
        text: serde_json::to_string(record).unwrap(),
    };
    let routing = "matano".into();
    let decoded = alert_responder::replay::input::decode(&chunk(resumed), &routing).unwrap();
    assert!(
        matches!(decoded, alert_responder::replay::input::Decoded::Skipped(_)),
        "{decoded:?}"
    );
    let decoded = alert_responder::replay::input::decode(&chunk(first), &routing).unwrap();
    assert!(
        matches!(decoded, alert_responder::replay::input::Decoded::Changes(_)),
        "{decoded:?}"
    );
}

/// A timeout whose resume fails (the escalation's vendor answers 503) is
/// resumed by the retry of the same schedule event, which finds the
/// approval already timed out.
#[tokio::test]
async fn a_due_time_whose_resume_fails_is_resumed_by_the_events_retry() {
    let pages = std::sync::atomic::AtomicUsize::new(0);
    let flaky = TestServer::start(move |_| match pages.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
        // The HTTP client's two retries included: three failures.
        0..=2 => common::Reply::json(503, json!({})),
        _ => common::Reply::json(200, json!({"ok": true})),
    })
    .await;
    let rig = rig_on(example_policy, true, flaky).await;
    let due = rig.first_wake_left_to_a_retry().await;
    // Lambda retries the schedule's event.
    rig.responder.wake(&due, None, None).await.unwrap();
    let outcomes = rig.publisher.take();
    assert_eq!(
        by_action(&outcomes, "escalate").last().unwrap().status,
        Status::Succeeded
    );
    assert!(rig.state.workflows().await.unwrap().is_empty());
}

/// A resume whose outcomes cannot be published keeps the workflow: the
/// retry publishes them (the action that ran replays, it does not run again).
#[tokio::test]
async fn a_resume_whose_publish_fails_is_published_by_its_retry() {
    let rig = rig(example_policy).await;
    let woken = rig.approved().await;
    rig.publisher.set_failing(true);
    let err = rig.responder.wake(&woken, None, None).await.unwrap_err();
    assert!(
        matches!(err, alert_responder::pipeline::HandleError::Publish(_)),
        "{err}"
    );
    assert_eq!(
        rig.state.workflows().await.unwrap().len(),
        1,
        "still stored for the retry"
    );
    rig.publisher.set_failing(false);
    rig.responder.wake(&woken, None, None).await.unwrap();
    let outcomes = rig.publisher.take();
    assert_eq!(by_action(&outcomes, "ask-isolate")[0].status, Status::Succeeded);
    let isolated = by_action(&outcomes, "isolate");
    assert_eq!((isolated[0].status, isolated[0].replay), (Status::Succeeded, true));
    assert_eq!(rig.hits("/isolate"), 1, "isolated once");
    assert!(rig.state.workflows().await.unwrap().is_empty());
}

/// A resume whose publish is still running at the invocation's deadline
/// (SNS hung) fails in time rather than timing out, and keeps the workflow
/// for the retry.
#[tokio::test]
async fn a_resume_whose_publish_hangs_fails_by_the_deadline() {
    let rig = rig(example_policy).await;
    let woken = rig.approved().await;
    rig.publisher.set_stalled(true);
    let deadline = std::time::Instant::now() + Duration::from_millis(600);
    let waking = rig.responder.wake(&woken, Some(deadline), None);
    // Bounded, so that a publish nothing stops fails the test, not hangs it.
    let err = tokio::time::timeout(Duration::from_secs(30), waking)
        .await
        .expect("answered")
        .unwrap_err();
    assert!(
        std::time::Instant::now() <= deadline + Duration::from_millis(1400),
        "answered after Lambda's deadline"
    );
    assert!(
        err.to_string()
            .contains("did not finish before the invocation's deadline"),
        "{err}"
    );
    assert_eq!(
        rig.state.workflows().await.unwrap().len(),
        1,
        "still stored for the retry"
    );
}

/// A run that saw fewer rounds (a redelivery racing a resume) never
/// overwrites the newer state of its workflow.
#[tokio::test]
async fn an_older_suspension_never_overwrites_a_newer_one() {
    let rig = rig(example_policy).await;
    rig.deliver_change().await;
    let stored = rig.state.workflows().await.unwrap().pop().unwrap();
    let mut newer = stored.clone();
    newer.rounds = stored.rounds + 1;
    assert!(rig.state.save_workflow(&newer, true).await.unwrap());
    assert!(!rig.state.save_workflow(&stored, false).await.unwrap());
    assert_eq!(rig.state.workflows().await.unwrap()[0].rounds, stored.rounds + 1);
    // The same round again (a redelivery) may be written.
    assert!(rig.state.save_workflow(&newer, false).await.unwrap());
}

/// A persisted counter committed by an approval is written when the answer
/// is recorded; the resumed round sees it once (the namespace's stored
/// value), not that value with the commit applied again.
#[tokio::test]
async fn a_persisted_commit_of_an_approval_counts_once_in_the_resumed_round() {
    let rig = rig(|hooks| {
        format!(
            r#"package action
run contains {{"id": "ask", "uses": "approval.request", "args": {{"secret_token": "xoxb-test", "channel": "C0SECOPS", "approvers": ["{APPROVER}"]}},
    "commit": [{{"key": "asked", "op": "add", "value": 5, "persist": true}}, {{"key": "local", "op": "add", "value": 2}}]}}
run contains {{"id": "report", "uses": "webhook.post", "args": {{"url": "{hooks}/report", "data": {{"attrs": input.alert.attrs}}}}}} if {{
    some c in input.called
    c.id == "ask"
    c.status == "succeeded"
}}
"#
        )
    })
    .await;
    let woken = rig.approved().await;
    rig.responder.wake(&woken, None, None).await.unwrap();
    let report = rig
        .hooks
        .requests()
        .into_iter()
        .find(|r| r.path == "/report")
        .expect("the report");
    let attrs = report.json()["data"]["attrs"].clone();
    let value = |key: &str| {
        attrs
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| a["value"].clone())
    };
    assert_eq!(
        (value("asked"), value("local")),
        (Some(json!(5)), Some(json!(2))),
        "{attrs}"
    );
}
