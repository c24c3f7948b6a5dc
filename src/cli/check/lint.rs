//! Static checks of the action policy for `check`: every `run` entry whose
//! shape can be read from the source — written as an object literal in the
//! rule head, or assigned to the head's variable in the body (`res := {...}`
//! then `run contains res`) — goes through the checks a run applies: the
//! entry's fields, a known `uses`, the action's arguments (presence of each,
//! and the values written literally: types, choices, the rules between
//! them), the `commit` specs, and no two different entries under one id.

use std::collections::BTreeMap;
use std::time::Duration;

use regorus::unstable::{Expr, Literal, Ref, Rule, RuleHead, Span};
use serde_json::{Map, Value};

use crate::action::{Known, Registry};
use crate::policy::{in_regorus_syntax, new_engine, parse_commit_path, with_escape_functions, PolicyError, PolicyFile};

/// One problem, at a place in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub line: u32,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// The fields of a `run` entry.
const ENTRY_FIELDS: &[&str] = &["id", "name", "uses", "args", "force", "abort", "commit"];
/// The fields of a commit spec.
const COMMIT_FIELDS: &[&str] = &["key", "path", "value", "id", "type", "persist", "ttl", "op"];

type Fields = [(Span, Ref<Expr>, Ref<Expr>)];

/// Checks every `run` entry of `package action` whose shape is in the source.
/// `has_state`: the deployment has a state table, which actions that
/// suspend the workflow (`approval.request`, `wait`) need.
pub fn check_run_entries(
    files: Vec<PolicyFile>,
    registry: &Registry,
    has_state: bool,
) -> Result<Vec<Finding>, PolicyError> {
    let mut engine = new_engine(Duration::from_secs(5));
    for file in with_escape_functions(in_regorus_syntax(files)?) {
        engine
            .add_policy(file.name, file.text)
            .map_err(|err| PolicyError::Compile(err.to_string()))?;
    }
    let mut findings = Vec::new();
    let mut ids: BTreeMap<String, Vec<(String, u32, String)>> = BTreeMap::new();
    for module in engine.get_modules() {
        if module.package.refr.span().text() != "action" {
            continue;
        }
        for rule in &module.policy {
            for (span, fields) in entry_literals(rule) {
                let place = |message: String| Finding {
                    file: span.source.file().to_string(),
                    line: span.line,
                    message,
                };
                if let Some(id) = field(fields, "id")
                    .and_then(|v| literal(&v))
                    .and_then(|v| v.as_str().map(str::to_string))
                {
                    ids.entry(id).or_default().push((
                        span.source.file().to_string(),
                        span.line,
                        span.text().split_whitespace().collect::<Vec<_>>().join(" "),
                    ));
                }
                findings.extend(check_entry(fields, registry, has_state).into_iter().map(place));
            }
        }
    }
    findings.extend(shared_ids(&ids));
    findings.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    findings.dedup();
    Ok(findings)
}

