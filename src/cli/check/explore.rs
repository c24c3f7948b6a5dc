//! The dynamic half of `check`: the policies evaluated over every scenario
//! beside them and the bundled sample change (rounds included, actions
//! mocked, an action without a mocked result answering `null`), and every
//! entry they produce — however it is built — validated as a run validates
//! it. `run` rules that no input reached are listed: their entries could
//! not be checked.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use regorus::unstable::{Rule, RuleHead};
use serde_json::Value;

use super::lint::Finding;
use crate::action::{Known, Registry};
use crate::config::{PolicyEngine, SchemaRouting};
use crate::decide::{DecideSettings, Decision};
use crate::model::ActionRecord;
use crate::play::{explore, Scenario};
use crate::policy::{in_regorus_syntax, new_engine, PolicyError, PolicyFile, PolicySet};
use crate::workflow::Stop;

/// What evaluating the policies showed: problems, and `run` rules no
/// input reached.
pub struct Explored {
    pub problems: Vec<String>,
    pub unreached: Vec<Finding>,
    pub inputs: usize,
}

/// Evaluates `files` over `scenarios` (the sample included by the caller).
pub async fn explore_entries(
    files: Vec<PolicyFile>,
    scenarios: &[Scenario],
    registry: &Registry,
    settings: &DecideSettings,
    routing: &SchemaRouting,
    timeout: std::time::Duration,
) -> Result<Explored, PolicyError> {
    let policies = Arc::new(
        PolicySet::compile(files.clone(), timeout)?
            .with_engine(PolicyEngine::Interpreter)
            .with_coverage(),
    );
    let explored = explore(scenarios, policies.clone(), registry, settings, routing).await;
    let mut problems = Vec::new();
    for event in &explored {
        let place = format!("scenario {:?}, event {}", event.scenario, event.event);
        match &event.decision {
            Err(error) => problems.push(format!("{place}: {error}")),
            Ok(Decision::AlertPolicyFailed(error)) => problems.push(format!("{place}: {error}")),
            Ok(Decision::Alerts(reports)) => {
                for report in reports {
                    if let Stop::PolicyError { error } = &report.stop {
                        problems.push(format!("{place}: {error}"));
                    }
                    for record in &report.actions {
                        problems.extend(
                            check_record(registry, record).map(|p| format!("{place}, round {}: {p}", record.seq)),
                        );
                    }
                }
            }
            Ok(Decision::NoAlertPolicy { .. } | Decision::Stale { .. }) => {}
        }
    }
    problems.sort();
    problems.dedup();
    // Entries that ran, and an abort-only entry (it stops, it runs nothing).
    let produced: BTreeSet<&str> = explored
        .iter()
        .filter_map(|event| match &event.decision {
            Ok(Decision::Alerts(reports)) => Some(reports),
            _ => None,
        })
        .flatten()
        .flat_map(|report| {
            let aborted = match &report.stop {
                Stop::Aborted { action_id } => Some(action_id.as_str()),
                _ => None,
            };
            report.actions.iter().map(|record| record.id.as_str()).chain(aborted)
        })
        .collect();
    Ok(Explored {
        problems,
        unreached: unreached_run_rules(files, &policies.covered_lines(), &produced)?,
        inputs: explored.len(),
    })
}

/// The problems a run finds in a produced entry: its action, its arguments
/// (a commit-only entry runs no action).
fn check_record(registry: &Registry, record: &ActionRecord) -> Option<String> {
    if record.uses.is_empty() {
        return None;
    }
    // Secret arguments are redacted in records: a string, as a literal would be.
    let known: BTreeMap<&str, Known<'_>> = record.args.iter().map(|(k, v)| (k.as_str(), Known::Value(v))).collect();
    match registry.check(&record.id, &record.uses, &known) {
        Err(err) => Some(format!("{err}")),
        Ok((_, problems)) if problems.is_empty() => None,
        Ok((_, problems)) => Some(format!(
            "run entry {:?} ({}): {}",
            record.id,
            record.uses,
            problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
        )),
    }
}

/// `run` rules of `package action` whose head no evaluation covered, or,
/// written on one line (its body's evaluation covers the head's line
/// too), whose literal `id` no evaluation produced.
fn unreached_run_rules(
    files: Vec<PolicyFile>,
    covered: &BTreeMap<String, BTreeSet<u32>>,
    produced: &BTreeSet<&str>,
) -> Result<Vec<Finding>, PolicyError> {
    let mut engine = new_engine(std::time::Duration::from_secs(5));
    for file in in_regorus_syntax(files)? {
        engine
            .add_policy(file.name, file.text)
            .map_err(|err| PolicyError::Compile(err.to_string()))?;
    }
    let mut unreached = Vec::new();
    for module in engine.get_modules() {
        if module.package.refr.span().text() != "action" {
            continue;
        }
        for rule in &module.policy {
            let Rule::Spec {
                head: RuleHead::Set { refr, key, .. },
                span,
                ..
            } = rule.as_ref()
            else {
                continue;
            };
            if refr.span().text() != "run" {
                continue;
            }
            let file = span.source.file().to_string();
            let one_line = !span.text().contains('\n');
            let literal_id = key.as_deref().and_then(literal_id);
            let never_produced = one_line && literal_id.is_some_and(|id| !produced.contains(id));
            if never_produced || !covered.get(&file).is_some_and(|lines| lines.contains(&span.line)) {
                unreached.push(Finding {
                    file,
                    line: span.line,
                    message: "no scenario (nor the sample change) produces an entry of this `run` rule: its entries \
                              were checked only as far as they are written literally; add a scenario that reaches it"
                        .to_string(),
                });
            }
        }
    }
    Ok(unreached)
}

/// The `id` of an entry written as an object with a string `id`.
fn literal_id(entry: &regorus::unstable::Expr) -> Option<&str> {
    use regorus::unstable::Expr;
    let Expr::Object { fields, .. } = entry else {
        return None;
    };
    fields
        .iter()
        .find_map(|(_, key, value)| match (key.as_ref(), value.as_ref()) {
            (Expr::String { span: k, .. }, Expr::String { span: v, .. }) if k.text() == "id" => Some(v.text()),
            _ => None,
        })
}

/// The sample change as a scenario of its own.
pub fn sample_scenario(sample: &str, env: BTreeMap<String, String>) -> Scenario {
    let input: Value = serde_json::from_str(sample).expect("the bundled sample is JSON");
    Scenario::of_input("bundled sample change", input, env)
}
