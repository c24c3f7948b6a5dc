// AlertResponder: the alert-responder Lambda subscribed to Matano's alerting
// topic (directly, or through an SQS queue read in batches), its outcome topic with HTTPS webhook subscriptions, the state table,
// the on-failure queue, the decision records bucket with its Glue table, the
// policy bundle bucket, the alarms and (interactions) the function URL, the
// callback secret and the Scheduler group and role — the same resources as template.yaml.

import { Duration, RemovalPolicy, Stack, Token } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as cwActions from "aws-cdk-lib/aws-cloudwatch-actions";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as glue from "aws-cdk-lib/aws-glue";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as destinations from "aws-cdk-lib/aws-lambda-destinations";
import * as eventSources from "aws-cdk-lib/aws-lambda-event-sources";
import * as logs from "aws-cdk-lib/aws-logs";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as scheduler from "aws-cdk-lib/aws-scheduler";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subscriptions from "aws-cdk-lib/aws-sns-subscriptions";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";

export interface WebhookSubscription {
  /** HTTPS endpoint receiving outcome notifications. */
  readonly url: string;
  /** SNS filter policy on the outcome's message attributes, e.g. { status: ["failed"] }. */
  readonly filterPolicy?: { [attribute: string]: sns.SubscriptionFilter };
}

/** Another topic whose messages the function decides, with the schema that routes them. */
export interface SourceTopic {
  /** e.g. the topic an EventBridge rule sends GuardDuty findings to. */
  readonly topicArn: string;
  /** The alert policy is `package alert.<schema>`: letters, digits and underscores. */
  readonly schema: string;
}

/** How alert changes reach the function (README: "Choosing an ingest mode"). */
export interface IngestOptions {
  /** "sns" (default): one asynchronous invocation per change. "sqs": through a queue, in batches. */
  readonly mode: "sns" | "sqs";
  /** (sqs) records per invocation. Default 10. */
  readonly batchSize?: number;
  /** (sqs) how long Lambda gathers a batch. Default 1 second. */
  readonly maxBatchingWindow?: Duration;
  /** (sqs) concurrent invocations reading the queue. Default 10. */
  readonly maxConcurrency?: number;
  /** (sqs) deliveries of a record before the dead-letter queue. Default 5. */
  readonly maxReceiveCount?: number;
  /** (sqs) alarm when the oldest waiting record is older than this. Default 5 minutes. */
  readonly oldestMessageAlarmAge?: Duration;
  /** (sqs) alarm when more records than this are listed for a retry in 5 minutes (RecordsRetried). Default 0: any retry. */
  readonly retriesAlarmThreshold?: number;
  /**
   * (sqs) a record listed for a retry is visible again after this (at most an hour), doubled per delivery up
   * to 15 minutes or this delay if longer (INGEST_RETRY_DELAY_SECONDS); "off": after the queue's visibility
   * timeout, and the batch-mates of a record that crashes the function wait it out with it. Default 30 seconds.
   */
  readonly retryDelay?: Duration | "off";
  /** (sqs) records of one batch decided at a time (BATCH_CONCURRENCY). Default 4. */
  readonly batchConcurrency?: number;
}

/** Decision records (README "Decision records"): one gzip JSON-lines object per invocation. */
export interface DecisionRecordsOptions {
  /** Write them (DECISION_RECORDS). Default true. */
  readonly enabled?: boolean;
  /** Days a record is kept (lifecycle expiration of records/). Default 400. */
  readonly expirationDays?: number;
  /** Glue database of the `decision_records` table: lowercase letters, digits, underscores. Default "alert_responder". */
  readonly databaseName?: string;
}

/**
 * Human in the loop (README "Human in the loop"): approval.request and wait suspend a workflow
 * in the state table until it is answered at the function URL or due.
 */
export interface InteractionsOptions {
  /**
   * Create the public function URL (POST /slack/interactions, POST /callbacks/<token>; the
   * function verifies every request), the secret signing callback tokens (CALLBACK_SECRET_ID),
   * and the EventBridge Scheduler group and role for due times (SCHEDULE_GROUP,
   * SCHEDULER_ROLE_ARN). Needs the state table. Default false.
   */
  readonly enabled?: boolean;
  /**
   * Name of the Secrets Manager secret holding the Slack app's signing secret as its plain
   * SecretString (SLACK_SIGNING_SECRET_ID). Default: none (Slack's requests are refused, only
   * callbacks are answered).
   */
  readonly slackSigningSecretName?: string;
}

