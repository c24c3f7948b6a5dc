//! Rego policies on regorus: read (`source`), compiled once at init and
//! evaluated (`set`, with VM programs from `vm`), their `run` entries parsed
//! (`request`), their values converted (`value`), and their unit tests run
//! (`unit_test`).

mod analysis;
pub use analysis::available_builtins;
mod empty_objects;
mod engine;
mod error;
mod escape;
mod guard;
mod hoist;
mod host;
mod metadata;
mod patterns;
mod recursion;
mod request;
mod rewrite;
mod set;
mod shadowing;
mod source;
mod template;
mod test_data;
pub mod unit_test;
mod value;
mod vm;

pub use engine::{in_regorus_syntax, new_engine};
pub use error::PolicyError;
pub use escape::with_escape_functions;
pub use request::{commit_path_selects_a_list, parse_commit_path, ActionRequest, CommitSpec, ACTION_RULE};
pub use set::PolicySet;
pub use source::{describe_source, read_source, source_digest, PolicyFile};
pub use test_data::load_test_data;
pub use value::{to_policy_entries, to_policy_object, to_policy_value};
