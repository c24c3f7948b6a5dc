//! The local commands. Each returns an exit code; `main` only dispatches.

mod actions;
mod args;
mod bundle;
mod check;
mod play;
mod replay;
mod run;
mod test;
mod workflows;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "alert-responder",
    version,
    about = "Rego-driven responder for Matano alert changes: a Lambda, and this CLI to run and check policies locally"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log verbosity for stderr (error, warn, info, debug, trace). Default:
    /// warn; error for `test`, `play`, `check` and `bundle`, whose findings are reported anyway.
    #[arg(long, global = true, env = "LOG_LEVEL")]
    pub log_level: Option<String>,
}

impl Cli {
    pub fn log_level(&self) -> &str {
        match (&self.log_level, &self.command) {
            (Some(level), _) => level,
            (None, Command::Test(_) | Command::Play(_) | Command::Check(_) | Command::Bundle(_)) => "error",
            (None, _) => "warn",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the policies and actions on an alert change; print one JSON outcome per line.
    Run(run::RunArgs),
    /// Compile the policies and report what they handle.
    Check(check::CheckArgs),
    /// Run the Rego unit tests (rules named test_*), like `opa test`.
    Test(test::TestArgs),
    /// Run scenarios with mocked action results and check their expectations.
    Play(play::PlayArgs),
    /// Pause or resume every action of a deployment (the kill switch), or show whether they run.
    Actions(actions::ActionsArgs),
    /// Suspended workflows (approvals, waits): list, show, resume or cancel them.
    Workflows(workflows::WorkflowsArgs),
    /// Check, test and play a policy directory, then write it as a bundle for POLICY_BUNDLE; prints its digest.
    Bundle(bundle::BundleArgs),
    /// Re-decide recorded changes with candidate policies (never acting) and report what would differ.
    Replay(replay::ReplayArgs),
}

impl Command {
    /// Runs the command; the exit code it asks for.
    pub async fn run(self) -> anyhow::Result<i32> {
        match self {
            Command::Run(args) => run::run(args).await,
            Command::Check(args) => check::run(args).await,
            Command::Test(args) => test::run(args).await,
            Command::Play(args) => play::run(args).await,
            Command::Actions(args) => actions::run(args).await,
            Command::Workflows(args) => workflows::run(args).await,
            Command::Bundle(args) => bundle::run(args).await,
            Command::Replay(args) => replay::run(args).await,
        }
    }
}
