//! What a succeeded action's `commit` writes: alert attributes from its
//! result, and the state-table writes of those marked `persist`.

use serde_json::{json, Value};

use crate::model::{derived_attr_id, Alert, Commit, CommitOp};
use crate::policy::commit_path_selects_a_list;
use crate::policy::{ActionRequest, CommitSpec};
use crate::state::{persist_ttl, PersistOp, PersistWrite};

/// Writes a committed attribute into the alert: it replaces the attribute
/// with its id, else it is added; an `add` adds its value (the delta) to
/// the current one.
pub(super) fn apply_commit(alert: &mut Alert, commit: &Commit) {
    let mut attr = commit.attr();
    if commit.op == CommitOp::Add {
        let current = alert
            .attrs
            .iter()
            .find(|a| a.id == attr.id)
            .and_then(|a| a.value.as_f64())
            .unwrap_or(0.0);
        let total = current + attr.value.as_f64().unwrap_or(0.0);
        attr.value = if total.fract() == 0.0 {
            json!(total as i64)
        } else {
            json!(total)
        };
    }
    alert.upsert_attr(attr);
}

/// The commits of an action, against its result. A path that selects
/// nothing falls back to the commit's `value`, else writes nothing (logged);
/// several nodes are written as an array. Each commit gets its attribute's
/// id here, so a replayed record writes the same attributes: the one the
/// policy named; for a counter (`add`), its key; else one derived from the
/// alert, the action and the commit's place.
pub(super) fn commits(request: &ActionRequest, result: &Value, alert: &Alert) -> Vec<Commit> {
    request
        .commit
        .iter()
        .enumerate()
        .filter_map(|(index, spec)| {
            let value = committed_value(spec, result);
            if value.is_none() {
                tracing::warn!(alert_id = %alert.id, action_id = %request.id, key = %spec.key, path = spec.path.as_deref().unwrap_or("-"), "commit path matched nothing and the commit has no value; attribute not written");
            }
            let id = match (&spec.id, spec.op) {
                (Some(id), _) if !id.is_empty() => id.clone(),
                (_, CommitOp::Add) => spec.key.clone(),
                _ => derived_attr_id(&format!("{}/{}/commit/{index}", alert.id, request.id)),
            };
            Some(Commit {
                id: Some(id),
                key: spec.key.clone(),
                value: value?,
                kind: spec.kind.clone(),
                persist: spec.persist,
                ttl: spec.ttl,
                op: spec.op,
                path: spec.path.clone(),
            })
        })
        .collect()
}

/// The state-table writes of an action's `persist: true` commits.
pub(super) fn persist_writes(alert: &Alert, commits: &[Commit]) -> Vec<PersistWrite> {
    if alert.namespace.is_empty() {
        return Vec::new();
    }
    commits
        .iter()
        .filter(|commit| commit.persist)
        .map(|commit| PersistWrite {
            namespace: alert.namespace.clone(),
            id: commit.id.clone().unwrap_or_else(|| commit.key.clone()),
            key: commit.key.clone(),
            kind: commit.kind.clone(),
            op: match commit.op {
                CommitOp::Add => PersistOp::Add(commit.value.as_f64().unwrap_or(0.0)),
                CommitOp::Set => PersistOp::Set(commit.value.clone()),
            },
            ttl: persist_ttl(commit.ttl),
        })
        .collect()
}

fn committed_value(spec: &CommitSpec, result: &Value) -> Option<Value> {
    let Some(path) = &spec.path else {
        return spec.value.clone();
    };
    // Paths were validated (and parsed) when the request was parsed; a
    // request read back from the state table (a resumed workflow) parses
    // its path again, by the same rule (`$` optional).
    let parsed;
    let path = match &spec.parsed_path {
        Some(path) => path.as_ref(),
        None => {
            parsed = crate::policy::parse_commit_path(path).ok()?;
            &parsed
        }
    };
    let nodes = path.query(result).all();
    // A path that can select several nodes always gives a list, however
    // many it selects, as AlertChain's JSONPath does: a policy reading
    // `count(v)` or `v[_]` sees one shape.
    if commit_path_selects_a_list(spec.path.as_deref().unwrap_or_default()) {
        return Some(Value::Array(nodes.into_iter().cloned().collect()));
    }
    match nodes.len() {
        0 => spec.value.clone(),
        1 => Some(nodes[0].clone()),
        _ => Some(Value::Array(nodes.into_iter().cloned().collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commit as a resumed workflow reads it back from the state table:
    /// serialized, so without its parsed path.
    fn stored(spec: Value) -> CommitSpec {
        let spec: CommitSpec = serde_json::from_value(spec).unwrap();
        assert!(spec.parsed_path.is_none());
        spec
    }

    #[test]
    fn a_stored_commit_path_reads_with_or_without_its_dollar() {
        let result = json!({"answer": "approve", "body": {"org": "ACME"}, "ips": ["a", "b"]});
        let cases = [
            ("answer", json!("approve")),
            ("body.org", json!("ACME")),
            ("$.body.org", json!("ACME")),
            ("['answer']", json!("approve")),
            ("ips[*]", json!(["a", "b"])),
        ];
        for (path, want) in cases {
            let spec = stored(json!({"key": "k", "path": path}));
            assert_eq!(committed_value(&spec, &result), Some(want), "path {path:?}");
        }
        let fallback = stored(json!({"key": "k", "path": "missing", "value": 1}));
        assert_eq!(committed_value(&fallback, &result), Some(json!(1)));
    }

    /// A path that can select several nodes gives a list even of one node,
    /// or of none (AlertChain's JSONPath); a path of names and indexes
    /// gives the node itself.
    #[test]
    fn a_path_that_can_select_several_nodes_always_gives_a_list() {
        let result = json!({
            "results": [{"engine": "a", "malicious": true}, {"engine": "b", "malicious": false}],
            "ips": ["x"],
            "odd.key": {"a,b": 1, "c*": 2},
        });
        let cases = [
            ("$.results[?(@.malicious == true)].engine", json!(["a"])),
            ("results[?(@.malicious == 'none')].engine", json!([])),
            ("ips[*]", json!(["x"])),
            ("$..engine", json!(["a", "b"])),
            ("results[0:1].engine", json!(["a"])),
            ("results[0,1].engine", json!(["a", "b"])),
            ("results[0].engine", json!("a")),
            // AlertChain's form of a descendant path: `$..engine`.
            (".engine", json!(["a", "b"])),
            ("results[-1].engine", json!("b")),
            ("$['odd.key']['a,b']", json!(1)),
            ("$[\"odd.key\"][\"c*\"]", json!(2)),
        ];
        for (path, want) in cases {
            let spec = stored(json!({"key": "k", "path": path, "value": "fallback"}));
            assert_eq!(committed_value(&spec, &result), Some(want), "path {path:?}");
        }
    }
}
