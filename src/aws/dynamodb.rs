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
//!
//! A conditional write that must know whether it won (a claim, a resolve,
//! taking a workflow) stores a fresh `write_token`: when a try's answer was
//! lost and the retry finds the condition failed, the stored token says
//! whether the item is this call's own write.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_types::SdkConfig;
use futures::future::BoxFuture;
use serde_json::{json, Map, Value};

use super::json_api::{JsonApi, Service};
use super::retry::CallError;
use crate::model::outcome::{preview, truncate_string};
use crate::model::suspended::{Phase, SuspendedWorkflow};
use crate::model::{ActionRecord, Attr, Status};
use crate::state::{
    counter_value, unique_token, ActionsSwitch, ChangeOrder, Claim, PersistOp, PersistWrite, StateError, StateStore,
    Taken, WorkflowStore, RECORD_RETENTION,
};

const DYNAMODB: Service = Service {
    name: "dynamodb",
    target: "DynamoDB_20120810",
    content_type: "application/x-amz-json-1.0",
};

/// An item (or a key) in DynamoDB's JSON: each attribute a `{"S": …}`,
/// `{"N": …}` or `{"BOOL": …}`.
type Item = Map<String, Value>;

pub struct DynamoState {
    api: JsonApi,
    table: String,
}

impl DynamoState {
    /// The state table `table` in the region (or at the endpoint) of `sdk`.
    pub fn new(sdk: &SdkConfig, table: impl Into<String>) -> DynamoState {
        DynamoState {
            api: JsonApi::new(sdk, &DYNAMODB),
            table: table.into(),
        }
    }

    fn error(&self, operation: &'static str, err: CallError) -> StateError {
        StateError {
            table: self.table.clone(),
            operation,
            reason: err.reason,
        }
    }

    /// `request` with the table's name added.
    async fn call(&self, operation: &str, mut request: Value) -> Result<Item, CallError> {
        request["TableName"] = Value::from(self.table.as_str());
        self.api.call(operation, &request).await
    }

    /// The item at `key`, read consistently (`operation` names it in an error).
    async fn get(&self, key: Item, operation: &'static str) -> Result<Option<Item>, StateError> {
        let mut got = self
            .call("GetItem", json!({"Key": key, "ConsistentRead": true}))
            .await
            .map_err(|err| self.error(operation, err))?;
        Ok(match got.remove("Item") {
            Some(Value::Object(item)) => Some(item),
            _ => None,
        })
    }

    /// Every item of partition `pk`, read consistently, page after page.
    async fn partition(&self, pk: &str, operation: &'static str) -> Result<Vec<Item>, StateError> {
        let mut items = Vec::new();
        let mut start: Option<Value> = None;
        loop {
            let mut request = json!({
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": s(pk)},
                "ConsistentRead": true,
            });
            if let Some(start) = start.take() {
                request["ExclusiveStartKey"] = start;
            }
            let mut page = self
                .call("Query", request)
                .await
                .map_err(|err| self.error(operation, err))?;
            if let Some(Value::Array(found)) = page.remove("Items") {
                items.extend(found.into_iter().filter_map(|item| match item {
                    Value::Object(item) => Some(item),
                    _ => None,
                }));
            }
            match page.remove("LastEvaluatedKey") {
                Some(Value::Object(key)) if !key.is_empty() => start = Some(Value::Object(key)),
                _ => return Ok(items),
            }
        }
    }

    /// Writes `item` whatever was there (`operation` names it in an error).
    async fn put(&self, item: Item, operation: &'static str) -> Result<(), StateError> {
        self.call("PutItem", json!({ "Item": item }))
            .await
            .map(|_| ())
            .map_err(|err| self.error(operation, err))
    }

    /// Writes `items` (`Put`s and `Update`s, each with the table added)
    /// together or not at all. The token makes a retried call that had
    /// landed a no-op, not a second write (a counter added twice).
    async fn transact(&self, items: Vec<(&str, Value)>) -> Result<(), CallError> {
        let items: Vec<Value> = items
            .into_iter()
            .map(|(kind, mut write)| {
                write["TableName"] = Value::from(self.table.as_str());
                json!({ kind: write })
            })
            .collect();
        let request = json!({"TransactItems": items, "ClientRequestToken": unique_token()});
        self.api.call("TransactWriteItems", &request).await.map(|_| ())
    }
}

