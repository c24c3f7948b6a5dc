//! Scenario files: what a scenario holds, and loading them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::config::SchemaRouting;
use crate::ingest::{ingest_document, is_notification, is_sns_event, is_sqs_event, Envelope};

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
    /// Persisted attributes before the first event: namespace → key → value
    /// (numbers are counters an `add` commit adds to). They expire as a
    /// commit without `ttl` would.
    #[serde(default)]
    pub state: BTreeMap<String, BTreeMap<String, Value>>,
    /// Where the scenario was loaded from (for relative `input_file`s).
    #[serde(skip)]
    pub path: PathBuf,
    /// An AlertChain scenario: mocks per event, an action without a mocked
    /// result returns null (with a warning), each event is a new alert.
    #[serde(skip)]
    pub alertchain: bool,
}

impl Scenario {
    /// A scenario of one event, `input`, with no mocks or expectations.
    pub fn of_input(id: &str, input: Value, env: BTreeMap<String, String>) -> Scenario {
        Scenario {
            id: id.to_string(),
            title: String::new(),
            env,
            events: vec![ScenarioEvent {
                input: Some(input),
                input_file: None,
                input_patch: None,
                schema: None,
                advance: None,
                expect: None,
                mocks: None,
            }],
            actions: BTreeMap::new(),
            expect: Expectations::default(),
            state: BTreeMap::new(),
            path: PathBuf::new(),
            alertchain: false,
        }
    }
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
    /// How far the scenario's clock moves before this event: seconds, or a
    /// number with a unit (`90s`, `30m`, `2h`, `1d`). Persisted attributes
    /// expire by this clock.
    #[serde(default)]
    pub advance: Option<ClockAdvance>,
    /// Expectations on this event alone.
    #[serde(default)]
    pub expect: Option<Expectations>,
    /// Mocked results for this event alone (AlertChain's `actions`).
    #[serde(skip)]
    pub mocks: Option<BTreeMap<String, Vec<MockResult>>>,
}

/// A span of virtual time, written as seconds or with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockAdvance(pub std::time::Duration);

impl<'de> Deserialize<'de> for ClockAdvance {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Seconds(u64),
            Text(String),
        }
        match Written::deserialize(deserializer)? {
            Written::Seconds(seconds) => Ok(ClockAdvance(std::time::Duration::from_secs(seconds))),
            Written::Text(text) => parse_span(&text).map(ClockAdvance).map_err(serde::de::Error::custom),
        }
    }
}

/// `90`, `90s`, `30m`, `2h`, `1d`.
fn parse_span(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: write seconds, or a number with s, m, h or d (`30m`)"))?;
    let scale = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        other => return Err(format!("{text:?}: unknown unit {other:?}; use s, m, h or d (`30m`)")),
    };
    number
        .checked_mul(scale)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
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
    /// The event was a stale change (an older update of an alert than one
    /// already processed): nothing decided. Per event only.
    #[serde(default)]
    pub stale: Option<bool>,
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
    #[error("{path}: no scenario files (*.yaml, *.yml, *.json with `id` and `events`, or AlertChain's *.jsonnet)")]
    NoScenarios { path: String },
}

/// The envelope of a scenario's event, ingested as production ingests it.
pub(super) fn event_envelope(
    scenario: &Scenario,
    index: usize,
    event: &ScenarioEvent,
    routing: &SchemaRouting,
) -> Result<Envelope, String> {
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
    // A bare payload travels as it would in production: in an SNS
    // notification (a schema override as its `schema` attribute), with a
    // fixed time so alerts without one of their own are deterministic.
    let is_sns = is_sns_event(&input) || is_sqs_event(&input) || is_notification(&input);
    let document = if is_sns {
        input
    } else {
        let mut notification = json!({
            "Type": "Notification",
            "MessageId": format!("play-{}-{index}", scenario.id),
            "Timestamp": "1970-01-01T00:00:00Z",
            "Message": input.to_string(),
        });
        if let Some(schema) = &event.schema {
            notification["MessageAttributes"] = json!({"schema": {"Type": "String", "Value": schema}});
        }
        notification
    };
    let mut ingested = ingest_document(document.to_string().as_bytes(), routing);
    match ingested.len() {
        1 => ingested
            .pop()
            .expect("one")
            .map(|mut envelope| {
                // AlertChain: every event is a new alert, the same payload too.
                if scenario.alertchain {
                    envelope.occurrence = Some(index.to_string());
                }
                envelope
            })
            .map_err(|rejected| rejected.error.to_string()),
        n => Err(format!("input holds {n} records; a scenario event is one message")),
    }
}

/// RFC 7396 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_advances_are_seconds_or_a_number_with_a_unit() {
        let parse = |text: &str| yaml_serde::from_str::<ClockAdvance>(text).map(|a| a.0.as_secs());
        assert_eq!(parse("90").unwrap(), 90);
        assert_eq!(parse("\"90s\"").unwrap(), 90);
        assert_eq!(parse("30m").unwrap(), 1_800);
        assert_eq!(parse("2h").unwrap(), 7_200);
        assert_eq!(parse("1d").unwrap(), 86_400);
        let err = parse("1w").unwrap_err().to_string();
        assert!(err.contains("unknown unit \"w\""), "{err}");
        let err = parse("soon").unwrap_err().to_string();
        assert!(err.contains("not a duration"), "{err}");
    }

    #[test]
    fn events_sns_sqs_and_other_records_are_read_as_production_reads_them() {
        let envelope = |input: Value, schema: Option<&str>| {
            let scenario: Scenario =
                serde_json::from_value(json!({"id": "s", "events": [{"input": input, "schema": schema}]})).unwrap();
            event_envelope(&scenario, 0, &scenario.events[0], &"matano".into())
        };
        let payload = json!({"finding": "x"});
        let notification = json!({"Type": "Notification", "MessageId": "n", "Message": payload.to_string(),
            "MessageAttributes": {"schema": {"Type": "String", "Value": "other"}}});
        let sqs = json!({"Records": [{"messageId": "q", "eventSource": "aws:sqs", "body": notification.to_string()}]});
        let from_sqs = envelope(sqs, None).unwrap();
        assert_eq!((from_sqs.schema.as_str(), &*from_sqs.payload), ("other", &payload));
        let sns = json!({"Records": [{"EventSource": "aws:sns", "Sns": notification}]});
        assert_eq!(envelope(sns, None).unwrap().schema, "other");
        // A CloudTrail log file is a payload for the scenario's schema.
        let trail = json!({"Records": [{"eventSource": "ec2.amazonaws.com"}]});
        let from_trail = envelope(trail.clone(), Some("cloudtrail")).unwrap();
        assert_eq!(
            (from_trail.schema.as_str(), &*from_trail.payload),
            ("cloudtrail", &trail)
        );
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = json!({"a": {"b": 1, "c": 2}, "d": [1], "e": 1});
        merge_patch(&mut doc, &json!({"a": {"b": null, "x": 3}, "d": {"k": 1}, "e": null}));
        assert_eq!(doc, json!({"a": {"c": 2, "x": 3}, "d": {"k": 1}}));
    }
}
