//! One requested action: validated, claimed (with a state store), replayed
//! when it ran before, or run with its secrets resolved.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Map, Value};

use super::commit::{commits, persist_writes};
use super::guard::Guards;
use crate::action::{ActionCall, ActionError, Registry};
use crate::model::outcome::{action_outcome_id, paused_outcome_id};
use crate::model::{ActionRecord, Alert, SkipReason, Status};
use crate::policy::ActionRequest;
use crate::secrets::{redact_args, scrub_text, scrub_value, secret_values, ArgSecretError, SecretResolver};
use crate::state::{lease_for, Claim, StateError, StateStore};

/// Why an action's outcome is not final: the invocation must be retried
/// (with a state table, the retry runs only what did not finish).
#[derive(Debug, Clone, thiserror::Error)]
pub enum RetryCause {
    /// The action failed in a way another try may not (connect error,
    /// timeout, 429, 5xx); the message is scrubbed of secret values.
    #[error("{message}")]
    Transient { message: String },
    /// The state table could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// Another invocation holds the claim longer than this one can wait.
    #[error("action {action_id:?} is running in another invocation")]
    Busy { action_id: String },
    /// The action ran, but its record could not be saved: its claim stays
    /// unfinished, and the retry runs it again once the lease is over.
    #[error("the action ran, but its record could not be saved: {0}")]
    Unsaved(StateError),
}

/// An action to be retried with the invocation.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{action_id}: {cause}")]
pub struct Retry {
    pub action_id: String,
    pub cause: RetryCause,
}

/// What running one request gave: its record, final unless `retry` says why not.
pub(super) struct Executed {
    pub(super) record: ActionRecord,
    pub(super) retry: Option<RetryCause>,
}

/// Runs requests: everything the workflow needs to act, but not to decide.
pub(super) struct Executor<'a> {
    pub(super) registry: &'a Registry,
    pub(super) secrets: &'a SecretResolver,
    /// Exactly-once bookkeeping; `None` runs without it.
    pub(super) state: Option<&'a dyn StateStore>,
    /// The shortest lease of a claim (`CLAIM_LEASE_SECONDS`); a claim holds
    /// as long as its invocation can run.
    pub(super) lease_floor: Duration,
    pub(super) dry_run: bool,
    /// Budgets and the actions switch.
    pub(super) guards: &'a Guards,
    /// In a dry run (a shadow, a replay): results recorded by action id,
    /// seen instead of `dry_run` where the id ran before.
    pub(super) recorded: Option<&'a crate::model::record::Recorded>,
}

