//! A panic while an SQS batch's record is decided.
//!
//! The release binary aborts on a panic (unwinding would add 1.3 MiB to it,
//! BENCHMARKS.md), so Lambda fails the whole invocation, and every record
//! of the batch comes back after the queue's visibility timeout: together,
//! into the same crash, until all of them reach the dead-letter queue. One
//! record that crashes the function would take its batch-mates with it. So
//! the panic hook makes the batch-mates visible again sooner (they are
//! retried like any record, with the state table's replay); the record
//! being decided when the panic came stays hidden for the queue's
//! visibility timeout and reaches the dead-letter queue alone.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Once};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::requeue::{BatchRecord, ByQueue, Requeue, RequeueError, REQUEUE_LIMIT};

/// The longest SQS hides a message for one visibility change (12 hours).
const MAX_VISIBILITY_SECONDS: u32 = 43_200;

/// What the state table's leases of a record part-way through its decision
/// are bounded by (`state::lease_for`): the invocation's deadline, and
/// `CLAIM_LEASE_SECONDS`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Leases {
    pub(crate) deadline: Option<Instant>,
    pub(crate) floor: Duration,
}

/// Why the panic hook could not make the batch-mates visible sooner.
#[derive(Debug, thiserror::Error)]
enum HookRequeueError {
    #[error("no thread for the calls: {0}")]
    NoThread(std::io::Error),
    #[error("no runtime for the calls: {0}")]
    NoRuntime(std::io::Error),
    #[error("SQS did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("the calls' thread stopped without an answer")]
    Stopped,
    #[error(transparent)]
    Requeue(#[from] RequeueError),
}

/// A batch being handled: how to reach its queue, its records (SQS
/// message id and receipt) in the order [`deciding`] numbers them, and how
/// long the state table's leases of a started record may still hold.
pub(crate) struct InFlight {
    requeue: Arc<dyn Requeue>,
    records: Arc<[BatchRecord]>,
    /// Each record's [`Progress`], as a `u8`.
    progress: Vec<AtomicU8>,
    /// With a state table; `None` without one, or in a dry run (no leases).
    leases: Option<Leases>,
}

impl InFlight {
    pub(crate) fn new(requeue: Arc<dyn Requeue>, records: Arc<[BatchRecord]>, leases: Option<Leases>) -> InFlight {
        InFlight {
            requeue,
            progress: records
                .iter()
                .map(|_| AtomicU8::new(Progress::NotStarted as u8))
                .collect(),
            records,
            leases,
        }
    }

    fn progress(&self, index: usize) -> Progress {
        match self.progress.get(index).map(|p| p.load(Ordering::Relaxed)) {
            Some(p) if p == Progress::Deciding as u8 => Progress::Deciding,
            Some(p) if p == Progress::Done as u8 => Progress::Done,
            _ => Progress::NotStarted,
        }
    }

    fn set_progress(&self, index: usize, progress: Progress) {
        if let Some(p) = self.progress.get(index) {
            p.store(progress as u8, Ordering::Relaxed);
        }
    }

    /// When a batch-mate part-way through its decision may be retried: once
    /// a lease it may hold has run out (the crashed invocation never
    /// releases it), at most `lease_for` from now, and at most SQS's 12
    /// hours; at once without leases.
    fn deciding_delay(&self) -> u32 {
        let Some(leases) = self.leases else {
            return 0;
        };
        let lease = crate::state::lease_for(leases.deadline, leases.floor);
        let seconds = lease.as_secs() + u64::from(lease.subsec_nanos() > 0);
        u32::try_from(seconds).unwrap_or(u32::MAX).min(MAX_VISIBILITY_SECONDS)
    }
}

/// How far a record of the batch got.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Progress {
    NotStarted,
    /// Polled, not finished: it may hold its namespace's lock or an
    /// action's claim.
    Deciding,
    /// Its decision returned (its lock released, its claims settled).
    Done,
}

std::thread_local! {
    /// The batch being polled on this thread.
    static BATCH: RefCell<Option<Arc<InFlight>>> = const { RefCell::new(None) };
    /// The record of it being polled on this thread.
    static DECIDING: Cell<Option<usize>> = const { Cell::new(None) };
}

/// `work` with `in_flight` being handled: a panic while one of its records
/// is [`deciding`] makes the others visible again sooner (with the hook
/// [`install_hook`] installed).
pub(crate) fn batch<F: Future>(in_flight: InFlight, work: F) -> impl Future<Output = F::Output> {
    Scoped {
        enter: ScopeOf::Batch(Arc::new(in_flight)),
        work: Box::pin(work),
    }
}

