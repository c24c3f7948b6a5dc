//! Lambda mode when `AWS_LAMBDA_RUNTIME_API` is set, the CLI otherwise.

use clap::Parser;

use alert_responder::cli::{self, Cli, Command};
use alert_responder::config::Config;
use alert_responder::lambda;

fn main() -> std::process::ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match std::env::var("AWS_LAMBDA_RUNTIME_API") {
        Ok(api) => runtime.block_on(lambda_main(api)),
        Err(_) => runtime.block_on(cli_main()),
    }
}

async fn lambda_main(runtime_api: String) -> std::process::ExitCode {
    // JSON lines for CloudWatch; RUST_LOG / LOG_LEVEL filter them.
    let filter = std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".to_string());
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(true)
        .without_time()
        .with_target(false)
        .init();
    let init = async {
        let config = Config::from_env()?;
        let responder = lambda::init(&config).await?;
        Ok::<_, lambda::InitError>((responder, config.default_schema))
    };
    let (responder, default_schema) = match init.await {
        Ok(ready) => ready,
        Err(err) => {
            tracing::error!(error = %err, "init failed");
            lambda::report_init_error(&runtime_api, &err).await;
            return std::process::ExitCode::FAILURE;
        }
    };
    match lambda::serve(responder, default_schema).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "runtime stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn cli_main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(cli.log_level())
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_target(false)
        .init();
    let result = match cli.command {
        Command::Run(args) => cli::run::run(args).await,
        Command::Check(args) => cli::check::run(args).await,
        Command::Test(args) => cli::test::run(args).await,
        Command::Play(args) => cli::play::run(args).await,
    };
    match result {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
