//! When a signed call that failed is tried again (SNS, DynamoDB, Secrets
//! Manager): a 5xx, a timeout, a dropped connection or throttling, never a
//! request the service refused.

use std::future::Future;
use std::time::{Duration, Instant};

use super::signed::SendError;

/// Tries of a call. A 5xx, a timeout or a dropped connection is tried
/// again after ~100, ~200, ~400 ms; throttling after ~0.5, ~1, ~2 s (each
/// with jitter, so that instances throttled together do not come back
/// together). A call is bounded by 4 tries of at most the caller's timeout
/// and 3.5 s of backoff; the function's timeout (60 s by default) bounds
/// the whole invocation.
pub(super) const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const FIRST_THROTTLED_BACKOFF: Duration = Duration::from_millis(500);

/// The wait after failed try `attempt` (from 1): the base doubled each
/// try, half of it fixed and half random.
pub(super) fn backoff(attempt: u32, throttled: bool) -> Duration {
    use std::hash::BuildHasher;
    let base = if throttled {
        FIRST_THROTTLED_BACKOFF
    } else {
        FIRST_BACKOFF
    };
    let full = base * 2u32.pow(attempt.saturating_sub(1).min(8));
    // A fresh `RandomState` is randomly keyed: enough to spread retries.
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    full / 2 + (full / 2).mul_f64((random % 1024) as f64 / 1024.0)
}

/// The codes AWS's SDKs retry as throttling, and SNS's `KMSThrottling`
/// (the topic's KMS key throttled the call).
pub(super) fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "ProvisionedThroughputExceededException"
            | "TransactionInProgressException"
            | "RequestLimitExceeded"
            | "BandwidthLimitExceeded"
            | "LimitExceededException"
            | "RequestThrottled"
            | "SlowDown"
            | "PriorRequestNotComplete"
            | "EC2ThrottledException"
            | "KMSThrottling"
    )
}

/// Codes that say the service timed out on its side: worth another try.
fn is_timeout(code: &str) -> bool {
    matches!(code, "RequestTimeout" | "RequestTimeoutException")
}

/// Why a call failed, and whether another try may work.
#[derive(Debug)]
pub(super) struct CallError {
    /// The service's error code (`ConditionalCheckFailedException`), when
    /// it answered with one.
    pub code: Option<String>,
    /// In a line: `HTTP 404 NotFound: Topic does not exist`, or why no
    /// answer came.
    pub reason: String,
    /// Another try may work: the service failed, timed out or throttled
    /// the call, or no answer came.
    pub transient: bool,
    /// The service asked to slow down: the next try waits longer.
    pub throttled: bool,
    /// Cut by the deadline of the work it was part of (`crate::deadline`).
    pub past_deadline: bool,
}

impl CallError {
    /// An error answer with its `code` and its line: transient when the
    /// service was at fault, timed out or throttled the call.
    pub fn answered(status: u16, code: Option<String>, reason: String) -> CallError {
        let throttled = status == 429 || code.as_deref().is_some_and(is_throttling);
        let timed_out = code.as_deref().is_some_and(is_timeout);
        CallError {
            transient: status >= 500 || throttled || timed_out,
            throttled,
            code,
            reason,
            past_deadline: false,
        }
    }

    /// A failure no other try will mend.
    pub fn permanent(reason: String) -> CallError {
        CallError {
            code: None,
            reason,
            transient: false,
            throttled: false,
            past_deadline: false,
        }
    }

    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

impl From<SendError> for CallError {
    fn from(err: SendError) -> CallError {
        CallError {
            code: None,
            reason: err.reason,
            transient: err.transient,
            throttled: false,
            past_deadline: false,
        }
    }
}

/// `try_once` until it succeeds, fails for good, or [`ATTEMPTS`] tries
/// failed transiently, waiting [`backoff`] between tries; `call` names it
/// in the warning each retry logs (with the error's code, or why no answer
/// came: not the service's message, which may name what was asked for).
///
/// Within work that has a deadline (`crate::deadline`), a try ends by it
/// (given at least its grace) and none starts after it.
pub(super) async fn with_retries<T, F>(call: &str, mut try_once: impl FnMut() -> F) -> Result<T, CallError>
where
    F: Future<Output = Result<T, CallError>>,
{
    let deadline = crate::deadline::current();
    let mut attempt = 1;
    loop {
        match bounded(try_once()).await {
            Err(err)
                if err.transient
                    && attempt < ATTEMPTS
                    && deadline.is_none_or(|d| Instant::now() + backoff(attempt, err.throttled) < d) =>
            {
                let reason = err.code.as_deref().unwrap_or(&err.reason);
                tracing::warn!(call, attempt, reason, "AWS call failed; retrying");
                tokio::time::sleep(backoff(attempt, err.throttled)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// One try, over by the deadline of the work it is part of (given at
/// least `deadline::GRACE`): a hung endpoint is a transient failure then.
pub(super) async fn bounded<T>(try_once: impl Future<Output = Result<T, CallError>>) -> Result<T, CallError> {
    let Some(deadline) = crate::deadline::current() else {
        return try_once.await;
    };
    let until = deadline.max(Instant::now() + crate::deadline::GRACE);
    match tokio::time::timeout_at(until.into(), try_once).await {
        Ok(result) => result,
        Err(_) => Err(CallError {
            code: None,
            reason: "no answer before the invocation's deadline".to_string(),
            transient: true,
            throttled: false,
            past_deadline: true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_throttling_waits_longer() {
        let mut seen = std::collections::BTreeSet::new();
        for attempt in 1..=3 {
            let full = FIRST_BACKOFF * 2u32.pow(attempt - 1);
            let throttled_full = FIRST_THROTTLED_BACKOFF * 2u32.pow(attempt - 1);
            for _ in 0..50 {
                let wait = backoff(attempt, false);
                assert!(wait >= full / 2 && wait <= full, "{attempt}: {wait:?}");
                seen.insert(wait);
                let wait = backoff(attempt, true);
                assert!(
                    wait >= throttled_full / 2 && wait <= throttled_full,
                    "{attempt}: {wait:?}"
                );
            }
        }
        assert!(seen.len() > 10, "jittered: {} distinct waits of 150", seen.len());
    }
}
