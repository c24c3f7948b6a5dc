//! The state port on DynamoDB (`STATE_TABLE`): string partition key `pk`,
//! string sort key `sk`, TTL attribute `expires_at`.
//!
//! | item | pk | sk | holds |
//! |---|---|---|---|
//! | action claim | `action#<alert id>` | action id | `state` (running/done), `lease_until`, the finished `record` |
//! | Matano change | `change#<matano alert id>` | `latest` | the highest `update_count` processed |
//! | persistent attribute | `attrs#<namespace>` | attribute id | `attr_key`, `attr_type`, `value` (JSON) or `counter` (number); items written before ids existed have the key as sort key and no `attr_key` |
//! | namespace lock | `lock#<namespace>` | `lock` | `owner`, `lease_until` |
//! | suspended workflow | `workflows` | alert id | `phase` (suspended/resuming), `lease_until`, the `workflow` (JSON) |
//!
//! A pending action's claim is `done` with `pending: true` until it is resolved.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use futures::future::BoxFuture;
use serde_json::Value;

use crate::model::outcome::{preview, truncate_string};
use crate::model::suspended::{Phase, SuspendedWorkflow};
use crate::model::{ActionRecord, Attr, Status};
use crate::state::{
    counter_value, ActionsSwitch, ChangeOrder, Claim, PersistOp, PersistWrite, StateError, StateStore, Taken,
    WorkflowStore, RECORD_RETENTION,
};

pub struct DynamoState {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoState {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> DynamoState {
        DynamoState {
            client,
            table: table.into(),
        }
    }

    fn error(&self, operation: &'static str, err: impl std::error::Error + 'static) -> StateError {
        StateError {
            table: self.table.clone(),
            operation,
            reason: super::error_chain(&err),
        }
    }

    /// The item at `key`, read consistently (`operation` names it in an error).
    async fn get(
        &self,
        key: HashMap<String, AttributeValue>,
        operation: &'static str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StateError> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map(|got| got.item)
            .map_err(|err| self.error(operation, err))
    }

    /// Every item of partition `pk`, read consistently, page after page.
    async fn partition(
        &self,
        pk: &str,
        operation: &'static str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StateError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|err| self.error(operation, err))?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// Writes `item` whatever was there (`operation` names it in an error).
    async fn put(&self, item: HashMap<String, AttributeValue>, operation: &'static str) -> Result<(), StateError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(|err| self.error(operation, err))
    }
}

impl DynamoState {
    /// A persistent attribute write as a transaction item.
    fn persist_item(&self, write: &PersistWrite, now: u64) -> TransactWriteItem {
        TransactWriteItem::builder()
            .update(self.persist_update(write, now))
            .build()
    }

    /// A persistent attribute write: a set replaces the value, an add is
    /// DynamoDB's atomic `ADD` on the counter.
    fn persist_update(&self, write: &PersistWrite, now: u64) -> Update {
        let key = HashMap::from([
            ("pk".to_string(), s(format!("attrs#{}", write.namespace))),
            ("sk".to_string(), s(&write.id)),
        ]);
        let update = match &write.op {
            PersistOp::Set(value) => Update::builder()
                .update_expression(
                    "SET #value = :value, expires_at = :expires, attr_ttl = :ttl, attr_key = :key, attr_type = :type REMOVE #counter",
                )
                .expression_attribute_values(":value", s(preview(value, MAX_STORED_FIELD).to_string())),
            PersistOp::Add(delta) => Update::builder()
                .update_expression(
                    "ADD #counter :delta SET expires_at = :expires, attr_ttl = :ttl, attr_key = :key, attr_type = :type REMOVE #value",
                )
                .expression_attribute_values(":delta", n(delta)),
        };
        update
            .expression_attribute_values(":key", s(&write.key))
            .expression_attribute_values(":type", s(write.kind.as_deref().unwrap_or("")))
            .table_name(&self.table)
            .set_key(Some(key))
            .expression_attribute_names("#value", "value")
            .expression_attribute_names("#counter", "counter")
            .expression_attribute_values(":expires", n(now + write.ttl.as_secs()))
            .expression_attribute_values(":ttl", n(write.ttl.as_secs()))
            .build()
            .expect("table, key and expression")
    }
}

/// DynamoDB items hold at most 400 KB; stored records stay well below.
const MAX_STORED_RECORD: usize = 300 * 1024;
/// A result, argument set or attribute value larger than this is stored as a preview.
const MAX_STORED_FIELD: usize = 64 * 1024;

/// The record as stored: large results, args and committed values are
/// replaced by marked previews (a replay then carries the preview).
fn bounded_record_json(record: &ActionRecord) -> String {
    let text = serde_json::to_string(record).expect("records serialize");
    if text.len() <= MAX_STORED_RECORD {
        return text;
    }
    let mut smaller = record.clone();
    smaller.result = smaller.result.map(|r| preview(&r, MAX_STORED_FIELD));
    if let Value::Object(args) = preview(&Value::Object(std::mem::take(&mut smaller.args)), MAX_STORED_FIELD / 2) {
        smaller.args = args;
    }
    for commit in &mut smaller.commits {
        commit.value = preview(&commit.value, MAX_STORED_FIELD / 16);
    }
    if let Some(error) = &mut smaller.error {
        truncate_string(error, MAX_STORED_FIELD / 4);
    }
    serde_json::to_string(&smaller).expect("records serialize")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn action_key(alert_id: &str, action_id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), s(format!("action#{alert_id}"))),
        ("sk".to_string(), s(action_id)),
    ])
}

