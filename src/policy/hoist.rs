//! References OPA evaluates before the expression that reads them, moved
//! ahead of it in the text both engines compile, where regorus read an
//! undefined one otherwise:
//!
//! - **A negated call's operands.** `not startswith(input.user, "svc-")` is
//!   undefined, not true, for an event without `user`: OPA's compiler moves
//!   `input.user` into an assignment ahead of the `not` (`==` is unification
//!   there, and is left alone). regorus evaluated the whole expression under
//!   the `not`, so a missing field made the negation hold and the rule fire.
//!   `not f(input.a, x)` becomes `ar__n0 = input.a; ar__n1 = x; not
//!   f(ar__n0, ar__n1)` (`=`: regorus's VM went on after `x := <undefined>`,
//!   so a `not` of `x` held; unifying with it fails, as it should).
//! - **A membership used as a value.** `{"admin": "admin" in input.roles}`,
//!   `flag := "admin" in input.roles`, `is_admin := "admin" in input.roles`:
//!   OPA's membership is a call, undefined when its collection or element
//!   is, so the body holding it fails; regorus's was `false`. Its operands
//!   move ahead of the literal, into the end of the rule's body (one is
//!   added, `if { ar__n0 = input.roles; true }`, to a rule that has none) for a
//!   rule's value, or into the end of the comprehension's query for a
//!   comprehension's term. A membership that is a literal by itself (a
//!   condition) is the same on both and stays as written.
//!
//! - **Readings regorus's VM got wrong, written so it gets them right**: an
//!   `every`'s variables bound by `:=` at the top of its body (a key
//!   reference `input.m[d]` there iterated), a local assigned a value that
//!   may be undefined checked on its line (`x := input.a; ar__n0 = x`: the
//!   VM went on), and an `else` chain's value moved into its body (an
//!   undefined value sends OPA on to the next `else`). `negations` writes
//!   `-x` of a non-literal as `(0 - x)`.
//!
//! A one-literal body, `p if not f(input.a)`, gets braces:
//! `p if { ar__n0 = input.a; not f(ar__n0) }`. Only variables and references
//! whose path is constant (`input.a.b`, `e["user"]`, `data.c`) move: one with
//! a variable or `_` in a step may iterate. A literal with `with` is left as
//! written, as is a rule value shared by several bodies, and a module using
//! the names. Every line keeps its number; a module whose rewrite does not
//! compile falls back to fewer of OPA's readings (`engine::compiled`).

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{AssignOp, BoolOp, Expr, Literal, Module, Query, Rule, RuleHead, Span};

/// One replacement of `text[start..end]`.
struct Edit {
    start: usize,
    end: usize,
    with: String,
}

/// The names the rewrite introduces start so.
const PREFIX: &str = "ar__n";

/// The edits that move `module`'s references ahead of the expressions
/// reading them.
pub(super) fn edits(module: &Module) -> Rewrites {
    let text = module.package.span.source.contents();
    if text.contains(PREFIX) {
        return Rewrites::default();
    }
    let mut rewrite = Rewrite {
        text,
        out: Rewrites::default(),
        next: 0,
        rules: module
            .policy
            .iter()
            .filter_map(|rule| super::analysis::root_name(super::analysis::head_ref(rule)).map(str::to_string))
            .collect(),
    };
    for rule in &module.policy {
        match rule.as_ref() {
            Rule::Spec { span, head, bodies } => {
                let head_value = match head {
                    RuleHead::Compr { assign, .. } | RuleHead::Func { assign, .. } => {
                        assign.as_ref().map(|assign| &assign.value)
                    }
                    RuleHead::Set { key, .. } => key.as_ref(),
                };
                if let Some(value) = head_value {
                    rewrite.queries_in(value);
                    // The head's value is the first body's (an `else` has
                    // its own); several bodies share it: left as written.
                    let own_body = bodies.iter().filter(|body| !body.is_else).count() <= 1;
                    let in_chain = bodies.iter().any(|body| body.is_else);
                    if own_body {
                        let first = bodies.first().filter(|body| !body.is_else);
                        let (query, end) = match first {
                            Some(body) => (Some(&*body.query), body.span.end as usize),
                            None => (None, span.end as usize),
                        };
                        rewrite.value(value, query, end, in_chain);
                    }
                }
                for body in bodies {
                    if let Some(assign) = &body.assign {
                        rewrite.queries_in(&assign.value);
                        if body.is_else {
                            rewrite.value(&assign.value, Some(&body.query), body.span.end as usize, true);
                        }
                    }
                    rewrite.query(&body.query);
                }
            }
            Rule::Default { value, .. } => rewrite.queries_in(value),
        }
    }
    rewrite.out
}

