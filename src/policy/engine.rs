//! The regorus engine as every policy here runs it, and where compile
//! errors point.

use std::num::NonZeroU32;
use std::time::Duration;

use regorus::utils::limits::ExecutionTimerConfig;

use super::error::PolicyError;
use super::escape::with_escape_functions;
use super::source::PolicyFile;

/// A regorus engine configured the way every policy here runs: bounded in
/// time, its unbounded builtins guarded, prints gathered.
pub fn new_engine(timeout: Duration) -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    engine.set_gather_prints(true);
    engine.set_execution_timer_config(timer(timeout));
    super::guard::guard_engine(&mut engine);
    super::host::add_to(&mut engine);
    engine
}

/// An engine holding `files` (the `escape` module added when imported),
/// prepared: the first evaluation reports unsafe variables and the like,
/// and clones start prepared. Readings are made OPA's in the text: the
/// references a negated call or a membership used as a value reads are
/// evaluated ahead of it (`policy::hoist`), an object pattern matches an
/// object of its size only (`policy::patterns`), a `with` target
/// naming a rule of the package or an import without `data.` is written
/// as its path, and a `some … in` variable named like a rule is renamed
/// where regorus would refuse it (`policy::shadowing`); template strings
/// are written as calls and `rego.metadata` calls as their values first
/// (`in_regorus_syntax`), and reads of `p[x] …` rules go through helpers
/// last (`policy::empty_objects`).
pub(super) fn compiled(files: Vec<PolicyFile>, timeout: Duration) -> Result<regorus::Engine, PolicyError> {
    let engine = with_readings(files, timeout)?;
    Ok(with_empty_objects(engine, timeout))
}

/// `engine` with reads of rules named with a variable in their path made
/// OPA's (an empty object when nothing is derived: `policy::empty_objects`),
/// compiled again when there are any; as it was when that text does not
/// compile (a defect here, never the author's).
fn with_empty_objects(mut engine: regorus::Engine, timeout: Duration) -> regorus::Engine {
    let texts = super::empty_objects::rewritten(engine.get_modules());
    if texts.is_empty() {
        return engine;
    }
    let files: Vec<PolicyFile> = texts
        .into_iter()
        .map(|(name, text)| PolicyFile { name, text })
        .collect();
    match engine_of(&files, timeout) {
        Ok(rewritten) => rewritten,
        Err(error) => {
            tracing::warn!(%error, "rules named with a variable in their path read as regorus reads them: their rewrite does not compile");
            engine
        }
    }
}

/// [`compiled`] up to the empty objects: the syntax, then OPA's readings.
fn with_readings(files: Vec<PolicyFile>, timeout: Duration) -> Result<regorus::Engine, PolicyError> {
    let files = with_escape_functions(in_regorus_syntax(files)?);
    let (files, mut engine) = match engine_of(&files, timeout) {
        Ok(engine) => (files, engine),
        // A `some … in` variable named like a rule of its package is OPA's
        // local where regorus refuses it: renamed (`policy::shadowing`),
        // else the error as written stands.
        Err(error) => match super::shadowing::renamed(&files, &parsed(&files)) {
            (renamed, true) => match engine_of(&renamed, timeout) {
                Ok(engine) => (renamed, engine),
                Err(_) => return Err(error),
            },
            (_, false) => return Err(error),
        },
    };
    let modules = engine.get_modules().clone();
    let value_rules = super::analysis::value_rule_names(&modules);
    // Per file, its rewritten texts in order of preference: every edit,
    // then without the pattern checks, then without the moved references,
    // then those alone — a defect in one rewrite's text costs the file
    // that rewrite, not the others.
    let variants: Vec<Vec<String>> = files
        .iter()
        .map(|file| {
            let Some(module) = modules.iter().find(|m| *m.package.span.source.file() == file.name) else {
                return Vec::new();
            };
            let negations = super::hoist::negations(module);
            let hoisted = super::hoist::edits(module);
            // A pattern binds what a moved reference may read: its
            // statements go first where both insert.
            let patterns = super::patterns::edits(module);
            let mut with_targets = super::hoist::Rewrites::default();
            if let Some(rules) = value_rules.get(&super::analysis::package_path(module)) {
                for (start, end, path) in super::analysis::short_with_targets(module, rules) {
                    with_targets.replace(start, end, path);
                }
            }
            let tiers = [
                vec![&negations, &patterns, &hoisted, &with_targets],
                vec![&negations, &hoisted, &with_targets],
                vec![&negations, &patterns, &with_targets],
                vec![&negations, &hoisted],
                vec![&negations],
            ];
            let mut texts: Vec<String> = Vec::new();
            for tier in tiers {
                let edits = super::hoist::Rewrites::merged(tier);
                if edits.is_empty() {
                    continue;
                }
                let text = super::hoist::replaced(&file.text, edits);
                if !texts.contains(&text) {
                    texts.push(text);
                }
            }
            texts
        })
        .collect();
    if variants.iter().all(Vec::is_empty) {
        return Ok(engine);
    }
    // `chosen(i)`: which variant of file `i` (none: as written).
    let with = |chosen: &dyn Fn(usize) -> Option<usize>| -> Vec<PolicyFile> {
        files
            .iter()
            .enumerate()
            .map(|(i, file)| match chosen(i).and_then(|v| variants[i].get(v)) {
                Some(text) => PolicyFile {
                    name: file.name.clone(),
                    text: text.clone(),
                },
                None => file.clone(),
            })
            .collect()
    };
    if let Ok(rewritten) = engine_of(&with(&|_| Some(0)), timeout) {
        return Ok(rewritten);
    }
    // Each file's first variant that compiles with the others as written;
    // none: it keeps its text (a defect here, never the author's: the
    // modules as written compiled).
    let chosen: Vec<Option<usize>> = (0..files.len())
        .map(|i| {
            let found = (0..variants[i].len())
                .find(|&v| engine_of(&with(&|j| (j == i).then_some(v)), timeout).is_ok());
            if found != Some(0) && !variants[i].is_empty() {
                tracing::warn!(file = %files[i].name, "some of OPA's readings (moved references, pattern sizes, `with` targets) kept as written: their rewrite does not compile");
            }
            found
        })
        .collect();
    Ok(engine_of(&with(&|i| chosen[i]), timeout).unwrap_or(engine))
}

