//! The state table, the secret source and the ingest queue's requeue speak
//! AWS's JSON protocol to a loopback server standing in for DynamoDB,
//! Secrets Manager and SQS: what each
//! request carries, which failures are tried again, and that a transaction
//! tried again cannot apply twice.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alert_responder::aws::{sdk_config_from, DynamoState, LambdaWakeups, SecretsManager, SqsRequeue, WakeupSettings};
use alert_responder::model::suspended::{Phase, SourceEnvelope, SuspendedWorkflow};
use alert_responder::model::ActionRecord;
use alert_responder::requeue::{Requeue, Requeued};
use alert_responder::secrets::{SecretError, SecretSource};
use alert_responder::state::{Claim, PersistOp, PersistWrite, StateStore, Taken, WorkflowStore};
use alert_responder::wakeup::Wakeups;
use aws_types::SdkConfig;
use common::{Recorded, Reply, TestServer};
use serde_json::{json, Value};

const TABLE: &str = "alert-responder-state";

fn config_at(server: &TestServer) -> SdkConfig {
    let endpoint = server.url("");
    sdk_config_from(|name| match name {
        "AWS_REGION" => Some("eu-west-1".to_string()),
        "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some("secret".to_string()),
        "AWS_ENDPOINT_URL" => Some(endpoint.clone()),
        _ => None,
    })
}

/// A server answering its `n`th request (from 0) with `answer`.
async fn answering(answer: impl Fn(usize, &Recorded) -> Reply + Send + Sync + 'static) -> TestServer {
    let count = Arc::new(AtomicUsize::new(0));
    TestServer::start(move |request| answer(count.fetch_add(1, Ordering::SeqCst), request)).await
}

fn error(status: u16, kind: &str, message: &str) -> Reply {
    Reply::json(status, json!({"__type": kind, "message": message}))
}

fn record(id: &str) -> ActionRecord {
    serde_json::from_value(json!({
        "id": id,
        "uses": "webhook.post",
        "args": {"url": "https://hooks.example/notify"},
        "seq": 1,
        "status": "succeeded",
        "result": {"status": 200},
        "error": null,
        "outcome_id": format!("outcome-{id}"),
        "commits": [],
        "started_at": "2026-12-06T12:00:00Z",
        "duration_ms": 3,
    }))
    .expect("an action record")
}

fn counter_write() -> PersistWrite {
    PersistWrite {
        namespace: "hosts".into(),
        id: "pages".into(),
        key: "pages".into(),
        kind: Some("number".into()),
        op: PersistOp::Add(1.0),
        ttl: Duration::from_secs(3600),
    }
}

fn target(request: &Recorded) -> &str {
    request.headers.get("x-amz-target").map(String::as_str).unwrap_or("")
}