/// The object literals a `run` rule adds: its head's, or the one assigned
/// to its head's variable in a body.
fn entry_literals(rule: &Rule) -> Vec<(&Span, &Fields)> {
    let Rule::Spec {
        head: RuleHead::Set {
            refr, key: Some(key), ..
        },
        bodies,
        ..
    } = rule
    else {
        return Vec::new();
    };
    if refr.span().text() != "run" {
        return Vec::new();
    }
    match key.as_ref() {
        Expr::Object { span, fields, .. } => vec![(span, fields.as_slice())],
        Expr::Var { span, .. } => {
            let name = span.text();
            bodies
                .iter()
                .flat_map(|body| body.query.stmts.iter())
                .filter_map(|stmt| match &stmt.literal {
                    Literal::Expr { expr, .. } => match expr.as_ref() {
                        Expr::AssignExpr { lhs, rhs, .. } if lhs.span().text() == name => match rhs.as_ref() {
                            Expr::Object { span, fields, .. } => Some((span, fields.as_slice())),
                            _ => None,
                        },
                        _ => None,
                    },
                    _ => None,
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The problems of one entry literal, in words.
fn check_entry(fields: &Fields, registry: &Registry, has_state: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let id = field(fields, "id")
        .and_then(|v| literal(&v))
        .and_then(|v| v.as_str().map(str::to_string));
    let label = id
        .as_ref()
        .map(|id| format!("run entry {id:?}"))
        .unwrap_or_else(|| "run entry".to_string());
    for (_, key, _) in fields {
        if let Some(name) = literal(key).and_then(|k| k.as_str().map(str::to_string)) {
            if !ENTRY_FIELDS.contains(&name.as_str()) {
                problems.push(format!(
                    "{label}: `{name}` is not a field of a run entry: use {}",
                    ENTRY_FIELDS.join(", ")
                ));
            }
        }
    }
    for flag in ["force", "abort"] {
        if let Some(value) = field(fields, flag).and_then(|v| literal(&v)) {
            if !value.is_boolean() {
                problems.push(format!("{label}: `{flag}` must be true or false (got {value})"));
            }
        }
    }
    if let Some(commit) = field(fields, "commit") {
        problems.extend(check_commits(&commit).into_iter().map(|p| format!("{label}: {p}")));
    }
    let Some(uses) = field(fields, "uses") else {
        // Commit-only and abort-only entries (AlertChain's) run no action.
        if field(fields, "commit").is_none() && field(fields, "abort").is_none() {
            problems.push(format!(
                "{label}: no `uses`, `commit` or `abort`: the entry does nothing; name the action to run, e.g. \"uses\": \"http.fetch\""
            ));
        }
        return problems;
    };
    let Some(uses) = literal(&uses).and_then(|v| v.as_str().map(str::to_string)) else {
        return problems; // computed: checked when `check` evaluates the policy
    };
    if !has_state && registry.get(&uses).is_some_and(|action| action.suspends()) {
        problems.push(format!(
            "{label}: {uses} suspends the workflow until its result comes, which needs a state table: set STATE_TABLE (or pass --table) as the deployment does"
        ));
    }
    let args = field(fields, "args");
    let arg_fields = match args.as_deref() {
        None => Some(Vec::new()),
        Some(Expr::Object { fields, .. }) => Some(fields.clone()),
        Some(_) => None,
    };
    let values: Vec<(String, Option<Value>)> = arg_fields
        .iter()
        .flatten()
        .filter_map(|(_, key, value)| {
            let name = literal(key)?.as_str()?.to_string();
            Some((name, literal(value)))
        })
        .collect();
    let known: BTreeMap<&str, Known<'_>> = values
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_ref().map_or(Known::Computed, Known::Value)))
        .collect();
    match registry.check(id.as_deref().unwrap_or_default(), &uses, &known) {
        Err(_) => {
            let known: Vec<&str> = registry.names().collect();
            problems.push(format!(
                "{label}: unknown action {uses:?}: use one of {}",
                known.join(", ")
            ));
        }
        Ok(_) if arg_fields.is_none() => {} // computed args: checked when evaluated
        Ok((_, arg_problems)) => {
            problems.extend(arg_problems.into_iter().map(|p| format!("{label} ({uses}): {p}")));
        }
    }
    problems
}

/// The commit specs written literally: fields, key, `path` JSONPath,
/// `op`, `ttl`, and `path` or `value`.
fn check_commits(commit: &Expr) -> Vec<String> {
    let Expr::Array { items, .. } = commit else {
        return match literal(commit) {
            Some(value) if !value.is_array() => {
                vec![format!("`commit` must be an array of commit specs (got {value})")]
            }
            _ => Vec::new(),
        };
    };
    let mut problems = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Expr::Object { fields, .. } = item.as_ref() else {
            continue;
        };
        let at = |problem: String| format!("commit[{index}]: {problem}");
        let get = |name: &str| field(fields, name);
        for (_, key, _) in fields {
            if let Some(name) = literal(key).and_then(|k| k.as_str().map(str::to_string)) {
                if !COMMIT_FIELDS.contains(&name.as_str()) {
                    problems.push(at(format!(
                        "`{name}` is not a field of a commit: use {}",
                        COMMIT_FIELDS.join(", ")
                    )));
                }
            }
        }
        if get("key").is_none() {
            problems.push(at("no `key`: name the attribute to write".to_string()));
        }
        if get("path").is_none() && get("value").is_none() {
            problems.push(at("needs `path` (JSONPath into the result) or `value`".to_string()));
        }
        if let Some(Value::String(path)) = get("path").and_then(|p| literal(&p)) {
            if let Err(err) = parse_commit_path(&path) {
                problems.push(at(format!(
                    "`path` {path:?} is not JSONPath ({err}): e.g. \"$.body.country\" (or \"body.country\", from the root)"
                )));
            }
        }
        if let Some(op) = get("op").and_then(|p| literal(&p)) {
            if op != "set" && op != "add" {
                problems.push(at(format!("`op` {op} is not set or add")));
            }
        }
        if let Some(ttl) = get("ttl").and_then(|p| literal(&p)) {
            if ttl.as_u64().is_none() {
                problems.push(at(format!(
                    "`ttl` must be a whole number of seconds (got {ttl}), e.g. 3600"
                )));
            }
        }
        if let Some(persist) = get("persist").and_then(|p| literal(&p)) {
            if !persist.is_boolean() {
                problems.push(at(format!("`persist` must be true or false (got {persist})")));
            }
        }
    }
    problems
}

/// Literal entries that share an id but differ: at run time, both in one
/// round are a policy error.
fn shared_ids(ids: &BTreeMap<String, Vec<(String, u32, String)>>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (id, entries) in ids {
        let Some((first_file, first_line, first_text)) = entries.first() else {
            continue;
        };
        for (file, line, text) in &entries[1..] {
            if text != first_text {
                findings.push(Finding {
                    file: file.clone(),
                    line: *line,
                    message: format!(
                        "run entry {id:?} differs from the entry with the same id at {first_file}:{first_line}: give each its own id"
                    ),
                });
            }
        }
    }
    findings
}

fn field(fields: &Fields, name: &str) -> Option<Ref<Expr>> {
    fields
        .iter()
        .find(|(_, key, _)| literal(key).is_some_and(|k| k == name))
        .map(|(_, _, value)| value.clone())
}

/// The JSON of an expression written literally (scalars, and arrays and
/// objects of literals); `None` for anything computed.
fn literal(expr: &Expr) -> Option<Value> {
    match expr {
        Expr::String { value, .. }
        | Expr::RawString { value, .. }
        | Expr::Number { value, .. }
        | Expr::Bool { value, .. } => serde_json::to_value(value).ok(),
        Expr::Null { .. } => Some(Value::Null),
        Expr::Array { items, .. } => items
            .iter()
            .map(|item| literal(item))
            .collect::<Option<Vec<_>>>()
            .map(Value::Array),
        Expr::Object { fields, .. } => fields
            .iter()
            .map(|(_, key, value)| Some((literal(key)?.as_str()?.to_string(), literal(value)?)))
            .collect::<Option<Map<String, Value>>>()
            .map(Value::Object),
        _ => None,
    }
}

#[cfg(test)]
#[path = "lint_tests.rs"]
mod tests;
