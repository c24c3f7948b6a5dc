//! How two decisions of one message differ (`crate::compare` computes it):
//! plain data, in decision records (`shadow.divergence`) and replay reports.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// An alert on one side only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRef {
    pub id: String,
    pub title: String,
    pub severity: String,
}

/// An alert on both sides whose severity differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertChange {
    pub title: String,
    pub baseline_severity: String,
    pub candidate_severity: String,
}

/// An action asked for on one side only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRef {
    pub alert: String,
    pub id: String,
    pub uses: String,
    pub args: Map<String, Value>,
}

/// An action asked for on both sides with different `uses` or args.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionChange {
    pub alert: String,
    pub id: String,
    pub baseline_uses: String,
    pub candidate_uses: String,
    pub baseline_args: Map<String, Value>,
    pub candidate_args: Map<String, Value>,
}

/// What the candidate decided differently from the baseline. For a shadow,
/// the baseline is the live decision: `removed` is only live, `added` only
/// in the shadow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts_added: Vec<AlertRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts_removed: Vec<AlertRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts_changed: Vec<AlertChange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions_added: Vec<ActionRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions_removed: Vec<ActionRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions_changed: Vec<ActionChange>,
}

impl Divergence {
    pub fn is_empty(&self) -> bool {
        self.alerts_added.is_empty()
            && self.alerts_removed.is_empty()
            && self.alerts_changed.is_empty()
            && self.actions_added.is_empty()
            && self.actions_removed.is_empty()
            && self.actions_changed.is_empty()
    }
}
