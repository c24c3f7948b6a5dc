//! Compiled policies and their evaluation.
//!
//! Each entry rule (every schema's `alert`, the action policy's `run`) is
//! compiled further into a program for regorus's register VM, which
//! evaluates it 3-5x faster than the tree-walking interpreter. Rules the VM
//! compiler does not take (`print`, `with`) run on clones of the prepared
//! interpreter instead; `POLICY_ENGINE=interpreter` runs everything there.
//!
//! The engines agree on every successful evaluation (the test suite runs the
//! bundled scenarios on both). They differ on runtime errors inside a rule
//! body (division by zero, a builtin given the wrong type): the interpreter
//! fails the whole evaluation; the VM makes that body undefined, as OPA does
//! by default, and the other bodies still count.
//!
//! - Alert policies: `package alert.<schema>`, rule set `alert`; `input` is
//!   the payload itself.
//! - The action policy: `package action`, rule set `run`; `input` is
//!   `{alert, env, seq, called}`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::num::NonZeroU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::analysis::{self, ConflictRisk};
use super::engine::{compiled, timer};
use super::error::PolicyError;
use super::request::{ActionRequest, ACTION_RULE};
use super::rewrite::{interpreter_engine, Rewritten};
use super::source::{read_source, source_digest, PolicyFile};
use super::value::{to_policy_value, typed_element};
use super::vm::{compile_program, VmRule};
use crate::config::{PolicyEngine, PolicySource};
use crate::model::AlertDraft;

/// Compiled policies, ready to evaluate.
#[derive(Clone)]
pub struct PolicySet {
    /// Prepared once; the VM programs are compiled from it, and interpreted
    /// evaluations run on a clone unless `interpreter` is set.
    engine: regorus::Engine,
    /// The same modules with their partial rules rewritten for the
    /// interpreter (`rewrite`), when some are and some entry rule runs there.
    interpreter: Option<Arc<Rewritten>>,
    /// VM programs by entry rule; a rule missing here is interpreted.
    programs: HashMap<String, VmRule>,
    /// Entry rules the VM compiler refused, with its reason.
    interpreted: Vec<(String, String)>,
    evaluator: PolicyEngine,
    schemas: BTreeSet<String>,
    files: Vec<String>,
    timeout: Duration,
    /// Bytes one evaluation may allocate (`POLICY_MEMORY_MB`).
    memory: NonZeroU64,
    /// Lines the interpreter evaluated, by file, when collecting (`check`).
    coverage: Option<Arc<Mutex<CoveredLines>>>,
    /// `package action` exists (a directory of alert policies only decides
    /// alerts and runs nothing).
    has_action_policy: bool,
    /// `print()` output to stderr (`--enable-print`) instead of the log.
    show_prints: bool,
    /// A policy mentions `raw`: `input.alert.raw` is built.
    reads_raw: bool,
    /// `data.action.sequential` is true: a round's actions run one after
    /// another, in the set's order (AlertChain's), instead of concurrently.
    sequential: bool,
    /// `sha256:<hex>` of the production files, names relative to their root
    /// (`source_digest`): what outcomes and decision records name.
    digest: Arc<str>,
}

impl std::fmt::Debug for PolicySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicySet")
            .field("schemas", &self.schemas)
            .field("files", &self.files)
            .field("interpreted", &self.interpreted)
            .finish()
    }
}

impl PolicySet {
    /// Loads the production policies (tests excluded) from `source`.
    pub fn load(source: &PolicySource, timeout: Duration) -> Result<PolicySet, PolicyError> {
        let files = read_source(source)?;
        let digest = source_digest(source, &files);
        let mut set = Self::compile(files.into_iter().filter(|f| !f.is_test()).collect(), timeout)?;
        set.digest = digest.into();
        Ok(set)
    }