fn lock_key(namespace: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), s(format!("lock#{namespace}"))),
        ("sk".to_string(), s("lock")),
    ])
}

/// One item per budget, window length and window: two budgets on one
/// pattern (4 a minute, 500 a day) never share a counter.
fn budget_key(budget: &str, window: u64, window_start: u64) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), s(format!("budget#{budget}#{window}s"))),
        ("sk".to_string(), s(window_start.to_string())),
    ])
}

fn switch_key() -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), s("control#actions")),
        ("sk".to_string(), s("switch")),
    ])
}

fn is_condition_failure(code: Option<&str>) -> bool {
    code == Some("ConditionalCheckFailedException")
}

/// Suspended workflows share one partition: they are few (each waits on a
/// person or a timer), and listing them is then a query, not a scan.
const WORKFLOWS_PARTITION: &str = "workflows";

fn workflow_key(alert_id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), s(WORKFLOWS_PARTITION)),
        ("sk".to_string(), s(alert_id)),
    ])
}

/// A suspended workflow's item must fit DynamoDB's 400 KB.
const MAX_STORED_WORKFLOW: usize = 380 * 1024;

impl DynamoState {
    fn workflow_of(&self, item: &HashMap<String, AttributeValue>) -> Result<SuspendedWorkflow, StateError> {
        let text = match item.get("workflow") {
            Some(AttributeValue::S(text)) => text,
            _ => "",
        };
        let mut workflow: SuspendedWorkflow = serde_json::from_str(text).map_err(|err| StateError {
            table: self.table.clone(),
            operation: "read workflow",
            reason: format!("stored workflow is unreadable: {err}"),
        })?;
        workflow.phase = match item.get("phase") {
            Some(AttributeValue::S(phase)) if phase == "resuming" => Phase::Resuming,
            _ => Phase::Suspended,
        };
        Ok(workflow)
    }
}

