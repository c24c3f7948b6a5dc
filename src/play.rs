//! `play`: scenarios run the real policies and workflow with mocked action
//! results, and check what happened against expectations. No action executes
//! and no AWS call is made; results are deterministic.
//!
//! A scenario (YAML or JSON):
//!
//! ```yaml
//! id: escalate-high
//! title: a high alert with a new IP is looked up, then notified
//! env: {WEBHOOK_URL: "https://hooks.example.org/x"}
//! events:
//!   - input_file: ../../examples/matano_alert_change.json   # or `input:` inline
//!     input_patch: {updated_alert: {severity: critical}}    # RFC 7396 merge patch
//!     schema: matano                                        # optional
//! actions:                       # by action id, else by `uses`; used in order
//!   lookup_ip_185.220.101.4: [{result: {status: 200, body: {country: RO}}}]
//!   webhook.post: [{result: {status: 200}}]
//!   http.fetch: [{error: "HTTP 500", result: {status: 500}}]
//! expect:
//!   alerts: {count: 1, titles: ["AWS Root Credentials Change"], attrs: {escalate: true}}
//!   rounds: [["lookup_ip_185.220.101.4"], ["notify_webhook"]]
//!   not_run: [page_oncall]
//!   attrs: {country_185.220.101.4: RO}
//!   stop: completed
//! ```
//!
//! An action the policy runs with no mocked result (or with its results used
//! up) fails the scenario with an error naming it: every result a scenario
//! depends on is written down.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::action::{Action, ActionCall, ActionError, ArgSpec, Registry};
use crate::alert::Alert;
use crate::event::ingest_document;
use crate::policy::PolicySet;
use crate::secrets::SecretResolver;
use crate::workflow::{Limits, Stop, Workflow, WorkflowReport};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub events: Vec<ScenarioEvent>,
    #[serde(default)]
    pub actions: BTreeMap<String, Vec<MockResult>>,
    #[serde(default)]
    pub expect: Expectations,
    /// Where the scenario was loaded from (for relative `input_file`s).
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioEvent {
    /// A Matano payload, an SNS notification or Lambda event, or other JSON.
    #[serde(default)]
    pub input: Option<Value>,
    /// A JSON file with the input, relative to the scenario file.
    #[serde(default)]
    pub input_file: Option<PathBuf>,
    /// RFC 7396 merge patch applied to the input.
    #[serde(default)]
    pub input_patch: Option<Value>,
    /// Overrides schema detection (as the SNS `schema` attribute would).
    #[serde(default)]
    pub schema: Option<String>,
}

/// One mocked run of an action: a result, or an error (with an optional result).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MockResult {
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    #[serde(default)]
    pub alerts: Option<AlertExpectation>,
    /// Action ids per round, in order; within a round order does not matter.
    #[serde(default)]
    pub rounds: Option<Vec<Vec<String>>>,
    /// Action ids that must not run.
    #[serde(default)]
    pub not_run: Vec<String>,
    /// Attributes the alerts must hold at the end (key → value).
    #[serde(default)]
    pub attrs: BTreeMap<String, Value>,
    /// Status per action id (`succeeded`, `failed`, `skipped`).
    #[serde(default)]
    pub statuses: BTreeMap<String, String>,
    /// How the workflow stopped: `completed`, `aborted`, `action_failed`, `max_rounds`.
    #[serde(default)]
    pub stop: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertExpectation {
    #[serde(default)]
    pub count: Option<usize>,
    #[serde(default)]
    pub titles: Option<Vec<String>>,
    /// Attributes the alert policy must have set (key → value), on every alert.
    #[serde(default)]
    pub attrs: BTreeMap<String, Value>,
}

/// Why scenarios could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{path}: {reason}")]
    Load { path: String, reason: String },
}

