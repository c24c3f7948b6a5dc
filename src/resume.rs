//! Suspended workflows from the outside: a pending action answered (Slack,
//! a callback, the CLI) or due (its schedule fired), a workflow resumed
//! with its next rounds, or cancelled. Answers are first-wins conditional
//! writes; a resume runs through the decider (active policies, claims,
//! budgets) and publishes the outcomes its rounds made, with records.

use std::collections::HashSet;
use std::time::Instant;

use crate::decide::{envelope_of, DecideError, Decided, Decision};
use crate::model::decision::RecordContext;
use crate::model::suspended::{Resolution, SuspendedWorkflow};
use crate::model::{ActionRecord, Status};
use crate::pipeline::{action_outcomes, count_actions, decision_record_of, HandleError, Responder, Summary};
use crate::state::{StateError, Taken};
use crate::wakeup::{schedule_name, Wakeup};
use crate::workflow::{resolve, ResolveError, Stop};

/// Why an answer was not taken. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("suspended workflows need a state table (STATE_TABLE)")]
    NoState,
    #[error("no suspended workflow {workflow:?} waits for action {action_id:?}")]
    Unknown { workflow: String, action_id: String },
    #[error("{user} is not one of the approvers of action {action_id:?}")]
    NotAnApprover { user: String, action_id: String },
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// What became of an answer.
#[derive(Debug)]
pub enum Answered {
    /// It was the first: recorded. `ready` when no pending action of the
    /// workflow is left, so it can resume.
    Recorded {
        workflow: Box<SuspendedWorkflow>,
        record: ActionRecord,
        ready: bool,
    },
    /// Another answer (or the timeout) came first, or this one came after
    /// the due time and the timeout was recorded instead: that record.
    /// `suspended`: the workflow's resume is worth starting (it may not
    /// have started: sending it again is harmless).
    Already {
        record: Option<ActionRecord>,
        suspended: bool,
        /// The workflow, while it is stored (to show the answer with).
        workflow: Option<Box<SuspendedWorkflow>>,
    },
}

/// Who gives an answer: what it is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnsweredBy<'a> {
    /// A Slack user clicking a button: checked against the approvers, and
    /// too late after the due time.
    Slack(&'a str),
    /// The holder of a callback URL: too late after the due time.
    Callback,
    /// An operator (`workflows resume`): counts after the due time too,
    /// until the timeout is recorded (without schedules, how a late answer
    /// is given).
    Operator,
    /// The action's schedule, at its due time.
    Schedule,
}

impl Responder {
    /// Records the result of a pending action, first wins. An answer from
    /// Slack or a callback after the action's due time comes too late,
    /// whether or not its schedule has fired yet: the timeout is recorded
    /// instead, as the schedule would.
    pub async fn answer(
        &self,
        workflow_id: &str,
        action_id: &str,
        resolution: &Resolution,
        by: AnsweredBy<'_>,
    ) -> Result<Answered, AnswerError> {
        let state = self.decider().state().ok_or(AnswerError::NoState)?;
        let unknown = || AnswerError::Unknown {
            workflow: workflow_id.to_string(),
            action_id: action_id.to_string(),
        };
        let Some(workflow) = state.workflow(workflow_id).await? else {
            // Its workflow moved on: an action it resolved says so.
            return match state.action_record(workflow_id, action_id).await? {
                Some(record) if record.status != Status::Pending => Ok(Answered::Already {
                    record: Some(record),
                    suspended: false,
                    workflow: None,
                }),
                _ => Err(unknown()),
            };
        };
        let pending = workflow.pending_action(action_id).ok_or_else(unknown)?;
        if let AnsweredBy::Slack(user) = by {
            if !pending.approvers.is_empty() && !pending.approvers.iter().any(|a| a == user) {
                return Err(AnswerError::NotAnApprover {
                    user: user.to_string(),
                    action_id: action_id.to_string(),
                });
            }
        }
        // Checked as given first: a choice not offered is refused, late or not.
        let (mut record, mut writes) = resolve(&workflow, action_id, resolution)?;
        let answered = matches!(resolution, Resolution::Answered { .. });
        let held_to_due_time = matches!(by, AnsweredBy::Slack(_) | AnsweredBy::Callback);
        let late = held_to_due_time && answered && chrono::Utc::now() >= pending.due_at;
        if late {
            let timed_out = Resolution::DueTime {
                now: chrono::Utc::now(),
            };
            (record, writes) = resolve(&workflow, action_id, &timed_out)?;
        }
        if !state.resolve(workflow_id, &record, &writes).await? {
            let record = state.action_record(workflow_id, action_id).await?;
            tracing::info!(
                workflow = workflow_id,
                action_id,
                "already answered; this answer changes nothing"
            );
            return Ok(Answered::Already {
                record,
                suspended: true,
                workflow: Some(Box::new(workflow)),
            });
        }
        tracing::info!(workflow = workflow_id, action_id, result = %record.result.clone().unwrap_or_default(), "pending action resolved");
        if let Some(wakeups) = self.decider().wakeups() {
            // Its schedule is not needed any more unless it is what
            // resolved it (after a late answer it would fire while this
            // resume may hold the workflow).
            if by != AnsweredBy::Schedule {
                // Best effort: a schedule that fires later finds nothing pending.
                if let Err(err) = wakeups.cancel(&schedule_name(workflow_id, action_id)).await {
                    tracing::warn!(workflow = workflow_id, action_id, error = %err, "could not delete the schedule; it will find the action answered");
                }
            }
        }
        let mut ready = true;
        for other in workflow.pending.iter().filter(|p| p.id != action_id) {
            let stored = state.action_record(workflow_id, &other.id).await?;
            if stored.is_none_or(|r| r.status == Status::Pending) {
                ready = false;
            }
        }
        if late {
            tracing::info!(
                workflow = workflow_id,
                action_id,
                "an answer after the due time; the timeout is recorded instead"
            );
            return Ok(Answered::Already {
                record: Some(record),
                suspended: ready,
                workflow: Some(Box::new(workflow)),
            });
        }
        Ok(Answered::Recorded {
            workflow: Box::new(workflow),
            record,
            ready,
        })
    }

