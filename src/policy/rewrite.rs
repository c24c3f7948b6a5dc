//! Partial rules rewritten for regorus's interpreter, which resets a whole
//! partial set or object rule when one iteration's head term is undefined
//! (`names contains input.m[k] if some k in input.keys` with a key `m`
//! lacks): OPA, and the VM, skip that iteration alone. A comprehension
//! collects only the defined terms on the interpreter, so the term moves
//! into one, in place:
//!
//! - `NAME contains TERM if BODY` becomes
//!   `NAME contains ar__term if { ar__set := {(TERM) | BODY}; ar__set[ar__term] }`;
//! - `NAME[KEY] := VALUE if BODY` becomes
//!   `NAME[ar__key] := ar__value if { ar__object := {(KEY): (VALUE) | BODY}; ar__value := ar__object[ar__key] }`.
//!
//! TERM, KEY, VALUE and BODY keep their text and their lines (only the text
//! between them changes, its line breaks kept), so errors, coverage and
//! `test` locations name the lines the author wrote; columns on a head's
//! line move. A conflict inside one definition stays an error (the
//! interpreter reports one in an object comprehension). Only terms that can
//! be undefined are rewritten: a scalar, or a variable the body binds,
//! cannot.

use std::collections::BTreeSet;
use std::time::Duration;

use regorus::unstable::{AssignOp, Expr, Module, Ref, Rule, RuleAssign, RuleBody, RuleHead};

use super::engine::compiled;
use super::source::PolicyFile;

/// An engine for interpreted evaluations: `engine`'s modules with their
/// partial rules rewritten, or `None` when none needs it. A rewrite that
/// does not compile (a defect here, never the author's) keeps the original
/// text, logged.
pub(super) fn interpreter_engine(engine: &mut regorus::Engine, timeout: Duration) -> Option<regorus::Engine> {
    let files = interpreter_sources(engine.get_modules())?;
    match compiled(files, timeout) {
        Ok(rewritten) => Some(rewritten),
        Err(err) => {
            tracing::warn!(error = %err, "partial rules kept as written for the interpreter: their rewrite does not compile");
            None
        }
    }
}

/// The text of `modules` with every partial rule whose head term could be
/// undefined rewritten, or `None` when there is none.
fn interpreter_sources(modules: &[Ref<Module>]) -> Option<Vec<PolicyFile>> {
    let mut changed = false;
    let files = modules
        .iter()
        .map(|module| {
            let source = module.package.span.source.clone();
            let text = source.contents();
            let edits = module_edits(module, text);
            changed |= !edits.is_empty();
            PolicyFile {
                name: source.file().to_string(),
                text: apply(text, edits),
            }
        })
        .collect();
    changed.then_some(files)
}

/// One replacement of `text[start..end]`.
#[derive(Debug)]
struct Edit {
    start: usize,
    end: usize,
    with: String,
}

fn module_edits(module: &Module, text: &str) -> Vec<Edit> {
    // The rewrite's own names must not meet the author's.
    if text.contains("ar__") {
        return Vec::new();
    }
    let names = rule_names(module);
    let mut edits = Vec::new();
    for rule in &module.policy {
        let Rule::Spec { span, head, bodies } = rule.as_ref() else {
            continue;
        };
        let body = match bodies.as_slice() {
            [] => None,
            [body] if !body.is_else && body.assign.is_none() => Some(body),
            _ => continue,
        };
        // The head's last term ends where the body's `if` or `{` starts, or
        // with the rule.
        let head_end = body.map_or_else(|| token_end(text, span.end as usize), |body| body.span.start as usize);
        let rule = Parts {
            text,
            head_end,
            body,
            keyword: body.map_or(module.rego_v1, |body| body.span.text().starts_with("if")),
        };
        let rule_edits = match head {
            RuleHead::Set {
                refr, key: Some(term), ..
            } if may_be_undefined(term, &names) => rule.set(refr),
            RuleHead::Compr {
                refr,
                assign: Some(assign),
                ..
            } => match refr.as_ref() {
                // A partial object, one bracket after a plain name or path:
                // `p[k]`, `a.b[k]` (a constant key makes a complete rule).
                Expr::RefBrack { refr: base, index, .. }
                    if matches!(base.as_ref(), Expr::Var { .. } | Expr::RefDot { .. })
                        && !is_scalar(index)
                        && (may_be_undefined(index, &names) || may_be_undefined(&assign.value, &names)) =>
                {
                    rule.object(base, assign)
                }
                _ => None,
            },
            _ => None,
        };
        edits.extend(rule_edits.into_iter().flatten());
    }
    edits
}