    /// Compiles `files`, failing on any syntax or analysis error (with the file
    /// and line regorus reports) and when there is no policy at all.
    pub fn compile(files: Vec<PolicyFile>, timeout: Duration) -> Result<PolicySet, PolicyError> {
        // `input.alert.raw` costs a serialization of the payload per alert:
        // made only for policies that may read it.
        let reads_raw = files.iter().any(|file| file.text.contains("raw"));
        // Names as given; `load` and bundles name files relative to their root.
        let digest = source_digest(&PolicySource::Dir(std::path::PathBuf::new()), &files);
        let (engine, names) = prepare(files, timeout)?;
        let packages = engine
            .get_packages()
            .map_err(|err| PolicyError::Compile(err.to_string()))?;
        let has_action_policy = packages.iter().any(|p| p == "data.action");
        let schemas: BTreeSet<String> = packages
            .iter()
            .filter_map(|p| p.strip_prefix("data.alert."))
            .filter(|schema| !schema.contains('.'))
            .map(str::to_string)
            .collect();
        if schemas.is_empty() && !has_action_policy {
            return Err(PolicyError::NoPolicy);
        }
        let entries: Vec<String> = schemas
            .iter()
            .map(|schema| alert_rule(schema))
            .chain(has_action_policy.then(|| ACTION_RULE.to_string()))
            .collect();
        let mut set = Self::with_entries(engine, names, schemas, &entries, timeout)?;
        set.has_action_policy = has_action_policy;
        set.reads_raw = reads_raw;
        set.sequential = has_action_policy && constant_true(&set.engine, "data.action.sequential");
        set.digest = digest.into();
        Ok(set)
    }

    /// `sha256:<hex>` of the production policies.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The digest, shared: every outcome of a decision carries it.
    pub fn shared_digest(&self) -> Arc<str> {
        Arc::clone(&self.digest)
    }

    /// Whether there is an action policy (`package action`).
    pub fn has_action_policy(&self) -> bool {
        self.has_action_policy
    }

    /// Whether `input.alert.raw` (the payload as indented JSON text,
    /// AlertChain's) is given to the action policy.
    pub fn reads_raw(&self) -> bool {
        self.reads_raw
    }

    /// Whether a round's actions run one after another (`sequential := true`
    /// in `package action`).
    pub fn sequential(&self) -> bool {
        self.sequential
    }

    /// Compiles `files` for evaluating `rules` (full paths, `data.a.b`),
    /// exactly as the entry rules of [`PolicySet::compile`] are: on the VM,
    /// or on the interpreter where the VM cannot keep Rego's semantics. For
    /// checks that evaluate any rule (the OPA conformance suite).
    pub fn compile_rules(
        files: Vec<PolicyFile>,
        timeout: Duration,
        rules: &[String],
    ) -> Result<PolicySet, PolicyError> {
        let (engine, names) = prepare(files, timeout)?;
        Self::with_entries(engine, names, BTreeSet::new(), rules, timeout)
    }

    fn with_entries(
        mut engine: regorus::Engine,
        names: Vec<String>,
        schemas: BTreeSet<String>,
        entries: &[String],
        timeout: Duration,
    ) -> Result<PolicySet, PolicyError> {
        let modules = engine.get_modules().clone();
        let unknown = analysis::unknown_calls(&modules, &extensions());
        if !unknown.is_empty() {
            return Err(PolicyError::UnknownFunctions(
                unknown.iter().map(ToString::to_string).collect(),
            ));
        }
        let misused = analysis::extension_misuses(&modules, &super::host::arities());
        if !misused.is_empty() {
            return Err(PolicyError::Compile(misused.join("; ")));
        }
        let miscalled = analysis::function_arity_misuses(&modules);
        if !miscalled.is_empty() {
            return Err(PolicyError::Compile(miscalled.join("; ")));
        }
        if let Some(cycle) = super::recursion::first_cycle(&modules) {
            return Err(PolicyError::Compile(cycle));
        }
        let risks = analysis::conflict_risks(&modules);
        let shapes = analysis::vm_shape_risks(&modules);
        let host_calls = analysis::extension_calls(&modules, &extensions());
        let mut programs = HashMap::new();
        let mut interpreted = Vec::new();
        for rule in entries {
            if let Some(reason) = interpreter_needed(&modules, &risks, &shapes, &host_calls, rule) {
                tracing::info!(rule, reason, "rule runs on the interpreter");
                interpreted.push((rule.clone(), reason));
                continue;
            }
            match compile_program(&mut engine, rule) {
                Ok(program) => {
                    programs.insert(rule.clone(), VmRule::new(program));
                }
                Err(reason) => {
                    tracing::info!(
                        rule,
                        reason,
                        "rule runs on the interpreter: the VM compiler does not take it"
                    );
                    interpreted.push((rule.clone(), reason));
                }
            }
        }
        let interpreter = match interpreted.is_empty() {
            true => None,
            false => interpreter_engine(&mut engine, timeout).map(Arc::new),
        };
        Ok(PolicySet {
            engine,
            interpreter,
            programs,
            interpreted,
            evaluator: PolicyEngine::Vm,
            schemas,
            files: names,
            timeout,
            memory: DEFAULT_MEMORY,
            coverage: None,
            has_action_policy: true,
            show_prints: false,
            reads_raw: true,
            sequential: false,
            digest: Arc::from(""),
        })
    }