export interface AlertResponderProps {
  /** Matano's alerting topic (the AlertingSnsTopicArn output of the Matano stack). */
  readonly alertingTopicArn: string;
  /** The function code: the release zip `scripts/release` wrote (`lambda.Code.fromAsset(releaseZip(repoRoot))`), or the directory `cargo lambda build --release --arm64` produced. */
  readonly code: lambda.Code;
  readonly memorySize?: number;
  /** The function's timeout, 5 to 900 s. Default 60 s. */
  readonly timeout?: Duration;
  readonly reservedConcurrency?: number;
  readonly logRetention?: logs.RetentionDays;
  readonly logLevel?: "error" | "warn" | "info" | "debug";
  /** Absolute path of a PEM bundle of root certificates for HTTPS (actions and AWS calls), e.g. "/opt/certs/ca.pem" shipped in the policy layer: a private CA or a TLS-inspecting proxy. Default: Mozilla's roots, built into the binary. */
  readonly caBundleFile?: string;
  /** Secrets Manager names the actions may read. Default "alert-responder/". */
  readonly secretNamePrefix?: string;
  /** Create the DynamoDB state table (exactly-once actions). Default true. */
  readonly stateTable?: boolean;
  /** Values handed to policies as input.env. */
  readonly policyEnv?: { [name: string]: string };
  /** SNS topics the sns.publish action may publish to (ARNs), e.g. the on-call topic of PAGE_TOPIC_ARN. Default: none. */
  readonly actionTopicArns?: string[];
  /** A layer with policies under /opt/policies; default: the policies bundled in the binary. */
  readonly policyLayer?: lambda.ILayerVersion;
  /** Encrypt the outcome topic with this key. */
  readonly outcomeTopicKey?: kms.IKey;
  readonly webhooks?: WebhookSubscription[];
  /** Further source topics (GuardDuty, Security Hub, any JSON), each routed to its schema (TOPIC_SCHEMAS). */
  readonly sourceTopics?: SourceTopic[];
  /** Topic the alarms notify. */
  readonly alarmTopic?: sns.ITopic;
  /** SNS invocations (default) or an SQS queue read in batches. */
  readonly ingest?: IngestOptions;
  /** ACTION_BUDGETS: limits on how often matching actions run (README "Budgets and the kill switch"). */
  readonly actionBudgets?: ActionBudget[];
  /** Decision records to S3, queryable in Athena. Default: on, kept 400 days. */
  readonly decisionRecords?: DecisionRecordsOptions;
  /**
   * POLICY_BUNDLE: key of a policy bundle (tar.gz) under `bundles/` in the policy bundle
   * bucket, e.g. "bundles/prod.tar.gz", loaded instead of the built-in policies. Default: none.
   */
  readonly policyBundleKey?: string;
  /** SHADOW_POLICY_BUNDLE: key of a candidate bundle under `bundles/`, evaluated next to the live policies. */
  readonly shadowPolicyBundleKey?: string;
  /** POLICY_REFRESH_SECONDS: how often the bundles' ETags are re-checked. Default 60. */
  readonly policyRefreshSeconds?: number;
  /** Approvals and waits answered at the function URL. Default: off. */
  readonly interactions?: InteractionsOptions;
}

/** The Glue columns of a decision record (schema_version 1), as template.yaml declares them; the payload is left out. */
export const DECISION_RECORD_COLUMNS: glue.CfnTable.ColumnProperty[] = [
  { name: "record_type", type: "string" },
  { name: "schema_version", type: "int" },
  { name: "record_id", type: "string" },
  { name: "decided_at", type: "string" },
  { name: "request_id", type: "string" },
  { name: "source", type: "struct<message_id:string,topic_arn:string,change_key:string,schema:string>" },
  { name: "bundle_digest", type: "string" },
  { name: "engine", type: "string" },
  { name: "result", type: "string" },
  { name: "error", type: "string" },
  {
    name: "alerts",
    type:
      "array<struct<id:string,title:string,severity:string,namespace:string," +
      "attrs:array<struct<id:string,key:string,value:string,type:string,persist:boolean,ttl:bigint>>," +
      "rounds:int,stop:struct<reason:string,action_id:string,error:string>," +
      "actions:array<struct<id:string,uses:string,seq:int,status:string,skip_reason:string,budget:string,replay:boolean," +
      "duration_ms:bigint,error:string,outcome_id:string,args:string,result:string," +
      "commits:array<struct<id:string,key:string,value:string,type:string,persist:boolean,ttl:bigint,op:string>>>>>>",
  },
  { name: "timings", type: "struct<decision_us:bigint,total_ms:bigint>" },
  { name: "shadow", type: "struct<bundle_digest:string,diverged:boolean,error:string>" },
  { name: "resumed_at_round", type: "int" },
];

