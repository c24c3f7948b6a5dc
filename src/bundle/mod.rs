//! Policy bundles: built by `alert-responder bundle` (checked, tested and
//! played first), served from S3 or a file (`POLICY_BUNDLE`, and
//! `SHADOW_POLICY_BUNDLE` for a candidate), re-checked by ETag between
//! invocations and swapped whole; a bundle that does not load or compile
//! is refused and the last good one keeps serving.
//!
//! `archive` is the format, `live` the loading and refreshing.

mod archive;
mod live;

pub use archive::{build, open, Bundle, BundleError, Manifest, ManifestFile, MANIFEST};
pub use live::{load_bundle, BundleSource, CompileOptions, LoadError, Refresher, Watched};