    /// A wakeup delivered to this invocation: a due time resolves its
    /// action, then the workflow resumes here when nothing else is pending.
    pub async fn wake(
        &self,
        wakeup: &Wakeup,
        deadline: Option<Instant>,
        request_id: Option<&str>,
    ) -> Result<Summary, HandleError> {
        let (summary, result) = self.wake_counted(wakeup, deadline, request_id).await;
        result.map(|()| summary)
    }

    /// [`Responder::wake`], its counts kept when it fails: a failed
    /// wakeup's metrics still say what its resume did before the retry.
    pub async fn wake_counted(
        &self,
        wakeup: &Wakeup,
        deadline: Option<Instant>,
        request_id: Option<&str>,
    ) -> (Summary, Result<(), HandleError>) {
        let mut summary = Summary::default();
        let result = self.wake_into(wakeup, deadline, request_id, &mut summary).await;
        (summary, result)
    }

    async fn wake_into(
        &self,
        wakeup: &Wakeup,
        deadline: Option<Instant>,
        request_id: Option<&str>,
        summary: &mut Summary,
    ) -> Result<(), HandleError> {
        let workflow = match wakeup {
            Wakeup::Resume { workflow } => workflow,
            Wakeup::Due { workflow, action } => {
                let due = Resolution::DueTime {
                    now: chrono::Utc::now(),
                };
                let answered = self.answer(workflow, action, &due, AnsweredBy::Schedule);
                match crate::deadline::within(deadline, answered).await {
                    // Resolved before (an earlier try of this event whose
                    // resume failed): the resume is tried again.
                    Ok(Answered::Recorded { ready: true, .. } | Answered::Already { suspended: true, .. }) => {}
                    Ok(_) => return Ok(()),
                    Err(AnswerError::State(err)) => return Err(HandleError::State(err)),
                    Err(err) => {
                        // A workflow that moved on or ended: nothing to do.
                        tracing::info!(workflow = %workflow, action_id = %action, reason = %err, "due time of an action no longer pending");
                        return Ok(());
                    }
                }
                workflow
            }
        };
        self.resume_into(workflow, deadline, request_id, summary).await
    }

    /// Runs a workflow on whose pending actions all have their results,
    /// publishing the outcomes of the resolved actions and of every action
    /// its next rounds ran (earlier outcomes were published before).
    pub async fn resume(
        &self,
        workflow_id: &str,
        deadline: Option<Instant>,
        request_id: Option<&str>,
    ) -> Result<Summary, HandleError> {
        let mut summary = Summary::default();
        self.resume_into(workflow_id, deadline, request_id, &mut summary)
            .await
            .map(|()| summary)
    }