    /// Collects the lines interpreted evaluations cover (see
    /// [`PolicySet::covered_lines`]); for `check`, with the interpreter.
    pub fn with_coverage(mut self) -> PolicySet {
        self.coverage = Some(Arc::default());
        self
    }

    /// The lines covered so far, by file.
    pub fn covered_lines(&self) -> CoveredLines {
        self.coverage
            .as_ref()
            .and_then(|lines| lines.lock().ok().map(|lines| lines.clone()))
            .unwrap_or_default()
    }

    /// Writes what `print()` prints to stderr (AlertChain's
    /// `--enable-print`); otherwise it is logged at info.
    pub fn with_prints(mut self, show: bool) -> PolicySet {
        self.show_prints = show;
        self
    }

    /// Sets how many bytes one evaluation may allocate.
    pub fn with_memory_budget(mut self, bytes: u64) -> PolicySet {
        self.memory = NonZeroU64::new(bytes).unwrap_or(DEFAULT_MEMORY);
        self
    }

    /// Chooses the evaluator. The VM programs are compiled either way, so
    /// the choice costs nothing at evaluation time.
    pub fn with_engine(mut self, engine: PolicyEngine) -> PolicySet {
        if engine == PolicyEngine::Interpreter {
            self.interpreted = self
                .programs
                .drain()
                .map(|(rule, _)| (rule, "POLICY_ENGINE=interpreter".to_string()))
                .chain(self.interpreted)
                .collect();
            self.interpreted.sort();
            if self.interpreter.is_none() {
                self.interpreter = interpreter_engine(&mut self.engine, self.timeout).map(Arc::new);
            }
        }
        self.evaluator = engine;
        self
    }

    pub fn engine(&self) -> PolicyEngine {
        self.evaluator
    }

    /// The places that read a document of `data` (the data files beside the
    /// policies, which only `test` loads): deployed, no such document
    /// exists and each reads undefined. In words, with file and line.
    pub fn reads_of_data_files(&self, data: &serde_json::Value) -> Vec<String> {
        let mut engine = self.engine.clone();
        let modules = engine.get_modules().clone();
        let packages: BTreeSet<String> = modules.iter().map(|m| analysis::package_path(m)).collect();
        let read = analysis::data_paths_read(&modules);
        // `data.vip.users` is also read as `data.vip` on its way: the longest.
        let longest = |path: &String| !read.keys().any(|other| other.starts_with(&format!("{path}.")));
        read.iter()
            .filter(|(path, _)| longest(path))
            .filter(|(path, _)| {
                // A package (or a rule of one) is no data file's.
                !packages
                    .iter()
                    .any(|package| *path == package || path.starts_with(&format!("{package}.")) || package.starts_with(&format!("{path}.")))
            })
            .filter(|(path, _)| {
                // The whole path is in the data, or reads into one of its
                // values (`data.vip.users[0]`).
                let mut at = data;
                let mut walked = 0;
                for key in path.trim_start_matches("data").trim_start_matches('.').split('.').filter(|k| !k.is_empty()) {
                    match (at.get(key), at.is_object()) {
                        (Some(next), _) => {
                            at = next;
                            walked += 1;
                        }
                        (None, true) => return false,
                        (None, false) => break,
                    }
                }
                walked > 0
            })
            .map(|(path, (file, line))| {
                let name = path.rsplit('.').next().unwrap_or(path);
                format!("{file}:{line}: {path} is read from a data file beside the policies, which only `test` loads: deployed it is undefined (write it as a rule of a package instead, `{name} := ...`)")
            })
            .collect()
    }