const BUNDLE_KEY = /^bundles\/[A-Za-z0-9/_.=+@-]+$/;

/** At most `limit` runs of the actions matched by `uses` or `id` (globs with `*`) per `perSeconds`. */
export interface ActionBudget {
  readonly uses?: string;
  readonly id?: string;
  readonly limit: number;
  readonly perSeconds: number;
}

/** The function's timeout: 60 s by default; at least 5 s, as the SAM template allows (a record is not started in the last 1.75 s). */
function functionTimeout(timeout: Duration | undefined): Duration {
  const chosen = timeout ?? Duration.seconds(60);
  if (chosen.toSeconds() < 5 || chosen.toSeconds() > 900) {
    throw new Error(`timeout: from 5 to 900 seconds, not ${chosen.toSeconds()}`);
  }
  return chosen;
}

export class AlertResponder extends Construct {
  public readonly function: lambda.Function;
  public readonly outcomeTopic: sns.Topic;
  public readonly failedEvents: sqs.Queue;
  public readonly stateTable?: dynamodb.Table;
  public readonly webhookDeadLetters?: sqs.Queue;
  /** (ingest mode sqs) the queue the source topics deliver to, and its dead letters. */
  public readonly ingestQueue?: sqs.Queue;
  public readonly ingestDeadLetters?: sqs.Queue;
  /** Decision records (unless disabled): objects under records/, and the Glue database and table over them. */
  public readonly decisionRecordsBucket?: s3.Bucket;
  public readonly decisionRecordsDatabase?: glue.CfnDatabase;
  public readonly decisionRecordsTable?: glue.CfnTable;
  /** Policy bundles go under bundles/ (versioned); always created, so the first bundle can be uploaded before it is named. */
  public readonly policyBundleBucket: s3.Bucket;
  public readonly alarms: cloudwatch.Alarm[] = [];
  /** (interactions) the public function URL; its `url` ends with `/`. */
  public readonly functionUrl?: lambda.FunctionUrl;
  /** (interactions) signs callback tokens (CALLBACK_SECRET_ID). */
  public readonly callbackSecret?: secretsmanager.Secret;
  /** (interactions) the group of the pending actions' one-time schedules; `ref` is its name. */
  public readonly scheduleGroup?: scheduler.CfnScheduleGroup;
  /** (interactions) the role EventBridge Scheduler invokes the function as. */
  public readonly schedulerRole?: iam.Role;

