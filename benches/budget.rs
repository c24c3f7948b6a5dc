//! Decision figures for `scripts/bench`: median and p99 of single decisions
//! (ingest + alert policy + every action round, dry run) on the three
//! samples, printed as JSON; with `BENCH_OPA_DIR` set, also writes the exact
//! policy inputs of the typical decision there for the OPA harness.

#[path = "decision.rs"]
#[allow(dead_code)]
mod decision;

use std::time::{Duration, Instant};

use alert_responder::config::PolicySource;
use alert_responder::decide::{Decider, Decision};
use alert_responder::ingest::ingest_document;
use alert_responder::policy::PolicySet;
use serde_json::{json, Value};

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

fn main() {
    // As the binary runs: `RUST_BACKTRACE` in the shell would double `compile_ms`.
    alert_responder::process::keep_backtraces_for_panics();
    let decider = decision::decider();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let iterations: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    // `BENCH_SAMPLES=typical` (comma-separated) measures only those samples,
    // e.g. to profile one of them.
    let only: Option<Vec<String>> = std::env::var("BENCH_SAMPLES")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    let mut figures = serde_json::Map::new();
    for (name, payload) in decision::samples() {
        if only.as_ref().is_some_and(|only| !only.iter().any(|o| o == name)) {
            continue;
        }
        for _ in 0..iterations / 10 {
            runtime.block_on(decision::decide(&decider, &payload));
        }
        let mut times: Vec<Duration> = (0..iterations)
            .map(|_| {
                let start = Instant::now();
                runtime.block_on(decision::decide(&decider, &payload));
                start.elapsed()
            })
            .collect();
        times.sort();
        figures.insert(
            name.to_string(),
            json!({"p50_us": percentile(&times, 0.5), "p99_us": percentile(&times, 0.99)}),
        );
    }
    // Compile: load and prepare both bundled policies, as init does.
    let mut compiles: Vec<Duration> = (0..20)
        .map(|_| {
            let start = Instant::now();
            PolicySet::load(&PolicySource::Bundled, Duration::from_secs(5)).unwrap();
            start.elapsed()
        })
        .collect();
    compiles.sort();
    figures.insert("compile_ms".to_string(), json!(percentile(&compiles, 0.5) / 1000.0));
    if let Ok(dir) = std::env::var("BENCH_OPA_DIR") {
        write_opa_inputs(std::path::Path::new(&dir), &decider, &runtime);
    }
    println!("{}", Value::Object(figures));
}

/// The typical decision's inputs: the payload for the alert policy, and the
/// `input` of every action-policy round the workflow evaluated.
fn write_opa_inputs(dir: &std::path::Path, decider: &Decider, runtime: &tokio::runtime::Runtime) {
    std::fs::create_dir_all(dir).unwrap();
    let payload = &decision::samples()[1].1;
    let envelope = ingest_document(payload, &"matano".into()).pop().unwrap().unwrap();
    let Decision::Alerts(mut reports) = runtime.block_on(decider.decide(&envelope, None)).unwrap().decision else {
        panic!("the typical sample decides alerts");
    };
    let report = reports.pop().unwrap();
    // A dry run commits nothing: every round saw the alert as the alert policy made it.
    let alert = report.alert.clone();
    let env = json!(decision::env());
    let mut rounds = Vec::new();
    for seq in 0..=report.rounds {
        let called: Vec<Value> = report
            .actions
            .iter()
            .filter(|a| a.seq < seq)
            .map(|a| json!({"id": a.id, "uses": a.uses, "args": a.args, "seq": a.seq, "status": a.status.as_str(), "result": a.result, "error": a.error}))
            .collect();
        rounds.push(json!({"alert": alert, "env": env, "seq": seq, "called": called}));
    }
    std::fs::write(dir.join("alert_input.json"), envelope.payload.to_string()).unwrap();
    for (i, round) in rounds.iter().enumerate() {
        std::fs::write(dir.join(format!("action_input_{i}.json")), round.to_string()).unwrap();
    }
    // The policies as the engine loads them: with the `escape` module the
    // loader adds for `import data.escape`.
    let files = alert_responder::policy::read_source(&PolicySource::Bundled).unwrap();
    let production: Vec<_> = files.into_iter().filter(|f| !f.is_test()).collect();
    for file in alert_responder::policy::with_escape_functions(production) {
        let name = match file.name.strip_prefix("<") {
            Some(_) => "escape_functions.rego".to_string(),
            None => file.name.replace('/', "_"),
        };
        std::fs::write(dir.join(name), &file.text).unwrap();
    }
}
