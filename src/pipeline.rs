//! One invocation: ingested records → alert policy → workflows → outcomes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::action::Registry;
use crate::alert::Alert;
use crate::config::Config;
use crate::event::{Envelope, IngestError, Ingested, Rejected};
use crate::outcome::{
    policy_error_outcome, rejected_outcome, stale_outcome, ActionSummary, AlertSummary, EventType, Outcome,
    PublishError, Publisher, SourceMessage, Status, SCHEMA_VERSION,
};
use crate::policy::{to_policy_value, PolicySet};
use crate::secrets::SecretResolver;
use crate::state::{ChangeOrder, StateError, StateStore};
use crate::workflow::{Limits, Stop, Workflow, WorkflowReport};

/// Counts of one invocation; the Lambda returns it as its response.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub records: usize,
    pub rejected: usize,
    pub alerts: usize,
    pub actions: usize,
    pub failed_actions: usize,
    pub policy_errors: usize,
    pub outcomes: usize,
    /// Actions replayed from the state table instead of run again.
    #[serde(skip_serializing_if = "is_zero")]
    pub replayed: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub stale: usize,
    /// Time spent evaluating policies (for metrics).
    #[serde(skip)]
    pub policy_micros: u64,
    /// Actions by `(uses, status)` (for metrics).
    #[serde(skip)]
    pub action_counts: std::collections::BTreeMap<(String, String), usize>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Why an invocation fails, so Lambda retries it (and, after its retries,
/// sends it to the on-failure destination) rather than dropping it.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    State(#[from] StateError),
    /// Actions failed transiently; with the state table, the retry runs only them.
    #[error("{count} action(s) must be retried: {first}")]
    Retry { count: usize, first: String },
}

/// Everything that lives across invocations: compiled policies, the action
/// registry (with its HTTP and SNS clients), secrets, state, the publisher.
pub struct Responder {
    policies: PolicySet,
    registry: Registry,
    publisher: Arc<dyn Publisher>,
    limits: Limits,
    env: Value,
    secrets: SecretResolver,
    state: Option<Arc<dyn StateStore>>,
    lease: Duration,
    process_stale_changes: bool,
}

impl Responder {
    pub fn new(
        config: &Config,
        policies: PolicySet,
        registry: Registry,
        secrets: SecretResolver,
        publisher: Arc<dyn Publisher>,
    ) -> Responder {
        Responder {
            policies,
            registry,
            secrets,
            publisher,
            limits: Limits {
                max_rounds: config.max_rounds,
                max_actions: config.max_actions,
                dry_run: config.dry_run,
            },
            env: serde_json::to_value(&config.policy_env).expect("string map"),
            state: None,
            lease: config.claim_lease,
            process_stale_changes: config.process_stale_changes,
        }
    }

