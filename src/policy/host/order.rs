//! OPA's order of values, and `sort`, `max` and `min` in place of
//! regorus's: OPA ranks objects before sets (null, booleans, numbers,
//! strings, arrays, objects, sets); regorus ranks sets before objects, so
//! `sort`, `max` and `min` of a collection holding both answered otherwise.
//! (Rego's comparison operators and set iteration keep regorus's order: the
//! VM computes them itself.)

use std::cmp::Ordering;

use regorus::Value;

/// OPA's rank of a value's kind: null, booleans, numbers, strings, arrays,
/// objects, sets.
fn rank(value: &Value) -> u8 {
    match value {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
        Value::Set(_) => 6,
        Value::Undefined => 7,
    }
}

/// OPA's order of values (`ast.Compare`): by kind, then by value; arrays,
/// objects (sorted entries) and sets (sorted elements) element by element,
/// then by length. Within a kind it is regorus's, but for what they hold.
fn opa_order(a: &Value, b: &Value) -> Ordering {
    if !holds_set(a) || !holds_set(b) {
        // No object against a set inside: regorus's order is OPA's, but
        // for the two values' own kinds.
        if rank(a) != rank(b) {
            return rank(a).cmp(&rank(b));
        }
        if !holds_set(a) && !holds_set(b) {
            return a.cmp(b);
        }
    }
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => elementwise(x.iter(), y.iter()),
        (Value::Set(x), Value::Set(y)) => elementwise(sorted(x.iter()).into_iter(), sorted(y.iter()).into_iter()),
        (Value::Object(x), Value::Object(y)) => {
            let (x, y) = (sorted_entries(x), sorted_entries(y));
            for ((xk, xv), (yk, yv)) in x.iter().zip(&y) {
                let order = opa_order(xk, yk).then_with(|| opa_order(xv, yv));
                if order != Ordering::Equal {
                    return order;
                }
            }
            x.len().cmp(&y.len())
        }
        _ if rank(a) != rank(b) => rank(a).cmp(&rank(b)),
        _ => a.cmp(b),
    }
}

/// An object's entries in OPA's order of their keys.
pub(super) fn sorted_entries(fields: &regorus::value::Object) -> Vec<(&Value, &Value)> {
    let mut entries: Vec<(&Value, &Value)> = fields.iter().collect();
    if entries.iter().any(|(key, _)| holds_set(key)) {
        entries.sort_by(|a, b| opa_order(a.0, b.0));
    }
    entries
}

/// Whether a set is in `value`: where none is, regorus's order is OPA's
/// (the two part only on objects against sets), and already holds.
fn holds_set(value: &Value) -> bool {
    match value {
        Value::Set(_) => true,
        Value::Array(items) => items.iter().any(holds_set),
        Value::Object(fields) => fields.iter().any(|(key, value)| holds_set(key) || holds_set(value)),
        _ => false,
    }
}

fn elementwise<'a>(mut x: impl Iterator<Item = &'a Value>, mut y: impl Iterator<Item = &'a Value>) -> Ordering {
    loop {
        match (x.next(), y.next()) {
            (Some(a), Some(b)) => match opa_order(a, b) {
                Ordering::Equal => continue,
                order => return order,
            },
            (Some(_), None) => return Ordering::Greater,
            (None, Some(_)) => return Ordering::Less,
            (None, None) => return Ordering::Equal,
        }
    }
}

/// A collection's elements in OPA's order.
pub(super) fn sorted<'a>(elements: impl Iterator<Item = &'a Value>) -> Vec<&'a Value> {
    let mut elements: Vec<&Value> = elements.collect();
    match elements.iter().any(|element| holds_set(element)) {
        true => elements.sort_by(|a, b| opa_order(a, b)),
        false => elements.sort(),
    }
    elements
}

/// The elements of a collection operand, or an error naming `name`.
fn elements<'a>(name: &str, args: &'a [Value]) -> anyhow::Result<Vec<&'a Value>> {
    match args.first() {
        Some(Value::Array(items)) => Ok(items.iter().collect()),
        Some(Value::Set(items)) => Ok(items.iter().collect()),
        _ => anyhow::bail!("{name}: operand 1 must be an array or a set"),
    }
}

pub(super) fn sort(args: &[Value]) -> anyhow::Result<Value> {
    let elements = sorted(elements("sort", args)?.into_iter());
    Ok(Value::from(elements.into_iter().cloned().collect::<Vec<_>>()))
}

/// The largest element; undefined for an empty collection (OPA's).
pub(super) fn max(args: &[Value]) -> anyhow::Result<Value> {
    let largest = elements("max", args)?.into_iter().max_by(|a, b| opa_order(a, b));
    Ok(largest.cloned().unwrap_or(Value::Undefined))
}

/// The smallest element; undefined for an empty collection (OPA's).
pub(super) fn min(args: &[Value]) -> anyhow::Result<Value> {
    let smallest = elements("min", args)?.into_iter().min_by(|a, b| opa_order(a, b));
    Ok(smallest.cloned().unwrap_or(Value::Undefined))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(json: &str) -> Value {
        Value::from_json_str(json).unwrap()
    }

    #[test]
    fn objects_rank_before_sets() {
        let set = Value::from(std::collections::BTreeSet::from([Value::from(1)]));
        let object = value(r#"{"a": 1}"#);
        let mixed = Value::from(vec![
            set.clone(),
            object.clone(),
            value("[1]"),
            value("\"s\""),
            Value::Null,
        ]);
        assert_eq!(
            sort(std::slice::from_ref(&mixed)).unwrap(),
            Value::from(vec![
                Value::Null,
                value("\"s\""),
                value("[1]"),
                object.clone(),
                set.clone()
            ])
        );
        assert_eq!(max(std::slice::from_ref(&mixed)).unwrap(), set);
        assert_eq!(min(&[mixed]).unwrap(), Value::Null);
        assert_eq!(max(&[value("[]")]).unwrap(), Value::Undefined);
        assert!(sort(&[value("1")]).is_err());
        // Within a kind, what a collection holds decides.
        assert_eq!(opa_order(&value(r#"[{"a": 1}]"#), &value("[[1]]")), Ordering::Greater);
        assert_eq!(
            opa_order(&value(r#"{"a": [2]}"#), &value(r#"{"a": [1, 3]}"#)),
            Ordering::Greater
        );
        assert_eq!(opa_order(&value("[1, 2]"), &value("[1]")), Ordering::Greater);
    }
}
