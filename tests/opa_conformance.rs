//! Our production engine (the VM, with its interpreter fallbacks) and the
//! interpreter against OPA v1.20, value for value: a corpus of small
//! policies written for this purpose (`tests/conformance/*.yaml`), the
//! starter kit over its scenarios (every round of the action policy), and
//! property-generated Matano payloads. A difference fails the suite unless
//! `tests/conformance/known-differences.yaml` lists it with its reason, and
//! a listed difference that no longer occurs fails it too (the list stays
//! true).

#[path = "common/opa.rs"]
mod opa;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alert_responder::app;
use alert_responder::config::{Config, PolicyEngine, PolicySource};
use alert_responder::decide::{Decider, Decision};
use alert_responder::ingest::ingest_document;
use alert_responder::policy::{read_source, with_escape_functions, PolicyFile, PolicySet};
use opa::{Bridge, Evaluated};
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    title: String,
    policy: String,
    rules: Vec<String>,
    inputs: Vec<Value>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Known {
    file: String,
    rule: String,
    /// `vm`, `interpreter`, or `both`.
    engine: String,
    /// The input's index; every input when absent.
    #[serde(default)]
    input: Option<usize>,
    reason: String,
}

/// One comparison's verdict.
#[derive(Default)]
struct Tally {
    compared: usize,
    failures: Vec<String>,
    /// Known differences seen, by their index in the list.
    seen: BTreeMap<usize, usize>,
}

impl Tally {
    fn check(&mut self, known: &[Known], site: (&str, &str, usize), engine: &str, opa: &Evaluated, ours: &Evaluated) {
        self.compared += 1;
        if same(opa, ours) {
            return;
        }
        let (file, rule, input) = site;
        let listed = known.iter().position(|k| {
            k.file == file
                && k.rule == rule
                && (k.engine == engine || k.engine == "both")
                && k.input.is_none_or(|i| i == input)
        });
        match listed {
            Some(index) => *self.seen.entry(index).or_default() += 1,
            None => self.failures.push(format!(
                "{file} {rule} input {input} on {engine}:\n    OPA:  {}\n    ours: {}",
                show(opa),
                show(ours)
            )),
        }
    }
}

fn show(evaluated: &Evaluated) -> String {
    match evaluated {
        Evaluated::Value(value) => value.to_string(),
        Evaluated::Undefined => "undefined".to_string(),
        Evaluated::Error(error) => format!("error: {error}"),
    }
}