/// The edits that write `-x` of a value other than a number literal as
/// `(0 - x)`: regorus negates only literals (`-input.count` failed every
/// evaluation: "unary - can only be used with numeric literals"), OPA any
/// number. Merged ahead of the other rewrites, so that where they insert at
/// the operand's end its `)` comes first.
pub(super) fn negations(module: &Module) -> Rewrites {
    let text = module.package.span.source.contents();
    let mut out = Rewrites::default();
    for rule in &module.policy {
        super::analysis::walk_rule(rule, &mut |expr| {
            let Expr::UnaryExpr {
                span, expr: operand, ..
            } = expr
            else {
                return;
            };
            let start = span.start as usize;
            if matches!(operand.as_ref(), Expr::Number { .. }) || !text[start..].starts_with('-') {
                return;
            }
            let end = token_end(text, operand.span().end as usize);
            out.replace(start, start + 1, "(0 - ".to_string());
            out.replace(end, end, ")".to_string());
        });
    }
    out
}

/// Edits of a module's text, and the one-literal bodies (start → end) that
/// take statements and so need braces: added once per body however many
/// rewrites insert into it ([`Rewrites::merged`]).
#[derive(Default)]
pub(super) struct Rewrites {
    edits: Vec<Edit>,
    braces: BTreeMap<usize, usize>,
    /// Rules without a body given one (` if { … }`) where they end.
    new_bodies: BTreeSet<usize>,
}

impl Rewrites {
    pub(super) fn brace(&mut self, start: usize, end: usize) {
        brace(&mut self.braces, start, end);
    }

    /// `text[start..end]` (empty: an insertion at `start`) replaced by `with`.
    pub(super) fn replace(&mut self, start: usize, end: usize, with: String) {
        self.edits.push(Edit { start, end, with });
    }

    /// `statements` (each ending `; `) in a body given to the rule ending
    /// at `at`: one body, however many rewrites add to it.
    pub(super) fn add_body(&mut self, at: usize, statements: String) {
        self.new_bodies.insert(at);
        self.replace(at, at, statements);
    }

    /// The edits of `parts`, in order, with each body's braces: its `{`
    /// ahead of every insertion at its start, its `}` after every one at
    /// its end (edits at one offset apply in the order given).
    pub(super) fn merged<'a>(parts: impl IntoIterator<Item = &'a Rewrites>) -> Vec<(usize, usize, &'a str)> {
        let parts: Vec<&Rewrites> = parts.into_iter().collect();
        let mut braces: BTreeMap<usize, usize> = BTreeMap::new();
        let mut new_bodies: BTreeSet<usize> = BTreeSet::new();
        for part in &parts {
            for (&start, &end) in &part.braces {
                brace(&mut braces, start, end);
            }
            new_bodies.extend(&part.new_bodies);
        }
        let mut edits: Vec<(usize, usize, &str)> = braces.keys().map(|&start| (start, start, "{ ")).collect();
        edits.extend(new_bodies.iter().map(|&at| (at, at, " if { ")));
        for part in &parts {
            edits.extend(part.edits.iter().map(|edit| (edit.start, edit.end, edit.with.as_str())));
        }
        edits.extend(new_bodies.iter().map(|&at| (at, at, "true }")));
        edits.extend(braces.values().map(|&end| (end, end, " }")));
        edits
    }
}

fn brace(braces: &mut BTreeMap<usize, usize>, start: usize, end: usize) {
    let at = braces.entry(start).or_insert(end);
    *at = (*at).max(end);
}

struct Rewrite<'a> {
    text: &'a str,
    out: Rewrites,
    next: usize,
    /// The first names of the module's rules: a bare one read as a value
    /// may be undefined.
    rules: BTreeSet<String>,
}

