//! Decision cost: ingest + alert policy + every action round on the bundled
//! policies, actions not executed (dry run), so only policy and workflow
//! cost is measured. Samples: small (no new values: one round), typical (the
//! bundled sample: lookup then notify), large (a few hundred context values,
//! 20 never-seen IPs).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use alert_responder::app;
use alert_responder::config::{Config, PolicySource};
use alert_responder::decide::{Decider, Decision};
use alert_responder::ingest::ingest_document;
use alert_responder::policy::to_policy_value;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};

pub fn samples() -> Vec<(&'static str, Vec<u8>)> {
    let typical: Value = serde_json::from_str(include_str!("../examples/matano_alert_change.json")).unwrap();
    let mut small = typical.clone();
    small["context_diff"] = json!({});
    let mut large = typical.clone();
    let ips: Vec<String> = (0..300).map(|i| format!("198.51.{}.{}", i / 250, i % 250)).collect();
    large["updated_alert"]["context"]["source"]["ip"] = json!(ips);
    large["updated_alert"]["context"]["related"]["user"] =
        json!((0..100).map(|i| format!("user-{i}")).collect::<Vec<_>>());
    large["context_diff"]["source"]["ip"] = json!(ips[..20].to_vec());
    vec![
        ("small", small.to_string().into_bytes()),
        ("typical", typical.to_string().into_bytes()),
        ("large", large.to_string().into_bytes()),
    ]
}

/// The environment policies see in every benchmark.
pub fn env() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("WEBHOOK_URL".to_string(), "https://hooks.example.org/x".to_string()),
        ("INTEL_URL".to_string(), "https://intel.example.org".to_string()),
    ])
}

/// The decider every benchmark runs: the bundled policies, a dry run (no
/// action executes), no state; built the way the function builds it.
pub fn decider() -> Decider {
    let config = Config {
        dry_run: true,
        policy_env: env(),
        policy_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    Decider::new(
        Arc::new(app::policies(&config).unwrap()),
        app::registry(&config, None),
        app::decide_settings(&config),
        app::secrets(&config),
        None,
    )
}

/// One decision: returns the number of actions decided.
pub async fn decide(decider: &Decider, payload: &[u8]) -> usize {
    let mut actions = 0;
    for envelope in ingest_document(payload, &"matano".into()).into_iter().flatten() {
        if let Decision::Alerts(reports) = decider.decide(&envelope, None).await.unwrap().decision {
            actions += reports.iter().map(|r| r.actions.len()).sum::<usize>();
        }
    }
    actions
}

fn decision(c: &mut Criterion) {
    let decider = decider();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut group = c.benchmark_group("decision");
    for (name, payload) in samples() {
        let actions = runtime.block_on(decide(&decider, &payload));
        assert!(actions > 0, "{name} decides nothing");
        group.bench_function(name, |b| b.iter(|| runtime.block_on(decide(&decider, &payload))));
    }
    group.finish();

    // Where the typical decision's time goes.
    let payload = &samples()[1].1;
    let envelope = ingest_document(payload, &"matano".into()).pop().unwrap().unwrap();
    let mut parts = c.benchmark_group("typical_parts");
    parts.bench_function("ingest", |b| b.iter(|| ingest_document(payload, &"matano".into())));
    parts.bench_function("alert_policy", |b| {
        b.iter(|| {
            decider
                .policies()
                .eval_alerts(&envelope.schema, &envelope.payload, None)
                .unwrap()
        })
    });
    parts.bench_function("payload_to_regorus", |b| b.iter(|| to_policy_value(&envelope.payload)));
    parts.finish();

    // What a host function costs: its entry rule runs on the interpreter.
    // The same alert policy with a builtin the VM runs, and with a host one.
    let mut host = c.benchmark_group("host_function");
    // `regex.match` is the host's RE2 reading, on the VM (a condition).
    for (name, call, condition) in [
        ("vm_lower", "lower", "true"),
        ("interpreter_sha256", "crypto.sha256", "true"),
        (
            "vm_lower_regex_match",
            "lower",
            r"regex.match(`^[\w .-]+$`, input.updated_alert.title)",
        ),
    ] {
        let text = format!(
            "package alert.matano\nalert contains {{\"title\": {call}(input.updated_alert.title), \"severity\": input.updated_alert.severity}} if {condition}\n"
        );
        let files = vec![alert_responder::policy::PolicyFile {
            name: "alert.rego".into(),
            text,
        }];
        let set = alert_responder::policy::PolicySet::compile(files, Duration::from_secs(5)).unwrap();
        assert_eq!(set.interpreted_rules().is_empty(), call == "lower");
        host.bench_function(name, |b| {
            b.iter(|| set.eval_alerts(&envelope.schema, &envelope.payload, None).unwrap())
        });
    }
    host.finish();

    // What METADATA costs at init: the bundled policies compiled as
    // written, and with a METADATA block and a `rego.metadata.rule()` call
    // in the alert policy (one parse more, and the call written as its value).
    let mut compile = c.benchmark_group("compile");
    let bundled: Vec<_> = alert_responder::policy::read_source(&PolicySource::Bundled)
        .unwrap()
        .into_iter()
        .filter(|file| !file.is_test())
        .collect();
    let mut annotated = bundled.clone();
    let alert = annotated
        .iter_mut()
        .find(|file| file.text.contains("package alert."))
        .unwrap();
    alert.text.push_str(
        "\n# METADATA\n# title: Annotated\n# custom:\n#   severity: high\nannotated := rego.metadata.rule().custom.severity\n",
    );
    // The same rule with its value written out: what the rule costs alone.
    let mut literal = bundled.clone();
    let alert = literal
        .iter_mut()
        .find(|file| file.text.contains("package alert."))
        .unwrap();
    alert
        .text
        .push_str("\nannotated := {\"custom\": {\"severity\": \"high\"}, \"scope\": \"rule\", \"title\": \"Annotated\"}.custom.severity\n");
    for (name, files) in [
        ("bundled", bundled),
        ("bundled_with_the_rule", literal),
        ("bundled_with_metadata", annotated),
    ] {
        compile.bench_function(name, |b| {
            b.iter(|| alert_responder::policy::PolicySet::compile(files.clone(), Duration::from_secs(5)).unwrap())
        });
    }
    compile.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = decision
}
criterion_main!(benches);
