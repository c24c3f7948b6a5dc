//! OPA's metadata annotations: `# METADATA` comment blocks (YAML) before a
//! package or a rule, and the builtins that read them,
//! `rego.metadata.rule()` and `rego.metadata.chain()`, which regorus has
//! not. The annotations are fixed at load, and OPA's compiler replaces
//! each call with the value it stands for; so does this rewrite, in the
//! text both engines compile, on the call's own line. As in OPA, blocks
//! are read only when a module calls one of the two; then a block OPA
//! refuses (YAML that does not parse, a scope that does not fit what
//! follows it, an annotation declared twice) fails the load, naming its
//! file and line.

use std::collections::BTreeMap;

use regorus::unstable::{Expr, Module, Ref, Rule};
use regorus::utils::get_path_string;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::PolicyError;
use super::source::PolicyFile;
use super::template::{line_end, quoted_end};

/// Whether `file` may call `rego.metadata.rule()` or `chain()`: without
/// such a file, nothing here runs.
pub(super) fn may_call(file: &PolicyFile) -> bool {
    file.text.contains("rego.metadata.")
}

/// Whether `file` may hold a METADATA block or such a call: the files to
/// parse for [`written_as_values`].
pub(super) fn may_hold(file: &PolicyFile) -> bool {
    may_call(file) || file.text.contains("METADATA")
}

/// `files` with every `rego.metadata.rule()` / `rego.metadata.chain()`
/// written as its value, once every METADATA block of every file is read
/// and found valid; `modules` are the files [`may_hold`] picks, parsed
/// (`engine::parsed`). Without a call, `files` are as they were and
/// their blocks unread (OPA's too). A file that does not parse is left for
/// the compiler to report.
pub(super) fn written_as_values(
    files: Vec<PolicyFile>,
    modules: &[Ref<Module>],
) -> Result<Vec<PolicyFile>, PolicyError> {
    let module_of = |file: &PolicyFile| modules.iter().find(|m| *m.package.span.source.file() == file.name);
    let mut calls: Vec<Vec<Call>> = Vec::with_capacity(files.len());
    for file in &files {
        calls.push(match module_of(file) {
            Some(module) => calls_in(file, module)?,
            None => Vec::new(),
        });
    }
    if calls.iter().all(Vec::is_empty) {
        return Ok(files);
    }
    let mut shared = Shared::default();
    let mut rule_scoped: Vec<BTreeMap<usize, Vec<Value>>> = Vec::with_capacity(files.len());
    for file in &files {
        let mut by_rule = BTreeMap::new();
        if let Some(module) = module_of(file) {
            read_blocks(file, module, &mut shared, &mut by_rule)?;
        }
        rule_scoped.push(by_rule);
    }
    Ok(files
        .into_iter()
        .zip(calls)
        .zip(rule_scoped)
        .map(|((file, calls), by_rule)| match calls.is_empty() {
            true => file,
            false => PolicyFile {
                text: with_values(&file.text, &calls, &shared, &by_rule),
                name: file.name,
            },
        })
        .collect())
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

/// Annotations that reach across files, each with where it was declared:
/// a package's own (`package` scope) by its path, and by path those that
/// reach below it (`document` at a rule's path, `subpackages` at a
/// package's), one per path, as OPA keeps them.
#[derive(Default)]
struct Shared {
    package: BTreeMap<Vec<String>, (Value, String)>,
    by_path: BTreeMap<Vec<String>, (Value, String)>,
}

/// A call of `rego.metadata.rule()` or `chain()`: its span, the rule
/// holding it (its index and path), whether it is in an `else`.
struct Call {
    start: usize,
    end: usize,
    chain: bool,
    rule: usize,
    path: Vec<String>,
    package: Vec<String>,
    in_else: bool,
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
    Nothing,
}

/// The blocks of `file` (`module` parsed), each checked and kept: a
/// rule's own by its index in `by_rule`, the others in `shared`.
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
            Target::Nothing => {
                return Err(fail(
                    "a block must come before a package or a rule; nothing follows".into(),
                ))
            }
        };
        let raw = raw_annotation(&block)
            .map_err(|(line, message)| PolicyError::Compile(format!("{}:{line}: METADATA: {message}", file.name)))?;
        let (scope, annotation) = annotation(raw, target.is_some()).map_err(fail)?;
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
            Some((first, at_first)) => Err(fail(format!(
                "{} annotation declared again (first {} at {at_first})",
                scope.name(),
                first["scope"].as_str().unwrap_or_default()
            ))),
            None => {
                table.insert(path, (annotation.clone(), at.clone()));
                Ok(())
            }
        };
        match (scope, target) {
            (Scope::Rule, Some(index)) => by_rule.entry(index).or_default().push(annotation.clone()),
            (Scope::Document, Some(index)) => declare(&mut shared.by_path, rule_path(&package, &module.policy[index]))?,
            (Scope::Package, _) => declare(&mut shared.package, package.clone())?,
            (Scope::Subpackages, _) => declare(&mut shared.by_path, package.clone())?,
            _ => {}
        }
    }
    Ok(())
}