  constructor(scope: Construct, id: string, props: AlertResponderProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const secretPrefix = props.secretNamePrefix ?? "alert-responder/";

    this.outcomeTopic = new sns.Topic(this, "OutcomeTopic", {
      displayName: "alert-responder outcomes",
      signatureVersion: "2",
      masterKey: props.outcomeTopicKey,
    });

    if (props.stateTable ?? true) {
      this.stateTable = new dynamodb.Table(this, "StateTable", {
        partitionKey: { name: "pk", type: dynamodb.AttributeType.STRING },
        sortKey: { name: "sk", type: dynamodb.AttributeType.STRING },
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        timeToLiveAttribute: "expires_at",
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        encryption: dynamodb.TableEncryption.AWS_MANAGED,
        removalPolicy: RemovalPolicy.RETAIN,
      });
    }

    this.failedEvents = new sqs.Queue(this, "FailedEvents", {
      retentionPeriod: Duration.days(14),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
    });

    const records = props.decisionRecords ?? {};
    const expirationDays = records.expirationDays ?? 400;
    const databaseName = records.databaseName ?? "alert_responder";
    if (!Number.isInteger(expirationDays) || expirationDays < 1) {
      throw new Error("decisionRecords.expirationDays: a whole number of at least 1");
    }
    if (!/^[a-z][a-z0-9_]{0,254}$/.test(databaseName)) {
      throw new Error(`decisionRecords.databaseName ${JSON.stringify(databaseName)}: lowercase letters, digits and underscores, starting with a letter`);
    }
    for (const [name, key] of [["policyBundleKey", props.policyBundleKey], ["shadowPolicyBundleKey", props.shadowPolicyBundleKey]]) {
      if (key !== undefined && !BUNDLE_KEY.test(key)) {
        throw new Error(`${name} ${JSON.stringify(key)}: a key under bundles/ (the function may read nothing else), e.g. bundles/prod.tar.gz`);
      }
    }
    if (props.policyBundleKey !== undefined && props.policyLayer) {
      throw new Error("policyBundleKey and policyLayer both replace the built-in policies; give one of them");
    }
    const interactions = props.interactions ?? {};
    if (interactions.enabled && !this.stateTable) {
      throw new Error("interactions need the state table (stateTable: true): suspended workflows are kept in it");
    }
    const slackSecretName = interactions.slackSigningSecretName;
    if (slackSecretName !== undefined) {
      if (!interactions.enabled) {
        throw new Error("interactions.slackSigningSecretName is used only with interactions.enabled");
      }
      if (!/^[A-Za-z0-9/_+=.@-]+$/.test(slackSecretName)) {
        throw new Error(`interactions.slackSigningSecretName ${JSON.stringify(slackSecretName)}: a secret's name (letters, digits and /_+=.@-), not its ARN`);
      }
    }
    const refreshSeconds = props.policyRefreshSeconds ?? 60;
    if (!Number.isInteger(refreshSeconds) || refreshSeconds < 1 || refreshSeconds > 86400) {
      throw new Error("policyRefreshSeconds: a whole number from 1 to 86400");
    }

    // Private, TLS-only, owner-enforced buckets; kept when the stack goes.
    const privateBucket = {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      removalPolicy: RemovalPolicy.RETAIN,
    };
    if (records.enabled ?? true) {
      // The records hold what the outcomes hold: the outcome topic's key encrypts them when there is one.
      this.decisionRecordsBucket = new s3.Bucket(this, "DecisionRecords", {
        ...privateBucket,
        encryption: props.outcomeTopicKey ? s3.BucketEncryption.KMS : s3.BucketEncryption.S3_MANAGED,
        encryptionKey: props.outcomeTopicKey,
        bucketKeyEnabled: props.outcomeTopicKey ? true : undefined,
        lifecycleRules: [{ id: "ExpireDecisionRecords", prefix: "records/", expiration: Duration.days(expirationDays) }],
      });
      const bucketName = this.decisionRecordsBucket.bucketName;
      this.decisionRecordsDatabase = new glue.CfnDatabase(this, "DecisionRecordsDatabase", {
        catalogId: stack.account,
        databaseInput: { name: databaseName, description: "alert-responder decision records" },
      });
      // Athena reads the gzip JSON lines where they are, partitions projected from the keys.
      this.decisionRecordsTable = new glue.CfnTable(this, "DecisionRecordsTable", {
        catalogId: stack.account,
        databaseName: this.decisionRecordsDatabase.ref,
        tableInput: {
          name: "decision_records",
          description: "One line per decision (record_type decision, schema_version 1); see the README.",
          tableType: "EXTERNAL_TABLE",
          parameters: {
            EXTERNAL: "TRUE",
            classification: "json",
            compressionType: "gzip",
            "projection.enabled": "true",
            "projection.dt.type": "date",
            "projection.dt.format": "yyyy-MM-dd",
            "projection.dt.range": "2026-01-01,NOW",
            "projection.dt.interval": "1",
            "projection.dt.interval.unit": "DAYS",
            "projection.hour.type": "integer",
            "projection.hour.range": "0,23",
            "projection.hour.digits": "2",
            "storage.location.template": `s3://${bucketName}/records/dt=\${dt}/hour=\${hour}/`,
          },
          partitionKeys: [
            { name: "dt", type: "string" },
            { name: "hour", type: "string" },
          ],
          storageDescriptor: {
            location: `s3://${bucketName}/records/`,
            inputFormat: "org.apache.hadoop.mapred.TextInputFormat",
            outputFormat: "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            serdeInfo: {
              serializationLibrary: "org.openx.data.jsonserde.JsonSerDe",
              parameters: { "ignore.malformed.json": "true" },
            },
            columns: DECISION_RECORD_COLUMNS,
          },
        },
      });
    }
    this.policyBundleBucket = new s3.Bucket(this, "PolicyBundles", {
      ...privateBucket,
      versioned: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
    });

