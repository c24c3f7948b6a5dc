//! One element of the action policy's `run` set.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::PolicyError;
use super::value::typed_element;
use crate::model::ids::id_too_long;
use crate::model::CommitOp;
use crate::typed::TypedError;

/// The action policy's rule, as a path.
pub const ACTION_RULE: &str = "data.action.run";

/// An action the policy asks for. AlertChain's forms are accepted too: an
/// entry without `id` (one is derived from its content; the workflow adds
/// the round, so it runs again in a later round as AlertChain's does), and
/// without `uses` — commit-only (its commits' values are written) or
/// abort-only (nothing runs, the workflow stops after the round).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// Unique per alert: an id runs at most once.
    #[serde(default, deserialize_with = "crate::typed::null_as_default")]
    pub id: String,
    /// The executor, `<service>.<verb>`; empty for commit-only and
    /// abort-only entries.
    #[serde(default, deserialize_with = "crate::typed::null_as_default")]
    pub uses: String,
    /// A label, shown in `input.called` (AlertChain's `name`).
    #[serde(
        default,
        deserialize_with = "crate::typed::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    #[serde(default, deserialize_with = "crate::typed::null_as_default")]
    pub args: Map<String, Value>,
    /// Continue the workflow even if this action fails.
    #[serde(default, deserialize_with = "crate::typed::null_as_default")]
    pub force: bool,
    /// Stop the workflow after this round.
    #[serde(default, deserialize_with = "crate::typed::null_as_default")]
    pub abort: bool,
    /// Attributes written from the result when the action succeeds.
    #[serde(default, deserialize_with = "crate::typed::null_as_default")]
    pub commit: Vec<CommitSpec>,
    /// The policy gave no `id`: `id` was derived from the entry's content.
    #[serde(skip)]
    pub derived_id: bool,
}

/// Writes one alert attribute from an action's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitSpec {
    pub key: String,
    /// RFC 9535 JSONPath into the result, e.g. `$.body.country`; a path
    /// without the `$` (`body.country`, AlertChain's form) is from the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A literal value: used when `path` is absent, or selects nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "crate::typed::null_as_default")]
    pub persist: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    /// `set` (default) replaces the value; `add` adds a number to a counter,
    /// atomically when persisted, so concurrent alerts never lose an update.
    #[serde(default, deserialize_with = "crate::typed::null_as_default")]
    pub op: CommitOp,
    /// `path`, parsed when the request was validated.
    #[serde(skip)]
    pub parsed_path: Option<Arc<serde_json_path::JsonPath>>,
}

impl ActionRequest {
    /// Parses and checks one `run` element as the policy made it; errors
    /// name the element and field.
    pub(crate) fn from_policy_element(index: usize, element: &regorus::Value) -> Result<ActionRequest, PolicyError> {
        let id = match &element["id"] {
            regorus::Value::String(id) => Some(id.as_ref()),
            _ => None,
        };
        Self::validated(index, id, typed_element(element))
    }

    fn validated(
        index: usize,
        id: Option<&str>,
        parsed: Result<ActionRequest, TypedError>,
    ) -> Result<ActionRequest, PolicyError> {
        let fail = |reason: String| {
            let label = match id {
                Some(id) if id.chars().count() > 64 => format!("entry {:?}…", id.chars().take(64).collect::<String>()),
                Some(id) => format!("entry {id:?}"),
                None => format!("element {index}"),
            };
            PolicyError::Output {
                rule: ACTION_RULE.to_string(),
                reason: format!("{label}: {reason}"),
            }
        };
        let mut request = parsed.map_err(|err| fail(format!("at `{}`: {}", err.path, err.reason)))?;
        if request.uses.trim().is_empty() && request.commit.is_empty() && !request.abort {
            return Err(fail(
                "no `uses`, `commit` or `abort`: the entry does nothing (name the action in `uses`)".to_string(),
            ));
        }
        // A counter without an id is stored under its key.
        let overlong = id_too_long(&request.id)
            .map(|reason| format!("`id` {reason}"))
            .or_else(|| {
                request.commit.iter().enumerate().find_map(|(i, commit)| {
                    let id = commit.id.as_deref().unwrap_or_default();
                    match (id, commit.op) {
                        ("", CommitOp::Add) => {
                            id_too_long(&commit.key).map(|reason| format!("`commit[{i}].key` {reason}"))
                        }
                        _ => id_too_long(id).map(|reason| format!("`commit[{i}].id` {reason}")),
                    }
                })
            });
        if let Some(reason) = overlong {
            return Err(fail(reason));
        }
        for (i, commit) in request.commit.iter_mut().enumerate() {
            if commit.op == CommitOp::Add && commit.value.as_ref().is_some_and(|v| !v.is_number()) {
                return Err(fail(format!("commit[{i}]: `op: add` needs a number `value`")));
            }
            match (&commit.path, &commit.value) {
                (Some(path), _) => {
                    let parsed = parsed_commit_path(path)
                        .map_err(|err| fail(format!("commit[{i}].path {path:?} is not JSONPath: {err}")))?;
                    if commit.op == CommitOp::Add && commit_path_selects_a_list(path) {
                        return Err(fail(format!(
                            "commit[{i}]: `op: add` adds one number, and path {path:?} selects a list (a wildcard, `..`, a filter, a slice or a union)"
                        )));
                    }
                    commit.parsed_path = Some(parsed);
                }
                (None, Some(_)) => {}
                (None, None) => return Err(fail(format!("commit[{i}] needs `path` or `value`"))),
            }
        }
        if request.id.trim().is_empty() {
            request.id = derived_entry_id(&request);
            request.derived_id = true;
        }
        Ok(request)
    }

