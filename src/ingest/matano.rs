//! Matano's alert change payload, as published on its alerting SNS topic.
//!
//! Two shapes exist: the original puts `destination_to_alert_info` inside
//! `updated_alert`; newer releases put it at the top level and may send a null
//! `creation_time`. Both deserialize into [`MatanoAlertChange`].
//!
//! The model types what the host itself reads (identity, order, severity,
//! delivery info). The context objects (`updated_alert.context`,
//! `incoming_rule_matches_context`, `context_diff`) are free-form and only
//! policies read them, from the payload: copying them here cost a tenth of a
//! decision.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One change of one Matano alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatanoAlertChange {
    pub updated_alert: UpdatedAlert,
    /// Newer Matano: per-destination delivery info (JSON strings) at top level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_to_alert_info: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdatedAlert {
    pub id: String,
    #[serde(default)]
    pub creation_time: Option<DateTime<Utc>>,
    pub title: String,
    pub severity: Severity,
    #[serde(default)]
    pub severity_icon_url: Option<String>,
    #[serde(default)]
    pub runbook: Option<String>,
    #[serde(default)]
    pub false_positives: Vec<String>,
    #[serde(default)]
    pub destinations: Vec<String>,
    #[serde(default)]
    pub tables: Vec<String>,
    pub match_count: u64,
    pub update_count: u64,
    /// Older Matano: delivery info nested here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_to_alert_info: Option<BTreeMap<String, String>>,
}

/// Matano's severities, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Notice,
    Low,
    Medium,
    High,
    Critical,
}

impl MatanoAlertChange {
    /// `(alert id, update_count)` names one change: duplicates share it.
    pub fn change_key(&self) -> String {
        format!("matano/{}/{}", self.updated_alert.id, self.updated_alert.update_count)
    }

    /// Delivery info from wherever this Matano version put it.
    pub fn destination_to_alert_info(&self) -> Option<&BTreeMap<String, String>> {
        self.destination_to_alert_info
            .as_ref()
            .or(self.updated_alert.destination_to_alert_info.as_ref())
    }
}

/// Gives policies one place to read delivery info: when only the older,
/// nested field is present, it is copied to the top level as well.
pub fn normalize_payload(payload: &mut Value, change: &MatanoAlertChange) {
    if let (Some(object), Some(info)) = (payload.as_object_mut(), change.destination_to_alert_info()) {
        if !object.contains_key("destination_to_alert_info") {
            object.insert(
                "destination_to_alert_info".to_string(),
                serde_json::to_value(info).unwrap_or(Value::Null),
            );
        }
    }
}

/// Whether a payload claims to be a Matano alert change.
pub fn looks_like_matano(payload: &Value) -> bool {
    payload.get("updated_alert").is_some_and(Value::is_object)
}
