//! `replay`: re-decides recorded changes with candidate policies on every
//! core and reports how the decisions differ from the baseline.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::args::{policy_source_line, PolicyArgs};
use crate::app;
use crate::aws::{sdk_config, S3};
use crate::config::{Config, PolicySource, S3Uri, SchemaRouting};
use crate::decide::Decider;
use crate::policy::PolicySet;
use crate::replay::input::{chunks, decode, local_files, Chunk, Decoded, Source};
use crate::replay::report::{html, Report};
use crate::replay::Replayer;
use crate::secrets::SecretResolver;

#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// What to replay: a file or directory (recursively), or an s3:// prefix, of decision records, SNS events, on-failure records or payloads (JSON or JSON lines, gzip or not).
    #[arg(long, value_name = "PATH")]
    pub from: String,
    /// The candidate policies.
    #[command(flatten)]
    pub policies: PolicyArgs,
    /// Compare with these policies, decided the same way, instead of the recorded decisions (needed for inputs that are not decision records).
    #[arg(long, value_name = "DIR")]
    pub baseline: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write a self-contained HTML report (a side-by-side table per changed alert).
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// How many differences to show in detail (and keep in the reports).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub limit: usize,
    /// Exit 1 when any decision differs (for CI on a policy repository).
    #[arg(long)]
    pub fail_on_divergence: bool,
    /// Schema of payloads that name none; overrides DEFAULT_SCHEMA.
    #[arg(long, short = 's', value_name = "SCHEMA")]
    pub schema: Option<String>,
    /// Decisions run at once (default: one per core).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
}

/// Changes handed to a worker at a time.
const BATCH: usize = 256;
/// Differences kept for the HTML report at least.
const REPORT_DIFFERENCES: usize = 200;