    const logGroup = new logs.LogGroup(this, "Logs", {
      retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    const environment: { [key: string]: string } = {
      OUTCOME_TOPIC_ARN: this.outcomeTopic.topicArn,
      LOG_LEVEL: props.logLevel ?? "info",
      POLICY_ENV_JSON: JSON.stringify(props.policyEnv ?? {}),
    };
    if (this.stateTable) {
      environment.STATE_TABLE = this.stateTable.tableName;
    }
    if (props.policyLayer) {
      environment.POLICY_DIR = "/opt/policies";
    }
    if (props.caBundleFile !== undefined) {
      if (!/^\/\S*$/.test(props.caBundleFile)) {
        throw new Error(`caBundleFile must be an absolute path, not ${JSON.stringify(props.caBundleFile)}`);
      }
      environment.SSL_CERT_FILE = props.caBundleFile;
    }
    const sourceTopics = props.sourceTopics ?? [];
    for (const source of sourceTopics) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(source.schema)) {
        throw new Error(`sourceTopics: schema ${JSON.stringify(source.schema)} of ${source.topicArn}: use letters, digits and underscores, starting with a letter`);
      }
    }
    environment.TOPIC_SCHEMAS = sourceTopics.map((source) => `${source.topicArn}=${source.schema}`).join(",");
    const ingest = props.ingest ?? { mode: "sns" };
    // The SAM template's ranges: a value the function refuses would fail every init.
    environment.BATCH_CONCURRENCY = String(wholeInRange("ingest.batchConcurrency", ingest.batchConcurrency ?? 4, 1, 64));
    wholeInRange("ingest.maxReceiveCount", ingest.maxReceiveCount ?? 5, 1, 1000);
    wholeInRange("ingest.retriesAlarmThreshold", ingest.retriesAlarmThreshold ?? 0, 0, Number.MAX_SAFE_INTEGER);
    if (ingest.oldestMessageAlarmAge !== undefined) {
      wholeInRange("ingest.oldestMessageAlarmAge (seconds)", ingest.oldestMessageAlarmAge.toSeconds(), 60, Number.MAX_SAFE_INTEGER);
    }
    const retryDelay = ingest.retryDelay ?? Duration.seconds(30);
    if (retryDelay !== "off" && retryDelay.toSeconds() > 3600) {
      throw new Error(`ingest.retryDelay: ${retryDelay.toSeconds()} s is over an hour (SQS keeps a message hidden at most 12 hours from its receipt)`);
    }
    environment.INGEST_RETRY_DELAY_SECONDS = retryDelay === "off" ? "off" : String(retryDelay.toSeconds());
    environment.ACTION_BUDGETS = JSON.stringify(
      (props.actionBudgets ?? []).map((budget, index, budgets) => {
        if ((budget.uses === undefined) === (budget.id === undefined)) {
          throw new Error(`actionBudgets[${index}]: give uses or id, not both or neither`);
        }
        const pattern = budget.uses ?? budget.id ?? "";
        if (pattern.trim() === "") {
          throw new Error(`actionBudgets[${index}]: the uses or id pattern is empty`);
        }
        if (pattern.trim() !== pattern) {
          throw new Error(`actionBudgets[${index}]: the pattern ${JSON.stringify(pattern)} starts or ends with whitespace, so it matches no action`);
        }
        if (Buffer.byteLength(pattern, "utf8") > 256) {
          throw new Error(`actionBudgets[${index}]: the pattern is over 256 bytes`);
        }
        if (!Number.isInteger(budget.limit) || budget.limit < 1 || !Number.isInteger(budget.perSeconds) || budget.perSeconds < 1) {
          throw new Error(`actionBudgets[${index}]: limit and perSeconds are whole numbers of at least 1`);
        }
        if (budget.perSeconds > 31 * 86400) {
          throw new Error(`actionBudgets[${index}]: perSeconds is at most 2678400 (31 days)`);
        }
        // The function reads limit as an unsigned 32-bit count: a larger one fails its init.
        if (budget.limit > 4294967295) {
          throw new Error(`actionBudgets[${index}]: limit is at most 4294967295`);
        }
        // The function names a budget's counter by pattern and window: a second such budget would share it.
        const first = budgets.findIndex((other) => other.uses === budget.uses && other.id === budget.id && other.perSeconds === budget.perSeconds);
        if (first < index) {
          throw new Error(`actionBudgets[${index}]: counts the same actions over the same window as actionBudgets[${first}]; keep one`);
        }
        return { ...(budget.uses !== undefined ? { uses: budget.uses } : { id: budget.id }), limit: budget.limit, per_seconds: budget.perSeconds };
      }),
    );
    if (this.decisionRecordsBucket) {
      environment.DECISION_RECORDS = `s3://${this.decisionRecordsBucket.bucketName}/records`;
    }
    if (props.policyBundleKey !== undefined) {
      environment.POLICY_BUNDLE = `s3://${this.policyBundleBucket.bucketName}/${props.policyBundleKey}`;
    }
    if (props.shadowPolicyBundleKey !== undefined) {
      environment.SHADOW_POLICY_BUNDLE = `s3://${this.policyBundleBucket.bucketName}/${props.shadowPolicyBundleKey}`;
    }
    environment.POLICY_REFRESH_SECONDS = String(refreshSeconds);
    if (interactions.enabled) {
      // Signs the tokens of callback URLs and answer buttons; deleted with the stack.
      this.callbackSecret = new secretsmanager.Secret(this, "CallbackSecret", {
        description: "alert-responder signs callback tokens (callback URLs, answer buttons) with this.",
        generateSecretString: { passwordLength: 48, excludePunctuation: true },
        removalPolicy: RemovalPolicy.DESTROY,
      });
      // Pending actions' due times: one-time schedules in this group, invoking the function as this role.
      this.scheduleGroup = new scheduler.CfnScheduleGroup(this, "ScheduleGroup", {});
      this.schedulerRole = new iam.Role(this, "SchedulerRole", {
        description: "EventBridge Scheduler invokes alert-responder as this role when a pending action is due.",
        assumedBy: new iam.ServicePrincipal("scheduler.amazonaws.com", {
          conditions: { StringEquals: { "aws:SourceAccount": stack.account } },
        }),
      });
      if (slackSecretName !== undefined) {
        environment.SLACK_SIGNING_SECRET_ID = slackSecretName;
      }
      environment.CALLBACK_SECRET_ID = this.callbackSecret.secretArn;
      environment.SCHEDULE_GROUP = this.scheduleGroup.ref;
      environment.SCHEDULER_ROLE_ARN = this.schedulerRole.roleArn;
    }

