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
//! - `AWS_ENDPOINT_URL`, which points every client at a local endpoint,
//!   and `AWS_ENDPOINT_URL_<SERVICE>` (`SNS`, `DYNAMODB`, `SECRETS_MANAGER`,
//!   `S3`, `SCHEDULER`, `LAMBDA`), which points one service and wins over
//!   it; `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true` ignores them all. The
//!   SDKs read the same variables.
//!
//! Locally with a profile or SSO, export the credentials first:
//! `eval "$(aws configure export-credentials --format env)"`.

use aws_credential_types::provider::{error::CredentialsError, future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_types::region::Region;
use aws_types::service_config::{LoadServiceConfig, ServiceConfigKey};
use aws_types::SdkConfig;

/// The services this function calls, by the service id the SDKs name
/// their endpoint variables after (`AWS_ENDPOINT_URL_SECRETS_MANAGER`),
/// and their signing names.
const SERVICES: [(&str, &str); 6] = [
    ("sns", "SNS"),
    ("dynamodb", "DYNAMODB"),
    ("secretsmanager", "SECRETS_MANAGER"),
    ("s3", "S3"),
    ("scheduler", "SCHEDULER"),
    ("lambda", "LAMBDA"),
];

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
    let ignored = get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if ignored {
        return builder.build();
    }
    if let Some(url) = get("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(url);
    }
    let per_service: Vec<(&'static str, String)> = SERVICES
        .iter()
        .filter_map(|(_, id)| get(&format!("AWS_ENDPOINT_URL_{id}")).map(|url| (*id, url)))
        .collect();
    if !per_service.is_empty() {
        builder = builder.service_config(ServiceEndpoints(per_service));
    }
    builder.build()
}

/// The endpoint of the service signed as `service` (`sns`, `dynamodb`):
/// its own variable's, else `AWS_ENDPOINT_URL`'s; none means AWS's.
pub fn endpoint_of<'a>(sdk: &'a SdkConfig, service: &str) -> Option<std::borrow::Cow<'a, str>> {
    let id = SERVICES.iter().find(|(name, _)| *name == service).map(|(_, id)| *id);
    let own = sdk.service_config().zip(id).and_then(|(config, id)| {
        config.load_config(
            ServiceConfigKey::builder()
                .service_id(id)
                .env("AWS_ENDPOINT_URL")
                .profile("endpoint_url")
                .build()
                .ok()?,
        )
    });
    match own {
        Some(url) => Some(std::borrow::Cow::Owned(url)),
        None => sdk.endpoint_url().map(std::borrow::Cow::Borrowed),
    }
}

/// The `AWS_ENDPOINT_URL_<SERVICE>` values, by the service's variable id
/// (`SECRETS_MANAGER`). The SDK's own clients (tests build them on this
/// configuration) ask by their service id (`Secrets Manager`), which the
/// variable id is made from: upper case, spaces as underscores.
#[derive(Debug)]
struct ServiceEndpoints(Vec<(&'static str, String)>);

impl LoadServiceConfig for ServiceEndpoints {
    fn load_config(&self, key: ServiceConfigKey<'_>) -> Option<String> {
        if key.env() != "AWS_ENDPOINT_URL" {
            return None;
        }
        let id = key.service_id().to_ascii_uppercase().replace(' ', "_");
        self.0.iter().find(|(own, _)| *own == id).map(|(_, url)| url.clone())
    }
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

    #[test]
    fn a_service_endpoint_wins_over_the_shared_one_and_both_can_be_ignored() {
        let vars = [
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:8000"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:4566"),
        ];
        let sdk = config(&vars);
        let of = |service| endpoint_of(&sdk, service).map(|url| url.into_owned());
        assert_eq!(of("dynamodb").as_deref(), Some("http://127.0.0.1:8000"));
        assert_eq!(of("secretsmanager").as_deref(), Some("http://127.0.0.1:4566"));
        assert_eq!(of("sns").as_deref(), Some("http://127.0.0.1:5000"));
        let only_lambda = config(&[("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:9")]);
        assert_eq!(
            endpoint_of(&only_lambda, "lambda").as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(endpoint_of(&only_lambda, "scheduler"), None);
        // As the SDK's own clients ask, by their service id.
        let by_sdk_id = sdk.service_config().unwrap().load_config(
            ServiceConfigKey::builder()
                .service_id("Secrets Manager")
                .env("AWS_ENDPOINT_URL")
                .profile("endpoint_url")
                .build()
                .unwrap(),
        );
        assert_eq!(by_sdk_id.as_deref(), Some("http://127.0.0.1:4566"));
        let ignored = config(&[vars[0], vars[1], ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE")]);
        assert_eq!(endpoint_of(&ignored, "dynamodb"), None);
        assert_eq!(endpoint_of(&ignored, "sns"), None);
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
