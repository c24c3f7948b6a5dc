//! The deadline of the work in progress, for the AWS calls beneath it: a
//! state table or secret source that hangs gives up when the decision's
//! time is over, rather than after its own tries (4 of up to 10 s each),
//! so the record is retried and the invocation still answers in time.
//! Set by the pipeline around a decision; read by `aws::retry`.

use std::future::Future;
use std::time::{Duration, Instant};

tokio::task_local! {
    static BY: Instant;
}

/// The least a call is given after the deadline: a quick one (releasing a
/// lock, giving a workflow back) still goes through.
pub const GRACE: Duration = Duration::from_millis(250);

/// Runs `work` with `deadline` as the one its calls keep to.
pub async fn within<F: Future>(deadline: Option<Instant>, work: F) -> F::Output {
    match deadline {
        Some(deadline) => BY.scope(deadline, work).await,
        None => work.await,
    }
}

/// The deadline of the work this call is part of, if any.
pub fn current() -> Option<Instant> {
    BY.try_with(|deadline| *deadline).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_deadline_is_seen_inside_its_work_only() {
        let at = Instant::now() + Duration::from_secs(5);
        assert_eq!(within(Some(at), async { current() }).await, Some(at));
        assert_eq!(within(None, async { current() }).await, None);
        assert_eq!(current(), None);
    }
}
