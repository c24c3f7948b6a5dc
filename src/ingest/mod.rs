//! Ingest: SNS records (or bare documents, for the CLI) → [`Envelope`]s.
//!
//! Every record either becomes an envelope or a [`Rejected`] that keeps the
//! original message, so nothing is lost and one bad record never stops the
//! others.

pub mod matano;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{validate_schema_name, SchemaRouting};
use crate::requeue::Receipt;
pub use matano::{MatanoAlertChange, Severity};

/// SNS's own limit for one message; anything larger is not from SNS.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// SQS's own limit for one message body.
const MAX_SQS_BODY_BYTES: usize = 1024 * 1024;

/// The largest document the CLI reads: Lambda's limit for a synchronous
/// event, the largest a record given to `run` (an event, an on-failure
/// record) wraps. Each message inside is held to [`MAX_MESSAGE_BYTES`].
const MAX_DOCUMENT_BYTES: usize = 6 * 1024 * 1024;

/// The schema name of Matano alert changes.
const MATANO_SCHEMA: &str = "matano";

/// One ingested message: where it came from and its JSON payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Selects the alert policy: `package alert.<schema>`.
    pub schema: String,
    pub message_id: String,
    pub topic_arn: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
    pub subject: Option<String>,
    /// SNS message attributes (string values).
    pub attributes: BTreeMap<String, String>,
    /// The message body parsed as JSON; for Matano, normalized so
    /// `destination_to_alert_info` is always at the top level when present.
    /// Shared with the alerts made of it: never copied.
    pub payload: Arc<Value>,
    /// The typed view of a Matano payload.
    pub matano: Option<MatanoAlertChange>,
    /// Makes a payload seen again a new change rather than a redelivery
    /// (`play` runs AlertChain's scenarios so: each event is a new alert).
    pub occurrence: Option<String>,
    /// The change key a decision record holds: a replay derives the ids
    /// that were recorded, however they were derived then.
    pub recorded_key: Option<String>,
    /// `message_id` is SNS's, the same for every delivery of one publish
    /// (a Lambda SNS record, an SNS envelope, an HTTP delivery). SQS gives a
    /// message a new id when it is redriven from a dead-letter queue, and a
    /// bare payload has none: those are keyed by their content alone.
    pub published_id: bool,
}

impl Envelope {
    /// Identifies the change this message carries; alert and outcome ids are
    /// derived from it, so a redelivery produces the same ids. A Matano
    /// change is its alert's update; any other message is its content as
    /// one SNS publish carried it: SNS keeps the message id across retries
    /// and redeliveries, and gives the same content published again a new
    /// one — a new alert, as AlertChain makes every event. A message with no
    /// SNS id (raw SQS delivery, a bare payload) is its content alone.
    pub fn change_key(&self) -> String {
        if let Some(key) = &self.recorded_key {
            return key.clone();
        }
        match &self.matano {
            Some(change) => change.change_key(),
            None => {
                let content = format!("{}/{}", self.schema, content_hash(&self.payload));
                match (&self.occurrence, self.message_id.as_str()) {
                    (Some(occurrence), _) => format!("{content}#{occurrence}"),
                    (None, message_id) if self.published_id && !message_id.is_empty() => {
                        format!("{content}@{message_id}")
                    }
                    (None, _) => content,
                }
            }
        }
    }
}

/// A message that could not be ingested, with the original kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub message_id: Option<String>,
    pub topic_arn: Option<String>,
    /// The message exactly as received (publishers truncate it to fit).
    pub original: String,
    pub error: IngestError,
}

impl Rejected {
    fn boxed(
        message_id: Option<String>,
        topic_arn: Option<String>,
        original: String,
        error: IngestError,
    ) -> Box<Rejected> {
        Box::new(Rejected {
            message_id,
            topic_arn,
            original,
            error,
        })
    }
}

