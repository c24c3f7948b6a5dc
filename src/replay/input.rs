//! What a replay reads: files, directories (recursively) or S3 objects of
//! decision records, SNS events, on-failure records or bare payloads —
//! one JSON document or JSON lines, gzip or not — turned into changes.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::config::SchemaRouting;
use crate::ingest::{envelope_from_recorded, ingest_document, Envelope};
use crate::model::decision::{DecisionRecord, DecisionResult, RECORD_SCHEMA_VERSION, RECORD_TYPE};

/// Why an input could not be read; names the file or object and the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("{origin}: {reason}")]
    Read { origin: String, reason: String },
    #[error("{origin}:{line}: {reason}")]
    Line {
        origin: String,
        line: usize,
        reason: String,
    },
}

/// One input unit: a file's or object's bytes, named.
#[derive(Debug, Clone)]
pub struct Source {
    pub origin: String,
    pub bytes: Vec<u8>,
}

/// One line (or whole document) to decode, with where it came from.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub origin: String,
    /// 1-based; 0 for a whole-file document.
    pub line: usize,
    pub text: String,
}

impl Chunk {
    pub fn at(&self) -> String {
        match self.line {
            0 => self.origin.clone(),
            line => format!("{}:{line}", self.origin),
        }
    }
}

/// A change to replay: the message as ingested, and what was decided for
/// it when it was recorded.
#[derive(Debug)]
pub struct Change {
    /// `file:line` (or the file) it was read from.
    pub at: String,
    pub envelope: Envelope,
    pub recorded: Option<DecisionRecord>,
}

/// What one chunk holds.
#[derive(Debug)]
pub enum Decoded {
    Changes(Vec<Change>),
    /// Nothing to decide again (a rejected message's record), with why.
    Skipped(&'static str),
}

/// Every file below `path` (or `path` itself), in name order.
pub fn local_files(path: &Path) -> Result<Vec<PathBuf>, InputError> {
    let read_error = |path: &Path, err: std::io::Error| InputError::Read {
        origin: path.display().to_string(),
        reason: err.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(|err| read_error(path, err))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|err| read_error(&dir, err))? {
            let path = entry.map_err(|err| read_error(&dir, err))?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if !path.file_name().is_some_and(|n| {
                let name = n.to_string_lossy();
                // Hidden files, and what a crashed `run --records` left half written.
                name.starts_with('.') || name.ends_with(".partial")
            }) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// A source's text, gunzipped when it is gzip.
pub fn text_of(source: &Source) -> Result<String, InputError> {
    let bytes = &source.bytes;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .map_err(|err| InputError::Read {
                origin: source.origin.clone(),
                reason: format!("gzip: {err} (a truncated or corrupt object?)"),
            })?;
        return Ok(text);
    }
    String::from_utf8(bytes.clone()).map_err(|err| InputError::Read {
        origin: source.origin.clone(),
        reason: format!("not UTF-8 text: {err}"),
    })
}

/// A source's documents: the whole text when it is one JSON document (a
/// pretty-printed event), else one per non-empty line.
pub fn chunks(source: &Source) -> Result<Vec<Chunk>, InputError> {
    let text = text_of(source)?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let one_document = !trimmed.contains('\n') || serde_json::from_str::<serde::de::IgnoredAny>(trimmed).is_ok();
    if one_document {
        return Ok(vec![Chunk {
            origin: source.origin.clone(),
            line: if trimmed.contains('\n') { 0 } else { 1 },
            text: trimmed.to_string(),
        }]);
    }
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| Chunk {
            origin: source.origin.clone(),
            line: index + 1,
            text: line.to_string(),
        })
        .collect())
}

