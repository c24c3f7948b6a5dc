//! One scenario: its events decided by the real policies on mocked actions,
//! with state (persisted attributes, change order, claims) carried across
//! its events in memory, and what happened checked against expectations.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::expect::{check_event_expectations, check_expectations};
use super::mock::MockedActions;
use super::report::{AlertResult, EventResult, Failure, RoundResult, ScenarioResult};
use super::scenario::{event_envelope, Scenario};
use crate::action::Registry;
use crate::config::SchemaRouting;
use crate::decide::{DecideSettings, Decider, Decision};
use crate::memory::MemoryState;
use crate::policy::PolicySet;
use crate::secrets::SecretResolver;
use crate::state::{PersistOp, PersistWrite, DEFAULT_PERSIST_TTL};
use crate::workflow::{Stop, WorkflowReport};

/// Where a scenario's virtual clock starts (2024-01-01T00:00:00Z): state
/// expiries in `result.json` do not depend on when `play` ran.
const VIRTUAL_EPOCH: u64 = 1_704_067_200;

/// Runs one scenario. `declarations` supplies the real actions' names and
/// arguments (nothing of it executes); `settings` the configured limits.
pub async fn play(
    scenario: &Scenario,
    policies: Arc<PolicySet>,
    declarations: &Registry,
    settings: &DecideSettings,
    routing: &SchemaRouting,
) -> ScenarioResult {
    let mocks = match scenario.alertchain {
        true => MockedActions::new(declarations, &scenario.actions).lenient_with_warnings(),
        false => MockedActions::new(declarations, &scenario.actions),
    };
    let mut warnings = Vec::new();
    let state = scenario_state(scenario);
    let decider = scenario_decider(scenario, policies, &mocks, settings, state.clone());
    let mut failures = Vec::new();
    let mut events = Vec::new();
    let mut reports: Vec<(AlertResult, WorkflowReport)> = Vec::new();
    for (index, event) in scenario.events.iter().enumerate() {
        if let Some(advance) = event.advance {
            state.advance(advance.0);
        }
        if let Some(event_mocks) = &event.mocks {
            mocks.reset(event_mocks);
        }
        let mut result = EventResult {
            index,
            schema: None,
            error: None,
            stale: false,
            alerts: Vec::new(),
        };
        let first_report = reports.len();
        let decision = match event_envelope(scenario, index, event, routing) {
            Err(error) => Err(error),
            Ok(envelope) => {
                result.schema = Some(envelope.schema.clone());
                decider
                    .decide(&envelope, None)
                    .await
                    .map(|decided| decided.decision)
                    .map_err(|err| err.to_string())
            }
        };
        record_decision(index, decision, &mut result, &mut failures, &mut reports);
        failures.extend(
            mocks
                .take_misses()
                .into_iter()
                .map(|message| Failure::Mock { index, message }),
        );
        warnings.extend(mocks.take_warnings().into_iter().map(|w| format!("event {index}: {w}")));
        if let Some(expect) = &event.expect {
            failures.extend(
                check_event_expectations(expect, result.stale, &reports[first_report..])
                    .into_iter()
                    .map(|text| Failure::Expectation {
                        event: Some(index),
                        text,
                    }),
            );
        }
        events.push(result);
    }
    failures.extend(
        check_expectations(&scenario.expect, &reports)
            .into_iter()
            .map(|text| Failure::Expectation { event: None, text }),
    );
    // Ours are given once for the whole scenario: one left over is most
    // often an id that is misspelt. (AlertChain's are given per event.)
    if !scenario.alertchain {
        warnings.extend(mocks.unused());
    }
    ScenarioResult {
        id: scenario.id.clone(),
        title: scenario.title.clone(),
        passed: failures.is_empty(),
        failures,
        warnings,
        events,
    }
}

/// A scenario's state: in memory, on a virtual clock, seeded with its
/// `state`.
fn scenario_state(scenario: &Scenario) -> Arc<MemoryState> {
    let state = MemoryState::with_virtual_clock(VIRTUAL_EPOCH);
    let writes: Vec<PersistWrite> = scenario
        .state
        .iter()
        .flat_map(|(namespace, attrs)| {
            attrs.iter().map(move |(key, value)| PersistWrite {
                namespace: namespace.clone(),
                // Named by its key, as a counter is: an `add` without an
                // id adds to it.
                id: key.clone(),
                key: key.clone(),
                kind: None,
                // A number is a counter, as DynamoDB keeps one.
                op: match value.as_f64() {
                    Some(number) => PersistOp::Add(number),
                    None => PersistOp::Set(value.clone()),
                },
                ttl: Duration::from_secs(DEFAULT_PERSIST_TTL),
            })
        })
        .collect();
    state.persist(&writes);
    Arc::new(state)
}