/// Loads every `*.yaml`, `*.yml` and `*.json` below `dir`, sorted by path.
pub fn load_scenarios(dir: &Path) -> Result<Vec<Scenario>, ScenarioError> {
    let mut paths = Vec::new();
    collect(dir, &mut paths).map_err(|err| ScenarioError::Load {
        path: dir.display().to_string(),
        reason: err.to_string(),
    })?;
    paths.sort();
    if paths.is_empty() {
        return Err(ScenarioError::Load {
            path: dir.display().to_string(),
            reason: "no scenario files (*.yaml, *.yml, *.json)".to_string(),
        });
    }
    paths.iter().map(|p| load_scenario(p)).collect()
}

pub fn load_scenario(path: &Path) -> Result<Scenario, ScenarioError> {
    let fail = |reason: String| ScenarioError::Load {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let mut scenario: Scenario = if path.extension().is_some_and(|e| e == "json") {
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(&text))
            .map_err(|e| fail(format!("at `{}`: {}", e.path(), e.inner())))?
    } else {
        serde_path_to_error::deserialize(serde_norway::Deserializer::from_str(&text))
            .map_err(|e| fail(format!("at `{}`: {}", e.path(), e.inner())))?
    };
    if scenario.events.is_empty() {
        return Err(fail("`events` is empty".to_string()));
    }
    for (key, mocks) in &scenario.actions {
        if let Some(i) = mocks.iter().position(|m| m.result.is_none() && m.error.is_none()) {
            return Err(fail(format!("actions.{key}[{i}] needs `result` or `error`")));
        }
    }
    scenario.path = path.to_path_buf();
    Ok(scenario)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Mocked results, consumed in order, by action id first, then by `uses`.
struct MockTable {
    remaining: Mutex<HashMap<String, std::collections::VecDeque<MockResult>>>,
}

impl MockTable {
    fn take(&self, action_id: &str, uses: &str) -> Result<MockResult, ActionError> {
        let mut remaining = self.remaining.lock().expect("not poisoned");
        for key in [action_id, uses] {
            if let Some(queue) = remaining.get_mut(key) {
                return queue.pop_front().ok_or_else(|| {
                    ActionError::NotConfigured(format!(
                        "the mocked results of {key:?} are used up (action {action_id:?})"
                    ))
                });
            }
        }
        Err(ActionError::NotConfigured(format!(
            "no mocked result for action {action_id:?} ({uses}): add it under `actions:` by id or uses"
        )))
    }
}

/// Stands in for a real action: same name and declared arguments (so bad
/// args fail as they would for real), mocked result.
struct MockAction {
    uses: &'static str,
    args: &'static [ArgSpec],
    table: Arc<MockTable>,
}

impl Action for MockAction {
    fn uses(&self) -> &'static str {
        self.uses
    }
    fn args(&self) -> &'static [ArgSpec] {
        self.args
    }
    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        let mock = self.table.take(call.action_id, self.uses);
        Box::pin(async move {
            let mock = mock?;
            match mock.error {
                Some(message) => Err(ActionError::Failed {
                    transient: false,
                    message,
                    result: mock.result,
                }),
                None => Ok(mock.result.unwrap_or(Value::Null)),
            }
        })
    }
}

/// The same action names and declarations as `real`, all mocked.
fn mocked_registry(real: &Registry, mocks: &BTreeMap<String, Vec<MockResult>>) -> Registry {
    let table = Arc::new(MockTable {
        remaining: Mutex::new(
            mocks
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
                .collect(),
        ),
    });
    let mut registry = Registry::default();
    for uses in real.names() {
        let action = real.get(uses).expect("listed");
        registry.register(MockAction {
            uses,
            args: action.args(),
            table: table.clone(),
        });
    }
    registry
}

/// What happened in one scenario: written as `<out>/<id>/result.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub id: String,
    pub title: String,
    pub passed: bool,
    /// Expectations not met and errors, in words.
    pub failures: Vec<String>,
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
    /// Attributes as the alert policy set them.
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

