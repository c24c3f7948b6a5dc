//! What a succeeded action's `commit` writes: alert attributes from its
//! result, and the state-table writes of those marked `persist`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::model::{Alert, Commit, CommitOp};
use crate::policy::{ActionRequest, CommitSpec};
use crate::state::{PersistOp, PersistWrite, DEFAULT_PERSIST_TTL};

/// Writes a committed attribute into the alert; an `add` adds its value
/// (the delta) to the current one.
pub(super) fn apply_commit(alert: &mut Alert, commit: &Commit) {
    let mut attr = commit.attr();
    if commit.op == CommitOp::Add {
        let current = alert
            .attrs
            .iter()
            .find(|a| a.key == attr.key)
            .and_then(|a| a.value.as_f64())
            .unwrap_or(0.0);
        let total = current + attr.value.as_f64().unwrap_or(0.0);
        attr.value = if total.fract() == 0.0 {
            json!(total as i64)
        } else {
            json!(total)
        };
    }
    alert.set_attr(attr);
}

/// The commits of a succeeded action. A path that selects nothing writes
/// nothing (logged); several nodes are written as an array.
pub(super) fn commits(request: &ActionRequest, result: &Value, alert: &Alert) -> Vec<Commit> {
    request
        .commit
        .iter()
        .filter_map(|spec| {
            let value = committed_value(spec, result);
            if value.is_none() {
                tracing::warn!(alert_id = %alert.id, action_id = %request.id, key = %spec.key, path = spec.path.as_deref().unwrap_or("-"), "commit path matched nothing; attribute not written");
            }
            Some(Commit {
                id: spec.id.clone(),
                key: spec.key.clone(),
                value: value?,
                kind: spec.kind.clone(),
                persist: spec.persist,
                ttl: spec.ttl,
                op: spec.op,
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
            key: commit.key.clone(),
            op: match commit.op {
                CommitOp::Add => PersistOp::Add(commit.value.as_f64().unwrap_or(0.0)),
                CommitOp::Set => PersistOp::Set(commit.value.clone()),
            },
            ttl: Duration::from_secs(commit.ttl.unwrap_or(DEFAULT_PERSIST_TTL)),
        })
        .collect()
}

fn committed_value(spec: &CommitSpec, result: &Value) -> Option<Value> {
    let Some(path) = &spec.path else {
        return spec.value.clone();
    };
    // Paths were validated (and parsed) when the request was parsed.
    let parsed;
    let path = match &spec.parsed_path {
        Some(path) => path,
        None => {
            parsed = serde_json_path::JsonPath::parse(path).ok()?;
            &parsed
        }
    };
    let nodes = path.query(result).all();
    match nodes.len() {
        0 => None,
        1 => Some(nodes[0].clone()),
        _ => Some(Value::Array(nodes.into_iter().cloned().collect())),
    }
}
