//! One element of the action policy's `run` set.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{PolicyError, ACTION_RULE};
use crate::typed::TypedError;

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// `path`, parsed when the request was validated.
    #[serde(skip)]
    pub parsed_path: Option<serde_json_path::JsonPath>,
}

impl ActionRequest {
    /// Parses and checks one `run` element; errors name the element and field.
    pub fn from_policy_value(index: usize, value: &Value) -> Result<ActionRequest, PolicyError> {
        let id = value.get("id").and_then(Value::as_str);
        Self::validated(index, id, crate::typed::from_value(value))
    }

    /// [`ActionRequest::from_policy_value`] of an element as the policy made it.
    pub(crate) fn from_policy_element(index: usize, element: &regorus::Value) -> Result<ActionRequest, PolicyError> {
        let id = match &element["id"] {
            regorus::Value::String(id) => Some(id.as_ref()),
            _ => None,
        };
        Self::validated(index, id, super::typed_element(element))
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
            match commit.op.as_deref() {
                None | Some("set") => {}
                Some("add") if commit.value.as_ref().is_some_and(|v| !v.is_number()) => {
                    return Err(fail(format!("commit[{i}]: `op: add` needs a number `value`")))
                }
                Some("add") => {}
                Some(other) => return Err(fail(format!("commit[{i}].op {other:?} is not `set` or `add`"))),
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

    #[test]
    fn missing_fields_name_the_entry() {
        let err = ActionRequest::from_policy_value(3, &json!({"id": "x"})).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("data.action.run") && message.contains("entry \"x\""),
            "{message}"
        );
        assert!(message.contains("missing field `uses`"), "{message}");

        let err = ActionRequest::from_policy_value(3, &json!({"uses": "http.fetch"})).unwrap_err();
        assert!(err.to_string().contains("element 3"), "{err}");
    }

    #[test]
    fn commit_needs_valid_path_or_value() {
        let bad = json!({"id": "x", "uses": "u", "commit": [{"key": "k", "path": "$.["}]});
        assert!(ActionRequest::from_policy_value(0, &bad)
            .unwrap_err()
            .to_string()
            .contains("commit[0].path"));
        let bad = json!({"id": "x", "uses": "u", "commit": [{"key": "k"}]});
        assert!(ActionRequest::from_policy_value(0, &bad)
            .unwrap_err()
            .to_string()
            .contains("needs `path` or `value`"));
        let good =
            json!({"id": "x", "uses": "u", "commit": [{"key": "k", "path": "$.body.a"}, {"key": "v", "value": 1}]});
        assert_eq!(ActionRequest::from_policy_value(0, &good).unwrap().commit.len(), 2);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let bad = json!({"id": "x", "uses": "u", "forse": true});
        assert!(ActionRequest::from_policy_value(0, &bad)
            .unwrap_err()
            .to_string()
            .contains("forse"));
    }
}