    /// Entry rules evaluated by the interpreter, with the reason.
    pub fn interpreted_rules(&self) -> &[(String, String)] {
        &self.interpreted
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
        self.eval_alerts_on(schema, &to_policy_value(payload), deadline)
    }

    /// [`PolicySet::eval_alerts`] on a payload already converted, so the
    /// workflow can reuse the conversion as `input.alert.data`.
    pub fn eval_alerts_on(
        &self,
        schema: &str,
        payload: &regorus::Value,
        deadline: Option<Instant>,
    ) -> Result<Vec<AlertDraft>, PolicyError> {
        let rule = alert_rule(schema);
        let values = self.eval_set(&rule, payload.clone(), deadline, &|_| false)?;
        values
            .iter()
            .enumerate()
            .map(|(index, value)| {
                let fail = |reason: String| PolicyError::Output {
                    rule: rule.clone(),
                    reason: format!("element {index}: {reason}"),
                };
                let draft = typed_element::<AlertDraft>(value)
                    .map_err(|err| fail(format!("at `{}`: {}", err.path, err.reason)))?;
                match draft.overlong_id() {
                    Some(reason) => Err(fail(reason)),
                    None => Ok(draft),
                }
            })
            .collect()
    }

    /// The actions the action policy asks for, given `input`, except those
    /// whose id is in `seen` (decided in an earlier round): they are neither
    /// converted nor validated again.
    pub fn eval_actions(
        &self,
        input: regorus::Value,
        deadline: Option<Instant>,
        seen: &HashSet<String>,
    ) -> Result<Vec<ActionRequest>, PolicyError> {
        if !self.has_action_policy {
            return Ok(Vec::new());
        }
        let is_seen = |v: &regorus::Value| match &v["id"] {
            regorus::Value::String(id) => seen.contains(id.as_ref()),
            _ => false,
        };
        let values = self.eval_set(ACTION_RULE, input, deadline, &is_seen)?;
        values
            .into_iter()
            .enumerate()
            .map(|(index, value)| ActionRequest::from_policy_element(index, &value))
            .collect()
    }

