//! A rule named with a variable right after its first name
//! (`by_sev[s] contains a`, `pairs[s][t] := v`) that derives nothing is
//! an empty object to OPA and undefined to regorus, which runs such rules
//! on its interpreter: `count(by_sev)` was undefined, not 0, and `not
//! by_sev` held. Reads of such a rule — by name in its package, or as
//! `data.<package>.<name>` (also through an import of the package) — are
//! written as a helper rule's, `ar__o_<name>`, which is the rule's value,
//! or `{}` (a default) when nothing is derived. The helpers live in a
//! module of their own per package, so the policies' lines stay where
//! they were. Kept narrow on purpose: a name followed by a constant or
//! that also starts other rules or functions (`cfg.by_kind[k]`), a path
//! with a variable (`data.p[_].by_sev`), an import of the rule itself,
//! and a name a rule binds as a local are left as regorus reads them.

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{Expr, Module, Ref, Rule, RuleHead};

use super::analysis::{head_ref, imported_names, package_path, root_name};
use super::hoist::replaced;

const HELPER_MODULE_PREFIX: &str = "<empty objects of ";

/// The name of a helper module, which no policy file has.
fn helper_module_name(package: &str) -> String {
    format!("{HELPER_MODULE_PREFIX}{package}>")
}

/// The modules' texts (file name, text) with the reads of such rules
/// written as their helpers', and a helper module per package that needs
/// one; empty when there is nothing to write (then nothing changes).
/// Modules compiled again (the interpreter's own rewrite) hold the
/// helpers already: those stay as they are, and none is added twice.
pub(super) fn rewritten(modules: &[Ref<Module>]) -> Vec<(String, String)> {
    let roots = roots(modules);
    if roots.is_empty() {
        return Vec::new();
    }
    let mut helped: BTreeSet<(String, String)> = BTreeSet::new();
    let mut read: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut texts: Vec<(String, String)> = Vec::with_capacity(modules.len() + 1);
    let mut changed = false;
    for module in modules {
        let source = &module.package.span.source;
        let package = package_path(module);
        if source.file().starts_with(HELPER_MODULE_PREFIX) {
            for rule in &module.policy {
                if let Some(name) = rule_root(rule).and_then(|n| n.strip_prefix("ar__o_").map(str::to_string)) {
                    helped.insert((package.clone(), name));
                }
            }
            texts.push((source.file().clone(), source.contents().clone()));
            continue;
        }
        let mut edits: Vec<(usize, usize, String)> = Vec::new();
        // A name an import gives this module is the import's, not the rule's.
        let imported = imported_names(module);
        let own: BTreeSet<String> = roots
            .get(&package)
            .map(|names| names.difference(&imported).cloned().collect())
            .unwrap_or_default();
        let aliases = super::analysis::import_aliases(module);
        for rule in &module.policy {
            for found in reads(rule, (&package, &own), &roots, &aliases) {
                edits.push((found.start, found.end, format!("ar__o_{}", found.name)));
                read.entry(found.package).or_default().insert(found.name);
            }
        }
        changed |= !edits.is_empty();
        let text = replaced(
            source.contents(),
            edits.iter().map(|(start, end, with)| (*start, *end, with.as_str())),
        );
        texts.push((source.file().clone(), text));
    }
    for (package, names) in read {
        let missing: Vec<String> = names
            .into_iter()
            .filter(|name| !helped.contains(&(package.clone(), name.clone())))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let mut helpers = format!("package {}\n", package.trim_start_matches("data."));
        for name in missing {
            helpers.push_str(&format!("default ar__o_{name} := {{}}\nar__o_{name} := {name}\n"));
        }
        // A second helper module of a package is named after its first.
        let mut module_name = helper_module_name(&package);
        while texts.iter().any(|(name, _)| *name == module_name) {
            module_name.push('\'');
        }
        texts.push((module_name, helpers));
        changed = true;
    }
    match changed {
        true => texts,
        false => Vec::new(),
    }
}

/// By package (`data.…`), the first names all of whose rules have a
/// variable right after that name (`by_sev[s] contains a`): not the plain
/// partial object `objs[k] := v`, which regorus reads as OPA does, nor a
/// name that also starts a constant path, a complete rule or a function.
fn roots(modules: &[Ref<Module>]) -> BTreeMap<String, BTreeSet<String>> {
    let mut kinds: BTreeMap<(String, String), bool> = BTreeMap::new();
    for module in modules {
        for rule in &module.policy {
            let Some(name) = rule_root(rule) else { continue };
            let variable_keyed = match rule.as_ref() {
                Rule::Spec { head, .. } => match head {
                    RuleHead::Compr { refr, .. } => variable_right_after_root(refr) && !single_level(refr),
                    RuleHead::Set { refr, .. } => variable_right_after_root(refr),
                    RuleHead::Func { .. } => false,
                },
                Rule::Default { .. } => false,
            };
            let kind = kinds.entry((package_path(module), name.to_string())).or_insert(true);
            *kind &= variable_keyed;
        }
    }
    let mut roots: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((package, name), variable_keyed) in kinds {
        if variable_keyed {
            roots.entry(package).or_default().insert(name);
        }
    }
    roots
}

