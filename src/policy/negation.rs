//! OPA evaluates the references a negated call reads before the negation:
//! `not startswith(input.user, "svc-")` is undefined, not true, for an event
//! without `user` — its compiler moves `input.user` into an assignment ahead
//! of the `not` (`==` is unification there, and is left alone). regorus
//! evaluates the whole expression under the `not`, so a missing field made
//! the negation hold and the rule fire. Such references are moved ahead of
//! their `not` here, in the text both engines compile:
//!
//! - `not f(input.a, x)` becomes `ar__n0 = input.a; ar__n1 = x; not
//!   f(ar__n0, ar__n1)` (`=`: regorus's VM went on after `x := <undefined>`,
//!   so a `not` of `x` held; unifying with it fails, as it should);
//! - a one-literal body, `p if not f(input.a)`, gets braces:
//!   `p if { ar__n0 = input.a; not f(ar__n0) }`.
//!
//! Only variables and references whose path is constant (`input.a.b`,
//! `e["user"]`, `data.c`) move: one with a variable or `_` in a step may
//! iterate. A literal
//! with `with` is left as written, as is a module using the names. Every
//! line keeps its number; a module whose rewrite does not compile keeps its
//! text.

use regorus::unstable::{BoolOp, Expr, Literal, Module, Query, Rule, RuleHead};

/// One replacement of `text[start..end]`.
pub(super) struct Edit {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) with: String,
}

/// The names the rewrite introduces start so.
const PREFIX: &str = "ar__n";

/// The edits that move `module`'s negated references ahead of their `not`.
pub(super) fn edits(module: &Module) -> Vec<Edit> {
    let text = module.package.span.source.contents();
    if text.contains(PREFIX) {
        return Vec::new();
    }
    let mut rewrite = Rewrite {
        text,
        edits: Vec::new(),
        next: 0,
    };
    for rule in &module.policy {
        match rule.as_ref() {
            Rule::Spec { head, bodies, .. } => {
                match head {
                    RuleHead::Compr { assign, .. } | RuleHead::Func { assign, .. } => {
                        if let Some(assign) = assign {
                            rewrite.queries_in(&assign.value);
                        }
                    }
                    RuleHead::Set { key, .. } => {
                        if let Some(key) = key {
                            rewrite.queries_in(key);
                        }
                    }
                }
                for body in bodies {
                    if let Some(assign) = &body.assign {
                        rewrite.queries_in(&assign.value);
                    }
                    rewrite.query(&body.query);
                }
            }
            Rule::Default { value, .. } => rewrite.queries_in(value),
        }
    }
    rewrite.edits
}

struct Rewrite<'a> {
    text: &'a str,
    edits: Vec<Edit>,
    next: usize,
}

