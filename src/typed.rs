//! Typed views of JSON values whose errors name where the value is wrong.
//!
//! Tracking the path costs on every field, so the plain deserializer goes
//! first; only a value that fails is read again with `serde_path_to_error`.

use serde::de::DeserializeOwned;
use serde::Deserialize as _;
use serde_json::Value;

/// Why a value does not fit `T`: the path (e.g. `updated_alert.severity`)
/// and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedError {
    pub path: String,
    pub reason: String,
}

/// `T` from `value`, or where and why it does not fit.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, TypedError> {
    if let Ok(typed) = T::deserialize(value) {
        return Ok(typed);
    }
    serde_path_to_error::deserialize(value).map_err(|err| TypedError {
        path: err.path().to_string(),
        reason: err.inner().to_string(),
    })
}

/// A field's `null` read as its default, as Go reads it into the zero
/// value: AlertChain's policies write `null` for "none"
/// (`object.get(x, "desc", null)`). With `#[serde(default)]` for a field
/// left out.
pub fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Outer {
        inner: Inner,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        n: u32,
    }

    #[test]
    fn fits_or_names_the_path() {
        let ok: Outer = from_value(&json!({"inner": {"n": 3}})).unwrap();
        assert_eq!(ok, Outer { inner: Inner { n: 3 } });
        let err = from_value::<Outer>(&json!({"inner": {"n": "x"}})).unwrap_err();
        assert_eq!(err.path, "inner.n");
        assert!(err.reason.contains("invalid type"), "{err:?}");
    }
}
