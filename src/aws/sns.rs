//! SNS: the outcome publisher (`PublishBatch`, ≤ 10 per call, every entry
//! checked and the ones SNS failed on its side retried) and the topic
//! publisher `sns.publish` uses.
//!
//! Two calls of SNS's query API, signed on the shared configuration
//! (`signed`) rather than made through `aws-sdk-sns`: a batched change
//! spent ~15% of its time in the SDK's publish (its orchestration, and a
//! serializer that encodes every entry field by field), and the crate with
//! its query and XML codecs was binary size (BENCHMARKS.md). The form is
//! written in one pass; the answer is read for the entries that failed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_types::SdkConfig;
use futures::future::BoxFuture;

use super::retry::{backoff, with_retries, CallError, ATTEMPTS};
use super::signed::{Request, SendError, SignedCalls};
use super::xml;
use crate::action::sns::{TopicPublishError, TopicPublisher};
use crate::model::Outcome;
use crate::publish::{PublishError, Publisher};

/// SNS's limit of entries per `PublishBatch`.
const BATCH_SIZE: usize = 10;
/// SNS's limit of a `PublishBatch`'s messages together (bodies and
/// attributes): 256 KiB. One outcome fits alone (`MAX_OUTCOME_BYTES`).
const BATCH_BYTES: usize = 256 * 1024;
/// Bounds one call, answer included: a hung endpoint would otherwise hold
/// the invocation to its timeout.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The query API's version, sent with every action.
const API_VERSION: &str = "2010-03-31";

/// SNS's query API on one configuration.
pub struct Sns {
    calls: SignedCalls,
    /// Where calls go (the configured endpoint, else the region's), or
    /// why there is nowhere (no region): reported by each call.
    url: Result<String, String>,
}

/// An entry of a `PublishBatch` that SNS did not publish.
#[derive(Debug, PartialEq)]
struct FailedEntry {
    /// The entry's index in the chunk.
    index: usize,
    code: String,
    message: String,
    /// The request was wrong (a retry will not help), not SNS.
    sender_fault: bool,
}

impl Sns {
    pub fn new(sdk: &SdkConfig) -> Sns {
        let calls = SignedCalls::new(sdk, CALL_TIMEOUT);
        let url = calls
            .endpoint("sns")
            .map(|base| format!("{base}/"))
            .map_err(|err| err.reason);
        Sns { calls, url }
    }

