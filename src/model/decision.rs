//! Decision records: one JSON line per message decided, kept durably
//! (`DECISION_RECORDS`, `run --records`) so that a decision can be
//! explained, queried and re-decided later (`replay`).
//!
//! The JSON Schema is `schemas/decision.v1.json`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::alert::{Alert, Attr};
use super::outcome::{preview, truncate_string};
use super::record::{ActionRecord, Commit, SkipReason, Status};
use crate::ingest::{Envelope, Rejected};

pub const RECORD_SCHEMA_VERSION: u32 = 1;
pub const RECORD_TYPE: &str = "decision";

/// A result carried in a record is cut to a preview past this.
const RESULT_PREVIEW_BYTES: usize = 16 * 1024;
const ERROR_BYTES: usize = 4 * 1024;
/// A rejected message's original text, kept up to SNS's own limit.
const ORIGINAL_BYTES: usize = 256 * 1024;

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionResult {
    /// The alert policy ran; `alerts` says what it made and what was done.
    Decided,
    /// Not ingested: `error` says why, `original` keeps the message.
    Rejected,
    /// No alert policy for the message's schema.
    NoAlertPolicy,
    /// Older than a change already processed: not acted on.
    Stale,
    /// The alert policy failed: `error`.
    PolicyError,
    /// The state table failed or a namespace stayed busy: retried.
    NotDecided,
}

/// Where the message came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RecordSource {
    pub message_id: Option<String>,
    pub topic_arn: Option<String>,
    pub change_key: Option<String>,
    pub schema: Option<String>,
    /// The SNS notification's time, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
}

/// Why the workflow stopped, as `Stop` serializes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopRecord {
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One action as the record keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionEntry {
    pub id: String,
    /// Empty for a commit-only entry.
    pub uses: String,
    /// The round that asked for it.
    pub seq: u32,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<SkipReason>,
    /// The budget spent, when `skip_reason` is `budget`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    /// Taken from the state table: it ran in an earlier invocation.
    #[serde(default)]
    pub replay: bool,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub abort: bool,
    /// Redacted: `secret_*` values never appear.
    pub args: Map<String, Value>,
    /// Bounded: a large result is a preview (`{"truncated": true, ...}`).
    pub result: Option<Value>,
    pub error: Option<String>,
    #[serde(default)]
    pub commits: Vec<Commit>,
    pub outcome_id: String,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
}

/// One alert the alert policy made, and its workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEntry {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub namespace: String,
    /// The attributes at the end of the workflow.
    pub attrs: Vec<Attr>,
    pub rounds: u32,
    pub stop: StopRecord,
    pub actions: Vec<ActionEntry>,
    /// Actions left to a retry of the invocation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<RetryEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryEntry {
    pub action_id: String,
    pub cause: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Timings {
    /// Policy evaluation, alert and action policies together.
    pub decision_us: u64,
    /// The message from ingestion to its decision's end, actions included.
    pub total_ms: u64,
}

/// One decision record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub record_type: String,
    pub schema_version: u32,
    /// The same message decided again (a retry) has the same id.
    pub record_id: String,
    pub decided_at: DateTime<Utc>,
    /// The Lambda invocation's request id.
    pub request_id: Option<String>,
    pub source: RecordSource,
    /// The payload as ingested: enough to decide the message again.
    pub payload: Option<Arc<Value>>,
    /// A rejected message's text (bounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
    pub bundle_digest: String,
    pub engine: String,
    pub result: DecisionResult,
    pub error: Option<String>,
    pub alerts: Vec<AlertEntry>,
    pub timings: Timings,
    /// What a shadow bundle would have decided (`SHADOW_POLICY_BUNDLE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowRecord>,
    /// A suspended workflow run on from this round (an answer, a timeout):
    /// the record continues its message's first one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_at_round: Option<u32>,
}

/// A shadow bundle's decision of the same message: never acted on; where
/// it asked for an action id the live workflow ran it saw the live result,
/// otherwise a dry run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowRecord {
    pub bundle_digest: String,
    /// The shadow decided differently (`divergence` says how).
    pub diverged: bool,
    /// The shadow's alert policy failed, or it has none for the schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub alerts: Vec<AlertEntry>,
    /// Against the live decision: `*_removed` only live, `*_added` only shadow.
    pub divergence: super::divergence::Divergence,
    pub decision_us: u64,
}

/// What is the same for every record of one responder.
#[derive(Debug, Clone, Copy)]
pub struct RecordContext<'a> {
    pub request_id: Option<&'a str>,
    pub bundle_digest: &'a str,
    pub engine: &'a str,
}

