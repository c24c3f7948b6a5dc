//! `play`: run scenarios with mocked action results and check expectations.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use super::args::{policy_source_line, PolicyArgs};
use crate::app;
use crate::config::{Config, PolicyEngine, PolicySource};
use crate::play::{load_scenarios, play};

#[derive(Debug, Clone, clap::Args)]
pub struct PlayArgs {
    /// Directory of scenario files (*.yaml, *.yml, *.json), searched recursively. Default: `scenarios/` in the policies' directory.
    #[arg(long, value_name = "DIR")]
    pub scenarios: Option<PathBuf>,
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
    println!("{}", policy_source_line(&config)?);
    let scenario_dir = match (&args.scenarios, &config.policies) {
        (Some(dir), _) => dir.clone(),
        (None, PolicySource::Dir(dir)) => dir.join("scenarios"),
        (None, PolicySource::Bundled) => anyhow::bail!(
            "no scenarios to play: the policies are the starter kit bundled in the binary, which has none beside \
             it; give --scenarios DIR, or --policies DIR with a scenarios/ directory in it"
        ),
    };
    let policies = Arc::new(app::policies(&config)?);
    let mut scenarios = load_scenarios(&scenario_dir)?;
    if let Some(id) = &args.id {
        scenarios.retain(|s| &s.id == id);
        anyhow::ensure!(
            !scenarios.is_empty(),
            "no scenario with id {id:?} in {}",
            scenario_dir.display()
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
    let declarations = app::registry(&config, None);
    let settings = app::decide_settings(&config);
    let schema = &config.schemas;
    let interpreter = Arc::new(policies.as_ref().clone().with_engine(PolicyEngine::Interpreter));
    let mut passed = 0;
    let mut failed = 0;
    for scenario in &scenarios {
        let result = play(scenario, policies.clone(), &declarations, &settings, schema).await;
        let dir = args.out.join(&scenario.id);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("result.json");
        let mut json = serde_json::to_string_pretty(&result)?;
        json.push('\n');
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
        if result.passed {
            passed += 1;
            println!("PASS  {} ({})", scenario.id, scenario.path.display());
            continue;
        }
        failed += 1;
        println!("FAIL  {} ({})", scenario.id, scenario.path.display());
        for failure in &result.failures {
            println!("      {failure}");
        }
        // Why actions failed (a mocked error, or arguments a real run would
        // reject): what the author needs to see next to the expectations.
        for event in &result.events {
            for alert in &event.alerts {
                for round in &alert.rounds {
                    for action in &round.actions {
                        if let (Some("failed"), Some(error)) = (action["status"].as_str(), action["error"].as_str()) {
                            println!(
                                "      event {}, round {}: action {} failed: {error}",
                                event.index, round.seq, action["id"]
                            );
                        }
                    }
                }
            }
        }
        // The VM makes a rule body with a runtime error undefined (as OPA
        // does); the interpreter names the error, which is what a policy
        // author needs to see.
        if policies.engine() == PolicyEngine::Vm {
            let strict = play(scenario, interpreter.clone(), &declarations, &settings, schema).await;
            for failure in strict.failures.iter().filter(|f| f.is_evaluation_error()) {
                println!("      hint: on the interpreter (POLICY_ENGINE=interpreter): {failure}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed > 0 { 1 } else { 0 })
}