    /// One try of an action: the answer's XML on a 2xx.
    async fn call(&self, form: &Form) -> Result<String, CallError> {
        let url = self.url.as_deref().map_err(SendError::permanent)?;
        let request = Request {
            service: "sns",
            method: "POST",
            url,
            headers: &[("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
            body: &form.0,
        };
        let (status, body) = self.calls.send(&request).await?;
        let text = String::from_utf8_lossy(&body).into_owned();
        match status {
            200..=299 => Ok(text),
            _ => Err(answered_error(status, &text)),
        }
    }
}

/// An error answer in a line, `HTTP 404 NotFound: Topic does not exist
/// (request id …)`; transient when SNS was at fault or throttled the call.
fn answered_error(status: u16, text: &str) -> CallError {
    let (mut reason, code) = xml::error_line(status, text);
    if let Some(id) = xml::values(text, "RequestId").pop() {
        reason.push_str(&format!(" (request id {id})"));
    }
    CallError::answered(status, code, reason)
}

/// An `application/x-www-form-urlencoded` body of the query API, written
/// in one pass.
struct Form(Vec<u8>);

impl Form {
    fn new(action: &str, capacity: usize) -> Form {
        let mut body = Vec::with_capacity(capacity + 64);
        body.extend_from_slice(b"Action=");
        body.extend_from_slice(action.as_bytes());
        body.extend_from_slice(b"&Version=");
        body.extend_from_slice(API_VERSION.as_bytes());
        Form(body)
    }

    /// `&name=value`, the value percent-encoded; `name` is written as given
    /// (ours: letters, digits and dots).
    fn field(&mut self, name: std::fmt::Arguments<'_>, value: &str) {
        self.0.push(b'&');
        std::io::Write::write_fmt(&mut self.0, name).expect("writing to a Vec");
        self.0.push(b'=');
        encode_into(&mut self.0, value);
    }

    /// String message attributes under `prefix` (`MessageAttributes`, or an
    /// entry's), numbered from 1 as the query API's maps are.
    fn attributes<'a>(
        &mut self,
        prefix: std::fmt::Arguments<'_>,
        attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        for (n, (name, value)) in attributes.into_iter().enumerate() {
            let n = n + 1;
            self.field(format_args!("{prefix}.entry.{n}.Name"), name);
            self.field(format_args!("{prefix}.entry.{n}.Value.DataType"), "String");
            self.field(format_args!("{prefix}.entry.{n}.Value.StringValue"), value);
        }
    }
}

/// Percent-encodes all but the unreserved characters (`A-Za-z0-9-_.~`),
/// as the SDKs encode query values; runs of unreserved bytes are copied
/// at once.
fn encode_into(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = text.as_bytes();
    let mut run_start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            continue;
        }
        if i > run_start {
            out.extend_from_slice(&bytes[run_start..i]);
        }
        out.push(b'%');
        out.push(HEX[usize::from(byte >> 4)]);
        out.push(HEX[usize::from(byte & 0xF)]);
        run_start = i + 1;
    }
    if bytes.len() > run_start {
        out.extend_from_slice(&bytes[run_start..]);
    }
}

/// One outcome as a batch entry: made once, whatever the retries.
struct Entry {
    message: String,
    attributes: BTreeMap<&'static str, String>,
}

impl Entry {
    /// What SNS counts of it against a batch's size: the body, and each
    /// attribute's name, type and value.
    fn size(&self) -> usize {
        let attributes: usize = self
            .attributes
            .iter()
            .map(|(name, value)| name.len() + "String".len() + value.len())
            .sum();
        self.message.len() + attributes
    }
}

/// The `PublishBatch` form of the `pending` entries; an entry's `Id` is its
/// index in `entries`.
fn publish_batch_form(topic_arn: &str, entries: &[Entry], pending: &[usize]) -> Form {
    // Every byte encoded at worst, and the field names (~240 bytes per
    // attribute): room made once.
    let size: usize = pending
        .iter()
        .map(|&i| {
            let entry = &entries[i];
            let attributes: usize = entry
                .attributes
                .iter()
                .map(|(n, v)| 240 + 3 * (n.len() + v.len()))
                .sum();
            entry.message.len() * 3 + 120 + attributes
        })
        .sum();
    let mut form = Form::new("PublishBatch", size);
    form.field(format_args!("TopicArn"), topic_arn);
    for (n, &index) in pending.iter().enumerate() {
        let n = n + 1;
        let entry = &entries[index];
        form.field(
            format_args!("PublishBatchRequestEntries.member.{n}.Id"),
            &index.to_string(),
        );
        form.field(
            format_args!("PublishBatchRequestEntries.member.{n}.Message"),
            &entry.message,
        );
        form.attributes(
            format_args!("PublishBatchRequestEntries.member.{n}.MessageAttributes"),
            entry.attributes.iter().map(|(name, value)| (*name, value.as_str())),
        );
    }
    form
}