/// `work`, the decision of the batch's record `index`.
pub(crate) fn deciding<F: Future>(index: usize, work: F) -> impl Future<Output = F::Output> {
    Scoped {
        enter: ScopeOf::Record(index),
        work: Box::pin(work),
    }
}

/// What a [`Scoped`] future sets on its thread while it is polled. Set per
/// poll, not once: a multi-threaded runtime may poll it on another thread.
enum ScopeOf {
    Batch(Arc<InFlight>),
    Record(usize),
}

struct Scoped<F> {
    enter: ScopeOf,
    work: Pin<Box<F>>,
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        // Each `_restore` puts back what was set when the poll ends, by a
        // return or by unwinding.
        match &this.enter {
            ScopeOf::Batch(in_flight) => {
                let _restore = Restore::Batch(BATCH.with(|b| b.replace(Some(in_flight.clone()))));
                this.work.as_mut().poll(cx)
            }
            ScopeOf::Record(index) => {
                let _restore = Restore::Record(DECIDING.with(|d| d.replace(Some(*index))));
                mark(*index, Progress::Deciding);
                let polled = this.work.as_mut().poll(cx);
                if polled.is_ready() {
                    mark(*index, Progress::Done);
                }
                polled
            }
        }
    }
}

/// Record `index` of the batch polled on this thread got to `progress`.
fn mark(index: usize, progress: Progress) {
    BATCH.with(|b| {
        if let Some(in_flight) = b.borrow().as_ref() {
            in_flight.set_progress(index, progress);
        }
    });
}

enum Restore {
    Batch(Option<Arc<InFlight>>),
    Record(Option<usize>),
}

impl Drop for Restore {
    fn drop(&mut self) {
        match self {
            Restore::Batch(previous) => BATCH.with(|b| *b.borrow_mut() = previous.take()),
            Restore::Record(previous) => DECIDING.with(|d| d.set(*previous)),
        }
    }
}

/// Chains [`on_panic`] after the current panic hook (which prints the
/// panic), once per process: in Lambda mode, before the first event.
pub fn install_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            on_panic();
        }));
    });
}

/// What the panic hook does: with a record of a batch being decided on
/// this thread, its batch-mates made visible again sooner. Returns how
/// many were (`None`: no record was being decided).
fn on_panic() -> Option<usize> {
    // `try_with`: the thread's locals may be gone (a panic in their teardown).
    let in_flight = BATCH.try_with(|b| b.try_borrow().ok().and_then(|b| b.clone())).ok()??;
    let poisoned = DECIDING.try_with(Cell::get).ok()??;
    let mates = mates_of(&in_flight, poisoned);
    let count: usize = mates.values().map(Vec::len).sum();
    if count == 0 {
        return Some(0);
    }
    let message_id = in_flight.records.get(poisoned).map_or("", |(id, _)| id.as_str());
    match requeue_now(in_flight.requeue.clone(), mates, REQUEUE_LIMIT) {
        Ok(()) => tracing::error!(
            message_id,
            batch_mates = count,
            "a panic while this batch's record was decided: its batch-mates are visible again sooner, \
             the record comes back after the queue's visibility timeout"
        ),
        Err(err) => tracing::error!(
            message_id,
            batch_mates = count,
            error = %err,
            "a panic while this batch's record was decided: its batch-mates could not be made visible \
             sooner and come back with it, after the queue's visibility timeout"
        ),
    }
    Some(count)
}

/// Every record of the batch but `poisoned`, by queue: one part-way
/// through its decision once the leases it may hold have run out, the
/// others at once.
fn mates_of(in_flight: &InFlight, poisoned: usize) -> ByQueue {
    let deciding_delay = in_flight.deciding_delay();
    // A message SQS delivered twice in the batch is poisoned in both copies:
    // its twin keeps the visibility timeout too.
    let poisoned_id = in_flight.records.get(poisoned).map(|(id, _)| id.as_str());
    let mates = in_flight
        .records
        .iter()
        .enumerate()
        .filter(|(index, (id, _))| *index != poisoned && Some(id.as_str()) != poisoned_id);
    crate::requeue::by_queue(mates.filter_map(|(index, (_, receipt))| {
        let delay_seconds = match in_flight.progress(index) {
            Progress::Deciding => deciding_delay,
            Progress::NotStarted | Progress::Done => 0,
        };
        Some((receipt.as_ref()?, delay_seconds))
    }))
}

