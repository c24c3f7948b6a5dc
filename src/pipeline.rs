//! One invocation: ingested records → alert policy → workflows → outcomes.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use crate::action::Registry;
use crate::alert::Alert;
use crate::config::Config;
use crate::event::{Envelope, IngestError, Ingested, Rejected};
use crate::outcome::{
    policy_error_outcome, rejected_outcome, ActionSummary, AlertSummary, EventType, Outcome,
    PublishError, Publisher, SourceMessage, Status, SCHEMA_VERSION,
};
use crate::policy::PolicySet;
use crate::secrets::SecretResolver;
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
}

/// Everything that lives across invocations: compiled policies, the action
/// registry (with its HTTP and SNS clients), the outcome publisher.
pub struct Responder {
    policies: PolicySet,
    registry: Registry,
    publisher: Arc<dyn Publisher>,
    limits: Limits,
    env: Value,
    secrets: SecretResolver,
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
        }
    }

    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }

    /// Handles every record; a bad record or a failing policy affects only
    /// itself. Fails only when outcomes cannot be published, so the event is
    /// retried (and lands in the on-failure destination) instead of lost.
    pub async fn handle(
        &self,
        records: Vec<Ingested>,
        deadline: Option<Instant>,
    ) -> Result<Summary, PublishError> {
        let mut summary = Summary {
            records: records.len(),
            ..Summary::default()
        };
        for record in records {
            let outcomes = match record {
                Err(rejected) => self.reject(*rejected, &mut summary),
                Ok(envelope) if !self.policies.has_schema(&envelope.schema) => {
                    let error = IngestError::UnknownSchema {
                        schema: envelope.schema.clone(),
                    };
                    self.reject(
                        Rejected {
                            message_id: Some(envelope.message_id.clone()).filter(|m| !m.is_empty()),
                            topic_arn: envelope.topic_arn.clone(),
                            original: envelope.payload.to_string(),
                            error,
                        },
                        &mut summary,
                    )
                }
                Ok(envelope) => self.respond(&envelope, deadline, &mut summary).await,
            };
            if !outcomes.is_empty() {
                self.publisher.publish(&outcomes).await?;
                summary.outcomes += outcomes.len();
            }
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
    ) -> Vec<Outcome> {
        let drafts = match self
            .policies
            .eval_alerts(&envelope.schema, &envelope.payload)
        {
            Ok(drafts) => drafts,
            Err(err) => {
                tracing::error!(message_id = %envelope.message_id, schema = %envelope.schema, error = %err, "alert policy failed");
                summary.policy_errors += 1;
                return vec![policy_error_outcome(envelope, None, &err.to_string())];
            }
        };
        tracing::info!(message_id = %envelope.message_id, schema = %envelope.schema, change = %envelope.change_key(), alerts = drafts.len(), "alert policy evaluated");
        let workflow = Workflow {
            policies: &self.policies,
            registry: &self.registry,
            limits: &self.limits,
            env: &self.env,
            secrets: &self.secrets,
        };
        let mut outcomes = Vec::new();
        for draft in drafts {
            let alert = Alert::from_draft(draft, envelope);
            summary.alerts += 1;
            let report = workflow.run(alert, deadline).await;
            tracing::info!(alert_id = %report.alert.id, title = %report.alert.title, rounds = report.rounds, actions = report.actions.len(), stop = ?report.stop, "workflow finished");
            if let Stop::PolicyError { error } = &report.stop {
                tracing::error!(alert_id = %report.alert.id, error = %error, "action policy failed");
                summary.policy_errors += 1;
                outcomes.push(policy_error_outcome(envelope, Some(&report.alert), error));
            }
            summary.actions += report.actions.len();
            summary.failed_actions += report
                .actions
                .iter()
                .filter(|a| a.status == Status::Failed)
                .count();
            outcomes.extend(action_outcomes(envelope, &report));
        }
        outcomes
    }
}

/// One outcome per action record of a workflow.
pub fn action_outcomes(envelope: &Envelope, report: &WorkflowReport) -> Vec<Outcome> {
    let alert = AlertSummary::of(&report.alert);
    let source = SourceMessage::of(envelope);
    report
        .actions
        .iter()
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
        })
        .collect()
}
