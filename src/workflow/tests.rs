//! The round loop on fake actions: chaining, abort, force, commits, limits,
//! concurrency, redaction, the policy's input.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::input::{called_value, RoundInput};
use super::{Limits, Stop, Workflow, WorkflowReport};
use crate::action::{Action, ActionCall, ActionError, ArgKind, ArgSpec, Registry};
use crate::ingest::ingest_document;
use crate::model::{ActionRecord, Alert, Attr, Status};
use crate::policy::{to_policy_value, PolicyFile, PolicySet};
use crate::secrets::SecretResolver;

/// `test.echo` returns its args; `test.fail` fails with a result;
/// `test.barrier` waits until two of its kind run at once.
struct Fake {
    uses: &'static str,
    calls: Arc<AtomicUsize>,
    barrier: Arc<tokio::sync::Barrier>,
}

const ANY_ARGS: &[ArgSpec] = &[
    ArgSpec::optional("v", ArgKind::Any, ""),
    ArgSpec::optional("secret_token", ArgKind::Any, ""),
    ArgSpec::optional("seen", ArgKind::Any, ""),
];

impl Action for Fake {
    fn uses(&self) -> &'static str {
        self.uses
    }
    fn args(&self) -> &'static [ArgSpec] {
        ANY_ARGS
    }
    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            match self.uses {
                "test.fail" => Err(ActionError::Failed {
                    transient: false,
                    message: "boom".into(),
                    result: Some(json!({"status": 500})),
                }),
                "test.barrier" => {
                    self.barrier.wait().await;
                    Ok(json!({"ok": true}))
                }
                _ => Ok(json!({"args": call.args, "nested": {"country": "NL", "list": [1, 2]}})),
            }
        })
    }
}

struct Harness {
    policies: PolicySet,
    registry: Registry,
    calls: Arc<AtomicUsize>,
    limits: Limits,
    env: Value,
    guards: crate::workflow::Guards,
}

fn harness(action_policy: &str) -> Harness {
    let policies = PolicySet::compile(
        vec![
            PolicyFile {
                name: "alert.rego".into(),
                text: "package alert.matano\nalert contains {\"title\": input.updated_alert.title, \"severity\": input.updated_alert.severity} if true\n".into(),
            },
            PolicyFile {
                name: "action.rego".into(),
                text: format!("package action\n{action_policy}\n"),
            },
        ],
        Duration::from_secs(2),
    )
    .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let mut registry = Registry::default();
    for uses in ["test.echo", "test.fail", "test.barrier"] {
        registry.register(Fake {
            uses,
            calls: calls.clone(),
            barrier: barrier.clone(),
        });
    }
    Harness {
        policies,
        registry,
        calls,
        limits: Limits {
            max_rounds: 32,
            max_actions: 64,
            dry_run: false,
        },
        env: json!({"TEAM": "secops"}),
        guards: crate::workflow::Guards::new(Vec::new(), None, Duration::ZERO),
    }
}

impl Harness {
    async fn run(&self) -> WorkflowReport {
        let (alert, workflow_env) = self.alert();
        let secrets = SecretResolver::literals_only();
        let workflow = Workflow::new(
            &self.policies,
            &self.limits,
            &workflow_env,
            crate::workflow::Acting {
                registry: &self.registry,
                secrets: &secrets,
                state: None,
                lease: Duration::from_secs(60),
                guards: &self.guards,
                recorded: None,
            },
        );
        let payload = to_policy_value(&alert.data);
        workflow.run(alert, payload, None).await
    }

    fn alert(&self) -> (Alert, Value) {
        let envelope = ingest_document(
            include_bytes!("../../tests/fixtures/matano_alert_change_v1.json"),
            &"matano".into(),
        )
        .pop()
        .unwrap()
        .unwrap();
        let draft = self
            .policies
            .eval_alerts("matano", &envelope.payload, None)
            .unwrap()
            .pop()
            .unwrap();
        (Alert::from_draft(draft, &envelope), self.env.clone())
    }
}

