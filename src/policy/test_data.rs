//! Data files for `test`, as `opa test` loads them: every `*.json`,
//! `*.yaml` and `*.yml` below the policy directory, placed at `data.` plus
//! the directories between the root and the file (the file's name is not
//! part of the path), documents at one path merged. `play` scenarios
//! (files with `id` and `events`) are not data.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::PolicyError;

/// The data document of `root`; an empty object when there is none.
pub fn load_test_data(root: &Path) -> Result<Value, PolicyError> {
    let mut files = Vec::new();
    collect(root, &mut files)?;
    files.sort();
    let mut data = Value::Object(Map::new());
    let mut origins: Vec<(Vec<String>, PathBuf)> = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|err| read_error(&path, err.to_string()))?;
        let document: Value = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|err| read_error(&path, format!("not JSON: {err}")))?
        } else {
            yaml_serde::from_str(&text).map_err(|err| read_error(&path, format!("not YAML: {err}")))?
        };
        if is_scenario(&document) {
            continue;
        }
        let dirs: Vec<String> = path
            .parent()
            .and_then(|dir| dir.strip_prefix(root).ok())
            .map(|dir| dir.iter().map(|part| part.to_string_lossy().to_string()).collect())
            .unwrap_or_default();
        let slot = slot_at(&mut data, &dirs);
        merge(slot, document).map_err(|at| {
            let earlier = origins
                .iter()
                .find(|(prefix, _)| *prefix == dirs)
                .map(|(_, path)| path.display().to_string())
                .unwrap_or_else(|| "another file".to_string());
            read_error(
                &path,
                format!("data.{} conflicts with {earlier} at `{at}`", dirs.join(".")),
            )
        })?;
        origins.push((dirs, path));
    }
    Ok(data)
}

fn read_error(path: &Path, reason: String) -> PolicyError {
    PolicyError::Read {
        path: path.to_path_buf(),
        reason,
    }
}

/// A scenario of ours or AlertChain's, or AlertChain's playbook of them.
fn is_scenario(document: &Value) -> bool {
    let one = |doc: &Value| doc.get("id").is_some() && doc.get("events").is_some_and(Value::is_array);
    one(document)
        || document
            .get("scenarios")
            .and_then(Value::as_array)
            .is_some_and(|all| !all.is_empty() && all.iter().all(one))
}

/// The object at `path` below `data`, made where missing.
fn slot_at<'a>(data: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(data, |node, key| {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        node.as_object_mut()
            .expect("an object")
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()))
    })
}

/// Merges `document` into `slot`: objects key by key; anything else only
/// into an empty place. The error is the key where two documents disagree.
fn merge(slot: &mut Value, document: Value) -> Result<(), String> {
    match (slot, document) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                match into.get_mut(&key) {
                    Some(existing) => {
                        merge(existing, value).map_err(|at| format!("{key}.{at}").trim_end_matches('.').to_string())?
                    }
                    None => {
                        into.insert(key, value);
                    }
                }
            }
            Ok(())
        }
        (slot @ Value::Object(_), document) if slot.as_object().is_some_and(Map::is_empty) => {
            *slot = document;
            Ok(())
        }
        (slot, document) if *slot == document => Ok(()),
        _ => Err(String::new()),
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), PolicyError> {
    let entries = std::fs::read_dir(dir).map_err(|err| read_error(dir, err.to_string()))?;
    for entry in entries {
        let path = entry.map_err(|err| read_error(dir, err.to_string()))?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e == "json" || e == "yaml" || e == "yml")
        {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn files_are_placed_by_directory_and_merged() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        std::fs::create_dir_all(dir.join("alert/testdata/aws_guardduty")).unwrap();
        std::fs::create_dir_all(dir.join("scenarios")).unwrap();
        std::fs::write(
            dir.join("alert/testdata/aws_guardduty/data.json"),
            r#"{"detail": {"severity": 8}}"#,
        )
        .unwrap();
        std::fs::write(dir.join("alert/testdata/aws_guardduty/more.yaml"), "extra: [1, 2]\n").unwrap();
        std::fs::write(dir.join("top.json"), r#"{"trusted": ["acme"]}"#).unwrap();
        std::fs::write(dir.join("scenarios/s.yaml"), "id: s\nevents: []\n").unwrap();
        std::fs::write(
            dir.join("scenarios/playbook.json"),
            r#"{"scenarios": [{"id": "p", "events": []}]}"#,
        )
        .unwrap();
        let data = load_test_data(dir).unwrap();
        assert_eq!(
            data,
            json!({
                "trusted": ["acme"],
                "alert": {"testdata": {"aws_guardduty": {"detail": {"severity": 8}, "extra": [1, 2]}}},
            })
        );
    }

    #[test]
    fn conflicting_documents_name_both_files() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("a.json"), r#"{"x": {"y": 1}}"#).unwrap();
        std::fs::write(root.path().join("b.json"), r#"{"x": {"y": 2}}"#).unwrap();
        let err = load_test_data(root.path()).unwrap_err().to_string();
        assert!(
            err.contains("b.json") && err.contains("a.json") && err.contains("`x.y`"),
            "{err}"
        );
        std::fs::remove_file(root.path().join("b.json")).unwrap();
        std::fs::write(root.path().join("c.yaml"), "x: [\n").unwrap();
        let err = load_test_data(root.path()).unwrap_err().to_string();
        assert!(err.contains("c.yaml") && err.contains("not YAML"), "{err}");
    }
}
