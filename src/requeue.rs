//! When an SQS record listed for a retry comes back. Left alone, SQS hides
//! a received record for the queue's whole visibility timeout (six times the
//! function's timeout: minutes); a batch instead makes each retried record
//! visible again after a backoff of its own (`ChangeMessageVisibility`),
//! and a record it never started at once.

use std::collections::BTreeMap;

use futures::future::BoxFuture;

/// Where a queued record came from and how to hand it back: the record's
/// `eventSourceARN` and `receiptHandle`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub queue_arn: String,
    pub handle: String,
}

/// A batch's record: its SQS message id and its receipt, when it has one.
pub(crate) type BatchRecord = (String, Option<Receipt>);

/// One record to make visible again `delay_seconds` from now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requeued {
    pub handle: String,
    pub delay_seconds: u32,
}

/// Records whose visibility could not be changed: they come back after the
/// queue's visibility timeout instead.
#[derive(Debug, thiserror::Error)]
#[error("making {count} record(s) of {queue_arn} visible again sooner failed: {reason}")]
pub struct RequeueError {
    pub queue_arn: String,
    pub count: usize,
    pub reason: String,
}

/// Changes when records of one queue become visible again.
pub trait Requeue: Send + Sync {
    fn requeue<'a>(&'a self, queue_arn: &'a str, records: &'a [Requeued]) -> BoxFuture<'a, Result<(), RequeueError>>;
}

/// The longest first delay (`INGEST_RETRY_DELAY_SECONDS`): an hour. SQS
/// refuses a visibility change past 12 hours from a message's receipt, and
/// the queue's maximum receive count decides how many tries there are.
pub const MAX_BASE_SECONDS: u32 = 3_600;

/// How long making records visible sooner may take (SQS slow or
/// unreachable): a batch's answer, or a panic's end, waits no longer, and
/// the records then wait out the queue's visibility timeout.
pub(crate) const REQUEUE_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Records with their delays, by queue: one [`Requeue::requeue`] each.
pub(crate) type ByQueue = BTreeMap<String, Vec<Requeued>>;

/// `records` (a receipt and its delay) grouped by their queue.
pub(crate) fn by_queue<'a>(records: impl IntoIterator<Item = (&'a Receipt, u32)>) -> ByQueue {
    let mut by_queue = ByQueue::new();
    for (receipt, delay_seconds) in records {
        by_queue.entry(receipt.queue_arn.clone()).or_default().push(Requeued {
            handle: receipt.handle.clone(),
            delay_seconds,
        });
    }
    by_queue
}

/// Every queue's records requeued, one queue failing not stopping the
/// others: the failures.
pub(crate) async fn requeue_all(requeue: &dyn Requeue, by_queue: &ByQueue) -> Vec<RequeueError> {
    let mut failures = Vec::new();
    for (queue_arn, records) in by_queue {
        if let Err(err) = requeue.requeue(queue_arn, records).await {
            failures.push(err);
        }
    }
    failures
}

/// How long a retried record stays hidden: `base_seconds` doubled for each
/// delivery before this one, at most [`RetryDelay::CAP_SECONDS`] (or the
/// base, when that is longer; the base is at most [`MAX_BASE_SECONDS`]). A
/// record the batch never started (the invocation's deadline came first)
/// comes back at once: nothing of it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryDelay {
    pub base_seconds: u32,
}

impl RetryDelay {
    /// Where the doubling stops: 15 minutes.
    pub const CAP_SECONDS: u32 = 900;

    pub fn for_record(self, deliveries: u32, started: bool) -> u32 {
        if !started {
            return 0;
        }
        let doublings = deliveries.saturating_sub(1).min(16);
        let cap = Self::CAP_SECONDS.max(self.base_seconds);
        let base = self.base_seconds.min(MAX_BASE_SECONDS);
        base.saturating_mul(1 << doublings).min(cap.min(MAX_BASE_SECONDS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_per_delivery_up_to_its_cap() {
        let delay = RetryDelay { base_seconds: 30 };
        let delays: Vec<u32> = (1..=7).map(|n| delay.for_record(n, true)).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 900, 900]);
        assert_eq!(
            delay.for_record(0, true),
            30,
            "a count SQS left out is a first delivery"
        );
        assert_eq!(delay.for_record(u32::MAX, true), 900);
        assert_eq!(
            delay.for_record(3, false),
            0,
            "a record never started comes back at once"
        );
        assert_eq!(RetryDelay { base_seconds: 0 }.for_record(5, true), 0);
        let long = RetryDelay { base_seconds: 3_600 };
        assert_eq!((long.for_record(1, true), long.for_record(4, true)), (3_600, 3_600));
        let beyond = RetryDelay {
            base_seconds: MAX_BASE_SECONDS * 4,
        };
        assert_eq!(beyond.for_record(2, true), MAX_BASE_SECONDS);
    }
}