/// A rule's text, where its head ends, and its body.
struct Parts<'a> {
    text: &'a str,
    head_end: usize,
    body: Option<&'a RuleBody>,
    /// The body opens with `if` (or, without a body, the module is Rego v1).
    keyword: bool,
}

impl Parts<'_> {
    /// `NAME contains TERM …`: the term into a set comprehension.
    fn set(&self, refr: &Expr) -> Option<Vec<Edit>> {
        let head = &self.text[offset(refr).1..self.head_end];
        // `contains`, not the old `NAME[TERM]` form; no comment to move.
        let term = head.trim_start().strip_prefix("contains")?;
        if !term.starts_with(char::is_whitespace) || has_comment(term) {
            return None;
        }
        let term_start = self.head_end - term.trim_start().len();
        let term_end = self.head_end - (term.len() - term.trim_end().len());
        let open = format!("ar__term {}{{ ar__set := {{(", self.if_keyword());
        let mut edits = vec![insert(term_start, open)];
        edits.extend(self.body_edits(term_end, "}; ar__set[ar__term] }"));
        Some(edits)
    }

    /// `NAME[KEY] := VALUE …`: key and value into an object comprehension.
    fn object(&self, base: &Expr, assign: &RuleAssign) -> Option<Vec<Edit>> {
        let text = self.text;
        let (base_end, op_start) = (offset(base).1, assign.span.start as usize);
        let op = match assign.op {
            AssignOp::Eq => "=",
            AssignOp::ColEq => ":=",
        };
        let value = text[op_start..self.head_end].trim_start().strip_prefix(op)?;
        let key = text[base_end..op_start].trim();
        if has_comment(key) || has_comment(value) || !key.starts_with('[') || !key.ends_with(']') {
            return None;
        }
        let key_start = base_end + text[base_end..].find('[')? + 1;
        let key_end = base_end + text[base_end..op_start].rfind(']')?;
        let value_start = self.head_end - value.trim_start().len();
        let value_end = self.head_end - (value.len() - value.trim_end().len());
        let open = format!("[ar__key] {op} ar__value {}{{ ar__object := {{(", self.if_keyword());
        let mut edits = vec![
            replace(text, base_end, key_start, &open),
            replace(text, key_end, value_start, "): ("),
        ];
        edits.extend(self.body_edits(value_end, "}; ar__value := ar__object[ar__key] }"));
        Some(edits)
    }

    fn if_keyword(&self) -> &'static str {
        if self.keyword {
            "if "
        } else {
            ""
        }
    }

    /// From the end of the head's last term to the end of the rule: the
    /// comprehension's `) | ` before the body's statements and `close`
    /// after them, the body's braces and `if` dropped.
    fn body_edits(&self, term_end: usize, close: &str) -> Vec<Edit> {
        let text = self.text;
        let Some(body) = self.body else {
            return vec![insert(term_end, format!(") | true{close}"))];
        };
        let query_start = body.query.span.start as usize;
        let query_end = token_end(text, body.query.span.end as usize);
        let braced = text[query_start..].starts_with('{')
            && body
                .query
                .stmts
                .first()
                .is_some_and(|stmt| stmt.span.start as usize > query_start);
        if braced {
            vec![
                replace(text, term_end, query_start + 1, ") | "),
                replace(text, query_end - 1, query_end, close),
            ]
        } else {
            vec![
                replace(text, term_end, query_start, ") | "),
                insert(query_end, close.to_string()),
            ]
        }
    }
}

