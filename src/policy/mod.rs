//! Rego policies on regorus: loaded and compiled once at init, then evaluated
//! on cheap clones of the prepared engine.
//!
//! - Alert policies: `package alert.<schema>`, rule set `alert`; `input` is
//!   the payload itself.
//! - The action policy: `package action`, rule set `run`; `input` is
//!   `{alert, env, seq, called}`.

pub mod action_request;
pub mod lint;
pub mod unit_test;

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use regorus::utils::limits::ExecutionTimerConfig;
use serde_json::Value;

use crate::alert::AlertDraft;
use crate::config::PolicySource;
pub use action_request::{ActionRequest, CommitSpec};

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled_policies.rs"));
}

/// The action policy's rule, as a path.
pub const ACTION_RULE: &str = "data.action.run";

/// One policy source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFile {
    /// Shown in errors: a path relative to where policies were loaded from.
    pub name: String,
    pub text: String,
}

impl PolicyFile {
    /// Rego unit tests live in `*_test.rego` and are loaded only by `test`.
    pub fn is_test(&self) -> bool {
        self.name.ends_with("_test.rego")
    }
}

/// Why policies could not be loaded or evaluated. Each names the file or rule.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policies from {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("no policies found in {0} (expected *.rego files)")]
    Empty(String),
    #[error("policy does not compile: {0}")]
    Compile(String),
    #[error("no action policy: expected a file with `package action` and a `run` rule")]
    NoActionPolicy,
    #[error("evaluating {rule} failed: {reason}")]
    Eval { rule: String, reason: String },
    #[error("{rule} returned an invalid value: {reason}")]
    Output { rule: String, reason: String },
}

/// Compiled policies, ready to evaluate.
#[derive(Clone)]
pub struct PolicySet {
    /// Prepared once; every evaluation runs on a clone.
    engine: regorus::Engine,
    schemas: BTreeSet<String>,
    files: Vec<String>,
    timeout: Duration,
}

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySet")
            .field("schemas", &self.schemas)
            .field("files", &self.files)
            .finish()
    }
}

impl PolicySet {
    /// Loads the production policies (tests excluded) from `source`.
    pub fn load(source: &PolicySource, timeout: Duration) -> Result<PolicySet, PolicyError> {
        let files = read_source(source)?;
        Self::compile(files.into_iter().filter(|f| !f.is_test()).collect(), timeout)
    }

    /// Compiles `files`, failing on any syntax or analysis error (with the file
    /// and line regorus reports) and when no action policy is present.
    pub fn compile(files: Vec<PolicyFile>, timeout: Duration) -> Result<PolicySet, PolicyError> {
        let mut engine = new_engine(timeout);
        let mut names = Vec::new();
        for file in files {
            engine
                .add_policy(file.name.clone(), file.text)
                .map_err(|err| PolicyError::Compile(err.to_string()))?;
            names.push(file.name);
        }
        // The first evaluation analyses and schedules every module; doing it now
        // reports unsafe variables and the like at init, and clones start prepared.
        engine
            .eval_query("true".to_string(), false)
            .map_err(|err| PolicyError::Compile(err.to_string()))?;

        let packages = engine
            .get_packages()
            .map_err(|err| PolicyError::Compile(err.to_string()))?;
        if !packages.iter().any(|p| p == "data.action") {
            return Err(PolicyError::NoActionPolicy);
        }
        let schemas = packages
            .iter()
            .filter_map(|p| p.strip_prefix("data.alert."))
            .filter(|schema| !schema.contains('.'))
            .map(str::to_string)
            .collect();
        Ok(PolicySet {
            engine,
            schemas,
            files: names,
            timeout,
        })
    }

    /// Schemas that have an alert policy.
    pub fn schemas(&self) -> &BTreeSet<String> {
        &self.schemas
    }

    pub fn files(&self) -> &[String] {
        &self.files
    }

    pub fn has_schema(&self, schema: &str) -> bool {
        self.schemas.contains(schema)
    }