/// Equal values (numbers by value, sets compared as sets), or both
/// undefined, or both errors.
fn same(a: &Evaluated, b: &Evaluated) -> bool {
    match (a, b) {
        (Evaluated::Value(a), Evaluated::Value(b)) => same_value(a, b),
        (Evaluated::Undefined, Evaluated::Undefined) | (Evaluated::Error(_), Evaluated::Error(_)) => true,
        _ => false,
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(x), Some(y), _, _) => x == y,
            (_, _, Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

/// Our evaluation, classified as OPA's is; a set (which OPA writes as an
/// array) is returned sorted, with `true` so OPA's array is sorted alike.
fn ours(set: &PolicySet, rule: &str, input: &Value) -> (Evaluated, bool) {
    match set.evaluate(rule, regorus::Value::from(input.clone()), None) {
        Ok(regorus::Value::Undefined) => (Evaluated::Undefined, false),
        Ok(value) => {
            let json = serde_json::to_value(&value).expect("policy values serialize");
            match (&value, json) {
                (regorus::Value::Set(_), Value::Array(mut items)) => {
                    items.sort_by_key(|v| v.to_string());
                    (Evaluated::Value(Value::Array(items)), true)
                }
                (_, json) => (Evaluated::Value(json), false),
            }
        }
        Err(err) => (Evaluated::Error(err.to_string()), false),
    }
}

/// OPA's result, its array sorted when ours is a set.
fn opa_like(opa: Evaluated, is_set: bool) -> Evaluated {
    match opa {
        Evaluated::Value(Value::Array(mut items)) if is_set => {
            items.sort_by_key(|v| v.to_string());
            Evaluated::Value(Value::Array(items))
        }
        opa => opa,
    }
}

fn package_of(policy: &str) -> String {
    let line = policy
        .lines()
        .find(|l| l.trim_start().starts_with("package "))
        .expect("a package line");
    format!("data.{}", line.trim_start()["package ".len()..].trim())
}

fn known_differences() -> Vec<Known> {
    let text = std::fs::read_to_string("tests/conformance/known-differences.yaml").unwrap();
    yaml_serde::from_str(&text).unwrap()
}

/// Both our engines on one compiled set: production (the VM with its
/// fallbacks) and the interpreter.
fn both_engines(set: PolicySet) -> [(&'static str, PolicySet); 2] {
    let interpreter = set.clone().with_engine(PolicyEngine::Interpreter);
    [("vm", set), ("interpreter", interpreter)]
}

fn corpus(bridge: &Bridge, known: &[Known], tally: &mut Tally) -> usize {
    let mut paths: Vec<_> = std::fs::read_dir("tests/conformance")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("known-differences.yaml"))
        .collect();
    paths.sort();
    for path in &paths {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let case: CaseFile =
            yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap_or_else(|e| panic!("{file}: {e}"));
        let package = package_of(&case.policy);
        let rules: Vec<String> = case.rules.iter().map(|r| format!("{package}.{r}")).collect();
        // A corpus policy OPA refused would compare errors with errors: it
        // must compile there.
        let opa = bridge
            .engine(&[(&file, &case.policy)])
            .unwrap_or_else(|error| panic!("{file}: OPA does not compile the corpus policy: {error}"));
        if let (Some(path), Some(input)) = (rules.first(), case.inputs.first()) {
            if let Evaluated::Error(error) = opa.eval(path, input) {
                assert!(
                    !error.starts_with("prepare_error"),
                    "{file}: OPA does not compile the corpus policy: {error}"
                );
            }
        }
        let compiled = PolicySet::compile_rules(
            vec![PolicyFile {
                name: file.clone(),
                text: case.policy.clone(),
            }],
            Duration::from_secs(5),
            &rules,
        );
        for (rule, path) in case.rules.iter().zip(&rules) {
            for (index, input) in case.inputs.iter().enumerate() {
                let expected = opa.eval(path, input);
                match &compiled {
                    Ok(set) => {
                        for (engine, set) in both_engines(set.clone()) {
                            let (got, is_set) = ours(&set, path, input);
                            let expected = opa_like(expected.clone(), is_set);
                            tally.check(known, (&file, rule, index), engine, &expected, &got);
                        }
                    }
                    Err(err) => {
                        let got = Evaluated::Error(err.to_string());
                        for engine in ["vm", "interpreter"] {
                            tally.check(known, (&file, rule, index), engine, &expected, &got);
                        }
                    }
                }
            }
        }
        eprintln!(
            "conformance: {file} ({}): {} rule(s) x {} input(s)",
            case.title,
            case.rules.len(),
            case.inputs.len()
        );
    }
    paths.len()
}

/// The starter kit's policies, production files only.
fn starter_kit() -> Vec<PolicyFile> {
    read_source(&PolicySource::Bundled)
        .unwrap()
        .into_iter()
        .filter(|f| !f.is_test())
        .collect()
}

/// Inputs of the starter kit's scenarios: every event's payload.
fn scenario_payloads() -> Vec<Value> {
    let mut payloads = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir("policies/scenarios")
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let scenario: Value = yaml_serde::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for event in scenario["events"].as_array().unwrap() {
            let mut payload = match (&event["input"], event["input_file"].as_str()) {
                (Value::Null, Some(file)) => {
                    let file = path.parent().unwrap_or(Path::new(".")).join(file);
                    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
                }
                (input, _) => input.clone(),
            };
            if let Some(patch) = event.get("input_patch") {
                merge_patch(&mut payload, patch);
            }
            payloads.push(payload);
        }
    }
    payloads
}

fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let target = target.as_object_mut().unwrap();
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// The alert policy on `payload`, then every action round a dry run of the
/// production decision evaluates, on OPA and ours.
fn compare_decision(
    opa: &opa::Engine<'_>,
    sets: &[(&'static str, PolicySet)],
    decider: &Decider,
    payload: &Value,
    tally: &mut Tally,
    site: &str,
) {
    let known: &[Known] = &[];
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for envelope in ingest_document(payload.to_string().as_bytes(), &"matano".into())
        .into_iter()
        .flatten()
    {
        let input = envelope.payload.as_ref().clone();
        for (engine, set) in sets {
            let (got, is_set) = ours(set, "data.alert.matano.alert", &input);
            let expected = opa_like(opa.eval("alert.matano.alert", &input), is_set);
            tally.check(known, (site, "alert.matano.alert", 0), engine, &expected, &got);
        }
        let Ok(decided) = runtime.block_on(decider.decide(&envelope, None)) else {
            continue;
        };
        let Decision::Alerts(reports) = decided.decision else {
            continue;
        };
        for report in reports {
            let alert = json!(report.alert);
            for seq in 0..=report.rounds {
                let called: Vec<Value> = report
                    .actions
                    .iter()
                    .filter(|a| a.seq < seq)
                    .map(|a| json!({"id": a.id, "uses": a.uses, "args": a.args, "seq": a.seq, "status": a.status.as_str(), "result": a.result, "error": a.error}))
                    .collect();
                let input = json!({"alert": alert, "env": env(), "seq": seq, "called": called});
                for (engine, set) in sets {
                    let (got, is_set) = ours(set, "data.action.run", &input);
                    let expected = opa_like(opa.eval("action.run", &input), is_set);
                    tally.check(known, (site, "action.run", seq as usize), engine, &expected, &got);
                }
            }
        }
    }
}

fn env() -> Value {
    json!({"WEBHOOK_URL": "https://hooks.example.org/x", "PAGE_TOPIC_ARN": "arn:aws:sns:us-east-1:1:p", "TRUSTED_ORGS": "AS13335 Cloudflare"})
}

fn starter_kit_decider() -> Decider {
    let config = Config {
        dry_run: true,
        policy_env: env()
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect(),
        ..Config::default()
    };
    Decider::new(
        Arc::new(app::policies(&config).unwrap()),
        app::registry(&config, None),
        app::decide_settings(&config),
        app::secrets(&config),
        None,
    )
}

fn starter_kit_engines(bridge: &Bridge) -> (opa::Engine<'_>, Vec<(&'static str, PolicySet)>) {
    let files = starter_kit();
    // OPA gets the same `escape.*` helper modules the loader adds for us.
    let with_helpers = with_escape_functions(files.clone());
    let modules: Vec<(&str, &str)> = with_helpers
        .iter()
        .map(|f| (f.name.as_str(), f.text.as_str()))
        .collect();
    let opa = bridge.engine(&modules).expect("OPA compiles the starter kit");
    let rules = vec!["data.alert.matano.alert".to_string(), "data.action.run".to_string()];
    // The production engine: the VM, with the interpreter for the rules the
    // VM does not take (none in the starter kit).
    let set = PolicySet::compile_rules(files, Duration::from_secs(5), &rules).unwrap();
    assert!(set.interpreted_rules().is_empty(), "{:?}", set.interpreted_rules());
    (opa, vec![("vm", set)])
}

#[test]
fn our_engines_decide_as_opa_does() {
    let bridge = Bridge::load();
    let known = known_differences();
    let mut tally = Tally::default();
    let files = corpus(&bridge, &known, &mut tally);
    let corpus_cases = tally.compared;

    let (opa, sets) = starter_kit_engines(&bridge);
    let decider = starter_kit_decider();
    for (index, payload) in scenario_payloads().iter().enumerate() {
        compare_decision(
            &opa,
            &sets,
            &decider,
            payload,
            &mut tally,
            &format!("starter kit scenario event {index}"),
        );
    }
    let starter_cases = tally.compared - corpus_cases;

    for (index, entry) in known.iter().enumerate() {
        if !tally.seen.contains_key(&index) {
            tally.failures.push(format!(
                "known difference no longer seen (remove it): {} {} on {}: {}",
                entry.file, entry.rule, entry.engine, entry.reason
            ));
        }
    }
    let listed: usize = tally.seen.values().sum();
    eprintln!(
        "conformance: {} cases compared with OPA ({corpus_cases} from {files} corpus files, {starter_cases} from the starter kit's scenarios); {listed} known difference(s), {} failure(s)",
        tally.compared,
        tally.failures.len()
    );
    assert!(corpus_cases >= 300, "only {corpus_cases} corpus cases compared");
    assert!(starter_cases >= 15, "only {starter_cases} starter-kit cases compared");
    assert!(tally.failures.is_empty(), "{}", tally.failures.join("\n"));
}

/// Mutations of the sample Matano change through both policies.
const FIELDS: &[&str] = &[
    "/updated_alert/severity",
    "/updated_alert/title",
    "/context_diff/source/ip",
    "/incoming_rule_matches_context/user/name",
    "/updated_alert/update_count",
    "/context_diff",
];

fn policy_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop_oneof![Just("critical"), Just("high"), Just("low"), Just("info")].prop_map(|s| json!(s)),
        prop::collection::vec("[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}", 0..4).prop_map(|v| json!(v)),
        prop::collection::vec(
            prop_oneof![Just("svc-backup"), Just("terraform-ci"), Just("alice")],
            0..3
        )
        .prop_map(|v| json!(v)),
        any::<u32>().prop_map(|n| json!(n)),
        ".{0,12}".prop_map(Value::String),
        Just(json!({})),
        Just(Value::Null),
    ]
}

