//! The wakeup port on AWS: EventBridge Scheduler's one-time schedules
//! (CreateSchedule, DeleteSchedule) and the function invoking itself
//! asynchronously (Invoke with `InvocationType: Event`); also the lookups
//! of the function's own URL (GetFunctionUrlConfig) and of a function's ARN
//! by its name (GetFunction, for the CLI's `--function`). Each is one REST-JSON
//! request signed with SigV4 on the shared SDK configuration (`signed`):
//! two more SDK crates would cost the binary a model's worth each.

use std::sync::OnceLock;
use std::time::Duration;

use aws_types::SdkConfig;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::signed::{Request, SignedCalls};
use crate::interaction::FunctionUrl;
use crate::wakeup::{Wakeup, WakeupError, Wakeups};

/// Where and as whom schedules are made (`SCHEDULE_GROUP`,
/// `SCHEDULER_ROLE_ARN`). The services' endpoints are the configuration's
/// (`aws::sdk`).
#[derive(Debug, Clone, Default)]
pub struct WakeupSettings {
    pub schedule_group: String,
    pub scheduler_role_arn: String,
}

/// Scheduler and Lambda for one function, whose ARN is learnt from its
/// first invocation (Lambda's context carries it).
pub struct LambdaWakeups {
    calls: SignedCalls,
    settings: WakeupSettings,
    function_arn: OnceLock<String>,
}

impl LambdaWakeups {
    pub fn new(sdk: &SdkConfig, settings: WakeupSettings) -> LambdaWakeups {
        LambdaWakeups {
            calls: SignedCalls::new(sdk, Duration::from_secs(10)),
            settings,
            function_arn: OnceLock::new(),
        }
    }

    fn function_arn(&self, operation: &'static str) -> Result<&str, WakeupError> {
        self.function_arn.get().map(String::as_str).ok_or(WakeupError {
            operation,
            reason: "the function's ARN is not known yet (no invocation seen)".to_string(),
        })
    }

    fn endpoint(&self, service: &str) -> Result<String, String> {
        self.calls.endpoint(service).map_err(|err| err.reason)
    }

    /// One signed request; the status and the body.
    async fn call(&self, call: &Call<'_>) -> Result<(u16, Vec<u8>), String> {
        let url = format!("{}{}", self.endpoint(call.service)?, call.path);
        let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
        headers.extend(call.headers.iter().copied());
        let request = Request {
            service: call.service,
            method: call.method,
            url: &url,
            headers: &headers,
            body: call.body,
        };
        self.calls.send(&request).await.map_err(|err| err.reason)
    }
}

/// One REST request to a service.
#[derive(Clone, Copy)]
struct Call<'a> {
    service: &'static str,
    method: &'static str,
    /// Path and query, encoded.
    path: &'a str,
    headers: &'a [(&'static str, &'a str)],
    body: &'a [u8],
}

