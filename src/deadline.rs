//! The deadline of the work in progress, for the AWS calls beneath it: a
//! state table or secret source that hangs gives up when the decision's
//! time is over, rather than after its own tries (4 of up to 10 s each),
//! so the record is retried and the invocation still answers in time.
//! Set by the pipeline around a decision; read by `aws::retry`. An
//! action's AWS call (`sns.publish`) cut by it is a transient failure (the
//! retry publishes); what is saved after an action ran keeps to
//! [`finish_by`].

use std::future::Future;
use std::time::{Duration, Instant};

tokio::task_local! {
    static BY: Option<Instant>;
}

/// The least a call is given after the deadline: a quick one (releasing a
/// lock, giving a workflow back) still goes through.
pub const GRACE: Duration = Duration::from_millis(250);

/// Time kept back from Lambda's deadline to publish outcomes and keep
/// decision records: decisions stop this long before it.
pub const PUBLISH_MARGIN: Duration = Duration::from_millis(1500);

/// Of [`PUBLISH_MARGIN`], what publishing and records leave for the answer
/// to Lambda: an invocation that is still publishing at its deadline times
/// out, and every record of its batch comes back.
const ANSWER_MARGIN: Duration = Duration::from_millis(250);

/// When publishing, keeping records and saving what ran must be over,
/// given the decisions' `deadline`.
pub fn finish_by(deadline: Option<Instant>) -> Option<Instant> {
    deadline.map(|deadline| deadline + (PUBLISH_MARGIN - ANSWER_MARGIN))
}

/// Runs `work` with `deadline` as the one its calls keep to (`None`: none,
/// whatever the enclosing work's).
pub async fn within<F: Future>(deadline: Option<Instant>, work: F) -> F::Output {
    BY.scope(deadline, work).await
}

/// The deadline of the work this call is part of, if any.
pub fn current() -> Option<Instant> {
    BY.try_with(|deadline| *deadline).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_deadline_is_seen_inside_its_work_only() {
        let at = Instant::now() + Duration::from_secs(5);
        assert_eq!(within(Some(at), async { current() }).await, Some(at));
        assert_eq!(within(Some(at), within(None, async { current() })).await, None);
        assert_eq!(current(), None);
    }
}
