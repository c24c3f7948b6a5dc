//! OPA's metadata annotations: `# METADATA` comment blocks (YAML) before a
//! package or a rule, and the builtins that read them,
//! `rego.metadata.rule()` and `rego.metadata.chain()`, which regorus has
//! not. The annotations are fixed at load, and OPA's compiler replaces
//! each call with the value it stands for; so does this rewrite, in the
//! text both engines compile, on the call's own line. A block OPA refuses
//! (YAML that does not parse, a scope that does not fit what follows it,
//! an annotation declared twice) fails the load here too, naming its file
//! and line.

use std::collections::BTreeMap;

use regorus::unstable::{Expr, Module, Ref, Rule, RuleHead};
use regorus::utils::get_path_string;
use serde_json::{json, Map, Value};

use super::error::PolicyError;
use super::source::PolicyFile;
use super::template::{line_end, quoted_end};

/// Whether any of `files` may hold a METADATA block or a call reading one.
pub(super) fn mentioned(files: &[PolicyFile]) -> bool {
    files
        .iter()
        .any(|file| file.text.contains("METADATA") || file.text.contains("rego.metadata."))
}

/// `files` with every `rego.metadata.rule()` / `rego.metadata.chain()`
/// written as its value (a file without either is as it was), once every
/// METADATA block of every file is read and found valid; `modules` are
/// the files parsed (`engine::parsed`). A file that does not parse is left
/// for the compiler to report.
pub(super) fn written_as_values(
    files: Vec<PolicyFile>,
    modules: &[Ref<Module>],
) -> Result<Vec<PolicyFile>, PolicyError> {
    let module_of = |file: &PolicyFile| modules.iter().find(|m| *m.package.span.source.file() == file.name);
    let mut shared = Shared::default();
    let mut rule_scoped: Vec<BTreeMap<usize, Vec<Value>>> = Vec::with_capacity(files.len());
    for file in &files {
        let mut by_rule = BTreeMap::new();
        if let Some(module) = module_of(file) {
            read_blocks(file, module, &mut shared, &mut by_rule)?;
        }
        rule_scoped.push(by_rule);
    }
    files
        .into_iter()
        .zip(rule_scoped)
        .map(|(file, by_rule)| match module_of(&file) {
            Some(module) if file.text.contains("rego.metadata.") => {
                let text = with_values(&file, module, &shared, &by_rule)?;
                Ok(PolicyFile { name: file.name, text })
            }
            _ => Ok(file),
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scope {
    Rule,
    Document,
    Package,
    Subpackages,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Rule => "rule",
            Scope::Document => "document",
            Scope::Package => "package",
            Scope::Subpackages => "subpackages",
        }
    }
}

/// Annotations that reach across files, by path (without `data`), each
/// with where it was declared: a second one for the same path is refused.
#[derive(Default)]
struct Shared {
    document: BTreeMap<Vec<String>, (Value, String)>,
    package: BTreeMap<Vec<String>, (Value, String)>,
    subpackages: BTreeMap<Vec<String>, (Value, String)>,
}

/// One `# METADATA` block: its line, where its last line ends, its YAML.
#[derive(Debug, PartialEq)]
struct Block {
    line: u32,
    end: usize,
    yaml: String,
}

/// What a block stands before.
enum Target {
    Package,
    Rule(usize),
    Import,
    Else,
    Nothing,
}

fn read_blocks(
    file: &PolicyFile,
    module: &Module,
    shared: &mut Shared,
    by_rule: &mut BTreeMap<usize, Vec<Value>>,
) -> Result<(), PolicyError> {
    let blocks = blocks(&file.text);
    if blocks.is_empty() {
        return Ok(());
    }
    let package = package_parts(module);
    for block in blocks {
        let at = format!("{}:{}", file.name, block.line);
        let fail = |message: String| PolicyError::Compile(format!("{at}: METADATA: {message}"));
        let (target, target_name) = match target(module, block.end) {
            Target::Package => (None, "package"),
            Target::Rule(index) => (Some(index), "rule"),
            Target::Import => {
                return Err(fail(
                    "a block must come before a package or a rule, not an import".into(),
                ))
            }
            Target::Else => {
                return Err(fail(
                    "a block must come before a package or a rule, not an `else`".into(),
                ))
            }
            Target::Nothing => {
                return Err(fail(
                    "a block must come before a package or a rule; nothing follows".into(),
                ))
            }
        };
        let parsed = yaml_value(&block)
            .map_err(|(line, message)| PolicyError::Compile(format!("{}:{line}: METADATA: {message}", file.name)))?;
        let (scope, annotation) = annotation(parsed, target.is_some()).map_err(fail)?;
        let fits = match target {
            None => matches!(scope, Scope::Package | Scope::Subpackages),
            Some(_) => matches!(scope, Scope::Rule | Scope::Document),
        };
        if !fits {
            let wants = match scope {
                Scope::Rule | Scope::Document => "rule",
                Scope::Package | Scope::Subpackages => "package",
            };
            return Err(fail(format!(
                "scope '{}' must be applied to a {wants} (it is before a {target_name})",
                scope.name()
            )));
        }
        let declare = |table: &mut BTreeMap<Vec<String>, (Value, String)>, path: Vec<String>| match table.get(&path) {
            Some((_, first)) => Err(fail(format!(
                "{} annotation declared again (first at {first})",
                scope.name()
            ))),
            None => {
                table.insert(path, (annotation.clone(), at.clone()));
                Ok(())
            }
        };
        match (scope, target) {
            (Scope::Rule, Some(index)) => by_rule.entry(index).or_default().push(annotation.clone()),
            (Scope::Document, Some(index)) => {
                declare(&mut shared.document, rule_path(&package, &module.policy[index]))?
            }
            (Scope::Package, _) => declare(&mut shared.package, package.clone())?,
            (Scope::Subpackages, _) => declare(&mut shared.subpackages, package.clone())?,
            _ => {}
        }
    }
    Ok(())
}

/// The `# METADATA` blocks of `text`: a comment in the line's first
/// column whose text is `METADATA` opens one, the comment lines right
/// below it, in the first column too, are its YAML (each without its
/// `#`), up to the first line that is not such a comment or opens another
/// block. An indented comment is never part of one (as in OPA).
fn blocks(text: &str) -> Vec<Block> {
    let bytes = text.as_bytes();
    let mut blocks: Vec<Block> = Vec::new();
    // The line of the last comment taken into the open block.
    let mut open: Option<u32> = None;
    let (mut at, mut line, mut line_start) = (0, 1u32, 0);
    while at < bytes.len() {
        at = match bytes[at] {
            b'\n' => {
                line += 1;
                line_start = at + 1;
                at + 1
            }
            b'#' => {
                let end = line_end(bytes, at);
                let starts_line = at == line_start;
                let content = &text[at + 1..end];
                if starts_line && content.trim() == "METADATA" {
                    blocks.push(Block {
                        line,
                        end,
                        yaml: String::new(),
                    });
                    open = Some(line);
                } else if starts_line && open.is_some_and(|last| last + 1 == line) {
                    let block = blocks.last_mut().expect("an open block");
                    block.yaml.push_str(content.strip_suffix('\r').unwrap_or(content));
                    block.yaml.push('\n');
                    block.end = end;
                    open = Some(line);
                } else {
                    open = None;
                }
                end
            }
            b'"' | b'`' => {
                let end = quoted_end(bytes, at);
                line += text[at..end].matches('\n').count() as u32;
                if let Some(newline) = text[at..end].rfind('\n') {
                    line_start = at + newline + 1;
                }
                open = None;
                end
            }
            b' ' | b'\t' | b'\r' => at + 1,
            _ => {
                open = None;
                at + 1
            }
        };
    }
    blocks
}

/// The first statement of `module` starting after `offset`; an `else`
/// there is not one (OPA refuses a block before it).
fn target(module: &Module, offset: usize) -> Target {
    let mut starts: Vec<(u32, Target)> = vec![(module.package.span.start, Target::Package)];
    starts.extend(module.imports.iter().map(|import| (import.span.start, Target::Import)));
    for (index, rule) in module.policy.iter().enumerate() {
        starts.push((rule.span().start, Target::Rule(index)));
        if let Rule::Spec { bodies, .. } = rule.as_ref() {
            starts.extend(
                bodies
                    .iter()
                    .filter(|b| b.is_else)
                    .map(|b| (b.span.start, Target::Else)),
            );
        }
    }
    starts
        .into_iter()
        .filter(|(start, _)| *start as usize >= offset)
        .min_by_key(|(start, _)| *start)
        .map_or(Target::Nothing, |(_, target)| target)
}

/// A block's YAML as JSON, or the file's line where it fails and why.
fn yaml_value(block: &Block) -> Result<Value, (u32, String)> {
    if block.yaml.trim().is_empty() {
        return Err((
            block.line,
            "the block is empty: its annotations (YAML) go on the comment lines below `# METADATA`".into(),
        ));
    }
    // Through YAML's own value first: it refuses a key given twice, as OPA does.
    let parsed: yaml_serde::Value = yaml_serde::from_str(&block.yaml).map_err(|err| {
        // The block's YAML starts on the line below `# METADATA`; an
        // error found at its end is on its last line.
        let last = block.yaml.lines().count();
        let line = err
            .location()
            .map_or(block.line, |at| block.line + at.line().min(last) as u32);
        (line, format!("not YAML: {err}"))
    })?;
    serde_json::to_value(parsed).map_err(|err| (block.line, format!("not YAML as JSON reads it: {err}")))
}

/// A block's annotation as OPA returns it, and its scope (defaulting to
/// the target's: `rule`, or `document` for an entrypoint, or `package`).
fn annotation(parsed: Value, before_rule: bool) -> Result<(Scope, Value), String> {
    let fields = match parsed {
        Value::Null => Map::new(),
        Value::Object(fields) => fields,
        other => return Err(format!("expected a YAML mapping, found {other}")),
    };
    let mut out = Map::new();
    for key in ["title", "description"] {
        if let Some(text) = scalar_text(fields.get(key), key)? {
            out.insert(key.into(), Value::String(text));
        }
    }
    let entrypoint = match fields.get("entrypoint") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(other) => return Err(format!("entrypoint must be true or false, found {other}")),
    };
    let scope = match fields.get("scope") {
        None | Some(Value::Null) => match (before_rule, entrypoint) {
            (true, true) => Scope::Document,
            (true, false) => Scope::Rule,
            (false, _) => Scope::Package,
        },
        Some(Value::String(name)) => match name.as_str() {
            "rule" => Scope::Rule,
            "document" => Scope::Document,
            "package" => Scope::Package,
            "subpackages" => Scope::Subpackages,
            other => {
                return Err(format!(
                    "invalid scope '{other}': use one of 'rule', 'document', 'package' or 'subpackages'"
                ))
            }
        },
        Some(other) => return Err(format!("scope must be a string, found {other}")),
    };
    if entrypoint && !matches!(scope, Scope::Document | Scope::Package) {
        return Err(format!(
            "entrypoint applies to the document or package scope, not '{}'",
            scope.name()
        ));
    }
    if let Some(list) = list(fields.get("organizations"), "organizations")? {
        let names = list
            .iter()
            .map(|item| scalar_text(Some(item), "organizations").map(|text| Value::String(text.unwrap_or_default())))
            .collect::<Result<Vec<_>, _>>()?;
        out.insert("organizations".into(), Value::Array(names));
    }
    if let Some(list) = list(fields.get("related_resources"), "related_resources")? {
        let resources = list.iter().map(related_resource).collect::<Result<Vec<_>, _>>()?;
        out.insert("related_resources".into(), Value::Array(resources));
    }
    if let Some(list) = list(fields.get("authors"), "authors")? {
        let authors = list.iter().map(author).collect::<Result<Vec<_>, _>>()?;
        out.insert("authors".into(), Value::Array(authors));
    }
    if let Some(list) = list(fields.get("schemas"), "schemas")? {
        let schemas = list.iter().map(schema).collect::<Result<Vec<_>, _>>()?;
        out.insert("schemas".into(), Value::Array(schemas));
    }
    if entrypoint {
        out.insert("entrypoint".into(), Value::Bool(true));
    }
    match fields.get("custom") {
        None | Some(Value::Null) => {}
        Some(Value::Object(custom)) if custom.is_empty() => {}
        Some(custom @ Value::Object(_)) => {
            out.insert("custom".into(), custom.clone());
        }
        Some(other) => return Err(format!("custom must be a mapping, found {other}")),
    }
    out.insert("scope".into(), Value::String(scope.name().into()));
    Ok((scope, Value::Object(out)))
}

