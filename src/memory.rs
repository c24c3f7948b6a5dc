//! In-memory implementations of the state and publishing ports: `play` runs
//! scenarios on them (state carried across a scenario's events, on a virtual
//! clock), and the in-process tests drive the whole pipeline with them.
//! They keep DynamoDB's semantics: conditional claims with leases, atomic
//! counters, expiring attributes, the highest change seen.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use serde_json::Value;

use crate::model::suspended::{Phase, SuspendedWorkflow};
use crate::model::{ActionRecord, Attr, Outcome, Status};
use crate::publish::{PublishError, Publisher};
use crate::state::{
    counter_value, ActionsSwitch, ChangeOrder, Claim, PersistOp, PersistWrite, StateError, StateStore, Taken,
    WorkflowStore,
};

/// Seconds since the epoch: the system's, or a virtual clock that only
/// moves when told to.
#[derive(Debug)]
enum Clock {
    System,
    Virtual(AtomicU64),
}

#[derive(Debug)]
enum ClaimState {
    Running { lease_until: u64 },
    Done(Box<ActionRecord>),
}

#[derive(Debug, Clone)]
enum Stored {
    Value(Value),
    Counter(f64),
}

#[derive(Debug, Clone)]
struct StoredAttr {
    key: String,
    kind: Option<String>,
    stored: Stored,
    expires_at: u64,
    /// The `ttl` it was stored with.
    ttl: u64,
}

#[derive(Debug, Default)]
struct Tables {
    claims: HashMap<(String, String), ClaimState>,
    changes: HashMap<String, u64>,
    /// namespace → attribute id → the attribute
    attrs: BTreeMap<String, BTreeMap<String, StoredAttr>>,
    /// namespace → (owner, lease_until)
    locks: HashMap<String, (String, u64)>,
    /// (budget, window start, window length) → runs counted
    budgets: HashMap<(String, u64, u64), u32>,
    switch: ActionsSwitch,
    /// alert id → (workflow, lease_until of its resume)
    workflows: BTreeMap<String, (SuspendedWorkflow, u64)>,
}

/// The state port in memory.
#[derive(Debug)]
pub struct MemoryState {
    tables: Mutex<Tables>,
    clock: Clock,
    unavailable: AtomicBool,
    /// How many more budget counts succeed (`None`: all of them).
    budget_counts_left: Mutex<Option<u32>>,
    /// Reads of the actions switch, as a table would count them.
    switch_reads: AtomicU64,
    /// Namespace locks refused because another owner held them.
    locks_refused: AtomicU64,
    /// While set, a read of the switch yields once, as a round trip would:
    /// concurrent readers overlap.
    slow_switch: AtomicBool,
}

impl Default for MemoryState {
    fn default() -> Self {
        MemoryState::new()
    }
}

impl MemoryState {
    /// On the system clock.
    pub fn new() -> MemoryState {
        MemoryState {
            tables: Mutex::default(),
            clock: Clock::System,
            unavailable: AtomicBool::new(false),
            budget_counts_left: Mutex::new(None),
            switch_reads: AtomicU64::new(0),
            locks_refused: AtomicU64::new(0),
            slow_switch: AtomicBool::new(false),
        }
    }

    /// How many namespace locks were refused: a decision waited on another.
    pub fn locks_refused(&self) -> u64 {
        self.locks_refused.load(Ordering::SeqCst)
    }

    /// How many times the actions switch was read.
    pub fn switch_reads(&self) -> u64 {
        self.switch_reads.load(Ordering::SeqCst)
    }

    /// While set, reading the switch yields once (readers overlap).
    pub fn set_slow_switch(&self, slow: bool) {
        self.slow_switch.store(slow, Ordering::SeqCst);
    }

    /// On a virtual clock starting at `epoch_seconds`; see [`MemoryState::advance`].
    pub fn with_virtual_clock(epoch_seconds: u64) -> MemoryState {
        MemoryState {
            clock: Clock::Virtual(AtomicU64::new(epoch_seconds)),
            ..MemoryState::new()
        }
    }

    /// Moves a virtual clock forward (no effect on the system clock).
    pub fn advance(&self, by: Duration) {
        if let Clock::Virtual(now) = &self.clock {
            now.fetch_add(by.as_secs(), Ordering::SeqCst);
        }
    }

    /// While set, every operation fails as an unreachable table would.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    /// While set, only budget counting fails (claims still work).
    pub fn set_budgets_unavailable(&self, unavailable: bool) {
        *self.budget_counts_left.lock().expect("not poisoned") = unavailable.then_some(0);
    }

