//! A rule named with a variable in its path (`by_sev[s] contains a`,
//! `pairs[s][t] := v`, `cfg.by_kind[k] contains x`) that derives nothing
//! is an empty object to OPA — its path's prefix is one — and undefined
//! to regorus, which runs such rules on its interpreter: `count(by_sev)`
//! was undefined, not 0, and `not by_sev` held. Reads of such a rule's
//! first name are written as a helper rule's, `ar__o_<name>`: the rule's
//! value over the empty objects its path implies (`{"by_kind": {}}` for
//! `cfg.by_kind[k]`), or those alone, a default, when nothing is derived.
//! The helpers live in a module of their own per package, so the
//! policies' lines stay where they were.

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{Expr, Literal, Module, Query, Ref, Rule, RuleHead};
use regorus::utils::get_path_string;
use serde_json::{Map, Value};

use super::analysis::{head_terms, package_path, walk_expr};
use super::hoist::replaced;

/// The name of a helper module, which no policy file has.
fn helper_module_name(package: &str) -> String {
    format!("<empty objects of {package}>")
}

/// The modules' texts (file name, text) with the reads of such rules
/// written as their helpers', and a helper module per package that needs
/// one; empty when no such rule is read (then nothing changes).
pub(super) fn rewritten(modules: &[Ref<Module>]) -> Vec<(String, String)> {
    let roots = roots(modules);
    if roots.is_empty() {
        return Vec::new();
    }
    let mut read: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut texts: Vec<(String, String)> = Vec::with_capacity(modules.len() + 1);
    for module in modules {
        let source = &module.package.span.source;
        let mut edits: Vec<(usize, usize, String)> = Vec::new();
        for rule in &module.policy {
            reads(module, rule, &roots, &mut |start, end, package, root| {
                edits.push((start, end, format!("ar__o_{root}")));
                read.entry(package.to_string()).or_default().insert(root.to_string());
            });
        }
        let text = replaced(
            source.contents(),
            edits.iter().map(|(start, end, with)| (*start, *end, with.as_str())),
        );
        texts.push((source.file().clone(), text));
    }
    if read.is_empty() {
        return Vec::new();
    }
    for (package, names) in read {
        let mut helpers = format!("package {}\n", package.trim_start_matches("data."));
        for root in names {
            let skeleton = Value::Object(roots[&package][&root].clone());
            helpers.push_str(&format!(
                "default ar__o_{root} := {skeleton}\nar__o_{root} := object.union({skeleton}, {root})\n"
            ));
        }
        texts.push((helper_module_name(&package), helpers));
    }
    texts
}

/// By package (`data.…`), the first names of its rules whose path holds a
/// variable, each with the empty objects the ground parts of those paths
/// imply. A rule like `objs[k] := v` is not one: regorus reads it as OPA
/// does (an empty object).
fn roots(modules: &[Ref<Module>]) -> BTreeMap<String, BTreeMap<String, Map<String, Value>>> {
    let mut roots: BTreeMap<String, BTreeMap<String, Map<String, Value>>> = BTreeMap::new();
    for module in modules {
        for rule in &module.policy {
            let Rule::Spec { head, .. } = rule.as_ref() else {
                continue;
            };
            let (refr, single_value) = match head {
                RuleHead::Compr { refr, .. } => (refr, true),
                RuleHead::Set { refr, .. } => (refr, false),
                RuleHead::Func { .. } => continue,
            };
            let Some((root, ground, keys_after)) = variable_path(refr) else {
                continue;
            };
            if single_value && ground.is_empty() && keys_after == 1 {
                continue;
            }
            let skeleton = roots.entry(package_path(module)).or_default().entry(root).or_default();
            let mut level = skeleton;
            for part in ground {
                level = match level.entry(part).or_insert_with(|| Value::Object(Map::new())) {
                    Value::Object(next) => next,
                    _ => break,
                };
            }
        }
    }
    roots
}

/// A rule head's reference with a variable in its path: its first name,
/// the constant parts between it and the first variable, and how many
/// parts follow from that variable on; `None` when every part is constant.
fn variable_path(refr: &Expr) -> Option<(String, Vec<String>, usize)> {
    let mut parts: Vec<Option<String>> = Vec::new();
    let mut link = refr;
    let root = loop {
        link = match link {
            Expr::RefDot { refr, field, .. } => {
                parts.push(Some(field.0.text().to_string()));
                refr
            }
            Expr::RefBrack { refr, index, .. } => {
                parts.push(match index.as_ref() {
                    Expr::String { span, .. } | Expr::RawString { span, .. } => {
                        Some(span.text().trim_matches(['"', '`']).to_string())
                    }
                    Expr::Number { span, .. } | Expr::Bool { span, .. } => Some(span.text().to_string()),
                    _ => None,
                });
                refr
            }
            Expr::Var { span, .. } => break span.text().to_string(),
            _ => return None,
        };
    };
    parts.reverse();
    let first_variable = parts.iter().position(Option::is_none)?;
    let ground = parts[..first_variable].iter().flatten().cloned().collect();
    Some((root, ground, parts.len() - first_variable))
}

