//! The round loop: evaluate, run what is new, commit, repeat until a round
//! asks for nothing new or a stop condition holds.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::commit::apply_commit;
use super::execute::{new_record, Executed, Executor, Retry};
use super::guard::Guards;
use super::input::RoundInput;
use super::suspend::pending_action;
use crate::action::Registry;
use crate::model::decision::{AlertEntry, RetryEntry, StopRecord};
use crate::model::outcome::skipped_outcome_id;
use crate::model::suspended::PendingAction;
use crate::model::{ActionRecord, Alert, Attr, Commit, SkipReason, Status};
use crate::policy::{to_policy_value, ActionRequest, PolicyError, PolicySet, ACTION_RULE};
use crate::secrets::SecretResolver;
use crate::state::StateStore;

/// Limits and switches of a workflow.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_rounds: u32,
    pub max_actions: u32,
    pub dry_run: bool,
}

/// Why the workflow stopped.
#[derive(Debug, Clone, Serialize)]
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
        #[serde(serialize_with = "as_text")]
        error: PolicyError,
    },
    /// Actions wait for a human or a timer: the workflow resumes with its
    /// next round when every one has its result.
    Suspended {
        pending: Vec<PendingAction>,
    },
    /// An action round's policy evaluation ran into the invocation's
    /// deadline: the outcomes of what ran are published and the message
    /// is decided again by a retry (with a state table, which replays
    /// what ran; without one the stop is a `PolicyError`).
    Deadline {
        #[serde(serialize_with = "as_text")]
        error: PolicyError,
    },
    /// An action must be retried in a later invocation.
    Retry {
        action_id: String,
        #[serde(serialize_with = "as_text")]
        cause: super::RetryCause,
    },
}

impl WorkflowReport {
    /// The alert and its workflow as a decision record keeps them.
    pub fn entry(&self) -> AlertEntry {
        let action_id = self.stop.action_id();
        // A failed action's own error says why its workflow stopped.
        let failed_action = || {
            let id = action_id?;
            self.actions.iter().find(|a| a.id == id)?.error.clone()
        };
        let stop = StopRecord {
            reason: self.stop.reason().to_string(),
            action_id: action_id.map(str::to_string),
            error: self.stop.error_text().or_else(failed_action),
        };
        let retries = self
            .retries
            .iter()
            .map(|retry| RetryEntry {
                action_id: retry.action_id.clone(),
                cause: retry.cause.to_string(),
            })
            .collect();
        AlertEntry::new(&self.alert, self.rounds, stop, &self.actions, retries)
    }

    /// [`WorkflowReport::entry`] with only what these policies asked for:
    /// what another set of policies is compared with.
    pub fn decided_entry(&self) -> AlertEntry {
        let mut entry = self.entry();
        let asked = self.actions.len() - self.ran_before.min(self.actions.len());
        entry.actions.truncate(asked);
        entry
    }
}

impl Stop {
    /// The action the workflow stopped at, if one.
    pub fn action_id(&self) -> Option<&str> {
        match self {
            Stop::Aborted { action_id } | Stop::ActionFailed { action_id } | Stop::Retry { action_id, .. } => {
                Some(action_id)
            }
            Stop::Completed
            | Stop::MaxRounds { .. }
            | Stop::PolicyError { .. }
            | Stop::Deadline { .. }
            | Stop::Suspended { .. } => None,
        }
    }

    /// The error that stopped it: a policy error, or why an action must be retried.
    pub fn error_text(&self) -> Option<String> {
        match self {
            Stop::PolicyError { error } | Stop::Deadline { error } => Some(error.to_string()),
            Stop::Retry { cause, .. } => Some(cause.to_string()),
            _ => None,
        }
    }

    /// The reason as it is serialized (`completed`, `aborted`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            Stop::Completed => "completed",
            Stop::Aborted { .. } => "aborted",
            Stop::ActionFailed { .. } => "action_failed",
            Stop::MaxRounds { .. } => "max_rounds",
            Stop::PolicyError { .. } => "policy_error",
            Stop::Deadline { .. } => "deadline",
            Stop::Retry { .. } => "retry",
            Stop::Suspended { .. } => "suspended",
        }
    }
}

