//! What can go wrong with policies, each naming the file or the rule.

use std::path::PathBuf;

/// Why policies could not be loaded or evaluated. Each names the file or rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policies from {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("no policies found in {0} (expected *.rego files)")]
    Empty(String),
    #[error("policy does not compile: {0}")]
    Compile(String),
    /// Calls to functions neither the policies, nor the engine, nor the host
    /// define: one line each, `file:line: unknown function name (why)`.
    #[error("{} unknown function call(s):\n  {}", .0.len(), .0.join("\n  "))]
    UnknownFunctions(Vec<String>),
    #[error("no alert or action policy: expected files with `package alert.<schema>` (an `alert` rule) or `package action` (a `run` rule)")]
    NoPolicy,
    #[error("evaluating {rule} failed: {reason}")]
    Eval { rule: String, reason: String },
    /// The evaluation ran into the invocation's deadline (not the policy's
    /// own timeout): deciding again in a later invocation may finish.
    #[error("evaluating {rule} was stopped by the invocation's deadline")]
    Deadline { rule: String },
    #[error("{rule} returned an invalid value: {reason}")]
    Output { rule: String, reason: String },
}