/// Where a body's assignments go.
enum Place<'q> {
    /// Ahead of the literal at `start..end`.
    Before { start: usize, end: usize },
    /// After the last statement of a rule's body (`None`: the rule has
    /// none; one is added at `end`).
    RuleBodyEnd { query: Option<&'q Query>, end: usize },
    /// After the last statement of a comprehension's query.
    ComprehensionEnd(&'q Query),
}

impl Rewrite<'_> {
    fn query(&mut self, query: &Query) {
        for stmt in &query.stmts {
            match &stmt.literal {
                // A literal with `with` is left as written: what it reads
                // ahead of itself would not be under its `with`.
                Literal::NotExpr { span, expr } | Literal::Expr { span, expr } => {
                    if stmt.with_mods.is_empty() {
                        let mut moved = Vec::new();
                        match &stmt.literal {
                            Literal::NotExpr { .. } => operands(expr, false, &mut moved),
                            _ => valued_memberships(expr, true, &mut moved),
                        }
                        let (start, end) = (span.start as usize, token_end(self.text, span.end as usize));
                        self.hoist(moved, Place::Before { start, end });
                        if let Literal::Expr { expr, .. } = &stmt.literal {
                            self.assigned_defined(expr, start, end);
                        }
                    }
                    self.queries_in(expr);
                }
                Literal::SomeIn {
                    key, value, collection, ..
                } => self.membership(key.as_deref(), value, collection),
                Literal::Every {
                    key,
                    value,
                    domain,
                    query,
                    ..
                } => {
                    self.queries_in(domain);
                    let mark = self.out.edits.len();
                    self.query(query);
                    let moved_inside = self.out.edits.len() > mark;
                    self.every_variables(key.as_ref(), value, query, moved_inside, mark);
                }
                Literal::SomeVars { .. } => {}
            }
        }
    }

    /// `x := <value>` followed by a check that `x` has a value (`ar__nK =
    /// x`): regorus's VM went on after
    /// assigning an undefined value (`ticket := input.info.jira` held for
    /// an alert without it, and a `not ticket` after it too), where OPA's
    /// body is undefined. A value that is always defined (a constant, a
    /// comprehension) is left alone.
    fn assigned_defined(&mut self, expr: &Expr, start: usize, end: usize) {
        let Expr::AssignExpr {
            op: AssignOp::ColEq,
            lhs,
            rhs,
            ..
        } = expr
        else {
            return;
        };
        let Expr::Var { span: name, .. } = lhs.as_ref() else {
            return;
        };
        if name.text() == "_" || always_defined(rhs) {
            return;
        }
        if one_literal_body(self.text, start) {
            self.out.brace(start, end);
        }
        // `ar__nK = x`, not `_ = x`: regorus refused `_ = x` when `x` copies
        // a local (`x := s`, "var x is unsafe"); and the name marks the
        // text as rewritten, so a second pass adds nothing.
        let check = format!("{PREFIX}{}", self.next);
        self.next += 1;
        self.out.replace(end, end, format!("; {check} = {}", name.text()));
    }

    /// An `every`'s variables renamed in its head and bound by `:=` at the
    /// top of its body. regorus's VM took one used as a reference's key
    /// (`every d in D { input.m[d] }`) for a new variable iterating the
    /// reference's keys, so the body held whenever `input.m` had any; a
    /// variable bound in the body is read as bound.
    ///
    /// Only where it matters: a variable used as a key, or a body this
    /// rewrite moves references in (regorus refused `ar__n0 = d` of an
    /// `every`'s own `d`, and the file lost every rewrite). Elsewhere the
    /// text stays, and with it one compile less at init. The bindings go
    /// ahead of the body's own edits (`mark`): where both insert at its
    /// start, they come first.
    fn every_variables(&mut self, key: Option<&Span>, value: &Span, query: &Query, moved_inside: bool, mark: usize) {
        let names: Vec<&str> = key.into_iter().chain([value]).map(|span| span.text()).collect();
        let mut keyed = false;
        super::analysis::walk_query(query, &mut |expr| {
            if let Expr::RefBrack { index, .. } = expr {
                keyed |= matches!(index.as_ref(), Expr::Var { span, .. } if names.contains(&span.text()));
            }
        });
        if !(keyed || moved_inside) || !braced(self.text, query) {
            return;
        }
        let mut bindings = String::new();
        for variable in key.into_iter().chain([value]) {
            let name = variable.text();
            if name == "_" {
                continue;
            }
            let fresh = format!("{PREFIX}{}", self.next);
            self.next += 1;
            self.out
                .replace(variable.start as usize, variable.end as usize, fresh.clone());
            bindings.push_str(&format!(" {name} := {fresh};"));
        }
        let at = query.span.start as usize + 1;
        self.out.edits.insert(
            mark,
            Edit {
                start: at,
                end: at,
                with: bindings,
            },
        );
    }

    /// A rule's value (or an `else`'s): its memberships' operands into the
    /// end of `query`, the body it belongs to.
    fn value(&mut self, value: &Expr, query: Option<&Query>, end: usize, in_chain: bool) {
        let mut moved = Vec::new();
        valued_memberships(value, false, &mut moved);
        // In an `else` chain, a value that is undefined sends OPA on to the
        // next `else` (the value is part of its body): regorus's rule was
        // undefined. The value moves into the end of its body, so its body
        // fails with it. One on one line only: lines keep their numbers.
        let span = value.span();
        let (start, stop) = (span.start as usize, token_end(self.text, span.end as usize));
        if in_chain && moved.is_empty() && movable(value, &self.rules) && !self.text[start..stop].contains('\n') {
            moved.push((start, stop));
        }
        let query = query.filter(|query| !query.stmts.is_empty());
        self.hoist(moved, Place::RuleBodyEnd { query, end });
    }

    /// The queries of the comprehensions inside `expr`, and the
    /// memberships their terms hold as values.
    fn queries_in(&mut self, expr: &Expr) {
        match expr {
            Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
                self.queries_in(term);
                self.query(query);
                let mut moved = Vec::new();
                valued_memberships(term, false, &mut moved);
                self.hoist(moved, Place::ComprehensionEnd(query));
            }
            Expr::ObjectCompr { key, value, query, .. } => {
                self.queries_in(key);
                self.queries_in(value);
                self.query(query);
                let mut moved = Vec::new();
                valued_memberships(key, false, &mut moved);
                valued_memberships(value, false, &mut moved);
                self.hoist(moved, Place::ComprehensionEnd(query));
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

    /// Each reference at `moved` replaced by a name, and the assignments
    /// binding those names put at `place`.
    fn hoist(&mut self, moved: Vec<(usize, usize)>, place: Place) {
        if moved.is_empty() {
            return;
        }
        let mut assignments = Vec::new();
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
                    assignments.push(format!("{name} = {reference}"));
                    names.push((reference.to_string(), name.clone()));
                    name
                }
            };
            self.out.replace(from, to, name);
        }
        let assignments = assignments.join("; ");
        let (text, out) = (self.text, &mut self.out);
        match place {
            Place::Before { start, end } => {
                // After `if`, the literal is the whole body: braces make it
                // a query that takes the assignments.
                if one_literal_body(text, start) {
                    out.brace(start, end);
                }
                out.replace(start, start, format!("{assignments}; "));
            }
            Place::RuleBodyEnd { query: None, end } => {
                out.add_body(token_end(text, end), format!("{assignments}; "));
            }
            Place::RuleBodyEnd { query: Some(query), .. } => {
                let last = query.stmts.last().map_or(query.span.end, |stmt| stmt.span.end);
                let last = token_end(text, last as usize);
                if !braced(text, query) {
                    out.brace(query.span.start as usize, last);
                }
                out.replace(last, last, format!("; {assignments}"));
            }
            Place::ComprehensionEnd(query) => {
                let last = query.stmts.last().map_or(query.span.end, |stmt| stmt.span.end);
                let last = token_end(text, last as usize);
                out.replace(last, last, format!("; {assignments}"));
            }
        }
    }
}

