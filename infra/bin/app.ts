#!/usr/bin/env node
// Deploys AlertResponder next to Matano:
//   scripts/release                               (from the repository root: the tested zip)
//   cd infra && npm ci && npx cdk deploy -c alertingTopicArn=arn:aws:sns:REGION:ACCOUNT:TOPIC
// Optional context: webhookUrl, webhookStatus (filter: comma-separated statuses),
// sourceTopics (further source topics: comma-separated TOPIC_ARN=schema),
// code (a zip or a directory holding bootstrap; default: the release zip
// target/release-artifacts/alert-responder-<version>-arm64.zip, else the
// directory `cargo lambda build --release --arm64` writes, target/lambda/alert-responder),
// alarmTopicArn, decisionRecords (`disabled` turns the decision records off),
// decisionRecordsExpirationDays, policyBundleKey and shadowPolicyBundleKey (keys
// under bundles/ in the policy bundle bucket), policyRefreshSeconds,
// enableInteractions (`true`: approvals and waits, answered at the function URL;
// outputs InteractionsUrl, CallbackBaseUrl, ScheduleGroupName) and
// slackSigningSecretName (the Secrets Manager secret holding the Slack app's signing secret),
// timeoutSeconds and memorySize (the function's), ingestMode (`sns`, the default, or `sqs`: README
// "Choosing an ingest mode") with ingestBatchSize, ingestBatchingWindowSeconds, ingestMaxConcurrency,
// ingestMaxReceiveCount, ingestOldestMessageAlarmSeconds, ingestRetriesAlarmThreshold, ingestRetryDelaySeconds
// (or `off`) and batchConcurrency,
// and actionBudgets (the JSON of
// ACTION_BUDGETS: [{"uses": "virustotal.*", "limit": 4, "per_seconds": 60}]), policyEnv (a JSON
// object of strings handed to policies as input.env: {"WEBHOOK_URL": "https://..."}) and
// actionTopicArns (comma-separated SNS topics the sns.publish action may publish to).

import * as fs from "fs";
import * as path from "path";
import { App, CfnOutput, Duration, Stack } from "aws-cdk-lib";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as sns from "aws-cdk-lib/aws-sns";
import { ActionBudget, AlertResponder, WebhookSubscription } from "../lib/alert-responder";
import { releaseZip } from "../lib/release-artifact";

const app = new App();
/** A context value as given: -c or ALERT_RESPONDER_<NAME> a string, cdk.json any JSON value. */
const rawContext = (name: string): unknown => app.node.tryGetContext(name) ?? process.env[`ALERT_RESPONDER_${name.toUpperCase()}`];
const context = (name: string): string | undefined => rawContext(name) as string | undefined;

const alertingTopicArn = context("alertingTopicArn");
if (!alertingTopicArn) {
  throw new Error("set the Matano alerting topic: cdk deploy -c alertingTopicArn=arn:aws:sns:REGION:ACCOUNT:NAME");
}
const repoRoot = path.resolve(__dirname, "../../..");
const given = context("code") ?? context("codeDir");
const code = given ? path.resolve(__dirname, "../..", given) : defaultCode();
if (code.endsWith(".zip") ? !fs.existsSync(code) : !fs.existsSync(path.join(code, "bootstrap"))) {
  throw new Error(`no function code at ${code}: run scripts/release (or \`cargo lambda build --release --arm64\`) first, or pass -c code=ZIP_OR_DIR`);
}

/** The release zip when scripts/release made one, else cargo lambda's output directory. */
function defaultCode(): string {
  const zip = releaseZip(repoRoot);
  return fs.existsSync(zip) ? zip : path.join(repoRoot, "target", "lambda", "alert-responder");
}

const webhooks: WebhookSubscription[] = [];
const webhookUrl = context("webhookUrl");
if (webhookUrl) {
  const statuses = context("webhookStatus");
  webhooks.push({
    url: webhookUrl,
    filterPolicy: statuses ? { status: sns.SubscriptionFilter.stringFilter({ allowlist: statuses.split(",") }) } : undefined,
  });
}

const sourceTopics = (context("sourceTopics") ?? "")
  .split(",")
  .map((pair) => pair.trim())
  .filter((pair) => pair !== "")
  .map((pair) => {
    const [topicArn, schema] = pair.split("=");
    if (!topicArn || !schema) {
      throw new Error(`sourceTopics: ${JSON.stringify(pair)} is not TOPIC_ARN=schema`);
    }
    return { topicArn, schema };
  });

