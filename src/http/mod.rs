//! Outbound HTTP for actions: one shared client (`client`), its request and
//! response types (`request`), and the SSRF guard (`guard`).

mod client;
mod guard;
mod request;

pub use client::{HttpClient, HttpSettings};
pub use guard::{is_public, HttpPolicy};
pub use request::{display_url, HttpError, HttpRequest, HttpResponse, RequestBody};
