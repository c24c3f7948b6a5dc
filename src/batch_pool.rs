//! Threads that decide an SQS batch's records in parallel.
//!
//! Lambda mode runs on one thread: an SNS invocation holds one change, and
//! a cold start should not pay for threads. A batch holds up to ten, each
//! decided mostly on the CPU (policy evaluation), so on a function with two
//! full vCPUs or more its records are spread over this pool's threads. The
//! pool starts at the first batch: SNS invocations never start it.

use std::future::Future;
use std::sync::OnceLock;

/// Lambda's memory per full vCPU.
const MB_PER_VCPU: u64 = 1769;

/// A multi-threaded runtime for batch records, built on first use.
#[derive(Debug)]
pub struct BatchPool {
    threads: usize,
    /// `None` inside: the runtime could not be built (logged once); records
    /// are then decided on the invocation's thread.
    runtime: OnceLock<Option<tokio::runtime::Runtime>>,
}

impl BatchPool {
    /// A pool of `threads` threads, or none when there would be only one
    /// (one vCPU, or `BATCH_CONCURRENCY=1`): records then stay on the
    /// invocation's thread, as they would gain nothing from another.
    pub fn with_threads(threads: usize) -> Option<BatchPool> {
        (threads > 1).then(|| BatchPool {
            threads,
            runtime: OnceLock::new(),
        })
    }

    /// One thread per full vCPU the function has, at most `concurrency`
    /// (the records of a batch decided at a time). Lambda shows two vCPUs
    /// at every size but shares the CPU by memory — a full vCPU per 1,769 MB
    /// — so the pool starts only from 3,538 MB; below, a second thread
    /// would only contend for the same share.
    pub fn for_batches(concurrency: usize, memory_mb: Option<u64>) -> Option<BatchPool> {
        let visible = std::thread::available_parallelism().map_or(1, |n| n.get());
        let full = match memory_mb {
            Some(mb) => usize::try_from(mb / MB_PER_VCPU).unwrap_or(usize::MAX),
            None => visible,
        };
        Self::with_threads(visible.min(full).min(concurrency))
    }

    /// Runs `future` on the pool (on the caller's task if the pool could not
    /// start). A panic in it resumes on the caller, as if it had run there.
    /// Dropping the returned future does not stop `future`: it runs to its
    /// end on the pool (nothing in Lambda mode drops a batch half-way).
    pub(crate) async fn run<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let Some(runtime) = self.runtime() else {
            return future.await;
        };
        match runtime.spawn(future).await {
            Ok(output) => output,
            Err(err) => match err.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // Only a runtime shutting down cancels its tasks, and the
                // pool lives as long as the function.
                Err(err) => panic!("batch pool task cancelled: {err}"),
            },
        }
    }

    fn runtime(&self) -> Option<&tokio::runtime::Runtime> {
        self.runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(self.threads)
                    .thread_name("batch")
                    .enable_all()
                    .build()
                    .inspect_err(|err| tracing::warn!(error = %err, "no batch threads: records are decided one thread"))
                    .ok()
            })
            .as_ref()
    }
}

impl Drop for BatchPool {
    /// Dropped inside the function's own runtime: a runtime may not block
    /// there waiting for its threads.
    fn drop(&mut self) {
        if let Some(Some(runtime)) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thread_is_no_pool() {
        assert!(BatchPool::with_threads(1).is_none());
        assert!(BatchPool::with_threads(0).is_none());
        assert!(
            BatchPool::for_batches(1, None).is_none(),
            "BATCH_CONCURRENCY=1 keeps records on one thread"
        );
        assert!(
            BatchPool::for_batches(4, Some(3537)).is_none(),
            "less than two full vCPUs: no second thread"
        );
        assert!(BatchPool::for_batches(4, Some(256)).is_none());
    }

    /// Work goes to the pool's threads, and the pool can be dropped inside
    /// an async context (where the function drops it).
    #[tokio::test(flavor = "current_thread")]
    async fn runs_on_its_own_threads_and_drops_in_async_context() {
        let pool = BatchPool::with_threads(2).expect("two threads");
        let caller = std::thread::current().id();
        let names: Vec<(std::thread::ThreadId, Option<String>)> = futures::future::join_all((0..4).map(|_| {
            pool.run(async {
                let thread = std::thread::current();
                (thread.id(), thread.name().map(str::to_string))
            })
        }))
        .await;
        assert_eq!(names.len(), 4);
        for (id, name) in names {
            assert_ne!(id, caller, "a record ran on the invocation's thread");
            assert_eq!(name.as_deref(), Some("batch"));
        }
        drop(pool);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panic_resumes_on_the_caller() {
        let pool = BatchPool::with_threads(2).expect("two threads");
        let caught = tokio::spawn(async move { pool.run(async { panic!("in a record") }).await }).await;
        let panic = caught.expect_err("the panic reached the caller").into_panic();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"in a record"));
    }
}
