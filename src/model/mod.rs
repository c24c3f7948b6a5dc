//! Plain data: the alert, what became of each action, the outcome message.

pub mod alert;
pub mod decision;
pub mod divergence;
pub mod ids;
pub mod outcome;
pub mod record;
pub mod suspended;

pub use alert::{derived_attr_id, Alert, AlertDraft, Attr, Reference};
pub use outcome::Outcome;
pub use record::{ActionRecord, Commit, CommitOp, SkipReason, Status};
