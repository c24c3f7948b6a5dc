//! Arguments shared by commands.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::aws::{LazySnsClient, SnsPublisher};
use crate::config::{Config, PolicySource};
use crate::policy::{describe_source, read_source, PolicyError};
use crate::publish::{FilePublisher, Publisher, StdoutPublisher};

/// The sample Matano change `run` uses when no input is given, and `check`
/// evaluates the policies on.
pub const SAMPLE_CHANGE: &str = include_str!("../../examples/matano_alert_change.json");

/// Where the commands look for policies when neither `--policies` nor
/// `POLICY_DIR` names a directory.
const DEFAULT_POLICY_DIR: &str = "policies";

/// `--policies DIR`, shared by every command alike.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// Directory of *.rego policies (recursively). Default: POLICY_DIR, else ./policies when it exists, else the starter kit bundled in the binary.
    #[arg(long, short = 'd', value_name = "DIR")]
    pub policies: Option<PathBuf>,
}

impl PolicyArgs {
    pub fn apply(&self, config: &mut Config) {
        if let Some(dir) = &self.policies {
            config.policies = PolicySource::Dir(dir.clone());
        } else if config.policies == PolicySource::Bundled && Path::new(DEFAULT_POLICY_DIR).is_dir() {
            config.policies = PolicySource::Dir(PathBuf::from(DEFAULT_POLICY_DIR));
        }
    }
}

/// The line every command starts with: which policies it runs.
pub fn policy_source_line(config: &Config) -> Result<String, PolicyError> {
    let files = read_source(&config.policies)?;
    Ok(describe_source(&config.policies, &files))
}

/// Where a command's outcomes go: `--sns` publishes to OUTCOME_TOPIC_ARN,
/// `--out FILE` appends to a file, else they are printed.
pub async fn outcome_publisher(
    config: &Config,
    sns: bool,
    out: Option<&Path>,
    client: &LazySnsClient,
) -> anyhow::Result<Arc<dyn Publisher>> {
    Ok(if sns {
        let topic = config
            .outcome_topic_arn
            .clone()
            .context("--sns needs OUTCOME_TOPIC_ARN")?;
        Arc::new(SnsPublisher::new(Arc::clone(client.get().await), topic))
    } else if let Some(path) = out {
        Arc::new(FilePublisher::new(path))
    } else {
        Arc::new(StdoutPublisher)
    })
}
