//! OPA's `json.filter` and `json.remove`, in place of regorus's: paths are
//! read as OPA reads them (every leading `/` dropped, `~1` and `~0`
//! unescaped, an array's segments taken as they are), merged into one tree
//! (a path that ends where another goes on keeps the whole), and applied
//! as OPA applies them: a filtered array keeps its elements in their order
//! (regorus reordered them by index text, `10` before `2`), a removed
//! element closes its gap. And `graph.reachable_paths`, as OPA walks a
//! graph: a node whose edges are no array or set ends a path (regorus made
//! the call undefined), a path stops where it would close a cycle.

use std::collections::BTreeMap;

use regorus::Value;

use crate::policy::guard::{too_large, MAX_ELEMENTS, MAX_GRAPH_NODES, MAX_PATH_SEGMENTS};

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

/// The vertices of an edge list: an array's or a set's elements; any
/// other value has none.
fn vertices(edges: &Value) -> Vec<&Value> {
    match edges {
        Value::Array(items) => items.iter().collect(),
        Value::Set(items) => items.iter().collect(),
        _ => Vec::new(),
    }
}

/// A walk of `graph.reachable_paths`: the paths found, and the elements it
/// may still copy (the paths of a dense graph are exponentially many; OPA
/// enumerates them without bound, the host stops at the element limit).
struct Walk<'a> {
    graph: &'a regorus::value::Object,
    paths: std::collections::BTreeSet<Value>,
    steps_left: u64,
}

impl Walk<'_> {
    /// OPA's `pathBuilder`: `root` appended to `path`, then each neighbour
    /// not yet on the path walked; the path is a result where it ends.
    fn walk(
        &mut self,
        root: &Value,
        mut path: Vec<Value>,
        on_path: &std::collections::BTreeSet<Value>,
    ) -> anyhow::Result<()> {
        // Each step copies the path and the set of nodes on it: counted
        // by what it copies, so the walk's time stays bounded.
        let cost = 2 * (path.len() as u64 + 1);
        self.steps_left = self
            .steps_left
            .checked_sub(cost)
            .ok_or_else(|| too_large("graph.reachable_paths", MAX_ELEMENTS + 1))?;
        let Some(edges) = self.graph.get(root) else {
            self.paths.insert(Value::from(path));
            return Ok(());
        };
        path.push(root.clone());
        let neighbours = vertices(edges);
        if neighbours.is_empty() {
            self.paths.insert(Value::from(path));
            return Ok(());
        }
        let mut on_path = on_path.clone();
        on_path.insert(root.clone());
        for neighbour in neighbours {
            if on_path.contains(neighbour) {
                self.paths.insert(Value::from(path.clone()));
            } else {
                self.walk(neighbour, path.clone(), &on_path)?;
            }
        }
        Ok(())
    }
}

pub(super) fn reachable_paths(args: &[Value]) -> anyhow::Result<Value> {
    const NAME: &str = "graph.reachable_paths";
    let graph = args
        .first()
        .and_then(|value| value.as_object().ok())
        .ok_or_else(|| anyhow::anyhow!("{NAME}: operand 1 must be an object"))?;
    let nodes = graph.len() as u64;
    if nodes > MAX_GRAPH_NODES {
        return Err(too_large(NAME, nodes));
    }
    let initial = match args.get(1) {
        Some(value @ (Value::Array(_) | Value::Set(_))) => vertices(value),
        _ => anyhow::bail!("{NAME}: operand 2 must be an array or a set"),
    };
    let mut walk = Walk {
        graph,
        paths: std::collections::BTreeSet::new(),
        steps_left: MAX_ELEMENTS,
    };
    for node in initial {
        let Some(edges) = graph.get(node) else {
            continue;
        };
        let neighbours = vertices(edges);
        if neighbours.is_empty() {
            walk.paths.insert(Value::from(vec![node.clone()]));
        }
        let on_path = std::collections::BTreeSet::from([node.clone()]);
        for neighbour in neighbours {
            walk.walk(neighbour, vec![node.clone()], &on_path)?;
        }
    }
    Ok(Value::from(walk.paths))
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

    #[test]
    fn walks_graphs_as_opa() {
        let paths = |graph: &str, initial: &str| json(&reachable_paths(&[value(graph), value(initial)]).unwrap());
        let graph = r#"{"a": ["b", "c"], "b": ["c"], "c": ["a"], "d": []}"#;
        assert_eq!(paths(graph, r#"["a"]"#), r#"[["a","b","c"],["a","c"]]"#);
        assert_eq!(paths(graph, r#"["d", "missing"]"#), r#"[["d"]]"#);
        // Edges that are no collection end the path there.
        assert_eq!(paths(r#"{"a": "b"}"#, r#"["a"]"#), r#"[["a"]]"#);
        // A neighbour outside the graph ends the path before it.
        assert_eq!(paths(r#"{"a": ["z"]}"#, r#"["a"]"#), r#"[["a"]]"#);
        assert!(reachable_paths(&[value("{}"), value("\"a\"")]).is_err());
    }

    #[test]
    fn dense_graphs_are_bounded() {
        // 40 nodes, each pointing at every later one: about 2^39 paths.
        let graph: BTreeMap<Value, Value> = (0..40)
            .map(|i| {
                (
                    Value::from(i),
                    Value::from((i + 1..40).map(Value::from).collect::<Vec<_>>()),
                )
            })
            .collect();
        let refused = reachable_paths(&[Value::from(graph), value("[0]")]).unwrap_err();
        assert!(refused.downcast_ref::<regorus::LimitError>().is_some());
    }
}
