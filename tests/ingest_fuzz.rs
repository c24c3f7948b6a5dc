//! Property tests over the ingest path: whatever arrives, ingest answers
//! with an envelope or a rejection (keeping the original), never a panic;
//! a rejection's outcome always fits SNS; accepted Matano payloads go
//! through the bundled alert policy without a panic. Bounded case counts so
//! CI time stays fixed.

use std::time::Duration;

use alert_responder::config::PolicyEngine;
use alert_responder::config::PolicySource;
use alert_responder::ingest::{ingest_document, ingest_lambda_event};
use alert_responder::model::outcome::{rejected_outcome, MAX_OUTCOME_BYTES};
use alert_responder::model::Alert;
use alert_responder::policy::{to_policy_value, PolicySet};
use proptest::prelude::*;
use serde_json::{json, Value};

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn matano_fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/matano_alert_change_v1.json")).unwrap()
}

const FIELDS: &[&str] = &[
    "/updated_alert/id",
    "/updated_alert/severity",
    "/updated_alert/creation_time",
    "/updated_alert/update_count",
    "/updated_alert/context",
    "/updated_alert/destination_to_alert_info",
    "/updated_alert/false_positives",
    "/context_diff",
    "/context_diff/source",
    "/incoming_rule_matches_context/user/name",
];

