// Assertions on the synthesized CloudFormation of the AlertResponder construct.

import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { App, Duration, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import * as kms from "aws-cdk-lib/aws-kms";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as sns from "aws-cdk-lib/aws-sns";
import { AlertResponder, AlertResponderProps, DECISION_RECORD_COLUMNS, IngestOptions } from "../lib/alert-responder";

const ALERTING = "arn:aws:sns:us-east-1:123456789012:matano-alerting";

// One placeholder asset for every synthesis, removed when the tests end.
const assetDir = fs.mkdtempSync(path.join(os.tmpdir(), "alert-responder-asset-"));
fs.writeFileSync(path.join(assetDir, "bootstrap"), "placeholder for synthesis");
process.on("exit", () => fs.rmSync(assetDir, { recursive: true, force: true }));

function code(): lambda.Code {
  return lambda.Code.fromAsset(assetDir);
}

function synth(props: Partial<AlertResponderProps> = {}): Template {
  const app = new App();
  const stack = new Stack(app, "Test", { env: { account: "123456789012", region: "us-east-1" } });
  new AlertResponder(stack, "Responder", { alertingTopicArn: ALERTING, code: code(), ...props });
  return Template.fromStack(stack);
}

const withWebhooks = () =>
  synth({
    webhooks: [
      { url: "https://hooks.example.org/all" },
      { url: "https://hooks.example.org/failures", filterPolicy: { status: sns.SubscriptionFilter.stringFilter({ allowlist: ["failed"] }) } },
    ],
    policyEnv: { WEBHOOK_URL: "https://hooks.example.org/notify" },
    alarmTopic: undefined,
  });

test("the function: provided.al2023 on arm64, bootstrap handler, configuration in its environment", () => {
  const template = withWebhooks();
  template.resourceCountIs("AWS::Lambda::Function", 1);
  template.hasResourceProperties("AWS::Lambda::Function", {
    Runtime: "provided.al2023",
    Architectures: ["arm64"],
    Handler: "bootstrap",
    MemorySize: 256,
    Timeout: 60,
    LoggingConfig: Match.objectLike({ LogFormat: "JSON" }),
    Environment: {
      Variables: {
        OUTCOME_TOPIC_ARN: { Ref: Match.stringLikeRegexp("OutcomeTopic") },
        STATE_TABLE: { Ref: Match.stringLikeRegexp("StateTable") },
        LOG_LEVEL: "info",
        POLICY_ENV_JSON: JSON.stringify({ WEBHOOK_URL: "https://hooks.example.org/notify" }),
      },
    },
  });
  template.hasResourceProperties("AWS::Logs::LogGroup", { RetentionInDays: 30 });
});

test("subscribed to Matano's alerting topic; outcome topic signs with SignatureVersion 2", () => {
  const template = withWebhooks();
  template.hasResourceProperties("AWS::SNS::Subscription", { Protocol: "lambda", TopicArn: ALERTING });
  template.hasResourceProperties("AWS::Lambda::Permission", { Principal: "sns.amazonaws.com", SourceArn: ALERTING });
  template.resourceCountIs("AWS::SNS::Topic", 1);
  template.hasResourceProperties("AWS::SNS::Topic", { SignatureVersion: "2" });
});

test("webhooks are HTTPS subscriptions with filter policy, delivery policy and a redrive DLQ", () => {
  const template = withWebhooks();
  const subscriptions = template.findResources("AWS::SNS::Subscription", { Properties: { Protocol: "https" } });
  assert.equal(Object.keys(subscriptions).length, 2);
  template.hasResourceProperties("AWS::SNS::Subscription", {
    Protocol: "https",
    Endpoint: "https://hooks.example.org/failures",
    FilterPolicy: { status: ["failed"] },
    RedrivePolicy: { deadLetterTargetArn: { "Fn::GetAtt": [Match.stringLikeRegexp("WebhookDeadLetters"), "Arn"] } },
    DeliveryPolicy: Match.objectLike({ healthyRetryPolicy: Match.objectLike({ numRetries: 10, backoffFunction: "EXPONENTIAL" }) }),
  });
  assert.throws(() => synth({ webhooks: [{ url: "http://insecure.example.org" }] }), /must be https/);
});

test("failed events go to an SQS queue after 2 retries; alarms watch it, errors, throttles and decision record failures", () => {
  const template = withWebhooks();
  template.hasResourceProperties("AWS::Lambda::EventInvokeConfig", {
    MaximumRetryAttempts: 2,
    MaximumEventAgeInSeconds: 21600,
    DestinationConfig: { OnFailure: { Destination: { "Fn::GetAtt": [Match.stringLikeRegexp("FailedEvents"), "Arn"] } } },
  });
  template.resourceCountIs("AWS::SQS::Queue", 2);
  template.resourceCountIs("AWS::CloudWatch::Alarm", 5);
  template.hasResourceProperties("AWS::CloudWatch::Alarm", { MetricName: "Errors", Namespace: "AWS/Lambda", Threshold: 0 });
  template.hasResourceProperties("AWS::CloudWatch::Alarm", { MetricName: "Throttles", Namespace: "AWS/Lambda" });
  template.hasResourceProperties("AWS::CloudWatch::Alarm", { MetricName: "ApproximateNumberOfMessagesVisible", Namespace: "AWS/SQS" });
  template.hasResourceProperties("AWS::CloudWatch::Alarm", {
    MetricName: "DecisionRecordFailures",
    Namespace: "AlertResponder",
    Dimensions: [{ Name: "FunctionName", Value: { Ref: Match.stringLikeRegexp("Function") } }],
    Statistic: "Sum",
    Threshold: 0,
  });
});

test("the state table: string pk/sk, TTL on expires_at", () => {
  const template = withWebhooks();
  template.resourceCountIs("AWS::DynamoDB::Table", 1);
  template.hasResourceProperties("AWS::DynamoDB::Table", {
    KeySchema: [
      { AttributeName: "pk", KeyType: "HASH" },
      { AttributeName: "sk", KeyType: "RANGE" },
    ],
    AttributeDefinitions: [
      { AttributeName: "pk", AttributeType: "S" },
      { AttributeName: "sk", AttributeType: "S" },
    ],
    TimeToLiveSpecification: { AttributeName: "expires_at", Enabled: true },
    BillingMode: "PAY_PER_REQUEST",
  });
  const without = synth({ stateTable: false });
  without.resourceCountIs("AWS::DynamoDB::Table", 0);
  const fn = Object.values(without.findResources("AWS::Lambda::Function"))[0] as any;
  assert.equal(fn.Properties.Environment.Variables.STATE_TABLE, undefined);
});

test("least privilege: publish to the outcome topic, secrets under the prefix, the state table only", () => {
  const template = withWebhooks();
  const policies = template.findResources("AWS::IAM::Policy");
  const statements = Object.values(policies).flatMap((p: any) => p.Properties.PolicyDocument.Statement);
  const allowing = (action: string) => statements.filter((s: any) => [s.Action].flat().includes(action));

  const publish = allowing("sns:Publish");
  assert.equal(publish.length, 1);
  assert.deepEqual(publish[0].Resource, { Ref: Object.keys(template.findResources("AWS::SNS::Topic"))[0] });

  const secrets = allowing("secretsmanager:GetSecretValue");
  assert.equal(secrets.length, 1);
  assert.match(JSON.stringify(secrets[0].Resource), /:secret:alert-responder\/\*/);

  const dynamo = allowing("dynamodb:PutItem");
  assert.equal(dynamo.length, 1);
  assert.match(JSON.stringify(dynamo[0].Resource), /StateTable/);
  // Only the operations the function makes (src/aws/dynamodb.rs).
  assert.deepEqual([dynamo[0].Action].flat().sort(), [
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
  ]);
  for (const statement of statements) {
    assert.notEqual(statement.Resource, "*", `no statement on every resource: ${JSON.stringify(statement)}`);
  }
});

test("the sns.publish action may publish to the topics named in actionTopicArns only; a bad ARN is refused", () => {
  const oncall = "arn:aws:sns:us-east-1:123456789012:oncall";
  const template = synth({ actionTopicArns: [oncall] });
  const statements = Object.values(template.findResources("AWS::IAM::Policy")).flatMap((p: any) => p.Properties.PolicyDocument.Statement);
  const publish = statements.filter((s: any) => [s.Action].flat().includes("sns:Publish"));
  assert.equal(publish.length, 2);
  assert.deepEqual(
    publish.filter((s: any) => s.Sid === "PublishActionTopics").map((s: any) => s.Resource),
    [oncall],
  );
  assert.throws(() => synth({ actionTopicArns: ["oncall"] }), /actionTopicArns: "oncall" is not an SNS topic ARN/);
  const sam = fs.readFileSync(path.join(__dirname, "../../../template.yaml"), "utf8");
  assert.match(sam, /Sid: PublishActionTopics\n\s+Effect: Allow\n\s+Action: sns:Publish\n\s+Resource: !Ref ActionTopicArns/);
});

test("further source topics are subscribed and routed to their schemas", () => {
  const guardduty = "arn:aws:sns:us-east-1:123456789012:guardduty-findings";
  const hub = "arn:aws:sns:us-east-1:123456789012:security-hub";
  const template = synth({ sourceTopics: [{ topicArn: guardduty, schema: "guardduty" }, { topicArn: hub, schema: "security_hub" }] });
  for (const topic of [ALERTING, guardduty, hub]) {
    template.hasResourceProperties("AWS::SNS::Subscription", { Protocol: "lambda", TopicArn: topic });
    template.hasResourceProperties("AWS::Lambda::Permission", { Principal: "sns.amazonaws.com", SourceArn: topic });
  }
  template.hasResourceProperties("AWS::Lambda::Function", {
    Environment: { Variables: Match.objectLike({ TOPIC_SCHEMAS: `${guardduty}=guardduty,${hub}=security_hub` }) },
  });
  assert.throws(() => synth({ sourceTopics: [{ topicArn: hub, schema: "security-hub" }] }), /letters, digits and underscores/);
});

test("the SAM template configures the same environment variables", () => {
  const sam = fs.readFileSync(path.join(__dirname, "../../../template.yaml"), "utf8");
  const block = sam.split("Variables:")[1].split("EventInvokeConfig:")[0];
  const samNames = [...block.matchAll(/^\s{10}([A-Z_]+):/gm)].map((m) => m[1]).sort();
  // A policy layer and a policy bundle exclude each other: the union of both deployments.
  const names = (template: Template) => Object.keys((Object.values(template.findResources("AWS::Lambda::Function"))[0] as any).Properties.Environment.Variables);
  const withLayer = synth({
    policyLayer: lambda.LayerVersion.fromLayerVersionArn(new Stack(new App(), "L"), "L", "arn:aws:lambda:us-east-1:123456789012:layer:policies:1"),
    caBundleFile: "/opt/certs/ca.pem",
  });
  const withBundles = synth({
    policyBundleKey: "bundles/prod.tar.gz",
    shadowPolicyBundleKey: "bundles/candidate.tar.gz",
    interactions: { enabled: true, slackSigningSecretName: "alert-responder/slack-signing" },
  });
  const cdkNames = [...new Set([...names(withLayer), ...names(withBundles)])].sort();
  assert.deepEqual(cdkNames, samNames);
});

test("ingest mode sqs: topics deliver to a queue read in batches, with partial failures, a dead-letter queue and alarms", () => {
  const guardduty = "arn:aws:sns:us-east-1:123456789012:guardduty-findings";
  const template = synth({
    sourceTopics: [{ topicArn: guardduty, schema: "guardduty" }],
    timeout: Duration.seconds(30),
    ingest: { mode: "sqs", batchSize: 25, maxBatchingWindow: Duration.seconds(2), maxConcurrency: 5, maxReceiveCount: 3, batchConcurrency: 6 },
  });
  for (const topic of [ALERTING, guardduty]) {
    template.hasResourceProperties("AWS::SNS::Subscription", { Protocol: "sqs", TopicArn: topic, RawMessageDelivery: false });
  }
  assert.equal(Object.keys(template.findResources("AWS::SNS::Subscription", { Properties: { Protocol: "lambda" } })).length, 0);
  template.resourceCountIs("AWS::Lambda::Permission", 0);
  // The dead letters outlive the queue's retention: a moved message keeps its first enqueue time.
  template.hasResourceProperties("AWS::SQS::Queue", { MessageRetentionPeriod: 1209600, RedrivePolicy: Match.absent() });
  template.hasResourceProperties("AWS::SQS::Queue", {
    MessageRetentionPeriod: 345600,
    VisibilityTimeout: 180,
    RedrivePolicy: { deadLetterTargetArn: { "Fn::GetAtt": [Match.stringLikeRegexp("IngestDeadLetters"), "Arn"] }, maxReceiveCount: 3 },
  });
  template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
    BatchSize: 25,
    MaximumBatchingWindowInSeconds: 2,
    FunctionResponseTypes: ["ReportBatchItemFailures"],
    ScalingConfig: { MaximumConcurrency: 5 },
  });
  template.hasResourceProperties("AWS::CloudWatch::Alarm", { MetricName: "ApproximateAgeOfOldestMessage", Threshold: 300, EvaluationPeriods: 1 });
  // A batch that lists records for a retry succeeds: its own metric says so.
  template.hasResourceProperties("AWS::CloudWatch::Alarm", { Namespace: "AlertResponder", MetricName: "RecordsRetried", Threshold: 0 });
  template.hasResourceProperties("AWS::Lambda::Function", {
    Environment: { Variables: Match.objectLike({ BATCH_CONCURRENCY: "6", INGEST_RETRY_DELAY_SECONDS: "30" }) },
  });
  template.hasResourceProperties("AWS::IAM::Policy", {
    PolicyDocument: {
      Statement: Match.arrayWith([
        // ChangeMessageVisibility: retried records come back after their own delay.
        Match.objectLike({ Action: Match.arrayWith(["sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage"]), Resource: { "Fn::GetAtt": [Match.stringLikeRegexp("IngestQueue"), "Arn"] } }),
      ]),
    },
  });
});