impl WorkflowStore for DynamoState {
    fn save_workflow<'a>(
        &'a self,
        workflow: &'a SuspendedWorkflow,
        holder: bool,
    ) -> BoxFuture<'a, Result<bool, StateError>> {
        Box::pin(async move {
            let text = serde_json::to_string(workflow).expect("workflows serialize");
            if text.len() > MAX_STORED_WORKFLOW {
                return Err(StateError {
                    table: self.table.clone(),
                    operation: "save workflow",
                    reason: format!(
                        "the suspended workflow of alert {} is {} bytes; an item holds at most {MAX_STORED_WORKFLOW}",
                        workflow.id(),
                        text.len()
                    ),
                });
            }
            let latest_due = workflow
                .pending
                .iter()
                .map(|p| p.due_at.timestamp().max(0) as u64)
                .max();
            let mut item = workflow_key(workflow.id());
            item.insert("phase".into(), s("suspended"));
            item.insert("lease_until".into(), n(0));
            item.insert("rounds".into(), n(workflow.rounds));
            item.insert("workflow".into(), s(text));
            item.insert("suspended_at".into(), s(workflow.suspended_at.to_rfc3339()));
            item.insert(
                "expires_at".into(),
                n(latest_due.unwrap_or_else(now).max(now()) + RECORD_RETENTION.as_secs()),
            );
            let mut put = self.client.put_item().table_name(&self.table).set_item(Some(item));
            if !holder {
                put = put
                    // Never back: a run that saw fewer rounds (a redelivery
                    // racing a resume) leaves the newer state.
                    .condition_expression(
                        "attribute_not_exists(pk) OR (#phase = :suspended AND (attribute_not_exists(#rounds) OR #rounds <= :rounds))",
                    )
                    .expression_attribute_names("#phase", "phase")
                    .expression_attribute_names("#rounds", "rounds")
                    .expression_attribute_values(":suspended", s("suspended"))
                    .expression_attribute_values(":rounds", n(workflow.rounds));
            }
            match put.send().await {
                Ok(_) => Ok(true),
                Err(err) if is_condition_failure(err.code()) => Ok(false),
                Err(err) => Err(self.error("save workflow", err)),
            }
        })
    }

    fn workflow<'a>(&'a self, alert_id: &'a str) -> BoxFuture<'a, Result<Option<SuspendedWorkflow>, StateError>> {
        Box::pin(async move {
            let item = self.get(workflow_key(alert_id), "read workflow").await?;
            item.map(|item| self.workflow_of(&item)).transpose()
        })
    }

    fn workflows(&self) -> BoxFuture<'_, Result<Vec<SuspendedWorkflow>, StateError>> {
        Box::pin(async move {
            let mut all = Vec::new();
            for item in self.partition(WORKFLOWS_PARTITION, "list workflows").await? {
                all.push(self.workflow_of(&item)?);
            }
            all.sort_by_key(|w| w.suspended_at);
            Ok(all)
        })
    }

    fn take_workflow<'a>(&'a self, alert_id: &'a str, lease: Duration) -> BoxFuture<'a, Result<Taken, StateError>> {
        Box::pin(async move {
            let now = now();
            let taken = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(workflow_key(alert_id)))
                .update_expression("SET #phase = :resuming, lease_until = :lease")
                .condition_expression("attribute_exists(pk) AND (#phase = :suspended OR lease_until < :now)")
                .expression_attribute_names("#phase", "phase")
                .expression_attribute_values(":resuming", s("resuming"))
                .expression_attribute_values(":suspended", s("suspended"))
                .expression_attribute_values(":lease", n(now + lease.as_secs().max(1)))
                .expression_attribute_values(":now", n(now))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
                .send()
                .await;
            match taken {
                Ok(output) => match output.attributes {
                    Some(item) => Ok(Taken::Workflow(Box::new(self.workflow_of(&item)?))),
                    None => Ok(Taken::Absent),
                },
                Err(err) if is_condition_failure(err.code()) => {
                    match self.get(workflow_key(alert_id), "take workflow").await? {
                        Some(_) => Ok(Taken::Held),
                        None => Ok(Taken::Absent),
                    }
                }
                Err(err) => Err(self.error("take workflow", err)),
            }
        })
    }

    fn release_workflow<'a>(&'a self, alert_id: &'a str) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            let released = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(workflow_key(alert_id)))
                .update_expression("SET #phase = :suspended, lease_until = :zero")
                .expression_attribute_names("#phase", "phase")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":suspended", s("suspended"))
                .expression_attribute_values(":zero", n(0))
                .send()
                .await;
            match released {
                Ok(_) => Ok(()),
                Err(err) if is_condition_failure(err.code()) => Ok(()),
                Err(err) => Err(self.error("release workflow", err)),
            }
        })
    }

    fn end_workflow<'a>(&'a self, alert_id: &'a str) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(workflow_key(alert_id)))
                .send()
                .await
                .map(|_| ())
                .map_err(|err| self.error("end workflow", err))
        })
    }

    fn action_record<'a>(
        &'a self,
        alert_id: &'a str,
        action_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<ActionRecord>, StateError>> {
        Box::pin(async move {
            let item = self.get(action_key(alert_id, action_id), "read action").await?;
            match item.as_ref().and_then(|item| item.get("record")) {
                Some(AttributeValue::S(record)) => serde_json::from_str(record).map(Some).map_err(|err| StateError {
                    table: self.table.clone(),
                    operation: "read action",
                    reason: format!("stored record of {action_id} is unreadable: {err}"),
                }),
                _ => Ok(None),
            }
        })
    }

    fn resolve<'a>(
        &'a self,
        alert_id: &'a str,
        record: &'a ActionRecord,
        writes: &'a [PersistWrite],
    ) -> BoxFuture<'a, Result<bool, StateError>> {
        Box::pin(async move {
            let now = now();
            let mut item = action_key(alert_id, &record.id);
            item.insert("state".into(), s("done"));
            item.insert("record".into(), s(bounded_record_json(record)));
            item.insert("expires_at".into(), n(now + RECORD_RETENTION.as_secs()));
            if writes.is_empty() {
                let put = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("#pending = :yes")
                    .expression_attribute_names("#pending", "pending")
                    .expression_attribute_values(":yes", AttributeValue::Bool(true))
                    .send()
                    .await;
                return match put {
                    Ok(_) => Ok(true),
                    Err(err) if is_condition_failure(err.code()) => Ok(false),
                    Err(err) => Err(self.error("resolve", err)),
                };
            }
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("#pending = :yes")
                .expression_attribute_names("#pending", "pending")
                .expression_attribute_values(":yes", AttributeValue::Bool(true))
                .build()
                .expect("table and item");
            let mut items = vec![TransactWriteItem::builder().put(put).build()];
            items.extend(writes.iter().map(|write| self.persist_item(write, now)));
            let written = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            match written {
                Ok(_) => Ok(true),
                // Cancelled: the condition failed (another answer came
                // first) unless the record is still pending.
                Err(err) if err.code() == Some("TransactionCanceledException") => {
                    let stored = self.action_record(alert_id, &record.id).await?;
                    match stored {
                        Some(stored) if stored.status == Status::Pending => Err(self.error("resolve", err)),
                        _ => Ok(false),
                    }
                }
                Err(err) => Err(self.error("resolve", err)),
            }
        })
    }
}

