//! CloudWatch Embedded Metric Format: one log line per invocation with its
//! counts and policy time, and one per (action `uses`, status) pair.

use serde_json::{json, Map, Value};

use crate::pipeline::Summary;

const NAMESPACE: &str = "AlertResponder";

/// What went wrong around an invocation's decisions, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Its outcomes could not be published.
    pub publish_failed: bool,
    /// Its decision records could not be written.
    pub records_failed: bool,
    /// Policy bundle versions refused before it (`POLICY_BUNDLE`, `SHADOW_POLICY_BUNDLE`).
    pub bundles_refused: usize,
    /// SQS records it listed for a retry (`batchItemFailures`): the batch
    /// itself succeeds, so no invocation error counts them.
    pub records_retried: usize,
}

/// The EMF lines for one invocation.
pub fn emf_lines(function_name: &str, summary: &Summary, faults: Faults, timestamp_ms: u64) -> Vec<String> {
    let counts = [
        ("AlertsReceived", "Count", summary.records as f64),
        ("AlertsMatched", "Count", summary.alerts as f64),
        ("MessagesRejected", "Count", summary.rejected as f64),
        // What ran in this invocation: a paused switch or a spent budget
        // shows as `ActionsSkipped`, a redelivery as `ActionsReplayed`.
        (
            "ActionsRun",
            "Count",
            summary
                .actions
                .saturating_sub(summary.skipped_actions + summary.replayed + summary.retries_not_run)
                as f64,
        ),
        ("ActionsSkipped", "Count", summary.skipped_actions as f64),
        ("ActionsFailed", "Count", summary.failed_actions as f64),
        ("ActionsReplayed", "Count", summary.replayed as f64),
        ("PolicyErrors", "Count", summary.policy_errors as f64),
        ("DeadlineRetries", "Count", summary.deadline_retries as f64),
        ("StaleChanges", "Count", summary.stale as f64),
        ("OutcomesPublished", "Count", summary.outcomes as f64),
        (
            "OutcomePublishFailures",
            "Count",
            if faults.publish_failed { 1.0 } else { 0.0 },
        ),
        (
            "DecisionRecordFailures",
            "Count",
            if faults.records_failed { 1.0 } else { 0.0 },
        ),
        ("PolicyBundleRefused", "Count", faults.bundles_refused as f64),
        ("RecordsRetried", "Count", faults.records_retried as f64),
        ("ShadowDivergences", "Count", summary.shadow_divergences as f64),
        ("PolicyEvaluationTime", "Microseconds", summary.policy_micros as f64),
    ];
    let mut invocation = Map::new();
    invocation.insert("FunctionName".into(), json!(function_name));
    for (name, _, value) in counts {
        invocation.insert(name.into(), json!(value));
    }
    invocation.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": counts.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
            }],
        }),
    );
    let mut lines = vec![Value::Object(invocation).to_string()];
    for ((uses, status), count) in &summary.action_counts {
        lines.push(
            json!({
                "_aws": {
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": NAMESPACE,
                        "Dimensions": [["FunctionName", "Uses", "Status"]],
                        "Metrics": [{"Name": "Actions", "Unit": "Count"}],
                    }],
                },
                "FunctionName": function_name,
                "Uses": uses,
                "Status": status,
                "Actions": count,
            })
            .to_string(),
        );
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_the_embedded_metric_format() {
        let mut summary = Summary {
            records: 2,
            alerts: 1,
            actions: 7,
            failed_actions: 1,
            skipped_actions: 1,
            replayed: 2,
            retries_not_run: 1,
            outcomes: 3,
            policy_micros: 1234,
            shadow_divergences: 1,
            deadline_retries: 1,
            ..Summary::default()
        };
        summary
            .action_counts
            .insert(("http.fetch".into(), "succeeded".into()), 2);
        summary
            .action_counts
            .insert(("webhook.post".into(), "failed".into()), 1);
        let lines: Vec<Value> = emf_lines(
            "responder",
            &summary,
            Faults {
                publish_failed: false,
                records_failed: true,
                bundles_refused: 2,
                records_retried: 3,
            },
            1_700_000_000_000,
        )
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
        assert_eq!(lines.len(), 3);
        let first = &lines[0];
        let directive = &first["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "AlertResponder");
        assert_eq!(first["_aws"]["Timestamp"], 1_700_000_000_000u64);
        // Every declared metric has a value at the top level.
        for metric in directive["Metrics"].as_array().unwrap() {
            assert!(first[metric["Name"].as_str().unwrap()].is_number(), "{metric}");
        }
        assert_eq!(first["AlertsReceived"], 2.0);
        assert_eq!(
            (first["ActionsRun"].as_f64(), first["ActionsSkipped"].as_f64()),
            (Some(3.0), Some(1.0))
        );
        assert_eq!(first["PolicyEvaluationTime"], 1234.0);
        assert_eq!(first["DecisionRecordFailures"], 1.0);
        assert_eq!(first["OutcomePublishFailures"], 0.0);
        assert_eq!(first["PolicyBundleRefused"], 2.0);
        assert_eq!(first["RecordsRetried"], 3.0);
        assert_eq!(first["ShadowDivergences"], 1.0);
        assert_eq!(first["DeadlineRetries"], 1.0);
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["FunctionName"]]),
            "what the templates' alarms watch"
        );
        assert_eq!(lines[1]["Uses"], "http.fetch");
        assert_eq!(lines[1]["Actions"], 2);
        assert_eq!(lines[2]["Status"], "failed");
    }
}
