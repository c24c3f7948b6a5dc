//! OPA's `json.filter` and `json.remove`, in place of regorus's: paths are
//! read as OPA reads them (every leading `/` dropped, `~1` and `~0`
//! unescaped, an array's segments taken as they are), merged into one tree
//! (a path that ends where another goes on keeps the whole), and applied
//! as OPA applies them: a filtered array keeps its elements in their order
//! (regorus reordered them by index text, `10` before `2`), a removed
//! element closes its gap.

use std::collections::BTreeMap;

use regorus::Value;

use crate::policy::guard::{too_large, MAX_PATH_SEGMENTS};

/// The paths as a tree: a leaf takes the whole value under it.
enum Node {
    Leaf,
    Branch(BTreeMap<Value, Node>),
}

/// One path's segments, as OPA's `parsePath` reads it.
fn segments(name: &str, path: &Value) -> anyhow::Result<Vec<Value>> {
    let segments: Vec<Value> = match path {
        Value::String(text) if text.is_empty() => Vec::new(),
        Value::String(text) => text
            .trim_start_matches('/')
            .split('/')
            .map(|part| Value::from(part.replace("~1", "/").replace("~0", "~")))
            .collect(),
        Value::Array(items) => items.iter().cloned().collect(),
        _ => anyhow::bail!(
            "{name}: operand 2 must be one of {{set, array}} containing string paths or array of path segments"
        ),
    };
    let count = segments.len() as u64;
    if count > MAX_PATH_SEGMENTS {
        return Err(too_large(name, count));
    }
    Ok(segments)
}

/// The tree of operand 2's paths, as OPA's `pathsToObject` builds it: a
/// path under a leaf adds nothing, a leaf replaces what was under it.
fn tree(name: &str, args: &[Value]) -> anyhow::Result<BTreeMap<Value, Node>> {
    let paths: Vec<&Value> = match args.get(1) {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(Value::Set(items)) => items.iter().collect(),
        _ => anyhow::bail!("{name}: operand 2 must be a set or an array"),
    };
    let mut root = BTreeMap::new();
    for path in paths {
        insert(&mut root, &segments(name, path)?);
    }
    Ok(root)
}

/// Adds a path to the tree: its last segment a leaf, unless a leaf is
/// already on its way.
fn insert(node: &mut BTreeMap<Value, Node>, segments: &[Value]) {
    match segments {
        [] => {}
        [last] => {
            node.insert(last.clone(), Node::Leaf);
        }
        [first, rest @ ..] => {
            let child = node
                .entry(first.clone())
                .or_insert_with(|| Node::Branch(BTreeMap::new()));
            if let Node::Branch(children) = child {
                insert(children, rest);
            }
        }
    }
}

/// An array index as OPA's paths name it: its decimal text.
fn index_key(index: usize) -> Value {
    Value::from(index.to_string())
}

/// `value` with only what the tree names (OPA's `filterObject`).
fn keep(value: &Value, node: &Node) -> Value {
    let Node::Branch(children) = node else {
        return value.clone();
    };
    match value {
        Value::Array(items) => Value::from(
            items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| children.get(&index_key(index)).map(|child| keep(item, child)))
                .collect::<Vec<_>>(),
        ),
        Value::Set(items) => Value::from(
            items
                .iter()
                .filter_map(|item| children.get(item).map(|child| keep(item, child)))
                .collect::<std::collections::BTreeSet<_>>(),
        ),
        Value::Object(fields) => Value::from(
            fields
                .iter()
                .filter_map(|(key, item)| children.get(key).map(|child| (key.clone(), keep(item, child))))
                .collect::<BTreeMap<_, _>>(),
        ),
        scalar => scalar.clone(),
    }
}