/// What a `PublishBatch` answer says of the `pending` entries: the ones
/// SNS did not publish. An entry the answer lists neither as published nor
/// as failed counts as failed (transient): only a listed success is one.
/// An answer without a result is an error, tried again.
fn batch_failures(answer: &str, pending: &[usize]) -> Result<Vec<FailedEntry>, CallError> {
    let Some(result) = xml::element(answer, "PublishBatchResult") else {
        let start: String = answer.chars().take(200).collect();
        return Err(CallError {
            code: None,
            reason: format!("an answer without a PublishBatchResult: {start:?}"),
            transient: true,
            throttled: false,
            past_deadline: false,
        });
    };
    let ids = |list: &str| -> Vec<&str> {
        xml::element(result, list)
            .map(|members| xml::elements(members, "member"))
            .unwrap_or_default()
    };
    let first = |member: &str, name: &str| xml::values(member, name).into_iter().next().unwrap_or_default();
    let published: Vec<usize> = ids("Successful")
        .into_iter()
        .filter_map(|member| first(member, "Id").parse().ok())
        .collect();
    let mut failed: Vec<FailedEntry> = Vec::new();
    for member in ids("Failed") {
        // Only ids of this call count, each once.
        let Ok(index) = first(member, "Id").parse::<usize>() else {
            continue;
        };
        if pending.contains(&index) && !failed.iter().any(|f| f.index == index) {
            failed.push(FailedEntry {
                index,
                code: first(member, "Code"),
                message: first(member, "Message"),
                sender_fault: first(member, "SenderFault") == "true",
            });
        }
    }
    for &index in pending {
        if !published.contains(&index) && !failed.iter().any(|f| f.index == index) {
            failed.push(FailedEntry {
                index,
                code: "NoResult".to_string(),
                message: format!("the answer lists entry {index} neither as published nor as failed"),
                sender_fault: false,
            });
        }
    }
    Ok(failed)
}

pub struct SnsPublisher {
    sns: Arc<Sns>,
    topic_arn: String,
}

impl SnsPublisher {
    pub fn new(sns: Arc<Sns>, topic_arn: impl Into<String>) -> SnsPublisher {
        SnsPublisher {
            sns,
            topic_arn: topic_arn.into(),
        }
    }

    /// One `PublishBatch` of `chunk`, its failed entries tried again. An
    /// entry SNS refuses as a sender fault (a bad request) is given up at
    /// once; the entries failed beside it are still tried again.
    async fn publish_chunk(&self, entries: &[Entry]) -> Result<(), ChunkFailure> {
        let mut pending: Vec<usize> = (0..entries.len()).collect();
        let mut refused: Vec<usize> = Vec::new();
        let mut refusal: Option<String> = None;
        let mut last_reason = String::new();
        for attempt in 1..=ATTEMPTS {
            let form = publish_batch_form(&self.topic_arn, entries, &pending);
            let mut throttled = false;
            let answer = self.sns.call(&form).await;
            match answer.and_then(|answer| batch_failures(&answer, &pending)) {
                Ok(failed) => {
                    let (faults, transient): (Vec<_>, Vec<_>) = failed.into_iter().partition(|f| f.sender_fault);
                    if let Some(fault) = faults.first() {
                        refusal.get_or_insert_with(|| format!("{}: {}", fault.code, fault.message));
                    }
                    refused.extend(faults.iter().map(|f| f.index));
                    if transient.is_empty() {
                        return match refusal {
                            None => Ok(()),
                            Some(reason) => Err(ChunkFailure {
                                unpublished: refused,
                                reason,
                                entries_only: true,
                            }),
                        };
                    }
                    last_reason = transient
                        .iter()
                        .map(|f| format!("{}: {}", f.code, f.message))
                        .collect::<Vec<_>>()
                        .join("; ");
                    pending = transient.iter().map(|f| f.index).collect();
                }
                Err(err) if err.transient => {
                    throttled = err.throttled;
                    last_reason = err.reason;
                }
                Err(err) => {
                    refused.extend(pending);
                    refused.sort_unstable();
                    return Err(ChunkFailure {
                        unpublished: refused,
                        reason: with_refusal(err.reason, refusal),
                        entries_only: false,
                    });
                }
            }
            if attempt == ATTEMPTS {
                break;
            }
            tracing::warn!(topic_arn = %self.topic_arn, attempt, pending = pending.len(), reason = %last_reason, "outcome publish failed; retrying");
            tokio::time::sleep(backoff(attempt, throttled)).await;
        }
        // Entries SNS kept failing, or calls that kept failing (then none of
        // the pending entries is known to be out).
        refused.extend(pending);
        refused.sort_unstable();
        Err(ChunkFailure {
            unpublished: refused,
            reason: with_refusal(last_reason, refusal),
            entries_only: false,
        })
    }
}

