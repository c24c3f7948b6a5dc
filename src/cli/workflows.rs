//! `workflows list|show|resume|cancel`: the suspended workflows of a
//! deployment's state table — what waits for whom, one in full, a manual
//! resume (answering or timing out what is pending) or a cancel, with the
//! outcomes it publishes.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use super::args::{outcome_publisher, PolicyArgs};
use crate::app;
use crate::aws::{sdk_config, LazySnsClient};
use crate::config::{Config, PolicySource};
use crate::model::suspended::{Resolution, SuspendedWorkflow};
use crate::model::Status;
use crate::pipeline::{HandleError, Summary};
use crate::resume::{Answered, AnsweredBy};

#[derive(Debug, Clone, clap::Args)]
pub struct WorkflowsArgs {
    #[command(subcommand)]
    pub command: WorkflowsCommand,
    /// The deployment's state table (default: STATE_TABLE).
    #[arg(long, global = true, value_name = "TABLE")]
    pub table: Option<String>,
    /// Publish outcomes to OUTCOME_TOPIC_ARN instead of printing them (resume, cancel).
    #[arg(long, global = true, conflicts_with = "out")]
    pub sns: bool,
    /// Append outcomes to this file instead of printing them (resume, cancel).
    #[arg(long, global = true, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The policies a resume decides with: POLICY_BUNDLE (as the function
    /// loads it), else this directory or POLICY_DIR. Without any of them,
    /// a resume runs only if ./policies or the bundled starter kit are the
    /// very policies that suspended the workflow (same digest).
    #[arg(long, short = 'd', global = true, value_name = "DIR")]
    pub policies: Option<PathBuf>,
    /// The deployment's function (name or ARN; a name is looked up): what
    /// a workflow suspended again is scheduled to invoke. Needed by
    /// `resume` with SCHEDULE_GROUP.
    #[arg(long, global = true, value_name = "ARN")]
    pub function: Option<String>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum WorkflowsCommand {
    /// One line per suspended workflow: id, alert, what it waits for, until when.
    List {
        /// One JSON object per line instead.
        #[arg(long)]
        json: bool,
    },
    /// A suspended workflow in full (JSON): the alert, `called`, the pending actions.
    Show { workflow: String },
    /// Resume now: answer a pending action (--answer), or resolve every
    /// action still pending as its due time would (an approval times out, a
    /// wait ends), then run the next rounds.
    Resume {
        workflow: String,
        /// The answer to record (one of the approval's choices).
        #[arg(long)]
        answer: Option<String>,
        /// The pending action answered (default: the only one pending).
        #[arg(long, value_name = "ACTION_ID", requires = "answer")]
        action: Option<String>,
        /// Who answered or resumed (default: $USER).
        #[arg(long)]
        by: Option<String>,
        /// Seconds the resume may take, as `run --timeout`: the workflow and
        /// its actions' claims are leased for it, so a wakeup retried
        /// meanwhile cannot take them over while an action still runs.
        #[arg(long, value_name = "SECONDS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
    },
    /// Cancel: every pending action becomes skipped (reason cancelled) and no round runs again.
    Cancel {
        workflow: String,
        #[arg(long)]
        by: Option<String>,
    },
}

/// Exit codes: 0 done; 2 the policies are not the ones that suspended the
/// workflow and none were given; 4 no such suspended workflow; 5 nothing
/// done now (an action still waits, or another invocation holds it).
pub async fn run(args: WorkflowsArgs) -> anyhow::Result<i32> {
    let mut config = Config::from_env()?;
    let chosen = args.policies.is_some() || config.policies != PolicySource::Bundled || config.policy_bundle.is_some();
    PolicyArgs {
        policies: args.policies.clone(),
    }
    .apply(&mut config);
    if let Some(table) = &args.table {
        config.state_table = Some(table.clone());
    }
    anyhow::ensure!(
        config.state_table.is_some(),
        "no state table: give --table TABLE (the StateTableName output of the stack) or set STATE_TABLE"
    );
    let state = app::state(&config, &sdk_config()).context("the state table")?;
    let by = |by: Option<String>| {
        by.or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "cli".to_string())
    };
    match args.command.clone() {
        WorkflowsCommand::List { json } => {
            let workflows = state.workflows().await?;
            for workflow in &workflows {
                let waiting = still_pending(state.as_ref(), workflow).await?;
                match json {
                    true => println!("{}", serde_json::to_string(&listing(workflow, &waiting))?),
                    false => println!("{}", line_of(workflow, &waiting)),
                }
            }
            if !json {
                eprintln!("{} suspended workflow(s)", workflows.len());
            }
            Ok(0)
        }
        WorkflowsCommand::Show { workflow } => match state.workflow(&workflow).await? {
            Some(found) => {
                println!("{}", serde_json::to_string_pretty(&found)?);
                Ok(0)
            }
            None => {
                eprintln!("no suspended workflow {workflow:?}");
                Ok(4)
            }
        },
        WorkflowsCommand::Resume {
            workflow,
            answer,
            action,
            by: who,
            timeout,
        } => {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout);
            let Some(found) = state.workflow(&workflow).await? else {
                eprintln!("no suspended workflow {workflow:?}");
                return Ok(4);
            };
            let responder = responder(&config, &args, true).await?;
            let digest = responder.decider().policies().digest().to_string();
            if digest != found.bundle_digest {
                if !chosen {
                    eprintln!(
                        "workflow {workflow} was suspended by policies {}; these ({digest}) are only the default: give --policies DIR or POLICY_BUNDLE with the deployment's policies",
                        found.bundle_digest
                    );
                    return Ok(2);
                }
                eprintln!(
                    "note: workflow {workflow} was suspended by policies {}; it resumes with {digest}",
                    found.bundle_digest
                );
            }
            let who = by(who);
            let still_pending = pending_ids(&responder, &found).await?;
            // What was recorded, for a resume that cannot start now.
            let recorded = match answer {
                Some(answer) => {
                    let action = match (action, still_pending.as_slice()) {
                        (Some(action), _) => action,
                        (None, [only]) => only.clone(),
                        (None, []) => anyhow::bail!(
                            "no action of workflow {workflow} waits for an answer (each has its result): `workflows resume {workflow}` without --answer runs its next round"
                        ),
                        (None, many) => anyhow::bail!(
                            "{} actions are pending ({}): say which with --action",
                            many.len(),
                            many.join(", ")
                        ),
                    };
                    let resolution = Resolution::Answered {
                        answer,
                        user: who,
                        answered_at: chrono::Utc::now(),
                    };
                    report_answer(
                        &action,
                        responder
                            .answer(&workflow, &action, &resolution, AnsweredBy::Operator)
                            .await?,
                    );
                    "your answer is recorded"
                }
                None => {
                    for action in &still_pending {
                        let due = Resolution::DueTime {
                            now: chrono::Utc::now(),
                        };
                        report_answer(
                            action,
                            responder.answer(&workflow, action, &due, AnsweredBy::Operator).await?,
                        );
                    }
                    "the pending actions are recorded as timed out"
                }
            };
            let summary = match responder.resume(&workflow, Some(deadline), None).await {
                Ok(summary) => summary,
                Err(HandleError::WorkflowBusy(_)) => {
                    eprintln!(
                        "not resumed: workflow {workflow} is being resumed right now ({recorded}); look again with `workflows show`: if it stays suspended with no action pending, `workflows resume {workflow}` resumes it"
                    );
                    return Ok(5);
                }
                Err(err) => return Err(err.into()),
            };
            if summary.records == 0 {
                eprintln!("not resumed: an action of workflow {workflow} still waits for its result");
                return Ok(5);
            }
            eprintln!("{}", describe("resumed", &summary));
            Ok(0)
        }
        WorkflowsCommand::Cancel { workflow, by: who } => {
            if state.workflow(&workflow).await?.is_none() {
                eprintln!("no suspended workflow {workflow:?}");
                return Ok(4);
            }
            let responder = responder(&config, &args, false).await?;
            match responder.cancel(&workflow, &by(who)).await {
                Ok(summary) => {
                    eprintln!("{}", describe("cancelled", &summary));
                    Ok(0)
                }
                Err(HandleError::WorkflowBusy(_)) => {
                    eprintln!("not cancelled: workflow {workflow} is being resumed right now; look again with `workflows show`");
                    Ok(5)
                }
                Err(err) => Err(err.into()),
            }
        }
    }
}

