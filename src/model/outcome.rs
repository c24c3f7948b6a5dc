//! Outcomes: one versioned JSON message per action run (plus one per rejected
//! message, policy error or stale change). `crate::publish` delivers them.
//!
//! The JSON Schema is `schemas/outcome.v1.json`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::alert::{Alert, Attr};
use super::record::{Commit, SkipReason, Status};
use crate::ingest::{content_hash, Envelope, Rejected};

pub const SCHEMA_VERSION: u32 = 1;

/// SNS's message limit is 256 KiB including attributes; outcome bodies stay
/// under this, leaving room for the attributes.
pub const MAX_OUTCOME_BYTES: usize = 240 * 1024;
/// The unit of the previews an outcome over [`MAX_OUTCOME_BYTES`] is cut to:
/// results and args are shown up to a quarter of it, a rejected original up to all of it.
const MAX_FIELD_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// An action ran (or was skipped, or dry-run).
    ActionOutcome,
    /// A message could not be ingested; `rejected` keeps it.
    MessageRejected,
    /// A policy failed for this message or alert; no further action ran.
    PolicyError,
    /// A Matano change older than one already processed: not acted on.
    StaleChange,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ActionOutcome => "action_outcome",
            EventType::MessageRejected => "message_rejected",
            EventType::PolicyError => "policy_error",
            EventType::StaleChange => "stale_change",
        }
    }
}

/// What subscribers need of the alert, without its (large) data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSummary {
    pub id: String,
    pub schema: String,
    pub title: String,
    pub severity: String,
    pub source: String,
    pub namespace: String,
    pub attrs: Vec<Attr>,
    /// The Matano alert id, when the source is Matano.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matano_alert_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionSummary {
    pub id: String,
    pub uses: String,
    /// Redacted: `secret_*` values never appear.
    pub args: Map<String, Value>,
}

/// Where the outcome's message came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceMessage {
    pub message_id: Option<String>,
    pub topic_arn: Option<String>,
    /// Identifies the change (`matano/<alert id>/<update_count>`).
    pub change_key: Option<String>,
}

/// A message that could not be ingested, kept so nothing is lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedMessage {
    pub original: String,
    pub original_bytes: usize,
    pub truncated: bool,
}

/// One published outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub schema_version: u32,
    pub event_type: EventType,
    /// Deterministic: a retry republishes the same id.
    pub outcome_id: String,
    pub status: Status,
    pub source_message: SourceMessage,
    pub alert: Option<AlertSummary>,
    pub action: Option<ActionSummary>,
    pub result: Option<Value>,
    pub error: Option<String>,
    /// The round of the action policy the action ran in.
    pub seq: Option<u32>,
    /// Attributes the action committed to the alert.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commits: Vec<Commit>,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<RejectedMessage>,
    /// The action ran in an earlier invocation; this republishes its outcome.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replay: bool,
    /// Why a `skipped` action was not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<SkipReason>,
    /// The budget spent, when `skip_reason` is `budget`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    /// The digest of the policies that decided it (`sha256:<hex>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_digest: Option<std::sync::Arc<str>>,
}

