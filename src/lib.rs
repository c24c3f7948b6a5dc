//! alert-responder: turns a security data lake's alert change stream into
//! automated response.
//!
//! An SNS record is ingested into an [`event::Envelope`], the *alert policy*
//! (`package alert.<schema>`) decides which alerts it means, the *action
//! policy* (`package action`) decides in rounds which actions run, and every
//! action run becomes an [`outcome::Outcome`] handed to a
//! [`outcome::Publisher`].
//!
//! Module map:
//! - [`config`]: environment → validated [`config::Config`], once, at init.
//! - [`event`]: SNS envelopes, the Matano alert-change model, schema detection.
//! - [`policy`]: the regorus engine: load, compile once, evaluate.
//! - [`workflow`]: the action round loop, commits, abort/force, limits.
//! - [`action`]: the action registry and the built-in executors.
//! - [`http`]: the shared HTTP client: timeouts, retries, SSRF guard.
//! - [`secrets`]: `secret_*` arguments from Secrets Manager, cached.
//! - [`state`]: the DynamoDB state table: action claims, change order, persistent attributes.
//! - [`outcome`]: the outcome model and its publishers (SNS, stdout, file).
//! - [`pipeline`]: one envelope through both policies to published outcomes.
//! - [`aws`]: SDK configuration on one rustls/ring TLS stack.
//! - [`lambda`]: the Lambda handler.
//! - [`metrics`]: CloudWatch Embedded Metric Format lines per invocation.
//! - [`typed`]: typed views of JSON whose errors name the path.
//! - [`play`]: scenarios with mocked action results, checked against expectations.
//! - [`cli`]: the local commands (`run`, `check`, `test`, `play`).

/// Every binary linking the crate (the Lambda/CLI binary, tests, benches)
/// allocates with mimalloc, so benchmarks measure what production runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod action;
pub mod alert;
pub mod aws;
pub mod cli;
pub mod config;
pub mod event;
pub mod http;
pub mod lambda;
pub mod metrics;
pub mod outcome;
pub mod pipeline;
pub mod play;
pub mod policy;
pub mod secrets;
pub mod state;
pub mod typed;
pub mod workflow;

/// Replaces the value of every argument whose name marks it as a secret.
pub const REDACTED: &str = "[REDACTED]";
