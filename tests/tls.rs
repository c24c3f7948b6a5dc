//! Actions and AWS calls over HTTPS, as production makes them: rustls on
//! `ring`, the one TLS configuration both clients share, over the roots
//! `SSL_CERT_FILE` names (or, in Lambda mode without it, the built-in ones). Every other test endpoint is plain HTTP on
//! loopback; here a loopback server speaks TLS with a certificate from a
//! test CA (tests/fixtures/tls).

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use common::lambda::{lambda_process, runtime_api, REQUEST_ID};
use common::{matano_sns_event, TestServer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// An HTTPS server on loopback answering every request 200: SNS's answer to
/// a `PublishBatch` (every entry published), an intel answer to anything
/// else; the request lines it completed (after a handshake), with the SNS
/// action, and how many connections it accepted (handshakes tried).
struct HttpsServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
}

impl HttpsServer {
    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn https_server() -> HttpsServer {
    let certs = CertificateDer::pem_file_iter(fixture("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    let connections = Arc::new(AtomicUsize::new(0));
    let accepted = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            accepted.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                // A client that does not trust the certificate ends here.
                let Ok(tls) = acceptor.accept(stream).await else { return };
                let mut reader = BufReader::new(tls);
                let mut line = String::new();
                if reader.read_line(&mut line).await.is_err() {
                    return;
                }
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).await.is_err() || header == "\r\n" || header.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body).await;
                let form = String::from_utf8_lossy(&body);
                let (seen_as, content_type, answer) = match form.contains("Action=PublishBatch") {
                    true => (
                        format!("{} PublishBatch", line.trim_end()),
                        "text/xml",
                        publish_batch_answer(&form),
                    ),
                    false => (
                        line.trim_end().to_string(),
                        "application/json",
                        r#"{"country": "RO", "org": "AS0 Test"}"#.to_string(),
                    ),
                };
                seen.lock().unwrap().push(seen_as);
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    answer.len()
                );
                let mut tls = reader.into_inner();
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    HttpsServer {
        port,
        requests,
        connections,
    }
}

/// SNS's answer to a `PublishBatch` form: every entry published.
fn publish_batch_answer(form: &str) -> String {
    let successful: String = form
        .split('&')
        .filter_map(|field| field.split_once('='))
        .filter(|(key, _)| key.starts_with("PublishBatchRequestEntries.member.") && key.ends_with(".Id"))
        .map(|(_, id)| format!("<member><Id>{id}</Id><MessageId>msg-{id}</MessageId></member>"))
        .collect();
    format!(
        "<PublishBatchResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishBatchResult>\
         <Successful>{successful}</Successful><Failed/></PublishBatchResult>\
         <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishBatchResponse>"
    )
}