impl Rewrite<'_> {
    fn query(&mut self, query: &Query) {
        for stmt in &query.stmts {
            match &stmt.literal {
                Literal::NotExpr { span, expr } => {
                    if stmt.with_mods.is_empty() {
                        // A span ends before a closing quote of its last token.
                        let end = span.end as usize;
                        let end = match self.text.as_bytes().get(end) {
                            Some(b'"' | b'`') => end + 1,
                            _ => end,
                        };
                        self.negation(span.start as usize, end, expr);
                    }
                    self.queries_in(expr);
                }
                Literal::Expr { expr, .. } => self.queries_in(expr),
                Literal::SomeIn {
                    key, value, collection, ..
                } => self.membership(key.as_deref(), value, collection),
                Literal::Every { domain, query, .. } => {
                    self.queries_in(domain);
                    self.query(query);
                }
                Literal::SomeVars { .. } => {}
            }
        }
    }

    /// The queries of the comprehensions inside `expr`.
    fn queries_in(&mut self, expr: &Expr) {
        match expr {
            Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
                self.queries_in(term);
                self.query(query);
            }
            Expr::ObjectCompr { key, value, query, .. } => {
                self.queries_in(key);
                self.queries_in(value);
                self.query(query);
            }
            Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().for_each(|item| self.queries_in(item)),
            Expr::Object { fields, .. } => {
                for (_, key, value) in fields {
                    self.queries_in(key);
                    self.queries_in(value);
                }
            }
            Expr::Call { params, .. } => params.iter().for_each(|param| self.queries_in(param)),
            Expr::UnaryExpr { expr, .. } => self.queries_in(expr),
            Expr::RefDot { refr, .. } => self.queries_in(refr),
            Expr::RefBrack { refr, index, .. } => {
                self.queries_in(refr);
                self.queries_in(index);
            }
            Expr::BinExpr { lhs, rhs, .. }
            | Expr::BoolExpr { lhs, rhs, .. }
            | Expr::ArithExpr { lhs, rhs, .. }
            | Expr::AssignExpr { lhs, rhs, .. } => {
                self.queries_in(lhs);
                self.queries_in(rhs);
            }
            Expr::Membership {
                key, value, collection, ..
            } => self.membership(key.as_deref(), value, collection),
            _ => {}
        }
    }

    /// The queries inside the parts of `key, value in collection`.
    fn membership(&mut self, key: Option<&Expr>, value: &Expr, collection: &Expr) {
        if let Some(key) = key {
            self.queries_in(key);
        }
        self.queries_in(value);
        self.queries_in(collection);
    }

    /// `not <expr>` at `start..end`: its moved references, and where their
    /// assignments go.
    fn negation(&mut self, start: usize, end: usize, expr: &Expr) {
        let mut moved = Vec::new();
        operands(expr, false, &mut moved);
        if moved.is_empty() {
            return;
        }
        let mut assignments = String::new();
        let mut names: Vec<(String, String)> = Vec::new();
        for (from, to) in moved {
            let reference = &self.text[from..to];
            let name = match names.iter().find(|(text, _)| text == reference) {
                Some((_, name)) => name.clone(),
                None => {
                    let name = format!("{PREFIX}{}", self.next);
                    self.next += 1;
                    // `=`, not `:=`: regorus's VM went on after assigning
                    // an undefined value with `:=` (and a `not` of it held).
                    assignments.push_str(&format!("{name} = {reference}; "));
                    names.push((reference.to_string(), name.clone()));
                    name
                }
            };
            self.edits.push(Edit {
                start: from,
                end: to,
                with: name,
            });
        }
        // After `if`, the literal is the whole body: braces make it a query
        // that takes the assignments.
        let before = self.text[..start].trim_end();
        let one_literal_body =
            before.ends_with("if") && !before[..before.len() - 2].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        if one_literal_body {
            self.edits.push(Edit {
                start,
                end: start,
                with: format!("{{ {assignments}"),
            });
            self.edits.push(Edit {
                start: end,
                end,
                with: " }".to_string(),
            });
        } else {
            self.edits.push(Edit {
                start,
                end: start,
                with: assignments,
            });
        }
    }
}

