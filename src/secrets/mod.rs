//! Secrets for `secret_*` action arguments: resolution (literals, or
//! Secrets Manager references with a cache) and redaction.

mod redact;
mod reference;
mod resolver;

pub use redact::{redact_args, scrub_text, scrub_value, secret_values, REDACTED};
pub use reference::{is_secret_name, SecretRef};
pub use resolver::{ArgSecretError, SecretError, SecretResolver, SecretSource};