/// The first name of a rule's head.
fn rule_root(rule: &Rule) -> Option<&str> {
    root_name(head_ref(rule))
}

/// `p[x]…`: the part right after the first name is not a constant.
fn variable_right_after_root(refr: &Expr) -> bool {
    let mut link = refr;
    loop {
        match link {
            Expr::RefBrack { refr, index, .. } => {
                if matches!(refr.as_ref(), Expr::Var { .. }) {
                    return !matches!(
                        index.as_ref(),
                        Expr::String { .. } | Expr::RawString { .. } | Expr::Number { .. } | Expr::Bool { .. }
                    );
                }
                link = refr;
            }
            Expr::RefDot { refr, .. } => {
                if matches!(refr.as_ref(), Expr::Var { .. }) {
                    return false;
                }
                link = refr;
            }
            _ => return false,
        }
    }
}

/// `p[k]`: one part after the first name.
fn single_level(refr: &Expr) -> bool {
    matches!(refr, Expr::RefBrack { refr, .. } if matches!(refr.as_ref(), Expr::Var { .. }))
}

/// A read to write as a helper's: the span of the name, and the rule's
/// package and name.
struct Read {
    start: usize,
    end: usize,
    package: String,
    name: String,
}

/// The reads in `rule` of such rules: a bare name of its own package's
/// (`own`, with the package's path), or `data.<package>.<name>` from any
/// package, also through an import's alias (`matano.by_sev` after `import
/// data.alert.matano`), its path made of names only (`data.p[_].by_sev`
/// is not one). Not the rule's own head, nor a called name, nor anything
/// in a `with` (its target is the rule's, and regorus loses a helper
/// computed for an `as` value once the `with` applies), nor a rule's read
/// of its own name, nor a bare name the rule binds as a local (`some`,
/// `:=`, `every`, a function's arguments).
fn reads(
    rule: &Ref<Rule>,
    (package, own): (&str, &BTreeSet<String>),
    roots: &BTreeMap<String, BTreeSet<String>>,
    aliases: &BTreeMap<String, String>,
) -> Vec<Read> {
    // A rule of this kind reading its own name is a recursion: left to the compiler.
    let itself = rule_root(rule);
    let own: BTreeSet<&String> = own
        .iter()
        .filter(|name| Some(name.as_str()) != itself && !super::analysis::rule_binds(rule, name))
        .collect();
    let mut withs: Vec<(u32, u32)> = Vec::new();
    super::analysis::rule_queries(rule, &mut |query| {
        withs.extend(
            query
                .stmts
                .iter()
                .flat_map(|stmt| &stmt.with_mods)
                .map(|with| (with.span.start, with.span.end)),
        );
    });
    let in_with = |at: u32| withs.iter().any(|(start, end)| (*start..*end).contains(&at));
    let mut found = Vec::new();
    let mut called: BTreeSet<u32> = BTreeSet::new();
    let mut on = |expr: &Expr| match expr {
        Expr::Call { fcn, .. } => {
            called.insert(fcn.span().start);
        }
        Expr::Var { span, .. }
            if !called.contains(&span.start)
                && !in_with(span.start)
                && own.iter().any(|name| name.as_str() == span.text()) =>
        {
            found.push(Read {
                start: span.start as usize,
                end: span.end as usize,
                package: package.to_string(),
                name: span.text().to_string(),
            });
        }
        Expr::RefDot { refr, field, .. } if !in_with(field.0.start) => {
            let name = field.0.text();
            let Some(path) = names_only_path(refr, aliases) else {
                return;
            };
            let itself = path == package && Some(name) == itself;
            if !itself && roots.get(&path).is_some_and(|names| names.contains(name)) {
                found.push(Read {
                    start: field.0.start as usize,
                    end: field.0.end as usize,
                    package: path,
                    name: name.to_string(),
                });
            }
        }
        _ => {}
    };
    super::analysis::walk_values(rule, &mut on);
    found
}