test("ingest settings outside the SAM template's ranges are refused at synth, naming the setting", () => {
  const refused: [Omit<IngestOptions, "mode">, RegExp][] = [
    [{ batchConcurrency: 0 }, /ingest.batchConcurrency: a whole number from 1 to 64, not 0/],
    [{ batchConcurrency: 2.5 }, /ingest.batchConcurrency: a whole number from 1 to 64, not 2.5/],
    [{ batchConcurrency: 65 }, /ingest.batchConcurrency/],
    [{ maxReceiveCount: 0 }, /ingest.maxReceiveCount: a whole number from 1 to 1000/],
    [{ retriesAlarmThreshold: -1 }, /ingest.retriesAlarmThreshold: a whole number at least 0/],
    [{ oldestMessageAlarmAge: Duration.seconds(30) }, /ingest.oldestMessageAlarmAge \(seconds\): a whole number at least 60, not 30/],
  ];
  for (const [settings, message] of refused) {
    assert.throws(() => synth({ ingest: { mode: "sqs", ...settings } }), message, JSON.stringify(settings));
  }
  const template = synth({ ingest: { mode: "sqs", batchConcurrency: 64, oldestMessageAlarmAge: Duration.seconds(60) } });
  template.hasResourceProperties("AWS::CloudWatch::Alarm", { MetricName: "ApproximateAgeOfOldestMessage", Threshold: 60 });
});

