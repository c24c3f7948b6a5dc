//! alert-responder: turns a security data lake's alert change stream into
//! automated response.
//!
//! An SNS record is ingested into an [`ingest::Envelope`]; [`decide`] runs
//! the *alert policy* (`package alert.<schema>`), which says which alerts it
//! means, and for each alert the [`workflow`] of the *action policy*
//! (`package action`), which decides in rounds which actions run; the
//! [`pipeline`] publishes every action run as a [`model::Outcome`].
//! docs/ARCHITECTURE.md has the data flow, contracts and failure model.
//!
//! Module map (dependencies point down this list's layers, never up):
//! - `main.rs` (the binary) dispatches to [`lambda`] or [`cli`].
//! - [`app`]: the only reader of [`config::Config`]; builds everything below.
//! - [`lambda`], [`cli`], [`metrics`]: the edges.
//! - [`pipeline`]: one invocation's records → decisions → published outcomes.
//! - [`play`]: scenarios through [`decide`] on mocked actions and memory state.
//! - [`decide`]: the one decision; [`workflow`]: the round loop.
//! - [`policy`]: regorus, loaded and compiled once; [`action`]: the executors;
//!   [`http`]: their shared client and SSRF guard; [`secrets`]: resolution
//!   and redaction.
//! - Ports and adapters: [`state`] (the state port), [`publish`] (the
//!   outcome port), [`aws`] (DynamoDB, SNS, Secrets Manager), [`memory`]
//!   (in-memory state and publisher).
//! - [`ingest`]: SNS and Matano input; [`model`]: plain data; [`config`],
//!   [`typed`], [`tls`], [`process`]: leaves.

// Every binary linking the crate (the Lambda/CLI binary, tests, benches)
// allocates with regorus's mimalloc, which counts allocations for the
// policies' memory budget: benchmarks measure what production runs.

pub mod action;
pub mod app;
pub mod aws;
mod budget_spec;
pub mod bundle;
pub mod cli;
pub(crate) mod compare;
pub mod config;
pub mod crash;
pub mod deadline;
pub mod decide;
pub mod http;
pub mod ingest;
pub mod interaction;
pub mod lambda;
pub mod memory;
mod metrics;
pub mod model;
pub mod pipeline;
mod play;
pub mod policy;
pub mod process;
pub mod publish;
pub mod records;
pub mod replay;
pub mod requeue;
pub mod resume;
pub mod secrets;
pub mod state;
pub mod tls;
mod typed;
pub mod wakeup;
pub mod workflow;