/** A whole-number context value, or undefined when not given. */
function numberContext(name: string): number | undefined {
  const value = context(name);
  if (value === undefined || value === "") {
    return undefined;
  }
  if (!/^[0-9]+$/.test(value)) {
    throw new Error(`${name}: ${JSON.stringify(value)} is not a whole number`);
  }
  return Number(value);
}

function secondsContext(name: string): Duration | undefined {
  const seconds = numberContext(name);
  return seconds === undefined ? undefined : Duration.seconds(seconds);
}

const decisionRecords = context("decisionRecords") ?? "enabled";
if (decisionRecords !== "enabled" && decisionRecords !== "disabled") {
  throw new Error(`decisionRecords: enabled or disabled, not ${JSON.stringify(decisionRecords)}`);
}

const enableInteractions = context("enableInteractions") || "false";
if (enableInteractions !== "true" && enableInteractions !== "false") {
  throw new Error(`enableInteractions: true or false, not ${JSON.stringify(enableInteractions)}`);
}

const ingestMode = context("ingestMode") || "sns";
if (ingestMode !== "sns" && ingestMode !== "sqs") {
  throw new Error(`ingestMode: sns or sqs, not ${JSON.stringify(ingestMode)}`);
}

/** A JSON context value: from -c or the environment a string, from cdk.json the value itself; undefined when not given. */
function jsonContext(name: string, expected: string): unknown {
  const given = rawContext(name);
  if (given === undefined || (typeof given === "string" && given.trim() === "")) {
    return undefined;
  }
  if (typeof given !== "string") {
    return given;
  }
  try {
    return JSON.parse(given);
  } catch (err) {
    throw new Error(`${name}: not JSON (${(err as Error).message}); expected ${expected}`);
  }
}

/** `actionBudgets` as ACTION_BUDGETS writes it (snake case), for the construct; the construct checks the values. */
function budgetsContext(): ActionBudget[] | undefined {
  const entries = jsonContext("actionBudgets", `[{"uses" or "id": glob, "limit": n, "per_seconds": s}]`);
  if (entries === undefined) {
    return undefined;
  }
  if (!Array.isArray(entries)) {
    throw new Error("actionBudgets: expected a JSON list of budgets");
  }
  const shape = `{"uses" or "id": glob, "limit": n, "per_seconds": s}`;
  return entries.map((entry: unknown, index) => {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      throw new Error(`actionBudgets[${index}]: expected ${shape}`);
    }
    const fields = entry as Record<string, unknown>;
    const unknown = Object.keys(fields).filter((key) => !["uses", "id", "limit", "per_seconds"].includes(key));
    if (unknown.length > 0) {
      throw new Error(`actionBudgets[${index}]: expected ${shape}, not ${unknown.join(", ")}`);
    }
    // null is absent, as the function reads ACTION_BUDGETS.
    const pattern = (key: string) => {
      const value = fields[key] ?? undefined;
      if (value !== undefined && typeof value !== "string") {
        throw new Error(`actionBudgets[${index}]: ${key} is a string (a glob)`);
      }
      return value;
    };
    const whole = (key: string) => {
      if (typeof fields[key] !== "number") {
        throw new Error(`actionBudgets[${index}]: ${key} is a whole number`);
      }
      return fields[key] as number;
    };
    return { uses: pattern("uses"), id: pattern("id"), limit: whole("limit"), perSeconds: whole("per_seconds") };
  });
}

/** `policyEnv`: a JSON object of strings (from cdk.json, the object itself). */
function policyEnvContext(): { [name: string]: string } | undefined {
  const values = jsonContext("policyEnv", `{"NAME": "value"}`);
  if (values === undefined) {
    return undefined;
  }
  if (typeof values !== "object" || values === null || Array.isArray(values)) {
    throw new Error('policyEnv: expected a JSON object of strings, {"NAME": "value"}');
  }
  for (const [name, value] of Object.entries(values)) {
    if (typeof value !== "string") {
      throw new Error(`policyEnv.${name}: a string, not ${JSON.stringify(value)}`);
    }
  }
  return values as { [name: string]: string };
}

/** `actionTopicArns`: comma-separated, or a list in cdk.json. */
function actionTopicArnsContext(): string[] {
  const given = rawContext("actionTopicArns") ?? "";
  const arns = Array.isArray(given) ? given : String(given).split(",");
  return arns.map((arn) => String(arn).trim()).filter((arn) => arn !== "");
}
const actionTopicArns = actionTopicArnsContext();

