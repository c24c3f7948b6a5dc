//! Secrets for `secret_*` action arguments: resolution (literals, or
//! Secrets Manager references with a cache) and redaction.

mod redact;
mod resolver;

pub use redact::{is_secret_name, redact_args, scrub_text, scrub_value, secret_values, REDACTED};
pub use resolver::{ArgSecretError, SecretError, SecretRef, SecretResolver, SecretSource};
