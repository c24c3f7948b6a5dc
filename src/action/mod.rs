//! Actions: Rust executors named `<service>.<verb>`, looked up by the `uses`
//! of a `run` entry. Each declares its arguments so requests are checked
//! before anything runs, and `check` can validate policies offline.
//!
//! `contract` is what the workflow and an executor agree on, `args` the
//! declarations and their checks, `registry` the catalog; one file per
//! service, with `vendor` holding what the vendor actions share.

pub mod approval;
mod args;
mod contract;
mod github;
mod github_app;
mod http;
mod jira;
mod openai;
mod opsgenie;
mod otx;
mod pagerduty;
mod registry;
pub mod render;
mod slack;
pub mod sns;
mod vendor;
mod virustotal;
pub mod webhook;

pub use args::{ArgKind, ArgProblem, ArgRule, ArgSpec, Known};
pub use contract::{Action, ActionCall, ActionError};
pub use registry::Registry;