/// Why calls failed, and the entry SNS refused before them, if one was.
fn with_refusal(reason: String, refusal: Option<String>) -> String {
    match refusal {
        Some(refused) => format!("{reason} (an entry was also refused: {refused})"),
        None => reason,
    }
}

/// `entries` cut into `PublishBatch` calls, in order: at most
/// [`BATCH_SIZE`] entries and [`BATCH_BYTES`] of messages each.
fn batches(entries: &[Entry]) -> Vec<std::ops::Range<usize>> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (index, entry) in entries.iter().enumerate() {
        let size = entry.size();
        if index > start && (index - start == BATCH_SIZE || bytes + size > BATCH_BYTES) {
            batches.push(start..index);
            (start, bytes) = (index, 0);
        }
        bytes += size;
    }
    if start < entries.len() {
        batches.push(start..entries.len());
    }
    batches
}

/// What of a chunk was not published, and why.
struct ChunkFailure {
    /// Indices into the chunk.
    unpublished: Vec<usize>,
    reason: String,
    /// SNS answered and refused single entries (a sender fault): the other
    /// chunks are still worth sending. Otherwise the calls themselves
    /// failed, and the rest is not tried.
    entries_only: bool,
}

impl Publisher for SnsPublisher {
    fn publish<'a>(&'a self, outcomes: &'a [Outcome]) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            let entries: Vec<Entry> = outcomes
                .iter()
                .map(|outcome| Entry {
                    message: outcome.to_message(),
                    attributes: outcome.attributes(),
                })
                .collect();
            let mut unpublished = Vec::new();
            let mut first_reason = None;
            for batch in batches(&entries) {
                let Err(failure) = self.publish_chunk(&entries[batch.clone()]).await else {
                    continue;
                };
                unpublished.extend(failure.unpublished.iter().map(|i| batch.start + i));
                first_reason.get_or_insert(failure.reason);
                if !failure.entries_only {
                    unpublished.extend(batch.end..outcomes.len());
                    break;
                }
            }
            match first_reason {
                None => Ok(()),
                Some(reason) => Err(PublishError::Failed {
                    destination: self.topic_arn.clone(),
                    failed: unpublished.len(),
                    total: outcomes.len(),
                    reason,
                    unpublished,
                }),
            }
        })
    }
}

impl TopicPublisher for Sns {
    fn publish<'a>(
        &'a self,
        topic_arn: &'a str,
        subject: Option<&'a str>,
        message: &'a str,
        attributes: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<String, TopicPublishError>> {
        Box::pin(async move {
            let mut form = Form::new("Publish", message.len() * 3);
            form.field(format_args!("TopicArn"), topic_arn);
            form.field(format_args!("Message"), message);
            if let Some(subject) = subject {
                form.field(format_args!("Subject"), subject);
            }
            form.attributes(
                format_args!("MessageAttributes"),
                attributes.iter().map(|(name, value)| (name.as_str(), value.as_str())),
            );
            let answer = with_retries("sns Publish", || self.call(&form))
                .await
                .map_err(|err| TopicPublishError {
                    reason: err.reason,
                    past_deadline: err.past_deadline,
                })?;
            // Without a message id SNS did not say it published: not retried
            // (it may have), reported.
            xml::values(&answer, "MessageId")
                .pop()
                .ok_or_else(|| TopicPublishError {
                    reason: "SNS answered without a MessageId".to_string(),
                    past_deadline: false,
                })
        })
    }
}

/// An SNS client made on first use, so local runs that never touch SNS never
/// look for a region or credentials.
#[derive(Default)]
pub struct LazySnsClient {
    client: tokio::sync::OnceCell<Arc<Sns>>,
}