    this.function = new lambda.Function(this, "Function", {
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.ARM_64,
      handler: "bootstrap",
      code: props.code,
      memorySize: props.memorySize ?? 256,
      timeout: functionTimeout(props.timeout),
      reservedConcurrentExecutions: props.reservedConcurrency,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      layers: props.policyLayer ? [props.policyLayer] : undefined,
      environment,
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
      onFailure: new destinations.SqsDestination(this.failedEvents),
    });

    const topics = [
      sns.Topic.fromTopicArn(this, "AlertingTopic", props.alertingTopicArn),
      ...sourceTopics.map((source, index) => sns.Topic.fromTopicArn(this, `SourceTopic${index + 1}`, source.topicArn)),
    ];
    if (ingest.mode === "sqs") {
      const timeout = props.timeout ?? Duration.seconds(60);
      this.ingestDeadLetters = new sqs.Queue(this, "IngestDeadLetters", {
        retentionPeriod: Duration.days(14),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
      });
      this.ingestQueue = new sqs.Queue(this, "IngestQueue", {
        // A message moved to the dead letters keeps its first enqueue time:
        // they keep what this queue keeps and 10 days more.
        retentionPeriod: Duration.days(4),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        // AWS's rule for Lambda event sources: at least six times the function's timeout.
        visibilityTimeout: Duration.seconds(timeout.toSeconds() * 6),
        deadLetterQueue: { queue: this.ingestDeadLetters, maxReceiveCount: ingest.maxReceiveCount ?? 5 },
      });
      for (const topic of topics) {
        // Raw delivery off: the topic ARN and message attributes travel with each record.
        topic.addSubscription(new subscriptions.SqsSubscription(this.ingestQueue, { rawMessageDelivery: false }));
      }
      this.function.addEventSource(
        new eventSources.SqsEventSource(this.ingestQueue, {
          batchSize: ingest.batchSize ?? 10,
          maxBatchingWindow: ingest.maxBatchingWindow ?? Duration.seconds(1),
          maxConcurrency: ingest.maxConcurrency ?? 10,
          reportBatchItemFailures: true,
        }),
      );
    } else {
      for (const topic of topics) {
        topic.addSubscription(new subscriptions.LambdaSubscription(this.function));
      }
    }

