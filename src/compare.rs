//! How two decisions of one message differ: the alerts each made and the
//! actions each asked for. A shadow bundle is compared with the live one,
//! a replay's candidate with its baseline.
//!
//! Alerts are matched by id, else by title when one alert on each side has
//! it (a changed alert policy changes ids); actions by id within an alert.

use crate::model::decision::{ActionEntry, AlertEntry};
pub use crate::model::divergence::{ActionChange, ActionRef, AlertChange, AlertRef, Divergence};

fn alert_ref(alert: &AlertEntry) -> AlertRef {
    AlertRef {
        id: alert.id.clone(),
        title: alert.title.clone(),
        severity: alert.severity.clone(),
    }
}

fn action_ref(alert: &AlertEntry, action: &ActionEntry) -> ActionRef {
    ActionRef {
        alert: alert.title.clone(),
        id: action.id.clone(),
        uses: action.uses.clone(),
        args: action.args.clone(),
    }
}

/// The actions a workflow asked for: everything it recorded but commit-only
/// entries (which run nothing).
fn asked(alert: &AlertEntry) -> impl Iterator<Item = &ActionEntry> {
    alert.actions.iter().filter(|a| !a.uses.is_empty())
}

/// Pairs each candidate alert with its baseline: the same id, else the one
/// alert of the same title on each side.
fn pair<'a>(baseline: &'a [AlertEntry], candidate: &'a [AlertEntry]) -> Vec<(Option<usize>, Option<usize>)> {
    let mut taken = vec![false; baseline.len()];
    let mut pairs = Vec::new();
    let mut unpaired = Vec::new();
    for (c, alert) in candidate.iter().enumerate() {
        match baseline.iter().position(|b| b.id == alert.id) {
            Some(b) if !taken[b] => {
                taken[b] = true;
                pairs.push((Some(b), Some(c)));
            }
            _ => unpaired.push(c),
        }
    }
    for c in unpaired {
        let title = &candidate[c].title;
        let unique_candidate = candidate.iter().filter(|a| &a.title == title).count() == 1;
        let mut same = (0..baseline.len()).filter(|&b| !taken[b] && &baseline[b].title == title);
        match (same.next(), same.next(), unique_candidate) {
            (Some(b), None, true) => {
                taken[b] = true;
                pairs.push((Some(b), Some(c)));
            }
            _ => pairs.push((None, Some(c))),
        }
    }
    pairs.extend((0..baseline.len()).filter(|&b| !taken[b]).map(|b| (Some(b), None)));
    pairs
}

/// How `candidate` differs from `baseline`.
pub fn diverge(baseline: &[AlertEntry], candidate: &[AlertEntry]) -> Divergence {
    let mut divergence = Divergence::default();
    for pair in pair(baseline, candidate) {
        match pair {
            (Some(b), None) => {
                let alert = &baseline[b];
                divergence.alerts_removed.push(alert_ref(alert));
                divergence
                    .actions_removed
                    .extend(asked(alert).map(|a| action_ref(alert, a)));
            }
            (None, Some(c)) => {
                let alert = &candidate[c];
                divergence.alerts_added.push(alert_ref(alert));
                divergence
                    .actions_added
                    .extend(asked(alert).map(|a| action_ref(alert, a)));
            }
            (Some(b), Some(c)) => compare_alert(&baseline[b], &candidate[c], &mut divergence),
            (None, None) => {}
        }
    }
    divergence
}