    /// [`Responder::resume`], counting into `summary` as it goes.
    async fn resume_into(
        &self,
        workflow_id: &str,
        deadline: Option<Instant>,
        request_id: Option<&str>,
        summary: &mut Summary,
    ) -> Result<(), HandleError> {
        // The state table's and secrets' calls keep to the deadline too;
        // those after the outcomes, to the time left to finish.
        let resumed = match crate::deadline::within(deadline, self.decider().resume(workflow_id, deadline)).await {
            Ok(Some(resumed)) => resumed,
            Ok(None) => return Ok(()),
            Err(err) => return Err(err.into()),
        };
        summary.records += 1;
        // The outcomes of what is new since the suspension: the resolved
        // records and the rounds run now (earlier ones were published).
        let published: HashSet<&str> = resumed
            .suspended
            .actions
            .iter()
            .filter(|a| a.status != Status::Pending)
            .map(|a| a.id.as_str())
            .collect();
        let reports = match &resumed.decided.decision {
            Decision::Alerts(reports) => reports
                .iter()
                .map(|report| {
                    let mut new_only = report.clone();
                    new_only.actions.retain(|a| !published.contains(a.id.as_str()));
                    new_only
                })
                .collect(),
            _ => Vec::new(),
        };
        let new_only = Decided {
            decision: Decision::Alerts(reports),
            policy_time: resumed.decided.policy_time,
            bundle_digest: resumed.decided.bundle_digest.clone(),
            engine: resumed.decided.engine,
        };
        let mut retries = Vec::new();
        let mut late = None;
        let mut outcomes = self.outcomes(&resumed.envelope, new_only, summary, &mut retries, &mut late);
        for outcome in &mut outcomes {
            outcome.bundle_digest = Some(resumed.decided.bundle_digest.clone());
        }
        let context = RecordContext {
            request_id,
            bundle_digest: &resumed.decided.bundle_digest,
            engine: resumed.decided.engine.as_str(),
        };
        let record =
            decision_record_of(&context, &resumed.envelope, &resumed.decided).resumed_at(resumed.suspended.rounds);
        // Outcomes and the record first: the workflow ends (or suspends
        // again) only once they are out, so a retry resumes it again and
        // republishes them (what ran replays).
        let finish_by = crate::deadline::finish_by(deadline);
        let published = match outcomes.is_empty() {
            true => Ok(()),
            false => self.publish_by(&outcomes, finish_by).await,
        };
        let kept = self.keep_records_by(std::slice::from_ref(&record), finish_by).await;
        let give_back = || crate::deadline::within(finish_by, self.decider().give_back(workflow_id));
        if let Err(err) = published {
            summary.outcomes += err.published_of(outcomes.len());
            give_back().await;
            return Err(err.into());
        }
        summary.outcomes += outcomes.len();
        if let Err(err) = kept {
            give_back().await;
            return Err(err.into());
        }
        if let Err(err) = crate::deadline::within(finish_by, self.decider().settle_resume(&resumed)).await {
            // Nothing of the new state is stored: the retry takes it again.
            give_back().await;
            return Err(err.into());
        }
        // Given back by `settle_resume` for the retry to resume again.
        if let Some(err) = late {
            return Err(HandleError::Deadline(DecideError::Deadline(err)));
        }
        match crate::pipeline::retry_error(&retries) {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// Cancels a suspended workflow: every action still pending becomes
    /// `skipped` (reason `cancelled`), their outcomes are published, and no
    /// round runs again.
    pub async fn cancel(&self, workflow_id: &str, by: &str) -> Result<Summary, HandleError> {
        let Some(state) = self.decider().state() else {
            return Ok(Summary::default());
        };
        let lease = std::time::Duration::from_secs(60);
        let workflow = match state.take_workflow(workflow_id, lease).await? {
            Taken::Workflow(workflow) => *workflow,
            Taken::Held => {
                return Err(HandleError::WorkflowBusy(DecideError::WorkflowBusy {
                    workflow: workflow_id.to_string(),
                }))
            }
            Taken::Absent => return Ok(Summary::default()),
        };
        let cancelled = Resolution::Cancelled { by: by.to_string() };
        let mut records = Vec::new();
        for pending in &workflow.pending {
            let Ok((record, writes)) = resolve(&workflow, &pending.id, &cancelled) else {
                continue;
            };
            if state.resolve(workflow_id, &record, &writes).await? {
                records.push(record);
            } else if let Some(answered) = state.action_record(workflow_id, &pending.id).await? {
                // Answered before the cancel (or cancelled by an earlier try
                // whose publish failed): its final outcome goes out now, as
                // no resume will publish it.
                if answered.status != crate::model::Status::Pending {
                    records.push(answered);
                }
            }
            if let Some(wakeups) = self.decider().wakeups() {
                if let Err(err) = wakeups.cancel(&schedule_name(workflow_id, &pending.id)).await {
                    tracing::warn!(workflow = workflow_id, action_id = %pending.id, error = %err, "could not delete the schedule");
                }
            }
        }
        let envelope = envelope_of(&workflow)?;
        let report = crate::workflow::WorkflowReport {
            alert: workflow.alert.clone(),
            initial_attrs: Vec::new(),
            actions: records,
            retries: Vec::new(),
            rounds: workflow.rounds,
            stop: Stop::Completed,
            policy_time: std::time::Duration::ZERO,
            ran_before: 0,
        };
        let mut summary = Summary::default();
        count_actions(&report, &mut summary);
        let mut outcomes = action_outcomes(&envelope, &report);
        // Named by the bundle that decided the workflow, as its other outcomes are.
        let digest: std::sync::Arc<str> = workflow.bundle_digest.as_str().into();
        for outcome in &mut outcomes {
            outcome.bundle_digest = Some(digest.clone());
        }
        // Outcomes first, then the workflow ends: a publish that fails gives
        // the workflow back, and cancelling again publishes them again
        // (under the same outcome ids).
        if !outcomes.is_empty() {
            if let Err(err) = self.publisher().publish(&outcomes).await {
                if let Err(release) = state.release_workflow(workflow_id).await {
                    tracing::warn!(workflow = workflow_id, error = %release, "could not give the workflow back; it is taken again after its lease");
                }
                return Err(err.into());
            }
            summary.outcomes += outcomes.len();
        }
        state.end_workflow(workflow_id).await?;
        tracing::info!(
            workflow = workflow_id,
            by,
            cancelled = summary.actions,
            "workflow cancelled"
        );
        Ok(summary)
    }
}
