//! What the loaded modules say before anything is evaluated: every function
//! call resolved (an unknown one fails init, as in OPA, wherever it is:
//! rule heads and bodies, functions, `else`, comprehensions, `every`, test
//! files, packages no entry point reaches), and which rules could produce
//! conflicting values — the register VM cannot report those, so the entry
//! rules that reach one are evaluated on the interpreter, which does.

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{AssignOp, Expr, Literal, Module, Query, Ref, Rule, RuleBody, RuleHead, BUILTINS};
use regorus::utils::get_path_string;

/// A call to a function neither the policies, nor the engine, nor this
/// host defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UnknownCall {
    pub(super) file: String,
    pub(super) line: u32,
    pub(super) name: String,
}

impl std::fmt::Display for UnknownCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: unknown function {}", self.file, self.line, self.name)?;
        match hint(&self.name) {
            Some(hint) => write!(f, " ({hint})"),
            None => write!(f, " (not a builtin, nor a function of the loaded policies)"),
        }
    }
}

/// Every builtin a policy may call in this build, sorted; `print` and the
/// `escape.*` functions (which come with `import data.escape`) included.
pub fn available_builtins() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = BUILTINS
        .keys()
        .copied()
        .filter(|name| !name.starts_with("__"))
        .collect();
    names.extend(["print", "escape.slack", "escape.markdown"]);
    names.extend(super::host::names());
    names.sort_unstable();
    names.dedup();
    names
}

/// Why a name is not available, where something better than "unknown" can be said.
fn hint(name: &str) -> Option<String> {
    const IO: &[&str] = &["http.send", "net.lookup_ip_addr", "opa.runtime", "trace", "test.sleep"];
    const NOT_IN_ENGINE: &[&str] = &[
        "crypto.",
        "io.jwt.",
        "graphql.",
        "providers.",
        "rego.",
        "net.cidr_overlap",
        "strings.render_template",
        "regex.globs_match",
    ];
    if IO.contains(&name) {
        return Some(
            "it does I/O, which policies do not: policies decide, actions act — ask for an `http.fetch` \
             action and read its result from input.called in the next round"
                .to_string(),
        );
    }
    if ["escape.slack", "escape.markdown"].contains(&name) {
        return Some("add `import data.escape` to the module: the escape functions come with it".to_string());
    }
    if ["json.match_schema", "json.verify_schema"].contains(&name) && !cfg!(feature = "policy-jsonschema") {
        return Some("not in this build: rebuild with `--features policy-jsonschema`".to_string());
    }
    if NOT_IN_ENGINE.iter().any(|prefix| name.starts_with(prefix)) {
        return Some("an OPA builtin neither the policy engine (regorus) nor this host implements".to_string());
    }
    None
}

/// A rule the VM cannot be trusted with, and why: its definitions could
/// disagree on a value, or the VM evaluates its shape unlike OPA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ConflictRisk {
    /// `data.<package>.<rule>`.
    pub(super) path: String,
    pub(super) file: String,
    pub(super) line: u32,
    pub(super) why: &'static str,
}

impl std::fmt::Display for ConflictRisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}:{}) {}", self.path, self.file, self.line, self.why)
    }
}

/// Every call of every module that resolves to nothing; `extensions` are
/// the functions the host registers.
pub(super) fn unknown_calls(modules: &[Ref<Module>], extensions: &[&str]) -> Vec<UnknownCall> {
    let functions: BTreeSet<String> = user_functions(modules);
    let mut unknown = Vec::new();
    for module in modules {
        let package = package_path(module);
        let imports = import_aliases(module);
        for rule in &module.policy {
            walk_rule(rule, &mut |expr| {
                let Expr::Call { fcn, span, .. } = expr else {
                    return;
                };
                let Ok(name) = get_path_string(fcn, None) else {
                    return;
                };
                let known = name == "print"
                    || BUILTINS.contains_key(name.as_str())
                    || extensions.contains(&name.as_str())
                    || candidates(&name, &package, &imports).any(|path| functions.contains(&path));
                if !known {
                    unknown.push(UnknownCall {
                        file: span.source.file().to_string(),
                        line: span.line,
                        name,
                    });
                }
            });
        }
    }
    unknown.sort_by(|a, b| (&a.file, a.line, &a.name).cmp(&(&b.file, b.line, &b.name)));
    unknown.dedup();
    unknown
}

/// Calls of the host's functions (`extensions`), by package path: the VM
/// compiler takes none, so the entry rules reaching one run on the
/// interpreter.
pub(super) fn extension_calls(modules: &[Ref<Module>], extensions: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut calls: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for module in modules {
        let package = package_path(module);
        for rule in &module.policy {
            walk_rule(rule, &mut |expr| {
                let Expr::Call { fcn, span, .. } = expr else {
                    return;
                };
                match get_path_string(fcn, None) {
                    Ok(name) if extensions.contains(&name.as_str()) => calls
                        .entry(package.clone())
                        .or_default()
                        .push(format!("{name} ({}:{})", span.source.file(), span.line)),
                    _ => {}
                }
            });
        }
    }
    calls
}

