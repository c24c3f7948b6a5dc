//! The contract between the workflow and an executor: what one run gets
//! ([`ActionCall`]), what it may fail with ([`ActionError`]), and the
//! [`Action`] trait itself.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use super::args::{ArgRule, ArgSpec};
use crate::model::Alert;
use crate::secrets::ArgSecretError;

/// Everything an executor gets for one run.
pub struct ActionCall<'a> {
    pub action_id: &'a str,
    /// Deterministic per (alert, action): receivers deduplicate on it.
    pub outcome_id: &'a str,
    pub alert: &'a Alert,
    pub args: &'a Map<String, Value>,
    /// When the invocation must be done; executors stop before it.
    pub deadline: Option<Instant>,
}

impl<'a> ActionCall<'a> {
    /// `wanted`, shortened to what is left before the deadline.
    pub fn timeout(&self, wanted: Duration) -> Duration {
        match self.deadline {
            Some(deadline) => wanted.min(deadline.saturating_duration_since(Instant::now())),
            None => wanted,
        }
    }

    pub fn str_arg(&self, name: &str) -> Option<&'a str> {
        self.args.get(name).and_then(Value::as_str)
    }
}

/// Why an action failed. `result` keeps what the action did get (an HTTP
/// error response, say) so later rounds and subscribers can see it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ActionError {
    #[error("unknown action {uses:?} (requested by run entry {id:?})")]
    Unknown { id: String, uses: String },
    #[error("argument `{arg}` {reason}")]
    BadArg { arg: String, reason: String },
    /// The request does not match the action's declaration.
    #[error("{0}")]
    BadRequest(super::args::ArgProblem),
    #[error("{message}")]
    Failed {
        message: String,
        result: Option<Value>,
        /// Connect errors, timeouts, 429 and 5xx: another try may succeed.
        transient: bool,
    },
    #[error("not configured: {0}")]
    NotConfigured(String),
    #[error(transparent)]
    Secret(ArgSecretError),
}

impl ActionError {
    pub fn failed(message: impl Into<String>) -> ActionError {
        ActionError::Failed {
            message: message.into(),
            result: None,
            transient: false,
        }
    }

    /// A failure that may not happen again: worth retrying the invocation for.
    pub fn is_transient(&self) -> bool {
        match self {
            ActionError::Failed { transient, .. } => *transient,
            ActionError::Secret(err) => {
                matches!(err.error, crate::secrets::SecretError::Unavailable { .. })
            }
            _ => false,
        }
    }

    pub fn result(&self) -> Option<&Value> {
        match self {
            ActionError::Failed { result, .. } => result.as_ref(),
            _ => None,
        }
    }
}

/// An executor.
pub trait Action: Send + Sync {
    /// `<service>.<verb>`.
    fn uses(&self) -> &'static str;
    fn args(&self) -> &'static [ArgSpec];
    /// Rules between the arguments (exactly one of, required with).
    fn rules(&self) -> &'static [ArgRule] {
        &[]
    }
    /// Other names of arguments, `(other, declared)`: AlertChain's, so its
    /// policies run unchanged. A run sees only the declared names.
    fn aliases(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// Its success is not its final result: the workflow suspends until
    /// a human or a timer gives one (`approval.request`, `wait`).
    fn suspends(&self) -> bool {
        false
    }
    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>>;
}