/// Whether an `else` chain's value moves into its body as written: a
/// reference of constant path, or a call, array or object of such
/// references and scalars, reading at least one path. Nothing another
/// rewrite edits inside (a minus, a comprehension, a membership).
fn movable(expr: &Expr, rules: &BTreeSet<String>) -> bool {
    fn part(expr: &Expr) -> bool {
        match expr {
            Expr::Number { .. }
            | Expr::String { .. }
            | Expr::RawString { .. }
            | Expr::Bool { .. }
            | Expr::Null { .. } => true,
            Expr::Var { .. } | Expr::RefDot { .. } | Expr::RefBrack { .. } => constant_reference(expr),
            Expr::Call { params, .. } => params.iter().all(|param| part(param)),
            Expr::Array { items, .. } => items.iter().all(|item| part(item)),
            Expr::Object { fields, .. } => fields.iter().all(|(_, key, value)| part(key) && part(value)),
            _ => false,
        }
    }
    // Only a value that reads a path or a rule can be undefined here: any
    // other bare name is a local the body bound, or an argument (`text(value) := value if …
    // else := sprintf("%v", [value])` stays as written — and so needs no
    // compile more at init).
    let mut reads_a_path = false;
    super::analysis::walk_expr(expr, &mut |part| {
        reads_a_path |= match part {
            Expr::RefDot { .. } | Expr::RefBrack { .. } => true,
            Expr::Var { span, .. } => rules.contains(span.text()),
            _ => false,
        };
    });
    reads_a_path && part(expr)
}