    /// Whether the entry names an action to run (not commit- or abort-only).
    pub fn runs_an_action(&self) -> bool {
        !self.uses.trim().is_empty()
    }

    /// The id of an entry without one in round `seq`: its content's, and the
    /// round's, so the same entry in a later round is a new run (AlertChain
    /// runs an id-less entry every round it appears) while a retried
    /// invocation derives the same id and replays it.
    pub fn with_round(mut self, seq: u32) -> ActionRequest {
        if self.derived_id {
            self.id = format!("{}-r{seq}", self.id);
        }
        self
    }
}

/// Commit paths parsed on this thread, by their text: a policy's paths
/// repeat in every decision (each lookup's `$.body.country`), and parsing
/// one allocates its whole tree. Longer paths are parsed each time.
const PARSED_PATHS_KEPT: usize = 256;
const PARSED_PATH_MAX_BYTES: usize = 256;

thread_local! {
    static PARSED_PATHS: RefCell<HashMap<String, Arc<serde_json_path::JsonPath>>> = RefCell::new(HashMap::new());
}

/// [`parse_commit_path`], a path seen before on this thread not parsed again.
fn parsed_commit_path(path: &str) -> Result<Arc<serde_json_path::JsonPath>, serde_json_path::ParseError> {
    if let Some(parsed) = PARSED_PATHS.with_borrow(|paths| paths.get(path).cloned()) {
        return Ok(parsed);
    }
    let parsed = Arc::new(parse_commit_path(path)?);
    if path.len() > PARSED_PATH_MAX_BYTES {
        return Ok(parsed);
    }
    PARSED_PATHS.with_borrow_mut(|paths| {
        // Bounded: a policy making paths of alert content starts over.
        if paths.len() >= PARSED_PATHS_KEPT {
            paths.clear();
        }
        paths.insert(path.to_string(), Arc::clone(&parsed));
    });
    Ok(parsed)
}

/// A commit path: RFC 9535 JSONPath, or AlertChain's form without the
/// leading `$` (`choices[0].message.content`), read from the root.
pub fn parse_commit_path(path: &str) -> Result<serde_json_path::JsonPath, serde_json_path::ParseError> {
    serde_json_path::JsonPath::parse(&rooted_commit_path(path))
}

/// The commit path with its root: `$` added where AlertChain's form leaves
/// it out.
fn rooted_commit_path(path: &str) -> std::borrow::Cow<'_, str> {
    let trimmed = path.trim();
    if trimmed.starts_with('$') {
        trimmed.into()
    } else if trimmed.starts_with('[') {
        format!("${trimmed}").into()
    } else {
        format!("$.{trimmed}").into()
    }
}

/// Whether a commit path can select more than one node: a wildcard, a
/// descendant segment (`..`, also `.name` without its `$`), a filter, a
/// slice or a union outside quoted names. Such a path always commits a list.
pub fn commit_path_selects_a_list(path: &str) -> bool {
    let mut quote = None;
    let mut escaped = false;
    let mut previous = None;
    for c in rooted_commit_path(path).chars() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(open) if c == open => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '*' | '?' | ':' | ',' => return true,
                '.' if previous == Some('.') => return true,
                _ => {}
            },
        }
        previous = Some(c);
    }
    false
}