/// `value` without what the tree's leaves name (OPA's `jsonRemove`); None
/// where a leaf takes it all.
fn remove(value: &Value, node: Option<&Node>) -> Option<Value> {
    let children = match node {
        None => return Some(value.clone()),
        Some(Node::Leaf) => return None,
        Some(Node::Branch(children)) => children,
    };
    Some(match value {
        Value::Array(items) => Value::from(
            items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| remove(item, children.get(&index_key(index))))
                .collect::<Vec<_>>(),
        ),
        Value::Set(items) => Value::from(
            items
                .iter()
                .filter_map(|item| remove(item, children.get(item)))
                .collect::<std::collections::BTreeSet<_>>(),
        ),
        Value::Object(fields) => Value::from(
            fields
                .iter()
                .filter_map(|(key, item)| remove(item, children.get(key)).map(|kept| (key.clone(), kept)))
                .collect::<BTreeMap<_, _>>(),
        ),
        scalar => scalar.clone(),
    })
}

/// The object operand, or an error naming `name`.
fn object<'a>(name: &str, args: &'a [Value]) -> anyhow::Result<&'a Value> {
    match args.first() {
        Some(value @ Value::Object(_)) => Ok(value),
        _ => anyhow::bail!("{name}: operand 1 must be an object"),
    }
}

pub(super) fn json_filter(args: &[Value]) -> anyhow::Result<Value> {
    let object = object("json.filter", args)?;
    let tree = tree("json.filter", args)?;
    Ok(keep(object, &Node::Branch(tree)))
}

pub(super) fn json_remove(args: &[Value]) -> anyhow::Result<Value> {
    let object = object("json.remove", args)?;
    let tree = tree("json.remove", args)?;
    Ok(remove(object, Some(&Node::Branch(tree))).unwrap_or(Value::Undefined))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(json: &str) -> Value {
        Value::from_json_str(json).unwrap()
    }

    fn json(value: &Value) -> String {
        serde_json::to_string(value).unwrap()
    }

    #[test]
    fn filters_as_opa() {
        let doc =
            value(r#"{"a": {"b": [10, 20, 30], "x/y": 1, "t~n": 2}, "list": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]}"#);
        let filter = |paths: &str| json(&json_filter(&[doc.clone(), value(paths)]).unwrap());
        assert_eq!(filter(r#"["list/10", "list/2"]"#), r#"{"list":[2,10]}"#);
        assert_eq!(filter(r#"["a/x~1y", "a/t~0n"]"#), r#"{"a":{"t~n":2,"x/y":1}}"#);
        assert_eq!(filter(r#"["//a/b"]"#), r#"{"a":{"b":[10,20,30]}}"#);
        assert_eq!(filter(r#"["a", "a/b"]"#), r#"{"a":{"b":[10,20,30],"t~n":2,"x/y":1}}"#);
        assert_eq!(filter(r#"[["a", "b", "1"]]"#), r#"{"a":{"b":[20]}}"#);
        // A number segment names no array element (OPA looks up its text).
        assert_eq!(filter(r#"[["list", 1]]"#), r#"{"list":[]}"#);
        assert_eq!(filter(r#"[""]"#), "{}");
        assert!(json_filter(&[doc.clone(), value("[1]")]).is_err());
        assert!(json_filter(&[value("[]"), value("[]")]).is_err());
    }

    #[test]
    fn removes_as_opa() {
        let doc = value(r#"{"a": {"b": [10, 20, 30], "s": ["x", "y"]}, "list": [0, 1, 2]}"#);
        let remove = |paths: &str| json(&json_remove(&[doc.clone(), value(paths)]).unwrap());
        assert_eq!(
            remove(r#"["a/b/1", "list/0"]"#),
            r#"{"a":{"b":[10,30],"s":["x","y"]},"list":[1,2]}"#
        );
        assert_eq!(remove(r#"["a"]"#), r#"{"list":[0,1,2]}"#);
        assert_eq!(remove(r#"["a/b/1", "a/b"]"#), r#"{"a":{"s":["x","y"]},"list":[0,1,2]}"#);
        assert_eq!(remove("[]"), json(&doc));
    }

    #[test]
    fn long_paths_are_refused() {
        let long = Value::from(vec![Value::from("a/".repeat(MAX_PATH_SEGMENTS as usize + 1))]);
        let refused = json_filter(&[value("{}"), long]).unwrap_err();
        assert!(refused.downcast_ref::<regorus::LimitError>().is_some());
    }
}
