//! Publishes outcomes to the outcome topic with `PublishBatch` (≤ 10 per
//! call), checking every entry and retrying the ones SNS failed on its side.

use std::time::Duration;

use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use futures::future::BoxFuture;

use super::{Outcome, PublishError, Publisher};

/// SNS's limit of entries per `PublishBatch`.
pub const BATCH_SIZE: usize = 10;
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

    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
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
                Err(err) => last_reason = crate::aws::error_chain(&err),
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
pub fn string_attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data type is set")
}