/// A text field: a YAML scalar read as text (`5` is "5"), absent when null or empty.
fn scalar_text(value: Option<&Value>, key: &str) -> Result<Option<String>, String> {
    let text = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        Some(Value::Bool(flag)) => flag.to_string(),
        Some(other) => return Err(format!("{key} must be text, found {other}")),
    };
    Ok((!text.is_empty()).then_some(text))
}

fn list<'a>(value: Option<&'a Value>, key: &str) -> Result<Option<&'a Vec<Value>>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if items.is_empty() => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(other) => Err(format!("{key} must be a list, found {other}")),
    }
}

/// `https://…`, or `{ref: https://…, description: …}`.
fn related_resource(item: &Value) -> Result<Value, String> {
    let (reference, description) = match item {
        Value::String(reference) => (reference.clone(), None),
        Value::Object(fields) => (
            scalar_text(fields.get("ref"), "related_resources ref")?.unwrap_or_default(),
            scalar_text(fields.get("description"), "related_resources description")?,
        ),
        other => {
            return Err(format!(
                "a related resource is a URL or {{ref, description}}, found {other}"
            ))
        }
    };
    if reference.trim().is_empty() {
        return Err("a related resource's ref may not be empty".into());
    }
    let mut out = Map::from_iter([("ref".to_string(), Value::String(reference))]);
    if let Some(description) = description {
        out.insert("description".into(), Value::String(description));
    }
    Ok(Value::Object(out))
}