/// Misuses of the host's functions (`functions`: name and arity), each
/// named with its file and line: a call with another number of arguments
/// (the interpreter would fail every evaluation of it), and a `with` that
/// replaces one (regorus's interpreter cannot; OPA's builtins it can).
/// Any mention that is not a call is in a `with`: regorus refuses one in
/// its value itself.
pub(super) fn extension_misuses(modules: &[Ref<Module>], functions: &[(&str, u8)]) -> Vec<String> {
    let first_segments: BTreeSet<&str> = functions
        .iter()
        .filter_map(|(name, _)| name.split('.').next())
        .collect();
    let mut errors = Vec::new();
    for module in modules {
        // Where each call's function name stands, and every mention of a name.
        let mut called = BTreeSet::new();
        let mut mentioned = Vec::new();
        for rule in &module.policy {
            walk_rule(rule, &mut |expr| match expr {
                Expr::Call { fcn, span, params, .. } => {
                    called.insert(fcn.span().start);
                    let Ok(name) = get_path_string(fcn, None) else {
                        return;
                    };
                    let Some(&(_, arity)) = functions.iter().find(|(function, _)| *function == name) else {
                        return;
                    };
                    if params.len() != usize::from(arity) {
                        errors.push(format!(
                            "{}:{}: {name} takes {arity} argument(s), given {} (for its value, write `v := {name}(...)`)",
                            span.source.file(),
                            span.line,
                            params.len()
                        ));
                    }
                }
                // A name starts with its function's first segment: most
                // references (`input.…`) are passed by without their path.
                Expr::Var { span, .. } | Expr::RefDot { span, .. }
                    if root_name(expr).is_some_and(|root| first_segments.contains(root)) =>
                {
                    match get_path_string(expr, None) {
                        Ok(name) if functions.iter().any(|(function, _)| *function == name) => {
                            mentioned.push((span.start, span.source.file().to_string(), span.line, name));
                        }
                        _ => {}
                    }
                }
                _ => {}
            });
        }
        for (start, file, line, name) in mentioned {
            if !called.contains(&start) {
                errors.push(format!(
                    "{file}:{line}: `with` cannot replace {name}: it is a function of this host, not of the policy engine"
                ));
            }
        }
    }
    errors.sort();
    errors.dedup();
    errors
}

/// Calls of the policies' own functions with a number of arguments their
/// definitions do not take, each named with its file and line, as OPA's
/// type checker refuses them (`function data.p.f has arity 2, got 1
/// argument`); regorus made such a call undefined, so a typo in a call
/// silently turned a condition off. One argument more is the call's
/// output (`f(x, y)` binds `y`), as OPA allows.
pub(super) fn function_arity_misuses(modules: &[Ref<Module>]) -> Vec<String> {
    let arities = function_arities(modules);
    let mut errors = Vec::new();
    for module in modules {
        let package = package_path(module);
        let imports = import_aliases(module);
        for rule in &module.policy {
            walk_rule(rule, &mut |expr| {
                let Expr::Call { fcn, span, params, .. } = expr else {
                    return;
                };
                let Ok(name) = get_path_string(fcn, None) else {
                    return;
                };
                let path = match data_path(&name, &imports) {
                    Some(path) => path,
                    None => format!("{package}.{name}"),
                };
                let Some(taken) = arities.get(&path) else {
                    return;
                };
                let given = params.len();
                if taken.iter().any(|&arity| given == arity || given == arity + 1) {
                    return;
                }
                let arity = taken.iter().next().copied().unwrap_or_default();
                errors.push(format!(
                    "{}:{}: function {path} has arity {arity}, got {given} argument{}",
                    span.source.file(),
                    span.line,
                    if given == 1 { "" } else { "s" }
                ));
            });
        }
    }
    errors.sort();
    errors.dedup();
    errors
}

/// Rules that could produce conflicting values, by package path
/// (`data.<package>`).
pub(super) fn conflict_risks(modules: &[Ref<Module>]) -> BTreeMap<String, Vec<ConflictRisk>> {
    // Definitions per rule path, with the module's package.
    let mut definitions: BTreeMap<String, (String, Vec<&Rule>)> = BTreeMap::new();
    for module in modules {
        let package = package_path(module);
        for rule in &module.policy {
            let Rule::Spec { head, .. } = rule.as_ref() else {
                continue;
            };
            let refr = match head {
                RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } | RuleHead::Func { refr, .. } => refr,
            };
            let Ok(name) = get_path_string(refr, Some(&package)) else {
                continue;
            };
            definitions
                .entry(name)
                .or_insert_with(|| (package.clone(), Vec::new()))
                .1
                .push(rule.as_ref());
        }
    }
    let mut risks: BTreeMap<String, Vec<ConflictRisk>> = BTreeMap::new();
    for (path, (package, rules)) in definitions {
        if let Some(why) = conflict_reason(&rules) {
            let span = rules[0].span();
            risks.entry(package).or_default().push(ConflictRisk {
                path,
                file: span.source.file().to_string(),
                line: span.line,
                why,
            });
        }
    }
    risks
}