/// The `data.` path of a reference made of names only (`data.a.b`, or
/// `alias.b` through an import), or `None`.
fn names_only_path(expr: &Expr, aliases: &BTreeMap<String, String>) -> Option<String> {
    match expr {
        Expr::Var { span, .. } => match span.text() {
            "data" => Some("data".to_string()),
            name => aliases.get(name).cloned(),
        },
        Expr::RefDot { refr, field, .. } => Some(format!("{}.{}", names_only_path(refr, aliases)?, field.0.text())),
        _ => None,
    }
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

    fn text_of<'a>(texts: &'a [(String, String)], name: &str) -> &'a str {
        &texts.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn reads_of_a_rule_with_a_variable_in_its_path_go_through_a_helper() {
        let modules = parsed(&[
            (
                "a.rego",
                "package a\nby_sev[s] contains x if { some x in input.xs; s := x.sev }\n\
                 pairs[s][t] := 1 if { some s in input.ks; some t in input.ks; count(by_sev) == 0 }\n\
                 objs[k] := 1 if some k in input.ks\ncfg.by_kind[k] := 1 if some k in input.ks\ncfg.limit := 3\n\
                 n := count(by_sev)\nm := [pairs, cfg.by_kind, objs]\nlocal := by_sev if { by_sev := 1 }\n\
                 mocked if n with by_sev as {}\n\
                 extended if n with data.a.by_sev as object.union(by_sev, {\"x\": {1}})\n",
            ),
            (
                "c.rego",
                "package a\nimport data.lib.by_sev\nimported := count(by_sev)\nown := count(pairs)\n",
            ),
            (
                "b.rego",
                "package b\nimport data.a\nr := [data.a.by_sev, a.pairs, data[_].by_sev]\n",
            ),
        ]);
        let texts = rewritten(&modules);
        let a = text_of(&texts, "a.rego");
        // `objs[k] := v` regorus reads as OPA does; `cfg` starts a constant path too.
        assert!(
            a.contains("n := count(ar__o_by_sev)\nm := [ar__o_pairs, cfg.by_kind, objs]\n"),
            "{a}"
        );
        // A local of that name, the rule's own head and a `with` target are left.
        assert!(a.contains("local := by_sev if { by_sev := 1 }"), "{a}");
        assert!(a.contains("mocked if n with by_sev as {}"), "{a}");
        // Nothing in a `with`: regorus would lose a helper computed for its value.
        assert!(a.contains("with data.a.by_sev as object.union(by_sev, "), "{a}");
        // A name an import gives the module is the import's.
        assert_eq!(
            text_of(&texts, "c.rego"),
            "package a\nimport data.lib.by_sev\nimported := count(by_sev)\nown := count(ar__o_pairs)\n"
        );
        assert!(a.starts_with("package a\nby_sev[s] contains x"), "{a}");
        // Another rule of this kind reads it through the helper too.
        assert!(a.contains("some t in input.ks; count(ar__o_by_sev) == 0 }"), "{a}");
        // Through `data.` and an import's alias too; not a path with a variable.
        assert_eq!(
            text_of(&texts, "b.rego"),
            "package b\nimport data.a\nr := [data.a.ar__o_by_sev, a.ar__o_pairs, data[_].by_sev]\n"
        );
        assert_eq!(
            text_of(&texts, "<empty objects of data.a>"),
            "package a\ndefault ar__o_by_sev := {}\nar__o_by_sev := by_sev\n\
             default ar__o_pairs := {}\nar__o_pairs := pairs\n"
        );
    }

    /// The interpreter's rewrite compiles the modules again, helpers
    /// included: they stay as they are (a helper reading itself would be a
    /// cycle), and a name they already serve gets no second helper.
    #[test]
    fn modules_compiled_again_keep_their_helpers_as_they_are() {
        let first = parsed(&[(
            "a.rego",
            "package a\nby_sev[s] contains 1 if some s in input.ks\npairs[s][t] := 1 if { some s in input.ks; some t in input.ks }\nn := count(by_sev)\n",
        )]);
        let texts = rewritten(&first);
        let again: Vec<(&str, &str)> = texts.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
        assert!(rewritten(&parsed(&again)).is_empty());
        // A module kept as written beside the helpers: it reads through
        // them, and the name they lack gets a helper of its own.
        let mut kept = again.clone();
        kept.push(("b.rego", "package a\nm := [by_sev, pairs]\n"));
        let third = rewritten(&parsed(&kept));
        assert_eq!(
            text_of(&third, "b.rego"),
            "package a\nm := [ar__o_by_sev, ar__o_pairs]\n"
        );
        assert_eq!(
            text_of(&third, "<empty objects of data.a>"),
            "package a\ndefault ar__o_by_sev := {}\nar__o_by_sev := by_sev\n"
        );
        assert_eq!(
            text_of(&third, "<empty objects of data.a>'"),
            "package a\ndefault ar__o_pairs := {}\nar__o_pairs := pairs\n"
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
        let function = parsed(&[(
            "a.rego",
            "package a\ncfg.by[k] := 1 if some k in input.ks\ncfg.f(x) := x\nn := cfg.f(count(cfg.by))\n",
        )]);
        assert!(rewritten(&function).is_empty());
    }
}
