//! `jira.create_issue` / `jira.add_comment`: Jira REST API v3. Basic auth
//! with `email` + API token (Jira Cloud), or a bearer personal access token
//! (Data Center) when no email is given. Text goes in Atlassian Document Format.

use data_encoding::BASE64;
use futures::future::BoxFuture;
use reqwest::Method;
use serde_json::{json, Value};

use super::render::{clean, clip, headline, line, summary, Markup};
use super::vendor::base_url;
use super::vendor::{json_object, plain_name, secret, string_list, url_with, TIMEOUT};
use super::{Action, ActionCall, ActionError, ArgKind, ArgSpec};
use crate::http::{HttpClient, HttpRequest};

/// Plain text as an ADF document: one paragraph per line.
fn adf(text: &str) -> Value {
    let paragraphs: Vec<Value> = text
        .lines()
        .map(|line| {
            if line.is_empty() {
                json!({"type": "paragraph", "content": []})
            } else {
                json!({"type": "paragraph", "content": [{"type": "text", "text": line}]})
            }
        })
        .collect();
    json!({"type": "doc", "version": 1, "content": paragraphs})
}

fn authorized(call: &ActionCall<'_>, request: HttpRequest) -> Result<HttpRequest, ActionError> {
    let token = secret(call, "secret_api_token")?;
    Ok(match call.str_arg("email") {
        Some(email) => request.secret_header(
            "authorization",
            &format!("Basic {}", BASE64.encode(format!("{email}:{token}").as_bytes())),
        ),
        None => request.secret_header("authorization", &format!("Bearer {token}")),
    })
}

pub struct CreateIssue {
    client: HttpClient,
    base: Option<String>,
}

impl CreateIssue {
    pub fn new(client: HttpClient, base: Option<String>) -> CreateIssue {
        CreateIssue { client, base }
    }
}

const CREATE_ARGS: &[ArgSpec] = &[
    ArgSpec::required("project", ArgKind::String, "project key, e.g. SEC"),
    ArgSpec::required(
        "secret_api_token",
        ArgKind::Secret,
        "API token (with `email`) or personal access token",
    ),
    ArgSpec::optional("email", ArgKind::String, "account email for basic auth (Jira Cloud)"),
    ArgSpec::optional("summary", ArgKind::String, "issue summary (default `[severity] title`)"),
    ArgSpec::optional(
        "description",
        ArgKind::String,
        "issue description (default: a summary of the alert)",
    ),
    ArgSpec::optional("issue_type", ArgKind::String, "issue type name (default Task)"),
    ArgSpec::optional("labels", ArgKind::StringList, "labels"),
    ArgSpec::optional(
        "base_url",
        ArgKind::String,
        "site URL, e.g. https://acme.atlassian.net (or JIRA_BASE_URL)",
    ),
    TIMEOUT,
];

impl Action for CreateIssue {
    fn uses(&self) -> &'static str {
        "jira.create_issue"
    }

    fn args(&self) -> &'static [ArgSpec] {
        CREATE_ARGS
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let alert = call.alert;
            let base = base_url(&call, self.base.as_deref())?;
            let project = call.str_arg("project").unwrap_or_default();
            plain_name("project", project)?;
            let mut fields = json!({
                "project": {"key": project},
                "summary": clip(&line(&call.str_arg("summary").map_or_else(|| headline(alert), str::to_string)), 255),
                "issuetype": {"name": call.str_arg("issue_type").unwrap_or("Task")},
                "description": adf(&call.str_arg("description").map_or_else(|| summary(alert, Markup::Plain), clean)),
            });
            let labels = string_list(&call, "labels");
            if !labels.is_empty() {
                fields["labels"] = json!(labels);
            }
            let url = url_with(&base, &["rest", "api", "3", "issue"])?;
            let request = HttpRequest::new(Method::POST, url)
                .header("accept", "application/json")
                .json(json!({"fields": fields}))
                .timeout(super::http::timeout_arg(&call));
            let response = self.client.send(authorized(&call, request)?, call.deadline).await?;
            let created = json_object("Jira", &response)?;
            let key = created.get("key").and_then(Value::as_str).unwrap_or_default();
            Ok(json!({"id": created.get("id"), "key": key, "url": format!("{base}/browse/{key}")}))
        })
    }
}

pub struct AddComment {
    client: HttpClient,
    base: Option<String>,
}

impl AddComment {
    pub fn new(client: HttpClient, base: Option<String>) -> AddComment {
        AddComment { client, base }
    }
}

const COMMENT_ARGS: &[ArgSpec] = &[
    ArgSpec::required("issue", ArgKind::String, "issue key or id, e.g. SEC-42"),
    ArgSpec::required(
        "secret_api_token",
        ArgKind::Secret,
        "API token (with `email`) or personal access token",
    ),
    ArgSpec::optional("email", ArgKind::String, "account email for basic auth (Jira Cloud)"),
    ArgSpec::optional(
        "body",
        ArgKind::String,
        "comment text (default: a summary of the alert)",
    ),
    ArgSpec::optional("base_url", ArgKind::String, "site URL (or JIRA_BASE_URL)"),
    TIMEOUT,
];

impl Action for AddComment {
    fn uses(&self) -> &'static str {
        "jira.add_comment"
    }

    fn args(&self) -> &'static [ArgSpec] {
        COMMENT_ARGS
    }

    fn run<'a>(&'a self, call: ActionCall<'a>) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let issue = call.str_arg("issue").unwrap_or_default();
            plain_name("issue", issue)?;
            let text = call
                .str_arg("body")
                .map_or_else(|| summary(call.alert, Markup::Plain), clean);
            let url = url_with(
                &base_url(&call, self.base.as_deref())?,
                &["rest", "api", "3", "issue", issue, "comment"],
            )?;
            let request = HttpRequest::new(Method::POST, url)
                .header("accept", "application/json")
                .json(json!({"body": adf(&text)}))
                .timeout(super::http::timeout_arg(&call));
            let response = self.client.send(authorized(&call, request)?, call.deadline).await?;
            let created = json_object("Jira", &response)?;
            Ok(json!({"id": created.get("id"), "issue": issue}))
        })
    }
}
