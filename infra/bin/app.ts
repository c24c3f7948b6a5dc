#!/usr/bin/env node
// Deploys AlertResponder next to Matano:
//   cargo lambda build --release --arm64          (from the repository root)
//   cd infra && npm ci && npx cdk deploy -c alertingTopicArn=arn:aws:sns:REGION:ACCOUNT:TOPIC
// Optional context: webhookUrl, webhookStatus (filter: comma-separated statuses),
// sourceTopics (further source topics: comma-separated TOPIC_ARN=schema),
// codeDir (default ../target/lambda/alert-responder), alarmEmail is not used: pass alarmTopicArn.

import * as fs from "fs";
import * as path from "path";
import { App, CfnOutput, Stack } from "aws-cdk-lib";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as sns from "aws-cdk-lib/aws-sns";
import { AlertResponder, WebhookSubscription } from "../lib/alert-responder";

const app = new App();
const context = (name: string): string | undefined => app.node.tryGetContext(name) ?? process.env[`ALERT_RESPONDER_${name.toUpperCase()}`];

const alertingTopicArn = context("alertingTopicArn");
if (!alertingTopicArn) {
  throw new Error("set the Matano alerting topic: cdk deploy -c alertingTopicArn=arn:aws:sns:REGION:ACCOUNT:NAME");
}
const codeDir = path.resolve(__dirname, "../..", context("codeDir") ?? "../target/lambda/alert-responder");
if (!fs.existsSync(path.join(codeDir, "bootstrap"))) {
  throw new Error(`no bootstrap in ${codeDir}: run \`cargo lambda build --release --arm64\` first, or pass -c codeDir=DIR`);
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

const stack = new Stack(app, context("stackName") ?? "AlertResponder");
const responder = new AlertResponder(stack, "AlertResponder", {
  alertingTopicArn,
  code: lambda.Code.fromAsset(codeDir),
  webhooks,
  sourceTopics,
  alarmTopic: context("alarmTopicArn") ? sns.Topic.fromTopicArn(stack, "AlarmTopic", context("alarmTopicArn")!) : undefined,
});
new CfnOutput(stack, "OutcomeTopicArn", { value: responder.outcomeTopic.topicArn });
new CfnOutput(stack, "FailedEventsQueueUrl", { value: responder.failedEvents.queueUrl });