/// The responder that resumes: the configured policies and actions, the
/// state table, outcomes printed, appended to a file or published.
async fn responder(
    config: &Config,
    args: &WorkflowsArgs,
    schedules: bool,
) -> anyhow::Result<crate::pipeline::Responder> {
    let sns = Arc::new(LazySnsClient::default());
    let publisher = outcome_publisher(config, args.sns, args.out.as_deref(), &sns).await?;
    let state = app::state(config, &sdk_config());
    let mut responder = app::responder(config, publisher, Some(sns), state)?;
    if let Some(bundle) = app::load_bundle(config).await? {
        responder.decider().swap_policies(Arc::new(bundle));
    }
    // A resume may suspend the workflow again, scheduling the function; a
    // cancel only deletes schedules.
    if let Some(wakeups) = responder.decider().wakeups().filter(|_| schedules) {
        let function = args.function.as_deref().context(
            "SCHEDULE_GROUP is set: give --function with the deployment's function, which a workflow suspended again is scheduled to invoke",
        )?;
        let arn = wakeups.function_arn_of(function).await.context("--function")?;
        wakeups.learn_function(&arn);
    }
    if let Some(sink) = app::records(config, &sdk_config()) {
        responder = responder.with_records(sink);
    }
    Ok(responder)
}

/// The workflow's actions still waiting, by the state table.
async fn pending_ids(
    responder: &crate::pipeline::Responder,
    workflow: &SuspendedWorkflow,
) -> anyhow::Result<Vec<String>> {
    let state = responder.decider().state().context("the state table")?;
    still_pending(state.as_ref(), workflow).await
}