    /// The next `counts` budget counts succeed, later ones fail (until
    /// [`MemoryState::set_budgets_unavailable`] says otherwise): a table
    /// failing part-way through an action's budgets.
    pub fn fail_budget_counts_after(&self, counts: u32) {
        *self.budget_counts_left.lock().expect("not poisoned") = Some(counts);
    }

    fn now(&self) -> u64 {
        match &self.clock {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            Clock::Virtual(now) => now.load(Ordering::SeqCst),
        }
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().expect("not poisoned")
    }

    fn check(&self, operation: &'static str) -> Result<(), StateError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(StateError {
                table: "memory".to_string(),
                operation,
                reason: "the in-memory table is set unavailable".to_string(),
            });
        }
        Ok(())
    }

    fn claim_now(&self, alert_id: &str, action_id: &str, lease: Duration) -> Result<Claim, StateError> {
        self.check("claim")?;
        let now = self.now();
        let mut tables = self.tables();
        let key = (alert_id.to_string(), action_id.to_string());
        match tables.claims.get(&key) {
            Some(ClaimState::Done(record)) => return Ok(Claim::Done(record.clone())),
            Some(ClaimState::Running { lease_until }) if *lease_until >= now => {
                return Ok(Claim::Busy {
                    lease_left: Duration::from_secs(lease_until - now),
                })
            }
            _ => {}
        }
        let lease_until = now + lease.as_secs().max(1);
        tables.claims.insert(key, ClaimState::Running { lease_until });
        Ok(Claim::Claimed)
    }

    fn complete_now(&self, alert_id: &str, record: &ActionRecord, writes: &[PersistWrite]) -> Result<(), StateError> {
        self.check("complete")?;
        let now = self.now();
        let mut tables = self.tables();
        tables.claims.insert(
            (alert_id.to_string(), record.id.clone()),
            ClaimState::Done(Box::new(record.clone())),
        );
        apply_writes(&mut tables, writes, now);
        Ok(())
    }

    /// Persistent attribute writes on their own, as an earlier alert's
    /// commits would have left them (`play` seeds a scenario's state so).
    pub fn persist(&self, writes: &[PersistWrite]) {
        let now = self.now();
        apply_writes(&mut self.tables(), writes, now);
    }

    fn observe_now(&self, matano_alert_id: &str, update_count: u64) -> Result<ChangeOrder, StateError> {
        self.check("observe change")?;
        let mut tables = self.tables();
        let latest = tables
            .changes
            .entry(matano_alert_id.to_string())
            .or_insert(update_count);
        if *latest > update_count {
            return Ok(ChangeOrder::Stale { latest: *latest });
        }
        *latest = update_count;
        Ok(ChangeOrder::Current)
    }

    fn attrs_now(&self, namespace: &str) -> Result<Vec<Attr>, StateError> {
        self.check("load attributes")?;
        let now = self.now();
        let tables = self.tables();
        let Some(attrs) = tables.attrs.get(namespace) else {
            return Ok(Vec::new());
        };
        let mut live: Vec<Attr> = attrs
            .iter()
            .filter(|(_, attr)| attr.expires_at > now)
            .map(|(id, attr)| Attr {
                id: Some(id.clone()),
                key: attr.key.clone(),
                value: match &attr.stored {
                    Stored::Value(value) => value.clone(),
                    Stored::Counter(counter) => counter_value(*counter),
                },
                kind: attr.kind.clone(),
                persist: true,
                ttl: Some(attr.ttl),
            })
            .collect();
        live.sort_by(|a, b| (&a.key, &a.id).cmp(&(&b.key, &b.id)));
        Ok(live)
    }
}

fn apply_writes(tables: &mut Tables, writes: &[PersistWrite], now: u64) {
    for write in writes {
        let attrs = tables.attrs.entry(write.namespace.clone()).or_default();
        let stored = match &write.op {
            PersistOp::Set(value) => Stored::Value(value.clone()),
            PersistOp::Add(delta) => {
                // DynamoDB's ADD: an absent (or expired, or non-numeric) counter starts at 0.
                let current = match attrs.get(&write.id) {
                    Some(StoredAttr {
                        stored: Stored::Counter(n),
                        expires_at,
                        ..
                    }) if *expires_at > now => *n,
                    _ => 0.0,
                };
                Stored::Counter(current + delta)
            }
        };
        attrs.insert(
            write.id.clone(),
            StoredAttr {
                key: write.key.clone(),
                kind: write.kind.clone(),
                stored,
                expires_at: now + write.ttl.as_secs(),
                ttl: write.ttl.as_secs(),
            },
        );
    }
}

