//! `sns.publish`: publish a message to an SNS topic (by default the outcome
//! topic), through the [`TopicPublisher`] seam.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::{Action, ActionCall, ActionError, ArgKind, ArgSpec};

/// The one SNS call actions need; `aws::Sns` implements it (a signed `Publish`).
pub trait TopicPublisher: Send + Sync {
    /// Returns the SNS message id.
    fn publish<'a>(
        &'a self,
        topic_arn: &'a str,
        subject: Option<&'a str>,
        message: &'a str,
        attributes: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<String, TopicPublishError>>;
}

/// Why a message could not be published (SNS's answer, or why none came, in words).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct TopicPublishError {
    pub reason: String,
    /// Cut short by the decision's deadline: the invocation's retry
    /// publishes it (as an HTTP action cut by the deadline).
    pub past_deadline: bool,
}

/// The action's failure for a publish that failed: final, unless the
/// deadline cut it short.
fn publish_failure(topic_arn: &str, err: TopicPublishError) -> ActionError {
    ActionError::Failed {
        message: format!("SNS publish to {topic_arn} failed: {err}"),
        result: None,
        transient: err.past_deadline,
    }
}

pub struct Publish {
    topics: Option<Arc<dyn TopicPublisher>>,
    default_topic: Option<String>,
}

impl Publish {
    pub fn new(topics: Option<Arc<dyn TopicPublisher>>, default_topic: Option<String>) -> Publish {
        Publish { topics, default_topic }
    }
}

const PUBLISH_ARGS: &[ArgSpec] = &[
    ArgSpec::required(
        "message",
        ArgKind::Any,
        "message body: a string, or JSON that is serialized",
    ),
    ArgSpec::optional("topic_arn", ArgKind::String, "topic (default: OUTCOME_TOPIC_ARN)"),
    ArgSpec::optional("subject", ArgKind::String, "subject for email subscribers"),
    ArgSpec::optional("attributes", ArgKind::StringMap, "string message attributes"),
];

impl Action for Publish {
    fn uses(&self) -> &'static str {
        "sns.publish"
    }

    fn args(&self) -> &'static [ArgSpec] {
        PUBLISH_ARGS
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let topics = self
                .topics
                .as_ref()
                .ok_or_else(|| ActionError::NotConfigured("no SNS client in this mode".to_string()))?;
            let topic_arn = call
                .str_arg("topic_arn")
                .or(self.default_topic.as_deref())
                .ok_or_else(|| {
                    ActionError::NotConfigured("sns.publish needs `topic_arn` or OUTCOME_TOPIC_ARN".to_string())
                })?;
            let message = match call.args.get("message") {
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let attributes: BTreeMap<String, String> = call
                .args
                .get("attributes")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            // SNS refuses a subject with a line break, a character other
            // than ASCII or over 99 characters: the page must not fail on
            // the alert's title.
            let subject = call.str_arg("subject").and_then(super::render::sns_subject);
            let message_id = topics
                .publish(topic_arn, subject.as_deref(), &message, &attributes)
                .await
                .map_err(|err| publish_failure(topic_arn, err))?;
            Ok(json!({"message_id": message_id, "topic_arn": topic_arn}))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_cut_by_the_deadline_is_retried_and_any_other_failure_is_final() {
        let cut = TopicPublishError {
            reason: "no answer before the invocation's deadline".into(),
            past_deadline: true,
        };
        let refused = TopicPublishError {
            reason: "HTTP 404 NotFound: Topic does not exist".into(),
            past_deadline: false,
        };
        assert!(publish_failure("arn:t", cut).is_transient());
        let err = publish_failure("arn:t", refused);
        assert!(!err.is_transient());
        assert_eq!(
            err.to_string(),
            "SNS publish to arn:t failed: HTTP 404 NotFound: Topic does not exist"
        );
    }
}