test("the SAM template has the same ingest modes", () => {
  const sam = fs.readFileSync(path.join(__dirname, "../../../template.yaml"), "utf8");
  assert.match(sam, /IngestMode:\n\s+Type: String\n\s+Default: sns\n\s+AllowedValues: \[sns, sqs\]/);
  for (const resource of ["IngestQueue", "IngestDeadLetterQueue", "IngestEventSource", "IngestBacklogAlarm", "IngestDeadLetterAlarm", "IngestRetriesAlarm", "AlertingQueueSubscription"]) {
    assert.match(sam, new RegExp(`\\n  ${resource}:\\n    Type: [^\\n]+\\n    Condition: IngestViaSqs`), resource);
  }
  assert.match(sam, /FunctionResponseTypes: \[ReportBatchItemFailures\]/);
  assert.match(sam, /\n  IngestDeadLetterQueue:\n(?:    .*\n)+?      MessageRetentionPeriod: 1209600\n/);
  assert.match(sam, /\n  IngestQueue:\n(?:    .*\n)+?      MessageRetentionPeriod: 345600\n/);
});

test("action budgets reach the function as ACTION_BUDGETS; a bad one is refused", () => {
  const template = synth({ actionBudgets: [{ uses: "virustotal.*", limit: 4, perSeconds: 60 }, { id: "page-*", limit: 10, perSeconds: 3600 }] });
  template.hasResourceProperties("AWS::Lambda::Function", {
    Environment: {
      Variables: Match.objectLike({
        ACTION_BUDGETS: JSON.stringify([{ uses: "virustotal.*", limit: 4, per_seconds: 60 }, { id: "page-*", limit: 10, per_seconds: 3600 }]),
      }),
    },
  });
  assert.throws(() => synth({ actionBudgets: [{ uses: "a", id: "b", limit: 1, perSeconds: 1 }] }), /not both or neither/);
  assert.throws(() => synth({ actionBudgets: [{ uses: "a", limit: 0, perSeconds: 1 }] }), /at least 1/);
  assert.throws(() => synth({ actionBudgets: [{ uses: " ", limit: 1, perSeconds: 1 }] }), /pattern is empty/);
  assert.throws(() => synth({ actionBudgets: [{ uses: " virustotal.*", limit: 1, perSeconds: 1 }] }), /starts or ends with whitespace/);
  assert.throws(() => synth({ actionBudgets: [{ id: "p".repeat(257), limit: 1, perSeconds: 1 }] }), /over 256 bytes/);
  assert.throws(() => synth({ timeout: Duration.seconds(2) }), /timeout: from 5 to 900 seconds, not 2/);
  assert.throws(() => synth({ ingest: { mode: "sqs", retryDelay: Duration.hours(2) } }), /ingest.retryDelay: 7200 s is over an hour/);
  synth({ ingest: { mode: "sqs", retryDelay: "off" } }).hasResourceProperties("AWS::Lambda::Function", {
    Environment: { Variables: Match.objectLike({ INGEST_RETRY_DELAY_SECONDS: "off" }) },
  });
  assert.throws(() => synth({ actionBudgets: [{ uses: "a", limit: 1, perSeconds: 31 * 86400 + 1 }] }), /at most 2678400/);
  assert.throws(() => synth({ actionBudgets: [{ uses: "a", limit: 4294967296, perSeconds: 60 }] }), /limit is at most 4294967295/);
  synth({ actionBudgets: [{ uses: "a", limit: 4294967295, perSeconds: 60 }] });
  assert.throws(
    () => synth({ actionBudgets: [{ uses: "a", limit: 1, perSeconds: 60 }, { id: "a", limit: 1, perSeconds: 60 }, { uses: "a", limit: 5, perSeconds: 60 }] }),
    /actionBudgets\[2\]: counts the same actions over the same window as actionBudgets\[0\]/,
  );
});