fn compare_alert(baseline: &AlertEntry, candidate: &AlertEntry, divergence: &mut Divergence) {
    if baseline.severity != candidate.severity {
        divergence.alerts_changed.push(AlertChange {
            title: candidate.title.clone(),
            baseline_severity: baseline.severity.clone(),
            candidate_severity: candidate.severity.clone(),
        });
    }
    for action in asked(candidate) {
        match asked(baseline).find(|b| b.id == action.id) {
            None => divergence.actions_added.push(action_ref(candidate, action)),
            Some(before) if before.uses != action.uses || before.args != action.args => {
                divergence.actions_changed.push(ActionChange {
                    alert: candidate.title.clone(),
                    id: action.id.clone(),
                    baseline_uses: before.uses.clone(),
                    candidate_uses: action.uses.clone(),
                    baseline_args: before.args.clone(),
                    candidate_args: action.args.clone(),
                })
            }
            Some(_) => {}
        }
    }
    for before in asked(baseline) {
        if !asked(candidate).any(|a| a.id == before.id) {
            divergence.actions_removed.push(action_ref(baseline, before));
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::{json, Value};

    use super::*;
    use crate::model::decision::StopRecord;
    use crate::model::Status;

    fn action(id: &str, uses: &str, args: Value) -> ActionEntry {
        ActionEntry {
            id: id.into(),
            uses: uses.into(),
            seq: 0,
            status: Status::DryRun,
            skip_reason: None,
            budget: None,
            replay: false,
            force: false,
            abort: false,
            args: args.as_object().cloned().unwrap_or_default(),
            result: None,
            error: None,
            commits: Vec::new(),
            outcome_id: "0".repeat(32),
            started_at: Utc::now(),
            duration_ms: 0,
        }
    }

    fn alert(id: &str, title: &str, severity: &str, actions: Vec<ActionEntry>) -> AlertEntry {
        AlertEntry {
            id: id.into(),
            title: title.into(),
            severity: severity.into(),
            namespace: String::new(),
            attrs: Vec::new(),
            rounds: 1,
            stop: StopRecord {
                reason: "completed".into(),
                action_id: None,
                error: None,
            },
            actions,
            retries: Vec::new(),
        }
    }

    #[test]
    fn the_same_decision_does_not_diverge() {
        let one = vec![alert(
            "a",
            "T",
            "high",
            vec![action("page", "slack.post", json!({"text": "x"}))],
        )];
        assert!(diverge(&one, &one).is_empty());
    }

    #[test]
    fn actions_added_removed_and_changed_are_named_with_their_alert() {
        let baseline = vec![alert(
            "a",
            "T",
            "high",
            vec![
                action("page", "pagerduty.trigger", json!({"severity": "critical"})),
                action("note", "slack.post", json!({"text": "x"})),
                action("commit-only", "", json!({})),
            ],
        )];
        // A changed alert policy: another id, the same title; severity lowered.
        let candidate = vec![alert(
            "b",
            "T",
            "medium",
            vec![
                action("page", "pagerduty.trigger", json!({"severity": "warning"})),
                action("ticket", "jira.create_issue", json!({})),
            ],
        )];
        let d = diverge(&baseline, &candidate);
        assert!(d.alerts_added.is_empty() && d.alerts_removed.is_empty());
        assert_eq!(d.alerts_changed[0].baseline_severity, "high");
        assert_eq!(
            d.actions_added.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            ["ticket"]
        );
        assert_eq!(
            d.actions_removed.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
            ["note"],
            "commit-only entries are not actions"
        );
        assert_eq!(d.actions_changed[0].id, "page");
        assert_eq!(d.actions_changed[0].candidate_args["severity"], "warning");
    }

    #[test]
    fn alerts_only_on_one_side_bring_their_actions() {
        let baseline = vec![alert("a", "Old", "low", vec![action("x", "slack.post", json!({}))])];
        let candidate = vec![
            alert("b", "New", "low", vec![action("y", "slack.post", json!({}))]),
            alert("c", "New", "low", vec![]),
        ];
        let d = diverge(&baseline, &candidate);
        assert_eq!(d.alerts_removed.len(), 1);
        assert_eq!(
            d.alerts_added.len(),
            2,
            "two alerts of one title are not paired by title"
        );
        assert_eq!((d.actions_added.len(), d.actions_removed.len()), (1, 1));
        assert_eq!(d.actions_added[0].alert, "New");
    }
}
