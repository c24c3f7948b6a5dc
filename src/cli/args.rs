//! Arguments shared by commands.

use std::path::PathBuf;

use crate::config::{Config, PolicySource};

/// The sample Matano change `run` uses when no input is given, and `check`
/// evaluates the policies on.
pub const SAMPLE_CHANGE: &str = include_str!("../../examples/matano_alert_change.json");

/// `--policies DIR`, shared by commands: absent means the bundled policies
/// (or `POLICY_DIR`).
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// Directory of *.rego policies (recursively). Default: POLICY_DIR, else the policies bundled at build time.
    #[arg(long, value_name = "DIR")]
    pub policies: Option<PathBuf>,
}

impl PolicyArgs {
    pub fn apply(&self, config: &mut Config) {
        if let Some(dir) = &self.policies {
            config.policies = PolicySource::Dir(dir.clone());
        }
    }
}
