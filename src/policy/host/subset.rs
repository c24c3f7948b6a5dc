//! OPA's `object.subset`, in place of regorus's, which panicked on an
//! empty array (`object.subset(["a"], [])`, or one under a shared key): a
//! release build aborts on a panic.
//!
//! Objects: every key of `sub` in `super`, with an equal value or, both
//! being objects, sets or arrays, a subset of it. Sets: every element in.
//! Arrays: `sub` appears in `super` contiguously. An array and a set: the
//! array holds as many of the set's elements as the set has (OPA counts a
//! repeated element again, and an empty array holds no empty set).

use regorus::Value;

pub(super) fn object_subset(args: &[Value]) -> anyhow::Result<Value> {
    let (Some(sup), Some(sub)) = (args.first(), args.get(1)) else {
        anyhow::bail!("object.subset: two arguments");
    };
    subset(sup, sub)
        .map(Value::from)
        .ok_or_else(|| anyhow::anyhow!("object.subset: both arguments must be of the same type or array and set"))
}

fn subset(sup: &Value, sub: &Value) -> Option<bool> {
    Some(match (sup, sub) {
        (Value::Object(sup), Value::Object(sub)) => sub.iter().all(|(key, value)| {
            sup.iter()
                .find(|(k, _)| *k == key)
                .is_some_and(|(_, held)| held == value || nested_subset(held, value))
        }),
        (Value::Set(sup), Value::Set(sub)) => sub.iter().all(|item| sup.iter().any(|held| held == item)),
        (Value::Array(sup), Value::Array(sub)) => {
            let (sup, sub): (Vec<&Value>, Vec<&Value>) = (sup.iter().collect(), sub.iter().collect());
            sub.is_empty() || sup.windows(sub.len()).any(|window| window == sub.as_slice())
        }
        (Value::Array(sup), Value::Set(sub)) => {
            let mut unmatched = sub.len();
            sup.iter().any(|item| {
                if sub.iter().any(|wanted| wanted == item) {
                    unmatched = unmatched.saturating_sub(1);
                }
                unmatched == 0
            })
        }
        _ => return None,
    })
}

/// A shared key's values: a subset when both are objects, sets or arrays.
fn nested_subset(held: &Value, value: &Value) -> bool {
    matches!(
        (held, value),
        (Value::Object(_), Value::Object(_)) | (Value::Set(_), Value::Set(_)) | (Value::Array(_), Value::Array(_))
    ) && subset(held, value) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn of(sup: serde_json::Value, sub: serde_json::Value) -> bool {
        object_subset(&[Value::from(sup), Value::from(sub)]).unwrap() == Value::from(true)
    }

    #[test]
    fn an_empty_array_is_a_subset_and_nothing_panics() {
        assert!(of(json!(["a"]), json!([])));
        assert!(of(json!({"t": ["a"]}), json!({"t": []})));
        assert!(of(json!([1, 2, 3, 4]), json!([2, 3])));
        assert!(!of(json!([1, 2, 3, 4]), json!([2, 4])));
        assert!(of(
            json!({"a": 1, "c": {"x": [1, 2, 3], "y": 2}}),
            json!({"c": {"x": [2, 3]}})
        ));
        assert!(!of(json!({"a": 1}), json!({"a": 2})));
        assert!(object_subset(&[Value::from(json!([1])), Value::from(json!({"a": 1}))]).is_err());
    }
}
