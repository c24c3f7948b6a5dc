//! The local commands. Each returns an exit code; `main` only dispatches.

pub mod check;
pub mod play;
pub mod run;
pub mod test;

use std::path::PathBuf;

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
    /// warn; error for `test` and `play`, whose failures are reported anyway.
    #[arg(long, global = true, env = "LOG_LEVEL")]
    pub log_level: Option<String>,
}

impl Cli {
    pub fn log_level(&self) -> &str {
        match (&self.log_level, &self.command) {
            (Some(level), _) => level,
            (None, Command::Test(_) | Command::Play(_)) => "error",
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
}

/// `--policies DIR`, shared by commands: absent means the bundled policies
/// (or `POLICY_DIR`).
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// Directory of *.rego policies (recursively). Default: POLICY_DIR, else the policies bundled at build time.
    #[arg(long, value_name = "DIR")]
    pub policies: Option<PathBuf>,
}

impl PolicyArgs {
    pub fn apply(&self, config: &mut crate::config::Config) {
        if let Some(dir) = &self.policies {
            config.policies = crate::config::PolicySource::Dir(dir.clone());
        }
    }
}