/// `by_queue` requeued on a thread and runtime of their own — the
/// panicking thread's runtime is stopped inside this hook — for about
/// `limit`.
fn requeue_now(requeue: Arc<dyn Requeue>, by_queue: ByQueue, limit: Duration) -> Result<(), HookRequeueError> {
    let (answer, answered) = std::sync::mpsc::channel();
    let calls = async move {
        match crate::requeue::requeue_all(requeue.as_ref(), &by_queue)
            .await
            .into_iter()
            .next()
        {
            Some(first) => Err(HookRequeueError::Requeue(first)),
            None => Ok(()),
        }
    };
    std::thread::Builder::new()
        .name("requeue-on-panic".to_string())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(err) => {
                    let _ = answer.send(Err(HookRequeueError::NoRuntime(err)));
                    return;
                }
            };
            let result = runtime.block_on(async {
                tokio::time::timeout(limit, calls)
                    .await
                    .unwrap_or(Err(HookRequeueError::TimedOut(limit)))
            });
            // Answered before the runtime is dropped: dropping it waits for
            // its blocking work (a hung DNS lookup).
            let _ = answer.send(result);
            runtime.shutdown_background();
        })
        .map_err(HookRequeueError::NoThread)?;
    // The thread's own timer ends it first; this bounds a runtime whose
    // timer could not fire.
    match answered.recv_timeout(limit + Duration::from_millis(250)) {
        Ok(result) => result,
        Err(RecvTimeoutError::Timeout) => Err(HookRequeueError::TimedOut(limit)),
        Err(RecvTimeoutError::Disconnected) => Err(HookRequeueError::Stopped),
    }
}

/// What a message's SNS subject must be for [`inject_panic`] to panic.
#[cfg(feature = "fault-injection")]
pub const PANIC_SUBJECT: &str = "alert-responder fault injection: panic";

