//! An object pattern unifies as in OPA: `{"name": n, "kind": "login"} = e`
//! fails when `e` has more keys than the pattern names. regorus matched the
//! keys the pattern names and ignored the rest, on both engines, so a
//! pattern meant to pick one shape of event picked every event holding
//! those keys. After such a literal the exact size is checked, in the text
//! both engines compile, on the same line:
//! `{"name": n, "kind": "login"} = e; count(e) == 2` (and
//! `count(e["meta"]) == 1` for a nested `"meta": {"tag": "x"}`). A
//! one-literal body gets braces.
//!
//! A function's argument pattern becomes a name the body unifies, as OPA
//! reads it: `kind_of({"kind": k}) := k` becomes
//! `kind_of(ar__p0) := k if { {"kind": k} = ar__p0; count(ar__p0) == 1 }`.
//!
//! Only patterns unified (`=` either side, `:=`) with a variable or a
//! reference whose path is constant, or with an array literal pairing them
//! so (`[{"a": x}] = [e]`), are checked; a negated unification, one with
//! `with`, and a function with `else` or several bodies, are left as
//! written, as are patterns of `some … in` and `every`.

use regorus::unstable::{AssignOp, Expr, Literal, Module, Query, Rule, RuleHead};

use super::hoist::{braced, constant_reference, one_literal_body, token_end, Rewrites};

/// The edits that check the size of `module`'s object patterns.
pub(super) fn edits(module: &Module) -> Rewrites {
    let text = module.package.span.source.contents();
    let mut edits = Rewrites::default();
    let mut next = 0;
    for rule in &module.policy {
        super::analysis::rule_queries(rule, &mut |query| checks(text, query, &mut edits));
        if !text.contains(PREFIX) {
            arguments(text, rule, &mut next, &mut edits);
        }
    }
    edits
}

/// The names the rewrite gives argument patterns start so.
const PREFIX: &str = "ar__p";

/// A function's object arguments as names its body unifies with the
/// pattern and checks the size of.
fn arguments(text: &str, rule: &Rule, next: &mut usize, edits: &mut Rewrites) {
    let Rule::Spec {
        span,
        head: RuleHead::Func { args, .. },
        bodies,
    } = rule
    else {
        return;
    };
    if bodies.len() > 1 || bodies.iter().any(|body| body.is_else) {
        return;
    }
    let mut conditions = Vec::new();
    let mut renamed = Vec::new();
    for arg in args {
        let mut sizes = Vec::new();
        let name = format!("{PREFIX}{next}");
        against(text, arg, &name, &mut sizes);
        if sizes.is_empty() || !matches!(arg.as_ref(), Expr::Object { .. }) {
            continue;
        }
        *next += 1;
        let arg_span = arg.span();
        let (start, end) = (arg_span.start as usize, token_end(text, arg_span.end as usize));
        conditions.push(format!("{} = {name}", &text[start..end]));
        conditions.extend(sizes);
        renamed.push((start, end, name));
    }
    if conditions.is_empty() {
        return;
    }
    for (start, end, name) in renamed {
        edits.replace(start, end, name);
    }
    let conditions = conditions.join("; ");
    match bodies.first() {
        None => edits.add_body(token_end(text, span.end as usize), format!("{conditions}; ")),
        Some(body) => {
            let query = &body.query;
            let start = query.span.start as usize;
            let first = match braced(text, query) {
                true => query.stmts.first().map_or(start + 1, |stmt| stmt.span.start as usize),
                false => {
                    edits.brace(start, token_end(text, query.span.end as usize));
                    start
                }
            };
            edits.replace(first, first, format!("{conditions}; "));
        }
    }
}

/// The checks after each unification literal of `query`.
fn checks(text: &str, query: &Query, edits: &mut Rewrites) {
    for stmt in &query.stmts {
        // Under `with`, a check after the literal would see other data.
        let Literal::Expr { span, expr } = &stmt.literal else {
            continue;
        };
        if !stmt.with_mods.is_empty() {
            continue;
        }
        let Expr::AssignExpr { op, lhs, rhs, .. } = expr.as_ref() else {
            continue;
        };
        let mut conditions = Vec::new();
        pair(text, lhs, rhs, &mut conditions);
        if matches!(op, AssignOp::Eq) {
            pair(text, rhs, lhs, &mut conditions);
        }
        conditions.dedup();
        if conditions.is_empty() {
            continue;
        }
        let start = span.start as usize;
        let end = token_end(text, stmt.span.end as usize);
        let conditions = conditions.join("; ");
        if one_literal_body(text, start) {
            edits.brace(start, end);
        }
        edits.replace(end, end, format!("; {conditions}"));
    }
}