#[tokio::test]
async fn a_transaction_tried_again_after_a_server_error_carries_the_same_token() {
    let dynamodb = answering(|n, _| match n {
        0 => error(500, "com.amazonaws.dynamodb.v20120810#InternalServerError", "try again"),
        _ => Reply::json(200, json!({})),
    })
    .await;
    let state = DynamoState::new(&config_at(&dynamodb), TABLE);
    state
        .complete("alert-1", &record("notify"), &[counter_write()])
        .await
        .unwrap();

    let requests = dynamodb.requests();
    assert_eq!(requests.len(), 2, "one failure, one retry");
    let tokens: Vec<Value> = requests
        .iter()
        .map(|r| r.json()["ClientRequestToken"].clone())
        .collect();
    assert!(
        tokens[0].as_str().is_some_and(|t| !t.is_empty() && t.len() <= 36),
        "{tokens:?}"
    );
    assert_eq!(tokens[0], tokens[1], "a retry DynamoDB takes for the same call");
    for request in &requests {
        assert_eq!(target(request), "DynamoDB_20120810.TransactWriteItems");
        assert_eq!(request.headers["content-type"], "application/x-amz-json-1.0");
        let authorization = &request.headers["authorization"];
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
                && authorization.contains("/eu-west-1/dynamodb/aws4_request"),
            "{authorization}"
        );
    }
    // The record and the counter, in DynamoDB's JSON, on the table.
    let items = requests[0].json()["TransactItems"].clone();
    assert_eq!(items[0]["Put"]["TableName"], TABLE);
    assert_eq!(items[0]["Put"]["Item"]["pk"], json!({"S": "action#alert-1"}));
    assert_eq!(items[0]["Put"]["Item"]["sk"], json!({"S": "notify"}));
    assert_eq!(items[0]["Put"]["Item"]["state"], json!({"S": "done"}));
    let stored: Value = serde_json::from_str(items[0]["Put"]["Item"]["record"]["S"].as_str().unwrap()).unwrap();
    assert_eq!(stored["outcome_id"], "outcome-notify");
    assert_eq!(items[1]["Update"]["TableName"], TABLE);
    assert_eq!(items[1]["Update"]["Key"]["pk"], json!({"S": "attrs#hosts"}));
    assert_eq!(
        items[1]["Update"]["ExpressionAttributeValues"][":delta"],
        json!({"N": "1"})
    );

    // Another call is another token.
    state
        .complete("alert-1", &record("page"), &[counter_write()])
        .await
        .unwrap();
    let third = dynamodb.requests()[2].json();
    assert_ne!(third["ClientRequestToken"], tokens[0]);
}

#[tokio::test]
async fn a_failed_condition_is_an_answer_and_a_refused_request_is_not_tried_again() {
    // The claim's condition fails; the item read then says another
    // instance holds the lease.
    let dynamodb = answering(|_, request| match target(request) {
        "DynamoDB_20120810.PutItem" => error(
            400,
            "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
            "The conditional request failed",
        ),
        "DynamoDB_20120810.GetItem" => {
            assert_eq!(request.json()["ConsistentRead"], true);
            Reply::json(
                200,
                json!({"Item": {"pk": {"S": "action#a"}, "sk": {"S": "notify"}, "state": {"S": "running"}, "lease_until": {"N": "99999999999"}}}),
            )
        }
        other => panic!("unexpected {other}"),
    })
    .await;
    let state = DynamoState::new(&config_at(&dynamodb), TABLE);
    let claim = state.claim("a", "notify", Duration::from_secs(60)).await.unwrap();
    assert!(matches!(claim, Claim::Busy { .. }), "{claim:?}");
    assert_eq!(dynamodb.requests().len(), 2, "no retry of a failed condition");

    let refusing = answering(|_, _| {
        error(
            400,
            "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
            "Requested resource not found",
        )
    })
    .await;
    let state = DynamoState::new(&config_at(&refusing), TABLE);
    let err = state.claim("a", "notify", Duration::from_secs(60)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("state table {TABLE}: claim failed: HTTP 400 ResourceNotFoundException: Requested resource not found")
    );
    assert_eq!(refusing.requests().len(), 1, "a refused request is not tried again");
}

#[tokio::test]
async fn secrets_are_read_through_a_throttled_call_and_errors_name_only_the_code() {
    let secrets = answering(|n, request| {
        assert_eq!(target(request), "secretsmanager.GetSecretValue");
        assert_eq!(request.headers["content-type"], "application/x-amz-json-1.1");
        match (n, request.json()["SecretId"].as_str()) {
            (0, _) => error(400, "ThrottlingException", "Rate exceeded"),
            (_, Some("prod/hook-key")) => Reply::json(200, json!({"Name": "prod/hook-key", "SecretString": "k3y"})),
            (_, Some("prod/binary")) => Reply::json(200, json!({"Name": "prod/binary", "SecretBinary": "AAEC"})),
            (_, Some("prod/denied")) => error(
                400,
                "AccessDeniedException",
                "User is not authorized to read prod/denied (value k3y)",
            ),
            _ => error(
                400,
                "ResourceNotFoundException",
                "Secrets Manager can't find the specified secret.",
            ),
        }
    })
    .await;
    let source = SecretsManager::new(&config_at(&secrets));
    assert_eq!(source.fetch("prod/hook-key").await.unwrap(), "k3y");
    assert_eq!(secrets.requests().len(), 2, "the throttled call was tried again");
    assert!(matches!(
        source.fetch("prod/binary").await,
        Err(SecretError::NotAString { .. })
    ));
    assert!(matches!(
        source.fetch("prod/missing").await,
        Err(SecretError::NotFound { .. })
    ));
    let denied = source.fetch("prod/denied").await.unwrap_err();
    assert!(matches!(denied, SecretError::AccessDenied { .. }), "{denied:?}");
    assert!(!format!("{denied} {denied:?}").contains("k3y"), "{denied:?}");
}