impl WorkflowStore for MemoryState {
    fn save_workflow<'a>(
        &'a self,
        workflow: &'a SuspendedWorkflow,
        holder: bool,
    ) -> BoxFuture<'a, Result<bool, StateError>> {
        Box::pin(async move {
            self.check("save workflow")?;
            let mut tables = self.tables();
            let stored = tables.workflows.get(workflow.id());
            if !holder && stored.is_some_and(|(w, _)| w.phase != Phase::Suspended || w.rounds > workflow.rounds) {
                return Ok(false);
            }
            let mut workflow = workflow.clone();
            workflow.phase = Phase::Suspended;
            tables.workflows.insert(workflow.id().to_string(), (workflow, 0));
            Ok(true)
        })
    }

    fn workflow<'a>(&'a self, alert_id: &'a str) -> BoxFuture<'a, Result<Option<SuspendedWorkflow>, StateError>> {
        Box::pin(async move {
            self.check("read workflow")?;
            Ok(self.tables().workflows.get(alert_id).map(|(w, _)| w.clone()))
        })
    }

    fn workflows(&self) -> BoxFuture<'_, Result<Vec<SuspendedWorkflow>, StateError>> {
        Box::pin(async move {
            self.check("list workflows")?;
            let mut all: Vec<SuspendedWorkflow> = self.tables().workflows.values().map(|(w, _)| w.clone()).collect();
            all.sort_by_key(|w| w.suspended_at);
            Ok(all)
        })
    }

    fn take_workflow<'a>(&'a self, alert_id: &'a str, lease: Duration) -> BoxFuture<'a, Result<Taken, StateError>> {
        Box::pin(async move {
            self.check("take workflow")?;
            let now = self.now();
            let mut tables = self.tables();
            let Some((workflow, lease_until)) = tables.workflows.get_mut(alert_id) else {
                return Ok(Taken::Absent);
            };
            if workflow.phase == Phase::Resuming && *lease_until >= now {
                return Ok(Taken::Held);
            }
            workflow.phase = Phase::Resuming;
            *lease_until = now + lease.as_secs().max(1);
            Ok(Taken::Workflow(Box::new(workflow.clone())))
        })
    }

    fn release_workflow<'a>(&'a self, alert_id: &'a str) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            self.check("release workflow")?;
            if let Some((workflow, _)) = self.tables().workflows.get_mut(alert_id) {
                workflow.phase = Phase::Suspended;
            }
            Ok(())
        })
    }

    fn end_workflow<'a>(&'a self, alert_id: &'a str) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            self.check("end workflow")?;
            self.tables().workflows.remove(alert_id);
            Ok(())
        })
    }

    fn action_record<'a>(
        &'a self,
        alert_id: &'a str,
        action_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ActionRecord>, StateError>> {
        Box::pin(async move {
            self.check("read action")?;
            let key = (alert_id.to_string(), action_id.to_string());
            Ok(match self.tables().claims.get(&key) {
                Some(ClaimState::Done(record)) => Some((**record).clone()),
                _ => None,
            })
        })
    }

    fn action_records<'a>(&'a self, alert_id: &'a str) -> BoxFuture<'a, Result<Vec<ActionRecord>, StateError>> {
        Box::pin(async move {
            self.check("read actions")?;
            Ok(self
                .tables()
                .claims
                .iter()
                .filter(|((alert, _), _)| alert == alert_id)
                .filter_map(|(_, claim)| match claim {
                    ClaimState::Done(record) => Some((**record).clone()),
                    _ => None,
                })
                .collect())
        })
    }

    fn resolve<'a>(
        &'a self,
        alert_id: &'a str,
        record: &'a ActionRecord,
        writes: &'a [PersistWrite],
    ) -> BoxFuture<'a, Result<bool, StateError>> {
        Box::pin(async move {
            self.check("resolve")?;
            let now = self.now();
            let mut tables = self.tables();
            let key = (alert_id.to_string(), record.id.clone());
            match tables.claims.get(&key) {
                Some(ClaimState::Done(stored)) if stored.status == Status::Pending => {}
                _ => return Ok(false),
            }
            tables.claims.insert(key, ClaimState::Done(Box::new(record.clone())));
            apply_writes(&mut tables, writes, now);
            Ok(true)
        })
    }
}

impl StateStore for MemoryState {
    fn claim<'a>(
        &'a self,
        alert_id: &'a str,
        action_id: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Claim, StateError>> {
        Box::pin(async move { self.claim_now(alert_id, action_id, lease) })
    }

