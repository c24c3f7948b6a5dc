//! Assembly: the only reader of [`Config`]. It builds the policies, the
//! action registry, the secrets resolver, the state store and the
//! responder, handing each the plain values it needs.

use std::sync::Arc;
use std::time::Duration;

use crate::action::sns::TopicPublisher;
use crate::action::Registry;
use aws_types::SdkConfig;

use crate::aws::{
    sdk_config, DynamoState, LambdaWakeups, S3Records, SecretsManager, Sns, SnsPublisher, SqsRequeue, WakeupSettings,
    S3,
};
use crate::bundle::{BundleSource, CompileOptions, LoadError, Refresher, Watched};
use crate::config::{Config, ConfigError, Location};
use crate::decide::{DecideSettings, Decider};
use crate::http::{HttpClient, HttpPolicy, HttpSettings};
use crate::interaction::{FunctionUrl, InteractionSettings, Interactions};
use crate::memory::MemoryState;
use crate::pipeline::Responder;
use crate::play::MockedActions;
use crate::policy::{PolicyError, PolicySet};
use crate::publish::Publisher;
use crate::records::{DirRecords, RecordSink};
use crate::requeue::RetryDelay;
use crate::secrets::SecretResolver;
use crate::state::StateStore;
use crate::workflow::Limits;

/// Why the function could not start. Each message holds its cause's, so
/// the cause is not also given as a source (`{:#}` would print it twice).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("configuration: {0}")]
    Config(ConfigError),
    #[error("policies: {0}")]
    Policy(PolicyError),
    #[error("OUTCOME_TOPIC_ARN is required in Lambda mode")]
    NoOutcomeTopic,
    #[error("POLICY_BUNDLE: {0}")]
    Bundle(LoadError),
    #[error("TLS: {0}")]
    Tls(String),
}

impl From<ConfigError> for InitError {
    fn from(err: ConfigError) -> InitError {
        InitError::Config(err)
    }
}

impl From<PolicyError> for InitError {
    fn from(err: PolicyError) -> InitError {
        InitError::Policy(err)
    }
}

impl From<LoadError> for InitError {
    fn from(err: LoadError) -> InitError {
        InitError::Bundle(err)
    }
}

/// How policies are compiled and run: the configured engine, budget, prints.
pub fn compile_options(config: &Config) -> CompileOptions {
    CompileOptions {
        timeout: config.policy_timeout,
        engine: config.policy_engine,
        memory: config.policy_memory,
        show_prints: config.enable_print,
    }
}

/// The production policies of the configured source, on the configured engine.
pub fn policies(config: &Config) -> Result<PolicySet, PolicyError> {
    Ok(compile_options(config).apply(PolicySet::load(&config.policies, config.policy_timeout)?))
}

