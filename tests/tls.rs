//! Actions over HTTPS, as production calls vendors: rustls on `ring`, the
//! platform verifier, and the CA bundle named by `SSL_CERT_FILE`. Every
//! other test endpoint is plain HTTP on loopback; here a loopback server
//! speaks TLS with a certificate from a test CA (tests/fixtures/tls).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;
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

/// An HTTPS server on loopback answering every request 200 with an intel
/// answer; the request lines it completed (after a handshake).
struct HttpsServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
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
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
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
                seen.lock().unwrap().push(line.trim_end().to_string());
                let answer = br#"{"country": "RO", "org": "AS0 Test"}"#;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    answer.len()
                );
                let mut tls = reader.into_inner();
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(answer).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    HttpsServer { port, requests }
}

/// `run` on the bundled sample, its intel lookup and webhook on `server`,
/// with `SSL_CERT_FILE` as given (unset: the system's bundle).
async fn run_against(server: &HttpsServer, cert_file: Option<PathBuf>) -> Vec<Value> {
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
        .env("HTTP_MAX_RETRIES", "0");
    if let Some(path) = cert_file {
        command.env("SSL_CERT_FILE", path);
    }
    let output = command.output().await.unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
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
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert!(
        server.requests.lock().unwrap().is_empty(),
        "no request got past the handshake"
    );
}
