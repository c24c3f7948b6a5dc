//! One invocation: ingested records → decisions → outcomes, published.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::decide::{DecideError, Decided, Decider, Decision, Rehearsal};
use crate::ingest::{Envelope, IngestError, Ingested, QueuedRecord, Rejected};
use crate::model::decision::{DecisionRecord, DecisionResult, RecordContext, ShadowRecord};
use crate::model::outcome::{
    pending_outcome_id, policy_error_outcome, rejected_outcome, stale_outcome, ActionSummary, AlertSummary, EventType,
    SourceMessage, SCHEMA_VERSION,
};
use crate::model::{Outcome, Status};
use crate::policy::{PolicyError, PolicySet};
use crate::publish::{PublishError, Publisher};
use crate::records::{RecordError, RecordObject, RecordSink};
use crate::requeue::{BatchRecord, Requeue, RetryDelay, REQUEUE_LIMIT};
use crate::workflow::{Retry, RetryCause, Stop, WorkflowReport};

/// Counts of one invocation; the Lambda returns it as its response.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub records: usize,
    pub rejected: usize,
    pub alerts: usize,
    /// Every action a policy asked for: skipped and replayed ones, and
    /// the ones left for a retry, included.
    pub actions: usize,
    pub failed_actions: usize,
    /// Actions not run (any `skip_reason`: a budget, the kill switch, a
    /// workflow's limits, an earlier failure, a cancel); a skip replayed
    /// from the state table counts as a replay only.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped_actions: usize,
    /// Actions left for a retry that did not run (the state table failed
    /// before them, or another invocation held them): in `actions`, not in
    /// `ActionsRun`.
    #[serde(skip)]
    pub retries_not_run: usize,
    pub policy_errors: usize,
    pub outcomes: usize,
    /// Messages a policy evaluation stopped at the invocation's deadline,
    /// left to a retry.
    #[serde(skip_serializing_if = "is_zero")]
    pub deadline_retries: usize,
    /// Actions replayed from the state table instead of run again.
    #[serde(skip_serializing_if = "is_zero")]
    pub replayed: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub stale: usize,
    /// Messages the shadow policies decided differently.
    #[serde(skip_serializing_if = "is_zero")]
    pub shadow_divergences: usize,
    /// Time spent evaluating policies (for metrics).
    #[serde(skip)]
    pub policy_micros: u64,
    /// Actions by `(uses, status)` (for metrics).
    #[serde(skip)]
    pub action_counts: BTreeMap<(String, String), usize>,
}

