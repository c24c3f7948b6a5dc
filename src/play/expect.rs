//! A scenario's expectations against what happened; each unmet one in words.

use serde_json::Value;

use super::report::AlertResult;
use super::scenario::{AlertExpectation, Expectations};
use crate::model::Status;
use crate::workflow::WorkflowReport;

pub(super) fn check_expectations(expect: &Expectations, reports: &[(AlertResult, WorkflowReport)]) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(alerts) = &expect.alerts {
        check_alerts(alerts, reports, &mut failures);
    }
    let ran: Vec<(u32, &str)> = reports
        .iter()
        .flat_map(|(_, report)| {
            report
                .actions
                .iter()
                .filter(|a| a.status != Status::Skipped)
                .map(|a| (a.seq, a.id.as_str()))
        })
        .collect();
    if let Some(rounds) = &expect.rounds {
        check_rounds(rounds, &ran, &mut failures);
    }
    for id in &expect.not_run {
        if ran.iter().any(|(_, r)| r == id) {
            failures.push(format!("action {id:?} ran but must not"));
        }
    }
    for (id, want) in &expect.statuses {
        let got: Vec<&str> = reports
            .iter()
            .flat_map(|(_, report)| report.actions.iter())
            .filter(|a| &a.id == id)
            .map(|a| a.status.as_str())
            .collect();
        if got != [want.as_str()] {
            failures.push(format!("expected action {id:?} to be {want}, got {got:?}"));
        }
    }
    check_final_attrs(expect, reports, &mut failures);
    if let Some(want) = &expect.stop {
        for (alert, _) in reports {
            let got = alert.stop.reason();
            if got != want {
                failures.push(format!(
                    "alert {:?}: expected the workflow to stop as {want}, got {got}",
                    alert.title
                ));
            }
        }
    }
    failures
}

/// One event's expectations, on that event's reports; `stale` says whether
/// the event was a stale change.
pub(super) fn check_event_expectations(
    expect: &Expectations,
    stale: bool,
    reports: &[(AlertResult, WorkflowReport)],
) -> Vec<String> {
    let mut failures = Vec::new();
    match expect.stale {
        Some(true) if !stale => failures.push("expected a stale change (not acted on), but it was decided".to_string()),
        Some(false) if stale => failures.push("expected the change to be decided, but it was stale".to_string()),
        _ => {}
    }
    failures.extend(check_expectations(expect, reports));
    failures
}

fn check_alerts(want: &AlertExpectation, reports: &[(AlertResult, WorkflowReport)], failures: &mut Vec<String>) {
    if let Some(count) = want.count {
        if reports.len() != count {
            failures.push(format!("expected {count} alert(s), got {}", reports.len()));
        }
    }
    if let Some(titles) = &want.titles {
        let mut got: Vec<&str> = reports.iter().map(|(a, _)| a.title.as_str()).collect();
        let mut want: Vec<&str> = titles.iter().map(String::as_str).collect();
        got.sort();
        want.sort();
        if got != want {
            failures.push(format!("expected alert titles {want:?}, got {got:?}"));
        }
    }
    for (key, want) in &want.attrs {
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

/// Action ids per round, in order of rounds; order within a round is free.
fn check_rounds(rounds: &[Vec<String>], ran: &[(u32, &str)], failures: &mut Vec<String>) {
    let max_seq = ran.iter().map(|(s, _)| *s + 1).max().unwrap_or(0) as usize;
    let mut got: Vec<Vec<&str>> = vec![Vec::new(); max_seq];
    for (seq, id) in ran {
        got[*seq as usize].push(id);
    }
    let mut want: Vec<Vec<&str>> = rounds.iter().map(|r| r.iter().map(String::as_str).collect()).collect();
    got.iter_mut().for_each(|r| r.sort());
    want.iter_mut().for_each(|r| r.sort());
    if got != want {
        failures.push(format!("expected rounds {want:?}, got {got:?}"));
    }
}

fn check_final_attrs(expect: &Expectations, reports: &[(AlertResult, WorkflowReport)], failures: &mut Vec<String>) {
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
}

fn attr_value<'a>(attrs: &'a Value, key: &str) -> Option<&'a Value> {
    // The latest attribute of the key: one key may be written several times.
    attrs
        .as_array()?
        .iter()
        .rev()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

fn show(value: Option<&Value>) -> String {
    value.map(Value::to_string).unwrap_or_else(|| "(absent)".to_string())
}
