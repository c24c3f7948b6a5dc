//! The action round loop for one alert.
//!
//! Round `seq` evaluates the action policy with `input.called` holding every
//! action run so far (results included). The new ids of a round run
//! concurrently; their results feed the next round. The loop stops when a
//! round asks for nothing new, after a round with `abort`, after a round in
//! which an action without `force` failed, or at `max_rounds` — the last is
//! never silent: the actions still asked for are reported as skipped.
//!
//! With a [`StateStore`], each action runs only after its claim is won: an
//! action that already ran (a duplicate delivery, a retry) is replayed from
//! its record, and a transient failure gives the claim back and stops the
//! workflow so the invocation can be retried.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::action::{redact_args, scrub_text, scrub_value, secret_values, ActionCall, ActionError, Registry};
use crate::alert::{Alert, Attr};
use crate::outcome::{action_outcome_id, Status};
use crate::policy::{
    to_policy_entries, to_policy_object, to_policy_value, ActionRequest, CommitSpec, PolicyError, PolicySet,
};
use crate::secrets::SecretResolver;
use crate::state::{Claim, PersistOp, PersistWrite, StateStore};

/// Limits and switches of a workflow.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_rounds: u32,
    pub max_actions: u32,
    pub dry_run: bool,
}

/// One action run (or skip) of an alert.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionRecord {
    pub id: String,
    pub uses: String,
    /// Redacted copy of the args.
    pub args: Map<String, Value>,
    pub seq: u32,
    pub status: Status,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub outcome_id: String,
    pub commits: Vec<Attr>,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// Taken from the state table: the action ran in an earlier invocation.
    #[serde(default)]
    pub replay: bool,
    /// Not final: the action failed transiently (or its state could not be
    /// kept) and the invocation must be retried. Never published.
    #[serde(skip)]
    pub retry: Option<String>,
}

#[cfg(test)]
impl ActionRecord {
    /// The entry of `input.called` for this run, as JSON: what
    /// [`ActionRecord::called_value`] must equal once converted.
    fn called_entry(&self) -> Value {
        json!({
            "id": self.id,
            "uses": self.uses,
            "args": self.args,
            "seq": self.seq,
            "status": self.status.as_str(),
            "result": self.result,
            "error": self.error,
        })
    }
}

impl ActionRecord {
    /// The entry of `input.called` for this run, built as a policy value.
    fn called_value(&self) -> regorus::Value {
        let optional = |value: Option<regorus::Value>| value.unwrap_or(regorus::Value::Null);
        let entry: BTreeMap<regorus::Value, regorus::Value> = [
            ("args", to_policy_object(&self.args)),
            ("error", optional(self.error.as_deref().map(regorus::Value::from))),
            ("id", regorus::Value::from(self.id.as_str())),
            ("result", optional(self.result.as_ref().map(to_policy_value))),
            ("seq", regorus::Value::from(self.seq)),
            ("status", regorus::Value::from(self.status.as_str())),
            ("uses", regorus::Value::from(self.uses.as_str())),
        ]
        .into_iter()
        .map(|(key, value)| (regorus::Value::from(key), value))
        .collect();
        regorus::Value::from(entry)
    }
}

/// Why the workflow stopped.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Stop {
    /// A round asked for no new action.
    Completed,
    Aborted {
        action_id: String,
    },
    ActionFailed {
        action_id: String,
    },
    MaxRounds {
        rounds: u32,
    },
    PolicyError {
        error: String,
    },
    /// An action must be retried in a later invocation.
    Retry {
        action_id: String,
        cause: String,
    },
}

/// Everything that happened to one alert.
#[derive(Debug, Clone)]
pub struct WorkflowReport {
    /// The alert with every committed attribute.
    pub alert: Alert,
    pub actions: Vec<ActionRecord>,
    pub rounds: u32,
    pub stop: Stop,
    /// Time spent evaluating the action policy.
    pub policy_time: Duration,
}

