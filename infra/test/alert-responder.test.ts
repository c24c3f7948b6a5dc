// Assertions on the synthesized CloudFormation of the AlertResponder construct.

import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { App, Duration, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as sns from "aws-cdk-lib/aws-sns";
import { AlertResponder, AlertResponderProps } from "../lib/alert-responder";

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

test("failed events go to an SQS queue after 2 retries; alarms watch it, errors and throttles", () => {
  const template = withWebhooks();
  template.hasResourceProperties("AWS::Lambda::EventInvokeConfig", {
    MaximumRetryAttempts: 2,
    MaximumEventAgeInSeconds: 21600,
    DestinationConfig: { OnFailure: { Destination: { "Fn::GetAtt": [Match.stringLikeRegexp("FailedEvents"), "Arn"] } } },
  });
  template.resourceCountIs("AWS::SQS::Queue", 2);
  template.resourceCountIs("AWS::CloudWatch::Alarm", 4);
  template.hasResourceProperties("AWS::CloudWatch::Alarm", { MetricName: "Errors", Namespace: "AWS/Lambda", Threshold: 0 });
  template.hasResourceProperties("AWS::CloudWatch::Alarm", { MetricName: "Throttles", Namespace: "AWS/Lambda" });
  template.hasResourceProperties("AWS::CloudWatch::Alarm", { MetricName: "ApproximateNumberOfMessagesVisible", Namespace: "AWS/SQS" });
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
  for (const statement of statements) {
    assert.notEqual(statement.Resource, "*", `no statement on every resource: ${JSON.stringify(statement)}`);
  }
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
  const fn = Object.values(synth({ policyLayer: lambda.LayerVersion.fromLayerVersionArn(new Stack(new App(), "L"), "L", "arn:aws:lambda:us-east-1:123456789012:layer:policies:1") }).findResources("AWS::Lambda::Function"))[0] as any;
  const cdkNames = Object.keys(fn.Properties.Environment.Variables).sort();
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
  template.hasResourceProperties("AWS::SQS::Queue", {
    VisibilityTimeout: 180,
    RedrivePolicy: { deadLetterTargetArn: { "Fn::GetAtt": [Match.stringLikeRegexp("IngestDeadLetters"), "Arn"] }, maxReceiveCount: 3 },
  });
  template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
    BatchSize: 25,
    MaximumBatchingWindowInSeconds: 2,
    FunctionResponseTypes: ["ReportBatchItemFailures"],
    ScalingConfig: { MaximumConcurrency: 5 },
  });
  template.hasResourceProperties("AWS::CloudWatch::Alarm", { MetricName: "ApproximateAgeOfOldestMessage", Threshold: 300 });
  template.hasResourceProperties("AWS::Lambda::Function", {
    Environment: { Variables: Match.objectLike({ BATCH_CONCURRENCY: "6" }) },
  });
  template.hasResourceProperties("AWS::IAM::Policy", {
    PolicyDocument: {
      Statement: Match.arrayWith([
        Match.objectLike({ Action: Match.arrayWith(["sqs:ReceiveMessage", "sqs:DeleteMessage"]), Resource: { "Fn::GetAtt": [Match.stringLikeRegexp("IngestQueue"), "Arn"] } }),
      ]),
    },
  });
});

test("the SAM template has the same ingest modes", () => {
  const sam = fs.readFileSync(path.join(__dirname, "../../../template.yaml"), "utf8");
  assert.match(sam, /IngestMode:\n\s+Type: String\n\s+Default: sns\n\s+AllowedValues: \[sns, sqs\]/);
  for (const resource of ["IngestQueue", "IngestDeadLetterQueue", "IngestEventSource", "IngestBacklogAlarm", "IngestDeadLetterAlarm", "AlertingQueueSubscription"]) {
    assert.match(sam, new RegExp(`\\n  ${resource}:\\n    Type: [^\\n]+\\n    Condition: IngestViaSqs`), resource);
  }
  assert.match(sam, /FunctionResponseTypes: \[ReportBatchItemFailures\]/);
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
});