/// Whether `expr` has a value whatever the input: a scalar written out, or
/// a comprehension (empty at worst).
fn always_defined(expr: &Expr) -> bool {
    matches!(
        expr,
        Expr::Number { .. }
            | Expr::String { .. }
            | Expr::RawString { .. }
            | Expr::Bool { .. }
            | Expr::Null { .. }
            | Expr::ArrayCompr { .. }
            | Expr::SetCompr { .. }
            | Expr::ObjectCompr { .. }
    )
}

/// The operands of the memberships `expr` holds as values
/// (`flag := "a" in input.roles`, `{"admin": "a" in input.roles}`), not
/// inside its comprehensions (their queries take their own). `whole`:
/// `expr` is a literal by itself, where a membership is a condition.
fn valued_memberships(expr: &Expr, whole: bool, out: &mut Vec<(usize, usize)>) {
    let mut each = |part: &Expr| valued_memberships(part, false, out);
    match expr {
        Expr::Membership {
            key, value, collection, ..
        } => {
            let parts = key.iter().map(|key| &**key).chain([&**value, &**collection]);
            for part in parts {
                if !whole && constant_reference(part) {
                    let span = part.span();
                    out.push((span.start as usize, span.end as usize));
                } else {
                    valued_memberships(part, false, out);
                }
            }
        }
        Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().for_each(|item| each(item)),
        Expr::Object { fields, .. } => {
            for (_, key, value) in fields {
                each(key);
                each(value);
            }
        }
        // OPA prints an undefined argument as `<undefined>` and goes on.
        Expr::Call { fcn, .. } if fcn.span().text() == "print" => {}
        Expr::Call { params, .. } => params.iter().for_each(|param| each(param)),
        Expr::UnaryExpr { expr, .. } => each(expr),
        Expr::RefDot { refr, .. } => each(refr),
        Expr::RefBrack { refr, index, .. } => {
            each(refr);
            each(index);
        }
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => {
            each(lhs);
            each(rhs);
        }
        _ => {}
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
        // A minus evaluates its operand (arithmetic).
        Expr::UnaryExpr { expr, .. } => operands(expr, true, out),
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
pub(super) fn constant_reference(expr: &Expr) -> bool {
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

/// Whether a rule body's `query` is written in braces: it opens with `{`
/// before its first statement (`if {"k": 1} == input.o` is one literal
/// that opens with an object).
pub(super) fn braced(text: &str, query: &Query) -> bool {
    let start = query.span.start as usize;
    text[start..].starts_with('{') && query.stmts.first().is_none_or(|stmt| stmt.span.start as usize > start)
}

/// Whether the literal at `start` is a whole body, after `if`: braces
/// make it a query that takes more statements.
pub(super) fn one_literal_body(text: &str, start: usize) -> bool {
    // What precedes the literal, comments left out (`{ # only if` opens a
    // braced body).
    let mut before = text[..start].trim_end();
    loop {
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        match comment_start(&before[line_start..]) {
            Some(hash) => before = before[..line_start + hash].trim_end(),
            None => break,
        }
    }
    before.ends_with("if") && !before[..before.len() - 2].ends_with(|c: char| c.is_alphanumeric() || c == '_')
}

/// Where a `#` comment starts on `line`, outside strings.
fn comment_start(line: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '`' => quote = Some(c),
            None if c == '#' => return Some(i),
            None => {}
        }
    }
    None
}

/// A string's span ends before its closing quote.
pub(super) fn token_end(text: &str, end: usize) -> usize {
    match text.as_bytes().get(end) {
        Some(b'"' | b'`') => end + 1,
        _ => end,
    }
}

/// `text` as one module, with the edits `rewrite` makes of it applied.
#[cfg(test)]
pub(super) fn rewritten_by(text: &str, rewrite: fn(&Module) -> Rewrites) -> String {
    let mut engine = regorus::Engine::new();
    engine.add_policy("p.rego".into(), text.into()).unwrap();
    let module = engine.get_modules()[0].clone();
    replaced(text, Rewrites::merged([&rewrite(&module)]))
}

/// `text` with each `(start, end, with)` replacing `text[start..end]`
/// (ranges that do not overlap, in any order).
pub(super) fn replaced<'a>(text: &str, edits: impl IntoIterator<Item = (usize, usize, &'a str)>) -> String {
    let mut edits: Vec<(usize, usize, &str)> = edits.into_iter().collect();
    edits.sort_by_key(|&(start, end, _)| (start, end));
    let mut out = String::with_capacity(text.len() + 32 * edits.len());
    let mut at = 0;
    for (start, end, with) in edits {
        // Edits that overlap are a defect of a rewrite: the later one is
        // dropped (the text may then not compile, and the file falls back
        // to fewer rewrites) rather than the load panicking.
        if start < at {
            tracing::warn!(start, at, "overlapping policy rewrites: one is left out");
            continue;
        }
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
        rewritten_by(text, edits)
    }

    #[test]
    fn negated_references_move_ahead_on_their_line() {
        assert_eq!(
            rewritten("package p\nr if not startswith(input.missing, \"x\")\ns if {\n\tx := input.u\n\tnot lower(x.login) == \"root\"\n\tnot input.flag\n\tnot input.a == input.b\n}\n"),
            "package p\nr if { ar__n0 = input.missing; not startswith(ar__n0, \"x\") }\ns if {\n\tx := input.u; ar__n1 = x\n\tar__n2 = x.login; not lower(ar__n2) == \"root\"\n\tnot input.flag\n\tnot input.a == input.b\n}\n"
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

    #[test]
    fn valued_memberships_move_into_their_body_on_their_line() {
        let cases = [
            // A rule with no body gets one.
            (
                "is_admin := \"admin\" in input.roles # c\n",
                "is_admin := \"admin\" in ar__n0 if { ar__n0 = input.roles; true } # c\n",
            ),
            // The end of a braced body, after its last statement.
            (
                "p[u.name] := \"a\" in u.roles if {\n\tsome u in input.users\n}\n",
                "p[u.name] := \"a\" in ar__n0 if {\n\tsome u in input.users; ar__n0 = u.roles\n}\n",
            ),
            // A one-literal body gets braces.
            (
                "p[u.name] := \"a\" in u.roles if some u in input.users\n",
                "p[u.name] := \"a\" in ar__n0 if { some u in input.users; ar__n0 = u.roles }\n",
            ),
            // Ahead of the literal; a condition by itself stays.
            (
                "p if {\n\tflag := \"a\" in input.roles\n\t\"b\" in input.roles\n}\n",
                "p if {\n\tar__n0 = input.roles; flag := \"a\" in ar__n0; ar__n1 = flag\n\t\"b\" in input.roles\n}\n",
            ),
            // A comprehension's term: the end of its query.
            (
                "p := [(\"a\" in u.roles) | some u in input.users]\n",
                "p := [(\"a\" in ar__n0) | some u in input.users; ar__n0 = u.roles]\n",
            ),
            // A negation and a value in one one-literal body: one pair of braces.
            (
                "p := \"a\" in input.roles if not startswith(input.user, \"svc-\")\n",
                "p := \"a\" in ar__n0 if { ar__n1 = input.user; not startswith(ar__n1, \"svc-\"); ar__n0 = input.roles }\n",
            ),
            // A one-literal body that opens with an object gets braces.
            (
                "p := \"a\" in input.l if {\"k\": 1} == input.o\n",
                "p := \"a\" in ar__n0 if { {\"k\": 1} == input.o; ar__n0 = input.l }\n",
            ),
            // An else value: its own body.
            (
                "p := 1 if input.x\nelse := \"a\" in input.roles\n",
                "p := 1 if input.x\nelse := \"a\" in ar__n0 if { ar__n0 = input.roles; true }\n",
            ),
        ];
        for (rule, expected) in cases {
            assert_eq!(
                rewritten(&format!("package p\n{rule}")),
                format!("package p\n{expected}")
            );
        }
        // A comment ending in `if` ahead of a literal of a braced body.
        assert_eq!(
            rewritten("package p\np if { # only if\n\tnot startswith(input.user, \"svc-\")\n}\n"),
            "package p\np if { # only if\n\tar__n0 = input.user; not startswith(ar__n0, \"svc-\")\n}\n"
        );
        // In `print`, as OPA prints an undefined value and goes on.
        let printed = "package p\np if {\n\tprint(\"a\" in input.roles)\n\tinput.x\n}\n";
        assert_eq!(rewritten(printed), printed);
        // A value shared by several bodies stays as written.
        let shared = "package p\np := \"a\" in input.roles if { input.x } { input.y }\n";
        assert_eq!(rewritten(shared), shared);
    }

    #[test]
    fn every_variables_are_bound_at_the_top_of_the_body() {
        assert_eq!(
            rewritten("package p\nr if every d in input.l {\n\tinput.m[d]\n}\n"),
            "package p\nr if every ar__n0 in input.l { d := ar__n0;\n\tinput.m[d]\n}\n"
        );
        // A key too; `_` stays; a negation's operand moves after the binding.
        assert_eq!(
            rewritten("package p\nr if every k, _ in input.m { not startswith(k, \"x\") }\n"),
            "package p\nr if every ar__n1, _ in input.m { k := ar__n1; ar__n0 = k; not startswith(ar__n0, \"x\") }\n"
        );
        // Neither a key nor a moved reference: as written (no compile more at init).
        let kept = "package p\nr if every u in input.l { u in {\"a\"} }\n";
        assert_eq!(rewritten(kept), kept);
    }

    #[test]
    fn a_local_assigned_a_value_that_may_be_undefined_is_checked_on_its_line() {
        assert_eq!(
            rewritten("package p\nr if {\n\tticket := input.info.jira\n}\ns if t := input.a\n"),
            "package p\nr if {\n\tticket := input.info.jira; ar__n0 = ticket\n}\ns if { t := input.a; ar__n1 = t }\n"
        );
        // In a comprehension's query; constants, comprehensions, `_` and `=` stay.
        assert_eq!(
            rewritten("package p\nc := [d | some d in input.l; i := input.m[d]]\n"),
            "package p\nc := [d | some d in input.l; i := input.m[d]; ar__n0 = i]\n"
        );
        let kept = "package p\nr if {\n\tn := 1\n\tl := [x | some x in input.l]\n\t_ := input.a\n\ty = input.b\n}\n";
        assert_eq!(rewritten(kept), kept);
    }

    #[test]
    fn a_negated_value_is_a_subtraction_from_zero() {
        assert_eq!(
            rewritten_by(
                "package p\nr := -input.n\ns := -(input.a + 1)\nt := -3\nu := [y | some x in input.l; y := -x]\n",
                negations
            ),
            "package p\nr := (0 - input.n)\ns := (0 - (input.a + 1))\nt := -3\nu := [y | some x in input.l; y := (0 - x)]\n"
        );
    }

    #[test]
    fn a_value_in_an_else_chain_moves_into_its_body() {
        assert_eq!(
            rewritten("package p\nowner := input.owner if {\n\tinput.high\n} else := \"none\"\nf(a) := a.owner if a.high\nelse := input.x\n"),
            "package p\nowner := ar__n0 if {\n\tinput.high; ar__n0 = input.owner\n} else := \"none\"\nf(a) := ar__n1 if { a.high; ar__n1 = a.owner }\nelse := ar__n2 if { ar__n2 = input.x; true }\n"
        );
        // A rule read bare moves; a value reading no path or rule (an
        // argument, a call of one) stays.
        assert_eq!(
            rewritten("package p\nq := input.nope\nr := q if {\n\ttrue\n} else := \"rr\"\n"),
            "package p\nq := input.nope\nr := ar__n0 if {\n\ttrue; ar__n0 = q\n} else := \"rr\"\n"
        );
        let arguments = "package p\ntext(v) := v if {\n\tis_string(v)\n} else := sprintf(\"%v\", [v])\n";
        assert_eq!(rewritten(arguments), arguments);
        // Without an else, or over several lines, the value stays.
        let kept =
            "package p\nowner := input.owner if input.high\nv := {\n\t\"a\": input.a,\n} if input.high\nelse := 1\n";
        assert_eq!(rewritten(kept), kept);
    }
}
