//! Configuration: read from the environment once, at init, into a validated
//! [`Config`] of plain values. Nothing else in the crate reads the process
//! environment, and only `app` reads a `Config`: it hands each part the
//! values it needs.
//!
//! This module imports nothing from the crate. The small vocabulary types a
//! setting is parsed into ([`PolicySource`], [`PolicyEngine`], [`Endpoints`])
//! live here, so that the modules using them depend on configuration and
//! never the other way round.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::budget_spec::{parse_action_budgets, ActionBudget, BudgetMatch};

/// Where policies come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// The policies under `policies/` compiled into the binary at build time.
    Bundled,
    /// Every `*.rego` below a directory (recursively), `*_test.rego` excluded.
    Dir(PathBuf),
}

/// An S3 object or prefix, `s3://bucket/key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Uri {
    pub bucket: String,
    pub key: String,
}

impl S3Uri {
    /// `s3://bucket/key` (the key may be empty: the whole bucket).
    pub fn parse(text: &str) -> Result<S3Uri, String> {
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| "expected s3://BUCKET/KEY".to_string())?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !valid_bucket {
            return Err(format!(
                "{bucket:?} is not a bucket name (3 to 63 lowercase letters, digits, '-' or '.')"
            ));
        }
        Ok(S3Uri {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// This prefix with `suffix` after it (one `/` between).
    pub fn join(&self, suffix: &str) -> S3Uri {
        let key = match self.key.trim_end_matches('/') {
            "" => suffix.to_string(),
            prefix => format!("{prefix}/{suffix}"),
        };
        S3Uri {
            bucket: self.bucket.clone(),
            key,
        }
    }
}

impl std::fmt::Display for S3Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// A file or directory here, or an S3 object or prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3(S3Uri),
}

impl Location {
    pub fn parse(text: &str) -> Result<Location, String> {
        match text.starts_with("s3://") {
            true => S3Uri::parse(text).map(Location::S3),
            false => Ok(Location::Local(PathBuf::from(text))),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(path) => write!(f, "{}", path.display()),
            Location::S3(uri) => uri.fmt(f),
        }
    }
}

/// Which evaluator runs the policies' entry rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PolicyEngine {
    /// regorus's register VM, with the interpreter for rules it cannot compile.
    #[default]
    Vm,
    /// The tree-walking interpreter only: runtime errors in a rule body fail
    /// the evaluation instead of making the body undefined.
    Interpreter,
}

impl PolicyEngine {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyEngine::Vm => "vm",
            PolicyEngine::Interpreter => "interpreter",
        }
    }
}

impl std::str::FromStr for PolicyEngine {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "vm" => Ok(PolicyEngine::Vm),
            "interpreter" => Ok(PolicyEngine::Interpreter),
            _ => Err("expected vm or interpreter"),
        }
    }
}

/// Vendor API base URLs: the vendor's public endpoint unless configured
/// (`<VENDOR>_BASE_URL`); an action's `base_url` argument wins over both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub slack: String,
    pub pagerduty: String,
    pub jira: Option<String>,
    pub github: String,
    pub opsgenie: String,
    pub virustotal: String,
    pub otx: String,
    pub openai: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            slack: "https://slack.com/api".to_string(),
            pagerduty: "https://events.pagerduty.com".to_string(),
            jira: None,
            github: "https://api.github.com".to_string(),
            opsgenie: "https://api.opsgenie.com".to_string(),
            virustotal: "https://www.virustotal.com/api/v3".to_string(),
            otx: "https://otx.alienvault.com".to_string(),
            openai: "https://api.openai.com/v1".to_string(),
        }
    }
}

/// How a message's schema — and so its alert policy, `package
/// alert.<schema>` — is chosen: its `schema` message attribute, else the
/// schema its topic is mapped to, else `matano` for a Matano alert change,
/// else the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaRouting {
    /// `DEFAULT_SCHEMA`.
    pub default: String,
    /// `TOPIC_SCHEMAS`: source topic ARN → schema.
    pub by_topic: BTreeMap<String, String>,
}

impl SchemaRouting {
    /// The schema mapped to `topic_arn`, if any.
    pub fn of_topic(&self, topic_arn: Option<&str>) -> Option<&str> {
        topic_arn.and_then(|arn| self.by_topic.get(arn)).map(String::as_str)
    }
}

impl From<&str> for SchemaRouting {
    /// A default schema and no topic mapping.
    fn from(default: &str) -> SchemaRouting {
        SchemaRouting {
            default: default.to_string(),
            by_topic: BTreeMap::new(),
        }
    }
}