/// The `# METADATA` blocks of `text`: a comment in the line's first
/// column whose text starts with `METADATA` opens one, the comment lines
/// right below it, in the first column too, are its YAML (each without
/// its `#` and one space), up to the first line that is not such a comment
/// or opens another block. An indented comment is never part of one (as
/// in OPA).
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
                if starts_line && content.trim_start().starts_with("METADATA") {
                    blocks.push(Block {
                        line,
                        end,
                        yaml: String::new(),
                    });
                    open = Some(line);
                } else if starts_line && open.is_some_and(|last| last + 1 == line) {
                    let block = blocks.last_mut().expect("an open block");
                    // One space after the `#` is the comment's, the rest the YAML's.
                    let content = content.strip_prefix(' ').unwrap_or(content);
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

/// The first statement of `module` starting after `offset` (a block
/// before an `else` is the next rule's, as in OPA).
fn target(module: &Module, offset: usize) -> Target {
    let mut starts: Vec<(u32, Target)> = vec![(module.package.span.start, Target::Package)];
    starts.extend(module.imports.iter().map(|import| (import.span.start, Target::Import)));
    for (index, rule) in module.policy.iter().enumerate() {
        starts.push((rule.span().start, Target::Rule(index)));
    }
    starts
        .into_iter()
        .filter(|(start, _)| *start as usize >= offset)
        .min_by_key(|(start, _)| *start)
        .map_or(Target::Nothing, |(_, target)| target)
}

/// A block's fields as OPA reads them: text fields as written (`title:
/// 0x10` is "0x10"), the lists and `custom` as YAML values.
#[derive(Deserialize)]
struct RawAnnotation {
    scope: Option<String>,
    title: Option<String>,
    description: Option<String>,
    organizations: Option<Vec<Option<String>>>,
    related_resources: Option<Vec<yaml_serde::Value>>,
    authors: Option<Vec<yaml_serde::Value>>,
    schemas: Option<Vec<yaml_serde::Value>>,
    entrypoint: Option<YamlBool>,
    custom: Option<yaml_serde::Value>,
}

/// A YAML 1.1 boolean, as OPA's YAML reads one: `true`, `yes`, `on`, ….
struct YamlBool(bool);

impl<'de> Deserialize<'de> for YamlBool {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = YamlBool;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true or false")
            }
            fn visit_bool<E: serde::de::Error>(self, flag: bool) -> Result<YamlBool, E> {
                Ok(YamlBool(flag))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<YamlBool, E> {
                match text {
                    "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
                        Ok(YamlBool(true))
                    }
                    "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
                        Ok(YamlBool(false))
                    }
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(text), &self)),
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A block's fields, or the file's line where its YAML fails and why.
fn raw_annotation(block: &Block) -> Result<RawAnnotation, (u32, String)> {
    // The block's YAML starts on the line below `# METADATA`; an error
    // found at its end is on its last line.
    let last = block.yaml.lines().count();
    let at = |err: &yaml_serde::Error| {
        err.location()
            .map_or(block.line, |at| block.line + at.line().min(last) as u32)
    };
    if block.yaml.trim().is_empty() {
        return Err((
            block.line,
            "the block is empty: its annotations (YAML) go on the comment lines below `# METADATA`".into(),
        ));
    }
    // As YAML's own value first: it refuses a key given twice, as OPA does.
    yaml_serde::from_str::<yaml_serde::Value>(&block.yaml).map_err(|err| (at(&err), format!("not YAML: {err}")))?;
    yaml_serde::from_str(&block.yaml).map_err(|err| (at(&err), format!("not an annotation: {err}")))
}

