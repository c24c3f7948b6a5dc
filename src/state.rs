//! The state port: what the workflow and the pipeline keep across
//! invocations. DynamoDB implements it (`aws::dynamodb`), and so does an
//! in-memory store (`memory`) for `play` and the in-process tests.
//!
//! | item | holds |
//! |---|---|
//! | action claim, per (alert id, action id) | running (with a lease) or done (with the finished record) |
//! | Matano change, per Matano alert id | the highest `update_count` processed |
//! | persistent attribute, per (namespace, attribute id) | a JSON value or a numeric counter, with an expiry |
//! | namespace lock, per namespace | the alert deciding in it, with a lease |
//! | action budget, per (budget, window) | the runs counted in that window, expiring after it |
//! | the actions switch | paused or not, why, who, when |
//! | suspended workflow, per alert id | the alert, `called`, round, pending actions; suspended or being resumed (with a lease) |
//!
//! A side-effecting action runs only after its claim is won; its record is
//! written when it finishes, so a duplicate delivery or a retry replays the
//! record instead of running it again. A claim whose lease ran out (its
//! invocation died) can be taken over.

use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use serde_json::Value;

use crate::model::suspended::SuspendedWorkflow;
use crate::model::{ActionRecord, Attr};

/// A lease outlives the invocation's deadline by this much: the outcomes
/// are published after it, and clocks differ a little between instances.
const LEASE_MARGIN: Duration = Duration::from_secs(3);

/// How long a claim or a namespace lock must hold: as long as the invocation
/// holding it can still be running (its deadline, plus a margin), and never
/// less than `floor` (`CLAIM_LEASE_SECONDS`). A takeover then happens only
/// when the holder can no longer be running.
pub fn lease_for(deadline: Option<std::time::Instant>, floor: Duration) -> Duration {
    match deadline {
        Some(deadline) => floor.max(deadline.saturating_duration_since(std::time::Instant::now()) + LEASE_MARGIN),
        None => floor,
    }
}

/// How long finished records and change marks are kept.
pub const RECORD_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Seconds a persisted attribute lives when its commit gives no `ttl`.
pub const DEFAULT_PERSIST_TTL: u64 = 86_400;

/// How long a persisted attribute lives: its `ttl` seconds, or the default
/// when it gives none or `0` (AlertChain's zero value, which it reads as
/// its default too).
pub fn persist_ttl(ttl: Option<u64>) -> std::time::Duration {
    std::time::Duration::from_secs(match ttl {
        None | Some(0) => DEFAULT_PERSIST_TTL,
        Some(seconds) => seconds,
    })
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("state table {table}: {operation} failed: {reason}")]
pub struct StateError {
    pub table: String,
    pub operation: &'static str,
    pub reason: String,
}

/// The answer to a claim.
#[derive(Debug, Clone)]
pub enum Claim {
    /// This invocation may run the action.
    Claimed,
    /// It already ran: its record.
    Done(Box<ActionRecord>),
    /// Another invocation is running it; its lease has this long to run
    /// (by the store's clock).
    Busy { lease_left: Duration },
}

/// Where a Matano change stands against the ones already processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOrder {
    /// Newest (or the same as the newest: a duplicate, handled by claims).
    Current,
    /// Older than `latest`, which was processed already.
    Stale { latest: u64 },
}

/// A persistent attribute write, done with the action's record.
#[derive(Debug, Clone, PartialEq)]
pub struct PersistWrite {
    pub namespace: String,
    /// The attribute's id: what identifies it in the namespace.
    pub id: String,
    pub key: String,
    /// The attribute's `type`.
    pub kind: Option<String>,
    pub op: PersistOp,
    pub ttl: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PersistOp {
    Set(Value),
    /// Atomic addition to a numeric counter: concurrent alerts never lose an update.
    Add(f64),
}

/// The actions switch (`alert-responder actions pause|resume`): while
/// paused, every action is skipped; decisions, records and outcomes flow.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActionsSwitch {
    pub paused: bool,
    /// Why, in the words of who changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who changed it (the CLI's user, or what they gave).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<String>,
    /// When (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<String>,
}

/// The answer to taking a suspended workflow.
#[derive(Debug)]
pub enum Taken {
    /// This invocation holds it now.
    Workflow(Box<SuspendedWorkflow>),
    /// Another invocation is resuming it (its lease runs).
    Held,
    /// None is stored: it ended, or never was.
    Absent,
}

