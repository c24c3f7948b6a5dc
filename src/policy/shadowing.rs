//! Variables declared by `some … in` that share a name with a rule or a
//! function of their package. OPA binds such a variable locally, shadowing
//! the rule where it is declared (`ips := [ip | some ip in xs]` beside a
//! rule `ip`); regorus refuses the module ("var `ip` used before
//! definition"). Here the variable is renamed throughout its scope: the
//! comprehension that declares it, or the rule body that does (with the
//! rule's head when that body is the first). `engine::compiled` applies it
//! only to policies that do not compile as written.

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{Expr, Literal, Module, Query, Rule, Span};

use super::analysis::{function_names, head_terms, package_path, value_rule_names, walk_expr, walk_query, walk_values};
use super::hoist::{replaced, Rewrites};
use super::source::PolicyFile;

/// `files` with such variables renamed, and whether any was; `modules`
/// are the files parsed (`engine::parsed`).
pub(super) fn renamed(files: &[PolicyFile], modules: &[regorus::unstable::Ref<Module>]) -> (Vec<PolicyFile>, bool) {
    let mut names = value_rule_names(modules);
    for (package, functions) in function_names(modules) {
        names.entry(package).or_default().extend(functions);
    }
    let mut changed = false;
    let files = files
        .iter()
        .map(|file| {
            let module = modules.iter().find(|m| *m.package.span.source.file() == file.name);
            let edits = match (module, module.and_then(|m| names.get(&package_path(m)))) {
                (Some(module), Some(rules)) => edits(module, rules),
                _ => Rewrites::default(),
            };
            let edits = Rewrites::merged([&edits]);
            if edits.is_empty() {
                return file.clone();
            }
            changed = true;
            PolicyFile {
                name: file.name.clone(),
                text: replaced(&file.text, edits),
            }
        })
        .collect();
    (files, changed)
}

/// The renames of one module whose package defines `rules`.
fn edits(module: &Module, rules: &BTreeSet<String>) -> Rewrites {
    // The name's spans, by start: a span reached from two scopes is renamed once.
    let mut spans: BTreeMap<usize, (usize, String)> = BTreeMap::new();
    for rule in &module.policy {
        let Rule::Spec { head, bodies, .. } = rule.as_ref() else {
            continue;
        };
        for (index, body) in bodies.iter().enumerate() {
            for name in declared(&body.query, rules) {
                let mut scope: Vec<&Expr> = Vec::new();
                if index == 0 {
                    scope.extend(head_terms(head));
                }
                if let Some(assign) = &body.assign {
                    scope.push(&assign.value);
                }
                rename_in(&scope, Some(&body.query), &name, &mut spans);
            }
        }
        // Comprehensions anywhere in the rule, each its own scope.
        let mut comprehension = |expr: &Expr| {
            if let Expr::ArrayCompr { query, .. } | Expr::SetCompr { query, .. } | Expr::ObjectCompr { query, .. } =
                expr
            {
                for name in declared(query, rules) {
                    rename_in(&[expr], None, &name, &mut spans);
                }
            }
        };
        walk_values(rule, &mut comprehension);
    }
    let mut edits = Rewrites::default();
    for (start, (end, name)) in spans {
        edits.replace(start, end, local_name(&name));
    }
    edits
}

/// The names of `rules` that `some … in` statements of `query` itself
/// (not of nested queries) declare.
fn declared(query: &Query, rules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for stmt in &query.stmts {
        if let Literal::SomeIn { key, value, .. } = &stmt.literal {
            for pattern in key.iter().chain([value]) {
                walk_expr(pattern, &mut |expr| {
                    if let Expr::Var { span, .. } = expr {
                        if rules.contains(span.text()) {
                            names.insert(span.text().to_string());
                        }
                    }
                });
            }
        }
    }
    names
}