/// A block's annotation as OPA returns it, and its scope (defaulting to
/// the target's: `rule`, or `document` for an entrypoint, or `package`).
fn annotation(raw: RawAnnotation, before_rule: bool) -> Result<(Scope, Value), String> {
    let mut out = Map::new();
    for (key, text) in [("title", raw.title), ("description", raw.description)] {
        if let Some(text) = text.filter(|text| !text.is_empty()) {
            out.insert(key.into(), Value::String(text));
        }
    }
    let entrypoint = raw.entrypoint.is_some_and(|flag| flag.0);
    let scope = match raw.scope.as_deref() {
        None => match (before_rule, entrypoint) {
            (true, true) => Scope::Document,
            (true, false) => Scope::Rule,
            (false, _) => Scope::Package,
        },
        Some("rule") => Scope::Rule,
        Some("document") => Scope::Document,
        Some("package") => Scope::Package,
        Some("subpackages") => Scope::Subpackages,
        Some(other) => {
            return Err(format!(
                "invalid scope '{other}': use one of 'rule', 'document', 'package' or 'subpackages'"
            ))
        }
    };
    if entrypoint && !matches!(scope, Scope::Document | Scope::Package) {
        return Err(format!(
            "entrypoint applies to the document or package scope, not '{}'",
            scope.name()
        ));
    }
    let organizations: Vec<Value> = raw
        .organizations
        .into_iter()
        .flatten()
        .flatten()
        .map(Value::String)
        .collect();
    if !organizations.is_empty() {
        out.insert("organizations".into(), Value::Array(organizations));
    }
    // The lists whose items OPA normalises, each by its own reading.
    let lists: [(&str, Option<Vec<yaml_serde::Value>>, ItemReading); 3] = [
        ("related_resources", raw.related_resources, related_resource),
        ("authors", raw.authors, author),
        ("schemas", raw.schemas, schema),
    ];
    for (key, items, read) in lists {
        let items: Vec<Value> = items.unwrap_or_default().iter().map(read).collect::<Result<_, _>>()?;
        if !items.is_empty() {
            out.insert(key.into(), Value::Array(items));
        }
    }
    if entrypoint {
        out.insert("entrypoint".into(), Value::Bool(true));
    }
    if let Some(mut custom) = raw.custom.filter(|custom| !custom.is_null()) {
        custom.apply_merge().map_err(|err| format!("custom: {err}"))?;
        match serde_json::to_value(custom) {
            Ok(Value::Object(custom)) if custom.is_empty() => {}
            Ok(custom @ Value::Object(_)) => {
                out.insert("custom".into(), custom);
            }
            Ok(other) => return Err(format!("custom must be a mapping, found {other}")),
            Err(err) => return Err(format!("custom: {err}")),
        }
    }
    out.insert("scope".into(), Value::String(scope.name().into()));
    Ok((scope, Value::Object(out)))
}

/// How OPA reads one item of a list field.
type ItemReading = fn(&yaml_serde::Value) -> Result<Value, String>;

