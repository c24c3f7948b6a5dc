//! `check`: compile the policies (tests included), check every `run` entry
//! as a run would — statically where its shape is in the source
//! (`lint`), and by evaluating the policies over the scenarios and the
//! sample change (`explore`) — and say what the policies handle.

mod explore;
mod lint;

use super::args::{policy_source_line, PolicyArgs, SAMPLE_CHANGE};
use crate::app;
use crate::config::{Config, PolicySource};
use crate::play::{load_scenarios, ScenarioError};
use crate::policy::{available_builtins, load_test_data, read_source, PolicySet};
use lint::check_run_entries;

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub policies: PolicyArgs,
    /// Scenario file or directory to evaluate computed entries over (ours or
    /// AlertChain's). Default: `scenarios/` in the policies' directory.
    #[arg(long, short = 's', visible_alias = "scenario", value_name = "PATH")]
    pub scenarios: Option<std::path::PathBuf>,
    /// Print every builtin function policies may call in this build, one per line, and exit.
    #[arg(long)]
    pub builtins: bool,
    /// The deployment's state table (default: STATE_TABLE): actions that
    /// suspend a workflow (`approval.request`, `wait`) need one.
    #[arg(long, value_name = "TABLE")]
    pub table: Option<String>,
}

/// Exit codes: 0 the policies compile and every entry a run would take
/// checks out; 1 otherwise.
pub async fn run(args: CheckArgs) -> anyhow::Result<i32> {
    if args.builtins {
        for name in available_builtins() {
            println!("{name}");
        }
        return Ok(0);
    }
    let mut config = Config::from_env()?;
    args.policies.apply(&mut config);
    println!("{}", policy_source_line(&config)?);
    let files = read_source(&config.policies)?;
    let tests = files.iter().filter(|f| f.is_test()).count();
    // Production policies alone, then with their tests: both must compile.
    let production_files: Vec<_> = files.iter().filter(|f| !f.is_test()).cloned().collect();
    let production = PolicySet::compile(production_files.clone(), config.policy_timeout)?;
    PolicySet::compile(files, config.policy_timeout)?;
    let registry = app::registry(&config, None);
    let has_state = args.table.is_some() || config.state_table.is_some();
    let findings = check_run_entries(production_files.clone(), &registry, has_state)?;
    let mut scenarios = match (&args.scenarios, &config.policies) {
        (Some(path), _) => load_scenarios(path)?.scenarios,
        // The default place may hold none yet: the other checks still run.
        (None, PolicySource::Dir(dir)) if dir.join("scenarios").is_dir() => {
            match load_scenarios(&dir.join("scenarios")) {
                Ok(loaded) => loaded.scenarios,
                Err(ScenarioError::NoScenarios { path }) => {
                    eprintln!("note: {path} holds no scenarios: entries are explored over the sample change alone");
                    Vec::new()
                }
                Err(err) => return Err(err.into()),
            }
        }
        _ => Vec::new(),
    };
    scenarios.push(explore::sample_scenario(SAMPLE_CHANGE, config.policy_env.clone()));
    let explored = explore::explore_entries(
        production_files,
        &scenarios,
        &registry,
        &app::decide_settings(&config),
        &config.schemas,
        config.policy_timeout,
    )
    .await?;
    for finding in &findings {
        eprintln!("error: {finding}");
    }
    for problem in &explored.problems {
        eprintln!("error: {problem}");
    }
    // Data files beside the policies are `test`'s alone: a production rule
    // reading one decides otherwise once deployed.
    let data_reads = match &config.policies {
        PolicySource::Dir(dir) => production.reads_of_data_files(&load_test_data(dir)?),
        _ => Vec::new(),
    };
    for read in &data_reads {
        eprintln!("error: {read}");
    }
    for finding in &explored.unreached {
        eprintln!("note: {finding}");
    }
    // Where production leaves the VM: the interpreter's known differences
    // from OPA apply there (README, Known differences).
    for (rule, reason) in production.interpreted_rules() {
        eprintln!("note: {rule} runs on the interpreter ({reason}); the interpreter's known differences from OPA apply (README, Known differences)");
    }
    if !production.has_action_policy() {
        eprintln!("note: no action policy (`package action`): alerts are decided, and nothing runs");
    }
    let problems = findings.len() + explored.problems.len() + data_reads.len();
    if problems > 0 {
        eprintln!("{problems} problem(s)");
        return Ok(1);
    }
    println!(
        "ok: {} policy file(s), {} test file(s); alert policies for schema(s): {}; entries checked over {} input(s)",
        production.files().len(),
        tests,
        production.schemas().iter().cloned().collect::<Vec<_>>().join(", "),
        explored.inputs
    );
    Ok(0)
}
