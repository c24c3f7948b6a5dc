//! Driving the real binary in Lambda mode: a loopback Runtime API.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::process::{Child, Command};

use super::{Recorded, Reply, TestServer};

pub const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

/// A Runtime API that hands out `event` once, then long-polls forever.
pub async fn runtime_api(event: Value) -> TestServer {
    runtime_api_serving(vec![event]).await
}

/// The request id of the `index`th invocation of [`runtime_api_serving`]
/// (the first is [`REQUEST_ID`]).
pub fn request_id(index: usize) -> String {
    match index {
        0 => REQUEST_ID.to_string(),
        n => format!("{}{n:012}", &REQUEST_ID[..REQUEST_ID.len() - 12]),
    }
}

/// A Runtime API that hands out `events` one invocation each, in order,
/// then long-polls forever.
pub async fn runtime_api_serving(events: Vec<Value>) -> TestServer {
    let next = AtomicUsize::new(0);
    TestServer::start(move |req: &Recorded| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/2018-06-01/runtime/invocation/next") if next.load(Ordering::SeqCst) < events.len() => {
            let index = next.fetch_add(1, Ordering::SeqCst);
            let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() + 60_000;
            Reply::json(200, events[index].clone())
                .with_header("lambda-runtime-aws-request-id", &request_id(index))
                .with_header("lambda-runtime-deadline-ms", &deadline.to_string())
                .with_header(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:alert-responder",
                )
                .with_header(
                    "lambda-runtime-trace-id",
                    "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
                )
        }
        ("GET", _) => Reply::Hang,
        _ => Reply::json(202, json!({"status": "OK"})),
    })
    .await
}

/// The binary run in Lambda mode: this build's, or the one `LAMBDA_BINARY`
/// names (the arm64 release artifact, `scripts/release --test`), started
/// through `LAMBDA_BINARY_RUNNER` (e.g. `qemu-aarch64`) when that is set.
pub fn lambda_command() -> Command {
    let Some(binary) = std::env::var_os("LAMBDA_BINARY") else {
        return Command::new(env!("CARGO_BIN_EXE_alert-responder"));
    };
    assert!(
        std::path::Path::new(&binary).is_file(),
        "LAMBDA_BINARY names no file: {binary:?}"
    );
    match std::env::var_os("LAMBDA_BINARY_RUNNER").filter(|r| !r.is_empty()) {
        Some(runner) => {
            let mut command = Command::new(runner);
            command.arg(binary);
            command
        }
        None => Command::new(binary),
    }
}

pub fn lambda_process(api: &TestServer, env: &[(&str, &str)]) -> Child {
    lambda_process_of(lambda_command(), api, env)
}

/// `command` started in Lambda mode against `api`, as [`lambda_process`].
pub fn lambda_process_of(mut command: Command, api: &TestServer, env: &[(&str, &str)]) -> Child {
    command
        .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "alert-responder")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("HTTP_ALLOW_PRIVATE", "true")
        .env_remove("OUTCOME_TOPIC_ARN")
        .env_remove("POLICY_DIR")
        // The built-in roots, as deployed, unless a test names others.
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    command.spawn().expect("start the binary")
}
