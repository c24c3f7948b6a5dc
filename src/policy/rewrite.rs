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
//! between them changes, its line breaks kept), so errors and `test`
//! locations name the lines the author wrote; columns move on the lines
//! where the rewrite's text goes (the head's, the body's last). A conflict
//! inside one definition stays an error (the interpreter reports one in an
//! object comprehension). Only terms that can be undefined are rewritten:
//! a scalar, or a variable the body binds, cannot. Left as written: a rule
//! with a comment between its head and its body's statements, a bracket
//! in its path (`a[x].b contains …`), `else` or several bodies, and every
//! rule of a module that uses one of the rewrite's names.
//!
//! An import's alias is written as the path it stands for (`cfg.level`
//! after `import data.lib.cfg` becomes `data.lib.cfg.level`): through an
//! alias the interpreter evaluates the whole imported package, where OPA
//! evaluates the rule named.
//!
//! Coverage is the modules' as written on the lines the rewrite's own
//! expressions sit on (evaluated whether or not a body holds): the caller
//! evaluates there a second time for it ([`Rewritten::coverage`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use regorus::unstable::{AssignOp, Expr, Module, Ref, Rule, RuleAssign, RuleBody, RuleHead};

use super::analysis::{head_ref, imported_names, is_constant, package_path, root_name};
use super::engine::compiled;
use super::source::PolicyFile;

/// The modules rewritten for the interpreter, and where the rewrite put
/// expressions of its own.
pub(super) struct Rewritten {
    pub(super) engine: regorus::Engine,
    /// By file, the lines holding the rewrite's own expressions (evaluated
    /// whether or not a body holds): their coverage is the one of the
    /// modules as written.
    moved_lines: BTreeMap<String, BTreeSet<u32>>,
}

/// An engine for interpreted evaluations: `engine`'s modules with their
/// partial rules rewritten, or `None` when none needs it. A module whose
/// rewrite does not compile (a defect here, never the author's: the
/// modules as written compiled) keeps its text, logged with its file.
pub(super) fn interpreter_engine(engine: &mut regorus::Engine, timeout: Duration) -> Option<Rewritten> {
    let modules = engine.get_modules().clone();
    let names = names_by_package(&modules);
    let mut plans: Vec<Plan> = modules.iter().map(|module| plan(module, &names)).collect();
    let rewritten: Vec<usize> = (0..plans.len()).filter(|&i| !plans[i].edits.is_empty()).collect();
    if rewritten.is_empty() {
        return None;
    }
    let build = |plans: &[Plan], chosen: &[usize]| compiled(sources(plans, chosen), timeout);
    if let Ok(engine) = build(&plans, &rewritten) {
        return Some(Rewritten::of(engine, &plans, &rewritten));
    }
    // Each rewritten module alone, the others as written: which fail, and
    // whether they do without their aliases written as paths.
    let mut chosen = Vec::new();
    for i in rewritten {
        let Err(err) = build(&plans, &[i]) else {
            chosen.push(i);
            continue;
        };
        tracing::warn!(file = %plans[i].file, error = %err, "a module kept as written for the interpreter: its rewrite does not compile");
        plans[i].edits.retain(|edit| !edit.alias);
        if !plans[i].edits.is_empty() && build(&plans, &[i]).is_ok() {
            chosen.push(i);
        }
    }
    match build(&plans, &chosen) {
        Ok(engine) if !chosen.is_empty() => Some(Rewritten::of(engine, &plans, &chosen)),
        _ => None,
    }
}

impl Rewritten {
    fn of(engine: regorus::Engine, plans: &[Plan], chosen: &[usize]) -> Rewritten {
        let moved_lines = chosen
            .iter()
            .map(|&i| (plans[i].file.clone(), plans[i].moved_lines()))
            .collect();
        Rewritten { engine, moved_lines }
    }

    /// The coverage of a run on these modules, with the lines the rewrite
    /// moved taken from a run on the modules as written (`None`: that run
    /// did not happen, and those lines count as not covered).
    pub(super) fn coverage(
        &self,
        rewritten: regorus::coverage::Report,
        as_written: Option<&regorus::coverage::Report>,
    ) -> regorus::coverage::Report {
        let mut report = rewritten;
        for file in &mut report.files {
            let Some(moved) = self.moved_lines.get(&file.path) else {
                continue;
            };
            let written = as_written.and_then(|r| r.files.iter().find(|f| f.path == file.path));
            for line in moved {
                file.covered.remove(line);
                file.not_covered.remove(line);
                match written {
                    Some(written) if written.covered.contains(line) => file.covered.insert(*line),
                    Some(written) if !written.not_covered.contains(line) => false,
                    _ => file.not_covered.insert(*line),
                };
            }
        }
        report
    }
}