/// `pattern` unified with `value`: the size checks it needs.
fn pair(text: &str, pattern: &Expr, value: &Expr, out: &mut Vec<String>) {
    match (pattern, value) {
        (Expr::Object { .. } | Expr::Array { .. }, value) if constant_reference(value) => {
            let span = value.span();
            against(
                text,
                pattern,
                &text[span.start as usize..token_end(text, span.end as usize)],
                out,
            );
        }
        (Expr::Array { items: patterns, .. }, Expr::Array { items: values, .. }) if patterns.len() == values.len() => {
            for (pattern, value) in patterns.iter().zip(values) {
                pair(text, pattern, value, out);
                pair(text, value, pattern, out);
            }
        }
        _ => {}
    }
}

/// `pattern` unified with the value at the reference `value`: an object's
/// size, and the same for the objects inside it.
fn against(text: &str, pattern: &Expr, value: &str, out: &mut Vec<String>) {
    match pattern {
        Expr::Object { fields, .. } => {
            let keys: Option<Vec<&str>> = fields.iter().map(|(_, key, _)| constant_key(text, key)).collect();
            let Some(keys) = keys else { return };
            out.push(format!("count({value}) == {}", fields.len()));
            for (key, (_, _, item)) in keys.into_iter().zip(fields) {
                against(text, item, &format!("{value}[{key}]"), out);
            }
        }
        Expr::Array { items, .. } => {
            for (i, item) in items.iter().enumerate() {
                against(text, item, &format!("{value}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// A key's text when it is a constant (a string, number, boolean or null).
fn constant_key<'a>(text: &'a str, key: &Expr) -> Option<&'a str> {
    matches!(
        key,
        Expr::String { .. } | Expr::RawString { .. } | Expr::Number { .. } | Expr::Bool { .. } | Expr::Null { .. }
    )
    .then(|| {
        // A string's span holds its contents, not its quotes.
        let span = key.span();
        let quoted = span.start > 0 && matches!(text.as_bytes()[span.start as usize - 1], b'"' | b'`');
        let start = span.start as usize - usize::from(quoted);
        &text[start..token_end(text, span.end as usize)]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(text: &str) -> String {
        super::super::hoist::rewritten_by(text, edits)
    }

    #[test]
    fn object_patterns_check_their_size_on_their_line() {
        let cases = [
            (
                "p contains n if {\n\tsome e in input.events\n\t{\"name\": n, \"kind\": \"login\"} = e\n}\n",
                "p contains n if {\n\tsome e in input.events\n\t{\"name\": n, \"kind\": \"login\"} = e; count(e) == 2\n}\n",
            ),
            (
                "p := n if {\"name\": n, \"meta\": {\"tag\": \"x\"}} = input.user\n",
                "p := n if { {\"name\": n, \"meta\": {\"tag\": \"x\"}} = input.user; count(input.user) == 2; count(input.user[\"meta\"]) == 1 }\n",
            ),
            (
                "p := [n | some e in input.l; [{\"name\": n}] = [e]]\n",
                "p := [n | some e in input.l; [{\"name\": n}] = [e]; count(e) == 1]\n",
            ),
            (
                "p if {\n\t{\"a\": x} := input.o\n\tx > 1\n}\n",
                "p if {\n\t{\"a\": x} := input.o; count(input.o) == 1\n\tx > 1\n}\n",
            ),
        ];
        for (rule, expected) in cases {
            assert_eq!(
                rewritten(&format!("package p\n{rule}")),
                format!("package p\n{expected}")
            );
        }
        // A function's argument pattern: a name its body unifies.
        assert_eq!(
            rewritten("package p\nkind({\"kind\": k}) := k\nname({\"n\": n}, x) := n if x > 1\nboth({\"a\": a}) := a if {\n\ta > 1\n}\n"),
            "package p\nkind(ar__p0) := k if { {\"kind\": k} = ar__p0; count(ar__p0) == 1; true }\nname(ar__p1, x) := n if { {\"n\": n} = ar__p1; count(ar__p1) == 1; x > 1 }\nboth(ar__p2) := a if {\n\t{\"a\": a} = ar__p2; count(ar__p2) == 1; a > 1\n}\n"
        );
        // Under `with`: as written (a check after it would see other data).
        let under_with = "package p\np if {\n\t{\"a\": x} := data.p.ev with input as {\"a\": 1}\n}\n";
        assert_eq!(rewritten(under_with), under_with);
        // A key that is not a constant, and a pattern against a call: as written.
        let kept = "package p\np if {\n\tk := \"a\"\n\t{k: 1} = input.o\n\t{\"a\": x} = json.unmarshal(input.s)\n}\n";
        assert_eq!(rewritten(kept), kept);
    }
}
