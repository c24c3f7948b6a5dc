//! Static checks of the action policy for `check`: in `run` entries written
//! as object literals, an unknown `uses`, and missing required or unknown
//! argument names when the `args` are an object literal too.

use std::time::Duration;

use regorus::unstable::{Expr, Rule, RuleHead};

use crate::action::Registry;
use crate::policy::{new_engine, PolicyError, PolicyFile};

/// One problem, at a place in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub line: u32,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Checks every literal `run` entry of `package action` against `registry`.
pub fn check_run_entries(files: Vec<PolicyFile>, registry: &Registry) -> Result<Vec<Finding>, PolicyError> {
    let mut engine = new_engine(Duration::from_secs(5));
    for file in files {
        engine
            .add_policy(file.name, file.text)
            .map_err(|err| PolicyError::Compile(err.to_string()))?;
    }
    let mut findings = Vec::new();
    for module in engine.get_modules() {
        if module.package.refr.span().text() != "action" {
            continue;
        }
        for rule in &module.policy {
            let Rule::Spec {
                head: RuleHead::Set {
                    refr, key: Some(key), ..
                },
                ..
            } = rule.as_ref()
            else {
                continue;
            };
            if refr.span().text() != "run" {
                continue;
            }
            let Expr::Object { span, fields, .. } = key.as_ref() else {
                continue;
            };
            check_literal_entry(span, fields, registry, &mut findings);
        }
    }
    findings.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    Ok(findings)
}

/// One `run` entry written as an object literal: a known `uses`, and, when
/// its `args` are a literal too, the required arguments and no unknown one.
fn check_literal_entry(
    span: &regorus::unstable::Span,
    fields: &[(
        regorus::unstable::Span,
        regorus::unstable::Ref<Expr>,
        regorus::unstable::Ref<Expr>,
    )],
    registry: &Registry,
    findings: &mut Vec<Finding>,
) {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(_, k, _)| literal_string(k).as_deref() == Some(name))
            .map(|(_, _, v)| v.clone())
    };
    let id = field("id")
        .and_then(|v| literal_string(&v))
        .map(|id| format!(" {id:?}"))
        .unwrap_or_default();
    let place = |message: String| Finding {
        file: span.source.file().to_string(),
        line: span.line,
        message,
    };
    let Some(uses) = field("uses").and_then(|v| literal_string(&v)) else {
        return;
    };
    let Some(action) = registry.get(&uses) else {
        let known: Vec<&str> = registry.names().collect();
        findings.push(place(format!(
            "run entry{id}: unknown action {uses:?} (known: {})",
            known.join(", ")
        )));
        return;
    };
    let arg_names: Option<Vec<String>> = match field("args") {
        None => Some(Vec::new()),
        Some(args) => match args.as_ref() {
            Expr::Object { fields, .. } => fields.iter().map(|(_, k, _)| literal_string(k)).collect(),
            _ => None, // computed args: checked at run time
        },
    };
    let Some(arg_names) = arg_names else { return };
    for spec in action.args().iter().filter(|s| s.required) {
        if !arg_names.iter().any(|a| a == spec.name) {
            findings.push(place(format!(
                "run entry{id} ({uses}): missing required argument `{}`",
                spec.name
            )));
        }
    }
    for name in &arg_names {
        if !action.args().iter().any(|s| s.name == name) {
            findings.push(place(format!(
                "run entry{id} ({uses}): `{name}` is not an argument of {uses}"
            )));
        }
    }
}

fn literal_string(expr: &Expr) -> Option<String> {
    match expr {
        Expr::String { value, .. } | Expr::RawString { value, .. } => value.as_string().ok().map(|s| s.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        Registry::with_http(crate::http::HttpSettings::default())
    }

    #[test]
    fn unknown_uses_and_missing_or_unknown_args_are_found_with_lines() {
        let policy = r#"package action

run contains {"id": "page", "uses": "pagerduty.trigger", "args": {"summary": "x"}} if true

run contains {"id": "typo", "uses": "slack.pots", "args": {}} if true

run contains {"id": "ok", "uses": "http.fetch", "args": {"url": input.env.URL}} if true

run contains {"id": "extra", "uses": "http.fetch", "args": {"url": "u", "methd": "GET"}} if true

run contains {"id": "computed", "uses": "http.fetch", "args": args} if { args := {} }

run contains x if { x := {"id": "dynamic", "uses": "nope.nope"} }
"#;
        let findings = check_run_entries(
            vec![PolicyFile {
                name: "policies/action.rego".into(),
                text: policy.into(),
            }],
            &registry(),
        )
        .unwrap();
        let shown: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
        assert_eq!(shown.len(), 3, "{shown:#?}");
        assert_eq!(shown[0], "policies/action.rego:3: run entry \"page\" (pagerduty.trigger): missing required argument `secret_routing_key`");
        assert!(
            shown[1].starts_with("policies/action.rego:5: run entry \"typo\": unknown action \"slack.pots\" (known: "),
            "{}",
            shown[1]
        );
        assert_eq!(
            shown[2],
            "policies/action.rego:9: run entry \"extra\" (http.fetch): `methd` is not an argument of http.fetch"
        );
    }
}
