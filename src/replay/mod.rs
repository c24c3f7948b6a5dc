//! Replay and backtest: re-decides recorded changes with candidate
//! policies — never acting: recorded results are reused for matching
//! action ids, `dry_run` otherwise — and compares each with its baseline
//! (the recorded decision, or baseline policies decided the same way).
//!
//! `input` reads what is replayed, `report` aggregates and renders.

pub mod input;
pub mod report;

use std::time::Instant;

use serde::Serialize;

use crate::decide::{Decided, Decider, Decision, Rehearsal};
use crate::model::decision::{ActionEntry, AlertEntry, DecisionRecord, DecisionResult};
use crate::model::divergence::Divergence;
use crate::policy::PolicySet;
use crate::workflow::WorkflowReport;
use input::Change;

/// Why a change could not be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error(
        "{at}: no recorded decision to compare with (an event or payload, not a decision record): give --baseline DIR"
    )]
    NoBaseline { at: String },
}

/// One side of a comparison: what was (or would be) decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub result: DecisionResult,
    pub error: Option<String>,
    pub alerts: Vec<AlertEntry>,
}

/// One change replayed.
#[derive(Debug, Clone, Serialize)]
pub struct Compared {
    /// Its position in the input (the order differences are listed in).
    #[serde(skip)]
    pub seq: usize,
    /// `file:line` it was read from.
    pub at: String,
    pub change_key: String,
    pub baseline: Side,
    pub candidate: Side,
    pub divergence: Divergence,
}

impl Compared {
    /// The candidate decided otherwise: other alerts or actions, or another
    /// result (a policy error where there was none).
    pub fn differs(&self) -> bool {
        !self.divergence.is_empty() || self.baseline.result != self.candidate.result
    }
}

/// Re-decides changes with the candidate (and baseline) policies.
pub struct Replayer<'a> {
    pub decider: &'a Decider,
    pub candidate: &'a PolicySet,
    /// Baseline policies; `None` compares with the recorded decisions.
    pub baseline: Option<&'a PolicySet>,
}

impl Replayer<'_> {
    pub async fn replay(
        &self,
        seq: usize,
        change: &Change,
        deadline: Option<Instant>,
    ) -> Result<Compared, ReplayError> {
        let rehearsal = change.recorded.as_ref().map(rehearsal_of).unwrap_or_default();
        let candidate = side_of(
            self.decider
                .rehearse(self.candidate, &change.envelope, &rehearsal, deadline)
                .await,
        );
        let baseline = match (self.baseline, &change.recorded) {
            (Some(policies), _) => side_of(
                self.decider
                    .rehearse(policies, &change.envelope, &rehearsal, deadline)
                    .await,
            ),
            (None, Some(record)) => Side {
                result: record.result,
                error: record.error.clone(),
                alerts: record.alerts.clone(),
            },
            (None, None) => return Err(ReplayError::NoBaseline { at: change.at.clone() }),
        };
        let divergence = crate::compare::diverge(&baseline.alerts, &candidate.alerts);
        Ok(Compared {
            seq,
            at: change.at.clone(),
            change_key: change.envelope.change_key(),
            baseline,
            candidate,
            divergence,
        })
    }
}

/// What a recorded decision's workflows did, for a rehearsal to see.
fn rehearsal_of(record: &DecisionRecord) -> Rehearsal {
    let mut rehearsal = Rehearsal::default();
    for alert in &record.alerts {
        rehearsal.add_alert(
            &alert.id,
            &alert.title,
            alert.actions.iter().map(ActionEntry::to_action_record),
            Vec::new(),
        );
    }
    rehearsal
}

fn side_of(decided: Decided) -> Side {
    match decided.decision {
        Decision::Alerts(reports) => Side {
            result: DecisionResult::Decided,
            error: None,
            alerts: reports.iter().map(WorkflowReport::entry).collect(),
        },
        Decision::AlertPolicyFailed(err) => Side {
            result: DecisionResult::PolicyError,
            error: Some(err.to_string()),
            alerts: Vec::new(),
        },
        Decision::NoAlertPolicy { schema } => Side {
            result: DecisionResult::NoAlertPolicy,
            error: Some(format!("no alert policy for schema {schema:?}")),
            alerts: Vec::new(),
        },
        Decision::Stale { .. } => Side {
            result: DecisionResult::Stale,
            error: None,
            alerts: Vec::new(),
        },
    }
}