/// A module's file, its text, and the edits that rewrite it.
struct Plan {
    file: String,
    text: String,
    edits: Vec<Edit>,
}

impl Plan {
    fn moved_lines(&self) -> BTreeSet<u32> {
        self.edits
            .iter()
            .filter(|edit| !edit.alias)
            .map(|edit| 1 + self.text[..edit.start].matches('\n').count() as u32)
            .collect()
    }
}

/// Every module's text, those at `chosen` rewritten.
fn sources(plans: &[Plan], chosen: &[usize]) -> Vec<PolicyFile> {
    plans
        .iter()
        .enumerate()
        .map(|(i, plan)| PolicyFile {
            name: plan.file.clone(),
            text: match chosen.contains(&i) {
                true => apply(&plan.text, &plan.edits),
                false => plan.text.clone(),
            },
        })
        .collect()
}

/// One replacement of `text[start..end]`.
#[derive(Debug)]
struct Edit {
    start: usize,
    end: usize,
    with: String,
    /// An import's alias written as its path: on its line, nothing moves.
    alias: bool,
}

/// The names the rewrite introduces.
const OWN_NAMES: [&str; 5] = ["ar__term", "ar__set", "ar__key", "ar__value", "ar__object"];

fn plan(module: &Module, names: &BTreeMap<String, BTreeSet<String>>) -> Plan {
    let source = &module.package.span.source;
    let (file, text) = (source.file().to_string(), source.contents().to_string());
    let no_names = BTreeSet::new();
    let names = names.get(&package_path(module)).unwrap_or(&no_names);
    // The rewrite's own names must not meet the author's.
    let mut edits = match OWN_NAMES.iter().any(|name| text.contains(name)) {
        true => Vec::new(),
        false => module_edits(module, &text, names),
    };
    // An import's alias written as its whole path: regorus's interpreter
    // evaluates the whole package behind an alias (`cfg.level` evaluated
    // every rule of `data.lib.cfg`, so an error in one it never needed
    // failed the evaluation); a path is evaluated rule by rule, as OPA does.
    edits.extend(
        super::analysis::import_alias_uses(module)
            .into_iter()
            .map(|(start, end, path)| Edit {
                start,
                end,
                with: path,
                alias: true,
            }),
    );
    Plan { file, text, edits }
}