/// A stand-in for DynamoDB where every `PutItem` or `UpdateItem` (a
/// workflow taken) lands and its answer is lost (HTTP 500), and a retry of
/// it then fails its condition against the item it wrote. `GetItem` reads
/// what landed; with `released`, the taken workflow was released before the
/// retry came.
async fn landing_without_an_answer(released: bool) -> TestServer {
    let stored = std::sync::Mutex::new(None::<Value>);
    let condition_failed = || {
        error(
            400,
            "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
            "The conditional request failed",
        )
    };
    TestServer::start(move |request| {
        let mut stored = stored.lock().unwrap();
        let landed = |token: &Value| stored.as_ref().is_some_and(|s: &Value| s["write_token"] == *token);
        match target(request) {
            "DynamoDB_20120810.PutItem" => {
                let item = request.json()["Item"].clone();
                if landed(&item["write_token"]) {
                    return condition_failed();
                }
                *stored = Some(item);
                Reply::text(500, "")
            }
            "DynamoDB_20120810.UpdateItem" => {
                let update = request.json();
                let token = update["ExpressionAttributeValues"][":token"].clone();
                if landed(&token) {
                    if released {
                        stored.as_mut().unwrap()["phase"] = json!({"S": "suspended"});
                    }
                    return condition_failed();
                }
                let mut item = update["Key"].clone();
                item["phase"] = json!({"S": "resuming"});
                item["write_token"] = token;
                item["workflow"] = json!({"S": serde_json::to_string(&workflow("a")).unwrap()});
                *stored = Some(item);
                Reply::text(500, "")
            }
            "DynamoDB_20120810.GetItem" => Reply::json(200, json!({"Item": stored.clone()})),
            other => panic!("unexpected {other}"),
        }
    })
    .await
}

fn workflow(alert_id: &str) -> SuspendedWorkflow {
    let mut alert = common::sample_alert(vec![], vec![]);
    alert.id = alert_id.to_string();
    SuspendedWorkflow {
        alert,
        source: SourceEnvelope {
            schema: "matano".into(),
            message_id: "m-1".into(),
            topic_arn: None,
            timestamp: None,
            change_key: None,
        },
        actions: vec![],
        rounds: 1,
        pending: vec![],
        bundle_digest: "sha256:0".into(),
        suspended_at: chrono::Utc::now(),
        phase: Phase::Suspended,
    }
}

fn targets(server: &TestServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .map(|r| target(r).trim_start_matches("DynamoDB_20120810.").to_string())
        .collect()
}