/// A field of a list item that must be text when given.
fn text_field(fields: &yaml_serde::Mapping, key: &str, what: &str) -> Result<Option<String>, String> {
    match fields.get(key) {
        None | Some(yaml_serde::Value::Null) => Ok(None),
        Some(yaml_serde::Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(format!("{what}'s {key} must be text")),
    }
}

/// `https://…`, or `{ref: https://…, description: …}` (both trimmed).
fn related_resource(item: &yaml_serde::Value) -> Result<Value, String> {
    let (reference, description) = match item {
        yaml_serde::Value::String(reference) => (reference.clone(), None),
        yaml_serde::Value::Mapping(fields) => {
            let description = match fields.get("description") {
                Some(yaml_serde::Value::String(text)) => Some(text.trim().to_string()),
                _ => None,
            };
            let reference = text_field(fields, "ref", "a related resource")?.unwrap_or_default();
            (reference.trim().to_string(), description)
        }
        _ => return Err("a related resource is a URL or {ref, description}".into()),
    };
    if reference.is_empty() {
        return Err("a related resource's ref may not be empty".into());
    }
    let mut out = Map::from_iter([("ref".to_string(), Value::String(reference))]);
    if let Some(description) = description.filter(|d| !d.is_empty()) {
        out.insert("description".into(), Value::String(description));
    }
    Ok(Value::Object(out))
}

/// `Name <email>` (either part alone too), or `{name, email}`.
fn author(item: &yaml_serde::Value) -> Result<Value, String> {
    let (name, email) = match item {
        yaml_serde::Value::String(text) if text.trim().is_empty() => return Err("an author is an empty string".into()),
        yaml_serde::Value::String(text) => {
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
        yaml_serde::Value::Mapping(fields) => {
            let name = text_field(fields, "name", "an author")?.unwrap_or_default();
            let email = text_field(fields, "email", "an author")?.unwrap_or_default();
            if name.is_empty() && email.is_empty() {
                return Err("an author needs a name or an email".into());
            }
            (name, email)
        }
        _ => return Err("an author is `Name <email>` or {name, email}".into()),
    };
    let mut out = Map::new();
    if !name.is_empty() {
        out.insert("name".into(), Value::String(name));
    }
    if !email.is_empty() {
        out.insert("email".into(), Value::String(email));
    }
    Ok(Value::Object(out))
}

/// `- input.x: schema.name` (a schema by name) or `- input: {…}` (inline);
/// both sides are references (`input["a.b"]`, `schema.s[0]`).
fn schema(item: &yaml_serde::Value) -> Result<Value, String> {
    let entry = match item {
        yaml_serde::Value::Mapping(fields) if fields.len() == 1 => fields.iter().next().expect("one entry"),
        _ => return Err("a schema is one `path: schema` entry".into()),
    };
    let path = entry
        .0
        .as_str()
        .and_then(reference_parts)
        .ok_or_else(|| format!("invalid document reference {:?}", entry.0))?;
    Ok(match entry.1 {
        yaml_serde::Value::String(name) => {
            let schema = reference_parts(name)
                .filter(|parts| parts.first().is_some_and(|first| first == "schema"))
                .ok_or_else(|| format!("invalid schema reference {name:?}"))?;
            json!({"path": path, "schema": schema})
        }
        definition @ yaml_serde::Value::Mapping(_) => {
            let definition = serde_json::to_value(definition).map_err(|err| format!("a schema definition: {err}"))?;
            json!({"path": path, "definition": definition})
        }
        _ => return Err("a schema is a name or a definition".into()),
    })
}

/// A reference's parts: `input.a["b.c"][0]` is `input`, `a`, `b.c`, `0`.
fn reference_parts(text: &str) -> Option<Vec<String>> {
    let identifier_end = |text: &str| {
        text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(text.len())
    };
    let first_end = identifier_end(text);
    if first_end == 0 || text.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let mut parts = vec![text[..first_end].to_string()];
    let mut rest = &text[first_end..];
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = identifier_end(after);
            if end == 0 {
                return None;
            }
            parts.push(after[..end].to_string());
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let close = after.find(']')?;
            let key = after[..close].trim();
            parts.push(match key.strip_prefix('"').and_then(|k| k.strip_suffix('"')) {
                Some(quoted) => quoted.to_string(),
                None if !key.is_empty() && key.chars().all(|c| c.is_ascii_digit()) => key.to_string(),
                None => return None,
            });
            rest = &after[close + 1..];
        } else {
            return None;
        }
    }
    Some(parts)
}

/// The calls of `module` (`file`'s), each with its rule; a call OPA
/// refuses (with arguments, or in a default value) fails.
fn calls_in(file: &PolicyFile, module: &Module) -> Result<Vec<Call>, PolicyError> {
    if !may_call(file) {
        return Ok(Vec::new());
    }
    let package = package_parts(module);
    let mut found = Vec::new();
    let mut failure = None;
    for (index, rule) in module.policy.iter().enumerate() {
        let path = rule_path(&package, rule);
        let (else_spans, default) = match rule.as_ref() {
            Rule::Spec { bodies, .. } => (
                bodies
                    .iter()
                    .filter(|b| b.is_else)
                    .map(|b| (b.span.start, b.span.end))
                    .collect(),
                false,
            ),
            Rule::Default { .. } => (Vec::new(), true),
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
            let refused = match (params.is_empty(), default) {
                (false, _) => Some(format!("{name} takes no arguments")),
                (true, true) => Some(format!(
                    "a default value cannot call {name} (OPA: illegal default rule)"
                )),
                (true, false) => None,
            };
            if let Some(why) = refused {
                failure.get_or_insert(PolicyError::Compile(format!("{}:{}: {why}", file.name, span.line)));
                return;
            }
            found.push(Call {
                start: span.start as usize,
                end: span.end as usize,
                chain,
                rule: index,
                path: path.clone(),
                package: package.clone(),
                in_else: else_spans
                    .iter()
                    .any(|(start, end)| (*start..*end).contains(&span.start)),
            });
        });
    }
    match failure {
        Some(failure) => Err(failure),
        None => Ok(found),
    }
}