fn module_edits(module: &Module, text: &str, names: &BTreeSet<String>) -> Vec<Edit> {
    let mut edits = Vec::new();
    for rule in &module.policy {
        let Rule::Spec { span, head, bodies } = rule.as_ref() else {
            continue;
        };
        let body = match bodies.as_slice() {
            [] => None,
            [body] if !body.is_else && body.assign.is_none() && body.span.text().starts_with("if") => Some(body),
            _ => continue,
        };
        // The head's last term ends where the body's `if` starts, or with
        // the rule.
        let head_end = body.map_or_else(|| token_end(text, span.end as usize), |body| body.span.start as usize);
        let rule = Parts { text, head_end, body };
        let rule_edits = match head {
            RuleHead::Set {
                refr, key: Some(term), ..
            } if plain_path(refr) && may_be_undefined(term, names) => rule.set(refr),
            RuleHead::Compr {
                refr,
                assign: Some(assign),
                ..
            } => match refr.as_ref() {
                // A partial object on a plain name or path: `p[k]`, `a.b[k]`
                // (a constant key makes a complete rule).
                Expr::RefBrack { refr: base, index, .. }
                    if plain_path(base)
                        && !is_constant(Some(index))
                        && (may_be_undefined(index, names) || may_be_undefined(&assign.value, names)) =>
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

/// A rule's text, where its head ends, and its body (if any; it opens
/// with `if`: the modules are Rego v1).
struct Parts<'a> {
    text: &'a str,
    head_end: usize,
    body: Option<&'a RuleBody>,
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
        let mut edits = vec![insert(term_start, "ar__term if { ar__set := {(".to_string())];
        edits.extend(self.body_edits(term_end, "}; ar__set[ar__term] }")?);
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
        let open = format!("[ar__key] {op} ar__value if {{ ar__object := {{(");
        let mut edits = vec![
            replace(text, base_end, key_start, &open),
            replace(text, key_end, value_start, "): ("),
        ];
        edits.extend(self.body_edits(value_end, "}; ar__value := ar__object[ar__key] }")?);
        Some(edits)
    }

    /// From the end of the head's last term to the end of the rule: the
    /// comprehension's `) | ` before the body's statements and `close`
    /// after them, the body's `if` and braces dropped.
    fn body_edits(&self, term_end: usize, close: &str) -> Option<Vec<Edit>> {
        let text = self.text;
        let Some(body) = self.body else {
            return Some(vec![insert(term_end, format!(") | true{close}"))]);
        };
        // What follows `if`: `{` and statements, or one literal.
        let after_if = &text[body.span.start as usize + "if".len()..];
        let first = body.span.start as usize + "if".len() + (after_if.len() - after_if.trim_start().len());
        if has_comment(&text[term_end..first]) {
            return None;
        }
        let braced = text[first..].starts_with('{')
            && body
                .query
                .stmts
                .first()
                .is_some_and(|stmt| stmt.span.start as usize > first);
        let query_end = token_end(text, body.query.span.end as usize);
        Some(match braced {
            true => vec![
                replace(text, term_end, first + 1, ") | "),
                replace(text, query_end - 1, query_end, close),
            ],
            false => vec![
                replace(text, term_end, first, ") | "),
                insert(query_end, close.to_string()),
            ],
        })
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

/// A name or a dotted path of names: `p`, `a.b.c` (no bracket, whose
/// variable the body would bind).
fn plain_path(expr: &Expr) -> bool {
    match expr {
        Expr::Var { .. } => true,
        Expr::RefDot { refr, .. } => plain_path(refr),
        _ => false,
    }
}

/// Whether `term` can be undefined: anything but a scalar, a variable the
/// body binds, or a collection of those. A name that is a rule of the
/// module, an import, `input` or `data` can be undefined.
fn may_be_undefined(term: &Expr, names: &BTreeSet<String>) -> bool {
    match term {
        _ if is_constant(Some(term)) => false,
        Expr::Var { span, .. } => names.contains(span.text()),
        Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().any(|item| may_be_undefined(item, names)),
        Expr::Object { fields, .. } => fields
            .iter()
            .any(|(_, key, value)| may_be_undefined(key, names) || may_be_undefined(value, names)),
        _ => true,
    }
}

/// By package, the names a head variable may refer to other than a
/// local: the package's rules (in any of its files), each module's
/// imports, `input` and `data`.
fn names_by_package(modules: &[Ref<Module>]) -> BTreeMap<String, BTreeSet<String>> {
    let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for module in modules {
        let package = names.entry(package_path(module)).or_default();
        package.extend(["input".to_string(), "data".to_string()]);
        for rule in &module.policy {
            package.extend(root_name(head_ref(rule)).map(str::to_string));
        }
        package.extend(imported_names(module));
    }
    names
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
        alias: false,
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
        alias: false,
    }
}

fn apply(text: &str, edits: &[Edit]) -> String {
    super::hoist::replaced(
        text,
        edits.iter().map(|edit| (edit.start, edit.end, edit.with.as_str())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first module's text rewritten, or `None` when nothing is.
    fn rewritten_files(files: &[&str]) -> Option<String> {
        let mut engine = regorus::Engine::new();
        for (i, text) in files.iter().enumerate() {
            engine.add_policy(format!("p{i}.rego"), text.to_string()).unwrap();
        }
        let modules = engine.get_modules().clone();
        let plan = plan(&modules[0], &names_by_package(&modules));
        (!plan.edits.is_empty()).then(|| apply(&plan.text, &plan.edits))
    }

    fn rewritten(text: &str) -> Option<String> {
        rewritten_files(&[text])
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
starts_with_a_string contains input.m.a if "admin" in input.roles
"##;

    #[test]
    fn undefined_head_terms_skip_their_iteration_alone() {
        let input = r#"{"m": {"a": 1, "c": 3}, "keys": ["a", "b", "c"], "k": "a", "roles": ["admin"]}"#;
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
            ("starts_with_a_string", "[1]"),
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
        // A bracket in the rule's path: its variable is the body's.
        assert_eq!(
            rewritten("package p\na[x].b contains input.m[x] if some x in input.keys\n"),
            None
        );
        // A variable that names a rule (or `input`) can be undefined, the
        // rule in another file of the package too.
        assert!(rewritten_files(&[
            "package p\nnames contains other if input.y\n",
            "package p\nother := input.x\n"
        ])
        .is_some());
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