#[tokio::test]
async fn a_conditional_write_whose_answer_was_lost_is_known_by_its_token() {
    let dynamodb = landing_without_an_answer(false).await;
    let state = DynamoState::new(&config_at(&dynamodb), TABLE);
    let claim = state.claim("a", "notify", Duration::from_secs(60)).await.unwrap();
    assert!(
        matches!(claim, Claim::Claimed),
        "its own claim, not another's: {claim:?}"
    );
    assert_eq!(targets(&dynamodb), ["PutItem", "PutItem", "GetItem"]);

    let dynamodb = landing_without_an_answer(false).await;
    let state = DynamoState::new(&config_at(&dynamodb), TABLE);
    let resolved = state.resolve("a", &record("approve"), &[]).await.unwrap();
    assert!(resolved, "this answer is the one stored");
    assert_eq!(targets(&dynamodb), ["PutItem", "PutItem", "GetItem"]);

    let dynamodb = landing_without_an_answer(false).await;
    let state = DynamoState::new(&config_at(&dynamodb), TABLE);
    match state.take_workflow("a", Duration::from_secs(60)).await.unwrap() {
        Taken::Workflow(workflow) => assert_eq!(workflow.id(), "a"),
        other => panic!("its own take, not another's: {other:?}"),
    }
    assert_eq!(targets(&dynamodb), ["UpdateItem", "UpdateItem", "GetItem"]);

    // Taken, then released by the instance that held it before the retry
    // came: the token is this call's, the take is undone.
    let dynamodb = landing_without_an_answer(true).await;
    let state = DynamoState::new(&config_at(&dynamodb), TABLE);
    let taken = state.take_workflow("a", Duration::from_secs(60)).await.unwrap();
    assert!(
        matches!(taken, Taken::Held),
        "a released workflow is not this call's: {}",
        if matches!(taken, Taken::Workflow(_)) {
            "taken"
        } else {
            "absent"
        }
    );

    // Another writer's item: the condition failed for this call.
    let taken = TestServer::start(|request| match target(request) {
        "DynamoDB_20120810.PutItem" => error(
            400,
            "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
            "The conditional request failed",
        ),
        _ => Reply::json(
            200,
            json!({"Item": {"state": {"S": "running"}, "lease_until": {"N": "99999999999"}, "write_token": {"S": "another"}}}),
        ),
    })
    .await;
    let state = DynamoState::new(&config_at(&taken), TABLE);
    assert!(!state.resolve("a", &record("approve"), &[]).await.unwrap());
    let claim = state.claim("a", "notify", Duration::from_secs(60)).await.unwrap();
    assert!(matches!(claim, Claim::Busy { .. }), "{claim:?}");
}

#[tokio::test]
async fn each_service_goes_to_its_own_endpoint_variable_before_the_shared_one() {
    let dynamodb = answering(|_, _| Reply::json(200, json!({}))).await;
    let secrets = answering(|_, _| Reply::json(200, json!({"Name": "prod/hook-key", "SecretString": "k3y"}))).await;
    let (dynamodb_url, secrets_url) = (dynamodb.url(""), secrets.url(""));
    let sdk = sdk_config_from(move |name| match name {
        "AWS_REGION" => Some("eu-west-1".to_string()),
        "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some("secret".to_string()),
        // Port 9 (discard): a call that went here would fail.
        "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:9".to_string()),
        "AWS_ENDPOINT_URL_DYNAMODB" => Some(dynamodb_url.clone()),
        "AWS_ENDPOINT_URL_SECRETS_MANAGER" => Some(secrets_url.clone()),
        _ => None,
    });
    assert_eq!(SecretsManager::new(&sdk).fetch("prod/hook-key").await.unwrap(), "k3y");
    let state = DynamoState::new(&sdk, TABLE);
    assert_eq!(state.load_attrs("hosts").await.unwrap(), Vec::new());
    assert_eq!(targets(&secrets), ["secretsmanager.GetSecretValue"]);
    assert_eq!(targets(&dynamodb), ["Query"]);
}