impl StateStore for DynamoState {
    fn claim<'a>(
        &'a self,
        alert_id: &'a str,
        action_id: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Claim, StateError>> {
        Box::pin(async move {
            let now = now();
            let mut item = action_key(alert_id, action_id);
            item.insert("state".into(), s("running"));
            item.insert("lease_until".into(), n(now + lease.as_secs().max(1)));
            item.insert("expires_at".into(), n(now + RECORD_RETENTION.as_secs()));
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk) OR (#state = :running AND lease_until < :now)")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":running", s("running"))
                .expression_attribute_values(":now", n(now))
                .send()
                .await;
            match put {
                Ok(_) => return Ok(Claim::Claimed),
                Err(err) if is_condition_failure(err.code()) => {}
                Err(err) => return Err(self.error("claim", err)),
            }
            let item = self
                .get(action_key(alert_id, action_id), "claim")
                .await?
                .unwrap_or_default();
            if let (Some(AttributeValue::S(state)), Some(AttributeValue::S(record))) =
                (item.get("state"), item.get("record"))
            {
                if state == "done" {
                    let record: ActionRecord = serde_json::from_str(record).map_err(|err| StateError {
                        table: self.table.clone(),
                        operation: "claim",
                        reason: format!("stored record of {action_id} is unreadable: {err}"),
                    })?;
                    return Ok(Claim::Done(Box::new(record)));
                }
            }
            let lease_until: u64 = match item.get("lease_until") {
                Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
                _ => 0,
            };
            Ok(Claim::Busy {
                lease_left: Duration::from_secs(lease_until.saturating_sub(now)),
            })
        })
    }

