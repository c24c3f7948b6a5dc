//! The action policy's input across an alert's rounds:
//! `{alert, env, seq, called}`.

use std::collections::BTreeMap;

use crate::model::{ActionRecord, Alert, Attr};
use crate::policy::{to_policy_entries, to_policy_object, to_policy_value};

/// Everything but the attributes and `called` is fixed for the alert and
/// converted once; the attributes are converted again only when a commit
/// changed them, each `called` entry once, when its action has run.
pub(super) struct RoundInput {
    data: regorus::Value,
    env: regorus::Value,
    /// `input.alert` but for `attrs`, `data` included; built in round 0.
    alert_fields: Option<BTreeMap<regorus::Value, regorus::Value>>,
    /// `input.alert` for the attributes it was built with: rebuilt only
    /// when a commit changed them.
    alert: Option<(Vec<Attr>, regorus::Value)>,
    called: Vec<regorus::Value>,
    /// Give `alert.raw`: the payload as indented JSON text (AlertChain's).
    raw: bool,
}

impl RoundInput {
    pub(super) fn new(data: regorus::Value, env: regorus::Value, raw: bool) -> RoundInput {
        RoundInput {
            data,
            env,
            alert_fields: None,
            alert: None,
            called: Vec::new(),
            raw,
        }
    }

    /// `alert.data` is the payload the alert policy saw. The workflow
    /// changes nothing of the alert but its attributes.
    pub(super) fn input(&mut self, alert: &mut Alert, seq: u32, records: &[ActionRecord]) -> regorus::Value {
        let alert_value = match &self.alert {
            Some((source, converted)) if *source == alert.attrs => converted.clone(),
            _ => {
                let converted = self.alert_value(alert);
                self.alert = Some((alert.attrs.clone(), converted.clone()));
                converted
            }
        };
        let converted = self.called.len();
        self.called
            .extend(records[converted.min(records.len())..].iter().map(called_value));
        // Bulk-built from its four entries, not inserted one by one.
        let input = BTreeMap::from([
            (regorus::Value::from("alert"), alert_value),
            (
                regorus::Value::from("called"),
                regorus::Value::from(self.called.clone()),
            ),
            (regorus::Value::from("env"), self.env.clone()),
            (regorus::Value::from("seq"), regorus::Value::from(seq)),
        ]);
        regorus::Value::from(input)
    }

    /// `input.alert` with the alert's current attributes.
    fn alert_value(&mut self, alert: &mut Alert) -> regorus::Value {
        let json = serde_json::to_value(&alert.attrs).expect("attributes serialize");
        let attrs = to_policy_value(&json);
        let mut fields = match self.alert_fields.take() {
            Some(fields) => fields,
            None => self.alert_head(alert),
        };
        fields.insert(regorus::Value::from("attrs"), attrs);
        let value = regorus::Value::from(fields.clone());
        fields.remove(&regorus::Value::from("attrs"));
        self.alert_fields = Some(fields);
        value
    }

    /// The alert's fields but for `attrs`, with the converted payload as
    /// `data`. Serialized without payload and attributes (moved out and
    /// back, not copied).
    fn alert_head(&self, alert: &mut Alert) -> BTreeMap<regorus::Value, regorus::Value> {
        let payload = std::mem::take(&mut alert.data);
        let attrs = std::mem::take(&mut alert.attrs);
        let head = serde_json::to_value(&*alert);
        alert.data = payload;
        alert.attrs = attrs;
        let head = head.expect("an alert serializes");
        let mut fields = head.as_object().map(to_policy_entries).unwrap_or_default();
        fields.insert(regorus::Value::from("data"), self.data.clone());
        if self.raw {
            let mut raw = serde_json::to_string_pretty(&*alert.data).unwrap_or_default();
            raw.push('\n');
            fields.insert(regorus::Value::from("raw"), regorus::Value::from(raw));
        }
        fields
    }
}

/// The entry of `input.called` for a run, built as a policy value: ours
/// (`status`, `error`, `seq`) and AlertChain's (`name`, `force`, `abort`,
/// `commit`: the commits as written).
pub(super) fn called_value(record: &ActionRecord) -> regorus::Value {
    let optional = |value: Option<regorus::Value>| value.unwrap_or(regorus::Value::Null);
    let commits = serde_json::to_value(&record.commits).expect("commits serialize");
    let entry: BTreeMap<regorus::Value, regorus::Value> = [
        ("abort", regorus::Value::from(record.abort)),
        ("budget", optional(record.budget.as_deref().map(regorus::Value::from))),
        ("args", to_policy_object(&record.args)),
        ("commit", to_policy_value(&commits)),
        ("error", optional(record.error.as_deref().map(regorus::Value::from))),
        ("force", regorus::Value::from(record.force)),
        ("id", regorus::Value::from(record.id.as_str())),
        ("name", regorus::Value::from(record.name.as_str())),
        ("result", optional(record.result.as_ref().map(to_policy_value))),
        ("seq", regorus::Value::from(record.seq)),
        (
            "skip_reason",
            optional(record.skip_reason.map(|r| regorus::Value::from(r.as_str()))),
        ),
        ("status", regorus::Value::from(record.status.as_str())),
        ("uses", regorus::Value::from(record.uses.as_str())),
    ]
    .into_iter()
    .map(|(key, value)| (regorus::Value::from(key), value))
    .collect();
    regorus::Value::from(entry)
}
