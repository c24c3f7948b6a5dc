//! The port outcomes leave through, and its local implementations: JSON
//! lines on stdout or in a file. SNS is in `aws::sns`, the in-memory one in
//! `memory`.

use std::io::Write;
use std::path::PathBuf;

use futures::future::BoxFuture;

use crate::model::Outcome;

/// Why outcomes could not be delivered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    #[error("publishing {failed} of {total} outcomes to {destination} failed: {reason}")]
    Failed {
        destination: String,
        failed: usize,
        total: usize,
        reason: String,
        /// Which outcomes (indices into the slice given) were not
        /// published: an SQS batch retries only their records.
        unpublished: Vec<usize>,
    },
    /// Still publishing when the invocation had to answer: which outcomes
    /// went out is not known, so a retry publishes them all again (with
    /// the same outcome ids, which receivers deduplicate on).
    #[error("publishing {total} outcomes did not finish before the invocation's deadline; they are published again by a retry")]
    Late { total: usize },
}

impl PublishError {
    /// The outcomes (indices into the slice given) that were not published.
    pub fn unpublished(&self) -> &[usize] {
        match self {
            PublishError::Failed { unpublished, .. } => unpublished,
            PublishError::Late { .. } => &[],
        }
    }

    /// How many of `total` outcomes went out all the same (a failure that
    /// names no outcome counts as all of them failed).
    pub fn published_of(&self, total: usize) -> usize {
        match self.unpublished().len() {
            0 => 0,
            failed => total.saturating_sub(failed),
        }
    }
}

/// Delivers outcomes somewhere: SNS, stdout, a file, memory.
pub trait Publisher: Send + Sync {
    fn publish<'a>(&'a self, outcomes: &'a [Outcome]) -> BoxFuture<'a, Result<(), PublishError>>;
}

/// One JSON outcome per line on stdout.
pub struct StdoutPublisher;

impl Publisher for StdoutPublisher {
    fn publish<'a>(&'a self, outcomes: &'a [Outcome]) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            let mut out = std::io::stdout().lock();
            write_lines(&mut out, outcomes).map_err(|err| failed("stdout", outcomes.len(), err))
        })
    }
}

/// One JSON outcome per line, appended to a file.
pub struct FilePublisher {
    path: PathBuf,
}

impl FilePublisher {
    pub fn new(path: impl Into<PathBuf>) -> FilePublisher {
        FilePublisher { path: path.into() }
    }
}

impl Publisher for FilePublisher {
    fn publish<'a>(&'a self, outcomes: &'a [Outcome]) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            let destination = self.path.display().to_string();
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(|err| failed(&destination, outcomes.len(), err))?;
            write_lines(&mut file, outcomes).map_err(|err| failed(&destination, outcomes.len(), err))
        })
    }
}

fn write_lines(out: &mut impl Write, outcomes: &[Outcome]) -> std::io::Result<()> {
    for outcome in outcomes {
        out.write_all(outcome.to_message().as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn failed(destination: &str, total: usize, err: std::io::Error) -> PublishError {
    PublishError::Failed {
        destination: destination.to_string(),
        failed: total,
        total,
        reason: err.to_string(),
        unpublished: (0..total).collect(),
    }
}
