//! `play`: run scenarios with mocked action results and check expectations.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use super::args::{policy_source_line, PolicyArgs};
use crate::app;
use crate::config::{Config, PolicyEngine, PolicySource};
use crate::play::{alertchain_log, load_scenarios, play};

#[derive(Debug, Clone, clap::Args)]
pub struct PlayArgs {
    /// Scenario file, or directory of them searched recursively (ours: *.yaml, *.yml, *.json; AlertChain's: *.jsonnet). Default: `scenarios/` in the policies' directory.
    #[arg(long, short = 's', visible_alias = "scenario", value_name = "PATH")]
    pub scenarios: Option<PathBuf>,
    #[command(flatten)]
    pub policies: PolicyArgs,
    /// Where `<id>/result.json` is written for every scenario (for AlertChain's: `<id>/data.json` and `result.json`, as AlertChain writes them).
    #[arg(long, short = 'o', value_name = "DIR", default_value = "out/play")]
    pub out: PathBuf,
    /// Run only the scenarios with these ids (repeatable).
    #[arg(long, short = 't', visible_alias = "target", value_name = "ID")]
    pub id: Vec<String>,
    /// Write what the policies `print()` to stderr.
    #[arg(long, short = 'p')]
    pub enable_print: bool,
}

/// Exit codes: 0 every scenario passed; 1 a scenario failed or errored.
pub async fn run(args: PlayArgs) -> anyhow::Result<i32> {
    let mut config = Config::from_env()?;
    args.policies.apply(&mut config);
    config.enable_print |= args.enable_print;
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
    let loaded = load_scenarios(&scenario_dir)?;
    for (path, why) in &loaded.skipped {
        println!("note: {} skipped: {why}", path.display());
    }
    let mut scenarios = loaded.scenarios;
    for id in &args.id {
        anyhow::ensure!(
            scenarios.iter().any(|s| &s.id == id),
            "no scenario with id {id:?} in {}",
            scenario_dir.display()
        );
    }
    if !args.id.is_empty() {
        scenarios.retain(|s| args.id.contains(&s.id));
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
    let started_at = chrono::Utc::now();
    let mut alertchain_index = Vec::new();
    for scenario in &scenarios {
        let result = play(scenario, policies.clone(), &declarations, &settings, schema).await;
        let dir = args.out.join(&scenario.id);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        if scenario.alertchain {
            // AlertChain's own output, which its users' Rego tests read
            // (`data.json` alone: `opa test` over the output directory
            // merges every JSON file of a directory into one document).
            let path = dir.join("data.json");
            write_json(&path, &alertchain_log(&result))?;
            alertchain_index.push(serde_json::json!({
                "id": scenario.id,
                "output": path.display().to_string(),
                "success": result.passed,
            }));
        } else {
            write_json(&dir.join("result.json"), &result)?;
        }
        for warning in &result.warnings {
            println!("      warning: {warning}");
        }
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
    if !alertchain_index.is_empty() {
        let index = serde_json::json!({
            "started_at": started_at.to_rfc3339(),
            "finished_at": chrono::Utc::now().to_rfc3339(),
            "scenarios": alertchain_index,
        });
        write_json(&args.out.join("result.json"), &index)?;
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed > 0 { 1 } else { 0 })
}

fn write_json(path: &std::path::Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut json = serde_json::to_string_pretty(value)?;
    json.push('\n');
    std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))
}
