//! One element of the action policy's `run` set.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::PolicyError;
use super::value::typed_element;
use crate::model::CommitOp;
use crate::typed::TypedError;

/// The action policy's rule, as a path.
pub const ACTION_RULE: &str = "data.action.run";

/// An action the policy asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// Unique per alert: an id runs at most once.
    pub id: String,
    /// The executor, `<service>.<verb>`.
    pub uses: String,
    #[serde(default)]
    pub args: Map<String, Value>,
    /// Continue the workflow even if this action fails.
    #[serde(default)]
    pub force: bool,
    /// Stop the workflow after this round.
    #[serde(default)]
    pub abort: bool,
    /// Attributes written from the result when the action succeeds.
    #[serde(default)]
    pub commit: Vec<CommitSpec>,
}

/// Writes one alert attribute from an action's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitSpec {
    pub key: String,
    /// RFC 9535 JSONPath into the result, e.g. `$.body.country`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A literal value, used when `path` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub persist: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    /// `set` (default) replaces the value; `add` adds a number to a counter,
    /// atomically when persisted, so concurrent alerts never lose an update.
    #[serde(default)]
    pub op: CommitOp,
    /// `path`, parsed when the request was validated.
    #[serde(skip)]
    pub parsed_path: Option<serde_json_path::JsonPath>,
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
                Some(id) => format!("entry {id:?}"),
                None => format!("element {index}"),
            };
            PolicyError::Output {
                rule: ACTION_RULE.to_string(),
                reason: format!("{label}: {reason}"),
            }
        };
        let mut request = parsed.map_err(|err| fail(format!("at `{}`: {}", err.path, err.reason)))?;
        if request.id.trim().is_empty() {
            return Err(fail("`id` is empty".to_string()));
        }
        if request.uses.trim().is_empty() {
            return Err(fail("`uses` is empty".to_string()));
        }
        for (i, commit) in request.commit.iter_mut().enumerate() {
            if commit.op == CommitOp::Add && commit.value.as_ref().is_some_and(|v| !v.is_number()) {
                return Err(fail(format!("commit[{i}]: `op: add` needs a number `value`")));
            }
            match (&commit.path, &commit.value) {
                (Some(path), _) => {
                    let parsed = serde_json_path::JsonPath::parse(path)
                        .map_err(|err| fail(format!("commit[{i}].path {path:?} is not JSONPath: {err}")))?;
                    commit.parsed_path = Some(parsed);
                }
                (None, Some(_)) => {}
                (None, None) => return Err(fail(format!("commit[{i}] needs `path` or `value`"))),
            }
        }
        Ok(request)
    }
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
    fn missing_fields_name_the_entry() {
        let err = parse(3, &json!({"id": "x"})).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("data.action.run") && message.contains("entry \"x\""),
            "{message}"
        );
        assert!(message.contains("missing field `uses`"), "{message}");

        let err = parse(3, &json!({"uses": "http.fetch"})).unwrap_err();
        assert!(err.to_string().contains("element 3"), "{err}");
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
