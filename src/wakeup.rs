//! The wakeup port: what brings a suspended workflow back. A one-time
//! schedule per pending action fires its due time (an approval's timeout,
//! a wait's end); an answer starts the resume at once, asynchronously, so
//! that Slack is answered within its 3 seconds. On AWS: EventBridge
//! Scheduler and an `Event` invocation of the function itself
//! (`aws::Wakeups`); in memory for the tests.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} failed: {reason}")]
pub struct WakeupError {
    pub operation: &'static str,
    pub reason: String,
}

/// The events the function sends itself, under the `alert_responder` key
/// (no SNS, SQS or Function URL event has it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wakeup {
    /// Every pending action of the workflow has its result: run its next round.
    Resume { workflow: String },
    /// A pending action's time came.
    Due { workflow: String, action: String },
}

impl Wakeup {
    /// The invocation event carrying it.
    pub fn event(&self) -> serde_json::Value {
        serde_json::json!({ "alert_responder": self })
    }

    /// The wakeup an invocation event carries, if it is one.
    pub fn of_event(event: &serde_json::Value) -> Option<Result<Wakeup, String>> {
        let inner = event.get("alert_responder")?;
        Some(serde_json::from_value(inner.clone()).map_err(|err| format!("not an alert_responder event: {err}")))
    }
}

/// A schedule's name: one per pending action, the same on every try (a
/// second create is a conflict, not a second schedule); Scheduler allows 64
/// characters of `[0-9A-Za-z-_.]`.
pub fn schedule_name(workflow: &str, action_id: &str) -> String {
    let digest = Sha256::digest(format!("{workflow}\n{action_id}"));
    format!("alert-responder-{}", &hex::encode(digest)[..40])
}

pub trait Wakeups: Send + Sync {
    /// Delivers `wakeup` at `at` (idempotent per `name`).
    fn schedule<'a>(
        &'a self,
        name: &'a str,
        at: DateTime<Utc>,
        wakeup: &'a Wakeup,
    ) -> BoxFuture<'a, Result<(), WakeupError>>;
    /// Deletes a schedule (one already gone is fine).
    fn cancel<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), WakeupError>>;
    /// Delivers `wakeup` now, in another invocation.
    fn send<'a>(&'a self, wakeup: &'a Wakeup) -> BoxFuture<'a, Result<(), WakeupError>>;
    /// The function's ARN, as an invocation's context gives it: what
    /// schedules and resumes invoke.
    fn learn_function(&self, _arn: &str) {}
    /// The ARN of the function named `function` (a name or an ARN): a
    /// schedule's target must be an ARN.
    fn function_arn_of<'a>(&'a self, function: &'a str) -> BoxFuture<'a, Result<String, WakeupError>> {
        Box::pin(async move { Ok(function.to_string()) })
    }
}

/// Wakeups kept in memory: the tests deliver them themselves.
#[derive(Debug, Default)]
pub struct MemoryWakeups {
    inner: Mutex<MemoryInner>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    scheduled: Vec<(String, DateTime<Utc>, Wakeup)>,
    sent: Vec<Wakeup>,
    /// Sends fail, as an unreachable Lambda API would.
    failing: bool,
}

impl MemoryWakeups {
    /// Schedules not cancelled: name, time, wakeup.
    pub fn scheduled(&self) -> Vec<(String, DateTime<Utc>, Wakeup)> {
        self.inner.lock().expect("not poisoned").scheduled.clone()
    }

    /// While set, `send` fails.
    pub fn set_failing(&self, failing: bool) {
        self.inner.lock().expect("not poisoned").failing = failing;
    }

    /// Wakeups sent, taken.
    pub fn take_sent(&self) -> Vec<Wakeup> {
        std::mem::take(&mut self.inner.lock().expect("not poisoned").sent)
    }
}

impl Wakeups for MemoryWakeups {
    fn schedule<'a>(
        &'a self,
        name: &'a str,
        at: DateTime<Utc>,
        wakeup: &'a Wakeup,
    ) -> BoxFuture<'a, Result<(), WakeupError>> {
        Box::pin(async move {
            let mut inner = self.inner.lock().expect("not poisoned");
            if !inner.scheduled.iter().any(|(n, _, _)| n == name) {
                inner.scheduled.push((name.to_string(), at, wakeup.clone()));
            }
            Ok(())
        })
    }

    fn cancel<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), WakeupError>> {
        Box::pin(async move {
            self.inner
                .lock()
                .expect("not poisoned")
                .scheduled
                .retain(|(n, _, _)| n != name);
            Ok(())
        })
    }

    fn send<'a>(&'a self, wakeup: &'a Wakeup) -> BoxFuture<'a, Result<(), WakeupError>> {
        Box::pin(async move {
            let mut inner = self.inner.lock().expect("not poisoned");
            if inner.failing {
                return Err(WakeupError {
                    operation: "Invoke",
                    reason: "the in-memory wakeups are set failing".to_string(),
                });
            }
            inner.sent.push(wakeup.clone());
            Ok(())
        })
    }
}