impl<'a> Call<'a> {
    /// A Lambda API read.
    fn lambda_get(path: &'a str) -> Call<'a> {
        Call {
            service: "lambda",
            method: "GET",
            path,
            headers: &[],
            body: b"",
        }
    }
}

impl LambdaWakeups {
    /// `call`, a success being a 2xx or one of `also_fine`; errors name
    /// `operation` and `what` (the schedule or function).
    async fn checked(
        &self,
        operation: &'static str,
        what: &str,
        call: Call<'_>,
        also_fine: &[u16],
    ) -> Result<(), WakeupError> {
        let (status, answer) = self.call(&call).await.map_err(|reason| WakeupError {
            operation,
            reason: format!("{what}: {reason}"),
        })?;
        match (200..300).contains(&status) || also_fine.contains(&status) {
            true => Ok(()),
            false => Err(failed(operation, what, status, &answer)),
        }
    }
}

/// `at(...)`: Scheduler's one-time expression, to the second, in UTC —
/// rounded up, so a schedule never fires before its due time (a wait that
/// reported one second short, a click in the last second told it was late).
fn at_expression(at: DateTime<Utc>) -> String {
    let at = match at.timestamp_subsec_nanos() {
        0 => at,
        nanos => at + chrono::Duration::nanoseconds(1_000_000_000 - i64::from(nanos)),
    };
    format!("at({})", at.format("%Y-%m-%dT%H:%M:%S"))
}

/// A call answered with an error: `what` names the schedule or function.
fn failed(operation: &'static str, what: &str, status: u16, body: &[u8]) -> WakeupError {
    WakeupError {
        operation,
        reason: format!(
            "{what}: HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(500)])
        ),
    }
}

/// Percent-encodes one path segment.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Wakeups for LambdaWakeups {
    fn schedule<'a>(
        &'a self,
        name: &'a str,
        at: DateTime<Utc>,
        wakeup: &'a Wakeup,
    ) -> BoxFuture<'a, Result<(), WakeupError>> {
        Box::pin(async move {
            let operation = "CreateSchedule";
            let body = json!({
                "GroupName": self.settings.schedule_group,
                "ScheduleExpression": at_expression(at),
                "ScheduleExpressionTimezone": "UTC",
                "FlexibleTimeWindow": {"Mode": "OFF"},
                "ActionAfterCompletion": "DELETE",
                "ClientToken": name,
                "Target": {
                    "Arn": self.function_arn(operation)?,
                    "RoleArn": self.settings.scheduler_role_arn,
                    "Input": wakeup.event().to_string(),
                },
            });
            let path = format!("/schedules/{}", segment(name));
            let body = body.to_string();
            let call = Call {
                service: "scheduler",
                method: "POST",
                path: &path,
                headers: &[],
                body: body.as_bytes(),
            };
            // 409: made by an earlier try of the same suspension.
            self.checked(operation, name, call, &[409]).await
        })
    }

    fn cancel<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), WakeupError>> {
        Box::pin(async move {
            let operation = "DeleteSchedule";
            let path = format!(
                "/schedules/{}?groupName={}",
                segment(name),
                segment(&self.settings.schedule_group)
            );
            let call = Call {
                service: "scheduler",
                method: "DELETE",
                path: &path,
                headers: &[],
                body: b"",
            };
            // 404: gone already (fired, or deleted by another answer).
            self.checked(operation, name, call, &[404]).await
        })
    }

    fn send<'a>(&'a self, wakeup: &'a Wakeup) -> BoxFuture<'a, Result<(), WakeupError>> {
        Box::pin(async move {
            let operation = "Invoke";
            let path = format!(
                "/2015-03-31/functions/{}/invocations",
                segment(self.function_arn(operation)?)
            );
            let body = wakeup.event().to_string();
            let call = Call {
                service: "lambda",
                method: "POST",
                path: &path,
                headers: &[("x-amz-invocation-type", "Event")],
                body: body.as_bytes(),
            };
            self.checked(operation, &path, call, &[]).await
        })
    }

    fn learn_function(&self, arn: &str) {
        if !arn.is_empty() {
            let _ = self.function_arn.set(arn.to_string());
        }
    }

    fn function_arn_of<'a>(&'a self, function: &'a str) -> BoxFuture<'a, Result<String, WakeupError>> {
        Box::pin(async move {
            if function.starts_with("arn:") {
                return Ok(function.to_string());
            }
            let operation = "GetFunction";
            let path = format!("/2015-03-31/functions/{}", segment(function));
            let call = Call::lambda_get(&path);
            let (status, body) = self.call(&call).await.map_err(|reason| WakeupError {
                operation,
                reason: format!("function {function}: {reason}"),
            })?;
            if !(200..300).contains(&status) {
                return Err(failed(operation, &format!("function {function}"), status, &body));
            }
            serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|answer| {
                    answer
                        .pointer("/Configuration/FunctionArn")?
                        .as_str()
                        .map(str::to_string)
                })
                .ok_or_else(|| WakeupError {
                    operation,
                    reason: format!("function {function}: the answer names no Configuration.FunctionArn"),
                })
        })
    }
}

impl FunctionUrl for LambdaWakeups {
    fn function_url(&self) -> BoxFuture<'_, Result<Option<String>, String>> {
        Box::pin(async move {
            let arn = self.function_arn("GetFunctionUrlConfig").map_err(|e| e.to_string())?;
            let path = format!("/2021-10-31/functions/{}/url", segment(arn));
            let call = Call::lambda_get(&path);
            let (status, body) = self.call(&call).await?;
            match status {
                200 => {
                    let config: Value = serde_json::from_slice(&body).map_err(|err| err.to_string())?;
                    Ok(config.get("FunctionUrl").and_then(Value::as_str).map(str::to_string))
                }
                404 => Ok(None),
                _ => Err(failed("GetFunctionUrlConfig", arn, status, &body).to_string()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_time_expressions_are_to_the_second_in_utc_rounded_up() {
        let at = DateTime::parse_from_rfc3339("2026-11-29T22:05:09.750+01:00").unwrap();
        assert_eq!(at_expression(at.with_timezone(&Utc)), "at(2026-11-29T21:05:10)");
        let whole = DateTime::parse_from_rfc3339("2026-11-29T23:59:59Z").unwrap();
        assert_eq!(at_expression(whole.with_timezone(&Utc)), "at(2026-11-29T23:59:59)");
        assert_eq!(
            segment("arn:aws:lambda:us-east-1:1:function:f"),
            "arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af"
        );
    }
}
