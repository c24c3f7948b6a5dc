//! `check`: compile the policies (tests included), check literal `run`
//! entries against the action catalog, and say what the policies handle.

mod lint;

use super::args::PolicyArgs;
use crate::app;
use crate::config::Config;
use crate::policy::{read_source, PolicySet};
use lint::check_run_entries;

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub policies: PolicyArgs,
}

/// Exit codes: 0 the policies compile and their literal `run` entries name
/// known actions with their required arguments; 1 otherwise.
pub async fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let mut config = Config::from_env()?;
    args.policies.apply(&mut config);
    let files = read_source(&config.policies)?;
    let tests = files.iter().filter(|f| f.is_test()).count();
    // Production policies alone, then with their tests: both must compile.
    let production_files: Vec<_> = files.iter().filter(|f| !f.is_test()).cloned().collect();
    let production = PolicySet::compile(production_files.clone(), config.policy_timeout)?;
    PolicySet::compile(files, config.policy_timeout)?;
    let registry = app::registry(&config, None);
    let findings = check_run_entries(production_files, &registry)?;
    for finding in &findings {
        eprintln!("error: {finding}");
    }
    if !findings.is_empty() {
        eprintln!("{} problem(s) in run entries", findings.len());
        return Ok(1);
    }
    println!(
        "ok: {} policy file(s), {} test file(s); alert policies for schema(s): {}",
        production.files().len(),
        tests,
        production.schemas().iter().cloned().collect::<Vec<_>>().join(", ")
    );
    Ok(0)
}
