//! Lambda mode when `AWS_LAMBDA_RUNTIME_API` is set, the CLI otherwise.

use clap::Parser;

use alert_responder::cli::Cli;
use alert_responder::config::Config;
use alert_responder::tls::TrustedRoots;
use alert_responder::{app, lambda};

fn main() -> std::process::ExitCode {
    // Before the runtime starts its threads: this sets an environment variable.
    alert_responder::process::keep_backtraces_for_panics();
    alert_responder::process::disable_transparent_huge_pages();
    let runtime_api = std::env::var("AWS_LAMBDA_RUNTIME_API");
    let roots = TrustedRoots::for_process(runtime_api.is_ok(), alert_responder::process::ca_roots_named());
    alert_responder::tls::trust(roots);
    if roots == TrustedRoots::System {
        alert_responder::process::prefer_single_ca_bundle();
    }
    match runtime_api {
        // Lambda hands a sandbox one event at a time, and the actions of a
        // round run concurrently on one thread: worker threads would only add
        // start-up time and per-thread allocator heaps.
        Ok(api) => runtime(tokio::runtime::Builder::new_current_thread()).block_on(lambda_main(api)),
        Err(_) => runtime(tokio::runtime::Builder::new_multi_thread()).block_on(cli_main()),
    }
}

fn runtime(mut builder: tokio::runtime::Builder) -> tokio::runtime::Runtime {
    builder.enable_all().build().expect("tokio runtime")
}

async fn lambda_main(runtime_api: String) -> std::process::ExitCode {
    // JSON lines for CloudWatch; RUST_LOG / LOG_LEVEL filter them.
    let level = std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".to_string());
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(alert_responder::process::log_filter(&level, "info"))
        .with_current_span(true)
        .without_time()
        .with_target(false)
        .init();
    let init = async {
        let config = Config::from_env()?;
        let parts = app::lambda_init(&config).await?;
        let settings = lambda::LambdaSettings {
            routing: config.schemas,
            batch_concurrency: config.batch_concurrency,
            interactions: parts.interactions,
        };
        Ok::<_, app::InitError>((parts.responder, settings, parts.refresher))
    };
    // A panic deciding a record of an SQS batch spares its batch-mates.
    alert_responder::crash::install_hook();
    let (responder, settings, refresher) = match init.await {
        Ok(ready) => ready,
        Err(err) => {
            tracing::error!(error = %err, "init failed");
            lambda::report_init_error(&runtime_api, &err).await;
            return std::process::ExitCode::FAILURE;
        }
    };
    match lambda::serve(responder, settings, refresher).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "runtime stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn cli_main() -> std::process::ExitCode {
    // A usage error exits 1 (as a setup error does; the README's contract):
    // clap's own code, 2, is `run`'s "a message was rejected".
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return match err.use_stderr() {
                true => std::process::ExitCode::FAILURE,
                false => std::process::ExitCode::SUCCESS, // --help, --version
            };
        }
    };
    // Colour only for a person at a terminal: a file or a pipe gets plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_env_filter(alert_responder::process::log_filter(cli.log_level(), "warn"))
        .with_target(false)
        .init();
    match cli.command.run().await {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
