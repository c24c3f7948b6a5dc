//! `play`: run scenarios with mocked action results and check expectations.

use std::path::PathBuf;

use anyhow::Context;

use super::PolicyArgs;
use crate::action::Registry;
use crate::config::Config;
use crate::play::{load_scenarios, play};
use crate::policy::{PolicyEngine, PolicySet};
use crate::workflow::Limits;

#[derive(Debug, Clone, clap::Args)]
pub struct PlayArgs {
    /// Directory of scenario files (*.yaml, *.yml, *.json), searched recursively.
    #[arg(long, value_name = "DIR", default_value = "policies/scenarios")]
    pub scenarios: PathBuf,
    #[command(flatten)]
    pub policies: PolicyArgs,
    /// Where `<id>/result.json` is written for every scenario.
    #[arg(long, value_name = "DIR", default_value = "out/play")]
    pub out: PathBuf,
    /// Run only the scenario with this id.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
}

/// Exit codes: 0 every scenario passed; 1 a scenario failed or errored.
pub async fn run(args: PlayArgs) -> anyhow::Result<i32> {
    let mut config = Config::from_env()?;
    args.policies.apply(&mut config);
    let policies = PolicySet::load(&config.policies, config.policy_timeout)?.with_engine(config.policy_engine);
    let mut scenarios = load_scenarios(&args.scenarios)?;
    if let Some(id) = &args.id {
        scenarios.retain(|s| &s.id == id);
        anyhow::ensure!(
            !scenarios.is_empty(),
            "no scenario with id {id:?} in {}",
            args.scenarios.display()
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for scenario in &scenarios {
        anyhow::ensure!(
            seen.insert(&scenario.id),
            "two scenarios share id {:?} ({})",
            scenario.id,
            scenario.path.display()
        );
    }
    // The real declarations (for argument checks); nothing of it executes.
    let declarations = Registry::for_config(&config, None)?;
    let limits = Limits {
        max_rounds: config.max_rounds,
        max_actions: config.max_actions,
        dry_run: false,
    };

    let interpreter = policies.clone().with_engine(PolicyEngine::Interpreter);
    let mut passed = 0;
    let mut failed = 0;
    for scenario in &scenarios {
        let result = play(scenario, &policies, &declarations, &limits).await;
        let dir = args.out.join(&scenario.id);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("result.json");
        let mut json = serde_json::to_string_pretty(&result)?;
        json.push('\n');
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
        if result.passed {
            passed += 1;
            println!("PASS  {} ({})", scenario.id, scenario.path.display());
        } else {
            failed += 1;
            println!("FAIL  {} ({})", scenario.id, scenario.path.display());
            for failure in &result.failures {
                println!("      {failure}");
            }
            // The VM makes a rule body with a runtime error undefined (as OPA
            // does); the interpreter names the error, which is what a policy
            // author needs to see.
            if policies.engine() == PolicyEngine::Vm {
                let strict = play(scenario, &interpreter, &declarations, &limits).await;
                for failure in strict.failures.iter().filter(|f| f.contains("evaluating data.")) {
                    println!("      hint: on the interpreter (POLICY_ENGINE=interpreter): {failure}");
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed > 0 { 1 } else { 0 })
}
