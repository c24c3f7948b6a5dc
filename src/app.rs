//! Assembly: the only reader of [`Config`]. It builds the policies, the
//! action registry, the secrets resolver, the state store and the
//! responder, handing each the plain values it needs.

use std::sync::Arc;
use std::time::Duration;

use crate::action::sns::TopicPublisher;
use crate::action::Registry;
use aws_types::SdkConfig;

use crate::aws::{sdk_config, DynamoState, S3Records, SecretsManager, SnsPublisher, S3};
use crate::config::{Config, ConfigError, Location};
use crate::decide::{DecideSettings, Decider};
use crate::http::{HttpClient, HttpPolicy, HttpSettings};
use crate::memory::MemoryState;
use crate::pipeline::Responder;
use crate::play::MockedActions;
use crate::policy::{PolicyError, PolicySet};
use crate::publish::Publisher;
use crate::records::{DirRecords, RecordSink};
use crate::secrets::SecretResolver;
use crate::state::StateStore;
use crate::workflow::Limits;

/// Why the function could not start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("policies: {0}")]
    Policy(#[from] PolicyError),
    #[error("OUTCOME_TOPIC_ARN is required in Lambda mode")]
    NoOutcomeTopic,
}

/// The production policies of the configured source, on the configured engine.
pub fn policies(config: &Config) -> Result<PolicySet, PolicyError> {
    Ok(PolicySet::load(&config.policies, config.policy_timeout)?
        .with_prints(config.enable_print)
        .with_engine(config.policy_engine)
        .with_memory_budget(config.policy_memory))
}

/// The shared HTTP client's settings.
fn http_settings(config: &Config) -> HttpSettings {
    HttpSettings {
        default_timeout: config.http_timeout,
        connect_timeout: config.http_timeout.min(Duration::from_secs(5)),
        max_retries: config.http_max_retries,
        max_response_bytes: config.max_response_bytes,
        policy: HttpPolicy {
            allow_private: config.http_allow_private,
            allow_hosts: config.http_allow_hosts.clone(),
            runtime_api: config.runtime_api.clone(),
        },
        ..HttpSettings::default()
    }
}

/// The built-in actions as configured; `topics` publishes for `sns.publish`.
pub fn registry(config: &Config, topics: Option<Arc<dyn TopicPublisher>>) -> Registry {
    Registry::builtin(
        HttpClient::new(http_settings(config)),
        &config.endpoints,
        topics,
        config.outcome_topic_arn.clone(),
    )
}

/// Limits, `input.env`, leases and the stale-change rule.
pub fn decide_settings(config: &Config) -> DecideSettings {
    DecideSettings {
        limits: Limits {
            max_rounds: config.max_rounds,
            max_actions: config.max_actions,
            dry_run: config.dry_run,
        },
        env: serde_json::to_value(&config.policy_env).expect("a string map serializes"),
        lease: config.claim_lease,
        process_stale_changes: config.process_stale_changes,
        budgets: config.action_budgets.clone(),
        switch_refresh: config.actions_switch_refresh,
    }
}

/// Secrets Manager references resolved on first use (no AWS call until a
/// policy uses one), cached for the configured TTL.
pub fn secrets(config: &Config) -> SecretResolver {
    SecretResolver::new(Arc::new(SecretsManager::default()), config.secret_cache_ttl)
}

/// The DynamoDB state table, when `STATE_TABLE` names one.
pub fn state(config: &Config, sdk: &SdkConfig) -> Option<Arc<dyn StateStore>> {
    let table = config.state_table.as_ref()?;
    let client = aws_sdk_dynamodb::Client::new(sdk);
    Some(Arc::new(DynamoState::new(client, table)))
}

/// Where decision records go (`DECISION_RECORDS`), if anywhere.
pub fn records(config: &Config, sdk: &SdkConfig) -> Option<Arc<dyn RecordSink>> {
    Some(match config.decision_records.as_ref()? {
        Location::Local(dir) => Arc::new(DirRecords::new(dir)),
        Location::S3(uri) => Arc::new(S3Records::new(S3::new(sdk), uri.clone())),
    })
}

/// The responder of the configured deployment, publishing to `publisher`;
/// `topics` serves `sns.publish`.
pub fn responder(
    config: &Config,
    publisher: Arc<dyn Publisher>,
    topics: Option<Arc<dyn TopicPublisher>>,
    state: Option<Arc<dyn StateStore>>,
) -> Result<Responder, PolicyError> {
    let decider = Decider::new(
        Arc::new(policies(config)?),
        registry(config, topics),
        decide_settings(config),
        secrets(config),
        state,
    );
    Ok(Responder::new(decider, publisher))
}

/// The responder of `run --mocks`: actions answered from `mocks` (nothing
/// is called, no secret resolved), state in memory so that no table is
/// touched, the configured policies, limits and env.
pub fn mocked_responder(
    config: &Config,
    publisher: Arc<dyn Publisher>,
    mocks: &MockedActions,
) -> Result<Responder, PolicyError> {
    let mut settings = decide_settings(config);
    settings.limits.dry_run = false;
    let decider = Decider::new(
        Arc::new(policies(config)?),
        mocks.registry(),
        settings,
        SecretResolver::passthrough(),
        Some(Arc::new(MemoryState::new())),
    );
    Ok(Responder::new(decider, publisher))
}

/// The responder for Lambda: outcomes go to `OUTCOME_TOPIC_ARN`. Every SDK
/// client shares one configuration (and so one TLS client).
pub fn lambda_responder(config: &Config) -> Result<Responder, InitError> {
    let topic = config.outcome_topic_arn.clone().ok_or(InitError::NoOutcomeTopic)?;
    let sdk = sdk_config();
    let sns = aws_sdk_sns::Client::new(&sdk);
    let publisher = Arc::new(SnsPublisher::new(sns.clone(), topic));
    let mut responder = responder(config, publisher, Some(Arc::new(sns)), state(config, &sdk))?;
    if let Some(sink) = records(config, &sdk) {
        responder = responder.with_records(sink);
    }
    let policies = responder.decider().policies();
    if !policies.has_action_policy() {
        tracing::warn!("no action policy (`package action`): alerts are decided, and nothing runs");
    }
    let schemas: Vec<&str> = policies.schemas().iter().map(String::as_str).collect();
    tracing::info!(
        files = policies.files().len(),
        schemas = schemas.join(",").as_str(),
        dry_run = config.dry_run,
        state_table = config.state_table.as_deref().unwrap_or("-"),
        decision_records = config
            .decision_records
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "-".to_string())
            .as_str(),
        bundle_digest = policies.digest(),
        "initialized"
    );
    Ok(responder)
}
