//! `otx.indicator`: AlienVault OTX indicator details
//! (`GET /api/v1/indicators/{type}/{indicator}/{section}`, `X-OTX-API-KEY`).

use futures::future::BoxFuture;
use reqwest::Method;
use serde_json::{json, Value};

use super::vendor::base_url;
use super::vendor::{indicator_arg, json_object, secret, url_with, IndicatorKind, BASE_URL, TIMEOUT};
use super::{Action, ActionCall, ActionError, ArgKind, ArgSpec};
use crate::http::{HttpClient, HttpRequest};

pub struct Indicator {
    client: HttpClient,
    base: String,
}

impl Indicator {
    pub fn new(client: HttpClient, base: String) -> Indicator {
        Indicator { client, base }
    }
}

const ARGS: &[ArgSpec] = &[
    ArgSpec::required("indicator", ArgKind::String, "IP, domain, hostname, file hash or URL"),
    ArgSpec::required("secret_api_key", ArgKind::Secret, "OTX API key"),
    ArgSpec::optional(
        "type",
        ArgKind::OneOf(&["IPv4", "IPv6", "domain", "hostname", "file", "url"]),
        "IPv4, IPv6, domain, hostname, file or url (default: detected)",
    ),
    ArgSpec::optional(
        "section",
        ArgKind::String,
        "general (default), reputation, geo, malware, url_list, passive_dns, analysis",
    ),
    BASE_URL,
    TIMEOUT,
];

/// OTX's name for an indicator's type.
pub fn detect(indicator: &str) -> &'static str {
    match IndicatorKind::of(indicator) {
        IndicatorKind::Ipv4 => "IPv4",
        IndicatorKind::Ipv6 => "IPv6",
        IndicatorKind::FileHash => "file",
        IndicatorKind::Url => "url",
        IndicatorKind::Hostname => "hostname",
        IndicatorKind::Domain => "domain",
    }
}

impl Action for Indicator {
    fn uses(&self) -> &'static str {
        "otx.indicator"
    }

    fn args(&self) -> &'static [ArgSpec] {
        ARGS
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let indicator = indicator_arg(&call)?;
            let kind = call.str_arg("type").unwrap_or_else(|| detect(indicator));
            if !["IPv4", "IPv6", "domain", "hostname", "file", "url"].contains(&kind) {
                return Err(ActionError::BadArg {
                    arg: "type".to_string(),
                    reason: format!("{kind:?} is not one of IPv4, IPv6, domain, hostname, file, url"),
                });
            }
            let section = call.str_arg("section").unwrap_or("general");
            super::vendor::plain_name("section", section)?;
            let url = url_with(
                &base_url(&call, Some(&self.base))?,
                &["api", "v1", "indicators", kind, indicator, section],
            )?;
            let request = HttpRequest::new(Method::GET, url)
                .secret_header("x-otx-api-key", secret(&call, "secret_api_key")?)
                .timeout(super::http::timeout_arg(&call));
            let response = self.client.send(request, call.deadline).await?;
            let body = json_object("OTX", &response)?;
            if section != "general" {
                return Ok(json!({"indicator": indicator, "type": kind, "section": section, "data": body}));
            }
            let pulses: Vec<Value> = body
                .get("pulse_info")
                .and_then(|p| p.get("pulses"))
                .and_then(Value::as_array)
                .map(|pulses| pulses.iter().take(10).filter_map(|p| p.get("name").cloned()).collect())
                .unwrap_or_default();
            Ok(json!({
                "indicator": indicator,
                "type": kind,
                "pulse_count": body.get("pulse_info").and_then(|p| p.get("count")).and_then(Value::as_u64).unwrap_or(0),
                "pulses": pulses,
                "reputation": body.get("reputation").cloned().unwrap_or(Value::Null),
            }))
        })
    }
}