impl DecisionRecord {
    fn new(
        context: &RecordContext<'_>,
        identity: &str,
        source: RecordSource,
        result: DecisionResult,
    ) -> DecisionRecord {
        DecisionRecord {
            record_type: RECORD_TYPE.to_string(),
            schema_version: RECORD_SCHEMA_VERSION,
            record_id: hex::encode(&Sha256::digest(identity.as_bytes())[..16]),
            decided_at: Utc::now(),
            request_id: context.request_id.map(str::to_string),
            source,
            payload: None,
            original: None,
            bundle_digest: context.bundle_digest.to_string(),
            engine: context.engine.to_string(),
            result,
            error: None,
            alerts: Vec::new(),
            timings: Timings::default(),
            shadow: None,
            resumed_at_round: None,
        }
    }

    /// The record of a resumed workflow's rounds from `round` on: its own
    /// id (the message's first record keeps the message's).
    pub fn resumed_at(mut self, round: u32) -> DecisionRecord {
        let identity = format!("{}/resumed/{round}", self.record_id);
        self.record_id = hex::encode(&Sha256::digest(identity.as_bytes())[..16]);
        self.resumed_at_round = Some(round);
        self
    }

    /// A decided message (or one that could not be decided now).
    pub fn of_envelope(context: &RecordContext<'_>, envelope: &Envelope, result: DecisionResult) -> DecisionRecord {
        let source = RecordSource {
            message_id: Some(envelope.message_id.clone()).filter(|m| !m.is_empty()),
            topic_arn: envelope.topic_arn.clone(),
            change_key: Some(envelope.change_key()),
            schema: Some(envelope.schema.clone()),
            timestamp: envelope.timestamp,
        };
        let identity = format!("{}\n{}", envelope.message_id, envelope.change_key());
        let mut record = DecisionRecord::new(context, &identity, source, result);
        record.payload = Some(Arc::clone(&envelope.payload));
        record
    }

    /// A message that could not be ingested.
    pub fn of_rejected(context: &RecordContext<'_>, rejected: &Rejected) -> DecisionRecord {
        let source = RecordSource {
            message_id: rejected.message_id.clone(),
            topic_arn: rejected.topic_arn.clone(),
            ..RecordSource::default()
        };
        let identity = match &rejected.message_id {
            Some(id) => format!("rejected\n{id}"),
            None => format!("rejected\n{}", rejected.original),
        };
        let mut record = DecisionRecord::new(context, &identity, source, DecisionResult::Rejected);
        let mut original = rejected.original.clone();
        truncate_string(&mut original, ORIGINAL_BYTES);
        record.original = Some(original);
        record.error = Some(rejected.error.to_string());
        record
    }

    pub fn with_error(mut self, error: &str) -> DecisionRecord {
        let mut error = error.to_string();
        truncate_string(&mut error, ERROR_BYTES);
        self.error = Some(error);
        self
    }
}

impl AlertEntry {
    pub fn new(
        alert: &Alert,
        rounds: u32,
        stop: StopRecord,
        actions: &[ActionRecord],
        retries: Vec<RetryEntry>,
    ) -> AlertEntry {
        AlertEntry {
            id: alert.id.clone(),
            title: alert.title.clone(),
            severity: alert.severity.clone(),
            namespace: alert.namespace.clone(),
            attrs: alert.attrs.clone(),
            rounds,
            stop,
            actions: actions.iter().map(ActionEntry::of).collect(),
            retries,
        }
    }
}

impl ActionEntry {
    pub fn of(record: &ActionRecord) -> ActionEntry {
        ActionEntry {
            id: record.id.clone(),
            uses: record.uses.clone(),
            seq: record.seq,
            status: record.status,
            skip_reason: record.skip_reason,
            budget: record.budget.clone(),
            replay: record.replay,
            force: record.force,
            abort: record.abort,
            args: record.args.clone(),
            result: record.result.as_ref().map(|r| preview(r, RESULT_PREVIEW_BYTES)),
            error: record.error.clone().map(|mut e| {
                truncate_string(&mut e, ERROR_BYTES);
                e
            }),
            commits: record.commits.clone(),
            outcome_id: record.outcome_id.clone(),
            started_at: record.started_at,
            duration_ms: record.duration_ms,
        }
    }

    /// The action record a replay sees for this action (its recorded result).
    pub fn to_action_record(&self) -> ActionRecord {
        ActionRecord {
            id: self.id.clone(),
            uses: self.uses.clone(),
            name: String::new(),
            force: self.force,
            abort: self.abort,
            args: self.args.clone(),
            seq: self.seq,
            status: self.status,
            result: self.result.clone(),
            error: self.error.clone(),
            outcome_id: self.outcome_id.clone(),
            commits: self.commits.clone(),
            started_at: self.started_at,
            duration_ms: self.duration_ms,
            replay: self.replay,
            skip_reason: self.skip_reason,
            budget: self.budget.clone(),
        }
    }
}