/// Rules regorus's VM evaluates unlike OPA, by package path: one named by
/// a path of several parts (`cfg.max := 10`, `by_sev[s] contains x`) reads
/// wrong through its prefix (`cfg` undefined, `by_sev` one flat set), and a
/// default function (`default f(_) := false`) is ignored. The interpreter
/// evaluates both as OPA does.
pub(super) fn vm_shape_risks(modules: &[Ref<Module>]) -> BTreeMap<String, Vec<ConflictRisk>> {
    let mut risks: BTreeMap<String, Vec<ConflictRisk>> = BTreeMap::new();
    let known: BTreeSet<String> = modules.iter().map(|m| package_path(m)).collect();
    for module in modules {
        let package = package_path(module);
        let imports = import_aliases(module);
        for rule in &module.policy {
            let why = match rule.as_ref() {
                _ if reads_a_package_whole(rule, &known, &imports) => {
                    "reads a package as a whole (the VM keeps its undefined rules as keys)"
                }
                // `x contains v if { some x; … }`: the VM read the local as
                // the rule itself and recursed until the stack overflowed.
                _ if root_name(head_ref(rule)).is_some_and(|name| rule_declares(rule, name)) => {
                    "declares a local named like itself"
                }
                Rule::Default { args, .. } if !args.is_empty() => "is a default function",
                Rule::Default { refr, .. } if head_depth(refr) > 0 => "is named by a path of several parts",
                Rule::Spec {
                    head: RuleHead::Set { refr, .. },
                    ..
                } if head_depth(refr) > 0 => "is named by a path of several parts",
                // `p[k] := v` (depth 1, a variable key) is a partial object
                // rule, which the VM takes.
                Rule::Spec {
                    head: RuleHead::Compr { refr, .. },
                    ..
                } if head_depth(refr) > 1 || (head_depth(refr) == 1 && !is_partial_object(refr)) => {
                    "is named by a path of several parts"
                }
                Rule::Spec { head, bodies, .. } if head_comprehension_reads_body(head, bodies) => {
                    "reads a variable of its body in a comprehension of its head"
                }
                _ => continue,
            };
            let refr = head_ref(rule);
            let span = rule.span();
            risks.entry(package.clone()).or_default().push(ConflictRisk {
                path: format!("{package}.{}", refr.span().text()),
                file: span.source.file().to_string(),
                line: span.line,
                why,
            });
        }
    }
    risks
}

/// Whether `rule` reads a package (or a path above packages) as one
/// object, `data.lib.ctx` whole: regorus's VM gave it a key for each of
/// its rules, undefined ones too (`count` one more, `json.marshal`
/// undefined), where OPA leaves those out.
fn reads_a_package_whole(rule: &Rule, known: &BTreeSet<String>, imports: &BTreeMap<String, String>) -> bool {
    let mut whole = false;
    walk_reads(rule, imports, &mut |_, path| {
        whole |= path.is_some_and(|path| {
            known
                .iter()
                .any(|package| *package == path || package.starts_with(&format!("{path}.")))
        });
    });
    whole
}

/// Each reference chain `rule`'s values read, outermost only (`data.a.b`,
/// not `data.a` again), with the `data.` path it names when it starts at
/// `data` or an import and its path is constant; `None` for a local or
/// `input` chain, and for one with a variable step (`data.p[x].r`), whose
/// constant inner part (`data.p`) is then given on its own.
pub(super) fn walk_reads(
    rule: &Rule,
    imports: &BTreeMap<String, String>,
    visit: &mut dyn FnMut(&Expr, Option<String>),
) {
    // The chain last given: its inner parts share its start.
    let mut given: Option<(u32, u32)> = None;
    walk_values(rule, &mut |expr| {
        if !matches!(expr, Expr::RefDot { .. } | Expr::RefBrack { .. } | Expr::Var { .. }) {
            return;
        }
        let span = expr.span();
        if given.is_some_and(|(start, end)| start == span.start && span.end <= end) {
            return;
        }
        let Some(root) = root_name(expr) else {
            return;
        };
        let through_data = root == "data" || imports.contains_key(root);
        let path = match through_data {
            true => get_path_string(expr, None)
                .ok()
                .and_then(|path| data_path(&path, imports)),
            false => None,
        };
        if path.is_some() || !through_data {
            given = Some((span.start, span.end));
        }
        visit(expr, path);
    });
}

/// Whether a comprehension in the head (its value or element, the keys of
/// its reference, an `else` value) reads a variable a body binds:
/// `r := [v | some v in [x]] if { x := input.i * 2 }` is undefined in OPA
/// when `x` is, where the VM made it `[]`. Bound: by `some` or `every`, on
/// the left of `:=`, on either side of `=`, or as a reference's key
/// (`input.m[k]`); a function's name in a call is not a variable.
fn head_comprehension_reads_body(head: &RuleHead, bodies: &[RuleBody]) -> bool {
    let mut terms = head_terms(head);
    terms.extend(
        bodies
            .iter()
            .filter_map(|body| body.assign.as_ref().map(|a| a.value.as_ref())),
    );
    let mut read: BTreeSet<String> = BTreeSet::new();
    for term in terms {
        walk_expr(term, &mut |expr| {
            if let Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. } = expr {
                variables(expr, &mut read);
            }
        });
    }
    read.remove("_");
    if read.is_empty() {
        return false;
    }
    let mut bound: BTreeSet<String> = BTreeSet::new();
    for body in bodies {
        for stmt in &body.query.stmts {
            let Literal::Expr { expr, .. } = &stmt.literal else {
                continue;
            };
            if let Expr::AssignExpr { op, lhs, rhs, .. } = expr.as_ref() {
                variables(lhs, &mut bound);
                if matches!(op, AssignOp::Eq) {
                    variables(rhs, &mut bound);
                }
            }
        }
        walk_query(&body.query, &mut |expr| {
            if let Expr::RefBrack { index, .. } = expr {
                if let Expr::Var { span, .. } = index.as_ref() {
                    bound.insert(span.text().to_string());
                }
            }
        });
        if read.iter().any(|name| {
            let mut declared = false;
            each_query(&body.query, &mut |query| declared |= query_binds(query, name));
            declared
        }) {
            return true;
        }
    }
    read.iter().any(|name| bound.contains(name))
}

