//! The bare `lambda_runtime` baseline for the cold-start benchmark
//! (`scripts/bench`): same runtime, no AWS SDK, no policies.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(serde_json::json!({"records": event.payload["Records"].as_array().map_or(0, Vec::len)}))
    }))
    .await
}