/// Test builds only: panics on a message whose subject is
/// [`PANIC_SUBJECT`], as a policy or action bug would.
#[cfg(feature = "fault-injection")]
pub(crate) fn inject_panic(envelope: &crate::ingest::Envelope) {
    if envelope.subject.as_deref() == Some(PANIC_SUBJECT) {
        panic!("fault injection: message {} panics the function", envelope.message_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryRequeue;
    use crate::requeue::Receipt;

    fn record(id: &str, queue: &str, handle: &str) -> BatchRecord {
        let receipt = Receipt {
            queue_arn: queue.to_string(),
            handle: handle.to_string(),
        };
        (id.to_string(), Some(receipt))
    }

    #[test]
    fn the_twin_of_a_poisoned_message_is_not_its_batch_mate() {
        let records = vec![
            record("m1", "q1", "a"),
            record("m2", "q1", "b"),
            record("m1", "q1", "c"),
        ];
        let in_flight = InFlight::new(Arc::new(MemoryRequeue::default()), records.into(), None);
        let handles: Vec<String> = mates_of(&in_flight, 0)
            .into_values()
            .flat_map(|records| records.into_iter().map(|r| r.handle))
            .collect();
        assert_eq!(handles, ["b"], "the same message's second copy keeps its timeout too");
    }

    fn in_flight(requeue: Arc<MemoryRequeue>, records: Vec<BatchRecord>) -> InFlight {
        InFlight::new(requeue, records.into(), None)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime")
    }

    #[test]
    fn the_batch_mates_of_the_poisoned_record_come_back_by_queue() {
        let records = vec![
            record("m1", "q1", "a"),
            ("m2".to_string(), None),
            record("m3", "q2", "b"),
            record("m4", "q1", "c"),
        ];
        let mut in_flight = InFlight::new(Arc::new(MemoryRequeue::default()), records.into(), None);
        let delays = |in_flight: &InFlight| -> Vec<(String, String, u32)> {
            mates_of(in_flight, 3)
                .into_iter()
                .flat_map(|(queue, records)| {
                    records
                        .into_iter()
                        .map(move |r| (queue.clone(), r.handle, r.delay_seconds))
                })
                .collect()
        };
        let expected = |a: u32| {
            vec![
                ("q1".to_string(), "a".to_string(), a),
                ("q2".to_string(), "b".to_string(), 0),
            ]
        };
        assert_eq!(delays(&in_flight), expected(0), "without a state table: at once");
        in_flight.set_progress(0, Progress::Deciding);
        assert_eq!(delays(&in_flight), expected(0), "deciding, but nothing holds a lease");
        in_flight.leases = Some(Leases {
            deadline: Some(Instant::now() + Duration::from_secs(100)),
            floor: Duration::from_secs(60),
        });
        let [(_, _, waited), unstarted] = &delays(&in_flight)[..] else {
            panic!("two mates")
        };
        assert!(
            (100..=104).contains(waited),
            "the deadline and the lease's margin: {waited}"
        );
        assert_eq!(unstarted.2, 0, "a mate never polled holds nothing");
        in_flight.leases = Some(Leases {
            deadline: None,
            floor: Duration::from_secs(60),
        });
        assert_eq!(delays(&in_flight)[0].2, 60, "the lease's floor");
        in_flight.leases = Some(Leases {
            deadline: None,
            floor: Duration::from_secs(86_400),
        });
        assert_eq!(
            delays(&in_flight)[0].2,
            MAX_VISIBILITY_SECONDS,
            "SQS's 12 hours at most"
        );
        in_flight.leases = Some(Leases {
            deadline: None,
            floor: Duration::from_secs(60),
        });
        in_flight.set_progress(0, Progress::Done);
        assert_eq!(delays(&in_flight), expected(0), "a finished decision holds nothing");
    }

    #[test]
    fn a_panic_is_blamed_on_the_record_being_polled_only_while_it_is() {
        let requeue = Arc::new(MemoryRequeue::default());
        let records = vec![record("m1", "q", "first"), record("m2", "q", "second")];
        let (outside, inside) = runtime().block_on(batch(in_flight(requeue.clone(), records), async {
            let outside = on_panic();
            let inside = deciding(1, async { on_panic() }).await;
            (outside, inside)
        }));
        assert_eq!(outside, None, "no record was being decided");
        assert_eq!(inside, Some(1));
        let calls = requeue.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(
            calls[0].1.iter().map(|r| r.handle.as_str()).collect::<Vec<_>>(),
            ["first"]
        );
        assert_eq!(
            on_panic(),
            None,
            "the batch is no longer in flight once its future returns"
        );
    }

    #[test]
    fn a_record_is_deciding_while_polled_and_done_once_it_returns() {
        let requeue = Arc::new(MemoryRequeue::default());
        let records = vec![
            record("m1", "q", "first"),
            record("m2", "q", "second"),
            record("m3", "q", "third"),
        ];
        let in_flight = InFlight::new(requeue, records.into(), None);
        let progress = runtime().block_on(async {
            let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
            let look = seen.clone();
            batch(in_flight, async move {
                deciding(0, async {}).await;
                let (_gate, opened) = tokio::sync::oneshot::channel::<()>();
                // Polled once (it waits on the gate), then dropped unfinished.
                let mut pending = std::pin::pin!(deciding(1, async move {
                    let _ = opened.await;
                }));
                assert!(futures::poll!(pending.as_mut()).is_pending());
                let in_flight = BATCH.with(|b| b.borrow().clone()).expect("in flight while polled");
                look.lock().unwrap().extend((0..3).map(|i| in_flight.progress(i)));
            })
            .await;
            let seen = seen.lock().unwrap().clone();
            seen
        });
        assert_eq!(progress, [Progress::Done, Progress::Deciding, Progress::NotStarted]);
    }

    #[test]
    fn a_panic_that_unwinds_leaves_nothing_in_flight() {
        let requeue = Arc::new(MemoryRequeue::default());
        let records = vec![record("m1", "q", "first"), record("m2", "q", "second")];
        let work = batch(
            in_flight(requeue.clone(), records),
            deciding(0, async { panic!("a poison record") }),
        );
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime().block_on(work)));
        assert!(unwound.is_err());
        assert_eq!(on_panic(), None, "a later panic is blamed on no record of that batch");
    }

    #[test]
    fn a_hung_queue_holds_the_hook_for_its_limit_only() {
        let requeue = Arc::new(MemoryRequeue::default());
        requeue.set_stalled(true);
        let in_flight = in_flight(requeue.clone(), vec![record("m1", "q", "a")]);
        let started = Instant::now();
        let err = requeue_now(requeue.clone(), mates_of(&in_flight, 5), Duration::from_millis(50))
            .expect_err("a call that never answers");
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        assert_eq!(requeue.calls().len(), 1);
        assert!(matches!(err, HookRequeueError::TimedOut(_)), "{err}");
    }
}
