//! `bundle`: checks, tests and plays a policy directory, then writes it as
//! a deterministic bundle (`tar.gz` with a manifest) for `POLICY_BUNDLE`.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::args::PolicyArgs;
use super::check::CheckArgs;
use super::play::PlayArgs;
use super::test::TestArgs;
use crate::bundle::build;
use crate::config::{Config, PolicySource};
use crate::policy::{read_source, PolicyFile};

#[derive(Debug, Clone, clap::Args)]
pub struct BundleArgs {
    #[command(flatten)]
    pub policies: PolicyArgs,
    /// Where to write the bundle (`.tar.gz`).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: PathBuf,
    /// The deployment has this state table (default: STATE_TABLE), as
    /// approvals and waits need: `check` passes them only with one.
    #[arg(long, value_name = "TABLE")]
    pub table: Option<String>,
}

/// Exit codes: 0 the bundle was written (its digest on the last line of
/// stdout); 1 a check, test or scenario failed and nothing was written.
pub async fn run(args: BundleArgs) -> anyhow::Result<i32> {
    let mut config = Config::from_env()?;
    args.policies.apply(&mut config);
    let PolicySource::Dir(dir) = config.policies.clone() else {
        anyhow::bail!("bundle needs a policy directory: give --policies DIR (or run it where ./policies is)");
    };
    let files = read_source(&config.policies)?;

    println!("== check");
    let checked = super::check::run(CheckArgs {
        policies: args.policies.clone(),
        scenarios: None,
        builtins: false,
        table: args.table.clone(),
    })
    .await?;
    if checked != 0 {
        return refuse("check failed");
    }
    println!("== test");
    if files.iter().any(PolicyFile::is_test) {
        let tested = super::test::run(TestArgs {
            policies: args.policies.clone(),
            run: None,
            verbose: false,
            coverage: false,
        })
        .await?;
        if tested != 0 {
            return refuse("a Rego unit test failed");
        }
    } else {
        println!("note: no *_test.rego in {}: no unit tests ran", dir.display());
    }
    println!("== play");
    if dir.join("scenarios").is_dir() {
        let out = std::env::temp_dir().join(format!("alert-responder-bundle-{}", std::process::id()));
        let played = super::play::run(PlayArgs {
            scenarios: None,
            policies: args.policies.clone(),
            out: out.clone(),
            id: Vec::new(),
            enable_print: false,
        })
        .await;
        let _ = std::fs::remove_dir_all(&out);
        if played? != 0 {
            return refuse("a scenario failed");
        }
    } else {
        println!("note: no scenarios/ in {}: no scenario played", dir.display());
    }

    let relative: Vec<PolicyFile> = files
        .into_iter()
        .filter(|f| !f.is_test())
        .map(|f| PolicyFile {
            name: relative_name(&dir, &f.name),
            text: f.text,
        })
        .collect();
    let (bytes, manifest) = build(&relative);
    let partial = args.out.with_extension("partial");
    std::fs::write(&partial, &bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &args.out).with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "== bundle: wrote {} ({} policy file(s), {} bytes)",
        args.out.display(),
        manifest.files.len(),
        bytes.len()
    );
    println!("{}", manifest.digest);
    Ok(0)
}

fn refuse(why: &str) -> anyhow::Result<i32> {
    eprintln!("bundle refused: {why}; nothing was written");
    Ok(1)
}

/// `name` relative to `dir`, `/`-separated (the same on every machine).
fn relative_name(dir: &Path, name: &str) -> String {
    let path = Path::new(name);
    let relative = path.strip_prefix(dir).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect::<Vec<_>>()
        .join("/")
}