/// Validated runtime configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub policies: PolicySource,
    /// Topic that receives one message per action outcome (Lambda mode).
    pub outcome_topic_arn: Option<String>,
    /// How messages are routed to alert policies (`DEFAULT_SCHEMA`,
    /// `TOPIC_SCHEMAS`).
    pub schemas: SchemaRouting,
    /// The allow-listed environment variables handed to policies as `input.env`,
    /// captured once. The process environment is never exposed wholesale.
    pub policy_env: BTreeMap<String, String>,
    /// Rounds of the action policy per alert before the workflow is stopped.
    pub max_rounds: u32,
    /// Actions per alert; requests beyond it are reported as skipped.
    pub max_actions: u32,
    /// Wall-clock limit for one policy evaluation.
    pub policy_timeout: Duration,
    /// Bytes one policy evaluation may allocate (`POLICY_MEMORY_MB`).
    pub policy_memory: u64,
    /// Which evaluator runs the policies (`POLICY_ENGINE`).
    pub policy_engine: PolicyEngine,
    /// Default timeout of one HTTP request made by an action.
    pub http_timeout: Duration,
    /// Evaluate policies but execute no action.
    pub dry_run: bool,
    /// Write the policies' `print()` output to stderr (`ENABLE_PRINT`,
    /// `--enable-print`); otherwise it is logged at info.
    pub enable_print: bool,
    /// Retries of a failed HTTP request (connect errors, 429, 5xx).
    pub http_max_retries: u32,
    /// Response bodies are cut at this size.
    pub max_response_bytes: usize,
    /// SSRF guard opt-ins: reach non-public addresses at all, or these hosts.
    pub http_allow_private: bool,
    pub http_allow_hosts: Vec<String>,
    /// `AWS_LAMBDA_RUNTIME_API`, which actions may never reach.
    pub runtime_api: Option<String>,
    /// How long a fetched secret is reused.
    pub secret_cache_ttl: Duration,
    pub endpoints: Endpoints,
    /// DynamoDB table for exactly-once actions and persistent attributes.
    pub state_table: Option<String>,
    /// How long an action claim holds before another invocation may take it over.
    pub claim_lease: Duration,
    /// Act on Matano changes older than one already processed.
    pub process_stale_changes: bool,
    /// `BATCH_CONCURRENCY`: records of one SQS batch decided at a time.
    pub batch_concurrency: usize,
    /// `INGEST_RETRY_DELAY_SECONDS`: the first delay before an SQS record
    /// listed for a retry is visible again (doubled per delivery); `None`
    /// (`off`): the queue's visibility timeout.
    pub ingest_retry_delay_seconds: Option<u32>,
    /// `ACTION_BUDGETS`: limits on how often matching actions run.
    pub action_budgets: Vec<ActionBudget>,
    /// How long an instance trusts what it read of the actions switch
    /// (`alert-responder actions pause|resume`).
    pub actions_switch_refresh: Duration,
    /// `DECISION_RECORDS`: where every invocation's decision records go.
    pub decision_records: Option<Location>,
    /// `POLICY_BUNDLE`: a bundle served instead of `policies`.
    pub policy_bundle: Option<Location>,
    /// `SHADOW_POLICY_BUNDLE`: a candidate decided next to the live policies, never acting.
    pub shadow_bundle: Option<Location>,
    /// `POLICY_REFRESH_SECONDS`: how often the bundles are checked for a new version.
    pub policy_refresh: Duration,
    /// `SLACK_SIGNING_SECRET` (literal) or `SLACK_SIGNING_SECRET_ID` (a
    /// Secrets Manager reference `{"secret": id}`): verifies Slack's answers.
    pub slack_signing_secret: Option<serde_json::Value>,
    /// `CALLBACK_SECRET` / `CALLBACK_SECRET_ID`: signs callback tokens.
    pub callback_secret: Option<serde_json::Value>,
    /// `INTERACTIONS_URL`: the function's public URL (else its Function URL).
    pub interactions_url: Option<String>,
    /// `SCHEDULE_GROUP` and `SCHEDULER_ROLE_ARN`: where pending actions'
    /// due times are scheduled, and the role Scheduler invokes the function as.
    pub schedule_group: Option<String>,
    pub scheduler_role_arn: Option<String>,
}

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{name}={value:?} is not valid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