/// Why a message was rejected. Each names what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("message is empty")]
    Empty,
    #[error("message is {bytes} bytes, over the {limit}-byte limit")]
    Oversize { bytes: usize, limit: usize },
    #[error("message is not JSON: {reason}")]
    NotJson { reason: String },
    #[error("message is JSON but not an object (found {found})")]
    NotAnObject { found: &'static str },
    #[error("record {index} is not an SNS notification: {reason}")]
    NotSnsRecord { index: usize, reason: String },
    #[error("record {index} is not an SQS message: {reason}")]
    NotSqsRecord { index: usize, reason: String },
    #[error("payload does not match schema {schema:?} at `{path}`: {reason}")]
    WrongShape {
        schema: String,
        path: String,
        reason: String,
    },
    #[error(
        "payload is not a Matano alert change (it has no `updated_alert`), and nothing routes it to another \
         schema: {}; the schema's alert policy is `package alert.<schema>`",
        if *has_topic {
            "give its messages a `schema` message attribute, map its topic in TOPIC_SCHEMAS (TOPIC_ARN=schema), \
             or set DEFAULT_SCHEMA"
        } else {
            "give its messages a `schema` message attribute or set DEFAULT_SCHEMA (it names no SNS topic, \
             as a raw-delivery SQS message or a bare payload does, so TOPIC_SCHEMAS cannot route it)"
        }
    )]
    NotMatano {
        /// Whether the message names its topic (which TOPIC_SCHEMAS could map).
        has_topic: bool,
    },
    #[error("schema {schema:?} is not a valid schema name: {reason}")]
    BadSchemaName { schema: String, reason: &'static str },
    #[error("no alert policy for schema {schema:?} (expected `package alert.{schema}`)")]
    UnknownSchema { schema: String },
    /// An SNS message of another type than `Notification`
    /// (`SubscriptionConfirmation`, `UnsubscribeConfirmation`): about a
    /// subscription, not an alert.
    #[error("an SNS {kind} message, not a Notification: it carries no alert (subscriptions are confirmed by the stack, not by this function)")]
    NotANotification { kind: String },
}

/// Boxed: a rejection is rare and carries the whole original message.
pub type Ingested = Result<Envelope, Box<Rejected>>;

/// Ingests a Lambda invocation payload: an `SnsEvent` with one or more
/// records. Anything else is rejected whole.
pub fn ingest_lambda_event(event: &Value, routing: &SchemaRouting) -> Vec<Ingested> {
    match event.get("Records").and_then(Value::as_array) {
        Some(records) => records
            .iter()
            .enumerate()
            .map(|(index, record)| ingest_sns_record(index, record, routing))
            .collect(),
        None => vec![Err(Rejected::boxed(
            None,
            None,
            event.to_string(),
            IngestError::NotSnsRecord {
                index: 0,
                reason: "invocation payload has no `Records` array".to_string(),
            },
        ))],
    }
}

/// One record of an `SqsEvent`: the SQS message id (what a partial batch
/// failure names) and what the record carried.
#[derive(Debug)]
pub struct QueuedRecord {
    pub item_id: String,
    /// How many times SQS has delivered it (`ApproximateReceiveCount`; 1
    /// when absent).
    pub deliveries: u32,
    /// How to make it visible again sooner (`eventSourceARN` and
    /// `receiptHandle`), when the record has both.
    pub receipt: Option<Receipt>,
    pub ingested: Ingested,
}

