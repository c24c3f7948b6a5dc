//! AlertChain's play scenarios, run as they are: one scenario per
//! `*.jsonnet` (or JSON) file, `{id, title, env, events: [{input, schema,
//! actions}]}`, where `actions` maps an action's `uses` to the results it
//! returns in turn during that event (an action with none left returns
//! null, with a warning). AlertChain writes what happened to
//! `<out>/<id>/data.json`; so does `play`, in its shape, for the Rego tests
//! its users write over that output.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{json, Value};

use super::report::ScenarioResult;
use super::scenario::{Expectations, MockResult, Scenario, ScenarioEvent};

/// One AlertChain scenario as its file holds it.
#[derive(Debug, Deserialize)]
struct Playbook {
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    env: BTreeMap<String, String>,
    events: Vec<PlaybookEvent>,
}

#[derive(Debug, Deserialize)]
struct PlaybookEvent {
    input: Value,
    schema: String,
    #[serde(default)]
    actions: BTreeMap<String, Vec<Value>>,
}

/// Whether a scenario document is AlertChain's: an event of it names its
/// `schema` or mocks `actions` (ours keep mocks beside the events), or it is
/// a playbook of `scenarios`.
pub(super) fn is_playbook(document: &Value) -> bool {
    if document.get("events").is_none() && document["scenarios"].is_array() {
        return true;
    }
    document.get("id").is_some()
        && document.get("expect").is_none()
        && document.get("actions").is_none()
        && document["events"].as_array().is_some_and(|events| {
            events
                .iter()
                .any(|e| e.get("actions").is_some() || e.get("schema").is_some())
        })
}