const DEFAULT_MAX_ROUNDS: u32 = 32;
const DEFAULT_MAX_ACTIONS: u32 = 64;
const DEFAULT_SCHEMA: &str = "matano";
/// Records of a batch are mostly waiting on vendors: a few at a time use
/// the function's two vCPUs at most without piling on one namespace.
const DEFAULT_BATCH_CONCURRENCY: usize = 4;
/// A transient failure (a vendor, the state table, a busy namespace) gets
/// half a minute before its first retry, not the queue's minutes.
const DEFAULT_INGEST_RETRY_DELAY_SECONDS: u32 = 30;

impl Default for Config {
    fn default() -> Self {
        Config {
            policies: PolicySource::Bundled,
            outcome_topic_arn: None,
            schemas: SchemaRouting::from(DEFAULT_SCHEMA),
            policy_env: BTreeMap::new(),
            max_rounds: DEFAULT_MAX_ROUNDS,
            max_actions: DEFAULT_MAX_ACTIONS,
            policy_timeout: Duration::from_millis(1000),
            policy_memory: 32 * 1024 * 1024,
            policy_engine: PolicyEngine::Vm,
            http_timeout: Duration::from_secs(10),
            dry_run: false,
            enable_print: false,
            http_max_retries: 2,
            max_response_bytes: 1024 * 1024,
            http_allow_private: false,
            http_allow_hosts: Vec::new(),
            runtime_api: None,
            secret_cache_ttl: Duration::from_secs(300),
            endpoints: Endpoints::default(),
            state_table: None,
            claim_lease: Duration::from_secs(60),
            process_stale_changes: false,
            batch_concurrency: DEFAULT_BATCH_CONCURRENCY,
            ingest_retry_delay_seconds: Some(DEFAULT_INGEST_RETRY_DELAY_SECONDS),
            action_budgets: Vec::new(),
            actions_switch_refresh: Duration::from_secs(10),
            decision_records: None,
            policy_bundle: None,
            shadow_bundle: None,
            policy_refresh: Duration::from_secs(60),
            slack_signing_secret: None,
            callback_secret: None,
            interactions_url: None,
            schedule_group: None,
            scheduler_role_arn: None,
        }
    }
}

impl Config {
    /// `STATE_TABLE` alone, for the kill switch: `actions pause` must work
    /// whatever else the operator's environment holds (an `ACTION_BUDGETS`
    /// that does not parse must not keep actions running in an incident).
    pub fn state_table_from_env() -> Option<String> {
        std::env::var("STATE_TABLE").ok().filter(|v| !v.trim().is_empty())
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests need not touch the
    /// process environment.
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut config = Config::default();
        config.read_policy_settings(&get, &lookup)?;
        config.read_workflow_limits(&get)?;
        config.read_http_settings(&get)?;
        config.read_vendor_endpoints(&get)?;
        config.read_state_settings(&get)?;
        config.read_interaction_settings(&get)?;
        Ok(config)
    }