/// Runs one scenario against compiled policies. `real` supplies the action
/// declarations; nothing of it executes.
pub async fn play(scenario: &Scenario, policies: &PolicySet, real: &Registry, limits: &Limits) -> ScenarioResult {
    let registry = mocked_registry(real, &scenario.actions);
    let limits = Limits {
        dry_run: false,
        ..limits.clone()
    };
    let env = serde_json::to_value(&scenario.env).expect("string map");
    // Mocks never see secret values: references stay unresolved.
    let secrets = SecretResolver::passthrough();
    let workflow = Workflow {
        policies,
        registry: &registry,
        limits: &limits,
        env: &env,
        secrets: &secrets,
        state: None,
        lease: std::time::Duration::from_secs(60),
    };
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
        match event_envelope(scenario, index, event) {
            Err(error) => {
                failures.push(format!("event {index}: {error}"));
                result.error = Some(error);
            }
            Ok(envelope) if !policies.has_schema(&envelope.schema) => {
                let error = format!("no alert policy for schema {:?}", envelope.schema);
                failures.push(format!("event {index}: {error}"));
                result.schema = Some(envelope.schema);
                result.error = Some(error);
            }
            Ok(envelope) => {
                result.schema = Some(envelope.schema.clone());
                match policies.eval_alerts(&envelope.schema, &envelope.payload, None) {
                    Err(err) => {
                        failures.push(format!("event {index}: {err}"));
                        result.error = Some(err.to_string());
                    }
                    Ok(drafts) => {
                        for draft in drafts {
                            let mut alert = Alert::from_draft(draft, &envelope);
                            // Deterministic output: the clock never reaches result.json.
                            alert.created_at = chrono::DateTime::UNIX_EPOCH;
                            let initial_attrs = serde_json::to_value(&alert.attrs).expect("attrs");
                            let report = workflow.run(alert, None).await;
                            if let Stop::PolicyError { error } = &report.stop {
                                failures.push(format!("event {index}: alert {:?}: {error}", report.alert.title));
                            }
                            for action in &report.actions {
                                if let Some(error) = action.error.as_deref().filter(|e| is_mock_error(e)) {
                                    failures.push(format!("event {index}: {error}"));
                                }
                            }
                            let alert_result = alert_result(&report, initial_attrs);
                            result.alerts.push(alert_result.clone());
                            reports.push((alert_result, report));
                        }
                    }
                }
            }
        }
        events.push(result);
    }
    failures.extend(check_expectations(&scenario.expect, &reports));
    ScenarioResult {
        id: scenario.id.clone(),
        title: scenario.title.clone(),
        passed: failures.is_empty(),
        failures,
        events,
    }
}

fn is_mock_error(error: &str) -> bool {
    error.starts_with("not configured: no mocked result") || error.contains("mocked results of")
}

fn event_envelope(scenario: &Scenario, index: usize, event: &ScenarioEvent) -> Result<crate::event::Envelope, String> {
    let mut input = match (&event.input, &event.input_file) {
        (Some(input), None) => input.clone(),
        (None, Some(file)) => {
            let path = scenario.path.parent().unwrap_or(Path::new(".")).join(file);
            let text = std::fs::read_to_string(&path).map_err(|e| format!("input_file {}: {e}", path.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("input_file {}: not JSON: {e}", path.display()))?
        }
        _ => return Err("give exactly one of `input` and `input_file`".to_string()),
    };
    if let Some(patch) = &event.input_patch {
        merge_patch(&mut input, patch);
    }
    // A schema override travels the way it would in production: as the SNS
    // `schema` message attribute.
    let document = match &event.schema {
        Some(schema) => json!({
            "Type": "Notification",
            "MessageId": format!("play-{}-{index}", scenario.id),
            "Message": input.to_string(),
            "MessageAttributes": {"schema": {"Type": "String", "Value": schema}},
        }),
        None => input,
    };
    let mut ingested = ingest_document(document.to_string().as_bytes(), crate::config::DEFAULT_SCHEMA);
    match ingested.len() {
        1 => ingested
            .pop()
            .expect("one")
            .map_err(|rejected| rejected.error.to_string()),
        n => Err(format!("input holds {n} records; a scenario event is one message")),
    }
}

/// RFC 7396 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let target = target.as_object_mut().expect("object");
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

fn alert_result(report: &WorkflowReport, initial_attrs: Value) -> AlertResult {
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
        initial_attrs,
        final_attrs: serde_json::to_value(&report.alert.attrs).expect("attrs"),
        rounds,
        stop: report.stop.clone(),
    }
}

