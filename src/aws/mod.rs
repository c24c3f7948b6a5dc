//! The AWS adapters of the ports: DynamoDB (state), SNS (outcomes and the
//! `sns.publish` action), SQS (retried ingest records' visibility), Secrets
//! Manager (secrets), S3 (records, bundles),
//! Scheduler and Lambda (wakeups); the configuration, HTTP client, retry
//! rules and SigV4-signed calls they share.

mod dynamodb;
mod http;
mod json_api;
mod retry;
mod s3;
mod sdk;
mod secrets_manager;
mod signed;
mod sns;
mod sqs;
mod wakeups;
mod xml;

pub use dynamodb::DynamoState;
pub use s3::{Fetched, S3Error, S3Records, S3};
pub use sdk::{error_chain, sdk_config, sdk_config_from};
pub use secrets_manager::SecretsManager;
pub use sns::{LazySnsClient, Sns, SnsPublisher};
pub use sqs::SqsRequeue;
pub use wakeups::{LambdaWakeups, WakeupSettings};