/// `Name <email>` (either part alone too), or `{name, email}`.
fn author(item: &Value) -> Result<Value, String> {
    let (name, email) = match item {
        Value::String(text) => {
            let mut words: Vec<&str> = text.split_whitespace().collect();
            let email = match words.last() {
                Some(last) if last.len() >= 2 && last.starts_with('<') && last.ends_with('>') => {
                    let email = last[1..last.len() - 1].to_string();
                    words.pop();
                    email
                }
                _ => String::new(),
            };
            (words.join(" "), email)
        }
        Value::Object(fields) => (
            scalar_text(fields.get("name"), "author name")?.unwrap_or_default(),
            scalar_text(fields.get("email"), "author email")?.unwrap_or_default(),
        ),
        other => return Err(format!("an author is `Name <email>` or {{name, email}}, found {other}")),
    };
    if name.is_empty() && email.is_empty() {
        return Err("an author needs a name or an email".into());
    }
    let mut out = Map::new();
    if !name.is_empty() {
        out.insert("name".into(), Value::String(name));
    }
    if !email.is_empty() {
        out.insert("email".into(), Value::String(email));
    }
    Ok(Value::Object(out))
}

/// `- input.x: schema.name` (a schema by name) or `- input: {…}` (inline).
fn schema(item: &Value) -> Result<Value, String> {
    let entry = match item {
        Value::Object(fields) if fields.len() == 1 => fields.iter().next().expect("one entry"),
        other => return Err(format!("a schema is one `path: schema` entry, found {other}")),
    };
    let path: Vec<&str> = entry.0.split('.').collect();
    Ok(match entry.1 {
        Value::String(name) => json!({"path": path, "schema": name.split('.').collect::<Vec<_>>()}),
        definition @ Value::Object(_) => json!({"path": path, "definition": definition}),
        other => return Err(format!("a schema is a name or a definition, found {other}")),
    })
}

