//! webhook-receiver: an HTTPS endpoint (behind your TLS terminator) for
//! alert-responder's outcome topic.
//!
//! ALLOWED_TOPIC_ARNS  comma-separated outcome topic ARNs to accept (required)
//! FORWARD_URL         Slack incoming webhook receiving one message per outcome (required)
//! LISTEN              address to listen on (default 0.0.0.0:8080)

use webhook_receiver::{serve, HttpsCertificates, Receiver, SlackWebhook};

fn main() -> std::process::ExitCode {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let (Some(topics), Some(forward)) = (var("ALLOWED_TOPIC_ARNS"), var("FORWARD_URL")) else {
        eprintln!("webhook-receiver: set ALLOWED_TOPIC_ARNS and FORWARD_URL");
        return std::process::ExitCode::from(2);
    };
    let listen = var("LISTEN").unwrap_or_else(|| "0.0.0.0:8080".to_string());
    let receiver = Receiver::new(
        topics.split(',').map(|t| t.trim().to_string()),
        Box::new(HttpsCertificates::default()),
        Box::new(SlackWebhook::new(forward)),
    );
    let server = match tiny_http::Server::http(&listen) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("webhook-receiver: cannot listen on {listen}: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    eprintln!("webhook-receiver: listening on {listen}");
    serve(&server, &receiver);
    std::process::ExitCode::SUCCESS
}