/** The function's IAM statements, flattened. */
function statementsOf(template: Template): any[] {
  return Object.values(template.findResources("AWS::IAM::Policy")).flatMap((p: any) => p.Properties.PolicyDocument.Statement);
}

function bucketId(template: Template, fragment: string): string {
  const ids = Object.keys(template.findResources("AWS::S3::Bucket")).filter((id) => id.includes(fragment));
  assert.equal(ids.length, 1, `one ${fragment} bucket: ${ids}`);
  return ids[0];
}

test("decision records: a private, encrypted, TLS-only bucket whose records/ expire; the function's DECISION_RECORDS names it", () => {
  const template = synth();
  const records = bucketId(template, "DecisionRecords");
  template.hasResource("AWS::S3::Bucket", {
    DeletionPolicy: "Retain",
    Properties: {
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      OwnershipControls: { Rules: [{ ObjectOwnership: "BucketOwnerEnforced" }] },
      LifecycleConfiguration: { Rules: [{ Id: "ExpireDecisionRecords", Status: "Enabled", Prefix: "records/", ExpirationInDays: 400 }] },
    },
  });
  template.hasResourceProperties("AWS::S3::BucketPolicy", {
    Bucket: { Ref: records },
    PolicyDocument: {
      Statement: Match.arrayWith([
        Match.objectLike({ Effect: "Deny", Action: "s3:*", Principal: { AWS: "*" }, Condition: { Bool: { "aws:SecureTransport": "false" } } }),
      ]),
    },
  });
  template.hasResourceProperties("AWS::Lambda::Function", {
    Environment: { Variables: Match.objectLike({ DECISION_RECORDS: { "Fn::Join": ["", ["s3://", { Ref: records }, "/records"]] } }) },
  });

  const shorter = synth({ decisionRecords: { expirationDays: 30 } });
  shorter.hasResourceProperties("AWS::S3::Bucket", {
    LifecycleConfiguration: { Rules: [Match.objectLike({ Prefix: "records/", ExpirationInDays: 30 })] },
  });
  assert.throws(() => synth({ decisionRecords: { expirationDays: 0 } }), /at least 1/);
});