/// Where a bundle is read from.
pub fn bundle_source(location: &Location, sdk: &SdkConfig) -> BundleSource {
    match location {
        Location::Local(path) => BundleSource::File(path.clone()),
        Location::S3(uri) => BundleSource::S3 {
            s3: S3::new(sdk),
            uri: uri.clone(),
        },
    }
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
    Some(Arc::new(DynamoState::new(sdk, table)))
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
    let sdk = sdk_config();
    let wakeups = wakeups(config, &sdk);
    let interactions = interactions(config, None);
    let mut decider = Decider::new(
        Arc::new(policies(config)?),
        answerable(config, registry(config, topics), interactions.as_ref()),
        decide_settings(config),
        secrets(config),
        state,
    );
    if let Some(wakeups) = wakeups {
        decider = decider.with_wakeups(wakeups);
    }
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

/// What wakes suspended workflows: EventBridge Scheduler and the function
/// itself, when `SCHEDULE_GROUP` names a schedule group.
pub fn wakeups(config: &Config, sdk: &SdkConfig) -> Option<Arc<LambdaWakeups>> {
    let group = config.schedule_group.clone()?;
    Some(Arc::new(LambdaWakeups::new(
        sdk,
        WakeupSettings {
            schedule_group: group,
            scheduler_role_arn: config.scheduler_role_arn.clone().unwrap_or_default(),
        },
    )))
}

/// What verifies answers and signs callback tokens, when a key is configured.
pub fn interactions(config: &Config, url_lookup: Option<Arc<dyn FunctionUrl>>) -> Option<Arc<Interactions>> {
    let settings = InteractionSettings {
        slack_signing_secret: config.slack_signing_secret.clone(),
        callback_secret: config.callback_secret.clone(),
        public_url: config.interactions_url.clone(),
    };
    settings.is_configured().then(|| {
        Arc::new(Interactions::new(
            settings,
            secrets(config),
            url_lookup,
            HttpClient::new(http_settings(config)),
            config.endpoints.slack.clone(),
        ))
    })
}

/// The registry with `approval.request` signing answers through `interactions`.
fn answerable(config: &Config, registry: Registry, interactions: Option<&Arc<Interactions>>) -> Registry {
    match interactions {
        Some(interactions) => registry.with_callbacks(
            HttpClient::new(http_settings(config)),
            &config.endpoints.slack,
            interactions.clone(),
        ),
        None => registry,
    }
}

/// `POLICY_BUNDLE`'s policies, when it names one (the CLI loads it as the
/// function does).
pub async fn load_bundle(config: &Config) -> Result<Option<PolicySet>, InitError> {
    let Some(location) = &config.policy_bundle else {
        return Ok(None);
    };
    let bundle = Watched::new(bundle_source(location, &sdk_config()));
    Ok(bundle.load_if_changed(&compile_options(config)).await?)
}

/// The responder for Lambda and what refreshes its bundles: the policies of
/// `POLICY_BUNDLE` when set (init fails without a good one), the shadow of
/// `SHADOW_POLICY_BUNDLE` (a bad one is logged and left out: it never
/// stops the live path).
pub async fn lambda_init(config: &Config) -> Result<LambdaParts, InitError> {
    // Every invocation publishes over HTTPS: roots that cannot be loaded
    // (a wrong `CaBundleFile`) fail here, named, not each call. With the
    // built-in roots this costs microseconds.
    crate::tls::prepare().map_err(InitError::Tls)?;
    let sdk = sdk_config();
    let options = compile_options(config);
    let live = config
        .policy_bundle
        .as_ref()
        .map(|l| Watched::new(bundle_source(l, &sdk)));
    let shadow = config
        .shadow_bundle
        .as_ref()
        .map(|l| Watched::new(bundle_source(l, &sdk)));
    let policies = match &live {
        Some(bundle) => {
            let set = bundle
                .load_if_changed(&options)
                .await?
                .expect("a first load reads the bundle");
            tracing::info!(bundle = %bundle.origin(), bundle_digest = set.digest(), "policy bundle loaded");
            set
        }
        None => policies(config)?,
    };
    let (responder, interactions) = lambda_parts(config, &sdk, Arc::new(policies))?;
    let mut refused = 0;
    if let Some(bundle) = &shadow {
        let kept = "no shadow until a good version is read";
        if let Some(set) = bundle.load_new(&options, "shadow bundle", kept, &mut refused).await {
            responder.decider().swap_shadow(Some(Arc::new(set)));
        }
    }
    let refresher = (live.is_some() || shadow.is_some())
        .then(|| Refresher::new(live, shadow, config.policy_refresh, options).with_refused_at_init(refused));
    Ok(LambdaParts {
        responder,
        refresher,
        interactions,
    })
}

/// What Lambda mode serves with.
pub struct LambdaParts {
    pub responder: Responder,
    /// Re-checks the policy bundles between invocations.
    pub refresher: Option<Refresher>,
    /// Serves the function URL's answers.
    pub interactions: Option<Arc<Interactions>>,
}

/// The responder for Lambda: outcomes go to `OUTCOME_TOPIC_ARN`. Every AWS
/// adapter shares one configuration (and so one TLS client).
pub fn lambda_responder(config: &Config) -> Result<Responder, InitError> {
    lambda_parts(config, &sdk_config(), Arc::new(policies(config)?)).map(|(responder, _)| responder)
}

fn lambda_parts(
    config: &Config,
    sdk: &SdkConfig,
    policies: Arc<PolicySet>,
) -> Result<(Responder, Option<Arc<Interactions>>), InitError> {
    let topic = config.outcome_topic_arn.clone().ok_or(InitError::NoOutcomeTopic)?;
    let sns = Arc::new(Sns::new(sdk));
    let publisher = Arc::new(SnsPublisher::new(sns.clone(), topic));
    let wakeups = wakeups(config, sdk);
    let interactions = interactions(config, wakeups.clone().map(|w| w as Arc<dyn FunctionUrl>));
    let mut decider = Decider::new(
        policies,
        answerable(config, registry(config, Some(sns)), interactions.as_ref()),
        decide_settings(config),
        secrets(config),
        state(config, sdk),
    );
    if let Some(wakeups) = wakeups {
        decider = decider.with_wakeups(wakeups);
    }
    let mut responder = Responder::new(decider, publisher);
    if let Some(sink) = records(config, sdk) {
        responder = responder.with_records(sink);
    }
    if let Some(base_seconds) = config.ingest_retry_delay_seconds {
        // Used by SQS batches only; builds no connection until then.
        responder = responder
            .with_requeue(Arc::new(SqsRequeue::new(sdk)), RetryDelay { base_seconds })
            // Its own client: the panic hook calls it on a runtime of its own.
            .with_panic_requeue(Arc::new(SqsRequeue::on_own_client(sdk)));
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
        interactions = interactions.is_some(),
        schedules = config.schedule_group.as_deref().unwrap_or("-"),
        "initialized"
    );
    Ok((responder, interactions))
}
