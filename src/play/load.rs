//! Finding and reading scenario files: ours, and AlertChain's (whose
//! module reads its own shape), and the mocks of `run --mocks`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::alertchain;
use super::scenario::{MockResult, Scenario, ScenarioError};

/// Scenarios found below a directory, and the files that were not ones.
#[derive(Debug, Default)]
pub struct LoadedScenarios {
    pub scenarios: Vec<Scenario>,
    /// Files that are not scenarios (event payloads, data), with why.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Loads the scenario file `path`, or every scenario below the directory
/// `path`, sorted by path: ours (`*.yaml`, `*.yml`, `*.json`) and
/// AlertChain's (`*.jsonnet`, or JSON of its shape). A file of neither shape
/// is skipped with a note (AlertChain keeps event files beside its
/// scenarios); a scenario with a mistake is an error.
pub fn load_scenarios(path: &Path) -> Result<LoadedScenarios, ScenarioError> {
    let dir = path;
    let mut paths = Vec::new();
    let listed = match dir.is_file() {
        true => {
            paths.push(dir.to_path_buf());
            Ok(())
        }
        false => collect(dir, &mut paths),
    };
    listed.map_err(|err| ScenarioError::Load {
        path: dir.display().to_string(),
        reason: err.to_string(),
    })?;
    paths.sort();
    let mut loaded = LoadedScenarios::default();
    for path in paths {
        // Found in a directory, a playbook this build cannot read beside
        // the JSON it was evaluated to (`jsonnet s.jsonnet > s.json`) is
        // that JSON's source: skipped, said.
        if !cfg!(feature = "play-jsonnet")
            && dir.is_dir()
            && path.extension().is_some_and(|e| e == "jsonnet")
            && path.with_extension("json").is_file()
        {
            loaded.skipped.push((
                path,
                "Jsonnet, which this build does not read: the .json beside it is played".to_string(),
            ));
            continue;
        }
        let found = load_scenario(&path)?;
        if found.is_empty() {
            loaded
                .skipped
                .push((path, "not a scenario (no `id` and `events`)".to_string()));
        }
        loaded.scenarios.extend(found);
    }
    if loaded.scenarios.is_empty() {
        return Err(ScenarioError::NoScenarios {
            path: dir.display().to_string(),
        });
    }
    Ok(loaded)
}

/// Mocked action results for `run --mocks`: the scenario `actions:` map
/// (action id or `uses` → results in order), in YAML or JSON.
pub fn load_mocks(path: &Path) -> Result<BTreeMap<String, Vec<MockResult>>, ScenarioError> {
    let fail = |reason: String| ScenarioError::Load {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let mocks: BTreeMap<String, Vec<MockResult>> =
        serde_path_to_error::deserialize(yaml_serde::Deserializer::from_str(&text)).map_err(|e| {
            fail(format!(
                "at `{}`: {} (expected a map of action id or uses to a list of {{result, error}})",
                e.path(),
                e.inner()
            ))
        })?;
    check_mocks(&mocks).map_err(fail)?;
    Ok(mocks)
}

fn check_mocks(mocks: &BTreeMap<String, Vec<MockResult>>) -> Result<(), String> {
    for (key, results) in mocks {
        if let Some(i) = results.iter().position(|m| m.result.is_none() && m.error.is_none()) {
            return Err(format!("{key}[{i}] needs `result` or `error`"));
        }
    }
    Ok(())
}

/// The scenarios of one file: none when it is not a scenario file, several
/// for AlertChain's `{scenarios: [...]}` playbook.
fn load_scenario(path: &Path) -> Result<Vec<Scenario>, ScenarioError> {
    let fail = |reason: String| ScenarioError::Load {
        path: path.display().to_string(),
        reason,
    };
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
    if extension == "jsonnet" {
        let document = alertchain::evaluate_jsonnet(path).map_err(fail)?;
        return alertchain::playbook_scenarios(document, path).map_err(fail);
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let document: Value = if extension == "json" {
        serde_json::from_str(&text).map_err(|e| fail(format!("not JSON: {e}")))?
    } else {
        yaml_serde::from_str(&text).map_err(|e| fail(format!("not YAML: {e}")))?
    };
    if alertchain::is_playbook(&document) {
        return alertchain::playbook_scenarios(document, path).map_err(fail);
    }
    if document.get("id").is_none() || !document.get("events").is_some_and(Value::is_array) {
        return Ok(Vec::new());
    }
    let mut scenario: Scenario =
        serde_path_to_error::deserialize(document).map_err(|e| fail(format!("at `{}`: {}", e.path(), e.inner())))?;
    if scenario.events.is_empty() {
        return Err(fail("`events` is empty".to_string()));
    }
    if scenario.expect.stale.is_some() {
        return Err(fail(
            "`expect.stale` is about one event: give it under `events[i].expect`".to_string(),
        ));
    }
    check_mocks(&scenario.actions).map_err(|reason| fail(format!("actions.{reason}")))?;
    scenario.path = path.to_path_buf();
    Ok(vec![scenario])
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json" || e == "jsonnet")
        {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(all(test, not(feature = "play-jsonnet")))]
mod tests {
    use super::*;

    #[test]
    fn without_jsonnet_a_playbook_beside_its_json_is_skipped_and_one_alone_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let playbook = r#"{"id": "s", "events": [{"schema": "x", "input": {"a": 1}}]}"#;
        std::fs::write(dir.path().join("s.jsonnet"), playbook).unwrap();
        std::fs::write(dir.path().join("s.json"), playbook).unwrap();
        let loaded = load_scenarios(dir.path()).unwrap();
        assert_eq!(loaded.scenarios.len(), 1);
        assert_eq!(loaded.skipped.len(), 1);
        assert!(loaded.skipped[0].0.ends_with("s.jsonnet"), "{:?}", loaded.skipped);
        assert!(loaded.skipped[0].1.contains("the .json beside it is played"));
        // Named alone, or without its JSON: this build says what it lacks.
        let alone = load_scenarios(&dir.path().join("s.jsonnet")).unwrap_err();
        assert!(alone.to_string().contains("this build reads no Jsonnet"), "{alone}");
        std::fs::remove_file(dir.path().join("s.json")).unwrap();
        let without = load_scenarios(dir.path()).unwrap_err();
        assert!(without.to_string().contains("this build reads no Jsonnet"), "{without}");
    }
}