impl DynamoState {
    /// A persistent attribute write: a set replaces the value, an add is
    /// DynamoDB's atomic `ADD` on the counter. (`TableName` is added by
    /// whoever sends it.)
    fn persist_update(&self, write: &PersistWrite, now: u64) -> Value {
        let (expression, value) = match &write.op {
            PersistOp::Set(value) => (
                "SET #value = :value, expires_at = :expires, attr_ttl = :ttl, attr_key = :key, attr_type = :type REMOVE #counter",
                (":value", s(preview(value, MAX_STORED_FIELD).to_string())),
            ),
            PersistOp::Add(delta) => (
                "ADD #counter :delta SET expires_at = :expires, attr_ttl = :ttl, attr_key = :key, attr_type = :type REMOVE #value",
                (":delta", n(delta)),
            ),
        };
        let mut values = Item::new();
        values.insert(value.0.to_string(), value.1);
        values.insert(":key".into(), s(&write.key));
        values.insert(":type".into(), s(write.kind.as_deref().unwrap_or("")));
        values.insert(":expires".into(), n(now + write.ttl.as_secs()));
        values.insert(":ttl".into(), n(write.ttl.as_secs()));
        json!({
            "Key": key(format!("attrs#{}", write.namespace), &write.id),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": {"#value": "value", "#counter": "counter"},
            "ExpressionAttributeValues": values,
        })
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

fn s(value: impl Into<String>) -> Value {
    json!({ "S": value.into() })
}

fn n(value: impl ToString) -> Value {
    json!({ "N": value.to_string() })
}

fn flag(value: bool) -> Value {
    json!({ "BOOL": value })
}

/// A string attribute of `item`.
fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.get("S")?.as_str()
}

/// A number attribute of `item`, as an integer (0 when it is not one).
fn integer(item: &Item, name: &str) -> Option<u64> {
    Some(item.get(name)?.get("N")?.as_str()?.parse().unwrap_or(0))
}

fn key(pk: String, sk: &str) -> Item {
    Item::from_iter([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn action_key(alert_id: &str, action_id: &str) -> Item {
    key(format!("action#{alert_id}"), action_id)
}

fn lock_key(namespace: &str) -> Item {
    key(format!("lock#{namespace}"), "lock")
}

/// One item per budget, window length and window: two budgets on one
/// pattern (4 a minute, 500 a day) never share a counter.
fn budget_key(budget: &str, window: u64, window_start: u64) -> Item {
    key(format!("budget#{budget}#{window}s"), &window_start.to_string())
}

fn switch_key() -> Item {
    key("control#actions".to_string(), "switch")
}

const CONDITION_FAILED: &str = "ConditionalCheckFailedException";

/// Suspended workflows share one partition: they are few (each waits on a
/// person or a timer), and listing them is then a query, not a scan.
const WORKFLOWS_PARTITION: &str = "workflows";

fn workflow_key(alert_id: &str) -> Item {
    key(WORKFLOWS_PARTITION.to_string(), alert_id)
}

/// A suspended workflow's item must fit DynamoDB's 400 KB.
const MAX_STORED_WORKFLOW: usize = 380 * 1024;

impl DynamoState {
    fn workflow_of(&self, item: &Item) -> Result<SuspendedWorkflow, StateError> {
        let mut workflow: SuspendedWorkflow =
            serde_json::from_str(text(item, "workflow").unwrap_or("")).map_err(|err| StateError {
                table: self.table.clone(),
                operation: "read workflow",
                reason: format!("stored workflow is unreadable: {err}"),
            })?;
        workflow.phase = match text(item, "phase") {
            Some("resuming") => Phase::Resuming,
            _ => Phase::Suspended,
        };
        Ok(workflow)
    }

    /// The record stored in `item`, if it holds one.
    fn record_of(
        &self,
        item: &Item,
        action_id: &str,
        operation: &'static str,
    ) -> Result<Option<ActionRecord>, StateError> {
        text(item, "record")
            .map(|record| {
                serde_json::from_str(record).map_err(|err| StateError {
                    table: self.table.clone(),
                    operation,
                    reason: format!("stored record of {action_id} is unreadable: {err}"),
                })
            })
            .transpose()
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
            let mut put = json!({ "Item": item });
            if !holder {
                // Never back: a run that saw fewer rounds (a redelivery
                // racing a resume) leaves the newer state.
                put["ConditionExpression"] = json!(
                    "attribute_not_exists(pk) OR (#phase = :suspended AND (attribute_not_exists(#rounds) OR #rounds <= :rounds))"
                );
                put["ExpressionAttributeNames"] = json!({"#phase": "phase", "#rounds": "rounds"});
                put["ExpressionAttributeValues"] = json!({":suspended": s("suspended"), ":rounds": n(workflow.rounds)});
            }
            match self.call("PutItem", put).await {
                Ok(_) => Ok(true),
                Err(err) if err.is(CONDITION_FAILED) => Ok(false),
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
            let token = unique_token();
            let taken = self
                .call(
                    "UpdateItem",
                    json!({
                        "Key": workflow_key(alert_id),
                        "UpdateExpression": "SET #phase = :resuming, lease_until = :lease, write_token = :token",
                        "ConditionExpression": "attribute_exists(pk) AND (#phase = :suspended OR lease_until < :now)",
                        "ExpressionAttributeNames": {"#phase": "phase"},
                        "ExpressionAttributeValues": {
                            ":resuming": s("resuming"),
                            ":suspended": s("suspended"),
                            ":lease": n(now + lease.as_secs().max(1)),
                            ":now": n(now),
                            ":token": s(&token),
                        },
                        "ReturnValues": "ALL_NEW",
                    }),
                )
                .await;
            match taken {
                Ok(mut output) => match output.remove("Attributes") {
                    Some(Value::Object(item)) => Ok(Taken::Workflow(Box::new(self.workflow_of(&item)?))),
                    _ => Ok(Taken::Absent),
                },
                Err(err) if err.is(CONDITION_FAILED) => {
                    match self.get(workflow_key(alert_id), "take workflow").await? {
                        // A try whose answer was lost had taken it (and no
                        // one has released it since).
                        Some(item)
                            if text(&item, "phase") == Some("resuming")
                                && text(&item, "write_token") == Some(token.as_str()) =>
                        {
                            Ok(Taken::Workflow(Box::new(self.workflow_of(&item)?)))
                        }
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
                .call(
                    "UpdateItem",
                    json!({
                        "Key": workflow_key(alert_id),
                        "UpdateExpression": "SET #phase = :suspended, lease_until = :zero REMOVE write_token",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeNames": {"#phase": "phase"},
                        "ExpressionAttributeValues": {":suspended": s("suspended"), ":zero": n(0)},
                    }),
                )
                .await;
            match released {
                Ok(_) => Ok(()),
                Err(err) if err.is(CONDITION_FAILED) => Ok(()),
                Err(err) => Err(self.error("release workflow", err)),
            }
        })
    }

    fn end_workflow<'a>(&'a self, alert_id: &'a str) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            self.call("DeleteItem", json!({ "Key": workflow_key(alert_id) }))
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
            match self.get(action_key(alert_id, action_id), "read action").await? {
                Some(item) => self.record_of(&item, action_id, "read action"),
                None => Ok(None),
            }
        })
    }

    fn action_records<'a>(&'a self, alert_id: &'a str) -> BoxFuture<'a, Result<Vec<ActionRecord>, StateError>> {
        Box::pin(async move {
            let mut records = Vec::new();
            for item in self.partition(&format!("action#{alert_id}"), "read actions").await? {
                let Some(action_id) = text(&item, "sk") else {
                    continue;
                };
                if let Some(record) = self.record_of(&item, action_id, "read actions")? {
                    records.push(record);
                }
            }
            Ok(records)
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
            let token = unique_token();
            item.insert("write_token".into(), s(&token));
            let put = json!({
                "Item": item,
                "ConditionExpression": "#pending = :yes",
                "ExpressionAttributeNames": {"#pending": "pending"},
                "ExpressionAttributeValues": {":yes": flag(true)},
            });
            if writes.is_empty() {
                return match self.call("PutItem", put).await {
                    Ok(_) => Ok(true),
                    // Another answer came first, unless a try whose answer
                    // was lost wrote this one.
                    Err(err) if err.is(CONDITION_FAILED) => {
                        let stored = self.get(action_key(alert_id, &record.id), "resolve").await?;
                        Ok(stored.is_some_and(|item| text(&item, "write_token") == Some(token.as_str())))
                    }
                    Err(err) => Err(self.error("resolve", err)),
                };
            }
            let mut items = vec![("Put", put)];
            items.extend(writes.iter().map(|write| ("Update", self.persist_update(write, now))));
            match self.transact(items).await {
                Ok(()) => Ok(true),
                // Cancelled: the condition failed (another answer came
                // first) unless the record is still pending.
                Err(err) if err.is("TransactionCanceledException") => {
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
            let token = unique_token();
            let mut item = action_key(alert_id, action_id);
            item.insert("state".into(), s("running"));
            item.insert("lease_until".into(), n(now + lease.as_secs().max(1)));
            item.insert("expires_at".into(), n(now + RECORD_RETENTION.as_secs()));
            item.insert("write_token".into(), s(&token));
            let put = self
                .call(
                    "PutItem",
                    json!({
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(pk) OR (#state = :running AND lease_until < :now)",
                        "ExpressionAttributeNames": {"#state": "state"},
                        "ExpressionAttributeValues": {":running": s("running"), ":now": n(now)},
                    }),
                )
                .await;
            match put {
                Ok(_) => return Ok(Claim::Claimed),
                Err(err) if err.is(CONDITION_FAILED) => {}
                Err(err) => return Err(self.error("claim", err)),
            }
            let item = self
                .get(action_key(alert_id, action_id), "claim")
                .await?
                .unwrap_or_default();
            match text(&item, "state") {
                // A try whose answer was lost had claimed it.
                Some("running") if text(&item, "write_token") == Some(token.as_str()) => return Ok(Claim::Claimed),
                Some("done") => {
                    if let Some(record) = self.record_of(&item, action_id, "claim")? {
                        return Ok(Claim::Done(Box::new(record)));
                    }
                }
                _ => {}
            }
            let lease_until = integer(&item, "lease_until").unwrap_or(0);
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
                item.insert("pending".into(), flag(true));
                item.insert("expires_at".into(), n(now + 2 * RECORD_RETENTION.as_secs()));
            }
            if writes.is_empty() {
                return self.put(item, "complete").await;
            }
            let mut items = vec![("Put", json!({ "Item": item }))];
            items.extend(writes.iter().map(|write| ("Update", self.persist_update(write, now))));
            self.transact(items).await.map_err(|err| self.error("complete", err))
        })
    }

    fn release<'a>(&'a self, alert_id: &'a str, action_id: &'a str) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            let result = self
                .call(
                    "DeleteItem",
                    json!({
                        "Key": action_key(alert_id, action_id),
                        "ConditionExpression": "#state = :running",
                        "ExpressionAttributeNames": {"#state": "state"},
                        "ExpressionAttributeValues": {":running": s("running")},
                    }),
                )
                .await;
            match result {
                Ok(_) => Ok(()),
                Err(err) if err.is(CONDITION_FAILED) => Ok(()),
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
            let key = key(format!("change#{matano_alert_id}"), "latest");
            let result = self
                .call(
                    "UpdateItem",
                    json!({
                        "Key": key,
                        "UpdateExpression": "SET update_count = :count, expires_at = :expires",
                        "ConditionExpression": "attribute_not_exists(update_count) OR update_count <= :count",
                        "ExpressionAttributeValues": {
                            ":count": n(update_count),
                            ":expires": n(now() + RECORD_RETENTION.as_secs()),
                        },
                    }),
                )
                .await;
            match result {
                Ok(_) => Ok(ChangeOrder::Current),
                Err(err) if err.is(CONDITION_FAILED) => {
                    let current = self.get(key, "observe change").await?;
                    let latest = current.and_then(|item| integer(&item, "update_count")).unwrap_or(0);
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
                .call(
                    "PutItem",
                    json!({
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(pk) OR lease_until < :now OR #owner = :owner",
                        "ExpressionAttributeNames": {"#owner": "owner"},
                        "ExpressionAttributeValues": {":now": n(now), ":owner": s(owner)},
                    }),
                )
                .await;
            match put {
                Ok(_) => Ok(true),
                Err(err) if err.is(CONDITION_FAILED) => Ok(false),
                Err(err) => Err(self.error("lock namespace", err)),
            }
        })
    }

    fn unlock_namespace<'a>(&'a self, namespace: &'a str, owner: &'a str) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            let result = self
                .call(
                    "DeleteItem",
                    json!({
                        "Key": lock_key(namespace),
                        "ConditionExpression": "#owner = :owner",
                        "ExpressionAttributeNames": {"#owner": "owner"},
                        "ExpressionAttributeValues": {":owner": s(owner)},
                    }),
                )
                .await;
            match result {
                Ok(_) => Ok(()),
                Err(err) if err.is(CONDITION_FAILED) => Ok(()),
                Err(err) => Err(self.error("unlock namespace", err)),
            }
        })
    }