impl Outcome {
    /// SNS message attributes, for subscription filter policies.
    pub fn attributes(&self) -> BTreeMap<&'static str, String> {
        let mut attrs = BTreeMap::new();
        attrs.insert("event_type", self.event_type.as_str().to_string());
        attrs.insert("status", self.status.as_str().to_string());
        if let Some(action) = &self.action {
            attrs.insert("action_uses", action.uses.clone());
            attrs.insert("action_id", action.id.clone());
        }
        if let Some(reason) = self.skip_reason {
            attrs.insert("skip_reason", reason.as_str().to_string());
        }
        if let Some(budget) = &self.budget {
            attrs.insert("budget", budget.clone());
        }
        if let Some(alert) = &self.alert {
            attrs.insert("severity", alert.severity.clone());
            attrs.insert("source", alert.source.clone());
        }
        // SNS rejects empty attribute values.
        attrs.retain(|_, v| !v.is_empty());
        // SNS counts attributes in the message's 256 KiB, beside a body of
        // at most MAX_OUTCOME_BYTES: policy-given values are cut short.
        for value in attrs.values_mut() {
            truncate_string(value, MAX_ATTRIBUTE_BYTES);
        }
        attrs
    }

    /// The message body: JSON, never over [`MAX_OUTCOME_BYTES`].
    pub fn to_message(&self) -> String {
        let text = serde_json::to_string(self).expect("outcomes serialize");
        if text.len() <= MAX_OUTCOME_BYTES {
            return text;
        }
        // Shrink the free-form fields until it fits.
        let mut smaller = self.clone();
        smaller.result = smaller.result.map(|v| preview(&v, MAX_FIELD_BYTES / 4));
        if let Some(action) = &mut smaller.action {
            action.args = match preview(&Value::Object(std::mem::take(&mut action.args)), MAX_FIELD_BYTES / 4) {
                Value::Object(map) => map,
                other => Map::from_iter([("preview".to_string(), other)]),
            };
        }
        if let Some(error) = &mut smaller.error {
            truncate_string(error, MAX_FIELD_BYTES / 4);
        }
        if let Some(alert) = &mut smaller.alert {
            if serde_json::to_string(&alert.attrs).map_or(0, |s| s.len()) > MAX_FIELD_BYTES / 4 {
                alert.attrs.clear();
            }
            // Alert fields can come from attacker-influenced payloads.
            truncate_string(&mut alert.title, 1024);
            for field in [
                &mut alert.severity,
                &mut alert.source,
                &mut alert.namespace,
                &mut alert.schema,
            ] {
                truncate_string(field, 256);
            }
        }
        for commit in &mut smaller.commits {
            commit.value = preview(&commit.value, MAX_FIELD_BYTES / 16);
            truncate_string(&mut commit.key, 256);
        }
        if let Some(rejected) = &mut smaller.rejected {
            rejected.truncated |= truncate_string(&mut rejected.original, MAX_FIELD_BYTES);
        }
        let text = serde_json::to_string(&smaller).expect("outcomes serialize");
        if text.len() <= MAX_OUTCOME_BYTES {
            return text;
        }
        smaller.identity_only();
        serde_json::to_string(&smaller).expect("outcomes serialize")
    }

    /// For pathological sizes (thousands of commits, huge keys): keeps the
    /// identity and the status, drops the free-form fields, says so.
    fn identity_only(&mut self) {
        self.result = None;
        self.commits.clear();
        if let Some(action) = &mut self.action {
            action.args = Map::new();
        }
        if let Some(alert) = &mut self.alert {
            alert.attrs.clear();
        }
        if let Some(rejected) = &mut self.rejected {
            rejected.truncated |= truncate_string(&mut rejected.original, MAX_FIELD_BYTES / 4);
        }
        let note = "outcome too large for SNS: result, args, commits and attrs dropped";
        self.error = Some(match self.error.take() {
            Some(error) => format!("{error} ({note})"),
            None => note.to_string(),
        });
    }
}

/// A value small enough to carry, or a marker with a text preview of it.
pub fn preview(value: &Value, limit: usize) -> Value {
    let text = value.to_string();
    if text.len() <= limit {
        return value.clone();
    }
    let mut shown = text.clone();
    truncate_string(&mut shown, limit);
    serde_json::json!({"truncated": true, "original_bytes": text.len(), "preview": shown})
}

/// The longest message attribute value: the seven of them stay well inside
/// what SNS leaves beside the body.
const MAX_ATTRIBUTE_BYTES: usize = 256;