test("decision records are encrypted with the outcome topic's key when there is one", () => {
  const keyArn = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555";
  const template = synth({ outcomeTopicKey: kms.Key.fromKeyArn(new Stack(new App(), "K"), "K", keyArn) });
  template.hasResourceProperties("AWS::S3::Bucket", {
    BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "aws:kms", KMSMasterKeyID: keyArn }, BucketKeyEnabled: true }] },
    LifecycleConfiguration: Match.anyValue(),
  });
  const generate = statementsOf(template).filter((s: any) => [s.Action].flat().includes("kms:GenerateDataKey"));
  assert.ok(generate.some((s: any) => JSON.stringify(s.Resource) === JSON.stringify(keyArn)), JSON.stringify(generate));
});

test("the Glue table reads records/ with the OpenX JSON SerDe and projects the dt and hour partitions", () => {
  const template = synth();
  const records = bucketId(template, "DecisionRecords");
  template.resourceCountIs("AWS::Glue::Database", 1);
  template.hasResourceProperties("AWS::Glue::Database", { DatabaseInput: { Name: "alert_responder" } });
  template.hasResourceProperties("AWS::Glue::Table", {
    DatabaseName: { Ref: Match.stringLikeRegexp("DecisionRecordsDatabase") },
    TableInput: {
      Name: "decision_records",
      TableType: "EXTERNAL_TABLE",
      PartitionKeys: [
        { Name: "dt", Type: "string" },
        { Name: "hour", Type: "string" },
      ],
      Parameters: {
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": "2026-01-01,NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
        "projection.hour.type": "integer",
        "projection.hour.range": "0,23",
        "projection.hour.digits": "2",
        "storage.location.template": { "Fn::Join": ["", ["s3://", { Ref: records }, "/records/dt=${dt}/hour=${hour}/"]] },
      },
      StorageDescriptor: {
        Location: { "Fn::Join": ["", ["s3://", { Ref: records }, "/records/"]] },
        SerdeInfo: { SerializationLibrary: "org.openx.data.jsonserde.JsonSerDe" },
        Columns: Match.arrayWith([
          { Name: "source", Type: Match.stringLikeRegexp("^struct<.*change_key:string") },
          { Name: "alerts", Type: Match.stringLikeRegexp("^array<struct<.*stop:struct<reason:string.*actions:array<struct<") },
          { Name: "shadow", Type: "struct<bundle_digest:string,diverged:boolean,error:string>" },
          { Name: "resumed_at_round", Type: "int" },
        ]),
      },
    },
  });
  const columns = (Object.values(template.findResources("AWS::Glue::Table"))[0] as any).Properties.TableInput.StorageDescriptor.Columns;
  assert.ok(!columns.some((c: any) => c.Name === "payload"), "the payload is left out");
});

test("decision records can be turned off: no records bucket, table or DECISION_RECORDS", () => {
  const template = synth({ decisionRecords: { enabled: false } });
  template.resourceCountIs("AWS::S3::Bucket", 1);
  bucketId(template, "PolicyBundles");
  template.resourceCountIs("AWS::Glue::Database", 0);
  template.resourceCountIs("AWS::Glue::Table", 0);
  const fn = Object.values(template.findResources("AWS::Lambda::Function"))[0] as any;
  assert.equal(fn.Properties.Environment.Variables.DECISION_RECORDS, undefined);
  assert.equal(statementsOf(template).filter((s: any) => [s.Action].flat().includes("s3:PutObject")).length, 0);
  assert.equal(Object.keys(template.findResources("AWS::CloudWatch::Alarm", { Properties: { MetricName: "DecisionRecordFailures" } })).length, 0);
});

test("policy bundles: a versioned private bucket; POLICY_BUNDLE, SHADOW_POLICY_BUNDLE and POLICY_REFRESH_SECONDS", () => {
  const template = synth({ policyBundleKey: "bundles/prod.tar.gz", shadowPolicyBundleKey: "bundles/candidate.tar.gz", policyRefreshSeconds: 30 });
  const bundles = bucketId(template, "PolicyBundles");
  template.hasResource("AWS::S3::Bucket", {
    DeletionPolicy: "Retain",
    Properties: {
      VersioningConfiguration: { Status: "Enabled" },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      OwnershipControls: { Rules: [{ ObjectOwnership: "BucketOwnerEnforced" }] },
    },
  });
  template.hasResourceProperties("AWS::S3::BucketPolicy", {
    Bucket: { Ref: bundles },
    PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } })]) },
  });
  template.hasResourceProperties("AWS::Lambda::Function", {
    Environment: {
      Variables: Match.objectLike({
        POLICY_BUNDLE: { "Fn::Join": ["", ["s3://", { Ref: bundles }, "/bundles/prod.tar.gz"]] },
        SHADOW_POLICY_BUNDLE: { "Fn::Join": ["", ["s3://", { Ref: bundles }, "/bundles/candidate.tar.gz"]] },
        POLICY_REFRESH_SECONDS: "30",
      }),
    },
  });
  template.hasResourceProperties("AWS::CloudWatch::Alarm", { MetricName: "PolicyBundleRefused", Namespace: "AlertResponder" });

  // Without a bundle: the bucket (for the first upload), the built-in policies, the default refresh.
  const builtIn = synth();
  bucketId(builtIn, "PolicyBundles");
  const variables = (Object.values(builtIn.findResources("AWS::Lambda::Function"))[0] as any).Properties.Environment.Variables;
  assert.equal(variables.POLICY_BUNDLE, undefined);
  assert.equal(variables.SHADOW_POLICY_BUNDLE, undefined);
  assert.equal(variables.POLICY_REFRESH_SECONDS, "60");
  assert.equal(Object.keys(builtIn.findResources("AWS::CloudWatch::Alarm", { Properties: { MetricName: "PolicyBundleRefused" } })).length, 0);

  assert.throws(() => synth({ policyBundleKey: "prod.tar.gz" }), /under bundles\//);
  assert.throws(() => synth({ shadowPolicyBundleKey: "other/candidate.tar.gz" }), /under bundles\//);
  assert.throws(() => synth({ policyRefreshSeconds: 0 }), /1 to 86400/);
  const layer = lambda.LayerVersion.fromLayerVersionArn(new Stack(new App(), "L"), "L", "arn:aws:lambda:us-east-1:123456789012:layer:policies:1");
  assert.throws(() => synth({ policyBundleKey: "bundles/prod.tar.gz", policyLayer: layer }), /give one of them/);
});

