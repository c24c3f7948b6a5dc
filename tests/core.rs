//! The core in process: the whole pipeline (ingest → decide → workflow →
//! outcomes) on the in-memory state store and publisher, with fake actions.
//! Claims, replays, concurrent duplicates, takeovers, transient failures,
//! stale changes, publish failures and persistent counters, with no server.
//! The moto-backed suites (`reliability`, `sns_pipeline`) test the same on
//! the AWS adapters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use alert_responder::action::{Action, ActionCall, ActionError, ArgKind, ArgSpec, Registry};
use alert_responder::app;
use alert_responder::config::Config;
use alert_responder::decide::Decider;
use alert_responder::ingest::ingest_document;
use alert_responder::memory::{MemoryPublisher, MemoryRecords, MemoryRequeue, MemoryState};
use alert_responder::model::decision::DecisionResult;
use alert_responder::model::{Outcome, Status};
use alert_responder::pipeline::{HandleError, Responder, Summary};
use alert_responder::policy::{PolicyFile, PolicySet};
use alert_responder::requeue::{Requeued, RetryDelay};
use alert_responder::secrets::SecretResolver;
use alert_responder::state::StateStore;
use alert_responder::workflow::RetryCause;
use futures::future::BoxFuture;
use serde_json::{json, Value};

const ALERT_POLICY: &str = r#"package alert.matano
alert contains {"title": input.updated_alert.title, "severity": input.updated_alert.severity, "namespace": "ns"} if true
"#;

/// Calls per action id, and how each fake behaves.
#[derive(Default)]
struct Calls {
    by_id: Mutex<BTreeMap<String, usize>>,
    /// `test.flaky` fails transiently this many times before succeeding.
    flaky_failures: AtomicUsize,
}

impl Calls {
    fn of(&self, id: &str) -> usize {
        self.by_id.lock().unwrap().get(id).copied().unwrap_or(0)
    }
}

const ARGS: &[ArgSpec] = &[
    ArgSpec::optional("v", ArgKind::Any, ""),
    ArgSpec::optional("secret_token", ArgKind::Secret, ""),
];

struct Fake {
    uses: &'static str,
    calls: Arc<Calls>,
    /// `test.gate` waits here until the test opens it.
    gate: Arc<tokio::sync::Semaphore>,
}

impl Action for Fake {
    fn uses(&self) -> &'static str {
        self.uses
    }
    fn args(&self) -> &'static [ArgSpec] {
        ARGS
    }
    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        *self
            .calls
            .by_id
            .lock()
            .unwrap()
            .entry(call.action_id.to_string())
            .or_default() += 1;
        Box::pin(async move {
            match self.uses {
                "test.gate" => {
                    let _open = self.gate.acquire().await.unwrap();
                    Ok(json!({"n": 1}))
                }
                // A bug its content reaches: what the panic hook is for.
                "test.panic" => panic!("test.panic: a poison record"),
                "test.flaky" => {
                    let left = self.calls.flaky_failures.load(Ordering::SeqCst);
                    if left > 0 {
                        self.calls.flaky_failures.store(left - 1, Ordering::SeqCst);
                        return Err(ActionError::Failed {
                            message: "HTTP 503".into(),
                            result: Some(json!({"status": 503})),
                            transient: true,
                        });
                    }
                    Ok(json!({"n": 1}))
                }
                _ => Ok(json!({"n": 1, "v": call.args.get("v")})),
            }
        })
    }
}

struct Rig {
    responder: Responder,
    state: Arc<MemoryState>,
    publisher: Arc<MemoryPublisher>,
    calls: Arc<Calls>,
    gate: Arc<tokio::sync::Semaphore>,
}

fn rig(action_policy: &str) -> Rig {
    rig_on(action_policy, Arc::new(MemoryState::with_virtual_clock(1_700_000_000)))
}

fn rig_on(action_policy: &str, state: Arc<MemoryState>) -> Rig {
    rig_with(action_policy, state, Config::default())
}

fn rig_with(action_policy: &str, state: Arc<MemoryState>, config: Config) -> Rig {
    rig_of(ALERT_POLICY, action_policy, state, config)
}

/// An alert policy and the rules of `package action`, compiled.
fn policy_set(alert_policy: &str, action_rules: &str) -> PolicySet {
    PolicySet::compile(
        vec![
            PolicyFile {
                name: "alert.rego".into(),
                text: alert_policy.into(),
            },
            PolicyFile {
                name: "action.rego".into(),
                text: format!("package action\n{action_rules}\n"),
            },
        ],
        Duration::from_secs(2),
    )
    .unwrap()
}

fn rig_of(alert_policy: &str, action_policy: &str, state: Arc<MemoryState>, config: Config) -> Rig {
    let policies = policy_set(alert_policy, action_policy);
    let calls = Arc::new(Calls::default());
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let mut registry = Registry::default();
    for uses in ["test.ok", "test.gate", "test.flaky", "test.panic"] {
        registry.register(Fake {
            uses,
            calls: calls.clone(),
            gate: gate.clone(),
        });
    }
    let publisher = Arc::new(MemoryPublisher::default());
    let decider = Decider::new(
        Arc::new(policies),
        registry,
        app::decide_settings(&config),
        SecretResolver::literals_only(),
        Some(state.clone() as Arc<dyn StateStore>),
    );
    Rig {
        responder: Responder::new(decider, publisher.clone()),
        state,
        publisher,
        calls,
        gate,
    }
}

/// A Matano change of alert `id` at `update_count`.
fn change(id: &str, update_count: u64) -> Vec<u8> {
    let mut payload: Value = serde_json::from_str(include_str!("fixtures/matano_alert_change_v1.json")).unwrap();
    payload["updated_alert"]["id"] = json!(id);
    payload["updated_alert"]["update_count"] = json!(update_count);
    payload.to_string().into_bytes()
}

async fn handle(rig: &Rig, payload: &[u8]) -> Result<Summary, HandleError> {
    rig.responder
        .handle(ingest_document(payload, &"matano".into()), None)
        .await
}

fn by_action(outcomes: &[Outcome]) -> BTreeMap<String, (Status, bool)> {
    outcomes
        .iter()
        .filter_map(|o| o.action.as_ref().map(|a| (a.id.clone(), (o.status, o.replay))))
        .collect()
}

/// A source other than Matano: the same event published twice is two
/// alerts (AlertChain's), each run once however often SNS delivers it.
#[tokio::test]
async fn the_same_event_published_again_acts_again_and_its_redelivery_does_not() {
    let alert_policy = "package alert.uptime\nalert contains {\"title\": sprintf(\"%s is down\", [input.host])} if input.status == \"down\"\n";
    let rig = rig_of(
        alert_policy,
        r#"run contains {"id": "page", "uses": "test.ok"}"#,
        Arc::new(MemoryState::with_virtual_clock(1_700_000_000)),
        Config::default(),
    );
    let publish = |message_id: &str| {
        json!({
            "Type": "Notification",
            "MessageId": message_id,
            "Message": json!({"host": "db-1", "status": "down"}).to_string(),
            "MessageAttributes": {"schema": {"Type": "String", "Value": "uptime"}}
        })
        .to_string()
        .into_bytes()
    };
    let first = handle(&rig, &publish("m-1")).await.unwrap();
    let redelivered = handle(&rig, &publish("m-1")).await.unwrap();
    assert_eq!((first.replayed, redelivered.replayed), (0, 1));
    assert_eq!(rig.calls.of("page"), 1, "a redelivery replays");
    let again = handle(&rig, &publish("m-2")).await.unwrap();
    assert_eq!((again.actions, again.replayed), (1, 0));
    assert_eq!(rig.calls.of("page"), 2, "published again: a new alert");
}

/// A retry whose first try persisted what it did (`paged`) decides with
/// it, and its policy no longer asks to page: the page that ran is still
/// replayed, so its outcome is published (the first try's publish may have
/// failed) and the decision says it paged. A later change of the alert
/// replays nothing of it.
#[tokio::test]
async fn a_retry_reports_what_its_first_try_ran_though_the_policy_asks_no_more() {
    let rig = rig(r#"paged if {
    some a in input.alert.attrs
    a.key == "paged"
}
run contains {"id": "page", "uses": "test.ok", "commit": [{"key": "paged", "value": true, "persist": true}]} if not paged"#);
    handle(&rig, &change("a1", 1)).await.unwrap();
    assert_eq!(
        by_action(&rig.publisher.take()),
        BTreeMap::from([("page".to_string(), (Status::Succeeded, false))])
    );
    let retried = handle(&rig, &change("a1", 1)).await.unwrap();
    assert_eq!((retried.actions, retried.replayed), (1, 1));
    assert_eq!(
        by_action(&rig.publisher.take()),
        BTreeMap::from([("page".to_string(), (Status::Succeeded, true))])
    );
    assert_eq!(rig.calls.of("page"), 1);
    let later = handle(&rig, &change("a1", 2)).await.unwrap();
    assert_eq!(later.actions, 0);
    assert!(by_action(&rig.publisher.take()).is_empty());
}

