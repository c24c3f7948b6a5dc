//! AWS SDK configuration on one TLS stack: rustls with the `ring` provider,
//! shared with reqwest. Endpoints, region and credentials come from the SDK's
//! standard configuration, so `AWS_ENDPOINT_URL` points every client at a
//! local endpoint with no code path of our own.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

/// Makes `ring` the process-wide rustls provider (reqwest uses it). Idempotent.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Loads the shared SDK configuration.
pub async fn sdk_config() -> SdkConfig {
    install_crypto_provider();
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .load()
        .await
}

/// An SDK error with its sources, for messages that say what went wrong.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(next) = source {
        let text = next.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = next.source();
    }
    message
}

/// An SNS client made on first use, so local runs that never touch SNS never
/// look for a region or credentials.
#[derive(Default)]
pub struct LazySnsClient {
    client: tokio::sync::OnceCell<aws_sdk_sns::Client>,
}

impl LazySnsClient {
    pub async fn get(&self) -> &aws_sdk_sns::Client {
        self.client
            .get_or_init(|| async { aws_sdk_sns::Client::new(&sdk_config().await) })
            .await
    }
}

impl crate::action::sns::TopicPublisher for LazySnsClient {
    fn publish<'a>(
        &'a self,
        topic_arn: &'a str,
        subject: Option<&'a str>,
        message: &'a str,
        attributes: &'a std::collections::BTreeMap<String, String>,
    ) -> futures::future::BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let client = self.get().await;
            crate::action::sns::TopicPublisher::publish(client, topic_arn, subject, message, attributes).await
        })
    }
}