fn as_text<T: std::fmt::Display, S: serde::Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// Everything that happened to one alert.
#[derive(Debug, Clone)]
pub struct WorkflowReport {
    /// The alert with every committed attribute.
    pub alert: Alert,
    /// The attributes the first round saw: the alert policy's, and those
    /// persisted for the namespace.
    pub initial_attrs: Vec<Attr>,
    /// Final records, in the order they ran.
    pub actions: Vec<ActionRecord>,
    /// Actions whose outcome is not final: the invocation must be retried.
    pub retries: Vec<Retry>,
    pub rounds: u32,
    pub stop: Stop,
    /// Time spent evaluating the action policy.
    pub policy_time: Duration,
    /// How many of `actions`, at their end, ran on an earlier try of this
    /// decision and were not asked for this time (replayed so that their
    /// outcomes go out): not part of what these policies decided.
    pub ran_before: usize,
}

/// One alert's rounds: the policies decide, the executor acts.
pub struct Workflow<'a> {
    policies: &'a PolicySet,
    limits: &'a Limits,
    /// `input.env`: only the allow-listed variables.
    env: &'a Value,
    executor: Executor<'a>,
}

/// What a workflow acts with: the actions, their secrets, the state that
/// makes them exactly-once (and its claims' shortest lease), the guards.
pub(crate) struct Acting<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) secrets: &'a SecretResolver,
    pub(crate) state: Option<&'a dyn StateStore>,
    pub(crate) lease: Duration,
    pub(crate) guards: &'a Guards,
    /// Results a dry run sees for action ids that ran (`decide::rehearse`).
    pub(crate) recorded: Option<&'a crate::model::record::Recorded>,
}

/// The report as the rounds build it (the alert is added at the end).
#[derive(Default)]
struct Progress {
    actions: Vec<ActionRecord>,
    retries: Vec<Retry>,
    rounds: u32,
    policy_time: Duration,
}