    /// The value of `rule` (undefined included) for `input`, on the engine
    /// this set runs the rule on; bounded by the policy timeout and `deadline`.
    pub fn evaluate(
        &self,
        rule: &str,
        input: regorus::Value,
        deadline: Option<Instant>,
    ) -> Result<regorus::Value, PolicyError> {
        let limit = match deadline {
            Some(deadline) => deadline
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_millis(1), self.timeout.max(Duration::from_millis(1))),
            None => self.timeout,
        };
        let result = match self.programs.get(rule) {
            Some(program) => program.execute(input, limit, self.memory),
            None => {
                let mut engine = match &self.interpreter {
                    Some(rewritten) => rewritten.engine.clone(),
                    None => self.engine.clone(),
                };
                engine.set_strict_builtin_errors(false);
                if limit < self.timeout {
                    engine.set_execution_timer_config(timer(limit));
                }
                if self.coverage.is_some() {
                    engine.set_enable_coverage(true);
                }
                // The interpreter has no budget of its own: the process may
                // grow by the budget while it runs (process-wide, so
                // concurrent evaluations share it until the last ends).
                let budget = InterpreterBudget::enter(self.memory);
                // With coverage: the input and start, for a run as written.
                let as_written = self.coverage.is_some().then(|| (input.clone(), Instant::now()));
                engine.set_input(input);
                let result = engine.eval_rule(rule.to_string());
                if let (Some((input, started)), Ok(report)) = (as_written, engine.get_coverage_report()) {
                    let report = match (&self.interpreter, &result) {
                        (Some(rewritten), Ok(_)) => {
                            let left = limit.saturating_sub(started.elapsed()).max(Duration::from_millis(1));
                            rewritten.coverage(report, self.as_written_coverage(rule, input, left).as_ref())
                        }
                        (Some(rewritten), Err(_)) => rewritten.coverage(report, None),
                        (None, _) => report,
                    };
                    self.collect_coverage(report);
                }
                drop(budget);
                for line in engine.take_prints().unwrap_or_default() {
                    if self.show_prints {
                        eprintln!("print: {line}");
                    } else {
                        tracing::info!(rule, print = %line, "policy print");
                    }
                }
                result.map_err(|err| err.to_string())
            }
        };
        result.map_err(|reason| match deadline {
            // Whatever stopped it, the invocation had no time left: a later
            // one decides again rather than recording a policy error. (A
            // real error that happens past the deadline is retried once, and
            // named on the retry.)
            Some(deadline) if Instant::now() >= deadline => PolicyError::Deadline { rule: rule.to_string() },
            _ => PolicyError::Eval {
                rule: rule.to_string(),
                reason,
            },
        })
    }

    fn collect_coverage(&self, report: regorus::coverage::Report) {
        let Some(coverage) = &self.coverage else {
            return;
        };
        if let Ok(mut lines) = coverage.lock() {
            for file in report.files {
                lines.entry(file.path).or_default().extend(file.covered);
            }
        }
    }

    /// The coverage of `rule` evaluated on the modules as written (its
    /// value is the rewritten modules'), within `limit`. An evaluation
    /// that fails there (the interpreter's reset, say) covers what it
    /// reached.
    fn as_written_coverage(
        &self,
        rule: &str,
        input: regorus::Value,
        limit: Duration,
    ) -> Option<regorus::coverage::Report> {
        let mut engine = self.engine.clone();
        engine.set_execution_timer_config(timer(limit));
        engine.set_enable_coverage(true);
        engine.set_input(input);
        let _ = engine.eval_rule(rule.to_string());
        let _ = engine.take_prints();
        engine.get_coverage_report().ok()
    }

    /// Evaluates a partial set rule; undefined means empty. The evaluation is
    /// stopped at the policy timeout or at `deadline`, whichever comes first.
    fn eval_set(
        &self,
        rule: &str,
        input: regorus::Value,
        deadline: Option<Instant>,
        skip: &dyn Fn(&regorus::Value) -> bool,
    ) -> Result<Vec<regorus::Value>, PolicyError> {
        let value = self.evaluate(rule, input, deadline)?;
        match value {
            regorus::Value::Undefined => Ok(Vec::new()),
            regorus::Value::Set(set) => Ok(set.iter().filter(|v| !skip(v)).cloned().collect()),
            // AlertChain reads `alert` and `run` into lists: `run := [...]`
            // is taken too, in its order, an element listed twice once (as
            // in a set: the same entry would derive the same id).
            regorus::Value::Array(items) => {
                let mut seen = BTreeSet::new();
                Ok(items.iter().filter(|v| !skip(v) && seen.insert(*v)).cloned().collect())
            }
            other => Err(PolicyError::Output {
                rule: rule.to_string(),
                reason: format!(
                    "expected a set (`{} contains x if {{ ... }}`) or an array, got {}",
                    rule.rsplit('.').next().unwrap_or(rule),
                    serde_json::to_string(&other).unwrap_or_default()
                ),
            }),
        }
    }
}

/// An engine holding `files`, prepared, and their names.
fn prepare(files: Vec<PolicyFile>, timeout: Duration) -> Result<(regorus::Engine, Vec<String>), PolicyError> {
    let names: Vec<String> = files.iter().map(|file| file.name.clone()).collect();
    Ok((compiled(files, timeout)?, names))
}