/// Each read in `rule` (of `module`) of such a rule: `visit(start, end,
/// package, name)` with the span to write as the helper's name — a bare
/// name of the module's own package, or the last part of `data.<package>.<name>`.
/// Not the rule's own head, nor a `with` target, nor a name the rule binds
/// as a local (`some`, `:=`, `every`, a function's arguments).
fn reads(
    module: &Module,
    rule: &Ref<Rule>,
    roots: &BTreeMap<String, BTreeMap<String, Map<String, Value>>>,
    visit: &mut dyn FnMut(usize, usize, &str, &str),
) {
    let package = package_path(module);
    let own = roots.get(&package);
    let locals = locals(rule);
    let mut on = |expr: &Expr| match expr {
        Expr::Var { span, .. } => {
            let name = span.text();
            if own.is_some_and(|names| names.contains_key(name)) && !locals.contains(name) {
                visit(span.start as usize, span.end as usize, &package, name);
            }
        }
        Expr::RefDot { refr, field, .. } => {
            let name = field.0.text();
            let Ok(path) = get_path_string(refr, None) else {
                return;
            };
            if roots.get(&path).is_some_and(|names| names.contains_key(name)) {
                visit(field.0.start as usize, field.0.end as usize, &path, name);
            }
        }
        _ => {}
    };
    match rule.as_ref() {
        Rule::Spec { head, bodies, .. } => {
            for term in head_terms(head) {
                walk_expr(term, &mut on);
            }
            for body in bodies {
                if let Some(assign) = &body.assign {
                    walk_expr(&assign.value, &mut on);
                }
                reads_in_query(&body.query, &mut on);
            }
        }
        Rule::Default { value, .. } => walk_expr(value, &mut on),
    }
}

/// The expressions of `query` a read may be in: not its `with` targets.
fn reads_in_query(query: &Query, on: &mut dyn FnMut(&Expr)) {
    for stmt in &query.stmts {
        match &stmt.literal {
            Literal::SomeVars { .. } => {}
            Literal::SomeIn {
                key, value, collection, ..
            } => {
                key.iter().for_each(|key| walk_expr(key, on));
                walk_expr(value, on);
                walk_expr(collection, on);
            }
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => walk_expr(expr, on),
            Literal::Every { domain, query, .. } => {
                walk_expr(domain, on);
                reads_in_query(query, on);
            }
        }
        for with in &stmt.with_mods {
            walk_expr(&with.r#as, on);
        }
    }
}

/// The names `rule` binds as locals anywhere in it: its function's
/// arguments, `some` and `every` variables, the left of `:=`.
fn locals(rule: &Rule) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let vars_of = |expr: &Expr, names: &mut BTreeSet<String>| {
        walk_expr(expr, &mut |e| {
            if let Expr::Var { span, .. } = e {
                names.insert(span.text().to_string());
            }
        })
    };
    if let Rule::Spec {
        head: RuleHead::Func { args, .. },
        ..
    } = rule
    {
        args.iter().for_each(|arg| vars_of(arg, &mut names));
    }
    super::analysis::rule_queries(rule, &mut |query| {
        for stmt in &query.stmts {
            match &stmt.literal {
                Literal::SomeVars { vars, .. } => names.extend(vars.iter().map(|v| v.text().to_string())),
                Literal::SomeIn { key, value, .. } => {
                    key.iter().for_each(|key| vars_of(key, &mut names));
                    vars_of(value, &mut names);
                }
                Literal::Every { key, value, .. } => {
                    names.extend(key.iter().map(|k| k.text().to_string()));
                    names.insert(value.text().to_string());
                }
                Literal::Expr { expr, .. } => {
                    if let Expr::AssignExpr { op, lhs, .. } = expr.as_ref() {
                        if matches!(op, regorus::unstable::AssignOp::ColEq) {
                            vars_of(lhs, &mut names);
                        }
                    }
                }
                Literal::NotExpr { .. } => {}
            }
        }
    });
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(texts: &[(&str, &str)]) -> Vec<Ref<Module>> {
        let mut engine = regorus::Engine::new();
        for (name, text) in texts {
            engine.add_policy(name.to_string(), text.to_string()).unwrap();
        }
        engine.get_modules().clone()
    }

    #[test]
    fn reads_of_a_rule_with_a_variable_in_its_path_go_through_a_helper() {
        let modules = parsed(&[
            (
                "a.rego",
                "package a\nby_sev[s] contains x if { some x in input.xs; s := x.sev }\n\
                 cfg.by_kind[k] := 1 if some k in input.ks\nobjs[k] := 1 if some k in input.ks\n\
                 n := count(by_sev)\nm := cfg.by_kind\no := objs\nlocal := by_sev if { by_sev := 1 }\n\
                 mocked if n with by_sev as {}\n",
            ),
            ("b.rego", "package b\nimport rego.v1\nr := data.a.by_sev\n"),
        ]);
        let texts = rewritten(&modules);
        let text = |name: &str| texts.iter().find(|(n, _)| n == name).unwrap().1.clone();
        let a = text("a.rego");
        assert!(
            a.contains("n := count(ar__o_by_sev)\nm := ar__o_cfg.by_kind\no := objs\n"),
            "{a}"
        );
        // A local of that name, the rule's own head and a `with` target are left.
        assert!(a.contains("local := by_sev if { by_sev := 1 }"), "{a}");
        assert!(a.contains("mocked if n with by_sev as {}"), "{a}");
        assert!(a.starts_with("package a\nby_sev[s] contains x"), "{a}");
        assert!(text("b.rego").contains("r := data.a.ar__o_by_sev"));
        assert_eq!(
            text("<empty objects of data.a>"),
            "package a\ndefault ar__o_by_sev := {}\nar__o_by_sev := object.union({}, by_sev)\n\
             default ar__o_cfg := {\"by_kind\":{}}\nar__o_cfg := object.union({\"by_kind\":{}}, cfg)\n"
        );
    }

    #[test]
    fn nothing_changes_without_such_a_rule_or_a_read_of_one() {
        let plain = parsed(&[(
            "a.rego",
            "package a\nobjs[k] := 1 if some k in input.ks\nn := count(objs)\n",
        )]);
        assert!(rewritten(&plain).is_empty());
        let unread = parsed(&[("a.rego", "package a\nby_sev[s] contains 1 if some s in input.ks\n")]);
        assert!(rewritten(&unread).is_empty());
    }
}