const stack = new Stack(app, context("stackName") ?? "AlertResponder");
const responder = new AlertResponder(stack, "AlertResponder", {
  alertingTopicArn,
  code: lambda.Code.fromAsset(code),
  webhooks,
  sourceTopics,
  alarmTopic: context("alarmTopicArn") ? sns.Topic.fromTopicArn(stack, "AlarmTopic", context("alarmTopicArn")!) : undefined,
  decisionRecords: { enabled: decisionRecords === "enabled", expirationDays: numberContext("decisionRecordsExpirationDays") },
  policyBundleKey: context("policyBundleKey") || undefined,
  shadowPolicyBundleKey: context("shadowPolicyBundleKey") || undefined,
  policyRefreshSeconds: numberContext("policyRefreshSeconds"),
  interactions: { enabled: enableInteractions === "true", slackSigningSecretName: context("slackSigningSecretName") || undefined },
  timeout: secondsContext("timeoutSeconds"),
  memorySize: numberContext("memorySize"),
  ingest: {
    mode: ingestMode,
    batchSize: numberContext("ingestBatchSize"),
    maxBatchingWindow: secondsContext("ingestBatchingWindowSeconds"),
    maxConcurrency: numberContext("ingestMaxConcurrency"),
    maxReceiveCount: numberContext("ingestMaxReceiveCount"),
    oldestMessageAlarmAge: secondsContext("ingestOldestMessageAlarmSeconds"),
    retriesAlarmThreshold: numberContext("ingestRetriesAlarmThreshold"),
    batchConcurrency: numberContext("batchConcurrency"),
    retryDelay: context("ingestRetryDelaySeconds")?.trim().toLowerCase() === "off" ? "off" : secondsContext("ingestRetryDelaySeconds"),
  },
  actionBudgets: budgetsContext(),
  policyEnv: policyEnvContext(),
  actionTopicArns,
});
new CfnOutput(stack, "FunctionArn", { value: responder.function.functionArn });
if (responder.stateTable) {
  new CfnOutput(stack, "StateTableName", { value: responder.stateTable.tableName });
}
if (responder.ingestDeadLetters) {
  new CfnOutput(stack, "IngestDeadLetterQueueUrl", { value: responder.ingestDeadLetters.queueUrl });
  new CfnOutput(stack, "IngestDeadLetterQueueArn", { value: responder.ingestDeadLetters.queueArn });
}
if (responder.webhookDeadLetters) {
  new CfnOutput(stack, "WebhookDeadLetterQueueUrl", { value: responder.webhookDeadLetters.queueUrl });
}
if (responder.ingestQueue) {
  new CfnOutput(stack, "IngestQueueUrl", { value: responder.ingestQueue.queueUrl });
}
new CfnOutput(stack, "OutcomeTopicArn", { value: responder.outcomeTopic.topicArn });
new CfnOutput(stack, "FailedEventsQueueUrl", { value: responder.failedEvents.queueUrl });
new CfnOutput(stack, "PolicyBundleBucketName", { value: responder.policyBundleBucket.bucketName });
if (responder.decisionRecordsBucket && responder.decisionRecordsDatabase && responder.decisionRecordsTable) {
  new CfnOutput(stack, "DecisionRecordsBucketName", { value: responder.decisionRecordsBucket.bucketName });
  new CfnOutput(stack, "DecisionRecordsTableName", {
    value: `${responder.decisionRecordsDatabase.ref}.${responder.decisionRecordsTable.ref}`,
  });
}
if (responder.functionUrl && responder.scheduleGroup) {
  // The function URL ends with a slash.
  new CfnOutput(stack, "InteractionsUrl", {
    description: "Paste into the Slack app's Interactivity Request URL (Interactivity & Shortcuts).",
    value: `${responder.functionUrl.url}slack/interactions`,
  });
  new CfnOutput(stack, "CallbackBaseUrl", {
    description: "Callback URLs are this followed by a signed token (POST /callbacks/<token>, for systems other than Slack).",
    value: `${responder.functionUrl.url}callbacks/`,
  });
  new CfnOutput(stack, "ScheduleGroupName", {
    description: "EventBridge Scheduler group of the pending actions' one-time schedules (timeouts, waits).",
    value: responder.scheduleGroup.ref,
  });
}
