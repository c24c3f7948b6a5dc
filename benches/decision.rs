//! Decision cost: ingest + alert policy + every action round on the bundled
//! policies, actions not executed (dry run), so only policy and workflow
//! cost is measured. Samples: small (no new values: one round), typical (the
//! bundled sample: lookup then notify), large (a few hundred context values,
//! 20 never-seen IPs).

use std::time::Duration;

use alert_responder::action::Registry;
use alert_responder::alert::Alert;
use alert_responder::config::PolicySource;
use alert_responder::event::ingest_document;
use alert_responder::http::HttpSettings;
use alert_responder::policy::{to_policy_value, PolicySet};
use alert_responder::secrets::SecretResolver;
use alert_responder::workflow::{Limits, Workflow};
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

static DRY_RUN: Limits = Limits {
    max_rounds: 32,
    max_actions: 64,
    dry_run: true,
};
static SECRETS: std::sync::LazyLock<SecretResolver> = std::sync::LazyLock::new(SecretResolver::literals_only);

/// The workflow every benchmark runs: dry run, so no action executes.
pub fn workflow<'a>(policies: &'a PolicySet, registry: &'a Registry, env: &'a Value) -> Workflow<'a> {
    Workflow {
        policies,
        registry,
        limits: &DRY_RUN,
        env,
        secrets: &SECRETS,
        state: None,
        lease: Duration::from_secs(60),
    }
}

/// One decision: returns the number of actions decided.
pub async fn decide(policies: &PolicySet, registry: &Registry, env: &Value, payload: &[u8]) -> usize {
    let workflow = workflow(policies, registry, env);
    let mut actions = 0;
    // As the pipeline does it: the payload converted once for both policies.
    for envelope in ingest_document(payload, "matano").into_iter().flatten() {
        let converted = to_policy_value(&envelope.payload);
        for draft in policies.eval_alerts_on(&envelope.schema, &converted, None).unwrap() {
            actions += workflow
                .run_with_payload(Alert::from_draft(draft, &envelope), converted.clone(), None)
                .await
                .actions
                .len();
        }
    }
    actions
}

fn decision(c: &mut Criterion) {
    let policies = PolicySet::load(&PolicySource::Bundled, Duration::from_secs(5)).unwrap();
    let registry = Registry::with_http(HttpSettings::default()).unwrap();
    let env = json!({"WEBHOOK_URL": "https://hooks.example.org/x", "INTEL_URL": "https://intel.example.org"});
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut group = c.benchmark_group("decision");
    for (name, payload) in samples() {
        let actions = runtime.block_on(decide(&policies, &registry, &env, &payload));
        assert!(actions > 0, "{name} decides nothing");
        group.bench_function(name, |b| {
            b.iter(|| runtime.block_on(decide(&policies, &registry, &env, &payload)))
        });
    }
    group.finish();

    // Where the typical decision's time goes.
    let payload = &samples()[1].1;
    let envelope = ingest_document(payload, "matano").pop().unwrap().unwrap();
    let mut parts = c.benchmark_group("typical_parts");
    parts.bench_function("ingest", |b| b.iter(|| ingest_document(payload, "matano")));
    parts.bench_function("alert_policy", |b| {
        b.iter(|| policies.eval_alerts(&envelope.schema, &envelope.payload, None).unwrap())
    });
    parts.bench_function("payload_to_regorus", |b| b.iter(|| to_policy_value(&envelope.payload)));
    parts.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    targets = decision
}
criterion_main!(benches);