/// Where the token ending at `end` ends: a string's span leaves out its
/// closing quote.
fn token_end(text: &str, end: usize) -> usize {
    match text.as_bytes().get(end) {
        Some(b'"' | b'`') => end + 1,
        _ => end,
    }
}

/// Whether `text` holds a `#` comment (outside strings).
fn has_comment(text: &str) -> bool {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '#' => return true,
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '`' => {
                for c in chars.by_ref() {
                    if c == '`' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    false
}

fn is_scalar(term: &Expr) -> bool {
    matches!(
        term,
        Expr::String { .. } | Expr::RawString { .. } | Expr::Number { .. } | Expr::Bool { .. } | Expr::Null { .. }
    )
}

/// Whether `term` can be undefined: anything but a scalar, a variable the
/// body binds, or a collection of those. A name that is a rule of the
/// module, an import, `input` or `data` can be undefined.
fn may_be_undefined(term: &Expr, names: &BTreeSet<&str>) -> bool {
    match term {
        _ if is_scalar(term) => false,
        Expr::Var { span, .. } => names.contains(span.text()),
        Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().any(|item| may_be_undefined(item, names)),
        Expr::Object { fields, .. } => fields
            .iter()
            .any(|(_, key, value)| may_be_undefined(key, names) || may_be_undefined(value, names)),
        _ => true,
    }
}

/// Names a head variable may refer to other than a local: the module's
/// rules, its imports, `input` and `data`.
fn rule_names(module: &Module) -> BTreeSet<&str> {
    let mut names = BTreeSet::from(["input", "data"]);
    for rule in &module.policy {
        let refr = match rule.as_ref() {
            Rule::Spec { head, .. } => match head {
                RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } | RuleHead::Func { refr, .. } => refr,
            },
            Rule::Default { refr, .. } => refr,
        };
        names.insert(root(refr));
    }
    for import in &module.imports {
        match &import.r#as {
            Some(alias) => names.insert(alias.text()),
            None => names.insert(last_segment(&import.refr)),
        };
    }
    names
}

fn root(expr: &Ref<Expr>) -> &str {
    match expr.as_ref() {
        Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => root(refr),
        other => other.span().text(),
    }
}

fn last_segment(expr: &Expr) -> &str {
    match expr {
        Expr::RefDot { field, .. } => field.0.text(),
        other => other.span().text(),
    }
}

fn offset(expr: &Expr) -> (usize, usize) {
    let span = expr.span();
    (span.start as usize, span.end as usize)
}

fn insert(at: usize, with: String) -> Edit {
    Edit {
        start: at,
        end: at,
        with,
    }
}

/// Replaces `text[start..end]` with `with` and as many line breaks as it
/// held, so that what follows stays on its line.
fn replace(text: &str, start: usize, end: usize, with: &str) -> Edit {
    let breaks = text[start..end].matches('\n').count();
    Edit {
        start,
        end,
        with: format!("{with}{}", "\n".repeat(breaks)),
    }
}

