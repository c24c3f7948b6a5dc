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

/// Makes retried ingest records visible again (`ChangeMessageVisibilityBatch`).
pub struct SqsRequeue {
    api: JsonApi,
}

/// An entry SQS did not change.
struct FailedEntry {
    /// Its index in the call's records.
    index: usize,
    /// The request's fault (a receipt handle no longer valid): not tried again.
    sender_fault: bool,
    code: String,
}

impl SqsRequeue {
    pub fn new(sdk: &SdkConfig) -> SqsRequeue {
        SqsRequeue {
            api: JsonApi::new(sdk, &SQS),
        }
    }

    /// As [`SqsRequeue::new`], on an HTTP client of its own, built at its
    /// first call: usable on a runtime of its own while the process's is
    /// stopped (a panic's, `crash`).
    pub fn on_own_client(sdk: &SdkConfig) -> SqsRequeue {
        SqsRequeue {
            api: JsonApi::on_own_client(sdk, &SQS),
        }
    }

    /// One call for up to ten records: the entries SQS failed.
    async fn change_batch(&self, queue_url: &str, records: &[&Requeued]) -> Result<Vec<FailedEntry>, String> {
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
        let listed = |list: &str| -> Vec<&Value> {
            answer
                .get(list)
                .and_then(Value::as_array)
                .map(|entries| entries.iter().collect())
                .unwrap_or_default()
        };
        let index_of = |entry: &Value| {
            entry["Id"]
                .as_str()
                .and_then(|id| id.parse::<usize>().ok())
                .filter(|index| *index < records.len())
        };
        // Each entry's code, never its message: a message may quote the handle.
        let mut failed: Vec<FailedEntry> = listed("Failed")
            .into_iter()
            .map(|entry| FailedEntry {
                index: index_of(entry).unwrap_or(usize::MAX),
                sender_fault: entry["SenderFault"].as_bool().unwrap_or(true),
                code: entry["Code"].as_str().unwrap_or("an unnamed error").to_string(),
            })
            .collect();
        // An entry the answer lists nowhere is not known to be changed.
        let answered: Vec<usize> = listed("Successful")
            .into_iter()
            .chain(listed("Failed"))
            .filter_map(index_of)
            .collect();
        failed.extend(
            (0..records.len())
                .filter(|i| !answered.contains(i))
                .map(|index| FailedEntry {
                    index,
                    sender_fault: true,
                    code: "not in the answer".to_string(),
                }),
        );
        Ok(failed)
    }

    /// `chunk`'s records changed, the entries SQS failed on its side tried
    /// once more: how many stay unchanged, and SQS's codes for them.
    async fn change_chunk(&self, queue_url: &str, chunk: &[Requeued]) -> Result<(), (usize, String)> {
        let mut pending: Vec<&Requeued> = chunk.iter().collect();
        let mut given_up: Vec<String> = Vec::new();
        for attempt in 1..=2 {
            let failed = self.change_batch(queue_url, &pending).await.map_err(|reason| {
                let count = pending.len() + given_up.len();
                match given_up.is_empty() {
                    true => (count, reason),
                    false => (count, format!("{reason} (before it: {})", given_up.join(", "))),
                }
            })?;
            let (again, refused): (Vec<FailedEntry>, Vec<FailedEntry>) = failed
                .into_iter()
                .partition(|entry| !entry.sender_fault && attempt == 1 && entry.index < pending.len());
            given_up.extend(refused.into_iter().map(|entry| entry.code));
            pending = again
                .iter()
                .filter_map(|entry| pending.get(entry.index).copied())
                .collect();
            if pending.is_empty() {
                break;
            }
        }
        match given_up.is_empty() {
            true => Ok(()),
            false => Err((given_up.len(), given_up.join(", "))),
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
                .map_err(|reason| fail(records.len(), reason.to_string()))?;
            let queue_url =
                queue_url(base, queue_arn).ok_or_else(|| fail(records.len(), "not an SQS queue ARN".to_string()))?;
            let mut reasons = Vec::new();
            let mut failed = 0;
            for chunk in records.chunks(BATCH_SIZE) {
                if let Err((count, reason)) = self.change_chunk(&queue_url, chunk).await {
                    failed += count;
                    reasons.push(reason);
                }
            }
            match reasons.is_empty() {
                true => Ok(()),
                false => Err(fail(failed, reasons.join("; "))),
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
