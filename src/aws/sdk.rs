//! The AWS configuration (region, credentials, endpoint) from the
//! environment, for the signed calls of every adapter (`signed`).
//!
//! The configuration is read from the environment by hand rather than by
//! `aws-config`: Lambda gives a function its region and credentials as
//! environment variables, and `aws-config`'s provider chain (profiles, SSO,
//! STS, IMDS) cost 3.4 ms of every cold start and three SDK crates of build
//! time and binary size. Read here:
//! - `AWS_REGION` (or `AWS_DEFAULT_REGION`);
//! - `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`;
//! - `AWS_ENDPOINT_URL`, which points every client at a local endpoint.
//!
//! Locally with a profile or SSO, export the credentials first:
//! `eval "$(aws configure export-credentials --format env)"`.

use aws_credential_types::provider::{error::CredentialsError, future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_types::region::Region;
use aws_types::SdkConfig;

/// The shared SDK configuration, from the process environment.
pub fn sdk_config() -> SdkConfig {
    sdk_config_from(|name| std::env::var(name).ok())
}

/// The shared SDK configuration, reading variables through `lookup`.
pub fn sdk_config_from(lookup: impl Fn(&str) -> Option<String>) -> SdkConfig {
    let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    let credentials = match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
        (Some(key), Some(secret)) => SharedCredentialsProvider::new(Credentials::new(
            key,
            secret,
            get("AWS_SESSION_TOKEN"),
            None,
            "environment",
        )),
        _ => SharedCredentialsProvider::new(NoCredentials),
    };
    let mut builder = SdkConfig::builder()
        .credentials_provider(credentials)
        .region(get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")).map(Region::new));
    if let Some(url) = get("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(url);
    }
    builder.build()
}

/// Stands in when the environment has no credentials, so a call fails
/// saying what to set instead of the SDK's generic message.
#[derive(Debug)]
struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) \
             (Lambda sets them; locally: eval \"$(aws configure export-credentials --format env)\")",
        )))
    }
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_credential_types::provider::ProvideCredentials;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> SdkConfig {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        sdk_config_from(|name| vars.get(name).cloned())
    }

    #[tokio::test]
    async fn region_credentials_and_endpoint_come_from_the_environment() {
        let sdk = config(&[
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_SESSION_TOKEN", "token"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ]);
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:5000"));
        let credentials = sdk.credentials_provider().unwrap().provide_credentials().await.unwrap();
        assert_eq!(credentials.access_key_id(), "AKIDEXAMPLE");
        assert_eq!(credentials.session_token(), Some("token"));
        // AWS_REGION wins over AWS_DEFAULT_REGION, as in the SDKs.
        let sdk = config(&[("AWS_REGION", "us-east-2"), ("AWS_DEFAULT_REGION", "eu-west-1")]);
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some("us-east-2"));
        assert_eq!(sdk.endpoint_url(), None);
    }

    #[tokio::test]
    async fn missing_credentials_say_what_to_set() {
        let sdk = config(&[("AWS_REGION", "us-east-1"), ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")]);
        let err = sdk
            .credentials_provider()
            .unwrap()
            .provide_credentials()
            .await
            .unwrap_err();
        let message = error_chain(&err);
        assert!(message.contains("AWS_SECRET_ACCESS_KEY"), "{message}");
    }
}