impl LazySnsClient {
    pub async fn get(&self) -> &Arc<Sns> {
        self.client
            .get_or_init(|| async { Arc::new(Sns::new(&super::sdk_config())) })
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
            TopicPublisher::publish(client.as_ref(), topic_arn, subject, message, attributes).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(bytes: usize) -> Entry {
        Entry {
            message: "x".repeat(bytes),
            attributes: BTreeMap::from([("status", "failed".to_string())]),
        }
    }

    #[test]
    fn batches_hold_ten_entries_and_256_kib_at_most() {
        let small: Vec<Entry> = (0..23).map(|_| entry(100)).collect();
        assert_eq!(batches(&small), [0..10, 10..20, 20..23]);
        // Outcomes near their own cap (240 KiB) go one a call; small ones share.
        let sizes = [240 * 1024, 100, 240 * 1024, 100_000, 100_000, 100_000, 10];
        let mixed: Vec<Entry> = sizes.iter().map(|&n| entry(n)).collect();
        let cut = batches(&mixed);
        assert_eq!(cut, [0..2, 2..3, 3..5, 5..7]);
        for batch in cut {
            let bytes: usize = mixed[batch].iter().map(Entry::size).sum();
            assert!(bytes <= BATCH_BYTES, "{bytes}");
        }
        assert!(batches(&[]).is_empty());
    }

    fn encoded(text: &str) -> String {
        let mut out = Vec::new();
        encode_into(&mut out, text);
        String::from_utf8(out).expect("ASCII")
    }

    #[test]
    fn values_are_percent_encoded_but_for_unreserved_characters() {
        assert_eq!(encoded("aZ09-_.~"), "aZ09-_.~");
        assert_eq!(encoded("a b&c=d+e/f"), "a%20b%26c%3Dd%2Be%2Ff");
        assert_eq!(encoded("{\"k\":1}"), "%7B%22k%22%3A1%7D");
        // Multi-byte characters, at the end and in the middle.
        assert_eq!(encoded("é"), "%C3%A9");
        assert_eq!(encoded("x€y"), "x%E2%82%ACy");
        assert_eq!(encoded("🚨"), "%F0%9F%9A%A8");
        assert_eq!(encoded(""), "");
        // As the SDKs encode (the `urlencoding` crate's set), every byte.
        let all: String = (1u8..=127).map(char::from).chain("éß€😀".chars()).collect();
        let expected: String = all
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        assert_eq!(encoded(&all), expected);
    }

    #[test]
    fn a_batch_form_numbers_entries_and_their_attributes_from_one() {
        let entry = |message: &str, attributes: &[(&'static str, &str)]| Entry {
            message: message.to_string(),
            attributes: attributes.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        };
        let entries = [
            entry("m one", &[("status", "ok")]),
            entry("skipped", &[]),
            entry("failed", &[]),
            entry("m&two", &[("b", "x y"), ("a", "1")]),
        ];
        // Entries 0 and 3 pending: numbered 1 and 2, their ids their indexes.
        let form = publish_batch_form("arn:aws:sns:us-east-1:1:t", &entries, &[0, 3]);
        assert_eq!(
            String::from_utf8(form.0).unwrap(),
            "Action=PublishBatch&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A1%3At\
             &PublishBatchRequestEntries.member.1.Id=0\
             &PublishBatchRequestEntries.member.1.Message=m%20one\
             &PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Name=status\
             &PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.DataType=String\
             &PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.StringValue=ok\
             &PublishBatchRequestEntries.member.2.Id=3\
             &PublishBatchRequestEntries.member.2.Message=m%26two\
             &PublishBatchRequestEntries.member.2.MessageAttributes.entry.1.Name=a\
             &PublishBatchRequestEntries.member.2.MessageAttributes.entry.1.Value.DataType=String\
             &PublishBatchRequestEntries.member.2.MessageAttributes.entry.1.Value.StringValue=1\
             &PublishBatchRequestEntries.member.2.MessageAttributes.entry.2.Name=b\
             &PublishBatchRequestEntries.member.2.MessageAttributes.entry.2.Value.DataType=String\
             &PublishBatchRequestEntries.member.2.MessageAttributes.entry.2.Value.StringValue=x%20y"
        );
    }

    #[test]
    fn failures_are_read_from_the_answer_and_an_unlisted_entry_is_one() {
        let answer = r#"<PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishBatchResult>
            <Successful><member><Id>0</Id><MessageId>m-0</MessageId></member></Successful>
            <Failed><member><Id>1</Id><Code>InternalError</Code><Message>try &amp; again</Message><SenderFault>false</SenderFault></member>
            <member><Id>2</Id><Code>InvalidParameter</Code><Message>too long</Message><SenderFault>true</SenderFault></member>
            <member><Id>2</Id><Code>Again</Code><Message>listed twice</Message><SenderFault>false</SenderFault></member>
            <member><Id>7</Id><Code>Other</Code><Message>not sent</Message><SenderFault>true</SenderFault></member></Failed>
            </PublishBatchResult></PublishBatchResponse>"#;
        let entry = |index, code: &str, message: &str, sender_fault| FailedEntry {
            index,
            code: code.into(),
            message: message.into(),
            sender_fault,
        };
        assert_eq!(
            batch_failures(answer, &[0, 1, 2, 3]).unwrap(),
            [
                entry(1, "InternalError", "try & again", false),
                entry(2, "InvalidParameter", "too long", true),
                entry(
                    3,
                    "NoResult",
                    "the answer lists entry 3 neither as published nor as failed",
                    false
                ),
            ],
            "an id listed twice counts once; an id not sent is ignored; entry 3 was not listed"
        );
        let all_published =
            "<PublishBatchResult><Successful><member><Id>0</Id></member><member><Id>4</Id></member></Successful><Failed/></PublishBatchResult>";
        assert!(batch_failures(all_published, &[0, 4]).unwrap().is_empty());
        for not_an_answer in ["", "<html>gateway</html>", "<PublishResponse/>"] {
            let err = batch_failures(not_an_answer, &[0]).unwrap_err();
            assert!(err.transient && err.reason.contains("PublishBatchResult"), "{err:?}");
        }
    }

    #[test]
    fn error_answers_name_the_code_and_say_whether_to_retry() {
        let answer = |code: &str| {
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>it said so</Message></Error>\
                 <RequestId>req-1</RequestId></ErrorResponse>"
            )
        };
        let not_found = answered_error(404, &answer("NotFound"));
        assert_eq!(not_found.reason, "HTTP 404 NotFound: it said so (request id req-1)");
        assert!(!not_found.transient && !not_found.throttled);
        let throttled = answered_error(400, &answer("Throttling"));
        assert!(throttled.transient && throttled.throttled);
        assert!(answered_error(400, &answer("KMSThrottling")).throttled);
        assert!(answered_error(429, "").throttled);
        let timed_out = answered_error(400, &answer("RequestTimeout"));
        assert!(timed_out.transient && !timed_out.throttled);
        assert!(answered_error(500, &answer("InternalFailure")).transient);
        assert!(answered_error(503, "").transient);
        assert_eq!(answered_error(503, "").reason, "HTTP 503");
        assert!(!answered_error(403, &answer("AuthorizationError")).transient);
        assert!(!answered_error(400, &answer("InvalidParameter")).transient);
    }

    #[tokio::test]
    async fn without_a_region_or_endpoint_a_call_says_to_set_aws_region() {
        let sdk = super::super::sdk_config_from(|name| match name {
            "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("x".to_string()),
            _ => None,
        });
        let form = Form::new("Publish", 0);
        let err = Sns::new(&sdk).call(&form).await.unwrap_err();
        assert!(err.reason.contains("AWS_REGION") && !err.transient, "{err:?}");
    }
}