/// The text of `file` with each call written as its value.
fn with_values(
    file: &PolicyFile,
    module: &Module,
    shared: &Shared,
    by_rule: &BTreeMap<usize, Vec<Value>>,
) -> Result<String, PolicyError> {
    let package = package_parts(module);
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut failure = None;
    for (index, rule) in module.policy.iter().enumerate() {
        let path = rule_path(&package, rule);
        let else_spans: Vec<(u32, u32)> = match rule.as_ref() {
            Rule::Spec { bodies, .. } => bodies
                .iter()
                .filter(|b| b.is_else)
                .map(|b| (b.span.start, b.span.end))
                .collect(),
            Rule::Default { .. } => Vec::new(),
        };
        super::analysis::walk_rule(rule, &mut |expr| {
            let Expr::Call { fcn, params, span, .. } = expr else {
                return;
            };
            let Ok(name) = get_path_string(fcn, None) else {
                return;
            };
            let chain = match name.as_str() {
                "rego.metadata.rule" => false,
                "rego.metadata.chain" => true,
                _ => return,
            };
            if !params.is_empty() {
                failure.get_or_insert(PolicyError::Compile(format!(
                    "{}:{}: {name} takes no arguments",
                    file.name, span.line
                )));
                return;
            }
            let in_else = else_spans
                .iter()
                .any(|(start, end)| (*start..*end).contains(&span.start));
            let own: &[Value] = match in_else {
                true => &[],
                false => by_rule.get(&index).map_or(&[], Vec::as_slice),
            };
            let value = match chain {
                false => own.first().cloned().unwrap_or_else(|| json!({})),
                true => chain_of(&package, &path, own, shared),
            };
            edits.push((span.start as usize, span.end as usize, value.to_string()));
        });
    }
    if let Some(failure) = failure {
        return Err(failure);
    }
    // Calls take no arguments, so one never holds another: no edits overlap.
    Ok(super::hoist::replaced(
        &file.text,
        edits.iter().map(|(start, end, text)| (*start, *end, text.as_str())),
    ))
}