    fn complete<'a>(
        &'a self,
        alert_id: &'a str,
        record: &'a ActionRecord,
        writes: &'a [PersistWrite],
    ) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            let now = now();
            let mut item = action_key(alert_id, &record.id);
            item.insert("state".into(), s("done"));
            item.insert("record".into(), s(bounded_record_json(record)));
            item.insert("expires_at".into(), n(now + RECORD_RETENTION.as_secs()));
            if record.status == Status::Pending {
                // Resolved once, conditionally (`resolve`); kept past the
                // longest wait (7 days) for as long as any finished record.
                item.insert("pending".into(), AttributeValue::Bool(true));
                item.insert("expires_at".into(), n(now + 2 * RECORD_RETENTION.as_secs()));
            }
            if writes.is_empty() {
                return self.put(item, "complete").await;
            }
            let mut items = vec![TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .build()
                        .expect("table and item"),
                )
                .build()];
            items.extend(writes.iter().map(|write| self.persist_item(write, now)));
            self.client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
                .map_err(|err| self.error("complete", err))?;
            Ok(())
        })
    }

    fn release<'a>(&'a self, alert_id: &'a str, action_id: &'a str) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(action_key(alert_id, action_id)))
                .condition_expression("#state = :running")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":running", s("running"))
                .send()
                .await;
            match result {
                Ok(_) => Ok(()),
                Err(err) if is_condition_failure(err.code()) => Ok(()),
                Err(err) => Err(self.error("release", err)),
            }
        })
    }

    fn observe_change<'a>(
        &'a self,
        matano_alert_id: &'a str,
        update_count: u64,
    ) -> BoxFuture<'a, Result<ChangeOrder, StateError>> {
        Box::pin(async move {
            let key = HashMap::from([
                ("pk".to_string(), s(format!("change#{matano_alert_id}"))),
                ("sk".to_string(), s("latest")),
            ]);
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .update_expression("SET update_count = :count, expires_at = :expires")
                .condition_expression("attribute_not_exists(update_count) OR update_count <= :count")
                .expression_attribute_values(":count", n(update_count))
                .expression_attribute_values(":expires", n(now() + RECORD_RETENTION.as_secs()))
                .send()
                .await;
            match result {
                Ok(_) => Ok(ChangeOrder::Current),
                Err(err) if is_condition_failure(err.code()) => {
                    let current = self.get(key, "observe change").await?;
                    let latest = match current.as_ref().and_then(|i| i.get("update_count")) {
                        Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
                        _ => 0,
                    };
                    Ok(ChangeOrder::Stale { latest })
                }
                Err(err) => Err(self.error("observe change", err)),
            }
        })
    }

    fn lock_namespace<'a>(
        &'a self,
        namespace: &'a str,
        owner: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<bool, StateError>> {
        Box::pin(async move {
            let now = now();
            let mut item = lock_key(namespace);
            item.insert("owner".into(), s(owner));
            item.insert("lease_until".into(), n(now + lease.as_secs().max(1)));
            item.insert("expires_at".into(), n(now + RECORD_RETENTION.as_secs()));
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk) OR lease_until < :now OR #owner = :owner")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":owner", s(owner))
                .send()
                .await;
            match put {
                Ok(_) => Ok(true),
                Err(err) if is_condition_failure(err.code()) => Ok(false),
                Err(err) => Err(self.error("lock namespace", err)),
            }
        })
    }

    fn unlock_namespace<'a>(&'a self, namespace: &'a str, owner: &'a str) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(lock_key(namespace)))
                .condition_expression("#owner = :owner")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":owner", s(owner))
                .send()
                .await;
            match result {
                Ok(_) => Ok(()),
                Err(err) if is_condition_failure(err.code()) => Ok(()),
                Err(err) => Err(self.error("unlock namespace", err)),
            }
        })
    }

    fn take_budget<'a>(
        &'a self,
        budget: &'a str,
        limit: u32,
        window: Duration,
    ) -> BoxFuture<'a, Result<bool, StateError>> {
        Box::pin(async move {
            let now = now();
            let window = window.as_secs().max(1);
            let start = now - now % window;
            // One conditional ADD: instances racing for the last run of a
            // window cannot both win it.
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(budget_key(budget, window, start)))
                .update_expression("ADD used :one SET expires_at = :expires")
                .condition_expression("attribute_not_exists(used) OR used < :limit")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":limit", n(limit))
                .expression_attribute_values(":expires", n(start + window + 3600))
                .send()
                .await;
            match update {
                Ok(_) => Ok(true),
                Err(err) if is_condition_failure(err.code()) => Ok(false),
                Err(err) => Err(self.error("take budget", err)),
            }
        })
    }

    fn actions_switch(&self) -> BoxFuture<'_, Result<ActionsSwitch, StateError>> {
        Box::pin(async move {
            let item = self.get(switch_key(), "read the actions switch").await?;
            let Some(item) = item else {
                return Ok(ActionsSwitch::default());
            };
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
            Ok(ActionsSwitch {
                paused: item
                    .get("paused")
                    .and_then(|v| v.as_bool().ok())
                    .copied()
                    .unwrap_or(false),
                reason: text("reason"),
                changed_by: text("changed_by"),
                changed_at: text("changed_at"),
            })
        })
    }

    fn set_actions_switch<'a>(&'a self, switch: &'a ActionsSwitch) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            let mut item = switch_key();
            item.insert("paused".into(), AttributeValue::Bool(switch.paused));
            for (name, value) in [
                ("reason", &switch.reason),
                ("changed_by", &switch.changed_by),
                ("changed_at", &switch.changed_at),
            ] {
                if let Some(value) = value {
                    item.insert(name.into(), s(value.clone()));
                }
            }
            self.put(item, "set the actions switch").await
        })
    }

    fn save_attrs<'a>(&'a self, writes: &'a [PersistWrite]) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            let now = now();
            // One conditional write each (they need not land together): an
            // attribute the namespace stored meanwhile (its lock lapsed)
            // keeps its value, as one stored before does.
            for write in writes {
                let update = self.persist_update(write, now);
                let mut values = update.expression_attribute_values().cloned().unwrap_or_default();
                values.insert(":now".to_string(), n(now));
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(update.key().clone()))
                    .update_expression(update.update_expression())
                    .set_expression_attribute_names(update.expression_attribute_names().cloned())
                    .set_expression_attribute_values(Some(values))
                    // DynamoDB deletes expired items lazily: one is not held.
                    .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
                    .send()
                    .await;
                match result {
                    Ok(_) => {}
                    Err(err) if is_condition_failure(err.code()) => {}
                    Err(err) => return Err(self.error("save attributes", err)),
                }
            }
            Ok(())
        })
    }

    fn load_attrs<'a>(&'a self, namespace: &'a str) -> BoxFuture<'a, Result<Vec<Attr>, StateError>> {
        Box::pin(async move {
            let now = now();
            let mut attrs = Vec::new();
            for item in self.partition(&format!("attrs#{namespace}"), "load attributes").await? {
                let expires_at: u64 = match item.get("expires_at") {
                    Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
                    _ => 0,
                };
                // DynamoDB deletes expired items lazily: skip them here.
                if expires_at <= now {
                    continue;
                }
                let Some(AttributeValue::S(id)) = item.get("sk") else {
                    continue;
                };
                let key = match item.get("attr_key") {
                    Some(AttributeValue::S(key)) => key,
                    _ => id,
                };
                let kind = match item.get("attr_type") {
                    Some(AttributeValue::S(kind)) if !kind.is_empty() => Some(kind.clone()),
                    _ => None,
                };
                let value = match (item.get("value"), item.get("counter")) {
                    (_, Some(AttributeValue::N(counter))) => counter.parse::<f64>().map_or(Value::Null, counter_value),
                    (Some(AttributeValue::S(json)), _) => serde_json::from_str(json).unwrap_or(Value::Null),
                    _ => continue,
                };
                // The `ttl` it was stored with, as AlertChain reports it
                // (each write starts a new window of it); an item stored
                // before `attr_ttl` was kept: what is left.
                let ttl = match item.get("attr_ttl") {
                    Some(AttributeValue::N(ttl)) => ttl.parse().unwrap_or(expires_at - now),
                    _ => expires_at - now,
                };
                attrs.push(Attr {
                    id: Some(id.clone()),
                    key: key.clone(),
                    value,
                    kind,
                    persist: true,
                    ttl: Some(ttl),
                });
            }
            attrs.sort_by(|a, b| (&a.key, &a.id).cmp(&(&b.key, &b.id)));
            Ok(attrs)
        })
    }
}
