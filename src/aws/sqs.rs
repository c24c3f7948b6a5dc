//! SQS: an ingest batch's retried records made visible again after their
//! own delay (`ChangeMessageVisibilityBatch`, in SQS's JSON protocol).

use aws_types::SdkConfig;
use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::json_api::{JsonApi, Service};
use crate::requeue::{Requeue, RequeueError, Requeued};

static SQS: Service = Service {
    name: "sqs",
    target: "AmazonSQS",
    content_type: "application/x-amz-json-1.0",
};

/// SQS's limit of entries per `ChangeMessageVisibilityBatch`.
const BATCH_SIZE: usize = 10;

pub struct SqsRequeue {
    api: JsonApi,
}

impl SqsRequeue {
    pub fn new(sdk: &SdkConfig) -> SqsRequeue {
        SqsRequeue {
            api: JsonApi::new(sdk, &SQS),
        }
    }

    /// One call for up to ten records; the entries SQS failed, named.
    async fn change_batch(&self, queue_url: &str, records: &[Requeued]) -> Result<(), String> {
        let entries: Vec<Value> = records
            .iter()
            .enumerate()
            .map(|(index, record)| {
                json!({"Id": index.to_string(), "ReceiptHandle": record.handle, "VisibilityTimeout": record.delay_seconds})
            })
            .collect();
        let input = json!({"QueueUrl": queue_url, "Entries": entries});
        let answer = self
            .api
            .call("ChangeMessageVisibilityBatch", &input)
            .await
            .map_err(|err| err.reason)?;
        let failed: Vec<String> = answer
            .get("Failed")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|entry| {
                let code = entry["Code"].as_str().unwrap_or("an unnamed error");
                format!("entry {}: {code}", entry["Id"].as_str().unwrap_or("?"))
            })
            .collect();
        match failed.is_empty() {
            true => Ok(()),
            false => Err(failed.join("; ")),
        }
    }
}

impl Requeue for SqsRequeue {
    fn requeue<'a>(&'a self, queue_arn: &'a str, records: &'a [Requeued]) -> BoxFuture<'a, Result<(), RequeueError>> {
        Box::pin(async move {
            let fail = |count: usize, reason: String| RequeueError {
                queue_arn: queue_arn.to_string(),
                count,
                reason,
            };
            let base = self
                .api
                .base_url()
                .ok_or_else(|| fail(records.len(), "no region: set AWS_REGION".to_string()))?;
            let queue_url =
                queue_url(base, queue_arn).ok_or_else(|| fail(records.len(), "not an SQS queue ARN".to_string()))?;
            let mut failures = Vec::new();
            let mut failed = 0;
            for chunk in records.chunks(BATCH_SIZE) {
                if let Err(reason) = self.change_batch(&queue_url, chunk).await {
                    failed += chunk.len();
                    failures.push(reason);
                }
            }
            match failures.is_empty() {
                true => Ok(()),
                false => Err(fail(failed, failures.join("; "))),
            }
        })
    }
}

/// A queue's URL on `base` (the SQS endpoint) from its ARN
/// (`arn:PARTITION:sqs:REGION:ACCOUNT:NAME`): `BASE/ACCOUNT/NAME`.
fn queue_url(base: &str, queue_arn: &str) -> Option<String> {
    let parts: Vec<&str> = queue_arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "sqs", _, account, name] if !account.is_empty() && !name.is_empty() => {
            Some(format!("{base}/{account}/{name}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_url_is_made_of_its_arn() {
        assert_eq!(
            queue_url(
                "https://sqs.eu-west-1.amazonaws.com",
                "arn:aws:sqs:eu-west-1:123456789012:alert-changes"
            )
            .as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/123456789012/alert-changes")
        );
        for arn in [
            "arn:aws:sns:eu-west-1:1:t",
            "arn:aws:sqs:eu-west-1::q",
            "q",
            "arn:aws:sqs:r:1:",
        ] {
            assert_eq!(queue_url("https://sqs", arn), None, "{arn}");
        }
    }
}