    // Least privilege: publish to the outcome topic only, read only the
    // secrets under the prefix, use only the state table.
    this.outcomeTopic.grantPublish(this.function);
    if (props.actionTopicArns && props.actionTopicArns.length > 0) {
      for (const arn of props.actionTopicArns) {
        if (!Token.isUnresolved(arn) && !/^arn:[^:]+:sns:[^:]+:[0-9]{12}:[A-Za-z0-9_-]+(\.fifo)?$/.test(arn)) {
          throw new Error(`actionTopicArns: ${JSON.stringify(arn)} is not an SNS topic ARN`);
        }
      }
      this.function.addToRolePolicy(
        new iam.PolicyStatement({ sid: "PublishActionTopics", actions: ["sns:Publish"], resources: props.actionTopicArns }),
      );
    }
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        sid: "ReadActionSecrets",
        actions: ["secretsmanager:GetSecretValue"],
        resources: [`arn:${stack.partition}:secretsmanager:${stack.region}:${stack.account}:secret:${secretPrefix}*`],
      }),
    );
    // Decision records: put objects under records/, nothing else (no read, list or delete).
    if (this.decisionRecordsBucket) {
      this.function.addToRolePolicy(
        new iam.PolicyStatement({
          sid: "WriteDecisionRecords",
          actions: ["s3:PutObject"],
          resources: [this.decisionRecordsBucket.arnForObjects("records/*")],
        }),
      );
      if (props.outcomeTopicKey) {
        this.function.addToRolePolicy(
          new iam.PolicyStatement({ sid: "EncryptDecisionRecords", actions: ["kms:GenerateDataKey"], resources: [props.outcomeTopicKey.keyArn] }),
        );
      }
    }
    // Policy bundles: read objects (and their versions) under bundles/, only when one is named.
    if (props.policyBundleKey !== undefined || props.shadowPolicyBundleKey !== undefined) {
      this.function.addToRolePolicy(
        new iam.PolicyStatement({
          sid: "ReadPolicyBundles",
          actions: ["s3:GetObject", "s3:GetObjectVersion"],
          resources: [this.policyBundleBucket.arnForObjects("bundles/*")],
        }),
      );
    }
    if (this.callbackSecret && this.scheduleGroup && this.schedulerRole) {
      // One-time schedules in the stack's group only, passing only the scheduler role.
      this.function.addToRolePolicy(
        new iam.PolicyStatement({
          sid: "ManageSchedules",
          actions: ["scheduler:CreateSchedule", "scheduler:DeleteSchedule"],
          resources: [`arn:${stack.partition}:scheduler:${stack.region}:${stack.account}:schedule/${this.scheduleGroup.ref}/*`],
        }),
      );
      this.function.addToRolePolicy(
        new iam.PolicyStatement({
          sid: "PassSchedulerRole",
          actions: ["iam:PassRole"],
          resources: [this.schedulerRole.roleArn],
          conditions: { StringEquals: { "iam:PassedToService": "scheduler.amazonaws.com" } },
        }),
      );
      this.function.addToRolePolicy(
        new iam.PolicyStatement({ sid: "ReadCallbackSecret", actions: ["secretsmanager:GetSecretValue"], resources: [this.callbackSecret.secretArn] }),
      );
      if (slackSecretName !== undefined) {
        this.function.addToRolePolicy(
          new iam.PolicyStatement({
            sid: "ReadSlackSigningSecret",
            actions: ["secretsmanager:GetSecretValue"],
            resources: [`arn:${stack.partition}:secretsmanager:${stack.region}:${stack.account}:secret:${slackSecretName}-??????`],
          }),
        );
      }
      // Scheduler invokes the function, nothing else (in the role's own policy, apart from the role
      // the function's environment names).
      this.schedulerRole.addToPrincipalPolicy(
        new iam.PolicyStatement({ sid: "InvokeFunction", actions: ["lambda:InvokeFunction"], resources: [this.function.functionArn] }),
      );
      // The function resumes workflows by invoking itself asynchronously and looks up its own URL.
      // A policy of its own attached to the function's role: in the role's default policy, which the
      // function depends on, its own ARN would be a circular dependency.
      new iam.Policy(this, "SelfPolicy", {
        roles: [this.function.role!],
        statements: [
          new iam.PolicyStatement({
            sid: "InvokeItself",
            actions: ["lambda:InvokeFunction", "lambda:GetFunctionUrlConfig"],
            resources: [this.function.functionArn],
          }),
        ],
      });
      // Public (AuthType NONE): the function verifies every request (Slack signatures, signed
      // tokens) before it reads any state. CDK adds both permissions a public URL needs:
      // lambda:InvokeFunctionUrl, and lambda:InvokeFunction limited to URL calls.
      this.functionUrl = this.function.addFunctionUrl({ authType: lambda.FunctionUrlAuthType.NONE });
    }
    if (this.stateTable) {
      this.stateTable.grant(
        this.function,
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
      );
    }

    if (props.webhooks && props.webhooks.length > 0) {
      this.webhookDeadLetters = new sqs.Queue(this, "WebhookDeadLetters", {
        retentionPeriod: Duration.days(14),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
      });
      props.webhooks.forEach((webhook) => {
        if (!webhook.url.startsWith("https://")) {
          throw new Error(`webhook ${webhook.url} must be https`);
        }
        this.outcomeTopic.addSubscription(
          new subscriptions.UrlSubscription(webhook.url, {
            protocol: sns.SubscriptionProtocol.HTTPS,
            filterPolicy: webhook.filterPolicy,
            deadLetterQueue: this.webhookDeadLetters,
            deliveryPolicy: {
              healthyRetryPolicy: {
                numRetries: 10,
                minDelayTarget: Duration.seconds(2),
                maxDelayTarget: Duration.seconds(60),
                numMinDelayRetries: 2,
                numMaxDelayRetries: 3,
                numNoDelayRetries: 0,
                backoffFunction: sns.BackoffFunction.EXPONENTIAL,
              },
              throttlePolicy: { maxReceivesPerSecond: 20 },
            },
          }),
        );
      });
    }

    const alarm = (id: string, description: string, metric: cloudwatch.IMetric, threshold = 0, evaluationPeriods = 1) => {
      const created = new cloudwatch.Alarm(this, id, {
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      if (props.alarmTopic) {
        created.addAlarmAction(new cwActions.SnsAction(props.alarmTopic));
      }
      this.alarms.push(created);
    };
    const fiveMinutes = Duration.minutes(5);
    alarm(
      "FailedEventsAlarm",
      "Events alert-responder could not handle after Lambda's retries (see the runbook in the README).",
      this.failedEvents.metricApproximateNumberOfMessagesVisible({ period: fiveMinutes, statistic: "Maximum" }),
    );
    alarm("FunctionErrorsAlarm", "alert-responder invocations failed.", this.function.metricErrors({ period: fiveMinutes }));
    alarm("FunctionThrottlesAlarm", "alert-responder invocations were throttled.", this.function.metricThrottles({ period: fiveMinutes }));
    if (this.ingestQueue && this.ingestDeadLetters) {
      alarm(
        "IngestBacklogAlarm",
        "Alert changes are waiting in the ingest queue too long.",
        this.ingestQueue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: "Maximum" }),
        (props.ingest?.oldestMessageAlarmAge ?? Duration.minutes(5)).toSeconds(),
      );
      alarm(
        "IngestDeadLetterAlarm",
        "Alert changes moved to the ingest dead-letter queue after their deliveries ran out.",
        this.ingestDeadLetters.metricApproximateNumberOfMessagesVisible({ period: fiveMinutes, statistic: "Maximum" }),
      );
    }
    // The function's own metrics (EMF, namespace AlertResponder, dimension FunctionName).
    const own = (metricName: string) =>
      new cloudwatch.Metric({
        namespace: "AlertResponder",
        metricName,
        dimensionsMap: { FunctionName: this.function.functionName },
        statistic: "Sum",
        period: fiveMinutes,
      });
    if (this.ingestQueue) {
      alarm(
        "IngestRetriesAlarm",
        "alert-responder listed ingest records for a retry (metric RecordsRetried: a state table, publish or transient action failure, a namespace held by another workflow, or the invocation's deadline); the batch itself succeeds, so no invocation error says so.",
        own("RecordsRetried"),
        props.ingest?.retriesAlarmThreshold ?? 0,
      );
    }
    if (this.decisionRecordsBucket) {
      alarm("DecisionRecordFailuresAlarm", "alert-responder could not write decision records (metric DecisionRecordFailures).", own("DecisionRecordFailures"));
    }
    if (props.policyBundleKey !== undefined || props.shadowPolicyBundleKey !== undefined) {
      alarm("PolicyBundleRefusedAlarm", "alert-responder refused a policy bundle (metric PolicyBundleRefused); see its log for why.", own("PolicyBundleRefused"));
    }
    if (this.webhookDeadLetters) {
      alarm(
        "WebhookDeadLetterAlarm",
        "Outcomes SNS could not deliver to a webhook subscriber.",
        this.webhookDeadLetters.metricApproximateNumberOfMessagesVisible({ period: fiveMinutes, statistic: "Maximum" }),
      );
    }
  }
}

/** `value`, when it is a whole number from `min` to `max`; otherwise an error naming the setting. */
function wholeInRange(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `from ${min} to ${max}`;
    throw new Error(`${name}: a whole number ${range}, not ${value}`);
  }
  return value;
}