    /// Where policies come from, what they see, how they run.
    fn read_policy_settings(
        &mut self,
        get: &impl Fn(&str) -> Option<String>,
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        if let Some(dir) = get("POLICY_DIR") {
            self.policies = PolicySource::Dir(PathBuf::from(dir));
        }
        if let Some(arn) = get("OUTCOME_TOPIC_ARN") {
            if !arn.starts_with("arn:") || arn.split(':').count() < 6 {
                return Err(invalid(
                    "OUTCOME_TOPIC_ARN",
                    &arn,
                    "expected an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)",
                ));
            }
            self.outcome_topic_arn = Some(arn);
        }
        if let Some(schema) = get("DEFAULT_SCHEMA") {
            validate_schema_name(&schema).map_err(|reason| invalid("DEFAULT_SCHEMA", &schema, reason))?;
            self.schemas.default = schema;
        }
        if let Some(map) = get("TOPIC_SCHEMAS") {
            self.schemas.by_topic =
                parse_topic_schemas(&map).map_err(|reason| invalid("TOPIC_SCHEMAS", &map, reason))?;
        }
        if let Some(names) = get("POLICY_ENV") {
            for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(invalid(
                        "POLICY_ENV",
                        &names,
                        format!("{name:?} is not an environment variable name"),
                    ));
                }
                if let Some(value) = lookup(name) {
                    self.policy_env.insert(name.to_string(), value);
                }
            }
        }
        // Values for policies given directly (the deployment templates use it).
        if let Some(json) = get("POLICY_ENV_JSON") {
            let values: BTreeMap<String, String> = serde_json::from_str(&json).map_err(|err| {
                invalid(
                    "POLICY_ENV_JSON",
                    &json,
                    format!("expected a JSON object of strings: {err}"),
                )
            })?;
            self.policy_env.extend(values);
        }
        if let Some(v) = get("POLICY_TIMEOUT_MS") {
            self.policy_timeout = Duration::from_millis(parse_positive("POLICY_TIMEOUT_MS", &v)?.into());
        }
        if let Some(v) = get("POLICY_MEMORY_MB") {
            self.policy_memory = u64::from(parse_positive("POLICY_MEMORY_MB", &v)?) * 1024 * 1024;
        }
        if let Some(v) = get("POLICY_ENGINE") {
            self.policy_engine = v.parse().map_err(|reason| invalid("POLICY_ENGINE", &v, reason))?;
        }
        if let Some(v) = get("DECISION_RECORDS") {
            self.decision_records =
                Some(Location::parse(v.trim()).map_err(|reason| invalid("DECISION_RECORDS", &v, reason))?);
        }
        if let Some(v) = get("POLICY_BUNDLE") {
            self.policy_bundle = Some(bundle_location(&v).map_err(|reason| invalid("POLICY_BUNDLE", &v, reason))?);
        }
        if let Some(v) = get("SHADOW_POLICY_BUNDLE") {
            self.shadow_bundle =
                Some(bundle_location(&v).map_err(|reason| invalid("SHADOW_POLICY_BUNDLE", &v, reason))?);
        }
        if let Some(v) = get("POLICY_REFRESH_SECONDS") {
            self.policy_refresh = Duration::from_secs(parse_positive("POLICY_REFRESH_SECONDS", &v)?.into());
        }
        Ok(())
    }

    fn read_workflow_limits(&mut self, get: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("MAX_ROUNDS") {
            self.max_rounds = parse_positive("MAX_ROUNDS", &v)?;
        }
        if let Some(v) = get("MAX_ACTIONS") {
            self.max_actions = parse_positive("MAX_ACTIONS", &v)?;
        }
        if let Some(v) = get("DRY_RUN") {
            self.dry_run = parse_bool("DRY_RUN", &v)?;
        }
        if let Some(v) = get("ENABLE_PRINT") {
            self.enable_print = parse_bool("ENABLE_PRINT", &v)?;
        }
        if let Some(v) = get("BATCH_CONCURRENCY") {
            self.batch_concurrency = parse_positive("BATCH_CONCURRENCY", &v)? as usize;
        }
        if let Some(v) = get("INGEST_RETRY_DELAY_SECONDS") {
            self.ingest_retry_delay_seconds = parse_retry_delay(&v)?;
        }
        if let Some(v) = get("ACTION_BUDGETS") {
            self.action_budgets = parse_action_budgets(&v).map_err(|reason| invalid("ACTION_BUDGETS", &v, reason))?;
        }
        Ok(())
    }

    /// The shared HTTP client and secrets.
    fn read_http_settings(&mut self, get: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("HTTP_TIMEOUT_MS") {
            self.http_timeout = Duration::from_millis(parse_positive("HTTP_TIMEOUT_MS", &v)?.into());
        }
        if let Some(v) = get("HTTP_MAX_RETRIES") {
            self.http_max_retries = v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= 10)
                .ok_or_else(|| invalid("HTTP_MAX_RETRIES", &v, "expected a whole number from 0 to 10"))?;
        }
        if let Some(v) = get("MAX_RESPONSE_BYTES") {
            self.max_response_bytes = parse_positive("MAX_RESPONSE_BYTES", &v)? as usize;
        }
        if let Some(v) = get("HTTP_ALLOW_PRIVATE") {
            self.http_allow_private = parse_bool("HTTP_ALLOW_PRIVATE", &v)?;
        }
        if let Some(v) = get("HTTP_ALLOW_HOSTS") {
            self.http_allow_hosts = v
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_string)
                .collect();
        }
        self.runtime_api = get("AWS_LAMBDA_RUNTIME_API");
        if let Some(v) = get("SECRET_CACHE_TTL_SECONDS") {
            let seconds = v
                .trim()
                .parse::<u64>()
                .map_err(|_| invalid("SECRET_CACHE_TTL_SECONDS", &v, "expected a whole number of seconds"))?;
            self.secret_cache_ttl = Duration::from_secs(seconds);
        }
        Ok(())
    }

    fn read_vendor_endpoints(&mut self, get: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let endpoints = &mut self.endpoints;
        for (name, slot) in [
            ("SLACK_BASE_URL", &mut endpoints.slack),
            ("PAGERDUTY_BASE_URL", &mut endpoints.pagerduty),
            ("GITHUB_BASE_URL", &mut endpoints.github),
            ("OPSGENIE_BASE_URL", &mut endpoints.opsgenie),
            ("VIRUSTOTAL_BASE_URL", &mut endpoints.virustotal),
            ("OTX_BASE_URL", &mut endpoints.otx),
            ("OPENAI_BASE_URL", &mut endpoints.openai),
        ] {
            if let Some(url) = get(name) {
                *slot = validate_url(name, url)?;
            }
        }
        if let Some(url) = get("JIRA_BASE_URL") {
            endpoints.jira = Some(validate_url("JIRA_BASE_URL", url)?);
        }
        Ok(())
    }

    /// The state table and what it decides.
    fn read_state_settings(&mut self, get: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        self.state_table = get("STATE_TABLE");
        if let Some(v) = get("CLAIM_LEASE_SECONDS") {
            self.claim_lease = Duration::from_secs(parse_positive("CLAIM_LEASE_SECONDS", &v)?.into());
        }
        if let Some(v) = get("STALE_CHANGES") {
            self.process_stale_changes = match v.trim() {
                "skip" => false,
                "process" => true,
                _ => return Err(invalid("STALE_CHANGES", &v, "expected skip or process")),
            };
        }
        Ok(())
    }
}