/// The scenarios of an AlertChain document: one scenario, or a playbook's
/// `scenarios` (ids unique within it).
pub(super) fn playbook_scenarios(document: Value, path: &Path) -> Result<Vec<Scenario>, String> {
    let Some(scenarios) = document.get("scenarios").and_then(Value::as_array) else {
        return Ok(vec![playbook_scenario(document, path)?]);
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (index, scenario) in scenarios.iter().enumerate() {
        let scenario = playbook_scenario(scenario.clone(), path).map_err(|err| format!("scenarios[{index}]: {err}"))?;
        if !seen.insert(scenario.id.clone()) {
            return Err(format!("scenarios[{index}]: id {:?} is used twice", scenario.id));
        }
        out.push(scenario);
    }
    Ok(out)
}

/// The scenario of an AlertChain scenario document.
fn playbook_scenario(document: Value, path: &Path) -> Result<Scenario, String> {
    let playbook: Playbook = serde_path_to_error::deserialize(document)
        .map_err(|err| format!("not an AlertChain scenario at `{}`: {}", err.path(), err.inner()))?;
    if playbook.events.is_empty() {
        return Err("`events` is empty".to_string());
    }
    let events = playbook
        .events
        .into_iter()
        .map(|event| ScenarioEvent {
            input: Some(event.input),
            input_file: None,
            input_patch: None,
            schema: Some(event.schema),
            advance: None,
            expect: None,
            mocks: Some(
                event
                    .actions
                    .into_iter()
                    .map(|(uses, results)| {
                        let results = results
                            .into_iter()
                            .map(|result| MockResult {
                                result: Some(result),
                                error: None,
                            })
                            .collect();
                        (uses, results)
                    })
                    .collect(),
            ),
        })
        .collect();
    Ok(Scenario {
        id: playbook.id,
        title: playbook.title,
        env: playbook.env,
        events,
        actions: BTreeMap::new(),
        expect: Expectations::default(),
        state: BTreeMap::new(),
        path: path.to_path_buf(),
        alertchain: true,
    })
}

/// Evaluates a Jsonnet file (imports relative to it) to JSON. The
/// evaluator prints its own errors, with file and line, to stderr.
#[cfg(feature = "play-jsonnet")]
pub(super) fn evaluate_jsonnet(path: &Path) -> Result<Value, String> {
    let arena = rsjsonnet_lang::arena::Arena::new();
    let mut session = rsjsonnet_front::Session::new(&arena);
    let failed = || "Jsonnet evaluation failed (the error is above)".to_string();
    let thunk = session.load_real_file(path).ok_or_else(failed)?;
    let value = session.eval_value(&thunk).ok_or_else(failed)?;
    let json = session.manifest_json(&value, false).ok_or_else(failed)?;
    serde_json::from_str(&json).map_err(|err| format!("Jsonnet gave no JSON: {err}"))
}

/// Jsonnet is a build feature (its evaluator is most of a MiB the Lambda
/// never uses); without it the playbook has to be given as JSON.
#[cfg(not(feature = "play-jsonnet"))]
pub(super) fn evaluate_jsonnet(path: &Path) -> Result<Value, String> {
    Err(format!(
        "this build reads no Jsonnet: build with `--features play-jsonnet`, or evaluate it to JSON first (`jsonnet {} > playbook.json`) and play that",
        path.display()
    ))
}

/// `data.json` as AlertChain writes it: per alert, the alert as created
/// (without `data` and `raw`) and every action it ran, in order, with its
/// round as `seq` and its commits; the first error, if any.
pub fn alertchain_log(result: &ScenarioResult) -> Value {
    let mut results = Vec::new();
    let mut error = None;
    for event in &result.events {
        if let Some(message) = &event.error {
            error.get_or_insert_with(|| message.clone());
        }
        for alert in &event.alerts {
            let actions: Vec<Value> = alert
                .rounds
                .iter()
                .flat_map(|round| round.actions.iter().map(move |action| (round.seq, action)))
                .filter(|(_, action)| action["status"] != "skipped")
                .map(|(seq, action)| {
                    json!({
                        "seq": seq,
                        "id": action["id"],
                        "name": action.get("name").cloned().unwrap_or(json!("")),
                        "uses": action["uses"],
                        "args": action["args"],
                        "force": action.get("force").cloned().unwrap_or(json!(false)),
                        "abort": action.get("abort").cloned().unwrap_or(json!(false)),
                        "commit": attrs_in_full(&action["commits"]),
                    })
                })
                .collect();
            results.push(json!({
                "alert": {
                    "id": alert.id,
                    "title": alert.title,
                    "description": alert.description,
                    "source": alert.source,
                    "namespace": alert.namespace,
                    "attrs": attrs_in_full(&alert.initial_attrs),
                    "refs": alert.refs,
                    "schema": alert.schema,
                    // AlertChain writes the time it made the alert; fixed
                    // here, so the output is the same on every run.
                    "created_at": "1970-01-01T00:00:00Z",
                },
                "actions": actions,
            }));
        }
    }
    // AlertChain leaves `results` out when the scenario raised no alert.
    let mut log = json!({"id": result.id, "title": result.title});
    if !results.is_empty() {
        log["results"] = json!(results);
    }
    if let Some(error) = error {
        log["error"] = json!(error);
    }
    log
}

/// Attributes with all six of AlertChain's fields, as it writes them
/// (`type` "" and `ttl` 0 where not given).
fn attrs_in_full(attrs: &Value) -> Value {
    let Some(list) = attrs.as_array() else {
        return Value::Null;
    };
    list.iter()
        .map(|attr| {
            let mut full = json!({
                "id": attr.get("id").cloned().unwrap_or(json!("")),
                "key": attr["key"],
                "value": attr["value"],
                "type": attr.get("type").cloned().unwrap_or(json!("")),
                "persist": attr.get("persist").cloned().unwrap_or(json!(false)),
                "ttl": attr.get("ttl").cloned().unwrap_or(json!(0)),
            });
            // A commit's JSONPath, where it read one.
            if let Some(path) = attr.get("path") {
                full["path"] = path.clone();
            }
            full
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> Value {
        json!({
            "id": "s1",
            "title": "t",
            "env": {"K": "v"},
            "events": [
                {"schema": "aws_guardduty", "input": {"a": 1},
                 "actions": {"chatgpt.query": [{"x": 1}, {"x": 2}]}},
                {"schema": "aws_guardduty", "input": {"a": 2}}
            ]
        })
    }

    #[test]
    fn a_playbook_is_told_from_our_scenarios() {
        assert!(is_playbook(&document()));
        let ours = json!({"id": "s", "events": [{"input": {}}], "actions": {}});
        assert!(!is_playbook(&ours));
        let ours_with_expect = json!({"id": "s", "events": [{"schema": "x", "input": {}}], "expect": {}});
        assert!(!is_playbook(&ours_with_expect));
    }

    #[test]
    fn each_event_keeps_its_own_mocks_in_order() {
        let scenario = playbook_scenario(document(), Path::new("s1.jsonnet")).unwrap();
        assert!(scenario.alertchain);
        assert_eq!(scenario.env["K"], "v");
        let first = scenario.events[0].mocks.as_ref().unwrap();
        let results: Vec<_> = first["chatgpt.query"]
            .iter()
            .map(|m| m.result.clone().unwrap())
            .collect();
        assert_eq!(results, [json!({"x": 1}), json!({"x": 2})]);
        assert!(scenario.events[1].mocks.as_ref().unwrap().is_empty());
        assert_eq!(scenario.events[1].schema.as_deref(), Some("aws_guardduty"));
    }

    #[test]
    fn a_playbook_of_scenarios_gives_each() {
        let mut second = document();
        second["id"] = json!("s2");
        let playbook = json!({"scenarios": [document(), second]});
        assert!(is_playbook(&playbook));
        let scenarios = playbook_scenarios(playbook, Path::new("p.jsonnet")).unwrap();
        let ids: Vec<&str> = scenarios.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["s1", "s2"]);
        let twice = json!({"scenarios": [document(), document()]});
        let error = playbook_scenarios(twice, Path::new("p.jsonnet")).unwrap_err();
        assert!(error.contains("scenarios[1]") && error.contains("twice"), "{error}");
        let mut bad = document();
        bad["events"][0]["schema"] = json!(3);
        let error = playbook_scenarios(json!({"scenarios": [bad]}), Path::new("p.jsonnet")).unwrap_err();
        assert!(
            error.contains("scenarios[0]") && error.contains("events[0].schema"),
            "{error}"
        );
    }

    #[test]
    fn a_playbook_mistake_names_where() {
        let mut bad = document();
        bad["events"][0]["schema"] = json!(3);
        let error = playbook_scenario(bad, Path::new("s1.jsonnet")).unwrap_err();
        assert!(error.contains("events[0].schema"), "{error}");
        let mut empty = document();
        empty["events"] = json!([]);
        assert!(playbook_scenario(empty, Path::new("s1.jsonnet"))
            .unwrap_err()
            .contains("empty"));
    }

    #[test]
    fn attributes_carry_all_six_fields() {
        let full = attrs_in_full(&json!([{"key": "k", "value": 1}]));
        assert_eq!(
            full,
            json!([{"id": "", "key": "k", "value": 1, "type": "", "persist": false, "ttl": 0}])
        );
        assert_eq!(attrs_in_full(&Value::Null), Value::Null);
    }

    #[cfg(not(feature = "play-jsonnet"))]
    #[test]
    fn without_the_feature_jsonnet_says_how_to_get_it() {
        let error = evaluate_jsonnet(Path::new("scenario/a.jsonnet")).unwrap_err();
        assert!(error.contains("--features play-jsonnet"), "{error}");
        assert!(error.contains("jsonnet scenario/a.jsonnet > playbook.json"), "{error}");
    }

    #[cfg(feature = "play-jsonnet")]
    #[test]
    fn jsonnet_imports_resolve_beside_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("event.json"), r#"{"n": 1}"#).unwrap();
        std::fs::write(
            dir.path().join("p.jsonnet"),
            "local e = import 'event.json'; { id: 'p', events: [ { schema: 's', input: e { m: e.n + 1 } } ] }",
        )
        .unwrap();
        let value = evaluate_jsonnet(&dir.path().join("p.jsonnet")).unwrap();
        assert_eq!(value["events"][0]["input"], json!({"n": 1, "m": 2}));
    }
}
