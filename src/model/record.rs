//! What became of one requested action: its status, its result, the
//! attributes it committed. Stored in the state table (for replays) and
//! turned into outcomes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::alert::Attr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Succeeded,
    Failed,
    Skipped,
    DryRun,
    Rejected,
    /// Waiting on a human or a timer (`approval.request`, `wait`): the
    /// workflow is suspended until its result comes.
    Pending,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::DryRun => "dry_run",
            Status::Rejected => "rejected",
            Status::Pending => "pending",
        }
    }
}

/// Why an action was skipped, for subscribers' filters and for policies
/// (`input.called[].skip_reason`) to fall back on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// An `ACTION_BUDGETS` limit was reached.
    Budget,
    /// Actions are paused (`alert-responder actions pause`).
    Paused,
    MaxRounds,
    MaxActions,
    /// An earlier action of a sequential round failed.
    EarlierFailure,
    /// Its suspended workflow was cancelled (`alert-responder workflows cancel`).
    Cancelled,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Budget => "budget",
            SkipReason::Paused => "paused",
            SkipReason::MaxRounds => "max_rounds",
            SkipReason::MaxActions => "max_actions",
            SkipReason::EarlierFailure => "earlier_failure",
            SkipReason::Cancelled => "cancelled",
        }
    }
}

/// How a commit writes its attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitOp {
    /// The value replaces the attribute's.
    #[default]
    Set,
    /// The value is a number added to the attribute's (a counter).
    Add,
}

impl CommitOp {
    fn is_set(&self) -> bool {
        *self == CommitOp::Set
    }
}

/// An attribute written by an action's `commit`: the attribute as the
/// alert holds it, and how it was written. For [`CommitOp::Add`] the value
/// is the delta.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub key: String,
    pub value: Value,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub persist: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    #[serde(default, skip_serializing_if = "CommitOp::is_set")]
    pub op: CommitOp,
    /// The commit's JSONPath as the policy wrote it (AlertChain's commits
    /// carry it in `input.called`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl Commit {
    /// The attribute as written, before an `add` is summed with the current value.
    pub fn attr(&self) -> Attr {
        Attr {
            id: self.id.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
            kind: self.kind.clone(),
            persist: self.persist,
            ttl: self.ttl,
        }
    }
}

/// One action run (or skip) of an alert.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionRecord {
    pub id: String,
    /// Empty for a commit-only entry (nothing ran; no outcome is published).
    pub uses: String,
    /// The entry's label (AlertChain's `name`), its `force` and `abort`,
    /// as `input.called` shows them.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub abort: bool,
    /// Redacted copy of the args.
    pub args: Map<String, Value>,
    pub seq: u32,
    pub status: Status,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub outcome_id: String,
    pub commits: Vec<Commit>,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// Taken from the state table: the action ran in an earlier invocation.
    #[serde(default)]
    pub replay: bool,
    /// Set when `status` is `skipped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<SkipReason>,
    /// The budget that was spent, when `skip_reason` is `budget`:
    /// `uses=virustotal.* (4 per 60 s)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
}

/// Action records by action id: what a dry run sees where an id ran
/// before (a shadow sees the live workflow's, a replay the recorded ones).
pub type Recorded = std::collections::HashMap<String, ActionRecord>;
