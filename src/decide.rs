//! The decision: one ingested message → the alerts its alert policy makes →
//! each alert's workflow. The Lambda pipeline, `run`, `play` and the
//! benchmarks all decide through [`Decider::decide`]; they differ only in
//! the parts they hand it (mocked actions, a dry run, an in-memory state).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use serde_json::Value;

use crate::action::Registry;
use crate::config::{ActionBudget, PolicyEngine};
use crate::ingest::Envelope;
use crate::model::suspended::{Phase, SourceEnvelope, SuspendedWorkflow};
use crate::model::{ActionRecord, Alert, Attr};
use crate::policy::{to_policy_value, PolicyError, PolicySet};
use crate::secrets::SecretResolver;
use crate::state::{lease_for, persist_ttl, ChangeOrder, PersistOp, PersistWrite, StateError, StateStore, Taken};
use crate::wakeup::{schedule_name, Wakeup, WakeupError, Wakeups};
use crate::workflow::{Acting, Guards, Limits, Recorded, Stop, Workflow, WorkflowReport};

/// Why a message could not be decided now: the invocation must be retried
/// (what ran of it, with the state table, is replayed).
#[derive(Debug, Clone, thiserror::Error)]
pub enum DecideError {
    #[error(transparent)]
    State(#[from] StateError),
    /// Another alert of the namespace is being decided, past what this
    /// invocation can wait: deciding now would read attributes it may change.
    #[error("namespace {namespace:?} is held by another alert's workflow longer than this invocation can wait")]
    NamespaceBusy { namespace: String },
    /// A suspended workflow's wakeup could not be scheduled.
    #[error(transparent)]
    Wakeup(#[from] WakeupError),
    /// Another invocation is resuming the workflow.
    #[error("workflow {workflow:?} is being resumed by another invocation")]
    WorkflowBusy { workflow: String },
    /// A policy evaluation ran into the invocation's deadline: decided
    /// again by a later invocation. From `decide`, the alert policy's
    /// (nothing ran); an action round's is a `Stop::Deadline`, turned into
    /// this once the outcomes of what ran are out.
    #[error("{0}; the message is decided again by a retry")]
    Deadline(PolicyError),
    /// Too little of the invocation was left to start deciding the message
    /// (a batch's later records after slow earlier ones).
    #[error("too little time left before the invocation's deadline to start; the message is decided by a retry")]
    NoTimeLeft,
}

/// What was decided for one message.
#[derive(Debug)]
pub enum Decision {
    /// No alert policy for the message's schema.
    NoAlertPolicy { schema: String },
    /// A Matano change older than one already processed: not acted on.
    Stale { latest: u64 },
    /// The alert policy failed; no workflow ran.
    AlertPolicyFailed(PolicyError),
    /// The alerts and what their workflows did (none: the policy saw nothing to respond to).
    Alerts(Vec<WorkflowReport>),
}

/// A decision, the time its policies took, and which policies they were.
#[derive(Debug)]
pub struct Decided {
    pub decision: Decision,
    pub policy_time: Duration,
    /// The digest of the policies that decided (a swap mid-way cannot mislabel it).
    pub bundle_digest: Arc<str>,
    pub engine: PolicyEngine,
}

impl Decided {
    /// Nothing decided yet, by `policies`.
    fn by(policies: &PolicySet) -> Decided {
        Decided {
            decision: Decision::Alerts(Vec::new()),
            policy_time: Duration::ZERO,
            bundle_digest: policies.shared_digest(),
            engine: policies.engine(),
        }
    }
}

/// The alert policy's drafts for `envelope`, and its payload converted once
/// (the alert policy's input, then every alert's `input.alert.data`); the
/// time taken is added to `policy_time`.
fn draft_alerts(
    policies: &PolicySet,
    envelope: &Envelope,
    deadline: Option<Instant>,
    policy_time: &mut Duration,
) -> Result<(regorus::Value, Vec<crate::model::AlertDraft>), PolicyError> {
    let clock = Instant::now();
    let payload = to_policy_value(&envelope.payload);
    let evaluated = policies.eval_alerts_on(&envelope.schema, &payload, deadline);
    *policy_time += clock.elapsed();
    evaluated.map(|drafts| (payload, drafts))
}

/// The plain settings of a decision, from the configuration.
#[derive(Debug, Clone)]
pub struct DecideSettings {
    pub limits: Limits,
    /// `input.env` for the action policy: only allow-listed values.
    pub env: Value,
    /// How long an action claim holds before another invocation may take it over.
    pub lease: Duration,
    /// Act on Matano changes older than one already processed.
    pub process_stale_changes: bool,
    /// `ACTION_BUDGETS`.
    pub budgets: Vec<ActionBudget>,
    /// How long a reading of the actions switch is trusted.
    pub switch_refresh: Duration,
}

/// The parts a decision needs; built once and shared by every decision.
pub struct Decider {
    /// The live policies; a new bundle replaces them whole between decisions.
    policies: ArcSwap<PolicySet>,
    /// A candidate decided next to the live policies, never acting.
    shadow: ArcSwapOption<PolicySet>,
    registry: Registry,
    settings: DecideSettings,
    secrets: SecretResolver,
    /// Exactly-once actions, change order and persistent attributes.
    state: Option<Arc<dyn StateStore>>,
    guards: Guards,
    /// What brings suspended workflows back (schedules, resumes).
    wakeups: Option<Arc<dyn Wakeups>>,
}

/// A suspended workflow run on: its message, and its decision (one alert).
#[derive(Debug)]
pub struct Resumed {
    pub envelope: Envelope,
    pub decided: Decided,
    /// The workflow as it was suspended (its records up to then were published).
    pub suspended: SuspendedWorkflow,
}

/// A pending action's due time is scheduled no sooner than this ahead:
/// Scheduler's one-time schedules fire to the minute.
const MIN_SCHEDULE_AHEAD: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

impl Decider {
    pub fn new(
        policies: Arc<PolicySet>,
        registry: Registry,
        settings: DecideSettings,
        secrets: SecretResolver,
        state: Option<Arc<dyn StateStore>>,
    ) -> Decider {
        let guards = Guards::new(settings.budgets.clone(), state.clone(), settings.switch_refresh);
        Decider {
            policies: ArcSwap::new(policies),
            shadow: ArcSwapOption::empty(),
            registry,
            settings,
            secrets,
            state,
            guards,
            wakeups: None,
        }
    }

    /// Suspended workflows are brought back by `wakeups`.
    pub fn with_wakeups(mut self, wakeups: Arc<dyn Wakeups>) -> Decider {
        self.wakeups = Some(wakeups);
        self
    }

    pub fn wakeups(&self) -> Option<&Arc<dyn Wakeups>> {
        self.wakeups.as_ref()
    }

    /// The state store, when there is one.
    pub fn state(&self) -> Option<&Arc<dyn StateStore>> {
        self.state.as_ref()
    }

    /// The least a claim or a namespace lock holds (`CLAIM_LEASE_SECONDS`),
    /// when decisions take them: with a state table, not in a dry run.
    pub(crate) fn lease_floor(&self) -> Option<Duration> {
        let leases = self.state.is_some() && !self.settings.limits.dry_run;
        leases.then_some(self.settings.lease)
    }

    /// The live policies (a decision holds on to the ones it started with).
    pub fn policies(&self) -> Arc<PolicySet> {
        self.policies.load_full()
    }

    /// Serves `policies` from the next decision on.
    pub fn swap_policies(&self, policies: Arc<PolicySet>) {
        self.policies.store(policies);
    }

    /// The shadow policies, if any.
    pub fn shadow(&self) -> Option<Arc<PolicySet>> {
        self.shadow.load_full()
    }

    pub fn swap_shadow(&self, shadow: Option<Arc<PolicySet>>) {
        self.shadow.store(shadow);
    }

    pub fn has_state(&self) -> bool {
        self.state.is_some()
    }

    /// Decides `envelope`. Fails only when the state store cannot be
    /// reached, a namespace stays held or the alert policy ran into the
    /// deadline: nothing of the message ran then, and it must be retried.
    pub async fn decide(&self, envelope: &Envelope, deadline: Option<Instant>) -> Result<Decided, DecideError> {
        let policies = self.policies.load_full();
        let mut decided = Decided::by(&policies);
        if !policies.has_schema(&envelope.schema) {
            decided.decision = Decision::NoAlertPolicy {
                schema: envelope.schema.clone(),
            };
            return Ok(decided);
        }
        if let Some(latest) = self.stale(envelope).await? {
            decided.decision = Decision::Stale { latest };
            return Ok(decided);
        }
        let (payload, drafts) = match draft_alerts(&policies, envelope, deadline, &mut decided.policy_time) {
            Ok(drafted) => drafted,
            // Nothing ran yet: always safe to decide again.
            Err(err @ PolicyError::Deadline { .. }) => return Err(DecideError::Deadline(err)),
            Err(err) => {
                tracing::error!(message_id = %envelope.message_id, schema = %envelope.schema, error = %err, "alert policy failed");
                decided.decision = Decision::AlertPolicyFailed(err);
                return Ok(decided);
            }
        };
        tracing::info!(message_id = %envelope.message_id, schema = %envelope.schema, change = %envelope.change_key(), alerts = drafts.len(), "alert policy evaluated");
        let workflow = self.workflow(&policies, &self.settings.limits, None);
        let mut reports = Vec::with_capacity(drafts.len());
        for draft in drafts {
            let alert = Alert::from_draft(draft, envelope);
            let namespace = alert.namespace.clone();
            let lock = self.lock_namespace(&namespace, deadline).await?;
            let report = match self.run_alert(&workflow, alert, &payload, deadline).await {
                Ok(report) => self
                    .suspend_if_asked(&report, envelope, policies.digest(), false)
                    .await
                    .map(|()| report),
                Err(err) => Err(err.into()),
            };
            self.unlock(lock, &namespace).await;
            let report = report?;
            tracing::info!(alert_id = %report.alert.id, title = %report.alert.title, rounds = report.rounds, actions = report.actions.len(), stop = report.stop.reason(), "workflow finished");
            decided.policy_time += report.policy_time;
            reports.push(report);
        }
        decided.decision = Decision::Alerts(reports);
        Ok(decided)
    }

    /// A workflow that stopped `Suspended` is stored with its pending
    /// actions, and each one's due time scheduled. `holder`: this
    /// invocation resumed it (else a stored workflow being resumed wins).
    async fn suspend_if_asked(
        &self,
        report: &WorkflowReport,
        envelope: &Envelope,
        digest: &str,
        holder: bool,
    ) -> Result<(), DecideError> {
        let (Some(state), Stop::Suspended { pending }) = (&self.state, &report.stop) else {
            return Ok(());
        };
        let workflow = SuspendedWorkflow {
            alert: report.alert.clone(),
            source: SourceEnvelope {
                schema: envelope.schema.clone(),
                message_id: envelope.message_id.clone(),
                topic_arn: envelope.topic_arn.clone(),
                timestamp: envelope.timestamp,
                change_key: Some(envelope.change_key()),
            },
            actions: report.actions.clone(),
            rounds: report.rounds,
            pending: pending.clone(),
            bundle_digest: digest.to_string(),
            suspended_at: chrono::Utc::now(),
            phase: Phase::Suspended,
        };
        let id = workflow.id().to_string();
        let Some(workflow) = within_item_size(workflow) else {
            // Retrying would fail the same way: the pending outcome stands,
            // and the workflow is not resumed.
            tracing::error!(alert_id = %report.alert.id, "the suspended workflow is too large to store even with its results cut to previews; it will not be resumed");
            // A resumed workflow that grew too large ends here: left taken,
            // it would show its answered actions as pending, and a later
            // `workflows resume` would run its rounds again.
            if holder {
                state.end_workflow(&id).await?;
            }
            return Ok(());
        };
        // Schedules first: a save that follows is what a retry finds, and a
        // schedule made twice is one (its name is the action's).
        match &self.wakeups {
            Some(wakeups) => {
                let soonest = chrono::Utc::now() + MIN_SCHEDULE_AHEAD;
                for action in pending {
                    let wakeup = Wakeup::Due {
                        workflow: workflow.id().to_string(),
                        action: action.id.clone(),
                    };
                    let name = schedule_name(workflow.id(), &action.id);
                    wakeups.schedule(&name, action.due_at.max(soonest), &wakeup).await?;
                }
            }
            None => {
                tracing::warn!(alert_id = %workflow.id(), "no schedules (SCHEDULE_GROUP unset): pending actions time out only with `alert-responder workflows resume`")
            }
        }
        if !state.save_workflow(&workflow, holder).await? {
            tracing::info!(alert_id = %workflow.id(), "a newer state of the workflow is stored (or being resumed); not suspended again");
            return Ok(());
        }
        tracing::info!(alert_id = %workflow.id(), pending = pending.len(), rounds = report.rounds, "workflow suspended");
        Ok(())
    }

    /// Runs a suspended workflow on from its next round, when every
    /// pending action has its result; `None` when there is nothing to do
    /// now (another invocation holds it, it ended, an answer is missing).
    pub async fn resume(&self, workflow_id: &str, deadline: Option<Instant>) -> Result<Option<Resumed>, DecideError> {
        let Some(state) = self.state.clone() else {
            return Ok(None);
        };
        let lease = lease_for(deadline, self.settings.lease);
        let suspended = match state.take_workflow(workflow_id, lease).await? {
            Taken::Workflow(suspended) => *suspended,
            // Retried later: the holder may have died (its lease then ends).
            Taken::Held => {
                return Err(DecideError::WorkflowBusy {
                    workflow: workflow_id.to_string(),
                })
            }
            Taken::Absent => {
                tracing::info!(workflow = workflow_id, "no suspended workflow to resume (it ended)");
                return Ok(None);
            }
        };
        let resolved = match resolved_records(state.as_ref(), &suspended).await {
            Ok(Some(resolved)) => resolved,
            Ok(None) => {
                state.release_workflow(workflow_id).await?;
                return Ok(None);
            }
            // Given back: the retry takes it again rather than waiting out the lease.
            Err(err) => {
                if let Err(release) = state.release_workflow(workflow_id).await {
                    tracing::warn!(workflow = workflow_id, error = %release, "could not give the workflow back; it is taken again after its lease");
                }
                return Err(err.into());
            }
        };
        let envelope = match envelope_of(&suspended) {
            Ok(envelope) => envelope,
            Err(err) => {
                state.release_workflow(workflow_id).await?;
                return Err(err.into());
            }
        };
        let policies = self.policies.load_full();
        let mut decided = Decided::by(&policies);
        let namespace = suspended.alert.namespace.clone();
        let lock = match self.lock_namespace(&namespace, deadline).await {
            Ok(lock) => lock,
            Err(err) => {
                state.release_workflow(workflow_id).await?;
                return Err(err);
            }
        };
        // Attributes other alerts of the namespace persisted meanwhile.
        let mut alert = suspended.alert.clone();
        if let Err(err) = self.add_persisted_attrs(&mut alert).await {
            self.unlock(lock, &namespace).await;
            state.release_workflow(workflow_id).await?;
            return Err(err.into());
        }
        let clock = Instant::now();
        let payload = to_policy_value(&suspended.alert.data);
        decided.policy_time += clock.elapsed();
        let workflow = self.workflow(&policies, &self.settings.limits, None);
        let report = workflow
            .resume(
                alert,
                payload,
                suspended.actions.clone(),
                resolved,
                suspended.rounds,
                deadline,
            )
            .await;
        self.unlock(lock, &namespace).await;
        tracing::info!(alert_id = %report.alert.id, rounds = report.rounds, actions = report.actions.len(), stop = report.stop.reason(), "workflow resumed");
        decided.policy_time += report.policy_time;
        decided.decision = Decision::Alerts(vec![report]);
        Ok(Some(Resumed {
            envelope,
            decided,
            suspended,
        }))
    }

    /// After a resume's outcomes and record are out: the workflow ends, is
    /// stored with its new pending actions, or — when actions must be
    /// retried — is given back for the retry to take.
    pub async fn settle_resume(&self, resumed: &Resumed) -> Result<(), DecideError> {
        let Some(state) = &self.state else {
            return Ok(());
        };
        let Decision::Alerts(reports) = &resumed.decided.decision else {
            return Ok(());
        };
        let id = resumed.suspended.id();
        for report in reports {
            match &report.stop {
                Stop::Suspended { .. } => {
                    self.suspend_if_asked(report, &resumed.envelope, &resumed.decided.bundle_digest, true)
                        .await?
                }
                Stop::Retry { .. } | Stop::Deadline { .. } => state.release_workflow(id).await?,
                // An abort (or a failure) in a round where another action
                // waits for the invocation's retry: the retry must find the
                // workflow to run that action.
                _ if !report.retries.is_empty() => state.release_workflow(id).await?,
                _ => state.end_workflow(id).await?,
            }
        }
        Ok(())
    }

    /// Gives a taken workflow back, suspended: its resume must be retried.
    pub async fn give_back(&self, workflow_id: &str) {
        if let Some(state) = &self.state {
            if let Err(err) = state.release_workflow(workflow_id).await {
                tracing::warn!(workflow = workflow_id, error = %err, "could not give the workflow back; it can be taken again when its lease ends");
            }
        }
    }

    /// Releases a namespace lock (best effort: it lapses with its lease).
    async fn unlock(&self, lock: Option<(Arc<dyn StateStore>, String)>, namespace: &str) {
        if let Some((state, owner)) = lock {
            if let Err(err) = state.unlock_namespace(namespace, &owner).await {
                tracing::warn!(namespace = %namespace, error = %err, "could not release the namespace lock");
            }
        }
    }

    /// The alert policy's attributes to persist stored, the namespace's
    /// persisted ones added, then the workflow.
    async fn run_alert(
        &self,
        workflow: &Workflow<'_>,
        mut alert: Alert,
        payload: &regorus::Value,
        deadline: Option<Instant>,
    ) -> Result<WorkflowReport, StateError> {
        let stored = self.stored_attrs(&alert.namespace).await?;
        self.save_policy_attrs(&alert, &stored).await?;
        let persisted = !stored.is_empty();
        for attr in stored {
            alert.upsert_attr(attr);
        }
        let mut report = workflow.run(alert, payload.clone(), deadline).await;
        if persisted {
            self.report_what_ran_before(&mut report).await?;
        }
        Ok(report)
    }

    /// A retry sees what its first try persisted (`paged: true`), and its
    /// policy may ask for less than that try ran: the actions of the alert
    /// that ran and that this decision did not ask for again are replayed
    /// too, so their outcomes are published and on record. Only a namespace
    /// holding persisted attributes can decide so: others pay no read.
    async fn report_what_ran_before(&self, report: &mut WorkflowReport) -> Result<(), StateError> {
        let Some(state) = &self.state else {
            return Ok(());
        };
        // Only a decision that ended: one left to a retry or suspended
        // would carry them into the next try or the stored workflow.
        let ended = !matches!(
            report.stop,
            Stop::Retry { .. } | Stop::Deadline { .. } | Stop::Suspended { .. }
        );
        if self.settings.limits.dry_run || !ended {
            return Ok(());
        }
        let asked =
            |id: &str| report.actions.iter().any(|a| a.id == id) || report.retries.iter().any(|r| r.action_id == id);
        let mut earlier: Vec<ActionRecord> = state
            .action_records(&report.alert.id)
            .await?
            .into_iter()
            .filter(|record| !asked(&record.id))
            .collect();
        earlier.sort_by(|a, b| (a.seq, &a.id).cmp(&(b.seq, &b.id)));
        report.ran_before = earlier.len();
        for mut record in earlier {
            tracing::info!(alert_id = %report.alert.id, action_id = %record.id, "ran on an earlier try and not asked for again; replaying its record");
            record.replay = true;
            report.actions.push(record);
        }
        Ok(())
    }

    /// Stores the alert policy's `persist: true` attributes that the
    /// namespace does not hold yet, before the first round, so later alerts
    /// of the namespace see them (AlertChain stores them when the workflow
    /// ends). One the namespace holds keeps its stored value: that one
    /// replaces the alert policy's for this alert, as in AlertChain.
    async fn save_policy_attrs(&self, alert: &Alert, stored: &[Attr]) -> Result<(), StateError> {
        let Some(state) = &self.state else {
            return Ok(());
        };
        // A dry run writes nothing, as it runs nothing.
        if alert.namespace.is_empty() || self.settings.limits.dry_run {
            return Ok(());
        }
        let writes: Vec<PersistWrite> = alert
            .attrs
            .iter()
            .filter(|attr| attr.persist && !stored.iter().any(|held| held.id == attr.id))
            .filter_map(|attr| {
                Some(PersistWrite {
                    namespace: alert.namespace.clone(),
                    // Every alert-policy attribute has one (`Alert::from_draft`).
                    id: attr.id.clone()?,
                    key: attr.key.clone(),
                    kind: attr.kind.clone(),
                    op: PersistOp::Set(attr.value.clone()),
                    ttl: persist_ttl(attr.ttl),
                })
            })
            .collect();
        if writes.is_empty() {
            return Ok(());
        }
        state.save_attrs(&writes).await
    }

    /// With a state store, an alert with a namespace is decided alone: the
    /// namespace's lock is taken before its attributes are read and held
    /// until its workflow (and its persistent commits) finished. Another
    /// holder is waited for, with backoff, while this invocation has time.
    async fn lock_namespace(
        &self,
        namespace: &str,
        deadline: Option<Instant>,
    ) -> Result<Option<(Arc<dyn StateStore>, String)>, DecideError> {
        let Some(state) = &self.state else {
            return Ok(None);
        };
        // A dry run stores nothing that one alert at a time protects.
        if namespace.is_empty() || self.settings.limits.dry_run {
            return Ok(None);
        }
        let owner = crate::state::unique_token();
        let started = Instant::now();
        let mut wait = Duration::from_millis(20);
        loop {
            let lease = lease_for(deadline, self.settings.lease);
            if state.lock_namespace(namespace, &owner, lease).await? {
                return Ok(Some((state.clone(), owner)));
            }
            let give_up = match deadline {
                Some(deadline) => Instant::now() + wait + Duration::from_secs(1) >= deadline,
                None => started.elapsed() + wait > self.settings.lease,
            };
            if give_up {
                return Err(DecideError::NamespaceBusy {
                    namespace: namespace.to_string(),
                });
            }
            tracing::info!(
                namespace,
                wait_ms = wait.as_millis() as u64,
                "namespace held by another alert; waiting"
            );
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(500));
        }
    }

    /// With a state store, the latest change already processed when this
    /// one is older (and stale changes are skipped).
    async fn stale(&self, envelope: &Envelope) -> Result<Option<u64>, StateError> {
        // A dry run writes nothing to the state table: no change is marked
        // seen, so a later real run of an older change is not made stale.
        let (Some(state), Some(change), false) = (&self.state, &envelope.matano, self.settings.limits.dry_run) else {
            return Ok(None);
        };
        let alert = &change.updated_alert;
        match state.observe_change(&alert.id, alert.update_count).await? {
            ChangeOrder::Current => Ok(None),
            ChangeOrder::Stale { latest } => {
                tracing::warn!(matano_alert_id = %alert.id, update_count = alert.update_count, latest, "stale change");
                Ok((!self.settings.process_stale_changes).then_some(latest))
            }
        }
    }

    /// Attributes earlier alerts of the namespace persisted: one with the id
    /// of an alert-policy attribute replaces it where it stands (AlertChain),
    /// the others are added.
    async fn add_persisted_attrs(&self, alert: &mut Alert) -> Result<(), StateError> {
        for attr in self.stored_attrs(&alert.namespace).await? {
            alert.upsert_attr(attr);
        }
        Ok(())
    }

    /// The namespace's persisted attributes (none without a state store or
    /// a namespace).
    async fn stored_attrs(&self, namespace: &str) -> Result<Vec<Attr>, StateError> {
        match &self.state {
            Some(state) if !namespace.is_empty() => state.load_attrs(namespace).await,
            _ => Ok(Vec::new()),
        }
    }

    fn workflow<'a>(
        &'a self,
        policies: &'a PolicySet,
        limits: &'a Limits,
        recorded: Option<&'a Recorded>,
    ) -> Workflow<'a> {
        Workflow::new(
            policies,
            limits,
            &self.settings.env,
            Acting {
                registry: &self.registry,
                secrets: &self.secrets,
                // A rehearsal touches no state: no claim, budget or commit.
                state: self.state.as_deref().filter(|_| recorded.is_none()),
                lease: self.settings.lease,
                guards: &self.guards,
                recorded,
            },
        )
    }

    /// Decides `envelope` with `policies` without acting: a dry run in which
    /// an action id that ran (in `rehearsal`) shows its recorded result.
    /// Nothing is claimed, counted or persisted. Shadow policies and
    /// `replay` decide so.
    pub async fn rehearse(
        &self,
        policies: &PolicySet,
        envelope: &Envelope,
        rehearsal: &Rehearsal,
        deadline: Option<Instant>,
    ) -> Decided {
        let mut decided = Decided::by(policies);
        if !policies.has_schema(&envelope.schema) {
            decided.decision = Decision::NoAlertPolicy {
                schema: envelope.schema.clone(),
            };
            return decided;
        }
        let (payload, drafts) = match draft_alerts(policies, envelope, deadline, &mut decided.policy_time) {
            Ok(drafted) => drafted,
            Err(err) => {
                decided.decision = Decision::AlertPolicyFailed(err);
                return decided;
            }
        };
        let limits = Limits {
            dry_run: true,
            ..self.settings.limits.clone()
        };
        let mut reports = Vec::with_capacity(drafts.len());
        for draft in drafts {
            let mut alert = Alert::from_draft(draft, envelope);
            let (recorded, persisted) = rehearsal.for_alert(&alert);
            for attr in persisted {
                alert.upsert_attr(attr.clone());
            }
            let workflow = self.workflow(policies, &limits, Some(recorded));
            let report = workflow.run(alert, payload.clone(), deadline).await;
            decided.policy_time += report.policy_time;
            reports.push(report);
        }
        decided.decision = Decision::Alerts(reports);
        decided
    }
}