impl<'a> Workflow<'a> {
    /// The one way a workflow is made (`decide` calls it).
    pub(crate) fn new(policies: &'a PolicySet, limits: &'a Limits, env: &'a Value, acting: Acting<'a>) -> Workflow<'a> {
        Workflow {
            policies,
            limits,
            env,
            executor: Executor {
                registry: acting.registry,
                secrets: acting.secrets,
                state: acting.state,
                lease_floor: acting.lease,
                dry_run: limits.dry_run,
                guards: acting.guards,
                recorded: acting.recorded,
            },
        }
    }

    /// Runs the rounds for `alert`; `payload` is `alert.data` as the alert
    /// policy saw it (converted once, reused as `input.alert.data`).
    pub async fn run(&self, alert: Alert, payload: regorus::Value, deadline: Option<Instant>) -> WorkflowReport {
        self.run_from(alert, payload, Progress::default(), deadline).await
    }

    /// Continues a suspended workflow with round `rounds`, as if it had
    /// never stopped: `called` is every record so far, and each pending
    /// one is replaced by its final record in `resolved` (whose commits
    /// are applied now; persisted ones were stored with the result, and
    /// `alert` was given the namespace's stored values).
    pub async fn resume(
        &self,
        mut alert: Alert,
        payload: regorus::Value,
        mut called: Vec<ActionRecord>,
        resolved: Vec<ActionRecord>,
        rounds: u32,
        deadline: Option<Instant>,
    ) -> WorkflowReport {
        for record in resolved {
            // A persisted commit was written with the result, and `alert`
            // holds the namespace's stored values: applied again, an `add`
            // would count twice.
            let stored = |commit: &&Commit| commit.persist && !alert.namespace.is_empty();
            let commits: Vec<&Commit> = record.commits.iter().filter(|c| !stored(c)).collect();
            for commit in commits {
                apply_commit(&mut alert, commit);
            }
            match called.iter_mut().find(|c| c.id == record.id) {
                Some(slot) => *slot = record,
                None => called.push(record),
            }
        }
        let progress = Progress {
            actions: called,
            rounds,
            ..Progress::default()
        };
        self.run_from(alert, payload, progress, deadline).await
    }

    async fn run_from(
        &self,
        mut alert: Alert,
        payload: regorus::Value,
        mut report: Progress,
        deadline: Option<Instant>,
    ) -> WorkflowReport {
        let initial_attrs = alert.attrs.clone();
        let mut seen: HashSet<String> = report.actions.iter().map(|a| a.id.clone()).collect();
        // The payload and env are the bulk of the input and never change
        // between rounds: converted once per alert.
        let clock = Instant::now();
        let mut input = RoundInput::new(payload, to_policy_value(self.env), self.policies.reads_raw());
        report.policy_time += clock.elapsed();
        let stop = loop {
            let seq = report.rounds;
            let clock = Instant::now();
            let evaluated = self
                .policies
                .eval_actions(input.input(&mut alert, seq, &report.actions), deadline, &seen)
                .map(|requests| requests.into_iter().map(|r| r.with_round(seq)).collect())
                .and_then(new_requests)
                .and_then(|fresh| known_actions(self.executor.registry, fresh));
            report.policy_time += clock.elapsed();
            let fresh = match evaluated {
                Ok(fresh) => fresh,
                Err(error @ PolicyError::Deadline { .. }) if self.executor.state.is_some() => {
                    break Stop::Deadline { error }
                }
                Err(error) => break Stop::PolicyError { error },
            };
            if fresh.is_empty() {
                break Stop::Completed;
            }
            seen.extend(fresh.iter().map(|r| r.id.clone()));
            if seq >= self.limits.max_rounds {
                tracing::warn!(alert_id = %alert.id, max_rounds = self.limits.max_rounds, pending = fresh.len(), "max rounds reached; remaining actions skipped");
                let reason = format!("not run: the workflow reached MAX_ROUNDS ({})", self.limits.max_rounds);
                report.actions.extend(
                    fresh
                        .iter()
                        .map(|r| skipped(&alert, r, seq, SkipReason::MaxRounds, &reason)),
                );
                break Stop::MaxRounds { rounds: seq };
            }
            let stop = self.round(&mut alert, &fresh, seq, deadline, &mut report).await;
            report.rounds += 1;
            if let Some(stop) = stop {
                break stop;
            }
        };
        WorkflowReport {
            alert,
            initial_attrs,
            actions: report.actions,
            retries: report.retries,
            rounds: report.rounds,
            stop,
            policy_time: report.policy_time,
            ran_before: 0,
        }
    }

    /// Runs a round's new requests (up to `max_actions` for the alert) —
    /// concurrently, or one after another when the policy says
    /// `sequential := true` — and applies their commits. Abort-only entries
    /// run nothing and stop the workflow after the round.
    async fn round(
        &self,
        alert: &mut Alert,
        fresh: &[ActionRequest],
        seq: u32,
        deadline: Option<Instant>,
        report: &mut Progress,
    ) -> Option<Stop> {
        let abort_only = fresh
            .iter()
            .find(|r| r.abort && !r.runs_an_action())
            .map(|r| Stop::Aborted {
                action_id: r.id.clone(),
            });
        let mut stop = None;
        let mut fresh: Vec<&ActionRequest> = fresh.iter().filter(|r| !r.abort || r.runs_an_action()).collect();
        // One after another: in the order of the policy's set (AlertChain's,
        // OPA's sorted order). Concurrently: records in id order.
        if !self.policies.sequential() {
            fresh.sort_by(|a, b| a.id.cmp(&b.id));
        }
        let done = report.actions.len() + report.retries.len();
        let room = (self.limits.max_actions as usize).saturating_sub(done);
        let (to_run, over) = fresh.split_at(fresh.len().min(room));
        let current: &Alert = alert;
        let executed: Vec<Executed> = if self.policies.sequential() {
            self.one_after_another(current, to_run, seq, deadline).await
        } else {
            futures::future::join_all(
                to_run
                    .iter()
                    .map(|request| self.executor.execute(current, request, seq, deadline)),
            )
            .await
        };
        let ran = executed.len();
        // Stopped for a retry (whatever stop an earlier entry asked), the
        // rest is not final: the retry runs it, and a skipped outcome now
        // would be published for nothing.
        let retried = executed.iter().any(|one| one.retry.is_some());
        let mut pending = Vec::new();
        for (request, Executed { record, retry }) in to_run.iter().zip(executed) {
            if let Some(cause) = retry {
                // Not final: no commit, no outcome; the retry decides again.
                stop.get_or_insert(Stop::Retry {
                    action_id: request.id.clone(),
                    cause: cause.clone(),
                });
                report.retries.push(Retry {
                    action_id: request.id.clone(),
                    cause,
                });
                continue;
            }
            if record.status == Status::Pending {
                pending.push(pending_action(request, &record));
            }
            for commit in &record.commits {
                apply_commit(alert, commit);
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
            report.actions.push(record);
        }
        if ran < to_run.len() && !retried {
            let reason = "not run: an earlier action of the round failed (sequential)";
            report.actions.extend(
                to_run[ran..]
                    .iter()
                    .map(|r| skipped(alert, r, seq, SkipReason::EarlierFailure, reason)),
            );
        }
        if !over.is_empty() {
            tracing::warn!(alert_id = %alert.id, max_actions = self.limits.max_actions, skipped = over.len(), "max actions reached");
            let reason = format!("not run: the alert reached MAX_ACTIONS ({})", self.limits.max_actions);
            report.actions.extend(
                over.iter()
                    .map(|r| skipped(alert, r, seq, SkipReason::MaxActions, &reason)),
            );
        }
        // A stop of the round wins over a suspension: the workflow ends,
        // nothing is stored, and an answer to its pending actions finds no
        // workflow to resume.
        let suspended = (!pending.is_empty()).then_some(Stop::Suspended { pending });
        stop.or(abort_only).or(suspended)
    }

    /// Runs requests in order, each seeing nothing of the others' commits
    /// (they apply after the round), stopping at the first that fails
    /// without `force` or must be retried, as AlertChain does.
    async fn one_after_another(
        &self,
        alert: &Alert,
        requests: &[&ActionRequest],
        seq: u32,
        deadline: Option<Instant>,
    ) -> Vec<Executed> {
        let mut executed = Vec::new();
        for request in requests {
            let one = self.executor.execute(alert, request, seq, deadline).await;
            let halt = one.retry.is_some() || (one.record.status == Status::Failed && !request.force);
            executed.push(one);
            if halt {
                break;
            }
        }
        executed
    }
}