/// The expressions of a rule's head its body's variables reach: its value
/// or set element, and the keys in its reference (`by_ip[ip]`); not its
/// name or a function's arguments.
pub(super) fn head_terms(head: &RuleHead) -> Vec<&Expr> {
    let (refr, value) = match head {
        RuleHead::Compr { refr, assign, .. } => (Some(refr), assign.as_ref().map(|a| &a.value)),
        RuleHead::Set { refr, key, .. } => (Some(refr), key.as_ref()),
        RuleHead::Func { assign, .. } => (None, assign.as_ref().map(|a| &a.value)),
    };
    let mut terms: Vec<&Expr> = value.map(|value| value.as_ref()).into_iter().collect();
    let mut link = refr.map(|refr| refr.as_ref());
    while let Some(expr) = link {
        link = match expr {
            Expr::RefBrack { refr, index, .. } => {
                terms.push(index);
                Some(refr)
            }
            Expr::RefDot { refr, .. } => Some(refr),
            _ => None,
        };
    }
    terms
}

/// The reference a rule is named by: `p`, `by_sev[s]`, `cfg.max`, `f`.
pub(super) fn head_ref(rule: &Rule) -> &Expr {
    match rule {
        Rule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } | RuleHead::Func { refr, .. } => refr,
        },
        Rule::Default { refr, .. } => refr,
    }
}

/// The names a module's imports give it: each alias, or the last part of
/// the imported path (`by_sev` of `import data.p.by_sev`).
pub(super) fn imported_names(module: &Module) -> BTreeSet<String> {
    module
        .imports
        .iter()
        .map(|import| match &import.r#as {
            Some(alias) => alias.text().to_string(),
            None => match import.refr.as_ref() {
                Expr::RefDot { field, .. } => field.0.text().to_string(),
                other => other.span().text().to_string(),
            },
        })
        .collect()
}

/// Every expression of `rule` a value is read in, each once: its head's
/// terms (`head_terms`), its bodies with their values, a default's value;
/// not its name or a function's arguments.
pub(super) fn walk_values(rule: &Rule, visit: &mut dyn FnMut(&Expr)) {
    match rule {
        Rule::Spec { head, bodies, .. } => {
            for term in head_terms(head) {
                walk_expr(term, visit);
            }
            for body in bodies {
                if let Some(assign) = &body.assign {
                    walk_expr(&assign.value, visit);
                }
                walk_query(&body.query, visit);
            }
        }
        Rule::Default { value, .. } => walk_expr(value, visit),
    }
}

/// The variables `expr` names, but for `input`, `data` and a function's
/// name in a call (`sprintf`, the `object` of `object.get`).
fn variables(expr: &Expr, out: &mut BTreeSet<String>) {
    let mut called: BTreeSet<u32> = BTreeSet::new();
    let mut named: Vec<(u32, String)> = Vec::new();
    walk_expr(expr, &mut |expr| match expr {
        Expr::Call { fcn, .. } => {
            called.insert(fcn.span().start);
        }
        Expr::Var { span, .. } if !matches!(span.text(), "input" | "data") => {
            named.push((span.start, span.text().to_string()))
        }
        _ => {}
    });
    out.extend(
        named
            .into_iter()
            .filter(|(start, _)| !called.contains(start))
            .map(|(_, name)| name),
    );
}

/// How many parts follow a rule head's first name: 0 for `p`, 1 for
/// `p[k]` and `p.q`, 2 for `p.q[k]`.
fn head_depth(refr: &Expr) -> usize {
    match refr {
        Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => 1 + head_depth(refr),
        _ => 0,
    }
}

/// The packages `package` may read (itself, and those its modules name
/// through `data.` references or imports), transitively.
pub(super) fn reachable_packages(modules: &[Ref<Module>], package: &str) -> BTreeSet<String> {
    let known: BTreeSet<String> = modules.iter().map(|m| package_path(m)).collect();
    let mut reached = BTreeSet::from([package.to_string()]);
    let mut pending = vec![package.to_string()];
    while let Some(current) = pending.pop() {
        for module in modules.iter().filter(|m| package_path(m) == current) {
            let imports = import_aliases(module);
            let mut named: BTreeSet<String> = imports.values().cloned().collect();
            for rule in &module.policy {
                walk_rule(rule, &mut |expr| {
                    if !matches!(expr, Expr::RefDot { .. } | Expr::Var { .. }) {
                        return;
                    }
                    // Only `data.…` and imported names reach a package: the
                    // others (`input.…`, locals) are passed by without their path.
                    if !root_name(expr).is_some_and(|root| root == "data" || imports.contains_key(root)) {
                        return;
                    }
                    if let Ok(path) = get_path_string(expr, None) {
                        named.extend(data_path(&path, &imports));
                    }
                });
            }
            for path in named {
                for found in packages_named(&known, &path) {
                    if reached.insert(found.clone()) {
                        pending.push(found.clone());
                    }
                }
            }
        }
    }
    reached
}

