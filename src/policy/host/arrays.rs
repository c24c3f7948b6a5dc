//! OPA's `array.flatten` (OPA v1.x), which regorus lacks: the array with
//! each element that is an array replaced by its elements, one level deep
//! (`[1, [2, [3]]]` is `[1, 2, [3]]`). Not an array: undefined.

use regorus::Value;

pub(super) fn flatten(args: &[Value]) -> Option<Value> {
    let Value::Array(items) = args.first()? else {
        return None;
    };
    let mut flat = Vec::with_capacity(items.len());
    for item in items.iter() {
        match item {
            Value::Array(inner) => flat.extend(inner.iter().cloned()),
            other => flat.push(other.clone()),
        }
    }
    Some(Value::from(flat))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(json: &str) -> Value {
        Value::from_json_str(json).unwrap()
    }

    #[test]
    fn one_level_is_flattened_and_other_elements_kept() {
        assert_eq!(
            flatten(&[value(r#"[1, [2, [3]], "a", [], {"k": [4]}]"#)]),
            Some(value(r#"[1, 2, [3], "a", {"k": [4]}]"#))
        );
        assert_eq!(flatten(&[value("[]")]), Some(value("[]")));
        assert_eq!(flatten(&[value(r#"{"a": [1]}"#)]), None);
        assert_eq!(flatten(&[]), None);
    }
}