/// The round's requests in the order the policy's set holds them (the
/// policy already left out ids run in earlier rounds); two different entries
/// with one id are a policy error.
fn new_requests(fresh: Vec<ActionRequest>) -> Result<Vec<ActionRequest>, PolicyError> {
    let mut ids = HashSet::new();
    if let Some(twice) = fresh.iter().find(|r| !ids.insert(r.id.as_str())) {
        return Err(PolicyError::Output {
            rule: ACTION_RULE.to_string(),
            reason: format!("two different entries share id {:?}", twice.id),
        });
    }
    Ok(fresh)
}

/// The round's requests when every `uses` names an action of this build:
/// an unknown one stops the workflow as a policy error, whatever `force`
/// says, as AlertChain's "action not found" does (a typo in `uses` is the
/// policy's, never a run of the action that failed).
fn known_actions(registry: &Registry, fresh: Vec<ActionRequest>) -> Result<Vec<ActionRequest>, PolicyError> {
    match fresh
        .iter()
        .find(|r| r.runs_an_action() && registry.get(&r.uses).is_none())
    {
        Some(unknown) => Err(PolicyError::Output {
            rule: ACTION_RULE.to_string(),
            reason: format!(
                "entry {:?}: unknown action {:?} (`alert-responder check` lists this build's actions)",
                unknown.id, unknown.uses
            ),
        }),
        None => Ok(fresh),
    }
}

/// An action the workflow did not get to. Nothing of it is stored, so a
/// later change of the alert may run it: its outcome has an id of its own,
/// not the action's, or a receiver deduplicating on `outcome_id` would drop
/// that run's.
fn skipped(alert: &Alert, request: &ActionRequest, seq: u32, why: SkipReason, reason: &str) -> ActionRecord {
    let mut record = new_record(alert, request, seq, Status::Skipped);
    record.outcome_id = skipped_outcome_id(&alert.id, &request.id);
    record.error = Some(reason.to_string());
    record.skip_reason = Some(why);
    record
}