#[tokio::test]
async fn a_duplicate_delivery_replays_instead_of_running_again() {
    let rig = rig(r#"run contains {"id": "page", "uses": "test.ok"}"#);
    let first = handle(&rig, &change("a1", 1)).await.unwrap();
    assert_eq!((first.actions, first.replayed), (1, 0));
    let published = rig.publisher.take();
    let again = handle(&rig, &change("a1", 1)).await.unwrap();
    assert_eq!((again.actions, again.replayed), (1, 1));
    assert_eq!(rig.calls.of("page"), 1, "the action ran once");
    let replayed = rig.publisher.take();
    assert_eq!(replayed[0].outcome_id, published[0].outcome_id, "the same outcome id");
    assert!(replayed[0].replay && !published[0].replay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_run_each_action_once() {
    let rig = Arc::new(rig(r#"run contains {"id": "slow", "uses": "test.gate"}"#));
    let first = tokio::spawn({
        let rig = rig.clone();
        async move { handle(&rig, &change("a2", 1)).await }
    });
    // The first delivery holds the claim (the action waits at the gate).
    while rig.calls.of("slow") == 0 {
        tokio::task::yield_now().await;
    }
    let second = tokio::spawn({
        let rig = rig.clone();
        async move { handle(&rig, &change("a2", 1)).await }
    });
    rig.gate.add_permits(1);
    let (first, second) = (first.await.unwrap().unwrap(), second.await.unwrap().unwrap());
    assert_eq!(rig.calls.of("slow"), 1);
    assert_eq!(first.replayed + second.replayed, 1, "one ran, one replayed");
}

/// An action that ran but whose record the state table did not take is
/// retried, and counted as run (`ActionsRun`): its vendor was called.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_that_ran_but_was_not_saved_is_retried_and_counted_as_run() {
    let rig = Arc::new(rig(r#"run contains {"id": "slow", "uses": "test.gate"}"#));
    let batch = tokio::spawn({
        let rig = rig.clone();
        async move {
            let records = sqs_batch(&[via_sns(&change("u1", 1), "s1")]);
            rig.responder.handle_batch(records, None, 1, None).await
        }
    });
    while rig.calls.of("slow") == 0 {
        tokio::task::yield_now().await;
    }
    // The table goes down while the action runs: its record is not saved.
    rig.state.set_unavailable(true);
    rig.gate.add_permits(1);
    let handled = batch.await.unwrap();
    assert_eq!(failures(&handled), ["m0"], "{:?}", handled.causes);
    assert_eq!((handled.summary.actions, handled.summary.retries_not_run), (1, 0));
}

/// One change delivered twice in one SQS batch, both records decided at
/// once (concurrency 2): the second waits on the first (its namespace's
/// lock), the action runs once, neither record is retried, and the second's
/// outcome is the first's, replayed under the same outcome id.
#[tokio::test]
async fn one_change_twice_in_a_batch_runs_its_action_once() {
    let rig = rig(r#"run contains {"id": "slow", "uses": "test.gate"}"#);
    let bodies = [via_sns(&change("dup1", 1), "s1"), via_sns(&change("dup1", 1), "s2")];
    // Open once the first record is inside its action; the second has
    // started too (the batch polls both before the opener runs).
    let handled = two_at_a_time_through_the_gate(&rig, &bodies, "slow", 1).await;
    assert!(failures(&handled).is_empty(), "{:?}", handled.causes);
    assert!(rig.state.locks_refused() >= 1, "the two overlapped: the second waited");
    assert_eq!(rig.calls.of("slow"), 1);
    assert_eq!(handled.summary.replayed, 1, "one ran, one replayed");
    let outcomes = rig.publisher.take();
    assert_eq!(outcomes.len(), 2);
    assert_eq!(outcomes[0].outcome_id, outcomes[1].outcome_id);
    assert_eq!(outcomes.iter().filter(|o| o.replay).count(), 1);
}

#[tokio::test]
async fn a_claim_of_a_dead_invocation_is_taken_over_after_its_lease() {
    let rig = rig(r#"run contains {"id": "page", "uses": "test.ok"}"#);
    // Learn the alert id the change gets, then leave its claim held as a
    // crashed invocation would.
    handle(&rig, &change("a3", 1)).await.unwrap();
    let alert_id = rig.publisher.take()[0].alert.as_ref().unwrap().id.clone();
    let crashed = rig_on(r#"run contains {"id": "other", "uses": "test.ok"}"#, rig.state.clone());
    rig.state
        .claim(&alert_id, "other", Duration::from_secs(60))
        .await
        .unwrap();
    // While the lease holds, the retry cannot wait that long: it fails for a later retry.
    let deadline = Some(Instant::now() + Duration::from_millis(1200));
    let busy = crashed
        .responder
        .handle(ingest_document(&change("a3", 1), &"matano".into()), deadline)
        .await
        .unwrap_err();
    match busy {
        HandleError::Retry { first, .. } => assert!(matches!(first.cause, RetryCause::Busy { .. }), "{first}"),
        other => panic!("expected a retry, got {other}"),
    }
    assert_eq!(crashed.calls.of("other"), 0);
    // After the lease: taken over, run once.
    rig.state.advance(Duration::from_secs(61));
    let summary = handle(&crashed, &change("a3", 1)).await.unwrap();
    assert_eq!(crashed.calls.of("other"), 1);
    assert_eq!(summary.replayed, 0);
}

#[tokio::test]
async fn a_transient_failure_fails_the_invocation_and_the_retry_runs_only_it() {
    let rig = rig(r#"
run contains {"id": "done", "uses": "test.ok"}
run contains {"id": "flaky", "uses": "test.flaky"}
"#);
    rig.calls.flaky_failures.store(1, Ordering::SeqCst);
    let err = handle(&rig, &change("a4", 1)).await.unwrap_err();
    match &err {
        HandleError::Retry { count: 1, first } => {
            assert_eq!(first.action_id, "flaky");
            assert!(matches!(first.cause, RetryCause::Transient { .. }), "{first}");
        }
        other => panic!("expected a retry of flaky, got {other}"),
    }
    // The finished action's outcome is out; the failed one's waits for the retry.
    assert_eq!(by_action(&rig.publisher.take()).keys().collect::<Vec<_>>(), ["done"]);
    let retry = handle(&rig, &change("a4", 1)).await.unwrap();
    assert_eq!((rig.calls.of("done"), rig.calls.of("flaky")), (1, 2));
    assert_eq!(retry.replayed, 1);
    let outcomes = by_action(&rig.publisher.take());
    assert_eq!(outcomes["done"], (Status::Succeeded, true));
    assert_eq!(outcomes["flaky"], (Status::Succeeded, false));
}

/// `sequential := true`: a transient failure stops the round for a retry.
/// What the round did not get to is published by no one now (the retry
/// runs it), so a receiver deduplicating on `outcome_id` keeps the real
/// run; a final failure's skipped entries have outcome ids of their own.
#[tokio::test]
async fn a_sequential_round_stopped_for_a_retry_publishes_nothing_for_what_it_did_not_run() {
    let rig = rig(r#"
sequential := true
run contains {"id": "a-first", "uses": "test.ok", "args": {"v": 1}, "abort": true}
run contains {"id": "b-flaky", "uses": "test.flaky", "args": {"v": 2}}
run contains {"id": "c-after", "uses": "test.ok", "args": {"v": 3}}
"#);
    rig.calls.flaky_failures.store(1, Ordering::SeqCst);
    let err = handle(&rig, &change("seq1", 1)).await.unwrap_err();
    assert!(matches!(err, HandleError::Retry { count: 1, .. }), "{err}");
    assert_eq!(by_action(&rig.publisher.take()).keys().collect::<Vec<_>>(), ["a-first"]);
    assert_eq!(rig.calls.of("c-after"), 0);

    handle(&rig, &change("seq1", 1)).await.unwrap();
    let outcomes = rig.publisher.take();
    let after = outcomes
        .iter()
        .find(|o| o.action.as_ref().is_some_and(|a| a.id == "c-after"))
        .expect("c-after ran on the retry");
    assert_eq!((after.status, after.replay), (Status::Succeeded, false));
    assert_eq!(
        after.outcome_id,
        alert_responder::model::outcome::action_outcome_id(after.alert.as_ref().unwrap().id.as_str(), "c-after")
    );
}

#[tokio::test]
async fn an_entry_skipped_after_a_final_failure_has_an_outcome_id_of_its_own() {
    let rig = rig(r#"
sequential := true
run contains {"id": "a-first", "uses": "test.ok", "args": {"v": 1, "unknown_argument": 1}}
run contains {"id": "b-after", "uses": "test.ok", "args": {"v": 2}}
"#);
    handle(&rig, &change("seq2", 1)).await.unwrap();
    let outcomes = rig.publisher.take();
    let skipped = outcomes
        .iter()
        .find(|o| o.action.as_ref().is_some_and(|a| a.id == "b-after"))
        .expect("an outcome for the skipped entry");
    assert_eq!(skipped.status, Status::Skipped);
    assert_eq!(skipped.skip_reason.map(|r| r.as_str()), Some("earlier_failure"));
    let alert_id = skipped.alert.as_ref().unwrap().id.as_str();
    assert_ne!(
        skipped.outcome_id,
        alert_responder::model::outcome::action_outcome_id(alert_id, "b-after")
    );
    assert_eq!(rig.calls.of("b-after"), 0);
}

#[tokio::test]
async fn stale_changes_are_reported_and_not_acted_on() {
    let rig = rig(r#"run contains {"id": "page", "uses": "test.ok"}"#);
    handle(&rig, &change("a5", 3)).await.unwrap();
    rig.publisher.take();
    let stale = handle(&rig, &change("a5", 2)).await.unwrap();
    assert_eq!((stale.stale, stale.actions), (1, 0));
    let outcomes = rig.publisher.take();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].event_type.as_str(), "stale_change");
    assert!(outcomes[0].error.as_ref().unwrap().contains("older than 3"));
    assert_eq!(rig.calls.of("page"), 1);
}

#[tokio::test]
async fn a_publish_failure_fails_the_invocation_and_the_retry_republishes_without_rerunning() {
    let rig = rig(r#"run contains {"id": "page", "uses": "test.ok"}"#);
    rig.publisher.set_failing(true);
    let err = handle(&rig, &change("a6", 1)).await.unwrap_err();
    assert!(matches!(err, HandleError::Publish(_)), "{err}");
    rig.publisher.set_failing(false);
    let retry = handle(&rig, &change("a6", 1)).await.unwrap();
    assert_eq!(rig.calls.of("page"), 1);
    assert_eq!(retry.replayed, 1);
    assert_eq!(by_action(&rig.publisher.take())["page"], (Status::Succeeded, true));
}

/// A failed publish's invocation counts the outcomes that went out all the
/// same (its metrics), not none.
#[tokio::test]
async fn a_partly_published_invocation_counts_what_went_out() {
    let rig = rig(r#"run contains {"id": "page", "uses": "test.ok"}
run contains {"id": "ticket", "uses": "test.ok"}"#);
    rig.publisher.refuse_action(Some("ticket"));
    let (summary, result) = rig
        .responder
        .handle_invocation_counted(ingest_document(&change("a8", 1), &"matano".into()), None, None)
        .await;
    assert!(matches!(result, Err(HandleError::Publish(_))), "{result:?}");
    assert_eq!((summary.actions, summary.outcomes), (2, 1), "{summary:?}");
}

#[tokio::test]
async fn an_unreachable_state_store_fails_the_invocation_before_any_action() {
    let rig = rig(r#"run contains {"id": "page", "uses": "test.ok"}"#);
    rig.state.set_unavailable(true);
    let err = handle(&rig, &change("a7", 1)).await.unwrap_err();
    assert!(matches!(err, HandleError::State(_)), "{err}");
    assert_eq!(rig.calls.of("page"), 0);
    assert!(rig.publisher.take().is_empty());
}

/// Counters persisted by one alert are seen by the next alert of the
/// namespace, and concurrent alerts lose no addition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_counters_carry_across_alerts_and_lose_no_update() {
    let rig = Arc::new(rig(r#"
seen := [a.value | some a in input.alert.attrs; a.key == "pages"]
run contains {"id": "count", "uses": "test.ok", "args": {"v": seen}, "commit": [
    {"key": "pages", "value": 1, "op": "add", "persist": true, "ttl": 3600}
]}
"#));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let rig = rig.clone();
            tokio::spawn(async move { handle(&rig, &change(&format!("c{i}"), 1)).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let attrs = rig.state.load_attrs("ns").await.unwrap();
    assert_eq!(attrs.len(), 1);
    assert_eq!(attrs[0].value, json!(8));
    // The outcomes carry the commit as written (`op: add`, the delta) and
    // match the published schema.
    let outcomes = rig.publisher.take();
    assert_eq!(outcomes.len(), 8);
    for outcome in &outcomes {
        let outcome = serde_json::to_value(outcome).unwrap();
        assert_eq!(outcome["commits"][0]["op"], json!("add"), "{outcome:#}");
        assert_eq!(outcome["commits"][0]["value"], json!(1), "{outcome:#}");
        common::assert_valid_outcome(&outcome);
    }
    // The next alert sees the count as an attribute.
    handle(&rig, &change("c-last", 1)).await.unwrap();
    let outcome = rig.publisher.take().pop().unwrap();
    assert_eq!(outcome.action.unwrap().args["v"], json!([8]));
    // Expired with its TTL.
    rig.state.advance(Duration::from_secs(3601));
    assert!(rig.state.load_attrs("ns").await.unwrap().is_empty());
}

/// `ttl: 0` is the default day (AlertChain's zero value, read as its
/// default); a loaded attribute reports the `ttl` it was stored with, not
/// what is left, so re-committing `"ttl": a.ttl` keeps its window.
#[tokio::test]
async fn a_zero_ttl_is_the_default_day_and_a_loaded_attribute_reports_its_ttl() {
    let rig = rig(r#"
run contains {"id": "keep", "uses": "test.ok", "commit": [
    {"key": "zero", "value": 1, "persist": true, "ttl": 0},
    {"key": "hour", "value": 2, "persist": true, "ttl": 3600},
]}
"#);
    handle(&rig, &change("t1", 1)).await.unwrap();
    let ttls = |rig: &Rig| -> BTreeMap<String, Option<u64>> {
        futures::executor::block_on(rig.state.load_attrs("ns"))
            .unwrap()
            .into_iter()
            .map(|attr| (attr.key, attr.ttl))
            .collect()
    };
    rig.state.advance(Duration::from_secs(1800));
    assert_eq!(
        ttls(&rig),
        BTreeMap::from([("hour".to_string(), Some(3600)), ("zero".to_string(), Some(86_400))])
    );
    rig.state.advance(Duration::from_secs(3600));
    assert_eq!(ttls(&rig), BTreeMap::from([("zero".to_string(), Some(86_400))]));
}

/// An alert policy's `persist: true` attributes are stored (AlertChain):
/// later alerts of the namespace see them; one whose id the namespace
/// already holds keeps the stored value; one without `persist` is not
/// stored; each lives its `ttl` (a day without one).
#[tokio::test]
async fn alert_policy_attributes_with_persist_are_seen_by_later_alerts() {
    let alert_policy = r#"package alert.matano
alert contains {"title": "t", "namespace": "ns", "attrs": [
    {"key": "first", "id": "first", "value": input.updated_alert.id, "persist": true, "ttl": 600},
    {"key": "seen", "value": input.updated_alert.id, "persist": true},
    {"key": "local", "value": input.updated_alert.id}
]} if true
"#;
    let state = Arc::new(MemoryState::with_virtual_clock(1_700_000_000));
    let rig = rig_of(
        alert_policy,
        r#"run contains {"id": "look", "uses": "test.ok", "args": {"v": [[a.key, a.value] | some a in input.alert.attrs]}}"#,
        state,
        Config::default(),
    );
    let seen = |rig: &Rig| rig.publisher.take().pop().unwrap().action.unwrap().args["v"].clone();
    handle(&rig, &change("p1", 1)).await.unwrap();
    assert_eq!(seen(&rig), json!([["first", "p1"], ["seen", "p1"], ["local", "p1"]]));
    handle(&rig, &change("p2", 1)).await.unwrap();
    assert_eq!(
        seen(&rig),
        json!([["first", "p1"], ["seen", "p2"], ["local", "p2"], ["seen", "p1"]]),
        "the stored `first` replaces this alert's own; the first alert's `seen` is added"
    );
    let stored = |rig: &Rig| {
        futures::executor::block_on(rig.state.load_attrs("ns"))
            .unwrap()
            .into_iter()
            .map(|attr| (attr.key, attr.value.to_string()))
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(
        stored(&rig),
        [("first", "p1"), ("seen", "p1"), ("seen", "p2")]
            .map(|(key, value)| (key.to_string(), json!(value).to_string()))
            .into()
    );
    // A redelivery writes nothing new, and changes nothing.
    let before = stored(&rig);
    handle(&rig, &change("p2", 1)).await.unwrap();
    assert_eq!(stored(&rig), before);
    rig.state.advance(Duration::from_secs(601));
    assert_eq!(
        stored(&rig).iter().filter(|(key, _)| key == "first").count(),
        0,
        "expired with its ttl"
    );
    assert_eq!(stored(&rig).len(), 2);
    // Expired, it is stored again by the next alert.
    handle(&rig, &change("p4", 1)).await.unwrap();
    assert!(stored(&rig).contains(&("first".to_string(), json!("p4").to_string())));

    // A dry run stores nothing, as it runs nothing.
    let dry = rig_of(
        alert_policy,
        r#"run contains {"id": "look", "uses": "test.ok"}"#,
        Arc::new(MemoryState::with_virtual_clock(1_700_000_000)),
        Config {
            dry_run: true,
            ..Config::default()
        },
    );
    handle(&dry, &change("p3", 1)).await.unwrap();
    assert!(stored(&dry).is_empty(), "{:?}", stored(&dry));
    // Nor marks a change seen: a real run of an older change is not stale.
    handle(&dry, &change("p5", 9)).await.unwrap();
    let real = rig_of(
        alert_policy,
        r#"run contains {"id": "look", "uses": "test.ok"}"#,
        dry.state.clone(),
        Config::default(),
    );
    handle(&real, &change("p5", 1)).await.unwrap();
    let statuses: Vec<Status> = real.publisher.take().iter().map(|o| o.status).collect();
    assert_eq!(statuses, [Status::Succeeded], "decided, not a stale change");
}

/// The alert policy's attributes are stored before the first round: an
/// alert whose workflow fails for a retry has stored them already, and its
/// retry finds them stored.
#[tokio::test]
async fn alert_policy_attributes_are_stored_even_when_the_workflow_fails() {
    let alert_policy = r#"package alert.matano
alert contains {"title": "t", "namespace": "ns", "attrs": [
    {"key": "seen", "id": "seen", "value": input.updated_alert.id, "persist": true}
]} if true
"#;
    let rig = rig_of(
        alert_policy,
        r#"run contains {"id": "flaky", "uses": "test.flaky"}"#,
        Arc::new(MemoryState::with_virtual_clock(1_700_000_000)),
        Config::default(),
    );
    rig.calls.flaky_failures.store(1, Ordering::SeqCst);
    let err = handle(&rig, &change("f1", 1)).await.unwrap_err();
    assert!(matches!(err, HandleError::Retry { .. }), "{err}");
    let attrs = rig.state.load_attrs("ns").await.unwrap();
    assert_eq!(attrs.len(), 1);
    assert_eq!(attrs[0].value, json!("f1"));
    handle(&rig, &change("f1", 1)).await.unwrap();
    assert_eq!(rig.calls.of("flaky"), 2);
}

/// `force` means "this failure must not hold the workflow back": a forced
/// enrichment failing transiently every time is final after the client's
/// own retries, and the page of the next round is sent, once, in the same
/// invocation.
#[tokio::test]
async fn a_forced_transient_failure_does_not_hold_back_the_page() {
    let rig = rig(r#"
run contains {"id": "enrich", "uses": "test.flaky", "force": true}
run contains {"id": "page", "uses": "test.ok"} if {
    some c in input.called
    c.id == "enrich"
    c.status == "failed"
}
"#);
    rig.calls.flaky_failures.store(usize::MAX, Ordering::SeqCst);
    let summary = handle(&rig, &change("f1", 1)).await.unwrap();
    assert_eq!((summary.actions, summary.failed_actions), (2, 1));
    let outcomes = by_action(&rig.publisher.take());
    assert_eq!(outcomes["enrich"], (Status::Failed, false));
    assert_eq!(outcomes["page"], (Status::Succeeded, false));
    // Final: a redelivery replays both, runs neither.
    handle(&rig, &change("f1", 1)).await.unwrap();
    assert_eq!((rig.calls.of("enrich"), rig.calls.of("page")), (1, 1));
}

const PAGE_ONCE_PER_NAMESPACE: &str = r#"
paged := [a | some a in input.alert.attrs; a.key == "paged"]
run contains {"id": "page", "uses": "test.gate", "commit": [{"key": "paged", "value": true, "persist": true}]} if count(paged) == 0
"#;

/// Two different alerts of one namespace decided at once: the second waits
/// for the first's persistent commit, sees it, and does not page again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_of_one_namespace_are_decided_one_at_a_time() {
    let rig = Arc::new(rig(PAGE_ONCE_PER_NAMESPACE));
    let first = tokio::spawn({
        let rig = rig.clone();
        async move { handle(&rig, &change("n1", 1)).await }
    });
    // The first alert holds the namespace while its page waits at the gate.
    while rig.calls.of("page") == 0 {
        tokio::task::yield_now().await;
    }
    let second = tokio::spawn({
        let rig = rig.clone();
        async move { handle(&rig, &change("n2", 1)).await }
    });
    rig.gate.add_permits(2);
    let (first, second) = (first.await.unwrap().unwrap(), second.await.unwrap().unwrap());
    assert_eq!(rig.calls.of("page"), 1, "paged once");
    assert_eq!((first.actions, second.actions), (1, 0));
}

/// A namespace held longer than the invocation can wait fails the
/// invocation for a retry: nothing is decided on attributes that may change.
#[tokio::test]
async fn a_namespace_held_past_the_deadline_fails_the_invocation() {
    let rig = rig(PAGE_ONCE_PER_NAMESPACE);
    rig.state
        .lock_namespace("ns", "another-instance", Duration::from_secs(600))
        .await
        .unwrap();
    let deadline = Some(Instant::now() + Duration::from_millis(1500));
    let err = rig
        .responder
        .handle(ingest_document(&change("n3", 1), &"matano".into()), deadline)
        .await
        .unwrap_err();
    assert!(matches!(err, HandleError::NamespaceBusy(_)), "{err}");
    assert_eq!(rig.calls.of("page"), 0);
    // Once released, the retry decides.
    rig.state.unlock_namespace("ns", "another-instance").await.unwrap();
    rig.gate.add_permits(1);
    handle(&rig, &change("n3", 1)).await.unwrap();
    assert_eq!(rig.calls.of("page"), 1);
}

/// A claim holds as long as its invocation can run, not for the
/// configured lease alone: a duplicate arriving after that lease, while the
/// slow action still runs, waits and replays instead of running it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_outlives_a_short_lease_while_its_invocation_can_run() {
    let config = Config {
        claim_lease: Duration::from_secs(1),
        ..Config::default()
    };
    let state = Arc::new(MemoryState::with_virtual_clock(1_700_000_000));
    let rig = Arc::new(rig_with(
        r#"run contains {"id": "slow", "uses": "test.gate"}"#,
        state,
        config,
    ));
    let deadline = Some(Instant::now() + Duration::from_secs(30));
    let first = tokio::spawn({
        let rig = rig.clone();
        async move {
            rig.responder
                .handle(ingest_document(&change("l1", 1), &"matano".into()), deadline)
                .await
        }
    });
    while rig.calls.of("slow") == 0 {
        tokio::task::yield_now().await;
    }
    // Well past CLAIM_LEASE_SECONDS, within the first invocation's time.
    rig.state.advance(Duration::from_secs(5));
    let duplicate = tokio::spawn({
        let rig = rig.clone();
        async move {
            rig.responder
                .handle(ingest_document(&change("l1", 1), &"matano".into()), deadline)
                .await
        }
    });
    rig.gate.add_permits(1);
    let (first, duplicate) = (first.await.unwrap().unwrap(), duplicate.await.unwrap().unwrap());
    assert_eq!(rig.calls.of("slow"), 1, "ran once");
    assert_eq!(first.replayed + duplicate.replayed, 1);
}

/// A conflict between two definitions is a policy error in production, as
/// in OPA, not an entry that silently disappears.
#[tokio::test]
async fn a_conflict_between_definitions_publishes_a_policy_error() {
    let rig = rig(r#"
target := "a" if true
target := "b" if true
run contains {"id": "page", "uses": "test.ok", "args": {"v": target}}
"#);
    let summary = handle(&rig, &change("k1", 1)).await.unwrap();
    assert_eq!((summary.policy_errors, summary.actions), (1, 0));
    let outcomes = rig.publisher.take();
    assert_eq!(outcomes[0].event_type.as_str(), "policy_error");
    assert!(
        outcomes[0].error.as_ref().unwrap().contains("conflicts"),
        "{:?}",
        outcomes[0].error
    );
    assert_eq!(rig.calls.of("page"), 0);
}

/// An SqsEvent of `bodies`, message ids `m0`, `m1`, …
fn sqs_batch(bodies: &[String]) -> Vec<alert_responder::ingest::QueuedRecord> {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            json!({
                "messageId": format!("m{i}"),
                "receiptHandle": format!("rh-m{i}"),
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": INGEST_QUEUE,
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    let event = json!({"Records": records});
    assert!(alert_responder::ingest::is_sqs_event(&event));
    alert_responder::ingest::ingest_sqs_event(&event, &"matano".into())
}

/// An SNS notification as SNS delivers it to an SQS queue (raw delivery off).
fn via_sns(payload: &[u8], message_id: &str) -> String {
    json!({
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:matano-alerting",
        "Message": String::from_utf8(payload.to_vec()).unwrap(),
        "Timestamp": "2026-11-29T12:00:00.000Z",
        "SignatureVersion": "1",
        "MessageAttributes": {}
    })
    .to_string()
}

fn failures(handled: &alert_responder::pipeline::BatchHandled) -> Vec<&str> {
    handled
        .response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

#[tokio::test]
async fn a_batch_retries_only_the_records_that_must_be() {
    let rig = rig(r#"
run contains {"id": "page", "uses": "test.ok"} if input.alert.title != "flaky"
run contains {"id": "flaky", "uses": "test.flaky"} if input.alert.title == "flaky"
"#);
    rig.calls.flaky_failures.store(1, Ordering::SeqCst);
    let mut flaky: Value = serde_json::from_slice(&change("b2", 1)).unwrap();
    flaky["updated_alert"]["title"] = json!("flaky");
    let bodies = [
        via_sns(&change("b1", 1), "sns-1"),
        "{not json".to_string(),
        flaky.to_string(),
        via_sns(br#"{"updated_alert": {"id": 5}}"#, "sns-4"),
    ];
    let handled = rig.responder.handle_batch(sqs_batch(&bodies), None, 4, None).await;
    // The transient failure alone goes back to the queue; the bad records
    // are rejected (with outcomes), not retried.
    assert_eq!(failures(&handled), ["m2"], "{:?}", handled.causes);
    assert!(handled.causes[0].1.contains("flaky"), "{:?}", handled.causes);
    // The flaky action ran (and failed for now): `ActionsRun` counts it.
    assert_eq!((handled.summary.actions, handled.summary.retries_not_run), (2, 0));
    assert_eq!((handled.summary.records, handled.summary.rejected), (4, 2));
    // Every record's outcomes in one publish.
    assert_eq!(rig.publisher.calls(), 1);
    let outcomes = rig.publisher.take();
    let rejected: Vec<_> = outcomes
        .iter()
        .filter(|o| o.event_type.as_str() == "message_rejected")
        .collect();
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0].source_message.message_id.as_deref(), Some("m1"));
    assert_eq!(rejected[1].source_message.message_id.as_deref(), Some("sns-4"));
    assert_eq!(by_action(&outcomes)["page"], (Status::Succeeded, false));

    // Lambda delivers the failed record again: it runs only what failed.
    let again = rig
        .responder
        .handle_batch(sqs_batch(&[flaky.to_string()]), None, 4, None)
        .await;
    assert!(failures(&again).is_empty(), "{:?}", again.causes);
    assert_eq!(rig.calls.of("flaky"), 2);
    assert_eq!(rig.calls.of("page"), 1);
}

/// A message SQS delivered twice in one batch whose both copies must be
/// retried is listed once in `batchItemFailures` (and counted once).
#[tokio::test]
async fn a_message_twice_in_a_batch_is_listed_once_for_its_retry() {
    let rig = rig(r#"run contains {"id": "flaky", "uses": "test.flaky"}"#);
    rig.calls.flaky_failures.store(2, Ordering::SeqCst);
    let body = via_sns(&change("t1", 1), "sns-t1");
    let mut records = sqs_batch(&[body.clone(), body]);
    records[1].item_id = records[0].item_id.clone();
    let handled = rig.responder.handle_batch(records, None, 1, None).await;
    assert_eq!(
        rig.calls.of("flaky"),
        2,
        "both copies ran the action and failed for now"
    );
    assert_eq!(failures(&handled), ["m0"], "{:?}", handled.causes);
}

const INGEST_QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:alert-responder-ingest";

/// The receipt `handle` made visible again after `delay_seconds`.
fn requeued(handle: &str, delay_seconds: u32) -> Requeued {
    Requeued {
        handle: handle.to_string(),
        delay_seconds,
    }
}

/// A retried record is made visible again after its own delay (30 s doubled
/// per earlier delivery), a record the batch never started at once, a
/// handled or rejected one not at all: Lambda deletes those.
#[tokio::test]
async fn retried_records_come_back_after_their_own_delay() {
    let requeue = Arc::new(MemoryRequeue::default());
    let rig = rig(r#"
run contains {"id": "page", "uses": "test.ok"} if input.alert.title != "flaky"
run contains {"id": "flaky", "uses": "test.flaky"} if input.alert.title == "flaky"
"#);
    let rig = with_responder(rig, |responder| {
        responder.with_requeue(requeue.clone(), RetryDelay { base_seconds: 30 })
    });
    rig.calls.flaky_failures.store(1, Ordering::SeqCst);
    let mut flaky: Value = serde_json::from_slice(&change("q2", 1)).unwrap();
    flaky["updated_alert"]["title"] = json!("flaky");
    let bodies = [
        via_sns(&change("q1", 1), "sns-1"),
        flaky.to_string(),
        "{not json".to_string(),
    ];
    let mut records = sqs_batch(&bodies);
    records[1].deliveries = 3;
    let handled = rig.responder.handle_batch(records, None, 2, None).await;
    assert_eq!(failures(&handled), ["m1"], "{:?}", handled.causes);
    assert_eq!(
        requeue.calls(),
        [(INGEST_QUEUE.to_string(), vec![requeued("rh-m1", 120)])]
    );

    // Not started (the deadline too close): back at once, however often delivered.
    let bodies = [via_sns(&change("q3", 1), "s3"), via_sns(&change("q4", 1), "s4")];
    let mut records = sqs_batch(&bodies);
    records[0].deliveries = 4;
    let deadline = Some(Instant::now() + Duration::from_millis(100));
    let handled = rig.responder.handle_batch(records, deadline, 2, None).await;
    assert_eq!(failures(&handled), ["m0", "m1"], "{:?}", handled.causes);
    assert_eq!(
        requeue.calls()[1],
        (
            INGEST_QUEUE.to_string(),
            vec![requeued("rh-m0", 0), requeued("rh-m1", 0)]
        )
    );

    // A batch with nothing to retry changes nothing.
    let handled = rig.responder.handle_batch(sqs_batch(&bodies), None, 2, None).await;
    assert!(failures(&handled).is_empty(), "{:?}", handled.causes);
    assert_eq!(requeue.calls().len(), 2);

    // Outcomes not published: every record of theirs. A message SQS
    // delivered twice in the batch comes back by both handles; a record
    // without a receipt (not from a queue) is left alone.
    rig.publisher.set_failing(true);
    let bodies = [
        via_sns(&change("q5", 1), "s5"),
        via_sns(&change("q5", 1), "s5"),
        via_sns(&change("q6", 1), "s6"),
    ];
    let mut records = sqs_batch(&bodies);
    records[1].item_id = records[0].item_id.clone();
    records[2].receipt = None;
    let handled = rig.responder.handle_batch(records, None, 1, None).await;
    assert_eq!(failures(&handled), ["m0", "m2"], "{:?}", handled.causes);
    assert_eq!(
        requeue.calls()[2],
        (
            INGEST_QUEUE.to_string(),
            vec![requeued("rh-m0", 30), requeued("rh-m1", 30)]
        )
    );
}

/// SQS hung: the batch answers after at most two seconds of trying to
/// bring its retried records back sooner, whatever its deadline.
#[tokio::test(start_paused = true)]
async fn a_hung_requeue_does_not_hold_the_batch_answer() {
    let requeue = Arc::new(MemoryRequeue::default());
    requeue.set_stalled(true);
    let rig = with_responder(rig(r#"run contains {"id": "page", "uses": "test.ok"}"#), |responder| {
        responder.with_requeue(requeue.clone(), RetryDelay { base_seconds: 30 })
    });
    rig.publisher.set_failing(true);
    let started = tokio::time::Instant::now();
    let batch = sqs_batch(&[via_sns(&change("h1", 1), "s1")]);
    let handled = tokio::time::timeout(
        Duration::from_secs(60),
        rig.responder.handle_batch(batch, None, 1, None),
    )
    .await
    .expect("the batch answers although its requeue hangs");
    assert_eq!(failures(&handled), ["m0"], "{:?}", handled.causes);
    assert_eq!(requeue.calls().len(), 1, "the requeue was tried");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_batch_whose_outcomes_cannot_be_published_is_retried_whole_and_runs_nothing_twice() {
    let rig = rig(r#"run contains {"id": "page", "uses": "test.ok"}"#);
    let bodies = [via_sns(&change("b3", 1), "s1"), via_sns(&change("b4", 1), "s2")];
    rig.publisher.set_failing(true);
    let handled = rig.responder.handle_batch(sqs_batch(&bodies), None, 2, None).await;
    assert_eq!(failures(&handled), ["m0", "m1"]);
    rig.publisher.set_failing(false);
    let again = rig.responder.handle_batch(sqs_batch(&bodies), None, 2, None).await;
    assert!(failures(&again).is_empty());
    assert_eq!(again.summary.replayed, 2);
    assert_eq!(rig.calls.of("page"), 2, "once per alert, not again on the retry");
    assert_eq!(rig.publisher.take().len(), 2);
}

#[tokio::test]
async fn a_batch_decides_its_records_concurrently() {
    // Two alerts of different namespaces wait on one gate: decided one
    // after another, the first would never finish and the batch would hang.
    let rig = rig_of(
        r#"package alert.matano
alert contains {"title": input.updated_alert.title, "namespace": input.updated_alert.id} if true
"#,
        r#"run contains {"id": "wait", "uses": "test.gate"}"#,
        Arc::new(MemoryState::with_virtual_clock(1_700_000_000)),
        Config::default(),
    );
    let mut other: Value = serde_json::from_slice(&change("b6", 1)).unwrap();
    other["updated_alert"]["title"] = json!("other");
    let bodies = [
        via_sns(&change("b5", 1), "s5"),
        via_sns(other.to_string().as_bytes(), "s6"),
    ];
    // Opens only once both records are inside their action.
    let handled = two_at_a_time_through_the_gate(&rig, &bodies, "wait", 2).await;
    assert!(failures(&handled).is_empty(), "{:?}", handled.causes);
    assert_eq!(handled.summary.actions, 2);
}

/// A record whose action panics (`test.panic`), the panic hook installed:
/// its batch-mate, part-way through its decision (at the gate, holding its
/// namespace's lock and its claim), is made visible again once those
/// leases can have run out (`CLAIM_LEASE_SECONDS`, no deadline here), not
/// at once; the poison record is left to the queue's visibility timeout.
#[tokio::test]
async fn a_poison_records_mate_waits_out_the_leases_it_holds() {
    alert_responder::crash::install_hook();
    let rig = rig_of(
        r#"package alert.matano
alert contains {"title": input.updated_alert.title, "namespace": input.updated_alert.id} if true
"#,
        r#"run contains {"id": "wait", "uses": "test.gate"} if input.alert.title != "poison"
run contains {"id": "boom", "uses": "test.panic"} if input.alert.title == "poison""#,
        Arc::new(MemoryState::with_virtual_clock(1_700_000_000)),
        Config::default(),
    );
    let requeue = Arc::new(MemoryRequeue::default());
    let rig = with_responder(rig, |responder| responder.with_panic_requeue(requeue.clone()));
    let mut poison: Value = serde_json::from_slice(&change("p2", 1)).unwrap();
    poison["updated_alert"]["title"] = json!("poison");
    let bodies = [
        via_sns(&change("p1", 1), "s1"),
        via_sns(poison.to_string().as_bytes(), "s2"),
    ];
    let batch = rig.responder.handle_batch(sqs_batch(&bodies), None, 2, None);
    let panicked = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(batch)).await;
    assert!(panicked.is_err(), "the poison record's action panics");
    assert_eq!(rig.calls.of("wait"), 1, "the mate was at the gate");
    let lease = Config::default().claim_lease.as_secs() as u32;
    assert_eq!(
        requeue.calls(),
        [(INGEST_QUEUE.to_string(), vec![requeued("rh-m0", lease)])]
    );
}

/// `bodies` as one batch decided two at a time, the gate (`test.gate`)
/// opened once `inside` calls of `action` have reached it; at most 20 s.
async fn two_at_a_time_through_the_gate(
    rig: &Rig,
    bodies: &[String],
    action: &'static str,
    inside: usize,
) -> alert_responder::pipeline::BatchHandled {
    let (gate, calls) = (rig.gate.clone(), rig.calls.clone());
    let opener = tokio::spawn(async move {
        while calls.of(action) < inside {
            tokio::task::yield_now().await;
        }
        gate.add_permits(2);
    });
    let handled = tokio::time::timeout(
        Duration::from_secs(20),
        rig.responder.handle_batch(sqs_batch(bodies), None, 2, None),
    )
    .await
    .expect("the batch finished once the gate opened");
    opener.await.unwrap();
    handled
}

fn with_budgets(budgets: &str) -> Config {
    Config {
        action_budgets: alert_responder::config::parse_action_budgets(budgets).unwrap(),
        actions_switch_refresh: Duration::ZERO,
        ..Config::default()
    }
}

fn skip_reasons(outcomes: &[Outcome]) -> BTreeMap<String, Option<&'static str>> {
    outcomes
        .iter()
        .filter_map(|o| Some((o.action.as_ref()?.id.clone(), o.skip_reason.map(|r| r.as_str()))))
        .collect()
}

/// Two instances (two responders on one state table) share a budget; the
/// alert over it has its lookup skipped, and its policy falls back.
/// `MAX_ACTIONS` counts every entry, commit-only ones included; `MAX_ROUNDS`
/// stops before a round past it. What was not run is `skipped`, naming the
/// limit, under an outcome id of its own.
#[tokio::test]
async fn entries_past_the_limits_are_skipped_naming_them() {
    let state = || Arc::new(MemoryState::with_virtual_clock(1_700_000_000));
    let rig = rig_with(
        r#"
run contains {"id": "a", "commit": [{"key": "k", "value": 1}]}
run contains {"id": "b", "uses": "test.ok"}
run contains {"id": "c", "uses": "test.ok"}
run contains {"id": "d", "uses": "test.ok"}
"#,
        state(),
        Config {
            max_actions: 2,
            ..Config::default()
        },
    );
    handle(&rig, &change("limits1", 1)).await.unwrap();
    let outcomes = rig.publisher.take();
    assert_eq!(
        skip_reasons(&outcomes),
        // `a`, commit-only, publishes no outcome, but counts: `b` is the second.
        BTreeMap::from([
            ("b".to_string(), None),
            ("c".to_string(), Some("max_actions")),
            ("d".to_string(), Some("max_actions")),
        ])
    );
    assert_eq!((rig.calls.of("b"), rig.calls.of("c")), (1, 0));

    let rig = rig_with(
        r#"
run contains {"id": "first", "uses": "test.ok"}
run contains {"id": "second", "uses": "test.ok"} if count(input.called) > 0
"#,
        state(),
        Config {
            max_rounds: 1,
            ..Config::default()
        },
    );
    handle(&rig, &change("limits2", 1)).await.unwrap();
    let outcomes = rig.publisher.take();
    assert_eq!(
        skip_reasons(&outcomes),
        BTreeMap::from([("first".to_string(), None), ("second".to_string(), Some("max_rounds"))])
    );
    assert_eq!(rig.calls.of("second"), 0);
}

#[tokio::test]
async fn a_budget_holds_across_instances_and_policies_see_it_spent() {
    let state = Arc::new(MemoryState::with_virtual_clock(1_700_000_000));
    let policy = r#"
run contains {"id": "lookup", "uses": "test.ok"}
run contains {"id": "fallback", "uses": "test.ok"} if {
    some called in input.called
    called.id == "lookup"
    called.skip_reason == "budget"
    called.budget == "id=look* (2 per 60 s)"
}
"#;
    let budgets = r#"[{"id": "look*", "limit": 2, "per_seconds": 60}]"#;
    let one = rig_of(ALERT_POLICY, policy, state.clone(), with_budgets(budgets));
    let two = rig_of(ALERT_POLICY, policy, state.clone(), with_budgets(budgets));
    handle(&one, &change("c1", 1)).await.unwrap();
    handle(&two, &change("c2", 1)).await.unwrap();
    let third = handle(&one, &change("c3", 1)).await.unwrap();
    assert_eq!(one.calls.of("lookup") + two.calls.of("lookup"), 2);
    let outcomes = one.publisher.take();
    let reasons = skip_reasons(&outcomes);
    assert_eq!(reasons["lookup"], Some("budget"), "{outcomes:#?}");
    assert_eq!(reasons["fallback"], None);
    let lookup = outcomes
        .iter()
        .find(|o| o.action.as_ref().unwrap().id == "lookup" && o.status == Status::Skipped)
        .unwrap();
    assert!(
        lookup.error.as_deref().unwrap().contains("id=look* (2 per 60 s)"),
        "{lookup:?}"
    );
    assert_eq!(lookup.budget.as_deref(), Some("id=look* (2 per 60 s)"));
    assert_eq!(lookup.attributes()["budget"], "id=look* (2 per 60 s)");
    assert_eq!(third.actions, 2);
    // A redelivery replays the skip; it counts nothing.
    let again = handle(&one, &change("c3", 1)).await.unwrap();
    assert_eq!(again.replayed, 2);
    // The next window has room again.
    state.advance(Duration::from_secs(60));
    handle(&two, &change("c4", 1)).await.unwrap();
    assert_eq!(one.calls.of("lookup") + two.calls.of("lookup"), 3);
}

/// A run whose secrets cannot be read calls no vendor: it counts against
/// no budget, and the budget's one run goes to an action that can run.
#[tokio::test]
async fn a_run_whose_secrets_cannot_be_read_counts_against_no_budget() {
    let state = Arc::new(MemoryState::with_virtual_clock(1_700_000_000));
    let rig = rig_of(
        ALERT_POLICY,
        r#"
run contains {"id": "a_keyed", "uses": "test.ok", "args": {"secret_token": {"secret": "prod/vendor-key"}}}
run contains {"id": "b_plain", "uses": "test.ok"}
"#,
        state,
        with_budgets(r#"[{"uses": "test.*", "limit": 1, "per_seconds": 60}]"#),
    );
    handle(&rig, &change("c9", 1)).await.unwrap();
    let outcomes = rig.publisher.take();
    let by_id = by_action(&outcomes);
    assert_eq!(by_id["a_keyed"].0, Status::Failed, "{outcomes:#?}");
    assert_eq!(skip_reasons(&outcomes)["b_plain"], None, "{outcomes:#?}");
    assert_eq!(rig.calls.of("b_plain"), 1);
}

/// A rig whose policy runs one action, `id` (`test.ok`), configured by
/// `config`; and its state, on a virtual clock.
fn one_action(id: &str, config: Config) -> (Rig, Arc<MemoryState>) {
    let state = Arc::new(MemoryState::with_virtual_clock(1_700_000_000));
    let policy = format!(r#"run contains {{"id": "{id}", "uses": "test.ok"}}"#);
    let rig = rig_of(ALERT_POLICY, &policy, state.clone(), config);
    (rig, state)
}

/// [`one_action`] `lookup`, under `budgets`.
fn lookup_under(budgets: &str) -> (Rig, Arc<MemoryState>) {
    one_action("lookup", with_budgets(budgets))
}

#[tokio::test]
async fn a_budget_that_cannot_be_counted_retries_rather_than_runs() {
    let (rig, state) = lookup_under(r#"[{"uses": "test.*", "limit": 5, "per_seconds": 60}]"#);
    state.set_budgets_unavailable(true);
    let err = handle(&rig, &change("c5", 1)).await.unwrap_err();
    // The table's failure, as the runbook names it (not a transient action's).
    assert!(matches!(err, HandleError::State(_)), "{err}");
    assert_eq!(rig.calls.of("lookup"), 0);
    // In a batch: left for a retry, and not counted as run.
    let handled = rig
        .responder
        .handle_batch(sqs_batch(&[via_sns(&change("c5", 1), "s1")]), None, 1, None)
        .await;
    assert_eq!(failures(&handled), ["m0"], "{:?}", handled.causes);
    assert_eq!((handled.summary.actions, handled.summary.retries_not_run), (1, 1));
    state.set_budgets_unavailable(false);
    handle(&rig, &change("c5", 1)).await.unwrap();
    assert_eq!(rig.calls.of("lookup"), 1);
}

/// The table fails after the first of an action's two budgets counted the
/// run: that count is taken back, so the run the retry makes is the one
/// the daily budget (of one) counts.
#[tokio::test]
async fn a_count_that_fails_part_way_is_taken_back_from_the_budgets_before_it() {
    let (rig, state) = lookup_under(
        r#"[{"uses": "test.*", "limit": 1, "per_seconds": 86400}, {"id": "lookup", "limit": 5, "per_seconds": 60}]"#,
    );
    state.fail_budget_counts_after(1);
    let err = handle(&rig, &change("c10", 1)).await.unwrap_err();
    assert!(matches!(err, HandleError::State(_)), "{err}");
    assert_eq!(rig.calls.of("lookup"), 0);
    state.set_budgets_unavailable(false);
    handle(&rig, &change("c10", 1)).await.unwrap();
    let outcomes = rig.publisher.take();
    assert_eq!(skip_reasons(&outcomes)["lookup"], None, "{outcomes:#?}");
    assert_eq!(rig.calls.of("lookup"), 1, "the daily budget's one run");
}

/// The kill switch: while paused every action is skipped (not stored), the
/// decisions and outcomes still flow; after resume a redelivery runs them.
#[tokio::test]
async fn paused_actions_are_skipped_and_run_after_resume() {
    let (rig, state) = one_action("page", with_budgets("[]"));
    let pause = alert_responder::state::ActionsSwitch {
        paused: true,
        reason: Some("vendor incident".into()),
        ..Default::default()
    };
    state.set_actions_switch(&pause).await.unwrap();
    let summary = handle(&rig, &change("c6", 1)).await.unwrap();
    assert_eq!(rig.calls.of("page"), 0);
    assert_eq!(summary.outcomes, 1);
    // `ActionsRun` is `actions` less these (and replays): a paused switch runs nothing.
    assert_eq!((summary.actions, summary.skipped_actions), (1, 1));
    let skipped = rig.publisher.take();
    assert_eq!(skip_reasons(&skipped)["page"], Some("paused"));
    state.set_actions_switch(&Default::default()).await.unwrap();
    let resumed = handle(&rig, &change("c6", 1)).await.unwrap();
    assert_eq!((resumed.actions, resumed.skipped_actions), (1, 0));
    assert_eq!(rig.calls.of("page"), 1);
    let ran = rig.publisher.take();
    assert_eq!(skip_reasons(&ran)["page"], None);
    // Receivers deduplicate on outcome_id: the run after resume is not the skip.
    assert_ne!(ran[0].outcome_id, skipped[0].outcome_id);
    // What ran before a pause replays during it: a redelivery is not told "paused".
    state.set_actions_switch(&pause).await.unwrap();
    let replayed = handle(&rig, &change("c6", 1)).await.unwrap();
    assert_eq!(replayed.replayed, 1);
    let outcomes = rig.publisher.take();
    assert_eq!(by_action(&outcomes)["page"], (Status::Succeeded, true));
    assert_eq!(rig.calls.of("page"), 1);
}

/// An instance reads the switch at most every `actions_switch_refresh`
/// (10 s by default): a pause reaches one that read "running" within that,
/// not at once.
#[tokio::test(start_paused = true)]
async fn a_pause_reaches_a_running_instance_within_its_refresh() {
    let (rig, state) = one_action("page", Config::default());
    assert_eq!(Config::default().actions_switch_refresh, Duration::from_secs(10));
    handle(&rig, &change("refresh1", 1)).await.unwrap();
    assert_eq!(rig.calls.of("page"), 1);
    let pause = alert_responder::state::ActionsSwitch {
        paused: true,
        ..Default::default()
    };
    state.set_actions_switch(&pause).await.unwrap();
    tokio::time::advance(Duration::from_millis(9_900)).await;
    handle(&rig, &change("refresh2", 1)).await.unwrap();
    assert_eq!(rig.calls.of("page"), 2, "its reading of 9.9 s ago still holds");
    tokio::time::advance(Duration::from_millis(100)).await;
    handle(&rig, &change("refresh3", 1)).await.unwrap();
    assert_eq!(rig.calls.of("page"), 2, "10 s on, it reads the switch again");
    let outcomes = rig.publisher.take();
    let pages: Vec<Option<&str>> = outcomes
        .iter()
        .filter(|o| o.action.as_ref().is_some_and(|a| a.id == "page"))
        .map(|o| o.skip_reason.map(|r| r.as_str()))
        .collect();
    assert_eq!(pages, [None, None, Some("paused")]);
}

/// `rig` with its responder changed by `change`.
fn with_responder(rig: Rig, change: impl FnOnce(Responder) -> Responder) -> Rig {
    let Rig {
        responder,
        state,
        publisher,
        calls,
        gate,
    } = rig;
    Rig {
        responder: change(responder),
        state,
        publisher,
        calls,
        gate,
    }
}

fn with_records(rig: Rig) -> (Rig, Arc<MemoryRecords>) {
    let records = Arc::new(MemoryRecords::default());
    let rig = with_responder(rig, |responder| responder.with_records(records.clone()));
    (rig, records)
}

#[tokio::test]
async fn every_decision_is_recorded_with_what_became_of_each_action() {
    let (rig, records) = with_records(rig(r#"
run contains {"id": "look", "uses": "test.ok", "args": {"v": 1}, "commit": [{"key": "n", "path": "$.n"}]}
run contains {"id": "page", "uses": "test.ok", "args": {"v": input.called[0].result.n}} if count(input.called) == 1
"#));
    let summary = handle(&rig, &change("r1", 3)).await.unwrap();
    assert_eq!(summary.actions, 2);
    handle(&rig, b"{not json").await.unwrap();
    let outcomes = rig.publisher.take();

    let objects = records.objects();
    assert_eq!(objects.len(), 2, "one object per invocation: {:?}", objects.keys());
    let all = records.records();
    let decided = all.iter().find(|r| r.result == DecisionResult::Decided).unwrap();
    let value = serde_json::to_value(decided).unwrap();
    common::assert_valid_record(&value);
    assert!(
        value.to_string().contains(r#""path":"$.n""#),
        "a commit with its path: {value:#}"
    );
    assert_eq!(value["source"]["change_key"], "matano/r1/3");
    assert_eq!(
        value["payload"]["updated_alert"]["id"], "r1",
        "the payload is kept to decide it again"
    );
    let digest = rig.responder.decider().policies().digest().to_string();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{digest}");
    assert_eq!(decided.bundle_digest, digest);
    assert_eq!(decided.engine, "vm");
    let alert = &decided.alerts[0];
    assert_eq!(alert.stop.reason, "completed");
    assert_eq!(alert.rounds, 2);
    let rounds: Vec<(&str, u32, Status)> = alert.actions.iter().map(|a| (a.id.as_str(), a.seq, a.status)).collect();
    assert_eq!(rounds, [("look", 0, Status::Succeeded), ("page", 1, Status::Succeeded)]);
    assert_eq!(alert.actions[1].args["v"], json!(1), "args as the round computed them");
    assert_eq!(alert.actions[0].result, Some(json!({"n": 1, "v": 1})));
    // Outcomes name the policies that decided them.
    for outcome in outcomes.iter().filter(|o| o.action.is_some()) {
        assert_eq!(outcome.bundle_digest.as_deref(), Some(digest.as_str()));
    }

    let rejected = all.iter().find(|r| r.result == DecisionResult::Rejected).unwrap();
    common::assert_valid_record(&serde_json::to_value(rejected).unwrap());
    assert_eq!(rejected.original.as_deref(), Some("{not json"));
    assert!(
        rejected.error.as_deref().unwrap().contains("not JSON"),
        "{:?}",
        rejected.error
    );
}

#[tokio::test]
async fn records_that_cannot_be_written_fail_the_invocation_and_its_retry_overwrites() {
    let (rig, records) = with_records(rig(r#"run contains {"id": "page", "uses": "test.ok"}"#));
    // Through SNS: its timestamp dates the object, whatever the hour now.
    let payload = via_sns(&change("r2", 1), "sns-r2").into_bytes();
    records.set_failing(true);
    let err = handle(&rig, &payload).await.unwrap_err();
    assert!(matches!(err, HandleError::Records(_)), "{err}");
    assert!(err.to_string().contains("decision record"), "{err}");
    records.set_failing(false);
    // Lambda's retry: the action replays from the state table, the record is written.
    let again = handle(&rig, &payload).await.unwrap();
    assert_eq!((again.actions, again.replayed), (1, 1));
    assert_eq!(rig.calls.of("page"), 1);
    handle(&rig, &payload).await.unwrap();
    let objects = records.objects();
    assert_eq!(
        objects.len(),
        1,
        "a retry of the same event overwrites its object: {:?}",
        objects.keys()
    );
    let record = &records.records()[0];
    assert!(record.alerts[0].actions[0].replay);
}

#[tokio::test]
async fn a_batch_whose_records_cannot_be_written_is_retried_whole() {
    let (rig, records) = with_records(rig(r#"run contains {"id": "page", "uses": "test.ok"}"#));
    records.set_failing(true);
    let bodies = [
        via_sns(&change("r3", 1), "sns-1"),
        via_sns(&change("r4", 1), "sns-2"),
        "{not json".to_string(),
    ];
    let handled = rig.responder.handle_batch(sqs_batch(&bodies), None, 2, None).await;
    assert!(handled.records_failed);
    assert_eq!(failures(&handled), ["m0", "m1", "m2"], "{:?}", handled.causes);
    records.set_failing(false);
    let handled = rig
        .responder
        .handle_batch(sqs_batch(&bodies), None, 2, Some("req-2"))
        .await;
    assert!(failures(&handled).is_empty(), "{:?}", handled.causes);
    assert_eq!(rig.calls.of("page"), 2, "each alert's action ran once");
    let kept = records.records();
    assert_eq!(kept.len(), 3);
    assert!(kept.iter().all(|r| r.request_id.as_deref() == Some("req-2")));
    let keys: Vec<String> = records.objects().keys().cloned().collect();
    assert!(
        keys[0].starts_with("dt=2026-11-29/hour=12/"),
        "dated by the SNS timestamp: {keys:?}"
    );
}

#[tokio::test]
async fn a_publish_failure_still_leaves_the_decision_on_record() {
    let (rig, records) = with_records(rig(r#"run contains {"id": "page", "uses": "test.ok"}"#));
    rig.publisher.set_failing(true);
    let err = handle(&rig, via_sns(&change("r5", 1), "sns-5").as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(err, HandleError::Publish(_)), "{err}");
    let kept = records.records();
    assert_eq!(kept.len(), 1, "the action ran: its decision is on record");
    assert_eq!(kept[0].alerts[0].actions[0].status, Status::Succeeded);
}

#[tokio::test]
async fn the_shadow_diverges_only_where_it_decides_otherwise() {
    let (rig, records) = with_records(rig(r#"run contains {"id": "page", "uses": "test.ok"}"#));
    let shadow = |actions: &str| policy_set(ALERT_POLICY, actions);
    // The same policies: no divergence; the shadow sees the live result.
    rig.responder.decider().swap_shadow(Some(Arc::new(shadow(
        r#"run contains {"id": "page", "uses": "test.ok"}"#,
    ))));
    let summary = handle(&rig, via_sns(&change("s1", 1), "sns-s1").as_bytes())
        .await
        .unwrap();
    assert_eq!(summary.shadow_divergences, 0);
    // A payload no alert policy of either side handles: not a divergence either.
    let other = rig
        .responder
        .handle(ingest_document(br#"{"finding": 1}"#, &"other".into()), None)
        .await
        .unwrap();
    assert_eq!(other.shadow_divergences, 0);
    // Another action: a divergence, and nothing of the shadow ran.
    rig.responder.decider().swap_shadow(Some(Arc::new(shadow(
        r#"run contains {"id": "page", "uses": "test.ok"}
run contains {"id": "escalate", "uses": "test.ok"} if input.called[_].result.n == 1"#,
    ))));
    let summary = handle(&rig, via_sns(&change("s2", 1), "sns-s2").as_bytes())
        .await
        .unwrap();
    assert_eq!(summary.shadow_divergences, 1);
    assert_eq!(rig.calls.of("escalate"), 0, "a shadow never acts");
    let record = records
        .records()
        .into_iter()
        .find(|r| r.source.change_key.as_deref() == Some("matano/s2/1"))
        .unwrap();
    let shadow = record.shadow.unwrap();
    assert!(shadow.diverged);
    let ids: Vec<&str> = shadow.divergence.actions_added.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        ids,
        ["escalate"],
        "it saw page's live result (n == 1) in its next round"
    );
    let page = shadow.alerts[0].actions.iter().find(|a| a.id == "page").unwrap();
    assert_eq!(page.status, Status::Succeeded);
}

#[tokio::test]
async fn a_replay_sees_recorded_results_and_commits_what_the_candidate_says() {
    let (rig, records) = with_records(rig(
        r#"run contains {"id": "look", "uses": "test.ok", "args": {"v": 7}}"#,
    ));
    handle(&rig, via_sns(&change("p1", 1), "sns-p1").as_bytes())
        .await
        .unwrap();
    let line = serde_json::to_string(&records.records()[0]).unwrap();
    let chunk = alert_responder::replay::input::Chunk {
        origin: "records.jsonl".into(),
        line: 1,
        text: line,
    };
    let alert_responder::replay::input::Decoded::Changes(changes) =
        alert_responder::replay::input::decode(&chunk, &"matano".into()).unwrap()
    else {
        panic!("a change");
    };
    // The candidate commits the recorded result's `v` and, seeing it, asks for more.
    let candidate = policy_set(
        ALERT_POLICY,
        r#"run contains {"id": "look", "uses": "test.ok", "args": {"v": 7}, "commit": [{"key": "seen", "path": "v"}]}
run contains {"id": "follow", "uses": "test.ok"} if input.alert.attrs[_].key == "seen"
"#,
    );
    let replayer = alert_responder::replay::Replayer {
        decider: rig.responder.decider(),
        candidate: &candidate,
        baseline: None,
    };
    let compared = replayer.replay(1, &changes[0], None).await.unwrap();
    let look = &compared.candidate.alerts[0].actions[0];
    assert_eq!(
        (look.id.as_str(), look.status),
        ("look", Status::Succeeded),
        "the recorded result"
    );
    assert_eq!(look.commits[0].value, json!(7), "committed by the candidate's rule");
    let added: Vec<&str> = compared
        .divergence
        .actions_added
        .iter()
        .map(|a| a.id.as_str())
        .collect();
    assert_eq!(added, ["follow"]);
    assert_eq!(rig.calls.of("look"), 1, "a replay runs nothing");
    assert_eq!(rig.calls.of("follow"), 0);
}

#[tokio::test]
async fn a_record_says_which_action_stopped_the_workflow_and_why() {
    let (rig, records) = with_records(rig(r#"run contains {"id": "flaky", "uses": "test.flaky"}"#));
    rig.calls.flaky_failures.store(1, Ordering::SeqCst);
    let err = handle(&rig, via_sns(&change("w1", 1), "sns-w1").as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(err, HandleError::Retry { .. }), "{err}");
    let stop = records.records()[0].alerts[0].stop.clone();
    assert_eq!(stop.reason, "retry");
    assert_eq!(stop.action_id.as_deref(), Some("flaky"));
    assert!(stop.error.as_deref().is_some_and(|e| e.contains("503")), "{stop:?}");
}

/// True only after ~10^8 steps: an evaluation no invocation deadline of a
/// test lets finish (and past the 2 s policy timeout were it let run).
const SLOW: &str = r#"slow if {
    some i in numbers.range(1, 10000)
    some j in numbers.range(1, 10000)
    i * j < 0
}"#;

/// An alert policy that runs into the deadline for the change titled "slow".
fn slow_alert_policy() -> String {
    format!(
        r#"package alert.matano
{SLOW}
alert contains {{"title": input.updated_alert.title, "severity": "high", "namespace": "ns"}} if {{
    input.updated_alert.title != "slow"
}}
alert contains {{"title": "slow", "severity": "high", "namespace": "ns"}} if {{
    input.updated_alert.title == "slow"
    not slow
}}
"#
    )
}

/// A batch decides the records delivered most often first: one left over
/// by earlier batches' deadlines is not left over again.
#[tokio::test]
async fn records_delivered_most_often_are_decided_first() {
    let rig = rig(r#"run contains {"id": "page", "uses": "test.ok"}"#);
    let bodies = [
        via_sns(&change("o1", 1), "s1"),
        via_sns(&change("o2", 1), "s2"),
        via_sns(&change("o3", 1), "s3"),
    ];
    let mut records = sqs_batch(&bodies);
    records[1].deliveries = 4;
    records[2].deliveries = 2;
    let handled = rig.responder.handle_batch(records, None, 1, None).await;
    assert!(failures(&handled).is_empty(), "{:?}", handled.causes);
    let decided: Vec<String> = rig
        .publisher
        .take()
        .iter()
        .filter_map(|o| o.alert.as_ref()?.matano_alert_id.clone())
        .collect();
    assert_eq!(decided, ["o2", "o3", "o1"]);
}

/// A publish still running when the invocation must answer (SNS hung or
/// throttled) does not time the invocation out: it answers in time, with
/// every record whose outcomes were not known to go out listed for a retry.
#[tokio::test(start_paused = true)]
async fn publishing_that_runs_into_the_deadline_lists_its_records_in_time() {
    let rig = rig(r#"run contains {"id": "page", "uses": "test.ok"}"#);
    rig.publisher.set_stalled(true);
    let bodies = [via_sns(&change("p1", 1), "s1"), via_sns(&change("p2", 1), "s2")];
    let deadline = Instant::now() + Duration::from_millis(500);
    let handling = rig.responder.handle_batch(sqs_batch(&bodies), Some(deadline), 2, None);
    // Bounded, so that a publish nothing stops fails the test, not hangs it.
    let handled = tokio::time::timeout(Duration::from_secs(60), handling)
        .await
        .expect("answered");
    // Answered by Lambda's deadline less the answer's time: the decisions'
    // deadline is 1.5 s before Lambda's, publishing may take 1.25 s of that.
    let answered = tokio::time::Instant::now();
    assert!(
        answered.into_std() <= deadline + Duration::from_millis(1260),
        "answered too late"
    );
    assert!(
        answered.into_std() >= deadline + Duration::from_millis(1200),
        "gave up publishing early"
    );
    assert_eq!(failures(&handled), ["m0", "m1"], "{:?}", handled.causes);
    assert!(
        handled.causes[0]
            .1
            .contains("did not finish before the invocation's deadline"),
        "{:?}",
        handled.causes
    );
    assert_eq!(handled.summary.outcomes, 0);
    // An SNS invocation fails in time the same way, so Lambda retries it.
    let deadline = Instant::now() + Duration::from_millis(500);
    let handling = rig
        .responder
        .handle(ingest_document(&change("p3", 1), &"matano".into()), Some(deadline));
    let err = tokio::time::timeout(Duration::from_secs(60), handling)
        .await
        .expect("answered")
        .unwrap_err();
    assert!(matches!(err, HandleError::Publish(_)), "{err}");
    assert!(tokio::time::Instant::now().into_std() <= deadline + Duration::from_millis(1260));
}

#[tokio::test]
async fn a_record_whose_policy_runs_into_the_deadline_is_retried_not_lost() {
    let state = Arc::new(MemoryState::with_virtual_clock(1_700_000_000));
    let rig = rig_of(
        &slow_alert_policy(),
        r#"run contains {"id": "page", "uses": "test.ok"}"#,
        state,
        Config::default(),
    );
    let mut slow: Value = serde_json::from_slice(&change("d2", 1)).unwrap();
    slow["updated_alert"]["title"] = json!("slow");
    let bodies = [
        via_sns(&change("d1", 1), "s1"),
        via_sns(slow.to_string().as_bytes(), "s2"),
    ];
    let deadline = Some(Instant::now() + Duration::from_millis(800));
    // One at a time: the fast record is decided before the deadline.
    let handled = rig.responder.handle_batch(sqs_batch(&bodies), deadline, 1, None).await;
    assert_eq!(failures(&handled), ["m1"], "{:?}", handled.causes);
    assert_eq!(handled.summary.deadline_retries, 1);
    assert!(
        handled.causes[0].1.contains("stopped by the invocation's deadline"),
        "{:?}",
        handled.causes
    );
    // No policy_error outcome stands for the slow change: it is decided again.
    let outcomes = rig.publisher.take();
    assert!(
        outcomes.iter().all(|o| o.event_type.as_str() != "policy_error"),
        "{outcomes:#?}"
    );
    assert_eq!(by_action(&outcomes)["page"], (Status::Succeeded, false));

    // The same through an SNS invocation: it fails, so Lambda retries it.
    let err = rig
        .responder
        .handle(
            ingest_document(&slow.to_string().into_bytes(), &"matano".into()),
            Some(Instant::now() + Duration::from_millis(400)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, HandleError::Deadline(_)), "{err}");
    assert!(err.to_string().contains("data.alert.matano.alert"), "{err}");
    assert!(rig.publisher.take().is_empty());
}

/// Runs `first`, then, seeing it, evaluates a round the deadline stops.
fn first_then_slow() -> String {
    format!(
        r#"{SLOW}
run contains {{"id": "first", "uses": "test.ok"}}
run contains {{"id": "second", "uses": "test.ok"}} if {{
    some called in input.called
    called.id == "first"
    not slow
}}"#
    )
}

#[tokio::test]
async fn an_action_round_stopped_by_the_deadline_publishes_what_ran_and_is_retried() {
    let rig = rig(&first_then_slow());
    for attempt in 0..2 {
        let deadline = Some(Instant::now() + Duration::from_millis(800));
        let (summary, result) = rig
            .responder
            .handle_invocation_counted(ingest_document(&change("d3", 1), &"matano".into()), deadline, None)
            .await;
        let err = result.unwrap_err();
        assert!(matches!(err, HandleError::Deadline(_)), "{err}");
        assert!(err.to_string().contains("data.action.run"), "{err}");
        // The failed invocation's metrics still count what it did.
        assert_eq!(
            (
                summary.deadline_retries,
                summary.outcomes,
                summary.actions,
                summary.replayed
            ),
            (1, 1, 1, attempt),
            "{summary:?}"
        );
        // What ran is published (replayed on the retry); no policy_error stands.
        let outcomes = rig.publisher.take();
        assert_eq!(outcomes.len(), 1, "{outcomes:#?}");
        assert_eq!(by_action(&outcomes)["first"], (Status::Succeeded, attempt == 1));
    }
    assert_eq!(rig.calls.of("first"), 1, "replayed, not run again");
    assert_eq!(rig.calls.of("second"), 0);
}

#[tokio::test]
async fn without_a_state_table_an_action_round_stopped_by_the_deadline_is_final() {
    // A retry would run `first` again: the policy error stands, as a
    // transient action failure's does without the state table.
    let calls = Arc::new(Calls::default());
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let mut registry = Registry::default();
    registry.register(Fake {
        uses: "test.ok",
        calls: calls.clone(),
        gate,
    });
    let publisher = Arc::new(MemoryPublisher::default());
    let decider = Decider::new(
        Arc::new(policy_set(ALERT_POLICY, &first_then_slow())),
        registry,
        app::decide_settings(&Config::default()),
        SecretResolver::literals_only(),
        None,
    );
    let responder = Responder::new(decider, publisher.clone());
    let deadline = Some(Instant::now() + Duration::from_millis(800));
    let summary = responder
        .handle(ingest_document(&change("d4", 1), &"matano".into()), deadline)
        .await
        .unwrap();
    assert_eq!((summary.policy_errors, summary.deadline_retries), (1, 0));
    let outcomes = publisher.take();
    let error = outcomes
        .iter()
        .find(|o| o.event_type.as_str() == "policy_error")
        .and_then(|o| o.error.clone())
        .unwrap_or_default();
    assert!(error.contains("stopped by the invocation's deadline"), "{outcomes:#?}");
    assert_eq!(calls.of("first"), 1);
}

#[tokio::test]
async fn records_are_not_started_when_the_invocation_is_about_to_end() {
    let rig = rig(r#"run contains {"id": "page", "uses": "test.ok"}"#);
    let bodies = [via_sns(&change("t1", 1), "s1"), via_sns(&change("t2", 1), "s2")];
    let deadline = Some(Instant::now() + Duration::from_millis(100));
    let handled = rig.responder.handle_batch(sqs_batch(&bodies), deadline, 2, None).await;
    assert_eq!(failures(&handled), ["m0", "m1"], "{:?}", handled.causes);
    assert!(
        handled.causes[0].1.contains("too little time left"),
        "{:?}",
        handled.causes
    );
    assert_eq!(handled.summary.deadline_retries, 2);
    assert_eq!(rig.calls.of("page"), 0);
    assert!(rig.publisher.take().is_empty());
    // With time, the retry decides them.
    let again = rig.responder.handle_batch(sqs_batch(&bodies), None, 2, None).await;
    assert!(failures(&again).is_empty(), "{:?}", again.causes);
    assert_eq!(rig.calls.of("page"), 2);
}

#[tokio::test]
async fn an_outcome_refused_for_good_retries_only_its_own_record() {
    let rig = rig(r#"run contains {"id": sprintf("page-%s", [input.alert.title]), "uses": "test.ok"}"#);
    let titled = |id: &str, title: &str| {
        let mut change: Value = serde_json::from_slice(&change(id, 1)).unwrap();
        change["updated_alert"]["title"] = json!(title);
        via_sns(change.to_string().as_bytes(), id)
    };
    let bodies = [titled("p1", "a"), titled("p2", "b"), titled("p3", "c")];
    rig.publisher.refuse_action(Some("page-b"));
    let handled = rig.responder.handle_batch(sqs_batch(&bodies), None, 3, None).await;
    assert_eq!(failures(&handled), ["m1"], "{:?}", handled.causes);
    assert_eq!(handled.summary.outcomes, 2);
    let published: Vec<String> = rig
        .publisher
        .take()
        .iter()
        .map(|o| o.action.as_ref().unwrap().id.clone())
        .collect();
    assert_eq!(published, ["page-a", "page-c"]);
    // The retry of that record replays its action and publishes it.
    rig.publisher.refuse_action(None);
    let again = rig
        .responder
        .handle_batch(sqs_batch(&bodies[1..2]), None, 3, None)
        .await;
    assert!(failures(&again).is_empty(), "{:?}", again.causes);
    assert_eq!(rig.calls.of("page-b"), 1);
}
