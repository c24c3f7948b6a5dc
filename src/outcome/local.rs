//! Publishers for local runs: JSON lines on stdout or in a file, and an
//! in-memory collector.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use futures::future::BoxFuture;

use super::{Outcome, PublishError, Publisher};

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

/// Keeps outcomes in memory (for `play` and tests).
#[derive(Default)]
pub struct MemoryPublisher {
    outcomes: Mutex<Vec<Outcome>>,
}

impl MemoryPublisher {
    pub fn take(&self) -> Vec<Outcome> {
        std::mem::take(&mut self.outcomes.lock().expect("not poisoned"))
    }
}

impl Publisher for MemoryPublisher {
    fn publish<'a>(&'a self, outcomes: &'a [Outcome]) -> BoxFuture<'a, Result<(), PublishError>> {
        self.outcomes.lock().expect("not poisoned").extend_from_slice(outcomes);
        Box::pin(async { Ok(()) })
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
    }
}