    /// The alerts `package alert.<schema>` makes of `payload`.
    pub fn eval_alerts(
        &self,
        schema: &str,
        payload: &Value,
        deadline: Option<Instant>,
    ) -> Result<Vec<AlertDraft>, PolicyError> {
        let rule = format!("data.alert.{schema}.alert");
        let values = self.eval_set(&rule, regorus::Value::from(payload.clone()), deadline)?;
        values
            .into_iter()
            .enumerate()
            .map(|(index, value)| {
                serde_path_to_error::deserialize::<_, AlertDraft>(&value).map_err(|err| PolicyError::Output {
                    rule: rule.clone(),
                    reason: format!("element {index}: at `{}`: {}", err.path(), err.inner()),
                })
            })
            .collect()
    }

    /// The actions the action policy asks for, given `input`.
    pub fn eval_actions(
        &self,
        input: regorus::Value,
        deadline: Option<Instant>,
    ) -> Result<Vec<ActionRequest>, PolicyError> {
        let values = self.eval_set(ACTION_RULE, input, deadline)?;
        values
            .into_iter()
            .enumerate()
            .map(|(index, value)| ActionRequest::from_policy_value(index, &value))
            .collect()
    }

    /// Evaluates a partial set rule; undefined means empty.
    /// Evaluates a partial set rule; undefined means empty. The evaluation is
    /// stopped at the policy timeout or at `deadline`, whichever comes first.
    fn eval_set(
        &self,
        rule: &str,
        input: regorus::Value,
        deadline: Option<Instant>,
    ) -> Result<Vec<Value>, PolicyError> {
        let mut engine = self.engine.clone();
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left < self.timeout {
                engine.set_execution_timer_config(timer(left.max(Duration::from_millis(1))));
            }
        }
        engine.set_input(input);
        let result = engine.eval_rule(rule.to_string());
        for line in engine.take_prints().unwrap_or_default() {
            tracing::info!(rule, print = %line, "policy print");
        }
        let value = result.map_err(|err| PolicyError::Eval {
            rule: rule.to_string(),
            reason: err.to_string(),
        })?;
        match value {
            regorus::Value::Undefined => Ok(Vec::new()),
            regorus::Value::Set(set) => set
                .iter()
                .map(|v| {
                    serde_json::to_value(v).map_err(|err| PolicyError::Output {
                        rule: rule.to_string(),
                        reason: err.to_string(),
                    })
                })
                .collect(),
            other => Err(PolicyError::Output {
                rule: rule.to_string(),
                reason: format!(
                    "expected a set (`{} contains x if {{ ... }}`), got {}",
                    rule.rsplit('.').next().unwrap_or(rule),
                    serde_json::to_string(&other).unwrap_or_default()
                ),
            }),
        }
    }
}

/// A regorus engine configured the way every policy here runs.
pub fn new_engine(timeout: Duration) -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    engine.set_gather_prints(true);
    engine.set_execution_timer_config(timer(timeout));
    engine
}

fn timer(limit: Duration) -> ExecutionTimerConfig {
    ExecutionTimerConfig {
        limit,
        check_interval: NonZeroU32::new(64).expect("non-zero"),
    }
}

/// Every policy file of a source, tests included, in a stable order.
pub fn read_source(source: &PolicySource) -> Result<Vec<PolicyFile>, PolicyError> {
    match source {
        PolicySource::Bundled => Ok(bundled::BUNDLED_POLICIES
            .iter()
            .map(|(name, text)| PolicyFile {
                name: name.to_string(),
                text: text.to_string(),
            })
            .collect()),
        PolicySource::Dir(dir) => {
            let mut paths = Vec::new();
            collect_rego(dir, &mut paths)?;
            paths.sort();
            if paths.is_empty() {
                return Err(PolicyError::Empty(dir.display().to_string()));
            }
            paths
                .into_iter()
                .map(|path| {
                    let text = std::fs::read_to_string(&path).map_err(|err| PolicyError::Read {
                        path: path.clone(),
                        reason: err.to_string(),
                    })?;
                    Ok(PolicyFile {
                        name: path.display().to_string(),
                        text,
                    })
                })
                .collect()
        }
    }
}