/// The ids of the workflow's pending actions that have no result yet (one
/// answered since, whose resume has not run, has one).
async fn still_pending(
    state: &dyn crate::state::StateStore,
    workflow: &SuspendedWorkflow,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    for pending in &workflow.pending {
        let record = state.action_record(workflow.id(), &pending.id).await?;
        if record.is_none_or(|r| r.status == Status::Pending) {
            ids.push(pending.id.clone());
        }
    }
    Ok(ids)
}

fn report_answer(action: &str, answered: Answered) {
    match answered {
        Answered::Recorded { record, .. } => eprintln!(
            "{action}: recorded {}",
            record.result.map(|r| r.to_string()).unwrap_or_default()
        ),
        Answered::Already { record, .. } => eprintln!(
            "{action}: already answered {}; this changes nothing",
            record.and_then(|r| r.result).map(|r| r.to_string()).unwrap_or_default()
        ),
    }
}

fn describe(what: &str, summary: &Summary) -> String {
    format!(
        "{what}: {} action(s) ({} failed), {} policy error(s), {} outcome(s)",
        summary.actions, summary.failed_actions, summary.policy_errors, summary.outcomes
    )
}

/// `waiting`: the pending actions with no result yet; the others were
/// answered (or timed out) and wait for the workflow's resume.
fn listing(workflow: &SuspendedWorkflow, waiting: &[String]) -> serde_json::Value {
    serde_json::json!({
        "workflow": workflow.id(),
        "title": workflow.alert.title,
        "severity": workflow.alert.severity,
        "phase": workflow.phase,
        "rounds": workflow.rounds,
        "suspended_at": workflow.suspended_at,
        "pending": workflow.pending.iter().map(|p| serde_json::json!({
            "id": p.id, "uses": p.uses, "due_at": p.due_at, "channel": p.channel, "approvers": p.approvers,
            "resolved": !waiting.contains(&p.id),
        })).collect::<Vec<_>>(),
    })
}

fn line_of(workflow: &SuspendedWorkflow, waiting: &[String]) -> String {
    let pending: Vec<String> = workflow
        .pending
        .iter()
        .map(|p| match waiting.contains(&p.id) {
            true => format!("{} ({}, due {})", p.id, p.uses, p.due_at.format("%Y-%m-%d %H:%M UTC")),
            false => format!(
                "{} ({}, resolved: `workflows resume` runs the next round)",
                p.id, p.uses
            ),
        })
        .collect();
    format!(
        "{}  {:?}  {}  round {}  waiting: {}",
        workflow.id(),
        workflow.phase,
        workflow.alert.title,
        workflow.rounds,
        pending.join(", ")
    )
}