/// Whether a Lambda invocation payload is an `SqsEvent`: a record of it
/// comes from `aws:sqs`. Any record, not the first: one malformed record
/// must not send the whole batch down the SNS path, where every record is
/// rejected and none retried.
pub fn is_sqs_event(event: &Value) -> bool {
    event.get("Records").and_then(Value::as_array).is_some_and(|records| {
        records
            .iter()
            .any(|record| record.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
    })
}

/// Whether a document is a Lambda `SnsEvent`: a record of it comes from SNS.
/// Other documents with `Records` (a CloudTrail log file) are payloads.
pub fn is_sns_event(document: &Value) -> bool {
    document
        .get("Records")
        .and_then(Value::as_array)
        .is_some_and(|records| {
            records.iter().any(|record| {
                record
                    .get("Sns")
                    .or_else(|| record.get("sns"))
                    .is_some_and(Value::is_object)
                    || record.get("EventSource").and_then(Value::as_str) == Some("aws:sns")
            })
        })
}

/// Whether a document is an SNS notification as HTTP subscribers receive it.
pub fn is_notification(document: &Value) -> bool {
    document.get("Type").and_then(Value::as_str) == Some("Notification")
        && document.get("Message").is_some_and(Value::is_string)
}

/// SNS's other message types, with the fields SNS gives them (so that a
/// payload of its own with a `Type` field is not taken for one).
fn subscription_message(document: &Value) -> Option<IngestError> {
    let kind = document.get("Type").and_then(Value::as_str)?;
    let about_subscription = matches!(kind, "SubscriptionConfirmation" | "UnsubscribeConfirmation")
        && document.get("TopicArn").is_some_and(Value::is_string)
        && document.get("Token").is_some_and(Value::is_string);
    about_subscription.then(|| IngestError::NotANotification { kind: kind.to_string() })
}

/// Ingests an `SqsEvent`: each body is an SNS notification (the queue
/// subscribed with raw delivery off, so the topic and attributes come
/// along) or a bare payload (raw delivery on: the schema from the SQS
/// message attribute `schema`).
pub fn ingest_sqs_event(event: &Value, routing: &SchemaRouting) -> Vec<QueuedRecord> {
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    records
        .iter()
        .enumerate()
        .map(|(index, record)| QueuedRecord {
            item_id: str_field(record, "messageId").unwrap_or_default(),
            deliveries: record
                .pointer("/attributes/ApproximateReceiveCount")
                .and_then(Value::as_str)
                .and_then(|count| count.parse().ok())
                .unwrap_or(1),
            receipt: str_field(record, "eventSourceARN")
                .zip(str_field(record, "receiptHandle"))
                .map(|(queue_arn, handle)| Receipt { queue_arn, handle }),
            ingested: ingest_sqs_record(index, record, routing),
        })
        .collect()
}

fn ingest_sqs_record(index: usize, record: &Value, routing: &SchemaRouting) -> Ingested {
    let item_id = str_field(record, "messageId");
    let Some(body) = record.get("body").and_then(Value::as_str) else {
        return Err(Rejected::boxed(
            item_id,
            None,
            record.to_string(),
            IngestError::NotSqsRecord {
                index,
                reason: "record has no `body` string".to_string(),
            },
        ));
    };
    let reject = |error| Rejected::boxed(item_id.clone(), None, body.to_string(), error);
    // The body may be SNS's envelope around a message at SNS's limit: the
    // message itself is checked against that below; the body against SQS's.
    match body.len() {
        0 => return Err(reject(IngestError::Empty)),
        n if n > MAX_SQS_BODY_BYTES => {
            return Err(reject(IngestError::Oversize {
                bytes: n,
                limit: MAX_SQS_BODY_BYTES,
            }))
        }
        _ => {}
    }
    let document: Value = serde_json::from_str(body).map_err(|err| reject(not_json(&err)))?;
    if let Some(error) = subscription_message(&document) {
        return Err(reject(error));
    }
    // SNS's envelope (raw delivery off). Its `TopicArn` is not required:
    // scenarios written by hand leave it out.
    if document.get("Type").and_then(Value::as_str) == Some("Notification") && document.get("Message").is_some() {
        let message_id = str_field(&document, "MessageId").or(item_id.clone());
        let topic_arn = str_field(&document, "TopicArn");
        return ingest_notification(index, &document, routing).map_err(|error| {
            let original = str_field(&document, "Message").unwrap_or_else(|| body.to_string());
            Rejected::boxed(message_id, topic_arn, original, error)
        });
    }
    // A bare payload (raw delivery, or sent to the queue directly) is a
    // message: held to the same limit as one SNS delivers.
    check_size(body.len()).map_err(reject)?;
    let mut envelope = envelope_from_payload(
        document,
        item_id.clone().unwrap_or_default(),
        sqs_attributes(record),
        None,
        routing,
    )
    .map_err(reject)?;
    // When SQS took it (milliseconds since the epoch): the same on a redelivery.
    envelope.timestamp = record
        .pointer("/attributes/SentTimestamp")
        .and_then(Value::as_str)
        .and_then(|ms| ms.parse::<i64>().ok())
        .and_then(DateTime::<Utc>::from_timestamp_millis);
    Ok(received_now(envelope))
}

/// SQS `messageAttributes`: `{"name": {"stringValue": "v", "dataType": "String"}}`,
/// or `{"binaryValue": "<base64>", "dataType": "Binary"}`.
fn sqs_attributes(record: &Value) -> BTreeMap<String, String> {
    record
        .get("messageAttributes")
        .and_then(Value::as_object)
        .map(|attrs| {
            attrs
                .iter()
                .filter_map(|(name, attr)| {
                    let text = match attr.get("stringValue").and_then(Value::as_str) {
                        Some(text) => text.to_string(),
                        None => binary_text(attr.get("binaryValue")?.as_str()?),
                    };
                    Some((name.clone(), text))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A `Binary` attribute's value (base64) as text: its bytes when they are
/// UTF-8, else as written, so that a `schema` given so is read, or refused
/// by name, never silently dropped.
fn binary_text(encoded: &str) -> String {
    data_encoding::BASE64
        .decode(encoded.as_bytes())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| encoded.to_string())
}

/// Ingests a document given to the CLI: an `SnsEvent`, a bare SNS
/// notification (`{"Type":"Notification","Message":...}`, as delivered to
/// HTTP subscribers), or a bare payload.
pub fn ingest_document(bytes: &[u8], routing: &SchemaRouting) -> Vec<Ingested> {
    // The text only for a rejection: a document read well is not scanned for it.
    let text = || String::from_utf8_lossy(bytes).into_owned();
    let reject = |error| vec![Err(Rejected::boxed(None, None, text(), error))];
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return reject(IngestError::Oversize {
            bytes: bytes.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    let document: Value = match serde_json::from_slice(bytes) {
        Ok(document) => document,
        // Too large to be a message anyway: said first.
        Err(err) => return reject(check_size(bytes.len()).err().unwrap_or_else(|| not_json(&err))),
    };
    if is_sqs_event(&document) {
        return ingest_sqs_event(&document, routing)
            .into_iter()
            .map(|r| r.ingested)
            .collect();
    }
    if is_sns_event(&document) {
        return ingest_lambda_event(&document, routing);
    }
    // A Lambda on-failure destination record: the failed event is inside.
    if let Some(event) = document.get("requestPayload").filter(|p| is_sns_event(p)) {
        return ingest_lambda_event(event, routing);
    }
    if let Some(error) = subscription_message(&document) {
        return reject(error);
    }
    if is_notification(&document) {
        let message_id = str_field(&document, "MessageId");
        let topic_arn = str_field(&document, "TopicArn");
        return vec![ingest_notification(0, &document, routing)
            .map_err(|error| Rejected::boxed(message_id, topic_arn, text(), error))];
    }
    // A bare payload is one message; an event or a record wrapping
    // messages has each of them checked on its own, above.
    if let Err(error) = check_size(bytes.len()) {
        return reject(error);
    }
    // The bytes, not the re-serialized document: the same id for the same
    // file, without serializing the payload again.
    let message_id = format!("local-{}", data_encoding::HEXLOWER.encode(&Sha256::digest(bytes)[..8]));
    vec![
        envelope_from_payload(document, message_id, Default::default(), None, routing)
            .map(received_now)
            .map_err(|error| Rejected::boxed(None, None, text(), error)),
    ]
}

/// A message with no time of its own (a bare payload) is stamped when it
/// is read: its alerts' `created_at` is then the same for every side that
/// decides it (a replay's baseline and candidate), and on its record.
fn received_now(mut envelope: Envelope) -> Envelope {
    envelope.timestamp.get_or_insert_with(Utc::now);
    envelope
}

/// The envelope of a payload a decision record kept: its recorded schema
/// (whatever routed it then), message id, topic, time and change key.
pub fn envelope_from_recorded(
    payload: Value,
    schema: &str,
    message_id: Option<&str>,
    topic_arn: Option<&str>,
    timestamp: Option<DateTime<Utc>>,
    change_key: Option<&str>,
) -> Result<Envelope, IngestError> {
    let routed = BTreeMap::from([("schema".to_string(), schema.to_string())]);
    let mut envelope = envelope_from_payload(
        payload,
        message_id.unwrap_or_default().to_string(),
        routed,
        topic_arn,
        &SchemaRouting::from(schema),
    )?;
    envelope.attributes.clear();
    envelope.topic_arn = topic_arn.map(str::to_string);
    envelope.timestamp = timestamp;
    envelope.recorded_key = change_key.map(str::to_string);
    Ok(envelope)
}

fn ingest_sns_record(index: usize, record: &Value, routing: &SchemaRouting) -> Ingested {
    let sns = record.get("Sns").or_else(|| record.get("sns"));
    let Some(sns) = sns.filter(|s| s.is_object()) else {
        return Err(Rejected::boxed(
            None,
            None,
            record.to_string(),
            IngestError::NotSnsRecord {
                index,
                reason: "record has no `Sns` object".to_string(),
            },
        ));
    };
    // A Lambda record's `Sns` is SNS's own: any other type is not an alert.
    let kind = sns
        .get("Type")
        .and_then(Value::as_str)
        .filter(|kind| *kind != "Notification");
    let ingested = match kind {
        Some(kind) => Err(IngestError::NotANotification { kind: kind.to_string() }),
        None => ingest_notification(index, sns, routing),
    };
    ingested.map_err(|error| {
        let original = sns
            .get("Message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| record.to_string());
        Rejected::boxed(str_field(sns, "MessageId"), str_field(sns, "TopicArn"), original, error)
    })
}

/// An SNS notification object (the `Sns` of a Lambda record, or an HTTP
/// delivery body, or an SQS body), record `index` of its event; all carry
/// `Message` as a string.
fn ingest_notification(index: usize, sns: &Value, routing: &SchemaRouting) -> Result<Envelope, IngestError> {
    let message = match sns.get("Message") {
        Some(Value::String(message)) => message,
        _ => {
            return Err(IngestError::NotSnsRecord {
                index,
                reason: "`Message` is missing or not a string".to_string(),
            })
        }
    };
    if message.trim().is_empty() {
        return Err(IngestError::Empty);
    }
    check_size(message.len())?;
    let payload: Value = serde_json::from_str(message).map_err(|err| not_json(&err))?;
    let topic_arn = str_field(sns, "TopicArn");
    let mut envelope = envelope_from_payload(
        payload,
        str_field(sns, "MessageId").unwrap_or_default(),
        message_attributes(sns),
        topic_arn.as_deref(),
        routing,
    )?;
    envelope.topic_arn = topic_arn;
    envelope.published_id = true;
    envelope.subject = str_field(sns, "Subject");
    envelope.timestamp = str_field(sns, "Timestamp")
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc));
    Ok(envelope)
}

fn envelope_from_payload(
    mut payload: Value,
    message_id: String,
    attributes: BTreeMap<String, String>,
    topic_arn: Option<&str>,
    routing: &SchemaRouting,
) -> Result<Envelope, IngestError> {
    if !payload.is_object() {
        return Err(IngestError::NotAnObject {
            found: json_type(&payload),
        });
    }
    let routed = attributes
        .get("schema")
        .map(String::as_str)
        .or_else(|| routing.of_topic(topic_arn));
    let schema = match routed {
        Some(schema) => schema.to_string(),
        None if matano::looks_like_matano(&payload) => MATANO_SCHEMA.to_string(),
        None => routing.default.clone(),
    };
    validate_schema_name(&schema).map_err(|reason| IngestError::BadSchemaName {
        schema: schema.clone(),
        reason,
    })?;
    let matano = if schema == MATANO_SCHEMA {
        // Not routed here on purpose, and not Matano's at all: say how to route it.
        if routed.is_none() && payload.get("updated_alert").is_none() {
            return Err(IngestError::NotMatano {
                has_topic: topic_arn.is_some(),
            });
        }
        let change: MatanoAlertChange = crate::typed::from_value(&payload).map_err(|err| IngestError::WrongShape {
            schema: schema.clone(),
            path: err.path,
            reason: err.reason,
        })?;
        // The id keys the state table (changes, claims): one too long to
        // store is refused here, not retried until the dead-letter queue.
        if let Some(reason) = crate::model::ids::id_too_long(&change.updated_alert.id) {
            return Err(IngestError::WrongShape {
                schema,
                path: "updated_alert.id".to_string(),
                reason: format!("the id {reason}; Matano's alert ids are UUIDs"),
            });
        }
        matano::normalize_payload(&mut payload, &change);
        Some(change)
    } else {
        None
    };
    Ok(Envelope {
        schema,
        message_id,
        topic_arn: None,
        timestamp: None,
        subject: None,
        attributes,
        payload: Arc::new(payload),
        matano,
        occurrence: None,
        recorded_key: None,
        published_id: false,
    })
}

/// `MessageAttributes` as SNS sends them: `{"name": {"Type": "String", "Value": "v"}}`.
fn message_attributes(sns: &Value) -> BTreeMap<String, String> {
    sns.get("MessageAttributes")
        .and_then(Value::as_object)
        .map(|attrs| {
            attrs
                .iter()
                .filter_map(|(name, attr)| {
                    let value = attr.get("Value").or_else(|| attr.get("value"))?.as_str()?;
                    let kind = attr.get("Type").or_else(|| attr.get("type")).and_then(Value::as_str);
                    let text = match kind {
                        Some("Binary") => binary_text(value),
                        _ => value.to_string(),
                    };
                    Some((name.clone(), text))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn check_size(bytes: usize) -> Result<(), IngestError> {
    match bytes {
        0 => Err(IngestError::Empty),
        n if n > MAX_MESSAGE_BYTES => Err(IngestError::Oversize {
            bytes: n,
            limit: MAX_MESSAGE_BYTES,
        }),
        _ => Ok(()),
    }
}

fn not_json(err: &serde_json::Error) -> IngestError {
    IngestError::NotJson {
        reason: err.to_string(),
    }
}

fn str_field(value: &Value, name: &str) -> Option<String> {
    value.get(name).and_then(Value::as_str).map(str::to_string)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Hex SHA-256 of a value's JSON (object keys are sorted by serde_json's map).
pub fn content_hash(value: &Value) -> String {
    hex::encode(Sha256::digest(value.to_string().as_bytes()))
}

#[cfg(test)]
mod tests;
