//! Rules and functions that read themselves, refused at load as OPA's
//! compiler refuses them (`rego_recursion_error`). regorus's VM recursed
//! into one until the process overflowed its stack: every alert a policy
//! with `a := a` saw crashed the function, where OPA never loads it. A
//! recursive function with a base case is refused too, as OPA does.
//!
//! The graph is a rule's reads by path: a name of its package it does not
//! declare as a local (`=` declares none: a rule's name there is the rule),
//! and a `data.` path (written out or through an import). A rule is its
//! whole constant path (`a.b`, `a.c`), so siblings do not read each other;
//! a read reaches the rules at, under (a package read whole) and above it.
//! A path with a variable in it (`data.p[x]`) reaches what its constant
//! part names: the check misses a cycle only through such a variable.

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{Module, Ref, Rule};
use regorus::utils::get_path_string;

use super::analysis::{
    function_names, head_ref, import_aliases, package_path, root_name, rule_declares, rule_queries, value_rule_names,
    walk_reads,
};

/// A rule's path (`data.pkg.name`) and where it is first defined.
struct Node {
    file: String,
    line: u32,
}

/// The first cycle among the modules' rules, as OPA words it:
/// `file:line: rule data.p.a is recursive: data.p.a -> data.p.b -> data.p.a`.
pub(super) fn first_cycle(modules: &[Ref<Module>]) -> Option<String> {
    let mut names = value_rule_names(modules);
    for (package, functions) in function_names(modules) {
        names.entry(package).or_default().extend(functions);
    }
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for module in modules {
        let package = package_path(module);
        let local = names.get(&package).cloned().unwrap_or_default();
        let imports = import_aliases(module);
        for rule in &module.policy {
            // A rule is its whole path where that is constant (`a.b` and
            // `a.c` are two: `a.c := upper(a.b)` reads no rule of its own).
            let refr = head_ref(rule);
            let Some(name) = root_name(refr) else {
                continue;
            };
            let from = match get_path_string(refr, None) {
                Ok(path) => format!("{package}.{path}"),
                Err(_) => format!("{package}.{name}"),
            };
            let span = rule.span();
            nodes.entry(from.clone()).or_insert_with(|| Node {
                file: span.source.file().to_string(),
                line: span.line,
            });
            let reads = edges.entry(from).or_default();
            for read in rule_reads(rule, &package, &local, &imports) {
                reads.insert(read);
            }
        }
    }
    // A read reaches the rules at its path, under it (a prefix of theirs:
    // `a` reads `a.b`) or above it (`a.b.x` reads `a.b`'s value).
    for reads in edges.values_mut() {
        *reads = reads
            .iter()
            .flat_map(|read| {
                nodes.keys().filter(move |node| {
                    *node == read
                        || node
                            .strip_prefix(read.as_str())
                            .is_some_and(|rest| rest.starts_with('.'))
                        || read
                            .strip_prefix(node.as_str())
                            .is_some_and(|rest| rest.starts_with('.'))
                })
            })
            .cloned()
            .collect();
    }
    let cycle = find_cycle(&edges)?;
    let node = &nodes[&cycle[0]];
    Some(format!(
        "{}:{}: rule {} is recursive: {}",
        node.file,
        node.line,
        cycle[0],
        cycle.join(" -> ")
    ))
}

/// The paths `rule` reads (`data.p.r.x`, `data.p.a.b`); the caller finds
/// the rules at, above or under each.
fn rule_reads(
    rule: &Rule,
    package: &str,
    local: &BTreeSet<String>,
    imports: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    // `with <target> as …`: the target is replaced, not read.
    let mut targets: Vec<(usize, usize)> = Vec::new();
    rule_queries(rule, &mut |query| {
        for stmt in &query.stmts {
            for with in &stmt.with_mods {
                let span = with.refr.span();
                targets.push((span.start as usize, span.end as usize));
            }
        }
    });
    let mut reads = BTreeSet::new();
    walk_reads(rule, imports, &mut |expr, path| {
        let span = expr.span();
        let (start, end) = (span.start as usize, span.end as usize);
        if targets.iter().any(|&(s, e)| s <= start && end <= e) {
            return;
        }
        let Some(root) = root_name(expr) else {
            return;
        };
        let path = match path {
            Some(path) => Some(path),
            None if local.contains(root) && !imports.contains_key(root) && !rule_declares(rule, root) => {
                Some(match get_path_string(expr, None) {
                    Ok(path) => format!("{package}.{path}"),
                    Err(_) => format!("{package}.{root}"),
                })
            }
            None => None,
        };
        reads.extend(path);
    });
    reads
}