fn attr_value<'a>(attrs: &'a Value, key: &str) -> Option<&'a Value> {
    attrs.as_array()?.iter().find(|a| a["key"] == key).map(|a| &a["value"])
}

fn check_expectations(expect: &Expectations, reports: &[(AlertResult, WorkflowReport)]) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(alerts) = &expect.alerts {
        if let Some(count) = alerts.count {
            if reports.len() != count {
                failures.push(format!("expected {count} alert(s), got {}", reports.len()));
            }
        }
        if let Some(titles) = &alerts.titles {
            let mut got: Vec<&str> = reports.iter().map(|(a, _)| a.title.as_str()).collect();
            let mut want: Vec<&str> = titles.iter().map(String::as_str).collect();
            got.sort();
            want.sort();
            if got != want {
                failures.push(format!("expected alert titles {want:?}, got {got:?}"));
            }
        }
        for (key, want) in &alerts.attrs {
            for (alert, _) in reports {
                let got = attr_value(&alert.initial_attrs, key);
                if got != Some(want) {
                    failures.push(format!(
                        "alert {:?}: expected attr {key} = {want}, got {}",
                        alert.title,
                        show(got)
                    ));
                }
            }
        }
    }
    let ran: Vec<(u32, &str)> = reports
        .iter()
        .flat_map(|(_, r)| {
            r.actions
                .iter()
                .filter(|a| a.status != crate::outcome::Status::Skipped)
                .map(|a| (a.seq, a.id.as_str()))
        })
        .collect();
    if let Some(rounds) = &expect.rounds {
        let max_seq = ran.iter().map(|(s, _)| *s + 1).max().unwrap_or(0) as usize;
        let mut got: Vec<Vec<&str>> = vec![Vec::new(); max_seq];
        for (seq, id) in &ran {
            got[*seq as usize].push(id);
        }
        let mut want: Vec<Vec<&str>> = rounds.iter().map(|r| r.iter().map(String::as_str).collect()).collect();
        got.iter_mut().for_each(|r| r.sort());
        want.iter_mut().for_each(|r| r.sort());
        if got != want {
            failures.push(format!("expected rounds {want:?}, got {got:?}"));
        }
    }
    for id in &expect.not_run {
        if ran.iter().any(|(_, r)| r == id) {
            failures.push(format!("action {id:?} ran but must not"));
        }
    }
    for (id, want) in &expect.statuses {
        let got: Vec<&str> = reports
            .iter()
            .flat_map(|(_, r)| r.actions.iter())
            .filter(|a| &a.id == id)
            .map(|a| a.status.as_str())
            .collect();
        if got != [want.as_str()] {
            failures.push(format!("expected action {id:?} to be {want}, got {got:?}"));
        }
    }
    for (key, want) in &expect.attrs {
        let found = reports
            .iter()
            .any(|(a, _)| attr_value(&a.final_attrs, key) == Some(want));
        if !found {
            let got: Vec<String> = reports
                .iter()
                .map(|(a, _)| show(attr_value(&a.final_attrs, key)))
                .collect();
            failures.push(format!("expected final attr {key} = {want}, got {}", got.join(", ")));
        }
    }
    if let Some(want) = &expect.stop {
        for (alert, _) in reports {
            let got = serde_json::to_value(&alert.stop).expect("stop")["reason"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if &got != want {
                failures.push(format!(
                    "alert {:?}: expected the workflow to stop as {want}, got {got}",
                    alert.title
                ));
            }
        }
    }
    failures
}

fn show(value: Option<&Value>) -> String {
    value.map(Value::to_string).unwrap_or_else(|| "(absent)".to_string())
}

/// The policy timeout `play` uses when none is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "d": [1], "e": 1});
        merge_patch(&mut doc, &json!({"a": {"b": null, "x": 3}, "d": {"k": 1}, "e": null}));
        assert_eq!(doc, json!({"a": {"c": 2, "x": 3}, "d": {"k": 1}}));
    }
}