/// The changes of one chunk: a decision record's, or what ingesting the
/// document (an event, a notification, a payload) yields.
pub fn decode(chunk: &Chunk, routing: &SchemaRouting) -> Result<Decoded, InputError> {
    let line_error = |reason: String| InputError::Line {
        origin: chunk.origin.clone(),
        line: chunk.line,
        reason,
    };
    let value: Value = serde_json::from_str(&chunk.text).map_err(|err| line_error(format!("not JSON: {err}")))?;
    if value.get("record_type").and_then(Value::as_str) == Some(RECORD_TYPE) {
        let version = value.get("schema_version").and_then(Value::as_u64);
        if version != Some(u64::from(RECORD_SCHEMA_VERSION)) {
            return Err(line_error(format!(
                "a decision record of schema_version {}, this build reads {RECORD_SCHEMA_VERSION}",
                version.map_or("(missing)".to_string(), |v| v.to_string())
            )));
        }
        let record: DecisionRecord =
            serde_json::from_value(value).map_err(|err| line_error(format!("not a decision record: {err}")))?;
        if record.resumed_at_round.is_some() {
            // Its message is replayed from its first record, which stops
            // where the workflow was suspended.
            return Ok(Decoded::Skipped(
                "a resumed workflow's later rounds (its message's first record is replayed)",
            ));
        }
        let (Some(payload), Some(schema)) = (record.payload.as_deref(), record.source.schema.as_deref()) else {
            return Ok(Decoded::Skipped("a rejected message: nothing was decided"));
        };
        match record.result {
            DecisionResult::Rejected => return Ok(Decoded::Skipped("a rejected message: nothing was decided")),
            DecisionResult::NotDecided => {
                return Ok(Decoded::Skipped("not decided then (its retry has its own record)"))
            }
            DecisionResult::Stale => return Ok(Decoded::Skipped("a stale change: not acted on")),
            _ => {}
        }
        if record.alerts.iter().any(|alert| !alert.retries.is_empty()) {
            return Ok(Decoded::Skipped(
                "actions were left to a retry of its invocation (the retry has its own record)",
            ));
        }
        let envelope = envelope_from_recorded(
            payload.clone(),
            schema,
            record.source.message_id.as_deref(),
            record.source.topic_arn.as_deref(),
            record.source.timestamp,
            record.source.change_key.as_deref(),
        )
        .map_err(|err| line_error(format!("the recorded payload: {err}")))?;
        return Ok(Decoded::Changes(vec![Change {
            at: chunk.at(),
            envelope,
            recorded: Some(record),
        }]));
    }
    let mut changes = Vec::new();
    for ingested in ingest_document(chunk.text.as_bytes(), routing) {
        match ingested {
            Ok(envelope) => changes.push(Change {
                at: chunk.at(),
                envelope,
                recorded: None,
            }),
            Err(rejected) => return Err(line_error(rejected.error.to_string())),
        }
    }
    Ok(Decoded::Changes(changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(origin: &str, bytes: &[u8]) -> Source {
        Source {
            origin: origin.into(),
            bytes: bytes.to_vec(),
        }
    }

    fn gzip(text: &str) -> Vec<u8> {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn json_lines_gzip_or_not_and_pretty_documents_are_read() {
        let lines = "{\"a\": 1}\n\n{\"b\": 2}\n";
        for bytes in [lines.as_bytes().to_vec(), gzip(lines)] {
            let read = chunks(&source("f.jsonl", &bytes)).unwrap();
            assert_eq!(read.iter().map(|c| c.line).collect::<Vec<_>>(), [1, 3]);
        }
        let pretty = "{\n  \"Records\": []\n}\n";
        let read = chunks(&source("event.json", pretty.as_bytes())).unwrap();
        assert_eq!((read.len(), read[0].at()), (1, "event.json".to_string()));
    }

    #[test]
    fn events_on_failure_records_and_payloads_are_changes_without_a_record() {
        let event: Value = serde_json::from_str(include_str!("../../tests/fixtures/sns_event_matano.json")).unwrap();
        let on_failure = serde_json::json!({
            "version": "1.0",
            "requestContext": {"requestId": "r-1", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
            "requestPayload": event,
            "responsePayload": {"errorType": "AlertResponder.PublishError"}
        });
        let payload = include_str!("../../tests/fixtures/matano_alert_change_v1.json");
        let sqs = include_str!("../../tests/fixtures/sqs_event_matano.json");
        for (name, text) in [
            ("event", event.to_string()),
            ("on-failure", on_failure.to_string()),
            ("payload", payload.to_string()),
            ("sqs", sqs.to_string()),
        ] {
            let source = source(name, text.as_bytes());
            let chunk = chunks(&source).unwrap().remove(0);
            let Decoded::Changes(changes) = decode(&chunk, &"matano".into()).unwrap() else {
                panic!("{name}: no change");
            };
            assert!(!changes.is_empty(), "{name}");
            assert_eq!(changes[0].envelope.schema, "matano", "{name}");
            assert!(changes.iter().all(|c| c.recorded.is_none()), "{name}");
        }
    }

    #[test]
    fn empty_inputs_and_partial_objects_are_not_inputs() {
        assert!(chunks(&source("empty", b"")).unwrap().is_empty());
        assert!(chunks(&source("blank.gz", &gzip("\n\n"))).unwrap().is_empty());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jsonl.gz"), gzip("{}")).unwrap();
        std::fs::write(dir.path().join("b.jsonl.gz.partial"), b"half").unwrap();
        std::fs::write(dir.path().join(".hidden"), b"x").unwrap();
        let files = local_files(dir.path()).unwrap();
        assert_eq!(files, [dir.path().join("a.jsonl.gz")]);
    }

    #[test]
    fn bad_inputs_name_the_file_and_line() {
        let bytes = gzip("{\"a\": 1}\n");
        let err = chunks(&source("s3://b/k.jsonl.gz", &bytes[..bytes.len() - 6])).unwrap_err();
        assert!(err.to_string().starts_with("s3://b/k.jsonl.gz: gzip: "), "{err}");

        let chunk = Chunk {
            origin: "r.jsonl".into(),
            line: 7,
            text: r#"{"record_type": "decision", "schema_version": 2}"#.into(),
        };
        let err = decode(&chunk, &"matano".into()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "r.jsonl:7: a decision record of schema_version 2, this build reads 1"
        );
        let chunk = Chunk {
            origin: "p.jsonl".into(),
            line: 2,
            text: "{\"updated_alert\": 5}".into(),
        };
        let err = decode(&chunk, &"matano".into()).unwrap_err().to_string();
        assert!(
            err.starts_with("p.jsonl:2: payload does not match schema \"matano\""),
            "{err}"
        );
    }
}