/// Every `data.` path the modules read (through imports too), with the
/// file and line of a place that reads it.
pub(super) fn data_paths_read(modules: &[Ref<Module>]) -> BTreeMap<String, (String, u32)> {
    let mut read = BTreeMap::new();
    for module in modules {
        let imports = import_aliases(module);
        for rule in &module.policy {
            walk_rule(rule, &mut |expr| {
                if !matches!(expr, Expr::RefDot { .. } | Expr::RefBrack { .. } | Expr::Var { .. }) {
                    return;
                }
                if !root_name(expr).is_some_and(|root| root == "data" || imports.contains_key(root)) {
                    return;
                }
                if let Some(path) = get_path_string(expr, None).ok().and_then(|p| data_path(&p, &imports)) {
                    let span = expr.span();
                    read.entry(path)
                        .or_insert_with(|| (span.source.file().to_string(), span.line));
                }
            });
        }
    }
    read
}

/// Every use of an import's alias in a module's rules (`cfg` of `cfg.level`
/// after `import data.lib.cfg`), as the byte range of the name and the path
/// it stands for.
pub(super) fn import_alias_uses(module: &Module) -> Vec<(usize, usize, String)> {
    let imports = import_aliases(module);
    if imports.is_empty() {
        return Vec::new();
    }
    let mut uses = Vec::new();
    for rule in &module.policy {
        // A rule that binds the alias's name locally (a function argument,
        // `:=`, `some`, `every`) means its local there: left as written.
        let shadowed: BTreeSet<&String> = imports.keys().filter(|alias| rule_binds(rule, alias)).collect();
        walk_rule(rule, &mut |expr| {
            if let Expr::Var { span, .. } = expr {
                if let Some(path) = imports
                    .get(span.text())
                    .filter(|_| !shadowed.contains(&span.text().to_string()))
                {
                    uses.push((span.start as usize, span.end as usize, path.clone()));
                }
            }
        });
    }
    uses.sort();
    uses.dedup();
    uses
}

/// The `with` targets of a module that start from a rule of its package
/// (`with threshold as 1`, among `rules`) or from an import's alias
/// (`with cfg.level as 3`) instead of `data`: OPA resolves them as any
/// reference, regorus reports an undefined rule. As the byte range of the
/// name and the path it stands for.
pub(super) fn short_with_targets(module: &Module, rules: &BTreeSet<String>) -> Vec<(usize, usize, String)> {
    let package = package_path(module);
    let imports = import_aliases(module);
    let mut targets = Vec::new();
    let mut visit = |query: &Query| {
        for with in query.stmts.iter().flat_map(|stmt| &stmt.with_mods) {
            let mut root = with.refr.as_ref();
            while let Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } = root {
                root = refr;
            }
            let Expr::Var { span, .. } = root else { continue };
            let name = span.text();
            let path = match imports.get(name) {
                Some(path) => path.clone(),
                None if rules.contains(name) && !matches!(name, "input" | "data") => format!("{package}.{name}"),
                None => continue,
            };
            targets.push((span.start as usize, span.end as usize, path));
        }
    };
    for rule in &module.policy {
        rule_queries(rule, &mut visit);
    }
    targets.sort();
    targets.dedup();
    targets
}

/// By package, the names its value rules start with (`threshold`, `cfg` of
/// `cfg.max := 10`): not its functions, which `with` already finds by name.
pub(super) fn value_rule_names(modules: &[Ref<Module>]) -> BTreeMap<String, BTreeSet<String>> {
    names_by_kind(modules, false)
}

/// By package, the functions it defines by a one-part name (`f` of
/// `f(x) := …`).
pub(super) fn function_names(modules: &[Ref<Module>]) -> BTreeMap<String, BTreeSet<String>> {
    names_by_kind(modules, true)
}

/// By package, the first names of its functions or of its value rules.
fn names_by_kind(modules: &[Ref<Module>], functions: bool) -> BTreeMap<String, BTreeSet<String>> {
    let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for module in modules {
        let package = names.entry(package_path(module)).or_default();
        for rule in &module.policy {
            let (refr, function) = match rule.as_ref() {
                Rule::Spec { head, .. } => match head {
                    RuleHead::Func { refr, .. } => (refr, true),
                    RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } => (refr, false),
                },
                Rule::Default { refr, args, .. } => (refr, !args.is_empty()),
            };
            match (function, functions) {
                (true, true) => {
                    if let Expr::Var { span, .. } = refr.as_ref() {
                        package.insert(span.text().to_string());
                    }
                }
                (false, false) => package.extend(root_name(refr).map(str::to_string)),
                _ => {}
            }
        }
    }
    names
}

/// The calls of a module to a function of its own package by its short
/// name (`f(x)`), and the `with` targets naming one so (`with f as g`),
/// as the byte range of the name and the function's path. regorus's `with
/// data.pkg.f as g` reaches only calls written in full, and `with f as g`
/// only calls written short, where OPA's reaches both: tests see both
/// written in full.
pub(super) fn short_function_refs(module: &Module, functions: &BTreeSet<String>) -> Vec<(usize, usize, String)> {
    let package = package_path(module);
    let mut refs = Vec::new();
    let named = |span: &regorus::unstable::Span, refs: &mut Vec<(usize, usize, String)>| {
        if functions.contains(span.text()) {
            refs.push((
                span.start as usize,
                span.end as usize,
                format!("{package}.{}", span.text()),
            ));
        }
    };
    for rule in &module.policy {
        walk_rule(rule, &mut |expr| {
            if let Expr::Call { fcn, .. } = expr {
                if let Expr::Var { span, .. } = fcn.as_ref() {
                    named(span, &mut refs);
                }
            }
        });
        rule_queries(rule, &mut |query| {
            for with in query.stmts.iter().flat_map(|stmt| &stmt.with_mods) {
                if let Expr::Var { span, .. } = with.refr.as_ref() {
                    named(span, &mut refs);
                }
            }
        });
    }
    refs.sort();
    refs.dedup();
    refs
}

