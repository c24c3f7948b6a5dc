//! JSON ↔ policy values, without regorus's serde round trip.

use std::collections::BTreeMap;

use serde_json::Value;

/// One element of a rule's set as `T`. The element's JSON is moved into
/// `T` (no string copied again); only an element that does not fit is
/// converted a second time, to name where.
pub(super) fn typed_element<T: serde::de::DeserializeOwned>(
    element: &regorus::Value,
) -> Result<T, crate::typed::TypedError> {
    let json = || {
        serde_json::to_value(element).map_err(|err| crate::typed::TypedError {
            path: String::new(),
            reason: err.to_string(),
        })
    };
    T::deserialize(json()?).or_else(|_| crate::typed::from_value(&json()?))
}

/// A JSON value as a policy sees it: the value `regorus::Value::from` makes
/// of it, built directly. regorus's serde path allocates every string twice
/// and builds each object by repeated inserts; here an object's entries,
/// already sorted, are bulk-loaded. (A typical payload: 6 -> 3 µs.)
pub fn to_policy_value(value: &Value) -> regorus::Value {
    match value {
        Value::Null => regorus::Value::Null,
        Value::Bool(b) => regorus::Value::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => regorus::Value::from(u),
            (None, Some(i)) => regorus::Value::from(i),
            // serde_json numbers are finite.
            (None, None) => regorus::Value::from(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => regorus::Value::String(s.as_str().into()),
        Value::Array(items) => regorus::Value::from(items.iter().map(to_policy_value).collect::<Vec<_>>()),
        Value::Object(fields) => to_policy_object(fields),
    }
}

/// [`to_policy_value`] of a JSON object.
///
/// Payloads of one source repeat their objects' key sets. regorus builds an
/// object through a map and then copies it into its compact sorted form,
/// each key allocated again: here an object is a clone of its key set's
/// compact form, kept per thread, with the values set in place.
pub fn to_policy_object(fields: &serde_json::Map<String, Value>) -> regorus::Value {
    if fields.is_empty() {
        return regorus::Value::new_object();
    }
    let Some(shape) = shape_of(fields) else {
        return regorus::Value::from(to_policy_entries(fields));
    };
    let mut object = (*shape).clone();
    for ((key, _), value) in shape.iter().zip(fields.values()) {
        if let Some(place) = object.get_mut(key) {
            *place = to_policy_value(value);
        }
    }
    regorus::Value::from(object)
}

/// The compact form of `fields`' key set (null values), in the order the
/// fields come: the one this thread holds, else built and held. `None` for
/// key sets too long to hold.
fn shape_of(fields: &serde_json::Map<String, Value>) -> Option<Shape> {
    let slot = shape_slot(fields);
    let held = SHAPES.with(|shapes| shapes.borrow()[slot].clone());
    if let Some(held) = held.filter(|held| same_keys(held, fields)) {
        return Some(held);
    }
    if fields.keys().map(String::len).sum::<usize>() > MAX_SHAPE_KEY_BYTES {
        return None;
    }
    let keys: BTreeMap<regorus::Value, regorus::Value> = fields
        .keys()
        .map(|key| (regorus::Value::String(key.as_str().into()), regorus::Value::Null))
        .collect();
    let regorus::Value::Object(shape) = regorus::Value::from(keys) else {
        return None;
    };
    // The fields are filled in by position: held only where they come in
    // the shape's sorted order (serde_json's map keeps its keys sorted).
    if !same_keys(&shape, fields) {
        return None;
    }
    SHAPES.with(|shapes| shapes.borrow_mut()[slot] = Some(shape.clone()));
    Some(shape)
}

/// How many key sets a thread keeps: a direct-mapped table, a new key set
/// replacing the one in its slot.
const SHAPE_SLOTS: usize = 256;

/// Key sets longer than this are not kept: what a thread holds stays small
/// (at most 256 KiB) whatever keys a payload has.
const MAX_SHAPE_KEY_BYTES: usize = 1024;

type Shape = regorus::Rc<regorus::value::Object>;

std::thread_local! {
    static SHAPES: std::cell::RefCell<Vec<Option<Shape>>> = std::cell::RefCell::new(vec![None; SHAPE_SLOTS]);
}

/// The key set's slot: from each key's length and first, middle and last
/// bytes (a slot's key set is compared in full before it is used).
fn shape_slot(fields: &serde_json::Map<String, Value>) -> usize {
    let mut hash = fields.len() as u64;
    for key in fields.keys() {
        let bytes = key.as_bytes();
        let at = |i: usize| u64::from(bytes.get(i).copied().unwrap_or(0));
        let word = bytes.len() as u64 | at(0) << 16 | at(bytes.len() / 2) << 24 | at(bytes.len().wrapping_sub(1)) << 32;
        hash = (hash ^ word).wrapping_mul(0x0100_0000_01b3).rotate_left(29);
    }
    (hash ^ (hash >> 32)) as usize % SHAPE_SLOTS
}

fn same_keys(template: &regorus::value::Object, fields: &serde_json::Map<String, Value>) -> bool {
    template.len() == fields.len()
        && template
            .keys()
            .zip(fields.keys())
            .all(|(held, key)| matches!(held, regorus::Value::String(held) if **held == **key))
}

/// The entries of [`to_policy_object`], for a caller that adds its own.
pub fn to_policy_entries(fields: &serde_json::Map<String, Value>) -> BTreeMap<regorus::Value, regorus::Value> {
    fields
        .iter()
        .map(|(key, value)| (regorus::Value::String(key.as_str().into()), to_policy_value(value)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// What regorus itself makes of the JSON text.
    fn regorus_reading(value: &Value) -> regorus::Value {
        regorus::Value::from_json_str(&value.to_string()).unwrap()
    }

    #[test]
    fn a_key_set_seen_again_is_built_from_its_shape_with_the_new_values() {
        let first = json!({"ip": ["198.51.100.1"], "port": 22, "user": {"name": "a"}});
        let second = json!({"ip": ["203.0.113.9", "203.0.113.10"], "port": 443, "user": {"name": "b"}});
        assert_eq!(to_policy_value(&first), regorus_reading(&first));
        // The second conversion is built from the first one's shapes.
        assert_eq!(to_policy_value(&second), regorus_reading(&second));
        assert_eq!(to_policy_value(&first), regorus_reading(&first));
        // A shape never hands its values on: none of the first's is left.
        let converted = to_policy_value(&second);
        assert_eq!(converted["user"]["name"], regorus::Value::from("b"));
        assert_eq!(converted["port"], regorus::Value::from(443u64));
    }

    #[test]
    fn key_sets_that_share_a_slot_are_told_apart() {
        // Same count, lengths and first, middle and last bytes: one slot.
        let one = json!({"apbpa": 1, "bpcpb": 2});
        let other = json!({"aqbqa": 1, "bqcqb": 2});
        assert_eq!(
            shape_slot(one.as_object().unwrap()),
            shape_slot(other.as_object().unwrap())
        );
        for value in [&one, &other, &one, &other] {
            assert_eq!(to_policy_value(value), regorus_reading(value));
        }
        // Keys too long to keep are converted all the same.
        let long = json!({"k".repeat(MAX_SHAPE_KEY_BYTES + 1): 1});
        assert_eq!(to_policy_value(&long), regorus_reading(&long));
        assert!(SHAPES.with(|shapes| shapes.borrow()[shape_slot(long.as_object().unwrap())].is_none()));
        // A subset or superset of a held key set is no match either.
        for value in [json!({"apbpa": 1}), json!({"apbpa": 1, "bpcpb": 2, "c": 3}), json!({})] {
            assert_eq!(to_policy_value(&value), regorus_reading(&value));
        }
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            // Exact in binary: the text read back is the same number.
            (-4000i32..4000).prop_map(|n| json!(f64::from(n) / 8.0)),
            "[a-z]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                // Few key names: key sets repeat, within one value and
                // across cases, as a source's payloads do.
                prop::collection::btree_map("[abc]{1,2}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]
        #[test]
        fn conversion_is_regorus_reading_of_the_same_json(value in arbitrary_json()) {
            let expected = regorus_reading(&value);
            prop_assert_eq!(to_policy_value(&value), expected.clone());
            // Again, now that every key set of the value is held.
            prop_assert_eq!(to_policy_value(&value), expected);
        }
    }
}
