//! Suspending and resolving: what a pending action keeps until its result
//! comes, and its final record when it does (with the commits its policy
//! asked for, written from that result).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::commit::{commits, persist_writes};
use crate::model::suspended::{PendingAction, Resolution, SuspendedWorkflow, APPROVAL_REQUEST};
use crate::model::{ActionRecord, SkipReason, Status};
use crate::policy::ActionRequest;
use crate::secrets::{is_secret_name, SecretRef};
use crate::state::PersistWrite;

/// What a pending action's workflow keeps of it: the request but its
/// secrets (references to them are kept: they name a secret, and the bot
/// token updates the message), and what its pending result says.
pub(super) fn pending_action(request: &ActionRequest, record: &ActionRecord) -> PendingAction {
    let result = record.result.as_ref();
    let text = |name: &str| {
        result
            .and_then(|r| r.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let list = |name: &str| -> Vec<String> {
        result
            .and_then(|r| r.get(name))
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let secret_refs = request
        .args
        .iter()
        .filter(|(name, value)| is_secret_name(name) && SecretRef::parse(value).is_ok())
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    PendingAction {
        id: request.id.clone(),
        uses: request.uses.clone(),
        name: request.name.clone(),
        force: request.force,
        abort: request.abort,
        commit: request.commit.clone(),
        secret_refs,
        approvers: list("approvers"),
        choices: list("choices"),
        due_at: text("due_at")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(Utc::now),
        channel: text("channel"),
        ts: text("ts"),
    }
}

/// Why a pending action cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("workflow {workflow} has no pending action {action_id:?}")]
    UnknownAction { workflow: String, action_id: String },
    #[error("{answer:?} is not one of the answers offered ({offered})")]
    NotAChoice { answer: String, offered: String },
    #[error("action {action_id:?} is a `{uses}`, not an approval: it takes no answer (`workflows resume` without --answer completes it now)")]
    NotAnApproval { action_id: String, uses: String },
}

/// The final record of `action_id` resolved so, and the persistent writes
/// of its commits. An answer must be one of the choices offered.
pub fn resolve(
    workflow: &SuspendedWorkflow,
    action_id: &str,
    resolution: &Resolution,
) -> Result<(ActionRecord, Vec<PersistWrite>), ResolveError> {
    let unknown = || ResolveError::UnknownAction {
        workflow: workflow.id().to_string(),
        action_id: action_id.to_string(),
    };
    let pending = workflow.pending_action(action_id).ok_or_else(unknown)?;
    let mut record = workflow
        .actions
        .iter()
        .find(|a| a.id == action_id && a.status == Status::Pending)
        .cloned()
        .ok_or_else(unknown)?;
    if let Resolution::Answered { answer, .. } = resolution {
        if pending.uses != APPROVAL_REQUEST {
            return Err(ResolveError::NotAnApproval {
                action_id: action_id.to_string(),
                uses: pending.uses.clone(),
            });
        }
        if !pending.choices.is_empty() && !pending.choices.contains(answer) {
            return Err(ResolveError::NotAChoice {
                answer: answer.clone(),
                offered: pending.choices.join(", "),
            });
        }
    }
    let result = resolution.result(pending, record.started_at);
    record.replay = false;
    record.duration_ms = (Utc::now() - record.started_at).num_milliseconds().max(0) as u64;
    match resolution {
        Resolution::Cancelled { .. } => {
            record.status = Status::Skipped;
            record.skip_reason = Some(SkipReason::Cancelled);
            record.error = Some("not run further: its workflow was cancelled".to_string());
            record.commits = Vec::new();
        }
        _ => {
            record.status = Status::Succeeded;
            record.commits = commits(&request_of(pending), &result, &workflow.alert);
        }
    }
    record.result = Some(result);
    let writes = persist_writes(&workflow.alert, &record.commits);
    Ok((record, writes))
}

/// The request a pending action stands for, for its commits.
fn request_of(pending: &PendingAction) -> ActionRequest {
    ActionRequest {
        id: pending.id.clone(),
        uses: pending.uses.clone(),
        name: pending.name.clone(),
        args: Default::default(),
        force: pending.force,
        abort: pending.abort,
        commit: pending.commit.clone(),
        derived_id: false,
    }
}