impl Summary {
    /// Adds another summary's counts (a batch's records, decided apart).
    fn absorb(&mut self, other: Summary) {
        self.records += other.records;
        self.rejected += other.rejected;
        self.alerts += other.alerts;
        self.actions += other.actions;
        self.failed_actions += other.failed_actions;
        self.skipped_actions += other.skipped_actions;
        self.retries_not_run += other.retries_not_run;
        self.policy_errors += other.policy_errors;
        self.deadline_retries += other.deadline_retries;
        self.outcomes += other.outcomes;
        self.replayed += other.replayed;
        self.stale += other.stale;
        self.shadow_divergences += other.shadow_divergences;
        self.policy_micros += other.policy_micros;
        for (key, count) in other.action_counts {
            *self.action_counts.entry(key).or_default() += count;
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// An SQS batch's answer to Lambda (`ReportBatchItemFailures`): the records
/// to deliver again; the others are deleted from the queue.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// A batch handled: its counts, the records to retry and why.
#[derive(Debug, Default)]
pub struct BatchHandled {
    pub summary: Summary,
    pub response: BatchResponse,
    /// Why each retried record is retried, in words (for the log).
    pub causes: Vec<(String, String)>,
    /// The batch's outcomes could not be published.
    pub publish_failed: bool,
    /// The batch's decision records could not be written.
    pub records_failed: bool,
}

/// One record decided: its outcomes, what must be retried, and its counts.
struct RecordDone {
    outcomes: Vec<Outcome>,
    /// The decision record, when records are kept.
    record: Option<DecisionRecord>,
    retries: Vec<Retry>,
    error: Option<DecideError>,
    summary: Summary,
}

/// A record is not started with less of the invocation left than this.
const START_MARGIN: Duration = Duration::from_millis(250);

use crate::deadline::finish_by;

/// What else a batch's record needs to come back sooner when it is retried.
struct ReturnOf {
    deliveries: u32,
    /// Decided, or at least begun (not left for lack of time).
    started: bool,
}

/// The retried records of a batch with a receipt, by queue: each with its
/// delay (none for a record the batch never started). Retries are named by
/// message id, so every record of a retried id is one (SQS may deliver a
/// message twice in a batch: only its latest receipt handle is valid).
fn retried_receipts(
    causes: &[(String, String)],
    records: &[BatchRecord],
    returns: &[ReturnOf],
    delay: RetryDelay,
) -> crate::requeue::ByQueue {
    let retried: std::collections::HashSet<&str> = causes.iter().map(|(item_id, _)| item_id.as_str()).collect();
    crate::requeue::by_queue(
        records
            .iter()
            .zip(returns)
            .filter(|((item_id, _), _)| retried.contains(item_id.as_str()))
            .filter_map(|((_, receipt), back)| {
                Some((receipt.as_ref()?, delay.for_record(back.deliveries, back.started)))
            }),
    )
}

/// Best effort: a record whose visibility is not changed still comes back,
/// after the queue's visibility timeout.
async fn requeue_all(requeue: &dyn Requeue, by_queue: &crate::requeue::ByQueue) {
    for err in crate::requeue::requeue_all(requeue, by_queue).await {
        tracing::warn!(error = %err, "retried records come back after the queue's visibility timeout");
    }
}

/// `work`, unless it is still running at `by`: then `late()`.
async fn bounded<T>(by: Option<Instant>, work: impl std::future::Future<Output = T>, late: impl FnOnce() -> T) -> T {
    match by {
        None => work.await,
        Some(by) => tokio::time::timeout_at(by.into(), work)
            .await
            .unwrap_or_else(|_| late()),
    }
}

/// Why an invocation fails, so Lambda retries it (and, after its retries,
/// sends it to the on-failure destination) rather than dropping it.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// A policy evaluation ran into the invocation's deadline, or a record
    /// could not start in time.
    #[error(transparent)]
    Deadline(DecideError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// The invocation's decision records could not be written.
    #[error(transparent)]
    Records(#[from] RecordError),
    /// A namespace stayed held by another alert's workflow.
    #[error(transparent)]
    NamespaceBusy(DecideError),
    /// Another invocation is resuming the workflow (retried: its holder may
    /// have died, and then its lease ends).
    #[error(transparent)]
    WorkflowBusy(DecideError),
    /// A suspended workflow's wakeup could not be scheduled or sent.
    #[error(transparent)]
    Wakeup(#[from] crate::wakeup::WakeupError),
    /// Actions failed transiently; with the state table, the retry runs only them.
    #[error("{count} action(s) must be retried: {first}")]
    Retry { count: usize, first: Retry },
}

impl From<DecideError> for HandleError {
    fn from(err: DecideError) -> HandleError {
        match err {
            DecideError::State(err) => HandleError::State(err),
            DecideError::Wakeup(err) => HandleError::Wakeup(err),
            busy @ DecideError::NamespaceBusy { .. } => HandleError::NamespaceBusy(busy),
            busy @ DecideError::WorkflowBusy { .. } => HandleError::WorkflowBusy(busy),
            late @ (DecideError::Deadline(_) | DecideError::NoTimeLeft) => HandleError::Deadline(late),
        }
    }
}

/// The invocation's error for actions left to a retry: the state table's
/// when one of them could not be claimed or counted (the table is down:
/// `AlertResponder.StateError`, as when it fails before any action), else
/// the first transient failure's.
pub(crate) fn retry_error(retries: &[Retry]) -> Option<HandleError> {
    let state = retries.iter().find_map(|retry| match &retry.cause {
        RetryCause::State(err) | RetryCause::Unsaved(err) => Some(err.clone()),
        RetryCause::Transient { .. } | RetryCause::Busy { .. } => None,
    });
    if let Some(err) = state {
        return Some(HandleError::State(err));
    }
    let first = retries.first()?;
    Some(HandleError::Retry {
        count: retries.len(),
        first: first.clone(),
    })
}

/// Everything that lives across invocations: the decider (compiled
/// policies, actions, secrets, state) and the publisher.
pub struct Responder {
    decider: Decider,
    publisher: Arc<dyn Publisher>,
    /// Where decision records go; none are built without it.
    records: Option<Arc<dyn RecordSink>>,
    /// Makes an SQS batch's retried records visible again after their own
    /// delay; without it they wait out the queue's visibility timeout.
    requeue: Option<(Arc<dyn Requeue>, RetryDelay)>,
    /// Makes an SQS batch's records visible again sooner when one of them
    /// panics the function (`crash`), on a runtime of its own.
    panic_requeue: Option<Arc<dyn Requeue>>,
}

impl Responder {
    pub fn new(decider: Decider, publisher: Arc<dyn Publisher>) -> Responder {
        Responder {
            decider,
            publisher,
            records: None,
            requeue: None,
            panic_requeue: None,
        }
    }

    /// When a record of an SQS batch panics the function, the batch's other
    /// records are made visible again sooner through `requeue`, which must
    /// work on a runtime of its own (`crash`; [`crate::crash::install_hook`]
    /// installs the hook that does it).
    pub fn with_panic_requeue(mut self, requeue: Arc<dyn Requeue>) -> Responder {
        self.panic_requeue = Some(requeue);
        self
    }

    /// SQS records listed for a retry come back after `delay`, through
    /// `requeue` (`ChangeMessageVisibility`).
    pub fn with_requeue(mut self, requeue: Arc<dyn Requeue>, delay: RetryDelay) -> Responder {
        self.requeue = Some((requeue, delay));
        self
    }

    /// Keeps a decision record of every message in `sink`, written before
    /// an invocation succeeds.
    pub fn with_records(mut self, sink: Arc<dyn RecordSink>) -> Responder {
        self.records = Some(sink);
        self
    }

    pub fn decider(&self) -> &Decider {
        &self.decider
    }

    pub(crate) fn publisher(&self) -> &Arc<dyn Publisher> {
        &self.publisher
    }

    /// Decides records of an SQS batch, up to `concurrency` at a time, and
    /// publishes all their outcomes together (`PublishBatch` across
    /// records). A record is retried — listed in `batchItemFailures` — when
    /// actions failed transiently (with a state table), the state table
    /// failed, its namespace stayed busy, a policy evaluation ran into the
    /// deadline, or its outcomes could not be published; a rejected or
    /// handled record is not. With a requeue, each retried record is made
    /// visible again after its own delay (at most [`REQUEUE_LIMIT`] spent).
    pub async fn handle_batch(
        &self,
        mut records: Vec<QueuedRecord>,
        deadline: Option<Instant>,
        concurrency: usize,
        request_id: Option<&str>,
    ) -> BatchHandled {
        use futures::StreamExt;
        // Records delivered most often first (in order otherwise): a batch
        // that runs out of time leaves its later records for a retry, and
        // a record left over again and again would reach the dead-letter
        // queue without ever being started.
        records.sort_by_key(|record| std::cmp::Reverse(record.deliveries));
        let ids: Arc<[BatchRecord]> = records
            .iter()
            .map(|record| (record.item_id.clone(), record.receipt.clone()))
            .collect();
        let mut returns: Vec<ReturnOf> = records
            .iter()
            .map(|record| ReturnOf {
                deliveries: record.deliveries,
                started: true,
            })
            .collect();
        // `buffered` keeps the records' order: `done[i]` is `returns[i]`'s.
        let decide_all = futures::stream::iter(records.into_iter().enumerate())
            .map(|(index, record)| {
                crate::crash::deciding(index, async move {
                    (record.item_id, self.record(record.ingested, deadline, request_id).await)
                })
            })
            .buffered(concurrency.max(1))
            .collect::<Vec<(String, RecordDone)>>();
        let done = match &self.panic_requeue {
            Some(requeue) => {
                let in_flight = crate::crash::InFlight::new(
                    requeue.clone(),
                    ids.clone(),
                    self.decider
                        .lease_floor()
                        .map(|floor| crate::crash::Leases { deadline, floor }),
                );
                crate::crash::batch(in_flight, decide_all).await
            }
            None => decide_all.await,
        };
        for (record, (_, done)) in returns.iter_mut().zip(&done) {
            record.started = !matches!(done.error, Some(DecideError::NoTimeLeft));
        }
        let mut handled = BatchHandled::default();
        let mut outcomes = Vec::new();
        // The record each outcome is of, by position.
        let mut owners = Vec::new();
        let mut decision_records = Vec::new();
        let mut item_ids = Vec::new();
        for (item_id, mut record) in done {
            item_ids.push(item_id.clone());
            decision_records.extend(record.record.take());
            let cause = match &record.error {
                Some(err) => Some(err.to_string()),
                None => retry_error(&record.retries).map(|err| err.to_string()),
            };
            owners.extend(std::iter::repeat_n(item_id.clone(), record.outcomes.len()));
            // A message SQS delivered twice in the batch is listed once.
            if let Some(cause) = cause.filter(|_| !handled.causes.iter().any(|(id, _)| *id == item_id)) {
                handled.causes.push((item_id, cause));
            }
            outcomes.extend(record.outcomes);
            handled.summary.absorb(record.summary);
        }
        let published = match outcomes.is_empty() {
            true => Ok(()),
            false => self.publish_by(&outcomes, finish_by(deadline)).await,
        };
        match published {
            Ok(()) => handled.summary.outcomes += outcomes.len(),
            Err(err) => {
                // Only the records whose outcomes did not go out are retried
                // (an entry SNS refuses for good holds back no other record).
                handled.publish_failed = true;
                // A failure that names nothing unpublished counts as all of it.
                let unpublished: Vec<usize> = match err.unpublished() {
                    [] => (0..outcomes.len()).collect(),
                    named => named.to_vec(),
                };
                handled.summary.outcomes += outcomes.len().saturating_sub(unpublished.len());
                let cause = err.to_string();
                for index in unpublished {
                    let Some(item_id) = owners.get(index) else { continue };
                    if !handled.causes.iter().any(|(id, _)| id == item_id) {
                        handled.causes.push((item_id.clone(), cause.clone()));
                    }
                }
            }
        }
        if let Err(err) = self.keep_records_by(&decision_records, finish_by(deadline)).await {
            // Every record of the batch is retried: its record is not kept.
            handled.records_failed = true;
            let cause = err.to_string();
            for item_id in item_ids {
                if !handled.causes.iter().any(|(id, _)| id == &item_id) {
                    handled.causes.push((item_id, cause.clone()));
                }
            }
        }
        handled.response.batch_item_failures = handled
            .causes
            .iter()
            .map(|(item_id, _)| BatchItemFailure {
                item_identifier: item_id.clone(),
            })
            .collect();
        if let Some((requeue, delay)) = &self.requeue {
            let retried = retried_receipts(&handled.causes, &ids, &returns, *delay);
            // Best effort: it never holds the batch's answer for long.
            let by = [finish_by(deadline), Some(Instant::now() + REQUEUE_LIMIT)]
                .into_iter()
                .flatten()
                .min();
            bounded(by, requeue_all(requeue.as_ref(), &retried), || {
                tracing::warn!("no time left to make retried records visible sooner: they come back after the queue's visibility timeout");
            })
            .await;
        }
        handled
    }

    /// [`Decider::decide`], unless the invocation is about to end: a record
    /// started then would run actions with no time to finish them.
    async fn decide_in_time(&self, envelope: &Envelope, deadline: Option<Instant>) -> Result<Decided, DecideError> {
        if deadline.is_some_and(|deadline| Instant::now() + START_MARGIN >= deadline) {
            return Err(DecideError::NoTimeLeft);
        }
        self.decider.decide(envelope, deadline).await
    }

    /// One record: rejected, or decided into outcomes (and retries), and
    /// its decision record when records are kept.
    async fn record(&self, record: Ingested, deadline: Option<Instant>, request_id: Option<&str>) -> RecordDone {
        let started = Instant::now();
        let mut summary = Summary {
            records: 1,
            ..Summary::default()
        };
        let mut retries = Vec::new();
        let mut error = None;
        let keep = self.records.is_some();
        // Read only for a record nothing decided (a decision names its own).
        let current = || self.decider.policies();
        let mut decision_record = None;
        #[cfg(feature = "fault-injection")]
        if let Ok(envelope) = &record {
            crate::crash::inject_panic(envelope);
        }
        let outcomes = match record {
            Err(rejected) => {
                decision_record = keep.then(|| {
                    let policies = current();
                    let context = RecordContext {
                        request_id,
                        bundle_digest: policies.digest(),
                        engine: policies.engine().as_str(),
                    };
                    DecisionRecord::of_rejected(&context, &rejected)
                });
                reject(*rejected, &mut summary)
            }
            // The state table's and secrets' calls keep to the deadline too.
            Ok(envelope) => match crate::deadline::within(deadline, self.decide_in_time(&envelope, deadline)).await {
                Ok(decided) => {
                    let context = RecordContext {
                        request_id,
                        bundle_digest: &decided.bundle_digest,
                        engine: decided.engine.as_str(),
                    };
                    let shadow = match self.decider.shadow() {
                        Some(shadow) => self.shadow(&shadow, &envelope, &decided, deadline).await,
                        None => None,
                    };
                    if shadow.as_ref().is_some_and(|s| s.diverged) {
                        summary.shadow_divergences += 1;
                    }
                    if keep {
                        let mut record = decision_record_of(&context, &envelope, &decided);
                        record.timings.total_ms = started.elapsed().as_millis() as u64;
                        record.shadow = shadow;
                        decision_record = Some(record);
                    }
                    let digest = Arc::clone(&decided.bundle_digest);
                    let mut late = None;
                    let mut outcomes = self.outcomes(&envelope, decided, &mut summary, &mut retries, &mut late);
                    for outcome in &mut outcomes {
                        outcome.bundle_digest = Some(Arc::clone(&digest));
                    }
                    if let Some(err) = late {
                        // The outcomes of what ran go out; the rest is decided again.
                        summary.deadline_retries += 1;
                        error = Some(DecideError::Deadline(err));
                    }
                    outcomes
                }
                Err(err) => {
                    // Not decided now: retried (actions that ran, with the
                    // state table, are replayed); the other records go on.
                    if matches!(err, DecideError::Deadline(_) | DecideError::NoTimeLeft) {
                        summary.deadline_retries += 1;
                    }
                    tracing::error!(message_id = %envelope.message_id, error = %err, "not decided now; the record will be retried");
                    decision_record = keep.then(|| {
                        let policies = current();
                        let context = RecordContext {
                            request_id,
                            bundle_digest: policies.digest(),
                            engine: policies.engine().as_str(),
                        };
                        DecisionRecord::of_envelope(&context, &envelope, DecisionResult::NotDecided)
                            .with_error(&err.to_string())
                    });
                    error = Some(err);
                    Vec::new()
                }
            },
        };
        RecordDone {
            outcomes,
            record: decision_record,
            retries,
            error,
            summary,
        }
    }

    /// The shadow policies' decision of a message the live ones decided:
    /// rehearsed (nothing runs; live results where the live workflow ran
    /// the same action id) and compared. Nothing of it reaches the live path.
    async fn shadow(
        &self,
        shadow: &PolicySet,
        envelope: &Envelope,
        live: &Decided,
        deadline: Option<Instant>,
    ) -> Option<ShadowRecord> {
        let live_alerts = match &live.decision {
            // What the live policies asked for: not the earlier try's
            // actions a retry replays beside it.
            Decision::Alerts(reports) => reports.iter().map(WorkflowReport::decided_entry).collect::<Vec<_>>(),
            Decision::AlertPolicyFailed(_) | Decision::NoAlertPolicy { .. } => Vec::new(),
            // Not decided live: nothing to compare with.
            Decision::Stale { .. } => return None,
        };
        let rehearsal = match &live.decision {
            Decision::Alerts(reports) => Rehearsal::of_reports(reports),
            _ => Rehearsal::default(),
        };
        let decided = self.decider.rehearse(shadow, envelope, &rehearsal, deadline).await;
        let (alerts, error) = match &decided.decision {
            Decision::Alerts(reports) => (reports.iter().map(WorkflowReport::entry).collect::<Vec<_>>(), None),
            Decision::AlertPolicyFailed(err) => (Vec::new(), Some(err.to_string())),
            Decision::NoAlertPolicy { schema } => (Vec::new(), Some(format!("no alert policy for schema {schema:?}"))),
            Decision::Stale { .. } => (Vec::new(), None),
        };
        let divergence = crate::compare::diverge(&live_alerts, &alerts);
        let diverged = !divergence.is_empty() || result_of(&decided.decision) != result_of(&live.decision);
        if diverged {
            tracing::info!(message_id = %envelope.message_id, shadow = shadow.digest(), "the shadow policies decided differently");
        }
        Some(ShadowRecord {
            bundle_digest: shadow.digest().to_string(),
            diverged,
            error,
            alerts,
            divergence,
            decision_us: decided.policy_time.as_micros() as u64,
        })
    }

    /// Publishes `outcomes`, or fails at `by` saying none is known to
    /// have gone out (a retry publishes them again, with the same ids).
    pub(crate) async fn publish_by(&self, outcomes: &[Outcome], by: Option<Instant>) -> Result<(), PublishError> {
        bounded(by, self.publisher.publish(outcomes), || {
            tracing::error!(
                outcomes = outcomes.len(),
                "publishing outcomes ran into the invocation's deadline"
            );
            Err(PublishError::Late { total: outcomes.len() })
        })
        .await
    }

    /// [`Responder::keep_records`], failing at `by`.
    pub(crate) async fn keep_records_by(
        &self,
        records: &[DecisionRecord],
        by: Option<Instant>,
    ) -> Result<(), RecordError> {
        bounded(by, self.keep_records(records), || {
            tracing::error!(
                "writing decision records ran into the invocation's deadline; the invocation will be retried"
            );
            Err(RecordError::Late { count: records.len() })
        })
        .await
    }

    /// Writes an invocation's decision records as one object (nothing when
    /// records are off or there are none).
    pub(crate) async fn keep_records(&self, records: &[DecisionRecord]) -> Result<(), RecordError> {
        let Some(sink) = &self.records else {
            return Ok(());
        };
        if records.is_empty() {
            return Ok(());
        }
        let object = RecordObject::encode(records, chrono::Utc::now());
        sink.write(&object).await.inspect_err(|err| {
            tracing::error!(error = %err, "decision records not written; the invocation will be retried");
        })
    }

    /// Handles every record; a bad record or a failing policy affects only
    /// itself. Fails when outcomes cannot be published, when the state table
    /// is unreachable, when a policy evaluation ran into the deadline, or
    /// when actions failed transiently and a state table makes a retry safe
    /// — so the event is retried (and lands in the on-failure destination)
    /// instead of lost.
    pub async fn handle(&self, records: Vec<Ingested>, deadline: Option<Instant>) -> Result<Summary, HandleError> {
        self.handle_invocation(records, deadline, None).await
    }

    /// [`Responder::handle`] for the invocation `request_id`, which its
    /// decision records name.
    pub async fn handle_invocation(
        &self,
        records: Vec<Ingested>,
        deadline: Option<Instant>,
        request_id: Option<&str>,
    ) -> Result<Summary, HandleError> {
        let (summary, result) = self.handle_invocation_counted(records, deadline, request_id).await;
        result.map(|()| summary)
    }

    /// [`Responder::handle_invocation`], its counts kept when it fails: a
    /// failed invocation's metrics still say what it did (actions run,
    /// outcomes published, a deadline retry) before Lambda retries it.
    pub async fn handle_invocation_counted(
        &self,
        records: Vec<Ingested>,
        deadline: Option<Instant>,
        request_id: Option<&str>,
    ) -> (Summary, Result<(), HandleError>) {
        let mut summary = Summary::default();
        let result = self.handle_records(records, deadline, request_id, &mut summary).await;
        (summary, result)
    }

    async fn handle_records(
        &self,
        records: Vec<Ingested>,
        deadline: Option<Instant>,
        request_id: Option<&str>,
        summary: &mut Summary,
    ) -> Result<(), HandleError> {
        let mut retries: Vec<Retry> = Vec::new();
        let mut state_error = None;
        let mut decision_records = Vec::new();
        for record in records {
            let mut done = self.record(record, deadline, request_id).await;
            decision_records.extend(done.record.take());
            summary.absorb(done.summary);
            retries.extend(done.retries);
            if let Some(err) = done.error {
                state_error.get_or_insert(err);
            }
            if !done.outcomes.is_empty() {
                if let Err(err) = self.publish_by(&done.outcomes, finish_by(deadline)).await {
                    summary.outcomes += err.published_of(done.outcomes.len());
                    // What was decided is on record all the same; the retry
                    // republishes (and overwrites the records' object).
                    let _ = self.keep_records_by(&decision_records, finish_by(deadline)).await;
                    return Err(err.into());
                }
                summary.outcomes += done.outcomes.len();
            }
        }
        self.keep_records_by(&decision_records, finish_by(deadline)).await?;
        match state_error {
            Some(DecideError::State(err)) => return Err(HandleError::State(err)),
            Some(err) => return Err(err.into()),
            None => {}
        }
        match retry_error(&retries) {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    /// The outcomes of a decision, counted into `summary`; retries (only
    /// with a state table, which makes them safe) collected.
    /// `late`: the deadline error a workflow stopped at, when one did (the
    /// outcomes of what ran are returned all the same; the message is retried).
    pub(crate) fn outcomes(
        &self,
        envelope: &Envelope,
        decided: Decided,
        summary: &mut Summary,
        retries: &mut Vec<Retry>,
        late: &mut Option<PolicyError>,
    ) -> Vec<Outcome> {
        summary.policy_micros += decided.policy_time.as_micros() as u64;
        let reports = match decided.decision {
            Decision::NoAlertPolicy { schema } => {
                let rejected = Rejected {
                    message_id: Some(envelope.message_id.clone()).filter(|m| !m.is_empty()),
                    topic_arn: envelope.topic_arn.clone(),
                    original: envelope.payload.to_string(),
                    error: IngestError::UnknownSchema { schema },
                };
                return reject(rejected, summary);
            }
            Decision::Stale { latest } => {
                summary.stale += 1;
                return vec![stale_outcome(envelope, latest)];
            }
            Decision::AlertPolicyFailed(err) => {
                summary.policy_errors += 1;
                return vec![policy_error_outcome(envelope, None, &err.to_string())];
            }
            Decision::Alerts(reports) => reports,
        };
        let mut outcomes = Vec::new();
        for report in reports {
            summary.alerts += 1;
            count_actions(&report, summary);
            match &report.stop {
                Stop::PolicyError { error } => {
                    tracing::error!(alert_id = %report.alert.id, error = %error, "action policy failed");
                    summary.policy_errors += 1;
                    outcomes.push(policy_error_outcome(envelope, Some(&report.alert), &error.to_string()));
                }
                Stop::Deadline { error } => {
                    tracing::warn!(alert_id = %report.alert.id, error = %error, "the deadline stopped the workflow; the message will be decided again");
                    late.get_or_insert_with(|| error.clone());
                }
                _ => {}
            }
            if self.decider.has_state() {
                for retry in &report.retries {
                    tracing::warn!(alert_id = %report.alert.id, action_id = %retry.action_id, reason = %retry.cause, "action will be retried with the invocation");
                }
                retries.extend(report.retries.iter().cloned());
            }
            outcomes.extend(action_outcomes(envelope, &report));
        }
        outcomes
    }
}

fn result_of(decision: &Decision) -> DecisionResult {
    match decision {
        Decision::NoAlertPolicy { .. } => DecisionResult::NoAlertPolicy,
        Decision::Stale { .. } => DecisionResult::Stale,
        Decision::AlertPolicyFailed(_) => DecisionResult::PolicyError,
        Decision::Alerts(_) => DecisionResult::Decided,
    }
}

/// The record of a decision: what the policies made and what became of it.
pub(crate) fn decision_record_of(
    context: &RecordContext<'_>,
    envelope: &Envelope,
    decided: &Decided,
) -> DecisionRecord {
    let mut record = DecisionRecord::of_envelope(context, envelope, result_of(&decided.decision));
    record.timings.decision_us = decided.policy_time.as_micros() as u64;
    match &decided.decision {
        Decision::NoAlertPolicy { schema } => {
            record = record.with_error(&format!("no alert policy for schema {schema:?}"));
        }
        Decision::Stale { latest } => {
            record = record.with_error(&format!("stale change: a newer one ({latest}) was already processed"));
        }
        Decision::AlertPolicyFailed(err) => record = record.with_error(&err.to_string()),
        Decision::Alerts(reports) => record.alerts = reports.iter().map(WorkflowReport::entry).collect(),
    }
    record
}

fn reject(rejected: Rejected, summary: &mut Summary) -> Vec<Outcome> {
    tracing::error!(
        message_id = rejected.message_id.as_deref().unwrap_or("-"),
        topic_arn = rejected.topic_arn.as_deref().unwrap_or("-"),
        error = %rejected.error,
        "message rejected"
    );
    summary.rejected += 1;
    vec![rejected_outcome(&rejected)]
}

/// Commit-only entries ran no action: they are not counted, nor published.
pub(crate) fn count_actions(report: &WorkflowReport, summary: &mut Summary) {
    let actions = || report.actions.iter().filter(|a| !a.uses.is_empty());
    summary.actions += actions().count() + report.retries.len();
    for action in actions() {
        *summary
            .action_counts
            .entry((action.uses.clone(), action.status.as_str().to_string()))
            .or_default() += 1;
    }
    summary.replayed += actions().filter(|a| a.replay).count();
    summary.failed_actions += actions().filter(|a| a.status == Status::Failed).count();
    // A replayed skip is counted once, as a replay.
    summary.skipped_actions += actions().filter(|a| a.status == Status::Skipped && !a.replay).count();
    // A transient failure ran, and so did an action whose record could not
    // be saved (its retry runs it again); the other causes stopped the
    // action before it ran.
    summary.retries_not_run += report
        .retries
        .iter()
        .filter(|retry| matches!(retry.cause, RetryCause::State(_) | RetryCause::Busy { .. }))
        .count();
}

/// One outcome per final action record of a workflow (an action to be
/// retried gets its outcome with the retry; a commit-only entry, which ran
/// nothing, gets none).
pub(crate) fn action_outcomes(envelope: &Envelope, report: &WorkflowReport) -> Vec<Outcome> {
    let alert = AlertSummary::of(&report.alert);
    let source = SourceMessage::of(envelope);
    report
        .actions
        .iter()
        .filter(|record| !record.uses.is_empty())
        .map(|record| Outcome {
            schema_version: SCHEMA_VERSION,
            event_type: EventType::ActionOutcome,
            // A pending action has two outcomes: pending, then its final one.
            outcome_id: match record.status {
                Status::Pending => pending_outcome_id(&report.alert.id, &record.id),
                _ => record.outcome_id.clone(),
            },
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
            skip_reason: record.skip_reason,
            budget: record.budget.clone(),
            bundle_digest: None,
        })
        .collect()
}