/// A take-back (a run one budget refused, given back to another) is tried
/// once: a retry of one that landed without an answer would give back a
/// run that happened. Failing, it leaves the run counted.
#[tokio::test]
async fn a_budget_take_back_is_tried_once() {
    let dynamodb = answering(|n, request| match n {
        // The daily budget counts the run; the per-minute one is spent.
        0 => Reply::json(200, json!({})),
        1 => error(400, "ConditionalCheckFailedException", "The conditional request failed"),
        // The take-back fails on the service's side.
        _ => {
            assert_eq!(
                request.json()["ExpressionAttributeValues"][":minus_one"],
                json!({"N": "-1"})
            );
            error(500, "InternalServerError", "Internal server error")
        }
    })
    .await;
    let state: Arc<dyn StateStore> = Arc::new(DynamoState::new(&config_at(&dynamodb), TABLE));
    let budgets = alert_responder::config::parse_action_budgets(
        r#"[{"uses": "vt.*", "limit": 3, "per_seconds": 86400}, {"uses": "vt.*", "limit": 1, "per_seconds": 60}]"#,
    )
    .unwrap();
    let guards = alert_responder::workflow::Guards::new(budgets, Some(state), Duration::ZERO);
    let refused = guards.admit("vt.lookup", "a").await.unwrap();
    assert_eq!(refused.as_deref(), Some("uses=vt.* (1 per 60 s)"));
    assert_eq!(targets(&dynamodb), ["UpdateItem", "UpdateItem", "UpdateItem"]);
}