/// The references OPA evaluates ahead of a negation in `expr`: those a call
/// (or a comparison other than `==`, a membership, arithmetic, an index)
/// takes as an operand. `operand`: `expr` is one.
fn operands(expr: &Expr, operand: bool, out: &mut Vec<(usize, usize)>) {
    if operand && constant_reference(expr) {
        let span = expr.span();
        out.push((span.start as usize, span.end as usize));
        return;
    }
    // An operand with a variable in a step (`input.l[i]`) may iterate: left
    // as written, whole.
    if operand && matches!(expr, Expr::RefDot { .. } | Expr::RefBrack { .. }) {
        return;
    }
    match expr {
        Expr::Call { params, .. } => params.iter().for_each(|param| operands(param, true, out)),
        Expr::BoolExpr {
            op: BoolOp::Eq,
            lhs,
            rhs,
            ..
        } => {
            operands(lhs, false, out);
            operands(rhs, false, out);
        }
        Expr::BoolExpr { lhs, rhs, .. } | Expr::ArithExpr { lhs, rhs, .. } | Expr::BinExpr { lhs, rhs, .. } => {
            operands(lhs, true, out);
            operands(rhs, true, out);
        }
        Expr::Membership {
            key, value, collection, ..
        } => {
            if let Some(key) = key {
                operands(key, true, out);
            }
            operands(value, true, out);
            operands(collection, true, out);
        }
        Expr::RefBrack { refr, index, .. } => {
            operands(refr, operand, out);
            operands(index, true, out);
        }
        Expr::RefDot { refr, .. } => operands(refr, operand, out),
        Expr::UnaryExpr { expr, .. } => operands(expr, operand, out),
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            items.iter().for_each(|item| operands(item, operand, out))
        }
        Expr::Object { fields, .. } => {
            for (_, key, value) in fields {
                operands(key, operand, out);
                operands(value, operand, out);
            }
        }
        _ => {}
    }
}

/// A variable (`x`), or a path from one with no variable in its steps
/// (`input.a.b`, `e["user"]`, `data.c`): one with a variable in a step may
/// iterate. Not `_`, which never names a value.
fn constant_reference(expr: &Expr) -> bool {
    match expr {
        Expr::Var { span, .. } => span.text() != "_",
        Expr::RefDot { refr, .. } => constant_reference(refr),
        Expr::RefBrack { refr, index, .. } => {
            matches!(
                index.as_ref(),
                Expr::String { .. } | Expr::RawString { .. } | Expr::Number { .. }
            ) && constant_reference(refr)
        }
        _ => false,
    }
}

/// `text` with `edits` applied.
pub(super) fn apply(text: &str, edits: &[Edit]) -> String {
    replaced(
        text,
        edits.iter().map(|edit| (edit.start, edit.end, edit.with.as_str())),
    )
}

/// `text` with each `(start, end, with)` replacing `text[start..end]`
/// (ranges that do not overlap, in any order).
pub(super) fn replaced<'a>(text: &str, edits: impl IntoIterator<Item = (usize, usize, &'a str)>) -> String {
    let mut edits: Vec<(usize, usize, &str)> = edits.into_iter().collect();
    edits.sort_by_key(|&(start, end, _)| (start, end));
    let mut out = String::with_capacity(text.len() + 32 * edits.len());
    let mut at = 0;
    for (start, end, with) in edits {
        out.push_str(&text[at..start]);
        out.push_str(with);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(text: &str) -> String {
        let mut engine = regorus::Engine::new();
        engine.add_policy("p.rego".into(), text.into()).unwrap();
        let module = engine.get_modules()[0].clone();
        apply(text, &edits(&module))
    }

    #[test]
    fn negated_references_move_ahead_on_their_line() {
        assert_eq!(
            rewritten("package p\nr if not startswith(input.missing, \"x\")\ns if {\n\tx := input.u\n\tnot lower(x.login) == \"root\"\n\tnot input.flag\n\tnot input.a == input.b\n}\n"),
            "package p\nr if { ar__n0 = input.missing; not startswith(ar__n0, \"x\") }\ns if {\n\tx := input.u\n\tar__n1 = x.login; not lower(ar__n1) == \"root\"\n\tnot input.flag\n\tnot input.a == input.b\n}\n"
        );
        // A step with a variable may iterate: left as written.
        let iterating = "package p\nr if {\n\tsome i\n\tnot startswith(input.l[i], \"x\")\n}\n";
        assert_eq!(rewritten(iterating), iterating);
        // The braces close after the literal's last token, a string too.
        assert_eq!(
            rewritten("package p\nr if not lower(input.u) == \"root\"\n"),
            "package p\nr if { ar__n0 = input.u; not lower(ar__n0) == \"root\" }\n"
        );
    }
}