test("least privilege on S3: only s3:PutObject under records/, only s3:GetObject(Version) under bundles/", () => {
  const template = synth({ policyBundleKey: "bundles/prod.tar.gz", shadowPolicyBundleKey: "bundles/candidate.tar.gz" });
  const records = bucketId(template, "DecisionRecords");
  const bundles = bucketId(template, "PolicyBundles");
  const s3Statements = statementsOf(template).filter((s: any) => [s.Action].flat().some((a: string) => a.startsWith("s3:")));
  assert.equal(s3Statements.length, 2, JSON.stringify(s3Statements));
  for (const statement of s3Statements) {
    assert.equal(statement.Effect, "Allow");
    assert.equal(statement.Condition, undefined);
  }
  const put = s3Statements.find((s: any) => [s.Action].flat().includes("s3:PutObject"));
  assert.deepEqual([put.Action].flat(), ["s3:PutObject"]);
  assert.deepEqual(put.Resource, { "Fn::Join": ["", [{ "Fn::GetAtt": [records, "Arn"] }, "/records/*"]] });
  const get = s3Statements.find((s: any) => [s.Action].flat().includes("s3:GetObject"));
  assert.deepEqual([get.Action].flat().sort(), ["s3:GetObject", "s3:GetObjectVersion"]);
  assert.deepEqual(get.Resource, { "Fn::Join": ["", [{ "Fn::GetAtt": [bundles, "Arn"] }, "/bundles/*"]] });

  // No bundle named: no read at all.
  const noBundle = statementsOf(synth()).filter((s: any) => [s.Action].flat().some((a: string) => a.startsWith("s3:Get")));
  assert.equal(noBundle.length, 0);
});

test("the SAM template declares the same Glue table: columns and partition projection", () => {
  const sam = fs.readFileSync(path.join(__dirname, "../../../template.yaml"), "utf8");
  const table = sam.split("\n  DecisionRecordsTable:\n")[1].split("\n\n")[0];
  const samColumns = [...table.split("Columns:")[1].matchAll(/- Name: (\w+)\n\s+Type: (\S+)\n?/g)].map((m) => ({ name: m[1], type: m[2] }));
  assert.deepEqual(samColumns, DECISION_RECORD_COLUMNS);
  const samProjection = Object.fromEntries(
    [...table.matchAll(/^\s+(projection\.[\w.]+): "?([^"\n]+)"?$/gm)].map((m) => [m[1], m[2]]),
  );
  const cdkParameters = (Object.values(synth().findResources("AWS::Glue::Table"))[0] as any).Properties.TableInput.Parameters;
  const cdkProjection = Object.fromEntries(Object.entries(cdkParameters).filter(([key]) => key.startsWith("projection.")));
  assert.deepEqual(samProjection, cdkProjection);
  assert.match(table, /storage\.location\.template: !Sub "s3:\/\/\$\{DecisionRecordsBucket\}\/records\/dt=\$\{!dt\}\/hour=\$\{!hour\}\/"/);
  assert.match(table, /SerializationLibrary: org\.openx\.data\.jsonserde\.JsonSerDe/);
  assert.match(sam, /WriteDecisionRecords\n\s+Effect: Allow\n\s+Action: s3:PutObject\n\s+Resource: !Sub "\$\{DecisionRecordsBucket\.Arn\}\/records\/\*"/);
  assert.match(sam, /ReadPolicyBundles\n\s+Effect: Allow\n\s+Action: \[s3:GetObject, s3:GetObjectVersion\]\n\s+Resource: !Sub "\$\{PolicyBundleBucket\.Arn\}\/bundles\/\*"/);
});

/** The logical id of the only resource of a type whose id contains `fragment`. */
function resourceId(template: Template, type: string, fragment = ""): string {
  const ids = Object.keys(template.findResources(type)).filter((id) => id.includes(fragment));
  assert.equal(ids.length, 1, `one ${type} ${fragment}: ${ids}`);
  return ids[0];
}

const withInteractions = (slackSigningSecretName?: string) => synth({ interactions: { enabled: true, slackSigningSecretName } });