/// An SQS batch's retried records are made visible again in calls of at
/// most ten, to the queue's URL on the endpoint; an entry SQS failed on its
/// side is tried once more, one it refused (a stale receipt handle) is not,
/// one its answer leaves out counts as unchanged, and the error names SQS's
/// codes, never a handle.
#[tokio::test]
async fn retried_records_are_made_visible_in_calls_of_ten() {
    let sqs = answering(|n, request| {
        let ids: Vec<String> = request.json()["Entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["Id"].as_str().unwrap().to_string())
            .collect();
        let done = |except: &[&str]| -> Vec<Value> {
            ids.iter()
                .filter(|id| !except.contains(&id.as_str()))
                .map(|id| json!({"Id": id}))
                .collect()
        };
        match n {
            0 => Reply::json(
                200,
                json!({"Successful": done(&["3", "4"]), "Failed": [
                    {"Id": "3", "SenderFault": false, "Code": "InternalError", "Message": "try again"},
                    {"Id": "4", "SenderFault": true, "Code": "ReceiptHandleIsInvalid", "Message": "handle-4 is not valid"},
                ]}),
            ),
            // The last chunk's answer leaves its second entry out.
            2 => Reply::json(200, json!({"Successful": done(&["1"]), "Failed": []})),
            _ => Reply::json(200, json!({"Successful": done(&[]), "Failed": []})),
        }
    })
    .await;
    let requeue = SqsRequeue::new(&config_at(&sqs));
    let records: Vec<Requeued> = (0..12)
        .map(|n| Requeued {
            handle: format!("handle-{n}"),
            delay_seconds: 30 * n,
        })
        .collect();
    let err = requeue
        .requeue("arn:aws:sqs:eu-west-1:123456789012:ingest", &records)
        .await
        .unwrap_err();
    assert_eq!(err.count, 2, "{err}");
    assert!(err.to_string().contains("ReceiptHandleIsInvalid"), "{err}");
    assert!(err.to_string().contains("not in the answer"), "{err}");
    assert!(!err.to_string().contains("handle-"), "{err}");
    assert_eq!(targets(&sqs), ["AmazonSQS.ChangeMessageVisibilityBatch"; 3]);
    let requests = sqs.requests();
    assert_eq!(requests[0].headers["content-type"], "application/x-amz-json-1.0");
    let bodies: Vec<Value> = requests.iter().map(Recorded::json).collect();
    assert_eq!(bodies[0]["QueueUrl"], sqs.url("/123456789012/ingest"));
    let entries = |body: &Value| -> Vec<(String, String, u64)> {
        body["Entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["Id"].as_str().unwrap().to_string(),
                    e["ReceiptHandle"].as_str().unwrap().to_string(),
                    e["VisibilityTimeout"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let first = entries(&bodies[0]);
    assert_eq!(first.len(), 10);
    assert_eq!(first[3], ("3".to_string(), "handle-3".to_string(), 90));
    // The entry SQS failed on its side, alone; then the last two records.
    assert_eq!(entries(&bodies[1]), [("0".to_string(), "handle-3".to_string(), 90)]);
    assert_eq!(
        entries(&bodies[2]),
        [
            ("0".to_string(), "handle-10".to_string(), 300),
            ("1".to_string(), "handle-11".to_string(), 330)
        ]
    );
}

/// `workflows resume --function NAME`: a schedule's target must be an ARN,
/// so a name is looked up (GetFunction); an ARN is taken as given.
#[tokio::test]
async fn a_function_given_by_name_is_scheduled_by_its_arn() {
    const ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:alert-responder";
    let server = TestServer::start(|request| match request.path.as_str() {
        "/2015-03-31/functions/alert-responder" => Reply::json(200, json!({"Configuration": {"FunctionArn": ARN}})),
        _ => error(404, "ResourceNotFoundException", "Function not found"),
    })
    .await;
    let wakeups = LambdaWakeups::new(&config_at(&server), WakeupSettings::default());
    assert_eq!(wakeups.function_arn_of("alert-responder").await.unwrap(), ARN);
    let requests = server.requests();
    assert_eq!((requests[0].method.as_str(), requests.len()), ("GET", 1));
    assert!(requests[0].headers["authorization"].starts_with("AWS4-HMAC-SHA256"));
    assert_eq!(wakeups.function_arn_of(ARN).await.unwrap(), ARN);
    assert_eq!(server.requests().len(), 1, "an ARN is not looked up");
    let err = wakeups
        .function_arn_of("no-such-function")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("GetFunction") && err.contains("no-such-function") && err.contains("404"),
        "{err}"
    );
}

/// A state table that hangs: the record fails for a retry by the
/// invocation's deadline (the batch's answer goes out in time), not after
/// each call's own tries (4 of up to 10 s).
#[tokio::test]
async fn a_hung_state_table_fails_the_record_by_the_deadline() {
    use alert_responder::action::Registry;
    use alert_responder::decide::Decider;
    use alert_responder::pipeline::{HandleError, Responder};
    use alert_responder::policy::{PolicyFile, PolicySet};
    use std::time::Instant;

    let server = TestServer::start(|_| Reply::Hang).await;
    let state = DynamoState::new(&config_at(&server), TABLE);
    let policies = PolicySet::compile(
        vec![
            PolicyFile {
                name: "alert.rego".into(),
                text: "package alert.matano\nalert contains {\"title\": \"t\", \"severity\": \"high\", \"namespace\": \"n\"} if true\n".into(),
            },
            PolicyFile {
                name: "action.rego".into(),
                text: "package action\nrun contains {\"id\": \"page\", \"uses\": \"webhook.post\", \"args\": {\"url\": \"https://hooks.example/p\"}}\n".into(),
            },
        ],
        Duration::from_secs(2),
    )
    .unwrap();
    let decider = Decider::new(
        Arc::new(policies),
        Registry::default(),
        alert_responder::app::decide_settings(&alert_responder::config::Config::default()),
        alert_responder::secrets::SecretResolver::literals_only(),
        Some(Arc::new(state)),
    );
    let publisher = Arc::new(alert_responder::memory::MemoryPublisher::default());
    let responder = Responder::new(decider, publisher);
    let change = alert_responder::ingest::ingest_document(
        include_str!("fixtures/matano_alert_change_v1.json").as_bytes(),
        &"matano".into(),
    );
    let started = Instant::now();
    let deadline = started + Duration::from_millis(600);
    let handled = tokio::time::timeout(Duration::from_secs(10), responder.handle(change, Some(deadline)))
        .await
        .expect("answered by the deadline, not after the calls' own tries");
    let err = handled.unwrap_err();
    assert!(matches!(err, HandleError::State(_)), "{err}");
    assert!(err.to_string().contains("deadline"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert!(!server.requests().is_empty(), "the state table was asked");
}