/// `files` as regorus reads them: OPA's template strings written as calls
/// (`policy::template`), then `rego.metadata.rule()` / `chain()` as the
/// values OPA's compiler puts there (`policy::metadata`, which also
/// refuses METADATA blocks OPA refuses). Lines stay where they were.
pub fn in_regorus_syntax(files: Vec<PolicyFile>) -> Result<Vec<PolicyFile>, PolicyError> {
    let files = super::template::written_as_calls(without_future_imports_beside_v1(files))?;
    if !files.iter().any(super::metadata::may_call) {
        return Ok(files);
    }
    let modules = parsed(files.iter().filter(|file| super::metadata::may_hold(file)));
    super::metadata::written_as_values(files, &modules)
}

/// `files` with `import future.keywords…` emptied (the line kept) in a file
/// that also imports `rego.v1`: OPA takes both (the keywords are v1's
/// anyway), regorus refused the pair ("this import shadows previous import
/// of `in`") — a policy moving from v0 to v1 often keeps both.
fn without_future_imports_beside_v1(files: Vec<PolicyFile>) -> Vec<PolicyFile> {
    let import = |line: &str, what: &str| {
        line.trim_start()
            .strip_prefix("import")
            .is_some_and(|rest| rest.starts_with(char::is_whitespace) && rest.trim_start().starts_with(what))
    };
    files
        .into_iter()
        .map(|file| {
            let v1 = file.text.lines().any(|line| {
                import(line, "rego.v1") && line.split('#').next().unwrap_or_default().trim().ends_with("rego.v1")
            });
            if !v1 || !file.text.lines().any(|line| import(line, "future.keywords")) {
                return file;
            }
            let text = file
                .text
                .split_inclusive('\n')
                .map(|line| match import(line, "future.keywords") {
                    true => &line[line.trim_end_matches(['\n', '\r']).len()..],
                    false => line,
                })
                .collect();
            PolicyFile { text, ..file }
        })
        .collect()
}

/// The modules of `files` as written, parsed only: their spans are into
/// the files' own text (a caller with template strings writes them as
/// calls first: `in_regorus_syntax`).
pub(super) fn parsed<'a>(
    files: impl IntoIterator<Item = &'a PolicyFile>,
) -> Vec<regorus::unstable::Ref<regorus::unstable::Module>> {
    let mut engine = regorus::Engine::new();
    for file in files {
        // Files that compiled parse; one that does not has no module here.
        let _ = engine.add_policy(file.name.clone(), file.text.clone());
    }
    engine.get_modules().clone()
}

fn engine_of(files: &[PolicyFile], timeout: Duration) -> Result<regorus::Engine, PolicyError> {
    let mut engine = new_engine(timeout);
    for file in files {
        engine
            .add_policy(file.name.clone(), file.text.clone())
            .map_err(|err| PolicyError::Compile(err.to_string()))?;
    }
    engine
        .eval_query("true".to_string(), false)
        .map_err(|err| PolicyError::Compile(err.to_string()))?;
    Ok(engine)
}

pub(super) fn timer(limit: Duration) -> ExecutionTimerConfig {
    ExecutionTimerConfig {
        limit,
        check_interval: NonZeroU32::new(1024).expect("non-zero"),
    }
}

/// regorus errors carry a source excerpt over several lines; logs want one:
/// `file:line:col: message`.
pub(super) fn first_line(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let location = lines.iter().find_map(|l| l.strip_prefix("-->")).map(str::trim);
    let message = lines
        .iter()
        .find_map(|l| l.strip_prefix("error:"))
        .map(str::trim)
        .or_else(|| lines.iter().copied().find(|l| !l.is_empty()))
        .unwrap_or_default();
    match location {
        Some(location) => format!("{location}: {message}"),
        None => message.to_string(),
    }
}