/// Cuts `text` to at most `limit` bytes on a char boundary; true if cut.
pub fn truncate_string(text: &mut String, limit: usize) -> bool {
    if text.len() <= limit {
        return false;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    true
}

/// The first 16 bytes, in hex, of the SHA-256 of `parts` joined by newlines.
fn short_hash(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for (index, part) in parts.iter().enumerate() {
        if index > 0 {
            hasher.update(b"\n");
        }
        hasher.update(part.as_bytes());
    }
    data_encoding::HEXLOWER.encode(&hasher.finalize()[..16])
}

/// `outcome_id` of a pending action's `pending` outcome (its final outcome
/// has the action's own id): the same alert and action give the same id.
pub fn pending_outcome_id(alert_id: &str, action_id: &str) -> String {
    short_hash(&["pending", alert_id, action_id])
}

/// `outcome_id` of an action skipped while actions are paused: its own, as
/// nothing is stored and the run after `resume` publishes the action's id
/// (a receiver deduplicating on it would drop the real result otherwise).
pub fn paused_outcome_id(alert_id: &str, action_id: &str) -> String {
    short_hash(&["paused", alert_id, action_id])
}

/// `outcome_id` of an action the workflow did not get to (an earlier
/// failure, `MAX_ACTIONS`, `MAX_ROUNDS`): its own, as nothing is stored and
/// a later run of the action publishes the action's id.
pub fn skipped_outcome_id(alert_id: &str, action_id: &str) -> String {
    short_hash(&["skipped", alert_id, action_id])
}

/// `outcome_id` of an action run: the same alert and action give the same id.
pub fn action_outcome_id(alert_id: &str, action_id: &str) -> String {
    short_hash(&["action", alert_id, action_id])
}

impl AlertSummary {
    pub fn of(alert: &Alert) -> AlertSummary {
        AlertSummary {
            id: alert.id.clone(),
            schema: alert.schema.clone(),
            title: alert.title.clone(),
            severity: alert.severity.clone(),
            source: alert.source.clone(),
            namespace: alert.namespace.clone(),
            attrs: alert.attrs.clone(),
            matano_alert_id: alert
                .data
                .pointer("/updated_alert/id")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    }
}

impl SourceMessage {
    pub fn of(envelope: &Envelope) -> SourceMessage {
        SourceMessage {
            message_id: Some(envelope.message_id.clone()).filter(|m| !m.is_empty()),
            topic_arn: envelope.topic_arn.clone(),
            change_key: Some(envelope.change_key()),
        }
    }
}

/// The outcome of a message that could not be ingested.
pub fn rejected_outcome(rejected: &Rejected) -> Outcome {
    let identity = match &rejected.message_id {
        Some(id) => id.clone(),
        None => content_hash(&Value::String(rejected.original.clone())),
    };
    let mut original = rejected.original.clone();
    let original_bytes = original.len();
    let truncated = truncate_string(&mut original, MAX_OUTCOME_BYTES - 16 * 1024);
    Outcome {
        schema_version: SCHEMA_VERSION,
        event_type: EventType::MessageRejected,
        outcome_id: short_hash(&["rejected", &identity]),
        status: Status::Rejected,
        source_message: SourceMessage {
            message_id: rejected.message_id.clone(),
            topic_arn: rejected.topic_arn.clone(),
            change_key: None,
        },
        alert: None,
        action: None,
        result: None,
        error: Some(rejected.error.to_string()),
        seq: None,
        commits: Vec::new(),
        started_at: Utc::now(),
        duration_ms: 0,
        rejected: Some(RejectedMessage {
            original,
            original_bytes,
            truncated,
        }),
        replay: false,
        skip_reason: None,
        budget: None,
        bundle_digest: None,
    }
}

/// The outcome of a policy failure for a message (alert policy) or an alert
/// (action policy).
pub fn policy_error_outcome(envelope: &Envelope, alert: Option<&Alert>, error: &str) -> Outcome {
    let scope = alert.map(|a| a.id.clone()).unwrap_or_else(|| envelope.change_key());
    Outcome {
        schema_version: SCHEMA_VERSION,
        event_type: EventType::PolicyError,
        outcome_id: short_hash(&["policy_error", &scope]),
        status: Status::Failed,
        source_message: SourceMessage::of(envelope),
        alert: alert.map(AlertSummary::of),
        action: None,
        result: None,
        error: Some(error.to_string()),
        seq: None,
        commits: Vec::new(),
        started_at: Utc::now(),
        duration_ms: 0,
        rejected: None,
        replay: false,
        skip_reason: None,
        budget: None,
        bundle_digest: None,
    }
}

/// The outcome of a Matano change older than one already processed.
pub fn stale_outcome(envelope: &Envelope, latest: u64) -> Outcome {
    let mut outcome = policy_error_outcome(envelope, None, "");
    outcome.event_type = EventType::StaleChange;
    outcome.status = Status::Skipped;
    outcome.outcome_id = short_hash(&["stale", &envelope.change_key()]);
    let update_count = envelope.matano.as_ref().map_or(0, |m| m.updated_alert.update_count);
    outcome.error = Some(format!(
        "stale change: update_count {update_count} is older than {latest}, already processed; not acted on"
    ));
    outcome
}

#[cfg(test)]
#[path = "outcome_tests.rs"]
mod tests;