fn collect_rego(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), PolicyError> {
    let entries = std::fs::read_dir(dir).map_err(|err| PolicyError::Read {
        path: dir.to_path_buf(),
        reason: err.to_string(),
    })?;
    for entry in entries {
        let path = entry
            .map_err(|err| PolicyError::Read {
                path: dir.to_path_buf(),
                reason: err.to_string(),
            })?
            .path();
        if path.is_dir() {
            collect_rego(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rego") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file(name: &str, text: &str) -> PolicyFile {
        PolicyFile {
            name: name.to_string(),
            text: text.to_string(),
        }
    }

    const ACTION: &str =
        "package action\nrun contains {\"id\": \"a\", \"uses\": \"http.fetch\"} if input.alert.severity == \"high\"\n";

    #[test]
    fn bundled_policies_compile() {
        let set = PolicySet::load(&PolicySource::Bundled, Duration::from_secs(1)).unwrap();
        assert!(set.has_schema("matano"));
        assert!(set.files().iter().all(|f| !f.ends_with("_test.rego")));
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let err = PolicySet::compile(
            vec![
                file("policies/action.rego", ACTION),
                file(
                    "policies/broken.rego",
                    "package alert.x\n\nalert contains x if {\n  x := \n}\n",
                ),
            ],
            Duration::from_secs(1),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("policies/broken.rego:"), "{message}");
        assert!(message.contains(":5:") || message.contains(":4:"), "{message}");
    }

    #[test]
    fn unsafe_variable_fails_at_init() {
        let err = PolicySet::compile(
            vec![
                file("a.rego", ACTION),
                file("u.rego", "package alert.x\nalert contains y if { z == 1 }\n"),
            ],
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(err.to_string().contains("u.rego"), "{err}");
    }

    #[test]
    fn missing_action_policy_is_an_error() {
        let err = PolicySet::compile(vec![file("x.rego", "package alert.x\n")], Duration::from_secs(1)).unwrap_err();
        assert!(matches!(err, PolicyError::NoActionPolicy));
    }

    #[test]
    fn alert_policy_output_is_validated() {
        let set = PolicySet::compile(
            vec![
                file("a.rego", ACTION),
                file("x.rego", "package alert.x\nalert contains {\"title\": 7} if true\n"),
                file("y.rego", "package alert.y\nalert := {\"title\": \"t\"}\n"),
            ],
            Duration::from_secs(1),
        )
        .unwrap();
        let err = set.eval_alerts("x", &json!({}), None).unwrap_err().to_string();
        assert!(err.contains("data.alert.x.alert") && err.contains("`title`"), "{err}");
        let err = set.eval_alerts("y", &json!({}), None).unwrap_err().to_string();
        assert!(err.contains("expected a set"), "{err}");
    }

    #[test]
    fn runtime_error_names_the_rule() {
        let set = PolicySet::compile(
            vec![
                file("a.rego", ACTION),
                file(
                    "x.rego",
                    "package alert.x\nalert contains {\"title\": t} if { t := input.a / input.b }\n",
                ),
            ],
            Duration::from_secs(1),
        )
        .unwrap();
        let err = set
            .eval_alerts("x", &json!({"a": 1, "b": 0}), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("data.alert.x.alert"), "{err}");
    }

    fn slow_files() -> Vec<PolicyFile> {
        vec![
                file("a.rego", ACTION),
                file(
                    "slow.rego",
                    "package alert.slow\nalert contains {\"title\": sprintf(\"%d\", [n])} if {\n  n := count([x | some a in numbers.range(1, 2000); some b in numbers.range(1, 2000); x := a * b])\n}\n",
                ),
            ]
    }

    #[test]
    fn slow_rule_hits_the_timer() {
        let set = PolicySet::compile(slow_files(), Duration::from_millis(50)).unwrap();
        let err = set.eval_alerts("slow", &json!({}), None).unwrap_err().to_string();
        assert!(err.contains("data.alert.slow.alert"), "{err}");
        // The invocation's deadline bounds it too, below the policy timeout.
        let long = PolicySet::compile(slow_files(), Duration::from_secs(60)).unwrap();
        let started = Instant::now();
        let deadline = Some(Instant::now() + Duration::from_millis(50));
        assert!(long.eval_alerts("slow", &json!({}), deadline).is_err());
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(err.to_lowercase().contains("time") || err.contains("limit"), "{err}");
    }
}