/// Exit codes: 0 replayed (1 with --fail-on-divergence when a decision differs).
pub async fn run(args: ReplayArgs) -> anyhow::Result<i32> {
    let mut config = Config::from_env()?;
    args.policies.apply(&mut config);
    if let Some(schema) = &args.schema {
        config.schemas.default = schema.clone();
    }
    eprintln!("{}", policy_source_line(&config)?);
    let candidate = app::policies(&config)?;
    let baseline = match &args.baseline {
        Some(dir) => Some(
            app::compile_options(&config).apply(
                PolicySet::load(&PolicySource::Dir(dir.clone()), config.policy_timeout)
                    .with_context(|| format!("baseline policies in {}", dir.display()))?,
            ),
        ),
        None => None,
    };
    let candidate_label = format!("{} ({})", source_label(&config.policies), candidate.digest());
    let baseline_label = match (&args.baseline, &baseline) {
        (Some(dir), Some(set)) => format!("{} ({})", dir.display(), set.digest()),
        _ => "the recorded decisions".to_string(),
    };
    let sources = read_sources(&args.from).await?;
    anyhow::ensure!(
        !sources.is_empty(),
        "{}: nothing to replay (no file or object)",
        args.from
    );

    let decider = Decider::new(
        Arc::new(candidate.clone()),
        app::registry(&config, None),
        app::decide_settings(&config),
        SecretResolver::passthrough(),
        None,
    );
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let keep = args
        .limit
        .max(if args.report.is_some() { REPORT_DIFFERENCES } else { 0 });
    let started = Instant::now();
    let replayer = Replayer {
        decider: &decider,
        candidate: &candidate,
        baseline: baseline.as_ref(),
    };
    let mut report = run_workers(
        &replayer,
        sources,
        &config.schemas,
        jobs,
        keep,
        &candidate_label,
        &baseline_label,
    )?;
    report.keep = keep;
    let elapsed = started.elapsed();
    eprintln!(
        "replayed {} change(s) in {:.2} s ({:.0}/s, {jobs} worker(s))",
        report.changes,
        elapsed.as_secs_f64(),
        report.changes as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    // The page first: it keeps more differences than `--limit` shows.
    if let Some(path) = &args.report {
        std::fs::write(path, html(&report)).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    if args.json {
        report.differences.truncate(args.limit);
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text(args.limit));
    }
    Ok(if args.fail_on_divergence && report.differing > 0 {
        1
    } else {
        0
    })
}

fn source_label(source: &PolicySource) -> String {
    match source {
        PolicySource::Bundled => "the bundled starter kit".to_string(),
        PolicySource::Dir(dir) => dir.display().to_string(),
    }
}

/// The files or objects of `from`.
async fn read_sources(from: &str) -> anyhow::Result<Vec<Source>> {
    if from.starts_with("s3://") {
        let prefix = S3Uri::parse(from).map_err(|reason| anyhow::anyhow!("{from}: {reason}"))?;
        let s3 = S3::new(&sdk_config());
        let mut sources = Vec::new();
        // "Folder" markers are not inputs.
        for key in s3.list(&prefix).await?.into_iter().filter(|k| !k.ends_with('/')) {
            let uri = S3Uri {
                bucket: prefix.bucket.clone(),
                key,
            };
            let fetched = s3
                .get(&uri, None)
                .await?
                .expect("an unconditional GET returns the object");
            sources.push(Source {
                origin: uri.to_string(),
                bytes: fetched.body,
            });
        }
        return Ok(sources);
    }
    let mut sources = Vec::new();
    for path in local_files(std::path::Path::new(from))? {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        sources.push(Source {
            origin: path.display().to_string(),
            bytes,
        });
    }
    Ok(sources)
}

/// Reads the sources on one thread and decides their changes on `jobs`
/// others, each with its own runtime; stops at the first bad input.
fn run_workers(
    replayer: &Replayer<'_>,
    sources: Vec<Source>,
    routing: &SchemaRouting,
    jobs: usize,
    keep: usize,
    candidate: &str,
    baseline: &str,
) -> anyhow::Result<Report> {
    // The error of the earliest input that failed (workers race).
    let failed: Mutex<Option<(usize, anyhow::Error)>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let done = AtomicUsize::new(0);
    let fail = |seq: usize, err: anyhow::Error| {
        stop.store(true, Ordering::SeqCst);
        let mut failed = failed.lock().expect("not poisoned");
        if failed.as_ref().is_none_or(|(first, _)| seq < *first) {
            *failed = Some((seq, err));
        }
    };
    let reports: Vec<Report> = std::thread::scope(|scope| {
        let (send, receive) = mpsc::sync_channel::<Vec<(usize, Chunk)>>(jobs * 2);
        let receive = Arc::new(Mutex::new(receive));
        let (sources, fail_reader, stop_reader) = (&sources, &fail, &stop);
        scope.spawn(move || {
            let mut seq = 0;
            for source in sources {
                let read = match chunks(source) {
                    Ok(read) => read,
                    Err(err) => return fail_reader(seq + 1, err.into()),
                };
                for batch in read.chunks(BATCH) {
                    if stop_reader.load(Ordering::SeqCst) {
                        return;
                    }
                    let numbered = batch
                        .iter()
                        .map(|chunk| {
                            seq += 1;
                            (seq, chunk.clone())
                        })
                        .collect();
                    // Fails once every worker stopped (the receiver is gone).
                    if send.send(numbered).is_err() {
                        return;
                    }
                }
            }
        });
        let progress = std::io::stderr().is_terminal().then(|| {
            scope.spawn(|| {
                let started = Instant::now();
                while !stop.load(Ordering::SeqCst) {
                    std::thread::park_timeout(Duration::from_millis(200));
                    let n = done.load(Ordering::Relaxed);
                    eprint!(
                        "\rreplaying: {n} change(s), {:.0}/s ",
                        n as f64 / started.elapsed().as_secs_f64().max(1e-9)
                    );
                }
                eprint!("\r\x1b[K");
            })
        });
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                let receive = receive.clone();
                let (fail, stop, done) = (&fail, &stop, &done);
                scope.spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime");
                    let mut report = Report::new(candidate.to_string(), baseline.to_string(), keep);
                    loop {
                        let batch = match receive.lock().expect("not poisoned").recv() {
                            Ok(batch) => batch,
                            Err(_) => break,
                        };
                        for (seq, chunk) in batch {
                            if stop.load(Ordering::SeqCst) {
                                return report;
                            }
                            let changes = match decode(&chunk, routing) {
                                Ok(Decoded::Changes(changes)) => changes,
                                Ok(Decoded::Skipped(_)) => {
                                    report.skipped += 1;
                                    continue;
                                }
                                Err(err) => {
                                    fail(seq, err.into());
                                    return report;
                                }
                            };
                            for (index, change) in changes.iter().enumerate() {
                                match runtime.block_on(replayer.replay(seq * 1000 + index, change, None)) {
                                    Ok(compared) => report.add(compared),
                                    Err(err) => {
                                        fail(seq, err.into());
                                        return report;
                                    }
                                }
                                done.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    report
                })
            })
            .collect();
        // The workers hold the receiver now: when they all stop, the reader's sends fail.
        drop(receive);
        let joined: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        // Stopped before any panic is passed on, or the progress line would spin.
        stop.store(true, Ordering::SeqCst);
        if let Some(progress) = progress {
            progress.thread().unpark();
            let _ = progress.join();
        }
        joined
            .into_iter()
            .map(|report| report.unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    if let Some((_, err)) = failed.into_inner().expect("not poisoned") {
        return Err(err);
    }
    let mut total = Report::new(candidate.to_string(), baseline.to_string(), keep);
    for report in reports {
        total.merge(report);
    }
    Ok(total)
}