/// The entry of `input.called` for a run, as JSON: what
/// [`called_value`] must equal once converted.
fn called_entry(record: &ActionRecord) -> Value {
    json!({
        "id": record.id,
        "uses": record.uses,
        "args": record.args,
        "seq": record.seq,
        "status": record.status.as_str(),
        "result": record.result,
        "error": record.error,
        "name": record.name,
        "force": record.force,
        "abort": record.abort,
        "commit": record.commits,
        "skip_reason": record.skip_reason.map(|r| r.as_str()),
        "budget": record.budget,
    })
}

fn ids(report: &WorkflowReport) -> Vec<(u32, &str, Status)> {
    report
        .actions
        .iter()
        .map(|a| (a.seq, a.id.as_str(), a.status))
        .collect()
}

#[tokio::test]
async fn rounds_chain_on_results_and_each_id_runs_once() {
    let h = harness(
        r#"
run contains {"id": "enrich", "uses": "test.echo", "args": {"v": 1}}
run contains {"id": "act", "uses": "test.echo", "args": {"v": c.result.nested.country}} if {
some c in input.called
c.id == "enrich"
}
"#,
    );
    let report = h.run().await;
    assert_eq!(
        ids(&report),
        vec![(0, "enrich", Status::Succeeded), (1, "act", Status::Succeeded)]
    );
    assert_eq!(report.actions[1].args["v"], "NL");
    assert!(matches!(report.stop, Stop::Completed), "{:?}", report.stop);
    assert_eq!(report.rounds, 2);
    assert_eq!(h.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn abort_stops_after_its_round() {
    let h = harness(
        r#"
run contains {"id": "first", "uses": "test.echo", "abort": true}
run contains {"id": "second", "uses": "test.echo"} if count(input.called) > 0
"#,
    );
    let report = h.run().await;
    assert_eq!(ids(&report), vec![(0, "first", Status::Succeeded)]);
    assert!(matches!(&report.stop, Stop::Aborted { action_id } if action_id == "first"));
    assert_eq!(h.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn failure_stops_the_workflow_unless_forced() {
    let policy = |force: bool| {
        format!(
            r#"
run contains {{"id": "lookup", "uses": "test.fail", "force": {force}}}
run contains {{"id": "next", "uses": "test.echo", "args": {{"v": c.result.status}}}} if {{
some c in input.called
c.id == "lookup"
c.status == "failed"
c.error == "boom"
}}
"#
        )
    };
    let stopped = harness(&policy(false)).run().await;
    assert_eq!(ids(&stopped), vec![(0, "lookup", Status::Failed)]);
    assert!(matches!(&stopped.stop, Stop::ActionFailed { action_id } if action_id == "lookup"));
    assert_eq!(stopped.actions[0].result, Some(json!({"status": 500})));

    let forced = harness(&policy(true)).run().await;
    assert_eq!(
        ids(&forced),
        vec![(0, "lookup", Status::Failed), (1, "next", Status::Succeeded)]
    );
    assert_eq!(forced.actions[1].args["v"], 500);
    assert!(matches!(forced.stop, Stop::Completed));
}

#[tokio::test]
async fn commits_write_attrs_seen_by_later_rounds() {
    let h = harness(
        r#"
run contains {"id": "enrich", "uses": "test.echo", "commit": [
{"key": "country", "path": "$.nested.country"},
{"key": "numbers", "path": "$.nested.list[*]"},
{"key": "fixed", "value": {"a": 1}, "persist": true, "ttl": 3600},
{"key": "absent", "path": "$.nope"}
]}
run contains {"id": "use", "uses": "test.echo", "args": {"v": a.value}} if {
some a in input.alert.attrs
a.key == "country"
}
"#,
    );
    let report = h.run().await;
    assert_eq!(
        ids(&report),
        vec![(0, "enrich", Status::Succeeded), (1, "use", Status::Succeeded)]
    );
    assert_eq!(report.actions[1].args["v"], "NL");
    let attr = |key: &str| report.alert.attrs.iter().find(|a| a.key == key).cloned();
    assert_eq!(attr("country").unwrap().value, json!("NL"));
    assert_eq!(attr("numbers").unwrap().value, json!([1, 2]));
    let fixed = attr("fixed").unwrap();
    assert_eq!(
        (fixed.value, fixed.persist, fixed.ttl),
        (json!({"a": 1}), true, Some(3600))
    );
    assert!(attr("absent").is_none());
    assert_eq!(report.actions[0].commits.len(), 3);
}

#[tokio::test]
async fn max_rounds_is_reported_never_silent() {
    let mut h = harness(r#"run contains {"id": sprintf("step_%d", [input.seq]), "uses": "test.echo"}"#);
    h.limits.max_rounds = 3;
    let report = h.run().await;
    assert_eq!(
        ids(&report),
        vec![
            (0, "step_0", Status::Succeeded),
            (1, "step_1", Status::Succeeded),
            (2, "step_2", Status::Succeeded),
            (3, "step_3", Status::Skipped)
        ]
    );
    assert!(report.actions[3].error.as_ref().unwrap().contains("MAX_ROUNDS (3)"));
    assert!(matches!(report.stop, Stop::MaxRounds { rounds: 3 }));
    assert_eq!(h.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn max_actions_skips_the_excess() {
    let mut h =
        harness(r#"run contains {"id": sprintf("a%d", [i]), "uses": "test.echo"} if some i in numbers.range(1, 5)"#);
    h.limits.max_actions = 3;
    let report = h.run().await;
    let statuses: Vec<Status> = report.actions.iter().map(|a| a.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == Status::Succeeded).count(), 3);
    assert_eq!(statuses.iter().filter(|s| **s == Status::Skipped).count(), 2);
    assert_eq!(h.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn actions_of_a_round_run_concurrently() {
    // Each waits for the other at a barrier: sequential execution never finishes.
    let h = harness(
        r#"
run contains {"id": "left", "uses": "test.barrier"}
run contains {"id": "right", "uses": "test.barrier"}
"#,
    );
    let report = tokio::time::timeout(Duration::from_secs(10), h.run())
        .await
        .expect("actions of one round did not run concurrently");
    assert_eq!(
        ids(&report),
        vec![(0, "left", Status::Succeeded), (0, "right", Status::Succeeded)]
    );
}

#[tokio::test]
async fn env_holds_only_allow_listed_values_and_secrets_are_redacted_in_called() {
    let h = harness(
        r#"
run contains {"id": "env", "uses": "test.echo", "args": {"v": input.env}}
run contains {"id": "leak", "uses": "test.echo", "args": {"v": input.env.AWS_SECRET_ACCESS_KEY}}
run contains {"id": "secret", "uses": "test.echo", "args": {"secret_token": "tok-123"}}
run contains {"id": "peek", "uses": "test.echo", "args": {"seen": c.args.secret_token}} if {
some c in input.called
c.id == "secret"
}
"#,
    );
    let report = h.run().await;
    let ids: Vec<&str> = report.actions.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, vec!["env", "secret", "peek"]);
    assert_eq!(report.actions[0].args["v"], json!({"TEAM": "secops"}));
    assert_eq!(report.actions[1].args["secret_token"], crate::secrets::REDACTED);
    assert_eq!(report.actions[2].args["seen"], crate::secrets::REDACTED);
    let text = serde_json::to_string(&report.actions).unwrap();
    assert!(!text.contains("tok-123"), "{text}");
}

/// An unknown `uses` stops the workflow as a policy error naming the
/// entry, even with `force` (AlertChain's "action not found"), before any
/// action of the round runs.
#[tokio::test]
async fn unknown_action_is_a_policy_error_naming_the_entry() {
    let h = harness(
        r#"
run contains {"id": "page", "uses": "pager.page", "force": true}
run contains {"id": "fine", "uses": "test.echo"}
"#,
    );
    let report = h.run().await;
    assert!(report.actions.is_empty());
    assert_eq!(h.calls.load(Ordering::SeqCst), 0);
    match report.stop {
        Stop::PolicyError { error } => assert!(
            error
                .to_string()
                .contains("entry \"page\": unknown action \"pager.page\""),
            "{error}"
        ),
        other => panic!("unexpected stop {other:?}"),
    }
}

#[tokio::test]
async fn an_argument_the_action_refuses_fails_naming_the_entry() {
    let h = harness(r#"run contains {"id": "mypost", "uses": "test.echo", "args": {"bogus": 1}} if input.seq == 0"#);
    let report = h.run().await;
    assert_eq!(h.calls.load(Ordering::SeqCst), 0);
    let error = report.actions[0].error.as_deref().unwrap_or_default();
    assert!(
        error.starts_with(r#"run entry "mypost" (test.echo): invalid request: "#) && error.contains("`bogus`"),
        "{error}"
    );
}

#[tokio::test]
async fn conflicting_entries_under_one_id_are_a_policy_error() {
    let h = harness(r#"run contains {"id": "x", "uses": "test.echo", "args": {"v": i}} if some i in [1, 2]"#);
    let report = h.run().await;
    assert!(report.actions.is_empty());
    match report.stop {
        Stop::PolicyError { error } => assert!(error.to_string().contains("share id \"x\""), "{error}"),
        other => panic!("unexpected stop {other:?}"),
    }
}

#[tokio::test]
async fn policy_error_mid_workflow_keeps_earlier_records() {
    let h = harness(
        r#"
run contains {"id": "first", "uses": "test.echo"}
run contains {"id": "bad"} if count(input.called) > 0
"#,
    );
    let report = h.run().await;
    assert_eq!(ids(&report), vec![(0, "first", Status::Succeeded)]);
    assert!(
        matches!(report.stop, Stop::PolicyError { ref error } if error.to_string().contains("no `uses`, `commit` or `abort`"))
    );
}

#[tokio::test]
async fn dry_run_executes_nothing_but_continues_the_rounds() {
    let mut h = harness(
        r#"
run contains {"id": "a", "uses": "test.echo"}
run contains {"id": "b", "uses": "test.fail"} if count(input.called) > 0
"#,
    );
    h.limits.dry_run = true;
    let report = h.run().await;
    assert_eq!(ids(&report), vec![(0, "a", Status::DryRun), (1, "b", Status::DryRun)]);
    assert_eq!(h.calls.load(Ordering::SeqCst), 0);
}

/// The input is built from parts converted once per alert; it must be
/// exactly the document `{alert, env, seq, called}` converted whole, in
/// every round, also after a commit changed the attributes.
#[tokio::test]
async fn round_input_equals_the_whole_document_converted() {
    let h = harness("run contains {\"id\": \"a\", \"uses\": \"test.echo\", \"args\": {}, \"commit\": [{\"key\": \"c\", \"path\": \"$.nested.country\"}]} if true");
    let report = h.run().await;
    assert_eq!(report.actions.len(), 1);
    let (mut alert, env) = h.alert();
    let whole = |alert: &Alert, seq: u32, called: &[ActionRecord]| {
        let called: Vec<Value> = called.iter().map(called_entry).collect();
        regorus::Value::from(json!({"alert": alert, "env": env, "seq": seq, "called": called}))
    };
    let mut fixed = RoundInput::new(to_policy_value(&alert.data), to_policy_value(&env), false);
    // Round 0 saw no calls; round 1 converts only the new entries and
    // sees the committed attribute.
    assert_eq!(fixed.input(&mut alert, 0, &[]), whole(&alert, 0, &[]));
    let committed = |value: Value| Attr {
        id: Some("c-id".to_string()),
        ..Attr::new("c", value)
    };
    alert.upsert_attr(committed(json!("NL")));
    assert_eq!(
        fixed.input(&mut alert, 1, &report.actions),
        whole(&alert, 1, &report.actions)
    );
    alert.upsert_attr(committed(json!("BE")));
    // A failed run: an error, no result.
    let mut records = report.actions.clone();
    records.push(ActionRecord {
        id: "b".into(),
        status: Status::Failed,
        result: None,
        error: Some("HTTP 503".into()),
        ..records[0].clone()
    });
    let round_2 = fixed.input(&mut alert, 2, &records);
    assert_eq!(round_2, whole(&alert, 2, &records));
    assert_eq!(round_2["alert"]["attrs"].as_array().unwrap().len(), alert.attrs.len());
    assert!(alert.data.is_object(), "the payload is put back");
}

#[test]
fn called_entries_convert_like_their_json() {
    let record = ActionRecord {
        id: "a".into(),
        uses: "u".into(),
        name: "lookup".into(),
        force: true,
        abort: false,
        args: serde_json::Map::new(),
        seq: 2,
        status: Status::Failed,
        result: Some(json!({"status": 500})),
        error: Some("HTTP 500".into()),
        outcome_id: "o".into(),
        commits: vec![crate::model::Commit {
            id: Some("k-id".into()),
            key: "k".into(),
            value: json!(1),
            kind: None,
            persist: false,
            ttl: None,
            op: crate::model::CommitOp::Set,
            path: Some("$.body.n".into()),
        }],
        started_at: chrono::DateTime::UNIX_EPOCH,
        duration_ms: 0,
        replay: false,
        skip_reason: Some(crate::model::SkipReason::Budget),
        budget: Some("uses=vt.* (4 per 60 s)".into()),
    };
    assert_eq!(called_value(&record), to_policy_value(&called_entry(&record)));
    let reason = regorus::Value::from("skip_reason");
    assert_eq!(called_value(&record)[&reason], regorus::Value::from("budget"));
    // A commit carries its path, as AlertChain's do.
    let commit = &called_value(&record)[&regorus::Value::from("commit")][0];
    assert_eq!(commit[&regorus::Value::from("path")], regorus::Value::from("$.body.n"));
    let budget = regorus::Value::from("budget");
    assert_eq!(
        called_value(&record)[&budget],
        regorus::Value::from("uses=vt.* (4 per 60 s)")
    );
}

/// `type` is what a policy calls an attribute; only `op: add` adds. (A
/// commit that declared `type: counter` used to be summed.) A set without
/// an id adds an attribute (one key, several values: AlertChain's model);
/// a counter without an id is the one named by its key.
#[tokio::test]
async fn only_op_add_adds_whatever_the_type() {
    let h = harness(
        r#"
run contains {"id": "one", "uses": "test.echo", "commit": [
    {"key": "typed", "value": 5, "type": "counter"},
    {"key": "added", "value": 5, "op": "add"}
]}
run contains {"id": "two", "uses": "test.echo", "commit": [
    {"key": "typed", "value": 2, "type": "counter"},
    {"key": "added", "value": 2, "op": "add"}
]} if count(input.called) > 0
"#,
    );
    let report = h.run().await;
    assert_eq!(report.actions.len(), 2);
    let of = |key: &str| -> Vec<Attr> { report.alert.attrs.iter().filter(|a| a.key == key).cloned().collect() };
    let typed: Vec<Value> = of("typed").into_iter().map(|a| a.value).collect();
    assert_eq!(typed, vec![json!(5), json!(2)], "a set without an id adds");
    assert!(of("typed").iter().all(|a| a.kind.as_deref() == Some("counter")));
    let added = of("added");
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].value, json!(7), "add sums");
    assert_eq!(added[0].id.as_deref(), Some("added"));
}

/// AlertChain's entry forms in one workflow: an id-less entry runs again in
/// every round its content appears (the counter idiom: it updates the
/// attribute in place through its id), a commit-only entry writes its
/// value, an abort-only entry stops the workflow after its round while the
/// round's other entries still run.
#[tokio::test]
async fn alertchain_entry_forms_run_as_alertchain_runs_them() {
    let h = harness(
        r#"
counter := [a | some a in input.alert.attrs; a.key == "c"]

run contains {"commit": [{"key": "c", "value": 0}]} if count(counter) == 0

run contains {"uses": "test.echo", "args": {"v": a.value}, "commit": [{"id": a.id, "key": "c", "value": a.value + 1}]} if {
    some a in counter
    a.value < 3
}

run contains {"id": "note", "name": "last", "uses": "test.echo"} if {
    some a in counter
    a.value == 3
}

run contains {"abort": true} if {
    some a in counter
    a.value == 3
}

run contains {"id": "never", "uses": "test.echo"} if count(input.called) > 10
"#,
    );
    let report = h.run().await;
    let c: Vec<&Attr> = report.alert.attrs.iter().filter(|a| a.key == "c").collect();
    assert_eq!(c.len(), 1, "updated in place by id: {c:?}");
    assert_eq!(c[0].value, json!(3));
    // Round 0: the commit-only entry; rounds 1-3: the id-less counter
    // entry, a new id each round; round 4: `note`, then the abort.
    let seqs: Vec<(u32, &str)> = report.actions.iter().map(|a| (a.seq, a.uses.as_str())).collect();
    assert_eq!(
        seqs,
        vec![
            (0, ""),
            (1, "test.echo"),
            (2, "test.echo"),
            (3, "test.echo"),
            (4, "test.echo")
        ]
    );
    assert!(report.actions[1].id.starts_with("entry-") && report.actions[1].id.ends_with("-r1"));
    assert_ne!(report.actions[1].id, report.actions[2].id);
    assert_eq!(report.actions[4].name, "last");
    assert!(matches!(report.stop, Stop::Aborted { .. }), "{:?}", report.stop);
    assert_eq!(
        h.calls.load(Ordering::SeqCst),
        4,
        "the commit-only and abort-only entries ran nothing"
    );
}

/// A failed action with `force` still writes what its commits say: a path
/// into the failure's result, else the commit's value; a path that selects
/// nothing falls back to the value; a path without `$` is from the root.
#[tokio::test]
async fn commits_fall_back_to_their_value_and_forced_failures_commit() {
    let h = harness(
        r#"
run contains {"id": "forced", "uses": "test.fail", "force": true, "commit": [
    {"key": "status", "path": "status"},
    {"key": "missing", "path": "$.nope", "value": "fallback"},
    {"key": "nothing", "path": "$.nope"},
]}
run contains {"id": "echo", "uses": "test.echo", "commit": [{"key": "country", "path": "nested.country"}]}
"#,
    );
    let report = h.run().await;
    let value = |key: &str| {
        report
            .alert
            .attrs
            .iter()
            .find(|a| a.key == key)
            .map(|a| a.value.clone())
    };
    assert_eq!(value("status"), Some(json!(500)));
    assert_eq!(value("missing"), Some(json!("fallback")));
    assert_eq!(value("nothing"), None);
    assert_eq!(value("country"), Some(json!("NL")));
    assert_eq!(report.stop.reason(), "completed");
}

/// `run := [...]`, as AlertChain reads `run` into a list: every entry runs.
#[tokio::test]
async fn run_written_as_an_array_runs_its_entries() {
    let h = harness(
        r#"run := [{"id": "b", "uses": "test.echo"}, {"id": "a", "uses": "test.echo", "args": {"v": 1}}, {"id": "b", "uses": "test.echo"}]"#,
    );
    let report = h.run().await;
    let got: Vec<(&str, Status)> = report.actions.iter().map(|a| (a.id.as_str(), a.status)).collect();
    assert_eq!(got, [("a", Status::Succeeded), ("b", Status::Succeeded)]);
    assert_eq!(report.stop.reason(), "completed");
}

/// `sequential := true`: a round's entries run one after another in the
/// set's order, and the first failure without `force` ends the round (the
/// rest is skipped, as AlertChain does); concurrently, every one runs.
#[tokio::test]
async fn sequential_rounds_stop_at_the_first_failure() {
    let entries = r#"
run contains {"id": "z-first", "uses": "test.echo", "args": {"v": 1}}
run contains {"id": "b-second", "uses": "test.fail", "args": {"v": 2}}
run contains {"id": "a-third", "uses": "test.echo", "args": {"v": 3}}
"#;
    let h = harness(&format!("sequential := true\n{entries}"));
    assert!(h.policies.sequential());
    let report = h.run().await;
    let got: Vec<(&str, Status)> = report.actions.iter().map(|a| (a.id.as_str(), a.status)).collect();
    assert_eq!(
        got,
        vec![
            ("z-first", Status::Succeeded),
            ("b-second", Status::Failed),
            ("a-third", Status::Skipped)
        ]
    );
    assert!(report.actions[2].error.as_deref().unwrap().contains("sequential"));
    assert_eq!(h.calls.load(Ordering::SeqCst), 2);

    let concurrent = harness(entries);
    let report = concurrent.run().await;
    assert_eq!(concurrent.calls.load(Ordering::SeqCst), 3);
    assert!(report.actions.iter().all(|a| a.status != Status::Skipped));
}

/// Every attribute has an id; one key may hold several attributes; a commit
/// carrying an id replaces that attribute where it stands; the commits in
/// `input.called` carry the ids they were written with, with the entry's
/// `name`, `force` and `abort`.
#[tokio::test]
async fn attributes_are_identified_by_id() {
    let h = harness(
        r#"
run contains {"id": "two", "name": "twice", "uses": "test.echo", "force": true, "commit": [
    {"key": "ioc", "value": "a"},
    {"key": "ioc", "value": "b"},
]}
run contains {"id": "replace", "uses": "test.echo", "commit": [{"id": c.commit[0].id, "key": "ioc", "value": "A"}]} if {
    some c in input.called
    c.id == "two"
    c.name == "twice"
    c.force == true
    c.abort == false
}
"#,
    );
    let report = h.run().await;
    let iocs: Vec<&Value> = report
        .alert
        .attrs
        .iter()
        .filter(|a| a.key == "ioc")
        .map(|a| &a.value)
        .collect();
    assert_eq!(iocs, vec![&json!("A"), &json!("b")]);
    assert!(report.alert.attrs.iter().all(|a| a.id.is_some()));
    // Derived ids are stable: the same workflow again gives the same ones.
    let again = h.run().await;
    let ids = |r: &WorkflowReport| -> Vec<Option<String>> { r.alert.attrs.iter().map(|a| a.id.clone()).collect() };
    assert_eq!(ids(&report), ids(&again));
}

/// A log writer the test reads back.
#[derive(Clone, Default)]
struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

/// An action a budget holds back is skipped, not failed: logged at info
/// as skipped, so that alerting on "action failed" sees only failures.
#[tokio::test]
async fn an_action_over_budget_is_logged_as_skipped_not_failed() {
    let mut h = harness(
        r#"run contains {"id": "first", "uses": "test.echo"}
run contains {"id": "lookup", "uses": "test.echo"} if { some c in input.called; c.id == "first" }
run contains {"id": "broken", "uses": "test.fail", "force": true}"#,
    );
    let budgets = crate::budget_spec::parse_action_budgets(r#"[{"uses": "test.echo", "limit": 1, "per_seconds": 60}]"#);
    h.guards = crate::workflow::Guards::new(budgets.unwrap(), None, Duration::ZERO);
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let report = {
        let _guard = tracing::subscriber::set_default(subscriber);
        h.run().await
    };
    assert_eq!(
        ids(&report),
        vec![
            (0, "broken", Status::Failed),
            (0, "first", Status::Succeeded),
            (1, "lookup", Status::Skipped)
        ]
    );
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = |id: &str| {
        text.lines()
            .find(|l| l.contains(&format!("action_id={id}")))
            .unwrap_or_default()
    };
    assert!(
        line("lookup").contains("INFO") && line("lookup").contains("action skipped"),
        "{text}"
    );
    assert!(
        line("broken").contains("WARN") && line("broken").contains("action failed"),
        "{text}"
    );
}