impl Config {
    /// Answers to pending actions and what wakes suspended workflows.
    fn read_interaction_settings(&mut self, get: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        self.slack_signing_secret = secret_setting(get, "SLACK_SIGNING_SECRET")?;
        self.callback_secret = secret_setting(get, "CALLBACK_SECRET")?;
        if let Some(url) = get("INTERACTIONS_URL") {
            self.interactions_url = Some(validate_url("INTERACTIONS_URL", url)?);
        }
        self.schedule_group = get("SCHEDULE_GROUP");
        self.scheduler_role_arn = get("SCHEDULER_ROLE_ARN");
        if let (Some(group), None) = (&self.schedule_group, &self.scheduler_role_arn) {
            return Err(invalid(
                "SCHEDULE_GROUP",
                group,
                "needs SCHEDULER_ROLE_ARN: the role EventBridge Scheduler invokes the function as",
            ));
        }
        Ok(())
    }
}

/// `<NAME>` (a literal) or `<NAME>_ID` (a Secrets Manager secret, as a
/// reference `{"secret": id}`); not both.
fn secret_setting(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Option<serde_json::Value>, ConfigError> {
    let id_name = format!("{name}_ID");
    match (get(name), get(&id_name)) {
        (Some(_), Some(id)) => Err(invalid(
            name,
            "(hidden)",
            format!("give {name} or {id_name} ({id}), not both"),
        )),
        (Some(literal), None) => Ok(Some(serde_json::Value::String(literal))),
        (None, Some(id)) => Ok(Some(serde_json::json!({ "secret": id }))),
        (None, None) => Ok(None),
    }
}

fn parse_bool(name: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(invalid(name, value, "expected true or false")),
    }
}

fn validate_url(name: &'static str, url: String) -> Result<String, ConfigError> {
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(url.trim_end_matches('/').to_string())
    } else {
        Err(invalid(name, &url, "expected an http(s) URL"))
    }
}

/// Schema names become Rego package path segments (`alert.<schema>`).
pub fn validate_schema_name(schema: &str) -> Result<(), &'static str> {
    let mut chars = schema.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return Err("a schema name starts with a letter or underscore"),
    }
    if chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err("a schema name holds only letters, digits and underscores")
    }
}

fn parse_positive(name: &'static str, value: &str) -> Result<u32, ConfigError> {
    match value.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(invalid(name, value, "expected a whole number greater than 0")),
    }
}

/// Whole seconds up to an hour, or `off`.
fn parse_retry_delay(value: &str) -> Result<Option<u32>, ConfigError> {
    const NAME: &str = "INGEST_RETRY_DELAY_SECONDS";
    if value.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match value.trim().parse::<u32>() {
        Ok(n) if n <= crate::requeue::MAX_BASE_SECONDS => Ok(Some(n)),
        _ => Err(invalid(
            NAME,
            value,
            "expected whole seconds from 0 to 3600, or `off` for the queue's own visibility timeout",
        )),
    }
}