/// `text` with each of its `calls` written as its value.
fn with_values(text: &str, calls: &[Call], shared: &Shared, by_rule: &BTreeMap<usize, Vec<Value>>) -> String {
    let values: Vec<(usize, usize, String)> = calls
        .iter()
        .map(|call| {
            // An `else` is a rule of its own to OPA, without annotations.
            let own: &[Value] = match call.in_else {
                true => &[],
                false => by_rule.get(&call.rule).map_or(&[], Vec::as_slice),
            };
            let value = match call.chain {
                false => own.first().cloned().unwrap_or_else(|| json!({})),
                true => chain_of(&call.package, &call.path, own, shared),
            };
            (call.start, call.end, value.to_string())
        })
        .collect();
    // Calls take no arguments, so one never holds another: no edits overlap.
    super::hoist::replaced(
        text,
        values.iter().map(|(start, end, text)| (*start, *end, text.as_str())),
    )
}

/// `rego.metadata.chain()`: from the rule outwards — its own annotations
/// (the last declared first; its path alone when none), then up its path:
/// the annotation declared for each prefix (its document's, an enclosing
/// package's `subpackages`), its package's own before the one at its
/// package's path.
fn chain_of(package: &[String], path: &[String], own: &[Value], shared: &Shared) -> Value {
    let entry = |path: &[String], annotations: &Value| json!({"path": path, "annotations": annotations});
    let mut chain: Vec<Value> = own.iter().rev().map(|a| entry(path, a)).collect();
    if chain.is_empty() {
        chain.push(json!({ "path": path }));
    }
    for depth in (1..=path.len()).rev() {
        let prefix = &path[..depth];
        if prefix == package {
            if let Some((annotations, _)) = shared.package.get(package) {
                chain.push(entry(package, annotations));
            }
        }
        if let Some((annotations, _)) = shared.by_path.get(prefix) {
            chain.push(entry(prefix, annotations));
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
    let mut path = package.to_vec();
    path.extend(ground_parts(super::analysis::head_ref(rule)).0);
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
                // `p[1]`, `p[true]`: OPA's path holds the key as text.
                (true, Expr::Number { span, .. } | Expr::Bool { span, .. }) => {
                    parts.push(span.text().to_string());
                    (parts, true)
                }
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
        let text = "package a\n# METADATA: notes\n# title: x\n#custom:\n#  k: v\n  # indented: not in it\n# title: not in it\ny := \"\\n# METADATA\"\nz := 1 # METADATA\n  # METADATA\n  # title: indented\n";
        let found = blocks(text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line, 2);
        // One space after each `#` is the comment's.
        assert_eq!(found[0].yaml, "title: x\ncustom:\n k: v\n");
        assert_eq!(
            &text[..found[0].end],
            "package a\n# METADATA: notes\n# title: x\n#custom:\n#  k: v"
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

    /// Text fields as written, YAML 1.1 booleans, merge keys, list items
    /// as OPA normalises them (checked against OPA v1.20).
    #[test]
    fn fields_read_as_opa_reads_them() {
        let text = "package a\n# METADATA\n# title: 0x10\n# description: 1e3\n# organizations: [~, 5, acme]\n\
                    # related_resources:\n# - ref: \" https://x.example \"\n#   description: \" d \"\n# - https://y.example\n\
                    # authors: [\"<>\", \"Jane Doe  <j@x.example>\", {name: Bob}]\n\
                    # schemas:\n# - input[\"a.b\"]: schema.s[0]\n# - data.x: {type: object}\n\
                    # custom:\n#   base: &b {m: 1}\n#   merged: {<<: *b, n: 0x10}\n\
                    r := rego.metadata.rule()\n\
                    # METADATA\n# entrypoint: yes\n# title: e\np[1] := rego.metadata.chain()\n";
        let out = written(text).unwrap();
        let value = |prefix: &str| -> Value {
            let line = out.lines().find(|line| line.starts_with(prefix)).unwrap();
            serde_json::from_str(&line[prefix.len()..]).unwrap()
        };
        assert_eq!(
            value("r := "),
            json!({
                "scope": "rule", "title": "0x10", "description": "1e3", "organizations": ["5", "acme"],
                "related_resources": [{"ref": "https://x.example", "description": "d"}, {"ref": "https://y.example"}],
                "authors": [{}, {"name": "Jane Doe", "email": "j@x.example"}, {"name": "Bob"}],
                "schemas": [
                    {"path": ["input", "a.b"], "schema": ["schema", "s", "0"]},
                    {"path": ["data", "x"], "definition": {"type": "object"}},
                ],
                "custom": {"base": {"m": 1}, "merged": {"m": 1, "n": 16}},
            })
        );
        assert_eq!(
            value("p[1] := "),
            json!([
                {"path": ["a", "p", "1"]},
                {"path": ["a", "p", "1"], "annotations": {"scope": "document", "entrypoint": true, "title": "e"}},
            ])
        );
    }

    #[test]
    fn chains_go_from_the_rule_to_the_outermost_package() {
        let root = named("root.rego", "# METADATA\n# scope: subpackages\n# title: root\npackage a\n\n# METADATA\n# scope: document\n# title: doc\nb[x] := 1 if some x in [1]\n");
        let leaf = named(
            "leaf.rego",
            "# METADATA\n# title: leaf\npackage a.b\n\nr := 1 if false\n# METADATA\n# title: before an else, the next rule's\nelse := 2\n\ns := rego.metadata.rule()\n\nc := rego.metadata.chain()\n",
        );
        let out = rewritten(vec![root, leaf]).unwrap().remove(1).text;
        let line = out.lines().find(|line| line.starts_with("c := ")).unwrap();
        let chain: Value = serde_json::from_str(line.trim_start_matches("c := ")).unwrap();
        // As OPA v1.20 answers: the document annotation of `b[x]` in
        // package `a` (path a.b) after the package's own.
        assert_eq!(
            chain,
            json!([
                {"path": ["a", "b", "c"]},
                {"path": ["a", "b"], "annotations": {"scope": "package", "title": "leaf"}},
                {"path": ["a", "b"], "annotations": {"scope": "document", "title": "doc"}},
                {"path": ["a"], "annotations": {"scope": "subpackages", "title": "root"}},
            ])
        );
        assert!(
            out.contains(r#"s := {"scope":"rule","title":"before an else, the next rule's"}"#),
            "{out}"
        );
    }

    #[test]
    fn blocks_opa_refuses_fail_the_load_naming_the_line() {
        // OPA reads blocks only when a module calls one of the builtins.
        let call = "\nc := rego.metadata.chain()\n";
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
                "package a\n# METADATA\n# authors: [{name: 5}]\nr := 1\n",
                "an author's name must be text",
            ),
            (
                "package a\n# METADATA\n# schemas: [{input: foo.bar}]\nr := 1\n",
                "invalid schema reference",
            ),
            (
                "package a\nr := rego.metadata.rule(1)\n",
                "p.rego:2: rego.metadata.rule takes no arguments",
            ),
            (
                "package a\ndefault r := rego.metadata.rule()\n",
                "p.rego:2: a default value cannot call",
            ),
        ] {
            // At the end, but where a block must stay last: after the package.
            let text = match says {
                "nothing follows" => text.replacen("package a\n", &format!("package a{call}"), 1),
                _ => format!("{text}{call}"),
            };
            let err = written(&text).unwrap_err().to_string();
            assert!(err.contains(says), "{text:?}: {err}");
            // Without a call, the same blocks are not read.
            let without = text.replace("c := rego.metadata.chain()\n", "");
            if !without.contains("rego.metadata.") {
                assert_eq!(written(&without).unwrap(), without);
            }
        }
        let twice = vec![
            named("one.rego", "# METADATA\n# title: one\npackage a\n"),
            named(
                "two.rego",
                "# METADATA\n# title: two\npackage a\nr := rego.metadata.rule()\n",
            ),
        ];
        let err = rewritten(twice).unwrap_err().to_string();
        assert!(
            err.contains("two.rego:1: METADATA: package annotation declared again (first package at one.rego:1)"),
            "{err}"
        );
    }

    #[test]
    fn a_file_without_metadata_is_untouched() {
        let text = "package a\n# a comment\nr := 1\n";
        assert_eq!(written(text).unwrap(), text);
    }
}