/// A suspended workflow's item must fit DynamoDB's 400 KB with room for
/// its other attributes.
const MAX_SUSPENDED_BYTES: usize = 370 * 1024;

/// `workflow` as it can be stored: whole, else with every action's result
/// cut to a marked preview; `None` when even that is too large.
fn within_item_size(mut workflow: SuspendedWorkflow) -> Option<SuspendedWorkflow> {
    let size = |w: &SuspendedWorkflow| serde_json::to_vec(w).map_or(usize::MAX, |b| b.len());
    if size(&workflow) <= MAX_SUSPENDED_BYTES {
        return Some(workflow);
    }
    for action in &mut workflow.actions {
        action.result = action
            .result
            .take()
            .map(|r| crate::model::outcome::preview(&r, 4 * 1024));
    }
    (size(&workflow) <= MAX_SUSPENDED_BYTES).then_some(workflow)
}

/// The final records of a suspended workflow's pending actions, `None`
/// while one is still pending.
async fn resolved_records(
    state: &dyn StateStore,
    suspended: &SuspendedWorkflow,
) -> Result<Option<Vec<crate::model::ActionRecord>>, StateError> {
    let mut resolved = Vec::new();
    for pending in &suspended.pending {
        match state.action_record(suspended.id(), &pending.id).await? {
            Some(record) if record.status != crate::model::Status::Pending => resolved.push(record),
            _ => {
                tracing::info!(workflow = %suspended.id(), action_id = %pending.id, "still waiting for an action's result");
                return Ok(None);
            }
        }
    }
    Ok(Some(resolved))
}