    fn take_budget<'a>(
        &'a self,
        budget: &'a str,
        limit: u32,
        window: Duration,
    ) -> BoxFuture<'a, Result<Option<u64>, StateError>> {
        Box::pin(async move {
            let now = now();
            let window = window.as_secs().max(1);
            let start = now - now % window;
            // One conditional ADD: instances racing for the last run of a
            // window cannot both win it.
            let update = self
                .call(
                    "UpdateItem",
                    json!({
                        "Key": budget_key(budget, window, start),
                        "UpdateExpression": "ADD used :one SET expires_at = :expires",
                        "ConditionExpression": "attribute_not_exists(used) OR used < :limit",
                        "ExpressionAttributeValues": {
                            ":one": n(1),
                            ":limit": n(limit),
                            ":expires": n(start + window + 3600),
                        },
                    }),
                )
                .await;
            match update {
                Ok(_) => Ok(Some(start)),
                Err(err) if err.is(CONDITION_FAILED) => Ok(None),
                Err(err) => Err(self.error("take budget", err)),
            }
        })
    }

    fn return_budget<'a>(
        &'a self,
        budget: &'a str,
        window: Duration,
        window_start: u64,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            let window = window.as_secs().max(1);
            // One try: a retry of a take-back that landed without an answer
            // would take back a run that did happen. Not taken back, the run
            // stays counted: the safe side.
            let mut request = json!({
                "Key": budget_key(budget, window, window_start),
                "UpdateExpression": "ADD used :minus_one",
                "ConditionExpression": "used > :zero",
                "ExpressionAttributeValues": {":minus_one": n(-1), ":zero": n(0)},
            });
            request["TableName"] = Value::from(self.table.as_str());
            let update = self.api.call_once("UpdateItem", &request).await;
            match update {
                // Nothing counted there (any more): nothing to give back.
                Ok(_) => Ok(()),
                Err(err) if err.is(CONDITION_FAILED) => Ok(()),
                Err(err) => Err(self.error("return budget", err)),
            }
        })
    }

    fn actions_switch(&self) -> BoxFuture<'_, Result<ActionsSwitch, StateError>> {
        Box::pin(async move {
            let item = self.get(switch_key(), "read the actions switch").await?;
            let Some(item) = item else {
                return Ok(ActionsSwitch::default());
            };
            let text = |name: &str| text(&item, name).map(str::to_string);
            // A switch written by hand with another type: neither reading is
            // safe, so actions wait (the record is retried) until it is fixed.
            let paused = item.get("paused").and_then(|v| v.get("BOOL")).and_then(Value::as_bool);
            let Some(paused) = paused else {
                return Err(StateError {
                    table: self.table.clone(),
                    operation: "read the actions switch",
                    reason: "the switch item's `paused` is not a boolean (BOOL); set it with `alert-responder actions pause|resume`".to_string(),
                });
            };
            Ok(ActionsSwitch {
                paused,
                reason: text("reason"),
                changed_by: text("changed_by"),
                changed_at: text("changed_at"),
            })
        })
    }

    fn set_actions_switch<'a>(&'a self, switch: &'a ActionsSwitch) -> BoxFuture<'a, Result<(), StateError>> {
        Box::pin(async move {
            let mut item = switch_key();
            item.insert("paused".into(), flag(switch.paused));
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
                let mut update = self.persist_update(write, now);
                update["ExpressionAttributeValues"][":now"] = n(now);
                // DynamoDB deletes expired items lazily: one is not held.
                update["ConditionExpression"] = json!("attribute_not_exists(pk) OR expires_at <= :now");
                match self.call("UpdateItem", update).await {
                    Ok(_) => {}
                    Err(err) if err.is(CONDITION_FAILED) => {}
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
                let expires_at = integer(&item, "expires_at").unwrap_or(0);
                // DynamoDB deletes expired items lazily: skip them here.
                if expires_at <= now {
                    continue;
                }
                let Some(id) = text(&item, "sk") else {
                    continue;
                };
                let key = text(&item, "attr_key").unwrap_or(id);
                let kind = text(&item, "attr_type").filter(|kind| !kind.is_empty());
                let counter = item.get("counter").and_then(|v| v.get("N")).and_then(Value::as_str);
                let value = match (text(&item, "value"), counter) {
                    (_, Some(counter)) => counter.parse::<f64>().map_or(Value::Null, counter_value),
                    (Some(json), _) => serde_json::from_str(json).unwrap_or(Value::Null),
                    _ => continue,
                };
                // The `ttl` it was stored with, as AlertChain reports it
                // (each write starts a new window of it); an item stored
                // before `attr_ttl` was kept: what is left.
                let ttl = match item.get("attr_ttl").and_then(|v| v.get("N")).and_then(Value::as_str) {
                    Some(ttl) => ttl.parse().unwrap_or(expires_at - now),
                    None => expires_at - now,
                };
                attrs.push(Attr {
                    id: Some(id.to_string()),
                    key: key.to_string(),
                    value,
                    kind: kind.map(str::to_string),
                    persist: true,
                    ttl: Some(ttl),
                });
            }
            attrs.sort_by(|a, b| (&a.key, &a.id).cmp(&(&b.key, &b.id)));
            Ok(attrs)
        })
    }
}
