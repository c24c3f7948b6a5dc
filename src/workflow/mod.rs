//! The action round loop for one alert.
//!
//! Round `seq` evaluates the action policy with `input.called` holding every
//! action run so far (results included). The new ids of a round run
//! concurrently; their results feed the next round. The loop stops when a
//! round asks for nothing new, after a round with `abort`, after a round in
//! which an action without `force` failed, or at `max_rounds` — the last is
//! never silent: the actions still asked for are reported as skipped.
//!
//! `rounds` is the loop, `input` the policy's input per round, `execute` one
//! action (claim, replay, secrets, run), `commit` what an action writes.

mod commit;
mod execute;
mod guard;
mod input;
mod rounds;
mod suspend;

pub use execute::{Retry, RetryCause};
pub use guard::Guards;
pub(crate) use rounds::Acting;
pub use rounds::{Limits, Stop, Workflow, WorkflowReport};
pub use suspend::{resolve, ResolveError};

pub use crate::model::record::Recorded;

#[cfg(test)]
mod tests;