/// The envelope of the message a suspended workflow's alert came from.
pub fn envelope_of(suspended: &SuspendedWorkflow) -> Result<Envelope, StateError> {
    let source = &suspended.source;
    crate::ingest::envelope_from_recorded(
        (*suspended.alert.data).clone(),
        &source.schema,
        Some(&source.message_id),
        source.topic_arn.as_deref(),
        source.timestamp,
        source.change_key.as_deref(),
    )
    .map_err(|err| StateError {
        table: "workflow".to_string(),
        operation: "resume",
        reason: format!(
            "the stored message of workflow {} no longer ingests: {err}",
            suspended.id()
        ),
    })
}

/// What a rehearsal sees of what happened: per alert, the action records
/// of its workflow and the attributes its namespace had persisted.
#[derive(Debug, Default, Clone)]
pub struct Rehearsal {
    alerts: Vec<RehearsedAlert>,
    empty: Recorded,
}

#[derive(Debug, Clone)]
struct RehearsedAlert {
    id: String,
    title: String,
    actions: Recorded,
    persisted: Vec<Attr>,
}

impl Rehearsal {
    /// An alert's actions and the persisted attributes its first round saw.
    pub fn add_alert(
        &mut self,
        id: &str,
        title: &str,
        actions: impl IntoIterator<Item = crate::model::ActionRecord>,
        persisted: Vec<Attr>,
    ) {
        self.alerts.push(RehearsedAlert {
            id: id.to_string(),
            title: title.to_string(),
            actions: actions.into_iter().map(|a| (a.id.clone(), a)).collect(),
            persisted,
        });
    }

    /// What the live workflow of the live decision did.
    pub fn of_reports(reports: &[WorkflowReport]) -> Rehearsal {
        let mut rehearsal = Rehearsal::default();
        for report in reports {
            let persisted = report.initial_attrs.iter().filter(|a| a.persist).cloned().collect();
            rehearsal.add_alert(
                &report.alert.id,
                &report.alert.title,
                report.actions.iter().cloned(),
                persisted,
            );
        }
        rehearsal
    }

    /// The recorded alert this one is: the same id, else the only one with
    /// its title (a changed alert policy changes ids).
    fn for_alert(&self, alert: &Alert) -> (&Recorded, &[Attr]) {
        let same_id = self.alerts.iter().find(|a| a.id == alert.id);
        let same_title = || {
            let mut titled = self.alerts.iter().filter(|a| a.title == alert.title);
            match (titled.next(), titled.next()) {
                (Some(one), None) => Some(one),
                _ => None,
            }
        };
        match same_id.or_else(same_title) {
            Some(found) => (&found.actions, &found.persisted),
            None => (&self.empty, &[]),
        }
    }
}