/// `rego.metadata.chain()`: from the rule outwards — its own annotations
/// (the last declared first; its path alone when none), its document's,
/// its package's, then each enclosing package's `subpackages` ones.
fn chain_of(package: &[String], path: &[String], own: &[Value], shared: &Shared) -> Value {
    let entry = |path: &[String], annotations: &Value| json!({"path": path, "annotations": annotations});
    let mut chain: Vec<Value> = own.iter().rev().map(|a| entry(path, a)).collect();
    if chain.is_empty() {
        chain.push(json!({ "path": path }));
    }
    if let Some((annotations, _)) = shared.document.get(path) {
        chain.push(entry(path, annotations));
    }
    if let Some((annotations, _)) = shared.package.get(package) {
        chain.push(entry(package, annotations));
    }
    for depth in (1..=package.len()).rev() {
        if let Some((annotations, _)) = shared.subpackages.get(&package[..depth]) {
            chain.push(entry(&package[..depth], annotations));
        }
    }
    Value::Array(chain)
}

/// `a.b` of `package a.b`.
fn package_parts(module: &Module) -> Vec<String> {
    ground_parts(&module.package.refr).0
}

/// The rule's path: its package's and its head's constant prefix
/// (`a.p` of `p[k] := …` in `package a`).
fn rule_path(package: &[String], rule: &Ref<Rule>) -> Vec<String> {
    let refr = match rule.as_ref() {
        Rule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } | RuleHead::Func { refr, .. } => refr,
        },
        Rule::Default { refr, .. } => refr,
    };
    let mut path = package.to_vec();
    path.extend(ground_parts(refr).0);
    path
}

