//! Helpers shared by the vendor actions.

use reqwest::Url;
use serde_json::{Map, Value};

use super::args::{ArgKind, ArgSpec};
use super::contract::{ActionCall, ActionError};
use crate::http::HttpResponse;
use crate::model::Alert;

/// Declares `base_url` and `timeout_ms`, which every vendor action takes.
pub const BASE_URL: ArgSpec = ArgSpec::optional(
    "base_url",
    ArgKind::String,
    "API base URL (default: the vendor's public endpoint, or <VENDOR>_BASE_URL)",
);
pub const TIMEOUT: ArgSpec = ArgSpec::optional(
    "timeout_ms",
    ArgKind::Whole,
    "request timeout (default HTTP_TIMEOUT_MS)",
);

/// The `base_url` argument, else the configured endpoint; no trailing slash.
pub fn base_url(call: &ActionCall<'_>, configured: Option<&str>) -> Result<String, ActionError> {
    call.str_arg("base_url")
        .or(configured)
        .map(|url| url.trim_end_matches('/').to_string())
        .ok_or_else(|| ActionError::BadArg {
            arg: "base_url".to_string(),
            reason: "is required (or set the service's *_BASE_URL)".to_string(),
        })
}

/// A required secret argument, already resolved to its value.
pub fn secret<'a>(call: &ActionCall<'a>, arg: &str) -> Result<&'a str, ActionError> {
    call.str_arg(arg)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ActionError::BadArg {
            arg: arg.to_string(),
            reason: "is required".to_string(),
        })
}

/// `base` with path segments appended, each percent-encoded, so values from
/// alerts cannot change the path (`../`, `?`, `#`).
pub fn url_with(base: &str, segments: &[&str]) -> Result<String, ActionError> {
    let mut url = Url::parse(base).map_err(|e| ActionError::BadArg {
        arg: "base_url".to_string(),
        reason: format!("is not a URL: {e}"),
    })?;
    {
        let mut path = url.path_segments_mut().map_err(|_| ActionError::BadArg {
            arg: "base_url".to_string(),
            reason: "cannot take a path".to_string(),
        })?;
        path.pop_if_empty();
        for segment in segments {
            // The URL library drops `.` and `..` and keeps an empty segment:
            // either would address another resource (`/domains` for `..`).
            if segment.is_empty() || *segment == "." || *segment == ".." {
                return Err(ActionError::BadArg {
                    arg: "path".to_string(),
                    reason: format!("segment {segment:?} would address another resource"),
                });
            }
            path.push(segment);
        }
    }
    Ok(url.to_string())
}

/// An indicator that names something: not empty, `.` or `..` (which a URL
/// path would drop, asking the vendor for its collection instead).
pub fn indicator_arg<'a>(call: &ActionCall<'a>) -> Result<&'a str, ActionError> {
    let indicator = call.str_arg("indicator").unwrap_or_default().trim();
    if indicator.is_empty() || indicator == "." || indicator == ".." {
        return Err(ActionError::BadArg {
            arg: "indicator".to_string(),
            reason: format!("{indicator:?} names no indicator"),
        });
    }
    Ok(indicator)
}

/// `base` with one path segment appended, percent-encoded: a link built
/// from an indicator (a report's page) holds no `|`, `<`, `>` or space a
/// message reading it as a link would take for markup.
pub fn link_to(base: &str, segment: &str) -> String {
    // The URL library leaves `|` as it is in a path: Slack's link separator.
    url_with(base, &[segment]).map_or_else(|_| base.to_string(), |link| link.replace('|', "%7C"))
}

/// The response body as a JSON object, or a failure that keeps the response.
pub fn json_object<'a>(vendor: &str, response: &'a HttpResponse) -> Result<&'a Map<String, Value>, ActionError> {
    response.body.as_object().ok_or_else(|| ActionError::Failed {
        transient: false,
        message: format!(
            "{vendor} answered HTTP {} with a body that is not a JSON object",
            response.status
        ),
        result: Some(response.to_result()),
    })
}

/// The Matano alert id, when the alert came from Matano.
pub fn matano_alert_id(alert: &Alert) -> Option<&str> {
    alert.data.pointer("/updated_alert/id").and_then(Value::as_str)
}

/// An optional string-list argument.
pub fn string_list(call: &ActionCall<'_>, arg: &str) -> Vec<String> {
    call.args
        .get(arg)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

/// What an IOC string is, for the lookup actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndicatorKind {
    Ipv4,
    Ipv6,
    /// MD5, SHA-1 or SHA-256 in hex.
    FileHash,
    Url,
    /// A name with at least two dots (`www.example.org`).
    Hostname,
    Domain,
}

impl IndicatorKind {
    pub fn of(indicator: &str) -> IndicatorKind {
        match indicator.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(_)) => IndicatorKind::Ipv4,
            Ok(std::net::IpAddr::V6(_)) => IndicatorKind::Ipv6,
            Err(_) if matches!(indicator.len(), 32 | 40 | 64) && indicator.chars().all(|c| c.is_ascii_hexdigit()) => {
                IndicatorKind::FileHash
            }
            Err(_) if indicator.starts_with("http://") || indicator.starts_with("https://") => IndicatorKind::Url,
            Err(_) if indicator.matches('.').count() >= 2 => IndicatorKind::Hostname,
            Err(_) => IndicatorKind::Domain,
        }
    }
}

/// Path segments from alert content must be plain names.
pub fn plain_name(arg: &str, value: &str) -> Result<(), ActionError> {
    if !value.is_empty()
        && value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && value != "."
        && value != ".."
    {
        Ok(())
    } else {
        Err(ActionError::BadArg {
            arg: arg.to_string(),
            reason: format!("{value:?} is not a plain name (letters, digits, - _ .)"),
        })
    }
}