test("interactions are off by default: no function URL, schedule group, scheduler role, callback secret or their variables", () => {
  const template = synth();
  for (const type of ["AWS::Lambda::Url", "AWS::Scheduler::ScheduleGroup", "AWS::SecretsManager::Secret"]) {
    template.resourceCountIs(type, 0);
  }
  template.resourceCountIs("AWS::IAM::Role", 1);
  template.resourceCountIs("AWS::Lambda::Permission", 1);
  assert.equal(Object.keys(template.findResources("AWS::Lambda::Permission", { Properties: { Principal: "*" } })).length, 0);
  const variables = (Object.values(template.findResources("AWS::Lambda::Function"))[0] as any).Properties.Environment.Variables;
  for (const name of ["SLACK_SIGNING_SECRET_ID", "CALLBACK_SECRET_ID", "SCHEDULE_GROUP", "SCHEDULER_ROLE_ARN"]) {
    assert.equal(variables[name], undefined, name);
  }
  const actions = statementsOf(template).flatMap((s: any) => [s.Action].flat());
  for (const action of ["scheduler:CreateSchedule", "iam:PassRole", "lambda:InvokeFunction", "lambda:GetFunctionUrlConfig"]) {
    assert.ok(!actions.includes(action), action);
  }
});

test("interactions: a public function URL (AuthType NONE) with both public permissions", () => {
  const template = withInteractions();
  const fn = resourceId(template, "AWS::Lambda::Function");
  template.resourceCountIs("AWS::Lambda::Url", 1);
  template.hasResourceProperties("AWS::Lambda::Url", { AuthType: "NONE", TargetFunctionArn: { "Fn::GetAtt": [fn, "Arn"] } });
  template.hasResourceProperties("AWS::Lambda::Permission", {
    Action: "lambda:InvokeFunctionUrl",
    FunctionName: { "Fn::GetAtt": [fn, "Arn"] },
    FunctionUrlAuthType: "NONE",
    Principal: "*",
  });
  template.hasResourceProperties("AWS::Lambda::Permission", {
    Action: "lambda:InvokeFunction",
    FunctionName: { "Fn::GetAtt": [fn, "Arn"] },
    InvokedViaFunctionUrl: true,
    Principal: "*",
  });
  // No other public permission: InvokeFunction for anyone only through the URL.
  const everyone = Object.values(template.findResources("AWS::Lambda::Permission", { Properties: { Principal: "*" } })) as any[];
  assert.equal(everyone.length, 2);
  assert.ok(everyone.every((p) => p.Properties.FunctionUrlAuthType === "NONE" || p.Properties.InvokedViaFunctionUrl === true));
});

test("interactions: a schedule group, a scheduler role trusted by scheduler.amazonaws.com invoking only the function, and the function's variables", () => {
  const template = withInteractions("alert-responder/slack-signing");
  const fn = resourceId(template, "AWS::Lambda::Function");
  const group = resourceId(template, "AWS::Scheduler::ScheduleGroup");
  const role = resourceId(template, "AWS::IAM::Role", "SchedulerRole");
  const secret = resourceId(template, "AWS::SecretsManager::Secret", "CallbackSecret");
  template.hasResourceProperties("AWS::IAM::Role", {
    AssumeRolePolicyDocument: {
      Statement: [
        {
          Effect: "Allow",
          Action: "sts:AssumeRole",
          Principal: { Service: "scheduler.amazonaws.com" },
          Condition: { StringEquals: { "aws:SourceAccount": "123456789012" } },
        },
      ],
    },
  });
  const rolePolicies = Object.values(template.findResources("AWS::IAM::Policy", { Properties: { Roles: [{ Ref: role }] } })) as any[];
  assert.equal(rolePolicies.length, 1);
  assert.deepEqual(rolePolicies[0].Properties.PolicyDocument.Statement, [
    { Sid: "InvokeFunction", Effect: "Allow", Action: "lambda:InvokeFunction", Resource: { "Fn::GetAtt": [fn, "Arn"] } },
  ]);
  template.hasResource("AWS::SecretsManager::Secret", {
    DeletionPolicy: "Delete",
    Properties: { GenerateSecretString: { PasswordLength: 48, ExcludePunctuation: true } },
  });
  template.hasResourceProperties("AWS::Lambda::Function", {
    Environment: {
      Variables: Match.objectLike({
        STATE_TABLE: { Ref: Match.stringLikeRegexp("StateTable") },
        SLACK_SIGNING_SECRET_ID: "alert-responder/slack-signing",
        CALLBACK_SECRET_ID: { Ref: secret },
        SCHEDULE_GROUP: { Ref: group },
        SCHEDULER_ROLE_ARN: { "Fn::GetAtt": [role, "Arn"] },
      }),
    },
  });
  const withoutSlack = (Object.values(withInteractions().findResources("AWS::Lambda::Function"))[0] as any).Properties.Environment.Variables;
  assert.equal(withoutSlack.SLACK_SIGNING_SECRET_ID, undefined);
  assert.ok(withoutSlack.CALLBACK_SECRET_ID);
});