fn check_rejection_fits(rejected: &alert_responder::ingest::Rejected) {
    assert!(!rejected.error.to_string().is_empty());
    let message = rejected_outcome(rejected).to_message();
    assert!(message.len() <= MAX_OUTCOME_BYTES);
    serde_json::from_str::<Value>(&message).expect("outcome is JSON");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        for result in ingest_document(&bytes, &"matano".into()) {
            if let Err(rejected) = result {
                prop_assert_eq!(&rejected.original, &String::from_utf8_lossy(&bytes).to_string());
                check_rejection_fits(&rejected);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_in_every_envelope_never_panics(payload in arbitrary_json(), attribute in prop::option::of("[a-z.]{0,10}")) {
        let text = payload.to_string();
        for result in ingest_document(text.as_bytes(), &"matano".into()) {
            if let Err(rejected) = result {
                check_rejection_fits(&rejected);
            }
        }
        let mut sns = json!({"Type": "Notification", "MessageId": "m", "Message": text});
        if let Some(schema) = attribute {
            sns["MessageAttributes"] = json!({"schema": {"Type": "String", "Value": schema}});
        }
        let event = json!({"Records": [{"EventSource": "aws:sns", "Sns": sns}, {"Sns": payload.clone()}, payload]});
        let results = ingest_lambda_event(&event, &"matano".into());
        prop_assert_eq!(results.len(), 3);
        for result in results {
            if let Err(rejected) = result {
                check_rejection_fits(&rejected);
            }
        }
    }

    #[test]
    fn mutated_matano_payloads_never_panic_ingest_or_the_alert_policy(
        mutations in prop::collection::vec((0..FIELDS.len(), arbitrary_json()), 1..4)
    ) {
        static POLICIES: std::sync::OnceLock<PolicySet> = std::sync::OnceLock::new();
        let policies = POLICIES.get_or_init(|| PolicySet::load(&PolicySource::Bundled, Duration::from_secs(2)).unwrap());
        let mut payload = matano_fixture();
        for (field, value) in mutations {
            if let Some(slot) = payload.pointer_mut(FIELDS[field]) {
                *slot = value;
            }
        }
        for result in ingest_document(payload.to_string().as_bytes(), &"matano".into()) {
            match result {
                // A policy may fail on odd data; it must say so, not panic.
                Ok(envelope) => { let _ = policies.eval_alerts(&envelope.schema, &envelope.payload, None); }
                Err(rejected) => check_rejection_fits(&rejected),
            }
        }
    }
}

const ENGINE_FIELDS: &[&str] = &[
    "/updated_alert/severity",
    "/updated_alert/title",
    "/updated_alert/update_count",
    "/updated_alert/context/source/ip",
    "/context_diff/source/ip",
    "/context_diff",
    "/incoming_rule_matches_context/user/name",
];

/// Values the bundled policies branch on: severities, users (service
/// accounts among them), IPs, and odd types.
fn policy_relevant_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::sample::select(vec!["low", "medium", "high", "critical", "info"]).prop_map(|s| json!(s)),
        3 => prop::collection::vec(
            prop::sample::select(vec!["svc-backup", "terraform-ci", "alice", "bob"]),
            0..4
        )
        .prop_map(|v| json!(v)),
        4 => prop::collection::vec((0u8..4, 0u8..255).prop_map(|(a, b)| format!("198.51.{a}.{b}")), 0..5)
            .prop_map(|v| json!(v)),
        1 => arbitrary_json(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    /// The VM (production) and the interpreter (reference) decide the same:
    /// the same alerts, and the same first-round actions for each, whenever
    /// the interpreter evaluates without a runtime error.
    #[test]
    fn the_vm_and_the_interpreter_decide_the_same(
        mutations in prop::collection::vec((0..ENGINE_FIELDS.len(), policy_relevant_json()), 1..4)
    ) {
        static ENGINES: std::sync::OnceLock<(PolicySet, PolicySet)> = std::sync::OnceLock::new();
        let (vm, interpreter) = ENGINES.get_or_init(|| {
            let vm = PolicySet::load(&PolicySource::Bundled, Duration::from_secs(2)).unwrap();
            assert!(vm.interpreted_rules().is_empty());
            let interpreter = vm.clone().with_engine(PolicyEngine::Interpreter);
            (vm, interpreter)
        });
        // The bundled sample responds (high, new IPs); mutations move it around that.
        let mut payload: Value = serde_json::from_str(include_str!("../examples/matano_alert_change.json")).unwrap();
        for (field, value) in mutations {
            if let Some(slot) = payload.pointer_mut(ENGINE_FIELDS[field]) {
                *slot = value;
            }
        }
        for envelope in ingest_document(payload.to_string().as_bytes(), &"matano".into()).into_iter().flatten() {
            let Ok(expected) = interpreter.eval_alerts(&envelope.schema, &envelope.payload, None) else { continue };
            let got = vm.eval_alerts(&envelope.schema, &envelope.payload, None).unwrap();
            prop_assert_eq!(serde_json::to_value(&got).unwrap(), serde_json::to_value(&expected).unwrap());
            for draft in expected {
                let alert = Alert::from_draft(draft, &envelope);
                let input = json!({"alert": alert, "env": {"WEBHOOK_URL": "https://h.example", "PAGE_TOPIC_ARN": "arn:aws:sns:us-east-1:1:p"}, "seq": 0, "called": []});
                let Ok(expected) = interpreter.eval_actions(regorus::Value::from(input.clone()), None, &Default::default()) else { continue };
                let got = vm.eval_actions(regorus::Value::from(input), None, &Default::default()).unwrap();
                prop_assert_eq!(format!("{got:?}"), format!("{expected:?}"));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    /// The direct JSON -> policy value conversion makes exactly what
    /// regorus's own (serde) conversion makes: equal, and equal when written
    /// back as JSON, for every kind of number (u64 beyond i64 included).
    #[test]
    fn policy_values_match_regorus_conversion(
        value in arbitrary_json(),
        big in any::<u64>(),
    ) {
        let value = json!({"value": value, "big": big, "neg": -(big as i128 / 2) as i64});
        let direct = to_policy_value(&value);
        let regorus = <regorus::Value as serde::Deserialize>::deserialize(&value).unwrap();
        prop_assert_eq!(&direct, &regorus);
        prop_assert_eq!(serde_json::to_string(&direct).unwrap(), serde_json::to_string(&regorus).unwrap());
    }
}