/// A cycle of `edges` as its nodes, the first repeated at the end.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    // 0 unvisited, 1 on the current path, 2 done.
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    let mut path: Vec<&str> = Vec::new();
    fn visit<'a>(
        node: &'a str,
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        state.insert(node, 1);
        path.push(node);
        for next in edges.get(node).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = path.iter().position(|n| *n == next.as_str()).unwrap_or(0);
                    let mut cycle: Vec<String> = path[from..].iter().map(|n| n.to_string()).collect();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(cycle) = visit(next, edges, state, path) {
                        return Some(cycle);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(node, 2);
        None
    }
    for node in edges.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(cycle) = visit(node, edges, &mut state, &mut path) {
                return Some(cycle);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cycle_in(texts: &[&str]) -> Option<String> {
        let mut engine = regorus::Engine::new();
        for (i, text) in texts.iter().enumerate() {
            engine.add_policy(format!("p{i}.rego"), text.to_string()).unwrap();
        }
        first_cycle(engine.get_modules())
    }

    #[test]
    fn rules_and_functions_that_read_themselves_are_found() {
        let recursive = [
            (
                "a := a\n",
                "p0.rego:2: rule data.p.a is recursive: data.p.a -> data.p.a",
            ),
            (
                "a := b\nb := c\nc := a\n",
                "data.p.a -> data.p.b -> data.p.c -> data.p.a",
            ),
            ("f(x) := f(x)\n", "data.p.f -> data.p.f"),
            // A base case does not help, as in OPA.
            (
                "f(0) := 0\nf(x) := y if {\n\tx > 0\n\ty := f(x - 1)\n}\n",
                "data.p.f -> data.p.f",
            ),
            ("s contains x if {\n\tsome x in s\n}\n", "data.p.s -> data.p.s"),
            ("p if not q\nq if p\n", "data.p.p -> data.p.q -> data.p.p"),
            ("a := data.p.a.x\n", "data.p.a -> data.p.a"),
            // `=` with a rule's name reads the rule.
            ("a := 1 if {\n\ta = 1\n}\n", "data.p.a -> data.p.a"),
            // The own package read whole.
            ("n := count(data.p)\n", "data.p.n -> data.p.n"),
            (
                "a[k] := 1 if {\n\tsome k in [\"x\"]\n\tdata.p.a[k]\n}\n",
                "data.p.a -> data.p.a",
            ),
        ];
        for (rules, expected) in recursive {
            let found = cycle_in(&[&format!("package p\n{rules}")]).unwrap_or_else(|| panic!("{rules}"));
            assert!(found.contains(expected), "{rules}: {found}");
        }
        // Across packages, through an import.
        let found = cycle_in(&["package a\nimport data.b\nx := b.y\n", "package b\ny := data.a.x\n"]).unwrap();
        assert!(found.contains("data.a.x -> data.b.y -> data.a.x"), "{found}");
    }

    #[test]
    fn locals_named_like_rules_and_with_targets_are_no_reads() {
        let fine = [
            "a := 1\nb if {\n\ta := 2\n\ta == 2\n}\nc := b\n",
            "x := 1\nr contains x if {\n\tsome x in [1, 2]\n}\n",
            "f(x) := x + 1\ng(f) := f\n",
            "cfg := {\"k\": 1}\nr := cfg.k\nt if {\n\tr with cfg as {\"k\": 2}\n}\n",
            "r := data.q.r\n",
            "a := input.a\nb := a\n",
            // Rules named by paths: siblings read each other, not themselves.
            "a.b := input.sev\na.c := upper(a.b)\n",
            "cfg.slack.channel := \"c\"\ncfg.slack.url := concat(\"/\", [\"https://x\", cfg.slack.channel])\n",
            "a.s contains x if {\n\tsome x in input.l\n}\na.n := count(a.s)\nm := data.p.a.b\n",
        ];
        for rules in fine {
            assert_eq!(
                cycle_in(&[&format!("package p\n{rules}"), "package q\nr := 1\n"]),
                None,
                "{rules}"
            );
        }
    }
}
