//! The port decision records leave through: one gzip JSON-lines object per
//! invocation, `dt=YYYY-MM-DD/hour=HH/<name>.jsonl.gz`, named from the
//! records' own ids so that a Lambda retry of the same event overwrites its object
//! rather than adding a second one. S3 is in `aws::s3`, the in-memory sink
//! in `memory`; the local directory one (`run --records DIR`) is here.

use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use flate2::write::GzEncoder;
use futures::future::BoxFuture;
use sha2::{Digest, Sha256};

use crate::model::decision::DecisionRecord;

/// Why records could not be kept; the invocation fails and is retried.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RecordError {
    #[error("writing {count} decision record(s) to {destination} failed: {reason}")]
    Write {
        destination: String,
        count: usize,
        reason: String,
    },
    /// Still writing when the invocation had to answer.
    #[error("writing {count} decision record(s) did not finish before the invocation's deadline")]
    Late { count: usize },
}

/// One invocation's records, encoded, with where they go under the prefix.
#[derive(Debug, Clone)]
pub struct RecordObject {
    /// `dt=YYYY-MM-DD/hour=HH/<name>.jsonl.gz`.
    pub key: String,
    /// Gzip of one JSON record per line.
    pub body: Vec<u8>,
    pub count: usize,
}

impl RecordObject {
    /// Encodes `records`. The object's hour is the earliest source time of
    /// its records (SNS's timestamp: the same on every retry), else `now`.
    pub fn encode(records: &[DecisionRecord], now: DateTime<Utc>) -> RecordObject {
        let at = records.iter().filter_map(|r| r.source.timestamp).min().unwrap_or(now);
        let mut name = Sha256::new();
        for record in records {
            name.update(record.record_id.as_bytes());
            name.update(b"\n");
        }
        let name = hex::encode(&name.finalize()[..16]);
        // No file name or time in the gzip header: the same records, the same bytes.
        let mut gzip = GzEncoder::new(Vec::new(), flate2::Compression::default());
        for record in records {
            serde_json::to_writer(&mut gzip, record).expect("records serialize");
            gzip.write_all(b"\n").expect("writing to memory");
        }
        RecordObject {
            key: format!("dt={}/hour={}/{name}.jsonl.gz", at.format("%Y-%m-%d"), at.format("%H")),
            body: gzip.finish().expect("writing to memory"),
            count: records.len(),
        }
    }
}

/// Why an object of records could not be read back.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DecodeError {
    #[error("not a gzip stream, or a truncated one: {0}")]
    Gzip(String),
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: String },
}

/// The records of an object `RecordObject::encode` made.
pub fn decode(body: &[u8]) -> Result<Vec<DecisionRecord>, DecodeError> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::GzDecoder::new(body)
        .read_to_string(&mut text)
        .map_err(|err| DecodeError::Gzip(err.to_string()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|err| DecodeError::Line {
                line: index + 1,
                reason: err.to_string(),
            })
        })
        .collect()
}

/// Keeps decision records somewhere durable: S3, a directory, memory.
pub trait RecordSink: Send + Sync {
    /// Stores `object` under the sink's prefix, replacing one of the same key.
    fn write<'a>(&'a self, object: &'a RecordObject) -> BoxFuture<'a, Result<(), RecordError>>;
}

/// Records under a local directory, in the same layout as in S3.
pub struct DirRecords {
    root: PathBuf,
}

impl DirRecords {
    pub fn new(root: impl Into<PathBuf>) -> DirRecords {
        DirRecords { root: root.into() }
    }
}

impl RecordSink for DirRecords {
    fn write<'a>(&'a self, object: &'a RecordObject) -> BoxFuture<'a, Result<(), RecordError>> {
        Box::pin(async move {
            let path = self.root.join(&object.key);
            let failed = |err: std::io::Error| RecordError::Write {
                destination: path.display().to_string(),
                count: object.count,
                reason: err.to_string(),
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(failed)?;
            }
            // Written aside and renamed: a reader never sees half an object.
            let partial = path.with_extension("gz.partial");
            std::fs::write(&partial, &object.body).map_err(failed)?;
            std::fs::rename(&partial, &path).map_err(failed)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::model::decision::{DecisionResult, RecordContext};

    fn record(message_id: &str, minute: u32) -> DecisionRecord {
        let context = RecordContext {
            request_id: Some("req-1"),
            bundle_digest: "sha256:00",
            engine: "vm",
        };
        let rejected = crate::ingest::Rejected {
            message_id: Some(message_id.to_string()),
            topic_arn: None,
            original: "{".to_string(),
            error: crate::ingest::IngestError::Empty,
        };
        let mut record = DecisionRecord::of_rejected(&context, &rejected);
        record.source.timestamp = Some(format!("2026-11-29T07:{minute:02}:00Z").parse().unwrap());
        assert_eq!(record.result, DecisionResult::Rejected);
        record
    }

    #[test]
    fn an_object_is_named_by_its_records_and_dated_by_their_source() {
        let later: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        let one = RecordObject::encode(&[record("m-1", 30), record("m-2", 5)], later);
        assert!(one.key.starts_with("dt=2026-11-29/hour=07/"), "{}", one.key);
        assert!(one.key.ends_with(".jsonl.gz"));
        // A retry, later, with new decision times: the same key and bytes count.
        let again = RecordObject::encode(&[record("m-1", 30), record("m-2", 5)], later);
        assert_eq!(one.key, again.key);
        let other = RecordObject::encode(&[record("m-3", 30)], later);
        assert_ne!(one.key, other.key);

        let mut text = String::new();
        flate2::read::GzDecoder::new(&one.body[..])
            .read_to_string(&mut text)
            .unwrap();
        let lines: Vec<DecisionRecord> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].source.message_id.as_deref(), Some("m-1"));
        assert_eq!(one.count, 2);
    }

    #[test]
    fn records_without_a_source_time_are_dated_now() {
        let mut undated = record("m-1", 0);
        undated.source.timestamp = None;
        let now: DateTime<Utc> = "2026-03-04T22:10:00Z".parse().unwrap();
        assert!(RecordObject::encode(&[undated], now)
            .key
            .starts_with("dt=2026-03-04/hour=22/"));
    }

    #[tokio::test]
    async fn a_directory_keeps_the_s3_layout_and_a_retry_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let sink = DirRecords::new(dir.path());
        let object = RecordObject::encode(&[record("m-1", 1)], Utc::now());
        sink.write(&object).await.unwrap();
        sink.write(&object).await.unwrap();
        let hour = dir.path().join("dt=2026-11-29/hour=07");
        let files: Vec<_> = std::fs::read_dir(&hour).unwrap().collect();
        assert_eq!(files.len(), 1, "one object, no partial left behind");

        // A directory that cannot be created names where.
        let blocked = DirRecords::new(
            dir.path()
                .join("dt=2026-11-29/hour=07")
                .join(object.key.rsplit('/').next().unwrap()),
        );
        let err = blocked.write(&object).await.unwrap_err();
        assert!(err.to_string().contains("writing 1 decision record(s) to "), "{err}");
    }
}
