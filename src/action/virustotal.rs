//! `virustotal.lookup`: VirusTotal API v3 reports for a file hash, IP,
//! domain or URL (`x-apikey` header). An indicator VirusTotal has never seen
//! (HTTP 404) is a result, `found: false`, not a failure.

use data_encoding::BASE64URL_NOPAD;
use futures::future::BoxFuture;
use reqwest::Method;
use serde_json::{json, Value};

use super::vendor::base_url;
use super::vendor::{indicator_arg, link_to, secret, url_with, IndicatorKind, BASE_URL, TIMEOUT};
use super::{Action, ActionCall, ActionError, ArgKind, ArgSpec};
use crate::http::{HttpClient, HttpError, HttpRequest};

pub struct Lookup {
    client: HttpClient,
    base: String,
}

impl Lookup {
    pub fn new(client: HttpClient, base: String) -> Lookup {
        Lookup { client, base }
    }
}

const ARGS: &[ArgSpec] = &[
    ArgSpec::required(
        "indicator",
        ArgKind::String,
        "a file hash (MD5/SHA-1/SHA-256), IP, domain or URL",
    ),
    ArgSpec::required("secret_api_key", ArgKind::Secret, "VirusTotal API key"),
    ArgSpec::optional(
        "type",
        ArgKind::OneOf(&["file", "ip", "domain", "url"]),
        "file, ip, domain or url (default: detected)",
    ),
    BASE_URL,
    TIMEOUT,
];

/// VirusTotal's collection for an indicator.
pub fn detect(indicator: &str) -> &'static str {
    match IndicatorKind::of(indicator) {
        IndicatorKind::Ipv4 | IndicatorKind::Ipv6 => "ip",
        IndicatorKind::FileHash => "file",
        IndicatorKind::Url => "url",
        IndicatorKind::Hostname | IndicatorKind::Domain => "domain",
    }
}

impl Action for Lookup {
    fn uses(&self) -> &'static str {
        "virustotal.lookup"
    }

    fn args(&self) -> &'static [ArgSpec] {
        ARGS
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let indicator = indicator_arg(&call)?;
            let kind = call.str_arg("type").unwrap_or_else(|| detect(indicator));
            // URL reports are addressed by the unpadded base64url of the URL.
            let url_id = BASE64URL_NOPAD.encode(indicator.as_bytes());
            let (collection, id, gui) = match kind {
                "file" => ("files", indicator, "file"),
                "ip" => ("ip_addresses", indicator, "ip-address"),
                "domain" => ("domains", indicator, "domain"),
                "url" => ("urls", url_id.as_str(), "url"),
                other => {
                    return Err(ActionError::BadArg {
                        arg: "type".to_string(),
                        reason: format!("{other:?} is not one of file, ip, domain, url"),
                    })
                }
            };
            let url = url_with(&base_url(&call, Some(&self.base))?, &[collection, id])?;
            let request = HttpRequest::new(Method::GET, url)
                .secret_header("x-apikey", secret(&call, "secret_api_key")?)
                .header("accept", "application/json")
                .timeout(super::http::timeout_arg(&call));
            let link = link_to(&format!("https://www.virustotal.com/gui/{gui}"), id);
            let response = match self.client.send(request, call.deadline).await {
                Ok(response) => response,
                Err(HttpError::Status { status: 404, .. }) => {
                    // The same fields as a found one: a commit on `malicious`
                    // reads 0, not nothing.
                    return Ok(json!({
                        "indicator": indicator,
                        "type": kind,
                        "found": false,
                        "malicious": 0,
                        "suspicious": 0,
                        "harmless": 0,
                        "undetected": 0,
                        "reputation": Value::Null,
                        "link": link,
                    }));
                }
                Err(err) => return Err(err.into()),
            };
            let attributes = response
                .body
                .pointer("/data/attributes")
                .ok_or_else(|| ActionError::Failed {
                    transient: false,
                    message: "VirusTotal answered without data.attributes".to_string(),
                    result: Some(response.to_result()),
                })?;
            let stats = attributes.get("last_analysis_stats").cloned().unwrap_or(json!({}));
            let count = |name: &str| stats.get(name).and_then(Value::as_u64).unwrap_or(0);
            Ok(json!({
                "indicator": indicator,
                "type": kind,
                "found": true,
                "malicious": count("malicious"),
                "suspicious": count("suspicious"),
                "harmless": count("harmless"),
                "undetected": count("undetected"),
                "reputation": attributes.get("reputation").cloned().unwrap_or(Value::Null),
                "link": link,
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indicator_kinds_are_detected() {
        assert_eq!(detect("5.205.62.253"), "ip");
        assert_eq!(detect("2001:db8::1"), "ip");
        assert_eq!(detect("44d88612fea8a8f36de82e1278abb02f"), "file");
        assert_eq!(
            detect("275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"),
            "file"
        );
        assert_eq!(detect("https://evil.example/x"), "url");
        assert_eq!(detect("evil.example"), "domain");
    }
}