test("interactions: schedules in the stack's group only, PassRole only to Scheduler, its own ARN in a policy of its own, no cycle", () => {
  const template = withInteractions("alert-responder/slack-signing");
  const fn = resourceId(template, "AWS::Lambda::Function");
  const group = resourceId(template, "AWS::Scheduler::ScheduleGroup");
  const role = resourceId(template, "AWS::IAM::Role", "SchedulerRole");
  const secret = resourceId(template, "AWS::SecretsManager::Secret", "CallbackSecret");
  const statements = statementsOf(template);
  const allowing = (action: string) => statements.filter((s: any) => [s.Action].flat().includes(action));

  const schedules = allowing("scheduler:CreateSchedule");
  assert.equal(schedules.length, 1);
  assert.deepEqual([schedules[0].Action].flat().sort(), ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"]);
  assert.deepEqual(schedules[0].Resource, {
    "Fn::Join": ["", ["arn:", { Ref: "AWS::Partition" }, ":scheduler:us-east-1:123456789012:schedule/", { Ref: group }, "/*"]],
  });
  const pass = allowing("iam:PassRole");
  assert.equal(pass.length, 1);
  assert.deepEqual(pass[0].Resource, { "Fn::GetAtt": [role, "Arn"] });
  assert.deepEqual(pass[0].Condition, { StringEquals: { "iam:PassedToService": "scheduler.amazonaws.com" } });

  const secrets = allowing("secretsmanager:GetSecretValue").map((s: any) => JSON.stringify(s.Resource));
  assert.ok(secrets.includes(JSON.stringify({ Ref: secret })), secrets.join());
  assert.ok(secrets.some((r) => /:secret:alert-responder\/slack-signing-\?{6}"/.test(r)), secrets.join());
  assert.ok(!allowing("secretsmanager:DescribeSecret").length);

  // Invoking itself and reading its URL: on its own ARN only, in a policy the function does not depend on.
  const self = Object.entries(template.findResources("AWS::IAM::Policy")).filter(([, p]: [string, any]) =>
    p.Properties.PolicyDocument.Statement.some((s: any) => [s.Action].flat().includes("lambda:GetFunctionUrlConfig")),
  );
  assert.equal(self.length, 1);
  const [selfId, selfPolicy] = self[0] as [string, any];
  assert.deepEqual(selfPolicy.Properties.PolicyDocument.Statement, [
    {
      Sid: "InvokeItself",
      Effect: "Allow",
      Action: ["lambda:InvokeFunction", "lambda:GetFunctionUrlConfig"],
      Resource: { "Fn::GetAtt": [fn, "Arn"] },
    },
  ]);
  // (Template.fromStack refuses a template with a dependency cycle.)
  const fnResource = template.toJSON().Resources[fn];
  assert.ok(![fnResource.DependsOn ?? []].flat().includes(selfId));
  assert.equal(allowing("lambda:InvokeFunction").length, 2, "the function itself and the scheduler role");
  for (const statement of statements) {
    assert.notEqual(statement.Resource, "*", `no statement on every resource: ${JSON.stringify(statement)}`);
  }
});

test("interactions need the state table; the Slack signing secret is a name, used only with interactions", () => {
  assert.throws(() => synth({ stateTable: false, interactions: { enabled: true } }), /need the state table/);
  assert.throws(() => synth({ interactions: { slackSigningSecretName: "alert-responder/slack-signing" } }), /only with interactions\.enabled/);
  assert.throws(
    () => withInteractions("arn:aws:secretsmanager:us-east-1:123456789012:secret:slack-AbCdEf"),
    /a secret's name/,
  );
  synth({ stateTable: false, interactions: { enabled: false } });
});

test("the SAM template has the same interactions", () => {
  const sam = fs.readFileSync(path.join(__dirname, "../../../template.yaml"), "utf8");
  assert.match(sam, /\n  EnableInteractions:\n\s+Type: String\n\s+Default: "false"\n\s+AllowedValues: \["true", "false"\]/);
  assert.match(sam, /\n  SlackSigningSecretName:\n\s+Type: String\n\s+Default: ""/);
  assert.match(sam, /InteractionsNeedStateTable:\n\s+RuleCondition: !Equals \[!Ref EnableInteractions, "true"\]\n\s+Assertions:\n\s+- Assert: !Equals \[!Ref CreateStateTable, "true"\]/);
  for (const resource of [
    "FunctionUrl",
    "FunctionUrlPublicAccess",
    "FunctionUrlPublicInvoke",
    "CallbackSecret",
    "ScheduleGroup",
    "SchedulerRole",
    "SchedulerRolePolicy",
    "FunctionInteractionsPolicy",
  ]) {
    assert.match(sam, new RegExp(`\\n  ${resource}:\\n    Type: [^\\n]+\\n    Condition: HasInteractions`), resource);
  }
  assert.match(sam, /\n  FunctionUrl:\n(    .*\n)*?      AuthType: NONE\n/);
  assert.match(sam, /\n  FunctionUrlPublicInvoke:\n(    .*\n)*?      InvokedViaFunctionUrl: true\n/);
  assert.match(sam, /Roles: \[!Ref FunctionRole\]/);
  assert.match(sam, /schedule\/\$\{ScheduleGroup\}\/\*/);
  assert.match(sam, /iam:PassedToService: scheduler\.amazonaws\.com/);
  for (const output of ["InteractionsUrl", "CallbackBaseUrl", "ScheduleGroupName"]) {
    assert.match(sam, new RegExp(`\\n  ${output}:\\n    Condition: HasInteractions\\n`), output);
  }
});

test("a CA bundle reaches the function as SSL_CERT_FILE; without one it trusts the built-in roots; a relative path is refused", () => {
  synth({ caBundleFile: "/opt/certs/ca.pem" }).hasResourceProperties("AWS::Lambda::Function", {
    Environment: { Variables: Match.objectLike({ SSL_CERT_FILE: "/opt/certs/ca.pem" }) },
  });
  const fn = Object.values(synth().findResources("AWS::Lambda::Function"))[0] as any;
  assert.equal(fn.Properties.Environment.Variables.SSL_CERT_FILE, undefined);
  assert.throws(() => synth({ caBundleFile: "certs/ca.pem" }), /caBundleFile must be an absolute path/);
});
