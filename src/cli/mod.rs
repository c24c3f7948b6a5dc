//! The local commands. Each returns an exit code; `main` only dispatches.

pub mod check;
pub mod run;

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
    /// Log verbosity for stderr (error, warn, info, debug, trace).
    #[arg(long, global = true, default_value = "warn", env = "LOG_LEVEL")]
    pub log_level: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the policies and actions on an alert change; print one JSON outcome per line.
    Run(run::RunArgs),
    /// Compile the policies and report what they handle.
    Check(check::CheckArgs),
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