/// Every query of `rule`, each once: its bodies', its comprehensions'
/// (heads too) and its `every`s'.
pub(super) fn rule_queries(rule: &Rule, visit: &mut dyn FnMut(&Query)) {
    if let Rule::Spec { bodies, .. } = rule {
        for body in bodies {
            each_query(&body.query, visit);
        }
    }
    walk_rule(rule, &mut |expr| {
        if let Expr::ArrayCompr { query, .. } | Expr::SetCompr { query, .. } | Expr::ObjectCompr { query, .. } = expr {
            each_query(query, visit);
        }
    });
}

/// The lines of a module's expressions as coverage counts them: rule
/// values and bodies, `default` values (not heads' names or arguments).
pub(super) fn expression_lines(module: &Module) -> BTreeSet<u32> {
    let mut lines = BTreeSet::new();
    let mut expr_lines = |expr: &Expr| {
        walk_expr(expr, &mut |e| {
            lines.insert(e.span().line);
        })
    };
    for rule in &module.policy {
        match rule.as_ref() {
            Rule::Spec { head, bodies, .. } => {
                let value = match head {
                    RuleHead::Compr { assign, .. } | RuleHead::Func { assign, .. } => {
                        assign.as_ref().map(|assign| &assign.value)
                    }
                    RuleHead::Set { key, .. } => key.as_ref(),
                };
                if let Some(value) = value {
                    expr_lines(value);
                }
                for body in bodies {
                    walk_query(&body.query, &mut |e| expr_lines(e));
                }
            }
            Rule::Default { value, .. } => expr_lines(value),
        }
    }
    lines
}

/// `query` and the `every` queries inside it (not its comprehensions').
fn each_query(query: &Query, visit: &mut dyn FnMut(&Query)) {
    visit(query);
    for stmt in &query.stmts {
        if let Literal::Every { query, .. } = &stmt.literal {
            each_query(query, visit);
        }
    }
}

/// Whether `rule` binds `name` as a local: a function argument, the left
/// of `:=` or `=`, or a `some` or `every` variable, in any of its queries.
pub(super) fn rule_binds(rule: &Rule, name: &str) -> bool {
    binds(rule, name, true)
}

/// [`rule_binds`] but for `=`: in Rego a name of a rule on either side of a
/// unification is the rule (`a = 1` in `a`'s own body reads `a`).
pub(super) fn rule_declares(rule: &Rule, name: &str) -> bool {
    binds(rule, name, false)
}

fn binds(rule: &Rule, name: &str, unification: bool) -> bool {
    let names = |expr: &Expr| {
        let mut found = false;
        walk_expr(expr, &mut |e| {
            if matches!(e, Expr::Var { span, .. } if span.text() == name) {
                found = true;
            }
        });
        found
    };
    let arguments: &[Ref<Expr>] = match rule {
        Rule::Spec {
            head: RuleHead::Func { args, .. },
            ..
        }
        | Rule::Default { args, .. } => args,
        _ => &[],
    };
    if arguments.iter().any(|arg| names(arg)) {
        return true;
    }
    let mut bound = false;
    walk_rule(rule, &mut |expr| match expr {
        Expr::AssignExpr { op, lhs, .. } if names(lhs) && (unification || matches!(op, AssignOp::ColEq)) => {
            bound = true
        }
        Expr::ArrayCompr { query, .. } | Expr::SetCompr { query, .. } | Expr::ObjectCompr { query, .. }
            if query_binds(query, name) =>
        {
            bound = true
        }
        _ => {}
    });
    if let Rule::Spec { bodies, .. } = rule {
        bound |= bodies.iter().any(|body| query_binds(&body.query, name));
    }
    bound
}

/// Whether a query declares `name` with `some` or `every` (nested `every`
/// bodies included).
fn query_binds(query: &Query, name: &str) -> bool {
    let is = |expr: &Expr| matches!(expr, Expr::Var { span, .. } if span.text() == name);
    query.stmts.iter().any(|stmt| match &stmt.literal {
        Literal::SomeVars { vars, .. } => vars.iter().any(|var| var.text() == name),
        Literal::SomeIn { key, value, .. } => key.as_deref().is_some_and(is) || is(value),
        Literal::Every { key, value, query, .. } => {
            key.as_ref().is_some_and(|key| key.text() == name) || value.text() == name || query_binds(query, name)
        }
        Literal::Expr { .. } | Literal::NotExpr { .. } => false,
    })
}

/// The `data.` path a reference names: itself, or through an import's
/// alias (`lib.util.f` after `import data.lib`).
fn data_path(path: &str, imports: &BTreeMap<String, String>) -> Option<String> {
    if path.starts_with("data.") || path == "data" {
        return Some(path.to_string());
    }
    let (first, rest) = path.split_once('.').unwrap_or((path, ""));
    let imported = imports.get(first)?;
    Some(match rest {
        "" => imported.clone(),
        rest => format!("{imported}.{rest}"),
    })
}