/// A reference's leading constant parts, and whether all of it is.
fn ground_parts(expr: &Expr) -> (Vec<String>, bool) {
    match expr {
        Expr::Var { span, .. } => (vec![span.text().to_string()], true),
        Expr::RefDot { refr, field, .. } => {
            let (mut parts, ground) = ground_parts(refr);
            if ground {
                parts.push(field.0.text().to_string());
            }
            (parts, ground)
        }
        Expr::RefBrack { refr, index, .. } => {
            let (mut parts, ground) = ground_parts(refr);
            match (ground, index.as_ref()) {
                (true, Expr::String { value, .. } | Expr::RawString { value, .. }) => match value.as_string() {
                    Ok(text) => {
                        parts.push(text.to_string());
                        (parts, true)
                    }
                    Err(_) => (parts, false),
                },
                _ => (parts, false),
            }
        }
        _ => (Vec::new(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> PolicyFile {
        named("p.rego", text)
    }

    fn named(name: &str, text: &str) -> PolicyFile {
        PolicyFile {
            name: name.into(),
            text: text.into(),
        }
    }

    fn rewritten(files: Vec<PolicyFile>) -> Result<Vec<PolicyFile>, PolicyError> {
        let modules = crate::policy::engine::parsed(&files);
        written_as_values(files, &modules)
    }

    fn written(text: &str) -> Result<String, PolicyError> {
        rewritten(vec![file(text)]).map(|mut files| files.remove(0).text)
    }

    #[test]
    fn blocks_are_comment_lines_at_line_starts_below_a_metadata_line() {
        let text = "package a\n# METADATA\n# title: x\n#  custom:\n#    k: v\n  # indented: not in it\n# title: not in it\ny := \"\n# METADATA\"\nz := 1 # METADATA\n  # METADATA\n  # title: indented\n";
        let found = blocks(text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line, 2);
        assert_eq!(found[0].yaml, " title: x\n  custom:\n    k: v\n");
        assert_eq!(
            &text[..found[0].end],
            "package a\n# METADATA\n# title: x\n#  custom:\n#    k: v"
        );
    }

    #[test]
    fn a_call_is_its_rules_annotation_on_the_same_line() {
        let text = "package a\n\n# METADATA\n# title: T\n# custom:\n#   severity: high\nr := rego.metadata.rule().custom.severity\ns := rego.metadata.rule()\n";
        let out = written(text).unwrap();
        assert_eq!(out.lines().count(), text.lines().count());
        assert!(
            out.contains(r#"r := {"custom":{"severity":"high"},"scope":"rule","title":"T"}.custom.severity"#),
            "{out}"
        );
        assert!(out.contains("s := {}\n"), "{out}");
    }

    #[test]
    fn chains_go_from_the_rule_to_the_outermost_package() {
        let root = named(
            "root.rego",
            "# METADATA\n# scope: subpackages\n# title: root\npackage a\n",
        );
        let leaf = named(
            "leaf.rego",
            "# METADATA\n# title: leaf\npackage a.b\n\nr := 1 if false\nelse := rego.metadata.chain()\n",
        );
        let out = rewritten(vec![root, leaf]).unwrap().remove(1).text;
        let value = out.lines().last().unwrap().trim_start_matches("else := ");
        let chain: Value = serde_json::from_str(value).unwrap();
        assert_eq!(
            chain,
            json!([
                {"path": ["a", "b", "r"]},
                {"path": ["a", "b"], "annotations": {"scope": "package", "title": "leaf"}},
                {"path": ["a"], "annotations": {"scope": "subpackages", "title": "root"}},
            ])
        );
    }

    #[test]
    fn blocks_opa_refuses_fail_the_load_naming_the_line() {
        for (text, says) in [
            (
                "package a\n# METADATA\n# title: [x\nr := 1\n",
                "p.rego:3: METADATA: not YAML",
            ),
            (
                "package a\n# METADATA\n# scope: package\nr := 1\n",
                "scope 'package' must be applied to a package",
            ),
            (
                "# METADATA\n# scope: rule\npackage a\n",
                "scope 'rule' must be applied to a rule",
            ),
            ("package a\nr := 1\n# METADATA\n# title: t\n", "nothing follows"),
            ("package a\n# METADATA\n# title: t\nimport rego.v1\n", "not an import"),
            (
                "package a\nr := 1 if false\n# METADATA\n# title: t\nelse := 2\n",
                "not an `else`",
            ),
            (
                "package a\n# METADATA\n# entrypoint: true\n# scope: rule\nr := 1\n",
                "entrypoint applies",
            ),
            (
                "package a\n# METADATA\n# custom: 5\nr := 1\n",
                "custom must be a mapping",
            ),
            (
                "package a\n# METADATA\n# scope: everywhere\nr := 1\n",
                "invalid scope 'everywhere'",
            ),
            (
                "package a\n# METADATA\nr := 1\n",
                "p.rego:2: METADATA: the block is empty",
            ),
            (
                "package a\n# METADATA\n# title: x\n# title: y\nr := 1\n",
                "p.rego:3: METADATA: not YAML: duplicate entry",
            ),
            (
                "package a\nr := rego.metadata.rule(1)\n",
                "p.rego:2: rego.metadata.rule takes no arguments",
            ),
        ] {
            let err = written(text).unwrap_err().to_string();
            assert!(err.contains(says), "{text:?}: {err}");
        }
        let twice = vec![
            named("one.rego", "# METADATA\n# title: one\npackage a\n"),
            named("two.rego", "# METADATA\n# title: two\npackage a\n"),
        ];
        let err = rewritten(twice).unwrap_err().to_string();
        assert!(
            err.contains("two.rego:1: METADATA: package annotation declared again (first at one.rego:1)"),
            "{err}"
        );
    }

    #[test]
    fn a_file_without_metadata_is_untouched() {
        let text = "package a\n# a comment\nr := 1\n";
        assert_eq!(written(text).unwrap(), text);
    }
}
