//! `run`: one document (default: the bundled sample Matano change) through
//! the whole pipeline, outcomes as JSON lines.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use super::args::{outcome_publisher, policy_source_line, PolicyArgs, SAMPLE_CHANGE};
use crate::app;
use crate::aws::{sdk_config, LazySnsClient};
use crate::config::{Config, Location, PolicySource};
use crate::ingest::{ingest_document, Ingested};
use crate::model::decision::RECORD_TYPE;
use crate::play::{load_mocks, MockedActions};
use crate::wakeup::Wakeup;

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Input: a Matano payload, an SNS notification, a Lambda SnsEvent, decision records (decided again under their change keys), a workflow wakeup (or Lambda's on-failure record of one), or other JSON; `-` reads stdin. Default: the bundled sample Matano alert change.
    #[arg(long, short, value_name = "FILE")]
    pub input: Option<PathBuf>,
    #[command(flatten)]
    pub policies: PolicyArgs,
    /// Schema of an input that names none (an event, not a Matano alert
    /// change); overrides DEFAULT_SCHEMA.
    #[arg(long, short = 's', value_name = "SCHEMA")]
    pub schema: Option<String>,
    /// Evaluate the policies but execute no action (outcomes say dry_run).
    #[arg(long)]
    pub dry_run: bool,
    /// Write what the policies `print()` to stderr.
    #[arg(long, short = 'p')]
    pub enable_print: bool,
    /// Append outcomes to this file instead of printing them.
    #[arg(long, value_name = "FILE", conflicts_with = "sns")]
    pub out: Option<PathBuf>,
    /// Publish outcomes to OUTCOME_TOPIC_ARN on SNS instead of printing them.
    #[arg(long)]
    pub sns: bool,
    /// Seconds the run may take, as a Lambda timeout would bound it: policy
    /// evaluations, actions and waits stop before it, and claims in a state
    /// table are leased for it.
    #[arg(long, value_name = "SECONDS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Answer actions from this file instead of running them (the scenario
    /// `actions:` map: action id or uses → results in order): a dry run whose
    /// later rounds see the mocked results. No state table is touched.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["sns", "dry_run"])]
    pub mocks: Option<PathBuf>,
    /// Write the run's decision records (gzip JSON lines, the layout of
    /// DECISION_RECORDS in S3) under this directory.
    #[arg(long, value_name = "DIR")]
    pub records: Option<PathBuf>,
    /// Set `input.env.KEY` for the policies (repeatable); adds to POLICY_ENV.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env_pair)]
    pub env: Vec<(String, String)>,
}

fn parse_env_pair(pair: &str) -> Result<(String, String), String> {
    match pair.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {pair:?}")),
    }
}

/// Exit codes: 0 all handled; 2 a message was rejected or a policy failed.
pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let mut config = Config::from_env()?;
    config.dry_run |= args.dry_run;
    config.enable_print |= args.enable_print;
    if let Some(schema) = &args.schema {
        config.schemas.default = schema.clone();
    }
    config.policy_env.extend(args.env.iter().cloned());
    // POLICY_BUNDLE, as the function loads it (a bad one fails the run),
    // unless `--policies` names a directory; compiled with the flags above
    // (`--enable-print`).
    let bundle = match &args.policies.policies {
        Some(_) => None,
        None => app::load_bundle(&config).await?,
    };
    if bundle.is_some() {
        // The starter kit stands in until the bundle is swapped in: a
        // broken `./policies` plays no part.
        config.policies = PolicySource::Bundled;
    } else {
        args.policies.apply(&mut config);
    }
    // stdout carries the outcomes: the source line goes to stderr.
    match (&bundle, &config.policy_bundle) {
        (Some(set), Some(location)) => eprintln!("policies: bundle {location} ({})", set.digest()),
        _ => eprintln!("{}", policy_source_line(&config)?),
    }

    let input = match &args.input {
        None => SAMPLE_CHANGE.as_bytes().to_vec(),
        Some(path) if path.as_os_str() == "-" => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).context("reading stdin")?;
            bytes
        }
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    };

    let sns = Arc::new(LazySnsClient::default());
    let publisher = outcome_publisher(&config, args.sns, args.out.as_deref(), &sns).await?;
    let mocks = match &args.mocks {
        Some(path) => Some(MockedActions::new(&app::registry(&config, None), &load_mocks(path)?)),
        None => None,
    };
    if let Some(dir) = &args.records {
        config.decision_records = Some(Location::Local(dir.clone()));
    }
    let mut responder = match &mocks {
        Some(mocks) => app::mocked_responder(&config, publisher, mocks)?,
        None => {
            // Secret references are resolved only if a policy uses one, and
            // the state table only with STATE_TABLE: no AWS call otherwise.
            let state = app::state(&config, &sdk_config());
            app::responder(&config, publisher, Some(sns), state)?
        }
    };
    if let Some(set) = bundle {
        responder.decider().swap_policies(Arc::new(set));
    }
    if let Some(sink) = app::records(&config, &sdk_config()) {
        responder = responder.with_records(sink);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(args.timeout);
    // A failed resume or due event (the failed-events queue's record of
    // one): the stored workflow is woken as the function would.
    if let Some((wakeup, function_arn)) = wakeup_in(&input) {
        let wakeup = wakeup.map_err(|reason| anyhow::anyhow!("{reason}"))?;
        if mocks.is_some() || config.dry_run || responder.decider().state().is_none() {
            anyhow::bail!(
                "the input is a workflow wakeup ({wakeup:?}): it resumes a stored workflow, so it needs the deployment's STATE_TABLE, and cannot be a dry run or mocked"
            );
        }
        if let Some(wakeups) = responder.decider().wakeups() {
            // A workflow suspended again is scheduled to invoke the function.
            let Some(arn) = &function_arn else {
                anyhow::bail!(
                    "the input is a bare workflow wakeup ({wakeup:?}) and SCHEDULE_GROUP is set: give Lambda's on-failure record of it (it names the function), or run `alert-responder workflows resume WORKFLOW_ID --function NAME_OR_ARN`"
                );
            };
            wakeups.learn_function(arn);
        }
        let summary = responder.wake(&wakeup, Some(deadline), None).await?;
        eprintln!(
            "wakeup ({wakeup:?}): {} resumed, {} action(s) ({} failed), {} policy error(s), {} outcome(s)",
            summary.records, summary.actions, summary.failed_actions, summary.policy_errors, summary.outcomes
        );
        return Ok(if summary.policy_errors > 0 { 2 } else { 0 });
    }
    let records = match recorded_changes(&input, &config.schemas) {
        Some(changes) => changes?,
        None => ingest_document(&input, &config.schemas),
    };
    let summary = responder.handle(records, Some(deadline)).await?;
    eprintln!(
        "{} record(s): {} rejected, {} alert(s), {} action(s) ({} failed), {} policy error(s), {} outcome(s)",
        summary.records,
        summary.rejected,
        summary.alerts,
        summary.actions,
        summary.failed_actions,
        summary.policy_errors,
        summary.outcomes
    );
    if let Some(dir) = &args.records {
        eprintln!("decision records written under {}", dir.display());
    }
    if let (Some(mocks), Some(path)) = (&mocks, &args.mocks) {
        eprintln!("actions answered from {}: nothing was called", path.display());
        for miss in mocks.take_misses() {
            eprintln!("mock missing: {miss}");
        }
    }
    Ok(if summary.rejected > 0 || summary.policy_errors > 0 {
        2
    } else {
        0
    })
}