/// The packages a `data.` path may read: the longest known package it lies
/// in, and every package under it (`data.checks[name].deny` reads each
/// package of `data.checks`).
fn packages_named<'a>(known: &'a BTreeSet<String>, path: &str) -> Vec<&'a String> {
    let enclosing = known
        .iter()
        .filter(|p| path == p.as_str() || path.starts_with(&format!("{p}.")))
        .max_by_key(|p| p.len());
    let under = known.iter().filter(|p| p.starts_with(&format!("{path}.")));
    enclosing.into_iter().chain(under).collect()
}

/// Why a rule's definitions could disagree, or `None` when they cannot.
fn conflict_reason(rules: &[&Rule]) -> Option<&'static str> {
    let heads: Vec<&RuleHead> = rules
        .iter()
        .filter_map(|rule| match rule {
            Rule::Spec { head, .. } => Some(head),
            Rule::Default { .. } => None,
        })
        .collect();
    let values: Vec<Option<&Expr>> = rules.iter().flat_map(|rule| value_exprs(rule)).collect();
    let constant = values.windows(2).all(|w| same_constant(w[0], w[1])) && values.iter().all(|v| is_constant(*v));
    match heads.first()? {
        RuleHead::Set { .. } => None,
        RuleHead::Compr { refr, .. } if is_partial_object(refr) => (!constant).then_some("is a partial object rule"),
        RuleHead::Func { .. } => {
            if constant || (heads.len() > 1 && args_disjoint(&heads)) {
                None
            } else if heads.len() > 1 {
                Some("is a function with several definitions")
            } else if iterates(rules) {
                Some("is a function whose body iterates")
            } else {
                None
            }
        }
        RuleHead::Compr { .. } => {
            if constant {
                None
            } else if heads.len() > 1 {
                Some("is a complete rule with several definitions")
            } else if iterates(rules) {
                Some("is a complete rule whose body iterates")
            } else {
                None
            }
        }
    }
}

/// The value each body of a rule yields (`None`: `true`, the value of a
/// rule with no `:=`).
fn value_exprs(rule: &Rule) -> Vec<Option<&Expr>> {
    match rule {
        Rule::Default { .. } => Vec::new(),
        Rule::Spec { head, bodies, .. } => {
            let head_value = match head {
                RuleHead::Compr { assign, .. } | RuleHead::Func { assign, .. } => {
                    assign.as_ref().map(|a| a.value.as_ref())
                }
                RuleHead::Set { .. } => None,
            };
            let mut values = vec![head_value];
            values.extend(
                bodies
                    .iter()
                    .filter_map(|body| body.assign.as_ref().map(|a| Some(a.value.as_ref()))),
            );
            values
        }
    }
}

pub(super) fn is_constant(value: Option<&Expr>) -> bool {
    match value {
        None => true,
        Some(expr) => matches!(
            expr,
            Expr::String { .. } | Expr::RawString { .. } | Expr::Number { .. } | Expr::Bool { .. } | Expr::Null { .. }
        ),
    }
}

fn same_constant(a: Option<&Expr>, b: Option<&Expr>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => is_constant(Some(a)) && is_constant(Some(b)) && a.span().text() == b.span().text(),
        (None, Some(b)) => matches!(b, Expr::Bool { .. }) && b.span().text() == "true",
        (Some(a), None) => matches!(a, Expr::Bool { .. }) && a.span().text() == "true",
    }
}

/// `obj[key] := value`: a rule path ending in a bracket with a variable.
fn is_partial_object(refr: &Expr) -> bool {
    matches!(refr, Expr::RefBrack { index, .. } if !is_constant(Some(index.as_ref())))
}

/// Every pair of definitions differs in some argument position by two
/// different constants: no input matches two of them.
fn args_disjoint(heads: &[&RuleHead]) -> bool {
    let args: Vec<&Vec<Ref<Expr>>> = heads
        .iter()
        .filter_map(|head| match head {
            RuleHead::Func { args, .. } => Some(args),
            _ => None,
        })
        .collect();
    args.iter().enumerate().all(|(i, a)| {
        args[i + 1..].iter().all(|b| {
            a.iter()
                .zip(b.iter())
                .any(|(x, y)| is_constant(Some(x)) && is_constant(Some(y)) && x.span().text() != y.span().text())
        })
    })
}

/// Whether any body may succeed more than once: it iterates (`some`, a
/// bracket with a variable).
fn iterates(rules: &[&Rule]) -> bool {
    let mut found = false;
    for rule in rules {
        let Rule::Spec { bodies, .. } = rule else {
            continue;
        };
        for body in bodies {
            for stmt in &body.query.stmts {
                if matches!(stmt.literal, Literal::SomeIn { .. } | Literal::SomeVars { .. }) {
                    found = true;
                }
            }
            walk_query(&body.query, &mut |expr| {
                if let Expr::RefBrack { index, .. } = expr {
                    if matches!(index.as_ref(), Expr::Var { .. }) {
                        found = true;
                    }
                }
            });
        }
    }
    found
}

/// The paths a call may name: as written when it starts with `data.`, in
/// the module's package, or through an import alias.
fn candidates<'a>(
    name: &'a str,
    package: &'a str,
    imports: &'a BTreeMap<String, String>,
) -> impl Iterator<Item = String> + 'a {
    let absolute = name.starts_with("data.").then(|| name.to_string());
    let local = Some(format!("{package}.{name}"));
    let imported = name
        .split_once('.')
        .and_then(|(first, rest)| imports.get(first).map(|path| format!("{path}.{rest}")));
    let whole_import = imports.get(name).cloned();
    [absolute, local, imported, whole_import].into_iter().flatten()
}

