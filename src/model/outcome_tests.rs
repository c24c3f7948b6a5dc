use super::*;
use crate::ingest::IngestError;

#[test]
fn outcome_ids_are_deterministic_and_distinct() {
    assert_eq!(action_outcome_id("a1", "x"), action_outcome_id("a1", "x"));
    assert_ne!(action_outcome_id("a1", "x"), action_outcome_id("a1", "y"));
    assert_ne!(action_outcome_id("a1", "x"), action_outcome_id("a2", "x"));
    assert_eq!(action_outcome_id("a1", "x").len(), 32);
}

#[test]
fn huge_rejected_message_fits_sns() {
    let rejected = Rejected {
        message_id: Some("m".into()),
        topic_arn: None,
        original: "é".repeat(400_000),
        error: IngestError::Oversize {
            bytes: 800_000,
            limit: 262_144,
        },
    };
    let outcome = rejected_outcome(&rejected);
    let message = outcome.to_message();
    assert!(message.len() <= MAX_OUTCOME_BYTES, "{}", message.len());
    let back: Outcome = serde_json::from_str(&message).unwrap();
    let kept = back.rejected.unwrap();
    assert!(kept.truncated);
    assert_eq!(kept.original_bytes, 800_000);
    assert!(rejected.original.starts_with(&kept.original));
}

#[test]
fn huge_result_is_replaced_by_a_marked_preview() {
    let rejected = empty_rejection("{}");
    let mut outcome = rejected_outcome(&rejected);
    outcome.result = Some(Value::String("x".repeat(300 * 1024)));
    let message = outcome.to_message();
    assert!(message.len() <= MAX_OUTCOME_BYTES);
    let back: Outcome = serde_json::from_str(&message).unwrap();
    let result = back.result.unwrap();
    assert_eq!(result["truncated"], true);
    assert_eq!(result["original_bytes"], 300 * 1024 + 2);
}

fn commit(key: String, value: Value) -> Commit {
    Commit {
        id: None,
        key,
        value,
        kind: None,
        persist: false,
        ttl: None,
        op: Default::default(),
        path: None,
    }
}

/// An empty message's rejection, of `original`.
fn empty_rejection(original: &str) -> Rejected {
    Rejected {
        message_id: None,
        topic_arn: None,
        original: original.into(),
        error: IngestError::Empty,
    }
}

#[test]
fn huge_commits_and_alert_fields_still_fit() {
    let rejected = empty_rejection("{}");
    let mut outcome = rejected_outcome(&rejected);
    outcome.alert = Some(AlertSummary {
        id: "a".repeat(32),
        schema: "matano".into(),
        title: "t".repeat(300 * 1024),
        severity: "high".into(),
        source: "matano".into(),
        namespace: "n".into(),
        attrs: vec![],
        matano_alert_id: None,
    });
    outcome.commits = (0..20)
        .map(|i| commit(format!("k{i}"), Value::String("v".repeat(50 * 1024))))
        .collect();
    let message = outcome.to_message();
    assert!(message.len() <= MAX_OUTCOME_BYTES, "{}", message.len());
    let back: Outcome = serde_json::from_str(&message).unwrap();
    assert_eq!(back.alert.unwrap().title.len(), 1024);
    assert_eq!(back.commits.len(), 20);
    assert_eq!(back.commits[0].value["truncated"], true);

    // Beyond what previews can save: identity and status stay, the rest goes.
    outcome.commits = (0..5000)
        .map(|i| commit(format!("key-{i}-{}", "x".repeat(200)), Value::Null))
        .collect();
    let message = outcome.to_message();
    assert!(message.len() <= MAX_OUTCOME_BYTES, "{}", message.len());
    let back: Outcome = serde_json::from_str(&message).unwrap();
    assert!(back.commits.is_empty());
    assert!(back.error.unwrap().contains("outcome too large for SNS"));
    assert_eq!(back.outcome_id, outcome.outcome_id);
}

#[test]
fn attributes_skip_empty_values() {
    let rejected = empty_rejection("x");
    let attrs = rejected_outcome(&rejected).attributes();
    assert_eq!(attrs["event_type"], "message_rejected");
    assert_eq!(attrs["status"], "rejected");
    assert!(!attrs.contains_key("action_uses"));
}

/// Attributes count in SNS's 256 KiB beside the body: a policy's long
/// `source` or `severity` is cut, on a character boundary.
#[test]
fn attributes_are_cut_short() {
    let rejected = empty_rejection("x");
    let mut outcome = rejected_outcome(&rejected);
    outcome.alert = Some(AlertSummary {
        id: "a".into(),
        schema: "matano".into(),
        title: "t".into(),
        severity: "é".repeat(100_000),
        source: "s".repeat(100_000),
        namespace: "n".into(),
        attrs: vec![],
        matano_alert_id: None,
    });
    let attrs = outcome.attributes();
    assert_eq!(attrs["source"].len(), MAX_ATTRIBUTE_BYTES);
    assert_eq!(attrs["severity"], "é".repeat(MAX_ATTRIBUTE_BYTES / 2));
    let total: usize = attrs.iter().map(|(name, value)| name.len() + value.len()).sum();
    assert!(MAX_OUTCOME_BYTES + total < 256 * 1024);
}