    /// Adds exactly-once bookkeeping and persistent attributes.
    pub fn with_state(mut self, state: Arc<dyn StateStore>) -> Responder {
        self.state = Some(state);
        self
    }

    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }

    /// Handles every record; a bad record or a failing policy affects only
    /// itself. Fails when outcomes cannot be published, when the state table
    /// is unreachable, or when actions failed transiently and a state table
    /// makes a retry safe — so the event is retried (and lands in the
    /// on-failure destination) instead of lost.
    pub async fn handle(&self, records: Vec<Ingested>, deadline: Option<Instant>) -> Result<Summary, HandleError> {
        let mut summary = Summary {
            records: records.len(),
            ..Summary::default()
        };
        let mut retries: Vec<String> = Vec::new();
        let mut state_error = None;
        for record in records {
            let outcomes = match record {
                Err(rejected) => self.reject(*rejected, &mut summary),
                Ok(envelope) if !self.policies.has_schema(&envelope.schema) => {
                    let error = IngestError::UnknownSchema {
                        schema: envelope.schema.clone(),
                    };
                    let rejected = Rejected {
                        message_id: Some(envelope.message_id.clone()).filter(|m| !m.is_empty()),
                        topic_arn: envelope.topic_arn.clone(),
                        original: envelope.payload.to_string(),
                        error,
                    };
                    self.reject(rejected, &mut summary)
                }
                Ok(envelope) => match self.respond(&envelope, deadline, &mut summary, &mut retries).await {
                    Ok(outcomes) => outcomes,
                    Err(err) => {
                        // Nothing of this record ran; the others still do.
                        tracing::error!(message_id = %envelope.message_id, error = %err, "state table unavailable");
                        state_error.get_or_insert(err);
                        Vec::new()
                    }
                },
            };
            if !outcomes.is_empty() {
                self.publisher.publish(&outcomes).await?;
                summary.outcomes += outcomes.len();
            }
        }
        if let Some(err) = state_error {
            return Err(err.into());
        }
        if let Some(first) = retries.first() {
            return Err(HandleError::Retry {
                count: retries.len(),
                first: first.clone(),
            });
        }
        Ok(summary)
    }

    fn reject(&self, rejected: Rejected, summary: &mut Summary) -> Vec<Outcome> {
        tracing::error!(message_id = ?rejected.message_id, topic_arn = ?rejected.topic_arn, error = %rejected.error, "message rejected");
        summary.rejected += 1;
        vec![rejected_outcome(&rejected)]
    }

    async fn respond(
        &self,
        envelope: &Envelope,
        deadline: Option<Instant>,
        summary: &mut Summary,
        retries: &mut Vec<String>,
    ) -> Result<Vec<Outcome>, StateError> {
        if let (Some(state), Some(change)) = (&self.state, &envelope.matano) {
            let alert = &change.updated_alert;
            if let ChangeOrder::Stale { latest } = state.observe_change(&alert.id, alert.update_count).await? {
                tracing::warn!(matano_alert_id = %alert.id, update_count = alert.update_count, latest, "stale change");
                if !self.process_stale_changes {
                    summary.stale += 1;
                    return Ok(vec![stale_outcome(envelope, latest)]);
                }
            }
        }
        let clock = Instant::now();
        // Converted once: the alert policy's input, then every alert's `input.alert.data`.
        let payload = to_policy_value(&envelope.payload);
        let evaluated = self.policies.eval_alerts_on(&envelope.schema, &payload, deadline);
        summary.policy_micros += clock.elapsed().as_micros() as u64;
        let drafts = match evaluated {
            Ok(drafts) => drafts,
            Err(err) => {
                tracing::error!(message_id = %envelope.message_id, schema = %envelope.schema, error = %err, "alert policy failed");
                summary.policy_errors += 1;
                return Ok(vec![policy_error_outcome(envelope, None, &err.to_string())]);
            }
        };
        tracing::info!(message_id = %envelope.message_id, schema = %envelope.schema, change = %envelope.change_key(), alerts = drafts.len(), "alert policy evaluated");
        let workflow = Workflow {
            policies: &self.policies,
            registry: &self.registry,
            limits: &self.limits,
            env: &self.env,
            secrets: &self.secrets,
            state: self.state.as_deref(),
            lease: self.lease,
        };
        let mut outcomes = Vec::new();
        for draft in drafts {
            let mut alert = Alert::from_draft(draft, envelope);
            if let Some(state) = &self.state {
                if !alert.namespace.is_empty() {
                    // Attributes earlier alerts of this namespace persisted;
                    // the alert policy's own win on the same key.
                    for attr in state.load_attrs(&alert.namespace).await? {
                        if !alert.attrs.iter().any(|a| a.key == attr.key) {
                            alert.attrs.push(attr);
                        }
                    }
                }
            }
            summary.alerts += 1;
            let report = workflow.run_with_payload(alert, payload.clone(), deadline).await;
            tracing::info!(alert_id = %report.alert.id, title = %report.alert.title, rounds = report.rounds, actions = report.actions.len(), stop = ?report.stop, "workflow finished");
            match &report.stop {
                Stop::PolicyError { error } => {
                    tracing::error!(alert_id = %report.alert.id, error = %error, "action policy failed");
                    summary.policy_errors += 1;
                    outcomes.push(policy_error_outcome(envelope, Some(&report.alert), error));
                }
                Stop::Retry {
                    action_id,
                    cause: reason,
                } if self.state.is_some() => {
                    tracing::warn!(alert_id = %report.alert.id, action_id = %action_id, reason = %reason, "action will be retried with the invocation");
                    retries.push(format!("{action_id}: {reason}"));
                }
                _ => {}
            }
            summary.actions += report.actions.len();
            summary.policy_micros += report.policy_time.as_micros() as u64;
            for action in &report.actions {
                *summary
                    .action_counts
                    .entry((action.uses.clone(), action.status.as_str().to_string()))
                    .or_default() += 1;
            }
            summary.replayed += report.actions.iter().filter(|a| a.replay).count();
            summary.failed_actions += report.actions.iter().filter(|a| a.status == Status::Failed).count();
            outcomes.extend(action_outcomes(envelope, &report));
        }
        Ok(outcomes)
    }
}

/// One outcome per action record of a workflow.
pub fn action_outcomes(envelope: &Envelope, report: &WorkflowReport) -> Vec<Outcome> {
    let alert = AlertSummary::of(&report.alert);
    let source = SourceMessage::of(envelope);
    report
        .actions
        .iter()
        // A record to be retried is not final: its outcome comes with the retry.
        .filter(|record| record.retry.is_none())
        .map(|record| Outcome {
            schema_version: SCHEMA_VERSION,
            event_type: EventType::ActionOutcome,
            outcome_id: record.outcome_id.clone(),
            status: record.status,
            source_message: source.clone(),
            alert: Some(alert.clone()),
            action: Some(ActionSummary {
                id: record.id.clone(),
                uses: record.uses.clone(),
                args: record.args.clone(),
            }),
            result: record.result.clone(),
            error: record.error.clone(),
            seq: Some(record.seq),
            commits: record.commits.clone(),
            started_at: record.started_at,
            duration_ms: record.duration_ms,
            rejected: None,
            replay: record.replay,
        })
        .collect()
}
