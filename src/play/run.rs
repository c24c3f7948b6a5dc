//! One scenario: its events decided by the real policies on mocked actions,
//! with state (persisted attributes, change order, claims) carried across
//! its events in memory, and what happened checked against expectations.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};

use super::expect::check_expectations;
use super::mock::MockedActions;
use super::scenario::{event_envelope, Scenario};
use crate::action::Registry;
use crate::decide::{DecideSettings, Decider, Decision};
use crate::memory::MemoryState;
use crate::policy::{PolicyError, PolicySet};
use crate::secrets::SecretResolver;
use crate::workflow::{Stop, WorkflowReport};

/// Where a scenario's virtual clock starts (2024-01-01T00:00:00Z): state
/// expiries in `result.json` do not depend on when `play` ran.
const VIRTUAL_EPOCH: u64 = 1_704_067_200;

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
    /// An expectation was not met.
    Expectation(String),
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
            Failure::Expectation(text) => f.write_str(text),
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
    pub events: Vec<EventResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventResult {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub alerts: Vec<AlertResult>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertResult {
    pub id: String,
    pub title: String,
    pub severity: String,
    pub source: String,
    pub namespace: String,
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

/// Runs one scenario. `declarations` supplies the real actions' names and
/// arguments (nothing of it executes); `settings` the configured limits.
pub async fn play(
    scenario: &Scenario,
    policies: Arc<PolicySet>,
    declarations: &Registry,
    settings: &DecideSettings,
    default_schema: &str,
) -> ScenarioResult {
    let mocks = MockedActions::new(declarations, &scenario.actions);
    let mut settings = settings.clone();
    settings.limits.dry_run = false;
    settings.env = serde_json::to_value(&scenario.env).expect("a string map serializes");
    let state = Arc::new(MemoryState::with_virtual_clock(VIRTUAL_EPOCH));
    // Mocks never see secret values: references stay unresolved.
    let decider = Decider::new(
        policies,
        mocks.registry(),
        settings,
        SecretResolver::passthrough(),
        Some(state),
    );
    let mut failures = Vec::new();
    let mut events = Vec::new();
    let mut reports: Vec<(AlertResult, WorkflowReport)> = Vec::new();
    for (index, event) in scenario.events.iter().enumerate() {
        let mut result = EventResult {
            index,
            schema: None,
            error: None,
            alerts: Vec::new(),
        };
        let decision = match event_envelope(scenario, index, event, default_schema) {
            Err(error) => Err(error),
            Ok(envelope) => {
                result.schema = Some(envelope.schema.clone());
                match decider.decide(&envelope, None).await {
                    Ok(decided) => Ok(decided.decision),
                    Err(err) => Err(err.to_string()),
                }
            }
        };
        match decision {
            Err(error) => {
                failures.push(Failure::Event {
                    index,
                    error: error.clone(),
                });
                result.error = Some(error);
            }
            Ok(Decision::NoAlertPolicy { schema }) => {
                let error = format!("no alert policy for schema {schema:?}");
                failures.push(Failure::Event {
                    index,
                    error: error.clone(),
                });
                result.error = Some(error);
            }
            Ok(Decision::Stale { latest }) => {
                result.error = Some(format!(
                    "stale change: update {latest} was processed already; not acted on"
                ));
            }
            Ok(Decision::AlertPolicyFailed(error)) => {
                result.error = Some(error.to_string());
                failures.push(Failure::Policy {
                    index,
                    alert: None,
                    error,
                });
            }
            Ok(Decision::Alerts(alerts)) => {
                for report in alerts {
                    if let Stop::PolicyError { error } = &report.stop {
                        failures.push(Failure::Policy {
                            index,
                            alert: Some(report.alert.title.clone()),
                            error: error.clone(),
                        });
                    }
                    let alert_result = alert_result(&report);
                    result.alerts.push(alert_result.clone());
                    reports.push((alert_result, report));
                }
            }
        }
        failures.extend(
            mocks
                .take_misses()
                .into_iter()
                .map(|message| Failure::Mock { index, message }),
        );
        events.push(result);
    }
    failures.extend(
        check_expectations(&scenario.expect, &reports)
            .into_iter()
            .map(Failure::Expectation),
    );
    ScenarioResult {
        id: scenario.id.clone(),
        title: scenario.title.clone(),
        passed: failures.is_empty(),
        failures,
        events,
    }
}

fn alert_result(report: &WorkflowReport) -> AlertResult {
    let mut rounds: Vec<RoundResult> = Vec::new();
    for action in &report.actions {
        let entry = json!({
            "id": action.id,
            "uses": action.uses,
            "args": action.args,
            "status": action.status.as_str(),
            "result": action.result,
            "error": action.error,
            "commits": action.commits,
        });
        match rounds.last_mut() {
            Some(round) if round.seq == action.seq => round.actions.push(entry),
            _ => rounds.push(RoundResult {
                seq: action.seq,
                actions: vec![entry],
            }),
        }
    }
    AlertResult {
        id: report.alert.id.clone(),
        title: report.alert.title.clone(),
        severity: report.alert.severity.clone(),
        source: report.alert.source.clone(),
        namespace: report.alert.namespace.clone(),
        initial_attrs: serde_json::to_value(&report.initial_attrs).expect("attrs serialize"),
        final_attrs: serde_json::to_value(&report.alert.attrs).expect("attrs serialize"),
        rounds,
        stop: report.stop.clone(),
    }
}