/// `arn=schema` pairs separated by commas (an ARN holds no `=` or `,`).
fn parse_topic_schemas(map: &str) -> Result<BTreeMap<String, String>, String> {
    let mut topics = BTreeMap::new();
    for pair in map.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((arn, schema)) = pair.split_once('=') else {
            return Err(format!("{pair:?} is not TOPIC_ARN=schema"));
        };
        let (arn, schema) = (arn.trim(), schema.trim());
        if !arn.starts_with("arn:") || arn.split(':').count() != 6 {
            return Err(format!(
                "{arn:?} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
            ));
        }
        validate_schema_name(schema).map_err(|reason| format!("schema {schema:?} of {arn}: {reason}"))?;
        if topics.insert(arn.to_string(), schema.to_string()).is_some() {
            return Err(format!("{arn} is mapped twice"));
        }
    }
    Ok(topics)
}

/// A bundle is one object: an `s3://` location needs a key.
fn bundle_location(text: &str) -> Result<Location, String> {
    match Location::parse(text.trim())? {
        Location::S3(uri) if uri.key.is_empty() || uri.key.ends_with('/') => {
            Err("expected s3://BUCKET/KEY naming the bundle object".to_string())
        }
        location => Ok(location),
    }
}

fn invalid(name: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        value: value.to_string(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn records_and_bundles_are_s3_uris_or_local_paths() {
        let read = config(&[
            ("DECISION_RECORDS", "s3://my-records/records"),
            ("POLICY_BUNDLE", "s3://bundles.example/bundles/prod.tar.gz"),
            ("SHADOW_POLICY_BUNDLE", "/opt/bundles/candidate.tar.gz"),
            ("POLICY_REFRESH_SECONDS", "30"),
        ])
        .unwrap();
        let records = S3Uri::parse("s3://my-records/records").unwrap();
        assert_eq!(read.decision_records, Some(Location::S3(records.clone())));
        assert_eq!(records.join("dt=x/y.gz").key, "records/dt=x/y.gz");
        assert_eq!(S3Uri::parse("s3://my-records").unwrap().join("a").key, "a");
        assert_eq!(
            read.shadow_bundle,
            Some(Location::Local(PathBuf::from("/opt/bundles/candidate.tar.gz")))
        );
        assert_eq!(read.policy_refresh, Duration::from_secs(30));
        assert_eq!(config(&[]).unwrap().policy_refresh, Duration::from_secs(60));
        assert!(config(&[]).unwrap().decision_records.is_none());

        let err = config(&[("POLICY_BUNDLE", "s3://Bad_Bucket/k")])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("POLICY_BUNDLE=\"s3://Bad_Bucket/k\" is not valid: \"Bad_Bucket\" is not a bucket name"),
            "{err}"
        );
        let err = config(&[("SHADOW_POLICY_BUNDLE", "s3://bundles/")])
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("expected s3://BUCKET/KEY naming the bundle object"),
            "{err}"
        );
        let err = config(&[("POLICY_REFRESH_SECONDS", "0")]).unwrap_err().to_string();
        assert!(err.starts_with("POLICY_REFRESH_SECONDS="), "{err}");
    }

    #[test]
    fn defaults_need_no_environment() {
        let c = config(&[]).unwrap();
        assert_eq!(c.policies, PolicySource::Bundled);
        assert_eq!(c.max_rounds, 32);
        assert_eq!(c.schemas, SchemaRouting::from("matano"));
        assert!(c.policy_env.is_empty());
        assert!(!c.dry_run);
        // The README's configuration table, default by default.
        assert_eq!(c.max_actions, 64);
        assert_eq!(c.policy_timeout, Duration::from_millis(1000));
        assert_eq!(c.policy_memory, 32 * 1024 * 1024);
        assert_eq!(c.http_timeout, Duration::from_millis(10_000));
        assert_eq!(c.max_response_bytes, 1024 * 1024);
        assert_eq!(c.secret_cache_ttl, Duration::from_secs(300));
        assert_eq!(c.claim_lease, Duration::from_secs(60));
        assert!(!c.process_stale_changes);
    }

    #[test]
    fn limits_are_read_from_the_environment() {
        let c = config(&[
            ("MAX_ACTIONS", "2"),
            ("POLICY_TIMEOUT_MS", "250"),
            ("POLICY_MEMORY_MB", "64"),
            ("HTTP_TIMEOUT_MS", "1500"),
            ("MAX_RESPONSE_BYTES", "4096"),
            ("SECRET_CACHE_TTL_SECONDS", "30"),
            ("CLAIM_LEASE_SECONDS", "90"),
            ("STALE_CHANGES", "process"),
        ])
        .unwrap();
        assert_eq!(c.max_actions, 2);
        assert_eq!(c.policy_timeout, Duration::from_millis(250));
        assert_eq!(c.policy_memory, 64 * 1024 * 1024);
        assert_eq!(c.http_timeout, Duration::from_millis(1500));
        assert_eq!(c.max_response_bytes, 4096);
        assert_eq!(c.secret_cache_ttl, Duration::from_secs(30));
        assert_eq!(c.claim_lease, Duration::from_secs(90));
        assert!(c.process_stale_changes);
        for (name, bad) in [
            ("MAX_ACTIONS", "many"),
            ("STALE_CHANGES", "sometimes"),
            ("POLICY_MEMORY_MB", "-1"),
        ] {
            let err = config(&[(name, bad)]).unwrap_err().to_string();
            assert!(err.starts_with(&format!("{name}=")), "{err}");
        }
    }

    #[test]
    fn the_ingest_retry_delay_is_seconds_or_off() {
        assert_eq!(config(&[]).unwrap().ingest_retry_delay_seconds, Some(30));
        let read = |value: &str| config(&[("INGEST_RETRY_DELAY_SECONDS", value)]).map(|c| c.ingest_retry_delay_seconds);
        assert_eq!(read("0"), Ok(Some(0)));
        assert_eq!(read(" 3600 "), Ok(Some(3_600)));
        assert_eq!(read("OFF"), Ok(None));
        assert_eq!(read(""), Ok(Some(30)), "empty is unset, as for every variable");
        for bad in ["3601", "-1", "1.5", "soon"] {
            let err = read(bad).unwrap_err().to_string();
            assert!(
                err.starts_with("INGEST_RETRY_DELAY_SECONDS=") && err.contains("`off`"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn budgets_and_batch_concurrency_are_read_and_checked() {
        let c = config(&[
            (
                "ACTION_BUDGETS",
                r#"[{"uses": "virustotal.*", "limit": 4, "per_seconds": 60}]"#,
            ),
            ("BATCH_CONCURRENCY", "8"),
        ])
        .unwrap();
        assert_eq!(c.action_budgets.len(), 1);
        assert_eq!(c.batch_concurrency, 8);
        let err = config(&[(
            "ACTION_BUDGETS",
            r#"[{"uses": "a", "limit": 1, "per_seconds": 1}, {"id": "", "limit": 1, "per_seconds": 1}]"#,
        )])
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("ACTION_BUDGETS=") && err.contains("budget [1]"),
            "{err}"
        );
        assert!(config(&[("BATCH_CONCURRENCY", "0")]).is_err());
    }

    #[test]
    fn policy_env_captures_only_listed_variables() {
        let c = config(&[
            ("POLICY_ENV", "TEAM, INTEL_URL,UNSET"),
            ("TEAM", "secops"),
            ("INTEL_URL", "http://intel"),
            ("AWS_SECRET_ACCESS_KEY", "hunter2"),
        ])
        .unwrap();
        assert_eq!(c.policy_env.len(), 2);
        assert_eq!(c.policy_env["TEAM"], "secops");
        assert!(!c.policy_env.contains_key("AWS_SECRET_ACCESS_KEY"));
    }

    #[test]
    fn policy_env_json_adds_values() {
        let c = config(&[
            ("POLICY_ENV_JSON", r#"{"WEBHOOK_URL": "https://h"}"#),
            ("POLICY_ENV", "TEAM"),
            ("TEAM", "a"),
        ])
        .unwrap();
        assert_eq!(c.policy_env.len(), 2);
        assert_eq!(c.policy_env["WEBHOOK_URL"], "https://h");
        let err = config(&[("POLICY_ENV_JSON", r#"{"N": 1}"#)]).unwrap_err();
        assert!(err.to_string().starts_with("POLICY_ENV_JSON="), "{err}");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = config(&[("MAX_ROUNDS", "zero")]).unwrap_err();
        assert!(err.to_string().starts_with("MAX_ROUNDS=\"zero\""), "{err}");
        let err = config(&[("OUTCOME_TOPIC_ARN", "my-topic")]).unwrap_err();
        assert!(err.to_string().contains("OUTCOME_TOPIC_ARN"), "{err}");
        let err = config(&[("POLICY_ENGINE", "wasm")]).unwrap_err();
        assert!(
            err.to_string().contains("POLICY_ENGINE") && err.to_string().contains("vm or interpreter"),
            "{err}"
        );
        assert_eq!(
            config(&[("POLICY_ENGINE", "interpreter")]).unwrap().policy_engine,
            PolicyEngine::Interpreter
        );
        let c = config(&[(
            "TOPIC_SCHEMAS",
            "arn:aws:sns:us-east-1:123456789012:guardduty=guardduty, arn:aws:sns:us-east-1:123456789012:hub=security_hub",
        )])
        .unwrap();
        assert_eq!(
            c.schemas.of_topic(Some("arn:aws:sns:us-east-1:123456789012:hub")),
            Some("security_hub")
        );
        assert_eq!(
            c.schemas.of_topic(Some("arn:aws:sns:us-east-1:123456789012:other")),
            None
        );
        for (bad, says) in [
            ("arn:aws:sns:us-east-1:1:t", "not TOPIC_ARN=schema"),
            ("guardduty=guardduty", "not an SNS topic ARN"),
            ("arn:aws:sns:us-east-1:1:t=9x", "schema \"9x\""),
            (
                "arn:aws:sns:us-east-1:1:t=a,arn:aws:sns:us-east-1:1:t=b",
                "mapped twice",
            ),
        ] {
            let err = config(&[("TOPIC_SCHEMAS", bad)]).unwrap_err().to_string();
            assert!(err.contains("TOPIC_SCHEMAS") && err.contains(says), "{bad}: {err}");
        }
        let err = config(&[("DEFAULT_SCHEMA", "9lives")]).unwrap_err();
        assert!(err.to_string().contains("DEFAULT_SCHEMA"), "{err}");
        let err = config(&[("POLICY_ENV", "A,B C")]).unwrap_err();
        assert!(err.to_string().contains("\"B C\""), "{err}");
        let err = config(&[("PAGERDUTY_BASE_URL", "events.pagerduty.com")]).unwrap_err();
        assert!(err.to_string().contains("PAGERDUTY_BASE_URL"), "{err}");
        let err = config(&[("HTTP_ALLOW_PRIVATE", "maybe")]).unwrap_err();
        assert!(err.to_string().contains("HTTP_ALLOW_PRIVATE"), "{err}");
    }

    #[test]
    fn http_and_vendor_settings() {
        let c = config(&[
            ("HTTP_ALLOW_HOSTS", "intel.internal, *.corp.example"),
            ("HTTP_MAX_RETRIES", "0"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1/"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
        ])
        .unwrap();
        assert_eq!(c.http_allow_hosts, vec!["intel.internal", "*.corp.example"]);
        assert!(!c.http_allow_private);
        assert_eq!(c.http_max_retries, 0);
        assert_eq!(c.runtime_api.as_deref(), Some("127.0.0.1:9001"));
        assert_eq!(c.endpoints.openai, "http://127.0.0.1:8000/v1");
        assert_eq!(c.endpoints.pagerduty, "https://events.pagerduty.com");
    }

    #[test]
    fn interaction_secrets_are_literals_or_references_and_schedules_need_their_role() {
        let read = config(&[
            ("SLACK_SIGNING_SECRET_ID", "prod/slack-signing"),
            ("CALLBACK_SECRET", "l1teral"),
            ("INTERACTIONS_URL", "https://abc.lambda-url.us-east-1.on.aws/"),
            ("SCHEDULE_GROUP", "alert-responder"),
            ("SCHEDULER_ROLE_ARN", "arn:aws:iam::1:role/r"),
        ])
        .unwrap();
        assert_eq!(
            read.slack_signing_secret,
            Some(serde_json::json!({"secret": "prod/slack-signing"}))
        );
        assert_eq!(read.callback_secret, Some(serde_json::json!("l1teral")));
        assert_eq!(
            read.interactions_url.as_deref(),
            Some("https://abc.lambda-url.us-east-1.on.aws")
        );
        let both = config(&[
            ("SLACK_SIGNING_SECRET", "s3cr3t"),
            ("SLACK_SIGNING_SECRET_ID", "prod/x"),
        ])
        .unwrap_err();
        assert!(
            both.to_string()
                .contains("give SLACK_SIGNING_SECRET or SLACK_SIGNING_SECRET_ID"),
            "{both}"
        );
        assert!(
            !both.to_string().contains("s3cr3t"),
            "the secret is never shown: {both}"
        );
        let no_role = config(&[("SCHEDULE_GROUP", "g")]).unwrap_err();
        assert!(no_role.to_string().contains("needs SCHEDULER_ROLE_ARN"), "{no_role}");
        let bad_url = config(&[("INTERACTIONS_URL", "abc.example")]).unwrap_err();
        assert!(bad_url.to_string().starts_with("INTERACTIONS_URL="), "{bad_url}");
    }
}