fn apply(text: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|edit| (edit.start, edit.end));
    let mut out = String::with_capacity(text.len() + 64 * edits.len());
    let mut at = 0;
    for edit in edits {
        out.push_str(&text[at..edit.start]);
        out.push_str(&edit.with);
        at = edit.end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(text: &str) -> Option<String> {
        let mut engine = regorus::Engine::new();
        engine.add_policy("p.rego".to_string(), text.to_string()).unwrap();
        interpreter_sources(engine.get_modules()).map(|files| files.into_iter().next().unwrap().text)
    }

    /// The value of `rule` on the interpreter, for `text` as written and
    /// as rewritten.
    fn both(text: &str, rule: &str, input: &str) -> (regorus::Value, regorus::Value) {
        let eval = |text: String| {
            let mut engine = regorus::Engine::new();
            engine.add_policy("p.rego".to_string(), text).unwrap();
            engine.set_input_json(input).unwrap();
            engine
                .eval_rule(format!("data.p.{rule}"))
                .unwrap_or(regorus::Value::Null)
        };
        (eval(text.to_string()), eval(rewritten(text).expect("rewritten")))
    }

    const FORMS: &str = r##"package p
names contains input.m[k] if some k in input.keys
braced contains {"channel": "#sec", "n": input.m[k]} if {
	# which keys
	some k in input.keys

	k != "z" # not this one
}
no_body contains input.m.a
by_key[k] := {
	"value": input.m[k],
} if {
	some k in input.keys
}
ends_in_a_string contains input.m[input.k] if input.k != "b"
"##;

    #[test]
    fn undefined_head_terms_skip_their_iteration_alone() {
        let input = r#"{"m": {"a": 1, "c": 3}, "keys": ["a", "b", "c"], "k": "a"}"#;
        let (written, rewritten) = both(FORMS, "names", input);
        // regorus's interpreter as written: the undefined `m.b` resets the rule.
        assert_ne!(written, rewritten);
        for (rule, expected) in [
            ("names", "[1, 3]"),
            (
                "braced",
                r##"[{"channel": "#sec", "n": 1}, {"channel": "#sec", "n": 3}]"##,
            ),
            ("no_body", "[1]"),
            ("ends_in_a_string", "[1]"),
        ] {
            let set: std::collections::BTreeSet<regorus::Value> =
                serde_json::from_str::<Vec<serde_json::Value>>(expected)
                    .unwrap()
                    .into_iter()
                    .map(regorus::Value::from)
                    .collect();
            assert_eq!(both(FORMS, rule, input).1, regorus::Value::from(set), "{rule}");
        }
        assert_eq!(
            both(FORMS, "by_key", input).1,
            regorus::Value::from_json_str(r#"{"a": {"value": 1}, "c": {"value": 3}}"#).unwrap()
        );
    }

    #[test]
    fn every_line_keeps_its_number() {
        let text = rewritten(FORMS).unwrap();
        let (before, after): (Vec<&str>, Vec<&str>) = (FORMS.lines().collect(), text.lines().collect());
        assert_eq!(before.len(), after.len(), "{text}");
        // Statements and the value's fields stay on their lines, as written.
        let indented = before.iter().enumerate().filter(|(_, line)| line.starts_with('\t'));
        assert_eq!(indented.clone().count(), 5);
        for (number, line) in indented {
            assert!(
                after[number].contains(line),
                "line {}: {line:?} became {:?}",
                number + 1,
                after[number]
            );
        }
    }

    #[test]
    fn terms_that_cannot_be_undefined_are_left_as_written() {
        for text in [
            // AlertChain's idioms: the head is a variable the body binds.
            "package p\nrun contains job if {\n\tjob := {\"id\": input.id}\n}\n",
            "package p\nalert[res] := true if {\n\tres := input.id\n}\n",
            // Constants, a collection of them, a constant key.
            "package p\nnames contains \"a\" if input.x\ntags contains [1, \"b\"] if input.x\nfixed[\"k\"] := input.v\n",
        ] {
            assert_eq!(rewritten(text), None, "{text}");
        }
        // A variable that names a rule (or `input`) can be undefined.
        assert!(rewritten("package p\nother := input.x\nnames contains other if input.y\n").is_some());
        assert!(rewritten("package p\nnames contains input if input.y\n").is_some());
    }

    #[test]
    fn a_head_with_a_comment_is_left_as_written() {
        let text = "package p\nnames contains input.m[k] # why\n  if some k in input.keys\n";
        assert_eq!(rewritten(text), None);
        assert!(has_comment("x # y") && !has_comment(r##"{"c": "#a", "d": `#b`, "e": "\"#"}"##));
    }
}