/// `run` on the bundled sample, its intel lookup and webhook on `server`,
/// with `SSL_CERT_FILE` as given (unset: the system's bundle).
fn run_command(server: &HttpsServer, cert_file: Option<PathBuf>) -> Command {
    let base = format!("https://localhost:{}", server.port);
    let mut command = Command::new(env!("CARGO_BIN_EXE_alert-responder"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--env", &format!("INTEL_URL={base}"), "--env"])
        .arg(format!("WEBHOOK_URL={base}/hook"))
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env_remove("POLICY_DIR")
        .env_remove("POLICY_ENV")
        .env_remove("OUTCOME_TOPIC_ARN")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env("HTTP_ALLOW_HOSTS", "localhost")
        // Retries allowed: a refused certificate must not use them.
        .env("HTTP_MAX_RETRIES", "2");
    if let Some(path) = cert_file {
        command.env("SSL_CERT_FILE", path);
    }
    command
}

/// [`run_command`]'s outcomes, printed.
async fn run_against(server: &HttpsServer, cert_file: Option<PathBuf>) -> Vec<Value> {
    let output = run_command(server, cert_file).output().await.unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

/// [`run_command`] publishing its outcomes to SNS, whose endpoint is `server` too.
async fn run_publishing_to(server: &HttpsServer, cert_file: Option<PathBuf>) -> std::process::Output {
    let mut command = run_command(server, cert_file);
    command
        .args(["--sns", "--log-level", "debug"])
        .env("OUTCOME_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:outcomes")
        .env("AWS_ENDPOINT_URL", format!("https://localhost:{}", server.port))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE");
    command.output().await.unwrap()
}

fn statuses(outcomes: &[Value]) -> Vec<(String, String)> {
    outcomes
        .iter()
        .map(|o| {
            (
                o["action"]["id"].as_str().unwrap_or_default().to_string(),
                o["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn actions_reach_a_server_whose_ca_is_in_ssl_cert_file() {
    let server = https_server().await;
    let outcomes = run_against(&server, Some(fixture("ca.pem"))).await;
    assert_eq!(
        statuses(&outcomes),
        [
            ("lookup_ip_185.220.101.4".to_string(), "succeeded".to_string()),
            ("notify_webhook".to_string(), "succeeded".to_string()),
        ],
        "{outcomes:?}"
    );
    assert_eq!(outcomes[0]["result"]["body"]["country"], "RO");
    assert_eq!(
        *server.requests.lock().unwrap(),
        ["GET /185.220.101.4/json HTTP/1.1", "POST /hook HTTP/1.1"]
    );
}

#[tokio::test]
async fn a_certificate_no_trusted_ca_signed_is_refused() {
    let server = https_server().await;
    // The system's bundle (what `process.rs` points at) lacks the test CA.
    let outcomes = run_against(&server, None).await;
    let lookup = &outcomes[0];
    assert_eq!(lookup["status"], "failed", "{lookup}");
    let error = lookup["error"].as_str().unwrap();
    assert!(
        error.contains("the server's certificate was refused: invalid peer certificate"),
        "{error}"
    );
    assert!(
        server.requests.lock().unwrap().is_empty(),
        "no request got past the handshake"
    );
    // Each action tried once: trying again cannot help.
    let failed = outcomes.iter().filter(|o| o["status"] == "failed").count();
    assert_eq!(server.connections(), failed, "{outcomes:#?}");
}

#[tokio::test]
async fn outcomes_reach_sns_over_https() {
    let server = https_server().await;
    let output = run_publishing_to(&server, Some(fixture("ca.pem"))).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let requests = server.requests.lock().unwrap().clone();
    assert_eq!(
        requests[..2],
        ["GET /185.220.101.4/json HTTP/1.1", "POST /hook HTTP/1.1"]
    );
    assert!(
        requests[2..].iter().all(|r| r == "POST / HTTP/1.1 PublishBatch"),
        "{requests:?}"
    );
}

#[tokio::test]
async fn sns_behind_a_certificate_no_trusted_ca_signed_is_not_published_to() {
    let server = https_server().await;
    let output = run_publishing_to(&server, None).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "published without trusting the certificate: {stderr}"
    );
    let failure = stderr
        .lines()
        .find(|l| l.starts_with("error: publishing"))
        .unwrap_or_default();
    assert!(failure.contains("invalid peer certificate"), "{stderr}");
    assert!(
        server.requests.lock().unwrap().is_empty(),
        "no request got past the handshake"
    );
    // The publish tried once (not four times), beside the two actions' one each.
    assert_eq!(server.connections(), 3, "{stderr}");
}

/// What one Lambda invocation posted and logged.
struct Invocation {
    /// `"response"` or `"error"`.
    posted: String,
    body: Value,
    /// Which roots the process loaded, from its "TLS roots loaded" lines.
    roots_loaded: Vec<String>,
}

/// The `roots` field of every "TLS roots loaded" log line in `logs`
/// (the CLI's `roots="…"`, Lambda's JSON `"roots":"…"`).
fn roots_loaded(logs: &str) -> Vec<String> {
    logs.lines()
        .filter(|line| line.contains("TLS roots loaded"))
        .map(|line| {
            let (_, value) = line
                .split_once("roots=\"")
                .or_else(|| line.split_once("\"roots\":\""))
                .unwrap_or_else(|| panic!("no roots field: {line}"));
            value.split('"').next().unwrap().to_string()
        })
        .collect()
}

/// One Lambda invocation of the sample change (a webhook, no lookups),
/// its webhook and its outcomes' SNS both on `server`.
async fn lambda_invocation_against(server: &HttpsServer, cert_file: Option<PathBuf>) -> Invocation {
    let api: TestServer = runtime_api(matano_sns_event("high", &[])).await;
    let base = format!("https://localhost:{}", server.port);
    let webhook = format!("{base}/hook");
    let cert_file = cert_file.map(|path| path.to_string_lossy().into_owned());
    let mut env = vec![
        ("OUTCOME_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:outcomes"),
        ("AWS_ENDPOINT_URL", base.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("POLICY_ENV", "WEBHOOK_URL"),
        ("WEBHOOK_URL", webhook.as_str()),
        ("HTTP_ALLOW_HOSTS", "localhost"),
        ("HTTP_MAX_RETRIES", "0"),
        ("LOG_LEVEL", "debug"),
    ];
    if let Some(path) = &cert_file {
        env.push(("SSL_CERT_FILE", path.as_str()));
    }
    let mut child = lambda_process(&api, &env);
    // next, the response or error, then the next long poll.
    let requests = api.wait_for(3, Duration::from_secs(30)).await;
    let path = format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/");
    let answer = requests
        .iter()
        .find(|r| r.path.starts_with(&path))
        .unwrap_or_else(|| panic!("nothing posted for the invocation: {requests:#?}"));
    child.kill().await.unwrap();
    let mut logs = String::new();
    child.stdout.take().unwrap().read_to_string(&mut logs).await.unwrap();
    Invocation {
        posted: answer.path[path.len()..].to_string(),
        body: answer.json(),
        roots_loaded: roots_loaded(&logs),
    }
}

#[tokio::test]
async fn lambda_mode_trusts_the_roots_ssl_cert_file_names() {
    let server = https_server().await;
    let invocation = lambda_invocation_against(&server, Some(fixture("ca.pem"))).await;
    let body = &invocation.body;
    assert_eq!(invocation.posted, "response", "{body}");
    assert_eq!(body["actions"], 1);
    assert_eq!(body["failed_actions"], 0, "{body}");
    // Loaded once for the action's client and the AWS client both.
    assert_eq!(invocation.roots_loaded, ["system"]);
    assert_eq!(
        *server.requests.lock().unwrap(),
        ["POST /hook HTTP/1.1", "POST / HTTP/1.1 PublishBatch"]
    );
}

#[tokio::test]
async fn lambda_mode_without_named_roots_trusts_only_the_built_in_ones() {
    let server = https_server().await;
    // Mozilla's roots (compiled in) do not include the test CA: neither the
    // action nor the publish gets past the handshake, and the invocation
    // fails so that Lambda retries it.
    let invocation = lambda_invocation_against(&server, None).await;
    let body = &invocation.body;
    assert_eq!(invocation.posted, "error", "{body}");
    assert_eq!(invocation.roots_loaded, ["built-in"]);
    assert_eq!(body["errorType"], "AlertResponder.PublishError", "{body}");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("invalid peer certificate"),
        "{body}"
    );
    assert!(server.requests.lock().unwrap().is_empty());
    // The webhook and the publish tried once each.
    assert_eq!(server.connections(), 2, "{body}");
}

/// A file that is missing, empty, or holds no certificate: init fails,
/// rather than every HTTPS call with an unknown issuer.
#[tokio::test]
async fn lambda_init_fails_naming_roots_that_cannot_be_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let unreadable = [
        ("SSL_CERT_FILE", PathBuf::from("/nonexistent/ca.pem")),
        ("SSL_CERT_FILE", empty),
        ("SSL_CERT_FILE", garbage),
        ("SSL_CERT_DIR", dir.path().join("no-such-dir")),
    ];
    for (variable, path) in unreadable {
        let api: TestServer = runtime_api(matano_sns_event("high", &[])).await;
        let path = path.to_string_lossy().into_owned();
        let _child = lambda_process(
            &api,
            &[
                ("OUTCOME_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:outcomes"),
                ("AWS_REGION", "us-east-1"),
                (variable, path.as_str()),
            ],
        );
        let requests = api.wait_for(1, Duration::from_secs(30)).await;
        assert_eq!(
            requests[0].path, "/2018-06-01/runtime/init/error",
            "{path}: {requests:#?}"
        );
        let message = requests[0].json()["errorMessage"].as_str().unwrap().to_string();
        assert!(
            message.starts_with("TLS: no root certificates could be loaded from SSL_CERT_FILE"),
            "{path}: {message}"
        );
    }
}