fn user_functions(modules: &[Ref<Module>]) -> BTreeSet<String> {
    function_arities(modules).into_keys().collect()
}

/// The policies' own functions by path, with the numbers of arguments their
/// definitions take (`default f(_) := v` defines `f` even with no other
/// definition).
fn function_arities(modules: &[Ref<Module>]) -> BTreeMap<String, BTreeSet<usize>> {
    let mut arities: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
    for module in modules {
        let package = package_path(module);
        for rule in &module.policy {
            let (refr, arity) = match rule.as_ref() {
                Rule::Spec {
                    head: RuleHead::Func { refr, args, .. },
                    ..
                } => (refr, args.len()),
                Rule::Default { refr, args, .. } if !args.is_empty() => (refr, args.len()),
                _ => continue,
            };
            if let Ok(path) = get_path_string(refr, Some(&package)) {
                arities.entry(path).or_default().insert(arity);
            }
        }
    }
    arities
}

/// `import data.a.b` and `import data.a.b as c`: alias → path.
pub(super) fn import_aliases(module: &Module) -> BTreeMap<String, String> {
    module
        .imports
        .iter()
        .filter_map(|import| {
            let path = get_path_string(&import.refr, None).ok()?;
            let alias = match &import.r#as {
                Some(span) => span.text().to_string(),
                None => path.rsplit('.').next()?.to_string(),
            };
            path.starts_with("data.").then_some((alias, path))
        })
        .collect()
}

pub(super) fn package_path(module: &Module) -> String {
    get_path_string(&module.package.refr, Some("data")).unwrap_or_default()
}

/// The variable a reference starts from: `input` of `input.alert.id`,
/// `data` of `data.lib.f[x]` (its path's first segment).
pub(super) fn root_name(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Var { span, .. } => Some(span.text()),
        Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => root_name(refr),
        _ => None,
    }
}

pub(super) fn walk_rule(rule: &Rule, visit: &mut dyn FnMut(&Expr)) {
    match rule {
        Rule::Default { refr, args, value, .. } => {
            walk_expr(refr, visit);
            args.iter().for_each(|arg| walk_expr(arg, visit));
            walk_expr(value, visit);
        }
        Rule::Spec { head, bodies, .. } => {
            match head {
                RuleHead::Compr { refr, assign, .. } => {
                    walk_expr(refr, visit);
                    if let Some(assign) = assign {
                        walk_expr(&assign.value, visit);
                    }
                }
                RuleHead::Set { refr, key, .. } => {
                    walk_expr(refr, visit);
                    if let Some(key) = key {
                        walk_expr(key, visit);
                    }
                }
                RuleHead::Func { refr, args, assign, .. } => {
                    walk_expr(refr, visit);
                    args.iter().for_each(|arg| walk_expr(arg, visit));
                    if let Some(assign) = assign {
                        walk_expr(&assign.value, visit);
                    }
                }
            }
            for body in bodies {
                if let Some(assign) = &body.assign {
                    walk_expr(&assign.value, visit);
                }
                walk_query(&body.query, visit);
            }
        }
    }
}

pub(super) fn walk_query(query: &Query, visit: &mut dyn FnMut(&Expr)) {
    for stmt in &query.stmts {
        match &stmt.literal {
            Literal::SomeVars { .. } => {}
            Literal::SomeIn {
                key, value, collection, ..
            } => {
                if let Some(key) = key {
                    walk_expr(key, visit);
                }
                walk_expr(value, visit);
                walk_expr(collection, visit);
            }
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => walk_expr(expr, visit),
            Literal::Every { domain, query, .. } => {
                walk_expr(domain, visit);
                walk_query(query, visit);
            }
        }
        for with in &stmt.with_mods {
            walk_expr(&with.refr, visit);
            walk_expr(&with.r#as, visit);
        }
    }
}

pub(super) fn walk_expr(expr: &Expr, visit: &mut dyn FnMut(&Expr)) {
    visit(expr);
    match expr {
        Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().for_each(|item| walk_expr(item, visit)),
        Expr::Object { fields, .. } => {
            for (_, key, value) in fields {
                walk_expr(key, visit);
                walk_expr(value, visit);
            }
        }
        Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
            walk_expr(term, visit);
            walk_query(query, visit);
        }
        Expr::ObjectCompr { key, value, query, .. } => {
            walk_expr(key, visit);
            walk_expr(value, visit);
            walk_query(query, visit);
        }
        Expr::Call { fcn, params, .. } => {
            walk_expr(fcn, visit);
            params.iter().for_each(|param| walk_expr(param, visit));
        }
        Expr::UnaryExpr { expr, .. } => walk_expr(expr, visit),
        Expr::RefDot { refr, .. } => walk_expr(refr, visit),
        Expr::RefBrack { refr, index, .. } => {
            walk_expr(refr, visit);
            walk_expr(index, visit);
        }
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => {
            walk_expr(lhs, visit);
            walk_expr(rhs, visit);
        }
        Expr::Membership {
            key, value, collection, ..
        } => {
            if let Some(key) = key {
                walk_expr(key, visit);
            }
            walk_expr(value, visit);
            walk_expr(collection, visit);
        }
        _ => {}
    }
}