/// Lines evaluated, by file.
type CoveredLines = BTreeMap<String, BTreeSet<u32>>;

/// The process-wide allocation limit while interpreted evaluations run:
/// what the process holds when one starts, plus its budget — raised, never
/// lowered, by each that starts while others run — and cleared when the
/// last ends, so that one finishing never lifts the limit from under
/// another (`replay` evaluates on every core).
struct InterpreterBudget;

static INTERPRETING: Mutex<usize> = Mutex::new(0);

impl InterpreterBudget {
    fn enter(memory: NonZeroU64) -> InterpreterBudget {
        let mut running = INTERPRETING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let held = mimalloc::limits::global_allocation_stats_snapshot().allocated;
        let wanted = held.saturating_add(memory.get());
        let limit = match *running {
            0 => wanted,
            _ => regorus::global_memory_limit().map_or(wanted, |current| current.max(wanted)),
        };
        regorus::set_global_memory_limit(Some(limit));
        *running += 1;
        InterpreterBudget
    }
}

impl Drop for InterpreterBudget {
    fn drop(&mut self) {
        let mut running = INTERPRETING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *running = running.saturating_sub(1);
        if *running == 0 {
            regorus::set_global_memory_limit(None);
        }
    }
}

/// Bytes one evaluation may allocate unless configured: 32 MiB (a typical
/// decision allocates well under one).
const DEFAULT_MEMORY: NonZeroU64 = NonZeroU64::new(32 * 1024 * 1024).expect("non-zero");

/// Functions the host adds to the builtins (`policy::host`).
fn extensions() -> Vec<&'static str> {
    super::host::names()
}

/// What of `by_package` lies in the `reachable` packages.
fn reached<T: std::fmt::Display>(reachable: &BTreeSet<String>, by_package: &BTreeMap<String, Vec<T>>) -> Vec<String> {
    reachable
        .iter()
        .filter_map(|package| by_package.get(package))
        .flatten()
        .map(ToString::to_string)
        .collect()
}

/// Why `rule` must run on the interpreter: the rules it may read that could
/// produce conflicting values (regorus's VM makes a conflict undefined, the
/// interpreter reports it, as OPA does), the rules whose shape the VM
/// reads unlike OPA (`analysis::vm_shape_risks`), or the host functions it
/// may call (the VM compiler takes none).
fn interpreter_needed(
    modules: &[regorus::unstable::Ref<regorus::unstable::Module>],
    risks: &BTreeMap<String, Vec<ConflictRisk>>,
    shapes: &BTreeMap<String, Vec<ConflictRisk>>,
    host_calls: &BTreeMap<String, Vec<String>>,
    rule: &str,
) -> Option<String> {
    if risks.is_empty() && shapes.is_empty() && host_calls.is_empty() {
        return None;
    }
    let package = rule.rsplit_once('.').map_or(rule, |(package, _)| package);
    let reachable = analysis::reachable_packages(modules, package);
    let conflicts = reached(&reachable, risks);
    if !conflicts.is_empty() {
        return Some(format!(
            "conflicts are checked on the interpreter: {}",
            conflicts.join("; ")
        ));
    }
    let shaped = reached(&reachable, shapes);
    if !shaped.is_empty() {
        return Some(format!("the VM reads these unlike OPA: {}", shaped.join("; ")));
    }
    let calls = reached(&reachable, host_calls);
    (!calls.is_empty()).then(|| format!("host functions run on the interpreter: {}", calls.join("; ")))
}

/// Whether `rule` is `true` without any input: a switch a policy sets as a
/// constant (`sequential := true`).
fn constant_true(engine: &regorus::Engine, rule: &str) -> bool {
    let mut engine = engine.clone();
    engine.set_input(regorus::Value::new_object());
    matches!(engine.eval_rule(rule.to_string()), Ok(regorus::Value::Bool(true)))
}

/// The rule an alert policy for `schema` defines.
fn alert_rule(schema: &str) -> String {
    format!("data.alert.{schema}.alert")
}

#[cfg(test)]
#[path = "set_tests.rs"]
mod tests;