/// Suspended workflows and their pending actions (`approval.request`,
/// `wait`), next to the claims they hold.
pub trait WorkflowStore: Send + Sync {
    /// Stores `workflow` as suspended. Unless `holder` (the resume that
    /// took it), only where none is stored or the stored one is suspended
    /// at the same round or an earlier one; false when nothing was written.
    fn save_workflow<'a>(
        &'a self,
        workflow: &'a SuspendedWorkflow,
        holder: bool,
    ) -> BoxFuture<'a, Result<bool, StateError>>;
    fn workflow<'a>(&'a self, alert_id: &'a str) -> BoxFuture<'a, Result<Option<SuspendedWorkflow>, StateError>>;
    /// Every stored workflow, oldest first.
    fn workflows(&self) -> BoxFuture<'_, Result<Vec<SuspendedWorkflow>, StateError>>;
    /// Takes a suspended workflow to resume it (or one whose resume's lease
    /// ran out), for `lease`.
    fn take_workflow<'a>(&'a self, alert_id: &'a str, lease: Duration) -> BoxFuture<'a, Result<Taken, StateError>>;
    /// Gives a taken workflow back, suspended (its resume must be retried).
    fn release_workflow<'a>(&'a self, alert_id: &'a str) -> BoxFuture<'a, Result<(), StateError>>;
    /// Forgets a workflow that finished or was cancelled.
    fn end_workflow<'a>(&'a self, alert_id: &'a str) -> BoxFuture<'a, Result<(), StateError>>;
    /// The stored record of an action, if it finished or is pending.
    fn action_record<'a>(
        &'a self,
        alert_id: &'a str,
        action_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ActionRecord>, StateError>>;
    /// The stored records of every action of an alert that finished or is
    /// pending, in no particular order.
    fn action_records<'a>(&'a self, alert_id: &'a str) -> BoxFuture<'a, Result<Vec<ActionRecord>, StateError>>;
    /// Replaces a pending action's record by its final one (with its
    /// persistent writes), atomically; false when it was not pending any
    /// more (answered first elsewhere): nothing is written then.
    fn resolve<'a>(
        &'a self,
        alert_id: &'a str,
        record: &'a ActionRecord,
        writes: &'a [PersistWrite],
    ) -> BoxFuture<'a, Result<bool, StateError>>;
}

pub trait StateStore: WorkflowStore + Send + Sync {
    fn claim<'a>(
        &'a self,
        alert_id: &'a str,
        action_id: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Claim, StateError>>;
    /// Records a finished action and its persistent attribute writes, atomically.
    fn complete<'a>(
        &'a self,
        alert_id: &'a str,
        record: &'a ActionRecord,
        writes: &'a [PersistWrite],
    ) -> BoxFuture<'a, Result<(), StateError>>;
    /// Gives a claim up (the action failed transiently and will be retried).
    fn release<'a>(&'a self, alert_id: &'a str, action_id: &'a str) -> BoxFuture<'a, Result<(), StateError>>;
    fn observe_change<'a>(
        &'a self,
        matano_alert_id: &'a str,
        update_count: u64,
    ) -> BoxFuture<'a, Result<ChangeOrder, StateError>>;
    /// Persistent attribute writes that belong to no action record (an
    /// alert policy's `persist: true` attributes); not atomic together.
    fn save_attrs<'a>(&'a self, writes: &'a [PersistWrite]) -> BoxFuture<'a, Result<(), StateError>>;
    /// The namespace's live persistent attributes, sorted by key.
    fn load_attrs<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<Vec<Attr>, StateError>>;
    /// Takes (or renews) the lock of a namespace for `owner`, for `lease`;
    /// false when another owner holds it.
    fn lock_namespace<'a>(
        &'a self,
        namespace: &'a str,
        owner: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<bool, StateError>>;
    /// Gives the lock up, if `owner` still holds it.
    fn unlock_namespace<'a>(&'a self, namespace: &'a str, owner: &'a str) -> BoxFuture<'a, Result<(), StateError>>;
    /// Counts one run against `budget` in its current fixed window of
    /// `window` (by this instance's clock: instances whose clocks differ
    /// may count a run near a window's edge in different windows), atomically: the window's start
    /// (epoch seconds) it was counted in; `None`, and nothing counted, when
    /// the window already holds `limit`.
    fn take_budget<'a>(
        &'a self,
        budget: &'a str,
        limit: u32,
        window: Duration,
    ) -> BoxFuture<'a, Result<Option<u64>, StateError>>;
    /// Takes back one run that [`StateStore::take_budget`] counted in the
    /// window starting at `window_start` (never below zero): the run was
    /// refused by another budget.
    fn return_budget<'a>(
        &'a self,
        budget: &'a str,
        window: Duration,
        window_start: u64,
    ) -> BoxFuture<'a, Result<(), StateError>>;
    /// The actions switch (not paused when never set).
    fn actions_switch(&self) -> BoxFuture<'_, Result<ActionsSwitch, StateError>>;
    fn set_actions_switch<'a>(&'a self, switch: &'a ActionsSwitch) -> BoxFuture<'a, Result<(), StateError>>;
}

/// A stored counter as the JSON number policies see: whole numbers as
/// integers.
pub fn counter_value(counter: f64) -> Value {
    if counter.fract() == 0.0 && counter.abs() < 9e15 {
        Value::from(counter as i64)
    } else {
        serde_json::Number::from_f64(counter).map_or(Value::Null, Value::Number)
    }
}

/// A token naming one writer of the state table (a namespace lock's
/// owner, a conditional write, a transaction): unique across instances and
/// calls, not secret. std's hasher is randomly keyed per process and keyed
/// anew for each `RandomState`, which is all the uniqueness needed.
pub fn unique_token() -> String {
    use std::hash::BuildHasher;
    let half = || std::collections::hash_map::RandomState::new().hash_one(SystemTime::now());
    format!("{:016x}{:016x}", half(), half())
}

#[cfg(test)]
mod tests {
    use super::unique_token;

    #[test]
    fn tokens_differ_call_to_call_and_fit_a_client_request_token() {
        let tokens: std::collections::HashSet<String> = (0..1000).map(|_| unique_token()).collect();
        assert_eq!(tokens.len(), 1000, "every call its own token");
        assert!(tokens
            .iter()
            .all(|t| t.len() <= 36 && t.chars().all(|c| c.is_ascii_hexdigit())));
    }
}