pub struct Workflow<'a> {
    pub policies: &'a PolicySet,
    pub registry: &'a Registry,
    pub limits: &'a Limits,
    /// `input.env`: only the allow-listed variables.
    pub env: &'a Value,
    pub secrets: &'a SecretResolver,
    /// Exactly-once bookkeeping; `None` runs without it.
    pub state: Option<&'a dyn StateStore>,
    /// How long a claim holds before another invocation may take it over.
    pub lease: Duration,
}

impl Workflow<'_> {
    pub async fn run(&self, alert: Alert, deadline: Option<Instant>) -> WorkflowReport {
        let payload = to_policy_value(&alert.data);
        self.run_with_payload(alert, payload, deadline).await
    }

    /// [`Workflow::run`] with `alert.data` already converted for the policy
    /// (the conversion the alert policy evaluated).
    pub async fn run_with_payload(
        &self,
        mut alert: Alert,
        payload: regorus::Value,
        deadline: Option<Instant>,
    ) -> WorkflowReport {
        let mut records: Vec<ActionRecord> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut seq: u32 = 0;
        let mut policy_time = Duration::ZERO;
        // The payload and env are the bulk of the input and never change
        // between rounds: converted once per alert.
        let clock = Instant::now();
        let mut fixed = RoundInput::new(payload, to_policy_value(self.env));
        policy_time += clock.elapsed();
        let stop = loop {
            let clock = Instant::now();
            let input = fixed.input(&mut alert, seq, &records);
            let evaluated = self.policies.eval_actions(input, deadline, &seen);
            policy_time += clock.elapsed();
            let requests = match evaluated {
                Ok(requests) => requests,
                Err(err) => break Stop::PolicyError { error: err.to_string() },
            };
            let fresh = match new_requests(requests) {
                Ok(fresh) => fresh,
                Err(err) => break Stop::PolicyError { error: err.to_string() },
            };
            if fresh.is_empty() {
                break Stop::Completed;
            }
            seen.extend(fresh.iter().map(|r| r.id.clone()));

            if seq >= self.limits.max_rounds {
                tracing::warn!(alert_id = %alert.id, max_rounds = self.limits.max_rounds, pending = fresh.len(), "max rounds reached; remaining actions skipped");
                let reason = format!("not run: the workflow reached MAX_ROUNDS ({})", self.limits.max_rounds);
                records.extend(fresh.iter().map(|r| skipped(&alert, r, seq, &reason)));
                break Stop::MaxRounds { rounds: seq };
            }

            let room = (self.limits.max_actions as usize).saturating_sub(records.len());
            let (to_run, over) = fresh.split_at(fresh.len().min(room));
            let over_reason = format!("not run: the alert reached MAX_ACTIONS ({})", self.limits.max_actions);
            let round: Vec<ActionRecord> = futures::future::join_all(
                to_run
                    .iter()
                    .map(|request| self.execute(&alert, request, seq, deadline)),
            )
            .await;

            let mut stop = None;
            for (request, record) in to_run.iter().zip(round) {
                if let Some(reason) = &record.retry {
                    stop.get_or_insert(Stop::Retry {
                        action_id: request.id.clone(),
                        cause: reason.clone(),
                    });
                }
                for attr in &record.commits {
                    apply_commit(&mut alert, attr);
                }
                if record.status == Status::Failed && !request.force {
                    stop.get_or_insert(Stop::ActionFailed {
                        action_id: request.id.clone(),
                    });
                }
                if request.abort {
                    stop.get_or_insert(Stop::Aborted {
                        action_id: request.id.clone(),
                    });
                }
                records.push(record);
            }
            if !over.is_empty() {
                tracing::warn!(alert_id = %alert.id, max_actions = self.limits.max_actions, skipped = over.len(), "max actions reached");
                records.extend(over.iter().map(|r| skipped(&alert, r, seq, &over_reason)));
            }
            seq += 1;
            if let Some(stop) = stop {
                break stop;
            }
        };
        WorkflowReport {
            alert,
            actions: records,
            rounds: seq,
            stop,
            policy_time,
        }
    }

    async fn execute(
        &self,
        alert: &Alert,
        request: &ActionRequest,
        seq: u32,
        deadline: Option<Instant>,
    ) -> ActionRecord {
        let started_at = Utc::now();
        let clock = Instant::now();
        let outcome_id = action_outcome_id(&alert.id, &request.id);
        let mut record = ActionRecord {
            id: request.id.clone(),
            uses: request.uses.clone(),
            args: redact_args(&request.args),
            seq,
            status: Status::Failed,
            result: None,
            error: None,
            outcome_id: outcome_id.clone(),
            commits: Vec::new(),
            started_at,
            duration_ms: 0,
            replay: false,
            retry: None,
        };
        let action = match self.registry.validate(&request.id, &request.uses, &request.args) {
            Ok(action) => action,
            Err(err) => {
                record.error = Some(error_text(&err, &request.id));
                return finish(record, alert, clock);
            }
        };
        if self.limits.dry_run {
            record.status = Status::DryRun;
            return finish(record, alert, clock);
        }
        if let Some(state) = self.state {
            match self.claim(state, alert, request, deadline).await {
                Ok(None) => {}
                Ok(Some(mut done)) => {
                    // The action ran before: replay its record, run nothing.
                    done.replay = true;
                    done.seq = seq;
                    tracing::info!(alert_id = %alert.id, action_id = %request.id, "action already ran; replaying its record");
                    return done;
                }
                Err(reason) => {
                    record.error = Some(reason.clone());
                    record.retry = Some(reason);
                    return finish(record, alert, clock);
                }
            }
        }

        // Literal secret values in the request; resolved ones are added below.
        let mut secrets = secret_values(&request.args);
        let outcome = match self.secrets.resolve_args(&request.args).await {
            Err(err) => Err(err),
            Ok(args) => {
                secrets.extend(secret_values(&args));
                action
                    .run(ActionCall {
                        action_id: &request.id,
                        outcome_id: &outcome_id,
                        alert,
                        args: &args,
                        deadline,
                    })
                    .await
            }
        };
        let transient = matches!(&outcome, Err(err) if err.is_transient());
        match outcome {
            Ok(result) => {
                let result = scrub_value(&result, &secrets);
                record.status = Status::Succeeded;
                record.commits = commit(request, &result, alert);
                record.result = Some(result);
            }
            Err(err) => {
                record.result = err.result().map(|r| scrub_value(r, &secrets));
                record.error = Some(scrub_text(&error_text(&err, &request.id), &secrets));
            }
        }
        record = finish(record, alert, clock);
        if let Some(state) = self.state {
            if transient {
                // Give the claim back: the retried invocation runs it again.
                if let Err(err) = state.release(&alert.id, &request.id).await {
                    tracing::warn!(alert_id = %alert.id, action_id = %request.id, error = %err, "could not release the claim; it expires with its lease");
                }
                record.retry = record.error.clone();
            } else {
                let writes = persist_writes(alert, request, &record);
                if let Err(err) = state.complete(&alert.id, &record, &writes).await {
                    tracing::error!(alert_id = %alert.id, action_id = %request.id, error = %err, "the action ran but its record could not be saved");
                    record.retry = Some(err.to_string());
                }
            }
        }
        record
    }

    /// Wins the claim (`Ok(None)`), finds the finished record (`Ok(Some)`),
    /// or gives up with the reason (the state table is unreachable, or another
    /// invocation holds the claim past what this one can wait).
    async fn claim(
        &self,
        state: &dyn StateStore,
        alert: &Alert,
        request: &ActionRequest,
        deadline: Option<Instant>,
    ) -> Result<Option<ActionRecord>, String> {
        loop {
            match state.claim(&alert.id, &request.id, self.lease).await {
                Err(err) => return Err(err.to_string()),
                Ok(Claim::Claimed) => return Ok(None),
                Ok(Claim::Done(record)) => return Ok(Some(*record)),
                Ok(Claim::Busy { lease_until }) => {
                    // Another invocation runs it: wait for its record, or for its lease to lapse.
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    let wait = Duration::from_millis(250);
                    let time_left = deadline.is_none_or(|d| Instant::now() + wait + Duration::from_secs(1) < d);
                    let lease_left = lease_until.saturating_sub(now);
                    if !time_left || lease_left > self.lease.as_secs() + 1 {
                        return Err(format!("action {:?} is running in another invocation", request.id));
                    }
                    tracing::info!(alert_id = %alert.id, action_id = %request.id, lease_left, "action claimed by another invocation; waiting");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

fn finish(mut record: ActionRecord, alert: &Alert, clock: Instant) -> ActionRecord {
    record.duration_ms = clock.elapsed().as_millis() as u64;
    match &record.error {
        Some(error) => {
            tracing::warn!(alert_id = %alert.id, action_id = %record.id, uses = %record.uses, seq = record.seq, duration_ms = record.duration_ms, error = %error, "action failed")
        }
        None => {
            tracing::info!(alert_id = %alert.id, action_id = %record.id, uses = %record.uses, seq = record.seq, duration_ms = record.duration_ms, status = record.status.as_str(), "action done")
        }
    }
    record
}

fn error_text(err: &ActionError, action_id: &str) -> String {
    match err {
        ActionError::BadArg { .. } => format!("invalid request: {err}"),
        // Names the action and the secret, never its value.
        ActionError::Secret { .. } => format!("action {action_id:?}: {err}"),
        _ => err.to_string(),
    }
}

/// The action policy's input across an alert's rounds. Everything but the
/// attributes and `called` is fixed for the alert and converted once; the
/// attributes are converted again only when a commit changed them, each
/// `called` entry once, when its action has run.
struct RoundInput {
    data: regorus::Value,
    env: regorus::Value,
    /// `input.alert` but for `attrs`, `data` included; built in round 0.
    alert_fields: Option<BTreeMap<regorus::Value, regorus::Value>>,
    /// The attributes as last converted, with their conversion.
    attrs: Option<(Vec<Attr>, regorus::Value)>,
    called: Vec<regorus::Value>,
}

impl RoundInput {
    fn new(data: regorus::Value, env: regorus::Value) -> RoundInput {
        RoundInput {
            data,
            env,
            alert_fields: None,
            attrs: None,
            called: Vec::new(),
        }
    }

    /// `{alert, env, seq, called}`; `alert.data` is the payload the alert
    /// policy saw. The workflow changes nothing of the alert but its
    /// attributes.
    fn input(&mut self, alert: &mut Alert, seq: u32, records: &[ActionRecord]) -> regorus::Value {
        let mut fields = match &self.alert_fields {
            Some(fields) => fields.clone(),
            None => {
                // Serialized without payload and attributes (moved out and
                // back, not copied); the converted payload goes in its place.
                let payload = std::mem::take(&mut alert.data);
                let attrs = std::mem::take(&mut alert.attrs);
                let head = serde_json::to_value(&*alert);
                alert.data = payload;
                alert.attrs = attrs;
                let head = head.expect("an alert serializes");
                let mut fields = head.as_object().map(to_policy_entries).unwrap_or_default();
                fields.insert(regorus::Value::from("data"), self.data.clone());
                self.alert_fields.insert(fields).clone()
            }
        };
        let attrs = match &self.attrs {
            Some((source, converted)) if *source == alert.attrs => converted.clone(),
            _ => {
                let json = serde_json::to_value(&alert.attrs).expect("attributes serialize");
                let converted = to_policy_value(&json);
                self.attrs = Some((alert.attrs.clone(), converted.clone()));
                converted
            }
        };
        fields.insert(regorus::Value::from("attrs"), attrs);
        let converted = self.called.len();
        self.called.extend(
            records[converted.min(records.len())..]
                .iter()
                .map(ActionRecord::called_value),
        );
        let mut input = BTreeMap::new();
        input.insert(regorus::Value::from("alert"), regorus::Value::from(fields));
        input.insert(regorus::Value::from("env"), self.env.clone());
        input.insert(regorus::Value::from("seq"), regorus::Value::from(seq));
        input.insert(
            regorus::Value::from("called"),
            regorus::Value::from(self.called.clone()),
        );
        regorus::Value::from(input)
    }
}

/// The round's requests in id order (the policy already left out ids run in
/// earlier rounds); two different entries with one id are a policy error.
fn new_requests(mut fresh: Vec<ActionRequest>) -> Result<Vec<ActionRequest>, PolicyError> {
    fresh.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(pair) = fresh.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(PolicyError::Output {
            rule: crate::policy::ACTION_RULE.to_string(),
            reason: format!("two different entries share id {:?}", pair[0].id),
        });
    }
    Ok(fresh)
}

fn skipped(alert: &Alert, request: &ActionRequest, seq: u32, reason: &str) -> ActionRecord {
    ActionRecord {
        id: request.id.clone(),
        uses: request.uses.clone(),
        args: redact_args(&request.args),
        seq,
        status: Status::Skipped,
        result: None,
        error: Some(reason.to_string()),
        outcome_id: action_outcome_id(&alert.id, &request.id),
        commits: Vec::new(),
        started_at: Utc::now(),
        duration_ms: 0,
        replay: false,
        retry: None,
    }
}

/// Writes a committed attribute into the alert; `add` commits carry the
/// delta and add to the current value.
fn apply_commit(alert: &mut Alert, attr: &Attr) {
    let mut attr = attr.clone();
    if attr.kind.as_deref() == Some("counter") {
        let current = alert
            .attrs
            .iter()
            .find(|a| a.key == attr.key)
            .and_then(|a| a.value.as_f64())
            .unwrap_or(0.0);
        let total = current + attr.value.as_f64().unwrap_or(0.0);
        attr.value = if total.fract() == 0.0 {
            json!(total as i64)
        } else {
            json!(total)
        };
    }
    alert.set_attr(attr);
}

/// The attributes a succeeded action's `commit` writes. A path that selects
/// nothing writes nothing (logged); several nodes are written as an array.
/// An `op: add` commit is recorded with type `counter` and its delta as value.
fn commit(request: &ActionRequest, result: &Value, alert: &Alert) -> Vec<Attr> {
    request
        .commit
        .iter()
        .filter_map(|spec| {
            let value = committed_value(spec, result);
            if value.is_none() {
                tracing::warn!(alert_id = %alert.id, action_id = %request.id, key = %spec.key, path = ?spec.path, "commit path matched nothing; attribute not written");
            }
            let counter = spec.op.as_deref() == Some("add");
            Some(Attr {
                id: spec.id.clone(),
                key: spec.key.clone(),
                value: value?,
                kind: if counter { Some("counter".to_string()) } else { spec.kind.clone() },
                persist: spec.persist,
                ttl: spec.ttl,
            })
        })
        .collect()
}

/// The state-table writes of an action's `persist: true` commits.
fn persist_writes(alert: &Alert, request: &ActionRequest, record: &ActionRecord) -> Vec<PersistWrite> {
    if alert.namespace.is_empty() {
        return Vec::new();
    }
    record
        .commits
        .iter()
        .filter(|attr| attr.persist)
        .map(|attr| PersistWrite {
            namespace: alert.namespace.clone(),
            key: attr.key.clone(),
            op: if attr.kind.as_deref() == Some("counter") {
                PersistOp::Add(attr.value.as_f64().unwrap_or(0.0))
            } else {
                PersistOp::Set(attr.value.clone())
            },
            ttl: Duration::from_secs(attr.ttl.unwrap_or(DEFAULT_PERSIST_TTL)),
        })
        .inspect(|write| tracing::debug!(action_id = %request.id, key = %write.key, "persisting attribute"))
        .collect()
}

/// Seconds a persisted attribute lives when its commit gives no `ttl`.
pub const DEFAULT_PERSIST_TTL: u64 = 86_400;

fn committed_value(spec: &CommitSpec, result: &Value) -> Option<Value> {
    let Some(path) = &spec.path else {
        return spec.value.clone();
    };
    // Paths were validated (and parsed) when the request was parsed.
    let parsed;
    let path = match &spec.parsed_path {
        Some(path) => path,
        None => {
            parsed = serde_json_path::JsonPath::parse(path).ok()?;
            &parsed
        }
    };
    let nodes = path.query(result).all();
    match nodes.len() {
        0 => None,
        1 => Some(nodes[0].clone()),
        _ => Some(Value::Array(nodes.into_iter().cloned().collect())),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use futures::future::BoxFuture;
    use serde_json::json;

    use super::*;
    use crate::action::{Action, ArgKind, ArgSpec};
    use crate::event::ingest_document;
    use crate::policy::PolicyFile;

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
        }
    }

    impl Harness {
        async fn run(&self) -> WorkflowReport {
            let (alert, workflow_env) = self.alert();
            let secrets = SecretResolver::literals_only();
            let workflow = Workflow {
                policies: &self.policies,
                registry: &self.registry,
                limits: &self.limits,
                env: &workflow_env,
                secrets: &secrets,
                state: None,
                lease: Duration::from_secs(60),
            };
            workflow.run(alert, None).await
        }

        fn alert(&self) -> (Alert, Value) {
            let envelope = ingest_document(
                include_bytes!("../tests/fixtures/matano_alert_change_v1.json"),
                "matano",
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
        assert_eq!(report.stop, Stop::Completed);
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
        assert_eq!(
            report.stop,
            Stop::Aborted {
                action_id: "first".into()
            }
        );
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
        assert_eq!(
            stopped.stop,
            Stop::ActionFailed {
                action_id: "lookup".into()
            }
        );
        assert_eq!(stopped.actions[0].result, Some(json!({"status": 500})));

        let forced = harness(&policy(true)).run().await;
        assert_eq!(
            ids(&forced),
            vec![(0, "lookup", Status::Failed), (1, "next", Status::Succeeded)]
        );
        assert_eq!(forced.actions[1].args["v"], 500);
        assert_eq!(forced.stop, Stop::Completed);
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
        assert_eq!(report.stop, Stop::MaxRounds { rounds: 3 });
        assert_eq!(h.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn max_actions_skips_the_excess() {
        let mut h = harness(
            r#"run contains {"id": sprintf("a%d", [i]), "uses": "test.echo"} if some i in numbers.range(1, 5)"#,
        );
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
        assert_eq!(report.actions[1].args["secret_token"], crate::REDACTED);
        assert_eq!(report.actions[2].args["seen"], crate::REDACTED);
        let text = serde_json::to_string(&report.actions).unwrap();
        assert!(!text.contains("tok-123"), "{text}");
    }

    #[tokio::test]
    async fn unknown_action_fails_naming_the_entry() {
        let h = harness(r#"run contains {"id": "page", "uses": "pager.page"}"#);
        let report = h.run().await;
        assert_eq!(report.actions[0].status, Status::Failed);
        assert_eq!(
            report.actions[0].error.as_deref(),
            Some("unknown action \"pager.page\" (requested by run entry \"page\")")
        );
    }

    #[tokio::test]
    async fn conflicting_entries_under_one_id_are_a_policy_error() {
        let h = harness(r#"run contains {"id": "x", "uses": "test.echo", "args": {"v": i}} if some i in [1, 2]"#);
        let report = h.run().await;
        assert!(report.actions.is_empty());
        match report.stop {
            Stop::PolicyError { error } => assert!(error.contains("share id \"x\""), "{error}"),
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
        assert!(matches!(report.stop, Stop::PolicyError { ref error } if error.contains("missing field `uses`")));
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
            let called: Vec<Value> = called.iter().map(ActionRecord::called_entry).collect();
            regorus::Value::from(json!({"alert": alert, "env": env, "seq": seq, "called": called}))
        };
        let mut fixed = RoundInput::new(to_policy_value(&alert.data), to_policy_value(&env));
        // Round 0 saw no calls; round 1 converts only the new entries and
        // sees the committed attribute.
        assert_eq!(fixed.input(&mut alert, 0, &[]), whole(&alert, 0, &[]));
        alert.set_attr(Attr::new("c", json!("NL")));
        assert_eq!(
            fixed.input(&mut alert, 1, &report.actions),
            whole(&alert, 1, &report.actions)
        );
        alert.set_attr(Attr::new("c", json!("BE")));
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
}
