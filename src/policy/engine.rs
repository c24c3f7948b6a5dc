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
/// and clones start prepared.
pub(super) fn compiled(files: Vec<PolicyFile>, timeout: Duration) -> Result<regorus::Engine, PolicyError> {
    let mut engine = new_engine(timeout);
    for file in with_escape_functions(files) {
        engine
            .add_policy(file.name, file.text)
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