/// The decider of one scenario: mocked actions, its env, its state. Mocks
/// never see secret values: references stay unresolved.
fn scenario_decider(
    scenario: &Scenario,
    policies: Arc<PolicySet>,
    mocks: &MockedActions,
    settings: &DecideSettings,
    state: Arc<MemoryState>,
) -> Decider {
    let mut settings = settings.clone();
    settings.limits.dry_run = false;
    settings.env = serde_json::to_value(&scenario.env).expect("a string map serializes");
    Decider::new(
        policies,
        mocks.registry(),
        settings,
        SecretResolver::passthrough(),
        Some(state),
    )
}

/// What event `index` decided, into its result, the failures and the
/// alerts' reports.
fn record_decision(
    index: usize,
    decision: Result<Decision, String>,
    result: &mut EventResult,
    failures: &mut Vec<Failure>,
    reports: &mut Vec<(AlertResult, WorkflowReport)>,
) {
    let error = match decision {
        Err(error) => error,
        Ok(Decision::NoAlertPolicy { schema }) => format!("no alert policy for schema {schema:?}"),
        Ok(Decision::Stale { latest }) => {
            // Production semantics, not a failure.
            result.stale = true;
            result.error = Some(format!(
                "stale change: update {latest} was processed already; not acted on"
            ));
            return;
        }
        Ok(Decision::AlertPolicyFailed(error)) => {
            result.error = Some(error.to_string());
            failures.push(Failure::Policy {
                index,
                alert: None,
                error,
            });
            return;
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
            return;
        }
    };
    failures.push(Failure::Event {
        index,
        error: error.clone(),
    });
    result.error = Some(error);
}

/// What one event decided, for `check`.
pub struct Explored {
    pub scenario: String,
    pub event: usize,
    pub decision: Result<Decision, String>,
}

/// Every event of `scenarios` through `decide` as `play` runs it, except
/// that an action with no mocked result succeeds with `null`: every round
/// the policies can reach on these inputs is evaluated, so `check` sees
/// every entry they produce.
pub async fn explore(
    scenarios: &[Scenario],
    policies: Arc<PolicySet>,
    declarations: &Registry,
    settings: &DecideSettings,
    routing: &SchemaRouting,
) -> Vec<Explored> {
    let mut explored = Vec::new();
    for scenario in scenarios {
        let mocks = MockedActions::new(declarations, &scenario.actions).lenient();
        let state = scenario_state(scenario);
        let decider = scenario_decider(scenario, policies.clone(), &mocks, settings, state.clone());
        for (index, event) in scenario.events.iter().enumerate() {
            if let Some(advance) = event.advance {
                state.advance(advance.0);
            }
            if let Some(event_mocks) = &event.mocks {
                mocks.reset(event_mocks);
            }
            let decision = match event_envelope(scenario, index, event, routing) {
                Err(error) => Err(error),
                Ok(envelope) => decider
                    .decide(&envelope, None)
                    .await
                    .map(|decided| decided.decision)
                    .map_err(|err| err.to_string()),
            };
            explored.push(Explored {
                scenario: scenario.id.clone(),
                event: index,
                decision,
            });
        }
    }
    explored
}

fn alert_result(report: &WorkflowReport) -> AlertResult {
    let mut rounds: Vec<RoundResult> = Vec::new();
    for action in &report.actions {
        let mut entry = json!({
            "id": action.id,
            "uses": action.uses,
            "args": action.args,
            "status": action.status.as_str(),
            "result": action.result,
            "error": action.error,
            "commits": action.commits,
        });
        // AlertChain's fields, where they say something.
        if !action.name.is_empty() {
            entry["name"] = json!(action.name);
        }
        if action.force {
            entry["force"] = json!(true);
        }
        if action.abort {
            entry["abort"] = json!(true);
        }
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
        schema: report.alert.schema.clone(),
        title: report.alert.title.clone(),
        description: report.alert.description.clone(),
        severity: report.alert.severity.clone(),
        source: report.alert.source.clone(),
        namespace: report.alert.namespace.clone(),
        refs: serde_json::to_value(&report.alert.refs).expect("refs serialize"),
        initial_attrs: serde_json::to_value(&report.initial_attrs).expect("attrs serialize"),
        final_attrs: serde_json::to_value(&report.alert.attrs).expect("attrs serialize"),
        rounds,
        stop: report.stop.clone(),
    }
}
