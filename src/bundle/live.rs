//! Loading a bundle into compiled policies, and refreshing the live and
//! shadow ones when their object changes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::archive::{open, BundleError};
use crate::aws::S3;
use crate::config::{PolicyEngine, S3Uri};
use crate::decide::Decider;
use crate::policy::{PolicyError, PolicySet};

/// How bundles are compiled: the same as the configured policies.
#[derive(Debug, Clone, Copy)]
pub struct CompileOptions {
    pub timeout: Duration,
    pub engine: PolicyEngine,
    pub memory: u64,
    pub show_prints: bool,
}

impl CompileOptions {
    pub fn apply(&self, set: PolicySet) -> PolicySet {
        set.with_prints(self.show_prints)
            .with_engine(self.engine)
            .with_memory_budget(self.memory)
    }
}

/// Why a bundle could not be served.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("{origin}: the policies do not compile: {error}")]
    Compile { origin: String, error: PolicyError },
}

/// Where a bundle is read from.
#[derive(Debug, Clone)]
pub enum BundleSource {
    File(PathBuf),
    S3 { s3: S3, uri: S3Uri },
}

impl BundleSource {
    pub fn origin(&self) -> String {
        match self {
            BundleSource::File(path) => path.display().to_string(),
            BundleSource::S3 { uri, .. } => uri.to_string(),
        }
    }

    /// The bundle's bytes and version tag, or `None` when its tag is still
    /// `known` (S3: the ETag, by a conditional GET; a file: its sha256).
    pub async fn fetch(&self, known: Option<&str>) -> Result<Option<(Vec<u8>, String)>, BundleError> {
        match self {
            BundleSource::File(path) => {
                let bytes = std::fs::read(path).map_err(|err| BundleError::Fetch {
                    origin: path.display().to_string(),
                    reason: err.to_string(),
                })?;
                let tag = hex::encode(Sha256::digest(&bytes));
                Ok((known != Some(tag.as_str())).then_some((bytes, tag)))
            }
            BundleSource::S3 { s3, uri } => {
                let fetched = s3.get(uri, known).await.map_err(|err| BundleError::Fetch {
                    origin: uri.to_string(),
                    reason: err.reason,
                })?;
                Ok(fetched.map(|f| {
                    let tag = f.etag.unwrap_or_else(|| hex::encode(Sha256::digest(&f.body)));
                    (f.body, tag)
                }))
            }
        }
    }
}

/// Opens, verifies and compiles a bundle's bytes.
pub fn load_bundle(bytes: &[u8], origin: &str, options: &CompileOptions) -> Result<PolicySet, LoadError> {
    let bundle = open(bytes, origin)?;
    let set = PolicySet::compile(bundle.files, options.timeout).map_err(|error| LoadError::Compile {
        origin: origin.to_string(),
        error,
    })?;
    let set = options.apply(set);
    debug_assert_eq!(set.digest(), bundle.manifest.digest);
    Ok(set)
}

/// A bundle being served, with the tag of the version loaded.
pub struct Watched {
    source: BundleSource,
    tag: Mutex<Option<String>>,
}

impl Watched {
    pub fn new(source: BundleSource) -> Watched {
        Watched {
            source,
            tag: Mutex::new(None),
        }
    }

    /// The bundle's policies when it changed since the last load (the first
    /// call always loads). A refused version is not tried again until it
    /// changes.
    pub async fn load_if_changed(&self, options: &CompileOptions) -> Result<Option<PolicySet>, LoadError> {
        let known = self.tag.lock().expect("not poisoned").clone();
        let Some((bytes, tag)) = self.source.fetch(known.as_deref()).await? else {
            return Ok(None);
        };
        *self.tag.lock().expect("not poisoned") = Some(tag);
        load_bundle(&bytes, &self.source.origin(), options).map(Some)
    }

    pub fn origin(&self) -> String {
        self.source.origin()
    }

    /// The bundle's version when it is new and good, logged as `what`
    /// ("policy bundle", "shadow bundle"). None when unchanged, not read
    /// (tried again next time) or refused (counted in `refused`); the log
    /// says what happens instead (`kept`).
    pub async fn load_new(
        &self,
        options: &CompileOptions,
        what: &str,
        kept: &str,
        refused: &mut usize,
    ) -> Option<PolicySet> {
        match self.load_if_changed(options).await {
            Ok(None) => None,
            Ok(Some(set)) => {
                tracing::info!(bundle = %self.origin(), bundle_digest = set.digest(), "{what} loaded");
                Some(set)
            }
            // S3 unreachable, access denied: not a refusal.
            Err(LoadError::Bundle(err @ BundleError::Fetch { .. })) => {
                tracing::warn!(bundle = %self.origin(), error = %err, "{what} not read; {kept}");
                None
            }
            Err(err) => {
                *refused += 1;
                tracing::error!(bundle = %self.origin(), error = %err, "{what} refused; {kept}");
                None
            }
        }
    }
}

/// Re-checks the live and shadow bundles at most every `every`, between
/// invocations, and swaps what changed into the decider.
pub struct Refresher {
    live: Option<Watched>,
    shadow: Option<Watched>,
    every: Duration,
    options: CompileOptions,
    next: Mutex<Instant>,
    /// Versions refused at init, reported with the first invocation.
    refused_at_init: AtomicUsize,
}

impl Refresher {
    /// `live` and `shadow` already loaded once (at init).
    pub fn new(live: Option<Watched>, shadow: Option<Watched>, every: Duration, options: CompileOptions) -> Refresher {
        Refresher {
            live,
            shadow,
            every,
            options,
            next: Mutex::new(Instant::now() + every),
            refused_at_init: AtomicUsize::new(0),
        }
    }

    /// `refused` versions were refused at init: the first invocation's
    /// `PolicyBundleRefused` counts them (init writes no metrics).
    pub fn with_refused_at_init(self, refused: usize) -> Refresher {
        self.refused_at_init.store(refused, Ordering::Relaxed);
        self
    }

    /// Checks the bundles when due; the number of versions refused (for the
    /// `PolicyBundleRefused` metric).
    pub async fn refresh_if_due(&self, decider: &Decider) -> usize {
        let mut refused = self.refused_at_init.swap(0, Ordering::Relaxed);
        {
            let mut next = self.next.lock().expect("not poisoned");
            if Instant::now() < *next {
                return refused;
            }
            *next = Instant::now() + self.every;
        }
        if let Some(live) = &self.live {
            let serving = decider.policies().digest().to_string();
            let kept = format!("the policies serving ({serving}) keep serving");
            if let Some(set) = live.load_new(&self.options, "policy bundle", &kept, &mut refused).await {
                decider.swap_policies(Arc::new(set));
            }
        }
        if let Some(shadow) = &self.shadow {
            let kept = "the current shadow keeps shadowing";
            if let Some(set) = shadow
                .load_new(&self.options, "shadow bundle", kept, &mut refused)
                .await
            {
                decider.swap_shadow(Some(Arc::new(set)));
            }
        }
        refused
    }
}
