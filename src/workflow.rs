//! The action round loop for one alert.
//!
//! Round `seq` evaluates the action policy with `input.called` holding every
//! action run so far (results included). The new ids of a round run
//! concurrently; their results feed the next round. The loop stops when a
//! round asks for nothing new, after a round with `abort`, after a round in
//! which an action without `force` failed, or at `max_rounds` — the last is
//! never silent: the actions still asked for are reported as skipped.

use std::collections::HashSet;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::action::{redact_args, ActionCall, ActionError, Registry};
use crate::alert::{Alert, Attr};
use crate::outcome::{action_outcome_id, Status};
use crate::policy::{ActionRequest, CommitSpec, PolicyError, PolicySet};

/// Limits and switches of a workflow.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_rounds: u32,
    pub max_actions: u32,
    pub dry_run: bool,
}

/// One action run (or skip) of an alert.
#[derive(Debug, Clone, Serialize)]
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
}

impl ActionRecord {
    /// The entry of `input.called` for this run.
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
}

/// Everything that happened to one alert.
#[derive(Debug, Clone)]
pub struct WorkflowReport {
    /// The alert with every committed attribute.
    pub alert: Alert,
    pub actions: Vec<ActionRecord>,
    pub rounds: u32,
    pub stop: Stop,
}

pub struct Workflow<'a> {
    pub policies: &'a PolicySet,
    pub registry: &'a Registry,
    pub limits: &'a Limits,
    /// `input.env`: only the allow-listed variables.
    pub env: &'a Value,
}

impl Workflow<'_> {
    pub async fn run(&self, mut alert: Alert, deadline: Option<Instant>) -> WorkflowReport {
        let mut records: Vec<ActionRecord> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut seq: u32 = 0;
        let stop = loop {
            let requests = match self
                .policies
                .eval_actions(self.input(&alert, seq, &records))
            {
                Ok(requests) => requests,
                Err(err) => {
                    break Stop::PolicyError {
                        error: err.to_string(),
                    }
                }
            };
            let fresh = match new_requests(requests, &seen) {
                Ok(fresh) => fresh,
                Err(err) => {
                    break Stop::PolicyError {
                        error: err.to_string(),
                    }
                }
            };
            if fresh.is_empty() {
                break Stop::Completed;
            }
            seen.extend(fresh.iter().map(|r| r.id.clone()));

            if seq >= self.limits.max_rounds {
                tracing::warn!(alert_id = %alert.id, max_rounds = self.limits.max_rounds, pending = fresh.len(), "max rounds reached; remaining actions skipped");
                let reason = format!(
                    "not run: the workflow reached MAX_ROUNDS ({})",
                    self.limits.max_rounds
                );
                records.extend(fresh.iter().map(|r| skipped(&alert, r, seq, &reason)));
                break Stop::MaxRounds { rounds: seq };
            }

            let room = (self.limits.max_actions as usize).saturating_sub(records.len());
            let (to_run, over) = fresh.split_at(fresh.len().min(room));
            let over_reason = format!(
                "not run: the alert reached MAX_ACTIONS ({})",
                self.limits.max_actions
            );
            let round: Vec<ActionRecord> = futures::future::join_all(
                to_run
                    .iter()
                    .map(|request| self.execute(&alert, request, seq, deadline)),
            )
            .await;

            let mut stop = None;
            for (request, mut record) in to_run.iter().zip(round) {
                if record.status == Status::Succeeded {
                    record.commits = commit(request, record.result.as_ref());
                    for attr in &record.commits {
                        alert.set_attr(attr.clone());
                    }
                }
                if record.status == Status::Failed && !request.force && stop.is_none() {
                    stop = Some(Stop::ActionFailed {
                        action_id: request.id.clone(),
                    });
                }
                if request.abort && stop.is_none() {
                    stop = Some(Stop::Aborted {
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
        }
    }

    fn input(&self, alert: &Alert, seq: u32, records: &[ActionRecord]) -> regorus::Value {
        let called: Vec<Value> = records.iter().map(ActionRecord::called_entry).collect();
        regorus::Value::from(json!({
            "alert": alert,
            "env": self.env,
            "seq": seq,
            "called": called,
        }))
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
        let outcome = match self
            .registry
            .validate(&request.id, &request.uses, &request.args)
        {
            Err(err) => Err(err),
            Ok(_) if self.limits.dry_run => Ok(None),
            Ok(action) => action
                .run(ActionCall {
                    action_id: &request.id,
                    outcome_id: &outcome_id,
                    alert,
                    args: &request.args,
                    deadline,
                })
                .await
                .map(Some),
        };
        let duration_ms = clock.elapsed().as_millis() as u64;
        let (status, result, error) = match outcome {
            Ok(Some(result)) => (Status::Succeeded, Some(result), None),
            Ok(None) => (Status::DryRun, None, None),
            Err(err) => (
                Status::Failed,
                err.result().cloned(),
                Some(error_text(&err)),
            ),
        };
        match &error {
            Some(error) => {
                tracing::warn!(alert_id = %alert.id, action_id = %request.id, uses = %request.uses, seq, duration_ms, error = %error, "action failed")
            }
            None => {
                tracing::info!(alert_id = %alert.id, action_id = %request.id, uses = %request.uses, seq, duration_ms, status = status.as_str(), "action done")
            }
        }
        ActionRecord {
            id: request.id.clone(),
            uses: request.uses.clone(),
            args: redact_args(&request.args),
            seq,
            status,
            result,
            error,
            outcome_id,
            commits: Vec::new(),
            started_at,
            duration_ms,
        }
    }
}

fn error_text(err: &ActionError) -> String {
    match err {
        ActionError::BadArg { .. } => format!("invalid request: {err}"),
        _ => err.to_string(),
    }
}

/// The requests of a round whose ids have not run yet, sorted by id. Two
/// different requests under one id are a policy bug, reported as such.
fn new_requests(
    requests: Vec<ActionRequest>,
    seen: &HashSet<String>,
) -> Result<Vec<ActionRequest>, PolicyError> {
    let mut fresh: Vec<ActionRequest> = requests
        .into_iter()
        .filter(|r| !seen.contains(&r.id))
        .collect();
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
    }
}

/// The attributes a succeeded action's `commit` writes. A path that selects
/// nothing writes nothing (logged); several nodes are written as an array.
fn commit(request: &ActionRequest, result: Option<&Value>) -> Vec<Attr> {
    let null = Value::Null;
    let result = result.unwrap_or(&null);
    request
        .commit
        .iter()
        .filter_map(|spec| {
            let value = committed_value(spec, result);
            if value.is_none() {
                tracing::warn!(action_id = %request.id, key = %spec.key, path = ?spec.path, "commit path matched nothing; attribute not written");
            }
            Some(Attr {
                id: spec.id.clone(),
                key: spec.key.clone(),
                value: value?,
                kind: spec.kind.clone(),
                persist: spec.persist,
                ttl: spec.ttl,
            })
        })
        .collect()
}

fn committed_value(spec: &CommitSpec, result: &Value) -> Option<Value> {
    let Some(path) = &spec.path else {
        return spec.value.clone();
    };
    // Paths were validated when the request was parsed.
    let path = serde_json_path::JsonPath::parse(path).ok()?;
    let nodes = path.query(result).all();
    match nodes.len() {
        0 => None,
        1 => Some(nodes[0].clone()),
        _ => Some(Value::Array(nodes.into_iter().cloned().collect())),
    }
}