impl Executor<'_> {
    pub(super) async fn execute(
        &self,
        alert: &Alert,
        request: &ActionRequest,
        seq: u32,
        deadline: Option<Instant>,
    ) -> Executed {
        let clock = Instant::now();
        let mut record = new_record(alert, request, seq, Status::Failed);
        // A commit-only entry (no `uses`) runs nothing: its commits are
        // written from their values, with the same claim and record.
        let action = match request.runs_an_action() {
            false => None,
            true => match self.registry.validate(&request.id, &request.uses, &request.args) {
                Ok(action) => Some(action),
                Err(err) => {
                    record.error = Some(error_text(&err, &request.id, &request.uses));
                    return final_record(record, alert, clock);
                }
            },
        };
        // A suspended workflow is resumed from the state table: without
        // one, an action that suspends cannot run.
        let suspends = action.as_ref().is_some_and(|a| a.suspends());
        if suspends && self.state.is_none() && !self.dry_run {
            record.error = Some(format!(
                "{} suspends the workflow until its result comes: it needs a state table (STATE_TABLE)",
                request.uses
            ));
            return final_record(record, alert, clock);
        }
        if self.dry_run {
            if let Some(done) = self.recorded.and_then(|r| r.get(&request.id)) {
                // What the action did when it ran, with the args asked for
                // now and what these policies commit of its result.
                let mut seen = done.clone();
                seen.seq = seq;
                seen.args = record.args;
                seen.force = request.force;
                seen.abort = request.abort;
                let result = seen.result.clone().unwrap_or(Value::Null);
                seen.commits = match seen.status {
                    Status::Succeeded => commits(request, &result, alert),
                    Status::Failed if request.force => commits(request, &result, alert),
                    _ => Vec::new(),
                };
                return Executed {
                    record: seen,
                    retry: None,
                };
            }
            record.status = Status::DryRun;
            return final_record(record, alert, clock);
        }
        if let Some(state) = self.state {
            match self.claim(state, alert, request, deadline).await {
                Ok(None) => {}
                Ok(Some(mut done)) => {
                    // The action ran before: replay its record, run nothing.
                    done.replay = true;
                    done.seq = seq;
                    tracing::info!(alert_id = %alert.id, action_id = %request.id, "action already ran; replaying its record");
                    return Executed {
                        record: done,
                        retry: None,
                    };
                }
                Err(cause) => return retry_record(record, alert, clock, cause),
            }
        }
        let transient = match action {
            Some(action) => {
                // The action reads its declared argument names only.
                let canonical = ActionRequest {
                    args: self.registry.canonical_args(&request.uses, &request.args),
                    ..request.clone()
                };
                record = match self.unpaused(alert, request, record, clock).await {
                    Ok(record) => record,
                    Err(stopped) => return stopped,
                };
                // Secrets are read before the budgets count the run: a run
                // whose secrets cannot be read calls no vendor, so it
                // counts against no budget (an outage of Secrets Manager
                // would otherwise spend them on retries).
                let resolved = self.secrets.resolve_args(&canonical.args).await;
                if resolved.is_ok() {
                    record = match self.within_budget(alert, request, record, clock).await {
                        Ok(record) => record,
                        Err(stopped) => return stopped,
                    };
                }
                self.run(action.as_ref(), alert, &canonical, resolved, deadline, &mut record)
                    .await
            }
            None => {
                record.status = Status::Succeeded;
                record.commits = commits(request, &Value::Null, alert);
                false
            }
        };
        record = finish(record, alert, clock);
        // What ran is saved with the time left to finish, not the
        // decision's: a retry would run it again.
        let retry = match self.state {
            Some(state) => {
                let settled = self.settle(state, alert, request, &record, transient);
                crate::deadline::within(crate::deadline::finish_by(deadline), settled).await
            }
            None => None,
        };
        Executed { record, retry }
    }

    /// Runs the action on its `resolved` arguments (secrets read) into
    /// `record`; true when it failed transiently.
    async fn run(
        &self,
        action: &dyn crate::action::Action,
        alert: &Alert,
        request: &ActionRequest,
        resolved: Result<Map<String, Value>, ArgSecretError>,
        deadline: Option<Instant>,
        record: &mut ActionRecord,
    ) -> bool {
        // Literal secret values in the request; resolved ones are added below.
        let mut secrets = secret_values(&request.args);
        let outcome = match resolved {
            Err(err) => Err(ActionError::Secret(err)),
            Ok(args) => {
                secrets.extend(secret_values(&args));
                // An AWS call of the action (`sns.publish`) is cut by the
                // decision's deadline too, a transient failure then.
                action
                    .run(ActionCall {
                        action_id: &request.id,
                        outcome_id: &record.outcome_id,
                        alert,
                        args: &args,
                        deadline,
                    })
                    .await
            }
        };
        let transient = matches!(&outcome, Err(err) if err.is_transient());
        match outcome {
            // Not final: its result comes with the answer or the timer.
            Ok(result) if action.suspends() => {
                record.status = Status::Pending;
                record.result = Some(scrub_value(&result, &secrets));
            }
            Ok(result) => {
                let result = scrub_value(&result, &secrets);
                record.status = Status::Succeeded;
                record.commits = commits(request, &result, alert);
                record.result = Some(result);
            }
            Err(err) => {
                record.result = err.result().map(|r| scrub_value(r, &secrets));
                record.error = Some(scrub_text(&error_text(&err, &request.id, &request.uses), &secrets));
                // "This failure must not hold the workflow back": what the
                // commits say still holds — their values where a path
                // finds nothing in the failure's result (as AlertChain).
                if request.force {
                    record.commits = commits(request, record.result.as_ref().unwrap_or(&Value::Null), alert);
                }
            }
        }
        transient
    }

    /// What the actions switch says of a run that is this invocation's
    /// (claimed, or with no state store): the record back to run it, else
    /// what stands instead. Checked after the claim so that what ran before
    /// replays.
    async fn unpaused(
        &self,
        alert: &Alert,
        request: &ActionRequest,
        mut record: ActionRecord,
        clock: Instant,
    ) -> Result<ActionRecord, Executed> {
        // Paused: the claim is given back and nothing is stored.
        let paused = self.guards.paused().await;
        if !matches!(paused, Ok(false)) {
            self.give_back(alert, request).await;
        }
        match paused {
            Ok(false) => Ok(record),
            Ok(true) => {
                record.status = Status::Skipped;
                record.skip_reason = Some(SkipReason::Paused);
                record.outcome_id = paused_outcome_id(&alert.id, &request.id);
                record.error = Some("not run: actions are paused (alert-responder actions resume)".to_string());
                Err(final_record(record, alert, clock))
            }
            Err(err) => Err(retry_record(record, alert, clock, RetryCause::State(err))),
        }
    }

    /// What the budgets say of a run the switch let through: the record
    /// back to run it, else its skip (a final record, stored and replayed;
    /// a replay never counts).
    async fn within_budget(
        &self,
        alert: &Alert,
        request: &ActionRequest,
        mut record: ActionRecord,
        clock: Instant,
    ) -> Result<ActionRecord, Executed> {
        match self.guards.admit(&request.uses, &request.id).await {
            Ok(None) => Ok(record),
            Ok(Some(budget)) => {
                record.status = Status::Skipped;
                record.skip_reason = Some(SkipReason::Budget);
                record.error = Some(format!("not run: budget {budget} is spent for this window"));
                record.budget = Some(budget);
                let record = finish(record, alert, clock);
                let retry = match self.state {
                    Some(state) => self.settle(state, alert, request, &record, false).await,
                    None => None,
                };
                Err(Executed { record, retry })
            }
            Err(err) => {
                // Unknown whether the budget allows it: not run over budget, retried.
                self.give_back(alert, request).await;
                Err(retry_record(record, alert, clock, RetryCause::State(err)))
            }
        }
    }

    /// Gives a won claim back (with a state store) without a record.
    async fn give_back(&self, alert: &Alert, request: &ActionRequest) {
        if let Some(state) = self.state {
            if let Err(err) = state.release(&alert.id, &request.id).await {
                tracing::warn!(alert_id = %alert.id, action_id = %request.id, error = %err, "could not release the claim; it expires with its lease");
            }
        }
    }

    /// Stores a final record with its persistent writes, or gives the claim
    /// back after a transient failure so the retried invocation runs it again.
    async fn settle(
        &self,
        state: &dyn StateStore,
        alert: &Alert,
        request: &ActionRequest,
        record: &ActionRecord,
        transient: bool,
    ) -> Option<RetryCause> {
        // A forced action's failure is final: it must not hold the workflow back.
        if transient && !request.force {
            if let Err(err) = state.release(&alert.id, &request.id).await {
                tracing::warn!(alert_id = %alert.id, action_id = %request.id, error = %err, "could not release the claim; it expires with its lease");
            }
            return Some(RetryCause::Transient {
                message: record.error.clone().unwrap_or_default(),
            });
        }
        let writes = persist_writes(alert, &record.commits);
        match state.complete(&alert.id, record, &writes).await {
            Ok(()) => None,
            Err(err) => {
                tracing::error!(alert_id = %alert.id, action_id = %request.id, error = %err, "the action ran but its record could not be saved");
                Some(RetryCause::Unsaved(err))
            }
        }
    }

    /// Wins the claim (`Ok(None)`), finds the finished record (`Ok(Some)`),
    /// or gives up (the state table is unreachable, or another invocation
    /// holds the claim past what this one can wait).
    async fn claim(
        &self,
        state: &dyn StateStore,
        alert: &Alert,
        request: &ActionRequest,
        deadline: Option<Instant>,
    ) -> Result<Option<ActionRecord>, RetryCause> {
        loop {
            let lease = lease_for(deadline, self.lease_floor);
            match state.claim(&alert.id, &request.id, lease).await? {
                Claim::Claimed => return Ok(None),
                Claim::Done(record) => return Ok(Some(*record)),
                Claim::Busy { lease_left } => {
                    // Another invocation runs it: wait for its record (or for its
                    // lease to lapse) while this invocation has time to.
                    let wait = Duration::from_millis(250);
                    let time_left = match deadline {
                        Some(deadline) => Instant::now() + wait + Duration::from_secs(1) < deadline,
                        None => lease_left <= self.lease_floor,
                    };
                    if !time_left {
                        return Err(RetryCause::Busy {
                            action_id: request.id.clone(),
                        });
                    }
                    tracing::info!(alert_id = %alert.id, action_id = %request.id, lease_left_s = lease_left.as_secs(), "action claimed by another invocation; waiting");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// A record of `request` with no result yet.
pub(super) fn new_record(alert: &Alert, request: &ActionRequest, seq: u32, status: Status) -> ActionRecord {
    ActionRecord {
        id: request.id.clone(),
        uses: request.uses.clone(),
        name: request.name.clone(),
        force: request.force,
        abort: request.abort,
        args: redact_args(&request.args),
        seq,
        status,
        result: None,
        error: None,
        outcome_id: action_outcome_id(&alert.id, &request.id),
        commits: Vec::new(),
        started_at: Utc::now(),
        duration_ms: 0,
        replay: false,
        skip_reason: None,
        budget: None,
    }
}

/// Not final: the invocation (or the batch's record) is retried.
fn retry_record(mut record: ActionRecord, alert: &Alert, clock: Instant, cause: RetryCause) -> Executed {
    record.error = Some(cause.to_string());
    Executed {
        record: finish(record, alert, clock),
        retry: Some(cause),
    }
}

fn final_record(record: ActionRecord, alert: &Alert, clock: Instant) -> Executed {
    Executed {
        record: finish(record, alert, clock),
        retry: None,
    }
}

fn finish(mut record: ActionRecord, alert: &Alert, clock: Instant) -> ActionRecord {
    record.duration_ms = clock.elapsed().as_millis() as u64;
    match (&record.error, record.status) {
        // Not run on purpose (a budget, the kill switch): not a failure.
        (Some(reason), Status::Skipped) => {
            tracing::info!(alert_id = %alert.id, action_id = %record.id, uses = %record.uses, seq = record.seq, skip_reason = ?record.skip_reason, reason = %reason, "action skipped")
        }
        (Some(error), _) => {
            tracing::warn!(alert_id = %alert.id, action_id = %record.id, uses = %record.uses, seq = record.seq, duration_ms = record.duration_ms, error = %error, "action failed")
        }
        (None, _) => {
            tracing::info!(alert_id = %alert.id, action_id = %record.id, uses = %record.uses, seq = record.seq, duration_ms = record.duration_ms, status = record.status.as_str(), "action done")
        }
    }
    record
}

fn error_text(err: &ActionError, action_id: &str, uses: &str) -> String {
    match err {
        // Named as `check` names it: the entry, then what is wrong.
        ActionError::BadArg { .. } | ActionError::BadRequest(_) => {
            format!("run entry {action_id:?} ({uses}): invalid request: {err}")
        }
        // Names the action and the secret, never its value.
        ActionError::Secret(_) => format!("action {action_id:?}: {err}"),
        _ => err.to_string(),
    }
}