    fn complete<'a>(
        &'a self,
        alert_id: &'a str,
        record: &'a ActionRecord,
        writes: &'a [PersistWrite],
    ) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move { self.complete_now(alert_id, record, writes) })
    }

    fn release<'a>(&'a self, alert_id: &'a str, action_id: &'a str) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            self.check("release")?;
            let mut tables = self.tables();
            let key = (alert_id.to_string(), action_id.to_string());
            if matches!(tables.claims.get(&key), Some(ClaimState::Running { .. })) {
                tables.claims.remove(&key);
            }
            Ok(())
        })
    }

    fn observe_change<'a>(
        &'a self,
        matano_alert_id: &'a str,
        update_count: u64,
    ) -> BoxFuture<'a, Result<ChangeOrder, StateError>> {
        Box::pin(async move { self.observe_now(matano_alert_id, update_count) })
    }

    fn save_attrs<'a>(&'a self, writes: &'a [PersistWrite]) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            self.check("save attributes")?;
            let now = self.now();
            let mut tables = self.tables();
            // As DynamoDB's conditional write: a live attribute stands.
            let absent: Vec<PersistWrite> = writes
                .iter()
                .filter(|write| {
                    tables
                        .attrs
                        .get(&write.namespace)
                        .and_then(|attrs| attrs.get(&write.id))
                        .is_none_or(|held| held.expires_at <= now)
                })
                .cloned()
                .collect();
            apply_writes(&mut tables, &absent, now);
            Ok(())
        })
    }

    fn load_attrs<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<Vec<Attr>, StateError>> {
        Box::pin(async move { self.attrs_now(namespace) })
    }

    fn lock_namespace<'a>(
        &'a self,
        namespace: &'a str,
        owner: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<bool, StateError>> {
        Box::pin(async move {
            self.check("lock namespace")?;
            let now = self.now();
            let mut tables = self.tables();
            if let Some((holder, lease_until)) = tables.locks.get(namespace) {
                if holder != owner && *lease_until >= now {
                    self.locks_refused.fetch_add(1, Ordering::SeqCst);
                    return Ok(false);
                }
            }
            let lease_until = now + lease.as_secs().max(1);
            tables
                .locks
                .insert(namespace.to_string(), (owner.to_string(), lease_until));
            Ok(true)
        })
    }

    fn unlock_namespace<'a>(&'a self, namespace: &'a str, owner: &'a str) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            self.check("unlock namespace")?;
            let mut tables = self.tables();
            if tables.locks.get(namespace).is_some_and(|(holder, _)| holder == owner) {
                tables.locks.remove(namespace);
            }
            Ok(())
        })
    }

    fn take_budget<'a>(
        &'a self,
        budget: &'a str,
        limit: u32,
        window: Duration,
    ) -> BoxFuture<'a, Result<Option<u64>, StateError>> {
        Box::pin(async move {
            self.check("take budget")?;
            let counts_left = &mut *self.budget_counts_left.lock().expect("not poisoned");
            let unavailable = match counts_left {
                Some(0) => true,
                Some(left) => {
                    *left -= 1;
                    false
                }
                None => false,
            };
            if unavailable {
                return Err(StateError {
                    table: "memory".to_string(),
                    operation: "take budget",
                    reason: "budget counting is set unavailable".to_string(),
                });
            }
            let now = self.now();
            let window = window.as_secs().max(1);
            let start = now - now % window;
            let mut tables = self.tables();
            // Past windows are of no use again.
            tables.budgets.retain(|(_, from, length), _| from + length > now);
            let used = tables.budgets.entry((budget.to_string(), start, window)).or_insert(0);
            if *used >= limit {
                return Ok(None);
            }
            *used += 1;
            Ok(Some(start))
        })
    }

    fn return_budget<'a>(
        &'a self,
        budget: &'a str,
        window: Duration,
        window_start: u64,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            self.check("return budget")?;
            let window = window.as_secs().max(1);
            let mut tables = self.tables();
            if let Some(used) = tables.budgets.get_mut(&(budget.to_string(), window_start, window)) {
                *used = used.saturating_sub(1);
            }
            Ok(())
        })
    }

    fn actions_switch(&self) -> BoxFuture<'_, Result<ActionsSwitch, StateError>> {
        Box::pin(async move {
            self.switch_reads.fetch_add(1, Ordering::SeqCst);
            if self.slow_switch.load(Ordering::SeqCst) {
                tokio::task::yield_now().await;
            }
            self.check("read the actions switch")?;
            Ok(self.tables().switch.clone())
        })
    }

    fn set_actions_switch<'a>(&'a self, switch: &'a ActionsSwitch) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            self.check("set the actions switch")?;
            self.tables().switch = switch.clone();
            Ok(())
        })
    }
}