/// `entry-` and 12 hex digits of the SHA-256 of the entry's JSON.
fn derived_entry_id(request: &ActionRequest) -> String {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_string(request).unwrap_or_default();
    let digest = Sha256::digest(json.as_bytes());
    format!("entry-{}", &hex::encode(digest)[..12])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Parses as the workflow does: from the value the policy produced.
    fn parse(index: usize, entry: &Value) -> Result<ActionRequest, PolicyError> {
        ActionRequest::from_policy_element(index, &crate::policy::to_policy_value(entry))
    }

    #[test]
    fn an_entry_that_does_nothing_is_named() {
        let err = parse(3, &json!({"id": "x"})).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("data.action.run") && message.contains("entry \"x\""),
            "{message}"
        );
        assert!(message.contains("no `uses`, `commit` or `abort`"), "{message}");
        let err = parse(3, &json!({"force": true})).unwrap_err();
        assert!(err.to_string().contains("element 3"), "{err}");
    }

    /// A counter adds one number: a path that selects a list cannot give it.
    #[test]
    fn an_added_counter_reads_one_node() {
        let entry =
            |path: &str| json!({"id": "c", "uses": "u", "commit": [{"key": "hits", "op": "add", "path": path}]});
        let err = parse(0, &entry("$.data[?(@.type == 'x')].count"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`op: add` adds one number") && err.contains("selects a list"),
            "{err}"
        );
        assert!(parse(0, &entry("$.data[0].count")).is_ok());
        assert!(parse(0, &entry("data[0]['a,b']")).is_ok(), "a comma inside a name");
    }

    /// Ids key the state table: one too long to store is the policy's
    /// error, named with a short form of it, never a retry without end.
    #[test]
    fn an_id_too_long_to_store_is_named() {
        let long = "x".repeat(crate::model::ids::MAX_ID_BYTES + 1);
        let err = parse(0, &json!({"id": long, "uses": "u"})).unwrap_err().to_string();
        assert!(err.contains("`id` is 513 bytes long, over 512"), "{err}");
        assert!(err.len() < 300, "the id is shortened in the message: {err}");
        let err = parse(
            0,
            &json!({"id": "c", "uses": "u", "commit": [{"id": long, "key": "k", "value": 1}]}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`commit[0].id` is 513 bytes long"), "{err}");
        let err = parse(
            0,
            &json!({"id": "c", "uses": "u", "commit": [{"key": long, "op": "add", "value": 1}]}),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`commit[0].key` is 513 bytes long"),
            "a counter is stored under its key: {err}"
        );
        let longest = "x".repeat(crate::model::ids::MAX_ID_BYTES);
        assert!(parse(0, &json!({"id": longest, "uses": "u"})).is_ok());
    }

    /// AlertChain's forms: no id (derived from the content, then the round),
    /// commit-only and abort-only entries, relative commit paths.
    #[test]
    fn alertchain_entry_forms_are_accepted() {
        let entry = parse(0, &json!({"uses": "http.fetch", "args": {"url": "u"}})).unwrap();
        assert!(entry.derived_id && entry.id.starts_with("entry-"), "{}", entry.id);
        let again = parse(5, &json!({"uses": "http.fetch", "args": {"url": "u"}})).unwrap();
        assert_eq!(entry.id, again.id, "the same content, the same id");
        let other = parse(0, &json!({"uses": "http.fetch", "args": {"url": "v"}})).unwrap();
        assert_ne!(entry.id, other.id);
        assert_ne!(entry.clone().with_round(0).id, entry.clone().with_round(1).id);
        let named = parse(0, &json!({"id": "n", "uses": "u"})).unwrap();
        assert_eq!(named.with_round(3).id, "n", "a given id is kept");

        // `null` is "none", as Go reads it: the entry is the one without those fields.
        let nulls = parse(
            0,
            &json!({"id": null, "uses": "http.fetch", "name": null, "args": {"url": "u"}, "force": null,
                    "abort": null, "commit": null}),
        )
        .unwrap();
        assert_eq!(nulls.id, entry.id);
        assert!(!nulls.force && !nulls.abort && nulls.commit.is_empty() && nulls.name.is_empty());
        let commit = parse(
            0,
            &json!({"id": "c", "uses": "u", "commit": [{"key": "k", "value": 1, "persist": null, "op": null}]}),
        )
        .unwrap();
        assert!(!commit.commit[0].persist);
        assert!(parse(0, &json!({"id": "c", "uses": "u", "args": null}))
            .unwrap()
            .args
            .is_empty());

        let commit_only = parse(0, &json!({"commit": [{"key": "k", "value": 1}]})).unwrap();
        assert!(!commit_only.runs_an_action());
        let abort_only = parse(0, &json!({"abort": true})).unwrap();
        assert!(abort_only.abort && !abort_only.runs_an_action());

        let relative = parse(
            0,
            &json!({"id": "x", "uses": "u", "commit": [
                {"key": "a", "path": "choices[0].message.content"},
                {"key": "b", "path": "[0].x"},
            ]}),
        )
        .unwrap();
        let result = json!({"choices": [{"message": {"content": "hi"}}]});
        let found = relative.commit[0].parsed_path.as_ref().unwrap().query(&result).all();
        assert_eq!(found, vec![&json!("hi")]);
        let result = json!([{"x": 1}]);
        let found = relative.commit[1].parsed_path.as_ref().unwrap().query(&result).all();
        assert_eq!(found, vec![&json!(1)]);
    }

    #[test]
    fn a_commit_path_is_parsed_once_per_thread_and_the_kept_ones_are_bounded() {
        let first = parsed_commit_path("$.body.country").unwrap();
        let again = parsed_commit_path("$.body.country").unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let entry = json!({"id": "x", "uses": "u", "commit": [{"key": "k", "path": "$.body.country"}]});
        let request = parse(0, &entry).unwrap();
        assert!(Arc::ptr_eq(request.commit[0].parsed_path.as_ref().unwrap(), &first));
        assert!(parsed_commit_path("$[").is_err(), "a bad path is refused, not kept");
        let long = format!("$.{}", "k".repeat(PARSED_PATH_MAX_BYTES));
        assert!(!Arc::ptr_eq(
            &parsed_commit_path(&long).unwrap(),
            &parsed_commit_path(&long).unwrap()
        ));
        for n in 0..PARSED_PATHS_KEPT + 1 {
            parsed_commit_path(&format!("$.n{n}")).unwrap();
        }
        assert!(PARSED_PATHS.with_borrow(|paths| paths.len()) <= PARSED_PATHS_KEPT);
        let parsed_anew = parsed_commit_path("$.body.country").unwrap();
        assert!(!Arc::ptr_eq(&first, &parsed_anew), "the full cache started over");
        assert_eq!(*first, *parsed_anew);
    }

    #[test]
    fn commit_needs_valid_path_or_value() {
        let bad = json!({"id": "x", "uses": "u", "commit": [{"key": "k", "path": "$.["}]});
        assert!(parse(0, &bad).unwrap_err().to_string().contains("commit[0].path"));
        let bad = json!({"id": "x", "uses": "u", "commit": [{"key": "k"}]});
        assert!(parse(0, &bad)
            .unwrap_err()
            .to_string()
            .contains("needs `path` or `value`"));
        let good =
            json!({"id": "x", "uses": "u", "commit": [{"key": "k", "path": "$.body.a"}, {"key": "v", "value": 1}]});
        assert_eq!(parse(0, &good).unwrap().commit.len(), 2);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let bad = json!({"id": "x", "uses": "u", "forse": true});
        assert!(parse(0, &bad).unwrap_err().to_string().contains("forse"));
    }
}

#[cfg(test)]
mod op_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commit_ops_are_typed_and_unknown_ones_named() {
        let entry = |op: Value| {
            let value = json!({"id": "x", "uses": "u", "commit": [{"key": "n", "value": 1, "op": op}]});
            ActionRequest::from_policy_element(0, &crate::policy::to_policy_value(&value))
        };
        assert_eq!(entry(json!("add")).unwrap().commit[0].op, CommitOp::Add);
        assert_eq!(entry(json!("set")).unwrap().commit[0].op, CommitOp::Set);
        let message = entry(json!("sum")).unwrap_err().to_string();
        assert!(message.contains("commit[0].op") && message.contains("sum"), "{message}");
        // Declaring a type says nothing about how the value is written.
        let typed = json!({"id": "x", "uses": "u", "commit": [{"key": "n", "value": 1, "type": "counter"}]});
        let request = ActionRequest::from_policy_element(0, &crate::policy::to_policy_value(&typed)).unwrap();
        assert_eq!(request.commit[0].op, CommitOp::Set);
    }
}