/// Records every variable named `name` in `exprs` and `query`, and the
/// names `some` and `every` declare, but not a function's name in a call.
fn rename_in(exprs: &[&Expr], query: Option<&Query>, name: &str, spans: &mut BTreeMap<usize, (usize, String)>) {
    let mut called: BTreeSet<usize> = BTreeSet::new();
    let mut found: Vec<(usize, usize)> = Vec::new();
    let mut visit = |expr: &Expr| match expr {
        Expr::Call { fcn, .. } => {
            called.insert(fcn.span().start as usize);
        }
        Expr::Var { span, .. } if span.text() == name => found.push((span.start as usize, span.end as usize)),
        // Declarations are spans, not variables, in the tree.
        Expr::ArrayCompr { query, .. } | Expr::SetCompr { query, .. } | Expr::ObjectCompr { query, .. } => {
            declarations(query, name, &mut found)
        }
        _ => {}
    };
    for expr in exprs {
        walk_expr(expr, &mut visit);
    }
    if let Some(query) = query {
        walk_query(query, &mut visit);
        declarations(query, name, &mut found);
    }
    for (start, end) in found {
        if !called.contains(&start) {
            spans.insert(start, (end, name.to_string()));
        }
    }
}

/// The spans of `name` that `some x, y` and `every k, v in` declare in
/// `query` and in the `every` queries inside it.
fn declarations(query: &Query, name: &str, out: &mut Vec<(usize, usize)>) {
    for stmt in &query.stmts {
        let declared: Vec<&Span> = match &stmt.literal {
            Literal::SomeVars { vars, .. } => vars.iter().collect(),
            Literal::Every { key, value, query, .. } => {
                declarations(query, name, out);
                key.iter().chain([value]).collect()
            }
            _ => Vec::new(),
        };
        out.extend(
            declared
                .into_iter()
                .filter(|span| span.text() == name)
                .map(|span| (span.start as usize, span.end as usize)),
        );
    }
}

/// The name a shadowing variable is given: no Rego author's (`ar__` names
/// the rewrites' own; `s_` keeps it apart from theirs, `ar__n0`, `ar__t0`).
fn local_name(name: &str) -> String {
    format!("ar__s_{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renamed_text(text: &str) -> String {
        let files = vec![PolicyFile {
            name: "p.rego".into(),
            text: text.into(),
        }];
        renamed(&files, &crate::policy::engine::parsed(&files)).0.remove(0).text
    }

    #[test]
    fn a_comprehension_variable_is_renamed_inside_the_comprehension_only() {
        let text = "package p\nip := 1\nx := [ip, [ip | some ip in input.ips]]\n";
        assert_eq!(
            renamed_text(text),
            "package p\nip := 1\nx := [ip, [ar__s_ip | some ar__s_ip in input.ips]]\n"
        );
    }

    #[test]
    fn a_body_variable_is_renamed_in_its_body_and_the_head_but_not_in_an_else() {
        let text = "package p\nip := 1\nr := ip if {\n\tsome i, ip in input.ips\n\ti > 0\n} else := ip\n";
        assert_eq!(
            renamed_text(text),
            "package p\nip := 1\nr := ar__s_ip if {\n\tsome i, ar__s_ip in input.ips\n\ti > 0\n} else := ip\n"
        );
    }

    #[test]
    fn declarations_and_nested_uses_follow_but_calls_and_fields_do_not() {
        let text = "package p\nf(x) := x\nr if {\n\tsome f in input.fs\n\tf(f.f)\n\tevery g in [f] { g == f }\n}\n";
        assert_eq!(
            renamed_text(text),
            "package p\nf(x) := x\nr if {\n\tsome ar__s_f in input.fs\n\tf(ar__s_f.f)\n\tevery g in [ar__s_f] { g == ar__s_f }\n}\n"
        );
    }

    #[test]
    fn a_module_without_such_a_variable_is_unchanged() {
        let files = vec![PolicyFile {
            name: "p.rego".into(),
            text: "package p\nip := 1\nx := [y | some y in input.ips]\n".into(),
        }];
        let (again, changed) = renamed(&files, &crate::policy::engine::parsed(&files));
        assert!(!changed);
        assert_eq!(again[0].text, files[0].text);
    }
}