/// Keeps published outcomes in memory; can be told to fail.
#[derive(Default)]
pub struct MemoryPublisher {
    outcomes: Mutex<Vec<Outcome>>,
    failing: AtomicBool,
    stalled: AtomicBool,
    refused_action: Mutex<Option<String>>,
    calls: std::sync::atomic::AtomicUsize,
}

impl MemoryPublisher {
    /// How many times `publish` was called.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Takes what was published so far.
    pub fn take(&self) -> Vec<Outcome> {
        std::mem::take(&mut self.outcomes.lock().expect("not poisoned"))
    }

    /// While set, every publish fails (and keeps nothing), as SNS down would.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// While set, a publish never finishes (and keeps nothing), as a
    /// hung or throttled topic would hold it.
    pub fn set_stalled(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }

    /// While set, outcomes of this action id are refused (and the others
    /// kept), as SNS refuses single entries of a batch.
    pub fn refuse_action(&self, action_id: Option<&str>) {
        *self.refused_action.lock().expect("not poisoned") = action_id.map(str::to_string);
    }
}

impl Publisher for MemoryPublisher {
    fn publish<'a>(&'a self, outcomes: &'a [Outcome]) -> BoxFuture<'a, Result<(), PublishError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.stalled.load(Ordering::SeqCst) {
            return Box::pin(std::future::pending());
        }
        let refused = self.refused_action.lock().expect("not poisoned").clone();
        let unpublished: Vec<usize> = match self.failing.load(Ordering::SeqCst) {
            true => (0..outcomes.len()).collect(),
            false => (0..outcomes.len())
                .filter(|&i| refused.is_some() && outcomes[i].action.as_ref().map(|a| &a.id) == refused.as_ref())
                .collect(),
        };
        let mut kept = self.outcomes.lock().expect("not poisoned");
        kept.extend(
            (0..outcomes.len())
                .filter(|i| !unpublished.contains(i))
                .map(|i| outcomes[i].clone()),
        );
        let result = match unpublished.is_empty() {
            true => Ok(()),
            false => Err(PublishError::Failed {
                destination: "memory".to_string(),
                failed: unpublished.len(),
                total: outcomes.len(),
                reason: "the in-memory publisher is set failing".to_string(),
                unpublished,
            }),
        };
        Box::pin(async move { result })
    }
}

/// Decision records kept in memory, by key, as a bucket would keep them.
#[derive(Default)]
pub struct MemoryRecords {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    failing: AtomicBool,
}

impl MemoryRecords {
    /// The objects written, by key.
    pub fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        self.objects.lock().expect("not poisoned").clone()
    }

    /// Every record of every object, in key order.
    pub fn records(&self) -> Vec<crate::model::decision::DecisionRecord> {
        self.objects()
            .values()
            .flat_map(|body| crate::records::decode(body).expect("objects written here decode"))
            .collect()
    }

    /// While set, every write fails, as S3 down would.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

impl crate::records::RecordSink for MemoryRecords {
    fn write<'a>(
        &'a self,
        object: &'a crate::records::RecordObject,
    ) -> BoxFuture<'a, Result<(), crate::records::RecordError>> {
        let result = if self.failing.load(Ordering::SeqCst) {
            Err(crate::records::RecordError::Write {
                destination: "memory".to_string(),
                count: object.count,
                reason: "the in-memory record sink is set failing".to_string(),
            })
        } else {
            self.objects
                .lock()
                .expect("not poisoned")
                .insert(object.key.clone(), object.body.clone());
            Ok(())
        };
        Box::pin(async move { result })
    }
}

/// What an SQS batch asked of its queues' visibility, in order: each call's
/// queue and records.
#[derive(Default)]
pub struct MemoryRequeue {
    calls: Mutex<Vec<(String, Vec<crate::requeue::Requeued>)>>,
    stalled: AtomicBool,
}

impl MemoryRequeue {
    pub fn calls(&self) -> Vec<(String, Vec<crate::requeue::Requeued>)> {
        self.calls.lock().expect("not poisoned").clone()
    }

    /// While set, a call never answers, as SQS hung would.
    pub fn set_stalled(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }
}

impl crate::requeue::Requeue for MemoryRequeue {
    fn requeue<'a>(
        &'a self,
        queue_arn: &'a str,
        records: &'a [crate::requeue::Requeued],
    ) -> BoxFuture<'a, Result<(), crate::requeue::RequeueError>> {
        self.calls
            .lock()
            .expect("not poisoned")
            .push((queue_arn.to_string(), records.to_vec()));
        let stalled = self.stalled.load(Ordering::SeqCst);
        Box::pin(async move {
            if stalled {
                std::future::pending::<()>().await;
            }
            Ok(())
        })
    }
}
