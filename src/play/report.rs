//! What a scenario did, as `result.json` shows it, and why it failed.

use serde::Serialize;
use serde_json::Value;

use crate::policy::PolicyError;
use crate::workflow::Stop;

/// Why a scenario failed.
#[derive(Debug, Clone)]
pub enum Failure {
    /// An event could not be turned into a message.
    Event { index: usize, error: String },
    /// A policy failed (alert policy, or the action policy of an alert).
    Policy {
        index: usize,
        alert: Option<String>,
        error: PolicyError,
    },
    /// An action ran without a mocked result to give.
    Mock { index: usize, message: String },
    /// An expectation was not met: of one event, or of the scenario.
    Expectation { event: Option<usize>, text: String },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Event { index, error } => write!(f, "event {index}: {error}"),
            Failure::Policy {
                index,
                alert: Some(title),
                error,
            } => write!(f, "event {index}: alert {title:?}: {error}"),
            Failure::Policy { index, error, .. } => write!(f, "event {index}: {error}"),
            Failure::Mock { index, message } => write!(f, "event {index}: {message}"),
            Failure::Expectation {
                event: Some(index),
                text,
            } => write!(f, "event {index}: {text}"),
            Failure::Expectation { event: None, text } => f.write_str(text),
        }
    }
}

impl Serialize for Failure {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Failure {
    /// A policy evaluation that failed at run time (not an output error).
    pub fn is_evaluation_error(&self) -> bool {
        matches!(
            self,
            Failure::Policy {
                error: PolicyError::Eval { .. },
                ..
            }
        )
    }
}

/// What happened in one scenario: written as `<out>/<id>/result.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub id: String,
    pub title: String,
    pub passed: bool,
    /// Expectations not met and errors, in words.
    pub failures: Vec<Failure>,
    /// What did not fail the scenario but should be known (an AlertChain
    /// scenario's action that had no mocked result and returned null).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub events: Vec<EventResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventResult {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A stale change: nothing was decided.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
    pub alerts: Vec<AlertResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertResult {
    pub id: String,
    pub schema: String,
    pub title: String,
    pub description: String,
    pub severity: String,
    pub source: String,
    pub namespace: String,
    pub refs: Value,
    /// Attributes the first round saw (the alert policy's, and persisted ones).
    pub initial_attrs: Value,
    /// Attributes at the end, commits included.
    pub final_attrs: Value,
    pub rounds: Vec<RoundResult>,
    pub stop: Stop,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoundResult {
    pub seq: u32,
    pub actions: Vec<Value>,
}
