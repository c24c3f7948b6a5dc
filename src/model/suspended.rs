//! A workflow suspended on actions waiting for a human or a timer
//! (`approval.request`, `wait`): everything its next round needs, as the
//! state table keeps it until every pending action has its result.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ActionRecord, Alert};
use crate::policy::CommitSpec;

/// Where a suspended workflow stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for its pending actions.
    Suspended,
    /// An invocation is running its next rounds (held until `lease_until`).
    Resuming,
}

/// The message the workflow's alert came from: enough to rebuild its
/// envelope (the payload is the alert's `data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceEnvelope {
    pub schema: String,
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
    /// The change key it was decided under (absent in workflows stored
    /// before it was kept: derived again then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_key: Option<String>,
}

/// A pending action: what its result is checked against, what it commits,
/// how its answer can be shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingAction {
    pub id: String,
    pub uses: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub abort: bool,
    /// The commits its final result writes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commit: Vec<CommitSpec>,
    /// The `secret_*` arguments that were Secrets Manager references (a
    /// reference names a secret, it is not one): the bot token that updates
    /// the Slack message. Literal secrets are never stored.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub secret_refs: Map<String, Value>,
    /// Slack user ids allowed to answer; empty: anyone in the channel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// When it times out (an approval) or completes (a wait).
    pub due_at: DateTime<Utc>,
    /// The Slack message asking, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
}

/// A suspended workflow.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuspendedWorkflow {
    /// The alert, with every attribute committed so far (`data` is the payload).
    pub alert: Alert,
    pub source: SourceEnvelope,
    /// `input.called` so far: every final record, and the pending ones.
    pub actions: Vec<ActionRecord>,
    /// Rounds run so far: the next round's `input.seq`.
    pub rounds: u32,
    pub pending: Vec<PendingAction>,
    /// The policies that suspended it (a resume uses the active ones).
    pub bundle_digest: String,
    pub suspended_at: DateTime<Utc>,
    pub phase: Phase,
}

impl SuspendedWorkflow {
    /// Its id: the alert's (one workflow per alert).
    pub fn id(&self) -> &str {
        &self.alert.id
    }

    pub fn pending_action(&self, action_id: &str) -> Option<&PendingAction> {
        self.pending.iter().find(|p| p.id == action_id)
    }
}

/// How a pending action ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// A human answered (Slack, the callback URL, `workflows resume --answer`).
    Answered {
        answer: String,
        user: String,
        answered_at: DateTime<Utc>,
    },
    /// Its time came: an approval timed out, a wait is over.
    DueTime { now: DateTime<Utc> },
    /// Its workflow was cancelled.
    Cancelled { by: String },
}

impl Resolution {
    /// The action's final result.
    pub fn result(&self, pending: &PendingAction, started_at: DateTime<Utc>) -> Value {
        match self {
            Resolution::Answered {
                answer,
                user,
                answered_at,
            } => serde_json::json!({"answer": answer, "user": user, "answered_at": answered_at.to_rfc3339()}),
            Resolution::DueTime { now } if pending.uses == WAIT => {
                let waited = (*now - started_at).num_seconds().max(0);
                serde_json::json!({ "waited_seconds": waited })
            }
            Resolution::DueTime { .. } => serde_json::json!({"answer": "timeout"}),
            Resolution::Cancelled { by } => serde_json::json!({"answer": "cancelled", "user": by}),
        }
    }
}

/// The two actions that suspend a workflow.
pub const APPROVAL_REQUEST: &str = "approval.request";
pub const WAIT: &str = "wait";