/// Mutated Matano changes through the starter kit on OPA and ours: 200
/// generated cases; a mutation may make the change invalid (rejected
/// before any policy runs), so the cases compared are counted and a
/// minimum asserted.
#[test]
fn mutated_matano_changes_decide_as_opa_does() {
    use proptest::test_runner::{Config as RunnerConfig, TestRunner};
    let bridge = Bridge::load();
    let (opa, sets) = starter_kit_engines(&bridge);
    let decider = starter_kit_decider();
    let strategy = prop::collection::vec((0..FIELDS.len(), policy_json()), 1..4);
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 200,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let compared = std::cell::Cell::new(0usize);
    runner
        .run(&strategy, |mutations| {
            let mut payload: Value =
                serde_json::from_str(include_str!("../examples/matano_alert_change.json")).unwrap();
            for (field, value) in mutations {
                if let Some(slot) = payload.pointer_mut(FIELDS[field]) {
                    *slot = value;
                }
            }
            let mut tally = Tally::default();
            compare_decision(&opa, &sets, &decider, &payload, &mut tally, "mutated payload");
            compared.set(compared.get() + tally.compared);
            prop_assert!(tally.failures.is_empty(), "{}", tally.failures.join("\n"));
            Ok(())
        })
        .unwrap();
    eprintln!(
        "conformance: {} cases compared on mutated Matano changes",
        compared.get()
    );
    assert!(compared.get() >= 150, "only {} cases compared", compared.get());
}