/// The changes `input` holds when it is decision records (one or more
/// lines, gzip or not): each record's payload under the change key it was
/// decided with, so that what ran then replays (a change delivered twice,
/// once). `None` when `input` is something else.
fn recorded_changes(input: &[u8], routing: &crate::config::SchemaRouting) -> Option<anyhow::Result<Vec<Ingested>>> {
    use crate::replay::input::{chunks, decode, Decoded, Source};
    let source = Source {
        origin: "input".to_string(),
        bytes: input.to_vec(),
    };
    let chunks = chunks(&source).ok()?;
    let first: serde_json::Value = serde_json::from_str(&chunks.first()?.text).ok()?;
    if first.get("record_type").and_then(serde_json::Value::as_str) != Some(RECORD_TYPE) {
        return None;
    }
    let mut keys = std::collections::HashSet::new();
    let mut changes = Vec::new();
    for chunk in &chunks {
        match decode(chunk, routing) {
            Err(err) => return Some(Err(err.into())),
            Ok(Decoded::Skipped(why)) => eprintln!("{}: skipped: {why}", chunk.at()),
            Ok(Decoded::Changes(decoded)) => {
                for change in decoded {
                    if keys.insert(change.envelope.change_key()) {
                        changes.push(Ok(change.envelope));
                    }
                }
            }
        }
    }
    Some(Ok(changes))
}

/// The wakeup `input` carries — as the event itself, or as the `requestPayload`
/// of Lambda's on-failure record, with the function it was sent to
/// (`requestContext.functionArn`, what a workflow suspended again is
/// scheduled to invoke).
fn wakeup_in(input: &[u8]) -> Option<(Result<Wakeup, String>, Option<String>)> {
    let document: serde_json::Value = serde_json::from_slice(input).ok()?;
    // `…:function:name:$LATEST` names the unqualified function, which is
    // what the scheduler's role may invoke.
    let function_arn = document
        .pointer("/requestContext/functionArn")
        .and_then(serde_json::Value::as_str)
        .map(|arn| arn.strip_suffix(":$LATEST").unwrap_or(arn).to_string());
    let event = document.get("requestPayload").unwrap_or(&document);
    Wakeup::of_event(event).map(|wakeup| (wakeup, function_arn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wakeup_is_found_as_sent_or_in_an_on_failure_record() {
        let resume = Wakeup::Resume { workflow: "w1".into() };
        let (found, arn) = wakeup_in(resume.event().to_string().as_bytes()).unwrap();
        assert_eq!((found.unwrap(), arn), (resume.clone(), None));
        let record = serde_json::json!({
            "version": "1.0",
            "requestContext": {"functionArn": "arn:aws:lambda:us-east-1:1:function:f:$LATEST", "condition": "RetriesExhausted"},
            "requestPayload": resume.event(),
            "responsePayload": {"errorType": "AlertResponder.WorkflowBusy"},
        });
        let (found, arn) = wakeup_in(record.to_string().as_bytes()).unwrap();
        assert_eq!(found.unwrap(), resume);
        assert_eq!(arn.as_deref(), Some("arn:aws:lambda:us-east-1:1:function:f"));
        assert!(wakeup_in(br#"{"alert_responder": {"sleep": 1}}"#).unwrap().0.is_err());
        assert!(wakeup_in(br#"{"updated_alert": {}}"#).is_none());
    }
}
