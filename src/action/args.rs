//! Declared action arguments and their checks: a request is validated
//! against its action's declaration before anything runs, and `check` uses
//! the same declarations offline.

use serde_json::Value;

/// The type an argument must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    String,
    Number,
    Bool,
    /// An object whose values are strings (headers, message attributes).
    StringMap,
    /// An array of strings (labels, tags).
    StringList,
    /// Any JSON value.
    Any,
    /// A literal string, or a Secrets Manager reference
    /// `{"secret": "<name or ARN>", "key": "<JSON field>"}` resolved at run time.
    Secret,
}

impl ArgKind {
    pub(super) fn accepts(self, value: &Value) -> bool {
        match self {
            ArgKind::String => value.is_string(),
            ArgKind::Number => value.is_number(),
            ArgKind::Bool => value.is_boolean(),
            ArgKind::StringMap => value.as_object().is_some_and(|m| m.values().all(Value::is_string)),
            ArgKind::StringList => value.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            ArgKind::Any => true,
            ArgKind::Secret => value.is_string() || crate::secrets::SecretRef::parse(value).is_ok(),
        }
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            ArgKind::String => "a string",
            ArgKind::Number => "a number",
            ArgKind::Bool => "a boolean",
            ArgKind::StringMap => "an object of strings",
            ArgKind::StringList => "an array of strings",
            ArgKind::Any => "any JSON value",
            ArgKind::Secret => "a string or {\"secret\": \"<name or ARN>\", \"key\": \"<field>\"}",
        }
    }
}

/// One declared argument of an action.
#[derive(Debug, Clone, Copy)]
pub struct ArgSpec {
    pub name: &'static str,
    pub kind: ArgKind,
    pub required: bool,
    pub doc: &'static str,
}

impl ArgSpec {
    pub const fn required(name: &'static str, kind: ArgKind, doc: &'static str) -> ArgSpec {
        ArgSpec {
            name,
            kind,
            required: true,
            doc,
        }
    }
    pub const fn optional(name: &'static str, kind: ArgKind, doc: &'static str) -> ArgSpec {
        ArgSpec {
            name,
            kind,
            required: false,
            doc,
        }
    }
}
