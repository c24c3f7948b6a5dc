//! A panic while an SQS batch's record is decided.
//!
//! The release binary aborts on a panic (unwinding tables would be 1.3 MiB
//! of it, BENCHMARKS.md), so Lambda fails the whole invocation, and every
//! record of the batch comes back after the queue's visibility timeout:
//! together, into the same crash, until all of them reach the dead-letter
//! queue. One record that crashes the function would take its batch-mates
//! with it. So the panic hook makes the batch-mates visible again at once
//! (they are retried like any record, with the state table's replay); the
//! record being decided when the panic came stays hidden for the queue's
//! visibility timeout and reaches the dead-letter queue alone.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::requeue::{Receipt, Requeue, Requeued};

/// How long the panic hook waits for SQS before the process ends.
const REQUEUE_LIMIT: Duration = Duration::from_secs(2);

/// A batch being handled: how to reach its queue, and its records' ids
/// (SQS message ids) and receipts, in the order [`deciding`] numbers them.
pub(crate) struct InFlight {
    pub(crate) requeue: Arc<dyn Requeue>,
    pub(crate) item_ids: Vec<String>,
    pub(crate) receipts: Vec<Option<Receipt>>,
}

std::thread_local! {
    /// The batch being polled on this thread.
    static BATCH: RefCell<Option<Arc<InFlight>>> = const { RefCell::new(None) };
    /// The record of it being polled on this thread.
    static DECIDING: Cell<Option<usize>> = const { Cell::new(None) };
}

/// `work` with `batch` in flight: a panic while one of its records is
/// [`deciding`] makes the others visible again at once (with the hook
/// [`install_hook`] installed).
pub(crate) fn batch<F: Future>(batch: InFlight, work: F) -> impl Future<Output = F::Output> {
    Scoped {
        enter: ScopeOf::Batch(Arc::new(batch)),
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
        // Restored when the poll ends, by a return or by unwinding.
        let _restore = match &this.enter {
            ScopeOf::Batch(batch) => Restore::Batch(BATCH.with(|b| b.replace(Some(batch.clone())))),
            ScopeOf::Record(index) => Restore::Record(DECIDING.with(|d| d.replace(Some(*index)))),
        };
        this.work.as_mut().poll(cx)
    }
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
/// panic): once, in Lambda mode, before the first event.
pub fn install_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        on_panic();
    }));
}

/// What the panic hook does: with a record of a batch being decided on
/// this thread, its batch-mates made visible again at once. Returns how
/// many were (`None`: no record was being decided).
fn on_panic() -> Option<usize> {
    let batch = BATCH.with(|b| b.try_borrow().ok().and_then(|b| b.clone()))?;
    let poisoned = DECIDING.with(Cell::get)?;
    let mates = mates_of(&batch.receipts, poisoned);
    let count: usize = mates.values().map(Vec::len).sum();
    if count == 0 {
        return Some(0);
    }
    let message_id = batch.item_ids.get(poisoned).map_or("", String::as_str);
    match requeue_now(batch.requeue.clone(), mates, REQUEUE_LIMIT) {
        Ok(()) => tracing::error!(
            message_id,
            batch_mates = count,
            "a panic while this batch's record was decided: its batch-mates are visible again at once, \
             the record comes back after the queue's visibility timeout"
        ),
        Err(reason) => tracing::error!(
            message_id,
            batch_mates = count,
            reason = reason.as_str(),
            "a panic while this batch's record was decided: its batch-mates could not be made visible \
             sooner and come back with it, after the queue's visibility timeout"
        ),
    }
    Some(count)
}

/// Every record of the batch but `poisoned`, by queue, visible at once.
fn mates_of(receipts: &[Option<Receipt>], poisoned: usize) -> BTreeMap<String, Vec<Requeued>> {
    let mut by_queue: BTreeMap<String, Vec<Requeued>> = BTreeMap::new();
    let mates = receipts.iter().enumerate().filter(|(index, _)| *index != poisoned);
    for receipt in mates.filter_map(|(_, receipt)| receipt.as_ref()) {
        by_queue.entry(receipt.queue_arn.clone()).or_default().push(Requeued {
            handle: receipt.handle.clone(),
            delay_seconds: 0,
        });
    }
    by_queue
}

/// `by_queue` requeued on a thread and runtime of their own — the
/// panicking thread's runtime is stopped inside this hook — for at most
/// `limit`.
fn requeue_now(
    requeue: Arc<dyn Requeue>,
    by_queue: BTreeMap<String, Vec<Requeued>>,
    limit: Duration,
) -> Result<(), String> {
    let (answer, answered) = std::sync::mpsc::channel();
    let calls = move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| format!("no runtime: {err}"))?;
        runtime.block_on(async {
            let calls = async {
                for (queue_arn, records) in &by_queue {
                    requeue
                        .requeue(queue_arn, records)
                        .await
                        .map_err(|err| err.to_string())?;
                }
                Ok(())
            };
            tokio::time::timeout(limit, calls)
                .await
                .unwrap_or_else(|_| Err(format!("SQS did not answer within {limit:?}")))
        })
    };
    std::thread::Builder::new()
        .name("requeue-on-panic".to_string())
        .spawn(move || {
            let _ = answer.send(calls());
        })
        .map_err(|err| format!("no thread: {err}"))?;
    // The thread's own limit ends it first; this bounds a runtime that
    // could not even start its timer.
    answered
        .recv_timeout(limit + Duration::from_secs(1))
        .map_err(|_| format!("no answer within {limit:?}"))?
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

    fn receipt(queue: &str, handle: &str) -> Option<Receipt> {
        Some(Receipt {
            queue_arn: queue.to_string(),
            handle: handle.to_string(),
        })
    }

    #[test]
    fn the_batch_mates_of_the_poisoned_record_come_back_at_once_by_queue() {
        let receipts = [receipt("q1", "a"), None, receipt("q2", "b"), receipt("q1", "c")];
        let mates = mates_of(&receipts, 3);
        let handles: Vec<(&str, &str, u32)> = mates
            .iter()
            .flat_map(|(queue, records)| {
                records
                    .iter()
                    .map(move |r| (queue.as_str(), r.handle.as_str(), r.delay_seconds))
            })
            .collect();
        assert_eq!(handles, [("q1", "a", 0), ("q2", "b", 0)]);
    }

    #[test]
    fn a_panic_is_blamed_on_the_record_being_polled_only_while_it_is() {
        let requeue = Arc::new(MemoryRequeue::default());
        let in_flight = InFlight {
            requeue: requeue.clone(),
            item_ids: vec!["m1".to_string(), "m2".to_string()],
            receipts: vec![receipt("q", "first"), receipt("q", "second")],
        };
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let (outside, inside) = runtime.block_on(batch(in_flight, async {
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
    fn a_hung_queue_holds_the_hook_for_its_limit_only() {
        let requeue = Arc::new(MemoryRequeue::default());
        requeue.set_stalled(true);
        let by_queue = mates_of(&[receipt("q", "a")], 5);
        let started = std::time::Instant::now();
        let err =
            requeue_now(requeue.clone(), by_queue, Duration::from_millis(50)).expect_err("a call that never answers");
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
        assert_eq!(requeue.calls().len(), 1);
        assert!(err.contains("did not answer"), "{err}");
    }
}
