//! The alert model: what an alert policy returns, and the alert the host
//! builds from it for the action policy.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use data_encoding::HEXLOWER;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ingest::Envelope;
use crate::model::ids::id_too_long;

/// One element of an alert policy's `alert` set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertDraft {
    pub title: String,
    #[serde(default, deserialize_with = "crate::typed::null_as_default")]
    pub description: String,
    #[serde(default, deserialize_with = "crate::typed::null_as_default")]
    pub source: String,
    #[serde(default, deserialize_with = "crate::typed::null_as_default")]
    pub severity: String,
    #[serde(default, deserialize_with = "crate::typed::null_as_default")]
    pub namespace: String,
    #[serde(default, deserialize_with = "crate::typed::null_as_default")]
    pub attrs: Vec<Attr>,
    #[serde(default, deserialize_with = "crate::typed::null_as_default")]
    pub refs: Vec<Reference>,
}

impl AlertDraft {
    /// The first of its namespace and attribute ids too long to store.
    pub fn overlong_id(&self) -> Option<String> {
        let namespace = id_too_long(&self.namespace).map(|reason| format!("`namespace` {reason}"));
        namespace.or_else(|| {
            self.attrs.iter().enumerate().find_map(|(i, attr)| {
                id_too_long(attr.id.as_deref().unwrap_or_default()).map(|reason| format!("`attrs[{i}].id` {reason}"))
            })
        })
    }
}

/// A named value attached to an alert, by the alert policy or by a commit.
/// Its `id` identifies it (AlertChain's model): one key may appear several
/// times, and a commit with an attribute's id replaces that attribute. The
/// host gives every attribute without one an id derived from where it came
/// from, so a retry or redelivery gives the same ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub key: String,
    pub value: Value,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "crate::typed::null_as_default")]
    pub persist: bool,
    /// Seconds a persisted attribute lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
}

/// An attribute id derived from `seed`, in UUID form: stable for the same
/// seed (a retry, a redelivery), distinct for distinct ones.
pub fn derived_attr_id(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    let hex = HEXLOWER.encode(&digest[..16]);
    let mut id = String::with_capacity(36);
    for (start, end) in [(0, 8), (8, 12), (12, 16), (16, 20), (20, 32)] {
        if start > 0 {
            id.push('-');
        }
        id.push_str(&hex[start..end]);
    }
    id
}

impl Attr {
    /// A plain attribute: no id or type, not persisted.
    pub fn new(key: impl Into<String>, value: Value) -> Attr {
        Attr {
            id: None,
            key: key.into(),
            value,
            kind: None,
            persist: false,
            ttl: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    pub url: String,
    #[serde(default)]
    pub title: String,
}

/// An alert as the action policy sees it (`input.alert`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Derived from the change and the draft: a redelivery yields the same id.
    pub id: String,
    pub schema: String,
    pub title: String,
    pub description: String,
    pub source: String,
    pub severity: String,
    pub namespace: String,
    pub attrs: Vec<Attr>,
    pub refs: Vec<Reference>,
    /// The payload the alert policy saw, shared with its envelope.
    pub data: Arc<Value>,
    pub created_at: DateTime<Utc>,
}

impl Alert {
    pub fn from_draft(draft: AlertDraft, envelope: &Envelope) -> Alert {
        let draft_json = serde_json::to_string(&draft).unwrap_or_default();
        let digest = Sha256::digest(format!("{}\n{}", envelope.change_key(), draft_json));
        let mut alert = Alert {
            id: HEXLOWER.encode(&digest[..16]),
            schema: envelope.schema.clone(),
            title: draft.title,
            description: draft.description,
            source: draft.source,
            severity: draft.severity,
            namespace: draft.namespace,
            attrs: Vec::new(),
            refs: draft.refs,
            data: Arc::clone(&envelope.payload),
            // The change's own time keeps ids and replays deterministic.
            created_at: envelope
                .matano
                .as_ref()
                .and_then(|m| m.updated_alert.creation_time)
                .or(envelope.timestamp)
                .unwrap_or_else(Utc::now),
        };
        for (index, mut attr) in draft.attrs.into_iter().enumerate() {
            if attr.id.as_deref().is_none_or(str::is_empty) {
                attr.id = Some(derived_attr_id(&format!("{}/attr/{index}", alert.id)));
            }
            alert.upsert_attr(attr);
        }
        alert
    }

    /// Sets an attribute: the one with the same id is replaced where it
    /// stands, else it is added at the end.
    pub fn upsert_attr(&mut self, attr: Attr) {
        match self.attrs.iter_mut().find(|a| a.id.is_some() && a.id == attr.id) {
            Some(existing) => *existing = attr,
            None => self.attrs.push(attr),
        }
    }
}
