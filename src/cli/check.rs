//! `check`: compile the policies (tests included) and say what they handle.

use super::PolicyArgs;
use crate::config::Config;
use crate::policy::{read_source, PolicySet};

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub policies: PolicyArgs,
}

/// Exit codes: 0 the policies compile; errors propagate (exit 1).
pub async fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let mut config = Config::from_env()?;
    args.policies.apply(&mut config);
    let files = read_source(&config.policies)?;
    let tests = files.iter().filter(|f| f.is_test()).count();
    // Production policies alone, then with their tests: both must compile.
    let production = PolicySet::compile(
        files.iter().filter(|f| !f.is_test()).cloned().collect(),
        config.policy_timeout,
    )?;
    PolicySet::compile(files, config.policy_timeout)?;
    println!(
        "ok: {} policy file(s), {} test file(s); alert policies for schema(s): {}",
        production.files().len(),
        tests,
        production
            .schemas()
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(0)
}
