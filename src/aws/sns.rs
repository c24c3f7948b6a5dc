//! SNS: the outcome publisher (`PublishBatch`, ≤ 10 per call, every entry
//! checked and the ones SNS failed on its side retried) and the topic
//! publisher `sns.publish` uses.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use futures::future::BoxFuture;

use crate::action::sns::{TopicPublishError, TopicPublisher};
use crate::model::Outcome;
use crate::publish::{PublishError, Publisher};

/// SNS's limit of entries per `PublishBatch`.
const BATCH_SIZE: usize = 10;
/// Our retries of entries SNS failed; the SDK retries whole calls itself.
/// Worst case 0.7 s of backoff, well inside any sensible Lambda timeout.
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsPublisher {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> SnsPublisher {
        SnsPublisher {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    fn entry(index: usize, outcome: &Outcome) -> PublishBatchRequestEntry {
        let mut entry = PublishBatchRequestEntry::builder()
            .id(index.to_string())
            .message(outcome.to_message());
        for (name, value) in outcome.attributes() {
            entry = entry.message_attributes(name, string_attribute(&value));
        }
        entry.build().expect("id and message are set")
    }

    async fn publish_chunk(&self, chunk: &[Outcome]) -> Result<(), PublishError> {
        let mut pending: Vec<usize> = (0..chunk.len()).collect();
        let mut backoff = FIRST_BACKOFF;
        let mut last_reason = String::new();
        for attempt in 1..=ATTEMPTS {
            let entries = pending.iter().map(|&i| Self::entry(i, &chunk[i])).collect();
            match self
                .client
                .publish_batch()
                .topic_arn(&self.topic_arn)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await
            {
                Ok(output) => {
                    let failed = output.failed();
                    if failed.is_empty() {
                        return Ok(());
                    }
                    // A sender fault (bad request) will not succeed on retry.
                    if let Some(fault) = failed.iter().find(|f| f.sender_fault()) {
                        return Err(self.error(
                            failed.len(),
                            chunk.len(),
                            format!("{}: {}", fault.code(), fault.message().unwrap_or_default()),
                        ));
                    }
                    last_reason = failed
                        .iter()
                        .map(|f| format!("{}: {}", f.code(), f.message().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join("; ");
                    pending = failed.iter().filter_map(|f| f.id().parse().ok()).collect();
                }
                Err(err) => last_reason = super::error_chain(&err),
            }
            tracing::warn!(topic_arn = %self.topic_arn, attempt, pending = pending.len(), reason = %last_reason, "outcome publish failed; retrying");
            if attempt == ATTEMPTS {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        Err(self.error(pending.len(), chunk.len(), last_reason))
    }

    fn error(&self, failed: usize, total: usize, reason: String) -> PublishError {
        PublishError::Failed {
            destination: self.topic_arn.clone(),
            failed,
            total,
            reason,
        }
    }
}

impl Publisher for SnsPublisher {
    fn publish<'a>(&'a self, outcomes: &'a [Outcome]) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            for chunk in outcomes.chunks(BATCH_SIZE) {
                self.publish_chunk(chunk).await?;
            }
            Ok(())
        })
    }
}

/// A `String` message attribute.
fn string_attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data type is set")
}

impl TopicPublisher for aws_sdk_sns::Client {
    fn publish<'a>(
        &'a self,
        topic_arn: &'a str,
        subject: Option<&'a str>,
        message: &'a str,
        attributes: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<String, TopicPublishError>> {
        Box::pin(async move {
            let mut request = aws_sdk_sns::Client::publish(self)
                .topic_arn(topic_arn)
                .message(message)
                .set_subject(subject.map(str::to_string));
            for (name, value) in attributes {
                request = request.message_attributes(name, string_attribute(value));
            }
            let output = request
                .send()
                .await
                .map_err(|err| TopicPublishError(super::error_chain(&err)))?;
            Ok(output.message_id.unwrap_or_default())
        })
    }
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
            .get_or_init(|| async { aws_sdk_sns::Client::new(&super::sdk_config()) })
            .await
    }
}

impl TopicPublisher for LazySnsClient {
    fn publish<'a>(
        &'a self,
        topic_arn: &'a str,
        subject: Option<&'a str>,
        message: &'a str,
        attributes: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<String, TopicPublishError>> {
        Box::pin(async move {
            let client = self.get().await;
            TopicPublisher::publish(client, topic_arn, subject, message, attributes).await
        })
    }
}
